/* SPDX-License-Identifier: MIT */
/*
 * Names: (domain, service) -> port, visible to any domain or to an ACL.
 */
#include "hv_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool hv_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= V4V_NAME_MAX || (s[0] >= '0' && s[0] <= '9') || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

static struct hv_name *name_find(const struct hv *hv, uint16_t domid, const char *service)
{
	for (unsigned i = 0; i < hv->nnames; i++)
		if (hv->names[i].domid == domid && strcmp(hv->names[i].service, service) == 0)
			return &hv->names[i];
	return NULL;
}

int hv_name_register(struct hv *hv, struct hv_domain *d, const char *service, v4v_port_t port,
		     const uint16_t *acl, unsigned nacl)
{
	if (!hv_name_ok(service) || nacl > HV_NAME_ACL_MAX)
		return -EINVAL;
	struct hv_name *n = name_find(hv, d->domid, service);
	if (n)
		return -EEXIST;
	if (d->nnames >= hv->lim.names_per_domain)
		return -ENOSPC;
	if (hv->nnames == hv->names_cap) {
		unsigned cap = hv->names_cap ? hv->names_cap * 2 : 16;
		struct hv_name *nn = realloc(hv->names, cap * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		hv->names = nn;
		hv->names_cap = cap;
	}
	n = &hv->names[hv->nnames++];
	*n = (struct hv_name){.domid = d->domid, .port = port, .nacl = nacl};
	strcpy(n->service, service);
	memcpy(n->acl, acl, nacl * sizeof(*acl));
	d->nnames++;
	return 0;
}

static void name_remove(struct hv *hv, struct hv_name *n)
{
	hv->dom[n->domid]->nnames--;
	*n = hv->names[--hv->nnames];
}

int hv_name_unregister(struct hv *hv, struct hv_domain *d, const char *service)
{
	struct hv_name *n = name_find(hv, d->domid, service);
	if (!n)
		return -ENOENT;
	name_remove(hv, n);
	return 0;
}

void hv__names_drop(struct hv *hv, uint16_t domid)
{
	for (unsigned i = 0; i < hv->nnames;) {
		if (hv->names[i].domid == domid)
			name_remove(hv, &hv->names[i]);
		else
			i++;
	}
}

static bool name_visible(const struct hv_name *n, const struct hv_domain *asker)
{
	if (!asker || n->nacl == 0 || asker->domid == n->domid)
		return true;
	for (unsigned i = 0; i < n->nacl; i++)
		if (n->acl[i] == asker->domid)
			return true;
	return false;
}

int hv_name_lookup(struct hv *hv, const struct hv_domain *asker, uint16_t domid,
		   const char *service, v4v_port_t *port)
{
	const struct hv_name *n = name_find(hv, domid, service);
	/* Hidden and absent look the same, so an ACL leaks nothing. */
	if (!n || !name_visible(n, asker))
		return -ENOENT;
	*port = n->port;
	return 0;
}

int hv_name_at(const struct hv *hv, unsigned i, struct hv_name_info *out)
{
	if (i >= hv->nnames)
		return -ENOENT;
	const struct hv_name *n = &hv->names[i];
	*out = (struct hv_name_info){.domid = n->domid, .port = n->port, .nacl = n->nacl};
	memcpy(out->service, n->service, sizeof(out->service));
	memcpy(out->acl, n->acl, sizeof(out->acl));
	return 0;
}
