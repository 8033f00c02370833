/* SPDX-License-Identifier: MIT */
/*
 * Client connections: each accepted socket becomes an rpc_conn (framing,
 * buffers, flow control) feeding an api_session (dispatch). Clients that
 * subscribed to events or a console get notifications; one that lets them
 * pile up beyond the soft limit is sent a last `events.dropped` notice and
 * disconnected, so no client can make vmmd's memory grow without bound.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "api/jsonrpc.h"
#include "util/log.h"
#include "vmmd/vmmd.h"

static int client_send(void *conn, json_object *msg)
{
	struct client *c = conn;

	if (c->dead)
		return -EPIPE;
	int rc = rpc_conn_send(c->conn, msg);
	if (rc == -ENOBUFS) {
		log_warning("client %u: output queue full; closing the connection", c->id);
		rpc_conn_close_after_flush(c->conn);
	}
	return rc;
}

static int client_send_text(void *conn, const char *text, size_t len)
{
	struct client *c = conn;
	int rc;

	if (c->dead)
		return -EPIPE;
	rc = rpc_conn_send_text(c->conn, text, len);
	if (rc == -ENOBUFS) {
		log_warning("client %u: output queue full; closing the connection", c->id);
		rpc_conn_close_after_flush(c->conn);
	}
	return rc;
}

static void client_denied(void *conn, const struct api_method *m, const char *why)
{
	struct client *c = conn;

	log_warning("denied %s to uid %u pid %d: %s", m->name, (unsigned)c->peer.uid,
		    (int)c->peer.pid, why);
}

static const struct api_session_ops client_session_ops = {
	.send = client_send,
	.send_text = client_send_text,
	.denied = client_denied,
};

static void client_mark_dead(struct client *c)
{
	struct daemon *d = c->d;

	if (c->dead)
		return;
	c->dead = true;
	vm_forget_client(d, c);
	c->next_dead = d->dead_clients;
	d->dead_clients = c;
	ev_idle_start(d->loop, &d->reaper);
}

static void on_client_message(struct rpc_conn *conn, json_object *msg, void *userdata)
{
	struct client *c = userdata;

	if (!c->dead)
		api_session_handle(c->session, msg);
}

static void on_client_bad_message(struct rpc_conn *conn, const struct api_error *err,
				  void *userdata)
{
	struct client *c = userdata;

	if (!c->dead)
		api_session_bad_message(c->session, err);
}

static void on_client_closed(struct rpc_conn *conn, const char *reason, void *userdata)
{
	struct client *c = userdata;

	log_debug("client %u: %s", c->id, reason);
	client_mark_dead(c);
}

static const struct rpc_conn_ops client_conn_ops = {
	.message = on_client_message,
	.bad_message = on_client_bad_message,
	.closed = on_client_closed,
};

int client_accept(struct daemon *d, int fd, const struct peer *peer)
{
	struct client *c = calloc(1, sizeof(*c));
	struct api_session_config scfg = {
		.methods = vmmd_methods,
		.nr_methods = vmmd_nr_methods,
		.max_in_flight = d->cfg.limits.max_in_flight,
		.access = peer->access,
	};

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->peer = *peer;
	scfg.access_reason = c->peer.reason[0] ? c->peer.reason : NULL;
	c->d = d;
	c->id = ++d->next_client_id;
	c->conn = rpc_conn_new(d->loop, fd, NULL, &client_conn_ops, c);
	c->session = api_session_new(&scfg, &client_session_ops, c, d);
	if (!c->conn || !c->session) {
		if (!c->conn)
			close(fd);
		rpc_conn_free(c->conn);
		api_session_free(c->session);
		free(c);
		return -ENOMEM;
	}
	c->next = d->clients;
	if (d->clients)
		d->clients->prev = c;
	d->clients = c;
	if (peer->ro_socket)
		d->nr_ro_clients++;
	else
		d->nr_clients++;
	log_debug("client %u: uid %u pid %d, %s access", c->id, (unsigned)peer->uid, (int)peer->pid,
		  peer->access == API_ACCESS_FULL ? "full" :
		  peer->access == API_ACCESS_READ_ONLY ? "read-only" : "no");
	return 0;
}

void client_free(struct client *c)
{
	struct daemon *d = c->d;

	if (c->prev)
		c->prev->next = c->next;
	else
		d->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->peer.ro_socket)
		d->nr_ro_clients--;
	else
		d->nr_clients--;
	api_session_free(c->session);
	rpc_conn_free(c->conn);
	free(c);
	listeners_descriptor_freed(d);
}

static void drop_slow_client(struct client *c)
{
	json_object *p = json_object_new_object();
	json_object *msg;

	c->dropped = true;
	json_object_object_add(p, "reason",
			       json_object_new_string("notifications were not read fast enough"));
	msg = jsonrpc_notification_new("events.dropped", p);
	rpc_conn_send(c->conn, msg);
	json_object_put(msg);
	log_warning("client %u: dropped for not reading its notifications (%zu bytes queued)",
		    c->id, rpc_conn_output_pending(c->conn));
	rpc_conn_close_after_flush(c->conn);
}

void client_notify(struct client *c, json_object *msg)
{
	if (c->dead || c->dropped)
		return;
	if (rpc_conn_output_pending(c->conn) > c->d->cfg.limits.notify_soft_limit) {
		drop_slow_client(c);
		return;
	}
	client_send(c, msg);
}

/* Sends a last error (id null) and closes once it is written. */
static void close_with_error(struct client *c, int code, const char *msg)
{
	json_object *e = jsonrpc_error_new(NULL, code, msg, NULL);

	rpc_conn_send(c->conn, e);
	json_object_put(e);
	rpc_conn_close_after_flush(c->conn);
}

/* Subscribers wait for notifications and callers for replies: not idle. */
static bool client_is_waiting(const struct client *c)
{
	return c->events || c->console_views > 0 || api_session_in_flight(c->session) > 0;
}

void clients_sweep(struct daemon *d)
{
	const struct daemon_limits *l = &d->cfg.limits;
	double now = ev_now(d->loop);
	char msg[128];

	for (struct client *c = d->clients; c; c = c->next) {
		double quiet = now - rpc_conn_last_input(c->conn), since;

		if (c->dead || !rpc_conn_is_open(c->conn))
			continue;
		if (l->partial_timeout_s > 0 && rpc_conn_partial_since(c->conn, &since) &&
		    now - since > l->partial_timeout_s) {
			snprintf(msg, sizeof(msg),
				 "incomplete message not finished within %.0f s of its first byte (partial-timeout); closing",
				 l->partial_timeout_s);
			log_notice("client %u (uid %u): %s", c->id, (unsigned)c->peer.uid, msg);
			close_with_error(c, API_ERR_INVALID_REQUEST, msg);
		} else if (l->idle_timeout_s > 0 && !client_is_waiting(c) &&
			   !rpc_conn_has_partial_input(c->conn) && quiet > l->idle_timeout_s) {
			snprintf(msg, sizeof(msg), "idle for %.0f s (idle-timeout); closing",
				 l->idle_timeout_s);
			log_info("client %u (uid %u): %s", c->id, (unsigned)c->peer.uid, msg);
			close_with_error(c, API_ERR_RESOURCE_LIMIT, msg);
		}
	}
}
