/* Token request parsing, JWT issue/verify and the authorization decision (see oauth.h). */
#include "oauth.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "rn_b64.h"
#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_json.h"
#include "rn_mem.h"
#include "rn_url.h"

static const char jwt_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* Appends base64url of p[0..len). */
static int put_b64url(struct rn_buf *b, const void *p, size_t len)
{
	size_t n = rn_b64_encoded_len(len, RN_B64_URL);
	int rc;
	if ((rc = rn_buf_reserve(b, n + 1)))
		return rc;
	rn_b64_encode(p, len, RN_B64_URL, (char *)b->data + b->len, n + 1);
	b->len += n;
	return 0;
}

int rn_oauth_issue(const uint8_t *key, size_t klen, const char *sub, char *const *tables, size_t n,
		   int64_t iat, int64_t ttl, const char *jti, struct rn_buf *out)
{
	struct rn_buf claims = {0};
	uint8_t mac[32];
	size_t start = out->len;
	int rc = 0;
	if (klen < RN_OAUTH_KEY_MIN || n > RN_OAUTH_TABLES_MAX)
		return RN_EINVAL;
	rc = rn_buf_append_str(&claims, "{\"sub\":");
	rc = rc ? rc : rn_json_put_str(&claims, sub, strlen(sub));
	rc = rc ? rc
		: rn_buf_printf(&claims, ",\"iat\":%" PRId64 ",\"exp\":%" PRId64 ",\"jti\":", iat,
				iat + ttl);
	rc = rc ? rc : rn_json_put_str(&claims, jti, strlen(jti));
	rc = rc ? rc : rn_buf_append_str(&claims, ",\"tables\":[");
	for (size_t i = 0; i < n && !rc; i++) {
		if (i)
			rc = rn_buf_append_u8(&claims, ',');
		rc = rc ? rc : rn_json_put_str(&claims, tables[i], strlen(tables[i]));
	}
	rc = rc ? rc : rn_buf_append_str(&claims, "]}");
	rc = rc ? rc : put_b64url(out, jwt_header, strlen(jwt_header));
	rc = rc ? rc : rn_buf_append_u8(out, '.');
	rc = rc ? rc : put_b64url(out, claims.data, claims.len);
	rc = rc ? rc : rn_crypto_hmac_sha256(key, klen, out->data + start, out->len - start, mac);
	rc = rc ? rc : rn_buf_append_u8(out, '.');
	rc = rc ? rc : put_b64url(out, mac, sizeof(mac));
	rn_buf_free(&claims);
	if (rc)
		out->len = start;
	return rc;
}

int rn_oauth_is_jwt(const char *tok, size_t len)
{
	size_t dots = 0;
	for (size_t i = 0; i < len; i++) {
		char c = tok[i];
		if (c == '.')
			dots++;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return dots == 2 && len > 4 && !memcmp(tok, "eyJ", 3);
}

/* A JSON string value into out (cap bytes with the NUL). 0 or RN_EINVAL (not a string, has
 * a NUL, too long). */
static int jstr(struct rn_json_span v, char *out, size_t cap)
{
	struct rn_buf b = {.max = cap + 8};
	int rc = rn_json_string(v, &b);
	if (!rc && (b.len >= cap || memchr(b.data, 0, b.len)))
		rc = RN_EINVAL;
	if (!rc)
		memcpy(out, b.data, b.len + 1);
	rn_buf_free(&b);
	return rc ? RN_EINVAL : 0;
}

static int header_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	int *alg_ok = ctx;
	char alg[16];
	if (rn_json_span_eq(k, "alg")) {
		if (*alg_ok || jstr(v, alg, sizeof(alg)) || strcmp(alg, "HS256"))
			return RN_EINVAL;
		*alg_ok = 1;
	}
	return 0;
}

struct claims_walk {
	struct rn_oauth_claims *c;
	unsigned seen; /* bits: sub, iat, exp, jti, tables */
};

static int table_elem(void *ctx, size_t i, struct rn_json_span v)
{
	struct rn_oauth_claims *c = ctx;
	if (i >= RN_OAUTH_TABLES_MAX || jstr(v, c->tables[i], RN_OAUTH_TABLE_MAX) ||
	    rn_table_pattern_check(c->tables[i]))
		return RN_EINVAL;
	c->ntables = i + 1;
	return 0;
}

static int claim_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct claims_walk *w = ctx;
	static const char *const names[] = {"sub", "iat", "exp", "jti", "tables"};
	unsigned i;
	for (i = 0; i < 5 && !rn_json_span_eq(k, names[i]); i++)
		;
	if (i == 5)
		return 0; /* another claim: ignored */
	if (w->seen & 1u << i)
		return RN_EINVAL; /* a claim twice: which one would count? */
	w->seen |= 1u << i;
	switch (i) {
	case 0: return jstr(v, w->c->sub, sizeof(w->c->sub));
	case 1: return rn_json_int64(v, &w->c->iat) ? RN_EINVAL : 0;
	case 2: return rn_json_int64(v, &w->c->exp) ? RN_EINVAL : 0;
	case 3: return jstr(v, w->c->jti, sizeof(w->c->jti));
	default: return rn_json_array_walk(v, table_elem, w->c) ? RN_EINVAL : 0;
	}
}

int rn_oauth_verify(const uint8_t *key, size_t klen, const char *tok, size_t len, int64_t now,
		    int64_t skew, struct rn_oauth_claims *c)
{
	const char *d1, *d2;
	uint8_t mac[32], sig[40];
	uint8_t *part = NULL;
	size_t n, plen;
	int alg_ok = 0, rc = RN_EINVAL;
	struct claims_walk w = {c, 0};

	memset(c, 0, sizeof(*c));
	if (klen < RN_OAUTH_KEY_MIN || !tok || len > RN_OAUTH_TOKEN_MAX ||
	    !rn_oauth_is_jwt(tok, len))
		return RN_EINVAL;
	d1 = memchr(tok, '.', len);
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
	/* the signature first: nothing of an unsigned token is parsed */
	if (rn_b64_decode(d2 + 1, len - (size_t)(d2 + 1 - tok), RN_B64_URL, sig, sizeof(sig), &n) ||
	    n != 32 || rn_crypto_hmac_sha256(key, klen, tok, (size_t)(d2 - tok), mac) ||
	    !rn_crypto_equal(mac, sig, 32))
		return RN_EINVAL;
	if (!(part = rn_malloc(len)))
		return RN_ENOMEM;
	if (rn_b64_decode(tok, (size_t)(d1 - tok), RN_B64_URL, part, len, &plen) ||
	    rn_json_object_walk((struct rn_json_span){(const char *)part, plen}, header_member,
				&alg_ok) ||
	    !alg_ok)
		goto out;
	if (rn_b64_decode(d1 + 1, (size_t)(d2 - d1 - 1), RN_B64_URL, part, len, &plen) ||
	    rn_json_object_walk((struct rn_json_span){(const char *)part, plen}, claim_member,
				&w) ||
	    w.seen != 31 || !c->sub[0])
		goto out;
	rc = now > c->exp + skew || c->iat > now + skew ? RN_ERANGE : 0;
out:
	rn_free(part);
	return rc;
}

/* Decodes form-urlencoded s[0..len) into out (cap with the NUL); a NUL inside is refused.
 * 0 or RN_EINVAL. */
static int urldecode(const char *s, size_t len, char *out, size_t cap)
{
	long n = rn_url_unescape(s, len, 1, out, cap);
	return n < 0 || strlen(out) != (size_t)n ? RN_EINVAL : 0;
}

int rn_oauth_parse_basic(const char *hdr, char *id, size_t idcap, char *secret, size_t scap)
{
	const char *p;
	uint8_t raw[2048];
	size_t n;
	const uint8_t *colon;
	if (!hdr || strncasecmp(hdr, "Basic", 5) || hdr[5] != ' ')
		return RN_ENOTFOUND;
	for (p = hdr + 5; *p == ' '; p++)
		;
	n = strlen(p);
	while (n && p[n - 1] == ' ')
		n--;
	if (rn_b64_decode(p, n, RN_B64_STD, raw, sizeof(raw), &n) || !(colon = memchr(raw, ':', n)))
		return RN_EINVAL;
	if (urldecode((const char *)raw, (size_t)(colon - raw), id, idcap) ||
	    urldecode((const char *)colon + 1, n - (size_t)(colon + 1 - raw), secret, scap))
		return RN_EINVAL;
	return 0;
}

int rn_oauth_parse_form(const char *body, size_t len, struct rn_oauth_form *f, const char **why)
{
	const char *p = body, *end = body + len;
	memset(f, 0, sizeof(*f));
	*why = NULL;
	if (len > RN_OAUTH_BODY_MAX) {
		*why = "request body too large";
		return RN_EINVAL;
	}
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		size_t kl = (size_t)((eq ? eq : e) - p);
		const char *v = eq ? eq + 1 : e;
		char *dst = NULL;
		size_t cap = 0;
		int *has = NULL;
#define K(name, field)                                                                             \
	else if (kl == sizeof(name) - 1 && !memcmp(p, name, kl))                                   \
	{                                                                                          \
		dst = f->field;                                                                    \
		cap = sizeof(f->field);                                                            \
		has = &f->has_##field;                                                             \
	}
		if (0) {
		}
		K("grant_type", grant_type)
		K("scope", scope)
		K("resource", resource)
		K("client_id", client_id)
		K("client_secret", client_secret)
		K("authorization_details", details)
#undef K
		if (dst) {
			if (*has) {
				*why = "a parameter is given twice";
				return RN_EINVAL;
			}
			*has = 1;
			if (urldecode(v, (size_t)(e - v), dst, cap)) {
				*why = "a parameter is badly encoded or too long";
				return RN_EINVAL;
			}
		}
		p = amp ? amp + 1 : end;
	}
	return 0;
}

struct details_walk {
	char (*tables)[RN_OAUTH_TABLE_MAX];
	size_t n;
	const char *why;
	/* the object being read */
	int is_uc, is_table, modify, has_path;
	char path[RN_OAUTH_TABLE_MAX];
};

static int privilege(void *ctx, size_t i, struct rn_json_span v)
{
	struct details_walk *w = ctx;
	char s[64];
	(void)i;
	if (jstr(v, s, sizeof(s))) {
		w->why = "authorization_details: privileges must be strings";
		return RN_EINVAL;
	}
	if (!strcasecmp(s, "MODIFY"))
		w->modify = 1;
	return 0;
}

static int detail_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct details_walk *w = ctx;
	char s[64];
	if (rn_json_span_eq(k, "type")) {
		if (jstr(v, s, sizeof(s)))
			goto bad;
		w->is_uc = !strcmp(s, "unity_catalog_privileges");
	} else if (rn_json_span_eq(k, "object_type")) {
		if (jstr(v, s, sizeof(s)))
			goto bad;
		w->is_table = !strcasecmp(s, "TABLE");
	} else if (rn_json_span_eq(k, "privileges")) {
		if (rn_json_array_walk(v, privilege, w)) {
			if (!w->why)
				w->why = "authorization_details: privileges must be an array";
			return RN_EINVAL;
		}
	} else if (rn_json_span_eq(k, "object_full_path")) {
		if (jstr(v, w->path, sizeof(w->path)))
			goto bad;
		w->has_path = 1;
	}
	return 0;
bad:
	w->why = "authorization_details: type, object_type and object_full_path must be strings";
	return RN_EINVAL;
}

static int detail_elem(void *ctx, size_t i, struct rn_json_span v)
{
	struct details_walk *w = ctx;
	(void)i;
	w->is_uc = w->is_table = w->modify = w->has_path = 0;
	if (rn_json_object_walk(v, detail_member, w)) {
		if (!w->why)
			w->why = "authorization_details must be an array of objects";
		return RN_EINVAL;
	}
	if (!w->is_uc || !w->is_table || !w->modify)
		return 0;
	if (!w->has_path || rn_table_pattern_check(w->path) || strchr(w->path, '*')) {
		w->why = "authorization_details: a TABLE's object_full_path is not a table name";
		return RN_EINVAL;
	}
	for (size_t k = 0; k < w->n; k++)
		if (!strcmp(w->tables[k], w->path))
			return 0;
	if (w->n == RN_OAUTH_TABLES_MAX) {
		w->why = "authorization_details: too many tables";
		return RN_EINVAL;
	}
	memcpy(w->tables[w->n++], w->path, strlen(w->path) + 1);
	return 0;
}

int rn_oauth_parse_details(const char *json, size_t len,
			   char tables[RN_OAUTH_TABLES_MAX][RN_OAUTH_TABLE_MAX], size_t *n,
			   const char **why)
{
	struct details_walk w = {.tables = tables};
	int rc = rn_json_array_walk((struct rn_json_span){json, len}, detail_elem, &w);
	*n = w.n;
	*why = rc ? (w.why ? w.why : "authorization_details must be a JSON array") : NULL;
	return rc ? RN_EINVAL : 0;
}

/* Fills an RFC 6749 5.2 error answer. */
static int refuse(struct rn_oauth_response *out, int status, const char *error, const char *desc)
{
	int rc;
	out->status = status;
	out->www_authenticate = status == 401;
	snprintf(out->error, sizeof(out->error), "%s", error);
	rn_buf_reset(&out->body);
	rc = rn_buf_printf(&out->body, "{\"error\":\"%s\",\"error_description\":", error);
	rc = rc ? rc : rn_json_put_str(&out->body, desc, strlen(desc));
	rc = rc ? rc : rn_buf_append_u8(&out->body, '}');
	return rc;
}

/* Whether the scope parameter (space-separated) asks for nothing but all-apis. */
static int scope_ok(const char *s)
{
	while (*s) {
		size_t n = strcspn(s, " ");
		if (n && !(n == 8 && !memcmp(s, "all-apis", 8)))
			return 0;
		s += n;
		while (*s == ' ')
			s++;
	}
	return 1;
}

int rn_oauth_token_start(const struct rn_oauth_ctx *c, const struct rn_oauth_request *r,
			 struct rn_oauth_response *out, struct rn_oauth_pending *pend)
{
	struct rn_oauth_form *f = NULL;
	char id[256], secret[RN_OAUTH_FIELD_MAX];
	const char *why = NULL;
	const struct rn_principal *p;
	int rc, b;

	out->principal[0] = 0;
	out->error[0] = 0;
	if (!r->method || strcmp(r->method, "POST"))
		return refuse(out, 405, "invalid_request", "the token endpoint takes POST");
	if (!r->content_type ||
	    strncasecmp(r->content_type, "application/x-www-form-urlencoded", 33) ||
	    (r->content_type[33] && r->content_type[33] != ';' && r->content_type[33] != ' '))
		return refuse(out, 400, "invalid_request",
			      "Content-Type must be application/x-www-form-urlencoded");
	if (!(f = rn_malloc(sizeof(*f))))
		return RN_ENOMEM;
	if (rn_oauth_parse_form((const char *)r->body, r->body_len, f, &why)) {
		rc = refuse(out, 400, "invalid_request", why);
		goto done;
	}
	if (!f->has_grant_type) {
		rc = refuse(out, 400, "invalid_request", "grant_type is required");
		goto done;
	}
	if (strcmp(f->grant_type, "client_credentials")) {
		rc = refuse(out, 400, "unsupported_grant_type",
			    "only grant_type=client_credentials is supported");
		goto done;
	}
	b = rn_oauth_parse_basic(r->authorization, id, sizeof(id), secret, sizeof(secret));
	if (b == RN_EINVAL || (b == 0 && (f->has_client_id || f->has_client_secret))) {
		rc = refuse(out, 400, "invalid_request",
			    b ? "malformed Basic authorization"
			      : "client credentials given both in Authorization and in the body");
		goto done;
	}
	if (b == RN_ENOTFOUND) {
		if (!f->has_client_id || !f->has_client_secret) {
			rc = refuse(out, 401, "invalid_client",
				    "client authentication required (HTTP Basic)");
			goto done;
		}
		snprintf(id, sizeof(id), "%s", f->client_id);
		snprintf(secret, sizeof(secret), "%s", f->client_secret);
	}
	/* the same answer for an unknown id and a wrong secret (client ids are not secret:
	 * RFC 6749 2.2; an unknown one is answered without the cost of a check) */
	p = rn_principals_by_client_id(c->principals, id);
	if (!p || !p->secret_hash || strlen(p->secret_hash) >= sizeof(pend->secret_hash)) {
		rc = refuse(out, 401, "invalid_client", "unknown client or wrong secret");
		goto done;
	}
	memset(pend, 0, offsetof(struct rn_oauth_pending, tables));
	snprintf(pend->client_id, sizeof(pend->client_id), "%s", id);
	pend->secret_len = strlen(secret);
	memcpy(pend->secret, secret, pend->secret_len + 1);
	snprintf(pend->secret_hash, sizeof(pend->secret_hash), "%s", p->secret_hash);
	pend->scope_bad = f->has_scope && !scope_ok(f->scope);
	if (f->has_details && rn_oauth_parse_details(f->details, strlen(f->details), pend->tables,
						     &pend->ntables, &why))
		pend->details_why = why;
	rc = RN_EAGAIN;
done:
	explicit_bzero(secret, sizeof(secret));
	if (f)
		explicit_bzero(f->client_secret, sizeof(f->client_secret));
	rn_free(f);
	return rc;
}

int rn_oauth_token_finish(const struct rn_oauth_ctx *c, struct rn_oauth_pending *pend, int verified,
			  struct rn_oauth_response *out)
{
	char *grant[RN_OAUTH_TABLES_MAX];
	const struct rn_principal *p;
	size_t nt = pend->ntables;
	int rc;

	explicit_bzero(pend->secret, sizeof(pend->secret));
	out->principal[0] = 0;
	out->error[0] = 0;
	p = rn_principals_by_client_id(c->principals, pend->client_id);
	if (verified != 1 || !p || !p->secret_hash || strcmp(p->secret_hash, pend->secret_hash))
		return refuse(out, 401, "invalid_client", "unknown client or wrong secret");
	snprintf(out->principal, sizeof(out->principal), "%s", p->name);
	if (pend->scope_bad)
		return refuse(out, 400, "invalid_scope", "the only scope is all-apis");
	if (pend->details_why)
		return refuse(out, 400, "invalid_request", pend->details_why);
	for (size_t i = 0; i < nt; i++) {
		if (rn_table_reserved(pend->tables[i]) ||
		    !rn_table_patterns_match(p->tables, p->ntables, pend->tables[i])) {
			char d[RN_OAUTH_TABLE_MAX + 80];
			snprintf(d, sizeof(d), "the client may not write table %s",
				 pend->tables[i]);
			return refuse(out, 400, "invalid_scope", d);
		}
		grant[i] = pend->tables[i];
	}
	if (!nt) { /* none asked: every table the principal may write */
		nt = p->ntables < RN_OAUTH_TABLES_MAX ? p->ntables : RN_OAUTH_TABLES_MAX;
		for (size_t i = 0; i < nt; i++)
			grant[i] = p->tables[i];
	}
	rn_buf_reset(&out->body);
	rc = rn_buf_append_str(&out->body, "{\"access_token\":\"");
	rc = rc ? rc
		: rn_oauth_issue(c->key, c->klen, p->name, grant, nt, c->now, c->ttl, c->jti,
				 &out->body);
	rc = rc ? rc
		: rn_buf_printf(&out->body,
				"\",\"token_type\":\"Bearer\",\"expires_in\":%" PRId64
				",\"scope\":\"all-apis\"}",
				c->ttl);
	out->status = rc ? 500 : 200;
	out->www_authenticate = 0;
	if (rc == RN_EINVAL) /* the key: the server's own fault */
		rc = refuse(out, 500, "server_error", "the server has no usable token key");
	return rc;
}

int rn_oauth_token_endpoint(const struct rn_oauth_ctx *c, const struct rn_oauth_request *r,
			    struct rn_oauth_response *out)
{
	struct rn_oauth_pending *pend = rn_malloc(sizeof(*pend));
	int rc;
	if (!pend)
		return RN_ENOMEM;
	rc = rn_oauth_token_start(c, r, out, pend);
	if (rc == RN_EAGAIN)
		rc = rn_oauth_token_finish(
			c, pend,
			rn_crypto_verify_secret(pend->secret_hash, pend->secret, pend->secret_len),
			out);
	rn_free(pend);
	return rc;
}

static int bearer(const char *h, const char **tok, size_t *len)
{
	const char *t;
	size_t n;
	if (strncasecmp(h, "Bearer", 6) || h[6] != ' ')
		return 0;
	for (t = h + 6; *t == ' '; t++)
		;
	n = strlen(t);
	*tok = t;
	*len = n;
	return n > 0;
}

int rn_authz_decide(const struct rn_principals *ps, const uint8_t *key, size_t klen, int64_t now,
		    int64_t skew, const struct rn_authz_request *r, struct rn_authz *out)
{
	struct rn_oauth_claims *cl = NULL;
	const struct rn_principal *p = NULL;
	const char *tok;
	size_t tlen;
	int rc = 0;

	out->principal = NULL;
	out->expires = 0;
	out->msg[0] = 0;
	if (!rn_principals_required(ps)) {
		p = rn_principals_at(ps, 0); /* anonymous */
	} else if (r->authorization) {
		if (!bearer(r->authorization, &tok, &tlen)) {
			snprintf(out->msg, sizeof(out->msg), "missing or wrong bearer token");
			return RN_GRPC_UNAUTHENTICATED;
		}
		if (rn_oauth_is_jwt(tok, tlen)) {
			if (!(cl = rn_malloc(sizeof(*cl)))) {
				snprintf(out->msg, sizeof(out->msg), "out of memory");
				return RN_GRPC_UNAUTHENTICATED;
			}
			rc = key ? rn_oauth_verify(key, klen, tok, tlen, now, skew, cl) : RN_EINVAL;
			if (rc == RN_ERANGE)
				snprintf(out->msg, sizeof(out->msg), "the token has expired");
			else if (rc)
				snprintf(out->msg, sizeof(out->msg),
					 "the token is not valid (signature or claims)");
			else if (!(p = rn_principals_find(ps, cl->sub)))
				snprintf(out->msg, sizeof(out->msg),
					 "the token's principal is no longer configured");
			if (!p) {
				rn_free(cl);
				return RN_GRPC_UNAUTHENTICATED;
			}
			out->expires = cl->exp;
		} else if (!(p = rn_principals_by_token(ps, tok, tlen))) {
			snprintf(out->msg, sizeof(out->msg), "missing or wrong bearer token");
			return RN_GRPC_UNAUTHENTICATED;
		}
	} else if (r->peer_identity) {
		if (!(p = rn_principals_by_cert(ps, r->peer_identity))) {
			snprintf(out->msg, sizeof(out->msg),
				 "client certificate identity is not a configured principal");
			return RN_GRPC_UNAUTHENTICATED;
		}
	} else {
		snprintf(out->msg, sizeof(out->msg), "missing or wrong bearer token");
		return RN_GRPC_UNAUTHENTICATED;
	}
	out->principal = p;
	rc = 0;
	if (r->table && rn_table_reserved(r->table)) {
		snprintf(out->msg, sizeof(out->msg),
			 "table %s is a %s table: only the server writes it", r->table,
			 strncmp(r->table, "runnel.", 7) ? "dead-letter" : "system");
		rc = RN_GRPC_PERMISSION_DENIED;
	} else if (r->table && !rn_table_patterns_match(p->tables, p->ntables, r->table)) {
		snprintf(out->msg, sizeof(out->msg), "principal %s may not write table %s", p->name,
			 r->table);
		rc = RN_GRPC_PERMISSION_DENIED;
	} else if (r->table && cl) {
		int ok = 0;
		for (size_t i = 0; i < cl->ntables && !ok; i++)
			ok = rn_table_pattern_match(cl->tables[i], r->table);
		if (!ok) {
			snprintf(out->msg, sizeof(out->msg), "the token does not grant table %s",
				 r->table);
			rc = RN_GRPC_PERMISSION_DENIED;
		}
	}
	rn_free(cl);
	return rc;
}
