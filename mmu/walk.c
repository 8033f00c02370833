/* SPDX-License-Identifier: MIT */
/*
 * The guest page walker (MMU.md §2–§5): x86-format walks for stage 1 and
 * nested NPT, EPT-format walks for nested EPT, A/D updates with
 * compare-and-exchange and restart, and fault reporting per stage.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "mmu/mmu-internal.h"

#define ACCESS_KNOWN                                                                        \
	(MMU_ACCESS_WRITE | MMU_ACCESS_USER | MMU_ACCESS_FETCH | MMU_ACCESS_IMPLICIT |     \
	 MMU_ACCESS_STACK)
#define FRAME_4K MMU_BITS(12, 51)
#define FRAME_2M MMU_BITS(21, 51)
#define FRAME_1G MMU_BITS(30, 51)
#define FRAME_32BIT MMU_BITS(12, 31)
#define FRAME_4M MMU_BITS(22, 31)
#define PAE_PDPT_BASE MMU_BITS(5, 31)

/* Where an entry was read from, for a later A/D compare-exchange. */
struct entry_loc {
	void *ptr; /* map backends */
	bool writable;
};

/* The outcome of walking one stage; entries points into the result. */
struct stage_walk {
	struct mmu_walk_entry *entries;
	struct entry_loc locs[MMU_MAX_LEVELS];
	uint8_t n;
	uint8_t leaf_level;
	uint8_t rights; /* ACC_* (EPT: ACC_USER = readable) */
	uint8_t pkey;
	uint64_t out;
	uint64_t page_size;
};

struct walker {
	const struct mmu_memory *mem;
	const struct mmu_walk_request *req;
	struct mmu_walk_result *res;
	bool has_gla;	   /* translating a linear address (there is a stage 1) */
	unsigned int restarts; /* lost A/D races, all stages */
};

/* ---------------------------------------------------------------- memory */

/* Entries are naturally aligned; the guest may be updating them concurrently. */
static uint64_t load_entry(const void *p, size_t size)
{
	if (size == 8)
		return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
	return __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE);
}

/* Outside the RAM regions: the callbacks. Returns as mem_load(). */
static int __attribute__((noinline))
mem_load_callback(const struct mmu_memory *mem, uint64_t pa, size_t size, uint64_t *ret_val,
		  struct entry_loc *loc)
{
	int r;

	if (mem->map) {
		void *p;
		bool writable;

		r = mem->map(mem->opaque, pa, size, &p, &writable);
		if (r == -EFAULT)
			return 1;
		if (r < 0)
			return r;
		*ret_val = load_entry(p, size);
		loc->ptr = p;
		loc->writable = writable;
		return 0;
	}
	if (!mem->read)
		return 1;

	if (size == 8) {
		uint64_t v;

		r = mem->read(mem->opaque, pa, &v, sizeof(v));
		*ret_val = v;
	} else {
		uint32_t v;

		r = mem->read(mem->opaque, pa, &v, sizeof(v));
		*ret_val = v;
	}
	if (r == -EFAULT)
		return 1;
	loc->ptr = NULL;
	loc->writable = mem->cmpxchg != NULL;
	return r < 0 ? r : 0;
}

/* Returns 0, 1 if pa is not RAM, or a negative errno from the backend. */
static inline int mem_load(const struct mmu_memory *mem, uint64_t pa, size_t size,
			   uint64_t *ret_val, struct entry_loc *loc)
{
	for (unsigned int i = 0; i < mem->nr_regions; i++) {
		const struct mmu_ram_region *rg = &mem->regions[i];

		if (pa - rg->gpa < rg->size && rg->size - (pa - rg->gpa) >= size) {
			loc->ptr = (uint8_t *)rg->hva + (pa - rg->gpa);
			loc->writable = !rg->readonly;
			*ret_val = load_entry(loc->ptr, size);
			return 0;
		}
	}
	return mem_load_callback(mem, pa, size, ret_val, loc);
}

/* Returns 0 if stored, -EAGAIN if the entry changed, -EROFS to skip the update. */
static int mem_cmpxchg(const struct mmu_memory *mem, const struct entry_loc *loc, uint64_t pa,
		       size_t size, uint64_t old, uint64_t new_val)
{
	if (!loc->writable)
		return -EROFS;
	if (!loc->ptr)
		return mem->cmpxchg(mem->opaque, pa, size, old, new_val);
	if (size == 8) {
		uint64_t expected = old;

		return __atomic_compare_exchange_n((uint64_t *)loc->ptr, &expected, new_val, false,
						   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
			       ? 0
			       : -EAGAIN;
	} else {
		uint32_t expected = (uint32_t)old;

		return __atomic_compare_exchange_n((uint32_t *)loc->ptr, &expected,
						   (uint32_t)new_val, false, __ATOMIC_SEQ_CST,
						   __ATOMIC_SEQ_CST)
			       ? 0
			       : -EAGAIN;
	}
}

/* ---------------------------------------------------------------- faults */

static void set_pf(struct mmu_fault *fault, unsigned int level, uint32_t code, uint64_t addr)
{
	fault->type = MMU_FAULT_PF;
	fault->vector = 14;
	fault->stage = 1;
	fault->level = level;
	fault->error_code = code;
	fault->address = addr;
}

/* Error code of a walk fault before the leaf (not present or reserved bits). */
static uint32_t walk_error_code(const struct mmu_context *ctx, uint32_t access, uint32_t pr)
{
	return pr | (access & (MMU_PFERR_W | MMU_PFERR_U)) | mmu_fetch_error_bit(ctx, access);
}

/*
 * Turns a fault found while walking a stage-2 context into what L1 sees:
 * an NPF (SVM) or EPT violation/misconfiguration (VMX) for gpa.
 */
static void finish_stage2_fault(const struct walker *w, const struct mmu_context *s2,
				uint64_t gpa, bool table, struct mmu_fault *fault)
{
	fault->stage = 2;
	fault->vector = 0;
	fault->address = gpa;
	fault->paging_structure = table;
	if (w->has_gla)
		fault->guest_linear_address = w->req->addr;

	if (!s2->role.ept) {
		fault->type = MMU_FAULT_NPF;
		fault->exit_info_1 = fault->error_code | (table ? MMU_NPF_TABLE_ADDR
								: MMU_NPF_FINAL_ADDR);
		fault->exit_info_2 = gpa;
		return;
	}
	if (fault->type == MMU_FAULT_EPT_VIOLATION && w->has_gla) {
		fault->exit_qualification |= MMU_EPT_QUAL_GLA_VALID;
		if (!table)
			fault->exit_qualification |= MMU_EPT_QUAL_GLA_FINAL;
	}
}

/* ---------------------------------------------------------------- helpers */

static unsigned int table_index(const struct mmu_context *ctx, uint64_t addr, unsigned int level)
{
	if (ctx->role.has_4_byte_gpte)
		return (addr >> (12 + 10 * (level - 1))) & 0x3FF;
	if (ctx->mode == MMU_MODE_PAE && level == 3)
		return (addr >> 30) & 3;
	return (addr >> (12 + 9 * (level - 1))) & 0x1FF;
}

/* Fills one chain slot. */
static inline void put_entry(struct mmu_walk_entry *e, unsigned int level, unsigned int index,
			     uint64_t gpa, uint64_t pa, uint64_t value, bool from_register)
{
	e->gpa = gpa;
	e->pa = pa;
	e->value = value;
	/* index, level, from_register and reserved in one 8-byte store (little endian). */
	uint64_t tail = (uint64_t)(uint16_t)index | (uint64_t)level << 16 |
			(uint64_t)from_register << 24;

	_Static_assert(offsetof(struct mmu_walk_entry, index) == 24 &&
			       offsetof(struct mmu_walk_entry, level) == 26 &&
			       offsetof(struct mmu_walk_entry, from_register) == 27 &&
			       offsetof(struct mmu_walk_entry, reserved) == 28 &&
			       sizeof(struct mmu_walk_entry) == 32,
		       "entry layout");
	memcpy(&e->index, &tail, sizeof(tail));
}

static void record_entry(struct stage_walk *sw, unsigned int level, unsigned int index,
			 uint64_t gpa, uint64_t pa, uint64_t value, bool from_register)
{
	put_entry(&sw->entries[sw->n++], level, index, gpa, pa, value, from_register);
}

static bool is_canonical(uint64_t addr, unsigned int bits)
{
	return (uint64_t)((int64_t)(addr << (64 - bits)) >> (64 - bits)) == addr;
}

static int stage2_translate(struct walker *w, const struct mmu_context *s2, uint64_t gpa,
			    uint32_t access, bool table, struct stage_walk *sw,
			    struct mmu_fault *fault);
static int stage2_translate_keep(struct walker *w, const struct mmu_context *s2, uint64_t gpa,
				 uint32_t access, bool table, uint64_t *ret_pa,
				 struct mmu_fault *fault);

/*
 * Stage-2 access used to read a stage-1 paging structure. NPT: a user
 * write, always (MMU.md §5.1). EPT: a read, or a write when EPT A/D flags
 * are enabled (SDM Vol. 3C §29.3.3.2); KVM treats it as a write always.
 */
static uint32_t s2_table_access(const struct mmu_context *s2)
{
	if (!s2->role.ept)
		return MMU_ACCESS_USER | MMU_ACCESS_WRITE;
	return (s2->ept_ad || s2->kvm_compat) ? MMU_ACCESS_WRITE : MMU_ACCESS_READ;
}

/* read_entry() results besides 0 and negative errno. */
#define ENTRY_UNBACKED 1     /* not in guest RAM */
#define ENTRY_STAGE2_FAULT 2 /* stage-2 fault, left in *fault */

/*
 * Reads the entry of `size` bytes at gpa in the walked stage's input
 * space, translating gpa through s2 first for a nested stage-1 walk.
 * Returns 0, ENTRY_UNBACKED, ENTRY_STAGE2_FAULT or a negative errno.
 */
static inline int read_entry(struct walker *w, const struct mmu_context *s2, struct stage_walk *sw,
		      uint64_t gpa, size_t size, uint64_t *ret_val, uint64_t *ret_pa,
		      struct mmu_fault *fault)
{
	uint64_t pa = gpa;
	int r;

	*ret_val = 0;
	if (s2) {
		r = stage2_translate_keep(w, s2, gpa, s2_table_access(s2), true, &pa, fault);
		if (r < 0)
			return r;
		if (fault->type != MMU_FAULT_NONE)
			return ENTRY_STAGE2_FAULT;
	}
	*ret_pa = pa;
	return mem_load(w->mem, pa, size, ret_val, &sw->locs[sw->n]);
}

/* ---------------------------------------------------------------- x86 format */

static inline uint64_t x86_leaf_output(const struct mmu_context *ctx, unsigned int level,
				       uint64_t entry, uint64_t addr, uint64_t *ret_size)
{
	if (level == 1) {
		*ret_size = 4096;
		if (ctx->role.has_4_byte_gpte)
			return (entry & FRAME_32BIT) | (addr & 0xFFF);
		return (entry & FRAME_4K) | (addr & 0xFFF);
	}
	if (level == 2 && ctx->role.has_4_byte_gpte) {
		/* PSE-36: PDE[W-20:13] holds PA[W-1:32] (SDM Vol. 3A Table 4-4). */
		*ret_size = 4ULL << 20;
		return (entry & FRAME_4M) | ((entry & ctx->pse36_frame_mask) << 19) |
		       (addr & MMU_BITS(0, 21));
	}
	if (level == 2) {
		*ret_size = 2ULL << 20;
		return (entry & FRAME_2M) | (addr & MMU_BITS(0, 20));
	}
	*ret_size = 1ULL << 30;
	return (entry & FRAME_1G) | (addr & MMU_BITS(0, 29));
}

static uint64_t x86_root_table(const struct mmu_context *ctx, uint64_t root)
{
	if (ctx->mode == MMU_MODE_32BIT)
		return root & FRAME_32BIT;
	return root & FRAME_4K;
}

/*
 * PAE: the PDPTE for addr, from the PDPTE registers or (no registers
 * given, or NPT in PAE mode) from the PDPT at root[31:5]. Only P is
 * checked during a walk (§2.4).
 */
static int pae_pdpte(struct walker *w, const struct mmu_context *ctx,
		     const struct mmu_context *s2, uint64_t root, uint64_t addr,
		     const uint64_t *pdptrs, struct stage_walk *sw, uint64_t *ret_entry,
		     struct mmu_fault *fault)
{
	unsigned int index = table_index(ctx, addr, 3);
	uint64_t gpa = (root & PAE_PDPT_BASE) + 8 * index;
	uint64_t pa;
	int r;

	if (pdptrs) {
		*ret_entry = pdptrs[index];
		record_entry(sw, 3, index, gpa, gpa, *ret_entry, true);
		return 0;
	}
	r = read_entry(w, s2, sw, gpa, 8, ret_entry, &pa, fault);
	if (r < 0 || r == ENTRY_STAGE2_FAULT)
		return r;
	record_entry(sw, 3, index, gpa, pa, *ret_entry, false);
	return r;
}

/*
 * Effective rights (KVM's ACC_*) of the entries walked, from the AND and
 * the OR of their values: R/W and U/S must be set in all of them, XD in
 * none (§3.1). ACC_WRITE and ACC_USER are R/W and U/S in place.
 */
static unsigned int x86_rights(uint64_t and_bits, uint64_t or_bits, bool four_byte)
{
	_Static_assert(ACC_WRITE == PTE_RW && ACC_USER == PTE_US, "rights are entry bits");
	unsigned int rights = (unsigned int)(and_bits & (PTE_RW | PTE_US));

	return (four_byte || !(or_bits & PTE_XD)) ? rights | ACC_EXEC : rights;
}

/* What one present-or-not x86 entry means for the walk (§2.3, §3.5). */
enum x86_step {
	STEP_NEXT,	  /* points to the next table */
	STEP_LEAF,	  /* maps the page */
	STEP_NOT_PRESENT, /* P=0: #PF with P clear, whatever came before */
	STEP_RESERVED,	  /* a reserved bit: #PF with P and RSVD */
};

/* ps_ends_walk: PS ends a walk above level 1 (all but 32-bit paging without PSE). */
static inline enum x86_step x86_step(const struct mmu_context *ctx, unsigned int level,
				     uint64_t entry, bool ps_ends_walk)
{
	if (!(entry & PTE_P))
		return STEP_NOT_PRESENT;
	if (mmu_is_reserved(ctx, level, entry))
		return STEP_RESERVED;
	if (level == 1 || ((entry & PTE_PS) && ps_ends_walk))
		return STEP_LEAF;
	return STEP_NEXT;
}

/* The #PF of a walk that stopped at `level` (not present or reserved). */
static void x86_walk_fault(const struct mmu_context *ctx, enum x86_step step, unsigned int level,
			   uint64_t addr, uint32_t access, bool unbacked, struct mmu_fault *fault)
{
	uint32_t pr = step == STEP_RESERVED ? MMU_PFERR_P | MMU_PFERR_RSVD : 0;

	set_pf(fault, level, walk_error_code(ctx, access, pr), addr);
	fault->unbacked = unbacked;
}

/*
 * The end of a walk that reached its leaf `entry` at `level`: effective
 * rights, protection key and permission check, then the output address.
 */
static inline void x86_walk_leaf(const struct walker *w, const struct mmu_context *ctx,
				 unsigned int level, uint64_t entry, unsigned int rights,
				 uint64_t addr, uint32_t access, struct stage_walk *sw,
				 struct mmu_fault *fault)
{
	uint32_t code;

	sw->leaf_level = (uint8_t)level;
	sw->rights = (uint8_t)rights;
	/* Keys live in leaf bits 62:59 in 4/5-level paging only (§3.4). */
	sw->pkey = ctx->role.level >= 4 ? (entry >> PTE_PKEY_SHIFT) & 0xF : 0;
	code = mmu_permission_fault(ctx, rights, sw->pkey, access, w->req->eflags_ac,
				    w->req->pkru);
	if (code) {
		set_pf(fault, level, code, addr);
		return;
	}
	sw->out = x86_leaf_output(ctx, level, entry, addr, &sw->page_size);
}

/*
 * The first RAM region as the fast walk checks it: an 8-byte entry at gpa
 * is in it iff gpa - base < span (one compare).
 */
struct ram_window {
	uint8_t *hva;
	uint64_t base;
	uint64_t span;
	bool readonly;
};

static struct ram_window ram_window(const struct mmu_memory *mem)
{
	const struct mmu_ram_region *rg = mem->regions;

	if (!mem->nr_regions || rg->size < 8)
		return (struct ram_window){ .span = 0 };
	return (struct ram_window){
		.hva = rg->hva, .base = rg->gpa, .span = rg->size - 7, .readonly = rg->readonly
	};
}

/*
 * x86_walk() of the common case alone: one stage, 4- or 5-level paging,
 * every table in the first RAM region. Nothing else to consult leaves the
 * loop few live values. Returns false, having decided nothing, as soon as
 * a table lies elsewhere; x86_walk() then walks again from the root.
 */
static bool x86_walk_in_ram(const struct walker *w, const struct mmu_context *ctx,
			    uint64_t root, uint64_t addr, uint32_t access, struct stage_walk *sw,
			    struct mmu_fault *fault)
{
	const struct ram_window ram = ram_window(w->mem);
	/* Chain and locations through locals: stores through sw could alias. */
	struct mmu_walk_entry *e = sw->entries;
	struct entry_loc *loc = sw->locs;
	unsigned int level = ctx->role.level;
	uint64_t table = root & FRAME_4K, entry, and_bits = ~0ULL, or_bits = 0;
	enum x86_step step;

	for (unsigned int shift = 12 + 9 * (level - 1);; level--, shift -= 9, e++, loc++) {
		unsigned int index = (addr >> shift) & 0x1FF;
		uint64_t gpa = table + 8 * index;

		if (gpa - ram.base >= ram.span)
			return false;
		loc->ptr = ram.hva + (gpa - ram.base);
		loc->writable = !ram.readonly;
		entry = load_entry(loc->ptr, 8);
		put_entry(e, level, index, gpa, gpa, entry, false);
		step = x86_step(ctx, level, entry, true);
		if (step == STEP_NOT_PRESENT || step == STEP_RESERVED) {
			sw->n = (uint8_t)(e - sw->entries + 1);
			x86_walk_fault(ctx, step, level, addr, access, false, fault);
			return true;
		}
		and_bits &= entry;
		or_bits |= entry;
		if (step == STEP_LEAF)
			break;
		table = entry & FRAME_4K;
	}
	sw->n = (uint8_t)(e - sw->entries + 1);
	x86_walk_leaf(w, ctx, level, entry, x86_rights(and_bits, or_bits, false), addr, access, sw,
		      fault);
	return true;
}

/*
 * One x86-format walk (stage 1, or nested NPT as stage 2) of addr from
 * root. Leaves the verdict in *fault (type NONE on success) and the chain
 * in *sw. s2 translates paging-structure addresses (nested stage 1).
 */
static int x86_walk(struct walker *w, const struct mmu_context *ctx,
		    const struct mmu_context *s2, uint64_t root, uint64_t addr, uint32_t access,
		    const uint64_t *pdptrs, struct stage_walk *sw, struct mmu_fault *fault)
{
	const bool four_byte = ctx->role.has_4_byte_gpte;
	const bool ps_ends_walk = !four_byte || ctx->role.cr4_pse;
	const size_t size = four_byte ? 4 : 8;
	unsigned int level = ctx->role.level;
	uint64_t table, entry, and_bits = ~0ULL, or_bits = 0;
	enum x86_step step;
	int r;

	sw->n = 0;
	if (level == 3) {
		r = pae_pdpte(w, ctx, s2, root, addr, pdptrs, sw, &entry, fault);
		if (r < 0 || r == ENTRY_STAGE2_FAULT)
			return r < 0 ? r : 0;
		if (r == ENTRY_UNBACKED || !(entry & PTE_P)) {
			x86_walk_fault(ctx, STEP_NOT_PRESENT, 3, addr, access,
				       r == ENTRY_UNBACKED, fault);
			return 0;
		}
		/* PDPTE R/W, U/S and XD do not exist: no rights, no A bit. */
		table = entry & FRAME_4K;
		level = 2;
	} else {
		table = x86_root_table(ctx, root);
	}

	for (;; level--) {
		unsigned int index = table_index(ctx, addr, level);
		uint64_t gpa = table + size * index;
		uint64_t pa = gpa;

		r = read_entry(w, s2, sw, gpa, size, &entry, &pa, fault);
		if (r < 0)
			return r;
		if (r == ENTRY_STAGE2_FAULT)
			return 0;
		record_entry(sw, level, index, gpa, pa, entry, false);
		/* Outside guest RAM reads as not present, as KVM injects it. */
		step = r == ENTRY_UNBACKED ? STEP_NOT_PRESENT
					   : x86_step(ctx, level, entry, ps_ends_walk);
		if (step == STEP_NOT_PRESENT || step == STEP_RESERVED) {
			x86_walk_fault(ctx, step, level, addr, access, r == ENTRY_UNBACKED, fault);
			return 0;
		}
		and_bits &= entry;
		or_bits |= entry;
		if (step == STEP_LEAF)
			break;
		table = four_byte ? entry & FRAME_32BIT : entry & FRAME_4K;
	}
	x86_walk_leaf(w, ctx, level, entry, x86_rights(and_bits, or_bits, four_byte), addr, access,
		      sw, fault);
	return 0;
}

/* ---------------------------------------------------------------- EPT format */

static void set_ept_fault(struct mmu_fault *fault, enum mmu_fault_type type, unsigned int level,
			  uint64_t qual)
{
	fault->type = type;
	fault->level = level;
	fault->exit_qualification = type == MMU_FAULT_EPT_VIOLATION ? qual : 0;
}

/* Access bits of an EPT-violation qualification (SDM Vol. 3C Table 28-7). */
static uint64_t ept_access_qual(const struct mmu_context *ctx, uint32_t access, bool table)
{
	uint64_t q = 0;

	if (access & MMU_ACCESS_FETCH)
		q |= MMU_EPT_QUAL_FETCH;
	else if (access & MMU_ACCESS_WRITE)
		q |= MMU_EPT_QUAL_WRITE;
	else
		q |= MMU_EPT_QUAL_READ;
	/*
	 * SDM Vol. 3C §29.3.3.2: with EPT A/D flags on, a paging-structure
	 * access is a write and its violation sets both bits 0 and 1. KVM ORs
	 * PFERR_USER_MASK ("read" for EPT) into every nested access.
	 */
	if ((table && ctx->ept_ad && (access & MMU_ACCESS_WRITE)) || ctx->kvm_compat)
		q |= MMU_EPT_QUAL_READ;
	return q;
}

static bool ept_access_allowed(const struct mmu_context *ctx, unsigned int rwx, uint32_t access)
{
	if (ctx->kvm_compat && !(rwx & EPTE_R))
		return false;
	if (access & MMU_ACCESS_FETCH)
		return rwx & EPTE_X;
	if (access & MMU_ACCESS_WRITE)
		return rwx & EPTE_W;
	return rwx & EPTE_R;
}

static int ept_walk(struct walker *w, const struct mmu_context *ctx, uint64_t gpa,
		    uint32_t access, bool table_access, struct stage_walk *sw,
		    struct mmu_fault *fault)
{
	unsigned int level = ctx->role.level;
	uint64_t table = ctx->root, entry = 0;
	uint64_t qual = ept_access_qual(ctx, access, table_access);
	unsigned int rwx = EPTE_RWX;
	int r;

	sw->n = 0;
	for (;; level--) {
		unsigned int index = table_index(ctx, gpa, level);
		uint64_t epa = table + 8 * index;

		entry = 0;
		r = mem_load(w->mem, epa, 8, &entry, &sw->locs[sw->n]);
		if (r < 0)
			return r;
		record_entry(sw, level, index, epa, epa, entry, false);
		/* Bits 5:3 of the qualification: AND of R/W/X over the entries used. */
		rwx &= entry & EPTE_RWX;
		if (!(entry & EPTE_RWX)) {
			set_ept_fault(fault, MMU_FAULT_EPT_VIOLATION, level,
				      qual | (uint64_t)rwx << 3);
			fault->unbacked = r == 1;
			return 0;
		}
		if (mmu_ept_is_misconfig(ctx, level, entry)) {
			set_ept_fault(fault, MMU_FAULT_EPT_MISCONFIG, level, 0);
			return 0;
		}
		if (mmu_is_last_level(ctx, level, entry))
			break;
		table = entry & FRAME_4K;
	}

	sw->leaf_level = (uint8_t)level;
	sw->rights = (uint8_t)(((rwx & EPTE_R) ? ACC_USER : 0) | ((rwx & EPTE_W) ? ACC_WRITE : 0) |
			       ((rwx & EPTE_X) ? ACC_EXEC : 0));
	sw->pkey = 0;
	if (!ept_access_allowed(ctx, rwx, access)) {
		set_ept_fault(fault, MMU_FAULT_EPT_VIOLATION, level, qual | (uint64_t)rwx << 3);
		return 0;
	}
	sw->out = x86_leaf_output(ctx, level, entry, gpa, &sw->page_size);
	return 0;
}

/* ---------------------------------------------------------------- A/D */

static bool stage_has_ad(const struct mmu_context *ctx)
{
	return !ctx->role.ept || ctx->ept_ad;
}

/*
 * Sets A in every entry used and D in the leaf for writes (MMU.md §4),
 * each with compare-and-exchange. *ret_restart asks for a new walk when
 * an entry changed under us. s2: stage 2 of a nested stage-1 walk.
 */
static int update_ad(struct walker *w, const struct mmu_context *ctx,
		     const struct mmu_context *s2, struct stage_walk *sw, bool write,
		     bool *ret_restart, struct mmu_fault *fault)
{
	uint64_t a = ctx->role.ept ? EPTE_A : PTE_A;
	uint64_t d = ctx->role.ept ? EPTE_D : PTE_D;
	size_t size = ctx->role.has_4_byte_gpte ? 4 : 8;
	int r;

	*ret_restart = false;
	if (!stage_has_ad(ctx))
		return 0;
	for (unsigned int i = 0; i < sw->n; i++) {
		struct mmu_walk_entry *e = &sw->entries[i];
		uint64_t value = e->value | a;

		/* PAE PDPTEs have no A bit (§2.4). */
		if (e->from_register || (ctx->mode == MMU_MODE_PAE && e->level == 3))
			continue;
		if (write && i == sw->n - 1U)
			value |= d;
		if (value == e->value)
			continue;
		/*
		 * Architecturally an EPT-translated paging-structure access
		 * that sets A/D is a write even without EPT A/D flags.
		 */
		if (s2 && s2->role.ept && s2_table_access(s2) == MMU_ACCESS_READ) {
			uint64_t pa;

			r = stage2_translate_keep(w, s2, e->gpa, MMU_ACCESS_WRITE, true, &pa, fault);
			if (r < 0 || fault->type != MMU_FAULT_NONE)
				return r;
		}
		r = mem_cmpxchg(w->mem, &sw->locs[i], e->pa, size, e->value, value);
		if (r == -EAGAIN) {
			*ret_restart = true;
			return 0;
		}
		if (r == -EROFS)
			continue; /* page tables in read-only memory: skip (E35) */
		if (r < 0)
			return r;
		w->res->ad_written++;
	}
	return 0;
}

/* ---------------------------------------------------------------- stage 2 */

/*
 * Translates gpa through a stage-2 context, with its own A/D updates and
 * restarts, leaving the chain in *sw. table: gpa is a stage-1 paging
 * structure. A fault is reported as L1 sees it (NPF / EPT exit).
 */
static int stage2_translate(struct walker *w, const struct mmu_context *s2, uint64_t gpa,
			    uint32_t access, bool table, struct stage_walk *sw,
			    struct mmu_fault *fault)
{
	bool restart;
	int r;

	for (unsigned int tries = 0;; tries++) {
		if (s2->role.ept)
			r = ept_walk(w, s2, gpa, access, table, sw, fault);
		else
			/* Every NPT access is a user access (MMU.md §5.2). */
			r = x86_walk(w, s2, NULL, s2->root, gpa, access | MMU_ACCESS_USER, NULL,
				     sw, fault);
		if (r < 0)
			return r;
		if (fault->type != MMU_FAULT_NONE) {
			finish_stage2_fault(w, s2, gpa, table, fault);
			return 0;
		}
		if (!(w->req->flags & MMU_WALK_SET_AD))
			return 0;
		r = update_ad(w, s2, NULL, sw, access & MMU_ACCESS_WRITE, &restart, fault);
		if (r < 0 || !restart)
			return r;
		if (tries == MMU_WALK_MAX_RESTARTS)
			return -EAGAIN;
		w->restarts++;
	}
}

/*
 * stage2_translate() for a nested walk: returns the output address and
 * keeps the chain of the final access, or of a faulting one, in
 * res->stage2_entries.
 */
static int stage2_translate_keep(struct walker *w, const struct mmu_context *s2, uint64_t gpa,
				 uint32_t access, bool table, uint64_t *ret_pa,
				 struct mmu_fault *fault)
{
	struct mmu_walk_entry scratch[MMU_MAX_LEVELS];
	struct mmu_walk_result *res = w->res;
	struct stage_walk sw;
	int r;

	sw.entries = table ? scratch : res->stage2_entries;
	sw.n = 0;
	r = stage2_translate(w, s2, gpa, access, table, &sw, fault);
	if (r < 0)
		return r;
	if (!table || fault->type != MMU_FAULT_NONE) {
		if (table)
			memcpy(res->stage2_entries, scratch, sizeof(scratch[0]) * sw.n);
		res->nr_stage2_entries = sw.n;
	}
	*ret_pa = sw.out;
	return 0;
}

/* ---------------------------------------------------------------- entry points */

/* Final stage-2 access for a stage-1 output: the access's own W/F bits. */
static uint32_t s2_final_access(uint32_t access)
{
	return access & (MMU_ACCESS_WRITE | MMU_ACCESS_FETCH);
}

static void set_noncanonical(struct mmu_fault *fault, uint32_t access)
{
	bool stack = access & MMU_ACCESS_STACK;

	fault->type = stack ? MMU_FAULT_SS : MMU_FAULT_GP;
	fault->vector = stack ? 12 : 13;
	fault->stage = 1;
	fault->error_code = 0;
}

/* Canonical-address check, before any walk (SDM Vol. 3A §4.5.1). */
static bool check_canonical(const struct mmu_context *ctx, uint64_t addr)
{
	if (ctx->mode == MMU_MODE_4LEVEL)
		return is_canonical(addr, 48);
	if (ctx->mode == MMU_MODE_5LEVEL)
		return is_canonical(addr, 57);
	return true;
}

/* The stage-1 walk of the request: the fast walk when it applies, else x86_walk(). */
static int stage1_walk(struct walker *w, const struct mmu_context *ctx,
		       const struct mmu_context *s2, struct stage_walk *sw, struct mmu_fault *fault)
{
	const struct mmu_walk_request *req = w->req;

	if (!s2 && ctx->role.level >= 4 &&
	    x86_walk_in_ram(w, ctx, req->cr3, req->addr, req->access, sw, fault))
		return 0;
	return x86_walk(w, ctx, s2, req->cr3, req->addr, req->access, req->pdptrs, sw, fault);
}

/* One attempt at the whole translation; *ret_restart after a lost A/D race. */
static int walk_once(struct walker *w, const struct mmu_context *ctx,
		     const struct mmu_context *s2, bool *ret_restart)
{
	const struct mmu_walk_request *req = w->req;
	struct mmu_walk_result *res = w->res;
	struct stage_walk sw;
	uint64_t pa;
	int r;

	*ret_restart = false;
	sw.entries = res->entries;
	sw.n = 0;
	if (ctx->stage2) {
		/* A stage-2 context walked alone: GPA in, L1 GPA out, no linear address. */
		r = stage2_translate(w, ctx, req->addr, req->access, false, &sw, &res->fault);
		res->nr_entries = sw.n;
		if (r < 0 || res->fault.type != MMU_FAULT_NONE)
			return r;
		res->gpa = req->addr;
		res->pa = sw.out;
		res->page_size = sw.page_size;
		res->leaf_level = sw.leaf_level;
		res->rights = sw.rights;
		return 0;
	}

	if (!check_canonical(ctx, req->addr)) {
		set_noncanonical(&res->fault, req->access);
		return 0;
	}
	if (ctx->mode == MMU_MODE_NONE) {
		res->gpa = req->addr;
	} else {
		r = stage1_walk(w, ctx, s2, &sw, &res->fault);
		res->nr_entries = sw.n;
		if (r < 0 || res->fault.type != MMU_FAULT_NONE)
			return r;
		res->gpa = sw.out;
		res->page_size = sw.page_size;
		res->leaf_level = sw.leaf_level;
		res->rights = sw.rights;
		res->pkey = sw.pkey;
	}

	pa = res->gpa;
	if (s2) {
		r = stage2_translate_keep(w, s2, res->gpa, s2_final_access(req->access), false,
					  &pa, &res->fault);
		if (r < 0 || res->fault.type != MMU_FAULT_NONE)
			return r;
	}
	res->pa = pa;

	if (ctx->mode != MMU_MODE_NONE && (req->flags & MMU_WALK_SET_AD))
		return update_ad(w, ctx, s2, &sw, req->access & MMU_ACCESS_WRITE, ret_restart,
				 &res->fault);
	return 0;
}

static int check_request(const struct mmu_context *ctx, const struct mmu_context *s2,
			 const struct mmu_memory *mem, const struct mmu_walk_request *req)
{
	uint32_t a = req->access;

	if (!ctx || !mem || !req || (!mem->map && !mem->read && !mem->nr_regions) ||
	    (mem->nr_regions && !mem->regions))
		return -EINVAL;
	if ((a & ~ACCESS_KNOWN) || (req->flags & ~MMU_WALK_SET_AD))
		return -EINVAL;
	/* Implicit accesses are supervisor accesses; a fetch is not a write. */
	if (((a & MMU_ACCESS_IMPLICIT) && (a & MMU_ACCESS_USER)) ||
	    ((a & MMU_ACCESS_WRITE) && (a & MMU_ACCESS_FETCH)))
		return -EINVAL;
	if (s2 && (!s2->stage2 || ctx->stage2))
		return -EINVAL;
	if (ctx->stage2)
		return req->addr >> 52 ? -EINVAL : 0;
	/* Outside IA-32e mode linear addresses are 32 bits wide. */
	if (!ctx->role.efer_lma && (req->addr >> 32))
		return -EINVAL;
	return 0;
}

/*
 * Everything but the chains, which the walk fills in place: zeroing the
 * whole result on every walk costs more than the walk itself.
 */
static void result_init(struct mmu_walk_result *res, const struct mmu_context *ctx,
			const struct mmu_context *stage2, const struct mmu_walk_request *req)
{
	memset(res, 0, offsetof(struct mmu_walk_result, entries));
	memset(&res->fault, 0, sizeof(res->fault));
	res->addr = req->addr;
	res->access = req->access;
	res->mode = ctx->mode;
	res->stage2_mode = stage2 ? stage2->mode : MMU_MODE_NONE;
}

/*
 * Zeroes chain slots n.. so results compare with memcmp(). One 32-byte
 * store per slot: a longer memset becomes "rep stos", whose start-up cost
 * alone is a third of a hot walk.
 */
static inline void zero_unused(struct mmu_walk_entry *e, unsigned int n)
{
	_Static_assert(MMU_MAX_LEVELS == 5, "zero_unused() covers 5 slots");
	switch (n) {
	case 0:
		memset(&e[0], 0, sizeof(*e));
		__attribute__((fallthrough));
	case 1:
		memset(&e[1], 0, sizeof(*e));
		__attribute__((fallthrough));
	case 2:
		memset(&e[2], 0, sizeof(*e));
		__attribute__((fallthrough));
	case 3:
		memset(&e[3], 0, sizeof(*e));
		__attribute__((fallthrough));
	case 4:
		memset(&e[4], 0, sizeof(*e));
		break;
	default:
		break;
	}
}

/* Copies a finished result out; constant-size pieces, never "rep movs". */
static void result_publish(struct mmu_walk_result *ret, const struct mmu_walk_result *res)
{
	_Static_assert(MMU_MAX_LEVELS == 5, "result_publish() copies 5 slots");
	memcpy(ret, res, offsetof(struct mmu_walk_result, entries));
	ret->entries[0] = res->entries[0];
	ret->entries[1] = res->entries[1];
	ret->entries[2] = res->entries[2];
	ret->entries[3] = res->entries[3];
	ret->entries[4] = res->entries[4];
	ret->stage2_entries[0] = res->stage2_entries[0];
	ret->stage2_entries[1] = res->stage2_entries[1];
	ret->stage2_entries[2] = res->stage2_entries[2];
	ret->stage2_entries[3] = res->stage2_entries[3];
	ret->stage2_entries[4] = res->stage2_entries[4];
	ret->fault = res->fault;
}

/*
 * A walk can fail midway only through a memory callback error or endless
 * A/D races. Without callbacks and without A/D updates it cannot, so it
 * writes the caller's result directly; otherwise it works on a copy that
 * is published on success, leaving *ret untouched on failure.
 */
static bool walk_may_fail(const struct mmu_memory *mem, const struct mmu_walk_request *req)
{
	return mem->map || mem->read || (req->flags & MMU_WALK_SET_AD);
}

int mmu_walk(const struct mmu_context *ctx, const struct mmu_context *stage2,
	     const struct mmu_memory *mem, const struct mmu_walk_request *req,
	     struct mmu_walk_result *ret)
{
	struct mmu_walk_result copy, *res;
	struct walker w = { .mem = mem, .req = req };
	bool restart;
	int r;

	if (!ret)
		return -EINVAL;
	r = check_request(ctx, stage2, mem, req);
	if (r < 0)
		return r;
	res = walk_may_fail(mem, req) ? &copy : ret;
	w.res = res;
	w.has_gla = !ctx->stage2;

	for (unsigned int tries = 0;; tries++) {
		result_init(res, ctx, stage2, req);
		r = walk_once(&w, ctx, stage2, &restart);
		if (r < 0)
			return r;
		if (!restart)
			break;
		if (tries == MMU_WALK_MAX_RESTARTS)
			return -EAGAIN;
		w.restarts++;
	}
	res->restarts = w.restarts > UINT8_MAX ? UINT8_MAX : (uint8_t)w.restarts;
	zero_unused(res->entries, res->nr_entries);
	zero_unused(res->stage2_entries, res->nr_stage2_entries);
	if (res != ret)
		result_publish(ret, res);
	return 0;
}

/* ---------------------------------------------------------------- PAE PDPTE load */

uint64_t mmu_pae_pdpte_reserved(uint64_t pdpte, uint8_t maxphyaddr)
{
	unsigned int m = mmu_maxphyaddr_valid(maxphyaddr) ? maxphyaddr : MMU_MAXPHYADDR_MAX;

	if (!(pdpte & PTE_P))
		return 0;
	/* SDM Vol. 3A §4.4.1: bits 2:1, 8:5 and M..63 (no XD in PDPTEs). */
	return pdpte & (mmu_rsvd_pa(m) | MMU_BITS(5, 8) | MMU_BITS(1, 2));
}

int mmu_pae_load_pdptes(const struct mmu_memory *mem, uint64_t cr3,
			const struct mmu_cpu_features *features, uint64_t ret_pdptes[4],
			struct mmu_fault *ret_fault)
{
	struct mmu_fault gp = {
		.type = MMU_FAULT_GP, .vector = 13, .stage = 1, .level = 3, .address = cr3
	};
	uint64_t pdptes[4];

	if (!mem || (!mem->map && !mem->read && !mem->nr_regions) || !features || !ret_pdptes ||
	    !ret_fault ||
	    !mmu_maxphyaddr_valid(features->maxphyaddr))
		return -EINVAL;

	for (int i = 0; i < 4; i++) {
		struct entry_loc loc;
		int r = mem_load(mem, (cr3 & PAE_PDPT_BASE) + 8 * i, 8, &pdptes[i], &loc);

		if (r < 0)
			return r;
		/* A PDPT outside guest RAM cannot be loaded: the MOV faults. */
		if (r == 1 || mmu_pae_pdpte_reserved(pdptes[i], features->maxphyaddr)) {
			gp.unbacked = r == 1;
			*ret_fault = gp;
			return 0;
		}
	}
	memcpy(ret_pdptes, pdptes, sizeof(pdptes));
	*ret_fault = (struct mmu_fault){ .type = MMU_FAULT_NONE };
	return 0;
}
