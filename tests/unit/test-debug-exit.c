/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for isa-debug-exit: the value of each access size and offset,
 * all-ones reads, first-write-wins until reset, straddling and string
 * writes, bad setups, and vCPUs racing to the port.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "iobus-test.h"
#include "vmmd/devices/debug-exit.h"
#include "vmmd/devices/iobus.h"

#define PORT DEBUG_EXIT_PORT

struct fixture {
	struct bus_fixture io;
	unsigned int nr_requests; /* atomic */
	uint32_t value;           /* of the first request */
};

static void on_exit_request(void *ctx, uint32_t value)
{
	struct fixture *f = ctx;

	if (__atomic_fetch_add(&f->nr_requests, 1, __ATOMIC_ACQ_REL) == 0)
		f->value = value;
}

static int setup(void **state)
{
	struct fixture *f = bus_fixture_new(sizeof(*f));

	if (!f || debug_exit_create(f->io.bus, PORT, on_exit_request, f, NULL) < 0)
		return -1;
	*state = f;
	return 0;
}

/* One write on a freshly reset device must request exactly `expect`. */
static void assert_write_requests(struct fixture *f, uint16_t port, uint32_t value,
				  unsigned int size, uint32_t expect)
{
	iobus_reset(f->io.bus);
	f->nr_requests = 0;
	f->value = 0xbadbad;
	bus_out(f->io.bus, port, value, size);
	assert_int_equal(f->nr_requests, 1);
	assert_int_equal(f->value, expect);
}

static void test_value_of_each_size(void **state)
{
	struct fixture *f = *state;
	const uint32_t values[] = { 0, 1, 0x7f, 0x80, 0xff, 0x100, 0x1234, 0xffff,
				    0x10000, 0xdeadbeef, 0x7fffffff, 0xffffffff };

	for (unsigned int i = 0; i < ARRAY_SIZE(values); i++) {
		uint32_t v = values[i];

		assert_write_requests(f, PORT, v, 1, v & 0xff);
		assert_write_requests(f, PORT, v, 2, v & 0xffff);
		assert_write_requests(f, PORT, v, 4, v);
	}
	assert_int_equal(f->io.log->nr_lines, 0);
}

static void test_every_port_of_the_range(void **state)
{
	struct fixture *f = *state;

	for (uint16_t p = PORT; p < PORT + DEBUG_EXIT_NR_PORTS; p++)
		assert_write_requests(f, p, 0x10 + p - PORT, 1, 0x10 + p - PORT);
	assert_write_requests(f, PORT + 2, 0xabcd, 2, 0xabcd);
	assert_int_equal(f->io.log->nr_lines, 0);
}

static void test_reads_are_all_ones(void **state)
{
	struct fixture *f = *state;

	for (uint16_t p = PORT; p < PORT + DEBUG_EXIT_NR_PORTS; p++)
		assert_int_equal(bus_in(f->io.bus, p, 1), 0xff);
	assert_int_equal(bus_in(f->io.bus, PORT, 2), 0xffff);
	assert_int_equal(bus_in(f->io.bus, PORT, 4), 0xffffffff);
	assert_int_equal(f->nr_requests, 0);
	/* The ports are claimed: reading them is not an unhandled access. */
	assert_int_equal(f->io.log->nr_lines, 0);
}

static void test_first_write_wins_until_reset(void **state)
{
	struct fixture *f = *state;

	bus_out(f->io.bus, PORT, 3, 1);
	bus_out(f->io.bus, PORT, 4, 1);
	bus_out(f->io.bus, PORT + 1, 5, 2);
	assert_int_equal(f->nr_requests, 1);
	assert_int_equal(f->value, 3);

	iobus_reset(f->io.bus);
	f->nr_requests = 0;
	bus_out(f->io.bus, PORT, 0, 4);
	assert_int_equal(f->nr_requests, 1);
	assert_int_equal(f->value, 0);
}

static void test_straddling_write_takes_first_byte(void **state)
{
	struct fixture *f = *state;

	/* 0xf6, 0xf7 are the device's, 0xf8, 0xf9 nobody's: split into bytes. */
	bus_out(f->io.bus, PORT + 2, 0x44332211, 4);
	assert_int_equal(f->nr_requests, 1);
	assert_int_equal(f->value, 0x11);
	assert_int_equal(log_capture_count(f->io.log, "to port 0x00f8"), 1);
	assert_int_equal(log_capture_count(f->io.log, "to port 0x00f9"), 1);
}

static void test_string_write_requests_once(void **state)
{
	struct fixture *f = *state;
	uint8_t values[] = { 7, 8, 9 };

	assert_int_equal(iobus_io(f->io.bus, true, PORT, values, 1, 3), 0);
	assert_int_equal(f->nr_requests, 1);
	assert_int_equal(f->value, 7);
}

static void test_create_refuses_bad_setups(void **state)
{
	struct fixture *f = *state;
	struct error err = { 0 };

	assert_int_equal(debug_exit_create(f->io.bus, 0x501, NULL, f, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "exit_request callback is required"));
	assert_int_equal(debug_exit_create(f->io.bus, PORT - 2, on_exit_request, f, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "'isa-debug-exit' at 0x00f4-0x00f7"));
	/* Another instance elsewhere (QEMU's default iobase) is fine. */
	assert_int_equal(debug_exit_create(f->io.bus, 0x501, on_exit_request, f, &err), 0);
	bus_out(f->io.bus, 0x501, 0x21, 1);
	assert_int_equal(f->value, 0x21);
}

#define RACERS 4

struct racer {
	struct fixture *f;
	uint32_t value;
};

static void *racer_thread(void *opaque)
{
	struct racer *r = opaque;

	for (unsigned int i = 0; i < 1000; i++)
		iobus_write(r->f->io.bus, PORT, &r->value, 4);
	return NULL;
}

static void test_racing_vcpus_request_once(void **state)
{
	struct fixture *f = *state;
	struct racer racers[RACERS];
	pthread_t t[RACERS];

	for (unsigned int i = 0; i < RACERS; i++) {
		racers[i] = (struct racer){ f, 0x1000 + i };
		assert_int_equal(pthread_create(&t[i], NULL, racer_thread, &racers[i]), 0);
	}
	for (unsigned int i = 0; i < RACERS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(f->nr_requests, 1);
	assert_in_range(f->value, 0x1000, 0x1000 + RACERS - 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, bus_fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_value_of_each_size),
		T(test_every_port_of_the_range),
		T(test_reads_are_all_ones),
		T(test_first_write_wins_until_reset),
		T(test_straddling_write_takes_first_byte),
		T(test_string_write_requests_once),
		T(test_create_refuses_bad_setups),
		T(test_racing_vcpus_request_once),
	};
	return cmocka_run_group_tests_name("debug-exit", tests, NULL, NULL);
}
