/* SPDX-License-Identifier: MIT */
/*
 * libv4v-preload.so: AF_VSOCK sockets of an unmodified program, over v4v.
 *
 * socket(AF_VSOCK) never reaches the kernel.  It returns one end of an
 * AF_UNIX socketpair of the same type and starts a v4v-vsock-relay process
 * holding the other end (vsock.h, relay.c).  Data moves through the kernel
 * socket, so everything that works on a socket works unchanged and needs no
 * interposing: read/write, send/recv and their msg/iov forms, poll, select,
 * epoll, fcntl, FIONREAD/FIONBIO, dup, sendfile, splice, fork, exec.  What
 * is vsock about a socket (its addresses, set-up, options) is interposed
 * here and in opts.c, from a table keyed by the socket's inode, so a dup or
 * a fork or a dup2 onto stdin still finds it; the table is also kept in the
 * environment (V4V_VSOCK_FDS) so a program exec'd with the socket finds it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preload/preload.h"
#include "preload/vsock.h"

#ifndef RELAY_PATH
#define RELAY_PATH "/usr/local/libexec/v4v-vsock-relay"
#endif
#define HELLO_MS 10000 /* the relay's first word */
#define ENV_MAX	 4096
#define ENV_NAME "V4V_VSOCK_FDS="

struct vs_real vs_real;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct vs_sock *tab;
static int ntab, captab;
static uint32_t local_cid;
static char env_buf[sizeof(ENV_NAME) + ENV_MAX];

/* ---- the table ------------------------------------------------------- */

static ino_t ino_of(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return 0;
	return st.st_ino;
}

struct vs_sock *vs_find(int fd)
{
	if (__atomic_load_n(&ntab, __ATOMIC_RELAXED) == 0 || fd < 0)
		return NULL;
	ino_t ino = ino_of(fd);
	if (!ino)
		return NULL;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < ntab; i++)
		if (tab[i].ino == ino)
			return &tab[i];
	pthread_mutex_unlock(&lock);
	return NULL;
}

void vs_unlock(void)
{
	pthread_mutex_unlock(&lock);
}

bool vs_is_ctl(int fd)
{
	bool r = false;
	if (__atomic_load_n(&ntab, __ATOMIC_RELAXED) == 0)
		return false; /* (close() of a program without vsock: no lock) */
	pthread_mutex_lock(&lock);
	for (int i = 0; i < ntab && !r; i++)
		r = tab[i].ctl == fd && fd >= 0;
	pthread_mutex_unlock(&lock);
	return r;
}

/* Our control channels' fds, sorted; returns how many. */
int vs_ctl_fds(int *out, int max)
{
	int n = 0;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < ntab && n < max; i++)
		if (tab[i].ctl >= 0)
			out[n++] = tab[i].ctl;
	pthread_mutex_unlock(&lock);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
			int t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

uint32_t vs_local_cid(void)
{
	return local_cid;
}

/* The environment copy, for a program exec'd with one of our sockets:
 * ino,type,state,port,peer_cid,peer_port;...  (lock held) */
static void env_update(void)
{
	char *p = env_buf + sizeof(ENV_NAME) - 1, *end = env_buf + sizeof(env_buf);
	*p = '\0';
	for (int i = ntab - 1; i >= 0; i--) {
		const struct vs_sock *s = &tab[i];
		if (s->state != VS_CONNECTED && s->state != VS_LISTEN)
			continue;
		char one[96];
		int n =
		    snprintf(one, sizeof(one), "%llu,%d,%d,%u,%u,%u;", (unsigned long long)s->ino,
			     s->type, (int)s->state, s->port, s->peer_cid, s->peer_port);
		if (n <= 0 || p + n >= end)
			break;
		memcpy(p, one, (size_t)n + 1);
		p += n;
	}
}

/* Drop entries whose socket no process fd of ours refers to any more. */
static void gc(void)
{
	char path[64], link[64];
	if (access("/proc/self/fd", R_OK) != 0)
		return; /* no /proc: keep everything */
	ino_t *live = calloc((size_t)ntab, sizeof(*live));
	if (!live)
		return;
	int nlive = 0;
	for (int fd = 0; fd < 65536 && nlive < ntab; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n < 0) {
			if (errno == ENOENT && fd > 4096)
				break;
			continue;
		}
		link[n] = '\0';
		unsigned long long ino;
		if (sscanf(link, "socket:[%llu]", &ino) == 1)
			for (int i = 0; i < ntab; i++)
				if (tab[i].ino == (ino_t)ino)
					live[nlive++] = (ino_t)ino;
	}
	int k = 0;
	for (int i = 0; i < ntab; i++) {
		bool keep = tab[i].ctl >= 0;
		for (int j = 0; j < nlive && !keep; j++)
			keep = live[j] == tab[i].ino;
		if (keep)
			tab[k++] = tab[i];
	}
	ntab = k;
	free(live);
}

/* Add (lock held); NULL when out of memory. */
static struct vs_sock *add(ino_t ino, int type)
{
	if (ntab >= 64 && ntab == captab)
		gc();
	if (ntab == captab) {
		int cap = captab ? captab * 2 : 16;
		struct vs_sock *t = realloc(tab, sizeof(*t) * (size_t)cap);
		if (!t)
			return NULL;
		tab = t;
		captab = cap;
	}
	struct vs_sock *s = &tab[ntab];
	*s = (struct vs_sock){.ino = ino,
			      .type = type,
			      .ctl = -1,
			      .buf_size = 262144,
			      .buf_min = 128,
			      .buf_max = 262144,
			      .timeout_us = 2000000};
	__atomic_store_n(&ntab, ntab + 1, __ATOMIC_RELAXED);
	return s;
}

/* Add an accepted connection's entry. */
int vs_add_connected(int fd, int type, uint32_t port, uint32_t peer_cid, uint32_t peer_port)
{
	pthread_mutex_lock(&lock);
	struct vs_sock *s = add(ino_of(fd), type);
	if (s) {
		s->state = VS_CONNECTED;
		s->port = port;
		s->peer_cid = peer_cid;
		s->peer_port = peer_port;
		env_update();
	}
	pthread_mutex_unlock(&lock);
	return s ? 0 : -1;
}

/* The socket's state changed (lock held). */
void vs_changed(void)
{
	env_update();
}

/* A fork while another thread holds the table must not leave it locked. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

static void fork_done(void)
{
	pthread_mutex_unlock(&lock);
}

__attribute__((constructor)) static void init(void)
{
	pthread_atfork(fork_prepare, fork_done, fork_done);
	vs_real.socket = dlsym(RTLD_NEXT, "socket");
	vs_real.close = dlsym(RTLD_NEXT, "close");
	vs_real.getsockopt = dlsym(RTLD_NEXT, "getsockopt");
	vs_real.setsockopt = dlsym(RTLD_NEXT, "setsockopt");
	vs_real.getsockname = dlsym(RTLD_NEXT, "getsockname");
	vs_real.getpeername = dlsym(RTLD_NEXT, "getpeername");
	vs_real.ioctl = dlsym(RTLD_NEXT, "ioctl");
	vs_real.open = dlsym(RTLD_NEXT, "open");
	vs_real.openat = dlsym(RTLD_NEXT, "openat");
	memcpy(env_buf, ENV_NAME, sizeof(ENV_NAME));
	/* Sockets a program before the exec left us. */
	const char *e = getenv("V4V_VSOCK_FDS");
	pthread_mutex_lock(&lock);
	while (e && *e) {
		unsigned long long ino;
		int type, state, n = 0;
		unsigned port, pcid, pport;
		if (sscanf(e, "%llu,%d,%d,%u,%u,%u;%n", &ino, &type, &state, &port, &pcid, &pport,
			   &n) != 6 ||
		    n == 0)
			break;
		if ((state == VS_CONNECTED || state == VS_LISTEN) &&
		    (type == SOCK_STREAM || type == SOCK_SEQPACKET)) {
			struct vs_sock *s = add((ino_t)ino, type);
			if (s) {
				s->state = (enum vs_state)state;
				s->port = port;
				s->peer_cid = pcid;
				s->peer_port = pport;
			}
		}
		e += n;
	}
	env_update();
	pthread_mutex_unlock(&lock);
	putenv(env_buf);
}

/* ---- the relay ------------------------------------------------------- */

static int domain_fd(void)
{
	const char *e = getenv("V4V_DOMAIN_FD");
	char *end;
	if (!e || !*e)
		return -1;
	long fd = strtol(e, &end, 10);
	if (*end || fd < 0 || fd > INT_MAX || fcntl((int)fd, F_GETFD) < 0)
		return -1;
	return (int)fd;
}

static const char *relay_path(void)
{
	static char path[PATH_MAX];
	const char *e = getenv("V4V_VSOCK_RELAY");
	if (e && *e)
		return e;
	Dl_info di;
	if (!path[0] && dladdr((void *)relay_path, &di) && di.dli_fname) {
		const char *slash = strrchr(di.dli_fname, '/');
		if (slash && (size_t)(slash - di.dli_fname) + 20 < sizeof(path)) {
			memcpy(path, di.dli_fname, (size_t)(slash - di.dli_fname));
			strcpy(path + (slash - di.dli_fname), "/v4v-vsock-relay");
			if (access(path, X_OK) != 0)
				path[0] = '\0';
		}
	}
	return path[0] ? path : RELAY_PATH;
}

struct spawn {
	const char *path;
	char *argv[3];
	char *envp[4];
	int b, d, dom;
	bool debug;
};

/* The vfork child: fds 3, 4, 5 and nothing else of the program's. */
static int spawn_child(void *arg)
{
	struct spawn *sp = arg;
	int b = fcntl(sp->b, F_DUPFD, 16), d = fcntl(sp->d, F_DUPFD, 16);
	int dom = fcntl(sp->dom, F_DUPFD, 16);
	int null = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR);
	if (b < 0 || d < 0 || dom < 0 || null < 0)
		_exit(127);
	dup2(null, 0);
	dup2(null, 1);
	if (!sp->debug)
		dup2(null, 2);
	dup2(b, VS_FD_DATA);
	dup2(d, VS_FD_CTL);
	dup2(dom, VS_FD_DOMAIN);
	syscall(SYS_close_range, VS_FD_DOMAIN + 1, ~0u, 0);
	/* Fork again and leave: the relay is init's, and this child, which has
	 * no exit signal (it never execs, which would give it SIGCHLD), is
	 * reaped by spawn_relay alone.  (A raw fork: only execve follows.) */
	long pid = syscall(SYS_fork);
	if (pid == 0) {
		execve(sp->path, sp->argv, sp->envp);
		_exit(127);
	}
	_exit(pid < 0 ? 1 : 0);
}

/* Start a relay on (b, d) and read its hello; 0 or a positive errno. */
static int spawn_relay(const char *mode, int b, int d, int ctl, struct vs_rep *hello)
{
	int dom = domain_fd();
	if (dom < 0)
		return EAFNOSUPPORT; /* not in a v4v domain: no vsock at all */
	struct spawn sp = {.path = relay_path(),
			   .b = b,
			   .d = d,
			   .dom = dom,
			   .debug = getenv("V4V_VSOCK_DEBUG") != NULL};
	sp.argv[0] = (char *)"v4v-vsock-relay";
	sp.argv[1] = (char *)mode;
	char envdom[32];
	snprintf(envdom, sizeof(envdom), "V4V_DOMAIN_FD=%d", VS_FD_DOMAIN);
	sp.envp[0] = envdom;
	sp.envp[1] = sp.debug ? (char *)"V4V_VSOCK_DEBUG=1" : NULL;
	size_t stack_len = 64 << 10;
	char *stack = malloc(stack_len);
	if (!stack)
		return ENOMEM;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* No exit signal: the program's SIGCHLD handler and wait(-1) never see
	 * it (reaped below with __WCLONE; the relay is its child, forked away). */
	pid_t pid = clone(spawn_child, stack + stack_len, CLONE_VM | CLONE_VFORK, &sp);
	int err = pid < 0 ? errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(stack);
	if (pid < 0)
		return err == EAGAIN ? EAGAIN : ENOMEM;
	int st;
	while (waitpid(pid, &st, __WCLONE) < 0 && errno == EINTR)
		;
	vs_real.close(b);
	vs_real.close(d);
	struct pollfd p = {.fd = ctl, .events = POLLIN};
	int r;
	do
		r = poll(&p, 1, HELLO_MS);
	while (r < 0 && errno == EINTR);
	if (r != 1 || recv(ctl, hello, sizeof(*hello), 0) != sizeof(*hello))
		return ENETDOWN; /* the relay did not start */
	if (hello->err)
		return hello->err;
	local_cid = hello->domid + VS_CID_OFFSET;
	return 0;
}

/* The domain's CID, asking a short-lived relay if no socket has yet. */
uint32_t vs_query_cid(void)
{
	if (local_cid)
		return local_cid;
	int sv[2], cv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cv) < 0) {
		vs_real.close(sv[0]);
		vs_real.close(sv[1]);
		return 0;
	}
	struct vs_rep h;
	spawn_relay("cid", sv[1], cv[1], cv[0], &h);
	vs_real.close(sv[0]);
	vs_real.close(cv[0]);
	return local_cid;
}

/* ---- socket ---------------------------------------------------------- */

static int fail(int e)
{
	errno = e;
	return -1;
}

static int vs_socket(int type, int protocol)
{
	int t = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (t != SOCK_STREAM && t != SOCK_SEQPACKET && t != SOCK_DGRAM)
		return fail(ESOCKTNOSUPPORT);
	int kt = t == SOCK_DGRAM ? SOCK_SEQPACKET : t; /* (dgram: records with a header) */
	if (protocol != 0 && protocol != PF_VSOCK)
		return fail(EPROTONOSUPPORT);
	int sv[2], cv[2], err;
	if (socketpair(AF_UNIX, kt | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cv) < 0) {
		err = errno;
		vs_real.close(sv[0]);
		vs_real.close(sv[1]);
		return fail(err);
	}
	struct vs_rep h;
	const char *mode = t == SOCK_SEQPACKET ? "seqpacket" : t == SOCK_DGRAM ? "dgram" : "stream";
	err = spawn_relay(mode, sv[1], cv[1], cv[0], &h);
	if (err) {
		vs_real.close(sv[0]);
		vs_real.close(cv[0]);
		return fail(err);
	}
	/* Keep the control end out of the program's way (and of FD_SETSIZE). */
	int ctl = fcntl(cv[0], F_DUPFD_CLOEXEC, 1024);
	if (ctl >= 0)
		vs_real.close(cv[0]);
	else
		ctl = cv[0];
	if (type & SOCK_NONBLOCK)
		fcntl(sv[0], F_SETFL, O_NONBLOCK);
	if (!(type & SOCK_CLOEXEC))
		fcntl(sv[0], F_SETFD, 0);
	pthread_mutex_lock(&lock);
	struct vs_sock *s = add(ino_of(sv[0]), t);
	if (s)
		s->ctl = ctl;
	pthread_mutex_unlock(&lock);
	if (!s) {
		vs_real.close(sv[0]);
		vs_real.close(ctl);
		return fail(ENOMEM);
	}
	if (t == SOCK_DGRAM)
		vs_dgram_mark(sv[0], true);
	return sv[0];
}

int socket(int domain, int type, int protocol)
{
	if (domain != AF_VSOCK)
		return vs_real.socket(domain, type, protocol);
	return vs_socket(type, protocol); /* never the kernel's */
}

int socketpair(int domain, int type, int protocol, int sv[2])
{
	static int (*real)(int, int, int, int[2]);
	if (domain == AF_VSOCK)
		return fail(EOPNOTSUPP); /* as Linux's vsock */
	if (!real)
		real = dlsym(RTLD_NEXT, "socketpair");
	return real(domain, type, protocol, sv);
}
