/* SPDX-License-Identifier: MIT */
/* The shortest path through the system: one datagram between two domains. */
#include <string.h>

#include "t.h"

static void hello(void)
{
	t_v4vd_start(NULL);
	struct v4v_domain *a = t_domain("a"), *b = t_domain("b");
	struct v4v_rx *r;
	CHECK_EQ(v4v_ring_register(b, 80, V4V_DOMID_ANY, 4096, 0, &r), 0);
	struct v4v_addr dst = {.aport = 80, .domain_id = v4v_domid(b)};
	struct iovec iov = {"hello", 5};
	CHECK_EQ(v4v_sendv(a, 1234, &dst, &iov, 1, 7), 5);
	CHECK(t_wait_virq(b, 1000));
	struct v4v_msg m;
	CHECK_EQ(v4v_rx_peek(r, &m), 1);
	CHECK_EQ(m.len, 5);
	CHECK_EQ(m.source.domain_id, v4v_domid(a));
	CHECK_EQ(m.source.aport, 1234);
	char buf[8] = {0};
	v4v_msg_read(&m, buf, sizeof buf);
	CHECK(strcmp(buf, "hello") == 0);
	/* v4vd's view: rx as last read by v4vd, tx after one 32-byte slot */
	char *rings = t_ctl("rings");
	CHECK(strstr(rings, "\tany\t4096\t0\t32\t"));
	free(rings);
	v4v_rx_consume(r, &m);
	CHECK_EQ(v4v_ring_unregister(r), 0);
	v4v_close(a);
	v4v_close(b);
}
static const struct t_case cases[] = {
    T_CASE(hello),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
