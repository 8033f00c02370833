/* SPDX-License-Identifier: MIT */
#include "util/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;

bool notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;

	notify_addr_len = 0;
	if (!path || (path[0] != '/' && path[0] != '@'))
		goto out;
	len = strlen(path);
	if (len >= sizeof(notify_addr.sun_path))
		goto out;
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, path, len);
	/* "@name" is the abstract namespace: a leading NUL, no terminator. */
	if (path[0] == '@')
		notify_addr.sun_path[0] = '\0';
	notify_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
				      (path[0] == '/' ? 1 : 0));
out:
	unsetenv("NOTIFY_SOCKET");
	return notify_addr_len > 0;
}

int notify_send(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int fd, rc = 0;

	if (!notify_addr_len)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&notify_addr,
		   notify_addr_len) < 0)
		rc = negative_errno();
	close(fd);
	return rc;
}
