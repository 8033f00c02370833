/* SPDX-License-Identifier: MIT */
#include "api/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/frame.h"
#include "api/jsonrpc.h"
#include "util/macro.h"

#define READ_CHUNK 65536

struct pending_call {
	struct pending_call *next;
	struct rpc_conn *conn;
	int64_t id;
	rpc_reply_fn cb;
	void *cb_data;
	ev_timer timer;
	bool timed;
};

struct rpc_conn {
	struct ev_loop *loop;
	int fd;
	ev_io rio;
	ev_io wio;
	struct rpc_reader reader;
	struct rpc_writer writer;
	struct json_tokener *tok;
	struct rpc_conn_limits limits;
	const struct rpc_conn_ops *ops;
	void *userdata;
	struct pending_call *calls;
	unsigned int nr_calls;
	int64_t next_id;
	unsigned int busy;  /* nesting depth of callbacks in progress */
	bool open;
	bool closing;       /* close once output is flushed */
	bool free_requested;
	bool reading_paused;
	double last_input;
	bool message_open;     /* the input so far ends inside a message */
	double message_start;  /* when that message's first byte arrived */
};

static const struct rpc_conn_ops no_ops;

static void conn_fail(struct rpc_conn *c, const char *reason);

static void set_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void conn_enter(struct rpc_conn *c)
{
	c->busy++;
}

/* Returns false when the connection was freed and must not be touched. */
static bool conn_leave(struct rpc_conn *c)
{
	if (--c->busy == 0 && c->free_requested) {
		c->free_requested = false;
		rpc_conn_free(c);
		return false;
	}
	return true;
}

static void update_watchers(struct rpc_conn *c)
{
	size_t pending = rpc_writer_pending(&c->writer);
	bool want_read = c->open && !c->closing && pending <= c->limits.out_high;

	if (!c->open)
		return;
	if (pending > 0)
		ev_io_start(c->loop, &c->wio);
	else
		ev_io_stop(c->loop, &c->wio);
	if (want_read)
		ev_io_start(c->loop, &c->rio);
	else
		ev_io_stop(c->loop, &c->rio);
	c->reading_paused = !want_read;
}

static void finish_call(struct pending_call *pc, json_object *result, const struct api_error *err)
{
	if (pc->timed)
		ev_timer_stop(pc->conn->loop, &pc->timer);
	if (pc->cb)
		pc->cb(pc->cb_data, result, err);
	free(pc);
}

static struct pending_call *take_call(struct rpc_conn *c, int64_t id)
{
	for (struct pending_call **pp = &c->calls; *pp; pp = &(*pp)->next) {
		struct pending_call *pc = *pp;
		if (pc->id == id) {
			*pp = pc->next;
			c->nr_calls--;
			return pc;
		}
	}
	return NULL;
}

static void fail_all_calls(struct rpc_conn *c, const char *reason)
{
	struct api_error err;

	api_error_set(&err, API_ERR_WORKER, "connection closed: %s", reason);
	while (c->calls) {
		struct pending_call *pc = c->calls;
		c->calls = pc->next;
		c->nr_calls--;
		finish_call(pc, NULL, &err);
	}
}

/* Routes a reply to its pending call; false if msg is not one of our replies. */
static bool route_reply(struct rpc_conn *c, json_object *msg)
{
	struct jsonrpc_msg m;
	json_object *id;
	struct api_error err;
	struct pending_call *pc;

	if (jsonrpc_classify(msg, &m, &id, &err) < 0)
		return false;
	if (m.kind != JSONRPC_RESULT && m.kind != JSONRPC_ERROR)
		return false;
	if (!json_object_is_type(m.id, json_type_int))
		return false;
	pc = take_call(c, json_object_get_int64(m.id));
	if (!pc)
		return false;
	if (m.kind == JSONRPC_RESULT) {
		finish_call(pc, m.result, NULL);
	} else {
		api_error_set(&err, m.error_code, "%s", m.error_message);
		finish_call(pc, NULL, &err);
	}
	return true;
}

static void handle_line(struct rpc_conn *c, const char *line, size_t len)
{
	json_object *msg = NULL;
	struct api_error err;

	if (jsonrpc_parse_with(c->tok, line, len, &msg, &err) < 0) {
		if (c->ops->bad_message)
			c->ops->bad_message(c, &err, c->userdata);
		return;
	}
	if (!route_reply(c, msg) && c->ops->message)
		c->ops->message(c, msg, c->userdata);
	json_object_put(msg);
}

static void drain_lines(struct rpc_conn *c)
{
	char *line;
	size_t len;
	enum rpc_read_result r;
	struct api_error err;

	while (c->open && !c->closing && !c->free_requested &&
	       (r = rpc_reader_next(&c->reader, &line, &len)) != RPC_READ_NONE) {
		if (r == RPC_READ_OVERSIZED) {
			api_error_set(&err, API_ERR_INVALID_REQUEST,
				      "message exceeds the limit of %zu bytes", c->limits.max_message);
			if (c->ops->bad_message)
				c->ops->bad_message(c, &err, c->userdata);
			continue;
		}
		handle_line(c, line, len);
		/* Replies may have filled the output queue: stop and let the peer read. */
		if (rpc_writer_pending(&c->writer) > c->limits.out_high)
			break;
	}
}

/*
 * Input arrived: notes when the message still open at its end began, so a
 * half-sent message is timed from its first byte, however slowly the rest
 * trickles in. A newline in buf ends a message, so whatever follows it
 * started now.
 */
static void note_input(struct rpc_conn *c, const char *buf, size_t n)
{
	double now = ev_now(c->loop);

	c->last_input = now;
	if (!c->message_open || memchr(buf, '\n', n))
		c->message_start = now;
	c->message_open = buf[n - 1] != '\n';
}

/* One read and the messages it completes; false when nothing more comes now. */
static bool read_once(struct rpc_conn *c)
{
	char buf[READ_CHUNK];
	ssize_t n = read(c->fd, buf, sizeof(buf));

	if (n == 0) {
		conn_fail(c, "peer closed the connection");
		return false;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_fail(c, strerror(errno));
		return errno == EINTR;
	}
	note_input(c, buf, (size_t)n);
	if (rpc_reader_feed(&c->reader, buf, (size_t)n) < 0) {
		conn_fail(c, "out of memory");
		return false;
	}
	drain_lines(c);
	return true;
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rpc_conn *c = w->data;

	conn_enter(c);
	read_once(c);
	if (conn_leave(c))
		update_watchers(c);
}

void rpc_conn_drain(struct rpc_conn *c)
{
	conn_enter(c);
	while (c->open && !c->free_requested && read_once(c))
		;
	if (conn_leave(c))
		update_watchers(c);
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rpc_conn *c = w->data;
	int rc;

	conn_enter(c);
	rc = rpc_writer_flush(&c->writer, c->fd);
	if (rc < 0 && rc != -EAGAIN)
		conn_fail(c, strerror(-rc));
	else if (rc == 0 && c->closing)
		conn_fail(c, "closed after flush");
	else if (rc == 0 && c->reading_paused)
		/* Output drained: read what arrived meanwhile before sleeping again. */
		drain_lines(c);
	if (conn_leave(c))
		update_watchers(c);
}

static void conn_fail(struct rpc_conn *c, const char *reason)
{
	if (!c->open)
		return;
	c->open = false;
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	fail_all_calls(c, reason);
	if (c->ops->closed)
		c->ops->closed(c, reason, c->userdata);
}

struct rpc_conn *rpc_conn_new(struct ev_loop *loop, int fd, const struct rpc_conn_limits *limits,
			      const struct rpc_conn_ops *ops, void *userdata)
{
	struct rpc_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->loop = loop;
	c->fd = fd;
	c->ops = ops;
	c->userdata = userdata;
	c->limits = (struct rpc_conn_limits){
		.max_message = RPC_MESSAGE_MAX,
		.out_max = 16 * RPC_MESSAGE_MAX,
		.out_high = 2 * RPC_MESSAGE_MAX,
	};
	if (limits) {
		if (limits->max_message)
			c->limits.max_message = limits->max_message;
		if (limits->out_max)
			c->limits.out_max = limits->out_max;
		if (limits->out_high)
			c->limits.out_high = limits->out_high;
	}
	c->tok = jsonrpc_tokener_new();
	if (!c->tok) {
		free(c);
		return NULL;
	}
	c->next_id = 1;
	c->open = true;
	c->last_input = ev_now(loop);
	set_nonblock_cloexec(fd);
	rpc_reader_init(&c->reader, c->limits.max_message);
	rpc_writer_init(&c->writer, c->limits.out_max);
	ev_io_init(&c->rio, on_readable, fd, EV_READ);
	ev_io_init(&c->wio, on_writable, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	ev_io_start(loop, &c->rio);
	return c;
}

void rpc_conn_free(struct rpc_conn *c)
{
	if (!c)
		return;
	c->ops = &no_ops;
	if (c->busy) {
		c->free_requested = true;
		return;
	}
	if (c->open) {
		c->open = false;
		ev_io_stop(c->loop, &c->rio);
		ev_io_stop(c->loop, &c->wio);
	}
	/* Reply callbacks may try to free us again: keep that deferred. */
	c->busy++;
	fail_all_calls(c, "connection freed");
	rpc_reader_free(&c->reader);
	rpc_writer_free(&c->writer);
	json_tokener_free(c->tok);
	closep(&c->fd);
	free(c);
}

int rpc_conn_send(struct rpc_conn *c, json_object *msg)
{
	size_t len;
	const char *text = jsonrpc_to_text(msg, &len);

	return rpc_conn_send_text(c, text, len);
}

int rpc_conn_send_text(struct rpc_conn *c, const char *text, size_t len)
{
	int rc;

	if (!c->open || c->closing)
		return -EPIPE;
	rc = rpc_writer_append_line(&c->writer, text, len);
	if (rc < 0)
		return rc;
	/* Try to write right away; the watcher finishes the rest. */
	rc = rpc_writer_flush(&c->writer, c->fd);
	if (rc < 0 && rc != -EAGAIN) {
		conn_enter(c);
		conn_fail(c, strerror(-rc));
		conn_leave(c);
		return -EPIPE;
	}
	if (c->busy == 0)
		update_watchers(c);
	else if (rpc_writer_pending(&c->writer) > 0)
		ev_io_start(c->loop, &c->wio);
	return 0;
}

static void on_call_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct pending_call *pc = t->data;
	struct rpc_conn *c = pc->conn;
	struct api_error err;

	pc = take_call(c, pc->id);
	if (!pc)
		return;
	api_error_set(&err, API_ERR_WORKER, "no reply within %g s", pc->timer.repeat);
	/* The timer repeats: finish_call() must stop it before pc is freed. */
	conn_enter(c);
	finish_call(pc, NULL, &err);
	conn_leave(c);
}

int rpc_conn_call(struct rpc_conn *c, const char *method, json_object *params,
		  double timeout_s, rpc_reply_fn cb, void *cb_data)
{
	struct pending_call *pc;
	json_object *req;
	int rc;

	pc = calloc(1, sizeof(*pc));
	if (!pc) {
		json_object_put(params);
		return -ENOMEM;
	}
	pc->conn = c;
	pc->id = c->next_id++;
	pc->cb = cb;
	pc->cb_data = cb_data;
	req = jsonrpc_request_new(method, params, pc->id);
	rc = rpc_conn_send(c, req);
	json_object_put(req);
	if (rc < 0) {
		free(pc);
		return rc;
	}
	if (timeout_s > 0) {
		ev_timer_init(&pc->timer, on_call_timeout, timeout_s, timeout_s);
		pc->timer.data = pc;
		pc->timed = true;
		ev_timer_start(c->loop, &pc->timer);
	}
	pc->next = c->calls;
	c->calls = pc;
	c->nr_calls++;
	return 0;
}

void rpc_conn_close_after_flush(struct rpc_conn *c)
{
	if (!c->open)
		return;
	c->closing = true;
	if (rpc_writer_pending(&c->writer) == 0) {
		conn_enter(c);
		conn_fail(c, "closed");
		conn_leave(c);
		return;
	}
	update_watchers(c);
}

void rpc_conn_cancel_calls(struct rpc_conn *c, void *data)
{
	for (struct pending_call *pc = c->calls; pc; pc = pc->next)
		if (pc->cb_data == data)
			pc->cb = NULL;
}

bool rpc_conn_is_open(const struct rpc_conn *c)
{
	return c->open && !c->closing;
}

double rpc_conn_last_input(const struct rpc_conn *c)
{
	return c->last_input;
}

bool rpc_conn_has_partial_input(const struct rpc_conn *c)
{
	return rpc_reader_has_partial(&c->reader);
}

bool rpc_conn_partial_since(const struct rpc_conn *c, double *ret_since)
{
	if (!c->message_open)
		return false;
	*ret_since = c->message_start;
	return true;
}

int rpc_conn_fd(const struct rpc_conn *c)
{
	return c->fd;
}

size_t rpc_conn_output_pending(const struct rpc_conn *c)
{
	return rpc_writer_pending(&c->writer);
}

unsigned int rpc_conn_calls_pending(const struct rpc_conn *c)
{
	return c->nr_calls;
}

void *rpc_conn_userdata(const struct rpc_conn *c)
{
	return c->userdata;
}
