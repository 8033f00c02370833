/* SPDX-License-Identifier: MIT */
/*
 * Complete vCPU state: per-group access to KVM, a whole-vCPU save and
 * load, and a versioned, checksummed serialization (docs/vcpu.md has the
 * byte layout).
 *
 * Thread rules. Every function that takes a struct vcpu issues vCPU
 * ioctls, which must not race with KVM_RUN's use of the vCPU: call them on
 * the vCPU's thread (inside vcpu_call()) or while no thread runs it. The
 * exceptions are vcpu_state_save() and vcpu_state_load(), which go through
 * vcpu_call() themselves and may be called from any other thread.
 */
#ifndef VMMD_VCPU_STATE_H
#define VMMD_VCPU_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmu/mmu.h"
#include "util/error.h"
#include "vcpu/vcpu.h"

/* ------------------------------------------------------------ register groups */

/* KVM_GET/SET_SREGS2 where KVM_CAP_SREGS2 exists; otherwise KVM_GET/SET_SREGS
 * converted (flags 0, no PDPTEs; the pending-interrupt bitmap of kvm_sregs
 * is carried by the vCPU events instead, and written as empty). */
int vcpu_get_sregs2(const struct vcpu *v, struct kvm_sregs2 *ret, struct error *err);
int vcpu_set_sregs2(struct vcpu *v, const struct kvm_sregs2 *s, struct error *err);

/* The fields of s that mmu_validate_vcpu_state() reads, as its input. */
void vcpu_sregs_mmu_state(const struct kvm_sregs2 *s, struct mmu_vcpu_state *ret);

int vcpu_get_fpu(const struct vcpu *v, struct kvm_fpu *ret, struct error *err);
int vcpu_set_fpu(struct vcpu *v, const struct kvm_fpu *f, struct error *err);

/* Size of the vCPU's XSAVE image: KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) on
 * the VM (at least 4096), 4096 with only KVM_CAP_XSAVE, 0 without XSAVE. */
size_t vcpu_xsave_size(const struct vcpu *v);
/* KVM_GET_XSAVE2 (or KVM_GET_XSAVE) into a new buffer of *ret_size bytes. */
int vcpu_get_xsave(const struct vcpu *v, struct kvm_xsave **ret, size_t *ret_size,
		   struct error *err);
/* size must be vcpu_xsave_size(v). */
int vcpu_set_xsave(struct vcpu *v, const struct kvm_xsave *x, size_t size, struct error *err);

/* The x87 and SSE registers in struct kvm_fpu's form: from the legacy
 * area of the XSAVE image where KVM has XSAVE (the image a save stores),
 * else KVM_GET_FPU. (KVM_GET_FPU reports MXCSR as 0 on the development
 * host while the XSAVE image holds the guest's value.) */
int vcpu_get_fpu_regs(const struct vcpu *v, struct kvm_fpu *ret, struct error *err);
/* struct kvm_fpu from the 512-byte FXSAVE legacy area of an XSAVE image
 * (SDM Vol. 1 Table 10-2). */
void vcpu_xsave_to_fpu(const uint8_t *xsave, struct kvm_fpu *ret);

bool vcpu_has_xcrs(const struct vcpu *v);
int vcpu_get_xcrs(const struct vcpu *v, struct kvm_xcrs *ret, struct error *err);
int vcpu_set_xcrs(struct vcpu *v, const struct kvm_xcrs *x, struct error *err);

int vcpu_get_lapic(const struct vcpu *v, struct kvm_lapic_state *ret, struct error *err);
int vcpu_set_lapic(struct vcpu *v, const struct kvm_lapic_state *l, struct error *err);
int vcpu_get_events(const struct vcpu *v, struct kvm_vcpu_events *ret, struct error *err);
int vcpu_set_events(struct vcpu *v, const struct kvm_vcpu_events *e, struct error *err);
int vcpu_get_mp_state(const struct vcpu *v, struct kvm_mp_state *ret, struct error *err);
int vcpu_set_mp_state(struct vcpu *v, const struct kvm_mp_state *m, struct error *err);
int vcpu_get_debugregs(const struct vcpu *v, struct kvm_debugregs *ret, struct error *err);
int vcpu_set_debugregs(struct vcpu *v, const struct kvm_debugregs *d, struct error *err);

/* The guest TSC: while v is stopped, the value it stopped with (what a
 * save stores, docs/vcpu.md §1), else the live value KVM_GET_MSRS reads. */
int vcpu_get_tsc(const struct vcpu *v, uint64_t *ret, struct error *err);

/* KVM_GET_TSC_KHZ. */
int vcpu_get_tsc_khz(const struct vcpu *v, uint32_t *ret, struct error *err);

/* True if KVM_GET_MSRS reads MSR `index` on this vCPU. */
bool vcpu_msr_readable(const struct vcpu *v, uint32_t index);
/* KVM_GET/SET_MSRS of n entries; a partial transfer is an error naming the
 * first MSR KVM refused. */
int vcpu_get_msrs(const struct vcpu *v, struct kvm_msr_entry *entries, unsigned int n,
		  struct error *err);
int vcpu_set_msrs(struct vcpu *v, const struct kvm_msr_entry *entries, unsigned int n,
		  struct error *err);

/*
 * The MSRs a save includes: every index of KVM_GET_MSR_INDEX_LIST plus the
 * MTRRs, IA32_XSS and IA32_TSC_AUX (which KVM handles but does not list),
 * kept if KVM_GET_MSRS reads it on this vCPU. Sorted ascending; the
 * caller frees *ret.
 */
int vcpu_saveable_msrs(const struct vcpu *v, uint32_t **ret, unsigned int *ret_n,
		       struct error *err);

/*
 * The MMU role of v's registers (mmu_role_compute() of CR0/CR4/EFER, with
 * the SMM and guest-mode flags) and those role registers, both optional.
 * vmmd keeps them while v is stopped: RESET/INIT and a state load set
 * them; any other write of a role input (vcpu_set_sregs(),
 * vcpu_set_sregs2(), EFER through vcpu_set_msrs(), SMM through
 * vcpu_set_events()) and the guest running again drop them (docs/vcpu.md
 * §2.2). For a running vCPU the answer is
 * the role at one instruction boundary. Runs through vcpu_call().
 */
int vcpu_mmu_role(struct vcpu *v, union mmu_role *ret_role, struct mmu_role_regs *ret_regs,
		  struct error *err);

/* vcpu_mmu_role() for callers already on v's thread (inside vcpu_call())
 * or while no thread runs it, e.g. to read the role and other registers
 * at the same instruction boundary. */
int vcpu_get_mmu_role(struct vcpu *v, union mmu_role *ret_role, struct mmu_role_regs *ret_regs,
		      struct error *err);

/*
 * The role flags (MMU.md §1.1) a vCPU's events and nested state give:
 * MMU_CTX_SMM when the events carry valid SMM fields (KVM_VCPUEVENT_VALID_SMM)
 * with smi.smm set, MMU_CTX_GUEST_MODE when nested (optional) has
 * KVM_STATE_NESTED_GUEST_MODE. Pure.
 */
unsigned int vcpu_mmu_flags_of(const struct kvm_vcpu_events *events,
			       const struct kvm_nested_state *nested);

/* ------------------------------------------------------------ complete state */

/* Bounds of what a state may hold (a parser refuses more). */
#define VCPU_STATE_MAX_MSRS 1024
#define VCPU_STATE_MAX_CPUID 256	   /* KVM_MAX_CPUID_ENTRIES */
#define VCPU_STATE_MAX_XSAVE (64 * 1024)   /* KVM's largest image today is ~11 KiB */
#define VCPU_STATE_MAX_NESTED (128 + 2 * 4096) /* header + vmcs12 + shadow vmcs12 */
#define VCPU_STATE_MAX_SIZE (1024 * 1024)

struct vcpu_msr {
	uint32_t index;
	uint64_t value;
};

/*
 * Everything KVM holds for one x86 vCPU. The KVM structures are kept as
 * KVM defines them (uapi, ABI-stable). Optional parts: xsave (NULL when
 * the host has no XSAVE; fpu then holds the x87/SSE state), xcrs
 * (has_xcrs), nested (NULL when absent or empty).
 */
struct vcpu_state {
	uint32_t vcpu_id;
	struct kvm_regs regs;
	struct kvm_sregs2 sregs;
	struct kvm_fpu fpu;	 /* only when xsave is NULL */
	struct kvm_xsave *xsave; /* xsave_size bytes */
	size_t xsave_size;
	bool has_xcrs;
	struct kvm_xcrs xcrs;
	struct vcpu_msr *msrs; /* nr_msrs, ascending by index */
	unsigned int nr_msrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	struct kvm_debugregs debugregs;
	uint32_t tsc_khz;
	struct kvm_cpuid_entry2 *cpuid; /* the CPUID set on the vCPU */
	unsigned int nr_cpuid;
	void *nested; /* struct kvm_nested_state, nested_size bytes */
	size_t nested_size;
};

/* Frees what s owns and zeroes it. Accepts NULL. */
void vcpu_state_release(struct vcpu_state *s);

/* A deep copy of src into *ret. */
int vcpu_state_copy(const struct vcpu_state *src, struct vcpu_state *ret, struct error *err);

/*
 * Reads v's complete state into *ret (release it with
 * vcpu_state_release()). v must be stopped: paused (vcpu_pause() and
 * vcpu_wait_paused(); for a consistent VM, pause every vCPU first), or its
 * thread not started or ended; -EBUSY otherwise. IA32_TSC is the value
 * sampled when v stopped. Runs through vcpu_call().
 */
int vcpu_state_save(struct vcpu *v, struct vcpu_state *ret, struct error *err);

/* ------------------------------------------------------------ checking */

#define VCPU_STATE_PROBLEM_MAX 200
#define VCPU_STATE_MAX_PROBLEMS 64

/* Every reason a state cannot be loaded, one clear message each. */
struct vcpu_state_problems {
	unsigned int count;
	bool truncated; /* more than VCPU_STATE_MAX_PROBLEMS */
	char msg[VCPU_STATE_MAX_PROBLEMS][VCPU_STATE_PROBLEM_MAX];
};

/*
 * What a state is checked against: the target vCPU and what its KVM can
 * do. vcpu_state_check() reads it from a vCPU; a test or a tool may
 * describe one directly.
 */
struct vcpu_state_target {
	unsigned int vcpu_id;
	const struct kvm_cpuid2 *cpuid;	   /* the CPU model set on the vCPU; NULL before one is */
	const struct kvm_cpuid2 *enforced; /* the one KVM holds it to (KVM_GET_CPUID2); NULL: cpuid */
	size_t xsave_size;		   /* vcpu_xsave_size(); 0 without XSAVE */
	bool has_xcrs;			   /* KVM_CAP_XCRS */
	bool has_sregs2;		   /* KVM_CAP_SREGS2 */
	bool has_smm;			   /* KVM_CAP_X86_SMM */
	bool can_scale_tsc;		   /* KVM_CAP_TSC_CONTROL */
	uint32_t tsc_khz;		   /* KVM_GET_TSC_KHZ; 0 if unknown */
	int nested_max;			   /* KVM_CAP_NESTED_STATE (largest state); 0 without */
	/* Does KVM_GET_MSRS read this MSR on the vCPU? NULL: not checked. */
	bool (*msr_supported)(const void *ctx, uint32_t index);
	const void *msr_ctx;
};

/*
 * Checks s against the target t (vcpu_state_check() below, without KVM).
 * Pure. Same results and messages.
 */
int vcpu_state_check_target(const struct vcpu_state_target *t, const struct vcpu_state *s,
			    struct vcpu_state_problems *ret_problems, struct error *err);

/*
 * Checks s against vCPU v (same vCPU id, same CPUID, MSRs and XSAVE
 * components this KVM accepts, TSC frequency, nested-state support) and
 * architectural consistency (the MMU validator for control registers,
 * segments, EFER and PDPTEs; APIC base, debug registers, XCR0, events, MP
 * state). Returns 0 if s may be loaded; otherwise -EINVAL with the list in
 * *ret_problems (optional) and a summary naming the first problem in err.
 * Same thread rules as the register-group functions (it reads v's CPUID
 * and MSR support).
 */
int vcpu_state_check(struct vcpu *v, const struct vcpu_state *s,
		     struct vcpu_state_problems *ret_problems, struct error *err);

/*
 * Checks s (vcpu_state_check()) and, only if it passes, writes it into v:
 * SREGS2, LAPIC, MSRs, XCRS, XSAVE (or FPU), events, MP state, debug
 * registers, REGS, nested state. v must be stopped as for
 * vcpu_state_save(); -EBUSY otherwise. Refused states write nothing. Runs
 * through vcpu_call(). v's CPUID must be set already (the load never
 * changes it: CPUID is part of the VM definition).
 */
int vcpu_state_load(struct vcpu *v, const struct vcpu_state *s,
		    struct vcpu_state_problems *ret_problems, struct error *err);

/* ------------------------------------------------------------ serialization */

#define VCPU_STATE_MAGIC "VMMDVCPU"
#define VCPU_STATE_VERSION 1

/* Section types (docs/vcpu.md). Values are part of the format. */
enum vcpu_state_section {
	VCPU_SECTION_REGS = 1,
	VCPU_SECTION_SREGS2 = 2,
	VCPU_SECTION_FPU = 3,
	VCPU_SECTION_XSAVE = 4,
	VCPU_SECTION_XCRS = 5,
	VCPU_SECTION_MSRS = 6,
	VCPU_SECTION_LAPIC = 7,
	VCPU_SECTION_EVENTS = 8,
	VCPU_SECTION_MP_STATE = 9,
	VCPU_SECTION_DEBUGREGS = 10,
	VCPU_SECTION_TSC_KHZ = 11,
	VCPU_SECTION_CPUID = 12,
	VCPU_SECTION_NESTED = 13,
};

/* Section flag: a reader that does not know the section must refuse the
 * whole state; without it, the section is skipped. */
#define VCPU_SECTION_FLAG_CRITICAL 0x1

/* Serializes s into a new buffer (*ret_buf, *ret_len; caller frees). */
int vcpu_state_serialize(const struct vcpu_state *s, void **ret_buf, size_t *ret_len,
			 struct error *err);

/*
 * Parses len bytes into *ret (release with vcpu_state_release()). Refuses,
 * with a message naming the offset or section, and *ret untouched: a wrong
 * magic or version, a length that disagrees with the header or exceeds
 * VCPU_STATE_MAX_SIZE, a bad checksum, a truncated or oversized section,
 * a section of the wrong size, a duplicate section, a missing required
 * section, an unknown critical section, and contents outside the bounds
 * above. Unknown non-critical sections are skipped; *ret_skipped
 * (optional) counts them.
 */
int vcpu_state_parse(const void *buf, size_t len, struct vcpu_state *ret,
		     unsigned int *ret_skipped, struct error *err);

/* Name of a section type ("regs", "sregs2", ...), or NULL if unknown. */
const char *vcpu_state_section_name(uint16_t type);

#endif
