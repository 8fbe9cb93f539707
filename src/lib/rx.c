/* SPDX-License-Identifier: MIT */
/*
 * Receive rings: allocation, registration and reading in place.
 *
 * The ring is ours, but v4vd writes tx_ptr and data concurrently: tx_ptr is
 * read with acquire (the bytes it covers are then visible), rx_ptr is
 * stored with release after we are done reading (v4vd may then overwrite).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/barrier.h"
#include "common/util.h"
#include "core/ring.h"
#include "lib.h"

struct v4v_rx {
	struct v4v_domain *d;
	struct v4v_ring *ring;
	v4v_port_t aport;
	uint16_t partner;
	uint32_t len;
	uint32_t rx; /* our own copy of rx_ptr: the header is writable by us only */
};

int v4v_ring_register(struct v4v_domain *d, v4v_port_t aport, uint16_t partner, uint32_t len,
		      uint32_t flags, struct v4v_rx **out)
{
	int e = v4v__ring_register(d, aport, partner, len, flags, -1, -1, 0, out);
	if (e == -ENOSPC) {
		/* Closed streams' rings this process keeps count against the
		 * quota too (pool.c): they give way to the caller's ring. */
		v4v__pool_flush(d, false);
		e = v4v__ring_register(d, aport, partner, len, flags, -1, -1, 0, out);
	}
	return e;
}

int v4v__ring_register(struct v4v_domain *d, v4v_port_t aport, uint16_t partner, uint32_t len,
		       uint32_t flags, int bell, int txfd, uint32_t txlen, struct v4v_rx **out)
{
	if (!v4v_ring_len_ok(len))
		return -EINVAL;
	size_t size = V4V_RING_HDR_SIZE + (size_t)len;
	struct v4v_rx *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	/* A socket's ring is committed, as its send ring is (socket.c
	 * v4v__sock_ring_up): its pages exist and are mapped in from here on,
	 * so the first messages through it fault on nothing, here or in
	 * v4vd (take.c).  A ring of the low-level call is left to the first
	 * touch: its caller picks any size up to 16 MiB and moves one message
	 * per synchronous call, where a fault per page is noise. */
	bool commit = bell >= 0;
	int fd =
	    commit ? v4v_memfd_committed("v4v-ring", size) : v4v_memfd_sealed("v4v-ring", size);
	if (fd < 0) {
		free(r);
		return fd;
	}
	r->ring = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (commit ? MAP_POPULATE : 0),
		       fd, 0);
	if (r->ring == MAP_FAILED) {
		int e = -errno;
		close(fd);
		free(r);
		return e;
	}
	r->d = d;
	r->aport = aport;
	r->partner = partner;
	r->len = len;

	struct v4v_req_register q = {
	    .h = {.op = V4V_OP_REGISTER_RING},
	    .ring = {.aport = aport, .partner_id = partner, .len = len},
	    .flags = flags,
	    .tx_len = txfd >= 0 ? txlen : 0,
	};
	struct v4v_reply rep;
	long ret = v4v__enter(d);
	if (!ret) {
		int fds[3] = {fd, bell, txfd};
		ret = v4v__call_fds(d, &q, sizeof(q), fds,
				    txfd >= 0	? 3
				    : bell >= 0 ? 2
						: 1,
				    &rep, sizeof(rep), NULL);
		v4v__leave(d);
	}
	close(fd); /* v4vd has its own mapping; ours stays */
	if (ret < 0) {
		munmap(r->ring, size);
		free(r);
		return (int)ret;
	}
	*out = r;
	return 0;
}

/* A call that names one of our rings by its key: unregister, poke. */
static int ring_call(struct v4v_rx *r, uint32_t op)
{
	struct v4v_req_unregister q = {
	    .h = {.op = op},
	    .aport = r->aport,
	    .partner_id = r->partner,
	};
	struct v4v_reply rep;
	long ret = v4v__enter(r->d);
	if (!ret) {
		ret = v4v__call(r->d, &q, sizeof(q), -1, &rep, sizeof(rep), NULL);
		v4v__leave(r->d);
	}
	return (int)ret;
}

int v4v__ring_poke(struct v4v_rx *r)
{
	return ring_call(r, V4V_OP_RING_POKE);
}

static void rx_free(struct v4v_rx *r)
{
	munmap(r->ring, V4V_RING_HDR_SIZE + (size_t)r->len);
	free(r);
}

int v4v_ring_unregister(struct v4v_rx *r)
{
	if (!r)
		return 0;
	int ret = ring_call(r, V4V_OP_UNREGISTER_RING);
	rx_free(r);
	return ret;
}

void v4v__rx_forget(struct v4v_rx *r)
{
	rx_free(r);
}

void v4v__rx_set_partner(struct v4v_rx *r, uint16_t partner)
{
	r->partner = partner;
}

int v4v_rx_peek(struct v4v_rx *r, struct v4v_msg *m)
{
	/* Acquire: pairs with v4vd's release of tx_ptr after writing data. */
	uint32_t tx = v4v_load_acquire(&r->ring->tx_ptr);
	return v4v_ring_peek(r->ring->ring, r->len, r->rx, tx, m);
}

void v4v_rx_consume(struct v4v_rx *r, const struct v4v_msg *m)
{
	r->rx = m->next_rx;
	/* Release: our reads of the message happen before v4vd may reuse it. */
	v4v_store_release(&r->ring->rx_ptr, r->rx);
}

bool v4v__rx_idle(struct v4v_rx *r)
{
	/*
	 * About to sleep: our rx_ptr store (in consume) must be visible
	 * before we look at tx_ptr once more.  Pairs with v4vd's fence
	 * between storing tx_ptr and re-reading rx_ptr (core/deliver.c,
	 * deliver; docs/ARCHITECTURE.md, "Shared-memory handshakes").
	 */
	v4v_fence();
	uint32_t tx = v4v_load_acquire(&r->ring->tx_ptr);
	return tx == r->rx;
}

size_t v4v_msg_read(const struct v4v_msg *m, void *buf, size_t cap)
{
	return v4v_msg_copy(m, buf, cap);
}

struct v4v_addr v4v_rx_addr(const struct v4v_rx *r)
{
	return (struct v4v_addr){.aport = r->aport, .domain_id = r->d->domid};
}
uint16_t v4v_rx_partner(const struct v4v_rx *r)
{
	return r->partner;
}
uint32_t v4v_rx_len(const struct v4v_rx *r)
{
	return r->len;
}
struct v4v_ring *v4v__rx_ring(struct v4v_rx *r)
{
	return r->ring;
}

uint32_t v4v_rx_used(const struct v4v_rx *r)
{
	/* Acquire: pairs with v4vd's release of tx_ptr, as in v4v_rx_peek.
	 * rx is our own copy, so v4vd cannot make this exceed len. */
	uint32_t tx = v4v_load_acquire(&r->ring->tx_ptr) % r->len;
	return v4v_ring_used(r->len, r->rx, tx);
}

size_t v4v_msg_ring_bytes(size_t payload)
{
	return (size_t)v4v_msg_footprint(payload);
}
