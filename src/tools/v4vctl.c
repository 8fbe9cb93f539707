/* SPDX-License-Identifier: MIT */
/*
 * v4vctl: the admin's view of v4vd.  A table of subcommands; each turns
 * its arguments into one control command and prints the reply as a table,
 * or as JSON with -j (an array of objects with stable keys).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "tool.h"

const char *prog = "v4vctl";

static void usage(FILE *f)
{
	fprintf(f, "usage: v4vctl [-j] COMMAND [ARGS]\n"
		   "  domains                          list domains with their counters\n"
		   "  rings                            list registered rings\n"
		   "  names                            list registered service names\n"
		   "  stats                            v4vd's totals, CPU and memory\n"
		   "  domain create [--domid N] [NAME] create a persistent domain\n"
		   "  domain destroy DOM               destroy a domain (its processes lose it)\n"
		   "  fw list                          rules in order, with hit counters\n"
		   "  fw add [--src DOM[:PORT]] [--dst DOM[:PORT]] accept|reject|drop\n"
		   "  fw insert N [--src ...] [--dst ...] ACTION   insert as rule N (1-based)\n"
		   "  fw delete N                      delete rule N\n"
		   "  fw flush                         delete every rule\n"
		   "  fw policy accept|reject|drop     the verdict when no rule matches\n"
		   "DOM is a domid, a domain name, or 'any' in rules.\n"
		   "  -j   print JSON instead of a table\n");
}

/* Join argv into a command line, refusing words the protocol can't carry. */
static void join(char *buf, size_t cap, const char *prefix, int argc, char **argv)
{
	size_t n = (size_t)snprintf(buf, cap, "%s", prefix);
	for (int i = 0; i < argc; i++) {
		if (!*argv[i] || strpbrk(argv[i], " \t\r\n"))
			die("argument '%s' may not be empty or contain blanks", argv[i]);
		n += (size_t)snprintf(buf + n, cap - n, " %s", argv[i]);
		if (n >= cap)
			die("command too long");
	}
}

static int run(const char *cmd, bool json, bool table)
{
	char *body;
	if (ctl_request(cmd, &body, NULL) < 0) {
		fprintf(stderr, "%s: %s\n", prog, body);
		free(body);
		return 1;
	}
	if (table && *body) {
		struct table t;
		table_parse(body, &t);
		table_print(&t, json);
		table_free(&t);
	} else if (json) {
		printf("{\"ok\": true}\n");
	}
	free(body);
	return 0;
}

static int domain_create(int argc, char **argv, bool json)
{
	const char *domid = "auto", *name = "-";
	uint64_t v;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--domid") == 0 && i + 1 < argc) {
			if (!v4v_parse_u64(argv[++i], 0, 0x7FEF, &v))
				die("bad --domid '%s'", argv[i]);
			domid = argv[i];
		} else if (argv[i][0] != '-' && strcmp(name, "-") == 0) {
			name = argv[i];
		} else {
			die("usage: domain create [--domid N] [NAME]");
		}
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "domain create %s %s persistent", domid, name);
	return run(cmd, json, true);
}

int main(int argc, char **argv)
{
	bool json = false;
	int c;
	while ((c = getopt(argc, argv, "+jh")) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		usage(stderr);
		return 1;
	}
	char cmd[4096];
	const char *w = argv[0];
	if (!strcmp(w, "domains") || !strcmp(w, "rings") || !strcmp(w, "names") ||
	    !strcmp(w, "stats")) {
		if (argc != 1)
			die("'%s' takes no arguments", w);
		return run(w, json, true);
	}
	if (!strcmp(w, "domain") && argc >= 2 && !strcmp(argv[1], "create"))
		return domain_create(argc - 2, argv + 2, json);
	if (!strcmp(w, "domain") && argc == 3 && !strcmp(argv[1], "destroy")) {
		join(cmd, sizeof(cmd), "domain destroy", 1, argv + 2);
		return run(cmd, json, false);
	}
	if (!strcmp(w, "fw") && argc >= 2) {
		const char *sub = argv[1];
		if (!strcmp(sub, "list") && argc == 2)
			return run("fw list", json, true);
		if (!strcmp(sub, "add") || !strcmp(sub, "insert") || !strcmp(sub, "delete") ||
		    !strcmp(sub, "flush") || !strcmp(sub, "policy")) {
			char prefix[16];
			snprintf(prefix, sizeof(prefix), "fw %s", sub);
			join(cmd, sizeof(cmd), prefix, argc - 2, argv + 2);
			return run(cmd, json, false);
		}
	}
	fprintf(stderr, "%s: unknown command '%s'\n", prog, w);
	usage(stderr);
	return 1;
}
