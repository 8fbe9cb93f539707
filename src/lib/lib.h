/* SPDX-License-Identifier: MIT */
/* libv4v internals: the domain handle and the hypercall transport. */
#ifndef V4V_LIB_H
#define V4V_LIB_H

#include <pthread.h>
#include <stdbool.h>

#include "core/proto.h"
#include "v4v/v4v.h"

struct v4v_domain {
	pthread_mutex_t lock; /* one hypercall at a time per process */
	int domain_fd;        /* membership; attach requests go here */
	bool own_domain_fd;
	int chan;             /* private channel to v4vd */
	int virq;             /* eventfd from v4vd */
	int poll_fd;          /* epoll over virq + chan hang-up */
	uint8_t *staging;     /* V4V_STAGING_SIZE, shared with v4vd */
	pid_t pid;            /* the process attached; re-attach after fork */
	uint32_t seq;
	uint16_t domid;
	char name[32];
	bool dead;            /* v4vd went away */
};

/* One request/reply round trip (lock held by the caller).  Returns the
 * reply's ret, or -EPIPE when v4vd is gone. */
long v4v__call(struct v4v_domain *d, void *req, size_t n, int fd, void *reply,
	       size_t cap, size_t *got);
/* Take the lock and re-attach first if we are a fork child. */
int v4v__enter(struct v4v_domain *d);
void v4v__leave(struct v4v_domain *d);

#endif
