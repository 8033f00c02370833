/* SPDX-License-Identifier: MIT */
/* vmctl translate, mem read and role: guest inspection through vmmd. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/vmctl.h"
#include "util/base64.h"

#define HEXDUMP_WIDTH 16

/* Addresses pass to vmmd as strings ("0x1000" or decimal), checked here. */
static bool is_address(const char *s)
{
	char *end;

	errno = 0;
	strtoull(s, &end, 0);
	return !errno && end != s && !*end && s[0] != '-';
}

static int bad_address(const struct vmctl_command *cmd, const char *what, const char *s)
{
	return vmctl_usage_error(cmd, "%s: %s must be a number like 0x1000 or 4096, got '%s'",
				 cmd->name, what, s);
}

/* vmctl_args.option of commands whose only option is --vcpu N. */
static int vcpu_option(int opt, const char *value, void *params)
{
	return vmctl_parse_vcpu(value, params);
}

static const char *result_text(json_object *r)
{
	json_object *t;

	return json_object_object_get_ex(r, "text", &t) ? json_object_get_string(t) : "";
}

static int print_text_result(struct vmctl *ctl, const char *method, json_object *p)
{
	json_object *r;
	int rc = vmctl_call(ctl, method, p, &r);

	if (rc)
		return rc;
	if (ctl->json) {
		vmctl_print(ctl, r, NULL);
	} else {
		const char *text = result_text(r);
		size_t len = strlen(text);
		printf("%s%s", text, len && text[len - 1] == '\n' ? "" : "\n");
	}
	json_object_put(r);
	return VMCTL_EXIT_OK;
}

static const struct option vcpu_options[] = {
	{ "vcpu", required_argument, NULL, 'c' },
	{ 0 },
};

struct translate_options {
	json_object *params;
	const char *access;
};

static int translate_option(int opt, const char *value, void *ctx)
{
	struct translate_options *o = ctx;

	switch (opt) {
	case 'c':
		return vmctl_parse_vcpu(value, o->params);
	case 'w':
	case 'f':
		if (strcmp(o->access, "read") != 0) {
			vmctl_error("translate: --write and --fetch exclude each other");
			return -EINVAL;
		}
		o->access = opt == 'w' ? "write" : "fetch";
		return 0;
	case 'u':
		json_object_object_add(o->params, "user", json_object_new_boolean(true));
		return 0;
	}
	return -EINVAL;
}

static int translate(struct vmctl *ctl, int argc, char **argv, struct translate_options *o)
{
	static const struct option opts[] = {
		{ "vcpu", required_argument, NULL, 'c' }, { "write", no_argument, NULL, 'w' },
		{ "user", no_argument, NULL, 'u' },	  { "fetch", no_argument, NULL, 'f' },
		{ 0 },
	};
	const struct vmctl_command *cmd = vmctl_find_command("translate");
	struct vmctl_args args = { .options = opts, .option = translate_option, .ctx = o,
				   .min_args = 2, .max_args = 2 };
	int rc = vmctl_parse_args(cmd, argc, argv, &args);

	if (rc)
		return rc;
	if (!is_address(argv[optind + 1]))
		return bad_address(cmd, "GVA", argv[optind + 1]);
	json_object_object_add(o->params, "name", json_object_new_string(argv[optind]));
	json_object_object_add(o->params, "gva", json_object_new_string(argv[optind + 1]));
	json_object_object_add(o->params, "access", json_object_new_string(o->access));
	return print_text_result(ctl, "vm.translate", json_object_get(o->params));
}

int vmctl_cmd_translate(struct vmctl *ctl, int argc, char **argv)
{
	struct translate_options o = { .params = json_object_new_object(), .access = "read" };
	int rc = translate(ctl, argc, argv, &o);

	json_object_put(o.params);
	return rc;
}

int vmctl_parse_vcpu_command(const char *name, int argc, char **argv, json_object *params)
{
	struct vmctl_args args = { .options = vcpu_options, .option = vcpu_option,
				   .ctx = params, .min_args = 1, .max_args = 1 };
	int rc = vmctl_parse_args(vmctl_find_command(name), argc, argv, &args);

	if (rc == 0)
		json_object_object_add(params, "name", json_object_new_string(argv[optind]));
	return rc;
}

int vmctl_cmd_role(struct vmctl *ctl, int argc, char **argv)
{
	json_object *p = json_object_new_object();
	int rc = vmctl_parse_vcpu_command("role", argc, argv, p);

	if (rc) {
		json_object_put(p);
		return rc;
	}
	return print_text_result(ctl, "vcpu.role", p);
}

/* hexdump -C style: offset, 16 bytes in hex, the printable ones as text. */
static void hexdump(unsigned long long base, const uint8_t *buf, size_t len)
{
	for (size_t off = 0; off < len; off += HEXDUMP_WIDTH) {
		size_t n = len - off < HEXDUMP_WIDTH ? len - off : HEXDUMP_WIDTH;
		printf("%016llx ", base + off);
		for (size_t i = 0; i < HEXDUMP_WIDTH; i++) {
			if (i == 8)
				putchar(' ');
			if (i < n)
				printf(" %02x", buf[off + i]);
			else
				printf("   ");
		}
		printf("  |");
		for (size_t i = 0; i < n; i++)
			putchar(buf[off + i] >= 0x20 && buf[off + i] < 0x7f ? buf[off + i] : '.');
		printf("|\n");
	}
}

static int print_memory(struct vmctl *ctl, json_object *r)
{
	json_object *data, *addr;
	const char *text;
	uint8_t *buf;
	long n;

	if (ctl->json) {
		vmctl_print(ctl, r, NULL);
		return VMCTL_EXIT_OK;
	}
	if (!json_object_object_get_ex(r, "data", &data) ||
	    !json_object_object_get_ex(r, "addr", &addr)) {
		vmctl_error("malformed reply from vmmd");
		return VMCTL_EXIT_ERROR;
	}
	text = json_object_get_string(data);
	buf = malloc(strlen(text) / 4 * 3 + 3);
	n = buf ? base64_decode(text, strlen(text), buf) : -ENOMEM;
	if (n < 0) {
		free(buf);
		vmctl_error("malformed data from vmmd");
		return VMCTL_EXIT_ERROR;
	}
	hexdump(strtoull(json_object_get_string(addr), NULL, 0), buf, (size_t)n);
	free(buf);
	return VMCTL_EXIT_OK;
}

static int mem_option(int opt, const char *value, void *params)
{
	if (opt == 'v') {
		json_object_object_add(params, "virtual", json_object_new_boolean(true));
		return 0;
	}
	return vmctl_parse_vcpu(value, params);
}

/* "read NAME ADDR LEN" into params. */
static int mem_read_args(const struct vmctl_command *cmd, char **pos, json_object *params)
{
	char *end;
	long len;

	if (strcmp(pos[0], "read") != 0)
		return vmctl_usage_error(cmd, "mem: unknown subcommand '%s' (there is: read)",
					 pos[0]);
	if (!is_address(pos[2]))
		return bad_address(cmd, "ADDR", pos[2]);
	errno = 0;
	len = strtol(pos[3], &end, 0);
	if (errno || end == pos[3] || *end || len < 1)
		return vmctl_usage_error(cmd, "mem: LEN must be a positive number of bytes, got '%s'",
					 pos[3]);
	json_object_object_add(params, "name", json_object_new_string(pos[1]));
	json_object_object_add(params, "addr", json_object_new_string(pos[2]));
	json_object_object_add(params, "len", json_object_new_int64(len));
	return 0;
}

int vmctl_cmd_mem(struct vmctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vcpu", required_argument, NULL, 'c' }, { "virtual", no_argument, NULL, 'v' }, { 0 },
	};
	const struct vmctl_command *cmd = vmctl_find_command("mem");
	json_object *p = json_object_new_object(), *r;
	struct vmctl_args args = { .options = opts, .option = mem_option, .ctx = p,
				   .min_args = 4, .max_args = 4 };
	int rc;

	rc = vmctl_parse_args(cmd, argc, argv, &args);
	if (rc == 0)
		rc = mem_read_args(cmd, argv + optind, p);
	if (rc) {
		json_object_put(p);
		return rc;
	}
	rc = vmctl_call(ctl, "vm.memory.read", p, &r);
	if (rc)
		return rc;
	rc = print_memory(ctl, r);
	json_object_put(r);
	return rc;
}
