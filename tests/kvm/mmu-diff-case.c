/* SPDX-License-Identifier: MIT */
/*
 * Case generator of the mmu/ differential test. Every case is drawn from
 * its own PRNG stream, seeded by (run seed, case index). The generator
 * knows only the architectural formats (SDM Vol. 3A §4.3-§4.5), not
 * mmu/'s rules: it flips bits that may or may not be reserved and leaves
 * the verdict to mmu/ and KVM.
 */
#include <string.h>

#include "tests/kvm/mmu-diff-case.h"
#include "tests/kvm/mmu-diff.h"
#include "util/macro.h"

/* Entry bits (SDM Vol. 3A Tables 4-4 to 4-20). */
#define PTE_P BIT(0)
#define PTE_RW BIT(1)
#define PTE_US BIT(2)
#define PTE_PWT BIT(3)
#define PTE_PCD BIT(4)
#define PTE_A BIT(5)
#define PTE_D BIT(6)
#define PTE_PS BIT(7)
#define PTE_G BIT(8)
#define PTE_PAT_LARGE BIT(12)
#define PTE_XD BIT(63)
#define PTE_IGNORED_LOW BITS(9, 11)
#define PTE_PKEY_SHIFT 59

#define PAGE_SIZE_4K 0x1000ULL
#define PAGE_SIZE_2M 0x200000ULL
#define PAGE_SIZE_4M 0x400000ULL
#define PAGE_SIZE_1G 0x40000000ULL

/* A table pointer into guest-physical space that no memory slot backs
 * (below MAXPHYADDR, so it is not a reserved-bit fault either). */
#define UNBACKED_TABLE_64 0x7F00000000ULL
#define UNBACKED_TABLE_32 0xF0000000ULL

/* The first NR_CASE_PAGES hold nothing but the current case. */
#define NR_CASE_PAGES 10

const uint64_t diff_table_pages[] = {
	DIFF_CASE_ROOT, DIFF_CASE_TABLE(0), DIFF_CASE_TABLE(1), DIFF_CASE_TABLE(2),
	DIFF_CASE_TABLE(3), DIFF_ROM_TABLE(0), DIFF_ROM_TABLE(1), DIFF_ROM_TABLE(2),
	DIFF_ROM_TABLE(3), DIFF_ROM_TABLE(4),
	/* the scaffolding's */
	DIFF_PT32, DIFF_PT64, DIFF_PD64, DIFF_PDPT64, DIFF_PML4,
};
const unsigned int diff_nr_table_pages = ARRAY_SIZE(diff_table_pages);

/* ---------------------------------------------------------------- PRNG */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* xoshiro256** seeded through splitmix64 (Blackman and Vigna, 2018). */
void diff_rng_seed(struct diff_rng *r, uint64_t seed, uint64_t index)
{
	uint64_t x = seed;

	x ^= splitmix64(&x) + index;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t v, int k)
{
	return (v << k) | (v >> (64 - k));
}

uint64_t diff_rng_next(struct diff_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t diff_rng_below(struct diff_rng *r, uint64_t n)
{
	return diff_rng_next(r) % n;
}

bool diff_rng_chance(struct diff_rng *r, unsigned int percent)
{
	return diff_rng_below(r, 100) < percent;
}

/* A random bit from lo..hi, as a mask. */
static uint64_t random_bit(struct diff_rng *r, unsigned int lo, unsigned int hi)
{
	return BIT(lo + diff_rng_below(r, hi - lo + 1));
}

/* ---------------------------------------------------------------- geometry */

static unsigned int mode_levels(enum mmu_paging_mode mode)
{
	switch (mode) {
	case MMU_MODE_32BIT:
		return 2;
	case MMU_MODE_PAE:
		return 3;
	case MMU_MODE_4LEVEL:
		return 4;
	case MMU_MODE_5LEVEL:
		return 5;
	default:
		return 0;
	}
}

static bool mode_is_long(enum mmu_paging_mode mode)
{
	return mode == MMU_MODE_4LEVEL || mode == MMU_MODE_5LEVEL;
}

static unsigned int entry_size(enum mmu_paging_mode mode)
{
	return mode == MMU_MODE_32BIT ? 4 : 8;
}

static unsigned int level_shift(enum mmu_paging_mode mode, unsigned int level)
{
	return 12 + (mode == MMU_MODE_32BIT ? 10 : 9) * (level - 1);
}

static unsigned int level_index(enum mmu_paging_mode mode, unsigned int level, uint64_t gva)
{
	unsigned int bits = mode == MMU_MODE_32BIT ? 10 : 9;

	if (mode == MMU_MODE_PAE && level == 3)
		bits = 2;
	return (unsigned int)(gva >> level_shift(mode, level)) & ((1U << bits) - 1);
}

/* The table holding c's level-`level` entries: the root, then one page per
 * lower level, or the level's ROM page. */
static uint64_t level_table(const struct diff_case *c, unsigned int level)
{
	unsigned int top = mode_levels(c->mode);

	if (c->rom_level && level == c->rom_level)
		return DIFF_ROM_TABLE(level - 1);
	return level == top ? DIFF_CASE_ROOT : DIFF_CASE_TABLE(top - 1 - level);
}

static uint64_t leaf_page_size(enum mmu_paging_mode mode, unsigned int leaf_level)
{
	if (leaf_level == 3)
		return PAGE_SIZE_1G;
	if (leaf_level == 2)
		return mode == MMU_MODE_32BIT ? PAGE_SIZE_4M : PAGE_SIZE_2M;
	return PAGE_SIZE_4K;
}

/* ---------------------------------------------------------------- memory */

void *diff_memory_ptr(const struct diff_memory *mem, uint64_t gpa, size_t len)
{
	if (gpa + len <= DIFF_RAM_SIZE)
		return mem->low + gpa;
	if (gpa >= DIFF_ROM_BASE && gpa + len <= DIFF_ROM_BASE + DIFF_ROM_SIZE)
		return mem->rom + (gpa - DIFF_ROM_BASE);
	if (gpa >= DIFF_DATA_HIGH && gpa + len <= DIFF_DATA_HIGH + DIFF_DATA_HIGH_SIZE)
		return mem->high + (gpa - DIFF_DATA_HIGH);
	return NULL;
}

static void put_entry(const struct diff_memory *mem, uint64_t gpa, uint64_t value,
		      unsigned int size)
{
	void *p = diff_memory_ptr(mem, gpa, size);
	uint32_t v32 = (uint32_t)value;

	if (!p)
		return;
	if (size == 4)
		memcpy(p, &v32, 4);
	else
		memcpy(p, &value, 8);
}

static bool is_user_page(uint64_t gpa)
{
	return gpa == DIFF_UCODE64 || gpa == DIFF_UCODE32 || gpa == DIFF_USTACK_TOP - PAGE_SIZE_4K;
}

void diff_scaffold_tables_install(const struct diff_memory *mem)
{
	/* A and D preset everywhere: the scaffolding is used by every case and
	 * must never change, so a change is the guest's (or KVM's) doing. */
	const uint64_t table = PTE_P | PTE_RW | PTE_US | PTE_A;

	for (uint64_t gpa = 0; gpa < DIFF_SCAFFOLD_END; gpa += PAGE_SIZE_4K) {
		uint64_t leaf = gpa | PTE_P | PTE_RW | PTE_A | PTE_D;

		if (is_user_page(gpa))
			leaf |= PTE_US;
		put_entry(mem, DIFF_PT32 + gpa / PAGE_SIZE_4K * 4, leaf, 4);
		put_entry(mem, DIFF_PT64 + gpa / PAGE_SIZE_4K * 8, leaf, 8);
	}
	put_entry(mem, DIFF_PD64, DIFF_PT64 | table, 8);
	put_entry(mem, DIFF_PDPT64, DIFF_PD64 | table, 8);
	put_entry(mem, DIFF_PML4, DIFF_PDPT64 | table, 8);
}

/* Entry 0 of the case's root: the way to the scaffolding. */
static uint64_t scaffold_root_entry(enum mmu_paging_mode mode)
{
	const uint64_t table = PTE_P | PTE_RW | PTE_US | PTE_A;

	switch (mode) {
	case MMU_MODE_32BIT:
		return DIFF_PT32 | table;
	case MMU_MODE_PAE:
		return DIFF_PD64 | PTE_P; /* PDPTE: only P (SDM Table 4-8) */
	case MMU_MODE_4LEVEL:
		return DIFF_PDPT64 | table;
	case MMU_MODE_5LEVEL:
		return DIFF_PML4 | table;
	default:
		return 0;
	}
}

/* x86 data-segment descriptor (SDM Vol. 3A §3.4.5): base, limit 4 GiB,
 * present, DPL 3, read/write, accessed bit as given. */
static uint64_t data_descriptor(uint32_t base, bool accessed)
{
	uint64_t type = accessed ? 0x3 : 0x2;

	return 0xFFFFULL | ((uint64_t)(base & 0xFFFFFF) << 16) | (type << 40) | (1ULL << 44) |
	       (3ULL << 45) | (1ULL << 47) | (0xFULL << 48) | (1ULL << 54) | (1ULL << 55) |
	       ((uint64_t)(base >> 24) << 56);
}

static void install_payload(const struct diff_case *c, const struct diff_memory *mem)
{
	uint8_t *p = diff_memory_ptr(mem, c->data_gpa, DIFF_FETCH_PAYLOAD_SIZE);
	uint64_t desc;

	if (!p)
		return;
	switch (c->access) {
	case DIFF_FETCH:
		/* mov $value, %eax; out %eax, $DIFF_PORT_FETCHED; hlt */
		p[0] = 0xB8;
		memcpy(p + 1, &c->value, 4);
		p[5] = 0xE7;
		p[6] = DIFF_PORT_FETCHED;
		p[7] = 0xF4;
		break;
	case DIFF_DESC_READ:
	case DIFF_DESC_WRITE:
		desc = data_descriptor(c->value, c->access == DIFF_DESC_READ);
		memcpy(p, &desc, 8);
		break;
	default:
		break;
	}
}

void diff_case_install(const struct diff_case *c, const struct diff_memory *mem)
{
	unsigned int size = entry_size(c->mode);

	for (unsigned int i = 0; i < NR_CASE_PAGES; i++)
		memset(diff_memory_ptr(mem, diff_table_pages[i], PAGE_SIZE_4K), 0, PAGE_SIZE_4K);
	if (c->mode != MMU_MODE_NONE)
		put_entry(mem, level_table(c, mode_levels(c->mode)), scaffold_root_entry(c->mode),
			  size);
	for (unsigned int i = 0; i < c->nr_entries; i++)
		put_entry(mem, c->entries[i].gpa, c->entries[i].value, size);
	install_payload(c, mem);
}

uint32_t diff_pattern_word(uint64_t gpa)
{
	uint64_t x = gpa;

	return (uint32_t)splitmix64(&x);
}

static void pattern_fill_range(uint8_t *p, uint64_t gpa, uint64_t size)
{
	for (uint64_t off = 0; off < size; off += 4) {
		uint32_t w = diff_pattern_word(gpa + off);
		memcpy(p + off, &w, 4);
	}
}

void diff_pattern_fill(const struct diff_memory *mem)
{
	pattern_fill_range(mem->low + DIFF_DATA_LOW, DIFF_DATA_LOW, DIFF_DATA_LOW_SIZE);
	pattern_fill_range(mem->high, DIFF_DATA_HIGH, DIFF_DATA_HIGH_SIZE);
}

void diff_pattern_restore(const struct diff_memory *mem, uint64_t gpa)
{
	uint8_t *p = diff_memory_ptr(mem, gpa, DIFF_FETCH_PAYLOAD_SIZE);

	if (p)
		pattern_fill_range(p, gpa, DIFF_FETCH_PAYLOAD_SIZE);
}

/* ---------------------------------------------------------------- control registers */

static struct mmu_role_regs draw_regs(struct diff_rng *r, const struct mmu_cpu_features *f,
				      enum mmu_paging_mode mode)
{
	/* PE, ET, NE; WP at random; PG for every paging mode. */
	struct mmu_role_regs regs = { .cr0 = MMU_CR0_PE | MMU_CR0_ET | MMU_CR0_NE };

	if (diff_rng_chance(r, 50))
		regs.cr0 |= MMU_CR0_WP;
	if (mode != MMU_MODE_NONE)
		regs.cr0 |= MMU_CR0_PG;
	/* Bits the role ignores, and the ones it ignores in this mode (E1-E3):
	 * PSE outside 32-bit paging, LA57 and PKE outside long mode, PAE and
	 * NX with paging off. */
	if (diff_rng_chance(r, 50))
		regs.cr4 |= MMU_CR4_PGE;
	if (diff_rng_chance(r, mode == MMU_MODE_32BIT ? 70 : 30))
		regs.cr4 |= MMU_CR4_PSE;
	if (mode == MMU_MODE_PAE || mode_is_long(mode) ||
	    (mode == MMU_MODE_NONE && diff_rng_chance(r, 30)))
		regs.cr4 |= MMU_CR4_PAE;
	if (f->la57 && (mode == MMU_MODE_5LEVEL || (!mode_is_long(mode) && diff_rng_chance(r, 20))))
		regs.cr4 |= MMU_CR4_LA57;
	if (f->smep && diff_rng_chance(r, 50))
		regs.cr4 |= MMU_CR4_SMEP;
	if (f->smap && diff_rng_chance(r, 50))
		regs.cr4 |= MMU_CR4_SMAP;
	if (f->pku && diff_rng_chance(r, 50))
		regs.cr4 |= MMU_CR4_PKE;
	if (f->nx && diff_rng_chance(r, 70))
		regs.efer |= MMU_EFER_NX;
	if (diff_rng_chance(r, 50))
		regs.efer |= MMU_EFER_SCE;
	if (mode_is_long(mode))
		regs.efer |= MMU_EFER_LME | MMU_EFER_LMA;
	else if (mode == MMU_MODE_NONE && f->lm && diff_rng_chance(r, 30))
		regs.efer |= MMU_EFER_LME; /* LME without PG: long mode not active */
	return regs;
}

/* Each key's AD and WD bit set one time in four (SDM Vol. 3A §4.6.2). */
static uint32_t draw_pkru(struct diff_rng *r)
{
	uint32_t pkru = 0;

	for (unsigned int bit = 0; bit < 32; bit++)
		if (diff_rng_chance(r, 25))
			pkru |= 1U << bit;
	return pkru;
}

/* ---------------------------------------------------------------- target */

static unsigned int draw_leaf_level(struct diff_rng *r, const struct diff_case *c)
{
	unsigned int roll = (unsigned int)diff_rng_below(r, 100);

	switch (c->mode) {
	case MMU_MODE_32BIT:
		return (c->regs.cr4 & MMU_CR4_PSE) && roll < 40 ? 2 : 1;
	case MMU_MODE_PAE:
		return roll < 35 ? 2 : 1;
	case MMU_MODE_4LEVEL:
	case MMU_MODE_5LEVEL:
		return roll < 8 ? 3 : roll < 40 ? 2 : 1;
	default:
		return 0;
	}
}

/* Whether the leaf can reach the data slot above 4 GiB: any 64-bit entry,
 * and a 4 MiB 32-bit PDE through PSE-36. */
static bool can_map_high(const struct diff_case *c, unsigned int leaf_level,
			 const struct mmu_cpu_features *f)
{
	if (c->mode == MMU_MODE_PAE || mode_is_long(c->mode))
		return true;
	return c->mode == MMU_MODE_32BIT && leaf_level == 2 && f->pse36;
}

/* The data address: a random aligned spot in a data page, room for an
 * 8-byte payload, in a slot the leaf can reach. */
static uint64_t draw_data_gpa(struct diff_rng *r, const struct diff_case *c, bool high)
{
	uint64_t base = high ? DIFF_DATA_HIGH : DIFF_DATA_LOW;
	uint64_t size = high ? DIFF_DATA_HIGH_SIZE : DIFF_DATA_LOW_SIZE;
	unsigned int align = (c->access == DIFF_READ || c->access == DIFF_WRITE) ? 4 : 8;
	uint64_t page = base + diff_rng_below(r, size / PAGE_SIZE_4K) * PAGE_SIZE_4K;

	return page + diff_rng_below(r, (PAGE_SIZE_4K - 8) / align + 1) * align;
}

static uint64_t sign_extend(uint64_t v, unsigned int top_bit)
{
	unsigned int shift = 63 - top_bit;

	return (uint64_t)((int64_t)(v << shift) >> shift);
}

/* Target address: the offset within the page comes from the data address,
 * the indices above it are random, and the root index is never 0 (the
 * scaffolding's). In IA-32e mode it is canonical, except in a few cases
 * that expect #GP. */
static uint64_t draw_gva(struct diff_rng *r, const struct diff_case *c)
{
	unsigned int top = mode_levels(c->mode);
	uint64_t gva = diff_rng_next(r);

	if (c->mode == MMU_MODE_NONE)
		return c->data_gpa;
	gva = (gva & ~(c->page_size - 1)) | (c->data_gpa & (c->page_size - 1));
	if (!mode_is_long(c->mode))
		gva &= 0xFFFFFFFFULL;
	if (level_index(c->mode, top, gva) == 0)
		gva |= 1ULL << level_shift(c->mode, top);
	if (mode_is_long(c->mode)) {
		unsigned int width = c->mode == MMU_MODE_5LEVEL ? 57 : 48;

		gva = sign_extend(gva, width - 1);
		if (c->access != DIFF_DESC_READ && c->access != DIFF_DESC_WRITE &&
		    diff_rng_chance(r, 4))
			gva ^= random_bit(r, width, 63);
	}
	return gva;
}

/* ---------------------------------------------------------------- entries */

static uint64_t draw_common_bits(struct diff_rng *r, const struct diff_case *c, unsigned int rw_pct,
				 unsigned int us_pct)
{
	uint64_t v = PTE_P;

	if (diff_rng_chance(r, rw_pct))
		v |= PTE_RW;
	if (diff_rng_chance(r, us_pct))
		v |= PTE_US;
	if (diff_rng_chance(r, 50))
		v |= PTE_A;
	if (diff_rng_chance(r, 20))
		v |= diff_rng_chance(r, 50) ? PTE_PWT : PTE_PCD;
	v |= diff_rng_next(r) & PTE_IGNORED_LOW;
	if (entry_size(c->mode) == 8) {
		if (diff_rng_chance(r, 15))
			v |= PTE_XD;
		/* Ignored or protection-key bits in IA-32e paging, reserved in PAE
		 * paging (MMU.md §2.2). */
		if (diff_rng_chance(r, 6))
			v |= random_bit(r, 52, 62);
	}
	return v;
}

static uint64_t draw_table_entry(struct diff_rng *r, const struct diff_case *c, unsigned int level)
{
	uint64_t v = draw_common_bits(r, c, 85, 85) | level_table(c, level - 1);

	if (c->mode == MMU_MODE_32BIT && !(c->regs.cr4 & MMU_CR4_PSE) && diff_rng_chance(r, 30))
		v |= PTE_PS; /* ignored without CR4.PSE (E9) */
	/* Ignored in an entry that references a table (SDM Tables 4-5, 4-15
	 * to 4-17); G is reserved in AMD PML4Es, which vendor bits model. */
	if (diff_rng_chance(r, 50))
		v |= PTE_D;
	if (diff_rng_chance(r, 20))
		v |= PTE_G;
	return v;
}

/* The frame bits of a leaf for pa, including PSE-36 for 4 MiB pages
 * (SDM Vol. 3A Table 4-4: PDE[16:13] hold PA[35:32]). */
static uint64_t leaf_frame(const struct diff_case *c, uint64_t pa)
{
	uint64_t frame = pa & ~(c->page_size - 1);

	if (c->mode == MMU_MODE_32BIT && c->page_size == PAGE_SIZE_4M)
		return (frame & 0xFFC00000ULL) | ((frame >> 32) & 0xF) << 13;
	return frame;
}

static uint64_t draw_leaf_entry(struct diff_rng *r, const struct diff_case *c, unsigned int level)
{
	uint64_t v = draw_common_bits(r, c, 70, 70) | leaf_frame(c, c->data_gpa);

	if (diff_rng_chance(r, 50))
		v |= PTE_D;
	if (diff_rng_chance(r, 20))
		v |= PTE_G;
	if (diff_rng_chance(r, 20))
		v |= level > 1 ? PTE_PAT_LARGE : PTE_PS; /* bit 7 is PAT in a PTE */
	if (level > 1)
		v |= PTE_PS;
	if (mode_is_long(c->mode) && diff_rng_chance(r, 25))
		v |= diff_rng_below(r, 16) << PTE_PKEY_SHIFT;
	return v;
}

static uint64_t draw_pdpte_register(struct diff_rng *r, const struct diff_case *c)
{
	/* Only P, PWT, PCD and the ignored bits 11:9 (SDM Table 4-8): other
	 * bits would make the MOV to CR3 fault, which is no walk. */
	uint64_t v = PTE_P | level_table(c, 2);

	if (diff_rng_chance(r, 20))
		v |= diff_rng_chance(r, 50) ? PTE_PWT : PTE_PCD;
	v |= diff_rng_next(r) & PTE_IGNORED_LOW;
	if (diff_rng_chance(r, 5))
		v &= ~PTE_P;
	return v;
}

/* Bits that may be reserved in this entry, one of which a defect sets:
 * address bits at or above MAXPHYADDR, the low address bits of a large
 * page, and PS where no page can end. */
static uint64_t draw_maybe_reserved_bit(struct diff_rng *r, const struct diff_case *c,
					unsigned int level, bool leaf, unsigned int maxphyaddr)
{
	uint64_t candidates[4];
	unsigned int n = 0;

	if (entry_size(c->mode) == 8 && maxphyaddr < 52)
		candidates[n++] = random_bit(r, maxphyaddr, c->mode == MMU_MODE_PAE ? 62 : 51);
	/* A 4 MiB PDE's bits 16:13 are PSE-36 address bits, legal but outside
	 * this guest's RAM: only 21:17 are drawn. */
	if (leaf && level == 2)
		candidates[n++] =
			c->mode == MMU_MODE_32BIT ? random_bit(r, 17, 21) : random_bit(r, 13, 20);
	if (leaf && level == 3)
		candidates[n++] = random_bit(r, 13, 29);
	if (!leaf && level >= 4)
		candidates[n++] = PTE_PS;
	return n ? candidates[diff_rng_below(r, n)] : 0;
}

static uint64_t apply_defects(struct diff_rng *r, const struct diff_case *c, unsigned int level,
			      bool leaf, uint64_t v, unsigned int maxphyaddr)
{
	if (diff_rng_chance(r, 4))
		v |= draw_maybe_reserved_bit(r, c, level, leaf, maxphyaddr);
	if (!leaf && diff_rng_chance(r, 1)) {
		uint64_t frame = c->mode == MMU_MODE_32BIT ? 0xFFFFF000ULL : BITS(12, 51);

		v = (v & ~frame) |
		    (c->mode == MMU_MODE_32BIT ? UNBACKED_TABLE_32 : UNBACKED_TABLE_64);
	}
	if (diff_rng_chance(r, 3))
		v &= ~PTE_P;
	return v;
}

static void add_entry(struct diff_case *c, unsigned int level, uint64_t value, bool from_register)
{
	uint64_t gpa = level_table(c, level) +
		       (uint64_t)level_index(c->mode, level, c->gva) * entry_size(c->mode);

	c->entries[c->nr_entries++] = (struct diff_entry){
		.gpa = gpa,
		.value = value,
		.level = (uint8_t)level,
		.from_register = from_register,
	};
}

/* One case in 20 keeps one of its tables in ROM (not PAE's PDPT, whose
 * entries the walk takes from the PDPTE registers). */
static unsigned int draw_rom_level(struct diff_rng *r, const struct diff_case *c,
				   unsigned int leaf_level)
{
	unsigned int level;

	if (!diff_rng_chance(r, 5))
		return 0;
	level = leaf_level + (unsigned int)diff_rng_below(r, mode_levels(c->mode) - leaf_level + 1);
	return c->mode == MMU_MODE_PAE && level == 3 ? 0 : level;
}

static void draw_chain(struct diff_rng *r, struct diff_case *c, unsigned int leaf_level,
		       unsigned int maxphyaddr)
{
	c->rom_level = draw_rom_level(r, c, leaf_level);
	for (unsigned int level = mode_levels(c->mode); level >= leaf_level; level--) {
		bool leaf = level == leaf_level;
		uint64_t v;

		if (c->mode == MMU_MODE_PAE && level == 3) {
			add_entry(c, level, draw_pdpte_register(r, c), true);
			continue;
		}
		v = leaf ? draw_leaf_entry(r, c, level) : draw_table_entry(r, c, level);
		add_entry(c, level, apply_defects(r, c, level, leaf, v, maxphyaddr), false);
	}
}

/* PAE: the PDPTE registers hold what the root table holds. */
static void set_pdptes(struct diff_case *c)
{
	if (c->mode != MMU_MODE_PAE)
		return;
	c->pdptrs[0] = scaffold_root_entry(c->mode);
	for (unsigned int i = 0; i < c->nr_entries; i++)
		if (c->entries[i].from_register)
			c->pdptrs[(c->entries[i].gpa - DIFF_CASE_ROOT) / 8] = c->entries[i].value;
}

static void set_cr3_and_pdptes(struct diff_rng *r, struct diff_case *c)
{
	c->cr3 = level_table(c, mode_levels(c->mode));
	/* CR3.PWT/PCD: no effect on the walk. */
	if (c->mode != MMU_MODE_PAE && diff_rng_chance(r, 20))
		c->cr3 |= diff_rng_chance(r, 50) ? PTE_PWT : PTE_PCD;
	set_pdptes(c);
}

/* ---------------------------------------------------------------- cases */

void diff_generator_init(struct diff_generator *gen, const struct mmu_cpu_features *features)
{
	memset(gen, 0, sizeof(*gen));
	gen->features = *features;
	gen->modes[gen->nr_modes++] = MMU_MODE_NONE;
	gen->modes[gen->nr_modes++] = MMU_MODE_32BIT;
	if (features->pae)
		gen->modes[gen->nr_modes++] = MMU_MODE_PAE;
	if (features->lm)
		gen->modes[gen->nr_modes++] = MMU_MODE_4LEVEL;
	if (features->lm && features->la57)
		gen->modes[gen->nr_modes++] = MMU_MODE_5LEVEL;
}

void diff_generator_demote_mode(struct diff_generator *gen, enum mmu_paging_mode mode)
{
	for (unsigned int i = 1; i < gen->nr_modes; i++)
		if (gen->modes[i] == mode)
			gen->demoted[i] = true;
}

static bool any_demoted(const struct diff_generator *gen)
{
	for (unsigned int i = 1; i < gen->nr_modes; i++)
		if (gen->demoted[i])
			return true;
	return false;
}

/* Weight of modes[i] in the draw: all 1 unless some are demoted, then 1
 * for those and 2 for the others. */
static unsigned int mode_weight(const struct diff_generator *gen, unsigned int i)
{
	return any_demoted(gen) && !gen->demoted[i] ? 2 : 1;
}

static enum mmu_paging_mode draw_mode(struct diff_rng *r, const struct diff_generator *gen)
{
	uint64_t total = 0, roll;
	unsigned int i;

	/* Paging off has nothing to vary but the access: 1 case in 20. */
	if (diff_rng_chance(r, 5) || gen->nr_modes == 1)
		return MMU_MODE_NONE;
	for (i = 1; i < gen->nr_modes; i++)
		total += mode_weight(gen, i);
	roll = diff_rng_below(r, total);
	for (i = 1; roll >= mode_weight(gen, i); i++)
		roll -= mode_weight(gen, i);
	return gen->modes[i];
}

static enum diff_access draw_access(struct diff_rng *r)
{
	unsigned int roll = (unsigned int)diff_rng_below(r, 100);

	if (roll < 30)
		return DIFF_READ;
	if (roll < 60)
		return DIFF_WRITE;
	if (roll < 85)
		return DIFF_FETCH;
	return roll < 93 ? DIFF_DESC_READ : DIFF_DESC_WRITE;
}

void diff_case_generate(const struct diff_generator *gen, uint64_t seed, uint64_t index,
			struct diff_case *ret)
{
	const struct mmu_cpu_features *f = &gen->features;
	struct diff_case c = { .seed = seed, .index = index };
	unsigned int leaf_level;
	struct diff_rng r;

	diff_rng_seed(&r, seed, index);
	c.mode = draw_mode(&r, gen);
	c.cpl = diff_rng_chance(&r, 50) ? 3 : 0;
	c.access = draw_access(&r);
	c.regs = draw_regs(&r, f, c.mode);
	c.eflags_ac = diff_rng_chance(&r, 50);
	c.pku = f->pku;
	if (c.pku)
		c.pkru = draw_pkru(&r); /* loaded even with CR4.PKE=0, where it must not count */
	c.value = (uint32_t)diff_rng_next(&r);
	leaf_level = draw_leaf_level(&r, &c);
	c.page_size = c.mode == MMU_MODE_NONE ? PAGE_SIZE_4K : leaf_page_size(c.mode, leaf_level);
	c.data_gpa =
		draw_data_gpa(&r, &c, can_map_high(&c, leaf_level, f) && diff_rng_chance(&r, 25));
	c.gva = draw_gva(&r, &c);
	if (c.mode != MMU_MODE_NONE)
		draw_chain(&r, &c, leaf_level, f->maxphyaddr);
	set_cr3_and_pdptes(&r, &c);
	*ret = c;
}

void diff_case_plain(struct diff_case *c, enum mmu_paging_mode mode, unsigned int cpl, uint64_t gva,
		     uint64_t data_gpa)
{
	const uint64_t table = PTE_P | PTE_RW | PTE_US | PTE_A;

	memset(c, 0, sizeof(*c));
	c->mode = mode;
	c->cpl = cpl;
	c->access = DIFF_READ;
	c->regs.cr0 = MMU_CR0_PE | MMU_CR0_ET | MMU_CR0_NE | MMU_CR0_WP | MMU_CR0_PG;
	if (mode != MMU_MODE_32BIT)
		c->regs.cr4 = MMU_CR4_PAE;
	if (mode_is_long(mode))
		c->regs.efer = MMU_EFER_LME | MMU_EFER_LMA;
	c->cr3 = DIFF_CASE_ROOT;
	c->gva = gva;
	c->data_gpa = (data_gpa & ~(PAGE_SIZE_4K - 1)) | (gva & (PAGE_SIZE_4K - 1));
	c->page_size = PAGE_SIZE_4K;
	for (unsigned int level = mode_levels(mode); level >= 1; level--) {
		if (mode == MMU_MODE_PAE && level == 3)
			add_entry(c, level, PTE_P | level_table(c, 2), true);
		else if (level > 1)
			add_entry(c, level, table | level_table(c, level - 1), false);
		else
			add_entry(c, level, table | PTE_D | (data_gpa & ~(PAGE_SIZE_4K - 1)),
				  false);
	}
	set_pdptes(c);
}

/* ---------------------------------------------------------------- naming */

const char *diff_access_name(enum diff_access access)
{
	static const char *const names[] = {
		[DIFF_READ] = "read",
		[DIFF_WRITE] = "write",
		[DIFF_FETCH] = "fetch",
		[DIFF_DESC_READ] = "descriptor-read",
		[DIFF_DESC_WRITE] = "descriptor-write",
	};

	return access < DIFF_NR_ACCESSES ? names[access] : "?";
}

uint32_t diff_case_mmu_access(const struct diff_case *c)
{
	uint32_t user = c->cpl == 3 ? MMU_ACCESS_USER : 0;

	switch (c->access) {
	case DIFF_READ:
		return user;
	case DIFF_WRITE:
		return MMU_ACCESS_WRITE | user;
	case DIFF_FETCH:
		return MMU_ACCESS_FETCH | user;
	default:
		return MMU_ACCESS_IMPLICIT; /* SDM §4.6.1: supervisor even at CPL 3 */
	}
}

uint16_t diff_case_selector(const struct diff_case *c)
{
	return (uint16_t)(0 << 3 | 4 | c->cpl); /* LDT entry 0, TI = 1, RPL = CPL */
}

static const char *level_name(enum mmu_paging_mode mode, unsigned int level)
{
	static const char *const names[] = { "?", "PTE", "PDE", "PDPTE", "PML4E", "PML5E" };

	return level <= 5 ? names[level] : "?";
}

void diff_case_print(FILE *f, const struct diff_case *c)
{
	fprintf(f, "  case %llu of seed 0x%llx: %s paging, CPL %u, %s, EFLAGS.AC=%u\n",
		(unsigned long long)c->index, (unsigned long long)c->seed,
		mmu_paging_mode_name(c->mode), c->cpl, diff_access_name(c->access), c->eflags_ac);
	fprintf(f, "  CR0=0x%llx CR4=0x%llx EFER=0x%llx CR3=0x%llx",
		(unsigned long long)c->regs.cr0, (unsigned long long)c->regs.cr4,
		(unsigned long long)c->regs.efer, (unsigned long long)c->cr3);
	fprintf(f, " PKRU=0x%08x", c->pkru);
	fprintf(f, "\n");
	if (c->mode == MMU_MODE_PAE)
		fprintf(f, "  PDPTE registers: 0x%llx 0x%llx 0x%llx 0x%llx\n",
			(unsigned long long)c->pdptrs[0], (unsigned long long)c->pdptrs[1],
			(unsigned long long)c->pdptrs[2], (unsigned long long)c->pdptrs[3]);
	fprintf(f, "  target 0x%llx, chain aimed at GPA 0x%llx (%llu KiB page), value 0x%08x",
		(unsigned long long)c->gva, (unsigned long long)c->data_gpa,
		(unsigned long long)(c->page_size >> 10), c->value);
	if (c->access == DIFF_DESC_READ || c->access == DIFF_DESC_WRITE)
		fprintf(f, ", LDT base 0x%llx, selector 0x%x", (unsigned long long)c->gva,
			diff_case_selector(c));
	fprintf(f, "\n");
	for (unsigned int i = 0; i < c->nr_entries; i++)
		fprintf(f, "  %-5s @0x%llx = 0x%0*llx%s\n",
			level_name(c->mode, c->entries[i].level),
			(unsigned long long)c->entries[i].gpa, entry_size(c->mode) * 2,
			(unsigned long long)c->entries[i].value,
			c->entries[i].from_register ? " (PDPTE register)" : "");
}
