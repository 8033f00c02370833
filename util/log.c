/* SPDX-License-Identifier: MIT */
#include "util/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *log_ident = "vmmd";
static enum log_level log_max_level = LOG_LEVEL_INFO;
static bool log_syslog_prefix;

static const char *const level_names[] = {
	[LOG_LEVEL_ERR] = "err",       [LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_NOTICE] = "notice", [LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void log_init(const char *ident)
{
	const char *level = getenv("VMMD_LOG_LEVEL");
	enum log_level parsed;

	if (ident)
		log_ident = ident;
	/* journald sets JOURNAL_STREAM on the stderr it hands to services. */
	log_syslog_prefix = getenv("JOURNAL_STREAM") != NULL;
	if (level && log_level_from_string(level, &parsed) == 0)
		log_max_level = parsed;
}

void log_set_max_level(enum log_level level)
{
	log_max_level = level;
}

enum log_level log_get_max_level(void)
{
	return log_max_level;
}

int log_level_from_string(const char *s, enum log_level *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (level_names[i] && strcmp(level_names[i], s) == 0) {
			*ret = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_emitv(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	if (level > log_max_level)
		return;
	if (log_syslog_prefix)
		n = snprintf(line, sizeof(line), "<%d>", (int)level);
	else
		n = snprintf(line, sizeof(line), "%s[%d] %s: ", log_ident,
			     (int)getpid(), level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (m < 0)
		return;
	n = MIN((size_t)n + (size_t)m, sizeof(line) - 2);
	line[n++] = '\n';

	int saved = errno;
	ssize_t _unused_ w = write(STDERR_FILENO, line, (size_t)n);
	errno = saved;
}

void log_emit(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emitv(level, fmt, ap);
	va_end(ap);
}
