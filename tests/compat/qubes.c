/* SPDX-License-Identifier: MIT */
/*
 * Qubes' libvchan over v4v, tested against what qubes-core-vchan-xen's
 * libvchan.h documents: a server that sends before its client comes (as
 * qrexec's agent does), a client that waits for the server to appear, the
 * async client pair, one client per server, streams across ring wraps,
 * the select/wait/data_ready loop, dead domains and SIGKILL seen by
 * is_open, the firewall.  Real domains in forked processes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "ct.h"
#include "libvchan.h"

enum { SRV, CLI, THIRD };
#define PORT 512

static void relay(unsigned a, unsigned b)
{
	ct_put(ct_ctl[b], ct_get(ct_ctl[a]));
}

static void await(libvchan_t *c)
{
	CHECK(ct_select(libvchan_fd_for_select(c), 10000));
	CHECK_EQ(libvchan_wait(c), 0);
}

/* ---- qrexec's order: the server sends first; the client waits for it ---- */

static void hello_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	char buf[8];
	if (me == SRV) {
		ct_get(sock); /* the client is already waiting for us */
		libvchan_t *s = libvchan_server_init(ct_dom[CLI], PORT, 65536, 65536);
		CHECK(s);
		CHECK_EQ(libvchan_is_open(s), VCHAN_WAITING);
		CHECK_EQ(libvchan_send(s, "hello", 5), 5); /* before any client */
		CHECK_EQ(libvchan_buffer_space(s), 65536 - 5);
		while (libvchan_is_open(s) == VCHAN_WAITING)
			await(s);
		CHECK_EQ(libvchan_recv(s, buf, 5), 5); /* blocking by default */
		CHECK(memcmp(buf, "world", 5) == 0);
		libvchan_close(s);
	} else {
		ct_put(sock, 'w');
		libvchan_t *c = libvchan_client_init(ct_dom[SRV], PORT); /* waits */
		CHECK(c);
		CHECK_EQ(libvchan_is_open(c), VCHAN_CONNECTED);
		CHECK_EQ(libvchan_recv(c, buf, 5), 5);
		CHECK(memcmp(buf, "hello", 5) == 0);
		CHECK_EQ(libvchan_send(c, "world", 5), 5);
		libvchan_close(c);
	}
}

static void hello_first(void)
{
	ct_run(2, hello_fn);
	relay(CLI, SRV);
	ct_join(2);
}

/* ---- the async client, and one client per server ------------------------ */

static void async_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	char buf[8];
	if (me == SRV) {
		ct_get(sock);
		libvchan_t *s = libvchan_server_init(ct_dom[CLI], PORT, 1024, 1024);
		CHECK(s);
		while (libvchan_is_open(s) == VCHAN_WAITING)
			await(s);
		CHECK_EQ(libvchan_recv(s, buf, 2), 2);
		CHECK_EQ(libvchan_send(s, "ok", 2), 2);
		ct_get(sock); /* the third domain has tried */
		libvchan_close(s);
		return;
	}
	EVTCHN fd = -1;
	/* the third domain is refused by the server's name ACL: it never sees it */
	uint16_t srv = ct_dom[SRV];
	libvchan_t *c = libvchan_client_init_async(srv, PORT, &fd);
	CHECK(c && fd >= 0);
	CHECK_EQ(libvchan_is_open(c), VCHAN_WAITING);
	CHECK_EQ(libvchan_client_init_async_finish(c, true), 1);
	CHECK_EQ(libvchan_write(c, "x", 1), -1);
	CHECK_EQ(errno, EAGAIN);
	CHECK_EQ(libvchan_read(c, buf, 1), -1);
	CHECK_EQ(errno, EAGAIN);
	CHECK_EQ(libvchan_send(c, "x", 1), -1);
	CHECK_EQ(libvchan_recv(c, buf, 1), -1);
	CHECK_EQ(libvchan_wait(c), -1);
	CHECK_EQ(errno, EAGAIN);
	if (me == THIRD) {
		ct_get(sock); /* the first client is connected */
		double t0 = ct_ms();
		while (ct_ms() - t0 < 300) {
			if (ct_select(fd, 50))
				CHECK_EQ(libvchan_client_init_async_finish(c, true), 1);
		}
		CHECK_EQ(libvchan_is_open(c), VCHAN_WAITING);
		libvchan_close(c);
		ct_put(sock, 't');
		return;
	}
	ct_put(sock, 'a'); /* now the server may start */
	int r;
	while ((r = libvchan_client_init_async_finish(c, true)) == 1)
		CHECK(ct_select(fd, 10000));
	CHECK_EQ(r, 0);
	CHECK_EQ(libvchan_is_open(c), VCHAN_CONNECTED);
	/* one client per server: another process of this domain finds none */
	pid_t p = fork();
	CHECK(p >= 0);
	if (p == 0) {
		EVTCHN fd2;
		libvchan_t *c2 = libvchan_client_init_async(srv, PORT, &fd2);
		CHECK(c2);
		for (double t0 = ct_ms(); ct_ms() - t0 < 200;)
			if (ct_select(fd2, 50))
				CHECK_EQ(libvchan_client_init_async_finish(c2, true), 1);
		CHECK_EQ(libvchan_is_open(c2), VCHAN_WAITING);
		libvchan_close(c2);
		_exit(0);
	}
	int st;
	CHECK_EQ(waitpid(p, &st, 0), p);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(libvchan_send(c, "hi", 2), 2);
	CHECK_EQ(libvchan_recv(c, buf, 2), 2);
	CHECK(memcmp(buf, "ok", 2) == 0);
	ct_put(sock, 'c');
	libvchan_close(c);
}

static void async_client(void)
{
	ct_run(3, async_fn);
	relay(CLI, SRV);
	relay(CLI, THIRD);
	relay(THIRD, SRV);
	ct_join(3);
}

/* ---- streams across wraps, the select loop ------------------------------ */

#define BYTES (2u << 20)

static void loop_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	static char buf[1 << 14];
	libvchan_t *c;
	if (me == SRV) {
		c = libvchan_server_init(ct_dom[CLI], PORT, 1024, 2048);
		CHECK(c);
		ct_put(sock, 'r');
	} else {
		ct_get(sock);
		c = libvchan_client_init(ct_dom[SRV], PORT);
		CHECK(c);
	}
	uint64_t r = t_seed();
	if (me == SRV) {
		/* blocking writes of random sizes, up to 4x the ring */
		for (uint64_t off = 0; off < BYTES;) {
			r = r * 6364136223846793005ull + 1;
			size_t n = 1 + (r >> 33) % (4 * 2048);
			if (n > BYTES - off)
				n = BYTES - off;
			for (size_t i = 0; i < n; i++)
				buf[i] = (char)ct_pat(off + i);
			CHECK_EQ(libvchan_write(c, buf, n), (int)n);
			off += n;
		}
		CHECK_EQ(libvchan_recv(c, buf, 1), 1);
		CHECK_EQ(libvchan_buffer_space(c), 2048); /* all acknowledged */
	} else {
		/* non-blocking: select, wait, read while data_ready */
		libvchan_set_blocking(c, false);
		for (uint64_t off = 0; off < BYTES;) {
			await(c);
			int ready;
			while ((ready = libvchan_data_ready(c)) > 0) {
				r = r * 6364136223846793005ull + 1;
				int want = 1 + (int)((r >> 33) % (uint64_t)ready);
				CHECK_EQ(libvchan_read(c, buf, (size_t)want), want);
				for (int i = 0; i < want; i++)
					CHECK_EQ((uint8_t)buf[i], ct_pat(off + (uint64_t)i));
				off += (uint64_t)want;
			}
		}
		CHECK_EQ(libvchan_read(c, buf, 1), 0); /* non-blocking, and all read */
		CHECK_EQ(libvchan_write(c, "d", 1), 1);
		libvchan_set_blocking(c, true);
		while (libvchan_is_open(c) == VCHAN_CONNECTED)
			await(c);
	}
	libvchan_close(c);
}

static void stream_loop(void)
{
	ct_run(2, loop_fn);
	relay(SRV, CLI);
	ct_join(2);
}

/* ---- death -------------------------------------------------------------- */

static void death_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	if (me == CLI) {
		ct_get(sock);
		libvchan_t *c = libvchan_client_init(ct_dom[SRV], PORT);
		CHECK(c);
		ct_put(sock, 'c');
		pause(); /* killed here */
	}
	/* the server's client domain dies before connecting: wait fails */
	libvchan_t *s = libvchan_server_init(ct_dom[THIRD], PORT, 4096, 4096);
	CHECK(s);
	ct_put(sock, 'r');
	ct_get(sock); /* THIRD is dead */
	double t0 = ct_ms();
	while (libvchan_is_open(s) == VCHAN_WAITING && libvchan_wait(s) == 0)
		;
	CHECK_EQ(libvchan_is_open(s), VCHAN_DISCONNECTED);
	CHECK(ct_ms() - t0 < 5000);
	libvchan_close(s);
	/* a client to a dead domain fails */
	CHECK(!libvchan_client_init(ct_dom[THIRD], PORT));
	/* a connected client killed: seen at once */
	s = libvchan_server_init(ct_dom[CLI], PORT, 4096, 4096);
	CHECK(s);
	ct_put(sock, 'r');
	while (libvchan_is_open(s) == VCHAN_WAITING)
		await(s);
	ct_get(sock); /* killed now */
	t0 = ct_ms();
	while (libvchan_is_open(s) == VCHAN_CONNECTED)
		await(s);
	fprintf(stderr, "SIGKILL seen after %.1f ms\n", ct_ms() - t0);
	CHECK_EQ(libvchan_is_open(s), VCHAN_DISCONNECTED);
	CHECK(ct_ms() - t0 < 3000);
	CHECK_EQ(libvchan_write(s, "x", 1), -1);
	libvchan_close(s);
}

static void third_fn(unsigned me, int dfd, int sock)
{
	if (me != THIRD)
		death_fn(me, dfd, sock);
	else
		pause();
}

static void peer_death(void)
{
	ct_run(3, third_fn);
	ct_get(ct_ctl[SRV]);
	kill(ct_pid[THIRD], SIGKILL);
	int st;
	waitpid(ct_pid[THIRD], &st, 0);
	ct_put(ct_ctl[SRV], 'd');
	relay(SRV, CLI);
	ct_get(ct_ctl[CLI]);
	kill(ct_pid[CLI], SIGKILL);
	waitpid(ct_pid[CLI], &st, 0);
	ct_put(ct_ctl[SRV], 'k');
	CHECK_EQ(waitpid(ct_pid[SRV], &st, 0), ct_pid[SRV]);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- the firewall ------------------------------------------------------- */

static void fw_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	if (me == SRV) {
		libvchan_t *s = libvchan_server_init(ct_dom[CLI], PORT, 4096, 4096);
		CHECK(s);
		ct_put(sock, 'r');
		ct_get(sock);
		CHECK_EQ(libvchan_is_open(s), VCHAN_WAITING); /* the client lives on */
		libvchan_close(s);
		ct_put(sock, 'e');
	} else {
		ct_get(sock);
		errno = 0;
		CHECK(!libvchan_client_init(ct_dom[SRV], PORT));
		CHECK_EQ(errno, EACCES);
		ct_put(sock, 'f');
		ct_get(sock);
	}
}

static void firewall(void)
{
	ct_run(2, fw_fn);
	free(t_ctl("fw add --src %u --dst %u reject", ct_dom[CLI], ct_dom[SRV]));
	relay(SRV, CLI);
	relay(CLI, SRV);
	relay(SRV, CLI);
	ct_join(2);
}

int main(int argc, char **argv)
{
	static const struct t_case cases[] = {
	    T_CASE(hello_first), T_CASE(async_client), T_CASE(stream_loop),
	    T_CASE(peer_death),	 T_CASE(firewall),
	};
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
