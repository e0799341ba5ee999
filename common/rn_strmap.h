/*
 * A hash map from byte-string keys to pointers: open addressing with linear probing, the
 * full 64-bit hash kept in each slot so a probe compares bytes only on a hash match. It
 * stores pointers, never copies: a key must stay valid and unchanged while its entry is in
 * the map (the usual owner is the value itself, e.g. a stream whose id is the key). It does
 * no I/O and knows nothing of what it maps; the server indexes its streams by id with it.
 *
 * Lookups cost O(1) on average whatever the number of entries. The hash is seeded per map
 * (from the map's address and the time of its first insertion), so a peer that can choose
 * the keys looked up cannot aim at one probe chain it learned elsewhere; keys inserted are
 * expected to be chosen by the owner (random ids), not by peers.
 *
 * A zeroed struct is an empty map; rn_strmap_free returns it to that state. Deletions leave
 * tombstones, cleared when the table is rebuilt (at growth, or in place when tombstones pile
 * up). At most RN_STRMAP_MAX entries: past it, a put fails with RN_ENOMEM. Not thread-safe:
 * one owner (the server's loop thread).
 */
#ifndef RN_STRMAP_H
#define RN_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#define RN_STRMAP_MAX ((size_t)1 << 26) /* entries: a hard cap, 64 M */

struct rn_strmap_slot {
	uint64_t hash;   /* of the key; meaningless while key is NULL */
	const char *key; /* NULL: empty, or a tombstone when val is the map's tombstone mark */
	size_t len;
	void *val;
};

/* Fields are the module's; read `n` for the entry count. */
struct rn_strmap {
	struct rn_strmap_slot *slots; /* cap slots, cap a power of two, or NULL */
	size_t cap;
	size_t n;     /* live entries */
	size_t tombs; /* deleted slots not yet reclaimed */
	uint64_t seed;
};

/*
 * Maps key[0..len) to val (not NULL), replacing the value of an equal key already in. The map
 * keeps the key pointer (not a copy): it must outlive the entry. 0, RN_EINVAL (val NULL),
 * RN_ENOMEM (growing failed, or RN_STRMAP_MAX entries: the map is unchanged).
 */
int rn_strmap_put(struct rn_strmap *m, const char *key, size_t len, void *val);
/* The value of key[0..len), or NULL. */
void *rn_strmap_get(const struct rn_strmap *m, const char *key, size_t len);
/* Removes key[0..len); returns its value, or NULL if it was not in. Never allocates. */
void *rn_strmap_del(struct rn_strmap *m, const char *key, size_t len);
/* Frees the slots (not the keys or values); the map is empty and usable again. */
void rn_strmap_free(struct rn_strmap *m);

#endif
