/* SPDX-License-Identifier: MIT */
/*
 * Ring arithmetic: pure functions over (len, rx, tx) and ring memory.
 *
 * Used by v4vd (the only writer of data and tx_ptr) and by libv4v (the ring
 * owner, the only writer of rx_ptr).  Nothing here trusts the ring header:
 * callers pass index values they have read once and validated.
 */
#ifndef V4V_RING_H
#define V4V_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "v4v/abi.h"
#include "v4v/msg.h"

/* Round a byte count up to the 16-byte message slot. */
static inline uint32_t v4v_slot_round(uint32_t n)
{
	return (n + V4V_MSG_SLOT - 1) & ~(V4V_MSG_SLOT - 1);
}

/* A legal data-area length: 48 <= len <= 16 MiB, a multiple of 16. */
static inline bool v4v_ring_len_ok(uint32_t len)
{
	return len >= V4V_RING_MIN_LEN && len <= V4V_RING_MAX_LEN && len % V4V_MSG_SLOT == 0;
}

/* A legal index into a ring of len bytes: below len, slot aligned. */
static inline bool v4v_ring_ptr_ok(uint32_t ptr, uint32_t len)
{
	return ptr < len && ptr % V4V_MSG_SLOT == 0;
}

/* Bytes of messages queued between rx and tx. */
static inline uint32_t v4v_ring_used(uint32_t len, uint32_t rx, uint32_t tx)
{
	return tx >= rx ? tx - rx : len - rx + tx;
}

/* Bytes a new message may take: everything but the one slot kept free. */
static inline uint32_t v4v_ring_space(uint32_t len, uint32_t rx, uint32_t tx)
{
	return len - v4v_ring_used(len, rx, tx) - V4V_MSG_SLOT;
}

/* Slot-rounded bytes that a message with this payload occupies. */
static inline uint64_t v4v_msg_footprint(uint64_t payload)
{
	return (V4V_MSG_HDR_SIZE + payload + V4V_MSG_SLOT - 1) & ~(uint64_t)(V4V_MSG_SLOT - 1);
}

/* Largest payload that a ring of len bytes can ever take (Argo's value). */
static inline uint32_t v4v_ring_max_payload(uint32_t len)
{
	return len - V4V_MSG_HDR_SIZE - V4V_MSG_SLOT;
}

/*
 * Write one message at tx (which the caller has checked has room for
 * v4v_msg_footprint(n) bytes) and return the new tx.  The payload is the
 * concatenation of niov segments totalling n bytes.  Padding is zeroed so
 * no stale bytes of an earlier message show through.
 */
uint32_t v4v_ring_put(uint8_t *data, uint32_t len, uint32_t tx,
		      const struct v4v_ring_message_header *hdr, const struct v4v_seg *seg,
		      unsigned nseg);

/*
 * Find the message at rx.  Returns 1 and fills *m, 0 when the ring is
 * empty, -EBADMSG when the header at rx is inconsistent with (rx, tx, len).
 */
int v4v_ring_peek(const uint8_t *data, uint32_t len, uint32_t rx, uint32_t tx, struct v4v_msg *m);

/* Copy up to cap payload bytes of m into buf; returns bytes copied. */
size_t v4v_msg_copy(const struct v4v_msg *m, void *buf, size_t cap);

#endif
