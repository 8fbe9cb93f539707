/* SPDX-License-Identifier: MIT */
/*
 * v4vd as a service: where its log lines go (stderr, with journald's
 * priority prefixes under systemd, or syslog once daemonized), reading
 * v4vd.conf, applying it again on SIGHUP (all or nothing), and telling
 * systemd it is ready (sd_notify, when built with libsystemd).
 */
#define _GNU_SOURCE
#include "v4vd.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

/* ---- logging --------------------------------------------------------- */

static bool use_syslog;
static int journal = -1; /* stderr goes to journald: -1 until known */

/* JOURNAL_STREAM names stderr's device and inode when systemd connected
 * it to the journal; a copy inherited from elsewhere does not match. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (getenv("NOTIFY_SOCKET"))
		return true;
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void v4vd_log_syslog(void)
{
	use_syslog = true;
	openlog("v4vd", LOG_PID, LOG_DAEMON);
}

void logmsg(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (journal < 0)
		journal = stderr_is_journal();
	if (use_syslog) {
		vsyslog(prio, fmt, ap);
	} else {
		/* "<3>" is sd-daemon.h's SD_ERR: journald takes it as the
		 * line's priority (and adds the name and pid itself). */
		if (journal)
			fprintf(stderr, "<%d>", prio & LOG_PRIMASK);
		else
			fprintf(stderr, "v4vd: ");
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

/* ---- systemd --------------------------------------------------------- */

bool v4vd_under_systemd(void)
{
	return getenv("NOTIFY_SOCKET") != NULL;
}

void v4vd_notify(const char *state)
{
#ifdef HAVE_LIBSYSTEMD
	int e = sd_notify(0, state);
	if (e < 0)
		logmsg(LOG_WARNING, "sd_notify: %s", strerror(-e));
#else
	static bool said;
	if (!said && v4vd_under_systemd())
		logmsg(LOG_WARNING, "built without libsystemd: cannot tell systemd '%s'", state);
	said = true;
#endif
}

/* ---- v4vd.conf ------------------------------------------------------- */

void v4vd_config_defaults(struct v4v_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	hv_limits_default(&cfg->lim);
	cfg->fds_per_domain = V4V_FDS_PER_DOMAIN;
}

int v4vd_config_read(const char *path, bool required, struct v4v_config *cfg, char *err,
		     size_t errlen)
{
	char msg[300];
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		if (e == ENOENT && !required)
			return 0; /* the default file is optional */
		snprintf(err, errlen, "cannot open config %s: %s", path, strerror(e));
		return -e;
	}
	char *text = calloc(1, 1 << 20);
	size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
	bool too_big = !feof(f);
	fclose(f);
	if (!text || too_big || strlen(text) != n) {
		snprintf(err, errlen, "config %s: %s", path,
			 !text	   ? "out of memory"
			 : too_big ? "larger than 1 MiB"
				   : "contains a NUL byte");
		free(text);
		return -EINVAL;
	}
	int e = v4v_config_parse(text, cfg, msg, sizeof(msg));
	free(text);
	if (e) {
		snprintf(err, errlen, "config %s: %s", path, msg);
		return -EINVAL;
	}
	return 0;
}

/* What cannot change while v4vd runs: it is sized, or handed out, at
 * start.  A file that changes it is refused (restart v4vd for that). */
static int fixed_check(const struct v4vd *s, const struct v4v_config *cfg, char *err, size_t errlen)
{
	uint32_t first = cfg->uid_last ? cfg->uid_first : V4V_DOMAIN_UID_FIRST;
	uint32_t last = cfg->uid_last ? cfg->uid_last : V4V_DOMAIN_UID_LAST;
	if (first != s->uid_first || last != s->uid_last) {
		snprintf(err, errlen,
			 "config %s: domain_uids %u-%u differs from the running %u-%u, which "
			 "cannot change while v4vd runs (restart it)",
			 s->config_path, first, last, s->uid_first, s->uid_last);
		return -EINVAL;
	}
	if (strcmp(cfg->query_group, s->query_group_conf) != 0) {
		snprintf(err, errlen,
			 "config %s: query_group '%s' differs from the running '%s', which "
			 "cannot change while v4vd runs (restart it)",
			 s->config_path, cfg->query_group, s->query_group_conf);
		return -EINVAL;
	}
	return 0;
}

void v4vd_config_apply(struct v4vd *s, const struct v4v_config *cfg)
{
	hv_set_limits(s->hv, &cfg->lim);
	s->fds_per_domain = cfg->fds_per_domain;
	hv_fw_flush(s->hv);
	hv_fw_set_policy(s->hv, cfg->policy);
	for (unsigned i = 0; i < cfg->nrules; i++)
		hv_fw_insert(s->hv, i, &cfg->rules[i]); /* parsed: cannot fail */
}

/* SIGHUP: read the file again into a fresh configuration; apply it whole,
 * or keep the running one whole and say why in one line. */
static void reload(struct v4vd *s)
{
	static struct v4v_config cfg; /* HV_FW_MAX_RULES rules: not on the stack */
	char err[512];
	v4vd_notify("RELOADING=1");
	v4vd_config_defaults(&cfg);
	int e = v4vd_config_read(s->config_path, s->config_required, &cfg, err, sizeof(err));
	if (!e)
		e = fixed_check(s, &cfg, err, sizeof(err));
	if (e) {
		logmsg(LOG_ERR, "reload refused, configuration unchanged: %s", err);
	} else {
		v4vd_config_apply(s, &cfg);
		logmsg(LOG_INFO, "reloaded %s (policy %s, %u rules)", s->config_path,
		       v4v_action_name(cfg.policy), cfg.nrules);
	}
	v4vd_notify("READY=1");
}

void v4vd_signal_handle(struct v4vd *s)
{
	struct signalfd_siginfo si;
	while (read(s->sigfd.fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			reload(s);
		else
			s->stop = true;
	}
}
