/* SPDX-License-Identifier: MIT */
/*
 * v4v-bench: v4v against the local IPC it competes with, side by side in
 * one run.
 *
 * A transport is a table entry with a few operations (set a pair up in the
 * parent, open one end in a child, send a whole message, receive a whole
 * message, and for connection-oriented kinds connect/accept/close).  A
 * workload is a pair of roles (A sends or asks, B receives or answers)
 * written once against those operations.
 *
 * Every measurement forks fresh processes: B then A for each pair, each v4v
 * end attached to a domain of its own.  The parent only sets up, says "go",
 * and collects one record per child; it never moves data, so its own CPU is
 * not part of any result.  CPU is each child's user+sys time between "go"
 * and its record (getrusage(RUSAGE_SELF) in the child, so fork, attach and
 * tear-down are left out), plus v4vd's over the same interval: a result
 * bought by burning a core shows in the cpu column.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "tool.h"
#include "v4v/v4v.h"

const char *prog = "v4v-bench";

/* ---- options ------------------------------------------------------------ */

enum workload { W_THROUGHPUT, W_LATENCY, W_CONNECT, W_PAIRS, W_IDLE, W_COUNT };

static const char *const wl_names[W_COUNT] = {
    "throughput", "latency", "connect", "pairs", "idle",
};

static const size_t tput_sizes[] = {64, 1024, 65536};
#define LAT_SIZE   64
#define PAIRS_SIZE 1024

static struct {
	double secs; /* per measurement */
	double idle_secs;
	unsigned npairs;
	bool json;
	const char *plot;
	const char *rundir; /* --runtime-dir: a running v4vd to use */
	unsigned tmask;	    /* selected transports (bit per table index) */
	unsigned wmask;	    /* selected workloads */
} opt = {.secs = 0.5, .idle_secs = 1.0, .npairs = 64};

/* ---- time and CPU ------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_self(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* ---- v4vd --------------------------------------------------------------- */

static pid_t v4vd_pid;	 /* the v4vd measured (ours or the running one) */
static bool v4vd_ours;	 /* we started it and must stop it */
static char tmpdir[64];	 /* its runtime dir, when ours */
static char extdir[256]; /* its runtime dir, when not ours */

static void control_path(char *buf, size_t cap, const char *dir)
{
	if (v4v_control_path(buf, cap, dir) < 0)
		die("runtime directory path '%s' is too long", dir);
}

static bool v4vd_listening(const char *dir)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	control_path(sa.sun_path, sizeof(sa.sun_path), dir);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (s >= 0)
		close(s);
	return ok;
}

/* Stop our v4vd and remove the files it and we left in its directory.
 * Async-signal-safe (it also runs from the signal handler), hence the
 * fixed list of names and strcpy rather than readdir and snprintf. */
static void v4vd_stop(void)
{
	static const char *const files[] = {"control", "v4vd.lock", "v4vd.log"};
	char p[128];
	if (v4vd_ours && v4vd_pid > 0) {
		kill(v4vd_pid, SIGTERM);
		waitpid(v4vd_pid, NULL, 0);
		v4vd_pid = 0;
	}
	if (*tmpdir) {
		for (unsigned i = 0; i < ARRAY_SIZE(files); i++) {
			strcpy(p, tmpdir);
			strcat(p, "/");
			strcat(p, files[i]);
			unlink(p);
		}
		rmdir(tmpdir);
		*tmpdir = '\0';
	}
}

static void on_signal(int sig)
{
	v4vd_stop();
	_exit(128 + sig);
}

/* At exit: also whatever else a newer v4vd leaves there, then stop. */
static void v4vd_cleanup(void)
{
	char p[384];
	struct dirent *de;
	DIR *d = *tmpdir ? opendir(tmpdir) : NULL;
	if (v4vd_ours && v4vd_pid > 0) {
		kill(v4vd_pid, SIGTERM);
		waitpid(v4vd_pid, NULL, 0);
		v4vd_pid = 0;
	}
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	v4vd_stop();
}

static void print_v4vd_log(void)
{
	char p[128], line[512];
	snprintf(p, sizeof(p), "%s/v4vd.log", tmpdir);
	FILE *f = fopen(p, "r");
	if (!f)
		return;
	fprintf(stderr, "%s: v4vd's log (%s):\n", prog, p);
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "  %s", line);
	fclose(f);
}

/* The v4vd binary: $V4VD, else the one next to us (a build directory or
 * the same bin directory), else v4vd from PATH. */
static void v4vd_exec(void)
{
	char self[PATH_MAX], *slash;
	const char *env = getenv("V4VD");
	if (env && *env)
		execl(env, env, "--foreground", "--runtime-dir", tmpdir, (char *)NULL);
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 8);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/'))) {
			strcpy(slash + 1, "v4vd");
			execl(self, self, "--foreground", "--runtime-dir", tmpdir, (char *)NULL);
		}
	}
	execlp("v4vd", "v4vd", "--foreground", "--runtime-dir", tmpdir, (char *)NULL);
	fprintf(stderr, "cannot run v4vd (set V4VD to its path): %s\n", strerror(errno));
	_exit(127);
}

static void v4vd_start(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/v4v-bench-XXXXXX");
	if (!mkdtemp(tmpdir))
		die("cannot create a runtime directory: %s", strerror(errno));
	v4vd_ours = true;
	atexit(v4vd_cleanup);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	char log[128];
	snprintf(log, sizeof(log), "%s/v4vd.log", tmpdir);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		v4vd_exec();
	}
	v4vd_pid = pid;
	/* Poll for readiness rather than sleep and hope. */
	for (int i = 0; i < 5000; i++) {
		if (v4vd_listening(tmpdir)) {
			setenv("V4V_RUNTIME_DIR", tmpdir, 1);
			return;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			v4vd_pid = 0;
			print_v4vd_log();
			die("v4vd exited during start-up");
		}
		usleep(2000);
	}
	print_v4vd_log();
	die("v4vd did not come up within 10 s");
}

static bool v4vd_alive(void)
{
	if (v4vd_ours)
		return v4vd_pid > 0 && waitpid(v4vd_pid, NULL, WNOHANG) == 0;
	/* Its pid may be another namespace's: ask its socket instead. */
	return v4vd_listening(extdir);
}

/* Columns of one "stats" reply, as numbers (col2 may be NULL).  Sparingly:
 * each costs v4vd a scan of its fd table. */
static bool v4vd_stat2(const char *col, double *out, const char *col2, double *out2)
{
	char *body;
	struct table t;
	int found = 0;
	if (ctl_request("stats", &body, NULL) < 0) {
		free(body);
		return false;
	}
	table_parse(body, &t);
	for (int c = 0; c < t.ncols && t.nrows == 1; c++) {
		if (strcmp(t.col[c], col) == 0 && ++found)
			*out = strtod(t.cell[0][c], NULL);
		if (col2 && strcmp(t.col[c], col2) == 0 && ++found)
			*out2 = strtod(t.cell[0][c], NULL);
	}
	table_free(&t);
	free(body);
	return found == (col2 ? 2 : 1);
}

static bool v4vd_stat(const char *col, double *out)
{
	return v4vd_stat2(col, out, NULL, NULL);
}

/* Use the v4vd of --runtime-dir or $V4V_RUNTIME_DIR if one runs there;
 * else start a private one (an explicit --runtime-dir must be running). */
static void v4vd_setup(void)
{
	char dir[256];
	double pid;
	if (opt.rundir)
		setenv("V4V_RUNTIME_DIR", opt.rundir, 1);
	if (opt.rundir || getenv("V4V_RUNTIME_DIR")) {
		if (v4v_runtime_dir(dir, sizeof(dir)) < 0)
			die("runtime directory path is too long");
		if (v4vd_listening(dir)) {
			snprintf(extdir, sizeof(extdir), "%s", dir);
			if (!v4vd_stat("pid", &pid))
				die("v4vd in %s does not answer 'stats'", dir);
			v4vd_pid = (pid_t)pid;
			fprintf(stderr, "%s: using the running v4vd in %s (pid %d)\n", prog, dir,
				(int)v4vd_pid);
			return;
		}
		if (opt.rundir)
			die("no v4vd is running in %s (start one, or drop --runtime-dir to let "
			    "v4v-bench start its own)",
			    opt.rundir);
	}
	v4vd_start();
}

/* v4vd's CPU seconds from the scheduler (ns resolution); NAN when its
 * /proc entry is not ours to read (a v4vd in another pid namespace). */
static double v4vd_sched_cpu(void)
{
	char p[64];
	unsigned long long ns;
	snprintf(p, sizeof(p), "/proc/%d/schedstat", (int)v4vd_pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return NAN;
	int k = fscanf(f, "%llu", &ns);
	fclose(f);
	return k == 1 ? (double)ns * 1e-9 : NAN;
}

/* v4vd's CPU seconds so far; falls back on its "stats" (ms resolution,
 * and the command itself costs v4vd time, so only as a last resort). */
static double v4vd_cpu(void)
{
	double u, s, t = v4vd_sched_cpu();
	if (!isnan(t))
		return t;
	if (v4vd_stat2("cpu_user_ms", &u, "cpu_sys_ms", &s))
		return (u + s) * 1e-3;
	return NAN;
}

static char v4vd_state(void)
{
	char p[64], st = '?';
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)v4vd_pid);
	FILE *f = fopen(p, "r");
	if (f) {
		/* "pid (comm) S ...": comm may hold spaces, the last ')' ends it */
		char line[512], *rp;
		if (fgets(line, sizeof(line), f) && (rp = strrchr(line, ')')) && rp[1] == ' ')
			st = rp[2];
		fclose(f);
	}
	return st;
}

/*
 * Wait until v4vd is at rest before a measurement starts: asleep, and its
 * CPU time not moving.  Otherwise the tail of earlier work (tearing down
 * the last measurement's domains, which it learns of only as our children
 * exit) would be charged to this one; and the scheduler only accounts a
 * running task's time when it stops, so a reading taken while v4vd runs
 * would be short.  Bounded: a shared v4vd may never rest.
 */
static void v4vd_quiesce(void)
{
	double prev = v4vd_sched_cpu();
	if (isnan(prev)) {
		usleep(20000);
		return;
	}
	for (int i = 0; i < 200; i++) {
		usleep(1000);
		double cur = v4vd_sched_cpu();
		if (cur == prev && v4vd_state() == 'S')
			return;
		prev = cur;
	}
}

static double v4vd_domains_base; /* domains in v4vd before our first measurement */

/* After the run: do v4vd's domains come back to what they were?  Few
 * "stats" calls: each costs v4vd a scan of its fd table. */
static double v4vd_domains_left(void)
{
	double n = 0;
	for (int i = 0; i < 20; i++) {
		if (!v4vd_stat("domains", &n) || n <= v4vd_domains_base)
			return 0;
		usleep(50000);
	}
	return n - v4vd_domains_base;
}

/* A new domain for one end of a pair: its fd (which the child attaches
 * through) and its domid. */
static int domain_create(uint16_t *domid)
{
	char *body;
	int fd = -1;
	struct table t;
	if (ctl_request("domain create auto - fd", &body, &fd) < 0)
		die("cannot create a domain: %s", body);
	if (fd < 0)
		die("v4vd sent no domain fd");
	table_parse(body, &t);
	if (t.nrows != 1)
		die("unexpected reply to 'domain create'");
	*domid = (uint16_t)atoi(t.cell[0][0]);
	table_free(&t);
	free(body);
	return fd;
}

/* ---- pairs and ends ----------------------------------------------------- */

#define RING_LEN   V4V_DGRAM_RING_LEN /* v4v rings and the shm ring alike */
#define PORT(side) ((side) ? 2002u : 2001u)
#define NFD	   3
#define F_AUX	   2 /* A tells B over this pipe how many connections it made */

struct shm_pair;

/* Set up by the parent before forking; each child keeps its side's fds. */
struct pair {
	unsigned idx;
	int fd[2][NFD];		    /* [side][]: -1 when unused */
	uint16_t domid[2];	    /* v4v */
	struct shm_pair *shm;	    /* shm: one ring each way */
	struct sockaddr_storage sa; /* listener address (connect workload) */
	socklen_t salen;
	int type; /* and its socket type */
};

/* One end of a pair, in its child. */
struct end {
	struct pair *p;
	int side; /* 0: A (sender, client), 1: B (receiver, server) */
	size_t size;
	int rfd, wfd, lfd;
	/* v4v */
	struct v4v_domain *d;
	struct v4v_rx *rx;
	struct v4v_addr peer;
	struct v4v_msg held; /* received last, consumed on the next receive */
	bool holding;
	uint32_t fp;	   /* ring footprint of one message of this run */
	uint64_t consumed; /* bytes consumed since our last notify */
	/* shm */
	struct shm_ring *txr, *rxr;
	uint64_t rx_next; /* tail once the message received last is released */
};

struct transport {
	const char *name;
	const char *baseline; /* the Unix socket it is compared with */
	bool v4v;	      /* needs a domain per end */
	int (*setup)(struct pair *p, enum workload w);
	/* In the child, first: join the domain (v4v only). */
	int (*attach)(struct end *e);
	int (*open)(struct end *e);
	/* After B said it is ready (A may connect now): accept, if needed. */
	int (*open2)(struct end *e);
	int (*send)(struct end *e, const void *buf, size_t len);
	/* Receive one whole message of len bytes: *data points at it (in buf,
	 * or in place in a ring until the next receive). */
	int (*recv)(struct end *e, void *buf, size_t len, const uint8_t **data);
	/* Connection setup; NULL when the kind has no connections. */
	int (*c_listen)(struct end *e);
	int (*c_connect)(struct end *e);
	int (*c_accept)(struct end *e);
	void (*c_close)(struct end *e, int fd);
};

/* ---- file-descriptor transports: Unix sockets, pipe, TCP ---------------- */

static int fd_open(struct end *e)
{
	e->rfd = e->wfd = e->p->fd[e->side][0];
	if (e->p->fd[e->side][1] >= 0)
		e->wfd = e->p->fd[e->side][1]; /* pipe: one each way */
	return 0;
}

static int stream_send(struct end *e, const void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = write(e->wfd, (const char *)buf + off, len - off);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			off += (size_t)n;
	}
	return 0;
}

/* Streams keep no boundaries: read until the fixed-size message is whole. */
static int stream_recv(struct end *e, void *buf, size_t len, const uint8_t **data)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = read(e->rfd, (char *)buf + off, len - off);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			off += (size_t)n;
	}
	*data = buf;
	return 0;
}

static int dgram_send(struct end *e, const void *buf, size_t len)
{
	ssize_t n;
	while ((n = send(e->wfd, buf, len, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EPROTO;
}

static int dgram_recv(struct end *e, void *buf, size_t len, const uint8_t **data)
{
	ssize_t n;
	while ((n = recv(e->rfd, buf, len, 0)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	*data = buf;
	return (size_t)n == len ? 0 : -EPROTO;
}

static unsigned listener_seq;

/* The connect workload: a listener owned by B, address kept for A. */
static int listener(struct pair *p, int family, int type)
{
	int s = socket(family, type | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	p->type = type;
	if (family == AF_UNIX) {
		/* Abstract names: nothing to clean up if we are killed. */
		struct sockaddr_un *un = (struct sockaddr_un *)&p->sa;
		un->sun_family = AF_UNIX;
		int n = snprintf(un->sun_path + 1, sizeof(un->sun_path) - 1, "v4v-bench.%d.%u",
				 (int)getpid(), listener_seq++);
		p->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&p->sa;
		int one = 1;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		p->salen = sizeof(*in);
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	}
	if (bind(s, (struct sockaddr *)&p->sa, p->salen) < 0 ||
	    getsockname(s, (struct sockaddr *)&p->sa, &p->salen) < 0 || listen(s, SOMAXCONN) < 0) {
		int e = -errno;
		close(s);
		return e;
	}
	p->fd[1][0] = s;
	return 0;
}

static int unix_setup(struct pair *p, enum workload w, int type)
{
	int sv[2];
	if (w == W_CONNECT)
		return listener(p, AF_UNIX, type);
	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	p->fd[0][0] = sv[0];
	p->fd[1][0] = sv[1];
	return 0;
}

static int unix_stream_setup(struct pair *p, enum workload w)
{
	return unix_setup(p, w, SOCK_STREAM);
}

static int unix_seqpacket_setup(struct pair *p, enum workload w)
{
	return unix_setup(p, w, SOCK_SEQPACKET);
}

static int pipe_setup(struct pair *p, enum workload w)
{
	int ab[2], ba[2];
	if (pipe2(ab, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(ba, O_CLOEXEC) < 0) {
		close(ab[0]);
		close(ab[1]);
		return -errno;
	}
	p->fd[0][0] = ba[0];
	p->fd[0][1] = ab[1];
	p->fd[1][0] = ab[0];
	p->fd[1][1] = ba[1];
	return 0;
}

static void tcp_nodelay(int s)
{
	/* Messages go out as they are written, as an IPC user expects. */
	int one = 1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int tcp_setup(struct pair *p, enum workload w)
{
	int e = listener(p, AF_INET, SOCK_STREAM);
	if (e || w == W_CONNECT)
		return e;
	/* A connected pair over loopback: connect completes from the backlog. */
	int l = p->fd[1][0], a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), b = -1;
	if (a >= 0 && connect(a, (struct sockaddr *)&p->sa, p->salen) == 0)
		b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	e = b < 0 ? -errno : 0;
	close(l);
	if (e) {
		if (a >= 0)
			close(a);
		p->fd[1][0] = -1;
		return e;
	}
	tcp_nodelay(a);
	tcp_nodelay(b);
	p->fd[0][0] = a;
	p->fd[1][0] = b;
	return 0;
}

static int sock_listen(struct end *e)
{
	e->lfd = e->p->fd[1][0];
	return 0;
}

static int sock_connect(struct end *e)
{
	int s = socket(e->p->sa.ss_family, e->p->type | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&e->p->sa, e->p->salen) < 0) {
		int err = -errno;
		close(s);
		return err;
	}
	return s;
}

static int sock_accept(struct end *e)
{
	int s = accept4(e->lfd, NULL, NULL, SOCK_CLOEXEC);
	return s < 0 ? -errno : s;
}

static void sock_close(struct end *e, int fd)
{
	close(fd);
}

/* ---- shm: the one-copy limit -------------------------------------------- *
 *
 * A single-producer single-consumer ring in a MAP_SHARED mapping: the
 * sender copies each message in (the one copy), the receiver reads it in
 * place.  Nobody polls: a side that finds the ring empty (or full) says so
 * in its sleep word, re-checks, and only then sleeps on a futex; the other
 * side wakes it only when that word is set.  Each line is written by one
 * side only, so the two never fight over a cache line they both write.
 */
struct shm_ring {
	_Atomic uint64_t head;	     /* bytes produced: producer writes */
	_Atomic uint32_t prod_sleep; /* producer waits for space */
	uint8_t pad0[52];
	_Atomic uint64_t tail;	     /* bytes consumed: consumer writes */
	_Atomic uint32_t cons_sleep; /* consumer waits for data */
	uint8_t pad1[52];
	uint8_t data[RING_LEN];
};

struct shm_pair {
	struct shm_ring ring[2]; /* [0]: A to B, [1]: B to A */
};

#define SHM_HDR	 8u
#define SHM_WRAP 0xFFFFFFFFu /* "the rest of the ring is padding" */

static void futex_wait(_Atomic uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, w, FUTEX_WAIT, val, NULL, NULL, 0);
}

/* Wake the other side if it announced it sleeps.  The fence orders our
 * pointer store before reading its announcement; it orders its announcement
 * before re-reading our pointer.  So one of us sees the other: no lost
 * wake-up. */
static void shm_kick(_Atomic uint32_t *w)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(w, memory_order_relaxed)) {
		atomic_store_explicit(w, 0, memory_order_relaxed);
		syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
	}
}

/* Sleep on w until *ptr moves from seen (announce, re-check, sleep). */
static void shm_sleep(_Atomic uint32_t *w, _Atomic uint64_t *ptr, uint64_t seen)
{
	atomic_store_explicit(w, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(ptr, memory_order_relaxed) == seen)
		futex_wait(w, 1);
	atomic_store_explicit(w, 0, memory_order_relaxed);
}

static int shm_setup(struct pair *p, enum workload w)
{
	p->shm =
	    mmap(NULL, sizeof(*p->shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p->shm == MAP_FAILED) {
		p->shm = NULL;
		return -errno;
	}
	return 0;
}

static int shm_open_end(struct end *e)
{
	e->txr = &e->p->shm->ring[e->side];
	e->rxr = &e->p->shm->ring[!e->side];
	e->rx_next = 0;
	return 0;
}

static int shm_send(struct end *e, const void *buf, size_t len)
{
	struct shm_ring *r = e->txr;
	uint64_t fp = SHM_HDR + ((len + 7) & ~(uint64_t)7);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t off = head % RING_LEN;
	/* A message never wraps, so the receiver can read it in place. */
	uint64_t skip = RING_LEN - off < fp ? RING_LEN - off : 0;
	for (;;) {
		uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head + skip + fp - tail <= RING_LEN)
			break;
		shm_sleep(&r->prod_sleep, &r->tail, tail);
	}
	if (skip) {
		memcpy(r->data + off, &(uint32_t){SHM_WRAP}, 4);
		head += skip;
		off = 0;
	}
	memcpy(r->data + off, &(uint32_t){(uint32_t)len}, 4);
	memcpy(r->data + off + SHM_HDR, buf, len);
	atomic_store_explicit(&r->head, head + fp, memory_order_release);
	shm_kick(&r->cons_sleep);
	return 0;
}

static int shm_recv(struct end *e, void *buf, size_t len, const uint8_t **data)
{
	struct shm_ring *r = e->rxr;
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (e->rx_next != tail) {
		/* Release the message we handed out last time. */
		tail = e->rx_next;
		atomic_store_explicit(&r->tail, tail, memory_order_release);
		shm_kick(&r->prod_sleep);
	}
	uint64_t head;
	while ((head = atomic_load_explicit(&r->head, memory_order_acquire)) == tail)
		shm_sleep(&r->cons_sleep, &r->head, tail);
	uint64_t off = tail % RING_LEN;
	uint32_t n;
	memcpy(&n, r->data + off, 4);
	if (n == SHM_WRAP) {
		tail += RING_LEN - off;
		off = 0;
		memcpy(&n, r->data, 4);
	}
	if (n != len)
		return -EPROTO;
	*data = r->data + off + SHM_HDR;
	e->rx_next = tail + SHM_HDR + ((n + 7) & ~(uint64_t)7);
	return 0;
}

/* ---- v4v-ring: the low-level API ----------------------------------------- *
 *
 * What a datagram user of the Argo-style API writes: a ring of the datagram
 * socket's default size, v4v_sendv, the VIRQ to sleep on.  Receiving is in
 * place (the zero-copy receive of the design), so next to v4v-dgram this
 * shows what the socket layer costs.
 */
static int v4v_attach(struct end *e)
{
	return v4v_open_fd(e->p->fd[e->side][0], &e->d);
}

static int v4v_ring_open(struct end *e)
{
	e->peer = (struct v4v_addr){.aport = PORT(!e->side), .domain_id = e->p->domid[!e->side]};
	e->fp = (uint32_t)v4v_msg_ring_bytes(e->size);
	return v4v_ring_register(e->d, PORT(e->side), V4V_DOMID_ANY, RING_LEN, 0, &e->rx);
}

/* Sleep until v4vd signals this process; the caller then re-checks.  The
 * ack comes before the re-check, so a signal after it is not lost. */
static int virq_wait(struct end *e)
{
	struct pollfd p = {.fd = v4v_virq_fd(e->d), .events = POLLIN};
	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return -errno;
	return v4v_virq_ack(e->d);
}

static int v4v_ring_send(struct end *e, const void *buf, size_t len)
{
	struct iovec iov = {(void *)buf, len};
	for (;;) {
		long n = v4v_sendv(e->d, PORT(e->side), &e->peer, &iov, 1, 0);
		if (n >= 0)
			return (size_t)n == len ? 0 : -EPROTO;
		if (n != -EAGAIN)
			return (int)n;
		/* Queued as a space waiter: the VIRQ fires when there is room. */
		int err = virq_wait(e);
		if (err)
			return err;
	}
}

/*
 * A sender refused with EAGAIN waits until the ring owner calls notify.
 * Notifying after every message would add a round trip to each, so notify
 * only when a refusal was possible: since our last notify, the bytes we
 * consumed plus those still queued exceeded what leaves room for one more
 * message.  Any refusal since then needed the ring that full, and both
 * counts only grow from there, so this never misses one.  Notify when the
 * ring is empty (we are about to sleep) or half of it is free again.
 */
static int v4v_maybe_notify(struct end *e, bool empty)
{
	uint32_t len = v4v_rx_len(e->rx);
	uint32_t used = v4v_rx_used(e->rx);
	if (e->consumed + used <= len - V4V_MSG_SLOT - e->fp)
		return 0;
	if (!empty && e->consumed < len / 2)
		return 0;
	e->consumed = 0;
	return v4v_notify(e->d, NULL, 0);
}

static int v4v_ring_recv(struct end *e, void *buf, size_t len, const uint8_t **data)
{
	int err;
	if (e->holding) {
		v4v_rx_consume(e->rx, &e->held);
		e->consumed += v4v_msg_ring_bytes(e->held.len);
		e->holding = false;
		if ((err = v4v_maybe_notify(e, false)))
			return err;
	}
	for (;;) {
		int r = v4v_rx_peek(e->rx, &e->held);
		if (r < 0)
			return r;
		if (r == 1)
			break;
		if ((err = v4v_maybe_notify(e, true)) || (err = virq_wait(e)))
			return err;
	}
	e->holding = true;
	if (e->held.len != len)
		return -EPROTO;
	if (e->held.seg[1].len) {
		/* Wrapped around the end of the ring: the only copy we make. */
		v4v_msg_read(&e->held, buf, len);
		*data = buf;
	} else {
		*data = e->held.seg[0].base;
	}
	return 0;
}

static int v4v_setup(struct pair *p, enum workload w)
{
	p->fd[0][0] = domain_create(&p->domid[0]);
	p->fd[1][0] = domain_create(&p->domid[1]);
	return 0;
}

/* ---- v4v sockets: what applications use -------------------------------- */

/* A socket bound to this side's port, accepting from any domain. */
static int vsock_bound(struct end *e, int type)
{
	struct v4v_addr a = {.aport = PORT(e->side), .domain_id = V4V_DOMID_ANY};
	int s = v4v_socket(e->d, type, 0);
	if (s < 0)
		return -errno;
	if (v4v_bind(s, &a) < 0 || (type == V4V_SOCK_STREAM && v4v_listen(s, 64) < 0)) {
		int err = -errno;
		v4v_sock_close(s);
		return err;
	}
	return s;
}

static int vdgram_open(struct end *e)
{
	int s = vsock_bound(e, V4V_SOCK_DGRAM);
	if (s < 0)
		return s;
	e->rfd = e->wfd = s;
	e->peer = (struct v4v_addr){.aport = PORT(!e->side), .domain_id = e->p->domid[!e->side]};
	return 0;
}

static int vdgram_send(struct end *e, const void *buf, size_t len)
{
	ssize_t n = v4v_sendto(e->wfd, buf, len, 0, &e->peer);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EPROTO;
}

static int vdgram_recv(struct end *e, void *buf, size_t len, const uint8_t **data)
{
	ssize_t n = v4v_recv(e->rfd, buf, len, 0);
	if (n < 0)
		return -errno;
	*data = buf;
	return (size_t)n == len ? 0 : -EPROTO;
}

/* A connects to B's listener, B accepts (in open2, once A may connect). */
static int vstream_connect(struct end *e)
{
	struct v4v_addr peer = {.aport = PORT(1), .domain_id = e->p->domid[1]};
	int s = v4v_socket(e->d, V4V_SOCK_STREAM, 0);
	if (s < 0)
		return -errno;
	if (v4v_connect(s, &peer) < 0) {
		int err = -errno;
		v4v_sock_close(s);
		return err;
	}
	return s;
}

static int vstream_listen(struct end *e)
{
	int s = vsock_bound(e, V4V_SOCK_STREAM);
	e->lfd = s;
	return s < 0 ? s : 0;
}

static int vstream_open(struct end *e)
{
	if (e->side)
		return vstream_listen(e);
	int s = vstream_connect(e);
	e->rfd = e->wfd = s;
	return s < 0 ? s : 0;
}

static int vstream_accept(struct end *e)
{
	int s = v4v_accept(e->lfd, NULL);
	return s < 0 ? -errno : s;
}

static int vstream_open2(struct end *e)
{
	if (!e->side)
		return 0;
	int s = vstream_accept(e);
	e->rfd = e->wfd = s;
	return s < 0 ? s : 0;
}

static int vstream_send(struct end *e, const void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = v4v_send(e->wfd, (const char *)buf + off, len - off, 0);
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

static int vstream_recv(struct end *e, void *buf, size_t len, const uint8_t **data)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = v4v_recv(e->rfd, (char *)buf + off, len - off, 0);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		off += (size_t)n;
	}
	*data = buf;
	return 0;
}

static void vstream_close(struct end *e, int fd)
{
	v4v_sock_close(fd);
}

/* ---- the table ---------------------------------------------------------- */

static const struct transport transports[] = {
    {.name = "v4v-dgram",
     .baseline = "unix-seqpacket",
     .v4v = true,
     .setup = v4v_setup,
     .attach = v4v_attach,
     .open = vdgram_open,
     .send = vdgram_send,
     .recv = vdgram_recv},
    {.name = "v4v-stream",
     .baseline = "unix-stream",
     .v4v = true,
     .setup = v4v_setup,
     .attach = v4v_attach,
     .open = vstream_open,
     .open2 = vstream_open2,
     .send = vstream_send,
     .recv = vstream_recv,
     .c_listen = vstream_listen,
     .c_connect = vstream_connect,
     .c_accept = vstream_accept,
     .c_close = vstream_close},
    {.name = "v4v-ring",
     .baseline = "unix-seqpacket",
     .v4v = true,
     .setup = v4v_setup,
     .attach = v4v_attach,
     .open = v4v_ring_open,
     .send = v4v_ring_send,
     .recv = v4v_ring_recv},
    {.name = "unix-stream",
     .baseline = "unix-stream",
     .setup = unix_stream_setup,
     .open = fd_open,
     .send = stream_send,
     .recv = stream_recv,
     .c_listen = sock_listen,
     .c_connect = sock_connect,
     .c_accept = sock_accept,
     .c_close = sock_close},
    {.name = "unix-seqpacket",
     .baseline = "unix-seqpacket",
     .setup = unix_seqpacket_setup,
     .open = fd_open,
     .send = dgram_send,
     .recv = dgram_recv,
     .c_listen = sock_listen,
     .c_connect = sock_connect,
     .c_accept = sock_accept,
     .c_close = sock_close},
    {.name = "pipe",
     .baseline = "unix-stream",
     .setup = pipe_setup,
     .open = fd_open,
     .send = stream_send,
     .recv = stream_recv},
    {.name = "tcp",
     .baseline = "unix-stream",
     .setup = tcp_setup,
     .open = fd_open,
     .send = stream_send,
     .recv = stream_recv,
     .c_listen = sock_listen,
     .c_connect = sock_connect,
     .c_accept = sock_accept,
     .c_close = sock_close},
    {.name = "shm",
     .baseline = "unix-stream",
     .setup = shm_setup,
     .open = shm_open_end,
     .send = shm_send,
     .recv = shm_recv},
};
#define NT ARRAY_SIZE(transports)

static int transport_index(const char *name)
{
	for (unsigned i = 0; i < NT; i++)
		if (strcmp(transports[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* ---- the children ------------------------------------------------------- */

enum { REC_READY = 1, REC_DONE, REC_FAIL };

/* What each child tells the parent; small enough for one atomic write. */
struct rec {
	uint32_t type;
	uint32_t pair, side;
	int32_t err;	 /* REC_FAIL: -errno */
	char what[24];	 /* REC_FAIL: the operation that failed */
	uint64_t n;	 /* messages, round trips or connections */
	double cpu;	 /* own user+sys seconds from go to done */
	double p50, p99; /* latency client: round trip, µs */
};

/* One measurement: a transport, a workload and its processes. */
struct run {
	const struct transport *t;
	enum workload w;
	size_t size;
	unsigned npairs;
	double secs;
	struct pair *pairs;
	pid_t *kids; /* [2 * npairs], 0 once reaped */
	unsigned nkids;
	int res[2];  /* records, children to parent */
	int go[2];   /* the parent closes go[1]: everybody starts */
	int stop[2]; /* idle: the parent closes stop[1] to end it */
	int quit[2]; /* the parent closes quit[1]: children may exit */
};

static void send_rec(struct run *r, struct rec *rec)
{
	if (write(r->res[1], rec, sizeof(*rec)) != (ssize_t)sizeof(*rec))
		_exit(1);
}

static __attribute__((noreturn)) void child_fail(struct run *r, struct end *e, const char *what,
						 int err)
{
	struct rec rec = {
	    .type = REC_FAIL, .pair = e->p->idx, .side = (uint32_t)e->side, .err = err};
	snprintf(rec.what, sizeof(rec.what), "%s", what);
	send_rec(r, &rec);
	_exit(0);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

#define MAX_SAMPLES (1u << 20)

static void role_throughput_a(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	double deadline = now() + r->secs;
	int err;
	buf[0] = 0;
	do {
		if ((err = r->t->send(e, buf, e->size)))
			child_fail(r, e, "send", err);
		rec->n++;
	} while (now() < deadline);
	buf[0] = 1; /* the last message */
	if ((err = r->t->send(e, buf, e->size)))
		child_fail(r, e, "send", err);
}

static void role_throughput_b(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	const uint8_t *data;
	for (;;) {
		int err = r->t->recv(e, buf, e->size, &data);
		if (err)
			child_fail(r, e, "recv", err);
		if (data[0])
			return;
		rec->n++;
	}
}

static void role_latency_a(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	uint32_t *lat = malloc(MAX_SAMPLES * sizeof(*lat));
	const uint8_t *data;
	double deadline = now() + r->secs;
	uint64_t n = 0;
	int err;
	if (!lat)
		child_fail(r, e, "malloc", -ENOMEM);
	buf[0] = 0;
	do {
		uint64_t t0 = now_ns();
		if ((err = r->t->send(e, buf, e->size)))
			child_fail(r, e, "send", err);
		if ((err = r->t->recv(e, buf, e->size, &data)))
			child_fail(r, e, "recv", err);
		uint64_t dt = now_ns() - t0;
		if (n < MAX_SAMPLES)
			lat[n] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
		n++;
	} while (now() < deadline);
	buf[0] = 1;
	if ((err = r->t->send(e, buf, e->size)))
		child_fail(r, e, "send", err);
	unsigned k = n < MAX_SAMPLES ? (unsigned)n : MAX_SAMPLES;
	qsort(lat, k, sizeof(*lat), cmp_u32);
	rec->n = n;
	rec->p50 = lat[k / 2] * 1e-3;
	rec->p99 = lat[(size_t)k * 99 / 100] * 1e-3;
	free(lat);
}

static void role_latency_b(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	const uint8_t *data;
	for (;;) {
		int err = r->t->recv(e, buf, e->size, &data);
		if (err)
			child_fail(r, e, "recv", err);
		if (data[0])
			return;
		/* Echo straight from where it arrived (in place for rings). */
		if ((err = r->t->send(e, data, e->size)))
			child_fail(r, e, "send", err);
		rec->n++;
	}
}

static void role_connect_a(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	double deadline = now() + r->secs;
	do {
		int s = r->t->c_connect(e);
		if (s < 0)
			child_fail(r, e, "connect", s);
		r->t->c_close(e, s);
		rec->n++;
	} while (now() < deadline);
	/* B accepts until it has them all: connections may still be queued. */
	if (write(e->p->fd[0][F_AUX], &rec->n, sizeof(rec->n)) != sizeof(rec->n))
		child_fail(r, e, "write", -errno);
}

static void role_connect_b(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	struct pollfd p[2] = {
	    {.fd = e->lfd, .events = POLLIN},
	    {.fd = e->p->fd[1][F_AUX], .events = POLLIN},
	};
	uint64_t want = UINT64_MAX;
	while (rec->n < want) {
		/* Once A's count is in, every connection is queued: just accept. */
		if (want == UINT64_MAX && poll(p, 2, -1) < 0) {
			if (errno != EINTR)
				child_fail(r, e, "poll", -errno);
			continue;
		}
		if (want == UINT64_MAX && p[1].revents) {
			if (read(p[1].fd, &want, sizeof(want)) != sizeof(want))
				child_fail(r, e, "read", -EPROTO);
			continue;
		}
		if (want != UINT64_MAX || p[0].revents) {
			int s = r->t->c_accept(e);
			if (s < 0)
				child_fail(r, e, "accept", s);
			r->t->c_close(e, s);
			rec->n++;
		}
	}
}

/* Idle: attached with a bound socket, asleep on it and on the VIRQ until
 * told to stop.  Wake-ups are counted: there should be none. */
static void role_idle(struct run *r, struct end *e, uint8_t *buf, struct rec *rec)
{
	struct pollfd p[3] = {
	    {.fd = r->stop[0], .events = POLLIN},
	    {.fd = v4v_virq_fd(e->d), .events = POLLIN},
	    {.fd = e->rfd, .events = POLLIN},
	};
	for (;;) {
		if (poll(p, 3, -1) < 0) {
			if (errno != EINTR)
				child_fail(r, e, "poll", -errno);
			continue;
		}
		if (p[0].revents)
			return;
		if (p[1].revents) {
			int err = v4v_virq_ack(e->d);
			if (err)
				child_fail(r, e, "virq_ack", err);
			rec->n++;
		}
		if (p[2].revents) {
			/* Whatever woke the socket: let the library look at it. */
			if (v4v_recv(e->rfd, buf, 1, MSG_DONTWAIT) < 0 && errno != EAGAIN)
				child_fail(r, e, "recv", -errno);
			rec->n++;
		}
	}
}

typedef void role_fn(struct run *r, struct end *e, uint8_t *buf, struct rec *rec);

static role_fn *const roles[W_COUNT][2] = {
    [W_THROUGHPUT] = {role_throughput_a, role_throughput_b},
    [W_LATENCY] = {role_latency_a, role_latency_b},
    [W_CONNECT] = {role_connect_a, role_connect_b},
    [W_PAIRS] = {role_throughput_a, role_throughput_b},
    [W_IDLE] = {role_idle, role_idle},
};

static void close_pair(struct pair *p, int side)
{
	for (int i = 0; i < NFD; i++)
		if (p->fd[side][i] >= 0) {
			close(p->fd[side][i]);
			p->fd[side][i] = -1;
		}
}

static __attribute__((noreturn)) void child_main(struct run *r, unsigned idx, int side)
{
	/* Die with the parent, and leave its clean-up to it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	close(r->res[0]);
	close(r->go[1]);
	close(r->stop[1]);
	close(r->quit[1]);
	/* Only our own end stays open: peers see hang-ups as they should. */
	for (unsigned i = 0; i < r->npairs; i++)
		for (int s = 0; s < 2; s++)
			if (i != idx || s != side)
				close_pair(&r->pairs[i], s);

	struct end e = {
	    .p = &r->pairs[idx], .side = side, .size = r->size, .rfd = -1, .wfd = -1, .lfd = -1};
	struct rec rec = {.type = REC_READY, .pair = idx, .side = (uint32_t)side};
	uint8_t *buf = malloc(r->size + 1);
	int err;
	if (!buf)
		child_fail(r, &e, "malloc", -ENOMEM);
	memset(buf, 'x', r->size);
	if (r->t->attach && (err = r->t->attach(&e)))
		child_fail(r, &e, "attach", err);
	if (r->w == W_CONNECT)
		err = side ? r->t->c_listen(&e) : 0;
	else
		err = r->t->open(&e);
	if (err)
		child_fail(r, &e, r->w == W_CONNECT ? "listen" : "open", err);
	send_rec(r, &rec);
	if (r->w != W_CONNECT && r->t->open2 && (err = r->t->open2(&e)))
		child_fail(r, &e, "accept", err);

	char c;
	while (read(r->go[0], &c, 1) < 0 && errno == EINTR)
		;
	double c0 = cpu_self();
	roles[r->w][side](r, &e, buf, &rec);
	rec.type = REC_DONE;
	rec.cpu = cpu_self() - c0;
	send_rec(r, &rec);
	/* Stay until the parent has taken its readings: our exit makes v4vd
	 * tear the domain down, work that belongs to no measurement. */
	while (read(r->quit[0], &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

/* ---- the parent: one measurement ---------------------------------------- */

struct result {
	const char *transport;
	enum workload w;
	const char *wname; /* e.g. "latency-p99" */
	size_t size;
	double value;
	const char *unit;
	bool lower_better;
	double ratio;
	double mbps;
	double cpu, cpu_v4vd; /* % of one core */
	double secs;
	unsigned pairs;
	uint64_t wakeups; /* idle: VIRQs the idle domains saw */
	char err[160];
};

static struct result *results;
static unsigned nresults, cap_results;

static struct result *add_result(const char *transport, enum workload w, size_t size)
{
	if (nresults == cap_results) {
		cap_results = cap_results ? 2 * cap_results : 64;
		results = realloc(results, cap_results * sizeof(*results));
		if (!results)
			die("out of memory");
	}
	struct result *res = &results[nresults++];
	*res = (struct result){.transport = transport,
			       .w = w,
			       .wname = wl_names[w],
			       .size = size,
			       .value = NAN,
			       .ratio = NAN,
			       .mbps = NAN,
			       .cpu = NAN,
			       .cpu_v4vd = NAN};
	return res;
}

/* Reap children without blocking; a crash fails the measurement. */
static bool reap(struct run *r, char *err, size_t cap)
{
	for (unsigned i = 0; i < r->nkids; i++) {
		int st;
		if (r->kids[i] <= 0 || waitpid(r->kids[i], &st, WNOHANG) != r->kids[i])
			continue;
		r->kids[i] = 0;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			continue;
		if (WIFSIGNALED(st))
			snprintf(err, cap, "%s of pair %u was killed by signal %d (%s)",
				 i % 2 ? "B" : "A", i / 2, WTERMSIG(st), strsignal(WTERMSIG(st)));
		else
			snprintf(err, cap, "%s of pair %u exited with status %d", i % 2 ? "B" : "A",
				 i / 2, WEXITSTATUS(st));
		return false;
	}
	return true;
}

/* Read count records of the given type, watching the children. */
static bool collect(struct run *r, unsigned type, unsigned count, double deadline, struct rec *out,
		    char *err, size_t cap)
{
	struct rec rec;
	size_t got = 0;
	unsigned n = 0;
	while (n < count) {
		double left = deadline - now();
		if (left <= 0) {
			snprintf(err, cap, "timed out (%u of %u %s)", n, count,
				 type == REC_READY ? "processes ready" : "processes done");
			return false;
		}
		struct pollfd p = {.fd = r->res[0], .events = POLLIN};
		if (poll(&p, 1, left > 0.05 ? 50 : (int)(left * 1000) + 1) > 0) {
			ssize_t k = read(r->res[0], (char *)&rec + got, sizeof(rec) - got);
			if (k == 0) {
				if (reap(r, err, cap))
					snprintf(err, cap, "a process exited early");
				return false;
			}
			if (k > 0 && (got += (size_t)k) == sizeof(rec)) {
				got = 0;
				if (rec.type == REC_FAIL) {
					snprintf(err, cap, "%s of pair %u: %s: %s",
						 rec.side ? "B" : "A", rec.pair, rec.what,
						 strerror(-rec.err));
					return false;
				}
				if (rec.type != type) {
					snprintf(err, cap, "unexpected record %u", rec.type);
					return false;
				}
				if (out)
					out[n] = rec;
				n++;
			}
		}
		if (!reap(r, err, cap))
			return false;
	}
	return true;
}

static pid_t spawn(struct run *r, unsigned idx, int side)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		child_main(r, idx, side);
	return pid;
}

static void kill_kids(struct run *r, bool now_)
{
	/* Normally they exit by themselves right after their record. */
	double deadline = now() + (now_ ? 0 : 5);
	for (unsigned i = 0; i < r->nkids; i++) {
		while (r->kids[i] > 0 && now() < deadline &&
		       waitpid(r->kids[i], NULL, WNOHANG) == 0)
			usleep(1000);
		if (r->kids[i] > 0 && waitpid(r->kids[i], NULL, WNOHANG) == 0) {
			kill(r->kids[i], SIGKILL);
			waitpid(r->kids[i], NULL, 0);
		}
		r->kids[i] = 0;
	}
}

/*
 * Run one measurement: set up npairs pairs, fork B of every pair (so
 * listeners exist before anyone connects), then A of every pair, wait until
 * all are ready, then go.  Fills res (value unit-specific, cpu) or res->err.
 */
static void measure(const struct transport *t, enum workload w, size_t size, unsigned npairs,
		    double secs, struct result *res, struct rec *lat)
{
	struct run r = {
	    .t = t, .w = w, .size = size, .npairs = npairs, .secs = secs, .nkids = 2 * npairs};
	struct rec *recs = calloc(2 * npairs, sizeof(*recs));
	r.pairs = calloc(npairs, sizeof(*r.pairs));
	r.kids = calloc(2 * npairs, sizeof(*r.kids));
	if (!recs || !r.pairs || !r.kids)
		die("out of memory");
	if (pipe2(r.res, O_CLOEXEC) < 0 || pipe2(r.go, O_CLOEXEC) < 0 ||
	    pipe2(r.stop, O_CLOEXEC) < 0 || pipe2(r.quit, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));

	bool ok = true;
	for (unsigned i = 0; i < npairs && ok; i++) {
		struct pair *p = &r.pairs[i];
		int aux[2], e;
		p->idx = i;
		memset(p->fd, -1, sizeof(p->fd));
		if (pipe2(aux, O_CLOEXEC) < 0)
			die("pipe: %s", strerror(errno));
		p->fd[1][F_AUX] = aux[0];
		p->fd[0][F_AUX] = aux[1];
		if ((e = t->setup(p, w))) {
			snprintf(res->err, sizeof(res->err), "set-up: %s", strerror(-e));
			ok = false;
		}
	}
	/* Plenty of time for set-up, never a hang: a stuck run fails. */
	double slack = 10 + 0.1 * npairs;
	for (int side = 1; side >= 0 && ok; side--) {
		for (unsigned i = 0; i < npairs && ok; i++)
			if ((r.kids[2 * i + (unsigned)side] = spawn(&r, i, side)) < 0) {
				snprintf(res->err, sizeof(res->err), "fork: %s", strerror(errno));
				r.kids[2 * i + (unsigned)side] = 0;
				ok = false;
			}
		if (ok)
			ok = collect(&r, REC_READY, npairs, now() + slack, NULL, res->err,
				     sizeof(res->err));
	}
	/* From here on the children hold everything they need. */
	for (unsigned i = 0; i < npairs; i++) {
		close_pair(&r.pairs[i], 0);
		close_pair(&r.pairs[i], 1);
		if (r.pairs[i].shm)
			munmap(r.pairs[i].shm, sizeof(*r.pairs[i].shm));
	}
	close(r.res[1]);
	close(r.go[0]);
	close(r.stop[0]);
	close(r.quit[0]);

	double v0 = 0, t0 = 0, t1 = 0, v1 = 0;
	if (ok) {
		if (t->v4v)
			v4vd_quiesce();
		v0 = t->v4v ? v4vd_cpu() : NAN;
		t0 = now();
		close(r.go[1]);
		r.go[1] = -1;
		if (w == W_IDLE) {
			struct timespec ts = {(time_t)secs,
					      (long)((secs - (double)(time_t)secs) * 1e9)};
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			close(r.stop[1]);
			r.stop[1] = -1;
		}
		ok = collect(&r, REC_DONE, 2 * npairs, t0 + secs + slack, recs, res->err,
			     sizeof(res->err));
		t1 = now();
		v1 = t->v4v ? v4vd_cpu() : NAN;
	}
	if (r.go[1] >= 0)
		close(r.go[1]);
	if (r.stop[1] >= 0)
		close(r.stop[1]);
	close(r.quit[1]);
	close(r.res[0]);
	kill_kids(&r, !ok);

	if (ok) {
		double wall = t1 - t0, cpu = 0;
		uint64_t n = 0;
		for (unsigned i = 0; i < 2 * npairs; i++) {
			cpu += recs[i].cpu;
			/* B counts what arrived; A counts round trips. */
			if (w == W_IDLE || recs[i].side == (w == W_LATENCY ? 0u : 1u))
				n += recs[i].n;
			if (w == W_LATENCY && recs[i].side == 0)
				*lat = recs[i];
		}
		res->secs = wall;
		res->cpu_v4vd = (v1 - v0) / wall * 100;
		res->cpu = (cpu + (t->v4v ? v1 - v0 : 0)) / wall * 100;
		res->pairs = npairs;
		switch (w) {
		case W_THROUGHPUT:
		case W_PAIRS:
			res->value = (double)n / wall;
			res->unit = "msg/s";
			res->mbps = res->value * (double)size / 1e6;
			break;
		case W_CONNECT:
			res->value = (double)n / wall;
			res->unit = "conn/s";
			break;
		case W_LATENCY:
			res->value = lat->p50;
			res->unit = "us";
			res->lower_better = true;
			break;
		case W_IDLE:
			/* Wake-ups are the first sign of polling: report them. */
			res->value = res->cpu;
			res->unit = "%cpu";
			res->lower_better = true;
			res->wakeups = n;
			break;
		case W_COUNT: break;
		}
	}
	free(recs);
	free(r.pairs);
	free(r.kids);
}

/* ---- output ------------------------------------------------------------- */

static const struct transport *tfind(const char *name)
{
	int i = transport_index(name);
	return i < 0 ? NULL : &transports[i];
}

static void compute_ratios(void)
{
	for (unsigned i = 0; i < nresults; i++) {
		struct result *r = &results[i];
		const struct transport *t = tfind(r->transport);
		if (!t || isnan(r->value))
			continue;
		for (unsigned j = 0; j < nresults; j++) {
			struct result *b = &results[j];
			if (strcmp(b->transport, t->baseline) || strcmp(b->wname, r->wname) ||
			    b->size != r->size || isnan(b->value) || b->value <= 0 || r->value <= 0)
				continue;
			/* Oriented so that above 1 always means better than the baseline. */
			r->ratio = r->lower_better ? b->value / r->value : r->value / b->value;
		}
	}
}

static void json_num(const char *key, double v)
{
	if (isnan(v) || isinf(v))
		printf(", \"%s\": null", key);
	else
		printf(", \"%s\": %.6g", key, v);
}

static void print_json(void)
{
	printf("[");
	for (unsigned i = 0; i < nresults; i++) {
		struct result *r = &results[i];
		printf("%s{\"transport\": \"%s\", \"workload\": \"%s\", \"size\": %zu",
		       i ? ",\n " : "", r->transport, r->wname, r->size);
		json_num("value", r->value);
		printf(", \"unit\": \"%s\"", r->unit ? r->unit : "");
		json_num("ratio", r->ratio);
		printf(", \"baseline\": ");
		if (tfind(r->transport))
			printf("\"%s\"", tfind(r->transport)->baseline);
		else
			printf("null");
		json_num("cpu", r->cpu);
		json_num("cpu_v4vd", r->cpu_v4vd);
		if (r->w == W_THROUGHPUT || r->w == W_PAIRS)
			json_num("mb_per_s", r->mbps);
		if (r->w == W_PAIRS)
			printf(", \"pairs\": %u", r->pairs);
		if (r->w == W_IDLE)
			printf(", \"wakeups\": %llu", (unsigned long long)r->wakeups);
		json_num("seconds", r->secs);
		if (*r->err) {
			printf(", \"error\": \"");
			for (const char *s = r->err; *s; s++)
				printf(*s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
			printf("\"");
		}
		printf("}");
	}
	printf("]\n");
}

/* Three significant digits, with k/M for the big ones. */
static void fmt_num(char *buf, size_t cap, double v)
{
	if (isnan(v))
		snprintf(buf, cap, "-");
	else if (v >= 1e6)
		snprintf(buf, cap, "%.3gM", v / 1e6);
	else if (v >= 1e4)
		snprintf(buf, cap, "%.3gk", v / 1e3);
	else if (v >= 100)
		snprintf(buf, cap, "%.0f", v);
	else
		snprintf(buf, cap, "%.3g", v);
}

static bool same_group(const struct result *a, const struct result *b)
{
	return strcmp(a->wname, b->wname) == 0 && a->size == b->size;
}

/* Results in groups (workload and size, in the order first measured), so
 * that p50 and p99 each get a block of their own. */
static void sort_groups(void)
{
	struct result *sorted = malloc(nresults * sizeof(*sorted));
	unsigned n = 0;
	if (!sorted)
		die("out of memory");
	for (unsigned i = 0; i < nresults; i++) {
		bool seen = false;
		for (unsigned j = 0; j < i; j++)
			seen |= same_group(&results[j], &results[i]);
		for (unsigned j = i; j < nresults && !seen; j++)
			if (same_group(&results[j], &results[i]))
				sorted[n++] = results[j];
	}
	memcpy(results, sorted, nresults * sizeof(*sorted));
	free(sorted);
}

static void print_table(void)
{
	char val[32], ratio[32], mb[32], cpu[32], vcpu[32], size[32];
	printf("%-15s %-12s %6s %8s %-7s %6s %9s %6s %6s\n", "transport", "workload", "size",
	       "value", "unit", "ratio", "MB/s", "cpu%", "v4vd%");
	for (unsigned i = 0; i < nresults; i++) {
		struct result *r = &results[i];
		if (i && !same_group(r, &results[i - 1]))
			printf("\n");
		fmt_num(val, sizeof(val), r->value);
		if (isnan(r->ratio))
			snprintf(ratio, sizeof(ratio), "-");
		else
			snprintf(ratio, sizeof(ratio), "%.2f", r->ratio);
		fmt_num(mb, sizeof(mb), r->w == W_IDLE ? NAN : r->mbps);
		snprintf(cpu, sizeof(cpu), isnan(r->cpu) ? "-" : "%.0f", r->cpu);
		snprintf(vcpu, sizeof(vcpu), isnan(r->cpu_v4vd) ? "-" : "%.0f", r->cpu_v4vd);
		if (r->w == W_IDLE) {
			snprintf(cpu, sizeof(cpu), isnan(r->cpu) ? "-" : "%.2f", r->cpu);
			snprintf(vcpu, sizeof(vcpu), isnan(r->cpu_v4vd) ? "-" : "%.2f",
				 r->cpu_v4vd);
		}
		if (r->size)
			snprintf(size, sizeof(size), "%zu", r->size);
		else
			snprintf(size, sizeof(size), "-");
		if (*r->err) {
			printf("%-15s %-12s %6s  FAILED: %s\n", r->transport, r->wname, size,
			       r->err);
			continue;
		}
		printf("%-15s %-12s %6s %8s %-7s %6s %9s %6s %6s\n", r->transport, r->wname, size,
		       val, r->unit ? r->unit : "", ratio, mb, cpu, vcpu);
	}
	printf("\nratio: against unix-seqpacket for datagram kinds (v4v-dgram, v4v-ring), "
	       "against unix-stream for the rest;\n       above 1 is better than the baseline "
	       "(for latency: baseline / value).\n"
	       "cpu%%: user+sys of every process taking part, v4vd included, in %% of one "
	       "core.\n");
	for (unsigned i = 0; i < nresults; i++)
		if (results[i].w == W_PAIRS) {
			printf("pairs: %u sender/receiver pairs at once, %d-byte messages, "
			       "aggregate.\n",
			       results[i].pairs, PAIRS_SIZE);
			break;
		}
}

static bool gnuplot_found(void)
{
	const char *path = getenv("PATH");
	char p[PATH_MAX];
	for (const char *s = path ? path : "/usr/bin:/bin"; *s;) {
		size_t n = strcspn(s, ":");
		snprintf(p, sizeof(p), "%.*s/gnuplot", (int)n, s);
		if (access(p, X_OK) == 0)
			return true;
		s += n + (s[n] == ':');
	}
	return false;
}

/* The ratios as grouped bars: one group per workload and size, one bar
 * per transport, log scale so that 0.5 and 2 are equally far from 1. */
static int plot(const char *file)
{
	char dat[] = "/tmp/v4v-bench-plot-XXXXXX";
	int fd = mkstemp(dat);
	if (fd < 0)
		die("cannot create a temporary file: %s", strerror(errno));
	FILE *f = fdopen(fd, "w");
	unsigned cols = 0;
	const char *names[NT];
	fprintf(f, "group");
	for (unsigned t = 0; t < NT; t++)
		for (unsigned i = 0; i < nresults; i++)
			if (strcmp(results[i].transport, transports[t].name) == 0) {
				names[cols++] = transports[t].name;
				fprintf(f, "\t%s", transports[t].name);
				break;
			}
	fprintf(f, "\n");
	for (unsigned i = 0; i < nresults; i++) {
		struct result *r = &results[i];
		bool first = true;
		for (unsigned j = 0; j < i; j++)
			if (strcmp(results[j].wname, r->wname) == 0 && results[j].size == r->size)
				first = false;
		if (!first || r->w == W_IDLE)
			continue;
		if (r->size && r->w != W_LATENCY)
			fprintf(f, "\"%s %zu B\"", r->wname, r->size);
		else
			fprintf(f, "\"%s\"", r->wname);
		for (unsigned c = 0; c < cols; c++) {
			double v = NAN;
			for (unsigned j = 0; j < nresults; j++)
				if (strcmp(results[j].transport, names[c]) == 0 &&
				    strcmp(results[j].wname, r->wname) == 0 &&
				    results[j].size == r->size)
					v = results[j].ratio;
			fprintf(f, isnan(v) ? "\t-" : "\t%.4g", v);
		}
		fprintf(f, "\n");
	}
	fclose(f);

	bool svg = strlen(file) >= 4 && strcasecmp(file + strlen(file) - 4, ".svg") == 0;
	FILE *g = popen("gnuplot", "w");
	if (!g) {
		unlink(dat);
		die("cannot run gnuplot: %s", strerror(errno));
	}
	fprintf(g, "set terminal %s size 1200,600 font 'sans,10'\n", svg ? "svg" : "pngcairo");
	fprintf(g, "set output '%s'\n", file);
	fprintf(g, "set title 'v4v-bench: each transport against its Unix socket baseline "
		   "(above 1 = better)'\n"
		   "set datafile separator '\\t'\nset datafile missing '-'\n"
		   "set style data histograms\nset style histogram clustered gap 1\n"
		   "set style fill solid 0.85 border -1\nset logscale y 10\nset format y '%%g'\n"
		   "set ylabel 'ratio to baseline (log scale)'\nset grid ytics\n"
		   "set key outside right top\nset xtics rotate by -25\n"
		   "set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2\n");
	fprintf(g, "plot for [i=2:%u] '%s' using i:xtic(1) title columnheader(i)\n", cols + 1, dat);
	int st = pclose(g);
	unlink(dat);
	if (st != 0) {
		fprintf(stderr, "%s: gnuplot failed to write %s\n", prog, file);
		return -1;
	}
	fprintf(stderr, "%s: wrote %s\n", prog, file);
	return 0;
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: v4v-bench [--quick] [--time SEC] [--only T[,T..]] [--workload W[,W..]]\n"
		   "                 [--pairs N] [--json] [--plot FILE.svg|FILE.png]\n"
		   "                 [--runtime-dir DIR] [--list]\n"
		   "  --quick           CI smoke run: ~30 ms per measurement\n"
		   "  --time SEC        seconds per measurement (default 0.5)\n"
		   "  --only T,...      transports to run (their Unix baselines run too)\n"
		   "  --workload W,...  throughput, latency, connect, pairs, idle\n"
		   "  --pairs N         pairs at once in the pairs workload (default 64)\n"
		   "  --json            print a JSON array of results instead of the table\n"
		   "  --plot FILE       also draw the ratios with gnuplot (.svg or .png)\n"
		   "  --runtime-dir DIR use the v4vd running there (default: start a private one)\n"
		   "  --list            print the transports and workloads, then exit\n");
}

static unsigned parse_list(const char *arg, const char *what, bool transport)
{
	char *copy = strdup(arg), *save = NULL;
	unsigned mask = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int i = -1;
		if (transport) {
			i = transport_index(tok);
		} else {
			for (int k = 0; k < W_COUNT; k++)
				if (strcmp(wl_names[k], tok) == 0)
					i = k;
		}
		if (i < 0) {
			fprintf(stderr, "%s: unknown %s '%s' (see --list)\n", prog, what, tok);
			usage(stderr);
			exit(1);
		}
		mask |= 1u << i;
	}
	free(copy);
	if (!mask) {
		fprintf(stderr, "%s: empty %s list\n", prog, what);
		usage(stderr);
		exit(1);
	}
	return mask;
}

static void progress(unsigned k, unsigned total, const struct result *r)
{
	char v[32];
	fprintf(stderr, "[%2u/%u] %-15s %-12s", k, total, r->transport, r->wname);
	if (r->size)
		fprintf(stderr, " %6zu B", r->size);
	else
		fprintf(stderr, "         ");
	if (*r->err) {
		fprintf(stderr, "  FAILED: %s\n", r->err);
		return;
	}
	fmt_num(v, sizeof(v), r->value);
	if (r->w == W_IDLE)
		fprintf(stderr, "  %8s %-6s v4vd %.2f%%, %llu wake-ups\n", v, r->unit, r->cpu_v4vd,
			(unsigned long long)r->wakeups);
	else
		fprintf(stderr, "  %8s %-6s cpu %.0f%%\n", v, r->unit, r->cpu);
}

/* Whether transport t takes part in workload w. */
static bool applies(const struct transport *t, enum workload w)
{
	if (w == W_CONNECT)
		return t->c_connect != NULL;
	if (w == W_IDLE)
		return false; /* a v4v-only check, run once (see main) */
	return true;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"quick", no_argument, NULL, 'q'},
	    {"time", required_argument, NULL, 't'},
	    {"only", required_argument, NULL, 'o'},
	    {"workload", required_argument, NULL, 'w'},
	    {"pairs", required_argument, NULL, 'p'},
	    {"json", no_argument, NULL, 'j'},
	    {"plot", required_argument, NULL, 'P'},
	    {"runtime-dir", required_argument, NULL, 'r'},
	    {"list", no_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	bool quick = false, time_set = false, pairs_set = false;
	uint64_t v;
	char *end;
	int c;

	opt.tmask = (1u << NT) - 1;
	opt.wmask = (1u << W_COUNT) - 1;
	while ((c = getopt_long(argc, argv, "qt:o:w:p:jP:r:lh", opts, NULL)) != -1) {
		switch (c) {
		case 'q': quick = true; break;
		case 't':
			opt.secs = strtod(optarg, &end);
			if (*end || !(opt.secs >= 0.001 && opt.secs <= 600)) {
				fprintf(stderr, "%s: bad --time '%s' (0.001..600 seconds)\n", prog,
					optarg);
				usage(stderr);
				return 1;
			}
			time_set = true;
			break;
		case 'o': opt.tmask = parse_list(optarg, "transport", true); break;
		case 'w': opt.wmask = parse_list(optarg, "workload", false); break;
		case 'p':
			if (!v4v_parse_u64(optarg, 1, 256, &v)) {
				fprintf(stderr, "%s: bad --pairs '%s' (1..256)\n", prog, optarg);
				usage(stderr);
				return 1;
			}
			opt.npairs = (unsigned)v;
			pairs_set = true;
			break;
		case 'j': opt.json = true; break;
		case 'P': opt.plot = optarg; break;
		case 'r': opt.rundir = optarg; break;
		case 'l':
			printf("transports:");
			for (unsigned i = 0; i < NT; i++)
				printf(" %s", transports[i].name);
			printf("\nworkloads:");
			for (unsigned i = 0; i < W_COUNT; i++)
				printf(" %s", wl_names[i]);
			printf("\n");
			return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		usage(stderr);
		return 1;
	}
	if (quick) {
		if (!time_set)
			opt.secs = 0.03;
		if (!pairs_set)
			opt.npairs = 16;
		opt.idle_secs = 0.2;
	}
	if (opt.plot) {
		size_t n = strlen(opt.plot);
		if (n < 5 || (strcasecmp(opt.plot + n - 4, ".svg") &&
			      strcasecmp(opt.plot + n - 4, ".png"))) {
			fprintf(stderr, "%s: --plot FILE must end in .svg or .png\n", prog);
			usage(stderr);
			return 1;
		}
		/* Say so now, not after the whole run. */
		if (!gnuplot_found())
			die("--plot needs gnuplot, which is not installed (no gnuplot in PATH); "
			    "install it (e.g. apt install gnuplot-nox) or drop --plot");
	}
	/* The ratio column needs the baselines: run them too. */
	for (unsigned i = 0; i < NT; i++)
		if (opt.tmask & (1u << i))
			opt.tmask |= 1u << transport_index(transports[i].baseline);
	signal(SIGPIPE, SIG_IGN);

	bool want_v4v = false;
	for (unsigned i = 0; i < NT; i++)
		if ((opt.tmask & (1u << i)) && transports[i].v4v)
			want_v4v = true;

	/* The plan: every workload (and size) across all transports, so each
	 * group of the table was measured back to back. */
	struct step {
		const struct transport *t;
		enum workload w;
		size_t size;
	} plan[NT * (W_COUNT + ARRAY_SIZE(tput_sizes))];
	unsigned nplan = 0, total = 0;
	for (int w = 0; w < W_COUNT; w++) {
		if (!(opt.wmask & (1u << w)))
			continue;
		if (w == W_IDLE) {
			/* The check of v4v at rest: with v4v among the contenders. */
			if (!want_v4v)
				continue;
			plan[nplan++] =
			    (struct step){&transports[transport_index("v4v-dgram")], W_IDLE, 0};
			continue;
		}
		unsigned nsizes = w == W_THROUGHPUT ? ARRAY_SIZE(tput_sizes) : 1;
		for (unsigned s = 0; s < nsizes; s++)
			for (unsigned i = 0; i < NT; i++)
				if ((opt.tmask & (1u << i)) && applies(&transports[i], w))
					plan[nplan++] =
					    (struct step){&transports[i], w,
							  w == W_THROUGHPUT ? tput_sizes[s]
							  : w == W_LATENCY  ? LAT_SIZE
							  : w == W_PAIRS    ? PAIRS_SIZE
									    : 0};
	}
	total = nplan;
	if (!nplan)
		die("nothing to run: none of the transports given does the workloads given");
	if (want_v4v) {
		v4vd_setup();
		v4vd_stat("domains", &v4vd_domains_base);
	}

	bool failed = false;
	for (unsigned k = 0; k < nplan; k++) {
		const struct step *s = &plan[k];
		const char *name = s->w == W_IDLE ? "v4v" : s->t->name;
		struct result *res = add_result(name, s->w, s->size);
		struct rec lat = {0};
		if (s->t->v4v && !v4vd_alive()) {
			snprintf(res->err, sizeof(res->err), "v4vd is not running");
		} else {
			measure(s->t, s->w, s->size, s->w == W_PAIRS ? opt.npairs : 1,
				s->w == W_IDLE ? opt.idle_secs : opt.secs, res, &lat);
			if (s->t->v4v && !v4vd_alive()) {
				snprintf(res->err, sizeof(res->err), "v4vd died");
				if (v4vd_ours)
					print_v4vd_log();
			}
		}
		if (s->w == W_LATENCY) {
			res->wname = "latency-p50";
			struct result *p99 = add_result(name, s->w, s->size);
			res = &results[nresults - 2]; /* add_result may move the array */
			*p99 = *res;
			p99->wname = "latency-p99";
			p99->value = *res->err ? NAN : lat.p99;
		}
		failed |= *res->err != '\0';
		progress(k + 1, total, res);
		if (s->w == W_LATENCY && !*res->err) {
			char p99[32];
			fmt_num(p99, sizeof(p99), lat.p99);
			fprintf(stderr, "%*s %8s us     (p99)\n", 40, "", p99);
		}
	}
	/* Every domain of ours must be gone once its processes are. */
	double left;
	if (want_v4v && v4vd_alive() && (left = v4vd_domains_left()) > 0)
		fprintf(stderr,
			"%s: warning: v4vd still has %.0f domain(s) more than before "
			"the run (a leak, or another user's)\n",
			prog, left);
	compute_ratios();
	sort_groups();
	if (opt.json)
		print_json();
	else
		print_table();
	fflush(stdout);
	if (opt.plot && plot(opt.plot) < 0)
		return 1;
	return failed ? 2 : 0;
}
