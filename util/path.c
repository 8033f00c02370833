/* SPDX-License-Identifier: MIT */
#include "util/path.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int path_format(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static const char *env_or_null(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

void path_env_get(struct path_env *ret)
{
	const struct passwd *pw;

	*ret = (struct path_env){
		.euid = geteuid(),
		.socket = env_or_null("VMMD_SOCKET"),
		.runtime_dir = env_or_null("XDG_RUNTIME_DIR"),
		.home = env_or_null("HOME"),
	};
	if (!ret->home && (pw = getpwuid(ret->euid)) && pw->pw_dir && *pw->pw_dir)
		ret->home = pw->pw_dir;
}

int path_default_socket(const struct path_env *env, char *buf, size_t size)
{
	if (env->socket)
		return path_format(buf, size, "%s", env->socket);
	if (env->euid == 0)
		return path_format(buf, size, "/run/vmmd/vmmd.sock");
	if (env->runtime_dir)
		return path_format(buf, size, "%s/vmmd/vmmd.sock", env->runtime_dir);
	return path_format(buf, size, "/run/user/%u/vmmd/vmmd.sock", (unsigned)env->euid);
}

int path_default_state_dir(const struct path_env *env, char *buf, size_t size)
{
	if (env->euid == 0)
		return path_format(buf, size, "/var/lib/vmmd");
	if (!env->home)
		return -ENOENT;
	return path_format(buf, size, "%s/.local/share/vmmd", env->home);
}
