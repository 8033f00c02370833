/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the multiboot loader: images built byte by byte in memory,
 * valid ones loaded into real (MAP_NORESERVE) guest RAM and read back, and
 * every malformed case rejected by both check and load with the expected
 * code and a message naming the problem.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <elf.h>

#include "vmmd/boot/boot.h"
#include "vmmd/boot/multiboot-internal.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define IMG_MAX (64 * 1024)
#define KERNEL_NAME "k.elf"

/* Standard test image: ELF header, program headers, multiboot header, data. */
#define PHDR_OFF 0x40
#define MB_OFF 0x200
#define TEXT_OFF 0x1000
#define TEXT_ADDR 0x100000U
#define TEXT_SIZE 0x200U
#define DATA_OFF (TEXT_OFF + TEXT_SIZE)
#define DATA_ADDR 0x101000U
#define DATA_FILE_SIZE 0x100U
#define DATA_MEM_SIZE 0x2000U
#define ENTRY (TEXT_ADDR + 0x10)

struct img {
	_Alignas(8) uint8_t data[IMG_MAX];
	size_t size;
};

static struct img img;

static void put32(size_t off, uint32_t v)
{
	memcpy(img.data + off, &v, sizeof(v));
}

static Elf32_Ehdr *ehdr32(void)
{
	return (Elf32_Ehdr *)img.data;
}

static Elf64_Ehdr *ehdr64(void)
{
	return (Elf64_Ehdr *)img.data;
}

static Elf32_Phdr *phdr32(unsigned int i)
{
	return (Elf32_Phdr *)(img.data + PHDR_OFF + i * sizeof(Elf32_Phdr));
}

static Elf64_Phdr *phdr64(unsigned int i)
{
	return (Elf64_Phdr *)(img.data + PHDR_OFF + i * sizeof(Elf64_Phdr));
}

static void mb_header(size_t off, uint32_t flags)
{
	put32(off, MB_HEADER_MAGIC);
	put32(off + 4, flags);
	put32(off + 8, -(MB_HEADER_MAGIC + flags));
}

/* Distinct bytes per offset, so a copy from the wrong place shows. */
static void fill_pattern(size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		img.data[i] = (uint8_t)(i * 7 + 3);
}

static void ident(unsigned char *id, unsigned int class)
{
	memcpy(id, ELFMAG, SELFMAG);
	id[EI_CLASS] = class;
	id[EI_DATA] = ELFDATA2LSB;
	id[EI_VERSION] = EV_CURRENT;
}

/* ELF32: text at TEXT_ADDR, data + bss at DATA_ADDR, a PT_NOTE between. */
static void build_elf32(void)
{
	Elf32_Ehdr *h = ehdr32();

	memset(&img, 0, sizeof(img));
	ident(h->e_ident, ELFCLASS32);
	h->e_type = ET_EXEC;
	h->e_machine = EM_386;
	h->e_version = EV_CURRENT;
	h->e_entry = ENTRY;
	h->e_phoff = PHDR_OFF;
	h->e_ehsize = sizeof(*h);
	h->e_phentsize = sizeof(Elf32_Phdr);
	h->e_phnum = 3;
	*phdr32(0) = (Elf32_Phdr){ .p_type = PT_LOAD, .p_offset = TEXT_OFF,
				   .p_vaddr = TEXT_ADDR, .p_paddr = TEXT_ADDR,
				   .p_filesz = TEXT_SIZE, .p_memsz = TEXT_SIZE };
	*phdr32(1) = (Elf32_Phdr){ .p_type = PT_NOTE, .p_offset = MB_OFF,
				   .p_filesz = 12 };
	*phdr32(2) = (Elf32_Phdr){ .p_type = PT_LOAD, .p_offset = DATA_OFF,
				   .p_vaddr = DATA_ADDR, .p_paddr = DATA_ADDR,
				   .p_filesz = DATA_FILE_SIZE, .p_memsz = DATA_MEM_SIZE };
	mb_header(MB_OFF, MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMORY_INFO);
	img.size = DATA_OFF + DATA_FILE_SIZE;
	fill_pattern(TEXT_OFF, img.size);
}

/* ELF64 with the same layout as build_elf32(). */
static void build_elf64(void)
{
	Elf64_Ehdr *h = ehdr64();

	memset(&img, 0, sizeof(img));
	ident(h->e_ident, ELFCLASS64);
	h->e_type = ET_EXEC;
	h->e_machine = EM_X86_64;
	h->e_version = EV_CURRENT;
	h->e_entry = ENTRY;
	h->e_phoff = PHDR_OFF;
	h->e_ehsize = sizeof(*h);
	h->e_phentsize = sizeof(Elf64_Phdr);
	h->e_phnum = 2;
	*phdr64(0) = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = TEXT_OFF,
				   .p_vaddr = TEXT_ADDR, .p_paddr = TEXT_ADDR,
				   .p_filesz = TEXT_SIZE, .p_memsz = TEXT_SIZE };
	*phdr64(1) = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = DATA_OFF,
				   .p_vaddr = DATA_ADDR, .p_paddr = DATA_ADDR,
				   .p_filesz = DATA_FILE_SIZE, .p_memsz = DATA_MEM_SIZE };
	mb_header(MB_OFF, MB_FLAG_MEMORY_INFO);
	img.size = DATA_OFF + DATA_FILE_SIZE;
	fill_pattern(TEXT_OFF, img.size);
}

/*
 * a.out kludge (3.1.3) on a non-ELF file: the header at file offset 0x40
 * says it sits at 0x200040, so loading starts at file offset 0.
 */
#define AOUT_HDR_OFF 0x40
#define AOUT_LOAD 0x200000U
#define AOUT_SIZE 0x800U
#define AOUT_BSS_END (AOUT_LOAD + 0x3000)
#define AOUT_ENTRY (AOUT_LOAD + 0x60)

static void build_aout(void)
{
	memset(&img, 0, sizeof(img));
	img.size = AOUT_SIZE;
	fill_pattern(0, img.size);
	mb_header(AOUT_HDR_OFF, MB_FLAG_MEMORY_INFO | MB_FLAG_AOUT_KLUDGE);
	put32(AOUT_HDR_OFF + 12, AOUT_LOAD + AOUT_HDR_OFF); /* header_addr */
	put32(AOUT_HDR_OFF + 16, AOUT_LOAD);                /* load_addr */
	put32(AOUT_HDR_OFF + 20, 0);                        /* load_end_addr: whole file */
	put32(AOUT_HDR_OFF + 24, AOUT_BSS_END);             /* bss_end_addr */
	put32(AOUT_HDR_OFF + 28, AOUT_ENTRY);               /* entry_addr */
}

static struct boot_kernel kernel(void)
{
	return (struct boot_kernel){ .name = KERNEL_NAME, .data = img.data, .size = img.size };
}

static const struct boot_loader *multiboot(void)
{
	const struct boot_loader *l = boot_loader_find("multiboot");

	assert_non_null(l);
	return l;
}

static void assert_msg_has(const char *msg, const char *needle)
{
	if (!strstr(msg, needle))
		fail_msg("message \"%s\" does not contain \"%s\"", msg, needle);
}

/*
 * The image must be rejected the same way by check (layout only) and by
 * load (mapped RAM), and load must leave *ret untouched.
 */
static void assert_rejected_ram(const char *cmdline, uint64_t ram, int code,
				const char *needle)
{
	struct boot_kernel k = kernel();
	struct vm_memory mem;
	struct boot_entry entry, before;
	struct error e = { 0 };

	vm_memory_layout(ram, &mem);
	assert_int_equal(multiboot()->check(&k, cmdline, &mem, &e), code);
	assert_int_equal(e.code, code);
	assert_msg_has(e.msg, "kernel '" KERNEL_NAME "': ");
	assert_msg_has(e.msg, needle);

	memset(&entry, 0xAB, sizeof(entry));
	before = entry;
	memset(&e, 0, sizeof(e));
	assert_int_equal(vm_memory_map(&mem, NULL), 0);
	assert_int_equal(multiboot()->load(&k, cmdline, &mem, &entry, &e), code);
	vm_memory_unmap(&mem);
	assert_msg_has(e.msg, needle);
	assert_memory_equal(&entry, &before, sizeof(entry));
}

static void assert_rejected(int code, const char *needle)
{
	assert_rejected_ram(NULL, 64 * MiB, code, needle);
}

/* Loads the current image into fresh RAM of ram bytes; RAM stays mapped. */
static void load_ok(const char *cmdline, uint64_t ram, struct vm_memory *mem,
		    struct boot_entry *entry)
{
	struct boot_kernel k = kernel();
	struct error e = { 0 };
	int r;

	vm_memory_layout(ram, mem);
	r = multiboot()->check(&k, cmdline, mem, &e);
	if (r < 0)
		fail_msg("check: %s", e.msg);
	assert_int_equal(vm_memory_map(mem, NULL), 0);
	/* Stale bytes where bss goes must be cleared by the loader. */
	memset(vm_memory_ptr(mem, TEXT_ADDR, 4 * MiB), 0xCC, 4 * MiB);
	r = multiboot()->load(&k, cmdline, mem, entry, &e);
	if (r < 0)
		fail_msg("load: %s", e.msg);
}

static const uint8_t *guest(const struct vm_memory *mem, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = vm_memory_ptr(mem, gpa, len);

	assert_non_null(p);
	return p;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void assert_multiboot_entry(const struct boot_entry *entry, uint32_t eip)
{
	assert_int_equal(entry->eip, eip);
	assert_int_equal(entry->eax, MB_BOOTLOADER_MAGIC);
	assert_int_equal(entry->ebx, MB_INFO_ADDR);
	assert_int_equal(entry->esp, BOOT_STACK_TOP);
	assert_int_equal(entry->cr0, 0x11); /* PE | ET, paging off */
	assert_int_equal(entry->eflags, 0x2);
}

/* ---------------------------------------------------------------- valid */

static void test_elf32_loads_segments_and_bss(void **state)
{
	struct vm_memory mem;
	struct boot_entry entry;

	build_elf32();
	load_ok(NULL, 64 * MiB, &mem, &entry);
	assert_multiboot_entry(&entry, ENTRY);
	assert_memory_equal(guest(&mem, TEXT_ADDR, TEXT_SIZE), img.data + TEXT_OFF, TEXT_SIZE);
	assert_memory_equal(guest(&mem, DATA_ADDR, DATA_FILE_SIZE), img.data + DATA_OFF,
			    DATA_FILE_SIZE);
	assert_true(all_zero(guest(&mem, DATA_ADDR + DATA_FILE_SIZE, DATA_MEM_SIZE - DATA_FILE_SIZE),
			     DATA_MEM_SIZE - DATA_FILE_SIZE));
	/* Nothing beyond the segments is touched. */
	assert_int_equal(*guest(&mem, TEXT_ADDR + TEXT_SIZE, 1), 0xCC);
	assert_int_equal(*guest(&mem, DATA_ADDR + DATA_MEM_SIZE, 1), 0xCC);
	vm_memory_unmap(&mem);
}

static void test_entry_gdt_is_flat(void **state)
{
	struct vm_memory mem;
	struct boot_entry entry;
	uint64_t gdt[4];

	build_elf32();
	load_ok(NULL, 64 * MiB, &mem, &entry);
	assert_int_equal(entry.gdt_base, BOOT_AREA_START);
	assert_int_equal(entry.gdt_limit, sizeof(gdt) - 1);
	assert_int_equal(entry.code_selector, 0x10);
	assert_int_equal(entry.data_selector, 0x18);
	memcpy(gdt, guest(&mem, entry.gdt_base, sizeof(gdt)), sizeof(gdt));
	assert_true(gdt[0] == 0);
	assert_true(gdt[2] == 0x00CF9B000000FFFFULL);
	assert_true(gdt[3] == 0x00CF93000000FFFFULL);
	vm_memory_unmap(&mem);
}

static void test_elf64_below_4g_loads(void **state)
{
	struct vm_memory mem;
	struct boot_entry entry;

	build_elf64();
	load_ok(NULL, 64 * MiB, &mem, &entry);
	assert_multiboot_entry(&entry, ENTRY);
	assert_memory_equal(guest(&mem, DATA_ADDR, DATA_FILE_SIZE), img.data + DATA_OFF,
			    DATA_FILE_SIZE);
	vm_memory_unmap(&mem);
}

static void test_elf64_higher_half_entry_is_translated(void **state)
{
	const uint64_t va = 0xFFFFFFFF80000000ULL;
	struct vm_memory mem;
	struct boot_entry entry;

	build_elf64();
	phdr64(0)->p_vaddr = va;
	phdr64(1)->p_vaddr = va + (DATA_ADDR - TEXT_ADDR);
	ehdr64()->e_entry = va + 0x20;
	load_ok(NULL, 64 * MiB, &mem, &entry);
	assert_int_equal(entry.eip, TEXT_ADDR + 0x20);
	vm_memory_unmap(&mem);
}

static void test_aout_kludge_loads_file_and_bss(void **state)
{
	struct vm_memory mem;
	struct boot_entry entry;

	build_aout();
	load_ok(NULL, 64 * MiB, &mem, &entry);
	assert_multiboot_entry(&entry, AOUT_ENTRY);
	assert_memory_equal(guest(&mem, AOUT_LOAD, AOUT_SIZE), img.data, AOUT_SIZE);
	assert_true(all_zero(guest(&mem, AOUT_LOAD + AOUT_SIZE, AOUT_BSS_END - AOUT_LOAD - AOUT_SIZE),
			     AOUT_BSS_END - AOUT_LOAD - AOUT_SIZE));
	assert_int_equal(*guest(&mem, AOUT_BSS_END, 1), 0xCC);
	vm_memory_unmap(&mem);
}

static void test_aout_kludge_load_end_limits_the_copy(void **state)
{
	struct vm_memory mem;
	struct boot_entry entry;

	build_aout();
	put32(AOUT_HDR_OFF + 20, AOUT_LOAD + 0x400);
	load_ok(NULL, 64 * MiB, &mem, &entry);
	assert_memory_equal(guest(&mem, AOUT_LOAD, 0x400), img.data, 0x400);
	assert_true(all_zero(guest(&mem, AOUT_LOAD + 0x400, 0x400), 0x400));
	vm_memory_unmap(&mem);
}

/* 3.1.3: the address fields are used instead of the executable's headers. */
static void test_aout_kludge_wins_over_elf_headers(void **state)
{
	struct vm_memory mem;
	struct boot_entry entry;

	build_elf32();
	mb_header(MB_OFF, MB_FLAG_AOUT_KLUDGE);
	put32(MB_OFF + 12, 0x300000 + MB_OFF);
	put32(MB_OFF + 16, 0x300000);
	put32(MB_OFF + 20, 0x300000 + 0x1000);
	put32(MB_OFF + 24, 0);
	put32(MB_OFF + 28, 0x300000 + 0x100);
	load_ok(NULL, 64 * MiB, &mem, &entry);
	assert_int_equal(entry.eip, 0x300100);
	assert_memory_equal(guest(&mem, 0x300000, 0x1000), img.data, 0x1000);
	/* The ELF segments are not loaded. */
	assert_int_equal(*guest(&mem, TEXT_ADDR, 1), 0xCC);
	vm_memory_unmap(&mem);
}

static void test_optional_unknown_flags_are_ignored(void **state)
{
	struct boot_kernel k;
	struct vm_memory mem;
	struct error e = { 0 };

	build_elf32();
	mb_header(MB_OFF, MB_FLAG_MEMORY_INFO | BIT(17) | BIT(31));
	k = kernel();
	vm_memory_layout(64 * MiB, &mem);
	assert_int_equal(multiboot()->check(&k, NULL, &mem, &e), 0);
}

static void test_header_at_last_aligned_slot_is_found(void **state)
{
	struct boot_kernel k;
	struct vm_memory mem;
	struct error e = { 0 };

	build_elf32();
	memset(img.data + MB_OFF, 0, 12);
	img.size = 0x3000;
	mb_header(MB_HEADER_SEARCH - 12, 0);
	k = kernel();
	vm_memory_layout(64 * MiB, &mem);
	assert_int_equal(multiboot()->check(&k, NULL, &mem, &e), 0);
}

/* ---------------------------------------------------------------- header */

static void test_no_magic(void **state)
{
	build_elf32();
	memset(img.data + MB_OFF, 0, 12);
	assert_rejected(-ENOEXEC, "no multiboot header (magic 0x1BADB002) in the first 8192 bytes");
}

static void test_bad_checksum(void **state)
{
	build_elf32();
	put32(MB_OFF + 8, 0x12345678);
	assert_rejected(-ENOEXEC, "multiboot header at offset 0x200: checksum 0x12345678 is wrong");
}

static void test_header_beyond_8192_bytes(void **state)
{
	build_elf32();
	memset(img.data + MB_OFF, 0, 12);
	img.size = 0x3000;
	mb_header(MB_HEADER_SEARCH, 0);
	assert_rejected(-ENOEXEC, "multiboot header at offset 0x2000 is not within the first 8192 bytes");
}

static void test_header_straddling_8192_bytes(void **state)
{
	build_elf32();
	memset(img.data + MB_OFF, 0, 12);
	img.size = 0x3000;
	mb_header(MB_HEADER_SEARCH - 8, 0);
	assert_rejected(-ENOEXEC, "offset 0x1ff8 is not within the first 8192 bytes");
}

static void test_header_misaligned(void **state)
{
	build_elf32();
	memset(img.data + MB_OFF, 0, 12);
	mb_header(MB_OFF + 2, 0);
	assert_rejected(-ENOEXEC, "multiboot header at offset 0x202 is not 4-byte aligned");
}

static void test_video_mode_flag_is_refused(void **state)
{
	build_elf32();
	mb_header(MB_OFF, MB_FLAG_MEMORY_INFO | MB_FLAG_VIDEO_MODE);
	assert_rejected(-EOPNOTSUPP, "require a video mode (bit 2)");
}

static void test_unknown_required_flag_is_refused(void **state)
{
	build_elf32();
	mb_header(MB_OFF, MB_FLAG_MEMORY_INFO | BIT(5) | BIT(15));
	assert_rejected(-EOPNOTSUPP, "require unknown features (bits 0x8020");
}

static void test_aout_header_truncated_by_file_end(void **state)
{
	memset(&img, 0, sizeof(img));
	img.size = 0x100;
	mb_header(img.size - 16, MB_FLAG_AOUT_KLUDGE);
	assert_rejected(-ENOEXEC, "multiboot header at offset 0xf0 is truncated: its address fields (flag 16) need 32 bytes, only 16 remain in the file");
}

/* ---------------------------------------------------------------- a.out kludge */

static void test_aout_load_addr_above_header_addr(void **state)
{
	build_aout();
	put32(AOUT_HDR_OFF + 16, AOUT_LOAD + AOUT_HDR_OFF + 4);
	assert_rejected(-ENOEXEC, "load_addr 0x200044 is above header_addr 0x200040");
}

static void test_aout_load_addr_before_file_start(void **state)
{
	build_aout();
	put32(AOUT_HDR_OFF + 16, AOUT_LOAD - 0x10);
	assert_rejected(-ENOEXEC, "would start loading 0x10 bytes before the start of the file");
}

static void test_aout_load_end_not_above_load(void **state)
{
	build_aout();
	put32(AOUT_HDR_OFF + 20, AOUT_LOAD);
	assert_rejected(-ENOEXEC, "load_end_addr 0x200000 is not above load_addr 0x200000");
}

static void test_aout_load_end_beyond_file(void **state)
{
	build_aout();
	put32(AOUT_HDR_OFF + 20, AOUT_LOAD + AOUT_SIZE + 1);
	assert_rejected(-ENOEXEC, "needs file bytes [0x0, 0x801), the file has 2048");
}

static void test_aout_bss_end_below_data(void **state)
{
	build_aout();
	put32(AOUT_HDR_OFF + 24, AOUT_LOAD + 0x10);
	assert_rejected(-ENOEXEC, "bss_end_addr 0x200010 is below the end of the loaded data 0x200800");
}

static void test_aout_entry_outside_image(void **state)
{
	build_aout();
	put32(AOUT_HDR_OFF + 28, AOUT_BSS_END);
	assert_rejected(-ENOEXEC, "entry point 0x203000 lies outside the loaded image");
}

static void test_aout_image_in_hole(void **state)
{
	build_aout();
	put32(AOUT_HDR_OFF + 12, 0xC0000000U + AOUT_HDR_OFF);
	put32(AOUT_HDR_OFF + 16, 0xC0000000U);
	put32(AOUT_HDR_OFF + 24, 0);
	put32(AOUT_HDR_OFF + 28, 0xC0000000U);
	assert_rejected_ram(NULL, 4 * GiB, -ERANGE,
			    "multiboot address fields: segment [0xc0000000, 0xc0000800) lies in the PCI hole");
}

/* ---------------------------------------------------------------- ELF structure */

static void test_not_elf_without_kludge(void **state)
{
	build_elf32();
	img.data[0] = 'M';
	assert_rejected(-ENOEXEC, "not an ELF file");
}

static void test_truncated_elf_header(void **state)
{
	/* A 48-byte ELF32 file whose header ends in a multiboot header. */
	memset(&img, 0, sizeof(img));
	ident(img.data, ELFCLASS32);
	img.size = 48;
	mb_header(36, 0);
	assert_rejected(-ENOEXEC, "truncated ELF header: the file has 48 bytes, the header needs 52");
}

static void test_truncated_elf64_header(void **state)
{
	memset(&img, 0, sizeof(img));
	ident(img.data, ELFCLASS64);
	img.size = 60;
	mb_header(48, 0);
	assert_rejected(-ENOEXEC, "truncated ELF header: the file has 60 bytes, the header needs 64");
}

static void test_truncated_program_header_table(void **state)
{
	build_elf32();
	ehdr32()->e_phoff = img.size - 40;
	assert_rejected(-ENOEXEC, "truncated program header table: 3 entries at offset 0x12d8 need 4920 bytes, the file has 4864");
}

static void test_program_header_table_offset_overflows(void **state)
{
	build_elf64();
	ehdr64()->e_phoff = ~0ULL - 8;
	assert_rejected(-ENOEXEC, "truncated program header table");
}

static void test_bad_phentsize(void **state)
{
	build_elf32();
	ehdr32()->e_phentsize = 16;
	assert_rejected(-ENOEXEC, "program header entry size e_phentsize 16, expected 32");
}

static void test_no_program_headers(void **state)
{
	build_elf32();
	ehdr32()->e_phnum = 0;
	assert_rejected(-ENOEXEC, "no program headers (e_phnum is 0)");
}

static void test_too_many_program_headers(void **state)
{
	build_elf32();
	ehdr32()->e_phnum = 0xFFFF;
	assert_rejected(-ENOEXEC, "65535 program headers (e_phnum), more than the limit of 128");
}

static void test_too_many_load_segments(void **state)
{
	build_elf32();
	ehdr32()->e_phoff = 0x2000;
	ehdr32()->e_phnum = BOOT_MAX_SEGMENTS + 1;
	img.size = 0x2000 + (BOOT_MAX_SEGMENTS + 1) * sizeof(Elf32_Phdr);
	for (unsigned int i = 0; i <= BOOT_MAX_SEGMENTS; i++) {
		Elf32_Phdr *p = (Elf32_Phdr *)(img.data + 0x2000 + i * sizeof(Elf32_Phdr));
		*p = (Elf32_Phdr){ .p_type = PT_LOAD, .p_paddr = 0x100000 + i * 0x1000,
				   .p_vaddr = 0x100000 + i * 0x1000, .p_memsz = 0x1000 };
	}
	assert_rejected(-EOPNOTSUPP, "more than 32 loadable segments");
}

static void test_no_load_segment(void **state)
{
	build_elf32();
	phdr32(0)->p_type = PT_NOTE;
	phdr32(2)->p_type = PT_NULL;
	assert_rejected(-ENOEXEC, "no loadable segment (PT_LOAD with p_memsz > 0)");
}

static void test_segment_beyond_file(void **state)
{
	build_elf32();
	phdr32(2)->p_filesz = DATA_FILE_SIZE + 1;
	assert_rejected(-ENOEXEC, "program header 2: file bytes [0x1200, 0x1301) extend beyond the end of the file (4864 bytes)");
}

static void test_segment_file_offset_overflows(void **state)
{
	build_elf64();
	phdr64(1)->p_offset = ~0ULL - 0x10;
	assert_rejected(-ENOEXEC, "program header 1: file bytes");
}

static void test_filesz_larger_than_memsz(void **state)
{
	build_elf32();
	phdr32(2)->p_memsz = DATA_FILE_SIZE - 1;
	assert_rejected(-ENOEXEC, "program header 2: p_filesz 0x100 is larger than p_memsz 0xff");
}

static void test_segment_in_hole(void **state)
{
	build_elf32();
	phdr32(2)->p_paddr = 0xC0000000U;
	phdr32(2)->p_memsz = 0x1000;
	assert_rejected_ram(NULL, 4 * GiB, -ERANGE,
			    "program header 2: segment [0xc0000000, 0xc0001000) lies in the PCI hole");
	/* The same with a small VM: still the hole, not "beyond RAM". */
	assert_rejected(-ERANGE, "lies in the PCI hole");
}

static void test_segment_reaching_into_hole(void **state)
{
	build_elf32();
	phdr32(2)->p_paddr = 0xBFFFF000U;
	phdr32(2)->p_memsz = 0x2000;
	assert_rejected_ram(NULL, 4 * GiB, -ERANGE,
			    "segment [0xbffff000, 0xc0001000) lies in the PCI hole");
}

static void test_segment_beyond_ram(void **state)
{
	build_elf32();
	phdr32(2)->p_paddr = 64 * MiB - 0x1000;
	assert_rejected(-ERANGE,
			"program header 2: segment [0x3fff000, 0x4001000) lies beyond guest RAM (64 MiB)");
}

static void test_segment_overflows_64_bits(void **state)
{
	build_elf64();
	phdr64(1)->p_paddr = ~0ULL - 0xFFF;
	assert_rejected(-ENOEXEC,
			"program header 1: segment at 0xfffffffffffff000 of 0x2000 bytes overflows the 64-bit address space");
}

static void test_segment_above_4g(void **state)
{
	build_elf64();
	phdr64(1)->p_paddr = 4 * GiB;
	phdr64(1)->p_vaddr = 4 * GiB;
	/* RAM exists there, but a 32-bit entry cannot reach it. */
	assert_rejected_ram(NULL, 8 * GiB, -ERANGE,
			    "program header 1: segment [0x100000000, 0x100002000) reaches above 4 GiB");
}

static void test_segment_overlaps_boot_area(void **state)
{
	build_elf32();
	phdr32(2)->p_paddr = BOOT_AREA_END - 0x100;
	assert_rejected(-ERANGE,
			"program header 2: segment [0x9f00, 0xbf00) overlaps the boot information area [0x6000, 0xa000)");
}

static void test_segments_overlap_each_other(void **state)
{
	build_elf32();
	phdr32(2)->p_paddr = TEXT_ADDR + 0x100;
	assert_rejected(-ENOEXEC,
			"program header 0 and program header 2: segments [0x100000, 0x100200) and [0x100100, 0x102100) overlap");
}

static void test_entry_outside_image(void **state)
{
	build_elf32();
	ehdr32()->e_entry = 0x400000;
	assert_rejected(-ENOEXEC, "entry point 0x400000 lies outside the loaded image");
}

static void test_wrong_class(void **state)
{
	build_elf32();
	img.data[EI_CLASS] = 3;
	assert_rejected(-ENOEXEC, "unsupported ELF class 3");
}

static void test_big_endian(void **state)
{
	build_elf32();
	img.data[EI_DATA] = ELFDATA2MSB;
	assert_rejected(-ENOEXEC, "ELF data encoding 2 is not little-endian");
}

static void test_wrong_machine(void **state)
{
	build_elf32();
	ehdr32()->e_machine = EM_ARM;
	assert_rejected(-ENOEXEC, "ELF machine 40, expected EM_386 (3) for a 32-bit ELF");
}

static void test_elf64_with_i386_machine(void **state)
{
	build_elf64();
	ehdr64()->e_machine = EM_386;
	assert_rejected(-ENOEXEC, "ELF machine 3, expected EM_X86_64 (62) for a 64-bit ELF");
}

static void test_wrong_type(void **state)
{
	build_elf32();
	ehdr32()->e_type = ET_DYN;
	assert_rejected(-ENOEXEC, "ELF type 3 (ET_DYN, position-independent), expected ET_EXEC (2)");
	ehdr32()->e_type = ET_REL;
	assert_rejected(-ENOEXEC, "ELF type 1 (ET_REL, an object file)");
}

/* ---------------------------------------------------------------- RAM, cmdline */

static void test_ram_too_small_for_boot_area(void **state)
{
	build_aout();
	assert_rejected_ram(NULL, 0x8000, -ERANGE,
			    "guest RAM of 32768 bytes does not hold the boot information area [0x6000, 0xa000)");
}

static void test_cmdline_too_long(void **state)
{
	char line[BOOT_CMDLINE_MAX + 2];

	build_elf32();
	memset(line, 'x', BOOT_CMDLINE_MAX + 1);
	line[BOOT_CMDLINE_MAX + 1] = '\0';
	assert_rejected_ram(line, 64 * MiB, -E2BIG,
			    "command line is longer than the limit of 4096 bytes");
}

static void test_cmdline_at_limit_is_passed_whole(void **state)
{
	char line[BOOT_CMDLINE_MAX + 1];
	struct vm_memory mem;
	struct boot_entry entry;
	const struct mb_info *info;

	build_elf32();
	memset(line, 'y', BOOT_CMDLINE_MAX);
	line[BOOT_CMDLINE_MAX] = '\0';
	load_ok(line, 64 * MiB, &mem, &entry);
	info = (const struct mb_info *)guest(&mem, entry.ebx, sizeof(*info));
	assert_string_equal((const char *)guest(&mem, info->cmdline, BOOT_CMDLINE_MAX + 1), line);
	vm_memory_unmap(&mem);
}

/* ---------------------------------------------------------------- info */

static const struct mb_info *load_info(const char *cmdline, uint64_t ram,
				       struct vm_memory *mem)
{
	struct boot_entry entry;

	build_elf32();
	load_ok(cmdline, ram, mem, &entry);
	return (const struct mb_info *)guest(mem, entry.ebx, sizeof(struct mb_info));
}

static void assert_mmap_entry(const struct vm_memory *mem, const struct mb_info *info,
			      unsigned int i, uint64_t base, uint64_t length, uint32_t type)
{
	struct mb_mmap_entry e;

	assert_true((i + 1) * sizeof(e) <= info->mmap_length);
	memcpy(&e, guest(mem, info->mmap_addr + i * sizeof(e), sizeof(e)), sizeof(e));
	assert_int_equal(e.size, 20);
	assert_int_equal(e.base_addr, base);
	assert_int_equal(e.length, length);
	assert_int_equal(e.type, type);
}

static void test_info_small_vm(void **state)
{
	struct vm_memory mem;
	const struct mb_info *info = load_info("exit=42 console=ttyS0", 64 * MiB, &mem);

	/* 3.3: mem (bit 0), cmdline (2), mmap (6), boot_loader_name (9). */
	assert_int_equal(info->flags, 0x245);
	assert_int_equal(info->mem_lower, 639);
	assert_int_equal(info->mem_upper, 63 * 1024);
	assert_int_equal(info->mmap_length, 4 * 24);
	assert_mmap_entry(&mem, info, 0, 0, 0x9FC00, 1);
	assert_mmap_entry(&mem, info, 1, 0x9FC00, 0x400, 2);
	assert_mmap_entry(&mem, info, 2, 0xF0000, 0x10000, 2);
	assert_mmap_entry(&mem, info, 3, 0x100000, 63 * MiB, 1);
	assert_string_equal((const char *)guest(&mem, info->cmdline, 22), "exit=42 console=ttyS0");
	assert_string_equal((const char *)guest(&mem, info->boot_loader_name, 5), "vmmd");
	/* Everything lies in the boot area, which no segment may use. */
	assert_true(info->mmap_addr >= BOOT_AREA_START && info->mmap_addr < BOOT_AREA_END);
	assert_true(info->cmdline >= BOOT_AREA_START && info->cmdline < BOOT_AREA_END);
	assert_true(info->boot_loader_name >= BOOT_AREA_START &&
		    info->boot_loader_name < BOOT_AREA_END);
	assert_int_equal(info->mods_count, 0);
	vm_memory_unmap(&mem);
}

static void test_info_vm_above_3g_has_high_ram(void **state)
{
	struct vm_memory mem;
	const struct mb_info *info = load_info(NULL, 5 * GiB, &mem);

	assert_int_equal(info->mem_lower, 639);
	/* Up to the hole at 3 GiB, less the first MiB. */
	assert_int_equal(info->mem_upper, 3 * 1024 * 1024 - 1024);
	assert_int_equal(info->mmap_length, 5 * 24);
	assert_mmap_entry(&mem, info, 3, 0x100000, 3 * GiB - MiB, 1);
	assert_mmap_entry(&mem, info, 4, 4 * GiB, 2 * GiB, 1);
	/* No command line given: an empty string, still flagged. */
	assert_true(info->flags & MB_INFO_CMDLINE);
	assert_string_equal((const char *)guest(&mem, info->cmdline, 1), "");
	vm_memory_unmap(&mem);
}

static void test_info_vm_of_exactly_3g(void **state)
{
	struct vm_memory mem;
	const struct mb_info *info = load_info(NULL, 3 * GiB, &mem);

	assert_int_equal(info->mmap_length, 4 * 24);
	assert_mmap_entry(&mem, info, 3, 0x100000, 3 * GiB - MiB, 1);
	vm_memory_unmap(&mem);
}

static void test_reload_clears_old_cmdline(void **state)
{
	struct vm_memory mem;
	struct boot_entry entry;
	struct boot_kernel k;
	struct error e = { 0 };
	const struct mb_info *info = load_info("a-rather-long-command-line", 64 * MiB, &mem);

	k = kernel();
	assert_int_equal(multiboot()->load(&k, "short", &mem, &entry, &e), 0);
	assert_memory_equal(guest(&mem, info->cmdline, 6), "short", 6);
	assert_true(all_zero(guest(&mem, info->cmdline + 6, 20), 20));
	vm_memory_unmap(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elf32_loads_segments_and_bss),
		cmocka_unit_test(test_entry_gdt_is_flat),
		cmocka_unit_test(test_elf64_below_4g_loads),
		cmocka_unit_test(test_elf64_higher_half_entry_is_translated),
		cmocka_unit_test(test_aout_kludge_loads_file_and_bss),
		cmocka_unit_test(test_aout_kludge_load_end_limits_the_copy),
		cmocka_unit_test(test_aout_kludge_wins_over_elf_headers),
		cmocka_unit_test(test_optional_unknown_flags_are_ignored),
		cmocka_unit_test(test_header_at_last_aligned_slot_is_found),
		cmocka_unit_test(test_no_magic),
		cmocka_unit_test(test_bad_checksum),
		cmocka_unit_test(test_header_beyond_8192_bytes),
		cmocka_unit_test(test_header_straddling_8192_bytes),
		cmocka_unit_test(test_header_misaligned),
		cmocka_unit_test(test_video_mode_flag_is_refused),
		cmocka_unit_test(test_unknown_required_flag_is_refused),
		cmocka_unit_test(test_aout_header_truncated_by_file_end),
		cmocka_unit_test(test_aout_load_addr_above_header_addr),
		cmocka_unit_test(test_aout_load_addr_before_file_start),
		cmocka_unit_test(test_aout_load_end_not_above_load),
		cmocka_unit_test(test_aout_load_end_beyond_file),
		cmocka_unit_test(test_aout_bss_end_below_data),
		cmocka_unit_test(test_aout_entry_outside_image),
		cmocka_unit_test(test_aout_image_in_hole),
		cmocka_unit_test(test_not_elf_without_kludge),
		cmocka_unit_test(test_truncated_elf_header),
		cmocka_unit_test(test_truncated_elf64_header),
		cmocka_unit_test(test_truncated_program_header_table),
		cmocka_unit_test(test_program_header_table_offset_overflows),
		cmocka_unit_test(test_bad_phentsize),
		cmocka_unit_test(test_no_program_headers),
		cmocka_unit_test(test_too_many_program_headers),
		cmocka_unit_test(test_too_many_load_segments),
		cmocka_unit_test(test_no_load_segment),
		cmocka_unit_test(test_segment_beyond_file),
		cmocka_unit_test(test_segment_file_offset_overflows),
		cmocka_unit_test(test_filesz_larger_than_memsz),
		cmocka_unit_test(test_segment_in_hole),
		cmocka_unit_test(test_segment_reaching_into_hole),
		cmocka_unit_test(test_segment_beyond_ram),
		cmocka_unit_test(test_segment_overflows_64_bits),
		cmocka_unit_test(test_segment_above_4g),
		cmocka_unit_test(test_segment_overlaps_boot_area),
		cmocka_unit_test(test_segments_overlap_each_other),
		cmocka_unit_test(test_entry_outside_image),
		cmocka_unit_test(test_wrong_class),
		cmocka_unit_test(test_big_endian),
		cmocka_unit_test(test_wrong_machine),
		cmocka_unit_test(test_elf64_with_i386_machine),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_ram_too_small_for_boot_area),
		cmocka_unit_test(test_cmdline_too_long),
		cmocka_unit_test(test_cmdline_at_limit_is_passed_whole),
		cmocka_unit_test(test_info_small_vm),
		cmocka_unit_test(test_info_vm_above_3g_has_high_ram),
		cmocka_unit_test(test_info_vm_of_exactly_3g),
		cmocka_unit_test(test_reload_clears_old_cmdline),
	};
	return cmocka_run_group_tests_name("boot multiboot", tests, NULL, NULL);
}
