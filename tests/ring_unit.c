/* SPDX-License-Identifier: MIT */
/* Ring arithmetic, in process: fixed cases, then a randomized comparison
 * against a byte-queue model (seed printed; replay with T_SEED=N). */
#include <errno.h>
#include <string.h>

#include "core/ring.h"
#include "t.h"

static void slots(void)
{
	CHECK_EQ(v4v_slot_round(0), 0);
	CHECK_EQ(v4v_slot_round(1), 16);
	CHECK_EQ(v4v_slot_round(16), 16);
	CHECK_EQ(v4v_slot_round(17), 32);
	CHECK_EQ(v4v_msg_footprint(0), 16);
	CHECK_EQ(v4v_msg_footprint(1), 32);
	CHECK_EQ(v4v_msg_footprint(16), 32);
	CHECK(!v4v_ring_len_ok(32));
	CHECK(v4v_ring_len_ok(48));
	CHECK(!v4v_ring_len_ok(56));
	CHECK(v4v_ring_len_ok(V4V_RING_MAX_LEN));
	CHECK(!v4v_ring_len_ok(V4V_RING_MAX_LEN + 16));
	CHECK(v4v_ring_ptr_ok(0, 64));
	CHECK(v4v_ring_ptr_ok(48, 64));
	CHECK(!v4v_ring_ptr_ok(64, 64));
	CHECK(!v4v_ring_ptr_ok(8, 64));
	CHECK_EQ(v4v_ring_max_payload(48), 16);
}

static void space(void)
{
	/* Empty ring of 64: 48 usable (one slot kept free). */
	CHECK_EQ(v4v_ring_used(64, 0, 0), 0);
	CHECK_EQ(v4v_ring_space(64, 0, 0), 48);
	CHECK_EQ(v4v_ring_space(64, 16, 16), 48);
	/* tx ahead of rx */
	CHECK_EQ(v4v_ring_used(64, 0, 32), 32);
	CHECK_EQ(v4v_ring_space(64, 0, 32), 16);
	/* wrapped: tx behind rx */
	CHECK_EQ(v4v_ring_used(64, 48, 16), 32);
	CHECK_EQ(v4v_ring_space(64, 48, 16), 16);
	/* full: tx one slot behind rx */
	CHECK_EQ(v4v_ring_space(64, 32, 16), 0);
}

static void put_peek_wrap(void)
{
	uint8_t data[64];
	struct v4v_msg m;
	char out[64];
	struct v4v_ring_message_header h = {.len = 16 + 20, .source = {7, 3, 0}, .message_type = 9};
	struct v4v_seg seg[2] = {{"0123456789", 10}, {"abcdefghij", 10}};

	memset(data, 0xEE, sizeof(data));
	/* Start at 32 so the 48-byte message wraps. */
	uint32_t tx = v4v_ring_put(data, 64, 32, &h, seg, 2);
	CHECK_EQ(tx, 16);
	CHECK_EQ(v4v_ring_peek(data, 64, 32, tx, &m), 1);
	CHECK_EQ(m.len, 20);
	CHECK_EQ(m.source.aport, 7);
	CHECK_EQ(m.source.domain_id, 3);
	CHECK_EQ(m.message_type, 9);
	CHECK_EQ(m.seg[0].len, 16);
	CHECK_EQ(m.seg[1].len, 4);
	CHECK_EQ(m.next_rx, 16);
	CHECK_EQ(v4v_msg_copy(&m, out, sizeof(out)), 20);
	CHECK(memcmp(out, "0123456789abcdefghij", 20) == 0);
	/* Padding is zeroed, not stale. */
	CHECK_EQ(data[4], 0);
	CHECK_EQ(v4v_ring_peek(data, 64, 16, 16, &m), 0);
}

static void peek_rejects(void)
{
	uint8_t data[64] = {0};
	struct v4v_msg m;
	struct v4v_ring_message_header h = {.len = 15};
	memcpy(data, &h, sizeof(h));
	CHECK_EQ(v4v_ring_peek(data, 64, 0, 16, &m), -EBADMSG); /* len < header */
	h.len = 40;
	memcpy(data, &h, sizeof(h));
	CHECK_EQ(v4v_ring_peek(data, 64, 0, 32, &m), -EBADMSG); /* beyond tx */
	h.len = 0xFFFFFFF8u;
	memcpy(data, &h, sizeof(h));
	CHECK_EQ(v4v_ring_peek(data, 64, 0, 32, &m), -EBADMSG);	 /* overflow bait */
	CHECK_EQ(v4v_ring_peek(data, 64, 8, 32, &m), -EBADMSG);	 /* misaligned rx */
	CHECK_EQ(v4v_ring_peek(data, 64, 64, 32, &m), -EBADMSG); /* rx out of range */
}

/* Model: a FIFO of messages with a byte budget, against the real ring. */
static void random_model(void)
{
	enum { LEN = 1024, MAXQ = 256 };
	static uint8_t data[LEN];
	static uint8_t payload[MAXQ][LEN];
	static uint32_t plen[MAXQ];
	unsigned head = 0, count = 0, used = 0;
	uint32_t rx = 0, tx = 0;
	uint8_t buf[LEN];

	t_seed();
	for (int step = 0; step < 200000; step++) {
		if (t_rand() % 2) {
			uint32_t n = (uint32_t)(t_rand() % (v4v_ring_max_payload(LEN) + 1));
			uint64_t need = v4v_msg_footprint(n);
			bool fits = need <= v4v_ring_space(LEN, rx, tx);
			CHECK_EQ(fits, used + need <= LEN - 16);
			if (!fits || count == MAXQ)
				continue;
			unsigned slot = (head + count) % MAXQ;
			for (uint32_t i = 0; i < n; i++)
				payload[slot][i] = (uint8_t)t_rand();
			plen[slot] = n;
			struct v4v_ring_message_header h = {.len = 16 + n, .message_type = slot};
			struct v4v_seg seg = {payload[slot], n};
			tx = v4v_ring_put(data, LEN, tx, &h, &seg, 1);
			count++;
			used += (unsigned)need;
		} else {
			struct v4v_msg m;
			int r = v4v_ring_peek(data, LEN, rx, tx, &m);
			CHECK_EQ(r, count > 0);
			if (!r)
				continue;
			CHECK_EQ(m.message_type, head);
			CHECK_EQ(m.len, plen[head]);
			CHECK_EQ(v4v_msg_copy(&m, buf, sizeof(buf)), plen[head]);
			CHECK(memcmp(buf, payload[head], plen[head]) == 0);
			used -= (unsigned)v4v_msg_footprint(m.len);
			rx = m.next_rx;
			head = (head + 1) % MAXQ;
			count--;
		}
		CHECK_EQ(v4v_ring_used(LEN, rx, tx), used);
	}
}

static const struct t_case cases[] = {
    T_CASE(slots), T_CASE(space), T_CASE(put_peek_wrap), T_CASE(peek_rejects), T_CASE(random_model),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
