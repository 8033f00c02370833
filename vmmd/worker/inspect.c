/* SPDX-License-Identifier: MIT */
/*
 * Guest inspection on a live VM: a vCPU's MMU role, address translation
 * with the full walk, and guest memory reads by physical or virtual
 * address. The vCPU's registers are read on its own thread between two
 * KVM_RUNs (vcpu_call), the role and walk come from mmu/, and page tables
 * are read straight from guest RAM without ever setting an A/D bit.
 *
 * On a running VM this is a snapshot: the guest may change its registers
 * or page tables right after. Pause the VM first for a consistent view.
 */
#include "vmmd/worker/inspect.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "mmu/mmu.h"
#include "util/base64.h"
#include "util/macro.h"
#include "vcpu/cpuid.h"
#include "vcpu/state.h"
#include "vcpu/vcpu.h"
#include "vmmd/worker/memory.h"
#include "vmmd/worker/vm.h"

/* Room for any formatted walk or role. */
#define INSPECT_TEXT_MAX 8192

struct paging_state {
	struct mmu_role_regs regs;
	union mmu_role role;  /* with the vCPU's SMM and guest-mode flags */
	unsigned int flags;   /* those flags, MMU_CTX_* */
	uint64_t cr3;
	uint64_t pdptrs[4];
	bool pdptrs_valid;
	uint64_t rflags;
	uint32_t pkru;
	uint32_t pkru_offset; /* input: where PKRU is in the XSAVE area */
};

#define RFLAGS_AC (1ULL << 18)

/* PKRU from the XSAVE area (component 9), when the guest enabled keys. */
static void read_pkru(int fd, struct paging_state *ps)
{
	struct kvm_xsave *xs;

	if (!(ps->regs.cr4 & MMU_CR4_PKE) || !ps->pkru_offset ||
	    ps->pkru_offset + sizeof(uint32_t) > sizeof(xs->region))
		return;
	xs = calloc(1, sizeof(*xs));
	if (xs && ioctl(fd, KVM_GET_XSAVE, xs) == 0)
		memcpy(&ps->pkru, (const uint8_t *)xs->region + ps->pkru_offset, sizeof(ps->pkru));
	free(xs);
}

/*
 * Runs on the vCPU's thread (vcpu_call). The role is vcpu/'s: the snapshot
 * vmmd keeps while the vCPU is stopped, else computed from the registers
 * with SMM (KVM_GET_VCPU_EVENTS) and guest mode (KVM_GET_NESTED_STATE, where
 * KVM has it) as MMU.md §1.1 requires.
 */
static int read_paging_state(struct vcpu *v, void *arg)
{
	struct paging_state *ps = arg;
	struct kvm_sregs2 s;
	struct kvm_regs r;
	struct error e;

	if (vcpu_get_sregs2(v, &s, &e) < 0 || vcpu_get_regs(v, &r, &e) < 0 ||
	    vcpu_get_mmu_role(v, &ps->role, &ps->regs, &e) < 0)
		return e.code;
	ps->flags = (ps->role.smm ? MMU_CTX_SMM : 0) | (ps->role.guest_mode ? MMU_CTX_GUEST_MODE : 0);
	ps->cr3 = s.cr3;
	ps->rflags = r.rflags;
	if (s.flags & KVM_SREGS2_FLAGS_PDPTRS_VALID) {
		memcpy(ps->pdptrs, s.pdptrs, sizeof(ps->pdptrs));
		ps->pdptrs_valid = true;
	}
	read_pkru(vcpu_fd(v), ps);
	return 0;
}

int inspect_on_vcpu(struct vm *vm, unsigned int index, int (*fn)(struct vcpu *, void *), void *arg,
		    struct api_error *err)
{
	struct vcpu *v = vm_vcpu(vm, index);
	int rc;

	if (!v)
		return api_error_set(err, API_ERR_INVALID_PARAMS,
				     "parameter 'vcpu' must be between 0 and %u, got %u",
				     vm_nr_vcpus(vm) - 1, index);
	rc = vcpu_call(v, fn, arg);
	if (rc < 0)
		return api_error_set(err, API_ERR_KVM, "reading the state of vcpu %u: %s", index,
				     strerror(-rc));
	return 0;
}

static int get_paging_state(struct vm *vm, unsigned int index, struct paging_state *ret,
			    struct api_error *err)
{
	*ret = (struct paging_state){ .pkru_offset = vm_pkru_offset(vm) };
	return inspect_on_vcpu(vm, index, read_paging_state, ret, err);
}

static json_object *hex(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	return json_object_new_string(buf);
}

int inspect_role(struct vm *vm, unsigned int index, json_object **ret, struct api_error *err)
{
	char text[INSPECT_TEXT_MAX];
	struct paging_state ps;
	union mmu_role role;
	json_object *r, *role_json;
	int rc = get_paging_state(vm, index, &ps, err);

	if (rc < 0)
		return rc;
	role = ps.role;
	if (mmu_role_format(role, MMU_FORMAT_JSON, text, sizeof(text), NULL) < 0 ||
	    !(role_json = json_tokener_parse(text)))
		return api_error_set(err, API_ERR_INTERNAL, "cannot format the role");
	r = json_object_new_object();
	json_object_object_add(r, "vcpu", json_object_new_int((int)index));
	json_object_object_add(r, "mode", json_object_new_string(
						  mmu_paging_mode_name(mmu_role_mode(role))));
	json_object_object_add(r, "cr0", hex(ps.regs.cr0));
	json_object_object_add(r, "cr3", hex(ps.cr3));
	json_object_object_add(r, "cr4", hex(ps.regs.cr4));
	json_object_object_add(r, "efer", hex(ps.regs.efer));
	json_object_object_add(r, "role", role_json);
	if (mmu_role_format(role, MMU_FORMAT_TEXT, text, sizeof(text), NULL) == 0)
		json_object_object_add(r, "text", json_object_new_string(text));
	*ret = r;
	return 0;
}

/* Guest RAM as mmu/ reaches it: direct, no callbacks, no writes. */
static void guest_ram(struct vm *vm, struct mmu_ram_region regions[VM_MEM_MAX_REGIONS],
		      struct mmu_memory *ret)
{
	const struct vm_memory *mem = vm_guest_memory(vm);

	for (unsigned int i = 0; i < mem->nr_regions; i++)
		regions[i] = (struct mmu_ram_region){
			.gpa = mem->region[i].gpa,
			.size = mem->region[i].size,
			.hva = mem->region[i].hva,
		};
	*ret = (struct mmu_memory){ .regions = regions, .nr_regions = mem->nr_regions };
}

/*
 * One translation of gva, which the request gave as parameter `field`;
 * flags never include MMU_WALK_SET_AD: inspection only.
 */
static int walk(struct vm *vm, const struct paging_state *ps, const char *field, uint64_t gva,
		uint32_t access, bool eflags_ac, uint32_t pkru, struct mmu_walk_result *ret,
		struct api_error *err)
{
	struct mmu_ram_region regions[VM_MEM_MAX_REGIONS];
	struct mmu_walk_request req = {
		.addr = gva,
		.access = access,
		.pkru = pkru,
		.eflags_ac = eflags_ac,
		.cr3 = ps->cr3,
		.pdptrs = ps->pdptrs_valid ? ps->pdptrs : NULL,
	};
	struct mmu_context ctx;
	struct mmu_memory mem;
	int rc;

	if (ps->flags & MMU_CTX_GUEST_MODE)
		return api_error_set(err, API_ERR_WRONG_STATE,
				     "the vCPU runs a nested guest: its addresses are the nested guest's and vmmd does not walk the nested page tables that map them");
	if (mmu_context_init(&ctx, &ps->regs, vm_cpu_features(vm), ps->flags) < 0)
		return api_error_set(err, API_ERR_INTERNAL, "cannot build the MMU context");
	guest_ram(vm, regions, &mem);
	rc = mmu_walk(&ctx, NULL, &mem, &req, ret);
	/* The one request mmu_walk() refuses here: a linear address beyond
	 * 32 bits outside IA-32e mode (SDM Vol. 3A §4.1). */
	if (rc == -EINVAL)
		return api_error_set(err, API_ERR_INVALID_PARAMS,
				     "parameter '%s': 0x%llx is beyond 32 bits, the width of linear "
				     "addresses outside IA-32e mode (the vCPU's paging mode is %s)",
				     field, (unsigned long long)gva, mmu_paging_mode_name(ctx.mode));
	if (rc < 0)
		return api_error_set(err, API_ERR_INTERNAL, "walk of 0x%llx: %s",
				     (unsigned long long)gva, strerror(-rc));
	return 0;
}

static json_object *fault_json(const struct mmu_fault *f, const char *bits)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "type", json_object_new_string(mmu_fault_type_name(f->type)));
	json_object_object_add(o, "vector", json_object_new_int(f->vector));
	json_object_object_add(o, "error_code", json_object_new_int64(f->error_code));
	json_object_object_add(o, "error_bits", json_object_new_string(bits));
	json_object_object_add(o, "level", json_object_new_int(f->level));
	json_object_object_add(o, "address", hex(f->address));
	return o;
}

static json_object *translate_json(unsigned int index, const struct mmu_walk_result *res)
{
	char text[INSPECT_TEXT_MAX];
	json_object *r = json_object_new_object(), *walk_json = NULL, *fault, *bits;
	bool faulted = res->fault.type != MMU_FAULT_NONE;

	if (mmu_walk_format(res, MMU_FORMAT_JSON, text, sizeof(text), NULL) == 0)
		walk_json = json_tokener_parse(text);
	json_object_object_add(r, "vcpu", json_object_new_int((int)index));
	json_object_object_add(r, "gva", hex(res->addr));
	json_object_object_add(r, "mode", json_object_new_string(mmu_paging_mode_name(res->mode)));
	json_object_object_add(r, "gpa", faulted ? NULL : hex(res->gpa));
	/* With paging off there is no page: the address is the GPA (mode "none"). */
	json_object_object_add(r, "page_size",
			       faulted || res->mode == MMU_MODE_NONE
				       ? NULL
				       : json_object_new_int64((int64_t)res->page_size));
	if (faulted && json_object_object_get_ex(walk_json, "fault", &fault) &&
	    json_object_object_get_ex(fault, "error_bits", &bits))
		json_object_object_add(r, "fault", fault_json(&res->fault, json_object_get_string(bits)));
	else
		json_object_object_add(r, "fault", faulted ? fault_json(&res->fault, "") : NULL);
	json_object_object_add(r, "error_code",
			       faulted ? json_object_new_int64(res->fault.error_code) : NULL);
	json_object_object_add(r, "walk", walk_json);
	if (mmu_walk_format(res, MMU_FORMAT_TEXT, text, sizeof(text), NULL) == 0)
		json_object_object_add(r, "text", json_object_new_string(text));
	return r;
}

int inspect_translate(struct vm *vm, unsigned int index, uint64_t gva, uint32_t access,
		      json_object **ret, struct api_error *err)
{
	struct paging_state ps;
	struct mmu_walk_result res;
	int rc = get_paging_state(vm, index, &ps, err);

	/* The access as the vCPU would make it now: its EFLAGS.AC and PKRU. */
	if (rc == 0)
		rc = walk(vm, &ps, "gva", gva, access, ps.rflags & RFLAGS_AC, ps.pkru, &res,
			  err);
	if (rc < 0)
		return rc;
	*ret = translate_json(index, &res);
	return 0;
}

/* A guest-virtual page as a debugger reads it: present and valid is all
 * that counts, so the walk is a supervisor read with SMAP overridden
 * (EFLAGS.AC) and no protection keys. */
static int virtual_to_physical(struct vm *vm, const struct paging_state *ps, uint64_t gva,
			       uint64_t *ret_gpa, struct api_error *err)
{
	struct mmu_walk_result res;
	int rc = walk(vm, ps, "addr", gva, MMU_ACCESS_READ, true, 0, &res, err);

	if (rc < 0)
		return rc;
	if (res.fault.type != MMU_FAULT_NONE)
		return api_error_set(err, API_ERR_GUEST,
				     "guest virtual address 0x%llx is not mapped (%s, error code 0x%x at level %u)",
				     (unsigned long long)gva, mmu_fault_type_name(res.fault.type),
				     res.fault.error_code, res.fault.level);
	*ret_gpa = res.gpa;
	return 0;
}

/* Copies guest-physical [gpa, gpa+len) that lies in RAM. */
static int copy_physical(struct vm *vm, uint64_t gpa, size_t len, uint8_t *out,
			 struct api_error *err)
{
	const void *p = vm_memory_ptr(vm_guest_memory(vm), gpa, len);

	if (!p)
		return api_error_set(err, API_ERR_INVALID_PARAMS,
				     "parameter 'addr': guest physical range [0x%llx, 0x%llx) is not all RAM",
				     (unsigned long long)gpa, (unsigned long long)(gpa + len));
	memcpy(out, p, len);
	return 0;
}

/* Page by page: consecutive virtual pages need not be physically contiguous. */
static int copy_virtual(struct vm *vm, unsigned int index, uint64_t gva, size_t len,
			uint8_t *out, struct api_error *err)
{
	struct paging_state ps;
	int rc = get_paging_state(vm, index, &ps, err);

	while (rc == 0 && len > 0) {
		size_t chunk = MIN(len, (size_t)(4096 - (gva & 4095)));
		uint64_t gpa = 0;
		rc = virtual_to_physical(vm, &ps, gva, &gpa, err);
		if (rc == 0)
			rc = copy_physical(vm, gpa, chunk, out, err);
		gva += chunk;
		out += chunk;
		len -= chunk;
	}
	return rc;
}

int inspect_read(struct vm *vm, uint64_t addr, size_t len, bool is_virtual, unsigned int index,
		 json_object **ret, struct api_error *err)
{
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
	_cleanup_free_ char *text = malloc(base64_encoded_len(len) + 1);
	json_object *r;
	int rc;

	if (!buf || !text)
		return api_error_set(err, API_ERR_RESOURCE_LIMIT, "out of memory");
	if (addr + len < addr)
		return api_error_set(err, API_ERR_INVALID_PARAMS,
				     "parameter 'len': the range wraps around the address space");
	rc = is_virtual ? copy_virtual(vm, index, addr, len, buf, err)
			: copy_physical(vm, addr, len, buf, err);
	if (rc < 0)
		return rc;
	base64_encode(buf, len, text);
	r = json_object_new_object();
	json_object_object_add(r, "addr", hex(addr));
	json_object_object_add(r, "len", json_object_new_int64((int64_t)len));
	json_object_object_add(r, "virtual", json_object_new_boolean(is_virtual));
	json_object_object_add(r, "data", json_object_new_string(text));
	*ret = r;
	return 0;
}

struct cpuid_read {
	struct kvm_cpuid2 *cpuid;
	struct error err;
};

/* Runs on the vCPU's thread: KVM_GET_CPUID2 waits for KVM_RUN otherwise. */
static int read_cpuid(struct vcpu *v, void *arg)
{
	struct cpuid_read *r = arg;

	return vcpu_get_cpuid(v, &r->cpuid, &r->err);
}

static json_object *cpuid_entries(const struct kvm_cpuid2 *c)
{
	json_object *a = json_object_new_array();

	for (unsigned int i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "function", hex(e->function));
		json_object_object_add(o, "index", hex(e->index));
		json_object_object_add(o, "eax", hex(e->eax));
		json_object_object_add(o, "ebx", hex(e->ebx));
		json_object_object_add(o, "ecx", hex(e->ecx));
		json_object_object_add(o, "edx", hex(e->edx));
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *cpuid_features(const struct kvm_cpuid2 *c)
{
	json_object *o = json_object_new_object();
	size_t n;
	const struct vcpu_cpu_feature *f = vcpu_cpu_features(&n);

	for (size_t i = 0; i < n; i++)
		json_object_object_add(o, f[i].name, json_object_new_boolean(vcpu_cpuid_has(c, &f[i])));
	return o;
}

int inspect_cpuid(struct vm *vm, unsigned int index, json_object **ret, struct api_error *err)
{
	struct cpuid_read r = { 0 };
	json_object *o;
	int rc = inspect_on_vcpu(vm, index, read_cpuid, &r, err);

	if (rc < 0)
		return rc;
	o = json_object_new_object();
	json_object_object_add(o, "vcpu", json_object_new_int((int)index));
	json_object_object_add(o, "max_phys_bits",
			       json_object_new_int((int)vcpu_cpuid_phys_bits(r.cpuid)));
	json_object_object_add(o, "features", cpuid_features(r.cpuid));
	json_object_object_add(o, "entries", cpuid_entries(r.cpuid));
	free(r.cpuid);
	*ret = o;
	return 0;
}
