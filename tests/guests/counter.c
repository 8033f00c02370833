/* SPDX-License-Identifier: MIT */
/*
 * counter: counts forever (or to count=N), printing one numbered tick per
 * period, and watches for stalls: the TSC is read in a tight loop, and a
 * jump between two reads larger than gap_ms means the vCPU was not running.
 * Tests use it to prove a guest ran without interruption, e.g. across a
 * restart of vmmd.
 *
 * Command line: period_ms=P (default 20), gap_ms=G (default 1000),
 *               count=N (default 0: forever), tsc_mhz=F (default 2000),
 *               pad=B (default 0: B filler characters after each tick, to
 *               make a lot of console output).
 * Output:
 *   counter: period_ms=P gap_ms=G
 *   tick=1
 *   tick=2
 *   ...
 *   GAP ms=M after tick=N     (only if the guest was stalled for M >= G ms)
 * Exit status: 0 after count ticks.
 */
#include "lib/guest.h"

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* n / d without libgcc's __udivdi3, which freestanding 32-bit code lacks;
 * used only when reporting a stall. */
static uint64_t div_u64(uint64_t n, uint64_t d)
{
	uint64_t q = 0, r = 0;

	for (int bit = 63; bit >= 0; bit--) {
		r = r << 1 | (n >> bit & 1);
		if (r >= d) {
			r -= d;
			q |= 1ULL << bit;
		}
	}
	return q;
}

int main(void)
{
	uint64_t period_ms = cmdline_number("period_ms", 20);
	uint64_t gap_ms = cmdline_number("gap_ms", 1000);
	uint64_t count = cmdline_number("count", 0);
	uint64_t per_ms = cmdline_number("tsc_mhz", 2000) * 1000;
	uint64_t pad = cmdline_number("pad", 0);
	uint64_t last = rdtsc(), next = last + period_ms * per_ms;

	print("counter: period_ms=");
	print_dec(period_ms);
	print(" gap_ms=");
	print_dec(gap_ms);
	print("\n");
	for (uint64_t tick = 1; count == 0 || tick <= count;) {
		uint64_t now = rdtsc();
		if (now - last >= gap_ms * per_ms) {
			print("GAP ms=");
			print_dec(div_u64(now - last, per_ms));
			print(" after tick=");
			print_dec(tick - 1);
			print("\n");
		}
		last = now;
		if (now >= next) {
			for (uint64_t i = 0; i < pad; i++)
				print_char('.');
			if (pad)
				print_char('\n');
			print_kv_dec("tick", tick++);
			next += period_ms * per_ms;
			/* After a stall, do not print a burst of catch-up ticks. */
			if (next < now)
				next = now + period_ms * per_ms;
		}
	}
	return 0;
}
