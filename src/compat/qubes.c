/* SPDX-License-Identifier: MIT */
/*
 * Qubes' libvchan over the vchan engine.  The rendezvous key is the path
 * Qubes uses, /local/domain/SRV/data/vchan/CLI/PORT, so both ends build it
 * from what they are given.  A server serves one client (its name goes
 * when that client has connected, as Qubes removes its xenstore entry).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "compat/vchan-v4v/libvchan.h"
#include "compat/vchan.h"

#define DEATH_CHECK_MS 1000 /* a waiting server re-checks its client's domain */

struct libvchan {
	struct vch *v;
	bool blocking;
	bool connecting; /* an async client that has not finished */
};

static void key(char *out, size_t cap, int srv, int cli, int port)
{
	snprintf(out, cap, "/local/domain/%d/data/vchan/%d/%d", srv, cli, port);
}

static libvchan_t *wrap(struct vch *v, bool connecting)
{
	libvchan_t *c = calloc(1, sizeof(*c));
	if (!c) {
		vch_close(v);
		errno = ENOMEM;
		return NULL;
	}
	c->v = v;
	c->blocking = true;
	c->connecting = connecting;
	return c;
}

static bool bad_domain(int domain)
{
	if (domain >= 0 && domain <= UINT16_MAX)
		return false;
	errno = EINVAL;
	return true;
}

libvchan_t *libvchan_server_init(int domain, int port, size_t read_min, size_t write_min)
{
	char k[96];
	int self, e;
	struct vch *v;
	if (bad_domain(domain))
		return NULL;
	if ((self = vch_self()) < 0) {
		errno = -self;
		return NULL;
	}
	key(k, sizeof(k), self, domain, port);
	if ((e = vch_server((uint16_t)domain, k, read_min, write_min, true, &v))) {
		errno = -e;
		return NULL;
	}
	return wrap(v, false);
}

libvchan_t *libvchan_client_init_async(int domain, int port, EVTCHN *watch_fd)
{
	char k[96];
	int self, e;
	struct vch *v;
	if (bad_domain(domain))
		return NULL;
	if ((self = vch_self()) < 0) {
		errno = -self;
		return NULL;
	}
	key(k, sizeof(k), domain, self, port);
	if ((e = vch_client((uint16_t)domain, k, &v))) {
		errno = -e;
		return NULL;
	}
	e = vch_client_step(v, true);
	if (e < 0) {
		vch_close(v);
		errno = -e;
		return NULL;
	}
	if (watch_fd)
		*watch_fd = vch_fd(v);
	return wrap(v, e == 1);
}

int libvchan_client_init_async_finish(libvchan_t *ctrl, bool blocking)
{
	if (!ctrl)
		return -1;
	if (ctrl->connecting) {
		int e = vch_client_step(ctrl->v, true);
		if (e == 1)
			return 1;
		if (e < 0) {
			errno = -e;
			return -1;
		}
		ctrl->connecting = false;
	}
	ctrl->blocking = blocking;
	return 0;
}

libvchan_t *libvchan_client_init(int domain, int port)
{
	int fd, r;
	libvchan_t *c = libvchan_client_init_async(domain, port, &fd);
	while (c && (r = libvchan_client_init_async_finish(c, true)) == 1)
		vch_poll(c->v, -1);
	if (c && r < 0) {
		int e = errno;
		libvchan_close(c);
		errno = e;
		return NULL;
	}
	return c;
}

/* I/O before an async client has finished: EAGAIN. */
static bool not_yet(libvchan_t *ctrl)
{
	if (!ctrl->connecting)
		return false;
	errno = EAGAIN;
	return true;
}

static int ret(ssize_t r)
{
	if (r >= 0)
		return (int)r;
	errno = (int)-r;
	return -1;
}

int libvchan_write(libvchan_t *ctrl, const void *data, size_t size)
{
	if (not_yet(ctrl))
		return -1;
	return ret(
	    vch_write(ctrl->v, data, size > INT32_MAX ? INT32_MAX : size, false, ctrl->blocking));
}

int libvchan_send(libvchan_t *ctrl, const void *data, size_t size)
{
	return not_yet(ctrl) ? -1 : ret(vch_write(ctrl->v, data, size, true, ctrl->blocking));
}

int libvchan_read(libvchan_t *ctrl, void *data, size_t size)
{
	if (not_yet(ctrl))
		return -1;
	return ret(
	    vch_read(ctrl->v, data, size > INT32_MAX ? INT32_MAX : size, false, ctrl->blocking));
}

int libvchan_recv(libvchan_t *ctrl, void *data, size_t size)
{
	return not_yet(ctrl) ? -1 : ret(vch_read(ctrl->v, data, size, true, ctrl->blocking));
}

int libvchan_wait(libvchan_t *ctrl)
{
	if (not_yet(ctrl))
		return -1;
	/* A server waiting for its client also watches that client's domain. */
	for (;;) {
		bool waiting = vch_is_server(ctrl->v) && vch_state(ctrl->v) == VCH_WAITING;
		int e = vch_wait(ctrl->v, waiting ? DEATH_CHECK_MS : -1);
		if (e == -ETIMEDOUT && !vch_peer_dead(ctrl->v))
			continue;
		return e == -ETIMEDOUT ? ret(-EPIPE) : ret(e);
	}
}

void libvchan_close(libvchan_t *ctrl)
{
	if (!ctrl)
		return;
	vch_close(ctrl->v);
	free(ctrl);
}

EVTCHN libvchan_fd_for_select(libvchan_t *ctrl)
{
	return vch_fd(ctrl->v);
}

int libvchan_is_open(libvchan_t *ctrl)
{
	if (ctrl->connecting)
		return VCHAN_WAITING;
	switch (vch_state(ctrl->v)) {
	case VCH_OPEN: return VCHAN_CONNECTED;
	case VCH_WAITING: return vch_peer_dead(ctrl->v) ? VCHAN_DISCONNECTED : VCHAN_WAITING;
	default: return VCHAN_DISCONNECTED;
	}
}

int libvchan_data_ready(libvchan_t *ctrl)
{
	return ctrl->connecting ? 0 : (int)vch_data_ready(ctrl->v);
}

int libvchan_buffer_space(libvchan_t *ctrl)
{
	return ctrl->connecting ? 0 : (int)vch_buffer_space(ctrl->v);
}

void libvchan_set_blocking(libvchan_t *ctrl, bool blocking)
{
	ctrl->blocking = blocking;
}
