/* SPDX-License-Identifier: MIT */
#include "api/client.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/frame.h"
#include "api/jsonrpc.h"
#include "util/macro.h"
#include "util/path.h"

#define CLIENT_QUEUE_MAX 4096

struct api_client {
	int fd;
	int64_t next_id;
	struct rpc_reader reader;
	json_object *queue[CLIENT_QUEUE_MAX];
	unsigned int q_head, q_len;
};

/* Fills err as a transport failure (code 0) and returns rc. */
static int _printf_(3, 4) client_error(struct api_error *err, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->code = 0;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int transport_error(struct api_error *err, int code, const char *what)
{
	return client_error(err, code, "%s: %s", what, strerror(-code));
}

int api_default_socket_path(char *buf, size_t size)
{
	struct path_env env;

	path_env_get(&env);
	return path_default_socket(&env, buf, size);
}

int api_client_connect(const char *path, struct api_client **ret, struct api_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	struct api_client *c;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		return client_error(err, -ENAMETOOLONG,
				    "socket path '%s' is too long (limit %zu bytes)", path,
				    sizeof(sa.sun_path) - 1);
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return transport_error(err, negative_errno(), "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int code = negative_errno();
		return client_error(err, code, "cannot connect to vmmd at %s: %s", path,
				    strerror(-code));
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return transport_error(err, -ENOMEM, "connect");
	c->fd = TAKE_FD(fd);
	c->next_id = 1;
	rpc_reader_init(&c->reader, RPC_MESSAGE_MAX);
	*ret = c;
	return 0;
}

void api_client_free(struct api_client *c)
{
	if (!c)
		return;
	while (c->q_len) {
		json_object_put(c->queue[c->q_head]);
		c->q_head = (c->q_head + 1) % CLIENT_QUEUE_MAX;
		c->q_len--;
	}
	rpc_reader_free(&c->reader);
	closep(&c->fd);
	free(c);
}

int api_client_fd(const struct api_client *c)
{
	return c->fd;
}


int api_client_send_raw(struct api_client *c, const void *data, size_t len, struct api_error *err)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return transport_error(err, negative_errno(), "send to vmmd");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int api_client_send(struct api_client *c, const char *method, json_object *params,
		    int64_t *ret_id, struct api_error *err)
{
	int64_t id = c->next_id++;
	json_object *req = jsonrpc_request_new(method, params, id);
	size_t len;
	const char *text = jsonrpc_to_text(req, &len);
	_cleanup_free_ char *line = malloc(len + 1);
	int rc;

	if (!line) {
		json_object_put(req);
		return transport_error(err, -ENOMEM, "send");
	}
	memcpy(line, text, len);
	line[len] = '\n';
	rc = api_client_send_raw(c, line, len + 1, err);
	json_object_put(req);
	if (rc == 0 && ret_id)
		*ret_id = id;
	return rc;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads one message from the socket (not the queue). */
static int read_message(struct api_client *c, int timeout_ms, json_object **ret,
			struct api_error *err)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

	for (;;) {
		char *line;
		size_t len;
		enum rpc_read_result r = rpc_reader_next(&c->reader, &line, &len);

		if (r == RPC_READ_LINE) {
			struct api_error perr;
			if (jsonrpc_parse(line, len, ret, &perr) < 0)
				return client_error(err, -EBADMSG, "malformed message from vmmd: %s",
						    perr.message);
			return 0;
		}
		if (r == RPC_READ_OVERSIZED)
			return transport_error(err, -EMSGSIZE, "message from vmmd");

		int wait = deadline < 0 ? -1 : (int)MAX(deadline - now_ms(), (int64_t)0);
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int pr = poll(&pfd, 1, wait);
		if (pr < 0 && errno == EINTR)
			return transport_error(err, -EINTR, "waiting for vmmd");
		if (pr < 0)
			return transport_error(err, negative_errno(), "poll");
		if (pr == 0)
			return transport_error(err, -ETIMEDOUT, "waiting for vmmd");

		char buf[65536];
		ssize_t n = read(c->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return transport_error(err, negative_errno(), "read from vmmd");
		if (n == 0)
			return client_error(err, -ECONNRESET, "vmmd closed the connection");
		if (rpc_reader_feed(&c->reader, buf, (size_t)n) < 0)
			return transport_error(err, -ENOMEM, "read from vmmd");
	}
}

static int queue_push(struct api_client *c, json_object *msg)
{
	if (c->q_len == CLIENT_QUEUE_MAX) {
		json_object_put(msg);
		return -ENOBUFS;
	}
	c->queue[(c->q_head + c->q_len) % CLIENT_QUEUE_MAX] = msg;
	c->q_len++;
	return 0;
}

/*
 * Moves messages that already sit complete in the read buffer into the
 * queue, so callers that poll() the socket next never wait for bytes that
 * have in fact arrived.
 */
static void queue_buffered(struct api_client *c)
{
	char *line;
	size_t len;
	json_object *msg;

	while (c->q_len < CLIENT_QUEUE_MAX &&
	       rpc_reader_next(&c->reader, &line, &len) == RPC_READ_LINE) {
		if (jsonrpc_parse(line, len, &msg, NULL) == 0)
			queue_push(c, msg);
	}
}

int api_client_has_queued(struct api_client *c)
{
	queue_buffered(c);
	return c->q_len > 0;
}

int api_client_next(struct api_client *c, int timeout_ms, json_object **ret, struct api_error *err)
{
	if (c->q_len) {
		*ret = c->queue[c->q_head];
		c->q_head = (c->q_head + 1) % CLIENT_QUEUE_MAX;
		c->q_len--;
		return 0;
	}
	return read_message(c, timeout_ms, ret, err);
}

/* Returns 1 if msg is the reply to id (result or error filled), 0 if not. */
static int match_reply(json_object *msg, int64_t id, json_object **ret_result,
		       struct api_error *err, int *ret_rc)
{
	struct jsonrpc_msg m;
	json_object *mid;
	struct api_error cerr;

	if (jsonrpc_classify(msg, &m, &mid, &cerr) < 0)
		return 0;
	if (m.kind != JSONRPC_RESULT && m.kind != JSONRPC_ERROR)
		return 0;
	if (!json_object_is_type(m.id, json_type_int) || json_object_get_int64(m.id) != id)
		return 0;
	if (m.kind == JSONRPC_RESULT) {
		if (ret_result)
			*ret_result = json_object_get(m.result);
		*ret_rc = 0;
	} else {
		api_error_set(err, m.error_code, "%s", m.error_message);
		*ret_rc = -EREMOTEIO;
	}
	return 1;
}

int api_client_call(struct api_client *c, const char *method, json_object *params,
		    json_object **ret_result, struct api_error *err)
{
	int64_t id;
	int rc = api_client_send(c, method, params, &id, err);

	if (rc < 0)
		return rc;
	for (;;) {
		json_object *msg;
		int call_rc;

		rc = read_message(c, -1, &msg, err);
		if (rc < 0)
			return rc;
		if (match_reply(msg, id, ret_result, err, &call_rc)) {
			json_object_put(msg);
			queue_buffered(c);
			return call_rc;
		}
		queue_push(c, msg);
	}
}
