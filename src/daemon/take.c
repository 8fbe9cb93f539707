/* SPDX-License-Identifier: MIT */
/*
 * Taking an fd from a domain, and giving back what the core lets go of.
 *
 * Every socket a domain hands over (a channel at attach, a doorbell at
 * register) is taken by v4vd_take_socket(), every memfd by v4vd_take_memfd().
 * Both go through one identity table, keyed by (st_dev, st_ino), of
 * everything v4vd holds from domains: the memfds it has mapped (rings, send
 * rings, staging areas) and the sockets it has taken.  What is in the table
 * cannot be handed over again for anything else: one memory never backs two
 * rings (v4vd's writes to one would land in the other), and a socket v4vd
 * holds never becomes a second object (v4vd would read its own packets, or
 * keep a domain alive through a cycle of its own fds).
 *
 * The core's ops.unmap only queues here (v4vd_on_unmap); v4vd_reap() does
 * the munmaps, the doorbells' burials and their deferred epoll and socket
 * I/O after the core call returns, so the core never sees the shell change
 * under it.
 */
#define _GNU_SOURCE
#include "v4vd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

/* One thing v4vd holds from a domain: a mapping (at addr) or a socket
 * (addr: its fdent). */
struct held {
	dev_t dev;
	ino_t ino;
	void *addr;
	size_t size; /* mapped bytes; 0 for a socket */
	struct v4vd_use use;
	bool gone; /* on the unmap queue */
	struct held *id_next, *addr_next, *gone_next;
};

static unsigned id_bucket(dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)ino * 0x9E3779B97F4A7C15u) ^ (uint64_t)dev;
	return (unsigned)(h >> 40) % HELD_BUCKETS;
}

static unsigned addr_bucket(const void *addr)
{
	uint64_t h = (uint64_t)(uintptr_t)addr * 0x9E3779B97F4A7C15u;
	return (unsigned)(h >> 40) % HELD_BUCKETS;
}

static struct held *held_by_id(struct v4vd *s, const struct stat *st)
{
	for (struct held *h = s->held_id[id_bucket(st->st_dev, st->st_ino)]; h; h = h->id_next)
		if (h->dev == st->st_dev && h->ino == st->st_ino)
			return h;
	return NULL;
}

static struct held *held_by_addr(struct v4vd *s, const void *addr)
{
	for (struct held *h = s->held_addr[addr_bucket(addr)]; h; h = h->addr_next)
		if (h->addr == addr)
			return h;
	return NULL;
}

/*
 * Whether what st names may be taken for use: not when v4vd holds it
 * already, except a ring's own memory (or send ring) handed again when the
 * same ring is re-registered; the new mapping then replaces the old one.
 */
static bool may_take(struct v4vd *s, const struct stat *st, const struct v4vd_use *use)
{
	const struct held *h = held_by_id(s, st);
	if (!h)
		return true;
	return (use->kind == USE_RING || use->kind == USE_TX) && h->use.kind == use->kind &&
	       h->use.domid == use->domid && h->use.aport == use->aport &&
	       h->use.partner == use->partner;
}

static int held_add(struct v4vd *s, const struct stat *st, void *addr, size_t size,
		    const struct v4vd_use *use)
{
	struct held *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	*h = (struct held){.dev = st->st_dev, .ino = st->st_ino, .addr = addr, .size = size};
	h->use = *use;
	unsigned b = id_bucket(st->st_dev, st->st_ino);
	h->id_next = s->held_id[b];
	s->held_id[b] = h;
	b = addr_bucket(addr);
	h->addr_next = s->held_addr[b];
	s->held_addr[b] = h;
	return 0;
}

static void held_remove(struct v4vd *s, struct held *h)
{
	struct held **pp = &s->held_id[id_bucket(h->dev, h->ino)];
	while (*pp != h)
		pp = &(*pp)->id_next;
	*pp = h->id_next;
	for (pp = &s->held_addr[addr_bucket(h->addr)]; *pp != h; pp = &(*pp)->addr_next)
		;
	*pp = h->addr_next;
	free(h);
}

/*
 * Whether to map a memfd's pages in at once (MAP_POPULATE): only when the
 * domain has allocated them already (libv4v commits a socket's rings), and
 * at most TAKE_POPULATE_MAX bytes.  Populating an allocated shmem page only
 * maps it, so the domain's first messages do not fault in v4vd.  A memfd
 * with holes would make v4vd allocate (and zero) memory for the domain in
 * its own time: not done, those pages wait for v4vd's first write, as
 * before.  st_blocks counts pages anywhere in the file and the domain may
 * punch holes after fstat, so the check alone does not bound the work; the
 * size does, and v4vd's writes to the ring would allocate the same pages.
 */
static bool take_populate(const struct stat *st, size_t need)
{
	return need <= TAKE_POPULATE_MAX && (uint64_t)st->st_blocks * 512 >= need;
}

/*
 * Map a memfd a domain gave us for use: sealed against shrinking, big
 * enough, and not memory v4vd has mapped already (-EBUSY).
 */
int v4vd_take_memfd(struct v4vd *s, int fd, size_t need, const struct v4vd_use *use, void **out)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return -EBADF; /* not a memfd */
	if (!(seals & F_SEAL_SHRINK))
		return -EPERM;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size < need)
		return -EFAULT;
	if (!may_take(s, &st, use))
		return -EBUSY;
	int populate = take_populate(&st, need) ? MAP_POPULATE : 0;
	void *p = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_SHARED | populate, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	int e = held_add(s, &st, p, need, use);
	if (e) {
		munmap(p, need);
		return e;
	}
	s->mapped_bytes += need;
	*out = p;
	return 0;
}

/* Unmap what v4vd_take_memfd mapped at p, and forget it. */
void v4vd_memfd_release(struct v4vd *s, void *p)
{
	struct held *h = held_by_addr(s, p);
	if (!h)
		return;
	munmap(h->addr, h->size);
	s->mapped_bytes -= h->size;
	held_remove(s, h);
}

/* v4vd's own ends of sockets get a kernel-chosen abstract name (autobind):
 * a socket whose peer is named may be the other end of one of them. */
int v4vd_name_own_end(int fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	return bind(fd, (struct sockaddr *)&sa, sizeof(sa_family_t)) < 0 ? -errno : 0;
}

/*
 * Take a socket a domain hands over as a channel or a doorbell: an AF_UNIX
 * SOCK_SEQPACKET whose peer is unnamed (so not the other end of anything
 * v4vd holds, all of which are named), and not one v4vd holds already.
 * v4vd names it and holds it as e until
 * v4vd_socket_release().  -ENOTSOCK: not a seqpacket socket; -EINVAL: one
 * of v4vd's own, or the other end of one.
 */
int v4vd_take_socket(struct v4vd *s, int fd, struct fdent *e)
{
	struct stat st;
	int dom = 0, err = v4vd_is_seqpacket(fd);
	socklen_t dl = sizeof(dom);
	if (err)
		return err;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dl) < 0 || dom != AF_UNIX)
		return -ENOTSOCK;
	if (fstat(fd, &st) < 0)
		return -errno;
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0)
		return -errno;
	if (len > sizeof(sa_family_t) || held_by_id(s, &st))
		return -EINVAL;
	/* Autobind keeps a name the socket has (taken and let go of before, or
	 * named by the domain): its peer is refused either way. */
	if ((err = v4vd_name_own_end(fd)) < 0)
		return err;
	return held_add(s, &st, e, 0, &(struct v4vd_use){.kind = USE_SOCKET});
}

/* Forget a socket v4vd_take_socket() took as e (none: nothing). */
void v4vd_socket_release(struct v4vd *s, struct fdent *e)
{
	struct held *h = held_by_addr(s, e);
	if (h)
		held_remove(s, h);
}

/* hv_ops.unmap: queue the mapping and the doorbell; v4vd_reap() lets go. */
void v4vd_on_unmap(void *ctx, void *mem, uint32_t len, void *cookie)
{
	struct v4vd *s = ctx;
	struct held *h = held_by_addr(s, mem);
	(void)len;
	if (h && !h->gone) {
		h->gone = true;
		h->gone_next = s->unmaps;
		s->unmaps = h;
	}
	if (cookie)
		v4vd_bell_dropped(s, cookie);
}

/* The work core callbacks queued: run after every core call returns. */
void v4vd_reap(struct v4vd *s)
{
	while (s->unmaps) {
		struct held *h = s->unmaps;
		s->unmaps = h->gone_next;
		munmap(h->addr, h->size);
		s->mapped_bytes -= h->size;
		held_remove(s, h);
	}
	v4vd_bell_reap(s);
}
