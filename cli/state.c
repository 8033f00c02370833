/* SPDX-License-Identifier: MIT */
/*
 * vmctl state save|load NAME FILE [--vcpu N]: a paused vCPU's complete
 * state to or from a file on the client's side. vmmd only ever sees the
 * bytes (base64 in vcpu.state.save and vcpu.state.load), never the path.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/frame.h"
#include "cli/vmctl.h"
#include "util/base64.h"
#include "util/fileio.h"

/* A state file is written readable by its owner only: it holds the guest's
 * registers, keys among them. */
#define STATE_FILE_MODE 0600

struct state_args {
	bool save;
	const char *name;
	const char *file;
	long vcpu;
};

static int state_option(int opt, const char *value, void *ctx)
{
	struct state_args *a = ctx;

	return vmctl_parse_vcpu_number(value, &a->vcpu);
}

/* 0, or VMCTL_EXIT_USAGE after the message and the usage. */
static int parse_args(int argc, char **argv, struct state_args *ret)
{
	static const struct option opts[] = { { "vcpu", required_argument, NULL, 'c' }, { 0 } };
	const struct vmctl_command *cmd = vmctl_find_command("state");
	struct vmctl_args args = { .options = opts, .option = state_option, .ctx = ret,
				   .min_args = 3, .max_args = 3 };
	int rc;

	ret->vcpu = 0;
	rc = vmctl_parse_args(cmd, argc, argv, &args);
	if (rc)
		return rc;
	if (strcmp(argv[optind], "save") != 0 && strcmp(argv[optind], "load") != 0)
		return vmctl_usage_error(cmd, "state: unknown subcommand '%s' (there are: save, load)",
					 argv[optind]);
	ret->save = strcmp(argv[optind], "save") == 0;
	ret->name = argv[optind + 1];
	ret->file = argv[optind + 2];
	return 0;
}

static json_object *params_of(const struct state_args *a)
{
	json_object *p = json_object_new_object();

	json_object_object_add(p, "name", json_object_new_string(a->name));
	json_object_object_add(p, "vcpu", json_object_new_int((int)a->vcpu));
	return p;
}

/* What vmctl did, under --json: the API's result without the bytes, and
 * where they went or came from. */
static void print_outcome(struct vmctl *ctl, const struct state_args *a, json_object *r)
{
	json_object *size = json_object_object_get(r, "size");
	json_object *version = json_object_object_get(r, "format_version");

	if (!ctl->json) {
		printf("%s: vcpu %ld state %s %s (%s bytes, format version %s)\n", a->name, a->vcpu,
		       a->save ? "saved to" : "loaded from", a->file, json_object_get_string(size),
		       json_object_get_string(version));
		return;
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(a->name));
	json_object_object_add(o, "vcpu", json_object_new_int((int)a->vcpu));
	json_object_object_add(o, "file", json_object_new_string(a->file));
	json_object_object_add(o, "size", json_object_get(size));
	json_object_object_add(o, "format_version", json_object_get(version));
	vmctl_print(ctl, o, NULL);
	json_object_put(o);
}

static int save(struct vmctl *ctl, const struct state_args *a)
{
	json_object *r, *state;
	const char *text;
	uint8_t *bytes;
	struct error e;
	long n;
	int rc = vmctl_call(ctl, "vcpu.state.save", params_of(a), &r);

	if (rc)
		return rc;
	if (!json_object_object_get_ex(r, "state", &state) ||
	    !json_object_is_type(state, json_type_string)) {
		json_object_put(r);
		vmctl_error("malformed reply from vmmd: no state");
		return VMCTL_EXIT_ERROR;
	}
	text = json_object_get_string(state);
	bytes = malloc(strlen(text) / 4 * 3 + 3);
	n = bytes ? base64_decode(text, strlen(text), bytes) : -ENOMEM;
	if (n < 0) {
		vmctl_error("malformed reply from vmmd: the state is not base64");
		rc = VMCTL_EXIT_ERROR;
	} else if (file_write_atomic(a->file, bytes, (size_t)n, STATE_FILE_MODE, &e) < 0) {
		vmctl_error("%s", e.msg);
		rc = VMCTL_EXIT_ERROR;
	} else {
		print_outcome(ctl, a, r);
	}
	free(bytes);
	json_object_put(r);
	return rc;
}

static int load(struct vmctl *ctl, const struct state_args *a)
{
	json_object *p, *r;
	char *bytes = NULL, *text;
	struct error e;
	size_t len = 0;
	int rc;

	/* Nothing longer fits in one message; vmmd names its own, lower, limit. */
	if (file_read_bounded(a->file, RPC_MESSAGE_MAX, &bytes, &len, &e) < 0) {
		vmctl_error("%s", e.msg);
		return VMCTL_EXIT_ERROR;
	}
	text = malloc(base64_encoded_len(len) + 1);
	if (!text) {
		free(bytes);
		vmctl_error("out of memory");
		return VMCTL_EXIT_ERROR;
	}
	base64_encode((const uint8_t *)bytes, len, text);
	free(bytes);
	p = params_of(a);
	json_object_object_add(p, "state", json_object_new_string(text));
	free(text);
	rc = vmctl_call(ctl, "vcpu.state.load", p, &r);
	if (rc)
		return rc;
	print_outcome(ctl, a, r);
	json_object_put(r);
	return VMCTL_EXIT_OK;
}

int vmctl_cmd_state(struct vmctl *ctl, int argc, char **argv)
{
	struct state_args a;
	int rc = parse_args(argc, argv, &a);

	if (rc)
		return rc;
	return a.save ? save(ctl, &a) : load(ctl, &a);
}
