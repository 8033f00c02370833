/* SPDX-License-Identifier: MIT */
/* Shared by supervisor.c (workers vmmd starts) and reattach.c (workers it finds). */
#ifndef VMMD_SUPERVISOR_INTERNAL_H
#define VMMD_SUPERVISOR_INTERNAL_H

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

#include "api/conn.h"
#include "api/errors.h"
#include "vmmd/vmmd.h"

struct worker {
	struct daemon *d;
	struct vm_record *vm;	  /* NULL once detached (settled, being reaped) */
	struct worker *next_reaping;
	pid_t pid;
	struct rpc_conn *conn;
	bool adopted;	/* found by a restarted vmmd, not our child */
	ev_child child; /* our children */
	int pidfd;	/* adopted workers: readable once the process is gone; else -1 */
	ev_io pidfd_io;
	ev_timer kill_timer;
	ev_timer start_timer; /* worker-start-timeout, while worker.start is unanswered */
	enum vm_state idle_state; /* state to return to if the start fails */
	bool started;		  /* worker.start succeeded */
	bool start_failed;
	struct api_error start_error;
	bool reported; /* worker.exit received */
	enum vm_state final_state;
	char final_reason[512];
	uint32_t exit_status;
	bool has_exit_status;
	bool stopping;
	char stop_reason[256];
};

/*
 * Sends sig to the worker's process. An adopted worker is signalled through
 * its pidfd only: it is not our child, so its pid may name another process
 * as soon as it exits. A child of ours keeps its pid until we reap it, and
 * reaping frees the worker first.
 */
void worker_signal(struct worker *w, int sig);
/* Kills a worker vmmd cannot use (through worker_signal()); its VM settles
 * as crashed, with why as the reason, once the process is gone. */
void worker_abandon(struct worker *w, const char *why);
/* Stops the worker's watchers, closes its link and frees it. */
void worker_free(struct worker *w);
/* Settles the VM from the worker's report or wait status; deletes a
 * transient VM whose owner left. */
void worker_settle_and_tidy(struct worker *w, int status);
void worker_on_kill_timer(struct ev_loop *loop, ev_timer *t, int revents);
/* An adopted worker's pidfd became readable: the process is gone. */
void worker_on_adopted_exit(struct ev_loop *loop, ev_io *io, int revents);
extern const struct rpc_conn_ops worker_link_ops;

#endif
