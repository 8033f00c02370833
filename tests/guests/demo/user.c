/* SPDX-License-Identifier: MIT */
/*
 * Ring 3 of the demo: an ASCII Mandelbrot set and a count of the primes
 * below 10^8, each timed with RDTSC; the only file built with SSE. Output
 * leaves through console.c; the prime count decides the exit status.
 *
 * Output (after the picture):
 *   mandelbrot: 72x28 cells, 16 samples each, <N> iterations in <C> TSC cycles (<T> ms)
 *   primes below 100000000: 5761455 in <C> TSC cycles (<T> ms)
 *   tsc: <Hz> Hz from <source>
 *   demo: ok
 * and exit status 0; "demo: WRONG prime count" and status 1 otherwise.
 */
#include "demo.h"

#define WIDTH 72
#define HEIGHT 28
#define SAMPLES 4 /* per cell and axis */
#define MAX_ITER 2000

#define PRIME_LIMIT 100000000ULL
#define PRIMES_BELOW_LIMIT 5761455ULL /* pi(10^8) */
#define SQRT_LIMIT 10000
#define SEGMENT 32768 /* odd numbers per sieve segment */

/* ---------------------------------------------------------------- output */

/* "12.345" milliseconds. */
static void print_ms(uint64_t cycles)
{
	uint64_t us;

	if (!tsc_clock.hz) {
		print("unknown time");
		return;
	}
	us = cycles * 1000000 / tsc_clock.hz;
	print_dec(us / 1000);
	print_char('.');
	print_char((char)('0' + us / 100 % 10));
	print_char((char)('0' + us / 10 % 10));
	print_char((char)('0' + us % 10));
	print(" ms");
}

static void print_timing(uint64_t cycles)
{
	print(" in ");
	print_dec(cycles);
	print(" TSC cycles (");
	print_ms(cycles);
	print(")\n");
}

/* ---------------------------------------------------------------- mandelbrot */

static unsigned int bit_length(uint64_t v)
{
	return v ? 64 - (unsigned int)__builtin_clzll(v) : 0;
}

/* Escape iterations of c = x + iy, MAX_ITER when it never escapes. */
static uint64_t escape_time(double x, double y)
{
	double zr = 0, zi = 0;
	uint64_t n;

	for (n = 0; n < MAX_ITER; n++) {
		double zr2 = zr * zr, zi2 = zi * zi;
		if (zr2 + zi2 > 4.0)
			break;
		zi = 2 * zr * zi + y;
		zr = zr2 - zi2 + x;
	}
	return n;
}

/* Shade from the logarithm of the escape time, inside the set darkest. */
static char shade(unsigned int log_sum)
{
	static const char palette[] = " .-:=+*%#@";
	unsigned int max = SAMPLES * SAMPLES * bit_length(MAX_ITER);

	return palette[log_sum * (sizeof(palette) - 2) / max];
}

static uint64_t mandelbrot(void)
{
	const double x0 = -2.15, x1 = 0.65, y0 = -1.2, y1 = 1.2;
	const double dx = (x1 - x0) / (WIDTH * SAMPLES), dy = (y1 - y0) / (HEIGHT * SAMPLES);
	uint64_t iterations = 0;

	for (int row = 0; row < HEIGHT; row++) {
		for (int col = 0; col < WIDTH; col++) {
			unsigned int log_sum = 0;
			for (int s = 0; s < SAMPLES * SAMPLES; s++) {
				double x = x0 + ((col * SAMPLES + s % SAMPLES) + 0.5) * dx;
				double y = y0 + ((row * SAMPLES + s / SAMPLES) + 0.5) * dy;
				uint64_t n = escape_time(x, y);
				iterations += n;
				log_sum += bit_length(n);
			}
			print_char(shade(log_sum));
		}
		print_char('\n');
	}
	return iterations;
}

/* ---------------------------------------------------------------- primes */

static uint8_t small_composite[SQRT_LIMIT + 1];
static uint32_t base_primes[SQRT_LIMIT];
static uint8_t segment[SEGMENT];

static uint32_t find_base_primes(void)
{
	uint32_t n = 0;

	for (uint32_t i = 3; i <= SQRT_LIMIT; i += 2) {
		if (small_composite[i])
			continue;
		base_primes[n++] = i;
		for (uint32_t j = i * i; j <= SQRT_LIMIT; j += 2 * i)
			small_composite[j] = 1;
	}
	return n;
}

/*
 * Segmented sieve over odd numbers: segment[i] stands for low + 2i + 1.
 * Each odd prime p crosses out its odd multiples from max(p^2, low) on.
 */
static uint64_t count_primes(void)
{
	uint32_t nr_base = find_base_primes();
	uint64_t count = 1; /* 2 */

	for (uint64_t low = 0; low < PRIME_LIMIT; low += 2 * SEGMENT) {
		uint64_t high = low + 2 * SEGMENT < PRIME_LIMIT ? low + 2 * SEGMENT : PRIME_LIMIT;
		uint64_t slots = (high - low) / 2;

		memset(segment, 1, slots);
		if (low == 0)
			segment[0] = 0; /* 1 is not prime */
		for (uint32_t k = 0; k < nr_base; k++) {
			uint64_t p = base_primes[k];
			uint64_t m = p * p;
			if (m >= high)
				break;
			if (m < low) {
				m = (low + p - 1) / p * p;
				if (!(m & 1))
					m += p;
			}
			for (uint64_t i = (m - low) / 2; i < slots; i += p)
				segment[i] = 0;
		}
		for (uint64_t i = 0; i < slots; i++)
			count += segment[i];
	}
	return count;
}

/* ---------------------------------------------------------------- main */

void user_main(void)
{
	uint64_t t0, t1, iterations, primes;
	uint32_t mxcsr = 0x1F80; /* SDM Vol. 1 10.2.3.1: all exceptions masked */

	__asm__ volatile("fninit; ldmxcsr %0" : : "m"(mxcsr));
	print("vmmd demo: long mode, computing in ring 3 (booted by ");
	print(boot_protocol_name(boot.protocol));
	print(")\n");

	t0 = rdtsc();
	iterations = mandelbrot();
	t1 = rdtsc();
	print("mandelbrot: 72x28 cells, 16 samples each, ");
	print_dec(iterations);
	print(" iterations");
	print_timing(t1 - t0);

	t0 = rdtsc();
	primes = count_primes();
	t1 = rdtsc();
	print("primes below 100000000: ");
	print_dec(primes);
	print_timing(t1 - t0);

	print("tsc: ");
	print_dec(tsc_clock.hz);
	print(" Hz from ");
	print(tsc_clock.source);
	print_char('\n');
	if (primes != PRIMES_BELOW_LIMIT) {
		print("demo: WRONG prime count\n");
		sys_exit(1);
	}
	print("demo: ok\n");
	sys_exit(0);
}
