/* SPDX-License-Identifier: MIT */
/*
 * Statistics of the mmu/ differential test: what was compared, what was
 * skipped and why, and the summary printed at the end of a run.
 */
#ifndef VMMD_TESTS_KVM_MMU_DIFF_STATS_H
#define VMMD_TESTS_KVM_MMU_DIFF_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "mmu/mmu.h"
#include "tests/kvm/mmu-diff-case.h"
#include "tests/kvm/mmu-diff-host.h"

#define DIFF_NR_MODES (MMU_MODE_5LEVEL + 1)

/* What mmu/ expects a case to end in. */
enum diff_class {
	DIFF_CLASS_SUCCESS,
	DIFF_CLASS_PF_NOT_PRESENT,
	DIFF_CLASS_PF_RESERVED,
	DIFF_CLASS_PF_PROTECTION, /* permission or protection key */
	DIFF_CLASS_GP,		  /* non-canonical address */
	DIFF_CLASS_OTHER,
	DIFF_NR_CLASSES,
};

/* Features and shapes counted over the compared cases. */
enum diff_feature {
	DIFF_FEAT_WP,
	DIFF_FEAT_NX,
	DIFF_FEAT_PSE_32BIT,
	DIFF_FEAT_LA57_OUTSIDE_LONG,
	DIFF_FEAT_AC,
	DIFF_FEAT_PAGE_4M,
	DIFF_FEAT_PAGE_2M,
	DIFF_FEAT_PAGE_1G,
	DIFF_FEAT_ABOVE_4G,
	DIFF_FEAT_PKEY_BITS,
	DIFF_FEAT_SMEP,
	DIFF_FEAT_SMAP,
	DIFF_FEAT_PKE,
	DIFF_FEAT_ROM_TABLE,
	DIFF_NR_FEATURES,
};

struct diff_stats {
	uint64_t cases[DIFF_NR_MODES][2]; /* [mode][cpl == 3] */
	uint64_t mismatches[DIFF_NR_MODES][2];
	uint64_t classes[DIFF_NR_CLASSES];
	uint64_t class_mismatches[DIFF_NR_CLASSES][2]; /* [class][cpl == 3] */
	uint64_t accesses[DIFF_NR_ACCESSES];
	uint64_t features[DIFF_NR_FEATURES];
	uint64_t skipped[DIFF_NR_DEVIATIONS];
	uint64_t invalid;      /* states mmu/'s validator says KVM refuses: not cases */
	uint64_t self_checked; /* cases not run, predicted on the model only */
	uint64_t model_only[DIFF_NR_MODES]; /* the same by paging mode */
	uint64_t self_check_failures;
};

enum diff_class diff_classify(const struct mmu_fault *f);
const char *diff_class_name(enum diff_class cls);

/* Counts a compared case. */
void diff_stats_add(struct diff_stats *s, const struct diff_case *c, enum diff_class cls,
		    bool matched);

/* Prints the summary of a run with `seed` that took `seconds`. */
void diff_stats_print(const struct diff_stats *s, uint64_t seed, double seconds);

#endif
