/* SPDX-License-Identifier: MIT */
/* The multiboot header, linked into every guest meant for multiboot loaders. */
#include "boot-headers.h"

	MULTIBOOT_HEADER

	.section .note.GNU-stack, "", @progbits
