/* SPDX-License-Identifier: MIT */
/* vmctl: the command line for vmmd. Each command is one JSON-RPC call or a short sequence. */
#include "cli/vmctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jsonrpc.h"

void vmctl_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vmctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int vmctl_connect(struct vmctl *ctl)
{
	struct api_error err;

	if (ctl->client)
		return 0;
	if (api_client_connect(ctl->socket_path, &ctl->client, &err) < 0) {
		vmctl_error("%s", err.message);
		if (!ctl->socket_given)
			fprintf(stderr, "vmctl: is vmmd running? Start it, or pass --socket PATH "
					"(or set VMMD_SOCKET).\n");
		return -1;
	}
	return 0;
}

static void print_json_error(const struct api_error *err)
{
	json_object *e = json_object_new_object();
	json_object *o = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_int(err->code));
	json_object_object_add(e, "message", json_object_new_string(err->message));
	json_object_object_add(o, "error", e);
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

int vmctl_call(struct vmctl *ctl, const char *method, json_object *params, json_object **ret)
{
	struct api_error err = { 0 };
	json_object *result = NULL;
	int rc;

	if (vmctl_connect(ctl) < 0) {
		json_object_put(params);
		return VMCTL_EXIT_ERROR;
	}
	rc = api_client_call(ctl->client, method, params, &result, &err);
	if (rc < 0) {
		vmctl_error("%s", err.message);
		if (ctl->json && rc == -EREMOTEIO)
			print_json_error(&err);
		return VMCTL_EXIT_ERROR;
	}
	if (ret)
		*ret = result;
	else
		json_object_put(result);
	return 0;
}

void vmctl_print(struct vmctl *ctl, json_object *result, void (*print_human)(json_object *))
{
	if (ctl->json || !print_human)
		printf("%s\n", json_object_to_json_string_ext(result, JSON_C_TO_STRING_PRETTY |
									 JSON_C_TO_STRING_NOSLASHESCAPE));
	else
		print_human(result);
}

int vmctl_parse_uint(const char *opt, const char *value, long max, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno || end == value || *end || v < 1 || v > max) {
		vmctl_error("%s needs a whole number between 1 and %ld, got '%s'", opt, max, value);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

const struct vmctl_command *vmctl_find_command(const char *name)
{
	for (const struct vmctl_command *c = vmctl_commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

void vmctl_command_usage(const struct vmctl_command *cmd, FILE *out)
{
	fprintf(out, "Usage: vmctl [--socket PATH] [--json] %s%s%s\n%s.\n", cmd->name,
		cmd->args[0] ? " " : "", cmd->args, cmd->summary);
	if (cmd->help)
		fprintf(out, "\n%s", cmd->help);
}

bool vmctl_wants_help(const struct vmctl_command *cmd, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			vmctl_command_usage(cmd, stdout);
			return true;
		}
	}
	return false;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: vmctl [--socket PATH] [--json] COMMAND [ARGS]...\n"
		     "Control VMs managed by vmmd.\n\nCommands:\n");
	for (const struct vmctl_command *c = vmctl_commands; c->name; c++)
		fprintf(out, "  %-9s %s\n", c->name, c->summary);
	fprintf(out, "\nOptions:\n"
		     "  --socket PATH  vmmd's socket (default: $VMMD_SOCKET, /run/vmmd/vmmd.sock as\n"
		     "                 root, $XDG_RUNTIME_DIR/vmmd/vmmd.sock otherwise)\n"
		     "  --json         machine-readable output with the API's field names\n"
		     "  --help         this help; `vmctl COMMAND --help` for a command\n");
}

/* Parses the global options before COMMAND; returns the index of COMMAND. */
static int parse_global(struct vmctl *ctl, int argc, char **argv)
{
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			ctl->json = true;
		} else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			snprintf(ctl->socket_path, sizeof(ctl->socket_path), "%s", argv[++i]);
			ctl->socket_given = true;
		} else if (strncmp(argv[i], "--socket=", 9) == 0) {
			snprintf(ctl->socket_path, sizeof(ctl->socket_path), "%s", argv[i] + 9);
			ctl->socket_given = true;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			exit(VMCTL_EXIT_OK);
		} else {
			vmctl_error("unknown option '%s'", argv[i]);
			usage(stderr);
			exit(VMCTL_EXIT_USAGE);
		}
	}
	return i;
}

int main(int argc, char **argv)
{
	struct vmctl ctl = { 0 };
	const struct vmctl_command *cmd;
	int first, rc;

	if (api_default_socket_path(ctl.socket_path, sizeof(ctl.socket_path)) < 0) {
		vmctl_error("default socket path too long");
		return VMCTL_EXIT_USAGE;
	}
	ctl.socket_given = getenv("VMMD_SOCKET") != NULL;
	first = parse_global(&ctl, argc, argv);
	if (first >= argc) {
		usage(stderr);
		return VMCTL_EXIT_USAGE;
	}
	cmd = vmctl_find_command(argv[first]);
	if (!cmd) {
		vmctl_error("unknown command '%s' (see vmctl --help)", argv[first]);
		return VMCTL_EXIT_USAGE;
	}
	if (vmctl_wants_help(cmd, argc - first, argv + first))
		return VMCTL_EXIT_OK;
	rc = cmd->run(&ctl, argc - first, argv + first);
	api_client_free(ctl.client);
	return rc;
}
