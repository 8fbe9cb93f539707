/* SPDX-License-Identifier: MIT */
/* Attaching a process to its domain, and the hypercall round trip. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/barrier.h"
#include "common/util.h"
#include "lib.h"

static void detach(struct v4v_domain *d)
{
	if (d->staging)
		munmap(d->staging, V4V_STAGING_MEM);
	if (d->chan >= 0)
		close(d->chan);
	if (d->virq >= 0)
		close(d->virq);
	if (d->poll_fd >= 0)
		close(d->poll_fd);
	d->staging = NULL;
	d->area = NULL;
	d->chan = d->virq = d->poll_fd = -1;
}

/* Give v4vd a private channel and a staging area; get our VIRQ back. */
static int attach(struct v4v_domain *d)
{
	int sv[2], err;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	int mfd = v4v_memfd_sealed("v4v-staging", V4V_STAGING_MEM);
	if (mfd < 0) {
		close(sv[0]);
		close(sv[1]);
		return mfd;
	}
	d->chan = sv[0];
	d->staging = mmap(NULL, V4V_STAGING_MEM, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (d->staging == MAP_FAILED) {
		err = -errno;
		d->staging = NULL;
		goto fail;
	}
	d->area = (struct v4v_call_area *)(d->staging + V4V_STAGING_SIZE);

	struct v4v_req_attach req = {.h = {V4V_OP_ATTACH, 0}, .version = V4V_PROTO_VERSION};
	int fds[2] = {sv[1], mfd};
	ssize_t n = v4v_send_fds(d->domain_fd, &req, sizeof(req), fds, 2, 0);
	close(sv[1]);
	close(mfd);
	mfd = -1;
	if (n < 0) {
		err = n == -ENOTSOCK || n == -EBADF ? -ENOTCONN : -EPIPE;
		goto fail;
	}

	struct v4v_attach_reply ar;
	unsigned nfds;
	n = v4v_recv_fds(d->chan, &ar, sizeof(ar), &d->virq, 1, &nfds, 0);
	if (n <= 0) {
		/* Refused before a channel existed: the reason is on the domain fd. */
		struct v4v_reply r;
		if (recv(d->domain_fd, &r, sizeof(r), MSG_DONTWAIT) == sizeof(r) && r.ret < 0)
			err = (int)r.ret;
		else
			err = -EPIPE;
		goto fail;
	}
	if (n != sizeof(ar) || ar.r.ret < 0 || nfds != 1) {
		err = n == sizeof(struct v4v_reply) || n == sizeof(ar) ? (int)ar.r.ret : -EPROTO;
		if (nfds == 1)
			close(d->virq);
		d->virq = -1;
		if (err >= 0)
			err = -EPROTO;
		goto fail;
	}
	d->domid = ar.domid;
	memcpy(d->name, ar.name, sizeof(d->name));
	d->name[sizeof(d->name) - 1] = '\0';
	d->pid = v4v__pid();

	/* The VIRQ fd users poll: our eventfd, plus the channel hanging up. */
	d->poll_fd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN};
	struct epoll_event hup = {.events = EPOLLRDHUP};
	if (d->poll_fd < 0 || epoll_ctl(d->poll_fd, EPOLL_CTL_ADD, d->virq, &ev) < 0 ||
	    epoll_ctl(d->poll_fd, EPOLL_CTL_ADD, d->chan, &hup) < 0) {
		err = -errno;
		goto fail;
	}
	return 0;
fail:
	if (mfd >= 0)
		close(mfd);
	detach(d);
	return err;
}

int v4v_open_fd(int domain_fd, struct v4v_domain **out)
{
	struct v4v_domain *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	d->domain_fd = domain_fd;
	d->chan = d->virq = d->poll_fd = -1;
	int e = attach(d);
	if (e) {
		pthread_mutex_destroy(&d->lock);
		free(d);
		return e;
	}
	*out = d;
	return 0;
}

int v4v_open(struct v4v_domain **out)
{
	uint64_t fd;
	const char *env = getenv("V4V_DOMAIN_FD");
	if (!env || !v4v_parse_u64(env, 0, 65535, &fd) || fcntl((int)fd, F_GETFD) < 0)
		return -ENOTCONN;
	return v4v_open_fd((int)fd, out);
}

void v4v_close(struct v4v_domain *d)
{
	if (!d)
		return;
	v4v__pool_flush(d, true); /* pool.c: its rings name d */
	v4v__sock_blanks_drop();  /* socket.c: a cache, the fds go back */
	detach(d);
	if (d->own_domain_fd)
		close(d->domain_fd);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

uint16_t v4v_domid(const struct v4v_domain *d)
{
	return d->domid;
}
const char *v4v_domain_name(const struct v4v_domain *d)
{
	return d->name;
}
int v4v_virq_fd(const struct v4v_domain *d)
{
	return d->poll_fd;
}

int v4v_virq_ack(struct v4v_domain *d)
{
	uint64_t v;
	struct epoll_event ev;
	/* Read the eventfd (non-blocking: v4vd made it so). */
	if (read(d->virq, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	/* Both fds are level-triggered in poll_fd: only a hang-up is left. */
	if (epoll_wait(d->poll_fd, &ev, 1, 0) == 1 && (ev.events & (EPOLLRDHUP | EPOLLHUP))) {
		d->dead = true;
		return -EPIPE;
	}
	return 0;
}

/*
 * Our pid, without a system call each time (every call and every look at
 * the pool asks, to notice a fork): forgotten in a fork child, through
 * pthread_atfork, and asked again.
 */
static pid_t cached_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_forget(void)
{
	__atomic_store_n(&cached_pid, 0, __ATOMIC_RELAXED);
}

static void pid_init(void)
{
	(void)pthread_atfork(NULL, NULL, pid_forget);
}

pid_t v4v__pid(void)
{
	pthread_once(&pid_once, pid_init);
	pid_t p = __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);
	if (!p) {
		p = getpid();
		__atomic_store_n(&cached_pid, p, __ATOMIC_RELAXED);
	}
	return p;
}

int v4v__enter(struct v4v_domain *d)
{
	pthread_mutex_lock(&d->lock);
	if (d->dead) {
		pthread_mutex_unlock(&d->lock);
		return -EPIPE;
	}
	if (d->pid != v4v__pid()) {
		/* A fork child: the channel is the parent's; get our own.
		 * Events left over were the parent's. */
		d->ev_n = 0;
		detach(d);
		int e = attach(d);
		if (e) {
			d->dead = true;
			pthread_mutex_unlock(&d->lock);
			return e;
		}
	}
	return 0;
}

void v4v__leave(struct v4v_domain *d)
{
	pthread_mutex_unlock(&d->lock);
}

long v4v__call(struct v4v_domain *d, void *req, size_t n, int fd, void *reply, size_t cap,
	       size_t *got)
{
	return v4v__call_fds(d, req, n, &fd, fd >= 0 ? 1 : 0, reply, cap, got);
}

/* v4vd's end of the channel hung up: it is gone. */
static bool chan_gone(struct v4v_domain *d)
{
	struct pollfd p = {.fd = d->chan, .events = POLLRDHUP};
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Wait for done == seq: spin up to spin_ns (v4vd, polling, answers within
 * that when it runs on another CPU: not when it polls from ours, the
 * area's cpu word), then sleep on the futex, announced first
 * (wire/proto.h); we clear waiting ourselves once done, v4vd only reads
 * it, so a late read of it by v4vd can cost a spurious wake-up, never a
 * lost one.  Asleep, look every CALL_CHECK_MS whether v4vd died, however
 * the futex returned (a signal every few ms must not hide it).
 */
static int area_wait(struct v4v_domain *d, uint32_t seq, uint64_t spin_ns)
{
	struct v4v_call_area *a = d->area;
	uint64_t t0 = now_ns(), check = 0;
	while (v4v_load_acquire(&a->done) != seq) {
		if (now_ns() - t0 >= spin_ns)
			goto sleep;
		/* v4vd polls from our CPU: it answers only once we sleep. */
		uint32_t cpu = v4v_load_relaxed(&a->cpu);
		if (cpu && cpu - 1 == (uint32_t)sched_getcpu())
			goto sleep;
	}
	return 0;
sleep:
	for (;;) {
		v4v_announce(&a->waiting);
		uint32_t cur = v4v_load_acquire(&a->done);
		if (cur == seq)
			break;
		uint64_t now = now_ns();
		if (!check)
			check = now + CALL_CHECK_MS * 1000000ull;
		else if (now >= check) {
			if (chan_gone(d))
				return -EPIPE;
			check = now + CALL_CHECK_MS * 1000000ull;
		}
		struct timespec to = {0, (long)(check - now)};
		/* Not FUTEX_PRIVATE: v4vd wakes us through its own mapping. */
		syscall(SYS_futex, &a->done, FUTEX_WAIT, cur, &to, NULL, 0);
	}
	v4v_store_relaxed(&a->waiting, 0);
	return 0;
}

/* A call through the call area (wire/proto.h): no system call while v4vd
 * polls the area, a kick packet when it has parked it. */
static long area_call(struct v4v_domain *d, const void *req, size_t n, void *reply, size_t cap,
		      size_t *got)
{
	struct v4v_call_area *a = d->area;
	uint32_t seq = ((const struct v4v_req_hdr *)req)->seq;
	memcpy(a->req, req, n);
	v4v_store_relaxed(&a->req_len, (uint32_t)n);
	v4v_store_release(&a->sub, seq);
	v4v_fence(); /* sub before polled: the other half of v4vd's park */
	uint64_t spin = CALL_SPIN_NS;
	if (!v4v_load_relaxed(&a->polled)) {
		/* Parked: v4vd sleeps in epoll, and waking it takes longer
		 * than a spin is worth. */
		struct v4v_req_hdr kick = {.op = V4V_OP_CALL_KICK, .seq = seq};
		if (v4v_send_fds(d->chan, &kick, sizeof(kick), NULL, 0, 0) != sizeof(kick))
			goto dead;
		spin = 0;
	}
	if (area_wait(d, seq, spin))
		goto dead;
	uint32_t len = v4v_load_relaxed(&a->reply_len);
	struct v4v_reply *rep = reply;
	if (len < sizeof(*rep) || len > cap || len > sizeof(a->reply))
		goto dead;
	memcpy(reply, a->reply, len);
	if (rep->h.seq != seq)
		goto dead;
	if (got)
		*got = len;
	return (long)rep->ret;
dead:
	d->dead = true;
	return -EPIPE;
}

long v4v__call_fds(struct v4v_domain *d, void *req, size_t n, const int *fds, unsigned nfds,
		   void *reply, size_t cap, size_t *got)
{
	struct v4v_req_hdr *h = req;
	if (++d->seq == 0) /* a fresh call area's done and v4vd's last seq are 0 */
		d->seq = 1;
	h->seq = d->seq;
	if (!nfds && n <= V4V_REQ_MAX)
		return area_call(d, req, n, reply, cap, got);
	ssize_t r = v4v_send_fds(d->chan, req, n, fds, nfds, 0);
	if (r < 0) {
		d->dead = true;
		return -EPIPE;
	}
	unsigned nrecv;
	r = v4v_recv_fds(d->chan, reply, cap, NULL, 0, &nrecv, 0);
	struct v4v_reply *rep = reply;
	if (r < (ssize_t)sizeof(*rep) || rep->h.seq != h->seq) {
		d->dead = true;
		return -EPIPE;
	}
	if (got)
		*got = (size_t)r;
	return (long)rep->ret;
}
