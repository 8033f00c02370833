/* SPDX-License-Identifier: MIT */
/*
 * Checking a complete vCPU state against the vCPU it would be loaded into
 * (declared in vcpu/state.h). Pure: the target vCPU and its KVM are
 * described by a struct vcpu_state_target, which vcpu_state_check() reads
 * from KVM and tests write by hand. Each problem is one message that names
 * the field and says what is wrong with it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"
#include "vcpu/cpuid.h"
#include "vcpu/state.h"
#include "vcpu/x86.h"

/* KVM_MP_STATE_* values an x86 vCPU takes (KVM api.rst 4.38). */
#define MP_STATE_X86_MAX KVM_MP_STATE_SIPI_RECEIVED
/* Event flags KVM_SET_VCPU_EVENTS knows (asm/kvm.h). */
#define EVENTS_KNOWN_FLAGS                                                         \
	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |       \
	 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |                    \
	 KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
/* Interrupt shadow kinds KVM reports (asm/kvm.h). */
#define SHADOW_KNOWN (KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI)
/* Vector 2 is the NMI: never an exception to inject (SDM Vol. 3A Table 6-1). */
#define NMI_VECTOR 2
/* RFLAGS bits 63:22, 15, 5 and 3 are reserved as 0 (SDM Vol. 1 §3.4.3). */
#define RFLAGS_RESERVED (BITS(22, 63) | BIT(15) | BIT(5) | BIT(3))
/* IA32_APIC_BASE bits 7:0 and 9 are reserved (SDM Vol. 3A Figure 10-5). */
#define APIC_BASE_RESERVED_LOW (BITS(0, 7) | BIT(9))
/* MXCSR bits 31:16 are reserved (SDM Vol. 1 §10.2.3). */
#define MXCSR_RESERVED 0xFFFF0000U
/* Without CPUID 0x80000008, MAXPHYADDR is 36 (SDM Vol. 3A §4.1.4). */
#define DEFAULT_PHYS_BITS 36

static void problem(struct vcpu_state_problems *p, const char *fmt, ...) _printf_(2, 3);

static void problem(struct vcpu_state_problems *p, const char *fmt, ...)
{
	va_list ap;

	if (p->count >= VCPU_STATE_MAX_PROBLEMS) {
		p->truncated = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(p->msg[p->count], VCPU_STATE_PROBLEM_MAX, fmt, ap);
	va_end(ap);
	p->count++;
}

/* XCR0 bits the target's CPUID lets the guest enable: leaf 0xD.0 EDX:EAX
 * (SDM Vol. 1 §13.2), x87 and SSE always. */
static uint64_t supported_xcr0(const struct vcpu_state_target *t)
{
	struct kvm_cpuid_entry2 *e = t->cpuid ? vcpu_cpuid_entry(t->cpuid, 0xD, 0) : NULL;
	uint64_t mask = X86_XFEATURE_X87 | X86_XFEATURE_SSE;

	if (e)
		mask |= ((uint64_t)e->edx << 32) | e->eax;
	return mask;
}

/* ---------------------------------------------------------------- identity */

static void check_identity(const struct vcpu_state_target *t, const struct vcpu_state *s,
			   struct vcpu_state_problems *p)
{
	struct mmu_error diff;

	if (s->vcpu_id != t->vcpu_id)
		problem(p, "the state is of vcpu %u, not vcpu %u", s->vcpu_id, t->vcpu_id);
	if (!t->cpuid)
		problem(p, "vcpu %u has no CPUID set yet: set the VM's CPU model first", t->vcpu_id);
	else if (vcpu_cpuid_compare(t->cpuid, s->cpuid, s->nr_cpuid, &diff) < 0)
		problem(p, "the saved CPU model differs from vcpu %u's (%s); load into a VM with the same CPU model",
			t->vcpu_id, diff.msg);
	if (t->tsc_khz && t->tsc_khz != s->tsc_khz && !t->can_scale_tsc)
		problem(p, "TSC frequency %u kHz differs from this host's %u kHz and KVM cannot scale it (no KVM_CAP_TSC_CONTROL)",
			s->tsc_khz, t->tsc_khz);
}

/* ---------------------------------------------------------------- registers */

static void check_regs(const struct vcpu_state *s, struct vcpu_state_problems *p)
{
	uint64_t rf = s->regs.rflags;

	if (!(rf & X86_RFLAGS_FIXED) || (rf & RFLAGS_RESERVED))
		problem(p, "RFLAGS 0x%llx: bit 1 must be 1 and bits 3, 5, 15 and 22-63 0",
			(unsigned long long)rf);
}

/*
 * IA32_APIC_BASE (SDM Vol. 3A §10.4.4, §10.12.1): reserved bits 7:0 and 9
 * and those at or above MAXPHYADDR clear; x2APIC mode (EXTD) only when
 * enabled and when the CPU model has x2APIC.
 */
static void check_apic_base(const struct vcpu_state_target *t, const struct vcpu_state *s,
			    struct vcpu_state_problems *p)
{
	uint64_t base = s->sregs.apic_base;
	unsigned int m = t->cpuid ? vcpu_cpuid_phys_bits(t->cpuid) : DEFAULT_PHYS_BITS;

	if (base & (APIC_BASE_RESERVED_LOW | ~BITS(0, m - 1)))
		problem(p, "IA32_APIC_BASE 0x%llx sets reserved bits (7:0, 9, or %u and above)",
			(unsigned long long)base, m);
	if ((base & X86_APIC_BASE_EXTD) && !(base & X86_APIC_BASE_ENABLE))
		problem(p, "IA32_APIC_BASE 0x%llx: x2APIC mode (bit 10) with the APIC disabled (bit 11 clear) is invalid",
			(unsigned long long)base);
	if ((base & X86_APIC_BASE_EXTD) && t->cpuid &&
	    !vcpu_cpuid_has(t->cpuid, vcpu_cpu_feature_find("x2apic")))
		problem(p, "IA32_APIC_BASE 0x%llx: x2APIC mode (bit 10) but the CPU model has no x2apic",
			(unsigned long long)base);
}

static void check_sregs(const struct vcpu_state_target *t, const struct vcpu_state *s,
			struct vcpu_state_problems *p)
{
	uint64_t unknown = s->sregs.flags & ~(uint64_t)KVM_SREGS2_FLAGS_PDPTRS_VALID;

	if (unknown)
		problem(p, "sregs2 flags 0x%llx: bits 0x%llx are unknown (KVM defines only PDPTRS_VALID, 0x1)",
			(unsigned long long)s->sregs.flags, (unsigned long long)unknown);
	if ((s->sregs.flags & KVM_SREGS2_FLAGS_PDPTRS_VALID) && !t->has_sregs2)
		problem(p, "sregs2 flags: PAE PDPTEs given (PDPTRS_VALID) but KVM on this host lacks KVM_CAP_SREGS2");
	check_apic_base(t, s, p);
}

/* ---------------------------------------------------------------- x87, SSE, XSAVE */

static void check_xsave_image(const struct vcpu_state_target *t, const struct vcpu_state *s,
			      struct vcpu_state_problems *p)
{
	const uint8_t *x = (const uint8_t *)s->xsave->region;
	uint64_t bv, comp, allowed = supported_xcr0(t);
	uint32_t mxcsr;

	if (t->xsave_size == 0) {
		problem(p, "the state has an XSAVE image but KVM on this host has no KVM_CAP_XSAVE");
		return;
	}
	if (s->xsave_size > t->xsave_size)
		problem(p, "XSAVE image of %zu bytes is larger than this host's %zu", s->xsave_size,
			t->xsave_size);
	memcpy(&bv, x + XSAVE_XSTATE_BV, 8);
	memcpy(&comp, x + XSAVE_XCOMP_BV, 8);
	memcpy(&mxcsr, x + XSAVE_MXCSR, 4);
	if (bv & ~allowed)
		problem(p, "XSAVE image: XSTATE_BV 0x%llx holds components 0x%llx the CPU model does not have (CPUID.(EAX=0DH,ECX=0) allows 0x%llx)",
			(unsigned long long)bv, (unsigned long long)(bv & ~allowed),
			(unsigned long long)allowed);
	if (comp)
		problem(p, "XSAVE image: XCOMP_BV 0x%llx, the compacted format; KVM takes the standard one (XCOMP_BV 0)",
			(unsigned long long)comp);
	if (mxcsr & MXCSR_RESERVED)
		problem(p, "XSAVE image: MXCSR 0x%x sets reserved bits 31:16 (SDM Vol. 1 §10.2.3)", mxcsr);
}

/* XCR0 rules of SDM Vol. 1 §13.3: bit 0 always set; AVX (YMM) needs SSE;
 * the three AVX-512 components together, and only with YMM. */
static void check_xcr0(uint64_t xcr0, uint64_t allowed, struct vcpu_state_problems *p)
{
	uint64_t avx512 = xcr0 & X86_XFEATURE_AVX512;

	if (!(xcr0 & X86_XFEATURE_X87))
		problem(p, "XCR0 0x%llx lacks x87 (bit 0 must be 1)", (unsigned long long)xcr0);
	if (xcr0 & ~allowed)
		problem(p, "XCR0 0x%llx enables components the CPU model does not have (0x%llx allowed)",
			(unsigned long long)xcr0, (unsigned long long)allowed);
	if ((xcr0 & X86_XFEATURE_YMM) && !(xcr0 & X86_XFEATURE_SSE))
		problem(p, "XCR0 0x%llx enables AVX (bit 2) without SSE (bit 1)", (unsigned long long)xcr0);
	if (avx512 && avx512 != X86_XFEATURE_AVX512)
		problem(p, "XCR0 0x%llx enables AVX-512 state partly (bits 7:5 must be all set or all clear)",
			(unsigned long long)xcr0);
	if (avx512 && !(xcr0 & X86_XFEATURE_YMM))
		problem(p, "XCR0 0x%llx enables AVX-512 state without AVX (bit 2)", (unsigned long long)xcr0);
}

static void check_xcrs(const struct vcpu_state_target *t, const struct vcpu_state *s,
		       struct vcpu_state_problems *p)
{
	if (!t->has_xcrs) {
		problem(p, "the state has XCRs but KVM on this host has no KVM_CAP_XCRS");
		return;
	}
	if (s->xcrs.flags)
		problem(p, "XCR list: flags 0x%x are unknown (must be 0)", s->xcrs.flags);
	if (s->xcrs.nr_xcrs > KVM_MAX_XCRS) {
		problem(p, "XCR list: nr_xcrs %u is more than the %d KVM takes", s->xcrs.nr_xcrs,
			KVM_MAX_XCRS);
		return;
	}
	for (unsigned int i = 0; i < s->xcrs.nr_xcrs; i++) {
		if (s->xcrs.xcrs[i].xcr != 0)
			problem(p, "XCR list: XCR%u is not an extended control register KVM has (only XCR0)",
				s->xcrs.xcrs[i].xcr);
		else
			check_xcr0(s->xcrs.xcrs[i].value, supported_xcr0(t), p);
	}
}

static void check_fpu(const struct vcpu_state_target *t, const struct vcpu_state *s,
		      struct vcpu_state_problems *p)
{
	if (s->xsave)
		check_xsave_image(t, s, p);
	else if (s->fpu.mxcsr & MXCSR_RESERVED)
		problem(p, "fpu: MXCSR 0x%x sets reserved bits 31:16 (SDM Vol. 1 §10.2.3)", s->fpu.mxcsr);
	if (s->has_xcrs)
		check_xcrs(t, s, p);
}

/* ---------------------------------------------------------------- MSRs, LAPIC, debug */

static void check_msrs(const struct vcpu_state_target *t, const struct vcpu_state *s,
		       struct vcpu_state_problems *p)
{
	if (!t->msr_supported)
		return;
	for (unsigned int i = 0; i < s->nr_msrs; i++)
		if (!t->msr_supported(t->msr_ctx, s->msrs[i].index))
			problem(p, "MSR 0x%x is not supported by KVM for vcpu %u", s->msrs[i].index,
				t->vcpu_id);
}

/* The local APIC ID must be the vCPU's: KVM routes by it (xAPIC format,
 * ID in bits 31:24, as KVM_GET_LAPIC gives it without KVM_CAP_X2APIC_API). */
static void check_lapic(const struct vcpu_state_target *t, const struct vcpu_state *s,
			struct vcpu_state_problems *p)
{
	uint32_t id;

	memcpy(&id, &s->lapic.regs[APIC_ID], 4);
	if ((id >> 24) != (t->vcpu_id & 0xFF))
		problem(p, "local APIC ID %u is not vcpu %u's APIC ID", id >> 24, t->vcpu_id);
}

/* KVM_SET_DEBUGREGS refuses DR6/DR7 with bits 63:32 set (SDM Vol. 3B §17.2). */
static void check_debugregs(const struct vcpu_state *s, struct vcpu_state_problems *p)
{
	if (s->debugregs.dr6 >> 32)
		problem(p, "DR6 0x%llx sets bits 63:32", (unsigned long long)s->debugregs.dr6);
	if (s->debugregs.dr7 >> 32)
		problem(p, "DR7 0x%llx sets bits 63:32", (unsigned long long)s->debugregs.dr7);
	if (s->debugregs.flags)
		problem(p, "debugregs flags 0x%llx are unknown (must be 0)",
			(unsigned long long)s->debugregs.flags);
}

/* ---------------------------------------------------------------- events */

static void check_event_flags(const struct kvm_vcpu_events *e, struct vcpu_state_problems *p)
{
	if (e->flags & ~EVENTS_KNOWN_FLAGS)
		problem(p, "events flags 0x%x: bits 0x%x are unknown", e->flags,
			e->flags & ~EVENTS_KNOWN_FLAGS);
	if (e->flags & KVM_VCPUEVENT_VALID_PAYLOAD)
		problem(p, "events: an exception payload is given (flag VALID_PAYLOAD), but vmmd VMs do not enable KVM_CAP_EXCEPTION_PAYLOAD");
	if (e->flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
		problem(p, "events: a triple fault is given (flag VALID_TRIPLE_FAULT), but vmmd VMs do not enable KVM_CAP_X86_TRIPLE_FAULT_EVENT");
}

/* Fields KVM reads as booleans: a saved state holds only 0 or 1. */
static void check_event_booleans(const struct kvm_vcpu_events *e, struct vcpu_state_problems *p)
{
	const struct {
		const char *name;
		uint8_t value;
	} flags[] = {
		{ "exception.injected", e->exception.injected },
		{ "exception.pending", e->exception.pending },
		{ "exception.has_error_code", e->exception.has_error_code },
		{ "interrupt.injected", e->interrupt.injected },
		{ "interrupt.soft", e->interrupt.soft },
		{ "nmi.injected", e->nmi.injected },
		{ "nmi.pending", e->nmi.pending },
		{ "nmi.masked", e->nmi.masked },
		{ "smi.smm", e->smi.smm },
		{ "smi.pending", e->smi.pending },
		{ "smi.smm_inside_nmi", e->smi.smm_inside_nmi },
		{ "smi.latched_init", e->smi.latched_init },
	};

	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		if (flags[i].value > 1)
			problem(p, "events: %s is %u, must be 0 or 1", flags[i].name, flags[i].value);
}

/* SMM state needs KVM_CAP_X86_SMM: the fields that are set, by name. */
static void check_event_smm(const struct vcpu_state_target *t, const struct kvm_vcpu_events *e,
			    struct vcpu_state_problems *p)
{
	if (t->has_smm || !(e->smi.smm || e->smi.pending || e->smi.smm_inside_nmi))
		return;
	problem(p, "events:%s%s%s set, but KVM on this host has no SMM (KVM_CAP_X86_SMM)",
		e->smi.smm ? " smi.smm" : "", e->smi.pending ? " smi.pending" : "",
		e->smi.smm_inside_nmi ? " smi.smm_inside_nmi" : "");
}

static void check_events(const struct vcpu_state_target *t, const struct vcpu_state *s,
			 struct vcpu_state_problems *p)
{
	const struct kvm_vcpu_events *e = &s->events;

	check_event_flags(e, p);
	if ((e->exception.injected || e->exception.pending) &&
	    (e->exception.nr > 31 || e->exception.nr == NMI_VECTOR))
		problem(p, "events: exception.nr %u cannot be injected (0-31, not 2)", e->exception.nr);
	if (e->interrupt.shadow & ~SHADOW_KNOWN)
		problem(p, "events: interrupt.shadow 0x%x has unknown bits (1 MOV SS, 2 STI)",
			e->interrupt.shadow);
	check_event_booleans(e, p);
	check_event_smm(t, e, p);
}

static void check_mp_state(const struct vcpu_state *s, struct vcpu_state_problems *p)
{
	if (s->mp_state.mp_state > MP_STATE_X86_MAX)
		problem(p, "MP state %u is not an x86 vCPU state (0-%d)", s->mp_state.mp_state,
			MP_STATE_X86_MAX);
}

/* ---------------------------------------------------------------- nested and MMU */

static void check_nested(const struct vcpu_state_target *t, const struct vcpu_state *s,
			 struct vcpu_state_problems *p)
{
	if (!s->nested)
		return;
	if (t->nested_max <= 0)
		problem(p, "the state has nested virtualization state but KVM on this host lacks KVM_CAP_NESTED_STATE");
	else if (s->nested_size > (size_t)t->nested_max)
		problem(p, "nested state of %zu bytes exceeds this host's %d (KVM_CAP_NESTED_STATE)",
			s->nested_size, t->nested_max);
}

static struct mmu_segment mmu_segment_of(const struct kvm_segment *k)
{
	return (struct mmu_segment){
		.base = k->base, .limit = k->limit, .selector = k->selector, .type = k->type,
		.present = k->present, .dpl = k->dpl, .db = k->db, .s = k->s, .l = k->l, .g = k->g,
		.avl = k->avl, .unusable = k->unusable,
	};
}

void vcpu_sregs_mmu_state(const struct kvm_sregs2 *k, struct mmu_vcpu_state *m)
{
	*m = (struct mmu_vcpu_state){
		.cs = mmu_segment_of(&k->cs), .ds = mmu_segment_of(&k->ds),
		.es = mmu_segment_of(&k->es), .fs = mmu_segment_of(&k->fs),
		.gs = mmu_segment_of(&k->gs), .ss = mmu_segment_of(&k->ss),
		.tr = mmu_segment_of(&k->tr), .ldt = mmu_segment_of(&k->ldt),
		.cr0 = k->cr0, .cr2 = k->cr2, .cr3 = k->cr3, .cr4 = k->cr4, .cr8 = k->cr8,
		.efer = k->efer,
		.pdptrs_valid = k->flags & KVM_SREGS2_FLAGS_PDPTRS_VALID,
	};
	memcpy(m->pdptrs, k->pdptrs, sizeof(m->pdptrs));
}

/* The nested state parsed by mmu/, or a problem; NULL when there is none. */
static const struct mmu_nested_state *parse_nested(const struct vcpu_state *s,
						   struct mmu_nested_state *buf,
						   struct vcpu_state_problems *p)
{
	struct mmu_error me;

	if (!s->nested)
		return NULL;
	/* mmu/'s messages name the nested state themselves. */
	if (mmu_nested_state_parse(s->nested, s->nested_size, buf, &me) < 0) {
		problem(p, "%s", me.msg);
		return NULL;
	}
	return buf;
}

/*
 * Architectural consistency of control registers, EFER, segments, CR3,
 * CR8 and PAE PDPTEs against the CPU model KVM holds the target to, and
 * of nested state: mmu_validate_vcpu_state(), one problem per issue.
 */
static void check_architecture(const struct vcpu_state_target *t, const struct vcpu_state *s,
			       struct vcpu_state_problems *p)
{
	_cleanup_free_ struct mmu_issue_list *issues = calloc(1, sizeof(*issues));
	const struct kvm_cpuid2 *model = t->enforced ? t->enforced : t->cpuid;
	struct mmu_nested_state nested_buf;
	const struct mmu_nested_state *nested = parse_nested(s, &nested_buf, p);
	struct mmu_cpu_features features;
	struct mmu_vcpu_state m;
	struct error e;

	if (!issues || !model)
		return;
	if (vcpu_cpuid_mmu_features(model, &features, &e) < 0) {
		problem(p, "vcpu %u: %s", t->vcpu_id, e.msg);
		return;
	}
	vcpu_sregs_mmu_state(&s->sregs, &m);
	if (mmu_validate_vcpu_state(&m, &features, nested, issues) < 0) {
		problem(p, "vcpu %u: the MMU validator refused its input", t->vcpu_id);
		return;
	}
	for (unsigned int i = 0; i < issues->count; i++)
		problem(p, "%s", issues->issue[i].msg);
	if (issues->truncated)
		problem(p, "more MMU problems than the validator lists (%d)", MMU_MAX_ISSUES);
}

/* ---------------------------------------------------------------- all */

static void collect_problems(const struct vcpu_state_target *t, const struct vcpu_state *s,
			     struct vcpu_state_problems *p)
{
	check_identity(t, s, p);
	check_architecture(t, s, p);
	check_regs(s, p);
	check_sregs(t, s, p);
	check_fpu(t, s, p);
	check_msrs(t, s, p);
	check_lapic(t, s, p);
	check_debugregs(s, p);
	check_events(t, s, p);
	check_mp_state(s, p);
	check_nested(t, s, p);
}

int vcpu_state_check_target(const struct vcpu_state_target *t, const struct vcpu_state *s,
			    struct vcpu_state_problems *ret_problems, struct error *err)
{
	_cleanup_free_ struct vcpu_state_problems *p = calloc(1, sizeof(*p));

	if (!p)
		return error_set(err, -ENOMEM, "vcpu %u: out of memory", t->vcpu_id);
	collect_problems(t, s, p);
	if (ret_problems)
		*ret_problems = *p;
	if (p->count == 0)
		return 0;
	return error_set(err, -EINVAL, "state refused for vcpu %u: %u problem%s%s, first: %s",
			 t->vcpu_id, p->count, p->count == 1 ? "" : "s",
			 p->truncated ? " (list truncated)" : "", p->msg[0]);
}
