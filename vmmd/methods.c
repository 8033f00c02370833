/* SPDX-License-Identifier: MIT */
/*
 * The method table: every front end dispatches through it. Each entry names
 * its parameter schema, the access it needs, and the VM states it accepts;
 * lookup_vm() enforces the latter with one wording for all:
 * "VM 'web1' is stopped; vm.stop needs starting, running or stopping".
 *
 * Access: an entry needs full access (root, vmmd's user, group vmmd on the
 * main socket) unless it says `.needs = QUERY`. Only methods that show what
 * vmmd itself knows about its VMs are queries; everything that changes
 * something or shows what runs inside a guest (console, registers, memory,
 * page tables, CPUID) needs full access, since a guest's state holds its
 * secrets and the read-only socket is open to every local user.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/jsonrpc.h"
#include "util/base64.h"
#include "util/jsontext.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/time.h"
#include "vmmd/vmmd.h"

/* Bytes of console input accepted per vm.console.write. */
#define CONSOLE_WRITE_MAX 65536

#define ANY_STATE 0
#define LIVE_STATES (VM_STATE_BIT(VM_STARTING) | VM_STATE_BIT(VM_RUNNING) | \
		     VM_STATE_BIT(VM_PAUSED) | VM_STATE_BIT(VM_STOPPING))
/* A worker that runs the VM's vCPUs, or holds them parked. */
#define ACTIVE_STATES (VM_STATE_BIT(VM_RUNNING) | VM_STATE_BIT(VM_PAUSED))

static void describe_states(uint32_t mask, char *buf, size_t size)
{
	unsigned int total = (unsigned int)__builtin_popcount(mask), seen = 0;
	size_t n = 0;

	buf[0] = '\0';
	for (int s = 0; s < VM_STATE_COUNT && n < size; s++) {
		if (!(mask & VM_STATE_BIT(s)))
			continue;
		seen++;
		const char *sep = seen == 1 ? "" : seen == total ? " or " : ", ";
		n += (size_t)snprintf(buf + n, size - n, "%s%s", sep, vm_state_name(s));
	}
}

static struct vm_record *lookup_vm(struct api_call *call, json_object *params, struct daemon *d)
{
	const char *name = api_param_string(params, "name", "");
	const struct api_method *m = api_call_method(call);
	struct vm_record *vm = vm_find(d, name);
	char states[128];

	if (!vm) {
		api_call_fail(call, API_ERR_VM_NOT_FOUND, "VM '%s' not found", name);
		return NULL;
	}
	if (m->allowed_states && !(m->allowed_states & VM_STATE_BIT(vm->state))) {
		describe_states(m->allowed_states, states, sizeof(states));
		api_call_fail(call, API_ERR_WRONG_STATE, "VM '%s' is %s; %s needs %s", name,
			      vm_state_name(vm->state), m->name, states);
		return NULL;
	}
	return vm;
}

static struct client *call_client(struct api_call *call)
{
	return api_call_conn(call);
}

/* ------------------------------------------------------------ daemon.* */

static void m_daemon_version(struct api_call *call, json_object *params, void *ctx)
{
	struct daemon *d = ctx;
	json_object *r = json_object_new_object();

	json_object_object_add(r, "version", json_object_new_string(VMMD_VERSION));
	json_object_object_add(r, "pid", json_object_new_int(getpid()));
	json_object_object_add(r, "uptime", json_object_new_double(
					       (double)(time_monotonic_ns() - d->start_ns) / 1e9));
	json_object_object_add(r, "max_vcpus", json_object_new_int((int)d->host.max_vcpus));
	json_object_object_add(r, "max_memory",
			       json_object_new_int64((int64_t)d->host.max_memory_mib));
	json_object_object_add(r, "max_memory_read", json_object_new_int(VM_MEMORY_READ_MAX));
	api_call_reply(call, r);
}

/* ------------------------------------------------------------ vm.* */

static void m_vm_create(struct api_call *call, json_object *params, void *ctx)
{
	struct daemon *d = ctx;
	struct vm_def *def;
	struct vm_record *vm;
	struct api_error err;
	struct error e;
	const char *name = api_param_string(params, "name", "");

	if (vm_find(d, name)) {
		api_call_fail(call, API_ERR_NAME_TAKEN, "VM name '%s' is already taken", name);
		return;
	}
	if (d->nr_vms >= d->cfg.limits.max_vms) {
		api_call_fail(call, API_ERR_RESOURCE_LIMIT, "too many VMs (limit %u)",
			      d->cfg.limits.max_vms);
		return;
	}
	if (vm_def_from_params(params, &d->host, true, &def, &err) < 0) {
		api_call_fail_error(call, &err);
		return;
	}
	if (vm_add(d, def, def->transient ? call_client(call) : NULL, &vm) < 0) {
		vm_def_free(def);
		api_call_fail(call, API_ERR_INTERNAL, "out of memory");
		return;
	}
	if (store_save_vm(vm, &e) < 0) {
		vm_remove(vm);
		api_call_fail(call, API_ERR_IO, "VM '%s' not created: its definition could not be saved: %s",
			      name, e.msg);
		return;
	}
	log_info("VM '%s' defined (%llu MiB, %u vCPUs, %s kernel %s)", def->name,
		 (unsigned long long)def->memory_mib, def->vcpus, def->boot, def->kernel);
	api_call_reply(call, vm_info_json(vm));
}

static void m_vm_start(struct api_call *call, json_object *params, void *ctx)
{
	struct daemon *d = ctx;
	struct vm_record *vm = lookup_vm(call, params, d);
	struct api_error err;

	if (!vm)
		return;
	if (d->shutting_down) {
		api_call_fail(call, API_ERR_WRONG_STATE, "vmmd is shutting down; VM '%s' not started",
			      vm->def->name);
		return;
	}
	if (worker_spawn(vm, &err) < 0) {
		api_call_fail_error(call, &err);
		return;
	}
	vm->has_exit_status = false;
	vm_set_state(vm, VM_STARTING, NULL);
	if (waiter_add(&vm->start_waiters, call) < 0)
		api_call_fail(call, API_ERR_INTERNAL, "out of memory");
}

static void m_vm_stop(struct api_call *call, json_object *params, void *ctx)
{
	struct vm_record *vm = lookup_vm(call, params, ctx);

	if (!vm)
		return;
	if (waiter_add(&vm->stop_waiters, call) < 0) {
		api_call_fail(call, API_ERR_INTERNAL, "out of memory");
		return;
	}
	worker_stop(vm->worker, "powered off by vm.stop");
}

static void m_vm_delete(struct api_call *call, json_object *params, void *ctx)
{
	struct vm_record *vm = lookup_vm(call, params, ctx);
	struct error e;
	json_object *r;

	if (!vm)
		return;
	if (!vm->def->transient && store_remove_vm(vm->d, vm->def->name, &e) < 0) {
		api_call_fail(call, API_ERR_IO, "VM '%s' not deleted: its definition file could not be removed: %s",
			      vm->def->name, e.msg);
		return;
	}
	r = json_object_new_object();
	json_object_object_add(r, "name", json_object_new_string(vm->def->name));
	log_info("VM '%s' deleted", vm->def->name);
	vm_remove(vm);
	api_call_reply(call, r);
}

/* The current definition with the given fields replaced. */
static json_object *merged_definition(const struct vm_record *vm, json_object *params)
{
	json_object *merged = vm->state == VM_BROKEN ? json_object_new_object()
						     : vm_def_to_json(vm->def);

	json_object_object_del(merged, "transient");
	json_object_object_foreach(params, key, val)
		json_object_object_add(merged, key, json_object_get(val));
	json_object_object_add(merged, "name", json_object_new_string(vm->def->name));
	return merged;
}

/*
 * KVM refuses a changed CPUID once a vCPU has run (-EINVAL, MMU.md §7):
 * say so before anything reaches KVM, and how to get the new model.
 */
static bool refuse_live_cpu_change(struct api_call *call, json_object *params, struct daemon *d)
{
	struct vm_record *vm = vm_find(d, api_param_string(params, "name", ""));

	if (!vm || !api_param_get(params, "cpu") ||
	    (vm->state != VM_RUNNING && vm->state != VM_PAUSED && vm->state != VM_STARTING))
		return false;
	api_call_fail(call, API_ERR_WRONG_STATE,
		      "VM '%s' is %s and the CPU model is fixed once a VM runs (KVM refuses CPUID changes after KVM_RUN): stop it, and its next start creates a new KVM VM with the new model",
		      vm->def->name, vm_state_name(vm->state));
	return true;
}

/* The definition vm.update asks for, validated like vm.create's; NULL
 * when refused (the call is answered). */
static struct vm_def *updated_definition(struct api_call *call, const struct vm_record *vm,
					 json_object *params)
{
	json_object *merged = merged_definition(vm, params);
	struct api_error err;
	struct vm_def *def = NULL;
	int rc = api_params_validate(vm_def_params, merged, &err);

	if (rc == 0)
		rc = vm_def_from_params(merged, &vm->d->host, true, &def, &err);
	json_object_put(merged);
	if (rc < 0) {
		api_call_fail_error(call, &err);
		return NULL;
	}
	return def;
}

/*
 * The new definition is saved before anything changes in memory: if the
 * file cannot be written, the caller is told and the VM stays exactly as
 * it was, in memory and on disk. A broken VM becomes defined.
 */
static void m_vm_update(struct api_call *call, json_object *params, void *ctx)
{
	static const char repaired[] = "definition replaced by vm.update";
	struct daemon *d = ctx;
	struct vm_record *vm;
	struct vm_def *def;
	struct error e;
	bool broken;

	if (refuse_live_cpu_change(call, params, d))
		return;
	vm = lookup_vm(call, params, d);
	if (!vm)
		return;
	if (vm->def->transient) {
		api_call_fail(call, API_ERR_WRONG_STATE, "VM '%s' is transient; vm.update needs a persistent VM",
			      vm->def->name);
		return;
	}
	def = updated_definition(call, vm, params);
	if (!def)
		return;
	broken = vm->state == VM_BROKEN;
	if (store_write_vm(vm, def, broken ? VM_DEFINED : vm->state, broken ? repaired : vm->reason,
			   &e) < 0) {
		api_call_fail(call, API_ERR_IO, "VM '%s' not updated: its definition could not be saved: %s",
			      def->name, e.msg);
		vm_def_free(def);
		return;
	}
	vm_def_free(vm->def);
	vm->def = def;
	vm_summary_forget(vm);
	if (broken)
		vm_set_state(vm, VM_DEFINED, repaired);
	log_info("VM '%s' updated", vm->def->name);
	api_call_reply(call, vm_info_json(vm));
}

/* Replies with what a jtext holds, or an internal error if writing failed. */
static void reply_jtext(struct api_call *call, struct jtext *j)
{
	size_t len;

	if (jt_failed(j)) {
		jt_free(j);
		api_call_fail(call, API_ERR_INTERNAL, "out of memory");
		return;
	}
	char *text = jt_take(j, &len);
	api_call_reply_text(call, text, len);
}

/* The registry is kept in name order (registry.c), so is the list. */
static void m_vm_list(struct api_call *call, json_object *params, void *ctx)
{
	struct daemon *d = ctx;
	struct jtext j;

	jt_init(&j);
	jt_object_begin(&j);
	jt_key(&j, "vms");
	jt_array_begin(&j);
	for (struct vm_record *vm = d->vms; vm; vm = vm->next)
		vm_summary_write(vm, &j);
	jt_array_end(&j);
	jt_object_end(&j);
	reply_jtext(call, &j);
}

static void m_vm_info(struct api_call *call, json_object *params, void *ctx)
{
	struct vm_record *vm = lookup_vm(call, params, ctx);
	struct client *c = call_client(call);
	struct jtext j;

	if (!vm)
		return;
	jt_init(&j);
	vm_info_write(vm, &j, c && c->peer.access == API_ACCESS_FULL);
	reply_jtext(call, &j);
}

/* ------------------------------------------------------------ vm.console.* */

struct attach {
	struct api_call *call;
	struct daemon *d;
	char name[VM_NAME_MAX + 1];
};

static void attach_finish(struct api_call *call, struct vm_record *vm, const char *history)
{
	struct client *c = call_client(call);
	json_object *r = json_object_new_object();

	if (c && !c->dead)
		vm_console_subscribe(vm, c);
	json_object_object_add(r, "name", json_object_new_string(vm->def->name));
	json_object_object_add(r, "state", json_object_new_string(vm_state_name(vm->state)));
	json_object_object_add(r, "history", json_object_new_string(history));
	api_call_reply(call, r);
}

static void on_history_reply(void *data, json_object *result, const struct api_error *error)
{
	struct attach *a = data;
	struct vm_record *vm = vm_find(a->d, a->name);

	if (!vm)
		api_call_fail(a->call, API_ERR_VM_NOT_FOUND, "VM '%s' not found", a->name);
	else
		attach_finish(a->call, vm,
			      result ? api_param_string(result, "data", "") : "");
	free(a);
}

static void m_vm_console_attach(struct api_call *call, json_object *params, void *ctx)
{
	struct daemon *d = ctx;
	struct vm_record *vm = lookup_vm(call, params, d);
	struct attach *a;

	if (!vm)
		return;
	if (!vm->worker || !api_param_bool(params, "history", true)) {
		attach_finish(call, vm, "");
		return;
	}
	/* Subscribe when the history arrives: the worker sends it before any
	 * newer output on the same link, so nothing is lost or repeated. */
	a = calloc(1, sizeof(*a));
	if (!a) {
		api_call_fail(call, API_ERR_INTERNAL, "out of memory");
		return;
	}
	a->call = call;
	a->d = d;
	snprintf(a->name, sizeof(a->name), "%s", vm->def->name);
	if (rpc_conn_call(worker_conn(vm->worker), "console.history", NULL,
			  d->cfg.limits.worker_call_timeout_s, on_history_reply, a) < 0) {
		free(a);
		attach_finish(call, vm, "");
	}
}

static void m_vm_console_detach(struct api_call *call, json_object *params, void *ctx)
{
	struct vm_record *vm = lookup_vm(call, params, ctx);
	struct client *c = call_client(call);

	if (!vm)
		return;
	if (c)
		vm_console_unsubscribe(vm, c);
	api_call_reply(call, json_object_new_object());
}

static void m_vm_console_write(struct api_call *call, json_object *params, void *ctx)
{
	struct vm_record *vm = lookup_vm(call, params, ctx);
	const char *data = api_param_string(params, "data", "");
	size_t len = strlen(data);
	uint8_t *bytes;
	long n;
	json_object *p;

	if (!vm)
		return;
	if (len > base64_encoded_len(CONSOLE_WRITE_MAX)) {
		api_call_fail(call, API_ERR_INVALID_PARAMS,
			      "parameter 'data' is too long (limit %d bytes of input per call)",
			      CONSOLE_WRITE_MAX);
		return;
	}
	bytes = malloc(len / 4 * 3 + 3);
	n = bytes ? base64_decode(data, len, bytes) : -ENOMEM;
	free(bytes);
	if (n < 0) {
		api_call_fail(call, API_ERR_INVALID_PARAMS, "parameter 'data' must be base64 (RFC 4648)");
		return;
	}
	p = json_object_new_object();
	json_object_object_add(p, "data", json_object_new_string(data));
	worker_forward(vm->worker, call, "console.write", p);
}

/* ------------------------------------------------------------ inspection */

/* The vCPU index must name one of the VM's vCPUs. */
static bool check_vcpu(struct api_call *call, const struct vm_record *vm, json_object *params)
{
	json_object *v = api_param_get(params, "vcpu");
	struct api_error err;
	char why[VM_NAME_MAX + 48];

	if (!v || api_int_in_range(v, 0, (int64_t)vm->def->vcpus - 1))
		return true;
	snprintf(why, sizeof(why), "VM '%s' has %u vCPU%s", vm->def->name, vm->def->vcpus,
		 vm->def->vcpus == 1 ? "" : "s");
	api_param_range_error(&err, "vcpu", v, 0, (int64_t)vm->def->vcpus - 1, NULL, why);
	api_call_fail_error(call, &err);
	return false;
}

/* The params without "name", for the worker, which serves one VM. */
static json_object *without_name(json_object *params)
{
	json_object *p = json_object_new_object();

	json_object_object_foreach(params, key, val)
		if (strcmp(key, "name") != 0)
			json_object_object_add(p, key, json_object_get(val));
	return p;
}

static void forward_inspection(struct api_call *call, json_object *params, void *ctx)
{
	struct vm_record *vm = lookup_vm(call, params, ctx);

	if (vm && check_vcpu(call, vm, params))
		worker_forward(vm->worker, call, api_call_method(call)->name, without_name(params));
}

/* ------------------------------------------------------------ vCPU state */

static bool is_base64(const char *text)
{
	size_t len = strlen(text);
	_cleanup_free_ uint8_t *bytes = malloc(len / 4 * 3 + 3);

	return bytes && base64_decode(text, len, bytes) >= 0;
}

/* The state must at least be base64 before the worker is asked; the
 * worker parses and checks it. */
static void m_vcpu_state_load(struct api_call *call, json_object *params, void *ctx)
{
	struct vm_record *vm = lookup_vm(call, params, ctx);

	if (!vm || !check_vcpu(call, vm, params))
		return;
	if (!is_base64(api_param_string(params, "state", ""))) {
		api_call_fail(call, API_ERR_INVALID_PARAMS,
			      "parameter 'state' must be base64 (RFC 4648) of a vCPU state as vcpu.state.save gives it");
		return;
	}
	worker_forward(vm->worker, call, "vcpu.state.load", without_name(params));
}

/* ------------------------------------------------------------ pause, resume, reset */

static void m_vm_pause(struct api_call *call, json_object *params, void *ctx)
{
	struct vm_record *vm = lookup_vm(call, params, ctx);

	if (vm)
		worker_forward_then_set(vm->worker, call, "vm.pause", VM_PAUSED, "paused by vm.pause");
}

static void m_vm_resume(struct api_call *call, json_object *params, void *ctx)
{
	struct vm_record *vm = lookup_vm(call, params, ctx);

	if (vm)
		worker_forward_then_set(vm->worker, call, "vm.resume", VM_RUNNING,
					"resumed by vm.resume");
}

static void m_vm_reset(struct api_call *call, json_object *params, void *ctx)
{
	struct vm_record *vm = lookup_vm(call, params, ctx);

	if (!vm)
		return;
	log_info("VM '%s': reset requested", vm->def->name);
	/* The state does not change: a reset VM keeps running (or paused). */
	worker_forward_then_set(vm->worker, call, "vm.reset", vm->state, "");
}

/* ------------------------------------------------------------ events.* */

static void m_events_subscribe(struct api_call *call, json_object *params, void *ctx)
{
	struct client *c = call_client(call);

	if (c) {
		c->events = true;
		log_debug("client %u: subscribed to events", c->id);
	}
	api_call_reply(call, json_object_new_object());
}

/* ------------------------------------------------------------ table */

#define QUERY API_NEED_READ_ONLY

static const struct api_param p_none[] = { { 0 } };

static const struct api_param p_name[] = {
	{ .name = "name", .type = API_T_STRING, .required = true, .max_len = VM_NAME_MAX },
	{ 0 },
};

/* vm.create's parameters minus transient: the name picks the VM, the rest replace. */
static const struct api_param p_update[] = {
	{ .name = "name", .type = API_T_STRING, .required = true, .max_len = VM_NAME_MAX },
	{ .name = "memory", .type = API_T_INT },
	{ .name = "vcpus", .type = API_T_INT },
	{ .name = "kernel", .type = API_T_STRING, .max_len = VM_KERNEL_PATH_MAX },
	{ .name = "cmdline", .type = API_T_STRING, .max_len = VM_CMDLINE_MAX },
	{ .name = "boot", .type = API_T_STRING, .max_len = 32 },
	{ .name = "cpu", .type = API_T_OBJECT },
	{ 0 },
};

static const char *const access_kinds[] = { "read", "write", "fetch", NULL };

static const struct api_param p_vcpu_role[] = {
	{ .name = "name", .type = API_T_STRING, .required = true, .max_len = VM_NAME_MAX },
	{ .name = "vcpu", .type = API_T_INT }, /* check_vcpu() */
	{ 0 },
};

static const struct api_param p_translate[] = {
	{ .name = "name", .type = API_T_STRING, .required = true, .max_len = VM_NAME_MAX },
	{ .name = "vcpu", .type = API_T_INT }, /* check_vcpu() */
	{ .name = "gva", .type = API_T_U64, .required = true },
	{ .name = "access", .type = API_T_ENUM, .choices = access_kinds },
	{ .name = "user", .type = API_T_BOOL },
	{ 0 },
};

static const struct api_param p_memory_read[] = {
	{ .name = "name", .type = API_T_STRING, .required = true, .max_len = VM_NAME_MAX },
	{ .name = "vcpu", .type = API_T_INT }, /* check_vcpu() */
	{ .name = "addr", .type = API_T_U64, .required = true },
	{ .name = "len", .type = API_T_INT, .required = true, .min = 1, .max = VM_MEMORY_READ_MAX,
	  .unit = "bytes", .bound = VM_MEMORY_READ_LIMIT_NAME },
	{ .name = "virtual", .type = API_T_BOOL },
	{ 0 },
};

static const struct api_param p_vcpu_state_save[] = {
	{ .name = "name", .type = API_T_STRING, .required = true, .max_len = VM_NAME_MAX },
	{ .name = "vcpu", .type = API_T_INT }, /* check_vcpu() */
	{ 0 },
};

static const struct api_param p_vcpu_state_load[] = {
	{ .name = "name", .type = API_T_STRING, .required = true, .max_len = VM_NAME_MAX },
	{ .name = "vcpu", .type = API_T_INT }, /* check_vcpu() */
	{ .name = "state", .type = API_T_STRING, .required = true,
	  .max_len = VM_VCPU_STATE_BASE64_MAX },
	{ 0 },
};

static const struct api_param p_attach[] = {
	{ .name = "name", .type = API_T_STRING, .required = true, .max_len = VM_NAME_MAX },
	{ .name = "history", .type = API_T_BOOL },
	{ 0 },
};

static const struct api_param p_console_write[] = {
	{ .name = "name", .type = API_T_STRING, .required = true, .max_len = VM_NAME_MAX },
	{ .name = "data", .type = API_T_STRING, .required = true, .max_len = 2 * CONSOLE_WRITE_MAX },
	{ 0 },
};

const struct api_method vmmd_methods[] = {
	{ .name = "daemon.version", .handler = m_daemon_version, .params = p_none, .needs = QUERY,
	  .summary = "vmmd version, pid, uptime and host limits" },
	{ .name = "vm.create", .handler = m_vm_create, .params = vm_def_params,
	  .summary = "define a VM" },
	{ .name = "vm.start", .handler = m_vm_start, .params = p_name,
	  .allowed_states = VM_STATES_IDLE, .summary = "start a defined or stopped VM" },
	{ .name = "vm.stop", .handler = m_vm_stop, .params = p_name,
	  .allowed_states = LIVE_STATES, .summary = "power a VM off" },
	{ .name = "vm.delete", .handler = m_vm_delete, .params = p_name,
	  .allowed_states = VM_STATES_IDLE | VM_STATE_BIT(VM_BROKEN),
	  .summary = "forget a VM that is not running" },
	{ .name = "vm.update", .handler = m_vm_update, .params = p_update,
	  .allowed_states = VM_STATES_IDLE | VM_STATE_BIT(VM_BROKEN),
	  .summary = "change a VM's definition while it is not running" },
	{ .name = "vm.list", .handler = m_vm_list, .params = p_none, .needs = QUERY,
	  .summary = "every VM with its state" },
	{ .name = "vm.info", .handler = m_vm_info, .params = p_name, .needs = QUERY,
	  .allowed_states = ANY_STATE, .summary = "one VM's definition and runtime state" },
	{ .name = "vm.console.attach", .handler = m_vm_console_attach, .params = p_attach,
	  .summary = "receive a VM's console output as notifications" },
	{ .name = "vm.console.detach", .handler = m_vm_console_detach, .params = p_name,
	  .summary = "stop receiving console output" },
	{ .name = "vm.console.write", .handler = m_vm_console_write, .params = p_console_write,
	  .allowed_states = ACTIVE_STATES,
	  .summary = "send bytes to a VM's serial console" },
	{ .name = "vcpu.role", .handler = forward_inspection, .params = p_vcpu_role,
	  .allowed_states = ACTIVE_STATES, .summary = "a vCPU's paging mode and MMU role" },
	{ .name = "vcpu.registers", .handler = forward_inspection, .params = p_vcpu_role,
	  .allowed_states = ACTIVE_STATES,
	  .summary = "every register of a vCPU, with decoded flags and segments" },
	{ .name = "vcpu.cpuid", .handler = forward_inspection, .params = p_vcpu_role,
	  .allowed_states = ACTIVE_STATES, .summary = "the CPUID KVM holds for a vCPU" },
	{ .name = "vm.translate", .handler = forward_inspection, .params = p_translate,
	  .allowed_states = ACTIVE_STATES,
	  .summary = "translate a guest virtual address, with the page walk" },
	{ .name = "vm.memory.read", .handler = forward_inspection, .params = p_memory_read,
	  .allowed_states = ACTIVE_STATES,
	  .summary = "read guest memory by physical or virtual address" },
	{ .name = "vcpu.state.save", .handler = forward_inspection, .params = p_vcpu_state_save,
	  .allowed_states = VM_STATE_BIT(VM_PAUSED),
	  .summary = "a paused vCPU's complete state, serialized and base64-encoded" },
	{ .name = "vcpu.state.load", .handler = m_vcpu_state_load, .params = p_vcpu_state_load,
	  .allowed_states = VM_STATE_BIT(VM_PAUSED),
	  .summary = "replace a paused vCPU's complete state with a saved one" },
	{ .name = "vm.pause", .handler = m_vm_pause, .params = p_name,
	  .allowed_states = VM_STATE_BIT(VM_RUNNING),
	  .summary = "stop every vCPU at an instruction boundary" },
	{ .name = "vm.resume", .handler = m_vm_resume, .params = p_name,
	  .allowed_states = VM_STATE_BIT(VM_PAUSED), .summary = "let a paused VM run again" },
	{ .name = "vm.reset", .handler = m_vm_reset, .params = p_name,
	  .allowed_states = ACTIVE_STATES,
	  .summary = "platform reset: vCPUs, devices, boot loader" },
	{ .name = "events.subscribe", .handler = m_events_subscribe, .params = p_none,
	  .needs = QUERY, .summary = "receive vm.state-changed and daemon notifications" },
};

const size_t vmmd_nr_methods = sizeof(vmmd_methods) / sizeof(vmmd_methods[0]);
