/* SPDX-License-Identifier: MIT */
#ifndef VMMD_UTIL_PATH_H
#define VMMD_UTIL_PATH_H

#include <stddef.h>
#include <sys/types.h>

#include "util/macro.h"

/* snprintf for paths: 0, or -ENAMETOOLONG when the result does not fit
 * (buf then holds a truncated string that must not be used). */
int path_format(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);

/* What vmmd's and vmctl's default paths depend on. */
struct path_env {
	uid_t euid;
	const char *socket;	 /* $VMMD_SOCKET; NULL when unset or empty */
	const char *runtime_dir; /* $XDG_RUNTIME_DIR; NULL when unset or empty */
	const char *home;	 /* $HOME, else the user's home from passwd; or NULL */
};

/* This process's: geteuid(), the environment, the passwd entry. The
 * strings are the environment's (or getpwuid()'s) and live as long as it. */
void path_env_get(struct path_env *ret);

/*
 * The default API socket (the contract in docs/architecture.md#paths):
 * $VMMD_SOCKET, else /run/vmmd/vmmd.sock for root, else
 * $XDG_RUNTIME_DIR/vmmd/vmmd.sock, else /run/user/UID/vmmd/vmmd.sock.
 * 0 or -ENAMETOOLONG.
 */
int path_default_socket(const struct path_env *env, char *buf, size_t size);

/*
 * The default state directory: /var/lib/vmmd for root, else
 * HOME/.local/share/vmmd. 0, -ENOENT without a home directory, or
 * -ENAMETOOLONG.
 */
int path_default_state_dir(const struct path_env *env, char *buf, size_t size);

#endif
