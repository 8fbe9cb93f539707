/* SPDX-License-Identifier: MIT */
/*
 * Fairness and resource limits (docs/SECURITY.md, "Fair shares"): each
 * per-domain limit hit (its errno, others unaffected), v4vd at its own fd
 * limit (no busy loop, lost fds answered, others still served), per-domain
 * budgets per round (a flooding domain vs a bystander, by counts and bytes,
 * never by timing), control connections read without blocking, and the cost of
 * removing rings (an operation counter of `v4vctl stats`).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/lib/lib.h"
#include "t.h"

#define WAIT_MS 5000

static void start_with(const char *text)
{
	t_v4vd_start_conf(text ? text : "");
}

/* A row of `v4vctl rings`: the waiters of (domid, aport). */
static unsigned ring_waiters(uint16_t domid, v4v_port_t aport)
{
	char *list = t_ctl("rings"), *save = NULL;
	unsigned found = ~0u;
	strtok_r(list, "\n", &save);
	for (char *line; (line = strtok_r(NULL, "\n", &save));) {
		unsigned dom, port, len, rx, tx, w;
		char name[40], part[16];
		if (sscanf(line, "%u\t%39s\t%u\t%15s\t%u\t%u\t%u\t%u", &dom, name, &port, part,
			   &len, &rx, &tx, &w) == 8 &&
		    dom == domid && port == aport)
			found = w;
	}
	free(list);
	CHECK(found != ~0u);
	return found;
}

/* A pair that must keep working: one message from a to b's ring. */
static void pair_works(struct v4v_domain *a, struct v4v_domain *b, struct v4v_rx *r)
{
	uint8_t msg[32], got[32];
	struct iovec iov = {msg, sizeof(msg)};
	struct v4v_addr to = v4v_rx_addr(r);
	struct v4v_msg m;
	t_fill(msg, sizeof(msg), t_rand());
	CHECK_EQ(v4v_sendv(a, 7, &to, &iov, 1, 0), sizeof(msg));
	CHECK(t_wait_virq(b, WAIT_MS));
	CHECK_EQ(v4v_rx_peek(r, &m), 1);
	CHECK_EQ(v4v_msg_read(&m, got, sizeof(got)), sizeof(got));
	CHECK(memcmp(msg, got, sizeof(msg)) == 0);
	v4v_rx_consume(r, &m);
	CHECK_EQ(v4v_notify(b, NULL, 0), 0);
}

/* ---- limits ------------------------------------------------------------- */

/* clients_per_domain: one process too many gets EUSERS; others attach. */
static void clients(void)
{
	start_with("clients_per_domain 3");
	uint16_t id;
	int dfd = t_domain_fd("many", &id);
	struct v4v_domain *h[4];
	for (int i = 0; i < 3; i++)
		CHECK_EQ(v4v_open_fd(dfd, &h[i]), 0);
	CHECK_EQ(v4v_open_fd(dfd, &h[3]), -EUSERS);
	/* Another domain has its own count. */
	struct v4v_domain *o = t_domain("other"), *p = t_domain("peer");
	struct v4v_rx *r;
	CHECK_EQ(v4v_ring_register(p, 5, V4V_DOMID_ANY, 4096, 0, &r), 0);
	pair_works(o, p, r);
	pair_works(h[0], p, r);
	/* One goes: there is room again. */
	v4v_close(h[1]);
	for (int i = 0; i < WAIT_MS && v4v_open_fd(dfd, &h[1]) != 0; i++)
		poll(NULL, 0, 1);
	pair_works(h[1], p, r);
	CHECK_EQ(v4v_ring_unregister(r), 0);
	for (int i = 0; i < 3; i++)
		v4v_close(h[i]);
	close(dfd);
	t_domains_close();
}

/* fds_per_domain: the hold, a process (channel + VIRQ) and two doorbells
 * fill 5; a third socket ring fails with EMFILE; other domains go on. */
static void fds(void)
{
	start_with("fds_per_domain 5");
	uint16_t id;
	int dfd = t_domain_fd("d", &id);
	struct v4v_domain *d;
	CHECK_EQ(v4v_open_fd(dfd, &d), 0);
	int s[3];
	for (int i = 0; i < 3; i++) {
		struct v4v_addr a = {.aport = 100 + (uint32_t)i, .domain_id = V4V_DOMID_ANY};
		s[i] = v4v_socket(d, V4V_SOCK_DGRAM, 0);
		CHECK(s[i] >= 0);
		int r = v4v_bind(s[i], &a);
		if (i < 2)
			CHECK_EQ(r, 0);
		else {
			CHECK_EQ(r, -1);
			CHECK_EQ(errno, EMFILE);
		}
	}
	/* A second process of d needs two more: refused, d's handle works. */
	struct v4v_domain *d2;
	CHECK_EQ(v4v_open_fd(dfd, &d2), -EMFILE);
	char *err = NULL;
	CHECK(!t_ctl_try(&err, "domain open d"));
	free(err);
	struct v4v_domain *o = t_domain("o"), *p = t_domain("p");
	struct v4v_rx *r;
	CHECK_EQ(v4v_ring_register(p, 5, V4V_DOMID_ANY, 4096, 0, &r), 0);
	pair_works(d, p, r);
	pair_works(o, p, r);
	/* Closing a socket gives its doorbell back. */
	CHECK_EQ(v4v_sock_close(s[0]), 0);
	struct v4v_addr a = {.aport = 102, .domain_id = V4V_DOMID_ANY};
	int ok = -1;
	for (int i = 0; i < WAIT_MS && ok != 0; i++) {
		ok = v4v_bind(s[2], &a);
		if (ok)
			poll(NULL, 0, 1);
	}
	CHECK_EQ(ok, 0);
	for (int i = 1; i < 3; i++)
		CHECK_EQ(v4v_sock_close(s[i]), 0);
	CHECK_EQ(v4v_ring_unregister(r), 0);
	v4v_close(d);
	close(dfd);
	t_domains_close();
}

/* connects_per_source: a domain's unread requests at a listener are
 * bounded; past it, EAGAIN (non-blocking) or ECONNREFUSED (blocking);
 * another domain still gets in; once the server reads one, room again. */
static void connects(void)
{
	enum { LIMIT = 4 };
	start_with("connects_per_source 4");
	struct v4v_domain *srv = t_domain("srv"), *cl = t_domain("cl"), *o = t_domain("o");
	int l = v4v_socket(srv, V4V_SOCK_STREAM, 0);
	struct v4v_addr la = {.aport = 80, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(l, &la), 0);
	CHECK_EQ(v4v_listen(l, 128), 0);
	struct v4v_addr to = {.aport = 80, .domain_id = v4v_domid(srv)};
	int c[LIMIT + 2];
	for (int i = 0; i < LIMIT + 1; i++) {
		c[i] = v4v_socket(cl, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
		CHECK(c[i] >= 0);
		int r = v4v_connect(c[i], &to);
		CHECK_EQ(r, -1);
		CHECK_EQ(errno, i < LIMIT ? EINPROGRESS : EAGAIN);
	}
	int b = v4v_socket(cl, V4V_SOCK_STREAM, 0);
	CHECK_EQ(v4v_connect(b, &to), -1);
	CHECK_EQ(errno, ECONNREFUSED);
	/* Another domain's request is not crowded out. */
	int oc = v4v_socket(o, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	CHECK_EQ(v4v_connect(oc, &to), -1);
	CHECK_EQ(errno, EINPROGRESS);
	/* The server reads one of cl's: cl may ask once more. */
	int a = v4v_accept(l, NULL);
	CHECK(a >= 0);
	c[LIMIT + 1] = v4v_socket(cl, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	int r = v4v_connect(c[LIMIT + 1], &to); /* 0: it took a spare */
	CHECK(r == 0 || errno == EINPROGRESS);
	v4v_sock_close(a);
	for (int i = 0; i < LIMIT + 2; i++)
		v4v_sock_close(c[i]);
	v4v_sock_close(b);
	v4v_sock_close(oc);
	v4v_sock_close(l);
	t_domains_close();
}

/* waiters_per_ring counts domains (Argo: one wait per ring and source
 * domain): three processes of one domain take one place, and all hear. */
static void waiters(void)
{
	start_with("waiters_per_ring 2");
	struct v4v_domain *rd = t_domain("r"), *fill = t_domain("fill");
	struct v4v_rx *r;
	CHECK_EQ(v4v_ring_register(rd, 1, V4V_DOMID_ANY, 48, 0, &r), 0);
	struct v4v_addr to = v4v_rx_addr(r);
	char msg[16] = {0};
	struct iovec iov = {msg, sizeof(msg)};
	CHECK_EQ(v4v_sendv(fill, 1, &to, &iov, 1, 0), 16);
	uint16_t id;
	int dfd = t_domain_fd("many", &id);
	struct v4v_domain *m[3];
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(v4v_open_fd(dfd, &m[i]), 0);
		CHECK_EQ(v4v_sendv(m[i], 10 + (uint32_t)i, &to, &iov, 1, 0), -EAGAIN);
	}
	CHECK_EQ(ring_waiters(v4v_domid(rd), 1), 1);
	struct v4v_domain *b = t_domain("b"), *c = t_domain("c");
	CHECK_EQ(v4v_sendv(b, 1, &to, &iov, 1, 0), -EAGAIN);
	CHECK_EQ(v4v_sendv(c, 1, &to, &iov, 1, 0), -EBUSY);
	CHECK_EQ(ring_waiters(v4v_domid(rd), 1), 2);
	/* Room: every process of the shared wait is woken, and b. */
	struct v4v_msg msgv;
	CHECK_EQ(v4v_rx_peek(r, &msgv), 1);
	v4v_rx_consume(r, &msgv);
	CHECK_EQ(v4v_notify(rd, NULL, 0), 0);
	for (int i = 0; i < 3; i++)
		CHECK(t_wait_virq(m[i], WAIT_MS));
	CHECK(t_wait_virq(b, WAIT_MS));
	CHECK_EQ(v4v_sendv(m[2], 12, &to, &iov, 1, 0), 16);
	CHECK_EQ(v4v_ring_unregister(r), 0);
	for (int i = 0; i < 3; i++)
		v4v_close(m[i]);
	close(dfd);
	t_domains_close();
}

/* ---- v4vd at its own fd limit ------------------------------------------- */

static unsigned long long v4vd_ticks(void)
{
	char p[64], buf[1024];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)t_v4vd_pid());
	FILE *f = fopen(p, "r");
	CHECK(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *s = strrchr(buf, ')');
	CHECK(s);
	unsigned long long ut = 0, st = 0;
	/* After the comm: state, then fields 4..13, then utime, stime. */
	CHECK(sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) ==
	      2);
	return ut + st;
}

/* A control connection left queued (not a word sent). */
static int ctl_connect_raw(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control", t_rundir());
	CHECK(fd >= 0);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	return fd;
}

static void fd_limit(void)
{
	enum { NDOM = 3, MAXSOCK = 200 };
	start_with(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b"), *d[NDOM];
	struct v4v_rx *r;
	CHECK_EQ(v4v_ring_register(b, 5, V4V_DOMID_ANY, 4096, 0, &r), 0);
	for (int i = 0; i < NDOM; i++)
		d[i] = t_domain(NULL);
	/* v4vd may open a few more fds than it has now. */
	struct rlimit rl = {.rlim_cur = (rlim_t)t_v4vd_fds() + 24, .rlim_max = RLIM_INFINITY};
	CHECK(prlimit(t_v4vd_pid(), RLIMIT_NOFILE, &rl, NULL) == 0 ||
	      (rl.rlim_max = rl.rlim_cur, prlimit(t_v4vd_pid(), RLIMIT_NOFILE, &rl, NULL) == 0));
	/* Exhaust it from several domains: sockets' doorbells, until binds fail
	 * with EMFILE (their fds could not be received: a real reply). */
	int s[MAXSOCK], ns = 0, emfile = 0;
	for (; ns < MAXSOCK && emfile < 2 * NDOM; ns++) {
		struct v4v_addr at = {.aport = 1000 + (uint32_t)ns, .domain_id = V4V_DOMID_ANY};
		s[ns] = v4v_socket(d[ns % NDOM], V4V_SOCK_DGRAM, 0);
		CHECK(s[ns] >= 0);
		if (v4v_bind(s[ns], &at) < 0) {
			CHECK_EQ(errno, EMFILE);
			emfile++;
		}
	}
	CHECK(emfile > 0);
	/* Control connections until v4vd cannot accept one: no busy loop on
	 * the queued one, which is told why and closed (readable: an error,
	 * then EOF); the accepted ones just wait for a command. */
	enum { NQ = 12 };
	int q[NQ];
	for (int i = 0; i < NQ; i++)
		q[i] = ctl_connect_raw();
	poll(NULL, 0, 100);
	unsigned long long t0 = v4vd_ticks();
	poll(NULL, 0, 500);
	unsigned long long spent = v4vd_ticks() - t0;
	fprintf(stderr, "v4vd used %llu ticks in 500 ms at its fd limit\n", spent);
	/* An idle v4vd uses none; a busy loop takes a core (or what a loaded
	 * machine leaves it: still several ticks at 100 Hz). */
	CHECK(spent <= 2);
	int told = 0;
	for (int i = 0; i < NQ; i++) {
		struct pollfd p = {.fd = q[i], .events = POLLIN};
		told += poll(&p, 1, 0) == 1;
	}
	CHECK(told > 0);
	for (int i = 0; i < NQ; i++)
		close(q[i]);
	/* Existing handles of other domains keep working, also the ones that
	 * hit the limit. */
	pair_works(a, b, r);
	pair_works(d[0], b, r);
	for (int i = 0; i < ns; i++)
		v4v_sock_close(s[i]);
	unsigned long long lost = 0;
	for (int i = 0; i < WAIT_MS && !lost; i++) {
		char *err = NULL, *body = t_ctl_try(&err, "stats");
		free(err);
		if (body) {
			free(body);
			lost = t_stat("fds_lost");
		} else {
			poll(NULL, 0, 1);
		}
	}
	CHECK(lost > 0);
	CHECK(t_stat("shed") > 0);
	CHECK_EQ(v4v_ring_unregister(r), 0);
	t_domains_close();
}

/* ---- fair shares per round ---------------------------------------------- */

/*
 * A domain with many processes, each with requests queued, against a
 * bystander with one: all are sendv into one ring, so the ring's order
 * tells how many of the flooder's requests v4vd served before the
 * bystander's.  v4vd is stopped while the requests are queued, so the
 * order does not depend on timing.  With a budget per process (BATCH per
 * channel), the flooder's 20 x 60 would all come first.
 */
static void raw_sendv_len(struct v4v_domain *h, const struct v4v_addr *to, uint32_t len)
{
	struct v4v_req_sendv q = {
	    .h = {.op = V4V_OP_SENDV},
	    .src = {.aport = 9},
	    .dst = {.aport = to->aport, .domain_id = to->domain_id},
	    .niov = 1,
	    .iov_len = {len},
	};
	CHECK(send(h->chan, &q, sizeof(q), MSG_NOSIGNAL | MSG_DONTWAIT) == sizeof(q));
}

static void raw_sendv(struct v4v_domain *h, const struct v4v_addr *to)
{
	raw_sendv_len(h, to, 1);
}

static void v4vd_stopped(bool stopped)
{
	char p[64], buf[512];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)t_v4vd_pid());
	CHECK(kill(t_v4vd_pid(), stopped ? SIGSTOP : SIGCONT) == 0);
	for (int i = 0; i < WAIT_MS; i++) {
		FILE *f = fopen(p, "r");
		CHECK(f);
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		char *st = strrchr(buf, ')');
		if (st && (st[2] == 'T') == stopped)
			return;
		poll(NULL, 0, 1);
	}
	CHECK(!"v4vd did not stop or continue");
}

/* Read want messages from r (the sink's); the position of the first from
 * domid. */
static unsigned ring_order(struct v4v_domain *sink, struct v4v_rx *r, unsigned want, uint16_t domid)
{
	unsigned got = 0, pos = ~0u;
	for (int w = 0; w < WAIT_MS && got < want; w++) {
		struct v4v_msg m;
		while (v4v_rx_peek(r, &m) == 1) {
			if (m.source.domain_id == domid)
				pos = got;
			got++;
			v4v_rx_consume(r, &m);
		}
		if (got < want)
			t_wait_virq(sink, 1);
	}
	CHECK_EQ(got, want);
	return pos;
}

/* Every reply came (none was lost to the budget): each process's n, the
 * bystander's one; then the flooder's processes go. */
static void replies_drained(struct v4v_domain *by, struct v4v_domain **h, int procs, int n)
{
	char buf[V4V_REPLY_MAX];
	if (by) /* NULL: the bystander made no request */
		CHECK(t_read_full(by->chan, buf, sizeof(struct v4v_reply), WAIT_MS));
	for (int i = 0; i < procs; i++) {
		for (int k = 0; k < n; k++)
			CHECK(t_read_full(h[i]->chan, buf, sizeof(struct v4v_reply), WAIT_MS));
		v4v_close(h[i]);
	}
}

/* The flooding domain: procs processes attached to one domain fd. */
static int flood_procs(struct v4v_domain **h, int procs)
{
	uint16_t fid;
	int dfd = t_domain_fd("flood", &fid);
	for (int i = 0; i < procs; i++)
		CHECK_EQ(v4v_open_fd(dfd, &h[i]), 0);
	return dfd;
}

static void rr_requests(void)
{
	enum { PROCS = 20, EACH = 60 };
	start_with(NULL);
	struct v4v_domain *sink = t_domain("sink"), *by = t_domain("bystander");
	struct v4v_rx *r;
	CHECK_EQ(v4v_ring_register(sink, 1, V4V_DOMID_ANY, 256 * 1024, 0, &r), 0);
	struct v4v_addr to = v4v_rx_addr(r);
	struct v4v_domain *h[PROCS];
	int dfd = flood_procs(h, PROCS);

	v4vd_stopped(true);
	for (int i = 0; i < PROCS; i++)
		for (int k = 0; k < EACH; k++)
			raw_sendv(h[i], &to);
	raw_sendv(by, &to);
	v4vd_stopped(false);

	unsigned pos = ring_order(sink, r, PROCS * EACH + 1, v4v_domid(by));
	fprintf(stderr, "the bystander's request was served after %u of the flooder's\n", pos);
	/* The flooder's budget is 64 per round, shared by its processes
	 * (a round or two before the bystander's turn). */
	CHECK(pos <= 2 * 64);
	replies_drained(by, h, PROCS, EACH);
	CHECK_EQ(v4v_ring_unregister(r), 0);
	close(dfd);
	t_domains_close();
}

/*
 * The budget is bytes as well as a count: a domain whose requests are
 * costly (here, 256 KiB sends, each a copy into a ring) gets fewer of them
 * served per round than one whose requests are cheap.  Every tenth of the
 * flooder's requests is a 1-byte marker into the ring the bystander also
 * sends to, so the markers ahead of the bystander's message count the
 * flooder's requests v4vd served first: by count alone (64 a round) six
 * markers, by bytes (DOM_BYTE_BUDGET, 512 KiB: two such sends) none.
 */
static void rr_costly(void)
{
	enum { PROCS = 4, EACH = 40, BIG = 256 * 1024 };
	start_with(NULL);
	struct v4v_domain *sink = t_domain("sink"), *by = t_domain("bystander");
	struct v4v_rx *r, *bulk;
	CHECK_EQ(v4v_ring_register(sink, 1, V4V_DOMID_ANY, 256 * 1024, 0, &r), 0);
	CHECK_EQ(v4v_ring_register(sink, 2, V4V_DOMID_ANY, V4V_RING_MAX_LEN, 0, &bulk), 0);
	struct v4v_addr to = v4v_rx_addr(r), big = v4v_rx_addr(bulk);
	struct v4v_domain *h[PROCS];
	int dfd = flood_procs(h, PROCS);

	v4vd_stopped(true);
	for (int i = 0; i < PROCS; i++)
		for (int k = 0; k < EACH; k++) {
			if (k % 10 == 9)
				raw_sendv(h[i], &to);
			else
				raw_sendv_len(h[i], &big, BIG);
		}
	raw_sendv(by, &to);
	v4vd_stopped(false);

	unsigned pos = ring_order(sink, r, PROCS * EACH / 10 + 1, v4v_domid(by));
	fprintf(stderr, "the bystander's request was served after %u of the flooder's markers\n",
		pos);
	CHECK(pos == 0);
	replies_drained(by, h, PROCS, EACH);
	CHECK_EQ(v4v_ring_unregister(bulk), 0);
	CHECK_EQ(v4v_ring_unregister(r), 0);
	close(dfd);
	t_domains_close();
}

/*
 * The same for send rings: a domain with 40 sockets, each with messages
 * queued in its send ring, against a bystander socket with one, all to one
 * sink.  Per round the flooding domain moves its budget (256), split
 * between its rings, not 256 per ring.
 */
static int dgram_bound(struct v4v_domain *d, uint32_t port, uint32_t ring_len)
{
	int s = v4v_socket(d, V4V_SOCK_DGRAM, V4V_SOCK_NONBLOCK);
	struct v4v_addr a = {.aport = port, .domain_id = V4V_DOMID_ANY};
	CHECK(s >= 0);
	if (ring_len)
		CHECK_EQ(v4v_sock_set_ring_len(s, ring_len), 0);
	CHECK_EQ(v4v_bind(s, &a), 0);
	return s;
}

/* Receive n datagrams at s; the source domain of each, in order, in src. */
static void recv_sources(int s, unsigned n, uint16_t *src)
{
	unsigned got = 0;
	for (int w = 0; w < 10 * WAIT_MS && got < n; w++) {
		char buf[64];
		struct v4v_addr from;
		ssize_t r = v4v_recvfrom(s, buf, sizeof(buf), 0, &from);
		if (r < 0) {
			CHECK_EQ(errno, EAGAIN);
			struct pollfd p = {.fd = s, .events = POLLIN};
			poll(&p, 1, 1);
			continue;
		}
		src[got++] = from.domain_id;
	}
	CHECK_EQ(got, n);
}

/* Receive n datagrams at s; the position of the first from domid. */
static unsigned recv_order(int s, unsigned n, uint16_t domid)
{
	uint16_t *src = calloc(n, sizeof(*src));
	CHECK(src);
	recv_sources(s, n, src);
	unsigned pos = 0;
	while (pos < n && src[pos] != domid)
		pos++;
	free(src);
	return pos < n ? pos : ~0u;
}

static void rr_send_rings(void)
{
	enum { RINGS = 40, EACH = 30 };
	start_with(NULL);
	struct v4v_domain *sink = t_domain("sink"), *fl = t_domain("flood"), *by = t_domain("by");
	int sk = dgram_bound(sink, 1, 1u << 20), f[RINGS];
	struct v4v_addr to = {.aport = 1, .domain_id = v4v_domid(sink)};
	for (int i = 0; i < RINGS; i++) {
		f[i] = dgram_bound(fl, 100 + (uint32_t)i, 0);
		CHECK_EQ(v4v_sendto(f[i], "w", 1, 0, &to), 1); /* the first is synchronous */
	}
	int b = dgram_bound(by, 100, 0);
	CHECK_EQ(v4v_sendto(b, "w", 1, 0, &to), 1);
	recv_order(sk, RINGS + 1, v4v_domid(by));

	v4vd_stopped(true);
	for (int i = 0; i < RINGS; i++)
		for (int k = 0; k < EACH; k++)
			CHECK_EQ(v4v_sendto(f[i], "f", 1, 0, &to), 1);
	CHECK_EQ(v4v_sendto(b, "b", 1, 0, &to), 1);
	v4vd_stopped(false);
	unsigned pos = recv_order(sk, RINGS * EACH + 1, v4v_domid(by));
	fprintf(stderr, "the bystander's message came after %u of the flooder's\n", pos);
	/* The flooder's 256 per round (or two), not 40 x 30 first. */
	CHECK(pos <= 2 * 256);
	for (int i = 0; i < RINGS; i++)
		v4v_sock_close(f[i]);
	v4v_sock_close(b);
	v4v_sock_close(sk);
	t_domains_close();
}

/*
 * Requests against send-ring messages: a request costs REQ_COST (512 KiB)
 * of the byte budget (512 KiB) besides its bytes, so a round serves a
 * domain 1 request where it moves 256 of another's ring messages.
 * The flooder's 20 processes queue 60 one-byte sendv requests each and a
 * bystander queues 512 one-byte datagrams in its send ring, v4vd stopped;
 * the sink's ring then tells how many requests v4vd served while it moved
 * the bystander's 512 (two rounds, or three): 3 at most, where by count
 * alone (64 a round) it was 128 or more, 16 with REQ_COST 64 KiB and 4
 * with 256 KiB.
 */
static void rr_request_cost(void)
{
	enum { PROCS = 20, EACH = 60, BY = 512 };
	start_with(NULL);
	struct v4v_domain *sink = t_domain("sink"), *by = t_domain("by");
	int sk = dgram_bound(sink, 1, 1u << 20), b = dgram_bound(by, 100, 0);
	struct v4v_addr to = {.aport = 1, .domain_id = v4v_domid(sink)};
	struct v4v_domain *h[PROCS];
	int dfd = flood_procs(h, PROCS);
	CHECK_EQ(v4v_sendto(b, "w", 1, 0, &to), 1); /* the first is synchronous */
	recv_order(sk, 1, v4v_domid(by));

	v4vd_stopped(true);
	for (int i = 0; i < PROCS; i++)
		for (int k = 0; k < EACH; k++)
			raw_sendv(h[i], &to);
	for (int k = 0; k < BY; k++)
		CHECK_EQ(v4v_sendto(b, "b", 1, 0, &to), 1);
	v4vd_stopped(false);

	static uint16_t src[PROCS * EACH + BY];
	recv_sources(sk, PROCS * EACH + BY, src);
	unsigned by_got = 0, flood_before = 0;
	for (unsigned i = 0; by_got < BY; i++)
		if (src[i] == v4v_domid(by))
			by_got++;
		else
			flood_before++;
	fprintf(stderr,
		"v4vd served %u of the flooder's requests while it moved the bystander's %u\n",
		flood_before, BY);
	CHECK(flood_before <= 3);
	replies_drained(NULL, h, PROCS, EACH);
	v4v_sock_close(b);
	v4v_sock_close(sk);
	close(dfd);
	t_domains_close();
}

/* ---- control connections ------------------------------------------------ */

/* A control client that stalls in the middle of its command holds up
 * nobody, and is answered when it finishes, however long it took. */
static void ctl_stall(void)
{
	start_with(NULL);
	int q = ctl_connect_raw();
	static const char cmd[] = "stats";
	uint32_t len = sizeof(cmd) - 1;
	CHECK(send(q, &len, 2, MSG_NOSIGNAL) == 2); /* half the length word */
	for (int i = 0; i < 20; i++)
		free(t_ctl("domains"));
	poll(NULL, 0, 1500); /* longer than any receive timeout v4vd might use */
	CHECK(send(q, (char *)&len + 2, 2, MSG_NOSIGNAL) == 2);
	CHECK(send(q, cmd, len, MSG_NOSIGNAL) == (ssize_t)len);
	uint32_t rlen = 0;
	CHECK(t_read_full(q, &rlen, sizeof(rlen), WAIT_MS));
	char buf[4096];
	CHECK(rlen > 3 && rlen < sizeof(buf));
	CHECK(t_read_full(q, buf, rlen, WAIT_MS));
	CHECK(memcmp(buf, "ok\n", 3) == 0);
	close(q);
}

/* ---- removal cost -------------------------------------------------------- */

/* Removing N rings while M others exist (some naming the remover's domain
 * as partner) visits what the removals touch, not N x M. */
static void removal_cost(void)
{
	enum { M = 120, N = 60, P = 4 };
	start_with("rings_per_domain 256");
	struct v4v_domain *other = t_domain("other"), *x = t_domain("x"), *y = t_domain("y");
	struct v4v_rx *keep[M], *gone[N];
	for (int i = 0; i < M; i++)
		CHECK_EQ(v4v_ring_register(other, 1 + (uint32_t)i, V4V_DOMID_ANY, 48, 0, &keep[i]),
			 0);
	/* A few rings of y name x as partner: they are told, and counted. */
	struct v4v_rx *py[P];
	for (int i = 0; i < P; i++)
		CHECK_EQ(v4v_ring_register(y, 1 + (uint32_t)i, v4v_domid(x), 48, 0, &py[i]), 0);
	for (int i = 0; i < N; i++)
		CHECK_EQ(v4v_ring_register(x, 1 + (uint32_t)i, V4V_DOMID_ANY, 48, 0, &gone[i]), 0);
	unsigned long long w0 = t_stat("removal_work");
	for (int i = 0; i < N; i++)
		CHECK_EQ(v4v_ring_unregister(gone[i]), 0);
	unsigned long long work = t_stat("removal_work") - w0;
	fprintf(stderr, "removing %d rings among %d: %llu visits\n", N, M + N + P, work);
	/* Each removal tells the P partnered rings; a scan would visit all. */
	CHECK(work <= (unsigned long long)N * (P + 2));
	for (int i = 0; i < M; i++)
		CHECK_EQ(v4v_ring_unregister(keep[i]), 0);
	for (int i = 0; i < P; i++)
		CHECK_EQ(v4v_ring_unregister(py[i]), 0);
}

/* ---- polling cost ------------------------------------------------------- */

/* The eagain count of (domid, aport) in `v4vctl rings`. */
static unsigned ring_eagain(uint16_t domid, v4v_port_t aport)
{
	char *list = t_ctl("rings"), *save = NULL;
	unsigned found = ~0u;
	strtok_r(list, "\n", &save);
	for (char *line; (line = strtok_r(NULL, "\n", &save));) {
		unsigned dom, port, len, rx, tx, w, msgs, bytes, eagain;
		char name[40], part[16], state[16];
		if (sscanf(line, "%u\t%39s\t%u\t%15s\t%u\t%u\t%u\t%u\t%15s\t%u\t%u\t%u", &dom, name,
			   &port, part, &len, &rx, &tx, &w, state, &msgs, &bytes, &eagain) == 12 &&
		    dom == domid && port == aport)
			found = eagain;
	}
	free(list);
	CHECK(found != ~0u);
	return found;
}

/* One datagram on a non-blocking socket, waiting (bounded) for room. */
static void send_one(int s, const struct v4v_addr *to)
{
	while (v4v_sendto(s, "b", 1, 0, to) != 1) {
		CHECK_EQ(errno, EAGAIN);
		struct pollfd p = {.fd = s, .events = POLLOUT};
		CHECK_EQ(poll(&p, 1, WAIT_MS), 1);
	}
}

/* Consume every message in r until n have come (bounded); notify after
 * each batch, so blocked senders are woken. */
static void drain(struct v4v_domain *d, struct v4v_rx *r, unsigned n)
{
	struct v4v_msg m;
	for (unsigned got = 0; got < n;) {
		if (v4v_rx_peek(r, &m) == 1) {
			v4v_rx_consume(r, &m);
			got++;
			continue;
		}
		CHECK_EQ(v4v_notify(d, NULL, 0), 0);
		if (v4v_rx_peek(r, &m) != 1)
			CHECK(t_wait_virq(d, WAIT_MS));
	}
}

/*
 * N send rings blocked on one full ring, while another domain's send ring
 * keeps v4vd polling: each round reads the full ring's rx_ptr once and
 * looks at its blockers only when it has room, so a round costs one look,
 * not N (it cost N: every blocked send ring, every round).
 */
static void poll_cost(void)
{
	enum { N = 64, K = 300 };
	start_with(NULL);
	struct v4v_domain *sink = t_domain("sink"), *fl = t_domain("flood"), *by = t_domain("by");
	struct v4v_rx *full, *open;
	CHECK_EQ(v4v_ring_register(sink, 1, V4V_DOMID_ANY, 4096, 0, &full), 0);
	CHECK_EQ(v4v_ring_register(sink, 2, V4V_DOMID_ANY, 1u << 20, 0, &open), 0);
	struct v4v_addr to = v4v_rx_addr(full), to_open = v4v_rx_addr(open);
	int f[N];
	for (int i = 0; i < N; i++) {
		f[i] = dgram_bound(fl, 100 + (uint32_t)i, 4096);
		CHECK_EQ(v4v_sendto(f[i], "w", 1, 0, &to), 1); /* the first is synchronous */
	}
	unsigned filled = 0;
	for (long e = 0; e != -EAGAIN; filled++)
		e = v4v_sendv(by, 5, &to, &(struct iovec){"f", 1}, 1, 0);
	filled--; /* the last did not go */
	for (int i = 0; i < N; i++)
		CHECK_EQ(v4v_sendto(f[i], "x", 1, 0, &to), 1); /* queued: v4vd blocks it */
	for (int i = 0; i < WAIT_MS && ring_eagain(v4v_domid(sink), 1) < N + 1; i++)
		poll(NULL, 0, 1);
	CHECK_EQ(ring_eagain(v4v_domid(sink), 1), N + 1);

	int b = dgram_bound(by, 100, 0);
	CHECK_EQ(v4v_sendto(b, "b", 1, 0, &to_open), 1);
	char *st = t_ctl("stats"); /* both counters of one moment */
	unsigned long long rounds = t_stat_in(st, "poll_rounds"), work = t_stat_in(st, "poll_work");
	free(st);
	for (int k = 0; k < K; k++)
		send_one(b, &to_open);
	drain(sink, open, K + 1);
	st = t_ctl("stats");
	rounds = t_stat_in(st, "poll_rounds") - rounds;
	work = t_stat_in(st, "poll_work") - work;
	free(st);
	fprintf(stderr, "%d send rings blocked on one ring: %llu rounds, %llu looks\n", N, rounds,
		work);
	CHECK(rounds > 0);
	CHECK_EQ(work, rounds); /* no room in it: never a look at the blockers */
	/* Room again: every blocked message goes, none lost. */
	drain(sink, full, 2 * N + filled);
	for (int i = 0; i < N; i++)
		v4v_sock_close(f[i]);
	v4v_sock_close(b);
	CHECK_EQ(v4v_ring_unregister(full), 0);
	CHECK_EQ(v4v_ring_unregister(open), 0);
	t_domains_close();
}

static const struct t_case cases[] = {
    T_CASE(clients),	     T_CASE(fds),	  T_CASE(connects),	 T_CASE(waiters),
    T_CASE(fd_limit),	     T_CASE(rr_requests), T_CASE(rr_send_rings), T_CASE(rr_costly),
    T_CASE(rr_request_cost), T_CASE(ctl_stall),	  T_CASE(removal_cost),	 T_CASE(poll_cost),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
