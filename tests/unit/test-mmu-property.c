/* SPDX-License-Identifier: MIT */
/*
 * Property tests for mmu/:
 *  - random page-table forests in every paging mode (several address
 *    spaces sharing a "kernel half", random page sizes and leaf rights):
 *    every walk lands on the byte the builder put there, single-stage and
 *    under nested NPT/EPT, and unmapped addresses fault;
 *  - the permission and protection-key verdict of the walker equals an
 *    independent case-by-case reading of SDM Vol. 3A §4.6, exhaustively
 *    over entry rights, CR0.WP, EFER.NX, SMEP, SMAP, PKE, PKRU, EFLAGS.AC
 *    and every kind of access;
 *  - contexts from role registers that differ only in ignored bits are
 *    byte-identical.
 * Fixed seeds, so a failure reproduces.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mmu/mmu.h"
#include "tests/unit/mmu-config.h"
#include "tests/unit/mmu-fixture.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* xorshift64*: small and deterministic. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* ---------------------------------------------------------------- forests */

#define SPACES 4
#define MAPPINGS 256
/* Stage 2 maps L2 GPA x at L1 GPA x + S2_OFF. */
#define S2_OFF (1ULL << 40)

struct mapping {
	uint64_t va, frame, size, flags;
	uint8_t marker;
	bool kernel;
	unsigned int space;
};

struct forest {
	enum mmu_paging_mode mode;
	struct fixture *fx;
	uint64_t root[SPACES];
	struct mapping map[MAPPINGS];
	unsigned int n;
	uint64_t next_frame;
};

static unsigned int max_leaf_level(enum mmu_paging_mode mode)
{
	return mode == MMU_MODE_4LEVEL || mode == MMU_MODE_5LEVEL ? 3 : 2;
}

static bool long_mode(enum mmu_paging_mode mode)
{
	return mode == MMU_MODE_4LEVEL || mode == MMU_MODE_5LEVEL;
}

/* A slot as large as the largest page, so mappings never overlap. */
static uint64_t random_va(enum mmu_paging_mode mode, uint64_t *seed, bool kernel)
{
	uint64_t slot = fx_level_size(mode, max_leaf_level(mode));
	uint64_t va;

	switch (mode) {
	case MMU_MODE_32BIT:
	case MMU_MODE_PAE:
		/* User below 3 GiB, kernel above. */
		va = kernel ? 0xC0000000ULL + rnd(seed) % 0x40000000ULL : rnd(seed) % 0xC0000000ULL;
		return va & ~(slot - 1);
	case MMU_MODE_5LEVEL:
		va = rnd(seed) & ((1ULL << 56) - 1) & ~(slot - 1);
		return kernel ? va | 0xff00000000000000ULL : va;
	default:
		va = rnd(seed) & ((1ULL << 47) - 1) & ~(slot - 1);
		return kernel ? va | 0xffff800000000000ULL : va;
	}
}

static bool slot_taken(const struct forest *fo, uint64_t va, unsigned int space, bool kernel)
{
	uint64_t slot = fx_level_size(fo->mode, max_leaf_level(fo->mode));

	for (unsigned int i = 0; i < fo->n; i++) {
		const struct mapping *m = &fo->map[i];

		if ((m->va & ~(slot - 1)) == va && (kernel || m->kernel || m->space == space))
			return true;
	}
	return false;
}

/* Kernel mappings live in space 0; the other spaces share its top-level entries. */
static void share_kernel_half(struct forest *fo)
{
	unsigned int first, count, size = fx_entry_size(fo->mode);

	switch (fo->mode) {
	case MMU_MODE_32BIT:
		first = 768, count = 256;
		break;
	case MMU_MODE_PAE:
		first = 3, count = 1;
		break;
	default:
		first = 256, count = 256;
		break;
	}
	for (unsigned int s = 1; s < SPACES; s++)
		for (unsigned int i = first; i < first + count; i++)
			fx_write_entry(fo->fx, fo->mode, fo->root[s] + size * i,
				       fx_read_entry(fo->fx, fo->mode, fo->root[0] + size * i));
}

static uint64_t random_leaf_flags(enum mmu_paging_mode mode, uint64_t *seed)
{
	uint64_t r = rnd(seed), f = FX_P | FX_A;

	f |= (r & 1) ? FX_RW : 0;
	f |= (r & 2) ? FX_US : 0;
	f |= (r & 4) ? FX_D : 0;
	if (mode != MMU_MODE_32BIT && (r & 8))
		f |= FX_XD;
	if (long_mode(mode))
		f |= ((r >> 8) & 0xF) << 59; /* a protection key, unused with PKE off */
	return f;
}

static void build_forest(struct forest *fo, enum mmu_paging_mode mode, uint64_t seed)
{
	memset(fo, 0, sizeof(*fo));
	fo->mode = mode;
	fo->fx = fx_new();
	/* Data frames: 1 GiB up (32-bit modes stay below 4 GiB), 64 GiB up in long mode. */
	fo->next_frame = long_mode(mode) ? 64ULL << 30 : 1ULL << 30;
	for (unsigned int s = 0; s < SPACES; s++)
		fo->root[s] = fx_root(fo->fx);

	/* Kernel mappings first (space 0), then per-space user mappings. */
	for (int pass = 0; pass < 2; pass++) {
		unsigned int count = pass == 0 ? MAPPINGS / 4 : MAPPINGS;

		while (fo->n < count) {
			struct mapping *m = &fo->map[fo->n];
			unsigned int level = 1 + rnd(&seed) % max_leaf_level(mode);
			bool kernel = pass == 0;
			unsigned int space = kernel ? 0 : rnd(&seed) % SPACES;
			uint64_t va = random_va(mode, &seed, kernel);
			uint64_t offset;

			if (slot_taken(fo, va, space, kernel))
				continue;
			m->kernel = kernel;
			m->space = space;
			m->size = fx_level_size(mode, level);
			m->frame = (fo->next_frame + m->size - 1) & ~(m->size - 1);
			fo->next_frame = m->frame + m->size;
			offset = rnd(&seed) % m->size;
			m->va = va + offset;
			m->flags = random_leaf_flags(mode, &seed);
			m->marker = (uint8_t)(rnd(&seed) | 1);
			fx_map(fo->fx, mode, fo->root[space], va, level,
			       m->frame | m->flags | (level > 1 ? FX_PS : 0));
			*fx_ptr(fo->fx, m->frame + offset, true) = m->marker;
			fo->n++;
		}
		if (pass == 0)
			share_kernel_half(fo);
	}
}

/* Accesses the leaf rights allow with the default role (WP=1, NX=1, no SMEP/SMAP/PKE). */
static uint32_t allowed_access(const struct mapping *m, unsigned int pick)
{
	bool user = m->flags & FX_US, rw = m->flags & FX_RW, x = !(m->flags & FX_XD);

	switch (pick % 4) {
	case 1:
		return user ? MMU_ACCESS_USER : MMU_ACCESS_READ;
	case 2:
		return rw ? (MMU_ACCESS_WRITE | (user ? MMU_ACCESS_USER : 0)) : MMU_ACCESS_READ;
	case 3:
		return x ? MMU_ACCESS_FETCH : MMU_ACCESS_READ;
	default:
		return MMU_ACCESS_READ;
	}
}

static void check_forest_walks(struct forest *fo, const struct mmu_context *s1,
			       const struct mmu_context *s2, struct fixture *mem_fx,
			       uint64_t pa_off, const struct mmu_memory *mem_override)
{
	struct mmu_memory mem = mem_override ? *mem_override : fx_mem_map(mem_fx);

	for (unsigned int i = 0; i < fo->n; i++) {
		const struct mapping *m = &fo->map[i];

		for (unsigned int s = 0; s < SPACES; s++) {
			struct mmu_walk_request req = { .addr = m->va, .cr3 = fo->root[s],
							.access = allowed_access(m, i + s) };
			struct mmu_walk_result r;
			uint8_t *byte;

			if (!m->kernel && s != m->space)
				continue;
			assert_int_equal(mmu_walk(s1, s2, &mem, &req, &r), 0);
			if (r.fault.type != MMU_FAULT_NONE)
				fail_msg("%s mapping %u va 0x%llx: %s error 0x%x",
					 mmu_paging_mode_name(fo->mode), i,
					 (unsigned long long)m->va, mmu_fault_type_name(r.fault.type),
					 r.fault.error_code);
			assert_true(r.gpa == m->frame + (m->va & (m->size - 1)));
			assert_true(r.page_size == m->size);
			assert_true(r.pa == r.gpa + pa_off);
			byte = fx_ptr(mem_fx, r.pa, false);
			assert_non_null(byte);
			assert_int_equal(*byte, m->marker);
		}
	}
}

static void check_unmapped(struct forest *fo, const struct mmu_context *ctx, uint64_t seed)
{
	struct mmu_memory mem = fx_mem_map(fo->fx);

	for (int i = 0; i < 200; i++) {
		unsigned int space = rnd(&seed) % SPACES;
		uint64_t va = random_va(fo->mode, &seed, false);
		struct mmu_walk_request req = { .addr = va, .cr3 = fo->root[space] };
		struct mmu_walk_result r;

		if (slot_taken(fo, va, space, false))
			continue;
		assert_int_equal(mmu_walk(ctx, NULL, &mem, &req, &r), 0);
		assert_int_equal(r.fault.type, MMU_FAULT_PF);
		assert_int_equal(r.fault.error_code, 0);
	}
}

static void test_forests_single_stage(void **state)
{
	static const enum mmu_paging_mode modes[] = { MMU_MODE_32BIT, MMU_MODE_PAE,
						      MMU_MODE_4LEVEL, MMU_MODE_5LEVEL };
	struct mmu_cpu_features f = cfg_features();

	for (size_t i = 0; i < ARRAY_LEN(modes); i++) {
		struct mmu_role_regs regs = cfg_regs(modes[i]);
		struct forest *fo = malloc(sizeof(*fo));
		struct mmu_context ctx;

		struct mmu_ram_region *rg = calloc(FX_HASH_SIZE, sizeof(*rg));
		struct mmu_memory by_region;

		build_forest(fo, modes[i], 0x5eed0000 + i);
		assert_int_equal(mmu_context_init(&ctx, &regs, &f, 0), 0);
		check_forest_walks(fo, &ctx, NULL, fo->fx, 0, NULL);
		/* Again with every page a RAM region: the callback-free path. */
		by_region = fx_mem_regions(fo->fx, rg, FX_HASH_SIZE);
		check_forest_walks(fo, &ctx, NULL, fo->fx, 0, &by_region);
		/* And with the tables as one region, as a worker's guest RAM. */
		fx_flatten(fo->fx);
		by_region = fx_mem_flat(fo->fx, rg, FX_HASH_SIZE);
		check_forest_walks(fo, &ctx, NULL, fo->fx, 0, &by_region);
		free(rg);
		check_unmapped(fo, &ctx, 77 + i);
		fx_free(fo->fx);
		free(fo);
	}
}

/* The same forests as L2's page tables, under nested NPT or EPT. */
static void test_forests_nested(void **state)
{
	static const struct {
		enum mmu_paging_mode s1, s2;
	} pairs[] = {
		{ MMU_MODE_4LEVEL, MMU_MODE_EPT4 },  { MMU_MODE_5LEVEL, MMU_MODE_EPT5 },
		{ MMU_MODE_4LEVEL, MMU_MODE_4LEVEL }, { MMU_MODE_PAE, MMU_MODE_PAE },
		{ MMU_MODE_32BIT, MMU_MODE_5LEVEL },
	};
	struct mmu_cpu_features f = cfg_features();

	for (size_t i = 0; i < ARRAY_LEN(pairs); i++) {
		struct mmu_role_regs r1 = cfg_regs(pairs[i].s1), r2 = cfg_regs(pairs[i].s2);
		struct forest *fo = malloc(sizeof(*fo));
		struct fixture *l1 = fx_new();
		uint64_t s2_root = fx_root(l1);
		struct mmu_context s1, s2;
		uint64_t leaf = fx_is_ept(pairs[i].s2) ? FX_EPT_RWX | FX_EPT_WB
						       : FX_P | FX_RW | FX_US | FX_A;

		build_forest(fo, pairs[i].s1, 0xabc0 + i);
		/* Every L2 page (tables and marked data) moves to L1 GPA + S2_OFF. */
		for (unsigned int p = 0; p < FX_HASH_SIZE; p++) {
			struct fx_page *pg = &fo->fx->slot[p];

			if (!pg->used)
				continue;
			memcpy(fx_ptr(l1, pg->gfn * FX_PAGE + S2_OFF, true), pg->data, FX_PAGE);
			fx_map(l1, pairs[i].s2, s2_root, pg->gfn * FX_PAGE, 1,
			       (pg->gfn * FX_PAGE + S2_OFF) | leaf);
		}
		assert_int_equal(mmu_context_init(&s1, &r1, &f, MMU_CTX_GUEST_MODE), 0);
		if (fx_is_ept(pairs[i].s2))
			assert_int_equal(mmu_context_init_ept(&s2,
							      s2_root | 6 |
								      ((uint64_t)(fx_root_level(pairs[i].s2) - 1) << 3),
							      &f, 0, NULL),
					 0);
		else
			assert_int_equal(mmu_context_init_npt(&s2, r2.cr4, r2.efer, s2_root, &f, 0),
					 0);
		check_forest_walks(fo, &s1, &s2, l1, S2_OFF, NULL);
		fx_free(l1);
		fx_free(fo->fx);
		free(fo);
	}
}

/* ---------------------------------------------------------------- permissions */

struct perm_env {
	bool wp, nx, smep, smap, pke;
	bool ac;
	uint32_t pkru_bits; /* AD (bit 0), WD (bit 1) for the key in use */
};

/*
 * SDM Vol. 3A §4.6 and §4.6.2 read case by case — a formulation
 * independent of the walker's permission table. Returns the expected #PF
 * error code, or 0 if the access is allowed.
 */
static uint32_t sdm_expected(const struct perm_env *e, uint64_t pde, uint64_t pte,
			     uint32_t access)
{
	bool user_page = (pde & FX_US) && (pte & FX_US);
	bool writable = (pde & FX_RW) && (pte & FX_RW);
	bool executable = !((pde | pte) & FX_XD);
	bool user = access & MMU_ACCESS_USER, write = access & MMU_ACCESS_WRITE;
	bool fetch = access & MMU_ACCESS_FETCH, implicit = access & MMU_ACCESS_IMPLICIT;
	uint32_t i_bit = fetch && (e->smep || e->nx) ? MMU_PFERR_I : 0;
	uint32_t wu = (write ? MMU_PFERR_W : 0) | (user ? MMU_PFERR_U : 0);
	bool allowed, pk = false;

	/* With NXE=0 the XD bit is reserved: a reserved-bit fault at the first entry having it. */
	if (!e->nx && ((pde | pte) & FX_XD))
		return MMU_PFERR_P | MMU_PFERR_RSVD | wu | i_bit;

	if (user) {
		if (fetch)
			allowed = user_page && executable;
		else
			allowed = user_page && (!write || writable);
	} else if (fetch) {
		allowed = executable && !(e->smep && user_page);
	} else {
		bool smap_blocks = e->smap && user_page && (implicit || !e->ac);

		allowed = !smap_blocks && (!write || writable || !e->wp);
	}

	/* Protection keys: data accesses to user pages, user or supervisor. */
	if (e->pke && user_page && !fetch) {
		bool ad = e->pkru_bits & 1, wd = e->pkru_bits & 2;

		pk = ad || (wd && write && (user || e->wp));
	}
	if (allowed && !pk)
		return 0;
	return MMU_PFERR_P | wu | i_bit | (pk ? MMU_PFERR_PK : 0);
}

static void test_permissions_exhaustive(void **state)
{
	static const uint32_t accesses[] = {
		MMU_ACCESS_READ,
		MMU_ACCESS_WRITE,
		MMU_ACCESS_FETCH,
		MMU_ACCESS_USER,
		MMU_ACCESS_USER | MMU_ACCESS_WRITE,
		MMU_ACCESS_USER | MMU_ACCESS_FETCH,
		MMU_ACCESS_IMPLICIT,
		MMU_ACCESS_IMPLICIT | MMU_ACCESS_WRITE,
	};
	const uint64_t key = 5;
	struct mmu_cpu_features f = cfg_features();
	struct fixture *fx = fx_new();
	struct mmu_ram_region rg[8];
	struct mmu_memory mems[2];
	uint64_t root = fx_root(fx), va = cfg_gva(MMU_MODE_4LEVEL);
	uint64_t pde_gpa, pte_gpa;
	unsigned long walks = 0;

	fx_map(fx, MMU_MODE_4LEVEL, root, va, 1, 0x12345000 | FX_P);
	pde_gpa = fx_entry(fx, MMU_MODE_4LEVEL, root, va, 2);
	pte_gpa = fx_entry(fx, MMU_MODE_4LEVEL, root, va, 1);
	/* Both walk loops: through the map callback, and the tables as one region. */
	mems[0] = fx_mem_map(fx);
	fx_flatten(fx);
	mems[1] = fx_mem_flat(fx, rg, ARRAY_LEN(rg));

	for (unsigned int cfg = 0; cfg < 32; cfg++) {
		struct perm_env e = { .wp = cfg & 1, .nx = cfg & 2, .smep = cfg & 4,
				      .smap = cfg & 8, .pke = cfg & 16 };
		struct mmu_role_regs regs = cfg_regs(MMU_MODE_4LEVEL);
		struct mmu_context ctx;

		regs.cr0 = e.wp ? regs.cr0 : regs.cr0 & ~MMU_CR0_WP;
		regs.efer = e.nx ? regs.efer : regs.efer & ~MMU_EFER_NX;
		regs.cr4 |= (e.smep ? MMU_CR4_SMEP : 0) | (e.smap ? MMU_CR4_SMAP : 0) |
			    (e.pke ? MMU_CR4_PKE : 0);
		assert_int_equal(mmu_context_init(&ctx, &regs, &f, 0), 0);

		/* PDE and PTE rights: R/W, U/S, XD each. */
		for (unsigned int rights = 0; rights < 64; rights++) {
			uint64_t pde = (fx_r64(fx, pde_gpa) & FX_BITS(12, 51)) | FX_P | FX_A;
			uint64_t pte = 0x12345000 | FX_P | FX_A | (key << 59);

			pde |= (rights & 1 ? FX_RW : 0) | (rights & 2 ? FX_US : 0) |
			       (rights & 4 ? FX_XD : 0);
			pte |= (rights & 8 ? FX_RW : 0) | (rights & 16 ? FX_US : 0) |
			       (rights & 32 ? FX_XD : 0);
			fx_w64(fx, pde_gpa, pde);
			fx_w64(fx, pte_gpa, pte);

			for (size_t a = 0; a < ARRAY_LEN(accesses); a++) {
				for (unsigned int env = 0; env < 8; env++) {
					struct mmu_walk_request req = {
						.addr = va, .cr3 = root, .access = accesses[a],
						.eflags_ac = env & 1,
						.pkru = (uint32_t)(env >> 1) << (2 * key),
					};
					struct mmu_walk_result r;
					uint32_t want, got;

					e.ac = env & 1;
					e.pkru_bits = env >> 1;
					want = sdm_expected(&e, pde, pte, accesses[a]);
					for (int m = 0; m < 2; m++) {
						assert_int_equal(mmu_walk(&ctx, NULL, &mems[m], &req, &r), 0);
						got = r.fault.type == MMU_FAULT_PF ? r.fault.error_code : 0;
						if (got != want || (r.fault.type != MMU_FAULT_NONE) != (want != 0))
							fail_msg("cfg %u rights 0x%x access 0x%x env %u memory %d: got 0x%x, SDM says 0x%x",
								 cfg, rights, accesses[a], env, m, got, want);
						walks++;
					}
				}
			}
		}
	}
	assert_int_equal(walks, 2UL * 32 * 64 * ARRAY_LEN(accesses) * 8);
	fx_free(fx);
}

/* ---------------------------------------------------------------- ignored bits */

static void test_contexts_ignore_other_bits(void **state)
{
	const uint64_t cr0_ignored = ~(MMU_CR0_PG | MMU_CR0_WP);
	const uint64_t cr4_ignored = ~(MMU_CR4_PSE | MMU_CR4_PAE | MMU_CR4_LA57 | MMU_CR4_SMEP |
				       MMU_CR4_SMAP | MMU_CR4_PKE);
	const uint64_t efer_ignored = ~(MMU_EFER_NX | MMU_EFER_LMA);
	struct mmu_cpu_features f = cfg_features();
	uint64_t seed = 4242;

	for (int i = 0; i < 5000; i++) {
		struct mmu_role_regs a = { rnd(&seed), rnd(&seed), rnd(&seed) };
		struct mmu_role_regs b = {
			a.cr0 ^ (rnd(&seed) & cr0_ignored),
			a.cr4 ^ (rnd(&seed) & cr4_ignored),
			a.efer ^ (rnd(&seed) & efer_ignored),
		};
		struct mmu_context ca, cb;

		assert_int_equal(mmu_context_init(&ca, &a, &f, 0), 0);
		assert_int_equal(mmu_context_init(&cb, &b, &f, 0), 0);
		assert_memory_equal(&ca, &cb, sizeof(ca));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forests_single_stage),
		cmocka_unit_test(test_forests_nested),
		cmocka_unit_test(test_permissions_exhaustive),
		cmocka_unit_test(test_contexts_ignore_other_bits),
	};
	return cmocka_run_group_tests_name("mmu-property", tests, NULL, NULL);
}
