/* SPDX-License-Identifier: MIT */
/*
 * 32-bit entry for the protected-mode guests. Three ways in, all in flat
 * 32-bit protected mode with paging off:
 *
 *   _start       multiboot: EAX = 0x2BADB002, EBX = multiboot information
 *   _start_pvh   PVH: EBX = hvm_start_info
 *   _start_flat  flat binary: first byte of the image, EAX = EBX = 0
 *
 * None of them promises a stack or a GDT, so each installs its own before
 * touching a segment register, then calls guest_start32(protocol, eax, ebx).
 */
#include "boot-headers.h"

	/* The multiboot header is its own object (multiboot-header.S), so a
	 * guest can be linked without it to make PVH loaders that try
	 * multiboot first (QEMU) take the PVH entry. */
	PVH_NOTE _start_pvh

	.section .text.flat, "ax"
	.code32
	.globl _start_flat
_start_flat:
	movl $PROTOCOL_FLAT, %ecx
	jmp common

	.section .text.entry, "ax"
	.globl _start, _start_pvh
_start:
	movl $PROTOCOL_MULTIBOOT, %ecx
	jmp common
_start_pvh:
	movl $PROTOCOL_PVH, %ecx
common:
	cli
	cld
	movl $stack_top, %esp
	/* cdecl arguments of guest_start32(protocol, eax, ebx), last first. */
	pushl %ebx
	pushl %eax
	pushl %ecx
	lgdt gdt_descriptor
	ljmp $0x08, $1f
1:	movl $0x10, %eax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %fs
	movw %ax, %gs
	movw %ax, %ss
	/* A flat image has no loader to clear .bss for it. */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb
	call guest_start32
2:	cli
	hlt
	jmp 2b

	.section .rodata
	.balign 8
	/* SDM Vol. 3 3.4.5: flat 4 GiB ring-0 code (0x08) and data (0x10);
	 * accessed bits preset so the table may stay read-only. */
gdt:
	.quad 0
	.quad 0x00CF9B000000FFFF
	.quad 0x00CF93000000FFFF
gdt_end:
gdt_descriptor:
	.word gdt_end - gdt - 1
	.long gdt

	.section .stack, "aw", @nobits
	.balign 16
	.space 8192
stack_top:

	.section .note.GNU-stack, "", @progbits
