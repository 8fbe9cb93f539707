/* SPDX-License-Identifier: MIT */
/* The command line's shared words: versions, usage errors, bad domids (cli.h). */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "v4v-config.h"
#include "util.h"
#include "v4v/abi.h"

bool v4v_domid_parse(const char *s, uint16_t *domid)
{
	uint64_t v;
	if (!v4v_parse_u64(s, 0, V4V_DOMID_MAX, &v))
		return false;
	*domid = (uint16_t)v;
	return true;
}

const char *v4v_domid_bad(char *buf, size_t cap, const char *s)
{
	snprintf(buf, cap, "bad domid '%s' (0..%u)", s, V4V_DOMID_MAX);
	return buf;
}

void v4v_print_version(const char *prog)
{
	printf("%s %s\n", prog, V4V_VERSION);
}

void v4v_usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see %s --help)\n", prog);
	va_end(ap);
	exit(V4V_EXIT_USAGE);
}

void v4v_option_error(const char *prog, int c, char **argv)
{
	/* optind has moved past the offending word (or its short-option
	 * cluster); optopt is the short option, or 0 for a long one. */
	const char *word = argv[optind - 1];
	if (c == ':' && optopt && word[1] != '-')
		v4v_usage_error(prog, "option '-%c' needs an argument", optopt);
	if (c == ':')
		v4v_usage_error(prog, "option '%s' needs an argument", word);
	if (optopt)
		v4v_usage_error(prog, "invalid option -- '%c'", optopt);
	v4v_usage_error(prog, "unrecognized option '%s'", word);
}
