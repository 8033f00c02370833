/* SPDX-License-Identifier: MIT */
/*
 * KVM tests of the vCPU thread: vcpu_call() on a running vCPU, pause at an
 * instruction boundary and resume, and calls served while paused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "tests/kvm/kvm-test.h"
#include "vcpu/state.h"

struct regs_call {
	struct kvm_regs regs;
	struct error err;
};

static int read_regs(struct vcpu *v, void *arg)
{
	struct regs_call *c = arg;

	return vcpu_get_regs(v, &c->regs, &c->err);
}

static struct kvm_regs regs_via_call(struct vcpu *v)
{
	struct regs_call c;

	if (vcpu_call(v, read_regs, &c) < 0)
		fail_msg("%s", c.err.msg);
	return c.regs;
}

/* A vCPU spinning in the guest_spin loop, its thread started. */
static struct kvm_test_vm *spinning_vm(void **state, unsigned int n)
{
	struct kvm_test_vm *vm = kvm_test_vm_new(n);
	struct error e;

	*state = vm;
	kvm_test_load(vm, GUEST_SPIN_ADDR, guest_spin, GUEST_SIZE(guest_spin));
	for (unsigned int i = 0; i < n; i++) {
		kvm_test_enter_protected_mode(vm, i, GUEST_SPIN_ADDR, 0x8000, 0, 0);
		if (vcpu_start(vm->vcpu[i], &e) < 0)
			fail_msg("%s", e.msg);
	}
	return vm;
}

static bool rip_in_spin_loop(uint64_t rip)
{
	return rip >= GUEST_SPIN_ADDR && rip < GUEST_SPIN_ADDR + GUEST_SIZE(guest_spin);
}

/* Waits until the guest's counter (EAX) has moved past `after`. */
static struct kvm_regs wait_counter_moves(struct vcpu *v, uint64_t after)
{
	struct kvm_regs r;

	for (int i = 0; i < 2000; i++) {
		r = regs_via_call(v);
		if ((uint32_t)r.rax != (uint32_t)after)
			return r;
		usleep(1000);
	}
	fail_msg("the guest's counter stayed at %llu for 2 s", (unsigned long long)after);
	return r;
}

static void test_call_reads_registers_of_a_running_vcpu(void **state)
{
	struct kvm_test_vm *vm = spinning_vm(state, 1);
	struct kvm_regs a, b;

	a = wait_counter_moves(vm->vcpu[0], 0);
	assert_true(rip_in_spin_loop(a.rip));
	b = wait_counter_moves(vm->vcpu[0], a.rax);
	assert_true(rip_in_spin_loop(b.rip));
	assert_false(vcpu_is_paused(vm->vcpu[0]));
}

static void test_pause_freezes_and_resume_continues(void **state)
{
	struct kvm_test_vm *vm = spinning_vm(state, 1);
	struct vcpu *v = vm->vcpu[0];
	struct kvm_regs before, during, later;

	wait_counter_moves(v, 0);
	vcpu_pause(v);
	vcpu_wait_paused(v);
	assert_true(vcpu_is_paused(v));
	before = regs_via_call(v);
	assert_true(rip_in_spin_loop(before.rip));
	usleep(50 * 1000);
	during = regs_via_call(v);
	/* Parked outside KVM_RUN: not one instruction in 50 ms. */
	assert_true(during.rip == before.rip);
	assert_true(during.rax == before.rax);
	assert_memory_equal(&during, &before, sizeof(before));

	vcpu_resume(v);
	later = wait_counter_moves(v, before.rax);
	assert_false(vcpu_is_paused(v));
	assert_true(rip_in_spin_loop(later.rip));
}

static void test_pause_many_vcpus_at_once(void **state)
{
	struct kvm_test_vm *vm = spinning_vm(state, 4);
	struct kvm_regs r[4];

	for (unsigned int i = 0; i < 4; i++)
		wait_counter_moves(vm->vcpu[i], 0);
	for (unsigned int i = 0; i < 4; i++)
		vcpu_pause(vm->vcpu[i]);
	for (unsigned int i = 0; i < 4; i++)
		vcpu_wait_paused(vm->vcpu[i]);
	for (unsigned int i = 0; i < 4; i++)
		r[i] = regs_via_call(vm->vcpu[i]);
	usleep(20 * 1000);
	for (unsigned int i = 0; i < 4; i++) {
		struct kvm_regs again = regs_via_call(vm->vcpu[i]);
		assert_true(again.rax == r[i].rax && again.rip == r[i].rip);
	}
	for (unsigned int i = 0; i < 4; i++)
		vcpu_resume(vm->vcpu[i]);
	for (unsigned int i = 0; i < 4; i++)
		wait_counter_moves(vm->vcpu[i], r[i].rax);
}

struct write_call {
	uint64_t rax;
	struct error err;
};

static int write_rax(struct vcpu *v, void *arg)
{
	struct write_call *c = arg;
	struct kvm_regs r;
	int rc = vcpu_get_regs(v, &r, &c->err);

	if (rc < 0)
		return rc;
	r.rax = c->rax;
	return vcpu_set_regs(v, &r, &c->err);
}

static void test_call_writes_registers_the_guest_then_uses(void **state)
{
	struct kvm_test_vm *vm = spinning_vm(state, 1);
	struct vcpu *v = vm->vcpu[0];
	struct write_call c = { .rax = 0x70000000 };
	struct kvm_regs r;

	/* Past the loop's initial XOR, which would overwrite the value. */
	wait_counter_moves(v, 0);
	vcpu_pause(v);
	vcpu_wait_paused(v);
	if (vcpu_call(v, write_rax, &c) < 0)
		fail_msg("%s", c.err.msg);
	r = regs_via_call(v);
	assert_true(r.rax == 0x70000000);
	vcpu_resume(v);
	r = wait_counter_moves(v, 0x70000000);
	/* The guest counts on from the value written, it did not start over. */
	if ((uint32_t)r.rax <= 0x70000000)
		fail_msg("guest counter at 0x%llx after resuming from 0x70000000",
			 (unsigned long long)r.rax);
}

static void test_call_after_the_thread_ended_runs_on_the_caller(void **state)
{
	struct kvm_test_vm *vm = spinning_vm(state, 1);
	struct vcpu *v = vm->vcpu[0];
	struct kvm_regs a, b;

	wait_counter_moves(v, 0);
	vcpu_request_stop(v);
	vcpu_join(v);
	a = regs_via_call(v);
	usleep(10 * 1000);
	b = regs_via_call(v);
	assert_true(rip_in_spin_loop(a.rip));
	assert_memory_equal(&a, &b, sizeof(a));
}

/*
 * KVM finishes an I/O instruction only on the next KVM_RUN: an IN stores
 * the value userspace gave into EAX and moves RIP past it then. A vCPU
 * parked right after the exit must still show the instruction completed,
 * or a state saved there would lose the value and repeat the IN.
 */
static void test_pause_right_after_io_exit_completes_the_instruction(void **state)
{
	struct kvm_test_vm *vm = kvm_test_vm_new(1);
	struct vcpu *v = vm->vcpu[0];
	struct kvm_regs r;
	struct error e;

	*state = vm;
	vm->pause_on_port = PORT_IN;
	kvm_test_load(vm, GUEST_SPIN_ADDR, guest_in_spin, GUEST_SIZE(guest_in_spin));
	kvm_test_enter_user_mode(vm, 0, GUEST_SPIN_ADDR, USER_STACK_TOP);
	if (vcpu_start(v, &e) < 0)
		fail_msg("%s", e.msg);
	for (int i = 0; i < 5000 && !vcpu_is_paused(v); i++)
		usleep(1000);
	assert_true(vcpu_is_paused(v));
	r = regs_via_call(v);
	if (r.rip != GUEST_SPIN_ADDR + GUEST_IN_SPIN_AFTER_IN || (uint32_t)r.rax != PORT_IN_VALUE)
		fail_msg("paused at rip 0x%llx with eax 0x%x: the IN was not completed",
			 (unsigned long long)r.rip, (uint32_t)r.rax);
	/* And it runs on from there, without a second IN. */
	vm->pause_on_port = 0;
	vcpu_resume(v);
	usleep(20 * 1000);
	r = regs_via_call(v);
	assert_true(r.rip == GUEST_SPIN_ADDR + GUEST_IN_SPIN_AFTER_IN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_call_reads_registers_of_a_running_vcpu,
					  kvm_test_teardown),
		cmocka_unit_test_teardown(test_pause_freezes_and_resume_continues,
					  kvm_test_teardown),
		cmocka_unit_test_teardown(test_pause_many_vcpus_at_once, kvm_test_teardown),
		cmocka_unit_test_teardown(test_call_writes_registers_the_guest_then_uses,
					  kvm_test_teardown),
		cmocka_unit_test_teardown(test_call_after_the_thread_ended_runs_on_the_caller,
					  kvm_test_teardown),
		cmocka_unit_test_teardown(test_pause_right_after_io_exit_completes_the_instruction,
					  kvm_test_teardown),
	};

	kvm_test_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
