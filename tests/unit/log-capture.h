/* SPDX-License-Identifier: MIT */
/*
 * An iobus log sink for tests: keeps every emitted line and runs a fake
 * clock that the test advances by hand (or that steps on every reading).
 */
#ifndef VMMD_TESTS_LOG_CAPTURE_H
#define VMMD_TESTS_LOG_CAPTURE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmmd/devices/iobus.h"

#define LOG_CAPTURE_MAX_LINES 4096
#define LOG_CAPTURE_LINE 256

struct log_capture {
	char lines[LOG_CAPTURE_MAX_LINES][LOG_CAPTURE_LINE];
	unsigned int nr_lines;
	uint64_t now_ns;
	uint64_t step_ns; /* added after every clock reading */
};

static inline void log_capture_emit(void *ctx, const char *line)
{
	struct log_capture *c = ctx;

	if (c->nr_lines < LOG_CAPTURE_MAX_LINES)
		snprintf(c->lines[c->nr_lines], LOG_CAPTURE_LINE, "%s", line);
	c->nr_lines++;
}

static inline uint64_t log_capture_now(void *ctx)
{
	struct log_capture *c = ctx;
	uint64_t now = c->now_ns;

	c->now_ns += c->step_ns;
	return now;
}

static inline struct iobus_log_sink log_capture_sink(struct log_capture *c)
{
	return (struct iobus_log_sink){
		.emit = log_capture_emit,
		.now_ns = log_capture_now,
		.ctx = c,
	};
}

/* Lines that contain `needle`. */
static inline unsigned int log_capture_count(const struct log_capture *c, const char *needle)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < c->nr_lines && i < LOG_CAPTURE_MAX_LINES; i++)
		if (strstr(c->lines[i], needle))
			n++;
	return n;
}

/* A bus whose notices go to a fresh capture; both freed by the caller. */
static inline struct iobus *log_capture_bus(struct log_capture **ret_capture)
{
	struct log_capture *c = calloc(1, sizeof(*c));
	struct iobus_log_sink sink;
	struct iobus *bus = NULL;

	if (!c)
		return NULL;
	c->now_ns = 1000000000ull;
	sink = log_capture_sink(c);
	if (iobus_new(&sink, &bus, NULL) < 0) {
		free(c);
		return NULL;
	}
	*ret_capture = c;
	return bus;
}

#endif
