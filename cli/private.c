/* SPDX-License-Identifier: MIT */
/*
 * A private vmmd for `vmctl run` when no daemon is reachable: its own
 * socket, state and run directories in a fresh temporary directory, started
 * from the vmmd next to vmctl (or on PATH), gone when vmctl is done. It
 * also dies with vmctl (PR_SET_PDEATHSIG) if vmctl is killed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/vmctl.h"
#include "util/path.h"

#define READY_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 10000

struct private_daemon {
	pid_t pid;
	char dir[PATH_MAX];
};

/* vmmd beside vmctl (build tree), in ../sbin (installed), else on PATH. */
static void find_vmmd(char *buf, size_t size)
{
	static const char *const candidates[] = { "/vmmd", "/../sbin/vmmd" };
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash)
			*slash = '\0';
		for (size_t i = 0; slash && i < sizeof(candidates) / sizeof(candidates[0]); i++)
			if (path_format(buf, size, "%s%s", self, candidates[i]) == 0 &&
			    access(buf, X_OK) == 0)
				return;
	}
	snprintf(buf, size, "vmmd");
}

static int make_temp_dir(char *buf, size_t size)
{
	const char *base = getenv("XDG_RUNTIME_DIR");

	if (!base || access(base, W_OK) != 0)
		base = "/tmp";
	snprintf(buf, size, "%s/vmctl-XXXXXX", base);
	return mkdtemp(buf) ? 0 : -errno;
}

static void exec_daemon(const char *dir, int ready_fd)
{
	char vmmd[PATH_MAX], sock[PATH_MAX + 16], state[PATH_MAX + 16], fd[16];

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	find_vmmd(vmmd, sizeof(vmmd));
	snprintf(sock, sizeof(sock), "%s/vmmd.sock", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(fd, sizeof(fd), "%d", ready_fd);
	execlp(vmmd, "vmmd", "--socket", sock, "--state-dir", state, "--run-dir", dir,
	       "--ready-fd", fd, "--log-level", "warning", (char *)NULL);
	fprintf(stderr, "vmctl: cannot start %s: %s\n", vmmd, strerror(errno));
	_exit(127);
}

static int wait_ready(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[8] = "";

	if (poll(&p, 1, READY_TIMEOUT_MS) <= 0)
		return -ETIMEDOUT;
	return read(fd, buf, sizeof(buf)) >= 5 && strncmp(buf, "READY", 5) == 0 ? 0 : -EIO;
}

static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char child[PATH_MAX];
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
		if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
			remove_tree(child);
		else
			unlink(child);
	}
	if (d)
		closedir(d);
	rmdir(path);
}

int private_daemon_start(struct private_daemon **ret, char *socket_path, size_t size)
{
	struct private_daemon *pd = calloc(1, sizeof(*pd));
	int pipefd[2], rc;

	if (!pd || make_temp_dir(pd->dir, sizeof(pd->dir)) < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		vmctl_error("cannot prepare a private vmmd: %s", strerror(errno));
		free(pd);
		return -1;
	}
	pd->pid = fork();
	if (pd->pid == 0) {
		close(pipefd[0]);
		fcntl(pipefd[1], F_SETFD, 0);
		exec_daemon(pd->dir, pipefd[1]);
	}
	close(pipefd[1]);
	rc = pd->pid < 0 ? -errno : wait_ready(pipefd[0]);
	close(pipefd[0]);
	if (rc < 0) {
		vmctl_error("no vmmd reachable, and a private one did not start: %s",
			    rc == -ETIMEDOUT ? "timed out" : "it exited");
		private_daemon_stop(pd);
		return -1;
	}
	snprintf(socket_path, size, "%s/vmmd.sock", pd->dir);
	*ret = pd;
	return 0;
}

static bool wait_exit(pid_t pid, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return true;
		usleep(10000);
	}
	return false;
}

void private_daemon_stop(struct private_daemon *pd)
{
	if (!pd)
		return;
	if (pd->pid > 0) {
		kill(pd->pid, SIGTERM);
		if (!wait_exit(pd->pid, STOP_TIMEOUT_MS)) {
			kill(pd->pid, SIGKILL);
			waitpid(pd->pid, NULL, 0);
		}
	}
	remove_tree(pd->dir);
	free(pd);
}
