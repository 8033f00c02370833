/* SPDX-License-Identifier: MIT */
/*
 * One running VM inside its worker process: the KVM VM, guest RAM, the
 * port-I/O bus and its devices, the boot image, and the vCPUs.
 *
 * The VM ends once: the first of a guest debug-exit write, a vCPU that
 * cannot continue (triple fault, failed entry, emulation failure) or a
 * power-off request records why (vm_request_exit(), any thread), every
 * vCPU is kicked, and the owner's wake callback runs so the worker's main
 * loop can collect the vCPU threads and report.
 */
#ifndef VMMD_WORKER_VM_H
#define VMMD_WORKER_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/errors.h"
#include "vcpu/cpuid.h"
#include "vmmd/worker/console.h"

struct vm_config {
	char name[65];
	uint64_t memory_mib;
	unsigned int vcpus;
	const char *kernel;
	const char *cmdline;
	const char *boot;
	const char *console_log;
	size_t console_log_max;
	struct vcpu_cpu_policy cpu;
};

enum vm_end_state {
	VM_END_STOPPED, /* guest exit or power-off */
	VM_END_CRASHED, /* guest or KVM failure */
};

struct vm_end {
	enum vm_end_state state;
	bool has_exit_status;
	uint32_t exit_status; /* the debug-exit value, up to 32 bits */
	char reason[768];
};

struct vm;

/* Called from any thread when the main loop has work: console output
 * pending, or the VM ended. */
typedef void (*vm_wake_fn)(void *ctx);

/* Builds everything up to, not including, running vCPUs. Errors carry
 * API_ERR_KVM (an ioctl failed), API_ERR_KERNEL (the kernel file is
 * missing or no longer a valid image), API_ERR_INVALID_PARAMS (the CPU
 * policy) or API_ERR_RESOURCE_LIMIT (memory, threads). */
int vm_create(const struct vm_config *cfg, vm_wake_fn wake, void *ctx, struct vm **ret,
	      struct api_error *err);

int vm_start(struct vm *vm, struct api_error *err);

/* Pause: every vCPU parked at an instruction boundary until vm_resume().
 * Main thread only. */
void vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);
bool vm_is_paused(const struct vm *vm);

/*
 * Platform reset (vCPUs, devices, boot loader with the kernel file read
 * again); keeps the VM paused if it was. Main thread only. -EINVAL: refused
 * before anything changed, the VM runs on as it was (the kernel file is
 * missing or no longer a valid image: API_ERR_KERNEL). -EIO: the reset
 * failed half-way and the VM is not fit to run.
 */
int vm_reset(struct vm *vm, struct api_error *err);

/* Records why the VM ends (first call wins) and kicks every vCPU. Thread-safe. */
void vm_request_exit(struct vm *vm, enum vm_end_state state, bool has_status, uint32_t status,
		     const char *reason);

/* True once the VM has ended; fills *ret. */
bool vm_has_ended(struct vm *vm, struct vm_end *ret);

/* Joins every vCPU thread (after the VM ended). */
void vm_join_vcpus(struct vm *vm);

/* Stops vCPUs if needed and frees everything. Accepts NULL. */
void vm_free(struct vm *vm);

struct console *vm_console(struct vm *vm);

/* For inspection (vmmd/worker/inspect.c). */
struct vcpu;
struct vm_memory;
struct mmu_cpu_features;
unsigned int vm_nr_vcpus(const struct vm *vm);
struct vcpu *vm_vcpu(struct vm *vm, unsigned int index);
const struct vm_memory *vm_guest_memory(const struct vm *vm);
const struct mmu_cpu_features *vm_cpu_features(const struct vm *vm);
/* Offset of PKRU in the XSAVE area (CPUID 0xD.9), 0 when absent. */
uint32_t vm_pkru_offset(const struct vm *vm);

/* Console input for the UART; *ret_accepted bytes were queued. */
int vm_console_input(struct vm *vm, const uint8_t *buf, size_t len, size_t *ret_accepted);

#endif
