/* SPDX-License-Identifier: MIT */
/*
 * TSC frequency, measured in ring 0 (where CPUID shows what the VMM
 * exposes), from the first source that works:
 *
 *   cpuid-15h  SDM Vol. 3 18.7.3: TSC/crystal ratio times crystal Hz
 *   kvmclock   KVM's pvclock: tsc_to_system_mul and tsc_shift give the
 *              exact rate the host uses (Documentation/virt/kvm/x86/msr.rst)
 *   pit        i8254 channel 2 counting 10 ms, timed with RDTSC
 *   cpuid-16h  the nominal base frequency in MHz, last: it is rounded
 */
#include "demo.h"

#define KVM_CPUID_SIGNATURE 0x40000000
#define KVM_CPUID_FEATURES 0x40000001
#define KVM_FEATURE_CLOCKSOURCE2 (1U << 3)
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define KVMCLOCK_TRIES 1000000

#define PIT_HZ 1193182ULL
#define PIT_TICKS 11932 /* 10 ms */
#define PIT_CONTROL 0x43
#define PIT_CHANNEL2 0x42
#define PORT_B 0x61 /* bit 0: channel 2 gate, bit 1: speaker, bit 5: OUT2 */
#define PIT_POLL_MAX 10000000

struct cpuid {
	uint32_t eax, ebx, ecx, edx;
};

static struct cpuid cpuid(uint32_t leaf)
{
	struct cpuid r;

	__asm__ volatile("cpuid"
			 : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
			 : "a"(leaf), "c"(0));
	return r;
}

static uint64_t from_cpuid_15(void)
{
	struct cpuid r;

	if (cpuid(0).eax < 0x15)
		return 0;
	r = cpuid(0x15);
	if (!r.eax || !r.ebx || !r.ecx)
		return 0;
	return (uint64_t)r.ecx * r.ebx / r.eax;
}

static uint64_t from_cpuid_16(void)
{
	if (cpuid(0).eax < 0x16)
		return 0;
	return (uint64_t)(cpuid(0x16).eax & 0xFFFF) * 1000000;
}

/* KVM's struct pvclock_vcpu_time_info. */
struct pvclock {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
} __attribute__((packed, aligned(32)));

static bool kvm_clocksource2(void)
{
	struct cpuid sig = cpuid(KVM_CPUID_SIGNATURE);

	/* "KVMKVMKVM\0\0\0" in EBX, ECX, EDX. */
	return sig.ebx == 0x4b4d564b && sig.ecx == 0x564b4d56 && sig.edx == 0x4d &&
	       sig.eax >= KVM_CPUID_FEATURES &&
	       (cpuid(KVM_CPUID_FEATURES).eax & KVM_FEATURE_CLOCKSOURCE2);
}

/* ns = ((tsc delta << shift) * mul) >> 32, so Hz = 10^9 * 2^32 / mul / 2^shift. */
static uint64_t from_kvmclock(void)
{
	static volatile struct pvclock clock;
	uint32_t mul = 0;
	int8_t shift = 0;
	uint64_t hz;

	if (!kvm_clocksource2())
		return 0;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)(uintptr_t)&clock | 1);
	/* The host fills the structure before it next enters the guest; an
	 * odd or zero version means it is not there yet or being written. */
	for (uint32_t tries = 0;; tries++) {
		uint32_t version = clock.version;
		if (tries > KVMCLOCK_TRIES)
			break;
		if (!version || (version & 1))
			continue;
		mul = clock.tsc_to_system_mul;
		shift = clock.tsc_shift;
		if (clock.version == version)
			break;
	}
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0);
	if (!mul)
		return 0;
	hz = (1000000000ULL << 32) / mul;
	return shift >= 0 ? hz >> shift : hz << -shift;
}

static uint64_t from_pit(void)
{
	uint64_t start, end;
	uint32_t polls = 0;

	outb(PORT_B, (uint8_t)((inb(PORT_B) & ~0x02) | 0x01));
	outb(PIT_CONTROL, 0xB0); /* channel 2, lobyte/hibyte, mode 0 */
	outb(PIT_CHANNEL2, PIT_TICKS & 0xFF);
	start = rdtsc();
	outb(PIT_CHANNEL2, PIT_TICKS >> 8);
	while (!(inb(PORT_B) & 0x20))
		if (++polls > PIT_POLL_MAX)
			return 0;
	end = rdtsc();
	/* A port that reads 0xFF (no PIT) ends at once: reject absurd rates. */
	if (end - start < 1000000)
		return 0;
	return (end - start) * PIT_HZ / PIT_TICKS;
}

void tsc_measure(struct tsc_clock *ret)
{
	static const struct {
		const char *name;
		uint64_t (*measure)(void);
	} sources[] = {
		{ "cpuid-15h", from_cpuid_15 },
		{ "kvmclock", from_kvmclock },
		{ "pit", from_pit },
		{ "cpuid-16h", from_cpuid_16 },
	};

	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		uint64_t hz = sources[i].measure();
		if (hz) {
			*ret = (struct tsc_clock){ .hz = hz, .source = sources[i].name };
			return;
		}
	}
	*ret = (struct tsc_clock){ .hz = 0, .source = "none" };
}
