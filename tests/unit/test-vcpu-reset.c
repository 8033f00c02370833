/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vcpu/reset: every register of the RESET and INIT states
 * against SDM Vol. 3A Table 9-1, §10.4.7 and MMU.md §6, without KVM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vcpu/reset.h"
#include "vcpu/x86.h"

/* Family 6 model 0xA7 stepping 8, as CPUID.1.EAX reports it. */
#define SIGNATURE 0x000A0678

static const struct vcpu_reset_config bsp_cfg = {
	.apic_id = 0, .bsp = true, .signature = SIGNATURE, .lint0_virtual_wire = true,
};

static const struct vcpu_reset_config ap_cfg = {
	.apic_id = 3, .bsp = false, .signature = SIGNATURE, .lint0_virtual_wire = true,
};

static uint32_t lapic(const struct kvm_lapic_state *l, unsigned int off)
{
	uint32_t v;

	memcpy(&v, &l->regs[off], 4);
	return v;
}

static void set_lapic(struct kvm_lapic_state *l, unsigned int off, uint32_t v)
{
	memcpy(&l->regs[off], &v, 4);
}

/* A prior state that is nothing like the reset one: paging on, x2APIC, timers. */
static void busy_prior(struct vcpu_reset_prior *p, uint32_t apic_id, bool bsp)
{
	memset(p, 0, sizeof(*p));
	p->cr0 = MMU_CR0_PG | MMU_CR0_WP | MMU_CR0_NE | MMU_CR0_ET | MMU_CR0_PE;
	p->cr4 = MMU_CR4_PAE | MMU_CR4_PGE | MMU_CR4_OSFXSR;
	p->efer = MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NX | MMU_EFER_SCE;
	p->apic_base = X86_APIC_DEFAULT_BASE | X86_APIC_BASE_ENABLE | (bsp ? X86_APIC_BASE_BSP : 0);
	memset(p->lapic.regs, 0xA5, sizeof(p->lapic.regs));
	set_lapic(&p->lapic, APIC_ID, apic_id << 24);
	set_lapic(&p->lapic, APIC_VERSION, 0x50014);
	set_lapic(&p->lapic, APIC_LDR, 0x01000000);
}

static void assert_segment(const struct kvm_segment *s, uint16_t sel, uint64_t base, uint8_t type,
			   uint8_t s_bit)
{
	assert_int_equal(s->selector, sel);
	assert_true(s->base == base);
	assert_int_equal(s->limit, 0xFFFF);
	assert_int_equal(s->type, type);
	assert_int_equal(s->present, 1);
	assert_int_equal(s->dpl, 0);
	assert_int_equal(s->db, 0);
	assert_int_equal(s->s, s_bit);
	assert_int_equal(s->l, 0);
	assert_int_equal(s->g, 0);
	assert_int_equal(s->avl, 0);
	assert_int_equal(s->unusable, 0);
}

/* Table 9-1 rows shared by RESET and INIT. */
static void assert_common_table(const struct vcpu_reset_state *s)
{
	const struct kvm_regs *r = &s->regs;

	assert_true(r->rip == 0xFFF0);
	assert_true(r->rflags == 0x2);
	assert_true(r->rdx == SIGNATURE);
	assert_true(r->rax == 0 && r->rbx == 0 && r->rcx == 0 && r->rsi == 0 && r->rdi == 0);
	assert_true(r->rsp == 0 && r->rbp == 0);
	assert_true(r->r8 == 0 && r->r9 == 0 && r->r10 == 0 && r->r11 == 0);
	assert_true(r->r12 == 0 && r->r13 == 0 && r->r14 == 0 && r->r15 == 0);

	assert_segment(&s->sregs.cs, 0xF000, 0xFFFF0000, 0xB, 1);
	assert_segment(&s->sregs.ds, 0, 0, 0x3, 1);
	assert_segment(&s->sregs.es, 0, 0, 0x3, 1);
	assert_segment(&s->sregs.fs, 0, 0, 0x3, 1);
	assert_segment(&s->sregs.gs, 0, 0, 0x3, 1);
	assert_segment(&s->sregs.ss, 0, 0, 0x3, 1);
	assert_segment(&s->sregs.ldt, 0, 0, 0x2, 0);
	assert_segment(&s->sregs.tr, 0, 0, 0xB, 0);
	assert_true(s->sregs.gdt.base == 0);
	assert_int_equal(s->sregs.gdt.limit, 0xFFFF);
	assert_true(s->sregs.idt.base == 0);
	assert_int_equal(s->sregs.idt.limit, 0xFFFF);
	assert_true(s->sregs.cr2 == 0 && s->sregs.cr3 == 0 && s->sregs.cr4 == 0);
	assert_true(s->sregs.cr8 == 0);
	assert_true(s->sregs.efer == 0);
	assert_true(s->sregs.flags == 0);

	for (int i = 0; i < 4; i++)
		assert_true(s->debugregs.db[i] == 0);
	assert_true(s->debugregs.dr6 == 0xFFFF0FF0);
	assert_true(s->debugregs.dr7 == 0x400);

	/* Nothing pending or injected, and KVM told to apply all of it. */
	assert_int_equal(s->events.exception.injected, 0);
	assert_int_equal(s->events.exception.pending, 0);
	assert_int_equal(s->events.interrupt.injected, 0);
	assert_int_equal(s->events.nmi.injected, 0);
	assert_int_equal(s->events.nmi.pending, 0);
	assert_int_equal(s->events.nmi.masked, 0);
	assert_int_equal(s->events.smi.pending, 0);
	assert_int_equal(s->events.smi.latched_init, 0);
	assert_int_equal(s->events.sipi_vector, 0);
	assert_true(s->events.flags & KVM_VCPUEVENT_VALID_NMI_PENDING);
	assert_true(s->events.flags & KVM_VCPUEVENT_VALID_SIPI_VECTOR);
	assert_true(s->events.flags & KVM_VCPUEVENT_VALID_SHADOW);
	assert_true(s->events.flags & KVM_VCPUEVENT_VALID_SMM);
}

/* §10.4.7.1: every local APIC register of the reset state, byte by byte. */
static void assert_lapic_reset(const struct kvm_lapic_state *l, uint32_t id_reg, uint32_t lint0,
			       bool x2apic, uint32_t ldr)
{
	uint32_t version = lapic(l, APIC_VERSION);

	for (unsigned int off = 0; off < sizeof(l->regs); off += 4) {
		uint32_t want = 0;
		switch (off) {
		case APIC_ID:
			want = id_reg;
			break;
		case APIC_VERSION:
			/* Read-only: kept from the prior state. */
			assert_true(version == 0x50014 || version == 0x60015);
			want = version;
			break;
		case APIC_DFR:
			want = x2apic ? 0 : 0xFFFFFFFF;
			break;
		case APIC_LDR:
			want = x2apic ? ldr : 0;
			break;
		case APIC_SPURIOUS:
			want = 0xFF;
			break;
		case APIC_LVT_CMCI:
			/* Only an APIC with 7 LVT entries has it (§10.4.8). */
			want = version == 0x60015 ? APIC_LVT_MASKED : 0;
			break;
		case APIC_LVT_TIMER:
		case APIC_LVT_THERMAL:
		case APIC_LVT_PERF:
		case APIC_LVT_LINT1:
		case APIC_LVT_ERROR:
			want = APIC_LVT_MASKED;
			break;
		case APIC_LVT_LINT0:
			want = lint0;
			break;
		}
		if (lapic(l, off) != want)
			fail_msg("LAPIC register 0x%03x is 0x%08x, expected 0x%08x", off, lapic(l, off),
				 want);
	}
}

static const struct kvm_msr_entry *find_msr(const struct vcpu_reset_state *s, uint32_t index)
{
	for (unsigned int i = 0; i < s->nr_msrs; i++)
		if (s->msrs[i].index == index)
			return &s->msrs[i];
	return NULL;
}

static void assert_msr(const struct vcpu_reset_state *s, uint32_t index, uint64_t value)
{
	const struct kvm_msr_entry *e = find_msr(s, index);

	if (!e)
		fail_msg("MSR 0x%x is not written", index);
	if (e->data != value)
		fail_msg("MSR 0x%x = 0x%llx, expected 0x%llx", index, (unsigned long long)e->data,
			 (unsigned long long)value);
}

static void assert_pv_msrs_cleared(const struct vcpu_reset_state *s)
{
	assert_msr(s, MSR_KVM_SYSTEM_TIME, 0);
	assert_msr(s, MSR_KVM_SYSTEM_TIME_NEW, 0);
	assert_msr(s, MSR_KVM_ASYNC_PF_EN, 0);
	assert_msr(s, MSR_KVM_STEAL_TIME, 0);
	assert_msr(s, MSR_KVM_PV_EOI_EN, 0);
	assert_msr(s, MSR_KVM_ASYNC_PF_INT, 0);
	assert_msr(s, MSR_KVM_POLL_CONTROL, 1);
	/* Writing the wall-clock MSRs makes KVM store the time in guest RAM. */
	assert_null(find_msr(s, MSR_KVM_WALL_CLOCK));
	assert_null(find_msr(s, MSR_KVM_WALL_CLOCK_NEW));
}

static void test_power_on_bsp(void **state)
{
	struct vcpu_reset_prior prior;
	struct vcpu_reset_state s;

	busy_prior(&prior, 0, true);
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_POWER_ON, &bsp_cfg, &prior, &s), 0);
	assert_int_equal(s.kind, VCPU_RESET_POWER_ON);
	assert_common_table(&s);
	assert_true(s.sregs.cr0 == 0x60000010);
	assert_true(s.sregs.apic_base == 0xFEE00900);
	assert_int_equal(s.mp_state.mp_state, KVM_MP_STATE_RUNNABLE);
	assert_lapic_reset(&s.lapic, 0, APIC_DM_EXTINT, false, 0);

	/* x87/SSE: FCW 0x40, FSW 0, FTW 0x5555 (abridged 0xFF), ST = +0, MXCSR 0x1F80. */
	assert_true(s.writes_fpu);
	assert_int_equal(s.fpu.fcw, 0x0040);
	assert_int_equal(s.fpu.fsw, 0);
	assert_int_equal(s.fpu.ftwx, 0xFF);
	assert_int_equal(s.fpu.last_opcode, 0);
	assert_true(s.fpu.last_ip == 0 && s.fpu.last_dp == 0);
	assert_int_equal(s.fpu.mxcsr, 0x1F80);
	for (int i = 0; i < 8; i++)
		for (int j = 0; j < 16; j++)
			assert_int_equal(s.fpu.fpr[i][j], 0);
	for (int i = 0; i < 16; i++)
		for (int j = 0; j < 16; j++)
			assert_int_equal(s.fpu.xmm[i][j], 0);
	assert_true(s.writes_xcr0);
	assert_true(s.xcr0 == 1);
	assert_true(s.xstate_clear == 0);

	assert_msr(&s, MSR_IA32_TSC, 0);
	assert_msr(&s, MSR_IA32_TSC_ADJUST, 0);
	assert_msr(&s, MSR_IA32_PAT, 0x0007040600070406ULL);
	assert_msr(&s, MSR_IA32_MTRR_DEF_TYPE, 0);
	assert_msr(&s, MSR_IA32_XSS, 0);
	assert_msr(&s, MSR_IA32_DEBUGCTL, 0);
	assert_msr(&s, MSR_IA32_SPEC_CTRL, 0);
	assert_msr(&s, MSR_IA32_SYSENTER_CS, 0);
	assert_msr(&s, MSR_IA32_SYSENTER_ESP, 0);
	assert_msr(&s, MSR_IA32_SYSENTER_EIP, 0);
	assert_msr(&s, MSR_STAR, 0);
	assert_msr(&s, MSR_LSTAR, 0);
	assert_msr(&s, MSR_CSTAR, 0);
	assert_msr(&s, MSR_SYSCALL_MASK, 0);
	assert_msr(&s, MSR_KERNEL_GS_BASE, 0);
	assert_msr(&s, MSR_TSC_AUX, 0);
	assert_msr(&s, MSR_IA32_TSC_DEADLINE, 0);
	assert_pv_msrs_cleared(&s);
	/* IA32_APIC_BASE goes through sregs, EFER too: not in the MSR list. */
	assert_null(find_msr(&s, MSR_IA32_APIC_BASE));
	assert_null(find_msr(&s, MSR_EFER));
}

static void test_power_on_ap(void **state)
{
	struct vcpu_reset_prior prior;
	struct vcpu_reset_state s;

	busy_prior(&prior, 7, false);
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_POWER_ON, &ap_cfg, &prior, &s), 0);
	assert_common_table(&s);
	assert_true(s.sregs.cr0 == 0x60000010);
	/* No BSP flag; the AP waits for a SIPI. */
	assert_true(s.sregs.apic_base == 0xFEE00800);
	assert_int_equal(s.mp_state.mp_state, KVM_MP_STATE_INIT_RECEIVED);
	/* RESET sets the configured ID, not the old one; LINT0 stays masked on APs. */
	assert_lapic_reset(&s.lapic, 3U << 24, APIC_LVT_MASKED, false, 0);
}

static void test_power_on_without_virtual_wire(void **state)
{
	struct vcpu_reset_config cfg = bsp_cfg;
	struct vcpu_reset_prior prior;
	struct vcpu_reset_state s;

	cfg.lint0_virtual_wire = false;
	busy_prior(&prior, 0, true);
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_POWER_ON, &cfg, &prior, &s), 0);
	assert_lapic_reset(&s.lapic, 0, APIC_LVT_MASKED, false, 0);
}

static void test_power_on_from_x2apic_returns_to_xapic(void **state)
{
	struct vcpu_reset_prior prior;
	struct vcpu_reset_state s;

	busy_prior(&prior, 3, false);
	prior.apic_base |= X86_APIC_BASE_EXTD;
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_POWER_ON, &ap_cfg, &prior, &s), 0);
	assert_true(s.sregs.apic_base == 0xFEE00800);
	assert_lapic_reset(&s.lapic, 3U << 24, APIC_LVT_MASKED, false, 0);
}

static void test_init_keeps_cd_nw_and_sets_et(void **state)
{
	struct vcpu_reset_prior prior;
	struct vcpu_reset_state s;

	busy_prior(&prior, 2, false);
	prior.cr0 |= MMU_CR0_CD | MMU_CR0_NW;
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_INIT, &ap_cfg, &prior, &s), 0);
	assert_true(s.sregs.cr0 == (MMU_CR0_ET | MMU_CR0_CD | MMU_CR0_NW));

	prior.cr0 = MMU_CR0_PG | MMU_CR0_PE | MMU_CR0_CD;
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_INIT, &ap_cfg, &prior, &s), 0);
	assert_true(s.sregs.cr0 == (MMU_CR0_ET | MMU_CR0_CD));

	prior.cr0 = MMU_CR0_PG | MMU_CR0_PE | MMU_CR0_WP;
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_INIT, &ap_cfg, &prior, &s), 0);
	assert_true(s.sregs.cr0 == MMU_CR0_ET);
}

static void test_init_of_ap(void **state)
{
	struct vcpu_reset_prior prior;
	struct vcpu_reset_state s;

	busy_prior(&prior, 5, false);
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_INIT, &ap_cfg, &prior, &s), 0);
	assert_int_equal(s.kind, VCPU_RESET_INIT);
	assert_common_table(&s);
	/* IA32_APIC_BASE unchanged, APIC ID kept (not the config's 3). */
	assert_true(s.sregs.apic_base == prior.apic_base);
	assert_lapic_reset(&s.lapic, 5U << 24, APIC_LVT_MASKED, false, 0);
	assert_int_equal(s.mp_state.mp_state, KVM_MP_STATE_INIT_RECEIVED);
	/* x87/SSE/AVX, XCR0 and the architectural MSRs are kept... */
	assert_false(s.writes_fpu);
	assert_false(s.writes_xcr0);
	assert_null(find_msr(&s, MSR_IA32_TSC));
	assert_null(find_msr(&s, MSR_IA32_PAT));
	assert_null(find_msr(&s, MSR_IA32_SYSENTER_EIP));
	assert_null(find_msr(&s, MSR_IA32_MTRR_DEF_TYPE));
	/* ...MPX bound registers are cleared, and KVM's PV registrations dropped. */
	assert_true(s.xstate_clear == (X86_XFEATURE_BNDREGS | X86_XFEATURE_BNDCSR));
	assert_pv_msrs_cleared(&s);
}

static void test_init_of_bsp_runs(void **state)
{
	struct vcpu_reset_prior prior;
	struct vcpu_reset_state s;

	/* Whether the vCPU is the BSP comes from its IA32_APIC_BASE, not the config. */
	busy_prior(&prior, 0, true);
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_INIT, &ap_cfg, &prior, &s), 0);
	assert_int_equal(s.mp_state.mp_state, KVM_MP_STATE_RUNNABLE);
	assert_true(s.sregs.apic_base == 0xFEE00900);
	assert_lapic_reset(&s.lapic, 0, APIC_DM_EXTINT, false, 0);
}

static void test_init_in_x2apic_mode_keeps_it(void **state)
{
	struct vcpu_reset_prior prior;
	struct vcpu_reset_state s;

	busy_prior(&prior, 6, false);
	prior.apic_base |= X86_APIC_BASE_EXTD;
	set_lapic(&prior.lapic, APIC_LDR, 0x40);
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_INIT, &ap_cfg, &prior, &s), 0);
	assert_true(s.sregs.apic_base == (0xFEE00800 | X86_APIC_BASE_EXTD));
	/* x2APIC: LDR derived from the ID (kept), no DFR (§10.12.10). */
	assert_lapic_reset(&s.lapic, 6U << 24, APIC_LVT_MASKED, true, 0x40);
}

static void test_cmci_lvt_masked_when_present(void **state)
{
	struct vcpu_reset_prior prior;
	struct vcpu_reset_state s;

	busy_prior(&prior, 0, true);
	set_lapic(&prior.lapic, APIC_VERSION, 0x60015);
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_POWER_ON, &bsp_cfg, &prior, &s), 0);
	assert_lapic_reset(&s.lapic, 0, APIC_DM_EXTINT, false, 0);
	assert_int_equal(lapic(&s.lapic, APIC_LVT_CMCI), APIC_LVT_MASKED);
}

/* MMU.md §6: after RESET and INIT the role is direct (nonpaging), from
 * registers that are exactly the ones written. */
static void test_mmu_side(void **state)
{
	struct vcpu_reset_prior prior;
	struct vcpu_reset_state s;

	for (int kind = VCPU_RESET_POWER_ON; kind <= VCPU_RESET_INIT; kind++) {
		busy_prior(&prior, 0, true);
		assert_int_equal(vcpu_reset_compute(kind, &bsp_cfg, &prior, &s), 0);
		assert_true(s.mmu.regs.cr0 == s.sregs.cr0);
		assert_true(s.mmu.regs.cr4 == s.sregs.cr4 && s.mmu.regs.cr4 == 0);
		assert_true(s.mmu.regs.efer == s.sregs.efer && s.mmu.regs.efer == 0);
		assert_int_equal(s.mmu.role.direct, 1);
		assert_int_equal(s.mmu.role.level, 0);
		assert_int_equal(mmu_role_mode(s.mmu.role), MMU_MODE_NONE);
		/* The old registers paged (4-level): the role changes, KVM resets
		 * its MMU context, cached translations are dropped. */
		assert_true(s.mmu.role_changed);
		assert_true(s.mmu.kvm_resets_context);
		assert_true(s.mmu.drop_roots && s.mmu.flush_tlb);
		/* From a nonpaging state the role stays what it was. */
		prior.cr0 = MMU_CR0_PE | MMU_CR0_ET;
		prior.cr4 = prior.efer = 0;
		assert_int_equal(vcpu_reset_compute(kind, &bsp_cfg, &prior, &s), 0);
		assert_false(s.mmu.role_changed);
		assert_false(s.mmu.kvm_resets_context);
		assert_int_equal(s.mmu.role.direct, 1);
	}
}

/* INIT is latched in SMM and delivered to L1 first under a nested guest. */
static void test_init_refused_in_smm_and_guest_mode(void **state)
{
	struct vcpu_reset_prior prior;
	struct vcpu_reset_state s;

	busy_prior(&prior, 0, true);
	prior.mmu_flags = MMU_CTX_SMM;
	memset(&s, 0x5A, sizeof(s));
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_INIT, &bsp_cfg, &prior, &s), -EBUSY);
	assert_int_equal(((uint8_t *)&s)[0], 0x5A);
	prior.mmu_flags = MMU_CTX_GUEST_MODE;
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_INIT, &bsp_cfg, &prior, &s), -EBUSY);
	/* RESET is not latched. */
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_POWER_ON, &bsp_cfg, &prior, &s), 0);
}

static void test_bad_arguments_leave_result_untouched(void **state)
{
	struct vcpu_reset_prior prior;
	struct vcpu_reset_state s;

	busy_prior(&prior, 0, true);
	memset(&s, 0x5A, sizeof(s));
	assert_int_equal(vcpu_reset_compute((enum vcpu_reset_kind)7, &bsp_cfg, &prior, &s), -EINVAL);
	assert_int_equal(((uint8_t *)&s)[0], 0x5A);
	assert_int_equal(((uint8_t *)&s)[sizeof(s) - 1], 0x5A);
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_INIT, NULL, &prior, &s), -EINVAL);
	assert_int_equal(vcpu_reset_compute(VCPU_RESET_INIT, &bsp_cfg, NULL, &s), -EINVAL);
	assert_string_equal(vcpu_reset_kind_name(VCPU_RESET_POWER_ON), "reset");
	assert_string_equal(vcpu_reset_kind_name(VCPU_RESET_INIT), "init");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_power_on_bsp),
		cmocka_unit_test(test_power_on_ap),
		cmocka_unit_test(test_power_on_without_virtual_wire),
		cmocka_unit_test(test_power_on_from_x2apic_returns_to_xapic),
		cmocka_unit_test(test_init_keeps_cd_nw_and_sets_et),
		cmocka_unit_test(test_init_of_ap),
		cmocka_unit_test(test_init_of_bsp_runs),
		cmocka_unit_test(test_init_in_x2apic_mode_keeps_it),
		cmocka_unit_test(test_cmci_lvt_masked_when_present),
		cmocka_unit_test(test_mmu_side),
		cmocka_unit_test(test_init_refused_in_smm_and_guest_mode),
		cmocka_unit_test(test_bad_arguments_leave_result_untouched),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
