/* SPDX-License-Identifier: MIT */
/* Shared by worker.c (the process and its link) and control.c (methods on the VM). */
#ifndef VMMD_WORKER_WORKER_INTERNAL_H
#define VMMD_WORKER_WORKER_INTERNAL_H

#include <ev.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "api/conn.h"
#include "api/session.h"
#include "vmmd/rundir.h"
#include "vmmd/vmdef.h"

struct worker_state {
	struct ev_loop *loop;
	struct rpc_conn *link; /* NULL while no vmmd is attached */
	struct api_session *session;
	struct vm *vm;
	json_object *definition; /* worker.start's params */
	struct rundir_paths paths;
	int listen_fd;
	ev_io listen_io;
	ev_async wake;
	ev_timer console_flush;
	ev_signal sig_term;
	char name[VM_NAME_MAX + 1];
	bool transient;
	bool published;
	bool ended;
	bool start_failed;
	double started_at; /* CLOCK_REALTIME seconds */
};

/* control.c: method handlers (ctx is the worker_state) and their params. */
void w_vcpu_role(struct api_call *call, json_object *params, void *ctx);
void w_registers(struct api_call *call, json_object *params, void *ctx);
void w_cpuid(struct api_call *call, json_object *params, void *ctx);
void w_translate(struct api_call *call, json_object *params, void *ctx);
void w_memory_read(struct api_call *call, json_object *params, void *ctx);
void w_pause(struct api_call *call, json_object *params, void *ctx);
void w_resume(struct api_call *call, json_object *params, void *ctx);
void w_reset(struct api_call *call, json_object *params, void *ctx);
/* state.c */
void w_vcpu_state_save(struct api_call *call, json_object *params, void *ctx);
void w_vcpu_state_load(struct api_call *call, json_object *params, void *ctx);
extern const struct api_param p_vcpu_state_save[];
extern const struct api_param p_vcpu_state_load[];
extern const struct api_param p_role[];
extern const struct api_param p_translate[];
extern const struct api_param p_memory_read[];

#endif
