/* SPDX-License-Identifier: MIT */
/* The control-protocol client: connect, one command, one reply (client.h). */
#define _GNU_SOURCE
#include "ctl/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/rundir.h"
#include "common/util.h"

int v4v_ctl_path(const char *dir, char *path, size_t cap)
{
	char buf[256], err[8];
	if (!dir) {
		int e = v4v_rundir_default(buf, sizeof(buf), err, sizeof(err));
		if (e)
			return e;
		dir = buf;
	}
	return v4v_control_path(path, cap, dir);
}

/* Connect to the control socket of dir, or its query socket. */
static int connect_to(const char *dir, bool query, char *why, size_t cap)
{
	char buf[256];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!dir) {
		int e = v4v_rundir_default(buf, sizeof(buf), why, cap);
		if (e)
			return e;
		dir = buf;
	}
	if (query ? snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/query", dir) >=
			(int)sizeof(sa.sun_path)
		  : v4v_control_path(sa.sun_path, sizeof(sa.sun_path), dir) < 0) {
		snprintf(why, cap, "runtime directory path is too long: %s", dir);
		return -ENAMETOOLONG;
	}
	/* The directory first: a socket in a place others control proves
	 * nothing (docs/SECURITY.md, "The runtime directory"). */
	int e = v4v_rundir_check(dir, why, cap);
	if (e == -ENOENT)
		snprintf(why, cap,
			 "v4vd is not running (no runtime directory %s); start it with "
			 "'v4vd --runtime-dir %s' or set V4V_RUNTIME_DIR",
			 dir, dir);
	if (e)
		return e;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = -errno;
		if (s >= 0)
			close(s);
		if (e == -ENOENT || e == -ECONNREFUSED)
			snprintf(why, cap,
				 "v4vd is not running (no control socket at %s); start it with "
				 "'v4vd --runtime-dir %s' or set V4V_RUNTIME_DIR",
				 sa.sun_path, dir);
		else
			snprintf(why, cap, "cannot connect to %s: %s", sa.sun_path, strerror(-e));
		return e;
	}
	/* Who serves it, before we send a command or take a passed fd. */
	e = v4v_ctl_peer_ok(s, why, cap);
	if (e) {
		close(s);
		return e;
	}
	return s;
}

int v4v_ctl_connect(const char *dir, char *why, size_t cap)
{
	return connect_to(dir, false, why, cap);
}

/* The listings the v4v group may read through the query socket. */
static bool is_listing(const char *cmd)
{
	static const char *const words[] = {"domains", "rings", "names", "stats"};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t n = strlen(words[i]);
		if (strncmp(cmd, words[i], n) == 0 && (cmd[n] == '\0' || cmd[n] == ' '))
			return true;
	}
	return false;
}

/* Split "ok\n..." or "error: ...\n" into rep; anything else is an error
 * whose text is the raw reply. */
static void reply_parse(char *raw, uint32_t n, struct v4v_ctl_reply *rep)
{
	rep->body = raw;
	rep->ok = strncmp(raw, "ok\n", 3) == 0;
	if (rep->ok) {
		memmove(raw, raw + 3, n - 2);
	} else {
		if (strncmp(raw, "error: ", 7) == 0) {
			memmove(raw, raw + 7, n - 6);
			raw[strcspn(raw, "\n")] = '\0';
		}
		if (rep->fd >= 0) {
			close(rep->fd);
			rep->fd = -1;
		}
	}
	rep->len = (uint32_t)strlen(raw);
}

int v4v_ctl_call(int sock, const char *cmd, struct v4v_ctl_reply *rep)
{
	char *raw;
	uint32_t n;
	memset(rep, 0, sizeof(*rep));
	rep->fd = -1;
	int e = v4v_frame_send(sock, cmd, (uint32_t)strlen(cmd), -1);
	if (!e)
		e = v4v_frame_recv(sock, &raw, &n, V4V_CTL_REPLY_MAX, &rep->fd);
	if (e == -ECONNRESET)
		snprintf(rep->why, sizeof(rep->why),
			 "v4vd closed the control connection (are you the admin?)");
	else if (e)
		snprintf(rep->why, sizeof(rep->why), "control request failed: %s", strerror(-e));
	else
		reply_parse(raw, n, rep);
	return e;
}

int v4v_ctl_request(const char *dir, const char *cmd, struct v4v_ctl_reply *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->fd = -1;
	int s = v4v_ctl_connect(dir, rep->why, sizeof(rep->why));
	if (s == -EACCES && is_listing(cmd)) {
		/* Not the admin: a member of the v4v group may still list. */
		char why[sizeof(rep->why)];
		int q = connect_to(dir, true, why, sizeof(why));
		if (q >= 0)
			s = q;
	}
	if (s < 0)
		return s;
	int e = v4v_ctl_call(s, cmd, rep);
	close(s);
	return e;
}

void v4v_ctl_reply_free(struct v4v_ctl_reply *rep)
{
	free(rep->body);
	rep->body = NULL;
	if (rep->fd >= 0)
		close(rep->fd);
	rep->fd = -1;
}
