/* SPDX-License-Identifier: MIT */
/*
 * vcpu.state.save and vcpu.state.load in the worker: a paused vCPU's
 * complete state (vcpu/state.h) in the serialization format of
 * docs/vcpu.md §5, carried base64-encoded in the request or the reply.
 * The daemon never reads or writes host files for them; vmctl does, on
 * the client's side.
 *
 * A load parses the bytes, then vcpu_state_load() checks them against the
 * vCPU (the mmu/ validator among the checks) and writes nothing unless
 * every check passes. Should KVM refuse part of a state that passed, the
 * vCPU's previous state, saved first, is put back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/session.h"
#include "util/base64.h"
#include "util/log.h"
#include "util/macro.h"
#include "vcpu/state.h"
#include "vmmd/vmdef.h"
#include "vmmd/worker/vm.h"
#include "vmmd/worker/worker-internal.h"

/* The paused VM's vCPU the call names, or NULL with the call answered. */
static struct vcpu *paused_vcpu(struct worker_state *ws, struct api_call *call,
				json_object *params)
{
	unsigned int index = (unsigned int)api_param_int(params, "vcpu", 0);
	struct vcpu *v;

	if (!ws->vm || ws->ended) {
		api_call_fail(call, API_ERR_WRONG_STATE, "no VM is running in this worker");
		return NULL;
	}
	if (!vm_is_paused(ws->vm)) {
		api_call_fail(call, API_ERR_WRONG_STATE,
			      "the VM is running; %s needs it paused", api_call_method(call)->name);
		return NULL;
	}
	v = vm_vcpu(ws->vm, index);
	if (!v)
		api_call_fail(call, API_ERR_INVALID_PARAMS,
			      "parameter 'vcpu' must be between 0 and %u, got %u",
			      vm_nr_vcpus(ws->vm) - 1, index);
	return v;
}

static json_object *state_result(unsigned int vcpu, size_t size)
{
	json_object *r = json_object_new_object();

	json_object_object_add(r, "vcpu", json_object_new_int((int)vcpu));
	json_object_object_add(r, "size", json_object_new_int64((int64_t)size));
	json_object_object_add(r, "format_version", json_object_new_int(VCPU_STATE_VERSION));
	return r;
}

/* The serialized state of v, within what a reply may carry. */
static int serialized_state(struct vcpu *v, void **ret, size_t *ret_len, struct api_error *err)
{
	struct vcpu_state s = { 0 };
	struct error e;
	int rc;

	rc = vcpu_state_save(v, &s, &e);
	if (rc == 0)
		rc = vcpu_state_serialize(&s, ret, ret_len, &e);
	vcpu_state_release(&s);
	if (rc < 0)
		return api_error_set(err, rc == -ENOMEM ? API_ERR_RESOURCE_LIMIT : API_ERR_KVM,
				     "saving the state of vcpu %u: %s", vcpu_id(v), e.msg);
	if (*ret_len > VM_VCPU_STATE_MAX) {
		free(*ret);
		return api_error_set(err, API_ERR_RESOURCE_LIMIT,
				     "the state of vcpu %u is %zu bytes, more than the %d vcpu.state.save carries",
				     vcpu_id(v), *ret_len, VM_VCPU_STATE_MAX);
	}
	return 0;
}

void w_vcpu_state_save(struct api_call *call, json_object *params, void *ctx)
{
	struct vcpu *v = paused_vcpu(ctx, call, params);
	_cleanup_free_ void *bytes = NULL;
	_cleanup_free_ char *text = NULL;
	struct api_error err;
	json_object *r;
	size_t len = 0;

	if (!v)
		return;
	if (serialized_state(v, &bytes, &len, &err) < 0) {
		api_call_fail_error(call, &err);
		return;
	}
	text = malloc(base64_encoded_len(len) + 1);
	if (!text) {
		api_call_fail(call, API_ERR_RESOURCE_LIMIT, "out of memory");
		return;
	}
	base64_encode(bytes, len, text);
	r = state_result(vcpu_id(v), len);
	json_object_object_add(r, "state", json_object_new_string(text));
	log_info("vcpu %u: state saved (%zu bytes)", vcpu_id(v), len);
	api_call_reply(call, r);
}

/* The request's state, decoded and parsed. */
static int parsed_state(json_object *params, struct vcpu_state *ret, size_t *ret_len,
			struct api_error *err)
{
	const char *text = api_param_string(params, "state", "");
	size_t len = strlen(text);
	_cleanup_free_ uint8_t *bytes = malloc(len / 4 * 3 + 3);
	struct error e;
	long n;

	if (!bytes)
		return api_error_set(err, API_ERR_RESOURCE_LIMIT, "out of memory");
	n = base64_decode(text, len, bytes);
	if (n < 0)
		return api_error_set(err, API_ERR_INVALID_PARAMS,
				     "parameter 'state' must be base64 (RFC 4648)");
	if (vcpu_state_parse(bytes, (size_t)n, ret, NULL, &e) < 0)
		return api_error_set(err, API_ERR_INVALID_PARAMS, "parameter 'state': %s", e.msg);
	*ret_len = (size_t)n;
	return 0;
}

/* "parameter 'state' is refused for vcpu 0: 2 problems: 1) ...; 2) ...",
 * as many as the message holds. */
static void refusal(const struct vcpu_state_problems *p, unsigned int vcpu,
		    struct api_error *err)
{
	size_t room = sizeof(err->message), n;
	unsigned int shown = 0;
	char *m = err->message;

	err->code = API_ERR_INVALID_PARAMS;
	n = (size_t)snprintf(m, room, "parameter 'state' is refused for vcpu %u: %u problem%s%s:",
			     vcpu, p->count, p->count == 1 ? "" : "s",
			     p->truncated ? " (and more not counted)" : "");
	for (; shown < p->count && n < room; shown++) {
		int w = snprintf(m + n, room - n, "%s %u) %s", shown ? ";" : "", shown + 1,
				 p->msg[shown]);
		/* Keep room to say how many did not fit. */
		if (w < 0 || n + (size_t)w + 32 >= room)
			break;
		n += (size_t)w;
	}
	if (shown < p->count)
		snprintf(m + n, room - n, "; and %u more", p->count - shown);
}

/* After KVM refused part of a checked state: the vCPU's saved state back. */
static void restore_or_crash(struct worker_state *ws, struct vcpu *v,
			     const struct vcpu_state *before, struct api_error *err)
{
	char why[API_ERROR_MSG_MAX];
	struct error e;

	snprintf(why, sizeof(why), "%s", err->message);
	if (vcpu_state_load(v, before, NULL, &e) == 0) {
		api_error_set(err, API_ERR_KVM, "loading the state into vcpu %u failed, its previous state was put back: %s",
			      vcpu_id(v), why);
		return;
	}
	api_error_set(err, API_ERR_KVM, "loading the state into vcpu %u failed and its previous state could not be put back (%s): %s",
		      vcpu_id(v), e.msg, why);
	vm_request_exit(ws->vm, VM_END_CRASHED, false, 0, err->message);
}

static int load_state(struct worker_state *ws, struct vcpu *v, const struct vcpu_state *s,
		      struct api_error *err)
{
	struct vcpu_state before = { 0 };
	_cleanup_free_ struct vcpu_state_problems *problems = calloc(1, sizeof(*problems));
	struct error e;
	int rc;

	if (!problems)
		return api_error_set(err, API_ERR_RESOURCE_LIMIT, "out of memory");
	rc = vcpu_state_save(v, &before, &e);
	if (rc < 0)
		return api_error_set(err, API_ERR_KVM, "saving the state of vcpu %u before the load: %s",
				     vcpu_id(v), e.msg);
	rc = vcpu_state_load(v, s, problems, &e);
	if (rc < 0 && problems->count > 0)
		refusal(problems, vcpu_id(v), err);
	else if (rc < 0) {
		api_error_set(err, API_ERR_KVM, "%s", e.msg);
		restore_or_crash(ws, v, &before, err);
	}
	vcpu_state_release(&before);
	return rc;
}

void w_vcpu_state_load(struct api_call *call, json_object *params, void *ctx)
{
	struct worker_state *ws = ctx;
	struct vcpu *v = paused_vcpu(ws, call, params);
	struct vcpu_state s = { 0 };
	struct api_error err;
	size_t len = 0;

	if (!v)
		return;
	if (parsed_state(params, &s, &len, &err) < 0 || load_state(ws, v, &s, &err) < 0) {
		log_warning("vcpu %u: state not loaded: %s", vcpu_id(v), err.message);
		api_call_fail_error(call, &err);
	} else {
		log_info("vcpu %u: state loaded (%zu bytes)", vcpu_id(v), len);
		api_call_reply(call, state_result(vcpu_id(v), len));
	}
	vcpu_state_release(&s);
}

const struct api_param p_vcpu_state_save[] = {
	{ .name = "vcpu", .type = API_T_INT, .min = 0, .max = 4095 },
	{ 0 },
};

const struct api_param p_vcpu_state_load[] = {
	{ .name = "vcpu", .type = API_T_INT, .min = 0, .max = 4095 },
	{ .name = "state", .type = API_T_STRING, .required = true,
	  .max_len = VM_VCPU_STATE_BASE64_MAX },
	{ 0 },
};
