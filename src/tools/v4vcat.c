/* SPDX-License-Identifier: MIT */
/*
 * v4vcat: netcat over v4v, run inside a domain (v4v-run).
 *
 *   v4vcat [-u] [-p SRCPORT] DOMAIN PORT       connect, copy stdin <-> peer
 *   v4vcat -l [-u] [-k] [-n SERVICE] PORT      listen (or receive datagrams)
 *
 * Streams are binary-safe: stdin's end becomes a half-close, the peer's end
 * of stream ends the program (status 0).  With -u every line of stdin (up
 * to 65536 bytes) is one datagram, and every datagram received is written
 * out as it came.  PORT may be a service name registered at DOMAIN.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "tool.h"
#include "v4v/v4v.h"

const char *prog = "v4vcat";

#define DGRAM_MAX 65536

struct opts {
	bool udp, listen, keep;
	uint64_t count;	     /* -c: datagrams to receive before exiting (0: no limit) */
	const char *service; /* -n */
	const char *srcport; /* -p */
	const char *domain, *port;
};

static struct v4v_domain *dom;

static void usage(FILE *f)
{
	fprintf(f, "usage: v4vcat [-u] [-p SRCPORT] DOMAIN PORT\n"
		   "       v4vcat -l [-u] [-k] [-c N] [-n SERVICE] PORT\n"
		   "  -l          listen on PORT (0 picks one; printed on stderr)\n"
		   "  -u          datagrams: one per input line; output as received\n"
		   "  -k          with -l: keep accepting connections, one after another\n"
		   "  -c N        with -l -u: exit after N datagrams\n"
		   "  -n SERVICE  with -l: register SERVICE as a name for the port\n"
		   "  -p SRCPORT  connect from this local port\n"
		   "DOMAIN is a domid or a domain name; PORT a number or a service name.\n");
}

static uint32_t port_arg(const char *s, const char *what)
{
	uint64_t v;
	if (!v4v_parse_u64(s, 0, 0xFFFFFFFEu, &v))
		die("bad %s '%s' (0..4294967294)", what, s);
	return (uint32_t)v;
}

/* DOMAIN PORT -> address; PORT may be a service name at DOMAIN. */
static struct v4v_addr resolve(const char *domain, const char *port)
{
	struct v4v_addr a = {0};
	uint16_t domid;
	int e = v4v_domain_resolve(dom, domain, &domid);
	if (e == -ESRCH)
		die("no domain '%s'", domain);
	if (e)
		die("cannot resolve '%s': %s", domain, strerror(-e));
	a.domain_id = domid;
	if (*port >= '0' && *port <= '9') {
		a.aport = port_arg(port, "port");
		return a;
	}
	e = v4v_name_lookup(dom, domain, port, &a);
	if (e == -ENOENT)
		die("no service '%s' at domain '%s'", port, domain);
	if (e)
		die("cannot look up '%s': %s", port, strerror(-e));
	return a;
}

/* strerror, in the words of this tool's situations. */
static const char *why(int e)
{
	switch (e) {
	case ECONNRESET: return "connection reset by peer";
	case EPIPE: return "v4vd went away or the domain was destroyed";
	case EACCES: return "rejected by the firewall";
	default: return strerror(e);
	}
}

static void write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			die("write: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

static void send_all(int s, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = v4v_send(s, p, n, 0);
		if (w < 0)
			die("send: %s", why(errno));
		p += w;
		n -= (size_t)w;
	}
}

/*
 * Copy both ways until both are done: our stdin's end (sent as a
 * half-close) and the peer's end of stream.  An interactive stdin is not
 * waited for once the peer has finished.
 */
static void pump_stream(int s)
{
	static char buf[1 << 16];
	bool in_open = true, net_open = true;
	while (net_open || in_open) {
		struct pollfd p[2] = {{.fd = net_open ? s : -1, .events = POLLIN},
				      {.fd = in_open ? 0 : -1, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (p[0].revents) {
			ssize_t n = v4v_recv(s, buf, sizeof(buf), MSG_DONTWAIT);
			if (n == 0) {
				net_open = false;
				if (in_open && isatty(0))
					return;
				continue;
			}
			if (n < 0 && errno != EAGAIN)
				die("receive: %s", why(errno));
			if (n > 0)
				write_all(1, buf, (size_t)n);
		}
		if (in_open && p[1].revents) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n < 0 && errno != EINTR)
				die("read stdin: %s", strerror(errno));
			if (n == 0) {
				in_open = false;
				v4v_shutdown(s, SHUT_WR);
			} else if (n > 0) {
				send_all(s, buf, (size_t)n);
			}
		}
	}
}

static int do_connect(const struct opts *o)
{
	struct v4v_addr to = resolve(o->domain, o->port);
	int s = v4v_socket(dom, o->udp ? V4V_SOCK_DGRAM : V4V_SOCK_STREAM, 0);
	if (s < 0)
		die("socket: %s", strerror(errno));
	if (o->srcport) {
		struct v4v_addr me = {.aport = port_arg(o->srcport, "source port"),
				      .domain_id = o->udp ? V4V_DOMID_ANY : to.domain_id};
		if (v4v_bind(s, &me) < 0)
			die("bind to port %s: %s", o->srcport, strerror(errno));
	}
	if (v4v_connect(s, &to) < 0) {
		if (errno == ECONNREFUSED)
			die("connection refused by %s:%s", o->domain, o->port);
		if (errno == EACCES)
			die("connection to %s:%s rejected by the firewall", o->domain, o->port);
		die("connect to %s:%s: %s", o->domain, o->port, why(errno));
	}
	if (!o->udp) {
		pump_stream(s);
		v4v_sock_close(s);
		return 0;
	}
	/* One datagram per line of input. */
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		if (n > DGRAM_MAX)
			die("line of %zd bytes is longer than a datagram (%d)", n, DGRAM_MAX);
		if (v4v_send(s, line, (size_t)n, 0) < 0)
			die("send to %s:%s: %s", o->domain, o->port, why(errno));
	}
	free(line);
	v4v_sock_close(s);
	return 0;
}

static int do_listen(const struct opts *o)
{
	int s = v4v_socket(dom, o->udp ? V4V_SOCK_DGRAM : V4V_SOCK_STREAM, 0);
	struct v4v_addr me = {.aport = port_arg(o->port, "port"), .domain_id = V4V_DOMID_ANY};
	if (s < 0)
		die("socket: %s", strerror(errno));
	if (v4v_bind(s, &me) < 0)
		die("bind to port %s: %s", o->port,
		    errno == EADDRINUSE ? "port in use" : strerror(errno));
	v4v_getsockname(s, &me);
	if (me.aport != port_arg(o->port, "port") || o->service)
		fprintf(stderr, "v4vcat: listening on %u:%u\n", me.domain_id, me.aport);
	if (o->service) {
		int e = v4v_name_register(dom, o->service, me.aport, NULL, 0);
		if (e)
			die("register service '%s': %s", o->service,
			    e == -EEXIST ? "already registered" : strerror(-e));
	}
	if (o->udp) {
		static char buf[DGRAM_MAX];
		for (uint64_t got = 0; !o->count || got < o->count; got++) {
			ssize_t n = v4v_recvfrom(s, buf, sizeof(buf), 0, NULL);
			if (n < 0)
				die("receive: %s", why(errno));
			write_all(1, buf, (size_t)n);
		}
		return 0;
	}
	if (v4v_listen(s, 16) < 0)
		die("listen: %s", why(errno));
	do {
		struct v4v_addr peer;
		int c = v4v_accept(s, &peer);
		if (c < 0)
			die("accept: %s", why(errno));
		pump_stream(c);
		v4v_sock_close(c);
	} while (o->keep);
	v4v_sock_close(s);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	uint64_t v;
	int c;
	while ((c = getopt(argc, argv, "ulkc:n:p:h")) != -1) {
		switch (c) {
		case 'u': o.udp = true; break;
		case 'l': o.listen = true; break;
		case 'k': o.keep = true; break;
		case 'c':
			if (!v4v_parse_u64(optarg, 1, UINT64_MAX, &v))
				die("bad count '%s'", optarg);
			o.count = v;
			break;
		case 'n':
			if (!v4v_name_valid(optarg))
				die("bad service name '%s' (1-31 of A-Za-z0-9._-)", optarg);
			o.service = optarg;
			break;
		case 'p': o.srcport = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	int rest = argc - optind;
	if (o.listen ? rest != 1 : rest != 2) {
		usage(stderr);
		return 1;
	}
	if (!o.listen && (o.keep || o.count || o.service))
		die("-k, -c and -n go with -l");
	if (o.listen && o.srcport)
		die("-p does not go with -l");
	o.port = argv[argc - 1];
	o.domain = o.listen ? NULL : argv[optind];
	if (o.listen || (*o.port >= '0' && *o.port <= '9'))
		port_arg(o.port, "port"); /* a bad number fails before anything else */

	signal(SIGPIPE, SIG_IGN);
	int e = v4v_open(&dom);
	if (e == -ENOTCONN)
		die("not inside a v4v domain: run it under v4v-run");
	if (e)
		die("cannot attach to the domain: %s",
		    e == -EPIPE ? "v4vd is not answering" : strerror(-e));
	return o.listen ? do_listen(&o) : do_connect(&o);
}
