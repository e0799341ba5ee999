/*
 * Fuzz target: validates arbitrary bytes as JSON, walks them as an object and decodes every
 * string member, as the Delta log reader does (and the JSON record path will).
 */
#include <stddef.h>
#include <stdint.h>

#include "rn_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct rn_buf *b = ctx;
	int64_t n;
	(void)k;
	rn_buf_reset(b);
	if (v.len && v.p[0] == '"')
		rn_json_string(v, b);
	else
		rn_json_int64(v, &n);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_buf b = {0};
	struct rn_json_span s = {(const char *)data, size};
	rn_json_validate(s.p, s.len);
	rn_json_object_walk(s, member, &b);
	rn_buf_reset(&b);
	rn_json_put_str(&b, data, size);
	rn_buf_free(&b);
	return 0;
}
