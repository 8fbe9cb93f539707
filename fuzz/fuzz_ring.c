/* SPDX-License-Identifier: MIT */
/*
 * The ring reader over an arbitrary ring image: what libv4v does with a
 * ring whose contents and tx_ptr it cannot trust.
 *
 * Input: u32 rx, u32 tx, u32 cap, then the data area (zero-padded up to a
 * legal length).  The reader walks every message from rx, first with rx/tx
 * as given, then with both forced into range, so the fuzzer spends its time
 * on message headers rather than on rejected indexes.
 *
 * Invariants: no read outside the data area (an exact-size heap block), the
 * returned segments lie inside it and add up to the payload, the walk
 * always advances and never consumes more than rx..tx holds, and
 * v4v_msg_copy writes at most cap bytes (an exact-size block too).
 */
#include <errno.h>
#include <string.h>

#include "core/ring.h"
#include "fuzz.h"

#define MAX_LEN 65536u

static void check_seg(const struct v4v_seg *s, const uint8_t *data, uint32_t len)
{
	const uint8_t *b = s->base;
	CHECK(s->len <= len);
	CHECK(b >= data && b <= data + len);
	CHECK((size_t)(data + len - b) >= s->len);
}

/* Payload byte i of the message whose header sits at rx, the slow way. */
static uint8_t payload_at(const uint8_t *data, uint32_t len, uint32_t rx, uint32_t i)
{
	return data[((uint64_t)rx + V4V_MSG_HDR_SIZE + i) % len];
}

static void check_copy(const struct v4v_msg *m, const uint8_t *data, uint32_t len, uint32_t rx,
		       uint32_t cap_seed)
{
	size_t cap = cap_seed % ((size_t)m->len + 32);
	uint8_t *buf = malloc(cap ? cap : 1);
	CHECK(buf);
	size_t n = v4v_msg_copy(m, buf, cap);
	CHECK(n == (cap < m->len ? cap : m->len));
	for (size_t i = 0; i < n; i++)
		CHECK(buf[i] == payload_at(data, len, rx, (uint32_t)i));
	free(buf);
}

static void walk(const uint8_t *data, uint32_t len, uint32_t rx, uint32_t tx, uint32_t cap)
{
	struct v4v_msg m;

	/* Each message takes at least one slot of the len - 16 usable bytes. */
	for (uint32_t step = 0; step < len / V4V_MSG_SLOT; step++) {
		int r = v4v_ring_peek(data, len, rx, tx, &m);
		if (r <= 0) {
			CHECK(r == 0 || r == -EBADMSG);
			if (r == 0)
				CHECK(rx == tx);
			return;
		}
		CHECK(r == 1);
		CHECK(v4v_ring_ptr_ok(rx, len) && v4v_ring_ptr_ok(tx, len));
		uint32_t used = v4v_ring_used(len, rx, tx);
		uint32_t took = v4v_slot_round(V4V_MSG_HDR_SIZE + m.len);
		CHECK(took <= used);
		check_seg(&m.seg[0], data, len);
		check_seg(&m.seg[1], data, len);
		CHECK(m.seg[0].len + m.seg[1].len == m.len);
		CHECK(m.seg[1].len == 0 || m.seg[1].base == data);
		CHECK(v4v_ring_ptr_ok(m.next_rx, len));
		CHECK(v4v_ring_used(len, m.next_rx, tx) == used - took);
		check_copy(&m, data, len, rx, cap);
		rx = m.next_rx;
	}
	CHECK(!"more messages than slots: the walk did not advance");
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	uint32_t rx, tx, cap;

	if (size < 12)
		return 0;
	memcpy(&rx, in, 4);
	memcpy(&tx, in + 4, 4);
	memcpy(&cap, in + 8, 4);
	in += 12;
	size -= 12;

	/* The caller's len is trusted (copied once, validated): make it legal. */
	size_t want = size < MAX_LEN ? size : MAX_LEN;
	uint32_t len = v4v_slot_round((uint32_t)want);
	if (len < V4V_RING_MIN_LEN)
		len = V4V_RING_MIN_LEN;
	CHECK(v4v_ring_len_ok(len));
	uint8_t *data = calloc(1, len);
	CHECK(data);
	memcpy(data, in, want);

	walk(data, len, rx, tx, cap);
	walk(data, len, (rx % len) & ~(V4V_MSG_SLOT - 1), (tx % len) & ~(V4V_MSG_SLOT - 1), cap);
	free(data);
	return 0;
}
