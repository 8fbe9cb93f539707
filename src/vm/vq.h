/* SPDX-License-Identifier: MIT */
/*
 * One split virtqueue, device side, over guest memory that the guest may
 * rewrite at any moment.  The geometry (size, ring addresses) comes from
 * QEMU and is checked against the memory table once, when the queue is
 * mapped; every index and descriptor read from the guest is copied out
 * once and checked before use: a head or next index past the table, a
 * chain longer than the table (a loop), a buffer outside guest RAM, a
 * readable descriptor after a writable one, or an indirect descriptor
 * (not negotiated) makes the chain bad.
 */
#ifndef V4V_VM_VQ_H
#define V4V_VM_VQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vm/mem.h"

#define VQ_MAX_SEGS 64u

struct vq {
	/* from QEMU */
	uint32_t num;
	uint64_t desc_uva, avail_uva, used_uva;
	bool enabled;
	int kick_fd, call_fd;
	/* mapped (vq_map) */
	const uint8_t *desc;
	uint8_t *avail, *used;
	/* ours */
	uint16_t last_avail, used_idx;
	uint32_t pass_left; /* pops left in this pass (vq_pass) */
	bool broken, need_signal;
};

/* A popped descriptor chain: readable segments first, then writable. */
struct vq_chain {
	uint16_t head;
	unsigned nseg, nread;
	struct iovec seg[VQ_MAX_SEGS];
	uint64_t rlen, wlen; /* bytes readable, writable */
};

void vq_init(struct vq *q);
/* Translate the ring addresses through m; -EINVAL when num is not a power
 * of two up to VQ_MAX_SIZE or a ring is misaligned or outside guest RAM. */
int vq_map(struct vq *q, const struct vm_mem *m);
void vq_unmap(struct vq *q);
bool vq_ready(const struct vq *q);

/* Begin a pass over the queue: at most num pops until the next vq_pass.
 * The guest offers at most num at a time; a guest whose used ring overlaps
 * its avail ring raises avail->idx with our own pushes, and would keep one
 * pass going for ever.  What is left waits for its next kick. */
void vq_pass(struct vq *q);
/* Take the next chain: 1 and *c filled, 0 when the guest offered none
 * (or this pass has had its num),
 * -EBADMSG when the chain is malformed (its head is consumed: push it
 * back with length 0), -EIO when the queue itself is corrupt (q->broken:
 * it is not looked at again until QEMU sets it up anew). */
int vq_pop(struct vq *q, const struct vm_mem *m, struct vq_chain *c);
/* Give back the chain popped last, untouched. */
void vq_unpop(struct vq *q);
/* Return a chain to the guest with len bytes written into it. */
void vq_push(struct vq *q, uint16_t head, uint32_t len);
/* Interrupt the guest if anything was pushed and it has not opted out. */
void vq_signal(struct vq *q);

/* Copy between a chain's segments (at byte offset off of its readable,
 * resp. writable, part) and a flat buffer; return the bytes copied. */
size_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst, size_t n);
size_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *src, size_t n);

#endif
