/* SPDX-License-Identifier: MIT */
/* Bounded string building for the printable and JSON forms, and error messages. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mmu/mmu-internal.h"

void sb_init(struct strbuf *sb, char *buf, size_t size)
{
	sb->buf = buf;
	sb->size = buf ? size : 0;
	sb->len = 0;
	if (sb->size)
		sb->buf[0] = '\0';
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	size_t room = sb->len < sb->size ? sb->size - sb->len : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? sb->buf + sb->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		sb->len += (size_t)n;
}

/* Only names and fixed strings reach this, but escape anyway (RFC 8259 §7). */
void sb_json_str(struct strbuf *sb, const char *s)
{
	sb_printf(sb, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			sb_printf(sb, "\\%c", c);
		else if (c < 0x20)
			sb_printf(sb, "\\u%04x", c);
		else
			sb_printf(sb, "%c", c);
	}
	sb_printf(sb, "\"");
}

int sb_format(sb_emit_fn fn, const void *arg, char *buf, size_t size, size_t *ret_len)
{
	struct strbuf sb;

	if (!buf && size)
		return -EINVAL;
	sb_init(&sb, NULL, 0);
	fn(&sb, arg);
	if (sb.len + 1 > size)
		return -ENOSPC;
	sb_init(&sb, buf, size);
	fn(&sb, arg);
	if (ret_len)
		*ret_len = sb.len;
	return 0;
}

void mmu_error_set(struct mmu_error *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}
