/*
 * AWS Signature Version 4 for the S3 client (store/s3.c): the canonical request, the string to
 * sign, the signing key and the Authorization header, as pure functions of a request
 * description, credentials and a time. No I/O and no libcurl: HMAC-SHA256 and SHA-256 come from
 * server/crypto.h, so the signer is checked against AWS's published test suite
 * (tests/unit/data/sigv4/) and fuzzed (tests/fuzz/fuzz_sigv4.c). We sign ourselves rather than
 * use CURLOPT_AWS_SIGV4 so the bytes signed are the same on every libcurl (7.88's needs the
 * payload hash header and a pre-sorted query, see server/store/README.md).
 *
 * An rn_sigv4_out is a value the caller owns (zero it, sign into it, rn_sigv4_out_free); every
 * function is safe from any thread.
 */
#ifndef RN_STORE_SIGV4_H
#define RN_STORE_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

#define RN_SIGV4_MAX_HEADERS 64 /* more signed headers: RN_EINVAL */
#define RN_SIGV4_MAX_PARAMS 256 /* more query parameters: RN_EINVAL */
#define RN_SIGV4_UNSIGNED "UNSIGNED-PAYLOAD"

struct rn_sigv4_header {
	const char *name;  /* any case; lower-cased when signed */
	const char *value; /* trimmed and inner whitespace runs folded to one space when signed */
};

struct rn_sigv4_cred {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL or "": none; else signed as x-amz-security-token */
	const char *region;        /* "us-east-1" */
	const char *service;       /* "s3" */
};

struct rn_sigv4_req {
	const char *method; /* "GET", "PUT", ... */
	/* The path before percent-encoding (an object key's bytes after "/bucket/"); it is encoded
	 * once, keeping unreserved characters and '/', which is also what goes on the wire. */
	const char *path;
	/* The query as on the wire, without '?', or NULL: each name and value is decoded and
	 * re-encoded, a name without '=' gets an empty value, and pairs are sorted. */
	const char *query;
	const struct rn_sigv4_header *headers; /* signed headers; must include Host */
	size_t n_headers;
	/* The payload's SHA-256 in lower-case hex, or RN_SIGV4_UNSIGNED; NULL = hash of empty. */
	const char *payload_hash;
	int content_sha256; /* also sign an x-amz-content-sha256 header (S3 requires it) */
	int normalize;      /* remove "." / ".." and empty path segments (not for S3) */
};

struct rn_sigv4_out {
	char amz_date[17];           /* x-amz-date value, "20150830T123600Z" */
	struct rn_buf canonical;     /* the canonical request, NUL-terminated */
	struct rn_buf to_sign;       /* the string to sign, NUL-terminated */
	struct rn_buf authorization; /* the Authorization header's value, NUL-terminated */
	char signature[65];          /* hex */
};

/* Signs r with c at unix time t (seconds): fills out (which must be zeroed or freed before).
 * The caller sends the request with its headers plus x-amz-date = out->amz_date, the session
 * token header when c has one, x-amz-content-sha256 when r->content_sha256, and Authorization =
 * out->authorization. 0, RN_EINVAL (NULL fields, too many headers or parameters, a header
 * name that is not a token), RN_ENOMEM. On error out holds nothing to free beyond
 * rn_sigv4_out_free. */
int rn_sigv4_sign(const struct rn_sigv4_cred *c, const struct rn_sigv4_req *r, int64_t t,
		  struct rn_sigv4_out *out);
void rn_sigv4_out_free(struct rn_sigv4_out *out);

/* The canonical request alone into b (appended, not NUL-terminated), with the x-amz-date
 * (and token, content hash) headers merged in. Errors as rn_sigv4_sign. For the fuzzer. */
int rn_sigv4_canonical(const struct rn_sigv4_req *r, const char *amz_date, const char *token,
		       struct rn_buf *b);

/* Appends s[0..len) percent-encoded the SigV4 way (A-Z a-z 0-9 - . _ ~ kept, and '/' when
 * keep_slash; everything else %XX upper-case). 0 or RN_ENOMEM. */
int rn_sigv4_encode(struct rn_buf *b, const char *s, size_t len, int keep_slash);

/* Lower-case hex of SHA-256(p[0..len)) into hex[65]. 0 or RN_ENOMEM. */
int rn_sigv4_sha256_hex(const void *p, size_t len, char hex[65]);

#endif
