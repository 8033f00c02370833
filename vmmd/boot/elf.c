/* SPDX-License-Identifier: MIT */
/*
 * ELF executables to load plans. Every field is read with memcpy() from
 * the untrusted image after its bounds are checked; nothing is trusted
 * because the header says so.
 */
#include "vmmd/boot/boot-internal.h"

#include <elf.h>
#include <string.h>

/* The fields of Elf32_Ehdr / Elf64_Ehdr the loader needs, widened. */
struct elf_header {
	unsigned int class;
	uint64_t entry;
	uint64_t phoff;
	unsigned int phentsize;
	unsigned int phnum;
};

struct elf_phdr {
	uint32_t type;
	uint64_t offset;
	uint64_t vaddr;
	uint64_t paddr;
	uint64_t filesz;
	uint64_t memsz;
};

static const char *elf_type_name(unsigned int type)
{
	switch (type) {
	case ET_NONE: return "ET_NONE";
	case ET_REL: return "ET_REL, an object file";
	case ET_EXEC: return "ET_EXEC";
	case ET_DYN: return "ET_DYN, position-independent";
	case ET_CORE: return "ET_CORE, a core dump";
	default: return "unknown";
	}
}

static int check_ident(const struct boot_kernel *k, struct error *err)
{
	const uint8_t *id = k->data;

	if (k->size < EI_NIDENT || memcmp(id, ELFMAG, SELFMAG) != 0)
		return boot_error(k, err, -ENOEXEC, "not an ELF file (no \\x7fELF magic)");
	if (id[EI_CLASS] != ELFCLASS32 && id[EI_CLASS] != ELFCLASS64)
		return boot_error(k, err, -ENOEXEC,
				  "unsupported ELF class %u (expected 1 for ELFCLASS32 or 2 for ELFCLASS64)",
				  id[EI_CLASS]);
	if (id[EI_DATA] != ELFDATA2LSB)
		return boot_error(k, err, -ENOEXEC,
				  "ELF data encoding %u is not little-endian (ELFDATA2LSB)",
				  id[EI_DATA]);
	if (id[EI_VERSION] != EV_CURRENT)
		return boot_error(k, err, -ENOEXEC, "unsupported ELF version %u",
				  id[EI_VERSION]);
	return 0;
}

static void read_header32(const uint8_t *data, struct elf_header *ret,
			  unsigned int *type, unsigned int *machine)
{
	Elf32_Ehdr h;

	memcpy(&h, data, sizeof(h));
	*type = h.e_type;
	*machine = h.e_machine;
	*ret = (struct elf_header){
		.class = ELFCLASS32,
		.entry = h.e_entry,
		.phoff = h.e_phoff,
		.phentsize = h.e_phentsize,
		.phnum = h.e_phnum,
	};
}

static void read_header64(const uint8_t *data, struct elf_header *ret,
			  unsigned int *type, unsigned int *machine)
{
	Elf64_Ehdr h;

	memcpy(&h, data, sizeof(h));
	*type = h.e_type;
	*machine = h.e_machine;
	*ret = (struct elf_header){
		.class = ELFCLASS64,
		.entry = h.e_entry,
		.phoff = h.e_phoff,
		.phentsize = h.e_phentsize,
		.phnum = h.e_phnum,
	};
}

static int check_phdr_table(const struct boot_kernel *k,
			    const struct elf_header *h, struct error *err)
{
	size_t want = h->class == ELFCLASS32 ? sizeof(Elf32_Phdr) : sizeof(Elf64_Phdr);
	uint64_t table = (uint64_t)h->phnum * h->phentsize;

	if (h->phentsize != want)
		return boot_error(k, err, -ENOEXEC,
				  "program header entry size e_phentsize %u, expected %zu",
				  h->phentsize, want);
	if (h->phnum == 0)
		return boot_error(k, err, -ENOEXEC, "no program headers (e_phnum is 0)");
	if (h->phnum > BOOT_ELF_MAX_PHDRS)
		return boot_error(k, err, -ENOEXEC,
				  "%u program headers (e_phnum), more than the limit of %d",
				  h->phnum, BOOT_ELF_MAX_PHDRS);
	if (h->phoff > k->size || table > k->size - h->phoff)
		return boot_error(k, err, -ENOEXEC,
				  "truncated program header table: %u entries at offset 0x%llx need %llu bytes, the file has %zu",
				  h->phnum, (unsigned long long)h->phoff,
				  (unsigned long long)h->phoff + table, k->size);
	return 0;
}

static int read_header(const struct boot_kernel *k, struct elf_header *ret,
		       struct error *err)
{
	unsigned int type, machine, want_machine;
	size_t ehsize;
	int r;

	r = check_ident(k, err);
	if (r < 0)
		return r;
	ehsize = k->data[EI_CLASS] == ELFCLASS32 ? sizeof(Elf32_Ehdr) : sizeof(Elf64_Ehdr);
	if (k->size < ehsize)
		return boot_error(k, err, -ENOEXEC,
				  "truncated ELF header: the file has %zu bytes, the header needs %zu",
				  k->size, ehsize);
	if (k->data[EI_CLASS] == ELFCLASS32) {
		read_header32(k->data, ret, &type, &machine);
		want_machine = EM_386;
	} else {
		read_header64(k->data, ret, &type, &machine);
		want_machine = EM_X86_64;
	}
	if (type != ET_EXEC)
		return boot_error(k, err, -ENOEXEC,
				  "ELF type %u (%s), expected ET_EXEC (2), an executable",
				  type, elf_type_name(type));
	if (machine != want_machine)
		return boot_error(k, err, -ENOEXEC,
				  "ELF machine %u, expected %s (%u) for a %d-bit ELF",
				  machine, want_machine == EM_386 ? "EM_386" : "EM_X86_64",
				  want_machine, ret->class == ELFCLASS32 ? 32 : 64);
	return check_phdr_table(k, ret, err);
}

static void read_phdr(const struct boot_kernel *k, const struct elf_header *h,
		      unsigned int index, struct elf_phdr *ret)
{
	const uint8_t *p = k->data + h->phoff + (uint64_t)index * h->phentsize;

	if (h->class == ELFCLASS32) {
		Elf32_Phdr ph;
		memcpy(&ph, p, sizeof(ph));
		*ret = (struct elf_phdr){
			.type = ph.p_type, .offset = ph.p_offset,
			.vaddr = ph.p_vaddr, .paddr = ph.p_paddr,
			.filesz = ph.p_filesz, .memsz = ph.p_memsz,
		};
	} else {
		Elf64_Phdr ph;
		memcpy(&ph, p, sizeof(ph));
		*ret = (struct elf_phdr){
			.type = ph.p_type, .offset = ph.p_offset,
			.vaddr = ph.p_vaddr, .paddr = ph.p_paddr,
			.filesz = ph.p_filesz, .memsz = ph.p_memsz,
		};
	}
}

static int check_load_phdr(const struct boot_kernel *k, unsigned int index,
			   const struct elf_phdr *ph, struct error *err)
{
	if (ph->filesz > ph->memsz)
		return boot_error(k, err, -ENOEXEC,
				  "program header %u: p_filesz 0x%llx is larger than p_memsz 0x%llx",
				  index, (unsigned long long)ph->filesz,
				  (unsigned long long)ph->memsz);
	if (ph->offset > k->size || ph->filesz > k->size - ph->offset)
		return boot_error(k, err, -ENOEXEC,
				  "program header %u: file bytes [0x%llx, 0x%llx) extend beyond the end of the file (%zu bytes)",
				  index, (unsigned long long)ph->offset,
				  (unsigned long long)(ph->offset + ph->filesz), k->size);
	return 0;
}

static bool contains_vaddr(const struct elf_phdr *ph, uint64_t vaddr)
{
	return vaddr >= ph->vaddr && vaddr - ph->vaddr < ph->memsz;
}

int boot_elf_plan(const struct boot_kernel *kernel, struct boot_plan *ret,
		  struct error *err)
{
	struct boot_plan plan = { 0 };
	struct elf_header h = { 0 };
	bool have_entry = false;
	int r;

	r = read_header(kernel, &h, err);
	if (r < 0)
		return r;
	for (unsigned int i = 0; i < h.phnum; i++) {
		struct elf_phdr ph;
		struct boot_segment s;

		read_phdr(kernel, &h, i, &ph);
		if (ph.type != PT_LOAD)
			continue;
		r = check_load_phdr(kernel, i, &ph, err);
		if (r < 0)
			return r;
		if (ph.memsz == 0)
			continue;
		s = (struct boot_segment){
			.gpa = ph.paddr,
			.offset = ph.offset,
			.file_size = ph.filesz,
			.mem_size = ph.memsz,
		};
		snprintf(s.what, sizeof(s.what), "program header %u", i);
		r = boot_plan_add(kernel, &plan, &s, err);
		if (r < 0)
			return r;
		/* The entry point is virtual; the CPU starts with paging off. */
		if (!have_entry && contains_vaddr(&ph, h.entry)) {
			plan.entry = ph.paddr + (h.entry - ph.vaddr);
			have_entry = true;
		}
	}
	if (plan.nr_segments == 0)
		return boot_error(kernel, err, -ENOEXEC,
				  "no loadable segment (PT_LOAD with p_memsz > 0)");
	if (!have_entry)
		return boot_error(kernel, err, -ENOEXEC,
				  "entry point 0x%llx lies outside the loaded image",
				  (unsigned long long)h.entry);
	*ret = plan;
	return 0;
}
