/* SPDX-License-Identifier: MIT */
/*
 * KVM tests of vmmd's MMU role of a vCPU (vcpu_mmu_role()): after any
 * write of a role input (CR0/CR4/EFER through KVM_SET_SREGS or
 * KVM_SET_SREGS2, EFER through KVM_SET_MSRS, the SMM flag through
 * KVM_SET_VCPU_EVENTS) the role vmmd reports is the one of the registers
 * KVM now holds, never a snapshot taken before the write; and the role
 * carries the SMM and guest-mode flags, also as guest inspection reads it
 * on the vCPU's thread (vcpu_get_mmu_role()).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>
#include <sys/ioctl.h>

#include "tests/kvm/kvm-test.h"
#include "vcpu/reset.h"
#include "vcpu/state.h"
#include "vcpu/x86.h"

/* An empty PML4 in the test RAM: enough for KVM to accept paging on. */
#define TEST_CR3 0x100000ULL

/* A vCPU just RESET by vmmd: its role snapshot is valid and nonpaging. */
static struct vcpu *reset_vcpu(void **state)
{
	struct kvm_test_vm *vm = kvm_test_vm_new(1);
	union mmu_role role;
	struct error e;

	*state = vm;
	kvm_test_check(vcpu_reset(vm->vcpu[0], VCPU_RESET_POWER_ON, NULL, &e), &e);
	kvm_test_check(vcpu_mmu_role(vm->vcpu[0], &role, NULL, &e), &e);
	assert_int_equal(mmu_role_mode(role), MMU_MODE_NONE);
	return vm->vcpu[0];
}

/* The role vcpu_mmu_role() reports equals the role of what KVM holds. */
static union mmu_role assert_role_of_kvm_registers(struct vcpu *v)
{
	struct kvm_sregs2 s;
	struct mmu_role_regs regs, want_regs;
	union mmu_role role, want;
	struct error e;

	kvm_test_check(vcpu_get_sregs2(v, &s, &e), &e);
	want_regs = (struct mmu_role_regs){ .cr0 = s.cr0, .cr4 = s.cr4, .efer = s.efer };
	want = mmu_role_compute(&want_regs, 0);
	kvm_test_check(vcpu_mmu_role(v, &role, &regs, &e), &e);
	if (role.word != want.word || regs.cr0 != s.cr0 || regs.cr4 != s.cr4 ||
	    regs.efer != s.efer)
		fail_msg("vcpu_mmu_role(): role 0x%x of cr0=0x%llx cr4=0x%llx efer=0x%llx; KVM holds "
			 "cr0=0x%llx cr4=0x%llx efer=0x%llx, whose role is 0x%x",
			 role.word, (unsigned long long)regs.cr0, (unsigned long long)regs.cr4,
			 (unsigned long long)regs.efer, (unsigned long long)s.cr0,
			 (unsigned long long)s.cr4, (unsigned long long)s.efer, want.word);
	return role;
}

/* 64-bit long mode with 4-level paging (the one paging mode every host
 * here runs, docs/host-notes.md). */
static void set_long_mode(struct kvm_sregs *s)
{
	s->cr0 = MMU_CR0_PE | MMU_CR0_ET | MMU_CR0_WP | MMU_CR0_PG;
	s->cr3 = TEST_CR3;
	s->cr4 = MMU_CR4_PAE;
	s->efer = MMU_EFER_LME | MMU_EFER_LMA;
	s->cs.l = 1;
	s->cs.db = 0;
}

static void test_set_sregs_drops_the_cached_role(void **state)
{
	struct vcpu *v = reset_vcpu(state);
	struct kvm_sregs s;
	union mmu_role role;
	struct error e;

	kvm_test_check(vcpu_get_sregs(v, &s, &e), &e);
	set_long_mode(&s);
	kvm_test_check(vcpu_set_sregs(v, &s, &e), &e);
	role = assert_role_of_kvm_registers(v);
	assert_int_equal(mmu_role_mode(role), MMU_MODE_4LEVEL);
	assert_true(role.cr0_wp && role.efer_lma);
}

static void test_set_sregs2_drops_the_cached_role(void **state)
{
	struct vcpu *v = reset_vcpu(state);
	struct kvm_sregs plain;
	struct kvm_sregs2 s;
	union mmu_role role;
	struct error e;

	kvm_test_check(vcpu_get_sregs(v, &plain, &e), &e);
	set_long_mode(&plain);
	kvm_test_check(vcpu_get_sregs2(v, &s, &e), &e);
	s.cs = plain.cs;
	s.cr0 = plain.cr0, s.cr3 = plain.cr3, s.cr4 = plain.cr4, s.efer = plain.efer;
	kvm_test_check(vcpu_set_sregs2(v, &s, &e), &e);
	role = assert_role_of_kvm_registers(v);
	assert_int_equal(mmu_role_mode(role), MMU_MODE_4LEVEL);
}

/* EFER is a role register whether it arrives through the sregs or as an MSR. */
static void test_set_msrs_of_efer_drops_the_cached_role(void **state)
{
	struct vcpu *v = reset_vcpu(state);
	struct kvm_sregs s;
	struct kvm_msr_entry efer = { .index = MSR_EFER };
	union mmu_role before, after;
	struct error e;

	kvm_test_check(vcpu_get_sregs(v, &s, &e), &e);
	set_long_mode(&s);
	kvm_test_check(vcpu_set_sregs(v, &s, &e), &e);
	before = assert_role_of_kvm_registers(v);
	assert_false(before.efer_nx);
	kvm_test_check(vcpu_get_msrs(v, &efer, 1, &e), &e);
	efer.data |= MMU_EFER_NX;
	kvm_test_check(vcpu_set_msrs(v, &efer, 1, &e), &e);
	after = assert_role_of_kvm_registers(v);
	assert_true(after.efer_nx);
}

static bool vm_has(struct kvm_test_vm *vm, long cap)
{
	return ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, cap) > 0;
}

struct thread_role {
	union mmu_role role;
	struct error err;
};

static int role_on_thread(struct vcpu *v, void *arg)
{
	struct thread_role *r = arg;

	return vcpu_get_mmu_role(v, &r->role, NULL, &r->err);
}

/* The role as guest inspection reads it: on the vCPU's thread, beside the
 * other registers (vmmd/worker/inspect.c). */
static union mmu_role role_as_inspection_reads_it(struct vcpu *v)
{
	struct thread_role r;

	if (vcpu_call(v, role_on_thread, &r) < 0)
		fail_msg("%s", r.err.msg);
	return r.role;
}

/* SMM is a role input (MMU.md §1.1): entering it through the events shows
 * in the role vmmd reports, through both entry points. */
static void test_smm_flag_reaches_the_role(void **state)
{
	struct vcpu *v = reset_vcpu(state);
	struct kvm_test_vm *vm = *state;
	struct kvm_vcpu_events ev;
	union mmu_role role;
	struct error e;

	assert_false(role_as_inspection_reads_it(v).smm);
	if (!vm_has(vm, KVM_CAP_X86_SMM))
		KVM_TEST_SKIP("KVM_CAP_X86_SMM is absent on this host: no vCPU can enter SMM, so the "
			      "SMM role flag is shown with synthetic events only (tests/unit "
			      "test-vcpu-role); outside SMM the role has smm = 0");
	kvm_test_check(vcpu_get_events(v, &ev, &e), &e);
	ev.flags = KVM_VCPUEVENT_VALID_SMM;
	ev.smi.smm = 1;
	kvm_test_check(vcpu_set_events(v, &ev, &e), &e);
	kvm_test_check(vcpu_mmu_role(v, &role, NULL, &e), &e);
	assert_true(role.smm);
	assert_true(role_as_inspection_reads_it(v).smm);
}

/* Guest mode (L2 running) is the other role input that is not a register. */
static void test_guest_mode_flag_follows_the_nested_state(void **state)
{
	struct vcpu *v = reset_vcpu(state);
	struct kvm_test_vm *vm = *state;

	assert_false(role_as_inspection_reads_it(v).guest_mode);
	if (!vm_has(vm, KVM_CAP_NESTED_STATE))
		KVM_TEST_SKIP("KVM_CAP_NESTED_STATE is absent on this host (no VMX/SVM): no vCPU can "
			      "run a nested guest, so the guest-mode role flag is shown with "
			      "synthetic nested state only (tests/unit test-vcpu-role); without "
			      "nested state the role has guest_mode = 0");
	/* A vCPU that never entered VMX/SVM operation runs no L2. */
	assert_false(role_as_inspection_reads_it(v).guest_mode);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_set_sregs_drops_the_cached_role, kvm_test_teardown),
		cmocka_unit_test_teardown(test_set_sregs2_drops_the_cached_role, kvm_test_teardown),
		cmocka_unit_test_teardown(test_set_msrs_of_efer_drops_the_cached_role,
					  kvm_test_teardown),
		cmocka_unit_test_teardown(test_smm_flag_reaches_the_role, kvm_test_teardown),
		cmocka_unit_test_teardown(test_guest_mode_flag_follows_the_nested_state,
					  kvm_test_teardown),
	};

	kvm_test_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
