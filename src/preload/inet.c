/* SPDX-License-Identifier: MIT */
/*
 * Opt-in AF_INET mapping, for programs that only speak TCP.  With
 * V4V_VSOCK_INET=A.B.C.D/N set, the IPv4 addresses of that range stand for
 * domains (the range's first address + domid) and their TCP ports for vsock
 * ports.  A TCP socket that connects to such an address, or binds to one,
 * becomes (dup3 onto the same fd) a vsock stream socket before it does, and
 * then answers in AF_INET terms: getsockname, getpeername, accept, SO_DOMAIN.
 * Unset, nothing of this runs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload/preload.h"
#include "preload/vsock.h"

static int map_state; /* 0 not read yet, 1 on, -1 off */
static uint32_t map_base, map_mask;

static bool mapping(void)
{
	if (map_state == 0) {
		const char *e = getenv("V4V_VSOCK_INET");
		char addr[32];
		unsigned bits;
		struct in_addr a;
		map_state = -1;
		if (e && sscanf(e, "%31[0-9.]/%u", addr, &bits) == 2 && bits >= 8 && bits <= 32 &&
		    inet_pton(AF_INET, addr, &a) == 1) {
			map_mask = bits == 32 ? ~0u : ~(~0u >> bits);
			map_base = ntohl(a.s_addr) & map_mask;
			map_state = 1;
		}
	}
	return map_state > 0;
}

/* The domid an IPv4 address stands for, or -1. */
static long domid_of(const struct sockaddr *a, socklen_t len)
{
	if (!mapping() || !a || len < sizeof(struct sockaddr_in) || a->sa_family != AF_INET)
		return -1;
	uint32_t ip = ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr);
	if ((ip & map_mask) != map_base)
		return -1;
	return (long)(ip - map_base);
}

static bool is_tcp(int fd)
{
	int v = 0, t = 0;
	socklen_t l = sizeof(v);
	if (vs_real.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) < 0 || v != AF_INET)
		return false;
	l = sizeof(t);
	return vs_real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l) == 0 && t == SOCK_STREAM;
}

/* Replace TCP socket fd by a vsock stream socket (same fd, flags). */
static int become_vsock(int fd)
{
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
	int v = socket(AF_VSOCK, SOCK_STREAM | ((fl & O_NONBLOCK) ? SOCK_NONBLOCK : 0), 0);
	if (v < 0)
		return -1;
	if (dup3(v, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		int e = errno;
		vs_real.close(v);
		errno = e;
		return -1;
	}
	vs_real.close(v);
	struct vs_sock *s = vs_find(fd);
	if (s) {
		s->inet = true;
		vs_unlock();
	}
	return 0;
}

/* connect() of a socket not (yet) ours: 1 with *ret when it was mapped. */
int vs_inet_connect(int fd, const struct sockaddr *addr, socklen_t len, int *ret)
{
	long dom = domid_of(addr, len);
	if (dom < 0 || !is_tcp(fd))
		return 0;
	if (become_vsock(fd) < 0) {
		*ret = -1;
		return 1;
	}
	struct sockaddr_vm vm = {.svm_family = AF_VSOCK,
				 .svm_cid = (unsigned)dom + VS_CID_OFFSET,
				 .svm_port = ntohs(((const struct sockaddr_in *)addr)->sin_port)};
	*ret = connect(fd, (struct sockaddr *)&vm, sizeof(vm));
	return 1;
}

/* bind() likewise: to an address of the range (the domain's own). */
int vs_inet_bind(int fd, const struct sockaddr *addr, socklen_t len, int *ret)
{
	long dom = domid_of(addr, len);
	if (dom < 0 || !is_tcp(fd))
		return 0;
	if (become_vsock(fd) < 0) {
		*ret = -1;
		return 1;
	}
	uint32_t cid = vs_local_cid();
	if ((uint32_t)dom + VS_CID_OFFSET != cid) {
		errno = EADDRNOTAVAIL;
		*ret = -1;
		return 1;
	}
	unsigned port = ntohs(((const struct sockaddr_in *)addr)->sin_port);
	struct sockaddr_vm vm = {.svm_family = AF_VSOCK,
				 .svm_cid = VMADDR_CID_ANY,
				 .svm_port = port ? port : VMADDR_PORT_ANY};
	*ret = bind(fd, (struct sockaddr *)&vm, sizeof(vm));
	return 1;
}

/* A vsock address as the AF_INET one it stands for. */
void vs_inet_addr(struct sockaddr *addr, socklen_t *len, uint32_t cid, uint32_t port)
{
	struct sockaddr_in in = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(map_base + (cid - VS_CID_OFFSET))};
	if (cid < VS_CID_OFFSET || cid == VMADDR_CID_ANY)
		in.sin_addr.s_addr = htonl(INADDR_ANY);
	if (addr && len) {
		memcpy(addr, &in, *len < sizeof(in) ? *len : sizeof(in));
		*len = sizeof(in);
	}
}
