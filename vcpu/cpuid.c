/* SPDX-License-Identifier: MIT */
#include "vcpu/cpuid.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/macro.h"
#include "vcpu/vcpu-internal.h"
#include "vcpu/x86.h"

#define EAX VCPU_CPUID_EAX
#define EBX VCPU_CPUID_EBX
#define ECX VCPU_CPUID_ECX
#define EDX VCPU_CPUID_EDX

/*
 * Feature flags by name (QEMU's -cpu names). Bit positions: Intel SDM
 * Vol. 2A, CPUID, Tables 3-10/3-11 and the leaf 7 and 0xD descriptions;
 * AMD APM Vol. 3 Appendix E for the 0x80000001/0x80000007 leaves. `needs`
 * follows the architectural dependencies (AVX state lives in XSAVE, AVX2
 * extends AVX, every AVX-512 subset extends AVX512F) as Linux's
 * arch/x86/kernel/cpu/cpuid-deps.c also records them.
 */
static const struct vcpu_cpu_feature features[] = {
	/* CPUID.1:ECX */
	{ "sse3", 1, 0, ECX, 0, NULL, 0 },
	{ "pclmulqdq", 1, 0, ECX, 1, NULL, 0 },
	{ "vmx", 1, 0, ECX, 5, NULL, 0 },
	{ "ssse3", 1, 0, ECX, 9, NULL, 0 },
	{ "fma", 1, 0, ECX, 12, "avx", 0 },
	{ "cx16", 1, 0, ECX, 13, NULL, 0 },
	{ "pcid", 1, 0, ECX, 17, NULL, 0 },
	{ "sse4.1", 1, 0, ECX, 19, NULL, 0 },
	{ "sse4.2", 1, 0, ECX, 20, NULL, 0 },
	{ "x2apic", 1, 0, ECX, 21, NULL, 0 },
	{ "movbe", 1, 0, ECX, 22, NULL, 0 },
	{ "popcnt", 1, 0, ECX, 23, NULL, 0 },
	{ "tsc-deadline", 1, 0, ECX, 24, NULL, 0 },
	{ "aes", 1, 0, ECX, 25, NULL, 0 },
	{ "xsave", 1, 0, ECX, 26, NULL, 0 },
	{ "avx", 1, 0, ECX, 28, "xsave", X86_XFEATURE_YMM },
	{ "f16c", 1, 0, ECX, 29, "avx", 0 },
	{ "rdrand", 1, 0, ECX, 30, NULL, 0 },
	{ "hypervisor", 1, 0, ECX, 31, NULL, 0 },
	/* CPUID.1:EDX */
	{ "pse", 1, 0, EDX, 3, NULL, 0 },
	{ "pae", 1, 0, EDX, 6, NULL, 0 },
	{ "mce", 1, 0, EDX, 7, NULL, 0 },
	{ "cx8", 1, 0, EDX, 8, NULL, 0 },
	{ "sep", 1, 0, EDX, 11, NULL, 0 },
	{ "mtrr", 1, 0, EDX, 12, NULL, 0 },
	{ "pge", 1, 0, EDX, 13, NULL, 0 },
	{ "mca", 1, 0, EDX, 14, NULL, 0 },
	{ "cmov", 1, 0, EDX, 15, NULL, 0 },
	{ "pat", 1, 0, EDX, 16, NULL, 0 },
	{ "pse36", 1, 0, EDX, 17, NULL, 0 },
	{ "clflush", 1, 0, EDX, 19, NULL, 0 },
	{ "mmx", 1, 0, EDX, 23, NULL, 0 },
	{ "fxsr", 1, 0, EDX, 24, NULL, 0 },
	{ "sse", 1, 0, EDX, 25, NULL, 0 },
	{ "sse2", 1, 0, EDX, 26, NULL, 0 },
	/* CPUID.(EAX=7,ECX=0):EBX */
	{ "fsgsbase", 7, 0, EBX, 0, NULL, 0 },
	{ "tsc-adjust", 7, 0, EBX, 1, NULL, 0 },
	{ "bmi1", 7, 0, EBX, 3, NULL, 0 },
	{ "hle", 7, 0, EBX, 4, NULL, 0 },
	{ "avx2", 7, 0, EBX, 5, "avx", 0 },
	{ "smep", 7, 0, EBX, 7, NULL, 0 },
	{ "bmi2", 7, 0, EBX, 8, NULL, 0 },
	{ "erms", 7, 0, EBX, 9, NULL, 0 },
	{ "invpcid", 7, 0, EBX, 10, NULL, 0 },
	{ "rtm", 7, 0, EBX, 11, NULL, 0 },
	{ "mpx", 7, 0, EBX, 14, "xsave", X86_XFEATURE_BNDREGS | X86_XFEATURE_BNDCSR },
	{ "avx512f", 7, 0, EBX, 16, "avx2", X86_XFEATURE_AVX512 },
	{ "avx512dq", 7, 0, EBX, 17, "avx512f", 0 },
	{ "rdseed", 7, 0, EBX, 18, NULL, 0 },
	{ "adx", 7, 0, EBX, 19, NULL, 0 },
	{ "smap", 7, 0, EBX, 20, NULL, 0 },
	{ "avx512ifma", 7, 0, EBX, 21, "avx512f", 0 },
	{ "clflushopt", 7, 0, EBX, 23, NULL, 0 },
	{ "clwb", 7, 0, EBX, 24, NULL, 0 },
	{ "avx512cd", 7, 0, EBX, 28, "avx512f", 0 },
	{ "sha-ni", 7, 0, EBX, 29, NULL, 0 },
	{ "avx512bw", 7, 0, EBX, 30, "avx512f", 0 },
	{ "avx512vl", 7, 0, EBX, 31, "avx512f", 0 },
	/* CPUID.(EAX=7,ECX=0):ECX */
	{ "avx512vbmi", 7, 0, ECX, 1, "avx512f", 0 },
	{ "umip", 7, 0, ECX, 2, NULL, 0 },
	{ "pku", 7, 0, ECX, 3, "xsave", X86_XFEATURE_PKRU },
	{ "waitpkg", 7, 0, ECX, 5, NULL, 0 },
	{ "avx512vbmi2", 7, 0, ECX, 6, "avx512f", 0 },
	{ "gfni", 7, 0, ECX, 8, NULL, 0 },
	{ "vaes", 7, 0, ECX, 9, "avx", 0 },
	{ "vpclmulqdq", 7, 0, ECX, 10, "avx", 0 },
	{ "avx512vnni", 7, 0, ECX, 11, "avx512f", 0 },
	{ "avx512bitalg", 7, 0, ECX, 12, "avx512f", 0 },
	{ "avx512-vpopcntdq", 7, 0, ECX, 14, "avx512f", 0 },
	{ "la57", 7, 0, ECX, 16, NULL, 0 },
	{ "rdpid", 7, 0, ECX, 22, NULL, 0 },
	{ "movdiri", 7, 0, ECX, 27, NULL, 0 },
	{ "movdir64b", 7, 0, ECX, 28, NULL, 0 },
	/* CPUID.(EAX=7,ECX=0):EDX */
	{ "fsrm", 7, 0, EDX, 4, NULL, 0 },
	{ "md-clear", 7, 0, EDX, 10, NULL, 0 },
	{ "serialize", 7, 0, EDX, 14, NULL, 0 },
	{ "spec-ctrl", 7, 0, EDX, 26, NULL, 0 },
	{ "stibp", 7, 0, EDX, 27, NULL, 0 },
	{ "arch-capabilities", 7, 0, EDX, 29, NULL, 0 },
	{ "ssbd", 7, 0, EDX, 31, NULL, 0 },
	/* CPUID.(EAX=0xD,ECX=1):EAX */
	{ "xsaveopt", 0xD, 1, EAX, 0, "xsave", 0 },
	{ "xsavec", 0xD, 1, EAX, 1, "xsave", 0 },
	{ "xgetbv1", 0xD, 1, EAX, 2, "xsave", 0 },
	{ "xsaves", 0xD, 1, EAX, 3, "xsave", 0 },
	/* CPUID.80000001H:ECX */
	{ "lahf-lm", 0x80000001, 0, ECX, 0, NULL, 0 },
	{ "svm", 0x80000001, 0, ECX, 2, NULL, 0 },
	{ "abm", 0x80000001, 0, ECX, 5, NULL, 0 },
	{ "sse4a", 0x80000001, 0, ECX, 6, NULL, 0 },
	{ "3dnowprefetch", 0x80000001, 0, ECX, 8, NULL, 0 },
	/* CPUID.80000001H:EDX */
	{ "syscall", 0x80000001, 0, EDX, 11, NULL, 0 },
	{ "nx", 0x80000001, 0, EDX, 20, NULL, 0 },
	{ "pdpe1gb", 0x80000001, 0, EDX, 26, NULL, 0 },
	{ "rdtscp", 0x80000001, 0, EDX, 27, NULL, 0 },
	{ "lm", 0x80000001, 0, EDX, 29, NULL, 0 },
	/* CPUID.80000007H:EDX */
	{ "invtsc", 0x80000007, 0, EDX, 8, NULL, 0 },
};

static const char *const reg_names[] = { "EAX", "EBX", "ECX", "EDX" };

/* XSAVE leaf and its fixed-size part (legacy area + header, SDM Vol. 1 §13.4). */
#define CPUID_LEAF_XSAVE 0xD
#define CPUID_LEAF_MAX_EXT 0x80000000
#define CPUID_LEAF_ADDR_SIZES 0x80000008
/* Without leaf 0x80000008, MAXPHYADDR is 36 (SDM Vol. 3A §4.1.4). */
#define CPUID_DEFAULT_PHYS_BITS 36
/* RDX at RESET when no CPUID was set: KVM's default signature. */
#define CPUID_DEFAULT_SIGNATURE 0x600

const struct vcpu_cpu_feature *vcpu_cpu_features(size_t *ret_n)
{
	*ret_n = ARRAY_SIZE(features);
	return features;
}

const struct vcpu_cpu_feature *vcpu_cpu_feature_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(features); i++)
		if (strcmp(features[i].name, name) == 0)
			return &features[i];
	return NULL;
}

void vcpu_cpu_feature_names(char *buf, size_t size)
{
	size_t used = 0;

	if (size == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(features) && used < size; i++) {
		int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", features[i].name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* "CPUID.(EAX=7H,ECX=0):EBX[16]", the SDM's notation. */
static void format_bit(const struct vcpu_cpu_feature *f, char *buf, size_t size)
{
	snprintf(buf, size, "CPUID.(EAX=%XH,ECX=%u):%s[%u]", f->leaf, f->subleaf,
		 reg_names[f->reg], f->bit);
}

/* ---------------------------------------------------------------- CPUID lists */

static bool entry_matches(const struct kvm_cpuid_entry2 *e, uint32_t leaf, uint32_t subleaf)
{
	if (e->function != leaf)
		return false;
	return !(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == subleaf;
}

struct kvm_cpuid_entry2 *vcpu_cpuid_entry(const struct kvm_cpuid2 *cpuid, uint32_t leaf,
					  uint32_t subleaf)
{
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = (struct kvm_cpuid_entry2 *)&cpuid->entries[i];
		if (entry_matches(e, leaf, subleaf))
			return e;
	}
	return NULL;
}

static uint32_t *entry_reg(struct kvm_cpuid_entry2 *e, enum vcpu_cpuid_reg reg)
{
	switch (reg) {
	case VCPU_CPUID_EAX:
		return &e->eax;
	case VCPU_CPUID_EBX:
		return &e->ebx;
	case VCPU_CPUID_ECX:
		return &e->ecx;
	case VCPU_CPUID_EDX:
		return &e->edx;
	}
	return &e->eax;
}

bool vcpu_cpuid_has(const struct kvm_cpuid2 *cpuid, const struct vcpu_cpu_feature *f)
{
	struct kvm_cpuid_entry2 *e = vcpu_cpuid_entry(cpuid, f->leaf, f->subleaf);

	return e && (*entry_reg(e, f->reg) & (1U << f->bit));
}

static void cpuid_clear(struct kvm_cpuid2 *cpuid, const struct vcpu_cpu_feature *f)
{
	struct kvm_cpuid_entry2 *e = vcpu_cpuid_entry(cpuid, f->leaf, f->subleaf);

	if (e)
		*entry_reg(e, f->reg) &= ~(1U << f->bit);
}

unsigned int vcpu_cpuid_phys_bits(const struct kvm_cpuid2 *cpuid)
{
	struct kvm_cpuid_entry2 *max = vcpu_cpuid_entry(cpuid, CPUID_LEAF_MAX_EXT, 0);
	struct kvm_cpuid_entry2 *e = vcpu_cpuid_entry(cpuid, CPUID_LEAF_ADDR_SIZES, 0);

	if (!max || max->eax < CPUID_LEAF_ADDR_SIZES || !e)
		return CPUID_DEFAULT_PHYS_BITS;
	return e->eax & 0xFF;
}

static size_t cpuid_size(uint32_t nent)
{
	return sizeof(struct kvm_cpuid2) + nent * sizeof(struct kvm_cpuid_entry2);
}

static struct kvm_cpuid2 *cpuid_dup(const struct kvm_cpuid2 *c)
{
	struct kvm_cpuid2 *copy = malloc(cpuid_size(c->nent));

	if (copy)
		memcpy(copy, c, cpuid_size(c->nent));
	return copy;
}

/* ---------------------------------------------------------------- policy */

int vcpu_cpu_policy_set_feature(struct vcpu_cpu_policy *p, const char *name, bool enabled,
				struct error *err)
{
	char known[1024];

	if (!vcpu_cpu_feature_find(name)) {
		vcpu_cpu_feature_names(known, sizeof(known));
		return error_set(err, -EINVAL, "CPU feature '%s' is unknown; known features: %s",
				 name, known);
	}
	for (unsigned int i = 0; i < p->nr_features; i++)
		if (strcmp(p->features[i].name, name) == 0)
			return error_set(err, -EINVAL, "CPU feature '%s' is given twice", name);
	if (p->nr_features >= VCPU_CPU_POLICY_MAX_FEATURES)
		return error_set(err, -E2BIG, "more than %d CPU features in the policy",
				 VCPU_CPU_POLICY_MAX_FEATURES);
	snprintf(p->features[p->nr_features].name, VCPU_CPU_FEATURE_NAME_MAX, "%s", name);
	p->features[p->nr_features].enabled = enabled;
	p->nr_features++;
	return 0;
}

/* The setting p has for f: 1 on, 0 off, -1 not named. */
static int policy_setting(const struct vcpu_cpu_policy *p, const struct vcpu_cpu_feature *f)
{
	for (unsigned int i = 0; i < p->nr_features; i++)
		if (strcmp(p->features[i].name, f->name) == 0)
			return p->features[i].enabled;
	return -1;
}

/* Feature index → hidden, closed under `needs`: a feature whose
 * prerequisite is hidden is hidden too. */
static void hidden_features(const struct vcpu_cpu_policy *p, bool hidden[])
{
	bool changed = true;

	for (size_t i = 0; i < ARRAY_SIZE(features); i++)
		hidden[i] = policy_setting(p, &features[i]) == 0;
	while (changed) {
		changed = false;
		for (size_t i = 0; i < ARRAY_SIZE(features); i++) {
			const struct vcpu_cpu_feature *need;
			if (hidden[i] || !features[i].needs)
				continue;
			need = vcpu_cpu_feature_find(features[i].needs);
			if (need && hidden[need - features]) {
				hidden[i] = true;
				changed = true;
			}
		}
	}
}

/* Bits needed to address every byte up to max_gpa. */
static unsigned int bits_for(uint64_t max_gpa)
{
	unsigned int bits = VCPU_MIN_PHYS_BITS;

	while (bits < 64 && (max_gpa >> bits) != 0)
		bits++;
	return bits;
}

static int check_phys_bits(const struct vcpu_cpu_policy *p, const struct kvm_cpuid2 *supported,
			   uint64_t max_gpa, struct error *err)
{
	unsigned int host = vcpu_cpuid_phys_bits(supported);
	unsigned int want = p->max_phys_bits ? p->max_phys_bits : host;

	if (p->max_phys_bits &&
	    (p->max_phys_bits < VCPU_MIN_PHYS_BITS || p->max_phys_bits > VCPU_MAX_PHYS_BITS))
		return error_set(err, -EINVAL, "max_phys_bits %u is outside %d..%d", p->max_phys_bits,
				 VCPU_MIN_PHYS_BITS, VCPU_MAX_PHYS_BITS);
	if (p->max_phys_bits > host)
		return error_set(err, -EINVAL,
				 "max_phys_bits %u exceeds this host's %u (CPUID.80000008H:EAX[7:0] of KVM_GET_SUPPORTED_CPUID)",
				 p->max_phys_bits, host);
	if (p->max_phys_bits && !vcpu_cpuid_entry(supported, CPUID_LEAF_ADDR_SIZES, 0))
		return error_set(err, -EINVAL,
				 "max_phys_bits cannot be set: KVM reports no CPUID leaf 0x80000008");
	if (max_gpa && bits_for(max_gpa) > want)
		return error_set(err, -EINVAL,
				 "max_phys_bits %u cannot address the guest's physical addresses up to 0x%llx (needs %u)",
				 want, (unsigned long long)max_gpa, bits_for(max_gpa));
	return 0;
}

int vcpu_cpu_policy_check(const struct vcpu_cpu_policy *p, const struct kvm_cpuid2 *supported,
			  uint64_t max_gpa, struct error *err)
{
	bool hidden[ARRAY_SIZE(features)];
	char where[64];

	for (unsigned int i = 0; i < p->nr_features; i++) {
		const struct vcpu_cpu_feature *f;
		char known[1024];
		if (memchr(p->features[i].name, '\0', VCPU_CPU_FEATURE_NAME_MAX) == NULL ||
		    !(f = vcpu_cpu_feature_find(p->features[i].name))) {
			vcpu_cpu_feature_names(known, sizeof(known));
			return error_set(err, -EINVAL, "CPU feature '%.*s' is unknown; known features: %s",
					 VCPU_CPU_FEATURE_NAME_MAX - 1, p->features[i].name, known);
		}
		for (unsigned int j = 0; j < i; j++)
			if (strcmp(p->features[j].name, f->name) == 0)
				return error_set(err, -EINVAL, "CPU feature '%s' is given twice", f->name);
	}
	hidden_features(p, hidden);
	for (size_t i = 0; i < ARRAY_SIZE(features); i++) {
		const struct vcpu_cpu_feature *f = &features[i];
		if (policy_setting(p, f) != 1)
			continue;
		format_bit(f, where, sizeof(where));
		if (!vcpu_cpuid_has(supported, f))
			return error_set(err, -EINVAL,
					 "CPU feature '%s' cannot be enabled: KVM on this host does not support it (%s is 0 in KVM_GET_SUPPORTED_CPUID)",
					 f->name, where);
		if (hidden[i])
			return error_set(err, -EINVAL,
					 "CPU feature '%s' cannot be enabled: it needs '%s', which the policy disables",
					 f->name, f->needs);
	}
	return check_phys_bits(p, supported, max_gpa, err);
}

/* ---------------------------------------------------------------- building */

/* Size of XSAVE component i as leaf 0xD reports it: offset + size. */
static uint32_t xsave_component_end(const struct kvm_cpuid2 *c, unsigned int i)
{
	struct kvm_cpuid_entry2 *e = vcpu_cpuid_entry(c, CPUID_LEAF_XSAVE, i);

	return e ? e->ebx + e->eax : 0;
}

/*
 * Leaf 0xD after hiding XSAVE components `drop` (SDM Vol. 1 §13.2): the
 * XCR0-supported mask in subleaf 0 EDX:EAX loses them, their subleaves are
 * zeroed, ECX (size for every supported component) is recomputed and EBX
 * (size for the current XCR0, which KVM keeps up to date at run time)
 * starts at the size for XCR0 = x87. Without XSAVE the whole leaf is 0.
 */
static void xsave_leaf_drop(struct kvm_cpuid2 *c, uint64_t drop, bool no_xsave)
{
	struct kvm_cpuid_entry2 *leaf0 = vcpu_cpuid_entry(c, CPUID_LEAF_XSAVE, 0);
	uint64_t supported;
	uint32_t max_end = XSAVE_LEGACY_AND_HEADER;

	if (!leaf0)
		return;
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == CPUID_LEAF_XSAVE &&
		    (no_xsave || (e->index < 64 && e->index >= 2 && (drop & (1ULL << e->index)))))
			e->eax = e->ebx = e->ecx = e->edx = 0;
	}
	if (no_xsave)
		return;
	supported = (((uint64_t)leaf0->edx << 32) | leaf0->eax) & ~drop;
	leaf0->eax = (uint32_t)supported;
	leaf0->edx = (uint32_t)(supported >> 32);
	for (unsigned int i = 2; i < 64; i++)
		if (supported & (1ULL << i))
			max_end = MAX(max_end, xsave_component_end(c, i));
	leaf0->ecx = max_end;
	leaf0->ebx = XSAVE_LEGACY_AND_HEADER;
}

static void set_phys_bits(struct kvm_cpuid2 *c, unsigned int bits)
{
	struct kvm_cpuid_entry2 *e = vcpu_cpuid_entry(c, CPUID_LEAF_ADDR_SIZES, 0);
	uint32_t guest_bits;

	if (!e)
		return;
	e->eax = (e->eax & ~0xFFU) | bits;
	/* EAX[23:16], GuestPhysAddrSize (APM Vol. 3 E.4.7), when reported, may
	 * not exceed the physical-address width. */
	guest_bits = (e->eax >> 16) & 0xFF;
	if (guest_bits > bits)
		e->eax = (e->eax & ~0xFF0000U) | (bits << 16);
}

int vcpu_cpuid_build(const struct kvm_cpuid2 *supported, const struct vcpu_cpu_policy *p,
		     uint64_t max_gpa, struct kvm_cpuid2 **ret, struct error *err)
{
	bool hidden[ARRAY_SIZE(features)];
	struct kvm_cpuid2 *c;
	uint64_t drop = 0;
	bool no_xsave = false;
	int rc;

	rc = vcpu_cpu_policy_check(p, supported, max_gpa, err);
	if (rc < 0)
		return rc;
	c = cpuid_dup(supported);
	if (!c)
		return error_set(err, -ENOMEM, "CPUID policy: out of memory");
	hidden_features(p, hidden);
	for (size_t i = 0; i < ARRAY_SIZE(features); i++) {
		if (!hidden[i])
			continue;
		cpuid_clear(c, &features[i]);
		drop |= features[i].xfeatures;
		if (strcmp(features[i].name, "xsave") == 0)
			no_xsave = true;
	}
	if (drop || no_xsave)
		xsave_leaf_drop(c, drop, no_xsave);
	if (p->max_phys_bits)
		set_phys_bits(c, p->max_phys_bits);
	*ret = c;
	return 0;
}

/* ---------------------------------------------------------------- KVM */

int vcpu_supported_cpuid(int kvm_fd, struct kvm_cpuid2 **ret, struct error *err)
{
	/* KVM returns -E2BIG while the buffer is too small; grow until it fits. */
	for (unsigned int n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, cpuid_size(n));
		if (!c)
			return error_set(err, -ENOMEM, "KVM_GET_SUPPORTED_CPUID: out of memory");
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			*ret = c;
			return 0;
		}
		int rc = negative_errno();
		free(c);
		if (rc != -E2BIG)
			return error_set(err, rc, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-rc));
	}
	return error_set(err, -E2BIG, "KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

int vcpu_get_cpuid(const struct vcpu *v, struct kvm_cpuid2 **ret, struct error *err)
{
	for (unsigned int n = 64; n <= 4096; n *= 2) {
		_cleanup_free_ struct kvm_cpuid2 *c = calloc(1, cpuid_size(n));
		if (!c)
			return error_set(err, -ENOMEM, "KVM_GET_CPUID2 on vcpu %u: out of memory", v->id);
		c->nent = n;
		if (ioctl(v->fd, KVM_GET_CPUID2, c) == 0) {
			*ret = TAKE_PTR(c);
			return 0;
		}
		if (errno != E2BIG)
			return error_set(err, negative_errno(), "KVM_GET_CPUID2 on vcpu %u: %s", v->id,
					 strerror(errno));
	}
	return error_set(err, -E2BIG, "KVM_GET_CPUID2 on vcpu %u: more than 4096 entries", v->id);
}

/* The APIC ID lives in CPUID.1:EBX[31:24] and the x2APIC ID in EDX of the
 * extended topology leaves 0xB and 0x1F (SDM Vol. 2A, CPUID). */
static void set_apic_id(struct kvm_cpuid_entry2 *e, unsigned int id)
{
	if (e->function == 1)
		e->ebx = (e->ebx & 0x00FFFFFF) | ((id & 0xFF) << 24);
	else if (e->function == 0xB || e->function == 0x1F)
		e->edx = id;
}

/* The entries of a KVM CPUID list as mmu/ takes them (a new array). */
static struct mmu_cpuid_entry *to_mmu_entries(const struct kvm_cpuid_entry2 *e, size_t n)
{
	struct mmu_cpuid_entry *out = calloc(n ? n : 1, sizeof(*out));

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++)
		out[i] = (struct mmu_cpuid_entry){
			.function = e[i].function, .index = e[i].index, .flags = e[i].flags,
			.eax = e[i].eax, .ebx = e[i].ebx, .ecx = e[i].ecx, .edx = e[i].edx,
		};
	return out;
}

int vcpu_cpuid_compare(const struct kvm_cpuid2 *cur, const struct kvm_cpuid_entry2 *next,
		       size_t nnext, struct mmu_error *ret_diff)
{
	_cleanup_free_ struct mmu_cpuid_entry *a = to_mmu_entries(cur->entries, cur->nent);
	_cleanup_free_ struct mmu_cpuid_entry *b = to_mmu_entries(next, nnext);

	if (!a || !b) {
		snprintf(ret_diff->msg, sizeof(ret_diff->msg), "out of memory");
		return -ENOMEM;
	}
	/* KVM's rule after KVM_RUN (MMU.md §7): the same entries in the same order. */
	return mmu_cpuid_check_frozen(a, cur->nent, b, nnext, true, ret_diff);
}

int vcpu_cpuid_mmu_features(const struct kvm_cpuid2 *cpuid, struct mmu_cpu_features *ret,
			    struct error *err)
{
	_cleanup_free_ struct mmu_cpuid_entry *e = to_mmu_entries(cpuid->entries, cpuid->nent);
	struct mmu_error me;

	if (!e)
		return error_set(err, -ENOMEM, "CPU features: out of memory");
	if (mmu_features_from_cpuid(e, cpuid->nent, ret, &me) < 0)
		return error_set(err, -EINVAL, "CPU features: %s", me.msg);
	return 0;
}

/* v's CPUID for `cpuid`: a copy with v's APIC ID in it. */
static struct kvm_cpuid2 *cpuid_for_vcpu(const struct vcpu *v, const struct kvm_cpuid2 *cpuid)
{
	struct kvm_cpuid2 *c = cpuid_dup(cpuid);

	if (c)
		for (uint32_t i = 0; i < c->nent; i++)
			set_apic_id(&c->entries[i], v->id);
	return c;
}

static int check_change(const struct vcpu *v, const struct kvm_cpuid2 *next, struct error *err)
{
	struct mmu_error diff;

	if (!atomic_load(&v->has_run) || !v->cpuid)
		return 0;
	if (vcpu_cpuid_compare(v->cpuid, next->entries, next->nent, &diff) == 0)
		return 0;
	return error_set(err, -EINVAL,
			 "vcpu %u: %s (KVM refuses it with EINVAL); create a new VM to change the CPU model",
			 v->id, diff.msg);
}

int vcpu_cpuid_check_change(struct vcpu *v, const struct kvm_cpuid2 *cpuid, struct error *err)
{
	_cleanup_free_ struct kvm_cpuid2 *c = cpuid_for_vcpu(v, cpuid);
	int rc;

	if (!c)
		return error_set(err, -ENOMEM, "vcpu %u: out of memory", v->id);
	pthread_mutex_lock(&v->lock);
	rc = check_change(v, c, err);
	pthread_mutex_unlock(&v->lock);
	return rc;
}

int vcpu_set_cpuid(struct vcpu *v, const struct kvm_cpuid2 *cpuid, struct error *err)
{
	_cleanup_free_ struct kvm_cpuid2 *c = cpuid_for_vcpu(v, cpuid);
	struct kvm_cpuid2 *keep;
	int rc;

	if (!c)
		return error_set(err, -ENOMEM, "KVM_SET_CPUID2 on vcpu %u: out of memory", v->id);
	rc = check_change(v, c, err);
	if (rc < 0)
		return rc;
	/* After the first run an identical CPUID changes nothing: KVM is not
	 * asked, since some KVMs refuse even that (PVM compares against the
	 * list it stored, which has host bits mixed in). */
	if (atomic_load(&v->has_run) && v->cpuid)
		return 0;
	keep = cpuid_dup(c);
	if (!keep)
		return error_set(err, -ENOMEM, "KVM_SET_CPUID2 on vcpu %u: out of memory", v->id);
	rc = vcpu_ioctl(v, KVM_SET_CPUID2, c, "KVM_SET_CPUID2", err);
	if (rc < 0) {
		free(keep);
		return rc;
	}
	free(v->cpuid);
	v->cpuid = keep;
	return 0;
}

uint32_t vcpu_cpuid_signature(const struct vcpu *v)
{
	struct kvm_cpuid_entry2 *e = v->cpuid ? vcpu_cpuid_entry(v->cpuid, 1, 0) : NULL;

	return e ? e->eax : CPUID_DEFAULT_SIGNATURE;
}
