/* SPDX-License-Identifier: MIT */
/*
 * v4vd dies by SIGKILL under load, and a new one starts on the same
 * runtime directory.
 *
 * Before: four domain processes; 0 streams to 1 (1 stops reading, so 0
 * blocks in send), 1 then sleeps in poll on its VIRQ fd, 2 and 3 hold a
 * connection and both block in recv.  When v4vd dies, every one of those
 * calls must return an error (EPIPE) promptly, and the VIRQ fd must poll
 * readable.  The old handle stays dead: every call on it says EPIPE, even
 * once a new v4vd runs.
 *
 * After: the same processes (not restarted) get fresh domains from the new
 * v4vd (domain fds passed over a socket), attach, build new connections and
 * move verified data.  Nothing of the old v4vd survives: domains, rings,
 * names are gone, and the old domain fds are useless.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "t.h"

#define NDOM	  4
#define PORT	  7
#define BULK	  (1u << 20)
#define GUARD_MS  20000
#define PROMPT_NS 1000000000LL /* "promptly": under a second */

#define CCHECK(cond)                                                                               \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "child %u: %s:%d: check failed: %s (errno %s)\n", me,      \
				__FILE__, __LINE__, #cond, strerror(errno));                       \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

static unsigned me;
static uint16_t domid[NDOM];

struct report {
	int32_t err;	   /* what the blocked call returned (errno) */
	int64_t when_ns;   /* when it returned */
	int32_t again_err; /* the same call once more */
	int32_t virq_readable;
	int64_t virq_ns;  /* when the VIRQ fd was seen readable */
	int64_t close_ns; /* how long v4v_sock_close took on the dead socket */
};

struct renew {
	uint16_t domid[NDOM];
};

static uint8_t pat(unsigned from, uint64_t k)
{
	return (uint8_t)(k * 7 + from * 31 + (k >> 11));
}

static void tell(int ctl, char c)
{
	CCHECK(write(ctl, &c, 1) == 1);
}

static void expect(int ctl, char c)
{
	struct pollfd p = {.fd = ctl, .events = POLLIN};
	char got;
	CCHECK(poll(&p, 1, GUARD_MS) == 1);
	CCHECK(read(ctl, &got, 1) == 1 && got == c);
}

/* The pair a process is in: 0-1 and 2-3; the even one dials. */
static unsigned peer_of(unsigned i)
{
	return i ^ 1;
}

static int connect_or_accept(struct v4v_domain *d, int ctl, int *listener)
{
	struct v4v_addr a = {.aport = PORT, .domain_id = V4V_DOMID_ANY};
	int s = v4v_socket(d, V4V_SOCK_STREAM, 0);
	CCHECK(s >= 0);
	if (me % 2) {
		CCHECK(v4v_bind(s, &a) == 0 && v4v_listen(s, 1) == 0);
		tell(ctl, 'L');
		int c = v4v_accept(s, NULL);
		CCHECK(c >= 0);
		*listener = s;
		return c;
	}
	tell(ctl, 'L');
	expect(ctl, 'G'); /* the listener is up */
	a.domain_id = domid[peer_of(me)];
	CCHECK(v4v_connect(s, &a) == 0);
	*listener = -1;
	return s;
}

static void recv_bulk(int s, uint64_t n)
{
	static uint8_t buf[65536];
	for (uint64_t got = 0; got < n;) {
		ssize_t r = v4v_recv(s, buf, sizeof(buf) < n - got ? sizeof(buf) : n - got, 0);
		CCHECK(r > 0);
		for (ssize_t i = 0; i < r; i++)
			CCHECK(buf[i] == pat(peer_of(me), got + (uint64_t)i));
		got += (uint64_t)r;
	}
}

static void send_bulk(int s, uint64_t n)
{
	static uint8_t buf[65536];
	for (uint64_t sent = 0; sent < n;) {
		size_t k = sizeof(buf) < n - sent ? sizeof(buf) : n - sent;
		for (size_t i = 0; i < k; i++)
			buf[i] = pat(me, sent + i);
		ssize_t r = v4v_send(s, buf, k, 0);
		CCHECK(r > 0);
		sent += (uint64_t)r;
	}
}

static void child(unsigned idx, int domain_fd, int ctl)
{
	me = idx;
	struct v4v_domain *d;
	struct report rep = {0};
	static uint8_t buf[65536];
	int l;
	ssize_t r;

	CCHECK(v4v_open_fd(domain_fd, &d) == 0);
	int s = connect_or_accept(d, ctl, &l);

	/* Load, then the blocking call v4vd's death must interrupt. */
	switch (me) {
	case 0:
		tell(ctl, 'R');
		for (uint64_t sent = 0;; sent += (uint64_t)r) {
			for (size_t i = 0; i < sizeof(buf); i++)
				buf[i] = pat(me, sent + i);
			if ((r = v4v_send(s, buf, sizeof(buf), 0)) < 0)
				break;
		}
		rep.err = errno;
		rep.when_ns = t_now_ns();
		rep.again_err = v4v_send(s, buf, 1, 0) < 0 ? errno : 0;
		break;
	case 1:
		recv_bulk(s, BULK);
		tell(ctl, 'R'); /* and read no more: 0 blocks in send */
		for (;;) {
			struct pollfd p = {.fd = v4v_virq_fd(d), .events = POLLIN};
			CCHECK(poll(&p, 1, GUARD_MS) == 1);
			int e = v4v_virq_ack(d);
			if (e == 0)
				continue; /* an ordinary signal */
			rep.err = -e;
			rep.when_ns = t_now_ns();
			break;
		}
		rep.again_err = v4v_recv(s, buf, 1, MSG_DONTWAIT) < 0 ? errno : 0;
		break;
	case 2:
	case 3:
		if (me == 2)
			CCHECK(v4v_send(s, "x", 1, 0) == 1);
		else
			CCHECK(v4v_recv(s, buf, 1, 0) == 1);
		tell(ctl, 'R');
		CCHECK(v4v_recv(s, buf, sizeof(buf), 0) < 0);
		rep.err = errno;
		rep.when_ns = t_now_ns();
		rep.again_err = v4v_recv(s, buf, 1, 0) < 0 ? errno : 0;
		break;
	}

	/* The handle is dead, and says so everywhere. */
	struct pollfd p = {.fd = v4v_virq_fd(d), .events = POLLIN};
	/* Bounded wait: v4vd's fds close one by one as it dies, and the
	 * socket's may have gone before the channel the VIRQ fd watches. */
	rep.virq_readable = poll(&p, 1, GUARD_MS) == 1 && (p.revents & POLLIN);
	rep.virq_ns = t_now_ns();
	CCHECK(v4v_virq_ack(d) == -EPIPE);
	CCHECK(v4v_notify(d, NULL, 0) == -EPIPE);
	struct v4v_addr to = {.aport = PORT, .domain_id = domid[peer_of(me)]};
	struct iovec iov = {buf, 1};
	CCHECK(v4v_sendv(d, 1, &to, &iov, 1, 0) == -EPIPE);
	struct v4v_rx *rx;
	CCHECK(v4v_ring_register(d, 99, V4V_DOMID_ANY, 4096, 0, &rx) == -EPIPE);
	int s2 = v4v_socket(d, V4V_SOCK_DGRAM, 0);
	CCHECK(s2 >= 0);
	struct v4v_addr any = {.aport = 99, .domain_id = V4V_DOMID_ANY};
	CCHECK(v4v_bind(s2, &any) == -1 && errno == EPIPE);
	CCHECK(v4v_sock_close(s2) == 0);
	/* Closing the dead sockets does not wait for the dead v4vd. */
	int64_t t0 = t_now_ns();
	CCHECK(v4v_sock_close(s) == 0);
	if (l >= 0)
		CCHECK(v4v_sock_close(l) == 0);
	rep.close_ns = t_now_ns() - t0;
	CCHECK(write(ctl, &rep, sizeof(rep)) == sizeof(rep));

	/* A new v4vd: a new domain for this same process. */
	struct renew rn;
	int fd = -1;
	unsigned nfds = 0;
	CCHECK(poll(&(struct pollfd){.fd = ctl, .events = POLLIN}, 1, GUARD_MS) == 1);
	CCHECK(v4v_recv_fds(ctl, &rn, sizeof(rn), &fd, 1, &nfds, 0) == sizeof(rn) && nfds == 1);
	memcpy(domid, rn.domid, sizeof(domid));
	/* Still dead: the old handle belongs to the old v4vd. */
	CCHECK(v4v_notify(d, NULL, 0) == -EPIPE);
	/* The old domain fd is useless: nobody is on the other end. */
	struct v4v_domain *d0;
	CCHECK(v4v_open_fd(domain_fd, &d0) == -EPIPE);
	v4v_close(d);
	close(domain_fd);

	struct v4v_domain *d2;
	CCHECK(v4v_open_fd(fd, &d2) == 0);
	CCHECK(v4v_domid(d2) == domid[me]);
	s = connect_or_accept(d2, ctl, &l);
	if (me % 2) {
		recv_bulk(s, BULK);
		CCHECK(v4v_recv(s, buf, 1, 0) == 0); /* and the end of the stream */
	} else {
		send_bulk(s, BULK);
	}
	CCHECK(v4v_sock_close(s) == 0);
	if (l >= 0)
		CCHECK(v4v_sock_close(l) == 0);
	tell(ctl, 'D');
	v4v_close(d2);
	close(fd);
	_exit(0);
}

/* ---- the parent --------------------------------------------------------- */

static pid_t pid[NDOM];

static void kill_children(void)
{
	t_kill_pids(pid, NDOM);
}

static void from(int fd, void *m, size_t n)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	CHECK(poll(&p, 1, 2 * GUARD_MS) == 1);
	CHECK_EQ(read(fd, m, n), (ssize_t)n);
}

static void want(int fd, char c)
{
	char got;
	from(fd, &got, 1);
	CHECK_EQ(got, c);
}

/* The listeners go first, then the dialers are let go. */
static void pairs_meet(const int ctl[NDOM])
{
	for (unsigned i = 0; i < NDOM; i++)
		want(ctl[i], 'L');
	for (unsigned i = 0; i < NDOM; i += 2)
		CHECK_EQ(write(ctl[i], "G", 1), 1);
}

/* Whether a ring of domain dom holds unread data (`v4vctl rings`: rx != tx). */
static bool ring_has_data(uint16_t dom)
{
	struct t_ring_row r;
	for (unsigned i = 0; t_ring_row_at(i, &r); i++)
		if (r.domid == dom && r.rx != r.tx)
			return true;
	return false;
}

static void v4vd_restart(void)
{
	int ctl[NDOM];
	pid_t old = t_v4vd_start(NULL);

	atexit(kill_children);
	t_spawn_domains(NDOM, NULL, SOCK_SEQPACKET, child, pid, domid, ctl);
	pairs_meet(ctl);
	for (unsigned i = 0; i < NDOM; i++)
		want(ctl[i], 'R');
	CHECK_EQ(t_ctl_rows("domains"), NDOM);
	/* 1 has stopped reading; what 0 sends since must be in its ring
	 * before the crash, for 1 to read it after. */
	for (int w = 0; !ring_has_data(domid[1]); w++) {
		CHECK(w < 5000);
		poll(NULL, 0, 1);
	}

	/* The crash. */
	int64_t t_kill = t_now_ns();
	CHECK_EQ(kill(old, SIGKILL), 0);
	int st;
	CHECK_EQ(waitpid(old, &st, 0), old);
	for (unsigned i = 0; i < NDOM; i++) {
		static const char *const what[NDOM] = {
		    "send (blocked, ring full)",
		    "poll on the VIRQ fd",
		    "recv (blocked)",
		    "recv (blocked)",
		};
		struct report rep;
		from(ctl[i], &rep, sizeof(rep));
		double ms = (rep.when_ns - t_kill) / 1e6;
		fprintf(stderr,
			"domain %u: %s -> %s after %.1f ms; again -> %s; VIRQ fd %s "
			"after %.1f ms; close %.1f ms\n",
			i, what[i], strerror(rep.err), ms,
			rep.again_err ? strerror(rep.again_err) : "success",
			rep.virq_readable ? "readable" : "NOT readable",
			(rep.virq_ns - t_kill) / 1e6, rep.close_ns / 1e6);
		CHECK_EQ(rep.err, EPIPE);
		/* Data already in a ring is this process's memory: 1 can still
		 * read what 0 sent before the crash.  Anything else: EPIPE. */
		CHECK_EQ(rep.again_err, i == 1 ? 0 : EPIPE);
		CHECK(rep.virq_readable);
		CHECK(rep.virq_ns - t_kill < PROMPT_NS);
		CHECK(rep.when_ns - t_kill < PROMPT_NS);
		CHECK(rep.close_ns < PROMPT_NS);
	}

	/* A new v4vd on the same runtime directory: it starts clean. */
	t_v4vd_start(NULL);
	CHECK_EQ(t_ctl_rows("domains"), 0);
	CHECK_EQ(t_ctl_rows("rings"), 0);
	struct renew rn;
	int nfd[NDOM];
	for (unsigned i = 0; i < NDOM; i++)
		nfd[i] = t_domain_fd(NULL, &rn.domid[i]);
	for (unsigned i = 0; i < NDOM; i++) {
		CHECK_EQ(v4v_send_fds(ctl[i], &rn, sizeof(rn), &nfd[i], 1, 0), (ssize_t)sizeof(rn));
		close(nfd[i]);
	}
	pairs_meet(ctl);
	for (unsigned i = 0; i < NDOM; i++) {
		want(ctl[i], 'D');
		CHECK_EQ(waitpid(pid[i], &st, 0), pid[i]);
		pid[i] = 0;
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		close(ctl[i]);
	}
	for (int i = 0; i < GUARD_MS && t_ctl_rows("domains"); i++)
		poll(NULL, 0, 1);
	CHECK_EQ(t_ctl_rows("domains"), 0);
}

static const struct t_case cases[] = {
    T_CASE(v4vd_restart),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
