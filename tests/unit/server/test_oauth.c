/*
 * Unit tests for the token core (server/oauth.h): JWT issue and verify (good, expired,
 * within the skew, issued in the future, tampered payload, tampered signature, wrong key,
 * alg none), Basic header, form body and authorization_details parsing, the token
 * endpoint's answers (200 and every RFC 6749 error), and the authorization decision for
 * static tokens, signed tokens, certificate identities, other tables, reserved tables and
 * removed principals. Also base64 (common/rn_b64.h) round trips and strictness.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"
#include "oauth.h"
#include "principal.h"
#include "rn_b64.h"
#include "rn_err.h"
#include "rn_grpc.h"

static const uint8_t KEY[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t KEY2[32] = "0123456789abcdef0123456789abcdeX";
#define NOW 1800000000

static void test_b64(void **state)
{
	char out[64];
	uint8_t back[64];
	size_t n;
	(void)state;
	for (size_t len = 0; len < 10; len++) {
		uint8_t in[10];
		for (size_t i = 0; i < len; i++)
			in[i] = (uint8_t)(i * 37 + 250);
		for (int a = 0; a < 2; a++) {
			assert_int_equal(rn_b64_encode(in, len, a, out, sizeof(out)), 0);
			assert_int_equal(strlen(out), rn_b64_encoded_len(len, a));
			assert_int_equal(rn_b64_decode(out, strlen(out), a, back, sizeof(back), &n),
					 0);
			assert_int_equal(n, len);
			assert_memory_equal(in, back, len);
		}
	}
	assert_int_equal(rn_b64_encode("ab", 2, RN_B64_STD, out, sizeof(out)), 0);
	assert_string_equal(out, "YWI=");
	assert_int_equal(rn_b64_decode("YWI", 3, RN_B64_STD, back, 64, &n), RN_EINVAL);
	assert_int_equal(rn_b64_decode("YWJ=", 4, RN_B64_STD, back, 64, &n), RN_EINVAL); /* bits */
	assert_int_equal(rn_b64_decode("YW=I", 4, RN_B64_STD, back, 64, &n), RN_EINVAL);
	assert_int_equal(rn_b64_decode("YWI=", 4, RN_B64_URL, back, 64, &n), RN_EINVAL);
	assert_int_equal(rn_b64_decode("Y", 1, RN_B64_URL, back, 64, &n), RN_EINVAL);
	assert_int_equal(rn_b64_decode("-_", 2, RN_B64_STD, back, 64, &n), RN_EINVAL);
	assert_int_equal(rn_b64_decode("YWJj", 4, RN_B64_STD, back, 2, &n), RN_ERANGE);
	assert_int_equal(rn_b64_encode("abc", 3, RN_B64_STD, out, 4), RN_ERANGE);
}

static char *issue(const uint8_t *key, const char *sub, char **tables, size_t n, int64_t iat,
		   int64_t ttl)
{
	struct rn_buf b = {0};
	assert_int_equal(rn_oauth_issue(key, 32, sub, tables, n, iat, ttl, "jti-1", &b), 0);
	char *s = strndup((const char *)b.data, b.len);
	rn_buf_free(&b);
	return s;
}

static void test_issue_verify(void **state)
{
	char *tabs[] = {"main.fleet.gps", "main.other.*"};
	struct rn_oauth_claims c;
	(void)state;
	char *t = issue(KEY, "truck-1", tabs, 2, NOW, 3600);
	assert_true(rn_oauth_is_jwt(t, strlen(t)));
	assert_int_equal(rn_oauth_verify(KEY, 32, t, strlen(t), NOW + 10, 30, &c), 0);
	assert_string_equal(c.sub, "truck-1");
	assert_string_equal(c.jti, "jti-1");
	assert_int_equal(c.iat, NOW);
	assert_int_equal(c.exp, NOW + 3600);
	assert_int_equal(c.ntables, 2);
	assert_string_equal(c.tables[1], "main.other.*");
	/* expiry, with the skew */
	assert_int_equal(rn_oauth_verify(KEY, 32, t, strlen(t), NOW + 3630, 30, &c), 0);
	assert_int_equal(rn_oauth_verify(KEY, 32, t, strlen(t), NOW + 3631, 30, &c), RN_ERANGE);
	assert_int_equal(rn_oauth_verify(KEY, 32, t, strlen(t), NOW + 3601, 0, &c), RN_ERANGE);
	/* issued in the future (the issuer's clock ahead beyond the skew) */
	assert_int_equal(rn_oauth_verify(KEY, 32, t, strlen(t), NOW - 31, 30, &c), RN_ERANGE);
	/* the wrong key */
	assert_int_equal(rn_oauth_verify(KEY2, 32, t, strlen(t), NOW, 30, &c), RN_EINVAL);
	/* a key too short is never used */
	assert_int_equal(rn_oauth_verify(KEY, 16, t, strlen(t), NOW, 30, &c), RN_EINVAL);
	/* tampered: every single-character change anywhere is refused */
	for (size_t i = 0; i < strlen(t); i++) {
		char *u;
		if (t[i] == '.')
			continue;
		u = strdup(t);
		u[i] = u[i] == 'A' ? 'B' : 'A';
		assert_int_not_equal(rn_oauth_verify(KEY, 32, u, strlen(u), NOW, 30, &c), 0);
		free(u);
	}
	/* truncated */
	assert_int_equal(rn_oauth_verify(KEY, 32, t, strlen(t) - 1, NOW, 30, &c), RN_EINVAL);
	free(t);

	/* another sub's claims under a valid signature of a forged header: alg none */
	const char *none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
	assert_int_equal(rn_oauth_verify(KEY, 32, none, strlen(none), NOW, 30, &c), RN_EINVAL);
	assert_false(rn_oauth_is_jwt("plain-token", 11));
	assert_false(rn_oauth_is_jwt("eyJ.a.b.c", 9));

	/* too many tables */
	char *many[RN_OAUTH_TABLES_MAX + 1];
	struct rn_buf b = {0};
	for (size_t i = 0; i <= RN_OAUTH_TABLES_MAX; i++)
		many[i] = "a.b.c";
	assert_int_equal(
		rn_oauth_issue(KEY, 32, "x", many, RN_OAUTH_TABLES_MAX + 1, NOW, 1, "j", &b),
		RN_EINVAL);
	assert_int_equal(rn_oauth_issue(KEY, 31, "x", many, 1, NOW, 1, "j", &b), RN_EINVAL);
	rn_buf_free(&b);
}

static void test_basic(void **state)
{
	char id[64], sec[64];
	char hdr[200], b64[150];
	(void)state;
	rn_b64_encode("my%20id:s%3Acret", 16, RN_B64_STD, b64, sizeof(b64));
	snprintf(hdr, sizeof(hdr), "basic  %s", b64);
	assert_int_equal(rn_oauth_parse_basic(hdr, id, sizeof(id), sec, sizeof(sec)), 0);
	assert_string_equal(id, "my id");
	assert_string_equal(sec, "s:cret");
	assert_int_equal(rn_oauth_parse_basic(NULL, id, 64, sec, 64), RN_ENOTFOUND);
	assert_int_equal(rn_oauth_parse_basic("Bearer x", id, 64, sec, 64), RN_ENOTFOUND);
	assert_int_equal(rn_oauth_parse_basic("Basic !!!", id, 64, sec, 64), RN_EINVAL);
	rn_b64_encode("nocolon", 7, RN_B64_STD, b64, sizeof(b64));
	snprintf(hdr, sizeof(hdr), "Basic %s", b64);
	assert_int_equal(rn_oauth_parse_basic(hdr, id, 64, sec, 64), RN_EINVAL);
	rn_b64_encode("a:%00", 5, RN_B64_STD, b64, sizeof(b64));
	snprintf(hdr, sizeof(hdr), "Basic %s", b64);
	assert_int_equal(rn_oauth_parse_basic(hdr, id, 64, sec, 64), RN_EINVAL);
	rn_b64_encode("abcdef:x", 8, RN_B64_STD, b64, sizeof(b64));
	snprintf(hdr, sizeof(hdr), "Basic %s", b64);
	assert_int_equal(rn_oauth_parse_basic(hdr, id, 6, sec, 64), RN_EINVAL); /* too long */
}

static void test_form(void **state)
{
	static struct rn_oauth_form f;
	const char *why;
	(void)state;
	const char *body = "grant_type=client_credentials&scope=all-apis&x=1&resource=api%3A%2F%2F"
			   "d&authorization_details=%5B%5D&empty";
	assert_int_equal(rn_oauth_parse_form(body, strlen(body), &f, &why), 0);
	assert_string_equal(f.grant_type, "client_credentials");
	assert_string_equal(f.resource, "api://d");
	assert_string_equal(f.details, "[]");
	assert_true(f.has_scope && f.has_details && !f.has_client_id);
	body = "grant_type=a&grant_type=b";
	assert_int_equal(rn_oauth_parse_form(body, strlen(body), &f, &why), RN_EINVAL);
	assert_string_equal(why, "a parameter is given twice");
	body = "scope=%4";
	assert_int_equal(rn_oauth_parse_form(body, strlen(body), &f, &why), RN_EINVAL);
	body = "scope=a%00b";
	assert_int_equal(rn_oauth_parse_form(body, strlen(body), &f, &why), RN_EINVAL);
	body = "client_id=a+b";
	assert_int_equal(rn_oauth_parse_form(body, strlen(body), &f, &why), 0);
	assert_string_equal(f.client_id, "a b");
}

static void test_details(void **state)
{
	static char t[RN_OAUTH_TABLES_MAX][RN_OAUTH_TABLE_MAX];
	size_t n;
	const char *why;
	(void)state;
	const char *j =
		"[{\"type\":\"unity_catalog_privileges\",\"privileges\":[\"USE CATALOG\"],"
		"\"object_type\":\"CATALOG\",\"object_full_path\":\"main\"},"
		"{\"type\":\"unity_catalog_privileges\",\"privileges\":[\"SELECT\",\"MODIFY\"],"
		"\"object_type\":\"TABLE\",\"object_full_path\":\"main.fleet.gps\"},"
		"{\"type\":\"unity_catalog_privileges\",\"privileges\":[\"SELECT\"],"
		"\"object_type\":\"TABLE\",\"object_full_path\":\"main.fleet.ro\"},"
		"{\"type\":\"unity_catalog_privileges\",\"privileges\":[\"MODIFY\"],"
		"\"object_type\":\"TABLE\",\"object_full_path\":\"main.fleet.gps\"}]";
	assert_int_equal(rn_oauth_parse_details(j, strlen(j), t, &n, &why), 0);
	assert_int_equal(n, 1);
	assert_string_equal(t[0], "main.fleet.gps");
	j = "{}";
	assert_int_equal(rn_oauth_parse_details(j, strlen(j), t, &n, &why), RN_EINVAL);
	j = "[1]";
	assert_int_equal(rn_oauth_parse_details(j, strlen(j), t, &n, &why), RN_EINVAL);
	j = "[{\"type\":\"unity_catalog_privileges\",\"privileges\":[\"MODIFY\"],"
	    "\"object_type\":\"TABLE\",\"object_full_path\":\"a.*.c\"}]";
	assert_int_equal(rn_oauth_parse_details(j, strlen(j), t, &n, &why), RN_EINVAL);
	j = "[{\"privileges\":\"MODIFY\"}]";
	assert_int_equal(rn_oauth_parse_details(j, strlen(j), t, &n, &why), RN_EINVAL);
	assert_non_null(why);
}

/* principals for the endpoint and the decision */
static char enc[RN_CRYPTO_HASH_MAX];
static char *l_gps[] = {"main.fleet.gps", NULL};
static char *l_all[] = {"main.*.*", NULL};
static char *l_tok[] = {"static-tok", NULL};
static struct rn_principals *ps;

static int setup(void **state)
{
	char err[300];
	(void)state;
	assert_int_equal(rn_crypto_hash_secret("s3cret", 6, 1000, enc, sizeof(enc)), 0);
	struct rn_principal_conf c[3] = {
		{.name = "svc", .client_id = "svc-id", .secret_hash = enc, .tables = {l_gps, 1}},
		{.name = "truck", .cert = "spiffe://truck", .tables = {l_all, 1}},
		{.name = "gw", .tokens = {l_tok, 1}, .tables = {l_gps, 1}},
	};
	return rn_principals_create(&ps, c, 3, NULL, 0, err, sizeof(err));
}

static int teardown(void **state)
{
	(void)state;
	rn_principals_destroy(ps);
	return 0;
}

static int endpoint(const char *auth, const char *body, struct rn_oauth_response *r)
{
	struct rn_oauth_ctx c = {ps, KEY, 32, NOW, 600, "jti-x"};
	struct rn_oauth_request q = {"POST", "application/x-www-form-urlencoded", auth,
				     (const uint8_t *)body, strlen(body)};
	rn_buf_reset(&r->body);
	assert_int_equal(rn_oauth_token_endpoint(&c, &q, r), 0);
	assert_int_equal(rn_buf_append_u8(&r->body, 0), 0);
	return r->status;
}

static void test_endpoint(void **state)
{
	struct rn_oauth_response r = {0};
	char basic[200], b64[100];
	(void)state;
	rn_b64_encode("svc-id:s3cret", 13, RN_B64_STD, b64, sizeof(b64));
	snprintf(basic, sizeof(basic), "Basic %s", b64);
	assert_int_equal(endpoint(basic, "grant_type=client_credentials&scope=all-apis", &r), 200);
	assert_string_equal(r.principal, "svc");
	const char *body = (const char *)r.body.data;
	assert_non_null(strstr(body, "\"token_type\":\"Bearer\",\"expires_in\":600,"
				     "\"scope\":\"all-apis\"}"));
	/* the token it gave verifies, for the principal's tables */
	const char *at = strstr(body, "\"access_token\":\"") + 16;
	struct rn_oauth_claims c;
	assert_int_equal(rn_oauth_verify(KEY, 32, at, (size_t)(strchr(at, '"') - at), NOW, 0, &c),
			 0);
	assert_string_equal(c.sub, "svc");
	assert_int_equal(c.ntables, 1);
	assert_string_equal(c.tables[0], "main.fleet.gps");
	/* credentials in the body instead */
	assert_int_equal(endpoint(NULL,
				  "grant_type=client_credentials&client_id=svc-id&client_secret="
				  "s3cret",
				  &r),
			 200);
	/* errors */
	assert_int_equal(endpoint(NULL, "grant_type=client_credentials", &r), 401);
	assert_true(r.www_authenticate);
	assert_string_equal(r.error, "invalid_client");
	rn_b64_encode("svc-id:wrong", 12, RN_B64_STD, b64, sizeof(b64));
	char wrong[200];
	snprintf(wrong, sizeof(wrong), "Basic %s", b64);
	assert_int_equal(endpoint(wrong, "grant_type=client_credentials", &r), 401);
	assert_non_null(strstr((const char *)r.body.data, "\"error\":\"invalid_client\""));
	rn_b64_encode("nobody:s3cret", 13, RN_B64_STD, b64, sizeof(b64));
	snprintf(wrong, sizeof(wrong), "Basic %s", b64);
	assert_int_equal(endpoint(wrong, "grant_type=client_credentials", &r), 401);
	assert_int_equal(endpoint(basic, "scope=all-apis", &r), 400);
	assert_string_equal(r.error, "invalid_request");
	assert_int_equal(endpoint(basic, "grant_type=password", &r), 400);
	assert_string_equal(r.error, "unsupported_grant_type");
	assert_int_equal(endpoint(basic, "grant_type=client_credentials&scope=admin", &r), 400);
	assert_string_equal(r.error, "invalid_scope");
	/* a table outside its patterns, a dead-letter table */
	assert_int_equal(
		endpoint(basic,
			 "grant_type=client_credentials&authorization_details=%5B%7B%22type%22%3A"
			 "%22unity_catalog_privileges%22%2C%22privileges%22%3A%5B%22MODIFY%22%5D%2C"
			 "%22object_type%22%3A%22TABLE%22%2C%22object_full_path%22%3A%22main.fleet."
			 "other%22%7D%5D",
			 &r),
		400);
	assert_string_equal(r.error, "invalid_scope");
	assert_non_null(strstr((const char *)r.body.data, "main.fleet.other"));
	assert_int_equal(
		endpoint(basic, "grant_type=client_credentials&authorization_details=x", &r), 400);
	assert_int_equal(endpoint(basic,
				  "grant_type=client_credentials&client_id=svc-id&client_secret="
				  "s3cret",
				  &r),
			 400); /* both ways at once */
	/* another method, another content type */
	struct rn_oauth_ctx cx = {ps, KEY, 32, NOW, 600, "j"};
	struct rn_oauth_request q = {"GET", "application/x-www-form-urlencoded", basic, NULL, 0};
	assert_int_equal(rn_oauth_token_endpoint(&cx, &q, &r), 0);
	assert_int_equal(r.status, 405);
	q.method = "POST";
	q.content_type = "application/json";
	assert_int_equal(rn_oauth_token_endpoint(&cx, &q, &r), 0);
	assert_int_equal(r.status, 400);
	/* no usable key: the server's fault, said so */
	struct rn_oauth_ctx nk = {ps, KEY, 8, NOW, 600, "j"};
	q.content_type = "application/x-www-form-urlencoded; charset=utf-8";
	q.body = (const uint8_t *)"grant_type=client_credentials";
	q.body_len = strlen((const char *)q.body);
	assert_int_equal(rn_oauth_token_endpoint(&nk, &q, &r), 0);
	assert_int_equal(r.status, 500);
	rn_buf_free(&r.body);
}

/* The endpoint in two steps (the server checks the secret on a worker in between). */
static void test_split(void **state)
{
	struct rn_oauth_ctx c = {ps, KEY, 32, NOW, 600, "jti-s"};
	struct rn_oauth_response r = {0};
	struct rn_oauth_pending *pd = calloc(1, sizeof(*pd));
	char basic[200], b64[100];
	const char *bad_scope = "grant_type=client_credentials&scope=admin";
	const char *good = "grant_type=client_credentials";
	struct rn_oauth_request q = {"POST", "application/x-www-form-urlencoded", basic,
				     (const uint8_t *)good, strlen(good)};
	(void)state;
	assert_non_null(pd);
	rn_b64_encode("svc-id:s3cret", 13, RN_B64_STD, b64, sizeof(b64));
	snprintf(basic, sizeof(basic), "Basic %s", b64);
	/* a known client: its secret is to be checked, with the principal's hash */
	assert_int_equal(rn_oauth_token_start(&c, &q, &r, pd), RN_EAGAIN);
	assert_string_equal(pd->client_id, "svc-id");
	assert_string_equal(pd->secret, "s3cret");
	assert_int_equal(pd->secret_len, 6);
	assert_string_equal(pd->secret_hash, enc);
	assert_int_equal(rn_crypto_verify_secret(pd->secret_hash, pd->secret, pd->secret_len), 1);
	assert_int_equal(rn_oauth_token_finish(&c, pd, 1, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.principal, "svc");
	assert_int_equal(pd->secret[0], 0); /* wiped */
	/* a check that failed (0) or could not run (an error) is 401 */
	assert_int_equal(rn_oauth_token_start(&c, &q, &r, pd), RN_EAGAIN);
	assert_int_equal(rn_oauth_token_finish(&c, pd, 0, &r), 0);
	assert_int_equal(r.status, 401);
	assert_string_equal(r.error, "invalid_client");
	assert_int_equal(rn_oauth_token_start(&c, &q, &r, pd), RN_EAGAIN);
	assert_int_equal(rn_oauth_token_finish(&c, pd, RN_ENOMEM, &r), 0);
	assert_int_equal(r.status, 401);
	/* a bad scope is told only once the secret verified: 401 before, 400 after */
	q.body = (const uint8_t *)bad_scope;
	q.body_len = strlen(bad_scope);
	assert_int_equal(rn_oauth_token_start(&c, &q, &r, pd), RN_EAGAIN);
	assert_int_equal(rn_oauth_token_finish(&c, pd, 0, &r), 0);
	assert_int_equal(r.status, 401);
	assert_int_equal(rn_oauth_token_start(&c, &q, &r, pd), RN_EAGAIN);
	assert_int_equal(rn_oauth_token_finish(&c, pd, 1, &r), 0);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.error, "invalid_scope");
	/* an unknown client is answered at once, without a check */
	rn_b64_encode("nobody:s3cret", 13, RN_B64_STD, b64, sizeof(b64));
	snprintf(basic, sizeof(basic), "Basic %s", b64);
	q.body = (const uint8_t *)good;
	q.body_len = strlen(good);
	assert_int_equal(rn_oauth_token_start(&c, &q, &r, pd), 0);
	assert_int_equal(r.status, 401);
	/* the principals reloaded during the check with another secret_hash: 401 */
	rn_b64_encode("svc-id:s3cret", 13, RN_B64_STD, b64, sizeof(b64));
	snprintf(basic, sizeof(basic), "Basic %s", b64);
	assert_int_equal(rn_oauth_token_start(&c, &q, &r, pd), RN_EAGAIN);
	char enc2[RN_CRYPTO_HASH_MAX], err[300];
	assert_int_equal(rn_crypto_hash_secret("s3cret", 6, 1000, enc2, sizeof(enc2)), 0);
	struct rn_principal_conf pc = {
		.name = "svc", .client_id = "svc-id", .secret_hash = enc2, .tables = {l_gps, 1}};
	struct rn_principals *ps2;
	assert_int_equal(rn_principals_create(&ps2, &pc, 1, NULL, 0, err, sizeof(err)), 0);
	struct rn_oauth_ctx c2 = {ps2, KEY, 32, NOW, 600, "jti-s"};
	assert_int_equal(rn_oauth_token_finish(&c2, pd, 1, &r), 0);
	assert_int_equal(r.status, 401);
	/* ... or without the client any more: 401 */
	assert_int_equal(rn_oauth_token_start(&c, &q, &r, pd), RN_EAGAIN);
	struct rn_principal_conf pc3 = {
		.name = "other", .tokens = {l_tok, 1}, .tables = {l_gps, 1}};
	struct rn_principals *ps3;
	assert_int_equal(rn_principals_create(&ps3, &pc3, 1, NULL, 0, err, sizeof(err)), 0);
	struct rn_oauth_ctx c3 = {ps3, KEY, 32, NOW, 600, "jti-s"};
	assert_int_equal(rn_oauth_token_finish(&c3, pd, 1, &r), 0);
	assert_int_equal(r.status, 401);
	rn_principals_destroy(ps2);
	rn_principals_destroy(ps3);
	rn_buf_free(&r.body);
	free(pd);
}

static int decide(const char *auth, const char *peer, const char *table, int64_t now,
		  struct rn_authz *a)
{
	struct rn_authz_request r = {auth, peer, table};
	return rn_authz_decide(ps, KEY, 32, now, 30, &r, a);
}

static void test_decide(void **state)
{
	struct rn_authz a;
	char *gps[] = {"main.fleet.gps"};
	char hdr[1200];
	(void)state;
	/* static token */
	assert_int_equal(decide("Bearer static-tok", NULL, "main.fleet.gps", NOW, &a), 0);
	assert_string_equal(a.principal->name, "gw");
	assert_int_equal(a.expires, 0);
	assert_int_equal(decide("bearer static-tok", NULL, NULL, NOW, &a), 0);
	assert_int_equal(decide("Bearer static-tok", NULL, "main.fleet.other", NOW, &a),
			 RN_GRPC_PERMISSION_DENIED);
	assert_string_equal(a.msg, "principal gw may not write table main.fleet.other");
	assert_int_equal(decide("Bearer static-tok", NULL, "main.fleet.gps_dead_letters", NOW, &a),
			 RN_GRPC_PERMISSION_DENIED);
	assert_non_null(strstr(a.msg, "dead-letter"));
	assert_int_equal(decide("Bearer wrong", NULL, NULL, NOW, &a), RN_GRPC_UNAUTHENTICATED);
	assert_string_equal(a.msg, "missing or wrong bearer token");
	assert_int_equal(decide(NULL, NULL, NULL, NOW, &a), RN_GRPC_UNAUTHENTICATED);
	assert_int_equal(decide("Basic static-tok", NULL, NULL, NOW, &a), RN_GRPC_UNAUTHENTICATED);
	assert_int_equal(decide("Bearer ", NULL, NULL, NOW, &a), RN_GRPC_UNAUTHENTICATED);
	/* certificate identity: only without an authorization header */
	assert_int_equal(decide(NULL, "spiffe://truck", "main.x.y", NOW, &a), 0);
	assert_string_equal(a.principal->name, "truck");
	assert_int_equal(decide(NULL, "spiffe://truck", "other.x.y", NOW, &a),
			 RN_GRPC_PERMISSION_DENIED);
	assert_int_equal(decide(NULL, "spiffe://nobody", NULL, NOW, &a), RN_GRPC_UNAUTHENTICATED);
	assert_int_equal(decide("Bearer wrong", "spiffe://truck", NULL, NOW, &a),
			 RN_GRPC_UNAUTHENTICATED);
	/* signed tokens: accepted for its table, refused for another, once expired, with the
	 * wrong key, or for a principal no longer configured */
	char *t = issue(KEY, "svc", gps, 1, NOW, 60);
	snprintf(hdr, sizeof(hdr), "Bearer %s", t);
	assert_int_equal(decide(hdr, NULL, "main.fleet.gps", NOW, &a), 0);
	assert_string_equal(a.principal->name, "svc");
	assert_int_equal(a.expires, NOW + 60);
	assert_int_equal(decide(hdr, NULL, "main.fleet.other", NOW, &a), RN_GRPC_PERMISSION_DENIED);
	assert_int_equal(decide(hdr, NULL, "main.fleet.gps", NOW + 91, &a),
			 RN_GRPC_UNAUTHENTICATED);
	assert_string_equal(a.msg, "the token has expired");
	free(t);
	t = issue(KEY2, "svc", gps, 1, NOW, 60);
	snprintf(hdr, sizeof(hdr), "Bearer %s", t);
	assert_int_equal(decide(hdr, NULL, "main.fleet.gps", NOW, &a), RN_GRPC_UNAUTHENTICATED);
	free(t);
	t = issue(KEY, "gone", gps, 1, NOW, 60);
	snprintf(hdr, sizeof(hdr), "Bearer %s", t);
	assert_int_equal(decide(hdr, NULL, "main.fleet.gps", NOW, &a), RN_GRPC_UNAUTHENTICATED);
	assert_string_equal(a.msg, "the token's principal is no longer configured");
	free(t);
	/* a token granting more than the principal's patterns (an older config): the
	 * principal's current patterns still bound it */
	char *wide[] = {"*"};
	t = issue(KEY, "svc", wide, 1, NOW, 60);
	snprintf(hdr, sizeof(hdr), "Bearer %s", t);
	assert_int_equal(decide(hdr, NULL, "main.fleet.other", NOW, &a), RN_GRPC_PERMISSION_DENIED);
	free(t);
	/* no principals at all: anonymous, but still never a dead-letter table */
	struct rn_principals *none;
	char err[100];
	struct rn_authz_request r = {NULL, NULL, "a.b.c"};
	assert_int_equal(rn_principals_create(&none, NULL, 0, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(rn_authz_decide(none, NULL, 0, NOW, 0, &r, &a), 0);
	assert_string_equal(a.principal->name, "anonymous");
	r.table = "a.b.c_dead_letters";
	assert_int_equal(rn_authz_decide(none, NULL, 0, NOW, 0, &r, &a), RN_GRPC_PERMISSION_DENIED);
	assert_string_equal(a.msg, "table a.b.c_dead_letters is a dead-letter table: only the "
				   "server writes it");
	/* nor a fleet system table */
	r.table = "runnel.fleet.agents";
	assert_int_equal(rn_authz_decide(none, NULL, 0, NOW, 0, &r, &a), RN_GRPC_PERMISSION_DENIED);
	assert_string_equal(a.msg, "table runnel.fleet.agents is a system table: only the server "
				   "writes it");
	rn_principals_destroy(none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),     cmocka_unit_test(test_issue_verify),
		cmocka_unit_test(test_basic),   cmocka_unit_test(test_form),
		cmocka_unit_test(test_details), cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_split),   cmocka_unit_test(test_decide),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
