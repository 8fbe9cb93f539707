/* SPDX-License-Identifier: MIT */
/*
 * The results: ratios to the baselines, the human table (grouped by
 * workload and size), JSON for scripts, a gnuplot chart, and the progress
 * lines on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bench.h"
#include "common/util.h"
#include "tool.h"

/* ---- output ------------------------------------------------------------- */

static const struct transport *tfind(const char *name)
{
	int i = transport_index(name);
	return i < 0 ? NULL : &transports[i];
}

void compute_ratios(struct result *rs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct result *r = &rs[i];
		const struct transport *t = tfind(r->transport);
		if (!t || isnan(r->value))
			continue;
		for (unsigned j = 0; j < n; j++) {
			struct result *b = &rs[j];
			if (strcmp(b->transport, t->baseline) || strcmp(b->wname, r->wname) ||
			    b->size != r->size || isnan(b->value) || b->value <= 0 || r->value <= 0)
				continue;
			/* Oriented so that above 1 always means better than the baseline. */
			r->ratio = r->lower_better ? b->value / r->value : r->value / b->value;
		}
	}
}

void json_num(const char *key, double v)
{
	if (isnan(v) || isinf(v))
		printf(", \"%s\": null", key);
	else
		printf(", \"%s\": %.6g", key, v);
}

void print_json(double load1, const char *kernel, double steal)
{
	printf("{");
	json_settings(load1, kernel, steal);
	printf(",\n\"results\": [");
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
		if (r->w == W_THROUGHPUT || r->w == W_PAIRS || r->w == W_SCALE)
			json_num("mb_per_s", r->mbps);
		if (r->w == W_PAIRS || r->w == W_SCALE)
			printf(", \"pairs\": %u", r->pairs);
		if (r->w == W_SCALE) {
			printf(", \"processes\": %u", r->procs);
			json_num("v4vd_us_per_msg", r->us_v4vd);
		}
		if (r->w == W_IDLE)
			printf(", \"wakeups\": %llu", (unsigned long long)r->wakeups);
		if (r->w == W_NEIGHBOUR) {
			printf(", \"misbehaviour\": \"%s\"", r->misb);
			json_num("tput_ratio", r->ratio);
			json_num("p50_us", r->p50);
			json_num("p50_ratio", r->p50_ratio);
			json_num("alone_msg_per_s", r->alone_value);
			json_num("alone_p50_us", r->alone_p50);
			json_num("hostile_ops_per_s", r->hostile_rate);
			printf(", \"target_met\": %s", *r->err			 ? "null"
						       : neighbour_target_met(r) ? "true"
										 : "false");
		}
		json_num("seconds", r->secs);
		if (r->emulated)
			printf(", \"emulated\": true");
		json_spread(r);
		if (*r->err && r->skipped) {
			printf(", \"skipped\": \"");
			for (const char *s = r->err; *s; s++)
				printf(*s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
			printf("\"");
		} else if (*r->err) {
			printf(", \"error\": \"");
			for (const char *s = r->err; *s; s++)
				printf(*s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
			printf("\"");
		}
		printf("}");
	}
	printf("],\n");
	json_targets();
	printf("}\n");
}

/* Three significant digits, with k/M for the big ones. */
void fmt_num(char *buf, size_t cap, double v)
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
void sort_groups(void)
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

/* "lo-hi" of spread field f, in fmt_num's style; "-" without a spread. */
static void fmt_range(char *buf, size_t cap, const struct result *r, unsigned f, bool plain)
{
	char lo[32], hi[32];
	if (isnan(r->lo[f])) {
		snprintf(buf, cap, "-");
		return;
	}
	if (plain) {
		snprintf(lo, sizeof(lo), "%.2f", r->lo[f]);
		snprintf(hi, sizeof(hi), "%.2f", r->hi[f]);
	} else {
		fmt_num(lo, sizeof(lo), r->lo[f]);
		fmt_num(hi, sizeof(hi), r->hi[f]);
	}
	snprintf(buf, cap, "%s-%s", lo, hi);
}

/* The scale workload: a block of its own, one line per number of pairs. */
static void print_scale(bool after)
{
	char v[32], mb[32], us[32], vr[72];
	bool any = false;
	for (unsigned i = 0; i < nresults; i++) {
		const struct result *r = &results[i];
		if (r->w != W_SCALE)
			continue;
		if (!any)
			printf("%sscale: v4v-dgram domain pairs (a domain per socket), %d-byte "
			       "datagrams, aggregate;\n"
			       "a few event-driven processes drive all the pairs\n"
			       "%6s %5s %8s %9s %6s %6s %12s%s\n",
			       after ? "\n" : "", SCALE_SIZE, "pairs", "procs", "msg/s", "MB/s",
			       "cpu%", "v4vd%", "v4vd us/msg",
			       opt.repeat > 1 ? "  msg/s min-max" : "");
		any = true;
		if (*r->err) {
			printf("%6u %5s  FAILED: %s\n", r->pairs, "", r->err);
			continue;
		}
		fmt_num(v, sizeof(v), r->value);
		fmt_num(mb, sizeof(mb), r->mbps);
		snprintf(us, sizeof(us), isnan(r->us_v4vd) ? "-" : "%.2f", r->us_v4vd);
		fmt_range(vr, sizeof(vr), r, SP_VALUE, false);
		printf("%6u %5u %8s %9s %6.0f %6.0f %12s", r->pairs, r->procs, v, mb, r->cpu,
		       r->cpu_v4vd, us);
		if (opt.repeat > 1)
			printf("  %s", vr);
		printf("\n");
	}
}

void print_table(void)
{
	char val[32], ratio[32], mb[32], cpu[32], vcpu[32], size[32], vr[72], rr[72], name[40];
	bool others = false, spread = opt.repeat > 1, tcg = false;
	for (unsigned i = 0; i < nresults; i++) {
		others |= results[i].w != W_NEIGHBOUR && results[i].w != W_SCALE;
		tcg |= results[i].emulated;
	}
	/* Guests' figures say "(TCG)" after the transport: a wider column. */
	int tw = tcg ? 18 : 15;
	if (!others) {
		bool nb = false;
		for (unsigned i = 0; i < nresults; i++)
			nb |= results[i].w == W_NEIGHBOUR;
		print_neighbour();
		print_scale(nb);
		print_targets();
		return;
	}
	printf("%-*s %-12s %6s %8s %-7s %6s %9s %6s %6s", tw, "transport", "workload", "size",
	       "value", "unit", "ratio", "MB/s", "cpu%", "v4vd%");
	if (spread)
		printf("  %-17s %s", "value min-max", "ratio min-max");
	printf("\n");
	for (unsigned i = 0, shown = 0; i < nresults; i++) {
		struct result *r = &results[i];
		if (r->w == W_NEIGHBOUR || r->w == W_SCALE)
			continue; /* tables of their own, below */
		if (shown++ && !same_group(r, &results[i - 1]))
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
		snprintf(name, sizeof(name), "%s%s", r->transport, r->emulated ? " (TCG)" : "");
		if (*r->err) {
			printf("%-*s %-12s %6s  %s: %s\n", tw, name, r->wname, size,
			       r->skipped ? "skipped" : "FAILED", r->err);
			continue;
		}
		printf("%-*s %-12s %6s %8s %-7s %6s %9s %6s %6s", tw, name, r->wname, size, val,
		       r->unit ? r->unit : "", ratio, mb, cpu, vcpu);
		if (spread) {
			fmt_range(vr, sizeof(vr), r, SP_VALUE, r->w == W_IDLE);
			fmt_range(rr, sizeof(rr), r, SP_RATIO, true);
			printf("  %-17s %s", vr, rr);
		}
		printf("\n");
	}
	printf("\nratio: against unix-seqpacket for datagram kinds (v4v-dgram, v4v-ring), "
	       "against unix-stream for the rest;\n       above 1 is better than the baseline "
	       "(for latency: baseline / value).\n"
	       "cpu%%: user+sys of every process taking part, v4vd included, in %% of one "
	       "core.\n");
	if (tcg)
		printf("(TCG): a QEMU guest under TCG took part (vm-stream: guest to a process "
		       "domain;\n       vm-vm-stream: guest to guest); every guest instruction is "
		       "emulated, so\n       these check correctness and CPU use, not speed; cpu%% "
		       "includes QEMU and v4v-vm.\n");
	if (spread)
		printf("each figure and ratio: the median of %u interleaved rounds; min-max: "
		       "the lowest and highest round.\n",
		       opt.repeat);
	for (unsigned i = 0; i < nresults; i++)
		if (results[i].w == W_PAIRS) {
			printf("pairs: %u sender/receiver pairs at once, %d-byte messages, "
			       "aggregate.\n",
			       results[i].pairs, PAIRS_SIZE);
			break;
		}
	print_neighbour();
	print_scale(true);
	print_targets();
}

bool gnuplot_found(void)
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
int plot(const char *file)
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
		if (!first || r->w == W_IDLE || r->w == W_NEIGHBOUR || r->w == W_SCALE)
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
	/* The neighbour: the bystander's throughput ratio and its p50 ratio
	 * turned over (alone / with), so that both must stay above 0.5. */
	bool nb = false;
	for (unsigned i = 0; i < nresults; i++) {
		struct result *r = &results[i];
		if (r->w != W_NEIGHBOUR || r->misb == neighbour_name(NB_ALONE))
			continue;
		nb = true;
		for (int k = 0; k < 2; k++) {
			double v = k ? 1 / r->p50_ratio : r->ratio;
			fprintf(f, "\"neighbour %s: %s\"", r->misb, k ? "alone/with p50" : "tput");
			for (unsigned c = 0; c < cols; c++)
				fprintf(f,
					isnan(v) || strcmp(names[c], r->transport) ? "\t-"
										   : "\t%.4g",
					v);
			fprintf(f, "\n");
		}
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
	if (nb)
		fprintf(g,
			"set arrow from graph 0, first %g to graph 1, first %g nohead dt 3 lw 1 "
			"lc rgb 'red'\n"
			"set label 'neighbour target' at graph 0.01, first %g offset 0,0.6 "
			"tc rgb 'red'\n",
			NB_TPUT_MIN, NB_TPUT_MIN, NB_TPUT_MIN);
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

void progress(unsigned k, unsigned total, const struct result *r)
{
	char v[32];
	char wname[32];
	snprintf(wname, sizeof(wname), "%s%s%s", r->wname, r->misb ? ":" : "",
		 r->misb ? r->misb : "");
	fprintf(stderr, "[%2u/%u] %-15s %-12s", k, total, r->transport, wname);
	if (r->size)
		fprintf(stderr, " %6zu B", r->size);
	else
		fprintf(stderr, "         ");
	if (*r->err) {
		fprintf(stderr, "  %s: %s\n", r->skipped ? "skipped" : "FAILED", r->err);
		return;
	}
	fmt_num(v, sizeof(v), r->value);
	if (r->emulated) {
		fprintf(stderr, "  %8s %-6s cpu %.0f%% (TCG)\n", v, r->unit, r->cpu);
		return;
	}
	if (r->w == W_IDLE)
		fprintf(stderr, "  %8s %-6s v4vd %.2f%%, %llu wake-ups\n", v, r->unit, r->cpu_v4vd,
			(unsigned long long)r->wakeups);
	else if (r->w == W_NEIGHBOUR)
		fprintf(stderr, "  %8s %-6s p50 %.1f us, v4vd %.0f%%\n", v, r->unit, r->p50,
			r->cpu_v4vd);
	else
		fprintf(stderr, "  %8s %-6s cpu %.0f%%\n", v, r->unit, r->cpu);
}
