/* OpenSSL's libcrypto behind our types and error codes (see crypto.h). */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_b64.h"
#include "rn_err.h"

#define SALT_LEN 16
#define DK_LEN 32

int rn_crypto_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
			  uint8_t out[32])
{
	unsigned int n = 0;
	static const uint8_t nokey = 0;
	/* HMAC() takes an int key length and a non-NULL key */
	if (klen > 0x7fffffff)
		return RN_EINVAL;
	if (!HMAC(EVP_sha256(), klen ? key : &nokey, (int)klen, msg ? msg : &nokey, mlen, out,
		  &n) ||
	    n != 32)
		return RN_ENOMEM;
	return 0;
}

int rn_crypto_sha256(const void *msg, size_t len, uint8_t out[32])
{
	unsigned int n = 0;
	static const uint8_t none = 0;
	return EVP_Digest(len ? msg : &none, len, out, &n, EVP_sha256(), NULL) && n == 32
		       ? 0
		       : RN_ENOMEM;
}

int rn_crypto_random(void *p, size_t len)
{
	while (len) {
		int n = len > 1 << 20 ? 1 << 20 : (int)len;
		if (RAND_bytes(p, n) != 1)
			return RN_EIO;
		p = (uint8_t *)p + n;
		len -= (size_t)n;
	}
	return 0;
}

int rn_crypto_equal(const void *a, const void *b, size_t len)
{
	return len == 0 || CRYPTO_memcmp(a, b, len) == 0;
}

static int derive(const char *secret, size_t len, const uint8_t *salt, size_t slen, unsigned iter,
		  uint8_t dk[DK_LEN])
{
	static const char none = 0;
	if (len > 0x7fffffff)
		return RN_EINVAL;
	return PKCS5_PBKDF2_HMAC(len ? secret : &none, (int)len, salt, (int)slen, (int)iter,
				 EVP_sha256(), DK_LEN, dk) == 1
		       ? 0
		       : RN_ENOMEM;
}

int rn_crypto_hash_secret(const char *secret, size_t len, unsigned iter, char *out, size_t cap)
{
	uint8_t salt[SALT_LEN], dk[DK_LEN];
	char s64[32], d64[48];
	int rc;
	if (!iter)
		iter = RN_CRYPTO_ITER_DEFAULT;
	if (iter < RN_CRYPTO_ITER_MIN || iter > RN_CRYPTO_ITER_MAX)
		return RN_EINVAL;
	if ((rc = rn_crypto_random(salt, sizeof(salt))) ||
	    (rc = derive(secret, len, salt, sizeof(salt), iter, dk)))
		return rc;
	rn_b64_encode(salt, sizeof(salt), RN_B64_STD, s64, sizeof(s64));
	rn_b64_encode(dk, sizeof(dk), RN_B64_STD, d64, sizeof(d64));
	OPENSSL_cleanse(dk, sizeof(dk));
	if ((size_t)snprintf(out, cap, RN_CRYPTO_HASH_PREFIX "%u$%s$%s", iter, s64, d64) >= cap)
		return RN_ERANGE;
	return 0;
}

/* Splits an encoded hash. 0 or RN_EINVAL. */
static int parse(const char *enc, unsigned *iter, uint8_t *salt, size_t *slen, uint8_t dk[DK_LEN])
{
	const char *p, *d1, *d2;
	char *end;
	size_t n;
	unsigned long it;
	if (!enc || strncmp(enc, RN_CRYPTO_HASH_PREFIX, strlen(RN_CRYPTO_HASH_PREFIX)) ||
	    strlen(enc) >= RN_CRYPTO_HASH_MAX)
		return RN_EINVAL;
	p = enc + strlen(RN_CRYPTO_HASH_PREFIX);
	if (*p < '1' || *p > '9')
		return RN_EINVAL;
	it = strtoul(p, &end, 10);
	if (*end != '$' || it < RN_CRYPTO_ITER_MIN || it > RN_CRYPTO_ITER_MAX)
		return RN_EINVAL;
	d1 = end + 1;
	if (!(d2 = strchr(d1, '$')))
		return RN_EINVAL;
	if (rn_b64_decode(d1, (size_t)(d2 - d1), RN_B64_STD, salt, 64, slen) || *slen < 8)
		return RN_EINVAL;
	if (rn_b64_decode(d2 + 1, strlen(d2 + 1), RN_B64_STD, dk, DK_LEN, &n) || n != DK_LEN)
		return RN_EINVAL;
	*iter = (unsigned)it;
	return 0;
}

int rn_crypto_hash_check(const char *encoded)
{
	uint8_t salt[64], dk[DK_LEN];
	size_t slen;
	unsigned iter;
	return parse(encoded, &iter, salt, &slen, dk);
}

int rn_crypto_verify_secret(const char *encoded, const char *secret, size_t len)
{
	uint8_t salt[64], want[DK_LEN], got[DK_LEN];
	size_t slen;
	unsigned iter;
	int rc;
	if (parse(encoded, &iter, salt, &slen, want))
		return RN_EINVAL;
	if ((rc = derive(secret, len, salt, slen, iter, got)))
		return rc;
	rc = rn_crypto_equal(want, got, DK_LEN);
	OPENSSL_cleanse(got, sizeof(got));
	return rc;
}
