/* SPDX-License-Identifier: MIT */
/*
 * v4vd's send-ring reader (hv_tx_pump) over a send ring the domain wrote
 * as it liked: what a hostile socket owner can put in front of v4vd.
 *
 * Input: u32 tx_ptr, u32 want_space, then the send ring's data area (zero
 * padded to 4096 bytes).  A sender domain owns a socket ring with that
 * send ring; a receiver domain owns two destination rings (wildcard port 1,
 * and port 2 accepting only the sender), each between guard bytes.
 *
 * Invariants: no read or write outside any ring (exact-size heap blocks,
 * guards intact), a destination's tx only moves forward by whole slots and
 * stays in range, every delivered message carries the sender's true domid,
 * and the pump always ends (it is called until it moves nothing).
 */
#include <stdatomic.h>
#include <string.h>

#include "core/hv.h"
#include "fuzz.h"

#define TXLEN 4096u
#define DLEN  1024u
#define GUARD 64u

static void on_signal(void *ctx, void *c)
{
	(void)ctx, (void)c;
}
static void on_ring_signal(void *ctx, void *c, unsigned w)
{
	(void)ctx, (void)c, (void)w;
}
static void on_cookie(void *ctx, void *c)
{
	(void)ctx, (void)c;
}
static void on_unmap(void *ctx, void *m, uint32_t len, void *c)
{
	(void)ctx, (void)m, (void)len, (void)c;
}

struct guarded {
	uint8_t pre[GUARD];
	_Alignas(8) uint8_t bytes[V4V_RING_HDR_SIZE + DLEN];
	uint8_t post[GUARD];
};

/* Walk what arrived since *seen: whole messages from the sender only. */
static void check_dest(struct guarded *g, uint16_t sender, uint32_t *seen)
{
	for (unsigned i = 0; i < GUARD; i++)
		CHECK(g->pre[i] == 0xA5 && g->post[i] == 0xA5);
	struct v4v_ring *r = (struct v4v_ring *)g->bytes;
	CHECK(v4v_ring_ptr_ok(r->tx_ptr, DLEN));
	struct v4v_msg m;
	uint32_t rx = *seen;
	for (int n = 0; n < 1024 && v4v_ring_peek(r->ring, DLEN, rx, r->tx_ptr, &m) == 1; n++) {
		CHECK(m.source.domain_id == sender);
		rx = m.next_rx;
	}
	CHECK(rx == r->tx_ptr); /* the new messages tile the ring exactly */
	*seen = rx;
	r->rx_ptr = rx; /* consumed: room for what waits */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct hv_ops ops = {
	    .signal = on_signal,
	    .ring_signal = on_ring_signal,
	    .ring_blocked = on_cookie,
	    .ring_space = on_cookie,
	    .unmap = on_unmap,
	    .tx_ready = on_cookie,
	};
	struct hv_limits lim;
	uint32_t head[2] = {0};
	if (size < sizeof(head))
		return 0;
	memcpy(head, data, sizeof(head));
	data += sizeof(head);
	size -= sizeof(head);

	hv_limits_default(&lim);
	struct hv *hv = hv_new(&lim, &ops, NULL);
	struct hv_domain *sd, *dd;
	CHECK(hv_domain_create(hv, 1, "sender", &sd) == 0);
	CHECK(hv_domain_create(hv, 2, "receiver", &dd) == 0);
	struct hv_client *sc = hv_client_new(hv, sd, NULL), *dc = hv_client_new(hv, dd, NULL);

	/* Exact-size blocks: ASan sees any access past them. */
	struct v4v_ring *own = calloc(1, V4V_RING_HDR_SIZE + 64);
	struct v4v_tx_ring *tx = calloc(1, V4V_RING_HDR_SIZE + TXLEN);
	struct guarded *dest[2];
	uint32_t seen[2] = {0, 0};
	int cookie;
	struct hv_ring *r;
	struct v4v_register_ring reg = {.aport = 7, .partner_id = V4V_DOMID_ANY, .len = 64};
	memcpy(tx->ring, data, size < TXLEN ? size : TXLEN);
	CHECK(hv_register_ring(hv, sc, &reg, 0, own, &cookie, tx, TXLEN, &r) == 0);
	tx->tx_ptr = head[0];
	tx->want_space = head[1];
	for (unsigned i = 0; i < 2; i++) {
		dest[i] = malloc(sizeof(*dest[i]));
		memset(dest[i], 0xA5, sizeof(*dest[i]));
		memset(dest[i]->bytes, 0, sizeof(dest[i]->bytes));
		struct v4v_register_ring d = {
		    .aport = i + 1u, .partner_id = i ? 1 : V4V_DOMID_ANY, .len = DLEN};
		CHECK(hv_register_ring(hv, dc, &d, 0, (struct v4v_ring *)dest[i]->bytes, NULL, NULL,
				       0, NULL) == 0);
	}

	/* Drain as v4vd would; consume the destinations in between so a
	 * blocked ring gets going again. */
	for (int round = 0; round < 64; round++) {
		unsigned moved = hv_tx_pump(hv, r, 16, NULL);
		for (unsigned i = 0; i < 2; i++)
			check_dest(dest[i], 1, &seen[i]);
		hv_poll_waiters(hv);
		if (!moved && !hv_tx_blocked(r))
			break;
	}
	CHECK(v4v_ring_ptr_ok(tx->rx_ptr, TXLEN));

	hv_free(hv); /* unmap is a no-op: we own the blocks */
	(void)dc;
	free(own);
	free(tx);
	free(dest[0]);
	free(dest[1]);
	return 0;
}
