/* SPDX-License-Identifier: MIT */
/*
 * v4v-vm: one process per VM, the guest's vhost-user-vsock backend and an
 * ordinary v4v domain (docs/ARCHITECTURE.md, "VMs").  The guest's cid is
 * the domain's id + 2; cid D + 2 names domain D (cid 2, the host, is
 * domain 0); cids 0 and 1 name nothing here.
 *
 * Guest streams are terminated, not forwarded: each virtio-vsock
 * connection is a v4v stream (or seqpacket) socket of this domain, and bytes are copied
 * between the guest's queues and that socket under virtio-vsock's credit
 * flow control (conn.c).  The event loop and the command line are in
 * main.c, the vhost-user messages in vhost.c.
 */
#ifndef V4V_VM_VM_H
#define V4V_VM_VM_H

#include <stdbool.h>
#include <stdint.h>

#include "vm/pkt.h"
#include "vm/vhost.h"
#include "vm/wire.h"

struct v4v_domain;

/* What an epoll event points at. */
enum tag_kind { T_UNIX, T_VHOST, T_KICK, T_LISTENER, T_CONN };
struct tag {
	enum tag_kind kind;
};

#define VM_BUF_ALLOC  (256u << 10) /* our receive buffer per connection */
#define VM_MAX_LISTEN 64u
#define VM_STRAY_MAX  64u

struct listener {
	struct tag tag;
	int fd;
	uint32_t port;
};

struct conn;

struct vm {
	struct v4v_domain *d;
	uint64_t guest_cid;
	int ep;
	struct vhost vh;
	struct tag kick_tag[VHOST_NQUEUES];
	struct conn *head, *tail; /* every connection, served round-robin */
	unsigned nconn;
	struct listener listen[VM_MAX_LISTEN];
	unsigned nlisten;
	/* RSTs owed to the guest for packets that match no connection */
	struct vsock_hdr stray[VM_STRAY_MAX];
	unsigned nstray;
	bool verbose;
	bool drop_all; /* the device was reset: drop every connection */
	uint8_t bounce[VSOCK_MAX_PAYLOAD];
};

/* conn.c */
void conn_from_guest(struct vm *vm, const struct vsock_hdr *h, const struct vq_chain *c);
void conn_event(struct vm *vm, struct conn *c, uint32_t events);
void conn_accept(struct vm *vm, struct listener *l);
/* Fill one receive buffer with the next packet owed to the guest;
 * the bytes written, 0 when nothing is owed. */
uint32_t conn_produce(struct vm *vm, const struct vq_chain *ch);
void conn_stray_rst(struct vm *vm, const struct vsock_hdr *h);
/* The guest's device was reset: every connection ends (v4v peers see the
 * end of their streams), nothing is owed to the guest any more. */
void conn_drop_all(struct vm *vm);

/* main.c: watch fd for events (0: not at all). */
void vm_watch(struct vm *vm, int fd, struct tag *t, uint32_t events, uint32_t *cur);

#endif
