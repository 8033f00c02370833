/* SPDX-License-Identifier: MIT */
/*
 * Cases of the mmu/ differential test: a seeded generator of paging states
 * (role registers, a page-table chain for one target address, an access,
 * CPL and EFLAGS.AC), the guest-memory image they need, and their printed
 * form. Pure host code: nothing here touches KVM.
 */
#ifndef VMMD_TESTS_KVM_MMU_DIFF_CASE_H
#define VMMD_TESTS_KVM_MMU_DIFF_CASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mmu/mmu.h"

/* The test's PRNG (xoshiro256**): one stream per (seed, index). */
struct diff_rng {
	uint64_t s[4];
};

void diff_rng_seed(struct diff_rng *r, uint64_t seed, uint64_t index);
uint64_t diff_rng_next(struct diff_rng *r);
uint64_t diff_rng_below(struct diff_rng *r, uint64_t n);
bool diff_rng_chance(struct diff_rng *r, unsigned int percent);

enum diff_access {
	DIFF_READ,	 /* explicit 4-byte read */
	DIFF_WRITE,	 /* explicit 4-byte write */
	DIFF_FETCH,	 /* instruction fetch (a jump to the target) */
	DIFF_DESC_READ,	 /* segment load from an LDT at the target: implicit read */
	DIFF_DESC_WRITE, /* the same with the descriptor's accessed bit clear: the
			  * CPU reads it, then writes it back with the bit set */
	DIFF_NR_ACCESSES,
};

/* Guest memory as host buffers: low RAM at GPA 0, the slot at
 * DIFF_DATA_HIGH and the ROM at DIFF_ROM_BASE. The test keeps two: the
 * guest's and the model's. */
struct diff_memory {
	uint8_t *low;
	uint8_t *high;
	uint8_t *rom;
};

/* One paging-structure entry of a case's chain, as written. */
struct diff_entry {
	uint64_t gpa;
	uint64_t value;
	uint8_t level;
	bool from_register; /* PAE PDPTE: given to KVM as a PDPTE register */
};

struct diff_case {
	bool pku; /* load pkru (the host offers PKU) */
	uint64_t seed;
	uint64_t index;
	enum mmu_paging_mode mode;
	unsigned int cpl;
	enum diff_access access;
	struct mmu_role_regs regs;
	uint64_t cr3;
	uint64_t pdptrs[4]; /* PAE only */
	bool eflags_ac;
	uint32_t pkru;		/* loaded whenever the host offers PKU */
	uint64_t gva;		/* the target linear address */
	uint64_t data_gpa;	/* where the chain points (when it is valid) */
	uint32_t value;		/* value written, fetch tag, or descriptor base */
	uint64_t page_size;	/* of the intended mapping */
	unsigned int rom_level; /* the table of this level is in ROM; 0: none */
	unsigned int nr_entries;
	struct diff_entry entries[MMU_MAX_LEVELS]; /* top-down */
};

/* What the generator may use: the CPU model KVM offers the guest, with
 * smep/smap/pku/la57 meaning "KVM accepts the CR4 bit". */
struct diff_generator {
	struct mmu_cpu_features features;
	enum mmu_paging_mode modes[5]; /* modes to draw from; [0] is paging off */
	bool demoted[5];	       /* modes[i] is drawn half as often */
	unsigned int nr_modes;
};

/* Fills *gen for features: every paging mode they allow, equally often. */
void diff_generator_init(struct diff_generator *gen, const struct mmu_cpu_features *features);

/*
 * Draws paging mode `mode` half as often as each mode not demoted: for a
 * mode the host cannot run, whose cases are only predicted on the model,
 * so that more of a run's cases are compared with KVM. Paging off keeps
 * its share.
 */
void diff_generator_demote_mode(struct diff_generator *gen, enum mmu_paging_mode mode);

/* Case `index` of the run with `seed`: the same pair always gives the same
 * case, so one case of a long run can be reproduced on its own. */
void diff_case_generate(const struct diff_generator *gen, uint64_t seed, uint64_t index,
			struct diff_case *ret);

/* A read at CPL `cpl` of gva through a 4 KiB chain that allows everything
 * (P, R/W, U/S, A, D set) to the page of data_gpa; WP on, NX and PKRU off. */
void diff_case_plain(struct diff_case *c, enum mmu_paging_mode mode, unsigned int cpl, uint64_t gva,
		     uint64_t data_gpa);

/* Host pointer to len bytes at gpa in mem, or NULL outside its RAM. */
void *diff_memory_ptr(const struct diff_memory *mem, uint64_t gpa, size_t len);

/* Writes the scaffolding page tables (identity map of the first 2 MiB,
 * every format) into mem. */
void diff_scaffold_tables_install(const struct diff_memory *mem);

/* Writes the case's page tables (root with the scaffolding entry and the
 * chain) and, at data_gpa, its payload (fetch code or descriptor). */
void diff_case_install(const struct diff_case *c, const struct diff_memory *mem);

/* The data pattern: every aligned 4-byte word holds a hash of its GPA, so
 * a read shows which physical address it reached. */
uint32_t diff_pattern_word(uint64_t gpa);
void diff_pattern_fill(const struct diff_memory *mem);
/* Restores the pattern in the 8 bytes at gpa, 4-byte aligned (if RAM):
 * every byte a case can change there. */
void diff_pattern_restore(const struct diff_memory *mem, uint64_t gpa);

/* Guest pages the case tables occupy, for comparisons: DIFF_CASE_ROOT, the
 * DIFF_CASE_TABLE()s and DIFF_ROM_TABLE()s, then the scaffolding tables. */
extern const uint64_t diff_table_pages[];
extern const unsigned int diff_nr_table_pages;

const char *diff_access_name(enum diff_access access);
/* MMU_ACCESS_* of the (first) access the CPU makes for c. */
uint32_t diff_case_mmu_access(const struct diff_case *c);
/* The segment selector a DIFF_DESC_* case loads. */
uint16_t diff_case_selector(const struct diff_case *c);

/* Prints the case: registers, access, target and the chain as written. */
void diff_case_print(FILE *f, const struct diff_case *c);

#endif
