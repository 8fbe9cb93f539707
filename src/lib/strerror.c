/* SPDX-License-Identifier: MIT */
/*
 * v4v_strerror: what an errno value means when a v4v call returns it.
 * Several codes are borrowed from the network and mean something narrower
 * here (ECONNREFUSED: no ring; EBUSY: the ring's space-waiter slots are
 * full; EUSERS: no uid for a new domain), so strerror()'s words mislead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "v4v/v4v.h"

const char *v4v_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0: return "success";
	case EPIPE: return "v4vd has gone away or the domain was destroyed";
	case ENOTCONN: return "not inside a v4v domain (run the program under v4v-run)";
	case ESRCH: return "no such domain";
	case EHOSTUNREACH: return "no such domain";
	case ECONNREFUSED: return "no ring (or no listener) at the destination port";
	case EACCES: return "rejected by the v4v firewall";
	case EMSGSIZE: return "message larger than the destination ring can ever hold";
	case EAGAIN: return "no room in the destination ring now (try again, or wait for space)";
	case EBUSY: return "the ring's space-waiter slots are full (too many blocked senders)";
	case ENOSPC: return "a v4v limit is reached (rings per domain, ring memory or domains)";
	case EEXIST: return "already registered (ring port or service name)";
	case ENOENT: return "no such ring or service name";
	case EUSERS: return "v4vd has no uid left for another domain (domain_uids in v4vd.conf)";
	case ECONNRESET: return "the peer closed the connection or its domain died";
	case EPROTO: return "the peer broke the v4v stream protocol";
	case EIO: return "a ring is broken (bad rx_ptr) or v4vd sent a malformed reply";
	default: break;
	}
	const char *s = strerrordesc_np(err < 0 ? -err : err); /* thread-safe, unlike strerror */
	return s ? s : "unknown error";
}
