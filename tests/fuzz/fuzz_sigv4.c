/*
 * Fuzz target: SigV4's canonical request (server/store/sigv4.c) from arbitrary text. The
 * first byte picks path normalization; the rest is split at newlines into the path, the query
 * and up to 70 "name:value" header lines. Must never crash or leak; on success the canonical
 * path and query lines hold only unreserved characters, '/', '%XX' (and '=' '&' in the query),
 * whatever bytes went in.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rn_buf.h"
#include "rn_err.h"
#include "sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int encoded_ok(const char *p, const char *end, const char *extra)
{
	for (; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    strchr("-._~/", c))
			continue;
		if (c == '%' && end - p >= 3 && strchr("0123456789ABCDEF", p[1]) &&
		    strchr("0123456789ABCDEF", p[2])) {
			p += 2;
			continue;
		}
		if (c && strchr(extra, c))
			continue;
		return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_sigv4_header hs[70];
	struct rn_sigv4_req r = {.method = "GET", .headers = hs, .content_sha256 = 1};
	struct rn_buf b = {0};
	char *text, *lines[72];
	size_t n = 0;
	int rc;
	if (size < 1)
		return 0;
	r.normalize = data[0] & 1;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = 0;
	for (char *p = text; p && n < 72;) {
		lines[n++] = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = 0;
	}
	r.path = lines[0];
	r.query = n > 1 ? lines[1] : NULL;
	for (size_t i = 2; i < n; i++) {
		char *colon = strchr(lines[i], ':');
		hs[r.n_headers].name = lines[i];
		hs[r.n_headers].value = colon ? (*colon = 0, colon + 1) : "";
		r.n_headers++;
	}
	rc = rn_sigv4_canonical(&r, "20150830T123600Z", "token", &b);
	if (rc != 0 && rc != RN_EINVAL && rc != RN_ENOMEM)
		abort();
	if (rc == 0) {
		const char *s = (const char *)b.data, *end = s + b.len;
		const char *l1 = memchr(s, '\n', b.len), *l2, *l3;
		if (!l1 || !(l2 = memchr(l1 + 1, '\n', (size_t)(end - l1 - 1))) ||
		    !(l3 = memchr(l2 + 1, '\n', (size_t)(end - l2 - 1))))
			abort();
		if (l2 == l1 + 1 || l1[1] != '/' || !encoded_ok(l1 + 1, l2, "") ||
		    !encoded_ok(l2 + 1, l3, "=&"))
			abort();
	}
	rn_buf_free(&b);
	free(text);
	return 0;
}
