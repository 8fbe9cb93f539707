/* SPDX-License-Identifier: MIT */
/*
 * The process domain's end of the VM seqpacket test (vm.sh seqpacket): a
 * V4V_SOCK_SEQPACKET listener on PORT that accepts one connection and
 * echoes each record back as it came, until end of stream; then prints
 * "records N" and exits 0 (1 on any error).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "v4v/v4v.h"

static unsigned char buf[V4V_SOCK_TX_LEN];

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seq_echo PORT\n");
		return 2;
	}
	struct v4v_addr any = {.aport = (uint32_t)strtoul(argv[1], NULL, 0),
			       .domain_id = V4V_DOMID_ANY};
	int l = v4v_socket(NULL, V4V_SOCK_SEQPACKET, 0);
	if (l < 0 || v4v_bind(l, &any) < 0 || v4v_listen(l, 1) < 0) {
		perror("seq_echo: listen");
		return 1;
	}
	int c = v4v_accept(l, NULL);
	if (c < 0) {
		perror("seq_echo: accept");
		return 1;
	}
	unsigned long n = 0;
	ssize_t r;
	while ((r = v4v_recv(c, buf, sizeof(buf), 0)) > 0) {
		if (v4v_send(c, buf, (size_t)r, 0) != r) {
			perror("seq_echo: send");
			return 1;
		}
		n++;
	}
	if (r < 0) {
		perror("seq_echo: recv");
		return 1;
	}
	printf("records %lu\n", n);
	v4v_sock_close(c);
	v4v_sock_close(l);
	return 0;
}
