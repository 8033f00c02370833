/* SPDX-License-Identifier: MIT */
/*
 * xrstor: executes XRSTOR in ring 0, an instruction some KVM hosts cannot
 * emulate (docs/host-notes.md): where KVM emulates ring-0 code without
 * support for it, KVM_RUN ends in KVM_EXIT_INTERNAL_ERROR (suberror 1,
 * instruction emulation failed). Where the CPU runs it, the guest goes on
 * and says so.
 *
 * XRSTOR needs CR4.OSXSAVE, which needs CPUID.1:ECX.XSAVE[bit 26]. The
 * area is all zeroes, a valid XSAVE header that restores x87 to its
 * initial state (SDM Vol. 1 13.8), so the instruction itself cannot fault.
 *
 * Output:
 *   xrstor: executing xrstor in ring 0
 *   xrstor: executed                      (the host ran it) exit 0
 *   xrstor: XSAVE is not offered          exit 2
 */
#include "lib/guest.h"

#define CPUID_1_ECX_XSAVE (1u << 26)
#define CR4_OSXSAVE (1u << 18)
#define XSAVE_AREA_SIZE 1024
#define XFEATURE_X87 1u

static uint32_t cpuid_1_ecx(void)
{
	uint32_t a = 1, b, c = 0, d;

	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	return c;
}

static void enable_osxsave(void)
{
	uint32_t cr4;

	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | CR4_OSXSAVE));
}

int main(void)
{
	static uint8_t area[XSAVE_AREA_SIZE] __attribute__((aligned(64)));

	if (!(cpuid_1_ecx() & CPUID_1_ECX_XSAVE)) {
		print("xrstor: XSAVE is not offered\n");
		return 2;
	}
	enable_osxsave();
	memset(area, 0, sizeof(area));
	print("xrstor: executing xrstor in ring 0\n");
	__asm__ volatile("xrstor %0" : : "m"(area), "a"(XFEATURE_X87), "d"(0) : "memory");
	print("xrstor: executed\n");
	return 0;
}
