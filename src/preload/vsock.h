/* SPDX-License-Identifier: MIT */
/*
 * The private protocol between libv4v-preload.so (inside the program) and
 * v4v-vsock-relay (the process that holds the program's vsock connections
 * as libv4v sockets).
 *
 * A program's AF_VSOCK socket is the app end A of an AF_UNIX socketpair of
 * the same type (SOCK_STREAM or SOCK_SEQPACKET); the relay holds the other
 * end B and pumps bytes between B and a libv4v stream socket.  Setup
 * (bind, listen, connect) goes over a second, SOCK_SEQPACKET pair: the
 * control channel C (program) / D (relay), used only until the socket is
 * connected or listening.  A listener's A receives one struct vs_accept per
 * accepted connection, with the new connection's A end attached
 * (SCM_RIGHTS).  The relay starts with B on fd 3, D on fd 4 and the domain
 * fd on fd 5 (V4V_DOMAIN_FD=5).
 */
#ifndef V4V_PRELOAD_VSOCK_H
#define V4V_PRELOAD_VSOCK_H

#include <stdint.h>

#define VS_FD_DATA   3
#define VS_FD_CTL    4
#define VS_FD_DOMAIN 5

/* A domain's vsock CID is its domid plus this (domid 0 is CID 2). */
#define VS_CID_OFFSET 2u

enum vs_op {
	VS_OP_BIND = 1,	   /* cid ignored (checked by the preload), port (0: any) */
	VS_OP_LISTEN = 2,  /* port ignored */
	VS_OP_CONNECT = 3, /* domid in cid, port; junk bytes to drain from B first */
};

struct vs_req {
	uint32_t op;
	uint32_t domid;
	uint32_t port;
	uint32_t timeout_ms; /* connect: give up after (0: the default, 2 s) */
	uint64_t junk;	     /* connect: filler bytes the program wrote into A */
	uint64_t ring_len;   /* SO_VM_SOCKETS_BUFFER_SIZE (0: libv4v's default) */
};

/* The answer to each request, and the hello the relay sends at start. */
struct vs_rep {
	int32_t err; /* 0 or a positive errno */
	uint32_t domid;
	uint32_t port;
	uint32_t peer_domid;
	uint32_t peer_port;
	uint32_t pad;
};

/* One accepted connection, on the listener's data channel. */
#define VS_ACCEPT_MAGIC 0x76736b61u
struct vs_accept {
	uint32_t magic;
	uint32_t port; /* ours (the listener's) */
	uint32_t peer_domid;
	uint32_t peer_port;
};

/* SOCK_DGRAM: each record on the program's SOCK_SEQPACKET pair starts
 * with its peer (the destination going out, the source coming in). */
struct vs_dgram {
	uint32_t domid;
	uint32_t port;
};

/* The filler of a non-blocking connect goes in chunks of this size. */
#define VS_JUNK_CHUNK 16384

/* Seqpacket sockets travel over a libv4v stream as [u32 length][bytes]. */
#define VS_SEQ_MAX (256u << 10)

#endif
