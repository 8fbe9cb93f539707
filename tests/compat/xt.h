/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the libxenvchan tests: a server and a client domain, the
 * path between them, and Xen's select-then-wait loop.
 */
#ifndef V4V_TESTS_XT_H
#define V4V_TESTS_XT_H

#include <errno.h>
#include <stdlib.h>

#include "ct.h"
#include "libxenvchan.h"

enum { SRV, CLI };

static char path[128];

static inline void set_path(unsigned port)
{
	snprintf(path, sizeof(path), "/local/domain/%u/data/vchan/%u/%u", ct_dom[SRV], ct_dom[CLI],
		 port);
}

/* The parent passes one byte from a to b (a barrier between domains). */
static inline void relay(unsigned a, unsigned b)
{
	ct_put(ct_ctl[b], ct_get(ct_ctl[a]));
}

/* Xen's loop: select on the fd, then wait. */
static inline void await(struct libxenvchan *c)
{
	CHECK(ct_select(libxenvchan_fd_for_select(c), 10000));
	CHECK_EQ(libxenvchan_wait(c), 0);
}

static inline struct libxenvchan *serve(size_t rd, size_t wr)
{
	struct libxenvchan *s = libxenvchan_server_init(NULL, ct_dom[CLI], path, rd, wr);
	CHECK(s);
	CHECK_EQ(s->is_server, 1);
	CHECK_EQ(s->blocking, 0);
	CHECK_EQ(libxenvchan_is_open(s), 2);
	return s;
}

static inline struct libxenvchan *serve_at(const char *p)
{
	struct libxenvchan *s = libxenvchan_server_init(NULL, ct_dom[CLI], p, 0, 0);
	CHECK(s);
	return s;
}

static inline void until_open(struct libxenvchan *s)
{
	while (libxenvchan_is_open(s) == 2)
		await(s);
	CHECK_EQ(libxenvchan_is_open(s), 1);
}

static inline struct libxenvchan *connect_to(void)
{
	struct libxenvchan *c = libxenvchan_client_init(NULL, ct_dom[SRV], path);
	if (!c)
		fprintf(stderr, "client_init: %s\n", strerror(errno));
	CHECK(c);
	CHECK_EQ(c->is_server, 0);
	CHECK_EQ(libxenvchan_is_open(c), 1);
	return c;
}

#endif
