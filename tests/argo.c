/* SPDX-License-Identifier: MIT */
/*
 * Argo's rules, one case per rule or error code (v4v(7), OPERATIONS),
 * against a real v4vd.  Where libv4v checks an argument itself, the case
 * also sends the raw hypercall so that v4vd's own check is what is tested.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/barrier.h"
#include "common/util.h"
#include "core/ring.h"
#include "lib/lib.h"
#include "t.h"

#define WAIT_MS 5000 /* failure guard, never a synchronization delay */

/* ---- helpers ----------------------------------------------------------- */

/* Everything a case opens, released by done() so LeakSanitizer stays quiet. */
static struct v4v_rx *held_rings[256];
static unsigned nrings;

static struct v4v_rx *track(struct v4v_rx *r)
{
	CHECK(nrings < ARRAY_SIZE(held_rings));
	return held_rings[nrings++] = r;
}

/* Unregister a tracked ring; returns what v4v_ring_unregister said. */
static int unreg(struct v4v_rx *r)
{
	for (unsigned i = 0; i < nrings; i++)
		if (held_rings[i] == r) {
			held_rings[i] = held_rings[--nrings];
			return v4v_ring_unregister(r);
		}
	CHECK(!"untracked ring");
	return 0;
}

static void done(void)
{
	while (nrings)
		v4v_ring_unregister(held_rings[--nrings]);
	t_domains_close();
}

/* v4v_ring_register, keeping the ring for done() when it succeeds. */
static int reg(struct v4v_domain *d, v4v_port_t port, uint16_t partner, uint32_t len,
	       uint32_t flags)
{
	struct v4v_rx *r;
	int e = v4v_ring_register(d, port, partner, len, flags, &r);
	if (!e)
		track(r);
	return e;
}

static struct v4v_addr to(uint16_t domid, v4v_port_t port)
{
	return (struct v4v_addr){.aport = port, .domain_id = domid};
}

static struct v4v_rx *ring(struct v4v_domain *d, v4v_port_t port, uint16_t partner, uint32_t len)
{
	struct v4v_rx *r;
	int e = v4v_ring_register(d, port, partner, len, 0, &r);
	if (e) {
		fprintf(stderr, "register %u/%u len %u: %s\n", port, partner, len, strerror(-e));
		exit(1);
	}
	return track(r);
}

static long send_buf(struct v4v_domain *d, v4v_port_t sport, uint16_t domid, v4v_port_t port,
		     const void *buf, size_t n)
{
	struct v4v_addr dst = to(domid, port);
	struct iovec iov = {(void *)buf, n};
	return v4v_sendv(d, sport, &dst, &iov, 1, 0);
}

/* Take the next message out of r (there must be one); returns its length. */
static size_t recv_buf(struct v4v_rx *r, void *buf, size_t cap, struct v4v_msg *m)
{
	CHECK_EQ(v4v_rx_peek(r, m), 1);
	size_t n = v4v_msg_read(m, buf, cap);
	v4v_rx_consume(r, m);
	return n;
}

static void fill(uint8_t *p, size_t n, unsigned salt)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + salt);
}

/* Wait for an event of this type, draining (and skipping) any others. */
static bool get_event(struct v4v_domain *d, uint32_t type, struct v4v_event *out)
{
	for (int round = 0; round < 100; round++) {
		struct v4v_event ev[16];
		int n = v4v_events(d, ev, 16);
		CHECK(n >= 0);
		for (int i = 0; i < n; i++)
			if (ev[i].type == type) {
				*out = ev[i];
				return true;
			}
		if (n == 0 && !t_wait_virq(d, WAIT_MS))
			return false;
	}
	return false;
}

/* A row of `v4vctl rings`: waiters and state of (domid, aport, partner). */
static bool ring_row(uint16_t domid, v4v_port_t aport, uint16_t partner, unsigned *waiters,
		     char state[16])
{
	char want[8] = "any";
	struct t_ring_row r;
	if (partner != V4V_DOMID_ANY)
		snprintf(want, sizeof(want), "%u", partner);
	if (!t_ring_find(domid, aport, want, &r))
		return false;
	*waiters = r.waiters;
	snprintf(state, 16, "%s", r.state);
	return true;
}

static unsigned ring_waiters(uint16_t domid, v4v_port_t aport, uint16_t partner)
{
	unsigned w;
	char st[16];
	CHECK(ring_row(domid, aport, partner, &w, st));
	return w;
}

/* ---- raw hypercalls, for what libv4v would refuse to send ---------------- */

static long raw_call(struct v4v_domain *d, void *req, size_t n, int fd)
{
	union {
		struct v4v_reply r;
		uint8_t raw[V4V_REPLY_MAX];
	} rep;
	long e = v4v__enter(d);
	if (e)
		return e;
	e = v4v__call(d, req, n, fd, &rep, sizeof(rep), NULL);
	v4v__leave(d);
	return e;
}

static long raw_register(struct v4v_domain *d, int fd, v4v_port_t port, uint16_t partner,
			 uint32_t len, uint32_t flags)
{
	struct v4v_req_register q = {
	    .h = {.op = V4V_OP_REGISTER_RING},
	    .ring = {.aport = port, .partner_id = partner, .len = len},
	    .flags = flags,
	};
	return raw_call(d, &q, sizeof(q), fd);
}

static long raw_unregister(struct v4v_domain *d, v4v_port_t port, uint16_t partner)
{
	struct v4v_req_unregister q = {
	    .h = {.op = V4V_OP_UNREGISTER_RING},
	    .aport = port,
	    .partner_id = partner,
	};
	return raw_call(d, &q, sizeof(q), -1);
}

/* A ring memfd of our own making, mapped; the caller registers it. */
static struct v4v_ring *ring_memfd(uint32_t len, int *fd)
{
	*fd = v4v_memfd_sealed("test-ring", V4V_RING_HDR_SIZE + (size_t)len);
	CHECK(*fd >= 0);
	void *p =
	    mmap(NULL, V4V_RING_HDR_SIZE + (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	CHECK(p != MAP_FAILED);
	return p;
}

static uint32_t load_tx(const struct v4v_ring *r)
{
	return v4v_load_acquire(&r->tx_ptr);
}

/* ---- register_ring ------------------------------------------------------ */

static void register_len(void)
{
	static const uint32_t bad[] = {0,	   16, 32, 47, 56, 100, 4104, V4V_RING_MAX_LEN + 16,
				       0xFFFFFFF0u};
	t_v4vd_start(NULL);
	struct v4v_domain *d = t_domain("d");
	int fd;

	/* The library refuses, and so does v4vd when asked directly. */
	ring_memfd(4096, &fd);
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK_EQ(reg(d, 1, V4V_DOMID_ANY, bad[i], 0), -EINVAL);
		CHECK_EQ(raw_register(d, fd, 1, V4V_DOMID_ANY, bad[i], 0), -EINVAL);
	}
	CHECK_EQ(raw_register(d, fd, 2, V4V_DOMID_ANY, 48, 0), 0);
	/* One memory backs one ring (tests/lifetime.c has the attacks). */
	CHECK_EQ(raw_register(d, fd, 3, V4V_DOMID_ANY, 4032, 0), -EBUSY);
	close(fd);
	ring_memfd(4096, &fd);
	CHECK_EQ(raw_register(d, fd, 3, V4V_DOMID_ANY, 4032, 0), 0);
	close(fd);
	CHECK_EQ(reg(d, 4, V4V_DOMID_ANY, 48, 0), 0);
	CHECK_EQ(reg(d, 5, V4V_DOMID_ANY, V4V_RING_MAX_LEN, 0), 0);
	/* Unknown flags and bad partners are refused too. */
	CHECK_EQ(reg(d, 6, V4V_DOMID_ANY, 48, 0x2), -EINVAL);
	CHECK_EQ(reg(d, 6, V4V_DOMID_MAX + 1, 48, 0), -EINVAL);
	/* Nothing refused was registered. */
	CHECK_EQ(raw_unregister(d, 1, V4V_DOMID_ANY), -ENOENT);
	CHECK_EQ(raw_unregister(d, 6, V4V_DOMID_ANY), -ENOENT);
	done();
}

static void register_exist(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *d = t_domain("d");
	uint16_t other;
	int ofd = t_domain_fd("other", &other);

	CHECK_EQ(reg(d, 7, V4V_DOMID_ANY, 4096, V4V_REGISTER_FAIL_EXIST), 0);
	CHECK_EQ(reg(d, 7, V4V_DOMID_ANY, 4096, V4V_REGISTER_FAIL_EXIST), -EEXIST);
	CHECK_EQ(reg(d, 7, V4V_DOMID_ANY, 4096, 0), 0);
	CHECK_EQ(reg(d, 7, V4V_DOMID_ANY, 8192, 0), -EEXIST);
	CHECK_EQ(reg(d, 7, V4V_DOMID_ANY, 2048, 0), -EEXIST);
	/* The partner is part of the key: an exact ring on the same port is new. */
	CHECK_EQ(reg(d, 7, other, 2048, V4V_REGISTER_FAIL_EXIST), 0);
	CHECK_EQ(reg(d, 7, other, 4096, 0), -EEXIST);
	/* The failed attempts did not change the ring. */
	char *list = t_ctl("rings");
	CHECK(strstr(list, "\t7\tany\t4096\t"));
	free(list);
	close(ofd);
	done();
}

static void register_quota(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *d = t_domain("d"), *e = t_domain("e");
	struct v4v_rx *r[V4V_MAX_RINGS];

	for (unsigned i = 0; i < V4V_MAX_RINGS; i++)
		r[i] = ring(d, 1000 + i, V4V_DOMID_ANY, 48);
	CHECK_EQ(reg(d, 5000, V4V_DOMID_ANY, 48, 0), -ENOSPC);
	CHECK_EQ(reg(d, 5000, v4v_domid(e), 48, 0), -ENOSPC);
	/* Re-registering an existing ring is not a new ring. */
	CHECK_EQ(reg(d, 1000, V4V_DOMID_ANY, 48, 0), 0);
	/* The quota is per domain. */
	CHECK_EQ(reg(e, 5000, V4V_DOMID_ANY, 48, 0), 0);
	/* A freed slot can be used again. */
	CHECK_EQ(unreg(r[5]), 0);
	CHECK_EQ(reg(d, 5000, V4V_DOMID_ANY, 48, 0), 0);
	CHECK_EQ(reg(d, 5001, V4V_DOMID_ANY, 48, 0), -ENOSPC);
	done();
}

static void unregister_enoent(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *d = t_domain("d"), *e = t_domain("e");

	CHECK_EQ(raw_unregister(d, 9, V4V_DOMID_ANY), -ENOENT);
	struct v4v_rx *r = ring(d, 9, V4V_DOMID_ANY, 4096);
	/* Another domain cannot name it, nor can the wrong partner key. */
	CHECK_EQ(raw_unregister(e, 9, V4V_DOMID_ANY), -ENOENT);
	CHECK_EQ(raw_unregister(d, 9, v4v_domid(e)), -ENOENT);
	CHECK_EQ(raw_unregister(d, 9, V4V_DOMID_ANY), 0);
	CHECK_EQ(unreg(r), -ENOENT);
	/* Gone means gone: sends are refused. */
	CHECK_EQ(send_buf(e, 1, v4v_domid(d), 9, "x", 1), -ECONNREFUSED);
	done();
}

/* ---- sendv -------------------------------------------------------------- */

static void sendv_esrch(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a");
	uint16_t gone;
	int fd = t_domain_fd("gone", &gone);

	CHECK_EQ(send_buf(a, 1, 0x7000, 80, "x", 1), -ESRCH);
	CHECK_EQ(send_buf(a, 1, V4V_DOMID_ANY, 80, "x", 1), -ESRCH);
	CHECK_EQ(send_buf(a, 1, 0xFFFF, 80, "x", 1), -ESRCH);
	/* A domain that existed and was destroyed is no domain either. */
	CHECK_EQ(send_buf(a, 1, gone, 80, "x", 1), -ECONNREFUSED);
	free(t_ctl("domain destroy %u", gone));
	CHECK_EQ(send_buf(a, 1, gone, 80, "x", 1), -ESRCH);
	close(fd);
	done();
}

static void sendv_econnrefused(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b"), *c = t_domain("c");

	CHECK_EQ(send_buf(a, 1, v4v_domid(b), 80, "x", 1), -ECONNREFUSED);
	/* An exact ring accepts only its partner. */
	ring(b, 80, v4v_domid(c), 4096);
	CHECK_EQ(send_buf(a, 1, v4v_domid(b), 80, "x", 1), -ECONNREFUSED);
	CHECK_EQ(send_buf(c, 1, v4v_domid(b), 80, "x", 1), 1);
	/* Ports are not shared between domains: c has no ring 80. */
	CHECK_EQ(send_buf(a, 1, v4v_domid(c), 80, "x", 1), -ECONNREFUSED);
	done();
}

static void sendv_emsgsize(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	struct v4v_rx *r = ring(b, 80, V4V_DOMID_ANY, 256);
	uint8_t buf[512], got[512];
	struct v4v_msg m;
	uint16_t bid = v4v_domid(b);

	fill(buf, sizeof(buf), 3);
	CHECK_EQ(send_buf(a, 1, bid, 80, buf, 256 - 32 + 1), -EMSGSIZE);
	CHECK_EQ(send_buf(a, 1, bid, 80, buf, 256), -EMSGSIZE);
	/* len - 32 is the largest message, and it fits an empty ring. */
	CHECK_EQ(send_buf(a, 1, bid, 80, buf, 256 - 32), 256 - 32);
	/* Full now: what never fits is still EMSGSIZE, what could fit EAGAIN. */
	CHECK_EQ(send_buf(a, 1, bid, 80, buf, 256 - 32 + 1), -EMSGSIZE);
	CHECK_EQ(send_buf(a, 1, bid, 80, buf, 0), -EAGAIN);
	CHECK_EQ(recv_buf(r, got, sizeof(got), &m), 256 - 32);
	CHECK(memcmp(got, buf, 256 - 32) == 0);
	CHECK_EQ(v4v_rx_peek(r, &m), 0);
	/* A message larger than any ring may be is EMSGSIZE too. */
	static uint8_t huge[V4V_RING_MAX_LEN + 1];
	CHECK_EQ(send_buf(a, 1, bid, 80, huge, sizeof(huge)), -EMSGSIZE);
	done();
}

static void sendv_eagain_wait(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	struct v4v_rx *r = ring(b, 80, V4V_DOMID_ANY, 1024);
	struct v4v_ring *mem = v4v__rx_ring(r);
	uint16_t bid = v4v_domid(b);
	uint8_t buf[100], got[100], before[V4V_RING_HDR_SIZE + 1024];
	struct v4v_msg m;
	int n = 0;
	long e;

	fill(buf, sizeof(buf), 1);
	/* 100-byte payloads take 128-byte slots; 1024 - 16 holds 7 of them. */
	for (; (e = send_buf(a, 1, bid, 80, buf, sizeof(buf))) == 100; n++)
		memcpy(before, mem, sizeof(before));
	CHECK_EQ(e, -EAGAIN);
	CHECK_EQ(n, 7);
	/* Whole message or nothing: the ring, tx_ptr included, is untouched. */
	CHECK_EQ(load_tx(mem), 7 * 128);
	CHECK(memcmp(before, mem, sizeof(before)) == 0);
	CHECK_EQ(ring_waiters(bid, 80, V4V_DOMID_ANY), 1);
	CHECK(!t_wait_virq(a, 0));

	/* The owner frees a slot and says so: the waiting sender is woken. */
	CHECK_EQ(recv_buf(r, got, sizeof(got), &m), 100);
	CHECK_EQ(v4v_notify(b, NULL, 0), 0);
	CHECK(t_wait_virq(a, WAIT_MS));
	CHECK_EQ(ring_waiters(bid, 80, V4V_DOMID_ANY), 0);
	CHECK_EQ(send_buf(a, 1, bid, 80, buf, sizeof(buf)), 100);
	CHECK_EQ(send_buf(a, 1, bid, 80, buf, sizeof(buf)), -EAGAIN);
	for (int i = 0; i < 7; i++) {
		CHECK_EQ(recv_buf(r, got, sizeof(got), &m), 100);
		CHECK(memcmp(got, buf, sizeof(buf)) == 0);
	}
	CHECK_EQ(v4v_rx_peek(r, &m), 0);
	done();
}

static void sendv_ebusy(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *b = t_domain("b"), *filler = t_domain("filler");
	struct v4v_domain *s[V4V_MAX_WAITERS + 1];
	struct v4v_rx *r = ring(b, 80, V4V_DOMID_ANY, 48);
	uint16_t bid = v4v_domid(b);
	uint8_t buf[16] = {0};
	struct v4v_msg m;

	for (unsigned i = 0; i <= V4V_MAX_WAITERS; i++) {
		char name[16];
		snprintf(name, sizeof(name), "s%u", i);
		s[i] = t_domain(name);
	}
	CHECK_EQ(send_buf(filler, 1, bid, 80, buf, 16), 16); /* 48 - 16: full */
	for (unsigned i = 0; i < V4V_MAX_WAITERS; i++)
		CHECK_EQ(send_buf(s[i], 1, bid, 80, buf, 1), -EAGAIN);
	CHECK_EQ(send_buf(s[V4V_MAX_WAITERS], 1, bid, 80, buf, 1), -EBUSY);
	/* A sender already queued is still just waiting. */
	CHECK_EQ(send_buf(s[0], 1, bid, 80, buf, 1), -EAGAIN);
	CHECK_EQ(ring_waiters(bid, 80, V4V_DOMID_ANY), V4V_MAX_WAITERS);

	CHECK_EQ(recv_buf(r, buf, sizeof(buf), &m), 16);
	CHECK_EQ(v4v_notify(b, NULL, 0), 0);
	for (unsigned i = 0; i < V4V_MAX_WAITERS; i++)
		CHECK(t_wait_virq(s[i], WAIT_MS));
	/* All kicks of one batch have landed: the refused one was not queued. */
	CHECK(!t_wait_virq(s[V4V_MAX_WAITERS], 0));
	CHECK_EQ(send_buf(s[V4V_MAX_WAITERS], 1, bid, 80, buf, 1), 1);
	done();
}

static void sendv_iov(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	struct v4v_rx *r = ring(b, 80, V4V_DOMID_ANY, 4096);
	static const size_t lens[V4V_MAX_IOV] = {1, 0, 17, 100, 3, 256, 0, 64};
	uint8_t src[V4V_MAX_IOV][256], want[1024], got[1024];
	struct iovec iov[V4V_MAX_IOV + 1];
	struct v4v_addr dst = to(v4v_domid(b), 80);
	struct v4v_msg m;
	size_t total = 0;

	for (unsigned i = 0; i < V4V_MAX_IOV; i++) {
		fill(src[i], lens[i], i * 50 + 1);
		iov[i] = (struct iovec){src[i], lens[i]};
		memcpy(want + total, src[i], lens[i]);
		total += lens[i];
	}
	iov[V4V_MAX_IOV] = (struct iovec){src[0], 1};
	CHECK_EQ(v4v_sendv(a, 1, &dst, iov, V4V_MAX_IOV, 0xabcd), (long)total);
	CHECK_EQ(recv_buf(r, got, sizeof(got), &m), total);
	CHECK_EQ(m.len, total);
	CHECK_EQ(m.message_type, 0xabcd);
	CHECK(memcmp(got, want, total) == 0);

	CHECK_EQ(v4v_sendv(a, 1, &dst, iov, V4V_MAX_IOV + 1, 0), -EINVAL);
	/* v4vd refuses it as well when the library is bypassed. */
	struct v4v_req_sendv q = {
	    .h = {.op = V4V_OP_SENDV},
	    .dst = dst,
	    .niov = V4V_MAX_IOV + 1,
	};
	CHECK_EQ(raw_call(a, &q, sizeof(q), -1), -EINVAL);
	/* No iov at all is an empty message. */
	CHECK_EQ(v4v_sendv(a, 1, &dst, NULL, 0, 5), 0);
	CHECK_EQ(recv_buf(r, got, sizeof(got), &m), 0);
	CHECK_EQ(m.message_type, 5);
	CHECK_EQ(v4v_rx_peek(r, &m), 0);
	done();
}

static void source_stamped(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b"), *c = t_domain("c");
	struct v4v_rx *r = ring(b, 80, V4V_DOMID_ANY, 4096);
	struct v4v_msg m;
	char got[16];

	CHECK_EQ(send_buf(a, 4321, v4v_domid(b), 80, "from-a", 6), 6);
	CHECK_EQ(send_buf(c, 0xFFFFFFF0u, v4v_domid(b), 80, "from-c", 6), 6);
	CHECK_EQ(recv_buf(r, got, sizeof(got), &m), 6);
	CHECK_EQ(m.source.domain_id, v4v_domid(a));
	CHECK_EQ(m.source.aport, 4321);
	CHECK(memcmp(got, "from-a", 6) == 0);
	CHECK_EQ(recv_buf(r, got, sizeof(got), &m), 6);
	CHECK_EQ(m.source.domain_id, v4v_domid(c));
	CHECK_EQ(m.source.aport, 0xFFFFFFF0u);

	/* A forged source domain in a raw request is overwritten by v4vd. */
	CHECK_EQ(v4v__enter(a), 0);
	memcpy(a->staging, "forged", 6);
	v4v__leave(a);
	struct v4v_req_sendv q = {
	    .h = {.op = V4V_OP_SENDV},
	    .src = {.aport = 99, .domain_id = v4v_domid(c)},
	    .dst = to(v4v_domid(b), 80),
	    .niov = 1,
	    .iov_len = {6},
	};
	CHECK_EQ(raw_call(a, &q, sizeof(q), -1), 6);
	CHECK_EQ(recv_buf(r, got, sizeof(got), &m), 6);
	CHECK(memcmp(got, "forged", 6) == 0);
	CHECK_EQ(m.source.domain_id, v4v_domid(a));
	CHECK_EQ(m.source.aport, 99);
	done();
}

static void exact_before_wildcard(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b"), *c = t_domain("c");
	uint16_t cid = v4v_domid(c);
	struct v4v_rx *any = ring(c, 80, V4V_DOMID_ANY, 4096);
	struct v4v_rx *exact = ring(c, 80, v4v_domid(a), 4096);
	struct v4v_msg m;
	char got[8];

	CHECK_EQ(send_buf(a, 1, cid, 80, "A", 1), 1);
	CHECK_EQ(send_buf(b, 1, cid, 80, "B", 1), 1);
	CHECK_EQ(recv_buf(exact, got, sizeof(got), &m), 1);
	CHECK_EQ(got[0], 'A');
	CHECK_EQ(m.source.domain_id, v4v_domid(a));
	CHECK_EQ(v4v_rx_peek(exact, &m), 0);
	CHECK_EQ(recv_buf(any, got, sizeof(got), &m), 1);
	CHECK_EQ(got[0], 'B');
	CHECK_EQ(m.source.domain_id, v4v_domid(b));
	CHECK_EQ(v4v_rx_peek(any, &m), 0);

	/* A full exact ring does not spill into the wildcard one. */
	uint8_t big[4096 - 32] = {0};
	CHECK_EQ(send_buf(a, 1, cid, 80, big, sizeof(big)), (long)sizeof(big));
	CHECK_EQ(send_buf(a, 1, cid, 80, "A", 1), -EAGAIN);
	CHECK_EQ(v4v_rx_peek(any, &m), 0);
	CHECK_EQ(recv_buf(exact, big, sizeof(big), &m), sizeof(big));

	/* Without the exact ring, A's messages fall back to the wildcard. */
	CHECK_EQ(unreg(exact), 0);
	CHECK_EQ(send_buf(a, 1, cid, 80, "a", 1), 1);
	CHECK_EQ(recv_buf(any, got, sizeof(got), &m), 1);
	CHECK_EQ(got[0], 'a');
	CHECK_EQ(m.source.domain_id, v4v_domid(a));
	done();
}

/* ---- notify ------------------------------------------------------------- */

static struct v4v_ring_data_ent ent(uint16_t domid, v4v_port_t port, uint32_t need)
{
	return (struct v4v_ring_data_ent){.ring = to(domid, port),
					  .space_required = need,
					  .flags = 0xffff,
					  .max_message_size = 12345};
}

static void notify_flags(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	uint16_t bid = v4v_domid(b);
	struct v4v_rx *any = ring(b, 10, V4V_DOMID_ANY, 256);
	ring(b, 11, v4v_domid(a), 512);
	struct v4v_ring_data_ent e[6] = {
	    ent(bid, 10, 0),
	    ent(bid, 11, 100),
	    ent(bid, 12, 0),		/* no such ring */
	    ent(bid, 10, 256 - 32 + 1), /* can never fit */
	    ent(0x7000, 10, 0),		/* no such domain */
	    ent(bid, 10, 256 - 32),	/* fits exactly, in an empty ring */
	};
	uint8_t buf[100] = {0};
	struct v4v_msg m;

	CHECK_EQ(v4v_notify(a, e, 6), 0);
	CHECK_EQ(e[0].flags,
		 V4V_RING_EXISTS | V4V_RING_SHARED | V4V_RING_EMPTY | V4V_RING_SUFFICIENT);
	CHECK_EQ(e[0].max_message_size, 256 - 32);
	CHECK_EQ(e[1].flags, V4V_RING_EXISTS | V4V_RING_EMPTY | V4V_RING_SUFFICIENT);
	CHECK_EQ(e[1].max_message_size, 512 - 32);
	CHECK_EQ(e[2].flags, 0);
	CHECK_EQ(e[2].max_message_size, 0);
	CHECK_EQ(e[3].flags,
		 V4V_RING_EXISTS | V4V_RING_SHARED | V4V_RING_EMPTY | V4V_RING_EMSGSIZE);
	CHECK_EQ(e[3].max_message_size, 256 - 32);
	CHECK_EQ(e[4].flags, 0);
	CHECK_EQ(e[5].flags & (V4V_RING_SUFFICIENT | V4V_RING_EMSGSIZE), V4V_RING_SUFFICIENT);
	/* Ring 11 is exact for a: from b's point of view it does not exist. */
	e[0] = ent(bid, 11, 0);
	CHECK_EQ(v4v_notify(b, e, 1), 0);
	CHECK_EQ(e[0].flags, 0);
	CHECK_EQ(ring_waiters(bid, 10, V4V_DOMID_ANY), 0);

	/* 128 bytes used, 112 free: a 100-byte message (128) must wait. */
	CHECK_EQ(send_buf(a, 1, bid, 10, buf, 100), 100);
	e[0] = ent(bid, 10, 100);
	CHECK_EQ(v4v_notify(a, e, 1), 0);
	CHECK_EQ(e[0].flags, V4V_RING_EXISTS | V4V_RING_SHARED);
	CHECK_EQ(ring_waiters(bid, 10, V4V_DOMID_ANY), 1);
	e[0] = ent(bid, 10, 96); /* 112 bytes: fits, and cancels the wait */
	CHECK_EQ(v4v_notify(a, e, 1), 0);
	CHECK_EQ(e[0].flags, V4V_RING_EXISTS | V4V_RING_SHARED | V4V_RING_SUFFICIENT);
	CHECK_EQ(ring_waiters(bid, 10, V4V_DOMID_ANY), 0);
	e[0] = ent(bid, 10, 100);
	CHECK_EQ(v4v_notify(a, e, 1), 0);
	CHECK_EQ(ring_waiters(bid, 10, V4V_DOMID_ANY), 1);
	CHECK(!t_wait_virq(a, 0));

	/* Space appears: the queued wait fires a's VIRQ. */
	CHECK_EQ(recv_buf(any, buf, sizeof(buf), &m), 100);
	CHECK_EQ(v4v_notify(b, NULL, 0), 0);
	CHECK(t_wait_virq(a, WAIT_MS));
	CHECK_EQ(ring_waiters(bid, 10, V4V_DOMID_ANY), 0);
	e[0] = ent(bid, 10, 100);
	CHECK_EQ(v4v_notify(a, e, 1), 0);
	CHECK_EQ(e[0].flags,
		 V4V_RING_EXISTS | V4V_RING_SHARED | V4V_RING_EMPTY | V4V_RING_SUFFICIENT);

	/* At most V4V_MAX_NOTIFY entries per call. */
	static struct v4v_ring_data_ent many[V4V_MAX_NOTIFY + 1];
	for (unsigned i = 0; i <= V4V_MAX_NOTIFY; i++)
		many[i] = ent(bid, 10, 0);
	CHECK_EQ(v4v_notify(a, many, V4V_MAX_NOTIFY), 0);
	CHECK_EQ(many[V4V_MAX_NOTIFY - 1].flags & V4V_RING_EXISTS, V4V_RING_EXISTS);
	CHECK(v4v_notify(a, many, V4V_MAX_NOTIFY + 1) < 0);
	union {
		struct v4v_req_notify q;
		uint8_t raw[V4V_REQ_MAX];
	} q = {.q = {.h = {.op = V4V_OP_NOTIFY}, .nent = V4V_MAX_NOTIFY + 1}};
	CHECK(raw_call(a, &q, sizeof(q.q) + (V4V_MAX_NOTIFY + 1) * sizeof(many[0]), -1) < 0);
	done();
}

static void notify_ebusy(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *b = t_domain("b"), *s[V4V_MAX_WAITERS + 1];
	uint16_t bid = v4v_domid(b);
	ring(b, 80, V4V_DOMID_ANY, 48);
	struct v4v_ring_data_ent e;
	uint8_t buf[16] = {0};

	for (unsigned i = 0; i <= V4V_MAX_WAITERS; i++) {
		char name[16];
		snprintf(name, sizeof(name), "s%u", i);
		s[i] = t_domain(name);
	}
	CHECK_EQ(send_buf(b, 1, bid, 80, buf, 16), 16);
	for (unsigned i = 0; i < V4V_MAX_WAITERS; i++) {
		e = ent(bid, 80, 1);
		CHECK_EQ(v4v_notify(s[i], &e, 1), 0);
		CHECK_EQ(e.flags, V4V_RING_EXISTS | V4V_RING_SHARED);
	}
	e = ent(bid, 80, 1);
	CHECK_EQ(v4v_notify(s[V4V_MAX_WAITERS], &e, 1), 0);
	CHECK_EQ(e.flags, V4V_RING_EXISTS | V4V_RING_SHARED | V4V_RING_EBUSY);
	CHECK_EQ(ring_waiters(bid, 80, V4V_DOMID_ANY), V4V_MAX_WAITERS);
	/* A waiter asking again keeps its place; it is not the 33rd. */
	e = ent(bid, 80, 1);
	CHECK_EQ(v4v_notify(s[3], &e, 1), 0);
	CHECK_EQ(e.flags, V4V_RING_EXISTS | V4V_RING_SHARED);
	/* One that leaves (its need now never fits) makes room. */
	e = ent(bid, 80, 1000);
	CHECK_EQ(v4v_notify(s[3], &e, 1), 0);
	CHECK_EQ(e.flags & V4V_RING_EMSGSIZE, V4V_RING_EMSGSIZE);
	e = ent(bid, 80, 1);
	CHECK_EQ(v4v_notify(s[V4V_MAX_WAITERS], &e, 1), 0);
	CHECK_EQ(e.flags, V4V_RING_EXISTS | V4V_RING_SHARED);
	done();
}

/* ---- VIRQ and events ---------------------------------------------------- */

static void virq_on_delivery(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	struct v4v_rx *r = ring(b, 80, V4V_DOMID_ANY, 4096);
	struct v4v_msg m;
	char got[4];

	CHECK(!t_wait_virq(b, 0));
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(send_buf(a, 1, v4v_domid(b), 80, "x", 1), 1);
		CHECK(t_wait_virq(b, WAIT_MS));
		CHECK(!t_wait_virq(b, 0)); /* acknowledged */
		CHECK_EQ(recv_buf(r, got, sizeof(got), &m), 1);
	}
	/* Only the receiver was signalled. */
	CHECK(!t_wait_virq(a, 0));
	/* A refused send raises nothing. */
	CHECK_EQ(send_buf(a, 1, v4v_domid(b), 81, "x", 1), -ECONNREFUSED);
	CHECK_EQ(send_buf(a, 1, v4v_domid(b), 80, "x", 1), 1);
	CHECK(t_wait_virq(b, WAIT_MS));
	CHECK(!t_wait_virq(a, 0));
	done();
}

static void expect_broken(struct v4v_domain *owner, uint16_t domid, v4v_port_t port)
{
	struct v4v_event ev;
	unsigned w;
	char st[16];
	CHECK(get_event(owner, V4V_EV_RING_BROKEN, &ev));
	CHECK_EQ(ev.ring.domain_id, domid);
	CHECK_EQ(ev.ring.aport, port);
	CHECK(ring_row(domid, port, V4V_DOMID_ANY, &w, st));
	CHECK(strcmp(st, "broken") == 0);
}

static void ring_works(struct v4v_domain *a, struct v4v_rx *r)
{
	struct v4v_msg m;
	char got[8];
	struct v4v_addr at = v4v_rx_addr(r);
	CHECK_EQ(send_buf(a, 1, at.domain_id, at.aport, "ok", 2), 2);
	CHECK_EQ(recv_buf(r, got, sizeof(got), &m), 2);
	CHECK(memcmp(got, "ok", 2) == 0);
}

static void rx_ptr_bad(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	uint16_t bid = v4v_domid(b);
	struct v4v_rx *r1 = ring(b, 1, V4V_DOMID_ANY, 4096);
	struct v4v_rx *r2 = ring(b, 2, V4V_DOMID_ANY, 4096);
	struct v4v_rx *r3 = ring(b, 3, V4V_DOMID_ANY, 4096);

	ring_works(a, r1);
	/* Misaligned. */
	v4v__rx_ring(r1)->rx_ptr = 8;
	CHECK_EQ(send_buf(a, 1, bid, 1, "x", 1), -ECONNREFUSED);
	expect_broken(b, bid, 1);
	/* Disabled for good, even once the owner puts a sane value back. */
	v4v__rx_ring(r1)->rx_ptr = load_tx(v4v__rx_ring(r1));
	CHECK_EQ(send_buf(a, 1, bid, 1, "x", 1), -ECONNREFUSED);
	ring_works(a, r2);
	ring_works(a, r3);

	/* Out of range, aligned. */
	v4v__rx_ring(r2)->rx_ptr = 4096;
	CHECK_EQ(send_buf(a, 1, bid, 2, "x", 1), -ECONNREFUSED);
	expect_broken(b, bid, 2);
	ring_works(a, r3);
	v4v__rx_ring(r3)->rx_ptr = 0x80000000u;
	CHECK_EQ(send_buf(a, 1, bid, 3, "x", 1), -ECONNREFUSED);
	expect_broken(b, bid, 3);

	/* The domain's other rings, and other domains, are unaffected. */
	struct v4v_rx *r4 = ring(b, 4, V4V_DOMID_ANY, 4096);
	ring_works(a, r4);
	struct v4v_rx *ra = ring(a, 1, V4V_DOMID_ANY, 4096);
	ring_works(b, ra);
	done();
}

static void partner_gone(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a");
	uint16_t aid = v4v_domid(a), bid;
	int bfd = t_domain_fd("b", &bid);
	struct v4v_rx *r = ring(a, 80, bid, 4096);
	struct v4v_event ev;
	struct v4v_msg m;
	char got[8];

	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* Never exit(): the parent's atexit handler would stop v4vd. */
		struct v4v_domain *b;
		int ok = v4v_open_fd(bfd, &b) == 0 && send_buf(b, 7, aid, 80, "hi", 2) == 2;
		_exit(ok ? 0 : 1);
	}
	close(bfd);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* The message sent before b went is still there to read. */
	CHECK_EQ(recv_buf(r, got, sizeof(got), &m), 2);
	CHECK_EQ(m.source.domain_id, bid);

	CHECK(get_event(a, V4V_EV_PARTNER_GONE, &ev));
	CHECK_EQ(ev.ring.domain_id, aid);
	CHECK_EQ(ev.ring.aport, 80);
	CHECK_EQ(ev.peer.domain_id, bid);
	char *doms = t_ctl("domains");
	char row[16];
	snprintf(row, sizeof(row), "\n%u\tb\t", bid);
	CHECK(!strstr(doms, row));
	free(doms);
	CHECK_EQ(send_buf(a, 1, bid, 80, "x", 1), -ESRCH);
	done();
}

static void ring_gone(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b"), *c = t_domain("c");
	uint16_t aid = v4v_domid(a), bid = v4v_domid(b);
	struct v4v_rx *rb = ring(b, 7, V4V_DOMID_ANY, 4096);
	struct v4v_event ev;

	ring(a, 5, bid, 4096);
	ring(c, 6, V4V_DOMID_ANY, 4096);
	CHECK_EQ(unreg(rb), 0);
	CHECK(get_event(a, V4V_EV_RING_GONE, &ev));
	CHECK_EQ(ev.ring.domain_id, aid);
	CHECK_EQ(ev.ring.aport, 5);
	CHECK_EQ(ev.peer.domain_id, bid);
	CHECK_EQ(ev.peer.aport, 7);
	/* A ring that does not name b as partner hears nothing. */
	CHECK_EQ(v4v_events(c, &ev, 1), 0);
	CHECK(!t_wait_virq(c, 0));
	done();
}

static void reregister_keeps_tx(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	uint16_t bid = v4v_domid(b);
	int fd1, fd2;
	struct v4v_ring *m1 = ring_memfd(1024, &fd1), *m2 = ring_memfd(1024, &fd2);
	struct v4v_msg m;
	uint32_t rx = 0;
	char got[32];

	CHECK_EQ(raw_register(b, fd1, 3, V4V_DOMID_ANY, 1024, V4V_REGISTER_FAIL_EXIST), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(send_buf(a, 1, bid, 3, "0123456789abcdefghij", 20), 20);
	uint32_t tx = load_tx(m1);
	CHECK_EQ(tx, 3 * 48);

	/* Same memory again: the ring carries on where it was. */
	CHECK_EQ(raw_register(b, fd1, 3, V4V_DOMID_ANY, 1024, 0), 0);
	CHECK_EQ(load_tx(m1), tx);
	CHECK_EQ(send_buf(a, 1, bid, 3, "fourth", 6), 6);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(v4v_ring_peek(m1->ring, 1024, rx, load_tx(m1), &m), 1);
		CHECK_EQ(m.len, i < 3 ? 20 : 6);
		rx = m.next_rx;
	}
	CHECK_EQ(v4v_ring_peek(m1->ring, 1024, rx, load_tx(m1), &m), 0);
	tx = rx;

	/* New memory with a garbage tx_ptr: v4vd keeps its own, valid one. */
	m2->rx_ptr = tx;
	m2->tx_ptr = 7;
	CHECK_EQ(raw_register(b, fd2, 3, V4V_DOMID_ANY, 1024, 0), 0);
	CHECK_EQ(load_tx(m2), tx);
	CHECK_EQ(send_buf(a, 1, bid, 3, "fifth", 5), 5);
	CHECK_EQ(v4v_ring_peek(m2->ring, 1024, tx, load_tx(m2), &m), 1);
	CHECK_EQ(v4v_msg_copy(&m, got, sizeof(got)), 5);
	CHECK(memcmp(got, "fifth", 5) == 0);
	CHECK_EQ(m.source.domain_id, v4v_domid(a));
	/* The old memory is no longer written. */
	CHECK_EQ(load_tx(m1), tx);
	close(fd1);
	close(fd2);
	done();
}

/* ---- what v4vd demands of ring memory ------------------------------------ */

static void memfd_checks(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *d = t_domain("d");
	int p[2];

	/* Not sealed against shrinking. */
	int fd = memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(fd >= 0 && ftruncate(fd, 64 + 4096) == 0);
	CHECK_EQ(raw_register(d, fd, 1, V4V_DOMID_ANY, 4096, 0), -EPERM);
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW) == 0);
	CHECK_EQ(raw_register(d, fd, 1, V4V_DOMID_ANY, 4096, 0), -EPERM);
	close(fd);
	fd = memfd_create("nosealing", MFD_CLOEXEC);
	CHECK(fd >= 0 && ftruncate(fd, 64 + 4096) == 0);
	CHECK_EQ(raw_register(d, fd, 1, V4V_DOMID_ANY, 4096, 0), -EPERM);
	close(fd);

	/* Sealed but shorter than header + len. */
	fd = v4v_memfd_sealed("short", 64 + 4096 - 16);
	CHECK(fd >= 0);
	CHECK_EQ(raw_register(d, fd, 1, V4V_DOMID_ANY, 4096, 0), -EFAULT);
	close(fd);
	fd = v4v_memfd_sealed("short", 4096);
	CHECK(fd >= 0);
	CHECK_EQ(raw_register(d, fd, 1, V4V_DOMID_ANY, 4096, 0), -EFAULT);
	close(fd);

	/* Not a memfd at all, or no fd. */
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK_EQ(raw_register(d, p[0], 1, V4V_DOMID_ANY, 4096, 0), -EBADF);
	close(p[0]);
	close(p[1]);
	CHECK_EQ(raw_register(d, -1, 1, V4V_DOMID_ANY, 4096, 0), -EBADF);

	/* None of that registered anything; a proper memfd does. */
	CHECK_EQ(raw_unregister(d, 1, V4V_DOMID_ANY), -ENOENT);
	fd = v4v_memfd_sealed("exact", 64 + 4096);
	CHECK(fd >= 0);
	CHECK_EQ(raw_register(d, fd, 1, V4V_DOMID_ANY, 4096, 0), 0);
	close(fd);
	/* v4vd still answers on the same channel. */
	CHECK_EQ(raw_unregister(d, 1, V4V_DOMID_ANY), 0);
	done();
}

static const struct t_case cases[] = {
    T_CASE(register_len),	 T_CASE(register_exist),    T_CASE(register_quota),
    T_CASE(unregister_enoent),	 T_CASE(sendv_esrch),	    T_CASE(sendv_econnrefused),
    T_CASE(sendv_emsgsize),	 T_CASE(sendv_eagain_wait), T_CASE(sendv_ebusy),
    T_CASE(sendv_iov),		 T_CASE(source_stamped),    T_CASE(exact_before_wildcard),
    T_CASE(notify_flags),	 T_CASE(notify_ebusy),	    T_CASE(virq_on_delivery),
    T_CASE(rx_ptr_bad),		 T_CASE(partner_gone),	    T_CASE(ring_gone),
    T_CASE(reregister_keeps_tx), T_CASE(memfd_checks),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
