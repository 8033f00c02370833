/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the 16550A UART, driven through the I/O bus as a guest
 * would: power-on and reset values, every register and its side effects,
 * DLAB, FIFO control and trigger levels, interrupt priority and the exact
 * IRQ line sequence, loopback, overrun, the console input queue, wide and
 * hostile accesses, and concurrent vCPU and console threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sched.h>

#include "iobus-test.h"
#include "vmmd/devices/iobus.h"
#include "vmmd/devices/serial.h"

#define COM1 SERIAL_COM1_BASE

/* Register bits the tests name (PC16550D Table II). */
#define IER_ERBFI 0x01
#define IER_ETBEI 0x02
#define IER_ELSI 0x04
#define IER_EDSSI 0x08
#define IIR_NONE 0x01
#define IIR_RLS 0x06
#define IIR_RDA 0x04
#define IIR_CTI 0x0c
#define IIR_THRE 0x02
#define IIR_MS 0x00
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define LCR_DLAB 0x80
#define LCR_8N1 0x03
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_IDLE 0x60 /* THRE | TEMT */
#define MSR_CONSOLE 0xb0 /* DCD | DSR | CTS */

#define MAX_IRQ_EVENTS 4096
#define MAX_OUTPUT (64 * 1024)

struct fixture {
	struct bus_fixture io;
	struct serial *uart;
	int irq_events[MAX_IRQ_EVENTS];
	unsigned int nr_irq_events;
	int irq_level;
	bool irq_repeated; /* set_irq called twice with one level */
	uint8_t out[MAX_OUTPUT];
	size_t nr_out;
	unsigned int input_room_calls;
};

/* ------------------------------------------------------------ callbacks */

static void cb_set_irq(void *ctx, int level)
{
	struct fixture *f = ctx;

	if (level == f->irq_level)
		f->irq_repeated = true;
	f->irq_level = level;
	if (f->nr_irq_events < MAX_IRQ_EVENTS)
		f->irq_events[f->nr_irq_events] = level;
	f->nr_irq_events++;
}

static void cb_output(void *ctx, const uint8_t *buf, size_t len)
{
	struct fixture *f = ctx;

	for (size_t i = 0; i < len; i++)
		if (f->nr_out < MAX_OUTPUT)
			f->out[f->nr_out++] = buf[i];
}

static void cb_input_room(void *ctx)
{
	((struct fixture *)ctx)->input_room_calls++;
}

static const struct serial_callbacks callbacks = {
	.set_irq = cb_set_irq,
	.output = cb_output,
	.input_room = cb_input_room,
};

static int setup(void **state)
{
	struct fixture *f = bus_fixture_new(sizeof(*f));
	struct error err = { 0 };

	if (!f || serial_create(f->io.bus, COM1, &callbacks, f, &f->uart, &err) < 0)
		return -1;
	*state = f;
	return 0;
}

/* ------------------------------------------------------------ helpers */

static uint32_t in(struct fixture *f, unsigned int reg, unsigned int size)
{
	return bus_in(f->io.bus, (uint16_t)(COM1 + reg), size);
}

static void out(struct fixture *f, unsigned int reg, uint32_t value, unsigned int size)
{
	bus_out(f->io.bus, (uint16_t)(COM1 + reg), value, size);
}

static uint8_t rd(struct fixture *f, unsigned int reg)
{
	return (uint8_t)in(f, reg, 1);
}

static void wr(struct fixture *f, unsigned int reg, uint8_t value)
{
	out(f, reg, value, 1);
}

static size_t receive(struct fixture *f, const void *buf, size_t len)
{
	size_t accepted = 0xdead;

	assert_int_equal(serial_receive(f->uart, buf, len, &accepted), 0);
	return accepted;
}

static void receive_all(struct fixture *f, const char *s)
{
	assert_int_equal(receive(f, s, strlen(s)), strlen(s));
}

/* Forgets the IRQ calls so far; the line level stays what it is. */
static void irq_clear(struct fixture *f)
{
	f->nr_irq_events = 0;
}

static void assert_irq_events(const struct fixture *f, const int *expected, unsigned int n)
{
	assert_int_equal(f->nr_irq_events, n);
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(f->irq_events[i], expected[i]);
	assert_false(f->irq_repeated);
}

#define ASSERT_IRQ_EVENTS(f, ...)                                           \
	do {                                                                \
		const int expected_[] = { __VA_ARGS__ };                    \
		assert_irq_events(f, expected_, ARRAY_SIZE(expected_));     \
	} while (0)

static void assert_no_irq_events(const struct fixture *f)
{
	assert_int_equal(f->nr_irq_events, 0);
}

/* Low nibble of IIR: the pending interrupt. */
static uint8_t iir_id(struct fixture *f)
{
	return rd(f, SERIAL_IIR_FCR) & 0x0f;
}

/* ------------------------------------------------------------ reset values */

static void assert_power_on_registers(struct fixture *f)
{
	assert_int_equal(rd(f, SERIAL_IER_DLM), 0x00);
	assert_int_equal(rd(f, SERIAL_IIR_FCR), 0x01);
	assert_int_equal(rd(f, SERIAL_LCR), 0x00);
	assert_int_equal(rd(f, SERIAL_MCR), 0x00);
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
	assert_int_equal(rd(f, SERIAL_MSR), MSR_CONSOLE);
	assert_int_equal(rd(f, SERIAL_SCR), 0x00);
	wr(f, SERIAL_LCR, LCR_DLAB);
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 0x00);
	assert_int_equal(rd(f, SERIAL_IER_DLM), 0x00);
	wr(f, SERIAL_LCR, 0);
}

static void test_power_on_values(void **state)
{
	struct fixture *f = *state;

	assert_power_on_registers(f);
	/* An empty receiver reads 0 and stays empty. */
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 0x00);
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
	assert_int_equal(f->nr_irq_events, 0);
	assert_int_equal(f->nr_out, 0);
}

static void program_everything(struct fixture *f)
{
	wr(f, SERIAL_LCR, LCR_DLAB);
	wr(f, SERIAL_RBR_THR_DLL, 0x0c);
	wr(f, SERIAL_IER_DLM, 0x01);
	wr(f, SERIAL_LCR, 0x1b);
	wr(f, SERIAL_IIR_FCR, 0xc7);
	wr(f, SERIAL_IER_DLM, 0x0f);
	wr(f, SERIAL_MCR, MCR_LOOP | MCR_OUT1 | MCR_DTR);
	wr(f, SERIAL_SCR, 0x5a);
	wr(f, SERIAL_RBR_THR_DLL, 'x'); /* looped back */
	assert_int_equal(f->irq_level, 1);
}

static void test_reset_restores_power_on_values(void **state)
{
	struct fixture *f = *state;

	program_everything(f);
	irq_clear(f);
	serial_reset(f->uart);
	ASSERT_IRQ_EVENTS(f, 0);
	assert_power_on_registers(f);

	/* The bus reset reaches the UART too. */
	program_everything(f);
	irq_clear(f);
	iobus_reset(f->io.bus);
	ASSERT_IRQ_EVENTS(f, 0);
	assert_power_on_registers(f);
	assert_int_equal(f->nr_out, 0);
}

static void test_reset_keeps_queued_console_input(void **state)
{
	struct fixture *f = *state;
	char got[21] = { 0 };

	wr(f, SERIAL_IIR_FCR, FCR_ENABLE);
	receive_all(f, "abcdefghijklmnopqrst");
	/* The FIFO (16 bytes) is emptied; the 4 still on the wire arrive. */
	serial_reset(f->uart);
	for (unsigned int i = 0; i < 4; i++) {
		assert_true(rd(f, SERIAL_LSR) & LSR_DR);
		got[i] = (char)rd(f, SERIAL_RBR_THR_DLL);
	}
	assert_string_equal(got, "qrst");
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
}

/* ------------------------------------------------------------ plain registers */

static void test_scratch_register(void **state)
{
	struct fixture *f = *state;

	for (unsigned int v = 0; v < 256; v++) {
		wr(f, SERIAL_SCR, (uint8_t)v);
		assert_int_equal(rd(f, SERIAL_SCR), v);
	}
	/* DLAB does not hide it. */
	wr(f, SERIAL_LCR, LCR_DLAB);
	wr(f, SERIAL_SCR, 0xa5);
	assert_int_equal(rd(f, SERIAL_SCR), 0xa5);
	assert_no_irq_events(f);
}

static void test_lcr_all_bits_read_back(void **state)
{
	struct fixture *f = *state;

	for (unsigned int v = 0; v < 256; v++) {
		wr(f, SERIAL_LCR, (uint8_t)v);
		assert_int_equal(rd(f, SERIAL_LCR), v);
	}
}

static void test_reserved_bits_read_zero(void **state)
{
	struct fixture *f = *state;

	/* IER bits 4-7 and MCR bits 5-7 are always 0 (PC16550D 8.7, 8.8). */
	wr(f, SERIAL_IER_DLM, 0xf0);
	assert_int_equal(rd(f, SERIAL_IER_DLM), 0x00);
	wr(f, SERIAL_IER_DLM, 0xff);
	assert_int_equal(rd(f, SERIAL_IER_DLM), 0x0f);
	wr(f, SERIAL_IER_DLM, 0);
	wr(f, SERIAL_MCR, 0xe0);
	assert_int_equal(rd(f, SERIAL_MCR), 0x00);
	wr(f, SERIAL_MCR, 0xef);
	assert_int_equal(rd(f, SERIAL_MCR), 0x0f);
	/* IIR bits 4-5 stay 0 even when FCR bit 5 (a 16750's 64-byte FIFO) is written. */
	wr(f, SERIAL_IIR_FCR, 0x21);
	assert_int_equal(rd(f, SERIAL_IIR_FCR) >> 5, 0x6);
}

static void test_writes_to_status_registers_ignored(void **state)
{
	struct fixture *f = *state;

	wr(f, SERIAL_LSR, 0x00);
	wr(f, SERIAL_LSR, 0xff);
	wr(f, SERIAL_MSR, 0x00);
	wr(f, SERIAL_MSR, 0x0f);
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
	assert_int_equal(rd(f, SERIAL_MSR), MSR_CONSOLE);
	assert_no_irq_events(f);
	assert_int_equal(f->nr_out, 0);
}

static void test_dlab_switching(void **state)
{
	struct fixture *f = *state;

	wr(f, SERIAL_IER_DLM, IER_ERBFI);
	wr(f, SERIAL_LCR, LCR_DLAB | LCR_8N1);
	/* Offsets 0 and 1 are the divisor latch now. */
	wr(f, SERIAL_RBR_THR_DLL, 0x01);
	wr(f, SERIAL_IER_DLM, 0xff);
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 0x01);
	assert_int_equal(rd(f, SERIAL_IER_DLM), 0xff);
	assert_int_equal(f->nr_out, 0);
	/* Other registers do not move. */
	assert_int_equal(rd(f, SERIAL_LCR), LCR_DLAB | LCR_8N1);
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
	/* Input waits in RBR, unseen behind the latch. */
	receive_all(f, "Z");
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 0x01);
	assert_true(rd(f, SERIAL_LSR) & LSR_DR);

	wr(f, SERIAL_LCR, LCR_8N1);
	assert_int_equal(rd(f, SERIAL_IER_DLM), IER_ERBFI);
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'Z');
	wr(f, SERIAL_RBR_THR_DLL, 'k');
	assert_int_equal(f->nr_out, 1);
	assert_int_equal(f->out[0], 'k');
	/* The latch kept its value. */
	wr(f, SERIAL_LCR, LCR_DLAB);
	assert_int_equal(in(f, SERIAL_RBR_THR_DLL, 2), 0xff01);
}

/* ------------------------------------------------------------ transmit */

static void test_transmit_goes_out_immediately(void **state)
{
	struct fixture *f = *state;
	const char *msg = "hello, world\r\n";

	for (const char *p = msg; *p; p++) {
		wr(f, SERIAL_RBR_THR_DLL, (uint8_t)*p);
		/* THR and the shift register are empty again at once. */
		assert_int_equal(rd(f, SERIAL_LSR), 0x60);
	}
	assert_int_equal(f->nr_out, strlen(msg));
	assert_memory_equal(f->out, msg, strlen(msg));
	/* No interrupt is enabled, so the line never moved. */
	assert_no_irq_events(f);
	/* All 256 byte values pass through unchanged, whatever LCR says. */
	f->nr_out = 0;
	for (unsigned int v = 0; v < 256; v++)
		wr(f, SERIAL_RBR_THR_DLL, (uint8_t)v);
	for (unsigned int v = 0; v < 256; v++)
		assert_int_equal(f->out[v], v);
}

static void test_thre_interrupt_sequence(void **state)
{
	struct fixture *f = *state;

	/* Enabling ETBEI while THR is empty interrupts at once. */
	wr(f, SERIAL_IER_DLM, IER_ETBEI);
	ASSERT_IRQ_EVENTS(f, 1);
	/* Reading IIR reports THRE and resets it. */
	irq_clear(f);
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_THRE);
	ASSERT_IRQ_EVENTS(f, 0);
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_NONE);

	/* Line low: a THR write raises it once the byte has gone. */
	irq_clear(f);
	wr(f, SERIAL_RBR_THR_DLL, 'a');
	ASSERT_IRQ_EVENTS(f, 1);
	/* Line high: the write drops it and the empty THR raises it again, an edge. */
	irq_clear(f);
	wr(f, SERIAL_RBR_THR_DLL, 'b');
	ASSERT_IRQ_EVENTS(f, 0, 1);
	irq_clear(f);
	wr(f, SERIAL_RBR_THR_DLL, 'c');
	ASSERT_IRQ_EVENTS(f, 0, 1);

	/* Disabling ETBEI lowers the line; writes then leave it alone. */
	irq_clear(f);
	wr(f, SERIAL_IER_DLM, 0);
	ASSERT_IRQ_EVENTS(f, 0);
	irq_clear(f);
	wr(f, SERIAL_RBR_THR_DLL, 'd');
	assert_no_irq_events(f);
	assert_int_equal(f->nr_out, 4);
	assert_memory_equal(f->out, "abcd", 4);
}

static void test_thre_reraised_when_etbei_toggled(void **state)
{
	struct fixture *f = *state;

	/* Linux's serial8250 startup probe for UART_BUG_THRE. */
	wr(f, SERIAL_IER_DLM, IER_ETBEI);
	assert_int_equal(iir_id(f), IIR_THRE);
	wr(f, SERIAL_IER_DLM, 0);
	wr(f, SERIAL_IER_DLM, IER_ETBEI);
	assert_int_equal(iir_id(f), IIR_THRE);
	assert_int_equal(iir_id(f), IIR_NONE);
	/* Rewriting IER with ETBEI still set is not an enable. */
	wr(f, SERIAL_IER_DLM, IER_ETBEI);
	assert_int_equal(iir_id(f), IIR_NONE);
	ASSERT_IRQ_EVENTS(f, 1, 0, 1, 0);
}

static void test_thre_immediate_after_fcr0_change(void **state)
{
	struct fixture *f = *state;

	wr(f, SERIAL_IER_DLM, IER_ETBEI);
	assert_int_equal(iir_id(f), IIR_THRE);
	/* PC16550D 8.11: the first THRE interrupt after changing FCR0 is immediate. */
	wr(f, SERIAL_IIR_FCR, FCR_ENABLE);
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_FIFO | IIR_THRE);
	wr(f, SERIAL_IIR_FCR, FCR_ENABLE | FCR_CLEAR_TX); /* no change of FCR0 */
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_FIFO | IIR_NONE);
	wr(f, SERIAL_IIR_FCR, 0);
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_THRE);
}

/* ------------------------------------------------------------ FIFO control */

static void test_fifo_enable_shows_in_iir(void **state)
{
	struct fixture *f = *state;

	wr(f, SERIAL_IIR_FCR, FCR_ENABLE);
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_FIFO | IIR_NONE);
	wr(f, SERIAL_IIR_FCR, FCR_ENABLE | 0xc0);
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_FIFO | IIR_NONE);
	wr(f, SERIAL_IIR_FCR, 0);
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_NONE);
}

static void test_fifo_trigger_levels(void **state)
{
	struct fixture *f = *state;
	const struct { uint8_t fcr; unsigned int level; } t[] = {
		{ 0x01, 1 }, { 0x41, 4 }, { 0x81, 8 }, { 0xc1, 14 },
	};
	uint8_t buf[SERIAL_FIFO_SIZE];

	for (unsigned int i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)('A' + i);
	wr(f, SERIAL_IER_DLM, IER_ERBFI);
	for (unsigned int i = 0; i < ARRAY_SIZE(t); i++) {
		wr(f, SERIAL_IIR_FCR, t[i].fcr | FCR_CLEAR_RX);
		irq_clear(f);
		/* Below the trigger level only the character timeout reports data. */
		for (unsigned int n = 1; n < t[i].level; n++) {
			assert_int_equal(receive(f, &buf[n - 1], 1), 1);
			assert_int_equal(iir_id(f), IIR_CTI);
		}
		assert_int_equal(receive(f, &buf[t[i].level - 1], 1), 1);
		assert_int_equal(iir_id(f), IIR_RDA);
		/* One read drops below the trigger level again. */
		assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'A');
		assert_int_equal(iir_id(f), t[i].level > 1 ? IIR_CTI : IIR_NONE);
		for (unsigned int n = 1; n < t[i].level; n++)
			assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'A' + n);
		assert_int_equal(iir_id(f), IIR_NONE);
		assert_int_equal(rd(f, SERIAL_LSR), 0x60);
		/* The line went up once and came down once. */
		ASSERT_IRQ_EVENTS(f, 1, 0);
	}
}

static void test_fifo_holds_sixteen_bytes(void **state)
{
	struct fixture *f = *state;
	const char *in20 = "0123456789abcdefghij";

	wr(f, SERIAL_IIR_FCR, FCR_ENABLE);
	receive_all(f, in20);
	for (size_t i = 0; i < strlen(in20); i++) {
		assert_int_equal(rd(f, SERIAL_LSR), 0x61);
		assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), in20[i]);
	}
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
	/* An empty FIFO keeps showing the last byte, without side effects. */
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'j');
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
}

static void test_fifo_clear(void **state)
{
	struct fixture *f = *state;

	wr(f, SERIAL_IIR_FCR, FCR_ENABLE);
	receive_all(f, "0123456789ABCDEF");
	wr(f, SERIAL_IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX);
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
	/* Bytes still on the wire flow in after the clear. */
	receive_all(f, "0123456789ABCDEFwxyz");
	wr(f, SERIAL_IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX);
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'w');
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'x');
	/* Clearing the transmit FIFO leaves the receiver alone. */
	wr(f, SERIAL_IIR_FCR, FCR_ENABLE | FCR_CLEAR_TX);
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'y');
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'z');
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
}

static void test_fcr_bits_need_fifo_enable(void **state)
{
	struct fixture *f = *state;

	/* In 16450 mode, a clear without FCR0 is not programmed (8.5). */
	receive_all(f, "Q");
	wr(f, SERIAL_IIR_FCR, FCR_CLEAR_RX | 0xc0);
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_NONE);
	assert_int_equal(rd(f, SERIAL_LSR), 0x61);
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'Q');

	/* Switching modes empties the FIFO. */
	wr(f, SERIAL_IIR_FCR, FCR_ENABLE);
	receive_all(f, "abc");
	wr(f, SERIAL_IIR_FCR, 0);
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
	receive_all(f, "d");
	wr(f, SERIAL_IIR_FCR, FCR_ENABLE);
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
}

static void test_16450_mode_holds_one_byte(void **state)
{
	struct fixture *f = *state;

	wr(f, SERIAL_IER_DLM, IER_ERBFI);
	receive_all(f, "12345");
	ASSERT_IRQ_EVENTS(f, 1);
	for (char c = '1'; c <= '5'; c++) {
		/* No timeout indication outside FIFO mode. */
		assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_RDA);
		assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), c);
	}
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_NONE);
	ASSERT_IRQ_EVENTS(f, 1, 0);
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
}

static void test_character_timeout_cleared_by_reading(void **state)
{
	struct fixture *f = *state;

	wr(f, SERIAL_IIR_FCR, 0x41); /* trigger level 4 */
	wr(f, SERIAL_IER_DLM, IER_ERBFI);
	receive_all(f, "xy");
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_FIFO | IIR_CTI);
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'x');
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'y');
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_FIFO | IIR_NONE);
	ASSERT_IRQ_EVENTS(f, 1, 0);
	/* ERBFI off: data is polled through LSR only. */
	wr(f, SERIAL_IER_DLM, 0);
	receive_all(f, "z");
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_FIFO | IIR_NONE);
	assert_int_equal(rd(f, SERIAL_LSR), 0x61);
	ASSERT_IRQ_EVENTS(f, 1, 0);
}

/* ------------------------------------------------------------ priorities */

static void test_interrupt_priority_order(void **state)
{
	struct fixture *f = *state;

	/*
	 * All four sources at once: loopback in 16450 mode, two bytes sent
	 * (the second overruns RBR), THR empty, and MSR deltas from the lines
	 * dropping as loopback disconnects the console.
	 */
	wr(f, SERIAL_MCR, MCR_LOOP);
	wr(f, SERIAL_RBR_THR_DLL, 'a');
	wr(f, SERIAL_RBR_THR_DLL, 'b');
	assert_no_irq_events(f);
	wr(f, SERIAL_IER_DLM, IER_ERBFI | IER_ETBEI | IER_ELSI | IER_EDSSI);
	ASSERT_IRQ_EVENTS(f, 1);

	assert_int_equal(iir_id(f), IIR_RLS);
	assert_int_equal(iir_id(f), IIR_RLS); /* reading IIR does not reset RLS */
	assert_int_equal(rd(f, SERIAL_LSR), LSR_IDLE | LSR_OE | LSR_DR);
	assert_int_equal(iir_id(f), IIR_RDA);
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'b'); /* 16450 overrun keeps the newest */
	assert_int_equal(iir_id(f), IIR_THRE); /* this read resets THRE */
	assert_int_equal(iir_id(f), IIR_MS);
	assert_int_equal(rd(f, SERIAL_MSR), 0x0b); /* DCTS, DDSR, DDCD; all lines off */
	assert_int_equal(iir_id(f), IIR_NONE);
	/* The line stayed up through the whole service routine. */
	ASSERT_IRQ_EVENTS(f, 1, 0);
}

static void test_higher_priority_masks_lower(void **state)
{
	struct fixture *f = *state;

	wr(f, SERIAL_IER_DLM, IER_ERBFI | IER_ETBEI);
	receive_all(f, "r");
	/* RDA hides THRE, and reading IIR then does not reset THRE. */
	assert_int_equal(iir_id(f), IIR_RDA);
	assert_int_equal(iir_id(f), IIR_RDA);
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'r');
	assert_int_equal(iir_id(f), IIR_THRE);
	assert_int_equal(iir_id(f), IIR_NONE);
	/* A THR write while data waits keeps the line up: no extra edge. */
	receive_all(f, "s");
	irq_clear(f);
	wr(f, SERIAL_RBR_THR_DLL, '!');
	assert_no_irq_events(f);
	/* Disabled sources are not reported even when their condition holds. */
	wr(f, SERIAL_IER_DLM, 0);
	assert_int_equal(iir_id(f), IIR_NONE);
	assert_int_equal(rd(f, SERIAL_LSR), 0x61);
}

/* ------------------------------------------------------------ loopback and modem */

static void test_loopback_data_path(void **state)
{
	struct fixture *f = *state;

	wr(f, SERIAL_IIR_FCR, FCR_ENABLE);
	wr(f, SERIAL_MCR, MCR_LOOP);
	/* Console input waits on the wire while the receiver listens to itself. */
	receive_all(f, "ext");
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
	for (const char *p = "loop"; *p; p++)
		wr(f, SERIAL_RBR_THR_DLL, (uint8_t)*p);
	assert_int_equal(f->nr_out, 0);
	for (const char *p = "loop"; *p; p++)
		assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), *p);
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);

	/* Leaving loopback reconnects SIN and SOUT. */
	wr(f, SERIAL_MCR, 0);
	for (const char *p = "ext"; *p; p++)
		assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), *p);
	wr(f, SERIAL_RBR_THR_DLL, '>');
	assert_int_equal(f->nr_out, 1);
	assert_int_equal(f->out[0], '>');
}

static void test_loopback_modem_lines(void **state)
{
	struct fixture *f = *state;

	/* Linux autoconfig: LOOP | RTS | OUT2 must read back CTS | DCD = 0x90. */
	wr(f, SERIAL_MCR, MCR_LOOP | MCR_RTS | MCR_OUT2);
	assert_int_equal(rd(f, SERIAL_MSR) & 0xf0, 0x90);
	wr(f, SERIAL_MCR, MCR_LOOP | MCR_DTR | MCR_OUT1);
	/* CTS and DCD fell, DSR and RI rose. */
	assert_int_equal(rd(f, SERIAL_MSR), 0x60 | 0x0b);
	assert_int_equal(rd(f, SERIAL_MSR), 0x60);
	/* RI falling is the trailing edge: TERI. */
	wr(f, SERIAL_MCR, MCR_LOOP | MCR_DTR);
	assert_int_equal(rd(f, SERIAL_MSR), 0x20 | 0x04);
	/* RI rising is not. */
	wr(f, SERIAL_MCR, MCR_LOOP | MCR_DTR | MCR_OUT1);
	assert_int_equal(rd(f, SERIAL_MSR), 0x60);
	/* Back to the console's lines. */
	wr(f, SERIAL_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
	/* CTS and DCD rose, RI fell (TERI), DSR stayed. */
	assert_int_equal(rd(f, SERIAL_MSR), MSR_CONSOLE | 0x0d);
	assert_int_equal(rd(f, SERIAL_MSR), MSR_CONSOLE);
	/* Outside loopback MCR does not touch MSR. */
	wr(f, SERIAL_MCR, 0);
	assert_int_equal(rd(f, SERIAL_MSR), MSR_CONSOLE);
}

static void test_modem_status_interrupt(void **state)
{
	struct fixture *f = *state;

	wr(f, SERIAL_IER_DLM, IER_EDSSI);
	/* Looping DTR, RTS, OUT2 back gives the console's lines again: no change. */
	wr(f, SERIAL_MCR, MCR_LOOP | MCR_DTR | MCR_RTS | MCR_OUT2);
	assert_int_equal(iir_id(f), IIR_NONE);
	assert_int_equal(rd(f, SERIAL_MSR), MSR_CONSOLE);
	assert_no_irq_events(f);
	/* Dropping RTS drops CTS: DCTS, a modem status interrupt until MSR is read. */
	wr(f, SERIAL_MCR, MCR_LOOP | MCR_DTR | MCR_OUT2);
	ASSERT_IRQ_EVENTS(f, 1);
	assert_int_equal(iir_id(f), IIR_MS);
	assert_int_equal(iir_id(f), IIR_MS);
	assert_int_equal(rd(f, SERIAL_MSR), 0xa0 | 0x01);
	assert_int_equal(iir_id(f), IIR_NONE);
	ASSERT_IRQ_EVENTS(f, 1, 0);
}

/* ------------------------------------------------------------ overrun */

static void test_overrun_in_fifo_mode(void **state)
{
	struct fixture *f = *state;
	char expect[SERIAL_FIFO_SIZE];

	wr(f, SERIAL_IIR_FCR, FCR_ENABLE);
	wr(f, SERIAL_MCR, MCR_LOOP);
	wr(f, SERIAL_IER_DLM, IER_ELSI);
	for (unsigned int i = 0; i < SERIAL_FIFO_SIZE; i++) {
		expect[i] = (char)('a' + i);
		wr(f, SERIAL_RBR_THR_DLL, (uint8_t)expect[i]);
	}
	assert_int_equal(rd(f, SERIAL_LSR), 0x61);
	assert_no_irq_events(f);
	/* The 17th character overruns: lost, the FIFO kept, OE and RLS raised. */
	wr(f, SERIAL_RBR_THR_DLL, '!');
	ASSERT_IRQ_EVENTS(f, 1);
	assert_int_equal(rd(f, SERIAL_IIR_FCR), IIR_FIFO | IIR_RLS);
	assert_int_equal(rd(f, SERIAL_LSR), 0x63);
	ASSERT_IRQ_EVENTS(f, 1, 0);
	assert_int_equal(rd(f, SERIAL_LSR), 0x61); /* OE cleared by the read */
	for (unsigned int i = 0; i < SERIAL_FIFO_SIZE; i++)
		assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), expect[i]);
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
}

static void test_overrun_in_16450_mode(void **state)
{
	struct fixture *f = *state;

	wr(f, SERIAL_MCR, MCR_LOOP);
	wr(f, SERIAL_RBR_THR_DLL, '1');
	assert_int_equal(rd(f, SERIAL_LSR), 0x61);
	wr(f, SERIAL_RBR_THR_DLL, '2');
	wr(f, SERIAL_RBR_THR_DLL, '3');
	assert_int_equal(rd(f, SERIAL_LSR), 0x63);
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), '3');
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
	/* Without ELSI, overrun shows only in LSR. */
	assert_no_irq_events(f);
}

static void test_console_input_never_overruns(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[300];

	for (unsigned int i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7);
	wr(f, SERIAL_IER_DLM, IER_ELSI);
	/* 16450 mode: one byte of room, yet nothing is lost or flagged. */
	assert_int_equal(receive(f, buf, sizeof(buf)), sizeof(buf));
	for (unsigned int i = 0; i < sizeof(buf); i++) {
		assert_int_equal(rd(f, SERIAL_LSR), 0x61);
		assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), buf[i]);
	}
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
	assert_no_irq_events(f);
}

/* ------------------------------------------------------------ input queue */

static void test_receive_queue_limit(void **state)
{
	struct fixture *f = *state;
	const size_t total = SERIAL_INPUT_QUEUE_SIZE + 100;
	uint8_t *src = malloc(total), *got = malloc(total);
	size_t sent, n = 0;

	assert_non_null(src);
	assert_non_null(got);
	for (size_t i = 0; i < total; i++)
		src[i] = (uint8_t)(i % 251);

	/* An oversized offer is taken up to the queue's room, from its start. */
	sent = receive(f, src, total);
	assert_int_equal(sent, SERIAL_INPUT_QUEUE_SIZE);
	/* One byte moved on into RBR, so exactly one more fits. */
	assert_int_equal(receive(f, src + sent, total - sent), 1);
	sent++;
	assert_int_equal(receive(f, src + sent, total - sent), 0);
	assert_int_equal(f->input_room_calls, 0);

	/* The guest's first read makes room: one notification, however many reads. */
	got[n++] = rd(f, SERIAL_RBR_THR_DLL);
	assert_int_equal(f->input_room_calls, 1);
	while (rd(f, SERIAL_LSR) & LSR_DR)
		got[n++] = rd(f, SERIAL_RBR_THR_DLL);
	assert_int_equal(f->input_room_calls, 1);
	assert_int_equal(n, sent);

	assert_int_equal(receive(f, src + sent, total - sent), total - sent);
	while (rd(f, SERIAL_LSR) & LSR_DR)
		got[n++] = rd(f, SERIAL_RBR_THR_DLL);
	/* Everything accepted arrived once, in order. */
	assert_int_equal(n, total);
	assert_memory_equal(got, src, total);
	assert_int_equal(f->input_room_calls, 1);
	free(src);
	free(got);
}

static void test_input_room_after_fifo_clear_and_reset(void **state)
{
	struct fixture *f = *state;
	static uint8_t big[SERIAL_INPUT_QUEUE_SIZE + 100];

	memset(big, 'b', sizeof(big));
	wr(f, SERIAL_IIR_FCR, FCR_ENABLE);
	assert_int_equal(receive(f, big, sizeof(big)), SERIAL_INPUT_QUEUE_SIZE);
	/* 16 bytes moved on into the FIFO, so 16 more fit, then none. */
	assert_int_equal(receive(f, big, 100), SERIAL_FIFO_SIZE);
	assert_int_equal(f->input_room_calls, 0);
	/* Clearing the FIFO pulls queued bytes in: room, without a read. */
	wr(f, SERIAL_IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX);
	assert_int_equal(f->input_room_calls, 1);
	assert_int_equal(receive(f, big, 100), SERIAL_FIFO_SIZE);
	/* So does a reset (16450 mode afterwards: one byte moves into RBR). */
	serial_reset(f->uart);
	assert_int_equal(f->input_room_calls, 2);
	assert_int_equal(receive(f, big, 100), 1);
	/* And leaving loopback. */
	wr(f, SERIAL_MCR, MCR_LOOP);
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 'b');
	assert_int_equal(f->input_room_calls, 2);
	wr(f, SERIAL_MCR, 0);
	assert_int_equal(f->input_room_calls, 3);
}

static void test_receive_bad_arguments(void **state)
{
	struct fixture *f = *state;
	size_t accepted = 77;

	assert_int_equal(serial_receive(f->uart, NULL, 5, &accepted), -EINVAL);
	assert_int_equal(accepted, 77);
	assert_int_equal(serial_receive(f->uart, NULL, 0, &accepted), 0);
	assert_int_equal(accepted, 0);
	assert_int_equal(receive(f, "x", 0), 0);
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
}

static void test_receive_without_input_room_callback(void **state)
{
	static const struct serial_callbacks no_room = { .set_irq = cb_set_irq, .output = cb_output };
	struct fixture *f = *state;
	struct serial *com2;
	struct error err = { 0 };
	uint8_t big[SERIAL_INPUT_QUEUE_SIZE + 10] = { 0 };
	size_t accepted;

	assert_int_equal(serial_create(f->io.bus, 0x2f8, &no_room, f, &com2, &err), 0);
	assert_int_equal(serial_receive(com2, big, sizeof(big), &accepted), 0);
	assert_int_equal(accepted, SERIAL_INPUT_QUEUE_SIZE);
	assert_int_equal(serial_read(com2, SERIAL_RBR_THR_DLL), 0);
	assert_int_equal(f->input_room_calls, 0);
}

/* ------------------------------------------------------------ access shapes */

static void test_wide_accesses_split_into_registers(void **state)
{
	struct fixture *f = *state;
	char rep[] = "rep";

	/* One 32-bit write at the base: THR 'A', IER 0x0f, FCR 0xc1, LCR 0x83. */
	out(f, SERIAL_RBR_THR_DLL, 0x83c10f41, 4);
	assert_int_equal(f->nr_out, 1);
	assert_int_equal(f->out[0], 'A');
	assert_int_equal(rd(f, SERIAL_LCR), 0x83);
	assert_int_equal(rd(f, SERIAL_IIR_FCR) & 0xc0, IIR_FIFO);
	/* DLAB is set now: a 16-bit access is the whole divisor. */
	out(f, SERIAL_RBR_THR_DLL, 0x0180, 2);
	assert_int_equal(in(f, SERIAL_RBR_THR_DLL, 2), 0x0180);
	assert_int_equal(rd(f, SERIAL_RBR_THR_DLL), 0x80);
	wr(f, SERIAL_LCR, LCR_8N1);
	assert_int_equal(rd(f, SERIAL_IER_DLM), 0x0f);

	/* MCR, LSR, MSR, SCR in one read. */
	wr(f, SERIAL_SCR, 0x3c);
	wr(f, SERIAL_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
	assert_int_equal(in(f, SERIAL_MCR, 4), 0x3cb0600b);
	/* A read at base + 6 runs past the UART into unclaimed ports. */
	assert_int_equal(in(f, SERIAL_MSR, 4), 0xffff3cb0);
	assert_int_equal(log_capture_count(f->io.log, "port 0x0400"), 1);
	assert_int_equal(log_capture_count(f->io.log, "port 0x0401"), 1);

	/* A 16-bit read at the base pops RBR and then reads IER, in port order. */
	receive_all(f, "pq");
	assert_int_equal(in(f, SERIAL_RBR_THR_DLL, 2), 0x0f00 | 'p');
	assert_int_equal(in(f, SERIAL_RBR_THR_DLL, 2), 0x0f00 | 'q');
	/* String output: OUTSB with a count. */
	assert_int_equal(iobus_io(f->io.bus, true, COM1, rep, 1, 3), 0);
	assert_int_equal(f->nr_out, 4);
	assert_memory_equal(f->out, "Arep", 4);
}

static void test_offsets_past_last_register(void **state)
{
	struct fixture *f = *state;

	for (unsigned int off = SERIAL_NR_PORTS; off < 256; off++) {
		assert_int_equal(serial_read(f->uart, (uint8_t)off), 0xff);
		serial_write(f->uart, (uint8_t)off, 0x55);
	}
	assert_power_on_registers(f);
	assert_int_equal(f->nr_out, 0);
	assert_no_irq_events(f);
}

static void test_create_refuses_bad_setups(void **state)
{
	static const struct serial_callbacks no_irq = { .output = cb_output };
	static const struct serial_callbacks no_output = { .set_irq = cb_set_irq };
	struct fixture *f = *state;
	struct serial *uart = (struct serial *)0x1;
	struct error err = { 0 };

	assert_int_equal(serial_create(f->io.bus, 0x2f8, NULL, f, &uart, &err), -EINVAL);
	assert_int_equal(serial_create(f->io.bus, 0x2f8, &no_irq, f, &uart, &err), -EINVAL);
	assert_int_equal(serial_create(f->io.bus, 0x2f8, &no_output, f, &uart, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "callbacks are required"));
	/* COM1 is taken; the refused UART is freed, not leaked. */
	assert_int_equal(serial_create(f->io.bus, COM1 + 4, &callbacks, f, &uart, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "'serial-16550a' at 0x03f8-0x03ff"));
	assert_ptr_equal(uart, (struct serial *)0x1);
}

/* A guest writing garbage everywhere: invariants hold, the line follows IIR. */
static void test_hostile_register_fuzz(void **state)
{
	struct fixture *f = *state;
	uint32_t seed = 0x12345678;

	for (unsigned int i = 0; i < 200000; i++) {
		unsigned int reg, size, op;
		uint32_t value;

		seed = seed * 1664525u + 1013904223u;
		reg = (seed >> 8) % SERIAL_NR_PORTS;
		size = 1u << ((seed >> 12) % 3);
		op = (seed >> 16) % 4;
		value = seed * 2654435761u;
		if (op == 0) {
			out(f, reg, value, size);
		} else if (op == 1) {
			int level = f->irq_level;
			uint8_t iir = rd(f, SERIAL_IIR_FCR);

			assert_int_equal(!(iir & IIR_NONE), level);
			assert_int_equal(iir & 0x30, 0);
		} else if (op == 2) {
			uint8_t b = (uint8_t)value;

			receive(f, &b, 1);
		} else {
			in(f, reg, size);
		}
		if (!(rd(f, SERIAL_LCR) & LCR_DLAB))
			assert_int_equal(rd(f, SERIAL_IER_DLM) & 0xf0, 0);
		assert_int_equal(rd(f, SERIAL_MCR) & 0xe0, 0);
	}
	assert_false(f->irq_repeated);
	assert_true(f->nr_irq_events > 0);
}

/* ------------------------------------------------------------ threads */

#define TX_THREADS 3
#define TX_BYTES 20000
#define RX_BYTES 100000

struct thread_arg {
	struct fixture *f;
	unsigned int id;
	bool *stop; /* atomic */
	uint8_t *got;
};

/* Byte = thread id in bits 7:6, sequence number modulo 64 in bits 5:0. */
static void *tx_thread(void *opaque)
{
	struct thread_arg *a = opaque;

	for (unsigned int i = 0; i < TX_BYTES; i++) {
		uint8_t b = (uint8_t)(a->id << 6 | (i % 64));

		iobus_write(a->f->io.bus, COM1 + SERIAL_RBR_THR_DLL, &b, 1);
	}
	return NULL;
}

static void *rx_thread(void *opaque)
{
	struct thread_arg *a = opaque;
	size_t n = 0;

	while (n < RX_BYTES) {
		uint8_t lsr;

		iobus_read(a->f->io.bus, COM1 + SERIAL_LSR, &lsr, 1);
		if (lsr & LSR_OE)
			return (void *)1;
		if (lsr & LSR_DR)
			iobus_read(a->f->io.bus, COM1 + SERIAL_RBR_THR_DLL, &a->got[n++], 1);
		else
			sched_yield();
	}
	return NULL;
}

/* An interrupt handler's reads, racing the others. */
static void *status_thread(void *opaque)
{
	struct thread_arg *a = opaque;

	while (!__atomic_load_n(a->stop, __ATOMIC_RELAXED)) {
		uint8_t v;

		iobus_read(a->f->io.bus, COM1 + SERIAL_IIR_FCR, &v, 1);
		iobus_read(a->f->io.bus, COM1 + SERIAL_MSR, &v, 1);
		iobus_read(a->f->io.bus, COM1 + SERIAL_SCR, &v, 1);
	}
	return NULL;
}

static void feed_console(struct fixture *f, const uint8_t *src, size_t len)
{
	size_t sent = 0;

	while (sent < len) {
		size_t chunk = MIN(len - sent, (size_t)1000);

		sent += receive(f, src + sent, chunk);
		sched_yield();
	}
}

static void assert_tx_streams_intact(const struct fixture *f)
{
	unsigned int next[TX_THREADS] = { 0 };

	assert_int_equal(f->nr_out, TX_THREADS * TX_BYTES);
	for (size_t i = 0; i < f->nr_out; i++) {
		unsigned int id = f->out[i] >> 6;

		assert_true(id < TX_THREADS);
		assert_int_equal(f->out[i] & 0x3f, next[id] % 64);
		next[id]++;
	}
	for (unsigned int id = 0; id < TX_THREADS; id++)
		assert_int_equal(next[id], TX_BYTES);
}

static void test_concurrent_vcpus_and_console(void **state)
{
	struct fixture *f = *state;
	uint8_t *src = malloc(RX_BYTES), *got = calloc(1, RX_BYTES);
	struct thread_arg args[TX_THREADS + 2];
	pthread_t t[TX_THREADS + 2];
	bool stop = false;
	void *res;

	assert_non_null(src);
	assert_non_null(got);
	for (size_t i = 0; i < RX_BYTES; i++)
		src[i] = (uint8_t)(i * 31 + i / 256);
	wr(f, SERIAL_IIR_FCR, 0x87); /* FIFO, trigger level 8 */
	wr(f, SERIAL_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
	wr(f, SERIAL_IER_DLM, IER_ERBFI | IER_ETBEI | IER_ELSI | IER_EDSSI);

	for (unsigned int i = 0; i < TX_THREADS + 2; i++) {
		args[i] = (struct thread_arg){ .f = f, .id = i, .stop = &stop, .got = got };
		assert_int_equal(pthread_create(&t[i], NULL,
						i < TX_THREADS ? tx_thread :
						i == TX_THREADS ? rx_thread : status_thread,
						&args[i]), 0);
	}
	feed_console(f, src, RX_BYTES);
	for (unsigned int i = 0; i <= TX_THREADS; i++) {
		assert_int_equal(pthread_join(t[i], &res), 0);
		assert_null(res);
	}
	__atomic_store_n(&stop, true, __ATOMIC_RELAXED);
	assert_int_equal(pthread_join(t[TX_THREADS + 1], &res), 0);

	assert_memory_equal(got, src, RX_BYTES);
	assert_tx_streams_intact(f);
	assert_false(f->irq_repeated);
	assert_int_equal(rd(f, SERIAL_LSR), 0x60);
	free(src);
	free(got);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, bus_fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_power_on_values),
		T(test_reset_restores_power_on_values),
		T(test_reset_keeps_queued_console_input),
		T(test_scratch_register),
		T(test_lcr_all_bits_read_back),
		T(test_reserved_bits_read_zero),
		T(test_writes_to_status_registers_ignored),
		T(test_dlab_switching),
		T(test_transmit_goes_out_immediately),
		T(test_thre_interrupt_sequence),
		T(test_thre_reraised_when_etbei_toggled),
		T(test_thre_immediate_after_fcr0_change),
		T(test_fifo_enable_shows_in_iir),
		T(test_fifo_trigger_levels),
		T(test_fifo_holds_sixteen_bytes),
		T(test_fifo_clear),
		T(test_fcr_bits_need_fifo_enable),
		T(test_16450_mode_holds_one_byte),
		T(test_character_timeout_cleared_by_reading),
		T(test_interrupt_priority_order),
		T(test_higher_priority_masks_lower),
		T(test_loopback_data_path),
		T(test_loopback_modem_lines),
		T(test_modem_status_interrupt),
		T(test_overrun_in_fifo_mode),
		T(test_overrun_in_16450_mode),
		T(test_console_input_never_overruns),
		T(test_receive_queue_limit),
		T(test_input_room_after_fifo_clear_and_reset),
		T(test_receive_bad_arguments),
		T(test_receive_without_input_room_callback),
		T(test_wide_accesses_split_into_registers),
		T(test_offsets_past_last_register),
		T(test_create_refuses_bad_setups),
		T(test_hostile_register_fuzz),
		T(test_concurrent_vcpus_and_console),
	};
	return cmocka_run_group_tests_name("serial", tests, NULL, NULL);
}
