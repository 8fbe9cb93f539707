/* SPDX-License-Identifier: MIT */
/*
 * The v4vd measured: a private one started in a temporary runtime
 * directory (and stopped at exit or on a signal), or the one running in
 * --runtime-dir; its CPU time, its rest before a measurement, its domains.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "common/util.h"
#include "ctl/client.h"
#include "tool.h"

/* ---- v4vd --------------------------------------------------------------- */

static pid_t v4vd_pid;	 /* the v4vd measured (ours or the running one) */
bool v4vd_ours;		 /* we started it and must stop it */
static char tmpdir[64];	 /* its runtime dir, when ours */
static char extdir[256]; /* its runtime dir, when not ours */
static pid_t bench_pid;	 /* who started it: children never stop it */

static bool v4vd_listening(const char *dir)
{
	char why[512];
	int s = v4v_ctl_connect(dir, why, sizeof(why));
	if (s == -ENAMETOOLONG)
		die("runtime directory path '%s' is too long", dir);
	if (s >= 0)
		close(s);
	return s >= 0;
}

/* Stop our v4vd and remove the files it and we left in its directory.
 * Async-signal-safe (it also runs from the signal handler), hence the
 * fixed list of names and strcpy rather than readdir and snprintf. */
static void v4vd_stop(void)
{
	static const char *const files[] = {"control", "v4vd.lock", "v4vd.log", "v4vd.conf"};
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
	if (getpid() != bench_pid)
		return; /* a forked child exiting: the v4vd is not its to stop */
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

void print_v4vd_log(void)
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
static void v4vd_exec(const char *conf)
{
	char self[PATH_MAX], *slash;
	const char *env = getenv("V4VD");
	if (env && *env)
		execl(env, env, "--foreground", "--runtime-dir", tmpdir, "--config", conf,
		      (char *)NULL);
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 8);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/'))) {
			strcpy(slash + 1, "v4vd");
			execl(self, self, "--foreground", "--runtime-dir", tmpdir, "--config", conf,
			      (char *)NULL);
		}
	}
	execlp("v4vd", "v4vd", "--foreground", "--runtime-dir", tmpdir, "--config", conf,
	       (char *)NULL);
	fprintf(stderr, "cannot run v4vd (set V4VD to its path): %s\n", strerror(errno));
	_exit(127);
}

static void v4vd_start(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/v4v-bench-XXXXXX");
	if (!mkdtemp(tmpdir))
		die("cannot create a runtime directory: %s", strerror(errno));
	v4vd_ours = true;
	bench_pid = getpid();
	atexit(v4vd_cleanup);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	/* The defaults but for the live domains: the scale workload's 1000
	 * pairs are 2000 of them (v4vd.conf(5): domains, default 1024). */
	char log[128], conf[128];
	snprintf(log, sizeof(log), "%s/v4vd.log", tmpdir);
	snprintf(conf, sizeof(conf), "%s/v4vd.conf", tmpdir);
	FILE *cf = fopen(conf, "w");
	if (!cf || fprintf(cf, "# v4v-bench's own v4vd\ndomains %u\n", SCALE_DOMAINS) < 0 ||
	    fclose(cf) != 0)
		die("cannot write %s: %s", conf, strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		v4vd_exec(conf);
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

bool v4vd_alive(void)
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

bool v4vd_stat(const char *col, double *out)
{
	return v4vd_stat2(col, out, NULL, NULL);
}

/* Use the v4vd of --runtime-dir or $V4V_RUNTIME_DIR if one runs there;
 * else start a private one (an explicit --runtime-dir must be running). */
void v4vd_setup(void)
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
double v4vd_cpu(void)
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
void v4vd_quiesce(void)
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

double v4vd_domains_base;

/* After the run: do v4vd's domains come back to what they were?  Few
 * "stats" calls: each costs v4vd a scan of its fd table. */
double v4vd_domains_left(void)
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
int domain_create(uint16_t *domid)
{
	char err[160];
	int fd = domain_create_err(domid, err, sizeof(err));
	if (fd < 0)
		die("%s", err);
	return fd;
}

int domain_create_err(uint16_t *domid, char *err, size_t cap)
{
	char *body;
	int fd = -1;
	struct table t;
	if (ctl_request("domain create auto - fd", &body, &fd) < 0) {
		snprintf(err, cap, "cannot create a domain: %s", body ? body : "?");
		free(body);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	table_parse(body, &t);
	if (fd < 0 || t.nrows != 1) {
		snprintf(err, cap,
			 fd < 0 ? "v4vd sent no domain fd" : "unexpected reply to 'domain create'");
		table_free(&t);
		free(body);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*domid = (uint16_t)atoi(t.cell[0][0]);
	table_free(&t);
	free(body);
	return fd;
}
