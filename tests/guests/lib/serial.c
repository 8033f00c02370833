/* SPDX-License-Identifier: MIT */
/* COM1 by polling: LSR bit 5 before each byte out, LSR bit 0 before each in. */
#include "guest.h"

void serial_init(void)
{
	outb(COM1 + UART_IER, 0x00);
	outb(COM1 + UART_LCR, 0x80); /* DLAB: the divisor latch follows */
	outb(COM1 + UART_DLL, 0x01); /* 115200 baud */
	outb(COM1 + UART_DLM, 0x00);
	outb(COM1 + UART_LCR, 0x03); /* 8 data bits, no parity, 1 stop bit */
	outb(COM1 + UART_MCR, 0x03); /* DTR and RTS */
}

void serial_putc(char c)
{
	while (!(inb(COM1 + UART_LSR) & UART_LSR_THR_EMPTY))
		;
	outb(COM1 + UART_THR, (uint8_t)c);
}

char serial_getc(void)
{
	while (!(inb(COM1 + UART_LSR) & UART_LSR_DATA_READY))
		__builtin_ia32_pause();
	return (char)inb(COM1 + UART_RBR);
}

__attribute__((weak)) void console_write(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		serial_putc(s[i]);
}

void guest_exit(uint32_t code)
{
	if (code <= 0xFF)
		outb(DEBUG_EXIT_PORT, (uint8_t)code);
	else
		outl(DEBUG_EXIT_PORT, code);
	for (;;)
		__asm__ volatile("cli; hlt");
}
