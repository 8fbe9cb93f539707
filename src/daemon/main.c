/* SPDX-License-Identifier: MIT */
/*
 * v4vd: the thin I/O shell around the hypervisor core.  Startup: options,
 * configuration (v4vd.conf: limits, firewall; service.c reads it), the
 * runtime directory and its lock, the control socket and the v4v group's
 * query socket, daemonizing (not under systemd), signals; then the loop
 * (loop.c) until SIGTERM, SIGHUP reloading v4vd.conf, and shutdown.
 */
#define _GNU_SOURCE
#include "v4vd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/types.h>
#include <syslog.h>
#include <unistd.h>

#include "../common/cli.h"
#include "../common/rundir.h"
#include "../common/util.h"

/*
 * Log a firewall rejection, whichever path the send took.  At most
 * LOG_REJECTS lines a second: a domain hammering a closed port must not
 * flood the log; the rest are counted and reported with the next line.
 */
#define LOG_REJECTS 10
static void on_rejected(void *ctx, const struct v4v_addr *src, const struct v4v_addr *dst)
{
	struct v4vd *s = ctx;
	uint64_t now = v4vd_now_ns() / 1000000000u;
	if (now != s->reject_window) {
		s->reject_window = now;
		s->rejects_logged = 0;
	}
	if (s->rejects_logged == LOG_REJECTS) {
		s->rejects_suppressed++;
		return;
	}
	s->rejects_logged++;
	char from[V4V_NAME_MAX + 32], to[V4V_NAME_MAX + 32];
	v4vd_endpoint_name(s, from, sizeof(from), src->domain_id, src->aport);
	v4vd_endpoint_name(s, to, sizeof(to), dst->domain_id, dst->aport);
	if (s->rejects_suppressed)
		logmsg(LOG_NOTICE, "firewall rejected %s -> %s (and %u more before)", from, to,
		       s->rejects_suppressed);
	else
		logmsg(LOG_NOTICE, "firewall rejected %s -> %s", from, to);
	s->rejects_suppressed = 0;
}

static int open_control(struct v4vd *s)
{
	char *lock = s->lock_path;
	char err[400];
	if (v4v_rundir_prepare(s->rundir, err, sizeof(err)) < 0) { /* common/rundir.c */
		logmsg(LOG_ERR, "%s", err);
		return -1;
	}
	snprintf(lock, sizeof(s->lock_path), "%s/v4vd.lock", s->rundir);
	int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		logmsg(LOG_ERR, "%s: %s", lock,
		       errno == EWOULDBLOCK ? "another v4vd is running in this directory"
					    : strerror(errno));
		return -1;
	}
	/* lfd stays open for our lifetime: it is the lock. */
	if (v4v_control_path(s->ctl_path, sizeof(s->ctl_path), s->rundir) < 0) {
		logmsg(LOG_ERR, "runtime dir path too long: %s", s->rundir);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, s->ctl_path);
	unlink(s->ctl_path);
	mode_t old = umask(0077); /* the control socket is the admin's: 0600 */
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		logmsg(LOG_ERR, "cannot bind %s: %s", s->ctl_path, strerror(errno));
		return -1;
	}
	s->ctl_listen = (struct fdent){.kind = FD_CONTROL_LISTEN, .fd = fd};
	return v4vd_ep_add(s, &s->ctl_listen);
}

/* Last of the set-up: only now can a client connect (until then it is
 * refused, as if v4vd were not running), so nobody sees the runtime
 * directory before open_query() has given it its final mode. */
static int control_listen(struct v4vd *s)
{
	if (listen(s->ctl_listen.fd, 64) == 0)
		return 0;
	logmsg(LOG_ERR, "cannot listen on %s: %s", s->ctl_path, strerror(errno));
	return -1;
}

/* query_group: a name or a gid; "" is the default, v4v if that group
 * exists; "none" turns the query socket off.  1: a group, 0: none. */
static int query_group(struct v4vd *s, const char *spec)
{
	const char *name = *spec ? spec : V4VD_QUERY_GROUP;
	uint64_t v;
	if (strcmp(spec, "none") == 0)
		return 0;
	struct group *g = getgrnam(name);
	if (g) {
		s->query_gid = g->gr_gid;
		return 1;
	}
	if (v4v_parse_u64(name, 1, 4294967294u, &v)) {
		s->query_gid = (gid_t)v;
		return 1;
	}
	if (!*spec)
		return 0; /* no v4v group: no query socket */
	logmsg(LOG_ERR, "query_group '%s': no such group", spec);
	return -1;
}

/*
 * The query socket: listings only (ctl.c), for the members of
 * query_group.  The runtime directory becomes 0710 and that group's, so
 * they can reach the socket but not list, create or remove anything there;
 * the control socket stays 0600, the admin's (docs/SECURITY.md).
 */
static int open_query(struct v4vd *s, const char *group)
{
	int g = query_group(s, group);
	if (g <= 0) {
		/* None (any more): what an earlier run opened is closed again. */
		char stale[160];
		snprintf(stale, sizeof(stale), "%s/query", s->rundir);
		unlink(stale);
		if (g == 0 && chmod(s->rundir, 0700) < 0) {
			logmsg(LOG_ERR, "runtime dir %s: chmod 0700: %s", s->rundir,
			       strerror(errno));
			return -1;
		}
		return g;
	}
	if (snprintf(s->query_path, sizeof(s->query_path), "%s/query", s->rundir) >=
	    (int)sizeof(s->query_path)) {
		logmsg(LOG_ERR, "runtime dir path too long: %s", s->rundir);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, s->query_path);
	unlink(s->query_path);
	mode_t old = umask(0077); /* created 0600, opened to the group below */
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chown(s->query_path, (uid_t)-1, s->query_gid) < 0 ||
	    chmod(s->query_path, 0660) < 0 || chown(s->rundir, (uid_t)-1, s->query_gid) < 0 ||
	    chmod(s->rundir, 0710) < 0 || listen(fd, 64) < 0) {
		logmsg(LOG_ERR, "cannot set up the query socket %s (group %u): %s", s->query_path,
		       (unsigned)s->query_gid, strerror(errno));
		return -1;
	}
	s->query_listen = (struct fdent){.kind = FD_CONTROL_LISTEN, .fd = fd};
	return v4vd_ep_add(s, &s->query_listen);
}

/*
 * Whether gid is among the peer's supplementary groups (SO_PEERGROUPS),
 * however many it has, up to the kernel's NGROUPS_MAX.  Past what the
 * buffer on the stack holds, the kernel says ERANGE and how many bytes
 * they take; they are the peer's credentials at connect, fixed, so one
 * buffer of that size holds them.
 */
static bool peer_in_group(int fd, gid_t gid)
{
	gid_t small[256], *g = small;
	socklen_t len = sizeof(small);
	int r = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len);
	if (r < 0 && errno == ERANGE && len > sizeof(small) && len <= NGROUPS_MAX * sizeof(gid_t) &&
	    (g = malloc(len)))
		r = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len);
	bool in = false;
	for (unsigned i = 0; r == 0 && i < len / sizeof(gid_t); i++)
		in = in || g[i] == gid;
	if (g != small)
		free(g);
	return in;
}

/* A query client: root, v4vd's uid, or a member of query_group (its
 * primary group, or one of its groups as the kernel reports them). */
static bool query_peer_ok(struct v4vd *s, int fd, const struct ucred *cr)
{
	if (cr->uid == 0 || cr->uid == geteuid() || cr->gid == s->query_gid)
		return true;
	return peer_in_group(fd, s->query_gid);
}

void v4vd_ctl_accept(struct v4vd *s, int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE)
			v4vd_accept_shed(s, lfd); /* else it stays queued: a busy loop */
		return;
	}
	struct ucred cr;
	socklen_t len = sizeof(cr);
	bool query = lfd == s->query_listen.fd;
	if (query && s->nquery >= QUERY_CONNS_MAX) {
		close(fd); /* readers are not the admin: they may not hoard v4vd's fds */
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
	    (query ? !query_peer_ok(s, fd, &cr) : cr.uid != 0 && cr.uid != geteuid())) {
		logmsg(LOG_WARNING, "%s: refused uid %u", query ? "query" : "control",
		       (unsigned)cr.uid);
		close(fd);
		return;
	}
	/* Admin clients are trusted to be brief; never let one hang v4vd. */
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct fdent *e = v4vd_ctl_conn(fd, query); /* read without blocking (ctl.c) */
	if (!e) {
		close(fd);
		return;
	}
	if (v4vd_ep_add(s, e) < 0) {
		close(fd);
		free(e);
	} else if (query) {
		s->nquery++; /* ctl.c's ctl_close counts it out */
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: v4vd [--runtime-dir DIR] [--foreground] [--config FILE]\n"
		"  --runtime-dir DIR  control socket directory (default: $V4V_RUNTIME_DIR,\n"
		"                     /run/v4v for root, else $XDG_RUNTIME_DIR/v4v)\n"
		"  --foreground       stay attached, log to stderr (default: daemonize, syslog)\n"
		"  --config FILE      limits and firewall rules, see v4vd.conf(5)\n"
		"                     (default: " V4VD_CONFIG_DEFAULT " if it exists)\n"
		"  --help, --version  print this usage, or the version, and exit\n");
}

static int daemonize(void)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		char c;
		close(p[1]);
		/* Exit once the child says it is ready, with its verdict. */
		_exit(read(p[0], &c, 1) == 1 && c == 'y' ? 0 : 1);
	}
	close(p[0]);
	setsid();
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		if (null > 2)
			close(null);
	}
	return p[1];
}

int main(int argc, char **argv)
{
	/* clang-format off */
	static const struct option opts[] = {
	    {"runtime-dir", required_argument, NULL, 'r'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	/* clang-format on */
	static struct v4vd s;
	static struct v4v_config cfg;
	char dir[256];
	const char *config = NULL;
	int c;

	v4vd_config_defaults(&cfg);
	s.rundir = NULL;
	s.reserve_fd = -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:fc:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'r': s.rundir = optarg; break;
		case 'f': s.foreground = true; break;
		case 'c': config = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': v4v_print_version("v4vd"); return 0;
		default: v4v_option_error("v4vd", c, argv);
		}
	}
	if (optind != argc)
		v4v_usage_error("v4vd", "unexpected argument '%s'", argv[optind]);
	if (!s.rundir) {
		char err[300];
		if (v4v_rundir_default(dir, sizeof(dir), err, sizeof(err)) < 0) {
			fprintf(stderr, "v4vd: %s\n", err);
			return 1;
		}
		s.rundir = dir;
	}
	s.config_path = config ? config : V4VD_CONFIG_DEFAULT;
	/* The default file is optional; but one that was there at start must
	 * be there at a reload: a file gone (a package upgrade, an edit that
	 * renames) must not reload the defaults and so flush the firewall. */
	s.config_required = config != NULL || access(s.config_path, F_OK) == 0;
	char err[512];
	if (v4vd_config_read(s.config_path, s.config_required, &cfg, err, sizeof(err)) < 0) {
		logmsg(LOG_ERR, "%s", err);
		return 1;
	}
	snprintf(s.query_group_conf, sizeof(s.query_group_conf), "%s", cfg.query_group);
	s.query_listen.fd = -1;
	v4vd_principal_init(&s, &cfg);
	s.fds_per_domain = cfg.fds_per_domain;
	v4vd_reserve_fd(&s);

	static const struct hv_ops ops = {
	    .signal = v4vd_on_signal,
	    .ring_signal = v4vd_on_ring_signal,
	    .ring_blocked = v4vd_on_ring_blocked,
	    .ring_space = v4vd_on_ring_space,
	    .unmap = v4vd_on_unmap,
	    .tx_ready = v4vd_on_tx_ready,
	    .rejected = on_rejected,
	};
	s.hv = hv_new(&cfg.lim, &ops, &s);
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!s.hv || s.epfd < 0) {
		logmsg(LOG_ERR, "out of resources");
		return 1;
	}
	hv_domain_auto_max(s.hv, (uint16_t)v4vd_uid_domids(&s)); /* ids with a uid */
	v4vd_config_apply(&s, &cfg);

	/* Signals are blocked before anyone can see the control socket: a
	 * SIGTERM from a client that saw it is then read from the signalfd
	 * (made below, after a fork; blocked signals wait pending), never
	 * the default action that would skip the cleanup. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP); /* reload v4vd.conf (service.c) */
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if (open_control(&s) < 0 || open_query(&s, cfg.query_group) < 0 || control_listen(&s) < 0)
		return 1;
	int ready = -1;
	if (!s.foreground && !v4vd_under_systemd()) { /* systemd: it tracks us as we are */
		ready = daemonize();
		v4vd_log_syslog();
	}
	/* After the fork: a signalfd wakes epoll only for its creator. */
	signal(SIGPIPE, SIG_IGN);
	s.sigfd = (struct fdent){.kind = FD_SIGNAL,
				 .fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)};
	v4vd_ep_add(&s, &s.sigfd);

	logmsg(LOG_INFO, "listening on %s%s%s (policy %s, %u rules)", s.ctl_path,
	       s.query_listen.fd >= 0 ? " and " : "", s.query_listen.fd >= 0 ? s.query_path : "",
	       v4v_action_name(cfg.policy), cfg.nrules);
	v4vd_notify("READY=1");
	if (ready >= 0) {
		if (write(ready, "y", 1) < 0) { /* parent gone: carry on */
		}
		close(ready);
	}
	v4vd_run(&s);

	v4vd_notify("STOPPING=1");
	logmsg(LOG_INFO, "shutting down");
	for (unsigned i = 0; i <= V4V_DOMID_MAX; i++)
		if (s.doms[i])
			v4vd_domain_destroy(&s, s.doms[i]);
	hv_free(s.hv);
	v4vd_reap(&s);
	v4vd_free_dead(&s);
	unlink(s.ctl_path);
	if (s.query_listen.fd >= 0)
		unlink(s.query_path);
	unlink(s.lock_path);
	return 0;
}
