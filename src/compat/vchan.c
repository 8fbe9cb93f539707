/* SPDX-License-Identifier: MIT */
/*
 * The vchan engine's data path: two vchan rings kept as local buffers at
 * each end of a v4v stream, with credit accounting (as virtio-vsock's)
 * so that data_ready and buffer_space are exact and buffer_space bytes
 * can always be written at once.
 *
 * Events: Xen's event channel fd stays readable from a notification until
 * libxenvchan_wait.  Ours is an epoll fd over the sources (the listener,
 * the connection) and an eventfd `pend`, set whenever this library takes
 * something off a source (data, a credit, a connection, the peer's close),
 * and cleared by vch_wait: so it is readable exactly while something
 * happened that vch_wait has not acknowledged, whoever pulled it in.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "compat/vchan_int.h"

#define CLOSE_FLUSH_MS 1000

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* ---- objects and fds ---------------------------------------------------- */

struct vch *vch__alloc(void)
{
	struct vch *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->lsn = c->sock = -1;
	c->hs_status = -1;
	c->ep_src = epoll_create1(EPOLL_CLOEXEC);
	c->ep_user = epoll_create1(EPOLL_CLOEXEC);
	c->pend = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct epoll_event e = {.events = EPOLLIN};
	if (c->ep_src < 0 || c->ep_user < 0 || c->pend < 0 || c->timer < 0 ||
	    epoll_ctl(c->ep_user, EPOLL_CTL_ADD, c->ep_src, &e) < 0 ||
	    epoll_ctl(c->ep_user, EPOLL_CTL_ADD, c->pend, &e) < 0 ||
	    epoll_ctl(c->ep_src, EPOLL_CTL_ADD, c->timer, &e) < 0) {
		vch__free(c);
		return NULL;
	}
	return c;
}

/* Free a vchan in any state (also half-built ones). */
void vch__free(struct vch *c)
{
	if (!c)
		return;
	vch__drop_sock(c);
	if (c->lsn >= 0)
		v4v_sock_close(c->lsn);
	if (c->name[0])
		v4v_name_unregister(c->d, c->name);
	int fds[] = {c->ep_src, c->ep_user, c->pend, c->timer};
	for (unsigned i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(c->rbuf);
	free(c->tbuf);
	free(c->kbuf);
	free(c->key);
	free(c);
}

/* Something happened: the user's fd polls readable until vch_wait. */
void vch__event(struct vch *c)
{
	if (!c->pending) {
		uint64_t one = 1;
		c->pending = write(c->pend, &one, sizeof(one)) == sizeof(one);
	}
}

static void ack_event(struct vch *c)
{
	uint64_t v;
	if (c->pending && read(c->pend, &v, sizeof(v)) == sizeof(v))
		c->pending = false;
}

int vch__adopt(struct vch *c, int sock, enum conn state)
{
	struct epoll_event e = {.events = EPOLLIN};
	if (epoll_ctl(c->ep_src, EPOLL_CTL_ADD, sock, &e) < 0) {
		int err = -errno;
		v4v_sock_close(sock);
		return err;
	}
	c->sock = sock;
	c->conn = state;
	c->want_out = false;
	c->hlen = 0;
	c->olen = c->ooff = 0;
	c->hs_status = -1;
	free(c->kbuf); /* a key half-sent by an earlier connection */
	c->kbuf = NULL;
	return 0;
}

void vch__drop_sock(struct vch *c)
{
	if (c->sock < 0)
		return;
	epoll_ctl(c->ep_src, EPOLL_CTL_DEL, c->sock, NULL);
	v4v_sock_close(c->sock);
	c->sock = -1;
}

/* The connection ended (close, exit, death, or nonsense from the peer). */
static void conn_down(struct vch *c)
{
	vch__drop_sock(c);
	c->conn = C_DOWN;
	c->credit_due = 0;
	vch__event(c);
}

static void want_out(struct vch *c, bool on)
{
	if (c->want_out == on || c->sock < 0)
		return;
	struct epoll_event e = {.events = EPOLLIN | (on ? EPOLLOUT : 0)};
	if (epoll_ctl(c->ep_src, EPOLL_CTL_MOD, c->sock, &e) == 0)
		c->want_out = on;
}

/* ---- sending ------------------------------------------------------------ */

void vch__put_frame(struct vch *c, unsigned type, uint32_t value, const void *body, size_t len)
{
	uint32_t h = (uint32_t)type << 24 | value;
	uint8_t *p = c->out + c->olen;
	p[0] = (uint8_t)h, p[1] = (uint8_t)(h >> 8), p[2] = (uint8_t)(h >> 16),
	p[3] = (uint8_t)(h >> 24);
	if (len)
		memcpy(p + 4, body, len);
	c->olen += 4 + len;
}

/* Frame what is due (credit first, then data from tbuf) into out. */
static bool refill(struct vch *c)
{
	c->olen = c->ooff = 0;
	if (c->conn != C_UP)
		return false;
	if (c->credit_due) {
		vch__put_frame(c, F_CREDIT, c->credit_due, NULL, 0);
		c->credit_due = 0;
	}
	while (c->fl < c->wr && OUT_CAP - c->olen > 4) {
		uint32_t idx = (uint32_t)(c->fl & (c->wsize - 1));
		size_t n = (size_t)min64(c->wr - c->fl, c->wsize - idx);
		n = (size_t)min64(n, OUT_CAP - c->olen - 4);
		vch__put_frame(c, F_DATA, (uint32_t)n, c->tbuf + idx, n);
		c->fl += n;
	}
	return c->olen > 0;
}

/* Hand the socket what it takes now; the rest waits for POLLOUT. */
int vch__flush(struct vch *c)
{
	while (c->sock >= 0) {
		if (c->ooff == c->olen && !refill(c))
			break;
		ssize_t r = v4v_send(c->sock, c->out + c->ooff, c->olen - c->ooff, MSG_DONTWAIT);
		if (r > 0) {
			c->ooff += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EAGAIN) {
			want_out(c, true);
			return 0;
		}
		conn_down(c);
		return -EPIPE;
	}
	want_out(c, false);
	return 0;
}

/* The connection is set up: data written before goes out now. */
void vch__up(struct vch *c)
{
	c->conn = C_UP;
	vch__event(c);
}

/* ---- receiving ---------------------------------------------------------- */

static uint32_t rcount(const struct vch *c)
{
	return (uint32_t)(c->rin - c->rout);
}

/* A frame header is complete: act on it.  -EPROTO for nonsense. */
static int begin_frame(struct vch *c)
{
	uint32_t h = c->hdr[0] | c->hdr[1] << 8 | c->hdr[2] << 16 | (uint32_t)c->hdr[3] << 24;
	uint32_t v = h & F_VALUE_MAX;
	c->ftype = (uint8_t)(h >> 24);
	c->hlen = 0;
	switch (c->ftype) {
	case F_DATA:
		if (c->conn != C_UP || v > c->rsize - rcount(c))
			return -EPROTO; /* beyond the credit we gave */
		c->body_left = v;
		c->hlen = v ? 4 : 0;
		return 0;
	case F_CREDIT:
		if (c->conn != C_UP || v > c->fl - c->ack)
			return -EPROTO;
		c->ack += v;
		return 0;
	case F_HELLO_C:
		if (!c->server || c->conn != C_HELLO || c->kbuf || v > VCH_KEY_MAX)
			return -EPROTO;
		c->klen = v;
		c->koff = 0;
		c->kbuf = malloc(v ? v : 1);
		if (!c->kbuf)
			return -ENOMEM;
		c->body_left = v;
		c->hlen = 4;
		return v ? 0 : vch__on_hello_c(c);
	case F_HELLO_S:
		if (c->server || c->conn != C_HELLO)
			return -EPROTO;
		c->hs_status = (int)(v >> 22);
		if (c->hs_status == HS_OK) {
			/* What the server still holds of an earlier client's
			 * data counts against our room. */
			c->wr = c->fl = c->ack + (v & HS_HELD_MASK);
			if (c->wr - c->ack > c->wsize)
				return -EPROTO;
			vch__up(c);
		}
		return 0;
	}
	return -EPROTO;
}

/* Read some of the current frame's body; the recv result. */
static ssize_t body(struct vch *c)
{
	if (c->ftype == F_HELLO_C) {
		ssize_t r = v4v_recv(c->sock, c->kbuf + c->koff, c->klen - c->koff, MSG_DONTWAIT);
		if (r > 0 && (c->koff += (size_t)r) == c->klen) {
			c->hlen = 0;
			if (vch__on_hello_c(c) < 0)
				return -2;
		}
		return r;
	}
	uint32_t idx = (uint32_t)(c->rin & (c->rsize - 1));
	size_t n = (size_t)min64(c->body_left, c->rsize - idx);
	ssize_t r = v4v_recv(c->sock, c->rbuf + idx, n, MSG_DONTWAIT);
	if (r > 0) {
		c->rin += (uint64_t)r;
		if (!(c->body_left -= (uint32_t)r))
			c->hlen = 0;
	}
	return r;
}

/* Take everything the connection has now.  Returns true if anything came. */
bool vch__pull(struct vch *c)
{
	bool any = false;
	while (c->sock >= 0 && c->conn != C_DOWN) {
		ssize_t r;
		if (c->hlen < 4) {
			r = v4v_recv(c->sock, c->hdr + c->hlen, 4 - c->hlen, MSG_DONTWAIT);
			if (r > 0 && (c->hlen += (unsigned)r) == 4 && begin_frame(c) < 0)
				r = -2;
		} else {
			r = body(c);
		}
		if (r > 0) {
			any = true;
			continue;
		}
		if (r == -1 && errno == EAGAIN)
			break;
		conn_down(c); /* end of stream, reset, v4vd gone, or a bad frame */
		return true;
	}
	if (any)
		vch__event(c);
	return any;
}

/* Everything that can happen without waiting. */
static void service(struct vch *c)
{
	if (c->timer_armed) {
		uint64_t n;
		if (read(c->timer, &n, sizeof(n)) == sizeof(n))
			c->timer_armed = false;
	}
	if (c->server)
		vch__accept(c);
	else if (c->conn == C_LOOKUP || c->conn == C_CONNECTING || c->conn == C_HELLO)
		return; /* vch_client_step drives these */
	vch__pull(c);
	vch__flush(c);
}

/* Sleep until a source has something, then service. */
static int wait_source(struct vch *c, int ms)
{
	struct pollfd p = {.fd = c->ep_src, .events = POLLIN};
	int r;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r ? 0 : -ETIMEDOUT;
}

/* ---- the API ------------------------------------------------------------ */

enum vch_state vch_state(struct vch *c)
{
	service(c);
	if (c->conn == C_UP)
		return VCH_OPEN;
	if (c->conn == C_DOWN || (c->had_client && c->conn != C_UP))
		return VCH_CLOSED; /* until a new client is through its hello */
	return VCH_WAITING;
}

bool vch_peer_dead(struct vch *c)
{
	char dom[8];
	uint16_t id;
	snprintf(dom, sizeof(dom), "%u", c->peer_dom);
	if (!c->peer_dead && v4v_domain_resolve(c->d, dom, &id) == -ESRCH)
		c->peer_dead = true;
	return c->peer_dead;
}

void vch_set_persist(struct vch *c, bool on)
{
	c->persist = on;
}

/* Reads and writes fail: the peer is gone and no other can come. */
static bool closed(const struct vch *c)
{
	bool gone = c->conn == C_DOWN || (c->had_client && c->conn != C_UP);
	return gone && !(c->persist && c->lsn >= 0);
}

bool vch_is_server(const struct vch *c)
{
	return c->server;
}

uint32_t vch_read_size(const struct vch *c)
{
	return c->rsize;
}

uint32_t vch_write_size(const struct vch *c)
{
	return c->wsize;
}

size_t vch_data_ready(struct vch *c)
{
	service(c);
	return rcount(c);
}

size_t vch_buffer_space(struct vch *c)
{
	service(c);
	return c->wsize - (size_t)(c->wr - c->ack);
}

int vch_fd(const struct vch *c)
{
	return c->ep_user;
}

int vch_wait(struct vch *c, int ms)
{
	/* As Xen's wait returns for an event that is there: when a source is
	 * ready now (the user's select on fd_for_select saw it), take what it
	 * brought and return, even if none of it shows to the user (a token,
	 * a hang-up of a gone client with server_persist): sleeping for the
	 * next event instead could leave a select-then-wait loop asleep for
	 * ever. */
	bool ready = wait_source(c, 0) == 0;
	for (;;) {
		service(c);
		if (c->pending || ready) {
			if (c->pending)
				ack_event(c);
			return 0;
		}
		if (c->sock < 0 && c->lsn < 0 && !c->timer_armed)
			return -EPIPE; /* nothing will ever come */
		int e = wait_source(c, ms);
		if (e)
			return e;
		/* A listener woken with nobody there: its partner may have died. */
		if (c->server && !c->had_client && c->sock < 0 && vch_peer_dead(c))
			vch__event(c);
	}
}

int vch_poll(struct vch *c, int ms)
{
	return wait_source(c, ms);
}

static void copy_out(struct vch *c, void *buf, size_t len)
{
	uint32_t idx = (uint32_t)(c->rout & (c->rsize - 1));
	size_t a = (size_t)min64(len, c->rsize - idx);
	memcpy(buf, c->rbuf + idx, a);
	memcpy((uint8_t *)buf + a, c->rbuf, len - a);
	c->rout += len;
	if (c->conn == C_UP)
		c->credit_due += (uint32_t)len;
}

ssize_t vch_read(struct vch *c, void *buf, size_t len, bool whole, bool blocking)
{
	for (;;) {
		size_t have = vch_data_ready(c);
		if (have && (have >= len || !whole)) {
			size_t n = have < len ? have : len;
			copy_out(c, buf, n);
			vch__flush(c); /* the credit */
			return (ssize_t)n;
		}
		if (len == 0)
			return 0;
		if (closed(c))
			return -EPIPE;
		if (!blocking)
			return 0;
		if (whole && len > c->rsize)
			return -EMSGSIZE; /* would wait for ever */
		int e = vch_wait(c, -1);
		if (e)
			return e;
	}
}

static void copy_in(struct vch *c, const void *buf, size_t len)
{
	uint32_t idx = (uint32_t)(c->wr & (c->wsize - 1));
	size_t a = (size_t)min64(len, c->wsize - idx);
	memcpy(c->tbuf + idx, buf, a);
	memcpy(c->tbuf, (const uint8_t *)buf + a, len - a);
	c->wr += len;
}

ssize_t vch_write(struct vch *c, const void *buf, size_t len, bool whole, bool blocking)
{
	size_t done = 0;
	while (done < len || len == 0) {
		/* As Xen's: a closed peer fails the call, whatever was written */
		service(c);
		if (closed(c))
			return -EPIPE;
		size_t space = c->wsize - (size_t)(c->wr - c->ack), n = len - done;
		if (len == 0)
			return 0;
		if (n > space)
			n = whole ? 0 : space;
		if (n) {
			copy_in(c, (const uint8_t *)buf + done, n);
			done += n;
			vch__flush(c);
			continue;
		}
		if (!blocking)
			break;
		if (whole && len > c->wsize)
			return -EMSGSIZE; /* would wait for ever */
		int e = vch_wait(c, -1);
		if (e)
			return e;
	}
	return (ssize_t)done;
}

/* Give the peer what it may still read (it can: that is our credit). */
static void flush_all(struct vch *c)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (c->sock >= 0 && c->conn == C_UP && (c->ooff < c->olen || c->fl < c->wr)) {
		vch__flush(c);
		if (c->ooff == c->olen && c->fl == c->wr)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= CLOSE_FLUSH_MS)
			break;
		struct pollfd p = {.fd = c->sock, .events = POLLOUT};
		poll(&p, 1, 100);
		vch__pull(c); /* credits and the peer's close */
	}
}

void vch_close(struct vch *c)
{
	if (!c)
		return;
	flush_all(c);
	vch__free(c);
}
