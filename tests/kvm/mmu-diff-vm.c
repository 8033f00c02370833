/* SPDX-License-Identifier: MIT */
/*
 * KVM side of the mmu/ differential test. Everything runs on the calling
 * thread with raw ioctls: a case is a KVM_SET_SREGS2 + KVM_SET_REGS +
 * KVM_RUN, so every paging mode is entered directly, without guest code
 * switching modes (and without running much guest ring-0 code, which some
 * hosts emulate slowly).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/kvm/mmu-diff-vm.h"
#include "tests/kvm/mmu-diff.h"
#include "util/macro.h"
#include "vcpu/cpuid.h"
#include "vcpu/x86.h"

#define SLOT_LOW 0
#define SLOT_HIGH 1
#define SLOT_ROM 2
/* A case runs a handful of guest instructions; seconds mean it is lost. */
#define DIFF_RUN_TIMEOUT_S 5

/* RFLAGS: bit 1 is always 1; IOPL 3 lets CPL 3 report (see
 * install_io_bitmap()); IF 0. */
#define RFLAGS_FIXED 0x2ULL
#define RFLAGS_IOPL3 0x3000ULL
#define RFLAGS_AC (1ULL << 18)

/* ---------------------------------------------------------------- scaffolding */

static void put64(const struct diff_memory *mem, uint64_t gpa, uint64_t v)
{
	memcpy(diff_memory_ptr(mem, gpa, 8), &v, 8);
}

static void put32(const struct diff_memory *mem, uint64_t gpa, uint32_t v)
{
	memcpy(diff_memory_ptr(mem, gpa, 4), &v, 4);
}

/* Code and data descriptors (SDM Vol. 3A §3.4.5), accessed bit set so no
 * exception delivery ever writes the GDT. */
static void install_gdt(const struct diff_memory *mem)
{
	put64(mem, DIFF_GDT + DIFF_SEL_KCODE64, 0x00AF9B000000FFFFULL);
	put64(mem, DIFF_GDT + DIFF_SEL_KDATA, 0x00CF93000000FFFFULL);
	put64(mem, DIFF_GDT + DIFF_SEL_KCODE32, 0x00CF9B000000FFFFULL);
	put64(mem, DIFF_GDT + (DIFF_SEL_UCODE64 & ~3), 0x00AFFB000000FFFFULL);
	put64(mem, DIFF_GDT + (DIFF_SEL_UDATA & ~3), 0x00CFF3000000FFFFULL);
	put64(mem, DIFF_GDT + (DIFF_SEL_UCODE32 & ~3), 0x00CFFB000000FFFFULL);
	/* Busy TSS descriptors (§7.2.2, §7.2.3). */
	put64(mem, DIFF_GDT + DIFF_SEL_TSS64,
	      DIFF_TSS_LIMIT | ((uint64_t)DIFF_TSS64 << 16) | (0x8BULL << 40));
	put64(mem, DIFF_GDT + DIFF_SEL_TSS64 + 8, 0);
	put64(mem, DIFF_GDT + DIFF_SEL_TSS32,
	      DIFF_TSS_LIMIT | ((uint64_t)DIFF_TSS32 << 16) | (0x8BULL << 40));
}

/* Interrupt gates to each vector's stub (§6.11, §6.14.1), DPL 0. */
static void install_idts(const struct diff_memory *mem)
{
	for (unsigned int v = 0; v < DIFF_VECTORS; v++) {
		uint64_t h64 = DIFF_KCODE64 + DIFF_STUB_VECTOR(v);
		uint64_t h32 = DIFF_KCODE32 + DIFF_STUB_VECTOR(v);

		put64(mem, DIFF_IDT64 + v * 16,
		      (h64 & 0xFFFF) | ((uint64_t)DIFF_SEL_KCODE64 << 16) | (0x8EULL << 40) |
			      ((h64 >> 16 & 0xFFFF) << 48));
		put64(mem, DIFF_IDT64 + v * 16 + 8, h64 >> 32);
		put64(mem, DIFF_IDT32 + v * 8,
		      (h32 & 0xFFFF) | ((uint64_t)DIFF_SEL_KCODE32 << 16) | (0x8EULL << 40) |
			      ((h32 >> 16 & 0xFFFF) << 48));
	}
}

/*
 * CPL 3 reports with OUT, which IOPL 3 allows (SDM Vol. 1 §19.5.1). PVM
 * hosts ignore the guest's IOPL in native ring 3 and consult the TSS I/O
 * permission bitmap instead, and there only a bitmap at I/O map base 0
 * works (one after the TSS proper, at base 0x68, is refused). So the map
 * base is 0: the bitmap overlaps the TSS, and the bits of the report ports
 * (0xD0-0xD2: TSS bytes 26-27, inside RSP2 / SS2, never used) are 0,
 * i.e. allowed. On other hosts IOPL 3 makes the bitmap irrelevant.
 */
static void install_io_bitmap(const struct diff_memory *mem, uint64_t tss)
{
	static const uint16_t ports[] = { DIFF_PORT_DONE, DIFF_PORT_EXCEPTION, DIFF_PORT_FETCHED };
	uint8_t *bitmap = diff_memory_ptr(mem, tss, DIFF_TSS_LIMIT + 1);

	for (unsigned int i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
		bitmap[ports[i] / 8] &= (uint8_t) ~(1U << (ports[i] % 8));
	put32(mem, tss + 0x64, 0);
}

/* Ring-0 stacks for exceptions from CPL 3 (§7.7, §6.12.1). */
static void install_tsses(const struct diff_memory *mem)
{
	install_io_bitmap(mem, DIFF_TSS64);
	install_io_bitmap(mem, DIFF_TSS32);
	put64(mem, DIFF_TSS64 + 4, DIFF_KSTACK_TOP);
	put32(mem, DIFF_TSS32 + 4, DIFF_KSTACK_TOP);
	put32(mem, DIFF_TSS32 + 8, DIFF_SEL_KDATA);
}

void diff_scaffold_install(const struct diff_memory *mem)
{
	size_t len32 = (size_t)(diff_code32_end - diff_code32);
	size_t len64 = (size_t)(diff_code64_end - diff_code64);

	memset(mem->low, 0, DIFF_SCAFFOLD_END);
	install_gdt(mem);
	install_idts(mem);
	install_tsses(mem);
	memcpy(diff_memory_ptr(mem, DIFF_KCODE32, len32), diff_code32, len32);
	memcpy(diff_memory_ptr(mem, DIFF_UCODE32, len32), diff_code32, len32);
	memcpy(diff_memory_ptr(mem, DIFF_KCODE64, len64), diff_code64, len64);
	memcpy(diff_memory_ptr(mem, DIFF_UCODE64, len64), diff_code64, len64);
	diff_scaffold_tables_install(mem);
}

/* ---------------------------------------------------------------- VM */

static int set_slot(struct diff_vm *vm, unsigned int slot, uint64_t gpa, uint64_t size, void *hva,
		    uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};

	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

static uint8_t *map_ram(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int diff_memory_alloc(struct diff_memory *mem)
{
	mem->low = map_ram(DIFF_RAM_SIZE);
	mem->high = map_ram(DIFF_DATA_HIGH_SIZE);
	mem->rom = map_ram(DIFF_ROM_SIZE);
	if (!mem->low || !mem->high || !mem->rom) {
		diff_memory_free(mem);
		return -ENOMEM;
	}
	return 0;
}

void diff_memory_free(struct diff_memory *mem)
{
	if (mem->low)
		munmap(mem->low, DIFF_RAM_SIZE);
	if (mem->high)
		munmap(mem->high, DIFF_DATA_HIGH_SIZE);
	if (mem->rom)
		munmap(mem->rom, DIFF_ROM_SIZE);
	*mem = (struct diff_memory){ .low = NULL };
}

/* The CPU model of the CPUID KVM holds for the vCPU (KVM_GET_CPUID2). */
static int held_cpuid_features(struct diff_vm *vm, struct mmu_cpu_features *ret, struct error *err)
{
	size_t size = sizeof(*vm->cpuid) + vm->cpuid->nent * sizeof(vm->cpuid->entries[0]);
	_cleanup_free_ struct kvm_cpuid2 *held = calloc(1, size);

	if (!held)
		return error_set(err, -ENOMEM, "KVM_GET_CPUID2: out of memory");
	held->nent = vm->cpuid->nent;
	if (ioctl(vm->vcpu_fd, KVM_GET_CPUID2, held) < 0)
		return error_set(err, -errno, "KVM_GET_CPUID2: %s", strerror(errno));
	return vcpu_cpuid_mmu_features(held, ret, err);
}

static int create_vcpu(struct diff_vm *vm, struct error *err)
{
	int size, r;

	vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu_fd < 0)
		return error_set(err, -errno, "KVM_CREATE_VCPU: %s", strerror(errno));
	size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < 0)
		return error_set(err, -errno, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	vm->run_size = (size_t)size;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
	if (vm->run == MAP_FAILED) {
		vm->run = NULL;
		return error_set(err, -errno, "mmap of kvm_run: %s", strerror(errno));
	}
	r = vcpu_supported_cpuid(vm->kvm_fd, &vm->cpuid, err);
	if (r < 0)
		return r;
	if (ioctl(vm->vcpu_fd, KVM_SET_CPUID2, vm->cpuid) < 0)
		return error_set(err, -errno, "KVM_SET_CPUID2: %s", strerror(errno));
	/* Shadow paging takes GBPAGES from the guest's CPUID (MMU.md §2.1). */
	r = vcpu_cpuid_mmu_features(vm->cpuid, &vm->offered, err);
	if (r == 0)
		r = held_cpuid_features(vm, &vm->features, err);
	return r;
}

static int create_memory(struct diff_vm *vm, struct error *err)
{
	int r = diff_memory_alloc(&vm->ram);

	if (r < 0)
		return error_set(err, r, "guest RAM: out of memory");
	r = set_slot(vm, SLOT_LOW, 0, DIFF_RAM_SIZE, vm->ram.low, 0);
	if (r == 0)
		r = set_slot(vm, SLOT_HIGH, DIFF_DATA_HIGH, DIFF_DATA_HIGH_SIZE, vm->ram.high, 0);
	if (r == 0)
		r = set_slot(vm, SLOT_ROM, DIFF_ROM_BASE, DIFF_ROM_SIZE, vm->ram.rom,
			     KVM_MEM_READONLY);
	if (r < 0)
		return error_set(err, r, "KVM_SET_USER_MEMORY_REGION: %s", strerror(-r));
	return 0;
}

int diff_vm_create(struct diff_vm **ret, struct error *err)
{
	struct diff_vm *vm = calloc(1, sizeof(*vm));
	int r;

	if (!vm)
		return error_set(err, -ENOMEM, "VM: out of memory");
	vm->vm_fd = vm->vcpu_fd = -1;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		r = error_set(err, -ENODEV, "/dev/kvm cannot be opened (%s)", strerror(errno));
		goto fail;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		r = error_set(err, -errno, "KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	r = create_memory(vm, err);
	if (r == 0)
		r = create_vcpu(vm, err);
	if (r < 0)
		goto fail;
	diff_scaffold_install(&vm->ram);
	diff_pattern_fill(&vm->ram);
	*ret = vm;
	return 0;
fail:
	diff_vm_free(vm);
	return r;
}

void diff_vm_free(struct diff_vm *vm)
{
	if (!vm)
		return;
	if (vm->run)
		munmap(vm->run, vm->run_size);
	if (vm->vcpu_fd >= 0)
		close(vm->vcpu_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	diff_memory_free(&vm->ram);
	free(vm->cpuid);
	free(vm->xsave);
	free(vm);
}

/* ---------------------------------------------------------------- one case */

static bool case_is_long(const struct diff_case *c)
{
	return c->regs.efer & MMU_EFER_LMA;
}

static struct kvm_segment code_segment(const struct diff_case *c)
{
	bool long_mode = case_is_long(c);
	uint16_t sel = c->cpl ? (long_mode ? DIFF_SEL_UCODE64 : DIFF_SEL_UCODE32)
			      : (long_mode ? DIFF_SEL_KCODE64 : DIFF_SEL_KCODE32);

	return (struct kvm_segment){
		.base = 0,
		.limit = 0xFFFFFFFF,
		.selector = sel,
		.type = 0xB,
		.present = 1,
		.dpl = (uint8_t)c->cpl,
		.db = !long_mode,
		.s = 1,
		.l = long_mode,
		.g = 1,
	};
}

static struct kvm_segment data_segment(const struct diff_case *c)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xFFFFFFFF,
		.selector = c->cpl ? DIFF_SEL_UDATA : DIFF_SEL_KDATA,
		.type = 0x3,
		.present = 1,
		.dpl = (uint8_t)c->cpl,
		.db = 1,
		.s = 1,
		.g = 1,
	};
}

static struct kvm_segment ldt_segment(const struct diff_case *c)
{
	if (c->access != DIFF_DESC_READ && c->access != DIFF_DESC_WRITE)
		return (struct kvm_segment){ .type = 0x2, .unusable = 1 };
	/* The LDT sits at the target, so the descriptor load reads it there. */
	return (struct kvm_segment){
		.base = c->gva,
		.limit = 0xFFFF,
		.selector = 0x50,
		.type = 0x2,
		.present = 1,
	};
}

void diff_case_sregs(const struct diff_case *c, struct kvm_sregs2 *s)
{
	bool long_mode = case_is_long(c);

	s->cs = code_segment(c);
	s->ds = s->es = s->fs = s->gs = s->ss = data_segment(c);
	s->tr = (struct kvm_segment){
		.base = long_mode ? DIFF_TSS64 : DIFF_TSS32,
		.limit = DIFF_TSS_LIMIT,
		.selector = long_mode ? DIFF_SEL_TSS64 : DIFF_SEL_TSS32,
		.type = 0xB,
		.present = 1,
	};
	s->ldt = ldt_segment(c);
	s->gdt.base = DIFF_GDT;
	s->gdt.limit = DIFF_GDT_LIMIT;
	s->idt.base = long_mode ? DIFF_IDT64 : DIFF_IDT32;
	s->idt.limit = DIFF_VECTORS * (long_mode ? 16 : 8) - 1;
	s->cr0 = c->regs.cr0;
	s->cr2 = DIFF_CR2_SENTINEL;
	s->cr3 = c->cr3;
	s->cr4 = c->regs.cr4;
	s->cr8 = 0;
	s->efer = c->regs.efer;
	s->flags = 0;
	memset(s->pdptrs, 0, sizeof(s->pdptrs));
	if (c->mode == MMU_MODE_PAE) {
		/* Given explicitly, as the walk's input (MMU.md §2.4). */
		s->flags = KVM_SREGS2_FLAGS_PDPTRS_VALID;
		memcpy(s->pdptrs, c->pdptrs, sizeof(s->pdptrs));
	}
}

static uint64_t stub_offset(enum diff_access access)
{
	switch (access) {
	case DIFF_READ:
		return DIFF_STUB_READ;
	case DIFF_WRITE:
		return DIFF_STUB_WRITE;
	case DIFF_FETCH:
		return DIFF_STUB_FETCH;
	default:
		return DIFF_STUB_LOAD_FS;
	}
}

static void case_regs(const struct diff_case *c, struct kvm_regs *r)
{
	uint64_t code = case_is_long(c) ? (c->cpl ? DIFF_UCODE64 : DIFF_KCODE64)
					: (c->cpl ? DIFF_UCODE32 : DIFF_KCODE32);

	memset(r, 0, sizeof(*r));
	r->rip = code + stub_offset(c->access);
	r->rax = c->gva;
	r->rcx = c->value;
	r->rdx = diff_case_selector(c);
	r->rsp = c->cpl ? DIFF_USTACK_TOP : DIFF_KSTACK_TOP;
	r->rflags = RFLAGS_FIXED | RFLAGS_IOPL3 | (c->eflags_ac ? RFLAGS_AC : 0);
}

bool diff_vm_accepts_cr4(struct diff_vm *vm, enum mmu_paging_mode mode, uint64_t cr4_bit)
{
	struct diff_case c = {
		.mode = mode,
		.regs = {
			/* WP: CET requires it (SDM Vol. 3A §2.5). */
			.cr0 = MMU_CR0_PE | MMU_CR0_ET | MMU_CR0_NE | MMU_CR0_WP | MMU_CR0_PG,
			.cr4 = MMU_CR4_PAE | cr4_bit,
			.efer = mode == MMU_MODE_4LEVEL ? MMU_EFER_LME | MMU_EFER_LMA : 0,
		},
		.cr3 = DIFF_CASE_ROOT,
	};
	struct kvm_sregs2 s;

	if (diff_vm_get_sregs(vm, &s) < 0)
		return false;
	diff_case_sregs(&c, &s);
	return diff_vm_set_sregs(vm, &s) == 0;
}

/* PKRU is XSAVE state component 9 (SDM Vol. 1 §13.1), at the offset
 * CPUID.(EAX=0xD,ECX=9):EBX gives. */
#define XSAVE_COMPONENT_PKRU 9

int diff_vm_set_pkru(struct diff_vm *vm, uint32_t pkru)
{
	uint64_t bv;

	if (!vm->xsave) {
		const struct kvm_cpuid_entry2 *e =
			vcpu_cpuid_entry(vm->cpuid, 0xD, XSAVE_COMPONENT_PKRU);

		if (!e || !e->ebx || e->ebx + 4 > sizeof(vm->xsave->region))
			return -EOPNOTSUPP;
		vm->pkru_offset = e->ebx;
		vm->xsave = calloc(1, sizeof(*vm->xsave));
		if (!vm->xsave)
			return -ENOMEM;
		if (ioctl(vm->vcpu_fd, KVM_GET_XSAVE, vm->xsave) < 0) {
			int r = -errno;
			free(vm->xsave);
			vm->xsave = NULL;
			return r;
		}
	}
	memcpy(&bv, (uint8_t *)vm->xsave->region + XSAVE_XSTATE_BV, 8);
	bv |= X86_XFEATURE_PKRU;
	memcpy((uint8_t *)vm->xsave->region + XSAVE_XSTATE_BV, &bv, 8);
	memcpy((uint8_t *)vm->xsave->region + vm->pkru_offset, &pkru, 4);
	return ioctl(vm->vcpu_fd, KVM_SET_XSAVE, vm->xsave) < 0 ? -errno : 0;
}

int diff_vm_get_sregs(struct diff_vm *vm, struct kvm_sregs2 *s)
{
	return ioctl(vm->vcpu_fd, KVM_GET_SREGS2, s) < 0 ? -errno : 0;
}

int diff_vm_set_sregs(struct diff_vm *vm, const struct kvm_sregs2 *s)
{
	return ioctl(vm->vcpu_fd, KVM_SET_SREGS2, s) < 0 ? -errno : 0;
}

/*
 * Shadow paging (this host's PVM, or KVM without TDP) caches guest page
 * tables and learns of changes by write-protecting them against the
 * guest; the test writes them from userspace, which KVM does not see.
 * Deleting and re-adding the memory slot makes KVM drop every shadow page
 * (kvm_arch_flush_shadow_memslot()), so each case starts from its tables.
 * On the PVM host the cases also agree without it; it costs about 16 us a
 * case and makes the result independent of how a host caches.
 */
static int drop_shadow_pages(struct diff_vm *vm, struct error *err)
{
	int r = set_slot(vm, SLOT_LOW, 0, 0, vm->ram.low, 0);

	if (r == 0)
		r = set_slot(vm, SLOT_LOW, 0, DIFF_RAM_SIZE, vm->ram.low, 0);
	if (r < 0)
		return error_set(err, r, "re-adding the RAM slot: %s", strerror(-r));
	return 0;
}

/* Returns 1 if KVM refused the state, 0 once it is loaded, or -errno. */
static int load_case(struct diff_vm *vm, const struct diff_case *c, struct error *err)
{
	struct kvm_sregs2 s;
	struct kvm_regs regs;
	int r;

	r = diff_vm_get_sregs(vm, &s);
	if (r < 0)
		return error_set(err, r, "KVM_GET_SREGS2: %s", strerror(-r));
	diff_case_sregs(c, &s);
	r = diff_vm_set_sregs(vm, &s);
	if (r == -EINVAL)
		return 1;
	if (r < 0)
		return error_set(err, r, "KVM_SET_SREGS2 for case %llu: %s",
				 (unsigned long long)c->index, strerror(-r));
	case_regs(c, &regs);
	if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return error_set(err, -errno, "KVM_SET_REGS: %s", strerror(errno));
	return 0;
}

static int observe_report(struct diff_vm *vm, const struct diff_case *c,
			  struct diff_observation *obs, struct error *err)
{
	struct kvm_regs regs;
	struct kvm_sregs2 s;
	uint64_t width = case_is_long(c) ? ~0ULL : 0xFFFFFFFFULL;

	if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs) < 0)
		return error_set(err, -errno, "KVM_GET_REGS: %s", strerror(errno));
	obs->rip = regs.rip;
	if (vm->run->exit_reason != KVM_EXIT_IO || vm->run->io.direction != KVM_EXIT_IO_OUT) {
		obs->outcome = DIFF_OUTCOME_EXIT;
		if (vm->run->exit_reason == KVM_EXIT_MMIO)
			obs->mmio_gpa = vm->run->mmio.phys_addr;
		return 0;
	}
	obs->port = vm->run->io.port;
	switch (obs->port) {
	case DIFF_PORT_DONE:
		obs->outcome = DIFF_OUTCOME_DONE;
		obs->value = (uint32_t)regs.rcx;
		if (c->access == DIFF_DESC_READ || c->access == DIFF_DESC_WRITE) {
			int r = diff_vm_get_sregs(vm, &s);
			if (r < 0)
				return error_set(err, r, "KVM_GET_SREGS2: %s", strerror(-r));
			obs->fs_base = s.fs.base;
		}
		break;
	case DIFF_PORT_FETCHED:
		obs->outcome = DIFF_OUTCOME_FETCHED;
		obs->value = (uint32_t)regs.rax;
		break;
	case DIFF_PORT_EXCEPTION:
		obs->outcome = DIFF_OUTCOME_EXCEPTION;
		obs->vector = (uint8_t)regs.rax;
		obs->error_code = (uint32_t)regs.rsi;
		obs->cr2 = regs.rdx & width;
		obs->fault_rip = regs.rdi & width;
		break;
	default:
		obs->outcome = DIFF_OUTCOME_EXIT;
		break;
	}
	return 0;
}

/* KVM finishes an I/O or MMIO exit only on the next KVM_RUN (api.rst,
 * KVM_RUN): run once with immediate_exit, which completes it and returns
 * -EINTR without entering the guest, before the next case's state. */
static int complete_pending_exit(struct diff_vm *vm, struct error *err)
{
	int r;

	vm->run->immediate_exit = 1;
	r = ioctl(vm->vcpu_fd, KVM_RUN, 0);
	vm->run->immediate_exit = 0;
	if (r < 0 && errno != EINTR)
		return error_set(err, -errno, "KVM_RUN to complete an exit: %s", strerror(errno));
	return 0;
}

static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * KVM_RUN, cut short by SIGALRM after DIFF_RUN_TIMEOUT_S: a guest that
 * never reports (say, one running stray bytes after a wrong translation)
 * becomes an observation instead of a hung test. The handler is installed
 * without SA_RESTART, so the ioctl returns -EINTR. Returns 0 or -errno.
 */
static int run_with_deadline(struct diff_vm *vm)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	int r;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		return -errno;
	alarm(DIFF_RUN_TIMEOUT_S);
	r = ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0 ? -errno : 0;
	alarm(0);
	return r;
}

int diff_vm_run_case(struct diff_vm *vm, const struct diff_case *c, struct diff_observation *ret,
		     struct error *err)
{
	struct diff_observation obs = { 0 };
	int r;

	r = drop_shadow_pages(vm, err);
	if (r == 0)
		r = load_case(vm, c, err);
	if (r == 1) {
		*ret = (struct diff_observation){ .outcome = DIFF_OUTCOME_REFUSED };
		return 0;
	}
	if (r == 0 && c->pku) {
		r = diff_vm_set_pkru(vm, c->pkru);
		if (r < 0)
			error_set(err, r, "KVM_SET_XSAVE (PKRU): %s", strerror(-r));
	}
	if (r < 0)
		return r;
	r = run_with_deadline(vm);
	if (r == -EINTR) {
		*ret = (struct diff_observation){ .outcome = DIFF_OUTCOME_TIMEOUT };
		return complete_pending_exit(vm, err);
	}
	if (r < 0)
		return error_set(err, r, "KVM_RUN for case %llu: %s", (unsigned long long)c->index,
				 strerror(-r));
	obs.exit_reason = vm->run->exit_reason;
	r = observe_report(vm, c, &obs, err);
	if (r == 0)
		r = complete_pending_exit(vm, err);
	if (r < 0)
		return r;
	*ret = obs;
	return 0;
}
