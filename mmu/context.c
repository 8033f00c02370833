/* SPDX-License-Identifier: MIT */
/*
 * Walk contexts: reserved-bit masks (MMU.md §2, §5.3), the permission table
 * and PKRU mask (§3.3, §3.4), and their construction for stage 1, nested
 * NPT and nested EPT.
 */
#include <errno.h>
#include <string.h>

#include "mmu/mmu-internal.h"

#define CTX_KNOWN_FLAGS (MMU_CTX_SMM | MMU_CTX_GUEST_MODE | MMU_CTX_KVM_COMPAT)

/* ---------------------------------------------------------------- reserved bits */

/*
 * 32-bit paging, 4 MiB page: PSE-36 puts PA[W-1:32] in PDE[W-20:13] with
 * W = min(MAXPHYADDR, 40), and bits 21:(W-19) are reserved; without PSE-36
 * bits 21:13 are reserved (SDM Vol. 3A §4.3, Table 4-4). KVM hard-codes
 * W = 36 (is_cpuid_PSE36() == 1, PT32_DIR_PSE36_MASK).
 */
static void rsvd_masks_pse36(struct mmu_context *ctx, const struct mmu_cpu_features *f)
{
	unsigned int w = f->maxphyaddr < 40 ? f->maxphyaddr : 40;

	if (ctx->kvm_compat)
		w = 36;
	else if (!f->pse36)
		w = 32;
	ctx->rsvd[1][1] = MMU_BITS(w - 19, 21);
	ctx->pse36_frame_mask = w > 32 ? MMU_BITS(13, w - 20) : 0;
}

void mmu_rsvd_masks_x86(struct mmu_context *ctx, const struct mmu_cpu_features *f)
{
	union mmu_role role = ctx->role;
	uint64_t rsvd_pa = mmu_rsvd_pa(f->maxphyaddr);
	uint64_t gb = f->gbpages ? 0 : PTE_PS;
	/* Non-leaf PML4E/PML5E bit 8 is reserved on AMD only (KVM nonleaf_bit8_rsvd). */
	uint64_t amd8 = (f->vendor == MMU_VENDOR_AMD || f->vendor == MMU_VENDOR_HYGON) ? MMU_BIT(8)
										   : 0;
	uint64_t high;

	switch (role.level) {
	case 2:
		/* 4-byte entries: nothing is reserved except in a 4 MiB PDE. */
		if (role.cr4_pse)
			rsvd_masks_pse36(ctx, f);
		break;
	case 3:
		/* PAE: bits 62:M reserved (no protection keys); 63 is XD or reserved. */
		high = rsvd_pa & MMU_BITS(0, 62);
		if (!role.efer_nx)
			high |= PTE_XD;
		/* PDPTEs are checked when loaded, not during the walk (§2.4). */
		ctx->rsvd[0][2] = rsvd_pa | MMU_BITS(5, 8) | MMU_BITS(1, 2);
		ctx->rsvd[0][1] = high;
		ctx->rsvd[1][1] = high | MMU_BITS(13, 20);
		ctx->rsvd[0][0] = high;
		ctx->rsvd[1][0] = high;
		break;
	case 4:
	case 5:
		/* Bits 62:52 are ignored or protection keys, so only M..51 (and XD). */
		high = rsvd_pa & MMU_BITS(0, 51);
		if (!role.efer_nx)
			high |= PTE_XD;
		if (role.level == 5) {
			ctx->rsvd[0][4] = high | amd8 | PTE_PS;
			ctx->rsvd[1][4] = ctx->rsvd[0][4];
		}
		ctx->rsvd[0][3] = high | amd8 | PTE_PS;
		ctx->rsvd[1][3] = ctx->rsvd[0][3];
		ctx->rsvd[0][2] = high | gb;
		ctx->rsvd[1][2] = high | gb | MMU_BITS(13, 29);
		ctx->rsvd[0][1] = high;
		ctx->rsvd[1][1] = high | MMU_BITS(13, 20);
		ctx->rsvd[0][0] = high;
		ctx->rsvd[1][0] = high;
		break;
	default:
		break;
	}
}

/* Index of the bad-memory-type/XWR table: entry bits 5:0 (memory type, XWR). */
static uint64_t ept_bad_mt_xwr(bool execonly)
{
	uint64_t bad = 0;

	for (unsigned int i = 0; i < 64; i++) {
		unsigned int mt = i >> 3, xwr = i & 7;

		/* Memory types 2, 3 and 7 are reserved (SDM Vol. 3C §29.3.3.1). */
		if (mt == 2 || mt == 3 || mt == 7)
			bad |= MMU_BIT(i);
		/* Write without read: 010, 110; execute-only without the capability. */
		if (xwr == 2 || xwr == 6 || (xwr == 4 && !execonly))
			bad |= MMU_BIT(i);
	}
	return bad;
}

void mmu_rsvd_masks_ept(struct mmu_context *ctx, const struct mmu_cpu_features *f)
{
	uint64_t high = mmu_rsvd_pa(f->maxphyaddr) & MMU_BITS(0, 51);
	uint64_t no_1g = (f->ept_caps & MMU_EPT_CAP_1G) ? 0 : PTE_PS;
	uint64_t no_2m = (f->ept_caps & MMU_EPT_CAP_2M) ? 0 : PTE_PS;

	ctx->rsvd[0][4] = high | MMU_BITS(3, 7);
	ctx->rsvd[1][4] = ctx->rsvd[0][4];
	ctx->rsvd[0][3] = high | MMU_BITS(3, 7);
	ctx->rsvd[1][3] = ctx->rsvd[0][3];
	ctx->rsvd[0][2] = high | MMU_BITS(3, 6);
	ctx->rsvd[1][2] = high | MMU_BITS(12, 29) | no_1g;
	ctx->rsvd[0][1] = high | MMU_BITS(3, 6);
	ctx->rsvd[1][1] = high | MMU_BITS(12, 20) | no_2m;
	ctx->rsvd[0][0] = high;
	ctx->rsvd[1][0] = high;
	ctx->ept_bad_mt_xwr = ept_bad_mt_xwr(ctx->role.execonly);
}

/* ---------------------------------------------------------------- permissions */

/*
 * perm[idx]: idx = error-code bits {W, U, RSVD, F} >> 1 with the RSVD slot
 * meaning "SMAP overridden" (EFLAGS.AC on an explicit access); bit r of
 * the byte is set when effective rights r (ACC_*) fault. Formulas: §3.2.
 */
static uint8_t perm_byte(union mmu_role role, unsigned int idx)
{
	uint32_t pfec = idx << 1;
	bool w = pfec & MMU_PFERR_W, u = pfec & MMU_PFERR_U, f = pfec & MMU_PFERR_I;
	bool smap_override = pfec & MMU_PFERR_RSVD;
	uint8_t byte = 0;

	for (unsigned int r = 0; r < 8; r++) {
		bool can_w = r & ACC_WRITE, user_page = r & ACC_USER, can_x = r & ACC_EXEC;
		bool wf = w && !can_w && (u || role.cr0_wp);
		bool uf = u && !user_page;
		bool ff = f && !can_x && role.efer_nx;
		bool smepf = role.cr4_smep && f && !u && user_page;
		bool smapf = role.cr4_smap && !f && !u && user_page && !smap_override;

		if (wf || uf || ff || smepf || smapf)
			byte |= 1U << r;
	}
	return byte;
}

/*
 * pkru_mask: 2 bits (AD check, WD check) per error-code combination, at bit
 * offset = error code with the RSVD slot replaced by "user page" (§3.4).
 */
static uint32_t pkru_mask(union mmu_role role)
{
	uint32_t mask = 0;

	if (!role.cr4_pke)
		return 0;
	for (unsigned int idx = 0; idx < 16; idx++) {
		uint32_t pfec = idx << 1;
		bool w = pfec & MMU_PFERR_W, u = pfec & MMU_PFERR_U, f = pfec & MMU_PFERR_I;
		bool user_page = pfec & MMU_PFERR_RSVD;
		/* Keys apply to data accesses to user pages, user or supervisor. */
		bool check_ad = !f && user_page;
		/* WD is ignored for supervisor writes when CR0.WP=0. */
		bool check_wd = check_ad && w && (u || role.cr0_wp);

		mask |= ((uint32_t)check_ad | (uint32_t)check_wd << 1) << pfec;
	}
	return mask;
}

void mmu_perm_tables(struct mmu_context *ctx)
{
	for (unsigned int i = 0; i < MMU_ARRAY_SIZE(ctx->perm); i++)
		ctx->perm[i] = perm_byte(ctx->role, i);
	ctx->pkru_mask = pkru_mask(ctx->role);
}

/* ---------------------------------------------------------------- construction */

static int check_inputs(const struct mmu_cpu_features *f, unsigned int flags)
{
	if (!f || !mmu_maxphyaddr_valid(f->maxphyaddr) || (flags & ~CTX_KNOWN_FLAGS))
		return -EINVAL;
	return 0;
}

/*
 * Contexts are zeroed bytewise (padding included), so contexts built from
 * equal inputs compare equal with memcmp() and can key a cache.
 */
static void context_from_role(struct mmu_context *ctx, union mmu_role role,
			      const struct mmu_cpu_features *f, unsigned int flags)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->role = role;
	ctx->mode = mmu_role_mode(role);
	ctx->maxphyaddr = f->maxphyaddr;
	ctx->kvm_compat = !!(flags & MMU_CTX_KVM_COMPAT);
	/* With CR0.PG=0 nothing consumes the tables (§1.2): leave them zero. */
	if (role.level && !role.ept) {
		mmu_rsvd_masks_x86(ctx, f);
		mmu_perm_tables(ctx);
	}
}

int mmu_context_init(struct mmu_context *ret_ctx, const struct mmu_role_regs *regs,
		     const struct mmu_cpu_features *features, unsigned int flags)
{
	struct mmu_context ctx;
	int r;

	if (!ret_ctx || !regs)
		return -EINVAL;
	r = check_inputs(features, flags);
	if (r < 0)
		return r;
	context_from_role(&ctx, mmu_role_compute(regs, flags), features, flags);
	memcpy(ret_ctx, &ctx, sizeof(ctx));
	return 0;
}

int mmu_context_init_npt(struct mmu_context *ret_ctx, uint64_t l1_cr4, uint64_t l1_efer,
			 uint64_t ncr3, const struct mmu_cpu_features *features,
			 unsigned int flags)
{
	/*
	 * KVM kvm_init_shadow_npt_mmu(): CR0 is PG only (so WP reads as 0),
	 * PKE is masked (PKRU does not apply to NPT walks), CR4/EFER are
	 * vmcb01's — L1's values at VMRUN, not the vCPU's current ones.
	 */
	struct mmu_role_regs regs = {
		.cr0 = MMU_CR0_PG,
		.cr4 = l1_cr4 & ~MMU_CR4_PKE,
		.efer = l1_efer,
	};
	struct mmu_context ctx;
	int r;

	if (!ret_ctx)
		return -EINVAL;
	r = check_inputs(features, flags);
	if (r < 0)
		return r;
	if ((l1_efer & MMU_EFER_LMA) && !(l1_cr4 & MMU_CR4_PAE))
		return -EINVAL;
	context_from_role(&ctx, mmu_role_compute(&regs, flags), features, flags);
	ctx.stage2 = true;
	ctx.root = ncr3;
	memcpy(ret_ctx, &ctx, sizeof(ctx));
	return 0;
}

static int check_eptp(uint64_t eptp, const struct mmu_cpu_features *f, struct mmu_error *err)
{
	uint64_t caps = f->ept_caps;
	unsigned int mt = eptp & EPTP_MT_MASK;
	unsigned int levels = ((eptp & EPTP_WALK_MASK) >> EPTP_WALK_SHIFT) + 1;

	/* The checks of VM entry (SDM Vol. 3C §27.2.1.1; KVM nested_vmx_check_eptp()). */
	if (!((mt == 0 && (caps & MMU_EPT_CAP_MT_UC)) || (mt == 6 && (caps & MMU_EPT_CAP_MT_WB)))) {
		mmu_error_set(err, "EPTP 0x%llx: memory type %u is not allowed (UC %s, WB %s)",
			      (unsigned long long)eptp, mt,
			      (caps & MMU_EPT_CAP_MT_UC) ? "allowed" : "not allowed",
			      (caps & MMU_EPT_CAP_MT_WB) ? "allowed" : "not allowed");
		return -EINVAL;
	}
	if (!((levels == 4 && (caps & MMU_EPT_CAP_WALK_4)) ||
	      (levels == 5 && (caps & MMU_EPT_CAP_WALK_5)))) {
		mmu_error_set(err, "EPTP 0x%llx: a %u-level walk is not supported",
			      (unsigned long long)eptp, levels);
		return -EINVAL;
	}
	if ((eptp & EPTP_AD) && !(caps & MMU_EPT_CAP_AD)) {
		mmu_error_set(err, "EPTP 0x%llx: A/D flags enabled (bit 6) without the capability",
			      (unsigned long long)eptp);
		return -EINVAL;
	}
	if (eptp & (MMU_BITS(7, 11) | mmu_rsvd_pa(f->maxphyaddr))) {
		mmu_error_set(err, "EPTP 0x%llx: reserved bits 0x%llx set", (unsigned long long)eptp,
			      (unsigned long long)(eptp &
						   (MMU_BITS(7, 11) | mmu_rsvd_pa(f->maxphyaddr))));
		return -EINVAL;
	}
	return 0;
}

int mmu_context_init_ept(struct mmu_context *ret_ctx, uint64_t eptp,
			 const struct mmu_cpu_features *features, unsigned int flags,
			 struct mmu_error *err)
{
	union mmu_role role = { .word = 0 };
	struct mmu_context ctx;
	int r;

	if (!ret_ctx) {
		mmu_error_set(err, "no output context");
		return -EINVAL;
	}
	r = check_inputs(features, flags);
	if (r < 0) {
		mmu_error_set(err, "invalid CPU features or flags");
		return r;
	}
	r = check_eptp(eptp, features, err);
	if (r < 0)
		return r;

	/* KVM kvm_calc_shadow_ept_root_page_role(): no CR0/CR4/EFER input at all. */
	role.level = ((eptp & EPTP_WALK_MASK) >> EPTP_WALK_SHIFT) + 1;
	role.ept = 1;
	role.access = ACC_ALL;
	role.ad_disabled = !(eptp & EPTP_AD);
	role.guest_mode = 1;
	role.smm = !!(flags & MMU_CTX_SMM);
	role.execonly = !!(features->ept_caps & MMU_EPT_CAP_EXECUTE_ONLY);
	role.valid = 1;

	memset(&ctx, 0, sizeof(ctx));
	ctx.role = role;
	ctx.mode = mmu_role_mode(role);
	ctx.maxphyaddr = features->maxphyaddr;
	ctx.kvm_compat = !!(flags & MMU_CTX_KVM_COMPAT);
	ctx.stage2 = true;
	ctx.ept_ad = !!(eptp & EPTP_AD);
	ctx.eptp = eptp;
	ctx.root = eptp & MMU_BITS(12, 51);
	mmu_rsvd_masks_ept(&ctx, features);
	memcpy(ret_ctx, &ctx, sizeof(ctx));
	return 0;
}
