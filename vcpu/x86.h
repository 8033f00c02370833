/* SPDX-License-Identifier: MIT */
/*
 * x86 architectural constants used by vcpu/: register bits, reset values,
 * MSR indices, local APIC register offsets and the XSAVE layout. Internal
 * to vcpu/ (and its tests). Sources are given per group.
 */
#ifndef VMMD_VCPU_X86_H
#define VMMD_VCPU_X86_H

#include <stdint.h>

/* RFLAGS bit 1 reads as 1 (SDM Vol. 1 §3.4.3). */
#define X86_RFLAGS_FIXED 0x2ULL

/* CR0, CR4 and EFER bits: MMU_CR0_*, MMU_CR4_*, MMU_EFER_* in mmu/mmu.h. */

/* DR6/DR7 after RESET (SDM Table 9-1); bits 63:32 must be zero (§17.2). */
#define X86_DR6_RESET 0xFFFF0FF0ULL
#define X86_DR7_RESET 0x400ULL

/* Segment descriptor types (SDM Vol. 3A §3.4.5.1, Table 3-2). */
#define X86_SEG_DATA_RW_ACCESSED 0x3
#define X86_SEG_CODE_XR_ACCESSED 0xB
#define X86_SEG_SYS_LDT 0x2
#define X86_SEG_SYS_TSS32_BUSY 0xB

/* x87/SSE values after RESET (SDM Table 9-1). */
#define X86_FCW_RESET 0x0040
#define X86_FTW_RESET 0x5555
/* FTW 0x5555 (all "zero") as FXSAVE's abridged tag byte: all non-empty. */
#define X86_FTW_ABRIDGED_ALL_VALID 0xFF
#define X86_MXCSR_RESET 0x1F80

/* XCR0 / XSTATE_BV component bits (SDM Vol. 1 §13.1). */
#define X86_XFEATURE_X87 (1ULL << 0)
#define X86_XFEATURE_SSE (1ULL << 1)
#define X86_XFEATURE_YMM (1ULL << 2)
#define X86_XFEATURE_BNDREGS (1ULL << 3)
#define X86_XFEATURE_BNDCSR (1ULL << 4)
#define X86_XFEATURE_OPMASK (1ULL << 5)
#define X86_XFEATURE_ZMM_HI256 (1ULL << 6)
#define X86_XFEATURE_HI16_ZMM (1ULL << 7)
#define X86_XFEATURE_PKRU (1ULL << 9)
#define X86_XFEATURE_AVX512 (X86_XFEATURE_OPMASK | X86_XFEATURE_ZMM_HI256 | X86_XFEATURE_HI16_ZMM)
#define X86_XCR0_X87 X86_XFEATURE_X87

/* XSAVE image layout: the FXSAVE legacy area (SDM Vol. 1 Table 10-2) and
 * the XSAVE header at 512 (§13.4.2). */
#define XSAVE_FCW 0
#define XSAVE_FSW 2
#define XSAVE_FTW 4
#define XSAVE_FOP 6
#define XSAVE_FIP 8
#define XSAVE_FCS 12 /* FIP bits 47:32 in the 32-bit FXSAVE format */
#define XSAVE_FDP 16
#define XSAVE_FDS 20
#define XSAVE_MXCSR 24
#define XSAVE_MXCSR_MASK 28
#define XSAVE_ST0 32
#define XSAVE_XMM0 160
#define XSAVE_XSTATE_BV 512
#define XSAVE_XCOMP_BV 520
#define XSAVE_LEGACY_AND_HEADER 576

/* IA32_APIC_BASE (SDM Vol. 3A §10.4.4, §10.12.1). */
#define X86_APIC_DEFAULT_BASE 0xFEE00000ULL
#define X86_APIC_BASE_BSP (1ULL << 8)
#define X86_APIC_BASE_EXTD (1ULL << 10)
#define X86_APIC_BASE_ENABLE (1ULL << 11)

/* IA32_PAT after RESET (SDM Vol. 3A §11.12.4). */
#define X86_PAT_RESET 0x0007040600070406ULL

/* SMBASE after RESET: "the default SMRAM base is 30000H" (SDM Vol. 3C
 * §34.11, SMBASE relocation; MMU.md §6). */
#define X86_SMBASE_RESET 0x30000ULL

/* Local APIC register offsets (SDM Vol. 3A Table 10-1). */
#define APIC_ID 0x20
#define APIC_VERSION 0x30
#define APIC_TPR 0x80
#define APIC_LDR 0xD0
#define APIC_DFR 0xE0
#define APIC_SPURIOUS 0xF0
#define APIC_ISR 0x100
#define APIC_IRR 0x200
#define APIC_ESR 0x280
#define APIC_LVT_CMCI 0x2F0
#define APIC_ICR_LOW 0x300
#define APIC_ICR_HIGH 0x310
#define APIC_LVT_TIMER 0x320
#define APIC_LVT_THERMAL 0x330
#define APIC_LVT_PERF 0x340
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_LVT_ERROR 0x370
#define APIC_TIMER_INITIAL 0x380
#define APIC_TIMER_CURRENT 0x390
#define APIC_TIMER_DIVIDE 0x3E0
#define APIC_LVT_MASKED (1U << 16)
#define APIC_VERSION_MAX_LVT(v) (((v) >> 16) & 0xFF)
#define APIC_LVT_CMCI_INDEX 6 /* the 7th LVT entry */
#define APIC_DM_EXTINT 0x700

/* MSR indices (SDM Vol. 4; KVM's Documentation/virt/kvm/x86/msr.rst). */
#define MSR_IA32_TSC 0x10
#define MSR_IA32_APIC_BASE 0x1B
#define MSR_IA32_TSC_ADJUST 0x3B
#define MSR_IA32_SPEC_CTRL 0x48
#define MSR_IA32_MTRRCAP 0xFE
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_DEBUGCTL 0x1D9
#define MSR_IA32_MTRR_PHYSBASE0 0x200
#define MSR_IA32_MTRR_FIX64K_00000 0x250
#define MSR_IA32_MTRR_FIX16K_80000 0x258
#define MSR_IA32_MTRR_FIX16K_A0000 0x259
#define MSR_IA32_MTRR_FIX4K_C0000 0x268
#define MSR_IA32_MTRR_FIX4K_F8000 0x26F
#define MSR_IA32_PAT 0x277
#define MSR_IA32_MTRR_DEF_TYPE 0x2FF
#define MSR_IA32_TSC_DEADLINE 0x6E0
#define MSR_IA32_SMBASE 0x9E /* KVM's SMBASE, host-initiated access only, where KVM has SMM */
#define MSR_IA32_BNDCFGS 0xD90
#define MSR_IA32_XSS 0xDA0
/* Architectural performance monitoring (SDM Vol. 3B §18.2, Vol. 4 Table 2-2). */
#define MSR_IA32_PMC0 0xC1
#define MSR_IA32_PERFEVTSEL0 0x186
#define MSR_IA32_FIXED_CTR0 0x309
#define MSR_IA32_FIXED_CTR_CTRL 0x38D
#define MSR_IA32_PERF_GLOBAL_STATUS 0x38E
#define MSR_IA32_PERF_GLOBAL_CTRL 0x38F
/* AMD core performance counters (APM Vol. 2 §13.2.1; PerfMonV2 §13.2.2). */
#define MSR_K7_EVNTSEL0 0xC0010000
#define MSR_K7_PERFCTR0 0xC0010004
#define MSR_F15H_PERF_CTL0 0xC0010200 /* CTLn at 0xC0010200 + 2n, CTRn at + 2n + 1 */
#define MSR_AMD64_PERF_CNTR_GLOBAL_STATUS 0xC0000300
#define MSR_AMD64_PERF_CNTR_GLOBAL_CTL 0xC0000301
#define MSR_EFER 0xC0000080
#define MSR_STAR 0xC0000081
#define MSR_LSTAR 0xC0000082
#define MSR_CSTAR 0xC0000083
#define MSR_SYSCALL_MASK 0xC0000084
#define MSR_FS_BASE 0xC0000100
#define MSR_GS_BASE 0xC0000101
#define MSR_KERNEL_GS_BASE 0xC0000102
#define MSR_TSC_AUX 0xC0000103
#define MSR_KVM_WALL_CLOCK 0x11
#define MSR_KVM_SYSTEM_TIME 0x12
#define MSR_KVM_WALL_CLOCK_NEW 0x4B564D00
#define MSR_KVM_SYSTEM_TIME_NEW 0x4B564D01
#define MSR_KVM_ASYNC_PF_EN 0x4B564D02
#define MSR_KVM_STEAL_TIME 0x4B564D03
#define MSR_KVM_PV_EOI_EN 0x4B564D04
#define MSR_KVM_POLL_CONTROL 0x4B564D05
#define MSR_KVM_ASYNC_PF_INT 0x4B564D06
#define MSR_KVM_ASYNC_PF_ACK 0x4B564D07

#endif
