/* SPDX-License-Identifier: MIT */
/*
 * The vchan engine shared by the libxenvchan and Qubes libvchan layers: a
 * bidirectional byte channel between two domains over one v4v stream
 * connection, with the accounting of a vchan's two rings kept exact by
 * credit messages (the receiver tells the sender how much it consumed).
 *
 * Rendezvous: the server registers a name derived from (client domid, key)
 * that only the client domain may look up; the client looks it up in the
 * server's domain and connects (libxenvchan-v4v(3): HOW IT WORKS).
 *
 * Errors: -errno from every function that can fail; nothing sets errno.
 */
#ifndef V4V_COMPAT_VCHAN_H
#define V4V_COMPAT_VCHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VCH_RING_MAX (1u << 20) /* a vchan ring, as Xen's */
#define VCH_KEY_MAX  1024	/* the rendezvous key (a path) */

enum vch_state {
	VCH_CLOSED = 0,	 /* the peer closed, exited or died (or never came) */
	VCH_OPEN = 1,	 /* connected */
	VCH_WAITING = 2, /* server: no client yet; client: not connected yet */
};

struct vch;

/* Xen's ring-size rules for a server; -EINVAL above VCH_RING_MAX. */
int vch_ring_sizes(size_t read_min, size_t write_min, uint32_t *rd, uint32_t *wr);

/*
 * Serve `key` to domain `client`.  once: drop the name after the first
 * client (Qubes); else the name stays and a later client may reconnect,
 * finding what the last one left unread (Xen).
 */
int vch_server(uint16_t client, const char *key, size_t read_min, size_t write_min, bool once,
	       struct vch **out);
/* Start connecting to the server of `key` in domain `server` (never waits). */
int vch_client(uint16_t server, const char *key, struct vch **out);
/*
 * Drive a client's connection without waiting: 0 connected, 1 in progress
 * (poll vch_fd), -ENOENT no server there (now), -errno failure.  With
 * retry, an absent server is looked for again every few ms (returns 1).
 */
int vch_client_step(struct vch *c, bool retry);

/* This process's domid, or -errno (not in a domain, v4vd gone). */
int vch_self(void);

enum vch_state vch_state(struct vch *c);
/* The peer's domain is gone (or, for a server, never existed). */
bool vch_peer_dead(struct vch *c);
bool vch_is_server(const struct vch *c);
/* A server whose client left keeps reads and writes going (Xen's
 * server_persist): a new client may come. */
void vch_set_persist(struct vch *c, bool on);
uint32_t vch_read_size(const struct vch *c);
uint32_t vch_write_size(const struct vch *c);

/* Bytes readable now / writable now without waiting (both exact). */
size_t vch_data_ready(struct vch *c);
size_t vch_buffer_space(struct vch *c);

/*
 * Move bytes.  whole: all `len` or nothing (packets), else what fits.
 * Returns the count, 0 when non-blocking and nothing (or not the whole)
 * fits, -EPIPE once the peer closed (reads: and nothing is left), -EMSGSIZE
 * when blocking for a packet larger than the ring (as Xen's, in that order).
 */
ssize_t vch_read(struct vch *c, void *buf, size_t len, bool whole, bool blocking);
ssize_t vch_write(struct vch *c, const void *buf, size_t len, bool whole, bool blocking);

/*
 * The event fd: readable while an event (data, space, a connection, the
 * peer's close or death) arrived that vch_wait has not acknowledged yet.
 */
int vch_fd(const struct vch *c);
/* Wait for an event and acknowledge it; ms < 0: no limit.  0, -ETIMEDOUT,
 * -EPIPE when nothing can happen any more. */
int vch_wait(struct vch *c, int ms);

/* Sleep until a source (listener, connection, retry timer) is ready,
 * without acknowledging anything: 0, -ETIMEDOUT. */
int vch_poll(struct vch *c, int ms);

/* Flush what the peer may still read (boundedly), then tear down. */
void vch_close(struct vch *c);

#endif
