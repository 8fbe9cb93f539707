/* SPDX-License-Identifier: MIT */
/*
 * libv4v sockets, private: the socket object shared by the socket files and
 * the calls they make of each other.
 *
 *   socket.c  the socket table and lifecycle: create, look up, flags, bind
 *             (ring set-up), close, getsockname/getpeername
 *   tx.c      sending: the send ring producer, the synchronous send, the
 *             cache of datagram destinations, lingering on close
 *   bell.c    the doorbell and readiness: draining tokens, sleeping on the
 *             fd, events from v4vd, consuming and re-arming POLLIN
 *   dgram.c   datagram sockets: sendto/recvfrom, connect's default peer
 *   stream.c  stream sockets: listen/accept/connect, send/recv, shutdown;
 *             SEQPACKET sockets are streams whose DATA messages are records
 *
 * Every socket owns at most one ring and one doorbell (wire/proto.h): the
 * user's socket fd is our end of the doorbell pair, so it polls readable
 * when v4vd has something for this socket, and writable unless a send from
 * it waits for space.  Streams are a small protocol of message types on
 * top of datagrams (stream.c).
 *
 * Errors: the public socket calls (v4v_socket, v4v_send, ...) follow POSIX,
 * -1 with errno set, and set errno only through v4v__fail().  Every v4v__
 * and static function returns 0 (or a count, or a pointer) on success and
 * -errno on failure, never a result left in errno: a system call's errno is
 * turned into -errno where the call is made, and a public call turns the
 * -errno back into errno exactly once, on its way out.
 */
#ifndef V4V_LIB_SOCK_H
#define V4V_LIB_SOCK_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib.h"

/* Message types on the wire: datagrams, and the stream protocol. */
#define MT_DGRAM   0u
#define MT_SYN	   V4V_MT_SYN /* wire/proto.h: v4vd counts them */
#define MT_SYNACK  0x53540002u
#define MT_DATA	   0x53540003u
#define MT_FIN	   0x53540004u
#define FIN_CLOSED 1u /* a FIN's one payload byte: sent by close, not shutdown */
#define MT_RST	   0x53540005u

#define DEST_CACHE 8 /* datagram destinations known to exist */

/*
 * What a peer's behaviour may cost us, bounded (libv4v(3) documents both):
 * a stream peer's ring (its hello's ring_len, in SYN and SYNACK) is at
 * least STREAM_RING_MIN data bytes, so it cannot force messages of a few
 * bytes on us; and close, or shutdown's end of stream, waits at most
 * LINGER_MS for room on the send ring, however long the peer leaves its
 * ring full.
 */
#define STREAM_RING_MIN 4096u
#define LINGER_MS	1000
/* A connect whose listener went waits this long for a SYNACK still on its
 * way (stream.c:syn_gone_wait) before it is refused. */
#define SYN_GONE_MS 250

enum state { S_NEW, S_BOUND, S_LISTEN, S_CONNECTING, S_CONNECTED };

struct sock {
	int fd;	     /* ours: the user's socket */
	int bell;    /* v4vd's end, until the ring is registered */
	int pool_fd; /* a second fd of our doorbell end, from the pool: it goes back there */
	struct v4v_domain *d;
	int type;
	enum state state;
	bool nonblock;
	uint32_t ring_len;
	struct v4v_rx *rx;
	v4v_port_t port;
	uint16_t partner;
	bool has_peer;
	struct v4v_addr peer;
	uint32_t peer_max; /* stream: largest message the peer's ring takes */
	uint32_t msg_off;  /* stream: bytes already read of the head message */
	bool peer_fin, fin_sent, shut_rd, peer_gone, need_notify;
	bool peer_closed;  /* its FIN said FIN_CLOSED: our sends get EPIPE */
	bool raced;	   /* drained the doorbell, then found data: see read_done */
	bool ephemeral;	   /* the ring's port was picked for it (pool.c may keep it) */
	bool pooled;	   /* the ring came from pool.c: its send ring is empty */
	bool bell_clean;   /* drained empty, not polled since: see wait_readable */
	uint32_t consumed; /* bytes consumed since the last notify */
	int so_error;	   /* pending error (an errno), reported once */
	size_t blocker_len;
	/* Connecting: the listener's ring went (bell.c:apply_event); a SYNACK
	 * may still come until syn_gone_by (stream.c:syn_gone_wait). */
	bool syn_gone;
	uint64_t syn_gone_by;
	/* The send ring: we produce, v4vd moves messages to their rings. */
	struct v4v_tx_ring *tx;
	uint32_t txlen, txtail;
	/* Datagram destinations a synchronous send found alive: later sends
	 * to them are queued on the send ring; failures come back as events. */
	struct dest {
		struct v4v_addr addr;
		uint32_t max; /* largest payload its ring takes */
	} dest[DEST_CACHE];
	unsigned ndest, dest_next;
};

/* A connection: a stream, or a SEQPACKET (a stream that keeps records). */
static inline bool v4v__is_conn(const struct sock *s)
{
	return s->type != V4V_SOCK_DGRAM;
}

/* The public calls' only way out on failure. */
static inline int v4v__fail(int err)
{
	errno = err;
	return -1;
}

static inline bool v4v__same_addr(const struct v4v_addr *a, const struct v4v_addr *b)
{
	return a->aport == b->aport && a->domain_id == b->domain_id;
}

/* The pending error, once: -errno, or 0. */
static inline int v4v__sock_error(struct sock *s)
{
	int e = s->so_error;
	s->so_error = 0;
	return -e;
}

/* A deadline ms from now (monotonic), and what is left of one, in ms. */
static inline uint64_t v4v__deadline(int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + (uint64_t)ms;
}

static inline int v4v__ms_left(uint64_t deadline)
{
	uint64_t now = v4v__deadline(0);
	return now >= deadline ? 0 : (int)(deadline - now);
}

/* A send to a ring that does not exist: "no route", as for IP. */
static inline long v4v__unreach(long e)
{
	return e == -ESRCH ? -EHOSTUNREACH : e;
}

/* socket.c */
struct sock *v4v__sock_lookup(int fd); /* NULL: not a socket (EBADF) */
int v4v__sock_new(struct v4v_domain *d, int type, bool nonblock, struct sock **out);
/* A socket whose fd is an existing doorbell end (pool.c); on failure the
 * fd is still the caller's. */
int v4v__sock_adopt(struct v4v_domain *d, int type, bool nonblock, int fd, struct sock **out);
/* A doorbell's queued tokens, taken: their bits, or -EPIPE (bell.c). */
int v4v__bell_tokens(int fd);
/* A doorbell pair never given to v4vd, for the next socket (socket.c). */
void v4v__sock_blank_put(int fd, int bell, size_t blocker_len);
int v4v__sock_ring_up(struct sock *s, v4v_port_t port, uint16_t partner);
/* fn(s, arg) for each socket of d with a ring, under the table lock. */
void v4v__sock_each(struct v4v_domain *d, void (*fn)(struct sock *, void *), void *arg);

/* pool.c: rings of closed streams, kept for the next connection */
bool v4v__pool_put(struct sock *s); /* true: it has s's ring now */
int v4v__pool_get(struct sock *s, uint16_t partner);
int v4v__pool_accept(struct v4v_domain *d, uint16_t partner, uint32_t ring_len, bool nonblock,
		     struct sock **out);
void v4v__pool_sweep(struct v4v_domain *d);
void v4v__pool_event(struct v4v_domain *d, const struct v4v_event *e);
/* Spares (wire/proto.h, V4V_OP_RING_SPARE): rings lent to a listener. */
#define LISTEN_SPARES 4 /* per listener, at most */
unsigned v4v__pool_spare_fill(struct v4v_domain *d, v4v_port_t lport, uint32_t ring_len);
int v4v__pool_lend(struct sock *t, v4v_port_t lport);
int v4v__pool_spare_take(struct v4v_domain *d, v4v_port_t lport, v4v_port_t port, uint16_t partner,
			 bool nonblock, struct sock **out, uint64_t *lent_at);
bool v4v__pool_spare_news(struct v4v_domain *d, v4v_port_t port, uint64_t since);
void v4v__pool_spare_taken(struct v4v_domain *d, v4v_port_t lport, v4v_port_t port,
			   uint16_t partner);
bool v4v__pool_can_lend(void);
void v4v__pool_spares_drop(struct v4v_domain *d, v4v_port_t lport);
unsigned v4v__pool_ready(struct v4v_domain *d); /* for the tests */
void v4v__pool_hold(bool on);			/* for the tests: the pool busy */

/* tx.c */
/* *max_message, *spare (either may be NULL): as v4v__sendv's. */
long v4v__send_msg(struct sock *s, const struct v4v_addr *to, uint32_t type, const void *buf,
		   size_t len, bool nonblock, uint32_t *max_message, v4v_port_t *spare);
int v4v__tx_wait(struct sock *s, uint64_t need, bool nonblock, int limit_ms);
long v4v__tx_put(struct sock *s, const struct v4v_addr *to, uint32_t type, const void *buf,
		 size_t len, bool nonblock);
void v4v__tx_linger(struct sock *s, int limit_ms);
struct dest *v4v__dest_find(struct sock *s, const struct v4v_addr *to);
void v4v__dest_add(struct sock *s, const struct v4v_addr *to, uint32_t max);
void v4v__dest_forget(struct sock *s, const struct v4v_addr *to);

/* bell.c */
void v4v__bell_block(struct sock *s);
int v4v__wait_fd(struct sock *s, short events, int ms);
void v4v__handle_events(struct v4v_domain *d);
int v4v__wait_readable(struct sock *s, bool nonblock);
void v4v__consume(struct sock *s, const struct v4v_msg *m);
void v4v__read_done(struct sock *s);

/* dgram.c */
int v4v__dgram_connect(struct sock *s, const struct v4v_addr *peer);

/* stream.c */
void v4v__refuse(struct sock *s, const struct v4v_msg *m);
int v4v__stream_fin(struct sock *s, bool nonblock, int limit_ms, bool closing);
int v4v__stream_rst(struct sock *s, int limit_ms);
void v4v__listen_close(struct sock *s); /* its spares go, theirs reset */

#endif
