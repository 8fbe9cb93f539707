/* SPDX-License-Identifier: MIT */
/*
 * Compiled twice by build.sh, against Xen's own libxenvchan.h and against
 * ours: each call must have the type Xen's header gives it, and the
 * members programs use must be there.  -Werror makes a mismatch fatal.
 */
#include <stddef.h>

#include <libxenvchan.h>

struct xentoollog_logger;

struct libxenvchan *(*p_server_init)(struct xentoollog_logger *, int, const char *, size_t,
				     size_t) = libxenvchan_server_init;
struct libxenvchan *(*p_client_init)(struct xentoollog_logger *, int,
				     const char *) = libxenvchan_client_init;
void (*p_close)(struct libxenvchan *) = libxenvchan_close;
int (*p_recv)(struct libxenvchan *, void *, size_t) = libxenvchan_recv;
int (*p_read)(struct libxenvchan *, void *, size_t) = libxenvchan_read;
int (*p_send)(struct libxenvchan *, const void *, size_t) = libxenvchan_send;
int (*p_write)(struct libxenvchan *, const void *, size_t) = libxenvchan_write;
int (*p_wait)(struct libxenvchan *) = libxenvchan_wait;
int (*p_fd)(struct libxenvchan *) = libxenvchan_fd_for_select;
int (*p_is_open)(struct libxenvchan *) = libxenvchan_is_open;
int (*p_data_ready)(struct libxenvchan *) = libxenvchan_data_ready;
int (*p_buffer_space)(struct libxenvchan *) = libxenvchan_buffer_space;

int members(struct libxenvchan *c);
int members(struct libxenvchan *c)
{
	c->blocking = 1;
	c->server_persist = 1;
	return c->is_server;
}
