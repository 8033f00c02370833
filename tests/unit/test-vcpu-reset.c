/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vcpu/reset: every register of the RESET and INIT states
 * against SDM Vol. 3A Table 9-1, §10.4.7 and MMU.md §6, without KVM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/macro.h"
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

/*
 * Nothing pending or injected (exception with its vector, error code and
 * payload; interrupt with its vector and soft flag; NMI and its masking;
 * SMI, SMM and SMM-inside-NMI; latched INIT; SIPI vector; interrupt
 * shadow), field by field, and KVM told to apply all of it.
 */
static void assert_events_cleared(const struct kvm_vcpu_events *e)
{
	static const struct kvm_vcpu_events want = {
		.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
			 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM,
	};

	assert_int_equal(e->exception.injected, 0);
	assert_int_equal(e->exception.nr, 0);
	assert_int_equal(e->exception.has_error_code, 0);
	assert_int_equal(e->exception.pending, 0);
	assert_int_equal(e->exception.error_code, 0);
	assert_int_equal(e->exception_has_payload, 0);
	assert_true(e->exception_payload == 0);
	assert_int_equal(e->interrupt.injected, 0);
	assert_int_equal(e->interrupt.nr, 0);
	assert_int_equal(e->interrupt.soft, 0);
	assert_int_equal(e->interrupt.shadow, 0);
	assert_int_equal(e->nmi.injected, 0);
	assert_int_equal(e->nmi.pending, 0);
	assert_int_equal(e->nmi.masked, 0);
	assert_int_equal(e->smi.smm, 0);
	assert_int_equal(e->smi.pending, 0);
	assert_int_equal(e->smi.smm_inside_nmi, 0);
	assert_int_equal(e->smi.latched_init, 0);
	assert_int_equal(e->sipi_vector, 0);
	assert_int_equal(e->triple_fault.pending, 0);
	assert_int_equal(e->flags, want.flags);
	/* Nothing else: reserved and padding bytes too. */
	assert_memory_equal(e, &want, sizeof(want));
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

	assert_events_cleared(&s->events);
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

/*
 * The XSAVE image RESET writes, byte by byte (SDM Vol. 1 Table 10-2 for
 * the legacy area, §13.4.2 for the header): FCW 0x0040, FSW 0, abridged
 * FTW 0xFF, FOP, FIP, FCS, FDP, FDS 0, MXCSR 0x1F80, ST0-7 and XMM0-15 0,
 * XSTATE_BV x87|SSE, XCOMP_BV 0, everything else 0.
 */
static void assert_xsave_start_reset(const uint8_t *x)
{
	uint8_t want[VCPU_RESET_XSAVE_START] = { 0 };
	uint16_t fcw = 0x0040;
	uint32_t mxcsr = 0x1F80;
	uint64_t bv = 0x3, xstate_bv;
	static const struct {
		uint64_t bit;
		const char *name;
	} initial[] = {
		{ X86_XFEATURE_YMM, "YMM_Hi128" }, { X86_XFEATURE_BNDREGS, "BNDREGS" },
		{ X86_XFEATURE_BNDCSR, "BNDCSR" }, { X86_XFEATURE_OPMASK, "opmask" },
		{ X86_XFEATURE_ZMM_HI256, "ZMM_Hi256" }, { X86_XFEATURE_HI16_ZMM, "Hi16_ZMM" },
		{ X86_XFEATURE_PKRU, "PKRU" },
	};

	memcpy(want + XSAVE_FCW, &fcw, 2);
	want[XSAVE_FTW] = 0xFF;
	memcpy(want + XSAVE_MXCSR, &mxcsr, 4);
	memcpy(want + XSAVE_XSTATE_BV, &bv, 8);
	for (size_t i = 0; i < sizeof(want); i++)
		if (x[i] != want[i])
			fail_msg("XSAVE byte %zu is 0x%02x, expected 0x%02x", i, x[i], want[i]);
	/* The fields Table 9-1 names, spelled out. */
	assert_int_equal(x[XSAVE_FCS] | x[XSAVE_FCS + 1], 0);
	assert_int_equal(x[XSAVE_FDS] | x[XSAVE_FDS + 1], 0);
	memcpy(&xstate_bv, x + XSAVE_XSTATE_BV, 8);
	for (size_t i = 0; i < ARRAY_SIZE(initial); i++)
		if (xstate_bv & initial[i].bit)
			fail_msg("XSTATE_BV gives %s explicitly; RESET leaves it in its initial (zero) configuration",
				 initial[i].name);
}

struct msr_want {
	uint32_t index;
	uint64_t value;
};

/* s writes exactly these MSRs with these values (in any order). */
static void assert_msr_list(const struct vcpu_reset_state *s, const struct msr_want *want,
			    size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_msr(s, want[i].index, want[i].value);
	for (unsigned int i = 0; i < s->nr_msrs; i++) {
		bool expected = false;
		for (size_t j = 0; j < n; j++)
			expected |= want[j].index == s->msrs[i].index;
		if (!expected)
			fail_msg("MSR 0x%x is written but not expected", s->msrs[i].index);
		for (unsigned int j = 0; j < i; j++)
			if (s->msrs[j].index == s->msrs[i].index)
				fail_msg("MSR 0x%x is written twice", s->msrs[i].index);
	}
	assert_int_equal(s->nr_msrs, n);
}

/* Written after both RESET and INIT: KVM's PV MSRs and IA32_BNDCFGS. */
#define MSRS_RESET_AND_INIT                                                          \
	{ MSR_KVM_SYSTEM_TIME, 0 }, { MSR_KVM_SYSTEM_TIME_NEW, 0 },                  \
	{ MSR_KVM_ASYNC_PF_EN, 0 }, { MSR_KVM_STEAL_TIME, 0 }, { MSR_KVM_PV_EOI_EN, 0 }, \
	{ MSR_KVM_ASYNC_PF_INT, 0 }, { MSR_KVM_POLL_CONTROL, 1 }, { MSR_IA32_BNDCFGS, 0 }

/* Written after RESET only (Table 9-1 values; zero for "undefined"). */
#define MSRS_RESET_ONLY                                                              \
	{ MSR_IA32_TSC, 0 }, { MSR_IA32_TSC_ADJUST, 0 }, { MSR_IA32_PAT, 0x0007040600070406ULL }, \
	{ MSR_IA32_MTRR_DEF_TYPE, 0 }, { MSR_IA32_XSS, 0 }, { MSR_IA32_DEBUGCTL, 0 },      \
	{ MSR_IA32_SPEC_CTRL, 0 }, { MSR_IA32_SYSENTER_CS, 0 }, { MSR_IA32_SYSENTER_ESP, 0 }, \
	{ MSR_IA32_SYSENTER_EIP, 0 }, { MSR_STAR, 0 }, { MSR_LSTAR, 0 }, { MSR_CSTAR, 0 },  \
	{ MSR_SYSCALL_MASK, 0 }, { MSR_KERNEL_GS_BASE, 0 }, { MSR_TSC_AUX, 0 },           \
	{ MSR_IA32_TSC_DEADLINE, 0 }, { MSR_IA32_SMBASE, 0x30000 }

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
	assert_xsave_start_reset(s.xsave_start);
	assert_true(s.writes_xcr0);
	assert_true(s.xcr0 == 1);
	assert_true(s.xstate_clear == 0);

	/* No PMU in bsp_cfg: the architectural and PV MSRs, nothing else.
	 * IA32_APIC_BASE and EFER go through sregs. */
	const struct msr_want msrs[] = { MSRS_RESET_ONLY, MSRS_RESET_AND_INIT };
	assert_msr_list(&s, msrs, ARRAY_SIZE(msrs));
	assert_pv_msrs_cleared(&s);
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
	/* x87/SSE/AVX, XCR0 and the architectural MSRs (SMBASE, TSC, PAT,
	 * MTRRs, performance counters, ...) are kept... */
	assert_false(s.writes_fpu);
	assert_false(s.writes_xcr0);
	/* ...MPX bound registers and IA32_BNDCFGS are cleared, and KVM's PV
	 * registrations dropped: exactly these MSRs are written. */
	assert_true(s.xstate_clear == (X86_XFEATURE_BNDREGS | X86_XFEATURE_BNDCSR));
	const struct msr_want msrs[] = { MSRS_RESET_AND_INIT };
	assert_msr_list(&s, msrs, ARRAY_SIZE(msrs));
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

/* ---------------------------------------------------------------- performance counters */

/* A CPUID list of the given entries (leaf 0 with the vendor first). */
static struct kvm_cpuid2 *cpuid_list(const char *vendor, const struct kvm_cpuid_entry2 *e,
				     size_t n)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (n + 1) * sizeof(c->entries[0]));

	assert_non_null(c);
	c->nent = (uint32_t)n + 1;
	c->entries[0].function = 0;
	c->entries[0].eax = 0x22;
	memcpy(&c->entries[0].ebx, vendor, 4);
	memcpy(&c->entries[0].edx, vendor + 4, 4);
	memcpy(&c->entries[0].ecx, vendor + 8, 4);
	memcpy(&c->entries[1], e, n * sizeof(*e));
	return c;
}

static struct vcpu_reset_pmu pmu_of(const char *vendor, const struct kvm_cpuid_entry2 *e, size_t n)
{
	struct kvm_cpuid2 *c = cpuid_list(vendor, e, n);
	struct vcpu_reset_pmu p;

	memset(&p, 0x5A, sizeof(p));
	vcpu_reset_pmu_from_cpuid(c, &p);
	free(c);
	return p;
}

static void assert_pmu(struct vcpu_reset_pmu p, enum vcpu_reset_pmu_kind kind, unsigned int version,
		       unsigned int gp, unsigned int fixed, bool amd_core)
{
	assert_int_equal(p.kind, kind);
	assert_int_equal(p.version, version);
	assert_int_equal(p.nr_gp, gp);
	assert_int_equal(p.nr_fixed, fixed);
	assert_int_equal(p.amd_core, amd_core);
}

/* CPUID.0AH (SDM Vol. 3B §18.2): EAX[7:0] version, EAX[15:8] general
 * counters, EDX[4:0] fixed counters from version 2. */
static void test_pmu_from_intel_cpuid(void **state)
{
	const struct kvm_cpuid_entry2 v2[] = { { .function = 0xA, .eax = 0x30402, .edx = 0x3 } };
	const struct kvm_cpuid_entry2 v1[] = { { .function = 0xA, .eax = 0x30201, .edx = 0x3 } };
	const struct kvm_cpuid_entry2 big[] = { { .function = 0xA, .eax = 0x31005, .edx = 0x7 } };
	const struct kvm_cpuid_entry2 none[] = { { .function = 0xA, .eax = 0x30400 } };
	const struct kvm_cpuid_entry2 other[] = { { .function = 1, .eax = SIGNATURE } };
	struct vcpu_reset_pmu p;

	assert_pmu(pmu_of("GenuineIntel", v2, 1), VCPU_RESET_PMU_INTEL, 2, 4, 3, false);
	assert_pmu(pmu_of("GenuineIntel", v1, 1), VCPU_RESET_PMU_INTEL, 1, 2, 0, false);
	/* More than KVM exposes, or than the MSR ranges hold: 8 and 3. */
	assert_pmu(pmu_of("GenuineIntel", big, 1), VCPU_RESET_PMU_INTEL, 5, 8, 3, false);
	assert_pmu(pmu_of("GenuineIntel", none, 1), VCPU_RESET_PMU_NONE, 0, 0, 0, false);
	assert_pmu(pmu_of("GenuineIntel", other, 1), VCPU_RESET_PMU_NONE, 0, 0, 0, false);
	vcpu_reset_pmu_from_cpuid(NULL, &p);
	assert_pmu(p, VCPU_RESET_PMU_NONE, 0, 0, 0, false);
}

/* APM Vol. 2 §13.2: 4 legacy counters; 6 with PerfCtrExtCore
 * (80000001H:ECX[23]); PerfMonV2 (80000022H:EAX[0]) gives EBX[3:0]. */
static void test_pmu_from_amd_cpuid(void **state)
{
	const struct kvm_cpuid_entry2 legacy[] = { { .function = 0x80000001 } };
	const struct kvm_cpuid_entry2 core[] = { { .function = 0x80000001, .ecx = 1U << 23 } };
	const struct kvm_cpuid_entry2 v2[] = {
		{ .function = 0x80000001, .ecx = 1U << 23 },
		{ .function = 0x80000022, .eax = 1, .ebx = 5 },
	};
	const struct kvm_cpuid_entry2 intel_leaf[] = { { .function = 0xA, .eax = 0x30402 } };

	assert_pmu(pmu_of("AuthenticAMD", legacy, 1), VCPU_RESET_PMU_AMD, 1, 4, 0, false);
	assert_pmu(pmu_of("AuthenticAMD", core, 1), VCPU_RESET_PMU_AMD, 1, 6, 0, true);
	assert_pmu(pmu_of("AuthenticAMD", v2, 2), VCPU_RESET_PMU_AMD, 2, 5, 0, true);
	assert_pmu(pmu_of("HygonGenuine", core, 1), VCPU_RESET_PMU_AMD, 1, 6, 0, true);
	/* The vendor decides, not the presence of leaf 0xA. */
	assert_pmu(pmu_of("AuthenticAMD", intel_leaf, 1), VCPU_RESET_PMU_AMD, 1, 4, 0, false);
}

static void compute_with_pmu(enum vcpu_reset_kind kind, struct vcpu_reset_pmu pmu,
			     struct vcpu_reset_state *s)
{
	struct vcpu_reset_config cfg = bsp_cfg;
	struct vcpu_reset_prior prior;

	cfg.pmu = pmu;
	busy_prior(&prior, 0, true);
	assert_int_equal(vcpu_reset_compute(kind, &cfg, &prior, s), 0);
}

/*
 * SDM Table 9-1: counters and event selects 0 after RESET, unchanged after
 * INIT; IA32_PERF_GLOBAL_CTRL "sets bits n-1:0 and clears the upper bits".
 */
static void test_power_on_clears_intel_counters(void **state)
{
	struct vcpu_reset_state s;
	const struct msr_want msrs[] = {
		MSRS_RESET_ONLY, MSRS_RESET_AND_INIT,
		{ 0x186, 0 }, { 0x187, 0 }, { 0x188, 0 }, { 0x189, 0 }, /* IA32_PERFEVTSEL0-3 */
		{ 0xC1, 0 }, { 0xC2, 0 }, { 0xC3, 0 }, { 0xC4, 0 },     /* IA32_PMC0-3 */
		{ 0x38D, 0 },                                           /* IA32_FIXED_CTR_CTRL */
		{ 0x309, 0 }, { 0x30A, 0 }, { 0x30B, 0 },               /* IA32_FIXED_CTR0-2 */
		{ 0x38E, 0 },                                           /* IA32_PERF_GLOBAL_STATUS */
		{ 0x38F, 0xF },                                         /* IA32_PERF_GLOBAL_CTRL */
	};
	const struct msr_want init_msrs[] = { MSRS_RESET_AND_INIT };
	const struct msr_want v1_msrs[] = {
		MSRS_RESET_ONLY, MSRS_RESET_AND_INIT,
		{ 0x186, 0 }, { 0x187, 0 }, { 0xC1, 0 }, { 0xC2, 0 },
	};
	const struct vcpu_reset_pmu v2 = { VCPU_RESET_PMU_INTEL, 2, 4, 3, false };
	const struct vcpu_reset_pmu v1 = { VCPU_RESET_PMU_INTEL, 1, 2, 0, false };
	const struct vcpu_reset_pmu no_gp = { VCPU_RESET_PMU_INTEL, 2, 0, 3, false };

	compute_with_pmu(VCPU_RESET_POWER_ON, v2, &s);
	assert_msr_list(&s, msrs, ARRAY_SIZE(msrs));
	compute_with_pmu(VCPU_RESET_INIT, v2, &s);
	assert_msr_list(&s, init_msrs, ARRAY_SIZE(init_msrs));
	/* Version 1 has no fixed counters and no global control. */
	compute_with_pmu(VCPU_RESET_POWER_ON, v1, &s);
	assert_msr_list(&s, v1_msrs, ARRAY_SIZE(v1_msrs));
	/* No general-purpose counter: no global enable bit to set. */
	compute_with_pmu(VCPU_RESET_POWER_ON, no_gp, &s);
	assert_msr(&s, 0x38F, 0);
}

static void test_power_on_clears_amd_counters(void **state)
{
	struct vcpu_reset_state s;
	const struct msr_want legacy[] = {
		MSRS_RESET_ONLY, MSRS_RESET_AND_INIT,
		{ 0xC0010000, 0 }, { 0xC0010001, 0 }, { 0xC0010002, 0 }, { 0xC0010003, 0 },
		{ 0xC0010004, 0 }, { 0xC0010005, 0 }, { 0xC0010006, 0 }, { 0xC0010007, 0 },
	};
	const struct msr_want v2[] = {
		MSRS_RESET_ONLY, MSRS_RESET_AND_INIT,
		{ 0xC0010200, 0 }, { 0xC0010201, 0 }, { 0xC0010202, 0 }, { 0xC0010203, 0 },
		{ 0xC0010204, 0 }, { 0xC0010205, 0 }, { 0xC0010206, 0 }, { 0xC0010207, 0 },
		{ 0xC0010208, 0 }, { 0xC0010209, 0 },
		{ 0xC0000300, 0 },    /* PerfCntrGlobalStatus */
		{ 0xC0000301, 0x1F }, /* PerfCntrGlobalCtl: the five counters enabled */
	};
	const struct msr_want init_msrs[] = { MSRS_RESET_AND_INIT };

	compute_with_pmu(VCPU_RESET_POWER_ON, (struct vcpu_reset_pmu){ VCPU_RESET_PMU_AMD, 1, 4, 0, false }, &s);
	assert_msr_list(&s, legacy, ARRAY_SIZE(legacy));
	compute_with_pmu(VCPU_RESET_POWER_ON, (struct vcpu_reset_pmu){ VCPU_RESET_PMU_AMD, 2, 5, 0, true }, &s);
	assert_msr_list(&s, v2, ARRAY_SIZE(v2));
	compute_with_pmu(VCPU_RESET_INIT, (struct vcpu_reset_pmu){ VCPU_RESET_PMU_AMD, 2, 5, 0, true }, &s);
	assert_msr_list(&s, init_msrs, ARRAY_SIZE(init_msrs));
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
		cmocka_unit_test(test_pmu_from_intel_cpuid),
		cmocka_unit_test(test_pmu_from_amd_cpuid),
		cmocka_unit_test(test_power_on_clears_intel_counters),
		cmocka_unit_test(test_power_on_clears_amd_counters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
