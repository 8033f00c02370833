/* SPDX-License-Identifier: MIT */
/*
 * vmmd: the daemon, or (with --worker, started by vmmd itself) one VM's
 * worker process.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/path.h"
#include "vmmd/vmmd.h"
#include "vmmd/worker/worker.h"

static void usage(FILE *out)
{
	const struct daemon_limits defaults = VMMD_DEFAULT_LIMITS;

	fprintf(out,
		"Usage: vmmd [OPTION]...\n"
		"KVM virtual machine monitor daemon: serves JSON-RPC 2.0 on a Unix socket.\n"
		"\n"
		"  --socket PATH      API socket (default /run/vmmd/vmmd.sock as root,\n"
		"                     $XDG_RUNTIME_DIR/vmmd/vmmd.sock otherwise; or $VMMD_SOCKET)\n"
		"  --ro-socket PATH   also serve the query methods to anyone on PATH (mode 0666)\n"
		"  --group NAME       members get full access on the main socket (default vmmd)\n"
		"  --state-dir DIR    VM definitions and console logs (default /var/lib/vmmd\n"
		"                     as root, ~/.local/share/vmmd otherwise)\n"
		"  --run-dir DIR      worker sockets and pid files (default: the socket's directory)\n"
		"  --limit NAME=VAL   set a limit (repeatable); the limits and their defaults:\n");
	daemon_limits_print(&defaults, out);
	fprintf(out,
		"  --log-level LEVEL  err, warning, notice, info (default) or debug; or\n"
		"                     $VMMD_LOG_LEVEL (a bad value in either is refused)\n"
		"  --ready-fd FD      write \"READY\\n\" to FD once the socket serves and every worker\n"
		"                     found at start has been reattached (or given up), then close it\n"
		"  --version          print the version and exit\n"
		"  --help             print this help and exit\n"
		"\n"
		"Sockets may also come from systemd socket activation (LISTEN_FDS; one named\n"
		"\"ro\" is the read-only socket). See docs/api.md for the methods and\n"
		"docs/operations.md for running vmmd as a service.\n");
}

static int parse_limit(struct daemon_limits *l, const char *arg)
{
	char name[64], err[200];
	const char *eq = strchr(arg, '=');

	if (!eq || (size_t)(eq - arg) >= sizeof(name)) {
		log_error("--limit needs NAME=VALUE, got '%s'", arg);
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
	if (daemon_limit_set(l, name, eq + 1, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -EINVAL;
	}
	return 0;
}

static int copy_path(char *dst, size_t size, const char *src, const char *what)
{
	if (snprintf(dst, size, "%s", src) >= (int)size) {
		log_error("%s path is too long: %s", what, src);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* The defaults; an option given later replaces them. Without a home
 * directory the state directory stays empty until --state-dir sets it. */
static int default_paths(struct daemon_config *cfg)
{
	struct path_env env;

	path_env_get(&env);
	if (path_default_socket(&env, cfg->socket_path, sizeof(cfg->socket_path)) < 0) {
		log_error("the default socket path (%s) is too long; give --socket PATH",
			  env.socket ? "$VMMD_SOCKET" : "under $XDG_RUNTIME_DIR");
		return -ENAMETOOLONG;
	}
	if (path_default_state_dir(&env, cfg->state_dir, sizeof(cfg->state_dir)) == -ENAMETOOLONG) {
		log_error("home directory '%s' is too long", env.home);
		return -ENAMETOOLONG;
	}
	return 0;
}

static void run_dir_beside_socket(struct daemon_config *cfg)
{
	const char *slash = strrchr(cfg->socket_path, '/');
	size_t len = slash ? (size_t)(slash - cfg->socket_path) : 0;

	if (!slash)
		strcpy(cfg->run_dir, ".");
	else if (len == 0)
		strcpy(cfg->run_dir, "/");
	else
		snprintf(cfg->run_dir, sizeof(cfg->run_dir), "%.*s", (int)len, cfg->socket_path);
}

static int parse_fd(const char *s, int *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > INT_MAX)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

enum { OPT_SOCKET = 256, OPT_RO_SOCKET, OPT_GROUP, OPT_LIMIT, OPT_STATE_DIR, OPT_RUN_DIR,
       OPT_LOG_LEVEL, OPT_READY_FD, OPT_WORKER, OPT_VERSION, OPT_HELP };

static const struct option options[] = {
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "ro-socket", required_argument, NULL, OPT_RO_SOCKET },
	{ "group", required_argument, NULL, OPT_GROUP },
	{ "limit", required_argument, NULL, OPT_LIMIT },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "run-dir", required_argument, NULL, OPT_RUN_DIR },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "ready-fd", required_argument, NULL, OPT_READY_FD },
	{ "worker", required_argument, NULL, OPT_WORKER },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, OPT_HELP },
	{ 0 },
};

static int parse_option(int opt, struct daemon_config *cfg, bool *run_dir_set)
{
	enum log_level level;

	switch (opt) {
	case OPT_SOCKET:
		return copy_path(cfg->socket_path, sizeof(cfg->socket_path), optarg, "socket");
	case OPT_RO_SOCKET:
		return copy_path(cfg->ro_socket_path, sizeof(cfg->ro_socket_path), optarg,
				 "read-only socket");
	case OPT_GROUP:
		return copy_path(cfg->group, sizeof(cfg->group), optarg, "group");
	case OPT_LIMIT:
		return parse_limit(&cfg->limits, optarg);
	case OPT_STATE_DIR:
		return copy_path(cfg->state_dir, sizeof(cfg->state_dir), optarg, "state directory");
	case OPT_RUN_DIR:
		*run_dir_set = true;
		return copy_path(cfg->run_dir, sizeof(cfg->run_dir), optarg, "run directory");
	case OPT_LOG_LEVEL:
		if (log_level_from_string(optarg, &level) < 0) {
			log_error("--log-level must be err, warning, notice, info or debug");
			return -EINVAL;
		}
		log_set_max_level(level);
		return 0;
	case OPT_READY_FD:
		if (parse_fd(optarg, &cfg->ready_fd) < 0) {
			log_error("--ready-fd needs a file descriptor number, got '%s'", optarg);
			return -EINVAL;
		}
		return 0;
	default:
		usage(stderr);
		return -EINVAL;
	}
}

static int find_self(struct daemon_config *cfg)
{
	ssize_t n = readlink("/proc/self/exe", cfg->self_exe, sizeof(cfg->self_exe) - 1);

	if (n < 0) {
		log_error("cannot find its own executable: %s", strerror(errno));
		return -errno;
	}
	cfg->self_exe[n] = '\0';
	return 0;
}

int main(int argc, char **argv)
{
	struct daemon_config cfg = { .ready_fd = -1, .limits = VMMD_DEFAULT_LIMITS,
				     .group = "vmmd" };
	bool run_dir_set = false;
	int opt, env_level = log_init("vmmd");

	if (default_paths(&cfg) < 0)
		return 2;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == OPT_WORKER)
			return worker_main(optarg);
		if (opt == OPT_HELP) {
			usage(stdout);
			return 0;
		}
		if (opt == OPT_VERSION) {
			printf("vmmd %s\n", VMMD_VERSION);
			return 0;
		}
		if (parse_option(opt, &cfg, &run_dir_set) < 0)
			return 2;
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 2;
	}
	/* Refused like a bad --log-level, even when --log-level overrides it. */
	if (env_level < 0) {
		log_error("VMMD_LOG_LEVEL must be err, warning, notice, info or debug, got '%s'",
			  getenv("VMMD_LOG_LEVEL"));
		return 2;
	}
	if (!cfg.state_dir[0]) {
		log_error("uid %u has no home directory ($HOME, passwd) for the default state "
			  "directory; give --state-dir DIR", (unsigned)geteuid());
		return 2;
	}
	if (!run_dir_set)
		run_dir_beside_socket(&cfg);
	if (find_self(&cfg) < 0)
		return 1;
	return daemon_run(&cfg) < 0 ? 1 : 0;
}
