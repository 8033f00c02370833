/* SPDX-License-Identifier: MIT */
/*
 * KVM_GET_NESTED_STATE blobs (MMU.md §5.4): parsing the SVM and VMX
 * layouts, and the stage-2 context they describe.
 *
 * Header offsets are checked against struct kvm_nested_state of the uapi
 * headers by tests/unit/test-mmu-nested.c. The VMCB offsets follow the
 * APM layout as declared in Linux arch/x86/include/asm/svm.h; the vmcs12
 * offsets are KVM's ABI-frozen ones (CHECK_OFFSET in vmx/vmcs12.h).
 */
#include <errno.h>
#include <string.h>

#include "mmu/mmu-internal.h"

/* struct kvm_nested_state header */
#define HDR_FLAGS 0
#define HDR_FORMAT 2
#define HDR_SIZE 4
#define HDR_SVM_VMCB_PA 8
#define HDR_VMX_VMXON_PA 8
#define HDR_VMX_VMCS12_PA 16
#define HDR_VMX_SMM_FLAGS 24
#define HDR_VMX_FLAGS 28

#define SVM_KNOWN_FLAGS (MMU_NESTED_GUEST_MODE | MMU_NESTED_RUN_PENDING | MMU_NESTED_GIF_SET)
#define VMX_KNOWN_FLAGS                                                                  \
	(MMU_NESTED_GUEST_MODE | MMU_NESTED_RUN_PENDING | MMU_NESTED_EVMCS |            \
	 MMU_NESTED_MTF_PENDING)
#define VMX_SMM_GUEST_MODE 0x1U /* KVM_STATE_NESTED_SMM_GUEST_MODE */
#define VMX_SMM_VMXON 0x2U	/* KVM_STATE_NESTED_SMM_VMXON */
#define VMX_HDR_PREEMPTION_TIMER 0x1U /* KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE */

/* VMCB: control area at 0x000, save area at 0x400 (APM Vol. 2 App. B). */
#define VMCB_NESTED_CTL 0x090
#define VMCB_NESTED_CR3 0x0B0
#define VMCB_SAVE 0x400
#define VMCB_SAVE_EFER (VMCB_SAVE + 0x0D0)
#define VMCB_SAVE_CR4 (VMCB_SAVE + 0x148)
#define VMCB_SAVE_CR3 (VMCB_SAVE + 0x150)
#define VMCB_SAVE_CR0 (VMCB_SAVE + 0x158)
#define VMCB_SAVE_RFLAGS (VMCB_SAVE + 0x170)
#define VMCB_SAVE_RIP (VMCB_SAVE + 0x178)
#define VMCB_SAVE_RSP (VMCB_SAVE + 0x1D8)
#define VMCB_SAVE_RAX (VMCB_SAVE + 0x1F8)
#define SVM_NESTED_CTL_NP_ENABLE 0x1ULL

/* vmcs12 (KVM's private layout, VMCS12_REVISION 0x11e57ed0). */
#define VMCS12_REVISION_ID 0
#define VMCS12_EPT_POINTER 120
#define VMCS12_LINK_POINTER 176
#define VMCS12_GUEST_EFER 200
#define VMCS12_GUEST_PDPTR0 216
#define VMCS12_HOST_EFER 264
#define VMCS12_GUEST_CR0 424
#define VMCS12_GUEST_CR3 432
#define VMCS12_GUEST_CR4 440
#define VMCS12_HOST_CR0 584
#define VMCS12_HOST_CR3 592
#define VMCS12_HOST_CR4 600
#define VMCS12_CPU_BASED_CTLS 748
#define VMCS12_ENTRY_CTLS 780
#define VMCS12_SECONDARY_CTLS 804
#define CPU_BASED_SECONDARY_CTLS (1U << 31)
#define SECONDARY_ENABLE_EPT (1U << 1)
#define SECONDARY_SHADOW_VMCS (1U << 14)
#define VMCS_HDR_SHADOW (1U << 31)

#define INVALID_GPA UINT64_MAX

static uint64_t rd_le(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint16_t rd16(const uint8_t *p, size_t off)
{
	return (uint16_t)rd_le(p + off, 2);
}

static uint32_t rd32(const uint8_t *p, size_t off)
{
	return (uint32_t)rd_le(p + off, 4);
}

static uint64_t rd64(const uint8_t *p, size_t off)
{
	return rd_le(p + off, 8);
}

static bool page_aligned(uint64_t pa)
{
	return !(pa & 0xFFF);
}

static int parse_svm(const uint8_t *b, struct mmu_nested_state *s, struct mmu_error *err)
{
	const uint8_t *vmcb = b + MMU_NESTED_HDR_SIZE;

	if (s->flags & ~SVM_KNOWN_FLAGS) {
		mmu_error_set(err, "SVM nested state: flags 0x%x are not defined for SVM",
			      s->flags & ~SVM_KNOWN_FLAGS);
		return -EINVAL;
	}
	s->vmcb12_pa = rd64(b, HDR_SVM_VMCB_PA);
	if (!s->guest_mode)
		return 0;
	if (s->size < MMU_NESTED_HDR_SIZE + MMU_NESTED_VMCB_SIZE) {
		mmu_error_set(err,
			      "SVM nested state truncated: guest mode needs the %d-byte VMCB after the header, size is %u",
			      MMU_NESTED_VMCB_SIZE, s->size);
		return -EINVAL;
	}
	if (!page_aligned(s->vmcb12_pa)) {
		mmu_error_set(err, "SVM nested state: vmcb12 address 0x%llx is not page aligned",
			      (unsigned long long)s->vmcb12_pa);
		return -EINVAL;
	}
	s->has_vmcb = true;
	/* KVM stores its cached vmcb12 controls, and vmcb01's save area (L1 at VMRUN). */
	s->npt_enabled = rd64(vmcb, VMCB_NESTED_CTL) & SVM_NESTED_CTL_NP_ENABLE;
	s->nested_cr3 = rd64(vmcb, VMCB_NESTED_CR3);
	s->l1_efer = rd64(vmcb, VMCB_SAVE_EFER);
	s->l1_cr4 = rd64(vmcb, VMCB_SAVE_CR4);
	s->l1_cr3 = rd64(vmcb, VMCB_SAVE_CR3);
	s->l1_cr0 = rd64(vmcb, VMCB_SAVE_CR0);
	s->l1_rflags = rd64(vmcb, VMCB_SAVE_RFLAGS);
	s->l1_rip = rd64(vmcb, VMCB_SAVE_RIP);
	s->l1_rsp = rd64(vmcb, VMCB_SAVE_RSP);
	s->l1_rax = rd64(vmcb, VMCB_SAVE_RAX);
	return 0;
}

/* The VMX header rules of KVM vmx_set_nested_state(). */
static int check_vmx_header(const struct mmu_nested_state *s, uint32_t hdr_flags,
			    struct mmu_error *err)
{
	if (s->flags & ~VMX_KNOWN_FLAGS) {
		mmu_error_set(err, "VMX nested state: flags 0x%x are not defined for VMX",
			      s->flags & ~VMX_KNOWN_FLAGS);
		return -EINVAL;
	}
	if (hdr_flags & ~VMX_HDR_PREEMPTION_TIMER) {
		mmu_error_set(err, "VMX nested state: unknown header flags 0x%x", hdr_flags);
		return -EINVAL;
	}
	if (s->vmxon_pa == INVALID_GPA) {
		if (s->smm_flags || s->vmcs12_pa != INVALID_GPA ||
		    (s->flags & ~MMU_NESTED_EVMCS)) {
			mmu_error_set(err,
				      "VMX nested state: not in VMX operation (vmxon_pa = -1) but a VMCS, SMM flags or guest mode is set");
			return -EINVAL;
		}
		return 0;
	}
	if (!page_aligned(s->vmxon_pa)) {
		mmu_error_set(err, "VMX nested state: VMXON region 0x%llx is not page aligned",
			      (unsigned long long)s->vmxon_pa);
		return -EINVAL;
	}
	if (s->smm_flags & ~(VMX_SMM_GUEST_MODE | VMX_SMM_VMXON)) {
		mmu_error_set(err, "VMX nested state: unknown SMM flags 0x%x", s->smm_flags);
		return -EINVAL;
	}
	if ((s->smm_flags & VMX_SMM_GUEST_MODE) &&
	    ((s->flags & MMU_NESTED_GUEST_MODE) || !(s->smm_flags & VMX_SMM_VMXON))) {
		mmu_error_set(err,
			      "VMX nested state: SMM guest mode needs SMM VMXON and excludes guest mode");
		return -EINVAL;
	}
	if (s->vmcs12_pa != INVALID_GPA &&
	    (s->vmcs12_pa == s->vmxon_pa || !page_aligned(s->vmcs12_pa))) {
		mmu_error_set(err, "VMX nested state: bad vmcs12 address 0x%llx",
			      (unsigned long long)s->vmcs12_pa);
		return -EINVAL;
	}
	return 0;
}

static int check_vmcs12_revision(const uint8_t *vmcs, bool shadow, struct mmu_error *err)
{
	uint32_t hdr = rd32(vmcs, VMCS12_REVISION_ID);

	if ((hdr & ~VMCS_HDR_SHADOW) != MMU_VMCS12_REVISION) {
		mmu_error_set(err, "VMX nested state: %svmcs12 revision 0x%x, expected 0x%x",
			      shadow ? "shadow " : "", hdr & ~VMCS_HDR_SHADOW, MMU_VMCS12_REVISION);
		return -EINVAL;
	}
	if (shadow && !(hdr & VMCS_HDR_SHADOW)) {
		mmu_error_set(err, "VMX nested state: shadow vmcs12 lacks the shadow-VMCS indicator");
		return -EINVAL;
	}
	return 0;
}

static void read_vmcs12(const uint8_t *v, struct mmu_nested_state *s)
{
	s->ept_pointer = rd64(v, VMCS12_EPT_POINTER);
	s->guest_efer = rd64(v, VMCS12_GUEST_EFER);
	for (int i = 0; i < 4; i++)
		s->guest_pdptrs[i] = rd64(v, VMCS12_GUEST_PDPTR0 + 8 * i);
	s->host_efer = rd64(v, VMCS12_HOST_EFER);
	s->guest_cr0 = rd64(v, VMCS12_GUEST_CR0);
	s->guest_cr3 = rd64(v, VMCS12_GUEST_CR3);
	s->guest_cr4 = rd64(v, VMCS12_GUEST_CR4);
	s->host_cr0 = rd64(v, VMCS12_HOST_CR0);
	s->host_cr3 = rd64(v, VMCS12_HOST_CR3);
	s->host_cr4 = rd64(v, VMCS12_HOST_CR4);
	s->cpu_based_ctls = rd32(v, VMCS12_CPU_BASED_CTLS);
	s->entry_ctls = rd32(v, VMCS12_ENTRY_CTLS);
	s->secondary_ctls = rd32(v, VMCS12_SECONDARY_CTLS);
	s->ept_enabled = (s->cpu_based_ctls & CPU_BASED_SECONDARY_CTLS) &&
			 (s->secondary_ctls & SECONDARY_ENABLE_EPT);
}

static bool vmcs12_uses_shadow(const uint8_t *v, const struct mmu_nested_state *s)
{
	return (s->cpu_based_ctls & CPU_BASED_SECONDARY_CTLS) &&
	       (s->secondary_ctls & SECONDARY_SHADOW_VMCS) &&
	       rd64(v, VMCS12_LINK_POINTER) != INVALID_GPA;
}

static int parse_vmx(const uint8_t *b, struct mmu_nested_state *s, struct mmu_error *err)
{
	const uint8_t *vmcs = b + MMU_NESTED_HDR_SIZE;
	uint32_t hdr_flags = rd32(b, HDR_VMX_FLAGS);
	int r;

	s->vmxon_pa = rd64(b, HDR_VMX_VMXON_PA);
	s->vmcs12_pa = rd64(b, HDR_VMX_VMCS12_PA);
	s->smm_flags = rd16(b, HDR_VMX_SMM_FLAGS);
	r = check_vmx_header(s, hdr_flags, err);
	if (r < 0)
		return r;

	/* KVM writes vmcs12 only when there is a current VMCS (or an eVMCS). */
	if (s->size < MMU_NESTED_HDR_SIZE + MMU_NESTED_VMCS12_SIZE ||
	    s->vmxon_pa == INVALID_GPA) {
		if (s->guest_mode) {
			mmu_error_set(err,
				      "VMX nested state truncated: guest mode needs the %d-byte vmcs12 after the header, size is %u",
				      MMU_NESTED_VMCS12_SIZE, s->size);
			return -EINVAL;
		}
		return 0;
	}
	if (s->vmcs12_pa == INVALID_GPA && !(s->flags & MMU_NESTED_EVMCS)) {
		mmu_error_set(err, "VMX nested state: vmcs12 data without a current VMCS address");
		return -EINVAL;
	}
	r = check_vmcs12_revision(vmcs, false, err);
	if (r < 0)
		return r;
	s->has_vmcs12 = true;
	read_vmcs12(vmcs, s);

	if (s->guest_mode && vmcs12_uses_shadow(vmcs, s)) {
		if (s->size < MMU_NESTED_MAX_SIZE) {
			mmu_error_set(err,
				      "VMX nested state truncated: vmcs12 uses VMCS shadowing but the shadow vmcs12 is missing (size %u)",
				      s->size);
			return -EINVAL;
		}
		r = check_vmcs12_revision(vmcs + MMU_NESTED_VMCS12_SIZE, true, err);
		if (r < 0)
			return r;
		s->has_shadow_vmcs12 = true;
	}
	return 0;
}

int mmu_nested_state_parse(const void *buf, size_t len, struct mmu_nested_state *ret_state,
			   struct mmu_error *err)
{
	struct mmu_nested_state s = { 0 };
	const uint8_t *b = buf;
	unsigned int format;
	int r;

	if (!buf || !ret_state) {
		mmu_error_set(err, "nested state: no buffer");
		return -EINVAL;
	}
	if (len < MMU_NESTED_HDR_SIZE) {
		mmu_error_set(err, "nested state truncated: %zu bytes, the header alone is %d", len,
			      MMU_NESTED_HDR_SIZE);
		return -EINVAL;
	}
	s.flags = rd16(b, HDR_FLAGS);
	format = rd16(b, HDR_FORMAT);
	s.size = rd32(b, HDR_SIZE);
	s.guest_mode = s.flags & MMU_NESTED_GUEST_MODE;
	if (s.size < MMU_NESTED_HDR_SIZE) {
		mmu_error_set(err, "nested state: size field %u is smaller than the %d-byte header",
			      s.size, MMU_NESTED_HDR_SIZE);
		return -EINVAL;
	}
	if (s.size > MMU_NESTED_MAX_SIZE) {
		mmu_error_set(err, "nested state of %u bytes exceeds the %d-byte maximum", s.size,
			      MMU_NESTED_MAX_SIZE);
		return -E2BIG;
	}
	if (len < s.size) {
		mmu_error_set(err, "nested state truncated: the header says %u bytes, %zu given",
			      s.size, len);
		return -EINVAL;
	}
	/* KVM rejects RUN_PENDING outside guest mode for both formats. */
	if ((s.flags & MMU_NESTED_RUN_PENDING) && !s.guest_mode) {
		mmu_error_set(err, "nested state: run pending without guest mode");
		return -EINVAL;
	}

	switch (format) {
	case MMU_NESTED_SVM:
		s.format = MMU_NESTED_SVM;
		r = parse_svm(b, &s, err);
		break;
	case MMU_NESTED_VMX:
		s.format = MMU_NESTED_VMX;
		r = parse_vmx(b, &s, err);
		break;
	default:
		mmu_error_set(err, "nested state: unknown format %u (0 = VMX, 1 = SVM)", format);
		return -EINVAL;
	}
	if (r < 0)
		return r;
	*ret_state = s;
	return 0;
}

int mmu_context_init_nested(struct mmu_context *ret_ctx, const struct mmu_nested_state *state,
			    const struct mmu_cpu_features *features, unsigned int flags,
			    struct mmu_error *err)
{
	int r;

	if (!ret_ctx || !state || !features) {
		mmu_error_set(err, "nested context: missing argument");
		return -EINVAL;
	}
	if (!state->guest_mode) {
		mmu_error_set(err, "L2 is not active: translation is single-stage");
		return -ENOENT;
	}
	flags |= MMU_CTX_GUEST_MODE;
	if (state->format == MMU_NESTED_SVM) {
		if (!state->has_vmcb || !state->npt_enabled) {
			mmu_error_set(err, "L1 did not enable nested paging: translation is single-stage");
			return -ENOENT;
		}
		r = mmu_context_init_npt(ret_ctx, state->l1_cr4, state->l1_efer, state->nested_cr3,
					 features, flags);
		if (r < 0)
			mmu_error_set(err,
				      "vmcb01 CR4 0x%llx / EFER 0x%llx describe no valid NPT paging mode",
				      (unsigned long long)state->l1_cr4,
				      (unsigned long long)state->l1_efer);
		return r;
	}
	if (!state->has_vmcs12 || !state->ept_enabled) {
		mmu_error_set(err, "L1 did not enable EPT: translation is single-stage");
		return -ENOENT;
	}
	return mmu_context_init_ept(ret_ctx, state->ept_pointer, features, flags, err);
}
