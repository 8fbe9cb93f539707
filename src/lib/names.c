/* SPDX-License-Identifier: MIT */
/* The name service: (domain, service) -> port, kept by v4vd. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "core/hv.h"
#include "lib.h"

static long name_call(struct v4v_domain *d, struct v4v_req_name *q, struct v4v_name_reply *r)
{
	long e = v4v__enter(d);
	if (e)
		return e;
	e = v4v__call(d, q, sizeof(*q), -1, r, sizeof(*r), NULL);
	v4v__leave(d);
	return e;
}

static int set_service(struct v4v_req_name *q, const char *service)
{
	if (strlen(service) >= sizeof(q->service))
		return -EINVAL;
	strcpy(q->service, service);
	return 0;
}

int v4v_name_register(struct v4v_domain *d, const char *service, v4v_port_t port,
		      const uint16_t *acl, unsigned nacl)
{
	struct v4v_req_name q = {.h = {.op = V4V_OP_NAME_REGISTER}, .port = port};
	struct v4v_name_reply r;
	if (nacl > ARRAY_SIZE(q.acl) || set_service(&q, service))
		return -EINVAL;
	q.nacl = (uint16_t)nacl;
	if (nacl)
		memcpy(q.acl, acl, nacl * sizeof(*acl));
	return (int)name_call(d, &q, &r);
}

int v4v_name_unregister(struct v4v_domain *d, const char *service)
{
	struct v4v_req_name q = {.h = {.op = V4V_OP_NAME_UNREGISTER}};
	struct v4v_name_reply r;
	if (set_service(&q, service))
		return -EINVAL;
	return (int)name_call(d, &q, &r);
}

int v4v_name_lookup(struct v4v_domain *d, const char *domain, const char *service,
		    struct v4v_addr *out)
{
	struct v4v_req_name q = {.h = {.op = V4V_OP_NAME_LOOKUP}, .domid = V4V_DOMID_ANY};
	struct v4v_name_reply r;
	uint64_t v;
	if (set_service(&q, service) || strlen(domain) >= sizeof(q.domain))
		return -EINVAL;
	if (v4v_parse_u64(domain, 0, V4V_DOMID_MAX, &v))
		q.domid = (uint16_t)v;
	else
		strcpy(q.domain, domain);
	long e = name_call(d, &q, &r);
	if (e < 0)
		return (int)e;
	*out = (struct v4v_addr){.aport = r.port, .domain_id = r.domid};
	return 0;
}

int v4v_domain_resolve(struct v4v_domain *d, const char *domain, uint16_t *domid)
{
	struct v4v_addr a;
	int e = v4v_name_lookup(d, domain, "", &a);
	if (e == 0)
		*domid = a.domain_id;
	return e;
}

bool v4v_name_valid(const char *s)
{
	return hv_name_ok(s); /* the rule v4vd applies, not a copy of it */
}
