/* SPDX-License-Identifier: MIT */
#include "vmmd/devices/debug-exit.h"

#include <stdbool.h>
#include <stdlib.h>

struct debug_exit {
	debug_exit_request_fn *exit_request;
	void *ctx;
	bool requested; /* atomic: set by the first write after reset */
};

static void debug_exit_write(void *dev, uint16_t offset, uint32_t value, unsigned int size)
{
	struct debug_exit *d = dev;

	if (!__atomic_exchange_n(&d->requested, true, __ATOMIC_ACQ_REL))
		d->exit_request(d->ctx, value);
}

static void debug_exit_reset(void *dev)
{
	struct debug_exit *d = dev;

	__atomic_store_n(&d->requested, false, __ATOMIC_RELEASE);
}

static void debug_exit_free(void *dev)
{
	free(dev);
}

/* No .read: the bus answers all-ones, without logging. */
static const struct iobus_device_ops debug_exit_ops = {
	.name = "isa-debug-exit",
	.max_access_size = 4,
	.write = debug_exit_write,
	.reset = debug_exit_reset,
	.destroy = debug_exit_free,
};

int debug_exit_create(struct iobus *bus, uint16_t base, debug_exit_request_fn *exit_request,
		      void *ctx, struct error *err)
{
	struct debug_exit *d;
	int r;

	if (!exit_request)
		return error_set(err, -EINVAL, "debug-exit at port 0x%04x: exit_request callback is required",
				 base);
	d = calloc(1, sizeof(*d));
	if (!d)
		return error_set(err, -ENOMEM, "debug-exit at port 0x%04x: out of memory", base);
	d->exit_request = exit_request;
	d->ctx = ctx;
	r = iobus_register(bus, base, DEBUG_EXIT_NR_PORTS, &debug_exit_ops, d, err);
	if (r < 0) {
		free(d);
		return r;
	}
	return 0;
}
