/* SPDX-License-Identifier: MIT */
/*
 * vmctl internals: a command table, the options every command shares, and
 * helpers for calling vmmd and printing results.
 */
#ifndef VMMD_CLI_VMCTL_H
#define VMMD_CLI_VMCTL_H

#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>

#include "api/client.h"
#include "util/macro.h"

/* Exit statuses of vmctl itself (docs/vmctl.md). Guest statuses pass through
 * `vmctl run` unchanged. */
#define VMCTL_VERSION "0.1.0"

#define VMCTL_EXIT_OK 0
#define VMCTL_EXIT_ERROR 1
#define VMCTL_EXIT_USAGE 2
/* `run`: the guest wrote a value outside 0..255, which no exit status holds. */
#define VMCTL_EXIT_STATUS_TOO_WIDE 124
#define VMCTL_EXIT_CRASHED 125

struct vmctl {
	char socket_path[108];
	bool socket_given;
	bool json;
	struct api_client *client;
};

struct vmctl_command {
	const char *name;
	const char *args;    /* synopsis after the name */
	const char *summary; /* one line */
	const char *help;    /* option details, may be NULL */
	int (*run)(struct vmctl *ctl, int argc, char **argv);
};

extern const struct vmctl_command vmctl_commands[];

/* Connects to vmmd (once); prints the error and returns -1 when it cannot. */
int vmctl_connect(struct vmctl *ctl);

/*
 * Calls method(params), taking params. On success *ret is the result (new
 * reference) and 0 is returned; on failure the error is printed (with the
 * JSON form under --json) and VMCTL_EXIT_ERROR returned.
 */
int vmctl_call(struct vmctl *ctl, const char *method, json_object *params, json_object **ret);

/* Prints a result: pretty JSON under --json, else via print_human. */
void vmctl_print(struct vmctl *ctl, json_object *result, void (*print_human)(json_object *));

/*
 * Errors. Each goes to stderr as "vmctl: MESSAGE"; after
 * vmctl_errors_as_json(true) (--json) the first of a run also goes to
 * stdout as {"error": {"code": C, "message": MESSAGE}}, C being vmmd's
 * error code, or 0 for errors vmctl found itself (usage, files, no vmmd).
 */
void vmctl_errors_as_json(bool on);
void vmctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An error from the API client: vmmd's (err->code set) or the transport's. */
void vmctl_api_error(const struct api_error *err);
/* "vmctl: MESSAGE" on stderr only: what the --json result already says. */
void vmctl_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Handles --help for a command; returns true if it printed help. */
bool vmctl_wants_help(const struct vmctl_command *cmd, int argc, char **argv);
void vmctl_command_usage(const struct vmctl_command *cmd, FILE *out);
const struct vmctl_command *vmctl_find_command(const char *name);

/*
 * What a command accepts after its name: long options (getopt_long's
 * table; NULL for none), handed one by one to option(), which returns 0,
 * or -EINVAL after vmctl_error() naming the option; and between
 * min_args and max_args positional arguments.
 */
struct vmctl_args {
	const struct option *options;
	int (*option)(int opt, const char *value, void *ctx);
	void *ctx;
	int min_args, max_args;
};

/*
 * The one argument check of every command: argv[0] is the command's name.
 * Returns 0 with optind at the first positional argument, or
 * VMCTL_EXIT_USAGE after an error naming what is wrong ("start: missing
 * NAME", "list: too many arguments ('x'); it takes none", "run: unknown
 * option '--bogus'", "run: option '--memory' needs a value") and the
 * command's usage.
 */
int vmctl_parse_args(const struct vmctl_command *cmd, int argc, char **argv,
		     const struct vmctl_args *args);
/* A usage error found after vmctl_parse_args(): message, then usage. */
int vmctl_usage_error(const struct vmctl_command *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parses a positive integer option value; prints an error naming opt. */
int vmctl_parse_uint(const char *opt, const char *value, long max, long *ret);
/* --vcpu N: the number, or an error printed; vmctl_parse_vcpu() adds it
 * to params as "vcpu". */
int vmctl_parse_vcpu_number(const char *value, long *ret);
int vmctl_parse_vcpu(const char *value, json_object *params);
/* A kernel path as vmmd needs it (absolute, resolved): adds "kernel" to
 * params, or prints why it cannot (VMCTL_EXIT_ERROR). */
int vmctl_add_kernel(json_object *params, const char *path);

/* cli/commands.c: the VM options create and run share. */
struct vmctl_vm_options {
	json_object *params; /* vm.create's, being built */
	const char *kernel;  /* as given; vmctl_add_kernel() resolves it */
	const char *name;    /* run's --name */
};
/* vmctl_args.option for --memory (m), --vcpus (c), --kernel (k),
 * --cmdline (l), --boot (b) and --name (n); ctx is a vmctl_vm_options. */
int vmctl_vm_option(int opt, const char *value, void *ctx);

/* cli/inspect.c */
/* For commands that take NAME and --vcpu N: both into params. */
int vmctl_parse_vcpu_command(const char *name, int argc, char **argv, json_object *params);
int vmctl_cmd_translate(struct vmctl *ctl, int argc, char **argv);
int vmctl_cmd_role(struct vmctl *ctl, int argc, char **argv);
int vmctl_cmd_mem(struct vmctl *ctl, int argc, char **argv);

/* cli/vcpu.c */
int vmctl_cmd_regs(struct vmctl *ctl, int argc, char **argv);

/* cli/state.c */
int vmctl_cmd_state(struct vmctl *ctl, int argc, char **argv);

/* cli/events.c */
int vmctl_cmd_events(struct vmctl *ctl, int argc, char **argv);

/* cli/run.c */
int vmctl_cmd_run(struct vmctl *ctl, int argc, char **argv);

/* cli/console.c */
/* Puts the terminal on stdin in raw mode until exit (no-op if not a tty). */
void vmctl_terminal_raw(void);
/* vm.console.attach; prints the history; *state receives the VM's state. */
int vmctl_console_attach(struct vmctl *ctl, const char *name, bool history, char *state,
			 size_t state_size);
/* Runs until the VM stops, the user detaches or vmmd goes away. With
 * ret_final_info, the VM's vm.info after it stopped. */
int vmctl_console_loop(struct vmctl *ctl, const char *name, bool interactive, bool forward_stdin,
		       json_object **ret_final_info);

/* cli/private.c: a vmmd of our own for `vmctl run` when none is reachable. */
struct private_daemon;
int private_daemon_start(struct private_daemon **ret, char *socket_path, size_t size);
void private_daemon_stop(struct private_daemon *pd);

#endif
