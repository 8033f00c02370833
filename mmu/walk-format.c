/* SPDX-License-Identifier: MIT */
/* Printable and JSON forms of a walk result. */
#include <errno.h>
#include <inttypes.h>

#include "mmu/mmu-internal.h"

const char *mmu_fault_type_name(enum mmu_fault_type type)
{
	static const char *const names[] = {
		[MMU_FAULT_NONE] = "none",
		[MMU_FAULT_PF] = "#PF",
		[MMU_FAULT_GP] = "#GP",
		[MMU_FAULT_SS] = "#SS",
		[MMU_FAULT_NPF] = "NPF",
		[MMU_FAULT_EPT_VIOLATION] = "EPT-violation",
		[MMU_FAULT_EPT_MISCONFIG] = "EPT-misconfig",
	};

	if ((unsigned int)type >= MMU_ARRAY_SIZE(names))
		return "invalid";
	return names[type];
}

static bool mode_is_ept(enum mmu_paging_mode mode)
{
	return mode == MMU_MODE_EPT4 || mode == MMU_MODE_EPT5;
}

static const char *entry_name(enum mmu_paging_mode mode, unsigned int level)
{
	static const char *const names_64[] = { "", "PTE", "PDE", "PDPTE", "PML4E", "PML5E" };
	static const char *const names_ept[] = { "", "EPT-PTE", "EPT-PDE", "EPT-PDPTE",
						 "EPT-PML4E", "EPT-PML5E" };

	if (level < 1 || level > 5)
		return "?";
	return mode_is_ept(mode) ? names_ept[level] : names_64[level];
}

/* Decoded flags of an entry, space separated (SDM Vol. 3A Tables 4-14..4-20). */
static void emit_entry_flags(struct strbuf *sb, enum mmu_paging_mode mode,
			     const struct mmu_walk_entry *e)
{
	uint64_t v = e->value;
	const char *sep = "";

	if (mode_is_ept(mode)) {
		static const struct {
			uint64_t bit;
			const char *name;
		} ept_bits[] = { { 1ULL << 0, "R" }, { 1ULL << 1, "W" }, { 1ULL << 2, "X" },
				 { 1ULL << 6, "IPAT" }, { 1ULL << 7, "PS" }, { 1ULL << 8, "A" },
				 { 1ULL << 9, "D" } };

		for (size_t i = 0; i < MMU_ARRAY_SIZE(ept_bits); i++) {
			if (v & ept_bits[i].bit) {
				sb_printf(sb, "%s%s", sep, ept_bits[i].name);
				sep = " ";
			}
		}
		if ((v & 7) && (e->level == 1 || (v & PTE_PS)))
			sb_printf(sb, "%sMT=%u", sep, (unsigned int)((v >> 3) & 7));
		return;
	}

	static const struct {
		uint64_t bit;
		const char *name;
	} x86_bits[] = { { 1ULL << 0, "P" },   { 1ULL << 1, "W" },   { 1ULL << 2, "U" },
			 { 1ULL << 3, "PWT" }, { 1ULL << 4, "PCD" }, { 1ULL << 5, "A" },
			 { 1ULL << 6, "D" },   { 1ULL << 7, "PS" },  { 1ULL << 8, "G" },
			 { 1ULL << 63, "XD" } };

	for (size_t i = 0; i < MMU_ARRAY_SIZE(x86_bits); i++) {
		uint64_t bit = x86_bits[i].bit;

		if (mode == MMU_MODE_32BIT && bit == PTE_XD)
			continue;
		if (v & bit) {
			sb_printf(sb, "%s%s", sep, x86_bits[i].name);
			sep = " ";
		}
	}
	if ((mode == MMU_MODE_4LEVEL || mode == MMU_MODE_5LEVEL) && (v >> PTE_PKEY_SHIFT) & 0xF)
		sb_printf(sb, "%sKEY=%u", sep, (unsigned int)((v >> PTE_PKEY_SHIFT) & 0xF));
}

static void emit_access(struct strbuf *sb, uint32_t access)
{
	if (access & MMU_ACCESS_FETCH)
		sb_printf(sb, "fetch");
	else if (access & MMU_ACCESS_WRITE)
		sb_printf(sb, "write");
	else
		sb_printf(sb, "read");
	sb_printf(sb, "%s", (access & MMU_ACCESS_USER) ? ",user" : ",supervisor");
	if (access & MMU_ACCESS_IMPLICIT)
		sb_printf(sb, ",implicit");
	if (access & MMU_ACCESS_STACK)
		sb_printf(sb, ",stack");
}

static void emit_rights(struct strbuf *sb, unsigned int rights, bool ept)
{
	const char *sep = "";

	if (rights & MMU_RIGHT_U) {
		sb_printf(sb, "%s", ept ? "R" : "U");
		sep = ",";
	}
	if (rights & MMU_RIGHT_W) {
		sb_printf(sb, "%sW", sep);
		sep = ",";
	}
	if (rights & MMU_RIGHT_X)
		sb_printf(sb, "%sX", sep);
}

static void emit_error_bits(struct strbuf *sb, uint32_t code)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} bits[] = { { MMU_PFERR_P, "P" },   { MMU_PFERR_W, "W" },	{ MMU_PFERR_U, "U" },
		     { MMU_PFERR_RSVD, "RSVD" }, { MMU_PFERR_I, "I" }, { MMU_PFERR_PK, "PK" } };
	const char *sep = "";

	for (size_t i = 0; i < MMU_ARRAY_SIZE(bits); i++) {
		if (code & bits[i].bit) {
			sb_printf(sb, "%s%s", sep, bits[i].name);
			sep = " ";
		}
	}
}

static const char *page_size_name(uint64_t size)
{
	switch (size) {
	case 4096:
		return "4K";
	case 2ULL << 20:
		return "2M";
	case 4ULL << 20:
		return "4M";
	case 1ULL << 30:
		return "1G";
	default:
		return "identity";
	}
}

/* ---------------------------------------------------------------- text */

static void text_entries(struct strbuf *sb, enum mmu_paging_mode mode,
			 const struct mmu_walk_entry *entries, unsigned int n, const char *prefix)
{
	for (unsigned int i = 0; i < n; i++) {
		const struct mmu_walk_entry *e = &entries[i];

		sb_printf(sb, "  %s%s[%u] %s0x%016" PRIx64 " = 0x%016" PRIx64 " ", prefix,
			  entry_name(mode, e->level), e->index, e->from_register ? "reg " : "@",
			  e->gpa, e->value);
		emit_entry_flags(sb, mode, e);
		if (e->pa != e->gpa)
			sb_printf(sb, " (pa 0x%" PRIx64 ")", e->pa);
		sb_printf(sb, "\n");
	}
}

static void text_fault(struct strbuf *sb, const struct mmu_fault *f)
{
	sb_printf(sb, "  fault %s stage=%u level=%u", mmu_fault_type_name(f->type), f->stage,
		  f->level);
	switch (f->type) {
	case MMU_FAULT_PF:
		sb_printf(sb, " error_code=0x%x (", f->error_code);
		emit_error_bits(sb, f->error_code);
		sb_printf(sb, ") cr2=0x%" PRIx64, f->address);
		break;
	case MMU_FAULT_GP:
	case MMU_FAULT_SS:
		sb_printf(sb, " error_code=0 non-canonical");
		break;
	case MMU_FAULT_NPF:
		sb_printf(sb, " exit_info_1=0x%" PRIx64 " (", f->exit_info_1);
		emit_error_bits(sb, f->error_code);
		sb_printf(sb, " %s) exit_info_2=0x%" PRIx64,
			  f->paging_structure ? "table" : "final", f->exit_info_2);
		break;
	case MMU_FAULT_EPT_VIOLATION:
		sb_printf(sb, " qualification=0x%" PRIx64 " gpa=0x%" PRIx64 " %s",
			  f->exit_qualification, f->address,
			  f->paging_structure ? "table" : "final");
		break;
	case MMU_FAULT_EPT_MISCONFIG:
		sb_printf(sb, " gpa=0x%" PRIx64, f->address);
		break;
	case MMU_FAULT_NONE:
		break;
	}
	if (f->unbacked)
		sb_printf(sb, " unbacked");
	sb_printf(sb, "\n");
}

static void walk_emit_text(struct strbuf *sb, const void *arg)
{
	const struct mmu_walk_result *r = arg;

	sb_printf(sb, "walk %s", mmu_paging_mode_name(r->mode));
	if (r->stage2_mode != MMU_MODE_NONE)
		sb_printf(sb, "+%s", mmu_paging_mode_name(r->stage2_mode));
	sb_printf(sb, " addr=0x%" PRIx64 " access=", r->addr);
	emit_access(sb, r->access);
	sb_printf(sb, "\n");
	text_entries(sb, r->mode, r->entries, r->nr_entries, "");
	text_entries(sb, r->stage2_mode, r->stage2_entries, r->nr_stage2_entries, "stage2 ");
	if (r->fault.type != MMU_FAULT_NONE) {
		text_fault(sb, &r->fault);
		return;
	}
	sb_printf(sb, "  result gpa=0x%" PRIx64, r->gpa);
	if (r->pa != r->gpa)
		sb_printf(sb, " pa=0x%" PRIx64, r->pa);
	sb_printf(sb, " page=%s rights=", page_size_name(r->page_size));
	if (r->mode == MMU_MODE_NONE)
		sb_printf(sb, "all");
	else
		emit_rights(sb, r->rights, mode_is_ept(r->mode));
	if (r->mode == MMU_MODE_4LEVEL || r->mode == MMU_MODE_5LEVEL)
		sb_printf(sb, " pkey=%u", r->pkey);
	if (r->ad_written || r->restarts)
		sb_printf(sb, " ad_written=%u restarts=%u", r->ad_written, r->restarts);
	sb_printf(sb, "\n");
}

/* ---------------------------------------------------------------- JSON */

static void json_hex(struct strbuf *sb, const char *name, uint64_t v, bool comma)
{
	sb_printf(sb, "%s\"%s\":\"0x%" PRIx64 "\"", comma ? "," : "", name, v);
}

static void json_entries(struct strbuf *sb, enum mmu_paging_mode mode,
			 const struct mmu_walk_entry *entries, unsigned int n)
{
	sb_printf(sb, "[");
	for (unsigned int i = 0; i < n; i++) {
		const struct mmu_walk_entry *e = &entries[i];
		struct strbuf flags;
		char fbuf[96];

		sb_init(&flags, fbuf, sizeof(fbuf));
		emit_entry_flags(&flags, mode, e);
		sb_printf(sb, "%s{\"name\":\"%s\",\"level\":%u,\"index\":%u", i ? "," : "",
			  entry_name(mode, e->level), e->level, e->index);
		json_hex(sb, "gpa", e->gpa, true);
		json_hex(sb, "pa", e->pa, true);
		json_hex(sb, "value", e->value, true);
		sb_printf(sb, ",\"flags\":");
		sb_json_str(sb, fbuf);
		sb_printf(sb, ",\"register\":%s}", e->from_register ? "true" : "false");
	}
	sb_printf(sb, "]");
}

static void json_fault(struct strbuf *sb, const struct mmu_fault *f)
{
	struct strbuf bits;
	char bbuf[64];

	sb_init(&bits, bbuf, sizeof(bbuf));
	emit_error_bits(&bits, f->error_code);
	sb_printf(sb, "\"fault\":{\"type\":");
	sb_json_str(sb, mmu_fault_type_name(f->type));
	sb_printf(sb, ",\"vector\":%u,\"stage\":%u,\"level\":%u,\"error_code\":%u", f->vector,
		  f->stage, f->level, f->error_code);
	sb_printf(sb, ",\"error_bits\":");
	sb_json_str(sb, bbuf);
	json_hex(sb, "address", f->address, true);
	sb_printf(sb, ",\"paging_structure\":%s,\"unbacked\":%s",
		  f->paging_structure ? "true" : "false", f->unbacked ? "true" : "false");
	json_hex(sb, "exit_info_1", f->exit_info_1, true);
	json_hex(sb, "exit_info_2", f->exit_info_2, true);
	json_hex(sb, "exit_qualification", f->exit_qualification, true);
	json_hex(sb, "guest_linear_address", f->guest_linear_address, true);
	sb_printf(sb, "}");
}

static void walk_emit_json(struct strbuf *sb, const void *arg)
{
	const struct mmu_walk_result *r = arg;
	struct strbuf acc;
	char abuf[64];

	sb_init(&acc, abuf, sizeof(abuf));
	emit_access(&acc, r->access);
	sb_printf(sb, "{\"mode\":");
	sb_json_str(sb, mmu_paging_mode_name(r->mode));
	sb_printf(sb, ",\"stage2_mode\":");
	sb_json_str(sb, mmu_paging_mode_name(r->stage2_mode));
	json_hex(sb, "addr", r->addr, true);
	sb_printf(sb, ",\"access\":");
	sb_json_str(sb, abuf);
	sb_printf(sb, ",\"entries\":");
	json_entries(sb, r->mode, r->entries, r->nr_entries);
	sb_printf(sb, ",\"stage2_entries\":");
	json_entries(sb, r->stage2_mode, r->stage2_entries, r->nr_stage2_entries);
	sb_printf(sb, ",\"restarts\":%u,\"ad_written\":%u,", r->restarts, r->ad_written);
	if (r->fault.type != MMU_FAULT_NONE) {
		json_fault(sb, &r->fault);
	} else {
		struct strbuf rights;
		char rbuf[16];

		sb_init(&rights, rbuf, sizeof(rbuf));
		if (r->mode == MMU_MODE_NONE)
			sb_printf(&rights, "all");
		else
			emit_rights(&rights, r->rights, mode_is_ept(r->mode));
		sb_printf(sb, "\"result\":{");
		json_hex(sb, "gpa", r->gpa, false);
		json_hex(sb, "pa", r->pa, true);
		sb_printf(sb, ",\"page_size\":%" PRIu64 ",\"leaf_level\":%u,\"rights\":",
			  r->page_size, r->leaf_level);
		sb_json_str(sb, rbuf);
		sb_printf(sb, ",\"pkey\":%u}", r->pkey);
	}
	sb_printf(sb, "}");
}

int mmu_walk_format(const struct mmu_walk_result *res, enum mmu_format fmt, char *buf,
		    size_t size, size_t *ret_len)
{
	if (!res)
		return -EINVAL;
	switch (fmt) {
	case MMU_FORMAT_TEXT:
		return sb_format(walk_emit_text, res, buf, size, ret_len);
	case MMU_FORMAT_JSON:
		return sb_format(walk_emit_json, res, buf, size, ret_len);
	}
	return -EINVAL;
}
