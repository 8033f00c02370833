/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the single-stage walker: every paging mode, the MMU.md §8
 * cases E4–E36 (rows named after them), A/D updates with races and
 * read-only page tables, request validation and the printable forms.
 * Each table row runs on both memory back ends (host pointers, and
 * read + cmpxchg) and must give the same verdict.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "mmu/mmu.h"
#include "tests/unit/mmu-config.h"
#include "tests/unit/mmu-fixture.h"

#define W MMU_ACCESS_WRITE
#define U MMU_ACCESS_USER
#define F MMU_ACCESS_FETCH
#define IMPL MMU_ACCESS_IMPLICIT
#define PF_P MMU_PFERR_P
#define PF_W MMU_PFERR_W
#define PF_U MMU_PFERR_U
#define PF_RSVD MMU_PFERR_RSVD
#define PF_I MMU_PFERR_I
#define PF_PK MMU_PFERR_PK
#define KEY(k) ((uint64_t)(k) << 59)
#define MMU_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct wcase {
	const char *name;
	enum mmu_paging_mode mode;
	uint64_t cr0_clr, cr4_set, cr4_clr, efer_clr;
	uint8_t maxphyaddr; /* 0: 46 */
	bool amd, no_gbpages, no_pse36, kvm_compat;
	unsigned int leaf_level; /* 0: 1 */
	uint64_t set[6], clr[6]; /* per-level entry tweaks */
	uint64_t gva;		 /* 0: cfg_gva(mode) */
	uint32_t access;
	bool ac;
	uint32_t pkru;
	/* expected */
	enum mmu_fault_type fault;
	uint32_t error_code;
	unsigned int fault_level;
	uint64_t gpa_extra; /* bits the entry adds to the frame (PSE-36, bit 51) */
};

struct setup {
	struct fixture *fx;
	struct mmu_context ctx;
	struct mmu_memory mem;
	struct mmu_walk_request req;
	uint64_t pdptrs[4];
	uint64_t frame, page_size;
	enum mmu_paging_mode mode;
};

static uint64_t frame_of(enum mmu_paging_mode mode, unsigned int level)
{
	if (level == 1)
		return 0x12345000;
	if (level == 2)
		return mode == MMU_MODE_32BIT ? 0x0c400000 : 0x40200000;
	return 0x80000000;
}

static void build(const struct wcase *c, bool copy, struct setup *s)
{
	struct mmu_role_regs regs = cfg_regs(c->mode);
	struct mmu_cpu_features f = cfg_features();
	unsigned int level = c->leaf_level ? c->leaf_level : 1;
	uint64_t root, leaf;

	memset(s, 0, sizeof(*s));
	s->mode = c->mode;
	regs.cr0 &= ~c->cr0_clr;
	regs.cr4 = (regs.cr4 | c->cr4_set) & ~c->cr4_clr;
	regs.efer &= ~c->efer_clr;
	if (c->maxphyaddr)
		f.maxphyaddr = c->maxphyaddr;
	if (c->amd)
		f.vendor = MMU_VENDOR_AMD;
	f.gbpages = !c->no_gbpages;
	f.pse36 = !c->no_pse36;
	assert_int_equal(mmu_context_init(&s->ctx, &regs, &f,
					  c->kvm_compat ? MMU_CTX_KVM_COMPAT : 0),
			 0);

	s->fx = fx_new();
	root = fx_root(s->fx);
	s->req.addr = c->gva ? c->gva : cfg_gva(c->mode);
	s->req.access = c->access;
	s->req.eflags_ac = c->ac;
	s->req.pkru = c->pkru;
	s->req.cr3 = root;
	s->mem = copy ? fx_mem_copy(s->fx) : fx_mem_map(s->fx);
	if (c->mode == MMU_MODE_NONE)
		return;

	s->frame = frame_of(c->mode, level);
	s->page_size = fx_level_size(c->mode, level);
	leaf = s->frame | FX_P | FX_RW | FX_US | FX_A | (level > 1 ? FX_PS : 0);
	fx_map(s->fx, c->mode, root, s->req.addr, level, leaf);
	for (unsigned int l = 1; l <= fx_root_level(c->mode); l++)
		if (c->set[l] || c->clr[l])
			fx_modify(s->fx, c->mode, root, s->req.addr, l, c->set[l], c->clr[l]);

	if (c->mode == MMU_MODE_PAE) {
		/* Load the PDPTE registers as MOV CR3 would (§2.4). */
		struct mmu_fault lf;

		assert_int_equal(mmu_pae_load_pdptes(&s->mem, root, &f, s->pdptrs, &lf), 0);
		assert_int_equal(lf.type, MMU_FAULT_NONE);
		s->req.pdptrs = s->pdptrs;
	}
}

static void check_case(const struct wcase *c, const struct setup *s,
		       const struct mmu_walk_result *r)
{
	unsigned int level = c->leaf_level ? c->leaf_level : 1;

	if (c->fault != MMU_FAULT_NONE) {
		if (r->fault.type != c->fault || r->fault.error_code != c->error_code ||
		    r->fault.level != c->fault_level)
			fail_msg("%s: got %s error 0x%x level %u, want %s error 0x%x level %u",
				 c->name, mmu_fault_type_name(r->fault.type), r->fault.error_code,
				 r->fault.level, mmu_fault_type_name(c->fault), c->error_code,
				 c->fault_level);
		assert_int_equal(r->fault.stage, 1);
		if (c->fault == MMU_FAULT_PF) {
			assert_int_equal(r->fault.vector, 14);
			assert_true(r->fault.address == s->req.addr);
		}
		return;
	}
	if (r->fault.type != MMU_FAULT_NONE)
		fail_msg("%s: unexpected %s error 0x%x level %u", c->name,
			 mmu_fault_type_name(r->fault.type), r->fault.error_code, r->fault.level);
	if (c->mode == MMU_MODE_NONE) {
		assert_true(r->gpa == s->req.addr);
		assert_int_equal(r->nr_entries, 0);
	} else {
		uint64_t want = s->frame | (s->req.addr & (s->page_size - 1)) | c->gpa_extra;

		if (r->gpa != want)
			fail_msg("%s: gpa 0x%llx, want 0x%llx", c->name,
				 (unsigned long long)r->gpa, (unsigned long long)want);
		assert_true(r->page_size == s->page_size);
		assert_int_equal(r->leaf_level, level);
		assert_int_equal(r->nr_entries, fx_root_level(c->mode) - level + 1);
	}
	assert_true(r->pa == r->gpa);
}

static const struct wcase walk_cases[] = {
	/* Every paging mode and page size. */
	{ .name = "none: identity", .mode = MMU_MODE_NONE },
	{ .name = "32-bit 4K", .mode = MMU_MODE_32BIT },
	{ .name = "32-bit 4M", .mode = MMU_MODE_32BIT, .leaf_level = 2 },
	{ .name = "PAE 4K", .mode = MMU_MODE_PAE },
	{ .name = "PAE 2M", .mode = MMU_MODE_PAE, .leaf_level = 2 },
	{ .name = "4-level 4K", .mode = MMU_MODE_4LEVEL },
	{ .name = "4-level 2M", .mode = MMU_MODE_4LEVEL, .leaf_level = 2 },
	{ .name = "4-level 1G", .mode = MMU_MODE_4LEVEL, .leaf_level = 3 },
	{ .name = "5-level 4K", .mode = MMU_MODE_5LEVEL },
	{ .name = "5-level 2M", .mode = MMU_MODE_5LEVEL, .leaf_level = 2 },
	{ .name = "5-level 1G", .mode = MMU_MODE_5LEVEL, .leaf_level = 3 },
	{ .name = "4-level user write", .mode = MMU_MODE_4LEVEL, .access = W | U },
	{ .name = "4-level user fetch", .mode = MMU_MODE_4LEVEL, .access = F | U },

	{ .name = "E4: PAE, CR4.PKE, leaf bit 59 is reserved", .mode = MMU_MODE_PAE,
	  .cr4_set = MMU_CR4_PKE, .set[1] = KEY(1), .fault = MMU_FAULT_PF,
	  .error_code = PF_P | PF_RSVD, .fault_level = 1 },
	{ .name = "E5: PK AD, user read of a user page", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_PKE, .set[1] = KEY(1), .pkru = 1U << 2, .access = U,
	  .fault = MMU_FAULT_PF, .error_code = PF_P | PF_U | PF_PK, .fault_level = 1 },
	{ .name = "E6: PK AD, supervisor read of a user page", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_PKE, .set[1] = KEY(1), .pkru = 1U << 2,
	  .fault = MMU_FAULT_PF, .error_code = PF_P | PF_PK, .fault_level = 1 },
	{ .name = "E7: PK AD, fetch is not checked", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_PKE, .set[1] = KEY(1), .pkru = 1U << 2, .access = F | U },
	{ .name = "E7: PK AD and WD, supervisor fetch is not checked", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_PKE, .set[1] = KEY(1), .pkru = 3U << 2, .access = F },
	{ .name = "E8: 32-bit, NX=1, fetch from not-present PTE: no I bit",
	  .mode = MMU_MODE_32BIT, .clr[1] = FX_P, .access = F, .fault = MMU_FAULT_PF,
	  .error_code = 0, .fault_level = 1 },
	{ .name = "E8: same under KVM compatibility: I bit", .mode = MMU_MODE_32BIT,
	  .kvm_compat = true, .clr[1] = FX_P, .access = F, .fault = MMU_FAULT_PF,
	  .error_code = PF_I, .fault_level = 1 },
	{ .name = "E9: 32-bit, PSE=0, PDE bit 7 ignored", .mode = MMU_MODE_32BIT,
	  .cr4_clr = MMU_CR4_PSE, .set[2] = FX_PS },
	{ .name = "E10: 32-bit 4M with PDE[16:13] = 3 (PSE-36)", .mode = MMU_MODE_32BIT,
	  .leaf_level = 2, .set[2] = 3ULL << 13, .gpa_extra = 3ULL << 32 },
	{ .name = "E10: same under KVM compatibility", .mode = MMU_MODE_32BIT,
	  .kvm_compat = true, .leaf_level = 2, .set[2] = 3ULL << 13, .gpa_extra = 3ULL << 32 },
	{ .name = "E10: MAXPHYADDR 36: PDE[16:13] give PA[35:32]", .mode = MMU_MODE_32BIT,
	  .maxphyaddr = 36, .leaf_level = 2, .set[2] = 0xFULL << 13, .gpa_extra = 0xFULL << 32 },
	{ .name = "E10: MAXPHYADDR 46: PSE-36 reaches PA[39:32] through PDE[20:13]",
	  .mode = MMU_MODE_32BIT, .leaf_level = 2, .set[2] = 0xFFULL << 13,
	  .gpa_extra = 0xFFULL << 32 },
	{ .name = "E11: 32-bit 4M PDE bit 17, KVM compatibility (fixed 36-bit PSE-36)",
	  .mode = MMU_MODE_32BIT, .kvm_compat = true, .leaf_level = 2, .set[2] = 1ULL << 17,
	  .fault = MMU_FAULT_PF, .error_code = PF_P | PF_RSVD, .fault_level = 2 },
	{ .name = "E11: 32-bit 4M PDE bit 17, MAXPHYADDR 36", .mode = MMU_MODE_32BIT,
	  .maxphyaddr = 36, .leaf_level = 2, .set[2] = 1ULL << 17, .fault = MMU_FAULT_PF,
	  .error_code = PF_P | PF_RSVD, .fault_level = 2 },
	{ .name = "E11: architecture, MAXPHYADDR 46: bit 17 is PA bit 36", .mode = MMU_MODE_32BIT,
	  .leaf_level = 2, .set[2] = 1ULL << 17, .gpa_extra = 1ULL << 36 },
	{ .name = "E11: bit 21 is reserved whatever MAXPHYADDR", .mode = MMU_MODE_32BIT,
	  .leaf_level = 2, .set[2] = 1ULL << 21, .fault = MMU_FAULT_PF,
	  .error_code = PF_P | PF_RSVD, .fault_level = 2 },
	{ .name = "E11: no PSE-36: bit 13 is reserved", .mode = MMU_MODE_32BIT,
	  .no_pse36 = true, .leaf_level = 2, .set[2] = 1ULL << 13, .fault = MMU_FAULT_PF,
	  .error_code = PF_P | PF_RSVD, .fault_level = 2 },
	/* SDM Vol. 3A Table 4-4: PDE[(M-20):13] = PA[(M-1):32], 21:(M-19) reserved,
	 * M = min(40, MAXPHYADDR); the row does not apply when MAXPHYADDR = 32. */
	{ .name = "E11: MAXPHYADDR 38: bit 18 is PA bit 37", .mode = MMU_MODE_32BIT,
	  .maxphyaddr = 38, .leaf_level = 2, .set[2] = 1ULL << 18, .gpa_extra = 1ULL << 37 },
	{ .name = "E11: MAXPHYADDR 38: bit 19 is reserved", .mode = MMU_MODE_32BIT,
	  .maxphyaddr = 38, .leaf_level = 2, .set[2] = 1ULL << 19, .fault = MMU_FAULT_PF,
	  .error_code = PF_P | PF_RSVD, .fault_level = 2 },
	{ .name = "E11: MAXPHYADDR 40: bit 20 is PA bit 39", .mode = MMU_MODE_32BIT,
	  .maxphyaddr = 40, .leaf_level = 2, .set[2] = 1ULL << 20, .gpa_extra = 1ULL << 39 },
	{ .name = "E11: MAXPHYADDR 32 with PSE-36: bit 13 is reserved", .mode = MMU_MODE_32BIT,
	  .maxphyaddr = 32, .leaf_level = 2, .set[2] = 1ULL << 13, .fault = MMU_FAULT_PF,
	  .error_code = PF_P | PF_RSVD, .fault_level = 2 },
	{ .name = "E12: MAXPHYADDR 36, PTE bit 36", .mode = MMU_MODE_4LEVEL, .maxphyaddr = 36,
	  .set[1] = 1ULL << 36, .fault = MMU_FAULT_PF, .error_code = PF_P | PF_RSVD,
	  .fault_level = 1 },
	{ .name = "E12: MAXPHYADDR 52, PTE bit 51 is legal", .mode = MMU_MODE_4LEVEL,
	  .maxphyaddr = 52, .set[1] = 1ULL << 51, .gpa_extra = 1ULL << 51 },
	{ .name = "E13: NX=0, PTE bit 63, read", .mode = MMU_MODE_4LEVEL, .efer_clr = MMU_EFER_NX,
	  .set[1] = FX_XD, .fault = MMU_FAULT_PF, .error_code = PF_P | PF_RSVD, .fault_level = 1 },
	{ .name = "E14: PDE XD, supervisor fetch", .mode = MMU_MODE_4LEVEL, .set[2] = FX_XD,
	  .access = F, .fault = MMU_FAULT_PF, .error_code = PF_P | PF_I, .fault_level = 1 },
	{ .name = "E14: PDE XD, read is fine", .mode = MMU_MODE_4LEVEL, .set[2] = FX_XD },
	{ .name = "E15: PML4E bit 7", .mode = MMU_MODE_4LEVEL, .set[4] = FX_PS,
	  .fault = MMU_FAULT_PF, .error_code = PF_P | PF_RSVD, .fault_level = 4 },
	{ .name = "E15: PML5E bit 7", .mode = MMU_MODE_5LEVEL, .set[5] = FX_PS,
	  .fault = MMU_FAULT_PF, .error_code = PF_P | PF_RSVD, .fault_level = 5 },
	{ .name = "E16: 1G page without GBPAGES", .mode = MMU_MODE_4LEVEL, .no_gbpages = true,
	  .leaf_level = 3, .fault = MMU_FAULT_PF, .error_code = PF_P | PF_RSVD,
	  .fault_level = 3 },
	{ .name = "E16: 1G page with GBPAGES", .mode = MMU_MODE_4LEVEL, .leaf_level = 3 },
	{ .name = "E17: 1G PDPTE bit 13", .mode = MMU_MODE_4LEVEL, .leaf_level = 3,
	  .set[3] = 1ULL << 13, .fault = MMU_FAULT_PF, .error_code = PF_P | PF_RSVD,
	  .fault_level = 3 },
	{ .name = "E17: 1G PDPTE bit 12 is PAT", .mode = MMU_MODE_4LEVEL, .leaf_level = 3,
	  .set[3] = 1ULL << 12 },
	{ .name = "E18: 2M PDE bit 13", .mode = MMU_MODE_4LEVEL, .leaf_level = 2,
	  .set[2] = 1ULL << 13, .fault = MMU_FAULT_PF, .error_code = PF_P | PF_RSVD,
	  .fault_level = 2 },
	{ .name = "E18: 2M PDE bit 12 is PAT", .mode = MMU_MODE_4LEVEL, .leaf_level = 2,
	  .set[2] = 1ULL << 12 },
	{ .name = "E19: AMD, PML4E bit 8", .mode = MMU_MODE_4LEVEL, .amd = true,
	  .set[4] = 1ULL << 8, .fault = MMU_FAULT_PF, .error_code = PF_P | PF_RSVD,
	  .fault_level = 4 },
	{ .name = "E19: Intel, PML4E bit 8 ignored", .mode = MMU_MODE_4LEVEL,
	  .set[4] = 1ULL << 8 },
	{ .name = "E21: PAE, PDPTE P=0", .mode = MMU_MODE_PAE, .clr[3] = FX_P, .access = W,
	  .fault = MMU_FAULT_PF, .error_code = PF_W, .fault_level = 3 },
	{ .name = "E21: PAE, PDPTE P=0, elsewhere in the same 1 GiB", .mode = MMU_MODE_PAE,
	  .clr[3] = FX_P, .gva = 0x40000000, .fault = MMU_FAULT_PF, .error_code = 0,
	  .fault_level = 3 },
	{ .name = "E22: PAE, PDE bit 62", .mode = MMU_MODE_PAE, .set[2] = 1ULL << 62,
	  .fault = MMU_FAULT_PF, .error_code = PF_P | PF_RSVD, .fault_level = 2 },
	{ .name = "E22: 4-level, PDE bit 62 ignored", .mode = MMU_MODE_4LEVEL,
	  .set[2] = 1ULL << 62 },
	{ .name = "E23: PDE U/S=0, PTE not present, user read", .mode = MMU_MODE_4LEVEL,
	  .clr[2] = FX_US, .clr[1] = FX_P, .access = U, .fault = MMU_FAULT_PF,
	  .error_code = PF_U, .fault_level = 1 },
	{ .name = "E24: PDE reserved bit, PTE not present", .mode = MMU_MODE_4LEVEL,
	  .set[2] = 1ULL << 50, .clr[1] = FX_P, .fault = MMU_FAULT_PF,
	  .error_code = PF_P | PF_RSVD, .fault_level = 2 },
	{ .name = "E25: WP=0, supervisor write to a read-only page", .mode = MMU_MODE_4LEVEL,
	  .cr0_clr = MMU_CR0_WP, .clr[1] = FX_RW, .access = W },
	{ .name = "E25: WP=1, same write faults", .mode = MMU_MODE_4LEVEL, .clr[1] = FX_RW,
	  .access = W, .fault = MMU_FAULT_PF, .error_code = PF_P | PF_W, .fault_level = 1 },
	{ .name = "E26: WP=0, user write to a read-only page", .mode = MMU_MODE_4LEVEL,
	  .cr0_clr = MMU_CR0_WP, .clr[1] = FX_RW, .access = W | U, .fault = MMU_FAULT_PF,
	  .error_code = PF_P | PF_W | PF_U, .fault_level = 1 },
	{ .name = "E27: SMEP, supervisor fetch of a user page, NX=0", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_SMEP, .efer_clr = MMU_EFER_NX, .access = F,
	  .fault = MMU_FAULT_PF, .error_code = PF_P | PF_I, .fault_level = 1 },
	{ .name = "E27: SMEP in 32-bit paging", .mode = MMU_MODE_32BIT, .cr4_set = MMU_CR4_SMEP,
	  .access = F, .fault = MMU_FAULT_PF, .error_code = PF_P | PF_I, .fault_level = 1 },
	{ .name = "E28: SMEP, PDE U=1, PTE U=0, supervisor fetch", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_SMEP, .clr[1] = FX_US, .access = F },
	{ .name = "E29: SMAP, AC=0, supervisor read of a user page", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_SMAP, .fault = MMU_FAULT_PF, .error_code = PF_P,
	  .fault_level = 1 },
	{ .name = "E29: SMAP, AC=1, explicit supervisor read", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_SMAP, .ac = true },
	{ .name = "E29: SMAP, AC=0, supervisor write", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_SMAP, .access = W, .fault = MMU_FAULT_PF,
	  .error_code = PF_P | PF_W, .fault_level = 1 },
	{ .name = "E30: SMAP, AC=1, implicit supervisor access", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_SMAP, .ac = true, .access = IMPL, .fault = MMU_FAULT_PF,
	  .error_code = PF_P, .fault_level = 1 },
	{ .name = "E31: SMAP, supervisor fetch of a user page", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_SMAP, .access = F },
	{ .name = "E32: PK WD, supervisor write, WP=0", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_PKE, .cr0_clr = MMU_CR0_WP, .set[1] = KEY(2), .pkru = 2U << 4,
	  .access = W },
	{ .name = "E32: PK WD, supervisor write, WP=1", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_PKE, .set[1] = KEY(2), .pkru = 2U << 4, .access = W,
	  .fault = MMU_FAULT_PF, .error_code = PF_P | PF_W | PF_PK, .fault_level = 1 },
	{ .name = "E32: PK WD, user write, WP=0", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_PKE, .cr0_clr = MMU_CR0_WP, .set[1] = KEY(2), .pkru = 2U << 4,
	  .access = W | U, .fault = MMU_FAULT_PF, .error_code = PF_P | PF_W | PF_U | PF_PK,
	  .fault_level = 1 },
	{ .name = "E32: PK and an ordinary permission fault together", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_PKE, .set[1] = KEY(2), .clr[1] = FX_RW, .pkru = 2U << 4,
	  .access = W | U, .fault = MMU_FAULT_PF, .error_code = PF_P | PF_W | PF_U | PF_PK,
	  .fault_level = 1 },
	{ .name = "E32: keys ignored on supervisor pages", .mode = MMU_MODE_4LEVEL,
	  .cr4_set = MMU_CR4_PKE, .set[1] = KEY(2), .clr[1] = FX_US, .pkru = 3U << 4,
	  .access = W },
	{ .name = "E36: 5-level, bits 63:57 not a sign extension", .mode = MMU_MODE_5LEVEL,
	  .gva = 1ULL << 60, .fault = MMU_FAULT_GP, .error_code = 0, .fault_level = 0 },
	{ .name = "E36: 4-level, bit 47 not extended", .mode = MMU_MODE_4LEVEL,
	  .gva = 0x0000800000000000ULL, .fault = MMU_FAULT_GP, .error_code = 0,
	  .fault_level = 0 },
	{ .name = "E36: 5-level accepts bits 56:48", .mode = MMU_MODE_5LEVEL,
	  .gva = 0x00ff000000001000ULL },
	{ .name = "E36: non-canonical stack access is #SS", .mode = MMU_MODE_4LEVEL,
	  .gva = 0x8000000000000000ULL, .access = MMU_ACCESS_STACK, .fault = MMU_FAULT_SS,
	  .error_code = 0, .fault_level = 0 },
};

static void test_walk_cases(void **state)
{
	for (size_t i = 0; i < sizeof(walk_cases) / sizeof(walk_cases[0]); i++) {
		const struct wcase *c = &walk_cases[i];
		struct mmu_walk_result by_ptr, by_copy, by_region, by_flat;
		struct mmu_ram_region regions[16];
		struct setup s;

		build(c, false, &s);
		assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &by_ptr), 0);
		check_case(c, &s, &by_ptr);
		fx_free(s.fx);

		build(c, true, &s);
		assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &by_copy), 0);
		check_case(c, &s, &by_copy);
		fx_free(s.fx);

		build(c, false, &s);
		s.mem = fx_mem_regions(s.fx, regions, MMU_ARRAY_LEN(regions));
		assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &by_region), 0);
		check_case(c, &s, &by_region);
		fx_free(s.fx);

		/* The tables in one region: the walker's fast path. */
		build(c, false, &s);
		fx_flatten(s.fx);
		s.mem = fx_mem_flat(s.fx, regions, MMU_ARRAY_LEN(regions));
		assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &by_flat), 0);
		check_case(c, &s, &by_flat);
		fx_free(s.fx);

		if (memcmp(&by_ptr, &by_copy, sizeof(by_ptr)) ||
		    memcmp(&by_ptr, &by_region, sizeof(by_ptr)) ||
		    memcmp(&by_ptr, &by_flat, sizeof(by_ptr)))
			fail_msg("%s: the memory back ends disagree", c->name);
	}
}

/* E36: the canonical check happens before any walk: no memory is touched. */
static void test_e36_no_walk(void **state)
{
	struct wcase c = walk_cases[0];
	struct mmu_walk_result r;
	struct setup s;

	c.mode = MMU_MODE_5LEVEL;
	build(&c, false, &s);
	s.req.addr = 0xfe00000000000000ULL; /* bit 56 clear, 63:57 set */
	s.fx->map_calls = 0;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
	assert_int_equal(r.fault.type, MMU_FAULT_GP);
	assert_int_equal(r.fault.vector, 13);
	assert_int_equal(r.nr_entries, 0);
	assert_int_equal(s.fx->map_calls, 0);
	fx_free(s.fx);
}

/* ---------------------------------------------------------------- PAE */

/* PDPTEs read from memory at CR3[31:5] when no registers are given. */
static void test_pae_pdptes_from_memory(void **state)
{
	struct wcase c = { .name = "PAE", .mode = MMU_MODE_PAE };
	struct mmu_walk_result regs_walk, mem_walk;
	struct setup s;

	build(&c, false, &s);
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &regs_walk), 0);
	assert_true(regs_walk.entries[0].from_register);
	s.req.pdptrs = NULL;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &mem_walk), 0);
	assert_false(mem_walk.entries[0].from_register);
	assert_int_equal(mem_walk.fault.type, MMU_FAULT_NONE);
	assert_true(mem_walk.gpa == regs_walk.gpa);
	assert_true(mem_walk.entries[0].value == regs_walk.entries[0].value);

	/* Registers win over memory: a stale register still decides (§2.4). */
	s.pdptrs[1] &= ~FX_P;
	s.req.pdptrs = s.pdptrs;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &regs_walk), 0);
	assert_int_equal(regs_walk.fault.type, MMU_FAULT_PF);
	assert_int_equal(regs_walk.fault.level, 3);
	fx_free(s.fx);
}

/* PDPTE R/W and U/S do not exist: a user write through a PDPTE succeeds, no A bit. */
static void test_pae_pdpte_no_rights_no_a(void **state)
{
	struct wcase c = { .name = "PAE", .mode = MMU_MODE_PAE, .access = W | U };
	struct mmu_walk_result r;
	struct setup s;

	build(&c, false, &s);
	s.req.pdptrs = NULL;
	s.req.flags = MMU_WALK_SET_AD;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);
	/* The PDPTE in memory is exactly what the builder wrote: P only. */
	assert_true((r.entries[0].value & 0xFFF) == FX_P);
	assert_true((fx_r64(s.fx, r.entries[0].gpa) & 0xFFF) == FX_P);
	fx_free(s.fx);
}

/* ---------------------------------------------------------------- A/D */

static uint64_t entry_now(struct setup *s, const struct mmu_walk_entry *e)
{
	return fx_read_entry(s->fx, s->mode, e->gpa);
}

/*
 * E33: A set in every entry used, D untouched by a read; a write sets D in
 * the leaf. Through the map callback and with the tables as one RAM region.
 */
static void test_e33_accessed_dirty(void **state)
{
	static const enum mmu_paging_mode modes[] = { MMU_MODE_32BIT, MMU_MODE_PAE,
						      MMU_MODE_4LEVEL, MMU_MODE_5LEVEL };

	for (size_t k = 0; k < 2 * sizeof(modes) / sizeof(modes[0]); k++) {
		struct wcase c = { .name = "E33", .mode = modes[k / 2] };
		struct mmu_ram_region regions[16];
		struct mmu_walk_result r;
		struct setup s;

		for (unsigned int l = 1; l <= 5; l++)
			c.clr[l] = FX_A;
		if (c.mode == MMU_MODE_PAE)
			c.clr[3] = 0;
		build(&c, false, &s);
		if (k % 2) {
			fx_flatten(s.fx);
			s.mem = fx_mem_flat(s.fx, regions, MMU_ARRAY_LEN(regions));
		}
		s.req.flags = MMU_WALK_SET_AD;
		assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
		assert_int_equal(r.fault.type, MMU_FAULT_NONE);
		for (unsigned int i = 0; i < r.nr_entries; i++) {
			uint64_t now = entry_now(&s, &r.entries[i]);

			if (r.entries[i].from_register)
				continue;
			assert_false(r.entries[i].value & FX_A); /* as read */
			assert_true(now & FX_A);
			assert_false(now & FX_D);
		}
		assert_int_equal(r.ad_written, fx_root_level(c.mode) - (c.mode == MMU_MODE_PAE));

		/* A second read writes nothing: A is already set everywhere. */
		assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
		assert_int_equal(r.ad_written, 0);

		/* A write sets D in the leaf only. */
		s.req.access = W;
		assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
		assert_int_equal(r.ad_written, 1);
		for (unsigned int i = 0; i < r.nr_entries; i++) {
			bool leaf = i == r.nr_entries - 1U;

			if (r.entries[i].from_register)
				continue;
			assert_int_equal(!!(entry_now(&s, &r.entries[i]) & FX_D), leaf);
		}
		fx_free(s.fx);
	}
}

/* E25: a supervisor write allowed by CR0.WP=0 still sets D. */
static void test_e25_wp0_sets_dirty(void **state)
{
	struct wcase c = { .name = "E25", .mode = MMU_MODE_4LEVEL, .cr0_clr = MMU_CR0_WP,
			   .clr[1] = FX_RW, .access = W };
	struct mmu_walk_result r;
	struct setup s;

	build(&c, false, &s);
	s.req.flags = MMU_WALK_SET_AD;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);
	assert_true(entry_now(&s, &r.entries[3]) & FX_D);
	assert_false(r.rights & MMU_RIGHT_W);
	fx_free(s.fx);
}

/* E34: a faulting access changes nothing, not even A bits above the fault. */
static void test_e34_fault_changes_nothing(void **state)
{
	struct wcase c = { .name = "E34", .mode = MMU_MODE_4LEVEL, .clr[1] = FX_RW | FX_A,
			   .clr[2] = FX_A, .clr[3] = FX_A, .clr[4] = FX_A, .access = W | U };
	struct mmu_walk_result r;
	struct setup s;

	build(&c, false, &s);
	s.req.flags = MMU_WALK_SET_AD;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
	assert_int_equal(r.fault.type, MMU_FAULT_PF);
	assert_int_equal(r.fault.error_code, PF_P | PF_W | PF_U);
	for (unsigned int i = 0; i < r.nr_entries; i++)
		assert_true(entry_now(&s, &r.entries[i]) == r.entries[i].value);
	assert_int_equal(r.ad_written, 0);
	fx_free(s.fx);
}

/* E35: page tables in read-only memory: the access succeeds, A is not written. */
static void test_e35_rom_page_tables(void **state)
{
	/* 0: map callback, 1: read + cmpxchg, 2: the tables as RAM regions */
	for (int backend = 0; backend < 3; backend++) {
		struct wcase c = { .name = "E35", .mode = MMU_MODE_4LEVEL, .clr[1] = FX_A,
				   .clr[2] = FX_A, .clr[3] = FX_A, .clr[4] = FX_A };
		struct mmu_ram_region regions[16];
		struct mmu_walk_result r;
		struct setup s;

		build(&c, backend == 1, &s);
		if (backend == 2)
			fx_flatten(s.fx);
		s.req.flags = MMU_WALK_SET_AD;
		/* The page directory only is ROM: the entries above and below get A. */
		fx_set_readonly(s.fx, fx_entry(s.fx, s.mode, s.req.cr3, s.req.addr, 2));
		if (backend == 2)
			s.mem = fx_mem_flat(s.fx, regions, MMU_ARRAY_LEN(regions));
		assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
		assert_int_equal(r.fault.type, MMU_FAULT_NONE);
		assert_false(entry_now(&s, &r.entries[2]) & FX_A);
		assert_true(entry_now(&s, &r.entries[0]) & FX_A);
		assert_true(entry_now(&s, &r.entries[1]) & FX_A);
		assert_true(entry_now(&s, &r.entries[3]) & FX_A);
		assert_int_equal(r.ad_written, 3);

		/* Everything ROM: still a successful access, nothing written. */
		for (unsigned int l = 1; l <= 4; l++)
			fx_set_readonly(s.fx, fx_entry(s.fx, s.mode, s.req.cr3, s.req.addr, l));
		if (backend == 2)
			s.mem = fx_mem_flat(s.fx, regions, MMU_ARRAY_LEN(regions));
		fx_modify(s.fx, s.mode, s.req.cr3, s.req.addr, 1, 0, FX_A);
		s.req.access = W;
		assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
		assert_int_equal(r.fault.type, MMU_FAULT_NONE);
		assert_int_equal(r.ad_written, 0);
		assert_false(entry_now(&s, &r.entries[3]) & (FX_A | FX_D));
		fx_free(s.fx);
	}
}

/* Inspection mode never writes guest memory. */
static void test_inspection_writes_nothing(void **state)
{
	struct wcase c = { .name = "inspect", .mode = MMU_MODE_4LEVEL, .clr[1] = FX_A | FX_D,
			   .clr[4] = FX_A, .access = W };
	struct mmu_walk_result r;
	struct setup s;

	build(&c, true, &s);
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);
	assert_int_equal(s.fx->cmpxchg_calls, 0);
	for (unsigned int i = 0; i < r.nr_entries; i++)
		assert_true(entry_now(&s, &r.entries[i]) == r.entries[i].value);
	fx_free(s.fx);
}

/* A lost compare-exchange restarts the walk; endless losses give -EAGAIN. */
static void test_ad_race_restarts(void **state)
{
	struct wcase c = { .name = "race", .mode = MMU_MODE_4LEVEL, .clr[1] = FX_A };
	struct mmu_walk_result r;
	struct setup s;

	build(&c, true, &s);
	s.req.flags = MMU_WALK_SET_AD;
	s.fx->races = 3;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);
	assert_int_equal(r.restarts, 3);
	/* Each lost race flipped bit 11; the last flip survived, A added on top. */
	assert_true(entry_now(&s, &r.entries[3]) & FX_A);
	assert_true(entry_now(&s, &r.entries[3]) & (1ULL << 11));

	fx_modify(s.fx, s.mode, s.req.cr3, s.req.addr, 1, 0, FX_A);
	s.fx->races = 1000;
	memset(&r, 0xA5, sizeof(r));
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), -EAGAIN);
	assert_int_equal(r.restarts, 0xA5); /* untouched on failure */
	fx_free(s.fx);
}

/* With host pointers the update is a real atomic cmpxchg on the entry. */
static void test_ad_atomic_on_mapped_memory(void **state)
{
	struct wcase c = { .name = "atomic", .mode = MMU_MODE_5LEVEL, .clr[1] = FX_A | FX_D,
			   .access = W };
	struct mmu_walk_result r;
	struct setup s;
	uint64_t pte_gpa;

	build(&c, false, &s);
	s.req.flags = MMU_WALK_SET_AD;
	pte_gpa = fx_entry(s.fx, s.mode, s.req.cr3, s.req.addr, 1);
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
	assert_true((fx_r64(s.fx, pte_gpa) & (FX_A | FX_D)) == (FX_A | FX_D));
	assert_true(fx_r64(s.fx, pte_gpa) == (r.entries[4].value | FX_A | FX_D));
	fx_free(s.fx);
}

/* RAM regions: A/D with real cmpxchg, read-only regions, GPAs outside every region. */
static void test_ram_regions(void **state)
{
	struct wcase c = { .name = "regions", .mode = MMU_MODE_4LEVEL, .clr[1] = FX_A | FX_D,
			   .clr[2] = FX_A, .access = W };
	struct mmu_ram_region rg[16];
	struct mmu_walk_result r;
	struct setup s;
	unsigned int pd_region = 99;

	build(&c, false, &s);
	s.mem = fx_mem_regions(s.fx, rg, MMU_ARRAY_LEN(rg));
	s.req.flags = MMU_WALK_SET_AD;
	for (unsigned int i = 0; i < s.mem.nr_regions; i++)
		if (rg[i].gpa == (fx_entry(s.fx, s.mode, s.req.cr3, s.req.addr, 2) & ~0xFFFULL))
			pd_region = i;
	assert_int_not_equal(pd_region, 99);
	rg[pd_region].readonly = true; /* the page directory is ROM */
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);
	assert_true((entry_now(&s, &r.entries[3]) & (FX_A | FX_D)) == (FX_A | FX_D));
	assert_false(entry_now(&s, &r.entries[2]) & FX_A);
	assert_int_equal(r.ad_written, 1);

	/* A table outside every region, and no callback: not present, unbacked. */
	rg[pd_region] = rg[--s.mem.nr_regions];
	s.req.flags = 0;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
	assert_int_equal(r.fault.type, MMU_FAULT_PF);
	assert_int_equal(r.fault.level, 2);
	assert_int_equal(r.fault.error_code, PF_W);
	assert_true(r.fault.unbacked);
	/* Regions plus a callback for the rest give the full answer again. */
	s.mem.map = fx_cb_map;
	s.mem.opaque = s.fx;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
	assert_int_equal(r.fault.type, MMU_FAULT_NONE);
	s.mem = (struct mmu_memory){ .nr_regions = 1 };
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), -EINVAL);
	fx_free(s.fx);
}

/* ---------------------------------------------------------------- edges */

/* A paging structure outside guest RAM: not-present #PF, flagged unbacked (KVM's behaviour). */
static void test_unbacked_table(void **state)
{
	struct wcase c = { .name = "unbacked", .mode = MMU_MODE_4LEVEL, .access = W };
	struct mmu_walk_result r;
	struct setup s;

	build(&c, false, &s);
	fx_modify(s.fx, s.mode, s.req.cr3, s.req.addr, 2, 0, FX_BITS(12, 51));
	fx_modify(s.fx, s.mode, s.req.cr3, s.req.addr, 2, 0x3ff00000000ULL, 0);
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
	assert_int_equal(r.fault.type, MMU_FAULT_PF);
	assert_int_equal(r.fault.error_code, PF_W);
	assert_int_equal(r.fault.level, 1);
	assert_true(r.fault.unbacked);
	fx_free(s.fx);
}

static int failing_map(void *opaque, uint64_t gpa, size_t len, void **p, bool *w)
{
	return -EIO;
}

static void test_request_validation(void **state)
{
	struct wcase c = { .name = "req", .mode = MMU_MODE_PAE };
	struct mmu_memory broken = { .map = failing_map };
	struct mmu_memory none = { 0 };
	struct mmu_walk_request req;
	struct mmu_walk_result r;
	struct setup s;

	build(&c, false, &s);
	req = s.req;
	req.access = 1U << 20;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &req, &r), -EINVAL);
	req = s.req;
	req.access = U | IMPL;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &req, &r), -EINVAL);
	req = s.req;
	req.access = W | F;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &req, &r), -EINVAL);
	req = s.req;
	req.flags = 0x80;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &req, &r), -EINVAL);
	/* Linear addresses are 32 bits wide outside IA-32e mode. */
	req = s.req;
	req.addr = 1ULL << 32;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &req, &r), -EINVAL);
	assert_int_equal(mmu_walk(&s.ctx, NULL, &none, &s.req, &r), -EINVAL);
	assert_int_equal(mmu_walk(NULL, NULL, &s.mem, &s.req, &r), -EINVAL);
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, NULL), -EINVAL);
	/* A stage-1 context is not a stage 2. */
	assert_int_equal(mmu_walk(&s.ctx, &s.ctx, &s.mem, &s.req, &r), -EINVAL);
	/* Backend errors other than -EFAULT abort the walk. */
	s.req.pdptrs = NULL;
	assert_int_equal(mmu_walk(&s.ctx, NULL, &broken, &s.req, &r), -EIO);
	fx_free(s.fx);
}

static void test_context_validation(void **state)
{
	struct mmu_role_regs regs = cfg_regs(MMU_MODE_4LEVEL);
	struct mmu_cpu_features f = cfg_features();
	struct mmu_context ctx;

	memset(&ctx, 0x5A, sizeof(ctx));
	f.maxphyaddr = 53;
	assert_int_equal(mmu_context_init(&ctx, &regs, &f, 0), -EINVAL);
	f.maxphyaddr = 31;
	assert_int_equal(mmu_context_init(&ctx, &regs, &f, 0), -EINVAL);
	f.maxphyaddr = 46;
	assert_int_equal(mmu_context_init(&ctx, &regs, &f, 1U << 7), -EINVAL);
	assert_int_equal(mmu_context_init(&ctx, NULL, &f, 0), -EINVAL);
	assert_int_equal(mmu_context_init(&ctx, &regs, NULL, 0), -EINVAL);
	assert_int_equal(ctx.maxphyaddr, 0x5A); /* untouched */
}

/* ---------------------------------------------------------------- printable form */

static void test_walk_format(void **state)
{
	struct wcase ok = { .name = "fmt", .mode = MMU_MODE_4LEVEL, .access = W | U };
	struct wcase bad = { .name = "fmt", .mode = MMU_MODE_4LEVEL, .set[2] = 1ULL << 50 };
	struct mmu_walk_result r;
	struct setup s;
	char buf[4096], small[16];
	size_t len;

	build(&ok, false, &s);
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
	assert_int_equal(mmu_walk_format(&r, MMU_FORMAT_TEXT, buf, sizeof(buf), &len), 0);
	assert_int_equal(strlen(buf), len);
	assert_non_null(strstr(buf, "walk 4-level addr=0x7f1234567abc access=write,user\n"));
	assert_non_null(strstr(buf, "PML4E[254]"));
	assert_non_null(strstr(buf, "PTE[359]"));
	assert_non_null(strstr(buf, "result gpa=0x12345abc page=4K rights=U,W,X pkey=0"));

	assert_int_equal(mmu_walk_format(&r, MMU_FORMAT_JSON, buf, sizeof(buf), &len), 0);
	assert_non_null(strstr(buf, "\"result\":{\"gpa\":\"0x12345abc\""));
	assert_non_null(strstr(buf, "\"name\":\"PDPTE\",\"level\":3,\"index\":72"));
	/* Real JSON, as the API layer will parse it. */
	{
		struct json_object *o = json_tokener_parse(buf), *v, *e;

		assert_non_null(o);
		assert_true(json_object_object_get_ex(o, "entries", &v));
		assert_int_equal(json_object_array_length(v), 4);
		e = json_object_array_get_idx(v, 3);
		assert_true(json_object_object_get_ex(e, "flags", &v));
		assert_string_equal(json_object_get_string(v), "P W U A");
		assert_true(json_object_object_get_ex(o, "result", &v));
		assert_true(json_object_object_get_ex(v, "page_size", &e));
		assert_int_equal(json_object_get_int64(e), 4096);
		json_object_put(o);
	}

	/* Too small: -ENOSPC and the buffer is untouched. */
	memset(small, 'x', sizeof(small));
	assert_int_equal(mmu_walk_format(&r, MMU_FORMAT_TEXT, small, sizeof(small), &len),
			 -ENOSPC);
	assert_int_equal(small[0], 'x');
	fx_free(s.fx);

	build(&bad, false, &s);
	assert_int_equal(mmu_walk(&s.ctx, NULL, &s.mem, &s.req, &r), 0);
	assert_int_equal(mmu_walk_format(&r, MMU_FORMAT_TEXT, buf, sizeof(buf), NULL), 0);
	assert_non_null(strstr(buf, "fault #PF stage=1 level=2 error_code=0x9 (P RSVD) cr2="));
	assert_int_equal(mmu_walk_format(&r, MMU_FORMAT_JSON, buf, sizeof(buf), NULL), 0);
	assert_non_null(strstr(buf, "\"fault\":{\"type\":\"#PF\",\"vector\":14"));
	assert_non_null(strstr(buf, "\"error_bits\":\"P RSVD\""));
	{
		struct json_object *o = json_tokener_parse(buf), *f, *v;

		assert_non_null(o);
		assert_true(json_object_object_get_ex(o, "fault", &f));
		assert_true(json_object_object_get_ex(f, "error_code", &v));
		assert_int_equal(json_object_get_int(v), 9);
		json_object_put(o);
	}
	fx_free(s.fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_cases),
		cmocka_unit_test(test_e36_no_walk),
		cmocka_unit_test(test_pae_pdptes_from_memory),
		cmocka_unit_test(test_pae_pdpte_no_rights_no_a),
		cmocka_unit_test(test_e33_accessed_dirty),
		cmocka_unit_test(test_e25_wp0_sets_dirty),
		cmocka_unit_test(test_e34_fault_changes_nothing),
		cmocka_unit_test(test_e35_rom_page_tables),
		cmocka_unit_test(test_inspection_writes_nothing),
		cmocka_unit_test(test_ad_race_restarts),
		cmocka_unit_test(test_ad_atomic_on_mapped_memory),
		cmocka_unit_test(test_ram_regions),
		cmocka_unit_test(test_unbacked_table),
		cmocka_unit_test(test_request_validation),
		cmocka_unit_test(test_context_validation),
		cmocka_unit_test(test_walk_format),
	};
	return cmocka_run_group_tests_name("mmu-walk", tests, NULL, NULL);
}
