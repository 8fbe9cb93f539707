/* SPDX-License-Identifier: MIT */
/*
 * Sending: the send ring, the synchronous send, and the datagram
 * destination cache.
 *
 * The send ring is the fast path: we write messages and publish tx_ptr;
 * v4vd moves them to their rings and hands the space back through rx_ptr,
 * with no system call unless v4vd has stopped polling the ring (need_kick).
 * A synchronous send (v4v_sendv) is for what must report its own errors:
 * the first datagram to a destination, and the stream handshake.
 *
 * Flow control is ring space: a send that finds no room leaves v4vd a
 * space wait and sleeps on POLLOUT (bell.c makes the fd unwritable).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "common/barrier.h"
#include "core/ring.h"
#include "sock.h"

/*
 * EBUSY: the ring has its maximum of waiters, so v4vd will not call us
 * back; nothing wakes us either (our fd is writable), so retry after a
 * pause that doubles up to 64 ms, rather than at once for as long as
 * that peer keeps its ring full.
 */
static int busy_pause(int *ms)
{
	if (poll(NULL, 0, *ms) < 0 && errno != EINTR)
		return -errno;
	if (*ms < 64)
		*ms *= 2;
	return 0;
}

/*
 * One message by hypercall, whole or nothing, waiting for space unless
 * non-blocking.  Returns the payload length or -errno.
 */
long v4v__send_msg(struct sock *s, const struct v4v_addr *to, uint32_t type, const void *buf,
		   size_t len, bool nonblock, uint32_t *max_message, v4v_port_t *spare)
{
	struct iovec iov = {(void *)buf, len};
	int pause_ms = 1;
	for (;;) {
		long r = v4v__sendv(s->d, s->port, to, &iov, 1, type, max_message, spare);
		if (r != -EAGAIN && r != -EBUSY)
			return r;
		if (r == -EAGAIN)
			v4v__bell_block(s); /* writable again when v4vd sees room */
		if (nonblock)
			return -EAGAIN;
		int e = r == -EBUSY ? busy_pause(&pause_ms) : v4v__wait_fd(s, POLLOUT, -1);
		if (e)
			return e;
		if (s->peer_gone)
			return -ECONNRESET;
	}
}

/* ---- the send ring ---------------------------------------------------- */

static uint32_t tx_head(struct sock *s)
{
	/* Acquire: v4vd has finished reading what it hands back. */
	return v4v_load_acquire(&s->tx->rx_ptr);
}

/* Room for need bytes (need 0: the ring is empty), given v4vd's head. */
static bool tx_fits(const struct sock *s, uint32_t head, uint64_t need)
{
	return need ? need <= v4v_ring_space(s->txlen, head, s->txtail) : head == s->txtail;
}

/*
 * Wait until the send ring has `need` bytes free (need 0: until it is
 * empty), at most limit_ms (then -ETIMEDOUT; -1: no limit).  Announce
 * first (want_space), then re-check, then sleep: v4vd sees want_space
 * after it consumes and makes our end writable again.  The sleeps are
 * short so that a queued send's failure (an event) is seen meanwhile.
 */
int v4v__tx_wait(struct sock *s, uint64_t need, bool nonblock, int limit_ms)
{
	uint64_t deadline = limit_ms >= 0 ? v4v__deadline(limit_ms) : 0;
	for (;;) {
		uint32_t head = tx_head(s);
		if (!v4v_ring_ptr_ok(head, s->txlen))
			return -EIO;
		if (tx_fits(s, head, need))
			return 0;
		/* Pairs with v4vd's fence between storing rx_ptr and reading
		 * want_space (hv_tx_pump). */
		v4v_announce(&s->tx->want_space);
		if (tx_fits(s, tx_head(s), need))
			return 0;
		v4v__bell_block(s);
		if (nonblock)
			return -EAGAIN;
		int ms = limit_ms >= 0 ? v4v__ms_left(deadline) : 100;
		if (ms == 0)
			return -ETIMEDOUT;
		int e = v4v__wait_fd(s, POLLOUT, ms < 100 ? ms : 100);
		if (e)
			return e;
		v4v__handle_events(s->d); /* a queued send may have failed meanwhile */
		if (s->peer_gone)
			return -ECONNRESET;
	}
}

/*
 * Queue one message on the send ring: the fast path, no system call
 * unless v4vd has stopped polling this ring (then one kick).
 */
long v4v__tx_put(struct sock *s, const struct v4v_addr *to, uint32_t type, const void *buf,
		 size_t len, bool nonblock)
{
	uint64_t need = v4v_msg_footprint(len);
	if (need > s->txlen - V4V_MSG_SLOT)
		return -EMSGSIZE;
	int e = v4v__tx_wait(s, need, nonblock, -1);
	if (e)
		return e;
	struct v4v_ring_message_header h = {
	    .len = (uint32_t)(V4V_MSG_HDR_SIZE + len),
	    .source = {.aport = to->aport, .domain_id = to->domain_id},
	    .message_type = type,
	};
	struct v4v_seg seg = {buf, len};
	s->txtail = v4v_ring_put(s->tx->ring, s->txlen, s->txtail, &h, &seg, 1);
	/* Release: the message is written before v4vd can see it. */
	v4v_store_release(&s->tx->tx_ptr, s->txtail);
	/* Pairs with v4vd's fence in hv_tx_park: it parks, then re-checks.
	 * A failed kick is one already queued (the doorbell is full of them)
	 * or a v4vd gone, which the next call sees. */
	if (v4v_should_wake(&s->tx->need_kick))
		(void)send(s->fd, "k", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	return (long)len;
}

/* Before the ring goes: give v4vd what is still queued, for at most
 * limit_ms (what is left of close's LINGER_MS). */
void v4v__tx_linger(struct sock *s, int limit_ms)
{
	if (s->tx && !s->peer_gone)
		(void)v4v__tx_wait(s, 0, false, limit_ms);
}

/* ---- datagram destinations -------------------------------------------- */

struct dest *v4v__dest_find(struct sock *s, const struct v4v_addr *to)
{
	for (unsigned i = 0; i < s->ndest; i++)
		if (v4v__same_addr(&s->dest[i].addr, to))
			return &s->dest[i];
	return NULL;
}

/* Remember a destination that took a synchronous send, with the size its
 * reply told (max 0, not known, only keeps its sends synchronous). */
void v4v__dest_add(struct sock *s, const struct v4v_addr *to, uint32_t max)
{
	if (!max)
		return;
	unsigned i = s->ndest < DEST_CACHE ? s->ndest++ : s->dest_next++ % DEST_CACHE;
	s->dest[i] = (struct dest){.addr = *to, .max = max};
}

/* A queued send to it failed: the next one is synchronous again. */
void v4v__dest_forget(struct sock *s, const struct v4v_addr *to)
{
	for (unsigned i = 0; i < s->ndest; i++)
		if (v4v__same_addr(&s->dest[i].addr, to))
			s->dest[i] = s->dest[--s->ndest];
}
