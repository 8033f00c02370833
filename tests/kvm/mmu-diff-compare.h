/* SPDX-License-Identifier: MIT */
/*
 * mmu/'s side of the differential test: the prediction for a case, its
 * comparison with what KVM's guest observed, and the mismatch report.
 */
#ifndef VMMD_TESTS_KVM_MMU_DIFF_COMPARE_H
#define VMMD_TESTS_KVM_MMU_DIFF_COMPARE_H

#include <stdbool.h>
#include <stddef.h>

#include "mmu/mmu.h"
#include "tests/kvm/mmu-diff-case.h"
#include "tests/kvm/mmu-diff-vm.h"
#include "util/macro.h"

#define DIFF_MISMATCH_MAX 4096

struct diff_prediction {
	struct mmu_walk_result walk;	  /* the access (DIFF_DESC_WRITE: the write-back) */
	struct mmu_walk_result desc_read; /* DIFF_DESC_WRITE: the descriptor read */
	bool write_back;		  /* walk is the write-back */
};

/* Text of every difference found in one case; empty when it matched. */
struct diff_mismatch {
	char text[DIFF_MISMATCH_MAX];
	size_t len;
};

/* Appends a line (or part of one) to m, cut at its capacity. */
void diff_note(struct diff_mismatch *m, const char *fmt, ...) _printf_(2, 3);

/*
 * mmu/'s verdict for case c with MMU_CTX_KVM_COMPAT on the model's copy of
 * its tables (which it updates: A/D bits as the CPU sets them). Returns 0,
 * or the negative errno of mmu_context_init()/mmu_walk().
 */
int diff_predict(const struct diff_memory *model, const struct mmu_cpu_features *features,
		 const struct diff_case *c, struct diff_prediction *ret);

/* Appends to m every way obs and the guest's memory differ from p and the
 * model's memory. */
void diff_compare(const struct diff_memory *guest, const struct diff_memory *model,
		  const struct diff_case *c, const struct diff_prediction *p,
		  const struct diff_observation *obs, struct diff_mismatch *m);

/* Prints a mismatch on stdout: how to reproduce it, the case, mmu/'s walk
 * and m. */
void diff_report_mismatch(const struct diff_case *c, const struct diff_prediction *p,
			  const struct diff_mismatch *m);

/* Prints a case that matched the same way, with what the guest observed. */
void diff_report_match(const struct diff_case *c, const struct diff_prediction *p,
		       const struct diff_observation *obs);

#endif
