/* SPDX-License-Identifier: MIT */
/* vmctl pause, resume, reset and regs. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/vmctl.h"

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "";
}

static void print_list(json_object *o, const char *key)
{
	json_object *a;

	if (!json_object_object_get_ex(o, key, &a))
		return;
	printf(" [");
	for (size_t i = 0; i < json_object_array_length(a); i++)
		printf("%s%s", i ? " " : "", json_object_get_string(json_object_array_get_idx(a, i)));
	printf("]");
}

static void print_gprs(json_object *r)
{
	static const char *const names[] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
					     "rsp", "rbp", "r8",  "r9",	 "r10", "r11",
					     "r12", "r13", "r14", "r15" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		printf("%-3s=%-18s%s", names[i], str(r, names[i]), i % 4 == 3 ? "\n" : " ");
	printf("rip=%s rflags=%s", str(r, "rip"), str(r, "rflags"));
	print_list(r, "rflags_bits");
	printf(" iopl=%s\n", str(r, "iopl"));
}

static bool flag(json_object *o, const char *key)
{
	return json_object_get_boolean(json_object_object_get(o, key));
}

/* Attribute flags: P (present), S (code/data, not system), D/B, L, G, AVL,
 * and "unusable" (KVM's flag for a null or unloaded segment). */
static void print_segment(json_object *r, const char *name)
{
	json_object *s;

	if (!json_object_object_get_ex(r, name, &s))
		return;
	printf("%-4s sel=%-6s base=%-18s limit=%-10s dpl=%s %s%s%s%s%s%s%s  %s\n", name,
	       str(s, "selector"), str(s, "base"), str(s, "limit"), str(s, "dpl"),
	       flag(s, "present") ? "P" : "-", flag(s, "s") ? " S" : "", flag(s, "db") ? " D/B" : "",
	       flag(s, "l") ? " L" : "", flag(s, "g") ? " G" : "", flag(s, "avl") ? " AVL" : "",
	       flag(s, "unusable") ? " unusable" : "", str(s, "kind"));
}

static void print_table(json_object *r, const char *name)
{
	json_object *t;

	if (json_object_object_get_ex(r, name, &t))
		printf("%-4s base=%s limit=%s\n", name, str(t, "base"), str(t, "limit"));
}

static void print_pdptrs(json_object *r)
{
	json_object *a;

	if (!json_object_object_get_ex(r, "pdptrs", &a))
		return;
	printf("pdptrs");
	for (size_t i = 0; i < json_object_array_length(a); i++)
		printf(" %s", json_object_get_string(json_object_array_get_idx(a, i)));
	printf("\n");
}

/* Prints each present key of o as key=value, per_line to a line. */
static void print_fields(json_object *o, const char *const *keys, size_t n, size_t per_line)
{
	size_t shown = 0;

	for (size_t i = 0; i < n; i++) {
		if (!json_object_object_get(o, keys[i]))
			continue;
		printf("%s%s=%s", shown % per_line ? " " : "", keys[i], str(o, keys[i]));
		if (++shown % per_line == 0)
			printf("\n");
	}
	if (shown % per_line)
		printf("\n");
}

static void print_fpu(json_object *r)
{
	static const char *const control[] = { "fcw", "fsw", "ftw", "fop", "fip", "fdp", "mxcsr" };
	static const char *const stack[] = { "st0", "st1", "st2", "st3", "st4", "st5", "st6", "st7" };
	static const char *const xmm[] = { "xmm0", "xmm1", "xmm2",  "xmm3",  "xmm4",  "xmm5",
					   "xmm6", "xmm7", "xmm8",  "xmm9",  "xmm10", "xmm11",
					   "xmm12", "xmm13", "xmm14", "xmm15" };
	json_object *f;

	if (!json_object_object_get_ex(r, "fpu", &f))
		return;
	print_fields(f, control, ARRAY_SIZE(control), ARRAY_SIZE(control));
	print_fields(f, stack, ARRAY_SIZE(stack), 4);
	print_fields(f, xmm, ARRAY_SIZE(xmm), 2);
}

static void print_msrs(json_object *r)
{
	static const char *const names[] = { "sysenter_cs", "sysenter_esp", "sysenter_eip",
					     "star",	    "lstar",	    "cstar",
					     "sfmask",	    "kernel_gs_base", "tsc_aux",
					     "pat" };
	json_object *m;

	if (json_object_object_get(r, "tsc"))
		printf("tsc=%s\n", str(r, "tsc"));
	if (json_object_object_get_ex(r, "msrs", &m))
		print_fields(m, names, ARRAY_SIZE(names), 3);
}

static void print_registers(json_object *r)
{
	static const char *const segments[] = { "cs", "ds", "es", "fs", "gs", "ss", "tr", "ldtr" };

	printf("vcpu %s: %s mode, CPL %s\n", str(r, "vcpu"), str(r, "mode"), str(r, "cpl"));
	print_gprs(r);
	for (size_t i = 0; i < sizeof(segments) / sizeof(segments[0]); i++)
		print_segment(r, segments[i]);
	print_table(r, "gdt");
	print_table(r, "idt");
	printf("cr0=%s", str(r, "cr0"));
	print_list(r, "cr0_bits");
	printf(" cr2=%s cr3=%s\ncr4=%s", str(r, "cr2"), str(r, "cr3"), str(r, "cr4"));
	print_list(r, "cr4_bits");
	printf(" cr8=%s\nefer=%s", str(r, "cr8"), str(r, "efer"));
	print_list(r, "efer_bits");
	printf(" apic_base=%s", str(r, "apic_base"));
	if (json_object_object_get(r, "xcr0"))
		printf(" xcr0=%s", str(r, "xcr0"));
	printf("\n");
	print_pdptrs(r);
	if (json_object_object_get(r, "dr7"))
		printf("dr0=%s dr1=%s dr2=%s dr3=%s dr6=%s dr7=%s\n", str(r, "dr0"), str(r, "dr1"),
		       str(r, "dr2"), str(r, "dr3"), str(r, "dr6"), str(r, "dr7"));
	print_fpu(r);
	print_msrs(r);
}

int vmctl_cmd_regs(struct vmctl *ctl, int argc, char **argv)
{
	json_object *p = json_object_new_object(), *r;
	int rc = vmctl_parse_vcpu_command("regs", argc, argv, p);

	if (rc) {
		json_object_put(p);
		return rc;
	}
	rc = vmctl_call(ctl, "vcpu.registers", p, &r);
	if (rc)
		return rc;
	if (ctl->json)
		vmctl_print(ctl, r, NULL);
	else
		print_registers(r);
	json_object_put(r);
	return VMCTL_EXIT_OK;
}
