/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "t.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl/client.h"

static pid_t daemon_pid;
static char rundir[128];

const char *t_rundir(void)
{
	return rundir;
}
pid_t t_v4vd_pid(void)
{
	return daemon_pid;
}

static void rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];
	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(dir);
}

static pid_t owner_pid;

static void cleanup(void)
{
	if (getpid() != owner_pid)
		return; /* a forked child exiting: the daemon is not its to stop */
	t_v4vd_stop();
	if (*rundir)
		rm_rf(rundir);
}

static bool control_ready(void)
{
	char why[512];
	int s = v4v_ctl_connect(rundir, why, sizeof(why));
	if (s >= 0)
		close(s);
	return s >= 0;
}

pid_t t_v4vd_start(const char *const *extra)
{
	const char *bin = getenv("V4VD");
	if (!bin)
		bin = "./v4vd";
	if (!*rundir) {
		snprintf(rundir, sizeof(rundir), "/tmp/v4v-test-XXXXXX");
		CHECK(mkdtemp(rundir));
		setenv("V4V_RUNTIME_DIR", rundir, 1);
		owner_pid = getpid();
		atexit(cleanup);
	}
	const char *argv[32] = {bin, "--foreground", "--runtime-dir", rundir};
	int n = 4;
	for (; extra && *extra && n < 31; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	daemon_pid = fork();
	CHECK(daemon_pid >= 0);
	if (daemon_pid == 0) {
		/* If the test dies (abort, crash), its v4vd goes too, promptly. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv(bin, (char *const *)argv);
		perror(bin);
		_exit(127);
	}
	/* Poll for readiness; never sleep-and-hope. */
	for (int i = 0; i < 5000; i++) {
		if (control_ready())
			return daemon_pid;
		int st;
		if (waitpid(daemon_pid, &st, WNOHANG) == daemon_pid) {
			daemon_pid = 0;
			fprintf(stderr, "v4vd exited during start-up\n");
			exit(1);
		}
		usleep(2000);
	}
	fprintf(stderr, "v4vd did not come up\n");
	exit(1);
}

pid_t t_v4vd_start_conf(const char *conf)
{
	if (!conf)
		return t_v4vd_start(NULL);
	char path[128];
	snprintf(path, sizeof(path), "/tmp/v4v-test-%d.conf", (int)getpid());
	FILE *f = fopen(path, "w");
	CHECK(f);
	fprintf(f, "# a test's limits\n%s\n", conf);
	CHECK_EQ(fclose(f), 0);
	const char *const extra[] = {"--config", path, NULL};
	pid_t pid = t_v4vd_start(extra);
	unlink(path);
	return pid;
}

void t_v4vd_stop(void)
{
	if (daemon_pid > 0) {
		int st;
		kill(daemon_pid, SIGTERM);
		waitpid(daemon_pid, &st, 0);
		daemon_pid = 0;
	}
}

static __attribute__((format(printf, 2, 0))) char *ctl_va(char **err, const char *fmt, va_list ap)
{
	char cmd[1024];
	struct v4v_ctl_reply rep;
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	if (v4v_ctl_request(rundir, cmd, &rep) < 0) {
		fprintf(stderr, "control '%s': %s\n", cmd, rep.why);
		exit(1);
	}
	if (!rep.ok) {
		if (!err) {
			fprintf(stderr, "control '%s' failed: %s\n", cmd, rep.body);
			exit(1);
		}
		*err = rep.body;
		return NULL;
	}
	/* A passed fd is returned by appending it as a "fd=N" line. */
	char *out = malloc(rep.len + 32);
	CHECK(out);
	snprintf(out, rep.len + 32, "%s", rep.body);
	if (rep.fd >= 0)
		snprintf(out + rep.len, 32, "fd=%d\n", rep.fd);
	free(rep.body);
	return out;
}

char *t_ctl(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *r = ctl_va(NULL, fmt, ap);
	va_end(ap);
	return r;
}

char *t_ctl_try(char **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *r = ctl_va(err, fmt, ap);
	va_end(ap);
	return r;
}

int t_domain_fd(const char *name, uint16_t *domid)
{
	char *r = t_ctl("domain create auto %s fd", name ? name : "-");
	unsigned id;
	int fd;
	char *row = strchr(r, '\n');
	CHECK(row && sscanf(row + 1, "%u", &id) == 1);
	char *f = strstr(r, "fd=");
	CHECK(f && sscanf(f, "fd=%d", &fd) == 1);
	free(r);
	if (domid)
		*domid = (uint16_t)id;
	return fd;
}

/* Handles from t_domain live until the test exits; kept here, they are
 * not leaks to LeakSanitizer. */
static struct v4v_domain *domains[256];
static unsigned ndomains;

struct v4v_domain *t_domain(const char *name)
{
	struct v4v_domain *d;
	int fd = t_domain_fd(name, NULL);
	int e = v4v_open_fd(fd, &d);
	if (e) {
		fprintf(stderr, "v4v_open_fd: %s\n", strerror(-e));
		exit(1);
	}
	if (ndomains < sizeof(domains) / sizeof(domains[0]))
		domains[ndomains++] = d;
	return d;
}

void t_domains_close(void)
{
	while (ndomains)
		v4v_close(domains[--ndomains]);
}

void t_spawn_domains(unsigned n, const char *const *names, int type,
		     void (*fn)(unsigned i, int domain_fd, int sock), pid_t *pid, uint16_t *domid,
		     int *ctl)
{
	enum { MAX = 64 };
	int dfd[MAX], sv[MAX][2];
	CHECK(n <= MAX);
	for (unsigned i = 0; i < n; i++) {
		dfd[i] = t_domain_fd(names ? names[i] : NULL, &domid[i]);
		CHECK(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv[i]) == 0);
	}
	fflush(NULL); /* nothing buffered is written twice */
	for (unsigned i = 0; i < n; i++) {
		pid[i] = fork();
		CHECK(pid[i] >= 0);
		if (pid[i] == 0) {
			for (unsigned k = 0; k < n; k++) {
				close(sv[k][0]);
				if (k != i) {
					close(dfd[k]);
					close(sv[k][1]);
				}
			}
			fn(i, dfd[i], sv[i][1]);
			_exit(0);
		}
	}
	for (unsigned i = 0; i < n; i++) {
		close(dfd[i]);
		close(sv[i][1]);
		ctl[i] = sv[i][0];
	}
}

enum { READY_FD = 100 }; /* a t_child's end of its readiness pipe */

void t_ready(void)
{
	CHECK_EQ(write(READY_FD, "r", 1), 1);
}

pid_t t_child(const char *name, void (*fn)(struct v4v_domain *), uint16_t *domid)
{
	int p[2];
	char r;
	int fd = t_domain_fd(name, domid);
	CHECK_EQ(pipe(p), 0);
	fflush(NULL); /* nothing buffered is written twice */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct v4v_domain *d;
		CHECK_EQ(dup2(p[1], READY_FD), READY_FD);
		CHECK_EQ(v4v_open_fd(fd, &d), 0);
		fn(d);
		_exit(0);
	}
	close(fd);
	close(p[1]);
	CHECK_EQ(read(p[0], &r, 1), 1);
	close(p[0]);
	return pid;
}

void t_wait_ok(pid_t pid)
{
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int t_ctl_rows(const char *what)
{
	char *list = t_ctl("%s", what);
	int n = -1; /* the header */
	for (char *s = list; *s; s++)
		n += *s == '\n';
	free(list);
	return n;
}

bool t_ring_row_at(unsigned i, struct t_ring_row *r)
{
	char *list = t_ctl("rings"), *save = NULL, name[40];
	bool found = false;
	strtok_r(list, "\n", &save); /* the header */
	for (char *line; !found && (line = strtok_r(NULL, "\n", &save)); i--)
		found = i == 0 && sscanf(line, "%u\t%39s\t%u\t%15s\t%u\t%u\t%u\t%u\t%15s",
					 &r->domid, name, &r->aport, r->partner, &r->len, &r->rx,
					 &r->tx, &r->waiters, r->state) == 9;
	free(list);
	return found;
}

bool t_ring_find(uint16_t domid, uint32_t aport, const char *partner, struct t_ring_row *r)
{
	for (unsigned i = 0; t_ring_row_at(i, r); i++)
		if (r->domid == domid && r->aport == aport &&
		    (!partner || strcmp(r->partner, partner) == 0))
			return true;
	return false;
}

int t_v4vd_sockets(void)
{
	char dir[64], path[400], link[64];
	int n = 0;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)daemon_pid);
	DIR *d = opendir(dir);
	CHECK(d);
	for (struct dirent *e; (e = readdir(d));) {
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ssize_t k = readlink(path, link, sizeof(link) - 1);
		if (k > 0) {
			link[k] = '\0';
			n += strncmp(link, "socket:", 7) == 0;
		}
	}
	closedir(d);
	/* The v4v group's query listener, on a host that has the group, is
	 * not one the tests count. */
	snprintf(path, sizeof(path), "%s/query", rundir);
	return n - (access(path, F_OK) == 0);
}

int t_v4vd_memfd_maps(void)
{
	char path[64], line[512];
	int n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)daemon_pid);
	FILE *f = fopen(path, "r");
	CHECK(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "memfd:") != NULL;
	fclose(f);
	return n;
}

bool t_wait_virq(struct v4v_domain *d, int ms)
{
	struct pollfd p = {.fd = v4v_virq_fd(d), .events = POLLIN};
	int r = poll(&p, 1, ms);
	if (r == 1)
		v4v_virq_ack(d);
	return r == 1;
}

static int count_lines(const char *path, bool dir)
{
	int n = 0;
	if (dir) {
		DIR *d = opendir(path);
		if (!d)
			return -1;
		while (readdir(d))
			n++;
		closedir(d);
		return n - 2;
	}
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	for (int c; (c = fgetc(f)) != EOF;)
		n += c == '\n';
	fclose(f);
	return n;
}

int t_v4vd_fds(void)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/fd", (int)daemon_pid);
	return count_lines(p, true);
}

int t_v4vd_maps(void)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/maps", (int)daemon_pid);
	return count_lines(p, false);
}

void t_kill_pids(const pid_t *pid, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (pid[i] > 0)
			kill(pid[i], SIGKILL);
}

unsigned t_index_of(const uint16_t *ids, unsigned n, uint16_t id)
{
	for (unsigned i = 0; i < n; i++)
		if (ids[i] == id)
			return i;
	return n;
}

void t_v4vd_print_fds(void)
{
	char dir[64], path[400], link[128];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)daemon_pid);
	DIR *d = opendir(dir);
	CHECK(d);
	for (struct dirent *e; (e = readdir(d));) {
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ssize_t k = readlink(path, link, sizeof(link) - 1);
		if (k > 0) {
			link[k] = '\0';
			fprintf(stderr, " %s=%s", e->d_name, link);
		}
	}
	fprintf(stderr, "\n");
	closedir(d);
}

bool t_read_full(int fd, void *buf, size_t n, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	for (size_t got = 0; got < n;) {
		if (poll(&p, 1, ms) != 1)
			return false;
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

int64_t t_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

uint64_t t_mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

void t_fill(uint8_t *p, size_t n, uint64_t key)
{
	uint64_t s = key;
	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			s = t_mix(s + i);
		p[i] = (uint8_t)(s >> (8 * (i % 8)));
	}
}

static uint64_t rng_state;

uint64_t t_seed(void)
{
	if (!rng_state) {
		const char *s = getenv("T_SEED");
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		rng_state =
		    s ? strtoull(s, NULL, 0) : (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
		if (!rng_state)
			rng_state = 1;
		fprintf(stderr, "seed: T_SEED=%llu\n", (unsigned long long)rng_state);
	}
	return rng_state;
}

uint64_t t_rand(void)
{
	t_seed();
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

int t_main(int argc, char **argv, const struct t_case *cases, unsigned n)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (unsigned i = 0; i < n; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}
	for (unsigned i = 0; i < n; i++)
		if (argc == 2 && strcmp(argv[1], cases[i].name) == 0) {
			cases[i].fn();
			return 0;
		}
	fprintf(stderr, "usage: %s --list | CASE\n", argv[0]);
	return 2;
}

/* A number of a `v4vctl stats` reply body, by column name. */
unsigned long long t_stat_in(const char *body, const char *key)
{
	char *copy = strdup(body), *save = NULL;
	CHECK(copy);
	char *head = strtok_r(copy, "\n", &save), *row = strtok_r(NULL, "\n", &save);
	char *hs = NULL, *rs = NULL;
	unsigned long long v = 0;
	bool found = false;
	CHECK(head && row);
	for (char *h = strtok_r(head, "\t", &hs), *c = strtok_r(row, "\t", &rs); h && c;
	     h = strtok_r(NULL, "\t", &hs), c = strtok_r(NULL, "\t", &rs)) {
		size_t n = strcspn(h, ":");
		if (strlen(key) == n && strncmp(h, key, n) == 0) {
			v = strtoull(c, NULL, 10);
			found = true;
		}
	}
	free(copy);
	if (!found) {
		fprintf(stderr, "stats has no %s\n", key);
		exit(1);
	}
	return v;
}

/* A number of `v4vctl stats`, by column name. */
unsigned long long t_stat(const char *key)
{
	char *body = t_ctl("stats");
	unsigned long long v = t_stat_in(body, key);
	free(body);
	return v;
}
