/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the vchan layers' tests: two (or more) real domains in forked
 * processes, each attached through V4V_DOMAIN_FD as a program under
 * v4v-run is, a byte pattern to check streams by, and small waits.
 */
#ifndef V4V_TESTS_CT_H
#define V4V_TESTS_CT_H

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t.h"

#define CT_MAX 4
static uint16_t ct_dom[CT_MAX];
static pid_t ct_pid[CT_MAX];
static int ct_ctl[CT_MAX];

static inline void ct_enter(int domain_fd)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", domain_fd);
	setenv("V4V_DOMAIN_FD", v, 1);
}

/* Start v4vd and n domains running fn(i, ctl socket) inside them. */
static inline void ct_run(unsigned n, void (*fn)(unsigned i, int domain_fd, int sock))
{
	t_v4vd_start(NULL);
	t_spawn_domains(n, NULL, SOCK_STREAM, fn, ct_pid, ct_dom, ct_ctl);
}

/* Every child exited 0. */
static inline void ct_join(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int st;
		CHECK_EQ(waitpid(ct_pid[i], &st, 0), ct_pid[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "domain %u: status 0x%x\n", i, st);
			exit(1);
		}
	}
}

/* One-byte messages between the processes (barriers, verdicts). */
static inline void ct_put(int sock, char c)
{
	CHECK_EQ(write(sock, &c, 1), 1);
}

static inline char ct_get(int sock)
{
	char c = 0;
	CHECK_EQ(read(sock, &c, 1), 1);
	return c;
}

static inline uint8_t ct_pat(uint64_t off)
{
	uint64_t x = off * 0x9e3779b97f4a7c15ull;
	return (uint8_t)(x >> 56 ^ off);
}

static inline double ct_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* select(2) on fd for reading, as Xen's programs do; false on timeout. */
static inline bool ct_select(int fd, int ms)
{
	fd_set rd;
	FD_ZERO(&rd);
	FD_SET(fd, &rd);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	return select(fd + 1, &rd, NULL, NULL, &tv) == 1;
}

#endif
