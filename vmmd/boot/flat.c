/* SPDX-License-Identifier: MIT */
/*
 * Raw flat binaries (docs/boot.md): the whole file is loaded at 1 MiB and
 * entered at its first byte in 32-bit flat protected mode, paging off, with
 * the stack just below the image and EAX = EBX = 0. There is no boot
 * information, so there is no way to pass a command line.
 */
#include "vmmd/boot/boot-internal.h"

static int flat_plan(const struct boot_kernel *k, const char *cmdline,
		     const struct vm_memory *mem, struct boot_plan *ret,
		     struct error *err)
{
	struct boot_plan plan = {
		.segment[0] = {
			.gpa = BOOT_FLAT_LOAD_ADDR,
			.offset = 0,
			.file_size = k->size,
			.mem_size = k->size,
			.what = "flat image",
		},
		.nr_segments = 1,
		.entry = BOOT_FLAT_LOAD_ADDR,
	};
	int r;

	if (cmdline && cmdline[0])
		return boot_error(k, err, -EINVAL,
				  "the flat boot protocol cannot pass a command line");
	if (k->size == 0)
		return boot_error(k, err, -ENOEXEC, "is empty");
	r = boot_plan_check(k, &plan, mem, err);
	if (r < 0)
		return r;
	*ret = plan;
	return 0;
}

static int flat_check(const struct boot_kernel *kernel, const char *cmdline,
		      const struct vm_memory *mem, struct error *err)
{
	struct boot_plan plan;

	return flat_plan(kernel, cmdline, mem, &plan, err);
}

static int flat_load(const struct boot_kernel *kernel, const char *cmdline,
		     struct vm_memory *mem, struct boot_entry *ret,
		     struct error *err)
{
	struct boot_plan plan;
	int r;

	r = flat_plan(kernel, cmdline, mem, &plan, err);
	if (r < 0)
		return r;
	r = boot_plan_copy(kernel, &plan, mem, err);
	if (r < 0)
		return r;
	return boot_entry_flat32(kernel, mem, BOOT_FLAT_LOAD_ADDR,
				 BOOT_FLAT_LOAD_ADDR, 0, 0, ret, err);
}

const struct boot_loader boot_loader_flat = {
	.name = "flat",
	.description = "raw binary at 0x100000, 32-bit entry at its first byte",
	.check = flat_check,
	.load = flat_load,
};
