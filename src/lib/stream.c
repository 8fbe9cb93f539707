/* SPDX-License-Identifier: MIT */
/*
 * Stream sockets: a small protocol of message types over datagrams.
 *
 *   client (C, Q)                         server (S, P) listening
 *     ring (C, Q, partner S)
 *     SYN {ring_len}   ───────────────►   ring (S, P, any)
 *                                         accept: ring (S, R, partner C)
 *                      ◄───────────────   SYNACK {ring_len} from R
 *     DATA ... FIN     ◄──────────────►   DATA ... FIN
 *
 * A ring per connection: one slow reader never stalls another connection.
 * SYN and SYNACK are synchronous sends (their errors are connect's and
 * accept's), but a SYNACK on a ring from the pool (pool.c), which goes
 * down the send ring (accept_setup); DATA and FIN go down the send ring,
 * in order.  RST refuses a connection.  A stream SYN may take one of the
 * rings the listener lent v4vd (a spare: wire/proto.h); then v4vd's reply
 * names R, the client is connected, and accept finds a SYN_TAKEN instead
 * of a SYN: R is the connection, with no SYNACK.  A peer's death reaches
 * us as an event (PARTNER_GONE, RING_GONE; bell.c).
 *
 * The peer may be hostile: no call waits on it beyond what the calls
 * document.  accept never waits for room in a client's ring (a SYNACK that
 * does not fit now refuses that request), a hello announcing a ring below
 * STREAM_RING_MIN is refused, a connection request is answered wherever it
 * lands, and the FIN waits at most LINGER_MS (sock.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/ring.h"
#include "sock.h"

#define STREAM_CHUNK_MAX (256u << 10)

struct hello {
	uint32_t ring_len; /* the sender's ring: what we may send it */
};

/* A SEQPACKET client's SYN says so: a hello and the kind.  A listener of
 * the other type takes it for a malformed request and refuses it, so a
 * stream never meets a SEQPACKET peer. */
struct seq_hello {
	struct hello h;
	uint32_t kind; /* V4V_SOCK_SEQPACKET */
};

/* The SYN's length a socket of this type sends and listens for. */
static size_t syn_len(const struct sock *s)
{
	return s->type == V4V_SOCK_SEQPACKET ? sizeof(struct seq_hello) : sizeof(struct hello);
}

/* ---- control messages ------------------------------------------------- */

/* Refuse a connection request that reached a socket not listening (or one
 * we cannot take).  Best effort: a client that is gone needs no answer. */
void v4v__refuse(struct sock *s, const struct v4v_msg *m)
{
	struct iovec iov = {NULL, 0};
	(void)v4v_sendv(s->d, s->port, &m->source, &iov, 0, MT_RST);
}

/*
 * Refuse a request whose client's ring has no room now: through the
 * listener's send ring, which v4vd empties into the client's ring once
 * there is room, so that the refusal waits there and not accept.  (A
 * client that only had a full ring for a while then fails its connect
 * instead of waiting for an answer that would never come.)  A full send
 * ring: best effort.
 */
static void refuse_queued(struct sock *s, const struct v4v_msg *m)
{
	if (v4v__tx_put(s, &m->source, MT_RST, NULL, 0, true) < 0)
		v4v__refuse(s, m);
}

static int send_hello(struct sock *s, uint32_t type, bool nonblock)
{
	struct seq_hello h = {.h.ring_len = s->ring_len, .kind = V4V_SOCK_SEQPACKET};
	size_t n = type == MT_SYN ? syn_len(s) : sizeof(h.h);
	long r = v4v__send_msg(s, &s->peer, type, &h, n, nonblock, NULL, NULL);
	return r < 0 ? (int)r : 0;
}

/*
 * A stream's SYN, by hypercall, asking for one of the listener's spares
 * (wire/proto.h): 1 when it took one, and we are connected, to the spare,
 * without waiting for accept (the server's end exists: its ring is there
 * and partnered with us); 0 when it went as a plain SYN (wait for the
 * SYNACK); -errno as connect's.
 */
static int syn_spare(struct sock *s)
{
	struct hello h = {.ring_len = s->ring_len};
	uint32_t max = 0;
	v4v_port_t port = 0;
	long r =
	    v4v__send_msg(s, &s->peer, V4V_MT_SYN_SPARE, &h, sizeof(h), s->nonblock, &max, &port);
	if (r < 0)
		return (int)r;
	if (!port || max < v4v_ring_max_payload(STREAM_RING_MIN))
		return 0; /* (v4vd vouches for max: never too small) */
	s->peer.aport = port;
	s->peer_max = max;
	s->state = S_CONNECTED;
	return 1;
}

/*
 * The SYN, by hypercall (its errors are connect's: EAGAIN from a full
 * listener when non-blocking).  A stream's asks for a spare (syn_spare):
 * the reply may be the connection itself.
 */
static int queue_syn(struct sock *s)
{
	return s->type == V4V_SOCK_STREAM ? syn_spare(s) : send_hello(s, MT_SYN, s->nonblock);
}

/*
 * A SYNACK on a pooled ring (pool.c: its send ring is empty) goes down the
 * send ring, no round trip; a failure comes back as an event.
 */
static int queue_hello(struct sock *s, uint32_t type)
{
	struct hello h = {.ring_len = s->ring_len};
	long r = v4v__tx_put(s, &s->peer, type, &h, sizeof(h), true);
	return r < 0 ? (int)r : 0;
}

/* A peer's hello that we can hold a stream with: a real ring, and not one
 * so small that every message would be a few bytes. */
static bool hello_ok(const struct hello *h)
{
	return v4v_ring_len_ok(h->ring_len) && h->ring_len >= STREAM_RING_MIN;
}

/*
 * FIN goes down the send ring, after the data: order is the point.  Room
 * for it is waited for at most limit_ms (none when non-blocking): a peer
 * that never reads keeps our send ring full.  0 when sent or nothing to
 * do; -ETIMEDOUT, -EAGAIN (not sent: nothing changed) or another -errno.
 * A close says so in the FIN (one byte, FIN_CLOSED): the peer's sends then
 * fail with EPIPE at once, as after a close of a vsock or TCP peer, whether
 * or not our ring stays registered (a pooled ring does, pool.c).
 */
int v4v__stream_fin(struct sock *s, bool nonblock, int limit_ms, bool closing)
{
	static const uint8_t closed = FIN_CLOSED;
	if (s->state != S_CONNECTED || s->fin_sent || s->peer_gone)
		return 0;
	size_t n = closing ? sizeof(closed) : 0;
	int e = v4v__tx_wait(s, v4v_msg_footprint(n), nonblock, limit_ms);
	long r = e ? e : v4v__tx_put(s, &s->peer, MT_FIN, &closed, n, true);
	if (r >= 0)
		s->fin_sent = true;
	return r < 0 ? (int)r : 0;
}

/* The abortive close's RST: down the send ring after the data, waiting
 * for room at most limit_ms, as the FIN.  0 or -errno. */
int v4v__stream_rst(struct sock *s, int limit_ms)
{
	if (s->state != S_CONNECTED || s->peer_gone)
		return 0;
	int e = v4v__tx_wait(s, v4v_msg_footprint(0), false, limit_ms);
	long r = e ? e : v4v__tx_put(s, &s->peer, MT_RST, NULL, 0, true);
	return r < 0 ? (int)r : 0;
}

/* Handle one stream message that is not DATA from our peer. */
static void stream_control(struct sock *s, const struct v4v_msg *m)
{
	if (!v4v__same_addr(&m->source, &s->peer)) {
		if (m->message_type == MT_SYN)
			v4v__refuse(s, m);
		return; /* not our peer: drop */
	}
	if (m->message_type == MT_FIN) {
		uint8_t how = 0;
		s->peer_fin = true;
		if (v4v_msg_read(m, &how, sizeof(how)) == sizeof(how) && how == FIN_CLOSED)
			s->peer_closed = true;
	} else if (m->message_type == MT_RST)
		s->peer_gone = true;
}

/* ---- server side ------------------------------------------------------ */

int v4v_listen(int fd, int backlog)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	if (!v4v__is_conn(s))
		return v4v__fail(EOPNOTSUPP);
	if (s->state == S_LISTEN)
		return 0;
	if (s->state != S_BOUND)
		return v4v__fail(EINVAL); /* bind first: a listener needs a known port */
	(void)backlog;			  /* the ring is the backlog: ring_len / 32 requests */
	s->state = S_LISTEN;
	return 0;
}

/* A SYN that took a spare: the client's hello, then v4vd's word of which
 * of our rings it took, always the last 4 bytes (wire/proto.h). */
struct syn_taken {
	struct hello h;
	v4v_port_t port;
};

/* The port a SYN_TAKEN names, and its hello (zero when the client's bytes
 * were not one: refused by hello_ok); false if v4vd did not write it so. */
static bool taken_read(const struct v4v_msg *m, struct hello *h, v4v_port_t *port)
{
	uint8_t buf[V4V_SYN_SPARE_MAX + sizeof(v4v_port_t)];
	if (m->len < sizeof(*port) || m->len > sizeof(buf) ||
	    v4v_msg_read(m, buf, m->len) != m->len)
		return false;
	memcpy(port, buf + m->len - sizeof(*port), sizeof(*port));
	*h = (struct hello){0};
	if (m->len == sizeof(struct syn_taken))
		memcpy(h, buf, sizeof(*h));
	return true;
}

/* Refuse a request that took our spare on `port`: from that port, the
 * client's peer now.  Best effort, as v4v__refuse. */
static void refuse_taken(struct sock *s, const struct v4v_msg *m, v4v_port_t port)
{
	struct iovec iov = {NULL, 0};
	(void)v4v_sendv(s->d, port, &m->source, &iov, 0, MT_RST);
}

/* Read the listener's ring for the next SYN; 1 with *m, 0 none, -errno.
 * *spare: the port of the spare it took (SYN_TAKEN), or 0. */
static int next_syn(struct sock *s, struct v4v_msg *m, struct hello *h, v4v_port_t *spare)
{
	*spare = 0;
	for (;;) {
		int r = v4v_rx_peek(s->rx, m);
		if (r <= 0)
			return r < 0 ? -EIO : 0;
		if (m->message_type == V4V_MT_SYN_TAKEN) {
			/* Only v4vd writes them, and only for a stream
			 * listener's spares. */
			if (s->type == V4V_SOCK_STREAM && taken_read(m, h, spare))
				return 1;
			v4v__consume(s, m);
			continue;
		}
		struct seq_hello sh;
		if (m->message_type == MT_SYN && m->len == syn_len(s) &&
		    v4v_msg_read(m, &sh, sizeof(sh)) == m->len &&
		    (m->len == sizeof(*h) || sh.kind == V4V_SOCK_SEQPACKET)) {
			*h = sh.h;
			return 1;
		}
		/* A malformed request is answered, or its sender would wait
		 * for ever; anything else has no business here. */
		if (m->message_type == MT_SYN)
			v4v__refuse(s, m);
		v4v__consume(s, m);
	}
}

/* The ring an accepted connection gets: the listener's size, or more. */
static uint32_t accept_ring_len(const struct sock *s)
{
	return s->ring_len < V4V_STREAM_RING_LEN ? V4V_STREAM_RING_LEN : s->ring_len;
}

/*
 * Set up a new connection c for a SYN taken off the listener's ring: its
 * own ring, partnered with the client, and the SYNACK.  The SYNACK never
 * waits: a client whose ring has no room for it now (one that keeps its
 * ring full) would hold accept for as long as it likes.  0 or -errno.
 */
static int accept_setup(struct sock *c, const struct sock *s, const struct v4v_msg *m,
			const struct hello *h)
{
	c->ring_len = accept_ring_len(s);
	c->peer = m->source;
	c->has_peer = true;
	c->peer_max = hello_ok(h) ? v4v_ring_max_payload(h->ring_len) : 0;
	int e = !c->peer_max ? -EPROTO : c->rx ? 0 : v4v__sock_ring_up(c, 0, m->source.domain_id);
	/* A pooled ring (a domain we had a clean connection with) queues the
	 * SYNACK on its own send ring: no round trip, and still no wait, since
	 * only this connection's send ring waits for the client's room; its
	 * failure is this connection's reset (an event).  A first connection
	 * asks by hypercall, so that one with no room now is refused. */
	if (!e)
		e = c->pooled ? queue_hello(c, MT_SYNACK) : send_hello(c, MT_SYNACK, true);
	if (!e)
		c->state = S_CONNECTED;
	return e;
}

/*
 * A request that took our spare on `port`: the spare is the connection,
 * partnered with the client by v4vd and perhaps holding its first data
 * already; no SYNACK (the client knows the port).  0 with *out, -errno:
 * -ECONNREFUSED no such spare here any more, -EPROTO a hello we cannot
 * hold a stream with (both the client's: refuse it), else ours.
 */
static int accept_taken(struct sock *s, const struct v4v_msg *m, const struct hello *h,
			v4v_port_t port, struct sock **out)
{
	struct sock *c;
	uint64_t lent_at;
	int e = v4v__pool_spare_take(s->d, s->port, port, m->source.domain_id, s->nonblock, &c,
				     &lent_at);
	if (e <= 0)
		return e ? e : -ECONNREFUSED;
	if (!hello_ok(h)) {
		v4v_sock_close(c->fd); /* the spare goes: the client hears RING_GONE */
		return -EPROTO;
	}
	c->peer = m->source;
	c->has_peer = true;
	c->peer_max = v4v_ring_max_payload(h->ring_len);
	c->state = S_CONNECTED;
	/* Its going may have been told before c was there to hear it (pool.c,
	 * the spares' log): is its ring still there?  Asked after c knows its
	 * peer, so that any later news reaches c. */
	struct v4v_ring_data_ent ent = {.ring = m->source};
	if (v4v__pool_spare_news(s->d, port, lent_at) && v4v_notify(s->d, &ent, 1) == 0 &&
	    !(ent.flags & V4V_RING_EXISTS))
		c->peer_gone = true;
	*out = c;
	return 0;
}

/* A fresh ring for the listener to lend (registered partnered with a
 * domain, as v4vd lends only connection rings): best effort. */
static void spare_new(struct sock *s, uint16_t partner)
{
	struct sock *t;
	if (v4v__sock_new(s->d, V4V_SOCK_STREAM, false, &t))
		return;
	t->ring_len = accept_ring_len(s);
	if (v4v__sock_ring_up(t, 0, partner) == 0)
		(void)v4v__pool_lend(t, s->port);
	v4v_sock_close(t->fd); /* what the pool did not take */
}

/*
 * accept's way out with connection c: first lend the listener what the
 * pool holds (after this request had its pick), for the connects to come,
 * and one fresh ring while it has fewer than LISTEN_SPARES: a listener in
 * use gets there after a few connections, and its rings then go round
 * (accepted, closed, pooled, lent again).
 */
static int accepted(struct sock *s, struct sock *c, struct v4v_addr *peer)
{
	if (s->type == V4V_SOCK_STREAM &&
	    v4v__pool_spare_fill(s->d, s->port, accept_ring_len(s)) < LISTEN_SPARES &&
	    v4v__pool_can_lend())
		spare_new(s, c->peer.domain_id);
	if (peer)
		*peer = c->peer;
	return c->fd;
}

/*
 * A listener closing: the connects that took its spares and were not
 * accepted are reset as the spares go (their SYN_TAKENs say under which
 * client v4vd keys them now: pool.c:spare_free), the plain requests
 * refused as the ring goes.
 */
void v4v__listen_close(struct sock *s)
{
	struct v4v_msg m;
	struct hello h;
	v4v_port_t port;
	while (s->rx && v4v_rx_peek(s->rx, &m) == 1) {
		if (m.message_type == V4V_MT_SYN_TAKEN && taken_read(&m, &h, &port))
			v4v__pool_spare_taken(s->d, s->port, port, m.source.domain_id);
		v4v_rx_consume(s->rx, &m);
	}
	v4v__pool_spares_drop(s->d, s->port);
}

int v4v_accept(int fd, struct v4v_addr *peer)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	if (s->state != S_LISTEN)
		return v4v__fail(EINVAL);
	for (;;) {
		struct v4v_msg m;
		struct hello h;
		v4v_port_t spare;
		int r = next_syn(s, &m, &h, &spare);
		if (r < 0)
			return v4v__fail(-r);
		if (r == 0) {
			int e = v4v__wait_readable(s, s->nonblock);
			if (e < 0)
				return v4v__fail(-e);
			continue;
		}
		v4v__consume(s, &m);
		v4v__read_done(s);

		/* Whichever step fails, refuse the request, so a waiting
		 * connect fails rather than hangs. */
		struct sock *c;
		if (spare) {
			int e = accept_taken(s, &m, &h, spare, &c);
			if (e == -ECONNREFUSED || e == -EPROTO) {
				refuse_taken(s, &m, spare);
				continue;
			}
			if (e)
				return v4v__fail(-e);
			return accepted(s, c, peer);
		}
		/* A pooled ring for that domain comes with its fd (pool.c). */
		bool pool = hello_ok(&h) && s->type == V4V_SOCK_STREAM;
		int e = pool ? v4v__pool_accept(s->d, m.source.domain_id, accept_ring_len(s),
						s->nonblock, &c)
			     : 0;
		e = e == 1 ? 0 : e ? e : v4v__sock_new(s->d, s->type, s->nonblock, &c);
		if (e) {
			v4v__refuse(s, &m);
			return v4v__fail(-e); /* no memory or fd here: ours to report */
		}
		e = accept_setup(c, s, &m, &h);
		if (e) {
			/* No ring for it (quota), a ring too small or too full
			 * for the SYNACK, or the client went away: the client's
			 * error; look for the next request. */
			if (e == -EAGAIN)
				refuse_queued(s, &m);
			else
				v4v__refuse(s, &m);
			v4v_sock_close(c->fd);
			continue;
		}
		return accepted(s, c, peer);
	}
}

/* ---- client side ------------------------------------------------------ */

/*
 * The listener went and no SYNACK is in our ring.  One from a pooled ring
 * comes down that connection's send ring (accept_setup), which v4vd empties
 * when it reads the kick: not necessarily before it handles the listener's
 * unregister.  So it is waited for SYN_GONE_MS before the connect is
 * refused.  A non-blocking connect stays in progress so long, its doorbell
 * poked so that its poller asks again.  0: look at the ring again.
 */
static int syn_gone_wait(struct sock *s, bool nonblock)
{
	if (!s->syn_gone_by)
		s->syn_gone_by = v4v__deadline(SYN_GONE_MS);
	int ms = v4v__ms_left(s->syn_gone_by);
	if (ms == 0)
		return -ECONNREFUSED;	     /* the listener went away before accepting */
	int e = v4v__wait_readable(s, true); /* drain: only news wakes the wait */
	if (e != -EAGAIN)
		return e < 0 ? e : 0;
	if (nonblock) {
		(void)v4v__ring_poke(s->rx);
		return -EINPROGRESS;
	}
	return v4v__wait_fd(s, POLLIN, ms);
}

/*
 * Wait for SYNACK or refusal; 0 connected, -errno.  A SYNACK we cannot
 * hold a stream with is answered with RST, so the server's half goes too.
 *
 * The listener's RING_GONE (bell.c:apply_event sets syn_gone) fails the
 * connect only if no SYNACK is in the ring after it: a server that accepts
 * and at once closes its listener sent the SYNACK first, and v4vd posts the
 * event after writing it, so the ring read after the event has it.  Hence
 * syn_gone is read before the peek, and the event never touches peer_gone,
 * which would reset the connection the SYNACK just made.  (A SYNACK that
 * comes after the event: syn_gone_wait.)
 */
static int finish_connect(struct sock *s, bool nonblock)
{
	for (;;) {
		struct v4v_msg m;
		struct hello h;
		bool syn_gone = s->syn_gone;
		int r = v4v_rx_peek(s->rx, &m);
		if (r < 0)
			return -EIO;
		if (r == 1) {
			bool from_server = m.source.domain_id == s->peer.domain_id;
			if (from_server && m.message_type == MT_SYNACK && m.len == sizeof(h)) {
				v4v_msg_read(&m, &h, sizeof(h));
				v4v__consume(s, &m);
				v4v__read_done(s);
				if (!hello_ok(&h)) {
					v4v__refuse(s, &m);
					return -EPROTO;
				}
				s->peer = m.source; /* the connection's own ring */
				s->peer_max = v4v_ring_max_payload(h.ring_len);
				s->syn_gone = false; /* the listener's fate is not ours */
				s->syn_gone_by = 0;
				s->state = S_CONNECTED;
				return 0;
			}
			/* A request that reached us meanwhile (we may be a bound
			 * socket) is answered, not swallowed. */
			if (m.message_type == MT_SYN)
				v4v__refuse(s, &m);
			v4v__consume(s, &m);
			/* A refusal comes from the listener's address: a pooled
			 * ring (pool.c) may still get an old connection's. */
			if (v4v__same_addr(&m.source, &s->peer) && m.message_type == MT_RST)
				return -ECONNREFUSED;
			continue;
		}
		if (s->peer_gone)
			return -ECONNREFUSED; /* the listener went away */
		if (syn_gone) {
			int e = syn_gone_wait(s, nonblock);
			if (e)
				return e;
			continue;
		}
		if (s->syn_gone)
			continue; /* it went since the peek: look once more */
		int e = v4v__wait_readable(s, nonblock);
		if (e < 0)
			return e == -EAGAIN ? -EINPROGRESS : e;
	}
}

int v4v_connect(int fd, const struct v4v_addr *peer)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	if (s->type == V4V_SOCK_DGRAM) {
		int e = v4v__dgram_connect(s, peer);
		return e ? v4v__fail(-e) : 0;
	}
	if (s->state == S_CONNECTED)
		return v4v__fail(EISCONN);
	if (s->state == S_CONNECTING) {
		int e = finish_connect(s, true);
		if (e)
			s->state = e == -EINPROGRESS ? S_CONNECTING : S_NEW;
		return e ? v4v__fail(e == -EINPROGRESS ? EALREADY : -e) : 0;
	}
	if (s->state == S_LISTEN)
		return v4v__fail(EINVAL);
	if (peer->domain_id > V4V_DOMID_MAX)
		return v4v__fail(EINVAL);
	if (!s->rx) {
		int e = v4v__sock_ring_up(s, 0, peer->domain_id);
		if (e)
			return v4v__fail(-e);
	}
	s->peer = (struct v4v_addr){.aport = peer->aport, .domain_id = peer->domain_id};
	s->has_peer = true;
	s->peer_gone = false;
	s->syn_gone = false;
	s->syn_gone_by = 0;
	/* A full listener: wait, or EAGAIN when non-blocking (as Unix sockets). */
	int e = queue_syn(s);
	if (e == 1)
		return 0; /* it took a spare: connected (syn_spare) */
	if (e == 0)
		e = finish_connect(s, s->nonblock);
	if (e == -EINPROGRESS) {
		s->state = S_CONNECTING;
		return v4v__fail(EINPROGRESS);
	}
	/* Too many of our domain's requests wait unread at that listener
	 * (v4vd's connects_per_source): try later, or refused. */
	if (e == -ENOBUFS)
		e = s->nonblock ? -EAGAIN : -ECONNREFUSED;
	return e ? v4v__fail((int)-v4v__unreach(e)) : 0;
}

/* ---- data ------------------------------------------------------------- */

/* A SEQPACKET record's largest size: what the peer's ring and our send
 * ring each take in one message (libv4v(3)). */
static size_t seq_max(const struct sock *s)
{
	uint32_t tx = v4v_ring_max_payload(s->txlen);
	return s->peer_max < tx ? s->peer_max : tx;
}

/* The largest DATA message: a quarter of the peer's ring and of our send
 * ring, so both keep moving while one is read. */
static size_t chunk_max(const struct sock *s)
{
	size_t max = s->peer_max / 4;
	if (max > STREAM_CHUNK_MAX)
		max = STREAM_CHUNK_MAX;
	if (max > s->txlen / 4)
		max = s->txlen / 4;
	return max < 16 ? s->peer_max : max;
}

ssize_t v4v_send(int fd, const void *buf, size_t len, int flags)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	if (s->type == V4V_SOCK_DGRAM)
		return v4v_sendto(fd, buf, len, flags, NULL);
	if (s->state != S_CONNECTED)
		return v4v__fail(ENOTCONN);
	if (s->d->dead)
		return v4v__fail(EPIPE); /* the send ring's fast path would not notice */
	int e = v4v__sock_error(s);
	if (e)
		return v4v__fail(-e);
	if (s->fin_sent || s->peer_closed)
		return v4v__fail(EPIPE);
	if (s->peer_gone)
		return v4v__fail(ECONNRESET);

	bool nonblock = s->nonblock || (flags & MSG_DONTWAIT);
	size_t sent = 0, max = chunk_max(s);
	if (s->type == V4V_SOCK_SEQPACKET) {
		/* One record, one DATA message, whole or nothing. */
		if (len > seq_max(s))
			return v4v__fail(EMSGSIZE);
		max = len;
	}
	while (sent < len) {
		size_t n = len - sent < max ? len - sent : max;
		long r = v4v__tx_put(s, &s->peer, MT_DATA, (const char *)buf + sent, n, nonblock);
		if (r == -EAGAIN && sent > 0)
			break;
		if (r < 0) {
			if (r == -ECONNREFUSED || r == -ECONNRESET) {
				s->peer_gone = true;
				return v4v__fail(ECONNRESET);
			}
			return v4v__fail((int)-v4v__unreach(r));
		}
		sent += (size_t)r;
	}
	return (ssize_t)sent;
}

/* Copy the head DATA message from where the last call stopped inside it. */
static size_t read_part(struct sock *s, const struct v4v_msg *m, void *buf, size_t cap)
{
	struct v4v_msg part = *m;
	size_t skip = s->msg_off;
	for (int i = 0; i < 2; i++) {
		size_t k = skip < part.seg[i].len ? skip : part.seg[i].len;
		part.seg[i].base = (const char *)part.seg[i].base + k;
		part.seg[i].len -= k;
		skip -= k;
	}
	return v4v_msg_read(&part, buf, cap);
}

/* What the ring holds for us, up to len bytes (stops at a FIN).  A
 * SEQPACKET socket reads one record: *rec is its whole length (-1: none
 * yet), what does not fit in buf is dropped. */
static size_t read_data(struct sock *s, char *buf, size_t len, int flags, ssize_t *rec)
{
	size_t got = 0;
	bool seq = s->type == V4V_SOCK_SEQPACKET;
	while ((got < len || seq) && !s->peer_fin && *rec < 0) {
		struct v4v_msg m;
		int r = v4v_rx_peek(s->rx, &m);
		if (r <= 0) {
			if (r < 0)
				s->so_error = EIO;
			break;
		}
		if (m.message_type != MT_DATA || !v4v__same_addr(&m.source, &s->peer)) {
			stream_control(s, &m);
			v4v__consume(s, &m);
			continue;
		}
		if (m.len == 0) {
			/* Carries nothing: passed over even by a peek, which
			 * would otherwise look at it for ever. */
			v4v__consume(s, &m);
			continue;
		}
		if (seq) {
			got = v4v_msg_read(&m, buf, len);
			*rec = (ssize_t)m.len;
			if (!(flags & MSG_PEEK))
				v4v__consume(s, &m);
			break;
		}
		size_t n = read_part(s, &m, buf + got, len - got);
		got += n;
		if (flags & MSG_PEEK)
			break;
		s->msg_off += (uint32_t)n;
		if (s->msg_off == m.len) {
			s->msg_off = 0;
			v4v__consume(s, &m);
		}
	}
	return got;
}

ssize_t v4v_recv(int fd, void *buf, size_t len, int flags)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	if (s->type == V4V_SOCK_DGRAM)
		return v4v_recvfrom(fd, buf, len, flags, NULL);
	if (s->state != S_CONNECTED)
		return v4v__fail(ENOTCONN);
	bool nonblock = s->nonblock || (flags & MSG_DONTWAIT);
	for (;;) {
		ssize_t rec = -1;
		size_t got = read_data(s, buf, len, flags, &rec);
		if (rec >= 0) {
			/* MSG_TRUNC: the record's length, as for datagrams. */
			v4v__read_done(s);
			return flags & MSG_TRUNC ? rec : (ssize_t)got;
		}
		if (got > 0 || (len == 0 && s->type == V4V_SOCK_STREAM)) {
			v4v__read_done(s);
			return (ssize_t)got;
		}
		int e = v4v__sock_error(s);
		if (e)
			return v4v__fail(-e);
		if (s->peer_fin || s->shut_rd)
			return 0;
		if (s->peer_gone)
			return v4v__fail(ECONNRESET);
		if ((e = v4v__wait_readable(s, nonblock)) < 0)
			return v4v__fail(-e);
	}
}

/* ---- shutdown --------------------------------------------------------- */

int v4v_shutdown(int fd, int how)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return v4v__fail(EINVAL);
	if (v4v__is_conn(s) && s->state != S_CONNECTED)
		return v4v__fail(ENOTCONN);
	if (how != SHUT_WR)
		s->shut_rd = true;
	/* The FIN waits for room at most LINGER_MS, as close does. */
	int e = how != SHUT_RD ? v4v__stream_fin(s, s->nonblock, LINGER_MS, false) : 0;
	return e ? v4v__fail(-e) : 0;
}
