/* SPDX-License-Identifier: MIT */
/* The socket API: each call and its documented errnos, both modes, with
 * real domains in forked processes where a second party is needed. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/v4vd.h" /* TAKE_POPULATE_MAX */
#include "t.h"

static struct v4v_addr addr(struct v4v_domain *d, uint32_t port)
{
	return (struct v4v_addr){.aport = port, .domain_id = v4v_domid(d)};
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void dgram_basic(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	int sb = v4v_socket(b, V4V_SOCK_DGRAM, 0), sa = v4v_socket(a, V4V_SOCK_DGRAM, 0);
	CHECK(sb >= 0 && sa >= 0);
	struct v4v_addr bind_any = {.aport = 80, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(sb, &bind_any), 0);
	CHECK_EQ(v4v_bind(v4v_socket(b, V4V_SOCK_DGRAM, 0), &bind_any), -1);
	CHECK_EQ(errno, EADDRINUSE);
	struct v4v_addr to = addr(b, 80), from, me;
	CHECK_EQ(v4v_sendto(sa, "ping", 4, 0, &to), 4);
	CHECK_EQ(v4v_getsockname(sa, &me), 0);
	CHECK_EQ(me.domain_id, v4v_domid(a));
	char buf[16];
	CHECK_EQ(v4v_recvfrom(sb, buf, sizeof(buf), 0, &from), 4);
	CHECK(memcmp(buf, "ping", 4) == 0);
	CHECK_EQ(from.domain_id, v4v_domid(a));
	CHECK_EQ(from.aport, me.aport);
	/* boundaries kept; truncation drops the rest of that datagram only */
	CHECK_EQ(v4v_sendto(sa, "0123456789", 10, 0, &to), 10);
	CHECK_EQ(v4v_sendto(sa, "xy", 2, 0, &to), 2);
	CHECK_EQ(v4v_recvfrom(sb, buf, 4, 0, NULL), 4);
	CHECK_EQ(v4v_recvfrom(sb, buf, sizeof(buf), 0, NULL), 2);
	CHECK(memcmp(buf, "xy", 2) == 0);
	/* non-blocking empty */
	CHECK_EQ(v4v_recvfrom(sb, buf, sizeof(buf), MSG_DONTWAIT, NULL), -1);
	CHECK_EQ(errno, EAGAIN);
	/* errors */
	struct v4v_addr nobody = addr(b, 81), nodom = {.aport = 1, .domain_id = 999};
	CHECK_EQ(v4v_sendto(sa, "x", 1, 0, &nobody), -1);
	CHECK_EQ(errno, ECONNREFUSED);
	CHECK_EQ(v4v_sendto(sa, "x", 1, 0, &nodom), -1);
	CHECK_EQ(errno, EHOSTUNREACH);
	static char big[V4V_DGRAM_RING_LEN];
	CHECK_EQ(v4v_sendto(sa, big, sizeof(big), 0, &to), -1);
	CHECK_EQ(errno, EMSGSIZE);
	CHECK_EQ(v4v_sock_close(sa), 0);
	CHECK_EQ(v4v_sock_close(sa), -1);
	CHECK_EQ(errno, EBADF);
}

static void dgram_poll_full(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	int sb = v4v_socket(b, V4V_SOCK_DGRAM, 0);
	int sa = v4v_socket(a, V4V_SOCK_DGRAM, V4V_SOCK_NONBLOCK);
	CHECK_EQ(v4v_sock_set_ring_len(sb, 4096), 0);
	struct v4v_addr any = {.aport = 9, .domain_id = V4V_DOMID_ANY}, to = addr(b, 9);
	CHECK_EQ(v4v_bind(sb, &any), 0);
	struct pollfd p = {.fd = sb, .events = POLLIN};
	CHECK_EQ(poll(&p, 1, 0), 0); /* nothing yet */
	char msg[1000] = {0};
	int sent = 0;
	struct pollfd w = {.fd = sa, .events = POLLOUT};
	/* Fill until EAGAIN, and again while v4vd still makes room (it moves
	 * queued messages until the receiver's ring is full). */
	do {
		while (v4v_sendto(sa, msg, sizeof(msg), 0, &to) == (ssize_t)sizeof(msg))
			sent++;
		CHECK_EQ(errno, EAGAIN);
	} while (poll(&w, 1, 200) == 1);
	/* The receiver's ring holds 3; the rest wait in the sender's send ring. */
	CHECK(sent > 3);
	CHECK_EQ(poll(&p, 1, 1000), 1); /* receiver readable */
	CHECK_EQ(poll(&w, 1, 0), 0);	/* sender not writable while full */
	char buf[1000];
	CHECK_EQ(v4v_recvfrom(sb, buf, sizeof(buf), 0, NULL), 1000);
	CHECK_EQ(poll(&w, 1, 2000), 1); /* writable again, woken by v4vd */
	CHECK(w.revents & POLLOUT);
	CHECK_EQ(v4v_sendto(sa, msg, sizeof(msg), 0, &to), 1000);
	/* Every message arrives, in order of sending, none twice. */
	for (int i = 1; i < sent + 1; i++)
		CHECK_EQ(v4v_recvfrom(sb, buf, sizeof(buf), 0, NULL), 1000);
	CHECK_EQ(v4v_recvfrom(sb, buf, sizeof(buf), MSG_DONTWAIT, NULL), -1);
	CHECK_EQ(errno, EAGAIN);
}

/*
 * Both rings full, each send ring blocked on the other's ring, v4vd idle
 * (parked): each reader's "I consumed" must reach v4vd although its own
 * send waits, whether it goes as a byte on the doorbell or as the
 * synchronous notify (lib/bell.c notify_if_needed).  Every message
 * arrives, in order, within a bounded time.
 */
static void dgram_mutual_full(void)
{
	enum { N = 20, LEN = 1000 };
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	int s[2] = {v4v_socket(a, V4V_SOCK_DGRAM, V4V_SOCK_NONBLOCK),
		    v4v_socket(b, V4V_SOCK_DGRAM, V4V_SOCK_NONBLOCK)};
	struct v4v_addr any = {.aport = 7, .domain_id = V4V_DOMID_ANY};
	struct v4v_addr to[2] = {addr(b, 7), addr(a, 7)};
	for (int i = 0; i < 2; i++) {
		CHECK(s[i] >= 0);
		CHECK_EQ(v4v_sock_set_ring_len(s[i], 4096), 0); /* 3 messages */
		CHECK_EQ(v4v_bind(s[i], &any), 0);
	}
	char msg[LEN];
	/* Queued on the send rings (room for all): each blocks on the other. */
	for (int k = 0; k < N; k++)
		for (int i = 0; i < 2; i++) {
			memset(msg, 'a' + k, sizeof(msg));
			CHECK_EQ(v4v_sendto(s[i], msg, sizeof(msg), 0, &to[i]), LEN);
		}
	poll(NULL, 0, 20); /* let v4vd park its polling (SPIN_NS) */
	int got[2] = {0, 0};
	double deadline = now_ms() + 5000;
	while (got[0] < N || got[1] < N) {
		struct pollfd p[2] = {{.fd = s[0], .events = POLLIN},
				      {.fd = s[1], .events = POLLIN}};
		CHECK(now_ms() < deadline);
		CHECK(poll(p, 2, 1000) > 0);
		for (int i = 0; i < 2; i++) {
			char buf[LEN];
			ssize_t n;
			while ((n = v4v_recvfrom(s[i], buf, sizeof(buf), 0, NULL)) == LEN) {
				CHECK(got[i] < N);
				CHECK_EQ(buf[0], 'a' + got[i]);
				got[i]++;
			}
			CHECK_EQ(n, -1);
			CHECK_EQ(errno, EAGAIN);
		}
	}
}

struct pp {
	int fd;
	struct v4v_addr to;
	int rounds;
	bool first; /* sends first */
};

/* Receive one datagram within 2 s (a lost wake-up fails, not hangs). */
static void pp_recv(int fd, char *buf, size_t len)
{
	for (;;) {
		ssize_t n = v4v_recvfrom(fd, buf, len, MSG_DONTWAIT, NULL);
		if (n == (ssize_t)len)
			return;
		CHECK(n < 0 && errno == EAGAIN);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		CHECK(poll(&p, 1, 2000) == 1);
	}
}

static void *pp_run(void *arg)
{
	struct pp *pp = arg;
	char buf[1000] = {0};
	for (int i = 0; i < pp->rounds; i++) {
		if (!pp->first)
			pp_recv(pp->fd, buf, sizeof(buf));
		CHECK_EQ(v4v_sendto(pp->fd, buf, sizeof(buf), 0, &pp->to), (ssize_t)sizeof(buf));
		if (pp->first)
			pp_recv(pp->fd, buf, sizeof(buf));
	}
	return NULL;
}

/*
 * Ping-pong on small rings, so that each reader notifies (a byte on its
 * doorbell) and then at once sends, whose kick may find that byte still
 * queued: v4vd must look at the send ring after reading the byte
 * (daemon/bell.c bell_repark), or a message waits for ever.
 */
static void dgram_pingpong_notify(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	int s[2] = {v4v_socket(a, V4V_SOCK_DGRAM, 0), v4v_socket(b, V4V_SOCK_DGRAM, 0)};
	struct v4v_addr any = {.aport = 8, .domain_id = V4V_DOMID_ANY};
	for (int i = 0; i < 2; i++) {
		CHECK(s[i] >= 0);
		CHECK_EQ(v4v_sock_set_ring_len(s[i], 4096), 0);
		CHECK_EQ(v4v_bind(s[i], &any), 0);
	}
	struct pp pp[2] = {{s[0], addr(b, 8), 10000, true}, {s[1], addr(a, 8), 10000, false}};
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, pp_run, &pp[1]), 0);
	pp_run(&pp[0]);
	CHECK_EQ(pthread_join(th, NULL), 0);
}

static void dgram_partner_only(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b"), *c = t_domain("c");
	int sb = v4v_socket(b, V4V_SOCK_DGRAM, 0);
	struct v4v_addr only_a = {.aport = 7, .domain_id = v4v_domid(a)}, to = addr(b, 7);
	CHECK_EQ(v4v_bind(sb, &only_a), 0);
	int sc = v4v_socket(c, V4V_SOCK_DGRAM, 0), sa = v4v_socket(a, V4V_SOCK_DGRAM, 0);
	CHECK_EQ(v4v_sendto(sc, "c", 1, 0, &to), -1);
	CHECK_EQ(errno, ECONNREFUSED);
	CHECK_EQ(v4v_sendto(sa, "a", 1, 0, &to), 1);
	struct v4v_addr from;
	char ch;
	CHECK_EQ(v4v_recvfrom(sb, &ch, 1, 0, &from), 1);
	CHECK_EQ(from.domain_id, v4v_domid(a));
}

enum { BULK = 8 << 20 };

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 2654435761u >> 13);
}

static void server_echo_bulk(struct v4v_domain *d)
{
	int l = v4v_socket(d, V4V_SOCK_STREAM, 0);
	struct v4v_addr any = {.aport = 5000, .domain_id = V4V_DOMID_ANY}, peer;
	CHECK_EQ(v4v_bind(l, &any), 0);
	CHECK_EQ(v4v_listen(l, 16), 0);
	/* ready: tell the parent */
	t_ready();
	int c = v4v_accept(l, &peer);
	CHECK(c >= 0);
	static uint8_t buf[100000];
	size_t total = 0;
	ssize_t n;
	while ((n = v4v_recv(c, buf, sizeof(buf), 0)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			CHECK_EQ(buf[i], pattern(total + (size_t)i));
		total += (size_t)n;
	}
	CHECK_EQ(n, 0);
	CHECK_EQ(total, BULK);
	CHECK_EQ(v4v_send(c, &total, sizeof(total), 0), (ssize_t)sizeof(total));
	CHECK_EQ(v4v_sock_close(c), 0);
	CHECK_EQ(v4v_sock_close(l), 0);
}

static void stream_bulk(void)
{
	t_v4vd_start(NULL);
	uint16_t peer_dom;
	pid_t pid = t_child("srv", server_echo_bulk, &peer_dom);
	struct v4v_domain *d = t_domain("cli");
	struct v4v_addr srv;
	CHECK_EQ(v4v_name_lookup(d, "srv", "nothing", &srv), -ENOENT);
	int s = v4v_socket(d, V4V_SOCK_STREAM, 0);
	uint16_t srv_id;
	CHECK_EQ(v4v_domain_resolve(d, "srv", &srv_id), 0);
	CHECK_EQ(srv_id, peer_dom);
	struct v4v_addr to = {.aport = 5000, .domain_id = srv_id};
	CHECK_EQ(v4v_connect(s, &to), 0);
	static uint8_t buf[BULK];
	for (size_t i = 0; i < BULK; i++)
		buf[i] = pattern(i);
	/* odd-sized writes */
	size_t off = 0;
	while (off < BULK) {
		size_t n = 1 + t_rand() % 300000;
		if (n > BULK - off)
			n = BULK - off;
		ssize_t w = v4v_send(s, buf + off, n, 0);
		CHECK(w > 0);
		off += (size_t)w;
	}
	CHECK_EQ(v4v_shutdown(s, SHUT_WR), 0);
	size_t total = 0;
	CHECK_EQ(v4v_recv(s, &total, sizeof(total), 0), (ssize_t)sizeof(total));
	CHECK_EQ(total, BULK);
	CHECK_EQ(v4v_recv(s, &total, sizeof(total), 0), 0);
	t_wait_ok(pid);
}

static void stream_refused(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	int s = v4v_socket(a, V4V_SOCK_STREAM, 0);
	struct v4v_addr to = addr(b, 77);
	CHECK_EQ(v4v_connect(s, &to), -1);
	CHECK_EQ(errno, ECONNREFUSED);
	/* a datagram socket there refuses too */
	int db = v4v_socket(b, V4V_SOCK_DGRAM, 0);
	struct v4v_addr any = {.aport = 77, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(db, &any), 0);
	int s2 = v4v_socket(a, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK_EQ(v4v_connect(s2, &to), -1);
	CHECK_EQ(errno, EINPROGRESS);
	char ch;
	CHECK_EQ(v4v_recvfrom(db, &ch, 1, MSG_DONTWAIT, NULL), -1); /* the SYN: refused */
	struct pollfd p = {.fd = s2, .events = POLLIN};
	CHECK_EQ(poll(&p, 1, 2000), 1);
	CHECK_EQ(v4v_connect(s2, &to), -1);
	CHECK_EQ(errno, ECONNREFUSED);
}

static void peer_dies(struct v4v_domain *d)
{
	int l = v4v_socket(d, V4V_SOCK_STREAM, 0);
	struct v4v_addr any = {.aport = 6000, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(l, &any), 0);
	CHECK_EQ(v4v_listen(l, 1), 0);
	t_ready();
	int c = v4v_accept(l, NULL);
	CHECK(c >= 0);
	CHECK_EQ(v4v_send(c, "x", 1, 0), 1);
	pause(); /* until SIGKILL */
}

static void stream_reset_on_death(void)
{
	t_v4vd_start(NULL);
	uint16_t peer_dom;
	pid_t pid = t_child("victim", peer_dies, &peer_dom);
	struct v4v_domain *d = t_domain("survivor");
	struct v4v_addr srv;
	int s = v4v_socket(d, V4V_SOCK_STREAM, 0);
	srv.domain_id = peer_dom;
	srv.aport = 6000;
	CHECK_EQ(v4v_connect(s, &srv), 0);
	char ch;
	CHECK_EQ(v4v_recv(s, &ch, 1, 0), 1);
	kill(pid, SIGKILL);
	double t0 = now_ms();
	CHECK_EQ(v4v_recv(s, &ch, 1, 0), -1);
	double dt = now_ms() - t0;
	CHECK_EQ(errno, ECONNRESET);
	fprintf(stderr, "ECONNRESET after %.1f ms\n", dt);
	CHECK(dt < 100);
	int st;
	waitpid(pid, &st, 0);
	CHECK_EQ(v4v_send(s, "y", 1, 0), -1);
	CHECK(errno == ECONNRESET || errno == EPIPE);
}

enum { CLOSE_LOOPS = 1000, CLOSE_PORT = 7100 };

/* Like socat without fork: listen, accept one, close the listener at
 * once, then answer.  A byte on the pipe says each listener is up. */
static void close_after_accept_server(int domain_fd, int up, int done)
{
	struct v4v_domain *d;
	CHECK_EQ(v4v_open_fd(domain_fd, &d), 0);
	struct v4v_addr any = {.aport = CLOSE_PORT, .domain_id = V4V_DOMID_ANY};
	for (int i = 0; i < CLOSE_LOOPS; i++) {
		int l = v4v_socket(d, V4V_SOCK_STREAM, 0);
		CHECK_EQ(v4v_bind(l, &any), 0);
		CHECK_EQ(v4v_listen(l, 1), 0);
		CHECK_EQ(write(up, "u", 1), 1);
		int c = v4v_accept(l, NULL);
		CHECK(c >= 0);
		CHECK_EQ(v4v_sock_close(l), 0);
		CHECK_EQ(write(up, "c", 1), 1);
		CHECK_EQ(v4v_send(c, "hello", 5, 0), 5);
		CHECK_EQ(v4v_sock_close(c), 0);
	}
	char x;
	(void)!read(done, &x, 1); /* our exit would reset the last one: wait */
	_exit(0);
}

/*
 * The listener's RING_GONE comes right behind the SYNACK: it must not
 * reset the connection the SYNACK made (the client's peer is still the
 * listener's address until it reads the SYNACK).  Blocking connects race
 * the event; a non-blocking one finishes only once the listener is gone
 * (its "c" on the pipe), so that the event is on the doorbell when the
 * SYNACK is read: the connection must send and read all the same.
 */
static void stream_listener_closed_after_accept(void)
{
	t_v4vd_start(NULL);
	uint16_t sdom;
	int dfd = t_domain_fd("srv", &sdom);
	int p[2], q[2];
	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(pipe(q), 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		close(q[1]);
		close_after_accept_server(dfd, p[1], q[0]);
	}
	close(q[0]);
	close(dfd);
	close(p[1]);
	struct v4v_domain *d = t_domain("cli");
	struct v4v_addr to = {.aport = CLOSE_PORT, .domain_id = sdom};
	for (int i = 0; i < CLOSE_LOOPS; i++) {
		char u;
		CHECK_EQ(read(p[0], &u, 1), 1);
		bool nb = i % 2;
		int s = v4v_socket(d, V4V_SOCK_STREAM, nb ? V4V_SOCK_NONBLOCK : 0);
		CHECK(s >= 0);
		int r = v4v_connect(s, &to);
		if (nb) {
			CHECK(r == 0 || errno == EINPROGRESS);
			CHECK_EQ(read(p[0], &u, 1), 1);
			while (r != 0) {
				struct pollfd pf = {.fd = s, .events = POLLIN};
				CHECK(poll(&pf, 1, 5000) >= 0);
				r = v4v_connect(s, &to);
				if (r != 0 && errno != EALREADY) {
					fprintf(stderr, "connect %d: %s\n", i, strerror(errno));
					CHECK(0);
				}
			}
		} else if (r != 0) {
			fprintf(stderr, "connect %d: %s\n", i, strerror(errno));
			CHECK(0);
		} else {
			CHECK_EQ(read(p[0], &u, 1), 1);
		}
		if (v4v_send(s, "x", 1, 0) != 1) {
			fprintf(stderr, "send %d: %s\n", i, strerror(errno));
			CHECK(0);
		}
		char buf[8];
		size_t got = 0;
		while (got < 5) {
			ssize_t n = v4v_recv(s, buf + got, sizeof(buf) - got, 0);
			if (n < 0 && errno == EAGAIN) {
				struct pollfd pf = {.fd = s, .events = POLLIN};
				CHECK(poll(&pf, 1, 5000) == 1);
				continue;
			}
			if (n <= 0)
				fprintf(stderr, "recv %d: %zd %s\n", i, n, strerror(errno));
			CHECK(n > 0);
			got += (size_t)n;
		}
		CHECK(memcmp(buf, "hello", 5) == 0);
		CHECK_EQ(v4v_sock_close(s), 0);
	}
	close(p[0]);
	close(q[1]);
	t_wait_ok(pid);
}

/* In the victim's process of our own domain: a listener; hand over one
 * connection with a byte, then wait to be killed. */
static void same_domain_victim(int domain_fd, int up)
{
	struct v4v_domain *d;
	CHECK_EQ(v4v_open_fd(domain_fd, &d), 0);
	int l = v4v_socket(d, V4V_SOCK_STREAM, 0);
	struct v4v_addr any = {.aport = 7200, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(l, &any), 0);
	CHECK_EQ(v4v_listen(l, 4), 0);
	CHECK_EQ(write(up, "u", 1), 1);
	int c = v4v_accept(l, NULL);
	CHECK(c >= 0);
	CHECK_EQ(v4v_send(c, "v", 1, 0), 1);
	for (;;)
		pause();
}

/*
 * Two sockets of one domain are peers like any others: when one's ring
 * goes without a FIN (its process killed), the other gets ECONNRESET
 * promptly, and a stream between two other sockets of that domain (in
 * this process, whose own rings are not the ones gone) is untouched.
 */
static void stream_reset_same_domain(void)
{
	t_v4vd_start(NULL);
	uint16_t dom;
	int dfd = t_domain_fd("one", &dom);
	int p[2];
	CHECK_EQ(pipe(p), 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		same_domain_victim(dfd, p[1]);
	}
	close(p[1]);
	char u;
	CHECK_EQ(read(p[0], &u, 1), 1);
	close(p[0]);
	struct v4v_domain *d;
	CHECK_EQ(v4v_open_fd(dfd, &d), 0);
	CHECK_EQ(v4v_domid(d), dom);

	/* A stream inside this process, which must live on. */
	int l = v4v_socket(d, V4V_SOCK_STREAM, 0);
	struct v4v_addr any = {.aport = 7201, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(l, &any), 0);
	CHECK_EQ(v4v_listen(l, 4), 0);
	int a = v4v_socket(d, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK); /* one thread: no wait */
	struct v4v_addr la = {.aport = 7201, .domain_id = dom};
	CHECK_EQ(v4v_connect(a, &la), -1);
	CHECK_EQ(errno, EINPROGRESS);
	int b = v4v_accept(l, NULL);
	CHECK(b >= 0);
	struct pollfd pa = {.fd = a, .events = POLLIN};
	while (v4v_connect(a, &la) != 0) {
		CHECK_EQ(errno, EALREADY);
		CHECK_EQ(poll(&pa, 1, 5000), 1);
	}

	int s = v4v_socket(d, V4V_SOCK_STREAM, 0);
	struct v4v_addr to = {.aport = 7200, .domain_id = dom};
	CHECK_EQ(v4v_connect(s, &to), 0);
	char ch;
	CHECK_EQ(v4v_recv(s, &ch, 1, 0), 1);
	kill(pid, SIGKILL);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	double t0 = now_ms();
	struct pollfd ps = {.fd = s, .events = POLLIN};
	CHECK_EQ(poll(&ps, 1, 5000), 1); /* the reset is news: recv must not block */
	CHECK_EQ(v4v_recv(s, &ch, 1, 0), -1);
	double dt = now_ms() - t0;
	CHECK_EQ(errno, ECONNRESET);
	fprintf(stderr, "same domain: ECONNRESET after %.1f ms\n", dt);
	CHECK(dt < 100);
	CHECK_EQ(v4v_send(s, "y", 1, 0), -1);
	CHECK(errno == ECONNRESET || errno == EPIPE);

	CHECK_EQ(v4v_send(a, "ab", 2, 0), 2);
	char buf[2];
	CHECK_EQ(v4v_recv(b, buf, 2, 0), 2);
	CHECK_EQ(v4v_send(b, "c", 1, 0), 1);
	/* (a's doorbell also heard of the victim's ring: an event, no data) */
	ssize_t n;
	while ((n = v4v_recv(a, buf, 1, 0)) < 0 && errno == EAGAIN)
		CHECK_EQ(poll(&pa, 1, 5000), 1);
	CHECK_EQ(n, 1);
	CHECK_EQ(buf[0], 'c');
	CHECK_EQ(v4v_sock_close(s), 0);
	CHECK_EQ(v4v_sock_close(a), 0);
	CHECK_EQ(v4v_sock_close(b), 0);
	CHECK_EQ(v4v_sock_close(l), 0);
	v4v_close(d);
}

enum { CONN_LOOPS = 2000 };

static void conn_server(struct v4v_domain *d)
{
	int l = v4v_socket(d, V4V_SOCK_STREAM, 0);
	struct v4v_addr any = {.aport = 7000, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(l, &any), 0);
	CHECK_EQ(v4v_listen(l, 16), 0);
	t_ready();
	for (int i = 0; i < CONN_LOOPS; i++) {
		struct pollfd p = {.fd = l, .events = POLLIN};
		if (poll(&p, 1, 5000) != 1) {
			fprintf(stderr, "server: no connection %d after 5 s\n", i);
			_exit(1);
		}
		int c = v4v_accept(l, NULL);
		if (c < 0)
			fprintf(stderr, "accept %d: %s\n", i, strerror(errno));
		CHECK(c >= 0);
		CHECK_EQ(v4v_sock_close(c), 0);
	}
}

/* connect + accept + close, many times over: nothing lost or stuck. */
static void stream_connect_loop(void)
{
	t_v4vd_start(NULL);
	uint16_t peer_dom;
	pid_t pid = t_child("srv", conn_server, &peer_dom);
	struct v4v_domain *d = t_domain("cli");
	struct v4v_addr to = {.aport = 7000, .domain_id = peer_dom};
	for (int i = 0; i < CONN_LOOPS; i++) {
		int s = v4v_socket(d, V4V_SOCK_STREAM, 0);
		CHECK(s >= 0);
		if (v4v_connect(s, &to) < 0)
			fprintf(stderr, "connect %d: %s\n", i, strerror(errno));
		CHECK_EQ(v4v_sock_close(s), 0);
	}
	t_wait_ok(pid);
}

/* The calls around the data path: names, peer names, modes. */
static void names_and_modes(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("alpha"), *b = t_domain("beta"), *c = t_domain("gamma");
	CHECK(strcmp(v4v_domain_name(a), "alpha") == 0);

	/* A name visible to beta only; absent and hidden look the same. */
	uint16_t only_b = v4v_domid(b);
	struct v4v_addr got;
	CHECK_EQ(v4v_name_register(a, "svc", 4242, &only_b, 1), 0);
	CHECK_EQ(v4v_name_register(a, "svc", 1, NULL, 0), -EEXIST);
	CHECK_EQ(v4v_name_register(a, "9bad", 1, NULL, 0), -EINVAL);
	CHECK_EQ(v4v_name_lookup(b, "alpha", "svc", &got), 0);
	CHECK_EQ(got.aport, 4242);
	CHECK_EQ(got.domain_id, v4v_domid(a));
	CHECK_EQ(v4v_name_lookup(c, "alpha", "svc", &got), -ENOENT);
	CHECK_EQ(v4v_name_lookup(b, "nosuch", "svc", &got), -ESRCH);
	CHECK_EQ(v4v_name_unregister(a, "svc"), 0);
	CHECK_EQ(v4v_name_unregister(a, "svc"), -ENOENT);
	CHECK_EQ(v4v_name_lookup(b, "alpha", "svc", &got), -ENOENT);

	/* getpeername: ENOTCONN until connected; then the stamped peer. */
	int ds = v4v_socket(a, V4V_SOCK_DGRAM, 0);
	struct v4v_addr peer = {.aport = 9, .domain_id = v4v_domid(b)}, out;
	CHECK_EQ(v4v_getpeername(ds, &out), -1);
	CHECK_EQ(errno, ENOTCONN);
	CHECK_EQ(v4v_connect(ds, &peer), 0);
	CHECK_EQ(v4v_getpeername(ds, &out), 0);
	CHECK_EQ(out.aport, 9);
	CHECK_EQ(out.domain_id, v4v_domid(b));

	/* Non-blocking by call, after creation: accept with nothing pending. */
	int l = v4v_socket(b, V4V_SOCK_STREAM, 0);
	struct v4v_addr any = {.aport = 0, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(l, &any), 0);
	CHECK_EQ(v4v_getsockname(l, &out), 0);
	CHECK(out.aport != 0); /* port 0 picked one */
	CHECK_EQ(v4v_listen(l, 4), 0);
	CHECK_EQ(v4v_sock_set_nonblock(l, 1), 0);
	CHECK_EQ(v4v_accept(l, NULL), -1);
	CHECK_EQ(errno, EAGAIN);
	CHECK_EQ(v4v_sock_set_nonblock(-5, 1), -1);
	CHECK_EQ(errno, EBADF);
	CHECK_EQ(v4v_socket(a, 99, 0), -1);
	CHECK_EQ(errno, EPROTOTYPE);
	CHECK_EQ(v4v_sock_close(l), 0);
	CHECK_EQ(v4v_sock_close(ds), 0);
}

/* Threads of one process share its domain handle and the socket table:
 * each thread sends on its own socket while another drains, and a third
 * makes low-level calls on the same handle.  Run under TSan by make check. */
enum { THREADS = 4, PER_THREAD = 2000 };

struct th {
	struct v4v_domain *d;
	struct v4v_addr to;
	int sent;
};

static void *th_send(void *arg)
{
	struct th *t = arg;
	int s = v4v_socket(t->d, V4V_SOCK_DGRAM, 0);
	CHECK(s >= 0);
	for (int i = 0; i < PER_THREAD; i++)
		if (v4v_sendto(s, &i, sizeof(i), 0, &t->to) == sizeof(i))
			t->sent++;
	CHECK_EQ(v4v_sock_close(s), 0);
	return NULL;
}

static void *th_notify(void *arg)
{
	struct th *t = arg;
	for (int i = 0; i < 500; i++) {
		struct v4v_ring_data_ent e = {.ring = t->to};
		CHECK_EQ(v4v_notify(t->d, &e, 1), 0);
		CHECK(e.flags & V4V_RING_EXISTS);
	}
	return NULL;
}

static void threads(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	int r = v4v_socket(b, V4V_SOCK_DGRAM, 0);
	struct v4v_addr any = {.aport = 11, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(r, &any), 0);
	struct th t[THREADS + 1];
	pthread_t id[THREADS + 1];
	for (int i = 0; i <= THREADS; i++) {
		t[i] = (struct th){.d = a, .to = {.aport = 11, .domain_id = v4v_domid(b)}};
		CHECK_EQ(pthread_create(&id[i], NULL, i < THREADS ? th_send : th_notify, &t[i]), 0);
	}
	int got = 0, v;
	while (got < THREADS * PER_THREAD && v4v_recvfrom(r, &v, sizeof(v), 0, NULL) == sizeof(v))
		got++;
	for (int i = 0; i <= THREADS; i++)
		CHECK_EQ(pthread_join(id[i], NULL), 0);
	for (int i = 0; i < THREADS; i++)
		CHECK_EQ(t[i].sent, PER_THREAD);
	CHECK_EQ(got, THREADS * PER_THREAD);
}

/* A listener's ring is its backlog: full, a non-blocking connect gets
 * EAGAIN (a blocking one would wait); room again after an accept. */
static void listen_backlog(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	int l = v4v_socket(b, V4V_SOCK_STREAM, 0);
	CHECK_EQ(v4v_sock_set_ring_len(l, 128), 0); /* 112 usable: 3 requests */
	struct v4v_addr any = {.aport = 21, .domain_id = V4V_DOMID_ANY};
	struct v4v_addr to = {.aport = 21, .domain_id = v4v_domid(b)};
	CHECK_EQ(v4v_bind(l, &any), 0);
	CHECK_EQ(v4v_listen(l, 1), 0);
	int c[4];
	for (int i = 0; i < 4; i++) {
		c[i] = v4v_socket(a, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
		int r = v4v_connect(c[i], &to);
		CHECK_EQ(r, -1);
		CHECK_EQ(errno, i < 3 ? EINPROGRESS : EAGAIN);
	}
	int s = v4v_accept(l, NULL);
	CHECK(s >= 0);
	CHECK_EQ(v4v_connect(c[0], &to), 0); /* the accepted one completes */
	/* Room now: sent and in progress, or connected at once to one of the
	 * spares the accept left the listener (stream.c). */
	int r = v4v_connect(c[3], &to);
	CHECK(r == 0 || errno == EINPROGRESS);
}

static void accept_refuses_over_quota(struct v4v_domain *d)
{
	int l = v4v_socket(d, V4V_SOCK_STREAM, 0);
	struct v4v_addr any = {.aport = 31, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(l, &any), 0); /* its only ring: the quota is 1 */
	CHECK_EQ(v4v_listen(l, 1), 0);
	t_ready();
	CHECK_EQ(v4v_sock_set_nonblock(l, 0), 0);
	struct pollfd p = {.fd = l, .events = POLLIN};
	CHECK_EQ(poll(&p, 1, 5000), 1);
	CHECK_EQ(v4v_sock_set_nonblock(l, 1), 0);
	CHECK_EQ(v4v_accept(l, NULL), -1); /* refused the one request */
	CHECK_EQ(errno, EAGAIN);
}

/* A request accept cannot serve (ring quota) is refused, not dropped. */
static void accept_over_quota(void)
{
	char path[128];
	snprintf(path, sizeof(path), "/tmp/v4v-quota-%d.conf", (int)getpid());
	FILE *f = fopen(path, "w");
	CHECK(f);
	fprintf(f, "rings_per_domain 1\n");
	fclose(f);
	const char *const extra[] = {"--config", path, NULL};
	t_v4vd_start(extra);
	unlink(path);
	uint16_t srv;
	pid_t pid = t_child("srv", accept_refuses_over_quota, &srv);
	struct v4v_domain *d = t_domain("cli");
	int s = v4v_socket(d, V4V_SOCK_STREAM, 0);
	struct v4v_addr to = {.aport = 31, .domain_id = srv};
	CHECK_EQ(v4v_connect(s, &to), -1);
	CHECK_EQ(errno, ECONNREFUSED);
	t_wait_ok(pid);
}

/* Messages v4vd has delivered to a domain, from `v4vctl domains`. */
static unsigned long rx_msgs(uint16_t domid)
{
	char *list = t_ctl("domains");
	unsigned long n = 0;
	for (char *line = strchr(list, '\n'); line; line = strchr(line + 1, '\n')) {
		unsigned id;
		unsigned long f[7];
		if (sscanf(line + 1, "%u\t%*s\t%lu\t%lu\t%lu\t%lu\t%lu\t%lu", &id, &f[0], &f[1],
			   &f[2], &f[3], &f[4], &f[5]) == 7 &&
		    id == domid)
			n = f[5];
	}
	free(list);
	return n;
}

/* After the last data, the socket stays readable for its end of stream,
 * as a POSIX socket does: poll, read the data, poll again, read 0. */
static void stream_eof_pollable(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	int l = v4v_socket(b, V4V_SOCK_STREAM, 0);
	struct v4v_addr any = {.aport = 41, .domain_id = V4V_DOMID_ANY};
	struct v4v_addr to = {.aport = 41, .domain_id = v4v_domid(b)};
	CHECK_EQ(v4v_bind(l, &any), 0);
	CHECK_EQ(v4v_listen(l, 1), 0);
	int c = v4v_socket(a, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK_EQ(v4v_connect(c, &to), -1);
	CHECK_EQ(errno, EINPROGRESS);
	int s = v4v_accept(l, NULL);
	CHECK(s >= 0);
	struct pollfd p = {.fd = c, .events = POLLIN};
	CHECK_EQ(poll(&p, 1, 2000), 1);
	CHECK_EQ(v4v_connect(c, &to), 0);
	CHECK_EQ(v4v_send(s, "abc", 3, 0), 3);
	CHECK_EQ(v4v_shutdown(s, SHUT_WR), 0);
	char buf[16];
	/* Both the data and the FIN are in the ring before we look. */
	while (rx_msgs(v4v_domid(a)) < 3) /* SYNACK, DATA, FIN */
		usleep(1000);
	CHECK_EQ(poll(&p, 1, 2000), 1);
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), 3);
	CHECK_EQ(poll(&p, 1, 2000), 1); /* end of stream: still readable */
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), 0);
	CHECK_EQ(poll(&p, 1, 0), 1);
}

/*
 * A non-blocking send gets EAGAIN (a wait is queued, the socket's doorbell
 * keeps a blocker), then the receiver consumes without a notify and the
 * retry gets through: the wait ends with that send, and the socket must not
 * stay blocked.  Before the fix its send ring was never pumped again once
 * v4vd had parked it: later datagrams stayed queued for ever.
 */
static void dgram_retry_after_eagain(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b"), *c = t_domain("c");
	struct v4v_rx *rx;
	struct v4v_msg m;
	CHECK_EQ(v4v_ring_register(b, 100, V4V_DOMID_ANY, 256, 0, &rx), 0);
	struct v4v_addr to = {.aport = 100, .domain_id = v4v_domid(b)};
	char fill[32] = "x";
	struct iovec iov = {fill, sizeof(fill)};
	while (v4v_sendv(c, 7, &to, &iov, 1, 0) > 0) /* b's ring full */
		;
	int s = v4v_socket(a, V4V_SOCK_DGRAM, V4V_SOCK_NONBLOCK);
	CHECK(s >= 0);
	CHECK_EQ(v4v_sendto(s, "m1", 2, 0, &to), -1);
	CHECK_EQ(errno, EAGAIN);
	while (v4v_rx_peek(rx, &m) == 1) /* no notify: nobody is woken */
		v4v_rx_consume(rx, &m);
	CHECK_EQ(v4v_sendto(s, "m2", 2, 0, &to), 2);
	for (int k = 0; k < 4; k++) {
		poll(NULL, 0, 50); /* long enough for v4vd to park the send ring */
		CHECK_EQ(v4v_sendto(s, "mm", 2, 0, &to), 2);
		bool seen = false;
		for (int i = 0; i < 2000 && !seen; i++) { /* a 2 s guard: hung, not slow */
			if (v4v_rx_peek(rx, &m) == 1) {
				seen = true;
				v4v_rx_consume(rx, &m);
			} else {
				poll(NULL, 0, 1);
			}
		}
		CHECK(seen);
	}
	CHECK_EQ(v4v_sock_close(s), 0);
	CHECK_EQ(v4v_ring_unregister(rx), 0);
	t_domains_close();
}

/* One mapping of a memfd: its bytes, the bytes mapped in (Rss) and, in our
 * own process, the bytes that exist in the memfd (mincore of a shared file
 * mapping reports the file's pages, mapped in or not). */
struct memfd_map {
	size_t size, rss, allocated;
};

/* The mappings of memfd `name` in pid's smaps (at most max). */
static unsigned memfd_maps(pid_t pid, const char *name, struct memfd_map *m, unsigned max)
{
	char path[64], line[512], want[64];
	unsigned n = 0;
	bool in = false;
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	snprintf(want, sizeof(want), "/memfd:%s ", name);
	FILE *f = fopen(path, "r");
	CHECK(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, kb;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in = strstr(line, want) && n < max;
			if (!in)
				continue;
			m[n] = (struct memfd_map){.size = hi - lo};
			if (pid == getpid()) {
				size_t pages = (hi - lo) / 4096;
				unsigned char *vec = malloc(pages);
				CHECK(vec && mincore((void *)lo, hi - lo, vec) == 0);
				for (size_t i = 0; i < pages; i++)
					m[n].allocated += vec[i] & 1 ? 4096 : 0;
				free(vec);
			}
			n++;
		} else if (in && sscanf(line, "Rss: %lu kB", &kb) == 1) {
			m[n - 1].rss = kb * 1024;
		}
	}
	fclose(f);
	return n;
}

/*
 * A bound datagram socket's ring and send ring exist in memory from bind
 * (libv4v allocates them and maps them in), and v4vd maps in what is
 * allocated, up to TAKE_POPULATE_MAX: the first messages fault on no
 * page.  A socket whose ring is larger, and a ring of the low-level call
 * (not committed), are left for the first touch.
 */
static void dgram_rings_committed(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a");
	int s = v4v_socket(a, V4V_SOCK_DGRAM, 0), big = v4v_socket(a, V4V_SOCK_DGRAM, 0);
	CHECK(s >= 0 && big >= 0);
	struct v4v_addr at = {.aport = 80, .domain_id = V4V_DOMID_ANY}, at2 = at;
	at2.aport = 81;
	CHECK_EQ(v4v_sock_set_ring_len(big, 2 * TAKE_POPULATE_MAX), 0);
	CHECK_EQ(v4v_bind(s, &at), 0);
	CHECK_EQ(v4v_bind(big, &at2), 0);
	struct v4v_rx *rx;
	CHECK_EQ(v4v_ring_register(a, 82, V4V_DOMID_ANY, V4V_DGRAM_RING_LEN, 0, &rx), 0);

	struct memfd_map m[4];
	unsigned small = 0, large = 0, lazy = 0;
	CHECK_EQ(memfd_maps(getpid(), "v4v-send", m, 4), 2);
	for (unsigned i = 0; i < 2; i++) {
		CHECK_EQ(m[i].allocated, m[i].size);
		CHECK_EQ(m[i].rss, m[i].size);
	}
	CHECK_EQ(memfd_maps(getpid(), "v4v-ring", m, 4), 3);
	for (unsigned i = 0; i < 3; i++) {
		if (m[i].allocated == m[i].size) { /* a socket's: mapped in too */
			CHECK_EQ(m[i].rss, m[i].size);
			small += m[i].size < TAKE_POPULATE_MAX;
		} else { /* the low-level ring: the caller's to touch */
			CHECK(m[i].size < TAKE_POPULATE_MAX);
			lazy++;
		}
	}
	CHECK_EQ(small, 1);
	CHECK_EQ(lazy, 1);

	/* v4vd: the allocated ones under the bound mapped in, the others not */
	small = lazy = 0;
	CHECK_EQ(memfd_maps(t_v4vd_pid(), "v4v-send", m, 4), 2);
	for (unsigned i = 0; i < 2; i++)
		CHECK_EQ(m[i].rss, m[i].size);
	CHECK_EQ(memfd_maps(t_v4vd_pid(), "v4v-ring", m, 4), 3);
	for (unsigned i = 0; i < 3; i++) {
		if (m[i].size > TAKE_POPULATE_MAX)
			large += m[i].rss < m[i].size;
		else if (m[i].rss == m[i].size)
			small++;
		else
			lazy++;
	}
	CHECK_EQ(large, 1);
	CHECK_EQ(small, 1);
	CHECK_EQ(lazy, 1);
	CHECK_EQ(v4v_ring_unregister(rx), 0);
	CHECK_EQ(v4v_sock_close(big), 0);
	CHECK_EQ(v4v_sock_close(s), 0);
	t_domains_close();
}

static const struct t_case cases[] = {
    T_CASE(dgram_basic),
    T_CASE(dgram_poll_full),
    T_CASE(dgram_partner_only),
    T_CASE(dgram_mutual_full),
    T_CASE(dgram_pingpong_notify),
    T_CASE(dgram_retry_after_eagain),
    T_CASE(dgram_rings_committed),
    T_CASE(stream_bulk),
    T_CASE(stream_refused),
    T_CASE(stream_reset_on_death),
    T_CASE(stream_connect_loop),
    T_CASE(stream_listener_closed_after_accept),
    T_CASE(stream_reset_same_domain),
    T_CASE(names_and_modes),
    T_CASE(threads),
    T_CASE(listen_backlog),
    T_CASE(accept_over_quota),
    T_CASE(stream_eof_pollable),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
