/* SPDX-License-Identifier: MIT */
/*
 * Helpers for tests of the I/O bus and the devices on it: guest-style IN
 * and OUT that assert success, and a log sink that keeps every emitted line
 * with a fake clock the test advances by hand (or that steps on every
 * reading). Include after <cmocka.h>.
 */
#ifndef VMMD_TESTS_IOBUS_TEST_H
#define VMMD_TESTS_IOBUS_TEST_H

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

/* A guest IN of `size` bytes at `port`, as a little-endian value. */
static inline uint32_t bus_in(struct iobus *bus, uint16_t port, unsigned int size)
{
	uint8_t b[4] = { 0 };

	assert_int_equal(iobus_read(bus, port, b, size), 0);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* A guest OUT of the low `size` bytes of `value` at `port`. */
static inline void bus_out(struct iobus *bus, uint16_t port, uint32_t value, unsigned int size)
{
	uint8_t b[4] = { (uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16),
			 (uint8_t)(value >> 24) };

	assert_int_equal(iobus_write(bus, port, b, size), 0);
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

/* Frees what log_capture_bus() made; the capture outlives the bus's last line. */
static inline void log_capture_bus_free(struct iobus *bus, struct log_capture *c)
{
	iobus_free(bus);
	free(c);
}

/*
 * The first member of a device test's fixture: a bus logging to a capture.
 * bus_fixture_new() allocates the whole zeroed fixture and its bus;
 * bus_fixture_teardown() is the matching cmocka teardown.
 */
struct bus_fixture {
	struct iobus *bus;
	struct log_capture *log;
};

static inline void *bus_fixture_new(size_t size)
{
	struct bus_fixture *f = calloc(1, size);

	if (!f)
		return NULL;
	f->bus = log_capture_bus(&f->log);
	if (!f->bus) {
		free(f);
		return NULL;
	}
	return f;
}

static inline int bus_fixture_teardown(void **state)
{
	struct bus_fixture *f = *state;

	log_capture_bus_free(f->bus, f->log);
	free(f);
	return 0;
}

#endif
