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
 *   guest echo PORT          accept connections one after another, each
 *                            echoed back until its EOF (forever)
 *   guest sink PORT          accept one, read it to EOF, then say
 *                            "guest: sink BYTES bytes in SECS s"
 *   guest source CID PORT SECS SIZE
 *                            connect, write SIZE-byte blocks for SECS s,
 *                            shutdown(WR), wait for EOF, say how many
 *   guest ping CID PORT SECS SIZE
 *                            connect, send SIZE bytes and read them back
 *                            for SECS s, then say "guest: ping N round
 *                            trips p50 US us p99 US us"
 *   guest seq CID PORT N     a SOCK_SEQPACKET connection: N records of
 *                            random sizes, two at a time, each read back
 *                            whole and alone (an echo peer); says
 *                            "guest: seq N records ok"
 *
 * (echo, sink, source and ping are v4v-bench's vm transports; under TCG
 * their figures are a check of correctness and CPU use, not of speed.)
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
#include <sys/uio.h>
#include <time.h>
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

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int listener(unsigned port)
{
	int s = vsock();
	struct sockaddr_vm a = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4) < 0)
		die("listen");
	fprintf(stderr, "guest: listening\n");
	return s;
}

/* Read exactly len bytes; false at EOF. */
static int read_full(int s, char *buf, size_t len, const char *what)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = read(s, buf + off, len - off);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die(what);
		}
		off += (size_t)n;
	}
	return 1;
}

static void write_full(int s, const char *buf, size_t len, const char *what)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = write(s, buf + off, len - off);
		if (w < 0)
			die(what);
		off += (size_t)w;
	}
}

/* Bytes read from s until EOF, and the seconds from the first to EOF. */
static unsigned long long drain(int s, double *secs)
{
	static char buf[1 << 16];
	unsigned long long total = 0;
	double t0 = 0;
	for (;;) {
		ssize_t n = read(s, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("recv");
		}
		if (!total)
			t0 = now();
		total += (unsigned long long)n;
	}
	*secs = total ? now() - t0 : 0;
	return total;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

#define MAX_PINGS (1 << 18)

static int ping(unsigned cid, unsigned port, double secs, size_t size)
{
	static double rtt[MAX_PINGS];
	char *buf = calloc(1, size);
	int s = dial(cid, port);
	unsigned long n = 0;
	if (!buf)
		die("malloc");
	double end = now() + secs;
	do {
		double t0 = now();
		write_full(s, buf, size, "send");
		if (!read_full(s, buf, size, "recv")) {
			errno = ECONNRESET;
			die("ping");
		}
		if (n < MAX_PINGS)
			rtt[n] = (now() - t0) * 1e6;
		n++;
	} while (now() < end);
	unsigned long k = n < MAX_PINGS ? n : MAX_PINGS;
	qsort(rtt, k, sizeof(*rtt), cmp_double);
	fprintf(stderr, "guest: ping %lu round trips p50 %.1f us p99 %.1f us\n", n, rtt[k / 2],
		rtt[k * 99 / 100]);
	close(s);
	return 0;
}

static int source(unsigned cid, unsigned port, double secs, size_t size)
{
	char *buf = malloc(size);
	int s = dial(cid, port);
	unsigned long long total = 0;
	if (!buf)
		die("malloc");
	memset(buf, 'v', size);
	double t0 = now(), end = t0 + secs;
	do {
		write_full(s, buf, size, "send");
		total += size;
	} while (now() < end);
	if (shutdown(s, SHUT_WR) < 0)
		die("shutdown");
	double rest;
	drain(s, &rest);
	fprintf(stderr, "guest: source %llu bytes in %.3f s\n", total, now() - t0);
	close(s);
	return 0;
}

/* The largest record v4v-vm takes (libv4v(3): a v4v SEQPACKET record). */
#define SEQ_MAX (256u * 1024 - 32)

static unsigned char seq_byte(unsigned rec, unsigned i)
{
	return (unsigned char)((rec * 131 + i) * 2654435761u >> 13);
}

static int seq(unsigned cid, unsigned port, unsigned n)
{
	static unsigned char out[SEQ_MAX + 1], in[SEQ_MAX + 1];
	unsigned len[2];
	int s = socket(AF_VSOCK, SOCK_SEQPACKET, 0);
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
	if (s < 0)
		die("seq socket");
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("seq connect");
	srand(1);
	for (unsigned r = 0; r < n; r += 2) {
		for (unsigned k = 0; k < 2; k++) {
			len[k] = 1 + (unsigned)rand() % ((r + k) % 8 == 3 ? SEQ_MAX : 3000);
			for (unsigned i = 0; i < len[k]; i++)
				out[i] = seq_byte(r + k, i);
			if (send(s, out, len[k], 0) != (ssize_t)len[k])
				die("seq send");
		}
		for (unsigned k = 0; k < 2; k++) {
			struct iovec iov = {in, sizeof(in)};
			struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
			ssize_t got = recvmsg(s, &m, 0);
			if (got < 0)
				die("seq recv");
			if (got != (ssize_t)len[k] || (m.msg_flags & MSG_TRUNC)) {
				fprintf(stderr,
					"guest: seq record %u: %zd bytes, not %u: EBADMSG\n", r + k,
					got, len[k]);
				return 1;
			}
			for (unsigned i = 0; i < len[k]; i++)
				if (in[i] != seq_byte(r + k, i)) {
					fprintf(stderr, "guest: seq record %u changed: EBADMSG\n",
						r + k);
					return 1;
				}
		}
	}
	fprintf(stderr, "guest: seq %u records ok\n", n);
	close(s);
	return 0;
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
		int s = listener(num(argv[2]));
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
	if (argc == 3 && strcmp(argv[1], "echo") == 0) {
		int s = listener(num(argv[2]));
		for (;;) {
			int c = accept(s, NULL, NULL);
			if (c < 0)
				die("accept");
			pump(c, c, "echo");
			close(c);
		}
	}
	if (argc == 3 && strcmp(argv[1], "sink") == 0) {
		int s = listener(num(argv[2]));
		int c = accept(s, NULL, NULL);
		double secs;
		if (c < 0)
			die("accept");
		unsigned long long n = drain(c, &secs);
		fprintf(stderr, "guest: sink %llu bytes in %.3f s\n", n, secs);
		close(c);
		return 0;
	}
	if (argc == 6 && strcmp(argv[1], "source") == 0)
		return source(num(argv[2]), num(argv[3]), atof(argv[4]), num(argv[5]));
	if (argc == 5 && strcmp(argv[1], "seq") == 0)
		return seq(num(argv[2]), num(argv[3]), num(argv[4]));
	if (argc == 6 && strcmp(argv[1], "ping") == 0)
		return ping(num(argv[2]), num(argv[3]), atof(argv[4]), num(argv[5]));
	fprintf(stderr, "usage: guest connect CID PORT | listen PORT | hold CID PORT | echo PORT\n"
			"       | sink PORT | source CID PORT SECS SIZE | ping CID PORT SECS SIZE\n"
			"       | seq CID PORT N\n");
	return 2;
}
