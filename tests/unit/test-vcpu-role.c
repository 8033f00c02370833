/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the MMU role flags vcpu/ derives from a vCPU's events and
 * nested state (vcpu_mmu_flags_of(), MMU.md §1.1), with synthetic KVM
 * structures: the development host has neither SMM nor nested state, so
 * KVM cannot produce them there (tests/kvm test-kvm-role skips with that
 * reason).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mmu/mmu.h"
#include "vcpu/state.h"

static struct kvm_vcpu_events events_with(uint32_t flags, uint8_t smm)
{
	struct kvm_vcpu_events e;

	memset(&e, 0, sizeof(e));
	e.flags = flags;
	e.smi.smm = smm;
	return e;
}

static struct kvm_nested_state nested_with(uint16_t flags)
{
	struct kvm_nested_state n;

	memset(&n, 0, sizeof(n));
	n.format = KVM_STATE_NESTED_FORMAT_VMX;
	n.size = sizeof(n);
	n.flags = flags;
	return n;
}

static void test_outside_smm_and_without_nested_state(void **state)
{
	struct kvm_vcpu_events e = events_with(KVM_VCPUEVENT_VALID_SMM, 0);

	assert_int_equal(vcpu_mmu_flags_of(&e, NULL), 0);
}

static void test_smm(void **state)
{
	struct kvm_vcpu_events e = events_with(KVM_VCPUEVENT_VALID_SMM, 1);
	union mmu_role role;
	struct mmu_role_regs regs = { .cr0 = MMU_CR0_PE };

	assert_int_equal(vcpu_mmu_flags_of(&e, NULL), MMU_CTX_SMM);
	role = mmu_role_compute(&regs, vcpu_mmu_flags_of(&e, NULL));
	assert_true(role.smm);
	assert_false(role.guest_mode);
}

/* KVM_SET_VCPU_EVENTS ignores the SMM fields without KVM_VCPUEVENT_VALID_SMM. */
static void test_smm_fields_without_their_valid_flag_do_not_count(void **state)
{
	struct kvm_vcpu_events e = events_with(KVM_VCPUEVENT_VALID_NMI_PENDING, 1);

	assert_int_equal(vcpu_mmu_flags_of(&e, NULL), 0);
}

static void test_guest_mode(void **state)
{
	struct kvm_vcpu_events e = events_with(KVM_VCPUEVENT_VALID_SMM, 0);
	struct kvm_nested_state l1 = nested_with(KVM_STATE_NESTED_RUN_PENDING);
	struct kvm_nested_state l2 = nested_with(KVM_STATE_NESTED_GUEST_MODE);

	assert_int_equal(vcpu_mmu_flags_of(&e, &l1), 0);
	assert_int_equal(vcpu_mmu_flags_of(&e, &l2), MMU_CTX_GUEST_MODE);
}

static void test_smm_and_guest_mode_together(void **state)
{
	struct kvm_vcpu_events e = events_with(KVM_VCPUEVENT_VALID_SMM, 1);
	struct kvm_nested_state l2 = nested_with(KVM_STATE_NESTED_GUEST_MODE);
	struct mmu_role_regs regs = { 0 };
	union mmu_role role;

	assert_int_equal(vcpu_mmu_flags_of(&e, &l2), MMU_CTX_SMM | MMU_CTX_GUEST_MODE);
	role = mmu_role_compute(&regs, vcpu_mmu_flags_of(&e, &l2));
	assert_true(role.smm && role.guest_mode);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outside_smm_and_without_nested_state),
		cmocka_unit_test(test_smm),
		cmocka_unit_test(test_smm_fields_without_their_valid_flag_do_not_count),
		cmocka_unit_test(test_guest_mode),
		cmocka_unit_test(test_smm_and_guest_mode_together),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
