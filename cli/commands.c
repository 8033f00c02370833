/* SPDX-License-Identifier: MIT */
/* The vmctl command table and the commands that are one API call each. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/vmctl.h"

/* vmctl's own ceilings on option values; vmmd applies the host's. */
#define VMCTL_MEMORY_MAX (64L << 20) /* MiB */
#define VMCTL_VCPUS_MAX 4096L

static const char *str_or(json_object *o, const char *key, const char *def)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return def;
	return json_object_get_string(v);
}

static const struct vmctl_args no_args = { .min_args = 0, .max_args = 0 };
static const struct vmctl_args one_name = { .min_args = 1, .max_args = 1 };

static json_object *name_params(const char *name)
{
	json_object *p = json_object_new_object();

	json_object_object_add(p, "name", json_object_new_string(name));
	return p;
}

/* ---------------------------------------------------------------- printing */

static void print_info(json_object *info)
{
	static const char *const keys[] = { "name",	   "state",  "memory",	    "vcpus",
					    "kernel",	   "cmdline", "boot",	    "transient",
					    "pid",	   "uptime",  "exit_status", "reason",
					    "console_log" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = str_or(info, keys[i], NULL);
		if (!v)
			continue;
		/* One column for every value: "memory     : 32 MiB". */
		printf("%-11s: ", keys[i]);
		if (strcmp(keys[i], "memory") == 0)
			printf("%s MiB\n", v);
		else if (strcmp(keys[i], "uptime") == 0)
			printf("%.1f s\n", atof(v));
		else
			printf("%s\n", v);
	}
}

static void format_uptime(json_object *vm, char *buf, size_t size)
{
	json_object *u;
	double s;

	if (!json_object_object_get_ex(vm, "uptime", &u) || !u) {
		snprintf(buf, size, "-");
		return;
	}
	s = json_object_get_double(u);
	if (s < 120)
		snprintf(buf, size, "%.0fs", s);
	else if (s < 7200)
		snprintf(buf, size, "%.0fm", s / 60);
	else
		snprintf(buf, size, "%.1fh", s / 3600);
}

static void print_list(json_object *result)
{
	json_object *vms;
	size_t n, w = 4;

	if (!json_object_object_get_ex(result, "vms", &vms))
		return;
	n = json_object_array_length(vms);
	for (size_t i = 0; i < n; i++)
		w = MAX(w, strlen(str_or(json_object_array_get_idx(vms, i), "name", "")));
	printf("%-*s  %-8s  %10s  %5s  %7s  %s\n", (int)w, "NAME", "STATE", "MEMORY", "VCPUS",
	       "PID", "UPTIME");
	for (size_t i = 0; i < n; i++) {
		json_object *vm = json_object_array_get_idx(vms, i);
		char mem[32], up[32];
		snprintf(mem, sizeof(mem), "%s MiB", str_or(vm, "memory", "?"));
		format_uptime(vm, up, sizeof(up));
		printf("%-*s  %-8s  %10s  %5s  %7s  %s\n", (int)w, str_or(vm, "name", ""),
		       str_or(vm, "state", ""), mem, str_or(vm, "vcpus", ""), str_or(vm, "pid", "-"),
		       up);
	}
}

static void print_version(json_object *r)
{
	printf("vmmd %s (pid %s), vmctl %s\n", str_or(r, "version", "?"), str_or(r, "pid", "?"),
	       VMCTL_VERSION);
}

static void print_state(json_object *info)
{
	const char *reason = str_or(info, "reason", NULL);

	printf("%s: %s%s%s%s\n", str_or(info, "name", ""), str_or(info, "state", ""),
	       reason ? " (" : "", reason ? reason : "", reason ? ")" : "");
}

static void print_reset(json_object *info)
{
	printf("%s: reset, %s\n", str_or(info, "name", ""), str_or(info, "state", ""));
}

static void print_deleted(json_object *r)
{
	printf("%s: deleted\n", str_or(r, "name", ""));
}

/* ---------------------------------------------------------------- commands */

static int simple_call(struct vmctl *ctl, const char *method, json_object *params,
		       void (*print_human)(json_object *))
{
	json_object *result;
	int rc = vmctl_call(ctl, method, params, &result);

	if (rc)
		return rc;
	vmctl_print(ctl, result, print_human);
	json_object_put(result);
	return VMCTL_EXIT_OK;
}

static int name_command(struct vmctl *ctl, int argc, char **argv, const char *method,
			void (*print_human)(json_object *))
{
	int rc = vmctl_parse_args(vmctl_find_command(argv[0]), argc, argv, &one_name);

	if (rc)
		return rc;
	return simple_call(ctl, method, name_params(argv[optind]), print_human);
}

static int cmd_start(struct vmctl *ctl, int argc, char **argv)
{
	return name_command(ctl, argc, argv, "vm.start", print_state);
}

static int cmd_stop(struct vmctl *ctl, int argc, char **argv)
{
	return name_command(ctl, argc, argv, "vm.stop", print_state);
}

static int cmd_pause(struct vmctl *ctl, int argc, char **argv)
{
	return name_command(ctl, argc, argv, "vm.pause", print_state);
}

static int cmd_resume(struct vmctl *ctl, int argc, char **argv)
{
	return name_command(ctl, argc, argv, "vm.resume", print_state);
}

static int cmd_reset(struct vmctl *ctl, int argc, char **argv)
{
	return name_command(ctl, argc, argv, "vm.reset", print_reset);
}

static int cmd_delete(struct vmctl *ctl, int argc, char **argv)
{
	return name_command(ctl, argc, argv, "vm.delete", print_deleted);
}

static int cmd_info(struct vmctl *ctl, int argc, char **argv)
{
	return name_command(ctl, argc, argv, "vm.info", print_info);
}

static int cmd_list(struct vmctl *ctl, int argc, char **argv)
{
	int rc = vmctl_parse_args(vmctl_find_command("list"), argc, argv, &no_args);

	return rc ? rc : simple_call(ctl, "vm.list", NULL, print_list);
}

static int cmd_version(struct vmctl *ctl, int argc, char **argv)
{
	int rc = vmctl_parse_args(vmctl_find_command("version"), argc, argv, &no_args);

	return rc ? rc : simple_call(ctl, "daemon.version", NULL, print_version);
}

int vmctl_vm_option(int opt, const char *value, void *ctx)
{
	struct vmctl_vm_options *o = ctx;
	long v;

	switch (opt) {
	case 'm':
		if (vmctl_parse_uint("--memory", value, VMCTL_MEMORY_MAX, &v) < 0)
			return -EINVAL;
		json_object_object_add(o->params, "memory", json_object_new_int64(v));
		return 0;
	case 'c':
		if (vmctl_parse_uint("--vcpus", value, VMCTL_VCPUS_MAX, &v) < 0)
			return -EINVAL;
		json_object_object_add(o->params, "vcpus", json_object_new_int64(v));
		return 0;
	case 'k':
		o->kernel = value;
		return 0;
	case 'l':
		json_object_object_add(o->params, "cmdline", json_object_new_string(value));
		return 0;
	case 'b':
		json_object_object_add(o->params, "boot", json_object_new_string(value));
		return 0;
	case 'n':
		o->name = value;
		return 0;
	}
	return -EINVAL;
}

static const struct option create_options[] = {
	{ "memory", required_argument, NULL, 'm' },
	{ "vcpus", required_argument, NULL, 'c' },
	{ "kernel", required_argument, NULL, 'k' },
	{ "cmdline", required_argument, NULL, 'l' },
	{ "boot", required_argument, NULL, 'b' },
	{ 0 },
};

static int create_vm(struct vmctl *ctl, int argc, char **argv, struct vmctl_vm_options *o)
{
	const struct vmctl_command *cmd = vmctl_find_command("create");
	struct vmctl_args args = { .options = create_options, .option = vmctl_vm_option, .ctx = o,
				   .min_args = 1, .max_args = 1 };
	bool memory;
	int rc;

	rc = vmctl_parse_args(cmd, argc, argv, &args);
	if (rc)
		return rc;
	memory = json_object_object_get_ex(o->params, "memory", NULL);
	if (!memory || !o->kernel)
		return vmctl_usage_error(cmd, "create: missing %s", !memory && !o->kernel
					 ? "--memory and --kernel" : !memory ? "--memory" : "--kernel");
	rc = vmctl_add_kernel(o->params, o->kernel);
	if (rc)
		return rc;
	json_object_object_add(o->params, "name", json_object_new_string(argv[optind]));
	return simple_call(ctl, "vm.create", json_object_get(o->params), print_info);
}

static int cmd_create(struct vmctl *ctl, int argc, char **argv)
{
	struct vmctl_vm_options o = { .params = json_object_new_object() };
	int rc = create_vm(ctl, argc, argv, &o);

	json_object_put(o.params);
	return rc;
}

static int cmd_console(struct vmctl *ctl, int argc, char **argv)
{
	bool interactive = isatty(STDIN_FILENO);
	char state[32];
	int rc = vmctl_parse_args(vmctl_find_command("console"), argc, argv, &one_name);

	if (rc)
		return rc;
	/* Banner before the history, so it never lands inside guest output, and
	 * raw mode before it too, so keys typed right away reach the guest. */
	if (interactive) {
		fprintf(stderr, "Connected to %s's console; Ctrl-] detaches.\r\n", argv[optind]);
		vmctl_terminal_raw();
	}
	rc = vmctl_console_attach(ctl, argv[optind], true, state, sizeof(state));
	if (rc)
		return rc;
	if (strcmp(state, "running") != 0 && strcmp(state, "starting") != 0) {
		vmctl_notice("VM '%s' is %s", argv[optind], state);
		return VMCTL_EXIT_OK;
	}
	return vmctl_console_loop(ctl, argv[optind], interactive, true, NULL);
}

static int cmd_help(struct vmctl *ctl, int argc, char **argv)
{
	static const struct vmctl_args args = { .min_args = 0, .max_args = 1 };
	const struct vmctl_command *cmd = NULL;
	int rc = vmctl_parse_args(vmctl_find_command("help"), argc, argv, &args);

	if (rc)
		return rc;
	if (optind < argc && !(cmd = vmctl_find_command(argv[optind]))) {
		vmctl_error("unknown command '%s' (see vmctl --help)", argv[optind]);
		return VMCTL_EXIT_USAGE;
	}
	if (cmd) {
		vmctl_command_usage(cmd, stdout);
		return VMCTL_EXIT_OK;
	}
	printf("Commands:\n");
	for (const struct vmctl_command *c = vmctl_commands; c->name; c++)
		printf("  %-9s %s\n", c->name, c->summary);
	return VMCTL_EXIT_OK;
}

const struct vmctl_command vmctl_commands[] = {
	{ "create", "NAME --memory MiB --kernel PATH [--vcpus N] [--cmdline S] [--boot multiboot|flat]",
	  "Define a VM",
	  "  --memory MiB   guest RAM in MiB (required)\n"
	  "  --kernel PATH  multiboot ELF kernel or flat binary (required)\n"
	  "  --vcpus N      virtual CPUs (default 1)\n"
	  "  --cmdline S    kernel command line\n"
	  "  --boot P       boot protocol: multiboot (default) or flat\n",
	  cmd_create },
	{ "start", "NAME", "Start a VM", NULL, cmd_start },
	{ "stop", "NAME", "Power a VM off", NULL, cmd_stop },
	{ "pause", "NAME", "Stop every vCPU of a running VM at an instruction boundary", NULL,
	  cmd_pause },
	{ "resume", "NAME", "Let a paused VM run again", NULL, cmd_resume },
	{ "reset", "NAME", "Reset a VM as the reset button would",
	  "Every vCPU returns to its power-on state, the devices and interrupt\n"
	  "controllers too, and the kernel file is read again and loaded with fresh\n"
	  "boot information. Guest RAM otherwise keeps its contents. A paused VM stays\n"
	  "paused. A kernel file that is gone or no longer valid leaves the VM as it was.\n",
	  cmd_reset },
	{ "delete", "NAME", "Delete a VM that is not running", NULL, cmd_delete },
	{ "list", "", "List VMs", NULL, cmd_list },
	{ "info", "NAME", "Show a VM's definition and state", NULL, cmd_info },
	{ "console", "NAME", "Attach to a VM's serial console (Ctrl-] detaches)",
	  "Shows the recent output, then everything the guest prints; keys typed go to\n"
	  "the guest's COM1. Ctrl-] detaches and leaves the VM running. Ends when the VM\n"
	  "stops.\n",
	  cmd_console },
	{ "run", "KERNEL [--memory MiB] [--vcpus N] [--cmdline S] [--boot P] [--name NAME]",
	  "Boot a transient VM with its console on stdout",
	  "The VM exists only while vmctl runs. vmctl's exit status is the value the guest\n"
	  "wrote to the debug-exit port 0xf4, 0 when it powered off cleanly, 125 when it\n"
	  "crashed (the reason goes to stderr), 124 when the value does not fit in an exit\n"
	  "status (above 255; the value goes to stderr), 1 for vmctl or vmmd errors. With\n"
	  "no vmmd reachable, vmctl starts a private one for the duration.\n"
	  "  --memory MiB   guest RAM (default 64)\n"
	  "  --vcpus N      virtual CPUs (default 1)\n"
	  "  --cmdline S    kernel command line\n"
	  "  --boot P       multiboot (default) or flat\n"
	  "  --name NAME    VM name (default run-PID)\n",
	  vmctl_cmd_run },
	{ "translate", "NAME GVA [--vcpu N] [--write|--fetch] [--user]",
	  "Translate a guest virtual address with a vCPU's page tables",
	  "Shows the page walk (each entry's address, value and flags) and the guest\n"
	  "physical address, or the fault the access would take with its error code.\n"
	  "Reads page tables without setting accessed/dirty bits.\n"
	  "  --vcpu N   whose registers (CR0/CR3/CR4/EFER) to use (default 0)\n"
	  "  --write    a write access (default: read)\n"
	  "  --fetch    an instruction fetch\n"
	  "  --user     as CPL 3 code (default: supervisor)\n"
	  "With --json: the walk, \"gpa\" (null on a fault) and \"error_code\".\n",
	  vmctl_cmd_translate },
	{ "mem", "read NAME ADDR LEN [--virtual] [--vcpu N]", "Read guest memory as a hexdump",
	  "ADDR is guest physical, or guest virtual with --virtual (translated by vCPU\n"
	  "N's page tables, page by page). At most 65536 bytes. With --json, the bytes\n"
	  "come base64-encoded in \"data\".\n",
	  vmctl_cmd_mem },
	{ "role", "NAME [--vcpu N]", "Show a vCPU's paging mode and MMU role", NULL, vmctl_cmd_role },
	{ "regs", "NAME [--vcpu N]", "Show every register of a vCPU",
	  "General-purpose registers, RIP and RFLAGS with its flags decoded, segments\n"
	  "with their attributes, descriptor tables, control and debug registers,\n"
	  "EFER, APIC base, XCR0, PAE PDPTEs, x87 (FCW ... ST7), MXCSR, XMM0-15, the TSC\n"
	  "and the system-call MSRs. With --json, under their lower-case names (rip,\n"
	  "rflags, cr0, fpu, msrs, tsc, ...). Pause the VM first for registers that do\n"
	  "not change under you.\n",
	  vmctl_cmd_regs },
	{ "state", "save|load NAME FILE [--vcpu N]", "Save or load a paused vCPU's complete state",
	  "save writes vCPU N's complete state (registers, FPU/SSE, MSRs, local APIC,\n"
	  "events, TSC, ...) to FILE, replacing it atomically, mode 0600. load puts a\n"
	  "state saved that way back into vCPU N; vmmd checks it first (format, checksum,\n"
	  "vCPU, CPU model, architectural consistency) and refuses it, listing every\n"
	  "problem, with the vCPU untouched. The VM must be paused. FILE is read and\n"
	  "written by vmctl; vmmd only sees the bytes.\n"
	  "  --vcpu N   which vCPU (default 0)\n"
	  "With --json: name, vcpu, file, size and format_version.\n",
	  vmctl_cmd_state },
	{ "events", "", "Print VM state changes and daemon events as they happen",
	  "One line per event: state changes with their reason, worker crashes, vmmd\n"
	  "shutting down. With --json, each notification as one JSON line. Ends when\n"
	  "vmmd shuts down (status 0) or the connection is lost (status 1).\n",
	  vmctl_cmd_events },
	{ "version", "", "Show vmmd's and vmctl's versions", NULL, cmd_version },
	{ "help", "[COMMAND]", "Show help for vmctl or a command", NULL, cmd_help },
	{ 0 },
};
