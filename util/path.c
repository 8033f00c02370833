/* SPDX-License-Identifier: MIT */
#include "util/path.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

int path_format(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}
