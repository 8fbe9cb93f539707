/* SPDX-License-Identifier: MIT */
/*
 * Domains are principals on the host (docs/SECURITY.md): v4v-run runs each
 * domain's program as the domain's own uid, without groups, with
 * no_new_privs and only the domain fd beyond 0-2, so one domain cannot
 * reach another's processes or the control socket; v4vd and its clients
 * trust only a runtime dir and a control socket of root's or their own.
 *
 * The domain side runs this same binary as a probe (a case not listed in
 * meson.build) under v4v-run, and reports on its stdout.  Cases that
 * switch uids skip (77) when not run as root.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t.h"

#define NOBODY 65534u

static void need_root(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: needs root (switches uids)\n");
		exit(T_SKIP);
	}
}

static const char *bin(const char *tool)
{
	static char path[4][512];
	static unsigned k;
	const char *dir = getenv("V4V_BIN");
	char *p = path[k++ % 4];
	snprintf(p, sizeof(path[0]), "%s/%s", dir ? dir : ".", tool);
	return p;
}

static const char *self(void)
{
	static char exe[512];
	if (!*exe)
		CHECK(readlink("/proc/self/exe", exe, sizeof(exe) - 1) > 0);
	return exe;
}

/* Read one line (without its newline) from fd within ms; false at EOF. */
static bool read_line(int fd, char *buf, size_t cap, int ms)
{
	size_t n = 0;
	while (n + 1 < cap) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		CHECK(poll(&p, 1, ms) == 1);
		ssize_t r = read(fd, buf + n, 1);
		if (r <= 0)
			break;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return n > 0;
}

/* Read fd to EOF into buf (NUL-terminated) within ms. */
static void read_all(int fd, char *buf, size_t cap, int ms)
{
	size_t n = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		CHECK(poll(&p, 1, ms) == 1);
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0 || (n += (size_t)r) == cap - 1)
			break;
	}
	buf[n] = '\0';
}

static int wait_exit(pid_t pid)
{
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Run argv (NULL-terminated) with stdin from in (or /dev/null), stdout to
 * *out and stderr to *err (read ends; either may be NULL to inherit), and
 * fd leak left open across the exec (-1: none).
 */
static pid_t spawn(const char *const *argv, int in, int *out, int *err, int leak)
{
	int po[2], pe[2];
	CHECK(pipe2(po, O_CLOEXEC) == 0 && pipe2(pe, O_CLOEXEC) == 0);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* nothing outlives a failed test */
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		dup2(in >= 0 ? in : null, 0);
		if (out)
			dup2(po[1], 1);
		if (err)
			dup2(pe[1], 2);
		if (leak >= 0)
			fcntl(leak, F_SETFD, 0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	if (out)
		*out = po[0];
	else
		close(po[0]);
	if (err)
		*err = pe[0];
	else
		close(pe[0]);
	return pid;
}

/* v4v-run [opts...] -- <this test> probe */
static pid_t run_probe(const char *const *opts, const char *probe, int in, int *out, int leak)
{
	const char *argv[16] = {bin("v4v-run"), "-q"};
	int n = 2;
	for (; opts && *opts; opts++)
		argv[n++] = *opts;
	argv[n++] = "--";
	argv[n++] = self();
	argv[n++] = probe;
	argv[n] = NULL;
	return spawn(argv, in, out, NULL, leak);
}

/* A connected control socket, left to leak into v4v-run. */
static int control_conn(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control", t_rundir());
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	return s;
}

/* The uid column of domain domid in `domains`. */
static unsigned uid_of(unsigned domid)
{
	char *list = t_ctl("domains");
	unsigned id, uid, found = 0;
	for (char *l = strchr(list, '\n'); l; l = strchr(l + 1, '\n'))
		if (sscanf(l + 1, "%u\t%*s\t%u", &id, &uid) == 2 && id == domid)
			found = uid;
	free(list);
	CHECK(found != 0);
	return found;
}

struct report {
	unsigned uid, gid, euid, egid, domid;
	int groups, nnp, attach;
	char fds[128], domfd[16];
};

static void parse_report(const char *line, struct report *r)
{
	int n = sscanf(line,
		       "uid=%u gid=%u euid=%u egid=%u groups=%d nnp=%d fds=%127s domfd=%15s "
		       "domid=%u attach=%d",
		       &r->uid, &r->gid, &r->euid, &r->egid, &r->groups, &r->nnp, r->fds, r->domfd,
		       &r->domid, &r->attach);
	if (n != 10) {
		fprintf(stderr, "bad probe report: '%s'\n", line);
		exit(1);
	}
}

/* The domain side's report on itself. */
static void probe_report(void)
{
	char fds[128] = "", *sep = "";
	DIR *d = opendir("/proc/self/fd");
	CHECK(d);
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d)) {
			n += (size_t)snprintf(fds + n, sizeof(fds) - n, "%s%s", sep, e->d_name);
			sep = ",";
		}
	closedir(d);
	gid_t groups[64];
	int ng = getgroups(64, groups);
	struct v4v_domain *dom = NULL;
	struct v4v_rx *r = NULL;
	int opened = v4v_open(&dom), attach = opened;
	/* Its own memfd, mapped by v4vd: what every domain process does. */
	if (!attach)
		attach = v4v_ring_register(dom, 80, V4V_DOMID_ANY, 4096, 0, &r);
	const char *dfd = getenv("V4V_DOMAIN_FD");
	printf("uid=%u gid=%u euid=%u egid=%u groups=%d nnp=%d fds=%s domfd=%s domid=%u "
	       "attach=%d\n",
	       (unsigned)getuid(), (unsigned)getgid(), (unsigned)geteuid(), (unsigned)getegid(), ng,
	       prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), fds, dfd ? dfd : "-",
	       attach ? 0 : v4v_domid(dom), attach);
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0) { /* the domain lives while the test looks */
	}
	if (r) /* released, for LeakSanitizer */
		v4v_ring_unregister(r);
	if (!opened)
		v4v_close(dom);
}

/* The domain side: say so, then hold on until stdin closes. */
static void probe_hold(void)
{
	char c;
	printf("ready\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0) {
	}
}

static int errno_of(int r)
{
	return r < 0 ? errno : 0;
}

/* The domain side: go after the process T_VICTIM of another domain. */
static void probe_attack(void)
{
	const char *v = getenv("T_VICTIM"), *dir = getenv("V4V_RUNTIME_DIR");
	char p[128];
	CHECK(v && dir);
	snprintf(p, sizeof(p), "/proc/%s/mem", v);
	int mem = errno_of(open(p, O_RDONLY | O_CLOEXEC));
	snprintf(p, sizeof(p), "/proc/%s/fd", v);
	int fddir = errno_of(open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	snprintf(p, sizeof(p), "/proc/%s/fd/0", v);
	int fd0 = errno_of(open(p, O_RDONLY | O_CLOEXEC));
	snprintf(p, sizeof(p), "/proc/%s/environ", v);
	int env = errno_of(open(p, O_RDONLY | O_CLOEXEC));
	int k = errno_of(kill(atoi(v), SIGKILL));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control", dir);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ctl = errno_of(connect(s, (struct sockaddr *)&sa, sizeof(sa)));
	printf("mem=%d fddir=%d fd0=%d environ=%d kill=%d ctl=%d\n", mem, fddir, fd0, env, k, ctl);
}

/* ---- v4v-run makes the domain a principal ---------------------------- */

static void check_confined(const struct report *r)
{
	char want[64];
	CHECK_EQ(r->attach, 0);
	CHECK_EQ(r->uid, uid_of(r->domid));
	CHECK(r->uid == r->euid && r->uid == r->gid && r->gid == r->egid);
	CHECK_EQ(r->groups, 0);
	CHECK_EQ(r->nnp, 1);
	snprintf(want, sizeof(want), "0,1,2,%s", r->domfd);
	if (strcmp(r->fds, want)) {
		fprintf(stderr, "domain process has fds %s, expected %s\n", r->fds, want);
		exit(1);
	}
}

static void two_domains(void)
{
	need_root();
	t_v4vd_start(NULL);
	int leak = control_conn(); /* a way to the control socket, offered to inherit */
	int out[2], in[2][2];
	pid_t pid[2];
	struct report r[2];
	const char *const names[2][3] = {{"--name", "a", NULL}, {"--name", "b", NULL}};
	for (int i = 0; i < 2; i++) {
		CHECK(pipe2(in[i], O_CLOEXEC) == 0);
		pid[i] = run_probe(names[i], "probe_report", in[i][0], &out[i], leak);
		close(in[i][0]);
	}
	for (int i = 0; i < 2; i++) {
		char line[512];
		CHECK(read_line(out[i], line, sizeof(line), 10000));
		parse_report(line, &r[i]);
		check_confined(&r[i]);
	}
	CHECK(r[0].uid != r[1].uid);
	CHECK(r[0].uid != 0 && r[1].uid != 0);
	for (int i = 0; i < 2; i++) {
		close(in[i][1]);
		CHECK_EQ(wait_exit(pid[i]), 0);
	}
	close(leak);
}

static void isolation(void)
{
	need_root();
	t_v4vd_start(NULL);
	int in[2], bout, aout;
	char line[256], victim[16];
	CHECK(pipe2(in, O_CLOEXEC) == 0);
	const char *const b_opts[] = {"--name", "b", NULL}, *const a_opts[] = {"--name", "a", NULL};
	pid_t b = run_probe(b_opts, "probe_hold", in[0], &bout, -1);
	close(in[0]);
	CHECK(read_line(bout, line, sizeof(line), 10000) && strcmp(line, "ready") == 0);
	snprintf(victim, sizeof(victim), "%d", (int)b);
	setenv("T_VICTIM", victim, 1);
	pid_t a = run_probe(a_opts, "probe_attack", -1, &aout, -1);
	CHECK(read_line(aout, line, sizeof(line), 10000));
	CHECK_EQ(wait_exit(a), 0);
	int mem, fddir, fd0, env, k, ctl;
	CHECK(sscanf(line, "mem=%d fddir=%d fd0=%d environ=%d kill=%d ctl=%d", &mem, &fddir, &fd0,
		     &env, &k, &ctl) == 6);
	CHECK_EQ(mem, EACCES);
	CHECK_EQ(fddir, EACCES);
	CHECK_EQ(fd0, EACCES);
	CHECK_EQ(env, EACCES);
	CHECK_EQ(k, EPERM);
	CHECK_EQ(ctl, EACCES);
	int st;
	CHECK_EQ(waitpid(b, &st, WNOHANG), 0); /* b is unharmed */
	close(in[1]);
	CHECK_EQ(wait_exit(b), 0);
}

static void join(void)
{
	need_root();
	t_v4vd_start(NULL);
	char *r = t_ctl("domain create auto j persistent");
	unsigned domid, uid;
	CHECK(sscanf(strchr(r, '\n') + 1, "%u\tj\t%u", &domid, &uid) == 2);
	free(r);
	CHECK_EQ(uid, uid_of(domid));
	const char *const opts[] = {"--join", "j", NULL};
	for (int i = 0; i < 2; i++) { /* each process of the domain is the same principal */
		int out;
		char line[512];
		struct report rep;
		pid_t p = run_probe(opts, "probe_report", -1, &out, -1);
		CHECK(read_line(out, line, sizeof(line), 10000));
		parse_report(line, &rep);
		check_confined(&rep);
		CHECK_EQ(rep.uid, uid);
		CHECK_EQ(rep.domid, domid);
		CHECK_EQ(wait_exit(p), 0);
		close(out);
	}
	/* ... and v4vctl shows it, in JSON too. */
	char json[8192], want[64];
	const char *const argv[] = {bin("v4vctl"), "-j", "domains", NULL};
	int out;
	pid_t p = spawn(argv, -1, &out, NULL, -1);
	read_all(out, json, sizeof(json), 10000);
	CHECK_EQ(wait_exit(p), 0);
	snprintf(want, sizeof(want), "\"name\": \"j\", \"uid\": %u,", uid);
	if (!strstr(json, want)) {
		fprintf(stderr, "v4vctl -j domains lacks '%s': %s\n", want, json);
		exit(1);
	}
}

static void as_caller(void)
{
	t_v4vd_start(NULL);
	int leak = control_conn(), out;
	char line[512];
	struct report r;
	const char *const opts[] = {"--as-caller", NULL};
	pid_t p = run_probe(opts, "probe_report", -1, &out, leak);
	CHECK(read_line(out, line, sizeof(line), 10000));
	CHECK_EQ(wait_exit(p), 0);
	parse_report(line, &r);
	CHECK_EQ(r.attach, 0);
	CHECK_EQ(r.uid, getuid());
	CHECK_EQ(r.nnp, 1);
	char want[64];
	snprintf(want, sizeof(want), "0,1,2,%s", r.domfd);
	CHECK(strcmp(r.fds, want) == 0); /* still nothing inherited */
	close(leak);
}

/* Without root (here: as nobody), v4v-run refuses and names the opt-out. */
static void needs_root(void)
{
	t_v4vd_start(NULL);
	char err[1024];
	int e;
	fflush(NULL);
	pid_t p = fork();
	CHECK(p >= 0);
	if (p == 0) {
		if (geteuid() == 0 && (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
				       setresuid(NOBODY, NOBODY, NOBODY)))
			_exit(2);
		const char *const argv[] = {bin("v4v-run"), "--", "/bin/true", NULL};
		pid_t q = spawn(argv, -1, NULL, &e, -1);
		read_all(e, err, sizeof(err), 10000);
		int rc = wait_exit(q);
		fprintf(stderr, "%s", err);
		char *nl = strchr(err, '\n');
		_exit(rc == 1 && strstr(err, "--as-caller") && nl && !nl[1] ? 0 : 3);
	}
	CHECK_EQ(wait_exit(p), 0);
	CHECK_EQ(t_ctl_rows("domains"), 0); /* refused before asking v4vd */
}

/* ---- domain_uids -------------------------------------------------------- */

static const char *write_conf(const char *text)
{
	static char path[160];
	snprintf(path, sizeof(path), "/tmp/v4v-principal-conf-XXXXXX");
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void uid_exhausted(void)
{
	const char *conf = write_conf("domain_uids 70000-70001\n");
	const char *const extra[] = {"--config", conf, NULL};
	t_v4vd_start(extra);
	unlink(conf);
	char *r = t_ctl("domain create 0 zero persistent");
	CHECK(strstr(r, "\t70000\n"));
	free(r);
	r = t_ctl("domain create auto one persistent");
	CHECK(strstr(r, "\t70001\n"));
	free(r);
	const char *want = "no uid left for the domain: domain_uids 70000-70001 gives uids to "
			   "domids 0..1 only (see v4vd.conf(5))";
	for (int i = 0; i < 2; i++) {
		char *err = NULL;
		CHECK(!t_ctl_try(&err,
				 i ? "domain create 5 - persistent" : "domain create auto - fd"));
		if (!strstr(err, want)) {
			fprintf(stderr, "got '%s', expected '%s'\n", err, want);
			exit(1);
		}
		free(err);
	}
	CHECK_EQ(t_ctl_rows("domains"), 2); /* nothing half-made */
	free(t_ctl("domain destroy one"));
	r = t_ctl("domain create auto - persistent"); /* a freed uid is free again */
	CHECK(strstr(r, "\t70001\n"));
	free(r);
}

/* Run v4vd with args; it must exit non-zero at once with one line
 * holding want on stderr. */
static void v4vd_refuses(const char *const *args, const char *want)
{
	const char *argv[16] = {getenv("V4VD") ? getenv("V4VD") : "./v4vd", "--foreground"};
	int n = 2, err;
	char msg[1024];
	for (; *args; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	pid_t p = spawn(argv, -1, NULL, &err, -1);
	read_all(err, msg, sizeof(msg), 10000);
	close(err);
	int rc = wait_exit(p);
	if (rc == 0 || !strstr(msg, want) || strchr(msg, '\n') != msg + strlen(msg) - 1) {
		fprintf(stderr, "v4vd exited %d saying '%s'; expected one line with '%s'\n", rc,
			msg, want);
		exit(1);
	}
}

static void config_errors(void)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"domain_uids 70000\n", "line 1: domain_uids must be FIRST-LAST (e.g. 61184-65519), "
				    "not '70000'"},
	    {"\ndomain_uids 7-x\n", "line 2: domain_uids must be FIRST-LAST"},
	    {"domain_uids -5\n", "must be FIRST-LAST"},
	    {"domain_uids 0-100\n", "must have 1 <= FIRST <= LAST <= 4294967294 (uid 0 is root)"},
	    {"domain_uids 200-100\n", "must have 1 <= FIRST <= LAST"},
	    {"domain_uids 1-4294967295\n", "must have 1 <= FIRST <= LAST <= 4294967294"},
	    {"domain_uids 65000-65534\n", "includes 65534 or 65535"},
	    {"domain_uids 1-2 3-4\n", "'domain_uids' takes exactly one value"},
	};
	char dir[] = "/tmp/v4v-principal-XXXXXX";
	CHECK(mkdtemp(dir));
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *conf = write_conf(bad[i].text);
		const char *const args[] = {"--runtime-dir", dir, "--config", conf, NULL};
		v4vd_refuses(args, bad[i].want);
		unlink(conf);
	}
	rmdir(dir);
}

/* ---- the runtime directory -------------------------------------------- */

static void rundir_v4vd(void)
{
	char dir[] = "/tmp/v4v-principal-XXXXXX", sub[64], link[80];
	CHECK(mkdtemp(dir));
	const char *const args[] = {"--runtime-dir", dir, NULL};
	CHECK(chmod(dir, 0777) == 0);
	v4vd_refuses(args, "is writable by group or others (mode 0777); it must be 0700");
	CHECK(chmod(dir, 0720) == 0);
	v4vd_refuses(args, "is writable by group or others (mode 0720)");
	CHECK(chmod(dir, 0700) == 0);
	if (geteuid() == 0) {
		CHECK(chown(dir, NOBODY, NOBODY) == 0);
		v4vd_refuses(args, "is owned by uid 65534, not by v4vd's uid 0");
		CHECK(chown(dir, 0, 0) == 0);
	}
	/* Only the last component is created, 0700 whatever the umask. */
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	const char *const deep[] = {"--runtime-dir", sub, NULL};
	v4vd_refuses(deep, "only the last component is created");
	snprintf(link, sizeof(link), "%s/link", dir);
	CHECK(symlink("/tmp", link) == 0);
	const char *const sym[] = {"--runtime-dir", link, NULL};
	v4vd_refuses(sym, "not a directory (or a symlink)");
	unlink(link);
	/* A parent others can swap it in. */
	snprintf(sub, sizeof(sub), "%s/a", dir);
	CHECK(mkdir(sub, 0777) == 0 && chmod(sub, 0777) == 0);
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	v4vd_refuses(deep, "is writable by group or others and not sticky (mode 0777)");
	snprintf(sub, sizeof(sub), "%s/a", dir);
	rmdir(sub);
	/* No guessable fallback in /tmp for a user without XDG_RUNTIME_DIR. */
	if (geteuid() != 0) {
		const char *const none[] = {NULL};
		unsetenv("V4V_RUNTIME_DIR");
		unsetenv("XDG_RUNTIME_DIR");
		v4vd_refuses(none, "XDG_RUNTIME_DIR is not set");
	}
	rmdir(dir);

	/* The good case: created 0700 despite a permissive umask. */
	snprintf(sub, sizeof(sub), "%s/run", dir);
	CHECK(mkdir(dir, 0700) == 0);
	const char *const argv[] = {getenv("V4VD") ? getenv("V4VD") : "./v4vd", "--foreground",
				    "--runtime-dir", sub, NULL};
	mode_t old = umask(0);
	pid_t p = spawn(argv, -1, NULL, NULL, -1);
	umask(old);
	struct stat st;
	snprintf(link, sizeof(link), "%s/control", sub);
	for (int i = 0; i < 5000 && stat(link, &st) < 0; i++)
		usleep(2000);
	CHECK(stat(sub, &st) == 0);
	CHECK_EQ(st.st_mode & 07777, 0700);
	CHECK_EQ(st.st_uid, geteuid());
	kill(p, SIGTERM);
	CHECK_EQ(wait_exit(p), 0);
	snprintf(link, sizeof(link), "%s/v4vd.lock", sub);
	unlink(link);
	rmdir(sub);
	rmdir(dir);
}

/* Run `v4vctl domains` against dir; it must fail with want and exit 1. */
static void v4vctl_refuses(const char *dir, const char *want)
{
	char env[200], msg[1024];
	int err;
	snprintf(env, sizeof(env), "%s", dir);
	setenv("V4V_RUNTIME_DIR", env, 1);
	const char *const argv[] = {bin("v4vctl"), "domains", NULL};
	pid_t p = spawn(argv, -1, NULL, &err, -1);
	read_all(err, msg, sizeof(msg), 10000);
	close(err);
	int rc = wait_exit(p);
	if (rc != 1 || !strstr(msg, want)) {
		fprintf(stderr, "v4vctl exited %d saying '%s'; expected '%s'\n", rc, msg, want);
		exit(1);
	}
}

static void rundir_client(void)
{
	t_v4vd_start(NULL);
	char dir[128];
	snprintf(dir, sizeof(dir), "%s", t_rundir());
	CHECK(chmod(dir, 0777) == 0);
	v4vctl_refuses(dir, "is writable by group or others (mode 0777): refusing to use it");
	CHECK(chmod(dir, 0700) == 0);
	if (geteuid() == 0) {
		CHECK(chown(dir, NOBODY, NOBODY) == 0);
		v4vctl_refuses(dir,
			       "is owned by uid 65534, neither root nor you (uid 0): refusing");
		CHECK(chown(dir, 0, 0) == 0);
	}
	CHECK_EQ(t_ctl_rows("domains"), 0); /* and the real one still answers */
}

/* A control socket served by another, non-root uid: a fake v4vd that binds
 * in a directory of ours (so the directory passes), then drops to nobody
 * and listens, so SO_PEERCRED names nobody.  It reports whether the client
 * sent it anything before hanging up. */
static void fake_server(void)
{
	need_root();
	char dir[] = "/tmp/v4v-principal-XXXXXX", path[100];
	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/control", dir);
	int ready[2];
	CHECK(pipe2(ready, O_CLOEXEC) == 0);
	fflush(NULL);
	pid_t srv = fork();
	CHECK(srv >= 0);
	if (srv == 0) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
		int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) || setgroups(0, NULL) ||
		    setresgid(NOBODY, NOBODY, NOBODY) || setresuid(NOBODY, NOBODY, NOBODY) ||
		    listen(l, 4))
			_exit(2);
		if (write(ready[1], "y", 1) != 1)
			_exit(2);
		struct pollfd p = {.fd = l, .events = POLLIN};
		if (poll(&p, 1, 10000) != 1)
			_exit(4);
		int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		char b;
		p = (struct pollfd){.fd = c, .events = POLLIN};
		if (c < 0 || poll(&p, 1, 10000) != 1)
			_exit(4);
		_exit(read(c, &b, 1) == 0 ? 0 : 3); /* 0: hung up without a word */
	}
	close(ready[1]);
	char y;
	CHECK(read(ready[0], &y, 1) == 1);
	v4vctl_refuses(dir, "the control socket is served by uid 65534 (pid ");
	int rc = wait_exit(srv);
	if (rc != 0)
		fprintf(stderr, "fake server: %s\n",
			rc == 3 ? "the client sent it a request" : "?");
	CHECK_EQ(rc, 0);
	unlink(path);
	rmdir(dir);
}

static const struct t_case cases[] = {
    T_CASE(two_domains),
    T_CASE(isolation),
    T_CASE(join),
    T_CASE(as_caller),
    T_CASE(needs_root),
    T_CASE(uid_exhausted),
    T_CASE(config_errors),
    T_CASE(rundir_v4vd),
    T_CASE(rundir_client),
    T_CASE(fake_server),
    /* the domain side, run by the cases above through v4v-run: not tests
     * of their own, so not T_CASE entries (tests/meson.build) */
    {"probe_report", probe_report},
    {"probe_hold", probe_hold},
    {"probe_attack", probe_attack},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
