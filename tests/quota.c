/* SPDX-License-Identifier: MIT */
/* Every quota, set low through v4vd's config file, then exceeded: a precise
 * error, and the domain (and everyone else) goes on working. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "t.h"

/* Start v4vd with one config line. */
static void start_with(const char *line)
{
	t_v4vd_start_conf(line);
}

static void rings(void)
{
	start_with("rings_per_domain 2");
	struct v4v_domain *d = t_domain("d");
	struct v4v_rx *r[3];
	CHECK_EQ(v4v_ring_register(d, 1, V4V_DOMID_ANY, 48, 0, &r[0]), 0);
	CHECK_EQ(v4v_ring_register(d, 2, V4V_DOMID_ANY, 48, 0, &r[1]), 0);
	CHECK_EQ(v4v_ring_register(d, 3, V4V_DOMID_ANY, 48, 0, &r[2]), -ENOSPC);
	CHECK_EQ(v4v_ring_unregister(r[0]), 0);
	CHECK_EQ(v4v_ring_register(d, 3, V4V_DOMID_ANY, 48, 0, &r[0]), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(v4v_ring_unregister(r[i]), 0);
}

static void ring_bytes(void)
{
	start_with("ring_bytes_per_domain 8192");
	struct v4v_domain *d = t_domain("d"), *e = t_domain("e");
	struct v4v_rx *r[3];
	CHECK_EQ(v4v_ring_register(d, 1, V4V_DOMID_ANY, 4096, 0, &r[0]), 0);
	CHECK_EQ(v4v_ring_register(d, 2, V4V_DOMID_ANY, 4096, 0, &r[1]), 0);
	CHECK_EQ(v4v_ring_register(d, 3, V4V_DOMID_ANY, 48, 0, &r[2]), -ENOSPC);
	/* Per domain: another domain has its own budget. */
	CHECK_EQ(v4v_ring_register(e, 3, V4V_DOMID_ANY, 4096, 0, &r[2]), 0);
	/* A socket's send ring counts too: nothing is left for one here. */
	int s = v4v_socket(d, V4V_SOCK_DGRAM, 0);
	struct v4v_addr any = {.aport = 9, .domain_id = V4V_DOMID_ANY};
	CHECK_EQ(v4v_sock_set_ring_len(s, 48), 0);
	CHECK_EQ(v4v_bind(s, &any), -1);
	CHECK_EQ(errno, ENOSPC);
	CHECK_EQ(v4v_sock_close(s), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(v4v_ring_unregister(r[i]), 0);
}

static void names(void)
{
	start_with("names_per_domain 2");
	struct v4v_domain *d = t_domain("d");
	CHECK_EQ(v4v_name_register(d, "a", 1, NULL, 0), 0);
	CHECK_EQ(v4v_name_register(d, "b", 2, NULL, 0), 0);
	CHECK_EQ(v4v_name_register(d, "c", 3, NULL, 0), -ENOSPC);
	CHECK_EQ(v4v_name_unregister(d, "a"), 0);
	CHECK_EQ(v4v_name_register(d, "c", 3, NULL, 0), 0);
}

static void domains(void)
{
	start_with("domains 2");
	char *err = NULL;
	t_domain("one");
	t_domain("two");
	CHECK(!t_ctl_try(&err, "domain create auto three fd"));
	CHECK(strstr(err, "too many domains (limit 2)"));
	free(err);
	free(t_ctl("domain destroy one"));
	t_domain("three");
}

static void waiters(void)
{
	start_with("waiters_per_ring 2");
	struct v4v_domain *rd = t_domain("r");
	struct v4v_rx *r;
	CHECK_EQ(v4v_ring_register(rd, 1, V4V_DOMID_ANY, 48, 0, &r), 0);
	struct v4v_addr to = {.aport = 1, .domain_id = v4v_domid(rd)};
	char msg[16] = {0};
	struct iovec iov = {msg, sizeof(msg)};
	/* The ring holds one 16-byte message; then each sender waits. */
	struct v4v_domain *s[4];
	for (int i = 0; i < 4; i++)
		s[i] = t_domain(NULL);
	CHECK_EQ(v4v_sendv(s[0], 1, &to, &iov, 1, 0), 16);
	CHECK_EQ(v4v_sendv(s[1], 1, &to, &iov, 1, 0), -EAGAIN);
	CHECK_EQ(v4v_sendv(s[2], 1, &to, &iov, 1, 0), -EAGAIN);
	CHECK_EQ(v4v_sendv(s[3], 1, &to, &iov, 1, 0), -EBUSY);
	CHECK_EQ(v4v_ring_unregister(r), 0);
}

static const struct t_case cases[] = {
    T_CASE(rings), T_CASE(ring_bytes), T_CASE(names), T_CASE(domains), T_CASE(waiters),
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
