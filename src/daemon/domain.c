/* SPDX-License-Identifier: MIT */
/*
 * Domains, holds and channels: a domain lives while a hold (a domain fd,
 * v4v-run's) or a channel (an attached process) keeps it, or until
 * destroyed when persistent.  Attach turns a domain-fd packet into a
 * channel; a channel's packets are requests, served by the core
 * (hv_serve) after the I/O it asks for.
 */
#define _GNU_SOURCE
#include "v4vd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "../common/util.h"

int v4vd_domain_create(struct v4vd *s, uint16_t domid, const char *name, bool persistent,
		       struct ddom **out)
{
	struct ddom *dd = calloc(1, sizeof(*dd));
	if (!dd)
		return -ENOMEM;
	int e = hv_domain_create(s->hv, domid, name, &dd->hd);
	uint32_t uid;
	if (!e && (e = v4vd_domain_uid(s, hv_domain_id(dd->hd), &uid)) < 0)
		hv_domain_destroy(s->hv, dd->hd); /* no uid for it: principal.c */
	if (e) {
		free(dd);
		return e;
	}
	dd->persistent = persistent;
	s->doms[hv_domain_id(dd->hd)] = dd;
	logmsg(LOG_INFO, "domain %u%s%s created", hv_domain_id(dd->hd),
	       *hv_domain_name(dd->hd) ? " " : "", hv_domain_name(dd->hd));
	*out = dd;
	return 0;
}

int v4vd_domain_hold(struct v4vd *s, struct ddom *dd)
{
	int sv[2], e = v4vd_fds_take(s, dd, 1);
	if (e)
		return e;
	struct dhold *h = calloc(1, sizeof(*h));
	if (!h) {
		v4vd_fds_give(s, hv_domain_id(dd->hd), 1);
		return -ENOMEM;
	}
	h->e = (struct fdent){.kind = FD_DOMAIN, .fd = -1};
	h->dd = dd; /* its fd is counted: v4vd_hold_free gives it back */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		e = -errno;
		v4vd_hold_free(s, h);
		return e;
	}
	h->e.fd = sv[0];
	/* Only our end is non-blocking: O_NONBLOCK would travel with theirs. */
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0)
		e = -errno;
	else if ((e = v4vd_name_own_end(sv[0])) == 0)
		e = v4vd_ep_add(s, &h->e);
	if (e) {
		close(sv[1]);
		v4vd_hold_free(s, h);
		return e;
	}
	h->next = dd->holds;
	dd->holds = h;
	return sv[1];
}

/*
 * A channel's teardown, whatever was built of it: its client (and so its
 * rings), its place on the domain's list and the kick list, its staging
 * mapping, its VIRQ and its fd.  attach's error path uses it too.
 */
void v4vd_chan_free(struct v4vd *s, struct dchan *ch)
{
	hv_client_free(s->hv, ch->hc);
	v4vd_reap(s);
	v4vd_chan_unkick(s, ch);
	v4vd_call_unlist(s, ch);
	if (ch->dd) {
		for (struct dchan **pp = &ch->dd->chans; *pp; pp = &(*pp)->next)
			if (*pp == ch) {
				*pp = ch->next;
				break;
			}
		s->nchans--;
		v4vd_fds_give(s, hv_domain_id(ch->dd->hd), 2); /* channel, VIRQ */
	}
	if (ch->staging)
		v4vd_memfd_release(s, ch->staging);
	if (ch->virq >= 0)
		close(ch->virq);
	v4vd_bury(s, &ch->e);
}

/* A hold's teardown, whatever was built of it. */
void v4vd_hold_free(struct v4vd *s, struct dhold *h)
{
	if (h->dd) {
		v4vd_fds_give(s, hv_domain_id(h->dd->hd), 1);
		for (struct dhold **pp = &h->dd->holds; *pp; pp = &(*pp)->next)
			if (*pp == h) {
				*pp = h->next;
				break;
			}
	}
	v4vd_bury(s, &h->e);
}

void v4vd_domain_destroy(struct v4vd *s, struct ddom *dd)
{
	uint16_t domid = hv_domain_id(dd->hd);
	while (dd->chans)
		v4vd_chan_free(s, dd->chans);
	while (dd->holds)
		v4vd_hold_free(s, dd->holds);
	hv_domain_destroy(s->hv, dd->hd);
	v4vd_reap(s);
	s->doms[domid] = NULL;
	free(dd);
	logmsg(LOG_INFO, "domain %u destroyed", domid);
}

/* A domain goes when nothing holds it: no domain fd, no channel. */
static void domain_maybe_gone(struct v4vd *s, struct ddom *dd)
{
	if (!dd->holds && !dd->chans && !dd->persistent)
		v4vd_domain_destroy(s, dd);
}

struct ddom *v4vd_domain_lookup(struct v4vd *s, const char *spec)
{
	uint64_t v;
	if (v4v_parse_u64(spec, 0, V4V_DOMID_MAX, &v))
		return s->doms[v];
	struct hv_domain *d = hv_domain_by_name(s->hv, spec);
	return d ? s->doms[hv_domain_id(d)] : NULL;
}

int v4vd_is_seqpacket(int fd)
{
	int type = 0;
	socklen_t tl = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
		return errno == ENOTSOCK ? -ENOTSOCK : -errno;
	return type == SOCK_SEQPACKET ? 0 : -ENOTSOCK;
}

/*
 * recv returns 0 both for the peer's hang-up and for an empty packet, which
 * a domain may send on purpose: only the first is a reason to let go.  (An
 * empty packet that carries fds is never a hang-up.)
 */
static bool hung_up(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

void v4vd_attach_handle(struct v4vd *s, struct dhold *h)
{
	struct v4v_req_attach req = {0}; /* a short packet echoes no stack bytes */
	int fds[2];
	unsigned nfds;
	bool lost;
	ssize_t n =
	    v4v_recv_fds_lost(h->e.fd, &req, sizeof(req), fds, 2, &nfds, MSG_DONTWAIT, &lost);
	union v4v_reply_any out;
	size_t rlen;

	if (n == -EAGAIN)
		return;
	if ((n < 0 && n != -EMSGSIZE) || (n == 0 && nfds == 0 && hung_up(h->e.fd))) {
		struct ddom *dd = h->dd;
		v4vd_hold_free(s, h);
		domain_maybe_gone(s, dd);
		return;
	}
	int err = lost ? -EMFILE
		       : hv_attach_check(s->hv, &req, n < 0 ? HV_REQ_TRUNCATED : (size_t)n, nfds);
	if (lost)
		s->fds_lost++;
	/* Limits: processes of the domain, fds v4vd holds for it (fair.c). */
	if (!err && !(err = hv_client_admit(s->hv, h->dd->hd)))
		err = v4vd_fds_take(s, h->dd, 2);
	if (err) {
		/* No channel to answer on: the domain fd carries the error. */
		rlen = hv_attach_reply(h->dd->hd, &req, err, &out);
		v4v_send_fds(h->e.fd, &out, rlen, NULL, 0, MSG_DONTWAIT);
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		return;
	}

	struct dchan *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		v4vd_fds_give(s, hv_domain_id(h->dd->hd), 2);
		rlen = hv_attach_reply(h->dd->hd, &req, -ENOMEM, &out);
		v4v_send_fds(fds[0], &out, rlen, NULL, 0, MSG_DONTWAIT);
		close(fds[0]);
		close(fds[1]);
		return;
	}
	*ch = (struct dchan){.e = {.kind = FD_CHANNEL, .fd = fds[0]}, .virq = -1};
	void *staging = NULL;
	/* The channel must be one end of the domain's own socketpair: holding
	 * both ends, v4vd would answer its own replies for ever, and the
	 * domain would never die (take.c).  A refused one is never written
	 * to (it may lead back to v4vd): the domain fd carries the error. */
	int answer = h->e.fd;
	if ((err = v4vd_take_socket(s, fds[0], &ch->e)) == 0)
		answer = ch->e.fd;
	if (!err &&
	    (err = v4vd_take_memfd(s, fds[1], V4V_STAGING_MEM,
				   &(struct v4vd_use){.kind = USE_STAGING}, &staging)) == 0) {
		ch->staging = staging;
		ch->area = (struct v4v_call_area *)(ch->staging + V4V_STAGING_SIZE);
		ch->virq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ch->virq < 0)
			err = -errno;
	}
	close(fds[1]);
	if (!err) {
		ch->hc = hv_client_new(s->hv, h->dd->hd, ch);
		if (!ch->hc)
			err = -ENOMEM;
	}
	if (!err) {
		hv_client_set_staging(ch->hc, staging);
		fcntl(ch->e.fd, F_SETFL, O_NONBLOCK);
		err = v4vd_ep_add(s, &ch->e);
	}
	if (err) {
		rlen = hv_attach_reply(h->dd->hd, &req, err, &out);
		v4v_send_fds(answer, &out, rlen, NULL, 0, MSG_DONTWAIT);
		v4vd_chan_free(s, ch);
		v4vd_fds_give(s, hv_domain_id(h->dd->hd), 2);
		return;
	}
	ch->dd = h->dd;
	ch->next = h->dd->chans;
	h->dd->chans = ch;
	s->nchans++;

	rlen = hv_attach_reply(h->dd->hd, &req, 0, &out);
	if (v4v_send_fds(ch->e.fd, &out, rlen, &ch->virq, 1, MSG_DONTWAIT) < 0) {
		struct ddom *dd = ch->dd;
		v4vd_chan_free(s, ch);
		domain_maybe_gone(s, dd);
	}
}

/* The I/O a request needs before the core serves it (hv_serve_io): map the
 * ring and send-ring memfds, make the doorbell; stop at the first failure. */
static void request_io(struct v4vd *s, struct dchan *ch, const struct hv_io *io, int *fds,
		       struct hv_mapped *m)
{
	void *p;
	struct dbell *b = NULL;
	struct v4vd_use use = {.kind = USE_RING,
			       .domid = hv_domain_id(ch->dd->hd),
			       .aport = io->aport,
			       .partner = io->partner};
	if (!io->ring_size)
		return;
	if ((m->err = v4vd_take_memfd(s, fds[0], io->ring_size, &use, &p)) < 0)
		return;
	m->ring = p;
	if (io->tx_size) {
		use.kind = USE_TX;
		if ((m->err = v4vd_take_memfd(s, fds[2], io->tx_size, &use, &p)) < 0)
			return;
		m->tx = p;
	}
	if (io->bell) {
		uint16_t domid = hv_domain_id(ch->dd->hd);
		if ((m->err = v4vd_fds_take(s, ch->dd, 1)) < 0)
			return;
		if ((m->err = v4vd_bell_new(s, &fds[1], &b)) < 0) {
			v4vd_fds_give(s, domid, 1);
			return;
		}
		b->domid = domid; /* v4vd_bell_free gives the fd back */
		m->bell = b;
	}
}

/* Serve s->req (len bytes, or HV_REQ_TRUNCATED, with nfds fds) for ch's
 * process into s->reply; returns the reply's length. */
static size_t serve(struct v4vd *s, struct dchan *ch, size_t len, int *fds, unsigned nfds)
{
	struct hv_io io;
	struct hv_mapped m = {0};
	hv_serve_io(&s->req, len, nfds, &io);
	request_io(s, ch, &io, fds, &m);
	size_t rlen = hv_serve(s->hv, ch->hc, &s->req, len, nfds, &m, &s->reply);
	v4vd_reap(s); /* before the next request maps anything */
	if (m.registered && m.bell) {
		struct dbell *b = m.bell;
		b->ring = m.registered;
		b->has_tx = m.has_tx;
	}
	s->requests++;
	ch->requests++;
	return rlen;
}

void v4vd_chan_handle(struct v4vd *s, struct dchan *ch)
{
	/* The domain's share of this round (fair.c); the rest waits for the
	 * next round: the channel stays readable. */
	unsigned budget = v4vd_req_budget(s, ch->dd);
	uint64_t t0 = budget ? v4vd_now_ns() : 0;
	for (unsigned i = 0; i < budget; i++) {
		int fds[3];
		unsigned nfds;
		bool lost;
		ssize_t n = v4v_recv_fds_lost(ch->e.fd, &s->req, sizeof(s->req), fds, 3, &nfds,
					      MSG_DONTWAIT, &lost);
		if (n == -EAGAIN)
			return;
		if ((n < 0 && n != -EMSGSIZE) ||
		    (n == 0 && nfds == 0 && !lost && hung_up(ch->e.fd)))
			goto gone;
		size_t len = n < 0 ? HV_REQ_TRUNCATED : (size_t)n;
		size_t rlen = 0;
		if (lost) {
			/* Its fds did not fit (v4vd is out of fds): refuse it, with its
			 * header, so the caller gets EMFILE, not a broken channel. */
			s->fds_lost++;
			rlen = hv_serve_refuse(&s->req, len, -EMFILE, &s->reply);
			s->requests++;
			ch->requests++;
		} else if (len == sizeof(s->req.h) && !nfds && s->req.h.op == V4V_OP_CALL_KICK) {
			v4vd_call_kick(s, ch); /* the one packet without a reply */
		} else {
			rlen = serve(s, ch, len, fds, nfds);
		}
		for (unsigned k = 0; k < nfds; k++)
			if (fds[k] >= 0)
				close(fds[k]);
		/* A process that does not read its replies is dropped, not waited for. */
		if (rlen && v4v_send_fds(ch->e.fd, &s->reply, rlen, NULL, 0, MSG_DONTWAIT) < 0)
			goto gone;
		uint64_t t1 = v4vd_now_ns();
		if (!v4vd_req_spent(s, ch->dd, &s->req, len, t1 - t0))
			return; /* its share is spent: the rest next round */
		t0 = t1;
	}
	return;
gone:;
	struct ddom *dd = ch->dd;
	v4vd_chan_free(s, ch);
	domain_maybe_gone(s, dd);
}
