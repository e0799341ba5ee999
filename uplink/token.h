/*
 * The OAuth 2.0 client-credentials exchange (RFC 6749 4.4) as the agent does it with a
 * Zerobus token endpoint (POST <token_url>, HTTP Basic client id and secret, form
 * grant_type=client_credentials&scope=all-apis), I/O-free: the request's pieces, the
 * parser of the answer and the refresh policy. The uplink does the HTTP (libcurl) and keeps
 * the token. Everything parsed comes from the network, so every value is bounded and
 * checked; an error answer (RFC 6749 5.2) is kept as its code and a printable description.
 * Fuzzed by tests/fuzz/fuzz_token_response.c. A token is a secret: nothing here logs.
 */
#ifndef RN_UPLINK_TOKEN_H
#define RN_UPLINK_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* Longest access token taken (the agent's header limit, RN_CONF_HDR_MAX). */
#define RN_TOKEN_MAX 4096
/* Longest token endpoint answer read; a longer body is refused. */
#define RN_TOKEN_BODY_MAX (16u << 10)
/* Longest lifetime believed (a day): a larger expires_in is taken as this. */
#define RN_TOKEN_LIFETIME_MAX ((int64_t)24 * 3600)

/* The form body of the request. */
#define RN_TOKEN_FORM "grant_type=client_credentials&scope=all-apis"

struct rn_token_resp {
	char access_token[RN_TOKEN_MAX + 1]; /* "" unless the answer is usable */
	int64_t expires_in;                  /* seconds, 1..RN_TOKEN_LIFETIME_MAX */
	char error[64]; /* RFC 6749 5.2 code ("invalid_client"), printable, "" if none */
	char why[256];  /* what was wrong with the answer, in words; "" if usable */
};

/*
 * Parses a token endpoint answer: HTTP status and body. 0 when it is usable: status 200, a
 * JSON object with a non-empty access_token of at most RN_TOKEN_MAX bytes of visible ASCII
 * (it goes into a header), token_type "Bearer" (any case) and an integer expires_in >= 1
 * (clamped to RN_TOKEN_LIFETIME_MAX). Otherwise RN_EINVAL with out->why saying why,
 * including the endpoint's error and error_description when it sent them. Pure.
 */
int rn_token_parse(int http_status, const char *body, size_t len, struct rn_token_resp *out);

/* The "authorization: Basic ..." header for id and secret (RFC 7617: base64 of
 * "id:secret") into out. 0, or RN_ERANGE when it does not fit in cap. */
int rn_token_basic_header(const char *id, const char *secret, char *out, size_t cap);

/* Milliseconds after a token was received at which to fetch the next one: the earlier of
 * 80 % of its lifetime and 60 s before it expires, but never before half its lifetime (a
 * short-lived token is refreshed at half-life). */
int64_t rn_token_refresh_after_ms(int64_t expires_in_s);

#endif
