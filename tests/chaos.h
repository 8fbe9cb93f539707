/* SPDX-License-Identifier: MIT */
/*
 * What the chaos soak (chaos.c) shares with its hostile domains
 * (chaos_hostile.c): the layout of a round and the hostile's interface.
 */
#ifndef V4V_CHAOS_H
#define V4V_CHAOS_H

#include <stdbool.h>
#include <stdint.h>

#define NDOM  6	   /* honest domains */
#define NHOST 2	   /* hostile domains */
#define LPORT 1000 /* every honest domain's stream listener */
#define DPORT 2000 /* every honest domain's datagram socket */

/* The hostile domains' ids, set by the parent before the honest fork: an
 * honest domain ignores what comes from them, and fails on anything else
 * it did not expect. */
extern uint16_t host_domid[NHOST];
bool from_hostile(uint16_t domid);

/* Parent, once: read CHAOS_HOSTILE_ONLY, map the
 * counters the hostile processes share with it. */
void hostile_setup(void);
/* The process of hostile domain i: waits for M_GO with the honest domids
 * on ctl, then misbehaves at random until M_QUIT (or until it kills
 * itself).  Exits 0, or dies by SIGKILL by its own hand; any other end is
 * a failure (a reply it got from v4vd was wrong, or none came). */
void hostile_child(unsigned i, int domain_fd, int ctl);
/* One line: how often each misbehaviour ran, and which were left out. */
void hostile_report(void);

/* Parent to a hostile domain: the honest domains of this round. */
struct msg_hgo {
	uint32_t type; /* M_GO */
	uint32_t round;
	uint64_t seed;
	uint16_t domid[NDOM];
};

enum { HMSG_GO = 2, HMSG_QUIT = 8 }; /* chaos.c's M_GO and M_QUIT */

#endif
