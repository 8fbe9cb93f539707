/* SPDX-License-Identifier: MIT */
/*
 * The event loop: one thread, one epoll set.  Each readable fd is handed to
 * its object (domain fd, channel, doorbell, control socket); VIRQ signals
 * and doorbell tokens raised by the core are collected on kick lists and
 * written once per batch; send rings with work are polled ("hot") until
 * idle for SPIN_NS, then parked.  Objects that die mid-batch are buried:
 * out of epoll and closed at once, freed after the batch.
 */
#define _GNU_SOURCE
#include "v4vd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"

/*
 * Objects die in the middle of an epoll batch (a control request destroys a
 * domain whose channels have events pending later in the same batch), so
 * they are closed at once but freed only after the batch.  The fd leaves
 * epoll before it is closed: a domain may hold another descriptor of the
 * same socket (it passed us a copy), which would keep the registration,
 * and its events for the freed object, alive.  (docs/ARCHITECTURE.md,
 * "Object lifetimes".)
 */
void v4vd_bury(struct v4vd *s, struct fdent *e)
{
	if (e->fd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, e->fd, NULL); /* ENOENT: never added */
		close(e->fd);
		v4vd_fd_freed(s);
	}
	v4vd_socket_release(s, e); /* if taken from a domain (take.c) */
	e->fd = -1;
	e->kind = FD_DEAD;
	e->dead_next = s->dead;
	s->dead = e;
}

void v4vd_free_dead(struct v4vd *s)
{
	while (s->dead) {
		struct fdent *e = s->dead;
		s->dead = e->dead_next;
		free(e);
	}
}

int v4vd_ep_add(struct v4vd *s, struct fdent *e)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = e};
	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, e->fd, &ev) < 0 ? -errno : 0;
}

uint64_t v4vd_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void v4vd_on_signal(void *ctx, void *cookie)
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

void v4vd_on_ring_signal(void *ctx, void *cookie, unsigned what)
{
	struct dbell *b = cookie;
	b->pending |= what;
	bell_kick(ctx, b);
}

void v4vd_chan_unkick(struct v4vd *s, struct dchan *ch)
{
	for (struct dchan **pp = &s->kicks; *pp; pp = &(*pp)->kick_next)
		if (*pp == ch) {
			*pp = ch->kick_next;
			return;
		}
}

void v4vd_bell_unlist(struct v4vd *s, struct dbell *b)
{
	for (struct dbell **pp = &s->bell_kicks; *pp; pp = &(*pp)->kick_next)
		if (*pp == b) {
			*pp = b->kick_next;
			break;
		}
	if (!b->hot)
		return;
	for (struct dbell **pp = &s->hot; *pp; pp = &(*pp)->hot_next)
		if (*pp == b) {
			*pp = b->hot_next;
			break;
		}
	b->hot = false;
	v4vd_hot_count(s, b, -1);
}

static void flush_kicks(struct v4vd *s)
{
	static const uint64_t one = 1;
	while (s->bell_kicks) {
		struct dbell *b = s->bell_kicks;
		uint8_t token = (uint8_t)(b->pending | b->owed);
		s->bell_kicks = b->kick_next;
		b->kicked = false;
		b->pending = 0;
		/*
		 * A full queue polls readable, but the owner learns only the bits
		 * queued: a lost EVENT would leave its events unread (a peer's
		 * death never seen), a lost WAITER its sender unwoken.  So what
		 * does not fit is owed, and goes once the owner has drained.
		 */
		if (send(b->e.fd, &token, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
			b->owed = 0;
		else if (errno == EAGAIN)
			v4vd_bell_owe(s, b, token);
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

/* A send ring with work: poll it until it has been idle for SPIN_NS. */
void v4vd_bell_hot(struct v4vd *s, struct dbell *b)
{
	if (b->hot || !b->has_tx)
		return;
	b->hot = true;
	b->hot_next = s->hot;
	s->hot = b;
	v4vd_hot_count(s, b, 1);
}

/*
 * One polling round over the hot send rings, each within its domain's
 * share of the round (fair.c), so that a domain with many send rings moves
 * as much per round as one with a single ring.  Returns whether anything
 * moved.  Rings idle past SPIN_NS are parked (announce, then re-check),
 * after which only a kick brings them back: v4vd sleeps when all is idle.
 */
static bool pump_hot(struct v4vd *s)
{
	bool moved = false;
	hv_poll_waiters(s->hv);
	for (struct dbell *b = s->hot; b; b = b->hot_next)
		if (v4vd_tx_pump(s, b))
			moved = true;
	uint64_t now = v4vd_now_ns();
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
			v4vd_hot_count(s, b, -1);
		} else {
			pp = &b->hot_next;
		}
	}
	return false;
}

void v4vd_run(struct v4vd *s)
{
	struct epoll_event ev[64];
	while (!s->stop) {
		s->round++; /* fresh per-domain budgets (fair.c) */
		/*
		 * Poll (timeout 0) while send rings or call areas are hot,
		 * else sleep.  While they move messages or calls, look only
		 * every LOOK_NS: a system call each pump cost the fast path a
		 * fifth of v4vd's time.
		 */
		int n = 0;
		bool polling = s->hot || s->calls;
		if (!polling || !s->moving || s->last_move - s->last_look >= LOOK_NS) {
			n = epoll_wait(s->epfd, ev, 64, polling ? 0 : -1);
			s->last_look = s->last_move;
		}
		if (n < 0 && errno != EINTR) {
			logmsg(LOG_ERR, "epoll_wait: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++) {
			struct fdent *e = ev[i].data.ptr;
			switch (e->kind) {
			case FD_CONTROL_LISTEN: v4vd_ctl_accept(s, e->fd); break;
			case FD_CONTROL: ctl_handle(s, e); break;
			case FD_DOMAIN: v4vd_attach_handle(s, (struct dhold *)e); break;
			case FD_CHANNEL: v4vd_chan_handle(s, (struct dchan *)e); break;
			case FD_BELL: v4vd_bell_handle(s, (struct dbell *)e, ev[i].events); break;
			case FD_SIGNAL: v4vd_signal_handle(s); break;
			case FD_DEAD: break;
			}
			v4vd_reap(s); /* anything a core call in there queued */
		}
		s->moving = s->hot && pump_hot(s);
		if (s->calls && v4vd_calls_pump(s))
			s->moving = true;
		v4vd_reap(s);
		flush_kicks(s);
		v4vd_free_dead(s);
	}
}
