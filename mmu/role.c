/* SPDX-License-Identifier: MIT */
/*
 * MMU role from the role registers (MMU.md §1), its printable forms, and
 * the MMU side of RESET/INIT (MMU.md §6).
 */
#include <errno.h>

#include "mmu/mmu-internal.h"

union mmu_role mmu_role_compute(const struct mmu_role_regs *regs, unsigned int flags)
{
	bool lma = regs->efer & MMU_EFER_LMA;
	bool wp = regs->cr0 & MMU_CR0_WP;
	bool smep = regs->cr4 & MMU_CR4_SMEP;
	bool smap = regs->cr4 & MMU_CR4_SMAP;
	union mmu_role role = { .word = 0 };

	role.access = ACC_ALL;
	role.smm = !!(flags & MMU_CTX_SMM);
	role.guest_mode = !!(flags & MMU_CTX_GUEST_MODE);
	role.valid = 1;

	/*
	 * KVM "Do not set paging-related bits in MMU role if CR0.PG=0": two
	 * non-paging states that differ only in CR4/EFER share one role.
	 */
	if (!(regs->cr0 & MMU_CR0_PG)) {
		role.direct = 1;
		return role;
	}

	role.efer_nx = !!(regs->efer & MMU_EFER_NX);
	role.cr0_wp = wp;
	role.smep_andnot_wp = smep && !wp;
	role.smap_andnot_wp = smap && !wp;
	role.has_4_byte_gpte = !(regs->cr4 & MMU_CR4_PAE);
	if (lma)
		role.level = (regs->cr4 & MMU_CR4_LA57) ? 5 : 4;
	else
		role.level = (regs->cr4 & MMU_CR4_PAE) ? 3 : 2;

	role.cr4_smep = smep;
	role.cr4_smap = smap;
	role.cr4_pse = !!(regs->cr4 & MMU_CR4_PSE);
	/* PKE and LA57 take effect only in IA-32e mode (SDM Vol. 3A §4.1.1). */
	role.cr4_pke = lma && (regs->cr4 & MMU_CR4_PKE);
	role.cr4_la57 = lma && (regs->cr4 & MMU_CR4_LA57);
	role.efer_lma = lma;
	return role;
}

enum mmu_paging_mode mmu_role_mode(union mmu_role role)
{
	if (role.ept)
		return role.level == 5 ? MMU_MODE_EPT5 : MMU_MODE_EPT4;
	switch (role.level) {
	case 2:
		return MMU_MODE_32BIT;
	case 3:
		return MMU_MODE_PAE;
	case 4:
		return MMU_MODE_4LEVEL;
	case 5:
		return MMU_MODE_5LEVEL;
	default:
		return MMU_MODE_NONE;
	}
}

const char *mmu_paging_mode_name(enum mmu_paging_mode mode)
{
	static const char *const names[] = {
		[MMU_MODE_NONE] = "none",	    [MMU_MODE_32BIT] = "32-bit",
		[MMU_MODE_PAE] = "pae",		    [MMU_MODE_4LEVEL] = "4-level",
		[MMU_MODE_5LEVEL] = "5-level",	    [MMU_MODE_EPT4] = "ept-4-level",
		[MMU_MODE_EPT5] = "ept-5-level",
	};

	if ((unsigned int)mode >= MMU_ARRAY_SIZE(names))
		return "invalid";
	return names[mode];
}

/* One table drives both printable forms, so they never disagree. */
struct role_field {
	const char *name;
	unsigned int (*get)(union mmu_role r);
	bool number; /* a count rather than a flag */
};

#define ROLE_FIELD(f)                                        \
	static unsigned int role_get_##f(union mmu_role r)   \
	{                                                    \
		return r.f;                                  \
	}
ROLE_FIELD(level)
ROLE_FIELD(direct)
ROLE_FIELD(has_4_byte_gpte)
ROLE_FIELD(efer_nx)
ROLE_FIELD(cr0_wp)
ROLE_FIELD(smep_andnot_wp)
ROLE_FIELD(smap_andnot_wp)
ROLE_FIELD(cr4_smep)
ROLE_FIELD(cr4_smap)
ROLE_FIELD(cr4_pse)
ROLE_FIELD(cr4_pke)
ROLE_FIELD(cr4_la57)
ROLE_FIELD(efer_lma)
ROLE_FIELD(smm)
ROLE_FIELD(guest_mode)
ROLE_FIELD(ept)
ROLE_FIELD(ad_disabled)
ROLE_FIELD(execonly)
ROLE_FIELD(access)
ROLE_FIELD(valid)
#undef ROLE_FIELD

#define F(f) { #f, role_get_##f, false }
#define N(f) { #f, role_get_##f, true }
static const struct role_field role_fields[] = {
	N(level),	   F(direct),	      F(has_4_byte_gpte), F(efer_nx),
	F(cr0_wp),	   F(smep_andnot_wp), F(smap_andnot_wp),  F(cr4_smep),
	F(cr4_smap),	   F(cr4_pse),	      F(cr4_pke),	  F(cr4_la57),
	F(efer_lma),	   F(smm),	      F(guest_mode),	  F(ept),
	F(ad_disabled),	   F(execonly),	      N(access),	  F(valid),
};
#undef F
#undef N

static void role_emit_text(struct strbuf *sb, const void *arg)
{
	union mmu_role role = *(const union mmu_role *)arg;

	sb_printf(sb, "mode=%s", mmu_paging_mode_name(mmu_role_mode(role)));
	for (size_t i = 0; i < MMU_ARRAY_SIZE(role_fields); i++)
		sb_printf(sb, " %s=%u", role_fields[i].name, role_fields[i].get(role));
}

static void role_emit_json(struct strbuf *sb, const void *arg)
{
	union mmu_role role = *(const union mmu_role *)arg;

	sb_printf(sb, "{\"mode\":");
	sb_json_str(sb, mmu_paging_mode_name(mmu_role_mode(role)));
	for (size_t i = 0; i < MMU_ARRAY_SIZE(role_fields); i++) {
		const struct role_field *f = &role_fields[i];
		unsigned int v = f->get(role);

		sb_printf(sb, ",\"%s\":", f->name);
		if (f->number)
			sb_printf(sb, "%u", v);
		else
			sb_printf(sb, "%s", v ? "true" : "false");
	}
	sb_printf(sb, "}");
}

int mmu_role_format(union mmu_role role, enum mmu_format fmt, char *buf, size_t size,
		    size_t *ret_len)
{
	switch (fmt) {
	case MMU_FORMAT_TEXT:
		return sb_format(role_emit_text, &role, buf, size, ret_len);
	case MMU_FORMAT_JSON:
		return sb_format(role_emit_json, &role, buf, size, ret_len);
	}
	return -EINVAL;
}

/* RESET value of CR0: CD | NW | ET (SDM Vol. 3A Table 10-1, "9-1" in older editions). */
#define CR0_RESET_VALUE 0x60000010ULL

int mmu_reset_outcome(enum mmu_reset_kind kind, const struct mmu_role_regs *old,
		      unsigned int flags, struct mmu_reset_outcome *ret)
{
	struct mmu_reset_outcome out = { 0 };
	union mmu_role old_role;

	if (!old || !ret || (flags & ~(MMU_CTX_SMM | MMU_CTX_GUEST_MODE)))
		return -EINVAL;

	switch (kind) {
	case MMU_RESET_POWER_ON:
		/* RESET leaves SMM and guest mode; the new role has neither. */
		out.regs.cr0 = CR0_RESET_VALUE;
		out.role = mmu_role_compute(&out.regs, 0);
		break;
	case MMU_RESET_INIT:
		/*
		 * INIT is latched in SMM and, in VMX non-root operation, is a
		 * VM exit to L1 (SDM Vol. 3C §25.2); the MMU does not change.
		 */
		if (flags & (MMU_CTX_SMM | MMU_CTX_GUEST_MODE))
			return -EBUSY;
		/* INIT keeps CD and NW, sets ET, clears the rest (SDM Vol. 3A §10.1.1). */
		out.regs.cr0 = MMU_CR0_ET | (old->cr0 & (MMU_CR0_CD | MMU_CR0_NW));
		out.role = mmu_role_compute(&out.regs, flags);
		break;
	default:
		return -EINVAL;
	}

	old_role = mmu_role_compute(old, flags);
	out.role_changed = old_role.word != out.role.word;
	out.drop_roots = true;
	out.flush_tlb = true;
	/* KVM "Properly reset MMU context at vCPU RESET/INIT": only if paging was on. */
	out.kvm_resets_context = !!(old->cr0 & MMU_CR0_PG);
	*ret = out;
	return 0;
}
