/*
 * Allocation wrappers every module uses instead of malloc/free. They check multiplication
 * overflow, keep a count of live allocations and bytes (for tests and the status page), and
 * have a failure-injection hook so tests can make the Nth allocation fail. Thread-safe:
 * counters are atomics; the hook is set by tests before threads start.
 */
#ifndef RN_MEM_H
#define RN_MEM_H

#include <stddef.h>

void *rn_malloc(size_t n);
void *rn_calloc(size_t count, size_t size);
/* Like realloc, but count*size is overflow-checked; on failure the old block is kept. */
void *rn_reallocarray(void *p, size_t count, size_t size);
void *rn_realloc(void *p, size_t n);

/* Makes room for item number `need` in the array *arrp (items of `size` bytes, *cap of them
 * allocated): nothing when need < *cap; else *cap doubles (from `first` when 0) until it
 * exceeds need, clamped to `max` items (SIZE_MAX: bounded only by size_t), and the array is
 * reallocated through rn_reallocarray (so the failure hook applies). arrp is the address of
 * the caller's typed pointer (`&t->items`). On success *arrp and *cap are updated; on failure
 * both stay as they were and the old array stays valid. The new items are not initialized.
 * 0, or RN_ENOMEM (allocation failed, need >= max, or the bytes overflow size_t). */
int rn_grow(void *arrp, size_t *cap, size_t need, size_t size, size_t first, size_t max);
void rn_free(void *p);
char *rn_strdup(const char *s);
char *rn_strndup(const char *s, size_t n);

/* Live allocations made through these wrappers (not bytes: free() does not tell sizes). */
long rn_mem_live(void);

/* Test hook: the `nth` allocation from now (1 = the next one) fails; 0 disables. */
void rn_mem_fail_after(long nth);

/* 1 once the failure armed by the last rn_mem_fail_after() has happened, else 0: after an
 * operation, a sweep learns whether its armed failure was reached inside it. */
int rn_mem_fail_reached(void);

/* Disarms the hook and returns rn_mem_fail_reached(): the end of one step of a sweep. */
int rn_mem_fail_disarm(void);

#endif
