/* SPDX-License-Identifier: MIT */
/*
 * A hostile peer against libv4v's stream sockets: no call may block
 * without bound, or spin, because of what the other end does (issue 8).
 *
 * The hostile party is a domain of this process speaking the stream
 * protocol by hand (raw rings, v4v_sendv with sock.h's MT_* types): it
 * keeps its ring full, announces tiny rings, sends malformed messages.
 * The victims are ordinary sockets.  A hang is caught by guard(), an alarm
 * far beyond any honest wait: it means "hung", never a performance target.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/barrier.h"
#include "core/ring.h"
#include "lib/sock.h"
#include "t.h"

#define WAIT_MS	 10000 /* failure guard for a poll, never a synchronization delay */
#define GUARD_S	 20    /* failure guard for a call that must return */
#define LPORT	 100   /* the listener's port */
#define HPORT	 200   /* the hostile domain's ring */
#define HCONN	 201   /* the hostile domain's per-connection ring */
#define MIN_RING 4096  /* STREAM_RING_MIN, as documented in libv4v(3) */

/* ---- guards ---------------------------------------------------------------- */

static const char *guarded;

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "hung (guard expired) in ";
	(void)!write(2, msg, sizeof(msg) - 1);
	(void)!write(2, guarded, strlen(guarded));
	(void)!write(2, "\n", 1);
	exit(1); /* a failing test: let atexit stop our v4vd */
}

/* The next call must return within GUARD_S seconds; guard(NULL) disarms. */
static void guard(const char *what)
{
	guarded = what;
	signal(SIGALRM, on_alarm);
	alarm(what ? GUARD_S : 0);
}

static void pollin(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	CHECK_EQ(poll(&p, 1, WAIT_MS), 1);
}

/* ---- the hostile domain's hand-made protocol ------------------------------- */

static struct v4v_rx *raw_ring(struct v4v_domain *d, v4v_port_t port, uint32_t len)
{
	struct v4v_rx *r;
	CHECK_EQ(v4v_ring_register(d, port, V4V_DOMID_ANY, len, 0, &r), 0);
	return r;
}

static long raw_send(struct v4v_domain *d, v4v_port_t from, const struct v4v_addr *to,
		     uint32_t type, const void *buf, size_t len)
{
	struct iovec iov = {(void *)buf, len};
	return v4v_sendv(d, from, to, &iov, 1, type);
}

static void raw_hello(struct v4v_domain *d, v4v_port_t from, const struct v4v_addr *to,
		      uint32_t type, uint32_t ring_len)
{
	CHECK_EQ(raw_send(d, from, to, type, &ring_len, sizeof(ring_len)), sizeof(ring_len));
}

/* The next message in a raw ring, waiting (bounded) for it; consumed. */
static struct v4v_msg raw_next(struct v4v_domain *d, struct v4v_rx *r)
{
	struct v4v_msg m;
	while (v4v_rx_peek(r, &m) == 0)
		CHECK(t_wait_virq(d, WAIT_MS));
	v4v_rx_consume(r, &m);
	return m;
}

/* Stuff the ring at `to` with messages from d until v4vd says full, to
 * the last slot: not even an empty message (an RST) fits. */
static void stuff_from(struct v4v_domain *d, struct v4v_addr to)
{
	long r;
	while ((r = raw_send(d, to.aport + 1000, &to, 1, "x", 1)) == 1)
		;
	CHECK_EQ(r, -EAGAIN);
	while ((r = raw_send(d, to.aport + 1000, &to, 1, NULL, 0)) == 0)
		;
	CHECK_EQ(r, -EAGAIN);
}

/* Stuff d's own ring at port. */
static void stuff(struct v4v_domain *d, v4v_port_t port)
{
	stuff_from(d, (struct v4v_addr){.aport = port, .domain_id = v4v_domid(d)});
}

/* ---- honest sockets -------------------------------------------------------- */

static int listener(struct v4v_domain *d, v4v_port_t port)
{
	int l = v4v_socket(d, V4V_SOCK_STREAM, 0);
	struct v4v_addr any = {.aport = port, .domain_id = V4V_DOMID_ANY};
	CHECK(l >= 0);
	CHECK_EQ(v4v_bind(l, &any), 0);
	CHECK_EQ(v4v_listen(l, 8), 0);
	return l;
}

/* A non-blocking connect, in progress (ring_len 0: the default ring). */
static int dial(struct v4v_domain *d, struct v4v_addr to, uint32_t ring_len)
{
	int s = v4v_socket(d, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK(s >= 0);
	if (ring_len)
		CHECK_EQ(v4v_sock_set_ring_len(s, ring_len), 0);
	CHECK_EQ(v4v_connect(s, &to), -1);
	CHECK_EQ(errno, EINPROGRESS);
	return s;
}

/* The answer to a non-blocking connect: 0 or the errno. */
static int dial_done(int s, struct v4v_addr to)
{
	pollin(s);
	return v4v_connect(s, &to) == 0 ? 0 : errno;
}

static struct v4v_addr at(struct v4v_domain *d, v4v_port_t port)
{
	return (struct v4v_addr){.aport = port, .domain_id = v4v_domid(d)};
}

/* One byte each way: the connection works. */
static void exchange(int a, int b)
{
	char ch = 0;
	CHECK_EQ(v4v_sock_set_nonblock(a, 0), 0);
	CHECK_EQ(v4v_sock_set_nonblock(b, 0), 0);
	CHECK_EQ(v4v_send(a, "a", 1, 0), 1);
	CHECK_EQ(v4v_recv(b, &ch, 1, 0), 1);
	CHECK_EQ(ch, 'a');
	CHECK_EQ(v4v_send(b, "b", 1, 0), 1);
	CHECK_EQ(v4v_recv(a, &ch, 1, 0), 1);
	CHECK_EQ(ch, 'b');
}

/* ---- 1. accept and a client that keeps its ring full ----------------------- */

/* A SYN from a ring with no room for the SYNACK is refused, not waited on:
 * the next honest client gets its connection. */
static void accept_full_client(void)
{
	t_seed();
	t_v4vd_start(NULL);
	struct v4v_domain *srv = t_domain("srv"), *bad = t_domain("bad"), *cli = t_domain("cli");
	int l = listener(srv, LPORT);
	struct v4v_rx *hr = raw_ring(bad, HPORT, MIN_RING);
	stuff(bad, HPORT);
	struct v4v_addr to = at(srv, LPORT), peer;
	raw_hello(bad, HPORT, &to, MT_SYN, MIN_RING); /* first in line */
	int c = dial(cli, to, 0);

	guard("v4v_accept behind a client whose ring is full");
	int s = v4v_accept(l, &peer);
	guard(NULL);
	CHECK(s >= 0);
	CHECK_EQ(peer.domain_id, v4v_domid(cli));
	CHECK_EQ(dial_done(c, to), 0);
	exchange(c, s);
	/* The hostile request is gone, not pending. */
	CHECK_EQ(v4v_sock_set_nonblock(l, 1), 0);
	CHECK_EQ(v4v_accept(l, NULL), -1);
	CHECK_EQ(errno, EAGAIN);
	CHECK_EQ(v4v_ring_unregister(hr), 0);
}

/* A client whose ring was full only for a while (a bound socket that
 * others send to) is refused once it makes room: its connect fails rather
 * than waiting for an answer that would never come. */
static void accept_busy_client(void)
{
	t_seed();
	t_v4vd_start(NULL);
	struct v4v_domain *srv = t_domain("srv"), *cli = t_domain("cli"), *other = t_domain("o");
	int l = listener(srv, LPORT);
	CHECK_EQ(v4v_sock_set_nonblock(l, 1), 0);
	int x = v4v_socket(cli, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	struct v4v_addr any = {.aport = HPORT, .domain_id = V4V_DOMID_ANY};
	struct v4v_addr to = at(srv, LPORT);
	CHECK_EQ(v4v_sock_set_ring_len(x, MIN_RING), 0);
	CHECK_EQ(v4v_bind(x, &any), 0);
	CHECK_EQ(v4v_connect(x, &to), -1);
	CHECK_EQ(errno, EINPROGRESS);
	stuff_from(other, at(cli, HPORT));
	CHECK_EQ(v4v_accept(l, NULL), -1); /* no room for the SYNACK: refused */
	CHECK_EQ(errno, EAGAIN);
	int e;
	do {
		pollin(x); /* reading the junk makes room for the refusal */
		e = v4v_connect(x, &to) == 0 ? 0 : errno;
	} while (e == EALREADY);
	CHECK_EQ(e, ECONNREFUSED);
}

/* ---- 2. close and shutdown, a peer that never reads ------------------------ */

/*
 * A connection whose send ring cannot take even a FIN: the peer (cli) has
 * a ring of MIN_RING bytes and never reads.  127 one-byte messages fill it
 * to 16 bytes; a 17-byte one (48 bytes) then stops v4vd at the head of our
 * send ring, and one-byte messages (32 bytes) fill the rest exactly.
 */
static void full_pair(int *sa, int *sb)
{
	t_seed();
	t_v4vd_start(NULL);
	struct v4v_domain *srv = t_domain("srv"), *cli = t_domain("cli");
	int l = listener(srv, LPORT);
	struct v4v_addr to = at(srv, LPORT);
	*sb = dial(cli, to, MIN_RING);
	*sa = v4v_accept(l, NULL);
	CHECK(*sa >= 0);
	CHECK_EQ(dial_done(*sb, to), 0);
	CHECK_EQ(v4v_sock_set_nonblock(*sb, 0), 0);
	/* v4vd moves them in its own time: wait (bounded) until it has. */
	struct sock *b = v4v__sock_lookup(*sb);
	CHECK(b && b->rx);
	struct v4v_ring *br = v4v__rx_ring(b->rx);
	uint32_t full = (v4v_load_acquire(&br->tx_ptr) + 127 * 32) % MIN_RING;
	for (int i = 0; i < 127; i++)
		CHECK_EQ(v4v_send(*sa, "1", 1, 0), 1);
	for (int i = 0; i < WAIT_MS && v4v_load_acquire(&br->tx_ptr) != full; i++)
		poll(NULL, 0, 1);
	CHECK_EQ(v4v_load_acquire(&br->tx_ptr), full);
	CHECK_EQ(v4v_send(*sa, "seventeen bytes!!", 17, 0), 17);
	while (v4v_send(*sa, "1", 1, MSG_DONTWAIT) == 1)
		;
	CHECK_EQ(errno, EAGAIN);
	/* The premise, checked: no room for a FIN now, nor later. */
	struct sock *s = v4v__sock_lookup(*sa);
	CHECK(s && s->tx);
	uint32_t head = v4v_load_acquire(&s->tx->rx_ptr);
	CHECK(v4v_ring_space(s->txlen, head, s->txtail) < v4v_msg_footprint(0));
}

/* The peer, reading at last: everything sent, then (reset or EOF). */
static size_t drain(int sb, size_t want)
{
	static char buf[1 << 16];
	size_t got = 0;
	ssize_t n;
	while (got < want && (n = v4v_recv(sb, buf, sizeof(buf), 0)) > 0)
		got += (size_t)n;
	return got;
}

enum { FULL_BYTES = 127 + 17 + (V4V_SOCK_TX_LEN - 16 - 48) / 32 };

static void close_full_peer(void)
{
	int sa, sb;
	full_pair(&sa, &sb);
	guard("v4v_sock_close with no room for the FIN");
	CHECK_EQ(v4v_sock_close(sa), 0);
	/* The peer reads what got through, then learns the connection is
	 * gone (its ring was never free for the FIN). */
	guard("the peer's recv after our close");
	size_t got = drain(sb, FULL_BYTES);
	char ch;
	CHECK(got <= FULL_BYTES);
	CHECK_EQ(v4v_recv(sb, &ch, 1, 0), -1);
	CHECK_EQ(errno, ECONNRESET);
	guard(NULL);
}

static void shutdown_full_peer(void)
{
	int sa, sb;
	full_pair(&sa, &sb);
	guard("v4v_shutdown(SHUT_WR) with no room for the FIN");
	CHECK_EQ(v4v_shutdown(sa, SHUT_WR), -1);
	CHECK_EQ(errno, ETIMEDOUT);
	CHECK_EQ(v4v_sock_set_nonblock(sa, 1), 0);
	CHECK_EQ(v4v_shutdown(sa, SHUT_WR), -1);
	CHECK_EQ(errno, EAGAIN);
	/* Nothing is lost: once the peer reads, the FIN goes after the data. */
	CHECK_EQ(drain(sb, FULL_BYTES), FULL_BYTES);
	CHECK_EQ(v4v_sock_set_nonblock(sa, 0), 0);
	CHECK_EQ(v4v_shutdown(sa, SHUT_WR), 0);
	char ch;
	CHECK_EQ(v4v_recv(sb, &ch, 1, 0), 0);
	CHECK_EQ(v4v_send(sa, "x", 1, 0), -1);
	CHECK_EQ(errno, EPIPE);
	guard(NULL);
}

/*
 * The peer goes while our doorbell is full of tokens: a reader that has not
 * emptied its ring for a while (so has not drained its doorbell) gets a
 * WAITER token each time v4vd re-checks the sender blocked on it, until the
 * socket's queue is full and a token does not fit.  The EVENT token of the
 * peer's death must still arrive, whenever the reader drains: else the
 * reader empties its ring and waits for ever for a reset.  Each notify
 * from our domain is one such re-check, one token.
 */
static void reset_behind_full_bell(void)
{
	int sa, sb;
	full_pair(&sa, &sb);
	struct sock *b = v4v__sock_lookup(sb);
	CHECK(b);
	/* More tokens than the queue holds: every packet costs the sender's
	 * buffer (net.core.wmem_default) at least 256 bytes. */
	FILE *f = fopen("/proc/sys/net/core/wmem_default", "r");
	unsigned long wmem = 0;
	CHECK(f && fscanf(f, "%lu", &wmem) == 1);
	fclose(f);
	for (unsigned long i = 0; i < wmem / 256 + 64; i++)
		CHECK_EQ(v4v_notify(b->d, NULL, 0), 0);
	guard("v4v_sock_close with no room for the FIN");
	CHECK_EQ(v4v_sock_close(sa), 0); /* its ring goes: RING_GONE to sb */
	guard(NULL);
	CHECK_EQ(v4v_sock_set_nonblock(sb, 1), 0);
	static char buf[1 << 16];
	size_t got = 0;
	int64_t deadline = t_now_ns() + WAIT_MS * 1000000LL;
	for (;;) {
		ssize_t n = v4v_recv(sb, buf, sizeof(buf), 0);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		CHECK_EQ(n, -1);
		if (errno == ECONNRESET)
			break;
		CHECK_EQ(errno, EAGAIN);
		struct pollfd p = {.fd = sb, .events = POLLIN};
		int ms = (int)((deadline - t_now_ns()) / 1000000);
		CHECK(ms > 0 && poll(&p, 1, ms) == 1); /* no reset: the event was lost */
	}
	CHECK(got <= FULL_BYTES);
}

/* ---- 3. rings too small for a stream --------------------------------------- */

/* A client announcing a ring below the minimum is refused; one at it is
 * served. */
static void syn_tiny_ring(void)
{
	t_seed();
	t_v4vd_start(NULL);
	struct v4v_domain *srv = t_domain("srv"), *cli = t_domain("cli"), *bad = t_domain("bad");
	int l = listener(srv, LPORT);
	CHECK_EQ(v4v_sock_set_nonblock(l, 1), 0);
	struct v4v_addr to = at(srv, LPORT);

	int tiny = dial(cli, to, MIN_RING - 16);
	CHECK_EQ(v4v_accept(l, NULL), -1);
	CHECK_EQ(errno, EAGAIN);
	CHECK_EQ(dial_done(tiny, to), ECONNREFUSED);

	/* A ring that is big but says it is tiny: refused alike. */
	struct v4v_rx *hr = raw_ring(bad, HPORT, V4V_STREAM_RING_LEN);
	raw_hello(bad, HPORT, &to, MT_SYN, 64);
	CHECK_EQ(v4v_accept(l, NULL), -1);
	CHECK_EQ(errno, EAGAIN);
	struct v4v_msg m = raw_next(bad, hr);
	CHECK_EQ(m.message_type, MT_RST);

	int ok = dial(cli, to, MIN_RING);
	int s = v4v_accept(l, NULL);
	CHECK(s >= 0);
	CHECK_EQ(dial_done(ok, to), 0);
	exchange(ok, s);
	CHECK_EQ(v4v_ring_unregister(hr), 0);
}

/* A server answering with a tiny ring: connect fails (EPROTO), and the
 * server's half of the connection is told (RST). */
static void synack_tiny_ring(void)
{
	t_seed();
	t_v4vd_start(NULL);
	struct v4v_domain *bad = t_domain("bad"), *cli = t_domain("cli");
	struct v4v_rx *lr = raw_ring(bad, LPORT, 4096), *cr = raw_ring(bad, HCONN, 4096);
	struct v4v_addr to = at(bad, LPORT);
	int c = dial(cli, to, 0);
	struct v4v_msg syn = raw_next(bad, lr);
	CHECK_EQ(syn.message_type, MT_SYN);
	raw_hello(bad, HCONN, &syn.source, MT_SYNACK, 256);
	CHECK_EQ(dial_done(c, to), EPROTO);
	struct v4v_msg m = raw_next(bad, cr);
	CHECK_EQ(m.message_type, MT_RST);
	CHECK(v4v__same_addr(&m.source, &syn.source));
	CHECK_EQ(v4v_ring_unregister(cr), 0);
	CHECK_EQ(v4v_ring_unregister(lr), 0);
}

/* ---- 4. requests and messages that must not be swallowed or spun on --------- */

/* A SYN that reaches a socket busy connecting is refused, not dropped (its
 * sender would wait for ever). */
static void syn_while_connecting(void)
{
	t_seed();
	t_v4vd_start(NULL);
	struct v4v_domain *srv = t_domain("srv"), *x = t_domain("x"), *third = t_domain("third");
	int l = listener(srv, LPORT);
	int s = v4v_socket(x, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	struct v4v_addr any = {.aport = HPORT, .domain_id = V4V_DOMID_ANY};
	struct v4v_addr to = at(srv, LPORT), xs = at(x, HPORT);
	CHECK_EQ(v4v_bind(s, &any), 0);
	CHECK_EQ(v4v_connect(s, &to), -1);
	CHECK_EQ(errno, EINPROGRESS);
	int t = dial(third, xs, 0);
	pollin(s);
	CHECK_EQ(v4v_connect(s, &to), -1); /* reads third's SYN */
	CHECK_EQ(errno, EALREADY);
	CHECK_EQ(dial_done(t, xs), ECONNREFUSED);
	int a = v4v_accept(l, NULL);
	CHECK(a >= 0);
	CHECK_EQ(dial_done(s, to), 0);
	exchange(s, a);
}

/* A SYN of the wrong size is refused, not dropped. */
static void syn_malformed(void)
{
	t_seed();
	t_v4vd_start(NULL);
	struct v4v_domain *srv = t_domain("srv"), *bad = t_domain("bad");
	int l = listener(srv, LPORT);
	CHECK_EQ(v4v_sock_set_nonblock(l, 1), 0);
	struct v4v_rx *hr = raw_ring(bad, HPORT, 4096);
	struct v4v_addr to = at(srv, LPORT);
	CHECK_EQ(raw_send(bad, HPORT, &to, MT_SYN, "ab", 2), 2);
	CHECK_EQ(v4v_accept(l, NULL), -1);
	CHECK_EQ(errno, EAGAIN);
	struct v4v_msg m = raw_next(bad, hr);
	CHECK_EQ(m.message_type, MT_RST);
	CHECK_EQ(v4v_ring_unregister(hr), 0);
}

/* A hostile server's connection: c is connected to (bad, HCONN). */
static int hostile_conn(struct v4v_domain *bad, struct v4v_domain *cli, struct v4v_rx **lr,
			struct v4v_rx **cr, struct v4v_addr *cli_addr)
{
	*lr = raw_ring(bad, LPORT, 4096);
	*cr = raw_ring(bad, HCONN, 4096);
	struct v4v_addr to = at(bad, LPORT);
	int c = dial(cli, to, 0);
	struct v4v_msg syn = raw_next(bad, *lr);
	CHECK_EQ(syn.message_type, MT_SYN);
	*cli_addr = syn.source;
	raw_hello(bad, HCONN, cli_addr, MT_SYNACK, 4096);
	CHECK_EQ(dial_done(c, to), 0);
	CHECK_EQ(v4v_sock_set_nonblock(c, 0), 0);
	return c;
}

/* Empty DATA messages carry nothing: a peek passes over them instead of
 * looking at the same one for ever. */
static void peek_empty_data(void)
{
	t_seed();
	t_v4vd_start(NULL);
	struct v4v_domain *bad = t_domain("bad"), *cli = t_domain("cli");
	struct v4v_rx *lr, *cr;
	struct v4v_addr ca;
	int c = hostile_conn(bad, cli, &lr, &cr, &ca);
	CHECK_EQ(raw_send(bad, HCONN, &ca, MT_DATA, NULL, 0), 0);
	CHECK_EQ(raw_send(bad, HCONN, &ca, MT_DATA, NULL, 0), 0);
	CHECK_EQ(raw_send(bad, HCONN, &ca, MT_DATA, "hi", 2), 2);
	char buf[8];
	guard("v4v_recv(MSG_PEEK) at an empty DATA message");
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), MSG_PEEK), 2);
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), 2);
	guard(NULL);
	CHECK(memcmp(buf, "hi", 2) == 0);
	CHECK_EQ(v4v_ring_unregister(cr), 0);
	CHECK_EQ(v4v_ring_unregister(lr), 0);
}

static const struct t_case cases[] = {
    T_CASE(accept_full_client),	    T_CASE(accept_busy_client), T_CASE(close_full_peer),
    T_CASE(shutdown_full_peer),	    T_CASE(syn_tiny_ring),	T_CASE(synack_tiny_ring),
    T_CASE(syn_while_connecting),   T_CASE(syn_malformed),	T_CASE(peek_empty_data),
    T_CASE(reset_behind_full_bell),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
