/*
 * Fuzz target: response header and trailer lines as the uplink gets them from libcurl
 * (uplink/headers.c), from a server or from whatever answers in its place. The input is
 * split into lines at '\n' and fed in order; the parsed fields must stay within their
 * documented bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "headers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_up_headers h;
	const char *p = (const char *)data, *end = p + size;
	rn_up_headers_reset(&h);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		/* a private copy of exactly n bytes, so ASan sees any read past the line */
		char *line = malloc(n ? n : 1);
		if (!line)
			return 0;
		memcpy(line, p, n);
		rn_up_headers_line(&h, line, n);
		free(line);
		p += n;
	}
	if (h.grpc_status < -1 || h.grpc_status > 16 || h.pushback_ms < -1 ||
	    h.pushback_ms > RN_UP_PUSHBACK_MAX_MS || h.http_major < 0 || h.http_major > 9 ||
	    h.http_status < -1 || h.http_status > 999 ||
	    strlen(h.grpc_message) >= sizeof(h.grpc_message) ||
	    strlen(h.content_type) >= sizeof(h.content_type))
		abort();
	if (h.http_status != 200 && h.http_status > 0) {
		int g = rn_up_http_to_grpc(h.http_status);
		if (g < 0 || g > 16)
			abort();
	}
	return 0;
}
