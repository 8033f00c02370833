/* SPDX-License-Identifier: MIT */
/*
 * Multiboot Specification 0.6.96 loader: finds and validates the OS image
 * header (3.1), loads the ELF segments or the a.out-kludge image, and writes
 * the boot information (3.3) into the boot area. Section numbers below are
 * the specification's.
 */
#include "vmmd/boot/multiboot-internal.h"

#include <string.h>

static uint32_t read_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static bool header_valid_at(const struct boot_kernel *k, size_t off)
{
	const uint8_t *p = k->data + off;

	return read_u32(p) == MB_HEADER_MAGIC &&
	       (uint32_t)(read_u32(p) + read_u32(p + 4) + read_u32(p + 8)) == 0;
}

/* First offset from start, step step, where a valid header starts. */
static bool find_valid(const struct boot_kernel *k, size_t start, size_t step,
		       size_t *ret)
{
	for (size_t off = start; off + MB_HEADER_SIZE <= k->size; off += step) {
		if (header_valid_at(k, off)) {
			*ret = off;
			return true;
		}
	}
	return false;
}

/* Says why no header was found, for the user who built the image. */
static int no_header_error(const struct boot_kernel *k, size_t bad_checksum_at,
			   struct error *err)
{
	size_t off;

	if (bad_checksum_at != SIZE_MAX) {
		const uint8_t *p = k->data + bad_checksum_at;
		return boot_error(k, err, -ENOEXEC,
				  "multiboot header at offset 0x%zx: checksum 0x%08x is wrong (magic + flags + checksum must be 0 mod 2^32, 3.1.2)",
				  bad_checksum_at, read_u32(p + 8));
	}
	if (find_valid(k, 0, 1, &off) && off < MB_HEADER_SEARCH && off % MB_HEADER_ALIGN)
		return boot_error(k, err, -ENOEXEC,
				  "multiboot header at offset 0x%zx is not 4-byte aligned (3.1.1)",
				  off);
	if (find_valid(k, 0, MB_HEADER_ALIGN, &off))
		return boot_error(k, err, -ENOEXEC,
				  "multiboot header at offset 0x%zx is not within the first %d bytes (3.1.1)",
				  off, MB_HEADER_SEARCH);
	return boot_error(k, err, -ENOEXEC,
			  "no multiboot header (magic 0x%08X) in the first %d bytes",
			  MB_HEADER_MAGIC, MB_HEADER_SEARCH);
}

static int check_flags(const struct boot_kernel *k, uint32_t flags,
		       struct error *err)
{
	uint32_t unsupported = flags & MB_REQUIRED_FLAGS & ~MB_SUPPORTED_FLAGS;

	/* 3.1.2: a loader must refuse requirement bits it cannot satisfy. */
	if (unsupported & MB_FLAG_VIDEO_MODE)
		return boot_error(k, err, -EOPNOTSUPP,
				  "multiboot header flags 0x%08x require a video mode (bit 2); vmmd has no display",
				  flags);
	if (unsupported)
		return boot_error(k, err, -EOPNOTSUPP,
				  "multiboot header flags 0x%08x require unknown features (bits 0x%04x; bits 0-15 are mandatory, 3.1.2)",
				  flags, unsupported);
	return 0;
}

/* 3.1.1: the first valid header wholly inside the first 8192 bytes. */
static int find_header(const struct boot_kernel *k, struct mb_header *ret,
		       size_t *ret_offset, struct error *err)
{
	size_t limit = MIN(k->size, (size_t)MB_HEADER_SEARCH);
	size_t bad_checksum_at = SIZE_MAX;
	struct mb_header h = { 0 };
	size_t off, need;
	int r;

	for (off = 0; off + MB_HEADER_SIZE <= limit; off += MB_HEADER_ALIGN) {
		if (read_u32(k->data + off) != MB_HEADER_MAGIC)
			continue;
		if (header_valid_at(k, off))
			break;
		if (bad_checksum_at == SIZE_MAX)
			bad_checksum_at = off;
	}
	if (off + MB_HEADER_SIZE > limit)
		return no_header_error(k, bad_checksum_at, err);

	memcpy(&h, k->data + off, MB_HEADER_SIZE);
	r = check_flags(k, h.flags, err);
	if (r < 0)
		return r;
	need = h.flags & MB_FLAG_AOUT_KLUDGE ? MB_HEADER_AOUT_SIZE : MB_HEADER_SIZE;
	if (off + need > limit)
		return boot_error(k, err, -ENOEXEC,
				  "multiboot header at offset 0x%zx is truncated: its address fields (flag 16) need %zu bytes, only %zu remain in %s",
				  off, need, limit - off,
				  limit < MB_HEADER_SEARCH ? "the file" : "the first 8192 bytes");
	memcpy(&h, k->data + off, need);
	*ret = h;
	*ret_offset = off;
	return 0;
}

/*
 * 3.1.3: with flag 16 the header's address fields say where the image goes;
 * the file bytes from (header offset - (header_addr - load_addr)) are loaded
 * at load_addr up to load_end_addr (0: the end of the file), and zeroes up
 * to bss_end_addr (0: none).
 */
static int aout_plan(const struct boot_kernel *k, const struct mb_header *h,
		     size_t header_offset, struct boot_plan *ret,
		     struct error *err)
{
	struct boot_plan plan = { 0 };
	struct boot_segment s = { .what = "multiboot address fields" };
	uint64_t before_header;
	int r;

	if (h->load_addr > h->header_addr)
		return boot_error(k, err, -ENOEXEC,
				  "multiboot load_addr 0x%x is above header_addr 0x%x (3.1.3)",
				  h->load_addr, h->header_addr);
	before_header = h->header_addr - h->load_addr;
	if (before_header > header_offset)
		return boot_error(k, err, -ENOEXEC,
				  "multiboot load_addr 0x%x would start loading 0x%llx bytes before the start of the file",
				  h->load_addr,
				  (unsigned long long)(before_header - header_offset));
	s.gpa = h->load_addr;
	s.offset = header_offset - before_header;
	if (h->load_end_addr == 0) {
		s.file_size = k->size - s.offset;
	} else if (h->load_end_addr <= h->load_addr) {
		return boot_error(k, err, -ENOEXEC,
				  "multiboot load_end_addr 0x%x is not above load_addr 0x%x",
				  h->load_end_addr, h->load_addr);
	} else {
		s.file_size = h->load_end_addr - h->load_addr;
		if (s.file_size > k->size - s.offset)
			return boot_error(k, err, -ENOEXEC,
					  "multiboot load_end_addr 0x%x needs file bytes [0x%llx, 0x%llx), the file has %zu",
					  h->load_end_addr, (unsigned long long)s.offset,
					  (unsigned long long)(s.offset + s.file_size), k->size);
	}
	s.mem_size = s.file_size;
	if (h->bss_end_addr != 0) {
		if (h->bss_end_addr < s.gpa + s.file_size)
			return boot_error(k, err, -ENOEXEC,
					  "multiboot bss_end_addr 0x%x is below the end of the loaded data 0x%llx",
					  h->bss_end_addr,
					  (unsigned long long)(s.gpa + s.file_size));
		s.mem_size = h->bss_end_addr - s.gpa;
	}
	r = boot_plan_add(k, &plan, &s, err);
	if (r < 0)
		return r;
	plan.entry = h->entry_addr;
	*ret = plan;
	return 0;
}

static int multiboot_plan(const struct boot_kernel *k, const char *cmdline,
			  const struct vm_memory *mem, struct boot_plan *ret,
			  struct error *err)
{
	struct mb_header h = { 0 };
	size_t off = 0;
	int r;

	r = find_header(k, &h, &off, err);
	if (r < 0)
		return r;
	/* 3.1.3: the address fields win over the executable's own headers. */
	if (h.flags & MB_FLAG_AOUT_KLUDGE)
		r = aout_plan(k, &h, off, ret, err);
	else
		r = boot_elf_plan(k, ret, err);
	if (r < 0)
		return r;
	r = boot_plan_check(k, ret, mem, err);
	if (r < 0)
		return r;
	return boot_cmdline_check(k, cmdline, err);
}

static int multiboot_check(const struct boot_kernel *kernel, const char *cmdline,
			   const struct vm_memory *mem, struct error *err)
{
	struct boot_plan plan;

	return multiboot_plan(kernel, cmdline, mem, &plan, err);
}

/* ---------------------------------------------------------------- 3.3 info */

struct mmap_builder {
	struct mb_mmap_entry entry[MB_MMAP_MAX_ENTRIES];
	unsigned int n;
};

/* Adds [start, min(end, limit)) unless empty. */
static void mmap_add(struct mmap_builder *b, uint64_t start, uint64_t end,
		     uint64_t limit, uint32_t type)
{
	end = MIN(end, limit);
	if (start >= end || b->n >= MB_MMAP_MAX_ENTRIES)
		return;
	b->entry[b->n++] = (struct mb_mmap_entry){
		.size = sizeof(struct mb_mmap_entry) - sizeof(uint32_t),
		.base_addr = start,
		.length = end - start,
		.type = type,
	};
}

/*
 * The PC map a BIOS would report (ACPI 6.5 15.1 "INT 15H E820"): low RAM
 * up to the EBDA, the EBDA and BIOS area reserved, RAM from 1 MiB to the
 * hole, and RAM above 4 GiB. The legacy VGA window is left out.
 */
static void mmap_build(const struct vm_memory *mem, struct mmap_builder *b)
{
	uint64_t low_end = mem->region[0].size;

	b->n = 0;
	mmap_add(b, 0, MB_EBDA_START, low_end, MB_MEMORY_AVAILABLE);
	mmap_add(b, MB_EBDA_START, MB_EBDA_END, low_end, MB_MEMORY_RESERVED);
	mmap_add(b, MB_BIOS_START, MB_BIOS_END, low_end, MB_MEMORY_RESERVED);
	mmap_add(b, MB_HIGH_MEMORY, low_end, low_end, MB_MEMORY_AVAILABLE);
	for (unsigned int i = 1; i < mem->nr_regions; i++)
		mmap_add(b, mem->region[i].gpa,
			 mem->region[i].gpa + mem->region[i].size, UINT64_MAX,
			 MB_MEMORY_AVAILABLE);
}

static int write_info(const struct boot_kernel *k, const char *cmdline,
		      struct vm_memory *mem, struct error *err)
{
	uint64_t low_end = mem->region[0].size;
	uint8_t *area = vm_memory_ptr(mem, BOOT_INFO_ADDR, BOOT_AREA_END - BOOT_INFO_ADDR);
	struct mmap_builder mmap;
	struct mb_info info;

	if (!area)
		return boot_error(k, err, -EFAULT,
				  "guest RAM for the multiboot information at 0x%llx is not mapped",
				  BOOT_INFO_ADDR);
	mmap_build(mem, &mmap);
	/* 3.3: mem_upper is "maximally the address of the first upper memory
	 * hole minus 1 megabyte". */
	info = (struct mb_info){
		.flags = MB_INFO_MEMORY | MB_INFO_CMDLINE | MB_INFO_MEM_MAP |
			 MB_INFO_BOOT_LOADER_NAME,
		.mem_lower = (uint32_t)(MIN(low_end, MB_EBDA_START) >> 10),
		.mem_upper = low_end > MB_HIGH_MEMORY ?
				     (uint32_t)((low_end - MB_HIGH_MEMORY) >> 10) : 0,
		.cmdline = MB_CMDLINE_ADDR,
		.mmap_length = mmap.n * sizeof(struct mb_mmap_entry),
		.mmap_addr = MB_MMAP_ADDR,
		.boot_loader_name = MB_LOADER_NAME_ADDR,
	};
	memset(area, 0, BOOT_AREA_END - BOOT_INFO_ADDR);
	memcpy(area, &info, sizeof(info));
	memcpy(area + (MB_MMAP_ADDR - BOOT_INFO_ADDR), mmap.entry,
	       info.mmap_length);
	memcpy(area + (MB_LOADER_NAME_ADDR - BOOT_INFO_ADDR), MB_LOADER_NAME,
	       sizeof(MB_LOADER_NAME));
	if (cmdline)
		memcpy(area + (MB_CMDLINE_ADDR - BOOT_INFO_ADDR), cmdline,
		       strlen(cmdline));
	return 0;
}

static int multiboot_load(const struct boot_kernel *kernel, const char *cmdline,
			  struct vm_memory *mem, struct boot_entry *ret,
			  struct error *err)
{
	struct boot_plan plan;
	int r;

	r = multiboot_plan(kernel, cmdline, mem, &plan, err);
	if (r < 0)
		return r;
	r = boot_plan_copy(kernel, &plan, mem, err);
	if (r < 0)
		return r;
	r = write_info(kernel, cmdline, mem, err);
	if (r < 0)
		return r;
	/* 3.2: EAX magic, EBX info; the stack is the kernel's business, but
	 * one that pushes before setting its own lands in the boot area. */
	return boot_entry_flat32(kernel, mem, (uint32_t)plan.entry, BOOT_STACK_TOP,
				 MB_BOOTLOADER_MAGIC, MB_INFO_ADDR, ret, err);
}

const struct boot_loader boot_loader_multiboot = {
	.name = "multiboot",
	.description = "Multiboot 0.6.96: ELF32, ELF64 below 4 GiB, a.out kludge",
	.check = multiboot_check,
	.load = multiboot_load,
};
