/* SPDX-License-Identifier: MIT */
#include "util/thread.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"

struct thread_start_args {
	char name[16];
	void *(*fn)(void *);
	void *arg;
};

static void *thread_trampoline(void *p)
{
	struct thread_start_args a = *(struct thread_start_args *)p;

	free(p);
	pthread_setname_np(pthread_self(), a.name);
	return a.fn(a.arg);
}

int thread_start(pthread_t *ret, const char *name, void *(*fn)(void *), void *arg)
{
	struct thread_start_args *a = calloc(1, sizeof(*a));
	int rc;

	if (!a)
		return -ENOMEM;
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->fn = fn;
	a->arg = arg;
	rc = pthread_create(ret, NULL, thread_trampoline, a);
	if (rc != 0) {
		free(a);
		return -rc;
	}
	/* Also named from here, so the name is visible as soon as we return. */
	pthread_setname_np(*ret, name);
	return 0;
}
