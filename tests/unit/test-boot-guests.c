/* SPDX-License-Identifier: MIT */
/*
 * The loaders against the test guests the build produced (GUEST_DIR):
 * real linker and objcopy output rather than hand-made images. Checks that
 * each image loads where its headers say, that the ELF32 and ELF64 builds
 * of the demo load the same bytes, and that the flat image lands the same
 * way through the flat protocol and through its multiboot a.out-kludge
 * wrapper.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <elf.h>
#include <limits.h>

#include "vmmd/boot/boot.h"

#ifndef GUEST_DIR
#error "GUEST_DIR must name the directory of the built guests"
#endif

#define MiB (1ULL << 20)
#define RAM (64 * MiB)
#define LOAD_ADDR 0x100000
#define MULTIBOOT_HEADER_MAGIC 0x1BADB002U
#define MULTIBOOT_LOADER_MAGIC 0x2BADB002U

struct loaded {
	struct boot_kernel kernel;
	struct vm_memory mem;
	struct boot_entry entry;
};

static void read_guest(const char *name, struct boot_kernel *ret)
{
	char path[PATH_MAX];
	struct error e = { 0 };

	snprintf(path, sizeof(path), "%s/%s", GUEST_DIR, name);
	if (boot_read_kernel(path, BOOT_KERNEL_MAX_SIZE, ret, &e) < 0)
		fail_msg("%s (run make guests)", e.msg);
}

static void load_guest(const char *name, const char *protocol, const char *cmdline,
		       struct loaded *ret)
{
	const struct boot_loader *loader = boot_loader_find(protocol);
	struct error e = { 0 };

	assert_non_null(loader);
	read_guest(name, &ret->kernel);
	vm_memory_layout(RAM, &ret->mem);
	if (loader->check(&ret->kernel, cmdline, &ret->mem, &e) < 0)
		fail_msg("check: %s", e.msg);
	assert_int_equal(vm_memory_map(&ret->mem, NULL), 0);
	if (loader->load(&ret->kernel, cmdline, &ret->mem, &ret->entry, &e) < 0)
		fail_msg("load: %s", e.msg);
}

static void unload(struct loaded *l)
{
	vm_memory_unmap(&l->mem);
	boot_kernel_release(&l->kernel);
}

static const uint8_t *guest(const struct loaded *l, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = vm_memory_ptr(&l->mem, gpa, len);

	assert_non_null(p);
	return p;
}

static uint32_t elf_entry(const struct boot_kernel *k)
{
	if (k->data[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr h;
		memcpy(&h, k->data, sizeof(h));
		return (uint32_t)h.e_entry;
	}
	Elf32_Ehdr h;
	memcpy(&h, k->data, sizeof(h));
	return h.e_entry;
}

static uint32_t read_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void test_hello_loads_at_its_entry(void **state)
{
	struct loaded l;

	load_guest("hello.elf", "multiboot", "exit=42", &l);
	assert_int_equal(l.entry.eip, elf_entry(&l.kernel));
	assert_int_equal(l.entry.eax, MULTIBOOT_LOADER_MAGIC);
	/* guest32.ld puts the multiboot header first, at the load address. */
	assert_int_equal(read_u32(guest(&l, LOAD_ADDR, 4)), MULTIBOOT_HEADER_MAGIC);
	unload(&l);
}

static void test_every_multiboot_guest_loads(void **state)
{
	static const char *const names[] = {
		"bootinfo.elf", "triple-fault.elf", "echo.elf", "demo.elf", "demo64.elf",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct loaded l;
		load_guest(names[i], "multiboot", NULL, &l);
		assert_int_equal(l.entry.eip, elf_entry(&l.kernel));
		unload(&l);
	}
}

static void test_pvh_only_guest_is_not_multiboot(void **state)
{
	struct boot_kernel k;
	struct vm_memory mem;
	struct error e = { 0 };

	read_guest("hello-pvh.elf", &k);
	vm_memory_layout(RAM, &mem);
	assert_int_equal(boot_loader_find("multiboot")->check(&k, NULL, &mem, &e), -ENOEXEC);
	assert_non_null(strstr(e.msg, "no multiboot header"));
	boot_kernel_release(&k);
}

/* objcopy -O elf32-i386 keeps addresses and bytes: both load the same. */
static void test_demo_elf32_and_elf64_load_alike(void **state)
{
	struct loaded a, b;
	uint64_t span = 0x20000;

	load_guest("demo.elf", "multiboot", NULL, &a);
	load_guest("demo64.elf", "multiboot", NULL, &b);
	assert_int_equal(a.entry.eip, b.entry.eip);
	assert_memory_equal(guest(&a, LOAD_ADDR, span), guest(&b, LOAD_ADDR, span), span);
	unload(&a);
	unload(&b);
}

static void test_flat_and_its_multiboot_wrapper_load_alike(void **state)
{
	struct loaded flat, wrapped;

	load_guest("hello-flat.bin", "flat", NULL, &flat);
	load_guest("hello-flat.mb", "multiboot", NULL, &wrapped);
	assert_int_equal(flat.entry.eip, LOAD_ADDR);
	assert_int_equal(wrapped.entry.eip, LOAD_ADDR);
	assert_memory_equal(guest(&flat, LOAD_ADDR, flat.kernel.size),
			    guest(&wrapped, LOAD_ADDR, flat.kernel.size), flat.kernel.size);
	unload(&flat);
	unload(&wrapped);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_loads_at_its_entry),
		cmocka_unit_test(test_every_multiboot_guest_loads),
		cmocka_unit_test(test_pvh_only_guest_is_not_multiboot),
		cmocka_unit_test(test_demo_elf32_and_elf64_load_alike),
		cmocka_unit_test(test_flat_and_its_multiboot_wrapper_load_alike),
	};
	return cmocka_run_group_tests_name("boot built guests", tests, NULL, NULL);
}
