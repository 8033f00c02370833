/* SPDX-License-Identifier: MIT */
/*
 * vmctl internals: a command table, the options every command shares, and
 * helpers for calling vmmd and printing results.
 */
#ifndef VMMD_CLI_VMCTL_H
#define VMMD_CLI_VMCTL_H

#include <json-c/json.h>
#include <stdbool.h>

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

void vmctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Handles --help for a command; returns true if it printed help. */
bool vmctl_wants_help(const struct vmctl_command *cmd, int argc, char **argv);
void vmctl_command_usage(const struct vmctl_command *cmd, FILE *out);
const struct vmctl_command *vmctl_find_command(const char *name);

/* Parses a positive integer option value; prints an error naming opt. */
int vmctl_parse_uint(const char *opt, const char *value, long max, long *ret);
/* --vcpu N: a whole decimal 0..4095 into p's "vcpu"; otherwise prints
 * "--vcpu needs a vCPU number, got '...'" and returns -EINVAL. */
int vmctl_parse_vcpu(const char *value, json_object *p);

/* cli/inspect.c */
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
