/* SPDX-License-Identifier: MIT */
/* Messages read in place from a ring, and the events v4vd queues for a
 * process.  Not shared memory: these live in the reader's own address space. */
#ifndef V4V_MSG_H
#define V4V_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "v4v/abi.h"

struct v4v_seg {
	const void *base;
	size_t len;
};

/* A message found in a ring: payload as one or two segments (two when it
 * wraps past the end of the ring). */
struct v4v_msg {
	struct v4v_addr source; /* stamped by v4vd: the true sender */
	uint32_t message_type;
	uint32_t len; /* payload bytes */
	struct v4v_seg seg[2];
	uint32_t next_rx; /* rx_ptr once this message is consumed */
};

/* Events, drained with v4v_events() after the VIRQ fires. */
#define V4V_EV_PARTNER_GONE 1 /* the partner domain of `ring` died */
#define V4V_EV_RING_GONE                                                                           \
	2		     /* ring `peer`, of the domain `ring` names as                         \
				partner, was unregistered */
#define V4V_EV_RING_BROKEN 3 /* `ring` had a bad rx_ptr and is disabled */
#define V4V_EV_OVERFLOW	   4 /* events were lost: re-check every ring */
#define V4V_EV_SEND_FAILED                                                                         \
	5 /* a queued send from `ring` to `peer` failed:                                           \
	     the errno is in `pad` */

struct v4v_event {
	uint32_t type;
	uint32_t pad;
	struct v4v_addr ring; /* this process's own ring */
	struct v4v_addr peer; /* the other side */
};

#endif
