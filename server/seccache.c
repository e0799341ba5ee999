/* Verified client secrets as keyed hashes, in bounded 4-way sets; see seccache.h. */
#include "seccache.h"

#include <string.h>

#include "crypto.h"
#include "rn_err.h"
#include "rn_mem.h"

#define WAYS 4

struct entry {
	uint64_t tag;  /* hash of the client id: which entry is that client's */
	uint64_t used; /* tick of the last hit or put; 0 = empty */
	uint8_t mac[32];
};

struct rn_seccache {
	struct entry *e; /* nsets * WAYS, NULL when cap is 0 */
	size_t nsets;    /* a power of two */
	size_t count;
	uint64_t tick;
	uint8_t key[RN_SECCACHE_KEY_LEN];
};

int rn_seccache_create(struct rn_seccache **out, size_t cap, const uint8_t *key)
{
	struct rn_seccache *c;
	*out = NULL;
	if (cap > RN_SECCACHE_MAX)
		return RN_EINVAL;
	if (!(c = rn_calloc(1, sizeof(*c))))
		return RN_ENOMEM;
	memcpy(c->key, key, RN_SECCACHE_KEY_LEN);
	if (cap) {
		c->nsets = 1;
		while (c->nsets * WAYS < cap)
			c->nsets *= 2;
		if (!(c->e = rn_calloc(c->nsets * WAYS, sizeof(*c->e)))) {
			rn_free(c);
			return RN_ENOMEM;
		}
	}
	*out = c;
	return 0;
}

void rn_seccache_destroy(struct rn_seccache *c)
{
	if (!c)
		return;
	explicit_bzero(c->key, sizeof(c->key));
	rn_free(c->e);
	rn_free(c);
}

/* FNV-1a, 64 bits: spreads client ids over the sets (only verified ids get entries, so a
 * client cannot crowd a set with ids of its choosing). */
static uint64_t tag_of(const char *id)
{
	uint64_t h = 1469598103934665603ull;
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ull;
	return h;
}

/* HMAC(key, id NUL hash NUL secret). 0 or RN_ENOMEM. */
static int mac_of(const struct rn_seccache *c, const char *id, const char *hash, const char *secret,
		  size_t len, uint8_t mac[32])
{
	size_t il = strlen(id), hl = strlen(hash), n = il + hl + 2 + len;
	uint8_t *m = rn_malloc(n);
	int rc;
	if (!m)
		return RN_ENOMEM;
	memcpy(m, id, il + 1);
	memcpy(m + il + 1, hash, hl + 1);
	memcpy(m + il + hl + 2, secret, len);
	rc = rn_crypto_hmac_sha256(c->key, sizeof(c->key), m, n, mac);
	explicit_bzero(m, n);
	rn_free(m);
	return rc ? RN_ENOMEM : 0;
}

int rn_seccache_hit(struct rn_seccache *c, const char *client_id, const char *secret_hash,
		    const char *secret, size_t len)
{
	uint8_t mac[32];
	uint64_t tag = tag_of(client_id);
	struct entry *set, *found = NULL;
	if (!c->e || mac_of(c, client_id, secret_hash, secret, len, mac))
		return 0;
	set = c->e + (tag & (c->nsets - 1)) * WAYS;
	for (int i = 0; i < WAYS; i++) /* no early exit: the time tells nothing */
		if (set[i].used && set[i].tag == tag && rn_crypto_equal(set[i].mac, mac, 32))
			found = &set[i];
	if (found)
		found->used = ++c->tick;
	return found != NULL;
}

int rn_seccache_put(struct rn_seccache *c, const char *client_id, const char *secret_hash,
		    const char *secret, size_t len)
{
	uint8_t mac[32];
	uint64_t tag = tag_of(client_id);
	struct entry *set, *slot = NULL;
	if (!c->e)
		return 0;
	if (mac_of(c, client_id, secret_hash, secret, len, mac))
		return RN_ENOMEM;
	set = c->e + (tag & (c->nsets - 1)) * WAYS;
	for (int i = 0; i < WAYS && !slot; i++) /* the client's own entry first */
		if (set[i].used && set[i].tag == tag)
			slot = &set[i];
	for (int i = 0; i < WAYS && !slot; i++)
		if (!set[i].used)
			slot = &set[i];
	if (!slot) { /* the least recently used */
		slot = &set[0];
		for (int i = 1; i < WAYS; i++)
			if (set[i].used < slot->used)
				slot = &set[i];
	}
	if (!slot->used)
		c->count++;
	slot->tag = tag;
	slot->used = ++c->tick;
	memcpy(slot->mac, mac, 32);
	return 0;
}

void rn_seccache_clear(struct rn_seccache *c)
{
	if (c->e)
		memset(c->e, 0, c->nsets * WAYS * sizeof(*c->e));
	c->count = 0;
}

size_t rn_seccache_count(const struct rn_seccache *c)
{
	return c->count;
}
