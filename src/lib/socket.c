/* SPDX-License-Identifier: MIT */
/*
 * Sockets over rings.
 *
 * Every socket owns at most one ring and one doorbell (wire/proto.h): the
 * user's socket fd is our end of the doorbell pair, so it polls readable
 * when v4vd has something for this socket, and writable unless a send from
 * it waits for space.  Streams are a small protocol of message types on
 * top of datagrams:
 *
 *   client (C, Q)                         server (S, P) listening
 *     ring (C, Q, partner S)
 *     SYN {ring_len}   ───────────────►   ring (S, P, any)
 *                                         accept: ring (S, R, partner C)
 *                      ◄───────────────   SYNACK {ring_len} from R
 *     DATA ... FIN     ◄──────────────►   DATA ... FIN
 *
 * A ring per connection: one slow reader never stalls another connection.
 * Flow control is ring space: a send that finds no room leaves v4vd a
 * space wait and sleeps on POLLOUT; the reader notifies v4vd after
 * consuming when it has heard (a WAITER token) that someone waits.
 * A peer's death reaches us as an event (PARTNER_GONE, RING_GONE).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "wire/proto.h"
#include "core/ring.h"
#include "lib.h"

#define MT_DGRAM  0u
#define MT_SYN	  0x53540001u
#define MT_SYNACK 0x53540002u
#define MT_DATA	  0x53540003u
#define MT_FIN	  0x53540004u
#define MT_RST	  0x53540005u

#define EPHEMERAL_BASE	  0x80000000u /* ports picked for port 0 start here */
#define STREAM_CHUNK_MAX  (256u << 10)
#define CLOSE_FIN_WAIT_MS 1000 /* how long close() waits to hand v4vd what is queued */
#define DEST_CACHE	  8    /* datagram destinations known to exist */

enum state { S_NEW, S_BOUND, S_LISTEN, S_CONNECTING, S_CONNECTED };

struct hello {
	uint32_t ring_len; /* the sender's ring: what we may send it */
};

struct sock {
	int fd;	  /* ours: the user's socket */
	int bell; /* v4vd's end, until the ring is registered */
	struct v4v_domain *d;
	int type;
	enum state state;
	bool nonblock;
	uint32_t ring_len;
	struct v4v_rx *rx;
	v4v_port_t port;
	uint16_t partner;
	bool has_peer;
	struct v4v_addr peer;
	uint32_t peer_max; /* stream: largest message the peer's ring takes */
	uint32_t msg_off;  /* stream: bytes already read of the head message */
	bool peer_fin, fin_sent, shut_rd, peer_gone, need_notify;
	bool raced;	   /* drained the doorbell, then found data: see read_done */
	uint32_t consumed; /* bytes consumed since the last notify */
	int so_error;	   /* pending error, reported once */
	size_t blocker_len;
	/* The send ring: we produce, v4vd moves messages to their rings. */
	struct v4v_tx_ring *tx;
	uint32_t txlen, txtail;
	/* Datagram destinations a synchronous send found alive: later sends
	 * to them are queued on the send ring; failures come back as events. */
	struct dest {
		struct v4v_addr addr;
		uint32_t max; /* largest payload its ring takes */
	} dest[DEST_CACHE];
	unsigned ndest, dest_next;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sock **table;
static int table_cap;
static struct v4v_domain *default_dom;
static uint32_t next_port;

/* ---- socket table ---------------------------------------------------- */

static struct sock *lookup(int fd)
{
	struct sock *s = NULL;
	pthread_mutex_lock(&table_lock);
	if (fd >= 0 && fd < table_cap)
		s = table[fd];
	pthread_mutex_unlock(&table_lock);
	if (!s)
		errno = EBADF;
	return s;
}

static void sock_free(struct sock *s)
{
	if (s->rx)
		v4v_ring_unregister(s->rx);
	if (s->tx)
		munmap(s->tx, V4V_RING_HDR_SIZE + (size_t)s->txlen);
	if (s->bell >= 0)
		close(s->bell);
	free(s);
}

static int table_put(struct sock *s)
{
	pthread_mutex_lock(&table_lock);
	if (s->fd >= table_cap) {
		int cap = table_cap ? table_cap : 64;
		while (cap <= s->fd)
			cap *= 2;
		struct sock **t = realloc(table, sizeof(*t) * (size_t)cap);
		if (!t) {
			pthread_mutex_unlock(&table_lock);
			return -ENOMEM;
		}
		memset(t + table_cap, 0, sizeof(*t) * (size_t)(cap - table_cap));
		table = t;
		table_cap = cap;
	}
	/* A stale entry: its fd was closed behind our back and reused. */
	struct sock *old = table[s->fd];
	table[s->fd] = s;
	pthread_mutex_unlock(&table_lock);
	if (old)
		sock_free(old);
	return 0;
}

static int fail(int err)
{
	errno = err;
	return -1;
}

/* ---- doorbell -------------------------------------------------------- */

static void handle_events(struct v4v_domain *d);

/*
 * Read the tokens v4vd left and act on them.  Only called when the ring
 * has been seen empty: DATA tokens are raised on empty -> non-empty, so
 * while data is in the ring its token stays queued and the fd polls
 * readable, as poll(2) users expect.  Returns the bits, or -EPIPE.
 */
static int bell_drain(struct sock *s)
{
	uint8_t tok[64];
	unsigned bits = 0;
	for (;;) {
		ssize_t n = recv(s->fd, tok, sizeof(tok), MSG_DONTWAIT);
		if (n == 0 && s->rx) {
			s->d->dead = true;
			return -EPIPE; /* v4vd hung up: it is gone */
		}
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			bits |= tok[i];
	}
	if (bits & HV_SIG_WAITER)
		s->need_notify = true;
	if (bits & HV_SIG_EVENT)
		handle_events(s->d);
	return (int)bits;
}

/* Make our end unwritable until v4vd sees space for our waiting send. */
static void bell_block(struct sock *s)
{
	static const char junk[4096];
	send(s->fd, junk, s->blocker_len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Tell v4vd we consumed, if a sender waits on our ring. */
static void notify_if_needed(struct sock *s)
{
	if (s->need_notify) {
		s->need_notify = false;
		v4v_notify(s->d, NULL, 0);
	}
}

/* Sleep until the fd is ready for `events` (both modes use the doorbell). */
static int wait_fd(struct sock *s, short events, int ms)
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

/* ---- events ---------------------------------------------------------- */

static bool same_addr(const struct v4v_addr *a, const struct v4v_addr *b)
{
	return a->aport == b->aport && a->domain_id == b->domain_id;
}

static void apply_event(struct sock *s, const struct v4v_event *e)
{
	switch (e->type) {
	case V4V_EV_PARTNER_GONE:
		if (s->has_peer && s->peer.domain_id == e->peer.domain_id)
			s->peer_gone = true;
		break;
	case V4V_EV_RING_GONE:
		if (s->has_peer && same_addr(&s->peer, &e->peer))
			s->peer_gone = true;
		break;
	case V4V_EV_RING_BROKEN: s->so_error = EIO; break;
	case V4V_EV_SEND_FAILED:
		for (unsigned i = 0; i < s->ndest; i++)
			if (same_addr(&s->dest[i].addr, &e->peer))
				s->dest[i] = s->dest[--s->ndest];
		if (s->type == V4V_SOCK_STREAM && s->has_peer && same_addr(&s->peer, &e->peer))
			s->peer_gone = true;
		else
			s->so_error = e->pad == ESRCH ? EHOSTUNREACH : (int)e->pad;
		break;
	}
}

/* A probe after lost events: does the peer's ring still exist? */
static void probe_peer(struct sock *s)
{
	struct v4v_ring_data_ent e = {.ring = s->peer};
	if (v4v_notify(s->d, &e, 1) == 0 && !(e.flags & V4V_RING_EXISTS))
		s->peer_gone = true;
}

/* Drain this process's events and hand each to the socket it names.  Its
 * doorbell got a token too, so that socket's poller wakes and looks. */
static void handle_events(struct v4v_domain *d)
{
	struct v4v_event ev[64];
	int n;
	while ((n = v4v_events(d, ev, 64)) > 0) {
		pthread_mutex_lock(&table_lock);
		for (int i = 0; i < n; i++)
			for (int fd = 0; fd < table_cap; fd++) {
				struct sock *s = table[fd];
				if (!s || s->d != d || !s->rx)
					continue;
				if (ev[i].type == V4V_EV_OVERFLOW && s->has_peer)
					probe_peer(s);
				else if (ev[i].ring.aport == s->port)
					apply_event(s, &ev[i]);
			}
		pthread_mutex_unlock(&table_lock);
		if (n < 64)
			break;
	}
}

/* ---- creation and rings ---------------------------------------------- */

static struct v4v_domain *domain_of(struct v4v_domain *d, int *err)
{
	static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
	if (d)
		return d;
	pthread_mutex_lock(&once);
	if (!default_dom)
		*err = v4v_open(&default_dom);
	pthread_mutex_unlock(&once);
	return default_dom;
}

static struct sock *sock_new(struct v4v_domain *d, int type, bool nonblock)
{
	int sv[2];
	struct sock *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(s);
		return NULL;
	}
	/* A small send buffer, so one blocker packet makes our end unwritable. */
	int sndbuf = 1;
	socklen_t sl = sizeof(sndbuf);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl);
	s->blocker_len = (size_t)sndbuf / 2 < 4096 ? (size_t)sndbuf / 2 : 4096;
	s->fd = sv[0];
	s->bell = sv[1];
	s->d = d;
	s->type = type;
	s->nonblock = nonblock;
	s->ring_len = type == V4V_SOCK_STREAM ? V4V_STREAM_RING_LEN : V4V_DGRAM_RING_LEN;
	s->partner = V4V_DOMID_ANY;
	if (table_put(s) < 0) {
		close(sv[0]);
		close(sv[1]);
		free(s);
		return NULL;
	}
	return s;
}

int v4v_socket(struct v4v_domain *d, int type, int flags)
{
	int err = 0;
	if (type != V4V_SOCK_DGRAM && type != V4V_SOCK_STREAM)
		return fail(EPROTOTYPE);
	if (flags & ~V4V_SOCK_NONBLOCK)
		return fail(EINVAL);
	d = domain_of(d, &err);
	if (!d)
		return fail(-err);
	struct sock *s = sock_new(d, type, flags & V4V_SOCK_NONBLOCK);
	return s ? s->fd : fail(errno ? errno : ENOMEM);
}

int v4v_sock_set_ring_len(int fd, uint32_t len)
{
	struct sock *s = lookup(fd);
	if (!s)
		return -1;
	if (s->rx)
		return fail(EISCONN);
	if (!v4v_ring_len_ok(len))
		return fail(EINVAL);
	s->ring_len = len;
	return 0;
}

int v4v_sock_set_nonblock(int fd, int on)
{
	struct sock *s = lookup(fd);
	if (!s)
		return -1;
	s->nonblock = on != 0;
	return 0;
}

/* Register the socket's ring on port (0: pick one) with its doorbell and
 * its send ring. */
static int ring_up(struct sock *s, v4v_port_t port, uint16_t partner)
{
	int e;
	if (s->rx)
		return -EINVAL;
	size_t txsize = V4V_RING_HDR_SIZE + (size_t)V4V_SOCK_TX_LEN;
	int txfd = v4v_memfd_sealed("v4v-send", txsize);
	if (txfd < 0)
		return txfd;
	s->tx = mmap(NULL, txsize, PROT_READ | PROT_WRITE, MAP_SHARED, txfd, 0);
	if (s->tx == MAP_FAILED) {
		e = -errno;
		s->tx = NULL;
		close(txfd);
		return e;
	}
	s->txlen = V4V_SOCK_TX_LEN;
	s->txtail = 0;
	if (port != 0) {
		e = v4v__ring_register(s->d, port, partner, s->ring_len, V4V_REGISTER_FAIL_EXIST,
				       s->bell, txfd, s->txlen, &s->rx);
		if (e == -EEXIST)
			e = -EADDRINUSE;
	} else {
		pthread_mutex_lock(&table_lock);
		if (!next_port)
			next_port = EPHEMERAL_BASE | ((uint32_t)getpid() << 8 & 0x3FFFFF00u);
		pthread_mutex_unlock(&table_lock);
		e = -EADDRINUSE;
		for (int tries = 0; tries < 64 && e == -EADDRINUSE; tries++) {
			pthread_mutex_lock(&table_lock);
			port = next_port++;
			if (next_port == 0)
				next_port = EPHEMERAL_BASE;
			pthread_mutex_unlock(&table_lock);
			e = v4v__ring_register(s->d, port, partner, s->ring_len,
					       V4V_REGISTER_FAIL_EXIST, s->bell, txfd, s->txlen,
					       &s->rx);
			if (e == -EEXIST)
				e = -EADDRINUSE;
		}
	}
	close(txfd);
	if (e) {
		munmap(s->tx, txsize);
		s->tx = NULL;
		return e;
	}
	close(s->bell); /* v4vd holds its copy now */
	s->bell = -1;
	s->port = port;
	s->partner = partner;
	return 0;
}

int v4v_bind(int fd, const struct v4v_addr *addr)
{
	struct sock *s = lookup(fd);
	if (!s)
		return -1;
	if (s->rx)
		return fail(EINVAL);
	if (addr->domain_id != V4V_DOMID_ANY && addr->domain_id > V4V_DOMID_MAX)
		return fail(EINVAL);
	int e = ring_up(s, addr->aport, addr->domain_id);
	if (e)
		return fail(-e);
	s->state = S_BOUND;
	return 0;
}

/* ---- sending --------------------------------------------------------- */

static int map_send_error(long e)
{
	switch (e) {
	case -ESRCH: return EHOSTUNREACH;
	default: return (int)-e;
	}
}

/*
 * One message, whole or nothing, waiting for space unless non-blocking.
 * Returns the payload length or -errno.
 */
static long send_msg(struct sock *s, const struct v4v_addr *to, uint32_t type, const void *buf,
		     size_t len, bool nonblock)
{
	struct iovec iov = {(void *)buf, len};
	for (;;) {
		long r = v4v_sendv(s->d, s->port, to, &iov, 1, type);
		if (r != -EAGAIN && r != -EBUSY)
			return r;
		if (r == -EAGAIN)
			bell_block(s); /* writable again when v4vd sees room */
		if (nonblock)
			return -EAGAIN;
		/* EBUSY: too many waiters on that ring; v4vd won't call us back.
		 * A peer that dies frees its waiters, so POLLOUT comes then too. */
		int e = wait_fd(s, POLLOUT, r == -EBUSY ? 1 : -1);
		if (e)
			return e;
		if (s->peer_gone)
			return -ECONNRESET;
	}
}

static int stream_error(struct sock *s)
{
	if (s->so_error) {
		int e = s->so_error;
		s->so_error = 0;
		return e;
	}
	return 0;
}

static uint32_t tx_head(struct sock *s)
{
	/* Acquire: v4vd has finished reading what it hands back. */
	return atomic_load_explicit((_Atomic uint32_t *)&s->tx->rx_ptr, memory_order_acquire);
}

/*
 * Wait until the send ring has `need` bytes free (need 0: until it is
 * empty).  Announce first (want_space), then re-check, then sleep: v4vd
 * sees want_space after it consumes and makes our end writable again.
 */
/* Room for need bytes (need 0: the ring is empty), given v4vd's head. */
static bool tx_fits(const struct sock *s, uint32_t head, uint64_t need)
{
	return need ? need <= v4v_ring_space(s->txlen, head, s->txtail) : head == s->txtail;
}

static int tx_wait(struct sock *s, uint64_t need, bool nonblock, int limit_ms)
{
	for (int waited = 0;; waited += 100) {
		uint32_t head = tx_head(s);
		if (!v4v_ring_ptr_ok(head, s->txlen))
			return -EIO;
		if (tx_fits(s, head, need))
			return 0;
		atomic_store_explicit((_Atomic uint32_t *)&s->tx->want_space, 1,
				      memory_order_relaxed);
		/* Pairs with v4vd's fence between storing rx_ptr and reading
		 * want_space (hv_tx_pump). */
		atomic_thread_fence(memory_order_seq_cst);
		if (tx_fits(s, tx_head(s), need))
			return 0;
		bell_block(s);
		if (nonblock)
			return -EAGAIN;
		if (limit_ms >= 0 && waited >= limit_ms)
			return -ETIMEDOUT;
		int e = wait_fd(s, POLLOUT, 100);
		if (e)
			return e;
		handle_events(s->d); /* a queued send may have failed meanwhile */
		if (s->peer_gone)
			return -ECONNRESET;
	}
}

/*
 * Queue one message on the send ring: the fast path, no system call
 * unless v4vd has stopped polling this ring (then one kick).
 */
static long tx_put(struct sock *s, const struct v4v_addr *to, uint32_t type, const void *buf,
		   size_t len, bool nonblock)
{
	uint64_t need = v4v_msg_footprint(len);
	if (need > s->txlen - V4V_MSG_SLOT)
		return -EMSGSIZE;
	int e = tx_wait(s, need, nonblock, -1);
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
	atomic_store_explicit((_Atomic uint32_t *)&s->tx->tx_ptr, s->txtail, memory_order_release);
	/* Pairs with v4vd's fence in hv_tx_park: it parks, then re-checks. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit((_Atomic uint32_t *)&s->tx->need_kick, memory_order_relaxed)) {
		atomic_store_explicit((_Atomic uint32_t *)&s->tx->need_kick, 0,
				      memory_order_relaxed);
		send(s->fd, "k", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	return (long)len;
}

static struct dest *dest_find(struct sock *s, const struct v4v_addr *to)
{
	for (unsigned i = 0; i < s->ndest; i++)
		if (same_addr(&s->dest[i].addr, to))
			return &s->dest[i];
	return NULL;
}

/* Remember a destination that took a synchronous send, with its size. */
static void dest_add(struct sock *s, const struct v4v_addr *to)
{
	struct v4v_ring_data_ent e = {.ring = {.aport = to->aport, .domain_id = to->domain_id}};
	if (v4v_notify(s->d, &e, 1) < 0 || !(e.flags & V4V_RING_EXISTS))
		return;
	unsigned i = s->ndest < DEST_CACHE ? s->ndest++ : s->dest_next++ % DEST_CACHE;
	s->dest[i] = (struct dest){.addr = e.ring, .max = e.max_message_size};
}

ssize_t v4v_sendto(int fd, const void *buf, size_t len, int flags, const struct v4v_addr *to)
{
	struct sock *s = lookup(fd);
	if (!s)
		return -1;
	if (s->type == V4V_SOCK_STREAM)
		return to ? fail(EISCONN) : v4v_send(fd, buf, len, flags);
	if (s->d->dead)
		return fail(EPIPE); /* the send ring's fast path would not notice */
	if (!to) {
		if (!s->has_peer)
			return fail(EDESTADDRREQ);
		to = &s->peer;
	}
	if (!s->rx) {
		int e = ring_up(s, 0, V4V_DOMID_ANY);
		if (e)
			return fail(-e);
		s->state = S_BOUND;
	}
	int e = stream_error(s);
	if (e)
		return fail(e);
	bool nonblock = s->nonblock || (flags & MSG_DONTWAIT);
	struct dest *d = dest_find(s, to);
	long r;
	if (d && len > d->max)
		return fail(EMSGSIZE);
	if (d && v4v_msg_footprint(len) <= s->txlen - V4V_MSG_SLOT) {
		r = tx_put(s, to, MT_DGRAM, buf, len, nonblock);
	} else {
		/* First send to here: synchronous, so its errors are this call's.
		 * Queued messages go first, to keep the order per destination. */
		r = tx_wait(s, 0, nonblock, -1);
		if (r == 0)
			r = send_msg(s, to, MT_DGRAM, buf, len, nonblock);
		if (r >= 0 && !d)
			dest_add(s, to);
	}
	return r < 0 ? fail(map_send_error(r)) : r;
}

ssize_t v4v_send(int fd, const void *buf, size_t len, int flags)
{
	struct sock *s = lookup(fd);
	if (!s)
		return -1;
	if (s->type == V4V_SOCK_DGRAM)
		return v4v_sendto(fd, buf, len, flags, NULL);
	if (s->state != S_CONNECTED)
		return fail(ENOTCONN);
	if (s->d->dead)
		return fail(EPIPE); /* the send ring's fast path would not notice */
	int e = stream_error(s);
	if (e)
		return fail(e);
	if (s->fin_sent)
		return fail(EPIPE);
	if (s->peer_gone)
		return fail(ECONNRESET);

	bool nonblock = s->nonblock || (flags & MSG_DONTWAIT);
	size_t sent = 0, chunk_max = s->peer_max / 4;
	if (chunk_max > STREAM_CHUNK_MAX)
		chunk_max = STREAM_CHUNK_MAX;
	if (chunk_max > s->txlen / 4)
		chunk_max = s->txlen / 4;
	if (chunk_max < 16)
		chunk_max = s->peer_max;
	while (sent < len) {
		size_t n = len - sent < chunk_max ? len - sent : chunk_max;
		long r = tx_put(s, &s->peer, MT_DATA, (const char *)buf + sent, n, nonblock);
		if (r == -EAGAIN && sent > 0)
			break;
		if (r < 0) {
			if (r == -ECONNREFUSED || r == -ECONNRESET) {
				s->peer_gone = true;
				return fail(ECONNRESET);
			}
			return fail(map_send_error(r));
		}
		sent += (size_t)r;
	}
	return (ssize_t)sent;
}

/* ---- receiving ------------------------------------------------------- */

/*
 * Nothing to read: drain the doorbell, then look once more after a full
 * fence (v4v__rx_idle).  Returns 1 when the caller should look at the ring
 * again without sleeping (data slipped in, or an event changed the
 * socket's state), 0 after sleeping until the doorbell rang, -EAGAIN when
 * non-blocking, -EPIPE when v4vd is gone.
 */
static int wait_readable(struct sock *s, bool nonblock)
{
	int bits = bell_drain(s);
	if (bits < 0)
		return bits;
	notify_if_needed(s);
	if ((bits & HV_SIG_EVENT) || !v4v__rx_idle(s->rx)) {
		s->raced = true;
		return 1;
	}
	s->raced = false;
	if (nonblock)
		return -EAGAIN;
	return wait_fd(s, POLLIN, -1);
}

/* Release a message; every quarter ring, let v4vd re-check its waiters. */
static void consume(struct sock *s, const struct v4v_msg *m)
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
 */
static void read_done(struct sock *s)
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
		v4v__ring_poke(s->rx);
}

/* Refuse a connection request that reached a socket not listening. */
static void refuse(struct sock *s, const struct v4v_msg *m)
{
	struct iovec iov = {NULL, 0};
	v4v_sendv(s->d, s->port, &m->source, &iov, 0, MT_RST);
}

ssize_t v4v_recvfrom(int fd, void *buf, size_t len, int flags, struct v4v_addr *from)
{
	struct sock *s = lookup(fd);
	if (!s)
		return -1;
	if (s->type == V4V_SOCK_STREAM) {
		ssize_t n = v4v_recv(fd, buf, len, flags);
		if (n >= 0 && from)
			*from = s->peer;
		return n;
	}
	if (!s->rx)
		return fail(EINVAL); /* not bound: nothing can arrive */
	bool nonblock = s->nonblock || (flags & MSG_DONTWAIT);
	for (;;) {
		struct v4v_msg m;
		int r = v4v_rx_peek(s->rx, &m);
		if (r < 0)
			return fail(EIO);
		if (r == 1) {
			bool keep = m.message_type == MT_DGRAM &&
				    (!s->has_peer || same_addr(&m.source, &s->peer));
			size_t n = keep ? v4v_msg_read(&m, buf, len) : 0;
			if (m.message_type == MT_SYN)
				refuse(s, &m);
			if (keep && from)
				*from = m.source;
			if (!(flags & MSG_PEEK) || !keep)
				consume(s, &m);
			if (keep) {
				read_done(s);
				return (ssize_t)n;
			}
			continue;
		}
		int e = wait_readable(s, nonblock);
		if (e < 0)
			return fail(-e);
	}
}

/* Handle one stream message that is not DATA for us; false to stop reading. */
static void stream_control(struct sock *s, const struct v4v_msg *m)
{
	if (!same_addr(&m->source, &s->peer)) {
		if (m->message_type == MT_SYN)
			refuse(s, m);
		return; /* not our peer: drop */
	}
	if (m->message_type == MT_FIN)
		s->peer_fin = true;
	else if (m->message_type == MT_RST)
		s->peer_gone = true;
}

ssize_t v4v_recv(int fd, void *buf, size_t len, int flags)
{
	struct sock *s = lookup(fd);
	if (!s)
		return -1;
	if (s->type == V4V_SOCK_DGRAM)
		return v4v_recvfrom(fd, buf, len, flags, NULL);
	if (s->state != S_CONNECTED)
		return fail(ENOTCONN);
	bool nonblock = s->nonblock || (flags & MSG_DONTWAIT);
	size_t got = 0;
	for (;;) {
		struct v4v_msg m;
		while (got < len && !s->peer_fin) {
			int r = v4v_rx_peek(s->rx, &m);
			if (r <= 0) {
				if (r < 0)
					s->so_error = EIO;
				break;
			}
			if (m.message_type != MT_DATA || !same_addr(&m.source, &s->peer)) {
				stream_control(s, &m);
				consume(s, &m);
				continue;
			}
			/* Copy from where the last call stopped inside this message. */
			struct v4v_msg part = m;
			size_t skip = s->msg_off;
			for (int i = 0; i < 2; i++) {
				size_t k = skip < part.seg[i].len ? skip : part.seg[i].len;
				part.seg[i].base = (const char *)part.seg[i].base + k;
				part.seg[i].len -= k;
				skip -= k;
			}
			size_t n = v4v_msg_read(&part, (char *)buf + got, len - got);
			got += n;
			if (flags & MSG_PEEK)
				break;
			s->msg_off += (uint32_t)n;
			if (s->msg_off == m.len) {
				s->msg_off = 0;
				consume(s, &m);
			}
		}
		if (got > 0 || len == 0) {
			read_done(s);
			return (ssize_t)got;
		}
		int e = stream_error(s);
		if (e)
			return fail(e);
		if (s->peer_fin || s->shut_rd)
			return 0;
		if (s->peer_gone)
			return fail(ECONNRESET);
		if ((e = wait_readable(s, nonblock)) < 0)
			return fail(-e);
	}
}

/* ---- connections ----------------------------------------------------- */

int v4v_listen(int fd, int backlog)
{
	struct sock *s = lookup(fd);
	if (!s)
		return -1;
	if (s->type != V4V_SOCK_STREAM)
		return fail(EOPNOTSUPP);
	if (s->state == S_LISTEN)
		return 0;
	if (s->state != S_BOUND)
		return fail(EINVAL); /* bind first: a listener needs a known port */
	(void)backlog;		     /* the ring is the backlog: ring_len / 32 requests */
	s->state = S_LISTEN;
	return 0;
}

static int send_hello(struct sock *s, uint32_t type, bool nonblock)
{
	struct hello h = {.ring_len = s->ring_len};
	long r = send_msg(s, &s->peer, type, &h, sizeof(h), nonblock);
	return r < 0 ? (int)r : 0;
}

/* Read the listener's ring for the next SYN; 1 with *m, 0 none, -errno. */
static int next_syn(struct sock *s, struct v4v_msg *m, struct hello *h)
{
	for (;;) {
		int r = v4v_rx_peek(s->rx, m);
		if (r <= 0)
			return r < 0 ? -EIO : 0;
		if (m->message_type == MT_SYN && m->len == sizeof(*h)) {
			v4v_msg_read(m, h, sizeof(*h));
			return 1;
		}
		consume(s, m); /* anything else has no business here */
	}
}

int v4v_accept(int fd, struct v4v_addr *peer)
{
	struct sock *s = lookup(fd);
	if (!s)
		return -1;
	if (s->state != S_LISTEN)
		return fail(EINVAL);
	for (;;) {
		struct v4v_msg m;
		struct hello h;
		int r = next_syn(s, &m, &h);
		if (r < 0)
			return fail(-r);
		if (r == 0) {
			int e = wait_readable(s, s->nonblock);
			if (e < 0)
				return fail(-e);
			continue;
		}
		consume(s, &m);
		read_done(s);

		struct sock *c = sock_new(s->d, V4V_SOCK_STREAM, s->nonblock);
		if (!c)
			return -1;
		c->ring_len = s->ring_len < V4V_STREAM_RING_LEN ? V4V_STREAM_RING_LEN : s->ring_len;
		c->peer = m.source;
		c->has_peer = true;
		c->peer_max = v4v_ring_len_ok(h.ring_len) ? v4v_ring_max_payload(h.ring_len) : 0;
		int e = c->peer_max ? ring_up(c, 0, m.source.domain_id) : -EPROTO;
		if (!e)
			e = send_hello(c, MT_SYNACK, false);
		if (e) {
			/* No ring for it (quota), or the client went away: refuse
			 * it, so a waiting connect fails rather than hangs. */
			refuse(s, &m);
			v4v_sock_close(c->fd);
			continue;
		}
		c->state = S_CONNECTED;
		if (peer)
			*peer = c->peer;
		return c->fd;
	}
}

/* Wait for SYNACK or refusal; 0 connected, -errno. */
static int finish_connect(struct sock *s, bool nonblock)
{
	for (;;) {
		struct v4v_msg m;
		struct hello h;
		int r = v4v_rx_peek(s->rx, &m);
		if (r < 0)
			return -EIO;
		if (r == 1) {
			bool from_server = m.source.domain_id == s->peer.domain_id;
			if (from_server && m.message_type == MT_SYNACK && m.len == sizeof(h)) {
				v4v_msg_read(&m, &h, sizeof(h));
				consume(s, &m);
				read_done(s);
				if (!v4v_ring_len_ok(h.ring_len))
					return -EPROTO;
				s->peer = m.source; /* the connection's own ring */
				s->peer_max = v4v_ring_max_payload(h.ring_len);
				s->state = S_CONNECTED;
				return 0;
			}
			consume(s, &m);
			if (from_server && m.message_type == MT_RST)
				return -ECONNREFUSED;
			continue;
		}
		if (s->peer_gone)
			return -ECONNREFUSED; /* the listener went away */
		int e = wait_readable(s, nonblock);
		if (e < 0)
			return e == -EAGAIN ? -EINPROGRESS : e;
	}
}

int v4v_connect(int fd, const struct v4v_addr *peer)
{
	struct sock *s = lookup(fd);
	if (!s)
		return -1;
	if (s->type == V4V_SOCK_DGRAM) {
		/* Default destination, and the only source we accept from. */
		s->peer = (struct v4v_addr){.aport = peer->aport, .domain_id = peer->domain_id};
		s->has_peer = true;
		return 0;
	}
	if (s->state == S_CONNECTED)
		return fail(EISCONN);
	if (s->state == S_CONNECTING) {
		int e = finish_connect(s, true);
		if (e)
			s->state = e == -EINPROGRESS ? S_CONNECTING : S_NEW;
		return e ? fail(e == -EINPROGRESS ? EALREADY : -e) : 0;
	}
	if (s->state == S_LISTEN)
		return fail(EINVAL);
	if (peer->domain_id > V4V_DOMID_MAX)
		return fail(EINVAL);
	if (!s->rx) {
		int e = ring_up(s, 0, peer->domain_id);
		if (e)
			return fail(-e);
	}
	s->peer = (struct v4v_addr){.aport = peer->aport, .domain_id = peer->domain_id};
	s->has_peer = true;
	s->peer_gone = false;
	/* A full listener: wait, or EAGAIN when non-blocking (as Unix sockets). */
	int e = send_hello(s, MT_SYN, s->nonblock);
	if (e == 0)
		e = finish_connect(s, s->nonblock);
	if (e == -EINPROGRESS) {
		s->state = S_CONNECTING;
		return fail(EINPROGRESS);
	}
	if (e)
		return fail(e == -ESRCH ? EHOSTUNREACH : -e);
	return 0;
}

/* ---- teardown -------------------------------------------------------- */

/* FIN goes down the send ring, after the data: order is the point. */
static void send_fin(struct sock *s)
{
	if (s->state != S_CONNECTED || s->fin_sent || s->peer_gone)
		return;
	s->fin_sent = true;
	tx_put(s, &s->peer, MT_FIN, NULL, 0, false);
}

/* Before the ring goes: give v4vd (boundedly) what is still queued. */
static void linger(struct sock *s)
{
	if (!s->tx)
		return;
	if (!s->peer_gone)
		tx_wait(s, 0, false, CLOSE_FIN_WAIT_MS);
}

int v4v_shutdown(int fd, int how)
{
	struct sock *s = lookup(fd);
	if (!s)
		return -1;
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return fail(EINVAL);
	if (s->type == V4V_SOCK_STREAM && s->state != S_CONNECTED)
		return fail(ENOTCONN);
	if (how != SHUT_WR)
		s->shut_rd = true;
	if (how != SHUT_RD)
		send_fin(s);
	return 0;
}

int v4v_sock_close(int fd)
{
	pthread_mutex_lock(&table_lock);
	struct sock *s = fd >= 0 && fd < table_cap ? table[fd] : NULL;
	if (s)
		table[fd] = NULL;
	pthread_mutex_unlock(&table_lock);
	if (!s)
		return fail(EBADF);
	send_fin(s);
	linger(s);
	sock_free(s);
	close(fd);
	return 0;
}

int v4v_getsockname(int fd, struct v4v_addr *addr)
{
	struct sock *s = lookup(fd);
	if (!s)
		return -1;
	*addr = (struct v4v_addr){.aport = s->port, .domain_id = v4v_domid(s->d)};
	return 0;
}

int v4v_getpeername(int fd, struct v4v_addr *addr)
{
	struct sock *s = lookup(fd);
	if (!s)
		return -1;
	if (!s->has_peer || (s->type == V4V_SOCK_STREAM && s->state != S_CONNECTED))
		return fail(ENOTCONN);
	*addr = s->peer;
	return 0;
}
