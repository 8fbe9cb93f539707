/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend of one vsock device: the messages QEMU sends on
 * its socket, applied to the memory table and the two queues we serve
 * (0: rx, to the guest; 1: tx, from it).  QEMU is the VM's own process;
 * still, every size, index and region it sends is checked.
 */
#ifndef V4V_VM_VHOST_H
#define V4V_VM_VHOST_H

#include <stdbool.h>
#include <stdint.h>

#include "vm/mem.h"
#include "vm/vq.h"

#define VQ_RX	      0u
#define VQ_TX	      1u
#define VHOST_NQUEUES 2u

struct vhost {
	int fd; /* the connection from QEMU */
	uint64_t guest_cid;
	uint64_t features, protocol_features;
	struct vm_mem mem;
	struct vq q[VHOST_NQUEUES];
	/* Called before a kick fd is closed (add false) and after one is
	 * installed (add true), so the event loop can watch it. */
	void (*kick)(void *arg, unsigned qi, int fd, bool add);
	/* Told of a new memory table (its fds still open) and call fd. */
	void (*mem_set)(void *arg, const struct vhu_mem *mem, const int *fds, unsigned nfds);
	void (*call)(void *arg, unsigned qi, int fd);
	/* Told when QEMU stops a queue (the driver reset the device: every
	 * guest connection is gone with it). */
	void (*stopped)(void *arg, unsigned qi);
	void *arg;
	bool verbose;
};

void vhost_init(struct vhost *v, int fd, uint64_t guest_cid);
/* Read and apply one message; 0, or -errno when the connection must end
 * (QEMU hung up, or sent something unreadable). */
int vhost_handle(struct vhost *v);
/* Close everything QEMU gave us (fds, mappings); the socket too. */
void vhost_destroy(struct vhost *v);

#endif
