/* SPDX-License-Identifier: MIT */
/*
 * The state validator: every architectural inconsistency of saved vCPU
 * state against the CPU model, before it is handed to KVM.
 *
 * kvm_rejects marks what KVM_SET_SREGS{,2} itself refuses (Linux
 * kvm_is_valid_sregs(), kvm_is_valid_cr0/cr4(), __set_sregs2()); the other
 * issues KVM accepts, and the guest (or VM entry) fails later.
 */
#include <errno.h>
#include <stdio.h>
#include <stddef.h>

#include "mmu/mmu-internal.h"

/* CR0 bits that exist (SDM Vol. 3A §2.5); the rest of 31:0 is reserved. */
#define CR0_DEFINED                                                                         \
	(MMU_CR0_PE | MMU_CR0_MP | MMU_CR0_EM | MMU_CR0_TS | MMU_CR0_ET | MMU_CR0_NE |      \
	 MMU_CR0_WP | MMU_CR0_AM | MMU_CR0_NW | MMU_CR0_CD | MMU_CR0_PG)

static const char *const issue_names[] = {
	[MMU_ISSUE_CR0_HIGH_BITS] = "cr0-high-bits",
	[MMU_ISSUE_CR0_RESERVED] = "cr0-reserved",
	[MMU_ISSUE_CR0_PG_WITHOUT_PE] = "cr0-pg-without-pe",
	[MMU_ISSUE_CR0_NW_WITHOUT_CD] = "cr0-nw-without-cd",
	[MMU_ISSUE_CR4_RESERVED] = "cr4-reserved",
	[MMU_ISSUE_CR4_PCIDE_OUTSIDE_LONG_MODE] = "cr4-pcide-outside-long-mode",
	[MMU_ISSUE_EFER_RESERVED] = "efer-reserved",
	[MMU_ISSUE_LONG_MODE_WITHOUT_PAE] = "long-mode-without-pae",
	[MMU_ISSUE_LONG_MODE_WITHOUT_LMA] = "long-mode-without-lma",
	[MMU_ISSUE_LMA_OUTSIDE_LONG_MODE] = "lma-outside-long-mode",
	[MMU_ISSUE_CS_L_OUTSIDE_LONG_MODE] = "cs-l-outside-long-mode",
	[MMU_ISSUE_CS_L_AND_D] = "cs-l-and-d",
	[MMU_ISSUE_CR3_RESERVED] = "cr3-reserved",
	[MMU_ISSUE_CR8_RESERVED] = "cr8-reserved",
	[MMU_ISSUE_PDPTE_RESERVED] = "pdpte-reserved",
	[MMU_ISSUE_PDPTRS_WITHOUT_PAE] = "pdptrs-without-pae",
	[MMU_ISSUE_NESTED] = "nested",
};

const char *mmu_issue_code_name(enum mmu_issue_code code)
{
	if ((unsigned int)code >= MMU_ARRAY_SIZE(issue_names) || !issue_names[code])
		return "invalid";
	return issue_names[code];
}

static void MMU_PRINTF(4, 5) add_issue(struct mmu_issue_list *l, enum mmu_issue_code code,
				       bool kvm_rejects, const char *fmt, ...)
{
	struct mmu_issue *i;
	va_list ap;

	if (l->count == MMU_MAX_ISSUES) {
		l->truncated = true;
		return;
	}
	i = &l->issue[l->count++];
	i->code = code;
	i->kvm_rejects = kvm_rejects;
	va_start(ap, fmt);
	vsnprintf(i->msg, sizeof(i->msg), fmt, ap);
	va_end(ap);
}

/*
 * A CR4 or EFER bit that needs a CPU feature. kvm: KVM gates it on guest
 * CPUID too (CR4: __cr4_reserved_bits()), so KVM_SET_SREGS fails.
 */
struct feature_bit {
	uint64_t bit;
	const char *name;
	size_t feature;
	const char *cpuid;
	bool kvm;
};

#define FBIT(reg, b, f, c, k) { MMU_##reg##_##b, #b, offsetof(struct mmu_cpu_features, f), c, k }

static const struct feature_bit cr4_features[] = {
	FBIT(CR4, PSE, pse, "CPUID.1:EDX[3]", false),
	FBIT(CR4, PAE, pae, "CPUID.1:EDX[6]", false),
	FBIT(CR4, UMIP, umip, "CPUID.7.0:ECX[2]", true),
	FBIT(CR4, LA57, la57, "CPUID.7.0:ECX[16]", true),
	FBIT(CR4, VMXE, vmx, "CPUID.1:ECX[5]", true),
	FBIT(CR4, SMXE, smx, "CPUID.1:ECX[6]", true),
	FBIT(CR4, FSGSBASE, fsgsbase, "CPUID.7.0:EBX[0]", true),
	FBIT(CR4, PCIDE, pcid, "CPUID.1:ECX[17]", true),
	FBIT(CR4, OSXSAVE, xsave, "CPUID.1:ECX[26]", true),
	FBIT(CR4, SMEP, smep, "CPUID.7.0:EBX[7]", true),
	FBIT(CR4, SMAP, smap, "CPUID.7.0:EBX[20]", true),
	FBIT(CR4, PKE, pku, "CPUID.7.0:ECX[3]", true),
	FBIT(CR4, CET, cet, "CPUID.7.0:ECX[7] or EDX[20]", true),
	FBIT(CR4, PKS, pks, "CPUID.7.0:ECX[31]", true),
	FBIT(CR4, LAM_SUP, lam, "CPUID.7.1:EAX[26]", true),
};

/* EFER validity on KVM_SET_SREGS was not confirmed: kvm_rejects stays false. */
static const struct feature_bit efer_features[] = {
	FBIT(EFER, LME, lm, "CPUID.80000001H:EDX[29]", false),
	FBIT(EFER, LMA, lm, "CPUID.80000001H:EDX[29]", false),
	FBIT(EFER, NX, nx, "CPUID.80000001H:EDX[20]", false),
	FBIT(EFER, SVME, svm, "CPUID.80000001H:ECX[2]", false),
	FBIT(EFER, FFXSR, ffxsr, "CPUID.80000001H:EDX[25]", false),
};
#undef FBIT

/* CR4 bits that every x86-64 CPU has; EFER.SCE likewise (SYSCALL in long mode). */
#define CR4_ALWAYS                                                                       \
	(MMU_CR4_VME | MMU_CR4_PVI | MMU_CR4_TSD | MMU_CR4_DE | MMU_CR4_MCE | MMU_CR4_PGE | \
	 MMU_CR4_PCE | MMU_CR4_OSFXSR | MMU_CR4_OSXMMEXCPT)
#define EFER_ALWAYS MMU_EFER_SCE

static bool feature_on(const struct mmu_cpu_features *f, size_t offset)
{
	return *(const bool *)((const char *)f + offset);
}

/* One issue per set bit the CPU model lacks, one for the undefined bits. */
static void check_feature_bits(uint64_t value, const char *reg, const struct feature_bit *table,
			       size_t n, uint64_t always, bool undefined_kvm,
			       enum mmu_issue_code code, const struct mmu_cpu_features *f,
			       const char *who, struct mmu_issue_list *l)
{
	uint64_t known = always;

	for (size_t i = 0; i < n; i++) {
		const struct feature_bit *fb = &table[i];

		known |= fb->bit;
		if ((value & fb->bit) && !feature_on(f, fb->feature))
			add_issue(l, code, fb->kvm,
				  "%s%s.%s (bit %d) is set but the CPU model lacks it (%s)", who, reg,
				  fb->name, __builtin_ctzll(fb->bit), fb->cpuid);
	}
	if (value & ~known)
		add_issue(l, code, undefined_kvm, "%s%s reserved bits 0x%llx are set", who, reg,
			  (unsigned long long)(value & ~known));
}

static void check_cr4(const struct mmu_vcpu_state *s, const struct mmu_cpu_features *f,
		      const char *who, struct mmu_issue_list *l)
{
	check_feature_bits(s->cr4, "CR4", cr4_features, MMU_ARRAY_SIZE(cr4_features), CR4_ALWAYS,
			   true, MMU_ISSUE_CR4_RESERVED, f, who, l);
}

static void check_efer(const struct mmu_vcpu_state *s, const struct mmu_cpu_features *f,
		       const char *who, struct mmu_issue_list *l)
{
	check_feature_bits(s->efer, "EFER", efer_features, MMU_ARRAY_SIZE(efer_features),
			   EFER_ALWAYS, false, MMU_ISSUE_EFER_RESERVED, f, who, l);
}

static void check_cr0(const struct mmu_vcpu_state *s, const char *who, struct mmu_issue_list *l)
{
	/* SDM Vol. 3A §2.5: MOV to CR0 #GPs on bits 63:32; KVM_SET_SREGS refuses them. */
	if (s->cr0 >> 32)
		add_issue(l, MMU_ISSUE_CR0_HIGH_BITS, true, "%sCR0 bits 63:32 (0x%llx) are set",
			  who, (unsigned long long)(s->cr0 & MMU_BITS(32, 63)));
	if ((uint32_t)s->cr0 & ~CR0_DEFINED)
		add_issue(l, MMU_ISSUE_CR0_RESERVED, false,
			  "%sCR0 reserved bits 0x%llx are set (KVM silently clears them)", who,
			  (unsigned long long)((uint32_t)s->cr0 & ~CR0_DEFINED));
	if ((s->cr0 & MMU_CR0_PG) && !(s->cr0 & MMU_CR0_PE))
		add_issue(l, MMU_ISSUE_CR0_PG_WITHOUT_PE, true,
			  "%sCR0.PG is set without CR0.PE (paging needs protected mode)", who);
	if ((s->cr0 & MMU_CR0_NW) && !(s->cr0 & MMU_CR0_CD))
		add_issue(l, MMU_ISSUE_CR0_NW_WITHOUT_CD, true, "%sCR0.NW is set without CR0.CD",
			  who);
}

/* The long-mode rules of KVM kvm_is_valid_sregs() and SDM Vol. 3A §9.8.5. */
static void check_long_mode(const struct mmu_vcpu_state *s, const struct mmu_cpu_features *f,
			    const char *who, bool check_cs, struct mmu_issue_list *l)
{
	bool lme = s->efer & MMU_EFER_LME, lma = s->efer & MMU_EFER_LMA;
	bool pg = s->cr0 & MMU_CR0_PG;

	if (lme && pg) {
		if (!(s->cr4 & MMU_CR4_PAE))
			add_issue(l, MMU_ISSUE_LONG_MODE_WITHOUT_PAE, true,
				  "%sEFER.LME and CR0.PG are set without CR4.PAE (IA-32e paging needs PAE)",
				  who);
		if (!lma)
			add_issue(l, MMU_ISSUE_LONG_MODE_WITHOUT_LMA, true,
				  "%sEFER.LME and CR0.PG are set but EFER.LMA is clear", who);
		if (s->cr3 & mmu_rsvd_pa(f->maxphyaddr))
			add_issue(l, MMU_ISSUE_CR3_RESERVED, true,
				  "%sCR3 0x%llx has bits at or above MAXPHYADDR (%u) set", who,
				  (unsigned long long)s->cr3, f->maxphyaddr);
	} else {
		if (lma)
			add_issue(l, MMU_ISSUE_LMA_OUTSIDE_LONG_MODE, true,
				  "%sEFER.LMA is set without %s", who,
				  !pg ? "CR0.PG" : "EFER.LME");
		if (check_cs && s->cs.l)
			add_issue(l, MMU_ISSUE_CS_L_OUTSIDE_LONG_MODE, true,
				  "%sCS.L (64-bit code) is set outside long mode", who);
	}
	if ((s->cr4 & MMU_CR4_PCIDE) && !lma)
		add_issue(l, MMU_ISSUE_CR4_PCIDE_OUTSIDE_LONG_MODE, false,
			  "%sCR4.PCIDE is set outside long mode (MOV to CR4 would #GP)", who);
}

static bool is_pae_paging(const struct mmu_vcpu_state *s)
{
	return (s->cr0 & MMU_CR0_PG) && (s->cr4 & MMU_CR4_PAE) && !(s->efer & MMU_EFER_LMA);
}

static void check_pdptes(const struct mmu_vcpu_state *s, const struct mmu_cpu_features *f,
			 struct mmu_issue_list *l)
{
	if (!s->pdptrs_valid)
		return;
	if (!is_pae_paging(s)) {
		add_issue(l, MMU_ISSUE_PDPTRS_WITHOUT_PAE, true,
			  "PDPTEs are marked valid but the vCPU is not in PAE paging mode");
		return;
	}
	/* KVM_SET_SREGS2 loads them unchecked; MOV CR3 would #GP (§2.4). */
	for (int i = 0; i < 4; i++) {
		uint64_t bad = mmu_pae_pdpte_reserved(s->pdptrs[i], f->maxphyaddr);

		if (bad)
			add_issue(l, MMU_ISSUE_PDPTE_RESERVED, false,
				  "PDPTE %d = 0x%llx has reserved bits 0x%llx set", i,
				  (unsigned long long)s->pdptrs[i], (unsigned long long)bad);
	}
}

static void check_segments(const struct mmu_vcpu_state *s, struct mmu_issue_list *l)
{
	/* SDM Vol. 3A §5.2.1: L=1 with D=1 is reserved. */
	if (s->cs.l && s->cs.db)
		add_issue(l, MMU_ISSUE_CS_L_AND_D, false, "CS.L and CS.D are both set");
	/* SDM Vol. 3A §10.8.6: CR8 holds a 4-bit priority; bits 63:4 are reserved. */
	if (s->cr8 >> 4)
		add_issue(l, MMU_ISSUE_CR8_RESERVED, false, "CR8 0x%llx has reserved bits 63:4 set",
			  (unsigned long long)s->cr8);
}

/* Registers common to the vCPU and to L1's saved state. */
static void check_registers(const struct mmu_vcpu_state *s, const struct mmu_cpu_features *f,
			    const char *who, bool check_cs, struct mmu_issue_list *l)
{
	check_cr0(s, who, l);
	check_cr4(s, f, who, l);
	check_efer(s, f, who, l);
	check_long_mode(s, f, who, check_cs, l);
}

static void check_nested_svm(const struct mmu_vcpu_state *s, const struct mmu_cpu_features *f,
			     const struct mmu_nested_state *n, struct mmu_issue_list *l)
{
	struct mmu_vcpu_state l1 = { 0 };

	if (!f->svm)
		add_issue(l, MMU_ISSUE_NESTED, true, "SVM nested state but the CPU model lacks SVM");
	if (!n->guest_mode)
		return;
	/* In guest mode the vCPU's EFER is L2's, and VMRUN needed EFER.SVME. */
	if (!(s->efer & MMU_EFER_SVME))
		add_issue(l, MMU_ISSUE_NESTED, true, "SVM guest mode with EFER.SVME clear");
	/* vmcb01's save area is L1's state at VMRUN: KVM validates it too. */
	l1.cr0 = n->l1_cr0;
	l1.cr3 = n->l1_cr3;
	l1.cr4 = n->l1_cr4;
	l1.efer = n->l1_efer;
	check_registers(&l1, f, "vmcb01 (L1): ", false, l);
	if (!(n->l1_efer & MMU_EFER_SVME))
		add_issue(l, MMU_ISSUE_NESTED, true, "vmcb01 (L1): EFER.SVME is clear");
	if (n->npt_enabled && !(n->l1_cr0 & MMU_CR0_PG))
		add_issue(l, MMU_ISSUE_NESTED, false,
			  "vmcb01 (L1): nested paging enabled while L1 has CR0.PG clear");
}

static void check_nested_vmx(const struct mmu_cpu_features *f, const struct mmu_nested_state *n,
			     struct mmu_issue_list *l)
{
	struct mmu_context ctx;
	struct mmu_error err;

	if (!f->vmx && n->vmxon_pa != UINT64_MAX)
		add_issue(l, MMU_ISSUE_NESTED, true,
			  "VMX nested state in VMX operation but the CPU model lacks VMX");
	if (n->guest_mode && n->ept_enabled &&
	    mmu_context_init_ept(&ctx, n->ept_pointer, f, 0, &err) < 0)
		add_issue(l, MMU_ISSUE_NESTED, true, "vmcs12: %s", err.msg);
}

int mmu_validate_vcpu_state(const struct mmu_vcpu_state *state,
			    const struct mmu_cpu_features *features,
			    const struct mmu_nested_state *nested, struct mmu_issue_list *ret)
{
	struct mmu_issue_list l = { 0 };

	if (!state || !features || !ret || !mmu_maxphyaddr_valid(features->maxphyaddr))
		return -EINVAL;

	check_registers(state, features, "", true, &l);
	check_segments(state, &l);
	check_pdptes(state, features, &l);
	if (nested && nested->format == MMU_NESTED_SVM)
		check_nested_svm(state, features, nested, &l);
	else if (nested)
		check_nested_vmx(features, nested, &l);
	*ret = l;
	return 0;
}
