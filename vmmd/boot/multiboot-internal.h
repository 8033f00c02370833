/* SPDX-License-Identifier: MIT */
/*
 * Multiboot Specification version 0.6.96: the OS image header (3.1) and the
 * boot information structure (3.3), as the loader and its tests see them.
 * All fields are little-endian; addresses are guest-physical.
 */
#ifndef VMMD_BOOT_MULTIBOOT_INTERNAL_H
#define VMMD_BOOT_MULTIBOOT_INTERNAL_H

#include <stdint.h>

#include "vmmd/boot/boot-internal.h"

/* 3.1.1: the header lies within the first 8192 bytes, 32-bit aligned. */
#define MB_HEADER_SEARCH 8192
#define MB_HEADER_ALIGN 4
#define MB_HEADER_MAGIC 0x1BADB002U
/* 3.2: EAX holds this when the kernel starts. */
#define MB_BOOTLOADER_MAGIC 0x2BADB002U

/* 3.1.2 header flags. Bits 0-15 are requirements, 16-31 optional. */
#define MB_FLAG_PAGE_ALIGN BIT(0)
#define MB_FLAG_MEMORY_INFO BIT(1)
#define MB_FLAG_VIDEO_MODE BIT(2)
#define MB_FLAG_AOUT_KLUDGE BIT(16)
#define MB_REQUIRED_FLAGS BITS(0, 15)
/* Page-aligned modules hold trivially: vmmd loads no modules. */
#define MB_SUPPORTED_FLAGS (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMORY_INFO)

/* 3.1.1: header sizes, by the flags that make later fields valid. */
#define MB_HEADER_SIZE 12
#define MB_HEADER_AOUT_SIZE 32

struct mb_header {
	uint32_t magic;
	uint32_t flags;
	uint32_t checksum;
	/* Valid when MB_FLAG_AOUT_KLUDGE is set (3.1.3). */
	uint32_t header_addr;
	uint32_t load_addr;
	uint32_t load_end_addr;
	uint32_t bss_end_addr;
	uint32_t entry_addr;
} __attribute__((packed));

/* 3.3 boot information flags. */
#define MB_INFO_MEMORY BIT(0)
#define MB_INFO_CMDLINE BIT(2)
#define MB_INFO_MEM_MAP BIT(6)
#define MB_INFO_BOOT_LOADER_NAME BIT(9)

/* 3.3: fields up to the VBE ones; vmmd sets no flag beyond bit 9. */
struct mb_info {
	uint32_t flags;
	uint32_t mem_lower; /* KiB from 0 */
	uint32_t mem_upper; /* KiB from 1 MiB up to the first hole */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length; /* bytes */
	uint32_t mmap_addr;
	uint32_t drives_length;
	uint32_t drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe_control_info;
	uint32_t vbe_mode_info;
	uint16_t vbe_mode;
	uint16_t vbe_interface_seg;
	uint16_t vbe_interface_off;
	uint16_t vbe_interface_len;
} __attribute__((packed));

/* 3.3 memory map entry; size counts the bytes after itself. */
struct mb_mmap_entry {
	uint32_t size;
	uint64_t base_addr;
	uint64_t length;
	uint32_t type;
} __attribute__((packed));

#define MB_MEMORY_AVAILABLE 1
#define MB_MEMORY_RESERVED 2

/* Where vmmd puts the information in the boot area (docs/boot.md). */
#define MB_INFO_ADDR BOOT_INFO_ADDR
#define MB_MMAP_ADDR (MB_INFO_ADDR + 0x100)
#define MB_MMAP_MAX_ENTRIES 8
#define MB_LOADER_NAME_ADDR (MB_INFO_ADDR + 0x200)
#define MB_LOADER_NAME "vmmd"
#define MB_CMDLINE_ADDR (MB_INFO_ADDR + 0x300)

_Static_assert(sizeof(struct mb_info) == 88, "multiboot info layout (3.3)");
_Static_assert(sizeof(struct mb_mmap_entry) == 24, "mmap entry layout (3.3)");
_Static_assert(MB_INFO_ADDR + sizeof(struct mb_info) <= MB_MMAP_ADDR,
	       "info and mmap apart");
_Static_assert(MB_MMAP_ADDR + MB_MMAP_MAX_ENTRIES * sizeof(struct mb_mmap_entry) <=
	       MB_LOADER_NAME_ADDR, "mmap and name apart");
_Static_assert(MB_CMDLINE_ADDR + BOOT_CMDLINE_MAX + 1 <= BOOT_AREA_END,
	       "command line fits in the boot area");

/* PC memory below 1 MiB that the mmap reports reserved. */
#define MB_EBDA_START 0x9FC00ULL
#define MB_EBDA_END 0xA0000ULL
#define MB_BIOS_START 0xF0000ULL
#define MB_BIOS_END 0x100000ULL
#define MB_HIGH_MEMORY 0x100000ULL

#endif
