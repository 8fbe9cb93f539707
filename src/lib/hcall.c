/* SPDX-License-Identifier: MIT */
/* sendv, notify, events: the Argo hypercalls over the channel. */
#include <errno.h>
#include <string.h>

#include "lib.h"

long v4v_sendv(struct v4v_domain *d, v4v_port_t src_port, const struct v4v_addr *dst,
	       const struct iovec *iov, unsigned niov, uint32_t message_type)
{
	return v4v__sendv(d, src_port, dst, iov, niov, message_type, NULL, NULL);
}

long v4v__sendv(struct v4v_domain *d, v4v_port_t src_port, const struct v4v_addr *dst,
		const struct iovec *iov, unsigned niov, uint32_t message_type,
		uint32_t *max_message, v4v_port_t *spare)
{
	struct v4v_req_sendv q = {
	    .h = {.op = V4V_OP_SENDV},
	    .src = {.aport = src_port},
	    .dst = {.aport = dst->aport, .domain_id = dst->domain_id},
	    .message_type = message_type,
	    .niov = niov,
	};
	uint64_t total = 0;

	if (niov > V4V_MAX_IOV)
		return -EINVAL;
	for (unsigned i = 0; i < niov; i++) {
		if (iov[i].iov_len > V4V_STAGING_SIZE)
			return -EMSGSIZE;
		total += iov[i].iov_len;
		q.iov_len[i] = (uint32_t)iov[i].iov_len;
	}
	if (total > V4V_STAGING_SIZE)
		return -EMSGSIZE;

	int e = v4v__enter(d);
	if (e)
		return e;
	/* The one copy on our side: gather into staging, which v4vd reads. */
	uint8_t *p = d->staging;
	for (unsigned i = 0; i < niov; i++) {
		if (iov[i].iov_len) /* an empty iov may have a NULL base */
			memcpy(p, iov[i].iov_base, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	struct v4v_sendv_reply r;
	size_t got = 0;
	long ret = v4v__call(d, &q, sizeof(q), -1, &r, sizeof(r), &got);
	v4v__leave(d);
	if (max_message)
		*max_message = got >= sizeof(r) ? r.max_message_size : 0;
	if (spare)
		*spare = got >= sizeof(r) && ret >= 0 ? r.spare_port : 0;
	return ret;
}

int v4v__ring_spare(struct v4v_domain *d, v4v_port_t aport, uint16_t partner, v4v_port_t listener)
{
	struct v4v_req_spare q = {
	    .h = {.op = V4V_OP_RING_SPARE},
	    .aport = aport,
	    .partner_id = partner,
	    .listener = listener,
	};
	struct v4v_reply r;
	size_t got;
	int e = v4v__enter(d);
	if (e)
		return e;
	long ret = v4v__call(d, &q, sizeof(q), -1, &r, sizeof(r), &got);
	v4v__leave(d);
	return (int)ret;
}

int v4v_notify(struct v4v_domain *d, struct v4v_ring_data_ent *ent, unsigned n)
{
	union {
		struct v4v_req_notify q;
		uint8_t raw[V4V_REQ_MAX];
	} q;
	union {
		struct v4v_reply r;
		uint8_t raw[V4V_REPLY_MAX];
	} r;
	size_t bytes = (size_t)n * sizeof(*ent), got;

	if (n > V4V_MAX_NOTIFY)
		return -E2BIG;
	q.q = (struct v4v_req_notify){.h = {.op = V4V_OP_NOTIFY}, .nent = n};
	if (bytes) /* v4v_notify(d, NULL, 0) only wakes our rings' waiters */
		memcpy(q.raw + sizeof(q.q), ent, bytes);
	int e = v4v__enter(d);
	if (e)
		return e;
	long ret = v4v__call(d, &q, sizeof(q.q) + bytes, -1, &r, sizeof(r), &got);
	v4v__leave(d);
	if (ret < 0)
		return (int)ret;
	if (got != sizeof(r.r) + bytes)
		return -EPROTO;
	if (bytes)
		memcpy(ent, r.raw + sizeof(r.r), bytes);
	return 0;
}

int v4v_events(struct v4v_domain *d, struct v4v_event *ev, unsigned max)
{
	union {
		struct v4v_reply r;
		uint8_t raw[V4V_REPLY_MAX];
	} r;
	struct v4v_req_hdr q = {.op = V4V_OP_EVENTS};
	size_t got;

	int e = v4v__enter(d);
	if (e)
		return e;
	if (!d->ev_n) {
		long ret = v4v__call(d, &q, sizeof(q), -1, &r, sizeof(r), &got);
		if (ret < 0) {
			v4v__leave(d);
			return (int)ret;
		}
		size_t k = (got - sizeof(r.r)) / sizeof(*ev);
		if ((size_t)ret != k || k > sizeof(d->ev_left) / sizeof(d->ev_left[0])) {
			v4v__leave(d);
			return -EPROTO;
		}
		/* v4vd sends as many as fit in a reply and forgets them: what
		 * the caller has no room for now is kept for its next call. */
		memcpy(d->ev_left, r.raw + sizeof(r.r), k * sizeof(*ev));
		d->ev_head = 0;
		d->ev_n = (unsigned)k;
	}
	unsigned k = d->ev_n < max ? d->ev_n : max;
	memcpy(ev, d->ev_left + d->ev_head, k * sizeof(*ev));
	d->ev_head += k;
	d->ev_n -= k;
	v4v__leave(d);
	return (int)k;
}
