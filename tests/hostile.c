/* SPDX-License-Identifier: MIT */
/*
 * A hostile domain, one case per misbehaviour (docs/ARCHITECTURE.md, "Trust
 * boundaries").  The attacker talks to v4vd at the wire level: hand-built
 * packets on its channel (struct v4v_domain's chan), fds of its choosing,
 * scribbles on its own rings.  Each case checks the exact error the
 * attacker gets, then that v4vd is alive, that a well-behaved pair of
 * domains still exchanges a datagram, and, where the attack passed fds or
 * made v4vd map memory, that v4vd's fd and mapping counts are back where
 * they were.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/barrier.h"
#include "common/util.h"
#include "wire/proto.h"
#include "lib/lib.h"
#include "t.h"

#define WAIT_MS 10000 /* failure guard, never a synchronization delay */
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

/* ---- what a case opens, released by finish() for LeakSanitizer ---------- */

static struct v4v_rx *held_rings[16];
static unsigned nrings;

static struct v4v_rx *ring(struct v4v_domain *d, v4v_port_t aport, uint32_t len)
{
	struct v4v_rx *r;
	CHECK(nrings < ARRAY_SIZE(held_rings));
	CHECK_EQ(v4v_ring_register(d, aport, V4V_DOMID_ANY, len, 0, &r), 0);
	return held_rings[nrings++] = r;
}

/* ---- the bystanders ------------------------------------------------------ */

/* A well-behaved pair: good_tx sends to good_rx's ring after every attack. */
static struct v4v_domain *good_tx, *good_rx;
static struct v4v_rx *good_ring;

static void start(void)
{
	t_seed();
	t_v4vd_start(NULL);
	good_tx = t_domain("good-tx");
	good_rx = t_domain("good-rx");
	good_ring = ring(good_rx, 7, 4096);
}

static void v4vd_alive(void)
{
	int st;
	CHECK_EQ(waitpid(t_v4vd_pid(), &st, WNOHANG), 0);
}

/* v4vd is alive and still serves others: a datagram arrives intact, from
 * the right sender, with a VIRQ. */
static void others_unaffected(void)
{
	uint8_t msg[200], got[200];
	size_t n = 1 + t_rand() % sizeof(msg);
	struct v4v_addr dst = v4v_rx_addr(good_ring);
	struct iovec iov = {msg, n};
	struct v4v_msg m;

	v4vd_alive();
	for (size_t i = 0; i < n; i++)
		msg[i] = (uint8_t)t_rand();
	CHECK_EQ(v4v_sendv(good_tx, 99, &dst, &iov, 1, 5), n);
	CHECK(t_wait_virq(good_rx, WAIT_MS));
	CHECK_EQ(v4v_rx_peek(good_ring, &m), 1);
	CHECK_EQ(m.len, n);
	CHECK_EQ(m.source.domain_id, v4v_domid(good_tx));
	CHECK_EQ(m.source.aport, 99);
	CHECK_EQ(m.message_type, 5);
	CHECK_EQ(v4v_msg_read(&m, got, sizeof(got)), n);
	CHECK(memcmp(got, msg, n) == 0);
	v4v_rx_consume(good_ring, &m);
	CHECK_EQ(v4v_rx_peek(good_ring, &m), 0);
}

/* Every case ends here: one last look at the bystanders, then release. */
static void finish(void)
{
	others_unaffected();
	while (nrings)
		v4v_ring_unregister(held_rings[--nrings]);
	t_domains_close();
}

/* ---- v4vd's resources ---------------------------------------------------- */

struct counts {
	int fds, maps, memfd_maps;
};

/* Mappings of memfds (rings, staging areas), whatever the allocator does. */
static struct counts counts_now(void)
{
	return (struct counts){t_v4vd_fds(), t_v4vd_maps(), t_v4vd_memfd_maps()};
}

/*
 * Every mapping v4vd makes for a domain is of a memfd; the others belong to
 * its allocator, which under ASan maps memory of its own as it goes and
 * keeps it (quarantine, size classes), so there only memfd maps must match.
 */
static bool counts_eq(const struct counts *a, const struct counts *b)
{
	return a->fds == b->fds && a->memfd_maps == b->memfd_maps &&
	       (T_SANITIZED || a->maps == b->maps);
}

/*
 * The baseline, taken after a round trip on a channel: v4vd serves ready
 * fds in order, so the hang-ups of earlier control connections are handled
 * by then and none is counted.
 */
static struct counts baseline(void)
{
	struct v4v_event ev;
	CHECK(v4v_events(good_tx, &ev, 1) >= 0);
	return counts_now();
}

/* Hang-ups are handled asynchronously: poll (bounded) until v4vd's counts
 * are back to base. */
static void counts_back(const struct counts *base)
{
	struct counts now;
	for (int i = 0; i < WAIT_MS; i++) {
		now = counts_now();
		if (counts_eq(&now, base))
			return;
		poll(NULL, 0, 1);
	}
	fprintf(stderr, "v4vd holds %d fds, %d maps (%d of memfds), expected %d, %d (%d)\n",
		now.fds, now.maps, now.memfd_maps, base->fds, base->maps, base->memfd_maps);
	exit(1);
}

/* ---- raw hypercalls -------------------------------------------------------- */

union reply {
	struct v4v_reply r;
	uint8_t raw[V4V_REPLY_MAX];
};

static uint32_t next_seq = 1000;

/* Wait for a packet on fd; a hang is a failure, not a test timeout. */
static void readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	CHECK_EQ(poll(&p, 1, WAIT_MS), 1);
}

/* Send n raw bytes (and fds) on d's channel; returns the reply's ret. */
static long raw_fds(struct v4v_domain *d, const void *pkt, size_t n, const int *fds, unsigned nfds,
		    union reply *rep, size_t *got)
{
	unsigned nr;
	CHECK_EQ(v4v_send_fds(d->chan, pkt, n, fds, nfds, 0), n);
	readable(d->chan);
	ssize_t r = v4v_recv_fds(d->chan, rep, sizeof(*rep), NULL, 0, &nr, MSG_DONTWAIT);
	CHECK(r >= (ssize_t)sizeof(rep->r));
	if (got)
		*got = (size_t)r;
	return (long)rep->r.ret;
}

/* A request whose header we fill: the reply must echo op and seq. */
static long raw(struct v4v_domain *d, void *pkt, size_t n, const int *fds, unsigned nfds)
{
	union reply rep;
	struct v4v_req_hdr *h = pkt;
	h->seq = next_seq++;
	long ret = raw_fds(d, pkt, n, fds, nfds, &rep, NULL);
	CHECK_EQ(rep.r.h.op, h->op);
	CHECK_EQ(rep.r.h.seq, h->seq);
	return ret;
}

static struct v4v_req_register reg_req(v4v_port_t aport, uint32_t len)
{
	return (struct v4v_req_register){
	    .h = {.op = V4V_OP_REGISTER_RING},
	    .ring = {.aport = aport, .partner_id = V4V_DOMID_ANY, .len = len},
	};
}

static long raw_register(struct v4v_domain *d, v4v_port_t aport, uint32_t len, int fd)
{
	struct v4v_req_register q = reg_req(aport, len);
	return raw(d, &q, sizeof(q), &fd, fd >= 0 ? 1 : 0);
}

static struct v4v_req_sendv sendv_req(uint16_t domid, v4v_port_t aport, uint32_t n)
{
	return (struct v4v_req_sendv){
	    .h = {.op = V4V_OP_SENDV},
	    .src = {.aport = 1},
	    .dst = {.aport = aport, .domain_id = domid},
	    .niov = 1,
	    .iov_len = {n},
	};
}

/* The attacker's channel still works: a well-formed request succeeds. */
static void channel_works(struct v4v_domain *d)
{
	struct v4v_req_hdr q = {.op = V4V_OP_EVENTS};
	CHECK(raw(d, &q, sizeof(q), NULL, 0) >= 0);
}

/* Nothing got registered on aport by the attempts. */
static void not_registered(struct v4v_domain *d, v4v_port_t aport)
{
	struct v4v_req_unregister q = {
	    .h = {.op = V4V_OP_UNREGISTER_RING},
	    .aport = aport,
	    .partner_id = V4V_DOMID_ANY,
	};
	CHECK_EQ(raw(d, &q, sizeof(q), NULL, 0), -ENOENT);
}

static int memfd_of(size_t size, unsigned seals)
{
	int fd = memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)size) == 0);
	if (seals)
		CHECK(fcntl(fd, F_ADD_SEALS, seals) == 0);
	return fd;
}

/* ---- malformed packets --------------------------------------------------- */

/* Every op's packet cut short, down to its header; then shorter than a
 * header, down to empty. */
static void truncated(void)
{
	static const struct {
		uint32_t op;
		size_t size;
	} ops[] = {
	    {V4V_OP_REGISTER_RING, sizeof(struct v4v_req_register)},
	    {V4V_OP_UNREGISTER_RING, sizeof(struct v4v_req_unregister)},
	    {V4V_OP_RING_POKE, sizeof(struct v4v_req_unregister)},
	    {V4V_OP_RING_SPARE, sizeof(struct v4v_req_spare)},
	    {V4V_OP_SENDV, sizeof(struct v4v_req_sendv)},
	    {V4V_OP_NOTIFY, sizeof(struct v4v_req_notify)},
	    {V4V_OP_NAME_REGISTER, sizeof(struct v4v_req_name)},
	    {V4V_OP_NAME_UNREGISTER, sizeof(struct v4v_req_name)},
	    {V4V_OP_NAME_LOOKUP, sizeof(struct v4v_req_name)},
	};
	union {
		struct v4v_req_hdr h;
		uint8_t raw[V4V_REQ_MAX];
	} q;
	union reply rep;

	start();
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline();
	for (unsigned i = 0; i < ARRAY_SIZE(ops); i++) {
		for (size_t n = sizeof(q.h); n < ops[i].size; n += 1 + n / 4) {
			memset(&q, 0, sizeof(q));
			q.h.op = ops[i].op;
			CHECK_EQ(raw(h, &q, n, NULL, 0), -EINVAL);
		}
		memset(&q, 0, sizeof(q));
		q.h.op = ops[i].op;
		CHECK_EQ(raw(h, &q, ops[i].size - 1, NULL, 0), -EINVAL);
	}
	/* EVENTS is a bare header: a byte more is malformed too. */
	memset(&q, 0, sizeof(q));
	q.h.op = V4V_OP_EVENTS;
	CHECK_EQ(raw(h, &q, sizeof(q.h) + 1, NULL, 0), -EINVAL);
	/* Shorter than a header: nothing to echo, still an answer. */
	q.h = (struct v4v_req_hdr){.op = V4V_OP_SENDV, .seq = 77};
	CHECK_EQ(raw_fds(h, &q, 4, NULL, 0, &rep, NULL), -EINVAL);
	CHECK_EQ(rep.r.h.seq, 0);
	CHECK_EQ(raw_fds(h, &q, 1, NULL, 0, &rep, NULL), -EINVAL);
	/* An empty packet is the shortest of all, not a hang-up; with an fd
	 * or without. */
	CHECK_EQ(raw_fds(h, &q, 0, NULL, 0, &rep, NULL), -EINVAL);
	int fd = memfd_of(64 + 4096, F_SEAL_SHRINK);
	CHECK_EQ(raw_fds(h, &q, 0, &fd, 1, &rep, NULL), -EINVAL);
	close(fd);
	channel_works(h);
	counts_back(&base);
	finish();
}

/* Bigger than any request: an error reply, with the fds it carried closed. */
static void oversize(void)
{
	static uint8_t big[65536];
	union reply rep;
	size_t sizes[] = {V4V_REQ_MAX + 1, V4V_REQ_MAX + 4096, sizeof(big)};

	start();
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline();
	int fd = memfd_of(64 + 4096, F_SEAL_SHRINK);
	for (unsigned i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct v4v_req_register q = reg_req(1, 4096);
		memset(big, 0xAB, sizeof(big));
		memcpy(big, &q, sizeof(q));
		CHECK_EQ(raw_fds(h, big, sizes[i], &fd, i % 2, &rep, NULL), -EMSGSIZE);
		channel_works(h);
	}
	close(fd);
	not_registered(h, 1);
	counts_back(&base);
	finish();
}

static void unknown_op(void)
{
	static const uint32_t ops[] = {0, 5, 15, 31, 33, 0x100, 0x80000003u, 0xFFFFFFFFu};
	uint8_t q[64];

	start();
	struct v4v_domain *h = t_domain("evil");
	for (unsigned i = 0; i < ARRAY_SIZE(ops); i++) {
		memset(q, 0, sizeof(q));
		memcpy(q, &ops[i], sizeof(ops[i]));
		CHECK_EQ(raw(h, q, sizeof(struct v4v_req_hdr), NULL, 0), -ENOSYS);
		CHECK_EQ(raw(h, q, sizeof(q), NULL, 0), -ENOSYS);
	}
	channel_works(h);
	finish();
}

/* Fds where none belong, none where one must be, too many: all closed. */
static void wrong_fds(void)
{
	start();
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline();
	int ring = memfd_of(64 + 4096, F_SEAL_SHRINK), p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	int extra = dup(p[0]);
	int four[4] = {ring, p[0], p[1], extra};

	struct v4v_req_register q = reg_req(1, 4096);
	CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), -EBADF);
	/* A second fd must be a doorbell socket, not a pipe. */
	CHECK_EQ(raw(h, &q, sizeof(q), four, 2), -ENOTSOCK);
	/* More fds than any request takes: refused as a whole. */
	union reply rep;
	CHECK_EQ(raw_fds(h, &q, sizeof(q), four, 4, &rep, NULL), -EMSGSIZE);
	not_registered(h, 1);

	struct v4v_req_sendv s = sendv_req(v4v_domid(good_rx), 7, 1);
	CHECK_EQ(raw(h, &s, sizeof(s), &ring, 1), -EBADF);
	struct v4v_req_hdr ev = {.op = V4V_OP_EVENTS};
	CHECK_EQ(raw(h, &ev, sizeof(ev), four, 2), -EBADF);
	/* ATTACH belongs on the domain fd, never on a channel. */
	struct v4v_req_attach at = {.h = {.op = V4V_OP_ATTACH}, .version = V4V_PROTO_VERSION};
	CHECK_EQ(raw(h, &at, sizeof(at), four, 2), -EINVAL);
	CHECK_EQ(raw(h, &at, sizeof(at), NULL, 0), -EBADF);

	for (unsigned i = 0; i < 4; i++)
		close(four[i]);
	channel_works(h);
	counts_back(&base);
	finish();
}

/* ---- ring memory ------------------------------------------------------- */

static void unsealed_memfd(void)
{
	start();
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline();
	static const unsigned seals[] = {0, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_GROW | F_SEAL_SEAL};

	for (unsigned i = 0; i < ARRAY_SIZE(seals); i++) {
		int fd = memfd_of(64 + 4096, seals[i]);
		CHECK_EQ(raw_register(h, 1, 4096, fd), -EPERM);
		close(fd);
	}
	/* A memfd that cannot be sealed at all. */
	int fd = memfd_create("nosealing", MFD_CLOEXEC);
	CHECK(fd >= 0 && ftruncate(fd, 64 + 4096) == 0);
	CHECK_EQ(raw_register(h, 1, 4096, fd), -EPERM);
	close(fd);
	not_registered(h, 1);
	counts_back(&base);
	finish();
}

static void short_memfd(void)
{
	static const size_t sizes[] = {0, 64, 64 + 4096 - 1, 4096};
	start();
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline();

	for (unsigned i = 0; i < ARRAY_SIZE(sizes); i++) {
		int fd = memfd_of(sizes[i], F_SEAL_SHRINK);
		CHECK_EQ(raw_register(h, 1, 4096, fd), -EFAULT);
		close(fd);
	}
	not_registered(h, 1);
	/* Exactly big enough is enough; growing it later is harmless. */
	int fd = memfd_of(64 + 4096, F_SEAL_SHRINK);
	CHECK_EQ(raw_register(h, 1, 4096, fd), 0);
	CHECK(ftruncate(fd, 1 << 20) == 0);
	close(fd);
	struct v4v_req_unregister u = {
	    .h = {.op = V4V_OP_UNREGISTER_RING},
	    .aport = 1,
	    .partner_id = V4V_DOMID_ANY,
	};
	CHECK_EQ(raw(h, &u, sizeof(u), NULL, 0), 0);
	counts_back(&base);
	finish();
}

/* A plain file in dir, unlinked at once. */
static int plain_file(const char *dir)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/hostile-XXXXXX", dir);
	int fd = mkostemp(path, O_CLOEXEC);
	CHECK(fd >= 0 && ftruncate(fd, 64 + 4096) == 0);
	unlink(path);
	return fd;
}

/* tmpfs files are shmem like memfds but can never be sealed. */
static long plain_file_error(int fd)
{
	struct statfs fs;
	CHECK(fstatfs(fd, &fs) == 0);
	return fs.f_type == TMPFS_MAGIC ? -EPERM : -EBADF;
}

static void non_memfd(void)
{
	start();
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline();
	int p[2], sv[2];

	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	const int fds[] = {p[0],
			   p[1],
			   sv[0],
			   eventfd(0, EFD_CLOEXEC),
			   open("/dev/null", O_RDWR | O_CLOEXEC),
			   open("/", O_PATH | O_CLOEXEC)};
	for (unsigned i = 0; i < ARRAY_SIZE(fds); i++) {
		CHECK(fds[i] >= 0);
		CHECK_EQ(raw_register(h, 1, 4096, fds[i]), -EBADF);
		close(fds[i]);
	}
	close(sv[1]);
	static const char *const dirs[] = {".", "/dev/shm"};
	for (unsigned i = 0; i < ARRAY_SIZE(dirs); i++) {
		int fd = plain_file(dirs[i]);
		CHECK_EQ(raw_register(h, 1, 4096, fd), plain_file_error(fd));
		close(fd);
	}
	not_registered(h, 1);
	counts_back(&base);
	finish();
}

/* ---- sendv ------------------------------------------------------------- */

static void staging_bounds(void)
{
	static const struct {
		uint64_t off;
		uint32_t len;
	} bad[] = {
	    {V4V_STAGING_SIZE + 1ull, 0}, {V4V_STAGING_SIZE, 1}, {V4V_STAGING_SIZE - 10, 11},
	    {1, V4V_STAGING_SIZE},	  {1ull << 32, 1},	 {UINT64_MAX, 1},
	    {UINT64_MAX - 15, 16},
	};
	start();
	struct v4v_domain *h = t_domain("evil");
	uint16_t rx = v4v_domid(good_rx);

	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		struct v4v_req_sendv q = sendv_req(rx, 7, bad[i].len);
		q.staging_off = bad[i].off;
		CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), -EFAULT);
	}
	/* Spread over several iovs: the total is what must fit. */
	struct v4v_req_sendv q = sendv_req(rx, 7, 0);
	q.niov = 8;
	for (unsigned i = 0; i < 8; i++)
		q.iov_len[i] = V4V_STAGING_SIZE / 8;
	q.staging_off = 16;
	CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), -EFAULT);
	/* More than the staging area holds at all. */
	q = sendv_req(rx, 7, 0xFFFFFFFFu);
	CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), -EMSGSIZE);
	q.niov = 2;
	q.iov_len[0] = q.iov_len[1] = V4V_STAGING_SIZE / 2 + 16;
	CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), -EMSGSIZE);

	/* The very end of the staging area is in bounds, to the byte. */
	memcpy(h->staging + V4V_STAGING_SIZE - 5, "edge!", 5);
	q = sendv_req(rx, 7, 5);
	q.staging_off = V4V_STAGING_SIZE - 5;
	CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), 5);
	struct v4v_msg m;
	char got[8];
	CHECK_EQ(v4v_rx_peek(good_ring, &m), 1);
	CHECK_EQ(v4v_msg_read(&m, got, sizeof(got)), 5);
	CHECK(memcmp(got, "edge!", 5) == 0);
	CHECK_EQ(m.source.domain_id, v4v_domid(h));
	v4v_rx_consume(good_ring, &m);
	CHECK(t_wait_virq(good_rx, WAIT_MS));
	finish();
}

static void niov(void)
{
	static const uint32_t counts[] = {V4V_MAX_IOV + 1, 64, 0x80000000u, 0xFFFFFFFFu};
	start();
	struct v4v_domain *h = t_domain("evil");
	uint16_t rx = v4v_domid(good_rx);

	for (unsigned i = 0; i < ARRAY_SIZE(counts); i++) {
		struct v4v_req_sendv q = sendv_req(rx, 7, 1);
		q.niov = counts[i];
		CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), -EINVAL);
	}
	/* Lengths past niov are reserved: zero or refused. */
	struct v4v_req_sendv q = sendv_req(rx, 7, 1);
	q.iov_len[V4V_MAX_IOV - 1] = 1;
	CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), -EINVAL);
	q.niov = V4V_MAX_IOV;
	CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), 2);
	struct v4v_msg m;
	CHECK_EQ(v4v_rx_peek(good_ring, &m), 1);
	CHECK_EQ(m.len, 2);
	v4v_rx_consume(good_ring, &m);
	CHECK(t_wait_virq(good_rx, WAIT_MS));
	finish();
}

/* Reserved fields are zero, or the request is refused. */
static void pads(void)
{
	start();
	struct v4v_domain *h = t_domain("evil");
	struct counts base = baseline();
	int fd = memfd_of(64 + 4096, F_SEAL_SHRINK);

	struct v4v_req_register r = reg_req(1, 4096);
	r.ring.pad = 1;
	CHECK_EQ(raw(h, &r, sizeof(r), &fd, 1), -EINVAL);
	r = reg_req(1, 4096);
	r.flags = 0x80;
	CHECK_EQ(raw(h, &r, sizeof(r), &fd, 1), -EINVAL);
	not_registered(h, 1);

	struct v4v_req_unregister u = {
	    .h = {.op = V4V_OP_UNREGISTER_RING},
	    .aport = 7,
	    .partner_id = V4V_DOMID_ANY,
	    .pad = 0x100,
	};
	CHECK_EQ(raw(h, &u, sizeof(u), NULL, 0), -EINVAL);

	struct v4v_req_sendv s = sendv_req(v4v_domid(good_rx), 7, 1);
	s.src.pad = 1;
	CHECK_EQ(raw(h, &s, sizeof(s), NULL, 0), -EINVAL);
	s = sendv_req(v4v_domid(good_rx), 7, 1);
	s.dst.pad = 0x8000;
	CHECK_EQ(raw(h, &s, sizeof(s), NULL, 0), -EINVAL);

	struct v4v_req_notify n = {.h = {.op = V4V_OP_NOTIFY}, .pad = 1};
	CHECK_EQ(raw(h, &n, sizeof(n), NULL, 0), -EINVAL);

	/* On the domain fd: an attach with a nonzero pad. */
	int sv[2], staging = v4v_memfd_sealed("staging", V4V_STAGING_MEM);
	CHECK(staging >= 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	struct v4v_req_attach a = {
	    .h = {.op = V4V_OP_ATTACH, .seq = 5},
	    .version = V4V_PROTO_VERSION,
	    .pad = 1,
	};
	int afds[2] = {sv[1], staging};
	union reply rep;
	CHECK_EQ(v4v_send_fds(h->domain_fd, &a, sizeof(a), afds, 2, 0), sizeof(a));
	readable(h->domain_fd);
	CHECK_EQ(recv(h->domain_fd, &rep, sizeof(rep), 0), sizeof(rep.r));
	CHECK_EQ(rep.r.ret, -EINVAL);
	CHECK_EQ(rep.r.h.seq, 5);
	close(sv[0]);
	close(sv[1]);
	close(staging);
	close(fd);

	/* Nothing refused took effect: the good ring is still there. */
	channel_works(h);
	counts_back(&base);
	finish();
}

static void notify_limits(void)
{
	union {
		struct v4v_req_notify q;
		uint8_t raw[V4V_REQ_MAX];
	} q;
	union reply rep;
	size_t ent = sizeof(struct v4v_ring_data_ent), got;

	start();
	struct v4v_domain *h = t_domain("evil");
	memset(&q, 0, sizeof(q));
	q.q.h.op = V4V_OP_NOTIFY;

	/* Too many entries, whether or not the packet carries them. */
	static const uint32_t big[] = {V4V_MAX_NOTIFY + 1, 1000, 0xFFFFFFFFu};
	for (unsigned i = 0; i < ARRAY_SIZE(big); i++) {
		q.q.nent = big[i];
		CHECK_EQ(raw(h, &q, sizeof(q.q), NULL, 0), -E2BIG);
	}
	q.q.nent = V4V_MAX_NOTIFY + 1;
	CHECK_EQ(raw(h, &q, sizeof(q.q) + (V4V_MAX_NOTIFY + 1) * ent, NULL, 0), -E2BIG);

	/* A length that does not match nent. */
	static const struct {
		uint32_t nent, carried;
	} odd[] = {{2, 1}, {1, 2}, {0, 1}, {V4V_MAX_NOTIFY, V4V_MAX_NOTIFY - 1}};
	for (unsigned i = 0; i < ARRAY_SIZE(odd); i++) {
		q.q.nent = odd[i].nent;
		CHECK_EQ(raw(h, &q, sizeof(q.q) + odd[i].carried * ent, NULL, 0), -EINVAL);
		CHECK_EQ(raw(h, &q, sizeof(q.q) + odd[i].carried * ent + 1, NULL, 0), -EINVAL);
	}

	/* The most entries allowed: every one answered. */
	q.q.nent = V4V_MAX_NOTIFY;
	q.q.h.seq = next_seq++;
	struct v4v_ring_data_ent *e = (struct v4v_ring_data_ent *)(q.raw + sizeof(q.q));
	for (unsigned i = 0; i < V4V_MAX_NOTIFY; i++)
		e[i] = (struct v4v_ring_data_ent){
		    .ring = {.aport = i % 2 ? 7 : 1000 + i, .domain_id = v4v_domid(good_rx)},
		    .flags = 0xFFFF,
		    .pad = 0xFFFF,
		    .space_required = i,
		};
	CHECK_EQ(raw_fds(h, &q, sizeof(q.q) + V4V_MAX_NOTIFY * ent, NULL, 0, &rep, &got), 0);
	CHECK_EQ(got, sizeof(rep.r) + V4V_MAX_NOTIFY * ent);
	e = (struct v4v_ring_data_ent *)(rep.raw + sizeof(rep.r));
	for (unsigned i = 0; i < V4V_MAX_NOTIFY; i++) {
		CHECK_EQ(e[i].pad, 0);
		CHECK_EQ(e[i].flags, i % 2 ? V4V_RING_EXISTS | V4V_RING_SHARED | V4V_RING_EMPTY |
						 V4V_RING_SUFFICIENT
					   : 0);
	}
	channel_works(h);
	finish();
}

/* ---- claiming to be someone else ------------------------------------------ */

static void spoofed_source(void)
{
	static const uint16_t claims[] = {0, 1, 2, 3, V4V_DOMID_ANY, V4V_DOMID_MAX, 0xFFFF};
	start();
	struct v4v_domain *h = t_domain("evil");
	uint16_t victim = v4v_domid(good_tx);

	for (unsigned i = 0; i < ARRAY_SIZE(claims) + 1; i++) {
		struct v4v_req_sendv q = sendv_req(v4v_domid(good_rx), 7, 3);
		q.src =
		    (struct v4v_addr){.aport = 4242 + i, .domain_id = i ? claims[i - 1] : victim};
		memcpy(h->staging, "who", 3);
		CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), 3);
		struct v4v_msg m;
		CHECK_EQ(v4v_rx_peek(good_ring, &m), 1);
		CHECK_EQ(m.source.domain_id, v4v_domid(h));
		CHECK_EQ(m.source.aport, 4242 + i);
		CHECK_EQ(m.source.pad, 0);
		v4v_rx_consume(good_ring, &m);
	}
	CHECK(t_wait_virq(good_rx, WAIT_MS));

	/* Nor can it take down, or poke, another domain's ring. */
	struct v4v_req_unregister u = {
	    .h = {.op = V4V_OP_UNREGISTER_RING},
	    .aport = 7,
	    .partner_id = V4V_DOMID_ANY,
	};
	CHECK_EQ(raw(h, &u, sizeof(u), NULL, 0), -ENOENT);
	u.h.op = V4V_OP_RING_POKE;
	CHECK_EQ(raw(h, &u, sizeof(u), NULL, 0), -ENOENT);
	finish();
}

/* ---- scribbling on its own rings ----------------------------------------- */

static void store_rx(struct v4v_rx *r, uint32_t v)
{
	v4v_store_release(&v4v__rx_ring(r)->rx_ptr, v);
}

/* The owner is told, through its VIRQ, that ring `port` is broken. */
static void told_broken(struct v4v_domain *owner, v4v_port_t port)
{
	struct v4v_event ev[8];
	CHECK(t_wait_virq(owner, WAIT_MS));
	int n = v4v_events(owner, ev, 8);
	CHECK(n >= 1);
	for (int i = 0; i < n; i++)
		if (ev[i].type == V4V_EV_RING_BROKEN && ev[i].ring.aport == port &&
		    ev[i].ring.domain_id == v4v_domid(owner))
			return;
	fprintf(stderr, "no RING_BROKEN event for port %u\n", port);
	exit(1);
}

static void send_to(struct v4v_domain *from, struct v4v_rx *r, long expect)
{
	struct v4v_addr dst = v4v_rx_addr(r);
	struct iovec iov = {"ping", 4};
	CHECK_EQ(v4v_sendv(from, 1, &dst, &iov, 1, 0), expect);
}

static void garbage_rx(void)
{
	static const uint32_t garbage[] = {8, 4096, 0xFFFFFFF0u, 1};
	struct v4v_rx *r[ARRAY_SIZE(garbage)], *spare;
	struct v4v_msg m;

	start();
	struct v4v_domain *h = t_domain("evil");
	for (unsigned i = 0; i < ARRAY_SIZE(garbage); i++)
		r[i] = ring(h, 10 + i, 4096);
	spare = ring(h, 20, 4096);

	for (unsigned i = 0; i < ARRAY_SIZE(garbage); i++) {
		send_to(good_tx, r[i], 4);
		store_rx(r[i], garbage[i]);
		send_to(good_tx, r[i], -ECONNREFUSED);
		told_broken(h, 10 + i);
		/* Only that ring: the owner's others and everyone else carry on. */
		send_to(good_tx, spare, 4);
		CHECK_EQ(v4v_rx_peek(spare, &m), 1);
		v4v_rx_consume(spare, &m);
		others_unaffected();
	}
	/* Broken for good, even once a sane value is back. */
	store_rx(r[0], 0);
	send_to(good_tx, r[0], -ECONNREFUSED);
	/* Notify reports a broken ring as absent. */
	struct v4v_ring_data_ent e = {.ring = v4v_rx_addr(r[1]), .space_required = 4};
	CHECK_EQ(v4v_notify(good_tx, &e, 1), 0);
	CHECK_EQ(e.flags, 0);
	/* Registering it afresh gives a working ring. */
	struct v4v_rx *again = ring(h, 10, 4096);
	send_to(good_tx, again, 4);
	CHECK_EQ(v4v_rx_peek(again, &m), 1);
	finish();
}

/* Corrupt message headers and tx_ptr: the reader's problem, not v4vd's. */
static void garbage_msg(void)
{
	struct v4v_msg m;
	char got[8];

	start();
	struct v4v_domain *h = t_domain("evil");
	struct v4v_rx *r = ring(h, 30, 4096);
	struct v4v_ring *ring = v4v__rx_ring(r);
	send_to(good_tx, r, 4);

	/* tx_ptr is v4vd's: v4vd never reads it back, and rewrites it. */
	ring->tx_ptr = 12345;
	CHECK_EQ(v4v_rx_peek(r, &m), -EBADMSG);
	send_to(good_tx, r, 4);
	CHECK_EQ(v4v_rx_peek(r, &m), 1);
	CHECK_EQ(v4v_msg_read(&m, got, sizeof(got)), 4);
	CHECK(memcmp(got, "ping", 4) == 0);

	/* Headers claiming too little, too much, or an absurd length. */
	static const uint32_t lens[] = {0, 15, 4096, 0xFFFFFFF8u};
	struct v4v_ring_message_header *hdr = (void *)ring->ring;
	uint32_t saved = hdr->len;
	for (unsigned i = 0; i < ARRAY_SIZE(lens); i++) {
		hdr->len = lens[i];
		CHECK_EQ(v4v_rx_peek(r, &m), -EBADMSG);
		/* v4vd goes on writing into that ring: it never reads headers. */
		send_to(good_tx, r, 4);
		others_unaffected();
	}
	hdr->len = saved;
	CHECK_EQ(v4v_rx_peek(r, &m), 1);
	CHECK_EQ(m.len, 4);
	/* Garbage in the reserved bytes is ignored too. */
	memset(ring->reserved, 0xFF, sizeof(ring->reserved));
	send_to(good_tx, r, 4);
	finish();
}

/* ---- too much ------------------------------------------------------------ */

/*
 * Thousands of sends to a ring nobody drains: EAGAIN, each domain queued
 * once (all its processes share its wait, as in Argo); past the per-ring
 * waiter limit of domains, EBUSY.  Then the owner drains one
 * message and notifies: the waiters are woken.
 */
static void flood(void)
{
	enum { EXTRA = V4V_MAX_WAITERS + 1, SENDS = 5000 };
	struct v4v_domain *c[EXTRA];
	struct v4v_rx *sink_ring;
	struct iovec iov = {NULL, 100};
	long full = 0, again = 0;

	start();
	struct v4v_domain *sink = t_domain("sink");
	sink_ring = ring(sink, 1, 4096);
	struct v4v_addr dst = v4v_rx_addr(sink_ring);
	uint16_t evil;
	int dfd = t_domain_fd("evil", &evil);
	struct v4v_domain *o[V4V_MAX_WAITERS]; /* the other waiting domains */
	for (unsigned i = 0; i < V4V_MAX_WAITERS; i++)
		o[i] = t_domain(NULL);
	struct counts base = baseline();
	for (unsigned i = 0; i < EXTRA; i++)
		CHECK_EQ(v4v_open_fd(dfd, &c[i]), 0);

	iov.iov_base = c[0]->staging;
	for (int i = 0; i < SENDS; i++) {
		long r = v4v_sendv(c[0], 1, &dst, &iov, 1, 0);
		CHECK(r == 100 || r == -EAGAIN);
		full += r == 100;
		again += r == -EAGAIN;
	}
	/* (4096 - 16) / 128 messages fit; every other send met a full ring. */
	CHECK_EQ(full, (4096 - 16) / 128);
	CHECK_EQ(again, SENDS - full);
	/* As in Argo, waits are per (ring, source domain): every process of
	 * evil shares its one slot, however many there are. */
	for (unsigned i = 1; i < EXTRA; i++)
		CHECK_EQ(v4v_sendv(c[i], 1, &dst, &iov, 1, 0), -EAGAIN);
	/* The other slots go to other domains; past them, EBUSY. */
	for (unsigned i = 1; i < V4V_MAX_WAITERS; i++)
		CHECK_EQ(v4v_sendv(o[i], 1, &dst, &iov, 1, 0), -EAGAIN);
	iov.iov_base = o[0]->staging;
	for (int k = 0; k < 100; k++)
		CHECK_EQ(v4v_sendv(o[0], 1, &dst, &iov, 1, 0), -EBUSY);
	iov.iov_base = c[0]->staging;
	others_unaffected();

	/* The owner makes room and says so: the first waiter hears. */
	struct v4v_msg m;
	CHECK_EQ(v4v_rx_peek(sink_ring, &m), 1);
	v4v_rx_consume(sink_ring, &m);
	struct v4v_ring_data_ent none;
	CHECK_EQ(v4v_notify(sink, &none, 0), 0);
	CHECK(t_wait_virq(c[0], WAIT_MS));
	CHECK_EQ(v4v_sendv(c[0], 1, &dst, &iov, 1, 0), 100);

	for (unsigned i = 0; i < EXTRA; i++)
		v4v_close(c[i]);
	counts_back(&base);
	close(dfd);
	finish();
}

/* A client that sends and never reads its replies is dropped, not waited for. */
static void pipeline(void)
{
	struct v4v_req_hdr q = {.op = V4V_OP_EVENTS};
	long sent = 0;

	start();
	int dfd = t_domain_fd("evil", NULL);
	struct v4v_domain *h, *h2;
	CHECK_EQ(v4v_open_fd(dfd, &h), 0);
	struct counts base = baseline();
	CHECK(fcntl(h->chan, F_SETFL, O_NONBLOCK) == 0);
	for (;; sent++) {
		CHECK(sent < 10000000);
		if (send(h->chan, &q, sizeof(q), MSG_NOSIGNAL) == sizeof(q))
			continue;
		if (errno != EAGAIN)
			break;
		/* Our queue is full: v4vd either reads on or hangs up. */
		struct pollfd p = {.fd = h->chan, .events = POLLOUT};
		CHECK_EQ(poll(&p, 1, WAIT_MS), 1);
	}
	CHECK(errno == EPIPE || errno == ECONNRESET);
	fprintf(stderr, "dropped after %ld requests\n", sent);
	others_unaffected();

	/* The domain itself lives on: a new attach works and costs what the
	 * dropped one did. */
	CHECK_EQ(v4v_open_fd(dfd, &h2), 0);
	CHECK_EQ(v4v_domid(h2), v4v_domid(h));
	channel_works(h2);
	counts_back(&base);
	v4v_close(h);
	v4v_close(h2);
	close(dfd);
	finish();
}

/* ---- attach ------------------------------------------------------------- */

/* Send an attach request on a domain fd, offering chan as the channel. */
static uint32_t send_attach(int dfd, int chan, uint32_t version, unsigned nfds)
{
	int staging = v4v_memfd_sealed("staging", V4V_STAGING_MEM);
	struct v4v_req_attach a = {
	    .h = {.op = V4V_OP_ATTACH, .seq = next_seq++},
	    .version = version,
	};
	CHECK(staging >= 0);
	int fds[2] = {chan, staging};
	CHECK_EQ(v4v_send_fds(dfd, &a, sizeof(a), fds, nfds, 0), sizeof(a));
	close(staging);
	return a.h.seq;
}

/* One hand-made attach that v4vd must refuse: returns the error from the
 * domain fd, after checking the offered channel was closed unused. */
static long raw_attach(int dfd, uint32_t version, unsigned nfds)
{
	int sv[2];
	union reply rep;
	char b;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	uint32_t seq = send_attach(dfd, sv[1], version, nfds);
	close(sv[1]);
	readable(dfd);
	CHECK_EQ(recv(dfd, &rep, sizeof(rep), 0), sizeof(rep.r));
	CHECK_EQ(rep.r.h.op, V4V_OP_ATTACH);
	CHECK_EQ(rep.r.h.seq, seq);
	readable(sv[0]);
	CHECK_EQ(recv(sv[0], &b, 1, MSG_DONTWAIT), 0);
	close(sv[0]);
	return (long)rep.r.ret;
}

static void bad_version(void)
{
	static const uint32_t versions[] = {0, V4V_PROTO_VERSION + 1, 0xFFFFFFFFu};
	start();
	uint16_t id;
	int dfd = t_domain_fd("evil", &id);
	struct counts base = baseline();

	for (unsigned i = 0; i < ARRAY_SIZE(versions); i++)
		CHECK_EQ(raw_attach(dfd, versions[i], 2), -EPROTO);
	/* Right version, one fd short. */
	CHECK_EQ(raw_attach(dfd, V4V_PROTO_VERSION, 1), -EINVAL);
	/* Garbage on the domain fd is answered there, like a bad attach; an
	 * empty packet too (it is not a hang-up). */
	struct v4v_req_hdr junk = {.op = V4V_OP_SENDV, .seq = 9};
	union reply rep;
	CHECK_EQ(send(dfd, &junk, sizeof(junk), 0), sizeof(junk));
	readable(dfd);
	CHECK_EQ(recv(dfd, &rep, sizeof(rep), 0), sizeof(rep.r));
	CHECK_EQ(rep.r.ret, -EINVAL);
	CHECK_EQ(rep.r.h.seq, 9);
	CHECK_EQ(send(dfd, &junk, 0, 0), 0);
	readable(dfd);
	CHECK_EQ(recv(dfd, &rep, sizeof(rep), 0), sizeof(rep.r));
	CHECK_EQ(rep.r.ret, -EINVAL);
	CHECK_EQ(rep.r.h.op, 0);
	CHECK_EQ(rep.r.h.seq, 0);
	counts_back(&base);

	/* The domain survived all that: a proper attach works. */
	struct v4v_domain *d;
	CHECK_EQ(v4v_open_fd(dfd, &d), 0);
	CHECK_EQ(v4v_domid(d), id);
	channel_works(d);
	v4v_close(d);
	close(dfd);
	finish();
}

/*
 * Both ends of one socketpair offered as channels (or the domain fd offered
 * as a channel): v4vd would hold both ends and answer its own replies for
 * ever, keeping the domain alive.  The second is refused.
 */
static void looped_channel(void)
{
	struct v4v_attach_reply ar;
	union reply rep;
	int sv[2], virq;
	unsigned nfds;

	start();
	int dfd = t_domain_fd("evil", NULL);
	struct counts base = baseline();
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	send_attach(dfd, sv[1], V4V_PROTO_VERSION, 2);
	close(sv[1]);
	readable(sv[0]);
	CHECK_EQ(v4v_recv_fds(sv[0], &ar, sizeof(ar), &virq, 1, &nfds, 0), sizeof(ar));
	CHECK_EQ(ar.r.ret, 0);
	CHECK_EQ(nfds, 1);
	close(virq);

	/* The refusal goes out on the domain fd, never on the offered end
	 * (that would feed v4vd's own first channel a packet): the first
	 * channel hears nothing but the answer to its own next request. */
	uint32_t seq = send_attach(dfd, sv[0], V4V_PROTO_VERSION, 2);
	readable(dfd);
	CHECK_EQ(recv(dfd, &rep, sizeof(rep), 0), sizeof(rep.r));
	CHECK_EQ(rep.r.h.op, V4V_OP_ATTACH);
	CHECK_EQ(rep.r.h.seq, seq);
	CHECK_EQ(rep.r.ret, -EINVAL);
	struct v4v_req_hdr q = {.op = V4V_OP_EVENTS, .seq = next_seq++};
	CHECK_EQ(send(sv[0], &q, sizeof(q), 0), sizeof(q));
	readable(sv[0]);
	CHECK_EQ(recv(sv[0], &rep, sizeof(rep), 0), sizeof(rep.r));
	CHECK_EQ(rep.r.h.op, V4V_OP_EVENTS);
	CHECK_EQ(rep.r.h.seq, q.seq);

	/* The domain fd offered as its own channel: refused the same way. */
	int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	send_attach(dfd, dup, V4V_PROTO_VERSION, 2);
	close(dup);
	readable(dfd);
	CHECK_EQ(recv(dfd, &rep, sizeof(rep), 0), sizeof(rep.r));
	CHECK(rep.r.ret < 0);
	others_unaffected();

	/* Hanging up the first channel releases everything. */
	close(sv[0]);
	counts_back(&base);
	close(dfd);
	finish();
}

/*
 * One process of a domain registers a ring; another re-registers it with
 * its own memory and a doorbell, then exits.  The ring went with the
 * process that mapped it last; and hanging up the doorbell of a process
 * that is gone must not make v4vd touch what it freed.
 */
static void bell_owner_gone(void)
{
	struct v4v_domain *x, *y;
	struct v4v_rx *rx;
	int sv[2];

	start();
	int dfd = t_domain_fd("evil", NULL);
	CHECK_EQ(v4v_open_fd(dfd, &x), 0);
	struct counts base = baseline();
	CHECK_EQ(v4v_ring_register(x, 5, V4V_DOMID_ANY, 4096, 0, &rx), 0);
	CHECK_EQ(v4v_open_fd(dfd, &y), 0);
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	int fds[2] = {memfd_of(64 + 4096, F_SEAL_SHRINK), sv[1]};
	struct v4v_ring *mem = mmap(NULL, 64 + 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	CHECK(mem != MAP_FAILED);
	struct v4v_req_register q = reg_req(5, 4096);
	CHECK_EQ(raw(y, &q, sizeof(q), fds, 2), 0);
	close(fds[0]);
	close(sv[1]);

	/* Messages now land in the new memory. */
	send_to(good_tx, rx, 4);
	CHECK_EQ(v4v_load_acquire(&mem->tx_ptr), 32);

	v4v_close(y);
	counts_back(&base);
	send_to(good_tx, rx, -ECONNREFUSED);
	close(sv[0]);
	others_unaffected();
	munmap(mem, 64 + 4096);
	v4v_ring_unregister(rx);
	v4v_close(x);
	close(dfd);
	finish();
}

/* ---- names ------------------------------------------------------------- */

/* Unterminated strings and oversized ACLs in name requests. */
static void bad_strings(void)
{
	start();
	struct v4v_domain *h = t_domain("evil");
	static const uint32_t ops[] = {V4V_OP_NAME_REGISTER, V4V_OP_NAME_UNREGISTER,
				       V4V_OP_NAME_LOOKUP};

	for (unsigned i = 0; i < ARRAY_SIZE(ops); i++) {
		struct v4v_req_name q = {.h = {.op = ops[i]}, .domid = V4V_DOMID_ANY};
		memset(q.service, 'A', sizeof(q.service));
		CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), -EINVAL);
		q = (struct v4v_req_name){.h = {.op = ops[i]}, .domid = V4V_DOMID_ANY};
		strcpy(q.service, "svc");
		memset(q.domain, 'B', sizeof(q.domain));
		CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), -EINVAL);
		q = (struct v4v_req_name){.h = {.op = ops[i]}, .nacl = 9};
		strcpy(q.service, "svc");
		CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), -EINVAL);
	}
	/* A name that is terminated but not a legal name. */
	struct v4v_req_name q = {.h = {.op = V4V_OP_NAME_REGISTER}, .port = 1};
	strcpy(q.service, "bad name/with:junk");
	CHECK_EQ(raw(h, &q, sizeof(q), NULL, 0), -EINVAL);
	channel_works(h);
	finish();
}

static const struct t_case cases[] = {
    T_CASE(truncated),	    T_CASE(oversize),	    T_CASE(unknown_op),	     T_CASE(wrong_fds),
    T_CASE(unsealed_memfd), T_CASE(short_memfd),    T_CASE(non_memfd),	     T_CASE(staging_bounds),
    T_CASE(niov),	    T_CASE(pads),	    T_CASE(notify_limits),   T_CASE(spoofed_source),
    T_CASE(garbage_rx),	    T_CASE(garbage_msg),    T_CASE(flood),	     T_CASE(pipeline),
    T_CASE(bad_version),    T_CASE(looped_channel), T_CASE(bell_owner_gone), T_CASE(bad_strings),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
