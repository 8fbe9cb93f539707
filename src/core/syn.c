/* SPDX-License-Identifier: MIT */
/*
 * Pending connection requests: a ring's SYNs (wire/proto.h V4V_MT_SYN)
 * that its owner has not consumed yet, counted per source domain, so that
 * one client domain cannot fill a listener's ring with requests (and have
 * the server set up a ring for each) while others are refused.  A v4v
 * addition: Argo has no such limit.
 *
 * Each SYN is remembered by where it ends in the 64-bit count of bytes
 * ever written to the ring; the owner has consumed everything up to
 * written - used, used coming from its validated rx_ptr.  The FIFO is in
 * end order, so consumed requests leave from its head.
 */
#include "hv_priv.h"

#include <errno.h>
#include <stdlib.h>

static struct syn_ent *syn_at(struct hv_ring *r, unsigned i)
{
	return &r->syn[(r->syn_head + i) % r->syn_cap];
}

/* Forget the requests the owner has read. */
static void syn_prune(struct hv_ring *r, uint32_t rx)
{
	uint64_t consumed = r->written - v4v_ring_used(r->len, rx, r->tx);
	while (r->syn_n && syn_at(r, 0)->end <= consumed) {
		r->syn_head = (r->syn_head + 1) % r->syn_cap;
		r->syn_n--;
	}
}

/* Room for one more entry: the FIFO doubles, keeping its order. */
static int syn_reserve(struct hv_ring *r)
{
	if (r->syn_n < r->syn_cap)
		return 0;
	unsigned cap = r->syn_cap ? r->syn_cap * 2 : 8;
	struct syn_ent *n = malloc(cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (unsigned i = 0; i < r->syn_n; i++)
		n[i] = *syn_at(r, i);
	free(r->syn);
	r->syn = n;
	r->syn_cap = cap;
	r->syn_head = 0;
	return 0;
}

int hv__syn_admit(struct hv *hv, struct hv_ring *r, uint16_t src, uint32_t rx)
{
	unsigned mine = 0;
	syn_prune(r, rx);
	/* Each source has at most connects_per_source entries here, so the
	 * scan is bounded by the live domains times that limit. */
	for (unsigned i = 0; i < r->syn_n; i++)
		mine += syn_at(r, i)->src == src;
	if (mine >= hv->lim.connects_per_source)
		return -ENOBUFS;
	return syn_reserve(r);
}

/* Called right after the SYN went in: it ends at r->written. */
void hv__syn_note(struct hv_ring *r, uint16_t src)
{
	if (r->syn_n < r->syn_cap) /* reserved by hv__syn_admit */
		*syn_at(r, r->syn_n++) = (struct syn_ent){.end = r->written, .src = src};
}

void hv__syn_free(struct hv_ring *r)
{
	free(r->syn);
	r->syn = NULL;
	r->syn_n = r->syn_cap = r->syn_head = 0;
}
