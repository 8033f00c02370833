/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for kernel files (boot_read_kernel), the loader table and the
 * flat binary loader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "vmmd/boot/boot.h"

#define MiB (1ULL << 20)

static char dir[64];

static int make_dir(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test-boot-file.XXXXXX");
	assert_non_null(mkdtemp(dir));
	/* Readable by the unprivileged user of test_unreadable_file. */
	assert_int_equal(chmod(dir, 0755), 0);
	return 0;
}

static int remove_dir(void **state)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *path_of(const char *name)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static const char *write_file(const char *name, const void *data, size_t size,
			      mode_t mode)
{
	const char *path = path_of(name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, size), (ssize_t)size);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void assert_msg_has(const char *msg, const char *needle)
{
	if (!strstr(msg, needle))
		fail_msg("message \"%s\" does not contain \"%s\"", msg, needle);
}

static void assert_read_fails(const char *path, uint64_t max, int code,
			      const char *needle)
{
	struct boot_kernel k = { .name = "untouched" };
	struct error e = { 0 };
	char prefix[PATH_MAX + 16];

	assert_int_equal(boot_read_kernel(path, max, &k, &e), code);
	assert_int_equal(e.code, code);
	snprintf(prefix, sizeof(prefix), "kernel '%s': ", path);
	assert_msg_has(e.msg, prefix);
	assert_msg_has(e.msg, needle);
	assert_string_equal(k.name, "untouched");
	assert_null(k.data);
}

/* ---------------------------------------------------------------- files */

static void test_read_kernel(void **state)
{
	const char data[] = "\x7f" "ELF and some more bytes";
	const char *path = write_file("k.elf", data, sizeof(data), 0644);
	struct boot_kernel k;
	struct error e = { 0 };

	assert_int_equal(boot_read_kernel(path, BOOT_KERNEL_MAX_SIZE, &k, &e), 0);
	assert_string_equal(k.name, path);
	assert_int_equal(k.size, sizeof(data));
	assert_memory_equal(k.data, data, sizeof(data));
	boot_kernel_release(&k);
	assert_null(k.data);
	assert_null(k.name);
	boot_kernel_release(&k);
}

static void test_read_kernel_at_size_limit(void **state)
{
	char data[100] = { 1 };
	const char *path = write_file("limit.bin", data, sizeof(data), 0644);
	struct boot_kernel k;

	assert_int_equal(boot_read_kernel(path, sizeof(data), &k, NULL), 0);
	boot_kernel_release(&k);
}

static void test_missing_file(void **state)
{
	assert_read_fails(path_of("nope.elf"), BOOT_KERNEL_MAX_SIZE, -ENOENT,
			  "No such file or directory");
}

static void test_directory(void **state)
{
	assert_read_fails(dir, BOOT_KERNEL_MAX_SIZE, -EISDIR,
			  "is a directory, not a kernel image");
}

static void test_not_regular_file(void **state)
{
	assert_read_fails("/dev/null", BOOT_KERNEL_MAX_SIZE, -EINVAL,
			  "is not a regular file");
}

static void test_empty_file(void **state)
{
	const char *path = write_file("empty.elf", "", 0, 0644);

	assert_read_fails(path, BOOT_KERNEL_MAX_SIZE, -ENOEXEC, "is empty");
}

static void test_oversized_file(void **state)
{
	char data[101] = { 0 };
	const char *path = write_file("big.elf", data, sizeof(data), 0644);

	assert_read_fails(path, 100, -EFBIG, "101 bytes is more than the limit of 100 bytes");
}

/* Root reads any file, so the check runs as an unprivileged user. */
static void test_unreadable_file(void **state)
{
	const char *path = write_file("secret.elf", "x", 1, 0000);
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		assert_read_fails(path, BOOT_KERNEL_MAX_SIZE, -EACCES, "Permission denied");
		return;
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct boot_kernel k;
		struct error e = { 0 };
		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(2);
		if (boot_read_kernel(path, BOOT_KERNEL_MAX_SIZE, &k, &e) != -EACCES)
			_exit(3);
		_exit(strstr(e.msg, "Permission denied") && strstr(e.msg, path) ? 0 : 4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---------------------------------------------------------------- table */

static void test_loader_table(void **state)
{
	const struct boot_loader *l = NULL;
	struct error e = { 0 };

	assert_string_equal(boot_loader_find("multiboot")->name, "multiboot");
	assert_string_equal(boot_loader_find("flat")->name, "flat");
	assert_null(boot_loader_find("linux"));
	assert_int_equal(boot_loader_get("flat", &l, &e), 0);
	assert_ptr_equal(l, boot_loader_find("flat"));
	assert_int_equal(boot_loader_get("pxe", &l, &e), -EINVAL);
	assert_string_equal(e.msg, "unknown boot protocol 'pxe' (supported: multiboot, flat)");
	assert_ptr_equal(l, boot_loader_find("flat"));
}

/* ---------------------------------------------------------------- flat */

static uint8_t flat_image[4096];

static struct boot_kernel flat_kernel(size_t size)
{
	for (size_t i = 0; i < sizeof(flat_image); i++)
		flat_image[i] = (uint8_t)(i ^ 0x5A);
	return (struct boot_kernel){ .name = "hello.bin", .data = flat_image, .size = size };
}

static void test_flat_loads_at_1m(void **state)
{
	const struct boot_loader *flat = boot_loader_find("flat");
	struct boot_kernel k = flat_kernel(sizeof(flat_image));
	struct boot_entry entry;
	struct vm_memory mem;
	struct error e = { 0 };

	vm_memory_layout(16 * MiB, &mem);
	assert_int_equal(flat->check(&k, NULL, &mem, &e), 0);
	assert_int_equal(vm_memory_map(&mem, NULL), 0);
	assert_int_equal(flat->load(&k, "", &mem, &entry, &e), 0);
	assert_memory_equal(vm_memory_ptr(&mem, 0x100000, sizeof(flat_image)), flat_image,
			    sizeof(flat_image));
	assert_int_equal(entry.eip, 0x100000);
	assert_int_equal(entry.esp, 0x100000);
	assert_int_equal(entry.eax, 0);
	assert_int_equal(entry.ebx, 0);
	assert_int_equal(entry.cr0, 0x11);
	assert_int_equal(entry.code_selector, 0x10);
	assert_int_equal(entry.data_selector, 0x18);
	vm_memory_unmap(&mem);
}

static void assert_flat_rejected(size_t size, const char *cmdline, uint64_t ram,
				 int code, const char *needle)
{
	const struct boot_loader *flat = boot_loader_find("flat");
	struct boot_kernel k = flat_kernel(size);
	struct boot_entry entry = { .eip = 0xDEAD };
	struct vm_memory mem;
	struct error e = { 0 };

	vm_memory_layout(ram, &mem);
	assert_int_equal(flat->check(&k, cmdline, &mem, &e), code);
	assert_msg_has(e.msg, "kernel 'hello.bin': ");
	assert_msg_has(e.msg, needle);
	assert_int_equal(vm_memory_map(&mem, NULL), 0);
	memset(&e, 0, sizeof(e));
	assert_int_equal(flat->load(&k, cmdline, &mem, &entry, &e), code);
	assert_msg_has(e.msg, needle);
	assert_int_equal(entry.eip, 0xDEAD);
	vm_memory_unmap(&mem);
}

static void test_flat_must_fit_in_ram(void **state)
{
	assert_flat_rejected(sizeof(flat_image), NULL, MiB + 0x800, -ERANGE,
			     "flat image: segment [0x100000, 0x101000) lies beyond guest RAM (1 MiB)");
}

static void test_flat_has_no_cmdline(void **state)
{
	assert_flat_rejected(16, "exit=3", 16 * MiB, -EINVAL,
			     "the flat boot protocol cannot pass a command line");
}

static void test_flat_empty(void **state)
{
	assert_flat_rejected(0, NULL, 16 * MiB, -ENOEXEC, "is empty");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_kernel),
		cmocka_unit_test(test_read_kernel_at_size_limit),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_not_regular_file),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_oversized_file),
		cmocka_unit_test(test_unreadable_file),
		cmocka_unit_test(test_loader_table),
		cmocka_unit_test(test_flat_loads_at_1m),
		cmocka_unit_test(test_flat_must_fit_in_ram),
		cmocka_unit_test(test_flat_has_no_cmdline),
		cmocka_unit_test(test_flat_empty),
	};
	return cmocka_run_group_tests_name("boot files and flat", tests, make_dir, remove_dir);
}
