/* SPDX-License-Identifier: MIT */
/*
 * libv4v: the guest side of v4v.
 *
 * Error convention: every function in the low-level API returns 0 (or a
 * non-negative count) on success and a negative errno value on failure; it
 * never depends on errno.  The socket API (v4v_socket and friends, below)
 * follows POSIX instead: -1 with errno set, as socket programmers expect.
 *
 * -EPIPE from any call means v4vd has gone away (or the domain was
 * destroyed): the handle is dead; open a new one once v4vd is back.
 *
 * Threads: one struct v4v_domain may be shared by the threads of a process
 * (hypercalls are serialized).  After fork(), the child's first call
 * attaches it to the domain as a process of its own.
 */
#ifndef V4V_V4V_H
#define V4V_V4V_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "v4v/abi.h"
#include "v4v/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What err (a negative errno from a low-level call, or errno after a
 * socket call: either sign) means from v4v: a static, thread-safe string.
 * Codes whose v4v meaning is narrower than strerror()'s get v4v's words
 * (ECONNREFUSED: no ring; EBUSY: space-waiter slots full; EUSERS: no uid
 * for the domain; EMSGSIZE: can never fit; EPIPE: v4vd gone ...). */
const char *v4v_strerror(int err);

/* ---- the domain -------------------------------------------------------- */

struct v4v_domain;

/* Attach to the domain this process runs in (V4V_DOMAIN_FD, set by v4v-run).
 * -ENOTCONN: not inside a domain.  -EPIPE: v4vd is not answering. */
int v4v_open(struct v4v_domain **out);
/* Attach through an explicit domain fd (the fd stays the caller's). */
int v4v_open_fd(int domain_fd, struct v4v_domain **out);
void v4v_close(struct v4v_domain *d);

uint16_t v4v_domid(const struct v4v_domain *d);
const char *v4v_domain_name(const struct v4v_domain *d);

/* The VIRQ: an fd that polls readable when v4vd signals this process (a
 * message arrived in one of its rings, space it waited for is free, or an
 * event is queued) and when v4vd goes away.  v4v_virq_ack() clears it;
 * it returns -EPIPE if v4vd is gone. */
int v4v_virq_fd(const struct v4v_domain *d);
int v4v_virq_ack(struct v4v_domain *d);

/* ---- rings ------------------------------------------------------------- */

struct v4v_rx;

/* Allocate, map and register a receive ring of len data bytes (48..16 MiB,
 * multiple of 16) for aport, accepting from `partner` or V4V_DOMID_ANY.
 * Errors (Argo's): -EINVAL bad len/flags, -EEXIST already registered
 * (always with V4V_REGISTER_FAIL_EXIST, or when len differs), -ENOSPC ring
 * quota, -ENOMEM. */
int v4v_ring_register(struct v4v_domain *d, v4v_port_t aport, uint16_t partner, uint32_t len,
		      uint32_t flags, struct v4v_rx **out);
/* Unregister and free.  -ENOENT if v4vd had already dropped it. */
int v4v_ring_unregister(struct v4v_rx *r);

/* Read in place: 1 and *m filled, 0 when empty, -EBADMSG when the ring
 * header or a message header is corrupt (by this process's own hand). */
int v4v_rx_peek(struct v4v_rx *r, struct v4v_msg *m);
/* Release the message peeked last: its slots go back to v4vd. */
void v4v_rx_consume(struct v4v_rx *r, const struct v4v_msg *m);
/* Copy up to cap payload bytes of m into buf; returns bytes copied. */
size_t v4v_msg_read(const struct v4v_msg *m, void *buf, size_t cap);

struct v4v_addr v4v_rx_addr(const struct v4v_rx *r);
uint16_t v4v_rx_partner(const struct v4v_rx *r);
uint32_t v4v_rx_len(const struct v4v_rx *r);
/* Bytes in the ring now: messages v4vd has written that this process has
 * not consumed yet (at most v4v_rx_len() - V4V_MSG_SLOT). */
uint32_t v4v_rx_used(const struct v4v_rx *r);
/* Ring bytes one message of `payload` bytes takes: its header, rounded up
 * to the V4V_MSG_SLOT slot (what v4v_rx_used() counts it as). */
size_t v4v_msg_ring_bytes(size_t payload);

/* ---- hypercalls -------------------------------------------------------- */

/* Send one message of the concatenated iovs (niov <= 8) from
 * (this domain, src_port) to dst.  Returns the payload length, or:
 * -ESRCH no such domain, -ECONNREFUSED no ring, -EMSGSIZE can never fit,
 * -EAGAIN no space now (this process is queued as a space waiter and its
 * VIRQ fires when there is), -EBUSY too many waiters, -EACCES firewall,
 * -EINVAL niov > 8. */
long v4v_sendv(struct v4v_domain *d, v4v_port_t src_port, const struct v4v_addr *dst,
	       const struct iovec *iov, unsigned niov, uint32_t message_type);

/* Argo notify: for each entry (ring address + space_required) v4vd fills
 * flags (V4V_RING_*) and max_message_size, and queues or cancels a space
 * wait.  Also makes v4vd re-check waiters on this domain's rings: call it
 * after consuming messages if senders may be waiting. */
int v4v_notify(struct v4v_domain *d, struct v4v_ring_data_ent *ent, unsigned n);

/* Drain up to max queued events; returns the count. */
int v4v_events(struct v4v_domain *d, struct v4v_event *ev, unsigned max);

/* ---- names ------------------------------------------------------------- */

/* Register `service` -> port for this domain; visible to the nacl domains
 * listed (nacl 0: to any domain).  -EEXIST, -ENOSPC (quota), -EINVAL. */
int v4v_name_register(struct v4v_domain *d, const char *service, v4v_port_t port,
		      const uint16_t *acl, unsigned nacl);
int v4v_name_unregister(struct v4v_domain *d, const char *service);
/* Look up (domain, service); domain is a domid or a domain name.
 * -ESRCH no such domain, -ENOENT no such service (or not visible). */
int v4v_name_lookup(struct v4v_domain *d, const char *domain, const char *service,
		    struct v4v_addr *out);
/* A domain's id from its name or id; -ESRCH when there is no such domain. */
int v4v_domain_resolve(struct v4v_domain *d, const char *domain, uint16_t *domid);
/* Whether s is a legal domain or service name: 1-31 of A-Za-z0-9._-, not
 * starting with a digit or '-'.  v4vd refuses any other (-EINVAL). */
bool v4v_name_valid(const char *s);

/* ---- sockets ------------------------------------------------------------
 *
 * BSD-style sockets over rings.  These follow POSIX: -1 and errno.  A socket
 * is a real file descriptor: poll/epoll it for POLLIN (data, a connection
 * to accept, end of stream, or an error) and POLLOUT (room to send).  Close
 * it only with v4v_sock_close().  d may be NULL: the process's domain is
 * then opened on first use (v4v_open()).
 *
 * Addresses: struct v4v_addr {aport, domain_id}.  bind() takes the local
 * port (0: pick a free one) and, in domain_id, the only domain allowed to
 * send to this socket (V4V_DOMID_ANY: anyone).  Peer addresses returned by
 * recvfrom/accept/getpeername are those v4vd stamped.
 */
#define V4V_SOCK_DGRAM	1
#define V4V_SOCK_STREAM 2
/* A connection like a stream whose sends are records, kept whole: see
 * libv4v(3), SEQPACKET. */
#define V4V_SOCK_SEQPACKET 3
#define V4V_SOCK_NONBLOCK  04000 /* O_NONBLOCK, for v4v_socket's flags */

#define V4V_DGRAM_RING_LEN  (256u << 10) /* default ring of a datagram socket */
#define V4V_STREAM_RING_LEN (512u << 10) /* default ring of a stream connection */
#define V4V_SOCK_TX_LEN	    (256u << 10) /* every socket's send ring */

int v4v_socket(struct v4v_domain *d, int type, int flags);
/* The ring size of the socket's next ring (before bind/connect/listen). */
int v4v_sock_set_ring_len(int s, uint32_t len);
int v4v_sock_set_nonblock(int s, int on);
int v4v_bind(int s, const struct v4v_addr *addr);
int v4v_connect(int s, const struct v4v_addr *peer);
int v4v_listen(int s, int backlog);
int v4v_accept(int s, struct v4v_addr *peer);
ssize_t v4v_send(int s, const void *buf, size_t len, int flags);
ssize_t v4v_recv(int s, void *buf, size_t len, int flags);
ssize_t v4v_sendto(int s, const void *buf, size_t len, int flags, const struct v4v_addr *to);
ssize_t v4v_recvfrom(int s, void *buf, size_t len, int flags, struct v4v_addr *from);
int v4v_shutdown(int s, int how);
int v4v_sock_close(int s);
/* Close a connection abortively: the peer gets RST, not FIN (its recv and
 * send fail with ECONNRESET); anything unread here is dropped. */
int v4v_sock_abort(int s);
int v4v_getsockname(int s, struct v4v_addr *addr);
int v4v_getpeername(int s, struct v4v_addr *addr);

#ifdef __cplusplus
}
#endif
#endif
