/* SPDX-License-Identifier: MIT */
/*
 * The worker's methods that look into or control its running VM:
 * inspection (vcpu.role, vcpu.registers, vcpu.cpuid, vm.translate,
 * vm.memory.read) and pause, resume and reset. worker.c holds the table.
 */
#include <errno.h>
#include <string.h>

#include "api/session.h"
#include "mmu/mmu.h"
#include "util/log.h"
#include "vmmd/worker/inspect.h"
#include "vmmd/worker/vm.h"
#include "vmmd/worker/worker-internal.h"

static const char *const access_kinds[] = { "read", "write", "fetch", NULL };

static uint32_t access_flags(json_object *params)
{
	const char *kind = api_param_string(params, "access", "read");
	uint32_t access = strcmp(kind, "write") == 0   ? MMU_ACCESS_WRITE
			  : strcmp(kind, "fetch") == 0 ? MMU_ACCESS_FETCH
						       : MMU_ACCESS_READ;

	return access | (api_param_bool(params, "user", false) ? MMU_ACCESS_USER : 0);
}

/* Runs an inspection that needs a running VM; answers the call. */
static bool have_vm(struct worker_state *ws, struct api_call *call)
{
	if (ws->vm && !ws->ended)
		return true;
	api_call_fail(call, API_ERR_WRONG_STATE, "no VM is running in this worker");
	return false;
}

/* An inspection: reads params, fills *ret or err. */
typedef int (*inspection_fn)(struct vm *vm, json_object *params, json_object **ret,
			     struct api_error *err);

/* Runs one inspection of the worker's VM and answers the call with it. */
static void run_inspection(struct api_call *call, void *ctx, json_object *params,
			   inspection_fn fn)
{
	struct worker_state *ws = ctx;
	json_object *r = NULL;
	struct api_error err;

	if (!have_vm(ws, call))
		return;
	if (fn(ws->vm, params, &r, &err) < 0)
		api_call_fail_error(call, &err);
	else
		api_call_reply(call, r);
}

static unsigned int vcpu_index(json_object *params)
{
	return (unsigned int)api_param_int(params, "vcpu", 0);
}

static int role(struct vm *vm, json_object *p, json_object **ret, struct api_error *err)
{
	return inspect_role(vm, vcpu_index(p), ret, err);
}

static int translate(struct vm *vm, json_object *p, json_object **ret, struct api_error *err)
{
	return inspect_translate(vm, vcpu_index(p), api_param_u64(p, "gva", 0), access_flags(p),
				 ret, err);
}

static int memory_read(struct vm *vm, json_object *p, json_object **ret, struct api_error *err)
{
	return inspect_read(vm, api_param_u64(p, "addr", 0), (size_t)api_param_int(p, "len", 0),
			    api_param_bool(p, "virtual", false), vcpu_index(p), ret, err);
}

static int registers(struct vm *vm, json_object *p, json_object **ret, struct api_error *err)
{
	return inspect_registers(vm, vcpu_index(p), ret, err);
}

static int cpuid(struct vm *vm, json_object *p, json_object **ret, struct api_error *err)
{
	return inspect_cpuid(vm, vcpu_index(p), ret, err);
}

void w_vcpu_role(struct api_call *call, json_object *params, void *ctx)
{
	run_inspection(call, ctx, params, role);
}

void w_translate(struct api_call *call, json_object *params, void *ctx)
{
	run_inspection(call, ctx, params, translate);
}

void w_memory_read(struct api_call *call, json_object *params, void *ctx)
{
	run_inspection(call, ctx, params, memory_read);
}

void w_registers(struct api_call *call, json_object *params, void *ctx)
{
	run_inspection(call, ctx, params, registers);
}

void w_cpuid(struct api_call *call, json_object *params, void *ctx)
{
	run_inspection(call, ctx, params, cpuid);
}

static json_object *paused_result(struct worker_state *ws)
{
	json_object *r = json_object_new_object();

	json_object_object_add(r, "paused", json_object_new_boolean(vm_is_paused(ws->vm)));
	return r;
}

void w_pause(struct api_call *call, json_object *params, void *ctx)
{
	struct worker_state *ws = ctx;

	if (!have_vm(ws, call))
		return;
	vm_pause(ws->vm);
	log_info("paused");
	api_call_reply(call, paused_result(ws));
}

void w_resume(struct api_call *call, json_object *params, void *ctx)
{
	struct worker_state *ws = ctx;

	if (!have_vm(ws, call))
		return;
	vm_resume(ws->vm);
	log_info("resumed");
	api_call_reply(call, paused_result(ws));
}

void w_reset(struct api_call *call, json_object *params, void *ctx)
{
	struct worker_state *ws = ctx;
	struct api_error err;
	int rc;

	if (!have_vm(ws, call))
		return;
	rc = vm_reset(ws->vm, &err);
	if (rc == -EINVAL) {
		log_warning("reset refused, nothing changed: %s", err.message);
		api_call_fail(call, err.code, "VM not reset, nothing changed: %s", err.message);
		return;
	}
	if (rc < 0) {
		/* A half-done reset leaves no VM worth running. */
		log_error("reset failed: %s", err.message);
		api_call_fail_error(call, &err);
		vm_request_exit(ws->vm, VM_END_CRASHED, false, 0, err.message);
		return;
	}
	api_call_reply(call, paused_result(ws));
}

const struct api_param p_role[] = {
	{ .name = "vcpu", .type = API_T_INT, .min = 0, .max = 4095 },
	{ 0 },
};

const struct api_param p_translate[] = {
	{ .name = "vcpu", .type = API_T_INT, .min = 0, .max = 4095 },
	{ .name = "gva", .type = API_T_U64, .required = true },
	{ .name = "access", .type = API_T_ENUM, .choices = access_kinds },
	{ .name = "user", .type = API_T_BOOL },
	{ 0 },
};

const struct api_param p_memory_read[] = {
	{ .name = "vcpu", .type = API_T_INT, .min = 0, .max = 4095 },
	{ .name = "addr", .type = API_T_U64, .required = true },
	{ .name = "len", .type = API_T_INT, .required = true, .min = 1, .max = INSPECT_READ_MAX,
	  .unit = "bytes", .bound = VM_MEMORY_READ_LIMIT_NAME },
	{ .name = "virtual", .type = API_T_BOOL },
	{ 0 },
};

