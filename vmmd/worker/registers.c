/* SPDX-License-Identifier: MIT */
/*
 * vcpu.registers: every register of a vCPU, as JSON with lower-case names
 * ("rip", "rflags", "cr0", ...), values as "0x..." strings, and decoded
 * flag bits and segment attributes beside them. Read on the vCPU's own
 * thread between two KVM_RUNs (vcpu_call), so it is one consistent
 * snapshot of that vCPU.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/macro.h"
#include "vcpu/state.h"
#include "vcpu/vcpu.h"
#include "vcpu/x86.h"
#include "vmmd/worker/inspect.h"
#include "vmmd/worker/vm.h"

/* MSRs shown by lower-case name (SDM Vol. 4 Table 2-2), each when KVM
 * reads it on the vCPU. */
static const struct named_msr {
	const char *name;
	uint32_t index;
} shown_msrs[] = {
	{ "sysenter_cs", MSR_IA32_SYSENTER_CS },
	{ "sysenter_esp", MSR_IA32_SYSENTER_ESP },
	{ "sysenter_eip", MSR_IA32_SYSENTER_EIP },
	{ "star", MSR_STAR },
	{ "lstar", MSR_LSTAR },
	{ "cstar", MSR_CSTAR },
	{ "sfmask", MSR_SYSCALL_MASK },
	{ "kernel_gs_base", MSR_KERNEL_GS_BASE },
	{ "tsc_aux", MSR_TSC_AUX },
	{ "pat", MSR_IA32_PAT },
};

struct all_regs {
	struct kvm_regs regs;
	struct kvm_sregs2 sregs;
	bool pdptrs_valid;
	struct kvm_debugregs debug;
	bool have_debug;
	struct kvm_xcrs xcrs;
	bool have_xcrs;
	struct kvm_fpu fpu;
	bool have_fpu;
	uint64_t tsc;
	bool have_tsc;
	uint64_t msr[ARRAY_SIZE(shown_msrs)];
	bool have_msr[ARRAY_SIZE(shown_msrs)];
};

struct bit_name {
	unsigned int bit;
	const char *name;
};

/* SDM Vol. 1 3.4.3 (EFLAGS), Vol. 3 2.5 (CR0, CR4), 2.2.1 (EFER). */
static const struct bit_name rflags_bits[] = {
	{ 0, "CF" },  { 2, "PF" },  { 4, "AF" },  { 6, "ZF" },	 { 7, "SF" },  { 8, "TF" },
	{ 9, "IF" },  { 10, "DF" }, { 11, "OF" }, { 14, "NT" },	 { 16, "RF" }, { 17, "VM" },
	{ 18, "AC" }, { 19, "VIF" }, { 20, "VIP" }, { 21, "ID" }, { 0, NULL },
};
static const struct bit_name cr0_bits[] = {
	{ 0, "PE" }, { 1, "MP" },  { 2, "EM" },	 { 3, "TS" },  { 4, "ET" },  { 5, "NE" },
	{ 16, "WP" }, { 18, "AM" }, { 29, "NW" }, { 30, "CD" }, { 31, "PG" }, { 0, NULL },
};
static const struct bit_name cr4_bits[] = {
	{ 0, "VME" },	    { 1, "PVI" },	 { 2, "TSD" },	      { 3, "DE" },
	{ 4, "PSE" },	    { 5, "PAE" },	 { 6, "MCE" },	      { 7, "PGE" },
	{ 8, "PCE" },	    { 9, "OSFXSR" },	 { 10, "OSXMMEXCPT" }, { 11, "UMIP" },
	{ 12, "LA57" },	    { 13, "VMXE" },	 { 14, "SMXE" },       { 16, "FSGSBASE" },
	{ 17, "PCIDE" },    { 18, "OSXSAVE" },	 { 20, "SMEP" },       { 21, "SMAP" },
	{ 22, "PKE" },	    { 23, "CET" },	 { 24, "PKS" },	       { 0, NULL },
};
static const struct bit_name efer_bits[] = {
	{ 0, "SCE" }, { 8, "LME" }, { 10, "LMA" }, { 11, "NXE" }, { 12, "SVME" },
	{ 13, "LMSLE" }, { 14, "FFXSR" }, { 15, "TCE" }, { 0, NULL },
};

/* Runs on the vCPU's thread. */
static int read_all(struct vcpu *v, void *arg)
{
	struct all_regs *r = arg;
	int fd = vcpu_fd(v);
	struct kvm_sregs s;

	if (ioctl(fd, KVM_GET_REGS, &r->regs) < 0)
		return negative_errno();
	if (ioctl(fd, KVM_GET_SREGS2, &r->sregs) == 0) {
		r->pdptrs_valid = r->sregs.flags & KVM_SREGS2_FLAGS_PDPTRS_VALID;
	} else {
		/* Before Linux 5.16: the same fields without PDPTEs. */
		if (ioctl(fd, KVM_GET_SREGS, &s) < 0)
			return negative_errno();
		memcpy(&r->sregs, &s, offsetof(struct kvm_sregs, interrupt_bitmap));
	}
	r->have_debug = ioctl(fd, KVM_GET_DEBUGREGS, &r->debug) == 0;
	r->have_xcrs = ioctl(fd, KVM_GET_XCRS, &r->xcrs) == 0;
	r->have_fpu = vcpu_get_fpu_regs(v, &r->fpu, NULL) == 0;
	r->have_tsc = vcpu_get_tsc(v, &r->tsc, NULL) == 0;
	for (size_t i = 0; i < ARRAY_SIZE(shown_msrs); i++) {
		struct kvm_msr_entry e = { .index = shown_msrs[i].index };
		r->have_msr[i] = vcpu_get_msrs(v, &e, 1, NULL) == 0;
		r->msr[i] = e.data;
	}
	return 0;
}

static json_object *hex(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	return json_object_new_string(buf);
}

static json_object *bits(uint64_t v, const struct bit_name *names)
{
	json_object *a = json_object_new_array();

	for (; names->name; names++)
		if (v & (1ULL << names->bit))
			json_object_array_add(a, json_object_new_string(names->name));
	return a;
}

/* SDM Vol. 3 3.4.5.1 (code and data types) and 3.5 (system types). */
static void segment_kind(const struct kvm_segment *s, char *buf, size_t size)
{
	static const char *const system_types[16] = {
		[1] = "16-bit TSS (available)", [2] = "LDT", [3] = "16-bit TSS (busy)",
		[4] = "16-bit call gate", [9] = "TSS (available)", [11] = "TSS (busy)",
		[12] = "call gate", [14] = "interrupt gate", [15] = "trap gate",
	};
	unsigned int t = s->type & 15;

	if (s->unusable)
		snprintf(buf, size, "unusable");
	else if (!s->s)
		snprintf(buf, size, "system: %s", system_types[t] ? system_types[t] : "reserved");
	else if (t & 8)
		snprintf(buf, size, "code, execute%s%s%s", t & 2 ? "/read" : "-only",
			 t & 4 ? ", conforming" : "", t & 1 ? ", accessed" : "");
	else
		snprintf(buf, size, "data, read%s%s%s", t & 2 ? "/write" : "-only",
			 t & 4 ? ", expand-down" : "", t & 1 ? ", accessed" : "");
}

static json_object *segment(const struct kvm_segment *s)
{
	json_object *o = json_object_new_object();
	char kind[64];

	segment_kind(s, kind, sizeof(kind));
	json_object_object_add(o, "selector", hex(s->selector));
	json_object_object_add(o, "base", hex(s->base));
	json_object_object_add(o, "limit", hex(s->limit));
	json_object_object_add(o, "type", json_object_new_int(s->type));
	json_object_object_add(o, "dpl", json_object_new_int(s->dpl));
	json_object_object_add(o, "present", json_object_new_boolean(s->present));
	json_object_object_add(o, "s", json_object_new_boolean(s->s));
	json_object_object_add(o, "db", json_object_new_boolean(s->db));
	json_object_object_add(o, "l", json_object_new_boolean(s->l));
	json_object_object_add(o, "g", json_object_new_boolean(s->g));
	json_object_object_add(o, "avl", json_object_new_boolean(s->avl));
	json_object_object_add(o, "unusable", json_object_new_boolean(s->unusable));
	json_object_object_add(o, "kind", json_object_new_string(kind));
	return o;
}

static json_object *table(const struct kvm_dtable *t)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "base", hex(t->base));
	json_object_object_add(o, "limit", hex(t->limit));
	return o;
}

/* SDM Vol. 3 2.2: the operating mode the registers describe. */
static const char *cpu_mode(const struct kvm_sregs2 *s)
{
	if (!(s->cr0 & 1))
		return "real";
	if (s->efer & (1 << 10))
		return s->cs.l ? "long" : "compatibility";
	return "protected";
}

static void add_gprs(json_object *o, const struct kvm_regs *r)
{
	const struct {
		const char *name;
		uint64_t value;
	} gprs[] = {
		{ "rax", r->rax }, { "rbx", r->rbx }, { "rcx", r->rcx }, { "rdx", r->rdx },
		{ "rsi", r->rsi }, { "rdi", r->rdi }, { "rsp", r->rsp }, { "rbp", r->rbp },
		{ "r8", r->r8 },   { "r9", r->r9 },   { "r10", r->r10 }, { "r11", r->r11 },
		{ "r12", r->r12 }, { "r13", r->r13 }, { "r14", r->r14 }, { "r15", r->r15 },
		{ "rip", r->rip },
	};

	for (size_t i = 0; i < ARRAY_SIZE(gprs); i++)
		json_object_object_add(o, gprs[i].name, hex(gprs[i].value));
	json_object_object_add(o, "rflags", hex(r->rflags));
	json_object_object_add(o, "rflags_bits", bits(r->rflags, rflags_bits));
	json_object_object_add(o, "iopl", json_object_new_int((int)((r->rflags >> 12) & 3)));
}

static void add_segments(json_object *o, const struct kvm_sregs2 *s)
{
	json_object_object_add(o, "cs", segment(&s->cs));
	json_object_object_add(o, "ds", segment(&s->ds));
	json_object_object_add(o, "es", segment(&s->es));
	json_object_object_add(o, "fs", segment(&s->fs));
	json_object_object_add(o, "gs", segment(&s->gs));
	json_object_object_add(o, "ss", segment(&s->ss));
	json_object_object_add(o, "tr", segment(&s->tr));
	json_object_object_add(o, "ldtr", segment(&s->ldt));
	json_object_object_add(o, "gdt", table(&s->gdt));
	json_object_object_add(o, "idt", table(&s->idt));
}

static void add_control(json_object *o, const struct all_regs *a)
{
	const struct kvm_sregs2 *s = &a->sregs;

	json_object_object_add(o, "cr0", hex(s->cr0));
	json_object_object_add(o, "cr0_bits", bits(s->cr0, cr0_bits));
	json_object_object_add(o, "cr2", hex(s->cr2));
	json_object_object_add(o, "cr3", hex(s->cr3));
	json_object_object_add(o, "cr4", hex(s->cr4));
	json_object_object_add(o, "cr4_bits", bits(s->cr4, cr4_bits));
	json_object_object_add(o, "cr8", hex(s->cr8));
	json_object_object_add(o, "efer", hex(s->efer));
	json_object_object_add(o, "efer_bits", bits(s->efer, efer_bits));
	json_object_object_add(o, "apic_base", hex(s->apic_base));
	if (a->pdptrs_valid) {
		json_object *p = json_object_new_array();
		for (unsigned int i = 0; i < 4; i++)
			json_object_array_add(p, hex(s->pdptrs[i]));
		json_object_object_add(o, "pdptrs", p);
	}
	for (unsigned int i = 0; a->have_xcrs && i < a->xcrs.nr_xcrs; i++)
		if (a->xcrs.xcrs[i].xcr == 0)
			json_object_object_add(o, "xcr0", hex(a->xcrs.xcrs[i].value));
}

static void add_debug(json_object *o, const struct all_regs *a)
{
	static const char *const names[] = { "dr0", "dr1", "dr2", "dr3" };

	if (!a->have_debug)
		return;
	for (unsigned int i = 0; i < 4; i++)
		json_object_object_add(o, names[i], hex(a->debug.db[i]));
	json_object_object_add(o, "dr6", hex(a->debug.dr6));
	json_object_object_add(o, "dr7", hex(a->debug.dr7));
}

/* "0x" and the n bytes of a little-endian value, most significant first,
 * every digit kept (x87 and vector registers have a fixed width). */
static json_object *wide_hex(const uint8_t *bytes, size_t n)
{
	char buf[2 + 2 * 16 + 1] = "0x";

	for (size_t i = 0; i < n; i++)
		snprintf(buf + 2 + 2 * i, sizeof(buf) - 2 - 2 * i, "%02x", bytes[n - 1 - i]);
	return json_object_new_string(buf);
}

/* x87 and SSE as FXSAVE lays them out (SDM Vol. 1 Table 10-2): ST0-ST7 in
 * stack order, 80 bits each; the tag word in its abridged form, one bit
 * per physical register, 1 = not empty. */
static void add_fpu(json_object *o, const struct all_regs *a)
{
	const struct kvm_fpu *f = &a->fpu;
	json_object *fpu;
	char name[8];

	if (!a->have_fpu)
		return;
	fpu = json_object_new_object();
	json_object_object_add(fpu, "fcw", hex(f->fcw));
	json_object_object_add(fpu, "fsw", hex(f->fsw));
	json_object_object_add(fpu, "ftw", hex(f->ftwx));
	json_object_object_add(fpu, "fop", hex(f->last_opcode));
	json_object_object_add(fpu, "fip", hex(f->last_ip));
	json_object_object_add(fpu, "fdp", hex(f->last_dp));
	json_object_object_add(fpu, "mxcsr", hex(f->mxcsr));
	for (unsigned int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "st%u", i);
		json_object_object_add(fpu, name, wide_hex(f->fpr[i], 10));
	}
	for (unsigned int i = 0; i < 16; i++) {
		snprintf(name, sizeof(name), "xmm%u", i);
		json_object_object_add(fpu, name, wide_hex(f->xmm[i], 16));
	}
	json_object_object_add(o, "fpu", fpu);
}

static void add_msrs(json_object *o, const struct all_regs *a)
{
	json_object *msrs = json_object_new_object();

	for (size_t i = 0; i < ARRAY_SIZE(shown_msrs); i++)
		if (a->have_msr[i])
			json_object_object_add(msrs, shown_msrs[i].name, hex(a->msr[i]));
	json_object_object_add(o, "msrs", msrs);
	if (a->have_tsc)
		json_object_object_add(o, "tsc", hex(a->tsc));
}

int inspect_registers(struct vm *vm, unsigned int index, json_object **ret,
		      struct api_error *err)
{
	struct all_regs a = { 0 };
	json_object *o;
	int rc = inspect_on_vcpu(vm, index, read_all, &a, err);

	if (rc < 0)
		return rc;
	o = json_object_new_object();
	json_object_object_add(o, "vcpu", json_object_new_int((int)index));
	json_object_object_add(o, "mode", json_object_new_string(cpu_mode(&a.sregs)));
	/* SDM Vol. 3 5.5: the CPL is SS.DPL (CS.DPL differs for conforming code);
	 * 0 in real mode. */
	json_object_object_add(o, "cpl", json_object_new_int(a.sregs.cr0 & 1 ? a.sregs.ss.dpl : 0));
	add_gprs(o, &a.regs);
	add_segments(o, &a.sregs);
	add_control(o, &a);
	add_debug(o, &a);
	add_fpu(o, &a);
	add_msrs(o, &a);
	*ret = o;
	return 0;
}
