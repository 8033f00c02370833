/* SPDX-License-Identifier: MIT */
/*
 * What a worker leaves in the run directory so a new vmmd can find it:
 *
 *   RUN/vms/NAME.sock   the worker's listening socket (0600)
 *   RUN/vms/NAME.pid    {"pid": P, "start_time": T, "name": NAME, "boot_id": B}
 *   RUN/vms/NAME.exit   {"state": "stopped"|"crashed", "reason": ...,
 *                        "exit_status": V|null, "time": ...}
 *
 * T is the process start time in clock ticks since boot (field 22 of
 * /proc/P/stat); a pid is adopted only if it still names a process started
 * at T, so a pid reused by another process is never taken for a worker.
 * B is the host's boot id: a record from an earlier boot (a run directory
 * that is not a tmpfs) names no worker at all.
 * The worker writes NAME.exit before it removes NAME.pid, so a reader sees
 * either a live worker or how it ended.
 */
#ifndef VMMD_RUNDIR_H
#define VMMD_RUNDIR_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

struct rundir_paths {
	char dir[PATH_MAX];
	char sock[PATH_MAX];
	char pid[PATH_MAX];
	char exit[PATH_MAX];
};

struct rundir_pid {
	pid_t pid;
	uint64_t start_time;
	char boot_id[64]; /* "" in records of workers that did not write one */
};

struct rundir_exit {
	char state[16];
	char reason[768];
	bool has_exit_status;
	uint32_t exit_status; /* the debug-exit value, up to 32 bits */
};

int rundir_paths(const char *run_dir, const char *name, struct rundir_paths *ret);

/* Creates RUN/vms (0700) if needed. */
int rundir_prepare(const char *run_dir, struct error *err);

/* Binds and listens on the worker socket, replacing a stale one. */
int rundir_listen(const struct rundir_paths *p, int *ret_fd, struct error *err);

int rundir_write_pid(const struct rundir_paths *p, const char *name, struct error *err);
/* -ENOENT (err filled) when there is no pid record. */
int rundir_read_pid(const struct rundir_paths *p, struct rundir_pid *ret, struct error *err);

int rundir_write_exit(const struct rundir_paths *p, const struct rundir_exit *e,
		      struct error *err);
int rundir_read_exit(const struct rundir_paths *p, struct rundir_exit *ret, struct error *err);

/* Removes NAME.sock and NAME.pid (what says "a worker lives here"). */
void rundir_unpublish(const struct rundir_paths *p);

/* The host's boot id (/proc/sys/kernel/random/boot_id), "" if unknown. */
void rundir_boot_id(char *buf, size_t size);

/* Start time of pid in clock ticks since boot, from /proc/PID/stat. */
int process_start_time(pid_t pid, uint64_t *ret);

/* True if pid is a live vmmd worker for `name` started at start_time. */
bool rundir_worker_alive(pid_t pid, uint64_t start_time, const char *name);

#endif
