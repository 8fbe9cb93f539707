/* SPDX-License-Identifier: MIT */
/* The tools' helpers: dying with a message, one control request, TSV tables. */
#define _GNU_SOURCE
#include "tool.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/client.h"

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
	struct v4v_ctl_reply rep;
	if (v4v_ctl_request(NULL, cmd, &rep) < 0)
		die("%s", rep.why);
	*body = rep.body;
	rep.body = NULL;
	if (fd) { /* -1 after an error reply */
		*fd = rep.fd;
		rep.fd = -1;
	}
	v4v_ctl_reply_free(&rep); /* an fd the caller did not ask for */
	return rep.ok ? 0 : -1;
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
	t->list = calloc((size_t)t->ncols, sizeof(bool));
	for (int i = 0; i < t->ncols; i++) {
		char *c = strrchr(t->col[i], ':');
		t->type[i] = c && c[1] && strchr("nsad", c[1]) ? c[1] : 's';
		t->list[i] = c && c[1] && c[2] == '*';
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
	free(t->list);
}

/* ---- JSON --------------------------------------------------------------- */

static void json_string(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static bool is_number(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	return n && i == n && (n == 1 || s[0] != '0');
}

/* A number, or null for "-", "any" or nothing; other text as a string. */
static void json_number(const char *s, size_t n)
{
	if (is_number(s, n))
		printf("%.*s", (int)n, s);
	else if (n == 0 || (n == 1 && *s == '-') || (n == 3 && !strncmp(s, "any", 3)))
		printf("null");
	else
		json_string(s, n);
}

/* "ID(NAME)", "ID" or "any" -> "domid": ID, "name": NAME (null when absent);
 * a NAME alone (a firewall rule kept by name) -> "domid": null. */
static void json_domain_keys(const char *s, size_t n)
{
	const char *paren = memchr(s, '(', n);
	size_t idlen = paren ? (size_t)(paren - s) : n;
	bool none = n == 0 || (n == 1 && *s == '-') || (n == 3 && !strncmp(s, "any", 3));
	if (!paren && !none && !is_number(s, n)) {
		printf("\"domid\": null, \"name\": ");
		json_string(s, n);
		return;
	}
	printf("\"domid\": ");
	json_number(s, idlen);
	printf(", \"name\": ");
	if (paren && n > idlen + 2 && s[n - 1] == ')')
		json_string(paren + 1, n - idlen - 2);
	else
		printf("null");
}

/* One value of a column's type. */
static void json_value(char type, const char *s, size_t n)
{
	const char *colon;
	switch (type) {
	case 'n': json_number(s, n); return;
	case 'd':
		if (n == 0 || (n == 1 && *s == '-') || (n == 3 && !strncmp(s, "any", 3))) {
			printf("null");
			return;
		}
		putchar('{');
		json_domain_keys(s, n);
		putchar('}');
		return;
	case 'a':
		colon = memchr(s, ':', n);
		putchar('{');
		json_domain_keys(s, colon ? (size_t)(colon - s) : n);
		printf(", \"port\": ");
		if (colon)
			json_number(colon + 1, n - (size_t)(colon + 1 - s));
		else
			printf("null");
		putchar('}');
		return;
	default:
		if (n == 1 && *s == '-')
			printf("null");
		else
			json_string(s, n);
	}
}

static void json_cell(const struct table *t, int c, const char *v)
{
	if (!t->list[c]) {
		json_value(t->type[c], v, strlen(v));
		return;
	}
	if (!strcmp(v, "-") || !strcmp(v, "any")) {
		printf("null");
		return;
	}
	putchar('[');
	for (const char *p = v; *p;) {
		size_t n = strcspn(p, ",");
		json_value(t->type[c], p, n);
		p += n;
		if (*p) {
			p++;
			printf(", ");
		}
	}
	putchar(']');
}

static void json_print(const struct table *t, const int *cols, int ncols, bool pretty)
{
	const char *row_sep = pretty ? ",\n  " : ",\n ", *key_sep = pretty ? ",\n    " : ", ";
	printf(pretty && t->nrows ? "[\n  " : "[");
	for (int r = 0; r < t->nrows; r++) {
		printf("%s{%s", r ? row_sep : "", pretty ? "\n    " : "");
		for (int k = 0; k < ncols; k++) {
			int c = cols[k];
			printf("%s", k ? key_sep : "");
			json_string(t->col[c], strlen(t->col[c]));
			printf(": ");
			json_cell(t, c, t->cell[r][c]);
		}
		printf(pretty ? "\n  }" : "}");
	}
	printf(pretty && t->nrows ? "\n]\n" : "]\n");
}

/* ---- tables ------------------------------------------------------------- */

static void text_print(const struct table *t, const int *cols, int ncols)
{
	int *w = calloc((size_t)ncols, sizeof(int));
	for (int k = 0; k < ncols; k++) {
		w[k] = (int)strlen(t->col[cols[k]]);
		for (int r = 0; r < t->nrows; r++)
			if ((int)strlen(t->cell[r][cols[k]]) > w[k])
				w[k] = (int)strlen(t->cell[r][cols[k]]);
	}
	for (int r = -1; r < t->nrows; r++)
		for (int k = 0; k < ncols; k++) {
			int c = cols[k];
			const char *v = r < 0 ? t->col[c] : t->cell[r][c];
			bool right = t->type[c] == 'n' && !t->list[c];
			if (k + 1 == ncols && !right)
				printf("%s\n", v); /* no trailing blanks */
			else
				printf(right ? "%*s%s" : "%-*s%s", w[k], v,
				       k + 1 < ncols ? "  " : "\n");
		}
	free(w);
}

/* The columns to print: st->columns' names in order, or all. */
static int select_columns(const struct table *t, const char *spec, int *cols)
{
	if (!spec) {
		for (int c = 0; c < t->ncols; c++)
			cols[c] = c;
		return t->ncols;
	}
	int n = 0;
	for (const char *p = spec;; p++) {
		size_t len = strcspn(p, ",");
		int c = 0;
		while (c < t->ncols && (strlen(t->col[c]) != len || strncmp(t->col[c], p, len)))
			c++;
		if (c == t->ncols || n == t->ncols) {
			char have[512];
			size_t h = 0;
			for (int i = 0; i < t->ncols && h < sizeof(have); i++)
				h += (size_t)snprintf(have + h, sizeof(have) - h, "%s%s",
						      i ? "," : "", t->col[i]);
			die_usage("-o: no column '%.*s' here (columns: %s)", (int)len, p, have);
		}
		cols[n++] = c;
		p += len;
		if (!*p)
			return n;
	}
}

void table_print(const struct table *t, const struct table_style *st)
{
	int *cols = calloc((size_t)t->ncols, sizeof(int));
	int n = select_columns(t, st->columns, cols);
	if (st->json)
		json_print(t, cols, n, st->pretty);
	else
		text_print(t, cols, n);
	free(cols);
}
