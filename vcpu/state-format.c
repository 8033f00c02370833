/* SPDX-License-Identifier: MIT */
/*
 * The vCPU state serialization (declared in vcpu/state.h; byte layout in
 * docs/vcpu.md). Little-endian throughout:
 *
 *   header   32 bytes: magic "VMMDVCPU", u16 version, u16 header size (32),
 *            u32 flags (0), u32 vCPU id, u32 section count, u64 total length
 *   sections each: u16 type, u16 flags, u32 payload length, the payload,
 *            zero padding to a multiple of 8
 *   trailer  8 bytes: u32 CRC-32C of every byte before it, u32 zero
 *
 * Payloads of fixed-size sections are the KVM uapi structures byte for
 * byte (their layout is KVM's ABI); the MSR and CPUID lists have a count
 * first. Parsing trusts nothing: every length is bounded before use, and
 * the result is built aside and handed over only when all checks pass.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/crc32c.h"
#include "util/macro.h"
#include "vcpu/state.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "x86 state is little-endian");
_Static_assert(sizeof(struct kvm_regs) == 144, "kvm_regs ABI");
_Static_assert(sizeof(struct kvm_sregs2) == 320, "kvm_sregs2 ABI");
_Static_assert(sizeof(struct kvm_fpu) == 416, "kvm_fpu ABI");
_Static_assert(sizeof(struct kvm_xcrs) == 392, "kvm_xcrs ABI");
_Static_assert(sizeof(struct kvm_lapic_state) == 1024, "kvm_lapic_state ABI");
_Static_assert(sizeof(struct kvm_vcpu_events) == 64, "kvm_vcpu_events ABI");
_Static_assert(sizeof(struct kvm_debugregs) == 128, "kvm_debugregs ABI");
_Static_assert(sizeof(struct kvm_cpuid_entry2) == 40, "kvm_cpuid_entry2 ABI");
_Static_assert(sizeof(struct kvm_nested_state) == 128, "kvm_nested_state header ABI");

#define HEADER_SIZE 32
#define SECTION_HEADER_SIZE 8
#define TRAILER_SIZE 8
#define ALIGNMENT 8
#define MSR_RECORD_SIZE 16 /* u32 index, u32 zero, u64 value */
#define LIST_HEADER_SIZE 8 /* u32 count, u32 zero */
#define XSAVE_MIN 4096	   /* struct kvm_xsave */
#define NESTED_HEADER 128

static const char *const section_names[] = {
	[VCPU_SECTION_REGS] = "regs",
	[VCPU_SECTION_SREGS2] = "sregs2",
	[VCPU_SECTION_FPU] = "fpu",
	[VCPU_SECTION_XSAVE] = "xsave",
	[VCPU_SECTION_XCRS] = "xcrs",
	[VCPU_SECTION_MSRS] = "msrs",
	[VCPU_SECTION_LAPIC] = "lapic",
	[VCPU_SECTION_EVENTS] = "events",
	[VCPU_SECTION_MP_STATE] = "mp_state",
	[VCPU_SECTION_DEBUGREGS] = "debugregs",
	[VCPU_SECTION_TSC_KHZ] = "tsc_khz",
	[VCPU_SECTION_CPUID] = "cpuid",
	[VCPU_SECTION_NESTED] = "nested",
};

#define SECTION_MAX VCPU_SECTION_NESTED

const char *vcpu_state_section_name(uint16_t type)
{
	return type < ARRAY_SIZE(section_names) ? section_names[type] : NULL;
}

/* ---------------------------------------------------------------- ownership */

void vcpu_state_release(struct vcpu_state *s)
{
	if (!s)
		return;
	free(s->xsave);
	free(s->msrs);
	free(s->cpuid);
	free(s->nested);
	memset(s, 0, sizeof(*s));
}

static void *dup_or_null(const void *p, size_t len, bool *failed)
{
	void *copy;

	if (!p || len == 0)
		return NULL;
	copy = malloc(len);
	if (!copy) {
		*failed = true;
		return NULL;
	}
	memcpy(copy, p, len);
	return copy;
}

int vcpu_state_copy(const struct vcpu_state *src, struct vcpu_state *ret, struct error *err)
{
	struct vcpu_state s = *src;
	bool failed = false;

	s.xsave = dup_or_null(src->xsave, src->xsave_size, &failed);
	s.msrs = dup_or_null(src->msrs, src->nr_msrs * sizeof(*src->msrs), &failed);
	s.cpuid = dup_or_null(src->cpuid, src->nr_cpuid * sizeof(*src->cpuid), &failed);
	s.nested = dup_or_null(src->nested, src->nested_size, &failed);
	if (failed) {
		vcpu_state_release(&s);
		return error_set(err, -ENOMEM, "copying the state of vcpu %u: out of memory",
				 src->vcpu_id);
	}
	*ret = s;
	return 0;
}

/* ---------------------------------------------------------------- writing */

static void put_u16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static size_t padded(size_t len)
{
	return (len + ALIGNMENT - 1) & ~(size_t)(ALIGNMENT - 1);
}

struct out_section {
	uint16_t type;
	const void *payload;
	size_t len;
	uint8_t *owned; /* payload built here, freed after writing */
};

/* Sections of s in their canonical order. */
static int collect_sections(const struct vcpu_state *s, struct out_section *out, size_t *ret_n,
			    struct error *err)
{
	size_t n = 0;
	uint8_t *msrs, *cpuid;

	out[n++] = (struct out_section){ VCPU_SECTION_REGS, &s->regs, sizeof(s->regs), NULL };
	out[n++] = (struct out_section){ VCPU_SECTION_SREGS2, &s->sregs, sizeof(s->sregs), NULL };
	if (s->xsave)
		out[n++] = (struct out_section){ VCPU_SECTION_XSAVE, s->xsave, s->xsave_size, NULL };
	else
		out[n++] = (struct out_section){ VCPU_SECTION_FPU, &s->fpu, sizeof(s->fpu), NULL };
	if (s->has_xcrs)
		out[n++] = (struct out_section){ VCPU_SECTION_XCRS, &s->xcrs, sizeof(s->xcrs), NULL };

	msrs = calloc(1, LIST_HEADER_SIZE + (size_t)s->nr_msrs * MSR_RECORD_SIZE);
	if (!msrs)
		return error_set(err, -ENOMEM, "serializing vcpu %u: out of memory", s->vcpu_id);
	put_u32(msrs, s->nr_msrs);
	for (unsigned int i = 0; i < s->nr_msrs; i++) {
		uint8_t *rec = msrs + LIST_HEADER_SIZE + (size_t)i * MSR_RECORD_SIZE;
		put_u32(rec, s->msrs[i].index);
		put_u64(rec + 8, s->msrs[i].value);
	}
	out[n++] = (struct out_section){ VCPU_SECTION_MSRS, msrs,
					 LIST_HEADER_SIZE + (size_t)s->nr_msrs * MSR_RECORD_SIZE,
					 msrs };

	out[n++] = (struct out_section){ VCPU_SECTION_LAPIC, &s->lapic, sizeof(s->lapic), NULL };
	out[n++] = (struct out_section){ VCPU_SECTION_EVENTS, &s->events, sizeof(s->events), NULL };
	out[n++] = (struct out_section){ VCPU_SECTION_MP_STATE, &s->mp_state,
					 sizeof(s->mp_state), NULL };
	out[n++] = (struct out_section){ VCPU_SECTION_DEBUGREGS, &s->debugregs,
					 sizeof(s->debugregs), NULL };
	out[n++] = (struct out_section){ VCPU_SECTION_TSC_KHZ, &s->tsc_khz, sizeof(s->tsc_khz),
					 NULL };

	cpuid = calloc(1, LIST_HEADER_SIZE + (size_t)s->nr_cpuid * sizeof(*s->cpuid));
	if (!cpuid) {
		free(msrs);
		return error_set(err, -ENOMEM, "serializing vcpu %u: out of memory", s->vcpu_id);
	}
	put_u32(cpuid, s->nr_cpuid);
	if (s->nr_cpuid)
		memcpy(cpuid + LIST_HEADER_SIZE, s->cpuid, s->nr_cpuid * sizeof(*s->cpuid));
	out[n++] = (struct out_section){ VCPU_SECTION_CPUID, cpuid,
					 LIST_HEADER_SIZE + (size_t)s->nr_cpuid * sizeof(*s->cpuid),
					 cpuid };
	if (s->nested && s->nested_size)
		out[n++] = (struct out_section){ VCPU_SECTION_NESTED, s->nested, s->nested_size,
						 NULL };
	*ret_n = n;
	return 0;
}

/* Bounds the serializer enforces too, so that it never writes what the
 * parser would refuse. */
static int check_bounds(const struct vcpu_state *s, struct error *err)
{
	if (s->nr_msrs > VCPU_STATE_MAX_MSRS)
		return error_set(err, -E2BIG, "vcpu %u: %u MSRs, at most %d", s->vcpu_id, s->nr_msrs,
				 VCPU_STATE_MAX_MSRS);
	if (s->nr_cpuid > VCPU_STATE_MAX_CPUID)
		return error_set(err, -E2BIG, "vcpu %u: %u CPUID entries, at most %d", s->vcpu_id,
				 s->nr_cpuid, VCPU_STATE_MAX_CPUID);
	if (s->xsave && (s->xsave_size < XSAVE_MIN || s->xsave_size > VCPU_STATE_MAX_XSAVE ||
			 s->xsave_size % 4))
		return error_set(err, -EINVAL, "vcpu %u: XSAVE image of %zu bytes", s->vcpu_id,
				 s->xsave_size);
	if (s->nested && (s->nested_size < NESTED_HEADER || s->nested_size > VCPU_STATE_MAX_NESTED))
		return error_set(err, -EINVAL, "vcpu %u: nested state of %zu bytes", s->vcpu_id,
				 s->nested_size);
	return 0;
}

int vcpu_state_serialize(const struct vcpu_state *s, void **ret_buf, size_t *ret_len,
			 struct error *err)
{
	struct out_section sec[SECTION_MAX];
	size_t n = 0, total = HEADER_SIZE + TRAILER_SIZE, off;
	uint8_t *buf;
	int rc;

	rc = check_bounds(s, err);
	if (rc == 0)
		rc = collect_sections(s, sec, &n, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		total += SECTION_HEADER_SIZE + padded(sec[i].len);
	buf = calloc(1, total);
	if (!buf) {
		rc = error_set(err, -ENOMEM, "serializing vcpu %u: out of memory", s->vcpu_id);
		goto out;
	}
	memcpy(buf, VCPU_STATE_MAGIC, 8);
	put_u16(buf + 8, VCPU_STATE_VERSION);
	put_u16(buf + 10, HEADER_SIZE);
	put_u32(buf + 12, 0);
	put_u32(buf + 16, s->vcpu_id);
	put_u32(buf + 20, (uint32_t)n);
	put_u64(buf + 24, total);
	off = HEADER_SIZE;
	for (size_t i = 0; i < n; i++) {
		/* Every section of version 1 is state a loader must apply. */
		put_u16(buf + off, sec[i].type);
		put_u16(buf + off + 2, VCPU_SECTION_FLAG_CRITICAL);
		put_u32(buf + off + 4, (uint32_t)sec[i].len);
		memcpy(buf + off + SECTION_HEADER_SIZE, sec[i].payload, sec[i].len);
		off += SECTION_HEADER_SIZE + padded(sec[i].len);
	}
	put_u32(buf + off, crc32c(0, buf, off));
	*ret_buf = buf;
	*ret_len = total;
out:
	for (size_t i = 0; i < n; i++)
		free(sec[i].owned);
	return rc;
}

/* ---------------------------------------------------------------- parsing */

static uint16_t get_u16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

#define PARSE_ERROR(err, ...) error_set(err, -EINVAL, "vCPU state: " __VA_ARGS__)

static int parse_header(const uint8_t *b, size_t len, uint32_t *ret_count, struct error *err)
{
	uint64_t total;

	if (len < HEADER_SIZE + TRAILER_SIZE)
		return PARSE_ERROR(err, "truncated: %zu bytes, the header and trailer alone take %d",
				   len, HEADER_SIZE + TRAILER_SIZE);
	if (memcmp(b, VCPU_STATE_MAGIC, 8) != 0)
		return PARSE_ERROR(err, "not a vmmd vCPU state (magic is not \"%s\")",
				   VCPU_STATE_MAGIC);
	if (get_u16(b + 8) != VCPU_STATE_VERSION)
		return PARSE_ERROR(err, "format version %u is not supported (this vmmd reads version %d)",
				   get_u16(b + 8), VCPU_STATE_VERSION);
	if (get_u16(b + 10) != HEADER_SIZE)
		return PARSE_ERROR(err, "header size %u, expected %d", get_u16(b + 10), HEADER_SIZE);
	if (get_u32(b + 12) != 0)
		return PARSE_ERROR(err, "unknown header flags 0x%x", get_u32(b + 12));
	total = get_u64(b + 24);
	if (total > VCPU_STATE_MAX_SIZE || len > VCPU_STATE_MAX_SIZE)
		return error_set(err, -E2BIG, "vCPU state: %llu bytes, more than the %d allowed",
				 (unsigned long long)MAX(total, (uint64_t)len), VCPU_STATE_MAX_SIZE);
	if (total != len)
		return PARSE_ERROR(err, "%s: the header says %llu bytes, got %zu",
				   len < total ? "truncated" : "trailing bytes",
				   (unsigned long long)total, len);
	*ret_count = get_u32(b + 20);
	return 0;
}

static int check_crc(const uint8_t *b, size_t len, struct error *err)
{
	size_t end = len - TRAILER_SIZE;
	uint32_t stored = get_u32(b + end), computed = crc32c(0, b, end);

	if (stored != computed)
		return PARSE_ERROR(err, "checksum mismatch (stored CRC-32C 0x%08x, computed 0x%08x)",
				   stored, computed);
	if (get_u32(b + end + 4) != 0)
		return PARSE_ERROR(err, "trailer reserved word is not zero");
	return 0;
}

struct section_view {
	uint16_t type;
	const uint8_t *p;
	uint32_t len;
	size_t offset; /* of its header, for messages */
};

static int expect_len(const struct section_view *sec, size_t want, struct error *err)
{
	if (sec->len != want)
		return PARSE_ERROR(err, "section '%s' at offset %zu is %u bytes, expected %zu",
				   vcpu_state_section_name(sec->type), sec->offset, sec->len, want);
	return 0;
}

/* A list payload: u32 count, u32 zero, count records of rec_size bytes. */
static int list_count(const struct section_view *sec, size_t rec_size, unsigned int max,
		      uint32_t *ret, struct error *err)
{
	const char *name = vcpu_state_section_name(sec->type);
	uint32_t count;

	if (sec->len < LIST_HEADER_SIZE)
		return PARSE_ERROR(err, "section '%s' at offset %zu is %u bytes, too short for its count",
				   name, sec->offset, sec->len);
	count = get_u32(sec->p);
	if (get_u32(sec->p + 4) != 0)
		return PARSE_ERROR(err, "section '%s' at offset %zu: reserved word is not zero", name,
				   sec->offset);
	if (count > max)
		return PARSE_ERROR(err, "section '%s' at offset %zu: %u entries, at most %u", name,
				   sec->offset, count, max);
	if (sec->len != LIST_HEADER_SIZE + (uint64_t)count * rec_size)
		return PARSE_ERROR(err, "section '%s' at offset %zu: %u bytes do not hold %u entries of %zu bytes",
				   name, sec->offset, sec->len, count, rec_size);
	*ret = count;
	return 0;
}

static int parse_msrs(const struct section_view *sec, struct vcpu_state *s, struct error *err)
{
	uint32_t count = 0;
	int rc = list_count(sec, MSR_RECORD_SIZE, VCPU_STATE_MAX_MSRS, &count, err);

	if (rc < 0)
		return rc;
	s->msrs = calloc(count ? count : 1, sizeof(*s->msrs));
	if (!s->msrs)
		return error_set(err, -ENOMEM, "vCPU state: out of memory");
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *rec = sec->p + LIST_HEADER_SIZE + (size_t)i * MSR_RECORD_SIZE;
		if (get_u32(rec + 4) != 0)
			return PARSE_ERROR(err, "section 'msrs': entry %u has a non-zero reserved word", i);
		s->msrs[i].index = get_u32(rec);
		s->msrs[i].value = get_u64(rec + 8);
		if (i > 0 && s->msrs[i].index <= s->msrs[i - 1].index)
			return PARSE_ERROR(err, "section 'msrs': MSR 0x%x %s", s->msrs[i].index,
					   s->msrs[i].index == s->msrs[i - 1].index
						   ? "appears twice"
						   : "is out of ascending order");
	}
	s->nr_msrs = count;
	return 0;
}

static int parse_cpuid(const struct section_view *sec, struct vcpu_state *s, struct error *err)
{
	uint32_t count = 0;
	int rc = list_count(sec, sizeof(struct kvm_cpuid_entry2), VCPU_STATE_MAX_CPUID, &count, err);

	if (rc < 0)
		return rc;
	if (count == 0)
		return PARSE_ERROR(err, "section 'cpuid' is empty");
	s->cpuid = malloc(count * sizeof(*s->cpuid));
	if (!s->cpuid)
		return error_set(err, -ENOMEM, "vCPU state: out of memory");
	memcpy(s->cpuid, sec->p + LIST_HEADER_SIZE, count * sizeof(*s->cpuid));
	s->nr_cpuid = count;
	return 0;
}

static int parse_xsave(const struct section_view *sec, struct vcpu_state *s, struct error *err)
{
	if (sec->len < XSAVE_MIN || sec->len > VCPU_STATE_MAX_XSAVE || sec->len % 4)
		return PARSE_ERROR(err, "section 'xsave' at offset %zu is %u bytes, expected a multiple of 4 from %d to %d",
				   sec->offset, sec->len, XSAVE_MIN, VCPU_STATE_MAX_XSAVE);
	s->xsave = malloc(sec->len);
	if (!s->xsave)
		return error_set(err, -ENOMEM, "vCPU state: out of memory");
	memcpy(s->xsave, sec->p, sec->len);
	s->xsave_size = sec->len;
	return 0;
}

static int parse_nested(const struct section_view *sec, struct vcpu_state *s, struct error *err)
{
	uint32_t size;

	if (sec->len < NESTED_HEADER || sec->len > VCPU_STATE_MAX_NESTED)
		return PARSE_ERROR(err, "section 'nested' at offset %zu is %u bytes, expected %d to %d",
				   sec->offset, sec->len, NESTED_HEADER, VCPU_STATE_MAX_NESTED);
	/* struct kvm_nested_state: u16 flags, u16 format, u32 size. */
	size = get_u32(sec->p + 4);
	if (size != sec->len)
		return PARSE_ERROR(err, "section 'nested': its header says %u bytes, the section holds %u",
				   size, sec->len);
	s->nested = malloc(sec->len);
	if (!s->nested)
		return error_set(err, -ENOMEM, "vCPU state: out of memory");
	memcpy(s->nested, sec->p, sec->len);
	s->nested_size = sec->len;
	return 0;
}

static int parse_fixed(const struct section_view *sec, void *dst, size_t size, struct error *err)
{
	int rc = expect_len(sec, size, err);

	if (rc == 0)
		memcpy(dst, sec->p, size);
	return rc;
}

static int parse_section(const struct section_view *sec, struct vcpu_state *s, struct error *err)
{
	switch (sec->type) {
	case VCPU_SECTION_REGS:
		return parse_fixed(sec, &s->regs, sizeof(s->regs), err);
	case VCPU_SECTION_SREGS2:
		return parse_fixed(sec, &s->sregs, sizeof(s->sregs), err);
	case VCPU_SECTION_FPU:
		return parse_fixed(sec, &s->fpu, sizeof(s->fpu), err);
	case VCPU_SECTION_XSAVE:
		return parse_xsave(sec, s, err);
	case VCPU_SECTION_XCRS:
		s->has_xcrs = true;
		return parse_fixed(sec, &s->xcrs, sizeof(s->xcrs), err);
	case VCPU_SECTION_MSRS:
		return parse_msrs(sec, s, err);
	case VCPU_SECTION_LAPIC:
		return parse_fixed(sec, &s->lapic, sizeof(s->lapic), err);
	case VCPU_SECTION_EVENTS:
		return parse_fixed(sec, &s->events, sizeof(s->events), err);
	case VCPU_SECTION_MP_STATE:
		return parse_fixed(sec, &s->mp_state, sizeof(s->mp_state), err);
	case VCPU_SECTION_DEBUGREGS:
		return parse_fixed(sec, &s->debugregs, sizeof(s->debugregs), err);
	case VCPU_SECTION_TSC_KHZ:
		return parse_fixed(sec, &s->tsc_khz, sizeof(s->tsc_khz), err);
	case VCPU_SECTION_CPUID:
		return parse_cpuid(sec, s, err);
	case VCPU_SECTION_NESTED:
		return parse_nested(sec, s, err);
	}
	return PARSE_ERROR(err, "internal: section type %u has no parser", sec->type);
}

/* Sections every state must have; of FPU and XSAVE exactly one. */
static const uint16_t required[] = {
	VCPU_SECTION_REGS,   VCPU_SECTION_SREGS2,    VCPU_SECTION_MSRS,
	VCPU_SECTION_LAPIC,  VCPU_SECTION_EVENTS,    VCPU_SECTION_MP_STATE,
	VCPU_SECTION_DEBUGREGS, VCPU_SECTION_TSC_KHZ, VCPU_SECTION_CPUID,
};

static int check_presence(const bool seen[], struct error *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(required); i++)
		if (!seen[required[i]])
			return PARSE_ERROR(err, "required section '%s' is missing",
					   vcpu_state_section_name(required[i]));
	if (seen[VCPU_SECTION_FPU] == seen[VCPU_SECTION_XSAVE])
		return PARSE_ERROR(err, "%s",
				   seen[VCPU_SECTION_FPU] ? "both 'fpu' and 'xsave' sections are present"
							  : "neither an 'fpu' nor an 'xsave' section is present");
	return 0;
}

/* Reads the section header at *off; checks it fits and its padding is zero. */
static int next_section(const uint8_t *b, size_t end, size_t *off, struct section_view *ret,
			uint16_t *ret_flags, struct error *err)
{
	size_t at = *off, pad;

	if (end - at < SECTION_HEADER_SIZE)
		return PARSE_ERROR(err, "truncated section header at offset %zu", at);
	ret->type = get_u16(b + at);
	*ret_flags = get_u16(b + at + 2);
	ret->len = get_u32(b + at + 4);
	ret->offset = at;
	ret->p = b + at + SECTION_HEADER_SIZE;
	if (ret->len > end - at - SECTION_HEADER_SIZE)
		return PARSE_ERROR(err, "section %u at offset %zu claims %u bytes, only %zu remain",
				   ret->type, at, ret->len, end - at - SECTION_HEADER_SIZE);
	pad = padded(ret->len) - ret->len;
	if (pad > end - at - SECTION_HEADER_SIZE - ret->len)
		return PARSE_ERROR(err, "section %u at offset %zu: padding runs past the end", ret->type,
				   at);
	for (size_t i = 0; i < pad; i++)
		if (ret->p[ret->len + i] != 0)
			return PARSE_ERROR(err, "section %u at offset %zu: non-zero padding", ret->type, at);
	if (*ret_flags & ~VCPU_SECTION_FLAG_CRITICAL)
		return PARSE_ERROR(err, "section %u at offset %zu: unknown flags 0x%x", ret->type, at,
				   *ret_flags);
	*off = at + SECTION_HEADER_SIZE + ret->len + pad;
	return 0;
}

static int parse_sections(const uint8_t *b, size_t len, uint32_t count, struct vcpu_state *s,
			  unsigned int *ret_skipped, struct error *err)
{
	bool seen[SECTION_MAX + 1] = { false };
	size_t off = HEADER_SIZE, end = len - TRAILER_SIZE;
	unsigned int skipped = 0;
	int rc;

	for (uint32_t i = 0; i < count; i++) {
		struct section_view sec = { 0 };
		uint16_t flags = 0;
		rc = next_section(b, end, &off, &sec, &flags, err);
		if (rc < 0)
			return rc;
		if (!vcpu_state_section_name(sec.type)) {
			if (flags & VCPU_SECTION_FLAG_CRITICAL)
				return PARSE_ERROR(err, "section type %u at offset %zu is unknown and marked critical",
						   sec.type, sec.offset);
			skipped++;
			continue;
		}
		if (seen[sec.type])
			return PARSE_ERROR(err, "section '%s' appears twice (again at offset %zu)",
					   vcpu_state_section_name(sec.type), sec.offset);
		seen[sec.type] = true;
		rc = parse_section(&sec, s, err);
		if (rc < 0)
			return rc;
	}
	if (off != end)
		return PARSE_ERROR(err, "%zu bytes after the last of %u sections", end - off, count);
	rc = check_presence(seen, err);
	if (rc < 0)
		return rc;
	*ret_skipped = skipped;
	return 0;
}

int vcpu_state_parse(const void *buf, size_t len, struct vcpu_state *ret,
		     unsigned int *ret_skipped, struct error *err)
{
	const uint8_t *b = buf;
	struct vcpu_state s = { 0 };
	unsigned int skipped = 0;
	uint32_t count = 0;
	int rc;

	if (!buf)
		return PARSE_ERROR(err, "no data");
	rc = parse_header(b, len, &count, err);
	if (rc == 0)
		rc = check_crc(b, len, err);
	if (rc < 0)
		return rc;
	s.vcpu_id = get_u32(b + 16);
	rc = parse_sections(b, len, count, &s, &skipped, err);
	if (rc < 0) {
		vcpu_state_release(&s);
		return rc;
	}
	*ret = s;
	if (ret_skipped)
		*ret_skipped = skipped;
	return 0;
}
