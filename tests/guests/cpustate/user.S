/* SPDX-License-Identifier: MIT */
/*
 * Ring 3 of cpustate (cpustate.h): x87, MXCSR and XMM0-15 get known values,
 * then R15 counts up by one per loop.
 * Runs natively (ring 3 is not emulated), so the counter moves fast.
 */
#include "cpustate.h"

	.text
	.globl user_main
user_main:
	fninit
	fldcw fcw
	fld1                    /* ST2 = 1.0 once the next two are pushed */
	fldpi                   /* ST1 = pi */
	fldz                    /* ST0 = +0.0; TOP = 5 */
	ldmxcsr mxcsr
	movdqu xmm_values + 16 * 0, %xmm0
	movdqu xmm_values + 16 * 1, %xmm1
	movdqu xmm_values + 16 * 2, %xmm2
	movdqu xmm_values + 16 * 3, %xmm3
	movdqu xmm_values + 16 * 4, %xmm4
	movdqu xmm_values + 16 * 5, %xmm5
	movdqu xmm_values + 16 * 6, %xmm6
	movdqu xmm_values + 16 * 7, %xmm7
	movdqu xmm_values + 16 * 8, %xmm8
	movdqu xmm_values + 16 * 9, %xmm9
	movdqu xmm_values + 16 * 10, %xmm10
	movdqu xmm_values + 16 * 11, %xmm11
	movdqu xmm_values + 16 * 12, %xmm12
	movdqu xmm_values + 16 * 13, %xmm13
	movdqu xmm_values + 16 * 14, %xmm14
	movdqu xmm_values + 16 * 15, %xmm15
	xorl %r15d, %r15d
1:	incq %r15
	jmp 1b

	.section .rodata
	.balign 16
xmm_values:
	.set byte, 0
	.rept 256
	.byte byte
	.set byte, byte + 1
	.endr
fcw:
	.word CPUSTATE_FCW
	.balign 4
mxcsr:
	.long CPUSTATE_MXCSR

	.section .note.GNU-stack, "", @progbits
