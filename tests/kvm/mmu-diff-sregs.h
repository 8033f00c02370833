/* SPDX-License-Identifier: MIT */
/*
 * The state half of the mmu/ differential test: mmu_validate_vcpu_state()'s
 * kvm_rejects verdict against what KVM_SET_SREGS2 really does, on valid
 * states with random faults injected (CR0/CR4/EFER bits, CS.L/D, CR3
 * above MAXPHYADDR, PDPTEs outside PAE paging).
 */
#ifndef VMMD_TESTS_KVM_MMU_DIFF_SREGS_H
#define VMMD_TESTS_KVM_MMU_DIFF_SREGS_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "tests/kvm/mmu-diff-host.h"
#include "tests/kvm/mmu-diff-vm.h"

/* Whether mmu/'s validator says KVM_SET_SREGS2 refuses s, for the CPU
 * model f; every issue it found goes to *ret_issues (if not NULL). */
bool diff_validator_rejects(const struct kvm_sregs2 *s, const struct mmu_cpu_features *f,
			    struct mmu_issue_list *ret_issues);

#define DIFF_NR_ISSUE_CODES (MMU_ISSUE_NESTED + 1)

struct diff_sregs_result {
	uint64_t states;
	uint64_t refused;  /* by KVM, as mmu/ predicted */
	uint64_t accepted; /* by KVM, as mmu/ predicted */
	uint64_t mismatches;
	uint64_t skipped; /* states in a class where the host differs from KVM proper */
	uint64_t issues[DIFF_NR_ISSUE_CODES]; /* compared states with each issue */
};

/*
 * Tries `count` states derived from seed on vm's vCPU and compares each
 * outcome with the validator's, reporting up to max_reports mismatches on
 * stdout. Returns 0 with *ret filled, or a negative errno (KVM failure).
 * The vCPU's state afterwards is arbitrary: load a full state before
 * running it.
 */
int diff_sregs_run(struct diff_vm *vm, const struct diff_host *host, uint64_t seed, uint64_t count,
		   unsigned int max_reports, struct diff_sregs_result *ret, struct error *err);

#endif
