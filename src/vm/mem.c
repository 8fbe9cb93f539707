/* SPDX-License-Identifier: MIT */
/* The guest memory table and its bounds-checked translations (mem.h). */
#include "vm/mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void vm_mem_clear(struct vm_mem *m)
{
	for (unsigned i = 0; i < m->n; i++)
		if (m->r[i].map)
			munmap(m->r[i].map, m->r[i].map_len);
	memset(m, 0, sizeof(*m));
}

/* A region may not wrap either address space. */
static int region_ok(uint64_t gpa, uint64_t size, uint64_t uva)
{
	if (size == 0 || gpa + size < gpa || uva + size < uva)
		return -EINVAL;
	return 0;
}

int vm_mem_add(struct vm_mem *m, uint64_t gpa, uint64_t size, uint64_t uva, uint8_t *host)
{
	if (m->n == VHU_MAX_REGIONS || region_ok(gpa, size, uva) < 0)
		return -EINVAL;
	m->r[m->n++] = (struct vm_region){.gpa = gpa, .size = size, .uva = uva, .host = host};
	return 0;
}

static int map_region(struct vm_mem *m, const struct vhu_region *r, int fd)
{
	long page = sysconf(_SC_PAGESIZE);
	if (region_ok(r->guest_addr, r->size, r->user_addr) < 0 ||
	    r->mmap_offset % (uint64_t)page || r->mmap_offset + r->size < r->size ||
	    r->mmap_offset + r->size > SIZE_MAX)
		return -EINVAL;
	size_t len = (size_t)(r->mmap_offset + r->size);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	struct vm_region *v = &m->r[m->n++];
	*v = (struct vm_region){.gpa = r->guest_addr,
				.size = r->size,
				.uva = r->user_addr,
				.host = (uint8_t *)p + r->mmap_offset,
				.map = p,
				.map_len = len};
	return 0;
}

int vm_mem_set(struct vm_mem *m, const struct vhu_mem *msg, const int *fds, unsigned nfds)
{
	int e = 0;
	vm_mem_clear(m);
	if (msg->nregions == 0 || msg->nregions > VHU_MAX_REGIONS || msg->nregions != nfds)
		e = -EINVAL;
	for (unsigned i = 0; !e && i < msg->nregions; i++)
		e = map_region(m, &msg->region[i], fds[i]);
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	if (e)
		vm_mem_clear(m);
	return e;
}

/* The subtraction form never overflows: base <= a, and len is compared
 * with what is left of the region. */
static void *lookup(const struct vm_mem *m, uint64_t a, uint64_t len, int by_uva)
{
	for (unsigned i = 0; i < m->n; i++) {
		const struct vm_region *r = &m->r[i];
		uint64_t base = by_uva ? r->uva : r->gpa;
		if (a < base || a - base >= r->size)
			continue;
		if (len > r->size - (a - base))
			return NULL;
		return r->host + (a - base);
	}
	return NULL;
}

void *vm_mem_gpa(const struct vm_mem *m, uint64_t gpa, uint64_t len)
{
	return lookup(m, gpa, len, 0);
}

void *vm_mem_uva(const struct vm_mem *m, uint64_t uva, uint64_t len)
{
	return lookup(m, uva, len, 1);
}
