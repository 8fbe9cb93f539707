/* SPDX-License-Identifier: MIT */
/*
 * The wire formats v4v-vm speaks with QEMU and with the guest, in one place.
 *
 * vhost-user (QEMU <-> v4v-vm, a Unix stream socket): every message is a
 * 12-byte header {request u32, flags u32, size u32} and `size` payload
 * bytes; file descriptors ride along as SCM_RIGHTS.  flags carries the
 * protocol version (1) in its low two bits and VHOST_USER_REPLY on
 * replies.  Only the subset a vsock device needs is implemented (see
 * docs/ARCHITECTURE.md, "VMs"): features, owner, memory table, vring
 * setup, enable and the device config (the guest CID).
 *
 * The split virtqueue (the guest's memory, hostile): a descriptor table of
 * `num` 16-byte entries, the avail ring {flags u16, idx u16, ring[num] u16}
 * written by the guest, the used ring {flags u16, idx u16, ring[num]
 * {id u32, len u32}} written by the device.  All little-endian.
 *
 * virtio-vsock: each packet is a 44-byte header followed by `len` payload
 * bytes.  Queue 0 carries packets to the guest (rx), queue 1 from it (tx);
 * the event queue (2) stays in QEMU.
 */
#ifndef V4V_VM_WIRE_H
#define V4V_VM_WIRE_H

#include <assert.h>
#include <stdint.h>

/* ---- vhost-user ---------------------------------------------------------- */

enum {
	VHU_GET_FEATURES = 1,
	VHU_SET_FEATURES = 2,
	VHU_SET_OWNER = 3,
	VHU_RESET_OWNER = 4,
	VHU_SET_MEM_TABLE = 5,
	VHU_SET_VRING_NUM = 8,
	VHU_SET_VRING_ADDR = 9,
	VHU_SET_VRING_BASE = 10,
	VHU_GET_VRING_BASE = 11,
	VHU_SET_VRING_KICK = 12,
	VHU_SET_VRING_CALL = 13,
	VHU_SET_VRING_ERR = 14,
	VHU_GET_PROTOCOL_FEATURES = 15,
	VHU_SET_PROTOCOL_FEATURES = 16,
	VHU_GET_QUEUE_NUM = 17,
	VHU_SET_VRING_ENABLE = 18,
	VHU_GET_CONFIG = 24,
	VHU_SET_CONFIG = 25,
};

#define VHU_VERSION	    0x1u
#define VHU_VERSION_MASK    0x3u
#define VHU_FLAG_REPLY	    0x4u
#define VHU_FLAG_NEED_REPLY 0x8u
#define VHU_HDR_SIZE	    12u
#define VHU_MAX_PAYLOAD	    4096u /* more than any message we accept needs */
#define VHU_MAX_FDS	    8u
#define VHU_MAX_REGIONS	    8u
#define VHU_VRING_NOFD	    0x100u /* in a KICK/CALL/ERR u64: no fd attached */
#define VHU_VRING_IDX_MASK  0xffu
#define VHU_CONFIG_MAX	    256u

/* feature bits (virtio and vhost-user) */
#define VIRTIO_F_VERSION_1	       32
#define VHOST_USER_F_PROTOCOL_FEATURES 30
#define VIRTIO_VSOCK_F_SEQPACKET       1
#define VHOST_USER_PROTOCOL_F_CONFIG   9

struct vhu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
};

struct vhu_region {
	uint64_t guest_addr;
	uint64_t size;
	uint64_t user_addr; /* QEMU's address of the region: vring addresses use it */
	uint64_t mmap_offset;
};

struct vhu_mem {
	uint32_t nregions;
	uint32_t pad;
	struct vhu_region region[VHU_MAX_REGIONS];
};

struct vhu_state {
	uint32_t index;
	uint32_t num;
};

struct vhu_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc; /* all three are QEMU user addresses */
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vhu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t payload[VHU_CONFIG_MAX];
};

static_assert(sizeof(struct vhu_hdr) == VHU_HDR_SIZE, "vhost-user header");
static_assert(sizeof(struct vhu_region) == 32, "vhost-user memory region");
static_assert(sizeof(struct vhu_mem) == 8 + 32 * VHU_MAX_REGIONS, "vhost-user memory table");
static_assert(sizeof(struct vhu_addr) == 40, "vhost-user vring address");
static_assert(sizeof(struct vhu_config) == 12 + VHU_CONFIG_MAX, "vhost-user config");

/* ---- split virtqueue ----------------------------------------------------- */

#define VQ_MAX_SIZE		   32768u
#define VRING_DESC_F_NEXT	   1u
#define VRING_DESC_F_WRITE	   2u
#define VRING_DESC_F_INDIRECT	   4u
#define VRING_AVAIL_F_NO_INTERRUPT 1u

struct vring_desc {
	uint64_t addr; /* guest-physical */
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

static_assert(sizeof(struct vring_desc) == 16, "vring descriptor");
static_assert(sizeof(struct vring_used_elem) == 8, "vring used element");

/* ---- virtio-vsock ---------------------------------------------------------- */

#define VSOCK_CID_HYPERVISOR 0u
#define VSOCK_CID_LOCAL	     1u
#define VSOCK_CID_HOST	     2u
#define VSOCK_CID_OFFSET     2u /* cid = domid + 2 */

#define VSOCK_TYPE_STREAM    1u
#define VSOCK_TYPE_SEQPACKET 2u

enum {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_SEQ_EOM 1u /* RW flags: the last packet of a message */
#define VSOCK_SEQ_EOR 2u /* ... and of a record */

#define VSOCK_SHUTDOWN_RCV  1u /* the sender will receive no more */
#define VSOCK_SHUTDOWN_SEND 2u /* the sender will send no more */

#define VSOCK_HDR_SIZE	  44u
#define VSOCK_MAX_PAYLOAD (64u << 10) /* the largest packet a guest may send */

/* Decoded header, host byte order (the wire is packed little-endian). */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags;
	uint32_t buf_alloc, fwd_cnt;
};

#endif
