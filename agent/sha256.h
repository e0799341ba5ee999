/*
 * SHA-256 (FIPS 180-4), small and dependency-free: the agent names the config it runs by
 * its digest (agent/health.h) and must not link a crypto library for that (an agent-only
 * build has no OpenSSL; the server's cryptography is server/crypto.c). Not for secrets: no
 * constant-time claims. Pure; the context is a plain value owned by the caller.
 */
#ifndef RN_SHA256_H
#define RN_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct rn_sha256 {
	uint32_t h[8];
	uint64_t bytes;  /* message bytes so far */
	uint8_t blk[64]; /* a partial block */
	size_t nblk;     /* bytes in blk */
};

void rn_sha256_init(struct rn_sha256 *c);
void rn_sha256_update(struct rn_sha256 *c, const void *p, size_t len);
void rn_sha256_final(struct rn_sha256 *c, uint8_t out[32]);
/* The digest of [p, p+len) as 64 lower-case hex digits and a NUL. */
void rn_sha256_hex(const void *p, size_t len, char out[65]);

#endif
