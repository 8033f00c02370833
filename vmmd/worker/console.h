/* SPDX-License-Identifier: MIT */
/*
 * A VM's console output, as the worker keeps it:
 *   - the log file, written as bytes arrive and rotated (one .1 file kept)
 *     once it reaches its size limit, so it never exceeds twice that;
 *   - a history ring of the last CONSOLE_HISTORY_SIZE bytes, for clients
 *     that attach later;
 *   - a pending buffer of bytes not yet forwarded to vmmd. If vmmd falls
 *     behind by more than CONSOLE_PENDING_MAX, newer bytes are not
 *     forwarded (the log and history still have them) and the loss is
 *     counted.
 *
 * console_output() is called on vCPU threads (the UART's output callback);
 * the rest on the worker's main thread. One mutex protects everything.
 */
#ifndef VMMD_WORKER_CONSOLE_H
#define VMMD_WORKER_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define CONSOLE_HISTORY_SIZE (64 * 1024)
#define CONSOLE_PENDING_MAX (256 * 1024)

struct console;

/* Opens (appends to) log_path; log_max 0 means no rotation limit. wake(ctx)
 * is called, from any thread, when bytes become pending. */
int console_new(const char *log_path, size_t log_max, void (*wake)(void *ctx), void *ctx,
		struct console **ret, struct error *err);
void console_free(struct console *c);

/* Guest output. Thread-safe. */
void console_output(struct console *c, const uint8_t *buf, size_t len);

/* Moves pending bytes into buf (up to size); returns how many. */
size_t console_take_pending(struct console *c, uint8_t *buf, size_t size);

/* Copies the history, oldest first, into a new buffer. */
int console_history(struct console *c, uint8_t **ret, size_t *ret_len);

/* Bytes not forwarded because vmmd fell behind. */
uint64_t console_dropped(struct console *c);

#endif
