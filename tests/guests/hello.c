/* SPDX-License-Identifier: MIT */
/*
 * hello: prints a greeting and exits through the debug-exit port with the
 * status given as exit=N on the command line (default 0; values above 255
 * are written as 32 bits, to test what hosts do with them).
 *
 * Output:
 *   Hello from the vmmd test guest (boot: multiboot)
 *   cmdline=<command line>
 *   exit=<N>
 */
#include "lib/guest.h"

int main(void)
{
	uint64_t code = cmdline_number("exit", 0);

	print("Hello from the vmmd test guest (boot: ");
	print(boot_protocol_name(boot.protocol));
	print(")\n");
	print_kv_str("cmdline", boot.cmdline);
	print_kv_dec("exit", (uint32_t)code);
	return (int)(uint32_t)code;
}
