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
 *
 * This file: the options, the plan (every workload across the transports,
 * group by group) and the run, the whole plan once per --repeat round;
 * bench.h lists the other parts.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/utsname.h>

#include "bench.h"
#include "common/util.h"
#include "tool.h"

const char *prog = "v4v-bench";

/* ---- options ------------------------------------------------------------ */

const char *const wl_names[W_COUNT] = {
    "throughput", "latency", "connect", "pairs", "idle", "neighbour", "scale", "vm",
};

static const size_t tput_sizes[] = {64, 1024, 65536};

struct opts opt = {.secs = 0.5, .idle_secs = 1.0, .npairs = 64, .nb_reps = 3, .repeat = 1};

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: v4v-bench [--quick] [--time SEC] [--only T[,T..]] [--workload W[,W..]]\n"
		"                 [--pairs N] [--json] [--plot FILE.svg|FILE.png]\n"
		"                 [--repeat N] [--runtime-dir DIR] [--list]\n"
		"  --quick           CI smoke run: ~30 ms per measurement\n"
		"  --time SEC        seconds per measurement (default 0.5)\n"
		"  --only T,...      transports to run (their Unix baselines run too)\n"
		"  --workload W,...  throughput, latency, connect, pairs, idle, neighbour, scale,\n"
		"                    vm (QEMU guests under TCG; only when named, or with\n"
		"                    --only vm-stream,vm-vm-stream)\n"
		"  --pairs N         pairs at once in the pairs workload (default 64)\n"
		"  --repeat N        N interleaved rounds; report medians and min-max (1..99)\n"
		"  --json            print the settings, results and targets as JSON\n"
		"  --plot FILE       also draw the ratios with gnuplot (.svg or .png)\n"
		"  --runtime-dir DIR use the v4vd running there (default: start a private one)\n"
		"  --list            print the transports and workloads, then exit\n"
		"  --help, --version print this usage, or the version, and exit\n");
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

/* Whether transport t takes part in workload w. */
static bool applies(const struct transport *t, enum workload w)
{
	if (t->guest || w == W_VM)
		return t->guest && w == W_VM; /* vm.c's own step */
	if (w == W_CONNECT)
		return t->c_connect != NULL;
	if (w == W_IDLE || w == W_NEIGHBOUR || w == W_SCALE)
		return false; /* v4v-only checks, run once each (see main) */
	return true;
}

/* One step of the plan; every round runs the whole plan in this order. */
struct step {
	const struct transport *t;
	enum workload w;
	size_t size;
	unsigned misb; /* neighbour: the misbehaviour; scale: the pairs */
};

/* Run one step into a new result (two for latency); false if it failed. */
static bool run_step(const struct step *s, unsigned k, unsigned total, unsigned round)
{
	if (s->w == W_VM)
		return vm_step(s->t, k, total, round);
	const char *name = s->w == W_IDLE ? "v4v" : s->t->name;
	struct result *res = add_result(name, s->w, s->size);
	struct rec lat = {0};
	if (s->t->v4v && !v4vd_alive()) {
		snprintf(res->err, sizeof(res->err), "v4vd is not running");
	} else {
		if (s->w == W_NEIGHBOUR)
			neighbour_step(s->misb, res);
		else if (s->w == W_SCALE)
			scale_step(s->misb, res);
		else
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
	int pre = opt.repeat > 1 ? fprintf(stderr, "round %u/%u ", round, opt.repeat) : 0;
	progress(k, total, res);
	if (s->w == W_LATENCY && !*res->err) {
		char p99[32];
		fmt_num(p99, sizeof(p99), lat.p99);
		fprintf(stderr, "%*s %8s us     (p99)\n", 40 + (pre > 0 ? pre : 0), "", p99);
	}
	return !*res->err;
}

/* The machine's steal and total CPU time so far (/proc/stat's cpu line,
 * in ticks): false if it cannot be read. */
static bool cpu_times(unsigned long long *steal, unsigned long long *total)
{
	unsigned long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return false;
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		       &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return false;
	*steal = v[7];
	*total = 0;
	for (int k = 0; k < 8; k++)
		*total += v[k];
	return true;
}

int main(int argc, char **argv)
{
	/* clang-format off */
	static const struct option opts[] = {
	    {"quick", no_argument, NULL, 'q'},
	    {"time", required_argument, NULL, 't'},
	    {"only", required_argument, NULL, 'o'},
	    {"workload", required_argument, NULL, 'w'},
	    {"pairs", required_argument, NULL, 'p'},
	    {"json", no_argument, NULL, 'j'},
	    {"plot", required_argument, NULL, 'P'},
	    {"runtime-dir", required_argument, NULL, 'r'},
	    {"repeat", required_argument, NULL, 'R'},
	    {"list", no_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	/* clang-format on */
	bool quick = false, time_set = false, pairs_set = false, only_set = false, wl_set = false;
	uint64_t v;
	char *end;
	int c;

	/* The guest transports and their workload: only when asked for. */
	unsigned guests = 0;
	for (unsigned i = 0; i < NT; i++)
		if (transports[i].guest)
			guests |= 1u << i;
	opt.tmask = ((1u << NT) - 1) & ~guests;
	opt.wmask = ((1u << W_COUNT) - 1) & ~(1u << W_VM);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qt:o:w:p:jP:r:R:lhV", opts, NULL)) != -1) {
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
		case 'o':
			opt.tmask = parse_list(optarg, "transport", true);
			only_set = true;
			break;
		case 'w':
			opt.wmask = parse_list(optarg, "workload", false);
			wl_set = true;
			break;
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
		case 'R':
			if (!v4v_parse_u64(optarg, 1, 99, &v)) {
				fprintf(stderr, "%s: bad --repeat '%s' (1..99)\n", prog, optarg);
				usage(stderr);
				return 1;
			}
			opt.repeat = (unsigned)v;
			break;
		case 'l':
			printf("transports:");
			for (unsigned i = 0; i < NT; i++)
				printf(" %s", transports[i].name);
			printf("\nworkloads:");
			for (unsigned i = 0; i < W_COUNT; i++)
				printf(" %s", wl_names[i]);
			printf("\nguest transports (QEMU under TCG; --workload vm or --only, never "
			       "by default):");
			for (unsigned i = 0; i < NT; i++)
				if (transports[i].guest)
					printf(" %s", transports[i].name);
			printf("\n");
			return 0;
		case 'h': usage(stdout); return 0;
		case 'V': v4v_print_version(prog); return 0;
		default: v4v_option_error(prog, c, argv);
		}
	}
	if (optind != argc)
		v4v_usage_error(prog, "unexpected argument '%s'", argv[optind]);
	/* --only vm-...: their workload too; --workload vm alone: both guests. */
	if (only_set && (opt.tmask & guests) && !wl_set)
		opt.wmask |= 1u << W_VM;
	if (wl_set && (opt.wmask & (1u << W_VM)) && !only_set)
		opt.tmask |= guests;
	opt.quick = quick;
	if (quick) {
		if (!time_set)
			opt.secs = 0.03;
		if (!pairs_set)
			opt.npairs = 16;
		opt.idle_secs = 0.2;
		opt.nb_reps = 1;
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
	unsigned long long steal0 = 0, total0 = 0;
	bool times = cpu_times(&steal0, &total0);
	/* The machine as the run found it (--json's settings). */
	double load1 = NAN;
	char kernel[3 * sizeof(((struct utsname *)0)->release) + 8] = "";
	FILE *la = fopen("/proc/loadavg", "r");
	if (la) {
		if (fscanf(la, "%lf", &load1) != 1)
			load1 = NAN;
		fclose(la);
	}
	struct utsname un;
	if (uname(&un) == 0)
		snprintf(kernel, sizeof(kernel), "%s %s %s", un.sysname, un.release, un.machine);
	/* scale holds thousands of domain fds: the hard limit, if it allows. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	bool want_v4v = false, want_v4vd = false;
	for (unsigned i = 0; i < NT; i++) {
		if ((opt.tmask & (1u << i)) && transports[i].v4v)
			want_v4v = true;
		if ((opt.tmask & (1u << i)) && transports[i].guest && (opt.wmask & (1u << W_VM)))
			want_v4vd = true;
	}
	want_v4vd |= want_v4v;

	/* The plan: every workload (and size) across all transports, so each
	 * group of the table was measured back to back. */
	struct step plan[NT * (W_COUNT + ARRAY_SIZE(tput_sizes)) + NB_COUNT + 8];
	unsigned nplan = 0, total = 0;
	for (int w = 0; w < W_COUNT; w++) {
		if (!(opt.wmask & (1u << w)))
			continue;
		if (w == W_IDLE) {
			/* The check of v4v at rest: with v4v among the contenders. */
			if (!want_v4v)
				continue;
			plan[nplan++] =
			    (struct step){&transports[transport_index("v4v-dgram")], W_IDLE, 0, 0};
			continue;
		}
		if (w == W_NEIGHBOUR) {
			/* A v4v-dgram bystander, alone and then beside each
			 * misbehaviour (neighbour.c). */
			for (unsigned m = 0; m < NB_COUNT && want_v4v; m++)
				plan[nplan++] =
				    (struct step){&transports[transport_index("v4v-dgram")],
						  W_NEIGHBOUR, NB_SIZE, m};
			continue;
		}
		if (w == W_SCALE) {
			/* Many v4v-dgram domain pairs driven by few processes
			 * (scale.c); misb holds the number of pairs. */
			const unsigned *lv = quick ? scale_levels_quick : scale_levels;
			unsigned nlv = quick ? n_scale_levels_quick : n_scale_levels;
			for (unsigned l = 0; l < nlv && want_v4v; l++)
				plan[nplan++] =
				    (struct step){&transports[transport_index("v4v-dgram")],
						  W_SCALE, SCALE_SIZE, lv[l]};
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
									    : 0,
							  0};
	}
	total = nplan;
	if (!nplan)
		die("nothing to run: none of the transports given does the workloads given");
	if (want_v4vd) {
		v4vd_setup();
		v4vd_stat("domains", &v4vd_domains_base);
	}

	bool failed = false;
	for (unsigned round = 1; round <= opt.repeat; round++) {
		unsigned first = nresults;
		for (unsigned k = 0; k < nplan; k++)
			failed |= !run_step(&plan[k], k + 1, total, round);
		compute_ratios(&results[first], nresults - first);
		targets_round(&results[first], nresults - first);
	}
	spread_fold(nresults / opt.repeat, opt.repeat);
	targets_fold();
	/* Every domain of ours must be gone once its processes are. */
	double left;
	if (want_v4vd && v4vd_alive() && (left = v4vd_domains_left()) > 0)
		fprintf(stderr,
			"%s: warning: v4vd still has %.0f domain(s) more than before "
			"the run (a leak, or another user's)\n",
			prog, left);
	/* A run on a virtual machine whose host took CPU time from it is noisy:
	 * say so, with the share (--json's settings: steal_pct). */
	double steal = NAN;
	unsigned long long steal1, total1;
	if (times && cpu_times(&steal1, &total1) && total1 > total0)
		steal = 100.0 * (double)(steal1 - steal0) / (double)(total1 - total0);
	if (steal > STEAL_NOISY_PCT)
		fprintf(stderr,
			"%s: warning: the host took %.1f%% of this machine's CPU time during the "
			"run (steal time): its figures are noisy\n",
			prog, steal);
	sort_groups();
	if (opt.json)
		print_json(load1, kernel, steal);
	else
		print_table();
	fflush(stdout);
	if (opt.plot && plot(opt.plot) < 0)
		return 1;
	return failed ? 2 : 0;
}
