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

static const char *file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR: return "a directory";
	case S_IFIFO: return "a FIFO";
	case S_IFSOCK: return "a socket";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	default: return "a special file";
	}
}

/*
 * O_NONBLOCK: opening a FIFO for reading blocks until a writer appears, and
 * reading it blocks until one writes; the file type is only known after
 * open(). Regular files ignore the flag. Symbolic links are followed.
 */
static int open_regular(const char *path, struct stat *ret_st, int *ret_fd, struct error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return error_set(err, negative_errno(), "%s: %s", path, strerror(errno));
	if (fstat(fd, ret_st) < 0)
		return error_set(err, negative_errno(), "%s: %s", path, strerror(errno));
	if (!S_ISREG(ret_st->st_mode))
		return error_set(err, -EINVAL, "%s: not a regular file but %s", path,
				 file_kind(ret_st->st_mode));
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int file_read_bounded(const char *path, size_t max, char **ret, size_t *ret_len,
		      struct error *err)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	char *buf;
	size_t got = 0;
	int rc = open_regular(path, &st, &fd, err);

	if (rc < 0)
		return rc;
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
			rc = negative_errno();
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
