/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: rounds of random traffic among NDOM forked domains, and
 * in each round one or two of them die by SIGKILL at a random moment.
 *
 * Per round:
 *   - every domain listens for streams and has a datagram socket; a random
 *     set of pairs connect (random direction, random ring sizes);
 *   - both sides of every connection stream a pattern only the two ends can
 *     compute (byte k of a->b is a function of seed, round, a, b, k); the
 *     receiver checks every byte and keeps a running FNV-1a checksum;
 *   - datagrams go to random peers, each with a per-destination sequence
 *     number: receivers check content, order, no loss, no duplicate;
 *   - once every connection is up, after a random delay, SIGKILL 1-2
 *     domains; then: v4vd is alive and answers; survivors stop sending and
 *     report what they sent; the parent tells each survivor what to expect;
 *     survivors read exactly that (checksums must match the senders') and
 *     must have seen ECONNRESET on every connection to a dead domain, less
 *     than a second after the kill;
 *   - beside them, NHOST hostile domains misbehave all round, at random
 *     (chaos_hostile.c): bad requests and fds, aliased memory, loops,
 *     floods of datagrams and SYNs on the honest domains, space waiters,
 *     suicide mid-request.  Honest domains drop what comes from them (and
 *     fail on anything else unexpected); a connect that finds a listener
 *     full of their SYNs tries again;
 *   - when everyone is gone: no domain listed, and v4vd holds the fds and
 *     memfd mappings it had before the round, and its RSS is within
 *     RSS_SLACK_KB of what it was after WARM_ROUNDS rounds.
 *
 * CHAOS_ROUNDS (default 50) sets the number of rounds; T_SEED replays the
 * plan (timing still varies); CHAOS_HOSTILE_ONLY=a,b runs only those
 * hostile misbehaviours (names in chaos_hostile.c).  Soak: cd build && CHAOS_ROUNDS=2000
 * tests/test_chaos rounds (progress every 100 rounds on stderr).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chaos.h"
#include "t.h"

#define CHUNK_MAX    16384
#define DGRAM_MAX    1024
#define GUARD_MS     20000 /* failure guard: nothing legitimate takes this long */
#define RESET_MAX_NS 1000000000LL
#define WARM_ROUNDS  5	  /* rounds before v4vd's RSS baseline */
#define RSS_SLACK_KB 4096 /* how far above it v4vd's RSS may go */

#define CCHECK(cond)                                                                               \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "round %u child %u: %s:%d: check failed: %s (errno %s)\n", \
				round_no, me, __FILE__, __LINE__, #cond, strerror(errno));         \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

/* The round's plan: set by the parent before fork, inherited. */
static uint64_t seed;
static unsigned round_no, me;
static uint16_t domid[NDOM];
static bool dial[NDOM][NDOM];	      /* dial[a][b]: a connects to b */
static uint32_t ring_len[NDOM][NDOM]; /* a's ring for its connection to b (0: default) */

enum msg_type { M_LISTENING = 1, M_GO, M_CONNECTED, M_STOP, M_SENT, M_EXPECT, M_DONE, M_QUIT };

struct msg_sent {
	uint32_t type;
	uint64_t sent[NDOM], sent_ck[NDOM];
};

struct msg_expect {
	uint32_t type;
	uint32_t victims; /* bit mask */
	uint64_t want[NDOM];
};

struct msg_done {
	uint32_t type;
	uint64_t rcvd[NDOM], rcvd_ck[NDOM];
	int32_t err[NDOM];    /* first error seen on the connection, or 0 */
	int64_t err_ns[NDOM]; /* when (CLOCK_MONOTONIC) */
	uint64_t stream_bytes, dgram_bytes, dgrams;
	uint64_t hostile_dgrams, hostile_conns; /* from hostile domains, dropped */
};

static uint64_t stream_key(unsigned from, unsigned to)
{
	return t_mix(seed ^ t_mix((uint64_t)round_no << 16 | from << 8 | to));
}

static uint64_t dgram_key(unsigned from, unsigned to, uint32_t seq)
{
	return t_mix(seed ^ t_mix(1ull << 63 | (uint64_t)round_no << 40 | (uint64_t)seq << 16 |
				  from << 8 | to));
}

/* The pattern from offset off, n bytes. */
static void pat_fill(uint8_t *p, uint64_t key, uint64_t off, size_t n)
{
	uint64_t blk = UINT64_MAX, w = 0;
	for (size_t i = 0; i < n; i++, off++) {
		if (off / 8 != blk) {
			blk = off / 8;
			w = t_mix(key + blk);
		}
		p[i] = (uint8_t)(w >> (8 * (off % 8)));
	}
}

static bool pat_check(const uint8_t *p, uint64_t key, uint64_t off, size_t n)
{
	uint64_t blk = UINT64_MAX, w = 0;
	for (size_t i = 0; i < n; i++, off++) {
		if (off / 8 != blk) {
			blk = off / 8;
			w = t_mix(key + blk);
		}
		if (p[i] != (uint8_t)(w >> (8 * (off % 8))))
			return false;
	}
	return true;
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001B3ull;
	return h;
}

#define FNV_INIT 0xCBF29CE484222325ull

static bool linked(unsigned a, unsigned b)
{
	return dial[a][b] || dial[b][a];
}

/* ---- the children ------------------------------------------------------- */

struct conn {
	int fd;
	bool connecting, up;
	int err;
	int64_t err_ns;
	uint64_t sent, sent_ck, rcvd, rcvd_ck;
	bool blocked; /* a send found no room: wait for POLLOUT */
	bool retry;   /* connect met a listener full (of hostile SYNs): again */
};

static struct conn conn[NDOM];
static uint64_t crng;
static struct msg_done done;
static uint32_t dg_seq[NDOM], dg_next[NDOM];

static uint64_t crand(void)
{
	crng ^= crng >> 12;
	crng ^= crng << 25;
	crng ^= crng >> 27;
	return crng * 0x2545F4914F6CDD1DULL;
}

static void conn_error(struct conn *c, int err)
{
	if (!c->err) {
		c->err = err;
		c->err_ns = t_now_ns();
	}
}

static void conn_recv(unsigned p)
{
	static uint8_t buf[65536];
	struct conn *c = &conn[p];
	while (c->up && !c->err) {
		ssize_t n = v4v_recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno != EAGAIN)
				conn_error(c, errno);
			return;
		}
		if (n == 0) {
			conn_error(c, -1); /* end of stream: nobody sends FIN here */
			return;
		}
		CCHECK(pat_check(buf, stream_key(p, me), c->rcvd, (size_t)n));
		c->rcvd_ck = fnv(c->rcvd_ck, buf, (size_t)n);
		c->rcvd += (uint64_t)n;
		done.stream_bytes += (uint64_t)n;
	}
}

static void conn_send(unsigned p)
{
	static uint8_t buf[CHUNK_MAX];
	struct conn *c = &conn[p];
	for (int i = 0; i < 4 && c->up && !c->err && !c->blocked; i++) {
		size_t n = 1 + crand() % CHUNK_MAX;
		pat_fill(buf, stream_key(me, p), c->sent, n);
		ssize_t r = v4v_send(c->fd, buf, n, 0);
		if (r < 0) {
			if (errno == EAGAIN)
				c->blocked = true;
			else
				conn_error(c, errno);
			return;
		}
		CCHECK(r > 0 && (size_t)r <= n);
		c->sent_ck = fnv(c->sent_ck, buf, (size_t)r);
		c->sent += (uint64_t)r;
	}
}

struct dg_hdr {
	uint32_t seq, from, len;
};

static void dgram_send(int g)
{
	static uint8_t buf[sizeof(struct dg_hdr) + DGRAM_MAX];
	unsigned to = (unsigned)(crand() % NDOM);
	if (to == me)
		return;
	struct dg_hdr h = {dg_seq[to], me, (uint32_t)(crand() % (DGRAM_MAX + 1))};
	memcpy(buf, &h, sizeof(h));
	pat_fill(buf + sizeof(h), dgram_key(me, to, h.seq), 0, h.len);
	struct v4v_addr dst = {.aport = DPORT, .domain_id = domid[to]};
	ssize_t r = v4v_sendto(g, buf, sizeof(h) + h.len, 0, &dst);
	if (r >= 0) {
		CCHECK((size_t)r == sizeof(h) + h.len);
		dg_seq[to]++;
		return;
	}
	/* Not sent: no room, or an earlier queued send to a dead domain. */
	CCHECK(errno == EAGAIN || errno == EHOSTUNREACH || errno == ECONNREFUSED);
}

static void dgram_recv(int g)
{
	static uint8_t buf[sizeof(struct dg_hdr) + DGRAM_MAX + 1];
	struct v4v_addr from;
	struct dg_hdr h;
	for (;;) {
		ssize_t n = v4v_recvfrom(g, buf, sizeof(buf), 0, &from);
		if (n < 0) {
			CCHECK(errno == EAGAIN);
			return;
		}
		if (from_hostile(from.domain_id)) {
			done.hostile_dgrams++; /* a flood, or garbage: not ours to check */
			continue;
		}
		unsigned f = t_index_of(domid, NDOM, from.domain_id);
		CCHECK(f < NDOM && f != me && from.aport == DPORT);
		CCHECK((size_t)n >= sizeof(h));
		memcpy(&h, buf, sizeof(h));
		CCHECK(h.from == f && h.len == (size_t)n - sizeof(h));
		CCHECK(h.seq == dg_next[f]); /* in order, none lost, none twice */
		dg_next[f]++;
		CCHECK(pat_check(buf + sizeof(h), dgram_key(f, me, h.seq), 0, h.len));
		done.dgrams++;
		done.dgram_bytes += (uint64_t)n;
	}
}

static void ctl_write(int ctl, const void *m, size_t n)
{
	CCHECK(write(ctl, m, n) == (ssize_t)n);
}

static uint32_t ctl_read(int ctl, void *m, size_t n)
{
	ssize_t r = read(ctl, m, n);
	CCHECK(r >= (ssize_t)sizeof(uint32_t));
	uint32_t t;
	memcpy(&t, m, sizeof(t));
	return t;
}

/* Connect to p's listener; again later if it is full (a SYN flood). */
static void conn_dial(unsigned p)
{
	struct conn *c = &conn[p];
	struct v4v_addr to = {.aport = LPORT, .domain_id = domid[p]};
	c->retry = false;
	if (v4v_connect(c->fd, &to) == 0) {
		c->up = true;
	} else if (errno == EAGAIN) {
		c->retry = true;
	} else {
		CCHECK(errno == EINPROGRESS);
		c->connecting = true;
	}
}

static bool all_up(void)
{
	for (unsigned p = 0; p < NDOM; p++)
		if (linked(me, p) && !conn[p].up)
			return false;
	return true;
}

static void child(unsigned idx, int domain_fd, int ctl)
{
	me = idx;
	enum { TRAFFIC, STOPPED, DRAIN } phase = TRAFFIC;
	struct v4v_domain *d;
	struct msg_expect ex = {0};
	union {
		uint32_t type;
		struct msg_expect ex;
	} in;
	uint32_t t = M_LISTENING;
	bool reported_up = false;

	crng = t_mix(seed ^ t_mix((uint64_t)round_no << 8 | me)) | 1;
	CCHECK(v4v_open_fd(domain_fd, &d) == 0);
	int l = v4v_socket(d, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	int g = v4v_socket(d, V4V_SOCK_DGRAM, V4V_SOCK_NONBLOCK);
	CCHECK(l >= 0 && g >= 0);
	struct v4v_addr any = {.aport = LPORT, .domain_id = V4V_DOMID_ANY};
	CCHECK(v4v_bind(l, &any) == 0 && v4v_listen(l, 8) == 0);
	any.aport = DPORT;
	CCHECK(v4v_bind(g, &any) == 0);
	ctl_write(ctl, &t, sizeof(t));
	CCHECK(ctl_read(ctl, &in, sizeof(in)) == M_GO);

	for (unsigned p = 0; p < NDOM; p++) {
		conn[p].fd = -1;
		conn[p].sent_ck = conn[p].rcvd_ck = FNV_INIT;
		if (!dial[me][p])
			continue;
		int s = v4v_socket(d, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
		CCHECK(s >= 0);
		if (ring_len[me][p])
			CCHECK(v4v_sock_set_ring_len(s, ring_len[me][p]) == 0);
		conn[p].fd = s;
		conn_dial(p);
	}

	for (;;) {
		struct pollfd pfd[3 + NDOM];
		unsigned who[3 + NDOM], n = 0;
		bool busy = false, retrying = false;

		/* What can be done without waiting. */
		if (phase == TRAFFIC) {
			for (unsigned p = 0; p < NDOM; p++) {
				conn_send(p);
				busy |= conn[p].up && !conn[p].err && !conn[p].blocked;
			}
			if (crand() % 4 == 0)
				dgram_send(g);
		}
		for (unsigned p = 0; p < NDOM; p++)
			if (conn[p].retry) {
				conn_dial(p);
				retrying |= conn[p].retry;
			}
		if (!reported_up && all_up()) {
			t = M_CONNECTED;
			ctl_write(ctl, &t, sizeof(t));
			reported_up = true;
		}
		if (phase == DRAIN) {
			bool finished = true;
			for (unsigned p = 0; p < NDOM; p++) {
				if (!linked(me, p))
					continue;
				if (ex.victims & 1u << p)
					finished &= conn[p].err != 0;
				else
					finished &= conn[p].rcvd >= ex.want[p] || conn[p].err;
			}
			if (finished)
				break;
		}

		pfd[n] = (struct pollfd){.fd = ctl, .events = POLLIN};
		who[n++] = NDOM;
		pfd[n] = (struct pollfd){.fd = g, .events = POLLIN};
		who[n++] = NDOM + 1;
		/* Always: hostile domains connect too, and are dropped. */
		pfd[n] = (struct pollfd){.fd = l, .events = POLLIN};
		who[n++] = NDOM + 2;
		for (unsigned p = 0; p < NDOM; p++) {
			struct conn *c = &conn[p];
			if (c->fd < 0 || c->err)
				continue;
			short ev = POLLIN;
			if (phase == TRAFFIC && c->blocked)
				ev |= POLLOUT;
			pfd[n] = (struct pollfd){.fd = c->fd, .events = ev};
			who[n++] = p;
		}
		int r = poll(pfd, n, busy ? 0 : retrying ? 1 : GUARD_MS);
		CCHECK(r >= 0);
		if (r == 0 && !busy && !retrying) {
			/* The guard: nothing happened for too long. */
			fprintf(stderr, "round %u child %u: stuck in phase %d:", round_no, me,
				(int)phase);
			for (unsigned p = 0; p < NDOM; p++)
				if (linked(me, p))
					fprintf(stderr, " [%u%s up %d err %d got %llu want %llu]",
						p, ex.victims & 1u << p ? " killed" : "",
						conn[p].up, conn[p].err,
						(unsigned long long)conn[p].rcvd,
						(unsigned long long)ex.want[p]);
			fprintf(stderr, "\n");
			_exit(1);
		}

		for (unsigned i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (who[i] == NDOM) {
				uint32_t ty = ctl_read(ctl, &in, sizeof(in));
				if (ty == M_STOP) {
					CCHECK(phase == TRAFFIC);
					phase = STOPPED;
					struct msg_sent ms = {.type = M_SENT};
					for (unsigned p = 0; p < NDOM; p++) {
						ms.sent[p] = conn[p].sent;
						ms.sent_ck[p] = conn[p].sent_ck;
					}
					ctl_write(ctl, &ms, sizeof(ms));
				} else {
					CCHECK(ty == M_EXPECT && phase == STOPPED);
					ex = in.ex;
					phase = DRAIN;
				}
			} else if (who[i] == NDOM + 1) {
				dgram_recv(g);
			} else if (who[i] == NDOM + 2) {
				struct v4v_addr peer;
				int s;
				while ((s = v4v_accept(l, &peer)) >= 0) {
					if (from_hostile(peer.domain_id)) {
						done.hostile_conns++;
						CCHECK(v4v_sock_close(s) == 0);
						continue;
					}
					unsigned p = t_index_of(domid, NDOM, peer.domain_id);
					CCHECK(p < NDOM && dial[p][me] && conn[p].fd < 0);
					conn[p].fd = s;
					conn[p].up = true;
				}
				CCHECK(errno == EAGAIN);
			} else {
				struct conn *c = &conn[who[i]];
				if (c->connecting) {
					struct v4v_addr to = {.aport = LPORT,
							      .domain_id = domid[who[i]]};
					if (v4v_connect(c->fd, &to) == 0) {
						c->connecting = false;
						c->up = true;
					} else {
						CCHECK(errno == EALREADY);
					}
					continue;
				}
				if (pfd[i].revents & POLLOUT)
					c->blocked = false;
				conn_recv(who[i]);
			}
		}
	}

	done.type = M_DONE;
	for (unsigned p = 0; p < NDOM; p++) {
		done.rcvd[p] = conn[p].rcvd;
		done.rcvd_ck[p] = conn[p].rcvd_ck;
		done.err[p] = conn[p].err;
		done.err_ns[p] = conn[p].err_ns;
	}
	ctl_write(ctl, &done, sizeof(done));
	/* Keep reading until everyone has reported: senders' queues drain. */
	for (;;) {
		struct pollfd pfd[2] = {{.fd = ctl, .events = POLLIN}, {.fd = g, .events = POLLIN}};
		CCHECK(poll(pfd, 2, GUARD_MS) > 0);
		if (pfd[1].revents)
			dgram_recv(g);
		if (pfd[0].revents) {
			CCHECK(ctl_read(ctl, &in, sizeof(in)) == M_QUIT);
			break;
		}
	}
	/* Half the time close properly; otherwise exiting is the close. */
	if (crand() % 2) {
		for (unsigned p = 0; p < NDOM; p++)
			if (conn[p].fd >= 0)
				CCHECK(v4v_sock_close(conn[p].fd) == 0);
		CCHECK(v4v_sock_close(l) == 0 && v4v_sock_close(g) == 0);
		v4v_close(d);
	}
	_exit(0);
}

/* ---- the parent --------------------------------------------------------- */

/* What v4vd's fds are, for a failure message. */
static void show_fds(int base)
{
	fprintf(stderr, "round %u: v4vd had %d fds, now:", round_no, base);
	t_v4vd_print_fds();
}

/* Poll (bounded) until cond holds; a timeout is a failure. */
#define WAIT_FOR(cond)                                                                             \
	do {                                                                                       \
		int _i = 0;                                                                        \
		while (!(cond)) {                                                                  \
			if (++_i > GUARD_MS) {                                                     \
				fprintf(stderr, "round %u: %s:%d: timed out waiting for %s\n",     \
					round_no, __FILE__, __LINE__, #cond);                      \
				exit(1);                                                           \
			}                                                                          \
			poll(NULL, 0, 1);                                                          \
		}                                                                                  \
	} while (0)

#define RCHECK(cond)                                                                               \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "round %u: %s:%d: check failed: %s\n", round_no, __FILE__, \
				__LINE__, #cond);                                                  \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static pid_t pid[NDOM], hpid[NHOST];

static void kill_children(void)
{
	t_kill_pids(pid, NDOM);
	t_kill_pids(hpid, NHOST);
}

/* One message from child i, of the expected type; any failure is fatal. */
static void from_child(int fd, unsigned i, void *m, size_t n, uint32_t type)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint32_t t;
	/* Longer than a child's own guard, so a stuck child reports first. */
	if (poll(&p, 1, GUARD_MS + GUARD_MS / 2) != 1) {
		fprintf(stderr, "round %u: child %u silent (waiting for message %u)\n", round_no, i,
			type);
		exit(1);
	}
	ssize_t r = read(fd, m, n);
	if (r != (ssize_t)n) {
		fprintf(stderr, "round %u: child %u died (read %zd, wanted message %u)\n", round_no,
			i, r, type);
		exit(1);
	}
	memcpy(&t, m, sizeof(t));
	RCHECK(t == type);
}

static void to_child(int fd, const void *m, size_t n)
{
	RCHECK(write(fd, m, n) == (ssize_t)n);
}

/* v4vd's resident set, in KiB (VmRSS of /proc/PID/status). */
static long v4vd_rss_kb(void)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)t_v4vd_pid());
	FILE *f = fopen(path, "r");
	RCHECK(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	RCHECK(kb > 0);
	return kb;
}

struct totals {
	unsigned rounds, spawned, killed, conns, resets, suicides;
	uint64_t bytes, dgrams, hostile_dgrams, hostile_conns;
	int64_t worst_reset_ns;
};

/* The round is over for the hostile domains: each must have lived to be
 * told (exit 0), or have killed itself (SIGKILL); nothing else. */
static void stop_hostiles(const int *hctl, struct totals *tot)
{
	uint32_t t = HMSG_QUIT;
	for (unsigned i = 0; i < NHOST; i++)
		if (write(hctl[i], &t, sizeof(t)) < 0)
			RCHECK(errno == EPIPE || errno == ECONNRESET); /* already gone */
	for (unsigned i = 0; i < NHOST; i++) {
		int st;
		RCHECK(waitpid(hpid[i], &st, 0) == hpid[i]);
		hpid[i] = 0;
		close(hctl[i]);
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
			tot->suicides++;
			continue;
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "round %u: hostile %u exit status %#x\n", round_no, i, st);
			exit(1);
		}
	}
}

static void one_round(struct totals *tot)
{
	int ctl[NDOM];
	int64_t kill_ns[NDOM] = {0};
	uint32_t t, victims = 0;
	static struct msg_sent sent[NDOM];
	static struct msg_done done_of[NDOM];

	/* The baseline: no client connection lingering in v4vd. */
	RCHECK(t_ctl_rows("domains") == 0);
	WAIT_FOR(t_v4vd_sockets() == 1); /* our control connection is closed */
	int base_fds = t_v4vd_fds(), base_memfd = t_v4vd_memfd_maps();

	/* The plan. */
	memset(dial, 0, sizeof(dial));
	memset(ring_len, 0, sizeof(ring_len));
	for (unsigned a = 0; a < NDOM; a++)
		for (unsigned b = a + 1; b < NDOM; b++) {
			if (t_rand() % 3 == 0)
				continue;
			bool ab = t_rand() % 2;
			unsigned from = ab ? a : b, to = ab ? b : a;
			dial[from][to] = true;
			static const uint32_t lens[] = {0, 0, 4096, 65536, 1u << 20};
			ring_len[from][to] = lens[t_rand() % 5];
		}
	/* The hostile domains first: the honest ones learn their ids. */
	int hctl[NHOST];
	t_spawn_domains(NHOST, NULL, SOCK_SEQPACKET, hostile_child, hpid, host_domid, hctl);
	t_spawn_domains(NDOM, NULL, SOCK_SEQPACKET, child, pid, domid, ctl);
	tot->spawned += NDOM + NHOST;
	for (unsigned i = 0; i < NDOM; i++)
		from_child(ctl[i], i, &t, sizeof(t), M_LISTENING);
	struct msg_hgo hgo = {.type = HMSG_GO, .round = round_no, .seed = seed};
	memcpy(hgo.domid, domid, sizeof(hgo.domid));
	for (unsigned i = 0; i < NHOST; i++)
		to_child(hctl[i], &hgo, sizeof(hgo));
	t = M_GO;
	for (unsigned i = 0; i < NDOM; i++)
		to_child(ctl[i], &t, sizeof(t));
	for (unsigned i = 0; i < NDOM; i++)
		from_child(ctl[i], i, &t, sizeof(t), M_CONNECTED);

	/* Traffic is flowing everywhere: the fault, at a random moment. */
	poll(NULL, 0, (int)(t_rand() % 25));
	unsigned nkill = 1 + (unsigned)(t_rand() % 2);
	while ((unsigned)__builtin_popcount(victims) < nkill)
		victims |= 1u << (t_rand() % NDOM);
	for (unsigned i = 0; i < NDOM; i++)
		if (victims & 1u << i) {
			kill_ns[i] = t_now_ns();
			RCHECK(kill(pid[i], SIGKILL) == 0);
		}
	for (unsigned i = 0; i < NDOM; i++)
		if (victims & 1u << i) {
			int st;
			RCHECK(waitpid(pid[i], &st, 0) == pid[i]);
			RCHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
			pid[i] = 0;
			close(ctl[i]);
		}
	tot->killed += nkill;

	/* v4vd lives and answers. */
	RCHECK(kill(t_v4vd_pid(), 0) == 0);
	free(t_ctl("stats"));

	/* Survivors stop sending and say what they sent... */
	t = M_STOP;
	for (unsigned i = 0; i < NDOM; i++)
		if (!(victims & 1u << i))
			to_child(ctl[i], &t, sizeof(t));
	for (unsigned i = 0; i < NDOM; i++)
		if (!(victims & 1u << i))
			from_child(ctl[i], i, &sent[i], sizeof(sent[i]), M_SENT);
	/* ... then read exactly what their surviving peers sent them. */
	for (unsigned i = 0; i < NDOM; i++) {
		if (victims & 1u << i)
			continue;
		struct msg_expect ex = {.type = M_EXPECT, .victims = victims};
		for (unsigned p = 0; p < NDOM; p++)
			if (!(victims & 1u << p))
				ex.want[p] = sent[p].sent[i];
		to_child(ctl[i], &ex, sizeof(ex));
	}
	for (unsigned i = 0; i < NDOM; i++) {
		if (victims & 1u << i)
			continue;
		struct msg_done *dn = &done_of[i];
		from_child(ctl[i], i, dn, sizeof(*dn), M_DONE);
		tot->bytes += dn->stream_bytes + dn->dgram_bytes;
		tot->dgrams += dn->dgrams;
		tot->hostile_dgrams += dn->hostile_dgrams;
		tot->hostile_conns += dn->hostile_conns;
		for (unsigned p = 0; p < NDOM; p++) {
			if (!linked(i, p))
				continue;
			if (victims & 1u << p) {
				int64_t lat = dn->err_ns[p] - kill_ns[p];
				if (dn->err[p] != ECONNRESET || lat < 0 || lat > RESET_MAX_NS) {
					fprintf(stderr,
						"round %u: %u's connection to killed %u: "
						"error %d (%s) %.3f ms after the kill\n",
						round_no, i, p, dn->err[p],
						dn->err[p] > 0 ? strerror(dn->err[p])
							       : "end of stream",
						lat / 1e6);
					exit(1);
				}
				tot->resets++;
				if (lat > tot->worst_reset_ns)
					tot->worst_reset_ns = lat;
				continue;
			}
			tot->conns += i < p;
			if (dn->err[p] || dn->rcvd[p] != sent[p].sent[i] ||
			    dn->rcvd_ck[p] != sent[p].sent_ck[i]) {
				fprintf(stderr,
					"round %u: %u<-%u: error %d, got %llu bytes "
					"(ck %016llx), sent %llu (ck %016llx)\n",
					round_no, i, p, dn->err[p], (unsigned long long)dn->rcvd[p],
					(unsigned long long)dn->rcvd_ck[p],
					(unsigned long long)sent[p].sent[i],
					(unsigned long long)sent[p].sent_ck[i]);
				exit(1);
			}
		}
	}
	stop_hostiles(hctl, tot);
	t = M_QUIT;
	for (unsigned i = 0; i < NDOM; i++)
		if (!(victims & 1u << i))
			to_child(ctl[i], &t, sizeof(t));
	for (unsigned i = 0; i < NDOM; i++) {
		if (victims & 1u << i)
			continue;
		int st;
		RCHECK(waitpid(pid[i], &st, 0) == pid[i]);
		pid[i] = 0;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "round %u: child %u exit status %#x\n", round_no, i, st);
			exit(1);
		}
		close(ctl[i]);
	}

	/* Everyone gone: v4vd is back where it started. */
	RCHECK(kill(t_v4vd_pid(), 0) == 0);
	WAIT_FOR(t_ctl_rows("domains") == 0);
	RCHECK(t_ctl_rows("rings") == 0);
	WAIT_FOR(t_v4vd_sockets() == 1);
	RCHECK(t_v4vd_memfd_maps() == base_memfd);
	if (t_v4vd_fds() != base_fds)
		show_fds(base_fds);
	RCHECK(t_v4vd_fds() == base_fds);
	tot->rounds++;
}

static void rounds(void)
{
	const char *env = getenv("CHAOS_ROUNDS");
	unsigned n = env ? (unsigned)strtoul(env, NULL, 0) : 50;
	struct totals tot = {0};
	int64_t t0 = t_now_ns();

	seed = t_seed();
	t_v4vd_start(NULL);
	atexit(kill_children);
	free(t_ctl("stats"));
	WAIT_FOR(t_v4vd_sockets() == 1);
	int fds0 = t_v4vd_fds();
	CHECK_EQ(t_v4vd_memfd_maps(), 0);
	hostile_setup();
	/* RSS: the baseline once warm (allocator caches filled), then within
	 * RSS_SLACK_KB of it after every round and at the end. */
	unsigned warm = n < WARM_ROUNDS ? 1 : WARM_ROUNDS;
	long rss0 = 0, rss = 0;
	for (round_no = 0; round_no < n; round_no++) {
		one_round(&tot);
		rss = v4vd_rss_kb();
		if (round_no + 1 == warm)
			rss0 = rss;
		if (!T_SANITIZED && round_no + 1 > warm && rss > rss0 + RSS_SLACK_KB) {
			fprintf(stderr, "round %u: v4vd's RSS is %ld KiB, %ld KiB after warm-up\n",
				round_no, rss, rss0);
			exit(1);
		}
		if (n >= 200 && (round_no + 1) % 100 == 0)
			fprintf(stderr, "chaos: %u rounds, %.1f s\n", round_no + 1,
				(t_now_ns() - t0) / 1e9);
	}
	CHECK_EQ(t_v4vd_fds(), fds0);
	CHECK_EQ(t_v4vd_memfd_maps(), 0);
	CHECK(T_SANITIZED || v4vd_rss_kb() <= rss0 + RSS_SLACK_KB); /* t.h: T_SANITIZED */
	printf("chaos: seed %llu rounds %u domains spawned %u killed %u "
	       "connections verified %u resets %u (worst %.1f ms) datagrams %llu "
	       "bytes verified %llu leaks: 0 (%.1f s)\n",
	       (unsigned long long)seed, tot.rounds, tot.spawned, tot.killed, tot.conns, tot.resets,
	       tot.worst_reset_ns / 1e6, (unsigned long long)tot.dgrams,
	       (unsigned long long)tot.bytes, (t_now_ns() - t0) / 1e9);
	printf("chaos: %u hostile domains, %u killed themselves; honest domains dropped %llu "
	       "datagrams and %llu connections from them; v4vd RSS %ld KiB (%ld after warm-up)\n",
	       tot.rounds * NHOST, tot.suicides, (unsigned long long)tot.hostile_dgrams,
	       (unsigned long long)tot.hostile_conns, rss, rss0);
	hostile_report();
}

static const struct t_case cases[] = {
    T_CASE(rounds),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
