/* SPDX-License-Identifier: MIT */
/*
 * bench/mmu: speed of the mmu/ library on one core.
 *
 *   walks/s, cold  4-level walks of random addresses over a page-table
 *                  forest of --cold-mib MiB (default 512), far larger
 *                  than any cache: most walks miss on the PTE.
 *   walks/s, hot   the same walker over a small set (64 addresses) that
 *                  stays in L1.
 *   roles/s        mmu_role_compute() over varied role registers.
 *   contexts/s     mmu_context_init() (role + masks + permission tables).
 *
 * Guest RAM is one flat anonymous mapping given to the walker as a RAM
 * region, as live guest RAM is; hot walks through the map callback are
 * measured too. Each figure is the median of --runs runs
 * (default 5), with min and max. Reports only; never fails on timing.
 * --json prints one JSON object instead of the table; --json-out FILE
 * writes it to FILE as well as printing the table.
 */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "mmu/mmu.h"

#define PAGE 4096ULL
#define HOT_SET 64 /* a power of two */
#define MAX_RUNS 31

struct ram {
	uint8_t *base;
	uint64_t size;
	uint64_t next; /* bump allocator for page tables */
};

static int ram_map(void *opaque, uint64_t gpa, size_t len, void **ret_ptr, bool *ret_writable)
{
	struct ram *ram = opaque;

	if (gpa + len > ram->size)
		return -EFAULT;
	*ret_ptr = ram->base + gpa;
	*ret_writable = true;
	return 0;
}

static uint64_t ram_alloc(struct ram *ram)
{
	uint64_t gpa = ram->next;

	ram->next += PAGE;
	if (ram->next > ram->size) {
		fprintf(stderr, "bench/mmu: guest RAM exhausted\n");
		exit(1);
	}
	return gpa;
}

static void put64(struct ram *ram, uint64_t gpa, uint64_t v)
{
	memcpy(ram->base + gpa, &v, 8);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * A 4-level forest: pt_pages full page tables (512 PTEs each) under one
 * PML4, laid out in shuffled physical order so neighbouring addresses
 * do not share cache lines. Address i*4096 (i < pt_pages*512) maps to
 * frame DATA_BASE + i*4096.
 */
#define ENTRY_FLAGS 0x67ULL /* P W U A D */
#define DATA_BASE (1ULL << 40)

static uint64_t build_forest(struct ram *ram, uint64_t pt_pages, uint64_t *seed)
{
	uint64_t pd_pages = (pt_pages + 511) / 512;
	uint64_t pdpt_pages = (pd_pages + 511) / 512;
	uint64_t pml4 = ram_alloc(ram);
	uint64_t *pts = malloc(pt_pages * sizeof(*pts));

	if (!pts || pdpt_pages > 512) {
		fprintf(stderr, "bench/mmu: forest too large\n");
		exit(1);
	}
	for (uint64_t i = 0; i < pt_pages; i++)
		pts[i] = ram_alloc(ram);
	for (uint64_t i = pt_pages - 1; i > 0; i--) {
		uint64_t j = rnd(seed) % (i + 1), t = pts[i];

		pts[i] = pts[j];
		pts[j] = t;
	}
	for (uint64_t p = 0; p < pdpt_pages; p++) {
		uint64_t pdpt = ram_alloc(ram);

		put64(ram, pml4 + 8 * p, pdpt | ENTRY_FLAGS);
		for (uint64_t d = 0; d < 512 && p * 512 + d < pd_pages; d++) {
			uint64_t pd = ram_alloc(ram), pd_index = p * 512 + d;

			put64(ram, pdpt + 8 * d, pd | ENTRY_FLAGS);
			for (uint64_t t = 0; t < 512 && pd_index * 512 + t < pt_pages; t++) {
				uint64_t n = pd_index * 512 + t, pt = pts[n];

				put64(ram, pd + 8 * t, pt | ENTRY_FLAGS);
				for (uint64_t e = 0; e < 512; e++)
					put64(ram, pt + 8 * e,
					      (DATA_BASE + (n * 512 + e) * PAGE) | ENTRY_FLAGS);
			}
		}
	}
	free(pts);
	return pml4;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct stat {
	double median, min, max;
};

static struct stat summarize(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return (struct stat){ .median = v[n / 2], .min = v[0], .max = v[n - 1] };
}

/* Walks per second over `pages` mapped pages, random order. */
static double run_walks(const struct mmu_context *ctx, const struct mmu_memory *mem,
			uint64_t cr3, uint64_t pages, const uint64_t *set, int set_len,
			uint64_t count, uint32_t flags, uint64_t seed)
{
	struct mmu_walk_request req = { .cr3 = cr3, .flags = flags };
	struct mmu_walk_result r;
	uint64_t check = 0;
	double t0 = now();

	for (uint64_t i = 0; i < count; i++) {
		/* No division in the loop: it would cost as much as a hot walk. */
		uint64_t page = set ? set[i & (uint64_t)(set_len - 1)]
				    : (uint64_t)(((unsigned __int128)rnd(&seed) * pages) >> 64);

		req.addr = page * PAGE + (i & 0xFF8);
		if (mmu_walk(ctx, NULL, mem, &req, &r) < 0 || r.fault.type != MMU_FAULT_NONE ||
		    r.gpa != DATA_BASE + page * PAGE + (i & 0xFF8)) {
			fprintf(stderr, "bench/mmu: wrong walk for 0x%llx\n",
				(unsigned long long)req.addr);
			exit(1);
		}
		check ^= r.gpa;
	}
	if (check == 1)
		fprintf(stderr, "?\n"); /* keeps the loop observable */
	return (double)count / (now() - t0);
}

static double run_roles(uint64_t count, uint64_t seed)
{
	struct mmu_role_regs regs[1024];
	uint32_t acc = 0;
	double t0;

	for (int i = 0; i < 1024; i++)
		regs[i] = (struct mmu_role_regs){ rnd(&seed), rnd(&seed), rnd(&seed) };
	t0 = now();
	for (uint64_t i = 0; i < count; i++)
		acc += mmu_role_compute(&regs[i & 1023], (unsigned int)i & MMU_CTX_SMM).word;
	__asm__ volatile("" : : "r"(acc));
	return (double)count / (now() - t0);
}

static double run_contexts(const struct mmu_cpu_features *f, uint64_t count, uint64_t seed)
{
	struct mmu_role_regs regs[256];
	struct mmu_context ctx;
	uint32_t acc = 0;
	double t0;

	for (int i = 0; i < 256; i++)
		regs[i] = (struct mmu_role_regs){ rnd(&seed) | MMU_CR0_PG, rnd(&seed), rnd(&seed) };
	t0 = now();
	for (uint64_t i = 0; i < count; i++) {
		mmu_context_init(&ctx, &regs[i & 255], f, 0);
		acc += ctx.perm[i & 15];
	}
	__asm__ volatile("" : : "r"(acc));
	return (double)count / (now() - t0);
}

/* Medians, in operations per second, as one JSON object. */
static void print_json(FILE *out, int runs, uint64_t cold_mib, const struct stat *cold,
		       const struct stat *hot, const struct stat *hot_ad, const struct stat *hot_cb,
		       const struct stat *roles, const struct stat *ctxs)
{
	fprintf(out,
		"{\"runs\":%d,\"cold_table_mib\":%llu,\"walks_cold_per_s\":%.0f,"
		"\"walks_hot_per_s\":%.0f,\"walks_hot_set_ad_per_s\":%.0f,"
		"\"walks_hot_map_callback_per_s\":%.0f,\"roles_per_s\":%.0f,"
		"\"contexts_per_s\":%.0f}\n",
		runs, (unsigned long long)cold_mib, cold->median, hot->median, hot_ad->median,
		hot_cb->median, roles->median, ctxs->median);
}

static void pin_to_current_cpu(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void usage(void)
{
	fprintf(stderr, "usage: mmu [--runs N] [--cold-mib MIB] [--json] [--json-out FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct mmu_cpu_features f = {
		.maxphyaddr = 46, .vendor = MMU_VENDOR_INTEL, .nx = true, .gbpages = true,
		.pae = true, .pse = true, .lm = true,
	};
	struct mmu_role_regs regs = {
		.cr0 = MMU_CR0_PE | MMU_CR0_PG | MMU_CR0_WP,
		.cr4 = MMU_CR4_PAE,
		.efer = MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NX,
	};
	double cold[MAX_RUNS], hot[MAX_RUNS], hot_ad[MAX_RUNS], hot_cb[MAX_RUNS], roles[MAX_RUNS];
	double ctxs[MAX_RUNS];
	uint64_t cold_mib = 512, seed = 0x6d6d75, hot_set[HOT_SET], pt_pages, pages, cr3;
	struct stat s_cold, s_hot, s_hot_ad, s_hot_cb, s_roles, s_ctxs;
	struct mmu_ram_region region;
	struct mmu_context ctx;
	struct mmu_memory mem, mem_cb;
	struct ram ram = { 0 };
	const char *json_out = NULL;
	bool json = false;
	int runs = 5;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--cold-mib") && i + 1 < argc)
			cold_mib = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--json-out") && i + 1 < argc)
			json_out = argv[++i];
		else
			usage();
	}
	if (runs < 1 || runs > MAX_RUNS || cold_mib < 1 || cold_mib > 16384)
		usage();

	pt_pages = cold_mib * (1ULL << 20) / PAGE;
	pages = pt_pages * 512;
	ram.size = (pt_pages + pt_pages / 256 + 64) * PAGE;
	ram.base = mmap(NULL, ram.size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram.base == MAP_FAILED) {
		perror("bench/mmu: mmap guest RAM");
		return 1;
	}
	ram.next = PAGE;
	pin_to_current_cpu();
	cr3 = build_forest(&ram, pt_pages, &seed);
	/* Live guest RAM is reached as a region; the map callback is measured too. */
	region = (struct mmu_ram_region){ .gpa = 0, .size = ram.size, .hva = ram.base };
	mem = (struct mmu_memory){ .regions = &region, .nr_regions = 1 };
	mem_cb = (struct mmu_memory){ .opaque = &ram, .map = ram_map };
	if (mmu_context_init(&ctx, &regs, &f, 0) < 0) {
		fprintf(stderr, "bench/mmu: context init failed\n");
		return 1;
	}
	for (int i = 0; i < HOT_SET; i++)
		hot_set[i] = rnd(&seed) % 512; /* one page table: stays in L1 */

	for (int r = 0; r < runs; r++) {
		cold[r] = run_walks(&ctx, &mem, cr3, pages, NULL, 0, 4000000, 0, seed + (uint64_t)r);
		hot[r] = run_walks(&ctx, &mem, cr3, pages, hot_set, HOT_SET, 20000000, 0, 0);
		hot_ad[r] = run_walks(&ctx, &mem, cr3, pages, hot_set, HOT_SET, 20000000,
				      MMU_WALK_SET_AD, 0);
		hot_cb[r] = run_walks(&ctx, &mem_cb, cr3, pages, hot_set, HOT_SET, 20000000, 0, 0);
		roles[r] = run_roles(200000000, seed + (uint64_t)r);
		ctxs[r] = run_contexts(&f, 2000000, seed + (uint64_t)r);
	}
	s_cold = summarize(cold, runs);
	s_hot = summarize(hot, runs);
	s_hot_ad = summarize(hot_ad, runs);
	s_hot_cb = summarize(hot_cb, runs);
	s_roles = summarize(roles, runs);
	s_ctxs = summarize(ctxs, runs);

	if (json)
		print_json(stdout, runs, cold_mib, &s_cold, &s_hot, &s_hot_ad, &s_hot_cb, &s_roles,
			   &s_ctxs);
	if (json_out) {
		FILE *out = fopen(json_out, "w");

		if (!out) {
			perror("bench/mmu: --json-out");
			return 1;
		}
		print_json(out, runs, cold_mib, &s_cold, &s_hot, &s_hot_ad, &s_hot_cb, &s_roles,
			   &s_ctxs);
		fclose(out);
	}
	if (json)
		return 0;
	printf("mmu: %d runs, one core; medians (min..max), millions per second\n", runs);
	printf("  4-level walks, cold (%llu MiB of page tables)  %8.2f  (%.2f..%.2f)\n",
	       (unsigned long long)cold_mib, s_cold.median / 1e6, s_cold.min / 1e6,
	       s_cold.max / 1e6);
	printf("  4-level walks, hot (%d addresses)              %8.2f  (%.2f..%.2f)\n", HOT_SET,
	       s_hot.median / 1e6, s_hot.min / 1e6, s_hot.max / 1e6);
	printf("  4-level walks, hot, A/D updates on (set)       %8.2f  (%.2f..%.2f)\n",
	       s_hot_ad.median / 1e6, s_hot_ad.min / 1e6, s_hot_ad.max / 1e6);
	printf("  4-level walks, hot, map callback               %8.2f  (%.2f..%.2f)\n",
	       s_hot_cb.median / 1e6, s_hot_cb.min / 1e6, s_hot_cb.max / 1e6);
	printf("  role computations                              %8.2f  (%.2f..%.2f)\n",
	       s_roles.median / 1e6, s_roles.min / 1e6, s_roles.max / 1e6);
	printf("  context initialisations                        %8.2f  (%.2f..%.2f)\n",
	       s_ctxs.median / 1e6, s_ctxs.min / 1e6, s_ctxs.max / 1e6);
	return 0;
}
