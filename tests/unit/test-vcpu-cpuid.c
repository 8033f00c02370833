/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the CPUID policy of vcpu/cpuid: the feature table against
 * the SDM, name handling, refusals with their messages, feature
 * dependencies, the XSAVE leaf and MAXPHYADDR, on fixed CPUID lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vcpu/cpuid.h"
#include "vcpu/x86.h"

#define SIG KVM_CPUID_FLAG_SIGNIFCANT_INDEX

/* KVM_GET_SUPPORTED_CPUID of the PVM-backed development host (abridged):
 * no XSAVE, AVX or SSE4 in leaf 1, MAXPHYADDR 46. */
static const struct kvm_cpuid_entry2 pvm_host[] = {
	{ .function = 0x0, .eax = 0x20, .ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69 },
	{ .function = 0x1, .eax = 0x000a0678, .ebx = 0x00020800, .ecx = 0x81202000, .edx = 0x0f8bfbff },
	{ .function = 0x7, .index = 0, .flags = SIG, .eax = 0x2, .ebx = 0x01802042, .ecx = 0x1a010104, .edx = 0xbc010400 },
	{ .function = 0xb, .index = 0, .flags = SIG },
	{ .function = 0xd, .index = 0, .flags = SIG, .eax = 0x2e7, .ebx = 0xa88, .ecx = 0xa88 },
	{ .function = 0xd, .index = 1, .flags = SIG },
	{ .function = 0xd, .index = 2, .flags = SIG, .eax = 0x100, .ebx = 0x240 },
	{ .function = 0xd, .index = 5, .flags = SIG, .eax = 0x40, .ebx = 0x440 },
	{ .function = 0xd, .index = 6, .flags = SIG, .eax = 0x200, .ebx = 0x480 },
	{ .function = 0xd, .index = 7, .flags = SIG, .eax = 0x400, .ebx = 0x680 },
	{ .function = 0xd, .index = 9, .flags = SIG, .eax = 0x8, .ebx = 0xa80 },
	{ .function = 0x80000000, .eax = 0x80000008 },
	{ .function = 0x80000001, .ecx = 0x00000101, .edx = 0x20100800 },
	{ .function = 0x80000008, .eax = 0x0000392e, .ebx = 0x0100d200 },
};

/* A host with everything the dependency rules touch. */
#define RICH_1_ECX (0x81202000U | (1U << 12) | (1U << 20) | (1U << 26) | (1U << 28) | (1U << 29))
#define RICH_7_EBX (0x01802042U | (1U << 5) | (1U << 16) | (1U << 30))
#define RICH_7_ECX (0x1a010104U | (1U << 3))

static struct kvm_cpuid2 *make_cpuid(const struct kvm_cpuid_entry2 *e, size_t n)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(*e));

	assert_non_null(c);
	c->nent = (uint32_t)n;
	memcpy(c->entries, e, n * sizeof(*e));
	return c;
}

static struct kvm_cpuid2 *pvm(void)
{
	return make_cpuid(pvm_host, sizeof(pvm_host) / sizeof(pvm_host[0]));
}

static struct kvm_cpuid2 *rich(void)
{
	struct kvm_cpuid2 *c = pvm();

	vcpu_cpuid_entry(c, 1, 0)->ecx = RICH_1_ECX;
	vcpu_cpuid_entry(c, 7, 0)->ebx = RICH_7_EBX;
	vcpu_cpuid_entry(c, 7, 0)->ecx = RICH_7_ECX;
	vcpu_cpuid_entry(c, 0xd, 1)->eax = 0xf;
	vcpu_cpuid_entry(c, 0x80000001, 0)->edx |= 1U << 26;
	return c;
}

static bool has(const struct kvm_cpuid2 *c, const char *name)
{
	const struct vcpu_cpu_feature *f = vcpu_cpu_feature_find(name);

	assert_non_null(f);
	return vcpu_cpuid_has(c, f);
}

/* Bit positions of the features the brief and MMU.md rely on, from the
 * SDM Vol. 2A CPUID tables and AMD APM Vol. 3 Appendix E. */
static void test_feature_bits_match_the_manuals(void **state)
{
	static const struct {
		const char *name;
		uint32_t leaf, subleaf;
		enum vcpu_cpuid_reg reg;
		unsigned int bit;
	} want[] = {
		{ "x2apic", 1, 0, VCPU_CPUID_ECX, 21 },	 { "xsave", 1, 0, VCPU_CPUID_ECX, 26 },
		{ "avx", 1, 0, VCPU_CPUID_ECX, 28 },	 { "cx16", 1, 0, VCPU_CPUID_ECX, 13 },
		{ "pcid", 1, 0, VCPU_CPUID_ECX, 17 },	 { "sse4.2", 1, 0, VCPU_CPUID_ECX, 20 },
		{ "popcnt", 1, 0, VCPU_CPUID_ECX, 23 },	 { "aes", 1, 0, VCPU_CPUID_ECX, 25 },
		{ "movbe", 1, 0, VCPU_CPUID_ECX, 22 },	 { "rdrand", 1, 0, VCPU_CPUID_ECX, 30 },
		{ "tsc-deadline", 1, 0, VCPU_CPUID_ECX, 24 },
		{ "hypervisor", 1, 0, VCPU_CPUID_ECX, 31 }, { "vmx", 1, 0, VCPU_CPUID_ECX, 5 },
		{ "avx2", 7, 0, VCPU_CPUID_EBX, 5 },	 { "avx512f", 7, 0, VCPU_CPUID_EBX, 16 },
		{ "smep", 7, 0, VCPU_CPUID_EBX, 7 },	 { "smap", 7, 0, VCPU_CPUID_EBX, 20 },
		{ "fsgsbase", 7, 0, VCPU_CPUID_EBX, 0 }, { "rdseed", 7, 0, VCPU_CPUID_EBX, 18 },
		{ "invpcid", 7, 0, VCPU_CPUID_EBX, 10 }, { "pku", 7, 0, VCPU_CPUID_ECX, 3 },
		{ "la57", 7, 0, VCPU_CPUID_ECX, 16 },	 { "umip", 7, 0, VCPU_CPUID_ECX, 2 },
		{ "nx", 0x80000001, 0, VCPU_CPUID_EDX, 20 },
		{ "pdpe1gb", 0x80000001, 0, VCPU_CPUID_EDX, 26 },
		{ "lm", 0x80000001, 0, VCPU_CPUID_EDX, 29 },
		{ "svm", 0x80000001, 0, VCPU_CPUID_ECX, 2 },
		{ "xsaves", 0xd, 1, VCPU_CPUID_EAX, 3 },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct vcpu_cpu_feature *f = vcpu_cpu_feature_find(want[i].name);
		if (!f)
			fail_msg("feature %s missing", want[i].name);
		if (f->leaf != want[i].leaf || f->subleaf != want[i].subleaf ||
		    f->reg != want[i].reg || f->bit != want[i].bit)
			fail_msg("feature %s has the wrong CPUID bit", want[i].name);
	}
}

static void test_feature_table_is_consistent(void **state)
{
	size_t n;
	const struct vcpu_cpu_feature *t = vcpu_cpu_features(&n);

	assert_true(n >= 30);
	for (size_t i = 0; i < n; i++) {
		assert_true(t[i].bit < 32);
		assert_true(strlen(t[i].name) < VCPU_CPU_FEATURE_NAME_MAX);
		for (size_t j = i + 1; j < n; j++) {
			if (strcmp(t[i].name, t[j].name) == 0)
				fail_msg("feature %s listed twice", t[i].name);
			if (t[i].leaf == t[j].leaf && t[i].subleaf == t[j].subleaf &&
			    t[i].reg == t[j].reg && t[i].bit == t[j].bit)
				fail_msg("features %s and %s share a bit", t[i].name, t[j].name);
		}
		/* Every prerequisite exists, and following them ends (no cycle). */
		const struct vcpu_cpu_feature *f = &t[i];
		for (size_t depth = 0; f->needs; depth++) {
			assert_true(depth < n);
			f = vcpu_cpu_feature_find(f->needs);
			assert_non_null(f);
		}
	}
}

static void test_unknown_name_lists_the_known_ones(void **state)
{
	struct vcpu_cpu_policy p = { 0 };
	struct error e;

	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "avx9000", false, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "CPU feature 'avx9000' is unknown; known features: sse3, "));
	assert_non_null(strstr(e.msg, "x2apic"));
	assert_non_null(strstr(e.msg, "la57"));
	assert_int_equal(p.nr_features, 0);
}

static void test_name_given_twice(void **state)
{
	struct vcpu_cpu_policy p = { 0 };
	struct error e;

	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "x2apic", false, &e), 0);
	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "x2apic", true, &e), -EINVAL);
	assert_string_equal(e.msg, "CPU feature 'x2apic' is given twice");
	assert_int_equal(p.nr_features, 1);
}

static void test_policy_struct_checked_as_the_daemon_fills_it(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *c = pvm();
	struct vcpu_cpu_policy p = { .nr_features = 2 };
	struct error e;

	/* Filled by hand, bypassing set_feature: check() must still catch it. */
	snprintf(p.features[0].name, sizeof(p.features[0].name), "x2apic");
	snprintf(p.features[1].name, sizeof(p.features[1].name), "x2apic");
	assert_int_equal(vcpu_cpu_policy_check(&p, c, 0, &e), -EINVAL);
	assert_string_equal(e.msg, "CPU feature 'x2apic' is given twice");
	snprintf(p.features[1].name, sizeof(p.features[1].name), "nope");
	assert_int_equal(vcpu_cpu_policy_check(&p, c, 0, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "CPU feature 'nope' is unknown"));
	memset(p.features[1].name, 'x', sizeof(p.features[1].name));
	assert_int_equal(vcpu_cpu_policy_check(&p, c, 0, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "is unknown"));
}

static void test_too_many_settings(void **state)
{
	struct vcpu_cpu_policy p = { .nr_features = VCPU_CPU_POLICY_MAX_FEATURES };
	struct error e;

	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "nx", true, &e), -E2BIG);
}

static void test_enabling_unsupported_feature_is_refused(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *c = pvm();
	_cleanup_free_ struct kvm_cpuid2 *out = NULL;
	struct vcpu_cpu_policy p = { 0 };
	struct error e;

	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "avx512f", true, &e), 0);
	assert_int_equal(vcpu_cpu_policy_check(&p, c, 0, &e), -EINVAL);
	assert_string_equal(e.msg,
			    "CPU feature 'avx512f' cannot be enabled: KVM on this host does not support it "
			    "(CPUID.(EAX=7H,ECX=0):EBX[16] is 0 in KVM_GET_SUPPORTED_CPUID)");
	assert_int_equal(vcpu_cpuid_build(c, &p, 0, &out, &e), -EINVAL);
	assert_null(out);
}

static void test_enabling_supported_feature_keeps_it(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *c = pvm();
	_cleanup_free_ struct kvm_cpuid2 *out = NULL;
	struct vcpu_cpu_policy p = { 0 };
	struct error e;

	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "x2apic", true, &e), 0);
	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "nx", true, &e), 0);
	assert_int_equal(vcpu_cpuid_build(c, &p, 0, &out, &e), 0);
	assert_memory_equal(out, c, sizeof(*c) + c->nent * sizeof(c->entries[0]));
}

static void test_hiding_features_clears_their_bits_only(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *c = pvm();
	_cleanup_free_ struct kvm_cpuid2 *out = NULL;
	struct vcpu_cpu_policy p = { 0 };
	struct error e;

	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "x2apic", false, &e), 0);
	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "cx16", false, &e), 0);
	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "la57", false, &e), 0);
	assert_int_equal(vcpu_cpuid_build(c, &p, 0, &out, &e), 0);
	assert_int_equal(vcpu_cpuid_entry(out, 1, 0)->ecx, 0x81202000U & ~(1U << 21) & ~(1U << 13));
	assert_int_equal(vcpu_cpuid_entry(out, 7, 0)->ecx, 0x1a010104U & ~(1U << 16));
	/* Everything else as KVM reported it. */
	assert_int_equal(vcpu_cpuid_entry(out, 1, 0)->edx, 0x0f8bfbff);
	assert_int_equal(vcpu_cpuid_entry(out, 7, 0)->ebx, 0x01802042);
	assert_int_equal(vcpu_cpuid_entry(out, 0xd, 0)->eax, 0x2e7);
	assert_int_equal(out->nent, c->nent);
}

static void test_hiding_xsave_hides_its_dependents_and_leaf_0xd(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *c = rich();
	_cleanup_free_ struct kvm_cpuid2 *out = NULL;
	struct vcpu_cpu_policy p = { 0 };
	struct error e;

	assert_true(has(c, "avx") && has(c, "avx2") && has(c, "avx512f") && has(c, "pku"));
	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "xsave", false, &e), 0);
	assert_int_equal(vcpu_cpuid_build(c, &p, 0, &out, &e), 0);
	assert_false(has(out, "xsave"));
	assert_false(has(out, "avx"));
	assert_false(has(out, "fma"));
	assert_false(has(out, "f16c"));
	assert_false(has(out, "avx2"));
	assert_false(has(out, "avx512f"));
	assert_false(has(out, "avx512bw"));
	assert_false(has(out, "pku"));
	assert_false(has(out, "xsaveopt"));
	assert_false(has(out, "xsaves"));
	assert_true(has(out, "sse4.2"));
	for (uint32_t i = 0; i < out->nent; i++)
		if (out->entries[i].function == 0xd) {
			const struct kvm_cpuid_entry2 *x = &out->entries[i];
			assert_true(x->eax == 0 && x->ebx == 0 && x->ecx == 0 && x->edx == 0);
		}
}

static void test_hiding_avx_drops_its_xsave_components(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *c = rich();
	_cleanup_free_ struct kvm_cpuid2 *out = NULL;
	struct vcpu_cpu_policy p = { 0 };
	struct error e;

	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "avx", false, &e), 0);
	assert_int_equal(vcpu_cpuid_build(c, &p, 0, &out, &e), 0);
	assert_true(has(out, "xsave"));
	assert_true(has(out, "pku"));
	assert_false(has(out, "avx2"));
	assert_false(has(out, "avx512f"));
	/* YMM (2) and the AVX-512 components (5-7) leave XCR0's supported mask;
	 * x87, SSE and PKRU stay. */
	assert_int_equal(vcpu_cpuid_entry(out, 0xd, 0)->eax, 0x203);
	assert_int_equal(vcpu_cpuid_entry(out, 0xd, 0)->edx, 0);
	for (unsigned int i = 2; i <= 7; i++) {
		struct kvm_cpuid_entry2 *x = vcpu_cpuid_entry(out, 0xd, i);
		if (x)
			assert_true(x->eax == 0 && x->ebx == 0);
	}
	/* ECX: the PKRU component ends at 0xa80 + 8; EBX: the size for XCR0 = x87. */
	assert_int_equal(vcpu_cpuid_entry(out, 0xd, 0)->ecx, 0xa88);
	assert_int_equal(vcpu_cpuid_entry(out, 0xd, 0)->ebx, 576);
	assert_int_equal(vcpu_cpuid_entry(out, 0xd, 9)->ebx, 0xa80);
}

static void test_hiding_pku_shrinks_the_xsave_area(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *c = rich();
	_cleanup_free_ struct kvm_cpuid2 *out = NULL;
	struct vcpu_cpu_policy p = { 0 };
	struct error e;

	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "pku", false, &e), 0);
	assert_int_equal(vcpu_cpuid_build(c, &p, 0, &out, &e), 0);
	assert_int_equal(vcpu_cpuid_entry(out, 0xd, 0)->eax, 0xe7);
	/* Largest remaining component: Hi16_ZMM at 0x680 + 0x400. */
	assert_int_equal(vcpu_cpuid_entry(out, 0xd, 0)->ecx, 0xa80);
}

static void test_requiring_a_feature_whose_base_is_hidden(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *c = rich();
	struct vcpu_cpu_policy p = { 0 };
	struct error e;

	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "xsave", false, &e), 0);
	assert_int_equal(vcpu_cpu_policy_set_feature(&p, "avx2", true, &e), 0);
	assert_int_equal(vcpu_cpu_policy_check(&p, c, 0, &e), -EINVAL);
	assert_string_equal(e.msg,
			    "CPU feature 'avx2' cannot be enabled: it needs 'avx', which the policy disables");
}

static void test_max_phys_bits(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *c = pvm();
	_cleanup_free_ struct kvm_cpuid2 *out = NULL;
	struct vcpu_cpu_policy p = { .max_phys_bits = 39 };
	struct error e;

	assert_int_equal(vcpu_cpuid_phys_bits(c), 46);
	assert_int_equal(vcpu_cpuid_build(c, &p, 0x13FFFFFFFULL, &out, &e), 0);
	assert_int_equal(vcpu_cpuid_phys_bits(out), 39);
	/* Only EAX[7:0] changes; the linear-address width stays. */
	assert_int_equal(vcpu_cpuid_entry(out, 0x80000008, 0)->eax, 0x3927);

	p.max_phys_bits = 47;
	assert_int_equal(vcpu_cpu_policy_check(&p, c, 0, &e), -EINVAL);
	assert_string_equal(e.msg, "max_phys_bits 47 exceeds this host's 46 "
				   "(CPUID.80000008H:EAX[7:0] of KVM_GET_SUPPORTED_CPUID)");
	p.max_phys_bits = 31;
	assert_int_equal(vcpu_cpu_policy_check(&p, c, 0, &e), -EINVAL);
	assert_string_equal(e.msg, "max_phys_bits 31 is outside 32..52");
	p.max_phys_bits = 53;
	assert_int_equal(vcpu_cpu_policy_check(&p, c, 0, &e), -EINVAL);
	p.max_phys_bits = 33;
	assert_int_equal(vcpu_cpu_policy_check(&p, c, 0x23FFFFFFFULL, &e), -EINVAL);
	assert_string_equal(e.msg, "max_phys_bits 33 cannot address the guest's physical "
				   "addresses up to 0x23fffffff (needs 34)");
	p.max_phys_bits = 34;
	assert_int_equal(vcpu_cpu_policy_check(&p, c, 0x23FFFFFFFULL, &e), 0);
	p.max_phys_bits = 32;
	assert_int_equal(vcpu_cpu_policy_check(&p, c, 0xFFFFFFFFULL, &e), 0);
}

static void test_phys_bits_without_leaf_is_36(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *c = pvm();

	vcpu_cpuid_entry(c, 0x80000000, 0)->eax = 0x80000004;
	assert_int_equal(vcpu_cpuid_phys_bits(c), 36);
}

static void test_subleaf_lookup_honours_significant_index(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *c = pvm();

	assert_int_equal(vcpu_cpuid_entry(c, 0xd, 2)->ebx, 0x240);
	assert_null(vcpu_cpuid_entry(c, 0xd, 3));
	/* Leaf 1 has no significant index: any subleaf finds it. */
	assert_int_equal(vcpu_cpuid_entry(c, 1, 5)->eax, 0x000a0678);
	assert_null(vcpu_cpuid_entry(c, 0x4000, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_feature_bits_match_the_manuals),
		cmocka_unit_test(test_feature_table_is_consistent),
		cmocka_unit_test(test_unknown_name_lists_the_known_ones),
		cmocka_unit_test(test_name_given_twice),
		cmocka_unit_test(test_policy_struct_checked_as_the_daemon_fills_it),
		cmocka_unit_test(test_too_many_settings),
		cmocka_unit_test(test_enabling_unsupported_feature_is_refused),
		cmocka_unit_test(test_enabling_supported_feature_keeps_it),
		cmocka_unit_test(test_hiding_features_clears_their_bits_only),
		cmocka_unit_test(test_hiding_xsave_hides_its_dependents_and_leaf_0xd),
		cmocka_unit_test(test_hiding_avx_drops_its_xsave_components),
		cmocka_unit_test(test_hiding_pku_shrinks_the_xsave_area),
		cmocka_unit_test(test_requiring_a_feature_whose_base_is_hidden),
		cmocka_unit_test(test_max_phys_bits),
		cmocka_unit_test(test_phys_bits_without_leaf_is_36),
		cmocka_unit_test(test_subleaf_lookup_honours_significant_index),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
