/* SPDX-License-Identifier: MIT */
/*
 * What the host's KVM can run for the mmu/ differential test, found by
 * probing it: which CR4-controlled paging features KVM_SET_SREGS2 accepts,
 * and which known deviations from KVM proper the host shows. A case in a
 * deviating class is skipped and counted, never compared; each probe runs
 * one case whose architectural outcome is certain.
 */
#ifndef VMMD_TESTS_KVM_MMU_DIFF_HOST_H
#define VMMD_TESTS_KVM_MMU_DIFF_HOST_H

#include <stdbool.h>

#include "tests/kvm/mmu-diff-case.h"
#include "tests/kvm/mmu-diff-vm.h"

enum diff_deviation {
	DIFF_DEVIATION_NONE,
	DIFF_DEVIATION_32BIT_PAGING,	/* 32-bit paging does not run */
	DIFF_DEVIATION_PAE_PAGING,	/* PAE paging does not run */
	DIFF_DEVIATION_PKRU_RING3,	/* CPL 3 accesses obey PKRU's key 0 */
	DIFF_DEVIATION_RING3_PML4E_256, /* CPL 3 cannot reach PML4E 256 */
	DIFF_DEVIATION_PKEY_FETCH,	/* CPL-3 code on an access-disabled key cannot report */
	DIFF_NR_DEVIATIONS,
};

struct diff_host {
	struct mmu_cpu_features offered; /* from KVM's supported CPUID, set on the vCPU */
	struct mmu_cpu_features cpuid;	 /* from the CPUID KVM holds for the vCPU */
	struct mmu_cpu_features usable;	 /* what cases may use */
	bool pke_accepted;		 /* CR4.PKE (PKU also needs PKRU loading) */
	uint64_t cr4_disagree;		 /* CR4 bits accepted iff CPUID lacks them */
	bool present[DIFF_NR_DEVIATIONS];
};

/*
 * Probes vm: the CR4 bits KVM_SET_SREGS2 accepts, then one case per known
 * deviation (reads only: guest data stays as it was). Returns 0, or a negative
 * errno with a message when a KVM ioctl fails.
 */
int diff_host_probe(struct diff_vm *vm, struct diff_host *ret, struct error *err);

/* The deviation class c belongs to on this host, or DIFF_DEVIATION_NONE. */
enum diff_deviation diff_host_deviation(const struct diff_host *host, const struct diff_case *c);

/* "because ..." text for a skipped class. */
const char *diff_deviation_reason(enum diff_deviation d);

/* The cases of a skipped class, e.g. "32-bit paging cases". */
const char *diff_deviation_cases(enum diff_deviation d);

/* Whether the host runs paging mode `mode` at all (not: every case of it). */
bool diff_host_runs_mode(const struct diff_host *host, enum mmu_paging_mode mode);

/* Prints the features and the deviations found. */
void diff_host_print(const struct diff_host *host);

#endif
