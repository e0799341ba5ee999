/*
 * Base64 (RFC 4648): the standard alphabet with padding and the URL alphabet without it (JWT),
 * both ways. Pure functions on caller buffers, no allocation. The decoder is strict: it
 * takes only the alphabet asked for, padding only where it belongs (and, for the URL
 * alphabet, none at all), no whitespace, and a final group whose unused bits are zero, so
 * one text has exactly one decoding and one encoding.
 */
#ifndef RN_B64_H
#define RN_B64_H

#include <stddef.h>
#include <stdint.h>

#define RN_B64_STD 0 /* + and /, padded with = */
#define RN_B64_URL 1 /* - and _, no padding */

/* Characters rn_b64_encode writes for len bytes (without the NUL). */
size_t rn_b64_encoded_len(size_t len, int alphabet);

/* Writes the encoding of p[0..len) and a NUL into out. 0, or RN_ERANGE when it does not fit in
 * cap (out is then "" if cap > 0). */
int rn_b64_encode(const void *p, size_t len, int alphabet, char *out, size_t cap);

/* Decodes s[0..len) into out (cap bytes) and sets *outlen. 0, RN_EINVAL (not base64 of the
 * alphabet, misplaced padding, non-zero trailing bits), RN_ERANGE (does not fit). */
int rn_b64_decode(const char *s, size_t len, int alphabet, uint8_t *out, size_t cap,
		  size_t *outlen);

#endif
