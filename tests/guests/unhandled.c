/* SPDX-License-Identifier: MIT */
/*
 * unhandled: port I/O and MMIO that no device claims, for the tests of how
 * vmmd answers and logs them (docs/devices.md):
 *
 *   - reads of unhandled ports at each size, the first port twice; all must
 *     read all-ones;
 *   - writes to UNHANDLED_WRITE_PORTS more ports, so the log's burst of 10
 *     lines runs out;
 *   - POST_CODE_WRITES writes to port 0x80, which must never be logged;
 *   - MMIO_ACCESSES reads and writes at distinct addresses of the PC hole,
 *     where nothing is mapped; reads must return all-ones.
 *
 * Output, one line per read ("in8 0x1234=0xff", "mmio 0xd0000000=0xffffffff"),
 * then "unhandled: done". Exit status 0 when every read returned all-ones,
 * else 1.
 */
#include "lib/guest.h"

#define POST_CODE_PORT 0x80
#define POST_CODE_WRITES 20
#define UNHANDLED_WRITE_PORTS 12
#define FIRST_WRITE_PORT 0x500
#define MMIO_BASE 0xd0000000u
#define MMIO_STRIDE 0x1000u
#define MMIO_ACCESSES 12

static bool report(const char *what, uint32_t where, uint32_t value, uint32_t all_ones)
{
	print(what);
	print_char(' ');
	print_hex(where);
	print_char('=');
	print_hex(value);
	print_char('\n');
	return value == all_ones;
}

static bool read_ports(void)
{
	bool ok = true;

	ok &= report("in8", 0x1234, inb(0x1234), 0xff);
	ok &= report("in8", 0x1234, inb(0x1234), 0xff); /* logged once only */
	ok &= report("in16", 0x2000, inw(0x2000), 0xffff);
	ok &= report("in32", 0x3000, inl(0x3000), 0xffffffff);
	return ok;
}

static void write_ports(void)
{
	for (uint16_t i = 0; i < POST_CODE_WRITES; i++)
		outb(POST_CODE_PORT, (uint8_t)i);
	for (uint16_t i = 0; i < UNHANDLED_WRITE_PORTS; i++)
		outb(FIRST_WRITE_PORT + i, (uint8_t)i);
}

/* Reads at even, writes at odd steps through the hole. */
static bool access_mmio(void)
{
	bool ok = true;

	for (uint32_t i = 0; i < MMIO_ACCESSES; i++) {
		volatile uint32_t *p = phys(MMIO_BASE + i * MMIO_STRIDE);
		if (i % 2 == 0)
			ok &= report("mmio", (uint32_t)(uintptr_t)p, *p, 0xffffffff);
		else
			*p = i;
	}
	return ok;
}

int main(void)
{
	bool ok = read_ports();

	write_ports();
	ok &= access_mmio();
	print("unhandled: done\n");
	return ok ? 0 : 1;
}
