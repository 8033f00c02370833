/* SPDX-License-Identifier: MIT */
#include "api/errors.h"

#include <stdarg.h>
#include <stdio.h>

int api_error_set(struct api_error *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		e->code = code;
		va_start(ap, fmt);
		vsnprintf(e->message, sizeof(e->message), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

const char *api_error_name(int code)
{
	switch (code) {
	case API_ERR_PARSE: return "parse-error";
	case API_ERR_INVALID_REQUEST: return "invalid-request";
	case API_ERR_METHOD_NOT_FOUND: return "method-not-found";
	case API_ERR_INVALID_PARAMS: return "invalid-params";
	case API_ERR_INTERNAL: return "internal-error";
	case API_ERR_VM_NOT_FOUND: return "vm-not-found";
	case API_ERR_NAME_TAKEN: return "name-taken";
	case API_ERR_WRONG_STATE: return "wrong-state";
	case API_ERR_KVM: return "kvm-error";
	case API_ERR_RESOURCE_LIMIT: return "resource-limit";
	case API_ERR_PERMISSION: return "permission-denied";
	case API_ERR_IO: return "io-error";
	case API_ERR_WORKER: return "worker-error";
	case API_ERR_GUEST: return "guest-error";
	case API_ERR_KERNEL: return "kernel-error";
	default: return "unknown-error";
	}
}
