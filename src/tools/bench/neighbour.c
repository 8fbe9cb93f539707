/* SPDX-License-Identifier: MIT */
/*
 * The noisy-neighbour workload (issue 8): does a misbehaving domain hurt a
 * well-behaved pair?  A bystander pair of v4v-dgram domains is measured
 * alone (ping-pong p50 and throughput of 1 KiB datagrams), then again while
 * another domain misbehaves in one way at full speed; per misbehaviour the
 * bystander's throughput (with / alone) and p50 (with / alone) are the
 * result.  The target: at least half the throughput, at most twice the p50.
 *
 * Each misbehaviour is one process, as aggressive as one process can be (it
 * never sleeps unless v4vd makes it wait): on two cores the bystander's two
 * ends and v4vd already want both, so more hostile processes would measure
 * the scheduler, not v4vd.  A misbehaving process holds two domains: the
 * misbehaving one and, where the misbehaviour needs one, its victim (a
 * third domain, never the bystanders).  It is forked before the bystander
 * pair and SIGKILLed after it; its operations are counted, so the table
 * shows how hard it pushed.  A control row ("spin": a process that only
 * burns CPU) shows what any busy process costs the bystander on this
 * machine, v4vd or not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "common/util.h"
#include "tool.h"
#include "wire/proto.h"

bool noisy;

/* ---- the misbehaving process ---------------------------------------------- */

struct hostile {
	int dfd[2]; /* [0] the misbehaving domain, [1] its victim */
	uint16_t domid[2];
	int ready; /* write end: one byte once the misbehaviour is under way */
	_Atomic uint64_t *ops;
};

static __attribute__((noreturn)) void hfail(const char *what, int err)
{
	fprintf(stderr, "%s: misbehaving domain: %s: %s\n", prog, what, strerror(err));
	_exit(1);
}

static void hready(struct hostile *h)
{
	if (h->ready >= 0 && write(h->ready, "", 1) != 1)
		hfail("write", errno);
	close(h->ready);
	h->ready = -1;
}

static void hcount(struct hostile *h, uint64_t n)
{
	atomic_fetch_add_explicit(h->ops, n, memory_order_relaxed);
}

static struct v4v_domain *hattach(int dfd)
{
	struct v4v_domain *d;
	int e = v4v_open_fd(dfd, &d);
	if (e)
		hfail("attach", -e);
	return d;
}

/* A non-blocking socket bound to port (0: unbound), listening if a stream
 * socket with a port; -errno when v4vd refuses one more (a quota). */
static int hsock_try(struct v4v_domain *d, int type, v4v_port_t port)
{
	struct v4v_addr a = {.aport = port, .domain_id = V4V_DOMID_ANY};
	int s = v4v_socket(d, type, V4V_SOCK_NONBLOCK);
	if (s < 0)
		return -errno;
	if ((port && v4v_bind(s, &a) < 0) ||
	    (type == V4V_SOCK_STREAM && port && v4v_listen(s, 64) < 0)) {
		int e = -errno;
		v4v_sock_close(s);
		return e;
	}
	return s;
}

static int hsock(struct v4v_domain *d, int type, v4v_port_t port)
{
	int s = hsock_try(d, type, port);
	if (s < 0)
		hfail("socket", -s);
	return s;
}

/* v4vd is gone (or dropped us): the misbehaviour cannot go on.  Any other
 * refusal (a quota, a limit) is part of it: try again. */
static void hgone(const char *what, int err)
{
	if (err == EPIPE || err == ECONNRESET)
		hfail(what, err);
}

/*
 * The control: a process that only burns CPU.  On two cores any busy
 * fourth process costs the bystander's ping-pong wake-ups their promptness;
 * this row is that floor, so that what the misbehaviours cost beyond it is
 * v4vd's doing.
 */
static void m_spin(struct hostile *h)
{
	hready(h);
	for (volatile uint64_t x = 0;; x++)
		if (x % (1u << 20) == 0)
			hcount(h, 1u << 20);
}

/*
 * (a) flood: 16 datagram sockets (each with its send ring, the fast path)
 * send 1 KiB datagrams to 4 sockets of the victim as fast as their send
 * rings take them; the same process drains the victim, so v4vd always has
 * copying to do.
 */
static void m_flood(struct hostile *h)
{
	enum { NS = 16, NV = 4, BURST = 64 };
	static uint8_t buf[NB_SIZE];
	struct v4v_domain *hd = hattach(h->dfd[0]), *vd = hattach(h->dfd[1]);
	struct v4v_addr dst[NV];
	int s[NS], v[NV];
	unsigned ns = 0;
	for (unsigned i = 0; i < NV; i++) {
		v[i] = hsock(vd, V4V_SOCK_DGRAM, (v4v_port_t)(3000 + i));
		dst[i] = (struct v4v_addr){.aport = 3000 + i, .domain_id = h->domid[1]};
	}
	/* As many as v4vd lets us have, up to NS. */
	while (ns < NS && (s[ns] = hsock_try(hd, V4V_SOCK_DGRAM, (v4v_port_t)(3100 + ns))) >= 0)
		ns++;
	if (!ns)
		hfail("socket", -s[0]);
	hready(h);
	for (;;) {
		uint64_t n = 0;
		for (unsigned i = 0; i < ns; i++)
			for (unsigned k = 0; k < BURST; k++, n++)
				if (v4v_sendto(s[i], buf, sizeof(buf), 0, &dst[i % NV]) < 0) {
					hgone("sendto", errno);
					break;
				}
		for (unsigned i = 0; i < NV; i++)
			while (v4v_recv(v[i], buf, sizeof(buf), MSG_DONTWAIT) >= 0)
				;
		hcount(h, n);
	}
}

/* A channel of our own to the misbehaving domain, attached by hand (the
 * wire format of wire/proto.h): no library between us and v4vd.  -1 when
 * v4vd refuses one more (its reply then went to the domain fd). */
static int raw_attach(int dfd)
{
	int sv[2], virq = -1;
	unsigned nfds = 0;
	struct v4v_attach_reply ar;
	struct v4v_req_attach a = {.h = {.op = V4V_OP_ATTACH, .seq = 1},
				   .version = V4V_PROTO_VERSION};
	int staging = v4v_memfd_sealed("hostile-staging", V4V_STAGING_MEM);
	if (staging < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		hfail("attach set-up", staging < 0 ? -staging : errno);
	int fds[2] = {sv[1], staging};
	if (v4v_send_fds(dfd, &a, sizeof(a), fds, 2, 0) != sizeof(a))
		hfail("attach", errno);
	close(sv[1]);
	close(staging);
	ssize_t n = v4v_recv_fds(sv[0], &ar, sizeof(ar), &virq, 1, &nfds, 0);
	if (nfds)
		close(virq);
	if (n != sizeof(ar) || ar.r.ret) {
		close(sv[0]);
		return -1;
	}
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0)
		hfail("fcntl", errno);
	return sv[0];
}

/* The requests of (b), in turn: valid but useless, and refused. */
static size_t hcall_req(union v4v_req_any *q, unsigned k, uint16_t victim)
{
	memset(q, 0, sizeof(*q));
	switch (k % 6) {
	case 0: q->h.op = V4V_OP_EVENTS; return sizeof(q->h);
	case 1:
		/* 64 rings that do not exist: each one looked up. */
		q->notify.h.op = V4V_OP_NOTIFY;
		q->notify.nent = 64;
		for (unsigned i = 0; i < 64; i++)
			q->notify.ent[i] = (struct v4v_ring_data_ent){
			    .ring = {.aport = 7000 + i, .domain_id = victim}, .space_required = 1};
		return sizeof(q->notify) + 64 * sizeof(struct v4v_ring_data_ent);
	case 2: q->h.op = 0x77; return sizeof(q->h);		 /* unknown: ENOSYS */
	case 3: q->h.op = V4V_OP_SENDV; return sizeof(q->h) + 4; /* truncated */
	case 4:
		/* To a ring that does not exist: ECONNREFUSED. */
		q->send = (struct v4v_req_sendv){.h = {.op = V4V_OP_SENDV},
						 .src = {.aport = 1},
						 .dst = {.aport = 7777, .domain_id = victim},
						 .niov = 1,
						 .iov_len = {64}};
		return sizeof(q->send);
	default:
		q->name.h.op = V4V_OP_NAME_LOOKUP;
		q->name.domid = victim;
		strcpy(q->name.service, "nothing-here");
		return sizeof(q->name);
	}
}

/*
 * (b) hypercall flood: 8 channels of the misbehaving domain (as 8 of its
 * processes would have), each kept 4 requests deep: empty EVENTS, NOTIFY of
 * 64 absent rings, unknown ops, truncated packets, sends to no ring, name
 * look-ups that fail.  Replies are read (a client that never reads is
 * dropped, which would end the flood).
 */
static void m_hcall(struct hostile *h)
{
	enum { NCH = 8, DEPTH = 4 };
	static union v4v_req_any q;
	static union v4v_reply_any rep;
	struct pollfd p[NCH];
	unsigned inflight[NCH] = {0}, k = 0, nch = 0;
	/* As many channels as v4vd lets the domain have, up to NCH. */
	while (nch < NCH && (p[nch].fd = raw_attach(h->dfd[0])) >= 0)
		p[nch++].events = POLLIN;
	if (!nch)
		hfail("attach", EPROTO);
	hready(h);
	for (;;) {
		for (unsigned i = 0; i < nch; i++)
			while (inflight[i] < DEPTH) {
				size_t n = hcall_req(&q, k, h->domid[1]);
				q.h.seq = k++;
				if (send(p[i].fd, &q, n, MSG_NOSIGNAL) < 0) {
					if (errno != EAGAIN)
						hfail("send", errno);
					break;
				}
				inflight[i]++;
			}
		if (poll(p, nch, 10000) <= 0)
			hfail("v4vd does not answer", ETIMEDOUT);
		for (unsigned i = 0; i < nch; i++) {
			if (p[i].revents & (POLLHUP | POLLERR)) {
				/* Dropped (a limit?): attach afresh, go on. */
				close(p[i].fd);
				if ((p[i].fd = raw_attach(h->dfd[0])) < 0)
					hfail("v4vd hung up", EPIPE);
				inflight[i] = 0;
				continue;
			}
			while (p[i].revents && inflight[i] &&
			       recv(p[i].fd, &rep, sizeof(rep), MSG_DONTWAIT) > 0) {
				inflight[i]--;
				hcount(h, 1);
			}
		}
	}
}

/* Wait (bounded) for fd to be ready. */
static void hpoll(int fd, short ev)
{
	struct pollfd p = {.fd = fd, .events = ev};
	if (poll(&p, 1, 10000) != 1)
		hfail("poll", ETIMEDOUT);
}

/*
 * (c) churn: register and unregister a ring, then connect a stream to the
 * victim's listener, accept it there and close both ends; again and again
 * (each connection is two rings and two send rings in v4vd).
 */
static void m_churn(struct hostile *h)
{
	struct v4v_domain *hd = hattach(h->dfd[0]), *vd = hattach(h->dfd[1]);
	struct v4v_addr srv = {.aport = 4000, .domain_id = h->domid[1]};
	int l = hsock(vd, V4V_SOCK_STREAM, 4000);
	hready(h);
	for (;;) {
		struct v4v_rx *rx;
		int e = v4v_ring_register(hd, 5000, V4V_DOMID_ANY, 4096, 0, &rx);
		if (!e)
			e = v4v_ring_unregister(rx);
		hgone("ring", -e);
		hcount(h, 1);
		int c = hsock_try(hd, V4V_SOCK_STREAM, 0), a = -1;
		if (c < 0) {
			hgone("socket", -c);
			continue;
		}
		bool pending = v4v_connect(c, &srv) < 0;
		if (!pending || errno == EINPROGRESS) {
			while ((a = v4v_accept(l, NULL)) < 0 && errno == EAGAIN)
				hpoll(l, POLLIN);
			while (a >= 0 && pending && v4v_connect(c, &srv) < 0 && errno == EALREADY)
				hpoll(c, POLLIN);
		}
		hgone("connect", errno);
		if (a >= 0)
			v4v_sock_close(a);
		v4v_sock_close(c);
		hcount(h, 1);
	}
}

/*
 * (d) space waiters: 32 channels of the misbehaving domain send to each of
 * 8 small victim rings, which are kept full: every ring has its 32 waiters
 * (the most allowed), and the victim frees one message per ring and
 * notifies each round, so v4vd wakes them all and they all try again.
 */
static void m_wait(struct hostile *h)
{
	enum { NW = V4V_MAX_WAITERS, NR = 8, LEN = 1000 };
	struct v4v_domain *w[NW], *vd = hattach(h->dfd[1]);
	struct v4v_rx *rx[NR];
	struct v4v_addr dst[NR];
	static uint8_t buf[LEN];
	struct iovec iov = {buf, LEN};
	unsigned nw = 0;
	int e = 0;
	/* As many channels as v4vd lets the domain have, up to NW. */
	while (nw < NW && (e = v4v_open_fd(h->dfd[0], &w[nw])) == 0)
		nw++;
	if (!nw)
		hfail("attach", -e);
	for (unsigned r = 0; r < NR; r++) {
		e = v4v_ring_register(vd, (v4v_port_t)(6000 + r), V4V_DOMID_ANY, 4096, 0, &rx[r]);
		if (e)
			hfail("ring", -e);
		dst[r] = v4v_rx_addr(rx[r]);
	}
	for (bool first = true;; first = false) {
		uint64_t n = 0;
		for (unsigned i = 0; i < nw; i++) {
			for (unsigned r = 0; r < NR; r++, n++) {
				long sent = v4v_sendv(w[i], 1, &dst[r], &iov, 1, 0);
				if (sent < 0)
					hgone("sendv", (int)-sent);
			}
			if (v4v_virq_ack(w[i]) == -EPIPE)
				hfail("virq", EPIPE);
		}
		if (first)
			hready(h); /* every ring full, every sender waiting */
		for (unsigned r = 0; r < NR; r++) {
			struct v4v_msg m;
			if (v4v_rx_peek(rx[r], &m) == 1)
				v4v_rx_consume(rx[r], &m);
			if ((e = v4v_notify(vd, NULL, 0)))
				hfail("notify", -e);
			n++;
		}
		v4v_virq_ack(vd);
		hcount(h, n);
	}
}

/*
 * (e) the control socket: connect, create a domain, drop its fd (the
 * domain dies), hang up; again and again.  No domain can do this (the
 * control socket is the admin's alone): it measures what an admin's
 * runaway script costs the domains.
 */
static void m_ctl(struct hostile *h)
{
	hready(h);
	for (;;) {
		char *body;
		int fd = -1;
		if (ctl_request("domain create auto - fd", &body, &fd) == 0 && fd >= 0)
			close(fd);
		free(body);
		hcount(h, 1);
	}
}

struct misb {
	const char *name;
	unsigned ndom; /* domains it needs: the misbehaving one, its victim */
	void (*run)(struct hostile *h);
	const char *what;
};

static const struct misb misbs[NB_COUNT] = {
    [NB_ALONE] = {"alone", 0, NULL, "nobody else"},
    [NB_SPIN] = {"spin", 0, m_spin, "control: burns a core, never calls v4vd"},
    [NB_FLOOD] = {"flood", 2, m_flood, "16 sockets flood a third domain's 4 rings"},
    [NB_HCALL] = {"hcall", 2, m_hcall, "8 channels, 4 deep: useless and bad requests"},
    [NB_CHURN] = {"churn", 2, m_churn, "ring register/unregister, stream connect/close"},
    [NB_WAIT] = {"waiters", 2, m_wait, "32 senders blocked on each of 8 full rings"},
    [NB_CTL] = {"ctl", 0, m_ctl, "admin: control connections creating domains"},
};

const char *neighbour_name(unsigned m)
{
	return misbs[m].name;
}

/* ---- the measurement ------------------------------------------------------ */

static void domain_drop(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* Start misbehaviour m; returns its pid (0 for none), or -1 with err. */
static pid_t hostile_start(unsigned m, struct hostile *h, char *err, size_t cap)
{
	int rd[2];
	char c;
	h->dfd[0] = h->dfd[1] = -1;
	for (unsigned i = 0; i < misbs[m].ndom; i++)
		h->dfd[i] = domain_create(&h->domid[i]);
	if (!misbs[m].run)
		return 0;
	if (pipe2(rd, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		close(rd[0]);
		h->ready = rd[1];
		misbs[m].run(h);
		_exit(1);
	}
	close(rd[1]);
	struct pollfd p = {.fd = rd[0], .events = POLLIN};
	bool ok = poll(&p, 1, 10000) == 1 && read(rd[0], &c, 1) == 1;
	close(rd[0]);
	if (!ok) {
		snprintf(err, cap, "the misbehaving domain did not start");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

/* Stop it; false (and err) if it had stopped by itself. */
static bool hostile_stop(pid_t pid, char *err, size_t cap)
{
	int st = 0;
	bool alive = pid <= 0 || waitpid(pid, &st, WNOHANG) == 0;
	if (pid > 0 && alive) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	if (!alive && !*err)
		snprintf(err, cap, "the misbehaving domain stopped (status %#x) mid-measurement",
			 st);
	return alive;
}

/* The bystander pair, fresh: ping-pong p50, then throughput.  False (and
 * err) when a measurement failed. */
static bool bystander(double *tput, double *p50, struct result *tres, char *err, size_t cap)
{
	const struct transport *t = &transports[transport_index("v4v-dgram")];
	struct result lres = {0};
	struct rec lat = {0};
	*tres = (struct result){0};
	measure(t, W_LATENCY, NB_SIZE, 1, opt.secs, &lres, &lat);
	if (!*lres.err)
		measure(t, W_THROUGHPUT, NB_SIZE, 1, opt.secs, tres, NULL);
	if (*lres.err || *tres->err) {
		if (!*err)
			snprintf(err, cap, "%s", *lres.err ? lres.err : tres->err);
		return false;
	}
	*tput = tres->value;
	*p50 = lat.p50;
	tres->secs += lres.secs;
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One reading with misbehaviour m under way: its throughput and p50 and
 * the misbehaving process's rate.  False (and err) on a failure. */
static bool with_hostile(unsigned m, double *tput, double *p50, double *rate, struct result *tres,
			 char *err, size_t cap)
{
	static _Atomic uint64_t *ops;
	struct hostile h = {.ready = -1};
	bool ok = false;
	if (!ops) {
		ops = mmap(NULL, sizeof(*ops), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			   -1, 0);
		if (ops == MAP_FAILED)
			die("mmap: %s", strerror(errno));
	}
	atomic_store(ops, 0);
	h.ops = ops;
	pid_t pid = hostile_start(m, &h, err, cap);
	if (pid > 0) {
		noisy = true;
		double t0 = now();
		uint64_t n0 = atomic_load(ops);
		ok = bystander(tput, p50, tres, err, cap);
		*rate = (double)(atomic_load(ops) - n0) / (now() - t0);
		noisy = false;
		ok &= hostile_stop(pid, err, cap);
	}
	domain_drop(h.dfd[0]);
	domain_drop(h.dfd[1]);
	/* What the misbehaviour left behind goes before the next reading. */
	v4vd_domains_left();
	return ok;
}

/*
 * One condition: opt.nb_reps times, the bystander alone and then (unless m
 * is NB_ALONE) again with misbehaviour m under way; the medians.  Each
 * misbehaviour has its own readings alone, interleaved with its readings
 * with, so that the ratio is not the drift of the machine's other load
 * between conditions.  Fills res (value: throughput with; p50 with; the
 * figures alone; the ratios) or res->err.
 */
void neighbour_step(unsigned m, struct result *res)
{
	enum { MAXR = 16 };
	double at[MAXR], ap[MAXR], wt[MAXR], wp[MAXR], rate[MAXR];
	unsigned reps = opt.nb_reps < MAXR ? opt.nb_reps : MAXR;
	struct result tres;

	res->misb = misbs[m].name;
	res->misb_what = misbs[m].what;
	res->hostile_rate = res->p50_ratio = NAN;
	for (unsigned k = 0; k < reps; k++) {
		if (!bystander(&at[k], &ap[k], &tres, res->err, sizeof(res->err)))
			return;
		wt[k] = at[k];
		wp[k] = ap[k];
		rate[k] = NAN;
		if (m != NB_ALONE &&
		    !with_hostile(m, &wt[k], &wp[k], &rate[k], &tres, res->err, sizeof(res->err)))
			return;
	}
	res->alone_value = median(at, reps);
	res->alone_p50 = median(ap, reps);
	res->value = median(wt, reps);
	res->p50 = median(wp, reps);
	res->hostile_rate = median(rate, reps);
	res->unit = "msg/s";
	res->mbps = res->value * NB_SIZE / 1e6;
	res->cpu = tres.cpu;
	res->cpu_v4vd = tres.cpu_v4vd;
	res->secs = tres.secs;
	res->pairs = reps;
	res->ratio = res->alone_value > 0 ? res->value / res->alone_value : NAN;
	res->p50_ratio = res->alone_p50 > 0 ? res->p50 / res->alone_p50 : NAN;
}

bool neighbour_target_met(const struct result *r)
{
	return r->ratio >= NB_TPUT_MIN && r->p50_ratio <= NB_P50_MAX;
}

void print_neighbour(void)
{
	char v[32], va[32], p[32], pa[32], rate[32], tr[32], pr[32];
	bool any = false;
	for (unsigned i = 0; i < nresults; i++) {
		const struct result *r = &results[i];
		if (r->w != W_NEIGHBOUR)
			continue;
		if (!any)
			printf("%snoisy neighbour: a v4v-dgram pair, %d-byte datagrams, alone and "
			       "while "
			       "another domain misbehaves\n"
			       "%-8s %8s %8s %6s %7s %7s %6s %9s %5s %-6s  %s\n",
			       i ? "\n" : "", NB_SIZE, "misb.", "msg/s", "alone", "ratio", "p50 us",
			       "alone", "ratio", "its ops/s", "v4vd%", "target", "misbehaviour");
		any = true;
		if (*r->err) {
			printf("%-8s FAILED: %s\n", r->misb, r->err);
			continue;
		}
		fmt_num(v, sizeof(v), r->value);
		fmt_num(va, sizeof(va), r->alone_value);
		fmt_num(p, sizeof(p), r->p50);
		fmt_num(pa, sizeof(pa), r->alone_p50);
		fmt_num(rate, sizeof(rate), r->hostile_rate);
		snprintf(tr, sizeof(tr), isnan(r->ratio) ? "-" : "%.2f", r->ratio);
		snprintf(pr, sizeof(pr), isnan(r->p50_ratio) ? "-" : "%.2f", r->p50_ratio);
		printf("%-8s %8s %8s %6s %7s %7s %6s %9s %5.0f %-6s  %s\n", r->misb, v, va, tr, p,
		       pa, pr, rate, r->cpu_v4vd,
		       r->misb == misbs[NB_SPIN].name ? "-"
		       : neighbour_target_met(r)      ? "ok"
						      : "MISSED",
		       r->misb_what);
	}
	if (any)
		printf("medians of %u readings each, alone and with interleaved; ratio: with / "
		       "alone.\ntarget (issue 8): throughput ratio >= %.2f and p50 ratio <= %.2f.  "
		       "its ops/s: what the\nmisbehaving process got done.  v4vd%%: in the last "
		       "throughput reading.\n",
		       opt.nb_reps, NB_TPUT_MIN, NB_P50_MAX);
	if (any && opt.repeat > 1)
		printf("--repeat %u: each column is its own median over the rounds (a ratio's "
		       "is that of\nthe rounds' ratios); the targets table below has their "
		       "min-max.\n",
		       opt.repeat);
}
