/* SPDX-License-Identifier: MIT */
/*
 * One JSON-RPC connection on a libev loop: non-blocking reads into a bounded
 * frame reader, a bounded output queue, and outgoing calls matched to their
 * replies by id. Used by vmmd for its clients and its workers, and by the
 * worker for its link to vmmd. Main-thread only (libev).
 *
 * Flow control: when more than `out_high` bytes wait to be written, the
 * connection stops reading until the queue drains, so a peer that does not
 * read its replies only stalls itself.
 *
 * Lifetime: the owner creates the connection and eventually calls
 * rpc_conn_free(). When the peer closes or an I/O error occurs, ops->closed
 * is called once; the owner may free the connection from inside any
 * callback (freeing is deferred until the callback returns).
 */
#ifndef VMMD_API_CONN_H
#define VMMD_API_CONN_H

#include <ev.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/errors.h"

struct rpc_conn;

struct rpc_conn_ops {
	/* A parsed message that is not a reply to one of our calls (a request,
	 * notification, batch array, or an unmatched response). Borrowed. */
	void (*message)(struct rpc_conn *c, json_object *msg, void *userdata);
	/* A line that failed to parse, or an oversized message. */
	void (*bad_message)(struct rpc_conn *c, const struct api_error *err, void *userdata);
	/* Peer gone or fatal I/O error; called once. */
	void (*closed)(struct rpc_conn *c, const char *reason, void *userdata);
};

struct rpc_conn_limits {
	size_t max_message; /* incoming message bound, RPC_MESSAGE_MAX by default */
	size_t out_max;	    /* hard bound on queued output */
	size_t out_high;    /* stop reading above this */
};

/*
 * Reply to an outgoing call: exactly one of result / error is non-NULL.
 * Both are borrowed for the duration of the callback.
 */
typedef void (*rpc_reply_fn)(void *data, json_object *result, const struct api_error *error);

/* Takes ownership of fd (made non-blocking and close-on-exec). NULL on ENOMEM. */
struct rpc_conn *rpc_conn_new(struct ev_loop *loop, int fd, const struct rpc_conn_limits *limits,
			      const struct rpc_conn_ops *ops, void *userdata);

/* Closes the fd, fails pending calls, frees everything. NULL is fine. */
void rpc_conn_free(struct rpc_conn *c);

/*
 * Queues one message (not taking ownership). Returns 0, -ENOBUFS when the
 * output bound would be exceeded (nothing queued), or -EPIPE once closed.
 */
int rpc_conn_send(struct rpc_conn *c, json_object *msg);

/* Queues one message given as JSON text (len bytes, no newline); as rpc_conn_send. */
int rpc_conn_send_text(struct rpc_conn *c, const char *text, size_t len);

/* Sends method(params) with a fresh id; takes ownership of params. cb gets
 * the reply, or an error if the connection closes or timeout_s (0: none)
 * expires first. Returns 0 or a negative errno (cb is not called then). */
int rpc_conn_call(struct rpc_conn *c, const char *method, json_object *params,
		  double timeout_s, rpc_reply_fn cb, void *cb_data);

/* Reads and dispatches everything the peer already sent, up to EOF or
 * EAGAIN, right now: for a peer known to be gone (a worker that exited),
 * so its last messages are handled before its exit is. */
void rpc_conn_drain(struct rpc_conn *c);

/* Stops reading; closes once queued output is written (or fails). */
void rpc_conn_close_after_flush(struct rpc_conn *c);

/* Forgets the callbacks of calls whose cb_data is `data` (their owner is going away). */
void rpc_conn_cancel_calls(struct rpc_conn *c, void *data);

bool rpc_conn_is_open(const struct rpc_conn *c);
/* ev_now() of the last bytes received (or of creation). */
double rpc_conn_last_input(const struct rpc_conn *c);
/* True while part of a message has arrived without its end. */
bool rpc_conn_has_partial_input(const struct rpc_conn *c);
/* True while the input ends inside a message, with ev_now() of that
 * message's first byte in *ret_since. */
bool rpc_conn_partial_since(const struct rpc_conn *c, double *ret_since);
int rpc_conn_fd(const struct rpc_conn *c);
size_t rpc_conn_output_pending(const struct rpc_conn *c);
unsigned int rpc_conn_calls_pending(const struct rpc_conn *c);
void *rpc_conn_userdata(const struct rpc_conn *c);

#endif
