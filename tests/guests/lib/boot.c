/* SPDX-License-Identifier: MIT */
/*
 * What the loader passed: the protocol the entry stub saw, and the command
 * line from the multiboot information (3.3, flags bit 2) or from the PVH
 * start_info (cmdline_paddr).
 */
#include "guest.h"

struct boot boot = { .cmdline = "" };

const char *boot_protocol_name(enum boot_protocol p)
{
	switch (p) {
	case BOOT_MULTIBOOT: return "multiboot";
	case BOOT_PVH: return "pvh";
	case BOOT_FLAT: return "flat";
	}
	return "unknown";
}

static const char *find_cmdline(enum boot_protocol p, uint32_t eax, uint32_t ebx)
{
	if (p == BOOT_MULTIBOOT && eax == MULTIBOOT_LOADER_MAGIC) {
		const struct multiboot_info *mb = phys(ebx);
		if ((mb->flags & (1U << 2)) && mb->cmdline)
			return phys(mb->cmdline);
	}
	if (p == BOOT_PVH && ebx) {
		const struct pvh_start_info *si = phys(ebx);
		if (si->magic == PVH_START_MAGIC && si->cmdline_paddr)
			return phys(si->cmdline_paddr);
	}
	return "";
}

void boot_init(enum boot_protocol p, uint32_t eax, uint32_t ebx)
{
	boot.protocol = p;
	boot.eax = eax;
	boot.ebx = ebx;
	boot.cmdline = find_cmdline(p, eax, ebx);
}

static bool word_has_key(const char *w, const char *key, size_t keylen)
{
	for (size_t i = 0; i < keylen; i++)
		if (w[i] != key[i])
			return false;
	return w[keylen] == '=';
}

const char *cmdline_value(const char *key, size_t *ret_len)
{
	const char *s = boot.cmdline;
	size_t keylen = str_len(key);

	while (*s) {
		const char *w;
		while (*s == ' ')
			s++;
		w = s;
		while (*s && *s != ' ')
			s++;
		if ((size_t)(s - w) > keylen && word_has_key(w, key, keylen)) {
			*ret_len = (size_t)(s - w) - keylen - 1;
			return w + keylen + 1;
		}
	}
	return NULL;
}

uint64_t cmdline_number(const char *key, uint64_t dflt)
{
	size_t len;
	const char *v = cmdline_value(key, &len);
	uint64_t n = 0;

	if (!v || len == 0)
		return dflt;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return dflt;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	return n;
}
