/* SPDX-License-Identifier: MIT */
#include "util/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/macro.h"
#include "util/path.h"

int fd_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negative_errno();
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	_cleanup_close_ int fd = -1;

	if (!slash)
		strcpy(dir, ".");
	else if (path_format(dir, sizeof(dir), "%.*s", (int)(slash - path), path) < 0)
		return -ENAMETOOLONG;
	if (dir[0] == '\0')
		strcpy(dir, "/");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return negative_errno();
	return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		      struct error *err)
{
	char tmp[PATH_MAX];
	_cleanup_close_ int fd = -1;
	int rc;

	if (path_format(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) < 0)
		return error_set(err, -ENAMETOOLONG, "%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return error_set(err, negative_errno(), "creating %s: %s", tmp, strerror(errno));
	rc = fd_write_all(fd, data, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = negative_errno();
	if (rc < 0) {
		unlink(tmp);
		return error_set(err, rc, "writing %s: %s", tmp, strerror(-rc));
	}
	closep(&fd);
	if (rename(tmp, path) < 0) {
		rc = negative_errno();
		unlink(tmp);
		return error_set(err, rc, "renaming %s to %s: %s", tmp, path, strerror(-rc));
	}
	rc = fsync_parent(path);
	if (rc < 0)
		return error_set(err, rc, "syncing the directory of %s: %s", path, strerror(-rc));
	return 0;
}

int file_remove_durable(const char *path, struct error *err)
{
	int rc;

	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return 0;
		return error_set(err, negative_errno(), "removing %s: %s", path, strerror(errno));
	}
	rc = fsync_parent(path);
	if (rc < 0)
		return error_set(err, rc, "syncing the directory of %s: %s", path, strerror(-rc));
	return 0;
}

int file_read_bounded(const char *path, size_t max, char **ret, size_t *ret_len,
		      struct error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	char *buf;
	size_t got = 0;

	if (fd < 0)
		return error_set(err, negative_errno(), "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		return error_set(err, negative_errno(), "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return error_set(err, -EINVAL, "%s: not a regular file", path);
	if ((uint64_t)st.st_size > max)
		return error_set(err, -EFBIG, "%s: %lld bytes, more than the limit of %zu", path,
				 (long long)st.st_size, max);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return error_set(err, -ENOMEM, "%s: out of memory", path);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = negative_errno();
			free(buf);
			return error_set(err, rc, "%s: %s", path, strerror(-rc));
		}
		if (n == 0)
			break; /* truncated while reading: use what is there */
		got += (size_t)n;
	}
	buf[got] = '\0';
	*ret = buf;
	*ret_len = got;
	return 0;
}
