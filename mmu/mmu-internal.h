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

/*
 * Returns the #PF error code of a permission / protection-key fault for a
 * walk that ended with effective rights `rights` (ACC_*) and leaf key
 * `pkey`, or 0 if the access is allowed.
 */
uint32_t mmu_permission_fault(const struct mmu_context *ctx, unsigned int rights,
			      unsigned int pkey, uint32_t access, bool eflags_ac, uint32_t pkru);

/* I bit of a #PF / NPF error code for this access (MMU.md §3.5). */
uint32_t mmu_fetch_error_bit(const struct mmu_context *ctx, uint32_t access);

/* Whether an entry with bit 7 as given ends the walk at `level` (§2.3). */
bool mmu_is_last_level(const struct mmu_context *ctx, unsigned int level, uint64_t entry);

bool mmu_is_reserved(const struct mmu_context *ctx, unsigned int level, uint64_t entry);
/* EPT: reserved bits or bad memory type / XWR combination (§5.3). */
bool mmu_ept_is_misconfig(const struct mmu_context *ctx, unsigned int level, uint64_t entry);

#endif
