/* SPDX-License-Identifier: MIT */
/*
 * Object lifetimes in v4vd under a hostile domain: every fd a domain hands
 * over is checked for what it is and for aliasing with what v4vd already
 * holds, nothing a domain registers keeps it alive, and an fd leaves epoll
 * before v4vd closes it (a domain may keep its own copy of the very
 * description it passed).  Each case is an attack that worked before its
 * fix; after each, v4vd must be alive, idle, and still serve a bystander.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/barrier.h"
#include "common/util.h"
#include "core/ring.h"
#include "wire/proto.h"
#include "lib/lib.h"
#include "t.h"

#define WAIT_MS 10000 /* failure guard, never a synchronization delay */

static uint32_t next_seq = 5000;

static void readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	CHECK_EQ(poll(&p, 1, WAIT_MS), 1);
}

/* A raw request with fds on a channel; returns the reply's ret. */
static long raw(int chan, void *pkt, size_t n, const int *fds, unsigned nfds)
{
	union {
		struct v4v_reply r;
		uint8_t raw[V4V_REPLY_MAX];
	} rep;
	unsigned nr;
	struct v4v_req_hdr *h = pkt;
	h->seq = next_seq++;
	CHECK_EQ(v4v_send_fds(chan, pkt, n, fds, nfds, 0), n);
	readable(chan);
	CHECK(v4v_recv_fds(chan, &rep, sizeof(rep), NULL, 0, &nr, 0) >= (ssize_t)sizeof(rep.r));
	CHECK_EQ(rep.r.h.seq, h->seq);
	return (long)rep.r.ret;
}

/* REGISTER_RING on aport with fds {memfd, bell, tx memfd} (-1: absent),
 * a send ring of tx_len bytes. */
static long reg_tx(int chan, v4v_port_t aport, int mem, int bell, int tx, uint32_t tx_len)
{
	struct v4v_req_register q = {
	    .h = {.op = V4V_OP_REGISTER_RING},
	    .ring = {.aport = aport, .partner_id = V4V_DOMID_ANY, .len = 4096},
	    .tx_len = tx >= 0 ? tx_len : 0,
	};
	int fds[3] = {mem, bell, tx};
	return raw(chan, &q, sizeof(q), fds, tx >= 0 ? 3 : bell >= 0 ? 2 : 1);
}

static long reg(int chan, v4v_port_t aport, int mem, int bell, int tx)
{
	return reg_tx(chan, aport, mem, bell, tx, 4096);
}

static long unreg(int chan, v4v_port_t aport)
{
	struct v4v_req_unregister q = {
	    .h = {.op = V4V_OP_UNREGISTER_RING},
	    .aport = aport,
	    .partner_id = V4V_DOMID_ANY,
	};
	return raw(chan, &q, sizeof(q), NULL, 0);
}

static int ring_memfd(void)
{
	int fd = v4v_memfd_sealed("lifetime", V4V_RING_HDR_SIZE + 4096);
	CHECK(fd >= 0);
	return fd;
}

static void seqpair(int sv[2])
{
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
}

/* ---- the bystanders ------------------------------------------------------ */

static struct v4v_domain *good_tx, *good_rx;
static struct v4v_rx *good_ring;

/* A private v4vd with v4vd.conf text conf (NULL: none), and the bystanders. */
static void start_with(const char *conf)
{
	t_seed();
	t_v4vd_start_conf(conf);
	good_tx = t_domain("good-tx");
	good_rx = t_domain("good-rx");
	CHECK_EQ(v4v_ring_register(good_rx, 7, V4V_DOMID_ANY, 4096, 0, &good_ring), 0);
}

static void start(void)
{
	start_with(NULL);
}

/* v4vd's user+system CPU ticks so far (a busy loop shows here). */
static long v4vd_ticks(void)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)t_v4vd_pid());
	FILE *f = fopen(path, "r");
	CHECK(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	long utime = 0, stime = 0;
	CHECK(p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime,
			  &stime) == 2);
	return utime + stime;
}

/* The bystanders' ring gets a message of len bytes from domain from, and
 * consumes it. */
static void good_gets(const struct v4v_domain *from, uint32_t len)
{
	struct v4v_msg m;
	CHECK(t_wait_virq(good_rx, WAIT_MS));
	CHECK_EQ(v4v_rx_peek(good_ring, &m), 1);
	CHECK_EQ(m.source.domain_id, v4v_domid(from));
	CHECK_EQ(m.len, len);
	v4v_rx_consume(good_ring, &m);
}

static void close_all(const int *fd, int n)
{
	for (int i = 0; i < n; i++)
		close(fd[i]);
}

/* Alive, not spinning (under a third of a core over half a second: an
 * idle v4vd uses none), and a datagram still goes through. */
static void others_unaffected(void)
{
	int st;
	CHECK_EQ(waitpid(t_v4vd_pid(), &st, WNOHANG), 0);
	long hz = sysconf(_SC_CLK_TCK), t0 = v4vd_ticks();
	poll(NULL, 0, 500);
	long used = v4vd_ticks() - t0;
	if (used * 6 > hz) {
		fprintf(stderr, "v4vd used %ld of %ld ticks while idle\n", used, hz / 2);
		exit(1);
	}
	struct v4v_addr dst = v4v_rx_addr(good_ring);
	struct iovec iov = {"ping", 4};
	CHECK_EQ(v4v_sendv(good_tx, 9, &dst, &iov, 1, 0), 4);
	good_gets(good_tx, 4);
}

static void finish(void)
{
	others_unaffected();
	v4v_ring_unregister(good_ring);
	v4v_close(good_tx);
	v4v_close(good_rx);
}

/* Domains v4vd lists, polled (bounded) until there are `want`. */
static void domains_become(int want)
{
	int n = -1;
	for (int i = 0; i < WAIT_MS / 10; i++) {
		if ((n = t_ctl_rows("domains")) == want)
			return;
		poll(NULL, 0, 10);
	}
	fprintf(stderr, "%d domains listed, expected %d: a domain outlived its processes\n", n,
		want);
	exit(1);
}

/* ---- nothing a domain registers keeps it alive --------------------------- */

/* The child registers a ring whose doorbell is its own end of its channel
 * (v4vd would then hold both ends of it), or of its domain fd, then exits
 * without closing anything: its domain must go with it. */
static void self_bell(unsigned i, int dfd, int sock)
{
	struct v4v_domain *d;
	CHECK_EQ(v4v_open_fd(dfd, &d), 0);
	int mem = ring_memfd();
	long e = reg(d->chan, 1, mem, i == 0 ? d->chan : dfd, -1);
	CHECK(write(sock, &e, sizeof(e)) == sizeof(e));
	_exit(0);
}

static void bell_is_own_socket(void)
{
	pid_t pid[2];
	uint16_t domid[2];
	int ctl[2];
	start();
	int base = t_ctl_rows("domains");
	t_spawn_domains(2, NULL, SOCK_SEQPACKET, self_bell, pid, domid, ctl);
	for (unsigned i = 0; i < 2; i++) {
		long e = 0;
		int st;
		CHECK_EQ(read(ctl[i], &e, sizeof(e)), sizeof(e));
		/* A socket v4vd already holds the other end of is no doorbell. */
		CHECK_EQ(e, -EINVAL);
		CHECK_EQ(waitpid(pid[i], &st, 0), pid[i]);
		close(ctl[i]);
	}
	domains_become(base);
	finish();
}

/* Two channels of one process, each the doorbell of a ring of the other:
 * a cycle v4vd must refuse to close. */
static void bell_cycle(unsigned i, int dfd, int sock)
{
	struct v4v_domain *a, *b;
	CHECK_EQ(v4v_open_fd(dfd, &a), 0);
	CHECK_EQ(v4v_open_fd(dfd, &b), 0);
	long e1 = reg(a->chan, 1, ring_memfd(), b->chan, -1);
	long e2 = reg(b->chan, 1, ring_memfd(), a->chan, -1);
	long e[2] = {e1, e2};
	CHECK(write(sock, e, sizeof(e)) == sizeof(e));
	_exit(0);
}

static void bell_is_other_channel(void)
{
	pid_t pid;
	uint16_t domid;
	int ctl, st;
	long e[2];
	start();
	int base = t_ctl_rows("domains");
	t_spawn_domains(1, NULL, SOCK_SEQPACKET, bell_cycle, &pid, &domid, &ctl);
	CHECK_EQ(read(ctl, e, sizeof(e)), sizeof(e));
	CHECK_EQ(e[0], -EINVAL);
	CHECK_EQ(e[1], -EINVAL);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	close(ctl);
	domains_become(base);
	finish();
}

/* ---- an fd leaves epoll before v4vd closes it ----------------------------- */

/* The attacker keeps a copy of the doorbell it passed, has the ring
 * removed, then makes that description readable: v4vd must not hear of it. */
static void bell_copy_kept(void)
{
	start();
	struct v4v_domain *h = t_domain("evil");
	int sv[2];
	seqpair(sv);
	int mem = ring_memfd();
	CHECK_EQ(reg(h->chan, 1, mem, sv[1], -1), 0);
	close(mem);
	CHECK_EQ(unreg(h->chan, 1), 0);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(send(sv[0], "x", 1, 0), 1); /* sv[1], still open here, is readable */
	close(sv[0]);				     /* ... and hung up */
	others_unaffected();
	close(sv[1]);
	v4v_close(h);
	finish();
}

/* The attacker attaches a second channel, keeps a copy of the end it gave
 * v4vd, and hangs up its own end: v4vd drops the channel, but the
 * description lives on, hung up for ever. */
static void channel_copy_kept(void)
{
	start();
	int dfd = t_domain_fd("evil", NULL);
	int sv[2], virq;
	unsigned nfds;
	seqpair(sv);
	int staging = v4v_memfd_sealed("staging", V4V_STAGING_MEM);
	CHECK(staging >= 0);
	struct v4v_req_attach a = {
	    .h = {.op = V4V_OP_ATTACH, .seq = next_seq++},
	    .version = V4V_PROTO_VERSION,
	};
	int fds[2] = {sv[1], staging};
	CHECK_EQ(v4v_send_fds(dfd, &a, sizeof(a), fds, 2, 0), sizeof(a));
	close(staging);
	struct v4v_attach_reply ar;
	readable(sv[0]);
	CHECK_EQ(v4v_recv_fds(sv[0], &ar, sizeof(ar), &virq, 1, &nfds, 0), sizeof(ar));
	CHECK_EQ(ar.r.ret, 0);
	close(virq);
	close(sv[0]); /* v4vd's channel end, sv[1], hangs up; our copy stays */
	others_unaffected();
	close(sv[1]);
	close(dfd);
	finish();
}

/* ---- memory is registered once ------------------------------------------- */

/* A ring's memory may back one ring or send ring of one domain, once:
 * otherwise v4vd's writes to one land in another (another domain's ring,
 * or its own send ring, where a delivered message would be sent again). */
static void memfd_aliases(void)
{
	start();
	struct v4v_domain *h = t_domain("evil"), *v = t_domain("victim");
	int mem = ring_memfd(), other = ring_memfd(), sv[2], sv2[2];
	seqpair(sv);
	seqpair(sv2);
	CHECK_EQ(reg(v->chan, 1, mem, -1, -1), 0);
	/* Another domain's ring memory, and the same memory again. */
	CHECK_EQ(reg(h->chan, 1, mem, -1, -1), -EBUSY);
	CHECK_EQ(reg(v->chan, 2, mem, -1, -1), -EBUSY);
	/* A send ring that is its own receive ring, or someone's ring. */
	CHECK_EQ(reg(h->chan, 3, other, sv[1], other), -EBUSY);
	CHECK_EQ(reg(h->chan, 4, other, sv2[1], mem), -EBUSY);
	/* The memory is free again once its ring is gone. */
	CHECK_EQ(unreg(v->chan, 1), 0);
	CHECK_EQ(reg(h->chan, 5, mem, -1, -1), 0);
	close(mem);
	close(other);
	for (int i = 0; i < 2; i++) {
		close(sv[i]);
		close(sv2[i]);
	}
	v4v_close(h);
	v4v_close(v);
	finish();
}

/* ---- re-registration keeps or drops every attachment --------------------- */

struct counts {
	int fds, memfd_maps;
};

static struct counts counts_now(void)
{
	return (struct counts){t_v4vd_fds(), t_v4vd_memfd_maps()};
}

/* After a round trip on chan: v4vd has handled what came before it. */
static struct counts baseline(int chan)
{
	CHECK_EQ(unreg(chan, 0xdead), -ENOENT);
	return counts_now();
}

/* v4vd's fds and memfd mappings become base + (fds, maps), polled
 * (bounded): hang-ups are handled asynchronously. */
static void counts_become(const struct counts *base, int fds, int maps)
{
	struct counts now;
	for (int i = 0; i < WAIT_MS; i++) {
		now = counts_now();
		if (now.fds == base->fds + fds && now.memfd_maps == base->memfd_maps + maps)
			return;
		poll(NULL, 0, 1);
	}
	fprintf(stderr, "v4vd holds %d fds and %d memfd maps, expected %d and %d\n", now.fds,
		now.memfd_maps, base->fds + fds, base->memfd_maps + maps);
	exit(1);
}

/* The end of our doorbell pair hears v4vd close its end. */
static void hung_up(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
	for (;;) {
		CHECK_EQ(poll(&p, 1, WAIT_MS), 1);
		if (p.revents & (POLLHUP | POLLRDHUP))
			return;
		char junk[64];
		CHECK(recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0); /* a token: read on */
	}
}

/* A message from good_tx lands in the ring memory m (mapped by us). */
static void lands_in(struct v4v_domain *h, v4v_port_t aport, int memfd)
{
	struct v4v_ring *m =
	    mmap(NULL, V4V_RING_HDR_SIZE + 4096, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	CHECK(m != MAP_FAILED);
	uint32_t tx = v4v_load_acquire(&m->tx_ptr);
	struct v4v_addr dst = {.aport = aport, .domain_id = v4v_domid(h)};
	struct iovec iov = {"hello", 5};
	CHECK_EQ(v4v_sendv(good_tx, 9, &dst, &iov, 1, 0), 5);
	CHECK_EQ(v4v_load_acquire(&m->tx_ptr), tx + 32);
	munmap(m, V4V_RING_HDR_SIZE + 4096);
}

/* No doorbell, then one: the ring rings it from now on. */
static void rereg_bell_added(void)
{
	start();
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline(h->chan);
	int m1 = ring_memfd(), m2 = ring_memfd(), sv[2];
	seqpair(sv);
	CHECK_EQ(reg(h->chan, 1, m1, -1, -1), 0);
	CHECK_EQ(reg(h->chan, 1, m2, sv[1], -1), 0);
	close(sv[1]);
	counts_become(&base, 1, 1); /* the doorbell; m2 only */
	lands_in(h, 1, m2);
	readable(sv[0]);
	CHECK_EQ(unreg(h->chan, 1), 0);
	hung_up(sv[0]);
	counts_become(&base, 0, 0);
	close(sv[0]);
	close(m1);
	close(m2);
	v4v_close(h);
	finish();
}

/* A doorbell, then none: v4vd lets go of the old one. */
static void rereg_bell_dropped(void)
{
	start();
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline(h->chan);
	int m1 = ring_memfd(), m2 = ring_memfd(), sv[2];
	seqpair(sv);
	CHECK_EQ(reg(h->chan, 1, m1, sv[1], -1), 0);
	CHECK_EQ(reg(h->chan, 1, m2, -1, -1), 0);
	close(sv[1]);
	hung_up(sv[0]);
	counts_become(&base, 0, 1);
	lands_in(h, 1, m2);
	CHECK(t_wait_virq(h, WAIT_MS)); /* no doorbell: the VIRQ */
	CHECK_EQ(unreg(h->chan, 1), 0);
	counts_become(&base, 0, 0);
	close(sv[0]);
	close(m1);
	close(m2);
	v4v_close(h);
	finish();
}

/* A send ring, then none: the old send ring is unmapped with its doorbell. */
static void rereg_tx_dropped(void)
{
	start();
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline(h->chan);
	int m1 = ring_memfd(), m2 = ring_memfd(), t1 = ring_memfd(), sv[2];
	seqpair(sv);
	CHECK_EQ(reg(h->chan, 1, m1, sv[1], t1), 0);
	counts_become(&base, 1, 2);
	CHECK_EQ(reg(h->chan, 1, m2, -1, -1), 0);
	close(sv[1]);
	hung_up(sv[0]);
	counts_become(&base, 0, 1); /* m2 only */
	CHECK_EQ(unreg(h->chan, 1), 0);
	counts_become(&base, 0, 0);
	close(sv[0]);
	close(m1);
	close(m2);
	close(t1);
	v4v_close(h);
	finish();
}

/* The waiters column of `v4vctl rings` for domain dom's ring on aport. */
static unsigned ring_waiters(uint16_t dom, uint32_t aport)
{
	struct t_ring_row r;
	CHECK(t_ring_find(dom, aport, NULL, &r));
	return r.waiters;
}

/*
 * Re-registering gives the ring new memory, here empty: a sender waiting
 * for space in the old memory is woken at once.  It waited for a notify
 * that the owner, with nothing new to read, had no reason to make.
 */
static void rereg_wakes_waiters(void)
{
	start();
	struct v4v_domain *h = t_domain("owner"), *s = t_domain("sender");
	int m1 = ring_memfd(), m2 = ring_memfd();
	CHECK_EQ(reg(h->chan, 1, m1, -1, -1), 0);
	struct v4v_addr to = {.aport = 1, .domain_id = v4v_domid(h)};
	static uint8_t buf[1024];
	struct iovec iov = {buf, sizeof(buf)};
	long n;
	while ((n = v4v_sendv(s, 1, &to, &iov, 1, 0)) == (long)sizeof(buf))
		;
	CHECK_EQ(n, -EAGAIN); /* the sender now waits for space */
	CHECK_EQ(ring_waiters(v4v_domid(h), 1), 1);
	CHECK_EQ(reg(h->chan, 1, m2, -1, -1), 0);
	CHECK_EQ(ring_waiters(v4v_domid(h), 1), 0);
	CHECK(t_wait_virq(s, WAIT_MS));
	CHECK_EQ(v4v_sendv(s, 1, &to, &iov, 1, 0), (long)sizeof(buf));
	CHECK_EQ(unreg(h->chan, 1), 0);
	close(m1);
	close(m2);
	v4v_close(s);
	v4v_close(h);
	finish();
}

/* Queue one message of n bytes to dst on the send ring t (mapped by us),
 * and kick its doorbell. */
static void tx_send(int tfd, int kick, const struct v4v_addr *dst, size_t n)
{
	static uint8_t buf[4096];
	struct v4v_tx_ring *t =
	    mmap(NULL, V4V_RING_HDR_SIZE + 4096, PROT_READ | PROT_WRITE, MAP_SHARED, tfd, 0);
	CHECK(t != MAP_FAILED);
	struct v4v_ring_message_header mh = {
	    .len = (uint32_t)(V4V_MSG_HDR_SIZE + n),
	    .source = *dst,
	};
	struct v4v_seg seg = {buf, n};
	uint32_t tx = v4v_load_relaxed(&t->tx_ptr);
	v4v_store_release(&t->tx_ptr, v4v_ring_put(t->ring, 4096, tx, &mh, &seg, 1));
	CHECK_EQ(send(kick, "k", 1, 0), 1);
	munmap(t, V4V_RING_HDR_SIZE + 4096);
}

/* A send ring, then another: the new one works, the old one is gone. */
static void rereg_tx_replaced(void)
{
	start();
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline(h->chan);
	int m1 = ring_memfd(), m2 = ring_memfd(), t1 = ring_memfd(), t2 = ring_memfd();
	int sv[2], sv2[2];
	seqpair(sv);
	seqpair(sv2);
	CHECK_EQ(reg(h->chan, 1, m1, sv[1], t1), 0);
	CHECK_EQ(reg(h->chan, 1, m2, sv2[1], t2), 0);
	close(sv[1]);
	close(sv2[1]);
	hung_up(sv[0]);
	counts_become(&base, 1, 2);
	struct v4v_addr dst = v4v_rx_addr(good_ring);
	tx_send(t2, sv2[0], &dst, 10);
	good_gets(h, 10);
	CHECK_EQ(unreg(h->chan, 1), 0);
	counts_become(&base, 0, 0);
	close_all((int[]){sv[0], sv[1], sv2[0], sv2[1], m1, m2, t1, t2}, 8);
	v4v_close(h);
	finish();
}

/*
 * A send ring blocked on a full destination, then re-registered without
 * one: when the destination makes room, nothing may wake the send ring's
 * old doorbell (v4vd followed a NULL one and died).
 */
static void rereg_while_blocked(void)
{
	start();
	struct v4v_domain *h = t_domain("evil"), *v = t_domain("victim"), *f = t_domain("filler");
	struct counts base = baseline(h->chan);
	int dest = ring_memfd(), db[2], m1 = ring_memfd(), m2 = ring_memfd(), t1 = ring_memfd(),
	    sv[2];
	seqpair(db);
	seqpair(sv);
	CHECK_EQ(reg(v->chan, 9, dest, db[1], -1), 0);
	close(db[1]);
	/* Fill it exactly: the next message of any size has to wait. */
	static char big[4064];
	struct v4v_addr to = {.aport = 9, .domain_id = v4v_domid(v)};
	struct iovec iov = {big, sizeof(big)};
	CHECK_EQ(v4v_sendv(f, 1, &to, &iov, 1, 0), sizeof(big));
	CHECK_EQ(reg(h->chan, 1, m1, sv[1], t1), 0);
	close(sv[1]);
	tx_send(t1, sv[0], &to, 16);
	/* The destination's doorbell hears that a send ring waits on it. */
	for (uint8_t tok = 0; !(tok & HV_SIG_WAITER);) {
		readable(db[0]);
		CHECK_EQ(recv(db[0], &tok, 1, 0), 1);
	}
	CHECK_EQ(reg(h->chan, 1, m2, -1, -1), 0);
	hung_up(sv[0]);
	/* The victim drains its ring and says so: room for the old message. */
	struct v4v_ring *d =
	    mmap(NULL, V4V_RING_HDR_SIZE + 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dest, 0);
	CHECK(d != MAP_FAILED);
	v4v_store_release(&d->rx_ptr, v4v_load_acquire(&d->tx_ptr));
	struct v4v_ring_data_ent ent = {.ring = to, .space_required = 16};
	CHECK_EQ(v4v_notify(v, &ent, 1), 0);
	CHECK_EQ(v4v_notify(v, &ent, 1), 0); /* a round trip after the first */
	/* Nothing moved: the send ring went with the re-registration. */
	CHECK_EQ(v4v_load_acquire(&d->tx_ptr), v4v_load_acquire(&d->rx_ptr));
	counts_become(&base, 1, 2); /* dest's doorbell; dest and m2 */
	CHECK_EQ(unreg(h->chan, 1), 0);
	CHECK_EQ(unreg(v->chan, 9), 0);
	counts_become(&base, 0, 0);
	munmap(d, V4V_RING_HDR_SIZE + 4096);
	for (int i = 0; i < 2; i++) {
		close(db[i]);
		close(sv[i]);
	}
	close(dest);
	close(m1);
	close(m2);
	close(t1);
	v4v_close(h);
	v4v_close(v);
	v4v_close(f);
	finish();
}

/* The next token on a doorbell has the bits of want. */
static void token_has(int fd, uint8_t want)
{
	for (uint8_t tok = 0; (tok & want) != want;) {
		readable(fd);
		CHECK_EQ(recv(fd, &tok, 1, 0), 1);
	}
}

/*
 * A re-registration refused for its send ring leaves the ring as it was:
 * its memory and what is in it, its doorbell, its send ring.  Refused by
 * the shell (the ring's own memory as its send ring) or by the core (past
 * ring_len_max, past ring_bytes_per_domain); v4vd removed the ring on the
 * core's refusals.
 */
static void rereg_refused(void)
{
	start_with("ring_len_max 8192\nring_bytes_per_domain 10240");
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline(h->chan);
	int m1 = ring_memfd(), m2 = ring_memfd(), t1 = ring_memfd(), sv[2], sv2[2];
	int big = v4v_memfd_sealed("lifetime", V4V_RING_HDR_SIZE + 16384);
	CHECK(big >= 0);
	seqpair(sv);
	seqpair(sv2);
	CHECK_EQ(reg(h->chan, 1, m1, sv[1], t1), 0); /* 8192 of the 10240 bytes */
	close(sv[1]);
	lands_in(h, 1, m1); /* left unread */
	token_has(sv[0], HV_SIG_DATA);
	CHECK_EQ(reg(h->chan, 1, m2, sv2[1], m2), -EBUSY);
	CHECK_EQ(reg(h->chan, 1, m1, sv2[1], m1), -EBUSY);
	CHECK_EQ(reg_tx(h->chan, 1, m2, sv2[1], big, 16384), -EINVAL);
	CHECK_EQ(reg_tx(h->chan, 1, m2, sv2[1], big, 8192), -ENOSPC);
	close(sv2[1]);
	hung_up(sv2[0]);	    /* the refused doorbell is let go */
	counts_become(&base, 1, 2); /* sv's doorbell; m1 and t1 */
	/* The message is still there, the next lands after it, and the
	 * doorbell rings for it once the first is consumed. */
	struct v4v_ring *m =
	    mmap(NULL, V4V_RING_HDR_SIZE + 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m1, 0);
	CHECK(m != MAP_FAILED);
	CHECK_EQ(v4v_load_acquire(&m->tx_ptr), 32);
	v4v_store_release(&m->rx_ptr, 32);
	lands_in(h, 1, m1);
	token_has(sv[0], HV_SIG_DATA);
	munmap(m, V4V_RING_HDR_SIZE + 4096);
	/* And its send ring still sends. */
	struct v4v_addr dst = v4v_rx_addr(good_ring);
	tx_send(t1, sv[0], &dst, 10);
	good_gets(h, 10);
	CHECK_EQ(unreg(h->chan, 1), 0);
	hung_up(sv[0]);
	counts_become(&base, 0, 0);
	close_all((int[]){sv[0], sv[1], sv2[0], sv2[1], m1, m2, t1, big}, 8);
	v4v_close(h);
	finish();
}

/* ---- every fd is taken once ---------------------------------------------- */

/* Attach a channel (our end in *chan) with staging memory sfd on dfd;
 * returns the reply's ret (on the channel, or on dfd when refused). */
static long attach_with(int dfd, int chan_theirs, int sfd, int chan_ours)
{
	struct v4v_req_attach a = {
	    .h = {.op = V4V_OP_ATTACH, .seq = next_seq++},
	    .version = V4V_PROTO_VERSION,
	};
	int fds[2] = {chan_theirs, sfd}, virq = -1;
	unsigned nfds;
	struct v4v_attach_reply ar = {0};
	CHECK_EQ(v4v_send_fds(dfd, &a, sizeof(a), fds, 2, 0), sizeof(a));
	struct pollfd p[2] = {{.fd = chan_ours, .events = POLLIN}, {.fd = dfd, .events = POLLIN}};
	CHECK(poll(p, 2, WAIT_MS) >= 1);
	int from = p[0].revents & POLLIN ? chan_ours : dfd;
	CHECK(v4v_recv_fds(from, &ar, sizeof(ar), &virq, 1, &nfds, 0) >= (ssize_t)sizeof(ar.r));
	if (nfds)
		close(virq);
	return (long)ar.r.ret;
}

/* A staging area is one channel's: not a ring, not a send ring, not
 * another channel's staging area; and a ring is no staging area. */
static void staging_as_ring(void)
{
	start();
	int dfd = t_domain_fd("evil", NULL);
	struct v4v_domain *h;
	CHECK_EQ(v4v_open_fd(dfd, &h), 0);
	struct counts base = baseline(h->chan);
	int sv[2], sv2[2], bell[2], sfd = v4v_memfd_sealed("staging", V4V_STAGING_MEM);
	CHECK(sfd >= 0);
	seqpair(sv);
	seqpair(sv2);
	seqpair(bell);
	CHECK_EQ(attach_with(dfd, sv[1], sfd, sv[0]), 0);
	close(sv[1]);
	counts_become(&base, 2, 1); /* channel, VIRQ; the staging area */
	/* v4vd's writes into a ring there would be the channel's payloads. */
	CHECK_EQ(reg(sv[0], 1, sfd, -1, -1), -EBUSY);
	CHECK_EQ(reg(sv[0], 2, ring_memfd(), bell[1], sfd), -EBUSY);
	CHECK_EQ(reg(h->chan, 3, sfd, -1, -1), -EBUSY);
	CHECK_EQ(attach_with(dfd, sv2[1], sfd, sv2[0]), -EBUSY);
	/* A ring's memory is no staging area either. */
	int mem = ring_memfd(), big = v4v_memfd_sealed("big", V4V_STAGING_MEM);
	CHECK(big >= 0);
	CHECK_EQ(reg(h->chan, 4, big, -1, -1), 0);
	CHECK_EQ(attach_with(dfd, sv2[1], big, sv2[0]), -EBUSY);
	CHECK_EQ(unreg(h->chan, 4), 0);
	close(sv[0]); /* the channel goes, and with it its staging area */
	counts_become(&base, 0, 0);
	CHECK_EQ(reg(h->chan, 5, sfd, -1, -1), 0); /* free again */
	CHECK_EQ(unreg(h->chan, 5), 0);
	close(mem);
	close(big);
	close(sfd);
	for (int i = 0; i < 2; i++) {
		close(sv2[i]);
		close(bell[i]);
	}
	v4v_close(h);
	close(dfd);
	finish();
}

/* One socket is one doorbell: a copy kept of a doorbell v4vd holds is not
 * a second ring's, nor a channel. */
static void bell_is_held(void)
{
	start();
	int dfd = t_domain_fd("evil", NULL);
	struct v4v_domain *h;
	CHECK_EQ(v4v_open_fd(dfd, &h), 0);
	struct counts base = baseline(h->chan);
	int m1 = ring_memfd(), m2 = ring_memfd(), sv[2],
	    sfd = v4v_memfd_sealed("s", V4V_STAGING_MEM);
	CHECK(sfd >= 0);
	seqpair(sv);
	CHECK_EQ(reg(h->chan, 1, m1, sv[1], -1), 0);
	CHECK_EQ(reg(h->chan, 2, m2, sv[1], -1), -EINVAL);
	CHECK_EQ(attach_with(dfd, sv[1], sfd, sv[0]), -EINVAL);
	counts_become(&base, 1, 1);
	CHECK_EQ(unreg(h->chan, 1), 0);
	counts_become(&base, 0, 0);
	for (int i = 0; i < 2; i++)
		close(sv[i]);
	close(m1);
	close(m2);
	close(sfd);
	v4v_close(h);
	close(dfd);
	finish();
}

/* What v4vd let go of may be handed again (a socket binding to a port in
 * use retries with the same doorbell and send ring). */
static void bell_again_after_refusal(void)
{
	start();
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline(h->chan);
	int m1 = ring_memfd(), m2 = ring_memfd(), t = ring_memfd(), sv[2];
	seqpair(sv);
	CHECK_EQ(reg(h->chan, 1, m1, -1, -1), 0);
	struct v4v_req_register q = {
	    .h = {.op = V4V_OP_REGISTER_RING},
	    .ring = {.aport = 1, .partner_id = V4V_DOMID_ANY, .len = 4096},
	    .flags = V4V_REGISTER_FAIL_EXIST,
	    .tx_len = 4096,
	};
	int fds[3] = {m2, sv[1], t};
	CHECK_EQ(raw(h->chan, &q, sizeof(q), fds, 3), -EEXIST);
	q.ring.aport = 2;
	CHECK_EQ(raw(h->chan, &q, sizeof(q), fds, 3), 0);
	counts_become(&base, 1, 3);
	CHECK_EQ(unreg(h->chan, 1), 0);
	CHECK_EQ(unreg(h->chan, 2), 0);
	counts_become(&base, 0, 0);
	for (int i = 0; i < 2; i++)
		close(sv[i]);
	close(m1);
	close(m2);
	close(t);
	v4v_close(h);
	finish();
}

/* A doorbell is connected to the domain: an unconnected socket would hang
 * up at once (and the ring vanish right after its registration said 0). */
static void bell_not_connected(void)
{
	start();
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline(h->chan);
	int mem = ring_memfd(), s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(s >= 0);
	CHECK_EQ(reg(h->chan, 1, mem, s, -1), -ENOTCONN);
	counts_become(&base, 0, 0);
	close(s);
	close(mem);
	v4v_close(h);
	finish();
}

static const struct t_case cases[] = {
    T_CASE(bell_is_own_socket),	 T_CASE(bell_is_other_channel), T_CASE(bell_copy_kept),
    T_CASE(channel_copy_kept),	 T_CASE(memfd_aliases),		T_CASE(rereg_bell_added),
    T_CASE(rereg_bell_dropped),	 T_CASE(rereg_tx_dropped),	T_CASE(rereg_tx_replaced),
    T_CASE(rereg_while_blocked), T_CASE(rereg_refused),		T_CASE(rereg_wakes_waiters),
    T_CASE(staging_as_ring),	 T_CASE(bell_is_held),		T_CASE(bell_again_after_refusal),
    T_CASE(bell_not_connected),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, ARRAY_SIZE(cases));
}
