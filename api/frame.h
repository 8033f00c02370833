/* SPDX-License-Identifier: MIT */
/*
 * Newline-delimited framing: one JSON text per line, at most `max` bytes
 * (the newline not counted). The reader accumulates bytes and hands out
 * complete lines; a message that grows past the limit without a newline is
 * reported once as oversized and then dropped up to its newline, so the
 * connection can carry on with the next message. The writer is a bounded
 * output queue for a non-blocking fd.
 */
#ifndef VMMD_API_FRAME_H
#define VMMD_API_FRAME_H

#include <stdbool.h>
#include <stddef.h>

/* DESIGN.md: 1 MiB per message. */
#define RPC_MESSAGE_MAX (1024 * 1024)

struct rpc_reader {
	char *buf;
	size_t start; /* first unconsumed byte */
	size_t len;   /* end of data */
	size_t cap;
	size_t scanned; /* bytes after start already searched for '\n' */
	size_t max;
	bool discarding;
};

enum rpc_read_result {
	RPC_READ_NONE = 0,	/* no complete line yet */
	RPC_READ_LINE = 1,	/* *ret_line holds one message */
	RPC_READ_OVERSIZED = 2, /* a message exceeded the limit and is dropped */
};

void rpc_reader_init(struct rpc_reader *r, size_t max);
void rpc_reader_free(struct rpc_reader *r);

/* Appends bytes; returns 0 or -ENOMEM. Never holds more than max + one read. */
int rpc_reader_feed(struct rpc_reader *r, const char *data, size_t len);

/*
 * Returns the next line (NUL-terminated, without "\n" or "\r\n") through
 * ret_line/ret_len; blank lines are skipped. The pointer stays valid until
 * the next call to rpc_reader_feed() or rpc_reader_next().
 */
enum rpc_read_result rpc_reader_next(struct rpc_reader *r, char **ret_line, size_t *ret_len);

/* True while some bytes of a partial message are buffered. */
bool rpc_reader_has_partial(const struct rpc_reader *r);

struct rpc_writer {
	char *buf;
	size_t start;
	size_t len;
	size_t cap;
	size_t max; /* bound on queued bytes */
};

void rpc_writer_init(struct rpc_writer *w, size_t max);
void rpc_writer_free(struct rpc_writer *w);

/* Queues data; -ENOBUFS if that would exceed max (nothing queued). */
int rpc_writer_append(struct rpc_writer *w, const char *data, size_t len);

/* Queues data plus "\n" as one unit; -ENOBUFS as above. */
int rpc_writer_append_line(struct rpc_writer *w, const char *data, size_t len);

/* Writes what it can: 0 when empty, -EAGAIN if bytes remain, or -errno. */
int rpc_writer_flush(struct rpc_writer *w, int fd);

size_t rpc_writer_pending(const struct rpc_writer *w);

#endif
