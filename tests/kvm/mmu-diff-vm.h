/* SPDX-License-Identifier: MIT */
/*
 * The KVM side of the mmu/ differential test: one VM with one vCPU driven
 * by raw ioctls on the calling thread, its scaffolding (GDT, IDTs, TSSs,
 * code, identity maps), and one run per case.
 */
#ifndef VMMD_TESTS_KVM_MMU_DIFF_VM_H
#define VMMD_TESTS_KVM_MMU_DIFF_VM_H

#include <linux/kvm.h>
#include <stdint.h>

#include "tests/kvm/mmu-diff-case.h"
#include "util/error.h"

/* CR2 before each case: a #PF always replaces it, nothing else may. */
#define DIFF_CR2_SENTINEL 0xC2C2C2C2ULL

struct diff_vm {
	int kvm_fd;
	int vm_fd;
	int vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	struct diff_memory ram;
	struct kvm_cpuid2 *cpuid;	 /* KVM_GET_SUPPORTED_CPUID, also set on the vCPU */
	struct mmu_cpu_features offered; /* from that list */
	/* From what KVM holds for the vCPU afterwards (KVM_GET_CPUID2): KVM
	 * checks CR4 against it, and a host may hold more or less than was set. */
	struct mmu_cpu_features features;
	struct kvm_xsave *xsave; /* the vCPU's XSAVE image, for PKRU */
	uint32_t pkru_offset;	 /* of PKRU in it: CPUID 0xD.9 EBX */
};

enum diff_outcome {
	DIFF_OUTCOME_DONE,	/* the access completed (DIFF_PORT_DONE) */
	DIFF_OUTCOME_FETCHED,	/* the fetch payload ran (DIFF_PORT_FETCHED) */
	DIFF_OUTCOME_EXCEPTION, /* DIFF_PORT_EXCEPTION */
	DIFF_OUTCOME_EXIT,	/* any other exit: MMIO, shutdown, internal error... */
	DIFF_OUTCOME_REFUSED,	/* KVM_SET_SREGS2 refused the state (-EINVAL) */
	DIFF_OUTCOME_TIMEOUT,	/* no report within seconds */
};

struct diff_observation {
	enum diff_outcome outcome;
	uint8_t vector;
	uint32_t error_code;
	uint64_t cr2;
	uint64_t fault_rip; /* EXCEPTION: RIP in the exception frame */
	uint32_t value;	    /* DONE: ECX (read data); FETCHED: the payload's tag */
	uint64_t fs_base;   /* DONE: FS.base after a descriptor load */
	uint32_t exit_reason;
	uint16_t port;
	uint64_t rip;
	uint64_t mmio_gpa;
};

/*
 * Opens /dev/kvm and creates the VM: RAM (DIFF_RAM_SIZE at 0, the data
 * slot at DIFF_DATA_HIGH, the ROM), one vCPU with KVM's supported CPUID,
 * the scaffolding written, the data pattern filled; offered and features
 * are the CPU models of the CPUID set and of the CPUID KVM then holds.
 * Returns -ENODEV when /dev/kvm cannot be opened (the caller skips),
 * another negative errno otherwise.
 */
int diff_vm_create(struct diff_vm **ret, struct error *err);
void diff_vm_free(struct diff_vm *vm);

/* Maps the buffers of a struct diff_memory (zeroed); -ENOMEM. Free with
 * diff_memory_free(), which accepts a partly mapped one. */
int diff_memory_alloc(struct diff_memory *mem);
void diff_memory_free(struct diff_memory *mem);

/* Rewrites the scaffolding (GDT, IDTs, TSSs, code, identity maps) into mem. */
void diff_scaffold_install(const struct diff_memory *mem);

/*
 * Runs case c, whose tables the caller installed in vm->ram: drops KVM's
 * shadow pages, loads the registers, runs to the first report or exit and
 * completes any pending I/O. Returns 0 with *ret filled (outcome REFUSED if
 * KVM_SET_SREGS2 refused the state), or a negative errno (with a message)
 * when an ioctl fails.
 */
int diff_vm_run_case(struct diff_vm *vm, const struct diff_case *c, struct diff_observation *ret,
		     struct error *err);

/* The vCPU's special registers for case c (what diff_vm_run_case loads). */
void diff_case_sregs(const struct diff_case *c, struct kvm_sregs2 *s);

/*
 * Whether KVM_SET_SREGS2 accepts CR4 bit `cr4_bit` in an otherwise valid
 * state of `mode` (PAE or 4-level paging). A host may advertise a feature
 * in CPUID and still refuse its CR4 bit, or the reverse; the test uses
 * what the ioctl accepts.
 */
bool diff_vm_accepts_cr4(struct diff_vm *vm, enum mmu_paging_mode mode, uint64_t cr4_bit);

/* Loads PKRU through KVM_SET_XSAVE (XSAVE component 9). 0 or -errno. */
int diff_vm_set_pkru(struct diff_vm *vm, uint32_t pkru);

/* KVM_GET_SREGS2 / KVM_SET_SREGS2: 0 or a negative errno. */
int diff_vm_get_sregs(struct diff_vm *vm, struct kvm_sregs2 *s);
int diff_vm_set_sregs(struct diff_vm *vm, const struct kvm_sregs2 *s);

#endif
