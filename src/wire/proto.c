/* SPDX-License-Identifier: MIT */
/* The Linux transport's request validation (proto.h): sizes, pads, iov
 * and staging bounds, fd counts, checked before the core looks at a field. */
#include "proto.h"

#include <errno.h>
#include <string.h>

static int str_ok(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static int check_sendv(const struct v4v_req_sendv *s)
{
	uint64_t total = 0;
	if (s->niov > V4V_MAX_IOV || s->src.pad || s->dst.pad)
		return -EINVAL;
	for (unsigned i = 0; i < s->niov; i++)
		total += s->iov_len[i];
	for (unsigned i = s->niov; i < V4V_MAX_IOV; i++)
		if (s->iov_len[i])
			return -EINVAL;
	if (total > V4V_STAGING_SIZE)
		return -EMSGSIZE;
	if (s->staging_off > V4V_STAGING_SIZE || total > V4V_STAGING_SIZE - s->staging_off)
		return -EFAULT;
	return 0;
}

static int check_name(const struct v4v_req_name *r)
{
	if (!str_ok(r->service, sizeof(r->service)) || !str_ok(r->domain, sizeof(r->domain)) ||
	    r->nacl > 8)
		return -EINVAL;
	return 0;
}

bool v4v_req_nfds_ok(uint32_t op, unsigned nfds)
{
	switch (op) {
	case V4V_OP_REGISTER_RING:
		return nfds >= 1 && nfds <= 3; /* memfd [, doorbell [, send ring]] */
	case V4V_OP_ATTACH: return nfds == 2;
	default: return nfds == 0;
	}
}

int v4v_req_check(const void *buf, size_t n)
{
	struct v4v_req_hdr h;
	if (n < sizeof(h))
		return -EINVAL;
	memcpy(&h, buf, sizeof(h));

	switch (h.op) {
	case V4V_OP_REGISTER_RING: {
		struct v4v_req_register r;
		if (n != sizeof(r))
			return -EINVAL;
		memcpy(&r, buf, sizeof(r));
		if (r.tx_len && (r.tx_len < V4V_RING_MIN_LEN || r.tx_len > V4V_RING_MAX_LEN ||
				 r.tx_len % V4V_MSG_SLOT))
			return -EINVAL;
		return r.ring.pad ? -EINVAL : 0;
	}
	case V4V_OP_UNREGISTER_RING:
	case V4V_OP_RING_POKE: {
		struct v4v_req_unregister r;
		if (n != sizeof(r))
			return -EINVAL;
		memcpy(&r, buf, sizeof(r));
		return r.pad ? -EINVAL : 0;
	}
	case V4V_OP_RING_SPARE: {
		struct v4v_req_spare r;
		if (n != sizeof(r))
			return -EINVAL;
		memcpy(&r, buf, sizeof(r));
		return r.pad || r.pad2 ? -EINVAL : 0;
	}
	case V4V_OP_SENDV: {
		struct v4v_req_sendv s;
		if (n != sizeof(s))
			return -EINVAL;
		memcpy(&s, buf, sizeof(s));
		return check_sendv(&s);
	}
	case V4V_OP_NOTIFY: {
		struct v4v_req_notify r;
		if (n < sizeof(r))
			return -EINVAL;
		memcpy(&r, buf, sizeof(r));
		if (r.nent > V4V_MAX_NOTIFY)
			return -E2BIG;
		if (r.pad || n != sizeof(r) + r.nent * sizeof(struct v4v_ring_data_ent))
			return -EINVAL;
		return 0;
	}
	case V4V_OP_EVENTS:
	case V4V_OP_CALL_KICK: return n == sizeof(h) ? 0 : -EINVAL;
	case V4V_OP_NAME_REGISTER:
	case V4V_OP_NAME_UNREGISTER:
	case V4V_OP_NAME_LOOKUP: {
		struct v4v_req_name r;
		if (n != sizeof(r))
			return -EINVAL;
		memcpy(&r, buf, sizeof(r));
		return check_name(&r);
	}
	case V4V_OP_ATTACH: {
		struct v4v_req_attach a;
		if (n != sizeof(a))
			return -EINVAL;
		memcpy(&a, buf, sizeof(a));
		/* Version first: another version may give the pad a meaning. */
		if (a.version != V4V_PROTO_VERSION)
			return -EPROTO;
		return a.pad ? -EINVAL : 0;
	}
	default: return -ENOSYS;
	}
}
