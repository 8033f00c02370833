/* SPDX-License-Identifier: MIT */
/*
 * Demo entry: from the 32-bit multiboot or PVH entry into long mode with
 * identity-mapped 2 MiB pages, then kernel_main(protocol, eax, ebx).
 * Everything that can be a link-time constant is (page tables, GDT) to
 * keep ring-0 instruction counts low: ring 0 may be emulated. The
 * cpustate guest is built on this entry too, with its own kernel_main.
 */
#include "boot-headers.h"

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_DS 0x18
#define USER_CS 0x20

/* SDM Vol. 3 2.5 control registers, 2.2.1 EFER. */
#define CR0_PE (1 << 0)
#define CR0_MP (1 << 1)
#define CR0_ET (1 << 4)
#define CR0_NE (1 << 5)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define CR4_OSFXSR (1 << 9)       /* SSE with FXSAVE-style state, no XSAVE */
#define CR4_OSXMMEXCPT (1 << 10)
#define MSR_EFER 0xC0000080
#define EFER_LME (1 << 8)

	/* The multiboot header comes from lib/multiboot-header.S. */
	PVH_NOTE _start_pvh

	.section .text.entry, "ax"
	.code32
	.globl _start, _start_pvh
_start:
	movl $PROTOCOL_MULTIBOOT, %ecx
	jmp 1f
_start_pvh:
	movl $PROTOCOL_PVH, %ecx
1:	cli
	cld
	/* kernel_main's arguments, System V order: EDI, ESI, EDX. */
	movl %ecx, %edi
	movl %eax, %esi
	movl %ebx, %edx
	lgdt gdt_descriptor
	movl $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	/* EM and TS clear, MP set: SSE and x87 usable without faults. */
	movl $(CR0_PG | CR0_NE | CR0_ET | CR0_MP | CR0_PE), %eax
	movl %eax, %cr0
	ljmp $KERNEL_CS, $long_mode

	.code64
long_mode:
	movl $KERNEL_DS, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	movq $kernel_stack_top, %rsp
	/* Upper halves of 64-bit registers are undefined after the switch. */
	movl %edi, %edi
	movl %esi, %esi
	movl %edx, %edx
	call kernel_main
2:	cli
	hlt
	jmp 2b

/* enter_user(entry, stack): iretq to ring 3, interrupts off. */
	.text
	.globl enter_user
enter_user:
	movl $(USER_DS | 3), %eax
	movl %eax, %ds
	movl %eax, %es
	pushq $(USER_DS | 3)    /* SS */
	pushq %rsi              /* RSP */
	pushq $0x2              /* RFLAGS: IF clear, IOPL 0 */
	pushq $(USER_CS | 3)    /* CS */
	pushq %rdi              /* RIP */
	iretq

/*
 * System call (INT3 from ring 3, demo.h): the CPU switched to TSS.RSP0 and
 * pushed five quadwords onto a 16-byte aligned stack; RIP already points
 * after the INT3. Caller-saved registers are restored, so user code only
 * loses RAX.
 */
	.globl syscall_entry
syscall_entry:
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	subq $8, %rsp           /* 16-byte alignment at the call */
	movq %rsi, %rdx
	movq %rdi, %rsi
	movq %rax, %rdi
	call syscall_dispatch
	addq $8, %rsp
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	iretq

/*
 * Exceptions 0-31: each stub pushes a zero where the CPU pushes no error
 * code (SDM Vol. 3 Table 6-1), then its vector, and jumps to the common
 * part, which hands the whole frame to exception_report().
 */
.macro EXCEPTION vector
	.balign 16
	.if \vector == 8 || (\vector >= 10 && \vector <= 14) || \vector == 17 || \vector == 21 || \vector == 29 || \vector == 30
	.else
	pushq $0
	.endif
	pushq $\vector
	jmp exception_common
.endm

	.balign 16
	.globl exception_stubs
exception_stubs:
	.altmacro
	.set vector, 0
	.rept 32
	EXCEPTION %vector
	.set vector, vector + 1
	.endr
	.noaltmacro

exception_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	call exception_report
3:	cli
	hlt
	jmp 3b

	.section .data.page_tables, "aw"
	/* SDM Vol. 3 4.5: PML4 -> PDPT -> PD of 2 MiB pages mapping the first
	 * GiB 1:1; present, writable and user (bit 2) at every level, so ring
	 * 3 reaches its code and data without a second address space. */
	.balign 4096
pml4:
	.quad pdpt + 0x7
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x7
	.fill 511, 8, 0
pd:
	.set page, 0
	.rept 512
	.quad (page << 21) | 0x87       /* P | RW | US | PS */
	.set page, page + 1
	.endr

	.data
	.balign 16
	/* SDM Vol. 3 3.4.5 and 5.2.1: L=1 code segments for long mode; the
	 * 16-byte TSS descriptor at 0x28 is filled in by kernel.c. */
	.globl gdt
gdt:
	.quad 0
	.quad 0x00AF9B000000FFFF        /* 0x08 ring-0 code, 64-bit */
	.quad 0x00CF93000000FFFF        /* 0x10 ring-0 data */
	.quad 0x00CFF3000000FFFF        /* 0x18 ring-3 data */
	.quad 0x00AFFB000000FFFF        /* 0x20 ring-3 code, 64-bit */
	.quad 0, 0                      /* 0x28 TSS */
gdt_end:
	.balign 8
gdt_descriptor:
	.word gdt_end - gdt - 1
	.quad gdt

	.section .stack, "aw", @nobits
	.balign 16
	.space 16384
	.globl kernel_stack_top
kernel_stack_top:
	.space 4096
	.globl double_fault_stack_top
double_fault_stack_top:
	.space 65536
	.globl user_stack_top
user_stack_top:

	.section .note.GNU-stack, "", @progbits
