/* SPDX-License-Identifier: MIT */
/*
 * The named limits, settable with `vmmd --limit NAME=VALUE`. One table
 * gives each its option name, unit, bounds and place in struct
 * daemon_limits, so parsing, --help and docs agree.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"
#include "vmmd/vmmd.h"

enum limit_kind { LIMIT_UINT, LIMIT_U64, LIMIT_SIZE, LIMIT_SECONDS };

struct limit_def {
	const char *name;
	enum limit_kind kind;
	size_t offset;
	double min, max;
	const char *help;
};

#define LIMIT(n, k, field, lo, hi, h) \
	{ .name = n, .kind = k, .offset = offsetof(struct daemon_limits, field), .min = lo, .max = hi, .help = h }

static const struct limit_def limit_defs[] = {
	LIMIT("max-connections", LIMIT_UINT, max_clients, 1, 1e6,
	      "concurrent connections on the main socket"),
	LIMIT("max-ro-connections", LIMIT_UINT, max_ro_clients, 1, 1e6,
	      "the same on the read-only socket, not counted in max-connections"),
	LIMIT("max-connections-per-uid", LIMIT_UINT, max_clients_per_uid, 1, 1e6,
	      "concurrent connections of one user, on either socket"),
	LIMIT("max-vms", LIMIT_UINT, max_vms, 1, 1e6, "defined VMs"),
	LIMIT("max-in-flight", LIMIT_UINT, max_in_flight, 1, 1e6,
	      "requests in flight on one connection"),
	LIMIT("max-vcpus", LIMIT_UINT, max_vcpus, 0, 4096,
	      "vCPUs per VM (0: what KVM allows)"),
	LIMIT("max-memory", LIMIT_U64, max_memory_mib, 0, 1e12,
	      "MiB of RAM per VM (0: the host's RAM)"),
	LIMIT("notify-queue", LIMIT_SIZE, notify_soft_limit, 4096, 1e9,
	      "bytes of notifications queued before a subscriber is dropped"),
	LIMIT("console-log-size", LIMIT_SIZE, console_log_max, 0, 1e12,
	      "bytes per console log before it is rotated (0: never)"),
	LIMIT("idle-timeout", LIMIT_SECONDS, idle_timeout_s, 0, 1e7,
	      "seconds a connection may do nothing (0: forever)"),
	LIMIT("partial-timeout", LIMIT_SECONDS, partial_timeout_s, 0, 1e7,
	      "seconds from a message's first byte to its end (0: forever)"),
	LIMIT("worker-start-timeout", LIMIT_SECONDS, worker_start_timeout_s, 0.1, 3600,
	      "seconds a worker may take to start its VM"),
	LIMIT("worker-stop-timeout", LIMIT_SECONDS, worker_stop_timeout_s, 0.1, 3600,
	      "seconds a worker may take to power off before it is killed"),
	LIMIT("worker-call-timeout", LIMIT_SECONDS, worker_call_timeout_s, 0.1, 3600,
	      "seconds a worker may take to answer any other request"),
};

static double get_value(const struct daemon_limits *l, const struct limit_def *def)
{
	const char *p = (const char *)l + def->offset;

	switch (def->kind) {
	case LIMIT_UINT: return *(const unsigned int *)p;
	case LIMIT_U64: return (double)*(const uint64_t *)p;
	case LIMIT_SIZE: return (double)*(const size_t *)p;
	case LIMIT_SECONDS: return *(const double *)p;
	}
	return 0;
}

static void set_value(struct daemon_limits *l, const struct limit_def *def, double v)
{
	char *p = (char *)l + def->offset;

	switch (def->kind) {
	case LIMIT_UINT: *(unsigned int *)p = (unsigned int)v; break;
	case LIMIT_U64: *(uint64_t *)p = (uint64_t)v; break;
	case LIMIT_SIZE: *(size_t *)p = (size_t)v; break;
	case LIMIT_SECONDS: *(double *)p = v; break;
	}
}

int daemon_limit_set(struct daemon_limits *l, const char *name, const char *value,
		     char *err, size_t err_size)
{
	char *end;
	double v;

	for (size_t i = 0; i < ARRAY_SIZE(limit_defs); i++) {
		const struct limit_def *def = &limit_defs[i];
		if (strcmp(def->name, name) != 0)
			continue;
		errno = 0;
		v = strtod(value, &end);
		if (errno || end == value || *end || v < def->min || v > def->max ||
		    (def->kind != LIMIT_SECONDS && v != (double)(uint64_t)v)) {
			snprintf(err, err_size, "limit '%s' must be %s between %g and %g, got '%s'",
				 name, def->kind == LIMIT_SECONDS ? "a number" : "a whole number",
				 def->min, def->max, value);
			return -EINVAL;
		}
		set_value(l, def, v);
		return 0;
	}
	snprintf(err, err_size, "unknown limit '%s' (see vmmd --help)", name);
	return -EINVAL;
}

void daemon_limits_print(const struct daemon_limits *l, FILE *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(limit_defs); i++) {
		char value[32];
		snprintf(value, sizeof(value), "%.*f", limit_defs[i].kind == LIMIT_SECONDS ? 1 : 0,
			 get_value(l, &limit_defs[i]));
		fprintf(out, "      %-24s %-9s %s\n", limit_defs[i].name, value, limit_defs[i].help);
	}
}
