/* SPDX-License-Identifier: MIT */
/*
 * Datagram sockets: one message per send, to any bound socket, whole or
 * not at all.
 *
 * The first send to a destination is synchronous (tx.c: v4v__send_msg), so
 * that its errors (no such ring, too big, refused) are this call's; a
 * destination that took one is cached and later sends to it are queued on
 * the send ring, their failures coming back as events (bell.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/socket.h>

#include "core/ring.h"
#include "sock.h"

/* connect() on a datagram socket: the default destination, and the only
 * source we accept from. */
int v4v__dgram_connect(struct sock *s, const struct v4v_addr *peer)
{
	s->peer = (struct v4v_addr){.aport = peer->aport, .domain_id = peer->domain_id};
	s->has_peer = true;
	return 0;
}

/* The socket's ring on first use (an ephemeral port, anyone may send). */
static int autobind(struct sock *s)
{
	if (s->rx)
		return 0;
	int e = v4v__sock_ring_up(s, 0, V4V_DOMID_ANY);
	if (!e)
		s->state = S_BOUND;
	return e;
}

/* Send one datagram; the length, or -errno. */
static long dgram_send(struct sock *s, const void *buf, size_t len, bool nonblock,
		       const struct v4v_addr *to)
{
	struct dest *d = v4v__dest_find(s, to);
	if (d && len > d->max)
		return -EMSGSIZE;
	if (d && v4v_msg_footprint(len) <= s->txlen - V4V_MSG_SLOT)
		return v4v__tx_put(s, to, MT_DGRAM, buf, len, nonblock);
	/* First send to here: synchronous, so its errors are this call's.
	 * Queued messages go first, to keep the order per destination. */
	uint32_t max = 0;
	long r = v4v__tx_wait(s, 0, nonblock, -1);
	if (r == 0)
		r = v4v__send_msg(s, to, MT_DGRAM, buf, len, nonblock, &max, NULL);
	if (r >= 0 && !d)
		v4v__dest_add(s, to, max);
	return r;
}

ssize_t v4v_sendto(int fd, const void *buf, size_t len, int flags, const struct v4v_addr *to)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	if (v4v__is_conn(s))
		return to ? v4v__fail(EISCONN) : v4v_send(fd, buf, len, flags);
	if (s->d->dead)
		return v4v__fail(EPIPE); /* the send ring's fast path would not notice */
	if (!to) {
		if (!s->has_peer)
			return v4v__fail(EDESTADDRREQ);
		to = &s->peer;
	}
	int e = autobind(s);
	if (!e)
		e = v4v__sock_error(s);
	if (e)
		return v4v__fail(-e);
	long r = dgram_send(s, buf, len, s->nonblock || (flags & MSG_DONTWAIT), to);
	return r < 0 ? v4v__fail((int)-v4v__unreach(r)) : r;
}

ssize_t v4v_recvfrom(int fd, void *buf, size_t len, int flags, struct v4v_addr *from)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	if (v4v__is_conn(s)) {
		ssize_t n = v4v_recv(fd, buf, len, flags);
		if (n >= 0 && from)
			*from = s->peer;
		return n;
	}
	if (!s->rx)
		return v4v__fail(EINVAL); /* not bound: nothing can arrive */
	bool nonblock = s->nonblock || (flags & MSG_DONTWAIT);
	for (;;) {
		struct v4v_msg m;
		int r = v4v_rx_peek(s->rx, &m);
		if (r < 0)
			return v4v__fail(EIO);
		if (r == 1) {
			bool keep = m.message_type == MT_DGRAM &&
				    (!s->has_peer || v4v__same_addr(&m.source, &s->peer));
			size_t n = keep ? v4v_msg_read(&m, buf, len) : 0;
			if (m.message_type == MT_SYN)
				v4v__refuse(s, &m);
			if (keep && from)
				*from = m.source;
			if (!(flags & MSG_PEEK) || !keep)
				v4v__consume(s, &m);
			if (keep) {
				v4v__read_done(s);
				return (ssize_t)n;
			}
			continue;
		}
		int e = v4v__wait_readable(s, nonblock);
		if (e < 0)
			return v4v__fail(-e);
	}
}
