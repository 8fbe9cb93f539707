/* SPDX-License-Identifier: MIT */
/* Small helpers shared by v4vd, libv4v and the tools (util.h): number
 * parsing, fd passing, sealed memfds, the runtime directory's paths. */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int v4v_runtime_dir(char *buf, size_t cap)
{
	const char *env = getenv("V4V_RUNTIME_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (env && *env)
		n = snprintf(buf, cap, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, cap, "/run/v4v");
	else if (xdg && *xdg)
		n = snprintf(buf, cap, "%s/v4v", xdg);
	else
		return -ENOENT; /* never a guessable path in a shared directory */
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int v4v_control_path(char *buf, size_t cap, const char *dir)
{
	/* sun_path holds 108 bytes; refuse what would not fit there. */
	int n = snprintf(buf, cap, "%s/control", dir);
	return n < 0 || (size_t)n >= cap || n >= 108 ? -ENAMETOOLONG : 0;
}

ssize_t v4v_send_fds(int sock, const void *buf, size_t n, const int *fds, unsigned nfds, int flags)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} u;
	struct iovec iov = {(void *)buf, n};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds > 4)
		return -EINVAL;
	if (nfds) {
		memset(&u, 0, sizeof(u));
		m.msg_control = u.b;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	ssize_t r;
	do
		r = sendmsg(sock, &m, flags | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

ssize_t v4v_recv_fds(int sock, void *buf, size_t cap, int *fds, unsigned max, unsigned *nfds,
		     int flags)
{
	return v4v_recv_fds_lost(sock, buf, cap, fds, max, nfds, flags, NULL);
}

ssize_t v4v_recv_fds_lost(int sock, void *buf, size_t cap, int *fds, unsigned max, unsigned *nfds,
			  int flags, bool *lost)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 8)];
	} u;
	struct iovec iov = {buf, cap};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
	ssize_t r;

	*nfds = 0;
	do
		r = recvmsg(sock, &m, flags | MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;

	bool bad = (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
	/* Only the fds did not fit (we are out of fds): the packet is whole. */
	bool fds_lost = lost && (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) == MSG_CTRUNC;
	if (lost)
		*lost = fds_lost;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int tmp[8];
		memcpy(tmp, CMSG_DATA(c), k * sizeof(int));
		for (unsigned i = 0; i < k; i++) {
			if (*nfds < max && !bad)
				fds[(*nfds)++] = tmp[i];
			else {
				close(tmp[i]);
				bad = true;
			}
		}
	}
	if (bad) {
		for (unsigned i = 0; i < *nfds; i++)
			close(fds[i]);
		*nfds = 0;
		return fds_lost ? r : -EMSGSIZE;
	}
	return r;
}

int v4v_memfd_sealed(const char *name, size_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int v4v_memfd_committed(const char *name, size_t size)
{
	int fd = v4v_memfd_sealed(name, size), e;
	if (fd < 0)
		return fd;
	do /* a signal stops shmem's fallocate; what it allocated stays */
		e = fallocate(fd, 0, 0, (off_t)size) < 0 ? errno : 0;
	while (e == EINTR);
	if (e) {
		close(fd);
		return e == ENOSPC ? -ENOMEM : -e;
	}
	return fd;
}

bool v4v_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static int full_io(int sock, void *buf, size_t n, bool wr)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t r = wr ? send(sock, p, n, MSG_NOSIGNAL) : recv(sock, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ECONNRESET;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int v4v_frame_send(int sock, const void *buf, uint32_t n, int fd)
{
	/* The fd, if any, rides on the length word. */
	ssize_t r = v4v_send_fds(sock, &n, sizeof(n), &fd, fd >= 0 ? 1 : 0, 0);
	if (r < 0)
		return (int)r;
	if (r != sizeof(n))
		return -EIO;
	return full_io(sock, (void *)buf, n, true);
}

int v4v_frame_recv(int sock, char **out, uint32_t *n, uint32_t max, int *fd)
{
	uint32_t len;
	unsigned nfds = 0;
	int tmp = -1;
	ssize_t r = v4v_recv_fds(sock, &len, sizeof(len), &tmp, fd ? 1 : 0, &nfds, MSG_WAITALL);
	if (r < 0)
		return (int)r;
	if (r == 0)
		return -ECONNRESET;
	if (r != sizeof(len) || len > max) {
		if (nfds)
			close(tmp);
		return r != sizeof(len) ? -EIO : -EMSGSIZE;
	}
	char *b = malloc((size_t)len + 1);
	if (!b) {
		if (nfds)
			close(tmp);
		return -ENOMEM;
	}
	int e = full_io(sock, b, len, false);
	if (e < 0) {
		free(b);
		if (nfds)
			close(tmp);
		return e;
	}
	b[len] = '\0';
	*out = b;
	*n = len;
	if (fd)
		*fd = nfds ? tmp : -1;
	return 0;
}
