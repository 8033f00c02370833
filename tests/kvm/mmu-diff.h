/* SPDX-License-Identifier: MIT */
/*
 * The differential test of mmu/ against KVM (test-kvm-mmu-diff): guest
 * memory layout, report ports and guest-code offsets, shared by the guest
 * code (mmu-diff-guest.S) and the host side. docs/mmu.md, "Differential
 * test against KVM", describes the test.
 */
#ifndef VMMD_TESTS_KVM_MMU_DIFF_H
#define VMMD_TESTS_KVM_MMU_DIFF_H

/*
 * Guest-physical layout. The first 2 MiB hold the fixed scaffolding and are
 * identity-mapped in every paging mode (supervisor, except the user code
 * and stack pages); the randomized page-table chain of each case lives in
 * its own pages and never shares an entry with the scaffolding.
 */
#define DIFF_GDT 0x1000
#define DIFF_IDT64 0x2000 /* 32 gates of 16 bytes */
#define DIFF_IDT32 0x3000 /* 32 gates of 8 bytes */
#define DIFF_TSS64 0x4000
#define DIFF_TSS32 0x5000
#define DIFF_KCODE64 0x6000 /* supervisor pages */
#define DIFF_KCODE32 0x7000
#define DIFF_UCODE64 0x8000 /* user pages: the same code, run at CPL 3 */
#define DIFF_UCODE32 0x9000
#define DIFF_KSTACK_TOP 0xC000 /* two supervisor pages below */
#define DIFF_USTACK_TOP 0xD000 /* one user page below */
#define DIFF_SCAFFOLD_END 0x200000

/* Scaffolding page tables (one identity map of the first 2 MiB per format). */
#define DIFF_PT32 0x10000   /* 32-bit page table */
#define DIFF_PT64 0x11000   /* PAE / 4-level / 5-level page table */
#define DIFF_PD64 0x12000   /* PAE / 4-level / 5-level page directory */
#define DIFF_PDPT64 0x13000 /* 4-level / 5-level PDPT */
#define DIFF_PML4 0x14000   /* 5-level: the PML4 below PML5E[0] */

/* Per-case page tables: the root (CR3) and one table per lower level. */
#define DIFF_CASE_ROOT 0x20000
#define DIFF_CASE_TABLE(n) (0x21000 + (n) * 0x1000) /* n = 0..3 */

/* A read-only slot (KVM_MEM_READONLY, "ROM") right after RAM: in some
 * cases one table of the chain lives there, page DIFF_ROM_TABLE(level - 1),
 * and the CPU must not set its A/D bits (MMU.md §4, E35). */
#define DIFF_ROM_BASE 0x2000000ULL
#define DIFF_ROM_SIZE 0x5000ULL
#define DIFF_ROM_TABLE(n) (DIFF_ROM_BASE + (n) * 0x1000ULL) /* n = 0..4 */

/* Target data: low RAM above 16 MiB and a slot at 4 GiB (frames above
 * 4 GiB: PSE-36 and PAE/long-mode frames). */
#define DIFF_RAM_SIZE (32ULL << 20)
#define DIFF_DATA_LOW 0x1000000ULL
#define DIFF_DATA_LOW_SIZE (16ULL << 20)
#define DIFF_DATA_HIGH 0x100000000ULL
#define DIFF_DATA_HIGH_SIZE (8ULL << 20)

/* GDT selectors (DIFF_GDT): code/data for both rings and both widths. */
#define DIFF_SEL_KCODE64 0x08
#define DIFF_SEL_KDATA 0x10
#define DIFF_SEL_KCODE32 0x18
#define DIFF_SEL_UCODE64 0x23
#define DIFF_SEL_UDATA 0x2B
#define DIFF_SEL_UCODE32 0x33
#define DIFF_SEL_TSS64 0x38 /* 16-byte descriptor */
#define DIFF_SEL_TSS32 0x48
#define DIFF_GDT_LIMIT 0x4F

/* Both TSSs are the architectural 0x68 bytes (SDM Vol. 3A §7.7, §7.2.1). */
#define DIFF_TSS_LIMIT 0x67

/* Ports the guest reports on (32-bit OUT). */
#define DIFF_PORT_DONE 0xD0	 /* the access completed */
#define DIFF_PORT_EXCEPTION 0xD1 /* EAX = vector, ESI = error code, EDI = RIP, EDX = CR2 */
#define DIFF_PORT_FETCHED 0xD2	 /* fetch payload ran: EAX = its tag */

/*
 * Entry points in each code page. RAX holds the target linear address, ECX
 * the value to write, DX the segment selector to load; read data lands in
 * ECX.
 */
#define DIFF_STUB_READ 0x00
#define DIFF_STUB_WRITE 0x20
#define DIFF_STUB_FETCH 0x40
#define DIFF_STUB_LOAD_FS 0x60
#define DIFF_STUB_VECTOR(v) (0x100 + (v) * 16)
#define DIFF_VECTORS 32

/* The fetch payload: "mov $tag, %eax; out %eax, $DIFF_PORT_FETCHED; hlt",
 * the same bytes in 32- and 64-bit code. */
#define DIFF_FETCH_PAYLOAD_SIZE 8

#ifndef __ASSEMBLER__
#include <stdint.h>

extern const uint8_t diff_code32[], diff_code32_end[];
extern const uint8_t diff_code64[], diff_code64_end[];
#endif

#endif
