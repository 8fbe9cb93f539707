/* SPDX-License-Identifier: MIT */
/*
 * The baselines v4v is measured against: Unix stream and seqpacket
 * sockets, a pair of pipes, TCP over loopback, and a shared-memory ring
 * (the one-copy limit).  Plain system calls, nothing of v4v.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"
#include "common/util.h"
#include "tool.h"

/* ---- file-descriptor transports: Unix sockets, pipe, TCP ---------------- */

int fd_open(struct end *e)
{
	e->rfd = e->wfd = e->p->fd[e->side][0];
	if (e->p->fd[e->side][1] >= 0)
		e->wfd = e->p->fd[e->side][1]; /* pipe: one each way */
	return 0;
}

int stream_send(struct end *e, const void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = write(e->wfd, (const char *)buf + off, len - off);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			off += (size_t)n;
	}
	return 0;
}

/* Streams keep no boundaries: read until the fixed-size message is whole. */
int stream_recv(struct end *e, void *buf, size_t len, const uint8_t **data)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = read(e->rfd, (char *)buf + off, len - off);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			off += (size_t)n;
	}
	*data = buf;
	return 0;
}

int dgram_send(struct end *e, const void *buf, size_t len)
{
	ssize_t n;
	while ((n = send(e->wfd, buf, len, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EPROTO;
}

int dgram_recv(struct end *e, void *buf, size_t len, const uint8_t **data)
{
	ssize_t n;
	while ((n = recv(e->rfd, buf, len, 0)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	*data = buf;
	return (size_t)n == len ? 0 : -EPROTO;
}

static unsigned listener_seq;

/* The connect workload: a listener owned by B, address kept for A. */
static int listener(struct pair *p, int family, int type)
{
	int s = socket(family, type | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	p->type = type;
	if (family == AF_UNIX) {
		/* Abstract names: nothing to clean up if we are killed. */
		struct sockaddr_un *un = (struct sockaddr_un *)&p->sa;
		un->sun_family = AF_UNIX;
		int n = snprintf(un->sun_path + 1, sizeof(un->sun_path) - 1, "v4v-bench.%d.%u",
				 (int)getpid(), listener_seq++);
		p->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&p->sa;
		int one = 1;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		p->salen = sizeof(*in);
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	}
	if (bind(s, (struct sockaddr *)&p->sa, p->salen) < 0 ||
	    getsockname(s, (struct sockaddr *)&p->sa, &p->salen) < 0 || listen(s, SOMAXCONN) < 0) {
		int e = -errno;
		close(s);
		return e;
	}
	p->fd[1][0] = s;
	return 0;
}

static int unix_setup(struct pair *p, enum workload w, int type)
{
	int sv[2];
	if (w == W_CONNECT)
		return listener(p, AF_UNIX, type);
	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	p->fd[0][0] = sv[0];
	p->fd[1][0] = sv[1];
	return 0;
}

int unix_stream_setup(struct pair *p, enum workload w)
{
	return unix_setup(p, w, SOCK_STREAM);
}

int unix_seqpacket_setup(struct pair *p, enum workload w)
{
	return unix_setup(p, w, SOCK_SEQPACKET);
}

int pipe_setup(struct pair *p, enum workload w)
{
	int ab[2], ba[2];
	if (pipe2(ab, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(ba, O_CLOEXEC) < 0) {
		close(ab[0]);
		close(ab[1]);
		return -errno;
	}
	p->fd[0][0] = ba[0];
	p->fd[0][1] = ab[1];
	p->fd[1][0] = ab[0];
	p->fd[1][1] = ba[1];
	return 0;
}

static void tcp_nodelay(int s)
{
	/* Messages go out as they are written, as an IPC user expects. */
	int one = 1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int tcp_setup(struct pair *p, enum workload w)
{
	int e = listener(p, AF_INET, SOCK_STREAM);
	if (e || w == W_CONNECT)
		return e;
	/* A connected pair over loopback: connect completes from the backlog. */
	int l = p->fd[1][0], a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), b = -1;
	if (a >= 0 && connect(a, (struct sockaddr *)&p->sa, p->salen) == 0)
		b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	e = b < 0 ? -errno : 0;
	close(l);
	if (e) {
		if (a >= 0)
			close(a);
		p->fd[1][0] = -1;
		return e;
	}
	tcp_nodelay(a);
	tcp_nodelay(b);
	p->fd[0][0] = a;
	p->fd[1][0] = b;
	return 0;
}

int sock_listen(struct end *e)
{
	e->lfd = e->p->fd[1][0];
	return 0;
}

int sock_connect(struct end *e)
{
	int s = socket(e->p->sa.ss_family, e->p->type | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&e->p->sa, e->p->salen) < 0) {
		int err = -errno;
		close(s);
		return err;
	}
	return s;
}

int sock_accept(struct end *e)
{
	int s = accept4(e->lfd, NULL, NULL, SOCK_CLOEXEC);
	return s < 0 ? -errno : s;
}

void sock_close(struct end *e, int fd)
{
	close(fd);
}

/* ---- shm: the one-copy limit -------------------------------------------- *
 *
 * A single-producer single-consumer ring in a MAP_SHARED mapping: the
 * sender copies each message in (the one copy), the receiver reads it in
 * place.  Nobody polls: a side that finds the ring empty (or full) says so
 * in its sleep word, re-checks, and only then sleeps on a futex; the other
 * side wakes it only when that word is set.  Each line is written by one
 * side only, so the two never fight over a cache line they both write.
 */
struct shm_ring {
	_Atomic uint64_t head;	     /* bytes produced: producer writes */
	_Atomic uint32_t prod_sleep; /* producer waits for space */
	uint8_t pad0[52];
	_Atomic uint64_t tail;	     /* bytes consumed: consumer writes */
	_Atomic uint32_t cons_sleep; /* consumer waits for data */
	uint8_t pad1[52];
	uint8_t data[RING_LEN];
};

struct shm_pair {
	struct shm_ring ring[2]; /* [0]: A to B, [1]: B to A */
};

#define SHM_HDR	 8u
#define SHM_WRAP 0xFFFFFFFFu /* "the rest of the ring is padding" */

static void futex_wait(_Atomic uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, w, FUTEX_WAIT, val, NULL, NULL, 0);
}

/* Wake the other side if it announced it sleeps.  The fence orders our
 * pointer store before reading its announcement; it orders its announcement
 * before re-reading our pointer.  So one of us sees the other: no lost
 * wake-up. */
static void shm_kick(_Atomic uint32_t *w)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(w, memory_order_relaxed)) {
		atomic_store_explicit(w, 0, memory_order_relaxed);
		syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
	}
}

/* Sleep on w until *ptr moves from seen (announce, re-check, sleep). */
static void shm_sleep(_Atomic uint32_t *w, _Atomic uint64_t *ptr, uint64_t seen)
{
	atomic_store_explicit(w, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(ptr, memory_order_relaxed) == seen)
		futex_wait(w, 1);
	atomic_store_explicit(w, 0, memory_order_relaxed);
}

int shm_setup(struct pair *p, enum workload w)
{
	p->shm =
	    mmap(NULL, sizeof(*p->shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p->shm == MAP_FAILED) {
		p->shm = NULL;
		return -errno;
	}
	return 0;
}

int shm_open_end(struct end *e)
{
	e->txr = &e->p->shm->ring[e->side];
	e->rxr = &e->p->shm->ring[!e->side];
	e->rx_next = 0;
	return 0;
}

int shm_send(struct end *e, const void *buf, size_t len)
{
	struct shm_ring *r = e->txr;
	uint64_t fp = SHM_HDR + ((len + 7) & ~(uint64_t)7);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t off = head % RING_LEN;
	/* A message never wraps, so the receiver can read it in place. */
	uint64_t skip = RING_LEN - off < fp ? RING_LEN - off : 0;
	for (;;) {
		uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head + skip + fp - tail <= RING_LEN)
			break;
		shm_sleep(&r->prod_sleep, &r->tail, tail);
	}
	if (skip) {
		memcpy(r->data + off, &(uint32_t){SHM_WRAP}, 4);
		head += skip;
		off = 0;
	}
	memcpy(r->data + off, &(uint32_t){(uint32_t)len}, 4);
	memcpy(r->data + off + SHM_HDR, buf, len);
	atomic_store_explicit(&r->head, head + fp, memory_order_release);
	shm_kick(&r->cons_sleep);
	return 0;
}

int shm_recv(struct end *e, void *buf, size_t len, const uint8_t **data)
{
	struct shm_ring *r = e->rxr;
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (e->rx_next != tail) {
		/* Release the message we handed out last time. */
		tail = e->rx_next;
		atomic_store_explicit(&r->tail, tail, memory_order_release);
		shm_kick(&r->prod_sleep);
	}
	uint64_t head;
	while ((head = atomic_load_explicit(&r->head, memory_order_acquire)) == tail)
		shm_sleep(&r->cons_sleep, &r->head, tail);
	uint64_t off = tail % RING_LEN;
	uint32_t n;
	memcpy(&n, r->data + off, 4);
	if (n == SHM_WRAP) {
		tail += RING_LEN - off;
		off = 0;
		memcpy(&n, r->data, 4);
	}
	if (n != len)
		return -EPROTO;
	*data = r->data + off + SHM_HDR;
	e->rx_next = tail + SHM_HDR + ((n + 7) & ~(uint64_t)7);
	return 0;
}

void shm_release(struct shm_pair *shm)
{
	munmap(shm, sizeof(*shm));
}
