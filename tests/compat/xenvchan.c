/* SPDX-License-Identifier: MIT */
/*
 * libxenvchan over v4v, tested against what Xen's libxenvchan.h documents
 * (not against our engine): ring sizes, packets and streams across ring
 * wraps, the non-blocking select/wait/data_ready loop with exact counts,
 * peer close, exit and SIGKILL seen by is_open, the firewall.  Two real
 * domains, server and client, in forked processes.
 */
#define _GNU_SOURCE
#include "xt.h"

/* ---- ring sizes --------------------------------------------------------- */

static const struct {
	size_t rmin, wmin;
	int rd, wr;
} sizes[] = {
    {0, 0, 1024, 2048},	      {1024, 2048, 1024, 2048},	   {2048, 1024, 2048, 1024},
    {1025, 2048, 2048, 4096}, {2000, 5000, 2048, 8192},	   {5000, 2000, 8192, 2048},
    {3000, 3000, 4096, 4096}, {4097, 70000, 8192, 131072}, {1 << 20, 1 << 20, 1 << 20, 1 << 20},
};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void sizes_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	if (me == SRV) {
		set_path(99);
		CHECK(!libxenvchan_server_init(NULL, ct_dom[CLI], path, (1 << 20) + 1, 1024));
		CHECK(!libxenvchan_server_init(NULL, ct_dom[CLI], path, 1024, (1 << 20) + 1));
	}
	for (unsigned k = 0; k < NSIZES; k++) {
		set_path(k);
		if (me == SRV) {
			struct libxenvchan *s = serve(sizes[k].rmin, sizes[k].wmin);
			CHECK_EQ(libxenvchan_buffer_space(s), sizes[k].wr);
			ct_put(sock, 'r');
			until_open(s);
			/* the client fills our read ring exactly */
			while (libxenvchan_data_ready(s) < sizes[k].rd)
				await(s);
			CHECK_EQ(libxenvchan_data_ready(s), sizes[k].rd);
			ct_get(sock); /* the client has seen its ring full */
			static char buf[1 << 20];
			CHECK_EQ(libxenvchan_read(s, buf, sizeof(buf)), sizes[k].rd);
			for (int i = 0; i < sizes[k].rd; i++)
				CHECK_EQ((uint8_t)buf[i], ct_pat((uint64_t)i));
			CHECK_EQ(libxenvchan_data_ready(s), 0);
			ct_get(sock);
			libxenvchan_close(s);
		} else {
			ct_get(sock);
			struct libxenvchan *c = connect_to();
			/* the client cannot choose: it gets the server's rings, swapped */
			CHECK_EQ(libxenvchan_buffer_space(c), sizes[k].rd);
			static char buf[(1 << 20) + 1];
			for (int i = 0; i < sizes[k].rd; i++)
				buf[i] = (char)ct_pat((uint64_t)i);
			CHECK_EQ(libxenvchan_write(c, buf, sizeof(buf)), sizes[k].rd);
			CHECK_EQ(libxenvchan_buffer_space(c), 0);
			CHECK_EQ(libxenvchan_write(c, buf, 1), 0);
			CHECK_EQ(libxenvchan_send(c, buf, 1), 0);
			ct_put(sock, 'f');
			/* the server's read gives the room back, exactly */
			while (libxenvchan_buffer_space(c) < sizes[k].rd)
				await(c);
			CHECK_EQ(libxenvchan_buffer_space(c), sizes[k].rd);
			/* a packet larger than the ring: 0 non-blocking, -1 blocking */
			CHECK_EQ(libxenvchan_send(c, buf, (size_t)sizes[k].rd + 1), 0);
			c->blocking = 1;
			CHECK_EQ(libxenvchan_send(c, buf, (size_t)sizes[k].rd + 1), -1);
			CHECK_EQ(libxenvchan_recv(c, buf, (size_t)sizes[k].wr + 1), -1);
			c->blocking = 0;
			CHECK_EQ(libxenvchan_recv(c, buf, (size_t)sizes[k].wr + 1), 0);
			ct_put(sock, 'd');
			libxenvchan_close(c);
		}
	}
}

static void ring_sizes(void)
{
	ct_run(2, sizes_fn);
	for (unsigned k = 0; k < NSIZES; k++) {
		relay(SRV, CLI); /* serving */
		relay(CLI, SRV); /* the client's ring is full */
		relay(CLI, SRV); /* the client is done */
	}
	ct_join(2);
}

/* ---- blocking streams and packets across wraps -------------------------- */

#define STREAM_BYTES (3u << 20)

static uint64_t prng(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static void stream_out(struct libxenvchan *c, uint64_t *r, size_t max)
{
	static char buf[1 << 16];
	for (uint64_t off = 0; off < STREAM_BYTES;) {
		size_t n = 1 + prng(r) % max;
		if (n > STREAM_BYTES - off)
			n = STREAM_BYTES - off;
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)ct_pat(off + i);
		CHECK_EQ(libxenvchan_write(c, buf, n), (int)n);
		off += n;
	}
}

static void stream_in(struct libxenvchan *c, uint64_t *r, size_t max)
{
	static char buf[1 << 16];
	for (uint64_t off = 0; off < STREAM_BYTES;) {
		int n = libxenvchan_read(c, buf, 1 + prng(r) % max);
		CHECK(n > 0);
		for (int i = 0; i < n; i++)
			CHECK_EQ((uint8_t)buf[i], ct_pat(off + (uint64_t)i));
		off += (uint64_t)n;
	}
}

#define PACKETS 3000

static void packets_out(struct libxenvchan *c, uint64_t *r, size_t ring)
{
	static char buf[1 << 16];
	for (unsigned p = 0; p < PACKETS; p++) {
		size_t n = 1 + prng(r) % ring;
		memset(buf, (int)(p & 0xff), n);
		CHECK_EQ(libxenvchan_send(c, buf, n), (int)n);
	}
}

static void packets_in(struct libxenvchan *c, uint64_t *r, size_t ring)
{
	static char buf[1 << 16];
	for (unsigned p = 0; p < PACKETS; p++) {
		size_t n = 1 + prng(r) % ring;
		CHECK_EQ(libxenvchan_recv(c, buf, n), (int)n);
		CHECK((uint8_t)buf[0] == (p & 0xff) && (uint8_t)buf[n - 1] == (p & 0xff));
	}
}

static void wrap_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	uint64_t seed = t_seed(), r = seed;
	set_path(7);
	struct libxenvchan *c;
	if (me == SRV) {
		c = serve(1024, 2048); /* the in-page rings: many wraps */
		ct_put(sock, 'r');
	} else {
		ct_get(sock);
		c = connect_to();
	}
	c->blocking = 1;
	/* sizes up to 3x the ring: writes and reads that must wait and wrap */
	if (me == SRV) {
		stream_out(c, &r, 3 * 2048);
		stream_in(c, &r, 3 * 1024);
		r = seed; /* the packet sizes: the same sequence at both ends */
		packets_out(c, &r, 2048);
		packets_in(c, &r, 1024);
	} else {
		stream_in(c, &r, 3 * 2048);
		stream_out(c, &r, 3 * 1024);
		r = seed;
		packets_in(c, &r, 2048);
		packets_out(c, &r, 1024);
	}
	ct_put(sock, 'd');
	ct_get(sock);
	libxenvchan_close(c);
}

static void wrap_streams(void)
{
	t_seed(); /* one seed for both ends: they agree on packet sizes */
	ct_run(2, wrap_fn);
	relay(SRV, CLI);
	relay(SRV, CLI); /* done: both finished before either closes */
	relay(CLI, SRV);
	ct_join(2);
}

/* ---- the non-blocking loop ---------------------------------------------- */

static void nb_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	set_path(8);
	static char buf[1 << 16];
	if (me == SRV) {
		struct libxenvchan *s = serve(4096, 16384);
		ct_put(sock, 'r');
		until_open(s);
		/* write whatever fits, as a select loop does */
		for (uint64_t off = 0; off < STREAM_BYTES;) {
			int space = libxenvchan_buffer_space(s);
			if (space == 0) {
				await(s);
				continue;
			}
			size_t n = (size_t)space;
			if (n > STREAM_BYTES - off)
				n = STREAM_BYTES - off;
			for (size_t i = 0; i < n; i++)
				buf[i] = (char)ct_pat(off + i);
			/* buffer_space bytes go at once, without blocking */
			CHECK_EQ(libxenvchan_write(s, buf, n), (int)n);
			off += n;
		}
		/* the client's "done" comes after its credit: all room is back */
		char b;
		while (libxenvchan_read(s, &b, 1) == 0)
			await(s);
		CHECK_EQ(b, 'D');
		CHECK_EQ(libxenvchan_buffer_space(s), 16384);
		libxenvchan_close(s);
	} else {
		ct_get(sock);
		struct libxenvchan *c = connect_to();
		uint64_t off = 0;
		while (off < STREAM_BYTES) {
			await(c);
			int ready;
			while ((ready = libxenvchan_data_ready(c)) > 0) {
				int want = ready > 1000 ? 1000 : ready;
				CHECK_EQ(libxenvchan_read(c, buf, (size_t)want), want);
				for (int i = 0; i < want; i++)
					CHECK_EQ((uint8_t)buf[i], ct_pat(off + (uint64_t)i));
				off += (uint64_t)want;
			}
			CHECK(off <= STREAM_BYTES);
		}
		CHECK_EQ(libxenvchan_read(c, buf, 1), 0); /* non-blocking, all read */
		CHECK_EQ(libxenvchan_write(c, "D", 1), 1);
		libxenvchan_close(c);
	}
}

static void nonblock_loop(void)
{
	ct_run(2, nb_fn);
	relay(SRV, CLI);
	ct_join(2);
}

/* ---- the peer goes away ------------------------------------------------- */

static char how; /* 'c' close, 'x' exit without close, 'k' killed */

static void gone_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	set_path(9);
	if (me == SRV) {
		struct libxenvchan *s = serve(4096, 4096);
		ct_put(sock, 'r');
		until_open(s);
		char buf[8];
		while (libxenvchan_data_ready(s) < 5)
			await(s);
		CHECK_EQ(libxenvchan_read(s, buf, 5), 5);
		CHECK(memcmp(buf, "hello", 5) == 0);
		ct_put(sock, 'g'); /* the parent now ends the client */
		double t0 = ct_ms();
		while (libxenvchan_is_open(s) == 1)
			await(s);
		CHECK_EQ(libxenvchan_is_open(s), 0);
		fprintf(stderr, "peer gone (%c) seen after %.1f ms\n", how, ct_ms() - t0);
		CHECK(ct_ms() - t0 < 3000);
		if (how == 'c') {
			CHECK_EQ(libxenvchan_data_ready(s), 3);
			CHECK_EQ(libxenvchan_read(s, buf, sizeof(buf)), 3);
			CHECK(memcmp(buf, "bye", 3) == 0);
		}
		CHECK_EQ(libxenvchan_read(s, buf, 1), -1);
		CHECK_EQ(libxenvchan_write(s, buf, 1), -1);
		s->blocking = 1;
		CHECK_EQ(libxenvchan_recv(s, buf, 1), -1);
		libxenvchan_close(s);
	} else {
		ct_get(sock);
		struct libxenvchan *c = connect_to();
		CHECK_EQ(libxenvchan_write(c, "hello", 5), 5);
		char cmd = ct_get(sock);
		if (cmd == 'c') {
			/* what is written before a close is still read */
			CHECK_EQ(libxenvchan_write(c, "bye", 3), 3);
			libxenvchan_close(c);
		}
		if (cmd != 'k')
			_exit(0); /* 'x': exit without closing */
		pause();
	}
}

static void gone(char mode)
{
	how = mode;
	ct_run(2, gone_fn);
	relay(SRV, CLI);
	ct_get(ct_ctl[SRV]);
	ct_put(ct_ctl[CLI], mode);
	if (mode == 'k')
		kill(ct_pid[CLI], SIGKILL);
	int st;
	CHECK_EQ(waitpid(ct_pid[SRV], &st, 0), ct_pid[SRV]);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	waitpid(ct_pid[CLI], &st, 0);
}

static void peer_close(void)
{
	gone('c');
}

static void peer_exit(void)
{
	gone('x');
}

static void peer_sigkill(void)
{
	gone('k');
}

/* ---- the firewall ------------------------------------------------------- */

static void fw_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	set_path(10);
	if (me == SRV) {
		struct libxenvchan *s = serve(4096, 4096);
		ct_put(sock, 'r');
		ct_get(sock); /* the client has failed */
		CHECK_EQ(libxenvchan_is_open(s), 2);
		libxenvchan_close(s);
	} else {
		ct_get(sock);
		errno = 0;
		CHECK(!libxenvchan_client_init(NULL, ct_dom[SRV], path));
		CHECK_EQ(errno, EACCES);
		/* no server at a path: ENOENT, at once */
		CHECK(!libxenvchan_client_init(NULL, ct_dom[SRV], "/no/such/path"));
		CHECK_EQ(errno, ENOENT);
		ct_put(sock, 'f');
	}
}

static void firewall(void)
{
	ct_run(2, fw_fn);
	free(t_ctl("fw add --src %u --dst %u reject", ct_dom[CLI], ct_dom[SRV]));
	relay(SRV, CLI);
	relay(CLI, SRV);
	ct_join(2);
	char *list = t_ctl("fw list");
	CHECK(strstr(list, "reject"));
	free(list);
}

int main(int argc, char **argv)
{
	static const struct t_case cases[] = {
	    T_CASE(ring_sizes), T_CASE(wrap_streams), T_CASE(nonblock_loop), T_CASE(peer_close),
	    T_CASE(peer_exit),	T_CASE(peer_sigkill), T_CASE(firewall),
	};
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
