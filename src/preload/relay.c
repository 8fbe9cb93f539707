/* SPDX-License-Identifier: MIT */
/*
 * v4v-vsock-relay: the process behind one AF_VSOCK socket of a program run
 * with libv4v-preload.so (protocol in vsock.h).
 *
 * It holds the libv4v socket and pumps bytes between it and the AF_UNIX
 * end B whose twin A the program holds.  Because the program's fd is a
 * plain kernel socket, poll/select/epoll, read/write, sendfile, splice,
 * fork and exec all work on it as on any socket; the relay turns its
 * endings into vsock's:
 *
 *   program closes A (B hangs up)      -> v4v_sock_close: peer gets EOF,
 *                                         and EPIPE on its next send
 *   program shutdown(SHUT_WR) (B EOF)  -> v4v_shutdown(SHUT_WR)
 *   peer FIN (v4v_recv 0)              -> shutdown(B, SHUT_WR): EOF in A;
 *                                         if the peer's ring is gone too
 *                                         (closed, or its process or domain
 *                                         died), also SHUT_RD: EPIPE in A.
 *                                         (We look for its RING_GONE up to
 *                                         FIN_PROBE_MS before giving EOF.)
 *   peer reset / v4vd gone             -> shutdown(B, SHUT_RDWR)
 *
 * A listener's relay also carries every connection it accepted.  The relay
 * exits when it holds nothing; it detaches from the program (double fork),
 * so the program never sees it as a child.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "preload/vsock.h"
#include "v4v/v4v.h"

#define BUF	       (VS_SEQ_MAX + 4)
#define FIN_PROBE_MS   50 /* after a FIN, how long to look for the ring going */
#define MAX_CONNS      1024
#define CONNECT_DEF_MS 2000

struct conn {
	int b, v;
	bool seq;
	bool b_eof, v_eof, dead, b_shut_wr, drop_down;
	bool b_hup;	  /* B hung up: poll reports it always, so poll B only for work */
	long long fin_at; /* ms: FIN seen, EOF not yet given to the program */
	char *up, *down;
	size_t up_len, up_off, down_len;
};

int vs_dgram_main(struct v4v_domain *dom); /* relay_dgram.c */

static struct v4v_domain *dom;
static int type;	/* SOCK_STREAM or SOCK_SEQPACKET */
static int lsn = -1;	/* the libv4v listener */
static int lsn_b = -1;	/* the listener's data channel */
static int pend_a = -1; /* an accepted A end the program has no room for yet */
static struct vs_accept pend_rec;
static struct conn *conns[MAX_CONNS];
static int nconns;
static bool debug;

#define DBG(...)                                                                                   \
	(debug ? fprintf(stderr, "v4v-vsock-relay[%d]: ", getpid()), fprintf(stderr, __VA_ARGS__), \
	 fputc('\n', stderr) : 0)

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* peer: the address the program connected to (libv4v's is the
 * connection's own ring), or NULL for the socket's. */
static int reply(int d, int err, int v, const struct vs_req *peer)
{
	struct vs_rep r = {.err = err, .domid = v4v_domid(dom)};
	struct v4v_addr a;
	if (v >= 0 && v4v_getsockname(v, &a) == 0)
		r.port = a.aport;
	if (v >= 0 && v4v_getpeername(v, &a) == 0) {
		r.peer_domid = a.domain_id;
		r.peer_port = a.aport;
	}
	if (peer) {
		r.peer_domid = peer->domid;
		r.peer_port = peer->port;
	}
	return send(d, &r, sizeof(r), MSG_NOSIGNAL) == sizeof(r) ? 0 : -1;
}

static struct conn *conn_add(int b, int v)
{
	if (nconns == MAX_CONNS)
		return NULL;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c || !(c->up = malloc(BUF)) || !(c->down = malloc(BUF))) {
		if (c)
			free(c->up);
		free(c);
		return NULL;
	}
	c->b = b;
	c->v = v;
	c->seq = type == SOCK_SEQPACKET;
	c->fin_at = -1;
	fcntl(b, F_SETFL, O_NONBLOCK);
	conns[nconns++] = c;
	return c;
}

/* Give the program EOF (and EPIPE for its sends when gone), drain what it
 * wrote so closing B later resets nothing, and stop reading the peer. */
static void to_program_eof(struct conn *c, bool gone)
{
	if (!c->b_shut_wr) {
		shutdown(c->b, gone ? SHUT_RDWR : SHUT_WR);
		c->b_shut_wr = true;
	} else if (gone) {
		shutdown(c->b, SHUT_RD);
	}
	c->fin_at = -1;
	c->v_eof = true;
	if (gone) {
		c->dead = true;
		c->up_len = c->up_off = 0;
	}
}

static void conn_free(int i)
{
	struct conn *c = conns[i];
	char junk[4096];
	/* Read what the program still had queued: an unread queue would turn
	 * its end's EOF into ECONNRESET when B closes. */
	while (recv(c->b, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
	close(c->b);
	v4v_sock_close(c->v);
	free(c->up);
	free(c->down);
	free(c);
	conns[i] = conns[--nconns];
}

/* Is the peer's ring gone (closed or dead) rather than just shut for writing? */
static bool peer_gone(struct conn *c)
{
	/* Its ring's going is an event (RING_GONE, in our own domain too). */
	char x;
	v4v_recv(c->v, &x, 0, MSG_DONTWAIT); /* let libv4v read its events */
	return v4v_send(c->v, NULL, 0, MSG_DONTWAIT) < 0 && errno != EAGAIN;
}

/* Program -> peer. */
static void pump_up(struct conn *c, short rev)
{
	if (c->up_off == c->up_len && !c->b_eof && (rev & (POLLIN | POLLHUP | POLLRDHUP))) {
		char *at = c->seq ? c->up + 4 : c->up;
		ssize_t n = recv(c->b, at, c->seq ? VS_SEQ_MAX : BUF, MSG_DONTWAIT);
		c->up_off = c->up_len = 0;
		if (n > 0 || (n == 0 && c->seq && !(rev & (POLLRDHUP | POLLHUP)))) {
			uint32_t len = (uint32_t)n; /* (seqpacket: 0 is an empty record) */
			if (c->seq)
				memcpy(c->up, &len, 4);
			c->up_len = c->seq ? 4 + (size_t)len : (size_t)n;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			c->b_eof = true;
			if (!c->dead && !(rev & POLLHUP))
				v4v_shutdown(c->v, SHUT_WR);
		}
		if (c->dead)
			c->up_len = 0; /* nobody to send it to */
	}
	while (!c->dead && c->up_off < c->up_len) {
		ssize_t n = v4v_send(c->v, c->up + c->up_off, c->up_len - c->up_off, MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN) {
				DBG("send: %s", strerror(errno));
				to_program_eof(c, true); /* reset, or v4vd gone */
			}
			return;
		}
		c->up_off += (size_t)n;
	}
}

/* Peer -> program. */
static void pump_down(struct conn *c, short rev_v)
{
	if (!c->v_eof && c->fin_at < 0 && (rev_v & (POLLIN | POLLHUP | POLLERR)) &&
	    c->down_len < BUF) {
		ssize_t n = v4v_recv(c->v, c->down + c->down_len, BUF - c->down_len, MSG_DONTWAIT);
		if (n > 0 && !c->drop_down)
			c->down_len += (size_t)n;
		else if (n == 0)
			c->fin_at = now_ms();
		else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			DBG("recv: %s", strerror(errno));
			to_program_eof(c, true);
		}
	}
	for (;;) {
		size_t off = 0, len = c->down_len;
		if (c->seq) {
			uint32_t rl;
			if (len < 4)
				break;
			memcpy(&rl, c->down, 4);
			if (rl > VS_SEQ_MAX) {
				to_program_eof(c, true); /* not one of us */
				c->down_len = 0;
				break;
			}
			if (len < 4 + (size_t)rl)
				break;
			off = 4;
			len = rl;
		}
		if (!len && !c->seq)
			break;
		ssize_t n = send(c->b, c->down + off, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EPIPE) {
				c->drop_down = true; /* the program shut reading */
				v4v_shutdown(c->v, SHUT_RD);
				c->down_len = 0;
			}
			break;
		}
		size_t used = c->seq ? off + len : (size_t)n;
		memmove(c->down, c->down + used, c->down_len - used);
		c->down_len -= used;
	}
	/* FIN read: EOF goes to the program once its data is delivered, and
	 * with EPIPE when the peer's ring is gone (a close, not a shutdown). */
	if (c->fin_at >= 0 && c->down_len == 0) {
		bool gone = peer_gone(c);
		if (gone || now_ms() - c->fin_at >= FIN_PROBE_MS) {
			DBG("peer FIN%s after %lld ms", gone ? ", ring gone" : "",
			    now_ms() - c->fin_at);
			to_program_eof(c, gone);
		}
	}
}

/* Something the program can be given: bytes, or one whole record. */
static bool deliverable(const struct conn *c)
{
	uint32_t rl;
	if (!c->seq || c->down_len < 4)
		return !c->seq && c->down_len > 0;
	memcpy(&rl, c->down, 4);
	return c->down_len >= 4 + (size_t)rl || rl > VS_SEQ_MAX;
}

static void accept_some(void)
{
	for (int k = 0; k < 16; k++) {
		if (pend_a < 0) {
			struct v4v_addr peer;
			int v = v4v_accept(lsn, &peer);
			if (v < 0) {
				if (errno == EPIPE) /* v4vd is gone: so is the listener */
					shutdown(lsn_b, SHUT_RDWR);
				return;
			}
			int sv[2];
			if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0 ||
			    !conn_add(sv[1], v)) {
				v4v_sock_close(v);
				return;
			}
			struct v4v_addr me = {0};
			v4v_getsockname(lsn, &me);
			pend_a = sv[0];
			pend_rec = (struct vs_accept){VS_ACCEPT_MAGIC, me.aport, peer.domain_id,
						      peer.aport};
		}
		char cbuf[CMSG_SPACE(sizeof(int))] = {0};
		struct iovec iov = {&pend_rec, sizeof(pend_rec)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf)};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pend_a, sizeof(int));
		if (sendmsg(lsn_b, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			if (errno != EAGAIN) { /* the program closed its listener */
				close(pend_a);
				pend_a = -1;
			}
			return;
		}
		close(pend_a);
		pend_a = -1;
	}
}

/* A connect, bounded by the program's timeout. */
static int do_connect(int v, const struct vs_req *q)
{
	struct v4v_addr to = {.aport = q->port, .domain_id = (uint16_t)q->domid};
	if (q->domid > V4V_DOMID_MAX)
		return EHOSTUNREACH;
	long long end = now_ms() + (q->timeout_ms ? q->timeout_ms : CONNECT_DEF_MS);
	v4v_sock_set_nonblock(v, 1);
	int r;
	while ((r = v4v_connect(v, &to)) < 0) {
		if (errno == EISCONN)
			break;
		if (errno != EINPROGRESS && errno != EALREADY && errno != EAGAIN)
			break;
		long long left = end - now_ms();
		if (left <= 0)
			return ETIMEDOUT;
		struct pollfd p = {.fd = v, .events = POLLIN};
		poll(&p, 1, left > 50 ? 50 : (int)left);
	}
	if (r == 0 || errno == EISCONN)
		return 0;
	switch (errno) {
	case ECONNREFUSED: return ECONNRESET; /* what Linux's vsock says: nobody listens */
	case EPIPE: return ENETDOWN;
	default: return errno;
	}
}

/* Set-up requests, until the socket is connected or listening. */
static int serve_ctl(int d, int b)
{
	int v = -1;
	for (;;) {
		struct vs_req q;
		struct pollfd p[2] = {{.fd = d, .events = POLLIN}, {.fd = b, .events = 0}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (p[1].revents & POLLHUP) /* the program closed the socket */
			return -1;
		if (!(p[0].revents & (POLLIN | POLLHUP)))
			continue;
		ssize_t n = recv(d, &q, sizeof(q), 0);
		if (n != sizeof(q))
			return -1;
		int err = 0;
		if (v < 0) {
			v = v4v_socket(dom, V4V_SOCK_STREAM, 0);
			if (v < 0) {
				reply(d, errno == EPIPE ? ENETDOWN : errno, -1, NULL);
				continue;
			}
			if (q.ring_len && v4v_sock_set_ring_len(v, (uint32_t)q.ring_len) < 0)
				DBG("ring length %llu refused", (unsigned long long)q.ring_len);
		}
		switch (q.op) {
		case VS_OP_BIND: {
			struct v4v_addr a = {.aport = q.port, .domain_id = V4V_DOMID_ANY};
			if (v4v_bind(v, &a) < 0)
				err = errno;
			reply(d, err, v, NULL);
			break;
		}
		case VS_OP_LISTEN:
			if (v4v_listen(v, 64) < 0 || v4v_sock_set_nonblock(v, 1) < 0) {
				reply(d, errno, v, NULL);
				break;
			}
			reply(d, 0, v, NULL);
			lsn = v;
			lsn_b = b;
			fcntl(b, F_SETFL, O_NONBLOCK);
			return 0;
		case VS_OP_CONNECT: {
			err = do_connect(v, &q);
			DBG("connect %u:%u: %s", q.domid, q.port, err ? strerror(err) : "ok");
			reply(d, err, err ? -1 : v, &q);
			/* The filler that kept a non-blocking A unwritable goes now. */
			static char junk[VS_JUNK_CHUNK]; /* (a whole seqpacket record) */
			for (uint64_t left = q.junk; left > 0;) {
				ssize_t k =
				    recv(b, junk, left < sizeof(junk) ? left : sizeof(junk), 0);
				if (k <= 0)
					break;
				left -= (uint64_t)k;
			}
			if (err) {
				shutdown(b, SHUT_RDWR);
				return -1;
			}
			return conn_add(b, v) ? 0 : -1;
		}
		default: reply(d, EINVAL, v, NULL);
		}
	}
}

static void loop(void)
{
	struct pollfd p[2 * MAX_CONNS + 2];
	while (nconns > 0 || lsn >= 0) {
		int n = 0, timeout = -1, polled = nconns;
		for (int i = 0; i < nconns; i++) {
			struct conn *c = conns[i];
			short eb = POLLRDHUP, ev = 0;
			if (c->up_off == c->up_len && !c->b_eof)
				eb |= POLLIN;
			if (c->up_off < c->up_len && !c->dead)
				ev |= POLLOUT;
			if (deliverable(c))
				eb |= POLLOUT;
			if (c->down_len < BUF && !c->v_eof && c->fin_at < 0)
				ev |= POLLIN;
			if (c->fin_at >= 0)
				timeout = 2;
			p[n++] = (struct pollfd){.fd = c->b_hup && eb == POLLRDHUP ? -1 : c->b,
						 .events = eb};
			p[n++] = (struct pollfd){.fd = c->dead ? -1 : c->v, .events = ev};
		}
		if (lsn_b >= 0) {
			/* The listener's channel, for the program closing it (and
			 * for room when an accepted connection waits), and libv4v's. */
			p[n++] = (struct pollfd){.fd = lsn_b,
						 .events = POLLRDHUP | (pend_a >= 0 ? POLLOUT : 0)};
			p[n++] = (struct pollfd){.fd = lsn, .events = pend_a >= 0 ? 0 : POLLIN};
		}
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
			return;
		if (lsn_b >= 0) {
			short rb = p[n - 2].revents, rv = p[n - 1].revents;
			if (rb & (POLLHUP | POLLRDHUP | POLLERR)) { /* the program closed it */
				close(lsn_b);
				lsn_b = -1;
				if (pend_a >= 0)
					close(pend_a);
				pend_a = -1;
				v4v_sock_close(lsn); /* a connector's SYNACK outlives it */
				lsn = -1;
			} else if ((rb & POLLOUT) || rv) {
				accept_some();
			}
		}
		for (int i = nconns - 1; i >= 0; i--) {
			struct conn *c = conns[i];
			if (i >= polled)
				continue; /* added during this round */
			short rb = p[2 * i].revents, rv = p[2 * i + 1].revents;
			if (rb & POLLHUP)
				c->b_hup = true;
			if ((rv & (POLLHUP | POLLERR)) && !c->dead) {
				DBG("v4vd hung up");
				to_program_eof(c, true);
				c->down_len = 0;
			}
			pump_up(c, rb);
			pump_down(c, rv);
			/* The program closed A (both ways shut on B's side) and has
			 * nothing left for us: the connection is over. */
			bool hup = (rb & POLLHUP) && c->b_eof && c->up_off == c->up_len;
			if (hup || (c->dead && c->b_eof))
				conn_free(i);
		}
	}
}

int main(int argc, char **argv)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	debug = getenv("V4V_VSOCK_DEBUG") != NULL;
	type = argc > 1 && strcmp(argv[1], "seqpacket") == 0 ? SOCK_SEQPACKET : SOCK_STREAM;
	bool cid_only = argc > 1 && strcmp(argv[1], "cid") == 0;

	setsid(); /* (already not the program's child: spawn_relay) */

	int e = v4v_open(&dom);
	struct vs_rep hello = {.err = e ? (e == -ENOTCONN ? EAFNOSUPPORT : ENETDOWN) : 0};
	if (!e)
		hello.domid = v4v_domid(dom);
	if (send(VS_FD_CTL, &hello, sizeof(hello), MSG_NOSIGNAL) != sizeof(hello) || e || cid_only)
		return 0;
	if (argc > 1 && strcmp(argv[1], "dgram") == 0)
		return vs_dgram_main(dom);
	if (serve_ctl(VS_FD_CTL, VS_FD_DATA) < 0)
		return 0;
	close(VS_FD_CTL);
	loop();
	v4v_close(dom);
	return 0;
}
