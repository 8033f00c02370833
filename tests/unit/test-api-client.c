/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for api/client against a scripted server on a real Unix
 * socket: replies matched by id, notifications queued in order, messages
 * that arrive in the same read as a reply, error replies, and a server that
 * hangs up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/client.h"

struct script {
	char path[108];
	int listen_fd;
	const char *reply; /* written in one write() after the first request line */
	pthread_t thread;
};

static void read_line(int fd)
{
	char ch;

	while (read(fd, &ch, 1) == 1 && ch != '\n')
		;
}

static void *serve(void *arg)
{
	struct script *s = arg;
	int fd = accept(s->listen_fd, NULL, NULL);

	if (fd < 0)
		return NULL;
	read_line(fd);
	if (s->reply && write(fd, s->reply, strlen(s->reply)) < 0)
		fprintf(stderr, "scripted server: write failed\n");
	close(fd);
	return NULL;
}

static void script_start(struct script *s, const char *reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(s->path, sizeof(s->path), "/tmp/vmmd-client-test-%d.sock", (int)getpid());
	unlink(s->path);
	strcpy(sa.sun_path, s->path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->listen_fd, 1), 0);
	s->reply = reply;
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void script_end(struct script *s)
{
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
	unlink(s->path);
}

static const char *method_of(json_object *msg)
{
	json_object *m;

	return json_object_object_get_ex(msg, "method", &m) ? json_object_get_string(m) : "";
}

/* The reply and two notifications in one write: nothing may be stranded in
 * the read buffer where neither poll() nor the queue would see it. */
static void test_messages_in_the_same_read_as_a_reply_are_queued(void **state)
{
	struct script s;
	struct api_client *c;
	struct api_error err;
	json_object *result = NULL, *msg;

	script_start(&s, "{\"jsonrpc\":\"2.0\",\"method\":\"first\"}\n"
			 "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"ok\":true}}\n"
			 "{\"jsonrpc\":\"2.0\",\"method\":\"second\"}\n"
			 "{\"jsonrpc\":\"2.0\",\"method\":\"third\"}\n");
	assert_int_equal(api_client_connect(s.path, &c, &err), 0);
	assert_int_equal(api_client_call(c, "x", NULL, &result, &err), 0);
	assert_non_null(result);
	json_object_put(result);
	assert_true(api_client_has_queued(c));
	const char *want[] = { "first", "second", "third" };
	for (int i = 0; i < 3; i++) {
		/* Each one is available without waiting on the socket. */
		assert_true(api_client_has_queued(c));
		assert_int_equal(api_client_next(c, 0, &msg, &err), 0);
		assert_string_equal(method_of(msg), want[i]);
		json_object_put(msg);
	}
	assert_false(api_client_has_queued(c));
	assert_int_equal(api_client_next(c, 1000, &msg, &err), -ECONNRESET);
	assert_string_equal(err.message, "vmmd closed the connection");
	api_client_free(c);
	script_end(&s);
}

static void test_error_reply(void **state)
{
	struct script s;
	struct api_client *c;
	struct api_error err;
	json_object *result = NULL;

	script_start(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32001,\"message\":\"VM 'x' not found\"}}\n");
	assert_int_equal(api_client_connect(s.path, &c, &err), 0);
	assert_int_equal(api_client_call(c, "vm.info", NULL, &result, &err), -EREMOTEIO);
	assert_null(result);
	assert_int_equal(err.code, -32001);
	assert_string_equal(err.message, "VM 'x' not found");
	api_client_free(c);
	script_end(&s);
}

static void test_server_hangs_up_before_replying(void **state)
{
	struct script s;
	struct api_client *c;
	struct api_error err;

	script_start(&s, NULL);
	assert_int_equal(api_client_connect(s.path, &c, &err), 0);
	assert_int_equal(api_client_call(c, "x", NULL, NULL, &err), -ECONNRESET);
	assert_int_equal(err.code, 0);
	api_client_free(c);
	script_end(&s);
}

static void test_malformed_reply(void **state)
{
	struct script s;
	struct api_client *c;
	struct api_error err;

	script_start(&s, "{\"jsonrpc\":\n");
	assert_int_equal(api_client_connect(s.path, &c, &err), 0);
	assert_int_equal(api_client_call(c, "x", NULL, NULL, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "malformed message from vmmd"));
	api_client_free(c);
	script_end(&s);
}

static void test_connect_errors(void **state)
{
	struct api_client *c = NULL;
	struct api_error err;
	char longpath[200];

	assert_int_equal(api_client_connect("/nonexistent/vmmd.sock", &c, &err), -ENOENT);
	assert_string_equal(err.message,
			    "cannot connect to vmmd at /nonexistent/vmmd.sock: No such file or directory");
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(api_client_connect(longpath, &c, &err), -ENAMETOOLONG);
	assert_non_null(strstr(err.message, "is too long"));
	assert_null(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_messages_in_the_same_read_as_a_reply_are_queued),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_server_hangs_up_before_replying),
		cmocka_unit_test(test_malformed_reply),
		cmocka_unit_test(test_connect_errors),
	};
	return cmocka_run_group_tests_name("api-client", tests, NULL, NULL);
}
