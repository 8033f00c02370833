/* SPDX-License-Identifier: MIT */
/*
 * bench/mmu: speed of the mmu/ library on one core.
 *
 *   walks/s, cold  4-level walks of random addresses over a page-table
 *                  forest of --cold-mib MiB (default 512), far larger
 *                  than any cache: most walks miss on the PTE.
 *   walks/s, hot   the same walker over HOT_SET addresses spread over the
 *                  forest, one under each of HOT_SET page tables picked at
 *                  random: every walk reads its own PDE and PTE lines, and
 *                  the whole working set fits in the L1 data cache and the
 *                  second-level TLB (the summary prints its size).
 *   walks/s, warm  the same over WARM_SET addresses: the working set fits
 *                  in L2 but not in L1 or the TLB.
 *   roles/s        mmu_role_compute() over varied role registers.
 *   contexts/s     mmu_context_init() (role + masks + permission tables).
 *
 * Guest RAM is one flat anonymous mapping given to the walker as a RAM
 * region, as live guest RAM is; hot walks through the map callback are
 * measured too. Each figure is the median of --runs runs (default 5),
 * with min and max, printed next to its target (if it has one) and the
 * ratio of the median to it. Reports only; never fails on timing.
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
#define HOT_SET 256   /* a power of two */
#define WARM_SET 4096 /* a power of two */
#define MAX_RUNS 31
#define LINE 64ULL

/* Targets, in operations per second (docs/performance.md, "MMU"). */
#define TARGET_WALKS_HOT 20e6
#define TARGET_ROLES 100e6

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

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

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

/*
 * n addresses spread over the forest: n distinct page tables drawn at
 * random out of pt_pages, one page under each. Returns the pages.
 */
static void spread_set(uint64_t *ret_pages, int n, uint64_t pt_pages, uint64_t *seed)
{
	for (int i = 0; i < n; i++) {
		uint64_t pt;
		bool taken;

		do {
			pt = rnd(seed) % pt_pages;
			taken = false;
			for (int j = 0; j < i && !taken; j++)
				taken = ret_pages[j] / 512 == pt;
		} while (taken);
		ret_pages[i] = pt * 512 + rnd(seed) % 512;
	}
}

/* The paging-structure footprint of walking a set of pages. */
struct footprint {
	uint64_t lines; /* distinct 64-byte lines of entries read */
	uint64_t pages; /* distinct 4 KiB pages holding them */
};

static uint64_t count_distinct(uint64_t *v, size_t n)
{
	uint64_t distinct = 0;

	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++)
		distinct += i == 0 || v[i] != v[i - 1];
	return distinct;
}

/* Walks each page of set once and collects the entries' addresses. */
static struct footprint set_footprint(const struct mmu_context *ctx, const struct mmu_memory *mem,
				      uint64_t cr3, const uint64_t *set, int n)
{
	size_t total = (size_t)n * 4, k = 0;
	uint64_t *lines = malloc(total * sizeof(*lines)), *pages = malloc(total * sizeof(*pages));
	struct mmu_walk_request req = { .cr3 = cr3 };
	struct mmu_walk_result r;
	struct footprint fp = { 0 };

	if (!lines || !pages) {
		fprintf(stderr, "bench/mmu: out of memory\n");
		exit(1);
	}
	for (int i = 0; i < n; i++) {
		req.addr = set[i] * PAGE;
		if (mmu_walk(ctx, NULL, mem, &req, &r) < 0)
			exit(1);
		for (unsigned int e = 0; e < r.nr_entries && k < total; e++, k++) {
			lines[k] = r.entries[e].pa / LINE;
			pages[k] = r.entries[e].pa / PAGE;
		}
	}
	fp.lines = count_distinct(lines, k);
	fp.pages = count_distinct(pages, k);
	free(lines);
	free(pages);
	return fp;
}

enum figure_id {
	FIG_COLD,
	FIG_HOT,
	FIG_WARM,
	FIG_HOT_AD,
	FIG_HOT_CALLBACK,
	FIG_ROLES,
	FIG_CONTEXTS,
	NR_FIGURES,
};

struct figure {
	const char *label; /* in the table */
	const char *key;   /* in the JSON object */
	double target;	   /* operations per second; 0: none */
	double runs[MAX_RUNS];
	struct stat stat;
};

struct bench {
	struct mmu_context ctx;
	struct mmu_ram_region region;
	struct mmu_memory mem, mem_cb;
	struct ram ram;
	struct mmu_cpu_features features;
	uint64_t cr3, pt_pages, pages, cold_mib, seed;
	uint64_t hot_set[HOT_SET], warm_set[WARM_SET];
	struct footprint hot_fp, warm_fp;
	struct figure fig[NR_FIGURES];
	int nr_runs;
};

static void init_figures(struct figure *fig)
{
	static const struct {
		const char *label, *key;
		double target;
	} defs[NR_FIGURES] = {
		[FIG_COLD] = { "4-level walks, cold", "walks_cold_per_s", 0 },
		[FIG_HOT] = { "4-level walks, hot", "walks_hot_per_s", TARGET_WALKS_HOT },
		[FIG_WARM] = { "4-level walks, warm", "walks_warm_per_s", 0 },
		[FIG_HOT_AD] = { "hot, A/D updates on (already set)", "walks_hot_set_ad_per_s", 0 },
		[FIG_HOT_CALLBACK] = { "hot, map callback", "walks_hot_map_callback_per_s", 0 },
		[FIG_ROLES] = { "role computations", "roles_per_s", TARGET_ROLES },
		[FIG_CONTEXTS] = { "context initialisations", "contexts_per_s", 0 },
	};

	for (int i = 0; i < NR_FIGURES; i++) {
		fig[i].label = defs[i].label;
		fig[i].key = defs[i].key;
		fig[i].target = defs[i].target;
	}
}

/* One run of every figure. */
static void run_once(struct bench *b, int r)
{
	uint64_t seed = b->seed + (uint64_t)r;

	b->fig[FIG_COLD].runs[r] =
		run_walks(&b->ctx, &b->mem, b->cr3, b->pages, NULL, 0, 4000000, 0, seed);
	b->fig[FIG_HOT].runs[r] =
		run_walks(&b->ctx, &b->mem, b->cr3, b->pages, b->hot_set, HOT_SET, 20000000, 0, 0);
	b->fig[FIG_WARM].runs[r] = run_walks(&b->ctx, &b->mem, b->cr3, b->pages, b->warm_set,
					     WARM_SET, 10000000, 0, 0);
	b->fig[FIG_HOT_AD].runs[r] = run_walks(&b->ctx, &b->mem, b->cr3, b->pages, b->hot_set,
					       HOT_SET, 20000000, MMU_WALK_SET_AD, 0);
	b->fig[FIG_HOT_CALLBACK].runs[r] = run_walks(&b->ctx, &b->mem_cb, b->cr3, b->pages,
						     b->hot_set, HOT_SET, 20000000, 0, 0);
	b->fig[FIG_ROLES].runs[r] = run_roles(200000000, seed);
	b->fig[FIG_CONTEXTS].runs[r] = run_contexts(&b->features, 2000000, seed);
}

/* Medians, in operations per second, as one JSON object. */
static void print_json(FILE *out, const struct bench *b)
{
	fprintf(out, "{\"runs\":%d,\"cold_table_mib\":%llu,\"hot_set\":%d,\"warm_set\":%d,"
		     "\"hot_lines\":%llu,\"warm_lines\":%llu",
		b->nr_runs, (unsigned long long)b->cold_mib, HOT_SET, WARM_SET,
		(unsigned long long)b->hot_fp.lines, (unsigned long long)b->warm_fp.lines);
	for (int i = 0; i < NR_FIGURES; i++) {
		const struct figure *f = &b->fig[i];

		fprintf(out, ",\"%s\":%.0f", f->key, f->stat.median);
		if (f->target)
			fprintf(out, ",\"%s_target\":%.0f", f->key, f->target);
	}
	fprintf(out, "}\n");
}

static void print_figure(const struct figure *f)
{
	printf("  %-36s %8.2f  (%7.2f..%7.2f)", f->label, f->stat.median / 1e6, f->stat.min / 1e6,
	       f->stat.max / 1e6);
	if (f->target)
		printf("   >= %4.0f   %.2fx%s", f->target / 1e6, f->stat.median / f->target,
		       f->stat.median >= f->target ? "" : "  BELOW TARGET");
	printf("\n");
}

static void print_table(const struct bench *b)
{
	printf("mmu: %d runs, one core; millions per second: median (min..max), target, "
	       "median/target\n",
	       b->nr_runs);
	for (int i = 0; i < NR_FIGURES; i++)
		print_figure(&b->fig[i]);
	printf("  cold: %llu MiB of page tables; hot: %d addresses under as many page tables, "
	       "%llu lines (%.1f KiB) in %llu pages;\n"
	       "  warm: %d addresses, %llu lines (%.1f KiB) in %llu pages\n",
	       (unsigned long long)b->cold_mib, HOT_SET, (unsigned long long)b->hot_fp.lines,
	       (double)(b->hot_fp.lines * LINE) / 1024, (unsigned long long)b->hot_fp.pages,
	       WARM_SET, (unsigned long long)b->warm_fp.lines,
	       (double)(b->warm_fp.lines * LINE) / 1024, (unsigned long long)b->warm_fp.pages);
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

struct options {
	int runs;
	uint64_t cold_mib;
	bool json;
	const char *json_out;
};

static struct options parse_options(int argc, char **argv)
{
	struct options o = { .runs = 5, .cold_mib = 512 };

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			o.runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--cold-mib") && i + 1 < argc)
			o.cold_mib = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--json"))
			o.json = true;
		else if (!strcmp(argv[i], "--json-out") && i + 1 < argc)
			o.json_out = argv[++i];
		else
			usage();
	}
	if (o.runs < 1 || o.runs > MAX_RUNS || o.cold_mib > 16384)
		usage();
	/* The warm set needs WARM_SET distinct page tables. */
	if (o.cold_mib < WARM_SET * PAGE >> 20) {
		fprintf(stderr,
			"bench/mmu: --cold-mib must be at least %llu: the warm set needs %d "
			"page tables\n",
			WARM_SET * PAGE >> 20, WARM_SET);
		exit(2);
	}
	return o;
}

/* Guest RAM, the forest in it, the walk context and the address sets. */
static void setup(struct bench *b, uint64_t cold_mib)
{
	const struct mmu_role_regs regs = {
		.cr0 = MMU_CR0_PE | MMU_CR0_PG | MMU_CR0_WP,
		.cr4 = MMU_CR4_PAE,
		.efer = MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NX,
	};

	b->features = (struct mmu_cpu_features){
		.maxphyaddr = 46, .vendor = MMU_VENDOR_INTEL, .nx = true, .gbpages = true,
		.pae = true, .pse = true, .lm = true,
	};
	b->seed = 0x6d6d75;
	b->cold_mib = cold_mib;
	b->pt_pages = cold_mib * (1ULL << 20) / PAGE;
	b->pages = b->pt_pages * 512;
	b->ram.size = (b->pt_pages + b->pt_pages / 256 + 64) * PAGE;
	b->ram.base = mmap(NULL, b->ram.size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (b->ram.base == MAP_FAILED) {
		perror("bench/mmu: mmap guest RAM");
		exit(1);
	}
	b->ram.next = PAGE;
	b->cr3 = build_forest(&b->ram, b->pt_pages, &b->seed);
	/* Live guest RAM is reached as a region; the map callback is measured too. */
	b->region = (struct mmu_ram_region){ .gpa = 0, .size = b->ram.size, .hva = b->ram.base };
	b->mem = (struct mmu_memory){ .regions = &b->region, .nr_regions = 1 };
	b->mem_cb = (struct mmu_memory){ .opaque = &b->ram, .map = ram_map };
	if (mmu_context_init(&b->ctx, &regs, &b->features, 0) < 0) {
		fprintf(stderr, "bench/mmu: context init failed\n");
		exit(1);
	}
	spread_set(b->hot_set, HOT_SET, b->pt_pages, &b->seed);
	spread_set(b->warm_set, WARM_SET, b->pt_pages, &b->seed);
	b->hot_fp = set_footprint(&b->ctx, &b->mem, b->cr3, b->hot_set, HOT_SET);
	b->warm_fp = set_footprint(&b->ctx, &b->mem, b->cr3, b->warm_set, WARM_SET);
}

static int write_json_file(const char *path, const struct bench *b)
{
	FILE *out = fopen(path, "w");

	if (!out) {
		perror("bench/mmu: --json-out");
		return -1;
	}
	print_json(out, b);
	return fclose(out);
}

int main(int argc, char **argv)
{
	static struct bench b;
	struct options o = parse_options(argc, argv);

	pin_to_current_cpu();
	setup(&b, o.cold_mib);
	init_figures(b.fig);
	b.nr_runs = o.runs;
	for (int r = 0; r < o.runs; r++)
		run_once(&b, r);
	for (int i = 0; i < NR_FIGURES; i++)
		b.fig[i].stat = summarize(b.fig[i].runs, o.runs);
	if (o.json)
		print_json(stdout, &b);
	if (o.json_out && write_json_file(o.json_out, &b) < 0)
		return 1;
	if (!o.json)
		print_table(&b);
	return 0;
}
