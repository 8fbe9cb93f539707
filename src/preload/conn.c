/* SPDX-License-Identifier: MIT */
/*
 * Setting a vsock socket up: bind, listen, connect (blocking or not),
 * accept.  Each is a request to the socket's relay over its control
 * channel (vsock.h); a listener's connections arrive on its own fd.
 *
 * A non-blocking connect must leave the fd unwritable until the relay has
 * connected (poll/select/epoll wait for POLLOUT, then read SO_ERROR): we
 * fill the socket's send buffer with filler the relay reads and drops once
 * it has its answer; the answer waits on the control channel for whichever
 * call asks first (SO_ERROR, connect again, getpeername).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "preload/preload.h"
#include "preload/vsock.h"

static int fail(int e)
{
	errno = e;
	return -1;
}

#define REAL(name, ...)                                                                            \
	static typeof(name) *real_;                                                                \
	if (!real_)                                                                                \
		real_ = (typeof(name) *)dlsym(RTLD_NEXT, #name);                                   \
	return real_(__VA_ARGS__)

/* One request and its answer (lock held on entry and on return). */
static int ask(struct vs_sock *s, const struct vs_req *q, struct vs_rep *r)
{
	if (s->ctl < 0)
		return EINVAL; /* set up already (or before an exec) */
	if (send(s->ctl, q, sizeof(*q), MSG_NOSIGNAL) != sizeof(*q))
		return ENETDOWN;
	ssize_t n;
	do
		n = recv(s->ctl, r, sizeof(*r), 0);
	while (n < 0 && errno == EINTR);
	return n == sizeof(*r) ? r->err : ENETDOWN;
}

static void done_setup(struct vs_sock *s)
{
	if (s->ctl >= 0)
		vs_real.close(s->ctl);
	s->ctl = -1;
}

static int check_addr(const struct sockaddr *a, socklen_t len, const struct sockaddr_vm **vm)
{
	if (!a || len < sizeof(struct sockaddr_vm))
		return EINVAL;
	if (a->sa_family != AF_VSOCK)
		return EAFNOSUPPORT;
	*vm = (const struct sockaddr_vm *)a;
	return 0;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct vs_sock *s = vs_find(fd);
	int ret;
	if (!s && vs_inet_bind(fd, addr, len, &ret))
		return ret;
	if (!s) {
		REAL(bind, fd, addr, len);
	}
	const struct sockaddr_vm *vm;
	int e = check_addr(addr, len, &vm);
	uint32_t cid = vs_local_cid();
	if (!e && s->state != VS_NEW)
		e = EINVAL;
	if (!e && vm->svm_cid != VMADDR_CID_ANY && vm->svm_cid != VMADDR_CID_LOCAL &&
	    vm->svm_cid != cid)
		e = EADDRNOTAVAIL;
	if (!e) {
		struct vs_req q = {.op = VS_OP_BIND,
				   .port = vm->svm_port == VMADDR_PORT_ANY ? 0 : vm->svm_port,
				   .ring_len = s->buf_set ? s->buf_size : 0};
		struct vs_rep r;
		e = ask(s, &q, &r);
		if (!e) {
			s->state = VS_BOUND;
			s->port = r.port;
		}
	}
	vs_unlock();
	return e ? fail(e) : 0;
}

int listen(int fd, int backlog)
{
	struct vs_sock *s = vs_find(fd);
	if (!s) {
		REAL(listen, fd, backlog);
	}
	int e = 0;
	if (s->type == SOCK_DGRAM)
		e = EOPNOTSUPP;
	else if (s->state == VS_LISTEN)
		e = 0;
	else if (s->state != VS_BOUND)
		e = EINVAL;
	else {
		struct vs_req q = {.op = VS_OP_LISTEN};
		struct vs_rep r;
		e = ask(s, &q, &r);
		if (!e) {
			s->state = VS_LISTEN;
			done_setup(s);
			vs_changed();
		}
	}
	vs_unlock();
	return e ? fail(e) : 0;
}

static void apply(struct vs_sock *s, const struct vs_rep *r, int err)
{
	if (err) {
		s->state = VS_FAILED;
		s->so_error = err;
	} else {
		s->state = VS_CONNECTED;
		s->port = r->port;
		s->peer_cid = r->peer_domid + VS_CID_OFFSET;
		s->peer_port = r->peer_port;
		vs_changed();
	}
	done_setup(s);
}

/* A non-blocking connect's answer, if it is there (lock held). */
void vs_finish(struct vs_sock *s)
{
	if (s->state != VS_CONNECTING)
		return;
	struct vs_rep r;
	ssize_t n = recv(s->ctl, &r, sizeof(r), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	apply(s, &r, n == sizeof(r) ? r.err : ECONNRESET);
}

/* A datagram socket's default peer, and the only one it hears (lock held). */
static int dgram_connect(struct vs_sock *s, const struct sockaddr_vm *vm)
{
	uint32_t cid = vm->svm_cid, me = vs_local_cid();
	if (cid == VMADDR_CID_LOCAL || cid == VMADDR_CID_ANY)
		cid = me;
	if (cid < VS_CID_OFFSET)
		return EHOSTUNREACH;
	struct vs_req q = {.op = VS_OP_CONNECT, .domid = cid - VS_CID_OFFSET, .port = vm->svm_port};
	struct vs_rep r;
	int e = ask(s, &q, &r);
	if (!e) {
		s->state = VS_CONNECTED;
		s->peer_cid = cid;
		s->peer_port = vm->svm_port;
	}
	return e;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct vs_sock *s = vs_find(fd);
	int ret;
	if (!s && vs_inet_connect(fd, addr, len, &ret))
		return ret;
	if (!s) {
		REAL(connect, fd, addr, len);
	}
	const struct sockaddr_vm *vm;
	int e = check_addr(addr, len, &vm);
	if (e)
		goto out;
	if (s->type == SOCK_DGRAM) {
		e = dgram_connect(s, vm);
		goto out;
	}
	if (s->state == VS_CONNECTING) {
		vs_finish(s);
		if (s->state == VS_CONNECTING)
			e = EALREADY;
		else if (s->state == VS_CONNECTED)
			e = EISCONN;
		else
			e = s->so_error, s->so_error = 0;
		goto out;
	}
	if (s->busy)
		e = EALREADY; /* another thread's blocking connect */
	else if (s->state == VS_CONNECTED)
		e = EISCONN;
	else if (s->state == VS_LISTEN || s->state == VS_FAILED || s->ctl < 0)
		e = EINVAL;
	if (e)
		goto out;

	uint32_t cid = vm->svm_cid, me = vs_local_cid();
	if (cid == VMADDR_CID_LOCAL || cid == VMADDR_CID_ANY || cid == me)
		cid = me;
	if (cid < VS_CID_OFFSET) {
		e = EHOSTUNREACH;
		goto out;
	}
	struct vs_req q = {.op = VS_OP_CONNECT,
			   .domid = cid - VS_CID_OFFSET,
			   .port = vm->svm_port,
			   .ring_len = s->buf_set ? s->buf_size : 0};
	uint64_t ms = s->timeout_us / 1000;
	q.timeout_ms = ms == 0 ? 1 : ms > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)ms;
	if (fcntl(fd, F_GETFL) & O_NONBLOCK) {
		static const char junk[VS_JUNK_CHUNK];
		ssize_t n;
		while ((n = send(fd, junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL)) > 0)
			q.junk += (uint64_t)n;
		if (send(s->ctl, &q, sizeof(q), MSG_NOSIGNAL) != sizeof(q))
			e = ENETDOWN;
		else
			s->state = VS_CONNECTING, e = EINPROGRESS;
		goto out;
	}
	/* Blocking: wait for the answer without holding the table. */
	int ctl = s->ctl;
	struct vs_rep r;
	s->busy = true;
	vs_unlock();
	e = send(ctl, &q, sizeof(q), MSG_NOSIGNAL) == sizeof(q) ? 0 : ENETDOWN;
	ssize_t n = 0;
	while (!e && (n = recv(ctl, &r, sizeof(r), 0)) < 0 && errno == EINTR)
		;
	if (!e)
		e = n == sizeof(r) ? r.err : ENETDOWN;
	s = vs_find(fd);
	if (!s)
		return e ? fail(e) : 0; /* closed meanwhile */
	s->busy = false;
	apply(s, &r, e);
	if (e)
		s->so_error = 0; /* reported here */
out:
	vs_unlock();
	return e ? fail(e) : 0;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	struct vs_sock *s = vs_find(fd);
	if (!s) {
		REAL(accept4, fd, addr, len, flags);
	}
	int type = s->type;
	bool inet = s->inet;
	bool listening = s->state == VS_LISTEN;
	vs_unlock();
	if (!listening)
		return fail(EINVAL);
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return fail(EINVAL);
	struct vs_accept rec;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&rec, sizeof(rec)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	ssize_t n = recvmsg(fd, &mh, MSG_WAITALL | (flags & SOCK_CLOEXEC ? MSG_CMSG_CLOEXEC : 0));
	if (n < 0)
		return -1; /* EAGAIN for a non-blocking listener, EINTR */
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	int nfd = -1;
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&nfd, CMSG_DATA(cm), sizeof(int));
	if (n != sizeof(rec) || rec.magic != VS_ACCEPT_MAGIC || nfd < 0) {
		if (nfd >= 0)
			vs_real.close(nfd);
		return fail(ECONNABORTED); /* the relay went away */
	}
	if (flags & SOCK_NONBLOCK)
		fcntl(nfd, F_SETFL, O_NONBLOCK);
	uint32_t pcid = rec.peer_domid + VS_CID_OFFSET;
	if (vs_add_connected(nfd, type, rec.port, pcid, rec.peer_port) < 0) {
		vs_real.close(nfd);
		return fail(ENOMEM);
	}
	if (inet) {
		struct vs_sock *ns = vs_find(nfd);
		if (ns) {
			ns->inet = true;
			vs_unlock();
		}
		vs_inet_addr(addr, len, pcid, rec.peer_port);
	} else if (addr && len) {
		struct sockaddr_vm vm = {
		    .svm_family = AF_VSOCK, .svm_port = rec.peer_port, .svm_cid = pcid};
		memcpy(addr, &vm, *len < sizeof(vm) ? *len : sizeof(vm));
		*len = sizeof(vm);
	}
	return nfd;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct vs_sock *s = vs_find(fd);
	if (!s) {
		REAL(accept, fd, addr, len);
	}
	vs_unlock();
	return accept4(fd, addr, len, 0);
}
