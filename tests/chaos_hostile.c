/* SPDX-License-Identifier: MIT */
/*
 * The chaos soak's hostile domains (issue 8): beside the honest domains
 * chaos.c verifies byte for byte, NHOST domains misbehave each round, one
 * misbehaviour after another picked at random from issue 8's classes,
 * talking to v4vd at the wire level where the library would not let them
 * (hand-built packets on their channel, fds of their choosing).  Each
 * checks the exact answer it gets where there is one; the soak checks the
 * rest: the honest traffic is intact, and once everyone is gone v4vd holds
 * what it held before (domains, rings, fds, memfd mappings, RSS).
 *
 * CHAOS_HOSTILE_ONLY=a,b runs just those classes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chaos.h"
#include "common/util.h"
#include "lib/lib.h"
#include "t.h"
#include "wire/proto.h"

#define WAIT_MS	  10000 /* failure guard, never a synchronization delay */
#define RAW_PORT  40000 /* rings registered by hand */
#define LOOP_PORT 41000 /* register/unregister in a loop */
#define FULL_PORT 42000 /* the ring kept full for space waiters */
#define NSYN	  24	/* connections left half-open at once */
#define NWAIT	  8	/* extra channels that wait for space */

uint16_t host_domid[NHOST];

bool from_hostile(uint16_t domid)
{
	return t_index_of(host_domid, NHOST, domid) < NHOST;
}

enum hclass {
	H_GARBAGE,
	H_TRUNC,
	H_WRONG_FD,
	H_BELL_CHAN,
	H_BELL_DFD,
	H_BELL_COPY,
	H_TX_ALIAS,
	H_REG_LOOP,
	H_FLOOD,
	H_SYN,
	H_WAITS,
	H_SUICIDE,
	H_COUNT
};

static const struct {
	const char *name;
} classes[H_COUNT] = {
    [H_GARBAGE] = {"garbage"},	   [H_TRUNC] = {"truncated"},	[H_WRONG_FD] = {"wrong-fd"},
    [H_BELL_CHAN] = {"bell-chan"}, [H_BELL_DFD] = {"bell-dfd"}, [H_BELL_COPY] = {"bell-copy"},
    [H_TX_ALIAS] = {"mem-alias"},  [H_REG_LOOP] = {"reg-loop"}, [H_FLOOD] = {"flood"},
    [H_SYN] = {"syn-flood"},	   [H_WAITS] = {"space-waits"}, [H_SUICIDE] = {"suicide"},
};

static _Atomic uint64_t *counts; /* [H_COUNT]: shared with the parent */
static unsigned enabled;	 /* bit per class */

static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *s = list; (s = strstr(s, name)); s += n)
		if ((s == list || s[-1] == ',') && (s[n] == ',' || s[n] == '\0'))
			return true;
	return false;
}

void hostile_setup(void)
{
	const char *only = getenv("CHAOS_HOSTILE_ONLY");
	counts = mmap(NULL, H_COUNT * sizeof(*counts), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(counts != MAP_FAILED);
	for (unsigned c = 0; c < H_COUNT; c++)
		if (!only || listed(only, classes[c].name))
			enabled |= 1u << c;
	CHECK(enabled != 0);
}

void hostile_report(void)
{
	printf("chaos: hostile misbehaviours:");
	for (unsigned c = 0; c < H_COUNT; c++)
		if (enabled & 1u << c)
			printf(" %s %llu", classes[c].name, (unsigned long long)counts[c]);
	for (unsigned c = 0; c < H_COUNT; c++)
		if (!(enabled & 1u << c))
			printf(" (%s off)", classes[c].name);
	printf("\n");
}

/* ---- the hostile process ------------------------------------------------- */

static unsigned me, round_no;
static struct v4v_domain *hd;
static int hdfd;
static uint16_t honest[NDOM];
static uint64_t rng;
static uint32_t seq = 1u << 30;

#define HCHECK(cond)                                                                               \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr,                                                            \
				"round %u hostile %u: %s:%d: check failed: %s (errno %s)\n",       \
				round_no, me, __FILE__, __LINE__, #cond, strerror(errno));         \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

static uint64_t hrand(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1DULL;
}

/* A packet (and fds) on our channel, no reply read. */
static void raw_send(void *pkt, size_t n, const int *fds, unsigned nfds)
{
	struct v4v_req_hdr *h = pkt;
	if (n >= sizeof(*h))
		h->seq = seq++;
	HCHECK(v4v_send_fds(hd->chan, pkt, n, fds, nfds, 0) == (ssize_t)n);
}

/* One request, its reply's ret; the reply echoes the seq. */
static long raw(void *pkt, size_t n, const int *fds, unsigned nfds)
{
	union v4v_reply_any rep;
	struct v4v_req_hdr *h = pkt;
	struct pollfd p = {.fd = hd->chan, .events = POLLIN};
	unsigned nr;
	raw_send(pkt, n, fds, nfds);
	HCHECK(poll(&p, 1, WAIT_MS) == 1);
	ssize_t r = v4v_recv_fds(hd->chan, &rep, sizeof(rep), NULL, 0, &nr, 0);
	HCHECK(r >= (ssize_t)sizeof(rep.r));
	HCHECK(n < sizeof(*h) ? rep.r.h.seq == 0 : rep.r.h.seq == h->seq);
	return (long)rep.r.ret;
}

/* REGISTER_RING on aport with fds {memfd, bell, send-ring memfd}. */
static long reg(v4v_port_t aport, int mem, int bell, int tx)
{
	struct v4v_req_register q = {
	    .h = {.op = V4V_OP_REGISTER_RING},
	    .ring = {.aport = aport, .partner_id = V4V_DOMID_ANY, .len = 4096},
	    .tx_len = tx >= 0 ? 4096 : 0,
	};
	int fds[3] = {mem, bell, tx};
	return raw(&q, sizeof(q), fds, tx >= 0 ? 3 : bell >= 0 ? 2 : 1);
}

static long unreg(v4v_port_t aport)
{
	struct v4v_req_unregister q = {
	    .h = {.op = V4V_OP_UNREGISTER_RING}, .aport = aport, .partner_id = V4V_DOMID_ANY};
	return raw(&q, sizeof(q), NULL, 0);
}

/* A refusal a per-domain limit may give (today's quotas, or the limits to
 * come): the hostile domain asked for too much, which is its right to try. */
static bool limited(long e)
{
	return e == -ENOSPC || e == -EBUSY || e == -EAGAIN || e == -ENOMEM || e == -EDQUOT ||
	       e == -EMFILE;
}

static int ring_mem(void)
{
	int fd = v4v_memfd_sealed("chaos-hostile", V4V_RING_HDR_SIZE + 4096);
	HCHECK(fd >= 0);
	return fd;
}

static void seqpair(int sv[2])
{
	HCHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
}

/* Our channel still answers a well-formed request. */
static void channel_works(void)
{
	struct v4v_req_hdr q = {.op = V4V_OP_EVENTS};
	HCHECK(raw(&q, sizeof(q), NULL, 0) >= 0);
}

/* ---- the misbehaviours ---------------------------------------------------- */

/* Random bytes: under an op that does not exist (ENOSYS, exactly), or
 * under a real op, at a random length (any answer, but an answer). */
static void h_garbage(void)
{
	static const uint32_t real[] = {
	    V4V_OP_REGISTER_RING, V4V_OP_UNREGISTER_RING, V4V_OP_SENDV,	    V4V_OP_NOTIFY,
	    V4V_OP_EVENTS,	  V4V_OP_NAME_LOOKUP,	  V4V_OP_RING_POKE, V4V_OP_ATTACH,
	    V4V_OP_RING_SPARE};
	uint8_t pkt[600];
	size_t n = sizeof(struct v4v_req_hdr) + hrand() % (sizeof(pkt) - 8);
	for (size_t i = 0; i < n; i++)
		pkt[i] = (uint8_t)hrand();
	bool unknown = hrand() % 2;
	uint32_t op = unknown ? 0x100 + (uint32_t)(hrand() % 0x10000) : real[hrand() % ARRAY_SIZE(real)];
	memcpy(pkt, &op, sizeof(op));
	long r = raw(pkt, n, NULL, 0);
	HCHECK(unknown ? r == -ENOSYS : r < (long)V4V_STAGING_SIZE);
}

/* A real op cut short: EINVAL, with or without an fd riding along. */
static void h_trunc(void)
{
	static const struct {
		uint32_t op;
		size_t size;
	} ops[] = {
	    {V4V_OP_REGISTER_RING, sizeof(struct v4v_req_register)},
	    {V4V_OP_UNREGISTER_RING, sizeof(struct v4v_req_unregister)},
	    {V4V_OP_SENDV, sizeof(struct v4v_req_sendv)},
	    {V4V_OP_NOTIFY, sizeof(struct v4v_req_notify)},
	    {V4V_OP_NAME_REGISTER, sizeof(struct v4v_req_name)},
	    {V4V_OP_NAME_LOOKUP, sizeof(struct v4v_req_name)},
	};
	union v4v_req_any q;
	unsigned i = (unsigned)(hrand() % ARRAY_SIZE(ops));
	size_t n = sizeof(q.h) + hrand() % (ops[i].size - sizeof(q.h));
	memset(&q, 0, sizeof(q));
	q.h.op = ops[i].op;
	if (hrand() % 2) {
		HCHECK(raw(&q, n, NULL, 0) == -EINVAL);
		return;
	}
	int fd = ring_mem();
	HCHECK(raw(&q, n, &fd, 1) == -EINVAL);
	close(fd);
}

/* Fds of the wrong kind where a ring's memory or doorbell goes. */
static void h_wrong_fd(void)
{
	int p[2], mem = ring_mem();
	HCHECK(pipe2(p, O_CLOEXEC) == 0);
	switch (hrand() % 5) {
	case 0: HCHECK(reg(RAW_PORT, p[0], -1, -1) == -EBADF); break;
	case 1: {
		int e = eventfd(0, EFD_CLOEXEC);
		HCHECK(e >= 0 && reg(RAW_PORT, e, -1, -1) == -EBADF);
		close(e);
		break;
	}
	case 2: {
		int u = memfd_create("unsealed", MFD_CLOEXEC);
		HCHECK(u >= 0 && ftruncate(u, V4V_RING_HDR_SIZE + 4096) == 0);
		HCHECK(reg(RAW_PORT, u, -1, -1) == -EPERM);
		close(u);
		break;
	}
	case 3: HCHECK(reg(RAW_PORT, mem, p[1], -1) == -ENOTSOCK); break;
	default: {
		struct v4v_req_sendv s = {.h = {.op = V4V_OP_SENDV},
					  .dst = {.aport = DPORT, .domain_id = honest[0]},
					  .niov = 1,
					  .iov_len = {1}};
		HCHECK(raw(&s, sizeof(s), &mem, 1) == -EBADF);
	}
	}
	close(p[0]);
	close(p[1]);
	close(mem);
	HCHECK(unreg(RAW_PORT) == -ENOENT);
}

/* The doorbell is our own channel or our domain fd: v4vd holds the other
 * end of both, so it refuses them (EINVAL): holding both ends of our
 * channel would keep our domain alive and the channel deaf. */
static void bell_self(v4v_port_t port, int bell)
{
	int mem = ring_mem();
	long e = reg(port, mem, bell, -1);
	close(mem);
	HCHECK(e == -EINVAL); /* v4vd holds its peer: no doorbell (take.c) */
}

static void h_bell_chan(void)
{
	bell_self(RAW_PORT + 1, hd->chan);
}

static void h_bell_dfd(void)
{
	bell_self(RAW_PORT + 2, hdfd);
}

/* A copy of the doorbell we passed, kept: the ring goes, then the copy
 * turns readable and its peer hangs up.  v4vd must not hear of it. */
static void h_bell_copy(void)
{
	int sv[2], mem = ring_mem();
	seqpair(sv);
	long e = reg(RAW_PORT + 3, mem, sv[1], -1);
	close(mem);
	HCHECK(e == 0 || limited(e));
	HCHECK(e || unreg(RAW_PORT + 3) == 0);
	for (int i = 0; i < 4; i++)
		HCHECK(send(sv[0], "x", 1, 0) == 1);
	close(sv[0]);
	channel_works();
	close(sv[1]);
}

/* One memfd as a ring and its own send ring, or as two rings: EBUSY once
 * the fixes land; today taken, and written to (a datagram to the ring
 * lands in the send ring), which must harm nobody else. */
static void h_mem_alias(void)
{
	static unsigned left; /* rings left registered, for the exit to clean */
	int sv[2], mem = ring_mem();
	v4v_port_t p3 = (v4v_port_t)(RAW_PORT + 8 + 2 * left), p4 = p3 + 1;
	struct iovec iov = {"alias", 5};
	seqpair(sv);
	bool tx = hrand() % 2;
	long e = tx ? reg(p3, mem, sv[1], mem) : reg(p3, mem, -1, -1);
	/* A send ring on its own ring's memory is an alias: -EBUSY (take.c). */
	HCHECK(tx ? e == -EBUSY : (e == 0 || limited(e)));
	long e2 = e ? -EBUSY : reg(p4, mem, -1, -1);
	HCHECK(e2 == -EBUSY); /* the same memory as a second ring */
	for (v4v_port_t p = p3; p <= p4; p++) {
		struct v4v_addr self = {.aport = p, .domain_id = v4v_domid(hd)};
		long s = v4v_sendv(hd, 1, &self, &iov, 1, 0);
		HCHECK(s == 5 || s == -EAGAIN || s == -ECONNREFUSED);
	}
	if (left < 16 && hrand() % 8 == 0) {
		left++;
	} else {
		HCHECK(e || unreg(p3) == 0);
		HCHECK(e2 || unreg(p4) == 0);
	}
	close(mem);
	close(sv[0]);
	close(sv[1]);
}

static void h_reg_loop(void)
{
	for (int i = 0; i < 16; i++) {
		struct v4v_rx *rx;
		uint32_t len = 4096u << (hrand() % 6);
		int e = v4v_ring_register(hd, LOOP_PORT, V4V_DOMID_ANY, len, 0, &rx);
		HCHECK(e == 0 || limited(e));
		HCHECK(e || v4v_ring_unregister(rx) == 0);
	}
}

/* Datagrams to honest domains' sockets, as fast as they go. */
static void h_flood(void)
{
	static int g = -1;
	static uint8_t buf[1024];
	if (g < 0 && (g = v4v_socket(hd, V4V_SOCK_DGRAM, V4V_SOCK_NONBLOCK)) < 0) {
		HCHECK(limited(-errno));
		return;
	}
	for (int i = 0; i < 64; i++) {
		struct v4v_addr to = {.aport = DPORT, .domain_id = honest[hrand() % NDOM]};
		size_t n = 1 + hrand() % sizeof(buf);
		if (v4v_sendto(g, buf, n, 0, &to) < 0)
			HCHECK(limited(-errno) || errno == EHOSTUNREACH || errno == ECONNREFUSED);
	}
}

/* Connections to honest listeners, left half-open (the listener accepts
 * and drops them: they are from a hostile domain). */
static void h_syn(void)
{
	static int s[NSYN];
	static unsigned next;
	for (int i = 0; i < 8; i++, next = (next + 1) % NSYN) {
		if (s[next] > 0)
			HCHECK(v4v_sock_close(s[next]) == 0);
		s[next] = v4v_socket(hd, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
		if (s[next] < 0) {
			HCHECK(limited(-errno));
			s[next] = 0;
			continue;
		}
		struct v4v_addr to = {.aport = LPORT, .domain_id = honest[hrand() % NDOM]};
		if (v4v_connect(s[next], &to) < 0)
			HCHECK(errno == EINPROGRESS || limited(-errno) || errno == ECONNREFUSED ||
			       errno == EHOSTUNREACH);
	}
}

/* Senders on NWAIT more channels of ours, each queued on a ring of ours
 * that nobody drains; now and then the ring goes away under them. */
static void h_waits(void)
{
	static struct v4v_domain *w[NWAIT];
	static struct v4v_rx *full;
	static uint8_t buf[1000];
	struct iovec iov = {buf, sizeof(buf)};
	static unsigned nw;
	int e;
	/* As many channels as the domain may have, up to NWAIT. */
	while (nw < NWAIT && (e = v4v_open_fd(hdfd, &w[nw])) == 0)
		nw++;
	if (nw < NWAIT)
		HCHECK(limited(e));
	if (!full && (e = v4v_ring_register(hd, FULL_PORT, V4V_DOMID_ANY, 4096, 0, &full))) {
		HCHECK(limited(e));
		return;
	}
	struct v4v_addr dst = v4v_rx_addr(full);
	for (unsigned i = 0; i < nw; i++)
		for (int k = 0; k < 5; k++) {
			long r = v4v_sendv(w[i], 1, &dst, &iov, 1, 0);
			HCHECK(r == (long)sizeof(buf) || limited(r));
		}
	if (hrand() % 3 == 0) {
		HCHECK(v4v_ring_unregister(full) == 0);
		full = NULL;
	}
}

/* A request on its way, and the process dies before the reply. */
static __attribute__((noreturn)) void h_suicide(void)
{
	int sv[2], mem = ring_mem();
	seqpair(sv);
	switch (hrand() % 3) {
	case 0: {
		struct v4v_req_register q = {
		    .h = {.op = V4V_OP_REGISTER_RING},
		    .ring = {.aport = RAW_PORT + 5, .partner_id = V4V_DOMID_ANY, .len = 4096}};
		int fds[2] = {mem, sv[1]};
		raw_send(&q, sizeof(q), fds, 2);
		break;
	}
	case 1: {
		struct v4v_req_sendv q = {
		    .h = {.op = V4V_OP_SENDV},
		    .dst = {.aport = DPORT, .domain_id = honest[hrand() % NDOM]},
		    .niov = 1,
		    .iov_len = {1000}};
		raw_send(&q, sizeof(q), NULL, 0);
		break;
	}
	default: {
		struct v4v_req_hdr q = {.op = V4V_OP_EVENTS};
		raw_send(&q, sizeof(q), NULL, 0);
	}
	}
	raise(SIGKILL);
	_exit(1);
}

static void (*const run[H_COUNT])(void) = {
    [H_GARBAGE] = h_garbage,	[H_TRUNC] = h_trunc,
    [H_WRONG_FD] = h_wrong_fd,	[H_BELL_CHAN] = h_bell_chan,
    [H_BELL_DFD] = h_bell_dfd,	[H_BELL_COPY] = h_bell_copy,
    [H_TX_ALIAS] = h_mem_alias, [H_REG_LOOP] = h_reg_loop,
    [H_FLOOD] = h_flood,	[H_SYN] = h_syn,
    [H_WAITS] = h_waits,	[H_SUICIDE] = h_suicide,
};

/* A class at random among those enabled; suicide seldom, so that most
 * hostile domains live through the round. */
static unsigned pick(void)
{
	for (;;) {
		unsigned c = (unsigned)(hrand() % H_COUNT);
		if ((enabled & 1u << c) &&
		    (c != H_SUICIDE || hrand() % 8 == 0 || enabled == 1u << H_SUICIDE))
			return c;
	}
}

void hostile_child(unsigned i, int domain_fd, int ctl)
{
	struct msg_hgo go;
	uint32_t t;
	me = i;
	hdfd = domain_fd;
	HCHECK(v4v_open_fd(domain_fd, &hd) == 0);
	HCHECK(read(ctl, &go, sizeof(go)) == sizeof(go) && go.type == HMSG_GO);
	round_no = go.round;
	memcpy(honest, go.domid, sizeof(honest));
	rng = t_mix(go.seed ^ t_mix(0xBAD0000ull | (uint64_t)round_no << 8 | me)) | 1;
	for (;;) {
		struct pollfd p = {.fd = ctl, .events = POLLIN};
		/* A breath between misbehaviours: the soak keeps its pace. */
		int r = poll(&p, 1, 1);
		HCHECK(r >= 0);
		if (r == 1) {
			HCHECK(read(ctl, &t, sizeof(t)) == sizeof(t) && t == HMSG_QUIT);
			break;
		}
		unsigned c = pick();
		atomic_fetch_add_explicit(&counts[c], 1, memory_order_relaxed);
		run[c]();
	}
	/* Half the time tidy, otherwise exiting is the close. */
	if (hrand() % 2)
		v4v_close(hd);
	_exit(0);
}
