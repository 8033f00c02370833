/* SPDX-License-Identifier: MIT */
/*
 * Small language helpers shared by every module: array sizes, cleanup
 * attributes and ownership transfer (systemd style).
 *
 * _cleanup_free_ / _cleanup_close_ / _cleanup_fclose_ run when the variable
 * leaves scope; TAKE_PTR() and TAKE_FD() hand ownership to the caller and
 * leave NULL / -1 behind so the cleanup does nothing. freep(), closep()
 * and fclosep() may also be called early by hand: they leave NULL / -1
 * behind too.
 */
#ifndef VMMD_UTIL_MACRO_H
#define VMMD_UTIL_MACRO_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define _unused_ __attribute__((unused))
#define _printf_(fmt, args) __attribute__((format(printf, fmt, args)))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define BIT(n) (1ULL << (n))
/* Mask with bits lo..hi (inclusive) set, as MMU.md's bits(lo,hi). */
#define BITS(lo, hi) ((~0ULL >> (63 - (hi))) & ~((1ULL << (lo)) - 1))

/*
 * Each helper also resets what it released (NULL, -1), so calling it by
 * hand before the variable leaves scope does not release it twice: a
 * second close() could close a descriptor another thread just opened
 * under the same number.
 */
static inline void freep(void *p)
{
	free(*(void **)p);
	*(void **)p = NULL;
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
	*fd = -1;
}

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
	*f = NULL;
}

#define _cleanup_(fn) __attribute__((cleanup(fn)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

#define TAKE_PTR(p)                          \
	({                                   \
		__typeof__(p) _taken_ = (p); \
		(p) = NULL;                  \
		_taken_;                     \
	})

#define TAKE_FD(fd)                  \
	({                           \
		int _taken_ = (fd);  \
		(fd) = -1;           \
		_taken_;             \
	})

/* Negative errno of the last failed call; never 0 even if errno was lost. */
static inline int negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

#endif
