/* SPDX-License-Identifier: MIT */
/*
 * Supervision of VM workers. vmmd re-executes itself in worker mode for each
 * VM it starts, linked by a socketpair that carries JSON-RPC both ways:
 *
 *   vmmd -> worker   worker.start {definition}, vm.stop, console.write, ...
 *   worker -> vmmd   worker.console {data}, worker.exit {state, reason, ...}
 *
 * A VM settles into its final state when its guest can no longer run:
 * either the worker reported how it ended (worker.exit, sent once every
 * vCPU thread has been joined) or the worker process is gone without a word
 * ("crashed", with the wait status). Calls waiting on the VM (a vm.start
 * that failed, vm.stop) are answered at that moment, so a reply always
 * describes a settled VM. Tearing a KVM VM down takes the kernel several
 * milliseconds; a worker that has reported is detached from its VM and
 * reaped in the background, so that time is off every caller's path (the
 * daemon still waits for it before it exits).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/jsonrpc.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/time.h"
#include "vmmd/rundir.h"
#include "vmmd/supervisor-internal.h"
#include "vmmd/vmmd.h"

/* The socketpair end a worker finds on this descriptor. */
#define WORKER_LINK_FD 3


pid_t worker_pid(const struct worker *w)
{
	return w->pid;
}

struct rpc_conn *worker_conn(const struct worker *w)
{
	return w->conn;
}

unsigned int workers_alive(struct daemon *d)
{
	unsigned int n = 0;

	for (struct vm_record *vm = d->vms; vm; vm = vm->next)
		n += vm->worker != NULL;
	for (struct worker *w = d->reaping; w; w = w->next_reaping)
		n++;
	return n;
}

static void reaping_add(struct worker *w)
{
	w->next_reaping = w->d->reaping;
	w->d->reaping = w;
}

static void reaping_remove(struct worker *w)
{
	for (struct worker **pp = &w->d->reaping; *pp; pp = &(*pp)->next_reaping)
		if (*pp == w) {
			*pp = w->next_reaping;
			return;
		}
}

static void answer_waiters(struct waiter **list, const struct api_error *err,
			   const struct vm_record *vm)
{
	while (*list) {
		struct waiter *w = *list;
		*list = w->next;
		if (err)
			api_call_fail_error(w->call, err);
		else
			api_call_reply(w->call, vm_info_json(vm));
		free(w);
	}
}

static void describe_wait_status(int status, char *buf, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(buf, size, "worker killed by signal %d (%s)%s", WTERMSIG(status),
			 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
	else if (WIFEXITED(status))
		snprintf(buf, size, "worker exited with status %d without reporting why",
			 WEXITSTATUS(status));
	else
		snprintf(buf, size, "worker ended with wait status 0x%x", status);
}

void worker_signal(struct worker *w, int sig)
{
	int rc;

	if (w->adopted)
		rc = (int)syscall(SYS_pidfd_send_signal, w->pidfd, sig, NULL, 0);
	else
		rc = kill(w->pid, sig);
	if (rc < 0 && errno != ESRCH)
		log_warning("cannot send signal %d to worker %d: %s", sig, w->pid, strerror(errno));
}

void worker_abandon(struct worker *w, const char *why)
{
	log_error("VM '%s': %s; killing it", w->vm->def->name, why);
	w->reported = true;
	w->final_state = VM_CRASHED;
	snprintf(w->final_reason, sizeof(w->final_reason), "%s", why);
	w->has_exit_status = false;
	worker_signal(w, SIGKILL);
}

void worker_free(struct worker *w)
{
	ev_timer_stop(w->d->loop, &w->kill_timer);
	ev_timer_stop(w->d->loop, &w->start_timer);
	if (w->adopted) {
		ev_io_stop(w->d->loop, &w->pidfd_io);
		closep(&w->pidfd);
	} else {
		ev_child_stop(w->d->loop, &w->child);
	}
	rpc_conn_free(w->conn);
	free(w);
}

static void notify_worker_crashed(const struct worker *w, const char *name, const char *reason)
{
	json_object *p = json_object_new_object();
	json_object *msg;
	char when[40];

	time_format_rfc3339(when, sizeof(when));
	json_object_object_add(p, "name", json_object_new_string(name));
	json_object_object_add(p, "pid", json_object_new_int(w->pid));
	json_object_object_add(p, "reason", json_object_new_string(reason));
	json_object_object_add(p, "time", json_object_new_string(when));
	msg = jsonrpc_notification_new("vm.worker-crashed", p);
	events_broadcast(w->d, msg);
	json_object_put(msg);
}

/* Decides the VM's final state: from the worker's report, or from the wait
 * status of a worker that died without one. Detaches the worker. */
static void settle_vm(struct worker *w, int status)
{
	struct vm_record *vm = w->vm;
	struct api_error err;
	char reason[512];

	vm->worker = NULL;
	w->vm = NULL;
	vm->has_exit_status = false;
	if (w->start_failed) {
		vm_set_state(vm, w->idle_state, w->start_error.message);
		answer_waiters(&vm->start_waiters, &w->start_error, vm);
		answer_waiters(&vm->stop_waiters, NULL, vm);
		return;
	}
	if (w->reported) {
		vm->exit_status = w->exit_status;
		vm->has_exit_status = w->has_exit_status;
		vm_set_state(vm, w->final_state, w->final_reason);
	} else if (w->stopping && w->stop_reason[0]) {
		snprintf(reason, sizeof(reason), "%s", w->stop_reason);
		vm_set_state(vm, VM_STOPPED, reason);
	} else {
		if (w->adopted) /* not our child: no wait status to tell */
			snprintf(reason, sizeof(reason), "worker %d ended without reporting why", w->pid);
		else
			describe_wait_status(status, reason, sizeof(reason));
		notify_worker_crashed(w, vm->def->name, reason);
		vm_set_state(vm, VM_CRASHED, reason);
	}
	api_error_set(&err, API_ERR_WORKER, "VM '%s' %s before it finished starting: %s",
		      vm->def->name, vm_state_name(vm->state), vm->reason);
	answer_waiters(&vm->start_waiters, &err, vm);
	answer_waiters(&vm->stop_waiters, NULL, vm);
}

void worker_settle_and_tidy(struct worker *w, int status)
{
	struct vm_record *vm = w->vm;

	settle_vm(w, status);
	if (vm->delete_when_idle)
		vm_remove(vm);
}

static void worker_gone(struct worker *w, int status)
{
	struct daemon *d = w->d;

	log_debug("worker %d exited (status 0x%x)", w->pid, status);
	if (w->vm)
		worker_settle_and_tidy(w, status);
	else
		reaping_remove(w);
	worker_free(w);
	daemon_check_shutdown_done(d);
}

/* The process is gone, but its last words (worker.exit) may still sit in
 * the link unread: SIGCHLD can be handled before the socket is. */
static void read_last_words(struct worker *w)
{
	if (w->conn && rpc_conn_is_open(w->conn))
		rpc_conn_drain(w->conn);
}

static void on_child_exit(struct ev_loop *loop, ev_child *c, int revents)
{
	struct worker *w = c->data;

	ev_child_stop(loop, c);
	read_last_words(w);
	worker_gone(w, c->rstatus);
}

void worker_on_adopted_exit(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = io->data;

	ev_io_stop(loop, io);
	read_last_words(w);
	worker_gone(w, 0);
}

void worker_on_kill_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	log_warning("worker %d did not exit within %g s (worker-stop-timeout); killing it", w->pid,
		    w->d->cfg.limits.worker_stop_timeout_s);
	worker_signal(w, SIGKILL);
}

static void arm_kill_timer(struct worker *w)
{
	if (ev_is_active(&w->kill_timer))
		return;
	ev_timer_set(&w->kill_timer, w->d->cfg.limits.worker_stop_timeout_s, 0);
	ev_timer_start(w->d->loop, &w->kill_timer);
}

static void relay_console(struct worker *w, json_object *params)
{
	struct vm_record *vm = w->vm;
	json_object *data = api_param_get(params, "data");
	json_object *p, *msg;
	struct console_sub *s, *next;

	if (!vm->console_subs || !json_object_is_type(data, json_type_string))
		return;
	p = json_object_new_object();
	json_object_object_add(p, "name", json_object_new_string(vm->def->name));
	json_object_object_add(p, "data", json_object_get(data));
	msg = jsonrpc_notification_new("vm.console.output", p);
	for (s = vm->console_subs; s; s = next) {
		next = s->next;
		client_notify(s->client, msg);
	}
	json_object_put(msg);
}

static void record_exit_report(struct worker *w, json_object *params)
{
	const char *state = api_param_string(params, "state", "crashed");
	json_object *status = api_param_get(params, "exit_status");

	w->reported = true;
	w->final_state = strcmp(state, "stopped") == 0 ? VM_STOPPED : VM_CRASHED;
	snprintf(w->final_reason, sizeof(w->final_reason), "%s",
		 api_param_string(params, "reason", "worker exited"));
	w->has_exit_status = json_object_is_type(status, json_type_int);
	w->exit_status = w->has_exit_status ? (uint32_t)json_object_get_int64(status) : 0;
	/* The guest can no longer run: settle now, reap the process later. */
	arm_kill_timer(w);
	if (w->started) {
		reaping_add(w);
		worker_settle_and_tidy(w, 0);
	}
}

static void on_worker_message(struct rpc_conn *c, json_object *msg, void *userdata)
{
	struct worker *w = userdata;
	struct jsonrpc_msg m;
	json_object *id;
	struct api_error err;

	if (!w->vm)
		return; /* detached: its VM has settled */
	if (jsonrpc_classify(msg, &m, &id, &err) < 0 || m.kind != JSONRPC_NOTIFICATION) {
		log_warning("VM '%s': ignoring unexpected message from worker", w->vm->def->name);
		return;
	}
	if (strcmp(m.method, "worker.console") == 0)
		relay_console(w, m.params);
	else if (strcmp(m.method, "worker.exit") == 0)
		record_exit_report(w, m.params);
	else
		log_warning("VM '%s': unknown notification '%s' from worker", w->vm->def->name,
			    m.method);
}

static void on_worker_bad_message(struct rpc_conn *c, const struct api_error *err, void *userdata)
{
	struct worker *w = userdata;

	log_warning("worker %d: malformed message: %s", w->pid, err->message);
}

static void on_worker_closed(struct rpc_conn *c, const char *reason, void *userdata)
{
	struct worker *w = userdata;

	log_debug("worker %d: link closed: %s", w->pid, reason);
	/* The process normally exits right after; make sure it does. */
	arm_kill_timer(w);
}

const struct rpc_conn_ops worker_link_ops = {
	.message = on_worker_message,
	.bad_message = on_worker_bad_message,
	.closed = on_worker_closed,
};

static void on_start_reply(void *data, json_object *result, const struct api_error *error)
{
	struct worker *w = data;
	struct vm_record *vm = w->vm;

	ev_timer_stop(w->d->loop, &w->start_timer);
	if (!vm || w->start_failed)
		return; /* settled, or the deadline passed and the worker is being killed */
	if (error) {
		w->start_failed = true;
		w->start_error = *error;
		if (error->code == API_ERR_WORKER)
			api_error_set(&w->start_error, API_ERR_WORKER, "VM '%s' failed to start: %s",
				      vm->def->name, error->message);
		arm_kill_timer(w);
		return;
	}
	w->started = true;
	if (vm->state != VM_STARTING)
		return; /* stopped while starting */
	vm->started_ns = time_monotonic_ns();
	vm_set_state(vm, VM_RUNNING, "started");
	answer_waiters(&vm->start_waiters, NULL, vm);
	/* The guest may have ended before the start reply was read. */
	if (w->reported) {
		reaping_add(w);
		worker_settle_and_tidy(w, 0);
	}
}

/* worker-start-timeout: the worker has not built and started the VM in time
 * (stuck in the kernel, say, opening a console log that is a FIFO nobody
 * reads). It is killed; the VM settles back into its previous state when the
 * process is gone, and vm.start fails with why. */
static void on_start_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;
	struct vm_record *vm = w->vm;

	if (!vm || w->started || w->start_failed || w->stopping)
		return;
	w->start_failed = true;
	api_error_set(&w->start_error, API_ERR_WORKER,
		      "VM '%s' failed to start: worker %d did not start it within %g s (worker-start-timeout)",
		      vm->def->name, w->pid, w->d->cfg.limits.worker_start_timeout_s);
	log_error("%s; killing it", w->start_error.message);
	worker_kill(w, "it did not start in time");
}

static json_object *start_params(const struct vm_record *vm)
{
	json_object *p = vm_def_to_json(vm->def);

	json_object_object_add(p, "run_dir", json_object_new_string(vm->d->cfg.run_dir));
	json_object_object_add(p, "console_log", json_object_new_string(vm->console_log));
	json_object_object_add(p, "console_log_max",
			       json_object_new_int64((int64_t)vm->d->cfg.limits.console_log_max));
	return p;
}

static void exec_worker(const struct daemon *d, const struct vm_record *vm, int link_fd)
{
	static const char *const level_names[] = { [LOG_LEVEL_ERR] = "err",
		[LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_NOTICE] = "notice",
		[LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug" };
	char *argv[] = { "vmmd", "--log-level", (char *)level_names[log_get_max_level()],
			 "--worker", vm->def->name, NULL };
	sigset_t none;

	/* Own session: a Ctrl-C at vmmd's terminal must not reach the guests. */
	setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (link_fd == WORKER_LINK_FD) {
		fcntl(link_fd, F_SETFD, 0);
	} else if (dup2(link_fd, WORKER_LINK_FD) < 0) {
		_exit(127);
	}
	syscall(SYS_close_range, WORKER_LINK_FD + 1, ~0U, 0);
	execv(d->cfg.self_exe, argv);
	_exit(127);
}

int worker_spawn(struct vm_record *vm, struct api_error *err)
{
	struct daemon *d = vm->d;
	struct worker *w;
	int sv[2];
	pid_t pid;

	w = calloc(1, sizeof(*w));
	if (!w)
		return api_error_set(err, API_ERR_INTERNAL, "out of memory");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		int e = errno;
		free(w);
		return api_error_set(err, API_ERR_RESOURCE_LIMIT, "socketpair for VM '%s': %s",
				     vm->def->name, strerror(e));
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		free(w);
		return api_error_set(err, API_ERR_RESOURCE_LIMIT, "fork of worker for VM '%s': %s",
				     vm->def->name, strerror(e));
	}
	if (pid == 0)
		exec_worker(d, vm, sv[1]);

	close(sv[1]);
	w->d = d;
	w->vm = vm;
	w->pid = pid;
	w->pidfd = -1;
	w->idle_state = vm->state;
	ev_child_init(&w->child, on_child_exit, pid, 0);
	w->child.data = w;
	ev_child_start(d->loop, &w->child);
	ev_init(&w->kill_timer, worker_on_kill_timer);
	w->kill_timer.data = w;
	ev_timer_init(&w->start_timer, on_start_timeout, d->cfg.limits.worker_start_timeout_s, 0);
	w->start_timer.data = w;
	w->conn = rpc_conn_new(d->loop, sv[0], NULL, &worker_link_ops, w);
	vm->worker = w;
	if (w->conn && rpc_conn_call(w->conn, "worker.start", start_params(vm), 0, on_start_reply,
				     w) == 0) {
		ev_timer_start(d->loop, &w->start_timer);
	} else {
		/* The child exits on its own when the link is gone; settle then. */
		w->start_failed = true;
		api_error_set(&w->start_error, API_ERR_WORKER, "VM '%s': cannot talk to its worker",
			      vm->def->name);
		worker_kill(w, "link to worker failed");
	}
	log_info("VM '%s': worker %d started", vm->def->name, pid);
	return 0;
}

static void on_stop_reply(void *data, json_object *result, const struct api_error *error)
{
	struct worker *w = data;

	if (error)
		log_warning("worker %d did not confirm power-off: %s", w->pid, error->message);
}

static json_object *stop_params(const char *reason)
{
	json_object *p = json_object_new_object();

	json_object_object_add(p, "reason", json_object_new_string(reason));
	return p;
}

void worker_stop(struct worker *w, const char *reason)
{
	if (w->stopping)
		return;
	w->stopping = true;
	snprintf(w->stop_reason, sizeof(w->stop_reason), "%s", reason);
	if (w->vm->state == VM_RUNNING || w->vm->state == VM_PAUSED ||
	    w->vm->state == VM_STARTING)
		vm_set_state(w->vm, VM_STOPPING, reason);
	arm_kill_timer(w);
	if (!w->conn || !rpc_conn_is_open(w->conn) ||
	    rpc_conn_call(w->conn, "vm.stop", stop_params(reason), 0, on_stop_reply, w) < 0)
		worker_signal(w, SIGKILL);
}

void worker_kill(struct worker *w, const char *reason)
{
	if (!w->stopping) {
		w->stopping = true;
		snprintf(w->stop_reason, sizeof(w->stop_reason), "%s", reason);
	}
	worker_signal(w, SIGKILL);
}

/*
 * A request forwarded to a worker. Its caller gets the worker's answer or,
 * once worker-call-timeout passes, an error. The call itself stays pending
 * until the worker answers or goes away: a vm.pause or vm.resume that a
 * worker carries out late still changes what its VM is doing.
 */
struct forward {
	struct api_call *call; /* NULL once answered */
	struct worker *w;
	ev_timer deadline;
	char method[32];
	char name[VM_NAME_MAX + 1];
	bool set_state; /* on success: vm_set_state(state) and reply vm.info */
	enum vm_state state;
	char reason[64];
};

/* What the worker's answer to vm.pause, vm.resume or vm.reset ({"paused":
 * bool}) says the VM is doing; fallback without one. */
static enum vm_state reported_state(json_object *result, enum vm_state fallback)
{
	json_object *paused = api_param_get(result, "paused");

	if (!json_object_is_type(paused, json_type_boolean))
		return fallback;
	return json_object_get_boolean(paused) ? VM_PAUSED : VM_RUNNING;
}

/* An answer after the caller was told the worker timed out. */
static void late_answer(struct forward *f, json_object *result, const struct api_error *error)
{
	struct vm_record *vm = f->w->vm;

	if (error)
		return;
	log_notice("VM '%s': worker %d answered %s after the worker-call-timeout", f->name,
		   f->w->pid, f->method);
	if (f->set_state && vm && (vm->state == VM_RUNNING || vm->state == VM_PAUSED))
		vm_set_state(vm, reported_state(result, f->state), f->reason);
}

static void on_forward_reply(void *data, json_object *result, const struct api_error *error)
{
	struct forward *f = data;
	struct vm_record *vm = f->w->vm;

	ev_timer_stop(f->w->d->loop, &f->deadline);
	if (!f->call) {
		late_answer(f, result, error);
	} else if (error) {
		api_call_fail_error(f->call, error);
	} else if (f->set_state && vm) {
		vm_set_state(vm, f->state, f->reason);
		api_call_reply(f->call, vm_info_json(vm));
	} else {
		api_call_reply(f->call, json_object_get(result));
	}
	free(f);
}

static void on_forward_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct forward *f = t->data;

	api_call_fail(f->call, API_ERR_WORKER,
		      "VM '%s': worker %d did not answer %s within %g s (worker-call-timeout)",
		      f->name, f->w->pid, f->method, f->w->d->cfg.limits.worker_call_timeout_s);
	f->call = NULL;
}

static void forward(struct worker *w, struct api_call *call, const char *method,
		    json_object *params, struct forward *f)
{
	int rc;

	if (!f) {
		json_object_put(params);
		api_call_fail(call, API_ERR_INTERNAL, "out of memory");
		return;
	}
	f->call = call;
	f->w = w;
	snprintf(f->method, sizeof(f->method), "%s", method);
	snprintf(f->name, sizeof(f->name), "%s", w->vm->def->name);
	ev_timer_init(&f->deadline, on_forward_deadline, w->d->cfg.limits.worker_call_timeout_s, 0);
	f->deadline.data = f;
	rc = rpc_conn_call(w->conn, method, params, 0, on_forward_reply, f);
	if (rc < 0) {
		free(f);
		api_call_fail(call, rc == -ENOBUFS ? API_ERR_RESOURCE_LIMIT : API_ERR_WORKER,
			      "VM '%s': cannot reach its worker: %s", w->vm->def->name,
			      strerror(-rc));
		return;
	}
	ev_timer_start(w->d->loop, &f->deadline);
}

void worker_forward(struct worker *w, struct api_call *call, const char *method,
		    json_object *params)
{
	forward(w, call, method, params, calloc(1, sizeof(struct forward)));
}

void worker_forward_then_set(struct worker *w, struct api_call *call, const char *method,
			     enum vm_state state, const char *reason)
{
	struct forward *f = calloc(1, sizeof(*f));

	if (f) {
		f->set_state = true;
		f->state = state;
		snprintf(f->reason, sizeof(f->reason), "%s", reason);
	}
	forward(w, call, method, NULL, f);
}
