/* SPDX-License-Identifier: MIT */
/*
 * cpustate: puts known values in the registers vcpu.registers shows beyond
 * the general ones, then counts in ring 3. Ring 0 (kernel.c, on the demo's
 * long-mode entry) writes the system-call MSRs; ring 3 (user.S) loads x87,
 * MXCSR and XMM0-15 and then only increments R15, forever. Tests read the
 * values back through the API and use the counter to see a loaded vCPU
 * state go back in time (tests/guests/README.md).
 */
#ifndef CPUSTATE_H
#define CPUSTATE_H

/* SDM Vol. 4 (MSR index), values written by ring 0. All addresses are
 * canonical: KVM refuses others for these MSRs. */
#define CPUSTATE_SYSENTER_CS 0x10
#define CPUSTATE_SYSENTER_ESP 0xfffffe0000001000
#define CPUSTATE_SYSENTER_EIP 0xffffffff81a00200
#define CPUSTATE_STAR 0x0023001000000000
#define CPUSTATE_LSTAR 0xffffffff81a00000
#define CPUSTATE_CSTAR 0xffffffff81a00100
#define CPUSTATE_SFMASK 0x47700
#define CPUSTATE_KERNEL_GS_BASE 0xffff888012345000

/* Loaded by ring 3 (user.S). FCW: all exceptions masked, 53-bit precision.
 * MXCSR: flush-to-zero, round down, all exceptions masked,
 * denormals-are-zero. XMMn byte j = 16 * n + j. */
#define CPUSTATE_FCW 0x027f
#define CPUSTATE_MXCSR 0xbfc0

#endif
