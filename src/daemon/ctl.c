/* SPDX-License-Identifier: MIT */
/*
 * The control socket: one framed text command in, one framed reply out.
 *
 * Replies start with "ok\n" or "error: <sentence>\n".  Listings follow "ok"
 * as tab-separated rows under a header whose columns are typed, so v4vctl
 * can print tables or JSON without knowing each command: NAME:n a number,
 * NAME:s a string, NAME:a an address ("ID(NAME):PORT", any part "any", the
 * name left out when the domain has none), a '*' after the type a
 * comma-separated list; "-" is an absent value (src/tools/tool.h).
 * `domain create` and `domain open` attach a domain fd to the reply
 * (SCM_RIGHTS).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "../common/cli.h"
#include "../common/util.h"
#include "v4vd.h"

#define CTL_REQ_MAX 4096u

struct out {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		size_t room = o->cap - o->len;
		va_start(ap, fmt);
		int n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (o->buf && (size_t)n < room) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap ? o->cap * 2 : 4096;
		while (cap < o->len + (size_t)n + 1)
			cap *= 2;
		char *b = realloc(o->buf, cap);
		if (!b) {
			o->oom = true;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
}

static int fail(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct out *o, const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o->len = 0;
	outf(o, "error: %s\n", msg);
	return -1;
}

static void dom_name(struct v4vd *s, uint16_t domid, char *buf, size_t cap)
{
	struct hv_domain *d = hv_domain_find(s->hv, domid);
	snprintf(buf, cap, "%s", d && *hv_domain_name(d) ? hv_domain_name(d) : "-");
}

void v4vd_endpoint_name(struct v4vd *s, char *buf, size_t cap, uint16_t dom, uint32_t port)
{
	char d[V4V_NAME_MAX + 16] = "any";
	struct hv_domain *hd = dom == V4V_DOMID_ANY ? NULL : hv_domain_find(s->hv, dom);
	if (hd && *hv_domain_name(hd))
		snprintf(d, sizeof(d), "%u(%s)", dom, hv_domain_name(hd));
	else if (dom != V4V_DOMID_ANY)
		snprintf(d, sizeof(d), "%u", dom);
	if (port == V4V_PORT_ANY)
		snprintf(buf, cap, "%s", d);
	else
		snprintf(buf, cap, "%s:%u", d, port);
}

/* ---- listings -------------------------------------------------------- */

static int cmd_domains(struct v4vd *s, int argc, char **argv, struct out *o, int *fd)
{
	(void)argc, (void)argv, (void)fd;
	outf(o, "ok\ndomid:n\tname:s\tuid:n\tprocs:n\trings:n\tring_bytes:n\ttx_msgs:n\ttx_bytes:n"
		"\trx_msgs:n\trx_bytes:n\teagain:n\trejected:n\tdropped:n\treq_us:n\n");
	for (struct hv_domain *d = hv_domain_next(s->hv, NULL); d; d = hv_domain_next(s->hv, d)) {
		const struct hv_stats *st = hv_domain_stats(d);
		uint32_t uid = 0;
		v4vd_domain_uid(s, hv_domain_id(d), &uid); /* every live domain has one */
		const struct ddom *dd = s->doms[hv_domain_id(d)];
		outf(o,
		     "%u\t%s\t%u\t%u\t%u\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\n",
		     hv_domain_id(d), *hv_domain_name(d) ? hv_domain_name(d) : "-", uid,
		     hv_domain_nclients(d), hv_domain_nrings(d),
		     (unsigned long long)hv_domain_ring_bytes(d), (unsigned long long)st->tx_msgs,
		     (unsigned long long)st->tx_bytes, (unsigned long long)st->rx_msgs,
		     (unsigned long long)st->rx_bytes, (unsigned long long)st->eagain,
		     (unsigned long long)st->rejected, (unsigned long long)st->dropped,
		     (unsigned long long)(dd ? dd->req_ns / 1000 : 0));
	}
	return 0;
}

static int cmd_rings(struct v4vd *s, int argc, char **argv, struct out *o, int *fd)
{
	(void)argc, (void)argv, (void)fd;
	outf(o, "ok\ndomid:n\tname:s\taport:n\tpartner:n\tlen:n\trx:n\ttx:n\twaiters:n"
		"\tstate:s\tmsgs:n\tbytes:n\teagain:n\tpartner_name:s\n");
	for (struct hv_ring *r = hv_ring_next(s->hv, NULL); r; r = hv_ring_next(s->hv, r)) {
		struct hv_ring_info ri;
		char name[V4V_NAME_MAX], partner[8] = "any", pname[V4V_NAME_MAX];
		hv_ring_info(r, &ri);
		dom_name(s, ri.domid, name, sizeof(name));
		dom_name(s, ri.partner, pname, sizeof(pname)); /* "-" for any */
		if (ri.partner != V4V_DOMID_ANY)
			snprintf(partner, sizeof(partner), "%u", ri.partner);
		/* (the partner's name last: the columns before it are read by
		 * position, tests/argo.c) */
		outf(o, "%u\t%s\t%u\t%s\t%u\t%u\t%u\t%u\t%s\t%llu\t%llu\t%llu\t%s\n", ri.domid,
		     name, ri.aport, partner, ri.len, ri.rx, ri.tx, ri.waiters,
		     ri.broken	? "broken"
		     : ri.spare ? "spare"
				: "ok",
		     (unsigned long long)ri.stats.rx_msgs, (unsigned long long)ri.stats.rx_bytes,
		     (unsigned long long)ri.stats.eagain, pname);
	}
	return 0;
}

static int cmd_names(struct v4vd *s, int argc, char **argv, struct out *o, int *fd)
{
	(void)argc, (void)argv, (void)fd;
	struct hv_name_info ni;
	outf(o, "ok\ndomid:n\tdomain:s\tservice:s\tport:n\tvisible_to:n*\n");
	for (unsigned i = 0; hv_name_at(s->hv, i, &ni) == 0; i++) {
		char name[V4V_NAME_MAX], acl[HV_NAME_ACL_MAX * 6 + 4] = "any";
		dom_name(s, ni.domid, name, sizeof(name));
		size_t n = 0;
		for (unsigned k = 0; k < ni.nacl; k++)
			n += (size_t)snprintf(acl + n, sizeof(acl) - n, "%s%u", k ? "," : "",
					      ni.acl[k]);
		outf(o, "%u\t%s\t%s\t%u\t%s\n", ni.domid, name, ni.service, ni.port, acl);
	}
	return 0;
}

static unsigned count_fds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory stream's own fd */
}

static int cmd_stats(struct v4vd *s, int argc, char **argv, struct out *o, int *fd)
{
	(void)argc, (void)argv, (void)fd;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	unsigned ndom = 0, nring = 0;
	for (struct hv_domain *d = hv_domain_next(s->hv, NULL); d; d = hv_domain_next(s->hv, d))
		ndom++;
	for (struct hv_ring *r = hv_ring_next(s->hv, NULL); r; r = hv_ring_next(s->hv, r))
		nring++;
	outf(o, "ok\ndomains:n\tprocs:n\trings:n\tmapped_bytes:n\trequests:n\tbad_requests:n"
		"\tfw_rules:n\tpolicy:s\tcpu_user_ms:n\tcpu_sys_ms:n\tmax_rss_kb:n\tfds:n\tpid:n"
		"\tremoval_work:n\tfds_lost:n\tshed:n\tpoll_rounds:n\tpoll_work:n\tcalls_shm:n"
		"\tkicks_shm:n\n");
	outf(o,
	     "%u\t%u\t%u\t%llu\t%llu\t%llu\t%u\t%s\t%ld\t%ld\t%ld\t%u\t%d\t%llu\t%llu\t%llu\t%"
	     "llu\t%llu\t%llu\t%llu\n",
	     ndom, s->nchans, nring, (unsigned long long)s->mapped_bytes,
	     (unsigned long long)s->requests, (unsigned long long)hv_bad_requests(s->hv),
	     hv_fw_count(s->hv), v4v_action_name(hv_fw_policy(s->hv)),
	     ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000,
	     ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000, ru.ru_maxrss, count_fds(),
	     (int)getpid(), (unsigned long long)hv_removal_work(s->hv),
	     (unsigned long long)s->fds_lost, (unsigned long long)s->shed,
	     (unsigned long long)hv_poll_rounds(s->hv), (unsigned long long)hv_poll_work(s->hv),
	     (unsigned long long)s->calls_shm, (unsigned long long)s->kicks_shm);
	return 0;
}

/* ---- domains --------------------------------------------------------- */

/* The reply to create and open: the domain and the uid to run it as. */
static void reply_domain(struct v4vd *s, struct ddom *dd, struct out *o)
{
	uint32_t uid = 0;
	v4vd_domain_uid(s, hv_domain_id(dd->hd), &uid); /* checked at creation */
	outf(o, "ok\ndomid:n\tname:s\tuid:n\n%u\t%s\t%u\n", hv_domain_id(dd->hd),
	     *hv_domain_name(dd->hd) ? hv_domain_name(dd->hd) : "-", uid);
}

/* domain create (DOMID|auto) (NAME|-) (fd|persistent) */
static int domain_create(struct v4vd *s, int argc, char **argv, struct out *o, int *fd)
{
	uint16_t v = V4V_DOMID_ANY;
	char bad[64];
	struct ddom *dd;
	if (argc != 3 || (strcmp(argv[2], "fd") && strcmp(argv[2], "persistent")))
		return fail(o, "usage: domain create DOMID|auto NAME|- fd|persistent");
	if (strcmp(argv[0], "auto") && !v4v_domid_parse(argv[0], &v))
		return fail(o, "%s", v4v_domid_bad(bad, sizeof(bad), argv[0]));
	const char *name = strcmp(argv[1], "-") ? argv[1] : NULL;
	if (name && !hv_name_ok(name))
		return fail(o,
			    "bad domain name '%s' (1-31 of A-Z a-z 0-9 . _ -, not starting "
			    "with a digit or -)",
			    name);
	int e = v4vd_domain_create(s, v, name, argv[2][0] == 'p', &dd);
	if (e == -EEXIST)
		return fail(o, "domain %s already exists",
			    name && (v == V4V_DOMID_ANY || hv_domain_by_name(s->hv, name))
				? name
				: argv[0]);
	if (e == -ENOSPC)
		return fail(o, "too many domains (limit %u)", hv_limits(s->hv)->domains);
	if (e == -EUSERS)
		return fail(o,
			    "no uid left for the domain: domain_uids %u-%u gives uids to domids "
			    "0..%u only (see v4vd.conf(5))",
			    s->uid_first, s->uid_last, v4vd_uid_domids(s));
	if (e)
		return fail(o, "cannot create domain: %s", strerror(-e));
	if (!dd->persistent) {
		*fd = v4vd_domain_hold(s, dd);
		if (*fd < 0) {
			e = *fd;
			v4vd_domain_destroy(s, dd);
			return fail(o, "cannot create domain channel: %s", strerror(-e));
		}
	}
	reply_domain(s, dd, o);
	return 0;
}

/* DOM names no live domain: a number out of range says so as every tool does. */
static int no_domain(struct out *o, const char *dom)
{
	char bad[64];
	uint16_t id;
	if (*dom >= '0' && *dom <= '9' && !v4v_domid_parse(dom, &id))
		return fail(o, "%s", v4v_domid_bad(bad, sizeof(bad), dom));
	return fail(o, "no domain '%s'", dom);
}

static int domain_open(struct v4vd *s, int argc, char **argv, struct out *o, int *fd)
{
	struct ddom *dd = argc == 1 ? v4vd_domain_lookup(s, argv[0]) : NULL;
	if (argc != 1)
		return fail(o, "usage: domain open DOM");
	if (!dd)
		return no_domain(o, argv[0]);
	*fd = v4vd_domain_hold(s, dd);
	if (*fd < 0)
		return fail(o, "cannot open domain channel: %s", strerror(-*fd));
	reply_domain(s, dd, o);
	return 0;
}

static int domain_destroy(struct v4vd *s, int argc, char **argv, struct out *o, int *fd)
{
	(void)fd;
	struct ddom *dd = argc == 1 ? v4vd_domain_lookup(s, argv[0]) : NULL;
	if (argc != 1)
		return fail(o, "usage: domain destroy DOM");
	if (!dd)
		return no_domain(o, argv[0]);
	v4vd_domain_destroy(s, dd);
	outf(o, "ok\n");
	return 0;
}

/* ---- firewall -------------------------------------------------------- */

static int fw_list(struct v4vd *s, int argc, char **argv, struct out *o, int *fd)
{
	(void)argc, (void)argv, (void)fd;
	outf(o, "ok\nnum:n\tsrc:a\tdst:a\taction:s\thits:n\n");
	for (unsigned i = 0; i < hv_fw_count(s->hv); i++) {
		const struct hv_fw_rule *r = hv_fw_rule(s->hv, i);
		/* A rule by name is kept as a name; one by id shows the name
		 * that id has now beside it. */
		char src[V4V_NAME_MAX + 32], dst[V4V_NAME_MAX + 32];
		if (*r->src_name)
			v4v_endpoint_format(src, sizeof(src), r->src_dom, r->src_name, r->src_port);
		else
			v4vd_endpoint_name(s, src, sizeof(src), r->src_dom, r->src_port);
		if (*r->dst_name)
			v4v_endpoint_format(dst, sizeof(dst), r->dst_dom, r->dst_name, r->dst_port);
		else
			v4vd_endpoint_name(s, dst, sizeof(dst), r->dst_dom, r->dst_port);
		outf(o, "%u\t%s\t%s\t%s\t%llu\n", i + 1, src, dst, v4v_action_name(r->action),
		     (unsigned long long)r->hits);
	}
	outf(o, "-\tany\tany\t%s\t0\n", v4v_action_name(hv_fw_policy(s->hv)));
	return 0;
}

static int fw_put(struct v4vd *s, unsigned pos, int argc, char **argv, struct out *o)
{
	struct hv_fw_rule r;
	char err[200];
	if (v4v_rule_parse(argc, argv, &r, err, sizeof(err)) != 0)
		return fail(o, "%s", err);
	int e = hv_fw_insert(s->hv, pos, &r);
	if (e == -ENOSPC)
		return fail(o, "firewall full (%u rules)", HV_FW_MAX_RULES);
	if (e)
		return fail(o, "cannot insert rule: %s", strerror(-e));
	logmsg(LOG_INFO, "firewall: rule %u added", pos + 1);
	outf(o, "ok\n");
	return 0;
}

static int fw_add(struct v4vd *s, int argc, char **argv, struct out *o, int *fd)
{
	(void)fd;
	return fw_put(s, hv_fw_count(s->hv), argc, argv, o);
}

static bool rule_num(struct v4vd *s, const char *arg, unsigned extra, unsigned *pos)
{
	uint64_t v;
	if (!v4v_parse_u64(arg, 1, hv_fw_count(s->hv) + extra, &v))
		return false;
	*pos = (unsigned)v - 1;
	return true;
}

static int fw_insert(struct v4vd *s, int argc, char **argv, struct out *o, int *fd)
{
	(void)fd;
	unsigned pos;
	if (argc < 1)
		return fail(o, "usage: fw insert N RULE");
	if (!rule_num(s, argv[0], 1, &pos))
		return fail(o, "bad rule number '%s' (1..%u)", argv[0], hv_fw_count(s->hv) + 1);
	return fw_put(s, pos, argc - 1, argv + 1, o);
}

static int fw_delete(struct v4vd *s, int argc, char **argv, struct out *o, int *fd)
{
	(void)fd;
	unsigned pos;
	if (argc != 1)
		return fail(o, "usage: fw delete N");
	if (!rule_num(s, argv[0], 0, &pos))
		return fail(o, "no rule '%s' (there are %u)", argv[0], hv_fw_count(s->hv));
	hv_fw_delete(s->hv, pos);
	outf(o, "ok\n");
	return 0;
}

static int fw_flush(struct v4vd *s, int argc, char **argv, struct out *o, int *fd)
{
	(void)fd, (void)argv;
	if (argc != 0)
		return fail(o, "usage: fw flush");
	hv_fw_flush(s->hv);
	outf(o, "ok\n");
	return 0;
}

static int fw_policy(struct v4vd *s, int argc, char **argv, struct out *o, int *fd)
{
	(void)fd;
	enum hv_fw_action a;
	if (argc != 1 || v4v_action_parse(argv[0], &a) != 0)
		return fail(o, "usage: fw policy accept|reject|drop");
	hv_fw_set_policy(s->hv, a);
	outf(o, "ok\n");
	return 0;
}

/* ---- dispatch -------------------------------------------------------- */

typedef int (*cmd_fn)(struct v4vd *, int, char **, struct out *, int *);
static const struct {
	const char *word1, *word2;
	cmd_fn fn;
	bool query; /* a listing the query socket serves too */
} commands[] = {
    {"domains", NULL, cmd_domains, true},
    {"rings", NULL, cmd_rings, true},
    {"names", NULL, cmd_names, true},
    {"stats", NULL, cmd_stats, true},
    {"domain", "create", domain_create, false},
    {"domain", "open", domain_open, false},
    {"domain", "destroy", domain_destroy, false},
    {"fw", "list", fw_list, false},
    {"fw", "add", fw_add, false},
    {"fw", "insert", fw_insert, false},
    {"fw", "delete", fw_delete, false},
    {"fw", "flush", fw_flush, false},
    {"fw", "policy", fw_policy, false},
};

static void run_command(struct v4vd *s, bool query, char *line, struct out *o, int *fd)
{
	char *argv[64];
	int argc = v4v_tokenize(line, argv, (int)ARRAY_SIZE(argv));
	if (argc < 0) {
		fail(o, "too many words");
		return;
	}
	if (argc == 0) {
		fail(o, "empty command");
		return;
	}
	for (unsigned i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(argv[0], commands[i].word1) != 0)
			continue;
		if (query && !commands[i].query) {
			fail(o,
			     "'%s' needs the control socket (the admin's); the query socket only "
			     "lists domains, rings, names and stats",
			     argv[0]);
			return;
		}
		if (!commands[i].word2) {
			if (argc == 1)
				commands[i].fn(s, argc - 1, argv + 1, o, fd);
			else
				fail(o, "'%s' takes no arguments", argv[0]);
			return;
		}
		if (argc >= 2 && strcmp(argv[1], commands[i].word2) == 0) {
			commands[i].fn(s, argc - 2, argv + 2, o, fd);
			return;
		}
	}
	fail(o, "unknown command '%s%s%s'", argv[0], argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
}

/*
 * A control connection never blocks the loop, either way: what has arrived
 * of its frame (a 32-bit length, then the command) is kept until the rest
 * comes, and what its reader has not taken of a reply is kept until it
 * does (EPOLLOUT), its next command not read meanwhile.  So a client that
 * stalls mid-command or reads its replies a trickle at a time (a query
 * client is not the admin) holds up nobody else.  One command per
 * connection per round.
 */
struct ctlconn {
	struct fdent e;
	bool query;   /* from the query socket: listings only */
	uint32_t len; /* the frame's length word, once got >= 4 */
	size_t got;   /* bytes of the frame received so far */
	char *buf;    /* the command, len + 1 bytes */
	char *out;    /* the rest of a reply its reader has not taken */
	size_t out_len, out_off;
};

struct fdent *v4vd_ctl_conn(int fd, bool query)
{
	struct ctlconn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->e = (struct fdent){.kind = FD_CONTROL, .fd = fd};
	c->query = query;
	return &c->e;
}

static void ctl_close(struct v4vd *s, struct ctlconn *c)
{
	if (c->query)
		s->nquery--;
	free(c->buf);
	free(c->out);
	c->buf = c->out = NULL;
	v4vd_bury(s, &c->e);
}

/* Read what is there; true when the whole frame is in. */
static bool ctl_read(struct v4vd *s, struct ctlconn *c)
{
	for (;;) {
		bool head = c->got < sizeof(c->len);
		char *p = head ? (char *)&c->len + c->got : c->buf + (c->got - sizeof(c->len));
		size_t want = head ? sizeof(c->len) - c->got : c->len + sizeof(c->len) - c->got;
		if (want == 0)
			return true;
		ssize_t r = recv(c->e.fd, p, want, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return false;
		if (r <= 0) {
			ctl_close(s, c);
			return false;
		}
		c->got += (size_t)r;
		if (head && c->got == sizeof(c->len)) {
			if (c->len > CTL_REQ_MAX || !(c->buf = malloc((size_t)c->len + 1))) {
				ctl_close(s, c);
				return false;
			}
		}
	}
}

static void ctl_watch(struct v4vd *s, struct ctlconn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = &c->e};
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->e.fd, &ev) < 0)
		ctl_close(s, c);
}

/* Send what is left of the reply without blocking; false when the
 * connection is gone (closed here). */
static bool ctl_flush(struct v4vd *s, struct ctlconn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t r = send(c->e.fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			ctl_watch(s, c, EPOLLOUT); /* the rest when it reads */
			return true;
		}
		if (r <= 0) {
			ctl_close(s, c);
			return false;
		}
		c->out_off += (size_t)r;
	}
	bool was_waiting = c->out != NULL;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	if (was_waiting)
		ctl_watch(s, c, EPOLLIN); /* taken: the next command */
	return true;
}

/* Queue a reply frame: its length word (with the fd, if any), then body. */
static void ctl_reply(struct v4vd *s, struct ctlconn *c, char *body, size_t n, int fd)
{
	uint32_t len = (uint32_t)n;
	/* The length word goes at once: the reader took the last reply whole,
	 * so there is room for it; not taking even that is a hang-up. */
	if (v4v_send_fds(c->e.fd, &len, sizeof(len), &fd, fd >= 0 ? 1 : 0, MSG_DONTWAIT) !=
	    sizeof(len)) {
		free(body);
		ctl_close(s, c);
		return;
	}
	c->out = body;
	c->out_len = n;
	c->out_off = 0;
	ctl_flush(s, c);
}

void ctl_handle(struct v4vd *s, struct fdent *e)
{
	struct ctlconn *c = (struct ctlconn *)e;
	int fd = -1;
	struct out o = {0};

	if (c->out) { /* writable: more of the reply it is reading */
		ctl_flush(s, c);
		return;
	}
	if (!ctl_read(s, c))
		return;
	char *req = c->buf;
	uint32_t n = c->len;
	req[n] = '\0';
	c->buf = NULL;
	c->got = 0;
	if (strlen(req) != n)
		fail(&o, "command contains a NUL byte");
	else
		run_command(s, c->query, req, &o, &fd);
	free(req);
	if (o.oom)
		fail(&o, "out of memory");
	if (!o.buf)
		ctl_close(s, c);
	else
		ctl_reply(s, c, o.buf, o.len, fd); /* takes o.buf */
	if (fd >= 0)
		close(fd); /* the client has its copy now, or never will */
}
