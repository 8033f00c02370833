/* SPDX-License-Identifier: MIT */
/*
 * Loader table, kernel file reading, and the load-plan checks every
 * protocol shares.
 */
#include "vmmd/boot/boot-internal.h"

#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

/* Adding a protocol: one file defining its struct boot_loader, one line here. */
static const struct boot_loader *const boot_loaders[] = {
	&boot_loader_multiboot,
	&boot_loader_flat,
};

const struct boot_loader *boot_loader_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(boot_loaders); i++)
		if (strcmp(boot_loaders[i]->name, name) == 0)
			return boot_loaders[i];
	return NULL;
}

int boot_loader_get(const char *name, const struct boot_loader **ret,
		    struct error *err)
{
	const struct boot_loader *loader = boot_loader_find(name);
	char names[128] = "";

	if (loader) {
		*ret = loader;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(boot_loaders); i++) {
		if (i > 0)
			strncat(names, ", ", sizeof(names) - strlen(names) - 1);
		strncat(names, boot_loaders[i]->name, sizeof(names) - strlen(names) - 1);
	}
	return error_set(err, -EINVAL, "unknown boot protocol '%s' (supported: %s)",
			 name, names);
}

int boot_error(const struct boot_kernel *kernel, struct error *err, int code,
	       const char *fmt, ...)
{
	char msg[ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return error_set(err, code, "kernel '%s': %s", kernel->name, msg);
}

/* ---------------------------------------------------------------- files */

static int read_all(int fd, uint8_t *buf, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = read(fd, buf + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negative_errno();
		if (n == 0)
			return -EIO; /* the file shrank after fstat() */
		done += (size_t)n;
	}
	return 0;
}

static int file_error(const char *path, struct error *err, int code,
		      const char *what)
{
	return error_set(err, code, "kernel '%s': %s", path, what);
}

int boot_read_kernel(const char *path, uint64_t max_size,
		     struct boot_kernel *ret, struct error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_free_ char *name = NULL;
	struct stat st;
	int r;

	/* O_NONBLOCK: a FIFO must not hang the daemon in open(). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		r = negative_errno();
		return file_error(path, err, r, strerror(-r));
	}
	if (fstat(fd, &st) < 0) {
		r = negative_errno();
		return file_error(path, err, r, strerror(-r));
	}
	if (S_ISDIR(st.st_mode))
		return file_error(path, err, -EISDIR, "is a directory, not a kernel image");
	if (!S_ISREG(st.st_mode))
		return file_error(path, err, -EINVAL, "is not a regular file");
	if (st.st_size == 0)
		return file_error(path, err, -ENOEXEC, "is empty");
	if ((uint64_t)st.st_size > max_size)
		return error_set(err, -EFBIG,
				 "kernel '%s': %llu bytes is more than the limit of %llu bytes",
				 path, (unsigned long long)st.st_size,
				 (unsigned long long)max_size);

	data = malloc((size_t)st.st_size);
	name = strdup(path);
	if (!data || !name)
		return file_error(path, err, -ENOMEM, "out of memory reading it");
	r = read_all(fd, data, (size_t)st.st_size);
	if (r == -EIO)
		return file_error(path, err, r, "file shrank while reading it");
	if (r < 0)
		return error_set(err, r, "kernel '%s': read: %s", path, strerror(-r));

	*ret = (struct boot_kernel){
		.name = TAKE_PTR(name),
		.data = TAKE_PTR(data),
		.size = (size_t)st.st_size,
	};
	return 0;
}

void boot_kernel_release(struct boot_kernel *kernel)
{
	free((void *)kernel->name);
	free((void *)kernel->data);
	*kernel = (struct boot_kernel){ 0 };
}

/* ---------------------------------------------------------------- plans */

bool boot_ranges_overlap(uint64_t start, uint64_t size, uint64_t other,
			 uint64_t other_size)
{
	return start < other + other_size && other < start + size;
}

int boot_plan_add(const struct boot_kernel *kernel, struct boot_plan *plan,
		  const struct boot_segment *segment, struct error *err)
{
	if (plan->nr_segments >= BOOT_MAX_SEGMENTS)
		return boot_error(kernel, err, -EOPNOTSUPP,
				  "more than %d loadable segments", BOOT_MAX_SEGMENTS);
	plan->segment[plan->nr_segments++] = *segment;
	return 0;
}

static int check_segment(const struct boot_kernel *kernel,
			 const struct boot_segment *s,
			 const struct vm_memory *mem, struct error *err)
{
	unsigned long long start = s->gpa, end = s->gpa + s->mem_size;

	if (s->gpa + s->mem_size < s->gpa)
		return boot_error(kernel, err, -ENOEXEC,
				  "%s: segment at 0x%llx of 0x%llx bytes overflows the 64-bit address space",
				  s->what, start, (unsigned long long)s->mem_size);
	if (end > VM_MEM_HOLE_END)
		return boot_error(kernel, err, -ERANGE,
				  "%s: segment [0x%llx, 0x%llx) reaches above 4 GiB, out of reach of a 32-bit entry",
				  s->what, start, end);
	if (boot_ranges_overlap(s->gpa, s->mem_size, VM_MEM_HOLE_START,
				VM_MEM_HOLE_END - VM_MEM_HOLE_START))
		return boot_error(kernel, err, -ERANGE,
				  "%s: segment [0x%llx, 0x%llx) lies in the PCI hole [0x%llx, 0x%llx)",
				  s->what, start, end, VM_MEM_HOLE_START, VM_MEM_HOLE_END);
	if (!vm_memory_is_ram(mem, s->gpa, s->mem_size))
		return boot_error(kernel, err, -ERANGE,
				  "%s: segment [0x%llx, 0x%llx) lies beyond guest RAM (%llu MiB)",
				  s->what, start, end,
				  (unsigned long long)(mem->ram_size >> 20));
	if (boot_ranges_overlap(s->gpa, s->mem_size, BOOT_AREA_START,
				BOOT_AREA_END - BOOT_AREA_START))
		return boot_error(kernel, err, -ERANGE,
				  "%s: segment [0x%llx, 0x%llx) overlaps the boot information area [0x%llx, 0x%llx)",
				  s->what, start, end, BOOT_AREA_START, BOOT_AREA_END);
	return 0;
}

static int check_segments_apart(const struct boot_kernel *kernel,
				const struct boot_plan *plan, struct error *err)
{
	for (unsigned int i = 0; i < plan->nr_segments; i++) {
		const struct boot_segment *a = &plan->segment[i];
		for (unsigned int j = i + 1; j < plan->nr_segments; j++) {
			const struct boot_segment *b = &plan->segment[j];
			if (boot_ranges_overlap(a->gpa, a->mem_size, b->gpa, b->mem_size))
				return boot_error(kernel, err, -ENOEXEC,
						  "%s and %s: segments [0x%llx, 0x%llx) and [0x%llx, 0x%llx) overlap",
						  a->what, b->what,
						  (unsigned long long)a->gpa,
						  (unsigned long long)(a->gpa + a->mem_size),
						  (unsigned long long)b->gpa,
						  (unsigned long long)(b->gpa + b->mem_size));
		}
	}
	return 0;
}

static bool entry_is_loaded(const struct boot_plan *plan)
{
	for (unsigned int i = 0; i < plan->nr_segments; i++) {
		const struct boot_segment *s = &plan->segment[i];
		if (plan->entry >= s->gpa && plan->entry - s->gpa < s->mem_size)
			return true;
	}
	return false;
}

int boot_plan_check(const struct boot_kernel *kernel,
		    const struct boot_plan *plan, const struct vm_memory *mem,
		    struct error *err)
{
	int r;

	if (plan->nr_segments == 0)
		return boot_error(kernel, err, -ENOEXEC, "nothing to load: no segment has a size");
	if (!vm_memory_is_ram(mem, BOOT_AREA_START, BOOT_AREA_END - BOOT_AREA_START))
		return boot_error(kernel, err, -ERANGE,
				  "guest RAM of %llu bytes does not hold the boot information area [0x%llx, 0x%llx)",
				  (unsigned long long)mem->ram_size, BOOT_AREA_START,
				  BOOT_AREA_END);
	for (unsigned int i = 0; i < plan->nr_segments; i++) {
		r = check_segment(kernel, &plan->segment[i], mem, err);
		if (r < 0)
			return r;
	}
	r = check_segments_apart(kernel, plan, err);
	if (r < 0)
		return r;
	if (!entry_is_loaded(plan))
		return boot_error(kernel, err, -ENOEXEC,
				  "entry point 0x%llx lies outside the loaded image",
				  (unsigned long long)plan->entry);
	return 0;
}

int boot_plan_copy(const struct boot_kernel *kernel,
		   const struct boot_plan *plan, struct vm_memory *mem,
		   struct error *err)
{
	for (unsigned int i = 0; i < plan->nr_segments; i++) {
		const struct boot_segment *s = &plan->segment[i];
		uint8_t *dst = vm_memory_ptr(mem, s->gpa, s->mem_size);

		if (!dst)
			return boot_error(kernel, err, -EFAULT,
					  "%s: guest RAM at 0x%llx is not mapped",
					  s->what, (unsigned long long)s->gpa);
		memcpy(dst, kernel->data + s->offset, s->file_size);
		memset(dst + s->file_size, 0, s->mem_size - s->file_size);
	}
	return 0;
}

int boot_cmdline_check(const struct boot_kernel *kernel, const char *cmdline,
		       struct error *err)
{
	size_t len = cmdline ? strnlen(cmdline, BOOT_CMDLINE_MAX + 1) : 0;

	if (len > BOOT_CMDLINE_MAX)
		return boot_error(kernel, err, -E2BIG,
				  "command line is longer than the limit of %d bytes",
				  BOOT_CMDLINE_MAX);
	return 0;
}

/* ---------------------------------------------------------------- entry */

/*
 * SDM Vol. 3 3.4.5 segment descriptors, base 0 and limit 0xFFFFF with G=1
 * and D/B=1: 0x9B = present, ring 0, code, execute/read, accessed; 0x93 =
 * present, ring 0, data, read/write, accessed. Accessed is preset so the
 * CPU never writes to the table.
 */
static const uint64_t boot_gdt[BOOT_GDT_ENTRIES] = {
	[BOOT_CODE_SELECTOR >> 3] = 0x00CF9B000000FFFFULL,
	[BOOT_DATA_SELECTOR >> 3] = 0x00CF93000000FFFFULL,
};

int boot_entry_flat32(const struct boot_kernel *kernel, struct vm_memory *mem,
		      uint32_t eip, uint32_t esp, uint32_t eax, uint32_t ebx,
		      struct boot_entry *ret, struct error *err)
{
	void *gdt = vm_memory_ptr(mem, BOOT_GDT_ADDR, sizeof(boot_gdt));

	if (!gdt)
		return boot_error(kernel, err, -EFAULT,
				  "guest RAM for the GDT at 0x%llx is not mapped",
				  BOOT_GDT_ADDR);
	memcpy(gdt, boot_gdt, sizeof(boot_gdt));
	*ret = (struct boot_entry){
		.eip = eip,
		.esp = esp,
		.eax = eax,
		.ebx = ebx,
		.eflags = BOOT_EFLAGS_FIXED,
		.cr0 = BOOT_CR0_PE | BOOT_CR0_ET,
		.gdt_base = BOOT_GDT_ADDR,
		.gdt_limit = sizeof(boot_gdt) - 1,
		.code_selector = BOOT_CODE_SELECTOR,
		.data_selector = BOOT_DATA_SELECTOR,
	};
	return 0;
}
