/* SPDX-License-Identifier: MIT */
#include "vmmd/worker/console.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/path.h"

struct console {
	pthread_mutex_t lock;
	char *log_path;
	int log_fd;
	size_t log_size;
	size_t log_max;
	uint8_t history[CONSOLE_HISTORY_SIZE];
	size_t hist_start, hist_len;
	uint8_t *pending;
	size_t pending_len;
	uint64_t dropped;
	void (*wake)(void *ctx);
	void *wake_ctx;
};

static int open_log(struct console *c)
{
	struct stat st;

	c->log_fd = open(c->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (c->log_fd < 0)
		return negative_errno();
	c->log_size = fstat(c->log_fd, &st) == 0 ? (size_t)st.st_size : 0;
	return 0;
}

int console_new(const char *log_path, size_t log_max, void (*wake)(void *ctx), void *ctx,
		struct console **ret, struct error *err)
{
	struct console *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return error_set(err, -ENOMEM, "console: out of memory");
	pthread_mutex_init(&c->lock, NULL);
	c->log_fd = -1;
	c->log_max = log_max;
	c->wake = wake;
	c->wake_ctx = ctx;
	c->pending = malloc(CONSOLE_PENDING_MAX);
	c->log_path = strdup(log_path);
	if (!c->pending || !c->log_path) {
		console_free(c);
		return error_set(err, -ENOMEM, "console: out of memory");
	}
	rc = open_log(c);
	if (rc < 0) {
		console_free(c);
		return error_set(err, rc, "console log %s: %s", log_path, strerror(-rc));
	}
	*ret = c;
	return 0;
}

void console_free(struct console *c)
{
	if (!c)
		return;
	closep(&c->log_fd);
	pthread_mutex_destroy(&c->lock);
	free(c->log_path);
	free(c->pending);
	free(c);
}

/* Keeps the log bounded: the current file plus one rotated ".1". */
static void rotate_log(struct console *c)
{
	char old[PATH_MAX];

	if (path_format(old, sizeof(old), "%s.1", c->log_path) < 0)
		return;
	closep(&c->log_fd);
	if (rename(c->log_path, old) < 0)
		log_warning("console log rotation of %s: %s", c->log_path, strerror(errno));
	if (open_log(c) < 0)
		log_warning("console log %s: %s", c->log_path, strerror(errno));
}

static void append_log(struct console *c, const uint8_t *buf, size_t len)
{
	if (c->log_max && c->log_size + len > c->log_max && c->log_size > 0)
		rotate_log(c);
	if (c->log_fd < 0)
		return;
	if (fd_write_all(c->log_fd, buf, len) == 0)
		c->log_size += len;
}

static void append_history(struct console *c, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		size_t end = (c->hist_start + c->hist_len) % CONSOLE_HISTORY_SIZE;
		c->history[end] = buf[i];
		if (c->hist_len < CONSOLE_HISTORY_SIZE)
			c->hist_len++;
		else
			c->hist_start = (c->hist_start + 1) % CONSOLE_HISTORY_SIZE;
	}
}

void console_output(struct console *c, const uint8_t *buf, size_t len)
{
	bool was_empty;
	size_t room, take;

	pthread_mutex_lock(&c->lock);
	append_log(c, buf, len);
	append_history(c, buf, len);
	was_empty = c->pending_len == 0;
	room = CONSOLE_PENDING_MAX - c->pending_len;
	take = MIN(room, len);
	memcpy(c->pending + c->pending_len, buf, take);
	c->pending_len += take;
	c->dropped += len - take;
	pthread_mutex_unlock(&c->lock);
	if (was_empty && take > 0)
		c->wake(c->wake_ctx);
}

size_t console_take_pending(struct console *c, uint8_t *buf, size_t size)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = MIN(size, c->pending_len);
	memcpy(buf, c->pending, n);
	memmove(c->pending, c->pending + n, c->pending_len - n);
	c->pending_len -= n;
	pthread_mutex_unlock(&c->lock);
	return n;
}

int console_history(struct console *c, uint8_t **ret, size_t *ret_len)
{
	uint8_t *buf;

	pthread_mutex_lock(&c->lock);
	buf = malloc(c->hist_len + 1);
	if (buf) {
		for (size_t i = 0; i < c->hist_len; i++)
			buf[i] = c->history[(c->hist_start + i) % CONSOLE_HISTORY_SIZE];
		*ret_len = c->hist_len;
		*ret = buf;
	}
	pthread_mutex_unlock(&c->lock);
	return buf ? 0 : -ENOMEM;
}

uint64_t console_dropped(struct console *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->lock);
	n = c->dropped;
	pthread_mutex_unlock(&c->lock);
	return n;
}
