/* SPDX-License-Identifier: MIT */
/*
 * Compiled by build.sh against our libvchan.h: each call must have the
 * type qubes-core-vchan-xen's header gives it (-Werror: a mismatch fails).
 */
#include <stdbool.h>
#include <stddef.h>

#include <libvchan.h>

libvchan_t *(*p_server_init)(int, int, size_t, size_t) = libvchan_server_init;
libvchan_t *(*p_client_init)(int, int) = libvchan_client_init;
libvchan_t *(*p_client_init_async)(int, int, EVTCHN *) = libvchan_client_init_async;
int (*p_async_finish)(libvchan_t *, bool) = libvchan_client_init_async_finish;
int (*p_write)(libvchan_t *, const void *, size_t) = libvchan_write;
int (*p_send)(libvchan_t *, const void *, size_t) = libvchan_send;
int (*p_read)(libvchan_t *, void *, size_t) = libvchan_read;
int (*p_recv)(libvchan_t *, void *, size_t) = libvchan_recv;
int (*p_wait)(libvchan_t *) = libvchan_wait;
void (*p_close)(libvchan_t *) = libvchan_close;
EVTCHN (*p_fd)(libvchan_t *) = libvchan_fd_for_select;
int (*p_is_open)(libvchan_t *) = libvchan_is_open;
int (*p_data_ready)(libvchan_t *) = libvchan_data_ready;
int (*p_buffer_space)(libvchan_t *) = libvchan_buffer_space;
void (*p_set_blocking)(libvchan_t *, bool) = libvchan_set_blocking;

_Static_assert(VCHAN_DISCONNECTED == 0 && VCHAN_CONNECTED == 1 && VCHAN_WAITING == 2,
	       "is_open values");
