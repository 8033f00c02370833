/* SPDX-License-Identifier: MIT */
/*
 * Reattaching after a restart: what a new vmmd does with the workers and
 * exit records a previous one left in the run directory (rundir.h), and
 * how vmmd lets go of workers when it stops.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/macro.h"
#include "util/time.h"
#include "vmmd/rundir.h"
#include "vmmd/supervisor-internal.h"
#include "vmmd/vmmd.h"

void worker_detach(struct worker *w)
{
	struct vm_record *vm = w->vm;

	log_info("VM '%s': leaving worker %d running", vm->def->name, w->pid);
	vm->worker = NULL;
	w->vm = NULL;
	worker_free(w);
}

static int connect_worker(const struct rundir_paths *p, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(p->sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, p->sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int rc = negative_errno();
		close(fd);
		return rc;
	}
	*ret_fd = fd;
	return 0;
}

/* Marks a VM whose worker is gone, with what the run directory says. */
static void settle_orphan(struct vm_record *vm, const char *why)
{
	if (vm->state == VM_STARTING || vm->state == VM_STOPPING)
		vm->state = VM_RUNNING; /* from here, any ending is allowed */
	vm_set_state(vm, VM_CRASHED, why);
}

static void on_attach_reply(void *data, json_object *result, const struct api_error *error)
{
	struct worker *w = data;
	struct vm_record *vm = w->vm;
	json_object *pid;
	double started_at, now_real;
	struct timespec ts;
	char why[600];

	if (!vm)
		return;
	if (error || !json_object_object_get_ex(result, "pid", &pid) ||
	    json_object_get_int(pid) != w->pid ||
	    strcmp(api_param_string(result, "name", ""), vm->def->name) != 0) {
		snprintf(why, sizeof(why), "worker %d could not be reattached: %s", w->pid,
			 error ? error->message : "it answered for another VM");
		log_error("VM '%s': %s; killing it", vm->def->name, why);
		worker_signal(w, SIGKILL);
		return; /* settles when the pidfd reports the exit */
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now_real = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	started_at = json_object_get_double(api_param_get(result, "started_at"));
	vm->started_ns = time_monotonic_ns() - (uint64_t)(MAX(now_real - started_at, 0.0) * 1e9);
	w->started = true;
	/* It may have been paused when the previous vmmd left it. */
	vm->state = strcmp(api_param_string(result, "state", ""), "paused") == 0 ? VM_PAUSED
										: VM_RUNNING;
	log_notice("VM '%s': reattached to worker %d", vm->def->name, w->pid);
}

static bool pidfd_process_alive(int pidfd)
{
	return syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0;
}

/*
 * A pidfd for the worker a pid record names; -ESRCH when no such worker
 * lives. The pidfd is opened before /proc/PID is checked, and the process
 * it holds must still be alive after the check: then /proc/PID described
 * that very process throughout, and a pid reused in between cannot pass.
 * From here on the worker is only ever signalled through the pidfd.
 */
static int open_recorded_worker(pid_t pid, uint64_t start_time, const char *name,
				int *ret_pidfd)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (pidfd < 0)
		return negative_errno();
	if (!rundir_worker_alive(pid, start_time, name) || !pidfd_process_alive(pidfd))
		return -ESRCH;
	*ret_pidfd = TAKE_FD(pidfd);
	return 0;
}

static int adopt(struct vm_record *vm, pid_t pid, int pidfd, const struct rundir_paths *paths)
{
	struct daemon *d = vm->d;
	struct worker *w;
	int fd;

	if (connect_worker(paths, &fd) < 0)
		return -ECONNREFUSED;
	w = calloc(1, sizeof(*w));
	if (!w) {
		close(fd);
		return -ENOMEM;
	}
	w->d = d;
	w->vm = vm;
	w->pid = pid;
	w->adopted = true;
	w->pidfd = pidfd;
	w->idle_state = VM_CRASHED;
	ev_io_init(&w->pidfd_io, worker_on_adopted_exit, pidfd, EV_READ);
	w->pidfd_io.data = w;
	ev_io_start(d->loop, &w->pidfd_io);
	ev_init(&w->kill_timer, worker_on_kill_timer);
	w->kill_timer.data = w;
	w->conn = rpc_conn_new(d->loop, fd, NULL, &worker_link_ops, w);
	vm->worker = w;
	if (vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
		/* The stored state lags behind a start that completed. */
		vm->state = VM_RUNNING;
	}
	if (!w->conn || rpc_conn_call(w->conn, "worker.attach", NULL,
				      d->cfg.limits.worker_call_timeout_s, on_attach_reply, w) < 0)
		worker_signal(w, SIGKILL);
	return 0;
}

static void apply_exit_record(struct vm_record *vm, const struct rundir_paths *paths)
{
	struct rundir_exit e;
	struct error err;

	if (rundir_read_exit(paths, &e, &err) < 0) {
		settle_orphan(vm, err.msg);
	} else {
		if (vm->state != VM_RUNNING)
			vm->state = VM_RUNNING;
		vm->has_exit_status = e.has_exit_status;
		vm->exit_status = e.exit_status;
		vm_set_state(vm, strcmp(e.state, "stopped") == 0 ? VM_STOPPED : VM_CRASHED,
			     e.reason);
	}
	unlink(paths->exit);
	rundir_unpublish(paths);
}

static bool was_live(enum vm_state s)
{
	return s == VM_RUNNING || s == VM_PAUSED || s == VM_STARTING || s == VM_STOPPING;
}

/* What became of one VM while no vmmd watched it. */
static void reattach_one(struct vm_record *vm)
{
	struct rundir_paths paths;
	char boot_id[64], why[600];
	uint64_t start_time;
	struct error err;
	int pidfd;
	pid_t pid;

	if (vm->state == VM_BROKEN || rundir_paths(vm->d->cfg.run_dir, vm->def->name, &paths) < 0)
		return;
	if (access(paths.exit, F_OK) == 0) {
		apply_exit_record(vm, &paths);
		return;
	}
	if (rundir_read_pid(&paths, &pid, &start_time, &err) == 0) {
		if (open_recorded_worker(pid, start_time, vm->def->name, &pidfd) == 0) {
			if (adopt(vm, pid, pidfd, &paths) == 0)
				return;
			close(pidfd);
		}
		rundir_unpublish(&paths);
		snprintf(why, sizeof(why), "worker %d ended while vmmd was not running, without a report",
			 pid);
		settle_orphan(vm, why);
		return;
	}
	if (!was_live(vm->state))
		return;
	store_read_boot_id(boot_id, sizeof(boot_id));
	if (vm->stored_boot_id[0] && strcmp(boot_id, vm->stored_boot_id) != 0) {
		vm->state = VM_RUNNING;
		vm_set_state(vm, VM_STOPPED, "the host rebooted while the VM was running");
	} else {
		settle_orphan(vm, "its worker is gone and left no record");
	}
}

void supervisor_reattach_all(struct daemon *d)
{
	struct vm_record *vm, *next;

	for (vm = d->vms; vm; vm = next) {
		next = vm->next;
		reattach_one(vm);
	}
}
