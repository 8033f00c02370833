/* SPDX-License-Identifier: MIT */
/*
 * The port-I/O bus of one VM: a table mapping ranges of the 64 Ki x86 I/O
 * ports to device models, and the dispatch that vCPU threads call for every
 * KVM_EXIT_IO.
 *
 * Devices are described by a `struct iobus_device_ops` filled with
 * designated initialisers, so adding a device touches only its own file:
 *
 *     static const struct iobus_device_ops foo_ops = {
 *             .name = "foo",
 *             .max_access_size = 1,
 *             .read = foo_read,
 *             .write = foo_write,
 *             .reset = foo_reset,
 *             .destroy = foo_destroy,
 *     };
 *
 * Access sizes. The bus accepts accesses of 1, 2 and 4 bytes. An access that
 * lies entirely inside one device and is no wider than the device's
 * .max_access_size reaches the device as one call. A wider access is split
 * into .max_access_size pieces, and an access that is not entirely inside
 * one device (it straddles two devices, a device and a gap, or the end of
 * the port space) is split into single bytes; pieces are dispatched in
 * ascending port order and assembled little-endian, as the PC's ISA bus
 * converter does for 8-bit devices. Bytes beyond port 0xFFFF do not exist:
 * they read as 0xFF and writes to them are dropped.
 *
 * Unhandled ports. Reads of a port no device claims return all-ones (0xFF
 * per byte), writes are dropped. The first access to each such port is
 * logged once per bus (a 64 Ki-bit bitmap), and those log lines pass a token
 * bucket (IOBUS_LOG_BURST lines, then one per IOBUS_LOG_REFILL_NS); lines it
 * suppresses are counted and reported as one "N further ... suppressed" line
 * before the next line it lets through, or when the bus is freed. Port 0x80
 * (POST code, also used by Linux as an I/O delay) is registered as a silent
 * no-op device by iobus_new() so it is never logged.
 *
 * Threads. iobus_register() must be called before any vCPU runs: the device
 * table is read without a lock by the dispatch functions, so it must not
 * change once dispatch has begun. The bus enforces this: after the first
 * dispatch, iobus_register() fails with -EBUSY. The dispatch functions
 * (iobus_read, iobus_write, iobus_io) may be called concurrently from any
 * number of threads; each device serialises its own state. iobus_reset() and
 * iobus_free() must not run concurrently with dispatch.
 */
#ifndef VMMD_DEVICES_IOBUS_H
#define VMMD_DEVICES_IOBUS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

/* The x86 I/O address space: ports 0x0000-0xFFFF. */
#define IOBUS_NR_PORTS 65536u
/* Devices one bus holds; a PC needs about a dozen. */
#define IOBUS_MAX_DEVICES 64u
/* Unhandled-port log lines let through at once, and the time that earns one more. */
#define IOBUS_LOG_BURST 10u
#define IOBUS_LOG_REFILL_NS 1000000000ull
/* POST code port: written by firmware and by Linux's io_delay(). */
#define IOBUS_POST_CODE_PORT 0x80u

/*
 * A device model's operations. `dev` is the opaque pointer given to
 * iobus_register(); `offset` is the port minus the device's base; `size` is
 * 1, 2 or 4 and never more than .max_access_size; values are little-endian
 * in the low `size` bytes. All but .name may be NULL: a NULL .read reads
 * all-ones and a NULL .write drops the value, without logging (the port is
 * claimed). .read and .write run on vCPU threads, concurrently; .reset and
 * .destroy run with no dispatch in progress.
 */
struct iobus_device_ops {
	const char *name;
	unsigned int max_access_size; /* 1, 2 or 4; 0 means 1 */
	uint32_t (*read)(void *dev, uint16_t offset, unsigned int size);
	void (*write)(void *dev, uint16_t offset, uint32_t value, unsigned int size);
	void (*reset)(void *dev);
	void (*destroy)(void *dev);
};

/*
 * Where unhandled-port notices go, and the clock the rate limit uses. Both
 * hooks are optional: by default lines go to log_warning() and time is
 * CLOCK_MONOTONIC. emit() is called with the bus's log lock held, from a
 * vCPU thread (or from iobus_free()); it must not call back into the bus.
 */
struct iobus_log_sink {
	void (*emit)(void *ctx, const char *line);
	uint64_t (*now_ns)(void *ctx);
	void *ctx;
};

struct iobus;

/*
 * Creates an empty bus with the POST-code port registered. sink may be NULL
 * for the defaults; it is copied. Returns 0 and *ret, or -ENOMEM.
 */
int iobus_new(const struct iobus_log_sink *sink, struct iobus **ret, struct error *err);

/*
 * Emits a pending "suppressed" line, calls every device's .destroy and frees
 * the bus. Accepts NULL. No dispatch may be in progress.
 */
void iobus_free(struct iobus *bus);

/*
 * Claims ports [base, base + nr_ports) for a device. On success the bus owns
 * `dev` and calls ops->destroy(dev) in iobus_free(); on failure the caller
 * still owns it. ops must outlive the bus (normally a static const table).
 * Returns 0, or -EINVAL (no name, zero ports, bad access size), -ERANGE
 * (beyond port 0xFFFF), -EEXIST (overlaps a registered device; the message
 * names both), -ENOSPC (IOBUS_MAX_DEVICES reached), -EBUSY (dispatch has
 * begun). Not thread-safe: call before vCPUs run.
 */
int iobus_register(struct iobus *bus, uint16_t base, uint32_t nr_ports,
		   const struct iobus_device_ops *ops, void *dev, struct error *err);

/*
 * One guest IN of `size` bytes (1, 2 or 4) at `port`: fills data[0..size)
 * little-endian. Returns 0, or -EINVAL for another size (data untouched).
 * Thread-safe.
 */
int iobus_read(struct iobus *bus, uint16_t port, void *data, unsigned int size);

/* One guest OUT of data[0..size) at `port`. Returns 0 or -EINVAL. Thread-safe. */
int iobus_write(struct iobus *bus, uint16_t port, const void *data, unsigned int size);

/*
 * A whole KVM_EXIT_IO: `count` accesses of `size` bytes at the same port,
 * for string I/O (INS/OUTS with REP), reading or writing data[0..size*count)
 * in order. Pass kvm_run's io.direction == KVM_EXIT_IO_OUT as is_write and
 * the buffer at io.data_offset as data. Returns 0 or -EINVAL (bad size).
 * Thread-safe.
 */
int iobus_io(struct iobus *bus, bool is_write, uint16_t port, void *data,
	     unsigned int size, uint32_t count);

/* Calls every device's .reset, in ascending port order (VM reset). */
void iobus_reset(struct iobus *bus);

#endif
