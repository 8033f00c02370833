/* SPDX-License-Identifier: MIT */
/*
 * QEMU-compatible isa-debug-exit (as `-device isa-debug-exit,iobase=0xf4,
 * iosize=0x04`): a guest write of V to ports 0xF4-0xF7, 1, 2 or 4 bytes
 * wide, asks the worker to end the VM with exit status V. Reads return
 * all-ones, as on QEMU. Unlike QEMU, which exits with (V << 1) | 1, the
 * value is passed on unchanged; the worker maps it to a status.
 *
 * The first write after power-on or reset requests the exit; later writes
 * are ignored until the next reset, so vCPUs racing to the port (or the
 * byte pieces of an access straddling 0xF7) cannot change the status.
 */
#ifndef VMMD_DEVICES_DEBUG_EXIT_H
#define VMMD_DEVICES_DEBUG_EXIT_H

#include <stdint.h>

#include "util/error.h"
#include "vmmd/devices/iobus.h"

#define DEBUG_EXIT_PORT 0xF4u
#define DEBUG_EXIT_NR_PORTS 4u

/*
 * Called once, on the vCPU thread that wrote, with the value written
 * zero-extended from its size. It must not block on that vCPU's exit; the
 * worker typically posts the request to its main loop.
 */
typedef void debug_exit_request_fn(void *ctx, uint32_t value);

/*
 * Registers the device on `bus` at [base, base + DEBUG_EXIT_NR_PORTS); the
 * bus owns it. Returns 0, -EINVAL (no callback), -ENOMEM, or
 * iobus_register()'s error. Call before vCPUs run.
 */
int debug_exit_create(struct iobus *bus, uint16_t base, debug_exit_request_fn *exit_request,
		      void *ctx, struct error *err);

#endif
