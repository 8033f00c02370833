/* SPDX-License-Identifier: MIT */
/* Standard base64 (RFC 4648 §4, with padding): console bytes travel in JSON strings. */
#ifndef VMMD_UTIL_BASE64_H
#define VMMD_UTIL_BASE64_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* Length of the encoding of n bytes, without the NUL. */
size_t base64_encoded_len(size_t n);

/* Encodes n bytes into out (base64_encoded_len(n) + 1 bytes); NUL-terminates. */
void base64_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decodes text (len chars) into out, which must hold len / 4 * 3 bytes.
 * Returns the decoded length, or -EINVAL for bad characters, bad padding or
 * a length that is not a multiple of 4.
 */
long base64_decode(const char *text, size_t len, uint8_t *out);

#endif
