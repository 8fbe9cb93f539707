/* SPDX-License-Identifier: MIT */
/*
 * Doorbells: v4vd's end of a ring's notification socketpair.  A token of
 * HV_SIG_* bits goes out on it (loop.c flushes them); the owner's packets
 * on it are kicks (pump its send ring), notifies (it consumed: re-check
 * the senders waiting on its ring) or a blocker left unread while its send
 * waits for space; its hang-up drops the ring.
 */
#define _GNU_SOURCE
#include "v4vd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "../common/util.h"

/*
 * What epoll reports for b: EPOLLIN (kicks, blockers, notifies), EPOLLOUT
 * while a token is owed.  While a blocker is kept (in false) we do not read,
 * so EPOLLIN is edge-triggered: each new packet still reports once, and a
 * notify from an owner whose own send waits is not lost (v4vd_bell_handle).
 */
static void bell_watch(struct v4vd *s, struct dbell *b, bool in, bool out)
{
	struct epoll_event ev = {.events = EPOLLIN | (in ? 0 : EPOLLET) | (out ? EPOLLOUT : 0),
				 .data.ptr = b};
	if ((b->armed != in || b->out != out) &&
	    epoll_ctl(s->epfd, EPOLL_CTL_MOD, b->e.fd, &ev) == 0) {
		b->armed = in;
		b->out = out;
	}
}

static void bell_arm(struct v4vd *s, struct dbell *b, bool on)
{
	bell_watch(s, b, on, b->out);
}

void v4vd_bell_owe(struct v4vd *s, struct dbell *b, unsigned bits)
{
	b->owed |= bits;
	bell_watch(s, b, b->armed, true);
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

/*
 * After reading the owner's packets: a kick it could not send because its
 * end was unwritable (our queue held its earlier packets) was for a
 * message it published before we read them.  So look at the send ring
 * now: park it (announce, re-check), or poll it if something waits.
 */
static void bell_repark(struct v4vd *s, struct dbell *b)
{
	if (b->has_tx && b->ring && !b->hot && !hv_tx_park(s->hv, b->ring)) {
		v4vd_bell_hot(s, b);
		s->last_move = v4vd_now_ns();
	}
}

/* Core callbacks only queue: v4vd_bell_reap() does the work after the
 * core call returns. */
static void bell_queue(struct v4vd *s, struct dbell *b, unsigned what)
{
	if (!b->todo) {
		b->todo_next = s->bell_todo;
		s->bell_todo = b;
	}
	b->todo |= what;
}

void v4vd_on_tx_ready(void *ctx, void *cookie)
{
	struct dbell *b = cookie;
	/* Unblocked, or a connection starts on it (core/deliver.c:tx_wake):
	 * polled from now on, until SPIN_NS pass with nothing moved. */
	struct v4vd *s = ctx;
	v4vd_bell_hot(s, b);
	s->last_move = v4vd_now_ns();
	/* Disarmed while blocked: listen for kicks (and blockers) again. */
	bell_queue(ctx, b, BELL_ARM);
}

void v4vd_on_ring_blocked(void *ctx, void *cookie)
{
	(void)ctx;
	((struct dbell *)cookie)->waiting = true;
}

void v4vd_on_ring_space(void *ctx, void *cookie)
{
	struct dbell *b = cookie;
	b->waiting = false;
	bell_queue(ctx, b, BELL_DRAIN | BELL_ARM);
}

/* The core let go of b's ring (unregistered, re-registered, dropped): b
 * names no ring from now on, and is buried by v4vd_bell_reap(). */
void v4vd_bell_dropped(struct v4vd *s, struct dbell *b)
{
	b->ring = NULL;
	b->has_tx = false;
	v4vd_bell_unlist(s, b); /* never pumped again */
	bell_queue(s, b, BELL_DROP);
}

void v4vd_bell_reap(struct v4vd *s)
{
	while (s->bell_todo) {
		struct dbell *b = s->bell_todo;
		unsigned what = b->todo;
		s->bell_todo = b->todo_next;
		b->todo = 0;
		if (what & BELL_DROP) {
			v4vd_bell_free(s, b); /* its one teardown: gives its fd back */
			continue;
		}
		if (what & BELL_DRAIN) {
			bell_drain(b);
			bell_repark(s, b);
		}
		if (what & BELL_ARM)
			bell_arm(s, b, true);
	}
}

/* A doorbell for the ring being registered; takes ownership of *fd once
 * v4vd_take_socket() accepts it. */
int v4vd_bell_new(struct v4vd *s, int *fd, struct dbell **out)
{
	struct dbell *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	*b =
	    (struct dbell){.e = {.kind = FD_BELL, .fd = -1}, .armed = true, .domid = V4V_DOMID_ANY};
	int e = v4vd_take_socket(s, *fd, &b->e);
	if (e) {
		v4vd_bell_free(s, b); /* *fd stays the caller's */
		return e;
	}
	b->e.fd = *fd;
	*fd = -1;
	fcntl(b->e.fd, F_SETFL, O_NONBLOCK);
	if ((e = v4vd_ep_add(s, &b->e)) < 0) {
		v4vd_bell_free(s, b);
		return e;
	}
	*out = b;
	return 0;
}

/* Off the kick, hot and work lists, out of epoll, closed; freed after the
 * batch. */
void v4vd_bell_free(struct v4vd *s, struct dbell *b)
{
	if (b->domid != V4V_DOMID_ANY)
		v4vd_fds_give(s, b->domid, 1);
	v4vd_bell_unlist(s, b);
	if (b->todo)
		for (struct dbell **pp = &s->bell_todo; *pp; pp = &(*pp)->todo_next)
			if (*pp == b) {
				*pp = b->todo_next;
				break;
			}
	v4vd_bury(s, &b->e);
}

/* The owner's end of the doorbell went away: so does its ring. */
void v4vd_bell_handle(struct v4vd *s, struct dbell *b, uint32_t events)
{
	if (!b->ring)
		return; /* dropped, buried by the next reap */
	if (events & (EPOLLHUP | EPOLLERR)) {
		hv_ring_drop(s->hv, b->ring); /* queues b's burial */
		v4vd_reap(s);
		return;
	}
	if (events & EPOLLOUT) {
		/* The owner drained its queue: the owed bits go now. */
		bell_watch(s, b, b->armed, false);
		if (b->owed)
			v4vd_on_ring_signal(s, b, b->owed);
		if (!(events & EPOLLIN))
			return;
	}
	/* Anything from the owner may be a notify (it consumed from its ring,
	 * lib/bell.c:notify_if_needed): wake the senders that now fit. */
	hv_ring_recheck(s->hv, b->ring);
	/* Or a kick: move its send ring first, and poll it for a while: the
	 * next message will likely come soon. */
	if (b->has_tx) {
		unsigned moved = v4vd_tx_pump(s, b); /* within its domain's budget (fair.c) */
		v4vd_reap(s); /* what the pump's callbacks queued, before we decide */
		if (moved) {
			v4vd_bell_hot(s, b);
			s->last_move = v4vd_now_ns();
		}
	}
	if (b->waiting || (b->has_tx && hv_tx_blocked(b->ring))) {
		bell_arm(s, b, false); /* keep the blocker until there is space */
	} else {
		bell_drain(b);
		bell_arm(s, b, true); /* level-triggered again, if it was kept */
		/* Nothing moved (a notify): park it rather than poll an idle
		 * ring, but only now that its packets are read. */
		bell_repark(s, b);
	}
}
