/* SPDX-License-Identifier: MIT */
/*
 * The command line's shared words, for v4vd and every tool: --version,
 * usage errors (one line naming the bad argument, exit 2) and the one
 * message for a bad domid, so each program says these things the same way.
 */
#ifndef V4V_CLI_H
#define V4V_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit status of a usage error (bad option, argument or subcommand). */
#define V4V_EXIT_USAGE 2

/* Strict decimal domid in 0..V4V_DOMID_MAX; false on anything else. */
bool v4v_domid_parse(const char *s, uint16_t *domid);

/* The message for a domid v4v_domid_parse() refused, into buf:
 * "bad domid 'S' (0..32751)".  Returns buf. */
const char *v4v_domid_bad(char *buf, size_t cap, const char *s);

/* "PROG VERSION" on stdout (the project version meson was given). */
void v4v_print_version(const char *prog);

/* One line "PROG: MESSAGE (see PROG --help)" on stderr, then exit 2. */
void v4v_usage_error(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/*
 * For getopt/getopt_long's '?' and ':' returns (with opterr = 0 and an
 * optstring starting with ':' after any '+'): names the unknown option or
 * the one missing its argument, and exits 2.
 */
void v4v_option_error(const char *prog, int c, char **argv) __attribute__((noreturn));

#endif
