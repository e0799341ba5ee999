/*
 * Address and URL checks; see rn_addr.h. Hand-written scanners rather than sscanf or atoi,
 * because those accept what must be refused ("abc" is port 0 to atoi, "+80" and " 80" are
 * numbers to strtol). IP literals are checked with inet_pton, which is a pure function of its
 * text. Nothing here allocates, resolves or touches a socket.
 */
#include "rn_addr.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "rn_err.h"

static int bad(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return RN_EINVAL;
}

/* A decimal port of len bytes at p: 1..5 digits, at most 65535. -1 if it is not one. */
static int port_of(const char *p, size_t len)
{
	int v = 0;
	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v > 65535 ? -1 : v;
}

/* A DNS-style name: labels of [A-Za-z0-9_-], 1..63 bytes, not starting or ending with '-',
 * separated by single dots (one trailing dot allowed), 253 bytes at most. */
static int name_ok(const char *h, size_t len)
{
	size_t label = 0;
	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = h[i];
		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	return h[len - 1] != '-';
}

/* Checks and copies the host of len bytes at h (brackets already removed when v6). */
static int host_of(const char *h, size_t len, int v6, unsigned flags, struct rn_hostport *out,
		   const char **why)
{
	unsigned char bin[16];
	if (len == 0)
		return bad(why, "the host is empty");
	if (len >= sizeof(out->host))
		return bad(why, "the host is too long");
	memcpy(out->host, h, len);
	out->host[len] = 0;
	if (v6) {
		if (inet_pton(AF_INET6, out->host, bin) != 1)
			return bad(why, "not an IPv6 address inside the brackets");
		out->family = 6;
		return 0;
	}
	if (inet_pton(AF_INET, out->host, bin) == 1) {
		out->family = 4;
		return 0;
	}
	if (flags & RN_ADDR_NUMERIC)
		return bad(why, "the host must be an IP address (like 127.0.0.1, 0.0.0.0 or "
				"[::1]), not a name");
	/* all digits and dots but not an IPv4 address: a typo, not a name */
	if (strspn(out->host, "0123456789.") == len)
		return bad(why, "not an IPv4 address");
	if (!name_ok(h, len))
		return bad(why, "not a valid host name");
	out->family = 0;
	return 0;
}

/* Splits the authority text [h, h+len) into host and port; `need_port` refuses a missing
 * port. Sets *has_port. */
static int authority(const char *h, size_t len, unsigned flags, int need_port,
		     struct rn_hostport *out, int *has_port, const char **why)
{
	const char *hs = h, *colon = NULL;
	size_t hl;
	int v6 = 0, rc, port;

	*has_port = 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)h[i] <= ' ' || (unsigned char)h[i] == 0x7f)
			return bad(why, "spaces or control characters in the address");
	if (len && h[0] == '[') {
		const char *close = memchr(h, ']', len);
		if (!close)
			return bad(why, "'[' without ']' around the IPv6 address");
		hs = h + 1;
		hl = (size_t)(close - hs);
		v6 = 1;
		if (close + 1 < h + len) {
			if (close[1] != ':')
				return bad(why, "expected ':' and a port after ']'");
			colon = close + 1;
		}
	} else {
		const char *c1 = memchr(h, ':', len);
		if (c1 && memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - h)))
			return bad(why, "an IPv6 address goes in brackets, like [::1]:7700");
		if (memchr(h, ']', len))
			return bad(why, "']' without '['");
		colon = c1;
		hl = colon ? (size_t)(colon - h) : len;
	}
	if ((rc = host_of(hs, hl, v6, flags, out, why)))
		return rc;
	if (!colon) {
		if (need_port)
			return bad(why, "expected host:port (no port given)");
		return 0;
	}
	port = port_of(colon + 1, len - (size_t)(colon + 1 - h));
	if (port < 0 || (port == 0 && !(flags & RN_ADDR_PORT_ZERO)))
		return bad(why,
			   (flags & RN_ADDR_PORT_ZERO)
				   ? "the port must be a number from 0 (any free port) to 65535"
				   : "the port must be a number from 1 to 65535");
	out->port = port;
	*has_port = 1;
	return 0;
}

int rn_addr_parse_hostport(const char *s, unsigned flags, struct rn_hostport *out, const char **why)
{
	int has_port;
	if (!s || !*s)
		return bad(why, "expected host:port (the address is empty)");
	memset(out, 0, sizeof(*out));
	return authority(s, strlen(s), flags, 1, out, &has_port, why);
}

int rn_addr_parse_listen_list(const char *s, struct rn_hostport *out, size_t cap, size_t *n,
			      size_t *bad_at, const char **why)
{
	const char *p = s;
	*n = 0;
	*bad_at = 0;
	if (!s || !*s)
		return bad(why, "expected host:port (the address is empty)");
	if (cap > RN_ADDR_LIST_MAX)
		cap = RN_ADDR_LIST_MAX;
	for (;;) {
		const char *end = p + strcspn(p, ","), *a = p, *b = end;
		int has_port, rc;
		while (a < b && *a == ' ')
			a++;
		while (b > a && b[-1] == ' ')
			b--;
		*bad_at = (size_t)(a - s);
		if (a == b)
			return bad(why,
				   "an empty address in the list (two commas, or one at an end)");
		if (*n == cap)
			return bad(why, "too many addresses (at most 8)");
		memset(&out[*n], 0, sizeof(out[*n]));
		if ((rc = authority(a, (size_t)(b - a), RN_ADDR_PORT_ZERO | RN_ADDR_NUMERIC, 1,
				    &out[*n], &has_port, why)))
			return rc;
		for (size_t i = 0; i < *n; i++)
			if (out[i].port == out[*n].port && !strcmp(out[i].host, out[*n].host))
				return bad(why, "the same address is given twice");
		(*n)++;
		if (!*end)
			break;
		p = end + 1;
	}
	*bad_at = 0;
	return 0;
}

int rn_addr_parse_url(const char *s, struct rn_url *out, const char **why)
{
	const char *a, *end;
	int rc;

	if (!s || !*s)
		return bad(why, "the URL is empty");
	memset(out, 0, sizeof(*out));
	if (!strncasecmp(s, "http://", 7)) {
		a = s + 7;
	} else if (!strncasecmp(s, "https://", 8)) {
		a = s + 8;
		out->tls = 1;
	} else {
		return bad(why, "the URL must start with http:// (HTTP/2 without TLS) or https://");
	}
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7f)
			return bad(why, "spaces or control characters in the URL");
	if (strpbrk(s, "?#"))
		return bad(why, "a query (?) or fragment (#) is not allowed in the URL");
	end = a + strcspn(a, "/");
	if (memchr(a, '@', (size_t)(end - a)))
		return bad(why, "user:password@ is not supported in the URL (set the token)");
	if (end == a)
		return bad(why, "the URL has no host");
	if ((rc = authority(a, (size_t)(end - a), 0, 0, &out->hp, &out->port_given, why)))
		return rc;
	if (!out->port_given)
		out->hp.port = out->tls ? 443 : 80;
	out->path_off = (size_t)(end - s);
	return 0;
}

int rn_addr_is_loopback(const struct rn_hostport *hp)
{
	unsigned char b[16];
	static const unsigned char v6lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (hp->family == 4)
		return inet_pton(AF_INET, hp->host, b) == 1 && b[0] == 127;
	if (hp->family == 6 && inet_pton(AF_INET6, hp->host, b) == 1)
		return !memcmp(b, v6lo, 16) || (!memcmp(b, mapped, 12) && b[12] == 127);
	return 0;
}
