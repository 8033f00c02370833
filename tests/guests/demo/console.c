/* SPDX-License-Identifier: MIT */
/*
 * The library prints through console_write(): in ring 3 it collects whole
 * lines and sends each with one SYS_WRITE (a ring transition costs far
 * more than a byte); in ring 0 it writes to the UART directly.
 *
 * The ring is tracked by ring 0 rather than read from CS: on hosts that
 * run guest ring 3 natively under a paravirtual monitor, "mov %cs" in
 * ring 3 may show the host's selector instead of the guest's.
 */
#include "demo.h"

bool console_user_mode;

static char line[256];
static size_t line_len;

void console_write(const char *s, size_t len)
{
	if (!console_user_mode) {
		for (size_t i = 0; i < len; i++)
			serial_putc(s[i]);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		line[line_len++] = s[i];
		if (s[i] == '\n' || line_len == sizeof(line)) {
			sys_write(line, line_len);
			line_len = 0;
		}
	}
}
