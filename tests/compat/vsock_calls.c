/* SPDX-License-Identifier: MIT */
/*
 * The calls real programs make on vsock sockets, one after another, as
 * a C program sees them through libv4v-preload.so (vsock.sh runs it in a
 * domain, under novsock): a listener and a connection to itself, and on
 * them non-blocking connect, accept4 flags, FIONREAD, readv/writev, select,
 * epoll, dup2, close_range, fork, SO_ERROR and the AF_VSOCK options, EOF,
 * EPIPE and SIGPIPE, and the errors Linux's vsock gives.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PORT 6500

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "vsock_calls:%d: %s: ", __LINE__, #cond);                  \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, " (errno %s)\n", strerror(errno));                         \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static volatile sig_atomic_t got_sigpipe;

static void on_sigpipe(int sig)
{
	(void)sig;
	got_sigpipe = 1;
}

static struct sockaddr_vm vm(unsigned cid, unsigned port)
{
	return (struct sockaddr_vm){.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
}

static int readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

int main(void)
{
	socklen_t len;
	struct sockaddr_vm a;
	char buf[64];

	/* The device and the errors of socket(). */
	int dev = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
	CHECK(dev >= 0, "open /dev/vsock");
	unsigned cid = 0;
	CHECK(ioctl(dev, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) == 0 && cid > 2, "cid %u", cid);
	close(dev);
	int sv[2];
	CHECK(socketpair(AF_VSOCK, SOCK_STREAM, 0, sv) < 0 && errno == EOPNOTSUPP, "socketpair");
	CHECK(socket(AF_VSOCK, SOCK_RAW, 0) < 0 && errno == ESOCKTNOSUPPORT, "raw");

	/* A listener. */
	int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0 && s < 1024, "socket %d", s);
	CHECK(fcntl(s, F_GETFD) & FD_CLOEXEC, "SOCK_CLOEXEC");
	a = vm(VMADDR_CID_ANY, PORT);
	CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0, "bind");
	CHECK(listen(s, 8) == 0, "listen");
	int v = 0;
	len = sizeof(v);
	CHECK(getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v == 1, "ACCEPTCONN");
	len = sizeof(a);
	CHECK(getsockname(s, (struct sockaddr *)&a, &len) == 0 && a.svm_cid == cid &&
		  a.svm_port == PORT,
	      "getsockname %u:%u", a.svm_cid, a.svm_port);
	CHECK(ioctl(s, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &v) < 0 && errno == ENOTTY, "socket ioctl");

	/* A non-blocking connect, after a close_range that must spare the
	 * preload's own descriptors. */
	int c = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK(c >= 0, "socket");
	CHECK(close_range((unsigned)c + 1, ~0u, 0) == 0, "close_range");
	a = vm(VMADDR_CID_LOCAL, PORT);
	CHECK(connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == EINPROGRESS,
	      "EINPROGRESS");
	struct pollfd p = {.fd = c, .events = POLLOUT};
	CHECK(poll(&p, 1, 5000) == 1 && (p.revents & POLLOUT), "POLLOUT after connect");
	len = sizeof(v);
	CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &v, &len) == 0 && v == 0, "SO_ERROR %d", v);
	CHECK(connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == EISCONN, "EISCONN");
	len = sizeof(a);
	CHECK(getpeername(c, (struct sockaddr *)&a, &len) == 0 && a.svm_cid == cid &&
		  a.svm_port == PORT,
	      "getpeername");

	CHECK(readable(s, 5000), "listener readable");
	len = sizeof(a);
	int acc = accept4(s, (struct sockaddr *)&a, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	CHECK(acc >= 0 && acc < 1024, "accept4");
	CHECK(fcntl(acc, F_GETFL) & O_NONBLOCK, "accept4 SOCK_NONBLOCK");
	CHECK(fcntl(acc, F_GETFD) & FD_CLOEXEC, "accept4 SOCK_CLOEXEC");
	CHECK(a.svm_family == AF_VSOCK && a.svm_cid == cid, "accept's address");
	CHECK(recv(acc, buf, 1, 0) < 0 && errno == EAGAIN, "non-blocking recv");

	/* Data: writev in, FIONREAD, readv out; select and epoll see it. */
	struct iovec iov[2] = {{(char *)"hel", 3}, {(char *)"lo", 2}};
	CHECK(writev(c, iov, 2) == 5, "writev");
	fd_set rs;
	FD_ZERO(&rs);
	FD_SET(acc, &rs);
	struct timeval tv = {5, 0};
	CHECK(select(acc + 1, &rs, NULL, NULL, &tv) == 1 && FD_ISSET(acc, &rs), "select");
	int nread = 0;
	for (int i = 0; i < 100 && nread < 5; i++) {
		ioctl(acc, FIONREAD, &nread);
		if (nread < 5)
			usleep(10000);
	}
	CHECK(nread == 5, "FIONREAD %d", nread);
	char x1[2], x2[3];
	struct iovec out[2] = {{x1, 2}, {x2, 3}};
	CHECK(readv(acc, out, 2) == 5 && memcmp(x1, "he", 2) == 0 && memcmp(x2, "llo", 3) == 0,
	      "readv");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
	CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) == 0, "epoll_ctl");
	CHECK(send(acc, "back", 4, 0) == 4, "send");
	CHECK(epoll_wait(ep, &ev, 1, 5000) == 1 && ev.data.fd == c, "epoll_wait");
	CHECK(recv(c, buf, sizeof(buf), 0) == 4 && memcmp(buf, "back", 4) == 0, "recv");
	close(ep);

	/* Options: level AF_VSOCK, 8 bytes. */
	unsigned long long sz = 0;
	len = 4;
	CHECK(getsockopt(c, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &sz, &len) < 0 && errno == EINVAL,
	      "4-byte BUFFER_SIZE");
	len = sizeof(sz);
	CHECK(getsockopt(c, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &sz, &len) == 0 && len == 8 &&
		  sz == 262144,
	      "BUFFER_SIZE");
	CHECK(getsockopt(c, AF_VSOCK, 99, &sz, &len) < 0 && errno == ENOPROTOOPT, "unknown");
	len = sizeof(v);
	CHECK(getsockopt(c, SOL_SOCKET, SO_TYPE, &v, &len) == 0 && v == SOCK_STREAM, "SO_TYPE");

	/* fork: both sides keep working. */
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		_exit(send(c, "child", 5, 0) == 5 ? 0 : 1);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child");
	CHECK(send(c, "parent", 6, 0) == 6, "parent send");
	size_t got = 0;
	while (got < 11 && readable(acc, 5000)) {
		ssize_t n = recv(acc, buf + got, sizeof(buf) - got, 0);
		CHECK(n > 0, "recv after fork");
		got += (size_t)n;
	}
	CHECK(got == 11 && memcmp(buf, "childparent", 11) == 0, "after fork: %.*s", (int)got, buf);

	/* dup2 keeps the socket (and what it is); the original can go. */
	CHECK(dup2(acc, 100) == 100, "dup2");
	close(acc);
	len = sizeof(a);
	CHECK(getpeername(100, (struct sockaddr *)&a, &len) == 0 && a.svm_cid == cid, "dup'd");

	/* The peer closes: EOF, then EPIPE, and SIGPIPE without MSG_NOSIGNAL. */
	close(100);
	CHECK(readable(c, 5000), "EOF readable");
	int fl = fcntl(c, F_GETFL);
	fcntl(c, F_SETFL, fl & ~O_NONBLOCK);
	CHECK(recv(c, buf, sizeof(buf), 0) == 0, "EOF");
	CHECK(send(c, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "EPIPE");
	signal(SIGPIPE, on_sigpipe);
	CHECK(send(c, "x", 1, 0) < 0 && errno == EPIPE && got_sigpipe, "SIGPIPE");
	close(c);

	/* Nobody listens: ECONNRESET; blocking, as programs mostly connect. */
	c = socket(AF_VSOCK, SOCK_STREAM, 0);
	a = vm(cid, PORT + 1);
	CHECK(connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == ECONNRESET,
	      "ECONNRESET");
	close(c);
	/* No such domain. */
	c = socket(AF_VSOCK, SOCK_STREAM, 0);
	a = vm(30000, PORT);
	CHECK(connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == EHOSTUNREACH,
	      "EHOSTUNREACH");
	close(c);
	a = vm(cid + 1, PORT);
	c = socket(AF_VSOCK, SOCK_STREAM, 0);
	CHECK(bind(c, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == EADDRNOTAVAIL, "bind cid");
	close(c);
	close(s);
	printf("vsock calls ok\n");
	return 0;
}
