/* SPDX-License-Identifier: MIT */
/*
 * Guest stream connections, terminated here: the virtio-vsock state
 * machine on the guest side, a v4v stream socket on the other, and the
 * credit that keeps each direction within the receiver's buffer.
 *
 *   guest -> v4v: RW payloads go into buf (VM_BUF_ALLOC bytes, what we
 *   advertise as buf_alloc) and out through v4v_send; fwd_cnt counts what
 *   left buf, and a CREDIT_UPDATE goes to the guest whenever a quarter of
 *   buf_alloc was freed since the guest last heard, so it never stalls.
 *   A guest sending past its credit is hostile: the connection is reset.
 *
 *   v4v -> guest: we read from the socket only as much as the guest's
 *   credit (its buf_alloc - (tx_cnt - its fwd_cnt)) and the posted buffer
 *   allow, one packet per receive buffer, sized to that buffer.
 *
 * A guest seqpacket connection (VIRTIO_VSOCK_F_SEQPACKET) is a v4v
 * SEQPACKET socket: guest -> v4v, buf holds whole records from offset 0
 * (ends[] where each ends: the RW packet flagged EOM), each one v4v_send;
 * v4v -> guest, rec holds the record v4v_recv returned, sent in as many RW
 * packets as it takes, the last flagged EOM and EOR.  We advertise a
 * buf_alloc of SEQ_MAX, the largest record a v4v SEQPACKET send takes.
 *
 * States: CONNECTING (guest REQUEST, v4v connect in progress), REQUESTED
 * (v4v peer accepted on a --listen port, REQUEST owed or sent to the
 * guest), OPEN, CLOSING (the v4v socket is gone; an RST is owed to the
 * guest, then the connection is freed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "v4v/v4v.h"
#include "vm/vm.h"
#include "vm/watch.h"

enum state { C_CONNECTING, C_REQUESTED, C_OPEN, C_CLOSING };

#define SEQ_MAX	 (V4V_SOCK_TX_LEN - 32u) /* libv4v(3): a record's largest size */
#define SEQ_ENDS 256u			 /* whole records buf may hold at once */

struct conn {
	struct tag tag;
	struct conn *prev, *next;
	enum state state;
	uint64_t peer_cid;
	uint32_t peer_port, guest_port;
	int fd;
	uint32_t ev; /* what epoll watches on fd */
	int wslot;   /* in the watcher's table */
	/* owed to the guest */
	bool tx_request, tx_response, tx_credit, tx_shutdown, tx_rst;
	/* guest -> v4v */
	uint8_t *buf;
	uint32_t bhead, blen, fwd_cnt, fwd_sent;
	bool guest_eof, guest_norecv, wr_shut, out_blocked;
	/* v4v -> guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	bool readable, v4v_eof;
	/* seqpacket */
	uint16_t type; /* VSOCK_TYPE_* */
	uint32_t *ends, nends;
	uint8_t *rec;
	uint32_t rec_len, rec_off;
};

static void list_add_tail(struct vm *vm, struct conn *c)
{
	c->next = NULL;
	c->prev = vm->tail;
	if (vm->tail)
		vm->tail->next = c;
	else
		vm->head = c;
	vm->tail = c;
}

static void list_del(struct vm *vm, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		vm->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		vm->tail = c->prev;
	c->prev = c->next = NULL;
}

static struct conn *find(struct vm *vm, uint32_t guest_port, uint64_t peer_cid, uint32_t peer_port)
{
	for (struct conn *c = vm->head; c; c = c->next)
		if (c->guest_port == guest_port && c->peer_cid == peer_cid &&
		    c->peer_port == peer_port)
			return c;
	return NULL;
}

static struct conn *conn_new(struct vm *vm, uint32_t guest_port, uint64_t peer_cid,
			     uint32_t peer_port, int fd, uint16_t type)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->tag.kind = T_CONN;
	c->type = type;
	c->guest_port = guest_port;
	c->peer_cid = peer_cid;
	c->peer_port = peer_port;
	c->fd = fd;
	c->wslot = watch_conn_add(peer_cid, peer_port, guest_port);
	list_add_tail(vm, c);
	vm->nconn++;
	return c;
}

/* The socket leaves epoll before it is closed; its FIN follows our data
 * (its RST, when the guest reset the connection: abortive). */
static void close_sock(struct vm *vm, struct conn *c, bool abortive)
{
	if (c->fd < 0)
		return;
	vm_watch(vm, c->fd, &c->tag, 0, &c->ev);
	if (abortive)
		v4v_sock_abort(c->fd);
	else
		v4v_sock_close(c->fd);
	c->fd = -1;
}

static void conn_free(struct vm *vm, struct conn *c)
{
	close_sock(vm, c, false);
	watch_conn_del(c->wslot);
	list_del(vm, c);
	vm->nconn--;
	free(c->buf);
	free(c->ends);
	free(c->rec);
	free(c);
}

/* Give up on the connection: the guest is told with an RST. */
static void conn_reset(struct vm *vm, struct conn *c)
{
	close_sock(vm, c, false);
	c->state = C_CLOSING;
	c->tx_rst = true;
}

static uint32_t credit(const struct conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static bool wants_data(const struct conn *c)
{
	return c->state == C_OPEN && !c->v4v_eof && !c->guest_norecv && credit(c) > 0;
}

/* What epoll should watch on the socket in this state. */
static void arm(struct vm *vm, struct conn *c)
{
	uint32_t ev = 0;
	if (c->fd < 0)
		return;
	if (c->state == C_CONNECTING)
		ev = EPOLLIN;
	if (wants_data(c) && !c->readable)
		ev |= EPOLLIN;
	if (c->state == C_OPEN && c->out_blocked)
		ev |= EPOLLOUT;
	vm_watch(vm, c->fd, &c->tag, ev, &c->ev);
}

void conn_stray_rst(struct vm *vm, const struct vsock_hdr *h)
{
	if (h->op == VSOCK_OP_RST || vm->nstray == VM_STRAY_MAX)
		return;
	vm->stray[vm->nstray++] = (struct vsock_hdr){
	    .src_cid = h->dst_cid,
	    .dst_cid = h->src_cid,
	    .src_port = h->dst_port,
	    .dst_port = h->src_port,
	    .type = h->type == VSOCK_TYPE_SEQPACKET ? VSOCK_TYPE_SEQPACKET : VSOCK_TYPE_STREAM,
	    .op = VSOCK_OP_RST};
}

void conn_drop_all(struct vm *vm)
{
	while (vm->head)
		conn_free(vm, vm->head);
	vm->nstray = 0;
}

/* ---- guest -> v4v ------------------------------------------------------ */

/* Seqpacket: each whole record in buf to the socket, one send each;
 * false when that reset the connection. */
static bool flush_records(struct vm *vm, struct conn *c)
{
	while (c->nends && c->fd >= 0) {
		uint32_t n = c->ends[0];
		ssize_t r = v4v_send(c->fd, c->buf, n, 0);
		if (r < 0 && errno == EAGAIN) {
			c->out_blocked = true;
			break;
		}
		if (r != (ssize_t)n) {
			conn_reset(vm, c); /* EMSGSIZE: the v4v peer's ring is small */
			return false;
		}
		c->out_blocked = false;
		memmove(c->buf, c->buf + n, c->blen - n);
		c->blen -= n;
		c->fwd_cnt += n;
		c->nends--;
		for (uint32_t i = 0; i < c->nends; i++)
			c->ends[i] = c->ends[i + 1] - n;
	}
	return true;
}

/* Hand buf to the socket; then the EOF the guest asked for, once empty. */
static void flush(struct vm *vm, struct conn *c)
{
	bool seq = c->type == VSOCK_TYPE_SEQPACKET;
	if (seq && !flush_records(vm, c))
		return;
	while (!seq && c->blen && c->fd >= 0) {
		uint32_t n = c->blen;
		if (n > VM_BUF_ALLOC - c->bhead)
			n = VM_BUF_ALLOC - c->bhead;
		ssize_t r = v4v_send(c->fd, c->buf + c->bhead, n, 0);
		if (r < 0 && errno == EAGAIN) {
			c->out_blocked = true;
			break;
		}
		if (r <= 0) {
			conn_reset(vm, c);
			return;
		}
		c->out_blocked = false;
		c->bhead = (c->bhead + (uint32_t)r) % VM_BUF_ALLOC;
		c->blen -= (uint32_t)r;
		c->fwd_cnt += (uint32_t)r;
	}
	if (c->fwd_cnt - c->fwd_sent >= VM_BUF_ALLOC / 4)
		c->tx_credit = true;
	if ((seq ? c->nends : c->blen) || c->fd < 0 || !c->guest_eof)
		return; /* (a seqpacket's unfinished record is dropped) */
	if (c->guest_norecv) {
		/* The guest closed: its data is out, end the connection. */
		conn_reset(vm, c);
	} else if (!c->wr_shut) {
		c->wr_shut = true;
		v4v_shutdown(c->fd, SHUT_WR);
	}
}

static void rw(struct vm *vm, struct conn *c, const struct vsock_hdr *h, const struct vq_chain *ch)
{
	if (c->state != C_OPEN || c->guest_eof)
		return; /* after its own SHUTDOWN: dropped, as a stream must */
	if (h->len > VM_BUF_ALLOC - c->blen) {
		fprintf(stderr, "v4v-vm: guest port %u sent past its credit: reset\n",
			c->guest_port);
		conn_reset(vm, c);
		return;
	}
	if (!c->buf && !(c->buf = malloc(VM_BUF_ALLOC))) {
		conn_reset(vm, c);
		return;
	}
	if (c->type == VSOCK_TYPE_SEQPACKET) {
		/* Records from offset 0, whole; EOM ends one. */
		bool eom = h->flags & VSOCK_SEQ_EOM;
		if (eom && !c->ends && !(c->ends = malloc(SEQ_ENDS * sizeof(*c->ends)))) {
			conn_reset(vm, c);
			return;
		}
		if (eom && c->nends == SEQ_ENDS) {
			fprintf(stderr, "v4v-vm: guest port %u: too many records unsent: reset\n",
				c->guest_port);
			conn_reset(vm, c);
			return;
		}
		vq_chain_read(ch, VSOCK_HDR_SIZE, c->buf + c->blen, h->len);
		c->blen += h->len;
		if (eom)
			c->ends[c->nends++] = c->blen;
		flush(vm, c);
		return;
	}
	uint32_t tail = (c->bhead + c->blen) % VM_BUF_ALLOC;
	uint32_t first = h->len < VM_BUF_ALLOC - tail ? h->len : VM_BUF_ALLOC - tail;
	vq_chain_read(ch, VSOCK_HDR_SIZE, c->buf + tail, first);
	vq_chain_read(ch, VSOCK_HDR_SIZE + (uint64_t)first, c->buf, h->len - first);
	c->blen += h->len;
	flush(vm, c);
}

static void guest_request(struct vm *vm, const struct vsock_hdr *h)
{
	int domid = pkt_cid_domid(h->dst_cid);
	bool seq = h->type == VSOCK_TYPE_SEQPACKET;
	if (seq && !(vm->vh.features & (1ull << VIRTIO_VSOCK_F_SEQPACKET))) {
		conn_stray_rst(vm, h); /* a feature it did not take */
		return;
	}
	int fd = v4v_socket(vm->d, seq ? V4V_SOCK_SEQPACKET : V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	if (fd < 0) {
		fprintf(stderr, "v4v-vm: no socket for guest port %u: %s\n", h->src_port,
			strerror(errno));
		conn_stray_rst(vm, h);
		return;
	}
	struct v4v_addr to = {.aport = h->dst_port, .domain_id = (uint16_t)domid};
	int r = v4v_connect(fd, &to);
	if (r < 0 && errno != EINPROGRESS) {
		if (vm->verbose)
			fprintf(stderr, "v4v-vm: guest port %u -> %d:%u: %s\n", h->src_port, domid,
				h->dst_port, strerror(errno));
		v4v_sock_close(fd);
		conn_stray_rst(vm, h);
		return;
	}
	struct conn *c = conn_new(vm, h->src_port, h->dst_cid, h->dst_port, fd, h->type);
	if (!c) {
		v4v_sock_close(fd);
		conn_stray_rst(vm, h);
		return;
	}
	c->state = r == 0 ? C_OPEN : C_CONNECTING;
	c->tx_response = r == 0;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	arm(vm, c);
}

static void guest_shutdown(struct vm *vm, struct conn *c, uint32_t flags)
{
	if (flags & VSOCK_SHUTDOWN_RCV)
		c->guest_norecv = true;
	if (flags & VSOCK_SHUTDOWN_SEND)
		c->guest_eof = true;
	if (c->state == C_OPEN)
		flush(vm, c);
	else if (c->guest_eof && c->guest_norecv)
		conn_reset(vm, c);
}

void conn_from_guest(struct vm *vm, const struct vsock_hdr *h, const struct vq_chain *ch)
{
	struct conn *c = find(vm, h->src_port, h->dst_cid, h->dst_port);
	if (!c) {
		if (h->op == VSOCK_OP_REQUEST)
			guest_request(vm, h);
		else
			conn_stray_rst(vm, h);
		return;
	}
	if (c->state == C_CLOSING) {
		if (h->op == VSOCK_OP_RST)
			conn_free(vm, c); /* nothing more to say to each other */
		return;
	}
	if (h->type != c->type) {
		conn_reset(vm, c); /* confused */
		arm(vm, c);
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VSOCK_OP_REQUEST: conn_reset(vm, c); break; /* a second one: confused */
	case VSOCK_OP_RESPONSE:
		if (c->state != C_REQUESTED) {
			conn_reset(vm, c);
			break;
		}
		c->state = C_OPEN;
		break;
	case VSOCK_OP_RST:
		/* The guest reset an open connection: the v4v peer gets
		 * ECONNRESET too.  (A refusal of a --listen connection
		 * still ends it with end of stream: v4v-vm(1).) */
		close_sock(vm, c, c->state == C_OPEN);
		conn_free(vm, c);
		return;
	case VSOCK_OP_SHUTDOWN: guest_shutdown(vm, c, h->flags); break;
	case VSOCK_OP_RW: rw(vm, c, h, ch); break;
	case VSOCK_OP_CREDIT_REQUEST: c->tx_credit = true; break;
	case VSOCK_OP_CREDIT_UPDATE: break;
	}
	arm(vm, c);
}

/* ---- v4v side ---------------------------------------------------------- */

void conn_event(struct vm *vm, struct conn *c, uint32_t events)
{
	if (c->state == C_CONNECTING) {
		struct v4v_addr to = {.aport = c->peer_port,
				      .domain_id = (uint16_t)(c->peer_cid - VSOCK_CID_OFFSET)};
		int r = v4v_connect(c->fd, &to);
		if (r == 0) {
			c->state = C_OPEN;
			c->tx_response = true;
		} else if (errno != EALREADY && errno != EINPROGRESS) {
			if (vm->verbose)
				fprintf(stderr, "v4v-vm: connect to %u:%u: %s\n", to.domain_id,
					to.aport, strerror(errno));
			conn_reset(vm, c);
		}
	} else if (c->state == C_OPEN) {
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			c->readable = true;
		if (events & EPOLLOUT)
			flush(vm, c);
	}
	arm(vm, c);
}

void conn_accept(struct vm *vm, struct listener *l)
{
	for (;;) {
		struct v4v_addr peer;
		int fd = v4v_accept(l->fd, &peer);
		if (fd < 0)
			return;
		uint64_t cid = (uint64_t)peer.domain_id + VSOCK_CID_OFFSET;
		struct conn *c =
		    find(vm, l->port, cid, peer.aport)
			? NULL
			: conn_new(vm, l->port, cid, peer.aport, fd, VSOCK_TYPE_STREAM);
		if (!c) {
			v4v_sock_close(fd);
			continue;
		}
		c->state = C_REQUESTED;
		c->tx_request = true;
		arm(vm, c);
	}
}

/* ---- v4v -> guest: one packet per receive buffer ------------------------ */

static uint32_t emit(struct vm *vm, struct conn *c, const struct vq_chain *ch, uint16_t op,
		     uint32_t flags, const void *payload, uint32_t len)
{
	struct vsock_hdr h = {.src_cid = c->peer_cid,
			      .dst_cid = vm->guest_cid,
			      .src_port = c->peer_port,
			      .dst_port = c->guest_port,
			      .len = len,
			      .type = c->type,
			      .op = op,
			      .flags = flags,
			      .buf_alloc = c->type == VSOCK_TYPE_SEQPACKET ? SEQ_MAX : VM_BUF_ALLOC,
			      .fwd_cnt = c->fwd_cnt};
	uint8_t raw[VSOCK_HDR_SIZE];
	if (vm->verbose && op != VSOCK_OP_RW)
		fprintf(stderr, "v4v-vm: to guest port %u from %llu:%u: op %u flags %u\n",
			c->guest_port, (unsigned long long)c->peer_cid, c->peer_port, op, flags);
	pkt_encode(&h, raw);
	vq_chain_write(ch, 0, raw, sizeof(raw));
	if (len)
		vq_chain_write(ch, VSOCK_HDR_SIZE, payload, len);
	c->fwd_sent = c->fwd_cnt;
	c->tx_credit = false;
	return VSOCK_HDR_SIZE + len;
}

/* Seqpacket: the next piece of the record in rec, the last one flagged. */
static uint32_t record_part(struct vm *vm, struct conn *c, const struct vq_chain *ch, uint32_t n)
{
	uint32_t left = c->rec_len - c->rec_off;
	if (n > left)
		n = left;
	const uint8_t *p = c->rec + c->rec_off;
	c->rec_off += n;
	c->tx_cnt += n;
	uint32_t f = c->rec_off == c->rec_len ? VSOCK_SEQ_EOM | VSOCK_SEQ_EOR : 0;
	return emit(vm, c, ch, VSOCK_OP_RW, f, p, n);
}

/* Data from the socket, as much as the buffer and the credit allow. */
static uint32_t data(struct vm *vm, struct conn *c, const struct vq_chain *ch)
{
	uint64_t room = ch->wlen - VSOCK_HDR_SIZE;
	uint32_t n = credit(c);
	if (n > room)
		n = (uint32_t)room;
	if (n > sizeof(vm->bounce))
		n = sizeof(vm->bounce);
	bool seq = c->type == VSOCK_TYPE_SEQPACKET;
	if (seq && n == 0)
		return 0;
	if (seq && c->rec_off < c->rec_len)
		return record_part(vm, c, ch, n);
	if (seq && !c->rec && !(c->rec = malloc(SEQ_MAX))) {
		conn_reset(vm, c);
		return 0;
	}
	ssize_t r = seq ? v4v_recv(c->fd, c->rec, SEQ_MAX, 0) : v4v_recv(c->fd, vm->bounce, n, 0);
	if (r > 0 && seq) {
		c->rec_len = (uint32_t)r;
		c->rec_off = 0;
		return record_part(vm, c, ch, n);
	}
	if (r > 0) {
		c->tx_cnt += (uint32_t)r;
		return emit(vm, c, ch, VSOCK_OP_RW, 0, vm->bounce, (uint32_t)r);
	}
	if (r < 0 && errno == EAGAIN) {
		c->readable = false;
		return 0;
	}
	if (r == 0) {
		c->v4v_eof = true;
		c->tx_shutdown = true;
		return 0;
	}
	conn_reset(vm, c);
	return 0;
}

static uint32_t produce_one(struct vm *vm, struct conn *c, const struct vq_chain *ch, bool *gone)
{
	uint32_t n;
	if (c->tx_request) {
		c->tx_request = false;
		return emit(vm, c, ch, VSOCK_OP_REQUEST, 0, NULL, 0);
	}
	if (c->tx_response) {
		c->tx_response = false;
		return emit(vm, c, ch, VSOCK_OP_RESPONSE, 0, NULL, 0);
	}
	if (wants_data(c) && c->readable && (n = data(vm, c, ch)))
		return n;
	if (c->tx_rst) {
		/* Last word: the guest will not answer an RST. */
		c->tx_rst = false;
		n = emit(vm, c, ch, VSOCK_OP_RST, 0, NULL, 0);
		conn_free(vm, c);
		*gone = true;
		return n;
	}
	if (c->tx_credit)
		return emit(vm, c, ch, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	if (c->tx_shutdown) {
		c->tx_shutdown = false;
		uint32_t f = VSOCK_SHUTDOWN_SEND | (c->guest_eof ? VSOCK_SHUTDOWN_RCV : 0);
		return emit(vm, c, ch, VSOCK_OP_SHUTDOWN, f, NULL, 0);
	}
	return 0;
}

uint32_t conn_produce(struct vm *vm, const struct vq_chain *ch)
{
	if (vm->nstray) {
		uint8_t raw[VSOCK_HDR_SIZE];
		pkt_encode(&vm->stray[--vm->nstray], raw);
		return (uint32_t)vq_chain_write(ch, 0, raw, sizeof(raw));
	}
	for (struct conn *c = vm->head, *next; c; c = next) {
		bool gone = false;
		next = c->next;
		uint32_t n = produce_one(vm, c, ch, &gone);
		if (gone)
			return n;
		arm(vm, c);
		if (n == 0)
			continue;
		/* Served: to the back of the line. */
		list_del(vm, c);
		list_add_tail(vm, c);
		return n;
	}
	return 0;
}
