/* SPDX-License-Identifier: MIT */
/*
 * The connection ring pool (lib/pool.c): a closed stream's ring is taken by
 * the next connection to the same domain, and nothing of the old
 * connection reaches the new one: not its data, not its FIN; an old peer
 * that writes after our close is reset; the firewall still sees every
 * connection request; pooled rings give way to a quota.
 *
 * One process, two domains: connect is non-blocking so that the same
 * thread can accept in between.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/sock.h"
#include "t.h"

#define WAIT_MS 10000 /* failure guard for a poll, never a synchronization delay */
#define LPORT	100

static struct v4v_domain *srv, *cli;

static int listener(void)
{
	int l = v4v_socket(srv, V4V_SOCK_STREAM, 0);
	struct v4v_addr any = {.aport = LPORT, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(l, &any), 0);
	CHECK_EQ(v4v_listen(l, 8), 0);
	return l;
}

static struct v4v_addr to_srv(void)
{
	return (struct v4v_addr){.aport = LPORT, .domain_id = v4v_domid(srv)};
}

/* A connection: *c the client's end, *a the server's; both blocking. */
static void pair(int l, int *c, int *a)
{
	struct v4v_addr to = to_srv();
	*c = v4v_socket(cli, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK(*c >= 0);
	/* Connected at once when it took one of the listener's spares. */
	int r = v4v_connect(*c, &to);
	CHECK(r == 0 || errno == EINPROGRESS);
	*a = v4v_accept(l, NULL);
	CHECK(*a >= 0);
	struct pollfd p = {.fd = *c, .events = POLLIN};
	if (r) {
		CHECK_EQ(poll(&p, 1, WAIT_MS), 1);
		CHECK_EQ(v4v_connect(*c, &to), 0);
	}
	CHECK_EQ(v4v_sock_set_nonblock(*c, 0), 0);
}

static struct v4v_addr name_of(int fd)
{
	struct v4v_addr a;
	CHECK_EQ(v4v_getsockname(fd, &a), 0);
	return a;
}

/* Bounded wait until d has n pooled rings a connection could take. */
static void wait_ready(struct v4v_domain *d, unsigned n)
{
	for (int i = 0; i < WAIT_MS && v4v__pool_ready(d) < n; i++)
		poll(NULL, 0, 1);
	CHECK(v4v__pool_ready(d) >= n);
}

static void start(const char *conf)
{
	t_v4vd_start_conf(conf);
	srv = t_domain("srv");
	cli = t_domain("cli");
}

/* Close both ends, then wait until both rings can be taken again. */
static void close_pair(int c, int a)
{
	CHECK_EQ(v4v_sock_close(a), 0);
	CHECK_EQ(v4v_sock_close(c), 0);
	wait_ready(cli, 1);
	wait_ready(srv, 1);
}

/* The second connection gets both rings of the first, and works. */
static void reuse_ring(void)
{
	start(NULL);
	int l = listener(), c, a;
	pair(l, &c, &a);
	struct v4v_addr cname = name_of(c), aname = name_of(a);
	close_pair(c, a);

	pair(l, &c, &a);
	CHECK_EQ(name_of(c).aport, cname.aport); /* the client's ring, again */
	struct v4v_addr peer;
	CHECK_EQ(v4v_getpeername(c, &peer), 0);
	CHECK_EQ(peer.aport, name_of(a).aport);
	/* The server's first ring went round too: lent to the listener as a
	 * spare (stream.c:accepted), it is the third connection's. */
	int c3, a3;
	pair(l, &c3, &a3);
	CHECK_EQ(name_of(a3).aport, aname.aport);
	close_pair(c3, a3);
	char buf[8];
	CHECK_EQ(v4v_send(a, "new", 3, 0), 3);
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), 3);
	CHECK(memcmp(buf, "new", 3) == 0);
	CHECK_EQ(v4v_send(c, "up", 2, 0), 2);
	CHECK_EQ(v4v_recv(a, buf, sizeof(buf), 0), 2);
	CHECK(memcmp(buf, "up", 2) == 0);
	close_pair(c, a);
}

/* Unread data and the FIN of the old connection, in both directions, are
 * not the new connection's: it starts empty and open. */
static void stale_data(void)
{
	start(NULL);
	int l = listener(), c, a;
	pair(l, &c, &a);
	struct v4v_addr cname = name_of(c);
	CHECK_EQ(v4v_send(a, "old-a", 5, 0), 5);
	CHECK_EQ(v4v_send(c, "old-c", 5, 0), 5);
	/* Arrived before the closes (data still on its way after a close is
	 * an old peer writing to a closed connection: late_writer). */
	struct pollfd p[2] = {{.fd = c, .events = POLLIN}, {.fd = a, .events = POLLIN}};
	/* Each waited for on its own: one ready makes a poll of both return
	 * at once, so a loop of them bounds nothing. */
	CHECK_EQ(poll(&p[0], 1, WAIT_MS), 1);
	CHECK_EQ(poll(&p[1], 1, WAIT_MS), 1);
	CHECK(p[0].revents & p[1].revents & POLLIN);
	close_pair(c, a); /* neither read: data and FIN left in both rings */

	pair(l, &c, &a);
	CHECK_EQ(name_of(c).aport, cname.aport);
	/* Nothing to read, and the fds do not say otherwise (the pooled
	 * doorbells' tokens were for the old data). */
	struct pollfd q[2] = {{.fd = c, .events = POLLIN}, {.fd = a, .events = POLLIN}};
	CHECK_EQ(poll(q, 2, 0), 0);
	char buf[16];
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), MSG_DONTWAIT), -1);
	CHECK_EQ(errno, EAGAIN); /* neither old data nor an old EOF */
	CHECK_EQ(v4v_recv(a, buf, sizeof(buf), MSG_DONTWAIT), -1);
	CHECK_EQ(errno, EAGAIN);
	CHECK_EQ(v4v_send(a, "new", 3, 0), 3);
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), 3);
	CHECK(memcmp(buf, "new", 3) == 0);
	/* The new peer's FIN is an EOF, after its data. */
	CHECK_EQ(v4v_send(a, "end", 3, 0), 3);
	CHECK_EQ(v4v_shutdown(a, SHUT_WR), 0);
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), 3);
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), 0);
	close_pair(c, a);
}

/* A ring whose old peer has not finished (no FIN yet) is not reused, and a
 * peer writing after our close is reset, as against a closed ring. */
static void late_writer(void)
{
	start(NULL);
	int l = listener(), c, a;
	pair(l, &c, &a);
	struct v4v_addr cname = name_of(c);
	CHECK_EQ(v4v_sock_close(c), 0); /* a is still open: the ring waits */
	char buf[8];
	CHECK_EQ(v4v_recv(a, buf, sizeof(buf), 0), 0); /* our FIN: EOF */
	int c2, a2;
	pair(l, &c2, &a2);
	CHECK(name_of(c2).aport != cname.aport); /* not taken: no FIN from a */
	/* Our FIN said we closed: a's sends fail at once (EPIPE), as after a
	 * vsock or TCP peer's close, though our ring is still registered. */
	CHECK_EQ(v4v_send(a, "late", 4, 0), -1);
	CHECK_EQ(errno, EPIPE);
	/* A peer that writes anyway (below the socket layer): the next look
	 * at the pool gives the ring back, and its writes are refused. */
	struct v4v_addr aname = name_of(a);
	struct iovec iov = {"late", 4};
	CHECK_EQ(v4v_sendv(srv, aname.aport, &cname, &iov, 1, MT_DATA), 4);
	long e = 0;
	for (int i = 0; i < WAIT_MS && e != -ECONNREFUSED; i++) {
		(void)v4v__pool_ready(cli);
		e = v4v_sendv(srv, aname.aport, &cname, &iov, 1, MT_DATA);
		if (e != -ECONNREFUSED)
			poll(NULL, 0, 1);
	}
	CHECK_EQ(e, -ECONNREFUSED);
	CHECK_EQ(v4v_sock_close(a), 0);
	close_pair(c2, a2);
}

static int q_listener;

static void *q_server(void *arg)
{
	int a = v4v_accept(q_listener, NULL);
	CHECK(a >= 0);
	CHECK_EQ(v4v_send(a, "hi", 2, 0), 2);
	CHECK_EQ(v4v_sock_close(a), 0);
	return arg;
}

/* A blocking connect on a pooled ring, to a server that accepts in
 * another thread: it connects on the same ring, and the connection works
 * (its SYN asks for a spare, stream.c:syn_spare; a seqpacket's would be
 * queued on the send ring, tests/seqpacket.c). */
static void queued_syn(void)
{
	start(NULL);
	int l = listener(), c, a;
	pair(l, &c, &a);
	struct v4v_addr cname = name_of(c);
	close_pair(c, a);
	q_listener = l;
	pthread_t t;
	CHECK_EQ(pthread_create(&t, NULL, q_server, NULL), 0);
	struct v4v_addr to = to_srv();
	c = v4v_socket(cli, V4V_SOCK_STREAM, 0);
	CHECK_EQ(v4v_connect(c, &to), 0);
	CHECK_EQ(name_of(c).aport, cname.aport);
	char buf[4];
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), 2);
	CHECK(memcmp(buf, "hi", 2) == 0);
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(v4v_sock_close(c), 0);
}

/*
 * A pooled ring queues the SYNACK: a client of that domain that keeps its
 * ring full leaves it waiting on that connection's own send ring, never
 * accept, and never another connection.
 */
static void synack_full_client(void)
{
	start(NULL);
	int l = listener(), c, a;
	pair(l, &c, &a);
	close_pair(c, a); /* srv now pools a ring partnered with cli */
	struct v4v_rx *hr;
	CHECK_EQ(v4v_ring_register(cli, 300, V4V_DOMID_ANY, 4096, 0, &hr), 0);
	struct v4v_addr hole = {.aport = 300, .domain_id = v4v_domid(cli)};
	long r;
	struct iovec x = {"x", 1}, none = {NULL, 0};
	while ((r = v4v_sendv(cli, 1300, &hole, &x, 1, 1)) == 1)
		;
	CHECK_EQ(r, -EAGAIN);
	while ((r = v4v_sendv(cli, 1300, &hole, &none, 1, 1)) == 0)
		;
	CHECK_EQ(r, -EAGAIN);
	struct v4v_addr to = to_srv();
	uint32_t len = 4096;
	struct iovec h = {&len, sizeof(len)};
	CHECK_EQ(v4v_sendv(cli, 300, &to, &h, 1, MT_SYN), sizeof(len));
	int stuck = v4v_accept(l, NULL); /* returns: the SYNACK waits, not us */
	CHECK(stuck >= 0);
	pair(l, &c, &a); /* another connection is not held up */
	char buf[4];
	CHECK_EQ(v4v_send(a, "ok", 2, 0), 2);
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), 2);
	CHECK_EQ(v4v_sock_close(stuck), 0); /* its send ring never drains */
	close_pair(c, a);
	pair(l, &c, &a);
	close_pair(c, a);
	CHECK_EQ(v4v_ring_unregister(hr), 0);
}

/* A fork child does not take its parent's pooled rings (they are the
 * parent's registrations); the parent keeps them. */
static void fork_child(void)
{
	start(NULL);
	int l = listener(), c, a;
	pair(l, &c, &a);
	struct v4v_addr cname = name_of(c);
	close_pair(c, a);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct v4v_addr to = to_srv();
		int k = v4v_socket(cli, V4V_SOCK_STREAM, 0);
		CHECK_EQ(v4v_connect(k, &to), 0);
		CHECK(name_of(k).aport != cname.aport);
		char buf[4];
		CHECK_EQ(v4v_recv(k, buf, sizeof(buf), 0), 2);
		CHECK_EQ(v4v_sock_close(k), 0);
		_exit(0);
	}
	a = v4v_accept(l, NULL);
	CHECK(a >= 0);
	CHECK_EQ(v4v_send(a, "hi", 2, 0), 2);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(v4v_sock_close(a), 0);
	pair(l, &c, &a);
	CHECK_EQ(name_of(c).aport, cname.aport); /* still the parent's */
	close_pair(c, a);
}

static ino_t ino_of(int fd)
{
	struct stat st;
	CHECK_EQ(fstat(fd, &st), 0);
	return st.st_ino;
}

/* A connect that takes a pooled ring keeps the doorbell pair its socket
 * came with for the next socket (socket.c: no socket pair made), and a
 * forked child makes its own (the parent's would be two rings' bell).
 * The next socket is made before accept, which may take the pair for a
 * spare (the server is this process too). */
static void blank_pairs(void)
{
	start(NULL);
	int l = listener(), c, a;
	pair(l, &c, &a);
	close_pair(c, a);
	c = v4v_socket(cli, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK(c >= 0);
	ino_t fresh = ino_of(c);
	struct v4v_addr to = to_srv();
	int r = v4v_connect(c, &to);
	CHECK(r == 0 || errno == EINPROGRESS);
	CHECK(ino_of(c) != fresh); /* the pooled ring's doorbell now */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int t = v4v_socket(cli, V4V_SOCK_STREAM, 0);
		CHECK(t >= 0);
		CHECK(ino_of(t) != fresh);
		CHECK_EQ(v4v_sock_close(t), 0);
		_exit(0);
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	int t = v4v_socket(cli, V4V_SOCK_STREAM, 0);
	CHECK(t >= 0);
	CHECK_EQ(ino_of(t), fresh); /* the one kept */
	CHECK_EQ(v4v_sock_close(t), 0);
	a = v4v_accept(l, NULL);
	CHECK(a >= 0);
	struct pollfd p = {.fd = c, .events = POLLIN};
	if (r) {
		CHECK_EQ(poll(&p, 1, WAIT_MS), 1);
		CHECK_EQ(v4v_connect(c, &to), 0);
	}
	CHECK_EQ(v4v_sock_set_nonblock(c, 0), 0);
	char buf[4];
	CHECK_EQ(v4v_send(c, "ok", 2, 0), 2);
	CHECK_EQ(v4v_recv(a, buf, sizeof(buf), 0), 2);
	close_pair(c, a);
}

/* The firewall sees the connection request of a pooled ring too (a
 * queued SYN's refusal is asked again by hypercall: the same errno). */
static void firewall_pooled(void)
{
	start(NULL);
	int l = listener(), c, a;
	pair(l, &c, &a);
	close_pair(c, a);
	free(t_ctl("fw add --src cli --dst srv reject"));
	struct v4v_addr to = to_srv();
	c = v4v_socket(cli, V4V_SOCK_STREAM, 0);
	CHECK_EQ(v4v_connect(c, &to), -1);
	CHECK_EQ(errno, EACCES);
	CHECK_EQ(v4v_sock_close(c), 0);
	/* The refused request had taken the pooled ring; it is not kept
	 * (the connection never was), and the next one gets a fresh ring. */
	CHECK_EQ(v4v__pool_ready(cli), 0);
	free(t_ctl("fw delete 1"));
	pair(l, &c, &a);
	close_pair(c, a);
}

/* A refused connection (no listener) is refused, pool or not, and its
 * ring is not kept. */
static void refused_not_pooled(void)
{
	start(NULL);
	int l = listener(), c, a;
	pair(l, &c, &a);
	close_pair(c, a);
	CHECK_EQ(v4v_sock_close(l), 0);
	struct v4v_addr to = to_srv();
	c = v4v_socket(cli, V4V_SOCK_STREAM, 0);
	CHECK_EQ(v4v_connect(c, &to), -1);
	CHECK(errno == ECONNREFUSED || errno == EHOSTUNREACH);
	CHECK_EQ(v4v_sock_close(c), 0);
	CHECK_EQ(v4v__pool_ready(cli), 0); /* the one kept went to the refused one */
}

/* Pooled rings count against the quota, and give way to a new ring. */
static void quota_pool(void)
{
	start("rings_per_domain 3");
	int l = listener(), c, a;
	pair(l, &c, &a);
	close_pair(c, a);
	/* cli: one pooled ring; three raw rings fit only if it goes. */
	struct v4v_rx *r[3];
	for (int i = 0; i < 3; i++)
		CHECK_EQ(v4v_ring_register(cli, (v4v_port_t)(1 + i), V4V_DOMID_ANY, 4096, 0, &r[i]),
			 0);
	CHECK_EQ(v4v__pool_ready(cli), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(v4v_ring_unregister(r[i]), 0);
	/* srv: listener + pooled ring + a stream socket that needs a ring. */
	int b = v4v_socket(srv, V4V_SOCK_STREAM, 0);
	struct v4v_addr any = {.aport = LPORT + 1, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(b, &any), 0);
	int d = v4v_socket(srv, V4V_SOCK_DGRAM, 0);
	any.aport = LPORT + 2;
	CHECK_EQ(v4v_bind(d, &any), 0); /* the pooled one made room */
	CHECK_EQ(v4v_sock_close(d), 0);
	CHECK_EQ(v4v_sock_close(b), 0);
	pair(l, &c, &a);
	close_pair(c, a);
}

/* Rows of `v4vctl rings` owned by domain dom, partnered with partner. */
static int rings_of(uint16_t dom, uint16_t partner)
{
	char *list = t_ctl("rings"), *save = NULL;
	int n = 0;
	strtok_r(list, "\n", &save); /* the header */
	for (char *line; (line = strtok_r(NULL, "\n", &save));) {
		unsigned d, port;
		char name[40], part[16], want[16];
		snprintf(want, sizeof(want), "%u", partner);
		if (sscanf(line, "%u\t%39s\t%u\t%15s", &d, name, &port, part) == 4 && d == dom &&
		    strcmp(part, want) == 0)
			n++;
	}
	free(list);
	return n;
}

static bool domain_listed(uint16_t dom)
{
	char *list = t_ctl("domains"), row[16];
	snprintf(row, sizeof(row), "\n%u\t", dom);
	bool found = strstr(list, row) != NULL;
	free(list);
	return found;
}

/* The child's server: accept n connections, read each to its end, close
 * them cleanly (the client's pooled ring gets our FIN), wait to be killed. */
static unsigned srv_conns;

static void srv_child(struct v4v_domain *d)
{
	srv = d;
	int l = listener();
	t_ready();
	int a[2];
	for (unsigned i = 0; i < srv_conns; i++)
		CHECK((a[i] = v4v_accept(l, NULL)) >= 0);
	char buf[8];
	CHECK_EQ(v4v_recv(a[0], buf, sizeof(buf), 0), 0);
	CHECK_EQ(v4v_sock_close(a[0]), 0);
	pause(); /* until SIGKILL: the domain dies whole */
}

/* A connected stream of cli's to the child's domain dom. */
static int dial(uint16_t dom)
{
	struct v4v_addr to = {.aport = LPORT, .domain_id = dom};
	int c = v4v_socket(cli, V4V_SOCK_STREAM, 0);
	CHECK(c >= 0);
	CHECK_EQ(v4v_connect(c, &to), 0);
	return c;
}

/* Kill the child and wait (bounded) until v4vd has destroyed its domain:
 * its PARTNER_GONE is then in our event queue. */
static void kill_domain(pid_t pid, uint16_t dom)
{
	CHECK_EQ(kill(pid, SIGKILL), 0);
	CHECK_EQ(waitpid(pid, NULL, 0), pid);
	for (int i = 0; i < WAIT_MS && domain_listed(dom); i++)
		poll(NULL, 0, 1);
	CHECK(!domain_listed(dom));
}

/*
 * A pooled ring whose partner domain dies is given back at the next look
 * at the pool, although no socket of the process reads the event (it is
 * on the pooled ring's doorbell only).
 */
static void partner_gone_unread(void)
{
	t_v4vd_start(NULL);
	cli = t_domain("cli");
	uint16_t dom;
	srv_conns = 1;
	pid_t pid = t_child("srv", srv_child, &dom);
	int c = dial(dom);
	CHECK_EQ(v4v_sock_close(c), 0); /* pooled */
	CHECK_EQ(rings_of(v4v_domid(cli), dom), 1);
	kill_domain(pid, dom);
	int n = 1;
	for (int i = 0; i < WAIT_MS && (n = rings_of(v4v_domid(cli), dom)) != 0; i++) {
		(void)v4v__pool_ready(cli); /* a look, as connect and close take */
		poll(NULL, 0, 1);
	}
	CHECK_EQ(n, 0);
}

static pthread_barrier_t hold_bar;

/* Hold the pool's lock, as a thread inside a pool operation, until told. */
static void *pool_holder(void *arg)
{
	v4v__pool_hold(true);
	pthread_barrier_wait(&hold_bar);
	pthread_barrier_wait(&hold_bar);
	v4v__pool_hold(false);
	return arg;
}

/*
 * The partner of a pooled ring dies while another thread holds the pool:
 * the event is read (by a live connection's recv) then, and the release
 * it asks for is not lost but done by the lock's holder.
 */
static void partner_gone_busy(void)
{
	t_v4vd_start(NULL);
	cli = t_domain("cli");
	uint16_t dom;
	srv_conns = 2;
	pid_t pid = t_child("srv", srv_child, &dom);
	int c = dial(dom), live = dial(dom);
	CHECK_EQ(v4v_sock_close(c), 0); /* pooled */
	CHECK_EQ(rings_of(v4v_domid(cli), dom), 2);
	pthread_t t;
	CHECK_EQ(pthread_barrier_init(&hold_bar, NULL, 2), 0);
	CHECK_EQ(pthread_create(&t, NULL, pool_holder, NULL), 0);
	pthread_barrier_wait(&hold_bar); /* the pool is busy from here */
	kill_domain(pid, dom);
	char buf[8];
	/* Reads the process's events: PARTNER_GONE for both rings. */
	CHECK_EQ(v4v_recv(live, buf, sizeof(buf), 0), -1);
	CHECK_EQ(errno, ECONNRESET);
	pthread_barrier_wait(&hold_bar);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(pthread_barrier_destroy(&hold_bar), 0);
	CHECK_EQ(v4v_sock_close(live), 0); /* reset: not pooled; a look */
	CHECK_EQ(rings_of(v4v_domid(cli), dom), 0);
}

/*
 * The process's event queue overflowed (another domain's rings came and
 * went while we read nothing), so the partner's death is lost in it: the
 * overflow gives the pooled rings back all the same.
 */
static void partner_gone_overflow(void)
{
	t_v4vd_start(NULL);
	cli = t_domain("cli");
	struct v4v_domain *x = t_domain("x");
	uint16_t dom;
	srv_conns = 1;
	pid_t pid = t_child("srv", srv_child, &dom);
	int c = dial(dom);
	CHECK_EQ(v4v_sock_close(c), 0); /* pooled */
	/* A ring of cli's partnered with x hears of each of x's rings going:
	 * more than the queue holds (256, core/hv.h). */
	struct v4v_rx *heard, *r;
	CHECK_EQ(v4v_ring_register(cli, 300, v4v_domid(x), 4096, 0, &heard), 0);
	for (int i = 0; i < 300; i++) {
		CHECK_EQ(v4v_ring_register(x, 301, V4V_DOMID_ANY, 4096, 0, &r), 0);
		CHECK_EQ(v4v_ring_unregister(r), 0);
	}
	kill_domain(pid, dom);
	int n = 1;
	for (int i = 0; i < WAIT_MS && (n = rings_of(v4v_domid(cli), dom)) != 0; i++) {
		(void)v4v__pool_ready(cli);
		poll(NULL, 0, 1);
	}
	CHECK_EQ(n, 0);
	CHECK_EQ(v4v_ring_unregister(heard), 0);
}

static int race_fd, race_live;

/* Hold the pool while the main thread closes race_fd; once the socket is
 * out of the table (the close is under way), read the partner's death
 * (a live connection's recv), then let the pool go. */
static void *close_racer(void *arg)
{
	v4v__pool_hold(true);
	pthread_barrier_wait(&hold_bar);
	for (int i = 0; i < WAIT_MS && v4v__sock_lookup(race_fd); i++)
		poll(NULL, 0, 1);
	CHECK(!v4v__sock_lookup(race_fd));
	char buf[8];
	CHECK_EQ(v4v_recv(race_live, buf, sizeof(buf), 0), -1);
	CHECK_EQ(errno, ECONNRESET);
	v4v__pool_hold(false);
	return arg;
}

/*
 * The partner's death is read by another thread while a connection to it
 * is being closed (no longer a socket the event can reach, not yet in the
 * pool): the close does not keep the dead partner's ring.
 */
static void partner_gone_closing(void)
{
	t_v4vd_start(NULL);
	cli = t_domain("cli");
	uint16_t dom;
	srv_conns = 2;
	pid_t pid = t_child("srv", srv_child, &dom);
	race_fd = dial(dom);
	race_live = dial(dom);
	kill_domain(pid, dom);
	pthread_t t;
	CHECK_EQ(pthread_barrier_init(&hold_bar, NULL, 2), 0);
	CHECK_EQ(pthread_create(&t, NULL, close_racer, NULL), 0);
	pthread_barrier_wait(&hold_bar);
	CHECK_EQ(v4v_sock_close(race_fd), 0); /* its FIN goes; the pool waits */
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(pthread_barrier_destroy(&hold_bar), 0);
	CHECK_EQ(v4v_sock_close(race_live), 0);
	CHECK_EQ(rings_of(v4v_domid(cli), dom), 0);
}

static const struct t_case cases[] = {
    T_CASE(reuse_ring),		  T_CASE(queued_syn),	      T_CASE(synack_full_client),
    T_CASE(fork_child),		  T_CASE(stale_data),	      T_CASE(late_writer),
    T_CASE(firewall_pooled),	  T_CASE(refused_not_pooled), T_CASE(quota_pool),
    T_CASE(partner_gone_unread),  T_CASE(partner_gone_busy),  T_CASE(partner_gone_overflow),
    T_CASE(partner_gone_closing), T_CASE(blank_pairs),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
