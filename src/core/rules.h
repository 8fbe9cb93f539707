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

/* Resolve a domain name to a domid; -ENOENT when unknown. */
typedef int (*v4v_resolve_fn)(void *ctx, const char *name, uint16_t *domid);

/* Split line in place on blanks; returns the count or -E2BIG past max. */
int v4v_tokenize(char *line, char **argv, int max);

/* [--src DOM[:PORT]] [--dst DOM[:PORT]] accept|reject|drop
 * DOM: a domid, `any`, or (with resolve) a domain name. PORT: number|any. */
int v4v_rule_parse(int argc, char *const argv[], v4v_resolve_fn resolve, void *ctx,
		   struct hv_fw_rule *out, char *err, size_t errlen);
int v4v_action_parse(const char *s, enum hv_fw_action *a);
const char *v4v_action_name(enum hv_fw_action a);
/* "any", "5" or "5:80", "any:80". */
void v4v_endpoint_format(char *buf, size_t cap, uint16_t dom, uint32_t port);

struct v4v_config {
	struct hv_limits lim;
	enum hv_fw_action policy;
	unsigned nrules;
	struct hv_fw_rule rules[HV_FW_MAX_RULES];
};

/* Parse a whole config text over the defaults already in cfg.
 * Returns 0, or -EINVAL with "line N: ..." in err. */
int v4v_config_parse(const char *text, struct v4v_config *cfg, char *err, size_t errlen);

#endif
