/* SPDX-License-Identifier: MIT */
/*
 * Random datagram traffic between several domains, each a process of its
 * own.  Every message is a function of (seed, sender, seq): the receiver
 * recomputes its destination, length and bytes, so it can tell a lost,
 * duplicated, misrouted, mis-stamped or corrupted message.  Senders that
 * get -EAGAIN sleep on their VIRQ; receivers notify after consuming.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t.h"

#define NDOM	  4
#define NMSG	  3000
#define MAXPAY	  2000
#define PORT	  100
#define SRC_PORT  1000 /* + sender index */
#define WILD_LEN  8192
#define EXACT_LEN 4096
#define GUARD_MS  20000 /* a child stuck this long has failed */

/* In a child: report and leave without the parent's atexit handlers. */
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
static unsigned me; /* this child's index */

struct report {
	uint32_t got_from[NDOM];
	uint32_t sent, eagain;
};

static uint64_t msg_key(unsigned from, uint32_t seq)
{
	return t_mix(seed ^ t_mix((uint64_t)from << 32 | seq));
}

/* Destination index: any domain but the sender. */
static unsigned msg_dst(unsigned from, uint32_t seq)
{
	unsigned k = (unsigned)(t_mix(msg_key(from, seq) ^ 1) % (NDOM - 1));
	return k >= from ? k + 1 : k;
}

static size_t msg_len(unsigned from, uint32_t seq)
{
	return (size_t)(t_mix(msg_key(from, seq) ^ 2) % (MAXPAY + 1));
}

static void msg_fill(uint8_t *p, unsigned from, uint32_t seq, size_t n)
{
	t_fill(p, n, msg_key(from, seq));
}

/* The domain whose messages land in j's exact ring. */
static unsigned partner_of(unsigned j)
{
	return (j + 1) % NDOM;
}

struct rxstate {
	uint8_t seen[NDOM][NMSG];
	struct report rep;
	uint32_t got;
};

/* Check and consume everything in r; returns messages taken. */
static unsigned drain(struct v4v_rx *r, bool exact, struct rxstate *st)
{
	static uint8_t got[MAXPAY], want[MAXPAY];
	struct v4v_msg m;
	unsigned n = 0;
	int e;

	while ((e = v4v_rx_peek(r, &m)) == 1) {
		unsigned from = t_index_of(domid, NDOM, m.source.domain_id);
		uint32_t seq = m.message_type;
		CCHECK(from < NDOM && from != me);
		CCHECK(m.source.aport == SRC_PORT + from);
		CCHECK(seq < NMSG);
		CCHECK(msg_dst(from, seq) == me);
		/* Routing: the partner's messages go to the exact ring only. */
		CCHECK(exact == (from == partner_of(me)));
		CCHECK(m.len == msg_len(from, seq));
		CCHECK(v4v_msg_read(&m, got, sizeof(got)) == m.len);
		msg_fill(want, from, seq, m.len);
		CCHECK(memcmp(got, want, m.len) == 0);
		CCHECK(!st->seen[from][seq]);
		st->seen[from][seq] = 1;
		st->rep.got_from[from]++;
		st->got++;
		v4v_rx_consume(r, &m);
		n++;
	}
	CCHECK(e == 0);
	return n;
}

static uint32_t expected(unsigned from, unsigned to)
{
	uint32_t n = 0;
	for (uint32_t seq = 0; seq < NMSG; seq++)
		n += msg_dst(from, seq) == to;
	return n;
}

static void child(unsigned idx, int domain_fd, int report_fd)
{
	me = idx;
	static struct rxstate st;
	static uint8_t buf[MAXPAY];
	struct v4v_domain *d;
	struct v4v_rx *wild, *exact;
	uint32_t need = 0, seq = 0;

	CCHECK(v4v_open_fd(domain_fd, &d) == 0);
	CCHECK(v4v_ring_register(d, PORT, V4V_DOMID_ANY, WILD_LEN, 0, &wild) == 0);
	CCHECK(v4v_ring_register(d, PORT, domid[partner_of(me)], EXACT_LEN, 0, &exact) == 0);
	/* Everyone's rings must exist before anyone sends: barrier on the pipe. */
	CCHECK(write(report_fd, "r", 1) == 1);
	char go;
	CCHECK(read(report_fd, &go, 1) == 1);
	for (unsigned k = 0; k < NDOM; k++)
		if (k != me)
			need += expected(k, me);

	struct pollfd pfd = {.fd = v4v_virq_fd(d), .events = POLLIN};
	while (seq < NMSG || st.got < need) {
		unsigned progress = drain(wild, false, &st) + drain(exact, true, &st);
		/* Freed space: let v4vd wake senders waiting on our rings. */
		if (progress)
			CCHECK(v4v_notify(d, NULL, 0) == 0);
		for (int burst = 0; burst < 16 && seq < NMSG; burst++) {
			unsigned to = msg_dst(me, seq);
			size_t n = msg_len(me, seq);
			struct v4v_addr dst = {.aport = PORT, .domain_id = domid[to]};
			struct iovec iov = {buf, n};
			msg_fill(buf, me, seq, n);
			long r = v4v_sendv(d, SRC_PORT + me, &dst, &iov, 1, seq);
			if (r == -EAGAIN) {
				st.rep.eagain++;
				break; /* queued as a waiter: the VIRQ says when */
			}
			if (r != (long)n)
				fprintf(stderr, "child %u: send %u -> %u: %ld\n", me, seq, to, r);
			CCHECK(r == (long)n);
			seq++;
			progress++;
		}
		if (!progress) {
			int pr = poll(&pfd, 1, GUARD_MS);
			if (pr != 1)
				fprintf(stderr, "child %u: stuck: sent %u/%u got %u/%u\n", me, seq,
					NMSG, st.got, need);
			CCHECK(pr == 1);
			CCHECK(v4v_virq_ack(d) == 0);
		}
	}
	st.rep.sent = seq;
	CCHECK(write(report_fd, &st.rep, sizeof(st.rep)) == sizeof(st.rep));
	_exit(0);
}

static void many_domains(void)
{
	int ctl[NDOM];
	pid_t pid[NDOM];

	seed = t_seed();
	t_v4vd_start(NULL);
	const char *names[NDOM];
	char name[NDOM][16];
	for (unsigned i = 0; i < NDOM; i++) {
		snprintf(name[i], sizeof(name[i]), "t%u", i);
		names[i] = name[i];
	}
	t_spawn_domains(NDOM, names, SOCK_STREAM, child, pid, domid, ctl);
	char c;
	for (unsigned i = 0; i < NDOM; i++)
		CHECK(t_read_full(ctl[i], &c, 1, 2 * GUARD_MS) && c == 'r');
	for (unsigned i = 0; i < NDOM; i++)
		CHECK_EQ(write(ctl[i], "g", 1), 1);

	uint32_t total = 0, eagain = 0;
	for (unsigned i = 0; i < NDOM; i++) {
		struct report rep;
		if (!t_read_full(ctl[i], &rep, sizeof(rep), 2 * GUARD_MS)) {
			fprintf(stderr, "child %u sent no report\n", i);
			for (unsigned k = 0; k < NDOM; k++)
				kill(pid[k], SIGKILL);
			exit(1);
		}
		CHECK_EQ(rep.sent, NMSG);
		for (unsigned k = 0; k < NDOM; k++) {
			uint32_t want = k == i ? 0 : expected(k, i);
			if (rep.got_from[k] != want)
				fprintf(stderr, "domain %u got %u from %u, expected %u\n", i,
					rep.got_from[k], k, want);
			CHECK_EQ(rep.got_from[k], want);
			total += rep.got_from[k];
		}
		eagain += rep.eagain;
	}
	for (unsigned i = 0; i < NDOM; i++) {
		int st;
		CHECK_EQ(waitpid(pid[i], &st, 0), pid[i]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	CHECK_EQ(total, NDOM * NMSG);
	fprintf(stderr, "%u messages delivered exactly once, %u EAGAIN waits\n", total, eagain);
}

static const struct t_case cases[] = {
    T_CASE(many_domains),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
