/* SPDX-License-Identifier: MIT */
#ifndef VMMD_WORKER_WORKER_H
#define VMMD_WORKER_WORKER_H

/*
 * Entry point of a VM worker process ("vmmd --worker NAME"): serves vmmd's
 * requests on the link inherited as fd 3 until the VM has ended and its
 * exit has been reported. Returns the process exit status.
 */
int worker_main(const char *name);

#endif
