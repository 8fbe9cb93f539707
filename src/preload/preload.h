/* SPDX-License-Identifier: MIT */
/* libv4v-preload.so's shared state: the table of the program's vsock sockets. */
#ifndef V4V_PRELOAD_PRELOAD_H
#define V4V_PRELOAD_PRELOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

enum vs_state { VS_NEW, VS_BOUND, VS_LISTEN, VS_CONNECTING, VS_CONNECTED, VS_FAILED };

/* One socket (keyed by its inode, so dup, fork and dup2 onto 0/1 keep it). */
struct vs_sock {
	ino_t ino;
	int type;
	enum vs_state state;
	int ctl; /* the control channel while setting up, else -1 */
	uint32_t port, peer_cid, peer_port;
	int so_error;
	uint64_t buf_size, buf_min, buf_max;
	bool buf_set; /* the program set a size: it becomes the ring's */
	bool inet;    /* a mapped TCP socket (inet.c): AF_INET addresses */
	bool busy;    /* a blocking connect is waiting (without the lock) */
	uint64_t timeout_us;
};

/* The real functions (dlsym(RTLD_NEXT)). */
struct vs_real {
	int (*socket)(int, int, int);
	int (*close)(int);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*ioctl)(int, unsigned long, ...);
	int (*open)(const char *, int, ...);
	int (*openat)(int, const char *, int, ...);
};
extern struct vs_real vs_real;

/* Locked table access: vs_find returns with the lock held (unlock it with
 * vs_unlock) or NULL, unlocked, when fd is not one of ours. */
struct vs_sock *vs_find(int fd);
void vs_unlock(void);
bool vs_is_ctl(int fd);
int vs_ctl_fds(int *out, int max);
uint32_t vs_local_cid(void); /* 0 until known */
uint32_t vs_query_cid(void); /* 0 when not in a domain */
int vs_add_connected(int fd, int type, uint32_t port, uint32_t peer_cid, uint32_t peer_port);
void vs_finish(struct vs_sock *s); /* (lock held) */
void vs_changed(void);
void vs_dgram_mark(int fd, bool on); /* dgram.c: this fd's data has headers */
bool vs_is_dgram(int fd);
int vs_inet_connect(int fd, const struct sockaddr *addr, socklen_t len, int *ret);
int vs_inet_bind(int fd, const struct sockaddr *addr, socklen_t len, int *ret);
void vs_inet_addr(struct sockaddr *addr, socklen_t *len, uint32_t cid,
		  uint32_t port); /* (lock held) */

#endif
