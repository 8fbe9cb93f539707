/* SPDX-License-Identifier: MIT */
/*
 * The vchan engine's rendezvous: how a path (any string) becomes a v4v name
 * in the server's domain that only the client's domain may look up, and
 * how the two ends find each other without xenstore or any broker.
 *
 *   name  "vchan.<hash>.<i>"  hash = FNV-1a 64 of (client domid, key); i is
 *         the probe for collisions: a name held by a live server is skipped
 *         (the server checks by binding the name's port), a stale one (its
 *         server died: names outlive processes) is taken over;
 *   port  0x40000000 | 22 hash bits << 8 | (log2 rd - 10) << 4 | (log2 wr - 10):
 *         below libv4v's picked ports, so a dead server's port is not taken
 *         by unrelated sockets, and carrying the ring sizes, so the client
 *         sizes its own v4v ring before connecting;
 *   hello the client sends the key itself; the server answers OK, WRONG_KEY
 *         (a hash collision: the client tries the next name) or BUSY.
 *
 * The listener's ring accepts only the client's domain; v4vd stamps every
 * source and applies the firewall to the connection like to any other.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "compat/vchan_int.h"

#define RETRY_MS	20   /* an absent server is looked for again this often */
#define LISTEN_RING_LEN 4096 /* a listener's ring: connection requests only */

struct v4v_domain *vch__domain(int *err)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct v4v_domain *dom;
	pthread_mutex_lock(&lock);
	if (!dom) {
		*err = v4v_open(&dom);
		if (*err)
			dom = NULL;
	}
	pthread_mutex_unlock(&lock);
	return dom;
}

int vch_self(void)
{
	int e = 0;
	struct v4v_domain *d = vch__domain(&e);
	return d ? v4v_domid(d) : e;
}

/* ---- the mapping -------------------------------------------------------- */

uint64_t vch__hash(uint16_t client, const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	uint8_t id[2] = {(uint8_t)client, (uint8_t)(client >> 8)};
	for (unsigned i = 0; i < 2; i++)
		h = (h ^ id[i]) * 0x100000001b3ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)key[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void vch__name(char *out, uint64_t hash, unsigned i)
{
	snprintf(out, 32, "vchan.%016llx.%u", (unsigned long long)hash, i);
}

static unsigned order(uint32_t size)
{
	unsigned o = 0;
	while ((1u << o) < size)
		o++;
	return o;
}

uint32_t vch__port(uint64_t hash, unsigned i, unsigned j, uint32_t rd, uint32_t wr)
{
	uint64_t m = mix(hash + (uint64_t)(i * PORT_PROBES + j + 1) * 0x9e3779b97f4a7c15ull);
	return VCH_PORT_BIT | (uint32_t)(m & 0x3fffff) << 8 | (order(rd) - 10) << 4 |
	       (order(wr) - 10);
}

bool vch__port_sizes(uint32_t port, uint32_t *rd, uint32_t *wr)
{
	unsigned ro = ((port >> 4) & 15) + 10, wo = (port & 15) + 10;
	if ((port & 0xc0000000u) != VCH_PORT_BIT || ro > 20 || wo > 20)
		return false;
	*rd = 1u << ro;
	*wr = 1u << wo;
	return true;
}

/*
 * The v4v ring under a vchan ring of rsize bytes: the credit bounds the
 * payload in flight to rsize; the rest is framing (16-byte message headers
 * and padding, our 4-byte frames, credits), generous for small writes.
 */
uint32_t vch__sock_ring_len(uint32_t rsize)
{
	uint64_t len = 4ull * rsize + (64u << 10);
	return len > V4V_RING_MAX_LEN ? V4V_RING_MAX_LEN : (uint32_t)len;
}

/* Xen's rules: in-page rings (1024 and 2048) when both fit, else pages. */
int vch_ring_sizes(size_t read_min, size_t write_min, uint32_t *rd, uint32_t *wr)
{
	if (read_min > VCH_RING_MAX || write_min > VCH_RING_MAX)
		return -EINVAL;
	unsigned ro = order((uint32_t)read_min), wo = order((uint32_t)write_min);
	ro = ro < 12 ? 12 : ro;
	wo = wo < 12 ? 12 : wo;
	if (read_min <= 1024 && write_min <= 2048) {
		ro = 10;
		wo = 11;
	} else if (read_min <= 2048 && write_min <= 1024) {
		ro = 11;
		wo = 10;
	} else if (read_min <= 2048) {
		ro = 11;
	} else if (write_min <= 2048) {
		wo = 11;
	}
	*rd = 1u << ro;
	*wr = 1u << wo;
	return 0;
}

static struct vch *vch_new(uint16_t peer, const char *key, int *err)
{
	size_t klen = strlen(key);
	*err = klen > VCH_KEY_MAX ? -ENAMETOOLONG : peer > V4V_DOMID_MAX ? -EINVAL : 0;
	if (*err)
		return NULL;
	struct vch *c = vch__alloc();
	if (!c || !(c->key = strdup(key))) {
		vch__free(c);
		*err = -ENOMEM;
		return NULL;
	}
	c->keylen = klen;
	c->peer_dom = peer;
	if (!(c->d = vch__domain(err))) {
		vch__free(c);
		return NULL;
	}
	return c;
}

static int set_sizes(struct vch *c, uint32_t rd, uint32_t wr)
{
	free(c->rbuf);
	free(c->tbuf);
	c->rsize = rd;
	c->wsize = wr;
	c->rbuf = malloc(rd);
	c->tbuf = malloc(wr);
	return c->rbuf && c->tbuf ? 0 : -ENOMEM;
}

/* ---- server ------------------------------------------------------------- */

/* A stream socket bound to (port, only the client's domain); fd or -errno. */
static int bind_port(struct vch *c, uint32_t port, uint32_t ring_len)
{
	int s = v4v_socket(c->d, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
	if (s < 0)
		return -errno;
	struct v4v_addr a = {.aport = port, .domain_id = c->peer_dom};
	if ((ring_len && v4v_sock_set_ring_len(s, ring_len) < 0) || v4v_bind(s, &a) < 0) {
		int e = -errno;
		v4v_sock_close(s);
		return e;
	}
	return s;
}

/* Does a live server hold this port?  Binding it tells. */
static bool port_live(struct vch *c, uint32_t port)
{
	int s = bind_port(c, port, 64);
	if (s >= 0)
		v4v_sock_close(s);
	return s == -EADDRINUSE;
}

static int listen_name(struct vch *c, unsigned i, const char *name)
{
	uint16_t acl[1] = {c->peer_dom};
	uint32_t len = vch__sock_ring_len(c->rsize);
	for (unsigned j = 0; j < PORT_PROBES; j++) {
		uint32_t port = vch__port(c->hash, i, j, c->rsize, c->wsize);
		/* Accepted connections get the listener's length, at least 512
		 * KiB; the listener itself only holds requests (32 bytes each). */
		int s = bind_port(c, port, len > V4V_STREAM_RING_LEN ? len : LISTEN_RING_LEN);
		if (s == -EADDRINUSE)
			continue;
		if (s < 0)
			return s;
		struct epoll_event ev = {.events = EPOLLIN};
		int e = v4v_listen(s, 1) < 0 ? -errno : 0;
		if (!e)
			e = v4v_name_register(c->d, name, port, acl, 1);
		if (!e && epoll_ctl(c->ep_src, EPOLL_CTL_ADD, s, &ev) < 0)
			e = -errno;
		if (e) {
			v4v_sock_close(s);
			return e == -EEXIST ? -EADDRINUSE : e; /* raced: the next name */
		}
		c->lsn = s;
		snprintf(c->name, sizeof(c->name), "%s", name);
		return 0;
	}
	return -EADDRINUSE;
}

static int listen_on(struct vch *c)
{
	char self[8];
	snprintf(self, sizeof(self), "%u", v4v_domid(c->d));
	for (unsigned i = 0; i < NAME_PROBES; i++) {
		char name[32];
		struct v4v_addr a;
		vch__name(name, c->hash, i);
		int e = v4v_name_lookup(c->d, self, name, &a);
		if (e == 0) {
			if (port_live(c, a.aport))
				continue; /* another server (or a collision) holds it */
			v4v_name_unregister(c->d, name); /* stale: its server died */
		} else if (e != -ENOENT) {
			return e;
		}
		e = listen_name(c, i, name);
		if (e != -EADDRINUSE)
			return e;
	}
	return -EADDRINUSE;
}

int vch_server(uint16_t client, const char *key, size_t read_min, size_t write_min, bool once,
	       struct vch **out)
{
	uint32_t rd, wr;
	int e = vch_ring_sizes(read_min, write_min, &rd, &wr);
	if (e)
		return e;
	struct vch *c = vch_new(client, key, &e);
	if (!c)
		return e;
	c->server = true;
	c->once = once;
	c->conn = C_NONE;
	c->hash = vch__hash(client, key, c->keylen);
	e = set_sizes(c, rd, wr);
	if (!e)
		e = listen_on(c);
	if (e) {
		vch__free(c);
		return e;
	}
	*out = c;
	return 0;
}

static void refuse(int s, unsigned status)
{
	uint32_t h = (uint32_t)F_HELLO_S << 24 | status << 22;
	uint8_t b[4] = {(uint8_t)h, (uint8_t)(h >> 8), (uint8_t)(h >> 16), (uint8_t)(h >> 24)};
	v4v_send(s, b, 4, MSG_DONTWAIT);
	v4v_sock_close(s);
}

static void stop_listening(struct vch *c)
{
	epoll_ctl(c->ep_src, EPOLL_CTL_DEL, c->lsn, NULL);
	v4v_sock_close(c->lsn);
	c->lsn = -1;
	v4v_name_unregister(c->d, c->name);
	c->name[0] = 0;
}

/* Take the connections waiting: one client at a time. */
int vch__accept(struct vch *c)
{
	int woke = 0;
	while (c->lsn >= 0) {
		struct v4v_addr peer;
		int s = v4v_accept(c->lsn, &peer);
		if (s < 0)
			break;
		if (peer.domain_id != c->peer_dom) { /* the ring's partner: cannot be */
			v4v_sock_close(s);
			continue;
		}
		woke = 1;
		vch__event(c);
		if (c->sock >= 0)
			vch__pull(c); /* has the last one gone? */
		if (c->sock >= 0) {
			refuse(s, HS_BUSY);
			continue;
		}
		vch__adopt(c, s, C_HELLO);
	}
	return woke;
}

int vch__on_hello_c(struct vch *c)
{
	bool match = c->klen == c->keylen && memcmp(c->kbuf, c->key, c->klen) == 0;
	free(c->kbuf);
	c->kbuf = NULL;
	if (!match) {
		vch__put_frame(c, F_HELLO_S, HS_WRONG_KEY << 22, NULL, 0);
		vch__flush(c);
		vch__drop_sock(c);
		c->conn = c->had_client ? C_DOWN : C_NONE;
		return 0;
	}
	uint32_t held = (uint32_t)(c->rin - c->rout);
	vch__put_frame(c, F_HELLO_S, HS_OK << 22 | held, NULL, 0);
	c->credit_due = 0;
	c->had_client = true;
	c->fl = c->ack; /* a new client gets all the last one did not consume */
	vch__up(c);
	if (c->once)
		stop_listening(c);
	return vch__flush(c);
}

/* ---- client ------------------------------------------------------------- */

int vch_client(uint16_t server, const char *key, struct vch **out)
{
	int e;
	struct vch *c = vch_new(server, key, &e);
	if (!c)
		return e;
	c->conn = C_LOOKUP;
	c->hash = vch__hash(v4v_domid(c->d), key, c->keylen);
	*out = c;
	return 0;
}

static void send_hello(struct vch *c)
{
	vch__put_frame(c, F_HELLO_C, (uint32_t)c->keylen, c->key, c->keylen);
	c->conn = C_HELLO;
	vch__flush(c);
}

/* Try the names from c->probe on: 1 connecting, -ENOENT none, -errno. */
int vch__client_lookup(struct vch *c)
{
	char dom[8];
	snprintf(dom, sizeof(dom), "%u", c->peer_dom);
	for (; c->probe < NAME_PROBES; c->probe++) {
		char name[32];
		uint32_t srd, swr;
		vch__name(name, c->hash, c->probe);
		int e = v4v_name_lookup(c->d, dom, name, &c->srv);
		if (e == -ENOENT)
			continue;
		if (e)
			return e;
		if (!vch__port_sizes(c->srv.aport, &srd, &swr))
			continue;
		if ((e = set_sizes(c, swr, srd)))
			return e;
		int s = v4v_socket(c->d, V4V_SOCK_STREAM, V4V_SOCK_NONBLOCK);
		if (s < 0)
			return -errno;
		if (v4v_sock_set_ring_len(s, vch__sock_ring_len(c->rsize)) < 0) {
			e = -errno;
			v4v_sock_close(s);
			return e;
		}
		int r = v4v_connect(s, &c->srv);
		if (r < 0 && errno != EINPROGRESS) {
			e = -errno;
			v4v_sock_close(s);
			if (e == -ECONNREFUSED || e == -EAGAIN)
				continue; /* a stale name, or a full listener */
			return e;
		}
		if ((e = vch__adopt(c, s, C_CONNECTING)))
			return e;
		if (r == 0)
			send_hello(c);
		return 1;
	}
	return -ENOENT;
}

static void next_name(struct vch *c)
{
	vch__drop_sock(c);
	c->probe++;
	c->conn = C_LOOKUP;
}

static int step(struct vch *c, bool retry)
{
	for (;;) {
		switch (c->conn) {
		case C_LOOKUP: {
			int e = vch__client_lookup(c);
			if (e == 1)
				continue;
			if (e != -ENOENT)
				return e;
			c->probe = 0;
			if (!retry)
				return -ENOENT;
			if (vch_peer_dead(c))
				return -ESRCH;
			struct itimerspec t = {.it_value = {.tv_nsec = RETRY_MS * 1000000L}};
			timerfd_settime(c->timer, 0, &t, NULL);
			c->timer_armed = true;
			return 1;
		}
		case C_CONNECTING:
			if (v4v_connect(c->sock, &c->srv) == 0) {
				send_hello(c);
				continue;
			}
			if (errno == EALREADY)
				return 1;
			if (errno != ECONNREFUSED)
				return -errno;
			next_name(c);
			continue;
		case C_HELLO:
			vch__pull(c);
			if (c->conn == C_UP)
				return 0;
			if (c->hs_status == HS_BUSY)
				return -EBUSY;
			if (c->hs_status == HS_WRONG_KEY) {
				next_name(c);
				continue;
			}
			return c->conn == C_DOWN ? -ECONNREFUSED : 1;
		case C_UP: return 0;
		default: return -EPIPE;
		}
	}
}

int vch_client_step(struct vch *c, bool retry)
{
	if (c->timer_armed) {
		uint64_t n;
		if (read(c->timer, &n, sizeof(n)) != sizeof(n))
			return 1; /* not yet time to look again */
		c->timer_armed = false;
	}
	return step(c, retry);
}
