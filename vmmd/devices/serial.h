/* SPDX-License-Identifier: MIT */
/*
 * A 16550A UART (National Semiconductor PC16550D) for the guest console:
 * COM1 at ports 0x3F8-0x3FF, IRQ 4.
 *
 * Transmission is instantaneous: a byte written to THR goes to the output
 * callback at once, so THRE and TEMT always read 1 and the "THR empty"
 * interrupt is re-raised right after every write. Console input arrives
 * through serial_receive() into a bounded input queue (the wire, up to
 * SERIAL_INPUT_QUEUE_SIZE bytes) and moves into the receive FIFO (16 bytes,
 * or the single RBR in 16450 mode) as the guest empties it, so pasted input
 * is paced, never overrun. Overrun (LSR.OE) happens only where the guest
 * itself overfills the receiver: in loopback mode. docs/devices.md lists
 * what is and is not modelled.
 *
 * Callbacks run with the UART's lock held, on the thread that caused them
 * (a vCPU thread for register accesses, the caller of serial_receive() or
 * serial_reset() otherwise); they must not call serial_* on the same UART.
 *
 * Threads: register accesses (serial_read/serial_write, or the bus) from any
 * number of vCPU threads and serial_receive() from the worker's main thread
 * may run concurrently; each UART has one mutex.
 */
#ifndef VMMD_DEVICES_SERIAL_H
#define VMMD_DEVICES_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "vmmd/devices/iobus.h"

#define SERIAL_COM1_BASE 0x3F8u
#define SERIAL_COM1_IRQ 4u
/* Eight registers, one port each. */
#define SERIAL_NR_PORTS 8u
/* PC16550D: 16-byte transmit and receive FIFOs. */
#define SERIAL_FIFO_SIZE 16u
/* Console input waiting beyond the receive FIFO: a pasted screenful and more. */
#define SERIAL_INPUT_QUEUE_SIZE 4096u

/* Register offsets from the base port (PC16550D Table II, Summary of Registers). */
enum serial_reg {
	SERIAL_RBR_THR_DLL = 0,
	SERIAL_IER_DLM = 1,
	SERIAL_IIR_FCR = 2,
	SERIAL_LCR = 3,
	SERIAL_MCR = 4,
	SERIAL_LSR = 5,
	SERIAL_MSR = 6,
	SERIAL_SCR = 7,
};

struct serial_callbacks {
	/*
	 * The level of the UART's INTR output: 1 while any enabled interrupt
	 * is pending, 0 otherwise. Called only when the level changes (a THR
	 * write with THRE interrupts enabled gives 0 then 1). The worker
	 * forwards it as KVM_IRQ_LINE(SERIAL_COM1_IRQ, level); the in-kernel
	 * PIC/IOAPIC treat ISA IRQ 4 as edge-triggered, so each 0->1 is one
	 * interrupt. Required.
	 */
	void (*set_irq)(void *ctx, int level);
	/* Bytes the guest transmitted, in order. Required. */
	void (*output)(void *ctx, const uint8_t *buf, size_t len);
	/*
	 * The input queue has room again after serial_receive() accepted
	 * fewer bytes than offered; called once per such refusal, from the
	 * thread whose access moved queued bytes on into the receive FIFO (a
	 * vCPU reading RBR, clearing the FIFO or leaving loopback, or the
	 * caller of serial_reset()). Optional.
	 */
	void (*input_room)(void *ctx);
};

struct serial;

/*
 * Creates a UART in its power-on state and registers it on `bus` at ports
 * [base, base + SERIAL_NR_PORTS). The bus owns it (freed by iobus_free());
 * *ret is a borrowed pointer for serial_receive(), valid until then.
 * `cb` is copied; `ctx` is passed to every callback. Returns 0, -EINVAL
 * (missing callback), -ENOMEM, or iobus_register()'s error.
 */
int serial_create(struct iobus *bus, uint16_t base, const struct serial_callbacks *cb,
		  void *ctx, struct serial **ret, struct error *err);

/*
 * Queues console input for the guest: takes the first *ret_accepted bytes
 * of buf[0..len), as many as the input queue has room for (the rest must
 * be offered again after input_room()). Order is kept; accepted bytes are
 * never dropped by the UART (only a guest FIFO clear or FIFO mode switch
 * discards what is already in the receive FIFO). Returns 0, or -EINVAL if
 * buf is NULL and len is not 0. Thread-safe.
 */
int serial_receive(struct serial *uart, const void *buf, size_t len, size_t *ret_accepted);

/*
 * Register access by offset (0-7), for the bus and for other transports.
 * Offsets past 7 read 0xFF and ignore writes. Thread-safe.
 */
uint8_t serial_read(struct serial *uart, uint8_t offset);
void serial_write(struct serial *uart, uint8_t offset, uint8_t value);

/*
 * Power-on register values (PC16550D Table I, UART Reset Configuration):
 * IER=0, IIR=0x01, FCR=0, LCR=0, MCR=0, LSR=0x60, MSR deltas 0 with lines
 * as the inputs drive them (0xB0 for the console); SCR and the divisor
 * latch, which Master Reset leaves undefined, become 0. Empties the
 * receive FIFO and lowers the IRQ if raised. Console input still queued is
 * kept. Thread-safe.
 */
void serial_reset(struct serial *uart);

#endif
