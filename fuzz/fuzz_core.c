/* SPDX-License-Identifier: MIT */
/*
 * The core's bookkeeping of send rings that wait for room (hv->full, the
 * blockers lists), of the batch being published (hv->unpub) and of the
 * mappings it owns, under any sequence of what the shell and the domains
 * can do: pump, poll the waiters, consume, notify, re-register,
 * unregister, drop a client, write a hostile rx_ptr.
 *
 * Setup: domains 1..3, two clients each; six slots, slot k a ring of
 * RLEN bytes at port k + 1 of domain 1 + k % 3 with a send ring of TXLEN
 * bytes and a doorbell cookie, all heap blocks of the exact size that
 * ops.unmap frees (the cookie is poisoned first).
 *
 * Input: steps of 4 bytes, op k j arg (k and j slots, modulo 6; a short
 * tail is ignored):
 *   0 slot k's domain writes to its send ring a message of arg bytes for slot j
 *   1 pump slot k's send ring, budget 1 + arg % 40
 *   2 poll the waiters
 *   3 slot j's owner consumes one message, or all (arg odd)
 *   4 slot j's owner notifies (hv_ring_recheck)
 *   5 (re-)register slot j, by client arg % 2 of its domain, copying the
 *     live ring's header and data into the new mapping
 *   6 unregister slot j
 *   7 slot j's owner writes rx_ptr = arg * 3 (misaligned, past the end...)
 *   8 pump slot k with a byte budget of arg * 8 - 200 (may start in debt)
 *   9 client arg % 2 of slot k's domain goes away (its rings with it); a
 *     new one takes its place
 * Then the end: hostile rings are unregistered, and the rest drained
 * (consume all, poll, pump) until nothing moves.
 *
 * Invariants, after every step: no pump left a batch open (hv->unpub
 * NULL, not batching); hv->full is a well-linked list (fprev) of the rings
 * with blockers and holds every such ring; each one's blockers list is
 * well linked (dprev), its members are blocked_on it, and block_min is at
 * most each blocker's message footprint; every ring blocked_on another is
 * on that one's list; every live slot is found at its address, and the core
 * has no ring besides them.  Throughout:
 * no access to a block after its unmap (ASan) and no callback with a cookie
 * already given back; a consumer of a ring whose rx_ptr was never hostile
 * only ever sees whole messages.  At the end: hv->full is empty and every
 * send ring not broken was read to its end (no lost wake-up).
 */
#include <string.h>

#include "core/hv_priv.h"
#include "core/ring.h"
#include "fuzz.h"

#define NS     6
#define RLEN   256u
#define TXLEN  512u
#define MAGIC  0xC00C1E5u
#define STEP   4
#define ROUNDS 200

struct cookie {
	unsigned magic;
	int slot;
};

struct slot {
	struct hv_ring *r;
	struct v4v_ring *mem;
	struct v4v_tx_ring *tx;
	uint32_t txtail;
	bool live;
	bool hostile; /* its owner wrote an rx_ptr of its choosing */
};

static struct hv *hv;
static struct hv_domain *dom[4];
static struct hv_client *cl[4][2];
static struct slot sl[NS];

static uint16_t domof(int k)
{
	return (uint16_t)(1 + k % 3);
}

static void check_cookie(void *c)
{
	if (c)
		CHECK(((struct cookie *)c)->magic == MAGIC);
}

static void on_signal(void *ctx, void *c)
{
	(void)ctx, (void)c;
}
static void on_ring_signal(void *ctx, void *c, unsigned w)
{
	(void)ctx, (void)w;
	check_cookie(c);
}
static void on_cookie(void *ctx, void *c)
{
	(void)ctx;
	check_cookie(c);
}
/* The core gives a mapping back: free it, so ASan sees any later use. */
static void on_unmap(void *ctx, void *m, uint32_t len, void *c)
{
	(void)ctx, (void)len;
	free(m);
	if (c) {
		check_cookie(c);
		((struct cookie *)c)->magic = 0;
		free(c);
	}
}

static const struct hv_ops ops = {
    .signal = on_signal,
    .ring_signal = on_ring_signal,
    .ring_blocked = on_cookie,
    .ring_space = on_cookie,
    .unmap = on_unmap,
    .tx_ready = on_cookie,
};

/* (Re-)register slot k in fresh blocks, by client which of its domain; a
 * live ring's contents move over, as when a domain remaps its ring. */
static void reg(int k, int which)
{
	struct slot *s = &sl[k];
	struct v4v_register_ring g = {
	    .aport = (uint32_t)k + 1, .partner_id = V4V_DOMID_ANY, .len = RLEN};
	struct v4v_ring *mem = calloc(1, V4V_RING_HDR_SIZE + RLEN);
	struct v4v_tx_ring *tx = calloc(1, V4V_RING_HDR_SIZE + TXLEN);
	struct cookie *c = malloc(sizeof(*c));
	*c = (struct cookie){MAGIC, k};
	if (s->live)
		memcpy(mem, s->mem, V4V_RING_HDR_SIZE + RLEN);
	else
		s->hostile = false;
	CHECK(hv_register_ring(hv, cl[domof(k)][which], &g, 0, mem, c, tx, TXLEN, &s->r) == 0);
	s->mem = mem;
	s->tx = tx;
	s->txtail = 0;
	s->live = true;
}

/* By client 0 whichever client registered it: any client of the domain may. */
static void unreg(int k)
{
	CHECK(hv_unregister_ring(hv, cl[domof(k)][0], (uint32_t)k + 1, V4V_DOMID_ANY) == 0);
	sl[k].live = false;
}

/* The operations, by op byte (see the top): k, j slots, arg 0..255.  They
 * do nothing on a slot that is not live, but (re-)register. */

static void op_produce(int k, int j, int arg)
{
	static uint8_t buf[256];
	struct slot *s = &sl[k];
	uint32_t n = (uint32_t)arg;
	if (!s->live || v4v_msg_footprint(n) > v4v_ring_space(TXLEN, s->tx->rx_ptr, s->txtail))
		return;
	struct v4v_seg seg = {buf, n};
	struct v4v_ring_message_header h = {
	    .len = V4V_MSG_HDR_SIZE + n,
	    .source = {.aport = (uint32_t)j + 1, .domain_id = domof(j)},
	    .message_type = 1,
	};
	s->txtail = v4v_ring_put(s->tx->ring, TXLEN, s->txtail, &h, &seg, 1);
	s->tx->tx_ptr = s->txtail;
}

static void op_pump(int k, int j, int arg)
{
	(void)j;
	if (sl[k].live)
		hv_tx_pump(hv, sl[k].r, 1 + (unsigned)arg % 40, NULL);
}

static void op_poll(int k, int j, int arg)
{
	(void)k, (void)j, (void)arg;
	hv_poll_waiters(hv);
}

static void consume(int j, bool all)
{
	struct v4v_ring *m = sl[j].mem;
	uint32_t rx = m->rx_ptr;
	struct v4v_msg msg;
	int n;
	if (!v4v_ring_ptr_ok(rx, RLEN))
		return;
	while ((n = v4v_ring_peek(m->ring, RLEN, rx, m->tx_ptr, &msg)) == 1) {
		rx = msg.next_rx;
		if (!all)
			break;
	}
	CHECK(n >= 0 || sl[j].hostile);
	m->rx_ptr = rx;
}

static void op_consume(int k, int j, int arg)
{
	(void)k;
	if (sl[j].live)
		consume(j, arg & 1);
}

static void op_notify(int k, int j, int arg)
{
	(void)k, (void)arg;
	if (sl[j].live)
		hv_ring_recheck(hv, sl[j].r);
}

static void op_register(int k, int j, int arg)
{
	(void)k;
	reg(j, arg & 1);
}

static void op_unregister(int k, int j, int arg)
{
	(void)k, (void)arg;
	if (sl[j].live)
		unreg(j);
}

static void op_hostile_rx(int k, int j, int arg)
{
	(void)k;
	if (!sl[j].live)
		return;
	sl[j].mem->rx_ptr = (uint32_t)arg * 3;
	sl[j].hostile = true;
}

static void op_pump_bytes(int k, int j, int arg)
{
	int64_t budget = (int64_t)arg * 8 - 200;
	(void)j;
	if (sl[k].live)
		hv_tx_pump(hv, sl[k].r, 100, &budget);
}

static void op_client_gone(int k, int j, int arg)
{
	uint16_t d = domof(k);
	(void)j;
	hv_client_free(hv, cl[d][arg & 1]);
	cl[d][arg & 1] = hv_client_new(hv, dom[d], NULL);
	for (int q = 0; q < NS; q++) {
		if (domof(q) == d && sl[q].live &&
		    !hv__ring_find(hv, d, (uint32_t)q + 1, V4V_DOMID_ANY))
			sl[q].live = false;
	}
}

static void (*const op_table[])(int k, int j, int arg) = {
    [0] = op_produce,	  /* k queues arg bytes for j */
    [1] = op_pump,	  /* budget 1 + arg % 40 */
    [2] = op_poll,	  /* hv_poll_waiters */
    [3] = op_consume,	  /* j: one, or all when arg odd */
    [4] = op_notify,	  /* j's doorbell: hv_ring_recheck */
    [5] = op_register,	  /* j, by client arg % 2 */
    [6] = op_unregister,  /* j */
    [7] = op_hostile_rx,  /* j's rx_ptr = arg * 3 */
    [8] = op_pump_bytes,  /* k, arg * 8 - 200 bytes */
    [9] = op_client_gone, /* client arg % 2 of k's domain */
};
#define NOPS (sizeof(op_table) / sizeof(op_table[0]))

static void step(const uint8_t *p)
{
	op_table[p[0] % NOPS](p[1] % NS, p[2] % NS, p[3]);
}

static bool on_full_list(const struct hv_ring *r)
{
	for (const struct hv_ring *d = hv->full; d; d = d->fnext) {
		if (d == r)
			return true;
	}
	return false;
}

static bool is_blocker_of(const struct hv_ring *b, const struct hv_ring *d)
{
	for (const struct hv_ring *x = d->blockers; x; x = x->dnext) {
		if (x == b)
			return true;
	}
	return false;
}

static void check_blockers(struct hv_ring *d)
{
	CHECK(d->blockers != NULL);
	for (struct hv_ring **bp = &d->blockers; *bp; bp = &(*bp)->dnext) {
		CHECK((*bp)->dprev == bp);
		CHECK((*bp)->blocked_on == d);
		CHECK(d->block_min <= v4v_msg_footprint((*bp)->blocked_need));
	}
}

/* Every live slot is at its address, and the core has no other ring: so
 * the slots are all its rings (cheaper than hv_ring_next's bucket walk). */
static void check_slots(void)
{
	unsigned live = 0, nrings = 0;
	for (int q = 0; q < NS; q++) {
		struct hv_ring *r = sl[q].r;
		if (!sl[q].live)
			continue;
		live++;
		CHECK(hv__ring_find(hv, domof(q), (uint32_t)q + 1, V4V_DOMID_ANY) == r);
		if (r->blockers)
			CHECK(on_full_list(r));
		if (r->blocked_on)
			CHECK(is_blocker_of(r, r->blocked_on));
	}
	for (int d = 1; d <= 3; d++)
		nrings += hv_domain_nrings(dom[d]);
	CHECK(nrings == live);
}

static void invariants(void)
{
	unsigned nfull = 0;
	CHECK(hv->unpub == NULL);
	CHECK(!hv->batching);
	for (struct hv_ring **pp = &hv->full; *pp; pp = &(*pp)->fnext) {
		CHECK((*pp)->fprev == pp);
		check_blockers(*pp);
		CHECK(++nfull <= NS); /* no cycle */
	}
	check_slots();
}

/* One round of well-behaved domains; returns whether anything moved. */
static bool drain_round(void)
{
	unsigned moved = 0;
	for (int q = 0; q < NS; q++) {
		if (sl[q].live)
			consume(q, true);
	}
	hv_poll_waiters(hv);
	for (int q = 0; q < NS; q++) {
		if (!sl[q].live)
			continue;
		uint32_t rx = sl[q].tx->rx_ptr;
		moved += hv_tx_pump(hv, sl[q].r, 1000, NULL);
		moved += sl[q].tx->rx_ptr != rx; /* dropped ones count too */
	}
	invariants();
	return moved != 0;
}

static void drain(void)
{
	for (int q = 0; q < NS; q++) {
		if (sl[q].live && sl[q].hostile)
			unreg(q);
	}
	for (int round = 0; round < ROUNDS && drain_round(); round++)
		;
	CHECK(hv->full == NULL);
	for (int q = 0; q < NS; q++) {
		if (sl[q].live && !sl[q].r->tx_broken)
			CHECK(sl[q].tx->rx_ptr == sl[q].tx->tx_ptr);
	}
}

static void setup(void)
{
	struct hv_limits lim;
	hv_limits_default(&lim);
	hv = hv_new(&lim, &ops, NULL);
	for (uint16_t i = 1; i <= 3; i++) {
		CHECK(hv_domain_create(hv, i, NULL, &dom[i]) == 0);
		cl[i][0] = hv_client_new(hv, dom[i], NULL);
		cl[i][1] = hv_client_new(hv, dom[i], NULL);
	}
	memset(sl, 0, sizeof(sl));
	for (int k = 0; k < NS; k++)
		reg(k, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	for (size_t off = 0; off + STEP <= size; off += STEP) {
		step(data + off);
		invariants();
	}
	drain();
	hv_free(hv); /* gives every mapping back: ASan's leak check sees any kept */
	return 0;
}
