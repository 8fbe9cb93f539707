/* SPDX-License-Identifier: MIT */
/*
 * SOCK_DGRAM vsock sockets: the program's fd is a SOCK_SEQPACKET pair
 * whose records carry a struct vs_dgram (the peer) before the payload, so
 * the data calls are interposed on those fds, and only on them: a table by
 * fd number (set at socket(), cleared at close()) keeps every other fd's
 * read and write one array look-up away from libc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "preload/preload.h"
#include "preload/vsock.h"

#define MAX_FD	1024
#define MAX_IOV 64

static unsigned char is_dg[MAX_FD];

void vs_dgram_mark(int fd, bool on)
{
	if (fd >= 0 && fd < MAX_FD)
		__atomic_store_n(&is_dg[fd], on, __ATOMIC_RELAXED);
}

bool vs_is_dgram(int fd)
{
	return fd >= 0 && fd < MAX_FD && __atomic_load_n(&is_dg[fd], __ATOMIC_RELAXED);
}

#define REAL(name)                                                                                 \
	static typeof(name) *real_;                                                                \
	if (!real_)                                                                                \
		real_ = (typeof(name) *)dlsym(RTLD_NEXT, #name);

static int fail(int e)
{
	errno = e;
	return -1;
}

/* The header for a send to `to` (NULL: the connected peer). */
static int dest(int fd, const struct sockaddr *to, socklen_t tolen, struct vs_dgram *h)
{
	uint32_t cid, port;
	if (to) {
		if (tolen < sizeof(struct sockaddr_vm))
			return EINVAL;
		if (to->sa_family != AF_VSOCK)
			return EAFNOSUPPORT;
		const struct sockaddr_vm *vm = (const struct sockaddr_vm *)to;
		cid = vm->svm_cid;
		port = vm->svm_port;
	} else {
		struct vs_sock *s = vs_find(fd);
		if (!s)
			return EBADF;
		bool conn = s->state == VS_CONNECTED;
		cid = s->peer_cid;
		port = s->peer_port;
		vs_unlock();
		if (!conn)
			return ENOTCONN;
	}
	if (cid == VMADDR_CID_LOCAL || cid == VMADDR_CID_ANY)
		cid = vs_local_cid();
	if (cid < VS_CID_OFFSET)
		return EHOSTUNREACH;
	*h = (struct vs_dgram){.domid = cid - VS_CID_OFFSET, .port = port};
	return 0;
}

static ssize_t dg_send(int fd, const struct iovec *iov, size_t n, int flags,
		       const struct sockaddr *to, socklen_t tolen)
{
	REAL(sendmsg);
	struct vs_dgram h;
	struct iovec v[MAX_IOV + 1];
	if (n > MAX_IOV)
		return fail(EMSGSIZE);
	int e = dest(fd, to, tolen, &h);
	if (e)
		return fail(e);
	v[0] = (struct iovec){&h, sizeof(h)};
	memcpy(v + 1, iov, n * sizeof(*iov));
	struct msghdr m = {.msg_iov = v, .msg_iovlen = n + 1};
	ssize_t r = real_(fd, &m, flags & (MSG_DONTWAIT | MSG_NOSIGNAL));
	return r < 0 ? r : r - (ssize_t)sizeof(h);
}

static ssize_t dg_recv(int fd, const struct iovec *iov, size_t n, int flags, struct sockaddr *from,
		       socklen_t *fromlen, int *mflags)
{
	REAL(recvmsg);
	struct vs_dgram h;
	struct iovec v[MAX_IOV + 1];
	if (n > MAX_IOV)
		return fail(EMSGSIZE);
	v[0] = (struct iovec){&h, sizeof(h)};
	memcpy(v + 1, iov, n * sizeof(*iov));
	struct msghdr m = {.msg_iov = v, .msg_iovlen = n + 1};
	ssize_t r = real_(fd, &m, flags & (MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC | MSG_WAITALL));
	if (r < 0)
		return r;
	if (r < (ssize_t)sizeof(h))
		return 0; /* (the relay went away) */
	if (mflags)
		*mflags = m.msg_flags;
	if (from && fromlen) {
		struct sockaddr_vm vm = {
		    .svm_family = AF_VSOCK, .svm_port = h.port, .svm_cid = h.domid + VS_CID_OFFSET};
		memcpy(from, &vm, *fromlen < sizeof(vm) ? *fromlen : sizeof(vm));
		*fromlen = sizeof(vm);
	}
	return r - (ssize_t)sizeof(h);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
	       socklen_t tolen)
{
	if (!vs_is_dgram(fd)) {
		REAL(sendto);
		return real_(fd, buf, len, flags, to, tolen);
	}
	struct iovec iov = {(void *)buf, len};
	return dg_send(fd, &iov, 1, flags, to, tolen);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	if (!vs_is_dgram(fd)) {
		REAL(send);
		return real_(fd, buf, len, flags);
	}
	struct iovec iov = {(void *)buf, len};
	return dg_send(fd, &iov, 1, flags, NULL, 0);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	if (!vs_is_dgram(fd)) {
		REAL(write);
		return real_(fd, buf, len);
	}
	struct iovec iov = {(void *)buf, len};
	return dg_send(fd, &iov, 1, 0, NULL, 0);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	if (!vs_is_dgram(fd)) {
		REAL(writev);
		return real_(fd, iov, n);
	}
	return n < 0 ? fail(EINVAL) : dg_send(fd, iov, (size_t)n, 0, NULL, 0);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (!vs_is_dgram(fd)) {
		REAL(sendmsg);
		return real_(fd, msg, flags);
	}
	return dg_send(fd, msg->msg_iov, msg->msg_iovlen, flags, msg->msg_name,
		       msg->msg_name ? msg->msg_namelen : 0);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
		 socklen_t *fromlen)
{
	if (!vs_is_dgram(fd)) {
		REAL(recvfrom);
		return real_(fd, buf, len, flags, from, fromlen);
	}
	struct iovec iov = {buf, len};
	return dg_recv(fd, &iov, 1, flags, from, fromlen, NULL);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	if (!vs_is_dgram(fd)) {
		REAL(recv);
		return real_(fd, buf, len, flags);
	}
	struct iovec iov = {buf, len};
	return dg_recv(fd, &iov, 1, flags, NULL, NULL, NULL);
}

ssize_t read(int fd, void *buf, size_t len)
{
	if (!vs_is_dgram(fd)) {
		REAL(read);
		return real_(fd, buf, len);
	}
	struct iovec iov = {buf, len};
	return dg_recv(fd, &iov, 1, 0, NULL, NULL, NULL);
}

ssize_t readv(int fd, const struct iovec *iov, int n)
{
	if (!vs_is_dgram(fd)) {
		REAL(readv);
		return real_(fd, iov, n);
	}
	return n < 0 ? fail(EINVAL) : dg_recv(fd, iov, (size_t)n, 0, NULL, NULL, NULL);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (!vs_is_dgram(fd)) {
		REAL(recvmsg);
		return real_(fd, msg, flags);
	}
	socklen_t nl = msg->msg_namelen;
	ssize_t r = dg_recv(fd, msg->msg_iov, msg->msg_iovlen, flags, msg->msg_name,
			    msg->msg_name ? &nl : NULL, &msg->msg_flags);
	if (r >= 0) {
		msg->msg_namelen = msg->msg_name ? nl : 0;
		msg->msg_controllen = 0;
	}
	return r;
}
