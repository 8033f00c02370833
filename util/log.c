/* SPDX-License-Identifier: MIT */
#include "util/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *log_ident = "vmmd";
static enum log_level log_max_level = LOG_LEVEL_INFO;
static bool log_syslog_prefix;

static const char *const level_names[] = {
	[LOG_LEVEL_ERR] = "err",       [LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_NOTICE] = "notice", [LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

/*
 * systemd.exec(5): JOURNAL_STREAM is "DEVICE:INODE" of the stream it
 * connected to the service's stderr. A process whose stderr was redirected
 * elsewhere still inherits the variable, so it counts only if it names
 * the stderr we have.
 */
static bool stderr_is_journal(void)
{
	const char *stream = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (!stream || sscanf(stream, "%llu:%llu%n", &dev, &ino, &end) != 2 ||
	    stream[end] != '\0' || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int log_init(const char *ident)
{
	const char *level = getenv("VMMD_LOG_LEVEL");
	enum log_level parsed;

	if (ident)
		log_ident = ident;
	log_syslog_prefix = stderr_is_journal();
	if (!level || !level[0])
		return 0;
	if (log_level_from_string(level, &parsed) < 0)
		return -EINVAL;
	log_max_level = parsed;
	return 0;
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
