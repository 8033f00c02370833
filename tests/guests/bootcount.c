/* SPDX-License-Identifier: MIT */
/*
 * bootcount: counts its boots in RAM that no boot loader writes, and checks
 * that each boot starts from a fresh kernel image and fresh boot
 * information, then halts (interrupts off). A platform reset (vm.reset)
 * makes it boot again.
 *
 * Output, one line per boot:
 *   boot=N image=fresh info=ok mbi=0xADDR
 * N counts boots since power-on (RAM keeps its contents across a reset, as
 * on real hardware); "image=stale" would mean the loader did not reload
 * the image (a variable this guest changes after checking it kept its
 * change); "info=bad" that EAX or the multiboot information (flags, memory
 * sizes, memory map, command line, boot loader name) is not what vmmd's
 * multiboot loader hands over. After checking, the guest overwrites all of
 * that information (mbi= says where the structure is, for a test to look),
 * so "info=ok" on the next boot proves the loader wrote it afresh.
 */
#include "lib/guest.h"

/* Above everything a loader writes (docs/boot.md): kernel at 1 MiB, boot
 * information below 640 KiB. */
#define COUNTER_ADDR 0x700000u
#define COUNTER_MAGIC 0x544F4F42u /* "BOOT" */

/* Multiboot 0.6.96 §3.3 flags vmmd's loader sets: memory sizes (0),
 * command line (2), memory map (6), boot loader name (9). */
#define MBI_FLAGS ((1u << 0) | (1u << 2) | (1u << 6) | (1u << 9))
/* What the guest writes over the information it was given. */
#define SCRIBBLE 0xA5

struct counter {
	uint32_t magic;
	uint32_t boots;
};

/* In .data: the loader writes 0x5EED5EED here on every boot. */
static volatile uint32_t pristine = 0x5EED5EEDu;

/* The first memory-map entry: available RAM from 0 (the loader lists low
 * memory first). */
static bool memory_map_ok(const struct multiboot_info *mbi)
{
	const struct multiboot_mmap_entry *e = phys(mbi->mmap_addr);

	return mbi->mmap_length >= sizeof(*e) && e->size == sizeof(*e) - 4 && e->addr == 0 &&
	       e->len == (uint64_t)mbi->mem_lower * 1024 && e->type == 1;
}

/* A command line the loader wrote: printable text, ended within the
 * 4 KiB vmmd allows (and so without the scribble byte). */
static bool cmdline_ok(const char *s)
{
	for (size_t i = 0; i < 4096; i++) {
		if (s[i] == 0)
			return true;
		if (s[i] < 0x20 || s[i] > 0x7E)
			return false;
	}
	return false;
}

static bool boot_info_ok(void)
{
	const struct multiboot_info *mbi = phys(boot.ebx);

	return boot.protocol == BOOT_MULTIBOOT && boot.eax == MULTIBOOT_LOADER_MAGIC &&
	       mbi->flags == MBI_FLAGS && mbi->mem_lower == 639 && mbi->mem_upper >= 1024 &&
	       memory_map_ok(mbi) && str_eq(phys(mbi->boot_loader_name), "vmmd") &&
	       cmdline_ok(phys(mbi->cmdline));
}

/* Overwrites everything the loader handed over: the information structure,
 * the memory map, the command line and the boot loader name. */
static void scribble_over_boot_info(void)
{
	struct multiboot_info *mbi = phys(boot.ebx);
	uint32_t mmap = mbi->mmap_addr, mmap_len = mbi->mmap_length;
	char *cmdline = phys(mbi->cmdline), *name = phys(mbi->boot_loader_name);

	if (boot.protocol != BOOT_MULTIBOOT)
		return;
	memset(cmdline, SCRIBBLE, str_len(cmdline) + 1);
	memset(name, SCRIBBLE, str_len(name) + 1);
	memset(phys(mmap), SCRIBBLE, mmap_len);
	memset(mbi, SCRIBBLE, sizeof(*mbi));
}

int main(void)
{
	volatile struct counter *c = phys(COUNTER_ADDR);
	bool fresh = pristine == 0x5EED5EEDu, info_ok;

	pristine = 0xDEADDEADu;
	if (c->magic != COUNTER_MAGIC) {
		c->magic = COUNTER_MAGIC;
		c->boots = 0;
	}
	c->boots++;
	info_ok = boot_info_ok();
	/* Before the report: once it is out, the information is gone. */
	scribble_over_boot_info();
	print("boot=");
	print_dec(c->boots);
	print(fresh ? " image=fresh" : " image=stale");
	print(info_ok ? " info=ok" : " info=bad");
	print(" mbi=");
	print_hex(boot.ebx);
	print("\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}
