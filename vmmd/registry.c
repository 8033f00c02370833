/* SPDX-License-Identifier: MIT */
/*
 * The registry of VMs and their state machine. vm_set_state() is the only
 * writer of vm->state: it refuses transitions the table below does not
 * allow, logs every change and tells subscribers. The one exception,
 * vm_restore_state(), sets where a VM just loaded from the store starts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jsonrpc.h"
#include "util/jsontext.h"
#include "util/log.h"
#include "util/path.h"
#include "util/time.h"
#include "vcpu/vcpu.h"
#include "vmmd/vmmd.h"

static const char *const state_names[VM_STATE_COUNT] = {
	[VM_DEFINED] = "defined",   [VM_STARTING] = "starting", [VM_RUNNING] = "running",
	[VM_PAUSED] = "paused",
	[VM_STOPPING] = "stopping", [VM_STOPPED] = "stopped",	[VM_CRASHED] = "crashed",
	[VM_BROKEN] = "broken",
};

/* allowed[from] = set of states reachable from `from`. */
static const unsigned int allowed_transitions[VM_STATE_COUNT] = {
	[VM_DEFINED] = VM_STATE_BIT(VM_STARTING),
	[VM_STOPPED] = VM_STATE_BIT(VM_STARTING),
	[VM_CRASHED] = VM_STATE_BIT(VM_STARTING),
	/* A failed start returns to an idle state; a guest may also end at once. */
	[VM_STARTING] = VM_STATE_BIT(VM_RUNNING) | VM_STATE_BIT(VM_STOPPING) | VM_STATES_IDLE,
	[VM_RUNNING] = VM_STATE_BIT(VM_PAUSED) | VM_STATE_BIT(VM_STOPPING) |
		       VM_STATE_BIT(VM_STOPPED) | VM_STATE_BIT(VM_CRASHED),
	[VM_PAUSED] = VM_STATE_BIT(VM_RUNNING) | VM_STATE_BIT(VM_STOPPING) |
		      VM_STATE_BIT(VM_STOPPED) | VM_STATE_BIT(VM_CRASHED),
	[VM_STOPPING] = VM_STATE_BIT(VM_STOPPED) | VM_STATE_BIT(VM_CRASHED),
	/* vm.update with a complete definition repairs a broken VM. */
	[VM_BROKEN] = VM_STATE_BIT(VM_DEFINED),
};

/* States worth remembering across a vmmd restart. */
static bool state_is_stored(enum vm_state s)
{
	return s == VM_DEFINED || s == VM_RUNNING || s == VM_PAUSED || s == VM_STOPPED ||
	       s == VM_CRASHED;
}

const char *vm_state_name(enum vm_state s)
{
	return s < VM_STATE_COUNT ? state_names[s] : "unknown";
}

struct vm_record *vm_find(struct daemon *d, const char *name)
{
	for (struct vm_record *vm = d->vms; vm; vm = vm->next)
		if (strcmp(vm->def->name, name) == 0)
			return vm;
	return NULL;
}

/* The registry is kept in name order, so vm.list needs no sorting. */
static void insert_by_name(struct daemon *d, struct vm_record *vm)
{
	struct vm_record *prev = NULL, *cur = d->vms;

	while (cur && strcmp(cur->def->name, vm->def->name) < 0) {
		prev = cur;
		cur = cur->next;
	}
	vm->prev = prev;
	vm->next = cur;
	if (cur)
		cur->prev = vm;
	if (prev)
		prev->next = vm;
	else
		d->vms = vm;
}

int vm_add(struct daemon *d, struct vm_def *def, struct client *owner, struct vm_record **ret)
{
	struct vm_record *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return -ENOMEM;
	if (path_format(vm->console_log, sizeof(vm->console_log), "%s/console/%s.log",
			d->cfg.state_dir, def->name) < 0) {
		free(vm);
		return -ENAMETOOLONG;
	}
	vm->d = d;
	vm->def = def;
	vm->state = VM_DEFINED;
	vm->owner = owner;
	insert_by_name(d, vm);
	d->nr_vms++;
	*ret = vm;
	daemon_update_status(d);
	return 0;
}

static void subs_free(struct vm_record *vm)
{
	while (vm->console_subs) {
		struct console_sub *s = vm->console_subs;
		vm->console_subs = s->next;
		s->client->console_views--;
		free(s);
	}
}

void vm_remove(struct vm_record *vm)
{
	struct daemon *d = vm->d;

	if (vm->prev)
		vm->prev->next = vm->next;
	else
		d->vms = vm->next;
	if (vm->next)
		vm->next->prev = vm->prev;
	d->nr_vms--;
	subs_free(vm);
	vm_def_free(vm->def);
	vm_summary_forget(vm);
	free(vm);
	daemon_update_status(d);
}

static json_object *state_event_new(const struct vm_record *vm, enum vm_state old,
				    const char *reason)
{
	json_object *p = json_object_new_object();
	char when[40];

	time_format_rfc3339(when, sizeof(when));
	json_object_object_add(p, "name", json_object_new_string(vm->def->name));
	json_object_object_add(p, "old", json_object_new_string(vm_state_name(old)));
	json_object_object_add(p, "new", json_object_new_string(vm_state_name(vm->state)));
	json_object_object_add(p, "reason", json_object_new_string(reason ? reason : ""));
	if (vm->has_exit_status)
		json_object_object_add(p, "exit_status", json_object_new_int64(vm->exit_status));
	json_object_object_add(p, "time", json_object_new_string(when));
	return jsonrpc_notification_new("vm.state-changed", p);
}

/*
 * The part of a reason every peer may see: up to the registers a vCPU's
 * stop report ends with (vcpu.h), which show guest contents.
 */
static size_t reason_public_len(const char *reason)
{
	const char *regs = reason ? strstr(reason, VCPU_REASON_REGISTERS) : NULL;

	return regs ? (size_t)(regs - reason) : (reason ? strlen(reason) : 0);
}

static void notify_state_change(struct vm_record *vm, enum vm_state old, const char *reason)
{
	json_object *msg = state_event_new(vm, old, reason), *shown = json_object_get(msg);
	struct console_sub *s, *next;
	char cut[sizeof(vm->reason)];

	if (reason && reason_public_len(reason) < strlen(reason)) {
		json_object_put(shown);
		snprintf(cut, sizeof(cut), "%.*s", (int)reason_public_len(reason), reason);
		shown = state_event_new(vm, old, cut);
	}
	events_broadcast_limited(vm->d, msg, shown);
	json_object_put(shown);
	/* Console viewers learn that their VM went away; skip event subscribers,
	 * who already got it. */
	for (s = vm->console_subs; s; s = next) {
		next = s->next;
		if (!s->client->events)
			client_notify(s->client, msg);
	}
	json_object_put(msg);
}

void vm_restore_state(struct vm_record *vm, enum vm_state state, const char *reason)
{
	vm->state = state;
	vm_summary_forget(vm);
	snprintf(vm->reason, sizeof(vm->reason), "%s", reason);
}

void vm_set_state(struct vm_record *vm, enum vm_state state, const char *reason)
{
	enum vm_state old = vm->state;

	if (old == state)
		return;
	if (!(allowed_transitions[old] & VM_STATE_BIT(state))) {
		log_error("VM '%s': refusing transition %s -> %s", vm->def->name,
			  vm_state_name(old), vm_state_name(state));
		return;
	}
	vm->state = state;
	vm_summary_forget(vm);
	if (reason)
		snprintf(vm->reason, sizeof(vm->reason), "%s", reason);
	log_info("VM '%s': %s -> %s%s%s", vm->def->name, vm_state_name(old), vm_state_name(state),
		 reason ? ": " : "", reason ? reason : "");
	if (state_is_stored(state))
		store_save_vm(vm, NULL); /* logs a failure */
	notify_state_change(vm, old, reason);
	daemon_update_status(vm->d);
}

static void write_runtime_fields(struct jtext *j, const struct vm_record *vm)
{
	bool live = vm->state == VM_RUNNING || vm->state == VM_PAUSED || vm->state == VM_STOPPING;

	jt_key(j, "pid");
	if (vm->worker)
		jt_int(j, worker_pid(vm->worker));
	else
		jt_null(j);
	jt_key(j, "uptime");
	if (live)
		jt_number(j, (double)(time_monotonic_ns() - vm->started_ns) / 1e9, 3);
	else
		jt_null(j);
}

static void write_cpu_policy(struct jtext *j, const struct vcpu_cpu_policy *p)
{
	jt_key(j, "cpu");
	jt_object_begin(j);
	jt_key(j, "features");
	jt_object_begin(j);
	for (unsigned int i = 0; i < p->nr_features; i++) {
		/* Feature names come from vcpu/'s table: plain identifiers. */
		jt_key(j, p->features[i].name);
		jt_bool(j, p->features[i].enabled);
	}
	jt_object_end(j);
	jt_key(j, "max_phys_bits");
	jt_int(j, p->max_phys_bits);
	jt_object_end(j);
}

void vm_summary_forget(struct vm_record *vm)
{
	free(vm->summary_text);
	vm->summary_text = NULL;
	vm->summary_len = 0;
}

static void write_summary_members(struct jtext *j, const struct vm_record *vm)
{
	jt_key(j, "name");
	jt_string(j, vm->def->name);
	jt_key(j, "state");
	jt_string(j, vm_state_name(vm->state));
	jt_key(j, "memory");
	jt_int(j, (int64_t)vm->def->memory_mib);
	jt_key(j, "vcpus");
	jt_int(j, vm->def->vcpus);
}

/* Keeps name, state, memory and vcpus as member text (what follows the
 * object's '{'); without memory, nothing is kept. */
static void cache_summary_text(struct vm_record *vm)
{
	struct jtext t;
	char *text;
	size_t len;

	jt_init(&t);
	jt_object_begin(&t);
	write_summary_members(&t, vm);
	if (jt_failed(&t)) {
		jt_free(&t);
		return;
	}
	text = jt_take(&t, &len);
	memmove(text, text + 1, len); /* drop the '{' (the NUL moves too) */
	vm->summary_text = text;
	vm->summary_len = len - 1;
}

/* vm.list is the daemon's most frequent answer: the unchanging part of
 * each entry is kept as text, and only pid and uptime are written anew. */
void vm_summary_write(struct vm_record *vm, struct jtext *j)
{
	if (!vm->summary_text)
		cache_summary_text(vm);
	jt_object_begin(j);
	if (vm->summary_text)
		jt_members_text(j, vm->summary_text, vm->summary_len);
	else
		write_summary_members(j, vm);
	write_runtime_fields(j, vm);
	jt_object_end(j);
}

void vm_info_write(const struct vm_record *vm, struct jtext *j, bool guest_contents)
{
	const struct vm_def *def = vm->def;
	size_t reason_len = guest_contents ? strlen(vm->reason) : reason_public_len(vm->reason);
	char reason[sizeof(vm->reason)];

	jt_object_begin(j);
	jt_key(j, "name");
	jt_string(j, def->name);
	jt_key(j, "memory");
	jt_int(j, (int64_t)def->memory_mib);
	jt_key(j, "vcpus");
	jt_int(j, def->vcpus);
	jt_key(j, "kernel");
	jt_string(j, def->kernel);
	jt_key(j, "cmdline");
	jt_string(j, def->cmdline);
	jt_key(j, "boot");
	jt_string(j, def->boot);
	jt_key(j, "transient");
	jt_bool(j, def->transient);
	write_cpu_policy(j, &def->cpu);
	jt_key(j, "state");
	jt_string(j, vm_state_name(vm->state));
	write_runtime_fields(j, vm);
	jt_key(j, "exit_status");
	if (vm->has_exit_status)
		jt_int(j, vm->exit_status);
	else
		jt_null(j);
	jt_key(j, "reason");
	snprintf(reason, sizeof(reason), "%.*s", (int)reason_len, vm->reason);
	if (reason[0])
		jt_string(j, reason);
	else
		jt_null(j);
	jt_key(j, "console_log");
	jt_string(j, vm->console_log);
	jt_object_end(j);
}

/* The same fields as a json-c tree, for replies that are not hot. */
json_object *vm_info_json(const struct vm_record *vm)
{
	struct jtext j;
	json_object *o;
	char *text;

	jt_init(&j);
	vm_info_write(vm, &j, true);
	if (jt_failed(&j)) {
		jt_free(&j);
		return NULL;
	}
	text = jt_take(&j, NULL);
	o = json_tokener_parse(text);
	free(text);
	return o;
}

void vm_console_subscribe(struct vm_record *vm, struct client *c)
{
	struct console_sub *s;

	for (s = vm->console_subs; s; s = s->next)
		if (s->client == c)
			return;
	s = calloc(1, sizeof(*s));
	if (!s)
		return;
	s->client = c;
	s->next = vm->console_subs;
	vm->console_subs = s;
	c->console_views++;
}

void vm_console_unsubscribe(struct vm_record *vm, struct client *c)
{
	for (struct console_sub **pp = &vm->console_subs; *pp; pp = &(*pp)->next) {
		if ((*pp)->client == c) {
			struct console_sub *s = *pp;
			*pp = s->next;
			free(s);
			c->console_views--;
			return;
		}
	}
}

/* A client left: drop its console views and stop its transient VMs. */
void vm_forget_client(struct daemon *d, struct client *c)
{
	struct vm_record *vm, *next;

	for (vm = d->vms; vm; vm = next) {
		next = vm->next;
		vm_console_unsubscribe(vm, c);
		if (vm->owner != c)
			continue;
		vm->owner = NULL;
		vm->delete_when_idle = true;
		if (vm->worker)
			worker_stop(vm->worker, "the client that created this transient VM disconnected");
		else
			vm_remove(vm);
	}
}

void events_broadcast(struct daemon *d, json_object *msg)
{
	events_broadcast_limited(d, msg, msg);
}

void events_broadcast_limited(struct daemon *d, json_object *msg, json_object *limited)
{
	struct client *c, *next;

	for (c = d->clients; c; c = next) {
		next = c->next;
		if (c->events)
			client_notify(c, c->peer.access == API_ACCESS_FULL ? msg : limited);
	}
}

int waiter_add(struct waiter **list, struct api_call *call)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->call = call;
	w->next = *list;
	*list = w;
	return 0;
}
