/* SPDX-License-Identifier: MIT */
/* Guest inspection: MMU role, translation, memory reads (see inspect.c). */
#ifndef VMMD_WORKER_INSPECT_H
#define VMMD_WORKER_INSPECT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/errors.h"

struct vm;
struct vcpu;

/* Runs fn(vcpu, arg) on vCPU index's thread (vcpu_call); an error names the
 * valid range for a bad index. */
int inspect_on_vcpu(struct vm *vm, unsigned int index, int (*fn)(struct vcpu *, void *),
		    void *arg, struct api_error *err);

/* Largest vm.memory.read. */
#include "vmmd/vmdef.h"
#define INSPECT_READ_MAX VM_MEMORY_READ_MAX

/* vcpu.role: mode, CR0/CR3/CR4/EFER and every role bit of vCPU index. */
int inspect_role(struct vm *vm, unsigned int index, json_object **ret, struct api_error *err);

/* vm.translate: the walk of gva for access (MMU_ACCESS_*) on vCPU index,
 * with its GPA or fault. Never sets A/D bits. */
int inspect_translate(struct vm *vm, unsigned int index, uint64_t gva, uint32_t access,
		      json_object **ret, struct api_error *err);

/* vm.memory.read: len bytes at a guest-physical address, or a virtual one
 * translated by vCPU index's page tables. */
int inspect_read(struct vm *vm, uint64_t addr, size_t len, bool is_virtual, unsigned int index,
		 json_object **ret, struct api_error *err);

/* vcpu.registers: every register with decoded flags (registers.c). */
int inspect_registers(struct vm *vm, unsigned int index, json_object **ret,
		      struct api_error *err);

/* vcpu.cpuid: the CPUID KVM holds for the vCPU (KVM_GET_CPUID2), each entry
 * and each named feature (vcpu/cpuid.h) as set or not. */
int inspect_cpuid(struct vm *vm, unsigned int index, json_object **ret, struct api_error *err);

#endif
