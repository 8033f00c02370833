/* SPDX-License-Identifier: MIT */
/* Unit tests for util/: bit masks, error messages, log levels, guest RAM layout. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/base64.h"
#include "util/crc32c.h"
#include "util/error.h"
#include "util/log.h"
#include "util/macro.h"
#include "vmmd/worker/memory.h"

static void test_bits_masks(void **state)
{
	assert_int_equal(BITS(0, 0), 0x1);
	assert_int_equal(BITS(13, 20), 0x1FE000);
	assert_true(BITS(0, 63) == ~0ULL);
	assert_true(BITS(52, 62) == 0x7FF0000000000000ULL);
	assert_true(BITS(36, 51) == 0x000FFFF000000000ULL);
}

static void test_error_set_and_prefix(void **state)
{
	struct error e = { 0 };

	assert_int_equal(error_set(&e, -EINVAL, "field '%s' must be %d", "vcpus", 4), -EINVAL);
	assert_int_equal(e.code, -EINVAL);
	assert_string_equal(e.msg, "field 'vcpus' must be 4");
	assert_int_equal(error_prefix(&e, "vm.create"), -EINVAL);
	assert_string_equal(e.msg, "vm.create: field 'vcpus' must be 4");
	/* NULL error objects are allowed and only pass the code through. */
	assert_int_equal(error_set(NULL, -ENOENT, "x"), -ENOENT);
}

static void test_error_truncates_long_messages(void **state)
{
	struct error e;
	char big[2 * ERROR_MSG_MAX];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	error_set(&e, -E2BIG, "%s", big);
	assert_int_equal(strlen(e.msg), ERROR_MSG_MAX - 1);
}

static void test_log_level_parse(void **state)
{
	enum log_level l;

	assert_int_equal(log_level_from_string("debug", &l), 0);
	assert_int_equal(l, LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_from_string("err", &l), 0);
	assert_int_equal(l, LOG_LEVEL_ERR);
	assert_int_equal(log_level_from_string("loud", &l), -EINVAL);
	assert_int_equal(log_level_from_string("", &l), -EINVAL);
}

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/*
 * A helper called by hand leaves -1 behind, so the cleanup attribute (or a
 * second call) cannot close a descriptor opened since under the same number.
 */
static void test_closep_by_hand_closes_once(void **state)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), number = fd, other;

	assert_true(fd >= 0);
	closep(&fd);
	assert_int_equal(fd, -1);
	assert_false(fd_is_open(number));
	other = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(other, number); /* the lowest free number comes back */
	closep(&fd);
	assert_true(fd_is_open(other));
	{
		_cleanup_close_ int scoped = open("/dev/null", O_RDONLY | O_CLOEXEC);
		closep(&scoped);
		assert_int_equal(scoped, -1);
	}
	assert_true(fd_is_open(other));
	close(other);
}

static void test_freep_and_fclosep_reset(void **state)
{
	char *p = strdup("x");
	FILE *f = fopen("/dev/null", "re");

	assert_non_null(p);
	assert_non_null(f);
	freep(&p);
	assert_null(p);
	freep(&p); /* a second call frees nothing */
	fclosep(&f);
	assert_null(f);
	fclosep(&f);
}

static void test_memory_layout_small(void **state)
{
	struct vm_memory m;

	vm_memory_layout(64ULL << 20, &m);
	assert_int_equal(m.nr_regions, 1);
	assert_true(vm_memory_is_ram(&m, 0, 64ULL << 20));
	assert_false(vm_memory_is_ram(&m, (64ULL << 20) - 1, 2));
	/* Unmapped layouts never hand out pointers. */
	assert_null(vm_memory_ptr(&m, 0, 1));
}

static void test_memory_layout_hole(void **state)
{
	struct vm_memory m;

	vm_memory_layout(4ULL << 30, &m);
	assert_int_equal(m.nr_regions, 2);
	assert_true(m.region[0].size == VM_MEM_HOLE_START);
	assert_true(m.region[1].gpa == VM_MEM_HOLE_END);
	assert_true(m.region[1].size == (1ULL << 30));
	assert_false(vm_memory_is_ram(&m, VM_MEM_HOLE_START, 1));
	assert_false(vm_memory_is_ram(&m, VM_MEM_HOLE_START - 1, 2));
	assert_true(vm_memory_is_ram(&m, VM_MEM_HOLE_END, 4096));
	/* A range whose end overflows is never RAM. */
	assert_false(vm_memory_is_ram(&m, ~0ULL - 1, 4));
}

static void test_memory_map_and_access(void **state)
{
	struct vm_memory m;
	uint8_t *p;

	vm_memory_layout(16ULL << 20, &m);
	assert_int_equal(vm_memory_map(&m, NULL), 0);
	p = vm_memory_ptr(&m, 0x1000, 16);
	assert_non_null(p);
	p[0] = 0xAB;
	assert_int_equal(*(uint8_t *)vm_memory_ptr(&m, 0x1000, 1), 0xAB);
	assert_null(vm_memory_ptr(&m, 16ULL << 20, 1));
	vm_memory_unmap(&m);
	assert_null(vm_memory_ptr(&m, 0x1000, 1));
}

static void test_base64_rfc4648_vectors(void **state)
{
	/* RFC 4648 §10 test vectors. */
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					   "Zm9vYmFy" };
	char out[16];
	uint8_t dec[16];

	for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
		size_t n = strlen(plain[i]);
		assert_int_equal(base64_encoded_len(n), strlen(enc[i]));
		base64_encode((const uint8_t *)plain[i], n, out);
		assert_string_equal(out, enc[i]);
		assert_int_equal(base64_decode(enc[i], strlen(enc[i]), dec), (long)n);
		assert_memory_equal(dec, plain[i], n);
	}
}

static void test_base64_binary_round_trip(void **state)
{
	uint8_t in[256], dec[258];
	char out[400];

	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)i;
	base64_encode(in, sizeof(in), out);
	assert_int_equal(base64_decode(out, strlen(out), dec), 256);
	assert_memory_equal(in, dec, 256);
}

static void test_base64_rejects_malformed(void **state)
{
	uint8_t dec[16];

	assert_int_equal(base64_decode("Zm9", 3, dec), -EINVAL);      /* truncated */
	assert_int_equal(base64_decode("Zm9v!A==", 8, dec), -EINVAL); /* bad char */
	assert_int_equal(base64_decode("Zg==Zg==", 8, dec), -EINVAL); /* padding mid-stream */
	assert_int_equal(base64_decode("Z===", 4, dec), -EINVAL);     /* too much padding */
	assert_int_equal(base64_decode("Zg=A", 4, dec), -EINVAL);     /* data after padding */
	assert_int_equal(base64_decode("Zm9v\n", 5, dec), -EINVAL);
}

/* RFC 3720 §B.4 test vectors and the usual check value. */
static void test_crc32c_vectors(void **state)
{
	uint8_t zeros[32] = { 0 }, ones[32], inc[32];

	memset(ones, 0xFF, sizeof(ones));
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283);
	assert_int_equal(crc32c(0, zeros, 32), 0x8A9136AA);
	assert_int_equal(crc32c(0, ones, 32), 0x62A8AB43);
	assert_int_equal(crc32c(0, inc, 32), 0x46DD794E);
	assert_int_equal(crc32c(0, "", 0), 0);
	/* In pieces, the same result. */
	assert_int_equal(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bits_masks),
		cmocka_unit_test(test_error_set_and_prefix),
		cmocka_unit_test(test_error_truncates_long_messages),
		cmocka_unit_test(test_log_level_parse),
		cmocka_unit_test(test_closep_by_hand_closes_once),
		cmocka_unit_test(test_freep_and_fclosep_reset),
		cmocka_unit_test(test_memory_layout_small),
		cmocka_unit_test(test_memory_layout_hole),
		cmocka_unit_test(test_memory_map_and_access),
		cmocka_unit_test(test_base64_rfc4648_vectors),
		cmocka_unit_test(test_base64_binary_round_trip),
		cmocka_unit_test(test_base64_rejects_malformed),
		cmocka_unit_test(test_crc32c_vectors),
	};
	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
