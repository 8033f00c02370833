/* SPDX-License-Identifier: MIT */
/*
 * Complete vCPU state: save from KVM, check against a target vCPU, load
 * into KVM (declared in vcpu/state.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/macro.h"
#include "vcpu/cpuid.h"
#include "vcpu/state.h"
#include "vcpu/vcpu-internal.h"
#include "vcpu/x86.h"


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

static bool msr_readable_on(const void *vcpu, uint32_t index)
{
	return vcpu_msr_readable(vcpu, index);
}

/* What v and its KVM are, as vcpu_state_check_target() needs it.
 * *ret_enforced is the CPUID KVM holds (KVM_GET_CPUID2), which some KVMs
 * widen beyond the one set (PVM adds SMEP and SMAP, docs/host-notes.md);
 * NULL if KVM cannot say. The caller frees it. */
static void read_target(const struct vcpu *v, struct vcpu_state_target *t,
			struct kvm_cpuid2 **ret_enforced)
{
	*ret_enforced = NULL;
	if (v->cpuid)
		vcpu_get_cpuid(v, ret_enforced, NULL);
	*t = (struct vcpu_state_target){
		.vcpu_id = v->id,
		.cpuid = v->cpuid,
		.enforced = *ret_enforced,
		.xsave_size = vcpu_xsave_size(v),
		.has_xcrs = vcpu_has_xcrs(v),
		.has_sregs2 = vcpu_vm_extension(v, KVM_CAP_SREGS2) > 0,
		.has_smm = vcpu_vm_extension(v, KVM_CAP_X86_SMM) > 0,
		.can_scale_tsc = vcpu_vm_extension(v, KVM_CAP_TSC_CONTROL) > 0,
		.nested_max = vcpu_vm_extension(v, KVM_CAP_NESTED_STATE),
		.msr_supported = msr_readable_on,
		.msr_ctx = v,
	};
	if (vcpu_get_tsc_khz(v, &t->tsc_khz, NULL) < 0)
		t->tsc_khz = 0;
}

int vcpu_state_check(struct vcpu *v, const struct vcpu_state *s,
		     struct vcpu_state_problems *ret_problems, struct error *err)
{
	_cleanup_free_ struct kvm_cpuid2 *enforced = NULL;
	struct vcpu_state_target t;

	read_target(v, &t, &enforced);
	return vcpu_state_check_target(&t, s, ret_problems, err);
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
