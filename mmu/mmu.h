/* SPDX-License-Identifier: MIT */
/*
 * mmu/ — a userspace model of x86 guest paging, as Linux KVM computes it.
 *
 * Everything here is a pure function of explicit inputs: the role registers
 * {CR0, CR4, EFER}, a CPU-feature snapshot, the SMM and guest-mode flags and,
 * for walks, CR3/PDPTEs/PKRU/EFLAGS.AC and guest memory reached through a
 * callback. Nothing reads live vCPU state, so the same code serves live
 * guests, snapshot files and test fixtures. See docs/mmu.md for the model.
 *
 * Conventions: functions return 0 or a negative errno. Results go out
 * through ret_ pointers, which are left untouched when an error is returned.
 * The library keeps no global mutable state, never prints and never aborts;
 * all functions are thread-safe for distinct output objects. Functions that
 * take untrusted input (CPUID lists, nested-state blobs) also take an
 * optional struct mmu_error that receives a one-line message on failure.
 */
#ifndef VMMD_MMU_MMU_H
#define VMMD_MMU_MMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ registers */

/* Control-register and EFER bits (Intel SDM Vol. 3A §2.5, §2.2.1). */
#define MMU_CR0_PE (1ULL << 0)
#define MMU_CR0_MP (1ULL << 1)
#define MMU_CR0_EM (1ULL << 2)
#define MMU_CR0_TS (1ULL << 3)
#define MMU_CR0_ET (1ULL << 4)
#define MMU_CR0_NE (1ULL << 5)
#define MMU_CR0_WP (1ULL << 16)
#define MMU_CR0_AM (1ULL << 18)
#define MMU_CR0_NW (1ULL << 29)
#define MMU_CR0_CD (1ULL << 30)
#define MMU_CR0_PG (1ULL << 31)

#define MMU_CR4_VME (1ULL << 0)
#define MMU_CR4_PVI (1ULL << 1)
#define MMU_CR4_TSD (1ULL << 2)
#define MMU_CR4_DE (1ULL << 3)
#define MMU_CR4_PSE (1ULL << 4)
#define MMU_CR4_PAE (1ULL << 5)
#define MMU_CR4_MCE (1ULL << 6)
#define MMU_CR4_PGE (1ULL << 7)
#define MMU_CR4_PCE (1ULL << 8)
#define MMU_CR4_OSFXSR (1ULL << 9)
#define MMU_CR4_OSXMMEXCPT (1ULL << 10)
#define MMU_CR4_UMIP (1ULL << 11)
#define MMU_CR4_LA57 (1ULL << 12)
#define MMU_CR4_VMXE (1ULL << 13)
#define MMU_CR4_SMXE (1ULL << 14)
#define MMU_CR4_FSGSBASE (1ULL << 16)
#define MMU_CR4_PCIDE (1ULL << 17)
#define MMU_CR4_OSXSAVE (1ULL << 18)
#define MMU_CR4_SMEP (1ULL << 20)
#define MMU_CR4_SMAP (1ULL << 21)
#define MMU_CR4_PKE (1ULL << 22)
#define MMU_CR4_CET (1ULL << 23)
#define MMU_CR4_PKS (1ULL << 24)
#define MMU_CR4_LAM_SUP (1ULL << 28)

#define MMU_EFER_SCE (1ULL << 0)
#define MMU_EFER_LME (1ULL << 8)
#define MMU_EFER_LMA (1ULL << 10)
#define MMU_EFER_NX (1ULL << 11)
#define MMU_EFER_SVME (1ULL << 12)
#define MMU_EFER_FFXSR (1ULL << 14)

/* The "role registers": the only registers the MMU role is computed from. */
struct mmu_role_regs {
	uint64_t cr0;
	uint64_t cr4;
	uint64_t efer;
};

/* ------------------------------------------------------------ errors */

#define MMU_ERROR_MAX 192

/* One-line message for a rejected input; msg is always NUL-terminated. */
struct mmu_error {
	char msg[MMU_ERROR_MAX];
};

/* ------------------------------------------------------------ CPU features */

enum mmu_vendor {
	MMU_VENDOR_UNKNOWN = 0,
	MMU_VENDOR_INTEL,
	MMU_VENDOR_AMD,
	MMU_VENDOR_HYGON,
};

/* IA32_VMX_EPT_VPID_CAP (MSR 0x48C) bits consumed by nested EPT
 * (verified against Linux arch/x86/include/asm/vmx.h). */
#define MMU_EPT_CAP_EXECUTE_ONLY (1ULL << 0)
#define MMU_EPT_CAP_WALK_4 (1ULL << 6)
#define MMU_EPT_CAP_WALK_5 (1ULL << 7)
#define MMU_EPT_CAP_MT_UC (1ULL << 8)
#define MMU_EPT_CAP_MT_WB (1ULL << 14)
#define MMU_EPT_CAP_2M (1ULL << 16)
#define MMU_EPT_CAP_1G (1ULL << 17)
#define MMU_EPT_CAP_AD (1ULL << 21)

/*
 * The guest CPU model as the MMU sees it: a snapshot taken once (normally
 * with mmu_features_from_cpuid()) and frozen after the first KVM_RUN.
 *
 * gbpages is the effective "1 GiB pages allowed" input: KVM uses guest
 * CPUID 0x80000001.EDX[26] with shadow paging and host support with TDP,
 * because hardware cannot be told to treat PS in a PDPTE as reserved.
 * Callers that model a TDP host override it after deriving from CPUID.
 */
struct mmu_cpu_features {
	uint8_t maxphyaddr; /* M, 32..52 */
	enum mmu_vendor vendor;
	bool nx;
	bool gbpages;
	bool la57;
	bool pku;
	bool smep;
	bool smap;
	bool pse;
	bool pse36;
	bool pae;
	bool lm;
	bool pcid;
	bool xsave;
	bool fsgsbase;
	bool umip;
	bool vmx;
	bool smx;
	bool svm;
	bool cet;
	bool pks;
	bool lam;
	bool ffxsr;
	uint64_t ept_caps; /* L1's IA32_VMX_EPT_VPID_CAP, for nested EPT */
};

/* ------------------------------------------------------------ CPUID */

/* Same fields as struct kvm_cpuid_entry2 (minus padding). */
struct mmu_cpuid_entry {
	uint32_t function;
	uint32_t index;
	uint32_t flags; /* MMU_CPUID_FLAG_* */
	uint32_t eax;
	uint32_t ebx;
	uint32_t ecx;
	uint32_t edx;
};

/* Values of KVM_CPUID_FLAG_SIGNIFCANT_INDEX / _STATEFUL_FUNC / _STATE_READ_NEXT. */
#define MMU_CPUID_FLAG_SIGNIFICANT_INDEX (1U << 0)
#define MMU_CPUID_FLAG_STATEFUL_FUNC (1U << 1)
#define MMU_CPUID_FLAG_STATE_READ_NEXT (1U << 2)
/* KVM's KVM_MAX_CPUID_ENTRIES: more entries are refused by KVM_SET_CPUID2. */
#define MMU_CPUID_MAX_ENTRIES 256

/*
 * Derive the feature snapshot from a CPUID list. MAXPHYADDR comes from
 * 0x80000008.EAX[7:0], or is 36 when 0x80000000.EAX < 0x80000008 or the
 * leaf is absent (KVM cpuid_query_maxphyaddr()). ept_caps is left 0: it is
 * an MSR, not CPUID. Returns -EINVAL (empty list, duplicate leaf, unknown
 * flags, MAXPHYADDR outside 32..52) or -E2BIG (more than
 * MMU_CPUID_MAX_ENTRIES) with a message in *err.
 */
int mmu_features_from_cpuid(const struct mmu_cpuid_entry *entries, size_t n,
			    struct mmu_cpu_features *ret_features, struct mmu_error *err);

/*
 * KVM_SET_CPUID2 after the vCPU has run (kernel ≥ 5.17): allowed only with
 * the same entries in the same order. Returns 0 if !has_run or the data is
 * identical, -EINVAL (with the first difference in *err) otherwise.
 */
int mmu_cpuid_check_frozen(const struct mmu_cpuid_entry *cur, size_t ncur,
			   const struct mmu_cpuid_entry *next, size_t nnext, bool has_run,
			   struct mmu_error *err);

/* ------------------------------------------------------------ role */

enum mmu_paging_mode {
	MMU_MODE_NONE = 0, /* CR0.PG=0: identity */
	MMU_MODE_32BIT,    /* 2 levels, 4-byte entries */
	MMU_MODE_PAE,      /* PDPTE registers + 2 levels */
	MMU_MODE_4LEVEL,
	MMU_MODE_5LEVEL,
	MMU_MODE_EPT4, /* nested EPT, 4-level walk */
	MMU_MODE_EPT5, /* nested EPT, 5-level walk */
};

/*
 * The MMU role (KVM's kvm_cpu_role: base + ext). word packs every bit and
 * is a cache key: two equal words behave identically under equal CPU
 * features. Its bit layout is not a stable format; use mmu_role_format()
 * for anything that leaves the process.
 */
union mmu_role {
	struct {
		/* base */
		uint32_t level : 4; /* 0 direct, 2 32-bit, 3 PAE, 4, 5 */
		uint32_t has_4_byte_gpte : 1;
		uint32_t direct : 1;
		uint32_t access : 3; /* always ACC_ALL (7) */
		uint32_t efer_nx : 1;
		uint32_t cr0_wp : 1;
		uint32_t smep_andnot_wp : 1;
		uint32_t smap_andnot_wp : 1;
		uint32_t ad_disabled : 1; /* EPT: EPTP[6] clear */
		uint32_t guest_mode : 1;
		uint32_t smm : 1;
		uint32_t ept : 1; /* EPT-format tables (nested EPT) */
		/* ext */
		uint32_t valid : 1;
		uint32_t cr4_smep : 1;
		uint32_t cr4_smap : 1;
		uint32_t cr4_pse : 1;
		uint32_t cr4_pke : 1;
		uint32_t cr4_la57 : 1;
		uint32_t efer_lma : 1;
		uint32_t execonly : 1; /* EPT: execute-only pages supported */
	};
	uint32_t word;
};

/* Flags for role and context computation. */
#define MMU_CTX_SMM (1U << 0)
#define MMU_CTX_GUEST_MODE (1U << 1)
/*
 * Reproduce Linux KVM's software walker where it differs from the
 * architecture (used by the KVM differential test; see docs/mmu.md):
 *  - #PF error-code I bit for fetches from EFER.NX || CR4.SMEP in every
 *    paging mode (architecturally NX only counts with PAE/4/5-level) — E8;
 *  - 32-bit 4 MiB pages use PSE-36 with a fixed 36-bit address: PDE bits
 *    21:17 reserved and PA[35:32] = PDE[16:13], whatever MAXPHYADDR is;
 *  - under nested EPT every stage-1 paging-structure access is a write
 *    (KVM passes PFERR_WRITE_MASK); architecturally it is a read unless
 *    EPT A/D is on or the walk sets an A/D bit.
 */
#define MMU_CTX_KVM_COMPAT (1U << 2)

/*
 * Role from the role registers (MMU.md §1.2). With CR0.PG=0 the role is
 * direct and every paging field is 0; PKE and LA57 count only with
 * EFER.LMA. Never fails; flags are MMU_CTX_SMM / MMU_CTX_GUEST_MODE.
 */
union mmu_role mmu_role_compute(const struct mmu_role_regs *regs, unsigned int flags);

enum mmu_paging_mode mmu_role_mode(union mmu_role role);
/* "none", "32-bit", "pae", "4-level", "5-level", "ept-4-level", "ept-5-level". */
const char *mmu_paging_mode_name(enum mmu_paging_mode mode);

enum mmu_format {
	MMU_FORMAT_TEXT, /* one line: "mode=4-level level=4 direct=0 ..." */
	MMU_FORMAT_JSON, /* one JSON object: {"mode":"4-level","level":4,...} */
};

/*
 * Printable form of a role: every field by name, always in the same order.
 * Writes a NUL-terminated string into buf and its length to *ret_len
 * (optional). Returns -ENOSPC (buf untouched) if size is too small.
 */
int mmu_role_format(union mmu_role role, enum mmu_format fmt, char *buf, size_t size,
		    size_t *ret_len);

/* ------------------------------------------------------------ context */

#define MMU_MAX_LEVELS 5

/*
 * Everything a walk needs, precomputed from a role: reserved-bit masks per
 * level and page size, the permission table and the PKRU mask. Fields are
 * read-only for callers. A stage-2 context (NPT/EPT) also holds its root.
 * Contexts built from equal inputs are byte-identical (memcmp() works).
 */
struct mmu_context {
	union mmu_role role;
	enum mmu_paging_mode mode;
	uint8_t maxphyaddr;
	bool kvm_compat;
	bool stage2;		  /* NPT or EPT context: root below is used */
	bool ept_ad;		  /* EPT: A/D flags enabled by EPTP[6] */
	uint64_t root;		  /* stage 2: nCR3 or EPTP[M-1:12] */
	uint64_t eptp;		  /* EPT: the raw EPTP */
	uint64_t rsvd[2][MMU_MAX_LEVELS]; /* [bit 7 set][level - 1] */
	uint64_t pse36_frame_mask;	  /* 32-bit: PDE bits that give PA[39:32] */
	uint64_t ept_bad_mt_xwr;	  /* EPT: bit (entry & 63) set = misconfig */
	uint8_t perm[16];		  /* KVM's permission table (MMU.md §3.3) */
	uint32_t pkru_mask;		  /* KVM's pkru_mask (MMU.md §3.4) */
};

/*
 * Stage-1 (or only-stage) context from the role registers. Returns -EINVAL
 * if features->maxphyaddr is outside 32..52 or flags has unknown bits.
 * With CR0.PG=0 the tables are zeroed (nothing consumes them).
 */
int mmu_context_init(struct mmu_context *ret_ctx, const struct mmu_role_regs *regs,
		     const struct mmu_cpu_features *features, unsigned int flags);

/*
 * Nested NPT stage-2 context (MMU.md §5.2): role registers
 * {CR0 = PG, CR4 = l1_cr4 & ~PKE, EFER = l1_efer}, i.e. vmcb01's values at
 * VMRUN, never the current vCPU state. ncr3 is the NPT root. Returns
 * -EINVAL for a bad maxphyaddr or flags, or if L1's registers describe no
 * valid paging mode (EFER.LMA without CR4.PAE).
 */
int mmu_context_init_npt(struct mmu_context *ret_ctx, uint64_t l1_cr4, uint64_t l1_efer,
			 uint64_t ncr3, const struct mmu_cpu_features *features,
			 unsigned int flags);

/*
 * Nested EPT stage-2 context (MMU.md §5.3) from vmcs12's EPTP and
 * features->ept_caps; CR0/CR4/EFER play no part. Returns -EINVAL with a
 * message for an EPTP KVM would refuse on VM entry (memory type not UC/WB
 * as allowed by the caps, walk length not 4/5 as allowed, A/D without the
 * capability, reserved bits 11:7 or M..63).
 */
int mmu_context_init_ept(struct mmu_context *ret_ctx, uint64_t eptp,
			 const struct mmu_cpu_features *features, unsigned int flags,
			 struct mmu_error *err);

/* ------------------------------------------------------------ memory */

/*
 * A range of guest RAM mapped at a host address (live guest RAM, a mapped
 * snapshot file, a test buffer). The walker reads and compare-exchanges
 * entries there directly, with no callback.
 */
struct mmu_ram_region {
	uint64_t gpa;
	uint64_t size;
	void *hva;     /* page aligned */
	bool readonly; /* A/D updates skipped (ROM slots, read-only snapshots) */
};

/*
 * Guest-physical memory as the walker reaches it: regions first, then the
 * callbacks for anything outside them. Give regions, map, or read (plus
 * cmpxchg to allow A/D updates). Callbacks get naturally aligned 4- or
 * 8-byte accesses that never cross a page.
 *
 * Entries in regions and behind map are loaded with __atomic_load_n() and
 * A/D bits are set with __atomic_compare_exchange_n() on the host address,
 * so on live guest RAM the update is a real locked cmpxchg racing
 * correctly with the guest. Read-only memory (region readonly, or
 * map's *ret_writable = false) models page tables in ROM (E35): A/D
 * updates to it are skipped and the access proceeds.
 *
 * map: return in *ret_ptr a host pointer to the bytes at gpa (valid for
 *   len bytes) and in *ret_writable whether the walker may write them.
 * read: copy len bytes at gpa into buf (backends without a host mapping,
 *   such as snapshot readers).
 * cmpxchg: if the len bytes at gpa equal old, store new and return 0;
 *   return -EAGAIN if they differ (the walk restarts), -EROFS if the memory
 *   is read-only (update skipped). NULL means read-only memory.
 *
 * A GPA in no region with no callback, or a callback returning -EFAULT,
 * is not RAM: a page-table read there becomes a not-present fault (KVM
 * does the same) with mmu_fault.unbacked set. Any other negative errno
 * aborts the walk and is returned by mmu_walk().
 */
struct mmu_memory {
	const struct mmu_ram_region *regions;
	unsigned int nr_regions;
	void *opaque;
	int (*map)(void *opaque, uint64_t gpa, size_t len, void **ret_ptr, bool *ret_writable);
	int (*read)(void *opaque, uint64_t gpa, void *buf, size_t len);
	int (*cmpxchg)(void *opaque, uint64_t gpa, size_t len, uint64_t old, uint64_t new_val);
};

/* ------------------------------------------------------------ walk */

/* Access descriptor. WRITE/USER/FETCH use their #PF error-code positions. */
#define MMU_ACCESS_READ 0U
#define MMU_ACCESS_WRITE (1U << 1)
#define MMU_ACCESS_USER (1U << 2)  /* explicit access at CPL 3 */
#define MMU_ACCESS_FETCH (1U << 4)
/* Implicit supervisor access (GDT/LDT/IDT/TSS): never USER; EFLAGS.AC does
 * not override SMAP for it. */
#define MMU_ACCESS_IMPLICIT (1U << 8)
/* Stack-segment access: a non-canonical address raises #SS, not #GP. */
#define MMU_ACCESS_STACK (1U << 9)

/* #PF error-code bits (SDM Vol. 3A §4.7). SS/SGX/RMP are reserved in the
 * API; this walker never produces them. */
#define MMU_PFERR_P (1U << 0)
#define MMU_PFERR_W (1U << 1)
#define MMU_PFERR_U (1U << 2)
#define MMU_PFERR_RSVD (1U << 3)
#define MMU_PFERR_I (1U << 4)
#define MMU_PFERR_PK (1U << 5)
#define MMU_PFERR_SS (1U << 6)
#define MMU_PFERR_SGX (1U << 15)
#define MMU_PFERR_RMP (1U << 31)

/* SVM NPF exit_info_1 bits 32/33 (APM Vol. 2 §15.25.6). */
#define MMU_NPF_FINAL_ADDR (1ULL << 32)
#define MMU_NPF_TABLE_ADDR (1ULL << 33)

/* EPT-violation exit-qualification bits (SDM Vol. 3C Table 28-7). */
#define MMU_EPT_QUAL_READ (1ULL << 0)
#define MMU_EPT_QUAL_WRITE (1ULL << 1)
#define MMU_EPT_QUAL_FETCH (1ULL << 2)
#define MMU_EPT_QUAL_READABLE (1ULL << 3)
#define MMU_EPT_QUAL_WRITABLE (1ULL << 4)
#define MMU_EPT_QUAL_EXECUTABLE (1ULL << 5)
#define MMU_EPT_QUAL_GLA_VALID (1ULL << 7)
#define MMU_EPT_QUAL_GLA_FINAL (1ULL << 8)

/* Walk flags. Without MMU_WALK_SET_AD the walk is a read-only inspection. */
#define MMU_WALK_SET_AD (1U << 0)

/* Bound on restarts after a lost A/D compare-exchange race. */
#define MMU_WALK_MAX_RESTARTS 16

struct mmu_walk_request {
	uint64_t addr;	     /* GVA; a GPA for a walk of a stage-2 context */
	uint32_t access;     /* MMU_ACCESS_* */
	uint32_t flags;	     /* MMU_WALK_* */
	uint32_t pkru;	     /* used only when the role has cr4_pke */
	bool eflags_ac;	     /* SMAP override for explicit accesses */
	uint64_t cr3;	     /* stage 1; ignored for stage-2 contexts */
	const uint64_t *pdptrs; /* PAE: the 4 PDPTE registers; NULL = read at CR3 */
};

struct mmu_walk_entry {
	uint64_t gpa;	/* where the entry lives, in the walked stage's input space */
	uint64_t pa;	/* after stage-2 translation (= gpa without stage 2) */
	uint64_t value; /* as read, before any A/D update */
	uint16_t index; /* index into its table */
	uint8_t level;	/* 5..1 (3 for a PAE PDPTE) */
	bool from_register; /* PAE PDPTE register, not read from memory */
	uint32_t reserved;  /* always 0 */
};

enum mmu_fault_type {
	MMU_FAULT_NONE = 0,
	MMU_FAULT_PF,		   /* #PF (vector 14), stage 1 */
	MMU_FAULT_GP,		   /* #GP(0) (vector 13): non-canonical address */
	MMU_FAULT_SS,		   /* #SS(0) (vector 12): non-canonical stack access */
	MMU_FAULT_NPF,		   /* SVM #VMEXIT(NPF), stage 2 */
	MMU_FAULT_EPT_VIOLATION,   /* VMX EPT violation, stage 2 */
	MMU_FAULT_EPT_MISCONFIG,   /* VMX EPT misconfiguration, stage 2 */
};

struct mmu_fault {
	enum mmu_fault_type type;
	uint8_t vector;	       /* 14, 13 or 12; 0 for stage-2 exits */
	uint8_t stage;	       /* 1 or 2; 0 when type is NONE */
	uint8_t level;	       /* level of the faulting entry; 0 if no entry */
	bool paging_structure; /* stage 2: while reading a stage-1 paging structure */
	bool unbacked;	       /* a paging structure was not in guest RAM */
	uint32_t error_code;   /* #PF/#GP/#SS error code; NPF: low 32 bits of info 1 */
	uint64_t address;      /* #PF: CR2 (the linear address); stage 2: the faulting GPA */
	uint64_t exit_info_1;  /* NPF: error code | MMU_NPF_FINAL_ADDR or _TABLE_ADDR */
	uint64_t exit_info_2;  /* NPF: the faulting GPA */
	uint64_t exit_qualification; /* EPT violation: MMU_EPT_QUAL_* */
	uint64_t guest_linear_address; /* stage 2: the GVA being translated */
};

/* Effective rights of a successful walk. */
#define MMU_RIGHT_X (1U << 0)
#define MMU_RIGHT_W (1U << 1)
#define MMU_RIGHT_U (1U << 2) /* EPT: readable */

struct mmu_walk_result {
	uint64_t addr;	/* the input address */
	uint32_t access; /* the input access (MMU_ACCESS_*) */
	uint64_t gpa;	/* stage-1 output (= pa without stage 2) */
	uint64_t pa;	/* final output, after stage 2 */
	uint64_t page_size; /* of the stage-1 mapping; 0 for identity */
	enum mmu_paging_mode mode;	  /* of the walked context */
	enum mmu_paging_mode stage2_mode; /* MMU_MODE_NONE without stage 2 */
	uint8_t leaf_level;
	uint8_t rights;	 /* MMU_RIGHT_*, stage 1 */
	uint8_t pkey;	 /* leaf protection key (4/5-level only) */
	uint8_t nr_entries;
	uint8_t nr_stage2_entries;
	uint8_t restarts; /* A/D compare-exchange races that restarted the walk */
	uint8_t ad_written; /* entries whose A/D bits this walk set */
	struct mmu_walk_entry entries[MMU_MAX_LEVELS];	/* top-down */
	struct mmu_walk_entry stage2_entries[MMU_MAX_LEVELS]; /* stage-2 walk of gpa */
	struct mmu_fault fault; /* type NONE on success */
};

/*
 * Translate req->addr through ctx (and stage2, if not NULL: nested paging).
 * Returns 0 when the walk reached a verdict: a translation (fault.type ==
 * MMU_FAULT_NONE) or the architectural fault, exactly as the guest (or L1)
 * would see it, in *ret. Negative errno only for bad arguments (-EINVAL:
 * unknown access/flag bits, USER with IMPLICIT, WRITE with FETCH, a linear
 * address above 4 GiB outside long mode, stage2 not a stage-2 context, a
 * memory object with no regions, map or read), memory-callback failures other
 * than -EFAULT, and -EAGAIN after MMU_WALK_MAX_RESTARTS lost A/D races.
 *
 * With MMU_WALK_SET_AD, A/D bits are updated exactly as the CPU would
 * (MMU.md §4): only after the walk and permission checks pass, A in every
 * entry used, D in the leaf for writes, each with compare-and-exchange and
 * a restart if the entry changed. Without it, guest memory is never written.
 */
int mmu_walk(const struct mmu_context *ctx, const struct mmu_context *stage2,
	     const struct mmu_memory *mem, const struct mmu_walk_request *req,
	     struct mmu_walk_result *ret);

/*
 * Printable form of a walk result: a header line, one line per entry
 * (stage 1, then the stage-2 walk of the final access) with its decoded
 * flags, and a result or fault line; or the same as one JSON object whose
 * addresses and entry values are "0x..." strings (they exceed JSON's exact
 * integer range). docs/mmu.md shows both. Returns -ENOSPC (buf untouched)
 * if size is too small.
 */
int mmu_walk_format(const struct mmu_walk_result *res, enum mmu_format fmt, char *buf,
		    size_t size, size_t *ret_len);

/* "none", "#PF", "#GP", "#SS", "NPF", "EPT-violation", "EPT-misconfig". */
const char *mmu_fault_type_name(enum mmu_fault_type type);

/* ------------------------------------------------------------ PAE PDPTEs */

/*
 * PDPTE-register load for PAE paging (MOV CR3 / CR0 / CR4, MMU.md §2.4):
 * reads the four PDPTEs at CR3[31:5] and checks each present one for
 * reserved bits (bits 2:1, 8:5 and M..63). A bad PDPTE raises #GP(0) on
 * the MOV, never #PF: *ret_fault gets type MMU_FAULT_GP and level 3 (so
 * does a PDPT outside guest RAM); otherwise type NONE and ret_pdptes gets
 * the values. Negative errno only for callback failures (-EFAULT excepted).
 */
int mmu_pae_load_pdptes(const struct mmu_memory *mem, uint64_t cr3,
			const struct mmu_cpu_features *features, uint64_t ret_pdptes[4],
			struct mmu_fault *ret_fault);

/* Reserved bits of PDPTE register values (0 if the PDPTE is not present). */
uint64_t mmu_pae_pdpte_reserved(uint64_t pdpte, uint8_t maxphyaddr);

/* ------------------------------------------------------------ RESET / INIT */

enum mmu_reset_kind {
	MMU_RESET_POWER_ON, /* architectural RESET */
	MMU_RESET_INIT,
};

struct mmu_reset_outcome {
	struct mmu_role_regs regs; /* CR0/CR4/EFER after the event */
	union mmu_role role;	   /* role for them: direct (nonpaging) */
	bool role_changed;	   /* differs from the role of the old registers */
	bool drop_roots;	   /* cached roots / software TLB: always dropped */
	bool flush_tlb;		   /* always */
	bool kvm_resets_context;   /* KVM fully resets the MMU (old CR0.PG was 1) */
};

/*
 * The MMU side of RESET/INIT (MMU.md §6): RESET gives CR0=0x60000010,
 * INIT gives CR0 = ET | (old CR0 & (CD|NW)); CR4 = EFER = 0 in both. The
 * role becomes direct. flags: MMU_CTX_SMM / MMU_CTX_GUEST_MODE of the vCPU
 * at the event. Returns -EBUSY for INIT in SMM (latched until RSM) or in
 * guest mode (delivered to L1 first), -EINVAL for an unknown kind or flags.
 */
int mmu_reset_outcome(enum mmu_reset_kind kind, const struct mmu_role_regs *old,
		      unsigned int flags, struct mmu_reset_outcome *ret);

/* ------------------------------------------------------------ nested state */

enum mmu_nested_format {
	MMU_NESTED_VMX = 0, /* KVM_STATE_NESTED_FORMAT_VMX */
	MMU_NESTED_SVM = 1, /* KVM_STATE_NESTED_FORMAT_SVM */
};

/* struct kvm_nested_state: 128-byte header, then the data area. */
#define MMU_NESTED_HDR_SIZE 128
#define MMU_NESTED_VMCS12_SIZE 4096
#define MMU_NESTED_VMCB_SIZE 4096
/* Largest blob KVM produces (VMX with a shadow vmcs12). */
#define MMU_NESTED_MAX_SIZE (MMU_NESTED_HDR_SIZE + 2 * MMU_NESTED_VMCS12_SIZE)

/* kvm_nested_state.flags */
#define MMU_NESTED_GUEST_MODE 0x1U
#define MMU_NESTED_RUN_PENDING 0x2U
#define MMU_NESTED_EVMCS 0x4U
#define MMU_NESTED_MTF_PENDING 0x8U
#define MMU_NESTED_GIF_SET 0x100U

/* vmcs12 revision KVM stores (VMCS12_REVISION, vmx/vmcs12.h). */
#define MMU_VMCS12_REVISION 0x11e57ed0U

/* What the MMU needs from KVM_GET_NESTED_STATE. */
struct mmu_nested_state {
	enum mmu_nested_format format;
	uint16_t flags;
	uint32_t size;
	bool guest_mode;
	/* SVM */
	uint64_t vmcb12_pa;
	bool has_vmcb;	     /* data area present (guest mode) */
	bool npt_enabled;    /* control.nested_ctl bit 0 */
	uint64_t nested_cr3; /* control.nested_cr3 */
	/* vmcb01 save area: L1's state at VMRUN. */
	uint64_t l1_efer, l1_cr0, l1_cr3, l1_cr4, l1_rflags, l1_rip, l1_rsp, l1_rax;
	/* VMX */
	uint64_t vmxon_pa;  /* UINT64_MAX if not in VMX operation */
	uint64_t vmcs12_pa; /* UINT64_MAX if no current VMCS */
	uint16_t smm_flags;
	bool has_vmcs12;
	bool has_shadow_vmcs12;
	bool ept_enabled; /* primary bit 31 and secondary bit 1 */
	uint64_t ept_pointer;
	uint32_t cpu_based_ctls, secondary_ctls, entry_ctls;
	uint64_t guest_cr0, guest_cr3, guest_cr4, guest_efer;
	uint64_t guest_pdptrs[4];
	uint64_t host_cr0, host_cr3, host_cr4, host_efer;
};

/*
 * Parse a KVM_GET_NESTED_STATE blob of len bytes. Rejects with a message:
 * -EINVAL truncated input (len < header, or < the header's size, or a size
 * too small for the data its flags promise), unknown format, flags that
 * format does not define, inconsistent VMX header (vmcs12 without VMXON,
 * SMM flags), wrong vmcs12 revision; -E2BIG for a size above
 * MMU_NESTED_MAX_SIZE. Bytes past the header's size are ignored, since
 * KVM's buffer is sized by KVM_CHECK_EXTENSION(KVM_CAP_NESTED_STATE).
 */
int mmu_nested_state_parse(const void *buf, size_t len, struct mmu_nested_state *ret_state,
			   struct mmu_error *err);

/*
 * Stage-2 context for L2 from parsed nested state: NPT from vmcb01's CR4
 * and EFER plus nested_cr3, or EPT from vmcs12's EPTP. Returns -ENOENT
 * when translation is single-stage (L2 not active, or L1 did not enable
 * NPT/EPT), -EINVAL as mmu_context_init_npt/_ept().
 */
int mmu_context_init_nested(struct mmu_context *ret_ctx, const struct mmu_nested_state *state,
			    const struct mmu_cpu_features *features, unsigned int flags,
			    struct mmu_error *err);

/* ------------------------------------------------------------ validator */

/* The fields of KVM's struct kvm_segment. */
struct mmu_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type;
	uint8_t present, dpl, db, s, l, g, avl;
	uint8_t unusable;
};

/* Saved vCPU state to check before it is handed to KVM (sregs2-like). */
struct mmu_vcpu_state {
	struct mmu_segment cs, ds, es, fs, gs, ss, tr, ldt;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t efer;
	uint64_t pdptrs[4];
	bool pdptrs_valid; /* KVM_SREGS2_FLAGS_PDPTRS_VALID */
};

enum mmu_issue_code {
	MMU_ISSUE_CR0_HIGH_BITS,      /* CR0[63:32] set */
	MMU_ISSUE_CR0_RESERVED,	      /* reserved CR0[31:0] bits (KVM ignores them) */
	MMU_ISSUE_CR0_PG_WITHOUT_PE,
	MMU_ISSUE_CR0_NW_WITHOUT_CD,
	MMU_ISSUE_CR4_RESERVED,	      /* a CR4 bit the CPU model does not have */
	MMU_ISSUE_CR4_PCIDE_OUTSIDE_LONG_MODE,
	MMU_ISSUE_EFER_RESERVED,      /* an EFER bit the CPU model does not have */
	MMU_ISSUE_LONG_MODE_WITHOUT_PAE, /* EFER.LME && CR0.PG && !CR4.PAE */
	MMU_ISSUE_LONG_MODE_WITHOUT_LMA, /* EFER.LME && CR0.PG && !EFER.LMA */
	MMU_ISSUE_LMA_OUTSIDE_LONG_MODE, /* EFER.LMA without LME && PG */
	MMU_ISSUE_CS_L_OUTSIDE_LONG_MODE,
	MMU_ISSUE_CS_L_AND_D,
	MMU_ISSUE_CR3_RESERVED,	      /* CR3 bits at or above MAXPHYADDR */
	MMU_ISSUE_CR8_RESERVED,
	MMU_ISSUE_PDPTE_RESERVED,     /* a present PAE PDPTE with reserved bits */
	MMU_ISSUE_PDPTRS_WITHOUT_PAE, /* PDPTRS_VALID outside PAE paging */
	MMU_ISSUE_NESTED,	      /* nested-state inconsistency */
};

#define MMU_ISSUE_MSG_MAX 160
#define MMU_MAX_ISSUES 48

struct mmu_issue {
	enum mmu_issue_code code;
	bool kvm_rejects; /* KVM_SET_SREGS{,2}/NESTED_STATE would fail with -EINVAL */
	char msg[MMU_ISSUE_MSG_MAX];
};

struct mmu_issue_list {
	unsigned int count;
	bool truncated; /* more than MMU_MAX_ISSUES issues */
	struct mmu_issue issue[MMU_MAX_ISSUES];
};

/*
 * List every architectural inconsistency of a saved vCPU state against the
 * CPU model (and nested state, if not NULL), one clear message each.
 * Returns 0 with ret->count == 0 for a consistent state; -EINVAL only for
 * NULL arguments or a feature snapshot with MAXPHYADDR outside 32..52.
 */
int mmu_validate_vcpu_state(const struct mmu_vcpu_state *state,
			    const struct mmu_cpu_features *features,
			    const struct mmu_nested_state *nested, struct mmu_issue_list *ret);

/* Stable lower-case name of an issue code ("cr4-reserved", ...). */
const char *mmu_issue_code_name(enum mmu_issue_code code);

#endif
