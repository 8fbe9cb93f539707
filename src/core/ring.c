/* SPDX-License-Identifier: MIT */
/* Ring arithmetic over Argo's layout (ring.h): slots, space, put and a
 * bounds-checked peek.  Pure: both v4vd and libv4v use it on hostile rings. */
#include "ring.h"

#include <errno.h>
#include <string.h>

/* Copy n bytes into the data area at off, wrapping at len; returns new off. */
static uint32_t put_bytes(uint8_t *data, uint32_t len, uint32_t off, const void *src, size_t n)
{
	const uint8_t *s = src;
	while (n > 0) {
		size_t chunk = len - off < n ? len - off : n;
		memcpy(data + off, s, chunk);
		s += chunk;
		n -= chunk;
		off = (uint32_t)((off + chunk) % len);
	}
	return off;
}

uint32_t v4v_ring_put(uint8_t *data, uint32_t len, uint32_t tx,
		      const struct v4v_ring_message_header *hdr, const struct v4v_seg *seg,
		      unsigned nseg)
{
	static const uint8_t zero[V4V_MSG_SLOT];
	uint32_t off = put_bytes(data, len, tx, hdr, V4V_MSG_HDR_SIZE);

	for (unsigned i = 0; i < nseg; i++)
		off = put_bytes(data, len, off, seg[i].base, seg[i].len);
	uint32_t pad = v4v_slot_round(hdr->len) - hdr->len;
	return put_bytes(data, len, off, zero, pad);
}

/* Copy n bytes out of the data area at off, wrapping at len. */
static void get_bytes(const uint8_t *data, uint32_t len, uint32_t off, void *dst, size_t n)
{
	uint8_t *d = dst;
	while (n > 0) {
		size_t chunk = len - off < n ? len - off : n;
		memcpy(d, data + off, chunk);
		d += chunk;
		n -= chunk;
		off = (uint32_t)((off + chunk) % len);
	}
}

int v4v_ring_peek(const uint8_t *data, uint32_t len, uint32_t rx, uint32_t tx, struct v4v_msg *m)
{
	struct v4v_ring_message_header h;

	if (!v4v_ring_ptr_ok(rx, len) || !v4v_ring_ptr_ok(tx, len))
		return -EBADMSG;
	uint32_t used = v4v_ring_used(len, rx, tx);
	if (used == 0)
		return 0;
	/* The header never straddles the end: rx and len are slot aligned. */
	get_bytes(data, len, rx, &h, sizeof(h));
	if (h.len < V4V_MSG_HDR_SIZE || h.len > used || v4v_slot_round(h.len) > used)
		return -EBADMSG;

	uint32_t start = (rx + V4V_MSG_HDR_SIZE) % len;
	uint32_t n = h.len - V4V_MSG_HDR_SIZE;
	uint32_t first = len - start < n ? len - start : n;

	m->source = h.source;
	m->message_type = h.message_type;
	m->len = n;
	m->seg[0] = (struct v4v_seg){data + start, first};
	m->seg[1] = (struct v4v_seg){data, n - first};
	m->next_rx = (rx + v4v_slot_round(h.len)) % len;
	return 1;
}

size_t v4v_msg_copy(const struct v4v_msg *m, void *buf, size_t cap)
{
	size_t done = 0;
	for (int i = 0; i < 2 && done < cap; i++) {
		size_t n = m->seg[i].len < cap - done ? m->seg[i].len : cap - done;
		memcpy((uint8_t *)buf + done, m->seg[i].base, n);
		done += n;
	}
	return done;
}
