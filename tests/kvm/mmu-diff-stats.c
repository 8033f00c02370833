/* SPDX-License-Identifier: MIT */
/*
 * Counters of the mmu/ differential test and the summary it prints: cases
 * by paging mode and CPL, by expected outcome, by access and by feature,
 * and every class skipped.
 */
#include <stdio.h>

#include "tests/kvm/mmu-diff-stats.h"
#include "tests/kvm/mmu-diff.h"

static const char *const class_names[DIFF_NR_CLASSES] = {
	[DIFF_CLASS_SUCCESS] = "success",
	[DIFF_CLASS_PF_NOT_PRESENT] = "#PF not present",
	[DIFF_CLASS_PF_RESERVED] = "#PF reserved bit",
	[DIFF_CLASS_PF_PROTECTION] = "#PF protection",
	[DIFF_CLASS_GP] = "#GP non-canonical",
	[DIFF_CLASS_OTHER] = "other",
};

static const char *const feature_names[DIFF_NR_FEATURES] = {
	[DIFF_FEAT_WP] = "CR0.WP=1",
	[DIFF_FEAT_NX] = "EFER.NX=1",
	[DIFF_FEAT_PSE_32BIT] = "CR4.PSE=1 with 32-bit paging",
	[DIFF_FEAT_LA57_OUTSIDE_LONG] = "CR4.LA57=1 outside IA-32e mode",
	[DIFF_FEAT_AC] = "EFLAGS.AC=1",
	[DIFF_FEAT_PAGE_4M] = "4 MiB pages",
	[DIFF_FEAT_PAGE_2M] = "2 MiB pages",
	[DIFF_FEAT_PAGE_1G] = "1 GiB pages",
	[DIFF_FEAT_ABOVE_4G] = "data above 4 GiB",
	[DIFF_FEAT_PKEY_BITS] = "leaf protection-key bits set",
	[DIFF_FEAT_SMEP] = "CR4.SMEP=1",
	[DIFF_FEAT_SMAP] = "CR4.SMAP=1",
	[DIFF_FEAT_PKE] = "CR4.PKE=1",
	[DIFF_FEAT_ROM_TABLE] = "a table in ROM",
};

enum diff_class diff_classify(const struct mmu_fault *f)
{
	switch (f->type) {
	case MMU_FAULT_NONE:
		return DIFF_CLASS_SUCCESS;
	case MMU_FAULT_PF:
		if (!(f->error_code & MMU_PFERR_P))
			return DIFF_CLASS_PF_NOT_PRESENT;
		return (f->error_code & MMU_PFERR_RSVD) ? DIFF_CLASS_PF_RESERVED
							: DIFF_CLASS_PF_PROTECTION;
	case MMU_FAULT_GP:
		return DIFF_CLASS_GP;
	default:
		return DIFF_CLASS_OTHER;
	}
}

static void count_features(struct diff_stats *s, const struct diff_case *c)
{
	bool paging = c->mode != MMU_MODE_NONE;

	s->features[DIFF_FEAT_WP] += !!(c->regs.cr0 & MMU_CR0_WP);
	s->features[DIFF_FEAT_NX] += !!(c->regs.efer & MMU_EFER_NX);
	s->features[DIFF_FEAT_PSE_32BIT] +=
		c->mode == MMU_MODE_32BIT && (c->regs.cr4 & MMU_CR4_PSE);
	s->features[DIFF_FEAT_LA57_OUTSIDE_LONG] +=
		(c->regs.cr4 & MMU_CR4_LA57) && !(c->regs.efer & MMU_EFER_LMA);
	s->features[DIFF_FEAT_AC] += c->eflags_ac;
	s->features[DIFF_FEAT_PAGE_4M] += paging && c->page_size == 4ULL << 20;
	s->features[DIFF_FEAT_PAGE_2M] += paging && c->page_size == 2ULL << 20;
	s->features[DIFF_FEAT_PAGE_1G] += paging && c->page_size == 1ULL << 30;
	s->features[DIFF_FEAT_ABOVE_4G] += c->data_gpa >= DIFF_DATA_HIGH;
	s->features[DIFF_FEAT_PKEY_BITS] += (c->regs.efer & MMU_EFER_LMA) && c->nr_entries &&
					    (c->entries[c->nr_entries - 1].value >> 59 & 0xF);
	s->features[DIFF_FEAT_SMEP] += !!(c->regs.cr4 & MMU_CR4_SMEP);
	s->features[DIFF_FEAT_SMAP] += !!(c->regs.cr4 & MMU_CR4_SMAP);
	s->features[DIFF_FEAT_PKE] += !!(c->regs.cr4 & MMU_CR4_PKE);
	s->features[DIFF_FEAT_ROM_TABLE] += c->rom_level != 0;
}

void diff_stats_print(const struct diff_stats *s, uint64_t seed, double seconds)
{
	uint64_t total = 0, bad = 0;

	printf("mmu-diff: cases compared with KVM by paging mode and CPL (mismatches in "
	       "brackets), and cases predicted on the model alone\n");
	for (unsigned int mode = 0; mode < DIFF_NR_MODES; mode++) {
		printf("  %-8s CPL 0: %7llu [%llu]   CPL 3: %7llu [%llu]   model only: %7llu\n",
		       mmu_paging_mode_name(mode), (unsigned long long)s->cases[mode][0],
		       (unsigned long long)s->mismatches[mode][0],
		       (unsigned long long)s->cases[mode][1],
		       (unsigned long long)s->mismatches[mode][1],
		       (unsigned long long)s->model_only[mode]);
		total += s->cases[mode][0] + s->cases[mode][1];
		bad += s->mismatches[mode][0] + s->mismatches[mode][1];
	}
	printf("mmu-diff: expected outcomes (mismatches at CPL 0/3):");
	for (unsigned int i = 0; i < DIFF_NR_CLASSES; i++)
		printf(" %s %llu [%llu/%llu]%s", class_names[i], (unsigned long long)s->classes[i],
		       (unsigned long long)s->class_mismatches[i][0],
		       (unsigned long long)s->class_mismatches[i][1],
		       i + 1 < DIFF_NR_CLASSES ? "," : "\n");
	printf("mmu-diff: accesses:");
	for (unsigned int i = 0; i < DIFF_NR_ACCESSES; i++)
		printf(" %s %llu%s", diff_access_name(i), (unsigned long long)s->accesses[i],
		       i + 1 < DIFF_NR_ACCESSES ? "," : "\n");
	printf("mmu-diff: cases with");
	for (unsigned int i = 0; i < DIFF_NR_FEATURES; i++)
		printf(" %s: %llu%s", feature_names[i], (unsigned long long)s->features[i],
		       i + 1 < DIFF_NR_FEATURES ? "," : "\n");
	if (s->self_checked)
		printf("mmu-diff: %llu cases not run were predicted on the model alone (not a "
		       "comparison with KVM: mmu/ must translate where the chain points), %llu "
		       "inconsistent\n",
		       (unsigned long long)s->self_checked,
		       (unsigned long long)s->self_check_failures);
	if (s->invalid)
		printf("mmu-diff: %llu generated states are invalid (mmu/'s validator: KVM refuses "
		       "them), not cases\n",
		       (unsigned long long)s->invalid);
	printf("mmu-diff: %llu cases compared, %llu mismatches, seed 0x%llx, %.1f s\n",
	       (unsigned long long)total, (unsigned long long)(bad + s->self_check_failures),
	       (unsigned long long)seed, seconds);
}

const char *diff_class_name(enum diff_class cls)
{
	return cls < DIFF_NR_CLASSES ? class_names[cls] : "?";
}

void diff_stats_add(struct diff_stats *s, const struct diff_case *c, enum diff_class cls,
		    bool matched)
{
	bool cpl3 = c->cpl == 3;

	s->cases[c->mode][cpl3]++;
	s->classes[cls]++;
	s->accesses[c->access]++;
	count_features(s, c);
	if (!matched) {
		s->mismatches[c->mode][cpl3]++;
		s->class_mismatches[cls][cpl3]++;
	}
}
