/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the state validator (one clear message per architectural
 * inconsistency) and the PAE PDPTE load check of MOV CR3 (E20).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mmu/mmu.h"
#include "tests/unit/mmu-config.h"
#include "tests/unit/mmu-fixture.h"

static struct mmu_segment code64(void)
{
	return (struct mmu_segment){ .limit = 0xffffffff, .selector = 0x10, .type = 0xb,
				     .present = 1, .s = 1, .l = 1, .g = 1 };
}

static struct mmu_vcpu_state long_mode_state(void)
{
	struct mmu_vcpu_state s = { 0 };
	struct mmu_role_regs r = cfg_regs(MMU_MODE_4LEVEL);

	s.cs = code64();
	s.cr0 = r.cr0;
	s.cr4 = r.cr4 | MMU_CR4_OSFXSR | MMU_CR4_PGE;
	s.efer = r.efer | MMU_EFER_SCE;
	s.cr3 = 0x1000;
	return s;
}

/* KVM's RESET state (SDM Vol. 3A Table 10-1). */
static struct mmu_vcpu_state reset_state(void)
{
	struct mmu_vcpu_state s = { 0 };

	s.cr0 = 0x60000010;
	s.cs = (struct mmu_segment){ .base = 0xffff0000, .limit = 0xffff, .selector = 0xf000,
				     .type = 0xb, .present = 1, .s = 1 };
	return s;
}

static struct mmu_issue_list validate(const struct mmu_vcpu_state *s,
				      const struct mmu_cpu_features *f,
				      const struct mmu_nested_state *n)
{
	struct mmu_issue_list l;

	assert_int_equal(mmu_validate_vcpu_state(s, f, n, &l), 0);
	return l;
}

/* Exactly one issue, with this code, KVM verdict and message. */
static void expect_one(const struct mmu_issue_list *l, enum mmu_issue_code code, bool kvm,
		       const char *msg)
{
	if (l->count != 1)
		fail_msg("want 1 issue (%s), got %u: %s", msg, l->count,
			 l->count ? l->issue[0].msg : "");
	assert_int_equal(l->issue[0].code, code);
	assert_int_equal(l->issue[0].kvm_rejects, kvm);
	assert_string_equal(l->issue[0].msg, msg);
}

static void test_consistent_states(void **state)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_vcpu_state s = long_mode_state();
	struct mmu_issue_list l;

	l = validate(&s, &f, NULL);
	assert_int_equal(l.count, 0);
	s.cr4 |= MMU_CR4_LA57 | MMU_CR4_PKE | MMU_CR4_SMEP | MMU_CR4_SMAP | MMU_CR4_PCIDE;
	assert_int_equal(validate(&s, &f, NULL).count, 0);

	s = reset_state();
	assert_int_equal(validate(&s, &f, NULL).count, 0);

	/* 32-bit PAE with good PDPTE registers. */
	s.cr0 = CFG_CR0;
	s.cr4 = MMU_CR4_PAE;
	s.efer = MMU_EFER_NX;
	s.pdptrs_valid = true;
	s.pdptrs[0] = 0x2001;
	s.pdptrs[1] = 0xfff0; /* not present: any value */
	assert_int_equal(validate(&s, &f, NULL).count, 0);
}

static void test_each_issue(void **state)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_vcpu_state s;
	struct mmu_issue_list l;

	s = long_mode_state();
	f.la57 = false;
	s.cr4 |= MMU_CR4_LA57;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_CR4_RESERVED, true,
		   "CR4.LA57 (bit 12) is set but the CPU model lacks it (CPUID.7.0:ECX[16])");
	f = cfg_features();

	s = reset_state();
	s.efer = MMU_EFER_LMA | MMU_EFER_LME;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_LMA_OUTSIDE_LONG_MODE, true, "EFER.LMA is set without CR0.PG");

	s = long_mode_state();
	s.efer &= ~MMU_EFER_LME;
	l = validate(&s, &f, NULL);
	/* LMA without LME, and then CS.L is outside long mode as well. */
	assert_int_equal(l.count, 2);
	assert_string_equal(l.issue[0].msg, "EFER.LMA is set without EFER.LME");
	assert_int_equal(l.issue[1].code, MMU_ISSUE_CS_L_OUTSIDE_LONG_MODE);

	s = long_mode_state();
	s.efer &= ~MMU_EFER_LMA;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_LONG_MODE_WITHOUT_LMA, true,
		   "EFER.LME and CR0.PG are set but EFER.LMA is clear");

	s = long_mode_state();
	s.cr4 &= ~MMU_CR4_PAE;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_LONG_MODE_WITHOUT_PAE, true,
		   "EFER.LME and CR0.PG are set without CR4.PAE (IA-32e paging needs PAE)");

	s = reset_state();
	s.cr0 |= MMU_CR0_PG;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_CR0_PG_WITHOUT_PE, true,
		   "CR0.PG is set without CR0.PE (paging needs protected mode)");

	s = reset_state();
	s.cr0 = MMU_CR0_NW | MMU_CR0_ET;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_CR0_NW_WITHOUT_CD, true, "CR0.NW is set without CR0.CD");

	s = reset_state();
	s.cr0 |= 1ULL << 6;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_CR0_RESERVED, false,
		   "CR0 reserved bits 0x40 are set (KVM silently clears them)");

	s = reset_state();
	s.cr0 |= 1ULL << 32;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_CR0_HIGH_BITS, true, "CR0 bits 63:32 (0x100000000) are set");

	s = reset_state();
	s.cr4 = 1ULL << 15;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_CR4_RESERVED, true, "CR4 reserved bits 0x8000 are set");

	s = long_mode_state();
	f.nx = false;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_EFER_RESERVED, false,
		   "EFER.NX (bit 11) is set but the CPU model lacks it (CPUID.80000001H:EDX[20])");
	f = cfg_features();

	s = long_mode_state();
	s.efer |= 1ULL << 1;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_EFER_RESERVED, false, "EFER reserved bits 0x2 are set");

	s = long_mode_state();
	s.cr3 = 1ULL << 46;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_CR3_RESERVED, true,
		   "CR3 0x400000000000 has bits at or above MAXPHYADDR (46) set");

	s = reset_state();
	s.cs.l = 1;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_CS_L_OUTSIDE_LONG_MODE, true,
		   "CS.L (64-bit code) is set outside long mode");

	s = long_mode_state();
	s.cs.db = 1;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_CS_L_AND_D, false, "CS.L and CS.D are both set");

	s = reset_state();
	s.cr4 = MMU_CR4_PCIDE;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_CR4_PCIDE_OUTSIDE_LONG_MODE, false,
		   "CR4.PCIDE is set outside long mode (MOV to CR4 would #GP)");

	s = long_mode_state();
	s.cr8 = 0x10;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_CR8_RESERVED, false, "CR8 0x10 has reserved bits 63:4 set");

	s = long_mode_state();
	s.pdptrs_valid = true;
	l = validate(&s, &f, NULL);
	expect_one(&l, MMU_ISSUE_PDPTRS_WITHOUT_PAE, true,
		   "PDPTEs are marked valid but the vCPU is not in PAE paging mode");
}

/* Bad PAE PDPTEs: one message each; KVM_SET_SREGS2 would load them unchecked. */
static void test_bad_pdptes(void **state)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_vcpu_state s = reset_state();
	struct mmu_issue_list l;

	s.cr0 = CFG_CR0;
	s.cr4 = MMU_CR4_PAE;
	s.pdptrs_valid = true;
	s.pdptrs[0] = 0x2001 | (1ULL << 1);
	s.pdptrs[1] = 0x3000; /* not present */
	s.pdptrs[2] = 0x4001 | (1ULL << 5) | (1ULL << 63);
	s.pdptrs[3] = 0x5001 | (1ULL << 46);
	l = validate(&s, &f, NULL);
	assert_int_equal(l.count, 3);
	assert_string_equal(l.issue[0].msg, "PDPTE 0 = 0x2003 has reserved bits 0x2 set");
	assert_string_equal(l.issue[1].msg,
			    "PDPTE 2 = 0x8000000000004021 has reserved bits 0x8000000000000020 set");
	assert_string_equal(l.issue[2].msg,
			    "PDPTE 3 = 0x400000005001 has reserved bits 0x400000000000 set");
	for (unsigned int i = 0; i < l.count; i++) {
		assert_int_equal(l.issue[i].code, MMU_ISSUE_PDPTE_RESERVED);
		assert_false(l.issue[i].kvm_rejects);
	}
}

static void test_nested_issues(void **state)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_vcpu_state s = long_mode_state();
	struct mmu_nested_state n = { .format = MMU_NESTED_SVM, .guest_mode = true,
				      .has_vmcb = true, .npt_enabled = true };
	struct mmu_issue_list l;

	n.l1_cr0 = CFG_CR0;
	n.l1_cr4 = MMU_CR4_PAE;
	n.l1_efer = MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_SVME;
	s.efer |= MMU_EFER_SVME;
	assert_int_equal(validate(&s, &f, &n).count, 0);

	s.efer &= ~MMU_EFER_SVME;
	l = validate(&s, &f, &n);
	expect_one(&l, MMU_ISSUE_NESTED, true, "SVM guest mode with EFER.SVME clear");
	s.efer |= MMU_EFER_SVME;

	/* vmcb01 (L1's state at VMRUN) is validated with the same rules. */
	n.l1_cr0 = MMU_CR0_PG;
	l = validate(&s, &f, &n);
	expect_one(&l, MMU_ISSUE_CR0_PG_WITHOUT_PE, true,
		   "vmcb01 (L1): CR0.PG is set without CR0.PE (paging needs protected mode)");
	n.l1_cr0 = CFG_CR0;
	n.l1_efer &= ~MMU_EFER_SVME;
	l = validate(&s, &f, &n);
	expect_one(&l, MMU_ISSUE_NESTED, true, "vmcb01 (L1): EFER.SVME is clear");
	n.l1_efer |= MMU_EFER_SVME;

	f.svm = false;
	l = validate(&s, &f, &n);
	/* SVM nested state and EFER.SVME in both L2's and L1's EFER. */
	assert_int_equal(l.count, 3);
	assert_string_equal(l.issue[0].msg,
			    "EFER.SVME (bit 12) is set but the CPU model lacks it (CPUID.80000001H:ECX[2])");
	assert_string_equal(l.issue[1].msg, "SVM nested state but the CPU model lacks SVM");
	f = cfg_features();

	n = (struct mmu_nested_state){ .format = MMU_NESTED_VMX, .guest_mode = true,
				       .has_vmcs12 = true, .ept_enabled = true,
				       .vmxon_pa = 0x10000, .ept_pointer = 0x5000 | 6 | (3 << 3) };
	s.efer &= ~MMU_EFER_SVME;
	assert_int_equal(validate(&s, &f, &n).count, 0);
	n.ept_pointer |= 1ULL << 10;
	l = validate(&s, &f, &n);
	expect_one(&l, MMU_ISSUE_NESTED, true, "vmcs12: EPTP 0x541e: reserved bits 0x400 set");
	n.ept_pointer &= ~(1ULL << 10);
	f.vmx = false;
	l = validate(&s, &f, &n);
	expect_one(&l, MMU_ISSUE_NESTED, true,
		   "VMX nested state in VMX operation but the CPU model lacks VMX");
}

/* Everything wrong at once: every issue listed, the list bounded and flagged. */
static void test_many_issues_truncate(void **state)
{
	struct mmu_cpu_features f = { .maxphyaddr = 36 };
	struct mmu_vcpu_state s = { 0 };
	struct mmu_nested_state n = { .format = MMU_NESTED_SVM, .guest_mode = true };
	struct mmu_issue_list l;

	s.cr0 = s.cr4 = s.efer = s.cr3 = s.cr8 = ~0ULL;
	s.cs.l = s.cs.db = 1;
	n.l1_cr0 = n.l1_cr4 = n.l1_efer = n.l1_cr3 = ~0ULL;
	l = validate(&s, &f, &n);
	assert_int_equal(l.count, MMU_MAX_ISSUES);
	assert_true(l.truncated);
	for (unsigned int i = 0; i < l.count; i++)
		assert_true(strlen(l.issue[i].msg) > 10);

	l = validate(&s, &f, NULL);
	assert_false(l.truncated);
	assert_true(l.count > 20);
}

static void test_validator_arguments(void **state)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_vcpu_state s = reset_state();
	struct mmu_issue_list l;

	assert_int_equal(mmu_validate_vcpu_state(NULL, &f, NULL, &l), -EINVAL);
	assert_int_equal(mmu_validate_vcpu_state(&s, NULL, NULL, &l), -EINVAL);
	assert_int_equal(mmu_validate_vcpu_state(&s, &f, NULL, NULL), -EINVAL);
	f.maxphyaddr = 0;
	l.count = 7;
	assert_int_equal(mmu_validate_vcpu_state(&s, &f, NULL, &l), -EINVAL);
	assert_int_equal(l.count, 7);

	for (int c = MMU_ISSUE_CR0_HIGH_BITS; c <= MMU_ISSUE_NESTED; c++)
		assert_string_not_equal(mmu_issue_code_name((enum mmu_issue_code)c), "invalid");
	assert_string_equal(mmu_issue_code_name(MMU_ISSUE_CR4_RESERVED), "cr4-reserved");
	assert_string_equal(mmu_issue_code_name((enum mmu_issue_code)999), "invalid");
}

/* ---------------------------------------------------------------- E20 */

/* E20: MOV CR3 in PAE mode with a bad present PDPTE is #GP, never #PF. */
static void test_e20_pdpte_load(void **state)
{
	static const uint64_t bad_bits[] = { 1ULL << 1, 1ULL << 2, 1ULL << 5, 1ULL << 8,
					     1ULL << 46, 1ULL << 63 };
	struct mmu_cpu_features f = cfg_features();
	struct fixture *fx = fx_new();
	struct mmu_memory mem = fx_mem_map(fx);
	uint64_t cr3 = 0x200020; /* 32-byte aligned PDPT in the middle of a page */
	uint64_t pdptes[4], keep[4] = { 1, 2, 3, 4 };
	struct mmu_fault fault;

	for (int i = 0; i < 4; i++)
		fx_w64(fx, cr3 + 8 * i, 0x10000 * (uint64_t)(i + 1) | (i == 2 ? 0 : FX_P));
	fx_w64(fx, cr3 + 16, 0xfff0); /* not present: reserved bits do not matter */
	assert_int_equal(mmu_pae_load_pdptes(&mem, cr3 | 0x7, &f, pdptes, &fault), 0);
	assert_int_equal(fault.type, MMU_FAULT_NONE);
	assert_true(pdptes[0] == 0x10001 && pdptes[2] == 0xfff0 && pdptes[3] == 0x40001);

	for (size_t b = 0; b < sizeof(bad_bits) / sizeof(bad_bits[0]); b++) {
		memcpy(pdptes, keep, sizeof(keep));
		fx_w64(fx, cr3 + 8, 0x20001 | bad_bits[b]);
		assert_int_equal(mmu_pae_load_pdptes(&mem, cr3, &f, pdptes, &fault), 0);
		assert_int_equal(fault.type, MMU_FAULT_GP);
		assert_int_equal(fault.vector, 13);
		assert_int_equal(fault.error_code, 0);
		assert_memory_equal(pdptes, keep, sizeof(keep)); /* registers not loaded */
		assert_true(mmu_pae_pdpte_reserved(0x20001 | bad_bits[b], 46) == bad_bits[b]);
	}
	/* A bit at MAXPHYADDR is reserved only below it. */
	assert_true(mmu_pae_pdpte_reserved(0x20001 | (1ULL << 46), 52) == 0);
	assert_true(mmu_pae_pdpte_reserved(0x20000 | (1ULL << 46), 46) == 0);

	/* A PDPT outside guest RAM cannot be loaded either. */
	assert_int_equal(mmu_pae_load_pdptes(&mem, 0x7fffffe0, &f, pdptes, &fault), 0);
	assert_int_equal(fault.type, MMU_FAULT_GP);
	assert_true(fault.unbacked);
	assert_int_equal(mmu_pae_load_pdptes(NULL, cr3, &f, pdptes, &fault), -EINVAL);
	fx_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_consistent_states),
		cmocka_unit_test(test_each_issue),
		cmocka_unit_test(test_bad_pdptes),
		cmocka_unit_test(test_nested_issues),
		cmocka_unit_test(test_many_issues_truncate),
		cmocka_unit_test(test_validator_arguments),
		cmocka_unit_test(test_e20_pdpte_load),
	};
	return cmocka_run_group_tests_name("mmu-validate", tests, NULL, NULL);
}
