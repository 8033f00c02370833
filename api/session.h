/* SPDX-License-Identifier: MIT */
/*
 * The request layer shared by every front end: one session per client
 * connection takes parsed JSON-RPC messages (single or batch), checks each
 * against the method table (existence, access, parameter schema, in-flight
 * limit) and runs its handler. Handlers answer through api_call_reply() /
 * api_call_fail(), immediately or later (e.g. after a worker replied);
 * batch replies are sent as one array once every member has answered.
 *
 * A session outlives nothing: when its connection goes away,
 * api_session_free() turns calls still running into orphans whose answers
 * are dropped, so handlers never need to know whether the client is still
 * there.
 */
#ifndef VMMD_API_SESSION_H
#define VMMD_API_SESSION_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/errors.h"
#include "api/schema.h"

struct api_call;
struct api_session;

typedef void (*api_handler_fn)(struct api_call *call, json_object *params, void *ctx);

/*
 * The access a method needs. The zero value, which a table entry that says
 * nothing gets, is the strictest: a method is opened to read-only peers
 * only by saying so.
 */
enum api_need {
	API_NEED_FULL = 0,  /* changes something, or shows what runs inside a guest */
	API_NEED_READ_ONLY, /* shows only what the daemon knows about its VMs */
};

struct api_method {
	const char *name;
	api_handler_fn handler;
	const struct api_param *params; /* terminated by {.name = NULL} */
	enum api_need needs;		/* checked against the session's access */
	uint32_t allowed_states;	/* interpreted by the handler's owner; 0: any */
	const char *summary;		/* one line, for help and docs */
};

struct api_session_ops {
	/* Queue msg (borrowed) to the peer; a negative errno if it cannot. */
	int (*send)(void *conn, json_object *msg);
	/* Queue one message given as JSON text (optional: send() is used
	 * with the text parsed back when absent). */
	int (*send_text)(void *conn, const char *text, size_t len);
	/* A call was refused for lack of access (optional; for the log). */
	void (*denied)(void *conn, const struct api_method *m, const char *why);
};

/* The access a session grants its peer. */
enum api_access {
	API_ACCESS_FULL,      /* every method */
	API_ACCESS_READ_ONLY, /* methods that need API_NEED_READ_ONLY */
	API_ACCESS_NONE,      /* nothing: the peer is not authorised */
};

struct api_session_config {
	const struct api_method *methods;
	size_t nr_methods;
	unsigned int max_in_flight; /* 0: unlimited */
	enum api_access access;
	/* With API_ACCESS_NONE / READ_ONLY: why, for the error message. */
	const char *access_reason;
};

struct api_session *api_session_new(const struct api_session_config *cfg,
				    const struct api_session_ops *ops, void *conn, void *ctx);
void api_session_free(struct api_session *s);

/* Handles one parsed message: a request, a notification or a batch array. */
void api_session_handle(struct api_session *s, json_object *msg);

/* Answers a message that could not be parsed (id null). */
void api_session_bad_message(struct api_session *s, const struct api_error *err);

unsigned int api_session_in_flight(const struct api_session *s);
void *api_session_conn(const struct api_session *s);

const struct api_method *api_method_find(const struct api_method *methods, size_t n,
					 const char *name);

/* Completes a call with a result (ownership taken). Frees the call. */
void api_call_reply(struct api_call *call, json_object *result);
/* Completes a call with a result given as JSON text (len bytes, taken and
 * freed): for hot replies, no json-c tree is built. Frees the call. */
void api_call_reply_text(struct api_call *call, char *text, size_t len);
/* Completes a call with an error. Frees the call. */
void api_call_fail(struct api_call *call, int code, const char *fmt, ...) _printf_(3, 4);
void api_call_fail_error(struct api_call *call, const struct api_error *err);

const struct api_method *api_call_method(const struct api_call *call);
/* The connection the call came from, or NULL once the client has gone. */
void *api_call_conn(const struct api_call *call);
bool api_call_is_orphan(const struct api_call *call);
json_object *api_call_params(const struct api_call *call);

#endif
