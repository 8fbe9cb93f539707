/* SPDX-License-Identifier: MIT */
/*
 * libxenvchan over v4v: the rendezvous and its lifetimes, against Xen's
 * documented behaviour (a client may reconnect; server_persist) and
 * libxenvchan-v4v(3)'s (a dead server's name is taken over, one client
 * per server, name collisions).
 */
#define _GNU_SOURCE
#include "xt.h"

/* ---- reconnection ------------------------------------------------------- */

static void re_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	set_path(11);
	char buf[16];
	if (me == SRV) {
		struct libxenvchan *s = serve(4096, 4096);
		CHECK_EQ(libxenvchan_write(s, "abcdef", 6), 6); /* before any client */
		ct_put(sock, 'r');
		/* 2 until the client came, 0 once it has closed */
		while (libxenvchan_is_open(s) != 0)
			await(s);
		CHECK_EQ(libxenvchan_data_ready(s), 2); /* the first one's "12" */
		CHECK_EQ(libxenvchan_read(s, buf, 1), 1);
		CHECK_EQ(buf[0], '1');
		ct_put(sock, 'a');
		/* the second client: "2" is still unread, so it has 4095 bytes of room */
		while (libxenvchan_is_open(s) != 1)
			await(s);
		ct_get(sock);
		CHECK_EQ(libxenvchan_read(s, buf, 1), 1);
		CHECK_EQ(buf[0], '2');
		ct_put(sock, 'b');
		while (libxenvchan_data_ready(s) < 2)
			await(s);
		CHECK_EQ(libxenvchan_recv(s, buf, 2), 2);
		CHECK(memcmp(buf, "34", 2) == 0);
		libxenvchan_close(s);
	} else {
		ct_get(sock);
		struct libxenvchan *c = connect_to();
		c->blocking = 1;
		CHECK_EQ(libxenvchan_recv(c, buf, 3), 3);
		CHECK(memcmp(buf, "abc", 3) == 0);
		CHECK_EQ(libxenvchan_send(c, "12", 2), 2);
		libxenvchan_close(c);
		ct_get(sock);
		/* the second client finds what the first left unread */
		c = connect_to();
		CHECK_EQ(libxenvchan_buffer_space(c), 4095);
		ct_put(sock, 's');
		ct_get(sock); /* the server read the "2" */
		while (libxenvchan_buffer_space(c) < 4096)
			await(c);
		c->blocking = 1;
		CHECK_EQ(libxenvchan_recv(c, buf, 3), 3);
		CHECK(memcmp(buf, "def", 3) == 0);
		CHECK_EQ(libxenvchan_send(c, "34", 2), 2);
		libxenvchan_close(c);
	}
}

static void reconnect(void)
{
	ct_run(2, re_fn);
	relay(SRV, CLI); /* serving */
	relay(SRV, CLI); /* the first client has gone */
	relay(CLI, SRV); /* the second saw its room */
	relay(SRV, CLI); /* the server read what was left */
	ct_join(2);
}

/* ---- a server that died, a second client ------------------------------- */

static void stale_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	set_path(12);
	if (me == SRV) {
		/* a server process of this domain dies: its name outlives it */
		int pp[2];
		CHECK_EQ(pipe(pp), 0);
		pid_t p = fork();
		CHECK(p >= 0);
		if (p == 0) {
			CHECK(libxenvchan_server_init(NULL, ct_dom[CLI], path, 0, 0));
			ct_put(pp[1], 'x');
			pause();
		}
		CHECK_EQ(ct_get(pp[0]), 'x');
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
		/* the next server of the path takes the name over */
		struct libxenvchan *s = serve(0, 0);
		ct_put(sock, 'r');
		until_open(s);
		s->blocking = 1;
		char b;
		CHECK_EQ(libxenvchan_recv(s, &b, 1), 1);
		CHECK_EQ(b, 'b');
		libxenvchan_close(s);
	} else {
		ct_get(sock);
		struct libxenvchan *c = connect_to();
		/* one client per server: a second one (here, same domain) is refused */
		pid_t p = fork();
		CHECK(p >= 0);
		if (p == 0) {
			errno = 0;
			CHECK(!libxenvchan_client_init(NULL, ct_dom[SRV], path));
			CHECK_EQ(errno, EBUSY);
			_exit(0);
		}
		int st;
		CHECK_EQ(waitpid(p, &st, 0), p);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		CHECK_EQ(libxenvchan_send(c, "b", 1), 1);
		libxenvchan_close(c);
	}
}

static void stale_name(void)
{
	ct_run(2, stale_fn);
	relay(SRV, CLI);
	ct_join(2);
}

/* ---- server_persist ------------------------------------------------------ */

static void persist_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	set_path(13);
	char buf[4];
	if (me == SRV) {
		struct libxenvchan *s = serve(0, 0);
		s->server_persist = 1;
		CHECK_EQ(libxenvchan_is_open(s), 1); /* always, as Xen's */
		ct_put(sock, 'r');
		while (libxenvchan_data_ready(s) < 1)
			await(s);
		CHECK_EQ(libxenvchan_read(s, buf, 1), 1);
		ct_get(sock); /* the first client has closed */
		CHECK_EQ(libxenvchan_is_open(s), 1);
		/* writes go on with no client: the next one reads them */
		CHECK_EQ(libxenvchan_write(s, "xy", 2), 2);
		ct_put(sock, 'w');
		/* serve (the second client needs our answer) until it has read */
		struct pollfd p[2] = {{.fd = libxenvchan_fd_for_select(s), .events = POLLIN},
				      {.fd = sock, .events = POLLIN}};
		while (!(p[1].revents & POLLIN)) {
			CHECK(poll(p, 2, 10000) > 0);
			if (p[0].revents & POLLIN)
				CHECK_EQ(libxenvchan_wait(s), 0);
			CHECK_EQ(libxenvchan_is_open(s), 1);
		}
		ct_get(sock);
		libxenvchan_close(s);
	} else {
		ct_get(sock);
		struct libxenvchan *c = connect_to();
		CHECK_EQ(libxenvchan_write(c, "1", 1), 1);
		libxenvchan_close(c);
		ct_put(sock, 'c');
		ct_get(sock);
		c = connect_to();
		c->blocking = 1;
		CHECK_EQ(libxenvchan_recv(c, buf, 2), 2);
		CHECK(memcmp(buf, "xy", 2) == 0);
		libxenvchan_close(c);
		ct_put(sock, 'd');
	}
}

static void persist(void)
{
	ct_run(2, persist_fn);
	relay(SRV, CLI);
	relay(CLI, SRV);
	relay(SRV, CLI);
	relay(CLI, SRV);
	ct_join(2);
}

/* ---- a name collision ---------------------------------------------------- */

/* The name of a path, as libxenvchan-v4v(3) documents it. */
static void name_of(char *out, uint16_t client, const char *p, unsigned i)
{
	uint64_t h = 0xcbf29ce484222325ull;
	uint8_t id[2] = {(uint8_t)client, (uint8_t)(client >> 8)};
	for (unsigned k = 0; k < 2; k++)
		h = (h ^ id[k]) * 0x100000001b3ull;
	for (; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	snprintf(out, 32, "vchan.%016llx.%u", (unsigned long long)h, i);
}

static void collide_fn(unsigned me, int dfd, int sock)
{
	ct_enter(dfd);
	if (me == CLI) {
		ct_get(sock);
		struct libxenvchan *c = libxenvchan_client_init(NULL, ct_dom[SRV], "/path/a");
		CHECK(c);
		CHECK_EQ(libxenvchan_write(c, "a", 1), 1);
		libxenvchan_close(c);
		return;
	}
	/* path a's first name made to point at path b's server: a collision */
	struct libxenvchan *b = serve_at("/path/b");
	struct v4v_domain *d;
	struct v4v_addr at;
	char na[32], nb[32], self[8];
	CHECK_EQ(v4v_open(&d), 0);
	snprintf(self, sizeof(self), "%u", ct_dom[SRV]);
	name_of(na, ct_dom[CLI], "/path/a", 0);
	name_of(nb, ct_dom[CLI], "/path/b", 0);
	CHECK_EQ(v4v_name_lookup(d, self, nb, &at), 0);
	CHECK_EQ(v4v_name_register(d, na, at.aport, &ct_dom[CLI], 1), 0);
	struct libxenvchan *a = serve_at("/path/a");
	ct_put(sock, 'r');
	/* the client tries b's server first, which sends it on */
	while (libxenvchan_is_open(a) == 2) {
		CHECK_EQ(libxenvchan_is_open(b), 2);
		ct_select(libxenvchan_fd_for_select(b), 5);
	}
	a->blocking = 1;
	char c;
	CHECK_EQ(libxenvchan_recv(a, &c, 1), 1);
	CHECK_EQ(c, 'a');
	CHECK_EQ(libxenvchan_is_open(b), 2);
	libxenvchan_close(a);
	libxenvchan_close(b);
}

static void collision(void)
{
	ct_run(2, collide_fn);
	relay(SRV, CLI);
	ct_join(2);
}

int main(int argc, char **argv)
{
	static const struct t_case cases[] = {
	    T_CASE(reconnect),
	    T_CASE(stale_name),
	    T_CASE(persist),
	    T_CASE(collision),
	};
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
