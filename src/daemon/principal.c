/* SPDX-License-Identifier: MIT */
/*
 * Domains are principals on the host: each one's processes run under a
 * uid (and gid = uid) of its own, so the kernel keeps them apart (signals,
 * ptrace, /proc, files) as it keeps users apart.  The uid is a pure
 * function of the domid, first + domid in the configured domain_uids
 * range, so it is unique among live domains, stable across v4vd restarts
 * and needs no table.  v4vd only names the uid (in the `domain create` and
 * `domain open` replies and in `domains`); v4v-run switches to it before
 * it execs the domain's program.  See docs/SECURITY.md.
 */
#include <errno.h>

#include "v4vd.h"

void v4vd_principal_init(struct v4vd *s, const struct v4v_config *cfg)
{
	bool set = cfg->uid_last != 0;
	s->uid_first = set ? cfg->uid_first : V4V_DOMAIN_UID_FIRST;
	s->uid_last = set ? cfg->uid_last : V4V_DOMAIN_UID_LAST;
}

int v4vd_domain_uid(const struct v4vd *s, uint16_t domid, uint32_t *uid)
{
	if (domid > s->uid_last - s->uid_first)
		return -EUSERS;
	*uid = s->uid_first + domid;
	return 0;
}

unsigned v4vd_uid_domids(const struct v4vd *s)
{
	uint32_t n = s->uid_last - s->uid_first;
	return n > V4V_DOMID_MAX ? V4V_DOMID_MAX : (unsigned)n;
}
