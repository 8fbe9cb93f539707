/* SPDX-License-Identifier: MIT */
/*
 * v4vcat: netcat over v4v, run inside a domain (v4v-run).
 *
 *   v4vcat [OPTIONS] DOMAIN PORT          connect, copy stdin <-> peer
 *   v4vcat -l [OPTIONS] PORT              listen (or receive datagrams)
 *
 * Streams are binary-safe: stdin's end becomes a half-close, the peer's end
 * of stream ends the program (status 0).  With -u every line of stdin (up
 * to 65536 bytes) is one datagram, and every datagram received is written
 * out as it came.  PORT may be a service name registered at DOMAIN.  The
 * flags are nc's and ncat's where they mean the same thing (-l -u -k -p -w
 * -v -n, --send-only, --recv-only); -e/-c (run a command) are refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "tool.h"
#include "v4v/v4v.h"

const char *prog = "v4vcat";

#define DGRAM_MAX 65536

struct opts {
	bool udp, listen, keep, verbose, numeric, send_only, recv_only;
	int idle_ms;	     /* -w: connect and idle limit (-1: none) */
	uint64_t count;	     /* --count: datagrams to receive before exiting (0: no limit) */
	const char *service; /* --register */
	const char *srcport; /* -p */
	const char *domain, *port;
};

static struct v4v_domain *dom;
static struct opts o = {.idle_ms = -1};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: v4vcat [-u] [-v] [-n] [-w SECS] [-p SRCPORT] DOMAIN PORT\n"
		"       v4vcat -l [-u] [-k] [-v] [-w SECS] [--count N] [--register SERVICE] PORT\n"
		"  -l, --listen         listen on PORT (0 picks one; printed on stderr)\n"
		"  -u, --udp            datagrams: one per input line; output as received\n"
		"  -k, --keep-open      with -l: keep accepting connections, one after another\n"
		"  -p, --source-port P  connect from this local port\n"
		"  -w, --wait SECS      give up a connect, or an idle transfer, after SECS\n"
		"  -v, --verbose        say on stderr who connects to whom\n"
		"  -n, --nodns          DOMAIN and PORT are numbers: no name lookups\n"
		"  --send-only          only send; ignore what arrives\n"
		"  --recv-only          only receive; send nothing (stdin is not read)\n"
		"  --count N            with -l -u: exit after N datagrams\n"
		"  --register SERVICE   with -l: register SERVICE as a name for the port\n"
		"  -h, --help, -V, --version\n"
		"DOMAIN is a domid or a domain name; PORT a number or a service name.\n"
		"-e and -c (run a command) are not supported: use a pipe.\n");
}

/* Say what happens, with -v. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	if (!o.verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t port_arg(const char *s, const char *what)
{
	uint64_t v;
	if (!v4v_parse_u64(s, 0, 0xFFFFFFFEu, &v))
		die_usage("bad %s '%s' (0..4294967294)", what, s);
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
	bool in_open = !o.recv_only, net_open = true;
	if (o.recv_only)
		v4v_shutdown(s, SHUT_WR);
	while (net_open || in_open) {
		struct pollfd p[2] = {{.fd = net_open ? s : -1, .events = POLLIN},
				      {.fd = in_open ? 0 : -1, .events = POLLIN}};
		int r = poll(p, 2, o.idle_ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (r == 0)
			die("idle for %d s: timed out (-w)", o.idle_ms / 1000);
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
			if (n > 0 && !o.send_only)
				write_all(1, buf, (size_t)n);
		}
		if (in_open && p[1].revents) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n < 0 && errno != EINTR)
				die("read stdin: %s", strerror(errno));
			if (n == 0) {
				in_open = false;
				v4v_shutdown(s, SHUT_WR);
				if (o.send_only)
					return; /* what comes back is not wanted */
			} else if (n > 0) {
				send_all(s, buf, (size_t)n);
			}
		}
	}
}

/* Connect s to `to`, within -w's limit when one is given. */
static int connect_within(int s, const struct v4v_addr *to)
{
	if (o.idle_ms < 0 || o.udp)
		return v4v_connect(s, to);
	int64_t end = now_ms() + o.idle_ms;
	v4v_sock_set_nonblock(s, 1);
	int r = v4v_connect(s, to);
	while (r < 0 && (errno == EINPROGRESS || errno == EALREADY || errno == EAGAIN)) {
		int left = (int)(end - now_ms());
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, left > 20 ? 20 : left) < 0 && errno != EINTR)
			return -1;
		r = v4v_connect(s, to);
		if (r < 0 && errno == EISCONN)
			r = 0;
	}
	v4v_sock_set_nonblock(s, 0);
	return r;
}

static int do_connect(void)
{
	struct v4v_addr to = resolve(o.domain, o.port);
	int s = v4v_socket(dom, o.udp ? V4V_SOCK_DGRAM : V4V_SOCK_STREAM, 0);
	if (s < 0)
		die("socket: %s", strerror(errno));
	if (o.srcport) {
		struct v4v_addr me = {.aport = port_arg(o.srcport, "source port"),
				      .domain_id = o.udp ? V4V_DOMID_ANY : to.domain_id};
		if (v4v_bind(s, &me) < 0)
			die("bind to port %s: %s", o.srcport, strerror(errno));
	}
	if (connect_within(s, &to) < 0) {
		if (errno == ECONNREFUSED)
			die("connection refused by %s:%s", o.domain, o.port);
		if (errno == EACCES)
			die("connection to %s:%s rejected by the firewall", o.domain, o.port);
		if (errno == ETIMEDOUT)
			die("connect to %s:%s: timed out after %d s (-w)", o.domain, o.port,
			    o.idle_ms / 1000);
		die("connect to %s:%s: %s", o.domain, o.port, why(errno));
	}
	note("connected to %u:%u", to.domain_id, to.aport);
	if (!o.udp) {
		pump_stream(s);
		v4v_sock_close(s);
		return 0;
	}
	/* One datagram per line of input. */
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while (!o.recv_only && (n = getline(&line, &cap, stdin)) > 0) {
		if (n > DGRAM_MAX)
			die("line of %zd bytes is longer than a datagram (%d)", n, DGRAM_MAX);
		if (v4v_send(s, line, (size_t)n, 0) < 0)
			die("send to %s:%s: %s", o.domain, o.port, why(errno));
	}
	free(line);
	v4v_sock_close(s);
	return 0;
}

/* Datagrams out as they come: --count of them, or until -w's idle limit
 * after the first (like nc, -w never ends the wait for the first). */
static int recv_datagrams(int s)
{
	static char buf[DGRAM_MAX];
	for (uint64_t got = 0; !o.count || got < o.count; got++) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		int r = poll(&p, 1, got ? o.idle_ms : -1);
		if (r < 0 && errno == EINTR) {
			got--;
			continue;
		}
		if (r == 0)
			die("idle for %d s: timed out (-w)", o.idle_ms / 1000);
		struct v4v_addr from;
		ssize_t n = v4v_recvfrom(s, buf, sizeof(buf), MSG_DONTWAIT, &from);
		if (n < 0 && errno == EAGAIN) {
			got--;
			continue;
		}
		if (n < 0)
			die("receive: %s", why(errno));
		if (!got)
			note("datagrams from %u:%u", from.domain_id, from.aport);
		if (!o.send_only)
			write_all(1, buf, (size_t)n);
	}
	return 0;
}

static int do_listen(void)
{
	int s = v4v_socket(dom, o.udp ? V4V_SOCK_DGRAM : V4V_SOCK_STREAM, 0);
	struct v4v_addr me = {.aport = port_arg(o.port, "port"), .domain_id = V4V_DOMID_ANY};
	if (s < 0)
		die("socket: %s", strerror(errno));
	if (v4v_bind(s, &me) < 0)
		die("bind to port %s: %s", o.port,
		    errno == EADDRINUSE ? "port in use" : strerror(errno));
	v4v_getsockname(s, &me);
	if (me.aport != port_arg(o.port, "port") || o.service || o.verbose)
		fprintf(stderr, "v4vcat: listening on %u:%u\n", me.domain_id, me.aport);
	if (o.service) {
		int e = v4v_name_register(dom, o.service, me.aport, NULL, 0);
		if (e)
			die("register service '%s': %s", o.service,
			    e == -EEXIST ? "already registered" : strerror(-e));
	}
	if (o.udp)
		return recv_datagrams(s);
	if (v4v_listen(s, 16) < 0)
		die("listen: %s", why(errno));
	do {
		struct v4v_addr peer;
		int c = v4v_accept(s, &peer);
		if (c < 0)
			die("accept: %s", why(errno));
		note("connection from %u:%u", peer.domain_id, peer.aport);
		pump_stream(c);
		v4v_sock_close(c);
	} while (o.keep);
	v4v_sock_close(s);
	return 0;
}

static void parse_args(int argc, char **argv)
{
	enum { OPT_SEND_ONLY = 256, OPT_RECV_ONLY, OPT_COUNT, OPT_REGISTER };
	/* clang-format off */
	static const struct option opts[] = {
	    {"listen", no_argument, NULL, 'l'},
	    {"udp", no_argument, NULL, 'u'},
	    {"keep-open", no_argument, NULL, 'k'},
	    {"source-port", required_argument, NULL, 'p'},
	    {"wait", required_argument, NULL, 'w'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"nodns", no_argument, NULL, 'n'},
	    {"exec", required_argument, NULL, 'e'},
	    {"sh-exec", required_argument, NULL, 'c'},
	    {"send-only", no_argument, NULL, OPT_SEND_ONLY},
	    {"recv-only", no_argument, NULL, OPT_RECV_ONLY},
	    {"count", required_argument, NULL, OPT_COUNT},
	    {"register", required_argument, NULL, OPT_REGISTER},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	/* clang-format on */
	uint64_t v;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ulkvnp:w:e:c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'u': o.udp = true; break;
		case 'l': o.listen = true; break;
		case 'k': o.keep = true; break;
		case 'v': o.verbose = true; break;
		case 'n': o.numeric = true; break;
		case 'p': o.srcport = optarg; break;
		case 'w':
			if (!v4v_parse_u64(optarg, 1, 86400, &v))
				die_usage("-w: bad timeout '%s' (1..86400 seconds)", optarg);
			o.idle_ms = (int)v * 1000;
			break;
		case 'e':
		case 'c':
			die_usage("-%c: running a command is not supported; use a pipe "
				  "(v4vcat ... | CMD)",
				  c);
		case OPT_SEND_ONLY: o.send_only = true; break;
		case OPT_RECV_ONLY: o.recv_only = true; break;
		case OPT_COUNT:
			if (!v4v_parse_u64(optarg, 1, UINT64_MAX, &v))
				die_usage("--count: bad count '%s' (1 or more)", optarg);
			o.count = v;
			break;
		case OPT_REGISTER:
			if (!v4v_name_valid(optarg))
				die_usage(
				    "--register: bad service name '%s' (1-31 of A-Za-z0-9._-)",
				    optarg);
			o.service = optarg;
			break;
		case 'h': usage(stdout); exit(0);
		case 'V': v4v_print_version(prog); exit(0);
		default: v4v_option_error(prog, c, argv);
		}
	}
	int rest = argc - optind;
	if (rest < (o.listen ? 1 : 2))
		die_usage(o.listen ? "which PORT to listen on?" : "connect to which DOMAIN PORT?");
	if (rest > (o.listen ? 1 : 2))
		die_usage("unexpected argument '%s'", argv[optind + (o.listen ? 1 : 2)]);
	if (!o.listen && (o.keep || o.count || o.service))
		die_usage("-k, --count and --register go with -l");
	if (o.listen && o.srcport)
		die_usage("-p does not go with -l");
	if (o.send_only && o.recv_only)
		die_usage("--send-only and --recv-only exclude each other");
	o.port = argv[argc - 1];
	o.domain = o.listen ? NULL : argv[optind];
	/* Bad numbers fail before anything else. */
	if (o.listen || (*o.port >= '0' && *o.port <= '9'))
		port_arg(o.port, "port");
	else if (o.numeric)
		die_usage("-n: PORT '%s' is not a number", o.port);
	uint16_t domid;
	char bad[64];
	bool digits = o.domain && *o.domain >= '0' && *o.domain <= '9';
	if (o.domain && (digits || o.numeric) && !v4v_domid_parse(o.domain, &domid))
		die_usage("DOMAIN: %s", v4v_domid_bad(bad, sizeof(bad), o.domain));
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	int e = v4v_open(&dom);
	if (e == -ENOTCONN)
		die("not inside a v4v domain: run it under v4v-run");
	if (e)
		die("cannot attach to the domain: %s",
		    e == -EPIPE ? "v4vd is not answering" : strerror(-e));
	return o.listen ? do_listen() : do_connect();
}
