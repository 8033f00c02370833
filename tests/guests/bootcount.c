/* SPDX-License-Identifier: MIT */
/*
 * bootcount: counts its boots in RAM that no boot loader writes, and checks
 * that each boot starts from a fresh kernel image and fresh boot
 * information, then halts (interrupts off). A platform reset (vm.reset)
 * makes it boot again.
 *
 * Output, one line per boot:
 *   boot=N image=fresh info=ok
 * N counts boots since power-on (RAM keeps its contents across a reset, as
 * on real hardware); "image=stale" would mean the loader did not reload
 * the image (a variable this guest changes after checking it kept its
 * change); "info=bad" that EAX or the multiboot information is not what a
 * multiboot loader hands over.
 */
#include "lib/guest.h"

/* Above everything a loader writes (docs/boot.md): kernel at 1 MiB, boot
 * information below 640 KiB. */
#define COUNTER_ADDR 0x700000u
#define COUNTER_MAGIC 0x544F4F42u /* "BOOT" */

struct counter {
	uint32_t magic;
	uint32_t boots;
};

/* In .data: the loader writes 0x5EED5EED here on every boot. */
static volatile uint32_t pristine = 0x5EED5EEDu;

static bool boot_info_ok(void)
{
	const struct multiboot_info *mbi = phys(boot.ebx);

	return boot.protocol == BOOT_MULTIBOOT && boot.eax == MULTIBOOT_LOADER_MAGIC &&
	       (mbi->flags & 1) && mbi->mem_lower == 639;
}

int main(void)
{
	volatile struct counter *c = phys(COUNTER_ADDR);
	bool fresh = pristine == 0x5EED5EEDu;

	pristine = 0xDEADDEADu;
	if (c->magic != COUNTER_MAGIC) {
		c->magic = COUNTER_MAGIC;
		c->boots = 0;
	}
	c->boots++;
	print("boot=");
	print_dec(c->boots);
	print(fresh ? " image=fresh" : " image=stale");
	print(boot_info_ok() ? " info=ok\n" : " info=bad\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}
