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

static bool was_live(enum vm_state s)
{
	return s == VM_RUNNING || s == VM_PAUSED || s == VM_STARTING || s == VM_STOPPING;
}

/*
 * The run directory shows a worker ran this VM after its state was last
 * stored: the previous vmmd started it and did not live to record more.
 * Replaying that start makes every later change one the state machine
 * allows (starting -> running, stopped or crashed).
 */
static void replay_start(struct vm_record *vm, const char *why)
{
	if (VM_STATES_IDLE & VM_STATE_BIT(vm->state))
		vm_set_state(vm, VM_STARTING, why);
}

/* A VM whose worker is gone without telling how its guest ended. */
static void settle_orphan(struct vm_record *vm, const char *why)
{
	if (was_live(vm->state))
		vm_set_state(vm, VM_CRASHED, why);
	else
		log_notice("VM '%s': %s; it stays %s", vm->def->name, why, vm_state_name(vm->state));
}

/* A worker reports running or paused; each step is an allowed transition. */
static void settle_reattached(struct vm_record *vm, bool paused, const char *why)
{
	if (!paused || vm->state == VM_STARTING)
		vm_set_state(vm, VM_RUNNING, why);
	if (paused)
		vm_set_state(vm, VM_PAUSED, why);
}

static void on_attach_reply(void *data, json_object *result, const struct api_error *error)
{
	struct worker *w = data;
	struct vm_record *vm = w->vm;
	json_object *pid;
	double started_at, now_real;
	struct timespec ts;
	char why[600];

	daemon_attach_settled(w->d);
	if (!vm)
		return;
	if (error || !json_object_object_get_ex(result, "pid", &pid) ||
	    json_object_get_int(pid) != w->pid ||
	    strcmp(api_param_string(result, "name", ""), vm->def->name) != 0) {
		snprintf(why, sizeof(why), "worker %d could not be reattached: %s", w->pid,
			 error ? error->message : "it answered for another VM");
		worker_abandon(w, why);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now_real = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	started_at = json_object_get_double(api_param_get(result, "started_at"));
	vm->started_ns = time_monotonic_ns() - (uint64_t)(MAX(now_real - started_at, 0.0) * 1e9);
	w->started = true;
	snprintf(why, sizeof(why), "reattached to worker %d", w->pid);
	/* It may have been paused when the previous vmmd left it. */
	settle_reattached(vm, strcmp(api_param_string(result, "state", ""), "paused") == 0, why);
	log_notice("VM '%s': %s", vm->def->name, why);
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
static int open_recorded_worker(const struct rundir_pid *rec, const char *name, int *ret_pidfd)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, rec->pid, 0);

	if (pidfd < 0)
		return negative_errno();
	if (!rundir_worker_alive(rec->pid, rec->start_time, name) || !pidfd_process_alive(pidfd))
		return -ESRCH;
	*ret_pidfd = TAKE_FD(pidfd);
	return 0;
}

/* Takes over a live worker (and its pidfd): the VM is its again, and the
 * worker settles it like one vmmd started. NULL without memory. */
static struct worker *worker_adopt(struct vm_record *vm, pid_t pid, int pidfd)
{
	struct daemon *d = vm->d;
	struct worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
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
	vm->worker = w;
	return w;
}

/* Connects to the adopted worker and asks it what it runs; on_attach_reply()
 * goes on from there. A worker that cannot be reached is killed. */
static void attach_worker(struct worker *w, const struct rundir_paths *paths)
{
	char why[PATH_MAX + 128];
	int fd, rc;

	rc = connect_worker(paths, &fd);
	if (rc < 0) {
		snprintf(why, sizeof(why), "worker %d could not be reattached: connecting to %s: %s",
			 w->pid, paths->sock, strerror(-rc));
		worker_abandon(w, why);
		return;
	}
	w->conn = rpc_conn_new(w->d->loop, fd, NULL, &worker_link_ops, w);
	if (!w->conn) {
		close(fd);
		worker_abandon(w, "out of memory reattaching its worker");
		return;
	}
	if (rpc_conn_call(w->conn, "worker.attach", NULL, w->d->cfg.limits.worker_call_timeout_s,
			  on_attach_reply, w) < 0)
		worker_abandon(w, "its worker could not be asked to reattach");
	else
		w->d->attaches_pending++;
}

/* Nothing that ran before the host's last boot runs now. */
static void settle_host_reboot(struct vm_record *vm)
{
	if (was_live(vm->state))
		vm_set_state(vm, VM_STOPPED, "the host rebooted while the VM was running");
}

static void apply_exit_record(struct vm_record *vm, const struct rundir_paths *paths)
{
	struct rundir_exit e;
	struct error err;

	replay_start(vm, "its worker left an exit record in the run directory");
	if (rundir_read_exit(paths, &e, &err) < 0) {
		settle_orphan(vm, err.msg);
	} else {
		vm->has_exit_status = e.has_exit_status;
		vm->exit_status = e.exit_status;
		vm_set_state(vm, strcmp(e.state, "stopped") == 0 ? VM_STOPPED : VM_CRASHED,
			     e.reason);
	}
	unlink(paths->exit);
	rundir_unpublish(paths);
}

/* A pid record of this boot: adopt the worker if it lives, else the VM crashed. */
static void reattach_recorded_worker(struct vm_record *vm, const struct rundir_pid *rec,
				     const struct rundir_paths *paths)
{
	struct worker *w;
	char why[160];
	int pidfd;

	snprintf(why, sizeof(why), "worker %d found in the run directory", rec->pid);
	if (open_recorded_worker(rec, vm->def->name, &pidfd) < 0) {
		rundir_unpublish(paths);
		replay_start(vm, why);
		snprintf(why, sizeof(why),
			 "worker %d ended while vmmd was not running, without a report", rec->pid);
		settle_orphan(vm, why);
		return;
	}
	w = worker_adopt(vm, rec->pid, pidfd);
	if (!w) {
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		close(pidfd);
		snprintf(why, sizeof(why), "worker %d killed: out of memory reattaching it", rec->pid);
		settle_orphan(vm, why);
		return;
	}
	replay_start(vm, why);
	attach_worker(w, paths);
}

static bool booted_since(const char *boot_id)
{
	char now[64];

	rundir_boot_id(now, sizeof(now));
	return boot_id[0] && now[0] && strcmp(boot_id, now) != 0;
}

/* What became of one VM while no vmmd watched it. */
static void reattach_one(struct vm_record *vm)
{
	struct rundir_paths paths;
	struct rundir_pid rec;
	struct error err;
	char why[ERROR_MSG_MAX + 64];
	int rc;

	if (vm->state == VM_BROKEN || rundir_paths(vm->d->cfg.run_dir, vm->def->name, &paths) < 0)
		return;
	if (access(paths.exit, F_OK) == 0) {
		apply_exit_record(vm, &paths);
		return;
	}
	rc = rundir_read_pid(&paths, &rec, &err);
	if (rc == 0 && booted_since(rec.boot_id)) {
		rundir_unpublish(&paths);
		settle_host_reboot(vm);
	} else if (rc == 0) {
		reattach_recorded_worker(vm, &rec, &paths);
	} else if (rc != -ENOENT) {
		snprintf(why, sizeof(why), "its worker's pid record cannot be read: %s", err.msg);
		settle_orphan(vm, why);
	} else if (booted_since(vm->stored_boot_id)) {
		settle_host_reboot(vm);
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
