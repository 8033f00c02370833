/* SPDX-License-Identifier: MIT */
/*
 * The VM worker process. Its main thread runs a libev loop that serves the
 * link to vmmd (the same JSON-RPC layer as clients use) and collects what
 * the vCPU threads signal through one ev_async: console output to forward
 * and the end of the VM. The worker exits after it has told vmmd how the VM
 * ended (worker.exit) and that message has been written.
 */
#include "vmmd/worker/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/conn.h"
#include "api/jsonrpc.h"
#include "api/session.h"
#include "util/base64.h"
#include "util/log.h"
#include "vmmd/vmdef.h"
#include "vmmd/worker/vm.h"

/* The link inherited from vmmd. */
#define WORKER_LINK_FD 3
/* Console bytes per worker.console notification. */
#define CONSOLE_CHUNK (48 * 1024)
/* Guest output is gathered this long before it is forwarded: one message per
 * burst instead of one per UART write, and still imperceptible when typing. */
#define CONSOLE_FLUSH_DELAY_S 0.002

struct worker_state {
	struct ev_loop *loop;
	struct rpc_conn *link;
	struct api_session *session;
	struct vm *vm;
	ev_async wake;
	ev_timer console_flush;
	ev_signal sig_term;
	char name[VM_NAME_MAX + 1];
	bool reported;
	bool start_failed;
};

static void send_notification(struct worker_state *ws, const char *method, json_object *params)
{
	json_object *msg = jsonrpc_notification_new(method, params);

	if (ws->link && rpc_conn_is_open(ws->link) && rpc_conn_send(ws->link, msg) < 0)
		log_warning("cannot send %s to vmmd", method);
	json_object_put(msg);
}

static void forward_console(struct worker_state *ws)
{
	static uint8_t buf[CONSOLE_CHUNK];
	static char text[CONSOLE_CHUNK / 3 * 4 + 8];
	size_t n;

	if (!ws->vm)
		return;
	while ((n = console_take_pending(vm_console(ws->vm), buf, sizeof(buf))) > 0) {
		json_object *p = json_object_new_object();
		base64_encode(buf, n, text);
		json_object_object_add(p, "data", json_object_new_string(text));
		send_notification(ws, "worker.console", p);
	}
}

static void report_exit(struct worker_state *ws, const struct vm_end *end)
{
	json_object *p = json_object_new_object();

	json_object_object_add(p, "state", json_object_new_string(
						   end->state == VM_END_STOPPED ? "stopped" : "crashed"));
	json_object_object_add(p, "reason", json_object_new_string(end->reason));
	if (end->has_exit_status)
		json_object_object_add(p, "exit_status", json_object_new_int(end->exit_status));
	send_notification(ws, "worker.exit", p);
	ws->reported = true;
	log_info("VM ended: %s", end->reason);
	if (ws->link && rpc_conn_is_open(ws->link))
		rpc_conn_close_after_flush(ws->link);
	else
		ev_break(ws->loop, EVBREAK_ALL);
}

static void on_console_flush(struct ev_loop *loop, ev_timer *t, int revents)
{
	forward_console(t->data);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	struct worker_state *ws = w->data;
	struct vm_end end;

	if (ws->vm && !ws->reported && vm_has_ended(ws->vm, &end)) {
		vm_join_vcpus(ws->vm);
		ev_timer_stop(loop, &ws->console_flush);
		forward_console(ws);
		report_exit(ws, &end);
		return;
	}
	if (!ev_is_active(&ws->console_flush))
		ev_timer_start(loop, &ws->console_flush);
}

static void wake_main_loop(void *ctx)
{
	struct worker_state *ws = ctx;

	ev_async_send(ws->loop, &ws->wake);
}

/* ---------------------------------------------------------------- methods */

static const struct api_param p_start[] = {
	{ .name = "name", .type = API_T_STRING, .required = true, .max_len = VM_NAME_MAX },
	{ .name = "memory", .type = API_T_INT, .required = true, .min = 1, .max = INT64_MAX },
	{ .name = "vcpus", .type = API_T_INT, .required = true, .min = 1, .max = 4096 },
	{ .name = "kernel", .type = API_T_STRING, .required = true, .max_len = VM_KERNEL_PATH_MAX },
	{ .name = "cmdline", .type = API_T_STRING, .max_len = VM_CMDLINE_MAX },
	{ .name = "boot", .type = API_T_STRING, .required = true },
	{ .name = "transient", .type = API_T_BOOL },
	{ .name = "console_log", .type = API_T_STRING, .required = true, .max_len = 4096 },
	{ .name = "console_log_max", .type = API_T_INT, .min = 0, .max = INT64_MAX },
	{ 0 },
};

static void finish_failed_start(struct worker_state *ws)
{
	ws->start_failed = true;
	rpc_conn_close_after_flush(ws->link);
}

static void w_start(struct api_call *call, json_object *params, void *ctx)
{
	struct worker_state *ws = ctx;
	struct vm_config cfg = {
		.memory_mib = (uint64_t)api_param_int(params, "memory", 0),
		.vcpus = (unsigned int)api_param_int(params, "vcpus", 1),
		.kernel = api_param_string(params, "kernel", ""),
		.cmdline = api_param_string(params, "cmdline", ""),
		.boot = api_param_string(params, "boot", ""),
		.console_log = api_param_string(params, "console_log", ""),
		.console_log_max = (size_t)api_param_int(params, "console_log_max", 0),
	};
	struct api_error err;
	json_object *r;

	if (ws->vm) {
		api_call_fail(call, API_ERR_WRONG_STATE, "worker already runs VM '%s'", ws->name);
		return;
	}
	snprintf(cfg.name, sizeof(cfg.name), "%s", api_param_string(params, "name", ""));
	if (vm_create(&cfg, wake_main_loop, ws, &ws->vm, &err) < 0 ||
	    vm_start(ws->vm, &err) < 0) {
		log_error("VM '%s' failed to start: %s", cfg.name, err.message);
		api_call_fail_error(call, &err);
		finish_failed_start(ws);
		return;
	}
	r = json_object_new_object();
	json_object_object_add(r, "pid", json_object_new_int(getpid()));
	api_call_reply(call, r);
}

static void w_stop(struct api_call *call, json_object *params, void *ctx)
{
	struct worker_state *ws = ctx;

	if (ws->vm)
		vm_request_exit(ws->vm, VM_END_STOPPED, false, 0,
				api_param_string(params, "reason", "powered off"));
	api_call_reply(call, json_object_new_object());
}

static void w_console_write(struct api_call *call, json_object *params, void *ctx)
{
	struct worker_state *ws = ctx;
	const char *data = api_param_string(params, "data", "");
	size_t len = strlen(data), accepted = 0;
	uint8_t *bytes = malloc(len / 4 * 3 + 3);
	long n = bytes ? base64_decode(data, len, bytes) : -ENOMEM;
	json_object *r;

	if (n < 0 || !ws->vm) {
		free(bytes);
		api_call_fail(call, API_ERR_INVALID_PARAMS,
			      ws->vm ? "parameter 'data' must be base64" : "no VM is running");
		return;
	}
	vm_console_input(ws->vm, bytes, (size_t)n, &accepted);
	free(bytes);
	r = json_object_new_object();
	json_object_object_add(r, "accepted", json_object_new_int64((int64_t)accepted));
	api_call_reply(call, r);
}

static void w_console_history(struct api_call *call, json_object *params, void *ctx)
{
	struct worker_state *ws = ctx;
	uint8_t *hist = NULL;
	size_t len = 0;
	char *text;
	json_object *r;

	/* Send what is pending first so history and the stream never overlap. */
	forward_console(ws);
	if (ws->vm && console_history(vm_console(ws->vm), &hist, &len) < 0) {
		api_call_fail(call, API_ERR_INTERNAL, "out of memory");
		return;
	}
	text = malloc(base64_encoded_len(len) + 1);
	if (!text) {
		free(hist);
		api_call_fail(call, API_ERR_INTERNAL, "out of memory");
		return;
	}
	base64_encode(hist, len, text);
	r = json_object_new_object();
	json_object_object_add(r, "data", json_object_new_string(text));
	free(text);
	free(hist);
	api_call_reply(call, r);
}

static const struct api_param p_stop[] = {
	{ .name = "reason", .type = API_T_STRING, .max_len = 256 },
	{ 0 },
};

static const struct api_param p_console_write[] = {
	{ .name = "data", .type = API_T_STRING, .required = true, .max_len = 1 << 20 },
	{ 0 },
};

static const struct api_param p_none[] = { { 0 } };

static const struct api_method worker_methods[] = {
	{ .name = "worker.start", .handler = w_start, .params = p_start },
	{ .name = "vm.stop", .handler = w_stop, .params = p_stop },
	{ .name = "console.write", .handler = w_console_write, .params = p_console_write },
	{ .name = "console.history", .handler = w_console_history, .params = p_none },
};

/* ---------------------------------------------------------------- link */

static int link_send(void *conn, json_object *msg)
{
	struct worker_state *ws = conn;

	return rpc_conn_send(ws->link, msg);
}

static const struct api_session_ops link_session_ops = { .send = link_send };

static void on_link_message(struct rpc_conn *c, json_object *msg, void *userdata)
{
	struct worker_state *ws = userdata;

	api_session_handle(ws->session, msg);
}

static void on_link_bad_message(struct rpc_conn *c, const struct api_error *err, void *userdata)
{
	struct worker_state *ws = userdata;

	api_session_bad_message(ws->session, err);
}

static void on_link_closed(struct rpc_conn *c, const char *reason, void *userdata)
{
	struct worker_state *ws = userdata;

	if (ws->reported || ws->start_failed) {
		ev_break(ws->loop, EVBREAK_ALL);
		return;
	}
	/* vmmd is gone and nobody could control this VM any more. */
	log_warning("lost the link to vmmd (%s); powering off", reason);
	if (ws->vm)
		vm_request_exit(ws->vm, VM_END_STOPPED, false, 0, "vmmd went away");
	else
		ev_break(ws->loop, EVBREAK_ALL);
}

static const struct rpc_conn_ops link_ops = {
	.message = on_link_message,
	.bad_message = on_link_bad_message,
	.closed = on_link_closed,
};

static void on_sigterm(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct worker_state *ws = w->data;

	if (ws->vm)
		vm_request_exit(ws->vm, VM_END_STOPPED, false, 0, "worker received SIGTERM");
	else
		ev_break(loop, EVBREAK_ALL);
}

int worker_main(const char *name)
{
	struct api_session_config scfg = {
		.methods = worker_methods,
		.nr_methods = sizeof(worker_methods) / sizeof(worker_methods[0]),
	};
	struct rpc_conn_limits limits = { .out_max = 64 << 20, .out_high = 32 << 20 };
	struct worker_state ws = { 0 };
	char ident[96];

	snprintf(ident, sizeof(ident), "vmmd-worker %s", name);
	log_init(ident);
	snprintf(ws.name, sizeof(ws.name), "%s", name);
	signal(SIGPIPE, SIG_IGN);
	ws.loop = ev_default_loop(EVFLAG_AUTO);
	if (!ws.loop)
		return 1;
	ev_async_init(&ws.wake, on_wake);
	ws.wake.data = &ws;
	ev_async_start(ws.loop, &ws.wake);
	ev_timer_init(&ws.console_flush, on_console_flush, CONSOLE_FLUSH_DELAY_S, 0);
	ws.console_flush.data = &ws;
	ev_signal_init(&ws.sig_term, on_sigterm, SIGTERM);
	ws.sig_term.data = &ws;
	ev_signal_start(ws.loop, &ws.sig_term);

	ws.link = rpc_conn_new(ws.loop, WORKER_LINK_FD, &limits, &link_ops, &ws);
	ws.session = api_session_new(&scfg, &link_session_ops, &ws, &ws);
	if (!ws.link || !ws.session) {
		log_error("cannot set up the link to vmmd");
		return 1;
	}
	ev_run(ws.loop, 0);

	api_session_free(ws.session);
	rpc_conn_free(ws.link);
	vm_free(ws.vm);
	return ws.start_failed ? 1 : 0;
}
