/* SPDX-License-Identifier: MIT */
/* Ring 0 of cpustate: the system-call MSRs, then ring 3 (see cpustate.h). */
#include "../demo/demo.h"
#include "cpustate.h"

void kernel_main(uint32_t protocol, uint32_t eax, uint32_t ebx);
uint64_t syscall_dispatch(uint64_t nr, uint64_t a0, uint64_t a1);
struct exception_frame;
__attribute__((noreturn)) void exception_report(const struct exception_frame *f);

/* user.S */
__attribute__((noreturn)) void user_main(void);

/* SDM Vol. 4 Table 2-2. */
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_STAR 0xC0000081
#define MSR_LSTAR 0xC0000082
#define MSR_CSTAR 0xC0000083
#define MSR_SFMASK 0xC0000084
#define MSR_KERNEL_GS_BASE 0xC0000102

void kernel_main(uint32_t protocol, uint32_t eax, uint32_t ebx)
{
	boot_init((enum boot_protocol)protocol, eax, ebx);
	serial_init();
	wrmsr(MSR_IA32_SYSENTER_CS, CPUSTATE_SYSENTER_CS);
	wrmsr(MSR_IA32_SYSENTER_ESP, CPUSTATE_SYSENTER_ESP);
	wrmsr(MSR_IA32_SYSENTER_EIP, CPUSTATE_SYSENTER_EIP);
	wrmsr(MSR_STAR, CPUSTATE_STAR);
	wrmsr(MSR_LSTAR, CPUSTATE_LSTAR);
	wrmsr(MSR_CSTAR, CPUSTATE_CSTAR);
	wrmsr(MSR_SFMASK, CPUSTATE_SFMASK);
	wrmsr(MSR_KERNEL_GS_BASE, CPUSTATE_KERNEL_GS_BASE);
	print("cpustate: msrs set, ring 3 counts in r15\n");
	/* Ring 3 never prints nor makes system calls: no IDT or TSS needed. */
	enter_user(user_main, (void *)((uintptr_t)user_stack_top - 8));
}

/* The demo's entry refers to these; ring 3 makes no system calls and
 * takes no exceptions (with no IDT loaded, one would be a triple fault). */
uint64_t syscall_dispatch(uint64_t nr, uint64_t a0, uint64_t a1)
{
	guest_exit(1);
}

void exception_report(const struct exception_frame *f)
{
	guest_exit(3);
}
