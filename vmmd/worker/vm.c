/* SPDX-License-Identifier: MIT */
#include "vmmd/worker/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/log.h"
#include "util/macro.h"
#include "mmu/mmu.h"
#include "vcpu/cpuid.h"
#include "vcpu/reset.h"
#include "vcpu/vcpu.h"
#include "vmmd/boot/boot.h"
#include "vmmd/devices/debug-exit.h"
#include "vmmd/devices/iobus.h"
#include "vmmd/devices/serial.h"
#include "vmmd/vmdef.h"
#include "vmmd/worker/memory.h"

/* KVM api.rst: the only stable API version. */
#define KVM_API_VERSION_EXPECTED 12
/* Three pages the VMX TSS needs and the EPT identity map page, in the PC hole
 * just below the BIOS area (the addresses QEMU and kvmtool also use). */
#define VM_TSS_ADDR 0xFFFBD000UL
#define VM_IDENTITY_MAP_ADDR 0xFFFBC000ULL
/* QEMU's isa-debug-exit as configured by the test suites that use it. */
#define VM_DEBUG_EXIT_PORT 0xF4
/* Unhandled MMIO accesses logged per VM before going quiet. */
#define VM_MMIO_LOG_MAX 10

struct vm {
	struct vm_config cfg;
	int kvm_fd;
	int vm_fd;
	struct vm_memory mem;
	struct iobus *bus;
	struct serial *uart;
	struct console *console;
	struct vcpu **vcpus;
	unsigned int nr_vcpus;
	vm_wake_fn wake;
	void *wake_ctx;
	pthread_mutex_t lock;
	bool ended;
	struct vm_end end;
	unsigned int mmio_logged;
	struct mmu_cpu_features features; /* what the vCPUs' CPUID describes */
	uint32_t pkru_offset;		  /* of PKRU in the XSAVE area; 0: none */
	/* The in-kernel PIC (master, slave), IOAPIC and PIT as created, for
	 * platform reset. */
	struct kvm_irqchip irqchip_initial[3];
	struct kvm_pit_state2 pit_initial;
	bool paused;
};

static int kvm_error(struct api_error *err, const char *op, int rc)
{
	return api_error_set(err, API_ERR_KVM, "%s: %s", op, strerror(-rc));
}

static int vm_ioctl(struct vm *vm, unsigned long req, unsigned long arg, const char *name,
		    struct api_error *err)
{
	if (ioctl(vm->vm_fd, req, arg) < 0)
		return kvm_error(err, name, negative_errno());
	return 0;
}

static int open_kvm(struct vm *vm, struct api_error *err)
{
	int version;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return kvm_error(err, "open /dev/kvm", negative_errno());
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION_EXPECTED)
		return api_error_set(err, API_ERR_KVM, "KVM_GET_API_VERSION: %d, expected %d",
				     version, KVM_API_VERSION_EXPECTED);
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return kvm_error(err, "KVM_CREATE_VM", negative_errno());
	return 0;
}

/* The power-on state of the in-kernel interrupt controllers and PIT, which
 * a platform reset puts back (KVM has no reset ioctl for them). */
static int save_initial_platform(struct vm *vm, struct api_error *err)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(vm->irqchip_initial); i++) {
		vm->irqchip_initial[i].chip_id = i; /* PIC master, PIC slave, IOAPIC */
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &vm->irqchip_initial[i]) < 0)
			return kvm_error(err, "KVM_GET_IRQCHIP", negative_errno());
	}
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &vm->pit_initial) < 0)
		return kvm_error(err, "KVM_GET_PIT2", negative_errno());
	return 0;
}

static int restore_initial_platform(struct vm *vm, struct api_error *err)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(vm->irqchip_initial); i++)
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &vm->irqchip_initial[i]) < 0)
			return kvm_error(err, "KVM_SET_IRQCHIP", negative_errno());
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &vm->pit_initial) < 0)
		return kvm_error(err, "KVM_SET_PIT2", negative_errno());
	return 0;
}

static int setup_platform(struct vm *vm, struct api_error *err)
{
	uint64_t ident = VM_IDENTITY_MAP_ADDR;
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int rc;

	rc = vm_ioctl(vm, KVM_SET_TSS_ADDR, VM_TSS_ADDR, "KVM_SET_TSS_ADDR", err);
	if (rc == 0)
		rc = vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, (unsigned long)&ident,
			      "KVM_SET_IDENTITY_MAP_ADDR", err);
	if (rc == 0)
		rc = vm_ioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP", err);
	if (rc == 0)
		rc = vm_ioctl(vm, KVM_CREATE_PIT2, (unsigned long)&pit, "KVM_CREATE_PIT2", err);
	if (rc == 0)
		rc = save_initial_platform(vm, err);
	return rc;
}

static int setup_memory(struct vm *vm, struct api_error *err)
{
	struct error e;

	vm_memory_layout(vm->cfg.memory_mib << 20, &vm->mem);
	if (vm_memory_map(&vm->mem, &e) < 0)
		return api_error_set(err, API_ERR_RESOURCE_LIMIT, "%s", e.msg);
	for (unsigned int i = 0; i < vm->mem.nr_regions; i++) {
		struct vm_mem_region *r = &vm->mem.region[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->hva,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return kvm_error(err, "KVM_SET_USER_MEMORY_REGION", negative_errno());
	}
	return 0;
}

/* ---------------------------------------------------------------- devices */

static void uart_set_irq(void *ctx, int level)
{
	struct vm *vm = ctx;
	struct kvm_irq_level irq = { .irq = SERIAL_COM1_IRQ, .level = (uint32_t)level };

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_warning("KVM_IRQ_LINE %u: %s", SERIAL_COM1_IRQ, strerror(errno));
}

static void uart_output(void *ctx, const uint8_t *buf, size_t len)
{
	struct vm *vm = ctx;

	console_output(vm->console, buf, len);
}

static void debug_exit_request(void *ctx, uint32_t value)
{
	struct vm *vm = ctx;
	char reason[96];

	snprintf(reason, sizeof(reason), "guest wrote %u to the debug-exit port 0x%x", value,
		 VM_DEBUG_EXIT_PORT);
	vm_request_exit(vm, VM_END_STOPPED, true, value, reason);
}

static int setup_devices(struct vm *vm, struct api_error *err)
{
	static const struct serial_callbacks uart_cb = {
		.set_irq = uart_set_irq,
		.output = uart_output,
	};
	struct error e;

	if (iobus_new(NULL, &vm->bus, &e) < 0 ||
	    serial_create(vm->bus, SERIAL_COM1_BASE, &uart_cb, vm, &vm->uart, &e) < 0 ||
	    debug_exit_create(vm->bus, VM_DEBUG_EXIT_PORT, debug_exit_request, vm, &e) < 0)
		return api_error_set(err, API_ERR_RESOURCE_LIMIT, "devices: %s", e.msg);
	return 0;
}

/* ---------------------------------------------------------------- vCPUs */

static int on_io(void *ctx, struct vcpu *v, bool is_write, uint16_t port, void *data,
		 unsigned int size, uint32_t count)
{
	struct vm *vm = ctx;

	return iobus_io(vm->bus, is_write, port, data, size, count);
}

static int on_mmio(void *ctx, struct vcpu *v, uint64_t addr, bool is_write, void *data,
		   unsigned int len)
{
	struct vm *vm = ctx;
	unsigned int logged;

	/* No MMIO devices yet: reads float high like an empty bus. */
	if (!is_write)
		memset(data, 0xFF, len);
	logged = __atomic_fetch_add(&vm->mmio_logged, 1, __ATOMIC_RELAXED);
	if (logged < VM_MMIO_LOG_MAX)
		log_notice("vcpu %u: unhandled MMIO %s of %u bytes at 0x%llx%s", vcpu_id(v),
			   is_write ? "write" : "read", len, (unsigned long long)addr,
			   logged + 1 == VM_MMIO_LOG_MAX
				   ? "; further unhandled MMIO accesses are not logged"
				   : "");
	return 0;
}

static void on_vcpu_stopped(void *ctx, struct vcpu *v, enum vcpu_stop_kind kind,
			    const char *message)
{
	struct vm *vm = ctx;

	if (kind == VCPU_STOP_REQUESTED)
		return;
	vm_request_exit(vm, VM_END_CRASHED, false, 0, message);
}

static const struct vcpu_exit_ops vm_exit_ops = {
	.io = on_io,
	.mmio = on_mmio,
	.stopped = on_vcpu_stopped,
};

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xFFFFFFFF, .selector = selector, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

/* The boot vCPU in the loader's 32-bit flat protected mode. */
static int apply_boot_entry(struct vcpu *v, const struct boot_entry *entry,
			    struct api_error *err)
{
	struct kvm_sregs s;
	struct kvm_regs r = { 0 };
	struct error e;

	if (vcpu_get_sregs(v, &s, &e) < 0)
		return api_error_set(err, API_ERR_KVM, "%s", e.msg);
	/* Types: 0xB code execute/read accessed, 0x3 data read/write accessed. */
	s.cs = flat_segment(entry->code_selector, 0xB);
	s.ds = s.es = s.fs = s.gs = s.ss = flat_segment(entry->data_selector, 0x3);
	s.gdt.base = entry->gdt_base;
	s.gdt.limit = entry->gdt_limit;
	s.cr0 = entry->cr0;
	r.rip = entry->eip;
	r.rsp = entry->esp;
	r.rax = entry->eax;
	r.rbx = entry->ebx;
	r.rflags = entry->eflags;
	if (vcpu_set_sregs(v, &s, &e) < 0 || vcpu_set_regs(v, &r, &e) < 0)
		return api_error_set(err, API_ERR_KVM, "%s", e.msg);
	return 0;
}

/*
 * The VM's kernel file, read now and checked for its boot protocol against
 * this VM's memory layout and command line; nothing in the VM changes. The
 * caller releases *ret. A file that has gone or changed into something the
 * loader refuses since vm.create is API_ERR_KERNEL.
 */
static int read_kernel(struct vm *vm, const struct boot_loader **ret_loader,
		       struct boot_kernel *ret, struct api_error *err)
{
	struct boot_kernel kernel = { 0 };
	const struct boot_loader *loader;
	struct error e;
	int rc;

	rc = boot_loader_get(vm->cfg.boot, &loader, &e);
	if (rc == 0)
		rc = boot_read_kernel(vm->cfg.kernel, BOOT_KERNEL_MAX_SIZE, &kernel, &e);
	if (rc == 0)
		rc = loader->check(&kernel, vm->cfg.cmdline, &vm->mem, &e);
	if (rc < 0) {
		boot_kernel_release(&kernel);
		return api_error_set(err, API_ERR_KERNEL, "%s", e.msg);
	}
	*ret_loader = loader;
	*ret = kernel;
	return 0;
}

/* The checked image into guest RAM, with its boot information. */
static int load_kernel(struct vm *vm, const struct boot_loader *loader,
		       const struct boot_kernel *kernel, struct boot_entry *ret,
		       struct api_error *err)
{
	struct error e;

	if (loader->load(kernel, vm->cfg.cmdline, &vm->mem, ret, &e) < 0)
		return api_error_set(err, API_ERR_KERNEL, "%s", e.msg);
	return 0;
}

/* The paging-relevant CPU features, for guest inspection (mmu/). */
static int learn_cpu_features(struct vm *vm, const struct kvm_cpuid2 *cpuid,
			      struct api_error *err)
{
	/* SDM Vol. 1 13.4.3: CPUID.(EAX=0DH,ECX=9).EBX is PKRU's offset. */
	const struct kvm_cpuid_entry2 *pkru = vcpu_cpuid_entry(cpuid, 0xD, 9);
	struct error e;

	if (pkru)
		vm->pkru_offset = pkru->ebx;
	if (vcpu_cpuid_mmu_features(cpuid, &vm->features, &e) < 0)
		return api_error_set(err, API_ERR_KVM, "CPUID from KVM: %s", e.msg);
	return 0;
}

/* KVM's CPUID with the VM's policy applied: the same on every vCPU. */
static int build_cpuid(struct vm *vm, struct kvm_cpuid2 **ret, struct api_error *err)
{
	_cleanup_free_ struct kvm_cpuid2 *supported = NULL;
	struct error e;

	if (vcpu_supported_cpuid(vm->kvm_fd, &supported, &e) < 0)
		return api_error_set(err, API_ERR_KVM, "%s", e.msg);
	if (vcpu_cpuid_build(supported, &vm->cfg.cpu, vm_max_gpa(vm->cfg.memory_mib), ret, &e) < 0)
		return api_error_set(err, API_ERR_INVALID_PARAMS, "parameter 'cpu': %s", e.msg);
	return 0;
}

static int reset_vcpus(struct vm *vm, struct api_error *err)
{
	struct error e;

	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		if (vcpu_reset(vm->vcpus[i], VCPU_RESET_POWER_ON, NULL, &e) < 0)
			return api_error_set(err, API_ERR_KVM, "%s", e.msg);
	return 0;
}

static int create_vcpus(struct vm *vm, const struct boot_entry *entry, struct api_error *err)
{
	_cleanup_free_ struct kvm_cpuid2 *cpuid = NULL;
	struct error e;

	vm->vcpus = calloc(vm->cfg.vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return api_error_set(err, API_ERR_RESOURCE_LIMIT, "out of memory for vCPUs");
	if (build_cpuid(vm, &cpuid, err) < 0)
		return -EINVAL;
	if (learn_cpu_features(vm, cpuid, err) < 0)
		return -EINVAL;
	for (unsigned int i = 0; i < vm->cfg.vcpus; i++) {
		if (vcpu_create(vm->kvm_fd, vm->vm_fd, i, &vm_exit_ops, vm, &vm->vcpus[i], &e) < 0)
			return api_error_set(err, API_ERR_KVM, "%s", e.msg);
		vm->nr_vcpus++;
		if (vcpu_set_cpuid(vm->vcpus[i], cpuid, &e) < 0)
			return api_error_set(err, API_ERR_KVM, "%s", e.msg);
	}
	/* KVM's creation state is not the architectural RESET state (its
	 * x87 state is FNINIT's, its RDX 0x600 before any CPUID): power-on
	 * gets the same state as vm.reset gives. After the CPUID, which
	 * supplies RDX's signature. */
	if (reset_vcpus(vm, err) < 0)
		return -EINVAL;
	/* vCPU 0 is the bootstrap processor (KVM_SET_BOOT_CPU_ID default); the
	 * in-kernel LAPIC keeps the others waiting for INIT-SIPI. */
	return apply_boot_entry(vm->vcpus[0], entry, err);
}

static void console_wake(void *ctx)
{
	struct vm *vm = ctx;

	vm->wake(vm->wake_ctx);
}

int vm_create(const struct vm_config *cfg, vm_wake_fn wake, void *ctx, struct vm **ret,
	      struct api_error *err)
{
	const struct boot_loader *loader = NULL;
	struct boot_kernel kernel = { 0 };
	struct boot_entry entry;
	struct vm *vm = calloc(1, sizeof(*vm));
	struct error e;
	int rc;

	if (!vm)
		return api_error_set(err, API_ERR_RESOURCE_LIMIT, "out of memory");
	vm->cfg = *cfg;
	vm->kvm_fd = vm->vm_fd = -1;
	vm->wake = wake;
	vm->wake_ctx = ctx;
	pthread_mutex_init(&vm->lock, NULL);

	rc = console_new(cfg->console_log, cfg->console_log_max, console_wake, vm, &vm->console, &e);
	if (rc < 0)
		rc = api_error_set(err, API_ERR_IO, "%s", e.msg);
	if (rc == 0)
		rc = open_kvm(vm, err);
	/* Memory before the in-kernel irqchip: once an irqchip exists, every
	 * KVM_SET_USER_MEMORY_REGION waits out an SRCU grace period, which costs
	 * 7-11 ms on a nested host against 0.1 ms before it (docs/performance.md). */
	if (rc == 0)
		rc = setup_memory(vm, err);
	if (rc == 0)
		rc = setup_platform(vm, err);
	if (rc == 0)
		rc = setup_devices(vm, err);
	if (rc == 0)
		rc = read_kernel(vm, &loader, &kernel, err);
	if (rc == 0)
		rc = load_kernel(vm, loader, &kernel, &entry, err);
	boot_kernel_release(&kernel);
	if (rc == 0)
		rc = create_vcpus(vm, &entry, err);
	if (rc < 0) {
		vm_free(vm);
		return rc;
	}
	*ret = vm;
	return 0;
}

int vm_start(struct vm *vm, struct api_error *err)
{
	struct error e;

	if (vcpu_init_signals() < 0)
		return api_error_set(err, API_ERR_INTERNAL, "installing the vCPU kick signal: %s",
				     strerror(errno));
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		if (vcpu_start(vm->vcpus[i], &e) < 0) {
			vm_request_exit(vm, VM_END_CRASHED, false, 0, e.msg);
			return api_error_set(err, API_ERR_RESOURCE_LIMIT, "%s", e.msg);
		}
	return 0;
}

/* Every vCPU parked at an instruction boundary (asked all at once, then
 * waited for, so the VM stops as one). */
static void pause_vcpus(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_pause(vm->vcpus[i]);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_wait_paused(vm->vcpus[i]);
}

static void resume_vcpus(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_resume(vm->vcpus[i]);
}

void vm_pause(struct vm *vm)
{
	if (!vm->paused)
		pause_vcpus(vm);
	vm->paused = true;
}

void vm_resume(struct vm *vm)
{
	if (vm->paused)
		resume_vcpus(vm);
	vm->paused = false;
}

bool vm_is_paused(const struct vm *vm)
{
	return vm->paused;
}

/* Everything a reset changes, in order; the kernel was read and checked. */
static int reset_machine(struct vm *vm, const struct boot_loader *loader,
			 const struct boot_kernel *kernel, struct api_error *err)
{
	struct boot_entry entry;
	int rc;

	rc = reset_vcpus(vm, err);
	if (rc == 0)
		rc = restore_initial_platform(vm, err);
	if (rc == 0) {
		iobus_reset(vm->bus);
		rc = load_kernel(vm, loader, kernel, &entry, err);
	}
	if (rc == 0)
		rc = apply_boot_entry(vm->vcpus[0], &entry, err);
	return rc;
}

/*
 * Platform reset, as the reset button: every vCPU to its power-on state
 * (vcpu/reset.c), the devices and the in-kernel PIC/IOAPIC/PIT to theirs,
 * and the boot loader run again with the kernel file read anew (a rebuilt
 * kernel boots), so the kernel image and boot information are fresh (the
 * rest of RAM keeps its contents, as on real hardware). The file is read
 * and checked before anything is touched. The VM stays paused across it
 * if it was paused.
 */
int vm_reset(struct vm *vm, struct api_error *err)
{
	const struct boot_loader *loader;
	struct boot_kernel kernel;
	int rc;

	if (read_kernel(vm, &loader, &kernel, err) < 0)
		return -EINVAL;
	if (!vm->paused)
		pause_vcpus(vm);
	rc = reset_machine(vm, loader, &kernel, err);
	boot_kernel_release(&kernel);
	if (!vm->paused)
		resume_vcpus(vm);
	if (rc < 0)
		return -EIO;
	log_notice("VM reset");
	return 0;
}

void vm_request_exit(struct vm *vm, enum vm_end_state state, bool has_status, uint32_t status,
		     const char *reason)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->ended) {
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	vm->ended = true;
	vm->end.state = state;
	vm->end.has_exit_status = has_status;
	vm->end.exit_status = status;
	snprintf(vm->end.reason, sizeof(vm->end.reason), "%s", reason);
	pthread_mutex_unlock(&vm->lock);

	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_request_stop(vm->vcpus[i]);
	vm->wake(vm->wake_ctx);
}

bool vm_has_ended(struct vm *vm, struct vm_end *ret)
{
	bool ended;

	pthread_mutex_lock(&vm->lock);
	ended = vm->ended;
	if (ended && ret)
		*ret = vm->end;
	pthread_mutex_unlock(&vm->lock);
	return ended;
}

void vm_join_vcpus(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(vm->vcpus[i]);
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_free(vm->vcpus[i]);
	free(vm->vcpus);
	iobus_free(vm->bus);
	vm_memory_unmap(&vm->mem);
	closep(&vm->vm_fd);
	closep(&vm->kvm_fd);
	console_free(vm->console);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

struct console *vm_console(struct vm *vm)
{
	return vm->console;
}

unsigned int vm_nr_vcpus(const struct vm *vm)
{
	return vm->nr_vcpus;
}

struct vcpu *vm_vcpu(struct vm *vm, unsigned int index)
{
	return index < vm->nr_vcpus ? vm->vcpus[index] : NULL;
}

const struct vm_memory *vm_guest_memory(const struct vm *vm)
{
	return &vm->mem;
}

const struct mmu_cpu_features *vm_cpu_features(const struct vm *vm)
{
	return &vm->features;
}

uint32_t vm_pkru_offset(const struct vm *vm)
{
	return vm->pkru_offset;
}

int vm_console_input(struct vm *vm, const uint8_t *buf, size_t len, size_t *ret_accepted)
{
	return serial_receive(vm->uart, buf, len, ret_accepted);
}
