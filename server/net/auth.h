/*
 * Bearer-token check of a call's `authorization` header value against the configured tokens.
 * Pure (no I/O). The scheme `Bearer` is matched case-insensitively (RFC 7235) and may be
 * followed by one or more spaces; the token itself is compared in constant time: every
 * configured token is compared over its full length, without an early exit on the first
 * differing byte and without branching on where a difference is, so the time taken does not
 * tell an attacker how much of a guess was right.
 */
#ifndef RN_SERVER_AUTH_H
#define RN_SERVER_AUTH_H

#include <stddef.h>

/* Whether a (length alen) equals b (length blen). Time depends on alen and blen only, never
 * on the content or the position of the first difference. */
int rn_auth_equal(const char *a, size_t alen, const char *b, size_t blen);

/* 1 when `header` (the authorization value, or NULL when absent) carries one of the n
 * tokens; 0 otherwise. n == 0 means no authentication: always 1. A missing header, another
 * scheme, or an empty token never matches (not even an empty configured token). */
int rn_auth_check(char *const *tokens, size_t n, const char *header);

#endif
