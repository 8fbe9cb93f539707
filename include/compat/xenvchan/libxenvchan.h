/* SPDX-License-Identifier: MIT */
/*
 * libxenvchan over v4v: Xen's vchan API (as of Xen 4.17), for programs
 * written for it, running inside v4v domains.  Build them unchanged with
 *   cc prog.c $(pkg-config --cflags --libs xenvchan-v4v)
 *
 * The semantics are Xen's (see libxenvchan-v4v(3) for the differences):
 * a server serves one client domain at a path (any string); the path is a
 * name in the server's domain that only that client domain may look up.
 * Returns: NULL or -1 on error, with errno set.
 */
#ifndef V4V_LIBXENVCHAN_H
#define V4V_LIBXENVCHAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Accepted for Xen compatibility, and ignored (may be NULL). */
struct xentoollog_logger;

struct vch;

/* The members programs set or read are Xen's; the rest is ours. */
struct libxenvchan {
	/* informative: are we the server? */
	int is_server;
	/* the server stays open when its client closes (a new one may come) */
	int server_persist;
	/* operations block instead of returning 0 (starts at 0, as in Xen) */
	int blocking;
	struct vch *v4v_engine;
};

/* Serve `domain` at xs_path; rings of at least read_min / write_min
 * bytes (Xen's sizes: 1024 or 2048 in-page, else a power of two of at
 * least 4096; at most 1 MiB).  Does not wait for the client. */
struct libxenvchan *libxenvchan_server_init(struct xentoollog_logger *logger, int domain,
					    const char *xs_path, size_t read_min, size_t write_min);
/* Connect to the server of xs_path in `domain` (fails, ENOENT, if it is
 * not there).  A client may reconnect to a server that is still open. */
struct libxenvchan *libxenvchan_client_init(struct xentoollog_logger *logger, int domain,
					    const char *xs_path);
/* Close: the peer is told, and may still read what was sent before. */
void libxenvchan_close(struct libxenvchan *ctrl);

/* Packets: exactly size bytes, or 0 (non-blocking, not enough), or -1. */
int libxenvchan_recv(struct libxenvchan *ctrl, void *data, size_t size);
int libxenvchan_send(struct libxenvchan *ctrl, const void *data, size_t size);
/* Streams: as much as possible (0 when non-blocking and none), or -1. */
int libxenvchan_read(struct libxenvchan *ctrl, void *data, size_t size);
int libxenvchan_write(struct libxenvchan *ctrl, const void *data, size_t size);

/* Wait for data, space or a close, and acknowledge it. */
int libxenvchan_wait(struct libxenvchan *ctrl);
/* Readable while something happened that libxenvchan_wait has not
 * acknowledged: select on it, then wait, then read while data_ready. */
int libxenvchan_fd_for_select(struct libxenvchan *ctrl);
/* 0: the peer closed, exited or died; 1: open; 2: (server) no client yet. */
int libxenvchan_is_open(struct libxenvchan *ctrl);
/* Bytes readable now; bytes writable now without blocking. */
int libxenvchan_data_ready(struct libxenvchan *ctrl);
int libxenvchan_buffer_space(struct libxenvchan *ctrl);

#ifdef __cplusplus
}
#endif
#endif
