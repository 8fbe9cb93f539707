/* SPDX-License-Identifier: MIT */
/*
 * The vsock tests' safety checks, run under novsock.
 *
 *   vsock_probe kernel ERRNO   the seccomp net holds: a direct system call
 *                              socket(AF_VSOCK) (and socketpair) fails with
 *                              ERRNO.  Refuses to try unless a seccomp
 *                              filter is installed (/proc/self/status).
 *   vsock_probe preload ERRNO  the preload fails closed: libc's socket()
 *                              (interposed) fails, and not with ERRNO, the
 *                              answer novsock -e gives when the kernel is
 *                              asked; so the preload never asked it.
 * Exit 0 when the check holds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int filtered(void)
{
	char line[256];
	int mode = 0;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(f);
	return mode == 2;
}

static int kernel(int want)
{
	if (!filtered()) {
		fprintf(stderr, "vsock_probe: no seccomp filter: not trying\n");
		return 1;
	}
	int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
	for (unsigned i = 0; i < 3; i++) {
		long fd = syscall(SYS_socket, AF_VSOCK, types[i], 0);
		if (fd >= 0 || errno != want) {
			fprintf(stderr, "vsock_probe: socket(AF_VSOCK, %d): %ld %s\n", types[i], fd,
				strerror(errno));
			if (fd >= 0)
				close((int)fd); /* never connected, never sent */
			return 1;
		}
		int sv[2];
		if (syscall(SYS_socketpair, AF_VSOCK, types[i], 0, sv) == 0 || errno != want) {
			fprintf(stderr, "vsock_probe: socketpair(AF_VSOCK) not refused\n");
			return 1;
		}
	}
	/* The filter must not be in the way of everything else. */
	long fd = syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0) {
		fprintf(stderr, "vsock_probe: AF_UNIX refused too: %s\n", strerror(errno));
		return 1;
	}
	close((int)fd);
	printf("kernel AF_VSOCK refused with %s\n", strerror(want));
	return 0;
}

static int preload(int kernel_errno)
{
	int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_STREAM | SOCK_NONBLOCK};
	for (unsigned i = 0; i < 3; i++) {
		errno = 0;
		int fd = socket(AF_VSOCK, types[i], 0);
		if (fd >= 0) {
			fprintf(stderr,
				"vsock_probe: socket(AF_VSOCK) succeeded outside a domain\n");
			return 1;
		}
		if (errno == kernel_errno) {
			fprintf(stderr, "vsock_probe: the kernel was asked for AF_VSOCK\n");
			return 1;
		}
		printf("socket: %s\n", strerror(errno));
	}
	int fd = open("/dev/vsock", O_RDONLY);
	if (fd >= 0) {
		fprintf(stderr, "vsock_probe: /dev/vsock opened outside a domain\n");
		return 1;
	}
	printf("/dev/vsock: %s\n", strerror(errno));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: vsock_probe kernel|preload ERRNO\n");
		return 2;
	}
	int e = atoi(argv[2]);
	if (strcmp(argv[1], "kernel") == 0)
		return kernel(e);
	if (strcmp(argv[1], "preload") == 0)
		return preload(e);
	return 2;
}
