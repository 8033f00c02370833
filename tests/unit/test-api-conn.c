/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for api/conn's outgoing calls on a real libev loop and a
 * socketpair whose far end never answers: a call that times out is failed
 * once, with the time in its message, and leaves no watcher behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "api/conn.h"

struct outcome {
	int calls;
	char message[256];
};

static void on_reply(void *data, json_object *result, const struct api_error *error)
{
	struct outcome *o = data;

	o->calls++;
	snprintf(o->message, sizeof(o->message), "%s", error ? error->message : "(result)");
}

static void ignore_message(struct rpc_conn *c, json_object *msg, void *userdata) {}
static void ignore_bad(struct rpc_conn *c, const struct api_error *err, void *userdata) {}
static void ignore_closed(struct rpc_conn *c, const char *reason, void *userdata) {}

static const struct rpc_conn_ops ops = {
	.message = ignore_message,
	.bad_message = ignore_bad,
	.closed = ignore_closed,
};

static void test_call_timeout_fails_once_and_leaves_no_timer(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct outcome o = { 0 };
	struct rpc_conn *c;
	int sv[2];

	assert_non_null(loop);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = rpc_conn_new(loop, sv[0], NULL, &ops, NULL);
	assert_non_null(c);
	assert_int_equal(rpc_conn_call(c, "slow", NULL, 0.05, on_reply, &o), 0);
	while (o.calls == 0)
		ev_run(loop, EVRUN_ONCE);
	assert_int_equal(o.calls, 1);
	assert_string_equal(o.message, "no reply within 0.05 s");
	assert_int_equal(rpc_conn_calls_pending(c), 0);
	/* With the connection gone, nothing may remain on the loop: a timer
	 * left running would fire on the freed call. */
	rpc_conn_free(c);
	assert_false(ev_run(loop, EVRUN_NOWAIT));
	assert_int_equal(o.calls, 1);
	close(sv[1]);
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_timeout_fails_once_and_leaves_no_timer),
	};
	return cmocka_run_group_tests_name("api-conn", tests, NULL, NULL);
}
