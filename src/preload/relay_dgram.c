/* SPDX-License-Identifier: MIT */
/*
 * v4v-vsock-relay for a SOCK_DGRAM socket: one libv4v datagram socket,
 * and the program's end a SOCK_SEQPACKET pair whose every record is a
 * struct vs_dgram header (the peer) and the payload (vsock.h).  Set-up
 * requests (bind, connect) may come at any time on the control channel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "preload/vsock.h"
#include "v4v/v4v.h"

#define DG_MAX (64u << 10) /* the largest datagram carried */

int vs_dgram_main(struct v4v_domain *dom);

static void answer(int d, struct v4v_domain *dom, int v, int err)
{
	struct vs_rep r = {.err = err, .domid = v4v_domid(dom)};
	struct v4v_addr a;
	if (v4v_getsockname(v, &a) == 0)
		r.port = a.aport;
	send(d, &r, sizeof(r), MSG_NOSIGNAL);
}

int vs_dgram_main(struct v4v_domain *dom)
{
	int b = VS_FD_DATA, d = VS_FD_CTL;
	int v = v4v_socket(dom, V4V_SOCK_DGRAM, V4V_SOCK_NONBLOCK);
	if (v < 0)
		return 1;
	fcntl(b, F_SETFL, O_NONBLOCK);
	char *up = malloc(sizeof(struct vs_dgram) + DG_MAX);
	char *down = malloc(sizeof(struct vs_dgram) + DG_MAX);
	if (!up || !down)
		return 1;
	size_t up_len = 0, down_len = 0;
	bool bound = false;
	for (;;) {
		struct pollfd p[3] = {
		    {.fd = d, .events = POLLIN},
		    {.fd = b, .events = (short)((up_len ? 0 : POLLIN) | (down_len ? POLLOUT : 0))},
		    {.fd = v,
		     .events = (short)((up_len ? POLLOUT : 0) | (bound && !down_len ? POLLIN : 0))},
		};
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents & (POLLHUP | POLLERR))
			break; /* the program closed the socket */
		if (p[2].revents & (POLLHUP | POLLERR))
			break; /* v4vd is gone */
		if (p[0].revents & POLLIN) {
			struct vs_req q;
			if (recv(d, &q, sizeof(q), 0) == sizeof(q)) {
				int err = 0;
				struct v4v_addr a = {.aport = q.port,
						     .domain_id = (uint16_t)q.domid};
				if (q.op == VS_OP_BIND) {
					a.domain_id = V4V_DOMID_ANY;
					err = v4v_bind(v, &a) < 0 ? errno : 0;
					bound = bound || !err;
				} else if (q.op == VS_OP_CONNECT) {
					err = v4v_connect(v, &a) < 0 ? errno : 0;
				} else {
					err = EINVAL;
				}
				answer(d, dom, v, err);
			}
		} else if (p[0].revents & POLLHUP) {
			p[0].fd = -1; /* (the program exec'd: data goes on) */
			d = -1;
		}
		if (!up_len && (p[1].revents & POLLIN)) {
			ssize_t n = recv(b, up, sizeof(struct vs_dgram) + DG_MAX, 0);
			if (n >= (ssize_t)sizeof(struct vs_dgram))
				up_len = (size_t)n;
		}
		if (up_len) {
			struct vs_dgram h;
			memcpy(&h, up, sizeof(h));
			struct v4v_addr to = {.aport = h.port, .domain_id = (uint16_t)h.domid};
			ssize_t n =
			    v4v_sendto(v, up + sizeof(h), up_len - sizeof(h), MSG_DONTWAIT, &to);
			if (n >= 0 || errno != EAGAIN)
				up_len = 0; /* sent, or lost as datagrams may be */
			if (n >= 0)
				bound = true; /* (the first send binds) */
		}
		if (!down_len && (p[2].revents & POLLIN)) {
			struct v4v_addr from;
			ssize_t n = v4v_recvfrom(v, down + sizeof(struct vs_dgram), DG_MAX,
						 MSG_DONTWAIT, &from);
			if (n >= 0) {
				struct vs_dgram h = {.domid = from.domain_id, .port = from.aport};
				memcpy(down, &h, sizeof(h));
				down_len = sizeof(h) + (size_t)n;
			} else if (errno == EPIPE) {
				break;
			}
		}
		if (down_len) {
			ssize_t n = send(b, down, down_len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n >= 0 || errno != EAGAIN)
				down_len = 0;
		}
	}
	v4v_sock_close(v);
	return 0;
}
