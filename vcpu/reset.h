/* SPDX-License-Identifier: MIT */
/*
 * Architectural RESET (power-up) and INIT of a vCPU.
 *
 * KVM performs a RESET only when it creates a vCPU and an INIT only when
 * its in-kernel LAPIC receives one; there is no ioctl for either (MMU.md
 * §6). A platform reset, or an INIT that vmmd delivers itself, is therefore
 * written register group by register group. This module computes that
 * state as a pure function of the event and the vCPU's prior state, and
 * applies it through KVM_SET_* ioctls.
 *
 * Sources: Intel SDM Vol. 3A Table 9-1 ("IA-32 and Intel 64 Processor
 * States Following Power-up, Reset, or INIT"; Table 10-1 in editions from
 * 2023), §10.4.7.1 and §10.4.7.3 (local APIC after RESET and after INIT),
 * §10.4.4 (IA32_APIC_BASE), §11.12.4 (PAT); AMD APM Vol. 2 Table 14-1
 * ("Initial Processor State"). docs/vcpu.md has the full table.
 */
#ifndef VMMD_VCPU_RESET_H
#define VMMD_VCPU_RESET_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "mmu/mmu.h"
#include "util/error.h"
#include "vcpu/vcpu.h"

enum vcpu_reset_kind {
	VCPU_RESET_POWER_ON, /* power-up or RESET# */
	VCPU_RESET_INIT,     /* INIT# or an INIT IPI */
};

/* "reset" / "init". */
const char *vcpu_reset_kind_name(enum vcpu_reset_kind kind);

/*
 * The performance-monitoring counters the vCPU's CPU model has, which
 * RESET clears (SDM Vol. 3A Table 9-1: "Performance-monitoring counters
 * and event select: 0H after power-up and RESET, unchanged after INIT").
 */
enum vcpu_reset_pmu_kind {
	VCPU_RESET_PMU_NONE,
	VCPU_RESET_PMU_INTEL, /* architectural performance monitoring, CPUID leaf 0xA */
	VCPU_RESET_PMU_AMD,   /* AMD's core counters (APM Vol. 2 §13.2) */
};

struct vcpu_reset_pmu {
	enum vcpu_reset_pmu_kind kind;
	unsigned int version;  /* Intel: CPUID.0AH:EAX[7:0]; AMD: 2 with PerfMonV2, else 1 */
	unsigned int nr_gp;    /* general-purpose counters */
	unsigned int nr_fixed; /* Intel fixed-function counters */
	bool amd_core;	       /* AMD: six counters at 0xC0010200 (PerfCtrExtCore), not the four legacy ones */
};

/* The PMU of a CPUID list (NULL: none). Pure. */
void vcpu_reset_pmu_from_cpuid(const struct kvm_cpuid2 *cpuid, struct vcpu_reset_pmu *ret);

/* What the platform decides about a vCPU at RESET. */
struct vcpu_reset_config {
	uint32_t apic_id;	 /* LAPIC ID after RESET (INIT keeps the old one) */
	bool bsp;		 /* RESET: bootstrap processor (IA32_APIC_BASE.BSP) */
	uint32_t signature;	 /* RDX after the event: CPUID.1.EAX, family/model/stepping */
	/*
	 * BSP only: leave LVT LINT0 unmasked in ExtINT mode ("virtual wire",
	 * MP spec §3.6.2.2) as firmware does, so that 8259 PIC interrupts
	 * reach a guest that never programs its LAPIC. KVM sets up the BSP
	 * this way at vCPU creation; vmmd has no firmware to do it after a
	 * RESET. Architecturally LINT0 is masked after RESET.
	 */
	bool lint0_virtual_wire;
	struct vcpu_reset_pmu pmu; /* the counters RESET clears */
};

/* The part of the state just before the event that the new state depends on. */
struct vcpu_reset_prior {
	uint64_t cr0;		       /* INIT keeps CR0.CD and CR0.NW */
	uint64_t cr4, efer;	       /* with CR0: the old MMU role */
	unsigned int mmu_flags;	       /* MMU_CTX_SMM / MMU_CTX_GUEST_MODE at the event */
	uint64_t apic_base;	       /* INIT keeps IA32_APIC_BASE */
	struct kvm_lapic_state lapic;  /* INIT keeps the APIC ID; both keep the version */
};

/* Upper bound of reset_state.msrs. */
#define VCPU_RESET_MAX_MSRS 64
/* The FXSAVE legacy area and the XSAVE header (SDM Vol. 1 §13.4). */
#define VCPU_RESET_XSAVE_START 576

/*
 * The complete state after the event, as KVM structures. Groups an event
 * leaves alone are marked by the writes_* flags (INIT keeps x87/SSE/AVX
 * state, XCR0 and most MSRs).
 */
struct vcpu_reset_state {
	enum vcpu_reset_kind kind;
	/* The MMU side (mmu_reset_outcome()): CR0/CR4/EFER after the event,
	 * which sregs holds, and the role they give (direct). */
	struct mmu_reset_outcome mmu;
	struct kvm_regs regs;
	struct kvm_sregs2 sregs; /* apic_base included; flags = 0 (no PDPTEs) */
	struct kvm_debugregs debugregs;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	struct kvm_lapic_state lapic;
	bool writes_fpu;     /* RESET: fpu without XSAVE, xsave_start with it */
	struct kvm_fpu fpu;
	/*
	 * RESET on a host with XSAVE: the first bytes of the image, the
	 * legacy area with fpu's values and the header whose XSTATE_BV gives
	 * x87 and SSE only. The rest of the image is zero: every other
	 * component (YMM, MPX, AVX-512, PKRU, ...) in its initial
	 * configuration.
	 */
	uint8_t xsave_start[VCPU_RESET_XSAVE_START];
	bool writes_xcr0;    /* RESET */
	uint64_t xcr0;
	uint64_t xstate_clear; /* INIT: XSAVE components put back to their initial state */
	unsigned int nr_msrs;  /* written when KVM supports them, in this order */
	struct kvm_msr_entry msrs[VCPU_RESET_MAX_MSRS];
};

/*
 * The state after `kind`, from the platform's config and (for INIT) the
 * prior state. Pure: no KVM. CR0, CR4 and EFER come from
 * mmu_reset_outcome(), the one definition of them. Returns -EINVAL for an
 * unknown kind or NULL arguments, -EBUSY for INIT in SMM or while a nested
 * guest runs (INIT is latched then, MMU.md §6), -ENOMEM; *ret is untouched
 * then.
 */
int vcpu_reset_compute(enum vcpu_reset_kind kind, const struct vcpu_reset_config *cfg,
		       const struct vcpu_reset_prior *prior, struct vcpu_reset_state *ret);

/*
 * Config vmmd uses for vCPU v: APIC ID = vCPU id, BSP = vCPU 0, signature =
 * CPUID.1.EAX of the CPUID set on v (0x600 before any, as KVM), virtual
 * wire on the BSP, the performance counters of v's CPUID (none before one
 * is set).
 */
void vcpu_reset_default_config(const struct vcpu *v, struct vcpu_reset_config *ret);

/*
 * Reads what vcpu_reset_compute() needs of v's current state. Must run
 * where vCPU ioctls are allowed: on v's thread (inside vcpu_call()) or
 * while no thread runs v.
 */
int vcpu_reset_read_prior(struct vcpu *v, struct vcpu_reset_prior *ret, struct error *err);

/*
 * Writes s into v: SREGS(2) with IA32_APIC_BASE, LAPIC, the MSRs KVM
 * supports, XCRS and XSAVE (or FPU), debug registers, events, MP state and
 * REGS, in this order (LAPIC before IA32_TSC_DEADLINE, XCR0 before the
 * XSAVE image it must cover). Same thread rules as vcpu_reset_read_prior().
 * A failure leaves v partly written; its message names the ioctl. On
 * success v's MMU snapshot becomes s->mmu's registers and role.
 */
int vcpu_reset_apply(struct vcpu *v, const struct vcpu_reset_state *s, struct error *err);

/*
 * RESET or INIT of v: reads the prior state, computes, applies and
 * replaces v's MMU snapshot with the new (direct) role. Runs through vcpu_call(), so it may be called from
 * any thread except v's own, whether v's thread runs, is paused or is
 * gone; a running vCPU is reset between two KVM_RUNs. For a platform
 * reset, pause every vCPU first so that none runs on with the old state.
 */
int vcpu_reset(struct vcpu *v, enum vcpu_reset_kind kind, const struct vcpu_reset_config *cfg,
	       struct error *err);

#endif
