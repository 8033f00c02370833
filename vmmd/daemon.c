/* SPDX-License-Identifier: MIT */
/*
 * The daemon: listening socket, signals, and the order of start-up and
 * shutdown. On SIGTERM/SIGINT vmmd stops accepting, tells subscribers it is
 * going away, lets go of the workers of persistent VMs (they keep running
 * and the next vmmd reattaches them), powers off transient VMs, whose
 * clients go away with it, waits for those workers (each is killed if it
 * overstays worker_stop_timeout_s) and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/jsonrpc.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/notify.h"
#include "util/time.h"
#include "vmmd/rundir.h"
#include "vmmd/vmmd.h"

/* mkdir -p with the given mode for directories it creates. */
static int mkdir_parents(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return negative_errno();
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return negative_errno();
	return 0;
}

static int dirname_of(const char *path, char *buf, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return snprintf(buf, size, ".") < (int)size ? 0 : -ENAMETOOLONG;
	if ((size_t)(slash - path) >= size)
		return -ENAMETOOLONG;
	memcpy(buf, path, (size_t)(slash - path));
	buf[slash - path] = '\0';
	if (buf[0] == '\0')
		strcpy(buf, "/");
	return 0;
}

static void on_reaper(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct daemon *d = w->data;

	while (d->dead_clients) {
		struct client *c = d->dead_clients;
		d->dead_clients = c->next_dead;
		client_free(c);
	}
	ev_idle_stop(loop, w);
	daemon_check_shutdown_done(d);
}

void daemon_check_shutdown_done(struct daemon *d)
{
	if (d->shutting_down && workers_alive(d) == 0)
		ev_break(d->loop, EVBREAK_ALL);
}

static void notify_shutdown(struct daemon *d, const char *why)
{
	json_object *p = json_object_new_object();
	json_object *msg;

	json_object_object_add(p, "reason", json_object_new_string(why));
	msg = jsonrpc_notification_new("daemon.shutting-down", p);
	events_broadcast(d, msg);
	json_object_put(msg);
}

void daemon_shutdown(struct daemon *d, const char *why)
{
	if (d->shutting_down)
		return;
	d->shutting_down = true;
	log_notice("shutting down: %s", why);
	notify_send("STOPPING=1\nSTATUS=shutting down (%s)", why);
	listeners_stop(d);
	ev_timer_stop(d->loop, &d->sweep);
	notify_shutdown(d, why);
	for (struct vm_record *vm = d->vms; vm; vm = vm->next) {
		if (!vm->worker)
			continue;
		if (vm->def->transient || (vm->state != VM_RUNNING && vm->state != VM_PAUSED))
			worker_stop(vm->worker, "vmmd shut down");
		else
			worker_detach(vm->worker);
	}
	daemon_check_shutdown_done(d);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon *d = w->data;

	daemon_shutdown(d, w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	/* Every client and worker link is a descriptor. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int prepare_socket_dir(const char *socket_path)
{
	char dir[PATH_MAX];
	int rc;

	if (!socket_path[0])
		return 0;
	rc = dirname_of(socket_path, dir, sizeof(dir));
	if (rc == 0)
		rc = mkdir_parents(dir, 0755);
	if (rc < 0)
		log_error("cannot create the directory of socket '%s': %s", socket_path,
			  strerror(-rc));
	return rc;
}

static int prepare_dirs(const struct daemon_config *cfg)
{
	char console_dir[PATH_MAX + 16], vms_dir[PATH_MAX + 16];
	int rc;

	rc = prepare_socket_dir(cfg->socket_path);
	if (rc == 0)
		rc = prepare_socket_dir(cfg->ro_socket_path);
	if (rc < 0)
		return rc;

	snprintf(console_dir, sizeof(console_dir), "%s/console", cfg->state_dir);
	snprintf(vms_dir, sizeof(vms_dir), "%s/vms", cfg->state_dir);
	rc = mkdir_parents(cfg->state_dir, 0700);
	if (rc == 0)
		rc = mkdir_parents(console_dir, 0700);
	if (rc == 0)
		rc = mkdir_parents(vms_dir, 0700);
	if (rc < 0) {
		log_error("cannot create state directory %s: %s", cfg->state_dir, strerror(-rc));
		return rc;
	}
	rc = mkdir_parents(cfg->run_dir, 0755);
	if (rc == 0) {
		struct error e;
		rc = rundir_prepare(cfg->run_dir, &e);
		if (rc < 0)
			log_error("%s", e.msg);
	} else {
		log_error("cannot create run directory %s: %s", cfg->run_dir, strerror(-rc));
	}
	return rc;
}

void daemon_update_status(struct daemon *d)
{
	unsigned int running = 0;

	for (struct vm_record *vm = d->vms; vm; vm = vm->next)
		running += vm->state == VM_RUNNING;
	notify_send("STATUS=%u VMs defined, %u running", d->nr_vms, running);
}

/* READY=1 (and --ready-fd) once the socket serves and every worker found
 * at start has answered its reattach, or failed to. */
static void signal_ready(struct daemon *d)
{
	unsigned int running = 0;

	if (d->ready_signalled || d->attaches_pending || d->shutting_down)
		return;
	d->ready_signalled = true;

	for (struct vm_record *vm = d->vms; vm; vm = vm->next)
		running += vm->state == VM_RUNNING;
	notify_send("READY=1\nSTATUS=%u VMs defined, %u running", d->nr_vms, running);
	if (d->cfg.ready_fd < 0)
		return;
	ssize_t _unused_ n = write(d->cfg.ready_fd, "READY\n", 6);
	close(d->cfg.ready_fd);
	d->cfg.ready_fd = -1;
}

void daemon_attach_settled(struct daemon *d)
{
	if (d->attaches_pending && --d->attaches_pending == 0)
		signal_ready(d);
}

static void daemon_free(struct daemon *d)
{
	while (d->clients)
		client_free(d->clients);
	while (d->vms)
		vm_remove(d->vms);
	listeners_close(d);
}

static void on_sweep(struct ev_loop *loop, ev_timer *t, int revents)
{
	clients_sweep(t->data);
}

/* The operator's per-VM limits, where they are lower than the host's. */
static void apply_vm_limits(struct daemon *d)
{
	const struct daemon_limits *l = &d->cfg.limits;

	if (l->max_vcpus && l->max_vcpus < d->host.max_vcpus) {
		d->host.max_vcpus = l->max_vcpus;
		d->host.vcpus_source = "vmmd's max-vcpus limit";
	}
	if (l->max_memory_mib && l->max_memory_mib < d->host.max_memory_mib) {
		d->host.max_memory_mib = l->max_memory_mib;
		d->host.memory_source = "vmmd's max-memory limit";
	}
}

int daemon_run(const struct daemon_config *cfg)
{
	struct daemon d = { .cfg = *cfg };
	int rc;

	d.loop = ev_default_loop(EVFLAG_AUTO);
	if (!d.loop) {
		log_error("cannot initialise the event loop");
		return -ENOMEM;
	}
	signal(SIGPIPE, SIG_IGN);
	notify_init();
	raise_fd_limit();
	host_limits_probe(&d.host);
	apply_vm_limits(&d);
	d.start_ns = time_monotonic_ns();

	rc = prepare_dirs(&d.cfg);
	if (rc == 0)
		rc = listeners_open(&d);
	if (rc == 0)
		rc = store_load(&d);
	if (rc == 0)
		supervisor_reattach_all(&d);
	if (rc < 0) {
		daemon_free(&d);
		return rc;
	}

	listeners_start(&d);
	ev_timer_init(&d.sweep, on_sweep, 1.0, 1.0);
	d.sweep.data = &d;
	ev_timer_start(d.loop, &d.sweep);
	ev_signal_init(&d.sig_term, on_signal, SIGTERM);
	ev_signal_init(&d.sig_int, on_signal, SIGINT);
	d.sig_term.data = d.sig_int.data = &d;
	ev_signal_start(d.loop, &d.sig_term);
	ev_signal_start(d.loop, &d.sig_int);
	ev_idle_init(&d.reaper, on_reaper);
	d.reaper.data = &d;

	log_notice("vmmd %s serving %s (state %s, run %s; max %u vCPUs, %llu MiB per VM)",
		   VMMD_VERSION, d.cfg.socket_path, d.cfg.state_dir, d.cfg.run_dir,
		   d.host.max_vcpus, (unsigned long long)d.host.max_memory_mib);
	signal_ready(&d);
	ev_run(d.loop, 0);

	daemon_free(&d);
	log_notice("stopped");
	return 0;
}
