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
static int check_address(const char *what, const char *s)
{
	char *end;

	errno = 0;
	strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-') {
		vmctl_error("%s must be a number like 0x1000 or 4096, got '%s'", what, s);
		return -EINVAL;
	}
	return 0;
}

int vmctl_parse_vcpu(const char *value, json_object *p)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno || end == value || *end || v < 0 || v > 4095) {
		vmctl_error("--vcpu needs a vCPU number, got '%s'", value);
		return -EINVAL;
	}
	json_object_object_add(p, "vcpu", json_object_new_int((int)v));
	return 0;
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

int vmctl_cmd_translate(struct vmctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vcpu", required_argument, NULL, 'c' }, { "write", no_argument, NULL, 'w' },
		{ "user", no_argument, NULL, 'u' },	  { "fetch", no_argument, NULL, 'f' },
		{ 0 },
	};
	const struct vmctl_command *cmd = vmctl_find_command("translate");
	json_object *p = json_object_new_object();
	const char *access = "read";
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'c' && vmctl_parse_vcpu(optarg, p) == 0)
			continue;
		if (opt == 'w' || opt == 'f') {
			if (strcmp(access, "read") != 0) {
				vmctl_error("--write and --fetch exclude each other");
				goto usage;
			}
			access = opt == 'w' ? "write" : "fetch";
			continue;
		}
		if (opt == 'u') {
			json_object_object_add(p, "user", json_object_new_boolean(true));
			continue;
		}
		goto usage;
	}
	if (argc - optind != 2 || check_address("GVA", argv[optind + 1]) < 0)
		goto usage;
	json_object_object_add(p, "name", json_object_new_string(argv[optind]));
	json_object_object_add(p, "gva", json_object_new_string(argv[optind + 1]));
	json_object_object_add(p, "access", json_object_new_string(access));
	return print_text_result(ctl, "vm.translate", p);
usage:
	json_object_put(p);
	vmctl_command_usage(cmd, stderr);
	return VMCTL_EXIT_USAGE;
}

int vmctl_cmd_role(struct vmctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { { "vcpu", required_argument, NULL, 'c' }, { 0 } };
	json_object *p = json_object_new_object();
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (opt != 'c' || vmctl_parse_vcpu(optarg, p) < 0)
			goto usage;
	if (argc - optind != 1)
		goto usage;
	json_object_object_add(p, "name", json_object_new_string(argv[optind]));
	return print_text_result(ctl, "vcpu.role", p);
usage:
	json_object_put(p);
	vmctl_command_usage(vmctl_find_command("role"), stderr);
	return VMCTL_EXIT_USAGE;
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

int vmctl_cmd_mem(struct vmctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vcpu", required_argument, NULL, 'c' }, { "virtual", no_argument, NULL, 'v' }, { 0 },
	};
	json_object *p = json_object_new_object(), *r;
	char *end;
	long len;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'v')
			json_object_object_add(p, "virtual", json_object_new_boolean(true));
		else if (opt != 'c' || vmctl_parse_vcpu(optarg, p) < 0)
			goto usage;
	}
	if (argc - optind != 4 || strcmp(argv[optind], "read") != 0 ||
	    check_address("ADDR", argv[optind + 2]) < 0)
		goto usage;
	errno = 0;
	len = strtol(argv[optind + 3], &end, 0);
	if (errno || *end || len < 1) {
		vmctl_error("LEN must be a positive number of bytes, got '%s'", argv[optind + 3]);
		goto usage;
	}
	json_object_object_add(p, "name", json_object_new_string(argv[optind + 1]));
	json_object_object_add(p, "addr", json_object_new_string(argv[optind + 2]));
	json_object_object_add(p, "len", json_object_new_int64(len));
	rc = vmctl_call(ctl, "vm.memory.read", p, &r);
	if (rc)
		return rc;
	rc = print_memory(ctl, r);
	json_object_put(r);
	return rc;
usage:
	json_object_put(p);
	vmctl_command_usage(vmctl_find_command("mem"), stderr);
	return VMCTL_EXIT_USAGE;
}
