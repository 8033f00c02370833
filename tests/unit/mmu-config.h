/* SPDX-License-Identifier: MIT */
/*
 * Default inputs of MMU.md §8: 4-level paging, MAXPHYADDR 46, EFER.NX=1,
 * CR0.WP=1, SMEP/SMAP/PKE off, Intel. Header-only, for the mmu unit tests.
 */
#ifndef VMMD_TESTS_UNIT_MMU_CONFIG_H
#define VMMD_TESTS_UNIT_MMU_CONFIG_H

#include "mmu/mmu.h"

#define CFG_ALL_EPT_CAPS                                                                   \
	(MMU_EPT_CAP_EXECUTE_ONLY | MMU_EPT_CAP_WALK_4 | MMU_EPT_CAP_WALK_5 |              \
	 MMU_EPT_CAP_MT_UC | MMU_EPT_CAP_MT_WB | MMU_EPT_CAP_2M | MMU_EPT_CAP_1G |         \
	 MMU_EPT_CAP_AD)

static inline struct mmu_cpu_features cfg_features(void)
{
	return (struct mmu_cpu_features){
		.maxphyaddr = 46,
		.vendor = MMU_VENDOR_INTEL,
		.nx = true,
		.gbpages = true,
		.la57 = true,
		.pku = true,
		.smep = true,
		.smap = true,
		.pse = true,
		.pse36 = true,
		.pae = true,
		.lm = true,
		.pcid = true,
		.xsave = true,
		.fsgsbase = true,
		.umip = true,
		.vmx = true,
		.svm = true,
		.ept_caps = CFG_ALL_EPT_CAPS,
	};
}

#define CFG_CR0 (MMU_CR0_PE | MMU_CR0_ET | MMU_CR0_NE | MMU_CR0_WP | MMU_CR0_PG)

static inline struct mmu_role_regs cfg_regs(enum mmu_paging_mode mode)
{
	switch (mode) {
	case MMU_MODE_NONE:
		return (struct mmu_role_regs){ .cr0 = MMU_CR0_PE | MMU_CR0_ET };
	case MMU_MODE_32BIT:
		return (struct mmu_role_regs){ .cr0 = CFG_CR0, .cr4 = MMU_CR4_PSE,
					       .efer = MMU_EFER_NX };
	case MMU_MODE_PAE:
		return (struct mmu_role_regs){ .cr0 = CFG_CR0, .cr4 = MMU_CR4_PAE,
					       .efer = MMU_EFER_NX };
	case MMU_MODE_5LEVEL:
		return (struct mmu_role_regs){
			.cr0 = CFG_CR0,
			.cr4 = MMU_CR4_PAE | MMU_CR4_LA57,
			.efer = MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NX,
		};
	default:
		return (struct mmu_role_regs){
			.cr0 = CFG_CR0,
			.cr4 = MMU_CR4_PAE,
			.efer = MMU_EFER_LME | MMU_EFER_LMA | MMU_EFER_NX,
		};
	}
}

/* A linear address whose every index is non-zero in its mode. */
static inline uint64_t cfg_gva(enum mmu_paging_mode mode)
{
	switch (mode) {
	case MMU_MODE_32BIT:
	case MMU_MODE_PAE:
	case MMU_MODE_NONE:
		return 0x7f123abcULL;
	case MMU_MODE_5LEVEL:
		return 0x00ab7f1234567abcULL;
	default:
		return 0x00007f1234567abcULL;
	}
}

#endif
