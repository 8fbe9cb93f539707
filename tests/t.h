/* SPDX-License-Identifier: MIT */
/*
 * Test helpers: every test gets its own v4vd in a fresh temporary runtime
 * directory (started here, killed at exit), and real domains created
 * through its control socket.  Exit 0 pass, 1 fail, 77 skip.
 */
#ifndef V4V_T_H
#define V4V_T_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "v4v/v4v.h"

#define T_SKIP 77

/* A sanitized build (the tests and v4vd are built alike): ASan's allocator
 * maps memory as it goes and keeps it (quarantine, size classes), so
 * counts of v4vd's mappings and its RSS are not comparable there. */
#if defined(__SANITIZE_ADDRESS__)
#define T_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_SANITIZED 1
#endif
#endif
#ifndef T_SANITIZED
#define T_SANITIZED 0
#endif

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                                \
		if (_a != _b) {                                                                    \
			fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__,      \
				__LINE__, #a, _a, #b, _b);                                         \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

/* Start a private v4vd (extra args appended, NULL-terminated list). */
pid_t t_v4vd_start(const char *const *extra);
/* Start one with v4vd.conf text conf (NULL: none, as t_v4vd_start(NULL)). */
pid_t t_v4vd_start_conf(const char *conf);
void t_v4vd_stop(void);
pid_t t_v4vd_pid(void);
const char *t_rundir(void);

/* A control command; returns the body after "ok\n" (malloc'd) or exits. */
char *t_ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, but returns NULL and the error sentence in *err on failure. */
char *t_ctl_try(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Create a domain (name may be NULL) and attach this process to it. */
struct v4v_domain *t_domain(const char *name);
/* Create a domain and return its domain fd without attaching. */
int t_domain_fd(const char *name, uint16_t *domid);

/*
 * Fork n domain processes.  Child i gets a new domain (named names[i]; all
 * unnamed when names is NULL) and one end of a socketpair of `type` to the
 * test, and holds nothing of the others', so killing it takes its domain
 * down whole.  It runs fn(i, domain_fd, sock), then exits 0.  The parent
 * gets pid[i], domid[i] and its own end of each socketpair in ctl[i].
 */
void t_spawn_domains(unsigned n, const char *const *names, int type,
		     void (*fn)(unsigned i, int domain_fd, int sock), pid_t *pid, uint16_t *domid,
		     int *ctl);

/* Run fn in a child process inside a new domain (named name, may be NULL)
 * and return once fn has called t_ready(); *domid is the child's domain.
 * t_wait_ok() reaps it and checks it exited 0. */
pid_t t_child(const char *name, void (*fn)(struct v4v_domain *), uint16_t *domid);
void t_ready(void);
void t_wait_ok(pid_t pid);

/* A number of `v4vctl stats` by column name (exits when it has none), and
 * the same from a stats reply body already fetched. */
unsigned long long t_stat(const char *key);
unsigned long long t_stat_in(const char *body, const char *key);

/* Rows of a control listing (domains, rings, names, ...). */
int t_ctl_rows(const char *what);
/* Row i of `v4vctl rings` (false past the last): partner is "any" or a
 * domid, state "ok" or "broken". */
struct t_ring_row {
	unsigned domid, aport, len, rx, tx, waiters;
	char partner[16], state[16];
};
bool t_ring_row_at(unsigned i, struct t_ring_row *r);
/* The row of domid's ring on aport with that partner (NULL: any partner). */
bool t_ring_find(uint16_t domid, uint32_t aport, const char *partner, struct t_ring_row *r);
/* v4vd's open sockets: the control listener plus any client or channel
 * (not the query listener, which a host with a v4v group adds). */
int t_v4vd_sockets(void);
/* v4vd's mappings of domain memfds (rings, send rings, staging areas). */
int t_v4vd_memfd_maps(void);

/* Wait for the VIRQ of d (ms timeout); returns false on timeout. */
bool t_wait_virq(struct v4v_domain *d, int ms);

/* Counts of v4vd's open fds and of its memory mappings. */
int t_v4vd_fds(void);
int t_v4vd_maps(void);

/* Close every handle t_domain() returned: a case's end, so that
 * LeakSanitizer finds nothing open. */
void t_domains_close(void);

/* SIGKILL every pid[i] > 0 (forked children, e.g. from an atexit hook). */
void t_kill_pids(const pid_t *pid, unsigned n);
/* The index of id in ids[n]; n when it is not there. */
unsigned t_index_of(const uint16_t *ids, unsigned n, uint16_t id);
/* Print v4vd's fds as " FD=TARGET"... and a newline on stderr. */
void t_v4vd_print_fds(void);

/* Read exactly n bytes, waiting at most ms for each part; false on end of
 * file, an error or a timeout. */
bool t_read_full(int fd, void *buf, size_t n, int ms);
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t t_now_ns(void);

/* A 64-bit mixer (splitmix64's finalizer): keys and payloads from a seed. */
uint64_t t_mix(uint64_t x);
/* n bytes derived from key: each 8 from t_mix of the last word plus the
 * offset, so a receiver can regenerate and compare them. */
void t_fill(uint8_t *p, size_t n, uint64_t key);

/* A seeded PRNG; the seed is printed so failures can be replayed
 * (T_SEED=N in the environment). */
uint64_t t_seed(void);
uint64_t t_rand(void);

/* Run the test case named argv[1] from a table. */
struct t_case {
	const char *name;
	void (*fn)(void);
};
/* One entry of a test file's table: the case is named after its function.
 * tests/meson.build reads the names from these entries (one meson test per
 * case), so a case is listed only here: write each T_CASE(...) in the
 * table and nowhere else in the file. */
#define T_CASE(fn)                                                                                 \
	{                                                                                          \
#fn, fn                                                                            \
	}
int t_main(int argc, char **argv, const struct t_case *cases, unsigned n);

#endif
