/* SPDX-License-Identifier: MIT */
/*
 * Prediction and comparison for the mmu/ differential test: mmu/'s verdict
 * on the model's copy of a case, checked against what the guest reported
 * and against every page-table byte, and the printed mismatch.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tests/kvm/mmu-diff-compare.h"
#include "tests/kvm/mmu-diff.h"
#include "util/macro.h"

#define WALK_TEXT_MAX 4096

void diff_note(struct diff_mismatch *m, const char *fmt, ...)
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
		.gpa = DIFF_DATA_HIGH,
		.size = DIFF_DATA_HIGH_SIZE,
		.hva = model->high,
	};
	regions[2] = (struct mmu_ram_region){
		.gpa = DIFF_ROM_BASE,
		.size = DIFF_ROM_SIZE,
		.hva = model->rom,
		.readonly = true,
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
int diff_predict(const struct diff_memory *model, const struct mmu_cpu_features *features,
		 const struct diff_case *c, struct diff_prediction *ret)
{
	struct mmu_ram_region regions[3];
	struct mmu_memory mem = model_memory(model, regions);
	struct diff_prediction p = { .write_back = false };
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

	r = mmu_context_init(&ctx, &c->regs, features, MMU_CTX_KVM_COMPAT);
	if (r == 0)
		r = mmu_walk(&ctx, NULL, &mem, &req, &p.walk);
	if (r == 0 && c->access == DIFF_DESC_WRITE && p.walk.fault.type == MMU_FAULT_NONE) {
		p.desc_read = p.walk;
		p.write_back = true;
		req.access |= MMU_ACCESS_WRITE;
		r = mmu_walk(&ctx, NULL, &mem, &req, &p.walk);
	}
	if (r < 0)
		return r;
	*ret = p;
	return 0;
}

/* ---------------------------------------------------------------- comparison */

static uint64_t address_mask(const struct diff_case *c)
{
	return (c->regs.efer & MMU_EFER_LMA) ? ~0ULL : 0xFFFFFFFFULL;
}

static uint32_t guest_word(const struct diff_memory *guest, uint64_t gpa)
{
	uint32_t v = 0;
	const void *p = diff_memory_ptr(guest, gpa, 4);

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
		[DIFF_OUTCOME_TIMEOUT] = "no report (the guest ran on for seconds)",
	};

	return names[o];
}

static void describe_observation(struct diff_mismatch *m, const struct diff_observation *obs)
{
	diff_note(m, "  observed: %s", outcome_name(obs->outcome));
	switch (obs->outcome) {
	case DIFF_OUTCOME_DONE:
		diff_note(m, ", ECX=0x%08x, FS.base=0x%llx", obs->value,
			  (unsigned long long)obs->fs_base);
		break;
	case DIFF_OUTCOME_FETCHED:
		diff_note(m, ", tag 0x%08x", obs->value);
		break;
	case DIFF_OUTCOME_EXCEPTION:
		diff_note(m, " vector %u, error code 0x%x, CR2 0x%llx, at RIP 0x%llx", obs->vector,
			  obs->error_code, (unsigned long long)obs->cr2,
			  (unsigned long long)obs->fault_rip);
		break;
	case DIFF_OUTCOME_EXIT:
		diff_note(m, " reason %u, port 0x%x, RIP 0x%llx, MMIO GPA 0x%llx", obs->exit_reason,
			  obs->port, (unsigned long long)obs->rip,
			  (unsigned long long)obs->mmio_gpa);
		break;
	case DIFF_OUTCOME_REFUSED:
		diff_note(m, " (mmu/'s validator accepts it)");
		break;
	case DIFF_OUTCOME_TIMEOUT:
		break;
	}
	diff_note(m, "\n");
}

static void compare_success(const struct diff_memory *guest, const struct diff_case *c,
			    const struct diff_prediction *p, const struct diff_observation *obs,
			    struct diff_mismatch *m)
{
	uint64_t pa = p->walk.pa;
	enum diff_outcome want = c->access == DIFF_FETCH ? DIFF_OUTCOME_FETCHED : DIFF_OUTCOME_DONE;

	if (c->mode != MMU_MODE_NONE && pa != c->data_gpa)
		diff_note(m, "  mmu/ translates to GPA 0x%llx, the chain was built for 0x%llx\n",
			  (unsigned long long)pa, (unsigned long long)c->data_gpa);
	if (obs->outcome != want) {
		diff_note(m, "  expected: %s at GPA 0x%llx\n", outcome_name(want),
			  (unsigned long long)pa);
		return;
	}
	switch (c->access) {
	case DIFF_READ:
		if (obs->value != guest_word(guest, pa))
			diff_note(m, "  read 0x%08x, GPA 0x%llx holds 0x%08x\n", obs->value,
				  (unsigned long long)pa, guest_word(guest, pa));
		break;
	case DIFF_WRITE:
		if (guest_word(guest, pa) != c->value)
			diff_note(m, "  wrote 0x%08x, GPA 0x%llx holds 0x%08x\n", c->value,
				  (unsigned long long)pa, guest_word(guest, pa));
		break;
	case DIFF_FETCH:
		if (obs->value != c->value)
			diff_note(m, "  fetched payload tag 0x%08x, expected 0x%08x\n", obs->value,
				  c->value);
		break;
	default:
		if (obs->fs_base != c->value)
			diff_note(m, "  FS.base 0x%llx after the load, descriptor base 0x%08x\n",
				  (unsigned long long)obs->fs_base, c->value);
		break;
	}
}

static void compare_fault(const struct diff_case *c, const struct mmu_fault *f,
			  const struct diff_observation *obs, struct diff_mismatch *m)
{
	uint64_t cr2 = f->type == MMU_FAULT_PF ? f->address & address_mask(c) : DIFF_CR2_SENTINEL;

	if (obs->outcome == DIFF_OUTCOME_EXCEPTION && obs->vector == f->vector &&
	    obs->error_code == f->error_code && obs->cr2 == cr2)
		return;
	diff_note(m, "  expected: exception vector %u, error code 0x%x, CR2 0x%llx\n", f->vector,
		  f->error_code, (unsigned long long)cr2);
}

/* The case tables and the scaffolding tables must be identical in the
 * guest and in the model: both start equal, KVM sets A/D bits in one and
 * mmu/ in the other. */
static void compare_tables(const struct diff_memory *guest, const struct diff_memory *model,
			   struct diff_mismatch *m)
{
	for (unsigned int i = 0; i < diff_nr_table_pages; i++) {
		uint64_t page = diff_table_pages[i];
		const uint8_t *g = diff_memory_ptr(guest, page, 4096);
		const uint8_t *w = diff_memory_ptr(model, page, 4096);

		if (memcmp(g, w, 4096) == 0)
			continue;
		for (unsigned int off = 0; off < 4096; off += 8) {
			uint64_t gv, wv;
			memcpy(&gv, g + off, 8);
			memcpy(&wv, w + off, 8);
			if (gv != wv)
				diff_note(
					m,
					"  table entry @0x%llx: guest 0x%016llx, mmu/ 0x%016llx\n",
					(unsigned long long)(page + off), (unsigned long long)gv,
					(unsigned long long)wv);
		}
	}
}

void diff_compare(const struct diff_memory *guest, const struct diff_memory *model,
		  const struct diff_case *c, const struct diff_prediction *p,
		  const struct diff_observation *obs, struct diff_mismatch *m)
{
	const struct mmu_fault *f = &p->walk.fault;
	size_t before = m->len;

	if (f->type == MMU_FAULT_NONE)
		compare_success(guest, c, p, obs, m);
	else
		compare_fault(c, f, obs, m);
	if (m->len != before)
		describe_observation(m, obs);
	compare_tables(guest, model, m);
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

static void print_case_and_walks(const struct diff_case *c, const struct diff_prediction *p)
{
	diff_case_print(stdout, c);
	if (p->write_back)
		print_walk(stdout, "mmu/ descriptor read", &p->desc_read);
	print_walk(stdout, p->write_back ? "mmu/ descriptor write-back" : "mmu/", &p->walk);
}

void diff_report_mismatch(const struct diff_case *c, const struct diff_prediction *p,
			  const struct diff_mismatch *m)
{
	printf("MISMATCH case %llu (reproduce: --seed 0x%llx --case %llu)\n",
	       (unsigned long long)c->index, (unsigned long long)c->seed,
	       (unsigned long long)c->index);
	print_case_and_walks(c, p);
	fputs(m->text, stdout);
}

void diff_report_match(const struct diff_case *c, const struct diff_prediction *p,
		       const struct diff_observation *obs)
{
	struct diff_mismatch m = { .len = 0 };

	printf("case %llu of seed 0x%llx matches\n", (unsigned long long)c->index,
	       (unsigned long long)c->seed);
	print_case_and_walks(c, p);
	describe_observation(&m, obs);
	fputs(m.text, stdout);
}
