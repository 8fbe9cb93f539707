/* SPDX-License-Identifier: MIT */
/*
 * The v4v contenders: v4v-ring (the low-level API: a ring, v4v_sendv, the
 * VIRQ) and v4v-dgram and v4v-stream (the sockets applications use).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>

#include "bench.h"
#include "common/util.h"
#include "tool.h"

/* ---- v4v-ring: the low-level API ----------------------------------------- *
 *
 * What a datagram user of the Argo-style API writes: a ring of the datagram
 * socket's default size, v4v_sendv, the VIRQ to sleep on.  Receiving is in
 * place (the zero-copy receive of the design), so next to v4v-dgram this
 * shows what the socket layer costs.
 */
int vend_attach(struct end *e)
{
	return v4v_open_fd(e->p->fd[e->side][0], &e->d);
}

int vring_open(struct end *e)
{
	e->peer = (struct v4v_addr){.aport = PORT(!e->side), .domain_id = e->p->domid[!e->side]};
	e->fp = (uint32_t)v4v_msg_ring_bytes(e->size);
	return v4v_ring_register(e->d, PORT(e->side), V4V_DOMID_ANY, RING_LEN, 0, &e->rx);
}

/* Sleep until v4vd signals this process; the caller then re-checks.  The
 * ack comes before the re-check, so a signal after it is not lost. */
static int virq_wait(struct end *e)
{
	struct pollfd p = {.fd = v4v_virq_fd(e->d), .events = POLLIN};
	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return -errno;
	return v4v_virq_ack(e->d);
}

int vring_send(struct end *e, const void *buf, size_t len)
{
	struct iovec iov = {(void *)buf, len};
	for (;;) {
		long n = v4v_sendv(e->d, PORT(e->side), &e->peer, &iov, 1, 0);
		if (n >= 0)
			return (size_t)n == len ? 0 : -EPROTO;
		if (n != -EAGAIN)
			return (int)n;
		/* Queued as a space waiter: the VIRQ fires when there is room. */
		int err = virq_wait(e);
		if (err)
			return err;
	}
}

/*
 * A sender refused with EAGAIN waits until the ring owner calls notify.
 * Notifying after every message would add a round trip to each, so notify
 * only when a refusal was possible: since our last notify, the bytes we
 * consumed plus those still queued exceeded what leaves room for one more
 * message.  Any refusal since then needed the ring that full, and both
 * counts only grow from there, so this never misses one.  Notify when the
 * ring is empty (we are about to sleep) or half of it is free again.
 */
static int vring_maybe_notify(struct end *e, bool empty)
{
	uint32_t len = v4v_rx_len(e->rx);
	uint32_t used = v4v_rx_used(e->rx);
	if (e->consumed + used <= len - V4V_MSG_SLOT - e->fp)
		return 0;
	if (!empty && e->consumed < len / 2)
		return 0;
	e->consumed = 0;
	return v4v_notify(e->d, NULL, 0);
}

int vring_recv(struct end *e, void *buf, size_t len, const uint8_t **data)
{
	int err;
	if (e->holding) {
		v4v_rx_consume(e->rx, &e->held);
		e->consumed += v4v_msg_ring_bytes(e->held.len);
		e->holding = false;
		if ((err = vring_maybe_notify(e, false)))
			return err;
	}
	for (;;) {
		int r = v4v_rx_peek(e->rx, &e->held);
		if (r < 0)
			return r;
		if (r == 1)
			break;
		if ((err = vring_maybe_notify(e, true)) || (err = virq_wait(e)))
			return err;
	}
	e->holding = true;
	if (e->held.len != len)
		return -EPROTO;
	if (e->held.seg[1].len) {
		/* Wrapped around the end of the ring: the only copy we make. */
		v4v_msg_read(&e->held, buf, len);
		*data = buf;
	} else {
		*data = e->held.seg[0].base;
	}
	return 0;
}

int vpair_setup(struct pair *p, enum workload w)
{
	p->fd[0][0] = domain_create(&p->domid[0]);
	p->fd[1][0] = domain_create(&p->domid[1]);
	return 0;
}

/* ---- v4v sockets: what applications use -------------------------------- */

/* A socket bound to this side's port, accepting from any domain. */
static int vsock_bound(struct end *e, int type)
{
	struct v4v_addr a = {.aport = PORT(e->side), .domain_id = V4V_DOMID_ANY};
	int s = v4v_socket(e->d, type, 0);
	if (s < 0)
		return -errno;
	if (v4v_bind(s, &a) < 0 || (type == V4V_SOCK_STREAM && v4v_listen(s, 64) < 0)) {
		int err = -errno;
		v4v_sock_close(s);
		return err;
	}
	return s;
}

int vdgram_open(struct end *e)
{
	int s = vsock_bound(e, V4V_SOCK_DGRAM);
	if (s < 0)
		return s;
	e->rfd = e->wfd = s;
	e->peer = (struct v4v_addr){.aport = PORT(!e->side), .domain_id = e->p->domid[!e->side]};
	return 0;
}

int vdgram_send(struct end *e, const void *buf, size_t len)
{
	ssize_t n = v4v_sendto(e->wfd, buf, len, 0, &e->peer);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EPROTO;
}

int vdgram_recv(struct end *e, void *buf, size_t len, const uint8_t **data)
{
	ssize_t n = v4v_recv(e->rfd, buf, len, 0);
	if (n < 0)
		return -errno;
	*data = buf;
	return (size_t)n == len ? 0 : -EPROTO;
}

/* A connects to B's listener, B accepts (in open2, once A may connect). */
int vstream_connect(struct end *e)
{
	struct v4v_addr peer = {.aport = PORT(1), .domain_id = e->p->domid[1]};
	int s = v4v_socket(e->d, V4V_SOCK_STREAM, 0);
	if (s < 0)
		return -errno;
	if (v4v_connect(s, &peer) < 0) {
		int err = -errno;
		v4v_sock_close(s);
		return err;
	}
	return s;
}

int vstream_listen(struct end *e)
{
	int s = vsock_bound(e, V4V_SOCK_STREAM);
	e->lfd = s;
	return s < 0 ? s : 0;
}

int vstream_open(struct end *e)
{
	if (e->side)
		return vstream_listen(e);
	int s = vstream_connect(e);
	e->rfd = e->wfd = s;
	return s < 0 ? s : 0;
}

int vstream_accept(struct end *e)
{
	int s = v4v_accept(e->lfd, NULL);
	return s < 0 ? -errno : s;
}

int vstream_open2(struct end *e)
{
	if (!e->side)
		return 0;
	int s = vstream_accept(e);
	e->rfd = e->wfd = s;
	return s < 0 ? s : 0;
}

int vstream_send(struct end *e, const void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = v4v_send(e->wfd, (const char *)buf + off, len - off, 0);
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

int vstream_recv(struct end *e, void *buf, size_t len, const uint8_t **data)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = v4v_recv(e->rfd, (char *)buf + off, len - off, 0);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		off += (size_t)n;
	}
	*data = buf;
	return 0;
}

void vstream_close(struct end *e, int fd)
{
	v4v_sock_close(fd);
}
