/* SPDX-License-Identifier: MIT */
/*
 * Validator differential: each state starts as a generated case's valid
 * special registers and gets one to three faults from the list below, the
 * rules of Linux kvm_is_valid_sregs() and the architectural constraints
 * mmu_validate_vcpu_state() knows (docs/mmu.md §9).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tests/kvm/mmu-diff-sregs.h"
#include "util/macro.h"
#include "vcpu/state.h"

/* EFER bits without a meaning the validator knows: 1-7, 9, 15-63. */
#define EFER_UNDEFINED_LOW 1
#define EFER_UNDEFINED_HIGH 15
/* The states start from the cases of another stream than the walk test's;
 * the faults come from a third. */
#define SREGS_CASE_SALT 0x5EC5ULL
#define PTE_P_BIT 1ULL
#define SREGS_FAULT_SALT 0xFA17ULL

bool diff_validator_rejects(const struct kvm_sregs2 *s, const struct mmu_cpu_features *f,
			    struct mmu_issue_list *ret_issues)
{
	struct mmu_vcpu_state state;
	struct mmu_issue_list issues;
	bool rejects = false;

	vcpu_sregs_mmu_state(s, &state);
	if (mmu_validate_vcpu_state(&state, f, NULL, &issues) < 0)
		return false;
	for (unsigned int i = 0; i < issues.count; i++)
		rejects |= issues.issue[i].kvm_rejects;
	if (ret_issues)
		*ret_issues = issues;
	return rejects;
}

/* ---------------------------------------------------------------- faults */

static uint64_t random_bit_of(struct diff_rng *r, const uint64_t *bits, size_t n)
{
	return bits[diff_rng_below(r, n)];
}

/* A present PDPTE bit that is reserved: 2:1 or M..63 (MMU.md §2.4). */
static uint64_t pdpte_reserved_bit(struct diff_rng *r, unsigned int maxphyaddr)
{
	uint64_t bit = diff_rng_chance(r, 50)
			       ? BIT(1 + diff_rng_below(r, 2))
			       : BIT(maxphyaddr + diff_rng_below(r, 64 - maxphyaddr));

	return PTE_P_BIT | bit;
}

static void inject_fault(struct diff_rng *r, struct kvm_sregs2 *s, unsigned int maxphyaddr)
{
	/* CR4 bits with a CPUID feature or a mode rule (SDM Vol. 3A §2.5). */
	static const uint64_t cr4_bits[] = {
		MMU_CR4_PSE,  MMU_CR4_PAE,	MMU_CR4_LA57, MMU_CR4_SMEP, MMU_CR4_SMAP,
		MMU_CR4_PKE,  MMU_CR4_PCIDE,	MMU_CR4_VMXE, MMU_CR4_SMXE, MMU_CR4_OSXSAVE,
		MMU_CR4_UMIP, MMU_CR4_FSGSBASE, MMU_CR4_CET,  MMU_CR4_PKS,  MMU_CR4_LAM_SUP,
		BIT(15),      BIT(26),		BIT(31),      BIT(40),
	};
	static const uint64_t efer_bits[] = {
		MMU_EFER_LME, MMU_EFER_LMA,  MMU_EFER_NX,
		MMU_EFER_SCE, MMU_EFER_SVME, MMU_EFER_FFXSR,
	};

	/* Reserved CR0 bits below 32 (SDM Vol. 3A §2.5): KVM clears them. */
	static const uint64_t cr0_reserved[] = { BIT(6), BIT(15), BIT(17), BIT(19), BIT(28) };

	switch (diff_rng_below(r, 14)) {
	case 0:
		s->cr0 ^= MMU_CR0_PG;
		break;
	case 1:
		s->cr0 ^= MMU_CR0_PE;
		break;
	case 2:
		s->cr0 ^= diff_rng_chance(r, 50) ? MMU_CR0_NW : MMU_CR0_CD;
		break;
	case 3:
		s->cr0 |= BIT(32 + diff_rng_below(r, 32));
		break;
	case 4:
		s->cr4 ^= random_bit_of(r, cr4_bits, ARRAY_SIZE(cr4_bits));
		break;
	case 5:
		s->efer ^= random_bit_of(r, efer_bits, ARRAY_SIZE(efer_bits));
		break;
	case 6:
		s->efer |= diff_rng_chance(r, 50)
				   ? BIT(EFER_UNDEFINED_LOW + diff_rng_below(r, 7))
				   : BIT(EFER_UNDEFINED_HIGH + diff_rng_below(r, 49));
		break;
	case 7:
		s->cs.l ^= 1;
		break;
	case 8:
		s->cs.db ^= 1;
		break;
	case 9:
		s->cr3 |= BIT(maxphyaddr + diff_rng_below(r, 64 - maxphyaddr));
		break;
	case 10:
		s->cr0 |= random_bit_of(r, cr0_reserved, ARRAY_SIZE(cr0_reserved));
		break;
	case 11:
		s->cr8 = 16 + diff_rng_below(r, 240);
		break;
	case 12:
		s->pdptrs[diff_rng_below(r, 4)] |= pdpte_reserved_bit(r, maxphyaddr);
		break;
	default:
		s->flags ^= KVM_SREGS2_FLAGS_PDPTRS_VALID;
		break;
	}
}

/* ---------------------------------------------------------------- the run */

/*
 * Base states use only the features on which the host's KVM_SET_SREGS2
 * and the CPUID the vCPU holds agree; states that end up with a CR4 bit
 * on which they disagree (the host probe lists them) are skipped, since
 * the validator reads CPUID as KVM proper does.
 */
static struct mmu_cpu_features agreed_features(const struct diff_host *h)
{
	struct mmu_cpu_features f = h->usable;

	f.smep = f.smep && h->cpuid.smep;
	f.smap = f.smap && h->cpuid.smap;
	f.pku = f.pku && h->cpuid.pku;
	f.la57 = f.la57 && h->cpuid.la57;
	return f;
}

static void report(const struct kvm_sregs2 *s, uint64_t index, bool predicted, int r,
		   const struct mmu_issue_list *issues)
{
	printf("MISMATCH state %llu: CR0=0x%llx CR3=0x%llx CR4=0x%llx EFER=0x%llx CS.L=%u "
	       "CS.D=%u PDPTRS_VALID=%u\n",
	       (unsigned long long)index, (unsigned long long)s->cr0, (unsigned long long)s->cr3,
	       (unsigned long long)s->cr4, (unsigned long long)s->efer, s->cs.l, s->cs.db,
	       !!(s->flags & KVM_SREGS2_FLAGS_PDPTRS_VALID));
	printf("  mmu/ validator: KVM %s it\n", predicted ? "refuses" : "accepts");
	for (unsigned int i = 0; i < issues->count; i++)
		printf("    %s%s: %s\n", mmu_issue_code_name(issues->issue[i].code),
		       issues->issue[i].kvm_rejects ? " (KVM refuses)" : "", issues->issue[i].msg);
	printf("  KVM_SET_SREGS2: %s\n", r < 0 ? strerror(-r) : "accepted");
}

static void count_issues(struct diff_sregs_result *res, const struct mmu_issue_list *issues)
{
	bool seen[DIFF_NR_ISSUE_CODES] = { false };

	for (unsigned int i = 0; i < issues->count; i++)
		if (issues->issue[i].code < DIFF_NR_ISSUE_CODES && !seen[issues->issue[i].code]) {
			seen[issues->issue[i].code] = true;
			res->issues[issues->issue[i].code]++;
		}
}

int diff_sregs_run(struct diff_vm *vm, const struct diff_host *host, uint64_t seed, uint64_t count,
		   unsigned int max_reports, struct diff_sregs_result *ret, struct error *err)
{
	struct diff_sregs_result res = { .states = 0 };
	struct mmu_cpu_features agreed = agreed_features(host);
	struct diff_generator gen;

	diff_generator_init(&gen, &agreed);
	for (uint64_t i = 0; i < count; i++) {
		struct diff_rng r;
		struct diff_case c;
		struct kvm_sregs2 s;
		struct mmu_issue_list issues;
		bool predicted;
		int rc;

		diff_rng_seed(&r, seed ^ SREGS_FAULT_SALT, i);
		diff_case_generate(&gen, seed ^ SREGS_CASE_SALT, i, &c);
		rc = diff_vm_get_sregs(vm, &s);
		if (rc < 0)
			return error_set(err, rc, "KVM_GET_SREGS2: %s", strerror(-rc));
		diff_case_sregs(&c, &s);
		for (unsigned int n = 1 + (unsigned int)diff_rng_below(&r, 3); n; n--)
			inject_fault(&r, &s, host->cpuid.maxphyaddr);
		res.states++;
		if (s.cr4 & host->cr4_disagree) {
			res.skipped++;
			continue;
		}
		predicted = diff_validator_rejects(&s, &host->cpuid, &issues);
		count_issues(&res, &issues);
		rc = diff_vm_set_sregs(vm, &s);
		if (rc < 0 && rc != -EINVAL)
			return error_set(err, rc, "KVM_SET_SREGS2: %s", strerror(-rc));
		if (predicted == (rc < 0)) {
			res.refused += predicted;
			res.accepted += !predicted;
			continue;
		}
		if (res.mismatches++ < max_reports)
			report(&s, i, predicted, rc, &issues);
	}
	*ret = res;
	return 0;
}
