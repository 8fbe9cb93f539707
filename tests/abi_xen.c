/* SPDX-License-Identifier: MIT */
/* v4v's shared structures are Xen Argo's, byte for byte: compile both
 * headers side by side and assert every size, offset and constant. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <xen/xen.h>
#include <xen/argo.h>

#include "t.h"
#include "v4v/abi.h"

#define SAME_SIZE(a, b) _Static_assert(sizeof(a) == sizeof(b), "size of " #a)
#define SAME_OFF(a, fa, b, fb)                                                                     \
	_Static_assert(offsetof(a, fa) == offsetof(b, fb), "offset of " #a "." #fa)

SAME_SIZE(struct v4v_addr, xen_argo_addr_t);
SAME_OFF(struct v4v_addr, aport, xen_argo_addr_t, aport);
SAME_OFF(struct v4v_addr, domain_id, xen_argo_addr_t, domain_id);
SAME_OFF(struct v4v_addr, pad, xen_argo_addr_t, pad);

SAME_SIZE(struct v4v_ring, xen_argo_ring_t);
SAME_OFF(struct v4v_ring, rx_ptr, xen_argo_ring_t, rx_ptr);
SAME_OFF(struct v4v_ring, tx_ptr, xen_argo_ring_t, tx_ptr);
SAME_OFF(struct v4v_ring, reserved, xen_argo_ring_t, reserved);
SAME_OFF(struct v4v_ring, ring, xen_argo_ring_t, ring);

SAME_SIZE(struct v4v_ring_message_header, struct xen_argo_ring_message_header);
SAME_OFF(struct v4v_ring_message_header, len, struct xen_argo_ring_message_header, len);
SAME_OFF(struct v4v_ring_message_header, source, struct xen_argo_ring_message_header, source);
SAME_OFF(struct v4v_ring_message_header, message_type, struct xen_argo_ring_message_header,
	 message_type);
SAME_OFF(struct v4v_ring_message_header, data, struct xen_argo_ring_message_header, data);

SAME_SIZE(struct v4v_ring_data_ent, xen_argo_ring_data_ent_t);
SAME_OFF(struct v4v_ring_data_ent, ring, xen_argo_ring_data_ent_t, ring);
SAME_OFF(struct v4v_ring_data_ent, flags, xen_argo_ring_data_ent_t, flags);
SAME_OFF(struct v4v_ring_data_ent, pad, xen_argo_ring_data_ent_t, pad);
SAME_OFF(struct v4v_ring_data_ent, space_required, xen_argo_ring_data_ent_t, space_required);
SAME_OFF(struct v4v_ring_data_ent, max_message_size, xen_argo_ring_data_ent_t, max_message_size);

SAME_SIZE(struct v4v_register_ring, xen_argo_register_ring_t);
SAME_OFF(struct v4v_register_ring, aport, xen_argo_register_ring_t, aport);
SAME_OFF(struct v4v_register_ring, partner_id, xen_argo_register_ring_t, partner_id);
SAME_OFF(struct v4v_register_ring, pad, xen_argo_register_ring_t, pad);
SAME_OFF(struct v4v_register_ring, len, xen_argo_register_ring_t, len);

_Static_assert(V4V_DOMID_ANY == XEN_ARGO_DOMID_ANY, "DOMID_ANY");
_Static_assert(V4V_DOMID_MAX == DOMID_FIRST_RESERVED - 1, "DOMID_MAX");
_Static_assert(V4V_RING_MAX_LEN == XEN_ARGO_MAX_RING_SIZE, "max ring");
_Static_assert(V4V_MSG_SLOT == XEN_ARGO_MSG_SLOT_SIZE, "slot");
_Static_assert(V4V_MAX_IOV == XEN_ARGO_MAXIOV, "iovs");
_Static_assert(V4V_REGISTER_FAIL_EXIST == XEN_ARGO_REGISTER_FLAG_FAIL_EXIST, "flag");
_Static_assert(V4V_RING_EXISTS == XEN_ARGO_RING_EXISTS, "EXISTS");
_Static_assert(V4V_RING_SHARED == XEN_ARGO_RING_SHARED, "SHARED");
_Static_assert(V4V_RING_EMPTY == XEN_ARGO_RING_EMPTY, "EMPTY");
_Static_assert(V4V_RING_SUFFICIENT == XEN_ARGO_RING_SUFFICIENT, "SUFFICIENT");
_Static_assert(V4V_RING_EMSGSIZE == XEN_ARGO_RING_EMSGSIZE, "EMSGSIZE");
_Static_assert(V4V_RING_EBUSY == XEN_ARGO_RING_EBUSY, "EBUSY");

static void layout(void)
{
	/* The asserts above are the test; this proves the file was built. */
	printf("v4v ABI matches xen/argo.h: ring %zu, msg hdr %zu, ring data ent %zu\n",
	       sizeof(xen_argo_ring_t), sizeof(struct xen_argo_ring_message_header),
	       sizeof(xen_argo_ring_data_ent_t));
}

static const struct t_case cases[] = {
    T_CASE(layout),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
