/* SPDX-License-Identifier: MIT */
/*
 * The hypervisor core: domains, rings, sendv, notify, firewall, names and
 * counters, with no I/O at all.  v4vd (src/daemon) is a thin shell that
 * moves request packets and fds in and out of sockets, does the I/O the core
 * asks for (maps ring memory, makes doorbells: see hv_serve) and turns the
 * callbacks below into eventfd writes, doorbell tokens and munmap calls.
 *
 * Every function returns 0 or a positive count on success and -errno on
 * failure, with Argo's error codes where Argo defines the operation.
 *
 * Who is who:
 *   hv_domain  a domain (domid, name); lives while it has clients or the
 *              shell holds it (v4v-run's domain fd).
 *   hv_client  one attached process of a domain: it owns the rings it
 *              registered, has its own VIRQ and its own event queue.
 *   hv_ring    a registered receive ring, mapped by the shell.
 */
#ifndef V4V_HV_H
#define V4V_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../wire/proto.h"
#include "ring.h"
#include "v4v/abi.h"

#define V4V_NAME_MAX   32u  /* domain and service names, including NUL */
#define V4V_EVENTS_MAX 256u /* queued events per client before overflow */

/* Limits; every one is configurable (v4vd.conf) and documented in v4vd(8). */
struct hv_limits {
	uint32_t domains;	   /* live domains */
	uint32_t rings_per_domain; /* Argo: 128 */
	uint64_t ring_bytes_per_domain;
	uint32_t ring_len_max;	   /* at most V4V_RING_MAX_LEN */
	uint32_t waiters_per_ring; /* Argo: 32; counts domains (one wait each) */
	uint32_t names_per_domain;
	uint32_t clients_per_domain;  /* attached processes: -EUSERS past it */
	uint32_t connects_per_source; /* a domain's unconsumed SYNs per ring: -ENOBUFS */
};
void hv_limits_default(struct hv_limits *l);

/* Events a client drains with V4V_OP_EVENTS after its VIRQ fires. */
#define hv_event v4v_event

struct hv_stats {
	uint64_t tx_msgs, tx_bytes, rx_msgs, rx_bytes;
	uint64_t eagain, rejected, dropped;
};

struct hv;
struct hv_domain;
struct hv_client;
struct hv_ring;

/*
 * What the shell does for the core.
 *
 * A ring may carry a doorbell (ring_cookie non-NULL): then signals about
 * that ring go to it, as HV_SIG_* bits (wire/proto.h), instead of the
 * owner's VIRQ.  A sender's own ring's doorbell hears ring_blocked when its
 * send got -EAGAIN and ring_space when the space it waits for is there.
 *
 * A callback never calls back into the core: it notes what to do and the
 * shell does it once the core call has returned.  The core relies on it
 * (a pump's unpublished run, a re-check's walk of the blocked send rings).
 */
struct hv_ops {
	void (*signal)(void *ctx, void *client_cookie);			  /* raise the VIRQ */
	void (*ring_signal)(void *ctx, void *ring_cookie, unsigned what); /* HV_SIG_* */
	void (*ring_blocked)(void *ctx, void *ring_cookie);
	void (*ring_space)(void *ctx, void *ring_cookie);
	void (*unmap)(void *ctx, void *mem, uint32_t ring_len, void *ring_cookie);
	/* Its send ring can move again, or is about to be written (a SYN
	 * went from or to it): poll it, it may be parked. */
	void (*tx_ready)(void *ctx, void *ring_cookie);
	/* The firewall rejected a send (for the log); may be NULL. */
	void (*rejected)(void *ctx, const struct v4v_addr *src, const struct v4v_addr *dst);
};

/* ctx is passed back as the first argument of every callback. */
struct hv *hv_new(const struct hv_limits *lim, const struct hv_ops *ops, void *ctx);
void hv_free(struct hv *hv);
const struct hv_limits *hv_limits(const struct hv *hv);
/* New limits at run time (v4vd's reload): they apply to what is added from
 * now on; what is over a lowered limit already stays. */
void hv_set_limits(struct hv *hv, const struct hv_limits *lim);

/* Domains.  domid V4V_DOMID_ANY picks the first free id after the last
 * one picked so, wrapping from the top (V4V_DOMID_MAX, or what
 * hv_domain_auto_max set) to 1: ids are not reused soon after a death. */
int hv_domain_create(struct hv *hv, uint16_t domid, const char *name, struct hv_domain **out);
void hv_domain_auto_max(struct hv *hv, uint16_t max);
/* hv_domain_create: -ENOSPC at limits.domains, -EUSERS when no id is
 * free for V4V_DOMID_ANY, -EEXIST for a taken id or name. */
void hv_domain_destroy(struct hv *hv, struct hv_domain *d);
struct hv_domain *hv_domain_find(struct hv *hv, uint16_t domid);
struct hv_domain *hv_domain_by_name(struct hv *hv, const char *name);
uint16_t hv_domain_id(const struct hv_domain *d);
const char *hv_domain_name(const struct hv_domain *d);
const struct hv_stats *hv_domain_stats(const struct hv_domain *d);
unsigned hv_domain_nclients(const struct hv_domain *d);
unsigned hv_domain_nrings(const struct hv_domain *d);
uint64_t hv_domain_ring_bytes(const struct hv_domain *d);
/* Iterate: first with prev NULL, then pass the previous one. */
struct hv_domain *hv_domain_next(struct hv *hv, struct hv_domain *prev);

/* Clients (attached processes).  hv_client_admit: 0, or -EUSERS when d
 * has limits.clients_per_domain already (the shell asks before building). */
int hv_client_admit(const struct hv *hv, const struct hv_domain *d);
struct hv_client *hv_client_new(struct hv *hv, struct hv_domain *d, void *cookie);
void hv_client_free(struct hv *hv, struct hv_client *c);
struct hv_domain *hv_client_domain(const struct hv_client *c);

/*
 * register_ring: mem is the shell's mapping of the ring (header + len bytes),
 * which the core owns from now on (ops.unmap on removal) when it returns 0,
 * and likewise ring_cookie (the doorbell, may be NULL) and txmem (a send
 * ring of txlen bytes, the fast path of sockets, or NULL; it needs a
 * doorbell; ops.unmap with cookie NULL).  Whole or nothing: every refusal
 * is found before anything changes, so a refused request leaves an existing
 * ring, its doorbell, send ring and waiters, exactly as they were.
 * On re-registration of an existing ring with the same len, the new mapping
 * replaces the old one and tx_ptr is kept when valid; the old doorbell and
 * send ring are given back (ops.unmap), and a send-ring wait on a full
 * destination is forgotten: the new registration brings its own doorbell
 * and send ring, or none.  The ring then belongs to the re-registering
 * client (which may be another process of the domain).
 */
int hv_register_ring(struct hv *hv, struct hv_client *c, const struct v4v_register_ring *r,
		     uint32_t flags, struct v4v_ring *mem, void *ring_cookie,
		     struct v4v_tx_ring *txmem, uint32_t txlen, struct hv_ring **out);

/*
 * Move up to budget messages from r's send ring into their destinations,
 * while *bytes (when not NULL) is above zero; each message moved takes its
 * length and header off *bytes (the last may take it below zero: a debt).
 * Returns the number moved.  A message whose destination is full stays
 * first in line and the ring waits (ops.tx_ready when there is room); a
 * message that cannot be delivered at all is dropped and reported to the
 * owner as V4V_EV_SEND_FAILED.  A malformed send ring breaks it.
 */
unsigned hv_tx_pump(struct hv *hv, struct hv_ring *r, unsigned budget, int64_t *bytes);
/* About to stop polling r's send ring: announce it, then re-check.  True
 * when the owner must now kick us; false when messages are waiting. */
bool hv_tx_park(struct hv *hv, struct hv_ring *r);
/* Whether r's send ring waits for room in a destination. */
bool hv_tx_blocked(const struct hv_ring *r);
/* Re-check space in every ring send rings are blocked on: one rx_ptr read
 * per such ring, its blockers only when it has room (cheap when none). */
void hv_poll_waiters(struct hv *hv);
/* The owner of r says (on its doorbell) that it consumed: wake the senders
 * waiting on r that now fit, as a notify would (cheap when none wait). */
void hv_ring_recheck(struct hv *hv, struct hv_ring *r);
/* Remove a ring the shell holds (its doorbell hung up): as unregister. */
void hv_ring_drop(struct hv *hv, struct hv_ring *r);
int hv_unregister_ring(struct hv *hv, struct hv_client *c, v4v_port_t aport, uint16_t partner);

/* Lend c's connection ring (aport, partner) to c's listener ring
 * (listener, any) as a spare: wire/proto.h, V4V_OP_RING_SPARE, for what
 * that means and its errnos. */
int hv_ring_spare(struct hv *hv, struct hv_client *c, v4v_port_t aport, uint16_t partner,
		  v4v_port_t listener);

/* Raise DATA on the doorbell of one of the caller's domain's rings: a
 * reader that drained a token it had not yet acted on gets it back. */
int hv_ring_poke(struct hv *hv, struct hv_client *c, v4v_port_t aport, uint16_t partner);

/*
 * sendv: the source domain is the caller's, whatever src says; src->aport is
 * kept.  The payload is nseg segments (at most V4V_MAX_IOV) in memory the
 * shell has bounds-checked.  Returns payload bytes or -errno.  When a ring
 * was found for dst, *max_message (may be NULL) is the largest payload it
 * takes, else 0: the sender learns it without a second call.  A
 * V4V_MT_SYN_SPARE that took a spare (wire/proto.h) sets *spare (may be
 * NULL: then it is a SYN) to its port, and *max_message is the spare's;
 * else *spare is 0.
 */
long hv_sendv(struct hv *hv, struct hv_client *c, v4v_port_t src_port, const struct v4v_addr *dst,
	      uint32_t message_type, const struct v4v_seg *seg, unsigned nseg,
	      uint32_t *max_message, v4v_port_t *spare);

/* notify: fills each entry's flags in place; see Argo's ring_data. */
int hv_notify(struct hv *hv, struct hv_client *c, struct v4v_ring_data_ent *ent, unsigned n);

/* Drain up to max queued events of this client. */
unsigned hv_events(struct hv_client *c, struct hv_event *ev, unsigned max);

/*
 * Serving requests (serve.c): the whole hypercall interface but the I/O.
 * For each packet received on a client's channel, with its fds, the shell
 *   1. asks hv_serve_io() what the fds must become (for REGISTER_RING: the
 *      ring memfd mapped, fd 1 made the ring's doorbell, the send-ring memfd
 *      mapped), and does exactly that, stopping at the first failure;
 *   2. calls hv_serve(), which validates the request, dispatches it and
 *      writes the reply; the core owns what m holds (only what
 *      hv_serve_io asked for) from then on: ops.unmap gives it back, as for
 *      any ring, at once when the request fails;
 *   3. sends the reply and closes the fds it did not consume.
 * n is the packet's length, or HV_REQ_TRUNCATED when it did not fit the
 * buffer.  The counters of hv_bad_requests() count malformed packets.
 */
#define HV_REQ_TRUNCATED SIZE_MAX
struct hv_io {
	size_t ring_size; /* map fd 0 this size; 0: no I/O for this request */
	bool bell;	  /* make fd 1 the ring's doorbell */
	size_t tx_size;	  /* map fd 2 this size (a send ring); 0: none */
	/* The ring's key: the shell refuses memory it has mapped already,
	 * but for this same ring's own, handed again to re-register it. */
	v4v_port_t aport;
	uint16_t partner;
};
void hv_serve_io(const union v4v_req_any *q, size_t n, unsigned nfds, struct hv_io *io);

struct hv_mapped {
	int err;		/* the shell's first I/O failure (-errno), or 0 */
	struct v4v_ring *ring;	/* fd 0 mapped, or NULL */
	void *bell;		/* the doorbell made of fd 1 (ring_cookie), or NULL */
	struct v4v_tx_ring *tx; /* fd 2 mapped, or NULL */
	/* Out: the ring now registered with bell, and whether tx came with it. */
	struct hv_ring *registered;
	bool has_tx;
};

/* The reply refusing a request the shell could not take in whole (its
 * fds were lost: -EMFILE), with the request's header so it is answered. */
size_t hv_serve_refuse(const union v4v_req_any *q, size_t n, int err, union v4v_reply_any *out);

/* Serve one request of client c; returns the reply's length. */
size_t hv_serve(struct hv *hv, struct hv_client *c, const union v4v_req_any *q, size_t n,
		unsigned nfds, struct hv_mapped *m, union v4v_reply_any *out);

/*
 * Call areas (wire/proto.h; docs/ARCHITECTURE.md, "The call area"): a
 * process's calls without fds, in its own memory.  hv_serve_area() serves
 * the call waiting in a if its sub is not *seq (the last one answered), as
 * hv_serve() serves a packet without fds: sub and req_len read once, the
 * request copied into q before anything looks at it (a length past
 * V4V_REQ_MAX is served as truncated), the reply written to the area,
 * then done released and *seq updated.  False when no call waits; *len
 * is the request's length (HV_REQ_TRUNCATED) and *wake whether the caller
 * announced it sleeps on done (the shell wakes it: a futex).
 * hv_area_poll() tells the caller it need not kick; hv_area_park() stops
 * that, announce-then-recheck: false (still polled) when a call came in.
 */
bool hv_serve_area(struct hv *hv, struct hv_client *c, struct v4v_call_area *a, uint32_t *seq,
		   union v4v_req_any *q, union v4v_reply_any *out, size_t *len, bool *wake);
void hv_area_poll(struct v4v_call_area *a);
bool hv_area_park(struct v4v_call_area *a, uint32_t seq);

/*
 * Attach, on a domain fd (the shell makes the channel, maps the staging
 * area, makes the VIRQ and the client): hv_attach_check() validates the
 * packet before any of that; hv_attach_reply() writes the reply, an error
 * (err < 0) or the attach reply naming d.
 */
int hv_attach_check(struct hv *hv, const struct v4v_req_attach *q, size_t n, unsigned nfds);
size_t hv_attach_reply(const struct hv_domain *d, const struct v4v_req_attach *q, int err,
		       union v4v_reply_any *out);

/* The client's staging area: V4V_STAGING_SIZE bytes the shell mapped,
 * where its sendv payloads are. */
void hv_client_set_staging(struct hv_client *c, const void *staging);

/* Malformed requests served so far (v4vctl status). */
uint64_t hv_bad_requests(const struct hv *hv);
/* Rings and waits visited while removing rings and clients (v4vctl
 * stats): in proportion to what the removals touch, not to the system. */
uint64_t hv_removal_work(const struct hv *hv);
/* Polling rounds that had blocked send rings to re-check, and the rings
 * they looked at (v4vctl stats): per round, the destinations blocked on,
 * plus the blockers of those with room, never every blocked send ring. */
uint64_t hv_poll_rounds(const struct hv *hv);
uint64_t hv_poll_work(const struct hv *hv);
/* The domain owning a ring. */
uint16_t hv_ring_domid(const struct hv_ring *r);

/* Rings, for v4vctl. */
struct hv_ring_info {
	uint16_t domid, partner;
	v4v_port_t aport;
	uint32_t len, rx, tx, waiters;
	bool broken;
	bool spare; /* lent to a listener, not taken (V4V_OP_RING_SPARE) */
	struct hv_stats stats;
};
struct hv_ring *hv_ring_next(struct hv *hv, struct hv_ring *prev);
void hv_ring_info(const struct hv_ring *r, struct hv_ring_info *out);

/* Firewall: an ordered rule list, first match wins, else the policy. */
enum hv_fw_action { HV_FW_ACCEPT = 0, HV_FW_REJECT = 1, HV_FW_DROP = 2 };
struct hv_fw_rule {
	uint16_t src_dom, dst_dom; /* V4V_DOMID_ANY matches any */
	/* A domain named, not numbered (src_dom/dst_dom then V4V_DOMID_ANY):
	 * matches whichever domain has that name when the message is sent;
	 * "" when unused. */
	char src_name[V4V_NAME_MAX], dst_name[V4V_NAME_MAX];
	v4v_port_t src_port, dst_port; /* V4V_PORT_ANY matches any */
	enum hv_fw_action action;
	uint64_t hits;
};
#define HV_FW_MAX_RULES 1024u
/* Insert before position pos (0-based; pos == count appends). */
int hv_fw_insert(struct hv *hv, unsigned pos, const struct hv_fw_rule *r);
int hv_fw_delete(struct hv *hv, unsigned pos);
void hv_fw_flush(struct hv *hv);
unsigned hv_fw_count(const struct hv *hv);
const struct hv_fw_rule *hv_fw_rule(const struct hv *hv, unsigned pos);
void hv_fw_set_policy(struct hv *hv, enum hv_fw_action a);
enum hv_fw_action hv_fw_policy(const struct hv *hv);
/* The verdict for one send, counting the hit; -1 when the policy applied. */
enum hv_fw_action hv_fw_check(struct hv *hv, const struct v4v_addr *src, const struct v4v_addr *dst,
			      int *rule);

/* Names: (domain, service) -> port, visible to any domain or to a list. */
#define HV_NAME_ACL_MAX 8u
int hv_name_register(struct hv *hv, struct hv_domain *d, const char *service, v4v_port_t port,
		     const uint16_t *acl, unsigned nacl);
int hv_name_unregister(struct hv *hv, struct hv_domain *d, const char *service);
/* Lookup on behalf of `asker` (NULL: the admin, who sees everything). */
int hv_name_lookup(struct hv *hv, const struct hv_domain *asker, uint16_t domid,
		   const char *service, v4v_port_t *port);
struct hv_name_info {
	uint16_t domid;
	char service[V4V_NAME_MAX];
	v4v_port_t port;
	unsigned nacl; /* 0: any domain */
	uint16_t acl[HV_NAME_ACL_MAX];
};
/* i-th registered name, or -ENOENT past the end. */
int hv_name_at(const struct hv *hv, unsigned i, struct hv_name_info *out);

/* A name is 1..31 of [A-Za-z0-9._-], not starting with a digit or '-'. */
bool hv_name_ok(const char *s);

#endif
