/* SPDX-License-Identifier: MIT */
/*
 * Per-group access to a vCPU's registers in KVM (declared in
 * vcpu/state.h): every ioctl's failure names the ioctl and the vCPU.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/macro.h"
#include "vcpu/state.h"
#include "vcpu/vcpu-internal.h"
#include "vcpu/x86.h"

/* XSAVE images are at least the 4 KiB of struct kvm_xsave (KVM api.rst 4.42). */
#define XSAVE_MIN_SIZE sizeof(struct kvm_xsave)

static bool has_sregs2(const struct vcpu *v)
{
	return vcpu_vm_extension(v, KVM_CAP_SREGS2) > 0;
}

int vcpu_get_sregs2(const struct vcpu *v, struct kvm_sregs2 *ret, struct error *err)
{
	struct kvm_sregs s;
	int rc;

	if (has_sregs2(v))
		return vcpu_ioctl(v, KVM_GET_SREGS2, ret, "KVM_GET_SREGS2", err);
	rc = vcpu_ioctl(v, KVM_GET_SREGS, &s, "KVM_GET_SREGS", err);
	if (rc < 0)
		return rc;
	memset(ret, 0, sizeof(*ret));
	ret->cs = s.cs, ret->ds = s.ds, ret->es = s.es, ret->fs = s.fs;
	ret->gs = s.gs, ret->ss = s.ss, ret->tr = s.tr, ret->ldt = s.ldt;
	ret->gdt = s.gdt, ret->idt = s.idt;
	ret->cr0 = s.cr0, ret->cr2 = s.cr2, ret->cr3 = s.cr3, ret->cr4 = s.cr4;
	ret->cr8 = s.cr8, ret->efer = s.efer, ret->apic_base = s.apic_base;
	return 0;
}

int vcpu_set_sregs2(struct vcpu *v, const struct kvm_sregs2 *in, struct error *err)
{
	struct kvm_sregs s = { 0 };

	/* New CR0/CR4/EFER: vmmd's MMU snapshot is stale (KVM resets its own
	 * MMU context and flushes the guest TLB itself on this write). */
	v->mmu_valid = false;
	if (has_sregs2(v))
		return vcpu_ioctl(v, KVM_SET_SREGS2, (void *)in, "KVM_SET_SREGS2", err);
	if (in->flags & KVM_SREGS2_FLAGS_PDPTRS_VALID)
		return error_set(err, -EOPNOTSUPP,
				 "KVM_SET_SREGS on vcpu %u: PAE PDPTEs given but KVM lacks KVM_CAP_SREGS2",
				 v->id);
	s.cs = in->cs, s.ds = in->ds, s.es = in->es, s.fs = in->fs;
	s.gs = in->gs, s.ss = in->ss, s.tr = in->tr, s.ldt = in->ldt;
	s.gdt = in->gdt, s.idt = in->idt;
	s.cr0 = in->cr0, s.cr2 = in->cr2, s.cr3 = in->cr3, s.cr4 = in->cr4;
	s.cr8 = in->cr8, s.efer = in->efer, s.apic_base = in->apic_base;
	return vcpu_ioctl(v, KVM_SET_SREGS, &s, "KVM_SET_SREGS", err);
}

int vcpu_get_fpu(const struct vcpu *v, struct kvm_fpu *ret, struct error *err)
{
	return vcpu_ioctl(v, KVM_GET_FPU, ret, "KVM_GET_FPU", err);
}

int vcpu_set_fpu(struct vcpu *v, const struct kvm_fpu *f, struct error *err)
{
	return vcpu_ioctl(v, KVM_SET_FPU, (void *)f, "KVM_SET_FPU", err);
}

size_t vcpu_xsave_size(const struct vcpu *v)
{
	int size = vcpu_vm_extension(v, KVM_CAP_XSAVE2);

	if (size > (int)XSAVE_MIN_SIZE)
		return (size_t)size;
	return vcpu_vm_extension(v, KVM_CAP_XSAVE) > 0 ? XSAVE_MIN_SIZE : 0;
}

int vcpu_get_xsave(const struct vcpu *v, struct kvm_xsave **ret, size_t *ret_size,
		   struct error *err)
{
	size_t size = vcpu_xsave_size(v);
	_cleanup_free_ struct kvm_xsave *x = NULL;
	int rc;

	if (size == 0)
		return error_set(err, -EOPNOTSUPP, "KVM_GET_XSAVE on vcpu %u: KVM lacks KVM_CAP_XSAVE",
				 v->id);
	x = calloc(1, size);
	if (!x)
		return error_set(err, -ENOMEM, "KVM_GET_XSAVE on vcpu %u: out of memory", v->id);
	if (vcpu_vm_extension(v, KVM_CAP_XSAVE2) > 0)
		rc = vcpu_ioctl(v, KVM_GET_XSAVE2, x, "KVM_GET_XSAVE2", err);
	else
		rc = vcpu_ioctl(v, KVM_GET_XSAVE, x, "KVM_GET_XSAVE", err);
	if (rc < 0)
		return rc;
	*ret = TAKE_PTR(x);
	*ret_size = size;
	return 0;
}

int vcpu_set_xsave(struct vcpu *v, const struct kvm_xsave *x, size_t size, struct error *err)
{
	if (size != vcpu_xsave_size(v))
		return error_set(err, -EINVAL,
				 "KVM_SET_XSAVE on vcpu %u: image of %zu bytes, KVM expects %zu", v->id,
				 size, vcpu_xsave_size(v));
	return vcpu_ioctl(v, KVM_SET_XSAVE, (void *)x, "KVM_SET_XSAVE", err);
}

void vcpu_fpu_to_xsave(const struct kvm_fpu *f, uint8_t *x)
{
	uint16_t fcw = f->fcw, fsw = f->fsw, fop = f->last_opcode;
	uint32_t mxcsr = f->mxcsr;

	memcpy(x + XSAVE_FCW, &fcw, 2);
	memcpy(x + XSAVE_FSW, &fsw, 2);
	x[XSAVE_FTW] = f->ftwx;
	memcpy(x + XSAVE_FOP, &fop, 2);
	memcpy(x + XSAVE_FIP, &f->last_ip, 8);
	memcpy(x + XSAVE_FDP, &f->last_dp, 8);
	memcpy(x + XSAVE_MXCSR, &mxcsr, 4);
	for (int i = 0; i < 8; i++)
		memcpy(x + XSAVE_ST0 + 16 * i, f->fpr[i], 16);
	for (int i = 0; i < 16; i++)
		memcpy(x + XSAVE_XMM0 + 16 * i, f->xmm[i], 16);
}

void vcpu_xsave_to_fpu(const uint8_t *x, struct kvm_fpu *f)
{
	uint16_t fcw, fsw, fop;
	uint32_t mxcsr;

	memset(f, 0, sizeof(*f));
	memcpy(&fcw, x + XSAVE_FCW, 2);
	memcpy(&fsw, x + XSAVE_FSW, 2);
	memcpy(&fop, x + XSAVE_FOP, 2);
	memcpy(&mxcsr, x + XSAVE_MXCSR, 4);
	f->fcw = fcw;
	f->fsw = fsw;
	f->ftwx = x[XSAVE_FTW];
	f->last_opcode = fop;
	memcpy(&f->last_ip, x + XSAVE_FIP, 8);
	memcpy(&f->last_dp, x + XSAVE_FDP, 8);
	f->mxcsr = mxcsr;
	for (int i = 0; i < 8; i++)
		memcpy(f->fpr[i], x + XSAVE_ST0 + 16 * i, 16);
	for (int i = 0; i < 16; i++)
		memcpy(f->xmm[i], x + XSAVE_XMM0 + 16 * i, 16);
}

int vcpu_get_fpu_regs(const struct vcpu *v, struct kvm_fpu *ret, struct error *err)
{
	_cleanup_free_ struct kvm_xsave *x = NULL;
	size_t size;
	int rc;

	if (vcpu_xsave_size(v) == 0)
		return vcpu_get_fpu(v, ret, err);
	rc = vcpu_get_xsave(v, &x, &size, err);
	if (rc == 0)
		vcpu_xsave_to_fpu((const uint8_t *)x->region, ret);
	return rc;
}

bool vcpu_has_xcrs(const struct vcpu *v)
{
	return vcpu_vm_extension(v, KVM_CAP_XCRS) > 0;
}

int vcpu_get_xcrs(const struct vcpu *v, struct kvm_xcrs *ret, struct error *err)
{
	return vcpu_ioctl(v, KVM_GET_XCRS, ret, "KVM_GET_XCRS", err);
}

int vcpu_set_xcrs(struct vcpu *v, const struct kvm_xcrs *x, struct error *err)
{
	return vcpu_ioctl(v, KVM_SET_XCRS, (void *)x, "KVM_SET_XCRS", err);
}

int vcpu_get_lapic(const struct vcpu *v, struct kvm_lapic_state *ret, struct error *err)
{
	return vcpu_ioctl(v, KVM_GET_LAPIC, ret, "KVM_GET_LAPIC", err);
}

int vcpu_set_lapic(struct vcpu *v, const struct kvm_lapic_state *l, struct error *err)
{
	return vcpu_ioctl(v, KVM_SET_LAPIC, (void *)l, "KVM_SET_LAPIC", err);
}

int vcpu_get_events(const struct vcpu *v, struct kvm_vcpu_events *ret, struct error *err)
{
	return vcpu_ioctl(v, KVM_GET_VCPU_EVENTS, ret, "KVM_GET_VCPU_EVENTS", err);
}

int vcpu_set_events(struct vcpu *v, const struct kvm_vcpu_events *e, struct error *err)
{
	/* The SMM flag is a role input (MMU.md §1.1). */
	if (e->flags & KVM_VCPUEVENT_VALID_SMM)
		v->mmu_valid = false;
	return vcpu_ioctl(v, KVM_SET_VCPU_EVENTS, (void *)e, "KVM_SET_VCPU_EVENTS", err);
}

int vcpu_get_mp_state(const struct vcpu *v, struct kvm_mp_state *ret, struct error *err)
{
	return vcpu_ioctl(v, KVM_GET_MP_STATE, ret, "KVM_GET_MP_STATE", err);
}

int vcpu_set_mp_state(struct vcpu *v, const struct kvm_mp_state *m, struct error *err)
{
	return vcpu_ioctl(v, KVM_SET_MP_STATE, (void *)m, "KVM_SET_MP_STATE", err);
}

int vcpu_get_debugregs(const struct vcpu *v, struct kvm_debugregs *ret, struct error *err)
{
	return vcpu_ioctl(v, KVM_GET_DEBUGREGS, ret, "KVM_GET_DEBUGREGS", err);
}

int vcpu_set_debugregs(struct vcpu *v, const struct kvm_debugregs *d, struct error *err)
{
	return vcpu_ioctl(v, KVM_SET_DEBUGREGS, (void *)d, "KVM_SET_DEBUGREGS", err);
}

int vcpu_get_tsc_khz(const struct vcpu *v, uint32_t *ret, struct error *err)
{
	int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);

	if (khz <= 0)
		return error_set(err, khz < 0 ? negative_errno() : -EIO,
				 "KVM_GET_TSC_KHZ on vcpu %u: %s", v->id,
				 khz < 0 ? strerror(errno) : "no TSC frequency");
	*ret = (uint32_t)khz;
	return 0;
}

/* ---------------------------------------------------------------- MSRs */

/* struct kvm_msrs with its entries, allocated for n of them. */
static struct kvm_msrs *msrs_alloc(unsigned int n)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));

	if (m)
		m->nmsrs = n;
	return m;
}

/* KVM_GET_MSRS / KVM_SET_MSRS transfer entries until the first failure and
 * return how many they did (KVM api.rst 4.18, 4.19). */
static int transfer_msrs(const struct vcpu *v, unsigned long req, const char *name,
			 struct kvm_msr_entry *entries, unsigned int n, struct error *err)
{
	_cleanup_free_ struct kvm_msrs *m = NULL;
	int done;

	if (n == 0)
		return 0;
	m = msrs_alloc(n);
	if (!m)
		return error_set(err, -ENOMEM, "%s on vcpu %u: out of memory", name, v->id);
	memcpy(m->entries, entries, n * sizeof(entries[0]));
	done = ioctl(v->fd, req, m);
	if (done < 0) {
		int rc = negative_errno();
		return error_set(err, rc, "%s on vcpu %u: %s", name, v->id, strerror(-rc));
	}
	if ((unsigned int)done < n)
		return error_set(err, -EINVAL, "%s on vcpu %u: KVM refused MSR 0x%x (value 0x%llx)",
				 name, v->id, m->entries[done].index,
				 (unsigned long long)m->entries[done].data);
	memcpy(entries, m->entries, n * sizeof(entries[0]));
	return 0;
}

int vcpu_get_msrs(const struct vcpu *v, struct kvm_msr_entry *entries, unsigned int n,
		  struct error *err)
{
	return transfer_msrs(v, KVM_GET_MSRS, "KVM_GET_MSRS", entries, n, err);
}

/* KVM_GET_MSRS stops at the first MSR it does not handle. */
bool vcpu_msr_readable(const struct vcpu *v, uint32_t index)
{
	struct kvm_msr_entry e = { .index = index };

	return vcpu_get_msrs(v, &e, 1, NULL) == 0;
}

int vcpu_set_msrs(struct vcpu *v, const struct kvm_msr_entry *entries, unsigned int n,
		  struct error *err)
{
	_cleanup_free_ struct kvm_msr_entry *copy = NULL;

	if (n == 0)
		return 0;
	/* EFER is a role register. */
	for (unsigned int i = 0; i < n; i++)
		if (entries[i].index == MSR_EFER)
			v->mmu_valid = false;
	copy = malloc(n * sizeof(*copy));
	if (!copy)
		return error_set(err, -ENOMEM, "KVM_SET_MSRS on vcpu %u: out of memory", v->id);
	memcpy(copy, entries, n * sizeof(*copy));
	return transfer_msrs(v, KVM_SET_MSRS, "KVM_SET_MSRS", copy, n, err);
}

/* KVM_GET_MSR_INDEX_LIST on /dev/kvm into a new array. */
static int msr_index_list(const struct vcpu *v, uint32_t **ret, unsigned int *ret_n,
			  struct error *err)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	_cleanup_free_ struct kvm_msr_list *list = NULL;
	uint32_t *out;

	/* The first call fails with E2BIG and says how many there are. */
	if (ioctl(v->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return error_set(err, negative_errno(), "KVM_GET_MSR_INDEX_LIST: %s",
				 strerror(errno));
	if (probe.nmsrs > VCPU_STATE_MAX_MSRS)
		return error_set(err, -E2BIG, "KVM_GET_MSR_INDEX_LIST: %u MSRs, more than %u",
				 probe.nmsrs, VCPU_STATE_MAX_MSRS);
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	if (!list)
		return error_set(err, -ENOMEM, "KVM_GET_MSR_INDEX_LIST: out of memory");
	list->nmsrs = probe.nmsrs;
	if (ioctl(v->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0)
		return error_set(err, negative_errno(), "KVM_GET_MSR_INDEX_LIST: %s",
				 strerror(errno));
	out = malloc((list->nmsrs + 1) * sizeof(*out));
	if (!out)
		return error_set(err, -ENOMEM, "KVM_GET_MSR_INDEX_LIST: out of memory");
	memcpy(out, list->indices, list->nmsrs * sizeof(*out));
	*ret = out;
	*ret_n = list->nmsrs;
	return 0;
}

/*
 * MSRs that KVM saves and restores for userspace but leaves out of
 * KVM_GET_MSR_INDEX_LIST: the MTRRs (SDM Vol. 3A §11.11; KVM emulates 8
 * variable ranges and all fixed ranges; MTRRcap is read-only and not
 * saved), IA32_XSS and IA32_TSC_AUX.
 */
static const uint32_t extra_msrs[] = {
	MSR_IA32_MTRR_PHYSBASE0 + 0, MSR_IA32_MTRR_PHYSBASE0 + 1,
	MSR_IA32_MTRR_PHYSBASE0 + 2, MSR_IA32_MTRR_PHYSBASE0 + 3,
	MSR_IA32_MTRR_PHYSBASE0 + 4, MSR_IA32_MTRR_PHYSBASE0 + 5,
	MSR_IA32_MTRR_PHYSBASE0 + 6, MSR_IA32_MTRR_PHYSBASE0 + 7,
	MSR_IA32_MTRR_PHYSBASE0 + 8, MSR_IA32_MTRR_PHYSBASE0 + 9,
	MSR_IA32_MTRR_PHYSBASE0 + 10, MSR_IA32_MTRR_PHYSBASE0 + 11,
	MSR_IA32_MTRR_PHYSBASE0 + 12, MSR_IA32_MTRR_PHYSBASE0 + 13,
	MSR_IA32_MTRR_PHYSBASE0 + 14, MSR_IA32_MTRR_PHYSBASE0 + 15,
	MSR_IA32_MTRR_FIX64K_00000, MSR_IA32_MTRR_FIX16K_80000, MSR_IA32_MTRR_FIX16K_A0000,
	MSR_IA32_MTRR_FIX4K_C0000 + 0, MSR_IA32_MTRR_FIX4K_C0000 + 1,
	MSR_IA32_MTRR_FIX4K_C0000 + 2, MSR_IA32_MTRR_FIX4K_C0000 + 3,
	MSR_IA32_MTRR_FIX4K_C0000 + 4, MSR_IA32_MTRR_FIX4K_C0000 + 5,
	MSR_IA32_MTRR_FIX4K_C0000 + 6, MSR_IA32_MTRR_FIX4K_F8000,
	MSR_IA32_MTRR_DEF_TYPE, MSR_IA32_XSS, MSR_TSC_AUX,
};

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int vcpu_saveable_msrs(const struct vcpu *v, uint32_t **ret, unsigned int *ret_n,
		       struct error *err)
{
	_cleanup_free_ uint32_t *listed = NULL;
	_cleanup_free_ uint32_t *all = NULL;
	unsigned int nlisted = 0, n = 0, kept = 0;
	int rc;

	rc = msr_index_list(v, &listed, &nlisted, err);
	if (rc < 0)
		return rc;
	all = malloc((nlisted + ARRAY_SIZE(extra_msrs)) * sizeof(*all));
	if (!all)
		return error_set(err, -ENOMEM, "vcpu %u: out of memory for the MSR list", v->id);
	memcpy(all, listed, nlisted * sizeof(*all));
	memcpy(all + nlisted, extra_msrs, sizeof(extra_msrs));
	n = nlisted + ARRAY_SIZE(extra_msrs);
	qsort(all, n, sizeof(*all), compare_u32);
	for (unsigned int i = 0; i < n; i++) {
		if (kept > 0 && all[kept - 1] == all[i])
			continue;
		if (vcpu_msr_readable(v, all[i]))
			all[kept++] = all[i];
	}
	if (kept > VCPU_STATE_MAX_MSRS)
		return error_set(err, -E2BIG, "vcpu %u: %u readable MSRs, more than %u", v->id, kept,
				 VCPU_STATE_MAX_MSRS);
	*ret = TAKE_PTR(all);
	*ret_n = kept;
	return 0;
}

/* ---------------------------------------------------------------- TSC */

int vcpu_read_tsc(const struct vcpu *v, uint64_t *ret, struct error *err)
{
	struct kvm_msr_entry e = { .index = MSR_IA32_TSC };
	int rc = vcpu_get_msrs(v, &e, 1, err);

	if (rc == 0)
		*ret = e.data;
	return rc;
}

int vcpu_get_tsc(const struct vcpu *v, uint64_t *ret, struct error *err)
{
	if (v->tsc_frozen && vcpu_is_stopped_locked(v)) {
		*ret = v->tsc_at_stop;
		return 0;
	}
	return vcpu_read_tsc(v, ret, err);
}

int vcpu_write_tsc(struct vcpu *v, uint64_t value, struct error *err)
{
	struct kvm_msr_entry e = { .index = MSR_IA32_TSC, .data = value ? value : 1 };
	uint64_t now = 0;
	int rc;

	rc = vcpu_set_msrs(v, &e, 1, err);
	if (rc == 0)
		rc = vcpu_read_tsc(v, &now, err);
	if (rc < 0)
		return rc;
	v->tsc_at_stop = now;
	v->tsc_frozen = true;
	return 0;
}

/* ---------------------------------------------------------------- MMU role */

unsigned int vcpu_mmu_flags_of(const struct kvm_vcpu_events *events,
			       const struct kvm_nested_state *nested)
{
	unsigned int flags = 0;

	/* smi.smm means "in SMM" only where KVM filled the SMM fields. */
	if ((events->flags & KVM_VCPUEVENT_VALID_SMM) && events->smi.smm)
		flags |= MMU_CTX_SMM;
	if (nested && (nested->flags & KVM_STATE_NESTED_GUEST_MODE))
		flags |= MMU_CTX_GUEST_MODE;
	return flags;
}

/* KVM_GET_NESTED_STATE with the buffer size KVM asks for (the header is
 * only filled when the whole state fits), or NULL where KVM has none. */
static struct kvm_nested_state *nested_state_header(const struct vcpu *v)
{
	int size = vcpu_vm_extension(v, KVM_CAP_NESTED_STATE);
	struct kvm_nested_state *n;

	if (size < (int)sizeof(*n))
		return NULL;
	n = calloc(1, (size_t)size);
	if (!n)
		return NULL;
	n->size = (uint32_t)size;
	if (ioctl(v->fd, KVM_GET_NESTED_STATE, n) < 0) {
		free(n);
		return NULL;
	}
	return n;
}

int vcpu_mmu_flags(const struct vcpu *v, unsigned int *ret, struct error *err)
{
	_cleanup_free_ struct kvm_nested_state *nested = NULL;
	struct kvm_vcpu_events ev;
	int rc = vcpu_get_events(v, &ev, err);

	if (rc < 0)
		return rc;
	nested = nested_state_header(v);
	*ret = vcpu_mmu_flags_of(&ev, nested);
	return 0;
}

void vcpu_mmu_snapshot_set(struct vcpu *v, const struct mmu_role_regs *regs, union mmu_role role)
{
	v->mmu_regs = *regs;
	v->mmu_role = role;
	v->mmu_valid = true;
}

static int role_on_vcpu(struct vcpu *v, struct error *err)
{
	struct kvm_sregs2 s;
	struct mmu_role_regs regs;
	unsigned int flags = 0;
	int rc;

	if (v->mmu_valid)
		return 0;
	rc = vcpu_get_sregs2(v, &s, err);
	if (rc == 0)
		rc = vcpu_mmu_flags(v, &flags, err);
	if (rc < 0)
		return rc;
	regs = (struct mmu_role_regs){ .cr0 = s.cr0, .cr4 = s.cr4, .efer = s.efer };
	vcpu_mmu_snapshot_set(v, &regs, mmu_role_compute(&regs, flags));
	return 0;
}

int vcpu_get_mmu_role(struct vcpu *v, union mmu_role *ret_role, struct mmu_role_regs *ret_regs,
		      struct error *err)
{
	int rc = role_on_vcpu(v, err);

	if (rc < 0)
		return rc;
	if (ret_role)
		*ret_role = v->mmu_role;
	if (ret_regs)
		*ret_regs = v->mmu_regs;
	/* A running vCPU changes its registers right after this call. */
	if (!vcpu_is_stopped_locked(v))
		v->mmu_valid = false;
	return 0;
}

struct role_call {
	union mmu_role role;
	struct mmu_role_regs regs;
	struct error *err;
};

static int role_call_fn(struct vcpu *v, void *arg)
{
	struct role_call *c = arg;

	return vcpu_get_mmu_role(v, &c->role, &c->regs, c->err);
}

int vcpu_mmu_role(struct vcpu *v, union mmu_role *ret_role, struct mmu_role_regs *ret_regs,
		  struct error *err)
{
	struct role_call c = { .err = err };
	int rc = vcpu_call(v, role_call_fn, &c);

	if (rc < 0)
		return rc;
	if (ret_role)
		*ret_role = c.role;
	if (ret_regs)
		*ret_regs = c.regs;
	return 0;
}
