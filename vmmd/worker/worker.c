/* SPDX-License-Identifier: MIT */
/*
 * The VM worker process. Its main thread runs a libev loop that serves the
 * link to vmmd (the same JSON-RPC layer as clients use) and collects what
 * the vCPU threads signal through one ev_async: console output to forward
 * and the end of the VM.
 *
 * A worker outlives the vmmd that started it. Once its VM runs it publishes
 * a socket and a pid file in the run directory (vmmd/rundir.h); if the link
 * to vmmd breaks, a persistent VM keeps running and a new vmmd reattaches
 * through that socket (worker.attach). A transient VM belongs to a client
 * of the old vmmd and is powered off instead. When the VM ends, the worker
 * records how in NAME.exit, withdraws its socket and pid file, reports
 * worker.exit if a vmmd is attached, and exits.
 */
#include "vmmd/worker/worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/conn.h"
#include "api/jsonrpc.h"
#include "api/session.h"
#include "util/base64.h"
#include "util/log.h"
#include "vmmd/rundir.h"
#include "vmmd/vmdef.h"
#include "vmmd/worker/vm.h"
#include "vmmd/worker/worker-internal.h"

/* The link inherited from the vmmd that started this worker. */
#define WORKER_LINK_FD 3
/* Console bytes per worker.console notification. */
#define CONSOLE_CHUNK (48 * 1024)
/* Guest output is gathered this long before it is forwarded: one message per
 * burst instead of one per UART write, and still imperceptible when typing. */
#define CONSOLE_FLUSH_DELAY_S 0.002


static const struct rpc_conn_ops link_ops;
static void on_link_closed(struct rpc_conn *c, const char *reason, void *userdata);
static const struct api_session_ops link_session_ops;
static struct api_session_config worker_session_config(void);

static bool linked(const struct worker_state *ws)
{
	return ws->link && rpc_conn_is_open(ws->link);
}

static void send_notification(struct worker_state *ws, const char *method, json_object *params)
{
	json_object *msg = jsonrpc_notification_new(method, params);

	if (linked(ws) && rpc_conn_send(ws->link, msg) < 0)
		log_warning("cannot send %s to vmmd", method);
	json_object_put(msg);
}

/* Pending output goes to vmmd, or nowhere while none is attached (the log
 * and the history ring already have it). */
static void forward_console(struct worker_state *ws)
{
	static uint8_t buf[CONSOLE_CHUNK];
	static char text[CONSOLE_CHUNK / 3 * 4 + 8];
	size_t n;

	if (!ws->vm)
		return;
	while ((n = console_take_pending(vm_console(ws->vm), buf, sizeof(buf))) > 0) {
		if (!linked(ws))
			continue;
		json_object *p = json_object_new_object();
		base64_encode(buf, n, text);
		json_object_object_add(p, "data", json_object_new_string(text));
		send_notification(ws, "worker.console", p);
	}
}

/* ---------------------------------------------------------------- the end */

static void record_exit(struct worker_state *ws, const struct vm_end *end)
{
	struct rundir_exit e = {
		.has_exit_status = end->has_exit_status,
		.exit_status = end->exit_status,
	};
	struct error err;

	if (!ws->published)
		return;
	snprintf(e.state, sizeof(e.state), "%s",
		 end->state == VM_END_STOPPED ? "stopped" : "crashed");
	snprintf(e.reason, sizeof(e.reason), "%s", end->reason);
	/* The exit record first: a scanning vmmd sees a live worker or its end. */
	if (rundir_write_exit(&ws->paths, &e, &err) < 0)
		log_error("cannot record how the VM ended: %s", err.msg);
	rundir_unpublish(&ws->paths);
	ws->published = false;
}

static void report_exit(struct worker_state *ws, const struct vm_end *end)
{
	json_object *p = json_object_new_object();

	json_object_object_add(p, "state", json_object_new_string(
						   end->state == VM_END_STOPPED ? "stopped" : "crashed"));
	json_object_object_add(p, "reason", json_object_new_string(end->reason));
	if (end->has_exit_status)
		json_object_object_add(p, "exit_status", json_object_new_int64(end->exit_status));
	send_notification(ws, "worker.exit", p);
	log_info("VM ended: %s", end->reason);
	if (linked(ws))
		rpc_conn_close_after_flush(ws->link);
	else
		ev_break(ws->loop, EVBREAK_ALL);
}

static void finish_vm(struct worker_state *ws, const struct vm_end *end)
{
	ws->ended = true;
	vm_join_vcpus(ws->vm);
	ev_timer_stop(ws->loop, &ws->console_flush);
	forward_console(ws);
	record_exit(ws, end);
	report_exit(ws, end);
}

static void on_console_flush(struct ev_loop *loop, ev_timer *t, int revents)
{
	forward_console(t->data);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	struct worker_state *ws = w->data;
	struct vm_end end;

	if (ws->vm && !ws->ended && vm_has_ended(ws->vm, &end)) {
		finish_vm(ws, &end);
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

static void power_off(struct worker_state *ws, const char *reason)
{
	if (ws->vm)
		vm_request_exit(ws->vm, VM_END_STOPPED, false, 0, reason);
	else
		ev_break(ws->loop, EVBREAK_ALL);
}

/* ---------------------------------------------------------------- the link */

static void drop_link(struct worker_state *ws)
{
	api_session_free(ws->session);
	ws->session = NULL;
	rpc_conn_free(ws->link);
	ws->link = NULL;
}

static int set_link(struct worker_state *ws, int fd)
{
	struct rpc_conn_limits limits = { .out_max = 64 << 20, .out_high = 32 << 20 };
	struct api_session_config scfg = worker_session_config();

	ws->link = rpc_conn_new(ws->loop, fd, &limits, &link_ops, ws);
	ws->session = api_session_new(&scfg, &link_session_ops, ws, ws);
	if (!ws->link || !ws->session) {
		drop_link(ws);
		return -ENOMEM;
	}
	return 0;
}

/* Only the user vmmd runs as (or root) may take over the VM. */
static bool peer_may_attach(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.uid == 0 || cred.uid == geteuid();
}

static void refuse_attach(int fd, const char *why)
{
	char line[512];
	int n = snprintf(line, sizeof(line),
			 "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32006,\"message\":\"%s\"}}\n",
			 why);
	ssize_t _unused_ w = send(fd, line, (size_t)n, MSG_NOSIGNAL);
	close(fd);
}

/*
 * A vmmd that exited has hung up its end of the link even when this loop
 * has not yet read the end of file: its successor may connect first.
 */
static bool link_peer_hung_up(const struct worker_state *ws)
{
	struct pollfd pfd = { .fd = rpc_conn_fd(ws->link), .events = POLLRDHUP };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void on_attach_connection(struct ev_loop *loop, ev_io *w, int revents)
{
	struct worker_state *ws = w->data;
	int fd = accept4(ws->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (!peer_may_attach(fd)) {
		log_warning("refused a connection from another user");
		refuse_attach(fd, "permission denied");
		return;
	}
	if (linked(ws) && link_peer_hung_up(ws))
		on_link_closed(ws->link, "it hung up", ws);
	if (linked(ws) || ws->ended) {
		refuse_attach(fd, "this worker is attached to another vmmd");
		return;
	}
	if (ws->link)
		drop_link(ws);
	if (set_link(ws, fd) < 0)
		log_error("cannot take the new link: out of memory");
	else
		log_notice("a vmmd connected");
}

static int publish(struct worker_state *ws, const char *run_dir, struct api_error *err)
{
	struct error e;

	if (rundir_paths(run_dir, ws->name, &ws->paths) < 0)
		return api_error_set(err, API_ERR_IO, "run directory %s: path too long", run_dir);
	if (rundir_prepare(run_dir, &e) < 0 || rundir_listen(&ws->paths, &ws->listen_fd, &e) < 0 ||
	    rundir_write_pid(&ws->paths, ws->name, &e) < 0)
		return api_error_set(err, API_ERR_IO, "%s", e.msg);
	/* A previous run's exit record no longer describes this VM. */
	unlink(ws->paths.exit);
	ws->published = true;
	ev_io_init(&ws->listen_io, on_attach_connection, ws->listen_fd, EV_READ);
	ws->listen_io.data = ws;
	ev_io_start(ws->loop, &ws->listen_io);
	return 0;
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
	{ .name = "run_dir", .type = API_T_STRING, .required = true, .max_len = 4096 },
	{ .name = "cpu", .type = API_T_OBJECT },
	{ 0 },
};

static void fail_start(struct worker_state *ws, struct api_call *call,
		       const struct api_error *err)
{
	log_error("VM '%s' failed to start: %s", ws->name, err->message);
	api_call_fail_error(call, err);
	ws->start_failed = true;
	rpc_conn_close_after_flush(ws->link);
}

static double realtime_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
	snprintf(ws->name, sizeof(ws->name), "%s", cfg.name);
	ws->transient = api_param_bool(params, "transient", false);
	if (vm_cpu_policy_from_json(api_param_get(params, "cpu"), &cfg.cpu, &err) < 0 ||
	    vm_create(&cfg, wake_main_loop, ws, &ws->vm, &err) < 0 ||
	    publish(ws, api_param_string(params, "run_dir", ""), &err) < 0 ||
	    vm_start(ws->vm, &err) < 0) {
		fail_start(ws, call, &err);
		return;
	}
	ws->definition = json_object_get(params);
	ws->started_at = realtime_now();
	r = json_object_new_object();
	json_object_object_add(r, "pid", json_object_new_int(getpid()));
	api_call_reply(call, r);
}

/* A new vmmd takes over: what it needs to know about this VM. */
static void w_attach(struct api_call *call, json_object *params, void *ctx)
{
	struct worker_state *ws = ctx;
	json_object *r;

	if (!ws->vm || ws->ended) {
		api_call_fail(call, API_ERR_WRONG_STATE, "no VM is running in this worker");
		return;
	}
	r = json_object_new_object();
	json_object_object_add(r, "name", json_object_new_string(ws->name));
	json_object_object_add(r, "pid", json_object_new_int(getpid()));
	json_object_object_add(r, "state",
			       json_object_new_string(vm_is_paused(ws->vm) ? "paused" : "running"));
	json_object_object_add(r, "started_at", json_object_new_double(ws->started_at));
	json_object_object_add(r, "definition", json_object_get(ws->definition));
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
	{ .name = "worker.attach", .handler = w_attach, .params = p_none },
	{ .name = "vm.stop", .handler = w_stop, .params = p_stop },
	{ .name = "console.write", .handler = w_console_write, .params = p_console_write },
	{ .name = "console.history", .handler = w_console_history, .params = p_none },
	{ .name = "vcpu.role", .handler = w_vcpu_role, .params = p_role },
	{ .name = "vm.translate", .handler = w_translate, .params = p_translate },
	{ .name = "vm.memory.read", .handler = w_memory_read, .params = p_memory_read },
	{ .name = "vcpu.registers", .handler = w_registers, .params = p_role },
	{ .name = "vcpu.cpuid", .handler = w_cpuid, .params = p_role },
	{ .name = "vm.pause", .handler = w_pause, .params = p_none },
	{ .name = "vm.resume", .handler = w_resume, .params = p_none },
	{ .name = "vm.reset", .handler = w_reset, .params = p_none },
	{ .name = "vcpu.state.save", .handler = w_vcpu_state_save, .params = p_vcpu_state_save },
	{ .name = "vcpu.state.load", .handler = w_vcpu_state_load, .params = p_vcpu_state_load },
};

static struct api_session_config worker_session_config(void)
{
	return (struct api_session_config){
		.methods = worker_methods,
		.nr_methods = sizeof(worker_methods) / sizeof(worker_methods[0]),
	};
}

/* ---------------------------------------------------------------- link callbacks */

static int link_send(void *conn, json_object *msg)
{
	struct worker_state *ws = conn;

	return ws->link ? rpc_conn_send(ws->link, msg) : -EPIPE;
}

static const struct api_session_ops link_session_ops = { .send = link_send };

static void on_link_message(struct rpc_conn *c, json_object *msg, void *userdata)
{
	struct worker_state *ws = userdata;

	if (ws->session)
		api_session_handle(ws->session, msg);
}

static void on_link_bad_message(struct rpc_conn *c, const struct api_error *err, void *userdata)
{
	struct worker_state *ws = userdata;

	if (ws->session)
		api_session_bad_message(ws->session, err);
}

static void on_link_closed(struct rpc_conn *c, const char *reason, void *userdata)
{
	struct worker_state *ws = userdata;

	if (ws->ended || ws->start_failed || !ws->vm) {
		ev_break(ws->loop, EVBREAK_ALL);
		return;
	}
	drop_link(ws);
	if (ws->transient) {
		log_notice("lost the link to vmmd (%s); powering off this transient VM", reason);
		power_off(ws, "vmmd went away and the VM was transient");
		return;
	}
	log_notice("lost the link to vmmd (%s); the VM keeps running until a vmmd reattaches",
		   reason);
}

static const struct rpc_conn_ops link_ops = {
	.message = on_link_message,
	.bad_message = on_link_bad_message,
	.closed = on_link_closed,
};

static void on_sigterm(struct ev_loop *loop, ev_signal *w, int revents)
{
	power_off(w->data, "worker received SIGTERM");
}

static void worker_cleanup(struct worker_state *ws)
{
	if (ws->listen_fd >= 0) {
		ev_io_stop(ws->loop, &ws->listen_io);
		close(ws->listen_fd);
	}
	if (ws->published)
		rundir_unpublish(&ws->paths);
	drop_link(ws);
	vm_free(ws->vm);
	json_object_put(ws->definition);
}

int worker_main(const char *name)
{
	struct worker_state ws = { .listen_fd = -1 };
	char ident[96];

	snprintf(ident, sizeof(ident), "vmmd-worker %s", name);
	/* Its level comes from --log-level; vmmd refused a bad $VMMD_LOG_LEVEL. */
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

	if (set_link(&ws, WORKER_LINK_FD) < 0) {
		log_error("cannot set up the link to vmmd");
		return 1;
	}
	ev_run(ws.loop, 0);
	worker_cleanup(&ws);
	return ws.start_failed ? 1 : 0;
}
