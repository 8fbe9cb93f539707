/* SPDX-License-Identifier: MIT */
/*
 * Serving requests: one received packet of the Linux transport
 * (wire/proto.h) in, one reply out.  Validation, the fd counts, the errno
 * of every refusal, op dispatch, the staging bounds and the marshalling of
 * the notify, events and name replies all live here; the shell (v4vd) only
 * moves bytes and fds and does the I/O hv_serve_io() asks for.  Fuzzed by
 * fuzz/fuzz_proto.c through the same entry points.
 */
#include "hv_priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../common/barrier.h"

/* The checks of a request before anything is done for it. */
static int req_check(struct hv *hv, const union v4v_req_any *q, size_t n, unsigned nfds)
{
	int err = n == HV_REQ_TRUNCATED ? -EMSGSIZE : v4v_req_check(q, n);
	if (!err && !v4v_req_nfds_ok(q->h.op, nfds))
		err = -EBADF;
	if (!err && (q->h.op == V4V_OP_ATTACH || q->h.op == V4V_OP_CALL_KICK))
		err = -EINVAL; /* only on the domain fd; the shell's, never served */
	if (err)
		hv->bad_requests++;
	return err;
}

/* A register request's own checks, before its memory is mapped. */
static bool register_ok(const struct v4v_req_register *q, unsigned nfds)
{
	return v4v_ring_len_ok(q->ring.len) && (nfds == 3) == (q->tx_len != 0);
}

void hv_serve_io(const union v4v_req_any *q, size_t n, unsigned nfds, struct hv_io *io)
{
	*io = (struct hv_io){0};
	if (n == HV_REQ_TRUNCATED || v4v_req_check(q, n) || !v4v_req_nfds_ok(q->h.op, nfds) ||
	    q->h.op != V4V_OP_REGISTER_RING || !register_ok(&q->reg, nfds))
		return;
	io->ring_size = V4V_RING_HDR_SIZE + (size_t)q->reg.ring.len;
	io->bell = nfds >= 2;
	io->tx_size = nfds == 3 ? V4V_RING_HDR_SIZE + (size_t)q->reg.tx_len : 0;
	io->aport = q->reg.ring.aport;
	io->partner = q->reg.ring.partner_id;
}

/* Give back what the shell mapped for a register that did not happen. */
static void mapped_release(struct hv *hv, const struct v4v_req_register *q,
			   const struct hv_mapped *m)
{
	if (m->tx)
		hv->ops.unmap(hv->ctx, m->tx, q->tx_len, NULL);
	if (m->ring)
		hv->ops.unmap(hv->ctx, m->ring, q->ring.len, m->bell);
}

static long serve_register(struct hv *hv, struct hv_client *c, const struct v4v_req_register *q,
			   unsigned nfds, struct hv_mapped *m)
{
	struct hv_ring *r;
	int e;
	if (!register_ok(q, nfds))
		e = -EINVAL;
	else if (m->err)
		e = m->err;
	else
		e = hv_register_ring(hv, c, &q->ring, q->flags, m->ring, m->bell, m->tx, q->tx_len,
				     &r);
	if (e) {
		mapped_release(hv, q, m); /* the ring, if any, is as it was */
		return e;
	}
	m->registered = r;
	m->has_tx = m->tx != NULL;
	return 0;
}

static size_t serve_sendv(struct hv *hv, struct hv_client *c, const struct v4v_req_sendv *q,
			  union v4v_reply_any *out)
{
	struct v4v_seg seg[V4V_MAX_IOV];
	uint64_t off = q->staging_off; /* bounds checked by v4v_req_check */
	out->sendv.max_message_size = 0;
	out->sendv.spare_port = 0;
	if (!c->staging) {
		out->r.ret = -EFAULT;
		return sizeof(out->sendv);
	}
	for (unsigned i = 0; i < q->niov; i++) {
		seg[i] = (struct v4v_seg){c->staging + off, q->iov_len[i]};
		off += q->iov_len[i];
	}
	out->r.ret = hv_sendv(hv, c, q->src.aport, &q->dst, q->message_type, seg, q->niov,
			      &out->sendv.max_message_size, &out->sendv.spare_port);
	return sizeof(out->sendv);
}

/* The entries come back with their flags filled in, after the reply. */
static size_t serve_notify(struct hv *hv, struct hv_client *c, const struct v4v_req_notify *q,
			   union v4v_reply_any *out)
{
	struct v4v_ring_data_ent ent[V4V_MAX_NOTIFY];
	size_t bytes = q->nent * sizeof(ent[0]); /* nent checked by v4v_req_check */
	memcpy(ent, q->ent, bytes);
	out->r.ret = hv_notify(hv, c, ent, q->nent);
	if (bytes > sizeof(*out) - sizeof(out->r))
		bytes = 0; /* cannot happen: V4V_MAX_NOTIFY entries fit */
	memcpy(out->raw + sizeof(out->r), ent, bytes);
	return sizeof(out->r) + bytes;
}

/* As many queued events as the reply holds, after it. */
static size_t serve_events(struct hv_client *c, union v4v_reply_any *out)
{
	struct hv_event ev[(sizeof(*out) - sizeof(out->r)) / sizeof(struct hv_event)];
	unsigned k = hv_events(c, ev, sizeof(ev) / sizeof(ev[0]));
	out->r.ret = k;
	memcpy(out->raw + sizeof(out->r), ev, k * sizeof(ev[0]));
	return sizeof(out->r) + k * sizeof(ev[0]);
}

/* Lookup by domid or by domain name; an empty service resolves the domain
 * alone. */
static size_t serve_lookup(struct hv *hv, struct hv_client *c, const struct v4v_req_name *q,
			   union v4v_reply_any *out)
{
	uint16_t domid = q->domid;
	if (domid == V4V_DOMID_ANY) {
		struct hv_domain *t = hv_domain_by_name(hv, q->domain);
		domid = t ? hv_domain_id(t) : V4V_DOMID_ANY;
	}
	if (!hv_domain_find(hv, domid)) {
		out->r.ret = -ESRCH;
		return sizeof(out->r);
	}
	out->name.port = 0;
	out->r.ret = *q->service ? hv_name_lookup(hv, c->d, domid, q->service, &out->name.port) : 0;
	out->name.domid = domid;
	return sizeof(out->name);
}

size_t hv_serve(struct hv *hv, struct hv_client *c, const union v4v_req_any *q, size_t n,
		unsigned nfds, struct hv_mapped *m, union v4v_reply_any *out)
{
	bool whole = n != HV_REQ_TRUNCATED && n >= sizeof(q->h);
	int err = req_check(hv, q, n, nfds);
	out->r = (struct v4v_reply){.h = whole ? q->h : (struct v4v_req_hdr){0}};
	if (err) {
		out->r.ret = err; /* m is empty: hv_serve_io asked for nothing */
		return sizeof(out->r);
	}
	switch (q->h.op) {
	case V4V_OP_REGISTER_RING: out->r.ret = serve_register(hv, c, &q->reg, nfds, m); break;
	case V4V_OP_UNREGISTER_RING:
		out->r.ret = hv_unregister_ring(hv, c, q->unreg.aport, q->unreg.partner_id);
		break;
	case V4V_OP_SENDV: return serve_sendv(hv, c, &q->send, out);
	case V4V_OP_RING_POKE:
		out->r.ret = hv_ring_poke(hv, c, q->unreg.aport, q->unreg.partner_id);
		break;
	case V4V_OP_RING_SPARE:
		out->r.ret =
		    hv_ring_spare(hv, c, q->spare.aport, q->spare.partner_id, q->spare.listener);
		break;
	case V4V_OP_NOTIFY: return serve_notify(hv, c, &q->notify, out);
	case V4V_OP_EVENTS: return serve_events(c, out);
	case V4V_OP_NAME_REGISTER:
		out->r.ret = hv_name_register(hv, c->d, q->name.service, q->name.port, q->name.acl,
					      q->name.nacl);
		break;
	case V4V_OP_NAME_UNREGISTER:
		out->r.ret = hv_name_unregister(hv, c->d, q->name.service);
		break;
	case V4V_OP_NAME_LOOKUP: return serve_lookup(hv, c, &q->name, out);
	default: out->r.ret = -ENOSYS; break; /* v4v_req_check knows no other op */
	}
	return sizeof(out->r);
}

bool hv_serve_area(struct hv *hv, struct hv_client *c, struct v4v_call_area *a, uint32_t *seq,
		   union v4v_req_any *q, union v4v_reply_any *out, size_t *len, bool *wake)
{
	uint32_t sub = v4v_load_acquire(&a->sub);
	if (sub == *seq)
		return false;
	uint32_t n = v4v_load_relaxed(&a->req_len);
	*len = n <= sizeof(q->raw) ? n : HV_REQ_TRUNCATED;
	if (*len != HV_REQ_TRUNCATED)
		memcpy(q, a->req, *len); /* ours now: the domain may rewrite its copy */
	struct hv_mapped none = {0};
	size_t rlen = hv_serve(hv, c, q, *len, 0, &none, out);
	memcpy(a->reply, out, rlen);
	v4v_store_relaxed(&a->reply_len, (uint32_t)rlen);
	v4v_store_release(&a->done, sub);
	*seq = sub;
	/* Read, never cleared here: the caller clears it, so a late read
	 * costs it a spurious wake-up, never a lost one (lib/domain.c). */
	v4v_fence();
	*wake = v4v_load_relaxed(&a->waiting) != 0;
	return true;
}

void hv_area_poll(struct v4v_call_area *a)
{
	v4v_store_relaxed(&a->polled, 1);
}

bool hv_area_park(struct v4v_call_area *a, uint32_t seq)
{
	v4v_store_relaxed(&a->polled, 0);
	v4v_fence();
	if (v4v_load_acquire(&a->sub) == seq)
		return true;
	v4v_store_relaxed(&a->polled, 1);
	return false;
}

size_t hv_serve_refuse(const union v4v_req_any *q, size_t n, int err, union v4v_reply_any *out)
{
	bool whole = n != HV_REQ_TRUNCATED && n >= sizeof(q->h);
	out->r = (struct v4v_reply){.h = whole ? q->h : (struct v4v_req_hdr){0}, .ret = err};
	return sizeof(out->r);
}

int hv_attach_check(struct hv *hv, const struct v4v_req_attach *q, size_t n, unsigned nfds)
{
	int err = n == HV_REQ_TRUNCATED ? -EMSGSIZE : v4v_req_check(q, n);
	if (!err && (q->h.op != V4V_OP_ATTACH || nfds != 2))
		err = -EINVAL;
	if (err)
		hv->bad_requests++;
	return err;
}

size_t hv_attach_reply(const struct hv_domain *d, const struct v4v_req_attach *q, int err,
		       union v4v_reply_any *out)
{
	if (err) {
		out->r = (struct v4v_reply){.h = q->h, .ret = err};
		return sizeof(out->r);
	}
	out->attach = (struct v4v_attach_reply){
	    .r = {.h = q->h, .ret = 0},
	    .domid = d->domid,
	    .version = V4V_PROTO_VERSION,
	};
	snprintf(out->attach.name, sizeof(out->attach.name), "%s", d->name);
	return sizeof(out->attach);
}

void hv_client_set_staging(struct hv_client *c, const void *staging)
{
	c->staging = staging;
}

uint64_t hv_bad_requests(const struct hv *hv)
{
	return hv->bad_requests;
}
