/*
 * The cache of verified client secrets for the token endpoint: a client that proved its
 * secret once (a PBKDF2 check, tens of milliseconds on a worker) is not made to pay that
 * again on every refresh. An entry is a keyed hash, HMAC-SHA256 under a random key of the
 * process (given at create; never stored anywhere else), of (client id, the principal's
 * secret_hash, the secret): never the secret, and useless outside this process. Since the
 * secret_hash is inside the HMAC, an entry stops matching by itself once the principal's
 * hash changes; the server also clears the whole cache on every reload of the principals.
 * Only a secret that verified is ever added (rn_seccache_put after a successful check): a
 * wrong one is never a hit, and always costs a full check.
 *
 * Bounded: `cap` entries (rounded up to a power of two, at most RN_SECCACHE_MAX), one per
 * client id, in 4-way sets chosen by a hash of the client id; a full set replaces its
 * least recently used entry. Lookups compare HMACs in constant time (crypto.h).
 *
 * Pure: no I/O, no clock; HMACs through crypto.h. Lifetime: create/destroy by the server,
 * which uses it from the loop thread only (not thread-safe).
 */
#ifndef RN_SERVER_SECCACHE_H
#define RN_SERVER_SECCACHE_H

#include <stddef.h>
#include <stdint.h>

#define RN_SECCACHE_MAX (1u << 20)
#define RN_SECCACHE_KEY_LEN 32

struct rn_seccache;

/* A cache of up to cap entries (0 = a cache that keeps nothing: every lookup misses) under
 * key[0..RN_SECCACHE_KEY_LEN). 0, RN_EINVAL (cap over RN_SECCACHE_MAX), RN_ENOMEM. */
int rn_seccache_create(struct rn_seccache **out, size_t cap, const uint8_t *key);
void rn_seccache_destroy(struct rn_seccache *c);

/* 1 when `secret` is the last secret that verified for client_id against secret_hash, 0
 * when not (or the HMAC could not be computed). */
int rn_seccache_hit(struct rn_seccache *c, const char *client_id, const char *secret_hash,
		    const char *secret, size_t len);
/* Remembers that `secret` verified for client_id against secret_hash (replacing the
 * client's previous entry). 0 or RN_ENOMEM (no HMAC: nothing cached). */
int rn_seccache_put(struct rn_seccache *c, const char *client_id, const char *secret_hash,
		    const char *secret, size_t len);
/* Forgets every entry (principals reloaded). */
void rn_seccache_clear(struct rn_seccache *c);
/* Entries held now. */
size_t rn_seccache_count(const struct rn_seccache *c);

#endif
