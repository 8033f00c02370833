/* SPDX-License-Identifier: MIT */
/*
 * Freestanding library for the test guests: port I/O, the COM1 console,
 * number printing, the debug-exit port, and what the boot loader passed.
 *
 * Guests run their ring-0 code under an instruction emulator on some hosts
 * (about 1.5 M instructions/s), so everything here does the least work
 * that is correct: no delays, no loops beyond the bytes to move.
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PC COM1 (8250/16550 UART) and the isa-debug-exit style port. */
#define COM1 0x3F8
#define UART_RBR 0 /* receive buffer (read) */
#define UART_THR 0 /* transmit holding (write) */
#define UART_IER 1
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_DLL 0 /* with LCR.DLAB */
#define UART_DLM 1
#define UART_LSR_DATA_READY 0x01 /* LSR bit 0 */
#define UART_LSR_THR_EMPTY 0x20  /* LSR bit 5 */
#define DEBUG_EXIT_PORT 0xF4

static inline void outb(uint16_t port, uint8_t value)
{
	__asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t value;

	__asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
	return value;
}

static inline void outl(uint16_t port, uint32_t value)
{
	__asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t value;

	__asm__ volatile("inw %1, %0" : "=a"(value) : "Nd"(port));
	return value;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t value;

	__asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
	return value;
}

/* 115200 8N1, no UART interrupts. */
void serial_init(void);
void serial_putc(char c);
/* Blocks until a byte arrives. */
char serial_getc(void);

/*
 * Where print*() output goes. The library's default writes to COM1;
 * a guest that prints from ring 3 provides its own (strong) definition.
 */
void console_write(const char *s, size_t len);

void print(const char *s);
void print_char(char c);
void print_dec(uint64_t v);
void print_hex(uint64_t v); /* 0x-prefixed, no leading zeroes */
/* "key=value\n" lines, the format tests parse. */
void print_kv_str(const char *key, const char *value);
void print_kv_dec(const char *key, uint64_t v);
void print_kv_hex(const char *key, uint64_t v);

/* Formats into buf (at least 21 bytes / 19 for hex); returns the length. */
size_t fmt_dec(char *buf, uint64_t v);
size_t fmt_hex(char *buf, uint64_t v);

size_t str_len(const char *s);
bool str_eq(const char *a, const char *b);

/*
 * Ends the VM with status code through the debug-exit port: one byte when
 * it fits, else a 32-bit write (the device takes 1, 2 or 4 bytes). Without
 * such a device the write does nothing, and the CPU halts for good.
 */
__attribute__((noreturn)) void guest_exit(uint32_t code);

/* How the guest was started; filled before main() runs. */
enum boot_protocol {
	BOOT_MULTIBOOT,
	BOOT_PVH,
	BOOT_FLAT,
};

struct boot {
	enum boot_protocol protocol;
	uint32_t eax;     /* as found at entry */
	uint32_t ebx;     /* multiboot info or PVH start_info address */
	const char *cmdline; /* never NULL; "" without one */
};

extern struct boot boot;

/* Fills boot from the registers the entry stub saved. */
void boot_init(enum boot_protocol p, uint32_t eax, uint32_t ebx);

const char *boot_protocol_name(enum boot_protocol p);

/*
 * Value of "key=value" among the space-separated words of the command
 * line: *ret_len gets its length. NULL when the key is absent.
 */
const char *cmdline_value(const char *key, size_t *ret_len);
/* Decimal value of key, or dflt when absent or not a number. */
uint64_t cmdline_number(const char *key, uint64_t dflt);

/* The guest's program; its return value is the exit status. */
int main(void);

/* Multiboot 0.6.96 section 3.3, what the guests read of it. */
#define MULTIBOOT_LOADER_MAGIC 0x2BADB002U

struct multiboot_info {
	uint32_t flags;
	uint32_t mem_lower;
	uint32_t mem_upper;
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length;
	uint32_t mmap_addr;
	uint32_t drives_length;
	uint32_t drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
} __attribute__((packed));

struct multiboot_mmap_entry {
	uint32_t size; /* of the rest of the entry */
	uint64_t addr;
	uint64_t len;
	uint32_t type;
} __attribute__((packed));

/* Xen's arch-x86/hvm/start_info.h, the PVH boot ABI. */
#define PVH_START_MAGIC 0x336ec578U

struct pvh_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version 1 */
	uint32_t memmap_entries;
	uint32_t reserved;
} __attribute__((packed));

struct pvh_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
} __attribute__((packed));

/* Pointer to guest-physical addr; the guests run identity-mapped. */
static inline void *phys(uint64_t addr)
{
	return (void *)(uintptr_t)addr;
}

/* Freestanding builds still get these calls from the compiler. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);

#endif
