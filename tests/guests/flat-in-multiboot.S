/* SPDX-License-Identifier: MIT */
/*
 * QEMU cannot load a raw flat binary at 1 MiB. This file is FLAT_BIN
 * followed by a multiboot header using the a.out kludge (3.1.3) that loads
 * the whole file at 1 MiB and enters at its first byte, so QEMU's multiboot
 * loader starts the flat image as the flat protocol would (EAX and EBX
 * differ; flat images ignore them).
 */
#define MB_HEADER_MAGIC 0x1BADB002
#define MB_FLAG_AOUT_KLUDGE 0x00010000
#define LOAD_ADDR 0x100000

	.text
image:
	.incbin FLAT_BIN
	.balign 4
header:
	.long MB_HEADER_MAGIC
	.long MB_FLAG_AOUT_KLUDGE
	.long -(MB_HEADER_MAGIC + MB_FLAG_AOUT_KLUDGE)
	.long LOAD_ADDR + (header - image)     /* header_addr */
	.long LOAD_ADDR                        /* load_addr */
	.long 0                                /* load_end_addr: whole file */
	.long 0                                /* bss_end_addr: none */
	.long LOAD_ADDR                        /* entry_addr */
	/* 3.1.1: the header must lie in the first 8192 bytes; the Makefile
	 * checks FLAT_BIN's size. */

	.section .note.GNU-stack, "", @progbits
