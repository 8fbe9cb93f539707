/* SPDX-License-Identifier: MIT */
/*
 * v4v-run: start a command inside a new (or, with --join, an existing)
 * domain.  It asks v4vd for the domain, puts the domain fd in the
 * environment as V4V_DOMAIN_FD and execs the command, so the command's
 * exit status is v4v-run's.  The domain ends when the last process holding
 * its fd exits.
 *
 * Before the exec it becomes the domain: the uid and gid v4vd names for it
 * (no supplementary groups), no_new_privs, and no fd but 0, 1, 2 and the
 * domain fd, so nothing that reaches the control socket is inherited.
 * --as-caller keeps the caller's ids, for development only.  See
 * docs/SECURITY.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/util.h"
#include "tool.h"
#include "v4v/v4v.h"

const char *prog = "v4v-run";

static void usage(FILE *f)
{
	fprintf(f, "usage: v4v-run [--domid N] [--name NAME] [--as-caller] -- CMD [ARGS...]\n"
		   "       v4v-run --join DOM [--as-caller] -- CMD [ARGS...]\n"
		   "  --domid N    the new domain's id (default: lowest free id)\n"
		   "  --name NAME  the new domain's name (unique; 1-31 of A-Za-z0-9._-)\n"
		   "  --join DOM   run CMD in the existing domain DOM (id or name)\n"
		   "  --quiet      do not print the domain on stderr\n"
		   "  --as-caller  run CMD as yourself, not as the domain's uid (development\n"
		   "               only: the domain is then not kept apart from your processes)\n"
		   "  --help, --version  print this usage, or the version, and exit\n");
}

/* Close every fd but 0, 1, 2 and keep. */
static void close_others(int keep)
{
	if (keep < 3)
		die("the domain fd is %d: start v4v-run with stdin, stdout and stderr open", keep);
	if ((keep == 3 || close_range(3, (unsigned)keep - 1, 0) == 0) &&
	    close_range((unsigned)keep + 1, ~0u, 0) == 0)
		return;
	DIR *d = opendir("/proc/self/fd"); /* kernels before 5.9 */
	if (!d)
		die("cannot close inherited fds: %s", strerror(errno));
	for (struct dirent *e; (e = readdir(d));) {
		int fd = atoi(e->d_name);
		if (fd > 2 && fd != keep && fd != dirfd(d))
			close(fd);
	}
	closedir(d);
}

/* Become the domain's principal for good: all three uids and gids, no
 * supplementary groups; checked, since a half-done switch must not run. */
static void become(uint32_t uid)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;
	if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
		die("cannot switch to the domain's uid %u: %s (run as root, or pass --as-caller "
		    "for development)",
		    uid, strerror(errno));
	if (getresuid(&r, &e, &s) < 0 || getresgid(&gr, &ge, &gs) < 0 || r != uid || e != uid ||
	    s != uid || gr != uid || ge != uid || gs != uid || getgroups(0, NULL) != 0)
		die("switching to the domain's uid %u did not take", uid);
}

/* The uid column of v4vd's reply, or -1. */
static int64_t reply_uid(const struct table *t)
{
	uint64_t v;
	for (int c = 0; c < t->ncols; c++)
		if (t->nrows == 1 && strcmp(t->col[c], "uid") == 0 &&
		    v4v_parse_u64(t->cell[0][c], 1, 4294967294u, &v))
			return (int64_t)v;
	return -1;
}

int main(int argc, char **argv)
{
	/* clang-format off */
	static const struct option opts[] = {
	    {"domid", required_argument, NULL, 'd'},
	    {"name", required_argument, NULL, 'n'},
	    {"join", required_argument, NULL, 'j'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"as-caller", no_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	/* clang-format on */
	const char *domid = "auto", *name = "-", *join = NULL;
	bool quiet = false, as_caller = false;
	uint16_t v;
	char bad[64];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:d:n:j:qhV", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (!v4v_domid_parse(optarg, &v))
				die_usage("--domid: %s", v4v_domid_bad(bad, sizeof(bad), optarg));
			domid = optarg;
			break;
		case 'n':
			if (!v4v_name_valid(optarg))
				die_usage(
				    "bad --name '%s' (1-31 of A-Za-z0-9._-, not starting with "
				    "a digit or -)",
				    optarg);
			name = optarg;
			break;
		case 'j': join = optarg; break;
		case 'q': quiet = true; break;
		case 'a': as_caller = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': v4v_print_version(prog); return 0;
		default: v4v_option_error(prog, c, argv);
		}
	}
	if (optind == argc)
		die_usage("no command given");
	if (join && (strcmp(domid, "auto") || strcmp(name, "-")))
		die_usage("--join cannot be combined with --domid or --name");
	if (!as_caller && geteuid() != 0)
		die("running CMD as the domain's own uid needs root (you are uid %u); pass "
		    "--as-caller to run it as yourself (development only)",
		    (unsigned)geteuid());

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
	int64_t uid = reply_uid(&t);
	table_free(&t);
	free(body);
	if (uid < 0 && !as_caller)
		die("v4vd named no uid for the domain (is it older than this v4v-run?)");

	close_others(fd);
	if (!as_caller)
		become((uint32_t)uid);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("cannot set no_new_privs: %s", strerror(errno));
	/* The fd crosses exec; nothing else of ours is left. */
	char num[16];
	fcntl(fd, F_SETFD, 0);
	snprintf(num, sizeof(num), "%d", fd);
	setenv("V4V_DOMAIN_FD", num, 1);
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "v4v-run: cannot run '%s': %s\n", argv[optind], strerror(errno));
	return 127;
}
