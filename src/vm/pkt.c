/* SPDX-License-Identifier: MIT */
/* virtio-vsock packet headers: checked decode, encode (pkt.h). */
#include "vm/pkt.h"

#include <endian.h>
#include <string.h>

#include "v4v/abi.h"

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return le16toh(v);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

void pkt_decode(const uint8_t in[VSOCK_HDR_SIZE], struct vsock_hdr *h)
{
	h->src_cid = get64(in);
	h->dst_cid = get64(in + 8);
	h->src_port = get32(in + 16);
	h->dst_port = get32(in + 20);
	h->len = get32(in + 24);
	h->type = get16(in + 28);
	h->op = get16(in + 30);
	h->flags = get32(in + 32);
	h->buf_alloc = get32(in + 36);
	h->fwd_cnt = get32(in + 40);
}

void pkt_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_SIZE])
{
	put64(out, h->src_cid);
	put64(out + 8, h->dst_cid);
	put32(out + 16, h->src_port);
	put32(out + 20, h->dst_port);
	put32(out + 24, h->len);
	put16(out + 28, h->type);
	put16(out + 30, h->op);
	put32(out + 32, h->flags);
	put32(out + 36, h->buf_alloc);
	put32(out + 40, h->fwd_cnt);
}

int pkt_cid_domid(uint64_t cid)
{
	if (cid < VSOCK_CID_HOST || cid - VSOCK_CID_OFFSET > V4V_DOMID_MAX)
		return -1;
	return (int)(cid - VSOCK_CID_OFFSET);
}

enum pkt_err pkt_parse(const struct vq_chain *c, uint64_t guest_cid, struct vsock_hdr *h)
{
	uint8_t raw[VSOCK_HDR_SIZE];
	memset(h, 0, sizeof(*h));
	if (c->rlen < VSOCK_HDR_SIZE || vq_chain_read(c, 0, raw, sizeof(raw)) != sizeof(raw))
		return PKT_SHORT;
	pkt_decode(raw, h);
	if (h->len > VSOCK_MAX_PAYLOAD || h->len > c->rlen - VSOCK_HDR_SIZE)
		return PKT_TOO_LONG;
	if (h->src_cid != guest_cid)
		return PKT_SPOOFED;
	if (h->type != VSOCK_TYPE_STREAM && h->type != VSOCK_TYPE_SEQPACKET)
		return PKT_BAD_TYPE;
	if (h->op == VSOCK_OP_INVALID || h->op > VSOCK_OP_CREDIT_REQUEST ||
	    (h->len && h->op != VSOCK_OP_RW))
		return PKT_BAD_OP;
	if (h->dst_cid == guest_cid || pkt_cid_domid(h->dst_cid) < 0)
		return PKT_BAD_DST;
	return PKT_OK;
}

int pkt_err_wants_rst(enum pkt_err e, const struct vsock_hdr *h)
{
	return e >= PKT_BAD_TYPE && h->op != VSOCK_OP_RST;
}

const char *pkt_err_str(enum pkt_err e)
{
	static const char *const s[] = {
	    [PKT_OK] = "ok",
	    [PKT_SHORT] = "shorter than a header",
	    [PKT_TOO_LONG] = "payload length past the buffer or 64 KiB",
	    [PKT_SPOOFED] = "source cid is not the guest's",
	    [PKT_BAD_TYPE] = "not a stream or seqpacket packet",
	    [PKT_BAD_OP] = "bad op",
	    [PKT_BAD_DST] = "destination cid names no domain",
	};
	return (unsigned)e < sizeof(s) / sizeof(s[0]) ? s[e] : "?";
}
