/* SPDX-License-Identifier: MIT */
/*
 * Guests of the KVM tests, assembled into the test programs as data and
 * copied into guest memory at the addresses in guests.h. Each is a few
 * instructions: guest ring-0 code may run under an instruction emulator
 * (about 1.5 M instructions/s on the PVM development host), so anything
 * long runs in ring 3.
 */
#include "tests/kvm/guests.h"

	.section .rodata.guests, "a"

/*
 * spin: 32-bit protected mode, anywhere. Counts in EAX forever, so a
 * running vCPU's registers change and a paused one's do not.
 */
	.code32
	.globl guest_spin, guest_spin_end
guest_spin:
	xorl %eax, %eax
1:	incl %eax
	jmp 1b
guest_spin_end:

/*
 * in_spin: 64-bit code for ring 3 (kvm_test_enter_user_mode()), anywhere.
 * One 32-bit IN from PORT_IN, then spins. KVM stores the value userspace
 * supplied into EAX and moves RIP past the IN (to GUEST_IN_SPIN_AFTER_IN)
 * only when it completes the instruction, on the next KVM_RUN.
 */
	.code64
	.globl guest_in_spin, guest_in_spin_end
guest_in_spin:
	xorl %eax, %eax
	inl $PORT_IN, %eax
5:	jmp 5b
guest_in_spin_end:

/*
 * reset_vector: the last 4 KiB page below 4 GiB. A vCPU after RESET or
 * INIT fetches at CS.base + IP = 0xFFFF0000 + 0xFFF0 (SDM §9.1.4), where a
 * near jump leads to the code at the start of the page. It reports what
 * it finds, in real mode and with nothing initialised: EDX, CR0, the x87
 * control and status words, the CS and SS selectors and EFLAGS. Started
 * by a SIPI instead (CS = vector << 8, IP = 0) it runs the same code from
 * the page's start.
 */
	.code16
	.globl guest_reset_vector, guest_reset_vector_end
	.balign 16
guest_reset_vector:
	movl %edx, %ebp
	/* Before any flag-changing instruction. PUSHF with SP = 0 writes at
	 * SS:0xFFFC, RAM. */
	pushfl
	popl %esi
	movl $TAG_RESET_VECTOR, %eax
	outl %eax, $PORT_READY
	movl %ebp, %eax
	outl %eax, $PORT_EDX
	movl %cr0, %eax
	outl %eax, $PORT_CR0
	/* DS = SS = 0 after RESET/INIT/SIPI: a scratch word in low RAM. */
	movw $0x6000, %bx
	fnstcw (%bx)
	movzwl (%bx), %eax
	outl %eax, $PORT_FCW
	/* The memory forms: KVM's instruction emulator, which runs this code
	 * on some hosts, has no FNSTSW AX. */
	fnstsw (%bx)
	movzwl (%bx), %eax
	outl %eax, $PORT_FSW
	movw %cs, %ax
	shll $16, %eax
	movw %ss, %ax
	outl %eax, $PORT_SEGS
	movl %esi, %eax
	outl %eax, $PORT_EFLAGS
	xorl %eax, %eax
	outl %eax, $PORT_DONE
2:	cli
	hlt
	jmp 2b
	.org guest_reset_vector + 0xFF0
	jmp guest_reset_vector
	.org guest_reset_vector + 0x1000
guest_reset_vector_end:

/*
 * init_ipi: 32-bit protected mode at GUEST_INIT_IPI_ADDR. Software-enables
 * its xAPIC (SVR bit 8, SDM §10.9) and sends the IPI whose ICR it finds at
 * +0x800 (low word) and +0x804 (high word) through the xAPIC page at
 * 0xFEE00000 (§10.6.1), reports PORT_DONE and spins.
 */
	.code32
	.globl guest_init_ipi, guest_init_ipi_end
	.balign 16
guest_init_ipi:
	movl $0xFEE00000, %ebx
	movl $0x1FF, 0xF0(%ebx)
	movl (GUEST_INIT_IPI_ADDR + 0x804), %eax
	movl %eax, 0x310(%ebx)
	movl (GUEST_INIT_IPI_ADDR + 0x800), %eax
	movl %eax, 0x300(%ebx)
	movl $TAG_INIT_IPI, %eax
	outl %eax, $PORT_DONE
3:	pause
	jmp 3b
	.org guest_init_ipi + 0x800
	.long 0, 0
guest_init_ipi_end:

/*
 * counter: 64-bit code for ring 3, at GUEST_COUNTER_ADDR. The test puts
 * the vCPU straight into long mode at CPL 3 with IOPL 3 (see
 * kvm_test_enter_user_mode()): no ring-0 code at all, since some hosts
 * (PVM) emulate guest ring 0 slowly and run ring 3 natively only in long
 * mode with paging. The loop counts in ECX, adds 3 to EBX and 1 to XMM0's
 * low dword per iteration, and every 2^COUNTER_SHIFT iterations reports
 * ECX, XMM0 and EBX: after a state save and load the three must go on
 * agreeing (EBX = 3 * ECX, XMM0 = ECX), which they only do if general,
 * SSE and segment state all came back.
 */
	.code64
	.globl guest_counter, guest_counter_end
	.balign 16
guest_counter:
	movl $TAG_COUNTER, %eax
	outl %eax, $PORT_READY
	xorl %ecx, %ecx
	xorl %ebx, %ebx
	pxor %xmm0, %xmm0
	movl $1, %eax
	movd %eax, %xmm1
4:	incl %ecx
	addl $3, %ebx
	paddd %xmm1, %xmm0
	testl $((1 << COUNTER_SHIFT) - 1), %ecx
	jnz 4b
	movl %ecx, %eax
	outl %eax, $PORT_COUNT
	movd %xmm0, %eax
	outl %eax, $PORT_CHECK
	movl %ebx, %eax
	outl %eax, $(PORT_CHECK + 1)
	jmp 4b
guest_counter_end:

/*
 * halt: 32-bit protected mode, anywhere. Reports TAG_HALT and halts with
 * interrupts off, so KVM holds the vCPU in KVM_MP_STATE_HALTED.
 */
	.code32
	.globl guest_halt, guest_halt_end
guest_halt:
	movl $TAG_HALT, %eax
	outl %eax, $PORT_READY
	cli
6:	hlt
	jmp 6b
guest_halt_end:

	.section .note.GNU-stack, "", @progbits
