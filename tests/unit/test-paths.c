/* SPDX-License-Identifier: MIT */
/*
 * The default paths vmmd and vmctl share (util/path.c), against the
 * contract in docs/architecture.md#paths: every case of who runs them and
 * what their environment says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/path.h"

#define USER_UID 1000

static void expect_socket(const struct path_env *env, const char *path)
{
	char buf[108];

	assert_int_equal(path_default_socket(env, buf, sizeof(buf)), 0);
	assert_string_equal(buf, path);
}

static void expect_state_dir(const struct path_env *env, const char *path)
{
	char buf[4096];

	assert_int_equal(path_default_state_dir(env, buf, sizeof(buf)), 0);
	assert_string_equal(buf, path);
}

static void test_root(void **state)
{
	struct path_env env = { .euid = 0, .runtime_dir = "/run/user/0", .home = "/root" };

	expect_socket(&env, "/run/vmmd/vmmd.sock");
	expect_state_dir(&env, "/var/lib/vmmd");
	env.home = NULL;
	expect_state_dir(&env, "/var/lib/vmmd");
}

static void test_other_users(void **state)
{
	struct path_env env = { .euid = USER_UID, .runtime_dir = "/run/user/1000",
				.home = "/home/ann" };

	expect_socket(&env, "/run/user/1000/vmmd/vmmd.sock");
	expect_state_dir(&env, "/home/ann/.local/share/vmmd");
	/* Without XDG_RUNTIME_DIR: where logind would have put it. */
	env.runtime_dir = NULL;
	expect_socket(&env, "/run/user/1000/vmmd/vmmd.sock");
	env.euid = 65534;
	expect_socket(&env, "/run/user/65534/vmmd/vmmd.sock");
	env.runtime_dir = "/tmp/xdg";
	expect_socket(&env, "/tmp/xdg/vmmd/vmmd.sock");
}

static void test_vmmd_socket_overrides_for_everyone(void **state)
{
	struct path_env env = { .euid = 0, .socket = "/srv/v.sock", .home = "/root" };

	expect_socket(&env, "/srv/v.sock");
	env.euid = USER_UID;
	expect_socket(&env, "/srv/v.sock");
	/* Only the socket: the state directory keeps its default. */
	env.home = "/home/ann";
	expect_state_dir(&env, "/home/ann/.local/share/vmmd");
}

static void test_no_home_and_too_long(void **state)
{
	struct path_env env = { .euid = USER_UID };
	char buf[108], small[16], longer[200];

	assert_int_equal(path_default_state_dir(&env, buf, sizeof(buf)), -ENOENT);
	memset(longer, 'x', sizeof(longer) - 1);
	longer[0] = '/';
	longer[sizeof(longer) - 1] = '\0';
	env.runtime_dir = longer;
	assert_int_equal(path_default_socket(&env, buf, sizeof(buf)), -ENAMETOOLONG);
	env.home = "/home/ann";
	assert_int_equal(path_default_state_dir(&env, small, sizeof(small)), -ENAMETOOLONG);
}

static void test_env_of_this_process(void **state)
{
	struct path_env env;

	setenv("VMMD_SOCKET", "", 1);
	setenv("XDG_RUNTIME_DIR", "/tmp/xdg-test", 1);
	setenv("HOME", "/tmp/home-test", 1);
	path_env_get(&env);
	assert_int_equal(env.euid, geteuid());
	/* Empty counts as unset. */
	assert_null(env.socket);
	assert_string_equal(env.runtime_dir, "/tmp/xdg-test");
	assert_string_equal(env.home, "/tmp/home-test");
	setenv("VMMD_SOCKET", "/tmp/v.sock", 1);
	unsetenv("HOME");
	path_env_get(&env);
	assert_string_equal(env.socket, "/tmp/v.sock");
	/* Without $HOME, the passwd entry's (root's and most users' exist). */
	assert_non_null(env.home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root),
		cmocka_unit_test(test_other_users),
		cmocka_unit_test(test_vmmd_socket_overrides_for_everyone),
		cmocka_unit_test(test_no_home_and_too_long),
		cmocka_unit_test(test_env_of_this_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
