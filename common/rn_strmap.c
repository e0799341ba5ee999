/*
 * rn_strmap.h's map: linear probing over a power-of-two table kept at most half full
 * (entries and tombstones together), so an unsuccessful probe stays short.
 */
#include "rn_strmap.h"

#include <string.h>
#include <time.h>

#include "rn_err.h"
#include "rn_mem.h"

static char tomb_mark;
#define TOMB ((void *)&tomb_mark)
#define MIN_CAP 16

/* FNV-1a over the bytes, seeded, then a 64-bit finalizer (murmur3's fmix64) so the low bits
 * that pick the slot depend on every input byte. */
static uint64_t hash_of(uint64_t seed, const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* The slot holding the key, or NULL. */
static struct rn_strmap_slot *find(const struct rn_strmap *m, const char *key, size_t len)
{
	if (!m->cap)
		return NULL;
	uint64_t h = hash_of(m->seed, key, len);
	size_t mask = m->cap - 1;
	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		struct rn_strmap_slot *s = &m->slots[i];
		if (!s->key && s->val != TOMB)
			return NULL; /* empty: the end of the chain (the table is never full) */
		if (s->key && s->hash == h && s->len == len && !memcmp(s->key, key, len))
			return s;
	}
}

/* Places an entry known to be absent into a table without tombstones. */
static void place(struct rn_strmap_slot *slots, size_t cap, const struct rn_strmap_slot *e)
{
	size_t mask = cap - 1;
	size_t i = (size_t)e->hash & mask;
	while (slots[i].key)
		i = (i + 1) & mask;
	slots[i] = *e;
}

/* Rebuilds into `cap` slots (dropping tombstones). 0 or RN_ENOMEM (the map unchanged). */
static int rebuild(struct rn_strmap *m, size_t cap)
{
	struct rn_strmap_slot *ns = rn_calloc(cap, sizeof(*ns));
	if (!ns)
		return RN_ENOMEM;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key)
			place(ns, cap, &m->slots[i]);
	rn_free(m->slots);
	m->slots = ns;
	m->cap = cap;
	m->tombs = 0;
	return 0;
}

int rn_strmap_put(struct rn_strmap *m, const char *key, size_t len, void *val)
{
	struct rn_strmap_slot *s;
	if (!val || val == TOMB)
		return RN_EINVAL;
	if (!m->cap)
		m->seed = (uint64_t)(uintptr_t)m * 0x9e3779b97f4a7c15ULL ^ (uint64_t)time(NULL);
	if ((s = find(m, key, len))) {
		s->key = key; /* the new owner's copy of the same bytes */
		s->val = val;
		return 0;
	}
	if (m->n >= RN_STRMAP_MAX)
		return RN_ENOMEM;
	/* at most half full, tombstones included: grow when live entries need it, else
	 * rebuild in place to reclaim the tombstones */
	if (2 * (m->n + m->tombs + 1) > m->cap) {
		/* a quarter full after the rebuild: the next one is n/4 puts away at least */
		size_t cap = MIN_CAP;
		while (cap < 4 * (m->n + 1))
			cap *= 2;
		if (rebuild(m, cap))
			return RN_ENOMEM;
	}
	struct rn_strmap_slot e = {hash_of(m->seed, key, len), key, len, val};
	size_t mask = m->cap - 1;
	size_t i = (size_t)e.hash & mask;
	while (m->slots[i].key)
		i = (i + 1) & mask; /* a tombstone is reused */
	if (m->slots[i].val == TOMB)
		m->tombs--;
	m->slots[i] = e;
	m->n++;
	return 0;
}

void *rn_strmap_get(const struct rn_strmap *m, const char *key, size_t len)
{
	struct rn_strmap_slot *s = find(m, key, len);
	return s ? s->val : NULL;
}

void *rn_strmap_del(struct rn_strmap *m, const char *key, size_t len)
{
	struct rn_strmap_slot *s = find(m, key, len);
	void *val;
	if (!s)
		return NULL;
	val = s->val;
	s->key = NULL;
	s->val = TOMB;
	m->n--;
	m->tombs++;
	return val;
}

void rn_strmap_free(struct rn_strmap *m)
{
	rn_free(m->slots);
	memset(m, 0, sizeof(*m));
}
