/* SPDX-License-Identifier: MIT */
/*
 * Host probes of the mmu/ differential test. Every deviation below was
 * found by this test on PVM-backed KVM (kvm_pvm) and is probed for rather
 * than assumed, so a host without it runs the whole class.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "tests/kvm/mmu-diff-host.h"
#include "tests/kvm/mmu-diff.h"

/* A data page and addresses for the probes (docs/mmu.md lists them). */
#define PROBE_DATA (DIFF_DATA_LOW + 0x5000)
#define PROBE_GVA_32 0x40001008ULL
#define PROBE_GVA_64 0x0000123456789008ULL
#define PROBE_GVA_PML4E_256 0xFFFF800000001008ULL /* PML4E 256: the first upper-half slot */

static const char *const reasons[DIFF_NR_DEVIATIONS] = {
	[DIFF_DEVIATION_32BIT_PAGING] =
		"this host's KVM cannot run 32-bit paging (a plain CPL-0 read does not complete; "
		"kvm_pvm supports paging only in IA-32e mode)",
	[DIFF_DEVIATION_PAE_PAGING] =
		"this host's KVM cannot run PAE paging (a plain CPL-0 read does not complete; "
		"kvm_pvm supports paging only in IA-32e mode)",
	[DIFF_DEVIATION_PKRU_RING3] =
		"this host's KVM applies PKRU key 0 to CPL-3 accesses with paging, whatever "
		"CR4.PKE and the leaf's key say (as if PVM's native ring 3 ran with the guest's "
		"PKRU and key 0 in every shadow entry)",
	[DIFF_DEVIATION_RING3_PML4E_256] =
		"this host's KVM faults every CPL-3 access through PML4E 256 "
		"(0xffff800000000000-0xffff807fffffffff, reserved by PVM)",
	[DIFF_DEVIATION_PKEY_FETCH] =
		"this host's KVM raises #PF(P|U|I|PK) at the fetch payload's OUT at CPL 3 (its "
		"emulation apparently reads the instruction with PKRU applied)",
};

static const char *const skipped_cases[DIFF_NR_DEVIATIONS] = {
	[DIFF_DEVIATION_32BIT_PAGING] = "32-bit paging cases",
	[DIFF_DEVIATION_PAE_PAGING] = "PAE paging cases",
	[DIFF_DEVIATION_PKRU_RING3] = "CPL-3 cases with paging whose PKRU restricts key 0",
	[DIFF_DEVIATION_RING3_PML4E_256] = "CPL-3 cases through PML4E 256",
	[DIFF_DEVIATION_PKEY_FETCH] = "CPL-3 fetches from a page whose key has access disabled",
};

const char *diff_deviation_reason(enum diff_deviation d)
{
	return d > DIFF_DEVIATION_NONE && d < DIFF_NR_DEVIATIONS ? reasons[d] : "";
}

const char *diff_deviation_cases(enum diff_deviation d)
{
	return d > DIFF_DEVIATION_NONE && d < DIFF_NR_DEVIATIONS ? skipped_cases[d] : "";
}

bool diff_host_runs_mode(const struct diff_host *h, enum mmu_paging_mode mode)
{
	return !(mode == MMU_MODE_32BIT && h->present[DIFF_DEVIATION_32BIT_PAGING]) &&
	       !(mode == MMU_MODE_PAE && h->present[DIFF_DEVIATION_PAE_PAGING]);
}

/* The probe's access must complete: a read with the data at its GPA, a
 * fetch by running the payload. Returns 1 if it did, 0 if not, negative
 * errno if KVM failed. */
static int probe_access(struct diff_vm *vm, const struct diff_case *c, struct error *err)
{
	struct diff_observation obs;
	int r;

	diff_case_install(c, &vm->ram);
	r = diff_vm_run_case(vm, c, &obs, err);
	diff_pattern_restore(&vm->ram, c->data_gpa);
	if (r < 0)
		return r;
	if (c->access == DIFF_FETCH)
		return obs.outcome == DIFF_OUTCOME_FETCHED && obs.value == c->value;
	return obs.outcome == DIFF_OUTCOME_DONE && obs.value == diff_pattern_word(c->data_gpa);
}

/* A plain CPL-0 read in 32-bit paging. */
static void build_32bit_paging(struct diff_case *c)
{
	diff_case_plain(c, MMU_MODE_32BIT, 0, PROBE_GVA_32, PROBE_DATA);
}

static void build_pae_paging(struct diff_case *c)
{
	diff_case_plain(c, MMU_MODE_PAE, 0, PROBE_GVA_32, PROBE_DATA);
}

/* PKRU with key 0's access-disable bit and CR4.PKE clear: PKRU must not
 * matter (SDM Vol. 3A §4.6.2). */
static void build_pkru_ring3(struct diff_case *c)
{
	diff_case_plain(c, MMU_MODE_4LEVEL, 3, PROBE_GVA_64, PROBE_DATA);
	c->pku = true;
	c->pkru = 1;
}

static void build_pml4e_256(struct diff_case *c)
{
	diff_case_plain(c, MMU_MODE_4LEVEL, 3, PROBE_GVA_PML4E_256, PROBE_DATA);
}

/* A CPL-3 fetch from a page with key 1, PKRU denying key 1 all data
 * access: fetches are not subject to protection keys (SDM Vol. 3A §4.6.2). */
static void build_pkey_fetch(struct diff_case *c)
{
	diff_case_plain(c, MMU_MODE_4LEVEL, 3, PROBE_GVA_64, PROBE_DATA);
	c->access = DIFF_FETCH;
	c->value = 0xF7C4;
	c->regs.cr4 |= MMU_CR4_PKE;
	c->pku = true;
	c->pkru = 1U << 2; /* key 1: AD */
	c->entries[c->nr_entries - 1].value |= 1ULL << 59;
}

/* One probe per deviation: a case whose access must complete. */
static const struct {
	enum diff_deviation deviation;
	bool needs_pku;
	void (*build)(struct diff_case *c);
} probes[] = {
	{ DIFF_DEVIATION_32BIT_PAGING, false, build_32bit_paging },
	{ DIFF_DEVIATION_PAE_PAGING, false, build_pae_paging },
	{ DIFF_DEVIATION_PKRU_RING3, true, build_pkru_ring3 },
	{ DIFF_DEVIATION_RING3_PML4E_256, false, build_pml4e_256 },
	{ DIFF_DEVIATION_PKEY_FETCH, true, build_pkey_fetch },
};

static int probe_deviations(struct diff_vm *vm, struct diff_host *h, struct error *err)
{
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		struct diff_case c;
		int r;

		if (probes[i].needs_pku && !h->usable.pku)
			continue;
		probes[i].build(&c);
		r = probe_access(vm, &c, err);
		if (r < 0)
			return r;
		h->present[probes[i].deviation] = !r;
	}
	return 0;
}

#define FEATURE(field) offsetof(struct mmu_cpu_features, field)

/* CR4 bits that need a CPUID feature (SDM Vol. 3A §2.5; the validator's
 * table), with the feature's place in struct mmu_cpu_features. */
static const struct {
	uint64_t bit;
	const char *name;
	size_t feature;
} cr4_feature_bits[] = {
	{ MMU_CR4_UMIP, "UMIP", FEATURE(umip) },
	{ MMU_CR4_LA57, "LA57", FEATURE(la57) },
	{ MMU_CR4_VMXE, "VMXE", FEATURE(vmx) },
	{ MMU_CR4_SMXE, "SMXE", FEATURE(smx) },
	{ MMU_CR4_FSGSBASE, "FSGSBASE", FEATURE(fsgsbase) },
	{ MMU_CR4_PCIDE, "PCIDE", FEATURE(pcid) },
	{ MMU_CR4_OSXSAVE, "OSXSAVE", FEATURE(xsave) },
	{ MMU_CR4_SMEP, "SMEP", FEATURE(smep) },
	{ MMU_CR4_SMAP, "SMAP", FEATURE(smap) },
	{ MMU_CR4_PKE, "PKE", FEATURE(pku) },
	{ MMU_CR4_CET, "CET", FEATURE(cet) },
	{ MMU_CR4_PKS, "PKS", FEATURE(pks) },
	{ MMU_CR4_LAM_SUP, "LAM_SUP", FEATURE(lam) },
};

/* The CPU features that shape paging, as the summary names them. */
static const struct {
	const char *name;
	size_t feature;
} paging_features[] = {
	{ "NX", FEATURE(nx) },	      { "SMEP", FEATURE(smep) },
	{ "SMAP", FEATURE(smap) },    { "PKU", FEATURE(pku) },
	{ "LA57", FEATURE(la57) },    { "1 GiB pages", FEATURE(gbpages) },
	{ "PSE-36", FEATURE(pse36) },
};

/* Features whose presence the vCPU's CPUID may change (the CR4 table's
 * and the paging ones). */
static const struct {
	const char *name;
	size_t feature;
} cpuid_features[] = {
	{ "NX", FEATURE(nx) },	      { "1GB-pages", FEATURE(gbpages) },
	{ "PSE-36", FEATURE(pse36) }, { "UMIP", FEATURE(umip) },
	{ "LA57", FEATURE(la57) },    { "VMX", FEATURE(vmx) },
	{ "SMX", FEATURE(smx) },      { "FSGSBASE", FEATURE(fsgsbase) },
	{ "PCID", FEATURE(pcid) },    { "XSAVE", FEATURE(xsave) },
	{ "SMEP", FEATURE(smep) },    { "SMAP", FEATURE(smap) },
	{ "PKU", FEATURE(pku) },      { "CET", FEATURE(cet) },
	{ "PKS", FEATURE(pks) },      { "LAM", FEATURE(lam) },
};

static bool has_feature(const struct mmu_cpu_features *f, size_t offset)
{
	return *(const bool *)((const char *)f + offset);
}

/*
 * A CR4-controlled feature is usable only if KVM_SET_SREGS2 accepts its
 * bit. KVM checks CR4 against the CPUID it holds for the vCPU, which a
 * host may change from the one set (PVM mixes in host bits such as SMEP
 * and SMAP, and drops LA57), and the check itself may differ (PVM accepts
 * CR4.PKE without PKU). Accepted paging bits are exercised: the checks
 * they enable live in KVM's common walker, which the cases compare
 * against.
 */
static void probe_features(struct diff_vm *vm, struct diff_host *h)
{
	h->offered = vm->offered;
	h->cpuid = vm->features;
	h->usable = vm->features;
	for (size_t i = 0; i < sizeof(cr4_feature_bits) / sizeof(cr4_feature_bits[0]); i++) {
		uint64_t bit = cr4_feature_bits[i].bit;
		bool accepted = diff_vm_accepts_cr4(vm, MMU_MODE_4LEVEL, bit);

		if (accepted != has_feature(&h->cpuid, cr4_feature_bits[i].feature))
			h->cr4_disagree |= bit;
	}
	h->usable.smep = diff_vm_accepts_cr4(vm, MMU_MODE_4LEVEL, MMU_CR4_SMEP);
	h->usable.smap = diff_vm_accepts_cr4(vm, MMU_MODE_4LEVEL, MMU_CR4_SMAP);
	h->usable.la57 = diff_vm_accepts_cr4(vm, MMU_MODE_4LEVEL, MMU_CR4_LA57) &&
			 diff_vm_accepts_cr4(vm, MMU_MODE_PAE, MMU_CR4_LA57);
	h->pke_accepted = diff_vm_accepts_cr4(vm, MMU_MODE_4LEVEL, MMU_CR4_PKE);
	h->usable.pku = h->pke_accepted && diff_vm_set_pkru(vm, 0) == 0;
}

int diff_host_probe(struct diff_vm *vm, struct diff_host *ret, struct error *err)
{
	struct diff_host h;
	int r;

	memset(&h, 0, sizeof(h));
	probe_features(vm, &h);
	r = probe_deviations(vm, &h, err);
	if (r < 0)
		return r;
	*ret = h;
	return 0;
}

/* PKRU (loaded, since the host offers PKU) restricts key 0. */
static bool pkru_key0_restricted(const struct diff_case *c)
{
	return c->pku && (c->pkru & 3);
}

/* Protection keys in force (IA-32e paging, CR4.PKE) and the leaf's key has
 * AD set in PKRU. */
static bool leaf_key_access_disabled(const struct diff_case *c)
{
	unsigned int key;

	if (!c->pku || !(c->regs.cr4 & MMU_CR4_PKE) || !(c->regs.efer & MMU_EFER_LMA) ||
	    !c->nr_entries)
		return false;
	key = (unsigned int)(c->entries[c->nr_entries - 1].value >> 59) & 0xF;
	return c->pkru >> (2 * key) & 1;
}

enum diff_deviation diff_host_deviation(const struct diff_host *h, const struct diff_case *c)
{
	if (!diff_host_runs_mode(h, c->mode))
		return c->mode == MMU_MODE_32BIT ? DIFF_DEVIATION_32BIT_PAGING
						 : DIFF_DEVIATION_PAE_PAGING;
	if (c->cpl != 3)
		return DIFF_DEVIATION_NONE;
	if (c->mode == MMU_MODE_4LEVEL && (c->gva >> 39 & 0x1FF) == 256 &&
	    h->present[DIFF_DEVIATION_RING3_PML4E_256])
		return DIFF_DEVIATION_RING3_PML4E_256;
	/* Ring 3 runs natively under PVM only with paging; without, it is
	 * emulated and keys behave. */
	if (pkru_key0_restricted(c) && c->mode != MMU_MODE_NONE &&
	    h->present[DIFF_DEVIATION_PKRU_RING3])
		return DIFF_DEVIATION_PKRU_RING3;
	if (c->access == DIFF_FETCH && leaf_key_access_disabled(c) &&
	    h->present[DIFF_DEVIATION_PKEY_FETCH])
		return DIFF_DEVIATION_PKEY_FETCH;
	return DIFF_DEVIATION_NONE;
}

static const char *yes_no(bool b)
{
	return b ? "yes" : "no";
}

void diff_host_print(const struct diff_host *h)
{
	printf("mmu-diff: features (in KVM's supported CPUID / in the CPUID the vCPU holds / "
	       "used by the cases):");
	for (size_t i = 0; i < sizeof(paging_features) / sizeof(paging_features[0]); i++) {
		size_t f = paging_features[i].feature;

		printf(" %s %s/%s/%s%s", paging_features[i].name,
		       yes_no(has_feature(&h->offered, f)), yes_no(has_feature(&h->cpuid, f)),
		       yes_no(has_feature(&h->usable, f)),
		       i + 1 < sizeof(paging_features) / sizeof(paging_features[0]) ? "," : "");
	}
	printf("; MAXPHYADDR %u\n", h->cpuid.maxphyaddr);
	printf("mmu-diff: host: the vCPU holds (KVM_GET_CPUID2) other features than were set:");
	for (size_t i = 0; i < sizeof(cpuid_features) / sizeof(cpuid_features[0]); i++) {
		size_t f = cpuid_features[i].feature;

		if (has_feature(&h->offered, f) != has_feature(&h->cpuid, f))
			printf(" %c%s", has_feature(&h->cpuid, f) ? '+' : '-',
			       cpuid_features[i].name);
	}
	printf("\n");
	printf("mmu-diff: host: KVM_SET_SREGS2 and the vCPU's CPUID disagree on CR4:");
	for (size_t i = 0; i < sizeof(cr4_feature_bits) / sizeof(cr4_feature_bits[0]); i++)
		if (h->cr4_disagree & cr4_feature_bits[i].bit)
			printf(" %s (%s)", cr4_feature_bits[i].name,
			       has_feature(&h->cpuid, cr4_feature_bits[i].feature) ? "refused"
										   : "accepted");
	printf("\n");
	if (!h->usable.la57)
		printf("mmu-diff: host: CR4.LA57 is not accepted: no 5-level paging cases\n");
	for (unsigned int d = 1; d < DIFF_NR_DEVIATIONS; d++)
		if (h->present[d])
			printf("mmu-diff: host deviation: %s; %s are not compared\n", reasons[d],
			       skipped_cases[d]);
}
