/* SPDX-License-Identifier: MIT */
#include "util/crc32c.h"

/* Reflected Castagnoli polynomial. */
#define CRC32C_POLY 0x82F63B78U

/*
 * Bitwise: vCPU states are a few KiB and checksummed once per save or
 * load, so a table (and the state it would need) is not worth it.
 */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (CRC32C_POLY & (0U - (crc & 1)));
	}
	return ~crc;
}
