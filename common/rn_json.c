/*
 * JSON escaping and a strict recursive-descent validator/walker; see rn_json.h. Depth is
 * capped at RN_JSON_MAX_DEPTH so hostile input cannot exhaust the stack. Fuzzed by
 * tests/fuzz/fuzz_json.c.
 */
#include "rn_json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rn_err.h"
#include "rn_utf8.h"
#include "rn_url.h"

int rn_json_put_str(struct rn_buf *b, const void *vs, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *s = vs, *end = s + len;
	int rc = rn_buf_append_u8(b, '"');

	while (!rc && s < end) {
		uint8_t c = *s;
		if (c == '"' || c == '\\') {
			uint8_t e[2] = {'\\', c};
			rc = rn_buf_append(b, e, 2);
			s++;
		} else if (c < 0x20) {
			uint8_t e[6] = {
				'\\', 'u', '0', '0', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
			rc = rn_buf_append(b, e, 6);
			s++;
		} else if (c < 0x80) {
			const uint8_t *q = s;
			while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
				q++;
			rc = rn_buf_append(b, s, (size_t)(q - s));
			s = q;
		} else {
			size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
			if ((size_t)(end - s) >= k && rn_utf8_valid(s, k)) {
				rc = rn_buf_append(b, s, k);
				s += k;
			} else {
				rc = rn_buf_append(b, "\xef\xbf\xbd", 3);
				s++;
			}
		}
	}
	return rc ? rc : rn_buf_append_u8(b, '"');
}

struct parser {
	const char *p, *end;
	int depth;
};

static void ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int parse_string(struct parser *ps)
{
	const char *start;
	if (ps->p >= ps->end || *ps->p != '"')
		return RN_EINVAL;
	ps->p++;
	start = ps->p;
	while (ps->p < ps->end) {
		unsigned char c = (unsigned char)*ps->p;
		if (c == '"') {
			if (!rn_utf8_valid(start, (size_t)(ps->p - start)))
				return RN_EINVAL;
			ps->p++;
			return 0;
		}
		if (c < 0x20)
			return RN_EINVAL;
		if (c == '\\') {
			if (++ps->p >= ps->end)
				return RN_EINVAL;
			switch (*ps->p) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't': break;
			case 'u':
				if (ps->end - ps->p < 5)
					return RN_EINVAL;
				for (int i = 1; i <= 4; i++)
					if (rn_hexval(ps->p[i]) < 0)
						return RN_EINVAL;
				ps->p += 4;
				break;
			default: return RN_EINVAL;
			}
		}
		ps->p++;
	}
	return RN_EINVAL;
}

static int parse_number(struct parser *ps)
{
	const char *s = ps->p;
	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p >= ps->end)
		return RN_EINVAL;
	if (*ps->p == '0') {
		ps->p++;
	} else if (*ps->p >= '1' && *ps->p <= '9') {
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	} else {
		return RN_EINVAL;
	}
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return RN_EINVAL;
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return RN_EINVAL;
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	return ps->p > s ? 0 : RN_EINVAL;
}

static int parse_value(struct parser *ps);

static int parse_container(struct parser *ps, char close, int is_obj)
{
	int rc;
	if (++ps->depth > RN_JSON_MAX_DEPTH)
		return RN_EINVAL;
	ps->p++;
	ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		ws(ps);
		if (is_obj) {
			if ((rc = parse_string(ps)))
				return rc;
			ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
				return RN_EINVAL;
			ps->p++;
			ws(ps);
		}
		if ((rc = parse_value(ps)))
			return rc;
		ws(ps);
		if (ps->p >= ps->end)
			return RN_EINVAL;
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == close) {
			ps->p++;
			ps->depth--;
			return 0;
		}
		return RN_EINVAL;
	}
}

static int literal(struct parser *ps, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n))
		return RN_EINVAL;
	ps->p += n;
	return 0;
}

static int parse_value(struct parser *ps)
{
	if (ps->p >= ps->end)
		return RN_EINVAL;
	switch (*ps->p) {
	case '{': return parse_container(ps, '}', 1);
	case '[': return parse_container(ps, ']', 0);
	case '"': return parse_string(ps);
	case 't': return literal(ps, "true");
	case 'f': return literal(ps, "false");
	case 'n': return literal(ps, "null");
	default: return parse_number(ps);
	}
}

int rn_json_validate(const char *p, size_t len)
{
	struct parser ps = {p, p + len, 0};
	int rc;
	ws(&ps);
	if ((rc = parse_value(&ps)))
		return rc;
	ws(&ps);
	return ps.p == ps.end ? 0 : RN_EINVAL;
}

int rn_json_object_walk(struct rn_json_span obj,
			int (*fn)(void *ctx, struct rn_json_span key, struct rn_json_span val),
			void *ctx)
{
	struct parser ps = {obj.p, obj.p + obj.len, 0};
	int rc;

	ws(&ps);
	if (ps.p >= ps.end || *ps.p != '{')
		return RN_EINVAL;
	ps.p++;
	ws(&ps);
	if (ps.p < ps.end && *ps.p == '}')
		return 0;
	for (;;) {
		struct rn_json_span k, v;
		ws(&ps);
		k.p = ps.p;
		if ((rc = parse_string(&ps)))
			return rc;
		k.p++;
		k.len = (size_t)(ps.p - k.p - 1);
		ws(&ps);
		if (ps.p >= ps.end || *ps.p != ':')
			return RN_EINVAL;
		ps.p++;
		ws(&ps);
		v.p = ps.p;
		if ((rc = parse_value(&ps)))
			return rc;
		v.len = (size_t)(ps.p - v.p);
		if ((rc = fn(ctx, k, v)))
			return rc;
		ws(&ps);
		if (ps.p < ps.end && *ps.p == ',') {
			ps.p++;
			continue;
		}
		if (ps.p < ps.end && *ps.p == '}')
			return 0;
		return RN_EINVAL;
	}
}

int rn_json_array_walk(struct rn_json_span arr,
		       int (*fn)(void *ctx, size_t i, struct rn_json_span val), void *ctx)
{
	struct parser ps = {arr.p, arr.p + arr.len, 0};
	int rc;

	ws(&ps);
	if (ps.p >= ps.end || *ps.p != '[')
		return RN_EINVAL;
	ps.p++;
	ws(&ps);
	if (ps.p < ps.end && *ps.p == ']')
		return 0;
	for (size_t i = 0;; i++) {
		struct rn_json_span v;
		ws(&ps);
		v.p = ps.p;
		if ((rc = parse_value(&ps)))
			return rc;
		v.len = (size_t)(ps.p - v.p);
		if ((rc = fn(ctx, i, v)))
			return rc;
		ws(&ps);
		if (ps.p < ps.end && *ps.p == ',') {
			ps.p++;
			continue;
		}
		if (ps.p < ps.end && *ps.p == ']')
			return 0;
		return RN_EINVAL;
	}
}

static int put_utf8(struct rn_buf *out, uint32_t cp)
{
	uint8_t u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (uint8_t)(0xc0 | (cp >> 6));
		u[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (uint8_t)(0xe0 | (cp >> 12));
		u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (uint8_t)(0xf0 | (cp >> 18));
		u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return rn_buf_append(out, u, n);
}

static uint32_t hex4(const char *p)
{
	return (uint32_t)(rn_hexval(p[0]) << 12 | rn_hexval(p[1]) << 8 | rn_hexval(p[2]) << 4 |
			  rn_hexval(p[3]));
}

int rn_json_string(struct rn_json_span v, struct rn_buf *out)
{
	struct parser ps = {v.p, v.p + v.len, 0};
	const char *p, *end;
	int rc;

	if ((rc = parse_string(&ps)) || ps.p != ps.end)
		return RN_EINVAL;
	p = v.p + 1;
	end = v.p + v.len - 1;
	while (p < end) {
		if (*p != '\\') {
			const char *q = p;
			while (q < end && *q != '\\')
				q++;
			if ((rc = rn_buf_append(out, p, (size_t)(q - p))))
				return rc;
			p = q;
			continue;
		}
		p++;
		char c = *p++;
		switch (c) {
		case 'b': rc = rn_buf_append_u8(out, '\b'); break;
		case 'f': rc = rn_buf_append_u8(out, '\f'); break;
		case 'n': rc = rn_buf_append_u8(out, '\n'); break;
		case 'r': rc = rn_buf_append_u8(out, '\r'); break;
		case 't': rc = rn_buf_append_u8(out, '\t'); break;
		case 'u': {
			uint32_t cp = hex4(p);
			p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' &&
			    p[1] == 'u') {
				uint32_t lo = hex4(p + 2);
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				}
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd; /* lone surrogate */
			rc = put_utf8(out, cp);
			break;
		}
		default: rc = rn_buf_append_u8(out, (uint8_t)c); break;
		}
		if (rc)
			return rc;
	}
	if ((rc = rn_buf_reserve(out, 1)))
		return rc;
	out->data[out->len] = 0;
	return 0;
}

int rn_json_int64(struct rn_json_span v, int64_t *out)
{
	char tmp[32];
	char *e;
	if (v.len == 0 || v.len >= sizeof(tmp))
		return RN_EINVAL;
	memcpy(tmp, v.p, v.len);
	tmp[v.len] = 0;
	errno = 0;
	long long x = strtoll(tmp, &e, 10);
	if (*e)
		return RN_EINVAL;
	if (errno == ERANGE)
		return RN_ERANGE;
	*out = x;
	return 0;
}

int rn_json_span_eq(struct rn_json_span s, const char *lit)
{
	size_t n = strlen(lit);
	return s.len == n && memcmp(s.p, lit, n) == 0;
}
