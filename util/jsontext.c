/* SPDX-License-Identifier: MIT */
#include "util/jsontext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jt_init(struct jtext *j)
{
	memset(j, 0, sizeof(*j));
	j->first[0] = true;
}

void jt_free(struct jtext *j)
{
	free(j->buf);
	jt_init(j);
}

char *jt_take(struct jtext *j, size_t *ret_len)
{
	char *buf = j->buf;

	if (ret_len)
		*ret_len = j->len;
	j->buf = NULL;
	jt_free(j);
	return buf;
}

bool jt_failed(const struct jtext *j)
{
	return j->failed || !j->buf;
}

static bool reserve(struct jtext *j, size_t extra)
{
	size_t cap;
	char *p;

	if (j->failed)
		return false;
	if (j->len + extra + 1 <= j->cap)
		return true;
	cap = j->cap ? j->cap : 256;
	while (cap < j->len + extra + 1)
		cap *= 2;
	p = realloc(j->buf, cap);
	if (!p) {
		j->failed = true;
		return false;
	}
	j->buf = p;
	j->cap = cap;
	return true;
}

static void put(struct jtext *j, const char *s, size_t n)
{
	if (!reserve(j, n))
		return;
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

/* A comma before every value but the first at its level; none after a key. */
static void separate(struct jtext *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (!j->first[j->depth])
		put(j, ",", 1);
	j->first[j->depth] = false;
}

static void open_level(struct jtext *j, char c)
{
	separate(j);
	if (j->depth >= JT_MAX_DEPTH) {
		j->failed = true;
		return;
	}
	put(j, &c, 1);
	j->first[++j->depth] = true;
}

static void close_level(struct jtext *j, char c)
{
	if (j->depth == 0) {
		j->failed = true;
		return;
	}
	j->depth--;
	put(j, &c, 1);
}

void jt_members_text(struct jtext *j, const char *text, size_t len)
{
	if (len == 0)
		return;
	separate(j);
	put(j, text, len);
}

void jt_object_begin(struct jtext *j) { open_level(j, '{'); }
void jt_object_end(struct jtext *j) { close_level(j, '}'); }
void jt_array_begin(struct jtext *j) { open_level(j, '['); }
void jt_array_end(struct jtext *j) { close_level(j, ']'); }

/* RFC 8259 §7: quote, backslash and control characters are escaped. */
static void put_quoted(struct jtext *j, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	put(j, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		const unsigned char *run = p;
		while (*p >= 0x20 && *p != '"' && *p != '\\')
			p++;
		put(j, (const char *)run, (size_t)(p - run));
		if (!*p)
			break;
		if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p };
			put(j, esc, 2);
		} else {
			char esc[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };
			put(j, esc, 6);
		}
	}
	put(j, "\"", 1);
}

void jt_key(struct jtext *j, const char *key)
{
	size_t n = strlen(key);

	separate(j);
	/* Keys are identifiers from the code: written as they are. */
	if (!reserve(j, n + 3))
		return;
	j->buf[j->len++] = '"';
	memcpy(j->buf + j->len, key, n);
	j->len += n;
	j->buf[j->len++] = '"';
	j->buf[j->len++] = ':';
	j->buf[j->len] = '\0';
	j->after_key = true;
}

void jt_string(struct jtext *j, const char *s)
{
	separate(j);
	put_quoted(j, s ? s : "");
}

void jt_int(struct jtext *j, int64_t v)
{
	char num[24];
	char *p = num + sizeof(num);
	/* Negate in unsigned arithmetic so INT64_MIN works too. */
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	separate(j);
	put(j, p, (size_t)(num + sizeof(num) - p));
}

void jt_number(struct jtext *j, double v, int decimals)
{
	char num[64];
	int n = snprintf(num, sizeof(num), "%.*f", decimals, v);

	separate(j);
	/* JSON has no NaN or infinity. */
	if (v != v || v > 1e30 || v < -1e30 || n < 0 || (size_t)n >= sizeof(num))
		put(j, "null", 4);
	else
		put(j, num, (size_t)n);
}

void jt_bool(struct jtext *j, bool v)
{
	separate(j);
	put(j, v ? "true" : "false", v ? 4 : 5);
}

void jt_null(struct jtext *j)
{
	separate(j);
	put(j, "null", 4);
}
