/* SPDX-License-Identifier: MIT */
/* The vhost-user message subset of a vsock backend (vhost.h). */
#define _GNU_SOURCE
#include "vm/vhost.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vm/wire.h"

#define OFFERED_FEATURES                                                                           \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES) |                 \
	 (1ull << VIRTIO_VSOCK_F_SEQPACKET))
#define OFFERED_PROTOCOL (1ull << VHOST_USER_PROTOCOL_F_CONFIG)

struct msg {
	struct vhu_hdr h;
	union {
		uint64_t u64;
		struct vhu_state state;
		struct vhu_addr addr;
		struct vhu_mem mem;
		struct vhu_config config;
		uint8_t raw[VHU_MAX_PAYLOAD];
	} p;
	int fds[VHU_MAX_FDS];
	unsigned nfds;
};

void vhost_init(struct vhost *v, int fd, uint64_t guest_cid)
{
	memset(v, 0, sizeof(*v));
	v->fd = fd;
	v->guest_cid = guest_cid;
	for (unsigned i = 0; i < VHOST_NQUEUES; i++)
		vq_init(&v->q[i]);
}

static void set_kick(struct vhost *v, unsigned qi, int fd)
{
	struct vq *q = &v->q[qi];
	if (q->kick_fd >= 0) {
		if (v->kick)
			v->kick(v->arg, qi, q->kick_fd, false);
		close(q->kick_fd);
	}
	q->kick_fd = fd;
	if (fd >= 0 && v->kick)
		v->kick(v->arg, qi, fd, true);
}

static void set_call(struct vhost *v, unsigned qi, int fd)
{
	if (v->q[qi].call_fd >= 0)
		close(v->q[qi].call_fd);
	v->q[qi].call_fd = fd;
	if (v->call)
		v->call(v->arg, qi, fd);
}

void vhost_destroy(struct vhost *v)
{
	for (unsigned i = 0; i < VHOST_NQUEUES; i++) {
		set_kick(v, i, -1);
		set_call(v, i, -1);
		vq_unmap(&v->q[i]);
	}
	vm_mem_clear(&v->mem);
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
}

/* The header with any fds, then exactly size payload bytes. */
static int recv_msg(int fd, struct msg *m)
{
	char cbuf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
	struct iovec iov = {.iov_base = &m->h, .iov_len = sizeof(m->h)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	m->nfds = 0;
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int fds[VHU_MAX_FDS];
		memcpy(fds, CMSG_DATA(c), sizeof(int) * (k < VHU_MAX_FDS ? k : VHU_MAX_FDS));
		for (unsigned i = 0; i < k && i < VHU_MAX_FDS; i++)
			m->fds[m->nfds++] = fds[i];
	}
	int e = 0;
	if ((size_t)n != sizeof(m->h) || (mh.msg_flags & MSG_CTRUNC))
		e = -EPROTO;
	else if (m->h.size > VHU_MAX_PAYLOAD)
		e = -EMSGSIZE;
	else if (m->h.size && recv(fd, m->p.raw, m->h.size, MSG_WAITALL) != (ssize_t)m->h.size)
		e = -EPROTO;
	if (e) {
		for (unsigned i = 0; i < m->nfds; i++)
			close(m->fds[i]);
		m->nfds = 0;
	}
	return e;
}

static int reply(struct vhost *v, const struct msg *m, const void *p, uint32_t size)
{
	struct vhu_hdr h = {
	    .request = m->h.request, .flags = VHU_VERSION | VHU_FLAG_REPLY, .size = size};
	struct iovec iov[2] = {{.iov_base = &h, .iov_len = sizeof(h)},
			       {.iov_base = (void *)p, .iov_len = size}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	ssize_t n = sendmsg(v->fd, &mh, MSG_NOSIGNAL);
	return n == (ssize_t)(sizeof(h) + size) ? 0 : -EPIPE;
}

static int reply_u64(struct vhost *v, const struct msg *m, uint64_t x)
{
	return reply(v, m, &x, sizeof(x));
}

/* The queue a message names, or NULL (QEMU keeps the event queue). */
static struct vq *queue(struct vhost *v, uint32_t index, unsigned *qi)
{
	if (index >= VHOST_NQUEUES)
		return NULL;
	*qi = index;
	return &v->q[index];
}

static void remap(struct vhost *v, unsigned qi)
{
	struct vq *q = &v->q[qi];
	if (!q->desc_uva)
		return;
	if (vq_map(q, &v->mem) < 0)
		fprintf(stderr, "v4v-vm: queue %u: ring outside guest memory or misaligned\n", qi);
}

static int set_mem_table(struct vhost *v, struct msg *m)
{
	if (m->h.size < 8 || m->p.mem.nregions > VHU_MAX_REGIONS ||
	    m->h.size < 8 + 32 * m->p.mem.nregions) {
		for (unsigned i = 0; i < m->nfds; i++)
			close(m->fds[i]);
		m->nfds = 0;
		return -EPROTO;
	}
	if (v->mem_set)
		v->mem_set(v->arg, &m->p.mem, m->fds, m->nfds);
	int e = vm_mem_set(&v->mem, &m->p.mem, m->fds, m->nfds);
	m->nfds = 0; /* vm_mem_set closed them */
	if (e)
		fprintf(stderr, "v4v-vm: cannot map the guest memory table: %s\n", strerror(-e));
	for (unsigned i = 0; i < VHOST_NQUEUES; i++)
		remap(v, i);
	return 0;
}

static int get_config(struct vhost *v, const struct msg *m)
{
	struct vhu_config c = m->p.config;
	uint8_t space[8];
	uint64_t cid = htole64(v->guest_cid);
	if (m->h.size < 12 || c.size > VHU_CONFIG_MAX || m->h.size < 12 + c.size)
		return -EPROTO;
	memcpy(space, &cid, 8);
	memset(c.payload, 0, sizeof(c.payload));
	for (uint32_t i = 0; i < c.size; i++)
		if ((uint64_t)c.offset + i < sizeof(space))
			c.payload[i] = space[c.offset + i];
	return reply(v, m, &c, 12 + c.size);
}

/* The vring's fd message: index in the low byte, NOFD flag, fd attached. */
static int vring_fd(struct vhost *v, struct msg *m, int which)
{
	unsigned qi;
	int fd = -1;
	if (m->h.size < 8)
		return -EPROTO;
	if (!(m->p.u64 & VHU_VRING_NOFD) && m->nfds == 1) {
		fd = m->fds[0];
		m->nfds = 0;
	}
	struct vq *q = queue(v, (uint32_t)(m->p.u64 & VHU_VRING_IDX_MASK), &qi);
	if (!q) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (which == VHU_SET_VRING_KICK) {
		if (!(v->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
			q->enabled = true; /* without them a ring starts enabled */
		set_kick(v, qi, fd);
	} else if (which == VHU_SET_VRING_CALL) {
		set_call(v, qi, fd);
	} else if (fd >= 0) {
		close(fd); /* the error fd: we never report through it */
	}
	return 0;
}

static int vring_msg(struct vhost *v, struct msg *m)
{
	unsigned qi;
	size_t need =
	    m->h.request == VHU_SET_VRING_ADDR ? sizeof(struct vhu_addr) : sizeof(struct vhu_state);
	if (m->h.size < need)
		return -EPROTO;
	struct vq *q = queue(v, m->p.state.index, &qi);
	if (!q)
		return m->h.request == VHU_GET_VRING_BASE ? reply(v, m, &m->p.state, 8) : 0;
	switch (m->h.request) {
	case VHU_SET_VRING_NUM:
		q->num = m->p.state.num;
		remap(v, qi);
		return 0;
	case VHU_SET_VRING_ADDR:
		q->desc_uva = m->p.addr.desc;
		q->used_uva = m->p.addr.used;
		q->avail_uva = m->p.addr.avail;
		remap(v, qi);
		return 0;
	case VHU_SET_VRING_BASE:
		q->last_avail = (uint16_t)m->p.state.num;
		q->used_idx = (uint16_t)m->p.state.num;
		return 0;
	case VHU_GET_VRING_BASE: {
		/* Stop the ring and say where it stopped. */
		struct vhu_state s = {.index = qi, .num = q->last_avail};
		set_kick(v, qi, -1);
		q->enabled = false;
		if (v->stopped)
			v->stopped(v->arg, qi);
		return reply(v, m, &s, sizeof(s));
	}
	case VHU_SET_VRING_ENABLE: q->enabled = m->p.state.num != 0; return 0;
	}
	return 0;
}

static int dispatch(struct vhost *v, struct msg *m)
{
	switch (m->h.request) {
	case VHU_GET_FEATURES: return reply_u64(v, m, OFFERED_FEATURES);
	case VHU_SET_FEATURES:
		if (m->h.size < 8)
			return -EPROTO;
		v->features = m->p.u64 & OFFERED_FEATURES;
		return 0;
	case VHU_GET_PROTOCOL_FEATURES: return reply_u64(v, m, OFFERED_PROTOCOL);
	case VHU_SET_PROTOCOL_FEATURES:
		if (m->h.size < 8)
			return -EPROTO;
		v->protocol_features = m->p.u64 & OFFERED_PROTOCOL;
		return 0;
	case VHU_GET_QUEUE_NUM: return reply_u64(v, m, VHOST_NQUEUES);
	case VHU_SET_OWNER: return 0;
	case VHU_RESET_OWNER:
		for (unsigned i = 0; i < VHOST_NQUEUES; i++) {
			set_kick(v, i, -1);
			v->q[i].enabled = false;
		}
		return 0;
	case VHU_SET_MEM_TABLE: return set_mem_table(v, m);
	case VHU_SET_VRING_NUM:
	case VHU_SET_VRING_ADDR:
	case VHU_SET_VRING_BASE:
	case VHU_GET_VRING_BASE:
	case VHU_SET_VRING_ENABLE: return vring_msg(v, m);
	case VHU_SET_VRING_KICK:
	case VHU_SET_VRING_CALL:
	case VHU_SET_VRING_ERR: return vring_fd(v, m, (int)m->h.request);
	case VHU_GET_CONFIG: return get_config(v, m);
	case VHU_SET_CONFIG: return 0; /* the cid is read-only */
	}
	fprintf(stderr, "v4v-vm: ignoring unsupported vhost-user request %u\n", m->h.request);
	return 0;
}

int vhost_handle(struct vhost *v)
{
	static struct msg m;
	int e = recv_msg(v->fd, &m);
	if (e)
		return e;
	if ((m.h.flags & VHU_VERSION_MASK) != VHU_VERSION)
		e = -EPROTO;
	else
		e = dispatch(v, &m);
	if (v->verbose)
		fprintf(stderr, "v4v-vm: vhost-user request %u size %u: %d\n", m.h.request,
			m.h.size, e);
	for (unsigned i = 0; i < m.nfds; i++)
		close(m.fds[i]);
	if (e == -EPROTO && (m.h.flags & VHU_VERSION_MASK) == VHU_VERSION) {
		/* A malformed request in a well-framed stream: refuse it (a
		 * request wanting a reply then gets none) and go on. */
		fprintf(stderr, "v4v-vm: refusing malformed vhost-user request %u (size %u)\n",
			m.h.request, m.h.size);
		return 0;
	}
	return e;
}
