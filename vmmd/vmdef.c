/* SPDX-License-Identifier: MIT */
#include "vmmd/vmdef.h"

#include <ctype.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/macro.h"
#include "vmmd/boot/boot.h"
#include "vmmd/worker/memory.h"

const struct api_param vm_def_params[] = {
	{ .name = "name", .type = API_T_STRING, .required = true, .max_len = VM_NAME_MAX },
	/* Ranges depend on the host: vm_def_from_params() checks them. */
	{ .name = "memory", .type = API_T_INT, .required = true },
	{ .name = "vcpus", .type = API_T_INT },
	{ .name = "kernel", .type = API_T_STRING, .required = true, .max_len = VM_KERNEL_PATH_MAX },
	{ .name = "cmdline", .type = API_T_STRING, .max_len = VM_CMDLINE_MAX },
	{ .name = "boot", .type = API_T_STRING, .max_len = 32 }, /* checked against the loaders */
	{ .name = "transient", .type = API_T_BOOL },
	{ .name = "cpu", .type = API_T_OBJECT },
	{ 0 },
};

static bool name_char_ok(char ch)
{
	return isalnum((unsigned char)ch) || ch == '.' || ch == '_' || ch == '-';
}

int vm_name_validate(const char *name, struct api_error *err)
{
	size_t len = strlen(name);

	if (len == 0)
		return api_error_set(err, API_ERR_INVALID_PARAMS, "parameter 'name' must not be empty");
	if (len > VM_NAME_MAX)
		return api_error_set(err, API_ERR_INVALID_PARAMS,
				     "parameter 'name' is too long (%zu bytes, limit %d)", len,
				     VM_NAME_MAX);
	/* Names become file names in the state and run directories. */
	if (name[0] == '.' || name[0] == '-')
		return api_error_set(err, API_ERR_INVALID_PARAMS,
				     "parameter 'name' must not start with '%c'", name[0]);
	for (size_t i = 0; i < len; i++)
		if (!name_char_ok(name[i]))
			return api_error_set(err, API_ERR_INVALID_PARAMS,
					     "parameter 'name' may contain only letters, digits, '.', '_' and '-' (found 0x%02x at position %zu)",
					     (unsigned char)name[i], i);
	return 0;
}

/* memory and vcpus, when given: one message states the whole range and
 * where its upper end comes from. */
static int check_memory(json_object *mib, const struct host_limits *host, struct api_error *err)
{
	int64_t max = (int64_t)MIN(host->max_memory_mib, (uint64_t)INT64_MAX);

	if (mib && !api_int_in_range(mib, VM_MEMORY_MIN_MIB, max))
		return api_param_range_error(err, "memory", mib, VM_MEMORY_MIN_MIB, max, "MiB",
					     host->memory_source);
	return 0;
}

static int check_vcpus(json_object *n, const struct host_limits *host, struct api_error *err)
{
	if (n && !api_int_in_range(n, 1, host->max_vcpus))
		return api_param_range_error(err, "vcpus", n, 1, host->max_vcpus, NULL,
					     host->vcpus_source);
	return 0;
}

static int check_kernel_file(const struct vm_def *def, struct api_error *err)
{
	struct boot_kernel kernel = { 0 };
	const struct boot_loader *loader;
	struct vm_memory layout;
	struct error e = { 0 };
	int rc;

	if (def->kernel[0] != '/')
		return api_error_set(err, API_ERR_INVALID_PARAMS,
				     "parameter 'kernel' must be an absolute path, got '%s'",
				     def->kernel);
	rc = boot_loader_get(def->boot, &loader, &e);
	if (rc == 0)
		rc = boot_read_kernel(def->kernel, BOOT_KERNEL_MAX_SIZE, &kernel, &e);
	if (rc == 0) {
		vm_memory_layout(def->memory_mib << 20, &layout);
		rc = loader->check(&kernel, def->cmdline, &layout, &e);
	}
	boot_kernel_release(&kernel);
	if (rc < 0)
		return api_error_set(err, API_ERR_INVALID_PARAMS, "parameter 'kernel': %s", e.msg);
	return 0;
}

uint64_t vm_max_gpa(uint64_t memory_mib)
{
	struct vm_memory layout;
	const struct vm_mem_region *last;

	vm_memory_layout(memory_mib << 20, &layout);
	last = &layout.region[layout.nr_regions - 1];
	return MAX(last->gpa + last->size, VM_MEM_HOLE_END) - 1;
}

static int set_features(json_object *features, struct vcpu_cpu_policy *p, struct api_error *err)
{
	struct error e;

	if (!json_object_is_type(features, json_type_object))
		return api_error_set(err, API_ERR_INVALID_PARAMS,
				     "parameter 'cpu.features' must be an object of feature names and booleans");
	json_object_object_foreach(features, name, value) {
		if (!json_object_is_type(value, json_type_boolean))
			return api_error_set(err, API_ERR_INVALID_PARAMS,
					     "parameter 'cpu.features.%.32s' must be a boolean", name);
		if (vcpu_cpu_policy_set_feature(p, name, json_object_get_boolean(value), &e) < 0)
			return api_error_set(err, API_ERR_INVALID_PARAMS, "parameter 'cpu.features': %s",
					     e.msg);
	}
	return 0;
}

static int set_phys_bits(json_object *bits, struct vcpu_cpu_policy *p, struct api_error *err)
{
	int64_t v = json_object_get_int64(bits);

	/* 0 keeps the host's MAXPHYADDR. */
	if (!json_object_is_type(bits, json_type_int) ||
	    (v != 0 && (v < VCPU_MIN_PHYS_BITS || v > VCPU_MAX_PHYS_BITS)))
		return api_error_set(err, API_ERR_INVALID_PARAMS,
				     "parameter 'cpu.max_phys_bits' must be 0 (the host's) or an integer between %d and %d",
				     VCPU_MIN_PHYS_BITS, VCPU_MAX_PHYS_BITS);
	p->max_phys_bits = (unsigned int)v;
	return 0;
}

int vm_cpu_policy_from_json(json_object *cpu, struct vcpu_cpu_policy *ret, struct api_error *err)
{
	struct vcpu_cpu_policy p = { 0 };
	int rc = 0;

	if (cpu && !json_object_is_type(cpu, json_type_object))
		return api_error_set(err, API_ERR_INVALID_PARAMS, "parameter 'cpu' must be an object");
	if (cpu) {
		json_object_object_foreach(cpu, key, val) {
			if (strcmp(key, "features") == 0)
				rc = set_features(val, &p, err);
			else if (strcmp(key, "max_phys_bits") == 0)
				rc = set_phys_bits(val, &p, err);
			else
				rc = api_error_set(err, API_ERR_INVALID_PARAMS,
						   "parameter 'cpu': unknown member '%.32s' (known: features, max_phys_bits)",
						   key);
			if (rc < 0)
				return rc;
		}
	}
	*ret = p;
	return 0;
}

json_object *vm_cpu_policy_to_json(const struct vcpu_cpu_policy *p)
{
	json_object *o = json_object_new_object();
	json_object *features = json_object_new_object();

	for (unsigned int i = 0; i < p->nr_features; i++)
		json_object_object_add(features, p->features[i].name,
				       json_object_new_boolean(p->features[i].enabled));
	json_object_object_add(o, "features", features);
	json_object_object_add(o, "max_phys_bits", json_object_new_int((int)p->max_phys_bits));
	return o;
}

/* Against what KVM offers, when vmmd can ask it. */
static int check_cpu_policy(const struct vm_def *def, const struct host_limits *host,
			    struct api_error *err)
{
	struct error e;

	if (!host->supported_cpuid)
		return 0;
	if (vcpu_cpu_policy_check(&def->cpu, host->supported_cpuid, vm_max_gpa(def->memory_mib),
				  &e) < 0)
		return api_error_set(err, API_ERR_INVALID_PARAMS, "parameter 'cpu': %s", e.msg);
	return 0;
}

static int check_boot_protocol(const char *boot, struct api_error *err)
{
	const struct boot_loader *loader;
	struct error e;

	if (boot_loader_get(boot, &loader, &e) < 0)
		return api_error_set(err, API_ERR_INVALID_PARAMS, "parameter 'boot': %s", e.msg);
	return 0;
}

int vm_def_from_params(json_object *params, const struct host_limits *host, bool check_kernel,
		       struct vm_def **ret, struct api_error *err)
{
	const char *name = api_param_string(params, "name", "");
	struct vm_def *def;
	int rc;

	rc = vm_name_validate(name, err);
	if (rc < 0)
		return rc;
	rc = check_boot_protocol(api_param_string(params, "boot", "multiboot"), err);
	if (rc < 0)
		return rc;
	rc = check_memory(api_param_get(params, "memory"), host, err);
	if (rc < 0)
		return rc;
	rc = check_vcpus(api_param_get(params, "vcpus"), host, err);
	if (rc < 0)
		return rc;

	def = calloc(1, sizeof(*def));
	if (!def)
		return api_error_set(err, API_ERR_INTERNAL, "out of memory");
	snprintf(def->name, sizeof(def->name), "%s", name);
	def->memory_mib = (uint64_t)api_param_int(params, "memory", 0);
	def->vcpus = (unsigned int)api_param_int(params, "vcpus", 1);
	def->kernel = strdup(api_param_string(params, "kernel", ""));
	def->cmdline = strdup(api_param_string(params, "cmdline", ""));
	snprintf(def->boot, sizeof(def->boot), "%s", api_param_string(params, "boot", "multiboot"));
	def->transient = api_param_bool(params, "transient", false);
	if (!def->kernel || !def->cmdline) {
		vm_def_free(def);
		return api_error_set(err, API_ERR_INTERNAL, "out of memory");
	}
	rc = vm_cpu_policy_from_json(api_param_get(params, "cpu"), &def->cpu, err);
	if (rc == 0)
		rc = check_cpu_policy(def, host, err);
	if (rc == 0 && check_kernel)
		rc = check_kernel_file(def, err);
	if (rc < 0) {
		vm_def_free(def);
		return rc;
	}
	*ret = def;
	return 0;
}

json_object *vm_def_to_json(const struct vm_def *def)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(def->name));
	json_object_object_add(o, "memory", json_object_new_int64((int64_t)def->memory_mib));
	json_object_object_add(o, "vcpus", json_object_new_int((int)def->vcpus));
	json_object_object_add(o, "kernel", json_object_new_string(def->kernel));
	json_object_object_add(o, "cmdline", json_object_new_string(def->cmdline));
	json_object_object_add(o, "boot", json_object_new_string(def->boot));
	json_object_object_add(o, "transient", json_object_new_boolean(def->transient));
	json_object_object_add(o, "cpu", vm_cpu_policy_to_json(&def->cpu));
	return o;
}

void vm_def_free(struct vm_def *def)
{
	if (!def)
		return;
	free(def->kernel);
	free(def->cmdline);
	free(def);
}

static uint64_t host_memory_mib(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	unsigned long long kib;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
			return kib / 1024;
	/* Without /proc, allow what a 64-bit guest layout can address. */
	return 1ULL << 20;
}

/*
 * KVM's limit, and nothing below it: KVM_CAP_MAX_VCPUS vCPUs (api.rst
 * 4.42, KVM_CREATE_VCPU), whose ids 0..n-1 must also be below
 * KVM_CAP_MAX_VCPU_ID. Nothing in vmmd needs less: vCPU i gets APIC ID i,
 * and IDs above 254 work in x2APIC mode (the guest's choice; vmmd builds
 * no MP or ACPI tables that would hold 8-bit IDs). Linux's KVM allowed 288
 * before 5.15 and 1024 since (KVM_MAX_VCPUS, commit 074c82c8f7cf).
 * 0 when /dev/kvm cannot be opened.
 */
static unsigned int kvm_max_vcpus(void)
{
	_cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int n, max_id;

	if (kvm < 0)
		return 0;
	n = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (n <= 0)
		n = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (n <= 0)
		n = 4; /* KVM api.rst: assume 4 when neither capability exists */
	max_id = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID);
	if (max_id > 0 && max_id < n)
		n = max_id;
	return (unsigned int)n;
}

/* KVM's limit where vmmd can ask KVM; else vmmd's own, so that VMs can be
 * defined without /dev/kvm (vm.start then fails and says why). */
static void probe_max_vcpus(struct host_limits *ret)
{
	unsigned int kvm = kvm_max_vcpus();

	ret->max_vcpus = kvm ? kvm : VM_VCPUS_MAX;
	ret->vcpus_source = kvm ? "KVM_CAP_MAX_VCPUS on this host"
				: "vmmd's limit; KVM's is unknown without /dev/kvm";
}

static struct kvm_cpuid2 *kvm_supported_cpuid(void)
{
	_cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	struct kvm_cpuid2 *cpuid = NULL;

	if (kvm < 0 || vcpu_supported_cpuid(kvm, &cpuid, NULL) < 0)
		return NULL;
	return cpuid;
}

void host_limits_probe(struct host_limits *ret)
{
	ret->max_memory_mib = host_memory_mib();
	probe_max_vcpus(ret);
	ret->supported_cpuid = kvm_supported_cpuid();
	ret->memory_source = "the host's RAM";
}
