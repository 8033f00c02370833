/* SPDX-License-Identifier: MIT */
/*
 * CPU-feature snapshot from a CPUID list, and the "CPUID is frozen after
 * the first KVM_RUN" rule (MMU.md §7).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "mmu/mmu-internal.h"

#define CPUID_KNOWN_FLAGS                                                        \
	(MMU_CPUID_FLAG_SIGNIFICANT_INDEX | MMU_CPUID_FLAG_STATEFUL_FUNC |       \
	 MMU_CPUID_FLAG_STATE_READ_NEXT)

enum cpuid_reg { REG_EAX, REG_EBX, REG_ECX, REG_EDX };

/* Feature bits the MMU and the validator consume (SDM Vol. 2A, CPUID; APM Vol. 3 App. E). */
static const struct feature_bit {
	uint32_t function;
	uint32_t index;
	enum cpuid_reg reg;
	unsigned int bit;
	size_t offset;
} feature_bits[] = {
#define FB(fn, idx, reg, bit, field) { fn, idx, reg, bit, offsetof(struct mmu_cpu_features, field) }
	FB(0x1, 0, REG_EDX, 3, pse),
	FB(0x1, 0, REG_EDX, 6, pae),
	FB(0x1, 0, REG_EDX, 17, pse36),
	FB(0x1, 0, REG_ECX, 5, vmx),
	FB(0x1, 0, REG_ECX, 6, smx),
	FB(0x1, 0, REG_ECX, 17, pcid),
	FB(0x1, 0, REG_ECX, 26, xsave),
	FB(0x7, 0, REG_EBX, 0, fsgsbase),
	FB(0x7, 0, REG_EBX, 7, smep),
	FB(0x7, 0, REG_EBX, 20, smap),
	FB(0x7, 0, REG_ECX, 2, umip),
	FB(0x7, 0, REG_ECX, 3, pku),
	FB(0x7, 0, REG_ECX, 7, cet),	/* CET_SS */
	FB(0x7, 0, REG_ECX, 16, la57),
	FB(0x7, 0, REG_ECX, 31, pks),
	FB(0x7, 0, REG_EDX, 20, cet),	/* CET_IBT */
	FB(0x7, 1, REG_EAX, 26, lam),
	FB(0x80000001, 0, REG_ECX, 2, svm),
	FB(0x80000001, 0, REG_EDX, 20, nx),
	FB(0x80000001, 0, REG_EDX, 25, ffxsr),
	FB(0x80000001, 0, REG_EDX, 26, gbpages),
	FB(0x80000001, 0, REG_EDX, 29, lm),
#undef FB
};

/* KVM's lookup: the index only counts for leaves flagged SIGNIFICANT_INDEX. */
static const struct mmu_cpuid_entry *cpuid_find(const struct mmu_cpuid_entry *e, size_t n,
						uint32_t function, uint32_t index)
{
	for (size_t i = 0; i < n; i++) {
		if (e[i].function != function)
			continue;
		if (!(e[i].flags & MMU_CPUID_FLAG_SIGNIFICANT_INDEX) || e[i].index == index)
			return &e[i];
	}
	return NULL;
}

static uint32_t cpuid_reg(const struct mmu_cpuid_entry *e, enum cpuid_reg reg)
{
	switch (reg) {
	case REG_EAX:
		return e->eax;
	case REG_EBX:
		return e->ebx;
	case REG_ECX:
		return e->ecx;
	case REG_EDX:
		return e->edx;
	}
	return 0;
}

static enum mmu_vendor cpuid_vendor(const struct mmu_cpuid_entry *leaf0)
{
	static const struct {
		const char *id;
		enum mmu_vendor vendor;
	} vendors[] = {
		{ "GenuineIntel", MMU_VENDOR_INTEL },
		{ "AuthenticAMD", MMU_VENDOR_AMD },
		{ "HygonGenuine", MMU_VENDOR_HYGON },
	};
	char id[12];

	if (!leaf0)
		return MMU_VENDOR_UNKNOWN;
	/* The vendor string is EBX, EDX, ECX in that order, little-endian. */
	for (int i = 0; i < 4; i++) {
		id[i] = (char)(leaf0->ebx >> (8 * i));
		id[4 + i] = (char)(leaf0->edx >> (8 * i));
		id[8 + i] = (char)(leaf0->ecx >> (8 * i));
	}
	for (size_t i = 0; i < MMU_ARRAY_SIZE(vendors); i++)
		if (!memcmp(id, vendors[i].id, sizeof(id)))
			return vendors[i].vendor;
	return MMU_VENDOR_UNKNOWN;
}

static int check_cpuid_list(const struct mmu_cpuid_entry *e, size_t n, struct mmu_error *err)
{
	if (n == 0 || !e) {
		mmu_error_set(err, "CPUID list is empty");
		return -EINVAL;
	}
	if (n > MMU_CPUID_MAX_ENTRIES) {
		mmu_error_set(err, "CPUID list has %zu entries; KVM accepts at most %d", n,
			      MMU_CPUID_MAX_ENTRIES);
		return -E2BIG;
	}
	for (size_t i = 0; i < n; i++) {
		if (e[i].flags & ~CPUID_KNOWN_FLAGS) {
			mmu_error_set(err, "CPUID entry %zu (leaf 0x%x.%u): unknown flags 0x%x", i,
				      e[i].function, e[i].index, e[i].flags);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (e[j].function == e[i].function && e[j].index == e[i].index) {
				mmu_error_set(err,
					      "CPUID entries %zu and %zu both describe leaf 0x%x.%u",
					      j, i, e[i].function, e[i].index);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* KVM cpuid_query_maxphyaddr(): 36 unless 0x80000008 exists and is in range (E49). */
static unsigned int cpuid_maxphyaddr(const struct mmu_cpuid_entry *e, size_t n)
{
	const struct mmu_cpuid_entry *max_ext = cpuid_find(e, n, 0x80000000, 0);
	const struct mmu_cpuid_entry *sizes;

	if (!max_ext || max_ext->eax < 0x80000008)
		return 36;
	sizes = cpuid_find(e, n, 0x80000008, 0);
	return sizes ? sizes->eax & 0xFF : 36;
}

int mmu_features_from_cpuid(const struct mmu_cpuid_entry *entries, size_t n,
			    struct mmu_cpu_features *ret_features, struct mmu_error *err)
{
	struct mmu_cpu_features f = { 0 };
	const struct mmu_cpuid_entry *sizes;
	unsigned int m;
	int r;

	if (!ret_features) {
		mmu_error_set(err, "no output for the CPU features");
		return -EINVAL;
	}
	r = check_cpuid_list(entries, n, err);
	if (r < 0)
		return r;

	m = cpuid_maxphyaddr(entries, n);
	if (!mmu_maxphyaddr_valid(m)) {
		mmu_error_set(err, "CPUID 0x80000008 EAX[7:0] = %u: MAXPHYADDR must be %d..%d", m,
			      MMU_MAXPHYADDR_MIN, MMU_MAXPHYADDR_MAX);
		return -EINVAL;
	}
	/* KVM refuses a virtual-address width other than 48 or 57 (kvm_check_cpuid()). */
	sizes = cpuid_find(entries, n, 0x80000008, 0);
	if (sizes) {
		unsigned int vbits = (sizes->eax >> 8) & 0xFF;

		if (vbits != 0 && vbits != 48 && vbits != 57) {
			mmu_error_set(err,
				      "CPUID 0x80000008 EAX[15:8] = %u: linear-address width must be 48 or 57",
				      vbits);
			return -EINVAL;
		}
	}

	f.maxphyaddr = (uint8_t)m;
	f.vendor = cpuid_vendor(cpuid_find(entries, n, 0, 0));
	for (size_t i = 0; i < MMU_ARRAY_SIZE(feature_bits); i++) {
		const struct feature_bit *fb = &feature_bits[i];
		const struct mmu_cpuid_entry *leaf = cpuid_find(entries, n, fb->function, fb->index);
		bool *flag = (bool *)((char *)&f + fb->offset);

		if (leaf && (cpuid_reg(leaf, fb->reg) >> fb->bit) & 1)
			*flag = true;
	}
	*ret_features = f;
	return 0;
}

/* Name of the first field that differs, or NULL: the comparison of kvm_cpuid_check_equal(). */
static const char *first_difference(const struct mmu_cpuid_entry *a,
				    const struct mmu_cpuid_entry *b)
{
	static const struct {
		size_t offset;
		const char *name;
	} fields[] = {
		{ offsetof(struct mmu_cpuid_entry, function), "function" },
		{ offsetof(struct mmu_cpuid_entry, index), "index" },
		{ offsetof(struct mmu_cpuid_entry, flags), "flags" },
		{ offsetof(struct mmu_cpuid_entry, eax), "EAX" },
		{ offsetof(struct mmu_cpuid_entry, ebx), "EBX" },
		{ offsetof(struct mmu_cpuid_entry, ecx), "ECX" },
		{ offsetof(struct mmu_cpuid_entry, edx), "EDX" },
	};

	for (size_t i = 0; i < MMU_ARRAY_SIZE(fields); i++) {
		uint32_t x, y;

		memcpy(&x, (const char *)a + fields[i].offset, sizeof(x));
		memcpy(&y, (const char *)b + fields[i].offset, sizeof(y));
		if (x != y)
			return fields[i].name;
	}
	return NULL;
}

int mmu_cpuid_check_frozen(const struct mmu_cpuid_entry *cur, size_t ncur,
			   const struct mmu_cpuid_entry *next, size_t nnext, bool has_run,
			   struct mmu_error *err)
{
	if ((ncur && !cur) || (nnext && !next)) {
		mmu_error_set(err, "CPUID list pointer is NULL");
		return -EINVAL;
	}
	if (!has_run)
		return 0;
	/*
	 * Linux ≥ 5.17 (kvm_cpuid_check_equal()): after KVM_RUN only the same
	 * entries in the same order are accepted; anything else is -EINVAL.
	 */
	if (ncur != nnext) {
		mmu_error_set(err,
			      "CPUID cannot change after the vCPU has run: %zu entries, was %zu",
			      nnext, ncur);
		return -EINVAL;
	}
	for (size_t i = 0; i < ncur; i++) {
		const char *what = first_difference(&cur[i], &next[i]);

		if (what) {
			mmu_error_set(err,
				      "CPUID cannot change after the vCPU has run: entry %zu (leaf 0x%x.%u) differs in %s",
				      i, cur[i].function, cur[i].index, what);
			return -EINVAL;
		}
	}
	return 0;
}
