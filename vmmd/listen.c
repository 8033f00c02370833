/* SPDX-License-Identifier: MIT */
/*
 * The API sockets and who may use them.
 *
 * vmmd listens on its main socket (0660, group `vmmd` when it runs as root)
 * and optionally on a read-only socket (0666). Both may instead be handed
 * over by systemd socket activation (LISTEN_FDS; a socket named "ro" in
 * LISTEN_FDNAMES is the read-only one).
 *
 * Every connection's peer is identified with SO_PEERCRED and SO_PEERGROUPS.
 * On the main socket root, the user vmmd runs as and members of the vmmd
 * group get full access; anyone else is refused every method. On the
 * read-only socket everyone may call the query methods only.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"
#include "util/macro.h"
#include "vmmd/vmmd.h"

/* sd_listen_fds(3): passed descriptors start here. */
#define SD_LISTEN_FDS_START 3

/* Out of descriptors, accepting pauses and is retried this often (and at
 * once when vmmd closes a descriptor). */
#define ACCEPT_RETRY_S 0.1
/* At most one warning about it per this many seconds. */
#define ACCEPT_WARNING_INTERVAL_S 10.0

/* True when something accepts connections at path (another daemon). */
static bool socket_in_use(const struct sockaddr_un *sa)
{
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	return fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
}

static int bind_socket(const char *path, mode_t mode, gid_t group, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	int rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("socket path '%s' is too long (limit %zu bytes)", path,
			  sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	if (socket_in_use(&sa)) {
		log_error("another vmmd is already serving %s", path);
		return -EADDRINUSE;
	}
	/* Nobody answers: a stale socket from a vmmd that died. */
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, mode) < 0 ||
	    (group != (gid_t)-1 && chown(path, 0, group) < 0) || listen(fd, SOMAXCONN) < 0) {
		rc = negative_errno();
		log_error("cannot listen on %s: %s", path, strerror(-rc));
		return rc;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static bool peer_in_group(int fd, gid_t primary, gid_t group)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (primary == group)
		return true;
	/* SO_PEERGROUPS (Linux 4.13): the peer's supplementary groups. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == group)
			return true;
	return false;
}

static void identify_peer(struct daemon *d, const struct listener *l, int fd, struct peer *ret)
{
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(cred);

	getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
	*ret = (struct peer){ .uid = cred.uid, .gid = cred.gid, .pid = cred.pid,
			      .ro_socket = l->read_only };
	if (l->read_only) {
		ret->access = API_ACCESS_READ_ONLY;
		snprintf(ret->reason, sizeof(ret->reason), "(read-only socket)");
	} else if (cred.uid == 0 || cred.uid == geteuid() ||
		   (d->group != (gid_t)-1 && peer_in_group(fd, cred.gid, d->group))) {
		ret->access = API_ACCESS_FULL;
	} else {
		ret->access = API_ACCESS_NONE;
		snprintf(ret->reason, sizeof(ret->reason), "uid %u is not root and not in group '%s'",
			 (unsigned)cred.uid, d->cfg.group);
	}
}

static unsigned int clients_of_uid(const struct daemon *d, uid_t uid)
{
	unsigned int n = 0;

	for (const struct client *c = d->clients; c; c = c->next)
		n += !c->dead && c->peer.uid == uid;
	return n;
}

static void refuse(int fd, const char *why)
{
	char line[512];
	int n = snprintf(line, sizeof(line),
			 "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32005,\"message\":\"%s\"}}\n",
			 why);
	ssize_t _unused_ w = send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/*
 * Which connection limit a new peer would exceed, in why; false if none.
 * Read-only connections have their own limit and do not count towards
 * max-connections: anyone may open them, and must not crowd out the
 * administrators on the main socket.
 */
static bool over_limit(const struct daemon *d, const struct peer *peer, char *why, size_t size)
{
	const struct daemon_limits *lim = &d->cfg.limits;

	if (peer->ro_socket && d->nr_ro_clients >= lim->max_ro_clients)
		snprintf(why, size, "too many connections on the read-only socket (limit %u)",
			 lim->max_ro_clients);
	else if (!peer->ro_socket && d->nr_clients >= lim->max_clients)
		snprintf(why, size, "too many connections (limit %u)", lim->max_clients);
	else if (clients_of_uid(d, peer->uid) >= lim->max_clients_per_uid)
		snprintf(why, size, "too many connections from uid %u (limit %u)",
			 (unsigned)peer->uid, lim->max_clients_per_uid);
	else
		return false;
	return true;
}

static void accept_one(struct daemon *d, const struct listener *l, int fd)
{
	struct peer peer;
	char why[160];

	identify_peer(d, l, fd, &peer);
	if (over_limit(d, &peer, why, sizeof(why))) {
		log_warning("refused a connection from uid %u pid %d: %s", (unsigned)peer.uid,
			    (int)peer.pid, why);
		refuse(fd, why);
		return;
	}
	client_accept(d, fd, &peer);
}

/* The resource accept(2) ran out of: pending connections must wait. */
static bool out_of_resources(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* Accepts every pending connection: 0 once none is left, or the errno
 * that stopped it. */
static int accept_pending(struct listener *l)
{
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			accept_one(l->d, l, fd);
			continue;
		}
		/* accept(2): a connection that went away, or a signal. */
		if (errno == ECONNABORTED || errno == EINTR || errno == EPROTO)
			continue;
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno;
	}
}

static void describe_limit(int err, char *buf, size_t size)
{
	struct rlimit rl;

	if (err == ENFILE)
		snprintf(buf, size, "the system's limit on open files (fs.file-max)");
	else if (err != EMFILE)
		snprintf(buf, size, "kernel memory for sockets");
	else if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		snprintf(buf, size, "vmmd's limit of %llu open files (RLIMIT_NOFILE)",
			 (unsigned long long)rl.rlim_cur);
	else
		snprintf(buf, size, "vmmd's limit on open files (RLIMIT_NOFILE)");
}

/* Rate-limited: one line per ACCEPT_WARNING_INTERVAL_S, counting the
 * pauses in between. */
static void warn_paused(struct daemon *d, int err)
{
	struct accept_pause *p = &d->accept_pause;
	double now = ev_now(d->loop);
	char limit[96], more[64] = "";

	if (p->last_warning > 0 && now - p->last_warning < ACCEPT_WARNING_INTERVAL_S) {
		p->unwarned++;
		return;
	}
	describe_limit(err, limit, sizeof(limit));
	if (p->unwarned)
		snprintf(more, sizeof(more), " (%u more times since the last warning)", p->unwarned);
	log_warning("cannot accept connections: %s, %s reached; new connections wait, retried "
		    "every %.1f s; open connections are still served%s",
		    strerror(err), limit, ACCEPT_RETRY_S, more);
	p->last_warning = now;
	p->unwarned = 0;
	p->warned = true;
}

/* Takes the listeners out of the loop (a pending connection would wake it
 * at once, for ever) until the retry timer or a freed descriptor. */
static void pause_accepting(struct daemon *d, int err)
{
	struct accept_pause *p = &d->accept_pause;

	for (unsigned int i = 0; i < d->nr_listeners; i++)
		ev_io_stop(d->loop, &d->listeners[i].io);
	ev_timer_stop(d->loop, &p->retry);
	ev_timer_set(&p->retry, ACCEPT_RETRY_S, 0.);
	ev_timer_start(d->loop, &p->retry);
	if (p->active)
		return;
	p->active = true;
	p->warned = false;
	p->since = ev_now(d->loop);
	warn_paused(d, err);
}

static void resume_accepting(struct daemon *d)
{
	struct accept_pause *p = &d->accept_pause;

	p->active = false;
	ev_timer_stop(d->loop, &p->retry);
	listeners_start(d);
	if (p->warned)
		log_notice("accepting connections again after %.1f s",
			   ev_now(d->loop) - p->since);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	int err = accept_pending(l);

	if (out_of_resources(err))
		pause_accepting(l->d, err);
	else if (err)
		log_warning("accept on %s: %s", l->path[0] ? l->path : "a systemd socket",
			    strerror(err));
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct daemon *d = t->data;

	for (unsigned int i = 0; i < d->nr_listeners; i++) {
		int err = accept_pending(&d->listeners[i]);
		if (out_of_resources(err)) {
			pause_accepting(d, err);
			return;
		}
	}
	resume_accepting(d);
}

void listeners_descriptor_freed(struct daemon *d)
{
	struct accept_pause *p = &d->accept_pause;

	if (!p->active || d->shutting_down)
		return;
	ev_timer_stop(d->loop, &p->retry);
	ev_timer_set(&p->retry, 0., 0.);
	ev_timer_start(d->loop, &p->retry);
}

static struct listener *add_listener(struct daemon *d, int fd, bool read_only, const char *path,
				     bool owned)
{
	struct listener *l;

	if (d->nr_listeners >= VMMD_MAX_LISTENERS)
		return NULL;
	l = &d->listeners[d->nr_listeners++];
	*l = (struct listener){ .d = d, .fd = fd, .read_only = read_only, .owned = owned };
	snprintf(l->path, sizeof(l->path), "%s", path ? path : "");
	ev_io_init(&l->io, on_accept, fd, EV_READ);
	l->io.data = l;
	return l;
}

/* The n-th name of LISTEN_FDNAMES ("a:b:c"), or "" when absent. */
static void fd_name(const char *names, unsigned int n, char *buf, size_t size)
{
	buf[0] = '\0';
	for (unsigned int i = 0; names && i < n; i++) {
		names = strchr(names, ':');
		if (names)
			names++;
	}
	if (names)
		snprintf(buf, size, "%.*s", (int)strcspn(names, ":"), names);
}

/* Socket activation (sd_listen_fds(3)); returns how many sockets were taken. */
static int take_activated_sockets(struct daemon *d)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	int n;

	if (!pid || !fds || atoi(pid) != getpid())
		return 0;
	n = atoi(fds);
	for (int i = 0; i < n; i++) {
		char name[64];
		int fd = SD_LISTEN_FDS_START + i;
		fd_name(names, (unsigned int)i, name, sizeof(name));
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		if (!add_listener(d, fd, strcmp(name, "ro") == 0, NULL, false))
			close(fd);
		else
			log_info("using socket %d from systemd%s%s", fd, name[0] ? " named " : "", name);
	}
	/* Not for the workers we start. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return n;
}

static void lookup_group(struct daemon *d)
{
	struct group *g = getgrnam(d->cfg.group);

	d->group = g ? g->gr_gid : (gid_t)-1;
	if (!g)
		log_info("group '%s' does not exist: only root and uid %u have full access",
			 d->cfg.group, (unsigned)geteuid());
}

int listeners_open(struct daemon *d)
{
	gid_t owner_group;
	int fd, rc;

	ev_timer_init(&d->accept_pause.retry, on_accept_retry, 0., 0.);
	d->accept_pause.retry.data = d;
	lookup_group(d);
	if (take_activated_sockets(d) > 0)
		return 0;
	owner_group = geteuid() == 0 ? d->group : (gid_t)-1;
	rc = bind_socket(d->cfg.socket_path, 0660, owner_group, &fd);
	if (rc < 0)
		return rc;
	add_listener(d, fd, false, d->cfg.socket_path, true);
	if (d->cfg.ro_socket_path[0]) {
		rc = bind_socket(d->cfg.ro_socket_path, 0666, (gid_t)-1, &fd);
		if (rc < 0)
			return rc;
		add_listener(d, fd, true, d->cfg.ro_socket_path, true);
	}
	return 0;
}

void listeners_start(struct daemon *d)
{
	for (unsigned int i = 0; i < d->nr_listeners; i++)
		ev_io_start(d->loop, &d->listeners[i].io);
}

void listeners_stop(struct daemon *d)
{
	for (unsigned int i = 0; i < d->nr_listeners; i++)
		ev_io_stop(d->loop, &d->listeners[i].io);
	ev_timer_stop(d->loop, &d->accept_pause.retry);
	d->accept_pause.active = false;
}

void listeners_close(struct daemon *d)
{
	ev_timer_stop(d->loop, &d->accept_pause.retry);
	for (unsigned int i = 0; i < d->nr_listeners; i++) {
		struct listener *l = &d->listeners[i];
		ev_io_stop(d->loop, &l->io);
		close(l->fd);
		if (l->owned)
			unlink(l->path);
	}
	d->nr_listeners = 0;
}
