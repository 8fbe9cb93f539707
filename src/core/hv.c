/* SPDX-License-Identifier: MIT */
/*
 * The core object and its domains, clients and event queues: hv_new and
 * hv_free, domain and client life cycle, and the per-client event queue a
 * client drains with V4V_OP_EVENTS.  See hv.h for the contract; the Argo
 * rules the core implements are tabled in v4v(7), OPERATIONS.
 */
#include "hv_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void hv_limits_default(struct hv_limits *l)
{
	*l = (struct hv_limits){
	    .domains = 1024,
	    .rings_per_domain = V4V_MAX_RINGS,
	    .ring_bytes_per_domain = 256ull << 20,
	    .ring_len_max = V4V_RING_MAX_LEN,
	    .waiters_per_ring = V4V_MAX_WAITERS,
	    .names_per_domain = 64,
	    .clients_per_domain = 128,
	    .connects_per_source = 128,
	};
}

struct hv *hv_new(const struct hv_limits *lim, const struct hv_ops *ops, void *ctx)
{
	struct hv *hv = calloc(1, sizeof(*hv));
	if (!hv)
		return NULL;
	hv->lim = *lim;
	hv->ops = *ops;
	hv->ctx = ctx;
	hv->policy = HV_FW_ACCEPT;
	hv->auto_max = V4V_DOMID_MAX;
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

void hv_set_limits(struct hv *hv, const struct hv_limits *lim)
{
	hv->lim = *lim; /* each is checked when something is added, never sized by */
}

const struct hv_limits *hv_limits(const struct hv *hv)
{
	return &hv->lim;
}

void hv__post_event_err(struct hv *hv, struct hv_ring *r, uint32_t type,
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
		hv->ops.ring_signal(hv->ctx, r->cookie, HV_SIG_EVENT);
	else
		hv->ops.signal(hv->ctx, c->cookie);
}

void hv__post_event(struct hv *hv, struct hv_ring *r, uint32_t type, const struct v4v_addr *peer)
{
	hv__post_event_err(hv, r, type, peer, 0);
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

/*
 * The first free id after the last one given, wrapping from auto_max to 1
 * (as Xen does): an id is not reused soon after its domain dies, so what
 * still names the dead domain by id (a firewall rule, a peer's address)
 * does not silently apply to a new one.  V4V_DOMID_ANY when all are taken.
 */
static uint16_t next_free_domid(struct hv *hv)
{
	unsigned id = hv->last_auto;
	for (unsigned n = 0; n < hv->auto_max; n++) {
		id = id >= hv->auto_max ? 1 : id + 1;
		if (!hv->dom[id])
			return (uint16_t)id;
	}
	return V4V_DOMID_ANY;
}

void hv_domain_auto_max(struct hv *hv, uint16_t max)
{
	hv->auto_max = max < 1 ? 1 : max > V4V_DOMID_MAX ? V4V_DOMID_MAX : max;
}

int hv_domain_create(struct hv *hv, uint16_t domid, const char *name, struct hv_domain **out)
{
	bool automatic = domid == V4V_DOMID_ANY;
	if (name && *name && !hv_name_ok(name))
		return -EINVAL;
	if (name && *name && hv_domain_by_name(hv, name))
		return -EEXIST;
	if (hv->ndomains >= hv->lim.domains)
		return -ENOSPC;
	if (domid == V4V_DOMID_ANY) {
		domid = next_free_domid(hv);
		if (domid == V4V_DOMID_ANY)
			return -EUSERS; /* under the limit, but every id is taken */
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
	if (automatic)
		hv->last_auto = domid;
	*out = d;
	return 0;
}

void hv_domain_destroy(struct hv *hv, struct hv_domain *d)
{
	while (d->clients)
		hv_client_free(hv, d->clients);
	hv__names_drop(hv, d->domid);
	hv__tell_partners_gone(hv, d->domid);
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

int hv_client_admit(const struct hv *hv, const struct hv_domain *d)
{
	return d->nclients >= hv->lim.clients_per_domain ? -EUSERS : 0;
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

void hv_client_free(struct hv *hv, struct hv_client *c)
{
	if (!c)
		return;
	c->freeing = true;
	while (c->rings)
		hv_ring_drop(hv, c->rings);
	hv__wait_cancel_all(hv, c); /* its own waits only: see deliver.c */
	struct hv_client **pp = &c->d->clients;
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	c->d->nclients--;
	free(c);
}
