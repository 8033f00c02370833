/* SPDX-License-Identifier: MIT */
/*
 * CPUID: what KVM supports, a policy that hides or requires features by
 * name and sets the guest's physical-address width, and setting the result
 * on each vCPU exactly once.
 *
 * Model. The guest CPU model starts from KVM_GET_SUPPORTED_CPUID (what
 * this KVM on this host can give a guest). A policy turns named features
 * off or insists that they stay on, and may lower MAXPHYADDR. The result
 * is the same on every vCPU except the APIC-ID fields of the topology
 * leaves 1, 0xB and 0x1F, and is set before the vCPU first runs: KVM
 * refuses a different CPUID after KVM_RUN with EINVAL (MMU.md §7), and so
 * does vcpu_set_cpuid(), before asking KVM, with a message that a new VM
 * is needed.
 *
 * The daemon parses `cpu: {features: {"x2apic": false, ...},
 * max_phys_bits: N}` into a struct vcpu_cpu_policy with
 * vcpu_cpu_policy_set_feature() (which knows the names) and checks it
 * against the host with vcpu_cpu_policy_check().
 */
#ifndef VMMD_VCPU_CPUID_H
#define VMMD_VCPU_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmu/mmu.h"
#include "util/error.h"
#include "vcpu/vcpu.h"

enum vcpu_cpuid_reg { VCPU_CPUID_EAX, VCPU_CPUID_EBX, VCPU_CPUID_ECX, VCPU_CPUID_EDX };

/* A named CPUID feature flag: CPUID.(EAX=leaf,ECX=subleaf):reg[bit]. */
struct vcpu_cpu_feature {
	const char *name;	 /* lower case, as Linux's /proc/cpuinfo where it exists */
	uint32_t leaf;
	uint32_t subleaf;
	enum vcpu_cpuid_reg reg;
	uint8_t bit;
	const char *needs;	 /* a feature this one cannot exist without, or NULL */
	uint64_t xfeatures;	 /* XSAVE components (XCR0 bits) that belong to it */
};

/* The table of known features, in a stable order; *ret_n gets its length. */
const struct vcpu_cpu_feature *vcpu_cpu_features(size_t *ret_n);
/* The feature called name, or NULL. */
const struct vcpu_cpu_feature *vcpu_cpu_feature_find(const char *name);
/* "x2apic, xsave, ..." — every known name, for messages. */
void vcpu_cpu_feature_names(char *buf, size_t size);

#define VCPU_CPU_POLICY_MAX_FEATURES 64
#define VCPU_CPU_FEATURE_NAME_MAX 24

struct vcpu_cpu_feature_setting {
	char name[VCPU_CPU_FEATURE_NAME_MAX];
	bool enabled; /* false: hide it; true: require it (refused if KVM lacks it) */
};

/*
 * A CPU model policy. Zero-initialised = KVM's supported CPUID unchanged.
 * Features not named keep KVM's value, except that hiding a feature also
 * hides the features that need it (avx2 without avx makes no sense).
 */
struct vcpu_cpu_policy {
	unsigned int nr_features;
	struct vcpu_cpu_feature_setting features[VCPU_CPU_POLICY_MAX_FEATURES];
	/* Guest MAXPHYADDR, CPUID.80000008H:EAX[7:0]; 0 keeps the host's. */
	unsigned int max_phys_bits;
};

/*
 * Adds "name: enabled" to p. Returns -EINVAL for an unknown name (the
 * message lists the known ones) or a name given twice, -E2BIG past
 * VCPU_CPU_POLICY_MAX_FEATURES.
 */
int vcpu_cpu_policy_set_feature(struct vcpu_cpu_policy *p, const char *name, bool enabled,
				struct error *err);

/* Guest MAXPHYADDR bounds: 32 (the 4 GiB of the PC platform: LAPIC, reset
 * vector) to 52 (SDM Vol. 3A §4.1.4). */
#define VCPU_MIN_PHYS_BITS 32
#define VCPU_MAX_PHYS_BITS 52

/*
 * Checks p against what KVM supports: every name known and given once; a
 * required feature supported by KVM and not needing a hidden one;
 * max_phys_bits within 32..the host's value and wide enough for
 * guest-physical addresses up to max_gpa (the last byte of RAM or MMIO the
 * VM uses; 0 to skip that check). Messages name the feature and the CPUID
 * bit. Returns 0 or -EINVAL.
 */
int vcpu_cpu_policy_check(const struct vcpu_cpu_policy *p, const struct kvm_cpuid2 *supported,
			  uint64_t max_gpa, struct error *err);

/*
 * The guest CPUID: supported with p applied (after vcpu_cpu_policy_check()).
 * Hidden features are cleared with those that need them; the XSAVE leaf
 * 0xD drops the components of hidden features (all of it without xsave)
 * and its size fields follow; MAXPHYADDR is lowered. A new list in *ret
 * (caller frees).
 */
int vcpu_cpuid_build(const struct kvm_cpuid2 *supported, const struct vcpu_cpu_policy *p,
		     uint64_t max_gpa, struct kvm_cpuid2 **ret, struct error *err);

/* True if feature f is set in cpuid. */
bool vcpu_cpuid_has(const struct kvm_cpuid2 *cpuid, const struct vcpu_cpu_feature *f);

/* The entry for (leaf, subleaf), honouring KVM_CPUID_FLAG_SIGNIFCANT_INDEX; NULL if absent. */
struct kvm_cpuid_entry2 *vcpu_cpuid_entry(const struct kvm_cpuid2 *cpuid, uint32_t leaf,
					  uint32_t subleaf);

/* Guest MAXPHYADDR of a CPUID list: 0x80000008.EAX[7:0], or 36 without
 * that leaf (SDM Vol. 3A §4.1.4). */
unsigned int vcpu_cpuid_phys_bits(const struct kvm_cpuid2 *cpuid);

/* The CPU features the MMU model takes from a CPUID list
 * (mmu_features_from_cpuid()). */
int vcpu_cpuid_mmu_features(const struct kvm_cpuid2 *cpuid, struct mmu_cpu_features *ret,
			    struct error *err);

/* 0 if next has the same entries as cur in the same order (KVM's rule for
 * a CPUID set again after KVM_RUN); else -EINVAL with the first difference
 * in *ret_diff. */
int vcpu_cpuid_compare(const struct kvm_cpuid2 *cur, const struct kvm_cpuid_entry2 *next,
		       size_t nnext, struct mmu_error *ret_diff);

/* KVM_GET_SUPPORTED_CPUID into a newly allocated list (caller frees). */
int vcpu_supported_cpuid(int kvm_fd, struct kvm_cpuid2 **ret, struct error *err);

/*
 * Sets cpuid on v with v's APIC ID in the topology leaves (1, 0xB, 0x1F)
 * and keeps a copy. Once v has run, an identical CPUID is accepted as the
 * no-op it is (KVM is not called) and a different one is refused with
 * -EINVAL before KVM is called (see vcpu_cpuid_check_change()). Call
 * before vcpu_start() or through vcpu_call().
 */
int vcpu_set_cpuid(struct vcpu *v, const struct kvm_cpuid2 *cpuid, struct error *err);

/*
 * Would vcpu_set_cpuid(v, cpuid) be accepted? 0 if v has not run or cpuid
 * (with v's APIC ID patched in) equals what v has; -EINVAL with the first
 * difference and "create a new VM to change the CPU model" otherwise.
 * Any thread, but not from inside a vcpu_call() function (it takes the
 * vCPU's lock).
 */
int vcpu_cpuid_check_change(struct vcpu *v, const struct kvm_cpuid2 *cpuid, struct error *err);

/* KVM_GET_CPUID2 of v into a new list (caller frees). */
int vcpu_get_cpuid(const struct vcpu *v, struct kvm_cpuid2 **ret, struct error *err);

/* CPUID.1.EAX (family, model, stepping) of the CPUID set on v; 0x600 before
 * any (what KVM puts in RDX at RESET then). */
uint32_t vcpu_cpuid_signature(const struct vcpu *v);

#endif
