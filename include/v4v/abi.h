/* SPDX-License-Identifier: MIT */
/*
 * v4v shared-memory ABI: the contract between a domain and v4vd.
 *
 * Every structure here lives in memory that two parties can see, so every
 * field has a fixed width, every hole is an explicit pad, and the layout is
 * byte-for-byte that of Xen's public xen/argo.h (tests/abi_xen.c compiles
 * both and static-asserts sizes and offsets).
 *
 * A ring is a memfd owned by the receiving domain:
 *
 *   offset 0   rx_ptr  u32   written by the ring owner only (bytes consumed)
 *   offset 4   tx_ptr  u32   written by v4vd only (bytes produced)
 *   offset 8   56 reserved bytes
 *   offset 64  data[len]     messages, each a 16-byte header + payload,
 *                            padded to a 16-byte slot; a message may wrap.
 *
 * rx_ptr == tx_ptr means empty; one slot always stays free, so a ring of
 * len bytes holds at most len - 16 bytes of messages.  Both pointers are
 * byte offsets into data, always multiples of 16 and below len.
 */
#ifndef V4V_ABI_H
#define V4V_ABI_H

#include <stdint.h>

#define V4V_DOMID_ANY 0x7FF4u	  /* Xen's DOMID_INVALID, XEN_ARGO_DOMID_ANY */
#define V4V_DOMID_MAX 0x7FEFu	  /* highest ordinary domid (DOMID_FIRST_RESERVED-1) */
#define V4V_PORT_ANY  0xFFFFFFFFu /* "pick a port" in the socket layer */

#define V4V_MSG_SLOT	 16u	    /* XEN_ARGO_MSG_SLOT_SIZE */
#define V4V_RING_MIN_LEN 48u	    /* smallest legal data area */
#define V4V_RING_MAX_LEN 0x1000000u /* XEN_ARGO_MAX_RING_SIZE: 16 MiB */
#define V4V_MAX_IOV	 8u	    /* XEN_ARGO_MAXIOV */
#define V4V_MAX_NOTIFY	 256u	    /* ring-data entries per notify */
#define V4V_MAX_WAITERS	 32u	    /* space waiters per ring (default) */
#define V4V_MAX_RINGS	 128u	    /* rings per domain (default) */

/* register_ring flags (XEN_ARGO_REGISTER_FLAG_*) */
#define V4V_REGISTER_FAIL_EXIST 0x1u

/* ring-data entry flags (XEN_ARGO_RING_*) */
#define V4V_RING_EXISTS	    (1u << 0)
#define V4V_RING_SHARED	    (1u << 1)
#define V4V_RING_EMPTY	    (1u << 2)
#define V4V_RING_SUFFICIENT (1u << 3)
#define V4V_RING_EMSGSIZE   (1u << 4)
#define V4V_RING_EBUSY	    (1u << 5)

typedef uint32_t v4v_port_t;
typedef uint16_t v4v_domid_t;

struct v4v_addr {
	v4v_port_t aport;
	v4v_domid_t domain_id;
	uint16_t pad;
};

struct v4v_ring {
	uint32_t rx_ptr; /* owner writes; release after consuming */
	uint32_t tx_ptr; /* v4vd writes; release after producing */
	uint8_t reserved[56];
	uint8_t ring[];
};

struct v4v_ring_message_header {
	uint32_t len; /* header + payload, before slot padding */
	struct v4v_addr source;
	uint32_t message_type;
	uint8_t data[];
};

struct v4v_ring_data_ent {
	struct v4v_addr ring;
	uint16_t flags;
	uint16_t pad;
	uint32_t space_required;
	uint32_t max_message_size;
};

struct v4v_register_ring {
	v4v_port_t aport;
	v4v_domid_t partner_id;
	uint16_t pad;
	uint32_t len;
};

/*
 * A socket's send ring (a v4v extension, not Argo): the same layout turned
 * around.  The owner produces messages (tx_ptr), v4vd consumes them
 * (rx_ptr) and moves each into its destination ring; a message's `source`
 * field holds its destination.  Two words of the reserved area carry the
 * wake-up handshake, each side announcing before it sleeps and re-checking
 * after (see src/core/deliver.c, hv_tx_pump and hv_tx_park, and
 * src/lib/tx.c, v4v__tx_put and v4v__tx_wait; docs/ARCHITECTURE.md,
 * "Shared-memory handshakes").
 */
struct v4v_tx_ring {
	uint32_t rx_ptr;     /* v4vd: consumed up to here */
	uint32_t tx_ptr;     /* owner: produced up to here */
	uint32_t need_kick;  /* v4vd: set before it stops polling this ring */
	uint32_t want_space; /* owner: set before it waits for room */
	uint8_t reserved[48];
	uint8_t ring[];
};

#define V4V_RING_HDR_SIZE 64u
#define V4V_MSG_HDR_SIZE  16u

/* C11's _Static_assert is C++'s static_assert: the header serves both. */
#ifdef __cplusplus
#define V4V_STATIC_ASSERT static_assert
#else
#define V4V_STATIC_ASSERT _Static_assert
#endif
V4V_STATIC_ASSERT(sizeof(struct v4v_addr) == 8, "v4v_addr");
V4V_STATIC_ASSERT(sizeof(struct v4v_ring) == V4V_RING_HDR_SIZE, "v4v_ring");
V4V_STATIC_ASSERT(sizeof(struct v4v_ring_message_header) == V4V_MSG_HDR_SIZE, "msg hdr");
V4V_STATIC_ASSERT(sizeof(struct v4v_ring_data_ent) == 20, "ring data ent");
V4V_STATIC_ASSERT(sizeof(struct v4v_register_ring) == 12, "register ring");
V4V_STATIC_ASSERT(sizeof(struct v4v_tx_ring) == V4V_RING_HDR_SIZE, "tx ring");

#endif
