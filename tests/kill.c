/* SPDX-License-Identifier: MIT */
/*
 * A domain dies by SIGKILL in the middle of traffic.  Its domain and rings
 * must vanish from v4vd, the owner of a ring partnered with it must be told,
 * the survivors must keep talking, and once everyone is gone v4vd must hold
 * exactly the fds and mappings it started with.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t.h"

enum { S1, S2, VICTIM, NDOM };

#define PORT	     100 /* everyone's wildcard ring */
#define PARTNER_PORT 300 /* S1's ring whose partner is the victim */
#define RING_LEN     4096
#define MAXPAY	     1500
#define READY_MSGS   200 /* per peer, before the kill */
#define AFTER_MSGS   500 /* each way between the survivors, after it */
#define PHASE2	     0x80000000u
#define GUARD_MS     20000

#define CCHECK(cond)                                                                               \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "child %u: %s:%d: check failed: %s\n", me, __FILE__,       \
				__LINE__, #cond);                                                  \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

static uint64_t seed;
static uint16_t domid[NDOM];
static unsigned me;

struct report {
	uint32_t got_from[NDOM]; /* before and after the kill */
	uint32_t got_after;	 /* phase-2 messages from the other survivor */
	uint32_t sent_after;
	uint32_t partner_gone;	/* PARTNER_GONE events naming the victim */
	uint32_t gone_port;	/* ... and the ring they named */
	uint32_t victim_errors; /* sends to the victim refused after its death */
};

struct peer {
	struct v4v_domain *d;
	int ctl; /* socketpair to the parent */
	struct v4v_rx *rings[2];
	unsigned nrings;
	uint32_t seq[NDOM];	/* next seq to each destination */
	uint32_t next_rx[NDOM]; /* next seq expected from each sender, per phase */
	uint32_t next_rx2[NDOM];
	bool go, victim_dead, reported;
	struct report rep;
};

/* A message is (from, to, tag): tag = seq | PHASE2 when after the kill. */
static uint64_t msg_key(unsigned from, unsigned to, uint32_t tag)
{
	return t_mix(seed ^ t_mix((uint64_t)from << 40 | (uint64_t)to << 32 | tag));
}

static size_t msg_len(unsigned from, unsigned to, uint32_t tag)
{
	return (size_t)(msg_key(from, to, tag) % (MAXPAY + 1));
}

static void msg_fill(uint8_t *p, unsigned from, unsigned to, uint32_t tag, size_t n)
{
	t_fill(p, n, msg_key(from, to, tag));
}

/* ---- the children ------------------------------------------------------- */

static unsigned drain(struct peer *p)
{
	static uint8_t got[MAXPAY], want[MAXPAY];
	struct v4v_msg m;
	unsigned n = 0;
	int e = 0;

	for (unsigned i = 0; i < p->nrings; i++) {
		v4v_port_t port = v4v_rx_addr(p->rings[i]).aport;
		while ((e = v4v_rx_peek(p->rings[i], &m)) == 1) {
			unsigned from = t_index_of(domid, NDOM, m.source.domain_id);
			uint32_t tag = m.message_type;
			CCHECK(from < NDOM && from != me);
			/* In order, none lost, none twice: one sender, one ring. */
			uint32_t *next = tag & PHASE2 ? &p->next_rx2[from] : &p->next_rx[from];
			CCHECK((tag & ~PHASE2) == *next);
			(*next)++;
			CCHECK(port == PORT || (me == S1 && from == VICTIM));
			CCHECK(m.len == msg_len(from, me, tag));
			CCHECK(v4v_msg_read(&m, got, sizeof(got)) == m.len);
			msg_fill(want, from, me, tag, m.len);
			CCHECK(memcmp(got, want, m.len) == 0);
			if (tag & PHASE2) {
				CCHECK(me != VICTIM && from != VICTIM);
				p->rep.got_after++;
			}
			p->rep.got_from[from]++;
			v4v_rx_consume(p->rings[i], &m);
			n++;
		}
		CCHECK(e == 0);
	}
	if (n)
		CCHECK(v4v_notify(p->d, NULL, 0) == 0);
	return n;
}

static void drain_events(struct peer *p)
{
	struct v4v_event ev[16];
	int n;
	while ((n = v4v_events(p->d, ev, 16)) > 0)
		for (int i = 0; i < n; i++)
			if (ev[i].type == V4V_EV_PARTNER_GONE &&
			    ev[i].peer.domain_id == domid[VICTIM]) {
				p->rep.partner_gone++;
				p->rep.gone_port = ev[i].ring.aport;
			}
	CCHECK(n == 0);
}

/* Who this process sends to next; NDOM when it has nothing to send. */
static unsigned next_target(const struct peer *p)
{
	static unsigned rr;
	if (me == VICTIM)
		return rr++ % 2 ? S1 : S2;
	unsigned other = me == S1 ? S2 : S1;
	if (p->go)
		return p->rep.sent_after < AFTER_MSGS ? other : NDOM;
	if (p->victim_dead)
		return other;
	return rr++ % 2 ? other : VICTIM;
}

/* Try one send; returns 1 on progress, 0 when it must wait for the VIRQ. */
static unsigned send_one(struct peer *p)
{
	static uint8_t buf[MAXPAY];
	unsigned to = next_target(p);
	if (to == NDOM)
		return 0;
	uint32_t tag = p->go ? p->rep.sent_after | PHASE2 : p->seq[to];
	size_t n = msg_len(me, to, tag);
	/* The victim sends to S1's ring partnered with it, and to S2's wildcard. */
	struct v4v_addr dst = {
	    .aport = me == VICTIM && to == S1 ? PARTNER_PORT : PORT,
	    .domain_id = domid[to],
	};
	struct iovec iov = {buf, n};
	msg_fill(buf, me, to, tag, n);
	long r = v4v_sendv(p->d, 1, &dst, &iov, 1, tag);
	if (r == (long)n) {
		if (p->go)
			p->rep.sent_after++;
		else
			p->seq[to]++;
		return 1;
	}
	if (r == -EAGAIN)
		return 0;
	/* Only the victim may refuse, and only because it is dead. */
	if (to == VICTIM && (r == -ESRCH || r == -ECONNREFUSED)) {
		p->victim_dead = true;
		p->rep.victim_errors++;
		return 1;
	}
	fprintf(stderr, "child %u: send to %u: %s\n", me, to, strerror((int)-r));
	_exit(1);
}

static bool ready(const struct peer *p)
{
	for (unsigned k = 0; k < NDOM; k++)
		if (k != me && (p->rep.got_from[k] < READY_MSGS || p->seq[k] < READY_MSGS))
			return false;
	return true;
}

static bool finished(const struct peer *p)
{
	if (me == VICTIM || !p->go)
		return false;
	return p->rep.sent_after == AFTER_MSGS && p->rep.got_after == AFTER_MSGS &&
	       (me != S1 || p->rep.partner_gone > 0);
}

static void child(unsigned idx, int domain_fd, int ctl)
{
	me = idx;
	static struct peer p;
	p.ctl = ctl;
	CCHECK(v4v_open_fd(domain_fd, &p.d) == 0);
	CCHECK(v4v_ring_register(p.d, PORT, V4V_DOMID_ANY, RING_LEN, 0, &p.rings[0]) == 0);
	p.nrings = 1;
	if (me == S1) {
		CCHECK(v4v_ring_register(p.d, PARTNER_PORT, domid[VICTIM], RING_LEN, 0,
					 &p.rings[1]) == 0);
		p.nrings = 2;
	}
	char c;
	CCHECK(write(ctl, "r", 1) == 1);	   /* rings up */
	CCHECK(read(ctl, &c, 1) == 1 && c == 's'); /* everyone's are */

	struct pollfd pfd[2] = {
	    {.fd = v4v_virq_fd(p.d), .events = POLLIN},
	    {.fd = ctl, .events = POLLIN},
	};
	while (!finished(&p)) {
		unsigned progress = drain(&p);
		for (int i = 0; i < 8; i++)
			progress += send_one(&p);
		if (!p.reported && ready(&p)) {
			CCHECK(write(ctl, "r", 1) == 1);
			p.reported = true;
		}
		if (poll(&pfd[1], 1, 0) == 1) {
			/* The victim is gone: stop talking to it, switch phase. */
			CCHECK(read(ctl, &c, 1) == 1 && c == 'g');
			p.go = true;
			drain_events(&p);
			progress++;
		}
		if (!progress) {
			CCHECK(poll(pfd, 2, GUARD_MS) > 0);
			if (pfd[0].revents) {
				CCHECK(v4v_virq_ack(p.d) == 0);
				drain_events(&p);
			}
		}
	}
	CCHECK(write(ctl, &p.rep, sizeof(p.rep)) == sizeof(p.rep));
	_exit(0);
}

/* ---- the parent --------------------------------------------------------- */

/* Whether a `v4vctl domains` or `rings` listing has a row for domid. */
static bool listed(const char *what, uint16_t id)
{
	char *list = t_ctl("%s", what), row[16];
	snprintf(row, sizeof(row), "\n%u\t", id);
	bool found = strstr(list, row) != NULL;
	free(list);
	return found;
}

/* What v4vd's fds are, one line, for a failure message. */
static void show_fds(const char *when)
{
	fprintf(stderr, "v4vd fds %s:", when);
	t_v4vd_print_fds();
}

/* Mappings of memfds (rings, staging areas) in v4vd. */

/* Poll (bounded) until cond holds; a timeout is a failure. */
#define WAIT_FOR(cond)                                                                             \
	do {                                                                                       \
		int _i = 0;                                                                        \
		while (!(cond)) {                                                                  \
			if (++_i > GUARD_MS) {                                                     \
				fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__,     \
					__LINE__, #cond);                                          \
				exit(1);                                                           \
			}                                                                          \
			poll(NULL, 0, 1);                                                          \
		}                                                                                  \
	} while (0)

static pid_t pid[NDOM];

static void kill_children(void)
{
	t_kill_pids(pid, NDOM);
}

static void sigkill_mid_traffic(void)
{
	int ctl[NDOM];
	char c;

	seed = t_seed();
	t_v4vd_start(NULL);
	/*
	 * The baseline: no client connection left open in v4vd.  A round trip
	 * first, so the start-up probe's connection is accepted (it could sit
	 * unseen in the listen backlog) and only ours can linger.
	 */
	free(t_ctl("stats"));
	WAIT_FOR(t_v4vd_sockets() == 1);
	int base_fds = t_v4vd_fds(), base_maps = t_v4vd_maps();
	CHECK_EQ(t_v4vd_memfd_maps(), 0);

	static const char *const names[NDOM] = {"s1", "s2", "victim"};
	atexit(kill_children);
	t_spawn_domains(NDOM, names, SOCK_STREAM, child, pid, domid, ctl);
	for (unsigned i = 0; i < NDOM; i++)
		CHECK(t_read_full(ctl[i], &c, 1, 2 * GUARD_MS) && c == 'r');
	for (unsigned i = 0; i < NDOM; i++)
		CHECK_EQ(write(ctl[i], "s", 1), 1);
	/* Everyone has exchanged traffic with everyone, and still is. */
	for (unsigned i = 0; i < NDOM; i++)
		CHECK(t_read_full(ctl[i], &c, 1, 2 * GUARD_MS) && c == 'r');

	int st;
	CHECK_EQ(kill(pid[VICTIM], SIGKILL), 0);
	CHECK_EQ(waitpid(pid[VICTIM], &st, 0), pid[VICTIM]);
	pid[VICTIM] = 0;
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	WAIT_FOR(!listed("domains", domid[VICTIM]));
	CHECK(!listed("rings", domid[VICTIM]));
	CHECK(listed("domains", domid[S1]) && listed("domains", domid[S2]));
	/* S1's ring partnered with the victim is S1's: it stays. */
	CHECK(listed("rings", domid[S1]));

	for (unsigned i = S1; i <= S2; i++)
		CHECK_EQ(write(ctl[i], "g", 1), 1);
	for (unsigned i = S1; i <= S2; i++) {
		struct report rep;
		CHECK(t_read_full(ctl[i], &rep, sizeof(rep), 2 * GUARD_MS));
		CHECK_EQ(rep.got_after, AFTER_MSGS);
		CHECK_EQ(rep.sent_after, AFTER_MSGS);
		CHECK(rep.got_from[VICTIM] >= READY_MSGS);
		if (i == S1) {
			CHECK_EQ(rep.partner_gone, 1);
			CHECK_EQ(rep.gone_port, PARTNER_PORT);
		} else {
			CHECK_EQ(rep.partner_gone, 0);
		}
		CHECK_EQ(waitpid(pid[i], &st, 0), pid[i]);
		pid[i] = 0;
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		close(ctl[i]);
	}
	close(ctl[VICTIM]);

	/* All gone: v4vd is back where it started. */
	WAIT_FOR(t_ctl_rows("domains") == 0);
	CHECK_EQ(t_ctl_rows("rings"), 0);
	WAIT_FOR(t_v4vd_sockets() == 1);
	CHECK_EQ(t_v4vd_memfd_maps(), 0);
	if (t_v4vd_fds() != base_fds)
		show_fds("at the end");
	CHECK_EQ(t_v4vd_fds(), base_fds);
	if (!T_SANITIZED) /* ASan's allocator maps memory it never returns */
		CHECK_EQ(t_v4vd_maps(), base_maps);
}

static const struct t_case cases[] = {
    T_CASE(sigkill_mid_traffic),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
