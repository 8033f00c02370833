/* SPDX-License-Identifier: MIT */
/* vmctl events: prints vmmd's notifications as they happen. */
#include <stdio.h>
#include <string.h>

#include "api/jsonrpc.h"
#include "cli/vmctl.h"

static const char *str(json_object *params, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(params, key, &v) || !v)
		return "";
	return json_object_get_string(v);
}

static void print_human(const char *method, json_object *p)
{
	if (strcmp(method, "vm.state-changed") == 0) {
		const char *reason = str(p, "reason");
		printf("%s %s: %s -> %s%s%s%s\n", str(p, "time"), str(p, "name"), str(p, "old"),
		       str(p, "new"), reason[0] ? " (" : "", reason, reason[0] ? ")" : "");
	} else if (strcmp(method, "vm.worker-crashed") == 0) {
		printf("%s %s: worker %s crashed: %s\n", str(p, "time"), str(p, "name"),
		       str(p, "pid"), str(p, "reason"));
	} else if (strcmp(method, "daemon.shutting-down") == 0) {
		printf("vmmd is shutting down (%s)\n", str(p, "reason"));
	} else if (strcmp(method, "events.dropped") == 0) {
		printf("vmmd dropped this subscription: %s\n", str(p, "reason"));
	} else {
		printf("%s %s\n", method, json_object_to_json_string(p));
	}
}

static void print_json(json_object *msg)
{
	printf("%s\n", json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
}

int vmctl_cmd_events(struct vmctl *ctl, int argc, char **argv)
{
	static const struct vmctl_args no_args = { .min_args = 0, .max_args = 0 };
	bool shutting_down = false;
	struct api_error err;
	json_object *msg;
	int rc;

	rc = vmctl_parse_args(vmctl_find_command("events"), argc, argv, &no_args);
	if (rc)
		return rc;
	rc = vmctl_call(ctl, "events.subscribe", NULL, NULL);
	if (rc)
		return rc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (api_client_next(ctl->client, -1, &msg, &err) == 0) {
		struct jsonrpc_msg m;
		json_object *id;
		if (jsonrpc_classify(msg, &m, &id, &err) == 0 && m.kind == JSONRPC_NOTIFICATION) {
			shutting_down |= strcmp(m.method, "daemon.shutting-down") == 0;
			if (ctl->json)
				print_json(msg);
			else
				print_human(m.method, m.params);
		}
		json_object_put(msg);
	}
	if (shutting_down)
		return VMCTL_EXIT_OK;
	vmctl_api_error(&err);
	return VMCTL_EXIT_ERROR;
}
