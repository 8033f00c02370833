/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr. When stderr is journald's stream (JOURNAL_STREAM names
 * its device and inode) every line carries a syslog priority prefix "<N>"
 * that journald understands; otherwise a short level word. Lines are
 * written with one write() so threads and processes sharing stderr do not
 * interleave.
 */
#ifndef VMMD_UTIL_LOG_H
#define VMMD_UTIL_LOG_H

#include <stdarg.h>

#include "util/macro.h"

enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

/*
 * ident names the process in plain-text mode ("vmmd", "worker web1").
 * Takes the threshold from $VMMD_LOG_LEVEL when it is set and not empty:
 * -EINVAL when it names no level (everything else is set up, and the
 * threshold stays the default), for the caller to refuse.
 */
int log_init(const char *ident);
void log_set_max_level(enum log_level level);
enum log_level log_get_max_level(void);
/* Parses "err", "warning", "notice", "info", "debug"; returns -EINVAL otherwise. */
int log_level_from_string(const char *s, enum log_level *ret);

void log_emit(enum log_level level, const char *fmt, ...) _printf_(2, 3);
void log_emitv(enum log_level level, const char *fmt, va_list ap);

#define log_error(...) log_emit(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warning(...) log_emit(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_notice(...) log_emit(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...) log_emit(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_emit(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
