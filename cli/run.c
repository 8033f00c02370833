/* SPDX-License-Identifier: MIT */
/*
 * vmctl run: a transient VM whose console is this process's stdout. The VM
 * belongs to this connection (vmmd deletes it when we disconnect), so an
 * interrupted vmctl never leaves it behind.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
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

static int parse_run_option(int opt, struct run_options *o)
{
	long v;
	char path[PATH_MAX];

	switch (opt) {
	case 'm':
		if (vmctl_parse_uint("--memory", optarg, 64L << 20, &v) < 0)
			return -EINVAL;
		json_object_object_add(o->params, "memory", json_object_new_int64(v));
		return 0;
	case 'c':
		if (vmctl_parse_uint("--vcpus", optarg, 4096, &v) < 0)
			return -EINVAL;
		json_object_object_add(o->params, "vcpus", json_object_new_int64(v));
		return 0;
	case 'l':
		json_object_object_add(o->params, "cmdline", json_object_new_string(optarg));
		return 0;
	case 'b':
		json_object_object_add(o->params, "boot", json_object_new_string(optarg));
		return 0;
	case 'n':
		snprintf(o->name, sizeof(o->name), "%s", optarg);
		return 0;
	case 'k':
		if (!realpath(optarg, path)) {
			vmctl_error("kernel '%s': %s", optarg, strerror(errno));
			return -EINVAL;
		}
		json_object_object_add(o->params, "kernel", json_object_new_string(path));
		return 0;
	default:
		return -EINVAL;
	}
}

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
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (opt == '?' || parse_run_option(opt, o) < 0)
			return -EINVAL;
	if (argc - optind != 1) {
		vmctl_error("run needs exactly one KERNEL");
		return -EINVAL;
	}
	optarg = argv[optind];
	if (parse_run_option('k', o) < 0)
		return -EINVAL;
	if (!o->name[0])
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
	vmctl_error("the guest wrote %lld (0x%llx) to the debug-exit port, which does not fit "
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
		vmctl_error("VM crashed: %s", reason ? json_object_get_string(reason) : "unknown");
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

	if (parse_run_args(argc, argv, &o) < 0) {
		json_object_put(o.params);
		vmctl_command_usage(vmctl_find_command("run"), stderr);
		return VMCTL_EXIT_USAGE;
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
