/* SPDX-License-Identifier: MIT */
/*
 * Rounds and targets: --repeat N runs the whole plan N times, interleaved
 * (every contender once per round, so drift in the machine's load hits
 * them all alike); each figure and each ratio is then the median of its N
 * readings, with their min-max beside it.  The targets of the issues are
 * computed per round from that round's results and judged on their median.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "common/util.h"
#include "tool.h"

#ifndef V4V_VERSION
#define V4V_VERSION "0.1.0" /* meson.build's project version */
#endif

const char *const spread_names[SP_COUNT] = {
    "value",	       "ratio",	       "mb_per_s",	    "cpu",
    "cpu_v4vd",	       "p50_us",       "p50_ratio",	    "v4vd_us_per_msg",
    "alone_msg_per_s", "alone_p50_us", "hostile_ops_per_s",
};

static double *field(struct result *r, unsigned f)
{
	switch (f) {
	case SP_VALUE: return &r->value;
	case SP_RATIO: return &r->ratio;
	case SP_MBPS: return &r->mbps;
	case SP_CPU: return &r->cpu;
	case SP_CPU_V4VD: return &r->cpu_v4vd;
	case SP_P50: return &r->p50;
	case SP_P50_RATIO: return &r->p50_ratio;
	case SP_ALONE: return &r->alone_value;
	case SP_ALONE_P50: return &r->alone_p50;
	case SP_HOSTILE: return &r->hostile_rate;
	default: return &r->us_v4vd;
	}
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median, min and max of the finite values among v[0..n) (sorted in place);
 * NAN when there are none. */
static void med3(double *v, unsigned n, double *med, double *lo, double *hi)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++)
		if (isfinite(v[i]))
			v[k++] = v[i];
	if (!k) {
		*med = *lo = *hi = NAN;
		return;
	}
	qsort(v, k, sizeof(*v), cmp_d);
	*med = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
	*lo = v[0];
	*hi = v[k - 1];
}

void spread_fold(unsigned n, unsigned rounds)
{
	double v[100];
	for (unsigned i = 0; i < n; i++) {
		struct result *r = &results[i];
		for (unsigned k = 1; k < rounds && !*r->err; k++)
			if (*results[k * n + i].err) {
				char e[sizeof(r->err)];
				snprintf(e, sizeof(e), "%s", results[k * n + i].err);
				snprintf(r->err, sizeof(r->err), "round %u: %.140s", k + 1, e);
			}
		for (unsigned f = 0; f < SP_COUNT; f++) {
			for (unsigned k = 0; k < rounds; k++)
				v[k] = *field(&results[k * n + i], f);
			med3(v, rounds, field(r, f), &r->lo[f], &r->hi[f]);
		}
		/* The time is the rounds' sum; a wake-up of an idle v4v in any
		 * round is one too many: the most of them. */
		for (unsigned k = 1; k < rounds; k++) {
			r->secs += results[k * n + i].secs;
			if (results[k * n + i].wakeups > r->wakeups)
				r->wakeups = results[k * n + i].wakeups;
		}
		r->rounds = rounds;
	}
	nresults = n;
}

/* ---- the targets ---------------------------------------------------------- */

enum tkind { T_RATIO, T_VS, T_IDLE, T_SCALE, T_NB_TPUT, T_NB_P50 };

struct target {
	const char *name;
	enum tkind kind;
	const char *t, *w; /* the contender's transport and workload */
	size_t size;
	const char *vs; /* T_VS: the transport it is divided by */
	bool le;	/* met when at most goal (else at least) */
	double goal;
	unsigned misb; /* neighbour */
};

static const struct target tg[] = {
    {"stream connect+accept+close / unix-stream", T_RATIO, "v4v-stream", "connect", 0, NULL, false,
     1.0, 0},
    {"stream 64 KiB / unix-stream", T_RATIO, "v4v-stream", "throughput", 65536, NULL, false, 2.0,
     0},
    {"stream 64 KiB / shm one-copy ring", T_VS, "v4v-stream", "throughput", 65536, "shm", false,
     0.5, 0},
    {"ping-pong 64 B p50 / unix-seqpacket", T_VS, "v4v-dgram", "latency-p50", LAT_SIZE,
     "unix-seqpacket", true, 1.0, 0},
    {"ping-pong 64 B p99 / unix-seqpacket", T_VS, "v4v-dgram", "latency-p99", LAT_SIZE,
     "unix-seqpacket", true, 1.0, 0},
    {"datagram 1 KiB / unix-seqpacket", T_RATIO, "v4v-dgram", "throughput", 1024, NULL, false, 3.0,
     0},
    {"v4v_sendv 64 B (v4v-ring) / unix-seqp.", T_RATIO, "v4v-ring", "throughput", 64, NULL, false,
     1.0, 0},
    {"pairs 1 KiB / unix-seqpacket", T_RATIO, "v4v-dgram", "pairs", PAIRS_SIZE, NULL, false, 2.0,
     0},
    {"datagram 64 B / unix-seqpacket", T_RATIO, "v4v-dgram", "throughput", 64, NULL, false, 5.0, 0},
    {"idle: v4vd cpu% at rest, no wake-up", T_IDLE, "v4v", "idle", 0, NULL, true, 0.0, 0},
    {"scale: aggregate largest / 64 pairs", T_SCALE, "v4v-dgram", "scale", SCALE_SIZE, NULL, false,
     SCALE_MIN, 0},
#define NB(m, name)                                                                                \
	{"neighbour " name ": throughput ratio",                                                   \
	 T_NB_TPUT,                                                                                \
	 "v4v-dgram",                                                                              \
	 "neighbour",                                                                              \
	 NB_SIZE,                                                                                  \
	 NULL,                                                                                     \
	 false,                                                                                    \
	 NB_TPUT_MIN,                                                                              \
	 m},                                                                                       \
	{                                                                                          \
		"neighbour " name ": p50 ratio", T_NB_P50, "v4v-dgram", "neighbour", NB_SIZE,      \
		    NULL, true, NB_P50_MAX, m                                                      \
	}
    NB(NB_FLOOD, "flood"),
    NB(NB_HCALL, "hcall"),
    NB(NB_CHURN, "churn"),
    NB(NB_WAIT, "waiters"),
    NB(NB_CTL, "ctl"),
#undef NB
};
#define NTG ARRAY_SIZE(tg)

static double tv[NTG][100]; /* [target][round] */
static unsigned tv_rounds;
static double tmed[NTG], tlo[NTG], thi[NTG];
static uint64_t idle_wakeups; /* the most any round's idle domains saw */

static const struct result *find(const struct result *rs, unsigned n, const char *t, const char *w,
				 size_t size, const char *misb, unsigned pairs)
{
	for (unsigned i = 0; i < n; i++) {
		const struct result *r = &rs[i];
		if (strcmp(r->transport, t) || strcmp(r->wname, w) || r->size != size || *r->err ||
		    (misb && (!r->misb || strcmp(r->misb, misb))) || (pairs && r->pairs != pairs))
			continue;
		return r;
	}
	return NULL;
}

static double eval(const struct target *g, const struct result *rs, unsigned n)
{
	const char *misb =
	    g->kind == T_NB_TPUT || g->kind == T_NB_P50 ? neighbour_name(g->misb) : NULL;
	const struct result *r = find(rs, n, g->t, g->w, g->size, misb, 0), *b;
	if (!r)
		return NAN;
	switch (g->kind) {
	case T_RATIO: return r->ratio;
	case T_VS:
		b = find(rs, n, g->vs, g->w, g->size, NULL, 0);
		return b && b->value > 0 ? r->value / b->value : NAN;
	case T_IDLE:
		/* v4vd's own: the idle processes' is their noticing "stop" */
		if (r->wakeups > idle_wakeups)
			idle_wakeups = r->wakeups;
		return r->cpu_v4vd;
	case T_SCALE: {
		const struct result *big = NULL;
		b = find(rs, n, g->t, g->w, g->size, NULL, SCALE_REF);
		for (unsigned i = 0; i < n; i++)
			if (rs[i].w == W_SCALE && !*rs[i].err && (!big || rs[i].pairs > big->pairs))
				big = &rs[i];
		if (!b || !big || big->pairs <= SCALE_REF || b->value <= 0)
			return NAN;
		return big->value / b->value;
	}
	case T_NB_TPUT: return r->ratio;
	case T_NB_P50: return r->p50_ratio;
	}
	return NAN;
}

void targets_round(const struct result *rs, unsigned n)
{
	for (unsigned k = 0; k < NTG; k++)
		tv[k][tv_rounds] = eval(&tg[k], rs, n);
	tv_rounds++;
}

void targets_fold(void)
{
	for (unsigned k = 0; k < NTG; k++)
		med3(tv[k], tv_rounds, &tmed[k], &tlo[k], &thi[k]);
}

/* Met on the median; idle's "0 %" is met when it shows as 0.00 and no
 * idle domain was woken in any round. */
static int met(unsigned k)
{
	if (isnan(tmed[k]))
		return -1;
	if (tg[k].kind == T_IDLE)
		return tmed[k] < 0.005 && !idle_wakeups;
	return tg[k].le ? tmed[k] <= tg[k].goal : tmed[k] >= tg[k].goal;
}

static bool any_target(void)
{
	for (unsigned k = 0; k < NTG; k++)
		if (!isnan(tmed[k]))
			return true;
	return false;
}

void print_targets(void)
{
	char goal[32], lo[32], hi[32], med[32], mm[72];
	if (!any_target())
		return;
	printf("\ntargets (issues 12 and 8), judged on the median of %u round%s%s:\n"
	       "%-42s %7s %8s %-17s %s\n",
	       tv_rounds, tv_rounds == 1 ? "" : "s",
	       tv_rounds < 5 ? " (the issue's verdict needs --repeat 5)" : "", "target", "goal",
	       "median", "min-max", "verdict");
	for (unsigned k = 0; k < NTG; k++) {
		int m = met(k);
		snprintf(goal, sizeof(goal), "%s%.2f", tg[k].le ? "<=" : ">=", tg[k].goal);
		if (m < 0) {
			printf("%-42s %7s %8s %-17s %s\n", tg[k].name, goal, "-", "-",
			       "not measured");
			continue;
		}
		snprintf(med, sizeof(med), "%.2f", tmed[k]);
		snprintf(lo, sizeof(lo), "%.2f", tlo[k]);
		snprintf(hi, sizeof(hi), "%.2f", thi[k]);
		snprintf(mm, sizeof(mm), "%s-%s", lo, hi);
		printf("%-42s %7s %8s %-17s %s\n", tg[k].name, goal, med, mm, m ? "met" : "MISSED");
	}
	printf("ratios are v4v's figure over the baseline's (for latency: v4v's time over "
	       "the baseline's);\npairs and scale as run (%u pairs; the issue's targets are "
	       "for 64, and 1000 against 64).\n",
	       opt.npairs);
}

void json_targets(void)
{
	bool first = true;
	printf("\"targets\": [");
	for (unsigned k = 0; k < NTG; k++) {
		int m = met(k);
		printf("%s{\"target\": \"%s\", \"goal\": %g, \"sense\": \"%s\"",
		       first ? "" : ",\n  ", tg[k].name, tg[k].goal, tg[k].le ? "<=" : ">=");
		json_num("median", tmed[k]);
		json_num("min", tlo[k]);
		json_num("max", thi[k]);
		printf(", \"met\": %s}", m < 0 ? "null" : m ? "true" : "false");
		first = false;
	}
	printf("]");
}

void json_settings(double load1, const char *kernel, double steal)
{
	printf("\"settings\": {\"version\": \"%s\"", V4V_VERSION);
	json_num("time", opt.secs);
	json_num("idle_time", opt.idle_secs);
	printf(", \"repeat\": %u, \"quick\": %s, \"pairs\": %u", opt.repeat,
	       opt.quick ? "true" : "false", opt.npairs);
	printf(", \"cores\": %ld", sysconf(_SC_NPROCESSORS_ONLN));
	json_num("loadavg_1min", load1);
	json_num("steal_pct", steal);
	printf(", \"kernel\": \"%s\"}", kernel);
}

void json_spread(const struct result *r)
{
	printf(", \"rounds\": %u, \"spread\": {", r->rounds);
	bool first = true;
	for (unsigned f = 0; f < SP_COUNT; f++) {
		double med = *field((struct result *)r, f);
		if (isnan(med) && isnan(r->lo[f]))
			continue;
		printf("%s\"%s\": {", first ? "" : ", ", spread_names[f]);
		printf("\"median\": ");
		printf(isfinite(med) ? "%.6g" : "null", med);
		json_num("min", r->lo[f]);
		json_num("max", r->hi[f]);
		printf("}");
		first = false;
	}
	printf("}");
}
