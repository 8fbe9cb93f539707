/* SPDX-License-Identifier: MIT */
/*
 * v4vd as a service: its systemd unit, readiness (a fake NOTIFY_SOCKET),
 * journald's priority prefixes, SIGHUP reloading v4vd.conf (a good file
 * applied, a bad one refused whole), domids that are not reused soon,
 * firewall rules by domain name, and the v4v group's query socket.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl/client.h"
#include "t.h"

#define WAIT_MS 5000

static char conf[64];

static void write_file(const char *path, const char *text)
{
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *f = fopen(tmp, "w");
	CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0);
	CHECK(rename(tmp, path) == 0); /* whole, as an admin's editor saves it */
}

static void conf_cleanup(void)
{
	if (*conf)
		unlink(conf);
}

/* A v4vd.conf of this test's own. */
static const char *config(const char *text)
{
	if (!*conf) {
		snprintf(conf, sizeof(conf), "/tmp/v4v-service-conf-XXXXXX");
		int fd = mkstemp(conf);
		CHECK(fd >= 0);
		close(fd);
		atexit(conf_cleanup);
	}
	write_file(conf, text);
	return conf;
}

/* Start v4vd with its stderr into a file of ours (log, 64 bytes). */
static void start_logged(const char *const *extra, char *log)
{
	snprintf(log, 64, "/tmp/v4v-service-log-XXXXXX");
	int fd = mkstemp(log), saved = dup(2);
	CHECK(fd >= 0 && saved >= 0 && dup2(fd, 2) == 2);
	t_v4vd_start(extra);
	CHECK(dup2(saved, 2) == 2);
	close(saved);
	close(fd);
}

/* The log's lines holding what; the last in *last (malloc'd) if asked. */
static int log_lines(const char *log, const char *what, char **last)
{
	char line[1024];
	int n = 0;
	FILE *f = fopen(log, "r");
	CHECK(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, what)) {
			n++;
			if (last) {
				free(*last);
				*last = strdup(line);
			}
		}
	fclose(f);
	return n;
}

static void wait_log(const char *log, const char *what, int count)
{
	for (int i = 0; i < WAIT_MS / 2; i++) {
		if (log_lines(log, what, NULL) >= count)
			return;
		usleep(2000);
	}
	fprintf(stderr, "v4vd never logged '%s' (%d times)\n", what, count);
	exit(1);
}

static uint16_t create(const char *name)
{
	char *r = t_ctl("domain create auto %s persistent", name);
	unsigned id;
	CHECK(sscanf(strchr(r, '\n') + 1, "%u", &id) == 1);
	free(r);
	return (uint16_t)id;
}

/* ---- the unit ---------------------------------------------------------- */

static int run(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	CHECK(p);
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* contrib/v4vd.service, its ExecStart pointed at the v4vd under test,
 * passes `systemd-analyze verify`; and its exposure stays "OK" (< 2). */
static void unit_verify(void)
{
	char cmd[1024], out[65536], unit[64] = "/tmp/v4v-service-unit-XXXXXX";
	if (system("systemd-analyze --version >/dev/null 2>&1") != 0) {
		fprintf(stderr, "no systemd-analyze: skipped\n");
		exit(T_SKIP);
	}
	CHECK(mkdtemp(unit));
	snprintf(cmd, sizeof(cmd),
		 "sed 's|^ExecStart=/usr/local/sbin/v4vd |ExecStart=%s |' %s/contrib/v4vd.service "
		 ">%s/v4vd.service",
		 getenv("V4VD"), getenv("V4V_SRC"), unit);
	CHECK(system(cmd) == 0);
	snprintf(cmd, sizeof(cmd), "systemd-analyze verify --man=no %s/v4vd.service 2>&1", unit);
	int rc = run(cmd, out, sizeof(out));
	if (rc != 0 || *out) {
		fprintf(stderr, "systemd-analyze verify: exit %d:\n%s", rc, out);
		exit(1);
	}
	snprintf(cmd, sizeof(cmd),
		 "systemd-analyze security --offline=yes %s/v4vd.service 2>&1 | grep 'Overall'",
		 unit);
	if (run(cmd, out, sizeof(out)) == 0) { /* systemd >= 252 */
		const char *lvl = strstr(out, "level for");
		double score = 10;
		CHECK(lvl && (lvl = strchr(lvl, ':')) && sscanf(lvl + 1, "%lf", &score) == 1);
		fprintf(stderr, "exposure %.1f\n", score);
		CHECK(score < 2.0);
	}
	snprintf(cmd, sizeof(cmd), "rm -r %s", unit);
	CHECK(system(cmd) == 0);
}

/* ---- systemd's protocols ---------------------------------------------- */

static void notify_ready(void)
{
	if (strcmp(getenv("V4VD_NOTIFY") ? getenv("V4VD_NOTIFY") : "1", "1") != 0) {
		fprintf(stderr, "v4vd built without libsystemd: skipped\n");
		exit(T_SKIP);
	}
	char dir[64] = "/tmp/v4v-service-notify-XXXXXX", log[64], buf[512];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	CHECK(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	start_logged((const char *const[]){"--config", config("policy accept\n"), NULL}, log);
	unsetenv("NOTIFY_SOCKET");
	/* Then SIGHUP: RELOADING=1, and READY=1 again once reloaded. */
	const char *want[] = {"READY=1", "RELOADING=1", "READY=1"};
	for (unsigned i = 0; i < 3; i++) {
		if (i == 1)
			kill(t_v4vd_pid(), SIGHUP);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		CHECK(poll(&p, 1, WAIT_MS) == 1);
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
		CHECK(n > 0);
		buf[n] = '\0';
		if (!strstr(buf, want[i])) {
			fprintf(stderr, "notification %u: '%s', expected %s\n", i, buf, want[i]);
			exit(1);
		}
	}
	/* Under systemd the log carries journald's priorities. */
	CHECK(log_lines(log, "<6>listening on ", NULL) == 1);
	t_v4vd_stop();
	unlink(log);
	unlink(sa.sun_path);
	rmdir(dir);
}

/* JOURNAL_STREAM naming v4vd's stderr: "<N>" priority prefixes (6 info,
 * 3 error: sd-daemon.h's SD_INFO, SD_ERR); one naming another stream
 * (inherited from elsewhere): plain "v4vd: ". */
static void journal_prefixes(void)
{
	char log[64], env[64], *line = NULL;
	struct stat st;
	for (int match = 1; match >= 0; match--) {
		snprintf(log, sizeof(log), "/tmp/v4v-service-log-XXXXXX");
		int fd = mkstemp(log), saved = dup(2);
		CHECK(fd >= 0 && saved >= 0 && fstat(fd, &st) == 0);
		snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino + (match ? 0 : 1));
		setenv("JOURNAL_STREAM", env, 1);
		CHECK(dup2(fd, 2) == 2);
		t_v4vd_start((const char *const[]){"--config", config("policy accept\n"), NULL});
		CHECK(dup2(saved, 2) == 2);
		close(saved);
		close(fd);
		unsetenv("JOURNAL_STREAM");
		config("rule --src 1 maybe\n"); /* an error line: a refused reload */
		kill(t_v4vd_pid(), SIGHUP);
		wait_log(log, "reload refused", 1);
		t_v4vd_stop();
		CHECK_EQ(log_lines(log, "reload refused", &line), 1);
		if (match) {
			CHECK(strncmp(line, "<3>reload refused", 17) == 0);
			CHECK_EQ(log_lines(log, "<6>listening on ", NULL), 1);
			CHECK_EQ(log_lines(log, "<6>shutting down", NULL), 1);
			CHECK_EQ(log_lines(log, "v4vd: ", NULL), 0);
		} else {
			CHECK(strncmp(line, "v4vd: reload refused", 20) == 0);
			CHECK_EQ(log_lines(log, "v4vd: listening on ", NULL), 1);
			CHECK_EQ(log_lines(log, "<6>", NULL), 0);
		}
		free(line);
		line = NULL;
		unlink(log);
	}
}

/* ---- reload ------------------------------------------------------------ */

static struct v4v_domain *dom_a;

/* A fresh socket of a: its first send is checked then and there (later
 * ones may go through its send ring, whose refusals come as events). */
static int fresh(int old)
{
	v4v_sock_close(old);
	int s = v4v_socket(dom_a, V4V_SOCK_DGRAM, 0);
	CHECK(s >= 0);
	return s;
}

/* Two domains, b listening on port 80; returns a's socket, sends to *to. */
static int pair(struct v4v_addr *to)
{
	struct v4v_domain *a = dom_a = t_domain("a"), *b = t_domain("b");
	int sb = v4v_socket(b, V4V_SOCK_DGRAM, 0), sa = v4v_socket(a, V4V_SOCK_DGRAM, 0);
	CHECK(sb >= 0 && sa >= 0);
	struct v4v_addr any = {.aport = 80, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_bind(sb, &any), 0);
	*to = (struct v4v_addr){.aport = 80, .domain_id = v4v_domid(b)};
	return sa;
}

static void reload_good(void)
{
	char log[64];
	struct v4v_addr to;
	start_logged((const char *const[]){"--config", config("policy accept\n"), NULL}, log);
	int sa = pair(&to);
	CHECK_EQ(v4v_sendto(sa, "x", 1, 0, &to), 1);
	config("# a rule and a limit\nrule --src a --dst b:80 reject\ndomains 3\n");
	kill(t_v4vd_pid(), SIGHUP);
	wait_log(log, "reloaded ", 1);
	CHECK_EQ(log_lines(log, "reloaded /tmp/v4v-service-conf-", NULL), 1);
	CHECK_EQ(t_ctl_rows("fw list"), 2); /* the rule and the policy */
	sa = fresh(sa);
	CHECK_EQ(v4v_sendto(sa, "x", 1, 0, &to), -1);
	CHECK_EQ(errno, EACCES);
	create("c"); /* the third domain */
	char *err = NULL;
	CHECK(!t_ctl_try(&err, "domain create auto d persistent"));
	CHECK(strstr(err, "too many domains (limit 3)"));
	free(err);
	/* Reloaded again: the file is the truth; the rule goes. */
	config("domains 4\n");
	kill(t_v4vd_pid(), SIGHUP);
	wait_log(log, "reloaded ", 2);
	CHECK_EQ(t_ctl_rows("fw list"), 1);
	sa = fresh(sa);
	CHECK_EQ(v4v_sendto(sa, "x", 1, 0, &to), 1);
	create("d");
	v4v_sock_close(sa);
	t_domains_close();
	unlink(log);
}

static void reload_bad(void)
{
	char log[64], *line = NULL;
	struct v4v_addr to;
	start_logged(
	    (const char *const[]){"--config", config("rule --src a --dst b reject\n"), NULL}, log);
	int sa = pair(&to);
	CHECK_EQ(v4v_sendto(sa, "x", 1, 0, &to), -1);
	/* Line 2 is bad: nothing of the file applies, line 1's flush
	 * included; one line names the file, the line and the problem. */
	config("policy reject\nrule --src a maybe\ndomains 2\n");
	kill(t_v4vd_pid(), SIGHUP);
	wait_log(log, "reload refused", 1);
	CHECK_EQ(log_lines(log, "reload refused", &line), 1);
	char want[200];
	snprintf(want, sizeof(want), "config %s: line 2: unexpected 'maybe' in rule", conf);
	if (!strstr(line, want)) {
		fprintf(stderr, "log line '%s' lacks '%s'\n", line, want);
		exit(1);
	}
	free(line);
	CHECK_EQ(t_ctl_rows("fw list"), 2);
	char *stats = t_ctl("stats");
	CHECK(strstr(stats, "\taccept\t")); /* policy unchanged */
	free(stats);
	sa = fresh(sa);
	CHECK_EQ(v4v_sendto(sa, "x", 1, 0, &to), -1);
	CHECK_EQ(errno, EACCES);
	create("c"); /* `domains 2` was not applied either */
	/* What cannot change at run time refuses the file too. */
	config("domain_uids 70000-70100\n");
	kill(t_v4vd_pid(), SIGHUP);
	wait_log(log, "reload refused", 2);
	CHECK_EQ(log_lines(log, "domain_uids 70000-70100 differs from the running", NULL), 1);
	CHECK_EQ(t_ctl_rows("fw list"), 2);
	/* A file gone: --config named it, so that is an error too. */
	unlink(conf);
	kill(t_v4vd_pid(), SIGHUP);
	wait_log(log, "reload refused", 3);
	CHECK_EQ(log_lines(log, "cannot open config", NULL), 1);
	sa = fresh(sa);
	CHECK_EQ(v4v_sendto(sa, "x", 1, 0, &to), -1);
	v4v_sock_close(sa);
	t_domains_close();
	unlink(log);
}

/* ---- domids ------------------------------------------------------------ */

static void domid_forward(void)
{
	/* domain_uids gives uids to domids 0..3: automatic ids are 1..3. */
	t_v4vd_start((const char *const[]){"--config", config("domain_uids 70000-70003\n"), NULL});
	uint16_t a = create("A");
	free(t_ctl("domain destroy A"));
	uint16_t b = create("B");
	CHECK(b != a);
	CHECK_EQ(b, a + 1);
	free(t_ctl("domain destroy B"));
	CHECK_EQ(create("C"), 3);
	free(t_ctl("domain destroy C"));
	CHECK_EQ(create("D"), 1); /* wrapped at the top */
	CHECK_EQ(create("E"), 2);
	CHECK_EQ(create("F"), 3);
	char *err = NULL;
	CHECK(!t_ctl_try(&err, "domain create auto G persistent"));
	CHECK(strstr(err, "no uid left"));
	free(err);
	free(t_ctl("domain destroy E"));
	CHECK_EQ(create("G"), 2); /* the only free one: skips the taken */
}

/* A rule naming a domain matches whichever domain has that name when the
 * message is sent: not before it exists, and its successor too. */
static void rule_by_name(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *b = t_domain("b");
	int sb = v4v_socket(b, V4V_SOCK_DGRAM, 0);
	struct v4v_addr any = {.aport = 80, .domain_id = V4V_DOMID_ANY};
	struct v4v_addr to = {.aport = 80, .domain_id = v4v_domid(b)};
	CHECK(sb >= 0 && v4v_bind(sb, &any) == 0);
	free(t_ctl("fw add --src x --dst b:80 reject"));
	char *list = t_ctl("fw list");
	CHECK(strstr(list, "\n1\tx\tb:80\treject\t0\n"));
	free(list);
	struct v4v_domain *a = t_domain("a");
	int sa = v4v_socket(a, V4V_SOCK_DGRAM, 0);
	CHECK_EQ(v4v_sendto(sa, "x", 1, 0, &to), 1); /* a is not x */
	uint16_t last = 0;
	for (int round = 0; round < 2; round++) {
		struct v4v_domain *x = t_domain("x");
		CHECK(v4v_domid(x) != last);
		last = v4v_domid(x);
		int sx = v4v_socket(x, V4V_SOCK_DGRAM, 0);
		CHECK_EQ(v4v_sendto(sx, "x", 1, 0, &to), -1);
		CHECK_EQ(errno, EACCES);
		v4v_sock_close(sx);
		free(t_ctl("domain destroy x"));
	}
	list = t_ctl("fw list");
	CHECK(strstr(list, "\n1\tx\tb:80\treject\t2\n"));
	free(list);
	/* A bad name is refused with the reason. */
	char *err = NULL;
	CHECK(!t_ctl_try(&err, "fw add --src -x reject"));
	CHECK(strstr(err, "bad domain '-x'"));
	free(err);
	v4v_sock_close(sa);
	v4v_sock_close(sb);
	t_domains_close();
}

/* ---- the query socket -------------------------------------------------- */

#define QUERY_GID 4242u

/* In a child as uid (gid = uid), with n supplementary groups, the last of
 * them QUERY_GID when member: run the checks and exit 0 when they hold. */
static void as_user_groups(uid_t uid, unsigned n, bool member, void (*checks)(void))
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		static gid_t g[1000];
		CHECK(n <= 1000);
		for (unsigned i = 0; i < n; i++)
			g[i] = 50000 + i;
		if (member && n)
			g[n - 1] = QUERY_GID;
		CHECK(setgroups(n, g) == 0);
		CHECK(setgid(uid) == 0 && setuid(uid) == 0);
		checks();
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* As uid, in QUERY_GID's group alone or in none. */
static void as_user(uid_t uid, bool member, void (*checks)(void))
{
	as_user_groups(uid, member ? 1 : 0, member, checks);
}

static void member_checks(void)
{
	struct v4v_ctl_reply rep;
	/* Listings: through the query socket, found by the client itself. */
	const char *const lists[] = {"domains", "rings", "names", "stats"};
	for (unsigned i = 0; i < 4; i++) {
		CHECK(v4v_ctl_request(t_rundir(), lists[i], &rep) == 0 && rep.ok);
		if (i == 0)
			CHECK(strstr(rep.body, "\tweb\t"));
		v4v_ctl_reply_free(&rep);
	}
	/* Not the admin: no control socket. */
	CHECK_EQ(v4v_ctl_request(t_rundir(), "domain create auto evil persistent", &rep), -EACCES);
	v4v_ctl_reply_free(&rep);
	/* And the query socket refuses what is not a listing. */
	char path[200];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(path, sizeof(path), "%s/query", t_rundir());
	strcpy(sa.sun_path, path);
	const char *const cmds[] = {"domain create auto evil persistent", "fw add reject",
				    "fw policy drop", "fw list", "domain destroy web"};
	for (unsigned i = 0; i < 5; i++) {
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK(s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
		CHECK(v4v_ctl_call(s, cmds[i], &rep) == 0 && !rep.ok);
		CHECK(strstr(rep.body, "needs the control socket"));
		CHECK(rep.fd < 0);
		v4v_ctl_reply_free(&rep);
		close(s);
	}
}

/* At most 16 query connections at once: a reader cannot hoard v4vd's
 * fds; the 17th is closed at once, and room comes back as they close. */
static void member_hoards(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct v4v_ctl_reply rep;
	int held[16];
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/query", t_rundir());
	for (unsigned i = 0; i < 16; i++) {
		held[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK(held[i] >= 0 && connect(held[i], (struct sockaddr *)&sa, sizeof(sa)) == 0);
		CHECK(v4v_ctl_call(held[i], "stats", &rep) == 0 && rep.ok); /* accepted */
		v4v_ctl_reply_free(&rep);
	}
	CHECK(v4v_ctl_request(t_rundir(), "domains", &rep) < 0);
	v4v_ctl_reply_free(&rep);
	for (unsigned i = 0; i < 16; i++)
		close(held[i]);
	int e = -1;
	for (int i = 0; i < WAIT_MS / 2 && e; i++) {
		e = v4v_ctl_request(t_rundir(), "domains", &rep);
		v4v_ctl_reply_free(&rep);
		if (e)
			usleep(2000);
	}
	CHECK_EQ(e, 0);
}

static void stranger_checks(void)
{
	struct v4v_ctl_reply rep;
	CHECK_EQ(v4v_ctl_request(t_rundir(), "domains", &rep), -EACCES);
	v4v_ctl_reply_free(&rep);
	char path[200];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(path, sizeof(path), "%s/query", t_rundir());
	strcpy(sa.sun_path, path);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == EACCES);
	close(s);
}

/* As root (to be other uids): v4vd with query_group QUERY_GID, and a
 * domain "web" to list. */
static void start_query(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "needs root (to be other uids): skipped\n");
		exit(T_SKIP);
	}
	char q[64];
	snprintf(q, sizeof(q), "query_group %u\n", QUERY_GID);
	t_v4vd_start((const char *const[]){"--config", config(q), NULL});
	create("web");
}

static void query_socket(void)
{
	start_query();
	char path[200];
	struct stat st;
	CHECK(stat(t_rundir(), &st) == 0);
	CHECK_EQ(st.st_mode & 07777, 0710);
	CHECK_EQ(st.st_gid, QUERY_GID);
	snprintf(path, sizeof(path), "%s/query", t_rundir());
	CHECK(stat(path, &st) == 0);
	CHECK_EQ(st.st_mode & 0777, 0660);
	CHECK_EQ(st.st_gid, QUERY_GID);
	snprintf(path, sizeof(path), "%s/control", t_rundir());
	CHECK(stat(path, &st) == 0);
	CHECK_EQ(st.st_mode & 0077, 0); /* the admin's still */
	as_user(70123, true, member_checks);
	as_user(70124, false, stranger_checks);
	as_user(70125, true, member_hoards);
	free(t_ctl("domains"));		    /* the admin was never held up */
	CHECK_EQ(t_ctl_rows("domains"), 1); /* nothing made by either */
	CHECK_EQ(t_ctl_rows("fw list"), 1);
	/* No group: no query socket; the directory stays 0700. */
	t_v4vd_stop();
	t_v4vd_start((const char *const[]){"--config", config("query_group none\n"), NULL});
	snprintf(path, sizeof(path), "%s/query", t_rundir());
	CHECK(stat(path, &st) < 0 && errno == ENOENT);
}

/* A member in more groups than v4vd read at once (300, the query group
 * among them) is a member; a stranger in as many is not.  v4vd read 256
 * and refused any process in more (SO_PEERGROUPS said ERANGE). */
static void query_many_groups(void)
{
	start_query();
	as_user_groups(70126, 300, true, member_checks);
	as_user_groups(70127, 300, false, stranger_checks);
	CHECK_EQ(t_ctl_rows("domains"), 1);
}

static const struct t_case cases[] = {
    T_CASE(unit_verify),  T_CASE(notify_ready), T_CASE(journal_prefixes),
    T_CASE(reload_good),  T_CASE(reload_bad),	T_CASE(domid_forward),
    T_CASE(rule_by_name), T_CASE(query_socket), T_CASE(query_many_groups),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
