/* SPDX-License-Identifier: MIT */
/* Files that must survive crashes, and bounded reads of files vmmd does not trust. */
#ifndef VMMD_UTIL_FILEIO_H
#define VMMD_UTIL_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

#include "util/error.h"

/* Writes all len bytes, retrying short writes and EINTR. 0 or -errno. */
int fd_write_all(int fd, const void *data, size_t len);

/*
 * Replaces path with data so that a crash at any moment leaves either the
 * old or the new content: write a temporary file in the same directory,
 * fsync it, rename it over path, fsync the directory.
 */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		      struct error *err);

/* Removes path and makes the removal durable (fsync of the directory).
 * A missing file is not an error. */
int file_remove_durable(const char *path, struct error *err);

/*
 * Reads a whole regular file of at most max bytes into a NUL-terminated
 * buffer the caller frees. -EFBIG when larger, -EINVAL when not a regular
 * file; a FIFO or device is refused without blocking. Symbolic links are
 * followed.
 */
int file_read_bounded(const char *path, size_t max, char **ret, size_t *ret_len,
		      struct error *err);

#endif
