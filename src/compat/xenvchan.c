/* SPDX-License-Identifier: MIT */
/*
 * libxenvchan over the vchan engine: Xen's calls, return values and
 * struct members mapped onto vch_*.  Errors become -1 (or NULL) and errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "compat/vchan.h"
#include "compat/xenvchan/libxenvchan.h"

static int fail(int err)
{
	errno = err;
	return -1;
}

/* The engine of ctrl, told what the program set in its members. */
static struct vch *eng(struct libxenvchan *ctrl)
{
	vch_set_persist(ctrl->v4v_engine, ctrl->server_persist != 0);
	return ctrl->v4v_engine;
}

static struct libxenvchan *wrap(struct vch *v, int is_server)
{
	struct libxenvchan *ctrl = calloc(1, sizeof(*ctrl));
	if (!ctrl) {
		vch_close(v);
		errno = ENOMEM;
		return NULL;
	}
	ctrl->is_server = is_server;
	ctrl->v4v_engine = v;
	return ctrl;
}

struct libxenvchan *libxenvchan_server_init(struct xentoollog_logger *logger, int domain,
					    const char *xs_path, size_t read_min, size_t write_min)
{
	struct vch *v;
	(void)logger;
	if (domain < 0 || domain > UINT16_MAX || !xs_path) {
		errno = EINVAL;
		return NULL;
	}
	int e = vch_server((uint16_t)domain, xs_path, read_min, write_min, false, &v);
	if (e) {
		errno = -e;
		return NULL;
	}
	return wrap(v, 1);
}

struct libxenvchan *libxenvchan_client_init(struct xentoollog_logger *logger, int domain,
					    const char *xs_path)
{
	struct vch *v;
	(void)logger;
	if (domain < 0 || domain > UINT16_MAX || !xs_path) {
		errno = EINVAL;
		return NULL;
	}
	int e = vch_client((uint16_t)domain, xs_path, &v);
	/* As Xen's: the server must be there; we wait only for its answer. */
	if (!e)
		while ((e = vch_client_step(v, false)) == 1)
			vch_poll(v, -1);
	if (e) {
		if (v && e != -ENOMEM)
			vch_close(v);
		errno = -e;
		return NULL;
	}
	return wrap(v, 0);
}

void libxenvchan_close(struct libxenvchan *ctrl)
{
	if (!ctrl)
		return;
	vch_close(ctrl->v4v_engine);
	free(ctrl);
}

static int ret(ssize_t r)
{
	return r < 0 ? fail((int)-r) : (int)r;
}

static size_t clamp(size_t size)
{
	return size > INT_MAX ? INT_MAX : size;
}

int libxenvchan_recv(struct libxenvchan *ctrl, void *data, size_t size)
{
	return ret(vch_read(eng(ctrl), data, size, true, ctrl->blocking));
}

int libxenvchan_read(struct libxenvchan *ctrl, void *data, size_t size)
{
	return ret(vch_read(eng(ctrl), data, clamp(size), false, ctrl->blocking));
}

int libxenvchan_send(struct libxenvchan *ctrl, const void *data, size_t size)
{
	return ret(vch_write(eng(ctrl), data, size, true, ctrl->blocking));
}

int libxenvchan_write(struct libxenvchan *ctrl, const void *data, size_t size)
{
	return ret(vch_write(eng(ctrl), data, clamp(size), false, ctrl->blocking));
}

int libxenvchan_wait(struct libxenvchan *ctrl)
{
	return ret(vch_wait(eng(ctrl), -1));
}

int libxenvchan_fd_for_select(struct libxenvchan *ctrl)
{
	return vch_fd(ctrl->v4v_engine);
}

int libxenvchan_is_open(struct libxenvchan *ctrl)
{
	enum vch_state s = vch_state(eng(ctrl));
	if (ctrl->is_server)
		return ctrl->server_persist ? 1 : (int)s;
	return s == VCH_OPEN;
}

int libxenvchan_data_ready(struct libxenvchan *ctrl)
{
	return (int)vch_data_ready(eng(ctrl));
}

int libxenvchan_buffer_space(struct libxenvchan *ctrl)
{
	return (int)vch_buffer_space(eng(ctrl));
}
