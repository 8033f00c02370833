/* SPDX-License-Identifier: MIT */
/*
 * struct vcpu and helpers shared by the files of vcpu/ (vcpu.c, reset.c,
 * cpuid.c, state.c). Nothing outside vcpu/ includes this header.
 *
 * Locking: fields under "requests" are protected by lock. A function run
 * through vcpu_call() holds lock for its whole duration (the call is served
 * with the lock held), so it may use them freely.
 */
#ifndef VMMD_VCPU_VCPU_INTERNAL_H
#define VMMD_VCPU_VCPU_INTERNAL_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmu/mmu.h"
#include "util/error.h"
#include "vcpu/vcpu.h"

/* The kick: a signal whose only job is to interrupt KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGUSR1

struct vcpu {
	unsigned int id;
	int fd;
	int kvm_fd; /* /dev/kvm and the VM: owned by the VM, open while the vCPU lives */
	int vm_fd;
	struct kvm_run *run;
	size_t run_size;
	const struct vcpu_exit_ops *ops;
	void *ctx;
	pthread_t thread;
	bool thread_started;
	bool joined;
	/* kickable: the thread exists and has not ended, so it may be
	 * signalled. Under kick_lock, which is never held while taking lock. */
	pthread_mutex_t kick_lock;
	bool kickable;
	atomic_bool stop;
	/* Set before the first KVM_RUN: from then on KVM refuses a changed
	 * CPUID (MMU.md §7), and so does vcpu_set_cpuid(). */
	atomic_bool has_run;

	/* Requests from other threads, served between two KVM_RUNs. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool pause_requested;
	bool paused;	   /* the thread is parked outside KVM_RUN */
	bool thread_ended; /* no KVM_RUN will happen any more */
	vcpu_call_fn call_fn;
	void *call_arg;
	int call_rc;
	bool call_done;

	/* The CPUID last accepted by KVM_SET_CPUID2 (NULL before). */
	struct kvm_cpuid2 *cpuid;

	/*
	 * Guest TSC frozen while the vCPU does not run: sampled when the
	 * thread parks for a pause, or written by a state load or a RESET.
	 * A save while it is valid stores it instead of the ever-advancing
	 * live value, so saving a stopped vCPU twice gives the same bytes.
	 * Cleared before the next KVM_RUN. Under lock.
	 */
	bool tsc_frozen;
	uint64_t tsc_at_stop;

	/*
	 * vmmd's MMU view of the stopped vCPU: the role registers and the
	 * role computed from them (mmu/). Set by RESET/INIT, a state load or
	 * vcpu_mmu_role(); dropped when a role input is written otherwise
	 * (sregs, EFER as an MSR, the SMM flag in the events) and before the
	 * next KVM_RUN, since the guest changes them at will.
	 * Under lock.
	 */
	bool mmu_valid;
	struct mmu_role_regs mmu_regs;
	union mmu_role mmu_role;

	/*
	 * The last exit was port I/O or MMIO that userspace handled: KVM
	 * finishes the instruction (advances RIP, stores IN data) only on the
	 * next KVM_RUN, so state read before that is mid-instruction (KVM
	 * api.rst, KVM_RUN "immediate_exit"). vcpu_complete_io() finishes it.
	 * Written by the vCPU thread, or under lock once it is parked.
	 */
	bool io_pending;
};

/* KVM ioctl on the vCPU fd; the message names the ioctl and the vCPU. */
int vcpu_ioctl(const struct vcpu *v, unsigned long req, void *arg, const char *name,
	       struct error *err);

/* KVM_CHECK_EXTENSION on the VM fd (the answer may depend on the VM); 0 if absent. */
int vcpu_vm_extension(const struct vcpu *v, long cap);

/* True while no KVM_RUN can happen: paused, or no thread running. Under lock. */
bool vcpu_is_stopped_locked(const struct vcpu *v);

/* Finishes a handled I/O exit with KVM_RUN and immediate_exit set, so
 * that the vCPU's state is at an instruction boundary. Under lock, with no
 * KVM_RUN in flight (parked or no thread). */
int vcpu_complete_io(struct vcpu *v, struct error *err);

/* The FXSAVE legacy area of an XSAVE image (512 bytes) from kvm_fpu's
 * fields (SDM Vol. 1 Table 10-2). */
void vcpu_fpu_to_xsave(const struct kvm_fpu *f, uint8_t *xsave);

/* MMU_CTX_SMM from the vCPU events, MMU_CTX_GUEST_MODE from the nested
 * state where KVM has it (MMU.md §1.1: both are role inputs). */
int vcpu_mmu_flags(const struct vcpu *v, unsigned int *ret, struct error *err);

/* Records vmmd's MMU snapshot of a stopped vCPU (after RESET/INIT or a
 * state load wrote these registers). Under lock. */
void vcpu_mmu_snapshot_set(struct vcpu *v, const struct mmu_role_regs *regs, union mmu_role role);

/* The guest TSC as KVM_GET_MSRS reads it. */
int vcpu_read_tsc(const struct vcpu *v, uint64_t *ret, struct error *err);

/*
 * Writes the guest TSC of a stopped vCPU (IA32_TSC through KVM_SET_MSRS)
 * and records, as the TSC the vCPU stopped with (tsc_at_stop), what KVM
 * reads back right after the write: the value KVM holds, never merely the
 * one asked for. A host that ignores TSC writes (no TSC offsetting) keeps
 * its own TSC, and a save must say so (docs/vcpu.md §1). KVM reads a
 * userspace write of 0 as "synchronise with the other vCPUs"
 * (kvm_synchronize_tsc()), so 0 is written as 1. Under lock.
 */
int vcpu_write_tsc(struct vcpu *v, uint64_t value, struct error *err);

#endif
