/* SPDX-License-Identifier: MIT */
/*
 * Doorbells: v4vd's end of a ring's notification socketpair.  A token of
 * HV_SIG_* bits goes out on it (loop.c flushes them); the owner's packets
 * on it are kicks (pump its send ring) or a blocker left unread while its
 * send waits for space; its hang-up drops the ring.
 */
#define _GNU_SOURCE
#include "v4vd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "../common/util.h"

/* What epoll reports for b: EPOLLIN (kicks, blockers) unless a blocker is
 * kept, EPOLLOUT while a token is owed. */
static void bell_watch(struct v4vd *s, struct dbell *b, bool in, bool out)
{
	struct epoll_event ev = {.events = (in ? EPOLLIN : 0) | (out ? EPOLLOUT : 0),
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

void v4vd_on_tx_ready(void *ctx, void *cookie)
{
	struct dbell *b = cookie;
	v4vd_bell_hot(ctx, b);
	/* It was disarmed while blocked: listen for kicks (and blockers) again. */
	bell_arm(ctx, b, true);
}

void v4vd_on_ring_blocked(void *ctx, void *cookie)
{
	((struct dbell *)cookie)->waiting = true;
}

void v4vd_on_ring_space(void *ctx, void *cookie)
{
	struct dbell *b = cookie;
	b->waiting = false;
	bell_drain(b);
	bell_arm(ctx, b, true);
}

void v4vd_on_unmap(void *ctx, void *mem, uint32_t len, void *cookie)
{
	struct v4vd *s = ctx;
	munmap(mem, V4V_RING_HDR_SIZE + (size_t)len);
	s->mapped_bytes -= V4V_RING_HDR_SIZE + (size_t)len;
	if (cookie)
		v4vd_bell_free(s, cookie);
}

/* A doorbell for the ring being registered; takes ownership of fd. */
int v4vd_bell_new(struct v4vd *s, int *fd, struct dbell **out)
{
	int e = v4vd_is_seqpacket(*fd);
	if (e)
		return e;
	struct dbell *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	*b = (struct dbell){.e = {.kind = FD_BELL, .fd = *fd}, .armed = true};
	*fd = -1;
	fcntl(b->e.fd, F_SETFL, O_NONBLOCK);
	if ((e = v4vd_ep_add(s, &b->e)) < 0) {
		v4vd_bell_free(s, b);
		return e;
	}
	*out = b;
	return 0;
}

/* Off the kick and hot lists, out of epoll, closed; freed after the batch. */
void v4vd_bell_free(struct v4vd *s, struct dbell *b)
{
	v4vd_bell_unlist(s, b);
	v4vd_bury(s, &b->e);
}

/* The owner's end of the doorbell went away: so does its ring. */
void v4vd_bell_handle(struct v4vd *s, struct dbell *b, uint32_t events)
{
	if (events & (EPOLLHUP | EPOLLERR)) {
		hv_ring_drop(s->hv, b->ring); /* buries b */
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
	/* Anything from the owner is a kick: move its send ring first, and
	 * poll it for a while: the next message will likely come soon. */
	if (b->has_tx) {
		hv_tx_pump(s->hv, b->ring, TX_BUDGET);
		v4vd_bell_hot(s, b);
		s->last_move = v4vd_now_ns();
	}
	if (b->waiting || (b->has_tx && hv_tx_blocked(b->ring)))
		bell_arm(s, b, false); /* keep the blocker until there is space */
	else
		bell_drain(b);
}
