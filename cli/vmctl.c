/* SPDX-License-Identifier: MIT */
/* vmctl: the command line for vmmd. Each command is one JSON-RPC call or a short sequence. */
#include "cli/vmctl.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jsonrpc.h"

/* How errors are shown: a property of this vmctl run (--json), set once. */
static struct {
	bool json;
	bool json_printed; /* stdout carries one JSON text: the first error */
} error_output;

void vmctl_errors_as_json(bool on)
{
	error_output.json = on;
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

void vmctl_api_error(const struct api_error *err)
{
	fprintf(stderr, "vmctl: %s\n", err->message);
	if (error_output.json && !error_output.json_printed) {
		print_json_error(err);
		error_output.json_printed = true;
	}
}

static void vmctl_verror(const char *fmt, va_list ap)
{
	struct api_error err = { .code = 0 };

	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	vmctl_api_error(&err);
}

void vmctl_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmctl_verror(fmt, ap);
	va_end(ap);
}

void vmctl_notice(const char *fmt, ...)
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
		vmctl_api_error(&err);
		if (!ctl->socket_given)
			vmctl_notice("is vmmd running? Start it, or pass --socket PATH "
				     "(or set VMMD_SOCKET).");
		return -1;
	}
	return 0;
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
		vmctl_api_error(&err);
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

int vmctl_parse_vcpu_number(const char *value, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno || end == value || *end || v < 0 || v > 4095) {
		vmctl_error("--vcpu needs a vCPU number, got '%s'", value);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

int vmctl_parse_vcpu(const char *value, json_object *params)
{
	long v;

	if (vmctl_parse_vcpu_number(value, &v) < 0)
		return -EINVAL;
	json_object_object_add(params, "vcpu", json_object_new_int((int)v));
	return 0;
}

int vmctl_add_kernel(json_object *params, const char *path)
{
	char resolved[PATH_MAX];

	/* vmmd resolves nothing relative to the client's directory. */
	if (!realpath(path, resolved)) {
		vmctl_error("kernel '%s': %s", path, strerror(errno));
		return VMCTL_EXIT_ERROR;
	}
	json_object_object_add(params, "kernel", json_object_new_string(resolved));
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

int vmctl_usage_error(const struct vmctl_command *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmctl_verror(fmt, ap);
	va_end(ap);
	vmctl_command_usage(cmd, stderr);
	return VMCTL_EXIT_USAGE;
}

/* The positional words of a command's synopsis from the first-th on:
 * "NAME GVA" of "NAME GVA [--vcpu N] ...", "[COMMAND]" of "[COMMAND]". */
static void positional_words(const struct vmctl_command *cmd, int first, char *buf, size_t size)
{
	const char *p = cmd->args;
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; *p && *p != '-' && strncmp(p, "[-", 2) != 0; i++) {
		size_t len = strcspn(p, " ");
		if (i >= first && used + len + 2 < size)
			used += (size_t)snprintf(buf + used, size - used, "%s%.*s", used ? " " : "",
						 (int)len, p);
		p += len;
		p += strspn(p, " ");
	}
}

static int check_positional(const struct vmctl_command *cmd, int argc, char **argv,
			    const struct vmctl_args *args)
{
	int n = argc - optind;
	char words[128];

	if (n < args->min_args) {
		positional_words(cmd, n, words, sizeof(words));
		return vmctl_usage_error(cmd, "%s: missing %s", cmd->name, words);
	}
	if (n > args->max_args) {
		positional_words(cmd, 0, words, sizeof(words));
		return vmctl_usage_error(cmd, "%s: too many arguments ('%s'); it takes %s", cmd->name,
					 argv[optind + args->max_args], words[0] ? words : "none");
	}
	return 0;
}

int vmctl_parse_args(const struct vmctl_command *cmd, int argc, char **argv,
		     const struct vmctl_args *args)
{
	static const struct option none[] = { { 0 } };
	int opt;

	/* ":" first: a missing value is ':', an unknown option '?', and
	 * getopt prints nothing; the messages are ours. */
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", args->options ? args->options : none,
				  NULL)) != -1) {
		if (opt == '?')
			return vmctl_usage_error(cmd, "%s: unknown option '%s'", cmd->name,
						 argv[optind - 1]);
		if (opt == ':')
			return vmctl_usage_error(cmd, "%s: option '%s' needs a value", cmd->name,
						 argv[optind - 1]);
		if (args->option(opt, optarg, args->ctx) < 0) {
			vmctl_command_usage(cmd, stderr);
			return VMCTL_EXIT_USAGE;
		}
	}
	return check_positional(cmd, argc, argv, args);
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

static int __attribute__((format(printf, 1, 2))) global_usage_error(const char *fmt, ...)
{
	char msg[API_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vmctl_error("%s", msg);
	usage(stderr);
	return -EINVAL;
}

static int set_socket(struct vmctl *ctl, const char *path)
{
	if (!path || !*path)
		return global_usage_error("option '%s' needs a value (PATH)", "--socket");
	if (snprintf(ctl->socket_path, sizeof(ctl->socket_path), "%s", path) >=
	    (int)sizeof(ctl->socket_path))
		return global_usage_error("socket path '%s' is too long", path);
	ctl->socket_given = true;
	return 0;
}

/* --json anywhere among the global options decides how their errors show. */
static bool wants_json(int argc, char **argv)
{
	for (int i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0)
			return true;
		if (strcmp(argv[i], "--socket") == 0)
			i++; /* its value */
	}
	return false;
}

/* Parses the global options before COMMAND: the index of COMMAND, or -1
 * after a usage error. */
static int parse_global(struct vmctl *ctl, int argc, char **argv)
{
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		int rc = 0;

		if (strcmp(argv[i], "--json") == 0) {
			ctl->json = true;
		} else if (strcmp(argv[i], "--socket") == 0) {
			rc = set_socket(ctl, i + 1 < argc ? argv[++i] : NULL);
		} else if (strncmp(argv[i], "--socket=", 9) == 0) {
			rc = set_socket(ctl, argv[i] + 9);
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			exit(VMCTL_EXIT_OK);
		} else {
			rc = global_usage_error("unknown option '%s'", argv[i]);
		}
		if (rc < 0)
			return -1;
	}
	if (i >= argc) {
		global_usage_error("missing COMMAND");
		return -1;
	}
	return i;
}

int main(int argc, char **argv)
{
	struct vmctl ctl = { 0 };
	const struct vmctl_command *cmd;
	int first, rc;

	vmctl_errors_as_json(wants_json(argc, argv));
	if (api_default_socket_path(ctl.socket_path, sizeof(ctl.socket_path)) < 0) {
		vmctl_error("default socket path too long");
		return VMCTL_EXIT_USAGE;
	}
	ctl.socket_given = getenv("VMMD_SOCKET") != NULL;
	first = parse_global(&ctl, argc, argv);
	if (first < 0)
		return VMCTL_EXIT_USAGE;
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
