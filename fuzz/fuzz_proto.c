/* SPDX-License-Identifier: MIT */
/*
 * v4v_req_check over arbitrary packets, then, for what it accepts, the same
 * path through the hypervisor core that v4vd would take, in process.
 *
 * Invariants: the validator reads only the n bytes it is given (ASan), an
 * accepted packet fits v4vd's receive buffer, and serving it never makes the
 * core read outside the staging area (an exact-size heap block) or write
 * outside a ring (each ring sits between guard bytes).  A delivered message
 * is checked against what was sent, including the stamped source.
 *
 * The request's seq field (echoed by v4vd, otherwise unused) first sets the
 * scene, so inputs reach full, wrapped and broken rings and waiters:
 *   bits 0-2   filler sends from domain 1 to ring (2, 80) before the request
 *   bits 3-8   filler payload, in 4-byte units
 *   bit  9     then the owner consumes everything (rx_ptr = tx_ptr)
 *   bit  10    then the owner writes bits 16-31 into rx_ptr (maybe garbage)
 *   bit  11    the request comes from domain 2's client, else
 *   bit  12    from domain 1's second client, else its first
 *   bits 13-14 firewall: accept, reject, drop, or reject port 81 only
 *   bit  15    afterwards domain 2 calls notify (waiters re-checked)
 *   bit  16    a ring being registered gets a doorbell
 *   bit  17    afterwards domain 1's second client goes away
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "core/hv.h"
#include "wire/proto.h"
#include "core/ring.h"
#include "fuzz.h"

#define GUARD	    64u /* bytes each side of every ring */
#define GUARD_BYTE  0xA5u
#define RING_CAP    65536u /* the scene's ring_len_max */
#define MAX_REGIONS 8u

/* A ring's memory as the shell would map it, framed by guard bytes. */
struct region {
	uint8_t *base;
	uint32_t len; /* data bytes after the 64-byte header */
	bool live;
	void *bell;		    /* the doorbell cookie it was registered with */
	const struct hv_client *by; /* the client that registered it */
};

static struct region regions[MAX_REGIONS];
static uint8_t *staging;
static unsigned signals;

static struct v4v_ring *region_ring(const struct region *g)
{
	return (struct v4v_ring *)(g->base + GUARD);
}

static void guards_check(const struct region *g)
{
	const uint8_t *tail = g->base + GUARD + V4V_RING_HDR_SIZE + g->len;
	for (unsigned i = 0; i < GUARD; i++)
		CHECK(g->base[i] == GUARD_BYTE && tail[i] == GUARD_BYTE);
}

static void guards_check_all(void)
{
	for (unsigned i = 0; i < MAX_REGIONS; i++)
		if (regions[i].live)
			guards_check(&regions[i]);
}

static struct v4v_ring *region_new(uint32_t len)
{
	for (unsigned i = 0; i < MAX_REGIONS; i++) {
		struct region *g = &regions[i];
		if (g->live)
			continue;
		size_t size = 2 * GUARD + V4V_RING_HDR_SIZE + (size_t)len;
		g->base = malloc(size);
		CHECK(g->base);
		memset(g->base, GUARD_BYTE, size);
		/* Stale bytes in the ring: nothing may rely on them being zero. */
		memset(g->base + GUARD, 0xEE, V4V_RING_HDR_SIZE + (size_t)len);
		g->len = len;
		g->live = true;
		return region_ring(g);
	}
	CHECK(!"out of regions");
	return NULL;
}

static struct region *region_of(const void *mem)
{
	for (unsigned i = 0; i < MAX_REGIONS; i++)
		if (regions[i].live && region_ring(&regions[i]) == mem)
			return &regions[i];
	return NULL;
}

static void region_free(struct region *g)
{
	guards_check(g);
	free(g->base);
	g->live = false;
}

/* Doorbells are just distinct addresses here. */
static char bells[MAX_REGIONS];

static void check_bell(const void *cookie)
{
	CHECK((const char *)cookie >= bells && (const char *)cookie < bells + MAX_REGIONS);
}

static void fake_signal(void *cookie)
{
	(void)cookie;
	signals++;
}

static void fake_ring_signal(void *cookie, unsigned what)
{
	check_bell(cookie);
	CHECK(what && (what & ~(HV_SIG_DATA | HV_SIG_WAITER | HV_SIG_EVENT)) == 0);
	signals++;
}

static void fake_ring_edge(void *cookie)
{
	check_bell(cookie);
	signals++;
}

/* The core hands back exactly what it took, once, with the right length
 * and the doorbell it was given. */
static void fake_unmap(void *mem, uint32_t len, void *cookie)
{
	struct region *g = region_of(mem);
	CHECK(g);
	CHECK(g->len == len);
	CHECK(g->bell == cookie);
	region_free(g);
}

struct scene {
	struct hv *hv;
	struct hv_domain *a, *b;
	struct hv_client *ca, *ca2, *cb;
	struct v4v_ring *b80;
	enum hv_fw_action policy;
};

static void ring_add(struct scene *s, struct hv_client *c, v4v_port_t aport, uint16_t partner,
		     uint32_t len, void *bell, struct v4v_ring **out)
{
	struct v4v_register_ring reg = {.aport = aport, .partner_id = partner, .len = len};
	struct v4v_ring *mem = region_new(len);
	region_of(mem)->bell = bell;
	region_of(mem)->by = c;
	CHECK(hv_register_ring(s->hv, c, &reg, 0, mem, bell, NULL) == 0);
	if (out)
		*out = mem;
}

static void scene_init(struct scene *s)
{
	static const struct hv_ops ops = {
	    .signal = fake_signal,
	    .ring_signal = fake_ring_signal,
	    .ring_blocked = fake_ring_edge,
	    .ring_space = fake_ring_edge,
	    .unmap = fake_unmap,
	    .tx_ready = fake_ring_edge,
	};
	struct hv_limits lim;

	hv_limits_default(&lim);
	lim.ring_len_max = RING_CAP;
	lim.waiters_per_ring = 1; /* so a second waiter meets EBUSY */
	memset(s, 0, sizeof(*s));
	s->hv = hv_new(&lim, &ops);
	CHECK(s->hv);
	CHECK(hv_domain_create(s->hv, 1, "a", &s->a) == 0);
	CHECK(hv_domain_create(s->hv, 2, "b", &s->b) == 0);
	s->ca = hv_client_new(s->hv, s->a, NULL);
	s->ca2 = hv_client_new(s->hv, s->a, NULL);
	s->cb = hv_client_new(s->hv, s->b, NULL);
	CHECK(s->ca && s->ca2 && s->cb);
	/* Domain 1's ring on port 1 has a doorbell: its filler sends come
	 * from there, so their EAGAIN and wake-ups go through it. */
	ring_add(s, s->cb, 80, V4V_DOMID_ANY, 256, NULL, &s->b80);
	ring_add(s, s->cb, 81, 1, V4V_RING_MIN_LEN, &bells[0], NULL);
	ring_add(s, s->ca, 80, V4V_DOMID_ANY, 1024, NULL, NULL);
	ring_add(s, s->ca, 1, 2, V4V_RING_MIN_LEN, &bells[1], NULL);
}

static void scene_set(struct scene *s, uint32_t seq)
{
	struct v4v_addr dst = {.aport = 80, .domain_id = 2};
	struct v4v_seg seg = {staging, ((seq >> 3) & 63) * 4};

	for (unsigned i = 0; i < (seq & 7); i++)
		hv_sendv(s->hv, s->ca, 1, &dst, 0, &seg, 1);
	if (seq & (1u << 9))
		s->b80->rx_ptr = s->b80->tx_ptr;
	if (seq & (1u << 10))
		s->b80->rx_ptr = seq >> 16;

	s->policy = (enum hv_fw_action)((seq >> 13) & 3);
	if (s->policy > HV_FW_DROP) {
		struct hv_fw_rule r = {.src_dom = V4V_DOMID_ANY,
				       .dst_dom = V4V_DOMID_ANY,
				       .src_port = V4V_PORT_ANY,
				       .dst_port = 81,
				       .action = HV_FW_REJECT};
		CHECK(hv_fw_insert(s->hv, 0, &r) == 0);
		s->policy = HV_FW_ACCEPT;
	}
	hv_fw_set_policy(s->hv, s->policy);
	guards_check_all();
}

static struct hv_client *scene_caller(const struct scene *s, uint32_t seq)
{
	if (seq & (1u << 11))
		return s->cb;
	return seq & (1u << 12) ? s->ca2 : s->ca;
}

static void do_register(struct scene *s, struct hv_client *c, const struct v4v_req_register *q)
{
	/* The shell maps 64 + len bytes only for a len it accepts; an absurd
	 * len gets a header-only block, so any use of it shows up. */
	uint32_t len = v4v_ring_len_ok(q->ring.len) && q->ring.len <= RING_CAP ? q->ring.len : 0;
	struct v4v_ring *mem = region_new(len);
	void *bell = q->h.seq & (1u << 16) ? &bells[2] : NULL;
	region_of(mem)->bell = bell;
	region_of(mem)->by = c;
	int e = hv_register_ring(s->hv, c, &q->ring, q->flags, mem, bell, NULL);
	if (e) {
		region_free(region_of(mem));
		return;
	}
	CHECK(len == q->ring.len);
	CHECK(v4v_ring_ptr_ok(mem->tx_ptr, len));
}

/* A delivered message must be exactly what was sent, from the true sender. */
static void check_delivery(const struct region *g, uint32_t old_tx, long n,
			   const struct v4v_req_sendv *q, uint16_t from, uint64_t off)
{
	static uint8_t buf[RING_CAP];
	const struct v4v_ring *ring = region_ring(g);
	struct v4v_msg m;

	CHECK(v4v_ring_peek(ring->ring, g->len, old_tx, ring->tx_ptr, &m) == 1);
	CHECK(m.len == (uint32_t)n);
	CHECK(m.next_rx == ring->tx_ptr);
	CHECK(m.source.domain_id == from);
	CHECK(m.source.aport == q->src.aport);
	CHECK(m.source.pad == 0);
	CHECK(m.message_type == q->message_type);
	CHECK(v4v_msg_copy(&m, buf, sizeof(buf)) == (size_t)n);
	CHECK(memcmp(buf, staging + off, (size_t)n) == 0);
}

static void do_sendv(struct scene *s, struct hv_client *c, const struct v4v_req_sendv *q)
{
	struct v4v_seg seg[V4V_MAX_IOV];
	uint32_t tx[MAX_REGIONS];
	uint64_t off = q->staging_off;

	for (unsigned i = 0; i < q->niov; i++) {
		seg[i] = (struct v4v_seg){staging + off, q->iov_len[i]};
		off += q->iov_len[i];
	}
	for (unsigned i = 0; i < MAX_REGIONS; i++)
		tx[i] = regions[i].live ? region_ring(&regions[i])->tx_ptr : 0;

	long n = hv_sendv(s->hv, c, q->src.aport, &q->dst, q->message_type, seg, q->niov);

	unsigned moved = 0;
	for (unsigned i = 0; i < MAX_REGIONS; i++) {
		if (!regions[i].live || region_ring(&regions[i])->tx_ptr == tx[i])
			continue;
		moved++;
		CHECK(n >= 0);
		check_delivery(&regions[i], tx[i], n, q, hv_domain_id(hv_client_domain(c)),
			       q->staging_off);
	}
	/* Whole or nothing, one ring at most; a drop reports success. */
	CHECK(moved <= 1);
	if (n >= 0 && s->policy == HV_FW_ACCEPT)
		CHECK(moved == 1);
	if (s->policy == HV_FW_DROP)
		CHECK(moved == 0);
}

static void do_notify(struct scene *s, struct hv_client *c, const struct v4v_req_notify *q,
		      size_t n)
{
	struct v4v_ring_data_ent ent[V4V_MAX_NOTIFY];
	const uint16_t known = V4V_RING_EXISTS | V4V_RING_SHARED | V4V_RING_EMPTY |
			       V4V_RING_SUFFICIENT | V4V_RING_EMSGSIZE | V4V_RING_EBUSY;

	CHECK(q->nent <= V4V_MAX_NOTIFY);
	memcpy(ent, (const uint8_t *)q + sizeof(*q), n - sizeof(*q));
	CHECK(hv_notify(s->hv, c, ent, q->nent) == 0);
	for (unsigned i = 0; i < q->nent; i++) {
		CHECK((ent[i].flags & ~known) == 0);
		CHECK(ent[i].pad == 0);
		if (!(ent[i].flags & V4V_RING_EXISTS))
			CHECK(ent[i].flags == 0 && ent[i].max_message_size == 0);
		else
			CHECK(ent[i].max_message_size + 32 <= RING_CAP);
	}
}

static void do_name(struct scene *s, struct hv_client *c, const struct v4v_req_name *q)
{
	struct hv_domain *d = hv_client_domain(c);
	v4v_port_t port;

	switch (q->h.op) {
	case V4V_OP_NAME_REGISTER:
		hv_name_register(s->hv, d, q->service, q->port, q->acl, q->nacl);
		break;
	case V4V_OP_NAME_UNREGISTER: hv_name_unregister(s->hv, d, q->service); break;
	default: {
		uint16_t domid = q->domid;
		if (domid == V4V_DOMID_ANY) {
			struct hv_domain *t = hv_domain_by_name(s->hv, q->domain);
			domid = t ? hv_domain_id(t) : V4V_DOMID_ANY;
		}
		if (hv_domain_find(s->hv, domid))
			hv_name_lookup(s->hv, d, domid, q->service, &port);
	}
	}
}

static void drain_events(struct hv_client *c)
{
	struct hv_event ev[V4V_EVENTS_MAX + 1];
	unsigned k = hv_events(c, ev, V4V_EVENTS_MAX + 1);
	CHECK(k <= V4V_EVENTS_MAX + 1);
	for (unsigned i = 0; i < k; i++)
		CHECK(ev[i].type >= V4V_EV_PARTNER_GONE && ev[i].type <= V4V_EV_OVERFLOW);
}

/* The core's own view of every ring stays sane whatever the owners wrote. */
static void check_rings(struct scene *s)
{
	for (struct hv_ring *r = hv_ring_next(s->hv, NULL); r; r = hv_ring_next(s->hv, r)) {
		struct hv_ring_info ri;
		hv_ring_info(r, &ri);
		CHECK(v4v_ring_len_ok(ri.len) && ri.len <= RING_CAP);
		CHECK(v4v_ring_ptr_ok(ri.tx, ri.len));
		CHECK(v4v_ring_ptr_ok(ri.rx, ri.len));
		CHECK(ri.waiters <= 1);
	}
}

/*
 * A client goes away: every ring memory it handed over goes with it.  (The
 * shell's doorbell names the client that registered it, so a ring that
 * outlived that client would leave the shell a dangling client.)
 */
static void client_gone(struct scene *s)
{
	const struct hv_client *gone = s->ca2;
	hv_client_free(s->hv, s->ca2);
	s->ca2 = NULL;
	for (unsigned i = 0; i < MAX_REGIONS; i++)
		CHECK(!regions[i].live || regions[i].by != gone);
}

static void serve(struct scene *s, const void *pkt, size_t n)
{
	union {
		struct v4v_req_hdr h;
		struct v4v_req_register reg;
		struct v4v_req_unregister unreg;
		struct v4v_req_sendv send;
		struct v4v_req_notify notify;
		struct v4v_req_name name;
		uint8_t raw[V4V_REQ_MAX];
	} q;

	/* v4vd receives into a V4V_REQ_MAX buffer; bigger never gets here. */
	CHECK(n <= sizeof(q));
	memcpy(&q, pkt, n);
	scene_set(s, q.h.seq);
	struct hv_client *c = scene_caller(s, q.h.seq);

	switch (q.h.op) {
	case V4V_OP_REGISTER_RING: do_register(s, c, &q.reg); break;
	case V4V_OP_UNREGISTER_RING:
		hv_unregister_ring(s->hv, c, q.unreg.aport, q.unreg.partner_id);
		break;
	case V4V_OP_RING_POKE: hv_ring_poke(s->hv, c, q.unreg.aport, q.unreg.partner_id); break;
	case V4V_OP_SENDV: do_sendv(s, c, &q.send); break;
	case V4V_OP_NOTIFY: do_notify(s, c, &q.notify, n); break;
	case V4V_OP_EVENTS: drain_events(c); break;
	case V4V_OP_NAME_REGISTER:
	case V4V_OP_NAME_UNREGISTER:
	case V4V_OP_NAME_LOOKUP: do_name(s, c, &q.name); break;
	case V4V_OP_ATTACH: break; /* handled by the shell on the domain fd */
	default:
		/* A new op needs a case here, or it goes unfuzzed. */
		CHECK(!"v4v_req_check accepted an op this target does not know");
	}
	guards_check_all();
	if (q.h.seq & (1u << 15))
		CHECK(hv_notify(s->hv, s->cb, NULL, 0) == 0);
	if (q.h.seq & (1u << 17))
		client_gone(s);
	check_rings(s);
	drain_events(s->ca);
	if (s->ca2)
		drain_events(s->ca2);
	drain_events(s->cb);
	guards_check_all();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scene s;

	if (!staging) {
		staging = malloc(V4V_STAGING_SIZE);
		CHECK(staging);
		for (size_t i = 0; i < V4V_STAGING_SIZE; i++)
			staging[i] = (uint8_t)(i * 7 + (i >> 9));
	}

	/* The validator sees an exact-size copy, so ASan flags any over-read. */
	uint8_t *pkt = malloc(size ? size : 1);
	CHECK(pkt);
	memcpy(pkt, data, size);
	int e = v4v_req_check(pkt, size);
	CHECK(e == 0 || e == -EINVAL || e == -ENOSYS || e == -EMSGSIZE || e == -E2BIG ||
	      e == -EFAULT || e == -EPROTO);
	if (e == 0) {
		struct v4v_req_hdr h;
		memcpy(&h, pkt, sizeof(h));
		/* Every accepted op has an fd count the shell can receive. */
		CHECK(v4v_req_nfds_ok(h.op, 0) || v4v_req_nfds_ok(h.op, 1) ||
		      v4v_req_nfds_ok(h.op, 2));
		scene_init(&s);
		serve(&s, pkt, size);
		hv_free(s.hv);
		/* Every ring came back through unmap, exactly once. */
		for (unsigned i = 0; i < MAX_REGIONS; i++)
			CHECK(!regions[i].live);
	}
	free(pkt);
	return 0;
}
