/* SPDX-License-Identifier: MIT */
/*
 * Shared-memory ordering: every load, store and fence on memory that another
 * party (a domain, or v4vd) reads or writes concurrently goes through this
 * header, and nothing else in the tree casts to _Atomic.
 *
 * The shared words are plain uint32_t in the ABI structs (include/v4v/abi.h),
 * as in Xen's argo.h; here they are accessed as C11 atomics of the same size
 * and alignment.
 *
 * Two patterns are built from the primitives (docs/ARCHITECTURE.md,
 * "Shared-memory handshakes"):
 *
 *   publish: write the data, then v4v_store_release() the index; the reader
 *            v4v_load_acquire()s the index, then reads the data.
 *
 *   sleep/wake without a lost wake-up (announce-then-recheck):
 *     sleeper:  v4v_announce(&flag);  then re-check its condition; sleep
 *               only if it still holds.
 *     waker:    make the condition false (publish);  then
 *               if (v4v_should_wake(&flag)) signal the sleeper.
 *   Both sides put a full fence between their store and their load, so at
 *   least one of them sees the other's store: either the sleeper sees the
 *   new state and does not sleep, or the waker sees the flag and signals.
 *   Used for the data doorbell (rx.c, deliver.c), need_kick (v4vd parks a send ring)
 *   and want_space (a sender waits for room in its send ring).
 */
#ifndef V4V_BARRIER_H
#define V4V_BARRIER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define V4V__ATOMIC(p) ((_Atomic uint32_t *)(p))

/* Read an index, then the data it covers. */
static inline uint32_t v4v_load_acquire(const uint32_t *p)
{
	return atomic_load_explicit(V4V__ATOMIC(p), memory_order_acquire);
}

/* Write the data, then the index that hands it over. */
static inline void v4v_store_release(uint32_t *p, uint32_t v)
{
	atomic_store_explicit(V4V__ATOMIC(p), v, memory_order_release);
}

/* A word whose ordering is given by a fence next to it. */
static inline uint32_t v4v_load_relaxed(const uint32_t *p)
{
	return atomic_load_explicit(V4V__ATOMIC(p), memory_order_relaxed);
}

static inline void v4v_store_relaxed(uint32_t *p, uint32_t v)
{
	atomic_store_explicit(V4V__ATOMIC(p), v, memory_order_relaxed);
}

/* Order an earlier store before a later load (store-load: only seq_cst does). */
static inline void v4v_fence(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}

/* Sleeper: say "wake me", then the caller re-checks its condition. */
static inline void v4v_announce(uint32_t *flag)
{
	v4v_store_relaxed(flag, 1);
	v4v_fence();
}

/* Waker, after publishing: true (and the flag cleared) when the other side
 * announced it sleeps and must now be signalled. */
static inline bool v4v_should_wake(uint32_t *flag)
{
	v4v_fence();
	if (!v4v_load_relaxed(flag))
		return false;
	v4v_store_relaxed(flag, 0);
	return true;
}

#endif
