/* SPDX-License-Identifier: MIT */
/*
 * v4vctl: the admin's view of v4vd.  A table of subcommands (name,
 * function, one-line description: the usage is printed from it); each
 * turns its arguments into one control command and prints the reply as a
 * table, or as JSON with -j (an array of objects with stable keys).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "tool.h"

const char *prog = "v4vctl";

struct command {
	const char *name, *sub; /* "fw" "add"; sub NULL: a one-word command */
	int (*fn)(const struct command *c, int argc, char **argv, bool json);
	const char *args; /* for the usage */
	const char *description;
};

static const struct command commands[];
static struct table_style out; /* -j, -p, -o */

static void usage(FILE *f);

/* Join argv into a command line, refusing words the protocol can't carry. */
static void join(char *buf, size_t cap, const char *prefix, int argc, char **argv)
{
	size_t n = (size_t)snprintf(buf, cap, "%s", prefix);
	for (int i = 0; i < argc; i++) {
		if (!*argv[i] || strpbrk(argv[i], " \t\r\n"))
			die_usage("%s: argument '%s' may not be empty or contain blanks", prefix,
				  argv[i]);
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
		out.json = json;
		table_print(&t, &out);
		table_free(&t);
	} else if (json) {
		printf("{\"ok\": true}\n");
	}
	free(body);
	return 0;
}

/* A command's words, "fw add" or "domains": also the control command's. */
static const char *words(const struct command *c, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s%s%s", c->name, c->sub ? " " : "", c->sub ? c->sub : "");
	return buf;
}

/* A listing: the control command is the command's words. */
static int list_main(const struct command *c, int argc, char **argv, bool json)
{
	char w[32];
	if (argc != 0)
		die_usage("%s: unexpected argument '%s'", words(c, w, sizeof(w)), argv[0]);
	return run(words(c, w, sizeof(w)), json, true);
}

static int domain_create(const struct command *c, int argc, char **argv, bool json)
{
	const char *domid = "auto", *name = "-";
	uint16_t v;
	char bad[64];
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--domid") == 0 && i + 1 < argc) {
			if (!v4v_domid_parse(argv[++i], &v))
				die_usage("domain create: --domid: %s",
					  v4v_domid_bad(bad, sizeof(bad), argv[i]));
			domid = argv[i];
		} else if (strcmp(argv[i], "--domid") == 0) {
			die_usage("domain create: option '--domid' needs an argument");
		} else if (argv[i][0] != '-' && strcmp(name, "-") == 0) {
			name = argv[i];
		} else {
			die_usage("domain create: unexpected argument '%s'", argv[i]);
		}
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "domain create %s %s persistent", domid, name);
	return run(cmd, json, true);
}

/* The rest pass their words through: v4vd checks them and says what is
 * wrong in its own words. */
static int pass_words(const struct command *c, int argc, char **argv, bool json)
{
	char cmd[4096], w[32];
	join(cmd, sizeof(cmd), words(c, w, sizeof(w)), argc, argv);
	return run(cmd, json, false);
}

static int domain_destroy(const struct command *c, int argc, char **argv, bool json)
{
	if (argc != 1)
		die_usage("domain destroy: %s", argc ? "one DOM only" : "which domain? (DOM)");
	return pass_words(c, argc, argv, json);
}

static int help(const struct command *c, int argc, char **argv, bool json)
{
	usage(stdout);
	return 0;
}

static const struct command commands[] = {
    {"domains", NULL, list_main, "", "list domains with their counters"},
    {"rings", NULL, list_main, "", "list registered rings"},
    {"names", NULL, list_main, "", "list registered service names"},
    {"stats", NULL, list_main, "", "v4vd's totals, CPU and memory"},
    {"domain", "create", domain_create, "[--domid N] [NAME]", "create a persistent domain"},
    {"domain", "destroy", domain_destroy, "DOM", "destroy a domain (its processes lose it)"},
    {"fw", "list", list_main, "", "rules in order, with hit counters"},
    {"fw", "add", pass_words, "[--src DOM[:PORT]] [--dst DOM[:PORT]] ACTION",
     "append a rule; ACTION is accept, reject or drop"},
    {"fw", "insert", pass_words, "N [--src ...] [--dst ...] ACTION", "insert as rule N (1-based)"},
    {"fw", "delete", pass_words, "N", "delete rule N"},
    {"fw", "flush", pass_words, "", "delete every rule"},
    {"fw", "policy", pass_words, "accept|reject|drop", "the verdict when no rule matches"},
    {"help", NULL, help, "", "print this usage"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: v4vctl [-j|-p] [-o COL,...] COMMAND [ARGS]\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		const struct command *c = &commands[i];
		char synopsis[128], w[32];
		snprintf(synopsis, sizeof(synopsis), "%s%s%s", words(c, w, sizeof(w)),
			 *c->args ? " " : "", c->args);
		if (strlen(synopsis) > 32)
			fprintf(f, "  %s\n  %-32s %s\n", synopsis, "", c->description);
		else
			fprintf(f, "  %-32s %s\n", synopsis, c->description);
	}
	fprintf(f, "DOM is a domid, a domain name, or 'any' in rules.\n"
		   "  -j          print JSON instead of a table\n"
		   "  -p          print pretty (indented) JSON\n"
		   "  -o COL,...  print only these columns, in this order\n"
		   "  -h, --help  print this usage;  -V, --version  print the version\n");
}

/* The entry for argv's words: two for a command with a sub-command.  An
 * unknown command or subcommand is a usage error naming it. */
static const struct command *lookup(int argc, char **argv)
{
	bool known = false;
	char subs[128] = "";
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		const struct command *c = &commands[i];
		if (strcmp(c->name, argv[0]) != 0)
			continue;
		known = true;
		if (!c->sub || (argc >= 2 && strcmp(c->sub, argv[1]) == 0))
			return c;
		n += (size_t)snprintf(subs + n, sizeof(subs) - n, "%s%s", n ? ", " : "", c->sub);
	}
	if (!known)
		die_usage("unknown command '%s'", argv[0]);
	if (argc < 2)
		die_usage("%s: missing subcommand (%s)", argv[0], subs);
	die_usage("%s: unknown subcommand '%s'", argv[0], argv[1]);
}

int main(int argc, char **argv)
{
	/* clang-format off */
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"pretty", no_argument, NULL, 'p'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	/* clang-format on */
	bool json = false;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:jpo:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'p': json = true, out.pretty = true; break;
		case 'o': out.columns = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': v4v_print_version(prog); return 0;
		default: v4v_option_error(prog, c, argv);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		die_usage("no command given");
	const struct command *cmd = lookup(argc, argv);
	int words = cmd->sub ? 2 : 1;
	return cmd->fn(cmd, argc - words, argv + words, json);
}
