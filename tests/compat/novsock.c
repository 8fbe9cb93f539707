/* SPDX-License-Identifier: MIT */
/*
 * novsock: run a command with the kernel's AF_VSOCK out of reach.
 *
 * The test machines are VMs whose own kernel vsock reaches their host, so
 * every program the vsock compatibility tests run (the preload library,
 * socat, ncat, python) runs under this seccomp filter: socket(AF_VSOCK)
 * and socketpair(AF_VSOCK) fail with EAFNOSUPPORT (or the errno given with
 * -e, so a test can tell the filter's answer from the preload's own), the
 * system calls that could reach sockets behind the filter's back (32-bit
 * and x32 entry points, socketcall, io_uring) fail, and the filter stays
 * for every child and exec (PR_SET_NO_NEW_PRIVS).
 *
 *   novsock [-e ERRNO] command [arg...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __x86_64__
#error "novsock knows the x86_64 system call table only"
#endif

#define X32_BIT 0x40000000u

#define LD_ARCH	     BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch))
#define LD_NR	     BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define LD_ARG0	     BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]))
#define RET(v)	     BPF_STMT(BPF_RET | BPF_K, (v))
#define JEQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
#define JGE(k, t, f) BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (k), (t), (f))

int main(int argc, char **argv)
{
	int err = EAFNOSUPPORT, i = 1;
	if (argc > 2 && strcmp(argv[1], "-e") == 0) {
		err = atoi(argv[2]);
		if (err <= 0 || err > 4095) {
			fprintf(stderr, "novsock: bad errno '%s'\n", argv[2]);
			return 2;
		}
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: novsock [-e ERRNO] command [arg...]\n");
		return 2;
	}
	unsigned deny = SECCOMP_RET_ERRNO | (unsigned)err;
	struct sock_filter f[] = {
	    /* 0 */ LD_ARCH,
	    /* 1 */ JEQ(AUDIT_ARCH_X86_64, 1, 0),
	    /* 2 */ RET(SECCOMP_RET_ERRNO | EPERM), /* i386 entry: socketcall hides args */
	    /* 3 */ LD_NR,
	    /* 4 */ JGE(X32_BIT, 0, 1),
	    /* 5 */ RET(SECCOMP_RET_ERRNO | EPERM), /* x32 entry points */
	    /* 6 */ JEQ(__NR_io_uring_setup, 0, 1),
	    /* 7 */ RET(SECCOMP_RET_ERRNO | ENOSYS), /* IORING_OP_SOCKET is unfiltered */
	    /* 8 */ JEQ(__NR_socket, 2, 0),
	    /* 9 */ JEQ(__NR_socketpair, 1, 0),
	    /* 10 */ RET(SECCOMP_RET_ALLOW),
	    /* 11 */ LD_ARG0,
	    /* 12 */ JEQ(AF_VSOCK, 0, 1),
	    /* 13 */ RET(deny),
	    /* 14 */ RET(SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		perror("novsock: PR_SET_NO_NEW_PRIVS");
		return 2;
	}
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
		perror("novsock: seccomp");
		return 2;
	}
	execvp(argv[i], argv + i);
	fprintf(stderr, "novsock: cannot run %s: %s\n", argv[i], strerror(errno));
	return 127;
}
