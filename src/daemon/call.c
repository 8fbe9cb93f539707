/* SPDX-License-Identifier: MIT */
/*
 * Call areas (wire/proto.h): each attached process's hypercalls in shared
 * memory, at the end of its staging memfd.  An area that had a call is
 * polled once a round, one call per round within its domain's budget
 * (fair.c charges it as a channel request), until it has been idle for
 * SPIN_NS; then it is parked with announce-then-recheck, and only a kick
 * (V4V_OP_CALL_KICK on the channel) brings it back.
 *
 * The area is the domain's memory, written by it at any moment: sub and
 * req_len are read once each and the request is copied out before
 * anything looks at it, so what is checked is what is served.  The
 * memfd is sealed against shrinking (take.c), so no access here faults.
 * (docs/ARCHITECTURE.md, "The call area".)
 */
#define _GNU_SOURCE
#include "v4vd.h"

#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/barrier.h"

void v4vd_call_kick(struct v4vd *s, struct dchan *ch)
{
	s->kicks_shm++;
	/* polled before the next look at sub: a call submitted after this
	 * store needs no kick, one before it is seen by that look. */
	v4v_store_relaxed(&ch->area->polled, 1);
	ch->call_last = v4vd_now_ns();
	if (ch->call_hot)
		return;
	ch->call_hot = true;
	ch->call_next = s->calls;
	s->calls = ch;
}

void v4vd_call_unlist(struct v4vd *s, struct dchan *ch)
{
	if (!ch->call_hot)
		return;
	for (struct dchan **pp = &s->calls; *pp; pp = &(*pp)->call_next)
		if (*pp == ch) {
			*pp = ch->call_next;
			break;
		}
	ch->call_hot = false;
}

/* Serve the call waiting in ch's area, if there is one. */
static bool call_serve(struct v4vd *s, struct dchan *ch)
{
	struct v4v_call_area *a = ch->area;
	uint32_t seq = v4v_load_acquire(&a->sub);
	if (seq == ch->call_seq)
		return false;
	uint64_t t0 = v4vd_now_ns();
	uint32_t n = v4v_load_relaxed(&a->req_len);
	size_t len = n <= sizeof(s->req) ? n : HV_REQ_TRUNCATED;
	if (len != HV_REQ_TRUNCATED)
		memcpy(&s->req, a->req, len);
	size_t rlen = v4vd_serve(s, ch, len, NULL, 0);
	memcpy(a->reply, &s->reply, rlen);
	v4v_store_relaxed(&a->reply_len, (uint32_t)rlen);
	v4v_store_release(&a->done, seq);
	ch->call_seq = seq;
	s->calls_shm++;
	if (v4v_should_wake(&a->waiting))
		syscall(SYS_futex, &a->done, FUTEX_WAKE, 1, NULL, NULL, 0);
	v4vd_req_spent(s, ch->dd, &s->req, len, v4vd_now_ns() - t0);
	return true;
}

/* Idle long enough: polled = 0, then one more look (the domain's half is
 * in lib/domain.c:area_call).  False when a call came in after all. */
static bool call_park(struct dchan *ch)
{
	struct v4v_call_area *a = ch->area;
	v4v_store_relaxed(&a->polled, 0);
	v4v_fence();
	if (v4v_load_acquire(&a->sub) == ch->call_seq)
		return true;
	v4v_store_relaxed(&a->polled, 1);
	return false;
}

bool v4vd_calls_pump(struct v4vd *s)
{
	bool served = false;
	uint64_t now = v4vd_now_ns();
	for (struct dchan **pp = &s->calls; *pp;) {
		struct dchan *ch = *pp;
		/* A call spent on a domain whose share is gone waits a round. */
		if (v4vd_req_budget(s, ch->dd) && call_serve(s, ch)) {
			ch->call_last = now;
			served = true;
			v4vd_reap(s);
		} else if (now - ch->call_last >= SPIN_NS && call_park(ch)) {
			*pp = ch->call_next;
			ch->call_hot = false;
			continue;
		}
		pp = &ch->call_next;
	}
	return served;
}
