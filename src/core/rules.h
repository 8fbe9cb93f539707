/* SPDX-License-Identifier: MIT */
/*
 * Text forms shared by v4vctl, the control socket and v4vd.conf: firewall
 * rules and the config file.  Pure parsers (fuzzed by fuzz/fuzz_config.c);
 * each failure writes one precise sentence into err.
 */
#ifndef V4V_RULES_H
#define V4V_RULES_H

#include <stddef.h>

#include "hv.h"

/* Split line in place on blanks; returns the count or -E2BIG past max. */
int v4v_tokenize(char *line, char **argv, int max);

/* [--src DOM[:PORT]] [--dst DOM[:PORT]] accept|reject|drop
 * DOM: a domid, `any`, or a domain name, kept as a name (hv_fw_rule).
 * PORT: number|any. */
int v4v_rule_parse(int argc, char *const argv[], struct hv_fw_rule *out, char *err, size_t errlen);
int v4v_action_parse(const char *s, enum hv_fw_action *a);
const char *v4v_action_name(enum hv_fw_action a);
/* "any", "5", "5:80", "any:80", "web:80": name (when not "") before dom. */
void v4v_endpoint_format(char *buf, size_t cap, uint16_t dom, const char *name, uint32_t port);

/* domain_uids: the host uids (gid = uid) domains run as; domain N gets
 * first + N.  The default is systemd's dynamic-user range. */
#define V4V_DOMAIN_UID_FIRST 61184u
#define V4V_DOMAIN_UID_LAST  65519u

/* fds_per_domain: fds v4vd holds for one domain (domain fds, channels
 * and VIRQs, doorbells); the shell enforces it, -EMFILE past it. */
#define V4V_FDS_PER_DOMAIN 512u

#define V4V_GROUP_MAX 33u /* a group name, including NUL */

struct v4v_config {
	struct hv_limits lim;
	uint32_t fds_per_domain;      /* the shell's; 0 until set: the default */
	uint32_t uid_first, uid_last; /* domain_uids; 0-0 until set: the default */
	/* query_group: who may use the query socket (a group name or gid,
	 * "none"); "" until set: the v4v group, if it exists (v4vd.conf(5)). */
	char query_group[V4V_GROUP_MAX];
	enum hv_fw_action policy;
	unsigned nrules;
	struct hv_fw_rule rules[HV_FW_MAX_RULES];
};

/* "FIRST-LAST", 1 <= FIRST <= LAST, not touching 0, 65534 or 65535. */
int v4v_uid_range_parse(const char *s, uint32_t *first, uint32_t *last, char *err, size_t errlen);

/* Parse a whole config text over the defaults already in cfg.
 * Returns 0, or -EINVAL with "line N: ..." in err. */
int v4v_config_parse(const char *text, struct v4v_config *cfg, char *err, size_t errlen);

#endif
