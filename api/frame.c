/* SPDX-License-Identifier: MIT */
#include "api/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/macro.h"

void rpc_reader_init(struct rpc_reader *r, size_t max)
{
	*r = (struct rpc_reader){ .max = max };
}

void rpc_reader_free(struct rpc_reader *r)
{
	free(r->buf);
	*r = (struct rpc_reader){ .max = r->max };
}

static void reader_compact(struct rpc_reader *r)
{
	if (r->start == 0)
		return;
	memmove(r->buf, r->buf + r->start, r->len - r->start);
	r->len -= r->start;
	r->start = 0;
}

/* Grows *buf (capacity *cap) to hold at least need bytes, doubling. */
static int grow(char **buf, size_t *cap, size_t need)
{
	size_t n = MAX(*cap * 2, (size_t)4096);
	char *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static int reader_reserve(struct rpc_reader *r, size_t extra)
{
	reader_compact(r);
	/* +1 for the NUL put after a line. */
	return grow(&r->buf, &r->cap, r->len + extra + 1);
}

int rpc_reader_feed(struct rpc_reader *r, const char *data, size_t len)
{
	int rc = reader_reserve(r, len);

	if (rc < 0)
		return rc;
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	return 0;
}

/* Drops bytes up to and including the next newline; true if one was found. */
static bool reader_skip_to_newline(struct rpc_reader *r)
{
	char *nl = memchr(r->buf + r->start, '\n', r->len - r->start);

	if (!nl) {
		r->start = r->len = r->scanned = 0;
		return false;
	}
	r->start = (size_t)(nl - r->buf) + 1;
	r->scanned = 0;
	r->discarding = false;
	return true;
}

static bool line_is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

enum rpc_read_result rpc_reader_next(struct rpc_reader *r, char **ret_line, size_t *ret_len)
{
	for (;;) {
		if (r->discarding && !reader_skip_to_newline(r))
			return RPC_READ_NONE;

		char *begin = r->buf + r->start;
		size_t avail = r->len - r->start;
		char *nl = avail > r->scanned ? memchr(begin + r->scanned, '\n', avail - r->scanned)
					      : NULL;
		if (!nl) {
			r->scanned = avail;
			if (avail > r->max) {
				/* Oversized and still open: drop it up to its newline. */
				r->discarding = true;
				r->start = r->len = r->scanned = 0;
				return RPC_READ_OVERSIZED;
			}
			return RPC_READ_NONE;
		}

		size_t n = (size_t)(nl - begin);
		r->start += n + 1;
		r->scanned = 0;
		if (n > 0 && begin[n - 1] == '\r')
			n--;
		if (n > r->max)
			return RPC_READ_OVERSIZED;
		if (line_is_blank(begin, n))
			continue;
		begin[n] = '\0';
		*ret_line = begin;
		*ret_len = n;
		return RPC_READ_LINE;
	}
}

bool rpc_reader_has_partial(const struct rpc_reader *r)
{
	return r->len > r->start || r->discarding;
}

void rpc_writer_init(struct rpc_writer *w, size_t max)
{
	*w = (struct rpc_writer){ .max = max };
}

void rpc_writer_free(struct rpc_writer *w)
{
	free(w->buf);
	*w = (struct rpc_writer){ .max = w->max };
}

static int writer_reserve(struct rpc_writer *w, size_t extra)
{
	size_t pending = w->len - w->start;

	if (pending + extra > w->max)
		return -ENOBUFS;
	if (w->start > 0 && w->len + extra > w->cap) {
		memmove(w->buf, w->buf + w->start, pending);
		w->len = pending;
		w->start = 0;
	}
	return grow(&w->buf, &w->cap, w->len + extra);
}

int rpc_writer_append(struct rpc_writer *w, const char *data, size_t len)
{
	int rc = writer_reserve(w, len);

	if (rc < 0)
		return rc;
	memcpy(w->buf + w->len, data, len);
	w->len += len;
	return 0;
}

int rpc_writer_append_line(struct rpc_writer *w, const char *data, size_t len)
{
	int rc = writer_reserve(w, len + 1);

	if (rc < 0)
		return rc;
	memcpy(w->buf + w->len, data, len);
	w->buf[w->len + len] = '\n';
	w->len += len + 1;
	return 0;
}

int rpc_writer_flush(struct rpc_writer *w, int fd)
{
	while (w->start < w->len) {
		/* MSG_NOSIGNAL: a peer that went away must not kill the daemon. */
		ssize_t n = send(fd, w->buf + w->start, w->len - w->start, MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, w->buf + w->start, w->len - w->start);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -EAGAIN;
			return negative_errno();
		}
		w->start += (size_t)n;
	}
	w->start = w->len = 0;
	return 0;
}

size_t rpc_writer_pending(const struct rpc_writer *w)
{
	return w->len - w->start;
}
