/* SPDX-License-Identifier: MIT */
/*
 * Call areas (wire/proto.h): each attached process's hypercalls in shared
 * memory, at the end of its staging memfd.  The core serves a call
 * (core/serve.c:hv_serve_area: the area is the domain's memory, read once
 * and copied out before it is checked); this file keeps the list of areas
 * polled, wakes sleeping callers and charges the calls.  An area that had
 * a call is polled once a round, one call per round within its domain's
 * budget (fair.c charges it as a channel request), until it has been idle
 * for SPIN_NS; then it is parked with announce-then-recheck, and only a
 * kick (V4V_OP_CALL_KICK on the channel) brings it back.  The memfd is
 * sealed against shrinking (take.c), so no access faults.
 * (docs/ARCHITECTURE.md, "The call area".)
 */
#define _GNU_SOURCE
#include "v4vd.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/barrier.h"

void v4vd_call_kick(struct v4vd *s, struct dchan *ch)
{
	s->kicks_shm++;
	/* Polled before the next look at sub: a call submitted after this
	 * store needs no kick, one before it is seen by that look. */
	hv_area_poll(ch->area);
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

/* Serve the call waiting in ch's area, if there is one (the core's
 * hv_serve_area), and wake its caller if it sleeps.  *t is the clock as the
 * call began, and as it ended on return: one clock read per call. */
static bool call_serve(struct v4vd *s, struct dchan *ch, uint64_t *t)
{
	size_t len;
	bool wake;
	if (!hv_serve_area(s->hv, ch->hc, ch->area, &ch->call_seq, &s->req, &s->reply, &len, &wake))
		return false;
	v4vd_reap(s);
	s->requests++;
	ch->requests++;
	s->calls_shm++;
	if (wake)
		syscall(SYS_futex, &ch->area->done, FUTEX_WAKE, 1, NULL, NULL, 0);
	uint64_t t1 = v4vd_now_ns();
	v4vd_req_spent(s, ch->dd, &s->req, len, t1 - *t);
	*t = t1;
	return true;
}

/*
 * One round over the polled areas.  The list turns by one each round (its
 * head goes to the tail), so when a domain's budget covers fewer calls
 * than it has busy areas, every area comes first within as many rounds
 * as there are areas: none of its processes starves the others.  Returns
 * whether a call was served (then s->last_move is when the last ended).
 */
bool v4vd_calls_pump(struct v4vd *s)
{
	bool served = false;
	uint64_t now = v4vd_now_ns();
	struct dchan *last = NULL;
	/* Where we run, for callers that would spin on the same CPU
	 * (wire/proto.h); written only when it changed (a migration). */
	uint32_t cpu = (uint32_t)(sched_getcpu() + 1);
	for (struct dchan **pp = &s->calls; *pp;) {
		struct dchan *ch = *pp;
		/* Compared with our copy: the area's word is the domain's. */
		if (ch->call_cpu != cpu) {
			ch->call_cpu = cpu;
			v4v_store_relaxed(&ch->area->cpu, cpu);
		}
		/* A call spent on a domain whose share is gone waits a round. */
		if (v4vd_req_budget(s, ch->dd) && call_serve(s, ch, &now)) {
			ch->call_last = now;
			served = true;
		} else if (now - ch->call_last >= SPIN_NS && hv_area_park(ch->area, ch->call_seq)) {
			*pp = ch->call_next;
			ch->call_hot = false;
			continue;
		}
		last = ch;
		pp = &ch->call_next;
	}
	struct dchan *head = s->calls;
	if (head && head != last) {
		s->calls = head->call_next;
		head->call_next = NULL;
		last->call_next = head;
	}
	if (served)
		s->last_move = now; /* loop.c: SPIN_NS and LOOK_NS count from it */
	return served;
}
