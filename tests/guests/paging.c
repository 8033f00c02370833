/* SPDX-License-Identifier: MIT */
/*
 * paging: turns on 4-level paging with a known layout, checks it, then
 * halts (interrupts off) so tests can inspect the VM: vcpu.role,
 * vm.translate, vm.memory.read.
 *
 * It stays in 32-bit code: with EFER.LME set and CR0.PG turned on while CS
 * is a 32-bit segment, the CPU runs in IA-32e compatibility mode (SDM Vol.
 * 3 9.8.5) with 4-level paging, which is all this guest needs. (32-bit and
 * PAE paging without long mode are not used: some hosts, e.g. PVM-backed
 * KVM, cannot run them.)
 *
 * Layout (SDM Vol. 3 4.5); tables at PML4 0x200000, PDPT 0x201000,
 * PD 0x202000 (first GiB) and 0x205000 (second GiB), PT 0x203000:
 *   GVA [0, 4 MiB)           -> itself, supervisor RW, two 2 MiB pages
 *   GVA 0x40000000 (4 KiB)   -> 0x800000, user RW       "vmmd paging marker"
 *   GVA 0x40001000           -> 0x801000, user read-only "read-only page"
 *   GVA 0x40002000           -> not present
 *   GVA 0x40003000           -> 0x802000, supervisor RW
 *   GVA 0x40004000           -> 0x803000, user RW, execute-disable
 *   GVA [0x80000000, +1 GiB) -> [0, 1 GiB), one 1 GiB page, supervisor RW
 *                               (only with 1 GiB page support; else absent)
 * EFER.NX and CR0.WP are set. The guest reads GVA 0x40000000 once (setting
 * A bits on that path); the other pages' entries keep A = 0.
 * Output: "paging: ready cr3=0x200000 gbpages=1", or "paging: FAILED ...".
 */
#include "lib/guest.h"

#define P (1ull << 0)
#define RW (1ull << 1)
#define US (1ull << 2)
#define PS (1ull << 7)
#define XD (1ull << 63)

#define CR0_WP (1u << 16)
#define CR0_PG (1u << 31)
#define CR4_PAE (1u << 5)
#define MSR_EFER 0xC0000080u
#define EFER_LME (1u << 8)
#define EFER_NX (1u << 11)

#define PML4 0x200000u
#define PDPT 0x201000u
#define PD_LOW 0x202000u
#define PT 0x203000u
#define PD_WINDOW 0x205000u
#define WINDOW 0x40000000u

static const char marker[] = "vmmd paging marker";
static const char ro_text[] = "read-only page";

static void put(uint32_t table, unsigned int index, uint64_t value)
{
	((volatile uint64_t *)phys(table))[index] = value;
}

/* CPUID.80000001H:EDX[26]: 1 GiB pages. */
static bool has_gbpages(void)
{
	uint32_t a = 0x80000001, b, c = 0, d;

	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	return d & (1u << 26);
}

static void build_tables(bool gbpages)
{
	memset(phys(PML4), 0, 0x6000);
	put(PML4, 0, PDPT | US | RW | P);
	put(PDPT, 0, PD_LOW | US | RW | P);
	put(PDPT, 1, PD_WINDOW | US | RW | P);
	if (gbpages)
		put(PDPT, 2, 0 | PS | RW | P);
	put(PD_LOW, 0, 0x000000 | PS | RW | P);
	put(PD_LOW, 1, 0x200000 | PS | RW | P);
	put(PD_WINDOW, 0, PT | US | RW | P);
	put(PT, 0, 0x800000 | US | RW | P);
	put(PT, 1, 0x801000 | US | P);
	put(PT, 3, 0x802000 | RW | P);
	put(PT, 4, 0x803000 | US | RW | P | XD);
}

static void enter_long_mode_paging(void)
{
	uint32_t lo, hi, cr0, cr4;

	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | CR4_PAE));
	__asm__ volatile("mov %0, %%cr3" : : "r"(PML4) : "memory");
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(MSR_EFER));
	__asm__ volatile("wrmsr" : : "a"(lo | EFER_LME | EFER_NX), "d"(hi), "c"(MSR_EFER));
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr0 | CR0_PG | CR0_WP) : "memory");
}

int main(void)
{
	bool gbpages = has_gbpages();

	memcpy(phys(0x800000), marker, sizeof(marker));
	for (unsigned int i = 0; i < 256; i++)
		((volatile uint8_t *)phys(0x800100))[i] = (uint8_t)i;
	memcpy(phys(0x801000), ro_text, sizeof(ro_text));
	build_tables(gbpages);
	enter_long_mode_paging();
	if (!str_eq((const char *)(uintptr_t)WINDOW, marker)) {
		print("paging: FAILED: the window does not show the marker\n");
		return 1;
	}
	print("paging: ready cr3=");
	print_hex(PML4);
	print(gbpages ? " gbpages=1\n" : " gbpages=0\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}
