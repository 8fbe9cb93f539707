/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock packets: decoding a packet the guest put on its tx queue
 * (hostile: every field is checked before anything acts on it) and
 * encoding one into a receive buffer the guest posted.
 */
#ifndef V4V_VM_PKT_H
#define V4V_VM_PKT_H

#include <stdint.h>

#include "vm/vq.h"
#include "vm/wire.h"

/* Why a guest packet is refused. */
enum pkt_err {
	PKT_OK = 0,
	PKT_SHORT,    /* fewer than 44 readable bytes: dropped */
	PKT_TOO_LONG, /* len past the chain or past 64 KiB: dropped */
	PKT_SPOOFED,  /* src_cid is not the guest's: dropped */
	PKT_BAD_TYPE, /* not a stream or seqpacket: answered with RST */
	PKT_BAD_OP,   /* unknown op, or payload on a non-RW op: answered with RST */
	PKT_BAD_DST,  /* cid 0, 1, the guest's own, or past the last domid: RST */
};

/* Decode and check the header of a tx chain against the guest's cid. */
enum pkt_err pkt_parse(const struct vq_chain *c, uint64_t guest_cid, struct vsock_hdr *h);
/* Whether a refused packet deserves an RST back (never for an RST). */
int pkt_err_wants_rst(enum pkt_err e, const struct vsock_hdr *h);
const char *pkt_err_str(enum pkt_err e);

void pkt_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_SIZE]);
void pkt_decode(const uint8_t in[VSOCK_HDR_SIZE], struct vsock_hdr *h);

/* The v4v domain a cid names, or -1 when it names none. */
int pkt_cid_domid(uint64_t cid);

#endif
