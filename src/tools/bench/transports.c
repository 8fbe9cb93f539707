/* SPDX-License-Identifier: MIT */
/* The table of transports: each contender's operations and the Unix
 * socket it is compared with (NT in bench.h counts them). */
#define _GNU_SOURCE
#include <string.h>

#include "bench.h"
#include "common/util.h"
#include "tool.h"

/* ---- the table ---------------------------------------------------------- */

const struct transport transports[] = {
    {.name = "v4v-dgram",
     .baseline = "unix-seqpacket",
     .v4v = true,
     .setup = vpair_setup,
     .attach = vend_attach,
     .open = vdgram_open,
     .send = vdgram_send,
     .recv = vdgram_recv},
    {.name = "v4v-stream",
     .baseline = "unix-stream",
     .v4v = true,
     .setup = vpair_setup,
     .attach = vend_attach,
     .open = vstream_open,
     .open2 = vstream_open2,
     .send = vstream_send,
     .recv = vstream_recv,
     .c_listen = vstream_listen,
     .c_connect = vstream_connect,
     .c_accept = vstream_accept,
     .c_close = vstream_close},
    {.name = "v4v-ring",
     .baseline = "unix-seqpacket",
     .v4v = true,
     .setup = vpair_setup,
     .attach = vend_attach,
     .open = vring_open,
     .send = vring_send,
     .recv = vring_recv},
    {.name = "unix-stream",
     .baseline = "unix-stream",
     .setup = unix_stream_setup,
     .open = fd_open,
     .send = stream_send,
     .recv = stream_recv,
     .c_listen = sock_listen,
     .c_connect = sock_connect,
     .c_accept = sock_accept,
     .c_close = sock_close},
    {.name = "unix-seqpacket",
     .baseline = "unix-seqpacket",
     .setup = unix_seqpacket_setup,
     .open = fd_open,
     .send = dgram_send,
     .recv = dgram_recv,
     .c_listen = sock_listen,
     .c_connect = sock_connect,
     .c_accept = sock_accept,
     .c_close = sock_close},
    {.name = "pipe",
     .baseline = "unix-stream",
     .setup = pipe_setup,
     .open = fd_open,
     .send = stream_send,
     .recv = stream_recv},
    {.name = "tcp",
     .baseline = "unix-stream",
     .setup = tcp_setup,
     .open = fd_open,
     .send = stream_send,
     .recv = stream_recv,
     .c_listen = sock_listen,
     .c_connect = sock_connect,
     .c_accept = sock_accept,
     .c_close = sock_close},
    {.name = "shm",
     .baseline = "unix-stream",
     .setup = shm_setup,
     .open = shm_open_end,
     .send = shm_send,
     .recv = shm_recv},
    /* QEMU guests (vm.c, which runs them itself): --workload vm only. */
    {.name = "vm-stream", .baseline = "unix-stream", .guest = true},
    {.name = "vm-vm-stream", .baseline = "unix-stream", .guest = true},
};

int transport_index(const char *name)
{
	for (unsigned i = 0; i < NT; i++)
		if (strcmp(transports[i].name, name) == 0)
			return (int)i;
	return -1;
}
