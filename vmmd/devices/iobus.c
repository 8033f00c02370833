/* SPDX-License-Identifier: MIT */
#include "vmmd/devices/iobus.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

struct iobus_device {
	const struct iobus_device_ops *ops;
	void *dev;
	uint32_t base;
	uint32_t end; /* one past the last port */
};

/* Token bucket for unhandled-port notices; `lock` also orders the lines. */
struct iobus_log {
	pthread_mutex_t lock;
	struct iobus_log_sink sink;
	uint64_t refilled_at_ns;
	unsigned int tokens;
	unsigned long suppressed;
};

struct iobus {
	/* Sorted by base; written only before dispatch begins. */
	struct iobus_device devices[IOBUS_MAX_DEVICES];
	unsigned int nr_devices;
	bool dispatching; /* set on the first dispatch; atomic */
	uint64_t logged[IOBUS_NR_PORTS / 64]; /* unhandled ports already logged; atomic */
	struct iobus_log log;
};

static const struct iobus_device_ops post_code_ops = {
	.name = "post-code",
	.max_access_size = 1,
};

/* ------------------------------------------------------------ logging */

static void default_emit(void *ctx, const char *line)
{
	log_warning("%s", line);
}

static uint64_t default_now_ns(void *ctx)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void log_init_sink(struct iobus_log *log, const struct iobus_log_sink *sink)
{
	if (sink)
		log->sink = *sink;
	if (!log->sink.emit)
		log->sink.emit = default_emit;
	if (!log->sink.now_ns)
		log->sink.now_ns = default_now_ns;
	log->tokens = IOBUS_LOG_BURST;
	log->refilled_at_ns = log->sink.now_ns(log->sink.ctx);
}

/* Adds the tokens earned since the last refill, up to the burst. Lock held. */
static void log_refill(struct iobus_log *log)
{
	uint64_t now = log->sink.now_ns(log->sink.ctx);
	uint64_t earned;

	if (now < log->refilled_at_ns)
		log->refilled_at_ns = now;
	earned = (now - log->refilled_at_ns) / IOBUS_LOG_REFILL_NS;
	if (earned == 0)
		return;
	log->refilled_at_ns += earned * IOBUS_LOG_REFILL_NS;
	log->tokens = (unsigned int)MIN((uint64_t)IOBUS_LOG_BURST, log->tokens + earned);
}

/* Lock held. */
static void log_flush_suppressed(struct iobus_log *log)
{
	char line[128];

	if (log->suppressed == 0)
		return;
	snprintf(line, sizeof(line), "%lu further unhandled port I/O messages suppressed",
		 log->suppressed);
	log->suppressed = 0;
	log->sink.emit(log->sink.ctx, line);
}

static void log_rate_limited(struct iobus_log *log, const char *line)
{
	pthread_mutex_lock(&log->lock);
	log_refill(log);
	if (log->tokens == 0) {
		log->suppressed++;
	} else {
		log->tokens--;
		log_flush_suppressed(log);
		log->sink.emit(log->sink.ctx, line);
	}
	pthread_mutex_unlock(&log->lock);
}

/* True the first time it is called for `port` on this bus, from any thread. */
static bool first_unhandled_access(struct iobus *bus, uint32_t port)
{
	uint64_t bit = 1ull << (port % 64);
	uint64_t old = __atomic_fetch_or(&bus->logged[port / 64], bit, __ATOMIC_RELAXED);

	return !(old & bit);
}

static void report_unhandled(struct iobus *bus, uint32_t port, bool is_write,
			     uint32_t value, unsigned int size)
{
	char line[256];

	/* Bytes past 0xFFFF of a straddling access have no port to name. */
	if (port >= IOBUS_NR_PORTS || !first_unhandled_access(bus, port))
		return;
	if (is_write)
		snprintf(line, sizeof(line),
			 "unhandled port I/O: write of 0x%0*x (%u byte%s) to port 0x%04x dropped; "
			 "further accesses to this port are not logged",
			 (int)size * 2, value, size, size == 1 ? "" : "s", port);
	else
		snprintf(line, sizeof(line),
			 "unhandled port I/O: read of %u byte%s at port 0x%04x returns all-ones; "
			 "further accesses to this port are not logged",
			 size, size == 1 ? "" : "s", port);
	log_rate_limited(&bus->log, line);
}

/* ------------------------------------------------------------ table */

/* The device whose range holds `port`, or NULL. */
static const struct iobus_device *device_at(const struct iobus *bus, uint32_t port)
{
	unsigned int lo = 0, hi = bus->nr_devices;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct iobus_device *d = &bus->devices[mid];

		if (port < d->base)
			hi = mid;
		else if (port >= d->end)
			lo = mid + 1;
		else
			return d;
	}
	return NULL;
}

/* Index of the first device whose base is >= `base` (the insertion point). */
static unsigned int insertion_index(const struct iobus *bus, uint32_t base)
{
	unsigned int i = 0;

	while (i < bus->nr_devices && bus->devices[i].base < base)
		i++;
	return i;
}

/* The first device that overlaps [base, end), or NULL. */
static const struct iobus_device *first_overlap(const struct iobus *bus, uint32_t base,
						uint32_t end)
{
	for (unsigned int i = 0; i < bus->nr_devices; i++) {
		const struct iobus_device *d = &bus->devices[i];

		if (d->base < end && base < d->end)
			return d;
	}
	return NULL;
}

static bool access_size_valid(unsigned int size)
{
	return size == 1 || size == 2 || size == 4;
}

static unsigned int max_access_size(const struct iobus_device *d)
{
	return d->ops->max_access_size ? d->ops->max_access_size : 1;
}

int iobus_new(const struct iobus_log_sink *sink, struct iobus **ret, struct error *err)
{
	struct iobus *bus = calloc(1, sizeof(*bus));
	int r;

	if (!bus)
		return error_set(err, -ENOMEM, "I/O bus: out of memory");
	pthread_mutex_init(&bus->log.lock, NULL);
	log_init_sink(&bus->log, sink);
	r = iobus_register(bus, IOBUS_POST_CODE_PORT, 1, &post_code_ops, NULL, err);
	if (r < 0) {
		iobus_free(bus);
		return r;
	}
	*ret = bus;
	return 0;
}

void iobus_free(struct iobus *bus)
{
	if (!bus)
		return;
	pthread_mutex_lock(&bus->log.lock);
	log_flush_suppressed(&bus->log);
	pthread_mutex_unlock(&bus->log.lock);
	for (unsigned int i = 0; i < bus->nr_devices; i++) {
		struct iobus_device *d = &bus->devices[i];

		if (d->ops->destroy)
			d->ops->destroy(d->dev);
	}
	pthread_mutex_destroy(&bus->log.lock);
	free(bus);
}

static int check_registration(const struct iobus *bus, uint32_t base, uint32_t nr_ports,
			      const struct iobus_device_ops *ops, struct error *err)
{
	const struct iobus_device *other;
	uint32_t end = base + nr_ports;

	if (!ops || !ops->name || !ops->name[0])
		return error_set(err, -EINVAL, "I/O bus: device at port 0x%04x has no name", base);
	if (nr_ports == 0)
		return error_set(err, -EINVAL, "I/O bus: device '%s' claims no ports", ops->name);
	if (ops->max_access_size && !access_size_valid(ops->max_access_size))
		return error_set(err, -EINVAL, "I/O bus: device '%s' has access size %u, not 1, 2 or 4",
				 ops->name, ops->max_access_size);
	if (nr_ports > IOBUS_NR_PORTS || end > IOBUS_NR_PORTS)
		return error_set(err, -ERANGE,
				 "I/O bus: device '%s' at port 0x%04x with %u ports goes past port 0xffff",
				 ops->name, base, nr_ports);
	if (__atomic_load_n(&bus->dispatching, __ATOMIC_RELAXED))
		return error_set(err, -EBUSY,
				 "I/O bus: device '%s' registered after vCPUs started dispatching",
				 ops->name);
	other = first_overlap(bus, base, end);
	if (other)
		return error_set(err, -EEXIST,
				 "I/O bus: ports 0x%04x-0x%04x of device '%s' overlap device '%s' at 0x%04x-0x%04x",
				 base, end - 1, ops->name, other->ops->name, other->base, other->end - 1);
	if (bus->nr_devices == IOBUS_MAX_DEVICES)
		return error_set(err, -ENOSPC, "I/O bus: no room for device '%s' (limit %u devices)",
				 ops->name, IOBUS_MAX_DEVICES);
	return 0;
}

int iobus_register(struct iobus *bus, uint16_t base, uint32_t nr_ports,
		   const struct iobus_device_ops *ops, void *dev, struct error *err)
{
	unsigned int i;
	int r;

	r = check_registration(bus, base, nr_ports, ops, err);
	if (r < 0)
		return r;
	i = insertion_index(bus, base);
	memmove(&bus->devices[i + 1], &bus->devices[i],
		(bus->nr_devices - i) * sizeof(bus->devices[0]));
	bus->devices[i] = (struct iobus_device){
		.ops = ops,
		.dev = dev,
		.base = base,
		.end = (uint32_t)base + nr_ports,
	};
	bus->nr_devices++;
	return 0;
}

void iobus_reset(struct iobus *bus)
{
	for (unsigned int i = 0; i < bus->nr_devices; i++) {
		struct iobus_device *d = &bus->devices[i];

		if (d->ops->reset)
			d->ops->reset(d->dev);
	}
}

/* ------------------------------------------------------------ dispatch */

static uint32_t size_mask(unsigned int size)
{
	return size >= 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
}

static void mark_dispatching(struct iobus *bus)
{
	if (!__atomic_load_n(&bus->dispatching, __ATOMIC_RELAXED))
		__atomic_store_n(&bus->dispatching, true, __ATOMIC_RELAXED);
}

/* The access fits one call of the device when it is inside its range. */
static bool inside(const struct iobus_device *d, uint32_t port, unsigned int size)
{
	return d && port + size <= d->end;
}

static uint32_t device_read(const struct iobus_device *d, uint32_t port, unsigned int size)
{
	unsigned int piece = MIN(size, max_access_size(d));
	uint32_t value = 0;

	if (!d->ops->read)
		return size_mask(size);
	for (unsigned int i = 0; i < size; i += piece) {
		uint32_t v = d->ops->read(d->dev, (uint16_t)(port + i - d->base), piece);

		value |= (v & size_mask(piece)) << (i * 8);
	}
	return value;
}

static void device_write(const struct iobus_device *d, uint32_t port, uint32_t value,
			 unsigned int size)
{
	unsigned int piece = MIN(size, max_access_size(d));

	if (!d->ops->write)
		return;
	for (unsigned int i = 0; i < size; i += piece)
		d->ops->write(d->dev, (uint16_t)(port + i - d->base),
			      (value >> (i * 8)) & size_mask(piece), piece);
}

/* port is 32-bit: bytes of a straddling access may lie past 0xFFFF. */
static uint32_t bus_read(struct iobus *bus, uint32_t port, unsigned int size)
{
	const struct iobus_device *d = port < IOBUS_NR_PORTS ? device_at(bus, port) : NULL;
	uint32_t value = 0;

	if (inside(d, port, size))
		return device_read(d, port, size);
	if (!first_overlap(bus, port, port + size)) {
		report_unhandled(bus, port, false, 0, size);
		return size_mask(size);
	}
	for (unsigned int i = 0; i < size; i++)
		value |= bus_read(bus, port + i, 1) << (i * 8);
	return value;
}

static void bus_write(struct iobus *bus, uint32_t port, uint32_t value, unsigned int size)
{
	const struct iobus_device *d = port < IOBUS_NR_PORTS ? device_at(bus, port) : NULL;

	if (inside(d, port, size)) {
		device_write(d, port, value, size);
		return;
	}
	if (!first_overlap(bus, port, port + size)) {
		report_unhandled(bus, port, true, value, size);
		return;
	}
	for (unsigned int i = 0; i < size; i++)
		bus_write(bus, port + i, (value >> (i * 8)) & 0xff, 1);
}

int iobus_read(struct iobus *bus, uint16_t port, void *data, unsigned int size)
{
	uint8_t *bytes = data;
	uint32_t value;

	if (!access_size_valid(size))
		return -EINVAL;
	mark_dispatching(bus);
	value = bus_read(bus, port, size);
	for (unsigned int i = 0; i < size; i++)
		bytes[i] = (uint8_t)(value >> (i * 8));
	return 0;
}

int iobus_write(struct iobus *bus, uint16_t port, const void *data, unsigned int size)
{
	const uint8_t *bytes = data;
	uint32_t value = 0;

	if (!access_size_valid(size))
		return -EINVAL;
	mark_dispatching(bus);
	for (unsigned int i = 0; i < size; i++)
		value |= (uint32_t)bytes[i] << (i * 8);
	bus_write(bus, port, value, size);
	return 0;
}

int iobus_io(struct iobus *bus, bool is_write, uint16_t port, void *data,
	     unsigned int size, uint32_t count)
{
	uint8_t *p = data;

	if (!access_size_valid(size))
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++, p += size) {
		if (is_write)
			iobus_write(bus, port, p, size);
		else
			iobus_read(bus, port, p, size);
	}
	return 0;
}
