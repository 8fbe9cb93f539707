/* SPDX-License-Identifier: MIT */
/*
 * The doorbell and readiness: what makes a socket fd poll like a socket.
 *
 * v4vd writes one-byte tokens (wire/proto.h: HV_SIG_*) into the doorbell pair
 * whose other end is the user's fd: DATA when the ring goes non-empty,
 * WAITER when a sender waits for space in our ring, EVENT when this
 * process has events (a peer gone, a queued send failed).  Here: reading
 * those tokens, sleeping on the fd, applying events to the sockets they
 * name, and keeping POLLIN true exactly while a read would not block.
 * The reader notifies v4vd after consuming when it has heard (a WAITER
 * token) that someone waits: a byte on the doorbell, not a round trip.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/ring.h"
#include "sock.h"

/* ---- tokens ----------------------------------------------------------- */

/*
 * The one-byte token packets queued on a doorbell end fd, taken: their
 * bits, or -EPIPE at end of file (the other end is closed).  Up to
 * BELL_BATCH in one call, and a short batch means the queue was empty
 * (no EAGAIN call).
 */
int v4v__bell_tokens(int fd)
{
	enum { BELL_BATCH = 32 };
	uint8_t tok[BELL_BATCH];
	struct iovec iov[BELL_BATCH];
	struct mmsghdr mm[BELL_BATCH];
	unsigned bits = 0;
	for (int i = 0; i < BELL_BATCH; i++) {
		iov[i] = (struct iovec){&tok[i], 1};
		mm[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
	}
	int n;
	do {
		n = recvmmsg(fd, mm, BELL_BATCH, MSG_DONTWAIT, NULL);
		for (int i = 0; i < n; i++) {
			if (mm[i].msg_len == 0)
				return -EPIPE;
			bits |= tok[i];
		}
	} while (n == BELL_BATCH);
	return (int)bits;
}

/*
 * Read the tokens v4vd left and act on them.  Only called when the ring
 * has been seen empty: DATA tokens are raised on empty -> non-empty, so
 * while data is in the ring its token stays queued and the fd polls
 * readable, as poll(2) users expect.  Returns the bits, or -EPIPE.
 */
static int bell_drain(struct sock *s)
{
	int got = v4v__bell_tokens(s->fd);
	if (got == -EPIPE && s->rx) {
		s->d->dead = true;
		return -EPIPE; /* v4vd hung up: it is gone */
	}
	unsigned bits = got < 0 ? 0 : (unsigned)got; /* end of file before the ring is up */
	s->bell_clean = true;
	if (bits & HV_SIG_WAITER)
		s->need_notify = true;
	if (bits & HV_SIG_EVENT)
		v4v__handle_events(s->d);
	return (int)bits;
}

/* Make our end unwritable until v4vd sees space for our waiting send.  A
 * blocker that does not fit means the end is unwritable already. */
void v4v__bell_block(struct sock *s)
{
	static const char junk[4096];
	(void)send(s->fd, junk, s->blocker_len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * Tell v4vd we consumed, if a sender may wait on our ring: a byte on the
 * doorbell (v4vd re-checks this ring's waiters when it reads it,
 * daemon/bell.c:v4vd_bell_handle), so that we never wait for v4vd here.
 * Our end is unwritable only while our own blocker or kicks are queued
 * unread; then the synchronous notify.  If that fails, try again after
 * the next read; a v4vd gone shows on the doorbell.
 */
static void notify_if_needed(struct sock *s)
{
	if (!s->need_notify)
		return;
	if (send(s->fd, "n", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
		s->need_notify = false;
	else
		s->need_notify = v4v_notify(s->d, NULL, 0) < 0;
}

/* Sleep until the fd is ready for `events` (both modes use the doorbell). */
int v4v__wait_fd(struct sock *s, short events, int ms)
{
	struct pollfd p = {.fd = s->fd, .events = events};
	int r;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (p.revents & (POLLHUP | POLLERR)) {
		s->d->dead = true;
		return -EPIPE;
	}
	return 0;
}

/* ---- events ----------------------------------------------------------- */

static void apply_event(struct sock *s, const struct v4v_event *e)
{
	switch (e->type) {
	case V4V_EV_PARTNER_GONE:
		if (s->has_peer && s->peer.domain_id == e->peer.domain_id)
			s->peer_gone = true;
		break;
	case V4V_EV_RING_GONE:
		if (!s->has_peer || !v4v__same_addr(&s->peer, &e->peer))
			break;
		/* A stream still connecting names the listener: its going is
		 * no reset of a connection whose SYNACK is in our ring already
		 * (a server that closes its listener once it has accepted).
		 * stream.c:finish_connect decides. */
		if (s->type == V4V_SOCK_STREAM && s->state != S_CONNECTED)
			s->syn_gone = true;
		else
			s->peer_gone = true;
		break;
	case V4V_EV_RING_BROKEN: s->so_error = EIO; break;
	case V4V_EV_SEND_FAILED:
		v4v__dest_forget(s, &e->peer);
		if (v4v__is_conn(s) && s->has_peer && v4v__same_addr(&s->peer, &e->peer))
			s->peer_gone = true;
		else
			s->so_error = e->pad == ESRCH ? EHOSTUNREACH : (int)e->pad;
		break;
	}
}

/* A probe after lost events: does the peer's ring still exist?  Not
 * knowing (the query failed) leaves the socket as it is. */
static void probe_peer(struct sock *s)
{
	struct v4v_ring_data_ent e = {.ring = s->peer};
	if (v4v_notify(s->d, &e, 1) == 0 && !(e.flags & V4V_RING_EXISTS))
		s->peer_gone = true;
}

struct events {
	const struct v4v_event *ev;
	int n;
};

/* Called for each socket with a ring: the events, in order, that name it. */
static void events_to(struct sock *s, void *arg)
{
	const struct events *evs = arg;
	for (int i = 0; i < evs->n; i++) {
		const struct v4v_event *e = &evs->ev[i];
		if (e->type == V4V_EV_OVERFLOW && s->has_peer)
			probe_peer(s);
		else if (e->ring.aport == s->port)
			apply_event(s, e);
	}
}

/* Drain this process's events and hand each to the socket it names.  Its
 * doorbell got a token too, so that socket's poller wakes and looks.  A
 * failing v4v_events() means v4vd is gone, which the doorbells show. */
void v4v__handle_events(struct v4v_domain *d)
{
	struct v4v_event ev[64];
	int n;
	while ((n = v4v_events(d, ev, 64)) > 0) {
		/* The pool first: its spares and pooled rings have no socket
		 * to hear it, and a spare accept takes after this look must
		 * still learn of it (pool.c, the spares' log). */
		for (int i = 0; i < n; i++)
			v4v__pool_event(d, &ev[i]);
		struct events evs = {ev, n};
		v4v__sock_each(d, events_to, &evs);
		if (n < 64)
			break;
	}
}

/* ---- reading ---------------------------------------------------------- */

/*
 * Nothing to read: drain the doorbell, then look once more after a full
 * fence (v4v__rx_idle).  Returns 1 when the caller should look at the ring
 * again without sleeping (data slipped in, or an event changed the
 * socket's state), 0 after sleeping until the doorbell rang, -EAGAIN when
 * non-blocking, -EPIPE when v4vd is gone.
 */
int v4v__wait_readable(struct sock *s, bool nonblock)
{
	/* About to sleep with the doorbell drained by the read before (and no
	 * poll since): skip the drain.  A token come since makes the poll
	 * return at once, and the next pass drains it.  A non-blocking call
	 * always drains: its caller's own poll would see the token again. */
	bool drain = nonblock || !s->bell_clean;
	int bits = drain ? bell_drain(s) : 0;
	if (bits < 0)
		return bits;
	notify_if_needed(s);
	if ((bits & HV_SIG_EVENT) || !v4v__rx_idle(s->rx)) {
		s->raced = drain;
		return 1;
	}
	s->raced = false;
	if (nonblock)
		return -EAGAIN;
	s->bell_clean = false;
	return v4v__wait_fd(s, POLLIN, -1);
}

/* Release a message; every quarter ring, let v4vd re-check its waiters. */
void v4v__consume(struct sock *s, const struct v4v_msg *m)
{
	v4v_rx_consume(s->rx, m);
	s->consumed += (uint32_t)v4v_msg_footprint(m->len);
	if (s->consumed >= s->ring_len / 4) {
		s->consumed = 0;
		s->need_notify = true;
	}
}

/*
 * Returning with data: keep POLLIN true exactly while the ring holds
 * something, or while the next call has news (EOF, reset, an error).  If
 * we emptied it, the tokens left are stale: drop them (a later poll must
 * not promise a message that is not there, or a blocking accept/recv after
 * it would hang).  If a message slipped in meanwhile, or
 * we drained earlier in this call, its token may be gone: ask v4vd again.
 * A failed poke is a v4vd gone, which the next call sees on the doorbell.
 */
void v4v__read_done(struct sock *s)
{
	bool idle = v4v__rx_idle(s->rx);
	bool poke = s->raced && !idle;
	s->raced = false;
	/* Readable still if data slipped in, or if the next call returns at
	 * once with end of stream or an error, as a POSIX socket is. */
	if (idle && bell_drain(s) >= 0)
		poke = !v4v__rx_idle(s->rx) || s->peer_fin || s->peer_gone || s->so_error;
	notify_if_needed(s);
	if (poke)
		(void)v4v__ring_poke(s->rx);
}
