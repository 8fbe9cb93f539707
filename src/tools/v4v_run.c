/* SPDX-License-Identifier: MIT */
/*
 * v4v-run: start a command inside a new (or, with --join, an existing)
 * domain.  It asks v4vd for the domain, puts the domain fd in the
 * environment as V4V_DOMAIN_FD and execs the command, so the command's
 * exit status is v4v-run's.  The domain ends when the last process holding
 * its fd exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "tool.h"
#include "v4v/v4v.h"

const char *prog = "v4v-run";

static void usage(FILE *f)
{
	fprintf(f, "usage: v4v-run [--domid N] [--name NAME] -- CMD [ARGS...]\n"
		   "       v4v-run --join DOM -- CMD [ARGS...]\n"
		   "  --domid N    the new domain's id (default: lowest free id)\n"
		   "  --name NAME  the new domain's name (unique; 1-31 of A-Za-z0-9._-)\n"
		   "  --join DOM   run CMD in the existing domain DOM (id or name)\n"
		   "  --quiet      do not print the domain on stderr\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"domid", required_argument, NULL, 'd'}, {"name", required_argument, NULL, 'n'},
	    {"join", required_argument, NULL, 'j'},  {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},	     {0},
	};
	const char *domid = "auto", *name = "-", *join = NULL;
	bool quiet = false;
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "+d:n:j:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (!v4v_parse_u64(optarg, 0, V4V_DOMID_MAX, &v))
				die("bad --domid '%s' (0..%u)", optarg, V4V_DOMID_MAX);
			domid = optarg;
			break;
		case 'n':
			if (!v4v_name_valid(optarg))
				die("bad --name '%s' (1-31 of A-Za-z0-9._-, not starting with a "
				    "digit or -)",
				    optarg);
			name = optarg;
			break;
		case 'j': join = optarg; break;
		case 'q': quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind == argc) {
		fprintf(stderr, "v4v-run: no command given\n");
		usage(stderr);
		return 1;
	}
	if (join && (strcmp(domid, "auto") || strcmp(name, "-")))
		die("--join cannot be combined with --domid or --name");

	char cmd[128], *body;
	int fd = -1;
	if (join)
		snprintf(cmd, sizeof(cmd), "domain open %s", join);
	else
		snprintf(cmd, sizeof(cmd), "domain create %s %s fd", domid, name);
	if (ctl_request(cmd, &body, &fd) < 0)
		die("%s", body);
	if (fd < 0)
		die("v4vd sent no domain fd");

	struct table t;
	table_parse(body, &t);
	if (!quiet && t.nrows == 1)
		fprintf(stderr, "v4v-run: domain %s%s%s\n", t.cell[0][0],
			strcmp(t.cell[0][1], "-") ? " " : "",
			strcmp(t.cell[0][1], "-") ? t.cell[0][1] : "");
	table_free(&t);
	free(body);

	/* The fd crosses exec; everything else of ours is close-on-exec. */
	char num[16];
	fcntl(fd, F_SETFD, 0);
	snprintf(num, sizeof(num), "%d", fd);
	setenv("V4V_DOMAIN_FD", num, 1);
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "v4v-run: cannot run '%s': %s\n", argv[optind], strerror(errno));
	return 127;
}
