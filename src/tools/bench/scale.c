/* SPDX-License-Identifier: MIT */
/*
 * The scale workload: many v4v-dgram domain pairs at once, driven by a few
 * processes.  Each pair is two domains with one datagram socket each (a
 * domain per socket: v4vd's per-domain work is what is measured); each
 * sending process owns the A ends of its share of the pairs and each
 * receiving one the B ends, event-driven over all of its sockets (epoll:
 * a wake-up costs the sockets that are ready, not all of them), so that
 * 1000 pairs on a 2-core machine are four busy processes, not 2000.  The result: the aggregate
 * throughput and v4vd's CPU per message; "no collapse" (spread.c) is the largest level against 64
 * pairs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "bench.h"
#include "common/util.h"
#include "tool.h"

const unsigned scale_levels[] = {1, 16, SCALE_REF, 256, 1000};
const unsigned scale_levels_quick[] = {1, 16, SCALE_REF};
const unsigned n_scale_levels = ARRAY_SIZE(scale_levels);
const unsigned n_scale_levels_quick = ARRAY_SIZE(scale_levels_quick);

/* Processes per side: one per pair up to two (the machine's cores are few
 * and every process drives all of its sockets). */
unsigned scale_procs(unsigned npairs)
{
	return npairs < 2 ? 1 : 2;
}

struct scale {
	struct run r;
	unsigned npairs, procs;
	int *dfd[2];	    /* [side][pair]: the domains' fds, -1 once closed */
	uint16_t *domid[2]; /* [side][pair] */
};

static __attribute__((noreturn)) void sfail(struct scale *sc, int side, unsigned j,
					    const char *what, int err)
{
	struct rec rec = {.type = REC_FAIL, .pair = j, .side = (uint32_t)side, .err = err};
	snprintf(rec.what, sizeof(rec.what), "%s", what);
	if (write(sc->r.res[1], &rec, sizeof(rec)) != (ssize_t)sizeof(rec))
		_exit(1);
	_exit(0);
}

/* Up to this many ready sockets per epoll_wait. */
#define SCALE_EVENTS 64

static int scale_epoll(struct scale *sc, int side, unsigned j)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		sfail(sc, side, j, "epoll_create1", -errno);
	return ep;
}

static void scale_watch(struct scale *sc, int side, unsigned j, int ep, int op, int fd,
			uint32_t events, unsigned i)
{
	struct epoll_event ev = {.events = events, .data.u32 = i};
	if (epoll_ctl(ep, op, fd, &ev) < 0)
		sfail(sc, side, j, "epoll_ctl", -errno);
}

/* Wait at most ms for events; their count (0 on EINTR). */
static int scale_wait(struct scale *sc, int side, unsigned j, int ep, struct epoll_event *ev,
		      int ms)
{
	int k = epoll_wait(ep, ev, SCALE_EVENTS, ms);
	if (k < 0 && errno != EINTR)
		sfail(sc, side, j, "epoll_wait", -errno);
	return k < 0 ? 0 : k;
}

/* Sender j: round robin over its sockets, one datagram each per pass; a
 * socket whose send ring is full is watched for EPOLLOUT until it may send
 * again; when all are, wait. */
static void scale_send(struct scale *sc, unsigned j, int *fds, struct v4v_addr *peers, unsigned n,
		       struct rec *rec)
{
	struct epoll_event ev[SCALE_EVENTS];
	bool *blocked = calloc(n, sizeof(*blocked));
	uint8_t buf[SCALE_SIZE];
	unsigned nblocked = 0;
	int ep = scale_epoll(sc, 0, j);
	if (!blocked)
		sfail(sc, 0, j, "malloc", -ENOMEM);
	memset(buf, 'x', sizeof(buf));
	buf[0] = 0;
	double deadline = now() + sc->r.secs;
	while (now() < deadline) {
		for (unsigned i = 0; i < n; i++) {
			if (blocked[i])
				continue;
			if (v4v_sendto(fds[i], buf, sizeof(buf), 0, &peers[i]) >= 0) {
				rec->n++;
				continue;
			}
			if (errno != EAGAIN)
				sfail(sc, 0, j, "sendto", -errno);
			blocked[i] = true;
			nblocked++;
			scale_watch(sc, 0, j, ep, EPOLL_CTL_ADD, fds[i], EPOLLOUT, i);
		}
		if (nblocked < n)
			continue;
		int ms = (int)((deadline - now()) * 1000) + 1;
		int k = scale_wait(sc, 0, j, ep, ev, ms > 0 ? ms : 0);
		for (int e = 0; e < k; e++) {
			unsigned i = ev[e].data.u32;
			scale_watch(sc, 0, j, ep, EPOLL_CTL_DEL, fds[i], 0, i);
			blocked[i] = false;
			nblocked--;
		}
	}
	/* The last message of each pair: B stops counting it. */
	buf[0] = 1;
	for (unsigned i = 0; i < n; i++)
		while (v4v_sendto(fds[i], buf, sizeof(buf), 0, &peers[i]) < 0) {
			if (errno != EAGAIN)
				sfail(sc, 0, j, "sendto", -errno);
			struct pollfd p = {.fd = fds[i], .events = POLLOUT};
			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				sfail(sc, 0, j, "poll", -errno);
		}
	close(ep);
	free(blocked);
}

/* Receiver j: wait for the sockets still running, drain each ready one;
 * one that has had its last message leaves the epoll set. */
static void scale_recv(struct scale *sc, unsigned j, int *fds, unsigned n, struct rec *rec)
{
	struct epoll_event ev[SCALE_EVENTS];
	uint8_t buf[SCALE_SIZE];
	unsigned live = n;
	int ep = scale_epoll(sc, 1, j);
	for (unsigned i = 0; i < n; i++)
		scale_watch(sc, 1, j, ep, EPOLL_CTL_ADD, fds[i], EPOLLIN, i);
	while (live) {
		int k = scale_wait(sc, 1, j, ep, ev, -1);
		for (int e = 0; e < k; e++) {
			unsigned i = ev[e].data.u32;
			for (;;) {
				ssize_t r = v4v_recv(fds[i], buf, sizeof(buf), 0);
				if (r < 0 && errno == EAGAIN)
					break;
				if (r != (ssize_t)sizeof(buf))
					sfail(sc, 1, j, "recv", r < 0 ? -errno : -EPROTO);
				if (buf[0]) {
					scale_watch(sc, 1, j, ep, EPOLL_CTL_DEL, fds[i], 0, i);
					live--;
					break;
				}
				rec->n++;
			}
		}
	}
	close(ep);
}

/* Process j of a side: pairs j, j + procs, j + 2 procs, ... */
static __attribute__((noreturn)) void scale_child(struct scale *sc, int side, unsigned j)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	close(sc->r.res[0]);
	close(sc->r.go[1]);
	close(sc->r.quit[1]);
	unsigned n = 0;
	for (unsigned i = 0; i < sc->npairs; i++)
		for (int s = 0; s < 2; s++)
			if ((s != side || i % sc->procs != j) && sc->dfd[s][i] >= 0)
				close(sc->dfd[s][i]);
	int *fds = calloc(sc->npairs / sc->procs + 1, sizeof(*fds));
	struct v4v_addr *peers = calloc(sc->npairs / sc->procs + 1, sizeof(*peers));
	if (!fds || !peers)
		sfail(sc, side, j, "malloc", -ENOMEM);
	for (unsigned i = j; i < sc->npairs; i += sc->procs, n++) {
		struct v4v_domain *d;
		struct v4v_addr a = {.aport = PORT(side), .domain_id = V4V_DOMID_ANY};
		int err = v4v_open_fd(sc->dfd[side][i], &d);
		if (err)
			sfail(sc, side, j, "attach", err);
		fds[n] = v4v_socket(d, V4V_SOCK_DGRAM, V4V_SOCK_NONBLOCK);
		if (fds[n] < 0 || v4v_bind(fds[n], &a) < 0)
			sfail(sc, side, j, fds[n] < 0 ? "socket" : "bind", -errno);
		peers[n] =
		    (struct v4v_addr){.aport = PORT(!side), .domain_id = sc->domid[!side][i]};
	}
	struct rec rec = {.type = REC_READY, .pair = j, .side = (uint32_t)side};
	if (write(sc->r.res[1], &rec, sizeof(rec)) != (ssize_t)sizeof(rec))
		_exit(1);
	char c;
	while (read(sc->r.go[0], &c, 1) < 0 && errno == EINTR)
		;
	double c0 = cpu_self();
	if (side)
		scale_recv(sc, j, fds, n, &rec);
	else
		scale_send(sc, j, fds, peers, n, &rec);
	rec.type = REC_DONE;
	rec.cpu = cpu_self() - c0;
	if (write(sc->r.res[1], &rec, sizeof(rec)) != (ssize_t)sizeof(rec))
		_exit(1);
	/* As in roles.c: stay until the parent has taken its readings. */
	while (read(sc->r.quit[0], &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

/* After the run: v4vd tears 2 x npairs domains down; let it finish before
 * the next measurement, so the work is charged to none (bounded). */
static void scale_settle(void)
{
	double n, deadline = now() + 10;
	while (now() < deadline && v4vd_stat("domains", &n) && n > v4vd_domains_base)
		usleep(20000);
	v4vd_quiesce();
}

void scale_step(unsigned npairs, struct result *res)
{
	struct scale sc = {.npairs = npairs, .procs = scale_procs(npairs)};
	struct rec *recs = calloc(2 * sc.procs, sizeof(*recs));
	sc.r = (struct run){.w = W_SCALE, .size = SCALE_SIZE, .secs = opt.secs};
	sc.r.nkids = 2 * sc.procs;
	sc.r.kids = calloc(sc.r.nkids, sizeof(*sc.r.kids));
	for (int s = 0; s < 2; s++) {
		sc.dfd[s] = malloc(npairs * sizeof(int));
		sc.domid[s] = calloc(npairs, sizeof(uint16_t));
		if (!sc.dfd[s] || !sc.domid[s])
			die("out of memory");
		memset(sc.dfd[s], -1, npairs * sizeof(int));
	}
	if (!recs || !sc.r.kids)
		die("out of memory");
	if (pipe2(sc.r.res, O_CLOEXEC) < 0 || pipe2(sc.r.go, O_CLOEXEC) < 0 ||
	    pipe2(sc.r.quit, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	res->pairs = npairs;
	res->procs = 2 * sc.procs;

	bool ok = true;
	for (unsigned i = 0; i < npairs && ok; i++)
		for (int s = 0; s < 2 && ok; s++)
			ok = (sc.dfd[s][i] = domain_create_err(&sc.domid[s][i], res->err,
							       sizeof(res->err))) >= 0;
	if (!ok && !v4vd_ours) {
		/* Ours allows SCALE_DOMAINS; a running one has its own limit. */
		char e[sizeof(res->err)];
		snprintf(e, sizeof(e), "%s", res->err);
		snprintf(res->err, sizeof(res->err), "%.100s (%u domains needed)", e, 2 * npairs);
	}
	double slack = 10 + 0.02 * npairs;
	/* Receivers first: their sockets are bound before anyone sends. */
	for (int side = 1; side >= 0 && ok; side--) {
		for (unsigned j = 0; j < sc.procs && ok; j++) {
			fflush(NULL);
			pid_t pid = fork();
			if (pid == 0)
				scale_child(&sc, side, j);
			if (pid < 0) {
				snprintf(res->err, sizeof(res->err), "fork: %s", strerror(errno));
				ok = false;
			} else {
				sc.r.kids[2 * j + (unsigned)side] = pid;
			}
		}
		if (ok)
			ok = collect(&sc.r, REC_READY, sc.procs, now() + slack, NULL, res->err,
				     sizeof(res->err));
	}
	for (int s = 0; s < 2; s++)
		for (unsigned i = 0; i < npairs; i++)
			if (sc.dfd[s][i] >= 0)
				close(sc.dfd[s][i]);
	close(sc.r.res[1]);
	close(sc.r.go[0]);
	close(sc.r.quit[0]);

	double v0 = 0, v1 = 0, t0 = 0, t1 = 0;
	if (ok) {
		if (!noisy)
			v4vd_quiesce();
		v0 = v4vd_cpu();
		t0 = now();
		close(sc.r.go[1]);
		sc.r.go[1] = -1;
		ok = collect(&sc.r, REC_DONE, 2 * sc.procs, t0 + opt.secs + slack, recs, res->err,
			     sizeof(res->err));
		t1 = now();
		v1 = v4vd_cpu();
	}
	if (sc.r.go[1] >= 0)
		close(sc.r.go[1]);
	close(sc.r.quit[1]);
	close(sc.r.res[0]);
	kill_kids(&sc.r, !ok);
	if (ok) {
		double wall = t1 - t0, cpu = 0;
		uint64_t n = 0;
		for (unsigned i = 0; i < 2 * sc.procs; i++) {
			cpu += recs[i].cpu;
			if (recs[i].side == 1)
				n += recs[i].n;
		}
		res->secs = wall;
		res->value = (double)n / wall;
		res->unit = "msg/s";
		res->mbps = res->value * SCALE_SIZE / 1e6;
		res->cpu_v4vd = (v1 - v0) / wall * 100;
		res->cpu = (cpu + v1 - v0) / wall * 100;
		res->us_v4vd = n ? (v1 - v0) / (double)n * 1e6 : NAN;
	}
	scale_settle();
	for (int s = 0; s < 2; s++) {
		free(sc.dfd[s]);
		free(sc.domid[s]);
	}
	free(recs);
	free(sc.r.kids);
}
