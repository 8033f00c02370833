/* SPDX-License-Identifier: MIT */
/*
 * CRC-32C (Castagnoli): the checksum of iSCSI (RFC 3720 §B.4), ext4 and
 * btrfs metadata. Polynomial 0x1EDC6F41, reflected (0x82F63B78), initial
 * value and final XOR 0xFFFFFFFF; crc32c("123456789") = 0xE3069283.
 */
#ifndef VMMD_UTIL_CRC32C_H
#define VMMD_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of len bytes. To checksum in pieces, pass the previous result
 * as crc (0 to start). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
