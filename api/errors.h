/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC error codes: the four standard ones and vmmd's own, which are
 * stable and documented in docs/api.md. Every error travels with a human
 * message that names the offending field or object.
 */
#ifndef VMMD_API_ERRORS_H
#define VMMD_API_ERRORS_H

#include "util/macro.h"

enum api_error_code {
	/* JSON-RPC 2.0 §5.1 */
	API_ERR_PARSE = -32700,
	API_ERR_INVALID_REQUEST = -32600,
	API_ERR_METHOD_NOT_FOUND = -32601,
	API_ERR_INVALID_PARAMS = -32602,
	API_ERR_INTERNAL = -32603,
	/* vmmd, from the implementation-defined range -32000..-32099 */
	API_ERR_VM_NOT_FOUND = -32001,
	API_ERR_NAME_TAKEN = -32002,
	API_ERR_WRONG_STATE = -32003,
	API_ERR_KVM = -32004,
	API_ERR_RESOURCE_LIMIT = -32005,
	API_ERR_PERMISSION = -32006,
	API_ERR_IO = -32007,
	API_ERR_WORKER = -32008,
	API_ERR_GUEST = -32009,
	API_ERR_KERNEL = -32010,
};

#define API_ERROR_MSG_MAX 1024

struct api_error {
	int code; /* enum api_error_code */
	char message[API_ERROR_MSG_MAX];
};

/*
 * Fills e (may be NULL) and returns -EINVAL, so callers can write
 * `return api_error_set(err, API_ERR_INVALID_PARAMS, "...");`.
 */
int api_error_set(struct api_error *e, int code, const char *fmt, ...) _printf_(3, 4);

/* Stable symbolic name of a code ("invalid-params", "vm-not-found", ...). */
const char *api_error_name(int code);

#endif
