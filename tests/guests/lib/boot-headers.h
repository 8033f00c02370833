/* SPDX-License-Identifier: MIT */
/*
 * Assembler macros for the two boot headers every ELF guest carries, so one
 * file boots with a multiboot loader (vmmd, QEMU -M pc -kernel) and with a
 * PVH loader (QEMU -M microvm -kernel, cloud-hypervisor, firecracker).
 */
#ifndef GUEST_BOOT_HEADERS_H
#define GUEST_BOOT_HEADERS_H

#define MB_HEADER_MAGIC 0x1BADB002
/* Multiboot 0.6.96 3.1.2: bit 1 asks for mem_* and the memory map. */
#define MB_HEADER_FLAGS 0x00000002

/* Entry stubs tell the C code which protocol started them. */
#define PROTOCOL_MULTIBOOT 0
#define PROTOCOL_PVH 1
#define PROTOCOL_FLAT 2

/* 3.1.1: 32-bit aligned, in the first 8192 bytes (the linker scripts put
 * .multiboot first). */
.macro MULTIBOOT_HEADER
	.pushsection .multiboot, "a"
	.balign 4
	.long MB_HEADER_MAGIC
	.long MB_HEADER_FLAGS
	.long -(MB_HEADER_MAGIC + MB_HEADER_FLAGS)
	.popsection
.endm

/*
 * Xen's x86/HVM direct boot ABI: an ELF note named "Xen" of type
 * XEN_ELFNOTE_PHYS32_ENTRY (18) holds the physical 32-bit entry point.
 * 64-bit objects store it as a quad, as loaders that read 8 bytes for
 * ELFCLASS64 expect; the low half is the same value.
 */
.macro PVH_NOTE entry
	.pushsection .note.Xen, "a", @note
	.balign 4
	.long 4                 /* n_namesz: "Xen\0" */
	.long 2f - 1f           /* n_descsz */
	.long 18                /* n_type: XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
1:
#ifdef __x86_64__
	.quad \entry
#else
	.long \entry
#endif
2:
	.balign 4
	.popsection
.endm

#endif
