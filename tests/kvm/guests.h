/* SPDX-License-Identifier: MIT */
/*
 * The guests of the KVM tests (guests.S): where they are loaded, the ports
 * they report on, and their symbols. Shared by the assembly and the C side.
 */
#ifndef VMMD_TESTS_KVM_GUESTS_H
#define VMMD_TESTS_KVM_GUESTS_H

/* Load addresses (guest-physical). */
#define GUEST_SPIN_ADDR 0x10000
#define GUEST_INIT_IPI_ADDR 0x11000
#define GUEST_HALT_ADDR 0x12000
#define GUEST_COUNTER_ADDR 0x20000 /* 64-bit, ring 3 */
#define GUEST_RESET_VECTOR_PAGE 0xFFFFF000 /* last page of the flash */

/* Report ports: a 32-bit OUT of the value. */
#define PORT_READY 0xE0	  /* guest started: value = a guest-specific tag */
#define PORT_EDX 0xE1	  /* reset-vector guest: EDX at the reset vector */
#define PORT_CR0 0xE2	  /* reset-vector guest: CR0 */
#define PORT_FCW 0xE3	  /* reset-vector guest: x87 control word */
#define PORT_FSW 0xE4	  /* reset-vector guest: x87 status word */
#define PORT_SEGS 0xE5	  /* reset-vector guest: CS selector << 16 | SS selector */
#define PORT_EFLAGS 0xE6  /* reset-vector guest: EFLAGS */
#define PORT_DONE 0xEF	  /* guest finished its work: value = result */
#define PORT_IN 0xEE	  /* reads give PORT_IN_VALUE */
#define PORT_COUNT 0xF0	  /* counter guest: the running count */
#define PORT_CHECK 0xF1	  /* counter guest: a checksum over its registers */

/* Tags on PORT_READY. */
#define TAG_RESET_VECTOR 0x5EC7
#define TAG_INIT_IPI 0x1417
#define TAG_COUNTER 0xC0DE
#define TAG_HALT 0x4A17
/* in_spin: XOR (2 bytes) + IN imm8 (2 bytes); the value the test's port gives. */
#define GUEST_IN_SPIN_AFTER_IN 4
#define PORT_IN_VALUE 0x1234ABCD

/* Counter guest: reports every 2^COUNTER_SHIFT iterations, ring-3 loop. */
#define COUNTER_SHIFT 16
/* Long-mode scaffolding the test builds for user-mode guests: page
 * tables identity-mapping the first 4 MiB for ring 3, a GDT and a TSS. */
#define USER_PML4 0x30000
#define USER_PDPT 0x31000
#define USER_PD 0x32000
#define USER_GDT 0x33000
#define USER_TSS 0x34000
#define USER_STACK_TOP 0x40000

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

extern const uint8_t guest_spin[], guest_spin_end[];
extern const uint8_t guest_in_spin[], guest_in_spin_end[];
extern const uint8_t guest_reset_vector[], guest_reset_vector_end[];
extern const uint8_t guest_init_ipi[], guest_init_ipi_end[];
extern const uint8_t guest_counter[], guest_counter_end[];
extern const uint8_t guest_halt[], guest_halt_end[];


#define GUEST_SIZE(name) ((size_t)(name##_end - name))
#endif

#endif
