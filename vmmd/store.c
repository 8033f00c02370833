/* SPDX-License-Identifier: MIT */
/*
 * Persistent VM definitions: STATE/vms/NAME.json, one file per VM, written
 * atomically (temporary file, fsync, rename, fsync of the directory):
 *
 *   {"format": 1,
 *    "definition": {"name": ..., "memory": ..., "vcpus": ..., "kernel": ...,
 *                   "cmdline": ..., "boot": ...},
 *    "runtime": {"state": "stopped", "reason": ..., "exit_status": 0,
 *                "boot_id": ...}}
 *
 * "runtime" records the last settled state (defined, running, paused,
 * stopped, crashed) so a restarted vmmd can tell what happened while it was
 * away. Transient VMs are never stored. A file that cannot be read or
 * validated, anywhere in it, makes its VM "broken" with the reason naming
 * the member; it never stops the others from loading.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/jsonrpc.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/path.h"
#include "vmmd/rundir.h"
#include "vmmd/vmmd.h"

#define STORE_FORMAT 1
/* A definition is a few hundred bytes; anything near this is not one. */
#define STORE_FILE_MAX (64 * 1024)

static int store_path(const struct daemon *d, const char *name, char *buf, size_t size)
{
	return path_format(buf, size, "%s/vms/%s.json", d->cfg.state_dir, name);
}

static json_object *runtime_json(const struct vm_record *vm, enum vm_state state,
				 const char *reason)
{
	json_object *r = json_object_new_object();
	char boot_id[64];

	rundir_boot_id(boot_id, sizeof(boot_id));
	json_object_object_add(r, "state", json_object_new_string(vm_state_name(state)));
	json_object_object_add(r, "reason", json_object_new_string(reason));
	json_object_object_add(r, "exit_status",
			       vm->has_exit_status ? json_object_new_int(vm->exit_status) : NULL);
	json_object_object_add(r, "boot_id", json_object_new_string(boot_id));
	return r;
}

int store_write_vm(const struct vm_record *vm, const struct vm_def *def, enum vm_state state,
		   const char *reason, struct error *err)
{
	char path[PATH_MAX];
	json_object *o;
	const char *text;
	struct error e;
	int rc;

	if (def->transient)
		return 0;
	if (store_path(vm->d, def->name, path, sizeof(path)) < 0)
		return error_set(err, -ENAMETOOLONG, "the path of VM '%s' is too long", def->name);
	o = json_object_new_object();
	json_object_object_add(o, "format", json_object_new_int(STORE_FORMAT));
	json_object_object_add(o, "definition", vm_def_to_json(def));
	json_object_object_add(o, "runtime", runtime_json(vm, state, reason));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							 JSON_C_TO_STRING_NOSLASHESCAPE);
	rc = file_write_atomic(path, text, strlen(text), 0600, &e);
	json_object_put(o);
	if (rc < 0) {
		log_error("VM '%s': cannot save its definition: %s", def->name, e.msg);
		return error_set(err, rc, "%s", e.msg);
	}
	return 0;
}

int store_save_vm(const struct vm_record *vm, struct error *err)
{
	/* A broken VM's file is what could not be loaded: keep it for the operator. */
	if (vm->state == VM_BROKEN)
		return 0;
	return store_write_vm(vm, vm->def, vm->state, vm->reason, err);
}

int store_remove_vm(const struct daemon *d, const char *name, struct error *err)
{
	char path[PATH_MAX];
	struct error e;
	int rc;

	if (store_path(d, name, path, sizeof(path)) < 0)
		return error_set(err, -ENAMETOOLONG, "the path of VM '%s' is too long", name);
	rc = file_remove_durable(path, &e);
	if (rc < 0) {
		log_error("VM '%s': %s", name, e.msg);
		return error_set(err, rc, "%s", e.msg);
	}
	return 0;
}

static const char *const stored_states[] = { "defined", "running", "paused", "stopped",
					     "crashed", NULL };

/* What "runtime" may hold: the last settled state, as runtime_json() writes it. */
static const struct api_param runtime_params[] = {
	{ .name = "state", .type = API_T_ENUM, .required = true, .choices = stored_states },
	{ .name = "reason", .type = API_T_STRING, .max_len = 4096 },
	{ .name = "exit_status", .type = API_T_INT, .min = INT32_MIN, .max = INT32_MAX },
	{ .name = "boot_id", .type = API_T_STRING, .max_len = 63 },
	{ 0 },
};

static enum vm_state parse_state(const char *s)
{
	for (int i = 0; i < VM_STATE_COUNT; i++)
		if (strcmp(vm_state_name((enum vm_state)i), s) == 0)
			return (enum vm_state)i;
	return VM_DEFINED; /* not reached: the schema allows stored states only */
}

/* Applies a validated "runtime" (or none) to a freshly loaded VM; reattaching
 * moves it on from there. */
static void apply_runtime(struct vm_record *vm, json_object *rt)
{
	json_object *status = api_param_get(rt, "exit_status");

	if (!rt)
		return;
	vm->has_exit_status = status != NULL;
	vm->exit_status = status ? json_object_get_int(status) : 0;
	snprintf(vm->stored_boot_id, sizeof(vm->stored_boot_id), "%s",
		 api_param_string(rt, "boot_id", ""));
	vm_restore_state(vm, parse_state(api_param_string(rt, "state", "")),
			 api_param_string(rt, "reason", ""));
}

/*
 * The record's member `name` in *ret, which must have `type` (described as
 * `want`) when present; a missing member is NULL, an error if required.
 * An explicit null counts as missing.
 */
static int record_member(json_object *o, const char *name, json_type type, const char *want,
			 bool required, json_object **ret, struct api_error *err)
{
	json_object *v = api_param_get(o, name);

	*ret = NULL;
	if (!v)
		return required ? api_error_set(err, API_ERR_IO, "member '%s' is missing", name) : 0;
	if (!json_object_is_type(v, type))
		return api_error_set(err, API_ERR_IO, "member '%s' must be %s, got %s", name, want,
				     api_json_kind(v));
	*ret = v;
	return 0;
}

static int check_format(json_object *o, struct api_error *err)
{
	json_object *format;
	int rc;

	if (!json_object_is_type(o, json_type_object))
		return api_error_set(err, API_ERR_IO,
				     "not a vmmd VM record of format %d: the file is a JSON %s, not an object",
				     STORE_FORMAT, api_json_kind(o));
	rc = record_member(o, "format", json_type_int, "an integer", true, &format, err);
	if (rc == 0 && json_object_get_int64(format) != STORE_FORMAT)
		rc = api_error_set(err, API_ERR_IO, "not a vmmd VM record of format %d (format %lld)",
				   STORE_FORMAT, (long long)json_object_get_int64(format));
	return rc;
}

/* "runtime" may be absent (a record written by hand): the VM is then defined. */
static int check_runtime(json_object *o, json_object **ret, struct api_error *err)
{
	char why[API_ERROR_MSG_MAX];
	int rc = record_member(o, "runtime", json_type_object, "an object", false, ret, err);

	if (rc < 0 || !*ret || api_params_validate(runtime_params, *ret, err) == 0)
		return rc;
	snprintf(why, sizeof(why), "%s", err->message);
	return api_error_set(err, API_ERR_IO, "member 'runtime': %s", why);
}

static int check_definition(struct daemon *d, const char *name, json_object *o,
			    struct vm_def **ret_def, struct api_error *err)
{
	json_object *def;
	int rc = record_member(o, "definition", json_type_object, "an object", true, &def, err);

	if (rc == 0)
		rc = api_params_validate(vm_def_params, def, err);
	if (rc == 0 && strcmp(api_param_string(def, "name", ""), name) != 0)
		rc = api_error_set(err, API_ERR_IO, "it defines VM '%s', not '%s'",
				   api_param_string(def, "name", ""), name);
	/* The kernel is checked at start: a missing file must not hide the VM. */
	if (rc == 0)
		rc = vm_def_from_params(def, &d->host, false, ret_def, err);
	return rc;
}

/* Every member is checked before anything is used: a record that is wrong
 * anywhere makes its VM broken, with the reason naming the member. */
static int parse_record(struct daemon *d, const char *name, const char *text, size_t len,
			struct vm_def **ret_def, json_object **ret_runtime, struct api_error *err)
{
	json_object *o = NULL, *runtime = NULL;
	struct api_error perr;
	int rc;

	if (jsonrpc_parse(text, len, &o, &perr) < 0)
		return api_error_set(err, API_ERR_IO, "%s", perr.message);
	rc = check_format(o, err);
	if (rc == 0)
		rc = check_runtime(o, &runtime, err);
	if (rc == 0)
		rc = check_definition(d, name, o, ret_def, err);
	if (rc == 0)
		*ret_runtime = json_object_get(runtime);
	json_object_put(o);
	return rc;
}

static void add_broken(struct daemon *d, const char *name, const char *why)
{
	struct vm_def *def = calloc(1, sizeof(*def));
	struct vm_record *vm;

	if (!def)
		return;
	snprintf(def->name, sizeof(def->name), "%s", name);
	def->kernel = strdup("");
	def->cmdline = strdup("");
	if (vm_add(d, def, NULL, &vm) < 0) {
		vm_def_free(def);
		return;
	}
	vm_restore_state(vm, VM_BROKEN, why);
	log_error("VM '%s' is broken: %s", name, why);
}

static void load_one(struct daemon *d, const char *dir, const char *file)
{
	char path[PATH_MAX], name[VM_NAME_MAX + 1], why[700];
	size_t flen = strlen(file) - strlen(".json");
	struct api_error err;
	struct vm_def *def = NULL;
	json_object *runtime = NULL;
	struct vm_record *vm;
	struct error e;
	char *text = NULL;
	size_t len;

	if (flen > VM_NAME_MAX || path_format(path, sizeof(path), "%s/%s", dir, file) < 0) {
		log_warning("ignoring %s/%s: name too long for a VM", dir, file);
		return;
	}
	snprintf(name, sizeof(name), "%.*s", (int)flen, file);
	if (vm_name_validate(name, &err) < 0) {
		log_warning("ignoring %s: '%s' is not a valid VM name", path, name);
		return;
	}
	if (file_read_bounded(path, STORE_FILE_MAX, &text, &len, &e) < 0) {
		snprintf(why, sizeof(why), "cannot read its definition: %s", e.msg);
		add_broken(d, name, why);
		return;
	}
	if (parse_record(d, name, text, len, &def, &runtime, &err) < 0) {
		snprintf(why, sizeof(why), "cannot load %s: %s", path, err.message);
		add_broken(d, name, why);
	} else if (vm_add(d, def, NULL, &vm) == 0) {
		apply_runtime(vm, runtime);
	} else {
		vm_def_free(def);
	}
	json_object_put(runtime);
	free(text);
}

static bool is_record_name(const char *file)
{
	size_t n = strlen(file);

	return n > 5 && strcmp(file + n - 5, ".json") == 0 && file[0] != '.';
}

/* Leftovers of a write interrupted by a crash: NAME.json.tmp.PID. */
static bool is_stale_temp(const char *file)
{
	return strstr(file, ".json.tmp.") != NULL;
}

int store_load(struct daemon *d)
{
	char dir[PATH_MAX], stale[PATH_MAX];
	DIR *dh;
	struct dirent *e;
	unsigned int n = 0;

	if (path_format(dir, sizeof(dir), "%s/vms", d->cfg.state_dir) < 0)
		return -ENAMETOOLONG;
	dh = opendir(dir);
	if (!dh) {
		log_error("cannot read %s: %s", dir, strerror(errno));
		return -errno;
	}
	while ((e = readdir(dh))) {
		if (is_stale_temp(e->d_name)) {
			if (path_format(stale, sizeof(stale), "%s/%s", dir, e->d_name) == 0)
				unlink(stale);
		} else if (is_record_name(e->d_name)) {
			load_one(d, dir, e->d_name);
			n++;
		}
	}
	closedir(dh);
	if (n)
		log_info("loaded %u VM definitions from %s", n, dir);
	return 0;
}
