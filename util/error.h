/* SPDX-License-Identifier: MIT */
/*
 * An error with its human message. Library functions that can fail for a
 * reason a user must read take a `struct error *err` (may be NULL), fill it
 * and return the negative errno:
 *
 *     return error_set(err, -EINVAL, "kernel '%s': not an ELF file", path);
 *
 * Messages name the operation and the object, never just "invalid".
 */
#ifndef VMMD_UTIL_ERROR_H
#define VMMD_UTIL_ERROR_H

#include "util/macro.h"

/* Room for a message that lists choices (e.g. every known CPU feature name). */
#define ERROR_MSG_MAX 1024

struct error {
	int code; /* negative errno */
	char msg[ERROR_MSG_MAX];
};

/* Fills err (if not NULL) and returns code, which must be negative. */
int error_set(struct error *err, int code, const char *fmt, ...) _printf_(3, 4);
/* Prepends "prefix: " to an existing message; returns err->code. */
int error_prefix(struct error *err, const char *fmt, ...) _printf_(2, 3);

#endif
