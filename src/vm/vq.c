/* SPDX-License-Identifier: MIT */
/* The device side of a split virtqueue over hostile guest memory (vq.h). */
#define _GNU_SOURCE
#include "vm/vq.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/barrier.h"

void vq_init(struct vq *q)
{
	memset(q, 0, sizeof(*q));
	q->kick_fd = q->call_fd = -1;
}

/* The avail ring's first word is {flags u16, idx u16}, the used ring's the
 * same; vq_map insists both are 4-byte aligned so each can be read or
 * written as one u32 word through barrier.h (little-endian host). */
int vq_map(struct vq *q, const struct vm_mem *m)
{
	uint64_t n = q->num;
	vq_unmap(q);
	if (n == 0 || n > VQ_MAX_SIZE || (n & (n - 1)))
		return -EINVAL;
	if (q->desc_uva % 16 || q->avail_uva % 4 || q->used_uva % 4)
		return -EINVAL;
	q->desc = vm_mem_uva(m, q->desc_uva, 16 * n);
	q->avail = vm_mem_uva(m, q->avail_uva, 4 + 2 * n);
	q->used = vm_mem_uva(m, q->used_uva, 4 + 8 * n);
	if (!q->desc || !q->avail || !q->used) {
		vq_unmap(q);
		return -EINVAL;
	}
	q->broken = false;
	return 0;
}

void vq_unmap(struct vq *q)
{
	q->desc = NULL;
	q->avail = q->used = NULL;
}

bool vq_ready(const struct vq *q)
{
	return q->desc && q->enabled && !q->broken && q->kick_fd >= 0;
}

static int chain_add(struct vq_chain *c, const struct vm_mem *m, const struct vring_desc *d)
{
	bool w = d->flags & VRING_DESC_F_WRITE;
	if (d->flags & VRING_DESC_F_INDIRECT)
		return -EBADMSG;
	if (!w && c->wlen)
		return -EBADMSG; /* readable after writable */
	if (d->len == 0)
		return 0;
	void *p = vm_mem_gpa(m, d->addr, d->len);
	if (!p || c->nseg == VQ_MAX_SEGS)
		return -EBADMSG;
	c->seg[c->nseg++] = (struct iovec){.iov_base = p, .iov_len = d->len};
	if (w) {
		c->wlen += d->len;
	} else {
		c->rlen += d->len;
		c->nread = c->nseg;
	}
	return 0;
}

/* Copy descriptor i out of the table once; the guest may change it later. */
static void desc_read(const struct vq *q, uint16_t i, struct vring_desc *d)
{
	memcpy(d, q->desc + 16 * (size_t)i, sizeof(*d));
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
}

static int walk(const struct vq *q, const struct vm_mem *m, struct vq_chain *c)
{
	uint16_t i = c->head;
	for (uint32_t count = 0; count < q->num; count++) {
		struct vring_desc d;
		desc_read(q, i, &d);
		int e = chain_add(c, m, &d);
		if (e)
			return e;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 1;
		if (d.next >= q->num)
			return -EBADMSG;
		i = d.next;
	}
	return -EBADMSG; /* longer than the table: a loop */
}

void vq_pass(struct vq *q)
{
	q->pass_left = q->num;
}

int vq_pop(struct vq *q, const struct vm_mem *m, struct vq_chain *c)
{
	if (!q->desc || q->broken)
		return -EIO;
	if (!q->pass_left)
		return 0; /* this pass is done (vq_pass) */
	/* Pairs with the guest's write barrier between filling avail->ring
	 * and bumping avail->idx: the entries below idx are then visible. */
	uint16_t idx = (uint16_t)(v4v_load_acquire((const uint32_t *)q->avail) >> 16);
	uint16_t pending = (uint16_t)(idx - q->last_avail);
	if (pending == 0)
		return 0;
	if (pending > q->num) {
		q->broken = true;
		return -EIO;
	}
	uint16_t head;
	memcpy(&head, q->avail + 4 + 2 * (size_t)(q->last_avail % q->num), 2);
	head = le16toh(head);
	if (head >= q->num) {
		q->broken = true; /* nothing we could even hand back */
		return -EIO;
	}
	q->last_avail++;
	q->pass_left--;
	memset(c, 0, offsetof(struct vq_chain, seg));
	c->head = head;
	c->rlen = c->wlen = 0;
	return walk(q, m, c);
}

void vq_unpop(struct vq *q)
{
	q->last_avail--;
	q->pass_left++;
}

void vq_push(struct vq *q, uint16_t head, uint32_t len)
{
	struct vring_used_elem e = {.id = htole32(head), .len = htole32(len)};
	memcpy(q->used + 4 + 8 * (size_t)(q->used_idx % q->num), &e, sizeof(e));
	q->used_idx++;
	/* Publish: the element (and the bytes written into the buffer) before
	 * the index; pairs with the guest's read barrier after it reads
	 * used->idx.  Our used->flags word is always 0 (no kick suppression). */
	v4v_store_release((uint32_t *)q->used, htole32((uint32_t)q->used_idx << 16));
	q->need_signal = true;
}

void vq_signal(struct vq *q)
{
	if (!q->need_signal || !q->avail)
		return;
	q->need_signal = false;
	/* Store-load: our used->idx store before reading avail->flags, as the
	 * guest orders its flags store before re-reading used->idx. */
	v4v_fence();
	uint16_t flags = (uint16_t)v4v_load_relaxed((const uint32_t *)q->avail);
	if ((flags & VRING_AVAIL_F_NO_INTERRUPT) || q->call_fd < 0)
		return;
	uint64_t one = 1;
	if (write(q->call_fd, &one, sizeof(one)) < 0) {
		/* an eventfd at its maximum is already signalled */
	}
}

static size_t chain_copy(const struct vq_chain *c, unsigned first, unsigned end, uint64_t off,
			 uint8_t *flat, size_t n, bool to_chain)
{
	size_t done = 0;
	for (unsigned i = first; i < end && done < n; i++) {
		size_t l = c->seg[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		size_t k = l - (size_t)off;
		if (k > n - done)
			k = n - done;
		uint8_t *g = (uint8_t *)c->seg[i].iov_base + off;
		if (to_chain)
			memcpy(g, flat + done, k);
		else
			memcpy(flat + done, g, k);
		done += k;
		off = 0;
	}
	return done;
}

size_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst, size_t n)
{
	return chain_copy(c, 0, c->nread, off, dst, n, false);
}

size_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *src, size_t n)
{
	return chain_copy(c, c->nread, c->nseg, off, (uint8_t *)src, n, true);
}
