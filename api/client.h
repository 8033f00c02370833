/* SPDX-License-Identifier: MIT */
/*
 * Blocking JSON-RPC client for vmctl and tests. Notifications that arrive
 * while waiting for a reply are queued and handed out by api_client_next().
 *
 * Errors: functions return 0 or a negative errno and fill `err`.
 * -EREMOTEIO means the server answered with a JSON-RPC error: err->code is
 * its code and err->message its message. Other values are transport
 * failures (err->code is 0).
 */
#ifndef VMMD_API_CLIENT_H
#define VMMD_API_CLIENT_H

#include <json-c/json.h>
#include <stdint.h>

#include "api/errors.h"

struct api_client;

int api_client_connect(const char *path, struct api_client **ret, struct api_error *err);
void api_client_free(struct api_client *c);

/* Sends a request and waits for its reply; takes ownership of params.
 * *ret_result is a new reference on success. */
int api_client_call(struct api_client *c, const char *method, json_object *params,
		    json_object **ret_result, struct api_error *err);

/* Sends a request without waiting; its reply comes from api_client_next(). */
int api_client_send(struct api_client *c, const char *method, json_object *params,
		    int64_t *ret_id, struct api_error *err);

/* Sends raw bytes (tests of malformed input). */
int api_client_send_raw(struct api_client *c, const void *data, size_t len, struct api_error *err);

/*
 * Next incoming message (queued notifications first), waiting up to
 * timeout_ms (-1: forever). -ETIMEDOUT when nothing came, -ECONNRESET when
 * the server closed the connection. *ret is a new reference.
 */
int api_client_next(struct api_client *c, int timeout_ms, json_object **ret, struct api_error *err);

/* The socket, for callers that poll it together with other fds. */
int api_client_fd(const struct api_client *c);

/* True when api_client_next() can return a message without waiting: one is
 * queued or already complete in the read buffer. */
int api_client_has_queued(struct api_client *c);

/* The default socket path of this process (path_default_socket()):
 * $VMMD_SOCKET, /run/vmmd/vmmd.sock as root, else
 * $XDG_RUNTIME_DIR/vmmd/vmmd.sock. Writes into buf. */
int api_default_socket_path(char *buf, size_t size);

#endif
