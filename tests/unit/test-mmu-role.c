/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the MMU role (MMU.md §1): every paging mode, every role
 * bit, E1–E3, the printable forms, and the RESET/INIT outcome (E47, E48).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "mmu/mmu.h"
#include "tests/unit/mmu-config.h"
#include "tests/unit/mmu-fixture.h"

static union mmu_role role_of(uint64_t cr0, uint64_t cr4, uint64_t efer)
{
	struct mmu_role_regs regs = { .cr0 = cr0, .cr4 = cr4, .efer = efer };

	return mmu_role_compute(&regs, 0);
}

static void assert_no_paging_bits(union mmu_role r)
{
	assert_int_equal(r.level, 0);
	assert_int_equal(r.efer_nx, 0);
	assert_int_equal(r.cr0_wp, 0);
	assert_int_equal(r.smep_andnot_wp, 0);
	assert_int_equal(r.smap_andnot_wp, 0);
	assert_int_equal(r.has_4_byte_gpte, 0);
	assert_int_equal(r.cr4_smep, 0);
	assert_int_equal(r.cr4_smap, 0);
	assert_int_equal(r.cr4_pse, 0);
	assert_int_equal(r.cr4_pke, 0);
	assert_int_equal(r.cr4_la57, 0);
	assert_int_equal(r.efer_lma, 0);
}

/* E1: CR0.PG=0 gives a direct role with every paging bit clear, identity translation. */
static void test_e1_nonpaging_role(void **state)
{
	union mmu_role r = role_of(0x60000010, MMU_CR4_PAE | MMU_CR4_LA57 | MMU_CR4_PKE |
						       MMU_CR4_SMEP,
				   MMU_EFER_LME | MMU_EFER_NX);
	struct mmu_role_regs regs = { 0x60000010, MMU_CR4_PAE | MMU_CR4_LA57 | MMU_CR4_PKE,
				      MMU_EFER_LME | MMU_EFER_NX };
	struct mmu_cpu_features f = cfg_features();
	struct fixture *fx = fx_new();
	struct mmu_memory mem = fx_mem_map(fx);
	struct mmu_walk_request req = { .addr = 0xfffff000, .access = MMU_ACCESS_WRITE };
	struct mmu_walk_result res;
	struct mmu_context ctx;

	assert_int_equal(r.direct, 1);
	assert_int_equal(r.valid, 1);
	assert_int_equal(r.access, 7);
	assert_no_paging_bits(r);
	assert_int_equal(mmu_role_mode(r), MMU_MODE_NONE);

	/* Tables are zeroed in this state: nothing consumes them. */
	assert_int_equal(mmu_context_init(&ctx, &regs, &f, 0), 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(ctx.perm[i], 0);
	assert_int_equal(ctx.pkru_mask, 0);
	assert_true(ctx.rsvd[0][0] == 0 && ctx.rsvd[1][3] == 0);

	assert_int_equal(mmu_walk(&ctx, NULL, &mem, &req, &res), 0);
	assert_int_equal(res.fault.type, MMU_FAULT_NONE);
	assert_true(res.gpa == 0xfffff000 && res.pa == 0xfffff000);
	assert_int_equal(res.nr_entries, 0);
	fx_free(fx);
}

/* E2: two PG=0 states differing only in CR4/EFER have identical roles. */
static void test_e2_nonpaging_roles_equal(void **state)
{
	union mmu_role a = role_of(MMU_CR0_PE, 0, 0);
	union mmu_role b = role_of(MMU_CR0_PE | MMU_CR0_WP,
				   MMU_CR4_PAE | MMU_CR4_PSE | MMU_CR4_SMAP | MMU_CR4_SMEP,
				   MMU_EFER_NX | MMU_EFER_LME);

	assert_int_equal(a.word, b.word);
}

/* E3: LA57 (and PKE) without long mode: PAE, and the role bits stay clear. */
static void test_e3_la57_without_lma(void **state)
{
	union mmu_role r = role_of(CFG_CR0, MMU_CR4_PAE | MMU_CR4_LA57 | MMU_CR4_PKE, MMU_EFER_NX);

	assert_int_equal(r.level, 3);
	assert_int_equal(r.cr4_la57, 0);
	assert_int_equal(r.cr4_pke, 0);
	assert_int_equal(r.efer_lma, 0);
	assert_int_equal(mmu_role_mode(r), MMU_MODE_PAE);

	r = role_of(CFG_CR0, MMU_CR4_PAE | MMU_CR4_LA57 | MMU_CR4_PKE,
		    MMU_EFER_NX | MMU_EFER_LME | MMU_EFER_LMA);
	assert_int_equal(r.level, 5);
	assert_int_equal(r.cr4_la57, 1);
	assert_int_equal(r.cr4_pke, 1);
}

static void test_modes(void **state)
{
	static const struct {
		enum mmu_paging_mode mode;
		unsigned int level;
		bool four_byte;
		const char *name;
	} rows[] = {
		{ MMU_MODE_NONE, 0, false, "none" },	  { MMU_MODE_32BIT, 2, true, "32-bit" },
		{ MMU_MODE_PAE, 3, false, "pae" },	  { MMU_MODE_4LEVEL, 4, false, "4-level" },
		{ MMU_MODE_5LEVEL, 5, false, "5-level" },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct mmu_role_regs regs = cfg_regs(rows[i].mode);
		union mmu_role r = mmu_role_compute(&regs, 0);

		assert_int_equal(r.level, rows[i].level);
		assert_int_equal(r.has_4_byte_gpte, rows[i].four_byte);
		assert_int_equal(r.direct, rows[i].level == 0);
		assert_int_equal(mmu_role_mode(r), rows[i].mode);
		assert_string_equal(mmu_paging_mode_name(rows[i].mode), rows[i].name);
	}
	assert_string_equal(mmu_paging_mode_name(MMU_MODE_EPT4), "ept-4-level");
	assert_string_equal(mmu_paging_mode_name(MMU_MODE_EPT5), "ept-5-level");
	assert_string_equal(mmu_paging_mode_name((enum mmu_paging_mode)99), "invalid");
}

static void test_role_bits(void **state)
{
	uint64_t lm = MMU_EFER_LME | MMU_EFER_LMA;
	union mmu_role r;

	r = role_of(CFG_CR0, MMU_CR4_PAE | MMU_CR4_SMEP | MMU_CR4_SMAP | MMU_CR4_PSE,
		    lm | MMU_EFER_NX);
	assert_int_equal(r.efer_nx, 1);
	assert_int_equal(r.cr0_wp, 1);
	assert_int_equal(r.cr4_smep, 1);
	assert_int_equal(r.cr4_smap, 1);
	assert_int_equal(r.cr4_pse, 1); /* raw, even though only 32-bit paging reads it */
	assert_int_equal(r.smep_andnot_wp, 0);
	assert_int_equal(r.smap_andnot_wp, 0);
	assert_int_equal(r.efer_lma, 1);

	r = role_of(CFG_CR0 & ~MMU_CR0_WP, MMU_CR4_PAE | MMU_CR4_SMEP | MMU_CR4_SMAP, lm);
	assert_int_equal(r.cr0_wp, 0);
	assert_int_equal(r.efer_nx, 0);
	assert_int_equal(r.smep_andnot_wp, 1);
	assert_int_equal(r.smap_andnot_wp, 1);

	/* SMM and guest mode come from flags, never from registers. */
	r = mmu_role_compute(&(struct mmu_role_regs){ .cr0 = CFG_CR0 },
			     MMU_CTX_SMM | MMU_CTX_GUEST_MODE);
	assert_int_equal(r.smm, 1);
	assert_int_equal(r.guest_mode, 1);
	assert_int_equal(r.valid, 1);
	assert_int_equal(r.access, 7);
	r = mmu_role_compute(&(struct mmu_role_regs){ .cr0 = 0 }, MMU_CTX_SMM);
	assert_int_equal(r.smm, 1);
	assert_int_equal(r.direct, 1);
}

/* Bits outside §1.1's list never change the role, in any mode. */
static void test_role_ignores_other_bits(void **state)
{
	const uint64_t cr0_ignored = ~(MMU_CR0_PG | MMU_CR0_WP);
	const uint64_t cr4_ignored = ~(MMU_CR4_PSE | MMU_CR4_PAE | MMU_CR4_LA57 | MMU_CR4_SMEP |
				       MMU_CR4_SMAP | MMU_CR4_PKE);
	/* LME matters for validation only. */
	const uint64_t efer_ignored = ~(MMU_EFER_NX | MMU_EFER_LMA);

	srand(1234);
	for (int i = 0; i < 20000; i++) {
		uint64_t r1 = ((uint64_t)rand() << 33) ^ ((uint64_t)rand() << 11) ^ (uint64_t)rand();
		uint64_t r2 = ((uint64_t)rand() << 31) ^ ((uint64_t)rand() << 7) ^ (uint64_t)rand();
		uint64_t r3 = ((uint64_t)rand() << 35) ^ ((uint64_t)rand() << 3) ^ (uint64_t)rand();
		struct mmu_role_regs a = { .cr0 = r1, .cr4 = r2, .efer = r3 };
		struct mmu_role_regs b = {
			.cr0 = a.cr0 ^ (r2 & cr0_ignored),
			.cr4 = a.cr4 ^ (r3 & cr4_ignored),
			.efer = a.efer ^ (r1 & efer_ignored),
		};

		assert_int_equal(mmu_role_compute(&a, 0).word, mmu_role_compute(&b, 0).word);
	}
}

static void test_role_format(void **state)
{
	struct mmu_role_regs regs = cfg_regs(MMU_MODE_4LEVEL);
	union mmu_role r;
	char buf[1024], tiny[8];
	size_t len;

	regs.cr4 |= MMU_CR4_SMEP;
	r = mmu_role_compute(&regs, MMU_CTX_GUEST_MODE);
	assert_int_equal(mmu_role_format(r, MMU_FORMAT_TEXT, buf, sizeof(buf), &len), 0);
	assert_string_equal(buf,
			    "mode=4-level level=4 direct=0 has_4_byte_gpte=0 efer_nx=1 cr0_wp=1 "
			    "smep_andnot_wp=0 smap_andnot_wp=0 cr4_smep=1 cr4_smap=0 cr4_pse=0 "
			    "cr4_pke=0 cr4_la57=0 efer_lma=1 smm=0 guest_mode=1 ept=0 "
			    "ad_disabled=0 execonly=0 access=7 valid=1");
	assert_int_equal(len, strlen(buf));
	assert_int_equal(mmu_role_format(r, MMU_FORMAT_JSON, buf, sizeof(buf), &len), 0);
	assert_string_equal(buf,
			    "{\"mode\":\"4-level\",\"level\":4,\"direct\":false,"
			    "\"has_4_byte_gpte\":false,\"efer_nx\":true,\"cr0_wp\":true,"
			    "\"smep_andnot_wp\":false,\"smap_andnot_wp\":false,\"cr4_smep\":true,"
			    "\"cr4_smap\":false,\"cr4_pse\":false,\"cr4_pke\":false,"
			    "\"cr4_la57\":false,\"efer_lma\":true,\"smm\":false,"
			    "\"guest_mode\":true,\"ept\":false,\"ad_disabled\":false,"
			    "\"execonly\":false,\"access\":7,\"valid\":true}");

	/* Real JSON: every field present, booleans and numbers typed. */
	for (enum mmu_paging_mode m = MMU_MODE_NONE; m <= MMU_MODE_5LEVEL; m++) {
		struct mmu_role_regs mr = cfg_regs(m);
		struct json_object *o, *v;

		assert_int_equal(mmu_role_format(mmu_role_compute(&mr, 0), MMU_FORMAT_JSON, buf,
						 sizeof(buf), NULL),
				 0);
		o = json_tokener_parse(buf);
		assert_non_null(o);
		assert_int_equal(json_object_object_length(o), 21);
		assert_true(json_object_object_get_ex(o, "mode", &v));
		assert_string_equal(json_object_get_string(v), mmu_paging_mode_name(m));
		assert_true(json_object_object_get_ex(o, "direct", &v));
		assert_true(json_object_is_type(v, json_type_boolean));
		assert_true(json_object_object_get_ex(o, "level", &v));
		assert_true(json_object_is_type(v, json_type_int));
		json_object_put(o);
	}

	memset(tiny, 'z', sizeof(tiny));
	len = 99;
	assert_int_equal(mmu_role_format(r, MMU_FORMAT_JSON, tiny, sizeof(tiny), &len), -ENOSPC);
	assert_int_equal(tiny[0], 'z');
	assert_int_equal(len, 99);
	assert_int_equal(mmu_role_format(r, (enum mmu_format)7, buf, sizeof(buf), NULL), -EINVAL);
	assert_int_equal(mmu_role_format(r, MMU_FORMAT_TEXT, NULL, 10, NULL), -EINVAL);
}

/* ---------------------------------------------------------------- RESET / INIT */

/* E47: INIT keeps CD/NW and sets ET; everything else in CR0 clears. */
static void test_e47_init_cr0(void **state)
{
	struct mmu_role_regs old = { .cr0 = 0xE0000011, .cr4 = MMU_CR4_PAE,
				     .efer = MMU_EFER_NX };
	struct mmu_reset_outcome o;

	assert_int_equal(mmu_reset_outcome(MMU_RESET_INIT, &old, 0, &o), 0);
	assert_true(o.regs.cr0 == 0x60000010);
	assert_true(o.regs.cr4 == 0 && o.regs.efer == 0);

	old.cr0 = 0x80000011;
	assert_int_equal(mmu_reset_outcome(MMU_RESET_INIT, &old, 0, &o), 0);
	assert_true(o.regs.cr0 == 0x00000010);

	/* RESET always gives 0x60000010. */
	assert_int_equal(mmu_reset_outcome(MMU_RESET_POWER_ON, &old, MMU_CTX_SMM, &o), 0);
	assert_true(o.regs.cr0 == 0x60000010);
	assert_int_equal(o.role.smm, 0);
}

/* E48: INIT from 4-level long mode: EFER 0, nonpaging role, roots dropped, TLB flushed. */
static void test_e48_init_from_long_mode(void **state)
{
	struct mmu_role_regs old = cfg_regs(MMU_MODE_4LEVEL);
	struct mmu_reset_outcome o;

	assert_int_equal(mmu_reset_outcome(MMU_RESET_INIT, &old, 0, &o), 0);
	assert_true(o.regs.efer == 0);
	assert_int_equal(o.role.direct, 1);
	assert_no_paging_bits(o.role);
	assert_int_equal(mmu_role_mode(o.role), MMU_MODE_NONE);
	assert_true(o.role_changed);
	assert_true(o.drop_roots);
	assert_true(o.flush_tlb);
	assert_true(o.kvm_resets_context);

	/* From real mode the role does not change, but INIT still flushes. */
	old = (struct mmu_role_regs){ .cr0 = 0x60000010 };
	assert_int_equal(mmu_reset_outcome(MMU_RESET_INIT, &old, 0, &o), 0);
	assert_false(o.role_changed);
	assert_false(o.kvm_resets_context);
	assert_true(o.flush_tlb);
	assert_true(o.drop_roots);
}

static void test_init_blocked_and_bad_input(void **state)
{
	struct mmu_role_regs old = cfg_regs(MMU_MODE_4LEVEL);
	struct mmu_reset_outcome o;

	memset(&o, 0x77, sizeof(o));
	assert_int_equal(mmu_reset_outcome(MMU_RESET_INIT, &old, MMU_CTX_SMM, &o), -EBUSY);
	assert_int_equal(mmu_reset_outcome(MMU_RESET_INIT, &old, MMU_CTX_GUEST_MODE, &o), -EBUSY);
	assert_int_equal(mmu_reset_outcome((enum mmu_reset_kind)5, &old, 0, &o), -EINVAL);
	assert_int_equal(mmu_reset_outcome(MMU_RESET_INIT, &old, MMU_CTX_KVM_COMPAT, &o),
			 -EINVAL);
	assert_int_equal(mmu_reset_outcome(MMU_RESET_INIT, NULL, 0, &o), -EINVAL);
	assert_true(o.regs.cr0 == 0x7777777777777777ULL); /* untouched */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_e1_nonpaging_role),
		cmocka_unit_test(test_e2_nonpaging_roles_equal),
		cmocka_unit_test(test_e3_la57_without_lma),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_role_bits),
		cmocka_unit_test(test_role_ignores_other_bits),
		cmocka_unit_test(test_role_format),
		cmocka_unit_test(test_e47_init_cr0),
		cmocka_unit_test(test_e48_init_from_long_mode),
		cmocka_unit_test(test_init_blocked_and_bad_input),
	};
	return cmocka_run_group_tests_name("mmu-role", tests, NULL, NULL);
}
