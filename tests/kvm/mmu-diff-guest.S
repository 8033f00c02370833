/* SPDX-License-Identifier: MIT */
/*
 * Guest code of the mmu/ differential test: one page of code per operand
 * width, copied into a supervisor page (run at CPL 0) and a user page (run
 * at CPL 3). The host sets every register, so each case runs one access
 * instruction and one OUT; a fault enters the exception stub, which runs
 * four instructions. Guest ring 0 may be emulated at about 1.5 M
 * instructions/s, so nothing here loops.
 *
 * The host never resumes the guest after a report: the HLTs only stop a
 * runaway vCPU (at CPL 3 they raise #GP, which the host sees as a report
 * of vector 13 from the wrong place).
 */
#include "tests/kvm/mmu-diff.h"

/* Vectors that push an error code (SDM Vol. 3A Table 6-1). */
#define HAS_ERROR_CODE(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || \
			   (v) == 21 || (v) == 29 || (v) == 30)

	.section .rodata.diff_guest, "a"

.macro diff_code bits, ax, si, di, dx
	.code\bits
	.balign 16
	.globl diff_code\bits, diff_code\bits\()_end
diff_code\bits:
	movl (%\ax), %ecx
	outl %eax, $DIFF_PORT_DONE
	hlt

	.org diff_code\bits + DIFF_STUB_WRITE
	movl %ecx, (%\ax)
	outl %eax, $DIFF_PORT_DONE
	hlt

	/* The payload at the target reports on DIFF_PORT_FETCHED. */
	.org diff_code\bits + DIFF_STUB_FETCH
	jmp *%\ax

	/* A segment load reads the descriptor: an implicit supervisor access
	 * (SDM Vol. 3A §4.6.1), at CPL 3 too. */
	.org diff_code\bits + DIFF_STUB_LOAD_FS
	movw %dx, %fs
	outl %eax, $DIFF_PORT_DONE
	hlt

	/* One 16-byte stub per vector: a uniform frame of vector and error
	 * code (0 when the CPU pushes none). */
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.org diff_code\bits + DIFF_STUB_VECTOR(\v)
	.if !HAS_ERROR_CODE(\v)
	push $0
	.endif
	push $\v
	jmp diff_report\bits
	.endr

diff_report\bits:
	pop %\ax
	pop %\si
	pop %\di
	mov %cr2, %\dx
	outl %eax, $DIFF_PORT_EXCEPTION
	hlt
diff_code\bits\()_end:
.endm

	diff_code 32, eax, esi, edi, edx
	diff_code 64, rax, rsi, rdi, rdx

	.section .note.GNU-stack, "", @progbits
