/* SPDX-License-Identifier: MIT */
/*
 * vCPUs: creation, the KVM_RUN thread, and exit dispatch. The VM supplies a
 * table of exit handlers; this module knows nothing about devices or JSON.
 *
 * Threads: each vCPU runs on its own thread named "vcpu/N" that loops on
 * KVM_RUN. vcpu_kick() makes it leave KVM_RUN at the next instruction
 * boundary (run->immediate_exit plus a signal, KVM api.rst §4.10); once
 * stop is requested the thread ends. A vCPU that cannot go on (triple
 * fault, failed entry, emulation failure, a KVM_RUN error) reports through
 * ops->stopped() once and ends its thread.
 */
#ifndef VMMD_VCPU_VCPU_H
#define VMMD_VCPU_VCPU_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct vcpu;

enum vcpu_stop_kind {
	VCPU_STOP_REQUESTED,	  /* vcpu_request_stop() */
	VCPU_STOP_SHUTDOWN,	  /* KVM_EXIT_SHUTDOWN: triple fault */
	VCPU_STOP_FAIL_ENTRY,	  /* KVM_EXIT_FAIL_ENTRY */
	VCPU_STOP_INTERNAL_ERROR, /* KVM_EXIT_INTERNAL_ERROR */
	VCPU_STOP_HALTED,	  /* KVM_EXIT_HLT (no in-kernel LAPIC) */
	VCPU_STOP_SYSTEM_EVENT,	  /* KVM_EXIT_SYSTEM_EVENT: shutdown/reset/crash */
	VCPU_STOP_ERROR,	  /* KVM_RUN failed, or an exit vmmd cannot handle */
};

struct vcpu_exit_ops {
	/* KVM_EXIT_IO: `count` accesses of `size` bytes; data in/out. 0 or -errno. */
	int (*io)(void *ctx, struct vcpu *v, bool is_write, uint16_t port, void *data,
		  unsigned int size, uint32_t count);
	/* KVM_EXIT_MMIO. 0 or -errno. */
	int (*mmio)(void *ctx, struct vcpu *v, uint64_t addr, bool is_write, void *data,
		    unsigned int len);
	/* The vCPU stopped for good; message says why, with registers when relevant.
	 * Called on the vCPU thread. */
	void (*stopped)(void *ctx, struct vcpu *v, enum vcpu_stop_kind kind, const char *message);
};

/* Creates vCPU `id` of vm_fd (KVM_CREATE_VCPU and the kvm_run mapping). */
int vcpu_create(int kvm_fd, int vm_fd, unsigned int id, const struct vcpu_exit_ops *ops,
		void *ctx, struct vcpu **ret, struct error *err);

/* Joins the thread if running, unmaps and closes. Accepts NULL. */
void vcpu_free(struct vcpu *v);

/* Starts the "vcpu/N" thread. */
int vcpu_start(struct vcpu *v, struct error *err);

/* Asks the thread to leave KVM_RUN and end; returns at once. Any thread. */
void vcpu_request_stop(struct vcpu *v);

/* Waits for the thread to end (after vcpu_request_stop or a stop of its own). */
void vcpu_join(struct vcpu *v);

/*
 * Runs fn(v, arg) on the vCPU's thread between two KVM_RUNs and returns its
 * result. KVM serialises vCPU ioctls with KVM_RUN, so state is read or
 * written this way while the vCPU runs (or directly on the caller once the
 * thread is gone). Must not be called from the vCPU's own thread, nor from
 * inside fn.
 */
typedef int (*vcpu_call_fn)(struct vcpu *v, void *arg);
int vcpu_call(struct vcpu *v, vcpu_call_fn fn, void *arg);

/*
 * Pause: the thread parks outside KVM_RUN, at an instruction boundary,
 * until vcpu_resume(). vcpu_pause() only requests (so all vCPUs of a VM can
 * be asked at once); vcpu_wait_paused() waits until it is parked (or gone).
 * vcpu_call() still works while paused. Before parking, an I/O exit the
 * guest is in the middle of is completed (KVM_RUN with immediate_exit) and
 * the guest TSC is sampled, so a paused vCPU has one well-defined state
 * (docs/vcpu.md §1).
 */
void vcpu_pause(struct vcpu *v);
void vcpu_wait_paused(struct vcpu *v);
void vcpu_resume(struct vcpu *v);
bool vcpu_is_paused(struct vcpu *v);

unsigned int vcpu_id(const struct vcpu *v);
int vcpu_fd(const struct vcpu *v);

/* Installs the kick signal handler; call once per process before vcpu_start. */
int vcpu_init_signals(void);

/* "rip=... rsp=... cr0=..." for messages; never fails (says what it could not read). */
void vcpu_format_registers(const struct vcpu *v, char *buf, size_t size);

/*
 * A vCPU that stops on an error reports "vcpu N: WHAT" followed by its
 * registers, which start with this: guest contents, which whoever shows the
 * reason may cut off for those not allowed to see them.
 */
#define VCPU_REASON_REGISTERS "; rip="

/* Register access with messages naming the ioctl and the vCPU. */
int vcpu_get_regs(const struct vcpu *v, struct kvm_regs *ret, struct error *err);
int vcpu_set_regs(struct vcpu *v, const struct kvm_regs *regs, struct error *err);
int vcpu_get_sregs(const struct vcpu *v, struct kvm_sregs *ret, struct error *err);
int vcpu_set_sregs(struct vcpu *v, const struct kvm_sregs *sregs, struct error *err);

#endif
