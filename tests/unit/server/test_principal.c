/*
 * Unit tests for principals and table patterns (server/principal.h): pattern syntax and
 * matching (exact, "*", per part, part counts), reserved dead-letter tables, the config
 * checks (names, duplicates, client_id without secret_hash, bad hashes, no way to
 * authenticate), lookups by name, certificate identity, client id and static token (plain
 * and sha256:), and the implicit "token" and "anonymous" principals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"
#include "principal.h"
#include "rn_err.h"

static void test_patterns(void **state)
{
	(void)state;
	assert_int_equal(rn_table_pattern_check("*"), 0);
	assert_int_equal(rn_table_pattern_check("main.*.*"), 0);
	assert_int_equal(rn_table_pattern_check("main.fleet.*"), 0);
	assert_int_equal(rn_table_pattern_check("main.fleet.gps"), 0);
	assert_int_equal(rn_table_pattern_check("a"), 0);
	assert_int_equal(rn_table_pattern_check(""), RN_EINVAL);
	assert_int_equal(rn_table_pattern_check("a.b.c.d"), RN_EINVAL);
	assert_int_equal(rn_table_pattern_check("main.fl*"), RN_EINVAL);
	assert_int_equal(rn_table_pattern_check("main..x"), RN_EINVAL);
	assert_int_equal(rn_table_pattern_check("main.x."), RN_EINVAL);
	assert_int_equal(rn_table_pattern_check("_x.y.z"), RN_EINVAL);
	assert_int_equal(rn_table_pattern_check("**"), RN_EINVAL);

	assert_true(rn_table_pattern_match("*", "main.fleet.gps"));
	assert_true(rn_table_pattern_match("*", "x"));
	assert_true(rn_table_pattern_match("main.*.*", "main.fleet.gps"));
	assert_true(rn_table_pattern_match("main.fleet.*", "main.fleet.gps"));
	assert_true(rn_table_pattern_match("main.fleet.gps", "main.fleet.gps"));
	assert_true(rn_table_pattern_match("*.*.gps", "other.x.gps"));
	assert_false(rn_table_pattern_match("main.fleet.gps", "main.fleet.gpsx"));
	assert_false(rn_table_pattern_match("main.fleet.gpsx", "main.fleet.gps"));
	assert_false(rn_table_pattern_match("main.fleet.*", "main.other.gps"));
	assert_false(rn_table_pattern_match("main.*.*", "mainx.fleet.gps"));
	assert_false(rn_table_pattern_match("main.*", "main.fleet.gps")); /* part counts */
	assert_false(rn_table_pattern_match("main.*.*", "main.fleet"));
	assert_false(rn_table_pattern_match("Main.*.*", "main.fleet.gps")); /* case */
	assert_false(rn_table_pattern_match(NULL, "a"));

	char *pats[] = {"a.b.*", "c.d.e", NULL};
	assert_true(rn_table_patterns_match(pats, 2, "a.b.x"));
	assert_true(rn_table_patterns_match(pats, 2, "c.d.e"));
	assert_false(rn_table_patterns_match(pats, 2, "c.d.f"));
	assert_false(rn_table_patterns_match(pats, 0, "a.b.x"));

	assert_true(rn_table_reserved("main.fleet.gps_dead_letters"));
	assert_true(rn_table_reserved("x_dead_letters"));
	assert_false(rn_table_reserved("main.fleet.gps"));
	assert_false(rn_table_reserved("main.fleet.gps_dead_letter"));
	assert_false(rn_table_reserved("main.fleet_dead_letters.gps"));
	assert_false(rn_table_reserved(NULL));
	/* the fleet system tables */
	assert_true(rn_table_reserved("runnel.fleet.agents"));
	assert_true(rn_table_reserved("runnel.fleet.streams"));
	assert_true(rn_table_reserved("runnel.fleet.anything"));
	assert_false(rn_table_reserved("runnel.fleets.agents"));
	assert_false(rn_table_reserved("main.runnel.fleet"));
}

static char *l_gps[] = {"main.fleet.gps", NULL};
static char *l_fleet[] = {"main.fleet.*", NULL};
static char *l_tok[] = {"plain-token-1", NULL};
static char *l_star[] = {"*", NULL};
static char hashed[80];
static char *l_hashed[] = {hashed, NULL};

static struct rn_principal_conf conf3[3];

static void setup_conf(void)
{
	uint8_t d[32];
	rn_crypto_sha256("hashed-token-2", 14, d);
	strcpy(hashed, "sha256:");
	for (int i = 0; i < 32; i++)
		snprintf(hashed + 7 + 2 * i, 3, "%02x", d[i]);
	memset(conf3, 0, sizeof(conf3));
	conf3[0] = (struct rn_principal_conf){
		.name = "truck-1", .cert = "spiffe://fleet/truck-1", .tables = {l_gps, 1}};
	conf3[1] = (struct rn_principal_conf){
		.name = "gateway", .tokens = {l_tok, 1}, .tables = {l_fleet, 1}};
	conf3[2] = (struct rn_principal_conf){
		.name = "hashed@x", .tokens = {l_hashed, 1}, .tables = {l_star, 1}};
}

static void test_lookup(void **state)
{
	struct rn_principals *ps;
	char err[300];
	(void)state;
	setup_conf();
	assert_int_equal(rn_principals_create(&ps, conf3, 3, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(rn_principals_count(ps), 3); /* no implicit one without `token` */
	assert_true(rn_principals_required(ps));
	assert_string_equal(rn_principals_by_cert(ps, "spiffe://fleet/truck-1")->name, "truck-1");
	assert_null(rn_principals_by_cert(ps, "spiffe://fleet/truck-2"));
	assert_null(rn_principals_by_cert(ps, NULL));
	assert_string_equal(rn_principals_by_token(ps, "plain-token-1", 13)->name, "gateway");
	assert_null(rn_principals_by_token(ps, "plain-token-", 12));
	assert_null(rn_principals_by_token(ps, "plain-token-12", 14));
	assert_string_equal(rn_principals_by_token(ps, "hashed-token-2", 14)->name, "hashed@x");
	assert_null(rn_principals_by_token(ps, hashed, strlen(hashed))); /* not the hash itself */
	assert_null(rn_principals_by_token(ps, "", 0));
	assert_string_equal(rn_principals_find(ps, "gateway")->name, "gateway");
	assert_false(rn_principals_find(ps, "gateway")->console); /* console is opt-in */
	assert_null(rn_principals_find(ps, "nobody"));
	assert_null(rn_principals_by_client_id(ps, "x"));
	rn_principals_destroy(ps);

	/* the top-level token: an implicit principal "token", every table */
	char *top[] = {"legacy", NULL};
	assert_int_equal(rn_principals_create(&ps, conf3, 3, top, 1, err, sizeof(err)), 0);
	assert_int_equal(rn_principals_count(ps), 4);
	const struct rn_principal *p = rn_principals_by_token(ps, "legacy", 6);
	assert_non_null(p);
	assert_string_equal(p->name, "token");
	assert_true(rn_table_patterns_match(p->tables, p->ntables, "any.thing.here"));
	assert_true(p->console); /* the top-level token may read the fleet API */
	rn_principals_destroy(ps);

	/* nothing configured: no authentication, the anonymous principal */
	assert_int_equal(rn_principals_create(&ps, NULL, 0, NULL, 0, err, sizeof(err)), 0);
	assert_false(rn_principals_required(ps));
	assert_string_equal(rn_principals_at(ps, 0)->name, "anonymous");
	rn_principals_destroy(ps);
	rn_principals_destroy(NULL);
}

static void expect_bad(struct rn_principal_conf *c, size_t n, char *const *tok, size_t nt,
		       const char *needle)
{
	struct rn_principals *ps = NULL;
	char err[400] = "";
	assert_int_equal(rn_principals_create(&ps, c, n, tok, nt, err, sizeof(err)), RN_ECONFIG);
	assert_null(ps);
	if (!strstr(err, needle))
		fail_msg("'%s' not in '%s'", needle, err);
}

static void test_config_checks(void **state)
{
	char *bad_pat[] = {"main.fl*", NULL};
	char *none[] = {NULL};
	char *bad_hash[] = {"sha256:abc", NULL};
	char *top[] = {"t", NULL};
	(void)state;
	setup_conf();
	struct rn_principal_conf c = conf3[0];
	c.name = "bad name";
	expect_bad(&c, 1, NULL, 0, "name must be");
	c = conf3[0];
	c.tables = (struct rn_conf_strlist){bad_pat, 1};
	expect_bad(&c, 1, NULL, 0, "tables[0] \"main.fl*\" is not a table pattern");
	c = conf3[0];
	c.tables = (struct rn_conf_strlist){none, 0};
	expect_bad(&c, 1, NULL, 0, "tables is empty");
	c = conf3[0];
	c.cert = NULL;
	expect_bad(&c, 1, NULL, 0, "no way to authenticate");
	/* a console principal needs no table, but still a way to authenticate */
	c = conf3[1];
	c.tables = (struct rn_conf_strlist){none, 0};
	c.console = 1;
	struct rn_principals *ok = NULL;
	char err[300];
	assert_int_equal(rn_principals_create(&ok, &c, 1, NULL, 0, err, sizeof(err)), 0);
	const struct rn_principal *cp = rn_principals_find(ok, "gateway");
	assert_true(cp->console);
	assert_int_equal(cp->ntables, 0);
	assert_false(rn_table_patterns_match(cp->tables, cp->ntables, "main.fleet.gps"));
	rn_principals_destroy(ok);
	c.tokens = (struct rn_conf_strlist){none, 0};
	expect_bad(&c, 1, NULL, 0, "no way to authenticate");
	c = conf3[0];
	c.client_id = "abc";
	expect_bad(&c, 1, NULL, 0, "client_id and secret_hash go together");
	c.secret_hash = "pbkdf2-sha256$10$AAAAAAAAAAA=$AAAA";
	expect_bad(&c, 1, NULL, 0, "secret_hash is not a hash");
	c = conf3[1];
	c.tokens = (struct rn_conf_strlist){bad_hash, 1};
	expect_bad(&c, 1, NULL, 0, "not sha256:<64 hex digits>");
	struct rn_principal_conf two[2] = {conf3[0], conf3[0]};
	two[1].cert = "other";
	expect_bad(two, 2, NULL, 0, "the name is used by principals[0] too");
	two[1].name = "other";
	two[1].cert = conf3[0].cert;
	expect_bad(two, 2, NULL, 0, "cert \"spiffe://fleet/truck-1\" is truck-1's too");
	struct rn_principal_conf tk[2] = {conf3[1], conf3[1]};
	tk[1].name = "g2";
	expect_bad(tk, 2, NULL, 0, "tokens[0] is gateway's too");
	c = conf3[0];
	c.name = "token";
	expect_bad(&c, 1, top, 1, "reserved");
	c.name = "anonymous";
	expect_bad(&c, 1, NULL, 0, "reserved");
}

static void test_client_secret(void **state)
{
	char enc[RN_CRYPTO_HASH_MAX];
	struct rn_principals *ps;
	char err[300];
	(void)state;
	assert_int_equal(rn_crypto_hash_secret("s3cret", 6, 1000, enc, sizeof(enc)), 0);
	assert_int_equal(rn_crypto_hash_check(enc), 0);
	assert_int_equal(rn_crypto_verify_secret(enc, "s3cret", 6), 1);
	assert_int_equal(rn_crypto_verify_secret(enc, "s3cre", 5), 0);
	assert_int_equal(rn_crypto_verify_secret(enc, "s3creT", 6), 0);
	assert_int_equal(rn_crypto_verify_secret("pbkdf2-sha256$1000$x$y", "s", 1), RN_EINVAL);
	assert_int_equal(rn_crypto_hash_secret("s", 1, 10, enc, sizeof(enc)), RN_EINVAL);
	assert_int_equal(rn_crypto_hash_secret("s3cret", 6, 1000, enc, sizeof(enc)), 0);
	struct rn_principal_conf c = {
		.name = "svc", .client_id = "svc-id", .secret_hash = enc, .tables = {l_gps, 1}};
	assert_int_equal(rn_principals_create(&ps, &c, 1, NULL, 0, err, sizeof(err)), 0);
	const struct rn_principal *p = rn_principals_by_client_id(ps, "svc-id");
	assert_non_null(p);
	assert_int_equal(rn_crypto_verify_secret(p->secret_hash, "s3cret", 6), 1);
	rn_principals_destroy(ps);
	/* two hashes of one secret differ (salt) */
	char enc2[RN_CRYPTO_HASH_MAX];
	assert_int_equal(rn_crypto_hash_secret("s3cret", 6, 1000, enc2, sizeof(enc2)), 0);
	assert_string_not_equal(enc, enc2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_patterns),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_config_checks),
		cmocka_unit_test(test_client_secret),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
