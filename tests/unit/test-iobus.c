/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the port-I/O bus: registration rules, dispatch and access
 * splitting, unhandled ports (all-ones, logged once, rate limited), string
 * I/O, ownership, and concurrent dispatch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <fcntl.h>
#include <unistd.h>

#include "iobus-test.h"
#include "util/log.h"
#include "vmmd/devices/iobus.h"

/* A device that records every access; byte k of a read at offset o is 0xA0 + o + k. */
struct probe_access {
	bool write;
	uint16_t offset;
	unsigned int size;
	uint32_t value;
};

struct probe {
	struct probe_access log[64];
	unsigned int nr;
	unsigned int resets;
	unsigned int *destroyed; /* counter owned by the test, or NULL */
	bool count_only;         /* concurrency test: count writes, record nothing */
	unsigned long writes;    /* atomic */
};

static void probe_record(struct probe *p, bool write, uint16_t offset, unsigned int size,
			 uint32_t value)
{
	if (p->nr < ARRAY_SIZE(p->log))
		p->log[p->nr] = (struct probe_access){ write, offset, size, value };
	p->nr++;
}

static uint32_t probe_read(void *dev, uint16_t offset, unsigned int size)
{
	uint32_t v = 0;

	for (unsigned int k = 0; k < size; k++)
		v |= (uint32_t)(0xA0 + offset + k) << (8 * k);
	probe_record(dev, false, offset, size, v);
	/* Garbage above `size` bytes must not reach the guest. */
	return size < 4 ? v | (0xEEEEEEEEu << (8 * size)) : v;
}

static void probe_write(void *dev, uint16_t offset, uint32_t value, unsigned int size)
{
	struct probe *p = dev;

	__atomic_fetch_add(&p->writes, 1, __ATOMIC_RELAXED);
	if (p->count_only)
		return;
	probe_record(p, true, offset, size, value);
}

static void probe_reset(void *dev)
{
	((struct probe *)dev)->resets++;
}

static void probe_destroy(void *dev)
{
	struct probe *p = dev;

	if (p->destroyed)
		(*p->destroyed)++;
}

#define PROBE_OPS(var, width)                 \
	static const struct iobus_device_ops var = { \
		.name = "probe" #width,              \
		.max_access_size = width,            \
		.read = probe_read,                  \
		.write = probe_write,                \
		.reset = probe_reset,                \
		.destroy = probe_destroy,            \
	}

PROBE_OPS(probe1_ops, 1);
PROBE_OPS(probe2_ops, 2);
PROBE_OPS(probe4_ops, 4);

struct fixture {
	struct bus_fixture io;
	unsigned int destroyed;
	struct probe probes[4];
};

static int setup(void **state)
{
	struct fixture *f = bus_fixture_new(sizeof(*f));

	if (!f)
		return -1;
	for (unsigned int i = 0; i < ARRAY_SIZE(f->probes); i++)
		f->probes[i].destroyed = &f->destroyed;
	*state = f;
	return 0;
}

static void reg(struct fixture *f, uint16_t base, uint32_t n, const struct iobus_device_ops *ops,
		struct probe *p)
{
	struct error err = { 0 };

	assert_int_equal(iobus_register(f->io.bus, base, n, ops, p, &err), 0);
}

static void assert_access(const struct probe *p, unsigned int i, bool write, uint16_t offset,
			  unsigned int size, uint32_t value)
{
	assert_true(i < p->nr);
	assert_int_equal(p->log[i].write, write);
	assert_int_equal(p->log[i].offset, offset);
	assert_int_equal(p->log[i].size, size);
	assert_int_equal(p->log[i].value, value);
}

/* ------------------------------------------------------------ dispatch */

static void test_whole_access_reaches_wide_device(void **state)
{
	struct fixture *f = *state;
	struct probe *p = &f->probes[0];

	reg(f, 0x500, 8, &probe4_ops, p);
	assert_int_equal(bus_in(f->io.bus, 0x500, 1), 0xA0);
	assert_int_equal(bus_in(f->io.bus, 0x502, 2), 0xA3A2);
	assert_int_equal(bus_in(f->io.bus, 0x504, 4), 0xA7A6A5A4);
	bus_out(f->io.bus, 0x501, 0x12, 1);
	bus_out(f->io.bus, 0x502, 0x3456, 2);
	bus_out(f->io.bus, 0x504, 0x789abcde, 4);
	assert_int_equal(p->nr, 6);
	assert_access(p, 0, false, 0, 1, 0xA0);
	assert_access(p, 1, false, 2, 2, 0xA3A2);
	assert_access(p, 2, false, 4, 4, 0xA7A6A5A4);
	assert_access(p, 3, true, 1, 1, 0x12);
	assert_access(p, 4, true, 2, 2, 0x3456);
	assert_access(p, 5, true, 4, 4, 0x789abcde);
	assert_int_equal(f->io.log->nr_lines, 0);
}

static void test_wide_access_split_into_bytes_in_port_order(void **state)
{
	struct fixture *f = *state;
	struct probe *p = &f->probes[0];

	reg(f, 0x3f8, 8, &probe1_ops, p);
	assert_int_equal(bus_in(f->io.bus, 0x3f8, 4), 0xA3A2A1A0);
	assert_int_equal(p->nr, 4);
	for (unsigned int i = 0; i < 4; i++)
		assert_access(p, i, false, (uint16_t)i, 1, 0xA0 + i);
	bus_out(f->io.bus, 0x3fa, 0xbbaa, 2);
	assert_access(p, 4, true, 2, 1, 0xaa);
	assert_access(p, 5, true, 3, 1, 0xbb);
	assert_int_equal(p->nr, 6);
}

static void test_wide_access_split_into_device_width(void **state)
{
	struct fixture *f = *state;
	struct probe *p = &f->probes[0];

	reg(f, 0x600, 4, &probe2_ops, p);
	assert_int_equal(bus_in(f->io.bus, 0x600, 4), 0xA3A2A1A0);
	bus_out(f->io.bus, 0x600, 0x44332211, 4);
	assert_int_equal(p->nr, 4);
	assert_access(p, 0, false, 0, 2, 0xA1A0);
	assert_access(p, 1, false, 2, 2, 0xA3A2);
	assert_access(p, 2, true, 0, 2, 0x2211);
	assert_access(p, 3, true, 2, 2, 0x4433);
}

static void test_access_straddling_device_and_gap(void **state)
{
	struct fixture *f = *state;
	struct probe *p = &f->probes[0];

	reg(f, 0x3f8, 8, &probe4_ops, p);
	/* 0x3fe, 0x3ff belong to the device; 0x400, 0x401 to nobody. */
	assert_int_equal(bus_in(f->io.bus, 0x3fe, 4), 0xffffA7A6);
	assert_int_equal(p->nr, 2);
	assert_access(p, 0, false, 6, 1, 0xA6);
	assert_access(p, 1, false, 7, 1, 0xA7);
	assert_int_equal(log_capture_count(f->io.log, "port 0x0400"), 1);
	assert_int_equal(log_capture_count(f->io.log, "port 0x0401"), 1);
	assert_int_equal(f->io.log->nr_lines, 2);

	bus_out(f->io.bus, 0x3f6, 0x44332211, 4);
	assert_int_equal(p->nr, 4);
	assert_access(p, 2, true, 0, 1, 0x33);
	assert_access(p, 3, true, 1, 1, 0x44);
	assert_int_equal(log_capture_count(f->io.log, "write of 0x11 (1 byte) to port 0x03f6"), 1);
	assert_int_equal(log_capture_count(f->io.log, "write of 0x22 (1 byte) to port 0x03f7"), 1);
}

static void test_access_straddling_two_devices(void **state)
{
	struct fixture *f = *state;
	struct probe *a = &f->probes[0], *b = &f->probes[1];

	reg(f, 0x100, 2, &probe4_ops, a);
	reg(f, 0x102, 2, &probe4_ops, b);
	assert_int_equal(bus_in(f->io.bus, 0x101, 2), 0xA0A1);
	assert_access(a, 0, false, 1, 1, 0xA1);
	assert_access(b, 0, false, 0, 1, 0xA0);
	bus_out(f->io.bus, 0x100, 0xddccbbaa, 4);
	assert_access(a, 1, true, 0, 1, 0xaa);
	assert_access(a, 2, true, 1, 1, 0xbb);
	assert_access(b, 1, true, 0, 1, 0xcc);
	assert_access(b, 2, true, 1, 1, 0xdd);
	assert_int_equal(f->io.log->nr_lines, 0);
}

static void test_access_past_last_port(void **state)
{
	struct fixture *f = *state;
	struct probe *low = &f->probes[0], *top = &f->probes[1];
	struct log_capture *log2 = NULL;
	struct iobus *bus2;

	reg(f, 0x0000, 2, &probe4_ops, low);
	reg(f, 0xffff, 1, &probe4_ops, top);
	/* The device at 0xffff answers its byte; nothing wraps to port 0. */
	assert_int_equal(bus_in(f->io.bus, 0xfffe, 2), 0xA0ff);
	assert_int_equal(bus_in(f->io.bus, 0xffff, 4), 0xffffffA0);
	bus_out(f->io.bus, 0xffff, 0x5a5a5a5a, 4);
	assert_int_equal(top->nr, 3);
	assert_access(top, 2, true, 0, 1, 0x5a);
	assert_int_equal(low->nr, 0);
	/* Only 0xfffe is a port without a device; bytes past 0xffff are no ports. */
	assert_int_equal(f->io.log->nr_lines, 1);
	assert_non_null(strstr(f->io.log->lines[0], "read of 1 byte at port 0xfffe"));

	/* With nothing at the top, the whole access is one unhandled access. */
	bus2 = log_capture_bus(&log2);
	assert_non_null(bus2);
	assert_int_equal(bus_in(bus2, 0xfffe, 4), 0xffffffff);
	assert_int_equal(log2->nr_lines, 1);
	assert_non_null(strstr(log2->lines[0], "read of 4 bytes at port 0xfffe"));
	log_capture_bus_free(bus2, log2);
}

static void test_bad_access_sizes_rejected(void **state)
{
	struct fixture *f = *state;
	const unsigned int bad[] = { 0, 3, 5, 8, 16, 0xffffffffu };
	uint8_t buf[16];

	reg(f, 0x3f8, 8, &probe1_ops, &f->probes[0]);
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(buf, 0x5c, sizeof(buf));
		assert_int_equal(iobus_read(f->io.bus, 0x3f8, buf, bad[i]), -EINVAL);
		assert_int_equal(iobus_write(f->io.bus, 0x3f8, buf, bad[i]), -EINVAL);
		assert_int_equal(iobus_io(f->io.bus, false, 0x3f8, buf, bad[i], 1), -EINVAL);
		for (unsigned int k = 0; k < sizeof(buf); k++)
			assert_int_equal(buf[k], 0x5c);
	}
	assert_int_equal(f->probes[0].nr, 0);
}

static void test_string_io_loops_count_times(void **state)
{
	struct fixture *f = *state;
	struct probe *p = &f->probes[0];
	uint8_t buf[12] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66 };

	reg(f, 0x1f0, 8, &probe4_ops, p);
	assert_int_equal(iobus_io(f->io.bus, true, 0x1f0, buf, 2, 3), 0);
	assert_int_equal(p->nr, 3);
	assert_access(p, 0, true, 0, 2, 0x2211);
	assert_access(p, 1, true, 0, 2, 0x4433);
	assert_access(p, 2, true, 0, 2, 0x6655);

	memset(buf, 0, sizeof(buf));
	assert_int_equal(iobus_io(f->io.bus, false, 0x1f2, buf, 4, 3), 0);
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(buf[4 * i], 0xA2);
		assert_int_equal(buf[4 * i + 3], 0xA5);
	}
	assert_int_equal(p->nr, 6);

	assert_int_equal(iobus_io(f->io.bus, true, 0x1f0, buf, 1, 0), 0);
	assert_int_equal(p->nr, 6);
}

/* ------------------------------------------------------------ unhandled ports */

static void test_unhandled_read_all_ones_and_logged_once(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(bus_in(f->io.bus, 0x70, 1), 0xff);
	assert_int_equal(bus_in(f->io.bus, 0x70, 2), 0xffff);
	assert_int_equal(bus_in(f->io.bus, 0x70, 4), 0xffffffff);
	bus_out(f->io.bus, 0x70, 0x8f, 1);
	assert_int_equal(f->io.log->nr_lines, 1);
	assert_non_null(strstr(f->io.log->lines[0],
			       "unhandled port I/O: read of 1 byte at port 0x0070 returns all-ones"));
	assert_non_null(strstr(f->io.log->lines[0], "not logged"));

	bus_out(f->io.bus, 0x71, 0xcafe, 2);
	assert_int_equal(bus_in(f->io.bus, 0x71, 1), 0xff);
	assert_int_equal(f->io.log->nr_lines, 2);
	assert_non_null(strstr(f->io.log->lines[1], "write of 0xcafe (2 bytes) to port 0x0071 dropped"));
}

static void test_unhandled_ports_tracked_per_bus(void **state)
{
	struct fixture *f = *state;
	struct log_capture *log2 = NULL;
	struct iobus *bus2 = log_capture_bus(&log2);

	assert_non_null(bus2);
	bus_in(f->io.bus, 0x61, 1);
	bus_in(bus2, 0x61, 1);
	bus_in(bus2, 0x61, 1);
	assert_int_equal(f->io.log->nr_lines, 1);
	assert_int_equal(log2->nr_lines, 1);
	log_capture_bus_free(bus2, log2);
}

static void test_post_code_port_silent(void **state)
{
	struct fixture *f = *state;
	struct error err = { 0 };

	/* It is a real registration: another device cannot take the port. */
	assert_int_equal(iobus_register(f->io.bus, 0x7e, 4, &probe1_ops, &f->probes[0], &err), -EEXIST);
	assert_non_null(strstr(err.msg, "'post-code' at 0x0080-0x0080"));
	for (unsigned int v = 0; v < 256; v++)
		bus_out(f->io.bus, IOBUS_POST_CODE_PORT, v, 1);
	assert_int_equal(bus_in(f->io.bus, IOBUS_POST_CODE_PORT, 1), 0xff);
	assert_int_equal(bus_in(f->io.bus, IOBUS_POST_CODE_PORT, 4), 0xffffffff);
	assert_int_equal(f->io.log->nr_lines, 3); /* 0x81-0x83 of the 4-byte read */
	assert_int_equal(log_capture_count(f->io.log, "port 0x0080"), 0);
}

static void touch_ports(struct iobus *bus, uint16_t first, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		bus_in(bus, (uint16_t)(first + i), 1);
}

static void test_unhandled_notices_rate_limited(void **state)
{
	struct fixture *f = *state;
	struct log_capture *log = f->io.log;

	touch_ports(f->io.bus, 0x200, IOBUS_LOG_BURST + 15);
	assert_int_equal(log->nr_lines, IOBUS_LOG_BURST);
	assert_int_equal(log_capture_count(log, "suppressed"), 0);

	/* Still no token half a period later: the count grows, nothing printed. */
	log->now_ns += IOBUS_LOG_REFILL_NS / 2;
	touch_ports(f->io.bus, 0x300, 5);
	assert_int_equal(log->nr_lines, IOBUS_LOG_BURST);

	/* Three periods later: one summary, then the line that earned the token. */
	log->now_ns += 3 * IOBUS_LOG_REFILL_NS;
	touch_ports(f->io.bus, 0x400, 1);
	assert_int_equal(log->nr_lines, IOBUS_LOG_BURST + 2);
	assert_string_equal(log->lines[IOBUS_LOG_BURST],
			    "20 further unhandled port I/O messages suppressed");
	assert_non_null(strstr(log->lines[IOBUS_LOG_BURST + 1], "port 0x0400"));
	touch_ports(f->io.bus, 0x401, 2);
	assert_int_equal(log->nr_lines, IOBUS_LOG_BURST + 4);
	touch_ports(f->io.bus, 0x403, 1);
	assert_int_equal(log->nr_lines, IOBUS_LOG_BURST + 4);

	/* A long quiet time refills only up to the burst. */
	log->nr_lines = 0;
	log->now_ns += 3600 * IOBUS_LOG_REFILL_NS;
	touch_ports(f->io.bus, 0x500, 3 * IOBUS_LOG_BURST);
	assert_int_equal(log->nr_lines, IOBUS_LOG_BURST + 1);
	assert_string_equal(log->lines[0], "1 further unhandled port I/O messages suppressed");
}

static void test_suppressed_count_reported_on_free(void **state)
{
	struct log_capture *log = NULL;
	struct iobus *bus = log_capture_bus(&log);

	assert_non_null(bus);
	touch_ports(bus, 0x1000, IOBUS_LOG_BURST + 7);
	assert_int_equal(log->nr_lines, IOBUS_LOG_BURST);
	iobus_free(bus);
	assert_int_equal(log->nr_lines, IOBUS_LOG_BURST + 1);
	assert_string_equal(log->lines[IOBUS_LOG_BURST],
			    "7 further unhandled port I/O messages suppressed");
	free(log);
}

/* The default sink writes through util/log.h to stderr. */
static void test_default_sink_logs_to_stderr(void **state)
{
	struct iobus *bus = NULL;
	char buf[1024] = { 0 };
	int pipefd[2], saved;
	ssize_t n;

	assert_int_equal(iobus_new(NULL, &bus, NULL), 0);
	assert_int_equal(pipe2(pipefd, O_NONBLOCK), 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(pipefd[1], STDERR_FILENO) >= 0);
	bus_in(bus, 0x2f8, 1);
	bus_in(bus, 0x2f8, 1);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	n = read(pipefd[0], buf, sizeof(buf) - 1);
	close(pipefd[0]);
	close(pipefd[1]);
	iobus_free(bus);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "warning"));
	assert_non_null(strstr(buf, "read of 1 byte at port 0x02f8"));
	/* Logged once: exactly one line. */
	assert_non_null(strchr(buf, '\n'));
	assert_null(strchr(strchr(buf, '\n') + 1, '\n'));
}

/* ------------------------------------------------------------ registration */

static void test_overlapping_registrations_refused(void **state)
{
	struct fixture *f = *state;
	struct probe *p = &f->probes[1];
	const struct { uint16_t base; uint32_t n; } clash[] = {
		{ 0x3f8, 8 }, /* same range */
		{ 0x3f0, 9 }, /* ends on the first port */
		{ 0x3ff, 4 }, /* starts on the last port */
		{ 0x3fa, 2 }, /* inside */
		{ 0x300, 0x200 }, /* around */
	};
	struct error err;

	reg(f, 0x3f8, 8, &probe1_ops, &f->probes[0]);
	for (unsigned int i = 0; i < ARRAY_SIZE(clash); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(iobus_register(f->io.bus, clash[i].base, clash[i].n, &probe4_ops, p, &err),
				 -EEXIST);
		assert_int_equal(err.code, -EEXIST);
		assert_non_null(strstr(err.msg, "overlap"));
		assert_non_null(strstr(err.msg, "'probe4'"));
		assert_non_null(strstr(err.msg, "'probe1' at 0x03f8-0x03ff"));
	}
	/* Neighbours on both sides fit. */
	reg(f, 0x3f0, 8, &probe4_ops, p);
	reg(f, 0x400, 1, &probe4_ops, &f->probes[2]);
	/* Refused devices were not taken over, and the table still dispatches right. */
	assert_int_equal(bus_in(f->io.bus, 0x3f7, 1), 0xA7);
	assert_int_equal(bus_in(f->io.bus, 0x3f8, 1), 0xA0);
	assert_int_equal(bus_in(f->io.bus, 0x400, 1), 0xA0);
	assert_int_equal(f->probes[0].nr, 1);
	assert_int_equal(p->nr, 1);
	assert_int_equal(f->destroyed, 0);
}

static void test_invalid_registrations_refused(void **state)
{
	struct fixture *f = *state;
	static const struct iobus_device_ops nameless = { .read = probe_read };
	static const struct iobus_device_ops empty_name = { .name = "" };
	static const struct iobus_device_ops odd_width = { .name = "odd", .max_access_size = 3 };
	static const struct iobus_device_ops wide = { .name = "wide", .max_access_size = 8 };
	struct probe *p = &f->probes[0];
	struct error err = { 0 };

	assert_int_equal(iobus_register(f->io.bus, 0x10, 1, NULL, p, &err), -EINVAL);
	assert_int_equal(iobus_register(f->io.bus, 0x10, 1, &nameless, p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no name"));
	assert_int_equal(iobus_register(f->io.bus, 0x10, 1, &empty_name, p, &err), -EINVAL);
	assert_int_equal(iobus_register(f->io.bus, 0x10, 0, &probe1_ops, p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "claims no ports"));
	assert_int_equal(iobus_register(f->io.bus, 0x10, 1, &odd_width, p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "access size 3"));
	assert_int_equal(iobus_register(f->io.bus, 0x10, 1, &wide, p, &err), -EINVAL);
	assert_int_equal(iobus_register(f->io.bus, 0xffff, 2, &probe1_ops, p, &err), -ERANGE);
	assert_non_null(strstr(err.msg, "past port 0xffff"));
	assert_int_equal(iobus_register(f->io.bus, 0x10, 0x10000, &probe1_ops, p, &err), -ERANGE);
	assert_int_equal(iobus_register(f->io.bus, 0x0, 0xffffffffu, &probe1_ops, p, &err), -ERANGE);
	/* The whole space minus the POST port, in two pieces, is fine. */
	reg(f, 0x0, IOBUS_POST_CODE_PORT, &probe1_ops, p);
	reg(f, IOBUS_POST_CODE_PORT + 1, IOBUS_NR_PORTS - IOBUS_POST_CODE_PORT - 1, &probe1_ops,
	    &f->probes[1]);
	assert_int_equal(f->destroyed, 0);
}

static void test_device_table_limit(void **state)
{
	static const struct iobus_device_ops filler = { .name = "filler" };
	struct fixture *f = *state;
	struct error err = { 0 };
	unsigned int i;

	/* The POST-code device already holds one slot. */
	for (i = 1; i < IOBUS_MAX_DEVICES; i++)
		assert_int_equal(iobus_register(f->io.bus, (uint16_t)(0x1000 + i), 1, &filler, NULL, &err), 0);
	assert_int_equal(iobus_register(f->io.bus, 0x2000, 1, &filler, NULL, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "limit 64 devices"));
}

static void test_registration_after_dispatch_refused(void **state)
{
	struct fixture *f = *state;
	struct error err = { 0 };

	reg(f, 0x60, 1, &probe1_ops, &f->probes[0]);
	bus_in(f->io.bus, 0x60, 1);
	assert_int_equal(iobus_register(f->io.bus, 0x64, 1, &probe1_ops, &f->probes[1], &err), -EBUSY);
	assert_non_null(strstr(err.msg, "after vCPUs started"));
	assert_int_equal(bus_in(f->io.bus, 0x64, 1), 0xff);
}

static void test_reset_and_destroy_reach_every_device(void **state)
{
	struct fixture *f = *state;

	reg(f, 0x40, 4, &probe1_ops, &f->probes[0]);
	reg(f, 0x20, 2, &probe2_ops, &f->probes[1]);
	reg(f, 0xf000, 16, &probe4_ops, &f->probes[2]);
	iobus_reset(f->io.bus);
	iobus_reset(f->io.bus);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(f->probes[i].resets, 2);
	assert_int_equal(f->probes[3].resets, 0);
	iobus_free(f->io.bus);
	f->io.bus = NULL;
	assert_int_equal(f->destroyed, 3);
	iobus_free(NULL);
}

/* ------------------------------------------------------------ threads */

#define STRESS_THREADS 4
#define STRESS_ROUNDS 20000
#define STRESS_UNHANDLED_PORTS 512

struct stress_arg {
	struct iobus *bus;
	unsigned int id;
};

static void *stress_thread(void *opaque)
{
	struct stress_arg *a = opaque;

	for (unsigned int i = 0; i < STRESS_ROUNDS; i++) {
		uint8_t b = (uint8_t)i;

		iobus_write(a->bus, 0x500, &b, 1);
		/* Every thread walks the same unmapped ports from a different start. */
		iobus_read(a->bus, (uint16_t)(0x8000 + (i + a->id * 97) % STRESS_UNHANDLED_PORTS), &b, 1);
		if (b != 0xff)
			return (void *)1;
	}
	return NULL;
}

static void test_concurrent_dispatch(void **state)
{
	struct fixture *f = *state;
	struct probe *counter = &f->probes[3];
	struct stress_arg args[STRESS_THREADS];
	pthread_t t[STRESS_THREADS];

	/* Every clock reading earns a token: nothing is rate limited here. */
	f->io.log->step_ns = IOBUS_LOG_REFILL_NS;
	counter->count_only = true;
	reg(f, 0x500, 1, &probe1_ops, counter);
	for (unsigned int i = 0; i < STRESS_THREADS; i++) {
		args[i] = (struct stress_arg){ f->io.bus, i };
		assert_int_equal(pthread_create(&t[i], NULL, stress_thread, &args[i]), 0);
	}
	for (unsigned int i = 0; i < STRESS_THREADS; i++) {
		void *res;

		assert_int_equal(pthread_join(t[i], &res), 0);
		assert_null(res);
	}
	assert_int_equal(counter->writes, STRESS_THREADS * STRESS_ROUNDS);
	/* Each unmapped port logged exactly once, whichever thread came first. */
	assert_int_equal(f->io.log->nr_lines, STRESS_UNHANDLED_PORTS);
	for (unsigned int p = 0; p < STRESS_UNHANDLED_PORTS; p++) {
		char needle[32];

		snprintf(needle, sizeof(needle), "port 0x%04x ", 0x8000 + p);
		assert_int_equal(log_capture_count(f->io.log, needle), 1);
	}
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, bus_fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_whole_access_reaches_wide_device),
		T(test_wide_access_split_into_bytes_in_port_order),
		T(test_wide_access_split_into_device_width),
		T(test_access_straddling_device_and_gap),
		T(test_access_straddling_two_devices),
		T(test_access_past_last_port),
		T(test_bad_access_sizes_rejected),
		T(test_string_io_loops_count_times),
		T(test_unhandled_read_all_ones_and_logged_once),
		T(test_unhandled_ports_tracked_per_bus),
		T(test_post_code_port_silent),
		T(test_unhandled_notices_rate_limited),
		cmocka_unit_test(test_suppressed_count_reported_on_free),
		cmocka_unit_test(test_default_sink_logs_to_stderr),
		T(test_overlapping_registrations_refused),
		T(test_invalid_registrations_refused),
		T(test_device_table_limit),
		T(test_registration_after_dispatch_refused),
		T(test_reset_and_destroy_reach_every_device),
		T(test_concurrent_dispatch),
	};
	return cmocka_run_group_tests_name("iobus", tests, NULL, NULL);
}
