/* SPDX-License-Identifier: MIT */
/*
 * v4v-vm's view of a hostile guest: the virtqueue reader and the
 * virtio-vsock packet parser over an arbitrary guest memory image.
 *
 * Input: a 16-byte prologue, then the guest memory image.
 *   u8  log2 of the queue size (mod 9: 1..256)
 *   u8  where the image splits into two regions (0: one region), in 1/256ths
 *   u16 last_avail to start from
 *   u32 x3: offsets of the descriptor table, avail ring and used ring
 *       (taken modulo the image size, rounded down to their alignment)
 *   u32 unused
 * The second region is placed in guest-physical space with a gap after
 * the first, so a buffer straddling them must be refused.
 *
 * Invariants: every segment of a chain lies inside one region of the image
 * (an exact-size heap block, so ASan catches any stray access), the
 * readable and writable lengths add up, a parsed packet's payload lies
 * inside the chain and is copied exactly, writes into the chain stay in its
 * writable part, and the walk stops (no more pops than the guest offered).
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "vm/mem.h"
#include "vm/pkt.h"
#include "vm/vq.h"

#define GUEST_CID 7u
#define GPA0	  0x100000ull
#define GAP	  0x1000ull
#define UVA_DELTA 0x7f0000000000ull

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static void check_chain(const struct vq_chain *c, const uint8_t *img, size_t size)
{
	uint64_t r = 0, w = 0;
	CHECK(c->nseg <= VQ_MAX_SEGS && c->nread <= c->nseg);
	for (unsigned i = 0; i < c->nseg; i++) {
		const uint8_t *b = c->seg[i].iov_base;
		CHECK(b >= img && b <= img + size);
		CHECK(c->seg[i].iov_len <= (size_t)(img + size - b));
		*(i < c->nread ? &r : &w) += c->seg[i].iov_len;
	}
	CHECK(r == c->rlen && w == c->wlen);
}

static void use_chain(const struct vq_chain *c)
{
	struct vsock_hdr h;
	enum pkt_err e = pkt_parse(c, GUEST_CID, &h);
	if (e == PKT_OK) {
		CHECK(h.len <= VSOCK_MAX_PAYLOAD && VSOCK_HDR_SIZE + (uint64_t)h.len <= c->rlen);
		uint8_t *buf = malloc(h.len ? h.len : 1);
		CHECK(buf);
		CHECK(vq_chain_read(c, VSOCK_HDR_SIZE, buf, h.len) == h.len);
		free(buf);
		CHECK(pkt_cid_domid(h.dst_cid) >= 0);
	}
	(void)pkt_err_wants_rst(e, &h);
	CHECK(pkt_err_str(e) != NULL);
	/* The receive direction: a header and a payload into writable bytes. */
	size_t n = c->wlen < 4096 ? (size_t)c->wlen : 4096;
	uint8_t out[4096];
	memset(out, 0xa5, n);
	CHECK(vq_chain_write(c, 0, out, n) == n);
	CHECK(vq_chain_write(c, c->wlen, out, n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 16 + 64)
		return 0;
	size_t isize = size - 16;
	uint8_t *img = malloc(isize);
	CHECK(img);
	memcpy(img, data + 16, isize);

	struct vm_mem m = {0};
	size_t split = (size_t)data[1] * isize / 256;
	if (split == 0 || split == isize) {
		CHECK(vm_mem_add(&m, GPA0, isize, GPA0 + UVA_DELTA, img) == 0);
	} else {
		CHECK(vm_mem_add(&m, GPA0, split, GPA0 + UVA_DELTA, img) == 0);
		uint64_t g1 = GPA0 + split + GAP;
		CHECK(vm_mem_add(&m, g1, isize - split, g1 + UVA_DELTA, img + split) == 0);
	}
	CHECK(vm_mem_gpa(&m, GPA0 + isize + 2 * GAP, 1) == NULL);
	CHECK(vm_mem_gpa(&m, GPA0, 0) == img);

	struct vq q;
	vq_init(&q);
	q.num = 1u << (data[0] % 9);
	memcpy(&q.last_avail, data + 2, 2);
	q.used_idx = q.last_avail;
	q.desc_uva = GPA0 + UVA_DELTA + (rd32(data + 4) % isize & ~15u);
	q.avail_uva = GPA0 + UVA_DELTA + (rd32(data + 8) % isize & ~3u);
	q.used_uva = GPA0 + UVA_DELTA + (rd32(data + 12) % isize & ~3u);
	q.enabled = true;
	if (vq_map(&q, &m) == 0) {
		struct vq_chain c;
		unsigned pops = 0;
		vq_pass(&q);
		for (;;) {
			int r = vq_pop(&q, &m, &c);
			if (r == 0 || r == -EIO)
				break;
			CHECK(++pops <= q.num); /* the guest offered at most num */
			CHECK(c.head < q.num);
			if (r == 1) {
				check_chain(&c, img, isize);
				use_chain(&c);
			}
			vq_push(&q, c.head, 0);
		}
		vq_signal(&q); /* no call fd: only the flag read */
	}
	vm_mem_clear(&m);
	free(img);
	return 0;
}
