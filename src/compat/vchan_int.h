/* SPDX-License-Identifier: MIT */
/*
 * The vchan engine's insides, shared by its data path (vchan.c) and its
 * rendezvous (vchan_setup.c).
 *
 * The wire, inside the v4v stream: frames with a 4-byte little-endian
 * header, type in the top byte, a 24-bit value below:
 *
 *   DATA    value = payload bytes, which follow
 *   CREDIT  value = bytes the sender of the credit consumed
 *   HELLO_C value = key length; the key follows (client -> server, first)
 *   HELLO_S value = status << 22 | bytes of the client's data the server
 *           still holds unread (a reconnecting client starts with less room)
 *
 * The sender never has more than the receiver's ring of data unacknowledged,
 * so the receiver's buffer (that ring) always has room for what arrives.
 */
#ifndef V4V_COMPAT_VCHAN_INT_H
#define V4V_COMPAT_VCHAN_INT_H

#include "compat/vchan.h"
#include "v4v/v4v.h"

enum { F_DATA = 1, F_CREDIT = 2, F_HELLO_C = 3, F_HELLO_S = 4 };
enum { HS_OK = 0, HS_WRONG_KEY = 1, HS_BUSY = 2 };
#define F_VALUE_MAX  ((1u << 24) - 1)
#define HS_HELD_MASK ((1u << 22) - 1)

#define OUT_CAP	     (64u << 10) /* framed bytes queued for the socket */
#define NAME_PROBES  8		 /* names tried per key (collisions) */
#define PORT_PROBES  8		 /* ports tried per name */
#define VCH_PORT_BIT 0x40000000u /* our ports: below libv4v's picks */

enum conn { C_NONE, C_LOOKUP, C_CONNECTING, C_HELLO, C_UP, C_DOWN };

struct vch {
	struct v4v_domain *d;
	bool server, once, persist, had_client, peer_dead;
	enum conn conn;
	int lsn, sock;	     /* listener (server), connection: v4v sockets */
	int ep_src, ep_user; /* epoll: the sources; and them + pend (the user's fd) */
	int pend, timer;     /* eventfd: an event not yet acknowledged; timerfd */
	bool pending, want_out, timer_armed;
	uint16_t peer_dom;
	char *key;
	size_t keylen;
	uint64_t hash;
	char name[32];	     /* the name registered (server), "" if none */
	unsigned probe;	     /* client: the next name index to try */
	struct v4v_addr srv; /* client: the server's listener */
	uint32_t rsize, wsize;
	/* receive side: the ring we read (rsize bytes) */
	uint8_t *rbuf;
	uint64_t rin, rout;  /* bytes arrived, consumed */
	uint32_t credit_due; /* consumed, not yet told */
	/* send side: bytes written and not yet acknowledged stay in tbuf */
	uint8_t *tbuf;
	uint64_t wr, fl, ack; /* written, handed to the socket, acknowledged */
	uint8_t out[OUT_CAP + 8];
	size_t olen, ooff;
	/* the frame being parsed */
	uint8_t hdr[4];
	unsigned hlen;
	uint8_t ftype;
	uint32_t body_left;
	char *kbuf; /* server: the key a client sent */
	size_t klen, koff;
	int hs_status; /* client: HELLO_S status, -1 none yet */
};

/* vchan_setup.c */
struct v4v_domain *vch__domain(int *err);
uint64_t vch__hash(uint16_t client, const char *key, size_t len);
void vch__name(char *out, uint64_t hash, unsigned i);
uint32_t vch__port(uint64_t hash, unsigned i, unsigned j, uint32_t rd, uint32_t wr);
bool vch__port_sizes(uint32_t port, uint32_t *rd, uint32_t *wr);
uint32_t vch__sock_ring_len(uint32_t rsize);
int vch__accept(struct vch *c);
int vch__client_lookup(struct vch *c);
int vch__on_hello_c(struct vch *c);

/* vchan.c */
struct vch *vch__alloc(void);
void vch__free(struct vch *c);
int vch__adopt(struct vch *c, int sock, enum conn state);
void vch__drop_sock(struct vch *c);
void vch__put_frame(struct vch *c, unsigned type, uint32_t value, const void *body, size_t len);
int vch__flush(struct vch *c);
void vch__event(struct vch *c);
void vch__up(struct vch *c);
bool vch__pull(struct vch *c);

#endif
