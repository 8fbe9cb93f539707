/* SPDX-License-Identifier: MIT */
/* Parsers for firewall rules and v4vd.conf (rules.h): text in, a struct
 * or one precise sentence out.  Pure; fuzzed by fuzz/fuzz_config.c. */
#include "rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cli.h"
#include "../common/util.h"

int v4v_tokenize(char *line, char **argv, int max)
{
	int n = 0;
	for (char *p = line;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			*p++ = '\0';
		if (!*p)
			return n;
		if (n == max)
			return -E2BIG;
		argv[n++] = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			p++;
	}
}

static const char *const action_names[] = {"accept", "reject", "drop"};

int v4v_action_parse(const char *s, enum hv_fw_action *a)
{
	for (unsigned i = 0; i < ARRAY_SIZE(action_names); i++)
		if (strcmp(s, action_names[i]) == 0) {
			*a = (enum hv_fw_action)i;
			return 0;
		}
	return -EINVAL;
}

const char *v4v_action_name(enum hv_fw_action a)
{
	return (unsigned)a < ARRAY_SIZE(action_names) ? action_names[a] : "?";
}

void v4v_endpoint_format(char *buf, size_t cap, uint16_t dom, const char *name, uint32_t port)
{
	char d[V4V_NAME_MAX] = "any";
	if (name && *name)
		snprintf(d, sizeof(d), "%s", name);
	else if (dom != V4V_DOMID_ANY)
		snprintf(d, sizeof(d), "%u", dom);
	if (port == V4V_PORT_ANY)
		snprintf(buf, cap, "%s", d);
	else
		snprintf(buf, cap, "%s:%u", d, port);
}

static int endpoint_parse(const char *spec, uint16_t *dom, char *name, uint32_t *port, char *err,
			  size_t errlen)
{
	char buf[64];
	uint64_t v;

	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errlen, "endpoint '%.20s...' is too long", spec);
		return -EINVAL;
	}
	strcpy(buf, spec);
	char *colon = strchr(buf, ':');
	*port = V4V_PORT_ANY;
	if (colon) {
		*colon = '\0';
		if (strcmp(colon + 1, "any") != 0) {
			if (!v4v_parse_u64(colon + 1, 0, 0xFFFFFFFEu, &v)) {
				snprintf(err, errlen,
					 "bad port '%s' in '%s' (0..4294967294 or any)", colon + 1,
					 spec);
				return -EINVAL;
			}
			*port = (uint32_t)v;
		}
	}
	if (strcmp(buf, "any") == 0) {
		*dom = V4V_DOMID_ANY;
	} else if (v4v_parse_u64(buf, 0, V4V_DOMID_MAX, &v)) {
		*dom = (uint16_t)v;
	} else if (buf[0] >= '0' && buf[0] <= '9') {
		v4v_domid_bad(err, errlen, buf);
		return -EINVAL;
	} else if (hv_name_ok(buf)) {
		*dom = V4V_DOMID_ANY;
		strcpy(name, buf); /* hv_name_ok: shorter than V4V_NAME_MAX */
	} else {
		snprintf(err, errlen,
			 "bad domain '%s' (a domid, any, or a name: 1-31 of A-Z a-z 0-9 . _ -, "
			 "not starting with a digit or -)",
			 buf);
		return -EINVAL;
	}
	return 0;
}

int v4v_rule_parse(int argc, char *const argv[], struct hv_fw_rule *out, char *err, size_t errlen)
{
	bool have_action = false;

	*out = (struct hv_fw_rule){.src_dom = V4V_DOMID_ANY,
				   .dst_dom = V4V_DOMID_ANY,
				   .src_port = V4V_PORT_ANY,
				   .dst_port = V4V_PORT_ANY};
	bool seen_src = false, seen_dst = false;
	for (int i = 0; i < argc; i++) {
		bool src = strcmp(argv[i], "--src") == 0;
		if (src || strcmp(argv[i], "--dst") == 0) {
			if (i + 1 == argc) {
				snprintf(err, errlen, "%s needs DOM[:PORT]", argv[i]);
				return -EINVAL;
			}
			bool *seen = src ? &seen_src : &seen_dst;
			if (*seen) { /* a second one would mix with the first */
				snprintf(err, errlen, "%s given twice", argv[i]);
				return -EINVAL;
			}
			*seen = true;
			int e = src ? endpoint_parse(argv[++i], &out->src_dom, out->src_name,
						     &out->src_port, err, errlen)
				    : endpoint_parse(argv[++i], &out->dst_dom, out->dst_name,
						     &out->dst_port, err, errlen);
			if (e)
				return e;
		} else if (!have_action && v4v_action_parse(argv[i], &out->action) == 0) {
			have_action = true;
		} else {
			snprintf(err, errlen, "unexpected '%s' in rule", argv[i]);
			return -EINVAL;
		}
	}
	if (!have_action) {
		snprintf(err, errlen, "rule needs an action: accept, reject or drop");
		return -EINVAL;
	}
	return 0;
}

struct limit_key {
	const char *name;
	size_t off;
	unsigned bytes; /* 4 or 8 */
	uint64_t lo, hi;
};

/* A limit of the core (struct hv_limits) or of the shell (v4v_config). */
#define LIMIT_AT(name, f, lo, hi)                                                                  \
	{                                                                                          \
		name, offsetof(struct v4v_config, f), sizeof(((struct v4v_config *)0)->f), lo, hi  \
	}
#define LIMIT(f, lo, hi) LIMIT_AT(#f, lim.f, lo, hi)
static const struct limit_key limit_keys[] = {
    LIMIT(domains, 1, V4V_DOMID_MAX + 1),
    LIMIT(rings_per_domain, 1, 65536),
    LIMIT(ring_bytes_per_domain, V4V_RING_MIN_LEN, 1ull << 40),
    LIMIT(ring_len_max, V4V_RING_MIN_LEN, V4V_RING_MAX_LEN),
    LIMIT(waiters_per_ring, 1, 4096),
    LIMIT(names_per_domain, 0, 65536),
    LIMIT(clients_per_domain, 1, 65536),
    LIMIT(connects_per_source, 1, 65536),
    LIMIT_AT("fds_per_domain", fds_per_domain, 3, 1u << 20),
};

int v4v_uid_range_parse(const char *s, uint32_t *first, uint32_t *last, char *err, size_t errlen)
{
	char a[16];
	const char *dash = strchr(s, '-');
	size_t n = dash ? (size_t)(dash - s) : sizeof(a);
	uint64_t lo = 0, hi = 0;
	bool ok = n < sizeof(a);
	if (ok) {
		memcpy(a, s, n);
		a[n] = '\0';
		ok = v4v_parse_u64(a, 0, UINT32_MAX, &lo) &&
		     v4v_parse_u64(dash + 1, 0, UINT32_MAX, &hi);
	}
	if (!ok) {
		snprintf(err, errlen, "domain_uids must be FIRST-LAST (e.g. %u-%u), not '%s'",
			 V4V_DOMAIN_UID_FIRST, V4V_DOMAIN_UID_LAST, s);
		return -EINVAL;
	}
	if (lo == 0 || hi > 4294967294u || lo > hi) {
		snprintf(err, errlen,
			 "domain_uids '%s' must have 1 <= FIRST <= LAST <= 4294967294 (uid 0 is "
			 "root)",
			 s);
		return -EINVAL;
	}
	if (lo <= 65535 && hi >= 65534) {
		snprintf(err, errlen,
			 "domain_uids '%s' includes 65534 or 65535 (nobody, and the 16-bit "
			 "(uid_t)-1)",
			 s);
		return -EINVAL;
	}
	*first = (uint32_t)lo;
	*last = (uint32_t)hi;
	return 0;
}

static int config_line(char *line, struct v4v_config *cfg, char *err, size_t errlen)
{
	char *argv[16];
	char *hash = strchr(line, '#');
	if (hash)
		*hash = '\0';
	int argc = v4v_tokenize(line, argv, (int)ARRAY_SIZE(argv));
	if (argc < 0) {
		snprintf(err, errlen, "too many words");
		return -EINVAL;
	}
	if (argc == 0)
		return 0;
	if (strcmp(argv[0], "rule") == 0) {
		if (cfg->nrules == HV_FW_MAX_RULES) {
			snprintf(err, errlen, "more than %u rules", HV_FW_MAX_RULES);
			return -EINVAL;
		}
		return v4v_rule_parse(argc - 1, argv + 1, &cfg->rules[cfg->nrules++], err, errlen);
	}
	if (argc != 2) {
		snprintf(err, errlen, "'%s' takes exactly one value", argv[0]);
		return -EINVAL;
	}
	if (strcmp(argv[0], "policy") == 0) {
		if (v4v_action_parse(argv[1], &cfg->policy) == 0)
			return 0;
		snprintf(err, errlen, "policy must be accept, reject or drop, not '%s'", argv[1]);
		return -EINVAL;
	}
	if (strcmp(argv[0], "query_group") == 0) {
		if (strlen(argv[1]) < V4V_GROUP_MAX && strcspn(argv[1], ":/") == strlen(argv[1])) {
			strcpy(cfg->query_group, argv[1]);
			return 0;
		}
		snprintf(err, errlen,
			 "query_group must be a group name, a gid or none, not '%.40s'", argv[1]);
		return -EINVAL;
	}
	if (strcmp(argv[0], "domain_uids") == 0)
		return v4v_uid_range_parse(argv[1], &cfg->uid_first, &cfg->uid_last, err, errlen);
	for (unsigned i = 0; i < ARRAY_SIZE(limit_keys); i++) {
		const struct limit_key *k = &limit_keys[i];
		uint64_t v;
		if (strcmp(argv[0], k->name) != 0)
			continue;
		if (!v4v_parse_u64(argv[1], k->lo, k->hi, &v)) {
			snprintf(err, errlen, "%s must be a number in %llu..%llu, not '%s'",
				 k->name, (unsigned long long)k->lo, (unsigned long long)k->hi,
				 argv[1]);
			return -EINVAL;
		}
		char *f = (char *)cfg + k->off;
		if (k->bytes == 8)
			memcpy(f, &v, 8);
		else {
			uint32_t v32 = (uint32_t)v;
			memcpy(f, &v32, 4);
		}
		return 0;
	}
	snprintf(err, errlen, "unknown setting '%s'", argv[0]);
	return -EINVAL;
}

int v4v_config_parse(const char *text, struct v4v_config *cfg, char *err, size_t errlen)
{
	char line[1024], msg[256];
	unsigned lineno = 0;

	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		lineno++;
		if (n >= sizeof(line)) {
			snprintf(err, errlen, "line %u: longer than %zu bytes", lineno,
				 sizeof(line) - 1);
			return -EINVAL;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		if (config_line(line, cfg, msg, sizeof(msg)) != 0) {
			snprintf(err, errlen, "line %u: %s", lineno, msg);
			return -EINVAL;
		}
		p += n + (nl ? 1 : 0);
	}
	return 0;
}
