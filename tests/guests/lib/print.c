/* SPDX-License-Identifier: MIT */
/* Number formatting and key=value lines, all through console_write(). */
#include "guest.h"

size_t fmt_dec(char *buf, uint64_t v)
{
	char tmp[20];
	size_t n = 0, len;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	len = n;
	while (n)
		*buf++ = tmp[--n];
	*buf = '\0';
	return len;
}

size_t fmt_hex(char *buf, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[16];
	size_t n = 0, len;

	do {
		tmp[n++] = digits[v & 0xF];
		v >>= 4;
	} while (v);
	buf[0] = '0';
	buf[1] = 'x';
	len = n + 2;
	buf += 2;
	while (n)
		*buf++ = tmp[--n];
	*buf = '\0';
	return len;
}

void print(const char *s)
{
	console_write(s, str_len(s));
}

void print_char(char c)
{
	console_write(&c, 1);
}

void print_dec(uint64_t v)
{
	char buf[21];

	console_write(buf, fmt_dec(buf, v));
}

void print_hex(uint64_t v)
{
	char buf[19];

	console_write(buf, fmt_hex(buf, v));
}

void print_kv_str(const char *key, const char *value)
{
	print(key);
	print_char('=');
	print(value);
	print_char('\n');
}

void print_kv_dec(const char *key, uint64_t v)
{
	print(key);
	print_char('=');
	print_dec(v);
	print_char('\n');
}

void print_kv_hex(const char *key, uint64_t v)
{
	print(key);
	print_char('=');
	print_hex(v);
	print_char('\n');
}
