/* SPDX-License-Identifier: MIT */
/*
 * The core's private header: the structures behind the opaque handles of
 * hv.h, and the few functions one part of the core calls in another.
 * Nothing outside src/core includes it.
 *
 * Ring memory is shared with its owner, who may scribble on it at any time:
 * the core keeps its own copy of everything it needs (len, tx), reads rx_ptr
 * exactly once per operation and validates it before use.  Every access to
 * a shared word goes through common/barrier.h.
 */
#ifndef V4V_HV_PRIV_H
#define V4V_HV_PRIV_H

#include "hv.h"

#define RING_BUCKETS 4096u

/*
 * A space wait: one per (ring, source domain), as in Argo.  A domain's
 * further waits on the ring (another port, another process) update it:
 * the largest need, and `many` so that the wake reaches all of them.  On
 * two lists, the ring's and the waiting client's, so that removing either
 * touches only its own waits.
 */
struct waiter {
	struct waiter *rnext, **rprev; /* the ring's waits */
	struct waiter *cnext, **cprev; /* the client's waits */
	struct hv_ring *r;
	struct hv_client *c;
	uint32_t need;	     /* payload bytes the waiter wants to send */
	v4v_port_t src_port; /* the sender's port, to find its doorbell */
	bool many;	     /* other ports or processes of c's domain wait too */
};

/* A connection request (SYN) in a ring, not yet consumed by its owner:
 * it ends at byte `end` of everything ever written to the ring. */
struct syn_ent {
	uint64_t end;
	uint16_t src;
};

struct hv_ring {
	struct hv_ring *hnext; /* hash chain */
	struct hv_ring *cnext; /* owner's list */
	struct hv_client *owner;
	uint16_t domid, partner;
	v4v_port_t aport;
	uint32_t len;	  /* our copy: never re-read from shared memory */
	uint32_t tx;	  /* our copy of tx_ptr */
	uint32_t last_rx; /* last validated rx_ptr: for v4vctl, and deliver's space */
	struct v4v_ring *mem;
	void *cookie; /* the shell's doorbell, or NULL */
	bool broken;
	unsigned nwait;			/* domains waiting for space: waiters_per_ring */
	struct waiter *waits;		/* their waits */
	bool space_wait;		/* the owner's send from this port waits somewhere */
	struct hv_ring *pnext, **pprev; /* hv->by_partner[partner] (exact partner) */
	/* Pending connection requests (syn.c): a FIFO by end position. */
	uint64_t written; /* bytes ever written to the ring */
	struct syn_ent *syn;
	unsigned syn_head, syn_n, syn_cap;
	struct hv_stats stats;
	/* The send ring, for sockets (NULL otherwise).  Hostile like the rest. */
	struct v4v_tx_ring *txmem;
	uint32_t txlen;
	uint32_t txhead; /* our copy of its rx_ptr: consumed up to here */
	bool tx_broken;
	struct hv_ring *blocked_on; /* the full ring our first message waits for */
	uint32_t blocked_need;
	struct hv_ring *dnext, **dprev; /* blocked_on->blockers */
	struct hv_ring *blockers;	/* send rings blocked on this ring */
	struct hv_ring *fnext, **fprev; /* hv->full: rings with blockers */
	uint64_t block_min;		/* no blocker's message needs less room than this */
	/* Spares (wire/proto.h, V4V_OP_RING_SPARE): a spare is lent to the
	 * listener spare_of (NULL once that has gone) and reached by no send
	 * until a SYN takes it; a listener keeps its spares oldest first. */
	bool spare;
	struct hv_ring *spare_of, *snext;
	struct hv_ring *spares;
	unsigned nspares;
};

struct hv_client {
	struct hv_client *next; /* domain's list */
	struct hv_domain *d;
	void *cookie;
	const uint8_t *staging; /* V4V_STAGING_SIZE bytes, the shell's mapping */
	struct hv_ring *rings;
	struct waiter *waits; /* the waits it is named in */
	unsigned ev_head, ev_n;
	bool ev_overflow;
	bool freeing; /* hv_client_free: its rings go, none hears of the others */
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
	void *ctx;	       /* the shell's, passed to every callback */
	uint64_t bad_requests; /* malformed requests served (serve.c) */
	unsigned ndomains;
	unsigned last_auto, auto_max; /* automatic domids: the last given, the top */
	struct hv_domain *dom[V4V_DOMID_MAX + 1];
	struct hv_ring *bucket[RING_BUCKETS];
	struct hv_fw_rule fw[HV_FW_MAX_RULES];
	unsigned nfw;
	enum hv_fw_action policy;
	struct hv_name *names;
	unsigned nnames, names_cap;
	struct hv_ring *full; /* rings send rings are blocked on, polled */
	/* Rings with an exact partner, by partner: who to tell it is gone. */
	struct hv_ring *by_partner[V4V_DOMID_MAX + 1];
	uint64_t removal_work; /* rings and waits visited removing rings, clients */
	/* Messages written to unpub but its tx_ptr not yet stored (deliver.c:
	 * publish): a pump of a send ring publishes once per run of messages to
	 * one ring, not once a message.  unpub_from: its tx before them. */
	struct hv_ring *unpub;
	uint32_t unpub_from;
	bool batching;
	uint64_t poll_rounds; /* hv_poll_waiters calls with send rings blocked */
	uint64_t poll_work;   /* rings those calls looked at */
};

/* Events (hv.c): queue one for r's owner and signal it. */
void hv__post_event_err(struct hv *hv, struct hv_ring *r, uint32_t type,
			const struct v4v_addr *peer, uint32_t err);
void hv__post_event(struct hv *hv, struct hv_ring *r, uint32_t type, const struct v4v_addr *peer);

/* The ring table (ringtab.c).  Partner is part of the key: exact and
 * wildcard rings coexist. */
struct hv_ring *hv__ring_find(struct hv *hv, uint16_t domid, v4v_port_t aport, uint16_t partner);
/* The ring a send from `from` to dst lands in: exact partner first. */
struct hv_ring *hv__ring_route(struct hv *hv, const struct v4v_addr *dst, uint16_t from);
/* Any ring of domid on aport, whatever its partner: a sender's own ring. */
struct hv_ring *hv__ring_at(struct hv *hv, uint16_t domid, v4v_port_t aport);
struct v4v_addr hv__ring_addr(const struct hv_ring *r);
/* Read rx_ptr once and validate it; a bad value breaks the ring (false). */
bool hv__ring_read_rx(struct hv *hv, struct hv_ring *r, uint32_t *rx);

/* Delivery (deliver.c): wake one space waiter; unblock the send rings
 * waiting on dest (all when gone; each one looked at counts in *work when
 * work is not NULL); forget every wait of a client. */
void hv__wake(struct hv *hv, const struct waiter *w);
bool hv__tx_recheck(struct hv *hv, struct hv_ring *dest, uint32_t space, bool gone, uint64_t *work);
void hv__wait_cancel_all(struct hv *hv, struct hv_client *c);
/* Wake and free every wait on r (it is going away). */
void hv__wait_drop_ring(struct hv *hv, struct hv_ring *r);
/* Take r off the blocked lists. */
void hv__tx_unlink(struct hv_ring *r);

/* Connection requests (syn.c): whether a SYN from src may enter r now
 * (-ENOBUFS past limits.connects_per_source), note one that did, and
 * forget them all. rx is r's validated rx_ptr. */
int hv__syn_admit(struct hv *hv, struct hv_ring *r, uint16_t src, uint32_t rx);
void hv__syn_note(struct hv_ring *r, uint16_t src);
void hv__syn_free(struct hv_ring *r);

/* Spares (ringtab.c): the one a SYN from domid to listener l may take
 * (NULL: none free), and the taking: partnered with domid from now on. */
struct hv_ring *hv__spare_pick(struct hv *hv, struct hv_ring *l, uint16_t domid);
void hv__spare_take(struct hv *hv, struct hv_ring *sp, uint16_t domid);

/* Tell the rings naming domid as partner that it is gone (ringtab.c). */
void hv__tell_partners_gone(struct hv *hv, uint16_t domid);

/* Names (names.c): drop every name of a domain going away. */
void hv__names_drop(struct hv *hv, uint16_t domid);

#endif
