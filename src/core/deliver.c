/* SPDX-License-Identifier: MIT */
/*
 * Delivery: sendv (the hypervisor's copy into a destination ring), the
 * senders waiting for space (Argo's notify waiters, and send rings blocked
 * on a full destination), the send-ring pump and park of the fast path,
 * and notify.
 */
#include "hv_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/barrier.h"

/* A domain's wait on r, if it has one (at most waiters_per_ring to look at). */
static struct waiter *wait_of(struct hv_ring *r, const struct hv_domain *d)
{
	for (struct waiter *w = r->waits; w; w = w->rnext)
		if (w->c->d == d)
			return w;
	return NULL;
}

static void wait_free(struct hv_ring *r, struct waiter *w)
{
	*w->rprev = w->rnext;
	if (w->rnext)
		w->rnext->rprev = w->rprev;
	*w->cprev = w->cnext;
	if (w->cnext)
		w->cnext->cprev = w->cprev;
	r->nwait--;
	free(w);
}

/* Put w on c's list of waits. */
static void wait_own(struct waiter *w, struct hv_client *c)
{
	w->c = c;
	w->cnext = c->waits;
	w->cprev = &c->waits;
	if (c->waits)
		c->waits->cprev = &w->cnext;
	c->waits = w;
}

/*
 * Wait for space in r: one wait per (ring, source domain), as in Argo, so
 * waiters_per_ring counts domains.  A domain waiting again, from another
 * port or process, updates its wait to the largest need and marks it as
 * many, so the wake reaches all of the domain's senders (hv__wake).
 */
static int wait_add(struct hv *hv, struct hv_ring *r, struct hv_client *c, uint32_t need,
		    v4v_port_t src_port)
{
	struct waiter *w = wait_of(r, c->d);
	if (w) {
		if (w->c != c || w->src_port != src_port)
			w->many = true;
		if (need > w->need || (w->c == c && w->src_port == src_port))
			w->need = need;
		return 0;
	}
	if (r->nwait >= hv->lim.waiters_per_ring) /* >=: the limit may be lowered (reload) */
		return -EBUSY;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct waiter){.r = r, .need = need, .src_port = src_port};
	w->rnext = r->waits;
	w->rprev = &r->waits;
	if (r->waits)
		r->waits->rprev = &w->rnext;
	r->waits = w;
	wait_own(w, c);
	r->nwait++;
	/* Tell the owner someone waits, so it notifies after consuming. */
	if (r->cookie)
		hv->ops.ring_signal(hv->ctx, r->cookie, HV_SIG_WAITER);
	return 0;
}

/* Wake one sender: through its own ring's doorbell if it has one. */
static void wake_one(struct hv *hv, struct hv_client *c, v4v_port_t port)
{
	struct hv_ring *own = hv__ring_at(hv, c->d->domid, port);
	if (own && own->cookie && own->owner == c) {
		own->space_wait = false;
		hv->ops.ring_space(hv->ctx, own->cookie);
	} else {
		hv->ops.signal(hv->ctx, c->cookie);
	}
}

/* Wake a wait: its sender, or (many) every process of the domain and
 * every one of its rings whose send waits: bounded by the domain's own
 * limits (clients_per_domain, rings_per_domain). */
void hv__wake(struct hv *hv, const struct waiter *w)
{
	if (!w->many) {
		wake_one(hv, w->c, w->src_port);
		return;
	}
	for (struct hv_client *o = w->c->d->clients; o; o = o->next) {
		hv->ops.signal(hv->ctx, o->cookie);
		for (struct hv_ring *r = o->rings; r; r = r->cnext)
			if (r->space_wait && r->cookie) {
				r->space_wait = false;
				hv->ops.ring_space(hv->ctx, r->cookie);
			}
	}
}

/* A send from (c, src_port) got through: its wait is done, unless other
 * senders of the domain share it.  It ends with this send, not with a
 * wake, so the sender's doorbell is told as a wake would tell it: else it
 * keeps the blocker it was given with the EAGAIN unread, its socket never
 * polls writable again and its send ring is never pumped from a kick. */
static void wait_cancel(struct hv *hv, struct hv_ring *r, struct hv_client *c, v4v_port_t src_port)
{
	struct waiter *w = wait_of(r, c->d);
	if (!w || w->many || w->c != c || w->src_port != src_port)
		return;
	wait_free(r, w);
	struct hv_ring *own =
	    src_port == V4V_PORT_ANY ? NULL : hv__ring_at(hv, c->d->domid, src_port);
	if (own && own->space_wait && own->cookie && own->owner == c) {
		own->space_wait = false;
		hv->ops.ring_space(hv->ctx, own->cookie);
	}
}

/* Forget every wait of c (it is going away): a shared one passes to
 * another process of the domain. */
void hv__wait_cancel_all(struct hv *hv, struct hv_client *c)
{
	while (c->waits) {
		struct waiter *w = c->waits;
		struct hv_client *heir = c->d->clients == c ? c->next : c->d->clients;
		hv->removal_work++;
		if (w->many && heir) {
			*w->cprev = w->cnext;
			if (w->cnext)
				w->cnext->cprev = w->cprev;
			wait_own(w, heir);
		} else {
			wait_free(w->r, w);
		}
	}
}

void hv__wait_drop_ring(struct hv *hv, struct hv_ring *r)
{
	while (r->waits) {
		struct waiter *w = r->waits;
		hv->removal_work++;
		hv__wake(hv, w);
		wait_free(r, w);
	}
}

/*
 * Block r's send ring on dest, full for a message of need bytes.  dest
 * joins hv->full with its first blocker; block_min is a lower bound of its
 * blockers' footprints (exact after each hv__tx_recheck, stale-low when one
 * leaves otherwise, which costs one more look, never a missed wake).
 */
static void tx_block(struct hv *hv, struct hv_ring *r, struct hv_ring *dest, uint32_t need)
{
	r->blocked_on = dest;
	r->blocked_need = need;
	if (!dest->blockers) {
		dest->fnext = hv->full;
		dest->fprev = &hv->full;
		if (hv->full)
			hv->full->fprev = &dest->fnext;
		hv->full = dest;
		dest->block_min = UINT64_MAX;
	}
	if (v4v_msg_footprint(need) < dest->block_min)
		dest->block_min = v4v_msg_footprint(need);
	r->dnext = dest->blockers;
	r->dprev = &dest->blockers;
	if (dest->blockers)
		dest->blockers->dprev = &r->dnext;
	dest->blockers = r;
	if (dest->cookie)
		hv->ops.ring_signal(hv->ctx, dest->cookie, HV_SIG_WAITER);
}

void hv__tx_unlink(struct hv_ring *r)
{
	struct hv_ring *dest = r->blocked_on;
	if (!dest)
		return;
	*r->dprev = r->dnext;
	if (r->dnext)
		r->dnext->dprev = r->dprev;
	r->blocked_on = NULL;
	if (dest->blockers)
		return;
	*dest->fprev = dest->fnext; /* its last blocker: off hv->full */
	if (dest->fnext)
		dest->fnext->fprev = dest->fprev;
}

static void tx_unblock(struct hv *hv, struct hv_ring *r)
{
	hv__tx_unlink(r);
	hv->ops.tx_ready(hv->ctx, r->cookie);
}

bool hv__tx_recheck(struct hv *hv, struct hv_ring *dest, uint32_t space, bool gone, uint64_t *work)
{
	uint64_t min = UINT64_MAX;
	for (struct hv_ring *r = dest->blockers, *next; r; r = next) {
		uint64_t need = v4v_msg_footprint(r->blocked_need);
		next = r->dnext;
		if (work)
			(*work)++;
		if (gone || need <= space)
			tx_unblock(hv, r);
		else if (need < min)
			min = need;
	}
	dest->block_min = min;
	return dest->blockers != NULL;
}

/*
 * Each polling round (loop.c) re-checks the rings send rings are blocked
 * on: one rx_ptr read per destination, and its blockers only when it has
 * room for the smallest of them, so a thousand send rings blocked on one
 * full ring cost what one does (docs/SECURITY.md, "Fair shares of v4vd").
 */
void hv_poll_waiters(struct hv *hv)
{
	if (hv->full)
		hv->poll_rounds++;
	for (struct hv_ring *d = hv->full, *next; d; d = next) {
		uint32_t rx, space;
		next = d->fnext; /* unblocking takes d, never another, off the list */
		hv->poll_work++;
		if (!hv__ring_read_rx(hv, d, &rx))
			hv__tx_recheck(hv, d, 0, true, &hv->poll_work); /* the retry reports it */
		else if ((space = v4v_ring_space(d->len, rx, d->tx)) >= d->block_min)
			hv__tx_recheck(hv, d, space, false, &hv->poll_work);
	}
}

uint64_t hv_poll_rounds(const struct hv *hv)
{
	return hv->poll_rounds;
}

uint64_t hv_poll_work(const struct hv *hv)
{
	return hv->poll_work;
}

/* Wake (and forget) every waiter whose message now fits. */
static void wait_recheck(struct hv *hv, struct hv_ring *r)
{
	uint32_t rx;
	if (!hv__ring_read_rx(hv, r, &rx))
		return;
	uint32_t space = v4v_ring_space(r->len, rx, r->tx);
	bool tx_left = r->blockers && hv__tx_recheck(hv, r, space, false, NULL);
	for (struct waiter *w = r->waits, *next; w; w = next) {
		next = w->rnext;
		if (v4v_msg_footprint(w->need) <= space) {
			hv__wake(hv, w);
			wait_free(r, w);
		}
	}
	/* Still waiting: the owner must notify again after consuming more. */
	if ((r->nwait || tx_left) && r->cookie)
		hv->ops.ring_signal(hv->ctx, r->cookie, HV_SIG_WAITER);
}

void hv_ring_recheck(struct hv *hv, struct hv_ring *r)
{
	if (r->nwait || r->blockers)
		wait_recheck(hv, r);
}

/*
 * The free space in r for a message of footprint need, and the rx it was
 * computed from.  rx_ptr is read and validated for every send, and for
 * the first message of each run a pump writes to one ring (fresh); the
 * rest of a run use the value read for it when that leaves room: the
 * reader only ever moves rx forward (frees space), so the older value
 * under-states the space, never over-states it.  (A reader moving rx
 * backwards meanwhile gets its own unread bytes overwritten, never a byte
 * outside its ring.)  False: the ring is broken.
 */
static bool ring_space(struct hv *hv, struct hv_ring *r, uint32_t need, bool fresh, uint32_t *rx,
		       uint32_t *space)
{
	if (r->broken)
		return false;
	if (!fresh) {
		*rx = r->last_rx;
		*space = v4v_ring_space(r->len, *rx, r->tx);
		if (need <= *space)
			return true;
	}
	if (!hv__ring_read_rx(hv, r, rx))
		return false;
	*space = v4v_ring_space(r->len, *rx, r->tx);
	return true;
}

/*
 * Make what deliver() wrote to hv->unpub visible: store its tx_ptr, then
 * ring the doorbell only if the reader had caught up with everything
 * before those messages.  Pairs with the reader's fence between storing
 * rx_ptr and re-reading tx_ptr before it sleeps (rx.c): of the two
 * store-fence-load sequences at least one sees the other's store, so
 * either the reader sees our messages or we see it caught up.
 */
static void publish(struct hv *hv)
{
	struct hv_ring *r = hv->unpub;
	if (!r)
		return;
	hv->unpub = NULL;
	/* Release: the message bytes are visible before the new tx_ptr. */
	v4v_store_release(&r->mem->tx_ptr, r->tx);
	if (!r->cookie) {
		hv->ops.signal(hv->ctx, r->owner->cookie);
		return;
	}
	v4v_fence();
	if (v4v_load_relaxed(&r->mem->rx_ptr) == hv->unpub_from)
		hv->ops.ring_signal(hv->ctx, r->cookie, HV_SIG_DATA);
}

static bool is_syn(uint32_t message_type)
{
	return message_type == V4V_MT_SYN || message_type == V4V_MT_SYN_SPARE;
}

/*
 * Deliver one message of n payload bytes from (c's domain, src_port) to
 * dst: the hypervisor's copy.  Returns n or -errno; -EAGAIN with *full set
 * when the destination ring lacks room now (the caller decides how to wait).
 * *spare non-NULL: a SYN_SPARE may take a spare of the listener
 * (wire/proto.h), whose ring *spare_ring is then; else it is a SYN.
 */
static long deliver(struct hv *hv, struct hv_client *c, v4v_port_t src_port,
		    const struct v4v_addr *dst, uint32_t message_type, const struct v4v_seg *seg,
		    unsigned nseg, uint64_t n, struct hv_ring **to, struct hv_ring **spare_ring)
{
	struct hv_domain *sd = c->d;
	if (message_type == V4V_MT_SYN_TAKEN)
		return -EINVAL; /* v4vd's word about a spare: no domain's */
	if (n > V4V_RING_MAX_LEN)
		return -EMSGSIZE;
	struct hv_domain *dd = hv_domain_find(hv, dst->domain_id);
	if (!dd)
		return -ESRCH;

	/* The source is stamped here: the caller's domid, never its claim. */
	struct v4v_addr src = {.aport = src_port, .domain_id = sd->domid};
	switch (hv_fw_check(hv, &src, dst, NULL)) {
	case HV_FW_REJECT:
		sd->stats.rejected++;
		if (hv->ops.rejected)
			hv->ops.rejected(hv->ctx, &src, dst);
		return -EACCES;
	case HV_FW_DROP: sd->stats.dropped++; return (long)n;
	case HV_FW_ACCEPT: break;
	}

	bool syn = is_syn(message_type);
	struct hv_ring *r = hv__ring_route(hv, dst, sd->domid);
	uint32_t rx, space;
	if (!r ||
	    !ring_space(hv, r, (uint32_t)v4v_msg_footprint(n), syn || hv->unpub != r, &rx, &space))
		return -ECONNREFUSED;
	*to = r;
	/* A spare taken: the request says which, after the client's bytes. */
	struct hv_ring *sp = NULL;
	if (message_type == V4V_MT_SYN_SPARE && spare_ring && n <= V4V_SYN_SPARE_MAX &&
	    n + sizeof(uint32_t) <= v4v_ring_max_payload(r->len))
		sp = hv__spare_pick(hv, r, sd->domid);
	uint32_t port = sp ? sp->aport : 0;
	uint64_t len = n + (sp ? sizeof(port) : 0);
	uint32_t need = (uint32_t)v4v_msg_footprint(len);
	if (len > v4v_ring_max_payload(r->len))
		return -EMSGSIZE;
	if (syn) {
		int e = hv__syn_admit(hv, r, sd->domid, rx);
		if (e)
			return e;
	}
	if (need > space) {
		sd->stats.eagain++;
		r->stats.eagain++;
		return -EAGAIN;
	}

	struct v4v_seg all[V4V_MAX_IOV + 1];
	if (sp) {
		memcpy(all, seg, nseg * sizeof(*seg));
		all[nseg++] = (struct v4v_seg){&port, sizeof(port)};
		seg = all;
		hv__spare_take(hv, sp, sd->domid);
		*spare_ring = sp;
	}
	struct v4v_ring_message_header h = {
	    .len = (uint32_t)(V4V_MSG_HDR_SIZE + len),
	    .source = src,
	    .message_type = sp	  ? V4V_MT_SYN_TAKEN
			    : syn ? V4V_MT_SYN
				  : message_type,
	};
	if (hv->unpub != r) {
		publish(hv);
		hv->unpub = r;
		hv->unpub_from = r->tx;
	}
	r->tx = v4v_ring_put(r->mem->ring, r->len, r->tx, &h, seg, nseg);
	r->written += need;
	if (syn)
		hv__syn_note(r, sd->domid);
	if (r->nwait)
		wait_cancel(hv, r, c, src_port);
	sd->stats.tx_msgs++;
	sd->stats.tx_bytes += n;
	dd->stats.rx_msgs++;
	dd->stats.rx_bytes += n;
	r->stats.rx_msgs++;
	r->stats.rx_bytes += n;
	if (!hv->batching)
		publish(hv);
	return (long)n;
}

/*
 * A send ring about to be written: unpark it (its owner's next message
 * needs no kick; the shell polls it until it idles again, loop.c).  The
 * owner reading need_kick set a moment ago only kicks once for nothing.
 */
static void tx_wake(struct hv *hv, struct hv_ring *r)
{
	if (!r || !r->cookie || !r->txmem || r->tx_broken || r->blocked_on)
		return;
	v4v_store_relaxed(&r->txmem->need_kick, 0);
	hv->ops.tx_ready(hv->ctx, r->cookie);
}

long hv_sendv(struct hv *hv, struct hv_client *c, v4v_port_t src_port, const struct v4v_addr *dst,
	      uint32_t message_type, const struct v4v_seg *seg, unsigned nseg,
	      uint32_t *max_message, v4v_port_t *spare)
{
	uint64_t n = 0;
	struct hv_ring *to = NULL, *sp = NULL;

	if (max_message)
		*max_message = 0;
	if (spare)
		*spare = 0;

	if (nseg > V4V_MAX_IOV)
		return -EINVAL;
	for (unsigned i = 0; i < nseg; i++)
		n += seg[i].len;
	long r = deliver(hv, c, src_port, dst, message_type, seg, nseg, n, &to, spare ? &sp : NULL);
	if (r >= 0 && is_syn(message_type)) {
		/* A connection starts: both ends write next (their data, or a
		 * FIN), down send rings that may have been idle (pooled). */
		struct hv_ring *own = hv__ring_at(hv, c->d->domid, src_port);
		tx_wake(hv, own && own->owner == c ? own : NULL);
		tx_wake(hv, sp);
	}
	if (sp) {
		*spare = sp->aport;
		to = sp; /* what the client will send to */
	}
	if (to && max_message)
		*max_message = v4v_ring_max_payload(to->len);
	if (r != -EAGAIN || !to)
		return r;
	int err = wait_add(hv, to, c, (uint32_t)n, src_port);
	if (err)
		return err;
	struct hv_ring *own = hv__ring_at(hv, c->d->domid, src_port);
	if (own && own->cookie && own->owner == c) {
		own->space_wait = true; /* a shared wait's wake finds it (hv__wake) */
		hv->ops.ring_blocked(hv->ctx, own->cookie);
	}
	return -EAGAIN;
}

static void tx_break(struct hv *hv, struct hv_ring *r)
{
	struct v4v_addr a = hv__ring_addr(r);
	r->tx_broken = true;
	hv__post_event(hv, r, V4V_EV_RING_BROKEN, &a);
}

/* Messages a pump delivers before it publishes them even to the same ring. */
enum { PUBLISH_EVERY = 32 };

unsigned hv_tx_pump(struct hv *hv, struct hv_ring *r, unsigned budget, int64_t *bytes)
{
	if (!r->txmem || r->tx_broken || r->blocked_on)
		return 0;
	/* Acquire: the messages up to prod are fully written. Read it once. */
	uint32_t prod = v4v_load_acquire(&r->txmem->tx_ptr);
	if (!v4v_ring_ptr_ok(prod, r->txlen)) {
		tx_break(hv, r);
		return 0;
	}
	unsigned moved = 0;
	hv->batching = true; /* publish() once per run of messages to one ring */
	while (moved < budget && (!bytes || *bytes > 0) && r->txhead != prod) {
		struct v4v_msg m;
		struct hv_ring *full = NULL;
		if (v4v_ring_peek(r->txmem->ring, r->txlen, r->txhead, prod, &m) != 1) {
			tx_break(hv, r);
			break;
		}
		struct v4v_addr dst = {.aport = m.source.aport, .domain_id = m.source.domain_id};
		long e = deliver(hv, r->owner, r->aport, &dst, m.message_type, m.seg, 2, m.len,
				 &full, NULL);
		if (e == -EAGAIN && full) {
			tx_block(hv, r, full, m.len);
			break;
		}
		if (e < 0)
			hv__post_event_err(hv, r, V4V_EV_SEND_FAILED, &dst, (uint32_t)-e);
		r->txhead = m.next_rx;
		moved++;
		if (bytes)
			*bytes -= (int64_t)(m.len + sizeof(struct v4v_ring_message_header));
		if (moved % PUBLISH_EVERY == 0)
			publish(hv); /* let the reader start on them */
	}
	hv->batching = false;
	publish(hv);
	if (moved == 0)
		return 0;
	/* Release: we are done reading what we hand back. */
	v4v_store_release(&r->txmem->rx_ptr, r->txhead);
	/* The waker's fence pairs with the owner's announce of want_space
	 * before it re-reads rx_ptr (lib/tx.c, v4v__tx_wait): one of us sees
	 * the other (docs/ARCHITECTURE.md, "Shared-memory handshakes"). */
	if (v4v_should_wake(&r->txmem->want_space))
		hv->ops.ring_space(hv->ctx, r->cookie);
	return moved;
}

bool hv_tx_blocked(const struct hv_ring *r)
{
	return r->blocked_on != NULL;
}

bool hv_tx_park(struct hv *hv, struct hv_ring *r)
{
	(void)hv;
	if (!r->txmem || r->tx_broken || r->blocked_on)
		return true;
	/* Announce, then re-check.  Pairs with the owner's fence between
	 * publishing tx_ptr and reading need_kick: either it kicks us or we see
	 * its message now. */
	v4v_announce(&r->txmem->need_kick);
	uint32_t prod = v4v_load_acquire(&r->txmem->tx_ptr);
	if (prod == r->txhead)
		return true;
	v4v_store_relaxed(&r->txmem->need_kick, 0);
	return false;
}

static void notify_one(struct hv *hv, struct hv_client *c, struct v4v_ring_data_ent *e)
{
	uint32_t need = e->space_required, rx;
	struct hv_ring *r = hv__ring_route(hv, &e->ring, c->d->domid);

	e->flags = 0;
	e->pad = 0;
	e->max_message_size = 0;
	if (!r || !hv__ring_read_rx(hv, r, &rx))
		return;
	e->flags = V4V_RING_EXISTS;
	if (r->partner == V4V_DOMID_ANY)
		e->flags |= V4V_RING_SHARED;
	if (rx == r->tx)
		e->flags |= V4V_RING_EMPTY;
	e->max_message_size = v4v_ring_max_payload(r->len);
	if (need > e->max_message_size) {
		e->flags |= V4V_RING_EMSGSIZE;
		wait_cancel(hv, r, c, V4V_PORT_ANY);
	} else if (v4v_msg_footprint(need) <= v4v_ring_space(r->len, rx, r->tx)) {
		e->flags |= V4V_RING_SUFFICIENT;
		wait_cancel(hv, r, c, V4V_PORT_ANY);
	} else if (wait_add(hv, r, c, need, V4V_PORT_ANY) != 0) {
		e->flags |= V4V_RING_EBUSY;
	}
}

int hv_notify(struct hv *hv, struct hv_client *c, struct v4v_ring_data_ent *ent, unsigned n)
{
	if (n > V4V_MAX_NOTIFY)
		return -EINVAL;
	/* The owner calling notify means it may have freed space: re-check. */
	for (struct hv_client *o = c->d->clients; o; o = o->next)
		for (struct hv_ring *r = o->rings; r; r = r->cnext)
			wait_recheck(hv, r);
	for (unsigned i = 0; i < n; i++)
		notify_one(hv, c, &ent[i]);
	return 0;
}
