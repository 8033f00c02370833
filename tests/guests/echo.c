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
 *
 * Command line: flood=N (default 0) first prints N lines of FLOOD_LINE
 * bytes, "flood 000000 ....\n" numbered from 0, before "echo: ready": a lot
 * of output, quickly, for tests of the console history.
 */
#include "lib/guest.h"

#define LINE_MAX 64
#define FLOOD_LINE 64
/* 16550A transmit FIFO: bytes that may follow one THRE. */
#define UART_FIFO_SIZE 16
#define UART_FCR 2
#define UART_FCR_ENABLE_CLEAR 0x07

/* Each I/O instruction is an exit to the VMM, so the bytes go out a FIFO
 * load at a time after one LSR poll, with rep outsb. */
static void write_fifo(const char *s, size_t len)
{
	while (len) {
		size_t n = len < UART_FIFO_SIZE ? len : UART_FIFO_SIZE;
		size_t count = n;

		while (!(inb(COM1 + UART_LSR) & UART_LSR_THR_EMPTY))
			;
		__asm__ volatile("rep outsb"
				 : "+S"(s), "+c"(count)
				 : "d"((uint16_t)(COM1 + UART_THR))
				 : "memory");
		len -= n;
	}
}

static void flood(uint64_t lines)
{
	char line[FLOOD_LINE];

	if (lines == 0)
		return; /* and the UART stays in 16450 mode: input one byte at a time */
	outb(COM1 + UART_FCR, UART_FCR_ENABLE_CLEAR);
	for (uint64_t i = 0; i < lines; i++) {
		size_t n = 0;
		char digits[21];
		size_t len = fmt_dec(digits, i);

		for (const char *p = "flood "; *p; p++)
			line[n++] = *p;
		for (size_t pad = len; pad < 6; pad++)
			line[n++] = '0';
		for (size_t k = 0; k < len; k++)
			line[n++] = digits[k];
		line[n++] = ' ';
		while (n < FLOOD_LINE - 1)
			line[n++] = '.';
		line[n++] = '\n';
		write_fifo(line, n);
	}
}

int main(void)
{
	char line[LINE_MAX + 1];
	size_t len = 0;
	bool overflow = false;

	flood(cmdline_number("flood", 0));
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
