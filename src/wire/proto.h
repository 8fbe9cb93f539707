/* SPDX-License-Identifier: MIT */
/*
 * The Linux transport's wire format (both v4vd and libv4v include it):
 * the hypercall channel, how a domain's requests reach v4vd on Linux.
 *
 * A channel is an AF_UNIX SOCK_SEQPACKET socket; each packet is one request
 * and gets exactly one reply packet, in order (but for V4V_OP_CALL_KICK,
 * below: requests without fds go through the call area).  Message payloads do not
 * travel in the packet: the domain gathers them into its staging area, a
 * memfd it handed over at attach time (mapped by v4vd, sealed against
 * shrinking), and the request names an offset in it.  v4vd copies from
 * staging into the destination ring; no domain maps another's memory.
 *
 * Attach: v4v-run gives the command a *domain fd* (V4V_DOMAIN_FD).  A process
 * attaches by sending V4V_OP_ATTACH on it with two fds (SCM_RIGHTS): one end
 * of a fresh socketpair (its private channel) and its staging memfd.  v4vd
 * replies on the private channel with struct v4v_attach_reply and the
 * process's VIRQ eventfd.  A domain lives while any process holds its
 * domain fd or a channel.
 */
#ifndef V4V_PROTO_H
#define V4V_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "v4v/abi.h"

#define V4V_PROTO_VERSION 3u
#define V4V_STAGING_SIZE  (V4V_RING_MAX_LEN) /* largest payload + headroom */
#define V4V_REQ_MAX	  8192u		     /* largest request packet */
#define V4V_REPLY_MAX	  8192u		     /* largest reply packet */

/*
 * The message types v4vd looks at: stream connection requests (SYN,
 * libv4v's sock.h).  v4vd counts a source domain's unconsumed SYNs in each
 * ring and refuses more than limits.connects_per_source with -ENOBUFS, so
 * one client cannot fill a listener's ring (a v4v addition; Argo has none).
 *
 * Spares (V4V_OP_RING_SPARE, a v4v addition): a listener's owner lends
 * v4vd rings of its own for connections to come.  A SYN_SPARE sent by
 * hypercall takes the oldest one: v4vd partners it with the sender's
 * domain, delivers the request to the listener as SYN_TAKEN with the
 * spare's port (a uint32_t) after the sender's payload, and tells the
 * sender the port in its reply (struct v4v_sendv_reply), so that a connect
 * completes without waiting for the server.  With no spare free, down a
 * send ring, with a payload over V4V_SYN_SPARE_MAX or one that leaves no
 * room for the port, a SYN_SPARE is delivered as a SYN.  So a SYN_TAKEN
 * is 4 to V4V_SYN_SPARE_MAX + 4 bytes, the port its last 4.  No domain may
 * send a SYN_TAKEN (-EINVAL): only v4vd vouches for a spare's port.
 */
#define V4V_MT_SYN	  0x53540001u
#define V4V_MT_SYN_SPARE  0x53540006u
#define V4V_MT_SYN_TAKEN  0x53540007u
#define V4V_SPARES_MAX	  16u /* spares one listener holds */
#define V4V_SYN_SPARE_MAX 64u /* largest SYN_SPARE payload that takes one */

enum v4v_op {
	V4V_OP_REGISTER_RING = 1, /* Argo numbering for the four Argo ops */
	V4V_OP_UNREGISTER_RING = 2,
	V4V_OP_SENDV = 3,
	V4V_OP_NOTIFY = 4,
	V4V_OP_EVENTS = 16, /* drain this process's event queue */
	V4V_OP_NAME_REGISTER = 17,
	V4V_OP_NAME_UNREGISTER = 18,
	V4V_OP_NAME_LOOKUP = 19, /* by domid, or by domain name */
	V4V_OP_RING_POKE = 20,	 /* raise DATA on one of our rings' doorbell */
	V4V_OP_CALL_KICK = 21,	 /* look at my call area (no reply: see below) */
	V4V_OP_RING_SPARE = 22,	 /* lend a ring of mine to my listener (above) */
	V4V_OP_ATTACH = 32,	 /* on the domain fd only */
};

/*
 * The doorbell token: one byte of HV_SIG_* bits v4vd sends on a ring's
 * doorbell (see struct v4v_req_register), which libv4v reads.
 *
 * A ring may carry a doorbell (ring_cookie non-NULL): then signals about
 * that ring go to it instead of the owner's VIRQ, and say what happened.
 * DATA is raised only when the ring goes from empty to non-empty (the
 * reader re-checks after announcing it will sleep: see rx.c); WAITER when
 * a sender waits for space in the ring (the owner should notify after
 * consuming); EVENT when an event about the ring is queued.
 */
#define HV_SIG_DATA   1u
#define HV_SIG_WAITER 2u
#define HV_SIG_EVENT  4u

struct v4v_req_hdr {
	uint32_t op;
	uint32_t seq; /* echoed in the reply */
};

/*
 * The call area: the same request and reply packets as the channel, in
 * shared memory, so that a call needs no system call while v4vd is awake
 * (docs/ARCHITECTURE.md, "The call area").  It is the last
 * V4V_CALL_AREA_SIZE bytes of the staging memfd (V4V_STAGING_MEM in all);
 * payload offsets stay below V4V_STAGING_SIZE.  Requests that carry fds
 * (register) still go on the channel.
 *
 * One call at a time.  The domain writes req and req_len, then releases
 * sub = the request's seq; v4vd answers in reply and reply_len, then
 * releases done = that seq.  v4vd polls an area for a while after its last
 * call (polled = 1), then parks it with announce-then-recheck: polled = 0,
 * fence, look at sub once more.  The domain, after its sub and a fence,
 * reads polled and, when 0, sends a V4V_OP_CALL_KICK packet (a header, no
 * fds) on the channel: the one packet that gets no reply.  A domain that
 * sleeps announces waiting and waits on done (a futex); v4vd wakes it.
 * A caller on the CPU that cpu names sleeps at once rather than spin:
 * v4vd cannot answer it from there while it spins.
 *
 * v4vd reads sub and req_len once each and copies the request out before
 * it checks it; it writes only reply, reply_len, done, polled and cpu.
 */
struct v4v_call_area {
	uint32_t sub;	  /* domain: the seq of the call submitted */
	uint32_t req_len; /* domain: its length, <= V4V_REQ_MAX */
	uint32_t waiting; /* domain: asleep on done (it clears it; v4vd only reads it) */
	uint8_t pad0[52];
	uint32_t done;	    /* v4vd: the seq of the call answered */
	uint32_t reply_len; /* v4vd: the reply's length */
	uint32_t polled;    /* v4vd: 1 while it polls this area, 0: kick it */
	uint32_t cpu;	    /* v4vd: 1 + the CPU it polls from (0: not said) */
	uint8_t pad1[48];
	uint64_t req[V4V_REQ_MAX / 8]; /* a request packet, as on the channel */
	uint64_t reply[V4V_REPLY_MAX / 8];
};
#define V4V_CALL_AREA_SIZE 20480u /* sizeof(struct v4v_call_area), in whole pages */
#define V4V_STAGING_MEM	   ((size_t)V4V_STAGING_SIZE + V4V_CALL_AREA_SIZE)
_Static_assert(sizeof(struct v4v_call_area) <= V4V_CALL_AREA_SIZE, "call area");

struct v4v_req_register {
	struct v4v_req_hdr h;
	struct v4v_register_ring ring;
	uint32_t flags;
	uint32_t tx_len; /* 0, or the data length of a send ring (third fd) */
			 /* fds: the ring memfd (>= 64 + len bytes, F_SEAL_SHRINK) and, for a
			  * socket, optionally one end of an AF_UNIX SOCK_SEQPACKET pair: the
			  * ring's doorbell.  v4vd sends a one-byte token of HV_SIG_* bits on it
			  * (data, waiter, event) and, when the owner's send from this ring's port
			  * got -EAGAIN, leaves the "blocker" packet the owner writes on it
			  * unread until the space is there, so the owner's end polls writable
			  * exactly when it may send again.  Closing the owner's end unregisters
			  * the ring.  A third fd, with tx_len, is the socket's send ring
			  * (struct v4v_tx_ring, >= 64 + tx_len bytes): the fast path. */
};

/* Also the body of V4V_OP_RING_POKE. */
struct v4v_req_unregister {
	struct v4v_req_hdr h;
	v4v_port_t aport;
	uint16_t partner_id;
	uint16_t pad;
};

/*
 * Lend ring (aport, partner_id), a connection ring with an exact partner, to
 * this process's listener ring (listener, any partner) as a spare: from now
 * on it is partnered with nobody and no send reaches it until a SYN_SPARE
 * takes it.  Its space waiters are woken to fail (its old partner's).
 * -ENOENT: no such ring of this process; -EINVAL: a wildcard ring, one
 * without a doorbell, or a listener that is a spare itself; -EEXIST: a
 * ring (aport, any) exists; -ENOSPC: the listener holds V4V_SPARES_MAX
 * already.  listener V4V_PORT_ANY takes a spare back: partner_id must be
 * V4V_DOMID_ANY (-EINVAL), and the spare (aport, any) is unregistered if
 * it is one of this process's that no connect has taken (-ENOENT if not:
 * a taken spare is keyed by its client, and (aport, any) is then some
 * other ring, or none).
 */
struct v4v_req_spare {
	struct v4v_req_hdr h;
	v4v_port_t aport;
	uint16_t partner_id;
	uint16_t pad;
	v4v_port_t listener;
	uint32_t pad2;
};

struct v4v_req_sendv {
	struct v4v_req_hdr h;
	struct v4v_addr src; /* only aport is used; domain is stamped */
	struct v4v_addr dst;
	uint32_t message_type;
	uint32_t niov;
	uint32_t iov_len[V4V_MAX_IOV];
	uint64_t staging_off; /* payload = iovs back to back from here */
};

struct v4v_req_notify {
	struct v4v_req_hdr h;
	uint32_t nent;
	uint32_t pad;
	struct v4v_ring_data_ent ent[]; /* nent, <= V4V_MAX_NOTIFY */
};

struct v4v_req_name {
	struct v4v_req_hdr h;
	v4v_port_t port; /* register */
	uint16_t domid;	 /* lookup; V4V_DOMID_ANY: use `domain` */
	uint16_t nacl;	 /* register: 0 = any domain may look it up */
	uint16_t acl[8];
	char domain[32]; /* lookup by domain name */
	char service[32];
};

struct v4v_req_attach {
	struct v4v_req_hdr h;
	uint32_t version;
	uint32_t pad;
	/* two fds: channel socket, staging memfd (V4V_STAGING_MEM bytes) */
};

struct v4v_reply {
	struct v4v_req_hdr h; /* op and seq of the request */
	int64_t ret;	      /* >= 0 result, or -errno */
			      /* op-specific payload follows: notify entries, events, lookups */
};

struct v4v_attach_reply {
	struct v4v_reply r;
	uint16_t domid;
	uint16_t pad;
	uint32_t version;
	char name[32];
	/* one fd: the VIRQ eventfd */
};

/* The reply to SENDV: ret is the payload length or -errno; max_message_size
 * is the largest payload the destination ring takes (0: no ring found), so
 * a sender learns it with the first send.  A SYN_SPARE that took a spare:
 * spare_port is its port (else 0) and max_message_size the spare's. */
struct v4v_sendv_reply {
	struct v4v_reply r;
	uint32_t max_message_size;
	v4v_port_t spare_port;
};

struct v4v_name_reply {
	struct v4v_reply r;
	v4v_port_t port;
	uint16_t domid;
	uint16_t pad;
};

/* A buffer for any request or reply, aligned for each: v4vd receives into
 * one, and the fuzzer too. */
union v4v_req_any {
	struct v4v_req_hdr h;
	struct v4v_req_register reg;
	struct v4v_req_unregister unreg; /* and RING_POKE */
	struct v4v_req_spare spare;
	struct v4v_req_sendv send;
	struct v4v_req_notify notify;
	struct v4v_req_name name;
	struct v4v_req_attach attach;
	uint8_t raw[V4V_REQ_MAX];
};

union v4v_reply_any {
	struct v4v_reply r;
	struct v4v_sendv_reply sendv;
	struct v4v_name_reply name;
	struct v4v_attach_reply attach;
	uint8_t raw[V4V_REPLY_MAX];
};

/*
 * Check a received request packet of n bytes: known op, exact size for its
 * op, reserved fields zero, counts within limits, strings terminated.
 * Returns 0 or -errno: -EINVAL malformed, -ENOSYS unknown op, -E2BIG too
 * many notify entries, -EMSGSIZE payload larger than staging, -EFAULT
 * payload outside staging, -EPROTO attach with another protocol version.
 * Pure: fuzzed by fuzz/fuzz_proto.c.
 */
int v4v_req_check(const void *buf, size_t n);

/* Whether a request of this op may carry nfds fds. */
bool v4v_req_nfds_ok(uint32_t op, unsigned nfds);

#endif
