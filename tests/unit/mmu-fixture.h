/* SPDX-License-Identifier: MIT */
/*
 * Test fixture for mmu/: sparse guest-physical memory (pages exist only
 * once written, so any GPA below 2^52 can hold a page table or data), a
 * page-table builder for every paging mode, and every memory back end of
 * struct mmu_memory (map and read + cmpxchg callbacks; RAM regions, one
 * per page or the tables as one flat region as a worker has them).
 * Header-only so each unit-test binary stays one object.
 */
#ifndef VMMD_TESTS_UNIT_MMU_FIXTURE_H
#define VMMD_TESTS_UNIT_MMU_FIXTURE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mmu/mmu.h"

#define FX_BITS(lo, hi) ((~0ULL >> (63 - (hi))) & ~((1ULL << (lo)) - 1))
#define FX_PAGE 4096ULL
#define FX_HASH_BITS 16
#define FX_HASH_SIZE (1U << FX_HASH_BITS)

/* x86 entry bits */
#define FX_P (1ULL << 0)
#define FX_RW (1ULL << 1)
#define FX_US (1ULL << 2)
#define FX_A (1ULL << 5)
#define FX_D (1ULL << 6)
#define FX_PS (1ULL << 7)
#define FX_XD (1ULL << 63)
/* EPT entry bits */
#define FX_EPT_R (1ULL << 0)
#define FX_EPT_W (1ULL << 1)
#define FX_EPT_X (1ULL << 2)
#define FX_EPT_RWX 7ULL
#define FX_EPT_WB (6ULL << 3)
#define FX_EPT_A (1ULL << 8)
#define FX_EPT_D (1ULL << 9)

struct fx_page {
	uint64_t gfn;
	uint8_t *data;
	bool used;
	bool readonly;
	bool in_flat; /* data lies in fixture.flat (fx_flatten) */
};

/* Where fx_alloc() starts: tables from 1 MiB up. */
#define FX_FIRST_TABLE_GFN 0x100

struct fixture {
	struct fx_page slot[FX_HASH_SIZE];
	uint8_t *flat;		/* fx_flatten(): the tables in one buffer */
	uint64_t flat_pages;
	uint64_t next_gfn;	/* page-table allocator */
	unsigned int races;	/* cmpxchg calls left that lose a race */
	unsigned int cmpxchg_calls;
	unsigned int map_calls;
};

static inline struct fixture *fx_new(void)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	fx->next_gfn = FX_FIRST_TABLE_GFN;
	return fx;
}

static inline void fx_free(struct fixture *fx)
{
	for (unsigned int i = 0; i < FX_HASH_SIZE; i++)
		if (!fx->slot[i].in_flat)
			free(fx->slot[i].data);
	free(fx->flat);
	free(fx);
}

static inline struct fx_page *fx_slot(struct fixture *fx, uint64_t gfn, bool create)
{
	unsigned int i = (unsigned int)((gfn * 0x9E3779B97F4A7C15ULL) >> (64 - FX_HASH_BITS));

	for (unsigned int n = 0; n < FX_HASH_SIZE; n++, i = (i + 1) & (FX_HASH_SIZE - 1)) {
		struct fx_page *p = &fx->slot[i];

		if (p->used && p->gfn == gfn)
			return p;
		if (!p->used) {
			if (!create)
				return NULL;
			p->used = true;
			p->gfn = gfn;
			p->data = aligned_alloc(FX_PAGE, FX_PAGE);
			memset(p->data, 0, FX_PAGE);
			return p;
		}
	}
	abort(); /* fixture full: a test bug */
}

static inline uint8_t *fx_ptr(struct fixture *fx, uint64_t gpa, bool create)
{
	struct fx_page *p = fx_slot(fx, gpa / FX_PAGE, create);

	return p ? p->data + (gpa % FX_PAGE) : NULL;
}

static inline void fx_set_readonly(struct fixture *fx, uint64_t gpa)
{
	fx_slot(fx, gpa / FX_PAGE, true)->readonly = true;
}

static inline uint64_t fx_alloc(struct fixture *fx)
{
	uint64_t gpa = fx->next_gfn++ * FX_PAGE;

	fx_ptr(fx, gpa, true);
	return gpa;
}

static inline void fx_w64(struct fixture *fx, uint64_t gpa, uint64_t v)
{
	memcpy(fx_ptr(fx, gpa, true), &v, 8);
}

static inline uint64_t fx_r64(struct fixture *fx, uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, fx_ptr(fx, gpa, true), 8);
	return v;
}

static inline void fx_w32(struct fixture *fx, uint64_t gpa, uint32_t v)
{
	memcpy(fx_ptr(fx, gpa, true), &v, 4);
}

static inline uint32_t fx_r32(struct fixture *fx, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, fx_ptr(fx, gpa, true), 4);
	return v;
}

/* ---- struct mmu_memory back ends ---- */

static inline int fx_cb_map(void *opaque, uint64_t gpa, size_t len, void **ret_ptr,
			    bool *ret_writable)
{
	struct fixture *fx = opaque;
	struct fx_page *p = fx_slot(fx, gpa / FX_PAGE, false);

	fx->map_calls++;
	if (!p || (gpa % FX_PAGE) + len > FX_PAGE)
		return -EFAULT;
	*ret_ptr = p->data + gpa % FX_PAGE;
	*ret_writable = !p->readonly;
	return 0;
}

static inline int fx_cb_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	struct fixture *fx = opaque;
	struct fx_page *p = fx_slot(fx, gpa / FX_PAGE, false);

	if (!p)
		return -EFAULT;
	memcpy(buf, p->data + gpa % FX_PAGE, len);
	return 0;
}

/* Loses `races` compare-exchanges by changing an ignored bit (11) first. */
static inline int fx_cb_cmpxchg(void *opaque, uint64_t gpa, size_t len, uint64_t old,
				uint64_t new_val)
{
	struct fixture *fx = opaque;
	struct fx_page *p = fx_slot(fx, gpa / FX_PAGE, false);
	uint64_t cur = 0;

	fx->cmpxchg_calls++;
	if (!p)
		return -EFAULT;
	if (p->readonly)
		return -EROFS;
	memcpy(&cur, p->data + gpa % FX_PAGE, len);
	if (fx->races) {
		fx->races--;
		cur ^= 1ULL << 11;
		memcpy(p->data + gpa % FX_PAGE, &cur, len);
		return -EAGAIN;
	}
	if (cur != old)
		return -EAGAIN;
	memcpy(p->data + gpa % FX_PAGE, &new_val, len);
	return 0;
}

static inline struct mmu_memory fx_mem_map(struct fixture *fx)
{
	return (struct mmu_memory){ .opaque = fx, .map = fx_cb_map };
}

static inline struct mmu_memory fx_mem_copy(struct fixture *fx)
{
	return (struct mmu_memory){ .opaque = fx, .read = fx_cb_read, .cmpxchg = fx_cb_cmpxchg };
}

/*
 * Every page of the fixture as a RAM region (no callbacks), into `rg`
 * (room for `max`). Take it after building: later pages are not covered.
 */
/* Appends each page outside gfns [skip_from, skip_to) as a region of its
 * own to rg[n..max); returns the memory of rg[0..]. */
static inline struct mmu_memory fx_page_regions(struct fixture *fx, struct mmu_ram_region *rg,
						unsigned int n, unsigned int max,
						uint64_t skip_from, uint64_t skip_to)
{
	for (unsigned int i = 0; i < FX_HASH_SIZE; i++) {
		struct fx_page *p = &fx->slot[i];

		if (!p->used || (p->gfn >= skip_from && p->gfn < skip_to))
			continue;
		if (n == max)
			abort(); /* a test bug */
		rg[n++] = (struct mmu_ram_region){ .gpa = p->gfn * FX_PAGE, .size = FX_PAGE,
						   .hva = p->data, .readonly = p->readonly };
	}
	return (struct mmu_memory){ .regions = rg, .nr_regions = n };
}

static inline struct mmu_memory fx_mem_regions(struct fixture *fx, struct mmu_ram_region *rg,
					       unsigned int max)
{
	return fx_page_regions(fx, rg, 0, max, 0, 0);
}

/*
 * Guest RAM as a worker hands it over, one large region: the tables
 * (every page fx_alloc() gave, from 1 MiB up) move into one flat buffer,
 * keeping their contents and staying reachable through fx_ptr(), so that
 * walks take the walker's path for tables in the first RAM region. Call
 * once, after building.
 */
static inline void fx_flatten(struct fixture *fx)
{
	uint64_t n = fx->next_gfn - FX_FIRST_TABLE_GFN;

	fx->flat = aligned_alloc(FX_PAGE, (n ? n : 1) * FX_PAGE);
	if (!fx->flat)
		abort();
	for (uint64_t i = 0; i < n; i++) {
		struct fx_page *p = fx_slot(fx, FX_FIRST_TABLE_GFN + i, true);

		memcpy(fx->flat + i * FX_PAGE, p->data, FX_PAGE);
		free(p->data);
		p->data = fx->flat + i * FX_PAGE;
		p->in_flat = true;
	}
	fx->flat_pages = n;
}

static inline bool fx_flat_readonly(struct fixture *fx, uint64_t i)
{
	return fx_slot(fx, FX_FIRST_TABLE_GFN + i, false)->readonly;
}

/*
 * After fx_flatten(): the flat tables as the first RAM region, as far as
 * they are all writable or all read-only like the first, every other page
 * a region of its own, into `rg` (room for `max`).
 */
static inline struct mmu_memory fx_mem_flat(struct fixture *fx, struct mmu_ram_region *rg,
					    unsigned int max)
{
	bool readonly = fx->flat_pages && fx_flat_readonly(fx, 0);
	uint64_t pages = 0;

	while (pages < fx->flat_pages && fx_flat_readonly(fx, pages) == readonly)
		pages++;
	rg[0] = (struct mmu_ram_region){ .gpa = FX_FIRST_TABLE_GFN * FX_PAGE,
					 .size = pages * FX_PAGE, .hva = fx->flat,
					 .readonly = readonly };
	return fx_page_regions(fx, rg, 1, max, FX_FIRST_TABLE_GFN, FX_FIRST_TABLE_GFN + pages);
}

/* ---- page-table builder ---- */

static inline unsigned int fx_root_level(enum mmu_paging_mode mode)
{
	switch (mode) {
	case MMU_MODE_32BIT:
		return 2;
	case MMU_MODE_PAE:
		return 3;
	case MMU_MODE_4LEVEL:
	case MMU_MODE_EPT4:
		return 4;
	case MMU_MODE_5LEVEL:
	case MMU_MODE_EPT5:
		return 5;
	default:
		return 0;
	}
}

/* Bytes mapped by a leaf at `level`. */
static inline uint64_t fx_level_size(enum mmu_paging_mode mode, unsigned int level)
{
	if (level == 1)
		return 4096;
	if (level == 2)
		return mode == MMU_MODE_32BIT ? 4ULL << 20 : 2ULL << 20;
	return 1ULL << 30;
}

static inline bool fx_is_ept(enum mmu_paging_mode mode)
{
	return mode == MMU_MODE_EPT4 || mode == MMU_MODE_EPT5;
}

static inline unsigned int fx_index(enum mmu_paging_mode mode, uint64_t va, unsigned int level)
{
	if (mode == MMU_MODE_32BIT)
		return (va >> (12 + 10 * (level - 1))) & 0x3FF;
	if (mode == MMU_MODE_PAE && level == 3)
		return (va >> 30) & 3;
	return (va >> (12 + 9 * (level - 1))) & 0x1FF;
}

static inline unsigned int fx_entry_size(enum mmu_paging_mode mode)
{
	return mode == MMU_MODE_32BIT ? 4 : 8;
}

static inline uint64_t fx_table_base(enum mmu_paging_mode mode, uint64_t root)
{
	if (mode == MMU_MODE_PAE)
		return root & FX_BITS(5, 31);
	if (mode == MMU_MODE_32BIT)
		return root & FX_BITS(12, 31);
	return root & FX_BITS(12, 51);
}

static inline uint64_t fx_read_entry(struct fixture *fx, enum mmu_paging_mode mode, uint64_t gpa)
{
	return mode == MMU_MODE_32BIT ? fx_r32(fx, gpa) : fx_r64(fx, gpa);
}

static inline void fx_write_entry(struct fixture *fx, enum mmu_paging_mode mode, uint64_t gpa,
				  uint64_t v)
{
	if (mode == MMU_MODE_32BIT)
		fx_w32(fx, gpa, (uint32_t)v);
	else
		fx_w64(fx, gpa, v);
}

/* Flags of a pointer to the next table: permissive, accessed. */
static inline uint64_t fx_table_flags(enum mmu_paging_mode mode, unsigned int level)
{
	if (fx_is_ept(mode))
		return FX_EPT_RWX;
	if (mode == MMU_MODE_PAE && level == 3)
		return FX_P; /* PDPTE: everything else is reserved */
	return FX_P | FX_RW | FX_US | FX_A;
}

/*
 * GPA of the entry for va at `level` under root, creating missing tables
 * above it. The result can be read and modified with fx_*_entry().
 */
static inline uint64_t fx_entry(struct fixture *fx, enum mmu_paging_mode mode, uint64_t root,
				uint64_t va, unsigned int level)
{
	uint64_t table = fx_table_base(mode, root);

	for (unsigned int l = fx_root_level(mode);; l--) {
		uint64_t gpa = table + fx_entry_size(mode) * fx_index(mode, va, l);
		uint64_t e;

		if (l == level)
			return gpa;
		e = fx_read_entry(fx, mode, gpa);
		if (!e) {
			e = fx_alloc(fx) | fx_table_flags(mode, l);
			fx_write_entry(fx, mode, gpa, e);
		}
		table = mode == MMU_MODE_32BIT ? e & FX_BITS(12, 31) : e & FX_BITS(12, 51);
	}
}

/* Installs leaf `value` for va at `level` (tables above created as needed). */
static inline uint64_t fx_map(struct fixture *fx, enum mmu_paging_mode mode, uint64_t root,
			      uint64_t va, unsigned int level, uint64_t value)
{
	uint64_t gpa = fx_entry(fx, mode, root, va, level);

	fx_write_entry(fx, mode, gpa, value);
	return gpa;
}

/* Clears `clear` from, then ORs `set` into, the entry for va at level. */
static inline void fx_modify(struct fixture *fx, enum mmu_paging_mode mode, uint64_t root,
			     uint64_t va, unsigned int level, uint64_t set, uint64_t clear)
{
	uint64_t gpa = fx_entry(fx, mode, root, va, level);

	fx_write_entry(fx, mode, gpa, (fx_read_entry(fx, mode, gpa) & ~clear) | set);
}

/* A root table for mode (a PAE PDPT is a whole page here). */
static inline uint64_t fx_root(struct fixture *fx)
{
	return fx_alloc(fx);
}

#endif
