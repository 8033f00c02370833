/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "tests/kvm/kvm-test.h"
#include "util/macro.h"
#include "vcpu/cpuid.h"
#include "vcpu/state.h"

/* Where KVM may put the three pages of the VMX real-mode TSS (as the worker). */
#define TEST_TSS_ADDR 0xFFFBD000UL

void kvm_test_print_skip(const char *test, const char *fmt, ...)
{
	va_list ap;

	printf("SKIP: %s: ", test);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

void kvm_test_check(int rc, const struct error *err)
{
	if (rc < 0)
		fail_msg("%s", err->msg);
}

int kvm_test_teardown(void **state)
{
	kvm_test_vm_free(*state);
	return 0;
}

void kvm_test_require_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		printf("SKIP: /dev/kvm cannot be opened (%s); the KVM tests need it\n",
		       strerror(errno));
		fflush(stdout);
		exit(KVM_TEST_SKIP_STATUS);
	}
	close(fd);
}

static struct kvm_test_vm *vm_of(void *ctx)
{
	return ctx;
}

static int on_io(void *ctx, struct vcpu *v, bool is_write, uint16_t port, void *data,
		 unsigned int size, uint32_t count)
{
	struct kvm_test_vm *vm = vm_of(ctx);
	uint32_t value = 0;

	if (vm->pause_on_port && port == vm->pause_on_port)
		vcpu_pause(v);
	if (!is_write) {
		memset(data, 0xFF, (size_t)size * count);
		if (port == PORT_IN && size == 4 && count == 1)
			*(uint32_t *)data = PORT_IN_VALUE;
		return 0;
	}
	memcpy(&value, data, MIN(size, sizeof(value)));
	pthread_mutex_lock(&vm->lock);
	if (vm->nr_writes < KVM_TEST_MAX_WRITES)
		vm->writes[vm->nr_writes++] = (struct kvm_test_write){
			.vcpu = vcpu_id(v), .port = port, .value = value,
		};
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

static int on_mmio(void *ctx, struct vcpu *v, uint64_t addr, bool is_write, void *data,
		   unsigned int len)
{
	if (!is_write)
		memset(data, 0xFF, len);
	return 0;
}

static void on_stopped(void *ctx, struct vcpu *v, enum vcpu_stop_kind kind, const char *msg)
{
	struct kvm_test_vm *vm = vm_of(ctx);
	unsigned int id = vcpu_id(v);

	pthread_mutex_lock(&vm->lock);
	vm->nr_stopped++;
	if (id < KVM_TEST_MAX_VCPUS) {
		snprintf(vm->stop_message[id], sizeof(vm->stop_message[id]), "%s", msg);
		vm->stop_unexpected[id] = kind != VCPU_STOP_REQUESTED;
	}
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

static const struct vcpu_exit_ops test_ops = {
	.io = on_io,
	.mmio = on_mmio,
	.stopped = on_stopped,
};

static uint8_t *map_slot(struct kvm_test_vm *vm, unsigned int slot, uint64_t gpa, size_t size)
{
	uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct kvm_userspace_memory_region r = {
		.slot = slot, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)mem,
	};

	assert_true(mem != MAP_FAILED);
	assert_int_equal(ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r), 0);
	return mem;
}

struct kvm_test_vm *kvm_test_vm_new(unsigned int n)
{
	struct kvm_test_vm *vm = calloc(1, sizeof(*vm));
	struct error e;

	assert_non_null(vm);
	assert_true(n <= KVM_TEST_MAX_VCPUS);
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	assert_int_equal(vcpu_init_signals(), 0);
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	assert_true(vm->kvm_fd >= 0);
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	assert_true(vm->vm_fd >= 0);
	assert_int_equal(ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, TEST_TSS_ADDR), 0);
	assert_int_equal(ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0), 0);
	vm->ram = map_slot(vm, 0, 0, KVM_TEST_RAM_SIZE);
	vm->flash = map_slot(vm, 1, KVM_TEST_FLASH_BASE, KVM_TEST_FLASH_SIZE);
	if (vcpu_supported_cpuid(vm->kvm_fd, &vm->cpuid, &e) < 0)
		fail_msg("%s", e.msg);
	for (unsigned int i = 0; i < n; i++) {
		if (vcpu_create(vm->kvm_fd, vm->vm_fd, i, &test_ops, vm, &vm->vcpu[i], &e) < 0 ||
		    vcpu_set_cpuid(vm->vcpu[i], vm->cpuid, &e) < 0)
			fail_msg("%s", e.msg);
		vm->nr_vcpus++;
	}
	return vm;
}

void kvm_test_vm_free(struct kvm_test_vm *vm)
{
	if (!vm)
		return;
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_request_stop(vm->vcpu[i]);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_free(vm->vcpu[i]);
	munmap(vm->ram, KVM_TEST_RAM_SIZE);
	munmap(vm->flash, KVM_TEST_FLASH_SIZE);
	close(vm->vm_fd);
	close(vm->kvm_fd);
	free(vm->cpuid);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

void *kvm_test_gpa(struct kvm_test_vm *vm, uint64_t gpa)
{
	if (gpa >= KVM_TEST_FLASH_BASE)
		return vm->flash + (gpa - KVM_TEST_FLASH_BASE);
	assert_true(gpa < KVM_TEST_RAM_SIZE);
	return vm->ram + gpa;
}

void kvm_test_load(struct kvm_test_vm *vm, uint64_t gpa, const void *code, size_t len)
{
	memcpy(kvm_test_gpa(vm, gpa), code, len);
}

static struct kvm_segment flat(uint16_t selector, uint8_t type)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xFFFFFFFF, .selector = selector, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

void kvm_test_enter_protected_mode(struct kvm_test_vm *vm, unsigned int i, uint32_t eip,
				   uint32_t esp, uint64_t cr0_extra, uint64_t cr4_extra)
{
	struct vcpu *v = vm->vcpu[i];
	struct kvm_sregs2 s;
	struct kvm_regs r = { .rip = eip, .rsp = esp, .rflags = 0x2 };
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	struct error e;

	if (vcpu_get_sregs2(v, &s, &e) < 0)
		fail_msg("%s", e.msg);
	s.cs = flat(0x08, 0xB);
	s.ds = s.es = s.fs = s.gs = s.ss = flat(0x10, 0x3);
	s.cr0 = 0x11 | cr0_extra; /* PE, ET */
	s.cr4 = cr4_extra;
	if (vcpu_set_sregs2(v, &s, &e) < 0 || vcpu_set_regs(v, &r, &e) < 0 ||
	    vcpu_set_mp_state(v, &mp, &e) < 0)
		fail_msg("%s", e.msg);
}

/* Page-table entry flags (SDM Vol. 3A Table 4-15/4-17): present, writable,
 * user, accessed, dirty; PS for a 2 MiB page. */
#define PTE_TABLE 0x27ULL
#define PTE_2M_PAGE 0xE7ULL

static void put64(struct kvm_test_vm *vm, uint64_t gpa, uint64_t v)
{
	memcpy(kvm_test_gpa(vm, gpa), &v, 8);
}

static void build_user_scaffolding(struct kvm_test_vm *vm)
{
	put64(vm, USER_PML4, USER_PDPT | PTE_TABLE);
	put64(vm, USER_PDPT, USER_PD | PTE_TABLE);
	put64(vm, USER_PD, 0 | PTE_2M_PAGE);
	put64(vm, USER_PD + 8, (2ULL << 20) | PTE_2M_PAGE);
	/* SDM Vol. 3A §3.4.5 and §7.2.3: null; 0x08 64-bit ring-0 code; 0x10
	 * ring-0 data; 0x18 64-bit ring-3 code; 0x20 ring-3 data; 0x28 busy
	 * 64-bit TSS (16 bytes). */
	put64(vm, USER_GDT + 0x00, 0);
	put64(vm, USER_GDT + 0x08, 0x00AF9B000000FFFFULL);
	put64(vm, USER_GDT + 0x10, 0x00CF93000000FFFFULL);
	put64(vm, USER_GDT + 0x18, 0x00AFFB000000FFFFULL);
	put64(vm, USER_GDT + 0x20, 0x00CFF3000000FFFFULL);
	put64(vm, USER_GDT + 0x28, 0x0000000000000067ULL | ((USER_TSS & 0xFFFFFFULL) << 16) |
					   (0x8BULL << 40) | ((USER_TSS >> 24 & 0xFFULL) << 56));
	put64(vm, USER_GDT + 0x30, 0);
}

static struct kvm_segment user_segment(uint16_t selector, uint8_t type, bool code)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xFFFFFFFF, .selector = selector, .type = type,
		.present = 1, .dpl = 3, .db = code ? 0 : 1, .s = 1, .l = code ? 1 : 0, .g = 1,
	};
}

void kvm_test_enter_user_mode(struct kvm_test_vm *vm, unsigned int i, uint64_t rip, uint64_t rsp)
{
	struct vcpu *v = vm->vcpu[i];
	struct kvm_sregs2 s;
	/* RFLAGS: IOPL 3 (bits 13:12), bit 1. */
	struct kvm_regs r = { .rip = rip, .rsp = rsp, .rflags = 0x3002 };
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	struct error e;

	build_user_scaffolding(vm);
	if (vcpu_get_sregs2(v, &s, &e) < 0)
		fail_msg("%s", e.msg);
	s.cs = user_segment(0x1B, 0xB, true);
	s.ds = s.es = s.fs = s.gs = s.ss = user_segment(0x23, 0x3, false);
	s.tr = (struct kvm_segment){ .base = USER_TSS, .limit = 0x67, .selector = 0x28,
				     .type = 0xB, .present = 1 };
	s.ldt = (struct kvm_segment){ .type = 0x2, .unusable = 1 };
	s.gdt.base = USER_GDT, s.gdt.limit = 0x37;
	s.idt.base = 0, s.idt.limit = 0;
	/* PE, MP, ET, NE, WP, PG; PAE, OSFXSR, OSXMMEXCPT; LME, LMA. */
	s.cr0 = 0x80010033;
	s.cr3 = USER_PML4;
	s.cr4 = 0x620;
	s.efer = 0x500;
	if (vcpu_set_sregs2(v, &s, &e) < 0 || vcpu_set_regs(v, &r, &e) < 0 ||
	    vcpu_set_mp_state(v, &mp, &e) < 0)
		fail_msg("%s", e.msg);
}

static void deadline_after(struct timespec *ts, unsigned int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

uint32_t kvm_test_wait_write(struct kvm_test_vm *vm, int vcpu, uint16_t port,
			     unsigned int timeout_ms)
{
	struct timespec deadline;
	unsigned int scanned = 0;

	deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&vm->lock);
	for (;;) {
		for (; scanned < vm->nr_writes; scanned++) {
			struct kvm_test_write *w = &vm->writes[scanned];
			if (w->consumed || w->port != port || (vcpu >= 0 && w->vcpu != (unsigned)vcpu))
				continue;
			w->consumed = true;
			pthread_mutex_unlock(&vm->lock);
			return w->value;
		}
		for (unsigned int i = 0; i < vm->nr_vcpus; i++)
			if (vm->stop_unexpected[i]) {
				pthread_mutex_unlock(&vm->lock);
				fail_msg("vcpu %u stopped: %s", i, vm->stop_message[i]);
			}
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &deadline) == ETIMEDOUT) {
			pthread_mutex_unlock(&vm->lock);
			fail_msg("no write to port 0x%x within %u ms", port, timeout_ms);
		}
	}
}

void kvm_test_forget_writes(struct kvm_test_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->nr_writes = 0;
	pthread_mutex_unlock(&vm->lock);
}

uint64_t kvm_test_get_msr(struct vcpu *v, uint32_t index)
{
	struct kvm_msr_entry m = { .index = index };
	struct error e;

	if (vcpu_get_msrs(v, &m, 1, &e) < 0)
		fail_msg("%s", e.msg);
	return m.data;
}

bool kvm_test_tsc_writes_honoured(struct vcpu *v, uint64_t *ret_read)
{
	struct kvm_msr_entry m = { .index = 0x10 /* IA32_TSC */, .data = 1ULL << 50 };
	struct error e;

	if (vcpu_set_msrs(v, &m, 1, &e) < 0)
		fail_msg("%s", e.msg);
	*ret_read = kvm_test_get_msr(v, 0x10);
	return *ret_read >= (1ULL << 50) && *ret_read < (1ULL << 50) + (1ULL << 40);
}
