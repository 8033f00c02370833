/* SPDX-License-Identifier: MIT */
/*
 * smp: brings up every application processor with INIT-SIPI-SIPI through
 * the local APIC and has each report its APIC ID.
 *
 * The BSP copies a real-mode trampoline to SMP_TRAMPOLINE (SIPI vector
 * 0x10) and broadcasts INIT, then two start-up IPIs, to all processors
 * but itself through the xAPIC page at 0xFEE00000 (SDM Vol. 3A §8.4.4.1,
 * "Typical BSP Initialization Sequence"; §10.6.1 for the ICR). Each AP
 * starts there in real mode (CS = vector << 8, IP = 0), switches to flat
 * 32-bit protected mode, takes a stack, and in C reads its APIC ID (from
 * the xAPIC ID register, or with x2apic=1 from the x2APIC ID MSR after
 * enabling x2APIC mode, for IDs above 254), prints "ap=<id>" under a lock
 * and counts itself in. The BSP waits until cpus-1 APs have arrived and
 * exits through the debug-exit port.
 *
 * Command line: cpus=N (required, the number of vCPUs including the BSP),
 * x2apic=1 (optional), halt=1 (optional: once all APs are up, halt with
 * interrupts off instead of ending the VM, so a test can reset it).
 *
 * Output:
 *   smp: cpus=<N> x2apic=<0|1>
 *   bsp=<APIC ID of the BSP>
 *   ap=<APIC ID>             one line per AP, in arrival order
 *   smp: all <N> cpus up     exit status 0
 * or "smp: <K> of <N-1> APs arrived" and exit status 1 after a timeout.
 */
#include "lib/guest.h"

/* SIPI vector 0x10: the APs start at 0x10000, clear of the boot loader's
 * area (0x6000-0xA000, which holds the command line) and of the kernel at
 * 1 MiB. */
#define SMP_TRAMPOLINE 0x10000
#define SMP_SIPI_VECTOR (SMP_TRAMPOLINE >> 12)
/* AP stacks: 1 KiB each from 4 MiB up, above the kernel (1 MiB) and below
 * the end of the 8 MiB the VM needs for the most CPUs. */
#define AP_STACKS 0x400000
#define AP_STACK_SIZE 1024
#define AP_STACK_SHIFT 10
/* KVM's largest vCPU id is below 4096 (KVM_MAX_VCPU_IDS). */
#define MAX_CPUS 4096
#define STR(x) #x
#define XSTR(x) STR(x)

/* xAPIC registers (SDM Vol. 3A Table 10-1). */
#define XAPIC_BASE 0xFEE00000U
#define XAPIC_ID 0x20
#define XAPIC_SVR 0xF0
#define XAPIC_ICR_LOW 0x300
#define XAPIC_ICR_HIGH 0x310
#define SVR_APIC_ENABLE (1U << 8)
#define ICR_DELIVERY_PENDING (1U << 12)
/* ICR: destination shorthand "all excluding self" (bits 19:18 = 11),
 * level assert (bit 14), delivery mode INIT (101) or start-up (110). */
#define ICR_ALL_BUT_SELF (3U << 18)
#define ICR_ASSERT (1U << 14)
#define ICR_INIT (5U << 8)
#define ICR_STARTUP (6U << 8)

/* x2APIC (SDM Vol. 3A §10.12): IA32_APIC_BASE.EXTD and the ID MSR. */
#define MSR_IA32_APIC_BASE 0x1B
#define APIC_BASE_EXTD (1U << 10)
#define APIC_BASE_ENABLE (1U << 11)
#define MSR_X2APIC_ID 0x802

/* Wait for the APs: about 30 s at a 2 GHz TSC, whatever the host's speed. */
#define AP_WAIT_TSC_CYCLES (1ULL << 36)

volatile uint32_t ap_next_stack;
volatile uint32_t ap_arrived;
static volatile uint32_t print_lock;
static volatile uint32_t use_x2apic;

void ap_main(void);
extern const uint8_t smp_trampoline[], smp_trampoline_end[];

/*
 * The trampoline, linked here but run from SMP_TRAMPOLINE, so every
 * address inside it is computed from its start. Real mode: DS = CS, load
 * a flat GDT, set CR0.PE and far-jump into 32-bit code, which takes the
 * next stack (lock xadd) and calls ap_main() at its linked address.
 */
__asm__(".pushsection .text\n"
	".code16\n"
	".globl smp_trampoline, smp_trampoline_end\n"
	"smp_trampoline:\n"
	"	cli\n"
	"	movw %cs, %ax\n"
	"	movw %ax, %ds\n"
	"	lgdtl (ap_gdtr - smp_trampoline)\n"
	"	movl %cr0, %eax\n"
	"	orl $1, %eax\n"
	"	movl %eax, %cr0\n"
	"	ljmpl $0x08, $(0x10000 + ap_pm32 - smp_trampoline)\n"
	".code32\n"
	"ap_pm32:\n"
	"	movw $0x10, %ax\n"
	"	movw %ax, %ds\n"
	"	movw %ax, %es\n"
	"	movw %ax, %fs\n"
	"	movw %ax, %gs\n"
	"	movw %ax, %ss\n"
	"	movl $1, %eax\n"
	"	lock xaddl %eax, ap_next_stack\n"
	"	incl %eax\n"
	"	shll $" XSTR(AP_STACK_SHIFT) ", %eax\n"
	"	addl $" XSTR(AP_STACKS) ", %eax\n"
	"	movl %eax, %esp\n"
	"	movl $ap_main, %eax\n"
	"	call *%eax\n"
	"1:	cli\n"
	"	hlt\n"
	"	jmp 1b\n"
	"	.balign 8\n"
	"ap_gdt:\n"
	"	.quad 0\n"
	"	.quad 0x00CF9B000000FFFF\n" /* 0x08: flat 32-bit code */
	"	.quad 0x00CF93000000FFFF\n" /* 0x10: flat data */
	"ap_gdtr:\n"
	"	.word 23\n"
	"	.long 0x10000 + ap_gdt - smp_trampoline\n"
	"smp_trampoline_end:\n"
	".popsection\n");

_Static_assert(SMP_TRAMPOLINE == 0x10000, "the trampoline's addresses assume 0x10000");
_Static_assert(AP_STACK_SIZE == 1 << AP_STACK_SHIFT, "the trampoline shifts by AP_STACK_SHIFT");

static volatile uint32_t *xapic(unsigned int reg)
{
	return (volatile uint32_t *)(uintptr_t)(XAPIC_BASE + reg);
}

static uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* APIC ID: xAPIC ID register bits 31:24 (§10.4.6), or the 32-bit x2APIC
 * ID after switching this processor to x2APIC mode (§10.12.5.1). */
static uint32_t apic_id(void)
{
	if (!use_x2apic)
		return *xapic(XAPIC_ID) >> 24;
	wrmsr(MSR_IA32_APIC_BASE, rdmsr(MSR_IA32_APIC_BASE) | APIC_BASE_ENABLE | APIC_BASE_EXTD);
	return (uint32_t)rdmsr(MSR_X2APIC_ID);
}

/* Does RAM reach `end`? Multiboot says how much there is above 1 MiB
 * (mem_upper, in KiB); without that information, assume it does. */
static bool memory_holds(uint64_t end)
{
	const struct multiboot_info *mbi;

	if (boot.protocol != BOOT_MULTIBOOT)
		return true;
	mbi = phys(boot.ebx);
	return !(mbi->flags & 1) || end <= 0x100000 + (uint64_t)mbi->mem_upper * 1024;
}

static void lock(void)
{
	while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE))
		while (print_lock)
			__builtin_ia32_pause();
}

static void unlock(void)
{
	__atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}

void ap_main(void)
{
	char line[16] = "ap=";
	size_t n = 3;

	n += fmt_dec(line + n, apic_id());
	line[n++] = '\n';
	lock();
	console_write(line, n);
	unlock();
	__atomic_fetch_add(&ap_arrived, 1, __ATOMIC_SEQ_CST);
}

static void send_ipi(uint32_t icr_low)
{
	while (*xapic(XAPIC_ICR_LOW) & ICR_DELIVERY_PENDING)
		__builtin_ia32_pause();
	*xapic(XAPIC_ICR_HIGH) = 0;
	*xapic(XAPIC_ICR_LOW) = icr_low;
}

/*
 * INIT, then two SIPIs (§8.4.4.1). The architectural 10 ms and 200 µs
 * waits between them are left out: KVM's LAPIC latches INIT and SIPI and
 * processes them in order, and a second SIPI to a running AP is ignored.
 */
static void start_aps(void)
{
	*xapic(XAPIC_SVR) = SVR_APIC_ENABLE | 0xFF;
	send_ipi(ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_INIT);
	send_ipi(ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | SMP_SIPI_VECTOR);
	send_ipi(ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | SMP_SIPI_VECTOR);
}

int main(void)
{
	uint64_t cpus = cmdline_number("cpus", 0);
	uint64_t deadline;

	use_x2apic = cmdline_number("x2apic", 0) != 0;
	print("smp: cpus=");
	print_dec(cpus);
	print(" x2apic=");
	print_dec(use_x2apic);
	print("\n");
	if (cpus < 1 || cpus > MAX_CPUS) {
		print("smp: cpus=N must be between 1 and ");
		print_dec(MAX_CPUS);
		print("\n");
		return 2;
	}
	if (!memory_holds(AP_STACKS + cpus * AP_STACK_SIZE)) {
		print("smp: the AP stacks need memory up to ");
		print_dec((AP_STACKS + cpus * AP_STACK_SIZE) >> 20);
		print(" MiB\n");
		return 2;
	}
	print_kv_dec("bsp", *xapic(XAPIC_ID) >> 24);
	memcpy(phys(SMP_TRAMPOLINE), smp_trampoline, (size_t)(smp_trampoline_end - smp_trampoline));
	if (cpus > 1)
		start_aps();
	deadline = rdtsc() + AP_WAIT_TSC_CYCLES;
	while (ap_arrived < cpus - 1 && rdtsc() < deadline)
		__builtin_ia32_pause();
	lock();
	if (ap_arrived != cpus - 1) {
		print("smp: ");
		print_dec(ap_arrived);
		print(" of ");
		print_dec(cpus - 1);
		print(" APs arrived\n");
		return 1;
	}
	print("smp: all ");
	print_dec(cpus);
	print(" cpus up\n");
	unlock();
	if (cmdline_number("halt", 0))
		for (;;)
			__asm__ volatile("cli; hlt");
	return 0;
}
