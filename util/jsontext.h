/* SPDX-License-Identifier: MIT */
/*
 * Writing JSON text directly, for hot replies where building a tree of
 * json-c objects (a hash table and several allocations per object) costs
 * far more than the text itself. Commas are placed automatically:
 *
 *     jt_object_begin(&j);
 *     jt_key(&j, "name"); jt_string(&j, "web1");
 *     jt_key(&j, "pid");  jt_int(&j, 42);
 *     jt_object_end(&j);
 *
 * Errors (allocation, nesting beyond JT_MAX_DEPTH) are sticky: check
 * jt_failed() once at the end.
 */
#ifndef VMMD_UTIL_JSONTEXT_H
#define VMMD_UTIL_JSONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JT_MAX_DEPTH 16

struct jtext {
	char *buf;
	size_t len, cap;
	bool failed;
	unsigned int depth;
	bool first[JT_MAX_DEPTH + 1]; /* no value written yet at this depth */
	bool after_key;
};

void jt_init(struct jtext *j);
void jt_free(struct jtext *j);
/* The text (NUL-terminated) and its length; ownership passes to the caller. */
char *jt_take(struct jtext *j, size_t *ret_len);
bool jt_failed(const struct jtext *j);

void jt_object_begin(struct jtext *j);
void jt_object_end(struct jtext *j);
void jt_array_begin(struct jtext *j);
void jt_array_end(struct jtext *j);
/* key is an identifier from the code (no character that needs escaping). */
void jt_key(struct jtext *j, const char *key);
void jt_string(struct jtext *j, const char *s);
void jt_int(struct jtext *j, int64_t v);
/* A number with `decimals` digits after the point (JSON null for NaN/inf). */
void jt_number(struct jtext *j, double v, int decimals);
void jt_bool(struct jtext *j, bool v);
void jt_null(struct jtext *j);
/* Members ("k":v,...) already written as JSON text, appended inside the
 * object being written as if each had been written here. */
void jt_members_text(struct jtext *j, const char *text, size_t len);

#endif
