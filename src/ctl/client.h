/* SPDX-License-Identifier: MIT */
/*
 * The client side of v4vd's control protocol, shared by the tools, the
 * tests and the benchmark: find the control socket, connect to it, send
 * one command line and read the reply (and an fd v4vd may pass with it).
 *
 * A reply is "ok\n" and a body (often a typed TSV table), or "error: " and
 * a sentence for a human.  All calls return 0 or -errno, never depend on
 * errno; a failure that has no reply from v4vd is explained, as a sentence,
 * in the reply's `why`.
 */
#ifndef V4V_CTL_CLIENT_H
#define V4V_CTL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Replies larger than this are refused (the listings of a busy v4vd). */
#define V4V_CTL_REPLY_MAX (64u << 20)

struct v4v_ctl_reply {
	bool ok;       /* v4vd answered "ok" */
	char *body;    /* after "ok\n", or v4vd's error sentence without
			* "error: " and newline; malloc'd, NULL without an answer */
	uint32_t len;  /* strlen(body) */
	int fd;	       /* an fd passed with an ok answer (the caller's), else -1 */
	char why[512]; /* when a call returns -errno: what failed */
};

/* The control socket's path for runtime directory dir (NULL: the one
 * v4v_runtime_dir() finds: $V4V_RUNTIME_DIR, /run/v4v, ...). */
int v4v_ctl_path(const char *dir, char *path, size_t cap);

/*
 * Connect to v4vd's control socket in dir (NULL as above), after checking
 * that the directory is root's or ours and not writable by others, and
 * then that the server is root or our own uid (SO_PEERCRED): nothing is
 * sent to, or taken from, a socket that fails either.  Returns the
 * connected socket (close-on-exec) or -errno with a sentence in why:
 * -ENOENT or -ECONNREFUSED when no v4vd runs there.  Every client
 * connects through here.
 */
int v4v_ctl_connect(const char *dir, char *why, size_t cap);

/* Send cmd on a connected socket and read v4vd's one reply into *rep
 * (v4v_ctl_reply_free() it, whatever the result). */
int v4v_ctl_call(int sock, const char *cmd, struct v4v_ctl_reply *rep);

/* Connect, call, close: one command.  0 when v4vd answered (rep->ok says
 * how), -errno when it could not be asked (rep->why says why).  A listing
 * (domains, rings, names, stats) the control socket refuses us (-EACCES:
 * not the admin) is asked of the query socket, $dir/query, the v4v
 * group's (v4vd(8)). */
int v4v_ctl_request(const char *dir, const char *cmd, struct v4v_ctl_reply *rep);

/* Free the body and close an fd the caller did not take (set rep->fd to
 * -1 to keep it).  Accepts a zeroed or half-filled reply. */
void v4v_ctl_reply_free(struct v4v_ctl_reply *rep);

#endif
