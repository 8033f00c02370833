/* SPDX-License-Identifier: MIT */
/*
 * Boot loaders: put a kernel image into guest RAM and describe the state the
 * boot vCPU starts in. docs/boot.md is the user-facing description.
 *
 * Every protocol ("multiboot", "flat") is a struct boot_loader with two steps:
 *
 *   check  pure: parses and validates the image bytes and the command line
 *          against a RAM layout (vm_memory_layout(), nothing mapped). The
 *          daemon runs it at vm.create, before any VM exists.
 *   load   re-validates, copies the image into mapped guest RAM, writes the
 *          protocol's boot information and fills a struct boot_entry.
 *
 * Both return 0 or a negative errno with a message in *err naming the kernel
 * and what is wrong with it:
 *
 *   -ENOEXEC     the image is malformed (headers, checksums, truncation)
 *   -EOPNOTSUPP  the image asks for something vmmd cannot provide
 *   -ERANGE      the image does not fit this VM's memory layout
 *   -E2BIG       the command line is longer than BOOT_CMDLINE_MAX
 *   -EINVAL      unknown protocol, or a command line the protocol cannot pass
 */
#ifndef VMMD_BOOT_BOOT_H
#define VMMD_BOOT_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "vmmd/worker/memory.h"

/* Largest kernel file boot_read_kernel() accepts by default. */
#define BOOT_KERNEL_MAX_SIZE (64ULL << 20)
/* Longest command line in bytes, not counting the terminating NUL. */
#define BOOT_CMDLINE_MAX 4096

/*
 * Guest-physical area the loaders own: a flat GDT, the initial multiboot
 * stack and the multiboot information. No kernel segment may overlap it.
 */
#define BOOT_AREA_START 0x6000ULL
#define BOOT_AREA_END 0xA000ULL

/* Flat binaries are loaded and entered here (docs/boot.md). */
#define BOOT_FLAT_LOAD_ADDR 0x100000ULL

/* A kernel image in host memory. */
struct boot_kernel {
	const char *name; /* for messages: the path as the user gave it */
	const uint8_t *data;
	size_t size;
};

/*
 * Initial state of the boot vCPU: 32-bit flat protected mode, paging off,
 * interrupts off, CR4 and EFER zero. CS and DS/ES/FS/GS/SS are flat 4 GiB
 * segments (base 0, limit 0xFFFFFFFF, 32-bit; code execute/read, data
 * read/write) and their selectors index the GDT the loader wrote at
 * gdt_base, so a kernel that reloads them before installing its own GDT
 * keeps the same segments.
 */
struct boot_entry {
	uint32_t eip;
	uint32_t esp;
	uint32_t eax;
	uint32_t ebx;
	uint32_t eflags;
	uint64_t cr0;
	uint64_t gdt_base;
	uint16_t gdt_limit;
	uint16_t code_selector;
	uint16_t data_selector;
};

struct boot_loader {
	const char *name;
	const char *description;
	/* Pure validation; mem needs only its layout. cmdline may be NULL. */
	int (*check)(const struct boot_kernel *kernel, const char *cmdline,
		     const struct vm_memory *mem, struct error *err);
	/*
	 * Loads into mapped guest RAM and fills *ret. On failure *ret is
	 * untouched and guest RAM may hold part of the image.
	 */
	int (*load)(const struct boot_kernel *kernel, const char *cmdline,
		    struct vm_memory *mem, struct boot_entry *ret,
		    struct error *err);
};

/* The loader for protocol name, or NULL. */
const struct boot_loader *boot_loader_find(const char *name);

/* Like boot_loader_find(), with an -EINVAL error listing the protocols. */
int boot_loader_get(const char *name, const struct boot_loader **ret,
		    struct error *err);

/*
 * Reads the kernel file at path into memory. Fails with a message naming
 * the file when it is missing (-ENOENT), unreadable (-EACCES, -EIO), a
 * directory (-EISDIR), not a regular file (-EINVAL), empty (-ENOEXEC) or
 * larger than max_size bytes (-EFBIG). On success the caller owns *ret and
 * releases it with boot_kernel_release().
 */
int boot_read_kernel(const char *path, uint64_t max_size,
		     struct boot_kernel *ret, struct error *err);

/* Frees what boot_read_kernel() allocated and zeroes *kernel; accepts a
 * zeroed kernel. Only for kernels that boot_read_kernel() filled. */
void boot_kernel_release(struct boot_kernel *kernel);

#endif
