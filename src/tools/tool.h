/* SPDX-License-Identifier: MIT */
/* Shared by the command-line tools. */
#ifndef V4V_TOOL_H
#define V4V_TOOL_H

#include <stdbool.h>
#include <stdint.h>

extern const char *prog;

void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Send one command to v4vd's control socket (ctl/client.h).  On success
 * returns 0 with the reply body after "ok\n" in *body (malloc'd) and any
 * passed fd in *fd; on "error: ..." returns -1 with the sentence in *body;
 * exits with a clear message when v4vd cannot be reached. */
int ctl_request(const char *cmd, char **body, int *fd);

/* Parse a typed TSV table ("name:n\tother:s" header, then rows). */
struct table {
	int ncols, nrows;
	char **col;   /* names */
	char *type;   /* 'n' or 's' per column */
	char ***cell; /* [row][col] */
};
int table_parse(char *text, struct table *t);
void table_free(struct table *t);
void table_print(const struct table *t, bool json);

#endif
