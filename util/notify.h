/* SPDX-License-Identifier: MIT */
/*
 * The service manager's readiness protocol (sd_notify(3)) without
 * libsystemd: datagrams like "READY=1" or "STATUS=..." to $NOTIFY_SOCKET.
 */
#ifndef VMMD_UTIL_NOTIFY_H
#define VMMD_UTIL_NOTIFY_H

#include <stdbool.h>

#include "util/macro.h"

/* Reads and unsets $NOTIFY_SOCKET (children must not inherit it). Returns
 * true when a service manager listens. */
bool notify_init(void);

/* Sends a newline-separated list of assignments; a no-op without a
 * manager. 0 or -errno. */
int notify_send(const char *fmt, ...) _printf_(1, 2);

#endif
