/* SPDX-License-Identifier: MIT */
#include "vcpu/reset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"
#include "vcpu/cpuid.h"
#include "vcpu/state.h"
#include "vcpu/vcpu-internal.h"
#include "vcpu/x86.h"

_Static_assert(VCPU_RESET_XSAVE_START == XSAVE_LEGACY_AND_HEADER, "legacy area and XSAVE header");

const char *vcpu_reset_kind_name(enum vcpu_reset_kind kind)
{
	switch (kind) {
	case VCPU_RESET_POWER_ON:
		return "reset";
	case VCPU_RESET_INIT:
		return "init";
	}
	return "unknown";
}

/* ---------------------------------------------------------------- registers */

/* SDM Table 9-1: EIP = 0xFFF0, EFLAGS = 0x2 (bit 1 is fixed to 1), EDX =
 * family/model/stepping, every other GPR including R8-R15 = 0. EAX is 0
 * when no BIST was requested. Same after RESET and INIT. */
static void reset_regs(uint32_t signature, struct kvm_regs *r)
{
	memset(r, 0, sizeof(*r));
	r->rip = 0xFFF0;
	r->rflags = X86_RFLAGS_FIXED;
	r->rdx = signature;
}

static struct kvm_segment real_mode_segment(uint16_t selector, uint64_t base, uint8_t type,
					    bool system)
{
	return (struct kvm_segment){
		.base = base, .limit = 0xFFFF, .selector = selector, .type = type,
		.present = 1, .dpl = 0, .db = 0, .s = system ? 0 : 1, .l = 0, .g = 0,
	};
}

/*
 * SDM Table 9-1, APM Table 14-1 and MMU.md §6, after RESET and INIT alike:
 *  - CS: selector F000, base FFFF0000, limit FFFF, present, accessed,
 *    readable code (type 0xB; SDM "Present, R/W, Accessed"; KVM uses
 *    AR 0x9B on VMX, the value VM entry accepts for real-mode CS);
 *  - DS/ES/FS/GS/SS: selector 0, base 0, limit FFFF, present, accessed
 *    read/write data (type 0x3);
 *  - LDTR: selector 0, base 0, limit FFFF, present, type LDT (0x2);
 *  - TR: selector 0, base 0, limit FFFF, present, busy 32-bit TSS (0xB);
 *  - GDTR/IDTR: base 0, limit FFFF;
 *  - CR2 = CR3 = CR8 = 0;
 *  - CR0, CR4 and EFER as mmu_reset_outcome() gives them (CR0 = 0x60000010
 *    after RESET; after INIT CD and NW kept, ET = 1, the rest 0; CR4 =
 *    EFER = 0).
 */
static void reset_sregs(const struct mmu_role_regs *regs, struct kvm_sregs2 *s)
{
	memset(s, 0, sizeof(*s));
	s->cs = real_mode_segment(0xF000, 0xFFFF0000, X86_SEG_CODE_XR_ACCESSED, false);
	s->ds = real_mode_segment(0, 0, X86_SEG_DATA_RW_ACCESSED, false);
	s->es = s->fs = s->gs = s->ss = s->ds;
	s->ldt = real_mode_segment(0, 0, X86_SEG_SYS_LDT, true);
	s->tr = real_mode_segment(0, 0, X86_SEG_SYS_TSS32_BUSY, true);
	s->gdt.limit = 0xFFFF;
	s->idt.limit = 0xFFFF;
	s->cr0 = regs->cr0;
	s->cr4 = regs->cr4;
	s->efer = regs->efer;
}

/* SDM Table 9-1: DR0-DR3 = 0, DR6 = FFFF0FF0, DR7 = 400. */
static void reset_debugregs(struct kvm_debugregs *d)
{
	memset(d, 0, sizeof(*d));
	d->dr6 = X86_DR6_RESET;
	d->dr7 = X86_DR7_RESET;
}

/*
 * Pending and injected exceptions, interrupts, NMIs and SMIs, the interrupt
 * shadow, NMI masking and a latched INIT are all cleared (MMU.md §6;
 * KVM's INIT clears them too). The flags make KVM_SET_VCPU_EVENTS apply
 * the NMI, SIPI-vector, shadow and SMM parts, which it otherwise ignores.
 */
static void reset_events(struct kvm_vcpu_events *e)
{
	memset(e, 0, sizeof(*e));
	e->flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
		   KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
}

/* SDM §8.4.1 (MP initialization): after RESET or INIT the BSP runs and the
 * APs wait for a SIPI. The BSP is the vCPU whose IA32_APIC_BASE.BSP is set. */
static void reset_mp_state(bool bsp, struct kvm_mp_state *mp)
{
	mp->mp_state = bsp ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_INIT_RECEIVED;
}

/*
 * x87, SSE and XSAVE state after RESET (SDM Table 9-1, APM Table 14-1):
 * FCW = 0x0040, FSW = 0, FTW = 0x5555 (every register tagged "zero"),
 * ST0-ST7 = +0.0, FPU pointers, selectors and opcode 0, MXCSR = 0x1F80,
 * XMM/YMM/ZMM = 0, XCR0 = 1. KVM's own vCPU creation leaves the FNINIT
 * state (FCW 0x037F, all registers empty) instead; vmmd follows the table.
 * kvm_fpu.ftwx is the FXSAVE abridged tag byte, one bit per register
 * with 1 = not empty (SDM Vol. 1 §10.5.1), so 0x5555 becomes 0xFF.
 * kvm_fpu has no FCS/FDS: in the FXSAVE image they are bits 47:32 of
 * last_ip and last_dp, 0 here.
 */
static void reset_fpu(struct kvm_fpu *f)
{
	memset(f, 0, sizeof(*f));
	f->fcw = X86_FCW_RESET;
	f->ftwx = X86_FTW_ABRIDGED_ALL_VALID;
	f->mxcsr = X86_MXCSR_RESET;
}

/*
 * The XSAVE header after RESET: XSTATE_BV gives the x87 and SSE components
 * explicitly, because the x87 component's initial configuration is the
 * FNINIT state, not the RESET state; every other bit is clear, so XRSTOR
 * (and KVM_SET_XSAVE) puts YMM_Hi128, BNDREGS, BNDCSR, the AVX-512 opmask
 * and ZMM state and PKRU in their initial configuration, all zero (SDM
 * Vol. 1 §13.6; Table 9-1: YMM/ZMM 0, BND0-BND3 and BNDCFGU 0; PKRU 0).
 * XCOMP_BV = 0: the standard format, which KVM takes.
 */
static void reset_xsave_header(uint8_t *image)
{
	uint64_t xstate_bv = X86_XFEATURE_X87 | X86_XFEATURE_SSE, xcomp_bv = 0;

	memcpy(image + XSAVE_XSTATE_BV, &xstate_bv, sizeof(xstate_bv));
	memcpy(image + XSAVE_XCOMP_BV, &xcomp_bv, sizeof(xcomp_bv));
}

/* The first VCPU_RESET_XSAVE_START bytes of the RESET XSAVE image: the
 * legacy area with f's x87/SSE values, then the header. */
static void reset_xsave_start(const struct kvm_fpu *f, uint8_t *image)
{
	memset(image, 0, VCPU_RESET_XSAVE_START);
	vcpu_fpu_to_xsave(f, image);
	reset_xsave_header(image);
}

static void add_msr(struct vcpu_reset_state *s, uint32_t index, uint64_t value)
{
	s->msrs[s->nr_msrs].index = index;
	s->msrs[s->nr_msrs].data = value;
	s->nr_msrs++;
}

/*
 * KVM's paravirtual MSRs that make KVM write into guest memory (kvmclock,
 * steal time, async page faults, PV EOI). KVM clears them on every RESET
 * and INIT it performs (kvm_vcpu_reset()): the OS that registered them is
 * gone. The wall-clock MSRs are not vCPU state (a write only asks KVM to
 * store the time once) and are left alone.
 */
static void reset_pv_msrs(struct vcpu_reset_state *s)
{
	add_msr(s, MSR_KVM_SYSTEM_TIME, 0);
	add_msr(s, MSR_KVM_SYSTEM_TIME_NEW, 0);
	add_msr(s, MSR_KVM_ASYNC_PF_EN, 0);
	add_msr(s, MSR_KVM_STEAL_TIME, 0);
	add_msr(s, MSR_KVM_PV_EOI_EN, 0);
	add_msr(s, MSR_KVM_ASYNC_PF_INT, 0);
	/* KVM's value at creation and reset: guest halt polling allowed. */
	add_msr(s, MSR_KVM_POLL_CONTROL, 1);
}

/*
 * MSRs after RESET. Architectural values: TSC = 0 (Table 9-1), PAT =
 * 0x0007040600070406 (§11.12.4), MTRRs disabled (Table 9-1:
 * IA32_MTRR_DEF_TYPE.E = 0), IA32_XSS = 0 (Table 9-1), TSC_ADJUST = 0
 * (§17.17.3), TSC_DEADLINE = 0 (§10.5.4.1), DEBUGCTL = 0 (§17.4.1),
 * SPEC_CTRL = 0. The table calls every other MSR "undefined" after RESET;
 * vmmd zeroes the ones KVM zeroes when it creates a vCPU (SYSENTER,
 * SYSCALL, KERNEL_GS_BASE, TSC_AUX) so a reset vCPU equals a new one.
 * SMBASE is KVM's (it sets 0x30000 at its RESET, kvm_vcpu_reset()), and
 * KVM lets userspace write it as MSR_IA32_SMBASE only where it has SMM;
 * elsewhere apply_msrs() skips it like any MSR KVM does not read. INIT
 * leaves all of them alone (Table 9-1: "unchanged").
 */
static void reset_msrs(struct vcpu_reset_state *s)
{
	add_msr(s, MSR_IA32_TSC, 0);
	add_msr(s, MSR_IA32_TSC_ADJUST, 0);
	add_msr(s, MSR_IA32_PAT, X86_PAT_RESET);
	add_msr(s, MSR_IA32_MTRR_DEF_TYPE, 0);
	add_msr(s, MSR_IA32_XSS, 0);
	add_msr(s, MSR_IA32_DEBUGCTL, 0);
	add_msr(s, MSR_IA32_SPEC_CTRL, 0);
	add_msr(s, MSR_IA32_SYSENTER_CS, 0);
	add_msr(s, MSR_IA32_SYSENTER_ESP, 0);
	add_msr(s, MSR_IA32_SYSENTER_EIP, 0);
	add_msr(s, MSR_STAR, 0);
	add_msr(s, MSR_LSTAR, 0);
	add_msr(s, MSR_CSTAR, 0);
	add_msr(s, MSR_SYSCALL_MASK, 0);
	add_msr(s, MSR_KERNEL_GS_BASE, 0);
	add_msr(s, MSR_TSC_AUX, 0);
	add_msr(s, MSR_IA32_SMBASE, X86_SMBASE_RESET);
	/* After the LAPIC: the deadline only means something in its timer mode. */
	add_msr(s, MSR_IA32_TSC_DEADLINE, 0);
}

/*
 * IA32_BNDCFGS (MPX supervisor configuration) is 0 after RESET and after
 * INIT, like the bound registers and BNDCFGU (Table 9-1; KVM's
 * vmx_vcpu_reset() zeroes it on both).
 */
static void reset_mpx_config(struct vcpu_reset_state *s)
{
	add_msr(s, MSR_IA32_BNDCFGS, 0);
}

/* ---------------------------------------------------------------- performance counters */

/* The most counters KVM exposes; more would collide with other
 * architectural MSRs (KVM_MAX_NR_INTEL_GP_COUNTERS and friends). */
#define PMU_MAX_INTEL_GP 8
#define PMU_MAX_INTEL_FIXED 3
#define PMU_MAX_AMD_GP 6
#define PMU_AMD_LEGACY_GP 4
#define CPUID_LEAF_PERFMON 0xA
#define CPUID_LEAF_EXT_FEATURES 0x80000001
#define CPUID_LEAF_AMD_PERFMON 0x80000022
#define CPUID_80000001_ECX_PERFCTR_CORE (1U << 23)
#define CPUID_80000022_EAX_PERFMON_V2 (1U << 0)

/* CPUID.0:EBX,EDX,ECX = "AuthenticAMD" or "HygonGenuine". */
static bool cpuid_vendor_is_amd(const struct kvm_cpuid2 *c)
{
	const struct kvm_cpuid_entry2 *e = vcpu_cpuid_entry(c, 0, 0);
	char vendor[13] = "";

	if (!e)
		return false;
	memcpy(vendor, &e->ebx, 4);
	memcpy(vendor + 4, &e->edx, 4);
	memcpy(vendor + 8, &e->ecx, 4);
	return strcmp(vendor, "AuthenticAMD") == 0 || strcmp(vendor, "HygonGenuine") == 0;
}

/* SDM Vol. 3B §18.2.1-18.2.2: CPUID.0AH:EAX[7:0] version, EAX[15:8]
 * general-purpose counters, EDX[4:0] fixed-function counters (version 2
 * and later). */
static void intel_pmu(const struct kvm_cpuid2 *c, struct vcpu_reset_pmu *p)
{
	const struct kvm_cpuid_entry2 *e = vcpu_cpuid_entry(c, CPUID_LEAF_PERFMON, 0);

	if (!e || (e->eax & 0xFF) == 0)
		return;
	p->kind = VCPU_RESET_PMU_INTEL;
	p->version = e->eax & 0xFF;
	p->nr_gp = MIN((e->eax >> 8) & 0xFF, PMU_MAX_INTEL_GP);
	p->nr_fixed = p->version > 1 ? MIN(e->edx & 0x1F, PMU_MAX_INTEL_FIXED) : 0;
}

/* APM Vol. 2 §13.2: four legacy counters; six at other addresses with
 * PerfCtrExtCore (CPUID.80000001H:ECX[23]); with PerfMonV2
 * (CPUID.80000022H:EAX[0]) EBX[3:0] counters and global control. */
static void amd_pmu(const struct kvm_cpuid2 *c, struct vcpu_reset_pmu *p)
{
	const struct kvm_cpuid_entry2 *ext = vcpu_cpuid_entry(c, CPUID_LEAF_EXT_FEATURES, 0);
	const struct kvm_cpuid_entry2 *v2 = vcpu_cpuid_entry(c, CPUID_LEAF_AMD_PERFMON, 0);

	p->kind = VCPU_RESET_PMU_AMD;
	p->version = 1;
	p->amd_core = ext && (ext->ecx & CPUID_80000001_ECX_PERFCTR_CORE);
	p->nr_gp = p->amd_core ? PMU_MAX_AMD_GP : PMU_AMD_LEGACY_GP;
	if (p->amd_core && v2 && (v2->eax & CPUID_80000022_EAX_PERFMON_V2)) {
		p->version = 2;
		p->nr_gp = MIN(v2->ebx & 0xF, PMU_MAX_AMD_GP);
	}
}

void vcpu_reset_pmu_from_cpuid(const struct kvm_cpuid2 *cpuid, struct vcpu_reset_pmu *ret)
{
	*ret = (struct vcpu_reset_pmu){ .kind = VCPU_RESET_PMU_NONE };
	if (!cpuid)
		return;
	if (cpuid_vendor_is_amd(cpuid))
		amd_pmu(cpuid, ret);
	else
		intel_pmu(cpuid, ret);
}

/* IA32_PERF_GLOBAL_CTRL (AMD: PerfCntrGlobalCtl) after RESET: "sets bits
 * n-1:0 and clears the upper bits", n the number of general-purpose
 * counters (SDM Table 9-1 from the March 2023 edition; KVM does the same). */
static uint64_t pmu_global_ctrl_reset(const struct vcpu_reset_pmu *p)
{
	return p->nr_gp ? BITS(0, p->nr_gp - 1) : 0;
}

static void reset_intel_pmu(struct vcpu_reset_state *s, const struct vcpu_reset_pmu *p)
{
	for (unsigned int i = 0; i < p->nr_gp; i++) {
		add_msr(s, MSR_IA32_PERFEVTSEL0 + i, 0);
		add_msr(s, MSR_IA32_PMC0 + i, 0);
	}
	if (p->version < 2)
		return;
	add_msr(s, MSR_IA32_FIXED_CTR_CTRL, 0);
	for (unsigned int i = 0; i < p->nr_fixed; i++)
		add_msr(s, MSR_IA32_FIXED_CTR0 + i, 0);
	add_msr(s, MSR_IA32_PERF_GLOBAL_STATUS, 0);
	add_msr(s, MSR_IA32_PERF_GLOBAL_CTRL, pmu_global_ctrl_reset(p));
}

static void reset_amd_pmu(struct vcpu_reset_state *s, const struct vcpu_reset_pmu *p)
{
	for (unsigned int i = 0; i < p->nr_gp; i++) {
		add_msr(s, p->amd_core ? MSR_F15H_PERF_CTL0 + 2 * i : MSR_K7_EVNTSEL0 + i, 0);
		add_msr(s, p->amd_core ? MSR_F15H_PERF_CTL0 + 2 * i + 1 : MSR_K7_PERFCTR0 + i, 0);
	}
	if (p->version < 2)
		return;
	add_msr(s, MSR_AMD64_PERF_CNTR_GLOBAL_STATUS, 0);
	add_msr(s, MSR_AMD64_PERF_CNTR_GLOBAL_CTL, pmu_global_ctrl_reset(p));
}

/* SDM Table 9-1: performance-monitoring counters and event selects are 0
 * after RESET and unchanged by INIT. */
static void reset_pmu(struct vcpu_reset_state *s, const struct vcpu_reset_pmu *p)
{
	if (p->kind == VCPU_RESET_PMU_INTEL)
		reset_intel_pmu(s, p);
	else if (p->kind == VCPU_RESET_PMU_AMD)
		reset_amd_pmu(s, p);
}

/* ---------------------------------------------------------------- local APIC */

static uint32_t lapic_reg(const struct kvm_lapic_state *l, unsigned int off)
{
	uint32_t v;

	memcpy(&v, &l->regs[off], sizeof(v));
	return v;
}

static void lapic_set(struct kvm_lapic_state *l, unsigned int off, uint32_t v)
{
	memcpy(&l->regs[off], &v, sizeof(v));
}

/*
 * SDM §10.4.7.1, local APIC after power-up or RESET: IRR, ISR, TMR, ICR,
 * LDR and TPR = 0; timer initial and current count = 0; divide
 * configuration = 0; DFR = all ones; every LVT entry 0 except its mask bit;
 * spurious-interrupt vector register = 0xFF (APIC software-disabled); the
 * version register is not affected; xAPIC mode. §10.4.7.3: after INIT the
 * same, except that the APIC ID (and arbitration ID) are kept. In x2APIC
 * mode, which INIT keeps (§10.12.5.1), the LDR is derived from the ID and
 * has no DFR, so it is kept as well.
 */
static void reset_lapic(enum vcpu_reset_kind kind, const struct vcpu_reset_config *cfg,
			const struct vcpu_reset_prior *prior, bool bsp, uint64_t apic_base,
			struct kvm_lapic_state *l)
{
	static const unsigned int lvts[] = {
		APIC_LVT_TIMER, APIC_LVT_THERMAL, APIC_LVT_PERF,
		APIC_LVT_LINT0, APIC_LVT_LINT1, APIC_LVT_ERROR,
	};
	bool x2apic = apic_base & X86_APIC_BASE_EXTD;
	uint32_t version = lapic_reg(&prior->lapic, APIC_VERSION);

	memset(l, 0, sizeof(*l));
	lapic_set(l, APIC_VERSION, version);
	if (kind == VCPU_RESET_POWER_ON)
		/* xAPIC format: the ID is in bits 31:24 (§10.4.6). */
		lapic_set(l, APIC_ID, cfg->apic_id << 24);
	else
		lapic_set(l, APIC_ID, lapic_reg(&prior->lapic, APIC_ID));
	if (x2apic) {
		lapic_set(l, APIC_LDR, lapic_reg(&prior->lapic, APIC_LDR));
	} else {
		lapic_set(l, APIC_DFR, 0xFFFFFFFF);
	}
	lapic_set(l, APIC_SPURIOUS, 0xFF);
	for (size_t i = 0; i < ARRAY_SIZE(lvts); i++)
		lapic_set(l, lvts[i], APIC_LVT_MASKED);
	/* The CMCI LVT exists only on APICs with 7 LVT entries: version bits
	 * 23:16 hold the entry count minus one (§10.4.8); otherwise the
	 * offset is reserved and reads 0. */
	if (APIC_VERSION_MAX_LVT(version) >= APIC_LVT_CMCI_INDEX)
		lapic_set(l, APIC_LVT_CMCI, APIC_LVT_MASKED);
	if (bsp && cfg->lint0_virtual_wire)
		lapic_set(l, APIC_LVT_LINT0, APIC_DM_EXTINT);
}

/* ---------------------------------------------------------------- the event */

/*
 * SDM §10.4.4: after RESET, IA32_APIC_BASE = 0xFEE00000 with the global
 * enable bit (11) and, on the BSP, the BSP flag (8); xAPIC mode. INIT
 * leaves the MSR unchanged (Table 9-1, MMU.md §6).
 */
static uint64_t reset_apic_base(enum vcpu_reset_kind kind, const struct vcpu_reset_config *cfg,
				const struct vcpu_reset_prior *prior)
{
	if (kind == VCPU_RESET_INIT)
		return prior->apic_base;
	return X86_APIC_DEFAULT_BASE | X86_APIC_BASE_ENABLE | (cfg->bsp ? X86_APIC_BASE_BSP : 0);
}

int vcpu_reset_compute(enum vcpu_reset_kind kind, const struct vcpu_reset_config *cfg,
		       const struct vcpu_reset_prior *prior, struct vcpu_reset_state *ret)
{
	const struct mmu_role_regs old = { prior ? prior->cr0 : 0, prior ? prior->cr4 : 0,
					   prior ? prior->efer : 0 };
	struct mmu_reset_outcome mmu;
	struct vcpu_reset_state *s;
	uint64_t apic_base;
	bool bsp;
	int rc;

	if (!cfg || !prior || !ret ||
	    (kind != VCPU_RESET_POWER_ON && kind != VCPU_RESET_INIT))
		return -EINVAL;
	rc = mmu_reset_outcome(kind == VCPU_RESET_INIT ? MMU_RESET_INIT : MMU_RESET_POWER_ON, &old,
			       prior->mmu_flags, &mmu);
	if (rc < 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->kind = kind;
	s->mmu = mmu;
	apic_base = reset_apic_base(kind, cfg, prior);
	bsp = apic_base & X86_APIC_BASE_BSP;
	reset_regs(cfg->signature, &s->regs);
	reset_sregs(&mmu.regs, &s->sregs);
	s->sregs.apic_base = apic_base;
	reset_debugregs(&s->debugregs);
	reset_events(&s->events);
	reset_mp_state(bsp, &s->mp_state);
	reset_lapic(kind, cfg, prior, bsp, apic_base, &s->lapic);
	if (kind == VCPU_RESET_POWER_ON) {
		s->writes_fpu = true;
		reset_fpu(&s->fpu);
		reset_xsave_start(&s->fpu, s->xsave_start);
		s->writes_xcr0 = true;
		s->xcr0 = X86_XCR0_X87;
		reset_msrs(s);
		reset_pmu(s, &cfg->pmu);
	} else {
		/* SDM Table 9-1: INIT clears BND0-BND3, BNDCFGU and BNDSTATUS. */
		s->xstate_clear = X86_XFEATURE_BNDREGS | X86_XFEATURE_BNDCSR;
	}
	reset_mpx_config(s);
	reset_pv_msrs(s);
	*ret = *s;
	free(s);
	return 0;
}

/* ---------------------------------------------------------------- applying */

void vcpu_reset_default_config(const struct vcpu *v, struct vcpu_reset_config *ret)
{
	*ret = (struct vcpu_reset_config){
		.apic_id = v->id,
		.bsp = v->id == 0,
		.signature = vcpu_cpuid_signature(v),
		.lint0_virtual_wire = true,
	};
	vcpu_reset_pmu_from_cpuid(v->cpuid, &ret->pmu);
}

int vcpu_reset_read_prior(struct vcpu *v, struct vcpu_reset_prior *ret, struct error *err)
{
	struct kvm_sregs2 s;
	int rc;

	rc = vcpu_get_sregs2(v, &s, err);
	if (rc == 0)
		rc = vcpu_get_lapic(v, &ret->lapic, err);
	if (rc == 0)
		rc = vcpu_mmu_flags(v, &ret->mmu_flags, err);
	if (rc < 0)
		return rc;
	ret->cr0 = s.cr0;
	ret->cr4 = s.cr4;
	ret->efer = s.efer;
	ret->apic_base = s.apic_base;
	return 0;
}

/*
 * Writes the MSRs of s that this vCPU has, in order, skipping those that
 * already hold their value: KVM lets userspace read some MSRs the guest's
 * CPUID does not expose (IA32_XSS without XSAVES) but refuses writes to
 * them, even of their current value.
 */
static int apply_msrs(struct vcpu *v, const struct vcpu_reset_state *s, struct error *err)
{
	struct kvm_msr_entry msrs[VCPU_RESET_MAX_MSRS];
	unsigned int n = 0;

	for (unsigned int i = 0; i < s->nr_msrs; i++) {
		struct kvm_msr_entry cur = { .index = s->msrs[i].index };
		int rc;
		if (cur.index == MSR_IA32_TSC) {
			rc = vcpu_write_tsc(v, s->msrs[i].data, err);
			if (rc < 0)
				return rc;
			continue;
		}
		if (vcpu_get_msrs(v, &cur, 1, NULL) < 0)
			continue;
		if (cur.data != s->msrs[i].data)
			msrs[n++] = s->msrs[i];
	}
	return vcpu_set_msrs(v, msrs, n, err);
}

/* RESET: s's XSAVE image, the computed start and zeros after it, or
 * KVM_SET_FPU with the same x87/SSE values where KVM has no XSAVE. */
static int apply_fpu(struct vcpu *v, const struct vcpu_reset_state *s, struct error *err)
{
	_cleanup_free_ struct kvm_xsave *x = NULL;
	size_t size = vcpu_xsave_size(v);

	if (size == 0)
		return vcpu_set_fpu(v, &s->fpu, err);
	x = calloc(1, size);
	if (!x)
		return error_set(err, -ENOMEM, "KVM_SET_XSAVE on vcpu %u: out of memory", v->id);
	memcpy(x->region, s->xsave_start, sizeof(s->xsave_start));
	return vcpu_set_xsave(v, x, size, err);
}

/* INIT: puts the components in s->xstate_clear back to their initial
 * configuration, leaving every other XSAVE component as it is. */
static int apply_xstate_clear(struct vcpu *v, const struct vcpu_reset_state *s,
			      struct error *err)
{
	_cleanup_free_ struct kvm_xsave *x = NULL;
	size_t size;
	uint64_t bv;
	int rc;

	if (!s->xstate_clear || vcpu_xsave_size(v) == 0)
		return 0;
	rc = vcpu_get_xsave(v, &x, &size, err);
	if (rc < 0)
		return rc;
	memcpy(&bv, (uint8_t *)x->region + XSAVE_XSTATE_BV, sizeof(bv));
	if (!(bv & s->xstate_clear))
		return 0;
	bv &= ~s->xstate_clear;
	memcpy((uint8_t *)x->region + XSAVE_XSTATE_BV, &bv, sizeof(bv));
	return vcpu_set_xsave(v, x, size, err);
}

static int apply_xcr0(struct vcpu *v, const struct vcpu_reset_state *s, struct error *err)
{
	struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs[0] = { .xcr = 0, .value = s->xcr0 } };

	if (!s->writes_xcr0 || !vcpu_has_xcrs(v))
		return 0;
	return vcpu_set_xcrs(v, &xcrs, err);
}

int vcpu_reset_apply(struct vcpu *v, const struct vcpu_reset_state *s, struct error *err)
{
	int rc;

	rc = vcpu_set_sregs2(v, &s->sregs, err);
	if (rc == 0)
		rc = vcpu_set_lapic(v, &s->lapic, err);
	if (rc == 0)
		rc = apply_msrs(v, s, err);
	if (rc == 0)
		rc = apply_xcr0(v, s, err);
	if (rc == 0 && s->writes_fpu)
		rc = apply_fpu(v, s, err);
	if (rc == 0)
		rc = apply_xstate_clear(v, s, err);
	if (rc == 0)
		rc = vcpu_set_debugregs(v, &s->debugregs, err);
	if (rc == 0)
		rc = vcpu_set_events(v, &s->events, err);
	if (rc == 0)
		rc = vcpu_set_mp_state(v, &s->mp_state, err);
	if (rc == 0)
		rc = vcpu_set_regs(v, &s->regs, err);
	if (rc == 0)
		vcpu_mmu_snapshot_set(v, &s->mmu.regs, s->mmu.role);
	return rc;
}

struct reset_call {
	enum vcpu_reset_kind kind;
	const struct vcpu_reset_config *cfg;
	struct error *err;
};

static int refused(const struct reset_call *c, const struct vcpu *v, int rc)
{
	if (rc == -EBUSY)
		return error_set(c->err, rc,
				 "%s of vcpu %u refused: the vCPU is in SMM or runs a nested guest, where INIT stays latched",
				 vcpu_reset_kind_name(c->kind), v->id);
	return error_set(c->err, rc, "%s of vcpu %u: %s", vcpu_reset_kind_name(c->kind), v->id,
			 strerror(-rc));
}

static int reset_on_vcpu(struct vcpu *v, void *arg)
{
	struct reset_call *c = arg;
	_cleanup_free_ struct vcpu_reset_state *s = calloc(1, sizeof(*s));
	struct vcpu_reset_prior prior;
	int rc;

	if (!s)
		return refused(c, v, -ENOMEM);
	rc = vcpu_reset_read_prior(v, &prior, c->err);
	if (rc < 0)
		goto failed;
	rc = vcpu_reset_compute(c->kind, c->cfg, &prior, s);
	if (rc < 0)
		return refused(c, v, rc);
	rc = vcpu_reset_apply(v, s, c->err);
	if (rc < 0)
		goto failed;
	return 0;
failed:
	error_prefix(c->err, "%s of vcpu %u", vcpu_reset_kind_name(c->kind), v->id);
	return rc;
}

int vcpu_reset(struct vcpu *v, enum vcpu_reset_kind kind, const struct vcpu_reset_config *cfg,
	       struct error *err)
{
	struct vcpu_reset_config dflt;
	struct reset_call c = { .kind = kind, .cfg = cfg, .err = err };

	if (kind != VCPU_RESET_POWER_ON && kind != VCPU_RESET_INIT)
		return error_set(err, -EINVAL, "vcpu %u: unknown reset kind %d", v->id, (int)kind);
	if (!cfg) {
		vcpu_reset_default_config(v, &dflt);
		c.cfg = &dflt;
	}
	return vcpu_call(v, reset_on_vcpu, &c);
}
