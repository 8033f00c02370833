/* SPDX-License-Identifier: MIT */
/*
 * The console loop of `vmctl console` and `vmctl run`: guest output from
 * vm.console.output notifications goes to stdout, stdin goes to the guest
 * through vm.console.write, and the loop ends when the VM stops (a
 * vm.state-changed notification), on Ctrl-] in interactive mode, or when
 * vmmd goes away.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "api/jsonrpc.h"
#include "cli/vmctl.h"
#include "util/base64.h"
#include "util/fileio.h"

/* Ctrl-], as telnet and virsh use. */
#define DETACH_KEY 0x1d
#define INPUT_CHUNK 4096

static struct termios saved_termios;
static bool termios_saved;

static void restore_terminal(void)
{
	if (termios_saved)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
	termios_saved = false;
}

void vmctl_terminal_raw(void)
{
	struct termios raw;

	if (termios_saved || tcgetattr(STDIN_FILENO, &saved_termios) < 0)
		return;
	termios_saved = true;
	atexit(restore_terminal);
	raw = saved_termios;
	cfmakeraw(&raw);
	/* TCSANOW: keys typed ahead are input for the guest, not to be flushed. */
	tcsetattr(STDIN_FILENO, TCSANOW, &raw);
}

static void print_base64(const char *text)
{
	size_t len = strlen(text);
	uint8_t *buf = malloc(len / 4 * 3 + 3);
	long n = buf ? base64_decode(text, len, buf) : -1;

	if (n > 0)
		fd_write_all(STDOUT_FILENO, buf, (size_t)n);
	free(buf);
}

static const char *param_str(json_object *params, const char *key)
{
	json_object *v;

	if (!params || !json_object_object_get_ex(params, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Sends input, retrying what the guest's UART queue could not take yet. */
static int send_input(struct vmctl *ctl, const char *name, const uint8_t *buf, size_t len)
{
	char text[INPUT_CHUNK / 3 * 4 + 8];

	while (len > 0) {
		json_object *p = json_object_new_object();
		json_object *r = NULL, *acc;
		size_t n = len > INPUT_CHUNK ? INPUT_CHUNK : len, accepted;
		struct api_error err;

		base64_encode(buf, n, text);
		json_object_object_add(p, "name", json_object_new_string(name));
		json_object_object_add(p, "data", json_object_new_string(text));
		if (api_client_call(ctl->client, "vm.console.write", p, &r, &err) < 0) {
			vmctl_api_error(&err);
			return -1;
		}
		accepted = json_object_object_get_ex(r, "accepted", &acc)
				   ? (size_t)json_object_get_int64(acc)
				   : n;
		json_object_put(r);
		if (accepted == 0)
			sleep_ms(20);
		buf += accepted;
		len -= accepted;
	}
	return 0;
}

enum loop_event { LOOP_CONTINUE, LOOP_VM_ENDED, LOOP_DETACHED, LOOP_FAILED };

static enum loop_event handle_message(const char *name, json_object *msg)
{
	struct jsonrpc_msg m;
	json_object *id;
	struct api_error err;
	const char *state;

	if (jsonrpc_classify(msg, &m, &id, &err) < 0 || m.kind != JSONRPC_NOTIFICATION)
		return LOOP_CONTINUE;
	if (!param_str(m.params, "name") || strcmp(param_str(m.params, "name"), name) != 0)
		return LOOP_CONTINUE;
	if (strcmp(m.method, "vm.console.output") == 0) {
		const char *data = param_str(m.params, "data");
		if (data)
			print_base64(data);
		return LOOP_CONTINUE;
	}
	if (strcmp(m.method, "vm.state-changed") == 0) {
		state = param_str(m.params, "new");
		if (state && (strcmp(state, "stopped") == 0 || strcmp(state, "crashed") == 0))
			return LOOP_VM_ENDED;
	}
	return LOOP_CONTINUE;
}

static enum loop_event handle_stdin(struct vmctl *ctl, const char *name, bool interactive,
				    bool *stdin_open)
{
	uint8_t buf[INPUT_CHUNK];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	uint8_t *detach;

	if (n <= 0) {
		*stdin_open = false;
		return LOOP_CONTINUE;
	}
	detach = interactive ? memchr(buf, DETACH_KEY, (size_t)n) : NULL;
	if (detach)
		n = detach - buf;
	if (n > 0 && send_input(ctl, name, buf, (size_t)n) < 0)
		return LOOP_FAILED;
	return detach ? LOOP_DETACHED : LOOP_CONTINUE;
}

static enum loop_event wait_once(struct vmctl *ctl, const char *name, bool interactive,
				 bool *stdin_open)
{
	struct pollfd pfd[2] = {
		{ .fd = api_client_fd(ctl->client), .events = POLLIN },
		{ .fd = STDIN_FILENO, .events = POLLIN },
	};
	json_object *msg;
	struct api_error err;
	enum loop_event ev;

	if (api_client_has_queued(ctl->client) ||
	    poll(pfd, *stdin_open ? 2 : 1, -1) > 0) {
		if (*stdin_open && (pfd[1].revents & (POLLIN | POLLHUP)))
			return handle_stdin(ctl, name, interactive, stdin_open);
		if (!api_client_has_queued(ctl->client) && !pfd[0].revents)
			return LOOP_CONTINUE;
		if (api_client_next(ctl->client, -1, &msg, &err) < 0) {
			vmctl_api_error(&err);
			return LOOP_FAILED;
		}
		ev = handle_message(name, msg);
		json_object_put(msg);
		return ev;
	}
	return errno == EINTR ? LOOP_CONTINUE : LOOP_FAILED;
}

int vmctl_console_attach(struct vmctl *ctl, const char *name, bool history, char *state,
			 size_t state_size)
{
	json_object *p = json_object_new_object();
	json_object *r;
	int rc;

	json_object_object_add(p, "name", json_object_new_string(name));
	json_object_object_add(p, "history", json_object_new_boolean(history));
	rc = vmctl_call(ctl, "vm.console.attach", p, &r);
	if (rc)
		return rc;
	if (param_str(r, "history"))
		print_base64(param_str(r, "history"));
	snprintf(state, state_size, "%s", param_str(r, "state") ? param_str(r, "state") : "");
	json_object_put(r);
	return 0;
}

int vmctl_console_loop(struct vmctl *ctl, const char *name, bool interactive, bool forward_stdin,
		       json_object **ret_final_info)
{
	bool stdin_open = forward_stdin;
	enum loop_event ev = LOOP_CONTINUE;

	if (interactive)
		vmctl_terminal_raw();
	while (ev == LOOP_CONTINUE)
		ev = wait_once(ctl, name, interactive, &stdin_open);
	restore_terminal();
	if (ev == LOOP_FAILED)
		return VMCTL_EXIT_ERROR;
	if (ev == LOOP_DETACHED) {
		fprintf(stderr, "\nDetached from %s.\n", name);
		return VMCTL_EXIT_OK;
	}
	if (ret_final_info) {
		json_object *p = json_object_new_object();
		json_object_object_add(p, "name", json_object_new_string(name));
		return vmctl_call(ctl, "vm.info", p, ret_final_info);
	}
	return VMCTL_EXIT_OK;
}
