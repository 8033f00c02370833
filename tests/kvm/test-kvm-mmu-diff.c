/* SPDX-License-Identifier: MIT */
/*
 * Differential test of mmu/ against KVM: every case puts a vCPU in a
 * generated paging state, lets it make one access, and compares what the
 * guest saw (vector, error code, CR2, data, A/D bits in its page tables)
 * with mmu_walk() on an identical copy of the tables, with KVM's
 * documented deviations from the architecture switched on
 * (MMU_CTX_KVM_COMPAT). docs/mmu.md, "Differential test against KVM",
 * explains the cases, the options and how to reproduce a failure.
 *
 * Exit status: 0 all cases agree; 1 a mismatch or a coverage hole; 2 a
 * usage or KVM error; 77 (skip) without /dev/kvm.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/kvm/mmu-diff-case.h"
#include "tests/kvm/mmu-diff-compare.h"
#include "tests/kvm/mmu-diff-host.h"
#include "tests/kvm/mmu-diff-sregs.h"
#include "tests/kvm/mmu-diff-stats.h"
#include "tests/kvm/mmu-diff-vm.h"
#include "tests/kvm/mmu-diff.h"
#include "util/macro.h"

#define SKIP_STATUS 77
#define DEFAULT_SEED 0x6D6D752D64696666ULL /* "mmu-diff" */
#define DEFAULT_CASES 20000
#define DEFAULT_STATES 3000
#define SLOW_CASES 2000000
#define SLOW_STATES 200000
#define DEFAULT_MAX_REPORTS 20

struct options {
	uint64_t seed;
	uint64_t first;
	uint64_t cases;
	uint64_t states; /* validator differential */
	unsigned int max_reports;
	bool verbose;
	int only_mode; /* -1: every mode */
};

struct diff_run {
	struct options opt;
	struct diff_vm *vm;
	struct diff_memory model; /* mmu/'s copy of guest memory */
	struct diff_generator gen;
	struct diff_host host;
	struct diff_stats stats;
	unsigned int reports;
};

/* ---------------------------------------------------------------- the run */

static void reset_memory(struct diff_run *run)
{
	diff_scaffold_install(&run->vm->ram);
	diff_pattern_fill(&run->vm->ram);
	diff_scaffold_install(&run->model);
	diff_pattern_fill(&run->model);
}

static void restore_data(struct diff_run *run, const struct diff_case *c)
{
	diff_pattern_restore(&run->vm->ram, c->data_gpa);
	diff_pattern_restore(&run->model, c->data_gpa);
}

/* States KVM refuses are not cases: mmu/'s validator decides, with the
 * features the host accepts; KVM refusing any other state is a mismatch. */
static bool case_state_invalid(const struct diff_run *run, const struct diff_case *c)
{
	struct kvm_sregs2 s = { .cr8 = 0 };

	diff_case_sregs(c, &s);
	return diff_validator_rejects(&s, &run->host.usable, NULL);
}

/* Prints a mismatch, up to --max-reports of them. */
static void report_mismatch(struct diff_run *run, const struct diff_case *c,
			    const struct diff_prediction *p, const struct diff_mismatch *m)
{
	if (run->reports++ < run->opt.max_reports)
		diff_report_mismatch(c, p, m);
}

static void record_case(struct diff_run *run, const struct diff_case *c,
			const struct diff_prediction *p, bool matched)
{
	enum diff_class cls = diff_classify(&p->walk.fault);

	diff_stats_add(&run->stats, c, cls, matched);
	if (run->opt.verbose)
		printf("case %llu: %s CPL %u %s AC=%u CR0=0x%llx CR4=0x%llx EFER=0x%llx "
		       "PKRU=0x%08x "
		       "target 0x%llx: %s, %s\n",
		       (unsigned long long)c->index, mmu_paging_mode_name(c->mode), c->cpl,
		       diff_access_name(c->access), c->eflags_ac, (unsigned long long)c->regs.cr0,
		       (unsigned long long)c->regs.cr4, (unsigned long long)c->regs.efer, c->pkru,
		       (unsigned long long)c->gva, diff_class_name(cls),
		       matched ? "match" : "MISMATCH");
}

/*
 * A case the host cannot run is still predicted, on the model alone: a
 * successful walk must land where the generator aimed the chain, so the
 * generator and mmu/ stay consistent in every mode, and a host that runs
 * the mode gets no false mismatches. Returns 1 if consistent, 0 if not.
 */
static int self_check_case(struct diff_run *run, const struct diff_case *c, struct error *err)
{
	struct diff_prediction p;
	struct diff_mismatch m = { .len = 0 };
	int r;

	diff_case_install(c, &run->model);
	r = diff_predict(&run->model, &run->gen.features, c, &p);
	if (r < 0)
		return error_set(err, r, "mmu/ could not walk case %llu: %s",
				 (unsigned long long)c->index, strerror(-r));
	diff_pattern_restore(&run->model, c->data_gpa);
	run->stats.self_checked++;
	run->stats.model_only[c->mode]++;
	if (p.walk.fault.type != MMU_FAULT_NONE || c->mode == MMU_MODE_NONE ||
	    p.walk.pa == c->data_gpa)
		return 1;
	run->stats.self_check_failures++;
	diff_note(&m,
		  "  (not run on this host) mmu/ translates to GPA 0x%llx, the chain was "
		  "built for 0x%llx\n",
		  (unsigned long long)p.walk.pa, (unsigned long long)c->data_gpa);
	report_mismatch(run, c, &p, &m);
	return 0;
}

/* Why case c is not run here (outside --mode, a host deviation, a state
 * KVM refuses; counted where it belongs), or NULL to run it. */
static const char *case_not_run(struct diff_run *run, const struct diff_case *c)
{
	enum diff_deviation dev;

	if (run->opt.only_mode >= 0 && c->mode != (enum mmu_paging_mode)run->opt.only_mode)
		return "outside --mode";
	dev = diff_host_deviation(&run->host, c);
	if (dev != DIFF_DEVIATION_NONE) {
		run->stats.skipped[dev]++;
		return diff_deviation_reason(dev);
	}
	if (case_state_invalid(run, c)) {
		run->stats.invalid++;
		return "mmu/'s validator says KVM refuses the state";
	}
	return NULL;
}

/* Runs case `index`: 1 if it matched (or was not run and is consistent), 0
 * if not, negative errno on a KVM or library error. */
static int run_case(struct diff_run *run, uint64_t index, struct error *err)
{
	const char *why_not;
	struct diff_case c;
	struct diff_prediction p;
	struct diff_observation obs;
	struct diff_mismatch m = { .len = 0 };
	int r;

	diff_case_generate(&run->gen, run->opt.seed, index, &c);
	why_not = case_not_run(run, &c);
	if (why_not && run->opt.cases == 1) {
		printf("case %llu of seed 0x%llx is not run: %s\n", (unsigned long long)index,
		       (unsigned long long)c.seed, why_not);
		diff_case_print(stdout, &c);
	}
	if (why_not)
		return self_check_case(run, &c, err);
	diff_case_install(&c, &run->vm->ram);
	diff_case_install(&c, &run->model);
	r = diff_predict(&run->model, &run->gen.features, &c, &p);
	if (r < 0)
		return error_set(err, r, "mmu/ could not walk case %llu: %s",
				 (unsigned long long)index, strerror(-r));
	r = diff_vm_run_case(run->vm, &c, &obs, err);
	if (r < 0) {
		diff_case_print(stderr, &c);
		return r;
	}
	diff_compare(&run->vm->ram, &run->model, &c, &p, &obs, &m);
	record_case(run, &c, &p, m.len == 0);
	if (!m.len && run->opt.cases == 1)
		diff_report_match(&c, &p, &obs);
	if (m.len) {
		report_mismatch(run, &c, &p, &m);
		reset_memory(run);
		return 0;
	}
	restore_data(run, &c);
	return 1;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: test-kvm-mmu-diff [--seed N] [--cases N] [--case K] [--states N] "
		"[--max-reports N] [--mode none|32-bit|pae|4-level|5-level] [--verbose]\n"
		"  default: seed 0x%llx, %u cases, %u states; VMMD_SLOW=1: a random seed, "
		"%u cases, %u states\n",
		(unsigned long long)DEFAULT_SEED, DEFAULT_CASES, DEFAULT_STATES, SLOW_CASES,
		SLOW_STATES);
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;

	errno = 0;
	*ret = strtoull(s, &end, 0);
	return (errno || !*s || *end) ? -EINVAL : 0;
}

static uint64_t random_seed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
	       (uint64_t)getpid() << 32;
}

static int parse_mode(const char *name)
{
	for (int mode = 0; mode < DIFF_NR_MODES; mode++)
		if (strcmp(name, mmu_paging_mode_name(mode)) == 0)
			return mode;
	return -1;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	const char *slow = getenv("VMMD_SLOW");

	*o = (struct options){ .seed = DEFAULT_SEED,
			       .cases = DEFAULT_CASES,
			       .states = DEFAULT_STATES,
			       .max_reports = DEFAULT_MAX_REPORTS,
			       .only_mode = -1 };
	if (slow && *slow && strcmp(slow, "0") != 0) {
		o->seed = random_seed();
		o->cases = SLOW_CASES;
		o->states = SLOW_STATES;
	}
	for (int i = 1; i < argc; i++) {
		uint64_t v = 0;
		bool has_value = i + 1 < argc;

		if (strcmp(argv[i], "--verbose") == 0) {
			o->verbose = true;
			continue;
		}
		if (strcmp(argv[i], "--mode") == 0 && has_value) {
			o->only_mode = parse_mode(argv[++i]);
			if (o->only_mode < 0)
				return -EINVAL;
			continue;
		}
		if (!has_value || parse_u64(argv[i + 1], &v) < 0)
			return -EINVAL;
		if (strcmp(argv[i], "--seed") == 0)
			o->seed = v;
		else if (strcmp(argv[i], "--cases") == 0)
			o->cases = v;
		else if (strcmp(argv[i], "--case") == 0)
			o->first = v, o->cases = 1, o->states = 0;
		else if (strcmp(argv[i], "--states") == 0)
			o->states = v;
		else if (strcmp(argv[i], "--max-reports") == 0)
			o->max_reports = (unsigned int)v;
		else
			return -EINVAL;
		i++;
	}
	return 0;
}

static int create_model(struct diff_memory *model)
{
	int r = diff_memory_alloc(model);

	if (r < 0)
		return r;
	diff_scaffold_install(model);
	diff_pattern_fill(model);
	return 0;
}

static int run_cases(struct diff_run *run, uint64_t *ret_mismatches)
{
	struct error err;
	uint64_t mismatches = 0;

	for (uint64_t i = run->opt.first; i < run->opt.first + run->opt.cases; i++) {
		int r = run_case(run, i, &err);
		if (r < 0) {
			fprintf(stderr, "mmu-diff: %s\n", err.msg);
			return r;
		}
		mismatches += r == 0;
	}
	*ret_mismatches = mismatches;
	return 0;
}

/* Cases below which a run is too short to demand full coverage. */
#define COVERAGE_MIN_CASES 1000
/* Cases each CPL must compare with KVM with paging on in a run of at least
 * DEFAULT_CASES (the make check run). */
#define CPL_FLOOR 2000

static bool mode_generated(const struct diff_generator *gen, enum mmu_paging_mode mode)
{
	for (unsigned int i = 0; i < gen->nr_modes; i++)
		if (gen->modes[i] == mode)
			return true;
	return false;
}

/* A mode the host runs with no case compared at some CPL. */
static unsigned int mode_holes(const struct diff_run *run)
{
	unsigned int holes = 0;

	for (unsigned int i = 0; i < run->gen.nr_modes; i++) {
		enum mmu_paging_mode mode = run->gen.modes[i];

		if (!diff_host_runs_mode(&run->host, mode))
			continue; /* a SKIP line reports it */
		for (unsigned int cpl3 = 0; cpl3 < 2; cpl3++)
			if (!run->stats.cases[mode][cpl3]) {
				printf("mmu-diff: coverage hole: no %s case at CPL %u\n",
				       mmu_paging_mode_name(mode), cpl3 ? 3 : 0);
				holes++;
			}
	}
	return holes;
}

static uint64_t compared_with_paging(const struct diff_stats *s, unsigned int cpl3)
{
	uint64_t n = 0;

	for (unsigned int mode = MMU_MODE_NONE + 1; mode < DIFF_NR_MODES; mode++)
		n += s->cases[mode][cpl3];
	return n;
}

/* Fewer than CPL_FLOOR cases compared with paging at CPL 0 or 3. */
static unsigned int cpl_floor_holes(const struct diff_run *run)
{
	unsigned int holes = 0;

	if (run->opt.cases < DEFAULT_CASES)
		return 0;
	for (unsigned int cpl3 = 0; cpl3 < 2; cpl3++) {
		uint64_t n = compared_with_paging(&run->stats, cpl3);

		if (n >= CPL_FLOOR)
			continue;
		printf("mmu-diff: coverage hole: %llu cases compared with KVM at CPL %u with paging "
		       "on, fewer than the %u a run of %u cases must compare\n",
		       (unsigned long long)n, cpl3 ? 3 : 0, CPL_FLOOR, DEFAULT_CASES);
		holes++;
	}
	return holes;
}

static unsigned int class_holes(const struct diff_stats *s)
{
	unsigned int holes = 0;

	for (unsigned int i = 0; i < DIFF_CLASS_OTHER; i++)
		if (!s->classes[i]) {
			printf("mmu-diff: coverage hole: no case expected %s\n",
			       diff_class_name(i));
			holes++;
		}
	return holes;
}

/*
 * A run that compared nothing in some paging mode the host runs at some
 * CPL, fewer than CPL_FLOOR cases with paging at a CPL, or never saw one
 * of the outcome classes, proves less than it claims: report each hole.
 * Modes the host cannot run are SKIP lines instead. Returns the number of
 * holes.
 */
static unsigned int coverage_holes(const struct diff_run *run)
{
	if (run->opt.cases < COVERAGE_MIN_CASES || run->opt.only_mode >= 0)
		return 0;
	return mode_holes(run) + cpl_floor_holes(run) + class_holes(&run->stats);
}

/* Why a paging mode has no cases at all here. */
static const char *mode_not_generated_reason(enum mmu_paging_mode mode)
{
	switch (mode) {
	case MMU_MODE_PAE:
		return "the vCPU's CPU model lacks PAE";
	case MMU_MODE_4LEVEL:
		return "the vCPU's CPU model lacks long mode";
	case MMU_MODE_5LEVEL:
		return "this host's KVM_SET_SREGS2 refuses CR4.LA57 (the vCPU does not hold LA57), "
		       "so no case uses 5-level paging";
	default:
		return "";
	}
}

/*
 * Every class of cases not compared with KVM, as "SKIP: what: reason"
 * lines, which scripts/run-kvm-tests.sh counts and lists as skipped, never
 * as passed. Cases of a class the host runs wrongly are still predicted on
 * the model alone; that is a check of mmu/ against the generator, not
 * against KVM.
 */
static void print_skips(const struct diff_run *run)
{
	const struct diff_stats *s = &run->stats;

	if (run->opt.only_mode < 0)
		for (unsigned int mode = MMU_MODE_32BIT; mode < DIFF_NR_MODES; mode++)
			if (!mode_generated(&run->gen, mode))
				printf("SKIP: %s paging: no cases, %s\n", mmu_paging_mode_name(mode),
				       mode_not_generated_reason(mode));
	for (unsigned int d = DIFF_DEVIATION_NONE + 1; d < DIFF_NR_DEVIATIONS; d++)
		if (s->skipped[d])
			printf("SKIP: %s: %llu not compared with KVM (predicted on the model alone) "
			       "because %s\n",
			       diff_deviation_cases(d), (unsigned long long)s->skipped[d],
			       diff_deviation_reason(d));
	if (s->invalid)
		printf("SKIP: states mmu/'s validator says KVM refuses: %llu generated cases not "
		       "run (the validator differential compares such refusals)\n",
		       (unsigned long long)s->invalid);
}

/* The validator differential; adds its mismatches to *mismatches. */
static int run_states(struct diff_run *run, uint64_t *mismatches)
{
	struct diff_sregs_result res;
	struct error err;
	int r;

	if (!run->opt.states)
		return 0;
	r = diff_sregs_run(run->vm, &run->host, run->opt.seed, run->opt.states,
			   run->opt.max_reports, &res, &err);
	if (r < 0) {
		fprintf(stderr, "mmu-diff: %s\n", err.msg);
		return r;
	}
	printf("mmu-diff: validator: %llu states, KVM refused %llu and accepted %llu as mmu/ "
	       "predicted, %llu mismatches\n",
	       (unsigned long long)res.states, (unsigned long long)res.refused,
	       (unsigned long long)res.accepted, (unsigned long long)res.mismatches);
	printf("mmu-diff: validator: states with each issue:");
	for (unsigned int code = 0; code < DIFF_NR_ISSUE_CODES; code++)
		printf(" %s %llu%s", mmu_issue_code_name(code), (unsigned long long)res.issues[code],
		       code + 1 < DIFF_NR_ISSUE_CODES ? "," : "\n");
	if (res.skipped)
		printf("SKIP: validator states with a CR4 bit on which this host's KVM_SET_SREGS2 "
		       "and the vCPU's CPUID disagree: %llu not compared with KVM, because mmu/'s "
		       "validator reads CPUID as KVM proper does (see above)\n",
		       (unsigned long long)res.skipped);
	*mismatches += res.mismatches;
	return 0;
}

/*
 * Every paging mode the CPU model allows; those the host cannot run drawn
 * half as often (whatever the options, so that --case K reruns case K of
 * any run on this host).
 */
static void init_generator(struct diff_run *run)
{
	diff_generator_init(&run->gen, &run->host.usable);
	for (unsigned int mode = MMU_MODE_NONE + 1; mode < DIFF_NR_MODES; mode++)
		if (!diff_host_runs_mode(&run->host, mode))
			diff_generator_demote_mode(&run->gen, mode);
}

int main(int argc, char **argv)
{
	struct diff_run run = { .reports = 0 };
	struct error err;
	struct timespec t0, t1;
	uint64_t mismatches = 0;
	int r;

	if (parse_options(argc, argv, &run.opt) < 0) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	r = diff_vm_create(&run.vm, &err);
	if (r == -ENODEV) {
		printf("SKIP: %s; the mmu/ differential test needs KVM\n", err.msg);
		return SKIP_STATUS;
	}
	if (r < 0) {
		fprintf(stderr, "mmu-diff: %s\n", err.msg);
		return 2;
	}
	if (create_model(&run.model) < 0) {
		fprintf(stderr, "mmu-diff: model memory: out of memory\n");
		return 2;
	}
	r = diff_host_probe(run.vm, &run.host, &err);
	if (r < 0) {
		fprintf(stderr, "mmu-diff: probing the host: %s\n", err.msg);
		return 2;
	}
	diff_host_print(&run.host);
	printf("mmu-diff: mmu/ predicts with MMU_CTX_KVM_COMPAT: KVM's #PF I bit for fetches "
	       "(EFER.NX or CR4.SMEP in every paging mode, E8) and 36-bit PSE-36 (E10, E11)\n");
	init_generator(&run);
	printf("mmu-diff: seed 0x%llx, cases %llu..%llu\n", (unsigned long long)run.opt.seed,
	       (unsigned long long)run.opt.first,
	       (unsigned long long)(run.opt.first + run.opt.cases - 1));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = run_cases(&run, &mismatches);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r < 0)
		return 2;
	diff_stats_print(&run.stats, run.opt.seed,
			 (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	print_skips(&run);
	mismatches += coverage_holes(&run);
	r = run_states(&run, &mismatches);
	diff_vm_free(run.vm);
	if (r < 0)
		return 2;
	return mismatches ? 1 : 0;
}
