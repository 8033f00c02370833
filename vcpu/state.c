/* SPDX-License-Identifier: MIT */
/*
 * Complete vCPU state: save from KVM, check against a target vCPU, load
 * into KVM (declared in vcpu/state.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/macro.h"
#include "vcpu/cpuid.h"
#include "vcpu/state.h"
#include "vcpu/vcpu-internal.h"
#include "vcpu/x86.h"

/* KVM_MP_STATE_* values an x86 vCPU takes (KVM api.rst 4.38). */
#define MP_STATE_X86_MAX KVM_MP_STATE_SIPI_RECEIVED
/* Event flags KVM_SET_VCPU_EVENTS knows (asm/kvm.h). */
#define EVENTS_KNOWN_FLAGS                                                         \
	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |       \
	 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |                    \
	 KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
/* Vector 2 is the NMI: never an exception to inject (SDM Vol. 3A Table 6-1). */
#define NMI_VECTOR 2
/* RFLAGS bits 63:22, 15, 5 and 3 are reserved as 0 (SDM Vol. 1 §3.4.3). */
#define RFLAGS_RESERVED (BITS(22, 63) | BIT(15) | BIT(5) | BIT(3))
/* IA32_APIC_BASE bits 7:0 and 9 are reserved (SDM Vol. 3A Figure 10-5). */
#define APIC_BASE_RESERVED_LOW (BITS(0, 7) | BIT(9))

/* ---------------------------------------------------------------- save */

static int save_msrs(struct vcpu *v, struct vcpu_state *s, struct error *err)
{
	_cleanup_free_ uint32_t *idx = NULL;
	_cleanup_free_ struct kvm_msr_entry *e = NULL;
	unsigned int n;
	int rc;

	rc = vcpu_saveable_msrs(v, &idx, &n, err);
	if (rc < 0)
		return rc;
	e = calloc(n ? n : 1, sizeof(*e));
	s->msrs = calloc(n ? n : 1, sizeof(*s->msrs));
	if (!e || !s->msrs)
		return error_set(err, -ENOMEM, "vcpu %u: out of memory for MSRs", v->id);
	for (unsigned int i = 0; i < n; i++)
		e[i].index = idx[i];
	rc = vcpu_get_msrs(v, e, n, err);
	if (rc < 0)
		return rc;
	for (unsigned int i = 0; i < n; i++) {
		s->msrs[i].index = e[i].index;
		s->msrs[i].value = e[i].data;
		/* The TSC the vCPU stopped with, not the live, advancing one. */
		if (e[i].index == MSR_IA32_TSC && v->tsc_frozen)
			s->msrs[i].value = v->tsc_at_stop;
	}
	s->nr_msrs = n;
	return 0;
}

static int save_fpu(struct vcpu *v, struct vcpu_state *s, struct error *err)
{
	int rc;

	if (vcpu_xsave_size(v) == 0)
		return vcpu_get_fpu(v, &s->fpu, err);
	rc = vcpu_get_xsave(v, &s->xsave, &s->xsave_size, err);
	if (rc == 0 && vcpu_has_xcrs(v)) {
		s->has_xcrs = true;
		rc = vcpu_get_xcrs(v, &s->xcrs, err);
	}
	return rc;
}

static int save_cpuid(const struct vcpu *v, struct vcpu_state *s, struct error *err)
{
	if (!v->cpuid)
		return error_set(err, -EINVAL, "vcpu %u has no CPUID set: nothing to save it with",
				 v->id);
	s->cpuid = malloc(v->cpuid->nent * sizeof(*s->cpuid));
	if (!s->cpuid)
		return error_set(err, -ENOMEM, "vcpu %u: out of memory", v->id);
	memcpy(s->cpuid, v->cpuid->entries, v->cpuid->nent * sizeof(*s->cpuid));
	s->nr_cpuid = v->cpuid->nent;
	return 0;
}

/* KVM_GET_NESTED_STATE where KVM has it; the buffer size is the
 * capability's value (KVM api.rst 4.114). */
static int save_nested(struct vcpu *v, struct vcpu_state *s, struct error *err)
{
	int max = vcpu_vm_extension(v, KVM_CAP_NESTED_STATE);
	_cleanup_free_ struct kvm_nested_state *n = NULL;
	int rc;

	if (max <= 0)
		return 0;
	if (max < (int)sizeof(*n) || max > VCPU_STATE_MAX_NESTED)
		return error_set(err, -E2BIG, "vcpu %u: KVM_CAP_NESTED_STATE says %d bytes", v->id,
				 max);
	n = calloc(1, (size_t)max);
	if (!n)
		return error_set(err, -ENOMEM, "vcpu %u: out of memory", v->id);
	n->size = (uint32_t)max;
	rc = vcpu_ioctl(v, KVM_GET_NESTED_STATE, n, "KVM_GET_NESTED_STATE", err);
	if (rc < 0)
		return rc;
	if (n->size < sizeof(*n) || n->size > (uint32_t)max)
		return error_set(err, -EIO, "KVM_GET_NESTED_STATE on vcpu %u: size %u", v->id,
				 n->size);
	s->nested_size = n->size;
	s->nested = TAKE_PTR(n);
	return 0;
}

/*
 * The MP state first: KVM_GET_MP_STATE processes a pending INIT or SIPI,
 * which changes registers and events read after it. A handled I/O exit is
 * completed before anything is read.
 */
static int save_all(struct vcpu *v, struct vcpu_state *s, struct error *err)
{
	int rc;

	s->vcpu_id = v->id;
	rc = vcpu_complete_io(v, err);
	if (rc == 0)
		rc = vcpu_get_mp_state(v, &s->mp_state, err);
	if (rc == 0)
		rc = vcpu_get_events(v, &s->events, err);
	if (rc == 0)
		rc = vcpu_get_regs(v, &s->regs, err);
	if (rc == 0)
		rc = vcpu_get_sregs2(v, &s->sregs, err);
	if (rc == 0)
		rc = save_fpu(v, s, err);
	if (rc == 0)
		rc = save_msrs(v, s, err);
	if (rc == 0)
		rc = vcpu_get_lapic(v, &s->lapic, err);
	if (rc == 0)
		rc = vcpu_get_debugregs(v, &s->debugregs, err);
	if (rc == 0)
		rc = vcpu_get_tsc_khz(v, &s->tsc_khz, err);
	if (rc == 0)
		rc = save_cpuid(v, s, err);
	if (rc == 0)
		rc = save_nested(v, s, err);
	return rc;
}

struct save_call {
	struct vcpu_state *state;
	struct error *err;
};

static int require_stopped(const struct vcpu *v, const char *what, struct error *err)
{
	if (!vcpu_is_stopped_locked(v))
		return error_set(err, -EBUSY, "vcpu %u is running: pause it before %s", v->id, what);
	return 0;
}

static int save_on_vcpu(struct vcpu *v, void *arg)
{
	struct save_call *c = arg;
	int rc = require_stopped(v, "saving its state", c->err);

	if (rc == 0)
		rc = save_all(v, c->state, c->err);
	return rc;
}

int vcpu_state_save(struct vcpu *v, struct vcpu_state *ret, struct error *err)
{
	struct vcpu_state s = { 0 };
	struct save_call c = { .state = &s, .err = err };
	int rc = vcpu_call(v, save_on_vcpu, &c);

	if (rc < 0) {
		vcpu_state_release(&s);
		return rc;
	}
	*ret = s;
	return 0;
}

/* ---------------------------------------------------------------- check */

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
static uint64_t supported_xcr0(const struct vcpu *v)
{
	struct kvm_cpuid_entry2 *e = v->cpuid ? vcpu_cpuid_entry(v->cpuid, 0xD, 0) : NULL;
	uint64_t mask = X86_XFEATURE_X87 | X86_XFEATURE_SSE;

	if (e)
		mask |= ((uint64_t)e->edx << 32) | e->eax;
	return mask;
}

static void check_identity(const struct vcpu *v, const struct vcpu_state *s,
			   struct vcpu_state_problems *p)
{
	struct mmu_error diff;
	uint32_t khz;

	if (s->vcpu_id != v->id)
		problem(p, "the state is of vcpu %u, not vcpu %u", s->vcpu_id, v->id);
	if (!v->cpuid)
		problem(p, "vcpu %u has no CPUID set yet: set the VM's CPU model first", v->id);
	else if (vcpu_cpuid_compare(v->cpuid, s->cpuid, s->nr_cpuid, &diff) < 0)
		problem(p, "the saved CPU model differs from vcpu %u's (%s); load into a VM with the same CPU model",
			v->id, diff.msg);
	if (vcpu_get_tsc_khz(v, &khz, NULL) == 0 && khz != s->tsc_khz &&
	    vcpu_vm_extension(v, KVM_CAP_TSC_CONTROL) <= 0)
		problem(p, "TSC frequency %u kHz differs from this host's %u kHz and KVM cannot scale it (no KVM_CAP_TSC_CONTROL)",
			s->tsc_khz, khz);
}

static void check_xsave_image(const struct vcpu *v, const struct vcpu_state *s,
			      struct vcpu_state_problems *p)
{
	const uint8_t *x = (const uint8_t *)s->xsave->region;
	uint64_t bv, comp, allowed = supported_xcr0(v);
	uint32_t mxcsr;

	if (vcpu_xsave_size(v) == 0) {
		problem(p, "the state has an XSAVE image but KVM on this host has no KVM_CAP_XSAVE");
		return;
	}
	if (s->xsave_size > vcpu_xsave_size(v))
		problem(p, "XSAVE image of %zu bytes is larger than this host's %zu", s->xsave_size,
			vcpu_xsave_size(v));
	memcpy(&bv, x + XSAVE_XSTATE_BV, 8);
	memcpy(&comp, x + XSAVE_XCOMP_BV, 8);
	memcpy(&mxcsr, x + XSAVE_MXCSR, 4);
	if (bv & ~allowed)
		problem(p, "XSAVE image holds components 0x%llx that the CPU model does not have (CPUID.(EAX=0DH,ECX=0) allows 0x%llx)",
			(unsigned long long)bv, (unsigned long long)allowed);
	if (comp)
		problem(p, "XSAVE image is in the compacted format (XCOMP_BV 0x%llx); KVM takes the standard one",
			(unsigned long long)comp);
	if (mxcsr & ~0xFFFFU)
		problem(p, "MXCSR 0x%x sets reserved bits 31:16 (SDM Vol. 1 §10.2.3)", mxcsr);
}

/* XCR0 rules of SDM Vol. 1 §13.3: bit 0 always set; AVX (YMM) needs SSE;
 * the three AVX-512 components together, and only with YMM. */
static void check_xcrs(const struct vcpu *v, const struct vcpu_state *s,
		       struct vcpu_state_problems *p)
{
	uint64_t allowed = supported_xcr0(v);

	if (!vcpu_has_xcrs(v)) {
		problem(p, "the state has XCRs but KVM on this host has no KVM_CAP_XCRS");
		return;
	}
	if (s->xcrs.nr_xcrs > KVM_MAX_XCRS || s->xcrs.flags) {
		problem(p, "XCR list: %u entries, flags 0x%x (at most %d, flags 0)", s->xcrs.nr_xcrs,
			s->xcrs.flags, KVM_MAX_XCRS);
		return;
	}
	for (unsigned int i = 0; i < s->xcrs.nr_xcrs; i++) {
		uint64_t xcr0 = s->xcrs.xcrs[i].value;
		if (s->xcrs.xcrs[i].xcr != 0) {
			problem(p, "XCR%u is not an extended control register KVM has",
				s->xcrs.xcrs[i].xcr);
			continue;
		}
		if (!(xcr0 & X86_XFEATURE_X87))
			problem(p, "XCR0 0x%llx lacks x87 (bit 0 must be 1)", (unsigned long long)xcr0);
		if (xcr0 & ~allowed)
			problem(p, "XCR0 0x%llx enables components the CPU model does not have (0x%llx allowed)",
				(unsigned long long)xcr0, (unsigned long long)allowed);
		if ((xcr0 & X86_XFEATURE_YMM) && !(xcr0 & X86_XFEATURE_SSE))
			problem(p, "XCR0 0x%llx enables AVX without SSE", (unsigned long long)xcr0);
		if ((xcr0 & X86_XFEATURE_AVX512) &&
		    ((xcr0 & X86_XFEATURE_AVX512) != X86_XFEATURE_AVX512 || !(xcr0 & X86_XFEATURE_YMM)))
			problem(p, "XCR0 0x%llx enables AVX-512 state partly or without AVX",
				(unsigned long long)xcr0);
	}
}

static void check_fpu(const struct vcpu *v, const struct vcpu_state *s,
		      struct vcpu_state_problems *p)
{
	if (s->xsave)
		check_xsave_image(v, s, p);
	else if (s->fpu.mxcsr & ~0xFFFFU)
		problem(p, "MXCSR 0x%x sets reserved bits 31:16 (SDM Vol. 1 §10.2.3)", s->fpu.mxcsr);
	if (s->has_xcrs)
		check_xcrs(v, s, p);
}

static void check_msrs(const struct vcpu *v, const struct vcpu_state *s,
		       struct vcpu_state_problems *p)
{
	for (unsigned int i = 0; i < s->nr_msrs; i++)
		if (!vcpu_msr_readable(v, s->msrs[i].index))
			problem(p, "MSR 0x%x is not supported by KVM for vcpu %u", s->msrs[i].index, v->id);
}

/*
 * IA32_APIC_BASE (SDM Vol. 3A §10.4.4, §10.12.1): reserved bits 7:0 and 9
 * and those at or above MAXPHYADDR clear; x2APIC mode (EXTD) only when
 * enabled and when the CPU model has x2APIC.
 */
static void check_apic_base(const struct vcpu *v, const struct vcpu_state *s,
			    struct vcpu_state_problems *p)
{
	uint64_t base = s->sregs.apic_base;
	unsigned int m = v->cpuid ? vcpu_cpuid_phys_bits(v->cpuid) : 36;

	if (base & (APIC_BASE_RESERVED_LOW | ~BITS(0, m - 1)))
		problem(p, "IA32_APIC_BASE 0x%llx sets reserved bits (7:0, 9, or %u and above)",
			(unsigned long long)base, m);
	if ((base & X86_APIC_BASE_EXTD) && !(base & X86_APIC_BASE_ENABLE))
		problem(p, "IA32_APIC_BASE 0x%llx: x2APIC mode with the APIC disabled is invalid",
			(unsigned long long)base);
	if ((base & X86_APIC_BASE_EXTD) && v->cpuid &&
	    !vcpu_cpuid_has(v->cpuid, vcpu_cpu_feature_find("x2apic")))
		problem(p, "IA32_APIC_BASE 0x%llx: x2APIC mode but the CPU model has no x2apic",
			(unsigned long long)base);
}

/* The local APIC ID must be the vCPU's: KVM routes by it (xAPIC format,
 * ID in bits 31:24, as KVM_GET_LAPIC gives it without KVM_CAP_X2APIC_API). */
static void check_lapic(const struct vcpu *v, const struct vcpu_state *s,
			struct vcpu_state_problems *p)
{
	uint32_t id;

	memcpy(&id, &s->lapic.regs[APIC_ID], 4);
	if ((id >> 24) != (v->id & 0xFF))
		problem(p, "local APIC ID %u is not vcpu %u's APIC ID", id >> 24, v->id);
}

static void check_sregs(const struct vcpu *v, const struct vcpu_state *s,
			struct vcpu_state_problems *p)
{
	if (s->sregs.flags & ~(uint64_t)KVM_SREGS2_FLAGS_PDPTRS_VALID)
		problem(p, "sregs2 flags 0x%llx are unknown", (unsigned long long)s->sregs.flags);
	if ((s->sregs.flags & KVM_SREGS2_FLAGS_PDPTRS_VALID) &&
	    vcpu_vm_extension(v, KVM_CAP_SREGS2) <= 0)
		problem(p, "the state has PAE PDPTEs but KVM on this host lacks KVM_CAP_SREGS2");
	check_apic_base(v, s, p);
}

static void check_regs(const struct vcpu_state *s, struct vcpu_state_problems *p)
{
	uint64_t rf = s->regs.rflags;

	if (!(rf & X86_RFLAGS_FIXED) || (rf & RFLAGS_RESERVED))
		problem(p, "RFLAGS 0x%llx: bit 1 must be 1 and bits 3, 5, 15 and 22-63 0",
			(unsigned long long)rf);
}

/* KVM_SET_DEBUGREGS refuses DR6/DR7 with bits 63:32 set (SDM Vol. 3B §17.2). */
static void check_debugregs(const struct vcpu_state *s, struct vcpu_state_problems *p)
{
	if (s->debugregs.dr6 >> 32)
		problem(p, "DR6 0x%llx sets bits 63:32", (unsigned long long)s->debugregs.dr6);
	if (s->debugregs.dr7 >> 32)
		problem(p, "DR7 0x%llx sets bits 63:32", (unsigned long long)s->debugregs.dr7);
	if (s->debugregs.flags)
		problem(p, "debug register flags 0x%llx are unknown", (unsigned long long)s->debugregs.flags);
}

static bool not_bool(uint8_t v)
{
	return v > 1;
}

static void check_events(const struct vcpu *v, const struct vcpu_state *s,
			 struct vcpu_state_problems *p)
{
	const struct kvm_vcpu_events *e = &s->events;

	if (e->flags & ~EVENTS_KNOWN_FLAGS)
		problem(p, "event flags 0x%x are unknown", e->flags);
	if (e->flags & KVM_VCPUEVENT_VALID_PAYLOAD)
		problem(p, "events carry an exception payload (KVM_CAP_EXCEPTION_PAYLOAD), which vmmd VMs do not enable");
	if (e->flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
		problem(p, "events carry a pending triple fault (KVM_CAP_X86_TRIPLE_FAULT_EVENT), which vmmd VMs do not enable");
	if ((e->exception.injected || e->exception.pending) &&
	    (e->exception.nr > 31 || e->exception.nr == NMI_VECTOR))
		problem(p, "exception vector %u cannot be injected (0-31, not 2)", e->exception.nr);
	if (not_bool(e->exception.injected) || not_bool(e->exception.pending) ||
	    not_bool(e->exception.has_error_code) || not_bool(e->interrupt.injected) ||
	    not_bool(e->nmi.injected) || not_bool(e->nmi.pending) || not_bool(e->nmi.masked))
		problem(p, "an event flag (exception, interrupt or NMI) is neither 0 nor 1");
	if ((e->smi.smm || e->smi.pending || e->smi.smm_inside_nmi) &&
	    vcpu_vm_extension(v, KVM_CAP_X86_SMM) <= 0)
		problem(p, "the vCPU is in or entering SMM but KVM on this host has no SMM");
}

static void check_mp_state(const struct vcpu_state *s, struct vcpu_state_problems *p)
{
	if (s->mp_state.mp_state > MP_STATE_X86_MAX)
		problem(p, "MP state %u is not an x86 vCPU state (0-%d)", s->mp_state.mp_state,
			MP_STATE_X86_MAX);
}

static void check_nested(const struct vcpu *v, const struct vcpu_state *s,
			 struct vcpu_state_problems *p)
{
	int max;

	if (!s->nested)
		return;
	max = vcpu_vm_extension(v, KVM_CAP_NESTED_STATE);
	if (max <= 0)
		problem(p, "the state has nested virtualization state but KVM on this host lacks KVM_CAP_NESTED_STATE");
	else if (s->nested_size > (size_t)max)
		problem(p, "nested state of %zu bytes exceeds this host's %d", s->nested_size, max);
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
	if (mmu_nested_state_parse(s->nested, s->nested_size, buf, &me) < 0) {
		problem(p, "nested state: %s", me.msg);
		return NULL;
	}
	return buf;
}

/*
 * Architectural consistency of control registers, EFER, segments, CR3,
 * CR8 and PAE PDPTEs against the target's CPU model, and of nested state:
 * mmu_validate_vcpu_state(), one problem per issue it finds.
 */
/*
 * The CPU model KVM holds the vCPU to: the CPUID the vCPU holds
 * (KVM_GET_CPUID2), which some KVMs widen beyond the one set (PVM adds
 * SMEP and SMAP, docs/host-notes.md); the one vmmd set if KVM cannot say.
 */
static int enforced_features(const struct vcpu *v, struct mmu_cpu_features *ret,
			     struct error *err)
{
	_cleanup_free_ struct kvm_cpuid2 *held = NULL;

	if (vcpu_get_cpuid(v, &held, NULL) == 0)
		return vcpu_cpuid_mmu_features(held, ret, err);
	return vcpu_cpuid_mmu_features(v->cpuid, ret, err);
}

static void check_architecture(const struct vcpu *v, const struct vcpu_state *s,
			       struct vcpu_state_problems *p)
{
	_cleanup_free_ struct mmu_issue_list *issues = calloc(1, sizeof(*issues));
	struct mmu_nested_state nested_buf;
	const struct mmu_nested_state *nested = parse_nested(s, &nested_buf, p);
	struct mmu_cpu_features features;
	struct mmu_vcpu_state m;
	struct error e;

	if (!issues || !v->cpuid)
		return;
	if (enforced_features(v, &features, &e) < 0) {
		problem(p, "vcpu %u: %s", v->id, e.msg);
		return;
	}
	vcpu_sregs_mmu_state(&s->sregs, &m);
	if (mmu_validate_vcpu_state(&m, &features, nested, issues) < 0) {
		problem(p, "vcpu %u: the MMU validator refused its input", v->id);
		return;
	}
	for (unsigned int i = 0; i < issues->count; i++)
		problem(p, "%s", issues->issue[i].msg);
	if (issues->truncated)
		problem(p, "more MMU problems than the validator lists (%d)", MMU_MAX_ISSUES);
}

static void collect_problems(const struct vcpu *v, const struct vcpu_state *s,
			     struct vcpu_state_problems *p)
{
	check_identity(v, s, p);
	check_architecture(v, s, p);
	check_regs(s, p);
	check_sregs(v, s, p);
	check_fpu(v, s, p);
	check_msrs(v, s, p);
	check_lapic(v, s, p);
	check_debugregs(s, p);
	check_events(v, s, p);
	check_mp_state(s, p);
	check_nested(v, s, p);
}

int vcpu_state_check(struct vcpu *v, const struct vcpu_state *s,
		     struct vcpu_state_problems *ret_problems, struct error *err)
{
	_cleanup_free_ struct vcpu_state_problems *p = calloc(1, sizeof(*p));

	if (!p)
		return error_set(err, -ENOMEM, "vcpu %u: out of memory", v->id);
	collect_problems(v, s, p);
	if (ret_problems)
		*ret_problems = *p;
	if (p->count == 0)
		return 0;
	return error_set(err, -EINVAL, "state refused for vcpu %u: %u problem%s%s, first: %s", v->id,
			 p->count, p->count == 1 ? "" : "s", p->truncated ? " (list truncated)" : "",
			 p->msg[0]);
}

/* ---------------------------------------------------------------- load */

/*
 * MSR writes: KVM's async-PF interrupt vector before the MSR that enables
 * async page faults (KVM refuses "deliver as interrupt" without a vector),
 * then ascending. Values already held are not written (some MSRs KVM
 * reads for userspace refuse even a write of their current value); the
 * TSC goes through vcpu_write_tsc().
 */
static int msr_order(uint32_t index)
{
	return index == MSR_KVM_ASYNC_PF_INT ? 0 : 1;
}

static int load_msrs(struct vcpu *v, const struct vcpu_state *s, struct error *err)
{
	_cleanup_free_ struct kvm_msr_entry *out = calloc(s->nr_msrs ? s->nr_msrs : 1, sizeof(*out));
	unsigned int n = 0;
	int rc;

	if (!out)
		return error_set(err, -ENOMEM, "vcpu %u: out of memory", v->id);
	for (int pass = 0; pass < 2; pass++)
		for (unsigned int i = 0; i < s->nr_msrs; i++) {
			struct kvm_msr_entry cur = { .index = s->msrs[i].index };
			if (msr_order(cur.index) != pass)
				continue;
			if (cur.index == MSR_IA32_TSC) {
				rc = vcpu_write_tsc(v, s->msrs[i].value, err);
				if (rc < 0)
					return rc;
				continue;
			}
			if (vcpu_get_msrs(v, &cur, 1, NULL) == 0 && cur.data == s->msrs[i].value)
				continue;
			out[n].index = s->msrs[i].index;
			out[n].data = s->msrs[i].value;
			n++;
		}
	return vcpu_set_msrs(v, out, n, err);
}

/* An XSAVE image of the host's size: the saved one padded with zeros, or
 * one made from the FPU section (x87 and SSE given, the rest initial). */
static int load_fpu(struct vcpu *v, const struct vcpu_state *s, struct error *err)
{
	size_t size = vcpu_xsave_size(v);
	_cleanup_free_ struct kvm_xsave *x = NULL;
	uint64_t bv = X86_XFEATURE_X87 | X86_XFEATURE_SSE;

	if (size == 0)
		return vcpu_set_fpu(v, &s->fpu, err);
	x = calloc(1, size);
	if (!x)
		return error_set(err, -ENOMEM, "vcpu %u: out of memory", v->id);
	if (s->xsave) {
		memcpy(x, s->xsave, s->xsave_size);
	} else {
		vcpu_fpu_to_xsave(&s->fpu, (uint8_t *)x->region);
		memcpy((uint8_t *)x->region + XSAVE_XSTATE_BV, &bv, sizeof(bv));
	}
	return vcpu_set_xsave(v, x, size, err);
}

static int load_tsc_khz(struct vcpu *v, const struct vcpu_state *s, struct error *err)
{
	uint32_t khz;
	int rc = vcpu_get_tsc_khz(v, &khz, err);

	if (rc < 0 || khz == s->tsc_khz)
		return rc;
	if (ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)s->tsc_khz) < 0)
		return error_set(err, negative_errno(), "KVM_SET_TSC_KHZ %u on vcpu %u: %s",
				 s->tsc_khz, v->id, strerror(errno));
	return 0;
}

/* vmmd's MMU snapshot after a load: the role of the loaded registers, with
 * SMM from the events and guest mode from the nested state. */
static void snapshot_loaded_role(struct vcpu *v, const struct vcpu_state *s)
{
	const struct mmu_role_regs regs = { s->sregs.cr0, s->sregs.cr4, s->sregs.efer };
	unsigned int flags = vcpu_mmu_flags_of(&s->events, s->nested);

	vcpu_mmu_snapshot_set(v, &regs, mmu_role_compute(&regs, flags));
}

/*
 * The order KVM needs (docs/vcpu.md §4): nested state last, after
 *  - SREGS2: KVM_SET_NESTED_STATE checks EFER.SVME (svm_set_nested_state();
 *    QEMU: "must be before kvm_put_nested_state so that EFER.SVME is set");
 *  - the MSRs: VMX nested state needs IA32_FEATURE_CONTROL to allow VMXON
 *    (QEMU puts that MSR first for this reason);
 *  - the events: vmx_set_nested_state() validates its SMM flags against
 *    the vCPU's SMM state, which the events set, and KVM_SET_VCPU_EVENTS
 *    changing SMM leaves nested mode (kvm_leave_nested()), which would
 *    drop nested state loaded before it (QEMU moved its events before the
 *    nested state for the first reason, 2023);
 *  - the MP state: KVM_SET_MP_STATE refuses INIT_RECEIVED while INIT is
 *    blocked (kvm_apic_init_sipi_allowed(): SMM, VMX root operation; KVMs
 *    from 2025 refuse the next KVM_RUN instead), so it is judged against
 *    the vCPU before the nested state changes that;
 *  - REGS and SREGS: on SVM, KVM builds vmcb02's NextRIP and soft-interrupt
 *    RIPs from RIP and CS when nested state with a pending VMRUN is set;
 *    loaded before them it takes the fresh vCPU's (the 2026 nSVM fixes
 *    "Fix RIP usage in the control area after restore"). The KVM
 *    selftests' vcpu_load_state() uses this order.
 */
static int load_all(struct vcpu *v, const struct vcpu_state *s, struct error *err)
{
	int rc;

	rc = vcpu_set_sregs2(v, &s->sregs, err);
	if (rc == 0)
		rc = load_tsc_khz(v, s, err);
	if (rc == 0)
		rc = vcpu_set_lapic(v, &s->lapic, err);
	if (rc == 0)
		rc = load_msrs(v, s, err);
	if (rc == 0 && s->has_xcrs)
		rc = vcpu_set_xcrs(v, &s->xcrs, err);
	if (rc == 0)
		rc = load_fpu(v, s, err);
	if (rc == 0)
		rc = vcpu_set_events(v, &s->events, err);
	if (rc == 0)
		rc = vcpu_set_mp_state(v, &s->mp_state, err);
	if (rc == 0)
		rc = vcpu_set_debugregs(v, &s->debugregs, err);
	if (rc == 0)
		rc = vcpu_set_regs(v, &s->regs, err);
	if (rc == 0 && s->nested)
		rc = vcpu_ioctl(v, KVM_SET_NESTED_STATE, s->nested, "KVM_SET_NESTED_STATE", err);
	if (rc == 0) {
		v->io_pending = false;
		snapshot_loaded_role(v, s);
	}
	return rc;
}

struct load_call {
	const struct vcpu_state *state;
	struct vcpu_state_problems *problems;
	struct error *err;
};

static int load_on_vcpu(struct vcpu *v, void *arg)
{
	struct load_call *c = arg;
	int rc = require_stopped(v, "loading state", c->err);

	if (rc == 0)
		rc = vcpu_state_check(v, c->state, c->problems, c->err);
	if (rc == 0)
		rc = load_all(v, c->state, c->err);
	return rc;
}

int vcpu_state_load(struct vcpu *v, const struct vcpu_state *s,
		    struct vcpu_state_problems *ret_problems, struct error *err)
{
	struct load_call c = { .state = s, .problems = ret_problems, .err = err };

	if (ret_problems)
		ret_problems->count = 0;
	return vcpu_call(v, load_on_vcpu, &c);
}
