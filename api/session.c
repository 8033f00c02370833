/* SPDX-License-Identifier: MIT */
#include "api/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jsonrpc.h"

struct batch {
	json_object *replies;
	unsigned int pending;
	unsigned int refs; /* pending calls + the dispatching loop */
};

struct api_call {
	struct api_call *prev, *next;
	struct api_session *session; /* NULL once orphaned */
	const struct api_method *method;
	json_object *id;     /* may be NULL: a JSON null id */
	bool is_request;     /* false for notifications, which get no reply */
	json_object *params; /* reference held */
	struct batch *batch;
};

struct api_session {
	struct api_session_config cfg;
	const struct api_session_ops *ops;
	void *conn;
	void *ctx;
	struct api_call *calls;
	unsigned int in_flight;
};

const struct api_method *api_method_find(const struct api_method *methods, size_t n,
					 const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}

struct api_session *api_session_new(const struct api_session_config *cfg,
				    const struct api_session_ops *ops, void *conn, void *ctx)
{
	struct api_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->ops = ops;
	s->conn = conn;
	s->ctx = ctx;
	return s;
}

static void batch_unref(struct batch *b, struct api_session *s)
{
	if (--b->refs > 0)
		return;
	if (s && json_object_array_length(b->replies) > 0)
		s->ops->send(s->conn, b->replies);
	json_object_put(b->replies);
	free(b);
}

void api_session_free(struct api_session *s)
{
	if (!s)
		return;
	for (struct api_call *c = s->calls; c; c = c->next)
		c->session = NULL;
	free(s);
}

unsigned int api_session_in_flight(const struct api_session *s)
{
	return s->in_flight;
}

void *api_session_conn(const struct api_session *s)
{
	return s->conn;
}

static void session_send_or_collect(struct api_session *s, struct batch *b, json_object *reply)
{
	if (b) {
		json_object_array_add(b->replies, reply);
		return;
	}
	if (s)
		s->ops->send(s->conn, reply);
	json_object_put(reply);
}

static void call_unlink(struct api_call *c)
{
	struct api_session *s = c->session;

	if (!s)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->in_flight--;
}

/* Sends (or collects) the reply, then frees the call. Takes reply. */
static void call_finish(struct api_call *c, json_object *reply)
{
	struct api_session *s = c->session;
	struct batch *b = c->batch;

	call_unlink(c);
	if (c->is_request && reply)
		session_send_or_collect(s, b, reply);
	else
		json_object_put(reply);
	if (b)
		batch_unref(b, s);
	json_object_put(c->id);
	json_object_put(c->params);
	free(c);
}

void api_call_reply(struct api_call *call, json_object *result)
{
	json_object *reply = call->is_request ? jsonrpc_result_new(call->id, result) : NULL;

	if (!call->is_request)
		json_object_put(result);
	call_finish(call, reply);
}

/* {"jsonrpc":"2.0","id":ID,"result":TEXT} as text; NULL on ENOMEM. */
static char *envelope_text(json_object *id, const char *result, size_t len, size_t *ret_len)
{
	const char *id_text = id ? json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN)
				 : "null";
	size_t n = strlen(id_text) + len + 48;
	char *out = malloc(n);
	int w;

	if (!out)
		return NULL;
	w = snprintf(out, n, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":%.*s}", id_text,
		     (int)len, result);
	*ret_len = (size_t)w;
	return out;
}

void api_call_reply_text(struct api_call *call, char *text, size_t len)
{
	struct api_session *s = call->session;
	json_object *result;
	size_t out_len;
	char *out;

	/* Straight to the wire unless it must join a batch reply. */
	if (call->is_request && !call->batch && s && s->ops->send_text) {
		out = envelope_text(call->id, text, len, &out_len);
		free(text);
		if (!out) {
			api_call_fail(call, API_ERR_INTERNAL, "out of memory");
			return;
		}
		s->ops->send_text(s->conn, out, out_len);
		free(out);
		call_finish(call, NULL);
		return;
	}
	result = json_tokener_parse(text);
	free(text);
	api_call_reply(call, result);
}

void api_call_fail_error(struct api_call *call, const struct api_error *err)
{
	json_object *reply = call->is_request
				     ? jsonrpc_error_new(call->id, err->code, err->message, NULL)
				     : NULL;
	call_finish(call, reply);
}

void api_call_fail(struct api_call *call, int code, const char *fmt, ...)
{
	struct api_error err = { .code = code };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	api_call_fail_error(call, &err);
}

const struct api_method *api_call_method(const struct api_call *call)
{
	return call->method;
}

void *api_call_conn(const struct api_call *call)
{
	return call->session ? call->session->conn : NULL;
}

bool api_call_is_orphan(const struct api_call *call)
{
	return call->session == NULL;
}

json_object *api_call_params(const struct api_call *call)
{
	return call->params;
}

/* Replies to a message that never became a call. */
static void reply_error(struct api_session *s, struct batch *b, json_object *id,
			const struct api_error *err)
{
	session_send_or_collect(s, b, jsonrpc_error_new(id, err->code, err->message, NULL));
}

static bool access_allows(enum api_access granted, enum api_need needed)
{
	switch (granted) {
	case API_ACCESS_FULL:
		return true;
	case API_ACCESS_READ_ONLY:
		return needed == API_NEED_READ_ONLY;
	case API_ACCESS_NONE:
		break;
	}
	return false;
}

/* Refuses a method the session's peer may not call, and reports it. */
static int check_access(struct api_session *s, const struct api_method *method,
			struct api_error *err)
{
	const char *why = s->cfg.access_reason;

	if (access_allows(s->cfg.access, method->needs))
		return 0;
	if (s->cfg.access == API_ACCESS_NONE)
		api_error_set(err, API_ERR_PERMISSION, "permission denied: %s",
			      why ? why : "this connection may not call methods");
	else
		api_error_set(err, API_ERR_PERMISSION,
			      "permission denied: %s needs full access and this connection is read-only%s%s",
			      method->name, why ? " " : "", why ? why : "");
	if (s->ops->denied)
		s->ops->denied(s->conn, method, err->message);
	return -EACCES;
}

static int check_call(struct api_session *s, const struct jsonrpc_msg *m,
		      const struct api_method **ret_method, struct api_error *err)
{
	const struct api_method *method =
		api_method_find(s->cfg.methods, s->cfg.nr_methods, m->method);
	int rc;

	if (!method)
		return api_error_set(err, API_ERR_METHOD_NOT_FOUND, "method '%.64s' not found",
				     m->method);
	rc = check_access(s, method, err);
	if (rc < 0)
		return rc;
	if (s->cfg.max_in_flight && s->in_flight >= s->cfg.max_in_flight)
		return api_error_set(err, API_ERR_RESOURCE_LIMIT,
				     "too many requests in flight on this connection (limit %u)",
				     s->cfg.max_in_flight);
	rc = api_params_validate(method->params, m->params, err);
	if (rc < 0)
		return rc;
	*ret_method = method;
	return 0;
}

static void start_call(struct api_session *s, struct batch *b, const struct api_method *method,
		       const struct jsonrpc_msg *m)
{
	struct api_call *c = calloc(1, sizeof(*c));

	if (!c) {
		struct api_error err;
		api_error_set(&err, API_ERR_INTERNAL, "out of memory");
		if (m->kind == JSONRPC_REQUEST)
			reply_error(s, b, m->id, &err);
		return;
	}
	c->session = s;
	c->method = method;
	c->is_request = m->kind == JSONRPC_REQUEST;
	c->id = json_object_get(m->id);
	c->params = json_object_get(m->params);
	c->batch = b;
	if (b) {
		b->refs++;
		b->pending++;
	}
	c->next = s->calls;
	if (s->calls)
		s->calls->prev = c;
	s->calls = c;
	s->in_flight++;
	method->handler(c, c->params, s->ctx);
}

static void handle_one(struct api_session *s, struct batch *b, json_object *obj)
{
	struct jsonrpc_msg m;
	json_object *id;
	struct api_error err;
	const struct api_method *method = NULL;

	if (jsonrpc_classify(obj, &m, &id, &err) < 0) {
		reply_error(s, b, id, &err);
		return;
	}
	if (m.kind == JSONRPC_RESULT || m.kind == JSONRPC_ERROR) {
		/* Clients never receive our calls, so a response here is stray. */
		api_error_set(&err, API_ERR_INVALID_REQUEST,
			      "invalid request: unexpected response object");
		reply_error(s, b, NULL, &err);
		return;
	}
	if (check_call(s, &m, &method, &err) < 0) {
		if (m.kind == JSONRPC_REQUEST)
			reply_error(s, b, m.id, &err);
		return;
	}
	start_call(s, b, method, &m);
}

static void handle_batch(struct api_session *s, json_object *arr)
{
	size_t n = json_object_array_length(arr);
	struct api_error err;
	struct batch *b;

	if (n == 0) {
		api_error_set(&err, API_ERR_INVALID_REQUEST, "invalid request: empty batch");
		reply_error(s, NULL, NULL, &err);
		return;
	}
	if (n > JSONRPC_MAX_BATCH) {
		api_error_set(&err, API_ERR_INVALID_REQUEST,
			      "invalid request: batch of %zu exceeds the limit of %d", n,
			      JSONRPC_MAX_BATCH);
		reply_error(s, NULL, NULL, &err);
		return;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return;
	b->replies = json_object_new_array();
	b->refs = 1;
	for (size_t i = 0; i < n; i++)
		handle_one(s, b, json_object_array_get_idx(arr, i));
	batch_unref(b, s);
}

void api_session_handle(struct api_session *s, json_object *msg)
{
	if (json_object_is_type(msg, json_type_array))
		handle_batch(s, msg);
	else
		handle_one(s, NULL, msg);
}

void api_session_bad_message(struct api_session *s, const struct api_error *err)
{
	reply_error(s, NULL, NULL, err);
}
