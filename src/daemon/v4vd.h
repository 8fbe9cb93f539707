/* SPDX-License-Identifier: MIT */
/*
 * v4vd's private header: the shell's objects around the pure core (fds in
 * the epoll set, domains, holds, channels, doorbells) and what each of its
 * files gives the others.  main.c: startup and configuration; loop.c: the
 * event loop, the kick lists and hot send-ring polling; domain.c: domains,
 * holds, channels (attach, requests); bell.c: doorbells; ctl.c: the
 * control socket's commands.
 */
#ifndef V4VD_H
#define V4VD_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/hv.h"
#include "../core/rules.h"
#include "../wire/proto.h"

enum fd_kind { FD_CONTROL_LISTEN, FD_CONTROL, FD_DOMAIN, FD_CHANNEL, FD_BELL, FD_SIGNAL, FD_DEAD };

/* Every fd in the epoll set starts with this, so data.ptr tells its kind. */
struct fdent {
	enum fd_kind kind;
	int fd;
	struct fdent *dead_next; /* freed after the epoll batch that closed it */
};

struct ddom;

/* A holder of a domain fd (v4v-run's end of a socketpair). */
struct dhold {
	struct fdent e;
	struct ddom *dd;
	struct dhold *next;
};

/* One attached process: its channel, VIRQ and staging mapping. */
struct dchan {
	struct fdent e;
	struct ddom *dd;
	struct hv_client *hc;
	int virq;
	uint8_t *staging;
	bool kick;
	struct dchan *kick_next;
	struct dchan *next; /* domain's list */
	uint64_t requests;
};

/* A ring's doorbell: v4vd's end of the socket's notification pair. */
struct dbell {
	struct fdent e;
	struct hv_ring *ring; /* whose doorbell this is (dropped on hang-up) */
	unsigned pending;     /* HV_SIG_* bits to send at the end of the batch */
	bool kicked;
	bool waiting; /* the owner's send waits for space */
	bool armed;   /* EPOLLIN wanted (off while a blocker waits) */
	/* HV_SIG_* bits a full queue refused: they go with the next token,
	 * sent as soon as the queue has room (EPOLLOUT, wanted while owed). */
	unsigned owed;
	bool out; /* EPOLLOUT wanted */
	struct dbell *kick_next;
	bool has_tx; /* the ring has a send ring: pump it */
	bool hot;    /* on the polled list */
	struct dbell *hot_next;
};

struct ddom {
	struct hv_domain *hd;
	struct dhold *holds;
	struct dchan *chans;
	bool persistent; /* created by `v4vctl domain create`: lives until destroyed */
};

struct v4vd {
	struct hv *hv;
	int epfd;
	const char *rundir;
	char ctl_path[128];
	char lock_path[160];
	bool foreground;
	bool stop;
	struct dchan *kicks;
	struct dbell *bell_kicks;
	struct dbell *hot;  /* send rings polled until idle for SPIN_NS */
	uint64_t last_move; /* when a send ring last moved a message (ns) */
	struct fdent *dead;
	struct ddom *doms[V4V_DOMID_MAX + 1];
	struct fdent ctl_listen, sigfd;
	uint64_t requests, mapped_bytes;
	unsigned nchans;
	uint32_t uid_first, uid_last; /* domain_uids (principal.c) */
	uint64_t reject_window;			     /* firewall log rate limit: this second, */
	unsigned rejects_logged, rejects_suppressed; /* lines logged, lines not */
	union v4v_req_any req;			     /* the request being served, */
	union v4v_reply_any reply;		     /* and its reply */
};

#define BATCH	  64	 /* requests served per channel per wake-up */
#define TX_BUDGET 256	 /* messages moved per send ring per round */
#define SPIN_NS	  200000 /* keep polling send rings this long after the last move */

/* main.c */
void logmsg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void v4vd_ctl_accept(struct v4vd *s, int lfd);

/* loop.c: the event loop and the fd set. */
void v4vd_run(struct v4vd *s);
int v4vd_ep_add(struct v4vd *s, struct fdent *e);
/* Take e out of epoll and close its fd now (if it has one); free e (its
 * first member) after this epoll batch.  Every object's teardown ends here. */
void v4vd_bury(struct v4vd *s, struct fdent *e);
void v4vd_free_dead(struct v4vd *s);
uint64_t v4vd_now_ns(void);
/* Kick lists: VIRQs and doorbell tokens raised by the core, written once per
 * batch; hot send rings, polled until idle. */
void v4vd_on_signal(void *ctx, void *chan);			/* hv_ops.signal */
void v4vd_on_ring_signal(void *ctx, void *bell, unsigned what); /* hv_ops.ring_signal */
void v4vd_chan_unkick(struct v4vd *s, struct dchan *ch);
void v4vd_bell_hot(struct v4vd *s, struct dbell *b);
void v4vd_bell_unlist(struct v4vd *s, struct dbell *b);
/* bell.c: a token the owner's queue had no room for. */
void v4vd_bell_owe(struct v4vd *s, struct dbell *b, unsigned bits);

/* domain.c: domain life cycle, holds, channels. */
int v4vd_domain_create(struct v4vd *s, uint16_t domid, const char *name, bool persistent,
		       struct ddom **out);
int v4vd_domain_hold(struct v4vd *s, struct ddom *dd); /* returns the client's fd */
void v4vd_domain_destroy(struct v4vd *s, struct ddom *dd);
struct ddom *v4vd_domain_lookup(struct v4vd *s, const char *spec);
void v4vd_attach_handle(struct v4vd *s, struct dhold *h); /* a domain fd is readable */
void v4vd_chan_handle(struct v4vd *s, struct dchan *ch);  /* a channel is readable */
/* Teardown, also of a half-built object (its constructor's error path). */
void v4vd_chan_free(struct v4vd *s, struct dchan *ch);
void v4vd_hold_free(struct v4vd *s, struct dhold *h);
int v4vd_is_seqpacket(int fd);

/* bell.c: doorbells. */
int v4vd_bell_new(struct v4vd *s, int *fd, struct dbell **out); /* takes *fd */
void v4vd_bell_free(struct v4vd *s, struct dbell *b);
void v4vd_bell_handle(struct v4vd *s, struct dbell *b, uint32_t events);
void v4vd_on_ring_blocked(void *ctx, void *bell); /* the rest of hv_ops */
void v4vd_on_ring_space(void *ctx, void *bell);
void v4vd_on_tx_ready(void *ctx, void *bell);
void v4vd_on_unmap(void *ctx, void *mem, uint32_t len, void *bell);

/* Domains as host principals (principal.c): domain domid runs as uid
 * first + domid (gid the same); -EUSERS past the end of domain_uids. */
void v4vd_principal_init(struct v4vd *s, const struct v4v_config *cfg);
int v4vd_domain_uid(const struct v4vd *s, uint16_t domid, uint32_t *uid);
unsigned v4vd_uid_domids(const struct v4vd *s); /* the highest domid with a uid */

/* Control socket (ctl.c): handle one connection's readable event. */
void ctl_handle(struct v4vd *s, struct fdent *e);

#endif
