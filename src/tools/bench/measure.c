/* SPDX-License-Identifier: MIT */
/*
 * One measurement: set the pairs up, fork the children, say "go", collect
 * their records, and account wall time and CPU (each child's own, plus
 * v4vd's over the same interval); and the clocks and percentiles that takes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "common/util.h"
#include "tool.h"

/* ---- time and CPU ------------------------------------------------------- */

double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double cpu_self(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void percentiles(uint32_t *ns, unsigned k, double *p50, double *p99)
{
	qsort(ns, k, sizeof(*ns), cmp_u32);
	*p50 = ns[k / 2] * 1e-3;
	*p99 = ns[(size_t)k * 99 / 100] * 1e-3;
}

struct result *results;
unsigned nresults;
static unsigned cap_results;

struct result *add_result(const char *transport, enum workload w, size_t size)
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
			       .cpu_v4vd = NAN,
			       .p50 = NAN,
			       .p50_ratio = NAN,
			       .us_v4vd = NAN,
			       .alone_value = NAN,
			       .alone_p50 = NAN,
			       .hostile_rate = NAN,
			       .rounds = 1};
	for (unsigned f = 0; f < SP_COUNT; f++)
		res->lo[f] = res->hi[f] = NAN;
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
bool collect(struct run *r, unsigned type, unsigned count, double deadline, struct rec *out,
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

void kill_kids(struct run *r, bool now_)
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
void measure(const struct transport *t, enum workload w, size_t size, unsigned npairs, double secs,
	     struct result *res, struct rec *lat)
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
			shm_release(r.pairs[i].shm);
	}
	close(r.res[1]);
	close(r.go[0]);
	close(r.stop[0]);
	close(r.quit[0]);

	double v0 = 0, t0 = 0, t1 = 0, v1 = 0;
	if (ok) {
		if (t->v4v && !noisy)
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
		case W_NEIGHBOUR: /* neighbour.c measures throughput and latency */
		case W_SCALE:	  /* scale.c runs its own processes */
		case W_VM: /* and vm.c its guests */ break;
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
