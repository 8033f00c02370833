/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the mmu/ sources. mmu/ depends on libc only, so the
 * few helpers it needs live here rather than in util/.
 */
#ifndef VMMD_MMU_MMU_INTERNAL_H
#define VMMD_MMU_MMU_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmu/mmu.h"

/* Mask with bits lo..hi (inclusive) set: MMU.md's bits(lo,hi). */
#define MMU_BITS(lo, hi) ((~0ULL >> (63 - (hi))) & ~((1ULL << (lo)) - 1))
#define MMU_BIT(n) (1ULL << (n))

#define MMU_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MMU_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

/* Paging-structure entry bits (SDM Vol. 3A §4.3–4.5). */
#define PTE_P MMU_BIT(0)
#define PTE_RW MMU_BIT(1)
#define PTE_US MMU_BIT(2)
#define PTE_A MMU_BIT(5)
#define PTE_D MMU_BIT(6)
#define PTE_PS MMU_BIT(7)
#define PTE_XD MMU_BIT(63)
#define PTE_PKEY_SHIFT 59

/* EPT entry bits (SDM Vol. 3C §29.3.2). */
#define EPTE_R MMU_BIT(0)
#define EPTE_W MMU_BIT(1)
#define EPTE_X MMU_BIT(2)
#define EPTE_RWX (EPTE_R | EPTE_W | EPTE_X)
#define EPTE_A MMU_BIT(8)
#define EPTE_D MMU_BIT(9)

/* EPTP fields (SDM Vol. 3C §25.6.11). */
#define EPTP_MT_MASK MMU_BITS(0, 2)
#define EPTP_WALK_SHIFT 3
#define EPTP_WALK_MASK MMU_BITS(3, 5)
#define EPTP_AD MMU_BIT(6)

/* KVM's ACC_* rights encoding, used as the permission-table index. */
#define ACC_EXEC 1U
#define ACC_WRITE 2U
#define ACC_USER 4U
#define ACC_ALL 7U

#define MMU_MAXPHYADDR_MIN 32
#define MMU_MAXPHYADDR_MAX 52

static inline bool mmu_maxphyaddr_valid(unsigned int m)
{
	return m >= MMU_MAXPHYADDR_MIN && m <= MMU_MAXPHYADDR_MAX;
}

/* Bits M..63: physical-address bits beyond MAXPHYADDR. */
static inline uint64_t mmu_rsvd_pa(unsigned int maxphyaddr)
{
	return MMU_BITS(maxphyaddr, 63);
}

/* ---- bounded string builder for the printable forms ---- */

/*
 * Appends to buf without ever overflowing; `len` keeps counting past the
 * end so the caller learns the size it would have needed. buf may be NULL
 * (size 0) for a dry run.
 */
struct strbuf {
	char *buf;
	size_t size;
	size_t len;
};

void sb_init(struct strbuf *sb, char *buf, size_t size);
void sb_printf(struct strbuf *sb, const char *fmt, ...) MMU_PRINTF(2, 3);
void sb_json_str(struct strbuf *sb, const char *s);

/*
 * Runs fn twice — once to measure, once to write — so the caller's buffer
 * is written only when the result fits (ret_ untouched on -ENOSPC).
 */
typedef void (*sb_emit_fn)(struct strbuf *sb, const void *arg);
int sb_format(sb_emit_fn fn, const void *arg, char *buf, size_t size, size_t *ret_len);

void mmu_error_set(struct mmu_error *err, const char *fmt, ...) MMU_PRINTF(2, 3);

/* ---- context internals ---- */

/* Reserved-bit masks for an x86-format role (MMU.md §2.2). */
void mmu_rsvd_masks_x86(struct mmu_context *ctx, const struct mmu_cpu_features *features);
/* Reserved-bit masks and memory-type/XWR table for EPT (MMU.md §5.3). */
void mmu_rsvd_masks_ept(struct mmu_context *ctx, const struct mmu_cpu_features *features);
/* Permission table and PKRU mask (MMU.md §3.3, §3.4). */
void mmu_perm_tables(struct mmu_context *ctx);

/* ---- per-entry checks, inline: they run at every level of every walk ---- */

/*
 * Whether an entry ends the walk at `level` (MMU.md §2.3): level 1 always;
 * bit 7 elsewhere, except that 32-bit paging honours it only in a PDE
 * with CR4.PSE=1. Scalar arguments so hot loops can keep them in registers.
 */
static inline bool mmu_last_level(unsigned int level, uint64_t entry, bool four_byte, bool pse)
{
	return level == 1 || ((entry & PTE_PS) && (!four_byte || (level == 2 && pse)));
}

static inline bool mmu_is_last_level(const struct mmu_context *ctx, unsigned int level,
				     uint64_t entry)
{
	return mmu_last_level(level, entry, ctx->role.has_4_byte_gpte, ctx->role.cr4_pse);
}

static inline bool mmu_is_reserved(const struct mmu_context *ctx, unsigned int level,
				   uint64_t entry)
{
	return entry & ctx->rsvd[(entry & PTE_PS) ? 1 : 0][level - 1];
}

/* EPT: reserved bits or a bad memory type / XWR combination (§5.3). */
static inline bool mmu_ept_is_misconfig(const struct mmu_context *ctx, unsigned int level,
					uint64_t entry)
{
	return mmu_is_reserved(ctx, level, entry) || ((ctx->ept_bad_mt_xwr >> (entry & 63)) & 1);
}

/*
 * I bit of a #PF / NPF error code (MMU.md §3.5). SDM Vol. 3A §4.7: set for
 * fetches if CR4.SMEP, or if EFER.NXE with PAE/4/5-level paging. KVM uses
 * the role's efer_nx in every mode.
 */
static inline uint32_t mmu_fetch_error_bit(const struct mmu_context *ctx, uint32_t access)
{
	bool nx_counts;

	if (!(access & MMU_ACCESS_FETCH))
		return 0;
	nx_counts = ctx->role.efer_nx && (ctx->kvm_compat || !ctx->role.has_4_byte_gpte);
	return (nx_counts || ctx->role.cr4_smep) ? MMU_PFERR_I : 0;
}

/*
 * The #PF error code of a permission / protection-key fault for a walk
 * that ended with effective rights `rights` (ACC_*) and leaf key `pkey`,
 * or 0 if the access is allowed (KVM's permission_fault() method, §3.3).
 */
static inline uint32_t mmu_permission_fault(const struct mmu_context *ctx, unsigned int rights,
					    unsigned int pkey, uint32_t access, bool eflags_ac,
					    uint32_t pkru)
{
	uint32_t pfec = access & (MMU_PFERR_W | MMU_PFERR_U | MMU_PFERR_I);
	/* EFLAGS.AC overrides SMAP for explicit accesses only. */
	bool smap_override = eflags_ac && !(access & MMU_ACCESS_IMPLICIT);
	unsigned int idx = (pfec | (smap_override ? MMU_PFERR_RSVD : 0)) >> 1;
	bool fault = (ctx->perm[idx] >> rights) & 1;
	uint32_t code = 0;

	if (ctx->pkru_mask) {
		uint32_t offset = pfec | ((rights & ACC_USER) ? MMU_PFERR_RSVD : 0);
		uint32_t key_bits = (pkru >> (2 * pkey)) & 3;

		if (key_bits & (ctx->pkru_mask >> offset)) {
			code |= MMU_PFERR_PK;
			fault = true;
		}
	}
	if (!fault)
		return 0;
	return code | MMU_PFERR_P | (access & (MMU_PFERR_W | MMU_PFERR_U)) |
	       mmu_fetch_error_bit(ctx, access);
}

#endif
