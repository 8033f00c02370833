/* SPDX-License-Identifier: MIT */
/*
 * The KVM test tier: small C programs that drive real /dev/kvm through
 * vcpu/ with tiny guests (tests/kvm/guests.S) that report through port
 * I/O, in the style of the Linux KVM selftests. Include after <cmocka.h>.
 *
 * Skips are visible: a program that cannot run here prints "SKIP: <why>"
 * and exits with 77 (kvm_test_require_kvm()); a single test that cannot
 * run prints "SKIP: <test>: <why>" and calls cmocka's skip()
 * (KVM_TEST_SKIP()). scripts/run-kvm-tests.sh counts both and reports them
 * separately from passes.
 */
#ifndef VMMD_TESTS_KVM_TEST_H
#define VMMD_TESTS_KVM_TEST_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vcpu/vcpu.h"

#define KVM_TEST_SKIP_STATUS 77
#define KVM_TEST_MAX_VCPUS 8
#define KVM_TEST_MAX_WRITES 4096

/* Guest RAM from GPA 0, and a 64 KiB "flash" just below 4 GiB holding the
 * reset vector (SDM §9.1.4: first fetch at 0xFFFFFFF0). */
#define KVM_TEST_RAM_SIZE (4UL << 20)
#define KVM_TEST_FLASH_BASE 0xFFFF0000ULL
#define KVM_TEST_FLASH_SIZE 0x10000UL

/* Ports the guests in guests.S report on (tests/kvm/guests.h). */
#include "tests/kvm/guests.h"

struct kvm_test_write {
	unsigned int vcpu;
	uint16_t port;
	uint32_t value;
	bool consumed;
};

struct kvm_test_vm {
	int kvm_fd;
	int vm_fd;
	uint8_t *ram;
	uint8_t *flash;
	struct vcpu *vcpu[KVM_TEST_MAX_VCPUS];
	unsigned int nr_vcpus;
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct kvm_test_write writes[KVM_TEST_MAX_WRITES];
	unsigned int nr_writes;
	unsigned int nr_stopped;
	/* An access to this port (if not 0) makes the vCPU request its own
	 * pause before the exit returns: the pause then lands exactly after
	 * that I/O exit, before KVM has completed the instruction. */
	uint16_t pause_on_port;
	char stop_message[KVM_TEST_MAX_VCPUS][512];
	bool stop_unexpected[KVM_TEST_MAX_VCPUS];
};

/* Exits with "SKIP: /dev/kvm ..." and status 77 when KVM cannot be used. */
void kvm_test_require_kvm(void);

/* Prints "SKIP: <test>: <why>" and skips the current cmocka test. */
#define KVM_TEST_SKIP(...)                                  \
	do {                                                \
		kvm_test_print_skip(__func__, __VA_ARGS__); \
		skip();                                     \
	} while (0)
void kvm_test_print_skip(const char *test, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Fails the test with err's message when rc is negative. */
void kvm_test_check(int rc, const struct error *err);

/* cmocka teardown freeing the struct kvm_test_vm in *state. */
int kvm_test_teardown(void **state);

/* A VM with an in-kernel irqchip, RAM, flash and n vCPUs (CPUID set to
 * KVM's supported list). Asserts on failure. */
struct kvm_test_vm *kvm_test_vm_new(unsigned int n);
/* Stops and joins every vCPU thread, frees everything. */
void kvm_test_vm_free(struct kvm_test_vm *vm);

/* Copies a guest blob to guest-physical gpa (RAM or flash). */
void kvm_test_load(struct kvm_test_vm *vm, uint64_t gpa, const void *code, size_t len);

/* Puts vCPU i in flat 32-bit protected mode (ring 0, paging off) at eip
 * with esp, as the boot loaders do; extra CR0 and CR4 bits may be given. */
void kvm_test_enter_protected_mode(struct kvm_test_vm *vm, unsigned int i, uint32_t eip,
				   uint32_t esp, uint64_t cr0_extra, uint64_t cr4_extra);

/*
 * Puts vCPU i in 64-bit mode at CPL 3 with IOPL 3 (port I/O allowed) at
 * rip/rsp, building the long-mode scaffolding in guest RAM: 4-level page
 * tables identity-mapping the first 4 MiB with user access (2 MiB pages),
 * a GDT with 64-bit kernel and user segments and a TSS (guests.h USER_*).
 * Selftests-style: no guest ring-0 code runs.
 */
void kvm_test_enter_user_mode(struct kvm_test_vm *vm, unsigned int i, uint64_t rip, uint64_t rsp);

/* Waits up to timeout_ms for the next write to port by vcpu (any vCPU if
 * vcpu < 0) not consumed yet, consumes it and returns its value. Fails the
 * test on timeout or if a vCPU stopped unexpectedly. */
uint32_t kvm_test_wait_write(struct kvm_test_vm *vm, int vcpu, uint16_t port,
			     unsigned int timeout_ms);

/* Drops every recorded write. */
void kvm_test_forget_writes(struct kvm_test_vm *vm);

/* Guest-physical pointer into RAM. */
void *kvm_test_gpa(struct kvm_test_vm *vm, uint64_t gpa);

/*
 * Does KVM here move the guest TSC when userspace writes IA32_TSC? Writes
 * 2^50 to v's TSC (clobbering it) and reads it back into *ret_read. Some
 * hosts (PVM) ignore TSC writes.
 */
bool kvm_test_tsc_writes_honoured(struct vcpu *v, uint64_t *ret_read);

/* Reads one MSR through KVM_GET_MSRS; asserts it is readable. */
uint64_t kvm_test_get_msr(struct vcpu *v, uint32_t index);

#endif
