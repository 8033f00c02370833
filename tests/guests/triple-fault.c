/* SPDX-License-Identifier: MIT */
/*
 * triple-fault: loads an IDT with limit 0 and executes ud2. The #UD cannot
 * be delivered, nor the #GP that follows, nor the #DF after that, so the
 * CPU shuts down (SDM Vol. 3 6.15, "Interrupt 8 — Double Fault"): KVM
 * reports KVM_EXIT_SHUTDOWN; QEMU resets, or exits with -no-reboot.
 *
 * Output: "triple-fault: loading an empty IDT and raising #UD". If the
 * guest survives it prints "triple-fault: still running" and exits with 1.
 */
#include "lib/guest.h"

struct idt_descriptor {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

int main(void)
{
	static const struct idt_descriptor empty = { .limit = 0, .base = 0 };

	print("triple-fault: loading an empty IDT and raising #UD\n");
	__asm__ volatile("lidt %0\n\tud2" : : "m"(empty) : "memory");
	print("triple-fault: still running\n");
	return 1;
}
