/* SPDX-License-Identifier: MIT */
/* Unit tests for api/frame: newline framing, split and oversized messages, output queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>

#include <cmocka.h>

#include "api/frame.h"

static void feed(struct rpc_reader *r, const char *s)
{
	assert_int_equal(rpc_reader_feed(r, s, strlen(s)), 0);
}

static void expect_line(struct rpc_reader *r, const char *want)
{
	char *line;
	size_t len;

	assert_int_equal(rpc_reader_next(r, &line, &len), RPC_READ_LINE);
	assert_int_equal(len, strlen(want));
	assert_string_equal(line, want);
}

static void expect_none(struct rpc_reader *r)
{
	char *line;
	size_t len;

	assert_int_equal(rpc_reader_next(r, &line, &len), RPC_READ_NONE);
}

static void test_reader_two_lines_in_one_chunk(void **state)
{
	struct rpc_reader r;

	rpc_reader_init(&r, 64);
	feed(&r, "{\"a\":1}\n{\"b\":2}\n");
	expect_line(&r, "{\"a\":1}");
	expect_line(&r, "{\"b\":2}");
	expect_none(&r);
	assert_false(rpc_reader_has_partial(&r));
	rpc_reader_free(&r);
}

static void test_reader_message_split_byte_by_byte(void **state)
{
	const char *msg = "{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"id\":1}\n";
	struct rpc_reader r;

	rpc_reader_init(&r, 1024);
	for (size_t i = 0; i < strlen(msg) - 1; i++) {
		assert_int_equal(rpc_reader_feed(&r, msg + i, 1), 0);
		expect_none(&r);
		assert_true(rpc_reader_has_partial(&r));
	}
	assert_int_equal(rpc_reader_feed(&r, msg + strlen(msg) - 1, 1), 0);
	expect_line(&r, "{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"id\":1}");
	rpc_reader_free(&r);
}

static void test_reader_crlf_and_blank_lines(void **state)
{
	struct rpc_reader r;

	rpc_reader_init(&r, 64);
	feed(&r, "\n\r\n  \n{}\r\n\n[]\n");
	expect_line(&r, "{}");
	expect_line(&r, "[]");
	expect_none(&r);
	rpc_reader_free(&r);
}

static void test_reader_exact_limit_is_accepted(void **state)
{
	struct rpc_reader r;
	char buf[18];

	rpc_reader_init(&r, 16);
	memset(buf, 'x', 16);
	buf[16] = '\n';
	buf[17] = '\0';
	feed(&r, buf);
	buf[16] = '\0';
	expect_line(&r, buf);
	rpc_reader_free(&r);
}

static void test_reader_oversized_complete_line_then_recovers(void **state)
{
	struct rpc_reader r;
	char *line;
	size_t len;

	rpc_reader_init(&r, 8);
	feed(&r, "0123456789\n{}\n");
	assert_int_equal(rpc_reader_next(&r, &line, &len), RPC_READ_OVERSIZED);
	expect_line(&r, "{}");
	expect_none(&r);
	rpc_reader_free(&r);
}

static void test_reader_oversized_partial_is_dropped_until_newline(void **state)
{
	struct rpc_reader r;
	char *line;
	size_t len;

	rpc_reader_init(&r, 8);
	feed(&r, "0123456789");
	assert_int_equal(rpc_reader_next(&r, &line, &len), RPC_READ_OVERSIZED);
	/* More of the same oversized message: dropped silently, reported once. */
	feed(&r, "abcdefghijklmnop");
	expect_none(&r);
	feed(&r, "qrs\n{\"ok\":1}\n");
	expect_line(&r, "{\"ok\":1}");
	expect_none(&r);
	rpc_reader_free(&r);
}

static void test_reader_memory_stays_bounded_under_flood(void **state)
{
	struct rpc_reader r;
	char chunk[4096];
	char *line;
	size_t len;
	int oversized = 0;

	memset(chunk, 'z', sizeof(chunk));
	rpc_reader_init(&r, 1024);
	for (int i = 0; i < 1000; i++) {
		feed(&r, "");
		assert_int_equal(rpc_reader_feed(&r, chunk, sizeof(chunk)), 0);
		if (rpc_reader_next(&r, &line, &len) == RPC_READ_OVERSIZED)
			oversized++;
		assert_true(r.cap <= 16384);
	}
	assert_int_equal(oversized, 1);
	rpc_reader_free(&r);
}

static void test_writer_bounded_and_flushes(void **state)
{
	struct rpc_writer w;
	int sv[2];
	char buf[64];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	rpc_writer_init(&w, 10);
	assert_int_equal(rpc_writer_append_line(&w, "abcd", 4), 0);
	assert_int_equal(rpc_writer_pending(&w), 5);
	/* 5 + 6 > 10: refused whole, nothing partially queued. */
	assert_int_equal(rpc_writer_append_line(&w, "efghi", 5), -ENOBUFS);
	assert_int_equal(rpc_writer_pending(&w), 5);
	assert_int_equal(rpc_writer_flush(&w, sv[0]), 0);
	assert_int_equal(rpc_writer_pending(&w), 0);
	assert_int_equal(read(sv[1], buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "abcd\n", 5);
	rpc_writer_free(&w);
	close(sv[0]);
	close(sv[1]);
}

static void test_writer_partial_write_returns_eagain(void **state)
{
	struct rpc_writer w;
	int sv[2];
	size_t big = 4 << 20;
	char *data = malloc(big);
	size_t got = 0;
	char buf[65536];

	memset(data, 'q', big);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	rpc_writer_init(&w, big);
	assert_int_equal(rpc_writer_append(&w, data, big), 0);
	assert_int_equal(rpc_writer_flush(&w, sv[0]), -EAGAIN);
	assert_true(rpc_writer_pending(&w) > 0);
	/* Drain the peer and keep flushing: every byte arrives exactly once. */
	while (got < big) {
		int rc = rpc_writer_flush(&w, sv[0]);
		assert_true(rc == 0 || rc == -EAGAIN);
		ssize_t n = read(sv[1], buf, sizeof(buf));
		assert_true(n > 0);
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal(buf[i], 'q');
		got += (size_t)n;
	}
	assert_int_equal(got, big);
	assert_int_equal(rpc_writer_pending(&w), 0);
	rpc_writer_free(&w);
	free(data);
	close(sv[0]);
	close(sv[1]);
}

static void test_writer_flush_to_closed_peer_is_an_error(void **state)
{
	struct rpc_writer w;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	rpc_writer_init(&w, 100);
	assert_int_equal(rpc_writer_append_line(&w, "x", 1), 0);
	assert_int_equal(rpc_writer_flush(&w, sv[0]), -EPIPE);
	rpc_writer_free(&w);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_two_lines_in_one_chunk),
		cmocka_unit_test(test_reader_message_split_byte_by_byte),
		cmocka_unit_test(test_reader_crlf_and_blank_lines),
		cmocka_unit_test(test_reader_exact_limit_is_accepted),
		cmocka_unit_test(test_reader_oversized_complete_line_then_recovers),
		cmocka_unit_test(test_reader_oversized_partial_is_dropped_until_newline),
		cmocka_unit_test(test_reader_memory_stays_bounded_under_flood),
		cmocka_unit_test(test_writer_bounded_and_flushes),
		cmocka_unit_test(test_writer_partial_write_returns_eagain),
		cmocka_unit_test(test_writer_flush_to_closed_peer_is_an_error),
	};
	return cmocka_run_group_tests_name("api-frame", tests, NULL, NULL);
}
