/* SPDX-License-Identifier: MIT */
#include "vcpu/vcpu.h"
#include "vcpu/vcpu-internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/log.h"
#include "util/macro.h"
#include "util/thread.h"
#include "vcpu/x86.h"

static void on_kick_signal(int sig)
{
}

int vcpu_init_signals(void)
{
	struct sigaction sa = { .sa_handler = on_kick_signal };

	/* No SA_RESTART: KVM_RUN must return -EINTR. */
	sigemptyset(&sa.sa_mask);
	return sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0 ? negative_errno() : 0;
}

int vcpu_create(int kvm_fd, int vm_fd, unsigned int id, const struct vcpu_exit_ops *ops,
		void *ctx, struct vcpu **ret, struct error *err)
{
	struct vcpu *v;
	int size, rc;

	size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run))
		return error_set(err, size < 0 ? negative_errno() : -EINVAL,
				 "KVM_GET_VCPU_MMAP_SIZE: %s",
				 size < 0 ? strerror(errno) : "size too small");
	v = calloc(1, sizeof(*v));
	if (!v)
		return error_set(err, -ENOMEM, "vcpu %u: out of memory", id);
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_init(&v->kick_lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	v->id = id;
	v->kvm_fd = kvm_fd;
	v->vm_fd = vm_fd;
	v->ops = ops;
	v->ctx = ctx;
	v->run_size = (size_t)size;
	v->fd = ioctl(vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		rc = negative_errno();
		free(v);
		return error_set(err, rc, "KVM_CREATE_VCPU %u: %s", id, strerror(-rc));
	}
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		rc = negative_errno();
		close(v->fd);
		free(v);
		return error_set(err, rc, "mmap of kvm_run for vcpu %u: %s", id, strerror(-rc));
	}
	*ret = v;
	return 0;
}

void vcpu_free(struct vcpu *v)
{
	if (!v)
		return;
	if (v->thread_started && !v->joined) {
		vcpu_request_stop(v);
		vcpu_join(v);
	}
	munmap(v->run, v->run_size);
	close(v->fd);
	free(v->cpuid);
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
	pthread_mutex_destroy(&v->kick_lock);
	free(v);
}

unsigned int vcpu_id(const struct vcpu *v)
{
	return v->id;
}

int vcpu_fd(const struct vcpu *v)
{
	return v->fd;
}

void vcpu_format_registers(const struct vcpu *v, char *buf, size_t size)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		snprintf(buf, size, "registers unavailable: %s", strerror(errno));
		return;
	}
	snprintf(buf, size,
		 "rip=0x%llx rsp=0x%llx rflags=0x%llx rax=0x%llx rbx=0x%llx rcx=0x%llx "
		 "rdx=0x%llx cs=0x%x cr0=0x%llx cr2=0x%llx cr3=0x%llx cr4=0x%llx efer=0x%llx",
		 r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, s.cs.selector, s.cr0, s.cr2,
		 s.cr3, s.cr4, s.efer);
}

static void report_stop(struct vcpu *v, enum vcpu_stop_kind kind, const char *fmt, ...)
	_printf_(3, 4);

static void report_stop(struct vcpu *v, enum vcpu_stop_kind kind, const char *fmt, ...)
{
	char what[256], regs[400], msg[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (kind == VCPU_STOP_REQUESTED) {
		snprintf(msg, sizeof(msg), "%s", what);
	} else {
		vcpu_format_registers(v, regs, sizeof(regs));
		/* regs starts with "rip=": VCPU_REASON_REGISTERS. */
		snprintf(msg, sizeof(msg), "vcpu %u: %s; %s", v->id, what, regs);
	}
	v->ops->stopped(v->ctx, v, kind, msg);
}

/* Returns true to keep running. */
static bool dispatch_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	int rc;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		v->io_pending = true;
		rc = v->ops->io(v->ctx, v, run->io.direction == KVM_EXIT_IO_OUT, run->io.port,
				(uint8_t *)run + run->io.data_offset, run->io.size, run->io.count);
		if (rc < 0)
			report_stop(v, VCPU_STOP_ERROR, "port I/O at 0x%x failed: %s", run->io.port,
				    strerror(-rc));
		return rc == 0;
	case KVM_EXIT_MMIO:
		v->io_pending = true;
		rc = v->ops->mmio(v->ctx, v, run->mmio.phys_addr, run->mmio.is_write,
				  run->mmio.data, run->mmio.len);
		if (rc < 0)
			report_stop(v, VCPU_STOP_ERROR, "MMIO at 0x%llx failed: %s",
				    run->mmio.phys_addr, strerror(-rc));
		return rc == 0;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		report_stop(v, VCPU_STOP_HALTED, "guest halted (KVM_EXIT_HLT)");
		return false;
	case KVM_EXIT_SHUTDOWN:
		report_stop(v, VCPU_STOP_SHUTDOWN, "guest triple fault (KVM_EXIT_SHUTDOWN)");
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		report_stop(v, VCPU_STOP_FAIL_ENTRY,
			    "VM entry failed (KVM_EXIT_FAIL_ENTRY, hardware reason 0x%llx)",
			    run->fail_entry.hardware_entry_failure_reason);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		report_stop(v, VCPU_STOP_INTERNAL_ERROR,
			    "KVM internal error (KVM_EXIT_INTERNAL_ERROR, suberror %u%s)",
			    run->internal.suberror,
			    run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
				    ? ": instruction emulation failed"
				    : "");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		report_stop(v, VCPU_STOP_SYSTEM_EVENT, "system event %u (KVM_EXIT_SYSTEM_EVENT)",
			    run->system_event.type);
		return false;
	default:
		report_stop(v, VCPU_STOP_ERROR, "unhandled KVM exit reason %u", run->exit_reason);
		return false;
	}
}

/* Runs a pending vcpu_call(); lock held. */
static void serve_call(struct vcpu *v)
{
	if (!v->call_fn || v->call_done)
		return;
	v->call_rc = v->call_fn(v, v->call_arg);
	v->call_done = true;
	pthread_cond_broadcast(&v->cond);
}

/* Parks the thread: the guest TSC is sampled once here, so that what a
 * save of the stopped vCPU stores does not depend on when it is taken. */
static void enter_pause(struct vcpu *v)
{
	uint64_t tsc;

	/* A state read while parked must not see a half-done I/O instruction. */
	vcpu_complete_io(v, NULL);
	if (!v->tsc_frozen && vcpu_read_tsc(v, &tsc, NULL) == 0) {
		v->tsc_at_stop = tsc;
		v->tsc_frozen = true;
	}
	v->paused = true;
	pthread_cond_broadcast(&v->cond);
}

/*
 * Between two KVM_RUNs: serve calls, and park while a pause is requested.
 * Requesters set their flag before kicking, and the kick is cleared before
 * the flags are read, so no request is missed.
 */
static void serve_requests(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	serve_call(v);
	while (v->pause_requested && !atomic_load(&v->stop)) {
		if (!v->paused)
			enter_pause(v);
		pthread_cond_wait(&v->cond, &v->lock);
		serve_call(v);
	}
	if (v->paused) {
		v->paused = false;
		pthread_cond_broadcast(&v->cond);
	}
	/* The guest is about to run: the frozen TSC and the MMU snapshot no
	 * longer hold. */
	v->tsc_frozen = false;
	v->mmu_valid = false;
	pthread_mutex_unlock(&v->lock);
}

static void mark_thread_ended(struct vcpu *v)
{
	pthread_mutex_lock(&v->kick_lock);
	v->kickable = false;
	pthread_mutex_unlock(&v->kick_lock);
	pthread_mutex_lock(&v->lock);
	serve_call(v);
	v->thread_ended = true;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

static void run_loop(struct vcpu *v)
{
	for (;;) {
		serve_requests(v);
		if (atomic_load(&v->stop))
			break;
		atomic_store(&v->has_run, true);
		v->io_pending = false;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			int e = errno;
			if (e == EINTR || e == EAGAIN) {
				v->run->immediate_exit = 0;
				continue;
			}
			report_stop(v, VCPU_STOP_ERROR, "KVM_RUN: %s", strerror(e));
			return;
		}
		if (!dispatch_exit(v))
			return;
	}
	report_stop(v, VCPU_STOP_REQUESTED, "vcpu %u stopped on request", v->id);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	sigset_t kick;

	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	run_loop(v);
	mark_thread_ended(v);
	return NULL;
}

/*
 * The thread is created under kick_lock, so a kick from another thread (a
 * vCPU ending the VM while the others are still being started) sees
 * either no thread yet, which finds the request when it starts, or a
 * thread it can signal.
 */
int vcpu_start(struct vcpu *v, struct error *err)
{
	char name[16];
	int rc;

	snprintf(name, sizeof(name), "vcpu/%u", v->id);
	pthread_mutex_lock(&v->kick_lock);
	rc = thread_start(&v->thread, name, vcpu_thread, v);
	if (rc == 0)
		v->thread_started = v->kickable = true;
	pthread_mutex_unlock(&v->kick_lock);
	if (rc < 0)
		return error_set(err, rc, "starting thread %s: %s", name, strerror(-rc));
	return 0;
}

/* Makes the thread leave KVM_RUN: immediate_exit stops a KVM_RUN that is
 * about to start, the signal interrupts one in progress (api.rst 4.10).
 * Under kick_lock the thread cannot end between the test and the signal.
 * Any thread, the vCPU's own included, with or without v->lock held. */
static void kick(struct vcpu *v)
{
	v->run->immediate_exit = 1;
	pthread_mutex_lock(&v->kick_lock);
	if (v->kickable)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
	pthread_mutex_unlock(&v->kick_lock);
}

void vcpu_request_stop(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	atomic_store(&v->stop, true);
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	kick(v);
}

/* True when no thread will run KVM_RUN on v now: never started or ended. */
static bool thread_gone(const struct vcpu *v)
{
	return !v->thread_started || v->thread_ended;
}

bool vcpu_is_stopped_locked(const struct vcpu *v)
{
	return v->paused || thread_gone(v);
}

int vcpu_call(struct vcpu *v, vcpu_call_fn fn, void *arg)
{
	int rc;

	pthread_mutex_lock(&v->lock);
	/* One call at a time per vCPU. */
	while (v->call_fn && !thread_gone(v))
		pthread_cond_wait(&v->cond, &v->lock);
	if (thread_gone(v)) {
		/* Nobody else uses the fd: run it here, still serialised. */
		rc = fn(v, arg);
		pthread_mutex_unlock(&v->lock);
		return rc;
	}
	v->call_fn = fn;
	v->call_arg = arg;
	v->call_done = false;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	kick(v);
	pthread_mutex_lock(&v->lock);
	while (!v->call_done)
		pthread_cond_wait(&v->cond, &v->lock);
	rc = v->call_rc;
	v->call_fn = NULL;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	return rc;
}

void vcpu_pause(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	v->pause_requested = true;
	pthread_mutex_unlock(&v->lock);
	kick(v);
}

void vcpu_wait_paused(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	while (v->pause_requested && !v->paused && !thread_gone(v))
		pthread_cond_wait(&v->cond, &v->lock);
	pthread_mutex_unlock(&v->lock);
}

void vcpu_resume(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	v->pause_requested = false;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

bool vcpu_is_paused(struct vcpu *v)
{
	bool paused;

	pthread_mutex_lock(&v->lock);
	paused = v->paused || (v->pause_requested && thread_gone(v));
	pthread_mutex_unlock(&v->lock);
	return paused;
}

void vcpu_join(struct vcpu *v)
{
	if (v->thread_started && !v->joined) {
		pthread_join(v->thread, NULL);
		v->joined = true;
	}
}

int vcpu_ioctl(const struct vcpu *v, unsigned long req, void *arg, const char *name,
	       struct error *err)
{
	if (ioctl(v->fd, req, arg) < 0) {
		int rc = negative_errno();
		return error_set(err, rc, "%s on vcpu %u: %s", name, v->id, strerror(-rc));
	}
	return 0;
}

int vcpu_get_regs(const struct vcpu *v, struct kvm_regs *ret, struct error *err)
{
	return vcpu_ioctl(v, KVM_GET_REGS, ret, "KVM_GET_REGS", err);
}

int vcpu_set_regs(struct vcpu *v, const struct kvm_regs *regs, struct error *err)
{
	return vcpu_ioctl(v, KVM_SET_REGS, (void *)regs, "KVM_SET_REGS", err);
}

int vcpu_get_sregs(const struct vcpu *v, struct kvm_sregs *ret, struct error *err)
{
	return vcpu_ioctl(v, KVM_GET_SREGS, ret, "KVM_GET_SREGS", err);
}

int vcpu_set_sregs(struct vcpu *v, const struct kvm_sregs *sregs, struct error *err)
{
	/* New CR0/CR4/EFER: vmmd's MMU snapshot no longer holds. */
	v->mmu_valid = false;
	return vcpu_ioctl(v, KVM_SET_SREGS, (void *)sregs, "KVM_SET_SREGS", err);
}

int vcpu_vm_extension(const struct vcpu *v, long cap)
{
	int r = ioctl(v->vm_fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

/* A string I/O instruction can need several exits before it completes. */
#define VCPU_COMPLETE_IO_MAX_EXITS 64

int vcpu_complete_io(struct vcpu *v, struct error *err)
{
	int rc = 0;

	/* With immediate_exit set KVM completes the pending I/O and returns
	 * EINTR before entering the guest (KVM api.rst, "immediate_exit"); it
	 * returns 0 with a new exit when a string I/O needs more of them. */
	v->run->immediate_exit = 1;
	for (int i = 0; v->io_pending && i < VCPU_COMPLETE_IO_MAX_EXITS; i++) {
		int r = ioctl(v->fd, KVM_RUN, 0), e = errno;
		v->io_pending = false;
		if (r < 0 && e == EINTR)
			break;
		if (r < 0) {
			rc = error_set(err, -e, "KVM_RUN (completing I/O) on vcpu %u: %s", v->id,
				       strerror(e));
			break;
		}
		if (v->run->exit_reason != KVM_EXIT_IO && v->run->exit_reason != KVM_EXIT_MMIO) {
			rc = error_set(err, -EIO, "KVM_RUN (completing I/O) on vcpu %u: exit reason %u",
				       v->id, v->run->exit_reason);
			break;
		}
		if (!dispatch_exit(v)) {
			rc = error_set(err, -EIO, "vcpu %u: I/O failed while completing it", v->id);
			break;
		}
	}
	v->run->immediate_exit = 0;
	v->io_pending = false;
	return rc;
}
