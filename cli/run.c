/* SPDX-License-Identifier: MIT */
/*
 * vmctl run: a transient VM whose console is this process's stdout. The VM
 * belongs to this connection (vmmd deletes it when we disconnect), so an
 * interrupted vmctl never leaves it behind.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/vmctl.h"

#define RUN_DEFAULT_MEMORY_MIB 64

struct run_options {
	char name[65];
	json_object *params; /* vm.create params being built */
};

/* The options, then the kernel: 0, VMCTL_EXIT_USAGE, or VMCTL_EXIT_ERROR
 * when the kernel file cannot be found. */
static int parse_run_args(int argc, char **argv, struct run_options *o)
{
	static const struct option opts[] = {
		{ "memory", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'c' },
		{ "cmdline", required_argument, NULL, 'l' },
		{ "boot", required_argument, NULL, 'b' },
		{ "name", required_argument, NULL, 'n' },
		{ 0 },
	};
	struct vmctl_vm_options vm = { .params = o->params };
	struct vmctl_args args = { .options = opts, .option = vmctl_vm_option, .ctx = &vm,
				   .min_args = 1, .max_args = 1 };
	int rc;

	rc = vmctl_parse_args(vmctl_find_command("run"), argc, argv, &args);
	if (rc == 0)
		rc = vmctl_add_kernel(o->params, argv[optind]);
	if (rc)
		return rc;
	if (vm.name)
		snprintf(o->name, sizeof(o->name), "%s", vm.name);
	else
		snprintf(o->name, sizeof(o->name), "run-%d", (int)getpid());
	json_object_object_add(o->params, "name", json_object_new_string(o->name));
	json_object_object_add(o->params, "transient", json_object_new_boolean(true));
	if (!json_object_object_get_ex(o->params, "memory", NULL))
		json_object_object_add(o->params, "memory",
				       json_object_new_int(RUN_DEFAULT_MEMORY_MIB));
	return 0;
}

/* Connects, starting a private vmmd when none answers. */
static int connect_or_start(struct vmctl *ctl, struct private_daemon **pd)
{
	struct api_error err;

	if (api_client_connect(ctl->socket_path, &ctl->client, &err) == 0)
		return 0;
	if (private_daemon_start(pd, ctl->socket_path, sizeof(ctl->socket_path)) < 0)
		return -1;
	return vmctl_connect(ctl);
}

/* The guest's debug-exit value as vmctl's status, if an exit status can
 * hold it: a guest writing 256 must not look like one writing 0. */
static int exit_code_of_status(int64_t status)
{
	if (status >= 0 && status <= 0xFF)
		return (int)status;
	vmctl_notice("the guest wrote %lld (0x%llx) to the debug-exit port, which does not fit "
		     "in an exit status (0-255); exiting with %d",
		    (long long)status, (unsigned long long)status, VMCTL_EXIT_STATUS_TOO_WIDE);
	return VMCTL_EXIT_STATUS_TOO_WIDE;
}

/* The exit status `vmctl run` passes on, from the VM's final vm.info. */
static int exit_code_of(struct vmctl *ctl, json_object *info)
{
	json_object *state, *status, *reason;
	const char *s;

	if (ctl->json)
		vmctl_print(ctl, info, NULL);
	json_object_object_get_ex(info, "state", &state);
	s = state ? json_object_get_string(state) : "";
	if (strcmp(s, "crashed") == 0) {
		json_object_object_get_ex(info, "reason", &reason);
		vmctl_notice("VM crashed: %s", reason ? json_object_get_string(reason) : "unknown");
		return VMCTL_EXIT_CRASHED;
	}
	if (json_object_object_get_ex(info, "exit_status", &status) && status)
		return exit_code_of_status(json_object_get_int64(status));
	return VMCTL_EXIT_OK;
}

static int run_vm(struct vmctl *ctl, struct run_options *o)
{
	json_object *p, *info = NULL;
	char state[32];
	int rc;

	rc = vmctl_call(ctl, "vm.create", json_object_get(o->params), NULL);
	if (rc)
		return rc;
	rc = vmctl_console_attach(ctl, o->name, false, state, sizeof(state));
	if (rc)
		return rc;
	p = json_object_new_object();
	json_object_object_add(p, "name", json_object_new_string(o->name));
	rc = vmctl_call(ctl, "vm.start", p, NULL);
	if (rc)
		return rc;
	rc = vmctl_console_loop(ctl, o->name, false, !isatty(STDIN_FILENO), &info);
	if (rc)
		return rc;
	rc = exit_code_of(ctl, info);
	json_object_put(info);
	return rc;
}

int vmctl_cmd_run(struct vmctl *ctl, int argc, char **argv)
{
	struct run_options o = { .params = json_object_new_object() };
	struct private_daemon *pd = NULL;
	int rc;

	rc = parse_run_args(argc, argv, &o);
	if (rc) {
		json_object_put(o.params);
		return rc;
	}
	if (connect_or_start(ctl, &pd) < 0) {
		json_object_put(o.params);
		return VMCTL_EXIT_ERROR;
	}
	rc = run_vm(ctl, &o);
	json_object_put(o.params);
	/* Disconnecting deletes the transient VM; then the private vmmd can go. */
	api_client_free(ctl->client);
	ctl->client = NULL;
	private_daemon_stop(pd);
	return rc;
}
