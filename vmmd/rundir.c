/* SPDX-License-Identifier: MIT */
#include "vmmd/rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/jsonrpc.h"
#include "api/schema.h"
#include "util/fileio.h"
#include "util/macro.h"
#include "util/path.h"
#include "util/time.h"

/* The records are tiny; anything bigger is not ours. */
#define RUNDIR_FILE_MAX 8192

int rundir_paths(const char *run_dir, const char *name, struct rundir_paths *ret)
{
	if (path_format(ret->dir, sizeof(ret->dir), "%s/vms", run_dir) < 0 ||
	    path_format(ret->sock, sizeof(ret->sock), "%s/%s.sock", ret->dir, name) < 0 ||
	    path_format(ret->pid, sizeof(ret->pid), "%s/%s.pid", ret->dir, name) < 0 ||
	    path_format(ret->exit, sizeof(ret->exit), "%s/%s.exit", ret->dir, name) < 0)
		return -ENAMETOOLONG;
	return 0;
}

int rundir_prepare(const char *run_dir, struct error *err)
{
	char dir[PATH_MAX];

	if (path_format(dir, sizeof(dir), "%s/vms", run_dir) < 0)
		return error_set(err, -ENAMETOOLONG, "run directory %s: path too long", run_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return error_set(err, negative_errno(), "creating %s: %s", dir, strerror(errno));
	return 0;
}

int rundir_listen(const struct rundir_paths *p, int *ret_fd, struct error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;

	if (strlen(p->sock) >= sizeof(sa.sun_path))
		return error_set(err, -ENAMETOOLONG, "worker socket %s: path too long (limit %zu)",
				 p->sock, sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, p->sock);
	unlink(p->sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(p->sock, 0600) < 0 || listen(fd, 4) < 0)
		return error_set(err, negative_errno(), "worker socket %s: %s", p->sock,
				 strerror(errno));
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int write_json(const char *path, json_object *o, struct error *err)
{
	size_t len;
	const char *text = jsonrpc_to_text(o, &len);
	int rc = file_write_atomic(path, text, len, 0600, err);

	json_object_put(o);
	return rc;
}

static int read_json(const char *path, json_object **ret, struct error *err)
{
	char *text;
	size_t len;
	struct api_error perr;
	int rc = file_read_bounded(path, RUNDIR_FILE_MAX, &text, &len, err);

	if (rc < 0)
		return rc;
	rc = jsonrpc_parse(text, len, ret, &perr);
	free(text);
	if (rc == 0 && !json_object_is_type(*ret, json_type_object)) {
		json_object_put(*ret);
		rc = -EINVAL;
	}
	if (rc < 0)
		return error_set(err, -EINVAL, "%s: not a valid record", path);
	return 0;
}

int process_start_time(pid_t pid, uint64_t *ret)
{
	char path[64], buf[1024], *p;
	unsigned long long start;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may contain spaces and parentheses: skip to the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	/* Fields after the name start at 3 (state); start time is field 22. */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   &start) != 1)
		return -EINVAL;
	*ret = start;
	return 0;
}

void rundir_boot_id(char *buf, size_t size)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	buf[0] = '\0';
	if (f) {
		if (fgets(buf, (int)size, f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
}

int rundir_write_pid(const struct rundir_paths *p, const char *name, struct error *err)
{
	char boot_id[64];
	uint64_t start;
	json_object *o;

	if (process_start_time(getpid(), &start) < 0)
		return error_set(err, -EIO, "cannot read this process's start time");
	rundir_boot_id(boot_id, sizeof(boot_id));
	o = json_object_new_object();
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "start_time", json_object_new_int64((int64_t)start));
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "boot_id", json_object_new_string(boot_id));
	return write_json(p->pid, o, err);
}

int rundir_read_pid(const struct rundir_paths *p, struct rundir_pid *ret, struct error *err)
{
	json_object *o, *pid, *start;
	int rc = read_json(p->pid, &o, err);

	if (rc < 0)
		return rc;
	if (!json_object_object_get_ex(o, "pid", &pid) || !json_object_is_type(pid, json_type_int) ||
	    !json_object_object_get_ex(o, "start_time", &start) ||
	    !json_object_is_type(start, json_type_int) || json_object_get_int(pid) <= 0) {
		json_object_put(o);
		return error_set(err, -EINVAL, "%s: needs integer 'pid' and 'start_time'", p->pid);
	}
	ret->pid = json_object_get_int(pid);
	ret->start_time = (uint64_t)json_object_get_int64(start);
	snprintf(ret->boot_id, sizeof(ret->boot_id), "%s", api_param_string(o, "boot_id", ""));
	json_object_put(o);
	return 0;
}

int rundir_write_exit(const struct rundir_paths *p, const struct rundir_exit *e,
		      struct error *err)
{
	json_object *o = json_object_new_object();
	char when[40];

	time_format_rfc3339(when, sizeof(when));
	json_object_object_add(o, "state", json_object_new_string(e->state));
	json_object_object_add(o, "reason", json_object_new_string(e->reason));
	json_object_object_add(o, "exit_status",
			       e->has_exit_status ? json_object_new_int64(e->exit_status) : NULL);
	json_object_object_add(o, "time", json_object_new_string(when));
	return write_json(p->exit, o, err);
}

int rundir_read_exit(const struct rundir_paths *p, struct rundir_exit *ret, struct error *err)
{
	json_object *o, *status;
	const char *state;
	int rc = read_json(p->exit, &o, err);

	if (rc < 0)
		return rc;
	state = api_param_string(o, "state", "");
	if (strcmp(state, "stopped") != 0 && strcmp(state, "crashed") != 0) {
		json_object_put(o);
		return error_set(err, -EINVAL, "%s: 'state' must be stopped or crashed", p->exit);
	}
	snprintf(ret->state, sizeof(ret->state), "%s", state);
	snprintf(ret->reason, sizeof(ret->reason), "%s", api_param_string(o, "reason", ""));
	status = api_param_get(o, "exit_status");
	ret->has_exit_status = json_object_is_type(status, json_type_int);
	ret->exit_status = ret->has_exit_status ? (uint32_t)json_object_get_int64(status) : 0;
	json_object_put(o);
	return 0;
}

void rundir_unpublish(const struct rundir_paths *p)
{
	unlink(p->pid);
	unlink(p->sock);
}

/* /proc/PID/cmdline holds "--worker" followed by name. */
static bool cmdline_is_worker(pid_t pid, const char *name)
{
	char path[64], buf[4096];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (size_t i = 0; i < n;) {
		const char *arg = buf + i;
		size_t len = strlen(arg);
		if (strcmp(arg, "--worker") == 0 && i + len + 1 < n)
			return strcmp(arg + len + 1, name) == 0;
		i += len + 1;
	}
	return false;
}

bool rundir_worker_alive(pid_t pid, uint64_t start_time, const char *name)
{
	uint64_t now_start;

	return process_start_time(pid, &now_start) == 0 && now_start == start_time &&
	       cmdline_is_worker(pid, name);
}
