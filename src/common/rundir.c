/* SPDX-License-Identifier: MIT */
/*
 * The runtime directory's trust rules, for v4vd (prepare) and for every
 * client of the control socket (check, peer_ok, connect).  Why: see
 * rundir.h and docs/SECURITY.md.
 */
#define _GNU_SOURCE
#include "rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#define WRITABLE_BY_OTHERS (S_IWGRP | S_IWOTH)

int v4v_rundir_default(char *buf, size_t cap, char *err, size_t errlen)
{
	int e = v4v_runtime_dir(buf, cap);
	if (e == -ENOENT)
		snprintf(err, errlen,
			 "no runtime directory: XDG_RUNTIME_DIR is not set (uid %u is not root); "
			 "set V4V_RUNTIME_DIR or pass --runtime-dir (a directory of your own, "
			 "never a shared one like /tmp)",
			 (unsigned)geteuid());
	else if (e)
		snprintf(err, errlen, "runtime directory path is too long");
	return e;
}

/* The directory holding dir, into buf ("." for a bare name). */
static int parent_of(const char *dir, char *buf, size_t cap)
{
	if (snprintf(buf, cap, "%s", dir) >= (int)cap)
		return -ENAMETOOLONG;
	size_t n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	char *slash = strrchr(buf, '/');
	if (!slash)
		snprintf(buf, cap, ".");
	else if (slash == buf)
		buf[1] = '\0';
	else
		*slash = '\0';
	return 0;
}

/* Others must not be able to rename our directory away and put theirs in
 * its place: the parent is root's or ours, and either not writable by
 * others or sticky (like /tmp). */
static int parent_ok(const char *dir, char *err, size_t errlen)
{
	char parent[256];
	struct stat st;
	if (parent_of(dir, parent, sizeof(parent)) < 0) {
		snprintf(err, errlen, "runtime dir path is too long: %s", dir);
		return -ENAMETOOLONG;
	}
	if (stat(parent, &st) < 0) {
		int e = errno;
		snprintf(err, errlen,
			 "runtime dir %s: its parent %s: %s (only the last component "
			 "is created)",
			 dir, parent, strerror(e));
		return -e;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen,
			 "runtime dir %s: its parent %s is owned by uid %u, neither root nor "
			 "v4vd's uid %u",
			 dir, parent, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if ((st.st_mode & WRITABLE_BY_OTHERS) && !(st.st_mode & S_ISVTX)) {
		snprintf(err, errlen,
			 "runtime dir %s: its parent %s is writable by group or others and not "
			 "sticky (mode %04o)",
			 dir, parent, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int v4v_rundir_prepare(const char *dir, char *err, size_t errlen)
{
	int e = parent_ok(dir, err, errlen);
	if (e)
		return e;
	/* Exclusive: if it appears between our checks, it is checked below. */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		e = errno;
		snprintf(err, errlen, "cannot create runtime dir %s: %s", dir, strerror(e));
		return -e;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "runtime dir %s: %s", dir,
			 e == ELOOP || e == ENOTDIR ? "not a directory (or a symlink)"
						    : strerror(e));
		return -e;
	}
	close(fd);
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "runtime dir %s is owned by uid %u, not by v4vd's uid %u",
			 dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & WRITABLE_BY_OTHERS) {
		snprintf(err, errlen,
			 "runtime dir %s is writable by group or others (mode %04o); it must be "
			 "0700",
			 dir, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int v4v_rundir_check(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	if (stat(dir, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "runtime dir %s: %s", dir, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "runtime dir %s is not a directory", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen,
			 "runtime dir %s is owned by uid %u, neither root nor you (uid %u): "
			 "refusing to use it",
			 dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & WRITABLE_BY_OTHERS) {
		snprintf(err, errlen,
			 "runtime dir %s is writable by group or others (mode %04o): refusing to "
			 "use it",
			 dir, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int v4v_ctl_peer_ok(int fd, char *err, size_t errlen)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot tell who serves the control socket: %s", strerror(e));
		return -e;
	}
	if (cr.uid != 0 && cr.uid != geteuid()) {
		snprintf(err, errlen,
			 "the control socket is served by uid %u (pid %d), neither root nor you "
			 "(uid %u): refusing to talk to it",
			 (unsigned)cr.uid, (int)cr.pid, (unsigned)geteuid());
		return -EPERM;
	}
	return 0;
}
