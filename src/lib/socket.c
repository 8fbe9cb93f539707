/* SPDX-License-Identifier: MIT */
/*
 * Sockets over rings: the socket table and each socket's lifecycle.
 *
 * A socket is a real fd (our end of its doorbell pair, sock.h) and an entry
 * in a process-wide table indexed by that fd.  Here: creating one, finding
 * it again, its flags, putting up its ring and send ring (bind, or on first
 * use), closing it, and its names.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "core/ring.h"
#include "sock.h"

#define EPHEMERAL_BASE 0x80000000u /* ports picked for port 0 start here */

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sock **table;
static int table_cap;
static struct v4v_domain *default_dom;
static uint32_t next_port; /* under table_lock */

/* ---- the table -------------------------------------------------------- */

struct sock *v4v__sock_lookup(int fd)
{
	struct sock *s = NULL;
	pthread_mutex_lock(&table_lock);
	if (fd >= 0 && fd < table_cap)
		s = table[fd];
	pthread_mutex_unlock(&table_lock);
	return s;
}

/* The one teardown: takes a half-built socket too (not its fd: see
 * table_put and v4v_sock_close). */
static void sock_free(struct sock *s)
{
	if (s->rx)
		v4v_ring_unregister(s->rx);
	if (s->tx)
		munmap(s->tx, V4V_RING_HDR_SIZE + (size_t)s->txlen);
	if (s->bell >= 0)
		close(s->bell);
	if (s->pool_fd >= 0)
		close(s->pool_fd);
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

void v4v__sock_each(struct v4v_domain *d, void (*fn)(struct sock *, void *), void *arg)
{
	pthread_mutex_lock(&table_lock);
	for (int fd = 0; fd < table_cap; fd++) {
		struct sock *s = table[fd];
		if (s && s->d == d && s->rx)
			fn(s, arg);
	}
	pthread_mutex_unlock(&table_lock);
}

/* ---- creation --------------------------------------------------------- */

static int domain_of(struct v4v_domain *d, struct v4v_domain **out)
{
	static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
	int e = 0;
	if (!d) {
		pthread_mutex_lock(&once);
		if (!default_dom)
			e = v4v_open(&default_dom);
		d = default_dom;
		pthread_mutex_unlock(&once);
	}
	*out = d;
	return e;
}

/* A small send buffer on our end, so one blocker packet makes it
 * unwritable (bell.c); returns the blocker's size. */
static long bell_sndbuf(int fd)
{
	/* The size the kernel rounds 1 up to is the same for every socket:
	 * asked once (a connection's cost, issue 12). */
	static _Atomic long known;
	int sndbuf = 1;
	socklen_t sl = sizeof(sndbuf);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0)
		return -errno;
	long k = known;
	if (k > 0)
		return k;
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) < 0)
		return -errno;
	k = (size_t)sndbuf / 2 < 4096 ? (long)sndbuf / 2 : 4096;
	known = k;
	return k;
}

/*
 * Fresh doorbell pairs a connect did not use (a pooled ring came with its
 * own, pool.c): kept for the next socket, which then makes none (a socket
 * pair and its two closes cost a connection ~4 us here, issue 12).  Never
 * given to v4vd and never written, so nothing in them is anyone's; a
 * forked child drops its parent's (both would hand v4vd the same pair).
 */
#define BLANK_MAX 4
static struct blank {
	int fd, bell;
	size_t blocker_len;
} blanks[BLANK_MAX];
static unsigned nblank;
static pid_t blank_pid;

/* Under table_lock: close the kept pairs. */
static void blanks_close(void)
{
	for (unsigned i = 0; i < nblank; i++) {
		close(blanks[i].fd);
		close(blanks[i].bell);
	}
	nblank = 0;
}

/* Under table_lock: forget what a parent left. */
static void blank_check_pid(void)
{
	pid_t me = v4v__pid();
	if (blank_pid == me)
		return;
	blanks_close();
	blank_pid = me;
}

void v4v__sock_blanks_drop(void)
{
	pthread_mutex_lock(&table_lock);
	blank_check_pid();
	blanks_close();
	pthread_mutex_unlock(&table_lock);
}

void v4v__sock_blank_put(int fd, int bell, size_t blocker_len)
{
	pthread_mutex_lock(&table_lock);
	blank_check_pid();
	bool room = nblank < BLANK_MAX;
	if (room)
		blanks[nblank++] = (struct blank){fd, bell, blocker_len};
	pthread_mutex_unlock(&table_lock);
	if (!room) {
		close(fd);
		close(bell);
	}
}

/* A kept pair into s: true, or false if there is none. */
static bool blank_take(struct sock *s)
{
	pthread_mutex_lock(&table_lock);
	blank_check_pid();
	bool got = nblank > 0;
	if (got) {
		struct blank b = blanks[--nblank];
		s->fd = b.fd;
		s->bell = b.bell;
		s->blocker_len = b.blocker_len;
	}
	pthread_mutex_unlock(&table_lock);
	return got;
}

/* A new doorbell pair for s: our end, with its small send buffer, and
 * v4vd's end. */
static int bell_pair(struct sock *s)
{
	int sv[2];
	if (blank_take(s))
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	long blocker = bell_sndbuf(sv[0]);
	s->blocker_len = blocker < 0 ? 0 : (size_t)blocker;
	s->fd = sv[0];
	s->bell = sv[1];
	return blocker < 0 ? (int)blocker : 0;
}

int v4v__sock_new(struct v4v_domain *d, int type, bool nonblock, struct sock **out)
{
	struct sock *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = s->bell = s->pool_fd = -1;
	int e = bell_pair(s);
	if (e && s->fd < 0) {
		free(s);
		return e;
	}
	s->d = d;
	s->type = type;
	s->nonblock = nonblock;
	s->ring_len = type != V4V_SOCK_DGRAM ? V4V_STREAM_RING_LEN : V4V_DGRAM_RING_LEN;
	s->partner = V4V_DOMID_ANY;
	if (!e)
		e = table_put(s);
	if (e) {
		close(s->fd);
		sock_free(s);
		return e;
	}
	*out = s;
	return 0;
}

int v4v__sock_adopt(struct v4v_domain *d, int type, bool nonblock, int fd, struct sock **out)
{
	struct sock *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = fd;
	s->bell = s->pool_fd = -1;
	s->d = d;
	s->type = type;
	s->nonblock = nonblock;
	s->ring_len = type != V4V_SOCK_DGRAM ? V4V_STREAM_RING_LEN : V4V_DGRAM_RING_LEN;
	s->partner = V4V_DOMID_ANY;
	int e = table_put(s);
	if (e) {
		free(s);
		return e;
	}
	*out = s;
	return 0;
}

int v4v_socket(struct v4v_domain *d, int type, int flags)
{
	if (type != V4V_SOCK_DGRAM && type != V4V_SOCK_STREAM && type != V4V_SOCK_SEQPACKET)
		return v4v__fail(EPROTOTYPE);
	if (flags & ~V4V_SOCK_NONBLOCK)
		return v4v__fail(EINVAL);
	struct sock *s = NULL;
	int e = domain_of(d, &d);
	if (!e)
		e = v4v__sock_new(d, type, flags & V4V_SOCK_NONBLOCK, &s);
	return e ? v4v__fail(-e) : s->fd;
}

int v4v_sock_set_ring_len(int fd, uint32_t len)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	if (s->rx)
		return v4v__fail(EISCONN);
	if (!v4v_ring_len_ok(len))
		return v4v__fail(EINVAL);
	s->ring_len = len;
	return 0;
}

int v4v_sock_set_nonblock(int fd, int on)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	s->nonblock = on != 0;
	return 0;
}

/* ---- rings ------------------------------------------------------------ */

static int ring_register(struct sock *s, v4v_port_t port, uint16_t partner, int txfd)
{
	int e = v4v__ring_register(s->d, port, partner, s->ring_len, V4V_REGISTER_FAIL_EXIST,
				   s->bell, txfd, s->txlen, &s->rx);
	return e == -EEXIST ? -EADDRINUSE : e;
}

/* Port 0: try ports from this process's own range until one is free. */
static int ring_register_any(struct sock *s, v4v_port_t *port, uint16_t partner, int txfd)
{
	pthread_mutex_lock(&table_lock);
	if (!next_port)
		next_port = EPHEMERAL_BASE | ((uint32_t)getpid() << 8 & 0x3FFFFF00u);
	pthread_mutex_unlock(&table_lock);
	int e = -EADDRINUSE;
	for (int tries = 0; tries < 64 && e == -EADDRINUSE; tries++) {
		pthread_mutex_lock(&table_lock);
		*port = next_port++;
		if (next_port == 0)
			next_port = EPHEMERAL_BASE;
		pthread_mutex_unlock(&table_lock);
		e = ring_register(s, *port, partner, txfd);
	}
	return e;
}

/* Register the socket's ring on port (0: pick one) with its doorbell and
 * its send ring. */
int v4v__sock_ring_up(struct sock *s, v4v_port_t port, uint16_t partner)
{
	int e;
	if (s->rx)
		return -EINVAL;
	/* A stream's ring for one peer domain: a closed connection's, if
	 * this process kept one (pool.c), costs no round trip at all. */
	if (port == 0 && partner != V4V_DOMID_ANY && s->type == V4V_SOCK_STREAM &&
	    v4v__pool_get(s, partner) == 1)
		return 0;
	size_t txsize = V4V_RING_HDR_SIZE + (size_t)V4V_SOCK_TX_LEN;
	/* Committed, as the ring is (rx.c): no page fault on the data path. */
	int txfd = v4v_memfd_committed("v4v-send", txsize);
	if (txfd < 0)
		return txfd;
	s->tx = mmap(NULL, txsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, txfd, 0);
	if (s->tx == MAP_FAILED) {
		e = -errno;
		s->tx = NULL;
		close(txfd);
		return e;
	}
	s->txlen = V4V_SOCK_TX_LEN;
	s->txtail = 0;
	v4v_port_t want = port;
	e = port != 0 ? ring_register(s, port, partner, txfd)
		      : ring_register_any(s, &port, partner, txfd);
	if (e == -ENOSPC) {
		/* Over quota: the pooled rings count, give them back first. */
		v4v__pool_flush(s->d, false);
		port = want;
		e = port != 0 ? ring_register(s, port, partner, txfd)
			      : ring_register_any(s, &port, partner, txfd);
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
	s->ephemeral = want == 0;
	return 0;
}

int v4v_bind(int fd, const struct v4v_addr *addr)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	if (s->rx)
		return v4v__fail(EINVAL);
	if (addr->domain_id != V4V_DOMID_ANY && addr->domain_id > V4V_DOMID_MAX)
		return v4v__fail(EINVAL);
	int e = v4v__sock_ring_up(s, addr->aport, addr->domain_id);
	if (e)
		return v4v__fail(-e);
	s->state = S_BOUND;
	return 0;
}

/* ---- closing and names ------------------------------------------------ */

/* Take fd's socket out of the table: NULL, not a socket. */
static struct sock *table_take(int fd)
{
	pthread_mutex_lock(&table_lock);
	struct sock *s = fd >= 0 && fd < table_cap ? table[fd] : NULL;
	if (s)
		table[fd] = NULL;
	pthread_mutex_unlock(&table_lock);
	return s;
}

int v4v_sock_close(int fd)
{
	struct sock *s = table_take(fd);
	if (!s)
		return v4v__fail(EBADF);
	/* Best effort, as close(2) on a socket: the FIN and what is queued
	 * go if they can within LINGER_MS together, even when the peer never
	 * reads; the socket goes either way. */
	uint64_t deadline = v4v__deadline(LINGER_MS);
	(void)v4v__stream_fin(s, false, LINGER_MS, true);
	/* A cleanly closed stream's ring is kept for the next connection,
	 * and v4vd moves what is queued meanwhile (pool.c): no linger. */
	bool kept = s->type == V4V_SOCK_STREAM && v4v__pool_put(s);
	if (!kept)
		v4v__tx_linger(s, v4v__ms_left(deadline));
	if (s->type == V4V_SOCK_STREAM)
		v4v__pool_sweep(s->d); /* does an old peer still write? */
	if (s->state == S_LISTEN)
		v4v__listen_close(s); /* stream.c: the spares lent to it */
	sock_free(s);
	close(fd);
	return 0;
}

/*
 * The abortive close: RST instead of FIN, after what is already queued
 * (order, as for the FIN), so the peer reads that data and then
 * ECONNRESET, never end of stream.  The ring is not pooled: a reset
 * connection's ring is not a clean one (pool.c), and what is unread in it
 * goes with it.  Any other socket is closed as by v4v_sock_close.
 */
int v4v_sock_abort(int fd)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	if (!v4v__is_conn(s) || s->state != S_CONNECTED)
		return v4v_sock_close(fd);
	s = table_take(fd);
	if (!s)
		return v4v__fail(EBADF);
	uint64_t deadline = v4v__deadline(LINGER_MS);
	(void)v4v__stream_rst(s, LINGER_MS);
	v4v__tx_linger(s, v4v__ms_left(deadline));
	sock_free(s);
	close(fd);
	return 0;
}

int v4v_getsockname(int fd, struct v4v_addr *addr)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	*addr = (struct v4v_addr){.aport = s->port, .domain_id = v4v_domid(s->d)};
	return 0;
}

int v4v_getpeername(int fd, struct v4v_addr *addr)
{
	struct sock *s = v4v__sock_lookup(fd);
	if (!s)
		return v4v__fail(EBADF);
	if (!s->has_peer || (v4v__is_conn(s) && s->state != S_CONNECTED))
		return v4v__fail(ENOTCONN);
	*addr = s->peer;
	return 0;
}
