/* SPDX-License-Identifier: MIT */
/*
 * The ring table: the hash of registered rings keyed by (domain, port,
 * partner), register, re-register, unregister, drop, lookup and routing,
 * attaching a send ring, and the validated read of a ring's rx_ptr.
 */
#include "hv_priv.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../common/barrier.h"

static unsigned bucket_of(uint16_t domid, v4v_port_t aport)
{
	uint32_t h = aport * 0x9E3779B1u ^ domid * 0x85EBCA6Bu;
	return (h ^ h >> 16) % RING_BUCKETS;
}

/* Partner is part of the key: exact and wildcard rings coexist. */
struct hv_ring *hv__ring_find(struct hv *hv, uint16_t domid, v4v_port_t aport, uint16_t partner)
{
	for (struct hv_ring *r = hv->bucket[bucket_of(domid, aport)]; r; r = r->hnext)
		if (r->domid == domid && r->aport == aport && r->partner == partner)
			return r;
	return NULL;
}

/* The ring a send from `from` to dst lands in: exact partner first.  A
 * spare (wildcard, never exact) is reached by none. */
struct hv_ring *hv__ring_route(struct hv *hv, const struct v4v_addr *dst, uint16_t from)
{
	struct hv_ring *r = hv__ring_find(hv, dst->domain_id, dst->aport, from);
	if (!r)
		r = hv__ring_find(hv, dst->domain_id, dst->aport, V4V_DOMID_ANY);
	return r && !r->spare ? r : NULL;
}

/* Any ring of domid on aport, whatever its partner: a sender's own ring. */
struct hv_ring *hv__ring_at(struct hv *hv, uint16_t domid, v4v_port_t aport)
{
	for (struct hv_ring *r = hv->bucket[bucket_of(domid, aport)]; r; r = r->hnext)
		if (r->domid == domid && r->aport == aport)
			return r;
	return NULL;
}

struct hv_ring *hv_ring_next(struct hv *hv, struct hv_ring *prev)
{
	unsigned b = 0;
	if (prev) {
		if (prev->hnext)
			return prev->hnext;
		b = bucket_of(prev->domid, prev->aport) + 1;
	}
	for (; b < RING_BUCKETS; b++)
		if (hv->bucket[b])
			return hv->bucket[b];
	return NULL;
}

struct v4v_addr hv__ring_addr(const struct hv_ring *r)
{
	return (struct v4v_addr){.aport = r->aport, .domain_id = r->domid};
}

/*
 * Read rx_ptr once.  The acquire pairs with the owner's release store after
 * it has finished reading the bytes it consumed, so our later writes into
 * that space cannot overtake its reads.  A bad value breaks the ring.
 */
bool hv__ring_read_rx(struct hv *hv, struct hv_ring *r, uint32_t *rx)
{
	if (r->broken)
		return false;
	uint32_t v = v4v_load_acquire(&r->mem->rx_ptr);
	if (!v4v_ring_ptr_ok(v, r->len)) {
		struct v4v_addr a = hv__ring_addr(r);
		r->broken = true;
		hv__post_event(hv, r, V4V_EV_RING_BROKEN, &a);
		return false;
	}
	r->last_rx = v;
	*rx = v;
	return true;
}

void hv_ring_info(const struct hv_ring *r, struct hv_ring_info *out)
{
	*out = (struct hv_ring_info){
	    .domid = r->domid,
	    .partner = r->partner,
	    .aport = r->aport,
	    .len = r->len,
	    .rx = r->last_rx,
	    .tx = r->tx,
	    .waiters = r->nwait,
	    .broken = r->broken,
	    .spare = r->spare,
	    .stats = r->stats,
	};
}

/* Take r off its owner's list. */
static void ring_unown(struct hv_ring *r)
{
	struct hv_ring **pp;
	for (pp = &r->owner->rings; *pp != r; pp = &(*pp)->cnext)
		;
	*pp = r->cnext;
}

/* The partner index: rings naming an exact partner, by partner. */
static void partner_link(struct hv *hv, struct hv_ring *r)
{
	if (r->partner > V4V_DOMID_MAX)
		return;
	struct hv_ring **head = &hv->by_partner[r->partner];
	r->pnext = *head;
	r->pprev = head;
	if (*head)
		(*head)->pprev = &r->pnext;
	*head = r;
}

static void partner_unlink(struct hv_ring *r)
{
	if (!r->pprev)
		return;
	*r->pprev = r->pnext;
	if (r->pnext)
		r->pnext->pprev = r->pprev;
	r->pprev = NULL;
}

/* ---- spares ----------------------------------------------------------- */

/* Take sp off its listener's list (it stays a spare if it was one). */
static void spare_unlink(struct hv_ring *sp)
{
	struct hv_ring *l = sp->spare_of;
	if (!l)
		return;
	struct hv_ring **pp = &l->spares;
	while (*pp != sp)
		pp = &(*pp)->snext;
	*pp = sp->snext;
	l->nspares--;
	sp->spare_of = sp->snext = NULL;
}

/* A listener going: its spares stay spares of nobody (unreachable) until
 * their owner unregisters them.  Bounded by V4V_SPARES_MAX. */
static void spares_orphan(struct hv_ring *l)
{
	while (l->spares)
		spare_unlink(l->spares);
}

int hv_ring_spare(struct hv *hv, struct hv_client *c, v4v_port_t aport, uint16_t partner,
		  v4v_port_t listener)
{
	uint16_t domid = c->d->domid;
	struct hv_ring *r = hv__ring_find(hv, domid, aport, partner);
	if (listener == V4V_PORT_ANY) {
		/* Take it back: unregister it if no connect has taken it.  A
		 * taken one is keyed by its client now, and (aport, any) may be
		 * another ring: only a spare of c's is ever dropped here. */
		if (partner != V4V_DOMID_ANY)
			return -EINVAL;
		if (!r || r->owner != c || !r->spare)
			return -ENOENT;
		hv_ring_drop(hv, r);
		return 0;
	}
	struct hv_ring *l = hv__ring_find(hv, domid, listener, V4V_DOMID_ANY);
	if (!r || r->owner != c || !l || l->owner != c)
		return -ENOENT;
	/* A connection ring (so never a listener, nor a spare already) with a
	 * doorbell to hear of its connection on. */
	if (partner == V4V_DOMID_ANY || !r->cookie || l->spare)
		return -EINVAL;
	if (hv__ring_find(hv, domid, aport, V4V_DOMID_ANY))
		return -EEXIST;
	if (l->nspares >= V4V_SPARES_MAX)
		return -ENOSPC;
	/* Its old partner can reach it no more: what it waited for here, or
	 * had blocked on it, fails as against a ring that went. */
	partner_unlink(r);
	r->partner = V4V_DOMID_ANY;
	r->spare = true;
	hv__tx_recheck(hv, r, 0, true, &hv->removal_work);
	hv__wait_drop_ring(hv, r);
	struct hv_ring **pp = &l->spares;
	while (*pp)
		pp = &(*pp)->snext;
	*pp = r;
	r->spare_of = l;
	l->nspares++;
	return 0;
}

struct hv_ring *hv__spare_pick(struct hv *hv, struct hv_ring *l, uint16_t domid)
{
	/* Skip one whose port domid already has an exact ring on: the key
	 * (domain, port, partner) stays unique. */
	for (struct hv_ring *sp = l->spares; sp; sp = sp->snext)
		if (!sp->broken && !hv__ring_find(hv, sp->domid, sp->aport, domid))
			return sp;
	return NULL;
}

void hv__spare_take(struct hv *hv, struct hv_ring *sp, uint16_t domid)
{
	spare_unlink(sp);
	sp->spare = false;
	sp->partner = domid;
	partner_link(hv, sp);
}

/* Unlink r from the hash, its owner and its domain, and release it.  The
 * work is what r touches: its hash chain, its waits and blockers. */
static void ring_remove(struct hv *hv, struct hv_ring *r)
{
	struct hv_ring **pp = &hv->bucket[bucket_of(r->domid, r->aport)];
	while (*pp != r)
		pp = &(*pp)->hnext;
	*pp = r->hnext;
	ring_unown(r);
	partner_unlink(r);
	spare_unlink(r);
	spares_orphan(r);
	r->owner->d->nrings--;
	r->owner->d->ring_bytes -= r->len + r->txlen;
	hv__tx_unlink(r);
	hv__tx_recheck(hv, r, 0, true, &hv->removal_work);
	if (r->txmem)
		hv->ops.unmap(hv->ctx, r->txmem, r->txlen, NULL);
	/* Senders waiting for space here will never get it: wake them to fail.
	 * The ring is unhashed first so a waiter's own ring is never r. */
	hv__wait_drop_ring(hv, r);
	hv->ops.unmap(hv->ctx, r->mem, r->len, r->cookie);
	hv__syn_free(r);
	free(r);
}

/*
 * Let go of r's send ring and of its wait for room in a destination, as a
 * re-registration does: a send ring goes with the doorbell it was attached
 * with, so the new registration brings its own (or none).  No tx_ready: the
 * doorbell that would hear it is being replaced.
 */
static void ring_tx_detach(struct hv *hv, struct hv_ring *r)
{
	hv__tx_unlink(r);
	if (!r->txmem)
		return;
	hv->ops.unmap(hv->ctx, r->txmem, r->txlen, NULL);
	r->owner->d->ring_bytes -= r->txlen;
	r->txmem = NULL;
	r->txlen = r->txhead = 0;
	r->tx_broken = false;
}

/*
 * Tell owners of rings that name r's domain as partner that r is gone:
 * those of other domains, and those of r's own domain too (two sockets of
 * one domain, or a relay and a program in it, are peers like any others;
 * docs/ARCHITECTURE.md, "A domain's death").  r is out of the table
 * already, so its owner never hears of r as of a peer's ring; a client
 * being freed is not told of its own rings, which all go with it.
 */
static void tell_ring_gone(struct hv *hv, const struct hv_client *owner, uint16_t domid,
			   v4v_port_t aport)
{
	struct v4v_addr gone = {.aport = aport, .domain_id = domid};
	if (domid > V4V_DOMID_MAX)
		return;
	for (struct hv_ring *r = hv->by_partner[domid]; r; r = r->pnext) {
		hv->removal_work++;
		if (!(r->owner == owner && owner->freeing))
			hv__post_event(hv, r, V4V_EV_RING_GONE, &gone);
	}
}

void hv__tell_partners_gone(struct hv *hv, uint16_t domid)
{
	struct v4v_addr dead = {.domain_id = domid};
	for (struct hv_ring *r = hv->by_partner[domid]; r; r = r->pnext) {
		hv->removal_work++;
		hv__post_event(hv, r, V4V_EV_PARTNER_GONE, &dead);
	}
}

uint64_t hv_removal_work(const struct hv *hv)
{
	return hv->removal_work;
}

uint16_t hv_ring_domid(const struct hv_ring *r)
{
	return r->domid;
}

/*
 * Every refusal of a registration, checked before anything changes, so that
 * a refused request leaves the ring it names exactly as it was, or absent
 * (docs/SECURITY.md, "Re-registration").  *old is the ring re-registered, or
 * NULL for a new one.  A send ring needs a doorbell to be kicked on; a
 * re-registration's replaces the old one, whose bytes are counted out.
 */
static int register_check(struct hv *hv, struct hv_client *c, const struct v4v_register_ring *reg,
			  uint32_t flags, const void *cookie, const void *txmem, uint32_t txlen,
			  struct hv_ring **old)
{
	struct hv_domain *d = c->d;
	uint64_t max = hv->lim.ring_bytes_per_domain;

	if (flags & ~V4V_REGISTER_FAIL_EXIST || reg->pad != 0)
		return -EINVAL;
	if (!v4v_ring_len_ok(reg->len) || reg->len > hv->lim.ring_len_max)
		return -EINVAL;
	if (reg->partner_id > V4V_DOMID_MAX && reg->partner_id != V4V_DOMID_ANY)
		return -EINVAL;
	struct hv_ring *r = hv__ring_find(hv, d->domid, reg->aport, reg->partner_id);
	*old = r;
	if (r && (flags & V4V_REGISTER_FAIL_EXIST || r->len != reg->len || r->owner->d != d))
		return -EEXIST;
	if (!r && d->nrings >= hv->lim.rings_per_domain)
		return -ENOSPC;
	if (!r && d->ring_bytes + reg->len > max)
		return -ENOSPC;
	if (!txmem)
		return 0;
	if (!v4v_ring_len_ok(txlen) || txlen > hv->lim.ring_len_max || !cookie)
		return -EINVAL;
	uint64_t bytes = d->ring_bytes + txlen;
	bytes = r ? bytes - r->txlen : bytes + reg->len;
	return bytes > max ? -ENOSPC : 0;
}

/* Re-registration: new mapping, keep tx if the new ring agrees; the old
 * doorbell and send ring go (register attaches any new send ring after),
 * the waiters on the ring stay, re-checked against the new memory. */
static void ring_reregister(struct hv *hv, struct hv_client *c, struct hv_ring *r,
			    struct v4v_ring *mem, void *cookie)
{
	uint32_t tx = v4v_load_relaxed(&mem->tx_ptr);
	if (v4v_ring_ptr_ok(tx, r->len))
		r->tx = tx;
	ring_tx_detach(hv, r);
	hv->ops.unmap(hv->ctx, r->mem, r->len, r->cookie);
	r->mem = mem;
	r->cookie = cookie;
	r->broken = false;
	hv__syn_free(r); /* new memory: its byte count starts over */
	/* A spare re-registered is a wildcard ring like any other again. */
	spare_unlink(r);
	r->spare = false;
	/*
	 * Another process of the domain may re-register: the ring is now its
	 * memory and its doorbell, so it is its ring, told its events and
	 * removed when it goes (else the shell's doorbell would outlive the
	 * client it names).
	 */
	if (r->owner != c) {
		ring_unown(r);
		r->owner = c;
		r->cnext = c->rings;
		c->rings = r;
	}
	v4v_store_release(&mem->tx_ptr, r->tx);
	/* The waiters waited for a notify about the old memory: the new one
	 * may have room now, and its doorbell has heard of none of them. */
	hv_ring_recheck(hv, r);
}

static struct hv_ring *ring_new(struct hv *hv, struct hv_client *c,
				const struct v4v_register_ring *reg, struct v4v_ring *mem,
				void *cookie)
{
	struct hv_domain *d = c->d;
	struct hv_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->owner = c;
	r->domid = d->domid;
	r->partner = reg->partner_id;
	r->aport = reg->aport;
	r->len = reg->len;
	r->mem = mem;
	r->cookie = cookie;
	/* A new ring starts empty whatever its owner left in the header. */
	r->tx = 0;
	v4v_store_relaxed(&mem->tx_ptr, 0);
	v4v_store_release(&mem->rx_ptr, 0);

	unsigned b = bucket_of(r->domid, r->aport);
	r->hnext = hv->bucket[b];
	hv->bucket[b] = r;
	r->cnext = c->rings;
	c->rings = r;
	partner_link(hv, r);
	d->nrings++;
	d->ring_bytes += r->len;
	return r;
}

/* Give r (which has no send ring now) the one register_check allowed. */
static void tx_attach(struct hv_ring *r, struct v4v_tx_ring *txmem, uint32_t txlen)
{
	r->txmem = txmem;
	r->txlen = txlen;
	r->txhead = 0;
	r->owner->d->ring_bytes += txlen;
	v4v_store_relaxed(&txmem->rx_ptr, 0);
	/* Not polling it yet: the owner's first message must kick us. */
	v4v_store_release(&txmem->need_kick, 1);
}

int hv_register_ring(struct hv *hv, struct hv_client *c, const struct v4v_register_ring *reg,
		     uint32_t flags, struct v4v_ring *mem, void *cookie, struct v4v_tx_ring *txmem,
		     uint32_t txlen, struct hv_ring **out)
{
	struct hv_ring *r;
	int e = register_check(hv, c, reg, flags, cookie, txmem, txlen, &r);
	if (e)
		return e;
	if (r)
		ring_reregister(hv, c, r, mem, cookie);
	else if (!(r = ring_new(hv, c, reg, mem, cookie)))
		return -ENOMEM;
	if (txmem)
		tx_attach(r, txmem, txlen);
	if (out)
		*out = r;
	return 0;
}

void hv_ring_drop(struct hv *hv, struct hv_ring *r)
{
	/* What the owner queued on its send ring before letting go is
	 * delivered first, as far as it fits now: a stream closed without
	 * waiting for v4vd (lib/pool.c) keeps its data and FIN when its
	 * process exits. */
	if (r->txmem)
		(void)hv_tx_pump(hv, r, UINT_MAX, NULL);
	uint16_t domid = r->domid;
	v4v_port_t aport = r->aport;
	const struct hv_client *owner = r->owner;
	ring_remove(hv, r);
	tell_ring_gone(hv, owner, domid, aport);
}

int hv_unregister_ring(struct hv *hv, struct hv_client *c, v4v_port_t aport, uint16_t partner)
{
	struct hv_ring *r = hv__ring_find(hv, c->d->domid, aport, partner);
	if (!r || r->owner->d != c->d)
		return -ENOENT;
	hv_ring_drop(hv, r);
	return 0;
}

int hv_ring_poke(struct hv *hv, struct hv_client *c, v4v_port_t aport, uint16_t partner)
{
	struct hv_ring *r = hv__ring_find(hv, c->d->domid, aport, partner);
	if (!r)
		return -ENOENT;
	if (r->cookie)
		hv->ops.ring_signal(hv->ctx, r->cookie, HV_SIG_DATA);
	else
		hv->ops.signal(hv->ctx, r->owner->cookie);
	return 0;
}
