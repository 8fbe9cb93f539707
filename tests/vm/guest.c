/* SPDX-License-Identifier: MIT */
/*
 * The test program inside the guest: a tiny AF_VSOCK netcat, linked
 * statically so the initramfs needs nothing else (tests/vm/vm.sh).
 *
 *   guest connect CID PORT   stdin -> the connection, then shutdown(WR);
 *                            the connection -> stdout until EOF
 *   guest listen PORT        accept one; the connection -> stdout until EOF
 *   guest hold CID PORT      connect, say "held", then block in read and
 *                            say how it ended (and how a write after it fares)
 *
 * Every failure is one line "guest: WHAT: ENAME" on stderr (ENAME the
 * errno's name, which the harness greps for), exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
	case ECONNRESET: return "ECONNRESET";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EPIPE: return "EPIPE";
	case ENODEV: return "ENODEV";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ENETUNREACH: return "ENETUNREACH";
	}
	return strerror(e);
}

static void die(const char *what)
{
	fprintf(stderr, "guest: %s: %s\n", what, ename(errno));
	exit(1);
}

static unsigned num(const char *s)
{
	return (unsigned)strtoul(s, NULL, 0);
}

static int vsock(void)
{
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0)
		die("socket");
	return s;
}

static int dial(unsigned cid, unsigned port)
{
	int s = vsock();
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect");
	return s;
}

/* Copy until EOF; false on a read or write error (errno set). */
static int pump(int from, int to, const char *what)
{
	static char buf[1 << 16];
	for (;;) {
		ssize_t n = read(from, buf, sizeof(buf));
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die(what);
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(to, buf + off, (size_t)(n - off));
			if (w < 0)
				die(what);
			off += w;
		}
	}
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 4 && strcmp(argv[1], "connect") == 0) {
		int s = dial(num(argv[2]), num(argv[3]));
		pump(0, s, "send");
		if (shutdown(s, SHUT_WR) < 0)
			die("shutdown");
		pump(s, 1, "recv");
		close(s);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "listen") == 0) {
		int s = vsock();
		struct sockaddr_vm a = {
		    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = num(argv[2])};
		if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4) < 0)
			die("listen");
		fprintf(stderr, "guest: listening\n");
		int c = accept(s, NULL, NULL);
		if (c < 0)
			die("accept");
		pump(c, 1, "recv");
		close(c);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "hold") == 0) {
		int s = dial(num(argv[2]), num(argv[3]));
		char c;
		fprintf(stderr, "guest: held\n");
		ssize_t n = read(s, &c, 1);
		if (n < 0)
			die("hold");
		/* Linux takes an RST on an open connection as the peer's
		 * close: the read ends with 0, and a write then fails. */
		const char *how = n == 0 ? "EOF" : "data";
		if (write(s, "x", 1) < 0)
			fprintf(stderr, "guest: hold: %s, then write: %s\n", how, ename(errno));
		else
			fprintf(stderr, "guest: hold: %s, then write: ok\n", how);
		return 0;
	}
	fprintf(stderr, "usage: guest connect CID PORT | listen PORT | hold CID PORT\n");
	return 2;
}
