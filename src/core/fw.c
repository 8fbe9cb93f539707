/* SPDX-License-Identifier: MIT */
/*
 * The firewall: an ordered rule list, first match wins, else the policy.
 */
#include "hv_priv.h"

#include <errno.h>
#include <string.h>

int hv_fw_insert(struct hv *hv, unsigned pos, const struct hv_fw_rule *r)
{
	if (pos > hv->nfw)
		return -ERANGE;
	if (hv->nfw == HV_FW_MAX_RULES)
		return -ENOSPC;
	if (r->action > HV_FW_DROP || (*r->src_name && !hv_name_ok(r->src_name)) ||
	    (*r->dst_name && !hv_name_ok(r->dst_name)))
		return -EINVAL;
	memmove(&hv->fw[pos + 1], &hv->fw[pos], (hv->nfw - pos) * sizeof(*r));
	hv->fw[pos] = *r;
	hv->fw[pos].hits = 0;
	hv->nfw++;
	return 0;
}

int hv_fw_delete(struct hv *hv, unsigned pos)
{
	if (pos >= hv->nfw)
		return -ERANGE;
	hv->nfw--;
	memmove(&hv->fw[pos], &hv->fw[pos + 1], (hv->nfw - pos) * sizeof(hv->fw[0]));
	return 0;
}

void hv_fw_flush(struct hv *hv)
{
	hv->nfw = 0;
}

unsigned hv_fw_count(const struct hv *hv)
{
	return hv->nfw;
}

const struct hv_fw_rule *hv_fw_rule(const struct hv *hv, unsigned pos)
{
	return pos < hv->nfw ? &hv->fw[pos] : NULL;
}

void hv_fw_set_policy(struct hv *hv, enum hv_fw_action a)
{
	hv->policy = a;
}

enum hv_fw_action hv_fw_policy(const struct hv *hv)
{
	return hv->policy;
}

/* A rule's domain given by name: the live domain domid has it now. */
static bool name_match(struct hv *hv, const char *name, uint16_t domid)
{
	if (!*name)
		return true;
	struct hv_domain *d = hv_domain_find(hv, domid);
	return d && strcmp(d->name, name) == 0;
}

static bool fw_match(struct hv *hv, const struct hv_fw_rule *r, const struct v4v_addr *src,
		     const struct v4v_addr *dst)
{
	return (r->src_dom == V4V_DOMID_ANY || r->src_dom == src->domain_id) &&
	       (r->src_port == V4V_PORT_ANY || r->src_port == src->aport) &&
	       (r->dst_dom == V4V_DOMID_ANY || r->dst_dom == dst->domain_id) &&
	       (r->dst_port == V4V_PORT_ANY || r->dst_port == dst->aport) &&
	       name_match(hv, r->src_name, src->domain_id) &&
	       name_match(hv, r->dst_name, dst->domain_id);
}

enum hv_fw_action hv_fw_check(struct hv *hv, const struct v4v_addr *src, const struct v4v_addr *dst,
			      int *rule)
{
	for (unsigned i = 0; i < hv->nfw; i++)
		if (fw_match(hv, &hv->fw[i], src, dst)) {
			hv->fw[i].hits++;
			if (rule)
				*rule = (int)i;
			return hv->fw[i].action;
		}
	if (rule)
		*rule = -1;
	return hv->policy;
}
