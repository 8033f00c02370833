/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the vCPU state serialization (vcpu/state-format.c): the
 * byte layout, round trips with synthetic state (nested state included),
 * and every way a parse must refuse its input, with the message and with
 * the output left untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/crc32c.h"
#include "util/macro.h"
#include "vcpu/state.h"
#include "vcpu/x86.h"

#define HEADER 32
#define TRAILER 8

/* ---------------------------------------------------------------- fixtures */

/* A state with every section, values that make each field distinct, a
 * 4 KiB XSAVE image and a synthetic VMX nested-state blob. */
static void synthetic_state(struct vcpu_state *s)
{
	struct kvm_nested_state *n;

	memset(s, 0, sizeof(*s));
	s->vcpu_id = 3;
	s->regs.rax = 0x1111, s->regs.rip = 0xFFF0, s->regs.rflags = 0x2, s->regs.r15 = 0xF15;
	s->sregs.cr0 = 0x80000011, s->sregs.cr4 = 0x20, s->sregs.apic_base = 0xFEE00800;
	s->sregs.cs.selector = 0x8, s->sregs.cs.type = 0xB, s->sregs.cs.present = 1;
	s->xsave_size = 4096;
	s->xsave = calloc(1, 4096);
	assert_non_null(s->xsave);
	for (int i = 0; i < 512; i++)
		((uint8_t *)s->xsave->region)[i] = (uint8_t)i;
	s->has_xcrs = true;
	s->xcrs.nr_xcrs = 1, s->xcrs.xcrs[0].value = 3;
	s->nr_msrs = 3;
	s->msrs = calloc(3, sizeof(*s->msrs));
	assert_non_null(s->msrs);
	s->msrs[0] = (struct vcpu_msr){ 0x10, 0x123456789ULL };
	s->msrs[1] = (struct vcpu_msr){ 0x277, 0x0007040600070406ULL };
	s->msrs[2] = (struct vcpu_msr){ 0xC0000082, 0xFFFFFFFF81000000ULL };
	memset(s->lapic.regs, 0x42, sizeof(s->lapic.regs));
	s->events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING, s->events.nmi.pending = 1;
	s->mp_state.mp_state = KVM_MP_STATE_HALTED;
	s->debugregs.dr6 = 0xFFFF0FF0, s->debugregs.dr7 = 0x400;
	s->tsc_khz = 2000000;
	s->nr_cpuid = 2;
	s->cpuid = calloc(2, sizeof(*s->cpuid));
	assert_non_null(s->cpuid);
	s->cpuid[0] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0x20 };
	s->cpuid[1] = (struct kvm_cpuid_entry2){ .function = 1, .eax = 0xA0678, .ebx = 3U << 24 };
	s->nested_size = 128 + 4096;
	s->nested = calloc(1, s->nested_size);
	assert_non_null(s->nested);
	n = s->nested;
	n->format = KVM_STATE_NESTED_FORMAT_VMX;
	n->size = (uint32_t)s->nested_size;
	n->hdr.vmx.vmxon_pa = 0x10000, n->hdr.vmx.vmcs12_pa = 0x11000;
	memcpy((uint8_t *)s->nested + 128, "\xd0\x7e\xe5\x11", 4); /* vmcs12 revision */
}

static void assert_states_equal(const struct vcpu_state *a, const struct vcpu_state *b)
{
	assert_int_equal(a->vcpu_id, b->vcpu_id);
	assert_memory_equal(&a->regs, &b->regs, sizeof(a->regs));
	assert_memory_equal(&a->sregs, &b->sregs, sizeof(a->sregs));
	assert_memory_equal(&a->fpu, &b->fpu, sizeof(a->fpu));
	assert_int_equal(a->xsave_size, b->xsave_size);
	if (a->xsave)
		assert_memory_equal(a->xsave, b->xsave, a->xsave_size);
	assert_int_equal(a->has_xcrs, b->has_xcrs);
	assert_memory_equal(&a->xcrs, &b->xcrs, sizeof(a->xcrs));
	assert_int_equal(a->nr_msrs, b->nr_msrs);
	for (unsigned int i = 0; i < a->nr_msrs; i++) {
		assert_int_equal(a->msrs[i].index, b->msrs[i].index);
		assert_true(a->msrs[i].value == b->msrs[i].value);
	}
	assert_memory_equal(&a->lapic, &b->lapic, sizeof(a->lapic));
	assert_memory_equal(&a->events, &b->events, sizeof(a->events));
	assert_int_equal(a->mp_state.mp_state, b->mp_state.mp_state);
	assert_memory_equal(&a->debugregs, &b->debugregs, sizeof(a->debugregs));
	assert_int_equal(a->tsc_khz, b->tsc_khz);
	assert_int_equal(a->nr_cpuid, b->nr_cpuid);
	assert_memory_equal(a->cpuid, b->cpuid, a->nr_cpuid * sizeof(*a->cpuid));
	assert_int_equal(a->nested_size, b->nested_size);
	if (a->nested)
		assert_memory_equal(a->nested, b->nested, a->nested_size);
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void wr64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* Recomputes the CRC after a test edited the bytes, so that the parse
 * reaches the check the test is about. */
static void reseal(uint8_t *b, size_t len)
{
	wr32(b + len - TRAILER, crc32c(0, b, len - TRAILER));
}

/* Offset of the first section of `type` in a serialized state. */
static size_t find_section(const uint8_t *b, size_t len, uint16_t type)
{
	size_t off = HEADER;

	while (off + 8 <= len - TRAILER) {
		if (rd16(b + off) == type)
			return off;
		off += 8 + ((rd32(b + off + 4) + 7) & ~7U);
	}
	fail_msg("section %u not found", type);
	return 0;
}

/* The synthetic state serialized, in a new buffer. */
static uint8_t *serialized_synthetic(size_t *ret_len)
{
	struct vcpu_state a;
	void *b = NULL;
	struct error e;

	synthetic_state(&a);
	assert_int_equal(vcpu_state_serialize(&a, &b, ret_len, &e), 0);
	vcpu_state_release(&a);
	return b;
}

/* ---------------------------------------------------------------- a builder for bad inputs */

struct builder {
	uint8_t buf[64 * 1024];
	size_t len;
	uint32_t count;
};

static void b_start(struct builder *b, uint32_t vcpu_id)
{
	memset(b, 0, sizeof(*b));
	memcpy(b->buf, VCPU_STATE_MAGIC, 8);
	b->buf[8] = VCPU_STATE_VERSION;
	b->buf[10] = HEADER;
	wr32(b->buf + 16, vcpu_id);
	b->len = HEADER;
}

static void b_section(struct builder *b, uint16_t type, uint16_t flags, const void *p, uint32_t len)
{
	memcpy(b->buf + b->len, &type, 2);
	memcpy(b->buf + b->len + 2, &flags, 2);
	wr32(b->buf + b->len + 4, len);
	if (len)
		memcpy(b->buf + b->len + 8, p, len);
	b->len += 8 + ((len + 7) & ~7U);
	b->count++;
}

static size_t b_finish(struct builder *b)
{
	wr32(b->buf + 20, b->count);
	wr64(b->buf + 24, b->len + TRAILER);
	b->len += TRAILER;
	reseal(b->buf, b->len);
	return b->len;
}

/* The sections of a minimal valid state, except `skip`, plus `extra`. */
static size_t build_minimal(struct builder *b, uint16_t skip, uint16_t extra_type,
			    uint16_t extra_flags, const void *extra, uint32_t extra_len)
{
	static const struct kvm_regs regs = { .rflags = 2 };
	static const struct kvm_sregs2 sregs = { .cr0 = 0x60000010 };
	static const struct kvm_fpu fpu = { .fcw = 0x37F, .mxcsr = 0x1F80 };
	static const struct kvm_lapic_state lapic;
	static const struct kvm_vcpu_events events;
	static const struct kvm_mp_state mp;
	static const struct kvm_debugregs dr = { .dr6 = 0xFFFF0FF0, .dr7 = 0x400 };
	static const uint32_t khz = 1000000;
	uint8_t msrs[8] = { 0 };
	uint8_t cpuid[8 + 40] = { 1 };
	struct {
		uint16_t type;
		const void *p;
		uint32_t len;
	} all[] = {
		{ VCPU_SECTION_REGS, &regs, sizeof(regs) },
		{ VCPU_SECTION_SREGS2, &sregs, sizeof(sregs) },
		{ VCPU_SECTION_FPU, &fpu, sizeof(fpu) },
		{ VCPU_SECTION_MSRS, msrs, sizeof(msrs) },
		{ VCPU_SECTION_LAPIC, &lapic, sizeof(lapic) },
		{ VCPU_SECTION_EVENTS, &events, sizeof(events) },
		{ VCPU_SECTION_MP_STATE, &mp, sizeof(mp) },
		{ VCPU_SECTION_DEBUGREGS, &dr, sizeof(dr) },
		{ VCPU_SECTION_TSC_KHZ, &khz, sizeof(khz) },
		{ VCPU_SECTION_CPUID, cpuid, sizeof(cpuid) },
	};

	b_start(b, 0);
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		if (all[i].type != skip)
			b_section(b, all[i].type, VCPU_SECTION_FLAG_CRITICAL, all[i].p, all[i].len);
	if (extra_type)
		b_section(b, extra_type, extra_flags, extra, extra_len);
	return b_finish(b);
}

/* Parses and expects a refusal containing `needle`, with *ret untouched. */
static void expect_refused(const void *buf, size_t len, int code, const char *needle)
{
	struct vcpu_state s;
	struct error e = { 0 };
	unsigned int skipped = 77;
	int rc;

	memset(&s, 0xA5, sizeof(s));
	rc = vcpu_state_parse(buf, len, &s, &skipped, &e);
	if (rc != code)
		fail_msg("parse returned %d (%s), expected %d", rc, rc ? e.msg : "accepted", code);
	if (!strstr(e.msg, needle))
		fail_msg("message \"%s\" does not mention \"%s\"", e.msg, needle);
	for (size_t i = 0; i < sizeof(s); i++)
		if (((uint8_t *)&s)[i] != 0xA5)
			fail_msg("output modified at byte %zu on a refused parse", i);
	assert_int_equal(skipped, 77);
}

/* ---------------------------------------------------------------- tests */

static void test_round_trip_is_byte_identical(void **state)
{
	struct vcpu_state a, b = { 0 };
	_cleanup_free_ void *buf1 = NULL;
	_cleanup_free_ void *buf2 = NULL;
	size_t len1, len2;
	unsigned int skipped = 9;
	struct error e;

	synthetic_state(&a);
	assert_int_equal(vcpu_state_serialize(&a, &buf1, &len1, &e), 0);
	assert_int_equal(vcpu_state_parse(buf1, len1, &b, &skipped, &e), 0);
	assert_int_equal(skipped, 0);
	assert_states_equal(&a, &b);
	assert_int_equal(vcpu_state_serialize(&b, &buf2, &len2, &e), 0);
	assert_int_equal(len1, len2);
	assert_memory_equal(buf1, buf2, len1);
	vcpu_state_release(&a);
	vcpu_state_release(&b);
}

/* The documented layout (docs/vcpu.md), field by field. */
static void test_byte_layout(void **state)
{
	struct vcpu_state a;
	_cleanup_free_ uint8_t *b = NULL;
	size_t len, off;
	struct error e;

	synthetic_state(&a);
	assert_int_equal(vcpu_state_serialize(&a, (void **)&b, &len, &e), 0);
	assert_memory_equal(b, "VMMDVCPU", 8);  /* magic */
	assert_int_equal(rd16(b + 8), 1);       /* version */
	assert_int_equal(rd16(b + 10), 32);     /* header size */
	assert_int_equal(rd32(b + 12), 0);      /* flags */
	assert_int_equal(rd32(b + 16), 3);      /* vCPU id */
	assert_int_equal(rd32(b + 20), 12);     /* sections: all but fpu (xsave instead) */
	assert_true(rd32(b + 24) == len && rd32(b + 28) == 0); /* u64 total length */
	/* First section: regs, critical, 144 bytes, then the struct itself. */
	assert_int_equal(rd16(b + 32), VCPU_SECTION_REGS);
	assert_int_equal(rd16(b + 34), VCPU_SECTION_FLAG_CRITICAL);
	assert_int_equal(rd32(b + 36), 144);
	assert_memory_equal(b + 40, &a.regs, 144);
	/* Sections in canonical order, each 8-byte aligned. */
	static const uint16_t order[] = { 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 };
	off = HEADER;
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		assert_int_equal(off % 8, 0);
		assert_int_equal(rd16(b + off), order[i]);
		off += 8 + ((rd32(b + off + 4) + 7) & ~7U);
	}
	assert_int_equal(off, len - TRAILER);
	/* MSR list: count, zero, then {index, zero, value} records. */
	off = find_section(b, len, VCPU_SECTION_MSRS);
	assert_int_equal(rd32(b + off + 4), 8 + 3 * 16);
	assert_int_equal(rd32(b + off + 8), 3);
	assert_int_equal(rd32(b + off + 16), 0x10);
	assert_int_equal(rd32(b + off + 20), 0);
	assert_int_equal(rd32(b + off + 24), 0x23456789);
	assert_int_equal(rd32(b + off + 28), 0x1);
	/* MP state: 4 bytes of payload, 4 of zero padding. */
	off = find_section(b, len, VCPU_SECTION_MP_STATE);
	assert_int_equal(rd32(b + off + 4), 4);
	assert_int_equal(rd32(b + off + 8), KVM_MP_STATE_HALTED);
	assert_int_equal(rd32(b + off + 12), 0);
	/* Trailer: CRC-32C of everything before it, then zero. */
	assert_int_equal(rd32(b + len - 8), crc32c(0, b, len - 8));
	assert_int_equal(rd32(b + len - 4), 0);
	vcpu_state_release(&a);
}

static void test_copy_is_deep(void **state)
{
	struct vcpu_state a, b;
	struct error e;

	synthetic_state(&a);
	assert_int_equal(vcpu_state_copy(&a, &b, &e), 0);
	assert_ptr_not_equal(a.msrs, b.msrs);
	assert_ptr_not_equal(a.nested, b.nested);
	assert_states_equal(&a, &b);
	vcpu_state_release(&a);
	b.msrs[0].value = 1;
	vcpu_state_release(&b);
	vcpu_state_release(NULL);
}

static void test_minimal_state_with_fpu_parses(void **state)
{
	struct builder *b = calloc(1, sizeof(*b));
	struct vcpu_state s;
	size_t len = build_minimal(b, 0, 0, 0, NULL, 0);
	struct error e;

	assert_int_equal(vcpu_state_parse(b->buf, len, &s, NULL, &e), 0);
	assert_null(s.xsave);
	assert_false(s.has_xcrs);
	assert_null(s.nested);
	assert_int_equal(s.fpu.fcw, 0x37F);
	assert_int_equal(s.nr_msrs, 0);
	vcpu_state_release(&s);
	free(b);
}

static void test_refuses_bad_header(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = serialized_synthetic(&len);
	struct vcpu_state a;
	struct error e;

	expect_refused(NULL, 0, -EINVAL, "no data");
	b[0] = 'X';
	expect_refused(b, len, -EINVAL, "not a vmmd vCPU state");
	b[0] = 'V';
	b[8] = 2;
	expect_refused(b, len, -EINVAL, "format version 2 is not supported (this vmmd reads version 1)");
	b[8] = 1;
	b[10] = 40;
	expect_refused(b, len, -EINVAL, "header size 40, expected 32");
	b[10] = 32;
	b[12] = 1;
	expect_refused(b, len, -EINVAL, "unknown header flags 0x1");
	b[12] = 0;
	/* Still fine after the edits were undone. */
	assert_int_equal(vcpu_state_parse(b, len, &a, NULL, &e), 0);
	vcpu_state_release(&a);
}

static void test_refuses_every_truncation(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = serialized_synthetic(&len);

	for (size_t cut = 0; cut < len; cut++)
		expect_refused(b, cut, -EINVAL, cut < HEADER + TRAILER ? "truncated" : "truncated: the header says");
}

static void test_refuses_trailing_bytes_and_oversize(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = serialized_synthetic(&len);
	uint8_t *big;

	big = calloc(1, VCPU_STATE_MAX_SIZE + 16);
	assert_non_null(big);
	memcpy(big, b, len);
	expect_refused(big, len + 8, -EINVAL, "trailing bytes: the header says");
	/* A header that claims more than the bound, with that many bytes. */
	wr64(big + 24, VCPU_STATE_MAX_SIZE + 8);
	expect_refused(big, VCPU_STATE_MAX_SIZE + 8, -E2BIG, "more than the 1048576 allowed");
	free(big);
}

/* What a parse must say when byte i of a len-byte state is corrupted. */
static void expected_refusal(size_t i, size_t len, const uint8_t *b, int *ret_code,
			     const char **ret_needle)
{
	uint64_t total;

	*ret_code = -EINVAL;
	if (i < 8)
		*ret_needle = "not a vmmd vCPU state (magic is not \"VMMDVCPU\")";
	else if (i < 10)
		*ret_needle = "is not supported (this vmmd reads version 1)";
	else if (i < 12)
		*ret_needle = ", expected 32";
	else if (i < 16)
		*ret_needle = "vCPU state: unknown header flags 0x";
	else if (i >= 24 && i < 32) {
		memcpy(&total, b + 24, 8);
		if (total > VCPU_STATE_MAX_SIZE) {
			*ret_code = -E2BIG;
			*ret_needle = "more than the 1048576 allowed";
		} else {
			*ret_needle = total < len ? "vCPU state: trailing bytes: the header says"
						  : "vCPU state: truncated: the header says";
		}
	} else if (i >= len - 4)
		*ret_needle = "vCPU state: trailer reserved word is not zero";
	else
		/* The vCPU id, the section count, every section and the stored
		 * CRC itself: only the checksum catches them. */
		*ret_needle = "vCPU state: checksum mismatch (stored CRC-32C 0x";
}

/* Flips bytes from, from + step, ... below to of the len-byte state b. */
static void flip_bytes(uint8_t *b, size_t len, size_t from, size_t to, size_t step)
{
	static const uint8_t flips[] = { 0xFF, 0x01 };
	const char *needle;
	int code;

	for (size_t f = 0; f < ARRAY_SIZE(flips); f++)
		for (size_t i = from; i < to; i += step) {
			b[i] ^= flips[f];
			expected_refusal(i, len, b, &code, &needle);
			expect_refused(b, len, code, needle);
			b[i] ^= flips[f];
		}
}

/*
 * Every byte of a serialized state, header and trailer included, flipped
 * in turn (all its bits, then its lowest bit alone): each is refused, with
 * the message of the check that owns the byte. Every byte of a minimal
 * state (2 KiB), and every 7th of the full synthetic one with XSAVE, XCRs
 * and nested state (the CRC is computed bit by bit, so all of its 10 KiB
 * would cost seconds).
 */
static void test_refuses_every_flipped_byte(void **state)
{
	struct builder *min = calloc(1, sizeof(*min));
	size_t len, min_len;
	_cleanup_free_ uint8_t *b = serialized_synthetic(&len);

	assert_non_null(min);
	min_len = build_minimal(min, 0, 0, 0, NULL, 0);
	flip_bytes(min->buf, min_len, 0, min_len, 1);
	flip_bytes(b, len, 0, len, 7);
	/* The header and trailer of the full state, byte by byte. */
	flip_bytes(b, len, 0, HEADER, 1);
	flip_bytes(b, len, len - TRAILER, len, 1);
	free(min);
}

static void test_refuses_duplicate_and_missing_sections(void **state)
{
	struct builder *b = calloc(1, sizeof(*b));
	struct kvm_regs regs = { .rflags = 2 };
	struct kvm_fpu fpu = { 0 };
	uint8_t xsave[4096] = { 0 };
	size_t len;

	len = build_minimal(b, 0, VCPU_SECTION_REGS, 1, &regs, sizeof(regs));
	expect_refused(b->buf, len, -EINVAL, "section 'regs' appears twice");
	len = build_minimal(b, VCPU_SECTION_LAPIC, 0, 0, NULL, 0);
	expect_refused(b->buf, len, -EINVAL, "required section 'lapic' is missing");
	len = build_minimal(b, VCPU_SECTION_CPUID, 0, 0, NULL, 0);
	expect_refused(b->buf, len, -EINVAL, "required section 'cpuid' is missing");
	len = build_minimal(b, VCPU_SECTION_FPU, 0, 0, NULL, 0);
	expect_refused(b->buf, len, -EINVAL, "neither an 'fpu' nor an 'xsave' section");
	len = build_minimal(b, 0, VCPU_SECTION_XSAVE, 1, xsave, sizeof(xsave));
	expect_refused(b->buf, len, -EINVAL, "both 'fpu' and 'xsave' sections");
	(void)fpu;
	free(b);
}

static void test_unknown_sections(void **state)
{
	struct builder *b = calloc(1, sizeof(*b));
	uint8_t blob[13] = { 1, 2, 3 };
	struct vcpu_state s;
	unsigned int skipped = 0;
	struct error e;
	size_t len;

	/* Not critical: skipped and counted. */
	len = build_minimal(b, 0, 200, 0, blob, sizeof(blob));
	assert_int_equal(vcpu_state_parse(b->buf, len, &s, &skipped, &e), 0);
	assert_int_equal(skipped, 1);
	vcpu_state_release(&s);
	/* Critical: the whole state is refused. */
	len = build_minimal(b, 0, 200, VCPU_SECTION_FLAG_CRITICAL, blob, sizeof(blob));
	expect_refused(b->buf, len, -EINVAL, "section type 200 at offset");
	expect_refused(b->buf, len, -EINVAL, "unknown and marked critical");
	/* Unknown section flags. */
	len = build_minimal(b, 0, 200, 0x8, blob, sizeof(blob));
	expect_refused(b->buf, len, -EINVAL, "unknown flags 0x8");
	free(b);
}

static void test_refuses_wrong_section_sizes(void **state)
{
	struct builder *b = calloc(1, sizeof(*b));
	uint8_t junk[2048] = { 0 };
	uint8_t small_xsave[4000] = { 0 };
	size_t len;

	len = build_minimal(b, VCPU_SECTION_REGS, VCPU_SECTION_REGS, 1, junk, 143);
	expect_refused(b->buf, len, -EINVAL, "section 'regs' at offset");
	expect_refused(b->buf, len, -EINVAL, "is 143 bytes, expected 144");
	len = build_minimal(b, VCPU_SECTION_LAPIC, VCPU_SECTION_LAPIC, 1, junk, 2048);
	expect_refused(b->buf, len, -EINVAL, "is 2048 bytes, expected 1024");
	len = build_minimal(b, VCPU_SECTION_MP_STATE, VCPU_SECTION_MP_STATE, 1, junk, 0);
	expect_refused(b->buf, len, -EINVAL, "section 'mp_state'");
	len = build_minimal(b, VCPU_SECTION_FPU, VCPU_SECTION_XSAVE, 1, small_xsave,
			    sizeof(small_xsave));
	expect_refused(b->buf, len, -EINVAL, "section 'xsave' at offset");
	free(b);
}

static void test_refuses_lengths_past_the_end(void **state)
{
	struct builder *b = calloc(1, sizeof(*b));
	size_t len = build_minimal(b, 0, 0, 0, NULL, 0), off;

	/* The regs section claims 1 GiB. */
	off = find_section(b->buf, len, VCPU_SECTION_REGS);
	wr32(b->buf + off + 4, 1U << 30);
	reseal(b->buf, len);
	expect_refused(b->buf, len, -EINVAL, "claims 1073741824 bytes, only");
	/* More sections announced than there are. */
	len = build_minimal(b, 0, 0, 0, NULL, 0);
	wr32(b->buf + 20, 11);
	reseal(b->buf, len);
	expect_refused(b->buf, len, -EINVAL, "truncated section header");
	/* Fewer announced than there are: bytes left over. */
	len = build_minimal(b, 0, 0, 0, NULL, 0);
	wr32(b->buf + 20, 9);
	reseal(b->buf, len);
	expect_refused(b->buf, len, -EINVAL, "bytes after the last of 9 sections");
	free(b);
}

static void test_refuses_nonzero_padding(void **state)
{
	struct builder *b = calloc(1, sizeof(*b));
	size_t len = build_minimal(b, 0, 0, 0, NULL, 0);
	size_t off = find_section(b->buf, len, VCPU_SECTION_MP_STATE);

	b->buf[off + 8 + 4] = 1;
	reseal(b->buf, len);
	expect_refused(b->buf, len, -EINVAL, "non-zero padding");
	free(b);
}

static void test_refuses_bad_lists(void **state)
{
	struct builder *b = calloc(1, sizeof(*b));
	uint8_t msrs[8 + 3 * 16] = { 0 };
	uint8_t cpuid[8] = { 0 };
	size_t len;

	/* MSRs out of order, then twice the same, then a count that does not fit. */
	wr32(msrs, 3);
	wr32(msrs + 8, 0x277), wr32(msrs + 24, 0x10), wr32(msrs + 40, 0x300);
	len = build_minimal(b, VCPU_SECTION_MSRS, VCPU_SECTION_MSRS, 1, msrs, sizeof(msrs));
	expect_refused(b->buf, len, -EINVAL, "MSR 0x10 is out of ascending order");
	wr32(msrs + 24, 0x277);
	len = build_minimal(b, VCPU_SECTION_MSRS, VCPU_SECTION_MSRS, 1, msrs, sizeof(msrs));
	expect_refused(b->buf, len, -EINVAL, "MSR 0x277 appears twice");
	wr32(msrs + 24, 0x280);
	wr32(msrs + 12, 1);
	len = build_minimal(b, VCPU_SECTION_MSRS, VCPU_SECTION_MSRS, 1, msrs, sizeof(msrs));
	expect_refused(b->buf, len, -EINVAL, "entry 0 has a non-zero reserved word");
	wr32(msrs + 12, 0);
	wr32(msrs, 4);
	len = build_minimal(b, VCPU_SECTION_MSRS, VCPU_SECTION_MSRS, 1, msrs, sizeof(msrs));
	expect_refused(b->buf, len, -EINVAL, "do not hold 4 entries of 16 bytes");
	wr32(msrs, 2000);
	len = build_minimal(b, VCPU_SECTION_MSRS, VCPU_SECTION_MSRS, 1, msrs, sizeof(msrs));
	expect_refused(b->buf, len, -EINVAL, "2000 entries, at most 1024");
	/* CPUID: empty, and too many. */
	len = build_minimal(b, VCPU_SECTION_CPUID, VCPU_SECTION_CPUID, 1, cpuid, sizeof(cpuid));
	expect_refused(b->buf, len, -EINVAL, "section 'cpuid' is empty");
	wr32(cpuid, 257);
	len = build_minimal(b, VCPU_SECTION_CPUID, VCPU_SECTION_CPUID, 1, cpuid, sizeof(cpuid));
	expect_refused(b->buf, len, -EINVAL, "257 entries, at most 256");
	free(b);
}

static void test_refuses_inconsistent_nested_size(void **state)
{
	struct builder *b = calloc(1, sizeof(*b));
	uint8_t nested[256] = { 0 };
	size_t len;

	wr32(nested + 4, 300);
	len = build_minimal(b, 0, VCPU_SECTION_NESTED, 1, nested, sizeof(nested));
	expect_refused(b->buf, len, -EINVAL, "its header says 300 bytes, the section holds 256");
	len = build_minimal(b, 0, VCPU_SECTION_NESTED, 1, nested, 64);
	expect_refused(b->buf, len, -EINVAL, "section 'nested' at offset");
	free(b);
}

static void test_serializer_refuses_out_of_bounds_state(void **state)
{
	struct vcpu_state a;
	void *buf = NULL;
	size_t len;
	struct error e;

	synthetic_state(&a);
	a.nr_msrs = VCPU_STATE_MAX_MSRS + 1;
	assert_int_equal(vcpu_state_serialize(&a, &buf, &len, &e), -E2BIG);
	assert_null(buf);
	a.nr_msrs = 3;
	a.xsave_size = 100;
	assert_int_equal(vcpu_state_serialize(&a, &buf, &len, &e), -EINVAL);
	a.xsave_size = 4096;
	vcpu_state_release(&a);
}

static void test_section_names(void **state)
{
	assert_string_equal(vcpu_state_section_name(VCPU_SECTION_REGS), "regs");
	assert_string_equal(vcpu_state_section_name(VCPU_SECTION_NESTED), "nested");
	assert_null(vcpu_state_section_name(0));
	assert_null(vcpu_state_section_name(99));
}

/* ---------------------------------------------------------------- checks before a load */

/* CPUID entry with the subleaf significant (leaves 7 and 0xD). */
#define INDEXED(fn, idx) .function = (fn), .index = (idx), .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX

/*
 * The CPU model of the target in the check tests: an Intel CPU with PAE,
 * PGE, PSE, PAT, FXSR/SSE/SSE2, XSAVE and x2APIC (leaf 1), x87 | SSE |
 * AVX | AVX-512 state (leaf 0xD: 0xE7), NX and long mode, MAXPHYADDR 46.
 */
static const struct kvm_cpuid_entry2 model_entries[] = {
	{ .function = 0, .eax = 0xD, .ebx = 0x756E6547, .edx = 0x49656E69, .ecx = 0x6C65746E },
	{ .function = 1, .eax = 0xA0678, .ecx = (1U << 21) | (1U << 26),
	  .edx = (1U << 3) | (1U << 6) | (1U << 13) | (1U << 16) | (1U << 17) | (1U << 24) |
		 (1U << 25) | (1U << 26) },
	{ INDEXED(7, 0) },
	{ INDEXED(0xD, 0), .eax = 0xE7, .ebx = 576, .ecx = 2688 },
	{ .function = 0x80000000, .eax = 0x80000008 },
	{ .function = 0x80000001, .edx = (1U << 20) | (1U << 29) },
	{ .function = 0x80000008, .eax = 0x302E },
};

static struct kvm_cpuid2 *model_cpuid(bool x2apic)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + sizeof(model_entries));

	assert_non_null(c);
	c->nent = ARRAY_SIZE(model_entries);
	memcpy(c->entries, model_entries, sizeof(model_entries));
	if (!x2apic)
		c->entries[1].ecx &= ~(1U << 21);
	return c;
}

/* The MSRs the target's KVM reads: the TSC and PAT. */
static bool target_reads_msr(const void *ctx, uint32_t index)
{
	return index == MSR_IA32_TSC || index == MSR_IA32_PAT;
}

/* vcpu 0 on a KVM with XSAVE (4 KiB), XCRs, SREGS2, SMM and nested
 * state, at 2 GHz without TSC scaling. */
static void good_target(struct vcpu_state_target *t, const struct kvm_cpuid2 *model)
{
	*t = (struct vcpu_state_target){
		.vcpu_id = 0, .cpuid = model, .xsave_size = 4096, .has_xcrs = true,
		.has_sregs2 = true, .has_smm = true, .can_scale_tsc = false, .tsc_khz = 2000000,
		.nested_max = 128 + 8192, .msr_supported = target_reads_msr,
	};
}

static struct kvm_segment user_segment(uint16_t selector, uint8_t type, bool code)
{
	return (struct kvm_segment){
		.limit = 0xFFFFFFFF, .selector = selector, .type = type, .present = 1, .dpl = 3,
		.db = code ? 0 : 1, .s = 1, .l = code ? 1 : 0, .g = 1,
	};
}

/* vcpu 0 at CPL 3 in 64-bit mode (as tests/kvm's counter guest), x87 and
 * SSE in a standard XSAVE image, XCR0 = 1, the CPU model of model_cpuid(). */
static void good_state(struct vcpu_state *s)
{
	uint64_t bv = 3;
	uint32_t mxcsr = 0x1F80;

	memset(s, 0, sizeof(*s));
	s->regs.rip = 0x20000, s->regs.rflags = 0x3002;
	s->sregs.cs = user_segment(0x1B, 0xB, true);
	s->sregs.ds = s->sregs.es = s->sregs.fs = s->sregs.gs = s->sregs.ss =
		user_segment(0x23, 0x3, false);
	s->sregs.tr = (struct kvm_segment){ .base = 0x34000, .limit = 0x67, .selector = 0x28,
					    .type = 0xB, .present = 1 };
	s->sregs.ldt = (struct kvm_segment){ .type = 0x2, .unusable = 1 };
	s->sregs.gdt.base = 0x33000, s->sregs.gdt.limit = 0x37;
	s->sregs.cr0 = 0x80010033, s->sregs.cr3 = 0x30000, s->sregs.cr4 = 0x620;
	s->sregs.efer = 0x500, s->sregs.apic_base = 0xFEE00900;
	s->xsave_size = 4096;
	s->xsave = calloc(1, 4096);
	assert_non_null(s->xsave);
	memcpy((uint8_t *)s->xsave->region + XSAVE_XSTATE_BV, &bv, 8);
	memcpy((uint8_t *)s->xsave->region + XSAVE_MXCSR, &mxcsr, 4);
	s->has_xcrs = true;
	s->xcrs.nr_xcrs = 1, s->xcrs.xcrs[0].value = 1;
	s->nr_msrs = 2;
	s->msrs = calloc(2, sizeof(*s->msrs));
	assert_non_null(s->msrs);
	s->msrs[0] = (struct vcpu_msr){ MSR_IA32_TSC, 0x1000000 };
	s->msrs[1] = (struct vcpu_msr){ MSR_IA32_PAT, 0x0007040600070406ULL };
	s->mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
	s->debugregs.dr6 = 0xFFFF0FF0, s->debugregs.dr7 = 0x400;
	s->tsc_khz = 2000000;
	s->nr_cpuid = ARRAY_SIZE(model_entries);
	s->cpuid = malloc(sizeof(model_entries));
	assert_non_null(s->cpuid);
	memcpy(s->cpuid, model_entries, sizeof(model_entries));
}

/* ---- the corruptions: each changes one field (or the target) */

static uint8_t *xsave_byte(struct vcpu_state *s, size_t off)
{
	return (uint8_t *)s->xsave->region + off;
}

static void set_xsave64(struct vcpu_state *s, size_t off, uint64_t v)
{
	memcpy(xsave_byte(s, off), &v, 8);
}

static void wrong_vcpu_id(struct vcpu_state *s) { s->vcpu_id = 1; }
static void model_differs(struct vcpu_state *s) { s->cpuid[1].ecx ^= 1U << 21; }
static void other_tsc_khz(struct vcpu_state *s) { s->tsc_khz = 1000000; }
static void rflags_bit1_clear(struct vcpu_state *s) { s->regs.rflags = 0x3000; }
static void rflags_reserved(struct vcpu_state *s) { s->regs.rflags |= 1ULL << 15; }
static void sregs2_unknown_flags(struct vcpu_state *s) { s->sregs.flags = 0x6; }
static void apic_base_reserved(struct vcpu_state *s) { s->sregs.apic_base |= 1ULL << 9; }
static void x2apic_disabled(struct vcpu_state *s) { s->sregs.apic_base = 0xFEE00500; }
static void xsave_extra_component(struct vcpu_state *s) { set_xsave64(s, XSAVE_XSTATE_BV, 0x203); }
static void xsave_compacted(struct vcpu_state *s) { set_xsave64(s, XSAVE_XCOMP_BV, 0x8000000000000003ULL); }
static void xcr_count(struct vcpu_state *s) { s->xcrs.nr_xcrs = KVM_MAX_XCRS + 1; }
static void xcr_flags(struct vcpu_state *s) { s->xcrs.flags = 1; }
static void xcr_index(struct vcpu_state *s) { s->xcrs.xcrs[0].xcr = 1; }
static void xcr0_without_x87(struct vcpu_state *s) { s->xcrs.xcrs[0].value = 0x2; }
static void xcr0_beyond_model(struct vcpu_state *s) { s->xcrs.xcrs[0].value = 0x203; }
static void xcr0_avx_without_sse(struct vcpu_state *s) { s->xcrs.xcrs[0].value = 0x5; }
static void xcr0_partial_avx512(struct vcpu_state *s) { s->xcrs.xcrs[0].value = 0x27; }
static void xcr0_avx512_without_avx(struct vcpu_state *s) { s->xcrs.xcrs[0].value = 0xE3; }
static void unsupported_msr(struct vcpu_state *s) { s->msrs[1].index = 0xC0DE0000; }
static void lapic_id_of_other_vcpu(struct vcpu_state *s) { s->lapic.regs[APIC_ID + 3] = 5; }
static void dr6_high_bits(struct vcpu_state *s) { s->debugregs.dr6 |= 1ULL << 40; }
static void dr7_high_bits(struct vcpu_state *s) { s->debugregs.dr7 |= 1ULL << 40; }
static void debugregs_flags(struct vcpu_state *s) { s->debugregs.flags = 1; }
static void events_unknown_flags(struct vcpu_state *s) { s->events.flags = 0x100; }
static void events_payload(struct vcpu_state *s) { s->events.flags = KVM_VCPUEVENT_VALID_PAYLOAD; }
static void events_triple_fault(struct vcpu_state *s) { s->events.flags = KVM_VCPUEVENT_VALID_TRIPLE_FAULT; }
static void exception_vector_32(struct vcpu_state *s) { s->events.exception.injected = 1, s->events.exception.nr = 32; }
static void exception_vector_nmi(struct vcpu_state *s) { s->events.exception.injected = 1, s->events.exception.nr = 2; }
static void pending_vector_40(struct vcpu_state *s) { s->events.exception.pending = 1, s->events.exception.nr = 40; }
static void exception_injected_2(struct vcpu_state *s) { s->events.exception.injected = 2; }
static void exception_pending_2(struct vcpu_state *s) { s->events.exception.pending = 2; }
static void has_error_code_2(struct vcpu_state *s) { s->events.exception.has_error_code = 2; }
static void interrupt_injected_2(struct vcpu_state *s) { s->events.interrupt.injected = 2; }
static void interrupt_soft_2(struct vcpu_state *s) { s->events.interrupt.soft = 2; }
static void nmi_injected_2(struct vcpu_state *s) { s->events.nmi.injected = 2; }
static void nmi_pending_2(struct vcpu_state *s) { s->events.nmi.pending = 2; }
static void nmi_masked_2(struct vcpu_state *s) { s->events.nmi.masked = 2; }
static void smm_2(struct vcpu_state *s) { s->events.smi.smm = 2; }
static void smi_pending_2(struct vcpu_state *s) { s->events.smi.pending = 2; }
static void smm_inside_nmi_2(struct vcpu_state *s) { s->events.smi.smm_inside_nmi = 2; }
static void latched_init_2(struct vcpu_state *s) { s->events.smi.latched_init = 2; }
static void shadow_unknown(struct vcpu_state *s) { s->events.interrupt.shadow = 4; }
static void in_smm(struct vcpu_state *s) { s->events.smi.smm = 1; }
static void smi_pending(struct vcpu_state *s) { s->events.smi.pending = 1; }
static void smm_inside_nmi(struct vcpu_state *s) { s->events.smi.smm_inside_nmi = 1; }
static void mp_state_unknown(struct vcpu_state *s) { s->mp_state.mp_state = KVM_MP_STATE_AP_RESET_HOLD; }
static void paging_without_protection(struct vcpu_state *s) { s->sregs.cr0 &= ~MMU_CR0_PE; }
static void cr3_above_maxphyaddr(struct vcpu_state *s) { s->sregs.cr3 |= 1ULL << 51; }
static void cr4_bit_the_model_lacks(struct vcpu_state *s) { s->sregs.cr4 |= MMU_CR4_SMXE; }

static void x2apic_not_in_model(struct vcpu_state *s)
{
	s->sregs.apic_base |= X86_APIC_BASE_EXTD;
	s->cpuid[1].ecx &= ~(1U << 21);
}

static void xsave_mxcsr_reserved(struct vcpu_state *s)
{
	uint32_t mxcsr = 0x11F80;

	memcpy(xsave_byte(s, XSAVE_MXCSR), &mxcsr, 4);
}

static void fpu_mxcsr_reserved(struct vcpu_state *s)
{
	free(s->xsave);
	s->xsave = NULL;
	s->xsave_size = 0;
	s->fpu.mxcsr = 0x11F80;
}

static void xsave_8k(struct vcpu_state *s)
{
	struct kvm_xsave *x = calloc(1, 8192);

	assert_non_null(x);
	memcpy(x, s->xsave, 4096);
	free(s->xsave);
	s->xsave = x;
	s->xsave_size = 8192;
}

/* 32-bit PAE paging at CPL 3 with the four PDPTEs KVM caches. */
static void pae_with_pdptes(struct vcpu_state *s)
{
	s->sregs.cr0 = 0x80000033, s->sregs.cr4 = MMU_CR4_PAE | 0x600, s->sregs.efer = 0;
	s->sregs.cs.l = 0, s->sregs.cs.db = 1;
	s->sregs.flags = KVM_SREGS2_FLAGS_PDPTRS_VALID;
	for (int i = 0; i < 4; i++)
		s->sregs.pdptrs[i] = 0x31001 + 0x1000 * (uint64_t)i;
}

/* VMX nested state outside VMX operation: just the 128-byte header. */
static void attach_nested(struct vcpu_state *s, uint16_t format)
{
	struct kvm_nested_state *n = calloc(1, 128);

	assert_non_null(n);
	n->format = format;
	n->size = 128;
	n->hdr.vmx.vmxon_pa = -1ULL;
	n->hdr.vmx.vmcs12_pa = -1ULL;
	s->nested = n;
	s->nested_size = 128;
}

static void nested_vmx_off(struct vcpu_state *s) { attach_nested(s, KVM_STATE_NESTED_FORMAT_VMX); }
static void nested_bad_format(struct vcpu_state *s) { attach_nested(s, 7); }

/* ---- the target's side */

static void no_cpuid(struct vcpu_state_target *t) { t->cpuid = NULL; }
static void no_xsave(struct vcpu_state_target *t) { t->xsave_size = 0; }
static void no_xcrs(struct vcpu_state_target *t) { t->has_xcrs = false; }
static void no_sregs2(struct vcpu_state_target *t) { t->has_sregs2 = false; }
static void no_smm(struct vcpu_state_target *t) { t->has_smm = false; }
static void no_nested(struct vcpu_state_target *t) { t->nested_max = 0; }
static void small_nested(struct vcpu_state_target *t) { t->nested_max = 100; }

static struct kvm_cpuid2 *model_without_x2apic;

static void target_without_x2apic(struct vcpu_state_target *t) { t->cpuid = model_without_x2apic; }

static const struct {
	void (*state)(struct vcpu_state *s);
	void (*target)(struct vcpu_state_target *t);
	const char *message; /* the one problem, exactly */
} refusals[] = {
	{ wrong_vcpu_id, NULL, "the state is of vcpu 1, not vcpu 0" },
	{ NULL, no_cpuid, "vcpu 0 has no CPUID set yet: set the VM's CPU model first" },
	{ model_differs, NULL, "the saved CPU model differs from vcpu 0's (CPUID cannot change after the vCPU has run: entry 1 (leaf 0x1.0) differs in ECX); load into a VM with the same CPU model" },
	{ other_tsc_khz, NULL, "TSC frequency 1000000 kHz differs from this host's 2000000 kHz and KVM cannot scale it (no KVM_CAP_TSC_CONTROL)" },
	{ rflags_bit1_clear, NULL, "RFLAGS 0x3000: bit 1 must be 1 and bits 3, 5, 15 and 22-63 0" },
	{ rflags_reserved, NULL, "RFLAGS 0xb002: bit 1 must be 1 and bits 3, 5, 15 and 22-63 0" },
	{ sregs2_unknown_flags, NULL, "sregs2 flags 0x6: bits 0x6 are unknown (KVM defines only PDPTRS_VALID, 0x1)" },
	{ pae_with_pdptes, no_sregs2, "sregs2 flags: PAE PDPTEs given (PDPTRS_VALID) but KVM on this host lacks KVM_CAP_SREGS2" },
	{ apic_base_reserved, NULL, "IA32_APIC_BASE 0xfee00b00 sets reserved bits (7:0, 9, or 46 and above)" },
	{ x2apic_disabled, NULL, "IA32_APIC_BASE 0xfee00500: x2APIC mode (bit 10) with the APIC disabled (bit 11 clear) is invalid" },
	{ x2apic_not_in_model, target_without_x2apic, "IA32_APIC_BASE 0xfee00d00: x2APIC mode (bit 10) but the CPU model has no x2apic" },
	{ xsave_extra_component, NULL, "XSAVE image: XSTATE_BV 0x203 holds components 0x200 the CPU model does not have (CPUID.(EAX=0DH,ECX=0) allows 0xe7)" },
	{ xsave_compacted, NULL, "XSAVE image: XCOMP_BV 0x8000000000000003, the compacted format; KVM takes the standard one (XCOMP_BV 0)" },
	{ xsave_mxcsr_reserved, NULL, "XSAVE image: MXCSR 0x11f80 sets reserved bits 31:16 (SDM Vol. 1 §10.2.3)" },
	{ fpu_mxcsr_reserved, NULL, "fpu: MXCSR 0x11f80 sets reserved bits 31:16 (SDM Vol. 1 §10.2.3)" },
	{ NULL, no_xsave, "the state has an XSAVE image but KVM on this host has no KVM_CAP_XSAVE" },
	{ xsave_8k, NULL, "XSAVE image of 8192 bytes is larger than this host's 4096" },
	{ NULL, no_xcrs, "the state has XCRs but KVM on this host has no KVM_CAP_XCRS" },
	{ xcr_count, NULL, "XCR list: nr_xcrs 17 is more than the 16 KVM takes" },
	{ xcr_flags, NULL, "XCR list: flags 0x1 are unknown (must be 0)" },
	{ xcr_index, NULL, "XCR list: XCR1 is not an extended control register KVM has (only XCR0)" },
	{ xcr0_without_x87, NULL, "XCR0 0x2 lacks x87 (bit 0 must be 1)" },
	{ xcr0_beyond_model, NULL, "XCR0 0x203 enables components the CPU model does not have (0xe7 allowed)" },
	{ xcr0_avx_without_sse, NULL, "XCR0 0x5 enables AVX (bit 2) without SSE (bit 1)" },
	{ xcr0_partial_avx512, NULL, "XCR0 0x27 enables AVX-512 state partly (bits 7:5 must be all set or all clear)" },
	{ xcr0_avx512_without_avx, NULL, "XCR0 0xe3 enables AVX-512 state without AVX (bit 2)" },
	{ unsupported_msr, NULL, "MSR 0xc0de0000 is not supported by KVM for vcpu 0" },
	{ lapic_id_of_other_vcpu, NULL, "local APIC ID 5 is not vcpu 0's APIC ID" },
	{ dr6_high_bits, NULL, "DR6 0x100ffff0ff0 sets bits 63:32" },
	{ dr7_high_bits, NULL, "DR7 0x10000000400 sets bits 63:32" },
	{ debugregs_flags, NULL, "debugregs flags 0x1 are unknown (must be 0)" },
	{ events_unknown_flags, NULL, "events flags 0x100: bits 0x100 are unknown" },
	{ events_payload, NULL, "events: an exception payload is given (flag VALID_PAYLOAD), but vmmd VMs do not enable KVM_CAP_EXCEPTION_PAYLOAD" },
	{ events_triple_fault, NULL, "events: a triple fault is given (flag VALID_TRIPLE_FAULT), but vmmd VMs do not enable KVM_CAP_X86_TRIPLE_FAULT_EVENT" },
	{ exception_vector_32, NULL, "events: exception.nr 32 cannot be injected (0-31, not 2)" },
	{ exception_vector_nmi, NULL, "events: exception.nr 2 cannot be injected (0-31, not 2)" },
	{ pending_vector_40, NULL, "events: exception.nr 40 cannot be injected (0-31, not 2)" },
	{ exception_injected_2, NULL, "events: exception.injected is 2, must be 0 or 1" },
	{ exception_pending_2, NULL, "events: exception.pending is 2, must be 0 or 1" },
	{ has_error_code_2, NULL, "events: exception.has_error_code is 2, must be 0 or 1" },
	{ interrupt_injected_2, NULL, "events: interrupt.injected is 2, must be 0 or 1" },
	{ interrupt_soft_2, NULL, "events: interrupt.soft is 2, must be 0 or 1" },
	{ nmi_injected_2, NULL, "events: nmi.injected is 2, must be 0 or 1" },
	{ nmi_pending_2, NULL, "events: nmi.pending is 2, must be 0 or 1" },
	{ nmi_masked_2, NULL, "events: nmi.masked is 2, must be 0 or 1" },
	{ smm_2, NULL, "events: smi.smm is 2, must be 0 or 1" },
	{ smi_pending_2, NULL, "events: smi.pending is 2, must be 0 or 1" },
	{ smm_inside_nmi_2, NULL, "events: smi.smm_inside_nmi is 2, must be 0 or 1" },
	{ latched_init_2, NULL, "events: smi.latched_init is 2, must be 0 or 1" },
	{ shadow_unknown, NULL, "events: interrupt.shadow 0x4 has unknown bits (1 MOV SS, 2 STI)" },
	{ in_smm, no_smm, "events: smi.smm set, but KVM on this host has no SMM (KVM_CAP_X86_SMM)" },
	{ smi_pending, no_smm, "events: smi.pending set, but KVM on this host has no SMM (KVM_CAP_X86_SMM)" },
	{ smm_inside_nmi, no_smm, "events: smi.smm_inside_nmi set, but KVM on this host has no SMM (KVM_CAP_X86_SMM)" },
	{ mp_state_unknown, NULL, "MP state 9 is not an x86 vCPU state (0-4)" },
	{ nested_vmx_off, no_nested, "the state has nested virtualization state but KVM on this host lacks KVM_CAP_NESTED_STATE" },
	{ nested_vmx_off, small_nested, "nested state of 128 bytes exceeds this host's 100 (KVM_CAP_NESTED_STATE)" },
	{ nested_bad_format, NULL, "nested state: unknown format 7 (0 = VMX, 1 = SVM)" },
	{ paging_without_protection, NULL, "CR0.PG is set without CR0.PE (paging needs protected mode)" },
	{ cr3_above_maxphyaddr, NULL, "CR3 0x8000000030000 has bits at or above MAXPHYADDR (46) set" },
	{ cr4_bit_the_model_lacks, NULL, "CR4.SMXE (bit 14) is set but the CPU model lacks it (CPUID.1:ECX[6])" },
};

/* The fixtures pass: nothing to refuse, in each configuration the rows use. */
static void test_check_accepts_a_consistent_state(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *model = model_cpuid(true);
	_cleanup_free_ struct vcpu_state_problems *p = calloc(1, sizeof(*p));
	struct vcpu_state_target t;
	struct vcpu_state s;
	struct error e = { 0 };

	good_target(&t, model);
	good_state(&s);
	if (vcpu_state_check_target(&t, &s, p, &e) < 0)
		fail_msg("%s", e.msg);
	assert_int_equal(p->count, 0);
	/* PAE with PDPTEs where KVM has SREGS2, a TSC frequency KVM can scale
	 * to, SMM where KVM has it, nested state within the host's size. */
	pae_with_pdptes(&s);
	other_tsc_khz(&s);
	t.can_scale_tsc = true;
	in_smm(&s);
	nested_vmx_off(&s);
	if (vcpu_state_check_target(&t, &s, p, &e) < 0)
		fail_msg("%s", e.msg);
	vcpu_state_release(&s);
}

/*
 * Each row changes one field of a consistent state (or one capability of
 * the target) and must be refused with exactly one problem, its message
 * naming the field, and the summary quoting it. A refused state is never
 * written: vcpu_state_load() writes only after this check passes (the KVM
 * tier shows it on a real vCPU, tests/kvm/test-kvm-state.c).
 */
static void test_check_refuses_each_corruption_with_its_message(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *model = model_cpuid(true);
	_cleanup_free_ struct vcpu_state_problems *p = calloc(1, sizeof(*p));
	char summary[VCPU_STATE_PROBLEM_MAX + 64];
	struct vcpu_state_target t;
	struct vcpu_state s;
	struct error e;

	model_without_x2apic = model_cpuid(false);
	for (size_t i = 0; i < ARRAY_SIZE(refusals); i++) {
		good_target(&t, model);
		good_state(&s);
		if (refusals[i].state)
			refusals[i].state(&s);
		if (refusals[i].target)
			refusals[i].target(&t);
		memset(&e, 0, sizeof(e));
		assert_int_equal(vcpu_state_check_target(&t, &s, p, &e), -EINVAL);
		if (p->count != 1 || strcmp(p->msg[0], refusals[i].message) != 0) {
			for (unsigned int j = 0; j < p->count; j++)
				print_message("row %zu problem: %s\n", i, p->msg[j]);
			fail_msg("row %zu: %u problems; expected exactly \"%s\"", i, p->count,
				 refusals[i].message);
		}
		snprintf(summary, sizeof(summary), "state refused for vcpu 0: 1 problem, first: %s",
			 refusals[i].message);
		assert_string_equal(e.msg, summary);
		vcpu_state_release(&s);
	}
	free(model_without_x2apic);
	model_without_x2apic = NULL;
}

/* Every problem is listed, not just the first. */
static void test_check_lists_every_problem(void **state)
{
	_cleanup_free_ struct kvm_cpuid2 *model = model_cpuid(true);
	_cleanup_free_ struct vcpu_state_problems *p = calloc(1, sizeof(*p));
	struct vcpu_state_target t;
	struct vcpu_state s;
	struct error e;

	good_target(&t, model);
	good_state(&s);
	wrong_vcpu_id(&s);
	dr6_high_bits(&s);
	xcr0_avx_without_sse(&s);
	nmi_masked_2(&s);
	assert_int_equal(vcpu_state_check_target(&t, &s, p, &e), -EINVAL);
	assert_int_equal(p->count, 4);
	assert_string_equal(p->msg[0], "the state is of vcpu 1, not vcpu 0");
	assert_string_equal(p->msg[1], "XCR0 0x5 enables AVX (bit 2) without SSE (bit 1)");
	assert_string_equal(p->msg[2], "DR6 0x100ffff0ff0 sets bits 63:32");
	assert_string_equal(p->msg[3], "events: nmi.masked is 2, must be 0 or 1");
	assert_string_equal(e.msg, "state refused for vcpu 0: 4 problems, first: the state is of vcpu 1, not vcpu 0");
	vcpu_state_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_is_byte_identical),
		cmocka_unit_test(test_byte_layout),
		cmocka_unit_test(test_copy_is_deep),
		cmocka_unit_test(test_minimal_state_with_fpu_parses),
		cmocka_unit_test(test_refuses_bad_header),
		cmocka_unit_test(test_refuses_every_truncation),
		cmocka_unit_test(test_refuses_trailing_bytes_and_oversize),
		cmocka_unit_test(test_refuses_every_flipped_byte),
		cmocka_unit_test(test_refuses_duplicate_and_missing_sections),
		cmocka_unit_test(test_unknown_sections),
		cmocka_unit_test(test_refuses_wrong_section_sizes),
		cmocka_unit_test(test_refuses_lengths_past_the_end),
		cmocka_unit_test(test_refuses_nonzero_padding),
		cmocka_unit_test(test_refuses_bad_lists),
		cmocka_unit_test(test_refuses_inconsistent_nested_size),
		cmocka_unit_test(test_serializer_refuses_out_of_bounds_state),
		cmocka_unit_test(test_section_names),
		cmocka_unit_test(test_check_accepts_a_consistent_state),
		cmocka_unit_test(test_check_refuses_each_corruption_with_its_message),
		cmocka_unit_test(test_check_lists_every_problem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
