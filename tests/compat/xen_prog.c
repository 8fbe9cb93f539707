/* SPDX-License-Identifier: MIT */
/*
 * A program written for Xen's libxenvchan, using only what its header
 * declares: build.sh compiles it unchanged with
 * `pkg-config --cflags --libs xenvchan-v4v` and runs it in two domains.
 *   xen_prog server CLIENT-DOMID PATH | client SERVER-DOMID PATH
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include <libxenvchan.h>

static int fail(const char *what)
{
	perror(what);
	return 1;
}

int main(int argc, char **argv)
{
	char buf[5] = {0};
	if (argc != 4)
		return 2;
	int server = !strcmp(argv[1], "server");
	struct libxenvchan *ctrl = server
				       ? libxenvchan_server_init(NULL, atoi(argv[2]), argv[3], 0, 0)
				       : libxenvchan_client_init(NULL, atoi(argv[2]), argv[3]);
	if (!ctrl)
		return fail("init");
	if (server) {
		printf("listening\n");
		fflush(stdout);
		/* the select loop of Xen's programs */
		while (libxenvchan_data_ready(ctrl) < 4) {
			fd_set rd;
			int fd = libxenvchan_fd_for_select(ctrl);
			FD_ZERO(&rd);
			FD_SET(fd, &rd);
			if (select(fd + 1, &rd, NULL, NULL, NULL) < 0 || libxenvchan_wait(ctrl) < 0)
				return fail("wait");
		}
		if (libxenvchan_recv(ctrl, buf, 4) != 4)
			return fail("recv");
		if (libxenvchan_send(ctrl, "pong", 4) != 4)
			return fail("send");
		ctrl->blocking = 1;
		while (libxenvchan_is_open(ctrl))
			libxenvchan_wait(ctrl);
	} else {
		ctrl->blocking = 1;
		if (libxenvchan_send(ctrl, "ping", 4) != 4 || libxenvchan_recv(ctrl, buf, 4) != 4)
			return fail("ping");
	}
	printf("%s\n", buf);
	libxenvchan_close(ctrl);
	return 0;
}
