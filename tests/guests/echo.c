/* SPDX-License-Identifier: MIT */
/*
 * echo: a console round trip for tests of the serial device.
 *
 * Protocol:
 *   1. The guest prints "echo: ready\n" once it polls for input.
 *   2. Every byte received on COM1 is sent back unchanged, at once.
 *   3. '\n' and '\r' end a line. A line that is exactly "quit" makes the
 *      guest print "echo: bye\n" and exit with status 0.
 * Lines longer than LINE_MAX bytes are echoed but never match "quit".
 */
#include "lib/guest.h"

#define LINE_MAX 64

int main(void)
{
	char line[LINE_MAX + 1];
	size_t len = 0;
	bool overflow = false;

	print("echo: ready\n");
	for (;;) {
		char c = serial_getc();

		serial_putc(c);
		if (c != '\n' && c != '\r') {
			if (len < LINE_MAX)
				line[len++] = c;
			else
				overflow = true;
			continue;
		}
		line[len] = '\0';
		if (!overflow && str_eq(line, "quit"))
			break;
		len = 0;
		overflow = false;
	}
	print("echo: bye\n");
	return 0;
}
