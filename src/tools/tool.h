/* SPDX-License-Identifier: MIT */
/* Shared by the command-line tools. */
#ifndef V4V_TOOL_H
#define V4V_TOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/cli.h"

extern const char *prog;

void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A usage error: one line naming the bad argument, exit 2 (cli.h). */
#define die_usage(...) v4v_usage_error(prog, __VA_ARGS__)

/* Send one command to v4vd's control socket (ctl/client.h).  On success
 * returns 0 with the reply body after "ok\n" in *body (malloc'd) and any
 * passed fd in *fd; on "error: ..." returns -1 with the sentence in *body;
 * exits with a clear message when v4vd cannot be reached. */
int ctl_request(const char *cmd, char **body, int *fd);

/*
 * A typed TSV table from v4vd (src/daemon/ctl.c): a header of NAME:TYPE
 * columns, then rows.  TYPE is n (a number), s (a string), a (an address,
 * "DOM[:PORT]" with DOM "any" or "ID" or "ID(NAME)", PORT a number or
 * "any") or d (a domain, "ID" or "ID(NAME)"); a trailing '*' makes it a
 * comma-separated list of those.  "-" is an absent value (and "any" a
 * wildcard) wherever a number or list is expected.
 */
struct table {
	int ncols, nrows;
	char **col;   /* names */
	char *type;   /* 'n', 's', 'a' or 'd' per column */
	bool *list;   /* a '*' list of them */
	char ***cell; /* [row][col] */
};
int table_parse(char *text, struct table *t);
void table_free(struct table *t);

/* How to print one (by hand, not with libsmartcols: its JSON has no object
 * inside a cell, which an address is here, and this is ~200 lines): JSON (an array of objects;
 * numbers as numbers, absent values null, lists arrays, addresses objects) or a table; only the
 * named columns (comma-separated; NULL: all), in that order. */
struct table_style {
	bool json, pretty;
	const char *columns;
};
void table_print(const struct table *t, const struct table_style *st);

#endif
