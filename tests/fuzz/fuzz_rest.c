/*
 * Fuzz target: the REST router (server/net/rest.c) as the server runs it on every plain HTTP
 * request. The input is split at the first three newlines into method, path?query and
 * content-type; the rest is the body, split into a record list both as an array and as a
 * single object. Checks: an accepted route names a table that is not empty, holds no NUL and
 * fits (a fleet API route: taken by GET only, its device name 1..256 bytes); a refusal has a
 * status, code and reason; every record of an accepted body is a JSON object; a refused body leaves
 * the output as it was.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rest.h"
#include "rn_buf.h"
#include "rn_pbwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *take_line(const uint8_t **p, size_t *n, char *out, size_t cap)
{
	const uint8_t *nl = *n ? memchr(*p, '\n', *n) : NULL;
	size_t len = nl ? (size_t)(nl - *p) : *n;
	if (len >= cap)
		len = cap - 1;
	memcpy(out, *p, len);
	out[len] = 0;
	if (nl) {
		*n -= (size_t)(nl + 1 - *p);
		*p = nl + 1;
	} else {
		*p += *n;
		*n = 0;
	}
	return *p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char method[16], target[RN_REST_PATH_MAX + 64], ctype[128], why[160];
	const uint8_t *p = data;
	size_t n = size;
	struct rn_rest_target t;

	take_line(&p, &n, method, sizeof(method));
	take_line(&p, &n, target, sizeof(target));
	take_line(&p, &n, ctype, sizeof(ctype));
	char *q = strchr(target, '?');
	if (q)
		*q++ = 0;
	int http = rn_rest_route(method, target, strlen(target), q, ctype[0] ? ctype : NULL, &t);
	if (http == 0 && t.route >= RN_REST_API_OVERVIEW) {
		/* the fleet API: GET only; a device route names a device of 1..256 bytes */
		if (strcmp(method, "GET") || t.table[0] ||
		    (t.route == RN_REST_API_DEVICE
			     ? !t.device[0] || strnlen(t.device, sizeof(t.device)) > 256
			     : t.device[0] != 0))
			__builtin_trap();
	} else if (http == 0) {
		if (t.route != RN_REST_TOKEN &&
		    (!t.table[0] || strlen(t.table) > 255 || t.route == RN_REST_OTHER))
			__builtin_trap();
	} else if (http < 400 || !t.code || !t.why) {
		__builtin_trap();
	}
	(void)rn_rest_is_rest_path(target, strlen(target));

	for (int single = 0; single < 2; single++) {
		struct rn_buf b = {.max = 1 << 20};
		size_t rows = 0;
		rn_buf_append(&b, "x", 1); /* a prefix that must survive any refusal */
		int rc = rn_rest_batch(p, n, single, &b, &rows, why, sizeof(why));
		if (rc) {
			if (b.len != 1 || !why[0])
				__builtin_trap();
		} else {
			struct rn_pb_reader r;
			struct rn_pb_field f;
			size_t seen = 0;
			rn_pb_reader_init(&r, b.data + 1, b.len - 1);
			while (rn_pb_next(&r, &f) == 1) {
				if (f.num != 1 || !f.len || f.ptr[0] != '{')
					__builtin_trap();
				seen++;
			}
			if (seen != rows || (single && rows != 1))
				__builtin_trap();
		}
		rn_buf_free(&b);
	}
	return 0;
}
