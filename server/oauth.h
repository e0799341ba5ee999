/*
 * Signed tokens and the authorization decision, I/O-free. It parses what the token endpoint
 * receives (an `Authorization: Basic` header, a form-urlencoded body, the
 * `authorization_details` JSON of Unity Catalog privileges), decides a token request
 * (RFC 6749 client credentials: principal lookup, secret check, requested tables within the
 * principal's patterns), issues JWTs (HS256: header {"alg":"HS256","typ":"JWT"}, claims
 * sub, iat, exp, jti, tables) and verifies them (signature in constant time, alg HS256 only,
 * exp with a skew), and decides, for a gRPC call or a REST request alike, who is calling and
 * whether it may write a table (rn_authz_decide). The HTTP plumbing, the clock, the key file
 * and the random jti are the caller's (server.c); secrets and HMACs go through crypto.h.
 *
 * Objects: none; results land in caller structs. Not thread-safe only in that the caller's
 * buffers are shared; the functions keep no state.
 */
#ifndef RN_SERVER_OAUTH_H
#define RN_SERVER_OAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "principal.h"
#include "rn_buf.h"

#define RN_OAUTH_TABLES_MAX 32   /* tables (or patterns) in one token */
#define RN_OAUTH_TABLE_MAX 400   /* bytes of one, NUL included */
#define RN_OAUTH_TOKEN_MAX 16384 /* longest token verified */
#define RN_OAUTH_BODY_MAX 65536  /* longest token request body */
#define RN_OAUTH_KEY_MIN 32      /* bytes of a signing key, at least */
#define RN_OAUTH_FIELD_MAX 1024  /* longest form value kept (resource, secret, scope...) */

/* The claims of a verified token. */
struct rn_oauth_claims {
	char sub[RN_PRINCIPAL_NAME_MAX + 1];
	char jti[64];
	int64_t iat, exp;
	size_t ntables;
	char tables[RN_OAUTH_TABLES_MAX][RN_OAUTH_TABLE_MAX];
};

/*
 * Issues a token for principal `sub` granting n table patterns, valid from iat for ttl
 * seconds, with id jti (NUL-terminated, printable). Appends the JWT (no NUL) to out. 0,
 * RN_EINVAL (n > RN_OAUTH_TABLES_MAX, a key shorter than RN_OAUTH_KEY_MIN), RN_ENOMEM.
 */
int rn_oauth_issue(const uint8_t *key, size_t klen, const char *sub, char *const *tables, size_t n,
		   int64_t iat, int64_t ttl, const char *jti, struct rn_buf *out);
/*
 * Verifies tok[0..len) (signature, alg, claims) at time now (s) allowing skew seconds of
 * clock difference on exp and iat. 0 with c filled; RN_EINVAL (malformed, wrong alg, bad
 * signature, a claim missing or of the wrong type); RN_ERANGE (expired, or issued in the
 * future): c is filled then too.
 */
int rn_oauth_verify(const uint8_t *key, size_t klen, const char *tok, size_t len, int64_t now,
		    int64_t skew, struct rn_oauth_claims *c);
/* Whether a bearer value looks like a JWT (three base64url parts): then it is verified as
 * one, never compared with static tokens. */
int rn_oauth_is_jwt(const char *tok, size_t len);

/*
 * The client id and secret of an `Authorization: Basic base64(id:secret)` value (scheme in
 * any case; id and secret form-urlencoded inside, RFC 6749 2.3.1). 0; RN_ENOTFOUND when hdr
 * is NULL or another scheme; RN_EINVAL when malformed or a part is longer than its cap - 1.
 */
int rn_oauth_parse_basic(const char *hdr, char *id, size_t idcap, char *secret, size_t scap);

/* A token request body. has_* say which parameters were present. */
struct rn_oauth_form {
	char grant_type[64];
	char scope[256];
	char resource[RN_OAUTH_FIELD_MAX];
	char client_id[256];
	char client_secret[RN_OAUTH_FIELD_MAX];
	char details[RN_OAUTH_BODY_MAX]; /* authorization_details, decoded (JSON text) */
	int has_grant_type, has_scope, has_resource, has_client_id, has_client_secret, has_details;
};
/*
 * Parses application/x-www-form-urlencoded `body` (+ and %XX decoded; unknown parameters
 * ignored). 0, or RN_EINVAL with *why set: bad encoding, a value with a NUL or too long for
 * its field, a known parameter given twice (RFC 6749 3.1).
 */
int rn_oauth_parse_form(const char *body, size_t len, struct rn_oauth_form *f, const char **why);
/*
 * The tables an authorization_details JSON array asks to write: every object with type
 * "unity_catalog_privileges", object_type "TABLE" and "MODIFY" among its privileges gives
 * its object_full_path; other objects (USE CATALOG, USE SCHEMA, SELECT...) are accepted and
 * grant nothing. Tables are copied into tables[*n] (duplicates once). 0, or RN_EINVAL with
 * *why: not an array of objects, a field of the wrong type, a path that is not a table name,
 * more than RN_OAUTH_TABLES_MAX tables.
 */
int rn_oauth_parse_details(const char *json, size_t len,
			   char tables[RN_OAUTH_TABLES_MAX][RN_OAUTH_TABLE_MAX], size_t *n,
			   const char **why);

/* What the token endpoint needs from the server. */
struct rn_oauth_ctx {
	const struct rn_principals *principals;
	const uint8_t *key;
	size_t klen;
	int64_t now;     /* wall clock, s */
	int64_t ttl;     /* token lifetime, s */
	const char *jti; /* a fresh random id for the token issued */
};

/* One request to POST /oidc/v1/token. */
struct rn_oauth_request {
	const char *method;        /* "POST" */
	const char *content_type;  /* or NULL */
	const char *authorization; /* or NULL */
	const uint8_t *body;
	size_t body_len;
};

/* The answer: HTTP status and a JSON body (application/json); www_authenticate says to add
 * `WWW-Authenticate: Basic realm="runnel"` (401). principal: who got a token, or "". */
struct rn_oauth_response {
	int status;
	int www_authenticate;
	struct rn_buf body;
	char principal[RN_PRINCIPAL_NAME_MAX + 1];
	char error[64]; /* the RFC 6749 error code of a refusal, for the log; "" on success */
};

/*
 * Decides one token request (contracts: 200 {access_token, token_type Bearer, expires_in,
 * scope all-apis}; 400 invalid_request / unsupported_grant_type / invalid_scope; 401
 * invalid_client; 405 for another method). out->body is reset and filled (the caller frees
 * it). 0, or RN_ENOMEM (no answer could be built). It checks the secret itself (PBKDF2, tens
 * of ms): the server splits it into start, the check on a worker, and finish, below.
 */
int rn_oauth_token_endpoint(const struct rn_oauth_ctx *c, const struct rn_oauth_request *r,
			    struct rn_oauth_response *out);

/*
 * A token request between rn_oauth_token_start and rn_oauth_token_finish: what the secret
 * check needs (copies: the request and the principals may be gone meanwhile), and the
 * verdicts of the checks made before it, told only once the secret verified (an
 * unauthenticated client learns nothing of a principal's tables). Self-contained, no
 * pointers but static strings: it may be handed to another thread for the check.
 */
struct rn_oauth_pending {
	char client_id[256];
	char secret[RN_OAUTH_FIELD_MAX]; /* NUL-terminated, secret_len bytes */
	size_t secret_len;
	char secret_hash[160];   /* the principal's, at start (RN_CRYPTO_HASH_MAX) */
	int scope_bad;           /* scope asked for more than all-apis */
	const char *details_why; /* authorization_details refused (static), or NULL */
	size_t ntables;          /* tables asked for in authorization_details */
	char tables[RN_OAUTH_TABLES_MAX][RN_OAUTH_TABLE_MAX];
};

/*
 * The part of a token request before the secret check: method, content type, form, Basic
 * credentials, the principal of the client id, scope and authorization_details parsed.
 * 0: answered (out filled as rn_oauth_token_endpoint would: 405, 400, 401 for no
 * credentials or an unknown client id); RN_EAGAIN: pend is filled and the secret must be
 * checked, `rn_crypto_verify_secret(pend->secret_hash, pend->secret, pend->secret_len)` on
 * any thread, then rn_oauth_token_finish; RN_ENOMEM.
 */
int rn_oauth_token_start(const struct rn_oauth_ctx *c, const struct rn_oauth_request *r,
			 struct rn_oauth_response *out, struct rn_oauth_pending *pend);
/*
 * The rest, once the secret check said `verified` (1 = the secret matches; anything else is
 * a refusal): the principal is looked up again in c->principals (a reload may have come
 * between), and must still have the secret_hash checked, else 401; then scope, tables and
 * the token, as rn_oauth_token_endpoint. The secret in pend is wiped. 0 or RN_ENOMEM.
 */
int rn_oauth_token_finish(const struct rn_oauth_ctx *c, struct rn_oauth_pending *pend, int verified,
			  struct rn_oauth_response *out);

/* One authorization question: credentials of a call or request, and the table (NULL when not
 * known yet: identity only). */
struct rn_authz_request {
	const char *authorization; /* the header's value, or NULL */
	const char *peer_identity; /* verified client certificate identity, or NULL */
	const char *table;         /* or NULL */
};

struct rn_authz {
	const struct rn_principal *principal; /* who (NULL when refused unauthenticated) */
	int64_t expires;                      /* a signed token's exp (s); 0 otherwise */
	char msg[300];                        /* a refusal's message */
};

/*
 * The authorization decision (contracts: the one function for gRPC and REST): who calls
 * (bearer: a signed token if it looks like a JWT, else a static token; without an
 * authorization header, the client certificate's identity), then whether the table (if
 * given) is writable: reserved tables never, the principal's patterns and, for a signed
 * token, the token's tables too. Returns 0 (allowed), RN_GRPC_UNAUTHENTICATED or
 * RN_GRPC_PERMISSION_DENIED with out->msg. With no principal configured at all every caller
 * is the anonymous principal.
 */
int rn_authz_decide(const struct rn_principals *ps, const uint8_t *key, size_t klen, int64_t now,
		    int64_t skew, const struct rn_authz_request *r, struct rn_authz *out);

#endif
