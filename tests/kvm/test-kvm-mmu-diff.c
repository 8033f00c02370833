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
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "tests/kvm/mmu-diff-case.h"
#include "tests/kvm/mmu-diff-host.h"
#include "tests/kvm/mmu-diff-sregs.h"
#include "tests/kvm/mmu-diff-vm.h"
#include "tests/kvm/mmu-diff.h"
#include "util/macro.h"

#define SKIP_STATUS 77
#define DEFAULT_SEED 0x6D6D752D64696666ULL /* "mmu-diff" */
#define DEFAULT_CASES 20000
#define DEFAULT_STATES 3000
#define SLOW_CASES 1000000
#define SLOW_STATES 200000
#define DEFAULT_MAX_REPORTS 20
#define NR_MODES (MMU_MODE_5LEVEL + 1)
#define MISMATCH_MAX 4096
#define WALK_TEXT_MAX 4096

struct options {
	uint64_t seed;
	uint64_t first;
	uint64_t cases;
	uint64_t states; /* validator differential */
	unsigned int max_reports;
	bool verbose;
	int only_mode; /* -1: every mode */
};

enum outcome_class {
	CLASS_SUCCESS,
	CLASS_PF_NOT_PRESENT,
	CLASS_PF_RESERVED,
	CLASS_PF_PROTECTION,
	CLASS_GP,
	CLASS_OTHER,
	NR_CLASSES,
};

static const char *const class_names[NR_CLASSES] = {
	[CLASS_SUCCESS] = "success",
	[CLASS_PF_NOT_PRESENT] = "#PF not present",
	[CLASS_PF_RESERVED] = "#PF reserved bit",
	[CLASS_PF_PROTECTION] = "#PF protection",
	[CLASS_GP] = "#GP non-canonical",
	[CLASS_OTHER] = "other",
};

enum feature_count {
	FEAT_WP,
	FEAT_NX,
	FEAT_PSE_32BIT,
	FEAT_LA57_OUTSIDE_LONG,
	FEAT_AC,
	FEAT_PAGE_4M,
	FEAT_PAGE_2M,
	FEAT_PAGE_1G,
	FEAT_ABOVE_4G,
	FEAT_PKEY_BITS,
	FEAT_SMEP,
	FEAT_SMAP,
	FEAT_PKE,
	FEAT_ROM_TABLE,
	NR_FEATURES,
};

static const char *const feature_names[NR_FEATURES] = {
	[FEAT_WP] = "CR0.WP=1",
	[FEAT_NX] = "EFER.NX=1",
	[FEAT_PSE_32BIT] = "CR4.PSE=1 with 32-bit paging",
	[FEAT_LA57_OUTSIDE_LONG] = "CR4.LA57=1 outside IA-32e mode",
	[FEAT_AC] = "EFLAGS.AC=1",
	[FEAT_PAGE_4M] = "4 MiB pages",
	[FEAT_PAGE_2M] = "2 MiB pages",
	[FEAT_PAGE_1G] = "1 GiB pages",
	[FEAT_ABOVE_4G] = "data above 4 GiB",
	[FEAT_PKEY_BITS] = "leaf protection-key bits set",
	[FEAT_SMEP] = "CR4.SMEP=1",
	[FEAT_SMAP] = "CR4.SMAP=1",
	[FEAT_PKE] = "CR4.PKE=1",
	[FEAT_ROM_TABLE] = "a table in ROM",
};

struct stats {
	uint64_t cases[NR_MODES][2]; /* [mode][cpl == 3] */
	uint64_t mismatches[NR_MODES][2];
	uint64_t classes[NR_CLASSES];
	uint64_t class_mismatches[NR_CLASSES][2]; /* [class][cpl == 3] */
	uint64_t accesses[DIFF_NR_ACCESSES];
	uint64_t features[NR_FEATURES];
	uint64_t skipped[DIFF_NR_DEVIATIONS];
	uint64_t invalid; /* states mmu/'s validator says KVM refuses: not cases */
	uint64_t self_checked; /* cases not run, predicted on the model only */
	uint64_t self_check_failures;
};

struct prediction {
	struct mmu_walk_result walk;	  /* the access (DIFF_DESC_WRITE: the write-back) */
	struct mmu_walk_result desc_read; /* DIFF_DESC_WRITE: the descriptor read */
	bool write_back;		  /* walk is the write-back */
};

struct mismatch {
	char text[MISMATCH_MAX];
	size_t len;
};

struct diff_run {
	struct options opt;
	struct diff_vm *vm;
	struct diff_memory model; /* mmu/'s copy of guest memory */
	struct diff_generator gen;
	struct diff_host host;
	struct stats stats;
	unsigned int reports;
};

/* ---------------------------------------------------------------- mismatches */

static void _printf_(2, 3) note(struct mismatch *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (m->len >= sizeof(m->text))
		return;
	va_start(ap, fmt);
	n = vsnprintf(m->text + m->len, sizeof(m->text) - m->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		m->len = MIN(m->len + (size_t)n, sizeof(m->text));
}

/* ---------------------------------------------------------------- prediction */

/* The model's memory as mmu/ sees it: the same slots as the guest's, the
 * ROM read-only (A/D updates there are skipped, E35). */
static struct mmu_memory model_memory(const struct diff_memory *model,
				      struct mmu_ram_region regions[3])
{
	regions[0] = (struct mmu_ram_region){ .gpa = 0, .size = DIFF_RAM_SIZE, .hva = model->low };
	regions[1] = (struct mmu_ram_region){
		.gpa = DIFF_DATA_HIGH, .size = DIFF_DATA_HIGH_SIZE, .hva = model->high,
	};
	regions[2] = (struct mmu_ram_region){
		.gpa = DIFF_ROM_BASE, .size = DIFF_ROM_SIZE, .hva = model->rom, .readonly = true,
	};
	return (struct mmu_memory){ .regions = regions, .nr_regions = 3 };
}

/*
 * mmu/'s verdict for case c on the model's copy of its tables, A/D bits
 * set as the CPU would. KVM's emulator loads a descriptor whose accessed
 * bit is clear by reading it and writing all 8 bytes back with the bit set
 * (emulate.c, __load_segment_descriptor()), so a DIFF_DESC_WRITE case is
 * two walks at the descriptor's address: an implicit read, then, if it
 * succeeded, an implicit write.
 */
static int predict(const struct diff_run *run, const struct diff_case *c,
		   struct prediction *ret)
{
	struct mmu_ram_region regions[3];
	struct mmu_memory mem = model_memory(&run->model, regions);
	struct mmu_context ctx;
	struct mmu_walk_request req = {
		.addr = c->gva,
		.access = diff_case_mmu_access(c),
		.flags = MMU_WALK_SET_AD,
		.eflags_ac = c->eflags_ac,
		.pkru = c->pkru,
		.cr3 = c->cr3,
		.pdptrs = c->mode == MMU_MODE_PAE ? c->pdptrs : NULL,
	};
	int r;

	memset(ret, 0, sizeof(*ret));
	r = mmu_context_init(&ctx, &c->regs, &run->gen.features, MMU_CTX_KVM_COMPAT);
	if (r == 0)
		r = mmu_walk(&ctx, NULL, &mem, &req, &ret->walk);
	if (r < 0 || c->access != DIFF_DESC_WRITE || ret->walk.fault.type != MMU_FAULT_NONE)
		return r;
	ret->desc_read = ret->walk;
	ret->write_back = true;
	req.access |= MMU_ACCESS_WRITE;
	return mmu_walk(&ctx, NULL, &mem, &req, &ret->walk);
}

static enum outcome_class classify(const struct mmu_fault *f)
{
	switch (f->type) {
	case MMU_FAULT_NONE:
		return CLASS_SUCCESS;
	case MMU_FAULT_PF:
		if (!(f->error_code & MMU_PFERR_P))
			return CLASS_PF_NOT_PRESENT;
		return (f->error_code & MMU_PFERR_RSVD) ? CLASS_PF_RESERVED : CLASS_PF_PROTECTION;
	case MMU_FAULT_GP:
		return CLASS_GP;
	default:
		return CLASS_OTHER;
	}
}

/* ---------------------------------------------------------------- comparison */

static uint64_t address_mask(const struct diff_case *c)
{
	return (c->regs.efer & MMU_EFER_LMA) ? ~0ULL : 0xFFFFFFFFULL;
}

static uint32_t guest_word(const struct diff_run *run, uint64_t gpa)
{
	uint32_t v = 0;
	const void *p = diff_memory_ptr(&run->vm->ram, gpa, 4);

	if (p)
		memcpy(&v, p, 4);
	return v;
}

static const char *outcome_name(enum diff_outcome o)
{
	static const char *const names[] = {
		[DIFF_OUTCOME_DONE] = "access completed",
		[DIFF_OUTCOME_FETCHED] = "fetch payload ran",
		[DIFF_OUTCOME_EXCEPTION] = "exception",
		[DIFF_OUTCOME_EXIT] = "exit",
		[DIFF_OUTCOME_REFUSED] = "KVM_SET_SREGS2 refused the state",
	};

	return names[o];
}

static void describe_observation(struct mismatch *m, const struct diff_observation *obs)
{
	note(m, "  observed: %s", outcome_name(obs->outcome));
	switch (obs->outcome) {
	case DIFF_OUTCOME_DONE:
		note(m, ", ECX=0x%08x, FS.base=0x%llx", obs->value, (unsigned long long)obs->fs_base);
		break;
	case DIFF_OUTCOME_FETCHED:
		note(m, ", tag 0x%08x", obs->value);
		break;
	case DIFF_OUTCOME_EXCEPTION:
		note(m, " vector %u, error code 0x%x, CR2 0x%llx, at RIP 0x%llx", obs->vector,
		     obs->error_code, (unsigned long long)obs->cr2,
		     (unsigned long long)obs->fault_rip);
		break;
	case DIFF_OUTCOME_EXIT:
		note(m, " reason %u, port 0x%x, RIP 0x%llx, MMIO GPA 0x%llx", obs->exit_reason,
		     obs->port, (unsigned long long)obs->rip, (unsigned long long)obs->mmio_gpa);
		break;
	case DIFF_OUTCOME_REFUSED:
		note(m, " (mmu/'s validator accepts it)");
		break;
	}
	note(m, "\n");
}

static void compare_success(const struct diff_run *run, const struct diff_case *c,
			    const struct prediction *p, const struct diff_observation *obs,
			    struct mismatch *m)
{
	uint64_t pa = p->walk.pa;
	enum diff_outcome want = c->access == DIFF_FETCH ? DIFF_OUTCOME_FETCHED : DIFF_OUTCOME_DONE;

	if (c->mode != MMU_MODE_NONE && pa != c->data_gpa)
		note(m, "  mmu/ translates to GPA 0x%llx, the chain was built for 0x%llx\n",
		     (unsigned long long)pa, (unsigned long long)c->data_gpa);
	if (obs->outcome != want) {
		note(m, "  expected: %s at GPA 0x%llx\n", outcome_name(want), (unsigned long long)pa);
		return;
	}
	switch (c->access) {
	case DIFF_READ:
		if (obs->value != guest_word(run, pa))
			note(m, "  read 0x%08x, GPA 0x%llx holds 0x%08x\n", obs->value,
			     (unsigned long long)pa, guest_word(run, pa));
		break;
	case DIFF_WRITE:
		if (guest_word(run, pa) != c->value)
			note(m, "  wrote 0x%08x, GPA 0x%llx holds 0x%08x\n", c->value,
			     (unsigned long long)pa, guest_word(run, pa));
		break;
	case DIFF_FETCH:
		if (obs->value != c->value)
			note(m, "  fetched payload tag 0x%08x, expected 0x%08x\n", obs->value, c->value);
		break;
	default:
		if (obs->fs_base != c->value)
			note(m, "  FS.base 0x%llx after the load, descriptor base 0x%08x\n",
			     (unsigned long long)obs->fs_base, c->value);
		break;
	}
}

static void compare_fault(const struct diff_case *c, const struct mmu_fault *f,
			  const struct diff_observation *obs, struct mismatch *m)
{
	uint64_t cr2 = f->type == MMU_FAULT_PF ? f->address & address_mask(c) : DIFF_CR2_SENTINEL;

	if (obs->outcome == DIFF_OUTCOME_EXCEPTION && obs->vector == f->vector &&
	    obs->error_code == f->error_code && obs->cr2 == cr2)
		return;
	note(m, "  expected: exception vector %u, error code 0x%x, CR2 0x%llx\n", f->vector,
	     f->error_code, (unsigned long long)cr2);
}

/* The case tables and the scaffolding tables must be identical in the
 * guest and in the model: both start equal, KVM sets A/D bits in one and
 * mmu/ in the other. */
static void compare_tables(const struct diff_run *run, struct mismatch *m)
{
	for (unsigned int i = 0; i < diff_nr_table_pages; i++) {
		uint64_t page = diff_table_pages[i];
		const uint8_t *g = diff_memory_ptr(&run->vm->ram, page, 4096);
		const uint8_t *w = diff_memory_ptr(&run->model, page, 4096);

		if (memcmp(g, w, 4096) == 0)
			continue;
		for (unsigned int off = 0; off < 4096; off += 8) {
			uint64_t gv, wv;
			memcpy(&gv, g + off, 8);
			memcpy(&wv, w + off, 8);
			if (gv != wv)
				note(m, "  table entry @0x%llx: guest 0x%016llx, mmu/ 0x%016llx\n",
				     (unsigned long long)(page + off), (unsigned long long)gv,
				     (unsigned long long)wv);
		}
	}
}

static void compare(const struct diff_run *run, const struct diff_case *c,
		    const struct prediction *p, const struct diff_observation *obs,
		    struct mismatch *m)
{
	const struct mmu_fault *f = &p->walk.fault;
	size_t before = m->len;

	if (f->type == MMU_FAULT_NONE)
		compare_success(run, c, p, obs, m);
	else
		compare_fault(c, f, obs, m);
	if (m->len != before)
		describe_observation(m, obs);
	compare_tables(run, m);
}

/* ---------------------------------------------------------------- reporting */

static void print_walk(FILE *out, const char *title, const struct mmu_walk_result *w)
{
	char text[WALK_TEXT_MAX];

	if (mmu_walk_format(w, MMU_FORMAT_TEXT, text, sizeof(text), NULL) < 0)
		snprintf(text, sizeof(text), "(walk too long to print)\n");
	fprintf(out, "  %s:\n", title);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		fprintf(out, "    %s\n", line);
}

static void report_mismatch(struct diff_run *run, const struct diff_case *c,
			    const struct prediction *p, const struct mismatch *m)
{
	if (run->reports++ >= run->opt.max_reports)
		return;
	printf("MISMATCH case %llu (reproduce: --seed 0x%llx --case %llu)\n",
	       (unsigned long long)c->index, (unsigned long long)c->seed,
	       (unsigned long long)c->index);
	diff_case_print(stdout, c);
	if (p->write_back)
		print_walk(stdout, "mmu/ descriptor read", &p->desc_read);
	print_walk(stdout, p->write_back ? "mmu/ descriptor write-back" : "mmu/", &p->walk);
	fputs(m->text, stdout);
}

/* ---------------------------------------------------------------- statistics */

static void count_features(struct stats *s, const struct diff_case *c)
{
	bool paging = c->mode != MMU_MODE_NONE;

	s->features[FEAT_WP] += !!(c->regs.cr0 & MMU_CR0_WP);
	s->features[FEAT_NX] += !!(c->regs.efer & MMU_EFER_NX);
	s->features[FEAT_PSE_32BIT] += c->mode == MMU_MODE_32BIT && (c->regs.cr4 & MMU_CR4_PSE);
	s->features[FEAT_LA57_OUTSIDE_LONG] +=
		(c->regs.cr4 & MMU_CR4_LA57) && !(c->regs.efer & MMU_EFER_LMA);
	s->features[FEAT_AC] += c->eflags_ac;
	s->features[FEAT_PAGE_4M] += paging && c->page_size == 4ULL << 20;
	s->features[FEAT_PAGE_2M] += paging && c->page_size == 2ULL << 20;
	s->features[FEAT_PAGE_1G] += paging && c->page_size == 1ULL << 30;
	s->features[FEAT_ABOVE_4G] += c->data_gpa >= DIFF_DATA_HIGH;
	s->features[FEAT_PKEY_BITS] += (c->regs.efer & MMU_EFER_LMA) && c->nr_entries &&
				       (c->entries[c->nr_entries - 1].value >> 59 & 0xF);
	s->features[FEAT_SMEP] += !!(c->regs.cr4 & MMU_CR4_SMEP);
	s->features[FEAT_SMAP] += !!(c->regs.cr4 & MMU_CR4_SMAP);
	s->features[FEAT_PKE] += !!(c->regs.cr4 & MMU_CR4_PKE);
	s->features[FEAT_ROM_TABLE] += c->rom_level != 0;
}

static void print_summary(const struct diff_run *run, double seconds)
{
	const struct stats *s = &run->stats;
	uint64_t total = 0, bad = 0;

	printf("mmu-diff: cases by paging mode and CPL (mismatches in brackets)\n");
	for (unsigned int mode = 0; mode < NR_MODES; mode++) {
		printf("  %-8s CPL 0: %7llu [%llu]   CPL 3: %7llu [%llu]\n",
		       mmu_paging_mode_name(mode), (unsigned long long)s->cases[mode][0],
		       (unsigned long long)s->mismatches[mode][0],
		       (unsigned long long)s->cases[mode][1],
		       (unsigned long long)s->mismatches[mode][1]);
		total += s->cases[mode][0] + s->cases[mode][1];
		bad += s->mismatches[mode][0] + s->mismatches[mode][1];
	}
	printf("mmu-diff: expected outcomes (mismatches at CPL 0/3):");
	for (unsigned int i = 0; i < NR_CLASSES; i++)
		printf(" %s %llu [%llu/%llu]%s", class_names[i], (unsigned long long)s->classes[i],
		       (unsigned long long)s->class_mismatches[i][0],
		       (unsigned long long)s->class_mismatches[i][1], i + 1 < NR_CLASSES ? "," : "\n");
	printf("mmu-diff: accesses:");
	for (unsigned int i = 0; i < DIFF_NR_ACCESSES; i++)
		printf(" %s %llu%s", diff_access_name(i), (unsigned long long)s->accesses[i],
		       i + 1 < DIFF_NR_ACCESSES ? "," : "\n");
	printf("mmu-diff: cases with");
	for (unsigned int i = 0; i < NR_FEATURES; i++)
		printf(" %s: %llu%s", feature_names[i], (unsigned long long)s->features[i],
		       i + 1 < NR_FEATURES ? "," : "\n");
	for (unsigned int i = 1; i < DIFF_NR_DEVIATIONS; i++)
		if (s->skipped[i])
			printf("mmu-diff: skipped %llu cases because %s\n",
			       (unsigned long long)s->skipped[i], diff_deviation_reason(i));
	if (s->self_checked)
		printf("mmu-diff: %llu cases not run were checked on the model alone (mmu/ translates "
		       "where the chain points), %llu inconsistent\n",
		       (unsigned long long)s->self_checked, (unsigned long long)s->self_check_failures);
	if (s->invalid)
		printf("mmu-diff: %llu generated states are invalid (mmu/'s validator: KVM refuses "
		       "them), not cases\n", (unsigned long long)s->invalid);
	printf("mmu-diff: %llu cases compared, %llu mismatches, seed 0x%llx, %.1f s\n",
	       (unsigned long long)total, (unsigned long long)(bad + s->self_check_failures),
	       (unsigned long long)run->opt.seed, seconds);
}

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

static void record_case(struct diff_run *run, const struct diff_case *c,
			const struct prediction *p, bool matched)
{
	enum outcome_class cls = classify(&p->walk.fault);
	bool cpl3 = c->cpl == 3;

	run->stats.cases[c->mode][cpl3]++;
	run->stats.classes[cls]++;
	run->stats.accesses[c->access]++;
	count_features(&run->stats, c);
	if (!matched) {
		run->stats.mismatches[c->mode][cpl3]++;
		run->stats.class_mismatches[cls][cpl3]++;
	}
	if (run->opt.verbose)
		printf("case %llu: %s CPL %u %s AC=%u CR0=0x%llx CR4=0x%llx EFER=0x%llx PKRU=0x%08x "
		       "target 0x%llx: %s, %s\n",
		       (unsigned long long)c->index, mmu_paging_mode_name(c->mode), c->cpl,
		       diff_access_name(c->access), c->eflags_ac, (unsigned long long)c->regs.cr0,
		       (unsigned long long)c->regs.cr4, (unsigned long long)c->regs.efer, c->pkru,
		       (unsigned long long)c->gva, class_names[cls], matched ? "match" : "MISMATCH");
}

/*
 * A case the host cannot run is still predicted, on the model alone: a
 * successful walk must land where the generator aimed the chain, so the
 * generator and mmu/ stay consistent in every mode, and a host that runs
 * the mode gets no false mismatches. Returns 1 if consistent, 0 if not.
 */
static int self_check_case(struct diff_run *run, const struct diff_case *c, struct error *err)
{
	struct prediction p;
	struct mismatch m = { .len = 0 };
	int r;

	diff_case_install(c, &run->model);
	r = predict(run, c, &p);
	if (r < 0)
		return error_set(err, r, "mmu/ could not walk case %llu: %s",
				 (unsigned long long)c->index, strerror(-r));
	diff_pattern_restore(&run->model, c->data_gpa);
	run->stats.self_checked++;
	if (p.walk.fault.type != MMU_FAULT_NONE || c->mode == MMU_MODE_NONE ||
	    p.walk.pa == c->data_gpa)
		return 1;
	run->stats.self_check_failures++;
	note(&m, "  (not run on this host) mmu/ translates to GPA 0x%llx, the chain was built "
		 "for 0x%llx\n", (unsigned long long)p.walk.pa, (unsigned long long)c->data_gpa);
	report_mismatch(run, c, &p, &m);
	return 0;
}

/* Whether case c is not run here: outside --mode, a host deviation, or a
 * state KVM refuses (counted where it belongs). */
static bool case_not_run(struct diff_run *run, const struct diff_case *c)
{
	enum diff_deviation dev;

	if (run->opt.only_mode >= 0 && c->mode != (enum mmu_paging_mode)run->opt.only_mode)
		return true;
	dev = diff_host_deviation(&run->host, c);
	if (dev != DIFF_DEVIATION_NONE) {
		run->stats.skipped[dev]++;
		return true;
	}
	if (case_state_invalid(run, c)) {
		run->stats.invalid++;
		return true;
	}
	return false;
}

/* Runs case `index`: 1 if it matched (or was not run and is consistent), 0
 * if not, negative errno on a KVM or library error. */
static int run_case(struct diff_run *run, uint64_t index, struct error *err)
{
	struct diff_case c;
	struct prediction p;
	struct diff_observation obs;
	struct mismatch m = { .len = 0 };
	int r;

	diff_case_generate(&run->gen, run->opt.seed, index, &c);
	if (case_not_run(run, &c))
		return self_check_case(run, &c, err);
	diff_case_install(&c, &run->vm->ram);
	diff_case_install(&c, &run->model);
	r = predict(run, &c, &p);
	if (r < 0)
		return error_set(err, r, "mmu/ could not walk case %llu: %s",
				 (unsigned long long)index, strerror(-r));
	r = diff_vm_run_case(run->vm, &c, &obs, err);
	if (r < 0) {
		diff_case_print(stderr, &c);
		return r;
	}
	compare(run, &c, &p, &obs, &m);
	record_case(run, &c, &p, m.len == 0);
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
	fprintf(f, "usage: test-kvm-mmu-diff [--seed N] [--cases N] [--case K] [--states N] "
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
	return (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
}

static int parse_mode(const char *name)
{
	for (int mode = 0; mode < NR_MODES; mode++)
		if (strcmp(name, mmu_paging_mode_name(mode)) == 0)
			return mode;
	return -1;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	const char *slow = getenv("VMMD_SLOW");

	*o = (struct options){ .seed = DEFAULT_SEED, .cases = DEFAULT_CASES,
			       .states = DEFAULT_STATES, .max_reports = DEFAULT_MAX_REPORTS,
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

static bool mode_skipped_here(const struct diff_host *h, enum mmu_paging_mode mode)
{
	return (mode == MMU_MODE_32BIT && h->present[DIFF_DEVIATION_32BIT_PAGING]) ||
	       (mode == MMU_MODE_PAE && h->present[DIFF_DEVIATION_PAE_PAGING]);
}

/*
 * A run that compared nothing in some paging mode at some CPL, or never
 * saw one of the outcome classes, proves less than it claims: report each
 * hole. Returns the number of holes.
 */
static unsigned int coverage_holes(const struct diff_run *run)
{
	const struct stats *s = &run->stats;
	unsigned int holes = 0;

	if (run->opt.cases < COVERAGE_MIN_CASES || run->opt.only_mode >= 0)
		return 0;
	for (unsigned int i = 0; i < run->gen.nr_modes; i++) {
		enum mmu_paging_mode mode = run->gen.modes[i];

		for (unsigned int cpl3 = 0; cpl3 < 2 && !mode_skipped_here(&run->host, mode); cpl3++)
			if (!s->cases[mode][cpl3]) {
				printf("mmu-diff: coverage hole: no %s case at CPL %u\n",
				       mmu_paging_mode_name(mode), cpl3 ? 3 : 0);
				holes++;
			}
	}
	for (unsigned int i = 0; i < CLASS_OTHER; i++)
		if (!s->classes[i]) {
			printf("mmu-diff: coverage hole: no case expected %s\n", class_names[i]);
			holes++;
		}
	return holes;
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
	if (res.skipped)
		printf("mmu-diff: validator: skipped %llu states because they set a CR4 bit this "
		       "host's KVM_SET_SREGS2 treats otherwise than its CPUID says (see above)\n",
		       (unsigned long long)res.skipped);
	*mismatches += res.mismatches;
	return 0;
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
	diff_generator_init(&run.gen, &run.host.usable);
	printf("mmu-diff: seed 0x%llx, cases %llu..%llu\n", (unsigned long long)run.opt.seed,
	       (unsigned long long)run.opt.first,
	       (unsigned long long)(run.opt.first + run.opt.cases - 1));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = run_cases(&run, &mismatches);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r < 0)
		return 2;
	print_summary(&run, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	mismatches += coverage_holes(&run);
	r = run_states(&run, &mismatches);
	diff_vm_free(run.vm);
	if (r < 0)
		return 2;
	return mismatches ? 1 : 0;
}
