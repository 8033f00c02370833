/* SPDX-License-Identifier: MIT */
/*
 * The demo guest: a small ring-0 kernel (entry.S, kernel.c) that enters
 * long mode and runs user.c in ring 3. Ring 0 only sets up the machine,
 * measures the TSC frequency and serves two system calls through int 0x80;
 * all computation happens in ring 3.
 */
#ifndef DEMO_H
#define DEMO_H

#include "lib/guest.h"

/* GDT selectors (entry.S). */
#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_DS 0x18
#define USER_CS 0x20
#define TSS_SELECTOR 0x28
#define GDT_TSS_INDEX 5

/*
 * System calls are INT3 through a DPL-3 gate for vector 3. The usual ways
 * fail on a host whose KVM runs guest ring 3 natively and emulates ring 0
 * (PVM): "int $0x80" and SYSENTER raise #UD in ring 3, and SYSCALL jumps
 * to LSTAR without leaving ring 3. Exceptions, the breakpoint among them,
 * are delivered through the IDT as the SDM says, so the demo uses that.
 * RAX = number, RDI and RSI = arguments, RAX = result.
 */
#define SYSCALL_VECTOR 3
#define SYS_WRITE 1 /* (const char *buf, size_t len) -> len */
#define SYS_EXIT 60 /* (int status) -> does not return */

/* What ring 0 measured, read by ring 3. */
struct tsc_clock {
	uint64_t hz; /* 0 when no source worked */
	const char *source;
};

extern struct tsc_clock tsc_clock;

/* entry.S */
extern uint64_t gdt[];
extern uint8_t exception_stubs[]; /* 32 stubs, 16 bytes apart */
extern uint8_t kernel_stack_top[], double_fault_stack_top[], user_stack_top[];
void syscall_entry(void);
__attribute__((noreturn)) void enter_user(void (*entry)(void), void *stack);

/* console.c: set while ring 3 runs, so printing goes through SYS_WRITE. */
extern bool console_user_mode;

/* kernel.c */
void tsc_measure(struct tsc_clock *ret);

/* user.c, runs in ring 3 */
__attribute__((noreturn)) void user_main(void);

static inline uint64_t syscall2(uint64_t nr, uint64_t a0, uint64_t a1)
{
	uint64_t ret;

	__asm__ volatile("int3" : "=a"(ret) : "a"(nr), "D"(a0), "S"(a1) : "memory");
	return ret;
}

static inline uint64_t sys_write(const char *buf, size_t len)
{
	return syscall2(SYS_WRITE, (uint64_t)(uintptr_t)buf, len);
}

__attribute__((noreturn)) static inline void sys_exit(int status)
{
	syscall2(SYS_EXIT, (uint64_t)status, 0);
	__builtin_unreachable();
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}

#endif
