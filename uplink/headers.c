/*
 * Header and trailer line parser; see headers.h. Names compare case-insensitively (HTTP/2
 * sends them in lower case, but an HTTP/1.1 answer may not).
 */
#include "headers.h"

#include <string.h>
#include <strings.h>

void rn_up_headers_reset(struct rn_up_headers *h)
{
	memset(h, 0, sizeof(*h));
	h->grpc_status = -1;
	h->pushback_ms = -1;
}

/* Copies v into out (cap bytes with the NUL), unprintable bytes as '?'; with `pct`, %XX
 * escapes are decoded first (grpc-message is percent-encoded). */
static void copy_text(char *out, size_t cap, const char *v, size_t n, int pct)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)v[i];
		if (pct && c == '%' && i + 2 < n) {
			int hi = v[i + 1], lo = v[i + 2], x = 0, ok = 1;
			for (int k = 0; k < 2; k++) {
				int d = k ? lo : hi;
				x <<= 4;
				if (d >= '0' && d <= '9')
					x |= d - '0';
				else if (d >= 'a' && d <= 'f')
					x |= d - 'a' + 10;
				else if (d >= 'A' && d <= 'F')
					x |= d - 'A' + 10;
				else
					ok = 0;
			}
			if (ok) {
				c = (unsigned char)x;
				i += 2;
			}
		}
		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[o] = 0;
}

/* Parses a decimal number of at most 18 digits into *out; 0 or -1. */
static int decimal(const char *v, size_t n, int64_t *out)
{
	int64_t x = 0;
	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	*out = x;
	return 0;
}

static int name_is(const char *line, size_t nlen, const char *name)
{
	return strlen(name) == nlen && !strncasecmp(line, name, nlen);
}

static void status_line(struct rn_up_headers *h, const char *p, size_t len)
{
	size_t i = 5; /* after "HTTP/" */
	int64_t code;
	rn_up_headers_reset(h);
	if (i < len && p[i] >= '1' && p[i] <= '9')
		h->http_major = p[i] - '0';
	while (i < len && p[i] != ' ')
		i++;
	while (i < len && p[i] == ' ')
		i++;
	if (len - i >= 3 && !decimal(p + i, 3, &code) && (i + 3 == len || p[i + 3] == ' '))
		h->http_status = (int)code;
	else
		h->http_status = -1; /* unreadable: not 200, so the answer is not gRPC */
}

void rn_up_headers_line(struct rn_up_headers *h, const char *line, size_t len)
{
	size_t nlen, vs;
	const char *v;
	int64_t x;

	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
		status_line(h, line, len);
		return;
	}
	for (nlen = 0; nlen < len && line[nlen] != ':'; nlen++)
		;
	if (nlen == 0 || nlen == len)
		return; /* the blank line ending a block, or not a header */
	for (vs = nlen + 1; vs < len && (line[vs] == ' ' || line[vs] == '\t'); vs++)
		;
	v = line + vs;
	len -= vs;
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (name_is(line, nlen, "content-type")) {
		copy_text(h->content_type, sizeof(h->content_type), v, len, 0);
		h->grpc_ct = (len == 16 && !strncasecmp(v, "application/grpc", 16)) ||
			     (len > 16 && !strncasecmp(v, "application/grpc", 16) &&
			      (v[16] == '+' || v[16] == ';'));
	} else if (name_is(line, nlen, "runnel-committed-acks")) {
		h->committed_acks = len == 1 && v[0] == '1';
	} else if (name_is(line, nlen, "runnel-health")) {
		h->health = len == 1 && v[0] == '1';
	} else if (name_is(line, nlen, "grpc-status")) {
		h->grpc_status = !decimal(v, len, &x) && x <= 16 ? (int)x : 2 /* UNKNOWN */;
	} else if (name_is(line, nlen, "grpc-message")) {
		copy_text(h->grpc_message, sizeof(h->grpc_message), v, len, 1);
	} else if (name_is(line, nlen, "grpc-retry-pushback-ms")) {
		if (decimal(v, len, &x)) {
			h->pushback_ms = -1;
			h->pushback_bad = 1;
		} else {
			h->pushback_ms = x > RN_UP_PUSHBACK_MAX_MS ? RN_UP_PUSHBACK_MAX_MS : x;
			h->pushback_bad = 0;
		}
	}
}

int rn_up_http_to_grpc(int http_status)
{
	switch (http_status) {
	case 400: return 13; /* INTERNAL */
	case 401: return 16; /* UNAUTHENTICATED */
	case 403: return 7;  /* PERMISSION_DENIED */
	case 404: return 12; /* UNIMPLEMENTED */
	case 429:
	case 502:
	case 503:
	case 504: return 14; /* UNAVAILABLE */
	}
	return 2; /* UNKNOWN */
}
