/* SPDX-License-Identifier: MIT */
/* Small helpers shared by v4vd, libv4v and the tools.  All return -errno. */
#ifndef V4V_UTIL_H
#define V4V_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The runtime directory: V4V_RUNTIME_DIR, else /run/v4v for root, else
 * $XDG_RUNTIME_DIR/v4v, else -ENOENT.  Writes into buf.  (rundir.h holds
 * the rules for trusting it.) */
int v4v_runtime_dir(char *buf, size_t cap);
int v4v_control_path(char *buf, size_t cap, const char *dir);

/* sendmsg/recvmsg of one packet with up to `max` fds.  recv returns bytes,
 * sets *nfds; fds beyond max, or a truncated packet, are closed and
 * reported as -EMSGSIZE. */
ssize_t v4v_send_fds(int sock, const void *buf, size_t n, const int *fds, unsigned nfds, int flags);
ssize_t v4v_recv_fds(int sock, void *buf, size_t cap, int *fds, unsigned max, unsigned *nfds,
		     int flags);
/* The same, but a whole packet whose fds could not all be received
 * (MSG_CTRUNC: the receiver is out of fds, or too many were sent) returns
 * its length with no fds and *lost set, so it can be answered. */
ssize_t v4v_recv_fds_lost(int sock, void *buf, size_t cap, int *fds, unsigned max, unsigned *nfds,
			  int flags, bool *lost);

/* A memfd of `size` bytes sealed against shrinking; -errno on failure. */
int v4v_memfd_sealed(const char *name, size_t size);
/* The same with all of its pages allocated (fallocate), so that touching
 * them faults on nothing; memory that cannot be had is -ENOMEM, never
 * -ENOSPC (libv4v's errno for a ring quota, pool.c). */
int v4v_memfd_committed(const char *name, size_t size);

/* Strict decimal parse of [lo, hi]; false on any junk. */
bool v4v_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* Framed control messages on a stream socket: u32 length, then bytes. */
int v4v_frame_send(int sock, const void *buf, uint32_t n, int fd);
/* Receive one frame into a malloc'd NUL-terminated buffer (max bytes). */
int v4v_frame_recv(int sock, char **out, uint32_t *n, uint32_t max, int *fd);

#endif
