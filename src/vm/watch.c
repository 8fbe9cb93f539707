/* SPDX-License-Identifier: MIT */
/*
 * The last word for a dead backend.  When v4v-vm dies (SIGKILL, a crash)
 * QEMU 7.2 tells the guest nothing, and its vsock connections would hang
 * for ever.  So v4v-vm forks, before it touches v4vd or the guest, a small
 * watcher that only waits.  v4v-vm keeps it told of the guest's memory
 * table (the region fds, passed over a socket pair), the rx queue's
 * geometry and its call fd, and of its connections (a table in a shared
 * page).  When the socket pair hangs up without a goodbye, v4v-vm is dead:
 * the watcher maps the guest's memory, puts one RST per connection into
 * the receive buffers the guest has posted, interrupts it, and exits.
 *
 * The watcher holds no domain fd (the domain dies with v4v-vm, so peers
 * are reset at once) and reads the guest's queue with the same checked
 * code as v4v-vm.  The rx queue's next index is the used index in guest
 * memory: v4v-vm never holds a receive buffer across events.
 */
#define _GNU_SOURCE
#include "vm/watch.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vm/mem.h"
#include "vm/pkt.h"
#include "vm/vq.h"

struct watch_page {
	uint64_t guest_cid;
	uint32_t num;
	uint64_t desc_uva, avail_uva, used_uva;
	struct watch_slot {
		uint64_t peer_cid;
		uint32_t peer_port, guest_port;
		uint32_t live;
	} slot[WATCH_MAX_CONN];
};

enum { W_MEM = 'M', W_CALL = 'C', W_QUIT = 'Q' };

struct wmsg {
	uint32_t type;
	struct vhu_mem mem;
};

static struct watch_page *page;
static int sock = -1;

static void send_msg(const struct wmsg *m, const int *fds, unsigned nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
	struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof(*m)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (sock < 0)
		return;
	if (nfds) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0) {
		/* the watcher is gone: v4v-vm goes on without it */
	}
}

void watch_mem(const struct vhu_mem *mem, const int *fds, unsigned nfds)
{
	struct wmsg m = {.type = W_MEM, .mem = *mem};
	send_msg(&m, fds, nfds <= VHU_MAX_FDS ? nfds : 0);
}

void watch_call(int fd)
{
	struct wmsg m = {.type = W_CALL};
	send_msg(&m, &fd, fd >= 0 ? 1 : 0);
}

void watch_rx(const struct vq *q)
{
	if (!page)
		return;
	page->num = q->num;
	page->desc_uva = q->desc_uva;
	page->avail_uva = q->avail_uva;
	page->used_uva = q->used_uva;
}

int watch_conn_add(uint64_t peer_cid, uint32_t peer_port, uint32_t guest_port)
{
	for (int i = 0; page && i < WATCH_MAX_CONN; i++) {
		struct watch_slot *s = &page->slot[i];
		if (s->live)
			continue;
		s->peer_cid = peer_cid;
		s->peer_port = peer_port;
		s->guest_port = guest_port;
		s->live = 1;
		return i;
	}
	return -1;
}

void watch_conn_del(int slot)
{
	if (page && slot >= 0 && slot < WATCH_MAX_CONN)
		page->slot[slot].live = 0;
}

void watch_quit(void)
{
	struct wmsg m = {.type = W_QUIT};
	send_msg(&m, NULL, 0);
}

/* ---- the watcher ------------------------------------------------------- */

/* The RSTs, one per buffer; returns how many connections were told. */
static int reset_all(struct vm_mem *mem, int call_fd)
{
	int told = 0;
	struct vq q;
	struct vq_chain c;
	vq_init(&q);
	q.num = page->num;
	q.desc_uva = page->desc_uva;
	q.avail_uva = page->avail_uva;
	q.used_uva = page->used_uva;
	if (vq_map(&q, mem) < 0)
		return 0;
	memcpy(&q.used_idx, q.used + 2, 2); /* ours, and where we stopped */
	q.last_avail = q.used_idx;
	q.call_fd = call_fd;
	vq_pass(&q);
	for (int i = 0; i < WATCH_MAX_CONN; i++) {
		struct watch_slot s = page->slot[i];
		if (!s.live)
			continue;
		int r;
		while ((r = vq_pop(&q, mem, &c)) == -EBADMSG || (r == 1 && c.rlen))
			vq_push(&q, c.head, 0); /* not a receive buffer */
		if (r != 1 || c.wlen < VSOCK_HDR_SIZE)
			break; /* no buffer left: the rest cannot be told */
		struct vsock_hdr h = {.src_cid = s.peer_cid,
				      .dst_cid = page->guest_cid,
				      .src_port = s.peer_port,
				      .dst_port = s.guest_port,
				      .type = VSOCK_TYPE_STREAM,
				      .op = VSOCK_OP_RST};
		uint8_t raw[VSOCK_HDR_SIZE];
		pkt_encode(&h, raw);
		vq_chain_write(&c, 0, raw, sizeof(raw));
		vq_push(&q, c.head, VSOCK_HDR_SIZE);
		told++;
	}
	vq_signal(&q);
	return told;
}

static void set_fds(int *have, unsigned *n, const int *fds, unsigned k)
{
	for (unsigned i = 0; i < *n; i++)
		close(have[i]);
	memcpy(have, fds, sizeof(int) * k);
	*n = k;
}

static void __attribute__((noreturn)) watcher(int s)
{
	struct vhu_mem table = {0};
	int mem_fds[VHU_MAX_FDS], call_fd = -1;
	unsigned nmem = 0;
	signal(SIGINT, SIG_IGN); /* a ^C to the terminal is for v4v-vm */
	signal(SIGTERM, SIG_IGN);
	for (;;) {
		struct wmsg m;
		char cbuf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
		struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf)};
		ssize_t n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* v4v-vm died without a word */
		int fds[VHU_MAX_FDS];
		unsigned k = 0;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		if (c && c->cmsg_type == SCM_RIGHTS) {
			k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			k = k > VHU_MAX_FDS ? VHU_MAX_FDS : k;
			memcpy(fds, CMSG_DATA(c), sizeof(int) * k);
		}
		if (m.type == W_QUIT)
			_exit(0);
		if (m.type == W_MEM && n == sizeof(m)) {
			table = m.mem;
			set_fds(mem_fds, &nmem, fds, k);
		} else if (m.type == W_CALL) {
			if (call_fd >= 0)
				close(call_fd);
			call_fd = k ? fds[0] : -1;
		} else {
			for (unsigned i = 0; i < k; i++)
				close(fds[i]);
		}
	}
	struct vm_mem mem = {0};
	int told = 0;
	if (nmem && vm_mem_set(&mem, &table, mem_fds, nmem) == 0)
		told = reset_all(&mem, call_fd);
	if (nmem) /* (quiet when no guest ever attached, e.g. a bad command line) */
		dprintf(2, "v4v-vm: watcher: v4v-vm died; reset %d guest connection%s\n", told,
			told == 1 ? "" : "s");
	_exit(0);
}

void watch_set_cid(uint64_t guest_cid)
{
	if (page)
		page->guest_cid = guest_cid;
}

int watch_start(void)
{
	int sv[2];
	page = mmap(NULL, sizeof(*page), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED) {
		page = NULL;
		return -errno;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* Nothing of v4v-vm's but the pair's end and stdio. */
		close(sv[0]);
		for (int fd = 3; fd < 1024; fd++)
			if (fd != sv[1])
				close(fd);
		prctl(PR_SET_NAME, "v4v-vm-watch");
		watcher(sv[1]);
	}
	close(sv[1]);
	sock = sv[0];
	return 0;
}
