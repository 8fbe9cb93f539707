/* SPDX-License-Identifier: MIT */
/*
 * The watcher: a process v4v-vm forks at start that resets the guest's
 * connections if v4v-vm dies (watch.c).  v4v-vm tells it what it needs
 * as things change; every call is cheap and none can fail v4v-vm.
 */
#ifndef V4V_VM_WATCH_H
#define V4V_VM_WATCH_H

#include <stdint.h>

#include "vm/vq.h"
#include "vm/wire.h"

#define WATCH_MAX_CONN 1024

/* Fork the watcher (before anything else is open); -errno. */
int watch_start(void);
void watch_set_cid(uint64_t guest_cid);
/* The guest's memory table and its fds (still open; the watcher gets dups). */
void watch_mem(const struct vhu_mem *mem, const int *fds, unsigned nfds);
/* The rx queue's interrupt eventfd (-1: none). */
void watch_call(int fd);
/* The rx queue's geometry, after any change. */
void watch_rx(const struct vq *q);
/* A connection to reset, by its slot (-1: the table is full). */
int watch_conn_add(uint64_t peer_cid, uint32_t peer_port, uint32_t guest_port);
void watch_conn_del(int slot);
/* v4v-vm is exiting on purpose: the watcher leaves quietly. */
void watch_quit(void);

#endif
