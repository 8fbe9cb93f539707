/* SPDX-License-Identifier: MIT */
/*
 * Spares (wire/proto.h, V4V_OP_RING_SPARE; docs/ARCHITECTURE.md,
 * "Spares"): a stream listener lends v4vd rings for the connections to
 * come, and a connect that takes one is connected before the server calls
 * accept.  What must hold: a spare is no one's ring until a connect takes
 * it, only v4vd says which was taken, the connection is whole whatever
 * happens to either side before accept, and the op refuses what is not a
 * connection ring of the caller's listener.
 *
 * One process, two or three domains; non-blocking connects, so that the
 * same thread accepts in between.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/sock.h"
#include "t.h"

#define WAIT_MS 10000 /* failure guard for a poll, never a synchronization delay */
#define LPORT	100

static struct v4v_domain *srv, *cli;

static int listen_on(struct v4v_domain *d, uint32_t port)
{
	int l = v4v_socket(d, V4V_SOCK_STREAM, 0);
	struct v4v_addr any = {.aport = port, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(l, &any), 0);
	CHECK_EQ(v4v_listen(l, 8), 0);
	return l;
}

static int listener(void)
{
	return listen_on(srv, LPORT);
}

static struct v4v_addr to_srv(void)
{
	return (struct v4v_addr){.aport = LPORT, .domain_id = v4v_domid(srv)};
}

static struct v4v_addr peer_of(int fd)
{
	struct v4v_addr a;
	CHECK_EQ(v4v_getpeername(fd, &a), 0);
	return a;
}

static struct v4v_addr name_of(int fd)
{
	struct v4v_addr a;
	CHECK_EQ(v4v_getsockname(fd, &a), 0);
	return a;
}

/* Wait (bounded) until fd is readable: a message, EOF or a reset. */
static void wait_in(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	CHECK_EQ(poll(&p, 1, WAIT_MS), 1);
}

/* A first connection, accepted: after it, the listener has a spare
 * (stream.c:accepted).  Both ends are closed, and the server's ring is
 * pooled, ready to be lent at the next accept. */
static void prime(int l)
{
	struct v4v_addr to = to_srv();
	int c = v4v_socket(cli, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK(c >= 0);
	CHECK_EQ(v4v_connect(c, &to), -1);
	CHECK_EQ(errno, EINPROGRESS); /* no spare yet: a SYN */
	int a = v4v_accept(l, NULL);
	CHECK(a >= 0);
	wait_in(c);
	CHECK_EQ(v4v_connect(c, &to), 0);
	CHECK_EQ(v4v_sock_close(a), 0);
	CHECK_EQ(v4v_sock_close(c), 0);
	for (int i = 0; i < WAIT_MS && v4v__pool_ready(srv) < 1; i++)
		poll(NULL, 0, 1);
	CHECK_EQ(v4v__pool_ready(srv), 1u);
}

/* The port of srv's one spare (v4vctl rings: state spare, partner any). */
static unsigned spare_port(void)
{
	struct t_ring_row r;
	unsigned port = 0, n = 0;
	for (unsigned i = 0; t_ring_row_at(i, &r); i++)
		if (r.domid == v4v_domid(srv) && r.aport != LPORT &&
		    strcmp(r.partner, "any") == 0) {
			port = r.aport;
			n++;
		}
	CHECK_EQ(n, 1u);
	return port;
}

static void start_with(const char *conf)
{
	t_v4vd_start_conf(conf);
	srv = t_domain("srv");
	cli = t_domain("cli");
}

static void start(void)
{
	start_with(NULL);
}

/* Connected at once, sending before the server accepts; accept then
 * yields that connection, with the client's bytes in it. */
static void connect_before_accept(void)
{
	start();
	int l = listener();
	prime(l);
	unsigned port = spare_port();
	struct v4v_addr to = to_srv();
	int c = v4v_socket(cli, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK_EQ(v4v_connect(c, &to), 0); /* not EINPROGRESS: no accept needed */
	CHECK_EQ(peer_of(c).aport, port);
	CHECK_EQ(peer_of(c).domain_id, v4v_domid(srv));
	CHECK_EQ(v4v_send(c, "early", 5, 0), 5);
	struct v4v_addr from;
	int a = v4v_accept(l, &from);
	CHECK(a >= 0);
	CHECK_EQ(from.domain_id, v4v_domid(cli));
	CHECK_EQ(from.aport, name_of(c).aport);
	CHECK_EQ(name_of(a).aport, port);
	char buf[8];
	CHECK_EQ(v4v_recv(a, buf, sizeof(buf), 0), 5);
	CHECK(memcmp(buf, "early", 5) == 0);
	CHECK_EQ(v4v_send(a, "back", 4, 0), 4);
	wait_in(c);
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), 4);
	CHECK(memcmp(buf, "back", 4) == 0);
	CHECK_EQ(v4v_sock_close(c), 0);
	wait_in(a);
	CHECK_EQ(v4v_recv(a, buf, sizeof(buf), 0), 0);
	CHECK_EQ(v4v_sock_close(a), 0);
	CHECK_EQ(v4v_sock_close(l), 0);
	t_domains_close();
}

/* A spare is reached by no send until a connect takes it, and then by
 * the client's domain only. */
static void spare_unroutable(void)
{
	start();
	struct v4v_domain *o = t_domain("other");
	int l = listener();
	prime(l);
	struct v4v_addr sp = {.aport = spare_port(), .domain_id = v4v_domid(srv)};
	struct iovec iov = {"x", 1};
	CHECK_EQ(v4v_sendv(o, 5, &sp, &iov, 1, 0), -ECONNREFUSED);
	CHECK_EQ(v4v_sendv(cli, 5, &sp, &iov, 1, 0), -ECONNREFUSED);
	struct v4v_addr to = to_srv();
	int c = v4v_socket(cli, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK_EQ(v4v_connect(c, &to), 0);
	CHECK_EQ(peer_of(c).aport, sp.aport);
	CHECK_EQ(v4v_sendv(o, 5, &sp, &iov, 1, 0), -ECONNREFUSED); /* cli's now */
	/* The taken ring is keyed by its new partner. */
	char part[16];
	snprintf(part, sizeof(part), "%u", v4v_domid(cli));
	struct t_ring_row r;
	CHECK(t_ring_find(v4v_domid(srv), sp.aport, part, &r));
	CHECK(strcmp(r.state, "ok") == 0);
	CHECK(!t_ring_find(v4v_domid(srv), sp.aport, "any", &r));
	CHECK_EQ(v4v_sock_close(c), 0);
	CHECK_EQ(v4v_sock_close(l), 0);
	t_domains_close();
}

/* Only v4vd says which spare a connect took: a domain's SYN_TAKEN is
 * refused, by hypercall as down a stream's send ring. */
static void taken_forged(void)
{
	start();
	int l = listener();
	prime(l);
	struct v4v_addr to = to_srv();
	struct {
		uint32_t ring_len, port;
	} fake = {4096, spare_port()};
	struct iovec iov = {&fake, sizeof(fake)};
	CHECK_EQ(v4v_sendv(cli, 5, &to, &iov, 1, V4V_MT_SYN_TAKEN), -EINVAL);
	/* The listener saw nothing and its spare is still free. */
	int fl = v4v_sock_set_nonblock(l, 1);
	CHECK_EQ(fl, 0);
	CHECK_EQ(v4v_accept(l, NULL), -1);
	CHECK_EQ(errno, EAGAIN);
	CHECK_EQ(spare_port(), fake.port);
	CHECK_EQ(v4v_sock_close(l), 0);
	t_domains_close();
}

/* The listener closes with a connection on its spare not accepted: the
 * client's connection is reset, and no ring of it is left in v4vd. */
static void listener_close_resets(void)
{
	start();
	int l = listener();
	prime(l);
	struct v4v_addr to = to_srv();
	int c = v4v_socket(cli, V4V_SOCK_STREAM, 0);
	CHECK_EQ(v4v_connect(c, &to), 0);
	unsigned port = peer_of(c).aport;
	char part[16];
	snprintf(part, sizeof(part), "%u", v4v_domid(cli));
	struct t_ring_row r;
	CHECK(t_ring_find(v4v_domid(srv), port, part, &r));
	CHECK_EQ(v4v_sock_close(l), 0);
	CHECK(!t_ring_find(v4v_domid(srv), port, part, &r));
	wait_in(c);
	char buf[4];
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), -1);
	CHECK_EQ(errno, ECONNRESET);
	CHECK_EQ(v4v_sock_close(c), 0);
	t_domains_close();
}

/* The child's client: connect onto the listener's spare, send, and wait
 * to be killed (no FIN: the domain dies whole). */
static void client_child(struct v4v_domain *d)
{
	struct v4v_addr to = to_srv();
	int c = v4v_socket(d, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK_EQ(v4v_connect(c, &to), 0);
	CHECK_EQ(v4v_send(c, "hi", 2, 0), 2);
	t_ready();
	pause();
}

static bool domain_listed(uint16_t dom)
{
	char *list = t_ctl("domains"), row[16];
	snprintf(row, sizeof(row), "\n%u\t", dom);
	bool found = strstr(list, row) != NULL;
	free(list);
	return found;
}

/*
 * The client dies after its connect took a spare, before accept: the
 * accepted socket reads what it sent, then a reset, whether the process
 * read the news before the socket existed (read_first: the event reaches
 * no socket, pool.c's log keeps it) or after.
 */
static void client_dies(bool read_first)
{
	start();
	int l = listener();
	prime(l);
	uint16_t dom;
	pid_t pid = t_child("doomed", client_child, &dom);
	CHECK_EQ(kill(pid, SIGKILL), 0);
	CHECK_EQ(waitpid(pid, NULL, 0), pid);
	for (int i = 0; i < WAIT_MS && domain_listed(dom); i++)
		poll(NULL, 0, 1);
	CHECK(!domain_listed(dom));
	if (read_first)
		v4v__handle_events(srv);
	CHECK_EQ(v4v_sock_set_nonblock(l, 1), 0);
	int a = v4v_accept(l, NULL);
	CHECK(a >= 0);
	char buf[4];
	wait_in(a);
	CHECK_EQ(v4v_recv(a, buf, sizeof(buf), 0), 2);
	CHECK(memcmp(buf, "hi", 2) == 0);
	wait_in(a);
	CHECK_EQ(v4v_recv(a, buf, sizeof(buf), 0), -1);
	CHECK_EQ(errno, ECONNRESET);
	CHECK_EQ(v4v_sock_close(a), 0);
	CHECK_EQ(v4v_sock_close(l), 0);
	t_domains_close();
}

static void client_dies_unread(void)
{
	client_dies(false);
}

static void client_dies_read(void)
{
	client_dies(true);
}

/* A SYN_SPARE whose bytes are no hello still takes a spare (v4vd does
 * not read them): accept refuses it and the spare goes with it, so such
 * requests cannot pin the listener's spares; the next accept lends anew. */
static void malformed_takes(void)
{
	start();
	int l = listener();
	prime(l);
	struct v4v_addr to = to_srv();
	unsigned port = spare_port();
	char part[16];
	snprintf(part, sizeof(part), "%u", v4v_domid(cli));
	struct iovec none = {NULL, 0};
	CHECK_EQ(v4v_sendv(cli, 5, &to, &none, 0, V4V_MT_SYN_SPARE), 0);
	struct t_ring_row r;
	CHECK(t_ring_find(v4v_domid(srv), port, part, &r)); /* taken */
	CHECK_EQ(v4v_sock_set_nonblock(l, 1), 0);
	CHECK_EQ(v4v_accept(l, NULL), -1);
	CHECK_EQ(errno, EAGAIN);
	CHECK(!t_ring_find(v4v_domid(srv), port, part, &r)); /* and gone */
	/* No spare now: a plain request; its accept lends one again. */
	int c = v4v_socket(cli, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK_EQ(v4v_connect(c, &to), -1);
	CHECK_EQ(errno, EINPROGRESS);
	int a = v4v_accept(l, NULL);
	CHECK(a >= 0);
	(void)spare_port();
	CHECK_EQ(v4v_sock_close(a), 0);
	CHECK_EQ(v4v_sock_close(c), 0);
	CHECK_EQ(v4v_sock_close(l), 0);
	t_domains_close();
}

/* A taken spare is keyed by its client: (port, any) is free for another
 * ring of the domain, and the listener's close must not unregister that
 * one in the spare's place. */
static void taken_key_reused(void)
{
	start();
	int l = listener();
	prime(l);
	struct v4v_addr to = to_srv();
	int c = v4v_socket(cli, V4V_SOCK_STREAM, 0);
	CHECK_EQ(v4v_connect(c, &to), 0);
	v4v_port_t port = peer_of(c).aport;
	struct v4v_rx *other;
	CHECK_EQ(v4v_ring_register(srv, port, V4V_DOMID_ANY, 4096, 0, &other), 0);
	CHECK_EQ(v4v_sock_close(l), 0);
	char part[16];
	snprintf(part, sizeof(part), "%u", v4v_domid(cli));
	struct t_ring_row r;
	CHECK(t_ring_find(v4v_domid(srv), port, "any", &r)); /* still there */
	CHECK(!t_ring_find(v4v_domid(srv), port, part, &r)); /* the spare went */
	wait_in(c);
	char buf[4];
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), -1);
	CHECK_EQ(errno, ECONNRESET);
	CHECK_EQ(v4v_ring_unregister(other), 0);
	CHECK_EQ(v4v_sock_close(c), 0);
	t_domains_close();
}

/* A connection ring of srv's partnered with `partner`, with a doorbell. */
static struct sock *conn_ring(uint16_t partner)
{
	struct sock *t;
	CHECK_EQ(v4v__sock_new(srv, V4V_SOCK_STREAM, false, &t), 0);
	t->ring_len = 4096;
	CHECK_EQ(v4v__sock_ring_up(t, 0, partner), 0);
	return t;
}

/* V4V_OP_RING_SPARE refuses all but a connection ring of the caller's,
 * lent to a listener ring of the caller's, at most V4V_SPARES_MAX. */
static void ring_spare_errnos(void)
{
	start();
	int l = listener();
	uint16_t cid = v4v_domid(cli);
	struct sock *t = conn_ring(cid);
	CHECK_EQ(v4v__ring_spare(srv, t->port, cid, LPORT + 1), -ENOENT); /* no listener */
	CHECK_EQ(v4v__ring_spare(cli, t->port, cid, LPORT), -ENOENT);	  /* not cli's */
	CHECK_EQ(v4v__ring_spare(srv, t->port, V4V_DOMID_ANY, LPORT), -ENOENT);
	CHECK_EQ(v4v__ring_spare(srv, LPORT, V4V_DOMID_ANY, LPORT), -EINVAL); /* a wildcard */
	struct v4v_rx *bare;
	CHECK_EQ(v4v_ring_register(srv, 77, cid, 4096, 0, &bare), 0);
	CHECK_EQ(v4v__ring_spare(srv, 77, cid, LPORT), -EINVAL); /* no doorbell */
	struct v4v_rx *w;
	CHECK_EQ(v4v_ring_register(srv, t->port, V4V_DOMID_ANY, 4096, 0, &w), 0);
	CHECK_EQ(v4v__ring_spare(srv, t->port, cid, LPORT), -EEXIST); /* (port, any) taken */
	CHECK_EQ(v4v_ring_unregister(w), 0);
	CHECK_EQ(v4v__ring_spare(srv, t->port, cid, LPORT), 0);
	CHECK_EQ(v4v__ring_spare(srv, t->port, V4V_DOMID_ANY, LPORT), -EINVAL); /* lent already */
	/* A spare is no listener to lend to. */
	struct sock *u = conn_ring(cid);
	CHECK_EQ(v4v__ring_spare(srv, u->port, cid, t->port), -EINVAL);
	for (unsigned i = 1; i < V4V_SPARES_MAX; i++) {
		struct sock *s = conn_ring(cid);
		CHECK_EQ(v4v__ring_spare(srv, s->port, cid, LPORT), 0);
	}
	CHECK_EQ(v4v__ring_spare(srv, u->port, cid, LPORT), -ENOSPC);
	/* Taking back: only a free spare of ours, named (port, any). */
	struct t_ring_row r;
	CHECK_EQ(v4v__ring_spare(srv, t->port, cid, V4V_PORT_ANY), -EINVAL);
	CHECK_EQ(v4v__ring_spare(srv, u->port, V4V_DOMID_ANY, V4V_PORT_ANY), -ENOENT);
	CHECK_EQ(v4v__ring_spare(srv, LPORT, V4V_DOMID_ANY, V4V_PORT_ANY), -ENOENT);
	CHECK_EQ(v4v__ring_spare(cli, t->port, V4V_DOMID_ANY, V4V_PORT_ANY), -ENOENT);
	CHECK_EQ(v4v__ring_spare(srv, t->port, V4V_DOMID_ANY, V4V_PORT_ANY), 0);
	CHECK(!t_ring_find(v4v_domid(srv), t->port, "any", &r));
	CHECK_EQ(v4v__ring_spare(srv, t->port, V4V_DOMID_ANY, V4V_PORT_ANY), -ENOENT);
	CHECK_EQ(v4v_ring_unregister(bare), 0);
	CHECK_EQ(v4v_sock_close(l), 0);
	t_domains_close();
}

/* A domain at its ring quota: the spares no connect has taken give way
 * to a new ring (as the pool's rings do); one a connect took does not. */
static void spares_give_way(void)
{
	start_with("rings_per_domain 16");
	int l = listener();
	prime(l); /* a spare, S1 */
	struct v4v_addr to = to_srv();
	int c1 = v4v_socket(cli, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK_EQ(v4v_connect(c1, &to), 0); /* takes S1 */
	int a1 = v4v_accept(l, NULL);
	CHECK(a1 >= 0); /* lends prime's pooled ring, then a fresh S2 */
	int c2 = v4v_socket(cli, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK_EQ(v4v_connect(c2, &to), 0); /* takes the oldest: prime's */
	unsigned taken = peer_of(c2).aport, s2 = spare_port();
	struct v4v_rx *rx[16];
	unsigned n = 0;
	int e = 0;
	while (n < 16 && !(e = v4v_ring_register(srv, (v4v_port_t)(1000 + n), V4V_DOMID_ANY, 4096,
						 0, &rx[n])))
		n++;
	CHECK_EQ(e, -ENOSPC);
	struct t_ring_row r;
	CHECK(!t_ring_find(v4v_domid(srv), s2, "any", &r)); /* gave way */
	/* The taken one is still c2's connection, and accept finds it. */
	CHECK_EQ(v4v_send(c2, "ok", 2, 0), 2);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(v4v_ring_unregister(rx[i]), 0);
	CHECK_EQ(v4v_sock_set_nonblock(l, 1), 0);
	int a2 = v4v_accept(l, NULL);
	CHECK(a2 >= 0);
	CHECK_EQ(name_of(a2).aport, taken);
	char buf[4];
	CHECK_EQ(v4v_recv(a2, buf, sizeof(buf), 0), 2);
	CHECK(memcmp(buf, "ok", 2) == 0);
	int socks[] = {a1, a2, c1, c2, l};
	for (unsigned i = 0; i < sizeof(socks) / sizeof(socks[0]); i++)
		CHECK_EQ(v4v_sock_close(socks[i]), 0);
	t_domains_close();
}

/* d's connection (stream) ring count in v4vd's state "spare". */
static unsigned spares_in(uint16_t domid)
{
	struct t_ring_row r;
	unsigned n = 0;
	for (unsigned i = 0; t_ring_row_at(i, &r); i++)
		n += r.domid == domid && strcmp(r.state, "spare") == 0;
	return n;
}

/* A connection from `from` to (to_dom, port), accepted on l: *c the
 * client's end (non-blocking), *a the server's. */
static void connected(struct v4v_domain *from, struct v4v_domain *to_dom, int l, uint32_t port,
		      int *c, int *a)
{
	struct v4v_addr to = {.aport = port, .domain_id = v4v_domid(to_dom)};
	*c = v4v_socket(from, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK(*c >= 0);
	int r = v4v_connect(*c, &to);
	CHECK(r == 0 || errno == EINPROGRESS);
	*a = v4v_accept(l, NULL);
	CHECK(*a >= 0);
	if (r) {
		wait_in(*c);
		CHECK_EQ(v4v_connect(*c, &to), 0);
	}
}

/* n connections made one after another, each closed at both ends and
 * its server's ring pooled before the next. */
static void cycle(struct v4v_domain *from, struct v4v_domain *to_dom, int l, uint32_t port, int n)
{
	for (int i = 0; i < n; i++) {
		int c, a;
		connected(from, to_dom, l, port, &c, &a);
		CHECK_EQ(v4v_sock_close(a), 0);
		CHECK_EQ(v4v_sock_close(c), 0);
		for (int k = 0; k < WAIT_MS && !v4v__pool_ready(to_dom); k++)
			poll(NULL, 0, 1);
	}
}

/* With the process's spares at their cap (SPARES_MAX_ALL), an accept on
 * a third listener lends nothing, and leaves the pooled rings it could
 * not lend in the pool (taking them out and unregistering them emptied
 * the pool at every such accept). */
static void spares_cap_keeps_pool(void)
{
	start();
	int la = listen_on(srv, 100), lb = listen_on(srv, 101), lc = listen_on(srv, 102);
	cycle(cli, srv, la, 100, 6);
	cycle(cli, srv, lb, 101, 6);
	CHECK_EQ(spares_in(v4v_domid(srv)), 8u);
	/* Two rings of srv's own connections, to a listener of cli's. */
	int lcli = listen_on(cli, 200);
	int c[2], a[2];
	for (int i = 0; i < 2; i++)
		connected(srv, cli, lcli, 200, &c[i], &a[i]);
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(v4v_sock_close(a[i]), 0);
		CHECK_EQ(v4v_sock_close(c[i]), 0);
	}
	for (int k = 0; k < WAIT_MS && v4v__pool_ready(srv) < 2; k++)
		poll(NULL, 0, 1);
	CHECK_EQ(v4v__pool_ready(srv), 2u);
	/* One connection to the third listener: its accept takes one pooled
	 * ring for itself and may lend none. */
	int k, ka;
	connected(cli, srv, lc, 102, &k, &ka);
	CHECK_EQ(v4v__pool_ready(srv), 1u);
	CHECK_EQ(spares_in(v4v_domid(srv)), 8u);
	CHECK_EQ(v4v_sock_close(ka), 0);
	CHECK_EQ(v4v_sock_close(k), 0);
}

static const struct t_case cases[] = {
    T_CASE(connect_before_accept), T_CASE(spare_unroutable),	  T_CASE(taken_forged),
    T_CASE(listener_close_resets), T_CASE(client_dies_unread),	  T_CASE(client_dies_read),
    T_CASE(ring_spare_errnos),	   T_CASE(spares_give_way),	  T_CASE(malformed_takes),
    T_CASE(taken_key_reused),	   T_CASE(spares_cap_keeps_pool),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
