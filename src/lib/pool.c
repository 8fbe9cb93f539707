/* SPDX-License-Identifier: MIT */
/*
 * The connection ring pool: a closed stream's ring, send ring and doorbell
 * stay registered, and the next connection of this process to the same
 * domain (same ring size) takes them, with no memfd, no mapping and no
 * register or unregister round trip (docs/ARCHITECTURE.md, "The connection
 * ring pool").
 *
 * What makes a ring safe to hand to a new connection:
 *
 *  - it was put here only after a clean close (our FIN is queued), and is
 *    taken only once the send ring is empty (v4vd has moved all of it), so
 *    nothing of the old connection is still on its way out after the new
 *    one's SYN or SYNACK; close does not wait for that (v4vd moves it
 *    while the ring stays registered; at exit, and before a pooled ring is
 *    unregistered, it is waited for as close's linger would have);
 *  - it is taken only once the old peer's FIN has been read off it (the
 *    old peer promised nothing more), and everything in it then is
 *    consumed: stale data and FINs never reach the new connection, and a
 *    later message from another old peer is not from the new peer's
 *    address, which stream.c filters on;
 *  - an old peer that writes after our close (data, not its FIN) gets what
 *    it would have got without the pool: the ring is unregistered at the
 *    next look (any connect, accept or close here), so its sends fail with
 *    ECONNRESET as they would against a closed ring.
 *
 * The rings count against the domain's quotas as any other: a register
 * that fails for quota (ENOSPC) empties the pool and tries once more.
 *
 * A partner domain's death (PARTNER_GONE) gives its pooled rings back: no
 * connection can take them now.  The event is read wherever the process
 * reads its events, also by a thread that holds the pool (linger at
 * exit) or while another does; so it is recorded (the gone list), and
 * whoever holds the pool's lock gives those rings back as it unlocks
 * (pool_unlock); a stream closing meanwhile, which the event could not
 * reach, is not pooled (v4v__pool_put).  No pooled ring has a socket to read its doorbell, so
 * each look at the pool reads them (pool_bells): the event is seen even
 * when no live socket hears of it.  Events lost to an overflowing queue
 * may have named a partner: then every pooled ring goes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/barrier.h"
#include "core/ring.h"
#include "sock.h"

#define POOL_MAX       16	      /* rings kept per process, spares among them */
#define SPARES_MAX_ALL (POOL_MAX / 2) /* spares of all listeners: room for the rest */

struct pooled {
	struct v4v_domain *d;
	struct v4v_rx *rx;
	struct v4v_tx_ring *tx;
	uint32_t txlen, txtail, ring_len;
	int fd; /* our end of the doorbell (a duplicate of the user's fd) */
	size_t blocker_len;
	v4v_port_t port;
	uint16_t partner;
	struct v4v_addr old_peer;
	bool fin_seen;
	bool waiter; /* a WAITER token was read off its doorbell (pool_bells) */
	/* Lent to our listener on port spare_of (v4v__pool_spare_fill): what
	 * comes to it now is a new connection's, for accept, never swept. */
	bool spare;
	bool taken_by_known; /* a SYN_TAKEN named it: keyed (port, partner) */
	v4v_port_t spare_of;
	uint64_t lent_at; /* evlog_n when lent */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pooled pool[POOL_MAX];
static unsigned npool;
static pid_t pool_pid; /* a forked child does not own the parent's rings */
static bool pool_atexit;

/*
 * The last POOL_MAX partners gone (pool_partner_gone), oldest
 * overwritten: their rings leave the pool at the next unlock, and a
 * closing stream's ring for one of them is not put there (its socket was
 * out of the table when the event was read: pool_put).  gone_lock is a
 * leaf: taken alone or under pool_lock, never around another lock.
 */
static pthread_mutex_t gone_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gone {
	struct v4v_domain *d;
	uint16_t domid;
} gone[POOL_MAX];
static unsigned ngone, gone_next; /* slots in use, the next to write */
static unsigned gone_new;	  /* recorded since the pool last looked */
static bool gone_all;		  /* once: every pooled ring goes */

/*
 * A spare's ring has no socket while it waits in the pool, yet it is a
 * client's connection from the moment v4vd gave it out: an event that
 * ends it (the client's ring or domain gone), read by any event handling
 * before accept makes the socket, reaches nobody.  So the last POOL_MAX
 * events that can end a connection are logged by the ring they name,
 * before they go to sockets (v4v__pool_event), and accept, once its
 * socket is in the table, asks whether one named its spare since it was
 * lent (evlog_since); only then does it ask v4vd.  Lost events (OVERFLOW)
 * count as naming every ring.  Under gone_lock.
 */
static struct {
	const struct v4v_domain *d;
	v4v_port_t port;
} evlog[POOL_MAX];
static uint64_t evlog_n; /* events logged ever; evlog[i % POOL_MAX] */

/* Under pool_lock: forget what a parent left (its rings are not ours). */
static void pool_check_pid(void);
static void pool_unlock(void);
static void pooled_linger(struct pooled *p, uint64_t deadline);

/* A process that exits after close: what its closed streams queued still
 * goes, for at most LINGER_MS in all (their rings go with the process). */
static void pool_exit(void)
{
	uint64_t deadline = v4v__deadline(LINGER_MS);
	pthread_mutex_lock(&pool_lock);
	pool_check_pid();
	for (unsigned i = 0; i < npool; i++)
		pooled_linger(&pool[i], deadline);
	pool_unlock();
}

static void pool_check_pid(void)
{
	pid_t me = v4v__pid();
	if (pool_pid == me)
		return;
	for (unsigned i = 0; i < npool; i++)
		close(pool[i].fd);
	npool = 0;
	pool_pid = me;
}

/* A socket in name only, to wait on an entry's send ring with tx.c. */
static struct sock pooled_sock(const struct pooled *p)
{
	return (struct sock){
	    .fd = p->fd,
	    .bell = -1,
	    .pool_fd = -1,
	    .d = p->d,
	    .type = V4V_SOCK_STREAM,
	    .tx = p->tx,
	    .txlen = p->txlen,
	    .txtail = p->txtail,
	    .blocker_len = p->blocker_len,
	};
}

/* Has v4vd moved everything the old connection queued? */
static bool pooled_drained(const struct pooled *p)
{
	/* Acquire: pairs with hv_tx_pump's release of rx_ptr. */
	return v4v_load_acquire(&p->tx->rx_ptr) == p->txtail;
}

/* Close did not wait for the send ring (the ring stays registered, v4vd
 * keeps moving it): what is queued goes before the ring does, as close's
 * linger would have had it, up to the deadline. */
static void pooled_linger(struct pooled *p, uint64_t deadline)
{
	if (pooled_drained(p) || p->d->dead)
		return;
	struct sock t = pooled_sock(p);
	(void)v4v__tx_wait(&t, 0, false, v4v__ms_left(deadline));
}

/* Give one back to v4vd: unregister (the old peer hears RING_GONE). */
static void pooled_free(struct pooled *p, uint64_t deadline)
{
	pooled_linger(p, deadline);
	(void)v4v_ring_unregister(p->rx);
	munmap(p->tx, V4V_RING_HDR_SIZE + (size_t)p->txlen);
	close(p->fd);
}

/* The bits of the tokens waiting on a pooled doorbell, which are taken
 * (v4vd gone: none; the next call sees that). */
static unsigned pooled_drain(int fd)
{
	int bits = v4v__bell_tokens(fd);
	return bits < 0 ? 0 : (unsigned)bits;
}

/* Under pool_lock: drop entry i from the table (not freeing it). */
static struct pooled pool_take(unsigned i)
{
	struct pooled p = pool[i];
	pool[i] = pool[--npool];
	return p;
}

/* Under gone_lock: is d's partner domid among those gone? */
static bool gone_has(const struct v4v_domain *d, uint16_t domid)
{
	for (unsigned i = 0; i < ngone; i++)
		if (gone[i].d == d && gone[i].domid == domid)
			return true;
	return false;
}

/* Under pool_lock: take the entries whose partner is gone into out. */
static unsigned pool_take_gone(struct pooled *out)
{
	unsigned n = 0;
	pool_check_pid();
	pthread_mutex_lock(&gone_lock);
	for (unsigned i = 0; i < npool && (gone_new || gone_all);)
		if (!pool[i].spare && (gone_all || gone_has(pool[i].d, pool[i].partner)))
			out[n++] = pool_take(i);
		else
			i++;
	gone_new = 0;
	gone_all = false;
	pthread_mutex_unlock(&gone_lock);
	return n;
}

static bool gone_pending(void)
{
	pthread_mutex_lock(&gone_lock);
	bool pending = gone_new || gone_all;
	pthread_mutex_unlock(&gone_lock);
	return pending;
}

/* Record d's partner domid as gone (V4V_DOMID_ANY: any may be). */
static void gone_record(struct v4v_domain *d, uint16_t domid)
{
	pthread_mutex_lock(&gone_lock);
	if (domid == V4V_DOMID_ANY) {
		gone_all = true;
	} else if (!gone_has(d, domid)) {
		/* Overwriting one the pool has not looked at yet: all go. */
		gone_all |= gone_new == POOL_MAX;
		gone[gone_next] = (struct gone){d, domid};
		gone_next = (gone_next + 1) % POOL_MAX;
		ngone += ngone < POOL_MAX;
		gone_new += gone_new < POOL_MAX;
	}
	pthread_mutex_unlock(&gone_lock);
}

static uint64_t evlog_now(void)
{
	pthread_mutex_lock(&gone_lock);
	uint64_t n = evlog_n;
	pthread_mutex_unlock(&gone_lock);
	return n;
}

/* May an event logged since `since` have named d's ring on port? */
static bool evlog_since(const struct v4v_domain *d, v4v_port_t port, uint64_t since)
{
	bool maybe = false;
	pthread_mutex_lock(&gone_lock);
	if (evlog_n - since > POOL_MAX)
		maybe = true;
	for (uint64_t i = since; i < evlog_n && !maybe; i++)
		maybe = evlog[i % POOL_MAX].d == d && evlog[i % POOL_MAX].port == port;
	pthread_mutex_unlock(&gone_lock);
	return maybe;
}

/*
 * Every holder of pool_lock lets it go here: the rings of partners gone
 * meanwhile go back first.  A partner recorded after that (its recorder
 * found the lock held) is seen by the look after the unlock, which takes
 * the lock again if it is free; if it is not, its holder looks in turn
 * at its own unlock.  So no release is lost, and the event path never
 * waits for the pool (a thread may read events with it held: linger).
 * Nothing is left to linger for: the partner is gone.
 */
static void pool_unlock(void)
{
	do {
		struct pooled out[POOL_MAX];
		unsigned n = pool_take_gone(out);
		pthread_mutex_unlock(&pool_lock);
		for (unsigned i = 0; i < n; i++)
			pooled_free(&out[i], v4v__deadline(0));
	} while (gone_pending() && pthread_mutex_trylock(&pool_lock) == 0);
}

/*
 * Under pool_lock: read the tokens on d's pooled doorbells, which no
 * socket reads.  DATA is stale (the sweep consumes what is there), WAITER
 * is kept for the socket that takes the ring (pooled_tokens); true if
 * there was an EVENT: the caller reads the events once it has let the
 * pool go (a partner's death: pool_partner_gone).  One poll for all
 * of them; only those with tokens are read.
 */
static bool pool_bells(struct v4v_domain *d)
{
	struct pollfd pfd[POOL_MAX];
	unsigned idx[POOL_MAX], n = 0;
	for (unsigned i = 0; i < npool; i++)
		if (pool[i].d == d && !pool[i].spare) {
			pfd[n] = (struct pollfd){.fd = pool[i].fd, .events = POLLIN};
			idx[n++] = i;
		}
	if (n == 0 || poll(pfd, n, 0) <= 0)
		return false;
	unsigned bits = 0;
	for (unsigned k = 0; k < n; k++) {
		if (!(pfd[k].revents & POLLIN))
			continue;
		struct pooled *p = &pool[idx[k]];
		unsigned got = pooled_drain(p->fd);
		p->waiter |= (got & HV_SIG_WAITER) != 0;
		bits |= got;
	}
	return (bits & HV_SIG_EVENT) != 0;
}

/*
 * Consume everything in the ring.  The old peer's FIN marks it reusable.
 * What was there at our close is dropped, as close drops unread data;
 * anything of the old peer's but its FIN (or an empty message) after that
 * means it still writes to a connection we closed: false, give the ring
 * back.
 */
static bool pooled_sweep(struct pooled *p, bool at_close)
{
	struct v4v_msg m;
	bool ok = true;
	int r;
	while ((r = v4v_rx_peek(p->rx, &m)) == 1) {
		if (v4v__same_addr(&m.source, &p->old_peer)) {
			if (m.message_type == MT_FIN)
				p->fin_seen = true;
			else if (!at_close && (m.message_type != MT_DATA || m.len != 0))
				ok = false;
		}
		v4v_rx_consume(p->rx, &m);
	}
	return ok && r == 0 && !p->d->dead;
}

bool v4v__pool_put(struct sock *s)
{
	if (s->type != V4V_SOCK_STREAM || s->state != S_CONNECTED || !s->ephemeral ||
	    !s->fin_sent || s->peer_gone || s->so_error || s->d->dead || !s->rx || !s->tx ||
	    s->partner == V4V_DOMID_ANY)
		return false;
	struct pooled p = {
	    .d = s->d,
	    .rx = s->rx,
	    .tx = s->tx,
	    .txlen = s->txlen,
	    .txtail = s->txtail,
	    .ring_len = s->ring_len,
	    .blocker_len = s->blocker_len,
	    .port = s->port,
	    .partner = s->partner,
	    .old_peer = s->peer,
	    .fin_seen = s->peer_fin,
	};
	/* Unread data goes now, as close drops it; so does a FIN read in. */
	(void)pooled_sweep(&p, true);
	pthread_mutex_lock(&pool_lock);
	pool_check_pid();
	if (!pool_atexit)
		pool_atexit = atexit(pool_exit) == 0;
	/* A partner whose death was read while s was closing (out of the
	 * table: the event could not reach it) gets no ring kept. */
	pthread_mutex_lock(&gone_lock);
	bool room = npool < POOL_MAX && pool_atexit && !gone_has(s->d, s->partner);
	pthread_mutex_unlock(&gone_lock);
	if (room) {
		/* The fd the pool gave with the ring, else a new one. */
		p.fd = s->pool_fd >= 0 ? s->pool_fd : fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
		room = p.fd >= 0;
	}
	if (room) {
		pool[npool++] = p;
		s->rx = NULL;
		s->tx = NULL;
		s->pool_fd = -1;
	}
	pool_unlock();
	return room;
}

/*
 * The tokens v4vd left on a pooled doorbell are stale: DATA for what the
 * sweep consumed, EVENT for events that name the old connection.
 * pool_find's pool_bells took them, before its sweep, with no socket on
 * the ring's port, so they reached nobody.  One that came since is read
 * by the new socket as any other (a DATA token with the ring empty only
 * makes its fd poll readable once for nothing), so no call goes on them
 * here.  WAITER: a sender waits for room, the socket's next read
 * notifies.
 */
static void pooled_tokens(const struct pooled *p, struct sock *s)
{
	if (p->waiter)
		s->need_notify = true;
}

/*
 * Take up to max reusable rings of d partnered with `partner`
 * (V4V_DOMID_ANY: with any domain), of ring_len, out of the pool into
 * got[]: how many there were.  Entries whose old peer writes after our
 * close are unregistered on the way.  Spares are not looked at.
 */
static unsigned pool_find_n(struct v4v_domain *d, uint16_t partner, uint32_t ring_len,
			    struct pooled *got, unsigned max)
{
	struct pooled bad[POOL_MAX];
	unsigned nbad = 0, found = 0;
	pthread_mutex_lock(&pool_lock);
	pool_check_pid();
	bool events = pool_bells(d);
	for (unsigned i = 0; i < npool;) {
		struct pooled *p = &pool[i];
		if (p->d != d || p->spare) {
			i++;
			continue;
		}
		bool ok = pooled_sweep(p, false);
		if (!ok) {
			bad[nbad++] = pool_take(i);
			continue;
		}
		/* Drained: nothing of the old connection is still on its way
		 * (a synchronous SYN or SYNACK would overtake it). */
		if (found < max && p->fin_seen &&
		    (p->partner == partner || partner == V4V_DOMID_ANY) &&
		    p->ring_len == ring_len && pooled_drained(p)) {
			got[found++] = pool_take(i);
			continue;
		}
		i++;
	}
	pool_unlock();
	if (events)
		v4v__handle_events(d);
	uint64_t deadline = v4v__deadline(LINGER_MS);
	for (unsigned i = 0; i < nbad; i++)
		pooled_free(&bad[i], deadline);
	return found;
}

static bool pool_find(struct v4v_domain *d, uint16_t partner, uint32_t ring_len, struct pooled *got)
{
	return pool_find_n(d, partner, ring_len, got, 1) == 1;
}

/* Rings pool_find_n took and nobody used go back (what no longer fits:
 * to v4vd). */
static void pool_return(struct pooled *p, unsigned n)
{
	unsigned i = 0;
	pthread_mutex_lock(&pool_lock);
	pool_check_pid();
	for (; i < n && npool < POOL_MAX; i++)
		pool[npool++] = p[i];
	pool_unlock();
	for (; i < n; i++)
		pooled_free(&p[i], v4v__deadline(LINGER_MS));
}

/* s takes got's ring, send ring and port (its fd is got's already). */
static void pooled_into(struct sock *s, const struct pooled *got)
{
	s->rx = got->rx;
	s->tx = got->tx;
	s->txlen = got->txlen;
	s->txtail = got->txtail;
	s->blocker_len = got->blocker_len;
	s->port = got->port;
	s->partner = got->partner;
	s->ephemeral = true;
	s->pooled = true;
}

/* Give s a pooled ring partnered with `partner` of its size, if there is
 * a reusable one: 1 taken, 0 none. */
int v4v__pool_get(struct sock *s, uint16_t partner)
{
	struct pooled got;
	if (!pool_find(s->d, partner, s->ring_len, &got))
		return 0;
	pooled_tokens(&got, s);
	/* The user's fd becomes the pooled doorbell's end.  The fresh pair
	 * v4v__sock_new gave s was never given to v4vd: kept for the next
	 * socket (socket.c).  got.fd stays with s, for the pool again. */
	int keep = s->bell >= 0 ? fcntl(s->fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (dup3(got.fd, s->fd, O_CLOEXEC) < 0) {
		if (keep >= 0)
			close(keep);
		pooled_free(&got, v4v__deadline(LINGER_MS));
		return 0;
	}
	if (keep >= 0)
		v4v__sock_blank_put(keep, s->bell, s->blocker_len);
	else if (s->bell >= 0)
		close(s->bell);
	s->bell = -1;
	s->pool_fd = got.fd;
	pooled_into(s, &got);
	return 1;
}

/*
 * accept's socket straight from the pool: the pooled doorbell end is its
 * fd, so no socket pair is made at all.  1 with *out, 0 none, -errno.
 */
int v4v__pool_accept(struct v4v_domain *d, uint16_t partner, uint32_t ring_len, bool nonblock,
		     struct sock **out)
{
	struct pooled got;
	if (!pool_find(d, partner, ring_len, &got))
		return 0;
	struct sock *s;
	int e = v4v__sock_adopt(d, V4V_SOCK_STREAM, nonblock, got.fd, &s);
	if (e) {
		pooled_free(&got, v4v__deadline(LINGER_MS));
		return e;
	}
	s->ring_len = ring_len;
	pooled_tokens(&got, s);
	pooled_into(s, &got);
	*out = s;
	return 1;
}

/* ---- spares ----------------------------------------------------------- */

/* Under pool_lock: how many rings d's listener on lport has lent. */
static unsigned spares_of(const struct v4v_domain *d, v4v_port_t lport)
{
	unsigned n = 0;
	for (unsigned i = 0; i < npool; i++)
		n += pool[i].spare && pool[i].d == d && pool[i].spare_of == lport;
	return n;
}

/* Under pool_lock: how many spares all our listeners have. */
static unsigned spares_all(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < npool; i++)
		n += pool[i].spare;
	return n;
}

bool v4v__pool_can_lend(void)
{
	pthread_mutex_lock(&pool_lock);
	pool_check_pid();
	bool room = npool < POOL_MAX && spares_all() < SPARES_MAX_ALL;
	pool_unlock();
	return room;
}

/*
 * Give a spare back to v4vd, taken or not, and free what we hold of it.
 * One no connect took goes by V4V_OP_RING_SPARE's take-back, which drops
 * only a free spare of ours; one a SYN_TAKEN named, under the key it has
 * now; one taken with no word of it yet (a connect racing this) by the
 * close of its doorbell (docs/ARCHITECTURE.md, "A domain's death"), never
 * an unregister by a key that may be another ring's.
 */
static void spare_free(struct pooled *p)
{
	if (v4v__ring_spare(p->d, p->port, V4V_DOMID_ANY, V4V_PORT_ANY) == 0 || !p->taken_by_known)
		v4v__rx_forget(p->rx);
	else
		(void)v4v_ring_unregister(p->rx);
	munmap(p->tx, V4V_RING_HDR_SIZE + (size_t)p->txlen);
	close(p->fd);
}

/*
 * Lend p's ring to our listener on lport and keep it here as a spare:
 * 0, or -errno with p as it was (v4vd refused, or no room here: the
 * pool's, all listeners' SPARES_MAX_ALL, or this one's LISTEN_SPARES,
 * looked at under the lock, so threads accepting at once stay within
 * them).  The
 * lock is held across the call: once v4vd has lent it, a connect may take
 * it at any moment, so it must be in the table by then (and keyed, for
 * unregistering, as v4vd keys it: (port, any)).
 */
static int pool_lend(struct pooled *p, v4v_port_t lport)
{
	pthread_mutex_lock(&pool_lock);
	pool_check_pid();
	if (!pool_atexit)
		pool_atexit = atexit(pool_exit) == 0;
	bool room = npool < POOL_MAX && spares_all() < SPARES_MAX_ALL &&
		    spares_of(p->d, lport) < LISTEN_SPARES;
	int e = room && pool_atexit ? 0 : -ENOSPC;
	uint64_t at = evlog_now(); /* what comes before is the old one's */
	if (!e)
		e = v4v__ring_spare(p->d, p->port, p->partner, lport);
	if (!e) {
		p->spare = true;
		p->spare_of = lport;
		p->partner = V4V_DOMID_ANY;
		v4v__rx_set_partner(p->rx, V4V_DOMID_ANY);
		p->lent_at = at;
		pool[npool++] = *p;
	}
	pool_unlock();
	return e;
}

/*
 * Lend reusable pooled rings of ring_len to our listener on lport until it
 * has LISTEN_SPARES (wire/proto.h, V4V_OP_RING_SPARE): a connect that takes
 * one completes without waiting for accept.  Only rings the pool would
 * give a connection (swept, drained, the old peer's FIN read), all found
 * in one look; what their doorbells said of the old connection
 * pool_find_n took (a token since is the accepted socket's to read, as
 * in pooled_tokens).  As many are taken as there is room for spares
 * (pool_lend looks again); a refusal puts that ring and those after it
 * back, for connections.  Returns how many the listener has.
 */
unsigned v4v__pool_spare_fill(struct v4v_domain *d, v4v_port_t lport, uint32_t ring_len)
{
	pthread_mutex_lock(&pool_lock);
	pool_check_pid();
	unsigned have = spares_of(d, lport), all = spares_all();
	unsigned want = have < LISTEN_SPARES ? LISTEN_SPARES - have : 0;
	if (all + want > SPARES_MAX_ALL)
		want = all < SPARES_MAX_ALL ? SPARES_MAX_ALL - all : 0;
	pool_unlock();
	if (want == 0)
		return have;
	struct pooled got[LISTEN_SPARES];
	unsigned n = pool_find_n(d, V4V_DOMID_ANY, ring_len, got, want);
	unsigned i = 0;
	for (; i < n; i++) {
		bool waiter = got[i].waiter;
		got[i].waiter = false; /* the old partner's waits go with it */
		if (pool_lend(&got[i], lport) != 0) {
			got[i].waiter = waiter;
			break;
		}
		have++;
	}
	pool_return(got + i, n - i);
	return have;
}

/*
 * accept's socket for a SYN_TAKEN: the spare on port `port` our listener
 * on lport lent, now partnered with `partner`, its doorbell end the new
 * socket's fd, its tokens (the new connection's) left for it.  1 with
 * *out and *lent_at (for v4v__pool_spare_news), 0 no such spare here,
 * -errno.
 */
int v4v__pool_spare_take(struct v4v_domain *d, v4v_port_t lport, v4v_port_t port, uint16_t partner,
			 bool nonblock, struct sock **out, uint64_t *lent_at)
{
	struct pooled got;
	bool found = false;
	pthread_mutex_lock(&pool_lock);
	pool_check_pid();
	for (unsigned i = 0; i < npool && !found; i++)
		if (pool[i].spare && pool[i].d == d && pool[i].spare_of == lport &&
		    pool[i].port == port) {
			got = pool_take(i);
			found = true;
		}
	pool_unlock();
	if (!found)
		return 0;
	got.partner = partner;
	v4v__rx_set_partner(got.rx, partner);
	struct sock *s;
	int e = v4v__sock_adopt(d, V4V_SOCK_STREAM, nonblock, got.fd, &s);
	if (e) {
		got.taken_by_known = true;
		spare_free(&got);
		return e;
	}
	s->ring_len = got.ring_len;
	pooled_into(s, &got);
	*lent_at = got.lent_at;
	*out = s;
	return 1;
}

/*
 * May an event read since `since` (a spare's lent_at) have ended the
 * connection on d's ring `port` (the spares' log)?  Asked once the socket
 * is in the table and knows its peer: an event logged after this reaches
 * it (v4v__handle_events logs, then hands out).
 */
bool v4v__pool_spare_news(struct v4v_domain *d, v4v_port_t port, uint64_t since)
{
	return evlog_since(d, port, since);
}

/*
 * Lend t's ring, a fresh one (partnered, as v4vd wants a connection ring),
 * to our listener on lport: the pool has it then, and t none (its close
 * gives back only its fd).  0 or -errno (t keeps its ring).
 */
int v4v__pool_lend(struct sock *t, v4v_port_t lport)
{
	struct pooled p = {
	    .d = t->d,
	    .rx = t->rx,
	    .tx = t->tx,
	    .txlen = t->txlen,
	    .txtail = t->txtail,
	    .ring_len = t->ring_len,
	    .blocker_len = t->blocker_len,
	    .port = t->port,
	    .partner = t->partner,
	    .fin_seen = true,
	};
	p.fd = t->pool_fd >= 0 ? t->pool_fd : fcntl(t->fd, F_DUPFD_CLOEXEC, 0);
	if (p.fd < 0)
		return -errno;
	int e = pool_lend(&p, lport);
	if (e) {
		if (p.fd != t->pool_fd)
			close(p.fd);
		return e;
	}
	t->rx = NULL;
	t->tx = NULL;
	t->pool_fd = -1;
	return 0;
}

/* Our listener on lport closes and read, off its ring, that a connect
 * took its spare on port, keyed (port, partner) now. */
void v4v__pool_spare_taken(struct v4v_domain *d, v4v_port_t lport, v4v_port_t port,
			   uint16_t partner)
{
	pthread_mutex_lock(&pool_lock);
	pool_check_pid();
	for (unsigned i = 0; i < npool; i++)
		if (pool[i].spare && pool[i].d == d && pool[i].spare_of == lport &&
		    pool[i].port == port) {
			pool[i].partner = partner;
			pool[i].taken_by_known = true;
			v4v__rx_set_partner(pool[i].rx, partner);
		}
	pool_unlock();
}

/* Our listener on lport closes: the rings it was lent go back to v4vd, so
 * a client whose connect took one hears RING_GONE (its connection reset). */
void v4v__pool_spares_drop(struct v4v_domain *d, v4v_port_t lport)
{
	struct pooled out[POOL_MAX];
	unsigned n = 0;
	pthread_mutex_lock(&pool_lock);
	pool_check_pid();
	for (unsigned i = 0; i < npool;)
		if (pool[i].spare && pool[i].d == d && pool[i].spare_of == lport)
			out[n++] = pool_take(i);
		else
			i++;
	pool_unlock();
	for (unsigned i = 0; i < n; i++)
		spare_free(&out[i]);
}

/* Unregister every pooled ring of d (d NULL: of every domain). */
void v4v__pool_flush(struct v4v_domain *d, bool all)
{
	struct pooled out[POOL_MAX], spares[POOL_MAX];
	unsigned n = 0, ns = 0;
	pthread_mutex_lock(&pool_lock);
	pool_check_pid();
	for (unsigned i = 0; i < npool;) {
		struct pooled *p = &pool[i];
		if (d && p->d != d) {
			i++;
		} else if (!p->spare) {
			out[n++] = pool_take(i);
		} else if (all) {
			spares[ns++] = pool_take(i);
		} else if (v4v__ring_spare(p->d, p->port, V4V_DOMID_ANY, V4V_PORT_ANY) == 0) {
			/* Taken back: no connect had it. */
			v4v__rx_forget(p->rx);
			p->rx = NULL;
			out[n++] = pool_take(i);
		} else {
			i++; /* taken: the connection's, for accept */
		}
	}
	pool_unlock();
	uint64_t deadline = v4v__deadline(LINGER_MS);
	for (unsigned i = 0; i < n; i++)
		pooled_free(&out[i], deadline);
	for (unsigned i = 0; i < ns; i++)
		spare_free(&spares[i]);
}

/*
 * The partner domain of some of d's pooled rings died: no connection can
 * take them now (its id is not given again soon), so they go back; domid
 * V4V_DOMID_ANY: events were lost (V4V_EV_OVERFLOW), any partner may have
 * died, and every pooled ring goes (a cache: the next connections register
 * afresh).  This runs from event handling, which may find the pool held,
 * by this thread (the pool's linger reads events) or another: the partner
 * goes on the gone list, and the lock's holder gives its rings back as it
 * unlocks (pool_unlock), at once if the lock is free.
 */
static void pool_partner_gone(struct v4v_domain *d, uint16_t domid)
{
	gone_record(d, domid);
	if (pthread_mutex_trylock(&pool_lock) == 0)
		pool_unlock();
}

/* An event of d's, before it goes to the sockets (v4v__handle_events):
 * the spares' log, and the partners' deaths. */
void v4v__pool_event(struct v4v_domain *d, const struct v4v_event *e)
{
	if (e->type != V4V_EV_RING_GONE && e->type != V4V_EV_PARTNER_GONE &&
	    e->type != V4V_EV_OVERFLOW)
		return;
	pthread_mutex_lock(&gone_lock);
	if (e->type == V4V_EV_OVERFLOW) {
		evlog_n += POOL_MAX + 1;
	} else {
		evlog[evlog_n % POOL_MAX].d = d;
		evlog[evlog_n % POOL_MAX].port = e->ring.aport;
		evlog_n++;
	}
	pthread_mutex_unlock(&gone_lock);
	if (e->type == V4V_EV_PARTNER_GONE)
		pool_partner_gone(d, e->peer.domain_id);
	else if (e->type == V4V_EV_OVERFLOW)
		pool_partner_gone(d, V4V_DOMID_ANY);
}

/* A close looks at the pool too, so that an old peer writing after our
 * close hears of it then rather than at the next connection. */
void v4v__pool_sweep(struct v4v_domain *d)
{
	struct pooled bad[POOL_MAX];
	unsigned nbad = 0;
	pthread_mutex_lock(&pool_lock);
	pool_check_pid();
	bool events = pool_bells(d);
	for (unsigned i = 0; i < npool;)
		if (pool[i].d == d && !pool[i].spare && !pooled_sweep(&pool[i], false))
			bad[nbad++] = pool_take(i);
		else
			i++;
	pool_unlock();
	if (events)
		v4v__handle_events(d);
	uint64_t deadline = v4v__deadline(LINGER_MS);
	for (unsigned i = 0; i < nbad; i++)
		pooled_free(&bad[i], deadline);
}

/* For the tests: how many of d's pooled rings a connection could take now
 * (looked at first, as a connect would). */
unsigned v4v__pool_ready(struct v4v_domain *d)
{
	v4v__pool_sweep(d);
	unsigned n = 0;
	pthread_mutex_lock(&pool_lock);
	pool_check_pid();
	for (unsigned i = 0; i < npool; i++)
		if (pool[i].d == d && !pool[i].spare && pool[i].fin_seen &&
		    pooled_drained(&pool[i]))
			n++;
	pool_unlock();
	return n;
}

/* For the tests: hold the pool's lock (on), as a thread inside a pool
 * operation would, and let it go (off). */
void v4v__pool_hold(bool on)
{
	if (on)
		pthread_mutex_lock(&pool_lock);
	else
		pool_unlock();
}
