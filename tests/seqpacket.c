/* SPDX-License-Identifier: MIT */
/* Connections beyond the plain stream: the abortive close (RST, not FIN)
 * and SEQPACKET sockets (records kept whole), with real domains in forked
 * processes. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t.h"

/* libv4v(3): a record takes at most what the send ring holds in one
 * message (the default stream ring is larger). */
enum { SEQ_MAX = V4V_SOCK_TX_LEN - 32 };

unsigned v4v__pool_ready(struct v4v_domain *d);

static int listener(struct v4v_domain *d, int type, uint32_t port)
{
	int l = v4v_socket(d, type, 0);
	struct v4v_addr any = {.aport = port, .domain_id = V4V_DOMID_ANY};
	CHECK(l >= 0);
	CHECK_EQ(v4v_bind(l, &any), 0);
	CHECK_EQ(v4v_listen(l, 4), 0);
	return l;
}

static int dial(struct v4v_domain *d, int type, uint16_t dom, uint32_t port)
{
	int s = v4v_socket(d, type, 0);
	struct v4v_addr to = {.aport = port, .domain_id = dom};
	CHECK(s >= 0);
	CHECK_EQ(v4v_connect(s, &to), 0);
	return s;
}

/* ---- the abortive close ----------------------------------------------- */

static void abort_server(struct v4v_domain *d)
{
	int l = listener(d, V4V_SOCK_STREAM, 5100);
	t_ready();
	/* The client aborts: its data, then ECONNRESET, never end of stream. */
	int c = v4v_accept(l, NULL);
	char buf[16];
	CHECK(c >= 0);
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), 4);
	CHECK(memcmp(buf, "data", 4) == 0);
	CHECK_EQ(v4v_recv(c, buf, sizeof(buf), 0), -1);
	CHECK_EQ(errno, ECONNRESET);
	CHECK_EQ(v4v_send(c, "x", 1, 0), -1);
	CHECK_EQ(errno, ECONNRESET);
	CHECK_EQ(v4v_sock_close(c), 0);
	/* We abort, with data queued before the RST. */
	c = v4v_accept(l, NULL);
	CHECK(c >= 0);
	CHECK_EQ(v4v_send(c, "xyz", 3, 0), 3);
	CHECK_EQ(v4v_sock_abort(c), 0);
	CHECK_EQ(v4v__pool_ready(d), 0u); /* a reset ring is not kept */
	CHECK_EQ(v4v_sock_close(l), 0);
}

static void stream_abort(void)
{
	t_v4vd_start(NULL);
	uint16_t dom;
	pid_t pid = t_child("srv", abort_server, &dom);
	struct v4v_domain *d = t_domain("cli");
	CHECK_EQ(v4v_sock_abort(-1), -1);
	CHECK_EQ(errno, EBADF);
	int s = dial(d, V4V_SOCK_STREAM, dom, 5100);
	CHECK_EQ(v4v_send(s, "data", 4, 0), 4);
	CHECK_EQ(v4v_sock_abort(s), 0);
	CHECK_EQ(v4v__pool_ready(d), 0u);
	s = dial(d, V4V_SOCK_STREAM, dom, 5100);
	char buf[16];
	CHECK_EQ(v4v_recv(s, buf, sizeof(buf), 0), 3);
	CHECK(memcmp(buf, "xyz", 3) == 0);
	CHECK_EQ(v4v_recv(s, buf, sizeof(buf), 0), -1);
	CHECK_EQ(errno, ECONNRESET);
	CHECK_EQ(v4v_send(s, "y", 1, 0), -1);
	CHECK_EQ(errno, ECONNRESET);
	CHECK_EQ(v4v_sock_close(s), 0);
	/* Anything not connected is just closed. */
	int u = v4v_socket(d, V4V_SOCK_DGRAM, 0);
	CHECK_EQ(v4v_sock_abort(u), 0);
	t_wait_ok(pid);
}

/* ---- SEQPACKET -------------------------------------------------------- */

static uint8_t pattern(size_t rec, size_t i)
{
	return (uint8_t)((rec * 131 + i) * 2654435761u >> 13);
}

/* Echo every record as it came, until end of stream. */
static void seq_echo(struct v4v_domain *d)
{
	int l = listener(d, V4V_SOCK_SEQPACKET, 5200);
	t_ready();
	int c = v4v_accept(l, NULL);
	CHECK(c >= 0);
	static uint8_t buf[SEQ_MAX];
	ssize_t n;
	while ((n = v4v_recv(c, buf, sizeof(buf), 0)) > 0)
		CHECK_EQ(v4v_send(c, buf, (size_t)n, 0), n);
	CHECK_EQ(n, 0);
	CHECK_EQ(v4v_sock_close(c), 0);
	CHECK_EQ(v4v_sock_close(l), 0);
}

enum { RECORDS = 600, BATCH = 8 };

static void seq_records(void)
{
	t_v4vd_start(NULL);
	uint16_t dom;
	pid_t pid = t_child("srv", seq_echo, &dom);
	struct v4v_domain *d = t_domain("cli");
	int s = dial(d, V4V_SOCK_SEQPACKET, dom, 5200);
	static uint8_t out[SEQ_MAX + 1], in[SEQ_MAX + 1];
	/* Batches of records of random sizes: the rings wrap many times
	 * over, and each record comes back whole and alone. */
	size_t len[BATCH];
	for (size_t r = 0; r < RECORDS; r += BATCH) {
		for (size_t k = 0; k < BATCH; k++) {
			len[k] = 1 + t_rand() % (t_rand() % 4 ? 3000 : 60000);
			for (size_t i = 0; i < len[k]; i++)
				out[i] = pattern(r + k, i);
			CHECK_EQ(v4v_send(s, out, len[k], 0), (ssize_t)len[k]);
		}
		for (size_t k = 0; k < BATCH; k++) {
			CHECK_EQ(v4v_recv(s, in, sizeof(in), 0), (ssize_t)len[k]);
			for (size_t i = 0; i < len[k]; i++)
				CHECK_EQ(in[i], pattern(r + k, i));
		}
	}
	/* The largest record, and one byte more. */
	memset(out, 0x5a, sizeof(out));
	CHECK_EQ(v4v_send(s, out, SEQ_MAX + 1, 0), -1);
	CHECK_EQ(errno, EMSGSIZE);
	CHECK_EQ(v4v_send(s, out, SEQ_MAX, 0), SEQ_MAX);
	CHECK_EQ(v4v_recv(s, in, sizeof(in), 0), SEQ_MAX);
	CHECK(memcmp(in, out, SEQ_MAX) == 0);
	/* A short buffer truncates that record only; MSG_PEEK leaves it,
	 * MSG_TRUNC tells its length. */
	CHECK_EQ(v4v_send(s, "0123456789", 10, 0), 10);
	CHECK_EQ(v4v_send(s, "xy", 2, 0), 2);
	CHECK_EQ(v4v_send(s, "abcdef", 6, 0), 6);
	char b[16];
	CHECK_EQ(v4v_recv(s, b, 4, MSG_PEEK), 4);
	CHECK_EQ(v4v_recv(s, b, 4, MSG_TRUNC), 10);
	CHECK(memcmp(b, "0123", 4) == 0);
	CHECK_EQ(v4v_recv(s, b, sizeof(b), 0), 2);
	CHECK(memcmp(b, "xy", 2) == 0);
	CHECK_EQ(v4v_recv(s, b, 3, 0), 3);
	CHECK(memcmp(b, "abc", 3) == 0);
	CHECK_EQ(v4v_recv(s, b, sizeof(b), MSG_DONTWAIT), -1);
	CHECK_EQ(errno, EAGAIN);
	CHECK_EQ(v4v_shutdown(s, SHUT_WR), 0);
	CHECK_EQ(v4v_recv(s, b, sizeof(b), 0), 0);
	CHECK_EQ(v4v_sock_close(s), 0);
	t_wait_ok(pid);
}

static void seq_dies(struct v4v_domain *d)
{
	int l = listener(d, V4V_SOCK_SEQPACKET, 5300);
	t_ready();
	int c = v4v_accept(l, NULL);
	CHECK(c >= 0);
	CHECK_EQ(v4v_send(c, "rec", 3, 0), 3);
	pause(); /* until SIGKILL */
}

/* A stream never meets a SEQPACKET peer; a SEQPACKET peer's death is
 * ECONNRESET, as a stream's. */
static void seq_peer_death(void)
{
	t_v4vd_start(NULL);
	uint16_t dom;
	pid_t pid = t_child("victim", seq_dies, &dom);
	struct v4v_domain *d = t_domain("survivor");
	int st = v4v_socket(d, V4V_SOCK_STREAM, 0);
	struct v4v_addr to = {.aport = 5300, .domain_id = dom};
	CHECK_EQ(v4v_connect(st, &to), -1);
	CHECK_EQ(errno, ECONNREFUSED);
	int s = dial(d, V4V_SOCK_SEQPACKET, dom, 5300);
	char b[8];
	CHECK_EQ(v4v_recv(s, b, sizeof(b), 0), 3);
	kill(pid, SIGKILL);
	CHECK_EQ(v4v_recv(s, b, sizeof(b), 0), -1);
	CHECK_EQ(errno, ECONNRESET);
	int w;
	waitpid(pid, &w, 0);
	CHECK_EQ(v4v_send(s, "y", 1, 0), -1);
	CHECK(errno == ECONNRESET || errno == EPIPE);
}

static const struct t_case cases[] = {
    T_CASE(stream_abort),
    T_CASE(seq_records),
    T_CASE(seq_peer_death),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
