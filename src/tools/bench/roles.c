/* SPDX-License-Identifier: MIT */
/*
 * The children: each workload is a pair of roles (A sends or asks, B
 * receives or answers) written once against a transport's operations, and
 * child_main() runs one end of a pair from attach to its record.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "bench.h"
#include "common/util.h"
#include "tool.h"

static void send_rec(struct run *r, struct rec *rec)
{
	if (write(r->res[1], rec, sizeof(*rec)) != (ssize_t)sizeof(*rec))
		_exit(1);
}

static __attribute__((noreturn)) void child_fail(struct run *r, struct end *e, const char *what,
						 int err)
{
	struct rec rec = {
	    .type = REC_FAIL, .pair = e->p->idx, .side = (uint32_t)e->side, .err = err};
	snprintf(rec.what, sizeof(rec.what), "%s", what);
	send_rec(r, &rec);
	_exit(0);
}

#define MAX_SAMPLES (1u << 20)

static void role_throughput_a(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	double deadline = now() + r->secs;
	int err;
	buf[0] = 0;
	do {
		if ((err = r->t->send(e, buf, e->size)))
			child_fail(r, e, "send", err);
		rec->n++;
	} while (now() < deadline);
	buf[0] = 1; /* the last message */
	if ((err = r->t->send(e, buf, e->size)))
		child_fail(r, e, "send", err);
}

static void role_throughput_b(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	const uint8_t *data;
	for (;;) {
		int err = r->t->recv(e, buf, e->size, &data);
		if (err)
			child_fail(r, e, "recv", err);
		if (data[0])
			return;
		rec->n++;
	}
}

static void role_latency_a(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	uint32_t *lat = malloc(MAX_SAMPLES * sizeof(*lat));
	const uint8_t *data;
	double deadline = now() + r->secs;
	uint64_t n = 0;
	int err;
	if (!lat)
		child_fail(r, e, "malloc", -ENOMEM);
	buf[0] = 0;
	do {
		uint64_t t0 = now_ns();
		if ((err = r->t->send(e, buf, e->size)))
			child_fail(r, e, "send", err);
		if ((err = r->t->recv(e, buf, e->size, &data)))
			child_fail(r, e, "recv", err);
		uint64_t dt = now_ns() - t0;
		if (n < MAX_SAMPLES)
			lat[n] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
		n++;
	} while (now() < deadline);
	buf[0] = 1;
	if ((err = r->t->send(e, buf, e->size)))
		child_fail(r, e, "send", err);
	rec->n = n;
	percentiles(lat, n < MAX_SAMPLES ? (unsigned)n : MAX_SAMPLES, &rec->p50, &rec->p99);
	free(lat);
}

static void role_latency_b(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	const uint8_t *data;
	for (;;) {
		int err = r->t->recv(e, buf, e->size, &data);
		if (err)
			child_fail(r, e, "recv", err);
		if (data[0])
			return;
		/* Echo straight from where it arrived (in place for rings). */
		if ((err = r->t->send(e, data, e->size)))
			child_fail(r, e, "send", err);
		rec->n++;
	}
}

static void role_connect_a(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	double deadline = now() + r->secs;
	do {
		int s = r->t->c_connect(e);
		if (s < 0)
			child_fail(r, e, "connect", s);
		r->t->c_close(e, s);
		rec->n++;
	} while (now() < deadline);
	/* B accepts until it has them all: connections may still be queued. */
	if (write(e->p->fd[0][F_AUX], &rec->n, sizeof(rec->n)) != sizeof(rec->n))
		child_fail(r, e, "write", -errno);
}

static void role_connect_b(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	struct pollfd p[2] = {
	    {.fd = e->lfd, .events = POLLIN},
	    {.fd = e->p->fd[1][F_AUX], .events = POLLIN},
	};
	uint64_t want = UINT64_MAX;
	while (rec->n < want) {
		/* Once A's count is in, every connection is queued: just accept. */
		if (want == UINT64_MAX && poll(p, 2, -1) < 0) {
			if (errno != EINTR)
				child_fail(r, e, "poll", -errno);
			continue;
		}
		if (want == UINT64_MAX && p[1].revents) {
			if (read(p[1].fd, &want, sizeof(want)) != sizeof(want))
				child_fail(r, e, "read", -EPROTO);
			continue;
		}
		if (want != UINT64_MAX || p[0].revents) {
			int s = r->t->c_accept(e);
			if (s < 0)
				child_fail(r, e, "accept", s);
			r->t->c_close(e, s);
			rec->n++;
		}
	}
}

/* Idle: attached with a bound socket, asleep on it and on the VIRQ until
 * told to stop.  Wake-ups are counted: there should be none. */
static void role_idle(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	struct pollfd p[3] = {
	    {.fd = r->stop[0], .events = POLLIN},
	    {.fd = v4v_virq_fd(e->d), .events = POLLIN},
	    {.fd = e->rfd, .events = POLLIN},
	};
	for (;;) {
		if (poll(p, 3, -1) < 0) {
			if (errno != EINTR)
				child_fail(r, e, "poll", -errno);
			continue;
		}
		if (p[0].revents)
			return;
		if (p[1].revents) {
			int err = v4v_virq_ack(e->d);
			if (err)
				child_fail(r, e, "virq_ack", err);
			rec->n++;
		}
		if (p[2].revents) {
			/* Whatever woke the socket: let the library look at it. */
			if (v4v_recv(e->rfd, buf, 1, MSG_DONTWAIT) < 0 && errno != EAGAIN)
				child_fail(r, e, "recv", -errno);
			rec->n++;
		}
	}
}

typedef void role_fn(struct run *r, struct end *e, uint8_t *buf, struct rec *rec);

static role_fn *const roles[W_COUNT][2] = {
    [W_THROUGHPUT] = {role_throughput_a, role_throughput_b},
    [W_LATENCY] = {role_latency_a, role_latency_b},
    [W_CONNECT] = {role_connect_a, role_connect_b},
    [W_PAIRS] = {role_throughput_a, role_throughput_b},
    [W_IDLE] = {role_idle, role_idle},
};

void close_pair(struct pair *p, int side)
{
	for (int i = 0; i < NFD; i++)
		if (p->fd[side][i] >= 0) {
			close(p->fd[side][i]);
			p->fd[side][i] = -1;
		}
}

__attribute__((noreturn)) void child_main(struct run *r, unsigned idx, int side)
{
	/* Die with the parent, and leave its clean-up to it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	close(r->res[0]);
	close(r->go[1]);
	close(r->stop[1]);
	close(r->quit[1]);
	/* Only our own end stays open: peers see hang-ups as they should. */
	for (unsigned i = 0; i < r->npairs; i++)
		for (int s = 0; s < 2; s++)
			if (i != idx || s != side)
				close_pair(&r->pairs[i], s);

	struct end e = {
	    .p = &r->pairs[idx], .side = side, .size = r->size, .rfd = -1, .wfd = -1, .lfd = -1};
	struct rec rec = {.type = REC_READY, .pair = idx, .side = (uint32_t)side};
	uint8_t *buf = malloc(r->size + 1);
	int err;
	if (!buf)
		child_fail(r, &e, "malloc", -ENOMEM);
	memset(buf, 'x', r->size);
	if (r->t->attach && (err = r->t->attach(&e)))
		child_fail(r, &e, "attach", err);
	if (r->w == W_CONNECT)
		err = side ? r->t->c_listen(&e) : 0;
	else
		err = r->t->open(&e);
	if (err)
		child_fail(r, &e, r->w == W_CONNECT ? "listen" : "open", err);
	send_rec(r, &rec);
	if (r->w != W_CONNECT && r->t->open2 && (err = r->t->open2(&e)))
		child_fail(r, &e, "accept", err);

	char c;
	while (read(r->go[0], &c, 1) < 0 && errno == EINTR)
		;
	double c0 = cpu_self();
	roles[r->w][side](r, &e, buf, &rec);
	rec.type = REC_DONE;
	rec.cpu = cpu_self() - c0;
	send_rec(r, &rec);
	/* Stay until the parent has taken its readings: our exit makes v4vd
	 * tear the domain down, work that belongs to no measurement. */
	while (read(r->quit[0], &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}
