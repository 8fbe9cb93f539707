/* SPDX-License-Identifier: MIT */
/*
 * v4v-vm's command line and event loop: ask v4vd for the domain (as v4v-run
 * does), listen for QEMU's vhost-user connection, then move packets
 * between the guest's queues and the domain's stream sockets until QEMU
 * goes away.  The VM is the domain: when QEMU hangs up, v4v-vm exits at
 * once without closing anything, so v4vd destroys the domain and every
 * peer sees its connections reset.  If v4v-vm itself dies, the watcher
 * it forked first (watch.c) resets the guest's side.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/util.h"
#include "tool.h"
#include "v4v/v4v.h"
#include "vm/vm.h"
#include "vm/watch.h"

const char *prog = "v4v-vm";

static struct vm the_vm;

static void usage(FILE *f)
{
	fprintf(f, "usage: v4v-vm --socket PATH [--name NAME] [--domid N] [--listen PORTS] "
		   "[--verbose]\n"
		   "  --socket PATH   where QEMU connects (its -chardev socket,path=PATH)\n"
		   "  --name NAME     the VM's domain name\n"
		   "  --domid N       the VM's domain id (default: lowest free); guest cid N+2\n"
		   "  --listen PORTS  accept v4v connections on these ports and pass them to\n"
		   "                  the guest (comma-separated ports or ranges A-B)\n"
		   "  --verbose       log vhost-user messages and refused connections\n");
}

void vm_watch(struct vm *vm, int fd, struct tag *t, uint32_t events, uint32_t *cur)
{
	struct epoll_event ev = {.events = events, .data.ptr = t};
	if (events == *cur)
		return;
	int op = *cur == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
	if (epoll_ctl(vm->ep, op, fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	*cur = events;
}

static void mem_changed(void *arg, const struct vhu_mem *mem, const int *fds, unsigned nfds)
{
	watch_mem(mem, fds, nfds);
}

static void call_changed(void *arg, unsigned qi, int fd)
{
	if (qi == VQ_RX)
		watch_call(fd);
}

static void queue_stopped(void *arg, unsigned qi)
{
	struct vm *vm = arg;
	if (qi == VQ_RX && vm->nconn) {
		fprintf(stderr,
			"v4v-vm: the guest reset its vsock device; dropping %u connections\n",
			vm->nconn);
		vm->drop_all = true; /* after this batch of events: they may name them */
	}
}

static void kick_changed(void *arg, unsigned qi, int fd, bool add)
{
	struct vm *vm = arg;
	uint32_t cur = add ? 0 : EPOLLIN;
	vm_watch(vm, fd, &vm->kick_tag[qi], add ? EPOLLIN : 0, &cur);
}

/* ---- the queues -------------------------------------------------------- */

static void drain_tx(struct vm *vm)
{
	struct vq *q = &vm->vh.q[VQ_TX];
	struct vq_chain c;
	int r;
	vq_pass(q);
	while (vq_ready(q) && (r = vq_pop(q, &vm->vh.mem, &c)) != 0) {
		if (r == -EIO) {
			fprintf(stderr, "v4v-vm: the guest's tx queue is corrupt; ignoring it\n");
			break;
		}
		struct vsock_hdr h;
		enum pkt_err e = r == 1 ? pkt_parse(&c, vm->guest_cid, &h) : PKT_SHORT;
		if (e == PKT_OK) {
			if (vm->verbose && h.op != VSOCK_OP_RW)
				fprintf(stderr,
					"v4v-vm: from guest port %u to %llu:%u: op %u flags %u\n",
					h.src_port, (unsigned long long)h.dst_cid, h.dst_port, h.op,
					h.flags);
			conn_from_guest(vm, &h, &c);
		} else {
			if (vm->verbose)
				fprintf(stderr, "v4v-vm: guest packet dropped: %s\n",
					pkt_err_str(e));
			if (pkt_err_wants_rst(e, &h))
				conn_stray_rst(vm, &h);
		}
		vq_push(q, c.head, 0);
	}
	vq_signal(q);
}

static void fill_rx(struct vm *vm)
{
	struct vq *q = &vm->vh.q[VQ_RX];
	struct vq_chain c;
	int r;
	vq_pass(q);
	while (vq_ready(q) && (r = vq_pop(q, &vm->vh.mem, &c)) != 0) {
		if (r == -EIO) {
			fprintf(stderr, "v4v-vm: the guest's rx queue is corrupt; ignoring it\n");
			break;
		}
		if (r < 0 || c.rlen || c.wlen < VSOCK_HDR_SIZE) {
			vq_push(q, c.head, 0); /* not a receive buffer */
			continue;
		}
		uint32_t n = conn_produce(vm, &c);
		if (n == 0) {
			vq_unpop(q);
			break;
		}
		vq_push(q, c.head, n);
	}
	vq_signal(q);
}

/* ---- setup ------------------------------------------------------------- */

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	if (strlen(path) >= sizeof(sa.sun_path))
		die("--socket path '%s' is too long", path);
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			die("'%s' exists and is not a socket", path);
		unlink(path); /* a stale one from an earlier run */
	}
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 1) < 0)
		die("cannot listen on '%s': %s", path, strerror(errno));
	return s;
}

/* Listen on every port parse_listen collected. */
static void start_listeners(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nlisten; i++) {
		struct listener *l = &vm->listen[i];
		struct v4v_addr a = {.aport = l->port, .domain_id = V4V_DOMID_ANY};
		l->tag.kind = T_LISTENER;
		l->fd = v4v_socket(vm->d, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
		if (l->fd < 0 || v4v_bind(l->fd, &a) < 0 || v4v_listen(l->fd, 16) < 0)
			die("cannot listen on v4v port %u: %s", l->port, strerror(errno));
		uint32_t cur = 0;
		vm_watch(vm, l->fd, &l->tag, EPOLLIN, &cur);
	}
}

/* "80,8000-8003": each port, each range. */
static void parse_listen(struct vm *vm, char *spec)
{
	for (char *tok = strtok(spec, ","); tok; tok = strtok(NULL, ",")) {
		uint64_t lo, hi;
		char *dash = strchr(tok, '-');
		if (dash)
			*dash = '\0';
		if (!v4v_parse_u64(tok, 1, UINT32_MAX - 1, &lo) ||
		    (dash && !v4v_parse_u64(dash + 1, lo, UINT32_MAX - 1, &hi)))
			die("bad --listen %s '%s%s%s' (ports 1..%u, ranges A-B with A <= B)",
			    dash ? "range" : "port", tok, dash ? "-" : "", dash ? dash + 1 : "",
			    UINT32_MAX - 1);
		if (!dash)
			hi = lo;
		if (hi - lo >= VM_MAX_LISTEN)
			die("--listen: at most %u ports", VM_MAX_LISTEN);
		for (uint64_t p = lo; p <= hi; p++) {
			if (vm->nlisten == VM_MAX_LISTEN)
				die("--listen: at most %u ports", VM_MAX_LISTEN);
			vm->listen[vm->nlisten++].port = (uint32_t)p;
		}
	}
}

/* The domain, from v4vd's control socket, as v4v-run gets it. */
static struct v4v_domain *create_domain(const char *domid, const char *name)
{
	char cmd[128], *body;
	int fd = -1;
	struct v4v_domain *d;
	snprintf(cmd, sizeof(cmd), "domain create %s %s fd", domid, name);
	if (ctl_request(cmd, &body, &fd) < 0)
		die("%s", body);
	free(body);
	if (fd < 0)
		die("v4vd sent no domain fd");
	int e = v4v_open_fd(fd, &d);
	if (e < 0)
		die("cannot attach to the new domain: %s", strerror(-e));
	return d;
}

/* ---- the loop ---------------------------------------------------------- */

static void on_unix(struct vm *vm, int lfd)
{
	int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		return;
	if (vm->vh.fd >= 0) {
		close(s); /* one QEMU per VM */
		return;
	}
	struct timeval tv = {.tv_sec = 10};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	vhost_init(&vm->vh, s, vm->guest_cid);
	vm->vh.kick = kick_changed;
	vm->vh.mem_set = mem_changed;
	vm->vh.call = call_changed;
	vm->vh.stopped = queue_stopped;
	vm->vh.arg = vm;
	vm->vh.verbose = vm->verbose;
	static struct tag vt = {T_VHOST};
	uint32_t cur = 0;
	vm_watch(vm, s, &vt, EPOLLIN, &cur);
}

static void on_vhost(struct vm *vm)
{
	int e = vhost_handle(&vm->vh);
	watch_rx(&vm->vh.q[VQ_RX]);
	if (e == 0)
		return;
	if (e != -ECONNRESET)
		fprintf(stderr, "v4v-vm: vhost-user connection: %s\n", strerror(-e));
	/* The VM is gone: so is its domain, and every connection with it. */
	fprintf(stderr, "v4v-vm: QEMU disconnected; exiting\n");
	watch_quit();
	_exit(e == -ECONNRESET ? 0 : 1);
}

static void on_kick(struct vm *vm, unsigned qi)
{
	uint64_t n;
	if (vm->vh.q[qi].kick_fd >= 0 && read(vm->vh.q[qi].kick_fd, &n, sizeof(n)) < 0) {
		/* spurious: nothing to clear */
	}
}

static void dispatch(struct vm *vm, int lfd, struct epoll_event *ev)
{
	struct tag *t = ev->data.ptr;
	switch (t->kind) {
	case T_UNIX: on_unix(vm, lfd); break;
	case T_VHOST: on_vhost(vm); break;
	case T_KICK: on_kick(vm, (unsigned)(t - vm->kick_tag)); break;
	case T_LISTENER: conn_accept(vm, (struct listener *)t); break;
	case T_CONN: conn_event(vm, (struct conn *)t, ev->events); break;
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'}, {"name", required_argument, NULL, 'n'},
	    {"domid", required_argument, NULL, 'd'},  {"listen", required_argument, NULL, 'l'},
	    {"verbose", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},      {0},
	};
	const char *path = NULL, *domid = "auto", *name = "-";
	char bad[64];
	uint16_t id;
	char *listen_spec = NULL;
	struct vm *vm = &the_vm;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:n:d:l:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 's': path = optarg; break;
		case 'n':
			if (!v4v_name_valid(optarg))
				v4v_usage_error(
				    "v4v-vm",
				    "bad --name '%s' (1-31 of A-Za-z0-9._-, not starting "
				    "with a digit or -)",
				    optarg);
			name = optarg;
			break;
		case 'd':
			if (!v4v_domid_parse(optarg, &id))
				v4v_usage_error("v4v-vm", "%s",
						v4v_domid_bad(bad, sizeof(bad), optarg));
			domid = optarg;
			break;
		case 'l': listen_spec = optarg; break;
		case 'v': vm->verbose = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': v4v_print_version("v4v-vm"); return 0;
		default: v4v_option_error("v4v-vm", c, argv);
		}
	}
	if (!path)
		v4v_usage_error("v4v-vm", "--socket is required");
	if (optind != argc)
		v4v_usage_error("v4v-vm", "unexpected argument '%s'", argv[optind]);
	if (listen_spec)
		parse_listen(vm, listen_spec);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_IGN); /* the watcher reaps itself */
	int e = watch_start();
	if (e < 0)
		die("cannot start the watcher: %s", strerror(-e));

	vm->ep = epoll_create1(EPOLL_CLOEXEC);
	if (vm->ep < 0)
		die("epoll: %s", strerror(errno));
	vm->vh.fd = -1;
	for (unsigned i = 0; i < VHOST_NQUEUES; i++)
		vm->kick_tag[i].kind = T_KICK;
	vm->d = create_domain(domid, name);
	vm->guest_cid = (uint64_t)v4v_domid(vm->d) + VSOCK_CID_OFFSET;
	watch_set_cid(vm->guest_cid);
	start_listeners(vm);
	int lfd = listen_unix(path);
	static struct tag ut = {T_UNIX};
	uint32_t cur = 0;
	vm_watch(vm, lfd, &ut, EPOLLIN, &cur);
	fprintf(stderr, "v4v-vm: domain %u%s%s, guest cid %llu, vhost-user socket %s\n",
		v4v_domid(vm->d), *v4v_domain_name(vm->d) ? " " : "", v4v_domain_name(vm->d),
		(unsigned long long)vm->guest_cid, path);

	for (;;) {
		struct epoll_event ev[64];
		int n = epoll_wait(vm->ep, ev, 64, -1);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++)
			dispatch(vm, lfd, &ev[i]);
		if (vm->drop_all) {
			vm->drop_all = false;
			conn_drop_all(vm);
		}
		drain_tx(vm);
		fill_rx(vm);
	}
}
