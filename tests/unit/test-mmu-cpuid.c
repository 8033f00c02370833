/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the CPU-feature snapshot from CPUID (E49), the
 * frozen-after-run rule (E50) and every malformed CPUID-list path.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mmu/mmu.h"

#define SIG MMU_CPUID_FLAG_SIGNIFICANT_INDEX

/* "GenuineIntel": EBX "Genu", EDX "ineI", ECX "ntel". */
#define INTEL_EBX 0x756e6547
#define INTEL_EDX 0x49656e69
#define INTEL_ECX 0x6c65746e

static struct mmu_cpuid_entry leaf(uint32_t fn, uint32_t idx, uint32_t flags, uint32_t a,
				   uint32_t b, uint32_t c, uint32_t d)
{
	return (struct mmu_cpuid_entry){ fn, idx, flags, a, b, c, d };
}

/* A small Intel model: M = 46, 48-bit linear addresses, NX, 1G pages, LM. */
static size_t base_model(struct mmu_cpuid_entry *e)
{
	size_t n = 0;

	e[n++] = leaf(0, 0, 0, 0xd, INTEL_EBX, INTEL_ECX, INTEL_EDX);
	e[n++] = leaf(1, 0, 0, 0x806f8, 0, 0, 0);
	e[n++] = leaf(7, 0, SIG, 0, 0, 0, 0);
	e[n++] = leaf(0x80000000, 0, 0, 0x80000008, 0, 0, 0);
	e[n++] = leaf(0x80000001, 0, 0, 0, 0, 0, (1U << 20) | (1U << 26) | (1U << 29));
	e[n++] = leaf(0x80000008, 0, 0, 0x302e, 0, 0, 0);
	return n;
}

static void test_base_model(void **state)
{
	struct mmu_cpuid_entry e[16];
	struct mmu_cpu_features f;
	size_t n = base_model(e);

	assert_int_equal(mmu_features_from_cpuid(e, n, &f, NULL), 0);
	assert_int_equal(f.maxphyaddr, 46);
	assert_int_equal(f.vendor, MMU_VENDOR_INTEL);
	assert_true(f.nx && f.gbpages && f.lm);
	assert_false(f.la57 || f.pku || f.smep || f.smap || f.pse36 || f.svm || f.vmx);
	assert_true(f.ept_caps == 0);
}

/* E49: 0x80000000.EAX < 0x80000008 means MAXPHYADDR 36, whatever 0x80000008 says. */
static void test_e49_maxphyaddr_default(void **state)
{
	struct mmu_cpuid_entry e[16];
	struct mmu_cpu_features f;
	size_t n = base_model(e);

	e[3].eax = 0x80000004;
	assert_int_equal(mmu_features_from_cpuid(e, n, &f, NULL), 0);
	assert_int_equal(f.maxphyaddr, 36);

	/* No 0x80000000 leaf at all. */
	e[3] = e[5];
	assert_int_equal(mmu_features_from_cpuid(e, n - 1, &f, NULL), 0);
	assert_int_equal(f.maxphyaddr, 36);

	/* 0x80000000 is high enough but 0x80000008 is missing. */
	n = base_model(e);
	assert_int_equal(mmu_features_from_cpuid(e, n - 1, &f, NULL), 0);
	assert_int_equal(f.maxphyaddr, 36);

	/* 52 is the architectural maximum and is accepted. */
	e[5].eax = 0x3034;
	assert_int_equal(mmu_features_from_cpuid(e, n, &f, NULL), 0);
	assert_int_equal(f.maxphyaddr, 52);
}

static void test_vendors(void **state)
{
	static const struct {
		const char *id;
		enum mmu_vendor vendor;
	} rows[] = { { "AuthenticAMD", MMU_VENDOR_AMD },
		     { "HygonGenuine", MMU_VENDOR_HYGON },
		     { "GenuineIntel", MMU_VENDOR_INTEL },
		     { "KVMKVMKVM\0\0\0", MMU_VENDOR_UNKNOWN } };
	struct mmu_cpuid_entry e[16];
	struct mmu_cpu_features f;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t n = base_model(e);

		memcpy(&e[0].ebx, rows[i].id, 4);
		memcpy(&e[0].edx, rows[i].id + 4, 4);
		memcpy(&e[0].ecx, rows[i].id + 8, 4);
		assert_int_equal(mmu_features_from_cpuid(e, n, &f, NULL), 0);
		assert_int_equal(f.vendor, rows[i].vendor);
	}
	/* No leaf 0: unknown vendor, still a valid snapshot. */
	assert_int_equal(mmu_features_from_cpuid(e + 1, 5, &f, NULL), 0);
	assert_int_equal(f.vendor, MMU_VENDOR_UNKNOWN);
}

/* Each feature from its own CPUID bit (SDM Vol. 2A CPUID; APM Vol. 3 CPUID Fn8000_0001). */
static void test_feature_bits(void **state)
{
	static const struct {
		uint32_t fn, idx;
		char reg; /* a b c d */
		unsigned int bit;
		size_t field;
	} rows[] = {
#define R(fn, idx, reg, bit, f) { fn, idx, reg, bit, offsetof(struct mmu_cpu_features, f) }
		R(1, 0, 'd', 3, pse),	     R(1, 0, 'd', 6, pae),
		R(1, 0, 'd', 17, pse36),     R(1, 0, 'c', 5, vmx),
		R(1, 0, 'c', 6, smx),	     R(1, 0, 'c', 17, pcid),
		R(1, 0, 'c', 26, xsave),     R(7, 0, 'b', 0, fsgsbase),
		R(7, 0, 'b', 7, smep),	     R(7, 0, 'b', 20, smap),
		R(7, 0, 'c', 2, umip),	     R(7, 0, 'c', 3, pku),
		R(7, 0, 'c', 7, cet),	     R(7, 0, 'd', 20, cet),
		R(7, 0, 'c', 16, la57),	     R(7, 0, 'c', 31, pks),
		R(7, 1, 'a', 26, lam),	     R(0x80000001, 0, 'c', 2, svm),
		R(0x80000001, 0, 'd', 20, nx), R(0x80000001, 0, 'd', 25, ffxsr),
		R(0x80000001, 0, 'd', 26, gbpages), R(0x80000001, 0, 'd', 29, lm),
#undef R
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct mmu_cpuid_entry e[2] = { leaf(rows[i].fn, rows[i].idx, SIG, 0, 0, 0, 0),
						leaf(0x80000000, 0, 0, 0x80000001, 0, 0, 0) };
		struct mmu_cpu_features f;
		uint32_t *reg = rows[i].reg == 'a' ? &e[0].eax
				: rows[i].reg == 'b' ? &e[0].ebx
				: rows[i].reg == 'c' ? &e[0].ecx
						     : &e[0].edx;
		bool *flag = (bool *)((char *)&f + rows[i].field);

		*reg = 1U << rows[i].bit;
		assert_int_equal(mmu_features_from_cpuid(e, 2, &f, NULL), 0);
		assert_true(*flag);
		/* ...and nothing else. */
		for (size_t j = 0; j < sizeof(rows) / sizeof(rows[0]); j++)
			if (rows[j].field != rows[i].field)
				assert_false(*(bool *)((char *)&f + rows[j].field));
		assert_int_equal(f.maxphyaddr, 36);
		assert_int_equal(f.vendor, MMU_VENDOR_UNKNOWN);
	}
}

/* KVM matches the index only for leaves flagged SIGNIFICANT_INDEX. */
static void test_index_significance(void **state)
{
	struct mmu_cpuid_entry e[3] = {
		leaf(7, 0, SIG, 0, 0, 0, 0),
		leaf(7, 1, SIG, 1U << 26, 0, 0, 0),
	};
	struct mmu_cpu_features f;

	assert_int_equal(mmu_features_from_cpuid(e, 2, &f, NULL), 0);
	assert_true(f.lam);
	/* Without the flag, the single leaf-7 entry answers every sub-leaf. */
	e[0] = leaf(7, 0, 0, 1U << 26, 1U << 7, 0, 0);
	assert_int_equal(mmu_features_from_cpuid(e, 1, &f, NULL), 0);
	assert_true(f.lam && f.smep);
	/* With it, sub-leaf 1 is absent. */
	e[0].flags = SIG;
	assert_int_equal(mmu_features_from_cpuid(e, 1, &f, NULL), 0);
	assert_false(f.lam);
	assert_true(f.smep);
}

static void test_bad_lists(void **state)
{
	struct mmu_cpuid_entry e[MMU_CPUID_MAX_ENTRIES + 1] = { 0 };
	struct mmu_cpu_features f;
	struct mmu_error err;
	size_t n;

	memset(&f, 0x11, sizeof(f));
	assert_int_equal(mmu_features_from_cpuid(e, 0, &f, &err), -EINVAL);
	assert_string_equal(err.msg, "CPUID list is empty");
	assert_int_equal(mmu_features_from_cpuid(NULL, 3, &f, &err), -EINVAL);

	for (n = 0; n < MMU_CPUID_MAX_ENTRIES + 1; n++)
		e[n] = leaf(0x40000000 + (uint32_t)n, 0, 0, 0, 0, 0, 0);
	assert_int_equal(mmu_features_from_cpuid(e, MMU_CPUID_MAX_ENTRIES, &f, &err), 0);
	memset(&f, 0x11, sizeof(f));
	assert_int_equal(mmu_features_from_cpuid(e, MMU_CPUID_MAX_ENTRIES + 1, &f, &err), -E2BIG);
	assert_string_equal(err.msg, "CPUID list has 257 entries; KVM accepts at most 256");

	n = base_model(e);
	e[n] = e[2];
	assert_int_equal(mmu_features_from_cpuid(e, n + 1, &f, &err), -EINVAL);
	assert_string_equal(err.msg, "CPUID entries 2 and 6 both describe leaf 0x7.0");

	n = base_model(e);
	e[1].flags = 0x80;
	assert_int_equal(mmu_features_from_cpuid(e, n, &f, &err), -EINVAL);
	assert_string_equal(err.msg, "CPUID entry 1 (leaf 0x1.0): unknown flags 0x80");

	n = base_model(e);
	e[5].eax = 0x3000;
	assert_int_equal(mmu_features_from_cpuid(e, n, &f, &err), -EINVAL);
	assert_string_equal(err.msg, "CPUID 0x80000008 EAX[7:0] = 0: MAXPHYADDR must be 32..52");
	e[5].eax = 0x303c;
	assert_int_equal(mmu_features_from_cpuid(e, n, &f, &err), -EINVAL);
	e[5].eax = 0x282e;
	assert_int_equal(mmu_features_from_cpuid(e, n, &f, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "CPUID 0x80000008 EAX[15:8] = 40: linear-address width must be 48 or 57");
	assert_int_equal(mmu_features_from_cpuid(e, n, NULL, &err), -EINVAL);
	assert_int_equal(f.maxphyaddr, 0x11); /* untouched through every failure */
}

/* E50: KVM_SET_CPUID2 after the first KVM_RUN: identical data 0, any change -EINVAL. */
static void test_e50_frozen_after_run(void **state)
{
	struct mmu_cpuid_entry cur[16], next[16];
	struct mmu_error err;
	size_t n = base_model(cur);

	memcpy(next, cur, sizeof(cur));
	assert_int_equal(mmu_cpuid_check_frozen(cur, n, next, n, true, &err), 0);

	/* MAXPHYADDR changed. */
	next[5].eax = 0x3028;
	assert_int_equal(mmu_cpuid_check_frozen(cur, n, next, n, true, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "CPUID cannot change after the vCPU has run: entry 5 (leaf 0x80000008.0) differs in EAX");
	/* Before the first run anything goes. */
	assert_int_equal(mmu_cpuid_check_frozen(cur, n, next, n, false, &err), 0);

	/* Same entries, another order. */
	memcpy(next, cur, sizeof(cur));
	next[0] = cur[1];
	next[1] = cur[0];
	assert_int_equal(mmu_cpuid_check_frozen(cur, n, next, n, true, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "differs in function"));

	memcpy(next, cur, sizeof(cur));
	next[2].flags = 0;
	assert_int_equal(mmu_cpuid_check_frozen(cur, n, next, n, true, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "differs in flags"));

	assert_int_equal(mmu_cpuid_check_frozen(cur, n, cur, n - 1, true, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "CPUID cannot change after the vCPU has run: 5 entries, was 6");
	assert_int_equal(mmu_cpuid_check_frozen(NULL, 2, cur, n, true, &err), -EINVAL);
	assert_int_equal(mmu_cpuid_check_frozen(NULL, 0, NULL, 0, true, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base_model),
		cmocka_unit_test(test_e49_maxphyaddr_default),
		cmocka_unit_test(test_vendors),
		cmocka_unit_test(test_feature_bits),
		cmocka_unit_test(test_index_significance),
		cmocka_unit_test(test_bad_lists),
		cmocka_unit_test(test_e50_frozen_after_run),
	};
	return cmocka_run_group_tests_name("mmu-cpuid", tests, NULL, NULL);
}
