/* SPDX-License-Identifier: MIT */
/*
 * The call area (docs/ARCHITECTURE.md, "The call area"): calls without fds
 * go through shared memory, a parked area is woken by a kick, a domain
 * that writes anything at all into its area gets errors and harms nobody,
 * and a caller never waits for ever on a v4vd that died.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/common/barrier.h"
#include "../src/lib/lib.h"
#include "t.h"

#define WAIT_MS 10000

/* Wait until v4vd has parked d's area (it does after SPIN_NS idle). */
static void wait_parked(struct v4v_domain *d)
{
	int64_t end = t_now_ns() + WAIT_MS * 1000000ll;
	while (v4v_load_acquire(&d->area->polled))
		CHECK(t_now_ns() < end && usleep(1000) == 0);
}

/* What a domain may put in its area, raw: n bytes of req claimed to be len
 * long, then a kick.  Returns the call's seq. */
static uint32_t raw_submit(struct v4v_domain *d, const void *req, size_t n, uint32_t len)
{
	struct v4v_call_area *a = d->area;
	uint32_t seq = ++d->seq;
	memcpy(a->req, req, n);
	v4v_store_relaxed(&a->req_len, len);
	v4v_store_release(&a->sub, seq);
	struct v4v_req_hdr kick = {.op = V4V_OP_CALL_KICK, .seq = seq};
	CHECK_EQ(send(d->chan, &kick, sizeof(kick), MSG_NOSIGNAL), sizeof(kick));
	return seq;
}

/* raw_submit, then the reply's ret once done says so. */
static long raw_call(struct v4v_domain *d, const void *req, size_t n, uint32_t len)
{
	struct v4v_call_area *a = d->area;
	uint32_t seq = raw_submit(d, req, n, len);
	int64_t end = t_now_ns() + WAIT_MS * 1000000ll;
	while (v4v_load_acquire(&a->done) != seq)
		CHECK(t_now_ns() < end);
	uint32_t rlen = v4v_load_relaxed(&a->reply_len);
	CHECK(rlen >= sizeof(struct v4v_reply) && rlen <= V4V_REPLY_MAX);
	struct v4v_reply r;
	memcpy(&r, a->reply, sizeof(r));
	return (long)r.ret;
}

/* Every call without fds is served from the area, counted once; a ring
 * registration (fds) goes on the channel. */
static void calls_in_area(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	struct v4v_rx *r;
	CHECK_EQ(v4v_ring_register(b, 80, V4V_DOMID_ANY, 65536, 0, &r), 0);
	struct v4v_addr dst = {.aport = 80, .domain_id = v4v_domid(b)};
	struct iovec iov = {"call", 4};
	unsigned long long shm0 = t_stat("calls_shm"), req0 = t_stat("requests");
	unsigned long long k0 = t_stat("kicks_shm");
	for (int i = 0; i < 200; i++)
		CHECK_EQ(v4v_sendv(a, 1, &dst, &iov, 1, 0), 4);
	CHECK_EQ(v4v_notify(b, NULL, 0), 0);
	CHECK_EQ(t_stat("calls_shm") - shm0, 201);
	CHECK_EQ(t_stat("requests") - req0, 201);
	/* A caller kicks only an area v4vd has parked: not every call. */
	CHECK(t_stat("kicks_shm") - k0 < 200);
	struct v4v_rx *r2;
	CHECK_EQ(v4v_ring_register(a, 81, V4V_DOMID_ANY, 4096, 0, &r2), 0);
	CHECK_EQ(t_stat("calls_shm") - shm0, 201);
	CHECK_EQ(t_stat("requests") - req0, 202);
	CHECK_EQ(v4v_ring_unregister(r2), 0);
	CHECK_EQ(v4v_ring_unregister(r), 0);
	t_domains_close();
}

/* An area idle past SPIN_NS is parked (v4vd stops polling it); the next
 * call kicks it, once, and is answered. */
static void parked_area_kicked(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a");
	CHECK_EQ(v4v_notify(a, NULL, 0), 0);
	for (int round = 0; round < 3; round++) {
		wait_parked(a);
		unsigned long long k0 = t_stat("kicks_shm");
		CHECK_EQ(v4v_notify(a, NULL, 0), 0);
		CHECK_EQ(t_stat("kicks_shm") - k0, 1);
	}
	t_domains_close();
}

/* A domain's area holds whatever it writes: each bad request gets its
 * error in the reply, v4vd stays up, the domain's own calls and everyone
 * else's still work. */
static void hostile_area(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *evil = t_domain("evil"), *a = t_domain("a"), *b = t_domain("b");
	union v4v_req_any q;
	unsigned long long bad0 = t_stat("bad_requests");

	memset(&q, 0, sizeof(q));
	q.h.op = V4V_OP_EVENTS;
	CHECK_EQ(raw_call(evil, &q, sizeof(q.h), sizeof(q.h)), 0); /* the raw call works */
	CHECK_EQ(raw_call(evil, &q, sizeof(q.h), 0xffffffffu), -EMSGSIZE);
	CHECK_EQ(raw_call(evil, &q, sizeof(q.h), V4V_REQ_MAX + 1), -EMSGSIZE);
	CHECK_EQ(raw_call(evil, &q, sizeof(q.h), 4), -EINVAL); /* shorter than a header */
	CHECK_EQ(raw_call(evil, &q, sizeof(q.h), sizeof(q.h) + 1), -EINVAL);
	q.h.op = 99;
	CHECK_EQ(raw_call(evil, &q, sizeof(q.h), sizeof(q.h)), -ENOSYS);
	q.h.op = V4V_OP_CALL_KICK; /* the channel's, never served */
	CHECK_EQ(raw_call(evil, &q, sizeof(q.h), sizeof(q.h)), -EINVAL);
	q.attach =
	    (struct v4v_req_attach){.h = {.op = V4V_OP_ATTACH}, .version = V4V_PROTO_VERSION};
	CHECK_EQ(raw_call(evil, &q, sizeof(q.attach), sizeof(q.attach)), -EBADF); /* no fds */
	memset(&q, 0, sizeof(q));
	q.reg.h.op = V4V_OP_REGISTER_RING; /* without its memfd */
	q.reg.ring.len = 4096;
	CHECK_EQ(raw_call(evil, &q, sizeof(q.reg), sizeof(q.reg)), -EBADF);
	memset(&q, 0, sizeof(q));
	q.notify.h.op = V4V_OP_NOTIFY;
	q.notify.nent = 100000;
	CHECK_EQ(raw_call(evil, &q, sizeof(q.notify), sizeof(q.notify)), -E2BIG);
	memset(&q, 0, sizeof(q));
	q.send.h.op = V4V_OP_SENDV; /* a payload past staging, into the area */
	q.send.niov = 1;
	q.send.iov_len[0] = 64;
	q.send.staging_off = V4V_STAGING_SIZE - 32;
	CHECK_EQ(raw_call(evil, &q, sizeof(q.send), sizeof(q.send)), -EFAULT);
	CHECK_EQ(t_stat("bad_requests") - bad0, 10);

	/* Scribbles on v4vd's words change nothing for v4vd: it only writes them. */
	v4v_store_relaxed(&evil->area->done, 12345);
	v4v_store_relaxed(&evil->area->reply_len, 0xffffffffu);
	v4v_store_relaxed(&evil->area->waiting, 1);
	CHECK_EQ(v4v_notify(evil, NULL, 0), 0);

	struct v4v_rx *r;
	CHECK_EQ(v4v_ring_register(b, 80, V4V_DOMID_ANY, 4096, 0, &r), 0);
	struct v4v_addr dst = {.aport = 80, .domain_id = v4v_domid(b)};
	struct iovec iov = {"ok", 2};
	CHECK_EQ(v4v_sendv(a, 1, &dst, &iov, 1, 0), 2);
	CHECK_EQ(v4v_ring_unregister(r), 0);
	t_domains_close();
}

static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * v4vd dies: a caller whose area it was polling (no kick to fail: it
 * sleeps, and notices the channel's hang-up) and one whose area was
 * parked (the kick fails) both get EPIPE, not a wait for ever; also when
 * a signal interrupts the sleep every 5 ms, faster than CALL_CHECK_MS.
 * (The areas' words are set as v4vd would have left them, after its
 * death, so timing cannot change which way each call goes.)
 */
static void v4vd_dies(void)
{
	pid_t pid = t_v4vd_start(NULL);
	struct v4v_domain *parked = t_domain("p"), *polled = t_domain("q");
	CHECK_EQ(v4v_notify(parked, NULL, 0), 0);
	CHECK_EQ(v4v_notify(polled, NULL, 0), 0);
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, NULL, 0) == pid);
	v4v_store_relaxed(&parked->area->polled, 0);
	v4v_store_relaxed(&polled->area->polled, 1);
	struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
	struct itimerval it = {{0, 5000}, {0, 5000}};
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	CHECK_EQ(v4v_notify(polled, NULL, 0), -EPIPE);
	CHECK_EQ(v4v_notify(parked, NULL, 0), -EPIPE);
	it = (struct itimerval){0};
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	t_domains_close();
}

/*
 * A process that exits while v4vd polls its area: the area leaves the
 * polled list with its channel (under ASan a use after free is fatal).
 * The process attaches, stops v4vd, submits a call with its kick and
 * exits; v4vd, continued, reads the kick (the area goes on the list) and
 * the hang-up in one go, whatever the timing.
 */
static void exit_while_polled(void)
{
	pid_t v = t_v4vd_start(NULL);
	for (int i = 0; i < 8; i++) {
		int fd = t_domain_fd(NULL, NULL);
		pid_t c = fork();
		CHECK(c >= 0);
		if (c == 0) {
			struct v4v_domain *d;
			if (v4v_open_fd(fd, &d) || kill(v, SIGSTOP))
				_exit(1);
			struct v4v_req_hdr q = {.op = V4V_OP_EVENTS};
			raw_submit(d, &q, sizeof(q), sizeof(q));
			_exit(0); /* no v4v_close: as a crash would */
		}
		close(fd);
		int st;
		CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
		CHECK(kill(v, SIGCONT) == 0);
	}
	int64_t end = t_now_ns() + WAIT_MS * 1000000ll;
	while (t_ctl_rows("domains") != 0)
		CHECK(t_now_ns() < end && usleep(1000) == 0);
	CHECK_EQ(t_stat("procs"), 0);
}

struct scribble {
	struct v4v_call_area *a;
	_Atomic bool stop;
};

/* Rewrite the request and its length as fast as we can. */
static void *scribbler(void *arg)
{
	struct scribble *sc = arg;
	for (uint64_t x = 1; !sc->stop; x++) {
		uint64_t r = t_mix(x);
		v4v_store_relaxed(&sc->a->req_len, (uint32_t)(r & 1 ? r >> 32 : r % 200));
		sc->a->req[r % (V4V_REQ_MAX / 8)] = t_mix(r);
	}
	return NULL;
}

/* The domain rewrites its area while v4vd serves it: each call is answered
 * (whatever v4vd read), v4vd stays up and others are served. */
static void scribbled_during_calls(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *evil = t_domain("evil"), *a = t_domain("a");
	struct v4v_call_area *ar = evil->area;
	struct scribble sc = {.a = ar};
	pthread_t th;
	CHECK(pthread_create(&th, NULL, scribbler, &sc) == 0);
	union v4v_req_any q;
	memset(&q, 0, sizeof(q));
	for (int i = 0; i < 2000; i++) {
		q.h.op = i % 2 ? V4V_OP_SENDV : V4V_OP_NOTIFY;
		uint32_t seq = raw_submit(evil, &q, sizeof(q.send), sizeof(q.send));
		int64_t end = t_now_ns() + WAIT_MS * 1000000ll;
		while (v4v_load_acquire(&ar->done) != seq)
			CHECK(t_now_ns() < end);
		CHECK(v4v_load_relaxed(&ar->reply_len) <= V4V_REPLY_MAX);
	}
	sc.stop = true;
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_EQ(v4v_notify(a, NULL, 0), 0);
	CHECK_EQ(t_stat("procs"), 2);
	t_domains_close();
}

/* v4vd says in the area from which CPU it polls (a caller there sleeps
 * rather than spin: it could not be answered while it spins), and says
 * it again when it moves.  v4vd is pinned to each CPU in turn. */
static void cpu_named(void)
{
	pid_t v = t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a");
	cpu_set_t all;
	CHECK_EQ(sched_getaffinity(v, sizeof(all), &all), 0);
	for (int cpu = 0, tried = 0; cpu < CPU_SETSIZE && tried < 8; cpu++) {
		if (!CPU_ISSET(cpu, &all))
			continue;
		tried++;
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		CHECK_EQ(sched_setaffinity(v, sizeof(one), &one), 0);
		/* Calls until one is served after the move (the first may
		 * have been on its way). */
		for (int i = 0; i < 3; i++)
			CHECK_EQ(v4v_notify(a, NULL, 0), 0);
		CHECK_EQ(v4v_load_relaxed(&a->area->cpu), (uint32_t)cpu + 1);
	}
	CHECK_EQ(sched_setaffinity(v, sizeof(all), &all), 0);
}

static const struct t_case cases[] = {
    T_CASE(calls_in_area), T_CASE(parked_area_kicked),
    T_CASE(hostile_area),  T_CASE(scribbled_during_calls),
    T_CASE(v4vd_dies),	   T_CASE(exit_while_polled),
    T_CASE(cpu_named),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
