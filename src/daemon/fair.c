/* SPDX-License-Identifier: MIT */
/*
 * Fair shares of v4vd: per-domain budgets per round of the event loop
 * (requests served, send-ring messages moved, bytes), the fds v4vd holds for each
 * domain (fds_per_domain), and staying alive at v4vd's own fd limit (a
 * reserve fd to refuse control connections it cannot accept).
 *
 * A round is one pass of v4vd_run: one epoll batch and one pump of the hot
 * send rings.  A domain's budgets are refilled lazily, the first time it
 * is charged in a round; what it cannot do now stays pending (its channel
 * stays readable, its send ring stays hot) for the next round, so a domain
 * with many processes or many send rings gets one domain's share.
 */
#define _GNU_SOURCE
#include "v4vd.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "../common/util.h"

/*
 * A domain's budgets for this round: counts (requests served, send-ring
 * messages moved) and bytes, DOM_BYTE_BUDGET a round, shared by both: a
 * request costs its packet and the payload it sends, a message its length
 * and header, so that a costly request or a large message counts for what
 * v4vd copies for it.  Bytes overspent (the last message or request may
 * overshoot) are a debt, paid off one budget per round gone by; a budget
 * unused is not saved up.  All of it is counted, not timed: a preemption
 * of v4vd in the middle of serving a domain costs that domain nothing.
 */
static void refill(struct v4vd *s, struct ddom *dd)
{
	if (dd->round == s->round)
		return;
	uint64_t gone = s->round - dd->round;
	int64_t c = dd->bytes_left; /* <= DOM_BYTE_BUDGET */
	if (gone > (uint64_t)(DOM_BYTE_BUDGET - c) / DOM_BYTE_BUDGET)
		c = DOM_BYTE_BUDGET;
	else
		c += (int64_t)gone * DOM_BYTE_BUDGET;
	dd->bytes_left = c;
	dd->round = s->round;
	dd->req_left = DOM_REQ_BUDGET;
	dd->tx_left = DOM_TX_BUDGET;
}

unsigned v4vd_req_budget(struct v4vd *s, struct ddom *dd)
{
	refill(s, dd);
	if (dd->bytes_left <= 0)
		return 0;
	return dd->req_left < BATCH ? dd->req_left : BATCH;
}

/*
 * What a request costs: REQ_COST, then its packet, and for a send the
 * payload v4vd copies (the lengths as given, at most V4V_STAGING_SIZE,
 * 16 MiB: a bad one is refused early, but costs its claim, up to 32 rounds
 * of its own budget).  REQ_COST is what a request costs beyond its bytes,
 * in the same currency: a send-ring message costs the system one copy, a
 * request two system calls in v4vd and a wake-up and the system calls of
 * the process that made it (from a call area: no system call, but its
 * caller still spins or wakes for each); serving requests at the rate of
 * ring messages let one process keep a core busy with them
 * (docs/PERFORMANCE.md, "Noisy neighbour": the measurements that set it).
 */
static uint64_t req_cost(const union v4v_req_any *q, size_t len)
{
	if (len > V4V_REQ_MAX)
		return REQ_COST + V4V_REQ_MAX; /* truncated */
	uint64_t c = 0;
	if (len >= sizeof(q->send) && q->h.op == V4V_OP_SENDV)
		for (uint32_t i = 0; i < q->send.niov && i < V4V_MAX_IOV; i++)
			c += q->send.iov_len[i];
	return REQ_COST + len + (c < V4V_STAGING_SIZE ? c : V4V_STAGING_SIZE);
}

bool v4vd_req_spent(struct v4vd *s, struct ddom *dd, const union v4v_req_any *q, size_t len,
		    uint64_t ns)
{
	refill(s, dd);
	if (dd->req_left)
		dd->req_left--;
	dd->bytes_left -= (int64_t)req_cost(q, len);
	dd->req_ns += ns;
	return dd->req_left && dd->bytes_left > 0;
}

/* The messages b's send ring may move now: its domain's budget left this
 * round, shared between the domain's hot send rings. */
static struct ddom *bell_dom(struct v4vd *s, const struct dbell *b)
{
	return b->domid <= V4V_DOMID_MAX ? s->doms[b->domid] : NULL;
}

static unsigned tx_budget(struct v4vd *s, struct dbell *b, struct ddom **ddp)
{
	struct ddom *dd = bell_dom(s, b);
	*ddp = dd;
	if (!dd)
		return TX_BUDGET;
	refill(s, dd);
	if (dd->bytes_left <= 0)
		return 0;
	unsigned share = dd->nhot > 1 ? DOM_TX_BUDGET / dd->nhot : DOM_TX_BUDGET;
	if (share == 0)
		share = 1;
	if (share > TX_BUDGET)
		share = TX_BUDGET;
	return share < dd->tx_left ? share : dd->tx_left;
}

unsigned v4vd_tx_pump(struct v4vd *s, struct dbell *b)
{
	struct ddom *dd;
	unsigned budget = tx_budget(s, b, &dd);
	if (!budget)
		return 0;
	if (!dd)
		return hv_tx_pump(s->hv, b->ring, budget, NULL);
	unsigned moved = hv_tx_pump(s->hv, b->ring, budget, &dd->bytes_left);
	dd->tx_left -= moved < dd->tx_left ? moved : dd->tx_left;
	return moved;
}

void v4vd_hot_count(struct v4vd *s, struct dbell *b, int delta)
{
	struct ddom *dd = bell_dom(s, b);
	if (dd)
		dd->nhot = (unsigned)((int)dd->nhot + delta);
}

/* ---- fds held for a domain --------------------------------------------- */

int v4vd_fds_take(struct v4vd *s, struct ddom *dd, unsigned n)
{
	if (dd->nfds + n > s->fds_per_domain)
		return -EMFILE;
	dd->nfds += n;
	return 0;
}

void v4vd_fds_give(struct v4vd *s, uint16_t domid, unsigned n)
{
	struct ddom *dd = domid <= V4V_DOMID_MAX ? s->doms[domid] : NULL;
	if (dd)
		dd->nfds -= n < dd->nfds ? n : dd->nfds;
}

/* ---- v4vd's own fd limit ------------------------------------------------ */

void v4vd_reserve_fd(struct v4vd *s)
{
	if (s->reserve_fd < 0)
		s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Listen (EPOLLIN) or not (0) on the control socket and the query
 * socket (when there is one) alike. */
static int listeners_events(struct v4vd *s, uint32_t events)
{
	struct fdent *l[] = {&s->ctl_listen, &s->query_listen};
	int e = 0;
	for (unsigned i = 0; i < 2; i++) {
		struct epoll_event ev = {.events = events, .data.ptr = l[i]};
		if (l[i]->fd >= 0 && epoll_ctl(s->epfd, EPOLL_CTL_MOD, l[i]->fd, &ev) < 0)
			e = -errno;
	}
	return e;
}

/*
 * accept() failed with EMFILE or ENFILE: the connection stays queued and
 * the level-triggered listener would wake us for ever.  Give up the
 * reserve fd, take the connection, tell it why and close it, then take the
 * reserve back.  Without a reserve (it could not be reopened), stop
 * listening until an fd is freed (v4vd_fd_freed).
 */
void v4vd_accept_shed(struct v4vd *s, int lfd)
{
	static const char msg[] = "error: v4vd is out of file descriptors\n";
	if (s->reserve_fd >= 0) {
		close(s->reserve_fd);
		s->reserve_fd = -1;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			v4v_frame_send(fd, msg, sizeof(msg) - 1, -1);
			close(fd);
		}
		v4vd_reserve_fd(s);
		s->shed++;
		if (fd >= 0)
			return;
	}
	if (s->listen_paused)
		return;
	if (listeners_events(s, 0) == 0)
		s->listen_paused = true;
	logmsg(LOG_WARNING, "out of file descriptors: control socket paused");
}

/* An fd was closed: a paused listener may accept again. */
void v4vd_fd_freed(struct v4vd *s)
{
	if (!s->listen_paused)
		return;
	v4vd_reserve_fd(s);
	if (listeners_events(s, EPOLLIN) == 0)
		s->listen_paused = false;
}
