/* SPDX-License-Identifier: MIT */
/*
 * KVM tests of the CPUID policy: what KVM holds (KVM_GET_CPUID2) on every
 * vCPU after vcpu_set_cpuid(), and the refusal of a changed CPUID once a
 * vCPU has run. CPUID is checked through KVM, not by a guest executing
 * CPUID: on hosts that emulate guest ring 0 (PVM) CPUID in ring 0 mixes
 * host bits into what KVM_SET_CPUID2 set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "tests/kvm/kvm-test.h"
#include "vcpu/cpuid.h"
#include "vcpu/state.h"

#define NR_VCPUS 4

/* A policy that hides what the host has of x2apic, cx16 and la57 (the
 * first two are what a Linux guest needs hidden on the PVM host) and
 * lowers MAXPHYADDR. */
static struct kvm_cpuid2 *policy_cpuid(struct kvm_test_vm *vm, struct vcpu_cpu_policy *p)
{
	struct kvm_cpuid2 *c = NULL;
	struct error e;

	memset(p, 0, sizeof(*p));
	kvm_test_check(vcpu_cpu_policy_set_feature(p, "x2apic", false, &e), &e);
	kvm_test_check(vcpu_cpu_policy_set_feature(p, "cx16", false, &e), &e);
	kvm_test_check(vcpu_cpu_policy_set_feature(p, "la57", false, &e), &e);
	kvm_test_check(vcpu_cpu_policy_set_feature(p, "nx", true, &e), &e);
	p->max_phys_bits = 40;
	kvm_test_check(vcpu_cpuid_build(vm->cpuid, p, KVM_TEST_FLASH_BASE + KVM_TEST_FLASH_SIZE - 1, &c, &e),
	      &e);
	return c;
}

/*
 * What KVM holds for vCPU i against the policy's list: the APIC ID in leaf
 * 1 (and 0xB/0x1F), MAXPHYADDR, and every feature of the table that KVM
 * supports exactly as the policy set it. Features KVM does not support
 * cannot be set by a policy; some KVMs (PVM) still report host bits for
 * them, which is listed as a partial skip.
 */
static void assert_vcpu_holds_policy(struct kvm_test_vm *vm, unsigned int i,
				     const struct kvm_cpuid2 *want, const char *test)
{
	_cleanup_free_ struct kvm_cpuid2 *got = NULL;
	size_t nfeat;
	const struct vcpu_cpu_feature *feats = vcpu_cpu_features(&nfeat);
	char mixed[512] = "";
	struct kvm_cpuid_entry2 *e;
	struct error err;

	kvm_test_check(vcpu_get_cpuid(vm->vcpu[i], &got, &err), &err);
	e = vcpu_cpuid_entry(got, 1, 0);
	assert_non_null(e);
	assert_int_equal(e->ebx >> 24, i);
	for (unsigned int k = 0; k < got->nent; k++)
		if (got->entries[k].function == 0xB || got->entries[k].function == 0x1F)
			if (got->entries[k].edx != i)
				fail_msg("vcpu %u: CPUID 0x%x.%u EDX (x2APIC ID) is %u", i,
					 got->entries[k].function, got->entries[k].index,
					 got->entries[k].edx);
	assert_int_equal(vcpu_cpuid_phys_bits(got), vcpu_cpuid_phys_bits(want));
	for (size_t f = 0; f < nfeat; f++) {
		bool held = vcpu_cpuid_has(got, &feats[f]), wanted = vcpu_cpuid_has(want, &feats[f]);
		if (vcpu_cpuid_has(vm->cpuid, &feats[f])) {
			if (held != wanted)
				fail_msg("vcpu %u: KVM holds %s=%d, the policy set %d", i, feats[f].name,
					 held, wanted);
		} else if (held && !wanted) {
			size_t len = strlen(mixed);
			snprintf(mixed + len, sizeof(mixed) - len, "%s%s", len ? ", " : "",
				 feats[f].name);
		}
	}
	if (mixed[0] && i == 0)
		kvm_test_print_skip(test,
				    "(partial) KVM_GET_CPUID2 reports features KVM does not support as set "
				    "(host bits mixed in by this KVM; no policy can clear them): %s",
				    mixed);
}

/*
 * The bits of a CPUID entry that differ between vCPUs by design: the
 * initial APIC ID in leaf 1 EBX[31:24], the x2APIC ID in EDX of the
 * extended topology leaves 0xB and 0x1F, and AMD's extended APIC ID in
 * leaf 0x8000001E EAX (SDM Vol. 2A and APM Vol. 3, CPUID).
 */
static void mask_apic_ids(struct kvm_cpuid_entry2 *e)
{
	if (e->function == 1)
		e->ebx &= 0x00FFFFFF;
	else if (e->function == 0xB || e->function == 0x1F)
		e->edx = 0;
	else if (e->function == 0x8000001E)
		e->eax = 0;
}

/* What KVM holds for every vCPU is vCPU 0's, entry for entry and register
 * for register, apart from the APIC-ID fields. */
static void assert_same_cpuid_on_every_vcpu(struct kvm_test_vm *vm, unsigned int n)
{
	_cleanup_free_ struct kvm_cpuid2 *first = NULL;
	struct error err;

	kvm_test_check(vcpu_get_cpuid(vm->vcpu[0], &first, &err), &err);
	for (unsigned int k = 0; k < first->nent; k++)
		mask_apic_ids(&first->entries[k]);
	for (unsigned int i = 1; i < n; i++) {
		_cleanup_free_ struct kvm_cpuid2 *got = NULL;
		kvm_test_check(vcpu_get_cpuid(vm->vcpu[i], &got, &err), &err);
		assert_int_equal(got->nent, first->nent);
		for (unsigned int k = 0; k < got->nent; k++) {
			struct kvm_cpuid_entry2 *a = &first->entries[k], *b = &got->entries[k];
			mask_apic_ids(b);
			if (memcmp(a, b, sizeof(*a)) != 0)
				fail_msg("vcpu %u: CPUID entry %u (leaf 0x%x.%u) is %08x %08x %08x %08x flags %x, "
					 "vcpu 0 has leaf 0x%x.%u %08x %08x %08x %08x flags %x (APIC IDs masked)",
					 i, k, b->function, b->index, b->eax, b->ebx, b->ecx, b->edx,
					 b->flags, a->function, a->index, a->eax, a->ebx, a->ecx, a->edx,
					 a->flags);
		}
	}
}

static void test_policy_reaches_every_vcpu(void **state)
{
	struct kvm_test_vm *vm = kvm_test_vm_new(NR_VCPUS);
	_cleanup_free_ struct kvm_cpuid2 *want = NULL;
	struct vcpu_cpu_policy p;
	struct error e;

	*state = vm;
	want = policy_cpuid(vm, &p);
	assert_false(vcpu_cpuid_has(want, vcpu_cpu_feature_find("x2apic")));
	assert_false(vcpu_cpuid_has(want, vcpu_cpu_feature_find("cx16")));
	assert_false(vcpu_cpuid_has(want, vcpu_cpu_feature_find("la57")));
	assert_int_equal(vcpu_cpuid_phys_bits(want), 40);
	for (unsigned int i = 0; i < NR_VCPUS; i++)
		kvm_test_check(vcpu_set_cpuid(vm->vcpu[i], want, &e), &e);
	for (unsigned int i = 0; i < NR_VCPUS; i++)
		assert_vcpu_holds_policy(vm, i, want, __func__);
	assert_same_cpuid_on_every_vcpu(vm, NR_VCPUS);
}

/* Without a policy as well: KVM's whole supported list, the same on every
 * vCPU but for the APIC IDs, each vCPU's own in leaves 1, 0xB and 0x1F. */
static void test_supported_cpuid_is_the_same_on_every_vcpu(void **state)
{
	struct kvm_test_vm *vm = kvm_test_vm_new(NR_VCPUS);
	_cleanup_free_ struct kvm_cpuid2 *got = NULL;
	struct error e;
	bool has_1f = false;

	*state = vm;
	assert_same_cpuid_on_every_vcpu(vm, NR_VCPUS);
	for (unsigned int i = 0; i < NR_VCPUS; i++) {
		free(got);
		got = NULL;
		kvm_test_check(vcpu_get_cpuid(vm->vcpu[i], &got, &e), &e);
		assert_int_equal(vcpu_cpuid_entry(got, 1, 0)->ebx >> 24, i);
		for (unsigned int k = 0; k < got->nent; k++) {
			const struct kvm_cpuid_entry2 *x = &got->entries[k];
			if (x->function == 0xB || x->function == 0x1F)
				assert_int_equal(x->edx, i);
			has_1f |= x->function == 0x1F;
		}
	}
	if (!has_1f)
		kvm_test_print_skip(__func__, "(partial) KVM_GET_SUPPORTED_CPUID has no leaf 0x1F here: "
					      "its x2APIC IDs were not checked");
}

static void test_unsupported_feature_refused_before_kvm(void **state)
{
	struct kvm_test_vm *vm = kvm_test_vm_new(1);
	struct vcpu_cpu_policy p = { 0 };
	struct kvm_cpuid2 *c = NULL;
	const struct vcpu_cpu_feature *missing = NULL;
	size_t n;
	const struct vcpu_cpu_feature *feats = vcpu_cpu_features(&n);
	struct error e;

	*state = vm;
	for (size_t i = 0; i < n && !missing; i++)
		if (!vcpu_cpuid_has(vm->cpuid, &feats[i]))
			missing = &feats[i];
	if (!missing)
		KVM_TEST_SKIP("KVM on this host supports every feature of the table");
	kvm_test_check(vcpu_cpu_policy_set_feature(&p, missing->name, true, &e), &e);
	assert_int_equal(vcpu_cpuid_build(vm->cpuid, &p, 0, &c, &e), -EINVAL);
	assert_null(c);
	assert_non_null(strstr(e.msg, "KVM on this host does not support it"));
	assert_non_null(strstr(e.msg, missing->name));
}

/* Runs vCPU 0 on the spin guest until KVM_RUN has been entered, then
 * parks it (paused). */
static void run_once(struct kvm_test_vm *vm)
{
	struct vcpu *v = vm->vcpu[0];
	struct kvm_regs r;
	struct error e;

	kvm_test_load(vm, GUEST_SPIN_ADDR, guest_spin, GUEST_SIZE(guest_spin));
	kvm_test_enter_protected_mode(vm, 0, GUEST_SPIN_ADDR, 0x8000, 0, 0);
	kvm_test_check(vcpu_start(v, &e), &e);
	for (int i = 0; i < 2000; i++) {
		vcpu_pause(v);
		vcpu_wait_paused(v);
		kvm_test_check(vcpu_get_regs(v, &r, &e), &e);
		if (r.rax > 0)
			return;
		vcpu_resume(v);
		usleep(1000);
	}
	fail_msg("vcpu 0 never ran");
}

struct set_cpuid_call {
	const struct kvm_cpuid2 *cpuid;
	struct error err;
};

static int set_cpuid_on_vcpu(struct vcpu *v, void *arg)
{
	struct set_cpuid_call *c = arg;

	return vcpu_set_cpuid(v, c->cpuid, &c->err);
}

static void test_changed_cpuid_refused_after_run(void **state)
{
	struct kvm_test_vm *vm = kvm_test_vm_new(1);
	struct vcpu *v;
	_cleanup_free_ struct kvm_cpuid2 *other = NULL;
	_cleanup_free_ struct kvm_cpuid2 *before = NULL;
	_cleanup_free_ struct kvm_cpuid2 *after = NULL;
	struct vcpu_cpu_policy p;
	struct set_cpuid_call call;
	struct error e;

	*state = vm;
	v = vm->vcpu[0];
	other = policy_cpuid(vm, &p);
	run_once(vm);
	kvm_test_check(vcpu_get_cpuid(v, &before, &e), &e);

	/* Different: refused by vmmd with the reason, KVM not asked. */
	call = (struct set_cpuid_call){ .cpuid = other };
	assert_int_equal(vcpu_cpuid_check_change(v, other, &e), -EINVAL);
	assert_int_equal(vcpu_call(v, set_cpuid_on_vcpu, &call), -EINVAL);
	assert_non_null(strstr(call.err.msg, "vcpu 0: CPUID cannot change after the vCPU has run: "));
	assert_non_null(strstr(call.err.msg, "create a new VM"));
	kvm_test_check(vcpu_get_cpuid(v, &after, &e), &e);
	assert_int_equal(after->nent, before->nent);
	assert_memory_equal(after->entries, before->entries, before->nent * sizeof(before->entries[0]));

	/* Identical: accepted as a no-op. */
	call = (struct set_cpuid_call){ .cpuid = vm->cpuid };
	assert_int_equal(vcpu_cpuid_check_change(v, vm->cpuid, &e), 0);
	if (vcpu_call(v, set_cpuid_on_vcpu, &call) < 0)
		fail_msg("%s", call.err.msg);
	free(after);
	after = NULL;
	kvm_test_check(vcpu_get_cpuid(v, &after, &e), &e);
	assert_memory_equal(after->entries, before->entries, before->nent * sizeof(before->entries[0]));
}

struct raw_call {
	struct kvm_cpuid2 *cpuid;
	int err;
};

static int raw_set_cpuid(struct vcpu *v, void *arg)
{
	struct raw_call *c = arg;

	c->err = ioctl(vcpu_fd(v), KVM_SET_CPUID2, c->cpuid) < 0 ? errno : 0;
	return 0;
}

/* What the refusal protects against: KVM itself answers EINVAL. */
static void test_kvm_refuses_changed_cpuid_after_run_with_einval(void **state)
{
	struct kvm_test_vm *vm = kvm_test_vm_new(1);
	_cleanup_free_ struct kvm_cpuid2 *other = NULL;
	struct vcpu_cpu_policy p;
	struct raw_call call;

	*state = vm;
	other = policy_cpuid(vm, &p);
	run_once(vm);
	call = (struct raw_call){ .cpuid = other };
	vcpu_call(vm->vcpu[0], raw_set_cpuid, &call);
	assert_int_equal(call.err, EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_policy_reaches_every_vcpu, kvm_test_teardown),
		cmocka_unit_test_teardown(test_supported_cpuid_is_the_same_on_every_vcpu,
					  kvm_test_teardown),
		cmocka_unit_test_teardown(test_unsupported_feature_refused_before_kvm,
					  kvm_test_teardown),
		cmocka_unit_test_teardown(test_changed_cpuid_refused_after_run, kvm_test_teardown),
		cmocka_unit_test_teardown(test_kvm_refuses_changed_cpuid_after_run_with_einval,
					  kvm_test_teardown),
	};

	kvm_test_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
