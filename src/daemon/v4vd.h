/* SPDX-License-Identifier: MIT */
/*
 * v4vd's private header: the shell's objects around the pure core (fds in
 * the epoll set, domains, holds, channels, doorbells) and what each of its
 * files gives the others.  main.c: startup and configuration; loop.c: the
 * event loop, the kick lists and hot send-ring polling; domain.c: domains,
 * holds, channels (attach, requests); bell.c: doorbells; take.c: taking
 * fds from domains (the identity table) and the queue of what the core
 * gives back; ctl.c: the control socket's commands; service.c: logging,
 * v4vd.conf and its reload (SIGHUP), systemd's readiness protocol.
 */
#ifndef V4VD_H
#define V4VD_H

#include <stdbool.h>
#include <stddef.h>
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
	struct v4v_call_area *area; /* the end of staging (call.c) */
	uint32_t call_seq;	    /* the last call answered there */
	uint32_t call_cpu;	    /* what we last wrote in its cpu word */
	bool call_hot;		    /* on the polled list */
	struct dchan *call_next;
	uint64_t call_last; /* when it last had a call (ns) */
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
	unsigned todo; /* BELL_* work queued by core callbacks (v4vd_reap) */
	struct dbell *todo_next;
	uint16_t domid; /* whose fd it is (fair.c: fds, send budget) */
};

#define BELL_ARM   1u /* listen again (EPOLLIN) */
#define BELL_DRAIN 2u /* drop the owner's blocker packets */
#define BELL_DROP  4u /* the core let go of it: bury it */

/* What a memfd or socket taken from a domain is for (take.c).  A ring's
 * memory and send ring carry the ring's key: the same ring may hand the
 * same memory again when it is re-registered. */
enum v4vd_use_kind { USE_RING, USE_TX, USE_STAGING, USE_SOCKET };
struct v4vd_use {
	enum v4vd_use_kind kind;
	uint16_t domid, partner;
	v4v_port_t aport;
};
struct held;
#define HELD_BUCKETS 4096u

struct ddom {
	struct hv_domain *hd;
	struct dhold *holds;
	struct dchan *chans;
	bool persistent; /* created by `v4vctl domain create`: lives until destroyed */
	unsigned nfds;	 /* fds v4vd holds for it: fds_per_domain (fair.c) */
	unsigned nhot;	 /* its hot send rings */
	uint64_t round;	 /* the round its budgets below are for */
	unsigned req_left, tx_left;
	int64_t bytes_left; /* byte budget left this round; < 0: a debt (fair.c) */
	uint64_t req_ns;    /* wall time v4vd spent on its requests (domain list) */
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
	struct dbell *hot;	       /* send rings polled until idle for SPIN_NS */
	struct dchan *calls;	       /* call areas polled until idle for SPIN_NS (call.c) */
	uint64_t calls_shm, kicks_shm; /* calls served from areas, kicks received */
	uint64_t last_move;	       /* when a send ring last moved a message (ns) */
	uint64_t last_look;	       /* when the loop last looked at epoll (ns; loop.c) */
	bool moving;		       /* the last pump of the hot send rings moved something */
	struct fdent *dead;
	struct held *held_id[HELD_BUCKETS];   /* what v4vd holds, by (st_dev, st_ino) */
	struct held *held_addr[HELD_BUCKETS]; /* the same, by mapping or fdent */
	struct held *unmaps;		      /* mappings the core let go of, */
	struct dbell *bell_todo;	      /* and doorbells with work: v4vd_reap */
	struct ddom *doms[V4V_DOMID_MAX + 1];
	struct fdent ctl_listen, sigfd;
	struct fdent query_listen; /* the v4v group's listings (fd -1: none) */
	char query_path[128];
	uint32_t query_gid;
	unsigned nquery;		      /* its open connections: at most QUERY_CONNS_MAX */
	char query_group_conf[V4V_GROUP_MAX]; /* as v4vd.conf gave it, for reload */
	const char *config_path;	      /* v4vd.conf: --config or the default */
	bool config_required;		      /* given: it must exist */
	uint64_t requests, mapped_bytes;
	unsigned nchans;
	uint32_t uid_first, uid_last;		     /* domain_uids (principal.c) */
	uint64_t reject_window;			     /* firewall log rate limit: this second, */
	unsigned rejects_logged, rejects_suppressed; /* lines logged, lines not */
	uint64_t round;				     /* event-loop passes (fair.c budgets) */
	uint32_t fds_per_domain;		     /* v4vd.conf */
	int reserve_fd;				     /* given up to refuse a connection at EMFILE */
	bool listen_paused;	   /* no reserve: listener off until an fd closes */
	uint64_t shed, fds_lost;   /* connections refused, requests' fds lost */
	union v4v_reply_any reply; /* the reply to req, */
	/* the request being served: last, as it ends in a flexible array
	 * (the notify entries) */
	union v4v_req_any req;
};

#define BATCH		64	     /* requests served per channel per wake-up */
#define TX_BUDGET	256	     /* messages moved per send ring per round */
#define DOM_REQ_BUDGET	64	     /* requests served per domain per round */
#define DOM_TX_BUDGET	256	     /* send-ring messages moved per domain per round */
#define DOM_BYTE_BUDGET (512 * 1024) /* bytes (requests, messages) per domain per round */
#define REQ_COST	(512 * 1024) /* what a request costs beyond its bytes (fair.c req_cost) */
#define SPIN_NS		200000	     /* keep polling send rings this long after the last move */
#define LOOK_NS		5000	     /* while send rings move, look at epoll this often */
/* The most of a domain's memfd v4vd maps in when it takes it, and only
 * memory the domain has allocated (take.c take_populate). */
#define TAKE_POPULATE_MAX (1u << 20)

#define V4VD_CONFIG_DEFAULT "/etc/v4v/v4vd.conf"
#define V4VD_QUERY_GROUP    "v4v" /* query_group's default, when it exists */
#define QUERY_CONNS_MAX	    16	  /* query connections open at once */

/* main.c */
void v4vd_ctl_accept(struct v4vd *s, int lfd);

/* service.c: logging, v4vd.conf and its reload, systemd. */
void logmsg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void v4vd_log_syslog(void); /* daemonized: log to syslog from now on */
bool v4vd_under_systemd(void);
void v4vd_notify(const char *state); /* sd_notify, when built with libsystemd */
void v4vd_config_defaults(struct v4v_config *cfg);
/* Read path over cfg; 0 when !required and it does not exist; else
 * -errno and one sentence naming the file (and line) in err. */
int v4vd_config_read(const char *path, bool required, struct v4v_config *cfg, char *err,
		     size_t errlen);
void v4vd_config_apply(struct v4vd *s, const struct v4v_config *cfg); /* limits, firewall */
void v4vd_signal_handle(struct v4vd *s); /* the signalfd: SIGHUP reloads, else stop */

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
void v4vd_bell_dropped(struct v4vd *s, struct dbell *b); /* queue its burial */
void v4vd_bell_reap(struct v4vd *s);

/* call.c: call areas, polled while they have calls, parked when idle. */
void v4vd_call_kick(struct v4vd *s, struct dchan *ch); /* V4V_OP_CALL_KICK: poll it */
bool v4vd_calls_pump(struct v4vd *s);		       /* one round: serve what waits; anything? */
void v4vd_call_unlist(struct v4vd *s, struct dchan *ch);

/* take.c: every fd a domain hands over is taken here (see its opening). */
int v4vd_take_memfd(struct v4vd *s, int fd, size_t need, const struct v4vd_use *use, void **out);
void v4vd_memfd_release(struct v4vd *s, void *p);
int v4vd_take_socket(struct v4vd *s, int fd, struct fdent *e); /* -ENOTSOCK, -EINVAL */
void v4vd_socket_release(struct v4vd *s, struct fdent *e);
int v4vd_name_own_end(int fd);
void v4vd_on_unmap(void *ctx, void *mem, uint32_t len, void *bell); /* hv_ops.unmap: queues */
/* Run the work core callbacks queued (munmaps, doorbell burials, epoll
 * changes): called after every core call that may have queued some. */
void v4vd_reap(struct v4vd *s);

/* Domains as host principals (principal.c): domain domid runs as uid
 * first + domid (gid the same); -EUSERS past the end of domain_uids. */
void v4vd_principal_init(struct v4vd *s, const struct v4v_config *cfg);
int v4vd_domain_uid(const struct v4vd *s, uint16_t domid, uint32_t *uid);
unsigned v4vd_uid_domids(const struct v4vd *s); /* the highest domid with a uid */

/* Fair shares (fair.c): per-domain budgets per round, fds per domain,
 * v4vd's own fd limit. */
unsigned v4vd_req_budget(struct v4vd *s, struct ddom *dd); /* requests it may serve now */
/* Charge one request served (its packet q, len bytes, ns of v4vd's time); may it go on? */
bool v4vd_req_spent(struct v4vd *s, struct ddom *dd, const union v4v_req_any *q, size_t len,
		    uint64_t ns);
unsigned v4vd_tx_pump(struct v4vd *s, struct dbell *b); /* hv_tx_pump within budget */
void v4vd_hot_count(struct v4vd *s, struct dbell *b, int delta);
int v4vd_fds_take(struct v4vd *s, struct ddom *dd, unsigned n); /* -EMFILE past the limit */
void v4vd_fds_give(struct v4vd *s, uint16_t domid, unsigned n);
void v4vd_reserve_fd(struct v4vd *s);
void v4vd_accept_shed(struct v4vd *s, int lfd); /* accept failed: EMFILE/ENFILE */
void v4vd_fd_freed(struct v4vd *s);

/* Control socket (ctl.c): a connection's object, and its readable event. */
struct fdent *v4vd_ctl_conn(int fd, bool query); /* query: listings only */
void ctl_handle(struct v4vd *s, struct fdent *e);
/* "ID(NAME):PORT", "ID:PORT", "any", ...: an endpoint with its domain's
 * name, as fw list and the firewall log show it (ctl.c). */
void v4vd_endpoint_name(struct v4vd *s, char *buf, size_t cap, uint16_t dom, uint32_t port);

#endif
