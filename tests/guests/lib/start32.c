/* SPDX-License-Identifier: MIT */
#include "guest.h"

void guest_start32(uint32_t protocol, uint32_t eax, uint32_t ebx);

/* Called by entry32.S on the guest's own stack and GDT. */
void guest_start32(uint32_t protocol, uint32_t eax, uint32_t ebx)
{
	boot_init((enum boot_protocol)protocol, eax, ebx);
	serial_init();
	guest_exit((uint32_t)main());
}
