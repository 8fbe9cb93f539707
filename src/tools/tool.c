/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "tool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rundir.h"
#include "common/util.h"

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

int ctl_request(const char *cmd, char **body, int *fd)
{
	char dir[256], path[128], err[400];
	if (v4v_rundir_default(dir, sizeof(dir), err, sizeof(err)) < 0)
		die("%s", err);
	if (v4v_control_path(path, sizeof(path), dir) < 0)
		die("runtime directory path is too long");
	/* Checks the directory and who serves the socket before we say a word. */
	int s = v4v_ctl_connect(dir, err, sizeof(err));
	if (s == -ENOENT || s == -ECONNREFUSED)
		die("v4vd is not running (no control socket at %s); start it with "
		    "'v4vd --runtime-dir %s' or set V4V_RUNTIME_DIR",
		    path, dir);
	if (s < 0)
		die("%s", err);
	char *reply;
	uint32_t n;
	int e = v4v_frame_send(s, cmd, (uint32_t)strlen(cmd), -1);
	if (!e)
		e = v4v_frame_recv(s, &reply, &n, 64u << 20, fd);
	close(s);
	if (e == -ECONNRESET)
		die("v4vd closed the control connection (are you the admin?)");
	if (e)
		die("control request failed: %s", strerror(-e));
	if (strncmp(reply, "ok\n", 3) == 0) {
		memmove(reply, reply + 3, n - 2);
		*body = reply;
		return 0;
	}
	if (strncmp(reply, "error: ", 7) == 0) {
		memmove(reply, reply + 7, n - 6);
		reply[strcspn(reply, "\n")] = '\0';
	}
	*body = reply;
	if (fd && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	return -1;
}

/* Split s on sep in place into a malloc'd array. */
static char **split(char *s, char sep, int *n)
{
	int cap = 8;
	char **v = malloc(sizeof(*v) * (size_t)cap);
	*n = 0;
	for (;;) {
		if (*n == cap)
			v = realloc(v, sizeof(*v) * (size_t)(cap *= 2));
		v[(*n)++] = s;
		char *p = strchr(s, sep);
		if (!p)
			return v;
		*p = '\0';
		s = p + 1;
	}
}

int table_parse(char *text, struct table *t)
{
	int nlines;
	size_t len = strlen(text);
	if (len && text[len - 1] == '\n')
		text[len - 1] = '\0';
	char **lines = split(text, '\n', &nlines);
	memset(t, 0, sizeof(*t));
	t->col = split(lines[0], '\t', &t->ncols);
	t->type = calloc((size_t)t->ncols, 1);
	for (int i = 0; i < t->ncols; i++) {
		char *c = strrchr(t->col[i], ':');
		t->type[i] = c && c[1] == 'n' ? 'n' : 's';
		if (c)
			*c = '\0';
	}
	t->cell = calloc((size_t)nlines, sizeof(*t->cell));
	for (int i = 1; i < nlines; i++) {
		int k;
		char **row = split(lines[i], '\t', &k);
		if (k != t->ncols) {
			free(row);
			continue;
		}
		t->cell[t->nrows++] = row;
	}
	free(lines);
	return 0;
}

void table_free(struct table *t)
{
	for (int i = 0; i < t->nrows; i++)
		free(t->cell[i]);
	free(t->cell);
	free(t->col);
	free(t->type);
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

void table_print(const struct table *t, bool json)
{
	if (json) {
		printf("[");
		for (int r = 0; r < t->nrows; r++) {
			printf("%s{", r ? ",\n " : "");
			for (int c = 0; c < t->ncols; c++) {
				printf("%s", c ? ", " : "");
				json_string(t->col[c]);
				printf(": ");
				char *end;
				const char *v = t->cell[r][c];
				if (t->type[c] == 'n' && *v && (strtod(v, &end), *end == '\0'))
					printf("%s", v);
				else if (t->type[c] == 'n' && strcmp(v, "-") == 0)
					printf("null");
				else
					json_string(v);
			}
			printf("}");
		}
		printf("]\n");
		return;
	}
	int *w = calloc((size_t)t->ncols, sizeof(int));
	for (int c = 0; c < t->ncols; c++) {
		w[c] = (int)strlen(t->col[c]);
		for (int r = 0; r < t->nrows; r++)
			if ((int)strlen(t->cell[r][c]) > w[c])
				w[c] = (int)strlen(t->cell[r][c]);
	}
	for (int c = 0; c < t->ncols; c++)
		printf(t->type[c] == 'n' ? "%*s%s" : "%-*s%s", w[c], t->col[c],
		       c + 1 < t->ncols ? "  " : "\n");
	for (int r = 0; r < t->nrows; r++)
		for (int c = 0; c < t->ncols; c++)
			printf(t->type[c] == 'n' ? "%*s%s" : "%-*s%s", w[c], t->cell[r][c],
			       c + 1 < t->ncols ? "  " : "\n");
	free(w);
}
