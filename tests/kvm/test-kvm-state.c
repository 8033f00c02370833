/* SPDX-License-Identifier: MIT */
/*
 * KVM tests of complete vCPU state: a guest counting in ring 3 is paused,
 * saved, loaded into a fresh VM and goes on counting exactly where it
 * stopped; saving the loaded vCPU again gives the same bytes; inconsistent
 * states are refused with every problem listed and nothing applied.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <sys/ioctl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/kvm/kvm-test.h"
#include "util/macro.h"
#include "vcpu/cpuid.h"
#include "vcpu/reset.h"
#include "vcpu/state.h"
#include "vcpu/x86.h"

#define WAIT_MS 10000
#define STEP (1U << COUNTER_SHIFT)

struct two_vms {
	struct kvm_test_vm *a, *b;
};

static int setup(void **state)
{
	*state = calloc(1, sizeof(struct two_vms));
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	struct two_vms *t = *state;

	kvm_test_vm_free(t->a);
	kvm_test_vm_free(t->b);
	free(t);
	return 0;
}

/* One report of the counter guest: the count, XMM0 and EBX. */
static void expect_report(struct kvm_test_vm *vm, uint32_t count)
{
	uint32_t xmm = kvm_test_wait_write(vm, 0, PORT_CHECK, WAIT_MS);
	uint32_t ebx = kvm_test_wait_write(vm, 0, PORT_CHECK + 1, WAIT_MS);

	if (xmm != count || ebx != 3 * count)
		fail_msg("count %u reported with XMM0 %u and EBX %u (expected %u and %u)", count, xmm,
			 ebx, count, 3 * count);
}

/* Starts the counter guest on vCPU 0 and lets it report n times. */
static uint32_t start_counter(struct kvm_test_vm *vm, unsigned int n)
{
	uint32_t count = 0;
	struct error e;

	kvm_test_load(vm, GUEST_COUNTER_ADDR, guest_counter, GUEST_SIZE(guest_counter));
	kvm_test_enter_user_mode(vm, 0, GUEST_COUNTER_ADDR, USER_STACK_TOP);
	kvm_test_check(vcpu_start(vm->vcpu[0], &e), &e);
	assert_int_equal(kvm_test_wait_write(vm, 0, PORT_READY, WAIT_MS), TAG_COUNTER);
	for (unsigned int i = 0; i < n; i++) {
		uint32_t c = kvm_test_wait_write(vm, 0, PORT_COUNT, WAIT_MS);
		assert_int_equal(c, count + STEP);
		expect_report(vm, c);
		count = c;
	}
	return count;
}

/* What a report cut by the pause still owes: the guest writes the count,
 * then XMM0, then EBX, and may stop between any two. */
struct cut_report {
	bool xmm_missing, ebx_missing;
};

static unsigned int unconsumed(struct kvm_test_vm *vm, uint16_t port)
{
	unsigned int n = 0;

	pthread_mutex_lock(&vm->lock);
	for (unsigned int i = 0; i < vm->nr_writes; i++)
		n += !vm->writes[i].consumed && vm->writes[i].port == port;
	pthread_mutex_unlock(&vm->lock);
	return n;
}

/* After the pause: checks the reports the guest made before stopping and
 * returns the last count. */
static uint32_t drain_reports(struct kvm_test_vm *vm, uint32_t count, struct cut_report *ret)
{
	unsigned int counts = unconsumed(vm, PORT_COUNT), xmms = unconsumed(vm, PORT_CHECK),
		     ebxs = unconsumed(vm, PORT_CHECK + 1);

	assert_true(counts >= xmms && xmms >= ebxs && counts - ebxs <= 1);
	for (unsigned int i = 0; i < counts; i++) {
		uint32_t c = kvm_test_wait_write(vm, 0, PORT_COUNT, WAIT_MS);
		assert_int_equal(c, count + STEP);
		if (i < xmms)
			assert_int_equal(kvm_test_wait_write(vm, 0, PORT_CHECK, WAIT_MS), c);
		if (i < ebxs)
			assert_int_equal(kvm_test_wait_write(vm, 0, PORT_CHECK + 1, WAIT_MS), 3 * c);
		count = c;
	}
	ret->xmm_missing = xmms < counts;
	ret->ebx_missing = ebxs < counts;
	return count;
}

/* Index of IA32_TSC in a state's MSR list. */
static unsigned int tsc_slot(const struct vcpu_state *s)
{
	for (unsigned int i = 0; i < s->nr_msrs; i++)
		if (s->msrs[i].index == MSR_IA32_TSC)
			return i;
	fail_msg("IA32_TSC is not in the saved MSRs");
	return 0;
}

static uint32_t lapic_reg(const struct kvm_lapic_state *l, unsigned int off)
{
	uint32_t v;

	memcpy(&v, &l->regs[off], 4);
	return v;
}

static void set_lapic_reg(struct kvm_lapic_state *l, unsigned int off, uint32_t v)
{
	memcpy(&l->regs[off], &v, 4);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- round trips */

/*
 * A round trip: every vCPU of a VM saved, serialized, parsed and loaded
 * into a fresh VM with the same memory and CPU model, and saved again.
 * The two saves must be the same bytes except for what runs on by itself
 * while the vCPUs are stopped, which is compared to what KVM holds: the
 * TSC (KVM's value after the load, against the saved one) and, when a
 * LAPIC timer is armed, its current count.
 */
struct round_trip {
	unsigned int n;
	struct kvm_test_vm *from, *to;
	struct vcpu_state saved[KVM_TEST_MAX_VCPUS], again[KVM_TEST_MAX_VCPUS];
	bool timer_armed;
	bool tsc_writes_honoured;
	uint64_t tsc_probe;	/* what the TSC probe read back */
	uint64_t saved_at_ns, again_at_ns;
};

static void round_trip_release(struct round_trip *rt)
{
	for (unsigned int i = 0; i < rt->n; i++) {
		vcpu_state_release(&rt->saved[i]);
		vcpu_state_release(&rt->again[i]);
	}
}

static void pause_vcpu(struct vcpu *v)
{
	vcpu_pause(v);
	vcpu_wait_paused(v);
}

static void save_vcpus(struct kvm_test_vm *vm, unsigned int n, struct vcpu_state *out)
{
	struct error e;

	for (unsigned int i = 0; i < n; i++)
		kvm_test_check(vcpu_state_save(vm->vcpu[i], &out[i], &e), &e);
}

/* Through the bytes, as a snapshot file would carry it. */
static void load_serialized(struct vcpu *v, const struct vcpu_state *s)
{
	_cleanup_free_ void *bytes = NULL;
	_cleanup_free_ struct vcpu_state_problems *problems = calloc(1, sizeof(*problems));
	struct vcpu_state parsed = { 0 };
	size_t len;
	struct error e;

	assert_non_null(problems);
	kvm_test_check(vcpu_state_serialize(s, &bytes, &len, &e), &e);
	kvm_test_check(vcpu_state_parse(bytes, len, &parsed, NULL, &e), &e);
	if (vcpu_state_load(v, &parsed, problems, &e) < 0) {
		for (unsigned int i = 0; i < problems->count; i++)
			print_message("problem: %s\n", problems->msg[i]);
		fail_msg("%s", e.msg);
	}
	vcpu_state_release(&parsed);
}

/* Saves the n stopped vCPUs of rt->from, loads them into a new VM
 * (rt->to) and saves that again. */
static void round_trip_run(struct round_trip *rt)
{
	save_vcpus(rt->from, rt->n, rt->saved);
	rt->saved_at_ns = now_ns();
	rt->to = kvm_test_vm_new(rt->n);
	memcpy(rt->to->ram, rt->from->ram, KVM_TEST_RAM_SIZE);
	/* The probe clobbers the TSC, which the load then writes. */
	rt->tsc_writes_honoured = kvm_test_tsc_writes_honoured(rt->to->vcpu[0], &rt->tsc_probe);
	for (unsigned int i = 0; i < rt->n; i++)
		load_serialized(rt->to->vcpu[i], &rt->saved[i]);
	save_vcpus(rt->to, rt->n, rt->again);
	rt->again_at_ns = now_ns();
}

/* The state's bytes with the clock-driven values zeroed. */
static void *bytes_without_clocks(const struct vcpu_state *s, bool timer_armed, size_t *ret_len)
{
	struct vcpu_state c;
	void *bytes = NULL;
	struct error e;

	kvm_test_check(vcpu_state_copy(s, &c, &e), &e);
	c.msrs[tsc_slot(&c)].value = 0;
	if (timer_armed)
		set_lapic_reg(&c.lapic, APIC_TIMER_CURRENT, 0);
	kvm_test_check(vcpu_state_serialize(&c, &bytes, ret_len, &e), &e);
	vcpu_state_release(&c);
	return bytes;
}

static void assert_same_bytes_but_clocks(const struct round_trip *rt, unsigned int i)
{
	size_t len1, len2;
	_cleanup_free_ uint8_t *b1 = bytes_without_clocks(&rt->saved[i], rt->timer_armed, &len1);
	_cleanup_free_ uint8_t *b2 = bytes_without_clocks(&rt->again[i], rt->timer_armed, &len2);

	assert_int_equal(len1, len2);
	for (size_t off = 0; off < len1; off++)
		if (b1[off] != b2[off])
			fail_msg("vcpu %u: the second save differs at byte %zu of %zu (0x%02x, was 0x%02x)", i,
				 off, len1, b2[off], b1[off]);
}

/*
 * The TSC KVM holds after the load (what vcpu_write_tsc() read back) is
 * the saved one, give or take the moments between the write and the read.
 * A host that ignores TSC writes cannot restore it: reported as a partial
 * skip, with both values.
 */
static void assert_tsc_restored(const struct round_trip *rt, unsigned int i, const char *test)
{
	uint64_t saved = rt->saved[i].msrs[tsc_slot(&rt->saved[i])].value;
	uint64_t loaded = rt->again[i].msrs[tsc_slot(&rt->again[i])].value;
	uint64_t one_second = (uint64_t)rt->saved[i].tsc_khz * 1000;

	if (!rt->tsc_writes_honoured) {
		if (i == 0)
			kvm_test_print_skip(test,
					    "(partial) IA32_TSC not compared: KVM on this host ignores TSC writes "
					    "(wrote 2^50, read 0x%llx), so the loaded vCPU holds the host's TSC "
					    "0x%llx, not the saved 0x%llx; every other byte of the second save is "
					    "identical",
					    (unsigned long long)rt->tsc_probe, (unsigned long long)loaded,
					    (unsigned long long)saved);
		return;
	}
	if (loaded < saved || loaded - saved >= one_second)
		fail_msg("vcpu %u: TSC 0x%llx after loading 0x%llx", i, (unsigned long long)loaded,
			 (unsigned long long)saved);
}

/*
 * An armed LAPIC timer counts down while the vCPUs are stopped (KVM runs
 * it on host time): the second save's current count is lower by at most
 * the time between the saves, at KVM's 1 GHz APIC bus and the divide of
 * 128 the tests use, and the timer has not expired.
 */
static void assert_timer_counts_on(const struct round_trip *rt, unsigned int i)
{
	uint32_t before = lapic_reg(&rt->saved[i].lapic, APIC_TIMER_CURRENT);
	uint32_t after = lapic_reg(&rt->again[i].lapic, APIC_TIMER_CURRENT);
	uint64_t bound = (rt->again_at_ns - rt->saved_at_ns + 100000000ULL) / 128;

	if (after == 0 || after > before || before - after > bound)
		fail_msg("vcpu %u: LAPIC timer count 0x%x after the round trip, 0x%x before (%llu ns apart)",
			 i, after, before, (unsigned long long)(rt->again_at_ns - rt->saved_at_ns));
}

static void assert_round_trip(const struct round_trip *rt, const char *test)
{
	for (unsigned int i = 0; i < rt->n; i++) {
		assert_same_bytes_but_clocks(rt, i);
		assert_tsc_restored(rt, i, test);
		if (rt->timer_armed)
			assert_timer_counts_on(rt, i);
	}
}

/* The loaded counter guest goes on from where it stopped: no report lost
 * or repeated, and its SSE and general registers agree. */
static void expect_counting_on(struct kvm_test_vm *vm, uint32_t last, const struct cut_report *cut)
{
	struct error e;

	kvm_test_check(vcpu_start(vm->vcpu[0], &e), &e);
	if (cut->xmm_missing)
		assert_int_equal(kvm_test_wait_write(vm, 0, PORT_CHECK, WAIT_MS), last);
	if (cut->ebx_missing)
		assert_int_equal(kvm_test_wait_write(vm, 0, PORT_CHECK + 1, WAIT_MS), 3 * last);
	for (int i = 0; i < 3; i++) {
		uint32_t next = kvm_test_wait_write(vm, 0, PORT_COUNT, WAIT_MS);
		assert_int_equal(next, last + STEP);
		expect_report(vm, next);
		last = next;
	}
}

/* The counter guest on vCPU 0 of rt->from, paused after a few reports;
 * returns the last count. */
static uint32_t counter_paused(struct round_trip *rt, unsigned int n, struct cut_report *cut)
{
	uint32_t last;

	rt->n = n;
	rt->from = kvm_test_vm_new(n);
	last = start_counter(rt->from, 3);
	pause_vcpu(rt->from->vcpu[0]);
	return drain_reports(rt->from, last, cut);
}

static int rt_setup(void **state)
{
	*state = calloc(1, sizeof(struct round_trip));
	return *state ? 0 : -1;
}

static int rt_teardown(void **state)
{
	struct round_trip *rt = *state;

	round_trip_release(rt);
	kvm_test_vm_free(rt->from);
	kvm_test_vm_free(rt->to);
	free(rt);
	return 0;
}

static void test_round_trip_into_a_fresh_vm(void **state)
{
	struct round_trip *rt = *state;
	union mmu_role role_a, role_b;
	struct mmu_role_regs regs;
	struct cut_report cut;
	uint32_t last;
	struct error e;

	last = counter_paused(rt, 1, &cut);
	/* vmmd's MMU view of the paused vCPU: 4-level paging, from its registers. */
	kvm_test_check(vcpu_mmu_role(rt->from->vcpu[0], &role_a, &regs, &e), &e);
	assert_int_equal(mmu_role_mode(role_a), MMU_MODE_4LEVEL);
	round_trip_run(rt);
	/* Paused in the ring-3 loop (or on one of its OUTs), with SSE enabled. */
	assert_int_equal(rt->saved[0].sregs.cs.selector, 0x1B);
	assert_true(rt->saved[0].sregs.cr4 & MMU_CR4_OSFXSR);
	assert_true(regs.cr0 == rt->saved[0].sregs.cr0 && regs.cr4 == rt->saved[0].sregs.cr4 &&
		    regs.efer == rt->saved[0].sregs.efer);
	/* The loaded vCPU has the same MMU role. */
	kvm_test_check(vcpu_mmu_role(rt->to->vcpu[0], &role_b, NULL, &e), &e);
	assert_int_equal(role_b.word, role_a.word);
	assert_round_trip(rt, __func__);
	expect_counting_on(rt->to, last, &cut);
}

/* Spins until vCPU i of vm is halted (KVM_MP_STATE_HALTED), leaving it paused. */
static void pause_when_halted(struct kvm_test_vm *vm, unsigned int i)
{
	struct kvm_mp_state mp = { 0 };
	struct error e;

	for (int tries = 0; tries < 2000; tries++) {
		pause_vcpu(vm->vcpu[i]);
		kvm_test_check(vcpu_get_mp_state(vm->vcpu[i], &mp, &e), &e);
		if (mp.mp_state == KVM_MP_STATE_HALTED)
			return;
		vcpu_resume(vm->vcpu[i]);
		usleep(1000);
	}
	fail_msg("vcpu %u never halted (MP state %u)", i, mp.mp_state);
}

/*
 * Three vCPUs in three MP states: the BSP running (the counter, paused),
 * an AP waiting for its SIPI after a RESET (INIT_RECEIVED), and an AP
 * halted with interrupts off (HALTED). Each comes back in its state, and
 * the loaded VM runs on: the counter counts, the others stay put.
 */
static void test_round_trip_of_an_smp_vm_in_three_mp_states(void **state)
{
	struct round_trip *rt = *state;
	struct cut_report cut;
	uint32_t last;
	struct error e;

	last = counter_paused(rt, 3, &cut);
	kvm_test_check(vcpu_reset(rt->from->vcpu[1], VCPU_RESET_POWER_ON, NULL, &e), &e);
	kvm_test_load(rt->from, GUEST_HALT_ADDR, guest_halt, GUEST_SIZE(guest_halt));
	kvm_test_enter_protected_mode(rt->from, 2, GUEST_HALT_ADDR, 0x8000, 0, 0);
	kvm_test_check(vcpu_start(rt->from->vcpu[2], &e), &e);
	assert_int_equal(kvm_test_wait_write(rt->from, 2, PORT_READY, WAIT_MS), TAG_HALT);
	pause_when_halted(rt->from, 2);
	round_trip_run(rt);
	assert_int_equal(rt->saved[0].mp_state.mp_state, KVM_MP_STATE_RUNNABLE);
	assert_int_equal(rt->saved[1].mp_state.mp_state, KVM_MP_STATE_INIT_RECEIVED);
	assert_int_equal(rt->saved[2].mp_state.mp_state, KVM_MP_STATE_HALTED);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(rt->again[i].mp_state.mp_state, rt->saved[i].mp_state.mp_state);
	assert_round_trip(rt, __func__);

	for (unsigned int i = 1; i < 3; i++)
		kvm_test_check(vcpu_start(rt->to->vcpu[i], &e), &e);
	expect_counting_on(rt->to, last, &cut);
	for (unsigned int i = 1; i < 3; i++) {
		struct kvm_mp_state mp;
		pause_vcpu(rt->to->vcpu[i]);
		kvm_test_check(vcpu_get_mp_state(rt->to->vcpu[i], &mp, &e), &e);
		assert_int_equal(mp.mp_state, rt->saved[i].mp_state.mp_state);
	}
	pthread_mutex_lock(&rt->to->lock);
	for (unsigned int i = 0; i < rt->to->nr_writes; i++)
		assert_int_equal(rt->to->writes[i].vcpu, 0);
	pthread_mutex_unlock(&rt->to->lock);
}

/*
 * An exception injected with its error code (#GP, 0x18), an NMI pending
 * and an interrupt shadow: KVM keeps them in the vCPU events, the round
 * trip brings them back. (The vCPU is not run afterwards: the counter
 * guest has no IDT to take them.)
 */
static void test_round_trip_with_pending_events(void **state)
{
	struct round_trip *rt = *state;
	struct kvm_vcpu_events ev;
	struct cut_report cut;
	struct error e;

	counter_paused(rt, 1, &cut);
	kvm_test_check(vcpu_get_events(rt->from->vcpu[0], &ev, &e), &e);
	ev.exception.injected = 1;
	ev.exception.nr = 13;
	ev.exception.has_error_code = 1;
	ev.exception.error_code = 0x18;
	ev.nmi.pending = 1;
	ev.interrupt.shadow = KVM_X86_SHADOW_INT_MOV_SS;
	ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
	kvm_test_check(vcpu_set_events(rt->from->vcpu[0], &ev, &e), &e);
	round_trip_run(rt);
	ev = rt->saved[0].events;
	assert_int_equal(ev.exception.injected, 1);
	assert_int_equal(ev.exception.nr, 13);
	assert_int_equal(ev.exception.has_error_code, 1);
	assert_int_equal(ev.exception.error_code, 0x18);
	assert_int_equal(ev.nmi.pending, 1);
	assert_int_equal(ev.interrupt.shadow, KVM_X86_SHADOW_INT_MOV_SS);
	assert_memory_equal(&rt->again[0].events, &rt->saved[0].events, sizeof(ev));
	assert_round_trip(rt, __func__);
}

/*
 * Debug registers with a breakpoint armed: DR1 a data-write watch on an
 * address the guest never touches (DR7: L1, R/W1 = 01, LEN1 = 11), the
 * others holding addresses. The loaded guest runs on under them.
 */
static void test_round_trip_with_armed_debug_registers(void **state)
{
	struct round_trip *rt = *state;
	struct kvm_debugregs d = {
		.db = { 0x111000, 0x123000, 0x222000, 0x333000 },
		.dr6 = X86_DR6_RESET,
		.dr7 = X86_DR7_RESET | (1ULL << 2) | (1ULL << 20) | (3ULL << 22),
	};
	struct cut_report cut;
	uint32_t last;
	struct error e;

	last = counter_paused(rt, 1, &cut);
	kvm_test_check(vcpu_set_debugregs(rt->from->vcpu[0], &d, &e), &e);
	round_trip_run(rt);
	for (int i = 0; i < 4; i++)
		assert_true(rt->saved[0].debugregs.db[i] == d.db[i]);
	assert_true(rt->saved[0].debugregs.dr7 == d.dr7);
	assert_memory_equal(&rt->again[0].debugregs, &rt->saved[0].debugregs, sizeof(d));
	assert_round_trip(rt, __func__);
	expect_counting_on(rt->to, last, &cut);
}

/* LVT timer: one-shot, unmasked, vector 0x40; divide configuration 0xA
 * (divide by 128, SDM Vol. 3A §10.5.4); the APIC software-enabled. */
#define TIMER_LVT 0x40
#define TIMER_DIVIDE_128 0xA
#define APIC_SVR_ENABLE 0x100

/*
 * A LAPIC timer armed (one-shot, the largest initial count: about 9
 * minutes at 1 GHz / 128) comes back armed, counting on from about where
 * it was. The guest runs with interrupts off, so it never takes it.
 */
static void test_round_trip_with_an_armed_lapic_timer(void **state)
{
	struct round_trip *rt = *state;
	struct kvm_lapic_state l;
	struct cut_report cut;
	uint32_t last;
	struct error e;

	last = counter_paused(rt, 1, &cut);
	kvm_test_check(vcpu_get_lapic(rt->from->vcpu[0], &l, &e), &e);
	set_lapic_reg(&l, APIC_SPURIOUS, APIC_SVR_ENABLE | 0xFF);
	set_lapic_reg(&l, APIC_LVT_TIMER, TIMER_LVT);
	set_lapic_reg(&l, APIC_TIMER_DIVIDE, TIMER_DIVIDE_128);
	set_lapic_reg(&l, APIC_TIMER_INITIAL, 0xFFFFFFFF);
	/* KVM_SET_LAPIC starts the timer from the current count it is given. */
	set_lapic_reg(&l, APIC_TIMER_CURRENT, 0xFFFFFFFF);
	kvm_test_check(vcpu_set_lapic(rt->from->vcpu[0], &l, &e), &e);
	rt->timer_armed = true;
	round_trip_run(rt);
	for (unsigned int i = 0; i < 2; i++) {
		const struct kvm_lapic_state *s = i ? &rt->again[0].lapic : &rt->saved[0].lapic;
		assert_int_equal(lapic_reg(s, APIC_LVT_TIMER), TIMER_LVT);
		assert_int_equal(lapic_reg(s, APIC_TIMER_DIVIDE), TIMER_DIVIDE_128);
		assert_int_equal(lapic_reg(s, APIC_TIMER_INITIAL), 0xFFFFFFFF);
		assert_true(lapic_reg(s, APIC_TIMER_CURRENT) != 0);
	}
	assert_round_trip(rt, __func__);
	expect_counting_on(rt->to, last, &cut);
}

/* YMM_Hi128 of the AVX test: bytes 0x80..0x17F. */
static void ymm_pattern(uint8_t *p)
{
	for (int i = 0; i < 256; i++)
		p[i] = (uint8_t)(0x80 + i);
}

/*
 * AVX state enabled in XCR0 (x87 | SSE | AVX) with the upper halves of
 * the YMM registers set in the XSAVE image, where the vCPU's CPU model
 * has AVX state (CPUID.(EAX=0DH,ECX=0):EAX[2]).
 */
static void test_round_trip_with_avx_enabled(void **state)
{
	struct round_trip *rt = *state;
	const uint64_t xcr0 = X86_XFEATURE_X87 | X86_XFEATURE_SSE | X86_XFEATURE_YMM;
	struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs[0] = { .xcr = 0, .value = xcr0 } };
	_cleanup_free_ struct kvm_xsave *x = NULL;
	struct kvm_cpuid_entry2 *leaf, *ymm;
	struct cut_report cut;
	uint8_t want[256];
	uint64_t bv;
	size_t size;
	uint32_t last;
	struct error e;

	last = counter_paused(rt, 1, &cut);
	leaf = vcpu_cpuid_entry(rt->from->cpuid, 0xD, 0);
	ymm = vcpu_cpuid_entry(rt->from->cpuid, 0xD, 2);
	if (!leaf || !(leaf->eax & X86_XFEATURE_YMM) || !ymm || !vcpu_has_xcrs(rt->from->vcpu[0]))
		KVM_TEST_SKIP("the vCPU's CPU model has no AVX state (CPUID.(EAX=0DH,ECX=0):EAX[2] clear) "
			      "or KVM has no KVM_CAP_XCRS: XCR0 cannot enable AVX");
	kvm_test_check(vcpu_set_xcrs(rt->from->vcpu[0], &xcrs, &e), &e);
	kvm_test_check(vcpu_get_xsave(rt->from->vcpu[0], &x, &size, &e), &e);
	assert_true(ymm->ebx + 256 <= size);
	ymm_pattern((uint8_t *)x->region + ymm->ebx);
	memcpy(&bv, (uint8_t *)x->region + XSAVE_XSTATE_BV, 8);
	bv |= X86_XFEATURE_YMM;
	memcpy((uint8_t *)x->region + XSAVE_XSTATE_BV, &bv, 8);
	kvm_test_check(vcpu_set_xsave(rt->from->vcpu[0], x, size, &e), &e);
	round_trip_run(rt);
	ymm_pattern(want);
	for (unsigned int i = 0; i < 2; i++) {
		const struct vcpu_state *s = i ? &rt->again[0] : &rt->saved[0];
		assert_true(s->has_xcrs && s->xcrs.xcrs[0].value == xcr0);
		memcpy(&bv, (uint8_t *)s->xsave->region + XSAVE_XSTATE_BV, 8);
		assert_true(bv & X86_XFEATURE_YMM);
		assert_memory_equal((uint8_t *)s->xsave->region + ymm->ebx, want, 256);
	}
	assert_round_trip(rt, __func__);
	expect_counting_on(rt->to, last, &cut);
}

/*
 * A state saved at one TSC frequency loads into a vCPU at another when
 * KVM can scale (KVM_CAP_TSC_CONTROL): the loaded vCPU runs at the saved
 * frequency.
 */
static void test_round_trip_at_another_tsc_frequency(void **state)
{
	struct round_trip *rt = *state;
	uint32_t khz, loaded_khz;
	struct error e;

	rt->n = 1;
	rt->from = kvm_test_vm_new(1);
	if (ioctl(rt->from->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL) <= 0)
		KVM_TEST_SKIP("KVM_CAP_TSC_CONTROL is absent on this host: KVM cannot run a vCPU at "
			      "another TSC frequency, so no state can be loaded at one it was not saved "
			      "at (vcpu_state_check() refuses it, unit-tested)");
	/* The counter on a vCPU running at 90 % of the host's frequency. */
	kvm_test_check(vcpu_get_tsc_khz(rt->from->vcpu[0], &khz, &e), &e);
	assert_int_equal(ioctl(vcpu_fd(rt->from->vcpu[0]), KVM_SET_TSC_KHZ,
			       (unsigned long)(khz - khz / 10)), 0);
	start_counter(rt->from, 1);
	pause_vcpu(rt->from->vcpu[0]);
	round_trip_run(rt);
	assert_int_equal(rt->saved[0].tsc_khz, khz - khz / 10);
	kvm_test_check(vcpu_get_tsc_khz(rt->to->vcpu[0], &loaded_khz, &e), &e);
	assert_int_equal(loaded_khz, khz - khz / 10);
	assert_round_trip(rt, __func__);
}

/*
 * PAE paging with the PDPTEs KVM caches (KVM_SREGS2_FLAGS_PDPTRS_VALID):
 * a vCPU that holds them saves them and a loaded one holds them again.
 * Hosts that cannot run PAE guests do not hold such a state at all.
 */
static void test_round_trip_with_pae_pdptes(void **state)
{
	struct round_trip *rt = *state;
	struct kvm_sregs2 s;
	struct error e;

	rt->n = 1;
	rt->from = kvm_test_vm_new(1);
	kvm_test_enter_protected_mode(rt->from, 0, GUEST_SPIN_ADDR, 0x8000, MMU_CR0_PG, MMU_CR4_PAE);
	kvm_test_check(vcpu_get_sregs2(rt->from->vcpu[0], &s, &e), &e);
	s.cr0 |= MMU_CR0_PG | MMU_CR0_PE;
	s.cr4 |= MMU_CR4_PAE;
	s.efer = 0;
	s.cr3 = 0x30000;
	s.flags = KVM_SREGS2_FLAGS_PDPTRS_VALID;
	for (int i = 0; i < 4; i++)
		s.pdptrs[i] = 0x31001 + 0x1000 * (uint64_t)i;
	if (vcpu_set_sregs2(rt->from->vcpu[0], &s, &e) < 0)
		KVM_TEST_SKIP("KVM on this host refuses PAE paging with PDPTEs in KVM_SET_SREGS2 (%s)",
			      e.msg);
	kvm_test_check(vcpu_get_sregs2(rt->from->vcpu[0], &s, &e), &e);
	if (!(s.cr0 & MMU_CR0_PG) || !(s.flags & KVM_SREGS2_FLAGS_PDPTRS_VALID))
		KVM_TEST_SKIP("KVM on this host does not hold PAE paging: after KVM_SET_SREGS2 with CR0.PG, "
			      "CR4.PAE and four PDPTEs it reads back CR0 0x%llx and sregs2 flags 0x%llx "
			      "(legacy paging cannot be enabled here, docs/host-notes.md); the PDPTE round "
			      "trip needs a host that runs PAE guests",
			      (unsigned long long)s.cr0, (unsigned long long)s.flags);
	round_trip_run(rt);
	for (unsigned int i = 0; i < 2; i++) {
		const struct kvm_sregs2 *r = i ? &rt->again[0].sregs : &rt->saved[0].sregs;
		assert_true(r->flags & KVM_SREGS2_FLAGS_PDPTRS_VALID);
		for (int j = 0; j < 4; j++)
			assert_true(r->pdptrs[j] == s.pdptrs[j]);
	}
	assert_round_trip(rt, __func__);
}

/* The MSRs KVM handles for userspace without listing them (docs/vcpu.md
 * §4): the MTRRs, IA32_XSS, IA32_TSC_AUX. */
static bool unlisted_saved_msr(uint32_t index)
{
	return (index >= 0x200 && index <= 0x20F) || index == 0x250 || index == 0x258 ||
	       index == 0x259 || (index >= 0x268 && index <= 0x26F) || index == 0x2FF ||
	       index == MSR_IA32_XSS || index == MSR_TSC_AUX;
}

static bool raw_msr_readable(struct vcpu *v, uint32_t index)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e.index = index };

	return ioctl(vcpu_fd(v), KVM_GET_MSRS, &m) == 1;
}

static bool saved_has_msr(const struct vcpu_state *s, uint32_t index)
{
	for (unsigned int i = 0; i < s->nr_msrs; i++)
		if (s->msrs[i].index == index)
			return true;
	return false;
}

/*
 * The saved MSRs are exactly the indices of KVM_GET_MSR_INDEX_LIST that
 * KVM_GET_MSRS reads on this vCPU, plus the unlisted ones it reads: asked
 * of KVM here directly, not through vcpu/.
 */
static void test_saved_msrs_are_every_readable_listed_index(void **state)
{
	struct two_vms *t = *state;
	struct {
		struct kvm_msr_list hdr;
		uint32_t idx[VCPU_STATE_MAX_MSRS];
	} list = { .hdr.nmsrs = VCPU_STATE_MAX_MSRS };
	struct vcpu_state s = { 0 };
	struct vcpu *v;
	unsigned int readable = 0, unreadable = 0;
	struct error e;

	t->a = kvm_test_vm_new(1);
	v = t->a->vcpu[0];
	start_counter(t->a, 1);
	pause_vcpu(v);
	kvm_test_check(vcpu_state_save(v, &s, &e), &e);
	assert_int_equal(ioctl(t->a->kvm_fd, KVM_GET_MSR_INDEX_LIST, &list), 0);
	for (unsigned int i = 0; i < list.hdr.nmsrs; i++) {
		bool r = raw_msr_readable(v, list.idx[i]);
		readable += r;
		unreadable += !r;
		if (r != saved_has_msr(&s, list.idx[i]))
			fail_msg("MSR 0x%x of KVM_GET_MSR_INDEX_LIST is %sreadable but %ssaved", list.idx[i],
				 r ? "" : "not ", saved_has_msr(&s, list.idx[i]) ? "" : "not ");
	}
	for (unsigned int i = 0; i < s.nr_msrs; i++) {
		bool listed = false;
		for (unsigned int j = 0; j < list.hdr.nmsrs; j++)
			listed |= list.idx[j] == s.msrs[i].index;
		if (!listed && !unlisted_saved_msr(s.msrs[i].index))
			fail_msg("MSR 0x%x is saved but neither listed by KVM nor one of the documented extras",
				 s.msrs[i].index);
		if (!raw_msr_readable(v, s.msrs[i].index))
			fail_msg("MSR 0x%x is saved but KVM_GET_MSRS does not read it", s.msrs[i].index);
	}
	print_message("KVM lists %u MSRs: %u readable on this vCPU and saved, %u not; %u saved in all\n",
		      list.hdr.nmsrs, readable, unreadable, s.nr_msrs);
	assert_true(readable > 0);
	vcpu_state_release(&s);
}

/*
 * CR4 bits KVM accepted on one vCPU pass the check for an identical one:
 * the check must hold the target to the CPU model KVM enforces (the CPUID
 * the vCPU holds), which some KVMs widen beyond the one vmmd set.
 */
static void test_cr4_bits_kvm_accepts_pass_the_check(void **state)
{
	static const uint64_t candidates[] = { MMU_CR4_SMEP, MMU_CR4_SMAP };
	struct two_vms *t = *state;
	struct vcpu_state saved = { 0 };
	struct vcpu_state_problems problems = { 0 };
	struct kvm_sregs2 s;
	unsigned int accepted = 0;
	struct error e;

	t->a = kvm_test_vm_new(1);
	start_counter(t->a, 1);
	pause_vcpu(t->a->vcpu[0]);
	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
		kvm_test_check(vcpu_get_sregs2(t->a->vcpu[0], &s, &e), &e);
		s.cr4 |= candidates[i];
		/* Only what KVM takes counts; a refusal is KVM's right. */
		accepted += vcpu_set_sregs2(t->a->vcpu[0], &s, NULL) == 0;
	}
	kvm_test_check(vcpu_state_save(t->a->vcpu[0], &saved, &e), &e);
	t->b = kvm_test_vm_new(1);
	kvm_test_check(vcpu_state_check(t->b->vcpu[0], &saved, &problems, &e), &e);
	for (unsigned int i = 0; i < problems.count; i++)
		print_message("problem: %s\n", problems.msg[i]);
	assert_int_equal(problems.count, 0);
	if (!accepted)
		kvm_test_print_skip(__func__, "(partial) KVM took neither CR4.SMEP nor CR4.SMAP: "
					      "only the plain state was checked");
	vcpu_state_release(&saved);
}

static void test_save_refuses_a_running_vcpu(void **state)
{
	struct two_vms *t = *state;
	struct vcpu_state s = { 0 };
	struct error e;

	t->a = kvm_test_vm_new(1);
	start_counter(t->a, 1);
	assert_int_equal(vcpu_state_save(t->a->vcpu[0], &s, &e), -EBUSY);
	assert_string_equal(e.msg, "vcpu 0 is running: pause it before saving its state");
	assert_int_equal(vcpu_state_load(t->a->vcpu[0], &s, NULL, &e), -EBUSY);
	assert_null(s.msrs);
}

/* ---------------------------------------------------------------- refusals */

typedef void (*corrupt_fn)(struct vcpu_state *s);

static void wrong_vcpu(struct vcpu_state *s)
{
	s->vcpu_id = 1;
}

static void rflags_bit1_clear(struct vcpu_state *s)
{
	s->regs.rflags &= ~2ULL;
}

static void dr7_high_bits(struct vcpu_state *s)
{
	s->debugregs.dr7 |= 1ULL << 40;
}

static void dr6_high_bits(struct vcpu_state *s)
{
	s->debugregs.dr6 |= 1ULL << 40;
}

static void debugregs_flags(struct vcpu_state *s)
{
	s->debugregs.flags = 1;
}

static void apic_base_reserved(struct vcpu_state *s)
{
	s->sregs.apic_base |= 1ULL << 9;
}

static void x2apic_disabled(struct vcpu_state *s)
{
	s->sregs.apic_base = X86_APIC_DEFAULT_BASE | X86_APIC_BASE_BSP | X86_APIC_BASE_EXTD;
}

static void sregs2_unknown_flags(struct vcpu_state *s)
{
	s->sregs.flags = 0x6;
}

static void lapic_id_of_other_vcpu(struct vcpu_state *s)
{
	s->lapic.regs[APIC_ID + 3] = 5;
}

static void nmi_as_exception(struct vcpu_state *s)
{
	s->events.exception.injected = 1;
	s->events.exception.nr = 2;
}

static void nmi_masked_2(struct vcpu_state *s)
{
	s->events.nmi.masked = 2;
}

static void events_payload(struct vcpu_state *s)
{
	s->events.flags |= KVM_VCPUEVENT_VALID_PAYLOAD;
}

static void events_in_smm(struct vcpu_state *s)
{
	s->events.flags |= KVM_VCPUEVENT_VALID_SMM;
	s->events.smi.smm = 1;
}

static void mp_state_unknown(struct vcpu_state *s)
{
	s->mp_state.mp_state = KVM_MP_STATE_AP_RESET_HOLD;
}

static void xcr0_without_x87(struct vcpu_state *s)
{
	s->has_xcrs = true;
	s->xcrs.nr_xcrs = 1;
	s->xcrs.xcrs[0].value = 0x2;
}

static void xcr_flags(struct vcpu_state *s)
{
	s->xcrs.flags = 1;
}

static void xsave_compacted(struct vcpu_state *s)
{
	uint64_t comp = 0x8000000000000003ULL;

	memcpy((uint8_t *)s->xsave->region + XSAVE_XCOMP_BV, &comp, 8);
}

static void xsave_mxcsr_reserved(struct vcpu_state *s)
{
	uint32_t mxcsr = 0x11F80;

	memcpy((uint8_t *)s->xsave->region + XSAVE_MXCSR, &mxcsr, 4);
}

static void cpu_model_differs(struct vcpu_state *s)
{
	for (unsigned int i = 0; i < s->nr_cpuid; i++)
		if (s->cpuid[i].function == 1)
			s->cpuid[i].ecx ^= 1U << 21;
}

static void other_tsc_khz(struct vcpu_state *s)
{
	s->tsc_khz /= 2;
}

static void unsupported_msr(struct vcpu_state *s)
{
	s->msrs[s->nr_msrs - 1].index = 0xC0DE0000;
}

/* Checked by the MMU validator (mmu_validate_vcpu_state()). */
static void paging_without_protection(struct vcpu_state *s)
{
	s->sregs.cr0 &= ~MMU_CR0_PE;
}

static void cr3_above_maxphyaddr(struct vcpu_state *s)
{
	s->sregs.cr3 |= 1ULL << 51;
}

static void cr4_bit_the_model_lacks(struct vcpu_state *s)
{
	s->sregs.cr4 |= MMU_CR4_SMXE;
}

static void nested_state_attached(struct vcpu_state *s)
{
	struct kvm_nested_state *n = calloc(1, 128);

	assert_non_null(n);
	n->size = 128;
	n->format = KVM_STATE_NESTED_FORMAT_VMX;
	n->hdr.vmx.vmxon_pa = -1ULL;
	n->hdr.vmx.vmcs12_pa = -1ULL;
	s->nested = n;
	s->nested_size = 128;
}

/* A row applies where KVM lacks what it needs (here: SMM, TSC scaling). */
enum needs { ANY_HOST, HOST_WITHOUT_SMM, HOST_WITHOUT_TSC_SCALING };

/*
 * Each corrupts one field of a state saved from a real vCPU; its message
 * is the one problem exactly ("%u" stands for the vCPU's MAXPHYADDR; NULL:
 * built from the saved state by expected_message()).
 * The unit tests (tests/unit/test-vcpu-state.c) cover every check with a
 * described target; these show, on KVM, that nothing of a refused state
 * is written. Rows marked alone change a field another row changes too
 * and stay out of the all-at-once load.
 */
static const struct {
	corrupt_fn fn;
	enum needs needs;
	bool alone;
	const char *message;
} corruptions[] = {
	{ wrong_vcpu, ANY_HOST, false, "the state is of vcpu 1, not vcpu 0" },
	{ rflags_bit1_clear, ANY_HOST, false, NULL /* built by the test: the saved RFLAGS */ },
	{ dr7_high_bits, ANY_HOST, false, "DR7 0x10000000400 sets bits 63:32" },
	{ dr6_high_bits, ANY_HOST, false, "DR6 0x100ffff0ff0 sets bits 63:32" },
	{ debugregs_flags, ANY_HOST, false, "debugregs flags 0x1 are unknown (must be 0)" },
	{ apic_base_reserved, ANY_HOST, false, "IA32_APIC_BASE 0xfee00b00 sets reserved bits (7:0, 9, or %u and above)" },
	{ x2apic_disabled, ANY_HOST, true, "IA32_APIC_BASE 0xfee00500: x2APIC mode (bit 10) with the APIC disabled (bit 11 clear) is invalid" },
	{ sregs2_unknown_flags, ANY_HOST, false, "sregs2 flags 0x6: bits 0x6 are unknown (KVM defines only PDPTRS_VALID, 0x1)" },
	{ lapic_id_of_other_vcpu, ANY_HOST, false, "local APIC ID 5 is not vcpu 0's APIC ID" },
	{ nmi_as_exception, ANY_HOST, false, "events: exception.nr 2 cannot be injected (0-31, not 2)" },
	{ nmi_masked_2, ANY_HOST, false, "events: nmi.masked is 2, must be 0 or 1" },
	{ events_payload, ANY_HOST, false, "events: an exception payload is given (flag VALID_PAYLOAD), but vmmd VMs do not enable KVM_CAP_EXCEPTION_PAYLOAD" },
	{ events_in_smm, HOST_WITHOUT_SMM, false, "events: smi.smm set, but KVM on this host has no SMM (KVM_CAP_X86_SMM)" },
	{ mp_state_unknown, ANY_HOST, false, "MP state 9 is not an x86 vCPU state (0-4)" },
	{ xcr0_without_x87, ANY_HOST, false, "XCR0 0x2 lacks x87 (bit 0 must be 1)" },
	{ xcr_flags, ANY_HOST, false, "XCR list: flags 0x1 are unknown (must be 0)" },
	{ xsave_compacted, ANY_HOST, false, "XSAVE image: XCOMP_BV 0x8000000000000003, the compacted format; KVM takes the standard one (XCOMP_BV 0)" },
	{ xsave_mxcsr_reserved, ANY_HOST, false, "XSAVE image: MXCSR 0x11f80 sets reserved bits 31:16 (SDM Vol. 1 §10.2.3)" },
	{ cpu_model_differs, ANY_HOST, false, "the saved CPU model differs from vcpu 0's (CPUID cannot change after the vCPU has run: entry 1 (leaf 0x1.0) differs in ECX); load into a VM with the same CPU model" },
	{ other_tsc_khz, HOST_WITHOUT_TSC_SCALING, false, NULL /* built by the test: it names both frequencies */ },
	{ paging_without_protection, ANY_HOST, false, "CR0.PG is set without CR0.PE (paging needs protected mode)" },
	{ cr3_above_maxphyaddr, ANY_HOST, false, "CR3 0x8000000030000 has bits at or above MAXPHYADDR (%u) set" },
	{ cr4_bit_the_model_lacks, ANY_HOST, false, "CR4.SMXE (bit 14) is set but the CPU model lacks it (CPUID.1:ECX[6])" },
	{ unsupported_msr, ANY_HOST, false, "MSR 0xc0de0000 is not supported by KVM for vcpu 0" },
	{ nested_state_attached, ANY_HOST, false, NULL /* where KVM has nested state, it is accepted */ },
};

static bool row_applies(struct kvm_test_vm *vm, size_t i)
{
	switch (corruptions[i].needs) {
	case HOST_WITHOUT_SMM:
		return ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_SMM) <= 0;
	case HOST_WITHOUT_TSC_SCALING:
		return ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL) <= 0;
	case ANY_HOST:
		break;
	}
	if (corruptions[i].fn == nested_state_attached)
		return ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE) <= 0;
	return true;
}

/* tmpl with its "%u", if any, replaced by MAXPHYADDR m. */
static void with_phys_bits(const char *tmpl, unsigned int m, char *buf, size_t size)
{
	const char *mark = strstr(tmpl, "%u");

	if (!mark)
		snprintf(buf, size, "%s", tmpl);
	else
		snprintf(buf, size, "%.*s%u%s", (int)(mark - tmpl), tmpl, m, mark + 2);
}

/* Row i's expected message on this vCPU. */
static void expected_message(struct kvm_test_vm *vm, const struct vcpu_state *good, size_t i,
			     char *buf, size_t size)
{
	if (corruptions[i].fn == rflags_bit1_clear)
		snprintf(buf, size, "RFLAGS 0x%llx: bit 1 must be 1 and bits 3, 5, 15 and 22-63 0",
			 (unsigned long long)(good->regs.rflags & ~2ULL));
	else if (corruptions[i].fn == other_tsc_khz)
		snprintf(buf, size,
			 "TSC frequency %u kHz differs from this host's %u kHz and KVM cannot scale it (no KVM_CAP_TSC_CONTROL)",
			 good->tsc_khz / 2, good->tsc_khz);
	else if (corruptions[i].fn == nested_state_attached)
		snprintf(buf, size,
			 "the state has nested virtualization state but KVM on this host lacks KVM_CAP_NESTED_STATE");
	else
		with_phys_bits(corruptions[i].message, vcpu_cpuid_phys_bits(vm->cpuid), buf, size);
}

static bool has_problem(const struct vcpu_state_problems *p, const char *msg)
{
	for (unsigned int i = 0; i < p->count; i++)
		if (strcmp(p->msg[i], msg) == 0)
			return true;
	return false;
}

static void test_inconsistent_state_refused_and_nothing_applied(void **state)
{
	struct two_vms *t = *state;
	struct vcpu *v;
	struct vcpu_state good = { 0 }, bad, after = { 0 };
	_cleanup_free_ struct vcpu_state_problems *p = calloc(1, sizeof(*p));
	_cleanup_free_ void *before_bytes = NULL;
	_cleanup_free_ void *after_bytes = NULL;
	char want[VCPU_STATE_PROBLEM_MAX], summary[VCPU_STATE_PROBLEM_MAX + 64];
	size_t before_len, after_len;
	unsigned int applied = 0, together = 0;
	struct error e;

	t->a = kvm_test_vm_new(1);
	v = t->a->vcpu[0];
	start_counter(t->a, 1);
	pause_vcpu(v);
	kvm_test_check(vcpu_state_save(v, &good, &e), &e);
	kvm_test_check(vcpu_state_serialize(&good, &before_bytes, &before_len, &e), &e);
	assert_non_null(good.xsave);

	/* One at a time: exactly its problem, with its message. */
	for (size_t i = 0; i < ARRAY_SIZE(corruptions); i++) {
		if (!row_applies(t->a, i))
			continue;
		applied++;
		expected_message(t->a, &good, i, want, sizeof(want));
		kvm_test_check(vcpu_state_copy(&good, &bad, &e), &e);
		corruptions[i].fn(&bad);
		assert_int_equal(vcpu_state_load(v, &bad, p, &e), -EINVAL);
		if (p->count != 1 || strcmp(p->msg[0], want) != 0)
			fail_msg("corruption %zu: %u problems, first \"%s\"; expected exactly \"%s\"", i,
				 p->count, p->count ? p->msg[0] : "", want);
		snprintf(summary, sizeof(summary), "state refused for vcpu 0: 1 problem, first: %s", want);
		assert_string_equal(e.msg, summary);
		vcpu_state_release(&bad);
	}

	/* All at once: all of them, each with its own message. */
	kvm_test_check(vcpu_state_copy(&good, &bad, &e), &e);
	for (size_t i = 0; i < ARRAY_SIZE(corruptions); i++)
		if (row_applies(t->a, i) && !corruptions[i].alone) {
			corruptions[i].fn(&bad);
			together++;
		}
	assert_int_equal(vcpu_state_load(v, &bad, p, &e), -EINVAL);
	print_message("%s\n", e.msg);
	for (unsigned int i = 0; i < p->count; i++)
		print_message("  problem: %s\n", p->msg[i]);
	assert_int_equal(p->count, together);
	for (size_t i = 0; i < ARRAY_SIZE(corruptions); i++)
		if (row_applies(t->a, i) && !corruptions[i].alone) {
			expected_message(t->a, &good, i, want, sizeof(want));
			if (!has_problem(p, want))
				fail_msg("corruption %zu: \"%s\" is not in the list", i, want);
		}
	vcpu_state_release(&bad);
	print_message("%u corruptions refused one by one, %u together\n", applied, together);

	/* Nothing was written: the vCPU saves exactly as before. */
	kvm_test_check(vcpu_state_save(v, &after, &e), &e);
	kvm_test_check(vcpu_state_serialize(&after, &after_bytes, &after_len, &e), &e);
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before_bytes, after_bytes, before_len);
	vcpu_state_release(&good);
	vcpu_state_release(&after);
}

static void test_nested_state(void **state)
{
	struct two_vms *t = *state;
	struct vcpu_state s = { 0 };
	_cleanup_free_ struct vcpu_state_problems *p = calloc(1, sizeof(*p));
	struct error e;

	t->a = kvm_test_vm_new(1);
	start_counter(t->a, 1);
	pause_vcpu(t->a->vcpu[0]);
	kvm_test_check(vcpu_state_save(t->a->vcpu[0], &s, &e), &e);
	if (ioctl(t->a->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE) <= 0) {
		/* What can be shown here: a state carrying nested state is refused. */
		assert_null(s.nested);
		nested_state_attached(&s);
		assert_int_equal(vcpu_state_load(t->a->vcpu[0], &s, p, &e), -EINVAL);
		assert_int_equal(p->count, 1);
		assert_true(has_problem(p, "the state has nested virtualization state but KVM on this host lacks KVM_CAP_NESTED_STATE"));
		vcpu_state_release(&s);
		KVM_TEST_SKIP("KVM_CAP_NESTED_STATE is absent on this host (no VMX/SVM): nested state "
			      "save and load through KVM cannot run; its serialization is unit-tested");
	}
	assert_non_null(s.nested);
	kvm_test_check(vcpu_state_load(t->a->vcpu[0], &s, p, &e), &e);
	vcpu_state_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_into_a_fresh_vm, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_of_an_smp_vm_in_three_mp_states,
						rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_with_pending_events, rt_setup,
						rt_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_with_armed_debug_registers, rt_setup,
						rt_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_with_an_armed_lapic_timer, rt_setup,
						rt_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_with_avx_enabled, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_at_another_tsc_frequency, rt_setup,
						rt_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_with_pae_pdptes, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_saved_msrs_are_every_readable_listed_index, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cr4_bits_kvm_accepts_pass_the_check, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_save_refuses_a_running_vcpu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inconsistent_state_refused_and_nothing_applied,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested_state, setup, teardown),
	};

	kvm_test_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
