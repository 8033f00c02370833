/* SPDX-License-Identifier: MIT */
/*
 * A VM definition: what vm.create was given, validated against the host.
 * Definitions are plain data with no runtime state; the registry owns them.
 */
#ifndef VMMD_VMDEF_H
#define VMMD_VMDEF_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/errors.h"
#include "api/schema.h"
#include "vcpu/cpuid.h"

#define VM_NAME_MAX 64
#define VM_MEMORY_MIN_MIB 2
/* vCPUs per VM where KVM cannot be asked (no /dev/kvm): the most a worker
 * takes and the max-vcpus limit allows. */
#define VM_VCPUS_MAX 4096
#define VM_CMDLINE_MAX 4096
#define VM_KERNEL_PATH_MAX 4096
/* Largest vm.memory.read, in bytes: the memory-read limit. */
#define VM_MEMORY_READ_MAX (64 * 1024)
#define VM_MEMORY_READ_LIMIT_NAME "the memory-read limit"
/* Largest vCPU state vcpu.state.save and vcpu.state.load carry, in bytes;
 * base64 in a request or reply, it takes at most VM_VCPU_STATE_BASE64_MAX
 * characters, well inside the 1 MiB message. The largest state the format
 * allows today is about 100 KiB (docs/vcpu.md §5). */
#define VM_VCPU_STATE_MAX (512 * 1024)
#define VM_VCPU_STATE_BASE64_MAX ((VM_VCPU_STATE_MAX + 2) / 3 * 4)

/* What the host allows; computed once at daemon start. */
struct host_limits {
	uint64_t max_memory_mib;   /* host RAM, or the operator's lower limit */
	unsigned int max_vcpus;	   /* KVM_CAP_MAX_VCPUS (and MAX_VCPU_ID), VM_VCPUS_MAX
				    * without /dev/kvm, or the operator's lower limit */
	const char *memory_source; /* where the memory limit comes from, for messages */
	const char *vcpus_source;
	struct kvm_cpuid2 *supported_cpuid; /* KVM_GET_SUPPORTED_CPUID; NULL without KVM */
};

struct vm_def {
	char name[VM_NAME_MAX + 1];
	uint64_t memory_mib;
	unsigned int vcpus;
	char *kernel;
	char *cmdline;
	char boot[16]; /* "multiboot" or "flat" */
	bool transient;
	struct vcpu_cpu_policy cpu; /* features hidden or required, MAXPHYADDR */
};

/* The vm.create parameter schema (also used by vm.update later). */
extern const struct api_param vm_def_params[];

/* Checks a VM name: 1..64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
int vm_name_validate(const char *name, struct api_error *err);

/*
 * Builds a definition from schema-validated params, checking values against
 * the host and, with check_kernel, the kernel file (exists, readable, a
 * valid image for its boot protocol). *ret is owned by the caller.
 */
int vm_def_from_params(json_object *params, const struct host_limits *host, bool check_kernel,
		       struct vm_def **ret, struct api_error *err);

json_object *vm_def_to_json(const struct vm_def *def);

/*
 * The "cpu" member: {"features": {"x2apic": false, ...}, "max_phys_bits": N}.
 * Fills *ret (zeroed first); messages name the member ("parameter
 * 'cpu.features.x2apic' must be a boolean"). NULL cpu is an empty policy.
 */
int vm_cpu_policy_from_json(json_object *cpu, struct vcpu_cpu_policy *ret, struct api_error *err);
json_object *vm_cpu_policy_to_json(const struct vcpu_cpu_policy *p);

/* Highest guest-physical address of a VM with this much RAM (the PC hole
 * up to 4 GiB always counts: LAPIC, IOAPIC). */
uint64_t vm_max_gpa(uint64_t memory_mib);
void vm_def_free(struct vm_def *def);

/* Reads host limits from /proc/meminfo and /dev/kvm. */
void host_limits_probe(struct host_limits *ret);

#endif
