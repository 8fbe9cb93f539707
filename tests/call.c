/* SPDX-License-Identifier: MIT */
/*
 * The call area (docs/ARCHITECTURE.md, "The call area"): calls without fds
 * go through shared memory, a parked area is woken by a kick, a domain
 * that writes anything at all into its area gets errors and harms nobody,
 * and a caller never waits for ever on a v4vd that died.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
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
 * long, then a kick.  Returns the reply's ret once done says so. */
static long raw_call(struct v4v_domain *d, const void *req, size_t n, uint32_t len)
{
	struct v4v_call_area *a = d->area;
	uint32_t seq = ++d->seq;
	memcpy(a->req, req, n);
	v4v_store_relaxed(&a->req_len, len);
	v4v_store_release(&a->sub, seq);
	struct v4v_req_hdr kick = {.op = V4V_OP_CALL_KICK, .seq = seq};
	CHECK_EQ(send(d->chan, &kick, sizeof(kick), MSG_NOSIGNAL), sizeof(kick));
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
	for (int i = 0; i < 200; i++)
		CHECK_EQ(v4v_sendv(a, 1, &dst, &iov, 1, 0), 4);
	CHECK_EQ(v4v_notify(b, NULL, 0), 0);
	CHECK_EQ(t_stat("calls_shm") - shm0, 201);
	CHECK_EQ(t_stat("requests") - req0, 201);
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

/*
 * v4vd dies: a caller whose area it was polling (no kick to fail) and one
 * whose area was parked (the kick fails) both get EPIPE, not a wait for
 * ever.
 */
static void v4vd_dies(void)
{
	pid_t pid = t_v4vd_start(NULL);
	struct v4v_domain *parked = t_domain("p"), *polled = t_domain("q");
	CHECK_EQ(v4v_notify(parked, NULL, 0), 0);
	wait_parked(parked);
	CHECK_EQ(v4v_notify(polled, NULL, 0), 0);
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, NULL, 0) == pid);
	CHECK_EQ(v4v_notify(polled, NULL, 0), -EPIPE);
	CHECK_EQ(v4v_notify(parked, NULL, 0), -EPIPE);
	t_domains_close();
}

/* A process that exits while v4vd polls its area: the area leaves the
 * polled list with its channel (under ASan a use after free is fatal). */
static void exit_while_polled(void)
{
	t_v4vd_start(NULL);
	for (int i = 0; i < 8; i++) {
		pid_t c = fork();
		CHECK(c >= 0);
		if (c == 0) {
			struct v4v_domain *d = t_domain(NULL);
			for (int k = 0; k < 50; k++)
				if (v4v_notify(d, NULL, 0))
					_exit(1);
			_exit(0); /* no v4v_close: as a crash would */
		}
		t_wait_ok(c);
	}
	int64_t end = t_now_ns() + WAIT_MS * 1000000ll;
	while (t_ctl_rows("domains") != 0)
		CHECK(t_now_ns() < end && usleep(1000) == 0);
	CHECK_EQ(t_stat("procs"), 0);
}

static const struct t_case cases[] = {
    T_CASE(calls_in_area), T_CASE(parked_area_kicked), T_CASE(hostile_area),
    T_CASE(v4vd_dies),	   T_CASE(exit_while_polled),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
