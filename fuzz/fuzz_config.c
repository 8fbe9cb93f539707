/* SPDX-License-Identifier: MIT */
/*
 * The text parsers over arbitrary text: v4v_config_parse on the whole input
 * (as v4vd reads v4vd.conf), then every line through v4v_tokenize and
 * v4v_rule_parse (as the control socket reads `fw add ...`).
 *
 * Invariants: no out-of-bounds access, every failure leaves one
 * NUL-terminated sentence in err (config errors name their line), accepted
 * values are in range, and an accepted rule, formatted the way `fw list`
 * prints it and parsed again, is the same rule.
 */
#include <errno.h>
#include <string.h>

#include "core/rules.h"
#include "fuzz.h"

#define MAX_TEXT 65536u

static void check_rule(const struct hv_fw_rule *r)
{
	CHECK(r->action <= HV_FW_DROP);
	CHECK(r->src_dom == V4V_DOMID_ANY || r->src_dom <= V4V_DOMID_MAX);
	CHECK(r->dst_dom == V4V_DOMID_ANY || r->dst_dom <= V4V_DOMID_MAX);
	/* a name is a valid one, and then the domid is any */
	CHECK(!*r->src_name || (hv_name_ok(r->src_name) && r->src_dom == V4V_DOMID_ANY));
	CHECK(!*r->dst_name || (hv_name_ok(r->dst_name) && r->dst_dom == V4V_DOMID_ANY));
}

/* Config errors are one sentence naming the line. */
static void check_config(const char *text)
{
	static struct v4v_config cfg;
	char err[300];

	memset(&cfg, 0, sizeof(cfg));
	hv_limits_default(&cfg.lim);
	memset(err, 'X', sizeof(err));
	int e = v4v_config_parse(text, &cfg, err, sizeof(err));
	if (e) {
		CHECK(e == -EINVAL);
		CHECK(memchr(err, '\0', sizeof(err)));
		CHECK(strncmp(err, "line ", 5) == 0);
		return;
	}
	CHECK(cfg.policy <= HV_FW_DROP);
	CHECK(cfg.nrules <= HV_FW_MAX_RULES);
	for (unsigned i = 0; i < cfg.nrules; i++)
		check_rule(&cfg.rules[i]);
	CHECK(cfg.lim.domains >= 1 && cfg.lim.domains <= V4V_DOMID_MAX + 1);
	CHECK(cfg.lim.ring_len_max >= V4V_RING_MIN_LEN && cfg.lim.ring_len_max <= V4V_RING_MAX_LEN);
	CHECK(cfg.lim.waiters_per_ring >= 1);
	CHECK(cfg.lim.rings_per_domain >= 1);
	/* domain_uids: unset (0-0), or a range that cannot reach root or nobody */
	CHECK((cfg.uid_first == 0 && cfg.uid_last == 0) ||
	      (cfg.uid_first >= 1 && cfg.uid_first <= cfg.uid_last && cfg.uid_last <= 4294967294u &&
	       !(cfg.uid_first <= 65535 && cfg.uid_last >= 65534)));
}

/* Format r as `fw list` would, parse it back: the same rule. */
static void check_round_trip(const struct hv_fw_rule *r)
{
	char line[160], src[48], dst[48], err[200], *argv[8];
	struct hv_fw_rule back;

	v4v_endpoint_format(src, sizeof(src), r->src_dom, r->src_name, r->src_port);
	v4v_endpoint_format(dst, sizeof(dst), r->dst_dom, r->dst_name, r->dst_port);
	snprintf(line, sizeof(line), "--src %s --dst %s %s", src, dst, v4v_action_name(r->action));
	int argc = v4v_tokenize(line, argv, 8);
	CHECK(argc == 5);
	CHECK(v4v_rule_parse(argc, argv, &back, err, sizeof(err)) == 0);
	CHECK(back.src_dom == r->src_dom && back.src_port == r->src_port);
	CHECK(back.dst_dom == r->dst_dom && back.dst_port == r->dst_port);
	CHECK(strcmp(back.src_name, r->src_name) == 0 && strcmp(back.dst_name, r->dst_name) == 0);
	CHECK(back.action == r->action);
}

static void check_line(char *line, size_t errlen)
{
	static char copy[MAX_TEXT + 1];
	char err[256], *argv[16], *argv2[2];
	struct hv_fw_rule r;

	size_t n = strlen(line);
	memcpy(copy, line, n + 1);
	int argc = v4v_tokenize(line, argv, 16);
	if (argc < 0) {
		CHECK(argc == -E2BIG);
		return;
	}
	for (int i = 0; i < argc; i++) {
		CHECK(argv[i] >= line && argv[i] < line + n);
		CHECK(*argv[i] && !strpbrk(argv[i], " \t\r\n"));
	}
	/* A tight max must fail cleanly rather than write past argv. */
	CHECK(v4v_tokenize(copy, argv2, 2) == (argc <= 2 ? argc : -E2BIG));

	memset(err, 'X', sizeof(err));
	int e = v4v_rule_parse(argc, argv, &r, err, errlen);
	if (e) {
		CHECK(e == -EINVAL);
		CHECK(memchr(err, '\0', errlen));
		return;
	}
	check_rule(&r);
	check_round_trip(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[MAX_TEXT + 1];

	if (size < 1 || size > MAX_TEXT)
		return 0;
	/* First byte: the caller's err capacity, so truncation is exercised. */
	size_t errlen = 1 + data[0] % 255;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	check_config(text);

	for (char *p = text, *nl; p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		check_line(p, errlen);
	}
	return 0;
}
