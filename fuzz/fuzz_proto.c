/* SPDX-License-Identifier: MIT */
/*
 * Arbitrary packets through v4vd's own request path, in process: hv_serve_io
 * says what to map, this target plays the shell's I/O (guarded heap blocks
 * for memfds, distinct addresses for doorbells), then hv_serve validates,
 * dispatches and writes the reply, exactly as for v4vd.
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
 *   bit  18    the packet carries one fd too many (wraps to none)
 *   bit  19    the shell fails to map a register's send ring
 *   bit  20    a request without fds comes through a call area instead
 *              (hv_serve_area), claimed to be the packet's length; the
 *              reply must be what the channel's would be
 *   bit  21    its caller announced it sleeps (the area's waiting word,
 *              which v4vd reads and leaves as it is)
 * A register carries its memfd, a doorbell (bit 16, or when it has a send
 * ring) and the send ring's memfd (tx_len).
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
	uint32_t len;	  /* data bytes after the 64-byte header */
	uint32_t claimed; /* the length the shell mapped it for */
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

static struct v4v_ring *region_new(uint32_t len, uint32_t claimed)
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
		g->claimed = claimed;
		g->bell = NULL;
		g->by = NULL;
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

static void fake_signal(void *ctx, void *cookie)
{
	(void)ctx, (void)cookie;
	signals++;
}

static void fake_ring_signal(void *ctx, void *cookie, unsigned what)
{
	check_bell(cookie);
	CHECK(what && (what & ~(HV_SIG_DATA | HV_SIG_WAITER | HV_SIG_EVENT)) == 0);
	signals++;
}

static void fake_ring_edge(void *ctx, void *cookie)
{
	check_bell(cookie);
	signals++;
}

/* The core hands back exactly what it took, once, with the right length
 * and the doorbell it was given. */
static void fake_unmap(void *ctx, void *mem, uint32_t len, void *cookie)
{
	struct region *g = region_of(mem);
	CHECK(g);
	CHECK(g->claimed == len);
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
	struct v4v_ring *mem = region_new(len, len);
	region_of(mem)->bell = bell;
	region_of(mem)->by = c;
	CHECK(hv_register_ring(s->hv, c, &reg, 0, mem, bell, NULL, 0, NULL) == 0);
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
	s->hv = hv_new(&lim, &ops, NULL);
	CHECK(s->hv);
	CHECK(hv_domain_create(s->hv, 1, "a", &s->a) == 0);
	CHECK(hv_domain_create(s->hv, 2, "b", &s->b) == 0);
	s->ca = hv_client_new(s->hv, s->a, NULL);
	s->ca2 = hv_client_new(s->hv, s->a, NULL);
	s->cb = hv_client_new(s->hv, s->b, NULL);
	CHECK(s->ca && s->ca2 && s->cb);
	hv_client_set_staging(s->ca, staging);
	hv_client_set_staging(s->ca2, staging);
	hv_client_set_staging(s->cb, staging);
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
		hv_sendv(s->hv, s->ca, 1, &dst, 0, &seg, 1, NULL, NULL);
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

/* The shell's mapping of a memfd for size bytes: an absurd length gets a
 * header-only block, so any use of it before the core refuses it shows. */
static void *shell_map(size_t size, const struct hv_client *c)
{
	uint32_t len = (uint32_t)(size - V4V_RING_HDR_SIZE);
	struct v4v_ring *mem = region_new(len <= RING_CAP ? len : 0, len);
	region_of(mem)->by = c;
	return mem;
}

/* The shell's part of a request: the I/O hv_serve_io asks for. */
static void shell_io(const struct hv_io *io, const struct hv_client *c, uint32_t seq,
		     struct hv_mapped *m)
{
	if (!io->ring_size)
		return;
	m->ring = shell_map(io->ring_size, c);
	if (io->tx_size) {
		if (seq & (1u << 19)) {
			m->err = -EFAULT;
			return;
		}
		m->tx = shell_map(io->tx_size, c);
	}
	if (io->bell) {
		m->bell = &bells[2];
		region_of(m->ring)->bell = m->bell;
	}
}

/* The fds the packet carries (see the top). */
static unsigned req_nfds(const union v4v_req_any *q, size_t n)
{
	unsigned nfds = 0;
	if (n < sizeof(q->h))
		return 0;
	if (q->h.op == V4V_OP_ATTACH)
		nfds = 2;
	if (q->h.op == V4V_OP_REGISTER_RING)
		nfds = n == sizeof(q->reg) && q->reg.tx_len ? 3 : q->h.seq & (1u << 16) ? 2 : 1;
	if (q->h.seq & (1u << 18))
		nfds = (nfds + 1) % 4;
	return nfds;
}

/* A register either took everything the shell mapped, or gave it all back. */
static void check_register(const struct v4v_req_register *q, const struct hv_mapped *m, long ret)
{
	if (ret) {
		CHECK(!m->registered);
		CHECK(!m->ring || !region_of(m->ring));
		CHECK(!m->tx || !region_of(m->tx));
		return;
	}
	CHECK(m->registered && m->ring && region_of(m->ring));
	CHECK(region_of(m->ring)->len == q->ring.len);
	CHECK(v4v_ring_ptr_ok(m->ring->tx_ptr, q->ring.len));
	CHECK(m->has_tx == (q->tx_len != 0));
	if (m->tx)
		CHECK(region_of(m->tx) && region_of(m->tx)->len == q->tx_len);
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

static void tx_snapshot(uint32_t *tx)
{
	for (unsigned i = 0; i < MAX_REGIONS; i++)
		tx[i] = regions[i].live ? region_ring(&regions[i])->tx_ptr : 0;
}

static void check_sendv(const struct scene *s, const struct hv_client *c,
			const struct v4v_req_sendv *q, const uint32_t *tx, long n, uint32_t max)
{
	unsigned moved = 0;
	for (unsigned i = 0; i < MAX_REGIONS; i++) {
		if (!regions[i].live || region_ring(&regions[i])->tx_ptr == tx[i])
			continue;
		moved++;
		CHECK(n >= 0);
		check_delivery(&regions[i], tx[i], n, q, hv_domain_id(hv_client_domain(c)),
			       q->staging_off);
	}
	/* Whole or nothing, one ring at most; a drop reports success; the
	 * ring that took it says how much it takes. */
	CHECK(moved <= 1);
	if (moved)
		CHECK(max >= (uint64_t)n);
	if (n >= 0 && s->policy == HV_FW_ACCEPT)
		CHECK(moved == 1);
	if (s->policy == HV_FW_DROP)
		CHECK(moved == 0);
}

/* The entries come back after the reply, flags filled in. */
static void check_notify(const struct v4v_req_notify *q, const union v4v_reply_any *out,
			 size_t rlen)
{
	const uint16_t known = V4V_RING_EXISTS | V4V_RING_SHARED | V4V_RING_EMPTY |
			       V4V_RING_SUFFICIENT | V4V_RING_EMSGSIZE | V4V_RING_EBUSY;
	struct v4v_ring_data_ent ent[V4V_MAX_NOTIFY];

	CHECK(q->nent <= V4V_MAX_NOTIFY);
	CHECK(out->r.ret == 0);
	CHECK(rlen == sizeof(out->r) + q->nent * sizeof(ent[0]));
	memcpy(ent, out->raw + sizeof(out->r), q->nent * sizeof(ent[0]));
	for (unsigned i = 0; i < q->nent; i++) {
		CHECK((ent[i].flags & ~known) == 0);
		CHECK(ent[i].pad == 0);
		if (!(ent[i].flags & V4V_RING_EXISTS))
			CHECK(ent[i].flags == 0 && ent[i].max_message_size == 0);
		else
			CHECK(ent[i].max_message_size + 32 <= RING_CAP);
	}
}

static void check_events(const struct hv_event *ev, unsigned k)
{
	for (unsigned i = 0; i < k; i++)
		CHECK(ev[i].type >= V4V_EV_PARTNER_GONE && ev[i].type <= V4V_EV_OVERFLOW);
}

static void drain_events(struct hv_client *c)
{
	struct hv_event ev[V4V_EVENTS_MAX + 1];
	unsigned k = hv_events(c, ev, V4V_EVENTS_MAX + 1);
	CHECK(k <= V4V_EVENTS_MAX + 1);
	check_events(ev, k);
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

/* One packet of n bytes through v4vd's path; check is v4v_req_check's verdict. */
static void serve(struct scene *s, const void *pkt, size_t n, int check)
{
	union v4v_req_any q;
	union v4v_reply_any out;
	size_t len = n > sizeof(q) ? HV_REQ_TRUNCATED : n;
	uint32_t tx[MAX_REGIONS];

	/* v4vd receives into a V4V_REQ_MAX buffer: what does not fit is cut. */
	memset(&q, 0, sizeof(q));
	memcpy(&q, pkt, n > sizeof(q) ? sizeof(q) : n);
	scene_set(s, q.h.seq);
	struct hv_client *c = scene_caller(s, q.h.seq);
	unsigned nfds = req_nfds(&q, n);
	struct hv_io io;
	struct hv_mapped m = {0};
	hv_serve_io(&q, len, nfds, &io);
	/* The shell is asked for I/O only for a request the core will serve. */
	CHECK(!io.ring_size || (check == 0 && q.h.op == V4V_OP_REGISTER_RING));
	shell_io(&io, c, q.h.seq, &m);
	tx_snapshot(tx);

	size_t rlen;
	if (nfds == 0 && (q.h.seq & (1u << 20))) {
		/* The packet as a domain wrote it into its call area. */
		static struct v4v_call_area area;
		static uint32_t answered;
		union v4v_req_any aq;
		size_t alen;
		bool wake, sleeps = q.h.seq & (1u << 21);
		memcpy(area.req, pkt, n > sizeof(area.req) ? sizeof(area.req) : n);
		area.req_len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
		area.waiting = sleeps;
		area.sub = answered + 1;
		CHECK(hv_serve_area(s->hv, c, &area, &answered, &aq, &out, &alen, &wake));
		CHECK(alen == len && answered == area.sub && area.done == area.sub);
		CHECK(wake == sleeps && area.waiting == sleeps); /* read, never cleared */
		rlen = area.reply_len;
		CHECK(rlen <= sizeof(area.reply) && memcmp(area.reply, &out, rlen) == 0);
		CHECK(!hv_serve_area(s->hv, c, &area, &answered, &aq, &out, &alen, &wake));
	} else {
		rlen = hv_serve(s->hv, c, &q, len, nfds, &m, &out);
	}

	CHECK(rlen >= sizeof(out.r) && rlen <= sizeof(out));
	if (len == HV_REQ_TRUNCATED || n < sizeof(q.h))
		CHECK(out.r.h.op == 0 && out.r.h.seq == 0);
	else
		CHECK(out.r.h.op == q.h.op && out.r.h.seq == q.h.seq);
	if (len == HV_REQ_TRUNCATED)
		check = -EMSGSIZE;
	else if (!check && !v4v_req_nfds_ok(q.h.op, nfds))
		check = -EBADF;
	if (check) {
		CHECK(out.r.ret == check && rlen == sizeof(out.r));
		CHECK(!m.ring && !m.tx && !m.bell);
	} else {
		switch (q.h.op) {
		case V4V_OP_REGISTER_RING: check_register(&q.reg, &m, (long)out.r.ret); break;
		case V4V_OP_SENDV:
			/* Only a SYN_SPARE takes a spare (wire/proto.h). */
			CHECK(
			    rlen == sizeof(out.sendv) &&
			    (out.sendv.spare_port == 0 || q.send.message_type == V4V_MT_SYN_SPARE));
			check_sendv(s, c, &q.send, tx, (long)out.r.ret, out.sendv.max_message_size);
			break;
		case V4V_OP_NOTIFY: check_notify(&q.notify, &out, rlen); break;
		case V4V_OP_EVENTS: {
			struct hv_event ev[V4V_REPLY_MAX / sizeof(struct hv_event)];
			CHECK(out.r.ret >= 0 &&
			      rlen == sizeof(out.r) + (size_t)out.r.ret * sizeof(ev[0]));
			memcpy(ev, out.raw + sizeof(out.r), rlen - sizeof(out.r));
			check_events(ev, (unsigned)out.r.ret);
			break;
		}
		case V4V_OP_NAME_LOOKUP:
			CHECK(rlen == (out.r.ret == -ESRCH ? sizeof(out.r) : sizeof(out.name)));
			break;
		case V4V_OP_ATTACH:					   /* domain fd only */
		case V4V_OP_CALL_KICK: CHECK(out.r.ret == -EINVAL); break; /* the shell's */
		case V4V_OP_RING_SPARE:
			CHECK(rlen == sizeof(out.r) &&
			      (out.r.ret == 0 || out.r.ret == -ENOENT || out.r.ret == -EINVAL ||
			       out.r.ret == -EEXIST || out.r.ret == -ENOSPC));
			break;
		case V4V_OP_UNREGISTER_RING:
		case V4V_OP_RING_POKE:
		case V4V_OP_NAME_REGISTER:
		case V4V_OP_NAME_UNREGISTER: CHECK(rlen == sizeof(out.r)); break;
		default:
			/* A new op needs a case here, or it goes unchecked. */
			CHECK(!"v4v_req_check accepted an op this target does not know");
		}
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

/*
 * A packet the core refuses changes nothing but a counter: it is served by
 * one long-lived core, without the scene (most inputs are refused).
 */
static void serve_refused(const void *pkt, size_t n, unsigned nfds, int check)
{
	static struct hv *hv;
	static struct hv_client *c;
	union v4v_req_any q;
	union v4v_reply_any out;
	size_t len = n > sizeof(q) ? HV_REQ_TRUNCATED : n;

	if (!hv) {
		static const struct hv_ops ops = {.unmap = fake_unmap};
		struct hv_limits lim;
		struct hv_domain *d;
		hv_limits_default(&lim);
		hv = hv_new(&lim, &ops, NULL);
		CHECK(hv && hv_domain_create(hv, 1, "a", &d) == 0);
		c = hv_client_new(hv, d, NULL);
		CHECK(c);
		hv_client_set_staging(c, staging);
	}
	memset(&q, 0, sizeof(q));
	memcpy(&q, pkt, n > sizeof(q) ? sizeof(q) : n);
	struct hv_io io;
	struct hv_mapped m = {0};
	hv_serve_io(&q, len, nfds, &io);
	CHECK(!io.ring_size && !io.bell && !io.tx_size);
	uint64_t bad = hv_bad_requests(hv);
	size_t rlen = hv_serve(hv, c, &q, len, nfds, &m, &out);
	CHECK(hv_bad_requests(hv) == bad + 1);
	CHECK(rlen == sizeof(out.r) && out.r.ret == check);
	if (len == HV_REQ_TRUNCATED || n < sizeof(q.h))
		CHECK(out.r.h.op == 0 && out.r.h.seq == 0);
	else
		CHECK(out.r.h.op == q.h.op && out.r.h.seq == q.h.seq);
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
	}
	union v4v_req_any q = {0};
	memcpy(&q, pkt, size < sizeof(q) ? size : sizeof(q));
	unsigned nfds = req_nfds(&q, size);
	if (size > sizeof(q))
		e = -EMSGSIZE;
	else if (!e && !v4v_req_nfds_ok(q.h.op, nfds))
		e = -EBADF;
	else if (!e && q.h.op == V4V_OP_ATTACH)
		e = -EINVAL; /* only on the domain fd */
	if (e) {
		serve_refused(pkt, size, nfds, e);
		free(pkt);
		return 0;
	}
	scene_init(&s);
	serve(&s, pkt, size, e);
	hv_free(s.hv);
	/* Every ring came back through unmap, exactly once. */
	for (unsigned i = 0; i < MAX_REGIONS; i++)
		CHECK(!regions[i].live);
	free(pkt);
	return 0;
}
