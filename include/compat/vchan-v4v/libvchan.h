/* SPDX-License-Identifier: MIT */
/*
 * Qubes' libvchan over v4v (the API of qubes-core-vchan-xen's libvchan.h),
 * for qrexec and the other Qubes tools, running inside v4v domains.
 * Build with $(pkg-config --cflags --libs vchan-v4v), e.g. BACKEND_VMM=v4v.
 * See libvchan-v4v(3).  Errors: NULL or a negative value, with errno set.
 */
#ifndef V4V_LIBVCHAN_H
#define V4V_LIBVCHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int EVTCHN;

/* libvchan_is_open */
#define VCHAN_DISCONNECTED 0 /* the peer closed, or its domain is dead */
#define VCHAN_CONNECTED	   1
#define VCHAN_WAITING	   2 /* waiting for the client, or for the server */

struct libvchan;
typedef struct libvchan libvchan_t;

/* Serve domain `domain` on `port`; data may be sent before it connects. */
libvchan_t *libvchan_server_init(int domain, int port, size_t read_min, size_t write_min);
/* Connect to `port` of domain `domain`: waits for the server to appear;
 * fails if that domain is dead. */
libvchan_t *libvchan_client_init(int domain, int port);
/* The same in two steps: wait for *watch_fd to be readable, then call
 * _finish until it returns 0 (connected); 1: wait more; -1: failed. */
libvchan_t *libvchan_client_init_async(int domain, int port, EVTCHN *watch_fd);
int libvchan_client_init_async_finish(libvchan_t *ctrl, bool blocking);

int libvchan_write(libvchan_t *ctrl, const void *data, size_t size);
int libvchan_send(libvchan_t *ctrl, const void *data, size_t size);
int libvchan_read(libvchan_t *ctrl, void *data, size_t size);
int libvchan_recv(libvchan_t *ctrl, void *data, size_t size);
/* Acknowledge an event, once, after the fd polled readable. */
int libvchan_wait(libvchan_t *ctrl);
void libvchan_close(libvchan_t *ctrl);
EVTCHN libvchan_fd_for_select(libvchan_t *ctrl);
int libvchan_is_open(libvchan_t *ctrl);
int libvchan_data_ready(libvchan_t *ctrl);
int libvchan_buffer_space(libvchan_t *ctrl);
void libvchan_set_blocking(libvchan_t *ctrl, bool blocking);

#ifdef __cplusplus
}
#endif
#endif
