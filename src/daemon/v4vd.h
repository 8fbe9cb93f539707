/* SPDX-License-Identifier: MIT */
/* v4vd's shell: the objects around the pure core and what ctl.c needs. */
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
	uint64_t requests, mapped_bytes;
	unsigned nchans;
	uint64_t reject_window;			     /* firewall log rate limit: this second, */
	unsigned rejects_logged, rejects_suppressed; /* lines logged, lines not */
	union v4v_req_any req;			     /* the request being served, */
	union v4v_reply_any reply;		     /* and its reply */
};

void logmsg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Domain life cycle (v4vd.c). */
int v4vd_domain_create(struct v4vd *s, uint16_t domid, const char *name, bool persistent,
		       struct ddom **out);
int v4vd_domain_hold(struct v4vd *s, struct ddom *dd); /* returns the client's fd */
void v4vd_domain_destroy(struct v4vd *s, struct ddom *dd);
struct ddom *v4vd_domain_lookup(struct v4vd *s, const char *spec);

/* Close e's fd now; free e (its first member) after this epoll batch. */
void v4vd_bury(struct v4vd *s, struct fdent *e);

/* Control socket (ctl.c): handle one connection's readable event. */
void ctl_handle(struct v4vd *s, struct fdent *e);

#endif
