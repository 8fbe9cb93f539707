/* SPDX-License-Identifier: MIT */
/*
 * What a program asks of a vsock socket besides data: its addresses, its
 * options (level AF_VSOCK, 8-byte values), SO_ERROR of a non-blocking
 * connect, the /dev/vsock device's IOCTL_VM_SOCKETS_GET_LOCAL_CID, and
 * keeping our own control channels from being closed by programs that
 * close every fd they do not know (close, close_range, closefrom).
 */
#define _GNU_SOURCE
#undef _FILE_OFFSET_BITS /* we define open and open64 both */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "preload/preload.h"

#define MAX_DEVS 16

static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;
static ino_t devs[MAX_DEVS]; /* our stand-ins for /dev/vsock, by inode */

static int fail(int e)
{
	errno = e;
	return -1;
}

static void put_addr(struct sockaddr *addr, socklen_t *len, uint32_t cid, uint32_t port)
{
	struct sockaddr_vm vm = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = cid};
	if (addr && len) {
		memcpy(addr, &vm, *len < sizeof(vm) ? *len : sizeof(vm));
		*len = sizeof(vm);
	}
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct vs_sock *s = vs_find(fd);
	if (!s)
		return vs_real.getsockname(fd, addr, len);
	vs_finish(s);
	bool bound = s->state != VS_NEW && s->state != VS_CONNECTING && s->state != VS_FAILED;
	uint32_t port = bound ? s->port : VMADDR_PORT_ANY;
	uint32_t cid = bound ? vs_local_cid() : VMADDR_CID_ANY;
	bool inet = s->inet;
	vs_unlock();
	if (!len || (addr == NULL && *len))
		return fail(EFAULT);
	if (inet)
		vs_inet_addr(addr, len, cid, port);
	else
		put_addr(addr, len, cid, port);
	return 0;
}

int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct vs_sock *s = vs_find(fd);
	if (!s)
		return vs_real.getpeername(fd, addr, len);
	vs_finish(s);
	bool conn = s->state == VS_CONNECTED;
	uint32_t cid = s->peer_cid, port = s->peer_port;
	bool inet = s->inet;
	vs_unlock();
	if (!conn)
		return fail(ENOTCONN);
	if (!len)
		return fail(EFAULT);
	if (inet)
		vs_inet_addr(addr, len, cid, port);
	else
		put_addr(addr, len, cid, port);
	return 0;
}

static int get_int(void *val, socklen_t *len, int v)
{
	if (!len || *len < sizeof(int))
		return EINVAL;
	memcpy(val, &v, sizeof(int));
	*len = sizeof(int);
	return 0;
}

/* Level AF_VSOCK (lock held). */
static int vsock_get(struct vs_sock *s, int name, void *val, socklen_t *len)
{
	uint64_t v;
	switch (name) {
	case SO_VM_SOCKETS_BUFFER_SIZE: v = s->buf_size; break;
	case SO_VM_SOCKETS_BUFFER_MIN_SIZE: v = s->buf_min; break;
	case SO_VM_SOCKETS_BUFFER_MAX_SIZE: v = s->buf_max; break;
	case SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD:
	case SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW: {
		struct timeval tv = {.tv_sec = (time_t)(s->timeout_us / 1000000),
				     .tv_usec = (suseconds_t)(s->timeout_us % 1000000)};
		if (!len || *len < sizeof(tv))
			return EINVAL;
		memcpy(val, &tv, sizeof(tv));
		*len = sizeof(tv);
		return 0;
	}
	default: return ENOPROTOOPT;
	}
	if (!len || *len < sizeof(v))
		return EINVAL;
	memcpy(val, &v, sizeof(v));
	*len = sizeof(v);
	return 0;
}

static int vsock_set(struct vs_sock *s, int name, const void *val, socklen_t len)
{
	uint64_t v;
	switch (name) {
	case SO_VM_SOCKETS_BUFFER_SIZE:
	case SO_VM_SOCKETS_BUFFER_MIN_SIZE:
	case SO_VM_SOCKETS_BUFFER_MAX_SIZE:
		if (len < sizeof(v))
			return EINVAL;
		memcpy(&v, val, sizeof(v));
		if (name == SO_VM_SOCKETS_BUFFER_MIN_SIZE)
			s->buf_min = v;
		else if (name == SO_VM_SOCKETS_BUFFER_MAX_SIZE)
			s->buf_max = v;
		else
			s->buf_size = v;
		s->buf_set = true;
		/* As Linux: the size is clamped to [min, max]. */
		if (s->buf_min > s->buf_max)
			s->buf_min = s->buf_max;
		if (s->buf_size > s->buf_max)
			s->buf_size = s->buf_max;
		if (s->buf_size < s->buf_min)
			s->buf_size = s->buf_min;
		return 0;
	case SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD:
	case SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW: {
		struct timeval tv;
		if (len < sizeof(tv))
			return EINVAL;
		memcpy(&tv, val, sizeof(tv));
		if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000)
			return EDOM;
		s->timeout_us = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
		return 0;
	}
	default: return ENOPROTOOPT;
	}
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct vs_sock *s = vs_find(fd);
	if (!s)
		return vs_real.getsockopt(fd, level, name, val, len);
	int e = -1;
	if (level != AF_VSOCK && level != SOL_SOCKET) {
		/* TCP/IP options of a mapped TCP socket: zero; else the kernel's. */
		e = s->inet ? get_int(val, len, 0) : -1;
	} else if (level == AF_VSOCK) {
		e = vsock_get(s, name, val, len);
	} else if (name == SO_ERROR) {
		vs_finish(s);
		e = get_int(val, len, s->so_error);
		s->so_error = 0;
	} else if (name == SO_TYPE) {
		e = get_int(val, len, s->type);
	} else if (name == SO_DOMAIN) {
		e = get_int(val, len, s->inet ? AF_INET : AF_VSOCK);
	} else if (name == SO_PROTOCOL) {
		e = get_int(val, len, 0);
	} else if (name == SO_ACCEPTCONN) {
		e = get_int(val, len, s->state == VS_LISTEN);
	}
	vs_unlock();
	if (e < 0) /* the rest (SO_TYPE, SO_RCVBUF...) the kernel socket answers */
		return vs_real.getsockopt(fd, level, name, val, len);
	return e ? fail(e) : 0;
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct vs_sock *s = level != SOL_SOCKET ? vs_find(fd) : NULL;
	if (!s)
		return vs_real.setsockopt(fd, level, name, val, len);
	if (level != AF_VSOCK) { /* a mapped TCP socket's TCP_NODELAY and such */
		bool inet = s->inet;
		vs_unlock();
		return inet ? 0 : vs_real.setsockopt(fd, level, name, val, len);
	}
	int e = vsock_set(s, name, val, len);
	vs_unlock();
	return e ? fail(e) : 0;
}

/* ---- /dev/vsock ------------------------------------------------------ */

static bool is_dev(int fd)
{
	struct stat st;
	bool r = false;
	if (fstat(fd, &st) < 0)
		return false;
	pthread_mutex_lock(&dev_lock);
	for (int i = 0; i < MAX_DEVS && !r; i++)
		r = devs[i] && devs[i] == st.st_ino;
	pthread_mutex_unlock(&dev_lock);
	return r;
}

/* A stand-in fd for /dev/vsock: the real device is never opened. */
static int open_dev(int flags)
{
	if (!vs_query_cid())
		return fail(ENODEV); /* no vsock here, as on a host without it */
	int fd = memfd_create("v4v-vsock-dev", flags & O_CLOEXEC ? MFD_CLOEXEC : 0);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return -1;
	pthread_mutex_lock(&dev_lock);
	int i = 0;
	while (i < MAX_DEVS && devs[i])
		i++;
	devs[i % MAX_DEVS] = st.st_ino;
	pthread_mutex_unlock(&dev_lock);
	return fd;
}

static bool is_dev_path(const char *path)
{
	return path && strcmp(path, "/dev/vsock") == 0;
}

#define OPEN_MODE(flags)                                                                           \
	mode_t mode = 0;                                                                           \
	if ((flags) & (O_CREAT | O_TMPFILE)) {                                                     \
		va_list ap;                                                                        \
		va_start(ap, flags);                                                               \
		mode = va_arg(ap, mode_t);                                                         \
		va_end(ap);                                                                        \
	}

int open(const char *path, int flags, ...)
{
	OPEN_MODE(flags);
	if (is_dev_path(path))
		return open_dev(flags);
	return vs_real.open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	OPEN_MODE(flags);
	if (is_dev_path(path))
		return open_dev(flags);
	return vs_real.open(path, flags | O_LARGEFILE, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	OPEN_MODE(flags);
	if (is_dev_path(path))
		return open_dev(flags);
	return vs_real.openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	OPEN_MODE(flags);
	if (is_dev_path(path))
		return open_dev(flags);
	return vs_real.openat(dirfd, path, flags | O_LARGEFILE, mode);
}

/* (glibc's fortified open and openat) */
int __open_2(const char *path, int flags);
int __open_2(const char *path, int flags)
{
	return is_dev_path(path) ? open_dev(flags) : vs_real.open(path, flags);
}
int __open64_2(const char *path, int flags);
int __open64_2(const char *path, int flags)
{
	return is_dev_path(path) ? open_dev(flags) : vs_real.open(path, flags | O_LARGEFILE);
}
int __openat_2(int dirfd, const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags)
{
	return is_dev_path(path) ? open_dev(flags) : vs_real.openat(dirfd, path, flags);
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (req == IOCTL_VM_SOCKETS_GET_LOCAL_CID) {
		if (is_dev(fd)) {
			unsigned cid = vs_query_cid();
			if (!arg)
				return fail(EFAULT);
			memcpy(arg, &cid, sizeof(cid));
			return 0;
		}
		struct vs_sock *s = vs_find(fd);
		if (s) {
			vs_unlock();
			return fail(ENOTTY); /* as Linux: a socket is not the device */
		}
	}
	return vs_real.ioctl(fd, req, arg);
}

/* ---- our fds --------------------------------------------------------- */

int close(int fd)
{
	if (vs_is_ctl(fd))
		return 0; /* ours: the program thinks it closed something it never opened */
	if (vs_is_dgram(fd)) {
		/* (a datagram socket keeps its control channel: it goes now) */
		struct vs_sock *s = vs_find(fd);
		if (s) {
			if (s->ctl >= 0)
				vs_real.close(s->ctl);
			s->ctl = -1;
			vs_unlock();
		}
		vs_dgram_mark(fd, false);
	}
	if (is_dev(fd)) {
		struct stat st;
		fstat(fd, &st);
		pthread_mutex_lock(&dev_lock);
		for (int i = 0; i < MAX_DEVS; i++)
			if (devs[i] == st.st_ino)
				devs[i] = 0;
		pthread_mutex_unlock(&dev_lock);
	}
	return vs_real.close(fd);
}

/* close_range, sparing our control channels (CLOSE_RANGE_CLOEXEC too). */
int close_range(unsigned first, unsigned last, int flags)
{
	int ours[64];
	int n = vs_ctl_fds(ours, 64);
	unsigned from = first;
	for (int i = 0; i < n && from <= last; i++) {
		unsigned fd = (unsigned)ours[i];
		if (fd < from || fd > last)
			continue;
		if (fd > from && syscall(SYS_close_range, from, fd - 1, flags) < 0)
			return -1;
		from = fd + 1;
		if (fd == ~0u)
			return 0;
	}
	if (from > last)
		return 0;
	return (int)syscall(SYS_close_range, from, last, flags);
}

void closefrom(int lowfd)
{
	close_range((unsigned)lowfd, ~0u, 0);
}
