/* SPDX-License-Identifier: MIT */
/* libv4v internals: the domain handle and the hypercall transport. */
#ifndef V4V_LIB_H
#define V4V_LIB_H

#include <pthread.h>
#include <stdbool.h>

#include "wire/proto.h"
#include "v4v/v4v.h"

struct v4v_domain {
	pthread_mutex_t lock; /* one hypercall at a time per process */
	int domain_fd;	      /* membership; attach requests go here */
	bool own_domain_fd;
	int chan;		    /* private channel to v4vd */
	int virq;		    /* eventfd from v4vd */
	int poll_fd;		    /* epoll over virq + chan hang-up */
	uint8_t *staging;	    /* V4V_STAGING_MEM, shared with v4vd: payloads, */
	struct v4v_call_area *area; /* and at its end the call area */
	pid_t pid;		    /* the process attached; re-attach after fork */
	uint32_t seq;
	uint16_t domid;
	char name[32];
	_Atomic bool dead; /* v4vd went away (set by any socket or call that sees it) */
	/* Events v4vd handed over beyond what a v4v_events() caller asked
	 * for: returned by the next calls, never dropped. */
	struct v4v_event
	    ev_left[(V4V_REPLY_MAX - sizeof(struct v4v_reply)) / sizeof(struct v4v_event)];
	unsigned ev_head, ev_n;
};

#define CALL_SPIN_NS  10000 /* a call to a polled area spins this long for its answer */
#define CALL_CHECK_MS 50    /* asleep, it looks this often whether v4vd died */

/* One request/reply round trip (lock held by the caller): through the call
 * area when it carries no fds, else on the channel.  Returns the reply's
 * ret, or -EPIPE when v4vd is gone. */
long v4v__call(struct v4v_domain *d, void *req, size_t n, int fd, void *reply, size_t cap,
	       size_t *got);
long v4v__call_fds(struct v4v_domain *d, void *req, size_t n, const int *fds, unsigned nfds,
		   void *reply, size_t cap, size_t *got);
/* v4v_sendv that also tells the destination ring's largest payload (0
 * when unknown): the first send to a destination learns it for free; and
 * the spare a SYN_SPARE took (wire/proto.h; 0: none).  Either may be NULL. */
long v4v__sendv(struct v4v_domain *d, v4v_port_t src_port, const struct v4v_addr *dst,
		const struct iovec *iov, unsigned niov, uint32_t message_type,
		uint32_t *max_message, v4v_port_t *spare);
/* Lend a connection ring to our listener ring (V4V_OP_RING_SPARE). */
int v4v__ring_spare(struct v4v_domain *d, v4v_port_t aport, uint16_t partner, v4v_port_t listener);
/* Register a ring with an optional doorbell and send ring (wire/proto.h).
 * A socket's ring (one with a doorbell) is committed: allocated and mapped
 * in before it is registered (rx.c). */
int v4v__ring_register(struct v4v_domain *d, v4v_port_t aport, uint16_t partner, uint32_t len,
		       uint32_t flags, int bell, int txfd, uint32_t txlen, struct v4v_rx **out);
/* Ask v4vd to raise DATA on the ring's doorbell again. */
int v4v__ring_poke(struct v4v_rx *r);
/* True when the ring is empty, checked after a full fence (before sleeping). */
bool v4v__rx_idle(struct v4v_rx *r);
/* The shared ring itself, header and data: for tests that scribble on it. */
struct v4v_ring *v4v__rx_ring(struct v4v_rx *r);
/* Unmap and free r without a call: v4vd dropped it already. */
void v4v__rx_forget(struct v4v_rx *r);
/* The partner v4vd now keys r under: a spare's (wire/proto.h) changes. */
void v4v__rx_set_partner(struct v4v_rx *r, uint16_t partner);

/* Unregister the stream rings pool.c keeps for d (NULL: every domain's):
 * all of them on v4v_close; when a register fails for quota, all but the
 * spares a connect has taken already (wire/proto.h: the connection's). */
void v4v__pool_flush(struct v4v_domain *d, bool all);
/* Close the doorbell pairs kept for new sockets (socket.c). */
void v4v__sock_blanks_drop(void);

/* getpid(), cached (a fork child asks again). */
pid_t v4v__pid(void);
/* Take the lock and re-attach first if we are a fork child. */
int v4v__enter(struct v4v_domain *d);
void v4v__leave(struct v4v_domain *d);

#endif
