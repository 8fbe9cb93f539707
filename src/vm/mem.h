/* SPDX-License-Identifier: MIT */
/*
 * The guest's memory table: the regions QEMU shares (SET_MEM_TABLE), mapped
 * whole, and the only way the rest of v4v-vm turns a guest address into a
 * pointer.  Every translation checks that the whole range lies inside one
 * region, so a hostile guest (or a hostile vring address) can never make
 * v4v-vm touch memory outside what it mapped.
 */
#ifndef V4V_VM_MEM_H
#define V4V_VM_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "vm/wire.h"

struct vm_region {
	uint64_t gpa, size, uva; /* guest-physical base, bytes, QEMU's address */
	uint8_t *host;		 /* our mapping of gpa */
	void *map;		 /* what to munmap (NULL: not ours, e.g. the fuzzer's) */
	size_t map_len;
};

struct vm_mem {
	unsigned n;
	struct vm_region r[VHU_MAX_REGIONS];
};

/* Replace the table with msg's regions, mapping fds[i] for region i (the
 * fds are closed either way).  -EINVAL on a malformed table, -errno from
 * mmap; the old table is gone in every case. */
int vm_mem_set(struct vm_mem *m, const struct vhu_mem *msg, const int *fds, unsigned nfds);
/* Add an already-mapped region (the fuzzer's); -EINVAL when full or bad. */
int vm_mem_add(struct vm_mem *m, uint64_t gpa, uint64_t size, uint64_t uva, uint8_t *host);
void vm_mem_clear(struct vm_mem *m);

/* [addr, addr+len) inside one region: its host address, else NULL. */
void *vm_mem_gpa(const struct vm_mem *m, uint64_t gpa, uint64_t len);
void *vm_mem_uva(const struct vm_mem *m, uint64_t uva, uint64_t len);

#endif
