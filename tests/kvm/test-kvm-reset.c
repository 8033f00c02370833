/* SPDX-License-Identifier: MIT */
/*
 * KVM tests of vcpu/reset: RESET and INIT written into real vCPUs, read
 * back group by group and compared with the computed state; the vCPU then
 * runs from the reset vector and reports what it sees; an AP reset by
 * vmmd starts on a SIPI; and vmmd's INIT against KVM's own INIT (an INIT
 * IPI through the in-kernel LAPIC).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/kvm/kvm-test.h"
#include "vcpu/cpuid.h"
#include "vcpu/reset.h"
#include "vcpu/state.h"
#include "vcpu/x86.h"

#define WAIT_MS 5000

static uint32_t lapic_reg(const struct kvm_lapic_state *l, unsigned int off)
{
	uint32_t v;

	memcpy(&v, &l->regs[off], 4);
	return v;
}

static void assert_segment_equal(const char *name, const struct kvm_segment *got,
				 const struct kvm_segment *want)
{
	if (got->selector != want->selector || got->base != want->base ||
	    got->limit != want->limit || got->type != want->type ||
	    got->present != want->present || got->dpl != want->dpl || got->db != want->db ||
	    got->s != want->s || got->l != want->l || got->g != want->g)
		fail_msg("%s: sel %x base %llx limit %x type %x p%u dpl%u db%u s%u l%u g%u; "
			 "expected sel %x base %llx limit %x type %x p%u dpl%u db%u s%u l%u g%u",
			 name, got->selector, got->base, got->limit, got->type, got->present, got->dpl,
			 got->db, got->s, got->l, got->g, want->selector, want->base, want->limit,
			 want->type, want->present, want->dpl, want->db, want->s, want->l, want->g);
}

static void assert_u64(const char *what, uint64_t got, uint64_t want)
{
	if (got != want)
		fail_msg("%s is 0x%llx, expected 0x%llx", what, (unsigned long long)got,
			 (unsigned long long)want);
}

/* LAPIC registers KVM computes itself: PPR (from TPR/ISR), the current
 * count (from the timer), and the read-only arbitration priority. */
static bool lapic_reg_is_derived(unsigned int off)
{
	return off == 0x90 || off == 0xA0 || off == APIC_TIMER_CURRENT;
}

/* Why KVM may not read an MSR of the reset list. */
static const char *msr_note(uint32_t index)
{
	if (index == MSR_IA32_SMBASE)
		return " (SMBASE, which KVM exposes only with SMM)";
	if (index == MSR_IA32_BNDCFGS)
		return " (IA32_BNDCFGS, only with MPX)";
	return " (a performance counter or control, only with a PMU)";
}

/*
 * Every MSR of the reset list that KVM reads on v holds its value (the TSC
 * apart: it runs on). The ones KVM does not read on this vCPU (SMBASE
 * without SMM, IA32_BNDCFGS without MPX, counters without a PMU) are
 * listed in *unread (optional), for the test to report as not checked.
 */
static void assert_msrs_hold(struct vcpu *v, const struct vcpu_reset_state *want, char *unread)
{
	size_t len = 0;

	if (unread)
		unread[0] = 0;
	for (unsigned int i = 0; i < want->nr_msrs; i++) {
		char what[32];
		uint32_t idx = want->msrs[i].index;
		if (idx == MSR_IA32_TSC)
			continue;
		if (!vcpu_msr_readable(v, idx)) {
			if (unread && len < 400)
				len += snprintf(unread + len, 512 - len, "%s0x%x%s", len ? ", " : "", idx,
						msr_note(idx));
			continue;
		}
		snprintf(what, sizeof(what), "MSR 0x%x", idx);
		assert_u64(what, kvm_test_get_msr(v, idx), want->msrs[i].data);
	}
}

/* Reads every group back from v and compares with what `want` wrote. */
static void assert_vcpu_holds(struct vcpu *v, const struct vcpu_reset_state *want)
{
	struct kvm_regs r;
	struct kvm_sregs2 s;
	struct kvm_debugregs d;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_lapic_state l;
	struct error e;

	kvm_test_check(vcpu_get_regs(v, &r, &e), &e);
	assert_memory_equal(&r, &want->regs, sizeof(r));
	kvm_test_check(vcpu_get_sregs2(v, &s, &e), &e);
	assert_segment_equal("CS", &s.cs, &want->sregs.cs);
	assert_segment_equal("DS", &s.ds, &want->sregs.ds);
	assert_segment_equal("ES", &s.es, &want->sregs.es);
	assert_segment_equal("FS", &s.fs, &want->sregs.fs);
	assert_segment_equal("GS", &s.gs, &want->sregs.gs);
	assert_segment_equal("SS", &s.ss, &want->sregs.ss);
	assert_segment_equal("LDTR", &s.ldt, &want->sregs.ldt);
	assert_segment_equal("TR", &s.tr, &want->sregs.tr);
	assert_u64("GDTR.base", s.gdt.base, 0);
	assert_u64("GDTR.limit", s.gdt.limit, 0xFFFF);
	assert_u64("IDTR.base", s.idt.base, 0);
	assert_u64("IDTR.limit", s.idt.limit, 0xFFFF);
	assert_u64("CR0", s.cr0, want->sregs.cr0);
	assert_u64("CR2", s.cr2, 0);
	assert_u64("CR3", s.cr3, 0);
	assert_u64("CR4", s.cr4, 0);
	assert_u64("CR8", s.cr8, 0);
	assert_u64("EFER", s.efer, 0);
	assert_u64("IA32_APIC_BASE", s.apic_base, want->sregs.apic_base);
	kvm_test_check(vcpu_get_debugregs(v, &d, &e), &e);
	for (int i = 0; i < 4; i++)
		assert_u64("DR0-3", d.db[i], 0);
	assert_u64("DR6", d.dr6, X86_DR6_RESET);
	assert_u64("DR7", d.dr7, X86_DR7_RESET);
	kvm_test_check(vcpu_get_events(v, &ev, &e), &e);
	assert_int_equal(ev.exception.injected | ev.exception.pending, 0);
	assert_int_equal(ev.interrupt.injected, 0);
	assert_int_equal(ev.nmi.injected | ev.nmi.pending | ev.nmi.masked, 0);
	assert_int_equal(ev.smi.latched_init, 0);
	kvm_test_check(vcpu_get_mp_state(v, &mp, &e), &e);
	assert_int_equal(mp.mp_state, want->mp_state.mp_state);
	kvm_test_check(vcpu_get_lapic(v, &l, &e), &e);
	for (unsigned int off = 0; off < sizeof(l.regs); off += 16)
		if (!lapic_reg_is_derived(off) && lapic_reg(&l, off) != lapic_reg(&want->lapic, off))
			fail_msg("LAPIC register 0x%03x is 0x%08x, expected 0x%08x", off,
				 lapic_reg(&l, off), lapic_reg(&want->lapic, off));
	assert_msrs_hold(v, want, NULL);
}

/* Offset of XSAVE component `bit` in the standard format: CPUID.(EAX=0DH,
 * ECX=bit):EBX (SDM Vol. 1 §13.4.3). */
static uint32_t xsave_offset(struct vcpu *v, unsigned int bit)
{
	_cleanup_free_ struct kvm_cpuid2 *held = NULL;
	struct kvm_cpuid_entry2 *e;
	struct error err;

	kvm_test_check(vcpu_get_cpuid(v, &held, &err), &err);
	e = vcpu_cpuid_entry(held, 0xD, bit);
	assert_non_null(e);
	return e->ebx;
}

/*
 * x87/SSE as Table 9-1 gives them; every other XSAVE component in its
 * initial configuration. KVM reports PKRU explicitly whenever the vCPU
 * has it, so a PKRU bit in XSTATE_BV must come with PKRU = 0.
 */
static void assert_fpu_reset(struct vcpu *v)
{
	_cleanup_free_ struct kvm_xsave *x = NULL;
	struct kvm_xcrs xcrs;
	size_t size;
	uint8_t *b;
	uint16_t fcw, fsw;
	uint32_t mxcsr, pkru;
	uint64_t bv;
	struct error e;

	kvm_test_check(vcpu_get_xsave(v, &x, &size, &e), &e);
	b = (uint8_t *)x->region;
	memcpy(&fcw, b + XSAVE_FCW, 2);
	memcpy(&fsw, b + XSAVE_FSW, 2);
	memcpy(&mxcsr, b + XSAVE_MXCSR, 4);
	memcpy(&bv, b + XSAVE_XSTATE_BV, 8);
	assert_int_equal(fcw, X86_FCW_RESET);
	assert_int_equal(fsw, 0);
	assert_int_equal(b[XSAVE_FTW], X86_FTW_ABRIDGED_ALL_VALID);
	assert_int_equal(mxcsr, X86_MXCSR_RESET);
	/* FOP, FIP with FCS, FDP with FDS. */
	for (size_t i = XSAVE_FOP; i < XSAVE_MXCSR; i++)
		assert_int_equal(b[i], 0);
	for (size_t i = XSAVE_ST0; i < XSAVE_XMM0 + 16 * 16; i++)
		assert_int_equal(b[i], 0);
	if (bv & X86_XFEATURE_PKRU) {
		memcpy(&pkru, b + xsave_offset(v, 9), 4);
		assert_int_equal(pkru, 0);
		bv &= ~X86_XFEATURE_PKRU;
	}
	if (bv & ~(X86_XFEATURE_X87 | X86_XFEATURE_SSE))
		fail_msg("XSTATE_BV 0x%llx: a component other than x87 and SSE is not in its initial state",
			 (unsigned long long)bv);
	if (vcpu_has_xcrs(v)) {
		kvm_test_check(vcpu_get_xcrs(v, &xcrs, &e), &e);
		assert_u64("XCR0", xcrs.xcrs[0].value, 1);
	}
}

/* vmmd's MMU view after RESET/INIT: nonpaging, from the registers written. */
static void assert_role_direct(struct vcpu *v, uint64_t cr0)
{
	union mmu_role role;
	struct mmu_role_regs regs;
	struct kvm_sregs2 s;
	struct error e;

	kvm_test_check(vcpu_mmu_role(v, &role, &regs, &e), &e);
	assert_int_equal(role.direct, 1);
	assert_int_equal(mmu_role_mode(role), MMU_MODE_NONE);
	assert_u64("role CR0", regs.cr0, cr0);
	assert_u64("role CR4", regs.cr4, 0);
	assert_u64("role EFER", regs.efer, 0);
	/* The same as computing it afresh from what KVM holds. */
	kvm_test_check(vcpu_get_sregs2(v, &s, &e), &e);
	assert_int_equal(mmu_role_compute(&(struct mmu_role_regs){ s.cr0, s.cr4, s.efer }, 0).word,
			 role.word);
}

/* XMM0 of the busy state: bytes 0x10..0x1F. */
static void busy_xmm0(uint8_t *xmm)
{
	for (int i = 0; i < 16; i++)
		xmm[i] = (uint8_t)(0x10 + i);
}

/* XCR0 of the busy state: x87, SSE and AVX where the vCPU's CPUID allows
 * AVX state, else x87 and SSE; either way not the RESET value 1. */
static uint64_t busy_xcr0(struct vcpu *v)
{
	_cleanup_free_ struct kvm_cpuid2 *held = NULL;
	struct kvm_cpuid_entry2 *e;
	struct error err;

	kvm_test_check(vcpu_get_cpuid(v, &held, &err), &err);
	e = vcpu_cpuid_entry(held, 0xD, 0);
	if (e && (e->eax & X86_XFEATURE_YMM))
		return X86_XFEATURE_X87 | X86_XFEATURE_SSE | X86_XFEATURE_YMM;
	return X86_XFEATURE_X87 | X86_XFEATURE_SSE;
}

/* Gives vCPU i a busy state: protected mode, x87 control word 0x027F,
 * MXCSR 0x1FA0, XMM0 busy_xmm0(), XCR0 busy_xcr0(), SYSENTER_EIP and PAT
 * changed, DR7 armed. */
static void make_busy(struct kvm_test_vm *vm, unsigned int i, uint64_t cr0_extra)
{
	struct vcpu *v = vm->vcpu[i];
	_cleanup_free_ struct kvm_xsave *x = NULL;
	struct kvm_msr_entry msrs[] = {
		{ .index = MSR_IA32_SYSENTER_EIP, .data = 0x12345 },
		{ .index = MSR_IA32_PAT, .data = 0x0606060606060606ULL },
	};
	struct kvm_debugregs d = { .db = { 0x1000 }, .dr6 = X86_DR6_RESET, .dr7 = 0x401 };
	struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs[0] = { .xcr = 0, .value = busy_xcr0(v) } };
	uint16_t fcw = 0x027F;
	uint32_t mxcsr = 0x1FA0;
	uint64_t bv;
	size_t size;
	struct error e;

	kvm_test_enter_protected_mode(vm, i, GUEST_SPIN_ADDR, 0x8000, cr0_extra, 0);
	kvm_test_check(vcpu_set_msrs(v, msrs, 2, &e), &e);
	kvm_test_check(vcpu_set_debugregs(v, &d, &e), &e);
	if (vcpu_has_xcrs(v))
		kvm_test_check(vcpu_set_xcrs(v, &xcrs, &e), &e);
	kvm_test_check(vcpu_get_xsave(v, &x, &size, &e), &e);
	memcpy((uint8_t *)x->region + XSAVE_FCW, &fcw, 2);
	memcpy((uint8_t *)x->region + XSAVE_MXCSR, &mxcsr, 4);
	busy_xmm0((uint8_t *)x->region + XSAVE_XMM0);
	memcpy(&bv, (uint8_t *)x->region + XSAVE_XSTATE_BV, 8);
	bv |= X86_XFEATURE_X87 | X86_XFEATURE_SSE;
	memcpy((uint8_t *)x->region + XSAVE_XSTATE_BV, &bv, 8);
	kvm_test_check(vcpu_set_xsave(v, x, size, &e), &e);
}

/* INIT keeps x87 and SSE state and XCR0 (SDM Table 9-1: "unchanged"):
 * what make_busy() set is still there. */
static void assert_busy_fpu_kept(struct vcpu *v)
{
	_cleanup_free_ struct kvm_xsave *x = NULL;
	struct kvm_xcrs xcrs;
	uint8_t xmm0[16];
	uint16_t fcw;
	uint32_t mxcsr;
	size_t size;
	struct error e;

	kvm_test_check(vcpu_get_xsave(v, &x, &size, &e), &e);
	memcpy(&fcw, (uint8_t *)x->region + XSAVE_FCW, 2);
	memcpy(&mxcsr, (uint8_t *)x->region + XSAVE_MXCSR, 4);
	assert_int_equal(fcw, 0x027F);
	assert_int_equal(mxcsr, 0x1FA0);
	busy_xmm0(xmm0);
	assert_memory_equal((uint8_t *)x->region + XSAVE_XMM0, xmm0, 16);
	if (!vcpu_has_xcrs(v))
		return;
	kvm_test_check(vcpu_get_xcrs(v, &xcrs, &e), &e);
	assert_int_equal(xcrs.nr_xcrs, 1);
	assert_u64("XCR0", xcrs.xcrs[0].value, busy_xcr0(v));
}

static void run_until_counting(struct kvm_test_vm *vm, unsigned int i)
{
	struct kvm_regs r;
	struct error e;

	for (int tries = 0; tries < 2000; tries++) {
		vcpu_pause(vm->vcpu[i]);
		vcpu_wait_paused(vm->vcpu[i]);
		/* Paused: ioctls from here are allowed (no KVM_RUN in flight). */
		kvm_test_check(vcpu_get_regs(vm->vcpu[i], &r, &e), &e);
		if (r.rax > 10)
			return;
		vcpu_resume(vm->vcpu[i]);
		usleep(1000);
	}
	fail_msg("vcpu %u never ran the spin guest", i);
}

/* What vcpu_reset() computes for v from its current state. */
static void expected_state(struct vcpu *v, enum vcpu_reset_kind kind,
			   struct vcpu_reset_state *ret)
{
	struct vcpu_reset_config cfg;
	struct vcpu_reset_prior prior;
	struct error e;

	vcpu_reset_default_config(v, &cfg);
	kvm_test_check(vcpu_reset_read_prior(v, &prior, &e), &e);
	assert_int_equal(vcpu_reset_compute(kind, &cfg, &prior, ret), 0);
}

/* The reset-vector guest's reports, in order. */
struct reset_report {
	uint32_t edx, cr0, fcw, fsw, segs, eflags;
};

static struct reset_report wait_reset_report(struct kvm_test_vm *vm, int i)
{
	struct reset_report r;

	assert_int_equal(kvm_test_wait_write(vm, i, PORT_READY, WAIT_MS), TAG_RESET_VECTOR);
	r.edx = kvm_test_wait_write(vm, i, PORT_EDX, WAIT_MS);
	r.cr0 = kvm_test_wait_write(vm, i, PORT_CR0, WAIT_MS);
	r.fcw = kvm_test_wait_write(vm, i, PORT_FCW, WAIT_MS);
	r.fsw = kvm_test_wait_write(vm, i, PORT_FSW, WAIT_MS);
	r.segs = kvm_test_wait_write(vm, i, PORT_SEGS, WAIT_MS);
	r.eflags = kvm_test_wait_write(vm, i, PORT_EFLAGS, WAIT_MS);
	assert_int_equal(kvm_test_wait_write(vm, i, PORT_DONE, WAIT_MS), 0);
	return r;
}

static struct kvm_test_vm *vm_with_guests(void **state, unsigned int n)
{
	struct kvm_test_vm *vm = kvm_test_vm_new(n);

	*state = vm;
	kvm_test_load(vm, GUEST_SPIN_ADDR, guest_spin, GUEST_SIZE(guest_spin));
	kvm_test_load(vm, GUEST_RESET_VECTOR_PAGE, guest_reset_vector,
		      GUEST_SIZE(guest_reset_vector));
	return vm;
}

static void test_power_on_reset_of_a_running_bsp(void **state)
{
	struct kvm_test_vm *vm = vm_with_guests(state, 1);
	struct vcpu *v = vm->vcpu[0];
	_cleanup_free_ struct vcpu_reset_state *want = calloc(1, sizeof(*want));
	struct reset_report rep;
	struct vcpu_reset_config cfg;
	char unread[512];
	struct error e;

	make_busy(vm, 0, 0);
	kvm_test_check(vcpu_start(v, &e), &e);
	run_until_counting(vm, 0);
	/* vCPU paused: reset it through its thread, as the daemon would. */
	expected_state(v, VCPU_RESET_POWER_ON, want);
	kvm_test_check(vcpu_reset(v, VCPU_RESET_POWER_ON, NULL, &e), &e);
	assert_vcpu_holds(v, want);
	assert_msrs_hold(v, want, unread);
	assert_fpu_reset(v);
	assert_role_direct(v, 0x60000010);
	if (unread[0])
		kvm_test_print_skip(__func__,
				    "(partial) KVM does not read these MSRs of the RESET list on this vCPU, "
				    "so only the unit tests check their values: %s",
				    unread);
	vcpu_reset_default_config(v, &cfg);
	if (cfg.pmu.kind == VCPU_RESET_PMU_NONE)
		kvm_test_print_skip(__func__,
				    "(partial) the vCPU's CPU model has no performance counters (CPUID.0AH "
				    "reports none, and it is not AMD's): resetting them is unit-tested only");

	vcpu_resume(v);
	rep = wait_reset_report(vm, 0);
	assert_int_equal(rep.edx, vcpu_cpuid_signature(v));
	assert_int_equal(rep.cr0, 0x60000010);
	assert_int_equal(rep.fcw, X86_FCW_RESET);
	assert_int_equal(rep.fsw, 0);
	assert_int_equal(rep.segs, 0xF0000000);
	assert_int_equal(rep.eflags, 0x2);
}

static void test_power_on_reset_zeroes_the_tsc(void **state)
{
	struct kvm_test_vm *vm = vm_with_guests(state, 1);
	struct vcpu *v = vm->vcpu[0];
	uint32_t khz;
	uint64_t tsc;
	struct error e;

	if (!kvm_test_tsc_writes_honoured(v, &tsc))
		KVM_TEST_SKIP("KVM on this host ignores IA32_TSC writes (wrote 2^50, read 0x%llx): "
			      "the guest TSC cannot be reset here",
			      (unsigned long long)tsc);
	kvm_test_check(vcpu_reset(v, VCPU_RESET_POWER_ON, NULL, &e), &e);
	kvm_test_check(vcpu_get_tsc_khz(v, &khz, &e), &e);
	tsc = kvm_test_get_msr(v, MSR_IA32_TSC);
	/* Table 9-1: TSC = 0 after RESET (written as 1, see vcpu_write_tsc()). */
	if (tsc >= (uint64_t)khz * 1000)
		fail_msg("TSC is 0x%llx one moment after RESET", (unsigned long long)tsc);
}

static void test_init_of_a_running_bsp_keeps_x87_sse_xcr0_and_msrs(void **state)
{
	struct kvm_test_vm *vm = vm_with_guests(state, 1);
	struct vcpu *v = vm->vcpu[0];
	_cleanup_free_ struct vcpu_reset_state *want = calloc(1, sizeof(*want));
	struct reset_report rep;
	struct error e;

	make_busy(vm, 0, MMU_CR0_CD);
	kvm_test_check(vcpu_start(v, &e), &e);
	run_until_counting(vm, 0);
	expected_state(v, VCPU_RESET_INIT, want);
	kvm_test_check(vcpu_reset(v, VCPU_RESET_INIT, NULL, &e), &e);
	assert_vcpu_holds(v, want);
	assert_busy_fpu_kept(v);
	assert_role_direct(v, MMU_CR0_CD | MMU_CR0_ET);
	/* SDM Table 9-1: CD kept, ET set; x87/SSE state, XCR0 and MSRs unchanged. */
	assert_u64("CR0", want->sregs.cr0, MMU_CR0_CD | MMU_CR0_ET);
	assert_u64("SYSENTER_EIP", kvm_test_get_msr(v, MSR_IA32_SYSENTER_EIP), 0x12345);
	assert_u64("PAT", kvm_test_get_msr(v, MSR_IA32_PAT), 0x0606060606060606ULL);
	assert_int_equal(want->mp_state.mp_state, KVM_MP_STATE_RUNNABLE);

	vcpu_resume(v);
	rep = wait_reset_report(vm, 0);
	assert_int_equal(rep.cr0, MMU_CR0_CD | MMU_CR0_ET);
	assert_int_equal(rep.fcw, 0x027F);
	assert_int_equal(rep.segs, 0xF0000000);
}

static void send_ipi(struct kvm_test_vm *vm, unsigned int from, uint32_t icr_low,
		     uint32_t dest_apic_id)
{
	uint32_t *mailbox = kvm_test_gpa(vm, GUEST_INIT_IPI_ADDR + 0x800);
	struct error e;

	kvm_test_load(vm, GUEST_INIT_IPI_ADDR, guest_init_ipi, GUEST_SIZE(guest_init_ipi));
	mailbox[0] = icr_low;
	mailbox[1] = dest_apic_id << 24;
	kvm_test_enter_protected_mode(vm, from, GUEST_INIT_IPI_ADDR, 0x8000, 0, 0);
	kvm_test_check(vcpu_start(vm->vcpu[from], &e), &e);
	assert_int_equal(kvm_test_wait_write(vm, from, PORT_DONE, WAIT_MS), TAG_INIT_IPI);
}

/* ICR (SDM §10.6.1): delivery mode 110 (start-up) with the vector, or 101
 * (INIT); level assert (bit 14); physical destination. */
#define ICR_SIPI(vector) (0x4600U | (vector))
#define ICR_INIT 0x4500U
#define SIPI_VECTOR 0xFF /* starts at 0xFF000, inside the test RAM */

static void test_power_on_reset_of_an_ap_waits_for_sipi(void **state)
{
	struct kvm_test_vm *vm = vm_with_guests(state, 2);
	struct vcpu *ap = vm->vcpu[1];
	_cleanup_free_ struct vcpu_reset_state *want = calloc(1, sizeof(*want));
	struct reset_report rep;
	struct error e;

	kvm_test_load(vm, SIPI_VECTOR << 12, guest_reset_vector, GUEST_SIZE(guest_reset_vector));
	make_busy(vm, 1, 0);
	kvm_test_check(vcpu_start(ap, &e), &e);
	run_until_counting(vm, 1);
	expected_state(ap, VCPU_RESET_POWER_ON, want);
	kvm_test_check(vcpu_reset(ap, VCPU_RESET_POWER_ON, NULL, &e), &e);
	assert_int_equal(want->mp_state.mp_state, KVM_MP_STATE_INIT_RECEIVED);
	assert_vcpu_holds(ap, want);
	vcpu_resume(ap);
	/* Waiting for a SIPI: nothing runs. */
	usleep(20 * 1000);
	pthread_mutex_lock(&vm->lock);
	assert_int_equal(vm->nr_writes, 0);
	pthread_mutex_unlock(&vm->lock);

	send_ipi(vm, 0, ICR_SIPI(SIPI_VECTOR), 1);
	rep = wait_reset_report(vm, 1);
	/* SIPI: CS = vector << 8 (MMU.md §6), the rest as RESET left it. */
	assert_int_equal(rep.segs, (uint32_t)(SIPI_VECTOR << 8) << 16);
	assert_int_equal(rep.cr0, 0x60000010);
	assert_int_equal(rep.fcw, X86_FCW_RESET);
	assert_int_equal(rep.edx, vcpu_cpuid_signature(ap));
}

/*
 * KVM performs INIT itself when its LAPIC receives one (MMU.md §6): the
 * state it leaves must be the state vmmd computes for INIT from the same
 * prior state, register for register.
 */
static void test_init_matches_kvm_in_kernel_init(void **state)
{
	struct kvm_test_vm *vm = vm_with_guests(state, 2);
	struct vcpu *ap = vm->vcpu[1];
	_cleanup_free_ struct vcpu_reset_state *want = calloc(1, sizeof(*want));
	struct kvm_mp_state mp;
	struct error e;

	make_busy(vm, 1, MMU_CR0_CD | MMU_CR0_NW);
	kvm_test_check(vcpu_start(ap, &e), &e);
	run_until_counting(vm, 1);
	expected_state(ap, VCPU_RESET_INIT, want);
	vcpu_resume(ap);

	send_ipi(vm, 0, ICR_INIT, 1);
	for (int i = 0; i < 2000; i++) {
		vcpu_pause(ap);
		vcpu_wait_paused(ap);
		kvm_test_check(vcpu_get_mp_state(ap, &mp, &e), &e);
		if (mp.mp_state == KVM_MP_STATE_INIT_RECEIVED)
			break;
		vcpu_resume(ap);
		usleep(1000);
	}
	assert_int_equal(mp.mp_state, KVM_MP_STATE_INIT_RECEIVED);
	/* KVM's own INIT writes no MSR: compare what the architecture and the
	 * PV rules say vmmd's INIT writes only where KVM touches them. */
	want->nr_msrs = 0;
	assert_vcpu_holds(ap, want);
	assert_u64("SYSENTER_EIP", kvm_test_get_msr(ap, MSR_IA32_SYSENTER_EIP), 0x12345);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_power_on_reset_of_a_running_bsp, kvm_test_teardown),
		cmocka_unit_test_teardown(test_power_on_reset_zeroes_the_tsc, kvm_test_teardown),
		cmocka_unit_test_teardown(test_init_of_a_running_bsp_keeps_x87_sse_xcr0_and_msrs,
					  kvm_test_teardown),
		cmocka_unit_test_teardown(test_power_on_reset_of_an_ap_waits_for_sipi,
					  kvm_test_teardown),
		cmocka_unit_test_teardown(test_init_matches_kvm_in_kernel_init, kvm_test_teardown),
	};

	kvm_test_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
