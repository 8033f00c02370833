/* SPDX-License-Identifier: MIT */
/*
 * vmmd's control plane: the daemon, its client connections, the registry
 * of VMs with their state machine, and the supervision of worker processes.
 * Everything here runs on the main thread's libev loop.
 *
 *   daemon.c      sockets, signals, start-up and shutdown
 *   client.c      one JSON-RPC connection per client, notifications
 *   registry.c    VM records, vm_set_state(), events
 *   supervisor.c  worker processes: spawn, link, exit, kill
 *   methods.c     the method table and its handlers
 */
#ifndef VMMD_VMMD_H
#define VMMD_VMMD_H

#include <ev.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include "api/conn.h"
#include "api/session.h"
#include "util/error.h"
#include "vmmd/vmdef.h"

#define VMMD_VERSION "0.1.0"

/* Named limits; `vmmd --limit NAME=VALUE` sets them, docs/operations.md
 * lists them. */
struct daemon_limits {
	unsigned int max_clients;	  /* concurrent connections on the main socket */
	unsigned int max_ro_clients;	  /* the same on the read-only socket, apart */
	unsigned int max_clients_per_uid; /* concurrent connections of one user */
	unsigned int max_vms;		  /* defined VMs */
	unsigned int max_in_flight;	  /* requests in flight per connection */
	unsigned int max_vcpus;		  /* per VM; 0: what KVM allows */
	uint64_t max_memory_mib;	  /* per VM; 0: the host's RAM */
	size_t notify_soft_limit;	  /* queued output before a subscriber is dropped */
	size_t console_log_max;		  /* bytes per console log file before rotation */
	double idle_timeout_s;		  /* a connection doing nothing is closed */
	double partial_timeout_s;	  /* from a message's first byte to its end */
	double worker_start_timeout_s;	  /* worker.start reply */
	double worker_stop_timeout_s;	  /* power-off before SIGKILL */
	double worker_call_timeout_s;	  /* any other worker request */
};

#define VMMD_DEFAULT_LIMITS                                                           \
	{                                                                             \
		.max_clients = 1024, .max_ro_clients = 256,                          \
		.max_clients_per_uid = 256, .max_vms = 1024,                          \
		.max_in_flight = 64, .notify_soft_limit = 4 << 20,                    \
		.console_log_max = 1 << 20, .idle_timeout_s = 600,                    \
		.partial_timeout_s = 30, .worker_start_timeout_s = 30,                \
		.worker_stop_timeout_s = 5, .worker_call_timeout_s = 10,              \
	}

/* Sets a limit by its option name ("max-connections"); -EINVAL when unknown
 * or out of range, with the message in err. */
int daemon_limit_set(struct daemon_limits *l, const char *name, const char *value,
		     char *err, size_t err_size);
/* "name=value" lines of every limit, for --help and docs. */
void daemon_limits_print(const struct daemon_limits *l, FILE *out);

struct daemon_config {
	char socket_path[108];
	char ro_socket_path[108]; /* "" for none */
	char group[64];		  /* members get full access on the main socket */
	char state_dir[PATH_MAX];
	char run_dir[PATH_MAX];
	char self_exe[PATH_MAX]; /* binary re-executed as the worker */
	int ready_fd;		 /* write "READY\n" here once serving; -1: none */
	struct daemon_limits limits;
};

enum vm_state {
	VM_DEFINED,
	VM_STARTING,
	VM_RUNNING,
	VM_PAUSED, /* every vCPU parked; the worker and its state remain */
	VM_STOPPING,
	VM_STOPPED,
	VM_CRASHED,
	VM_BROKEN, /* its stored definition could not be loaded */
	VM_STATE_COUNT,
};

#define VM_STATE_BIT(s) (1u << (s))
/* States in which no worker exists. */
#define VM_STATES_IDLE \
	(VM_STATE_BIT(VM_DEFINED) | VM_STATE_BIT(VM_STOPPED) | VM_STATE_BIT(VM_CRASHED))

struct daemon;
struct client;
struct worker;

struct console_sub {
	struct console_sub *next;
	struct client *client;
};

/* A pending call waiting for a VM to reach an idle state (start error, stop). */
struct waiter {
	struct waiter *next;
	struct api_call *call;
};

struct vm_record {
	struct vm_record *prev, *next;
	struct daemon *d;
	struct vm_def *def;
	enum vm_state state;
	char reason[512];	/* why it last stopped, crashed or failed to start */
	uint32_t exit_status;	/* the debug-exit value; valid when has_exit_status */
	bool has_exit_status;
	struct worker *worker;	/* while starting, running or stopping */
	struct client *owner;	/* creator of a transient VM */
	struct console_sub *console_subs;
	struct waiter *start_waiters; /* answered when start succeeds or fails */
	struct waiter *stop_waiters;  /* answered when the worker is gone */
	bool delete_when_idle;	/* transient VM whose owner left */
	uint64_t started_ns;
	char console_log[PATH_MAX];
	char stored_boot_id[64]; /* boot id recorded with the stored runtime state */
	/* The members of its vm.list entry that change only with its state or
	 * definition, as JSON text; NULL until written, dropped on a change. */
	char *summary_text;
	size_t summary_len;
};

/* Who is on the other end of a connection, and what they may do. */
struct peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	enum api_access access;
	bool ro_socket; /* connected through the read-only socket */
	char reason[160];
};

struct listener {
	struct daemon *d;
	int fd;
	ev_io io;
	bool read_only;
	bool owned; /* ours to unlink (not socket-activated) */
	char path[108];
};

#define VMMD_MAX_LISTENERS 4

/* Accepting stopped while vmmd is out of file descriptors (listen.c):
 * the listeners leave the loop, a timer retries. */
struct accept_pause {
	ev_timer retry;
	bool active;
	bool warned;	     /* this pause was logged */
	double since;	     /* ev_now() when it began */
	double last_warning; /* ev_now() of the last warning; 0: none yet */
	unsigned int unwarned; /* pauses since then that were not logged */
};

struct client {
	struct client *prev, *next;
	struct daemon *d;
	struct rpc_conn *conn;
	struct api_session *session;
	struct peer peer;
	unsigned int id;
	unsigned int console_views; /* consoles attached */
	bool events;  /* subscribed with events.subscribe */
	bool dropped; /* being closed for falling behind */
	bool dead;    /* connection gone; freed from the idle reaper */
	struct client *next_dead;
};

struct daemon {
	struct ev_loop *loop;
	struct daemon_config cfg;
	struct host_limits host;
	struct listener listeners[VMMD_MAX_LISTENERS];
	unsigned int nr_listeners;
	struct accept_pause accept_pause;
	gid_t group; /* (gid_t)-1 when the group does not exist */
	ev_signal sig_term, sig_int;
	ev_timer sweep; /* idle and half-sent connections */
	ev_timer shutdown_timer;
	struct client *clients;
	unsigned int nr_clients;    /* on the main socket */
	unsigned int nr_ro_clients; /* on the read-only socket */
	struct client *dead_clients; /* freed outside callbacks by reaper */
	ev_idle reaper;
	unsigned int next_client_id;
	struct vm_record *vms;
	unsigned int nr_vms;
	struct worker *reaping; /* settled workers whose process has not exited */
	bool shutting_down;
	uint64_t start_ns;
	unsigned int attaches_pending; /* worker.attach calls not yet answered */
	bool ready_signalled;
};

/* daemon.c */
int daemon_run(const struct daemon_config *cfg);
void daemon_shutdown(struct daemon *d, const char *why);
/* Called whenever a worker goes away, so shutdown can finish. */
void daemon_check_shutdown_done(struct daemon *d);
/* Tells the service manager (if any) how many VMs there are. */
void daemon_update_status(struct daemon *d);
/* A reattach asked at start has its answer: READY once none is pending. */
void daemon_attach_settled(struct daemon *d);

/* listen.c */
int listeners_open(struct daemon *d);
void listeners_start(struct daemon *d);
void listeners_stop(struct daemon *d);
void listeners_close(struct daemon *d);
/* A descriptor was closed: accepting resumes at once if it was paused. */
void listeners_descriptor_freed(struct daemon *d);

/* client.c */
int client_accept(struct daemon *d, int fd, const struct peer *peer);
/* Closes connections idle or stalled beyond their limits. */
void clients_sweep(struct daemon *d);
void client_free(struct client *c);
/* Sends a notification (borrowed); drops a client that has fallen too far behind. */
void client_notify(struct client *c, json_object *msg);

/* registry.c */
const char *vm_state_name(enum vm_state s);
struct vm_record *vm_find(struct daemon *d, const char *name);
int vm_add(struct daemon *d, struct vm_def *def, struct client *owner, struct vm_record **ret);
void vm_remove(struct vm_record *vm);
/* The one place state changes: validates, logs, and notifies subscribers. */
/* The definition or state changed: the cached vm.list text is stale. */
void vm_summary_forget(struct vm_record *vm);
void vm_set_state(struct vm_record *vm, enum vm_state state, const char *reason);
/* Where a VM just loaded from the store starts (its stored state, or
 * broken): no transition, so nothing is logged, saved or sent. */
void vm_restore_state(struct vm_record *vm, enum vm_state state, const char *reason);
struct jtext;
/* vm.info's and vm.list's fields, written as JSON text (the one definition
 * of those fields); vm_info_json() gives the same as a json-c tree. Without
 * guest_contents, the reason leaves out the registers a vCPU's stop report
 * ends with, for peers without full access. */
void vm_info_write(const struct vm_record *vm, struct jtext *j, bool guest_contents);
void vm_summary_write(struct vm_record *vm, struct jtext *j);
json_object *vm_info_json(const struct vm_record *vm);
void vm_console_subscribe(struct vm_record *vm, struct client *c);
void vm_console_unsubscribe(struct vm_record *vm, struct client *c);
void vm_forget_client(struct daemon *d, struct client *c);
void events_broadcast(struct daemon *d, json_object *msg);
/* The same, but subscribers without full access get `limited` (the same
 * event without guest contents). */
void events_broadcast_limited(struct daemon *d, json_object *msg, json_object *limited);
int waiter_add(struct waiter **list, struct api_call *call);

/* store.c: STATE/vms/NAME.json */
int store_load(struct daemon *d);
/* Writes the record vm would have with def, state and reason (its exit
 * status is the VM's): 0, or a negative errno with the reason in err and
 * the file as it was. Transient VMs are never stored. */
int store_write_vm(const struct vm_record *vm, const struct vm_def *def, enum vm_state state,
		   const char *reason, struct error *err);
/* The same with what vm holds now; a broken VM's file is left alone. */
int store_save_vm(const struct vm_record *vm, struct error *err);
int store_remove_vm(const struct daemon *d, const char *name, struct error *err);

/* supervisor.c */
int worker_spawn(struct vm_record *vm, struct api_error *err);
/* Asks the worker to power off; kills it if it does not exit in time. */
void worker_stop(struct worker *w, const char *reason);
void worker_kill(struct worker *w, const char *reason);
/* Lets go of a worker that keeps running: its VM stays running for the next vmmd. */
void worker_detach(struct worker *w);
/* At start: adopt live workers from the run directory, settle the rest. */
void supervisor_reattach_all(struct daemon *d);
/* Forwards method(params) to the VM's worker and relays the answer to call. */
void worker_forward(struct worker *w, struct api_call *call, const char *method,
		    json_object *params);
/* The same, but on success sets the VM's state (with reason) and replies
 * with its info instead of the worker's result. */
void worker_forward_then_set(struct worker *w, struct api_call *call, const char *method,
			     enum vm_state state, const char *reason);
unsigned int workers_alive(struct daemon *d);
pid_t worker_pid(const struct worker *w);
struct rpc_conn *worker_conn(const struct worker *w);

/* methods.c */
extern const struct api_method vmmd_methods[];
extern const size_t vmmd_nr_methods;

#endif
