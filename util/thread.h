/* SPDX-License-Identifier: MIT */
/*
 * The one way threads are started: every thread gets a name visible in
 * ps/top/gdb ("vcpu/0", ...), and this is where per-thread sandboxing will
 * be installed.
 */
#ifndef VMMD_UTIL_THREAD_H
#define VMMD_UTIL_THREAD_H

#include <pthread.h>

/* Starts fn(arg) on a new thread named `name` (at most 15 chars). 0 or -errno. */
int thread_start(pthread_t *ret, const char *name, void *(*fn)(void *), void *arg);

#endif
