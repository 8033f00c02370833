/* SPDX-License-Identifier: MIT */
/*
 * Ring 0 of the demo: IDT and TSS, two system calls and a report for
 * unexpected exceptions. Built without SSE so that system calls need not
 * save the user's vector registers.
 */
#include "demo.h"

struct tsc_clock tsc_clock;

void kernel_main(uint32_t protocol, uint32_t eax, uint32_t ebx);
uint64_t syscall_dispatch(uint64_t nr, uint64_t a0, uint64_t a1);
struct exception_frame;
__attribute__((noreturn)) void exception_report(const struct exception_frame *f);

/* SDM Vol. 3 6.14.1: 64-bit interrupt gate. */
struct idt_gate {
	uint16_t offset_low;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr; /* P | DPL | type 0xE */
	uint16_t offset_mid;
	uint32_t offset_high;
	uint32_t reserved;
} __attribute__((packed));

/* SDM Vol. 3 7.7: 64-bit TSS. */
struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

#define GATE_KERNEL 0x8E /* present, DPL 0, interrupt gate */
#define GATE_USER 0xEE   /* present, DPL 3: reachable from ring 3 */
#define DOUBLE_FAULT_VECTOR 8
#define DOUBLE_FAULT_IST 1

static struct idt_gate idt[32] __attribute__((aligned(16)));
static struct tss tss __attribute__((aligned(16)));

static void set_gate(unsigned int vector, void *handler, uint8_t attr, uint8_t ist)
{
	uint64_t a = (uint64_t)(uintptr_t)handler;

	idt[vector] = (struct idt_gate){
		.offset_low = (uint16_t)a,
		.selector = KERNEL_CS,
		.ist = ist,
		.type_attr = attr,
		.offset_mid = (uint16_t)(a >> 16),
		.offset_high = (uint32_t)(a >> 32),
	};
}

static void idt_init(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };

	for (unsigned int v = 0; v < 32; v++)
		set_gate(v, exception_stubs + 16 * v, GATE_KERNEL,
			 v == DOUBLE_FAULT_VECTOR ? DOUBLE_FAULT_IST : 0);
	set_gate(SYSCALL_VECTOR, syscall_entry, GATE_USER, 0);
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

/* SDM Vol. 3 7.2.3: 16-byte available 64-bit TSS descriptor (type 9). */
static void tss_init(void)
{
	uint64_t base = (uint64_t)(uintptr_t)&tss;
	uint64_t limit = sizeof(tss) - 1;

	tss.rsp[0] = (uint64_t)(uintptr_t)kernel_stack_top;
	tss.ist[DOUBLE_FAULT_IST - 1] = (uint64_t)(uintptr_t)double_fault_stack_top;
	tss.iomap_base = sizeof(tss); /* no I/O bitmap: ring 3 gets no ports */
	gdt[GDT_TSS_INDEX] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) |
			     (0x89ULL << 40) | (((base >> 24) & 0xFF) << 56);
	gdt[GDT_TSS_INDEX + 1] = base >> 32;
	__asm__ volatile("ltr %w0" : : "r"(TSS_SELECTOR));
}

void kernel_main(uint32_t protocol, uint32_t eax, uint32_t ebx)
{
	boot_init((enum boot_protocol)protocol, eax, ebx);
	serial_init();
	idt_init();
	tss_init();
	tsc_measure(&tsc_clock);
	console_user_mode = true;
	/* The stack top minus 8 is where a call would have left it (ABI). */
	enter_user(user_main, (void *)((uintptr_t)user_stack_top - 8));
}

/* ---------------------------------------------------------------- system calls */

static uint64_t write_serial(const char *buf, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		serial_putc(buf[i]);
	return len;
}

uint64_t syscall_dispatch(uint64_t nr, uint64_t a0, uint64_t a1)
{
	switch (nr) {
	case SYS_WRITE:
		return write_serial((const char *)(uintptr_t)a0, a1);
	case SYS_EXIT:
		guest_exit((uint8_t)a0);
	}
	return (uint64_t)-1;
}

/* ---------------------------------------------------------------- exceptions */

/* Layout built by entry.S: registers, then vector, error, CPU frame. */
struct exception_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

/* Exit status of a demo that died of an exception (README.md). */
#define EXIT_EXCEPTION 3

void exception_report(const struct exception_frame *f)
{
	uint64_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	/* Print straight to the UART from here on. */
	console_user_mode = false;
	print("\ndemo: exception ");
	print_dec(f->vector);
	print(" error ");
	print_hex(f->error);
	print(" at rip ");
	print_hex(f->rip);
	print(" cs ");
	print_hex(f->cs);
	print(" rsp ");
	print_hex(f->rsp);
	print(" cr2 ");
	print_hex(cr2);
	print_char('\n');
	guest_exit(EXIT_EXCEPTION);
}
