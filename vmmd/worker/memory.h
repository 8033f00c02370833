/* SPDX-License-Identifier: MIT */
/*
 * Guest physical memory of one VM: up to two RAM regions around the PC
 * hole below 4 GiB, each one anonymous MAP_NORESERVE mapping.
 *
 *   [0, min(ram, 3 GiB))                 low RAM
 *   [3 GiB, 4 GiB)                       hole: LAPIC/IOAPIC, TSS, identity map
 *   [4 GiB, 4 GiB + ram - 3 GiB)         high RAM, only if ram > 3 GiB
 */
#ifndef VMMD_WORKER_MEMORY_H
#define VMMD_WORKER_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

#define VM_MEM_HOLE_START 0xC0000000ULL
#define VM_MEM_HOLE_END 0x100000000ULL
#define VM_MEM_MAX_REGIONS 2

struct vm_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva; /* NULL until vm_memory_map() */
};

struct vm_memory {
	struct vm_mem_region region[VM_MEM_MAX_REGIONS];
	unsigned int nr_regions;
	uint64_t ram_size;
};

/* Fills *ret with the region layout for ram_size bytes; maps nothing. */
void vm_memory_layout(uint64_t ram_size, struct vm_memory *ret);

/* mmap()s every region (MAP_NORESERVE). On failure nothing stays mapped. */
int vm_memory_map(struct vm_memory *mem, struct error *err);

/* Unmaps every region; accepts a layout that was never mapped. */
void vm_memory_unmap(struct vm_memory *mem);

/*
 * Host pointer for guest-physical [gpa, gpa + len) when the whole range lies
 * inside one mapped RAM region, else NULL (hole, beyond RAM, or overflow).
 */
void *vm_memory_ptr(const struct vm_memory *mem, uint64_t gpa, uint64_t len);

/* True when [gpa, gpa + len) is entirely guest RAM (mapped or not). */
bool vm_memory_is_ram(const struct vm_memory *mem, uint64_t gpa, uint64_t len);

#endif
