/* SPDX-License-Identifier: MIT */
/*
 * v4v-bench's parts and what they share (private to v4v-bench).
 *
 * A transport (transports.c, baselines.c, v4v.c) is a table entry with a
 * few operations on the ends of a pair; a workload is a pair of roles
 * written once against those operations (roles.c); a measurement forks the
 * children and accounts time and CPU (measure.c), v4vd's included
 * (v4vd.c); the noisy-neighbour workload runs a bystander pair beside a
 * misbehaving domain (neighbour.c); the scale workload drives many domain
 * pairs from a few processes (scale.c); the guest transports boot QEMU
 * guests as domains (vm.c, only when asked for); --repeat's rounds are folded into
 * medians and min-max, and the targets judged on them (spread.c); the
 * results are printed as a table, JSON or a plot (report.c); main.c holds
 * the options and the plan.
 */
#ifndef V4V_BENCH_H
#define V4V_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "v4v/v4v.h"

/* ---- options (main.c) ---------------------------------------------------- */

enum workload {
	W_THROUGHPUT,
	W_LATENCY,
	W_CONNECT,
	W_PAIRS,
	W_IDLE,
	W_NEIGHBOUR,
	W_SCALE,
	W_VM, /* the guest transports: not in the default plan */
	W_COUNT
};

extern const char *const wl_names[W_COUNT];

#define LAT_SIZE   64
#define PAIRS_SIZE 1024

struct opts {
	double secs; /* per measurement */
	double idle_secs;
	unsigned npairs;
	unsigned nb_reps; /* neighbour: readings per condition (medians) */
	unsigned repeat;  /* interleaved rounds; figures are their medians */
	bool quick;
	bool json;
	const char *plot;
	const char *rundir; /* --runtime-dir: a running v4vd to use */
	unsigned tmask;	    /* selected transports (bit per table index) */
	unsigned wmask;	    /* selected workloads */
};
extern struct opts opt;

/* ---- pairs, ends and transports ---------------------------------------- */

#define RING_LEN   V4V_DGRAM_RING_LEN /* v4v rings and the shm ring alike */
#define PORT(side) ((side) ? 2002u : 2001u)
#define NFD	   3
#define F_AUX	   2 /* A tells B over this pipe how many connections it made */

struct shm_pair;

/* Set up by the parent before forking; each child keeps its side's fds. */
struct pair {
	unsigned idx;
	int fd[2][NFD];		    /* [side][]: -1 when unused */
	uint16_t domid[2];	    /* v4v */
	struct shm_pair *shm;	    /* shm: one ring each way */
	struct sockaddr_storage sa; /* listener address (connect workload) */
	socklen_t salen;
	int type; /* and its socket type */
};

/* One end of a pair, in its child. */
struct end {
	struct pair *p;
	int side; /* 0: A (sender, client), 1: B (receiver, server) */
	size_t size;
	int rfd, wfd, lfd;
	/* v4v */
	struct v4v_domain *d;
	struct v4v_rx *rx;
	struct v4v_addr peer;
	struct v4v_msg held; /* received last, consumed on the next receive */
	bool holding;
	uint32_t fp;	   /* ring footprint of one message of this run */
	uint64_t consumed; /* bytes consumed since our last notify */
	/* shm */
	struct shm_ring *txr, *rxr;
	uint64_t rx_next; /* tail once the message received last is released */
};

struct transport {
	const char *name;
	const char *baseline; /* the Unix socket it is compared with */
	bool v4v;	      /* needs a domain per end */
	bool guest;	      /* a QEMU guest at one end or both (vm.c) */
	int (*setup)(struct pair *p, enum workload w);
	/* In the child, first: join the domain (v4v only). */
	int (*attach)(struct end *e);
	int (*open)(struct end *e);
	/* After B said it is ready (A may connect now): accept, if needed. */
	int (*open2)(struct end *e);
	int (*send)(struct end *e, const void *buf, size_t len);
	/* Receive one whole message of len bytes: *data points at it (in buf,
	 * or in place in a ring until the next receive). */
	int (*recv)(struct end *e, void *buf, size_t len, const uint8_t **data);
	/* Connection setup; NULL when the kind has no connections. */
	int (*c_listen)(struct end *e);
	int (*c_connect)(struct end *e);
	int (*c_accept)(struct end *e);
	void (*c_close)(struct end *e, int fd);
};

/* The table (transports.c), in the order of the output. */
#define NT 10
extern const struct transport transports[NT];
int transport_index(const char *name);

/* The baselines (baselines.c): Unix sockets, a pipe pair, TCP over
 * loopback and a shared-memory ring. */
int fd_open(struct end *e);
int stream_send(struct end *e, const void *buf, size_t len);
int stream_recv(struct end *e, void *buf, size_t len, const uint8_t **data);
int dgram_send(struct end *e, const void *buf, size_t len);
int dgram_recv(struct end *e, void *buf, size_t len, const uint8_t **data);
int unix_stream_setup(struct pair *p, enum workload w);
int unix_seqpacket_setup(struct pair *p, enum workload w);
int pipe_setup(struct pair *p, enum workload w);
int tcp_setup(struct pair *p, enum workload w);
int sock_listen(struct end *e);
int sock_connect(struct end *e);
int sock_accept(struct end *e);
void sock_close(struct end *e, int fd);
int shm_setup(struct pair *p, enum workload w);
int shm_open_end(struct end *e);
int shm_send(struct end *e, const void *buf, size_t len);
int shm_recv(struct end *e, void *buf, size_t len, const uint8_t **data);
/* The parent's mapping of a pair's shm rings, once the children have theirs. */
void shm_release(struct shm_pair *shm);

/* v4v (v4v.c): the low-level API (v4v-ring) and the sockets. */
int vpair_setup(struct pair *p, enum workload w);
int vend_attach(struct end *e);
int vring_open(struct end *e);
int vring_send(struct end *e, const void *buf, size_t len);
int vring_recv(struct end *e, void *buf, size_t len, const uint8_t **data);
int vdgram_open(struct end *e);
int vdgram_send(struct end *e, const void *buf, size_t len);
int vdgram_recv(struct end *e, void *buf, size_t len, const uint8_t **data);
int vstream_open(struct end *e);
int vstream_open2(struct end *e);
int vstream_send(struct end *e, const void *buf, size_t len);
int vstream_recv(struct end *e, void *buf, size_t len, const uint8_t **data);
int vstream_listen(struct end *e);
int vstream_connect(struct end *e);
int vstream_accept(struct end *e);
void vstream_close(struct end *e, int fd);

/* ---- the children (roles.c) ------------------------------------------- */

enum { REC_READY = 1, REC_DONE, REC_FAIL };

/* What each child tells the parent; small enough for one atomic write. */
struct rec {
	uint32_t type;
	uint32_t pair, side;
	int32_t err;	 /* REC_FAIL: -errno */
	char what[24];	 /* REC_FAIL: the operation that failed */
	uint64_t n;	 /* messages, round trips or connections */
	double cpu;	 /* own user+sys seconds from go to done */
	double p50, p99; /* latency client: round trip, µs */
};

/* One measurement: a transport, a workload and its processes. */
struct run {
	const struct transport *t;
	enum workload w;
	size_t size;
	unsigned npairs;
	double secs;
	struct pair *pairs;
	pid_t *kids; /* [2 * npairs], 0 once reaped */
	unsigned nkids;
	int res[2];  /* records, children to parent */
	int go[2];   /* the parent closes go[1]: everybody starts */
	int stop[2]; /* idle: the parent closes stop[1] to end it */
	int quit[2]; /* the parent closes quit[1]: children may exit */
};

void close_pair(struct pair *p, int side);
/* A forked child: end `side` of pair idx, its role, its record; exits. */
__attribute__((noreturn)) void child_main(struct run *r, unsigned idx, int side);

bool collect(struct run *r, unsigned type, unsigned count, double deadline, struct rec *out,
	     char *err, size_t cap);
void kill_kids(struct run *r, bool now_);

/* ---- time, CPU and one measurement (measure.c) --------------------------- */

double now(void);
uint64_t now_ns(void);
double cpu_self(void);
/* The median and 99th percentile of k samples (sorted in place), in µs. */
void percentiles(uint32_t *ns, unsigned k, double *p50, double *p99);

/* The figures --repeat takes the median and min-max of (spread.c). */
enum {
	SP_VALUE,
	SP_RATIO,
	SP_MBPS,
	SP_CPU,
	SP_CPU_V4VD,
	SP_P50,
	SP_P50_RATIO,
	SP_US_V4VD,
	SP_ALONE,
	SP_ALONE_P50,
	SP_HOSTILE,
	SP_COUNT
};

struct result {
	const char *transport;
	enum workload w;
	const char *wname; /* e.g. "latency-p99" */
	size_t size;
	double value;
	const char *unit;
	bool lower_better;
	double ratio;
	double mbps;
	double cpu, cpu_v4vd; /* % of one core */
	/* neighbour: the misbehaviour, the bystander's p50 (µs) and its ratio
	 * to the bystander alone (ratio is the throughput's), and how many
	 * operations per second the misbehaving process got done */
	const char *misb, *misb_what;
	double p50, p50_ratio, hostile_rate;
	double alone_value, alone_p50; /* the bystander alone, just before */
	double secs;
	unsigned pairs;
	uint64_t wakeups; /* idle: VIRQs the idle domains saw */
	unsigned procs;	  /* scale: processes driving the pairs */
	double us_v4vd;	  /* scale: v4vd's CPU per message, µs */
	bool emulated;	  /* a guest under TCG took part: not a speed figure */
	bool skipped;	  /* not measured, for the reason in err */
	/* --repeat: the spread of each figure over the rounds (the figure
	 * itself is their median), indexed like spread_fields */
	unsigned rounds;
	double lo[SP_COUNT], hi[SP_COUNT];
	char err[160];
};

extern struct result *results;
extern unsigned nresults;
struct result *add_result(const char *transport, enum workload w, size_t size);
void measure(const struct transport *t, enum workload w, size_t size, unsigned npairs, double secs,
	     struct result *res, struct rec *lat);

/* ---- the noisy neighbour (neighbour.c) ----------------------------------- */

enum { NB_ALONE, NB_SPIN, NB_FLOOD, NB_HCALL, NB_CHURN, NB_WAIT, NB_CTL, NB_COUNT };
#define NB_SIZE	    1024 /* the bystander's datagrams */
#define NB_TPUT_MIN 0.5	 /* issue 8's target: at least half the throughput */
#define NB_P50_MAX  2.0	 /* ... and at most twice the p50 */

/* A neighbour misbehaves: v4vd never rests, so measure() does not wait
 * for it to. */
extern bool noisy;
const char *neighbour_name(unsigned m);
void neighbour_step(unsigned m, struct result *res);
bool neighbour_target_met(const struct result *r);
void print_neighbour(void);

/* ---- many domain pairs, few processes (scale.c) --------------------------- */

#define SCALE_SIZE    1024 /* the scale workload's datagrams */
#define SCALE_REF     64   /* "no collapse": the largest level against this one */
#define SCALE_MIN     0.8  /* ... at least this much of its aggregate */
#define SCALE_DOMAINS 4096 /* our v4vd's limit of live domains */
extern const unsigned scale_levels[], scale_levels_quick[];
extern const unsigned n_scale_levels, n_scale_levels_quick;
void scale_step(unsigned npairs, struct result *res);
unsigned scale_procs(unsigned npairs);

/* ---- QEMU guests as domains (vm.c) --------------------------------------- */

/* One guest transport's step: throughput and latency results (three),
 * or three skipped ones; false if it failed. */
bool vm_step(const struct transport *t, unsigned k, unsigned total, unsigned round);

/* ---- rounds, spread and targets (spread.c) ------------------------------- */

extern const char *const spread_names[SP_COUNT];
/* Fold rounds results[0..n*rounds) (the same plan in each) into n results
 * holding the medians, with their min-max in lo/hi. */
void spread_fold(unsigned n, unsigned rounds);
/* One round's targets (results rs[0..n)), kept for their medians. */
void targets_round(const struct result *rs, unsigned n);
void targets_fold(void);
void print_targets(void);
void json_targets(void);
void json_settings(double load1, const char *kernel, double steal);
void json_spread(const struct result *r);

/* ---- the v4vd measured (v4vd.c) ------------------------------------------ */

extern bool v4vd_ours;		 /* we started it and must stop it */
extern double v4vd_domains_base; /* domains in v4vd before our first measurement */
void v4vd_setup(void);
bool v4vd_alive(void);
bool v4vd_stat(const char *col, double *out);
double v4vd_cpu(void);
void v4vd_quiesce(void);
double v4vd_domains_left(void);
void print_v4vd_log(void);
int domain_create(uint16_t *domid);
/* The same, but a refusal (a limit) fills err and returns -1. */
int domain_create_err(uint16_t *domid, char *err, size_t cap);

/* ---- output (report.c) --------------------------------------------------- */

void fmt_num(char *buf, size_t cap, double v);
void progress(unsigned k, unsigned total, const struct result *r);
void compute_ratios(struct result *rs, unsigned n);
void json_num(const char *key, double v);
void sort_groups(void);
/* steal: % of the machine's CPU time its host took during the run (NAN:
 * unknown); above STEAL_NOISY_PCT the run warns that it is noisy. */
#define STEAL_NOISY_PCT 5.0
void print_json(double load1, const char *kernel, double steal);
void print_table(void);
bool gnuplot_found(void);
int plot(const char *file);

#endif
