/* SPDX-License-Identifier: MIT */
/*
 * bootinfo: prints what the boot loader passed, one "key=value" per line,
 * then exits with status 0. Keys (numbers are 0x-hex or decimal as shown):
 *
 *   protocol=multiboot|pvh|flat
 *   eax=0x2badb002              EAX at entry (multiboot magic)
 *   ebx=0x...                   EBX at entry (information address)
 *   flags=0x...                 multiboot info flags (3.3)
 *   mem_lower=<KiB>             flags bit 0
 *   mem_upper=<KiB>             flags bit 0
 *   boot_device=0x...           flags bit 1
 *   cmdline=<text>              flags bit 2 (rest of the line, verbatim)
 *   mods_count=<n>              flags bit 3
 *   mmap_addr=0x...             flags bit 6
 *   mmap_length=<bytes>         flags bit 6
 *   mmap_count=<n>              flags bit 6
 *   mmap[i].base=0x... mmap[i].length=0x... mmap[i].type=<n>   (one key a line)
 *   boot_loader_name=<text>     flags bit 9
 *   bootinfo=done               last line
 *
 * A PVH start prints pvh.magic, pvh.version, cmdline, memmap_count and
 * memmap[i].base/.length/.type instead of the multiboot keys.
 */
#include "lib/guest.h"

#define BIT(n) (1U << (n))
/* Multiboot 0.6.96 3.3 flags. */
#define MB_MEM BIT(0)
#define MB_BOOT_DEVICE BIT(1)
#define MB_CMDLINE BIT(2)
#define MB_MODS BIT(3)
#define MB_MMAP BIT(6)
#define MB_LOADER_NAME BIT(9)

static void print_indexed(const char *list, uint32_t i, const char *field, uint64_t v,
			  bool hex)
{
	print(list);
	print_char('[');
	print_dec(i);
	print("].");
	print(field);
	print_char('=');
	if (hex)
		print_hex(v);
	else
		print_dec(v);
	print_char('\n');
}

static void print_region(const char *list, uint32_t i, uint64_t base, uint64_t len,
			 uint32_t type)
{
	print_indexed(list, i, "base", base, true);
	print_indexed(list, i, "length", len, true);
	print_indexed(list, i, "type", type, false);
}

/* 3.3: entries are size + 4 bytes apart; size may grow in later versions. */
static void print_mmap(const struct multiboot_info *mb)
{
	uint32_t addr = mb->mmap_addr, end = mb->mmap_addr + mb->mmap_length;
	uint32_t n = 0;

	print_kv_hex("mmap_addr", mb->mmap_addr);
	print_kv_dec("mmap_length", mb->mmap_length);
	while (addr + sizeof(struct multiboot_mmap_entry) <= end) {
		const struct multiboot_mmap_entry *e = phys(addr);
		print_region("mmap", n++, e->addr, e->len, e->type);
		addr += e->size + 4;
	}
	print_kv_dec("mmap_count", n);
}

static void print_multiboot(void)
{
	const struct multiboot_info *mb = phys(boot.ebx);

	if (boot.eax != MULTIBOOT_LOADER_MAGIC)
		return;
	print_kv_hex("flags", mb->flags);
	if (mb->flags & MB_MEM) {
		print_kv_dec("mem_lower", mb->mem_lower);
		print_kv_dec("mem_upper", mb->mem_upper);
	}
	if (mb->flags & MB_BOOT_DEVICE)
		print_kv_hex("boot_device", mb->boot_device);
	if (mb->flags & MB_CMDLINE)
		print_kv_str("cmdline", phys(mb->cmdline));
	if (mb->flags & MB_MODS)
		print_kv_dec("mods_count", mb->mods_count);
	if (mb->flags & MB_MMAP)
		print_mmap(mb);
	if (mb->flags & MB_LOADER_NAME)
		print_kv_str("boot_loader_name", phys(mb->boot_loader_name));
}

static void print_pvh(void)
{
	const struct pvh_start_info *si = phys(boot.ebx);

	print_kv_hex("pvh.magic", si->magic);
	if (si->magic != PVH_START_MAGIC)
		return;
	print_kv_dec("pvh.version", si->version);
	print_kv_str("cmdline", boot.cmdline);
	if (si->version < 1 || !si->memmap_paddr)
		return;
	for (uint32_t i = 0; i < si->memmap_entries; i++) {
		const struct pvh_memmap_entry *e = phys(si->memmap_paddr + i * sizeof(*e));
		print_region("memmap", i, e->addr, e->size, e->type);
	}
	print_kv_dec("memmap_count", si->memmap_entries);
}

int main(void)
{
	print_kv_str("protocol", boot_protocol_name(boot.protocol));
	print_kv_hex("eax", boot.eax);
	print_kv_hex("ebx", boot.ebx);
	if (boot.protocol == BOOT_MULTIBOOT)
		print_multiboot();
	else if (boot.protocol == BOOT_PVH)
		print_pvh();
	print_kv_str("bootinfo", "done");
	return 0;
}
