/* SPDX-License-Identifier: MIT */
/*
 * v4vd: the thin I/O shell around the hypervisor core.
 *
 * One thread, one epoll set.  Each readable channel gets its pending
 * requests served (bounded per wake-up for fairness); VIRQ signals raised
 * by the core are collected on a kick list and written once per batch.
 */
#define _GNU_SOURCE
#include "v4vd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"
#include "../wire/proto.h"

#define BATCH	  64	 /* requests served per channel per wake-up */
#define TX_BUDGET 256	 /* messages moved per send ring per round */
#define SPIN_NS	  200000 /* keep polling send rings this long after the last move */

static bool use_syslog;

void logmsg(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (use_syslog) {
		vsyslog(prio, fmt, ap);
	} else {
		fprintf(stderr, "v4vd: ");
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

/*
 * Objects die in the middle of an epoll batch (a control request destroys a
 * domain whose channels have events pending later in the same batch), so
 * they are closed at once but freed only after the batch.
 */
void v4vd_bury(struct v4vd *s, struct fdent *e)
{
	close(e->fd);
	e->fd = -1;
	e->kind = FD_DEAD;
	e->dead_next = s->dead;
	s->dead = e;
}

static void free_dead(struct v4vd *s)
{
	while (s->dead) {
		struct fdent *e = s->dead;
		s->dead = e->dead_next;
		free(e);
	}
}

static int ep_add(struct v4vd *s, struct fdent *e)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = e};
	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, e->fd, &ev) < 0 ? -errno : 0;
}

/* ---- core callbacks -------------------------------------------------- */

static void on_signal(void *ctx, void *cookie)
{
	struct v4vd *s = ctx;
	struct dchan *ch = cookie;
	if (ch->kick)
		return;
	ch->kick = true;
	ch->kick_next = s->kicks;
	s->kicks = ch;
}

static void bell_kick(struct v4vd *s, struct dbell *b)
{
	if (b->kicked)
		return;
	b->kicked = true;
	b->kick_next = s->bell_kicks;
	s->bell_kicks = b;
}

static void on_ring_signal(void *ctx, void *cookie, unsigned what)
{
	struct dbell *b = cookie;
	b->pending |= what;
	bell_kick(ctx, b);
}

static void bell_arm(struct v4vd *s, struct dbell *b, bool on)
{
	struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.ptr = b};
	if (b->armed != on && epoll_ctl(s->epfd, EPOLL_CTL_MOD, b->e.fd, &ev) == 0)
		b->armed = on;
}

/* Read and drop the owner's blocker packets: its end polls writable again. */
static void bell_drain(struct dbell *b)
{
	char junk[4096];
	/* Bounded: a domain flooding its doorbell gets one batch per round,
	 * like a channel (level-triggered epoll brings us back for the rest). */
	for (int i = 0; i < BATCH && recv(b->e.fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
		;
}

/* A send ring with work: poll it until it has been idle for SPIN_NS. */
static void bell_hot(struct v4vd *s, struct dbell *b)
{
	if (b->hot || !b->has_tx)
		return;
	b->hot = true;
	b->hot_next = s->hot;
	s->hot = b;
}

static void on_tx_ready(void *ctx, void *cookie)
{
	struct dbell *b = cookie;
	bell_hot(ctx, b);
	/* It was disarmed while blocked: listen for kicks (and blockers) again. */
	bell_arm(ctx, b, true);
}

static void on_ring_blocked(void *ctx, void *cookie)
{
	((struct dbell *)cookie)->waiting = true;
}

static void on_ring_space(void *ctx, void *cookie)
{
	struct dbell *b = cookie;
	b->waiting = false;
	bell_drain(b);
	bell_arm(ctx, b, true);
}

static void bell_forget(struct v4vd *s, struct dbell *b)
{
	for (struct dbell **pp = &s->bell_kicks; *pp; pp = &(*pp)->kick_next)
		if (*pp == b) {
			*pp = b->kick_next;
			break;
		}
	for (struct dbell **pp = &s->hot; *pp; pp = &(*pp)->hot_next)
		if (*pp == b) {
			*pp = b->hot_next;
			break;
		}
}

static void on_unmap(void *ctx, void *mem, uint32_t len, void *cookie)
{
	struct v4vd *s = ctx;
	munmap(mem, V4V_RING_HDR_SIZE + (size_t)len);
	s->mapped_bytes -= V4V_RING_HDR_SIZE + (size_t)len;
	if (cookie) {
		bell_forget(s, cookie);
		v4vd_bury(s, cookie);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Log a firewall rejection, whichever path the send took.  At most
 * LOG_REJECTS lines a second: a domain hammering a closed port must not
 * flood the log; the rest are counted and reported with the next line.
 */
#define LOG_REJECTS 10
static void on_rejected(void *ctx, const struct v4v_addr *src, const struct v4v_addr *dst)
{
	struct v4vd *s = ctx;
	uint64_t now = now_ns() / 1000000000u;
	if (now != s->reject_window) {
		s->reject_window = now;
		s->rejects_logged = 0;
	}
	if (s->rejects_logged == LOG_REJECTS) {
		s->rejects_suppressed++;
		return;
	}
	s->rejects_logged++;
	if (s->rejects_suppressed)
		logmsg(LOG_NOTICE, "firewall rejected %u:%u -> %u:%u (and %u more before)",
		       src->domain_id, src->aport, dst->domain_id, dst->aport,
		       s->rejects_suppressed);
	else
		logmsg(LOG_NOTICE, "firewall rejected %u:%u -> %u:%u", src->domain_id, src->aport,
		       dst->domain_id, dst->aport);
	s->rejects_suppressed = 0;
}

/* The owner's end of the doorbell went away: so does its ring. */
static void handle_bell(struct v4vd *s, struct dbell *b, uint32_t events)
{
	if (events & (EPOLLHUP | EPOLLERR)) {
		hv_ring_drop(s->hv, b->ring); /* buries b */
		return;
	}
	/* Anything from the owner is a kick: move its send ring first, and
	 * poll it for a while: the next message will likely come soon. */
	if (b->has_tx) {
		hv_tx_pump(s->hv, b->ring, TX_BUDGET);
		bell_hot(s, b);
		s->last_move = now_ns();
	}
	if (b->waiting || (b->has_tx && hv_tx_blocked(b->ring)))
		bell_arm(s, b, false); /* keep the blocker until there is space */
	else
		bell_drain(b);
}

/*
 * One polling round over the hot send rings.  Returns whether anything
 * moved.  Rings idle past SPIN_NS are parked (announce, then re-check),
 * after which only a kick brings them back: v4vd sleeps when all is idle.
 */
static bool pump_hot(struct v4vd *s)
{
	bool moved = false;
	hv_poll_waiters(s->hv);
	for (struct dbell *b = s->hot; b; b = b->hot_next)
		if (hv_tx_pump(s->hv, b->ring, TX_BUDGET))
			moved = true;
	uint64_t now = now_ns();
	if (moved) {
		s->last_move = now;
		return true;
	}
	if (now - s->last_move < SPIN_NS)
		return false;
	for (struct dbell **pp = &s->hot; *pp;) {
		struct dbell *b = *pp;
		if (hv_tx_park(s->hv, b->ring)) {
			*pp = b->hot_next;
			b->hot = false;
		} else {
			pp = &b->hot_next;
		}
	}
	return false;
}

static void flush_kicks(struct v4vd *s)
{
	static const uint64_t one = 1;
	while (s->bell_kicks) {
		struct dbell *b = s->bell_kicks;
		uint8_t token = (uint8_t)b->pending;
		s->bell_kicks = b->kick_next;
		b->kicked = false;
		b->pending = 0;
		/* A full queue already polls readable: the token can go. */
		send(b->e.fd, &token, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	while (s->kicks) {
		struct dchan *ch = s->kicks;
		s->kicks = ch->kick_next;
		ch->kick = false;
		/* EAGAIN means the counter is saturated: it is raised anyway. */
		if (write(ch->virq, &one, sizeof(one)) < 0 && errno != EAGAIN)
			logmsg(LOG_WARNING, "virq write: %s", strerror(errno));
	}
}

static void kick_forget(struct v4vd *s, struct dchan *ch)
{
	for (struct dchan **pp = &s->kicks; *pp; pp = &(*pp)->kick_next)
		if (*pp == ch) {
			*pp = ch->kick_next;
			return;
		}
}

/* ---- domains --------------------------------------------------------- */

int v4vd_domain_create(struct v4vd *s, uint16_t domid, const char *name, bool persistent,
		       struct ddom **out)
{
	struct ddom *dd = calloc(1, sizeof(*dd));
	if (!dd)
		return -ENOMEM;
	int e = hv_domain_create(s->hv, domid, name, &dd->hd);
	if (e) {
		free(dd);
		return e;
	}
	dd->persistent = persistent;
	s->doms[hv_domain_id(dd->hd)] = dd;
	logmsg(LOG_INFO, "domain %u%s%s created", hv_domain_id(dd->hd),
	       *hv_domain_name(dd->hd) ? " " : "", hv_domain_name(dd->hd));
	*out = dd;
	return 0;
}

/*
 * Every socket end v4vd keeps for a domain (domain fds, channels) gets a
 * kernel-chosen abstract name, so that take_channel() can tell when a
 * domain offers as its channel the other end of one of them.
 */
static int name_own_end(int fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	return bind(fd, (struct sockaddr *)&sa, sizeof(sa_family_t)) < 0 ? -errno : 0;
}

int v4vd_domain_hold(struct v4vd *s, struct ddom *dd)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* Only our end is non-blocking: O_NONBLOCK would travel with theirs. */
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 || name_own_end(sv[0]) < 0) {
		int e = -errno;
		close(sv[0]);
		close(sv[1]);
		return e;
	}
	struct dhold *h = calloc(1, sizeof(*h));
	if (!h) {
		close(sv[0]);
		close(sv[1]);
		return -ENOMEM;
	}
	h->e = (struct fdent){.kind = FD_DOMAIN, .fd = sv[0]};
	h->dd = dd;
	int e = ep_add(s, &h->e);
	if (e) {
		close(sv[0]);
		close(sv[1]);
		free(h);
		return e;
	}
	h->next = dd->holds;
	dd->holds = h;
	return sv[1];
}

static void chan_close(struct v4vd *s, struct dchan *ch)
{
	hv_client_free(s->hv, ch->hc);
	kick_forget(s, ch);
	for (struct dchan **pp = &ch->dd->chans; *pp; pp = &(*pp)->next)
		if (*pp == ch) {
			*pp = ch->next;
			break;
		}
	if (ch->staging) {
		munmap(ch->staging, V4V_STAGING_SIZE);
		s->mapped_bytes -= V4V_STAGING_SIZE;
	}
	close(ch->virq);
	s->nchans--;
	v4vd_bury(s, &ch->e);
}

static void hold_close(struct v4vd *s, struct ddom *dd, struct dhold *h)
{
	for (struct dhold **pp = &dd->holds; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	v4vd_bury(s, &h->e);
}

void v4vd_domain_destroy(struct v4vd *s, struct ddom *dd)
{
	uint16_t domid = hv_domain_id(dd->hd);
	while (dd->chans)
		chan_close(s, dd->chans);
	while (dd->holds)
		hold_close(s, dd, dd->holds);
	hv_domain_destroy(s->hv, dd->hd);
	s->doms[domid] = NULL;
	free(dd);
	logmsg(LOG_INFO, "domain %u destroyed", domid);
}

/* A domain goes when nothing holds it: no domain fd, no channel. */
static void domain_maybe_gone(struct v4vd *s, struct ddom *dd)
{
	if (!dd->holds && !dd->chans && !dd->persistent)
		v4vd_domain_destroy(s, dd);
}

struct ddom *v4vd_domain_lookup(struct v4vd *s, const char *spec)
{
	uint64_t v;
	if (v4v_parse_u64(spec, 0, V4V_DOMID_MAX, &v))
		return s->doms[v];
	struct hv_domain *d = hv_domain_by_name(s->hv, spec);
	return d ? s->doms[hv_domain_id(d)] : NULL;
}

/* ---- attach ---------------------------------------------------------- */

/* Map a memfd the domain gave us, after checking it is sealed and big enough. */
static int map_domain_memfd(int fd, size_t need, void **out)
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
	void *p = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

static int is_seqpacket(int fd)
{
	int type = 0;
	socklen_t tl = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
		return errno == ENOTSOCK ? -ENOTSOCK : -errno;
	return type == SOCK_SEQPACKET ? 0 : -ENOTSOCK;
}

/*
 * A channel must be one end of the domain's own socketpair, the other end
 * unnamed.  A named other end may be ours (see name_own_end): holding both
 * ends of a pair, v4vd would answer its own replies for ever, and the
 * domain would never die.
 */
static int take_channel(int fd)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int e = is_seqpacket(fd);
	if (e)
		return e;
	if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0)
		return -errno;
	if (len > sizeof(sa_family_t))
		return -EINVAL;
	return name_own_end(fd);
}

/*
 * recv returns 0 both for the peer's hang-up and for an empty packet, which
 * a domain may send on purpose: only the first is a reason to let go.  (An
 * empty packet that carries fds is never a hang-up.)
 */
static bool hung_up(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void handle_attach(struct v4vd *s, struct dhold *h)
{
	struct v4v_req_attach req = {0}; /* a short packet echoes no stack bytes */
	int fds[2];
	unsigned nfds;
	ssize_t n = v4v_recv_fds(h->e.fd, &req, sizeof(req), fds, 2, &nfds, MSG_DONTWAIT);
	union v4v_reply_any out;
	size_t rlen;

	if (n == -EAGAIN)
		return;
	if ((n < 0 && n != -EMSGSIZE) || (n == 0 && nfds == 0 && hung_up(h->e.fd))) {
		struct ddom *dd = h->dd;
		hold_close(s, dd, h);
		domain_maybe_gone(s, dd);
		return;
	}
	int err = hv_attach_check(s->hv, &req, n < 0 ? HV_REQ_TRUNCATED : (size_t)n, nfds);
	if (err) {
		/* No channel to answer on: the domain fd carries the error. */
		rlen = hv_attach_reply(h->dd->hd, &req, err, &out);
		v4v_send_fds(h->e.fd, &out, rlen, NULL, 0, MSG_DONTWAIT);
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		return;
	}

	struct dchan *ch = calloc(1, sizeof(*ch));
	void *staging = NULL;
	if (ch)
		ch->virq = -1;
	if (!ch)
		err = -ENOMEM;
	else if ((err = take_channel(fds[0])) == 0)
		err = map_domain_memfd(fds[1], V4V_STAGING_SIZE, &staging);
	if (!err) {
		ch->virq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ch->virq < 0)
			err = -errno;
	}
	close(fds[1]);
	if (!err) {
		ch->hc = hv_client_new(s->hv, h->dd->hd, ch);
		if (!ch->hc)
			err = -ENOMEM;
	}
	if (err) {
		rlen = hv_attach_reply(h->dd->hd, &req, err, &out);
		v4v_send_fds(fds[0], &out, rlen, NULL, 0, MSG_DONTWAIT);
		if (staging)
			munmap(staging, V4V_STAGING_SIZE);
		if (ch && ch->virq >= 0)
			close(ch->virq);
		free(ch);
		close(fds[0]);
		return;
	}
	hv_client_set_staging(ch->hc, staging);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	ch->e = (struct fdent){.kind = FD_CHANNEL, .fd = fds[0]};
	ch->dd = h->dd;
	ch->staging = staging;
	ch->next = h->dd->chans;
	h->dd->chans = ch;
	s->nchans++;
	s->mapped_bytes += V4V_STAGING_SIZE;
	ep_add(s, &ch->e);

	rlen = hv_attach_reply(h->dd->hd, &req, 0, &out);
	if (v4v_send_fds(ch->e.fd, &out, rlen, &ch->virq, 1, MSG_DONTWAIT) < 0) {
		struct ddom *dd = ch->dd;
		chan_close(s, ch);
		domain_maybe_gone(s, dd);
	}
}

/* ---- hypercalls ------------------------------------------------------ */

/* A doorbell for the ring being registered; takes ownership of fd. */
static int bell_new(struct v4vd *s, int *fd, struct dbell **out)
{
	int e = is_seqpacket(*fd);
	if (e)
		return e;
	struct dbell *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	*b = (struct dbell){.e = {.kind = FD_BELL, .fd = *fd}, .armed = true};
	fcntl(b->e.fd, F_SETFL, O_NONBLOCK);
	if ((e = ep_add(s, &b->e)) < 0) {
		free(b);
		return e;
	}
	*fd = -1;
	*out = b;
	return 0;
}

/* The I/O a request needs before the core serves it (hv_serve_io): map the
 * ring and send-ring memfds, make the doorbell; stop at the first failure. */
static void request_io(struct v4vd *s, const struct hv_io *io, int *fds, struct hv_mapped *m)
{
	void *p;
	struct dbell *b = NULL;
	if (!io->ring_size)
		return;
	if ((m->err = map_domain_memfd(fds[0], io->ring_size, &p)) < 0)
		return;
	m->ring = p;
	s->mapped_bytes += io->ring_size;
	if (io->tx_size) {
		if ((m->err = map_domain_memfd(fds[2], io->tx_size, &p)) < 0)
			return;
		m->tx = p;
		s->mapped_bytes += io->tx_size;
	}
	if (io->bell) {
		if ((m->err = bell_new(s, &fds[1], &b)) < 0)
			return;
		m->bell = b;
	}
}

static void handle_channel(struct v4vd *s, struct dchan *ch)
{
	for (int i = 0; i < BATCH; i++) {
		int fds[3];
		unsigned nfds;
		ssize_t n =
		    v4v_recv_fds(ch->e.fd, &s->req, sizeof(s->req), fds, 3, &nfds, MSG_DONTWAIT);
		if (n == -EAGAIN)
			return;
		if ((n < 0 && n != -EMSGSIZE) || (n == 0 && nfds == 0 && hung_up(ch->e.fd)))
			goto gone;
		size_t len = n < 0 ? HV_REQ_TRUNCATED : (size_t)n;
		struct hv_io io;
		struct hv_mapped m = {0};
		hv_serve_io(&s->req, len, nfds, &io);
		request_io(s, &io, fds, &m);
		size_t rlen = hv_serve(s->hv, ch->hc, &s->req, len, nfds, &m, &s->reply);
		if (m.registered && m.bell) {
			struct dbell *b = m.bell;
			b->ring = m.registered;
			b->has_tx = m.has_tx;
		}
		for (unsigned k = 0; k < nfds; k++)
			if (fds[k] >= 0)
				close(fds[k]);
		s->requests++;
		ch->requests++;
		/* A process that does not read its replies is dropped, not waited for. */
		if (v4v_send_fds(ch->e.fd, &s->reply, rlen, NULL, 0, MSG_DONTWAIT) < 0)
			goto gone;
	}
	return;
gone:;
	struct ddom *dd = ch->dd;
	chan_close(s, ch);
	domain_maybe_gone(s, dd);
}

/* ---- startup --------------------------------------------------------- */

static int load_config(const char *path, struct v4v_config *cfg)
{
	char err[300];
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "v4vd: cannot open config %s: %s\n", path, strerror(errno));
		return -1;
	}
	char *text = calloc(1, 1 << 20);
	size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
	bool too_big = !feof(f);
	fclose(f);
	if (!text || too_big || strlen(text) != n) {
		fprintf(stderr, "v4vd: config %s: %s\n", path,
			!text	  ? "out of memory"
			: too_big ? "larger than 1 MiB"
				  : "contains a NUL byte");
		free(text);
		return -1;
	}
	int e = v4v_config_parse(text, cfg, err, sizeof(err));
	free(text);
	if (e) {
		fprintf(stderr, "v4vd: config %s: %s\n", path, err);
		return -1;
	}
	return 0;
}

static int mkdir_p(const char *dir)
{
	char buf[256];
	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int open_control(struct v4vd *s)
{
	char *lock = s->lock_path;
	int e = mkdir_p(s->rundir);
	if (e) {
		fprintf(stderr, "v4vd: cannot create runtime dir %s: %s\n", s->rundir,
			strerror(-e));
		return -1;
	}
	snprintf(lock, sizeof(s->lock_path), "%s/v4vd.lock", s->rundir);
	int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "v4vd: %s: %s\n", lock,
			errno == EWOULDBLOCK ? "another v4vd is running in this directory"
					     : strerror(errno));
		return -1;
	}
	/* lfd stays open for our lifetime: it is the lock. */
	if (v4v_control_path(s->ctl_path, sizeof(s->ctl_path), s->rundir) < 0) {
		fprintf(stderr, "v4vd: runtime dir path too long: %s\n", s->rundir);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, s->ctl_path);
	unlink(s->ctl_path);
	mode_t old = umask(0077); /* the control socket is the admin's: 0600 */
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 64) < 0) {
		fprintf(stderr, "v4vd: cannot listen on %s: %s\n", s->ctl_path, strerror(errno));
		return -1;
	}
	static struct fdent ctl;
	ctl = (struct fdent){.kind = FD_CONTROL_LISTEN, .fd = fd};
	return ep_add(s, &ctl);
}

static void accept_control(struct v4vd *s, int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		logmsg(LOG_WARNING, "control: refused uid %u", (unsigned)cr.uid);
		close(fd);
		return;
	}
	/* Admin clients are trusted to be brief; never let one hang v4vd. */
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct fdent *e = malloc(sizeof(*e));
	if (!e) {
		close(fd);
		return;
	}
	*e = (struct fdent){.kind = FD_CONTROL, .fd = fd};
	if (ep_add(s, e) < 0) {
		close(fd);
		free(e);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: v4vd [--runtime-dir DIR] [--foreground] [--config FILE]\n"
		"  --runtime-dir DIR  control socket directory (default: $V4V_RUNTIME_DIR,\n"
		"                     /run/v4v for root, else $XDG_RUNTIME_DIR/v4v)\n"
		"  --foreground       stay attached, log to stderr (default: daemonize, syslog)\n"
		"  --config FILE      limits and firewall rules, see v4vd.conf(5)\n");
}

static int daemonize(void)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		char c;
		close(p[1]);
		/* Exit once the child says it is ready, with its verdict. */
		_exit(read(p[0], &c, 1) == 1 && c == 'y' ? 0 : 1);
	}
	close(p[0]);
	setsid();
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		if (null > 2)
			close(null);
	}
	return p[1];
}

static void run(struct v4vd *s)
{
	struct epoll_event ev[64];
	while (!s->stop) {
		/* Poll (timeout 0) while send rings are hot, else sleep. */
		int n = epoll_wait(s->epfd, ev, 64, s->hot ? 0 : -1);
		if (n < 0 && errno != EINTR) {
			logmsg(LOG_ERR, "epoll_wait: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++) {
			struct fdent *e = ev[i].data.ptr;
			switch (e->kind) {
			case FD_CONTROL_LISTEN: accept_control(s, e->fd); break;
			case FD_CONTROL: ctl_handle(s, e); break;
			case FD_DOMAIN: handle_attach(s, (struct dhold *)e); break;
			case FD_CHANNEL: handle_channel(s, (struct dchan *)e); break;
			case FD_BELL: handle_bell(s, (struct dbell *)e, ev[i].events); break;
			case FD_SIGNAL: s->stop = true; break;
			case FD_DEAD: break;
			}
		}
		if (s->hot)
			pump_hot(s);
		flush_kicks(s);
		free_dead(s);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"runtime-dir", required_argument, NULL, 'r'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	static struct v4vd s;
	static struct v4v_config cfg;
	char dir[256];
	const char *config = NULL;
	int c;

	hv_limits_default(&cfg.lim);
	s.rundir = NULL;
	while ((c = getopt_long(argc, argv, "r:fc:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': s.rundir = optarg; break;
		case 'f': s.foreground = true; break;
		case 'c': config = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "v4vd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	if (!s.rundir) {
		if (v4v_runtime_dir(dir, sizeof(dir)) < 0) {
			fprintf(stderr, "v4vd: runtime dir path too long\n");
			return 1;
		}
		s.rundir = dir;
	}
	if (config && load_config(config, &cfg) < 0)
		return 1;

	static const struct hv_ops ops = {
	    .signal = on_signal,
	    .ring_signal = on_ring_signal,
	    .ring_blocked = on_ring_blocked,
	    .ring_space = on_ring_space,
	    .unmap = on_unmap,
	    .tx_ready = on_tx_ready,
	    .rejected = on_rejected,
	};
	s.hv = hv_new(&cfg.lim, &ops, &s);
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!s.hv || s.epfd < 0) {
		fprintf(stderr, "v4vd: out of resources\n");
		return 1;
	}
	hv_fw_set_policy(s.hv, cfg.policy);
	for (unsigned i = 0; i < cfg.nrules; i++)
		hv_fw_insert(s.hv, i, &cfg.rules[i]);

	if (open_control(&s) < 0)
		return 1;
	int ready = -1;
	if (!s.foreground) {
		ready = daemonize();
		use_syslog = true;
		openlog("v4vd", LOG_PID, LOG_DAEMON);
	}
	/* After the fork: a signalfd wakes epoll only for its creator. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	static struct fdent sig;
	sig = (struct fdent){.kind = FD_SIGNAL, .fd = signalfd(-1, &mask, SFD_CLOEXEC)};
	ep_add(&s, &sig);

	logmsg(LOG_INFO, "listening on %s (policy %s, %u rules)", s.ctl_path,
	       v4v_action_name(cfg.policy), cfg.nrules);
	if (ready >= 0) {
		if (write(ready, "y", 1) < 0) { /* parent gone: carry on */
		}
		close(ready);
	}
	run(&s);

	logmsg(LOG_INFO, "shutting down");
	for (unsigned i = 0; i <= V4V_DOMID_MAX; i++)
		if (s.doms[i])
			v4vd_domain_destroy(&s, s.doms[i]);
	hv_free(s.hv);
	free_dead(&s);
	unlink(s.ctl_path);
	unlink(s.lock_path);
	return 0;
}
