/* SPDX-License-Identifier: MIT */
/*
 * A program written for Qubes' libvchan, in qrexec's manner: the agent
 * (server, in a VM) sends its hello before the daemon (client, in domain 0)
 * connects with the async pair.  build.sh builds it unchanged with
 * `pkg-config --cflags --libs vchan-$BACKEND_VMM` and runs it.
 *   qubes_prog agent DAEMON-DOMID | daemon AGENT-DOMID
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include <libvchan.h>

#define PORT 512 /* qrexec's VCHAN_BASE_PORT */

static int fail(const char *what)
{
	perror(what);
	return 1;
}

static void wait_fd(int fd)
{
	fd_set rd;
	FD_ZERO(&rd);
	FD_SET(fd, &rd);
	select(fd + 1, &rd, NULL, NULL, NULL);
}

int main(int argc, char **argv)
{
	char buf[5] = {0};
	if (argc != 3)
		return 2;
	int dom = atoi(argv[2]);
	libvchan_t *ctrl;
	if (!strcmp(argv[1], "agent")) {
		if (!(ctrl = libvchan_server_init(dom, PORT, 65536, 65536)))
			return fail("server_init");
		if (libvchan_send(ctrl, "HELO", 4) != 4)
			return fail("send hello");
		printf("listening\n");
		fflush(stdout);
		while (libvchan_data_ready(ctrl) < 4) {
			wait_fd(libvchan_fd_for_select(ctrl));
			if (libvchan_wait(ctrl) < 0)
				return fail("wait");
		}
		if (libvchan_recv(ctrl, buf, 4) != 4 || libvchan_send(ctrl, "PONG", 4) != 4)
			return fail("ping");
		while (libvchan_is_open(ctrl) == VCHAN_CONNECTED)
			libvchan_wait(ctrl);
	} else {
		EVTCHN fd;
		int r;
		if (!(ctrl = libvchan_client_init_async(dom, PORT, &fd)))
			return fail("client_init_async");
		while ((r = libvchan_client_init_async_finish(ctrl, true)) == 1)
			wait_fd(fd);
		if (r < 0)
			return fail("client_init_async_finish");
		if (libvchan_recv(ctrl, buf, 4) != 4 || strcmp(buf, "HELO"))
			return fail("hello");
		if (libvchan_send(ctrl, "PING", 4) != 4 || libvchan_recv(ctrl, buf, 4) != 4)
			return fail("ping");
	}
	printf("%s\n", buf);
	libvchan_close(ctrl);
	return 0;
}
