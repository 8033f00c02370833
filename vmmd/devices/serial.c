/* SPDX-License-Identifier: MIT */
/*
 * 16550A UART. Register and bit names, reset values and interrupt rules
 * follow the National Semiconductor PC16550D datasheet (June 1995):
 * Table I (UART reset configuration), Table II (summary of registers),
 * Table IV (interrupt control functions: priorities, sources and what
 * resets each) and the register descriptions of section 8.
 */
#include "vmmd/devices/serial.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/* IER (8.7): bits 4-7 are always 0. */
#define IER_ERBFI 0x01 /* received data available (and character timeout) */
#define IER_ETBEI 0x02 /* transmitter holding register empty */
#define IER_ELSI 0x04  /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_WRITABLE 0x0f

/* IIR (8.6, Table IV): bit 0 clear when an interrupt is pending. */
#define IIR_NONE 0x01
#define IIR_RLS 0x06  /* 1st: overrun, parity, framing error or break */
#define IIR_RDA 0x04  /* 2nd: receive FIFO at or above the trigger level */
#define IIR_CTI 0x0c  /* 2nd: character timeout (FIFO mode only) */
#define IIR_THRE 0x02 /* 3rd: transmitter holding register empty */
#define IIR_MS 0x00   /* 4th: CTS, DSR, RI or DCD changed */
#define IIR_FIFOS_ENABLED 0xc0 /* bits 6-7 set while FCR0 = 1 */

/* FCR (8.5). */
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_DMA_MODE 0x08
#define FCR_TRIGGER 0xc0
#define FCR_PROGRAMMED (FCR_ENABLE | FCR_DMA_MODE | FCR_TRIGGER)

#define LCR_DLAB 0x80

/* MCR (8.8): bits 5-7 are permanently 0. */
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_WRITABLE 0x1f

/* LSR (8.4). */
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

/* MSR (8.9): deltas in bits 0-3, line states in bits 4-7. */
#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_DELTAS 0x0f
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

/* The console is a connected, ready peer: carrier, data set ready, clear to send, no ring. */
#define MSR_CONSOLE_LINES (MSR_DCD | MSR_DSR | MSR_CTS)

struct byte_ring {
	uint8_t *buf;
	size_t cap;
	size_t head;
	size_t count;
};

struct serial {
	pthread_mutex_t lock;
	struct serial_callbacks cb;
	void *ctx;

	uint8_t ier;
	uint8_t fcr; /* FCR_PROGRAMMED bits as last programmed */
	uint8_t lcr;
	uint8_t mcr;
	uint8_t lsr_errors; /* latched OE; cleared by reading LSR */
	uint8_t msr;
	uint8_t scr;
	uint8_t dll, dlm;
	uint8_t rbr;       /* last byte read: RBR keeps it once the FIFO is empty */
	bool thre_pending; /* THRE interrupt latch (Table IV) */
	bool irq_level;    /* last level given to set_irq */
	bool input_refused;

	struct byte_ring rx; /* receive FIFO, or the RBR alone in 16450 mode */
	struct byte_ring input;
	uint8_t rx_buf[SERIAL_FIFO_SIZE];
	uint8_t input_buf[SERIAL_INPUT_QUEUE_SIZE];
};

/* ------------------------------------------------------------ byte rings */

static void ring_push(struct byte_ring *r, uint8_t b)
{
	r->buf[(r->head + r->count) % r->cap] = b;
	r->count++;
}

static uint8_t ring_pop(struct byte_ring *r)
{
	uint8_t b = r->buf[r->head];

	r->head = (r->head + 1) % r->cap;
	r->count--;
	return b;
}

static void ring_clear(struct byte_ring *r)
{
	r->head = 0;
	r->count = 0;
}

/* ------------------------------------------------------------ state */

static bool fifo_enabled(const struct serial *u)
{
	return u->fcr & FCR_ENABLE;
}

/* 16450 mode (FCR0 = 0) holds one character, in RBR. */
static size_t rx_capacity(const struct serial *u)
{
	return fifo_enabled(u) ? SERIAL_FIFO_SIZE : 1;
}

/* FCR bits 7:6 (8.5): 1, 4, 8 or 14 bytes. */
static size_t rx_trigger_level(const struct serial *u)
{
	static const uint8_t levels[] = { 1, 4, 8, 14 };

	return fifo_enabled(u) ? levels[(u->fcr & FCR_TRIGGER) >> 6] : 1;
}

/*
 * Character timeout (Table IV, 8.11) fires when characters sit below the
 * trigger level for four character times with no read and no new
 * character. Without character timing that moment is now: the FIFO refills
 * greedily, so fewer bytes than the trigger level means no more are coming.
 */
static bool rx_timed_out(const struct serial *u)
{
	return fifo_enabled(u) && u->rx.count > 0 && u->rx.count < rx_trigger_level(u);
}

/* The pending interrupt of highest priority (Table IV), as IIR bits 0-3. */
static uint8_t interrupt_id(const struct serial *u)
{
	if ((u->ier & IER_ELSI) && u->lsr_errors)
		return IIR_RLS;
	if (u->ier & IER_ERBFI) {
		if (u->rx.count >= rx_trigger_level(u))
			return IIR_RDA;
		if (rx_timed_out(u))
			return IIR_CTI;
	}
	if ((u->ier & IER_ETBEI) && u->thre_pending)
		return IIR_THRE;
	if ((u->ier & IER_EDSSI) && (u->msr & MSR_DELTAS))
		return IIR_MS;
	return IIR_NONE;
}

static void update_irq(struct serial *u)
{
	bool level = interrupt_id(u) != IIR_NONE;

	if (level == u->irq_level)
		return;
	u->irq_level = level;
	u->cb.set_irq(u->ctx, level);
}

/* Moves console input into the receive FIFO while it has room. */
static void refill_rx(struct serial *u)
{
	/* Loopback disconnects the receiver from SIN (8.8, MCR bit 4). */
	if (u->mcr & MCR_LOOP)
		return;
	while (u->input.count > 0 && u->rx.count < rx_capacity(u))
		ring_push(&u->rx, ring_pop(&u->input));
	if (u->input_refused && u->input.count < u->input.cap) {
		u->input_refused = false;
		if (u->cb.input_room)
			u->cb.input_room(u->ctx);
	}
}

/* Loopback mode: the outputs DTR, RTS, OUT1, OUT2 drive DSR, CTS, RI, DCD (8.8). */
static uint8_t modem_lines(const struct serial *u)
{
	if (!(u->mcr & MCR_LOOP))
		return MSR_CONSOLE_LINES;
	return (u->mcr & MCR_RTS ? MSR_CTS : 0) | (u->mcr & MCR_DTR ? MSR_DSR : 0) |
	       (u->mcr & MCR_OUT1 ? MSR_RI : 0) | (u->mcr & MCR_OUT2 ? MSR_DCD : 0);
}

/* Latches the MSR delta bits for lines that changed (8.9). */
static void update_modem_lines(struct serial *u)
{
	uint8_t old = u->msr & ~MSR_DELTAS;
	uint8_t now = modem_lines(u);
	uint8_t changed = old ^ now;

	u->msr = now | (u->msr & MSR_DELTAS);
	if (changed & MSR_CTS)
		u->msr |= MSR_DCTS;
	if (changed & MSR_DSR)
		u->msr |= MSR_DDSR;
	if (changed & MSR_DCD)
		u->msr |= MSR_DDCD;
	/* TERI: the RI input went from low to high, i.e. MSR.RI from 1 to 0. */
	if ((old & MSR_RI) && !(now & MSR_RI))
		u->msr |= MSR_TERI;
}

static void reset_locked(struct serial *u)
{
	u->ier = 0;
	u->fcr = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->lsr_errors = 0;
	u->scr = 0;
	u->dll = 0;
	u->dlm = 0;
	u->rbr = 0;
	u->thre_pending = false;
	ring_clear(&u->rx);
	u->msr = modem_lines(u);
	refill_rx(u);
	update_irq(u);
}

/* ------------------------------------------------------------ receive and transmit */

/* A character reaching the receiver from the transmitter in loopback mode. */
static void loopback_receive(struct serial *u, uint8_t byte)
{
	if (u->rx.count < rx_capacity(u)) {
		ring_push(&u->rx, byte);
		return;
	}
	/*
	 * Overrun (8.4, LSR bit 1). In 16450 mode the new character
	 * overwrites RBR; in FIFO mode it is lost and the FIFO is kept.
	 */
	u->lsr_errors |= LSR_OE;
	if (!fifo_enabled(u)) {
		ring_clear(&u->rx);
		ring_push(&u->rx, byte);
	}
}

static void transmit(struct serial *u, uint8_t byte)
{
	/* Writing THR resets the THRE interrupt (Table IV)... */
	u->thre_pending = false;
	update_irq(u);
	if (u->mcr & MCR_LOOP)
		loopback_receive(u, byte);
	else
		u->cb.output(u->ctx, &byte, 1);
	/* ...and the byte leaves at once, so THR is empty again: a new one. */
	u->thre_pending = true;
}

/* ------------------------------------------------------------ registers */

static uint8_t read_rbr(struct serial *u)
{
	if (u->rx.count > 0) {
		u->rbr = ring_pop(&u->rx);
		refill_rx(u);
	}
	return u->rbr;
}

static uint8_t read_iir(struct serial *u)
{
	uint8_t id = interrupt_id(u);

	/* Reading IIR resets THRE when it is the interrupt reported (Table IV). */
	if (id == IIR_THRE)
		u->thre_pending = false;
	return id | (fifo_enabled(u) ? IIR_FIFOS_ENABLED : 0);
}

static uint8_t read_lsr(struct serial *u)
{
	/* Transmission is instantaneous: THR and the shift register are always empty. */
	uint8_t lsr = (u->rx.count > 0 ? LSR_DR : 0) | u->lsr_errors | LSR_THRE | LSR_TEMT;

	u->lsr_errors = 0;
	return lsr;
}

static uint8_t read_msr(struct serial *u)
{
	uint8_t msr = u->msr;

	u->msr &= ~MSR_DELTAS;
	return msr;
}

static uint8_t read_locked(struct serial *u, uint8_t offset)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (offset) {
	case SERIAL_RBR_THR_DLL:
		return dlab ? u->dll : read_rbr(u);
	case SERIAL_IER_DLM:
		return dlab ? u->dlm : u->ier;
	case SERIAL_IIR_FCR:
		return read_iir(u);
	case SERIAL_LCR:
		return u->lcr;
	case SERIAL_MCR:
		return u->mcr;
	case SERIAL_LSR:
		return read_lsr(u);
	case SERIAL_MSR:
		return read_msr(u);
	case SERIAL_SCR:
		return u->scr;
	default:
		return 0xff;
	}
}

static void write_ier(struct serial *u, uint8_t value)
{
	uint8_t old = u->ier;

	u->ier = value & IER_WRITABLE;
	/* Enabling ETBEI while THR is empty interrupts at once (drivers probe for it). */
	if (!(old & IER_ETBEI) && (u->ier & IER_ETBEI))
		u->thre_pending = true;
}

static void write_fcr(struct serial *u, uint8_t value)
{
	bool enable = value & FCR_ENABLE;

	/*
	 * Switching between 16450 and FIFO mode empties the FIFOs (8.5), and
	 * the first THRE interrupt after changing FCR0 is immediate (8.11).
	 */
	if (enable != fifo_enabled(u)) {
		ring_clear(&u->rx);
		u->thre_pending = true;
	}
	/* With FCR0 = 0 the other bits are not programmed (8.5). */
	if (!enable) {
		u->fcr &= ~FCR_ENABLE;
	} else {
		u->fcr = value & FCR_PROGRAMMED;
		if (value & FCR_CLEAR_RX)
			ring_clear(&u->rx);
		/* FCR_CLEAR_TX: the transmit FIFO is always empty. */
	}
	refill_rx(u);
}

static void write_mcr(struct serial *u, uint8_t value)
{
	u->mcr = value & MCR_WRITABLE;
	update_modem_lines(u);
	refill_rx(u);
}

static void write_locked(struct serial *u, uint8_t offset, uint8_t value)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (offset) {
	case SERIAL_RBR_THR_DLL:
		if (dlab)
			u->dll = value;
		else
			transmit(u, value);
		break;
	case SERIAL_IER_DLM:
		if (dlab)
			u->dlm = value;
		else
			write_ier(u, value);
		break;
	case SERIAL_IIR_FCR:
		write_fcr(u, value);
		break;
	case SERIAL_LCR:
		u->lcr = value;
		break;
	case SERIAL_MCR:
		write_mcr(u, value);
		break;
	case SERIAL_SCR:
		u->scr = value;
		break;
	default:
		/* LSR is for factory testing only (8.4), MSR is read-only. */
		break;
	}
}

uint8_t serial_read(struct serial *uart, uint8_t offset)
{
	uint8_t value;

	pthread_mutex_lock(&uart->lock);
	value = read_locked(uart, offset);
	update_irq(uart);
	pthread_mutex_unlock(&uart->lock);
	return value;
}

void serial_write(struct serial *uart, uint8_t offset, uint8_t value)
{
	pthread_mutex_lock(&uart->lock);
	write_locked(uart, offset, value);
	update_irq(uart);
	pthread_mutex_unlock(&uart->lock);
}

int serial_receive(struct serial *uart, const void *buf, size_t len, size_t *ret_accepted)
{
	const uint8_t *bytes = buf;
	size_t n;

	if (!buf && len > 0)
		return -EINVAL;
	pthread_mutex_lock(&uart->lock);
	/* A new offer replaces an older refusal; refill_rx() calls no one now. */
	uart->input_refused = false;
	n = MIN(len, uart->input.cap - uart->input.count);
	for (size_t i = 0; i < n; i++)
		ring_push(&uart->input, bytes[i]);
	refill_rx(uart);
	uart->input_refused = n < len;
	update_irq(uart);
	pthread_mutex_unlock(&uart->lock);
	*ret_accepted = n;
	return 0;
}

void serial_reset(struct serial *uart)
{
	pthread_mutex_lock(&uart->lock);
	reset_locked(uart);
	pthread_mutex_unlock(&uart->lock);
}

/* ------------------------------------------------------------ bus glue */

static uint32_t serial_bus_read(void *dev, uint16_t offset, unsigned int size)
{
	return serial_read(dev, (uint8_t)offset);
}

static void serial_bus_write(void *dev, uint16_t offset, uint32_t value, unsigned int size)
{
	serial_write(dev, (uint8_t)offset, (uint8_t)value);
}

static void serial_bus_reset(void *dev)
{
	serial_reset(dev);
}

static void serial_free(void *dev)
{
	struct serial *uart = dev;

	if (!uart)
		return;
	pthread_mutex_destroy(&uart->lock);
	free(uart);
}

/* Registers are one byte wide: the bus splits wider accesses into bytes. */
static const struct iobus_device_ops serial_ops = {
	.name = "serial-16550a",
	.max_access_size = 1,
	.read = serial_bus_read,
	.write = serial_bus_write,
	.reset = serial_bus_reset,
	.destroy = serial_free,
};

int serial_create(struct iobus *bus, uint16_t base, const struct serial_callbacks *cb,
		  void *ctx, struct serial **ret, struct error *err)
{
	struct serial *uart;
	int r;

	if (!cb || !cb->set_irq || !cb->output)
		return error_set(err, -EINVAL, "serial at port 0x%04x: set_irq and output callbacks are required",
				 base);
	uart = calloc(1, sizeof(*uart));
	if (!uart)
		return error_set(err, -ENOMEM, "serial at port 0x%04x: out of memory", base);
	pthread_mutex_init(&uart->lock, NULL);
	uart->cb = *cb;
	uart->ctx = ctx;
	uart->rx = (struct byte_ring){ .buf = uart->rx_buf, .cap = SERIAL_FIFO_SIZE };
	uart->input = (struct byte_ring){ .buf = uart->input_buf, .cap = SERIAL_INPUT_QUEUE_SIZE };
	reset_locked(uart);
	r = iobus_register(bus, base, SERIAL_NR_PORTS, &serial_ops, uart, err);
	if (r < 0) {
		serial_free(uart);
		return r;
	}
	*ret = uart;
	return 0;
}
