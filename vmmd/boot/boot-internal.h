/* SPDX-License-Identifier: MIT */
/*
 * Shared by the boot loaders: a load plan (where each piece of the image
 * goes in guest RAM), its validation against a RAM layout, and the flat
 * 32-bit entry state every protocol here starts from.
 */
#ifndef VMMD_BOOT_BOOT_INTERNAL_H
#define VMMD_BOOT_BOOT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "vmmd/boot/boot.h"

/* Named limits on what an image may declare. */
#define BOOT_MAX_SEGMENTS 32
#define BOOT_ELF_MAX_PHDRS 128

/*
 * Boot area layout (docs/boot.md): a flat GDT, then the stack that
 * multiboot kernels start on, then room for protocol information.
 */
#define BOOT_GDT_ADDR BOOT_AREA_START
#define BOOT_GDT_ENTRIES 4
#define BOOT_CODE_SELECTOR 0x10
#define BOOT_DATA_SELECTOR 0x18
#define BOOT_STACK_TOP 0x8000ULL
#define BOOT_INFO_ADDR BOOT_STACK_TOP

/* SDM Vol. 3 2.5: CR0.PE enables protection; ET is hardwired to 1. */
#define BOOT_CR0_PE BIT(0)
#define BOOT_CR0_ET BIT(4)
/* SDM Vol. 1 3.4.3: EFLAGS bit 1 is reserved and always 1. */
#define BOOT_EFLAGS_FIXED 0x2

/* One contiguous piece of guest memory: file bytes, then zeroes. */
struct boot_segment {
	uint64_t gpa;
	uint64_t offset; /* in the image */
	uint64_t file_size;
	uint64_t mem_size;
	char what[40]; /* "program header 3": names the piece in messages */
};

struct boot_plan {
	struct boot_segment segment[BOOT_MAX_SEGMENTS];
	unsigned int nr_segments;
	uint64_t entry; /* guest-physical */
};

extern const struct boot_loader boot_loader_multiboot;
extern const struct boot_loader boot_loader_flat;

/* error_set() with "kernel 'NAME': " in front. */
int boot_error(const struct boot_kernel *kernel, struct error *err, int code,
	       const char *fmt, ...) _printf_(4, 5);

/* Appends a segment; -EOPNOTSUPP beyond BOOT_MAX_SEGMENTS. */
int boot_plan_add(const struct boot_kernel *kernel, struct boot_plan *plan,
		  const struct boot_segment *segment, struct error *err);

/*
 * Checks that every segment lies in guest RAM below 4 GiB, outside the boot
 * area and apart from the others, and that the entry point is inside one.
 */
int boot_plan_check(const struct boot_kernel *kernel,
		    const struct boot_plan *plan, const struct vm_memory *mem,
		    struct error *err);

/* Copies every segment into mapped guest RAM, zero-filling past file_size. */
int boot_plan_copy(const struct boot_kernel *kernel,
		   const struct boot_plan *plan, struct vm_memory *mem,
		   struct error *err);

/* -E2BIG when cmdline (NULL means empty) exceeds BOOT_CMDLINE_MAX. */
int boot_cmdline_check(const struct boot_kernel *kernel, const char *cmdline,
		       struct error *err);

/* True when [start, start + size) and [other, other + other_size) meet. */
bool boot_ranges_overlap(uint64_t start, uint64_t size, uint64_t other,
			 uint64_t other_size);

/*
 * Writes the flat GDT into the boot area and fills *ret with flat 32-bit
 * protected mode at eip with the given registers.
 */
int boot_entry_flat32(const struct boot_kernel *kernel, struct vm_memory *mem,
		      uint32_t eip, uint32_t esp, uint32_t eax, uint32_t ebx,
		      struct boot_entry *ret, struct error *err);

/*
 * ELF executables (System V gABI, "Program Header"): one segment per PT_LOAD
 * with a non-zero p_memsz at its p_paddr; the entry point is e_entry moved
 * from the virtual to the physical address of the segment containing it.
 * Accepts ELFCLASS32 EM_386 and ELFCLASS64 EM_X86_64, little-endian ET_EXEC.
 */
int boot_elf_plan(const struct boot_kernel *kernel, struct boot_plan *ret,
		  struct error *err);

#endif
