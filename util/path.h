/* SPDX-License-Identifier: MIT */
#ifndef VMMD_UTIL_PATH_H
#define VMMD_UTIL_PATH_H

#include <stddef.h>

#include "util/macro.h"

/* snprintf for paths: 0, or -ENAMETOOLONG when the result does not fit
 * (buf then holds a truncated string that must not be used). */
int path_format(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);

#endif
