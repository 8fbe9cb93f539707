/* SPDX-License-Identifier: MIT */
/*
 * Who may be trusted at the runtime directory.  v4vd's control socket
 * lives there: a directory someone else owns or can write could hold a
 * socket served by anyone, who would then see (and answer) the admin's
 * commands and hand out fake domain fds.  So v4vd creates it alone, 0700,
 * and refuses one it does not own or that others can write; clients refuse
 * the same, and check the server's uid on the connected socket before they
 * send a byte.  See docs/SECURITY.md.  All calls return -errno and write
 * one sentence into err.
 */
#ifndef V4V_RUNDIR_H
#define V4V_RUNDIR_H

#include <stddef.h>

/* The default runtime directory: $V4V_RUNTIME_DIR, else /run/v4v for
 * root, else $XDG_RUNTIME_DIR/v4v; -ENOENT (never a guessable path under
 * /tmp) when none applies. */
int v4v_rundir_default(char *buf, size_t cap, char *err, size_t errlen);

/* v4vd: create dir (its last component only) exclusively with mode 0700,
 * or accept an existing one that is a directory owned by our euid and not
 * writable by group or others, in a parent that others cannot swap it in. */
int v4v_rundir_prepare(const char *dir, char *err, size_t errlen);

/* Clients: dir must be a directory owned by root or our euid and not
 * writable by group or others.  -ENOENT when it does not exist. */
int v4v_rundir_check(const char *dir, char *err, size_t errlen);

/* Clients: the server at the other end of the connected socket fd must
 * run as root or as our euid. */
int v4v_ctl_peer_ok(int fd, char *err, size_t errlen);

#endif
