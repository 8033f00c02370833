/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for nested two-stage translation (MMU.md §5, E37–E46) and
 * the KVM_GET_NESTED_STATE parsers: every stage-1 × stage-2 mode pair,
 * fault attribution to its stage, and every malformed-blob path. The
 * header layout is checked against this machine's uapi <linux/kvm.h>.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <linux/kvm.h>

#include "mmu/mmu.h"
#include "tests/unit/mmu-config.h"
#include "tests/unit/mmu-fixture.h"

/* L2 GPA x lives at L1 GPA x + OFF (below 4 GiB so 32-bit NPT can map it). */
#define OFF 0x40000000ULL
#define FRAME 0x12345000ULL

struct nested {
	struct fixture *l1; /* L1's physical memory */
	struct fixture *l2; /* L2's physical view, used to build stage 1 */
	enum mmu_paging_mode m1, m2;
	uint64_t s1_root, s2_root;
	struct mmu_context s1, s2;
	struct mmu_memory mem;
	struct mmu_walk_request req;
};

static uint64_t s2_leaf_flags(enum mmu_paging_mode m2)
{
	return fx_is_ept(m2) ? FX_EPT_RWX | FX_EPT_WB : FX_P | FX_RW | FX_US | FX_A;
}

static void s2_map(struct nested *n, uint64_t l2_gpa)
{
	fx_map(n->l1, n->m2, n->s2_root, l2_gpa, 1, (l2_gpa + OFF) | s2_leaf_flags(n->m2));
}

static uint64_t eptp_for(enum mmu_paging_mode m2, uint64_t root, uint64_t extra)
{
	return root | 6 | ((uint64_t)(fx_root_level(m2) - 1) << 3) | extra;
}

/* Builds L2's tables for cfg_gva(m1) -> FRAME, copies them into L1 memory and maps them in stage 2. */
static void nested_build(struct nested *n, enum mmu_paging_mode m1, enum mmu_paging_mode m2,
			 uint64_t eptp_extra, unsigned int s2_flags)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_role_regs r1 = cfg_regs(m1);

	memset(n, 0, sizeof(*n));
	n->m1 = m1;
	n->m2 = m2;
	n->l2 = fx_new();
	n->l1 = fx_new();
	n->s1_root = fx_root(n->l2);
	n->s2_root = fx_root(n->l1);
	n->req.addr = cfg_gva(m1);
	n->req.cr3 = n->s1_root;
	if (m1 != MMU_MODE_NONE)
		fx_map(n->l2, m1, n->s1_root, n->req.addr, 1, FRAME | FX_P | FX_RW | FX_US | FX_A);

	for (unsigned int i = 0; i < FX_HASH_SIZE; i++) {
		struct fx_page *p = &n->l2->slot[i];

		if (!p->used)
			continue;
		memcpy(fx_ptr(n->l1, p->gfn * FX_PAGE + OFF, true), p->data, FX_PAGE);
		s2_map(n, p->gfn * FX_PAGE);
	}
	s2_map(n, FRAME);
	if (m1 == MMU_MODE_NONE)
		s2_map(n, n->req.addr & ~0xFFFULL);

	assert_int_equal(mmu_context_init(&n->s1, &r1, &f, MMU_CTX_GUEST_MODE | s2_flags), 0);
	if (fx_is_ept(m2)) {
		assert_int_equal(mmu_context_init_ept(&n->s2, eptp_for(m2, n->s2_root, eptp_extra),
						      &f, s2_flags, NULL),
				 0);
	} else {
		struct mmu_role_regs l1 = cfg_regs(m2);

		assert_int_equal(mmu_context_init_npt(&n->s2, l1.cr4, l1.efer, n->s2_root, &f,
						      s2_flags),
				 0);
	}
	n->mem = fx_mem_map(n->l1);
}

static void nested_free(struct nested *n)
{
	fx_free(n->l1);
	fx_free(n->l2);
}

/* L1 GPA of the stage-1 entry for the walked address at `level`. */
static uint64_t s1_entry_l1(struct nested *n, unsigned int level)
{
	return fx_entry(n->l2, n->m1, n->s1_root, n->req.addr, level) + OFF;
}

/* L2 GPA of the stage-1 table holding the entry at `level`. */
static uint64_t s1_table_l2(struct nested *n, unsigned int level)
{
	return fx_entry(n->l2, n->m1, n->s1_root, n->req.addr, level) & ~0xFFFULL;
}

static void s2_modify(struct nested *n, uint64_t l2_gpa, unsigned int level, uint64_t set,
		      uint64_t clr)
{
	fx_modify(n->l1, n->m2, n->s2_root, l2_gpa, level, set, clr);
}

static struct mmu_walk_result nwalk(struct nested *n)
{
	struct mmu_walk_result r;

	assert_int_equal(mmu_walk(&n->s1, &n->s2, &n->mem, &n->req, &r), 0);
	return r;
}

/* ---------------------------------------------------------------- success paths */

static void test_every_mode_pair(void **state)
{
	static const enum mmu_paging_mode s1_modes[] = { MMU_MODE_NONE, MMU_MODE_32BIT,
							 MMU_MODE_PAE, MMU_MODE_4LEVEL,
							 MMU_MODE_5LEVEL };
	static const enum mmu_paging_mode s2_modes[] = { MMU_MODE_32BIT, MMU_MODE_PAE,
							 MMU_MODE_4LEVEL, MMU_MODE_5LEVEL,
							 MMU_MODE_EPT4, MMU_MODE_EPT5 };

	for (size_t i = 0; i < sizeof(s1_modes) / sizeof(s1_modes[0]); i++) {
		for (size_t j = 0; j < sizeof(s2_modes) / sizeof(s2_modes[0]); j++) {
			struct nested n;
			struct mmu_walk_result r;
			uint64_t want;

			nested_build(&n, s1_modes[i], s2_modes[j], 0, 0);
			r = nwalk(&n);
			if (r.fault.type != MMU_FAULT_NONE)
				fail_msg("%s over %s: %s", mmu_paging_mode_name(s1_modes[i]),
					 mmu_paging_mode_name(s2_modes[j]),
					 mmu_fault_type_name(r.fault.type));
			want = s1_modes[i] == MMU_MODE_NONE ? n.req.addr
							    : FRAME | (n.req.addr & 0xFFF);
			assert_true(r.gpa == want);
			assert_true(r.pa == want + OFF);
			assert_int_equal(r.stage2_mode, s2_modes[j]);
			assert_int_equal(r.nr_stage2_entries, fx_root_level(s2_modes[j]));
			/* Every stage-1 entry was read at its stage-2 translation. */
			for (unsigned int e = 0; e < r.nr_entries; e++)
				if (!r.entries[e].from_register)
					assert_true(r.entries[e].pa == r.entries[e].gpa + OFF);
			nested_free(&n);
		}
	}
}

/* A stage-2 context walked on its own translates an L2 GPA. */
static void test_stage2_alone(void **state)
{
	struct mmu_walk_request req = { .addr = FRAME | 0x10 };
	struct mmu_walk_result r;
	struct nested n;

	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_EPT4, 0, 0);
	assert_int_equal(mmu_walk(&n.s2, NULL, &n.mem, &req, &r), 0);
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);
	assert_true(r.pa == FRAME + OFF + 0x10);
	assert_int_equal(r.mode, MMU_MODE_EPT4);
	assert_int_equal(r.nr_entries, 4);
	assert_int_equal(r.nr_stage2_entries, 0);
	assert_int_equal(r.rights, MMU_RIGHT_U | MMU_RIGHT_W | MMU_RIGHT_X);

	/* Without a linear address the qualification's bit 7 stays clear. */
	s2_modify(&n, FRAME, 1, 0, FX_EPT_RWX);
	assert_int_equal(mmu_walk(&n.s2, NULL, &n.mem, &req, &r), 0);
	assert_int_equal(r.fault.type, MMU_FAULT_EPT_VIOLATION);
	assert_true(r.fault.exit_qualification == MMU_EPT_QUAL_READ);
	req.addr = 1ULL << 52;
	assert_int_equal(mmu_walk(&n.s2, NULL, &n.mem, &req, &r), -EINVAL);
	nested_free(&n);
}

/* ---------------------------------------------------------------- NPT */

/* E37: L1 EFER.NX=0: NPT bit 63 is reserved. */
static void test_e37_npt_nx_reserved(void **state)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_walk_result r;
	struct nested n;

	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_4LEVEL, 0, 0);
	assert_int_equal(mmu_context_init_npt(&n.s2, MMU_CR4_PAE, MMU_EFER_LME | MMU_EFER_LMA,
					      n.s2_root, &f, 0),
			 0);
	s2_modify(&n, FRAME, 1, FX_XD, 0);
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_NPF);
	assert_int_equal(r.fault.stage, 2);
	assert_int_equal(r.fault.level, 1);
	assert_false(r.fault.paging_structure);
	assert_int_equal(r.fault.error_code, MMU_PFERR_P | MMU_PFERR_RSVD | MMU_PFERR_U);
	assert_true(r.fault.exit_info_1 ==
		    (MMU_NPF_FINAL_ADDR | MMU_PFERR_P | MMU_PFERR_RSVD | MMU_PFERR_U));
	assert_true(r.fault.exit_info_2 == (FRAME | (n.req.addr & 0xFFF)));
	assert_true(r.fault.guest_linear_address == n.req.addr);
	assert_int_equal(r.nr_stage2_entries, 4);

	/* With L1 EFER.NX=1 the same bit is XD: a read passes, a fetch is an NPF. */
	assert_int_equal(mmu_context_init_npt(&n.s2, MMU_CR4_PAE,
					      MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NX, n.s2_root,
					      &f, 0),
			 0);
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);
	n.req.access = MMU_ACCESS_FETCH;
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_NPF);
	assert_int_equal(r.fault.error_code, MMU_PFERR_P | MMU_PFERR_U | MMU_PFERR_I);
	nested_free(&n);
}

/* E38: NPT U/S=0: every NPT access is a user access, so an L2 supervisor read faults. */
static void test_e38_npt_user_bit(void **state)
{
	struct mmu_walk_result r;
	struct nested n;

	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_4LEVEL, 0, 0);
	s2_modify(&n, FRAME, 1, 0, FX_US);
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_NPF);
	assert_int_equal(r.fault.error_code, MMU_PFERR_P | MMU_PFERR_U);
	assert_true(r.fault.exit_info_1 & MMU_NPF_FINAL_ADDR);

	/* NPT R/W=0 faults writes whatever WP, and L1's SMEP/SMAP never trigger. */
	s2_modify(&n, FRAME, 1, FX_US, FX_RW);
	n.req.access = MMU_ACCESS_WRITE;
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_NPF);
	assert_int_equal(r.fault.error_code, MMU_PFERR_P | MMU_PFERR_W | MMU_PFERR_U);
	nested_free(&n);
}

/* E39: the stage-2 role comes from vmcb01's CR4/EFER only; L2's registers do not matter. */
static void test_e39_npt_uses_vmcb01(void **state)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_walk_result base, r;
	struct mmu_context direct, from_vcpu;
	struct nested n;
	int differs = 0;

	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_4LEVEL, 0, 0);
	n.req.access = MMU_ACCESS_USER;
	base = nwalk(&n);
	assert_int_equal(base.fault.type, MMU_FAULT_NONE);
	assert_int_equal(mmu_context_init_npt(&direct, MMU_CR4_PAE,
					      MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NX, n.s2_root,
					      &f, 0),
			 0);
	assert_memory_equal(&direct, &n.s2, sizeof(direct));

	srand(39);
	for (int i = 0; i < 200; i++) {
		/* Random (valid, 4-level) vCPU state for L2, as the 2021 series did. */
		struct mmu_role_regs l2 = {
			.cr0 = CFG_CR0 & ~((uint64_t)(rand() & 1) << 16),
			.cr4 = MMU_CR4_PAE | ((uint64_t)rand() & (MMU_CR4_SMEP | MMU_CR4_SMAP |
								   MMU_CR4_PKE | MMU_CR4_PGE)),
			.efer = MMU_EFER_LME | MMU_EFER_LMA | ((uint64_t)rand() & MMU_EFER_NX),
		};

		assert_int_equal(mmu_context_init(&n.s1, &l2, &f, MMU_CTX_GUEST_MODE), 0);
		r = nwalk(&n);
		assert_int_equal(r.fault.type, MMU_FAULT_NONE);
		assert_true(r.pa == base.pa);
		assert_memory_equal(r.stage2_entries, base.stage2_entries,
				    sizeof(r.stage2_entries));
		assert_memory_equal(&direct, &n.s2, sizeof(direct));
		/* Building NPT from the vCPU's registers (the bug) would not be the same. */
		assert_int_equal(mmu_context_init_npt(&from_vcpu, l2.cr4, l2.efer, n.s2_root, &f, 0),
				 0);
		differs += memcmp(&from_vcpu, &direct, sizeof(direct)) != 0;
	}
	assert_true(differs > 0);
	nested_free(&n);
}

/* E40: L1 in 32-bit PAE mode: 3-level NPT whose PDPTEs are read from nCR3 on every walk. */
static void test_e40_npt_pae(void **state)
{
	struct mmu_walk_result r;
	struct nested n;
	uint64_t pdpte_gpa;

	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_PAE, 0, 0);
	assert_int_equal(n.s2.mode, MMU_MODE_PAE);
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);
	assert_int_equal(r.nr_stage2_entries, 3);
	assert_int_equal(r.stage2_entries[0].level, 3);
	assert_false(r.stage2_entries[0].from_register);

	/* Memory, not a cached register, decides: clear P and the next walk faults there. */
	pdpte_gpa = r.stage2_entries[0].gpa;
	fx_w64(n.l1, pdpte_gpa, fx_r64(n.l1, pdpte_gpa) & ~FX_P);
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_NPF);
	assert_int_equal(r.fault.level, 3);
	/* The first stage-1 table read is the PML4 page: a user write. */
	assert_int_equal(r.fault.error_code, MMU_PFERR_W | MMU_PFERR_U);
	assert_true(r.fault.paging_structure);
	assert_true(r.fault.exit_info_1 == (MMU_NPF_TABLE_ADDR | MMU_PFERR_W | MMU_PFERR_U));
	nested_free(&n);
}

/* ---------------------------------------------------------------- EPT */

static struct mmu_walk_result ept_leaf_case(uint64_t set, uint64_t clr, bool execonly,
					    uint32_t access)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_walk_result r;
	struct nested n;

	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_EPT4, 0, 0);
	if (!execonly) {
		f.ept_caps &= ~MMU_EPT_CAP_EXECUTE_ONLY;
		assert_int_equal(mmu_context_init_ept(&n.s2, n.s2.eptp, &f, 0, NULL), 0);
	}
	s2_modify(&n, FRAME, 1, set, clr);
	n.req.access = access;
	r = nwalk(&n);
	nested_free(&n);
	return r;
}

/* E41: XWR=010 (write without read) is a misconfiguration. */
static void test_e41_ept_write_only(void **state)
{
	struct mmu_walk_result r = ept_leaf_case(FX_EPT_W, FX_EPT_RWX, true, 0);

	assert_int_equal(r.fault.type, MMU_FAULT_EPT_MISCONFIG);
	assert_int_equal(r.fault.stage, 2);
	assert_int_equal(r.fault.level, 1);
	assert_false(r.fault.paging_structure);
	assert_true(r.fault.exit_qualification == 0);

	r = ept_leaf_case(FX_EPT_W | FX_EPT_X, FX_EPT_R, true, 0);
	assert_int_equal(r.fault.type, MMU_FAULT_EPT_MISCONFIG); /* 110 */
}

/* E42: XWR=100 is a misconfiguration unless execute-only is supported. */
static void test_e42_ept_execute_only(void **state)
{
	struct mmu_walk_result r;

	r = ept_leaf_case(FX_EPT_X, FX_EPT_R | FX_EPT_W, false, MMU_ACCESS_FETCH);
	assert_int_equal(r.fault.type, MMU_FAULT_EPT_MISCONFIG);

	r = ept_leaf_case(FX_EPT_X, FX_EPT_R | FX_EPT_W, true, MMU_ACCESS_FETCH | MMU_ACCESS_USER);
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);
	assert_int_equal(r.stage2_entries[3].value & FX_EPT_RWX, FX_EPT_X);

	r = ept_leaf_case(FX_EPT_X, FX_EPT_R | FX_EPT_W, true, MMU_ACCESS_READ);
	assert_int_equal(r.fault.type, MMU_FAULT_EPT_VIOLATION);
	assert_false(r.fault.paging_structure);
	/* read; AND of R/W/X = X only; linear address valid; final translation */
	assert_true(r.fault.exit_qualification ==
		    (MMU_EPT_QUAL_READ | MMU_EPT_QUAL_EXECUTABLE | MMU_EPT_QUAL_GLA_VALID |
		     MMU_EPT_QUAL_GLA_FINAL));
	assert_true(r.fault.address == (FRAME | (cfg_gva(MMU_MODE_4LEVEL) & 0xFFF)));
}

/* Bits 5:3 of the qualification AND the rights of every EPT entry used. */
static void test_ept_qualification_ands_levels(void **state)
{
	struct mmu_walk_result r;
	struct nested n;

	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_EPT4, 0, 0);
	s2_modify(&n, FRAME, 2, 0, FX_EPT_W); /* the EPT PDE: R and X only */
	n.req.access = MMU_ACCESS_WRITE;
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_EPT_VIOLATION);
	assert_int_equal(r.fault.level, 1);
	assert_true(r.fault.exit_qualification ==
		    (MMU_EPT_QUAL_WRITE | MMU_EPT_QUAL_READABLE | MMU_EPT_QUAL_EXECUTABLE |
		     MMU_EPT_QUAL_GLA_VALID | MMU_EPT_QUAL_GLA_FINAL));
	/* Not present half-way: the AND includes the empty entry, so 5:3 are 0. */
	s2_modify(&n, FRAME, 2, 0, FX_EPT_RWX);
	n.req.access = MMU_ACCESS_FETCH;
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_EPT_VIOLATION);
	assert_int_equal(r.fault.level, 2);
	assert_true(r.fault.exit_qualification ==
		    (MMU_EPT_QUAL_FETCH | MMU_EPT_QUAL_GLA_VALID | MMU_EPT_QUAL_GLA_FINAL));
	nested_free(&n);
}

/* E43: memory type 7 in a leaf, or bit 3 in a PML4E: misconfiguration. */
static void test_e43_ept_reserved(void **state)
{
	struct mmu_walk_result r;
	struct nested n;

	r = ept_leaf_case(7ULL << 3, 7ULL << 3, true, 0);
	assert_int_equal(r.fault.type, MMU_FAULT_EPT_MISCONFIG);
	r = ept_leaf_case(2ULL << 3, 7ULL << 3, true, 0);
	assert_int_equal(r.fault.type, MMU_FAULT_EPT_MISCONFIG);
	r = ept_leaf_case(0, 7ULL << 3, true, 0); /* UC is fine */
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);

	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_EPT4, 0, 0);
	s2_modify(&n, FRAME, 4, 1ULL << 3, 0);
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_EPT_MISCONFIG);
	assert_int_equal(r.fault.level, 4);
	/* The PML4E covers the stage-1 tables too: the first table read hits it. */
	assert_true(r.fault.paging_structure);
	nested_free(&n);
}

static bool ept_ad_bits_set(struct nested *n, const struct mmu_walk_result *r)
{
	for (unsigned int i = 0; i < r->nr_stage2_entries; i++)
		if (fx_r64(n->l1, r->stage2_entries[i].gpa) & (FX_EPT_A | FX_EPT_D))
			return true;
	return false;
}

/* E44: EPTP[6]=0: EPT bits 8/9 are never written; with EPTP[6]=1 they are. */
static void test_e44_ept_ad(void **state)
{
	struct mmu_walk_result r;
	struct nested n;

	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_EPT4, 0, 0);
	n.req.flags = MMU_WALK_SET_AD;
	n.req.access = MMU_ACCESS_WRITE;
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);
	assert_false(ept_ad_bits_set(&n, &r));
	nested_free(&n);

	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_EPT4, 1ULL << 6, 0);
	n.req.flags = MMU_WALK_SET_AD;
	n.req.access = MMU_ACCESS_WRITE;
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);
	for (unsigned int i = 0; i < r.nr_stage2_entries; i++) {
		uint64_t now = fx_r64(n.l1, r.stage2_entries[i].gpa);

		assert_true(now & FX_EPT_A);
		assert_int_equal(!!(now & FX_EPT_D), i == r.nr_stage2_entries - 1U);
	}
	/* Stage-1 tables are written (EPT A/D makes their accesses writes): D on their pages. */
	assert_true(fx_r64(n.l1, fx_entry(n.l1, n.m2, n.s2_root, s1_table_l2(&n, 1), 1)) &
		    FX_EPT_D);
	nested_free(&n);
}

/* Inspection (no MMU_WALK_SET_AD) writes neither stage; SET_AD writes both. */
static void test_nested_inspection_writes_nothing(void **state)
{
	static const enum mmu_paging_mode s2_modes[] = { MMU_MODE_4LEVEL, MMU_MODE_EPT4 };

	for (size_t i = 0; i < sizeof(s2_modes) / sizeof(s2_modes[0]); i++) {
		uint64_t a = fx_is_ept(s2_modes[i]) ? FX_EPT_A : FX_A;
		struct mmu_walk_result r;
		struct nested n;

		nested_build(&n, MMU_MODE_4LEVEL, s2_modes[i], 1ULL << 6, 0);
		for (unsigned int l = 1; l <= 4; l++)
			s2_modify(&n, FRAME, l, 0, a);
		fx_w64(n.l1, s1_entry_l1(&n, 1), fx_r64(n.l1, s1_entry_l1(&n, 1)) & ~FX_A);
		n.l1->cmpxchg_calls = 0;
		n.mem = fx_mem_copy(n.l1);
		n.req.access = MMU_ACCESS_WRITE;
		r = nwalk(&n);
		assert_int_equal(r.fault.type, MMU_FAULT_NONE);
		assert_int_equal(n.l1->cmpxchg_calls, 0);
		assert_int_equal(r.ad_written, 0);

		n.req.flags = MMU_WALK_SET_AD;
		r = nwalk(&n);
		assert_int_equal(r.fault.type, MMU_FAULT_NONE);
		for (unsigned int e = 0; e < r.nr_stage2_entries; e++)
			assert_true(fx_r64(n.l1, r.stage2_entries[e].gpa) & a);
		assert_true(fx_r64(n.l1, s1_entry_l1(&n, 1)) & (FX_A | FX_D));
		nested_free(&n);
	}
}

/* E45: L2's CR0.WP changes the stage-1 role only; stage 2 is untouched. */
static void test_e45_stage2_ignores_l2_cr0(void **state)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_role_regs regs = cfg_regs(MMU_MODE_4LEVEL);
	struct mmu_walk_result wp1, wp0;
	struct mmu_context s2_before;
	uint32_t s1_before;
	struct nested n;

	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_EPT4, 0, 0);
	s2_before = n.s2;
	s1_before = n.s1.role.word;
	wp1 = nwalk(&n);
	regs.cr0 &= ~MMU_CR0_WP;
	assert_int_equal(mmu_context_init(&n.s1, &regs, &f, MMU_CTX_GUEST_MODE), 0);
	wp0 = nwalk(&n);
	assert_int_not_equal(n.s1.role.word, s1_before);
	assert_memory_equal(&s2_before, &n.s2, sizeof(s2_before));
	assert_int_equal(wp0.nr_stage2_entries, wp1.nr_stage2_entries);
	assert_memory_equal(wp0.stage2_entries, wp1.stage2_entries, sizeof(wp0.stage2_entries));
	assert_true(wp0.pa == wp1.pa);
	nested_free(&n);
}

/* E46: the stage-1 PTE page mapped read-only in stage 2: a paging-structure fault. */
static void test_e46_npt_readonly_table(void **state)
{
	struct mmu_walk_result r;
	struct nested n;
	uint64_t pt;

	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_4LEVEL, 0, 0);
	pt = s1_table_l2(&n, 1);
	s2_modify(&n, pt, 1, 0, FX_RW);
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_NPF);
	assert_true(r.fault.paging_structure);
	assert_int_equal(r.fault.error_code, MMU_PFERR_P | MMU_PFERR_W | MMU_PFERR_U);
	assert_true(r.fault.exit_info_1 ==
		    (MMU_NPF_TABLE_ADDR | MMU_PFERR_P | MMU_PFERR_W | MMU_PFERR_U));
	assert_true(r.fault.exit_info_2 == s1_entry_l1(&n, 1) - OFF);
	/* The stage-1 walk got as far as the PDE. */
	assert_int_equal(r.nr_entries, 3);
	nested_free(&n);
}

static void test_e46_ept_readonly_table(void **state)
{
	struct mmu_walk_result r;
	struct nested n;
	uint64_t pt;

	/* EPT A/D on: paging-structure accesses are writes (bits 0 and 1 set). */
	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_EPT4, 1ULL << 6, 0);
	pt = s1_table_l2(&n, 1);
	s2_modify(&n, pt, 1, 0, FX_EPT_W);
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_EPT_VIOLATION);
	assert_true(r.fault.paging_structure);
	assert_true(r.fault.exit_qualification ==
		    (MMU_EPT_QUAL_READ | MMU_EPT_QUAL_WRITE | MMU_EPT_QUAL_READABLE |
		     MMU_EPT_QUAL_EXECUTABLE | MMU_EPT_QUAL_GLA_VALID));
	nested_free(&n);

	/* EPT A/D off: a table read is a read, so an accessed PTE passes... */
	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_EPT4, 0, 0);
	pt = s1_table_l2(&n, 1);
	s2_modify(&n, pt, 1, 0, FX_EPT_W);
	n.req.flags = MMU_WALK_SET_AD;
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);
	/* ...but setting its A bit is a write (SDM §29.3.3.2). */
	fx_w64(n.l1, s1_entry_l1(&n, 1), fx_r64(n.l1, s1_entry_l1(&n, 1)) & ~FX_A);
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_EPT_VIOLATION);
	assert_true(r.fault.paging_structure);
	assert_true(r.fault.exit_qualification ==
		    (MMU_EPT_QUAL_WRITE | MMU_EPT_QUAL_READABLE | MMU_EPT_QUAL_EXECUTABLE |
		     MMU_EPT_QUAL_GLA_VALID));
	assert_false(fx_r64(n.l1, s1_entry_l1(&n, 1)) & FX_A);
	nested_free(&n);

	/* KVM treats every paging-structure access as a write, and reports "read" too. */
	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_EPT4, 0, MMU_CTX_KVM_COMPAT);
	pt = s1_table_l2(&n, 1);
	s2_modify(&n, pt, 1, 0, FX_EPT_W);
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_EPT_VIOLATION);
	assert_true(r.fault.exit_qualification & MMU_EPT_QUAL_READ);
	assert_true(r.fault.exit_qualification & MMU_EPT_QUAL_WRITE);
	nested_free(&n);
}

/* A stage-1 fault under nested paging is still a #PF for L2, with its CR2. */
static void test_stage1_fault_under_stage2(void **state)
{
	struct mmu_walk_result r;
	struct nested n;

	nested_build(&n, MMU_MODE_4LEVEL, MMU_MODE_EPT4, 0, 0);
	fx_w64(n.l1, s1_entry_l1(&n, 1), fx_r64(n.l1, s1_entry_l1(&n, 1)) & ~FX_US);
	n.req.access = MMU_ACCESS_USER;
	r = nwalk(&n);
	assert_int_equal(r.fault.type, MMU_FAULT_PF);
	assert_int_equal(r.fault.stage, 1);
	assert_int_equal(r.fault.error_code, MMU_PFERR_P | MMU_PFERR_U);
	assert_true(r.fault.address == n.req.addr);
	nested_free(&n);
}

/* ---------------------------------------------------------------- EPTP */

static void test_eptp_validation(void **state)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_context ctx;
	struct mmu_error err;
	uint64_t good = 0x5000 | 6 | (3 << 3);

	assert_int_equal(mmu_context_init_ept(&ctx, good, &f, 0, &err), 0);
	assert_int_equal(ctx.mode, MMU_MODE_EPT4);
	assert_int_equal(ctx.role.ept, 1);
	assert_int_equal(ctx.role.ad_disabled, 1);
	assert_int_equal(ctx.role.guest_mode, 1);
	assert_int_equal(ctx.role.execonly, 1);

	memset(&ctx, 0x33, sizeof(ctx));
	assert_int_equal(mmu_context_init_ept(&ctx, (good & ~7ULL) | 1, &f, 0, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "memory type 1"));
	assert_int_equal(ctx.maxphyaddr, 0x33); /* untouched */
	assert_int_equal(mmu_context_init_ept(&ctx, good & ~(7ULL << 3), &f, 0, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "1-level walk"));
	f.ept_caps &= ~MMU_EPT_CAP_WALK_5;
	assert_int_equal(mmu_context_init_ept(&ctx, good | (1 << 3) | (1 << 5), &f, 0, &err),
			 -EINVAL);
	f.ept_caps &= ~MMU_EPT_CAP_AD;
	assert_int_equal(mmu_context_init_ept(&ctx, good | (1 << 6), &f, 0, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "A/D"));
	assert_int_equal(mmu_context_init_ept(&ctx, good | (1 << 9), &f, 0, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "reserved bits 0x200"));
	assert_int_equal(mmu_context_init_ept(&ctx, good | (1ULL << 46), &f, 0, &err), -EINVAL);
	f.ept_caps &= ~MMU_EPT_CAP_MT_WB;
	assert_int_equal(mmu_context_init_ept(&ctx, good, &f, 0, &err), -EINVAL);
	assert_int_equal(mmu_context_init_ept(&ctx, good & ~7ULL, &f, 0, &err), 0);
	assert_int_equal(mmu_context_init_ept(&ctx, good, NULL, 0, &err), -EINVAL);
}

/* NPT context: PKE and CR0.WP dropped, and LMA without PAE refused. */
static void test_npt_context(void **state)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_context ctx;

	assert_int_equal(mmu_context_init_npt(&ctx, MMU_CR4_PAE | MMU_CR4_PKE | MMU_CR4_SMEP,
					      MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NX, 0x1000, &f,
					      0),
			 0);
	assert_int_equal(ctx.role.cr4_pke, 0);
	assert_int_equal(ctx.role.cr0_wp, 0);
	assert_int_equal(ctx.role.cr4_smep, 1);
	assert_int_equal(ctx.pkru_mask, 0);
	assert_true(ctx.stage2);
	assert_true(ctx.root == 0x1000);
	assert_int_equal(mmu_context_init_npt(&ctx, 0, MMU_EFER_LMA, 0x1000, &f, 0), -EINVAL);
}

/* ---------------------------------------------------------------- nested-state blobs */

static void put16(uint8_t *b, size_t off, uint16_t v)
{
	memcpy(b + off, &v, 2);
}

static void put32(uint8_t *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, 4);
}

static void put64(uint8_t *b, size_t off, uint64_t v)
{
	memcpy(b + off, &v, 8);
}

/* The header and flag values of the uapi headers on this machine. */
static void test_uapi_layout(void **state)
{
	assert_int_equal(offsetof(struct kvm_nested_state, flags), 0);
	assert_int_equal(offsetof(struct kvm_nested_state, format), 2);
	assert_int_equal(offsetof(struct kvm_nested_state, size), 4);
	assert_int_equal(offsetof(struct kvm_nested_state, hdr), 8);
	assert_int_equal(offsetof(struct kvm_nested_state, hdr.svm.vmcb_pa), 8);
	assert_int_equal(offsetof(struct kvm_nested_state, hdr.vmx.vmxon_pa), 8);
	assert_int_equal(offsetof(struct kvm_nested_state, hdr.vmx.vmcs12_pa), 16);
	assert_int_equal(offsetof(struct kvm_nested_state, hdr.vmx.smm.flags), 24);
	assert_int_equal(offsetof(struct kvm_nested_state, hdr.vmx.flags), 28);
	assert_int_equal(offsetof(struct kvm_nested_state, data), MMU_NESTED_HDR_SIZE);
	assert_int_equal(sizeof(struct kvm_nested_state), MMU_NESTED_HDR_SIZE);
	assert_int_equal(sizeof(struct kvm_vmx_nested_state_data), 2 * MMU_NESTED_VMCS12_SIZE);
	assert_int_equal(sizeof(struct kvm_svm_nested_state_data), MMU_NESTED_VMCB_SIZE);
	assert_int_equal(KVM_STATE_NESTED_FORMAT_VMX, MMU_NESTED_VMX);
	assert_int_equal(KVM_STATE_NESTED_FORMAT_SVM, MMU_NESTED_SVM);
	assert_int_equal(KVM_STATE_NESTED_GUEST_MODE, MMU_NESTED_GUEST_MODE);
	assert_int_equal(KVM_STATE_NESTED_RUN_PENDING, MMU_NESTED_RUN_PENDING);
	assert_int_equal(KVM_STATE_NESTED_EVMCS, MMU_NESTED_EVMCS);
	assert_int_equal(KVM_STATE_NESTED_MTF_PENDING, MMU_NESTED_MTF_PENDING);
	assert_int_equal(KVM_STATE_NESTED_GIF_SET, MMU_NESTED_GIF_SET);
	assert_int_equal(KVM_STATE_NESTED_VMX_VMCS_SIZE, MMU_NESTED_VMCS12_SIZE);
	assert_int_equal(KVM_STATE_NESTED_SVM_VMCB_SIZE, MMU_NESTED_VMCB_SIZE);
	assert_int_equal(KVM_CPUID_FLAG_SIGNIFCANT_INDEX, MMU_CPUID_FLAG_SIGNIFICANT_INDEX);
	assert_int_equal(KVM_CPUID_FLAG_STATEFUL_FUNC, MMU_CPUID_FLAG_STATEFUL_FUNC);
	assert_int_equal(KVM_CPUID_FLAG_STATE_READ_NEXT, MMU_CPUID_FLAG_STATE_READ_NEXT);
}

/* An SVM blob in guest mode with NPT, built through the uapi struct. */
static uint8_t *svm_blob(size_t *ret_len)
{
	size_t len = MMU_NESTED_HDR_SIZE + MMU_NESTED_VMCB_SIZE;
	uint8_t *b = calloc(1, len);
	struct kvm_nested_state *ks = (struct kvm_nested_state *)b;
	uint8_t *vmcb = b + offsetof(struct kvm_nested_state, data);

	ks->flags = KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_GIF_SET;
	ks->format = KVM_STATE_NESTED_FORMAT_SVM;
	ks->size = (uint32_t)len;
	ks->hdr.svm.vmcb_pa = 0x7000;
	put64(vmcb, 0x090, 1);		  /* nested_ctl: NP enable */
	put64(vmcb, 0x0B0, 0x123000);	  /* nested_cr3 */
	put64(vmcb, 0x400 + 0x0D0, MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NX | MMU_EFER_SVME);
	put64(vmcb, 0x400 + 0x148, MMU_CR4_PAE | MMU_CR4_PKE);
	put64(vmcb, 0x400 + 0x150, 0x9000);
	put64(vmcb, 0x400 + 0x158, CFG_CR0);
	put64(vmcb, 0x400 + 0x170, 0x202);
	put64(vmcb, 0x400 + 0x178, 0xffffffff81000000ULL);
	put64(vmcb, 0x400 + 0x1D8, 0xffffc90000003f00ULL);
	put64(vmcb, 0x400 + 0x1F8, 0xdeadbeef);
	*ret_len = len;
	return b;
}

static uint8_t *vmx_blob(size_t *ret_len, bool shadow)
{
	size_t len = MMU_NESTED_HDR_SIZE + MMU_NESTED_VMCS12_SIZE * (shadow ? 2 : 1);
	uint8_t *b = calloc(1, len);
	struct kvm_nested_state *ks = (struct kvm_nested_state *)b;
	uint8_t *v = b + offsetof(struct kvm_nested_state, data);

	ks->flags = KVM_STATE_NESTED_GUEST_MODE;
	ks->format = KVM_STATE_NESTED_FORMAT_VMX;
	ks->size = (uint32_t)len;
	ks->hdr.vmx.vmxon_pa = 0x10000;
	ks->hdr.vmx.vmcs12_pa = 0x11000;
	put32(v, 0, MMU_VMCS12_REVISION);
	put64(v, 120, 0x5000 | 6 | (3 << 3)); /* ept_pointer */
	put64(v, 176, shadow ? 0x12000 : UINT64_MAX); /* vmcs_link_pointer */
	put64(v, 200, MMU_EFER_LME | MMU_EFER_LMA);
	for (int i = 0; i < 4; i++)
		put64(v, 216 + 8 * i, 0x1001 + 0x1000 * (uint64_t)i);
	put64(v, 264, MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NX);
	put64(v, 424, CFG_CR0);
	put64(v, 432, 0x3000);
	put64(v, 440, MMU_CR4_PAE);
	put64(v, 584, CFG_CR0 | MMU_CR0_NW | MMU_CR0_CD);
	put64(v, 592, 0x4000);
	put64(v, 600, MMU_CR4_PAE | MMU_CR4_VMXE);
	put32(v, 748, 1U << 31);
	put32(v, 780, 1U << 9);
	put32(v, 804, (1U << 1) | (shadow ? 1U << 14 : 0));
	if (shadow)
		put32(v + MMU_NESTED_VMCS12_SIZE, 0, MMU_VMCS12_REVISION | (1U << 31));
	*ret_len = len;
	return b;
}

static void test_parse_svm(void **state)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_nested_state s;
	struct mmu_context ctx, direct;
	struct mmu_error err;
	size_t len;
	uint8_t *b = svm_blob(&len);

	assert_int_equal(mmu_nested_state_parse(b, len, &s, &err), 0);
	assert_int_equal(s.format, MMU_NESTED_SVM);
	assert_true(s.guest_mode);
	assert_true(s.has_vmcb);
	assert_true(s.npt_enabled);
	assert_true(s.vmcb12_pa == 0x7000);
	assert_true(s.nested_cr3 == 0x123000);
	assert_true(s.l1_efer == (MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NX | MMU_EFER_SVME));
	assert_true(s.l1_cr4 == (MMU_CR4_PAE | MMU_CR4_PKE));
	assert_true(s.l1_cr3 == 0x9000);
	assert_true(s.l1_cr0 == CFG_CR0);
	assert_true(s.l1_rflags == 0x202);
	assert_true(s.l1_rip == 0xffffffff81000000ULL);
	assert_true(s.l1_rsp == 0xffffc90000003f00ULL);
	assert_true(s.l1_rax == 0xdeadbeef);

	/* The stage-2 context is exactly NPT from vmcb01's CR4/EFER. */
	assert_int_equal(mmu_context_init_nested(&ctx, &s, &f, 0, &err), 0);
	assert_int_equal(mmu_context_init_npt(&direct, s.l1_cr4, s.l1_efer, 0x123000, &f,
					      MMU_CTX_GUEST_MODE),
			 0);
	assert_memory_equal(&ctx, &direct, sizeof(ctx));

	/* NPT off, or L2 not running: single stage. */
	put64(b, MMU_NESTED_HDR_SIZE + 0x090, 0);
	assert_int_equal(mmu_nested_state_parse(b, len, &s, &err), 0);
	assert_int_equal(mmu_context_init_nested(&ctx, &s, &f, 0, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "nested paging"));
	put16(b, 0, KVM_STATE_NESTED_GIF_SET);
	put32(b, 4, MMU_NESTED_HDR_SIZE);
	assert_int_equal(mmu_nested_state_parse(b, MMU_NESTED_HDR_SIZE, &s, &err), 0);
	assert_false(s.has_vmcb);
	assert_int_equal(mmu_context_init_nested(&ctx, &s, &f, 0, &err), -ENOENT);
	free(b);
}

static void test_parse_vmx(void **state)
{
	struct mmu_cpu_features f = cfg_features();
	struct mmu_nested_state s;
	struct mmu_context ctx;
	struct mmu_error err;
	size_t len;
	uint8_t *b = vmx_blob(&len, false);

	assert_int_equal(mmu_nested_state_parse(b, len, &s, &err), 0);
	assert_int_equal(s.format, MMU_NESTED_VMX);
	assert_true(s.has_vmcs12);
	assert_false(s.has_shadow_vmcs12);
	assert_true(s.ept_enabled);
	assert_true(s.vmxon_pa == 0x10000 && s.vmcs12_pa == 0x11000);
	assert_true(s.ept_pointer == (0x5000 | 6 | (3 << 3)));
	assert_true(s.guest_cr0 == CFG_CR0 && s.guest_cr3 == 0x3000 && s.guest_cr4 == MMU_CR4_PAE);
	assert_true(s.guest_efer == (MMU_EFER_LME | MMU_EFER_LMA));
	assert_true(s.host_cr3 == 0x4000);
	assert_true(s.host_cr4 == (MMU_CR4_PAE | MMU_CR4_VMXE));
	assert_true(s.host_efer == (MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NX));
	assert_true(s.guest_pdptrs[3] == 0x4001);
	assert_true(s.entry_ctls == (1U << 9));
	assert_int_equal(mmu_context_init_nested(&ctx, &s, &f, 0, &err), 0);
	assert_int_equal(ctx.mode, MMU_MODE_EPT4);
	assert_true(ctx.root == 0x5000);

	/* Secondary controls not activated: no EPT. */
	put32(b, MMU_NESTED_HDR_SIZE + 748, 0);
	assert_int_equal(mmu_nested_state_parse(b, len, &s, &err), 0);
	assert_false(s.ept_enabled);
	assert_int_equal(mmu_context_init_nested(&ctx, &s, &f, 0, &err), -ENOENT);
	free(b);

	b = vmx_blob(&len, true);
	assert_int_equal(mmu_nested_state_parse(b, len, &s, &err), 0);
	assert_true(s.has_shadow_vmcs12);
	/* A bad EPTP is refused when the context is built. */
	put64(b, MMU_NESTED_HDR_SIZE + 120, 0x5000 | 1 | (3 << 3));
	assert_int_equal(mmu_nested_state_parse(b, len, &s, &err), 0);
	assert_int_equal(mmu_context_init_nested(&ctx, &s, &f, 0, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "memory type"));
	free(b);

	/* VMXON only, no VMCS: KVM's 128-byte blob. */
	b = calloc(1, MMU_NESTED_HDR_SIZE);
	put32(b, 4, MMU_NESTED_HDR_SIZE);
	put64(b, 8, 0x10000);
	put64(b, 16, UINT64_MAX);
	assert_int_equal(mmu_nested_state_parse(b, MMU_NESTED_HDR_SIZE, &s, &err), 0);
	assert_false(s.has_vmcs12);
	assert_false(s.guest_mode);
	free(b);
}

struct bad_blob {
	const char *what;
	int format; /* 0 VMX, 1 SVM, 2 VMX with a shadow vmcs12 */
	size_t len_delta;
	void (*mutate)(uint8_t *b);
	int error;
	const char *msg;
};

static void m_size_small(uint8_t *b) { put32(b, 4, 64); }
static void m_size_huge(uint8_t *b) { put32(b, 4, MMU_NESTED_MAX_SIZE + 1); }
static void m_format(uint8_t *b) { put16(b, 2, 7); }
static void m_svm_evmcs(uint8_t *b) { put16(b, 0, MMU_NESTED_GUEST_MODE | MMU_NESTED_EVMCS); }
static void m_svm_short(uint8_t *b) { put32(b, 4, MMU_NESTED_HDR_SIZE); }
static void m_svm_unaligned(uint8_t *b) { put64(b, 8, 0x7010); }
static void m_run_pending(uint8_t *b) { put16(b, 0, MMU_NESTED_RUN_PENDING); }
static void m_vmx_gif(uint8_t *b) { put16(b, 0, MMU_NESTED_GUEST_MODE | MMU_NESTED_GIF_SET); }
static void m_vmx_no_vmxon(uint8_t *b) { put64(b, 8, UINT64_MAX); }
static void m_vmx_smm_flags(uint8_t *b) { put16(b, 24, 0x4); }
static void m_vmx_smm_guest(uint8_t *b) { put16(b, 24, 0x3); }
static void m_vmx_hdr_flags(uint8_t *b) { put32(b, 28, 0x2); }
static void m_vmx_short(uint8_t *b) { put32(b, 4, MMU_NESTED_HDR_SIZE); }
static void m_vmx_revision(uint8_t *b) { put32(b, MMU_NESTED_HDR_SIZE, 0x12345678); }
static void m_vmx_no_vmcs_pa(uint8_t *b) { put64(b, 16, UINT64_MAX); }
static void m_vmx_same_pa(uint8_t *b) { put64(b, 16, 0x10000); }
static void m_vmx_shadow_missing(uint8_t *b)
{
	put32(b, MMU_NESTED_HDR_SIZE + 804, (1U << 1) | (1U << 14));
	put64(b, MMU_NESTED_HDR_SIZE + 176, 0x12000);
}

static const struct bad_blob bad_blobs[] = {
	{ "size below header", 1, 0, m_size_small, -EINVAL, "smaller than the 128-byte header" },
	{ "size above maximum", 1, 0, m_size_huge, -E2BIG, "exceeds" },
	{ "truncated below size", 1, 100, NULL, -EINVAL, "the header says 4224 bytes, 4124 given" },
	{ "SVM truncated by one byte", 1, 1, NULL, -EINVAL, "the header says 4224 bytes, 4223 given" },
	{ "SVM truncated to the header", 1, 4096, NULL, -EINVAL, "the header says 4224 bytes, 128 given" },
	{ "VMX truncated below size", 0, 100, NULL, -EINVAL, "the header says 4224 bytes, 4124 given" },
	{ "VMX truncated by one byte", 0, 1, NULL, -EINVAL, "the header says 4224 bytes, 4223 given" },
	{ "VMX truncated to the header", 0, 4096, NULL, -EINVAL, "the header says 4224 bytes, 128 given" },
	{ "VMX shadow vmcs12 cut short", 2, 1, NULL, -EINVAL, "the header says 8320 bytes, 8319 given" },
	{ "VMX shadow vmcs12 cut off", 2, 4096, NULL, -EINVAL, "the header says 8320 bytes, 4224 given" },
	{ "unknown format", 1, 0, m_format, -EINVAL, "unknown format 7" },
	{ "SVM with eVMCS flag", 1, 0, m_svm_evmcs, -EINVAL, "not defined for SVM" },
	{ "SVM guest mode without VMCB", 1, 0, m_svm_short, -EINVAL, "needs the 4096-byte VMCB" },
	{ "SVM unaligned vmcb12", 1, 0, m_svm_unaligned, -EINVAL, "not page aligned" },
	{ "run pending outside guest mode", 1, 0, m_run_pending, -EINVAL, "run pending" },
	{ "VMX with GIF flag", 0, 0, m_vmx_gif, -EINVAL, "not defined for VMX" },
	{ "VMX guest mode without VMXON", 0, 0, m_vmx_no_vmxon, -EINVAL, "not in VMX operation" },
	{ "VMX unknown SMM flags", 0, 0, m_vmx_smm_flags, -EINVAL, "unknown SMM flags" },
	{ "VMX SMM guest mode in guest mode", 0, 0, m_vmx_smm_guest, -EINVAL, "SMM guest mode" },
	{ "VMX unknown header flags", 0, 0, m_vmx_hdr_flags, -EINVAL, "unknown header flags" },
	{ "VMX guest mode without vmcs12", 0, 0, m_vmx_short, -EINVAL, "needs the 4096-byte vmcs12" },
	{ "VMX wrong revision", 0, 0, m_vmx_revision, -EINVAL, "revision 0x12345678" },
	{ "VMX vmcs12 without address", 0, 0, m_vmx_no_vmcs_pa, -EINVAL, "without a current VMCS" },
	{ "VMX vmcs12 at the VMXON region", 0, 0, m_vmx_same_pa, -EINVAL, "bad vmcs12 address" },
	{ "VMX shadow vmcs12 missing", 0, 0, m_vmx_shadow_missing, -EINVAL, "shadow vmcs12 is missing" },
};

static void test_parse_bad_blobs(void **state)
{
	for (size_t i = 0; i < sizeof(bad_blobs) / sizeof(bad_blobs[0]); i++) {
		const struct bad_blob *t = &bad_blobs[i];
		struct mmu_nested_state s;
		struct mmu_error err = { "" };
		size_t len;
		uint8_t *b = t->format == 1 ? svm_blob(&len) : vmx_blob(&len, t->format == 2);
		int r;

		if (t->mutate)
			t->mutate(b);
		memset(&s, 0x42, sizeof(s));
		r = mmu_nested_state_parse(b, len - t->len_delta, &s, &err);
		if (r != t->error || !strstr(err.msg, t->msg))
			fail_msg("%s: got %d \"%s\", want %d \"%s\"", t->what, r, err.msg, t->error,
				 t->msg);
		assert_int_equal(s.size, 0x42424242); /* untouched */
		free(b);
	}
}

/* Every length short of what the header says fails the same way. */
static void expect_truncation_refused(const uint8_t *b, size_t len)
{
	struct mmu_nested_state s;
	struct mmu_error err;
	char want[96];

	for (size_t cut = 0; cut < len; cut += cut < MMU_NESTED_HDR_SIZE ? 13 : 257) {
		memset(&s, 0x42, sizeof(s));
		assert_int_equal(mmu_nested_state_parse(b, cut, &s, &err), -EINVAL);
		if (cut < MMU_NESTED_HDR_SIZE)
			snprintf(want, sizeof(want), "nested state truncated: %zu bytes, the header alone is %d",
				 cut, MMU_NESTED_HDR_SIZE);
		else
			snprintf(want, sizeof(want), "nested state truncated: the header says %zu bytes, %zu given",
				 len, cut);
		if (!strstr(err.msg, want))
			fail_msg("cut at %zu of %zu: \"%s\", want \"%s\"", cut, len, err.msg, want);
		assert_int_equal(s.size, 0x42424242); /* untouched */
	}
}

static void test_parse_truncated_and_null(void **state)
{
	struct mmu_nested_state s;
	struct mmu_error err;
	size_t len;
	uint8_t *b = svm_blob(&len), *vmx, *vmx_shadow;

	expect_truncation_refused(b, len);
	vmx = vmx_blob(&len, false);
	expect_truncation_refused(vmx, len);
	free(vmx);
	vmx_shadow = vmx_blob(&len, true);
	expect_truncation_refused(vmx_shadow, len);
	free(vmx_shadow);
	assert_int_equal(mmu_nested_state_parse(NULL, len, &s, &err), -EINVAL);
	assert_int_equal(mmu_nested_state_parse(b, len, NULL, NULL), -EINVAL);
	/* Trailing bytes past the header's size (KVM's max-sized buffer) are ignored. */
	b = realloc(b, MMU_NESTED_MAX_SIZE);
	assert_int_equal(mmu_nested_state_parse(b, MMU_NESTED_MAX_SIZE, &s, &err), 0);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_mode_pair),
		cmocka_unit_test(test_stage2_alone),
		cmocka_unit_test(test_e37_npt_nx_reserved),
		cmocka_unit_test(test_e38_npt_user_bit),
		cmocka_unit_test(test_e39_npt_uses_vmcb01),
		cmocka_unit_test(test_e40_npt_pae),
		cmocka_unit_test(test_e41_ept_write_only),
		cmocka_unit_test(test_e42_ept_execute_only),
		cmocka_unit_test(test_ept_qualification_ands_levels),
		cmocka_unit_test(test_e43_ept_reserved),
		cmocka_unit_test(test_e44_ept_ad),
		cmocka_unit_test(test_nested_inspection_writes_nothing),
		cmocka_unit_test(test_e45_stage2_ignores_l2_cr0),
		cmocka_unit_test(test_e46_npt_readonly_table),
		cmocka_unit_test(test_e46_ept_readonly_table),
		cmocka_unit_test(test_stage1_fault_under_stage2),
		cmocka_unit_test(test_eptp_validation),
		cmocka_unit_test(test_npt_context),
		cmocka_unit_test(test_uapi_layout),
		cmocka_unit_test(test_parse_svm),
		cmocka_unit_test(test_parse_vmx),
		cmocka_unit_test(test_parse_bad_blobs),
		cmocka_unit_test(test_parse_truncated_and_null),
	};
	return cmocka_run_group_tests_name("mmu-nested", tests, NULL, NULL);
}
