/* SPDX-License-Identifier: MIT */
#include "vmmd/worker/memory.h"

#include <string.h>
#include <sys/mman.h>

void vm_memory_layout(uint64_t ram_size, struct vm_memory *ret)
{
	uint64_t low = MIN(ram_size, VM_MEM_HOLE_START);

	memset(ret, 0, sizeof(*ret));
	ret->ram_size = ram_size;
	ret->region[0] = (struct vm_mem_region){ .gpa = 0, .size = low };
	ret->nr_regions = 1;
	if (ram_size > low) {
		ret->region[1] = (struct vm_mem_region){
			.gpa = VM_MEM_HOLE_END,
			.size = ram_size - low,
		};
		ret->nr_regions = 2;
	}
}

int vm_memory_map(struct vm_memory *mem, struct error *err)
{
	for (unsigned int i = 0; i < mem->nr_regions; i++) {
		struct vm_mem_region *r = &mem->region[i];
		void *p = mmap(NULL, r->size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) {
			int code = negative_errno();
			vm_memory_unmap(mem);
			return error_set(err, code,
					 "mmap of %llu MiB guest RAM at 0x%llx: %s",
					 (unsigned long long)(r->size >> 20),
					 (unsigned long long)r->gpa, strerror(-code));
		}
		r->hva = p;
	}
	return 0;
}

void vm_memory_unmap(struct vm_memory *mem)
{
	for (unsigned int i = 0; i < mem->nr_regions; i++) {
		struct vm_mem_region *r = &mem->region[i];
		if (r->hva)
			munmap(r->hva, r->size);
		r->hva = NULL;
	}
}

static const struct vm_mem_region *region_of(const struct vm_memory *mem,
					      uint64_t gpa, uint64_t len)
{
	if (gpa + len < gpa)
		return NULL;
	for (unsigned int i = 0; i < mem->nr_regions; i++) {
		const struct vm_mem_region *r = &mem->region[i];
		if (gpa >= r->gpa && gpa + len <= r->gpa + r->size)
			return r;
	}
	return NULL;
}

void *vm_memory_ptr(const struct vm_memory *mem, uint64_t gpa, uint64_t len)
{
	const struct vm_mem_region *r = region_of(mem, gpa, len);

	if (!r || !r->hva)
		return NULL;
	return r->hva + (gpa - r->gpa);
}

bool vm_memory_is_ram(const struct vm_memory *mem, uint64_t gpa, uint64_t len)
{
	return region_of(mem, gpa, len) != NULL;
}
