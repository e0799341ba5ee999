/*
 * Fuzz target: arbitrary bytes as a token request body through rn_oauth_parse_form, then the
 * decoded authorization_details (if any) through rn_oauth_parse_details, and the whole
 * endpoint (no principals configured: every request is refused, never a crash). Every table
 * parse_details returns is a valid table name.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oauth.h"
#include "principal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rn_oauth_form form;
static char tables[RN_OAUTH_TABLES_MAX][RN_OAUTH_TABLE_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why;
	size_t n = 0;
	if (rn_oauth_parse_form((const char *)data, size, &form, &why) == 0) {
		if (form.has_details && rn_oauth_parse_details(form.details, strlen(form.details),
							       tables, &n, &why) == 0) {
			for (size_t i = 0; i < n; i++)
				if (rn_table_pattern_check(tables[i]) || strchr(tables[i], '*'))
					abort();
		}
	} else if (!why) {
		abort();
	}
	/* the details parser on the raw bytes too */
	rn_oauth_parse_details((const char *)data, size, tables, &n, &why);
	static struct rn_principals *ps;
	static const uint8_t key[32] = "fuzz-key-fuzz-key-fuzz-key-fuzz!";
	char err[100];
	if (!ps && rn_principals_create(&ps, NULL, 0, NULL, 0, err, sizeof(err)))
		abort();
	struct rn_oauth_ctx c = {ps, key, sizeof(key), 1800000000, 60, "j"};
	struct rn_oauth_request r = {"POST", "application/x-www-form-urlencoded", NULL, data, size};
	struct rn_oauth_response out = {0};
	if (rn_oauth_token_endpoint(&c, &r, &out) == 0 && out.status == 200)
		abort(); /* no principal: no token */
	rn_buf_free(&out.body);
	return 0;
}
