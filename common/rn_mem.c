/*
 * Allocation wrappers with overflow checks, a live-allocation counter and a failure hook.
 * The only global state is the two atomics below; see rn_mem.h.
 */
#include "rn_mem.h"

#include "rn_err.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static atomic_long live;
static atomic_long fail_countdown;
static atomic_int reached; /* the failure armed last has happened */

static int should_fail(void)
{
	long n = atomic_load(&fail_countdown);
	if (n <= 0)
		return 0;
	if (atomic_fetch_sub(&fail_countdown, 1) == 1) {
		atomic_store(&reached, 1);
		return 1;
	}
	return 0;
}

int rn_mem_fail_reached(void)
{
	return atomic_load(&reached);
}

int rn_mem_fail_disarm(void)
{
	atomic_store(&fail_countdown, 0);
	return atomic_load(&reached);
}

void rn_mem_fail_after(long nth)
{
	atomic_store(&reached, 0);
	atomic_store(&fail_countdown, nth);
}

long rn_mem_live(void)
{
	return atomic_load(&live);
}

void *rn_malloc(size_t n)
{
	if (should_fail())
		return NULL;
	void *p = malloc(n ? n : 1);
	if (p)
		atomic_fetch_add(&live, 1);
	return p;
}

void *rn_calloc(size_t count, size_t size)
{
	if (should_fail())
		return NULL;
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (p)
		atomic_fetch_add(&live, 1);
	return p;
}

void *rn_reallocarray(void *p, size_t count, size_t size)
{
	if (size && count > SIZE_MAX / size)
		return NULL;
	return rn_realloc(p, count * size);
}

int rn_grow(void *arrp, size_t *cap, size_t need, size_t size, size_t first, size_t max)
{
	void **arr = arrp; /* the caller's typed pointer, written back as a void * */
	size_t nc = *cap ? *cap : (first ? first : 1);
	if (need < *cap)
		return 0;
	if (need >= max || (size && need >= SIZE_MAX / size))
		return RN_ENOMEM;
	while (nc <= need)
		nc = nc > SIZE_MAX / 2 ? SIZE_MAX : nc * 2;
	if (nc > max)
		nc = max;
	void *t = rn_reallocarray(*arr, nc, size);
	if (!t)
		return RN_ENOMEM;
	*arr = t;
	*cap = nc;
	return 0;
}

void *rn_realloc(void *p, size_t n)
{
	if (should_fail())
		return NULL;
	void *q = realloc(p, n ? n : 1);
	if (q && !p)
		atomic_fetch_add(&live, 1);
	return q;
}

void rn_free(void *p)
{
	if (!p)
		return;
	atomic_fetch_sub(&live, 1);
	free(p);
}

char *rn_strdup(const char *s)
{
	return rn_strndup(s, strlen(s));
}

char *rn_strndup(const char *s, size_t n)
{
	char *d = rn_malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = 0;
	return d;
}
