/*
 * The server's cryptography, and the only code that includes OpenSSL's libcrypto headers:
 * HMAC-SHA256 (signed tokens), random bytes (token keys, salts, token ids), SHA-256, a
 * constant-time comparison, and stored secrets as salted PBKDF2-HMAC-SHA256 hashes encoded
 * `pbkdf2-sha256$<iterations>$<salt, base64>$<hash, base64>` (what `runnel-server
 * hash-secret` prints and `secret_hash` / `tokens` in the config take). It holds no state:
 * every function is safe from any thread. It does no file or network I/O (random bytes come
 * from OpenSSL's generator).
 */
#ifndef RN_SERVER_CRYPTO_H
#define RN_SERVER_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define RN_CRYPTO_HASH_PREFIX "pbkdf2-sha256$"
#define RN_CRYPTO_ITER_DEFAULT 100000 /* hash-secret's iterations */
#define RN_CRYPTO_ITER_MIN 1000       /* fewer in a stored hash: refused as too weak */
#define RN_CRYPTO_ITER_MAX 10000000   /* more: refused (each check would take seconds) */
#define RN_CRYPTO_HASH_MAX 160        /* longest encoded hash, NUL included */

/* out = HMAC-SHA256(key, msg). 0 or RN_ENOMEM (OpenSSL could not allocate). */
int rn_crypto_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
			  uint8_t out[32]);
/* out = SHA-256(msg). 0 or RN_ENOMEM. */
int rn_crypto_sha256(const void *msg, size_t len, uint8_t out[32]);
/* Fills p with len cryptographically random bytes. 0 or RN_EIO (no entropy). */
int rn_crypto_random(void *p, size_t len);
/* 1 when a and b (len bytes each) are equal; the time depends on len only. */
int rn_crypto_equal(const void *a, const void *b, size_t len);

/* Encodes a new salted hash of secret[0..len) with iter iterations (0 = the default) into
 * out (cap >= RN_CRYPTO_HASH_MAX). 0, RN_EINVAL (iter out of range), RN_EIO (no random
 * salt), RN_ERANGE (cap). */
int rn_crypto_hash_secret(const char *secret, size_t len, unsigned iter, char *out, size_t cap);
/* Whether `encoded` is a well-formed hash (to check a config). 0 or RN_EINVAL. */
int rn_crypto_hash_check(const char *encoded);
/* 1 when secret[0..len) is the one `encoded` was made from, 0 when not, RN_EINVAL when
 * encoded is malformed. The final comparison is constant time. */
int rn_crypto_verify_secret(const char *encoded, const char *secret, size_t len);

#endif
