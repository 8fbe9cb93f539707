/* SPDX-License-Identifier: MIT */
/*
 * The hypervisor core.  See hv.h for the contract; the Argo rules it
 * implements are tabled in DESIGN.md.
 *
 * Ring memory is shared with its owner, who may scribble on it at any time:
 * the core keeps its own copy of everything it needs (len, tx), reads rx_ptr
 * exactly once per operation and validates it before use.
 */
#include "hv.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define RING_BUCKETS 4096u

struct waiter {
	struct hv_client *c;
	uint32_t need;	     /* payload bytes the waiter wants to send */
	v4v_port_t src_port; /* the sender's port, to find its doorbell */
};

struct hv_ring {
	struct hv_ring *hnext; /* hash chain */
	struct hv_ring *cnext; /* owner's list */
	struct hv_client *owner;
	uint16_t domid, partner;
	v4v_port_t aport;
	uint32_t len;	  /* our copy: never re-read from shared memory */
	uint32_t tx;	  /* our copy of tx_ptr */
	uint32_t last_rx; /* last validated rx_ptr, for v4vctl */
	struct v4v_ring *mem;
	void *cookie; /* the shell's doorbell, or NULL */
	bool broken;
	unsigned nwait;
	struct waiter *wait; /* limits.waiters_per_ring entries, lazily */
	struct hv_stats stats;
	/* The send ring, for sockets (NULL otherwise).  Hostile like the rest. */
	struct v4v_tx_ring *txmem;
	uint32_t txlen;
	uint32_t txhead; /* our copy of its rx_ptr: consumed up to here */
	bool tx_broken;
	struct hv_ring *blocked_on; /* the full ring our first message waits for */
	uint32_t blocked_need;
	struct hv_ring *bnext; /* hv->blocked list */
};

struct hv_client {
	struct hv_client *next; /* domain's list */
	struct hv_domain *d;
	void *cookie;
	struct hv_ring *rings;
	unsigned ev_head, ev_n;
	bool ev_overflow;
	struct hv_event ev[V4V_EVENTS_MAX];
};

struct hv_domain {
	uint16_t domid;
	char name[V4V_NAME_MAX];
	struct hv_client *clients;
	unsigned nclients, nrings, nnames;
	uint64_t ring_bytes;
	struct hv_stats stats;
};

struct hv_name {
	uint16_t domid;
	char service[V4V_NAME_MAX];
	v4v_port_t port;
	unsigned nacl;
	uint16_t acl[HV_NAME_ACL_MAX];
};

struct hv {
	struct hv_limits lim;
	struct hv_ops ops;
	unsigned ndomains;
	struct hv_domain *dom[V4V_DOMID_MAX + 1];
	struct hv_ring *bucket[RING_BUCKETS];
	struct hv_fw_rule fw[HV_FW_MAX_RULES];
	unsigned nfw;
	enum hv_fw_action policy;
	struct hv_name *names;
	unsigned nnames, names_cap;
	struct hv_ring *blocked; /* send rings waiting for space somewhere */
};

void hv_limits_default(struct hv_limits *l)
{
	*l = (struct hv_limits){
	    .domains = 1024,
	    .rings_per_domain = V4V_MAX_RINGS,
	    .ring_bytes_per_domain = 256ull << 20,
	    .ring_len_max = V4V_RING_MAX_LEN,
	    .waiters_per_ring = V4V_MAX_WAITERS,
	    .names_per_domain = 64,
	};
}

struct hv *hv_new(const struct hv_limits *lim, const struct hv_ops *ops)
{
	struct hv *hv = calloc(1, sizeof(*hv));
	if (!hv)
		return NULL;
	hv->lim = *lim;
	hv->ops = *ops;
	hv->policy = HV_FW_ACCEPT;
	return hv;
}

void hv_free(struct hv *hv)
{
	if (!hv)
		return;
	for (unsigned i = 0; i <= V4V_DOMID_MAX; i++)
		if (hv->dom[i])
			hv_domain_destroy(hv, hv->dom[i]);
	free(hv->names);
	free(hv);
}

const struct hv_limits *hv_limits(const struct hv *hv)
{
	return &hv->lim;
}

/* ---- events ---------------------------------------------------------- */

static void post_event_err(struct hv *hv, struct hv_ring *r, uint32_t type,
			   const struct v4v_addr *peer, uint32_t err)
{
	struct hv_client *c = r->owner;
	if (c->ev_n == V4V_EVENTS_MAX) {
		c->ev_overflow = true;
	} else {
		struct hv_event *e = &c->ev[(c->ev_head + c->ev_n) % V4V_EVENTS_MAX];
		*e = (struct hv_event){.type = type,
				       .pad = err,
				       .peer = *peer,
				       .ring = {.aport = r->aport, .domain_id = r->domid}};
		c->ev_n++;
	}
	if (r->cookie)
		hv->ops.ring_signal(r->cookie, HV_SIG_EVENT);
	else
		hv->ops.signal(c->cookie);
}

static void post_event(struct hv *hv, struct hv_ring *r, uint32_t type, const struct v4v_addr *peer)
{
	post_event_err(hv, r, type, peer, 0);
}

unsigned hv_events(struct hv_client *c, struct hv_event *ev, unsigned max)
{
	unsigned n = 0;
	if (c->ev_overflow && max > 0) {
		ev[n++] = (struct hv_event){.type = V4V_EV_OVERFLOW};
		c->ev_overflow = false;
	}
	for (; n < max && c->ev_n > 0; n++) {
		ev[n] = c->ev[c->ev_head];
		c->ev_head = (c->ev_head + 1) % V4V_EVENTS_MAX;
		c->ev_n--;
	}
	return n;
}

/* ---- ring table ------------------------------------------------------ */

static unsigned bucket_of(uint16_t domid, v4v_port_t aport)
{
	uint32_t h = aport * 0x9E3779B1u ^ domid * 0x85EBCA6Bu;
	return (h ^ h >> 16) % RING_BUCKETS;
}

/* Partner is part of the key: exact and wildcard rings coexist. */
static struct hv_ring *ring_find(struct hv *hv, uint16_t domid, v4v_port_t aport, uint16_t partner)
{
	for (struct hv_ring *r = hv->bucket[bucket_of(domid, aport)]; r; r = r->hnext)
		if (r->domid == domid && r->aport == aport && r->partner == partner)
			return r;
	return NULL;
}

/* The ring a send from `from` to dst lands in: exact partner first. */
static struct hv_ring *ring_route(struct hv *hv, const struct v4v_addr *dst, uint16_t from)
{
	struct hv_ring *r = ring_find(hv, dst->domain_id, dst->aport, from);
	return r ? r : ring_find(hv, dst->domain_id, dst->aport, V4V_DOMID_ANY);
}

/* Any ring of domid on aport, whatever its partner: a sender's own ring. */
static struct hv_ring *ring_at(struct hv *hv, uint16_t domid, v4v_port_t aport)
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

static struct v4v_addr ring_addr(const struct hv_ring *r)
{
	return (struct v4v_addr){.aport = r->aport, .domain_id = r->domid};
}

/*
 * Read rx_ptr once.  The acquire pairs with the owner's release store after
 * it has finished reading the bytes it consumed, so our later writes into
 * that space cannot overtake its reads.  A bad value breaks the ring.
 */
static bool ring_read_rx(struct hv *hv, struct hv_ring *r, uint32_t *rx)
{
	if (r->broken)
		return false;
	uint32_t v =
	    atomic_load_explicit((_Atomic uint32_t *)&r->mem->rx_ptr, memory_order_acquire);
	if (!v4v_ring_ptr_ok(v, r->len)) {
		struct v4v_addr a = ring_addr(r);
		r->broken = true;
		post_event(hv, r, V4V_EV_RING_BROKEN, &a);
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
	    .stats = r->stats,
	};
}

/* ---- space waiters --------------------------------------------------- */

static int wait_add(struct hv *hv, struct hv_ring *r, struct hv_client *c, uint32_t need,
		    v4v_port_t src_port)
{
	for (unsigned i = 0; i < r->nwait; i++)
		if (r->wait[i].c == c && r->wait[i].src_port == src_port) {
			r->wait[i].need = need;
			return 0;
		}
	if (r->nwait == hv->lim.waiters_per_ring)
		return -EBUSY;
	if (!r->wait) {
		r->wait = calloc(hv->lim.waiters_per_ring, sizeof(*r->wait));
		if (!r->wait)
			return -ENOMEM;
	}
	r->wait[r->nwait++] = (struct waiter){c, need, src_port};
	/* Tell the owner someone waits, so it notifies after consuming. */
	if (r->cookie)
		hv->ops.ring_signal(r->cookie, HV_SIG_WAITER);
	return 0;
}

/* Wake one waiter: through its own ring's doorbell if it has one. */
static void wake(struct hv *hv, const struct waiter *w)
{
	struct hv_ring *own = ring_at(hv, w->c->d->domid, w->src_port);
	if (own && own->cookie && own->owner == w->c)
		hv->ops.ring_space(own->cookie);
	else
		hv->ops.signal(w->c->cookie);
}

static void wait_cancel(struct hv_ring *r, const struct hv_client *c, v4v_port_t src_port)
{
	for (unsigned i = 0; i < r->nwait; i++)
		if (r->wait[i].c == c && r->wait[i].src_port == src_port) {
			r->wait[i] = r->wait[--r->nwait];
			return;
		}
}

/* Forget every wait of c (it is going away). */
static void wait_cancel_all(struct hv_ring *r, const struct hv_client *c)
{
	for (unsigned i = 0; i < r->nwait;) {
		if (r->wait[i].c == c)
			r->wait[i] = r->wait[--r->nwait];
		else
			i++;
	}
}

/* ---- send rings waiting for space ----------------------------------- */

static void tx_block(struct hv *hv, struct hv_ring *r, struct hv_ring *dest, uint32_t need)
{
	r->blocked_on = dest;
	r->blocked_need = need;
	r->bnext = hv->blocked;
	hv->blocked = r;
	if (dest->cookie)
		hv->ops.ring_signal(dest->cookie, HV_SIG_WAITER);
}

static void tx_unblock(struct hv *hv, struct hv_ring *r)
{
	struct hv_ring **pp = &hv->blocked;
	while (*pp != r)
		pp = &(*pp)->bnext;
	*pp = r->bnext;
	r->blocked_on = NULL;
	hv->ops.tx_ready(r->cookie);
}

/* Unblock the send rings waiting on dest whose message fits in space
 * (all of them when dest is going away).  True if any still wait. */
static bool tx_recheck(struct hv *hv, struct hv_ring *dest, uint32_t space, bool gone)
{
	bool left = false;
	for (struct hv_ring *r = hv->blocked, *next; r; r = next) {
		next = r->bnext;
		if (r->blocked_on != dest)
			continue;
		if (gone || v4v_msg_footprint(r->blocked_need) <= space)
			tx_unblock(hv, r);
		else
			left = true;
	}
	return left;
}

void hv_poll_waiters(struct hv *hv)
{
	for (struct hv_ring *r = hv->blocked, *next; r; r = next) {
		uint32_t rx;
		struct hv_ring *d = r->blocked_on;
		next = r->bnext;
		if (!ring_read_rx(hv, d, &rx)) {
			tx_unblock(hv, r); /* broken: the retry reports it */
			continue;
		}
		if (v4v_msg_footprint(r->blocked_need) <= v4v_ring_space(d->len, rx, d->tx))
			tx_unblock(hv, r);
	}
}

/* Wake (and forget) every waiter whose message now fits. */
static void wait_recheck(struct hv *hv, struct hv_ring *r)
{
	uint32_t rx;
	if (!ring_read_rx(hv, r, &rx))
		return;
	uint32_t space = v4v_ring_space(r->len, rx, r->tx);
	bool tx_left = hv->blocked && tx_recheck(hv, r, space, false);
	for (unsigned i = 0; i < r->nwait;) {
		if (v4v_msg_footprint(r->wait[i].need) <= space) {
			struct waiter w = r->wait[i];
			r->wait[i] = r->wait[--r->nwait];
			wake(hv, &w);
		} else {
			i++;
		}
	}
	/* Still waiting: the owner must notify again after consuming more. */
	if ((r->nwait || tx_left) && r->cookie)
		hv->ops.ring_signal(r->cookie, HV_SIG_WAITER);
}

/* ---- domains and clients --------------------------------------------- */

int hv_domain_create(struct hv *hv, uint16_t domid, const char *name, struct hv_domain **out)
{
	if (name && *name && !hv_name_ok(name))
		return -EINVAL;
	if (name && *name && hv_domain_by_name(hv, name))
		return -EEXIST;
	if (hv->ndomains >= hv->lim.domains)
		return -ENOSPC;
	if (domid == V4V_DOMID_ANY) {
		for (domid = 1; domid <= V4V_DOMID_MAX && hv->dom[domid]; domid++)
			;
		if (domid > V4V_DOMID_MAX)
			return -ENOSPC;
	} else if (domid > V4V_DOMID_MAX) {
		return -EINVAL;
	} else if (hv->dom[domid]) {
		return -EEXIST;
	}
	struct hv_domain *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->domid = domid;
	if (name)
		strcpy(d->name, name); /* length checked by hv_name_ok */
	hv->dom[domid] = d;
	hv->ndomains++;
	*out = d;
	return 0;
}

static void names_drop_domain(struct hv *hv, uint16_t domid);

static void tell_partners_gone(struct hv *hv, uint16_t domid)
{
	struct v4v_addr dead = {.domain_id = domid};
	for (struct hv_ring *r = hv_ring_next(hv, NULL); r; r = hv_ring_next(hv, r))
		if (r->partner == domid)
			post_event(hv, r, V4V_EV_PARTNER_GONE, &dead);
}

void hv_domain_destroy(struct hv *hv, struct hv_domain *d)
{
	while (d->clients)
		hv_client_free(hv, d->clients);
	names_drop_domain(hv, d->domid);
	tell_partners_gone(hv, d->domid);
	hv->dom[d->domid] = NULL;
	hv->ndomains--;
	free(d);
}

struct hv_domain *hv_domain_find(struct hv *hv, uint16_t domid)
{
	return domid <= V4V_DOMID_MAX ? hv->dom[domid] : NULL;
}

struct hv_domain *hv_domain_by_name(struct hv *hv, const char *name)
{
	for (struct hv_domain *d = hv_domain_next(hv, NULL); d; d = hv_domain_next(hv, d))
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

struct hv_domain *hv_domain_next(struct hv *hv, struct hv_domain *prev)
{
	for (unsigned i = prev ? prev->domid + 1u : 0; i <= V4V_DOMID_MAX; i++)
		if (hv->dom[i])
			return hv->dom[i];
	return NULL;
}

uint16_t hv_domain_id(const struct hv_domain *d)
{
	return d->domid;
}
const char *hv_domain_name(const struct hv_domain *d)
{
	return d->name;
}
const struct hv_stats *hv_domain_stats(const struct hv_domain *d)
{
	return &d->stats;
}
unsigned hv_domain_nclients(const struct hv_domain *d)
{
	return d->nclients;
}
unsigned hv_domain_nrings(const struct hv_domain *d)
{
	return d->nrings;
}
uint64_t hv_domain_ring_bytes(const struct hv_domain *d)
{
	return d->ring_bytes;
}

struct hv_client *hv_client_new(struct hv *hv, struct hv_domain *d, void *cookie)
{
	(void)hv;
	struct hv_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->d = d;
	c->cookie = cookie;
	c->next = d->clients;
	d->clients = c;
	d->nclients++;
	return c;
}

struct hv_domain *hv_client_domain(const struct hv_client *c)
{
	return c->d;
}

/* Take r off its owner's list. */
static void ring_unown(struct hv_ring *r)
{
	struct hv_ring **pp;
	for (pp = &r->owner->rings; *pp != r; pp = &(*pp)->cnext)
		;
	*pp = r->cnext;
}

/* Unlink r from the hash, its owner and its domain, and release it. */
static void ring_remove(struct hv *hv, struct hv_ring *r)
{
	struct hv_ring **pp = &hv->bucket[bucket_of(r->domid, r->aport)];
	while (*pp != r)
		pp = &(*pp)->hnext;
	*pp = r->hnext;
	ring_unown(r);
	r->owner->d->nrings--;
	r->owner->d->ring_bytes -= r->len + r->txlen;
	if (r->blocked_on) {
		for (pp = &hv->blocked; *pp != r; pp = &(*pp)->bnext)
			;
		*pp = r->bnext;
	}
	tx_recheck(hv, r, 0, true);
	if (r->txmem)
		hv->ops.unmap(r->txmem, r->txlen, NULL);
	/* Senders waiting for space here will never get it: wake them to fail.
	 * The ring is unhashed first so a waiter's own ring is never r. */
	for (unsigned i = 0; i < r->nwait; i++)
		wake(hv, &r->wait[i]);
	hv->ops.unmap(r->mem, r->len, r->cookie);
	free(r->wait);
	free(r);
}

/* Tell owners of rings that name r's domain as partner that r is gone. */
static void tell_ring_gone(struct hv *hv, uint16_t domid, v4v_port_t aport)
{
	struct v4v_addr gone = {.aport = aport, .domain_id = domid};
	for (struct hv_ring *r = hv_ring_next(hv, NULL); r; r = hv_ring_next(hv, r))
		if (r->partner == domid && r->domid != domid)
			post_event(hv, r, V4V_EV_RING_GONE, &gone);
}

void hv_client_free(struct hv *hv, struct hv_client *c)
{
	if (!c)
		return;
	while (c->rings)
		hv_ring_drop(hv, c->rings);
	for (struct hv_ring *r = hv_ring_next(hv, NULL); r; r = hv_ring_next(hv, r))
		wait_cancel_all(r, c);
	struct hv_client **pp = &c->d->clients;
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	c->d->nclients--;
	free(c);
}

/* ---- register / unregister ------------------------------------------- */

int hv_register_ring(struct hv *hv, struct hv_client *c, const struct v4v_register_ring *reg,
		     uint32_t flags, struct v4v_ring *mem, void *cookie, struct hv_ring **out)
{
	struct hv_domain *d = c->d;

	if (flags & ~V4V_REGISTER_FAIL_EXIST || reg->pad != 0)
		return -EINVAL;
	if (!v4v_ring_len_ok(reg->len) || reg->len > hv->lim.ring_len_max)
		return -EINVAL;
	if (reg->partner_id > V4V_DOMID_MAX && reg->partner_id != V4V_DOMID_ANY)
		return -EINVAL;

	struct hv_ring *r = ring_find(hv, d->domid, reg->aport, reg->partner_id);
	if (r) {
		if (flags & V4V_REGISTER_FAIL_EXIST || r->len != reg->len || r->owner->d != d)
			return -EEXIST;
		/* Re-registration: new mapping, keep tx if the new ring agrees. */
		uint32_t tx =
		    atomic_load_explicit((_Atomic uint32_t *)&mem->tx_ptr, memory_order_relaxed);
		if (v4v_ring_ptr_ok(tx, r->len))
			r->tx = tx;
		hv->ops.unmap(r->mem, r->len, r->cookie);
		r->mem = mem;
		r->cookie = cookie;
		r->broken = false;
		/*
		 * Another process of the domain may re-register: the ring is now
		 * its memory and its doorbell, so it is its ring, told its events
		 * and removed when it goes (else the shell's doorbell would
		 * outlive the client it names).
		 */
		if (r->owner != c) {
			ring_unown(r);
			r->owner = c;
			r->cnext = c->rings;
			c->rings = r;
		}
		atomic_store_explicit((_Atomic uint32_t *)&mem->tx_ptr, r->tx,
				      memory_order_release);
		if (out)
			*out = r;
		return 0;
	}
	if (d->nrings >= hv->lim.rings_per_domain)
		return -ENOSPC;
	if (d->ring_bytes + reg->len > hv->lim.ring_bytes_per_domain)
		return -ENOSPC;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->owner = c;
	r->domid = d->domid;
	r->partner = reg->partner_id;
	r->aport = reg->aport;
	r->len = reg->len;
	r->mem = mem;
	r->cookie = cookie;
	/* A new ring starts empty whatever its owner left in the header. */
	r->tx = 0;
	atomic_store_explicit((_Atomic uint32_t *)&mem->tx_ptr, 0, memory_order_relaxed);
	atomic_store_explicit((_Atomic uint32_t *)&mem->rx_ptr, 0, memory_order_release);

	unsigned b = bucket_of(r->domid, r->aport);
	r->hnext = hv->bucket[b];
	hv->bucket[b] = r;
	r->cnext = c->rings;
	c->rings = r;
	d->nrings++;
	d->ring_bytes += r->len;
	if (out)
		*out = r;
	return 0;
}

int hv_ring_attach_tx(struct hv *hv, struct hv_ring *r, struct v4v_tx_ring *txmem, uint32_t txlen)
{
	struct hv_domain *d = r->owner->d;
	if (!v4v_ring_len_ok(txlen) || txlen > hv->lim.ring_len_max || !r->cookie)
		return -EINVAL;
	if (r->txmem)
		return -EEXIST;
	if (d->ring_bytes + txlen > hv->lim.ring_bytes_per_domain)
		return -ENOSPC;
	r->txmem = txmem;
	r->txlen = txlen;
	r->txhead = 0;
	d->ring_bytes += txlen;
	atomic_store_explicit((_Atomic uint32_t *)&txmem->rx_ptr, 0, memory_order_relaxed);
	/* Not polling it yet: the owner's first message must kick us. */
	atomic_store_explicit((_Atomic uint32_t *)&txmem->need_kick, 1, memory_order_release);
	return 0;
}

void hv_ring_drop(struct hv *hv, struct hv_ring *r)
{
	uint16_t domid = r->domid;
	v4v_port_t aport = r->aport;
	ring_remove(hv, r);
	tell_ring_gone(hv, domid, aport);
}

int hv_unregister_ring(struct hv *hv, struct hv_client *c, v4v_port_t aport, uint16_t partner)
{
	struct hv_ring *r = ring_find(hv, c->d->domid, aport, partner);
	if (!r || r->owner->d != c->d)
		return -ENOENT;
	hv_ring_drop(hv, r);
	return 0;
}

int hv_ring_poke(struct hv *hv, struct hv_client *c, v4v_port_t aport, uint16_t partner)
{
	struct hv_ring *r = ring_find(hv, c->d->domid, aport, partner);
	if (!r)
		return -ENOENT;
	if (r->cookie)
		hv->ops.ring_signal(r->cookie, HV_SIG_DATA);
	else
		hv->ops.signal(r->owner->cookie);
	return 0;
}

/* ---- sendv ----------------------------------------------------------- */

/*
 * Deliver one message of n payload bytes from (c's domain, src_port) to
 * dst: the hypervisor's copy.  Returns n or -errno; -EAGAIN with *full set
 * when the destination ring lacks room now (the caller decides how to wait).
 */
static long deliver(struct hv *hv, struct hv_client *c, v4v_port_t src_port,
		    const struct v4v_addr *dst, uint32_t message_type, const struct v4v_seg *seg,
		    unsigned nseg, uint64_t n, struct hv_ring **full)
{
	struct hv_domain *sd = c->d;
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
			hv->ops.rejected(&src, dst);
		return -EACCES;
	case HV_FW_DROP: sd->stats.dropped++; return (long)n;
	case HV_FW_ACCEPT: break;
	}

	struct hv_ring *r = ring_route(hv, dst, sd->domid);
	uint32_t rx;
	if (!r || !ring_read_rx(hv, r, &rx))
		return -ECONNREFUSED;
	if (n > v4v_ring_max_payload(r->len))
		return -EMSGSIZE;
	if (v4v_msg_footprint(n) > v4v_ring_space(r->len, rx, r->tx)) {
		sd->stats.eagain++;
		r->stats.eagain++;
		*full = r;
		return -EAGAIN;
	}

	struct v4v_ring_message_header h = {
	    .len = (uint32_t)(V4V_MSG_HDR_SIZE + n),
	    .source = src,
	    .message_type = message_type,
	};
	uint32_t old_tx = r->tx;
	r->tx = v4v_ring_put(r->mem->ring, r->len, r->tx, &h, seg, nseg);
	/* Release: the message bytes are visible before the new tx_ptr. */
	atomic_store_explicit((_Atomic uint32_t *)&r->mem->tx_ptr, r->tx, memory_order_release);
	if (r->nwait)
		wait_cancel(r, c, src_port);
	sd->stats.tx_msgs++;
	sd->stats.tx_bytes += n;
	dd->stats.rx_msgs++;
	dd->stats.rx_bytes += n;
	r->stats.rx_msgs++;
	r->stats.rx_bytes += n;
	if (!r->cookie) {
		hv->ops.signal(r->owner->cookie);
		return (long)n;
	}
	/*
	 * Ring the doorbell only if the reader had caught up with everything
	 * before this message.  Pairs with the reader's fence between storing
	 * rx_ptr and re-reading tx_ptr before it sleeps (rx.c): of the two
	 * store-fence-load sequences at least one sees the other's store, so
	 * either the reader sees our message or we see it caught up.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	uint32_t now =
	    atomic_load_explicit((_Atomic uint32_t *)&r->mem->rx_ptr, memory_order_relaxed);
	if (now == old_tx)
		hv->ops.ring_signal(r->cookie, HV_SIG_DATA);
	return (long)n;
}

long hv_sendv(struct hv *hv, struct hv_client *c, v4v_port_t src_port, const struct v4v_addr *dst,
	      uint32_t message_type, const struct v4v_seg *seg, unsigned nseg)
{
	uint64_t n = 0;
	struct hv_ring *full = NULL;

	if (nseg > V4V_MAX_IOV)
		return -EINVAL;
	for (unsigned i = 0; i < nseg; i++)
		n += seg[i].len;
	long r = deliver(hv, c, src_port, dst, message_type, seg, nseg, n, &full);
	if (r != -EAGAIN || !full)
		return r;
	int err = wait_add(hv, full, c, (uint32_t)n, src_port);
	if (err)
		return err;
	struct hv_ring *own = ring_at(hv, c->d->domid, src_port);
	if (own && own->cookie && own->owner == c)
		hv->ops.ring_blocked(own->cookie);
	return -EAGAIN;
}

/* ---- send rings (the fast path) -------------------------------------- */

static void tx_break(struct hv *hv, struct hv_ring *r)
{
	struct v4v_addr a = ring_addr(r);
	r->tx_broken = true;
	post_event(hv, r, V4V_EV_RING_BROKEN, &a);
}

unsigned hv_tx_pump(struct hv *hv, struct hv_ring *r, unsigned budget)
{
	if (!r->txmem || r->tx_broken || r->blocked_on)
		return 0;
	/* Acquire: the messages up to prod are fully written. Read it once. */
	uint32_t prod =
	    atomic_load_explicit((_Atomic uint32_t *)&r->txmem->tx_ptr, memory_order_acquire);
	if (!v4v_ring_ptr_ok(prod, r->txlen)) {
		tx_break(hv, r);
		return 0;
	}
	unsigned moved = 0;
	while (moved < budget && r->txhead != prod) {
		struct v4v_msg m;
		struct hv_ring *full = NULL;
		if (v4v_ring_peek(r->txmem->ring, r->txlen, r->txhead, prod, &m) != 1) {
			tx_break(hv, r);
			break;
		}
		struct v4v_addr dst = {.aport = m.source.aport, .domain_id = m.source.domain_id};
		long e =
		    deliver(hv, r->owner, r->aport, &dst, m.message_type, m.seg, 2, m.len, &full);
		if (e == -EAGAIN && full) {
			tx_block(hv, r, full, m.len);
			break;
		}
		if (e < 0)
			post_event_err(hv, r, V4V_EV_SEND_FAILED, &dst, (uint32_t)-e);
		r->txhead = m.next_rx;
		moved++;
	}
	if (moved == 0)
		return 0;
	/* Release: we are done reading what we hand back. */
	atomic_store_explicit((_Atomic uint32_t *)&r->txmem->rx_ptr, r->txhead,
			      memory_order_release);
	/* Pairs with the owner's fence between setting want_space and
	 * re-reading rx_ptr (socket.c): one of us sees the other. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit((_Atomic uint32_t *)&r->txmem->want_space, memory_order_relaxed)) {
		atomic_store_explicit((_Atomic uint32_t *)&r->txmem->want_space, 0,
				      memory_order_relaxed);
		hv->ops.ring_space(r->cookie);
	}
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
	atomic_store_explicit((_Atomic uint32_t *)&r->txmem->need_kick, 1, memory_order_relaxed);
	/* Pairs with the owner's fence between publishing tx_ptr and reading
	 * need_kick: either it kicks us or we see its message now. */
	atomic_thread_fence(memory_order_seq_cst);
	uint32_t prod =
	    atomic_load_explicit((_Atomic uint32_t *)&r->txmem->tx_ptr, memory_order_acquire);
	if (prod == r->txhead)
		return true;
	atomic_store_explicit((_Atomic uint32_t *)&r->txmem->need_kick, 0, memory_order_relaxed);
	return false;
}

/* ---- notify ---------------------------------------------------------- */

static void notify_one(struct hv *hv, struct hv_client *c, struct v4v_ring_data_ent *e)
{
	uint32_t need = e->space_required, rx;
	struct hv_ring *r = ring_route(hv, &e->ring, c->d->domid);

	e->flags = 0;
	e->pad = 0;
	e->max_message_size = 0;
	if (!r || !ring_read_rx(hv, r, &rx))
		return;
	e->flags = V4V_RING_EXISTS;
	if (r->partner == V4V_DOMID_ANY)
		e->flags |= V4V_RING_SHARED;
	if (rx == r->tx)
		e->flags |= V4V_RING_EMPTY;
	e->max_message_size = v4v_ring_max_payload(r->len);
	if (need > e->max_message_size) {
		e->flags |= V4V_RING_EMSGSIZE;
		wait_cancel(r, c, V4V_PORT_ANY);
	} else if (v4v_msg_footprint(need) <= v4v_ring_space(r->len, rx, r->tx)) {
		e->flags |= V4V_RING_SUFFICIENT;
		wait_cancel(r, c, V4V_PORT_ANY);
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

/* ---- firewall -------------------------------------------------------- */

int hv_fw_insert(struct hv *hv, unsigned pos, const struct hv_fw_rule *r)
{
	if (pos > hv->nfw)
		return -ERANGE;
	if (hv->nfw == HV_FW_MAX_RULES)
		return -ENOSPC;
	if (r->action > HV_FW_DROP)
		return -EINVAL;
	memmove(&hv->fw[pos + 1], &hv->fw[pos], (hv->nfw - pos) * sizeof(*r));
	hv->fw[pos] = *r;
	hv->fw[pos].hits = 0;
	hv->nfw++;
	return 0;
}

int hv_fw_delete(struct hv *hv, unsigned pos)
{
	if (pos >= hv->nfw)
		return -ERANGE;
	hv->nfw--;
	memmove(&hv->fw[pos], &hv->fw[pos + 1], (hv->nfw - pos) * sizeof(hv->fw[0]));
	return 0;
}

void hv_fw_flush(struct hv *hv)
{
	hv->nfw = 0;
}
unsigned hv_fw_count(const struct hv *hv)
{
	return hv->nfw;
}
const struct hv_fw_rule *hv_fw_rule(const struct hv *hv, unsigned pos)
{
	return pos < hv->nfw ? &hv->fw[pos] : NULL;
}
void hv_fw_set_policy(struct hv *hv, enum hv_fw_action a)
{
	hv->policy = a;
}
enum hv_fw_action hv_fw_policy(const struct hv *hv)
{
	return hv->policy;
}

static bool fw_match(const struct hv_fw_rule *r, const struct v4v_addr *src,
		     const struct v4v_addr *dst)
{
	return (r->src_dom == V4V_DOMID_ANY || r->src_dom == src->domain_id) &&
	       (r->src_port == V4V_PORT_ANY || r->src_port == src->aport) &&
	       (r->dst_dom == V4V_DOMID_ANY || r->dst_dom == dst->domain_id) &&
	       (r->dst_port == V4V_PORT_ANY || r->dst_port == dst->aport);
}

enum hv_fw_action hv_fw_check(struct hv *hv, const struct v4v_addr *src, const struct v4v_addr *dst,
			      int *rule)
{
	for (unsigned i = 0; i < hv->nfw; i++)
		if (fw_match(&hv->fw[i], src, dst)) {
			hv->fw[i].hits++;
			if (rule)
				*rule = (int)i;
			return hv->fw[i].action;
		}
	if (rule)
		*rule = -1;
	return hv->policy;
}

/* ---- names ----------------------------------------------------------- */

bool hv_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= V4V_NAME_MAX || (s[0] >= '0' && s[0] <= '9') || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

static struct hv_name *name_find(const struct hv *hv, uint16_t domid, const char *service)
{
	for (unsigned i = 0; i < hv->nnames; i++)
		if (hv->names[i].domid == domid && strcmp(hv->names[i].service, service) == 0)
			return &hv->names[i];
	return NULL;
}

int hv_name_register(struct hv *hv, struct hv_domain *d, const char *service, v4v_port_t port,
		     const uint16_t *acl, unsigned nacl)
{
	if (!hv_name_ok(service) || nacl > HV_NAME_ACL_MAX)
		return -EINVAL;
	struct hv_name *n = name_find(hv, d->domid, service);
	if (n)
		return -EEXIST;
	if (d->nnames >= hv->lim.names_per_domain)
		return -ENOSPC;
	if (hv->nnames == hv->names_cap) {
		unsigned cap = hv->names_cap ? hv->names_cap * 2 : 16;
		struct hv_name *nn = realloc(hv->names, cap * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		hv->names = nn;
		hv->names_cap = cap;
	}
	n = &hv->names[hv->nnames++];
	*n = (struct hv_name){.domid = d->domid, .port = port, .nacl = nacl};
	strcpy(n->service, service);
	memcpy(n->acl, acl, nacl * sizeof(*acl));
	d->nnames++;
	return 0;
}

static void name_remove(struct hv *hv, struct hv_name *n)
{
	hv->dom[n->domid]->nnames--;
	*n = hv->names[--hv->nnames];
}

int hv_name_unregister(struct hv *hv, struct hv_domain *d, const char *service)
{
	struct hv_name *n = name_find(hv, d->domid, service);
	if (!n)
		return -ENOENT;
	name_remove(hv, n);
	return 0;
}

static void names_drop_domain(struct hv *hv, uint16_t domid)
{
	for (unsigned i = 0; i < hv->nnames;) {
		if (hv->names[i].domid == domid)
			name_remove(hv, &hv->names[i]);
		else
			i++;
	}
}

static bool name_visible(const struct hv_name *n, const struct hv_domain *asker)
{
	if (!asker || n->nacl == 0 || asker->domid == n->domid)
		return true;
	for (unsigned i = 0; i < n->nacl; i++)
		if (n->acl[i] == asker->domid)
			return true;
	return false;
}

int hv_name_lookup(struct hv *hv, const struct hv_domain *asker, uint16_t domid,
		   const char *service, v4v_port_t *port)
{
	const struct hv_name *n = name_find(hv, domid, service);
	/* Hidden and absent look the same, so an ACL leaks nothing. */
	if (!n || !name_visible(n, asker))
		return -ENOENT;
	*port = n->port;
	return 0;
}

int hv_name_at(const struct hv *hv, unsigned i, struct hv_name_info *out)
{
	if (i >= hv->nnames)
		return -ENOENT;
	const struct hv_name *n = &hv->names[i];
	*out = (struct hv_name_info){.domid = n->domid, .port = n->port, .nacl = n->nacl};
	memcpy(out->service, n->service, sizeof(out->service));
	memcpy(out->acl, n->acl, sizeof(out->acl));
	return 0;
}
