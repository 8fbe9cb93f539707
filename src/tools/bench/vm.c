/* SPDX-License-Identifier: MIT */
/*
 * The guest transports: QEMU guests as v4v domains (v4v-vm, Debian's
 * stock kernel under TCG, tests/vm/guest inside, booted by
 * tests/vm/boot.sh), streaming to a process domain (vm-stream) and to
 * another guest (vm-vm-stream).  Each step boots its guests once and
 * measures throughput (the guest's source, 64 KiB writes, for at least a
 * second) and round trips (64 bytes echoed by a guest).  Under TCG every
 * guest instruction is emulated, so the figures check correctness and CPU
 * use, not speed: they carry "emulated" (and "(TCG)" in the table).  Run
 * only when asked for (--workload vm, --only vm-...); skipped with a note
 * when QEMU, busybox or the guest's parts are missing.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "common/util.h"
#include "tool.h"

#define VM_TPUT_SIZE 65536u
#define PORT_SINK    2001u /* the process domain's listener (vm-stream) */
#define PORT_GSINK   2002u /* a guest's sink (vm-vm-stream) */
#define PORT_ECHO    2003u /* a guest's echo */
#define BOOT_SECS    120   /* TCG boots in 5-15 s; a loaded machine is slower */

#ifndef V4V_SOURCE_DIR
#define V4V_SOURCE_DIR "."
#endif

struct vm {
	const char *name;
	pid_t vmm, qemu;
	uint16_t domid;
};

static char vdir[64];		    /* this step's sockets, images and consoles */
static char boot_sh[PATH_MAX + 32]; /* tests/vm/boot.sh */
static char vmm_bin[PATH_MAX + 32]; /* v4v-vm, beside us */
static char skip_why[160];	    /* set once: why the guest transports cannot run */
static bool checked;

static bool in_path(const char *name)
{
	const char *path = getenv("PATH");
	char p[PATH_MAX];
	for (const char *s = path ? path : "/usr/bin:/bin"; *s;) {
		size_t n = strcspn(s, ":");
		snprintf(p, sizeof(p), "%.*s/%s", (int)n, s, name);
		if (access(p, X_OK) == 0)
			return true;
		s += n + (s[n] == ':');
	}
	return false;
}

/* Find the parts (once); false with skip_why set if one is missing. */
static bool vm_available(void)
{
	char self[PATH_MAX], guest[PATH_MAX + 32], cache[PATH_MAX + 32];
	if (checked)
		return !*skip_why;
	checked = true;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	const char *src = getenv("V4V_SRC") ? getenv("V4V_SRC") : V4V_SOURCE_DIR;
	snprintf(boot_sh, sizeof(boot_sh), "%s/tests/vm/boot.sh", src);
	snprintf(vmm_bin, sizeof(vmm_bin), "%s/v4v-vm", self);
	snprintf(guest, sizeof(guest), "%s/tests/vm/guest", self);
	snprintf(cache, sizeof(cache), "%s/tests/vm/cache", self);
	setenv("V4V_VM_GUEST", getenv("V4V_VM_GUEST") ? getenv("V4V_VM_GUEST") : guest, 0);
	setenv("V4V_VM_CACHE", getenv("V4V_VM_CACHE") ? getenv("V4V_VM_CACHE") : cache, 0);
	const char *g = getenv("V4V_VM_GUEST"), *c = getenv("V4V_VM_CACHE");
	if (!in_path("qemu-system-x86_64"))
		snprintf(skip_why, sizeof(skip_why),
			 "no qemu-system-x86_64 (apt-get install qemu-system-x86)");
	else if (access("/bin/busybox", X_OK) < 0)
		snprintf(skip_why, sizeof(skip_why),
			 "no /bin/busybox (apt-get install busybox-static)");
	else if (access(vmm_bin, X_OK) < 0 || access(g, X_OK) < 0)
		snprintf(skip_why, sizeof(skip_why),
			 "v4v-vm or tests/vm/guest is not built beside v4v-bench");
	else if (access(boot_sh, X_OK) < 0)
		snprintf(skip_why, sizeof(skip_why), "no %.100s (set V4V_SRC)", boot_sh);
	if (*skip_why)
		return false;
	char vmlinux[PATH_MAX + 48];
	snprintf(vmlinux, sizeof(vmlinux), "%s/vmlinux", c);
	if (access(vmlinux, R_OK) < 0)
		fprintf(stderr, "%s: fetching Debian's kernel for the guests (~72 MB) into %s\n",
			prog, c);
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "'%s' prepare", boot_sh);
	fflush(NULL);
	if (system(cmd) != 0)
		snprintf(skip_why, sizeof(skip_why),
			 "the guest kernel cannot be had (boot.sh prepare failed)");
	return !*skip_why;
}

/* Fork and exec argv, stdin /dev/null, stdout and stderr into log. */
static pid_t spawn_log(char *const argv[], const char *log)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int in = open("/dev/null", O_RDONLY), out = open(log, O_WRONLY | O_CREAT, 0600);
		if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static bool alive(pid_t *pid)
{
	if (*pid > 0 && waitpid(*pid, NULL, WNOHANG) == *pid)
		*pid = 0;
	return *pid > 0;
}

static void sleep_ms(unsigned ms)
{
	usleep(ms * 1000);
}

/* The domid v4vd gives the domain called name. */
static bool domid_of(const char *name, uint16_t *domid)
{
	char *body;
	struct table t;
	bool found = false;
	if (ctl_request("domains", &body, NULL) < 0) {
		free(body);
		return false;
	}
	table_parse(body, &t);
	int ci = -1, cn = -1;
	for (int c = 0; c < t.ncols; c++) {
		if (strcmp(t.col[c], "domid") == 0)
			ci = c;
		if (strcmp(t.col[c], "name") == 0)
			cn = c;
	}
	for (int r = 0; r < t.nrows && ci >= 0 && cn >= 0 && !found; r++)
		if (strcmp(t.cell[r][cn], name) == 0) {
			*domid = (uint16_t)atoi(t.cell[r][ci]);
			found = true;
		}
	table_free(&t);
	free(body);
	return found;
}

/* v4v-vm for guest v, its socket ready and its domain known. */
static bool vm_start(struct vm *v, const char *listen, char *err, size_t cap)
{
	char sock[128], log[128];
	snprintf(sock, sizeof(sock), "%s/%s.sock", vdir, v->name);
	snprintf(log, sizeof(log), "%s/%s.vmm", vdir, v->name);
	char *argv[] = {
	    vmm_bin,	    "--socket", sock, "--name", (char *)v->name, listen ? "--listen" : NULL,
	    (char *)listen, NULL};
	v->vmm = spawn_log(argv, log);
	for (double end = now() + 10; now() < end; sleep_ms(10)) {
		struct stat st;
		if (!alive(&v->vmm))
			break;
		if (stat(sock, &st) == 0 && domid_of(v->name, &v->domid))
			return true;
	}
	snprintf(err, cap, "v4v-vm %s did not start (see %s)", v->name, log);
	return false;
}

/* QEMU for guest v, running script as its /test.sh. */
static void vm_boot(struct vm *v, const char *script)
{
	char path[128], log[128];
	snprintf(path, sizeof(path), "%s/%s.test.sh", vdir, v->name);
	FILE *f = fopen(path, "w");
	if (!f || fputs(script, f) < 0 || fclose(f) != 0)
		die("cannot write %s", path);
	snprintf(log, sizeof(log), "%s/%s.boot", vdir, v->name);
	char *argv[] = {boot_sh, "run", vdir, (char *)v->name, NULL};
	v->qemu = spawn_log(argv, log); /* boot.sh becomes QEMU */
}

/* How many times text is on v's console. */
static unsigned console_count(const struct vm *v, const char *text, char *line, size_t cap)
{
	char path[128], buf[1024];
	unsigned n = 0;
	snprintf(path, sizeof(path), "%s/%s.console", vdir, v->name);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(buf, sizeof(buf), f))
		if (strstr(buf, text) && ++n && line) {
			size_t l = strnlen(buf, cap - 1);
			memcpy(line, buf, l);
			line[l] = '\0';
		}
	fclose(f);
	return n;
}

/* Wait until text is on v's console count times (its last line in line). */
static bool wait_console(struct vm *v, const char *text, unsigned count, double secs, char *line,
			 size_t cap, char *err, size_t ecap)
{
	for (double end = now() + secs; now() < end; sleep_ms(10)) {
		if (console_count(v, text, line, cap) >= count)
			return true;
		if (!alive(&v->qemu)) {
			if (console_count(v, text, line, cap) >= count)
				return true;
			snprintf(err, ecap, "QEMU for %s exited before '%s' (see %s/%s.*)", v->name,
				 text, vdir, v->name);
			return false;
		}
	}
	snprintf(err, ecap, "no '%s' on %s's console after %.0f s", text, v->name, secs);
	return false;
}

/* User+sys seconds of a live process, all its threads (QEMU's vCPU too). */
static double proc_cpu(pid_t pid)
{
	char p[64], line[1024], *rp;
	unsigned long long u, s;
	double cpu = NAN;
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return NAN;
	/* "pid (comm) state ppid ...": utime and stime are fields 14 and 15 */
	if (fgets(line, sizeof(line), f) && (rp = strrchr(line, ')')) &&
	    sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &u, &s) == 2)
		cpu = (double)(u + s) / (double)sysconf(_SC_CLK_TCK);
	fclose(f);
	return cpu;
}

/* The guests' processes (QEMU and v4v-vm), and v4vd's, in seconds. */
static double vms_cpu(const struct vm *vs, unsigned n, double *v4vd)
{
	double sum = 0;
	for (unsigned i = 0; i < n; i++)
		sum += proc_cpu(vs[i].qemu) + proc_cpu(vs[i].vmm);
	*v4vd = v4vd_cpu();
	return sum;
}

static void vm_stop(struct vm *v)
{
	pid_t *p[] = {&v->qemu, &v->vmm};
	for (unsigned i = 0; i < ARRAY_SIZE(p); i++)
		if (*p[i] > 0) {
			kill(*p[i], SIGKILL);
			waitpid(*p[i], NULL, 0);
			*p[i] = 0;
		}
}

/* Remove the step's directory (flat: the files named after the guests). */
static void vdir_remove(void)
{
	DIR *d = opendir(vdir);
	struct dirent *de;
	char p[384];
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", vdir, de->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(vdir);
}

/* On a failure: the tail of each guest's console and logs. */
static void vm_logs(const struct vm *vs, unsigned n)
{
	static const char *const kinds[] = {"console", "vmm", "qemu", "boot"};
	for (unsigned i = 0; i < n; i++)
		for (unsigned k = 0; k < ARRAY_SIZE(kinds); k++) {
			char cmd[256];
			snprintf(cmd, sizeof(cmd),
				 "f='%s/%s.%s'; [ -s \"$f\" ] && { echo \"--- $f:\"; tail -n 8 "
				 "\"$f\"; } >&2",
				 vdir, vs[i].name, kinds[k]);
			fflush(NULL);
			if (system(cmd) < 0)
				return;
		}
}

/* ---- vm-stream: the process end ----------------------------------------- */

/* What the process end tells the parent: 'M' (the phase's first byte or
 * round trip: the parent starts its clocks), then 'D' or 'F'. */
struct vrec {
	char type;
	int err;
	char what[24];
	uint64_t n;
	double secs, cpu, p50, p99;
};

static void vrec_send(int fd, struct vrec *r)
{
	if (write(fd, r, sizeof(*r)) != (ssize_t)sizeof(*r))
		_exit(1);
}

static __attribute__((noreturn)) void pend_fail(int fd, const char *what, int err)
{
	struct vrec r = {.type = 'F', .err = err};
	snprintf(r.what, sizeof(r.what), "%s", what);
	vrec_send(fd, &r);
	_exit(0);
}

/* The process domain's end: a listener for the guest's source, then a
 * client of the guest's echo; one phase per command byte from the parent. */
static __attribute__((noreturn)) void pend_main(int dfd, int cmd, int res, uint16_t vm_domid,
						double secs)
{
	static uint8_t buf[VM_TPUT_SIZE];
	struct v4v_domain *d;
	struct v4v_addr me = {.aport = PORT_SINK, .domain_id = V4V_DOMID_ANY};
	struct vrec r = {.type = 'D'};
	char c;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int err = v4v_open_fd(dfd, &d);
	if (err)
		pend_fail(res, "attach", err);
	int l = v4v_socket(d, V4V_SOCK_STREAM, 0);
	if (l < 0 || v4v_bind(l, &me) < 0 || v4v_listen(l, 4) < 0)
		pend_fail(res, "listen", -errno);
	vrec_send(res, &r);
	while (read(cmd, &c, 1) == 1) {
		struct vrec m = {.type = 'M'};
		double c0 = cpu_self(), t0 = 0;
		r = (struct vrec){.type = 'D'};
		if (c == 'T') {
			int s = v4v_accept(l, NULL);
			if (s < 0)
				pend_fail(res, "accept", -errno);
			for (;;) {
				ssize_t n = v4v_recv(s, buf, sizeof(buf), 0);
				if (n < 0)
					pend_fail(res, "recv", -errno);
				if (n == 0)
					break;
				if (!r.n) {
					vrec_send(res, &m);
					t0 = now();
					c0 = cpu_self();
				}
				r.n += (uint64_t)n;
			}
			v4v_sock_close(s);
		} else {
			struct v4v_addr peer = {.aport = PORT_ECHO, .domain_id = vm_domid};
			uint32_t *lat = malloc((1u << 20) * sizeof(*lat));
			int s = v4v_socket(d, V4V_SOCK_STREAM, 0);
			if (!lat || s < 0 || v4v_connect(s, &peer) < 0)
				pend_fail(res, "connect", -errno);
			vrec_send(res, &m);
			t0 = now();
			c0 = cpu_self();
			do {
				uint64_t p0 = now_ns();
				if (v4v_send(s, buf, LAT_SIZE, 0) != LAT_SIZE)
					pend_fail(res, "send", -errno);
				for (size_t off = 0; off < LAT_SIZE;) {
					ssize_t n = v4v_recv(s, buf + off, LAT_SIZE - off, 0);
					if (n <= 0)
						pend_fail(res, "recv", n ? -errno : -ECONNRESET);
					off += (size_t)n;
				}
				uint64_t dt = now_ns() - p0;
				if (r.n < (1u << 20))
					lat[r.n] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
				r.n++;
			} while (now() < t0 + secs);
			percentiles(lat, r.n < (1u << 20) ? (unsigned)r.n : 1u << 20, &r.p50,
				    &r.p99);
			v4v_sock_close(s);
			free(lat);
		}
		r.secs = now() - t0;
		r.cpu = cpu_self() - c0;
		vrec_send(res, &r);
	}
	_exit(0);
}

static bool vrec_read(int fd, struct vrec *r, double secs, char *err, size_t cap)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int k = poll(&p, 1, (int)(secs * 1000));
	if (k <= 0 || read(fd, r, sizeof(*r)) != (ssize_t)sizeof(*r)) {
		snprintf(err, cap, k == 0 ? "the process end timed out" : "the process end died");
		return false;
	}
	if (r->type == 'F') {
		snprintf(err, cap, "process end: %s: %s", r->what, strerror(-r->err));
		return false;
	}
	return true;
}

/* Fill a throughput or latency result from one phase's accounting. */
static void fill(struct result *res, double wall, double cpu, double v4vd)
{
	res->secs = wall;
	res->cpu = cpu / wall * 100;
	res->cpu_v4vd = v4vd / wall * 100;
	res->pairs = 1;
}

static void fill_tput(struct result *res, uint64_t bytes, double secs)
{
	res->value = (double)bytes / VM_TPUT_SIZE / secs;
	res->unit = "msg/s";
	res->mbps = (double)bytes / secs / 1e6;
}

static void fill_lat(struct result *p50, struct result *p99, double v50, double v99)
{
	p50->value = v50;
	p99->value = v99;
	p50->unit = p99->unit = "us";
	p50->lower_better = p99->lower_better = true;
}

static bool vm_stream(struct result *rs, double secs, char *err, size_t cap)
{
	struct vm v = {.name = "bench-vm1"};
	uint16_t pdomid;
	int cmd[2], res[2];
	pid_t pend = 0;
	int dfd;
	bool ok = false;
	char script[512], line[256];
	double v0, v1, g0, g1;
	struct vrec m, r;
	if (!vm_start(&v, "2003", err, cap))
		goto out;
	dfd = domain_create_err(&pdomid, err, cap);
	if (dfd < 0)
		goto out;
	if (pipe2(cmd, O_CLOEXEC) < 0 || pipe2(res, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	fflush(NULL);
	if ((pend = fork()) == 0) {
		close(cmd[1]);
		close(res[0]);
		pend_main(dfd, cmd[0], res[1], v.domid, secs);
	}
	close(dfd);
	close(cmd[0]);
	close(res[1]);
	if (!vrec_read(res[0], &r, 10, err, cap))
		goto out;
	snprintf(script, sizeof(script),
		 "/bin/guest source %u %u %.3f %u\necho \"V4VBENCH SOURCED $?\"\n"
		 "/bin/guest echo %u\n",
		 pdomid + 2u, PORT_SINK, secs, VM_TPUT_SIZE, PORT_ECHO);
	vm_boot(&v, script);
	/* Throughput: the guest's source into the process end. */
	if (write(cmd[1], "T", 1) != 1 || !vrec_read(res[0], &m, BOOT_SECS, err, cap))
		goto out;
	g0 = vms_cpu(&v, 1, &v0);
	if (!vrec_read(res[0], &r, secs + 60, err, cap))
		goto out;
	g1 = vms_cpu(&v, 1, &v1);
	fill(&rs[0], r.secs, r.cpu + g1 - g0 + v1 - v0, v1 - v0);
	fill_tput(&rs[0], r.n, r.secs);
	if (!wait_console(&v, "V4VBENCH SOURCED", 1, 30, line, sizeof(line), err, cap) ||
	    !wait_console(&v, "guest: listening", 1, 30, NULL, 0, err, cap))
		goto out;
	if (!strstr(line, "SOURCED 0")) {
		snprintf(err, cap, "the guest's source failed (see %s/%s.console)", vdir, v.name);
		goto out;
	}
	/* Round trips: the process end pings the guest's echo. */
	if (write(cmd[1], "P", 1) != 1 || !vrec_read(res[0], &m, 30, err, cap))
		goto out;
	g0 = vms_cpu(&v, 1, &v0);
	if (!vrec_read(res[0], &r, secs + 60, err, cap))
		goto out;
	g1 = vms_cpu(&v, 1, &v1);
	fill(&rs[1], r.secs, r.cpu + g1 - g0 + v1 - v0, v1 - v0);
	fill(&rs[2], r.secs, r.cpu + g1 - g0 + v1 - v0, v1 - v0);
	fill_lat(&rs[1], &rs[2], r.p50, r.p99);
	ok = true;
out:
	if (pend > 0) {
		close(cmd[1]);
		close(res[0]);
		kill(pend, SIGKILL);
		waitpid(pend, NULL, 0);
	}
	if (!ok)
		vm_logs(&v, 1);
	vm_stop(&v);
	return ok;
}

/* ---- vm-vm-stream: two guests ------------------------------------------- */

static bool vm_vm_stream(struct result *rs, double secs, char *err, size_t cap)
{
	struct vm v[2] = {{.name = "bench-vma"}, {.name = "bench-vmb"}};
	char script[512], line[256];
	unsigned long long bytes, n;
	double t0, t1, t2, g0, g1, g2, v0, v1, v2, bsecs, p50, p99;
	bool ok = false;
	if (!vm_start(&v[0], "2002,2003", err, cap) || !vm_start(&v[1], NULL, err, cap))
		goto out;
	snprintf(script, sizeof(script),
		 "/bin/guest echo %u &\n/bin/guest sink %u\necho \"V4VBENCH SUNK $?\"\nwait\n",
		 PORT_ECHO, PORT_GSINK);
	vm_boot(&v[0], script);
	if (!wait_console(&v[0], "guest: listening", 2, BOOT_SECS, NULL, 0, err, cap))
		goto out;
	unsigned cid = v[0].domid + 2u;
	snprintf(script, sizeof(script),
		 "echo V4VBENCH TPUT\n/bin/guest source %u %u %.3f %u\necho \"V4VBENCH LAT $?\"\n"
		 "/bin/guest ping %u %u %.3f %u\necho \"V4VBENCH END $?\"\nsleep 600\n",
		 cid, PORT_GSINK, secs, VM_TPUT_SIZE, cid, PORT_ECHO, secs, LAT_SIZE);
	vm_boot(&v[1], script);
	if (!wait_console(&v[1], "V4VBENCH TPUT", 1, BOOT_SECS, NULL, 0, err, cap))
		goto out;
	t0 = now();
	g0 = vms_cpu(v, 2, &v0);
	if (!wait_console(&v[1], "V4VBENCH LAT", 1, secs + 60, line, sizeof(line), err, cap))
		goto out;
	t1 = now();
	g1 = vms_cpu(v, 2, &v1);
	if (!strstr(line, "LAT 0")) {
		snprintf(err, cap, "vmb's source failed (see %s/bench-vmb.console)", vdir);
		goto out;
	}
	if (!wait_console(&v[1], "V4VBENCH END", 1, secs + 60, line, sizeof(line), err, cap))
		goto out;
	t2 = now();
	g2 = vms_cpu(v, 2, &v2);
	if (!strstr(line, "END 0")) {
		snprintf(err, cap, "vmb's ping failed (see %s/bench-vmb.console)", vdir);
		goto out;
	}
	if (!console_count(&v[0], "guest: sink ", line, sizeof(line)) ||
	    sscanf(strstr(line, "guest: sink "), "guest: sink %llu bytes in %lf s", &bytes,
		   &bsecs) != 2 ||
	    !(bsecs > 0)) {
		snprintf(err, cap, "no sink figures on vma's console");
		goto out;
	}
	fill(&rs[0], t1 - t0, g1 - g0 + v1 - v0, v1 - v0);
	fill_tput(&rs[0], bytes, bsecs);
	if (!console_count(&v[1], "guest: ping ", line, sizeof(line)) ||
	    sscanf(strstr(line, "guest: ping "),
		   "guest: ping %llu round trips p50 %lf us p99 %lf us", &n, &p50, &p99) != 3) {
		snprintf(err, cap, "no ping figures on vmb's console");
		goto out;
	}
	fill(&rs[1], t2 - t1, g2 - g1 + v2 - v1, v2 - v1);
	fill(&rs[2], t2 - t1, g2 - g1 + v2 - v1, v2 - v1);
	fill_lat(&rs[1], &rs[2], p50, p99);
	ok = true;
out:
	if (!ok)
		vm_logs(v, 2);
	vm_stop(&v[0]);
	vm_stop(&v[1]);
	return ok;
}

/* ---- the step ------------------------------------------------------------ */

bool vm_step(const struct transport *t, unsigned k, unsigned total, unsigned round)
{
	struct result *rs = add_result(t->name, W_THROUGHPUT, VM_TPUT_SIZE);
	add_result(t->name, W_LATENCY, LAT_SIZE);
	add_result(t->name, W_LATENCY, LAT_SIZE);
	rs = &results[nresults - 3]; /* add_result may move the array */
	rs[1].wname = "latency-p50";
	rs[2].wname = "latency-p99";
	char err[sizeof(rs->err)] = "";
	bool ok = true, skipped = false;
	double secs = opt.secs > 1 ? opt.secs : 1;
	if (!vm_available()) {
		snprintf(err, sizeof(err), "%s", skip_why);
		skipped = true;
	} else if (!v4vd_alive()) {
		snprintf(err, sizeof(err), "v4vd is not running");
	} else {
		snprintf(vdir, sizeof(vdir), "/tmp/v4v-bench-vm-XXXXXX");
		if (!mkdtemp(vdir))
			die("mkdtemp: %s", strerror(errno));
		fprintf(stderr, "%s: %s: booting guests under TCG (5-15 s each)\n", prog, t->name);
		if (strcmp(t->name, "vm-stream") == 0)
			ok = vm_stream(rs, secs, err, sizeof(err));
		else
			ok = vm_vm_stream(rs, secs, err, sizeof(err));
		vdir_remove();
	}
	for (unsigned i = 0; i < 3; i++) {
		rs[i].emulated = true;
		rs[i].skipped = skipped;
		if (*err) {
			snprintf(rs[i].err, sizeof(rs[i].err), "%s", err);
			rs[i].value = NAN;
		}
	}
	if (opt.repeat > 1)
		fprintf(stderr, "round %u/%u ", round, opt.repeat);
	progress(k, total, &rs[0]);
	progress(k, total, &rs[1]);
	return ok || skipped;
}
