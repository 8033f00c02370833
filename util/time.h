/* SPDX-License-Identifier: MIT */
#ifndef VMMD_UTIL_TIME_H
#define VMMD_UTIL_TIME_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t time_monotonic_ns(void);

/* Wall-clock time as RFC 3339 UTC with milliseconds: 2026-11-21T18:10:00.123Z. */
void time_format_rfc3339(char *buf, size_t size);

#endif
