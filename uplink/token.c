/*
 * The client-credentials exchange's pure parts; see token.h. The answer is walked with
 * rn_json (strict, bounded); unknown members (scope, refresh_token, ...) are ignored.
 */
#include "token.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rn_buf.h"
#include "rn_err.h"
#include "rn_json.h"

struct walk {
	struct rn_token_resp *out;
	struct rn_buf tok, type, desc;
	int have_exp, bad_exp, bad;
	int64_t exp;
};

/* Copies s into out (cap bytes) with unprintables as '?', truncated. */
static void printable(char *out, size_t cap, const char *s, size_t len)
{
	size_t n = len < cap - 1 ? len : cap - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[n] = 0;
}

static int member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct walk *w = ctx;
	struct rn_buf b = {0};
	if (rn_json_span_eq(k, "access_token")) {
		rn_buf_reset(&w->tok);
		if (rn_json_string(v, &w->tok))
			w->bad = 1;
	} else if (rn_json_span_eq(k, "token_type")) {
		rn_buf_reset(&w->type);
		if (rn_json_string(v, &w->type))
			w->bad = 1;
	} else if (rn_json_span_eq(k, "expires_in")) {
		w->have_exp = 1;
		w->bad_exp = rn_json_int64(v, &w->exp) != 0;
	} else if (rn_json_span_eq(k, "error")) {
		if (rn_json_string(v, &b) == 0)
			printable(w->out->error, sizeof(w->out->error), (const char *)b.data,
				  b.len);
		rn_buf_free(&b);
	} else if (rn_json_span_eq(k, "error_description")) {
		rn_buf_reset(&w->desc);
		if (rn_json_string(v, &w->desc))
			rn_buf_reset(&w->desc);
	}
	return 0;
}

static int visible(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
	return 1;
}

int rn_token_parse(int http_status, const char *body, size_t len, struct rn_token_resp *out)
{
	struct walk w = {.out = out};
	struct rn_json_span obj = {body, len};
	char desc[160] = "";
	int rc = RN_EINVAL, walked;

	memset(out, 0, sizeof(*out));
	walked = body && len && len <= RN_TOKEN_BODY_MAX ? rn_json_object_walk(obj, member, &w)
							 : RN_EINVAL;
	if (w.desc.len)
		printable(desc, sizeof(desc), (const char *)w.desc.data, w.desc.len);
	if (http_status != 200) {
		snprintf(out->why, sizeof(out->why), "HTTP status %d%s%s%s%s", http_status,
			 out->error[0] ? ": " : " (not an OAuth error answer)", out->error,
			 desc[0] ? ": " : "", desc);
		goto out;
	}
	if (walked || w.bad) {
		snprintf(out->why, sizeof(out->why), "the answer is not a JSON object%s",
			 len > RN_TOKEN_BODY_MAX ? " (too long)" : "");
		goto out;
	}
	if (out->error[0]) {
		snprintf(out->why, sizeof(out->why), "HTTP 200 with error %s%s%s", out->error,
			 desc[0] ? ": " : "", desc);
		goto out;
	}
	if (!w.tok.len) {
		snprintf(out->why, sizeof(out->why), "no access_token in the answer");
		goto out;
	}
	if (w.tok.len > RN_TOKEN_MAX || !visible((const char *)w.tok.data, w.tok.len)) {
		snprintf(out->why, sizeof(out->why),
			 "the access_token is longer than %d bytes or holds characters a header "
			 "cannot carry",
			 RN_TOKEN_MAX);
		goto out;
	}
	if (!w.type.len || strcasecmp((const char *)w.type.data, "bearer") || w.type.len != 6) {
		snprintf(out->why, sizeof(out->why), "token_type is not Bearer");
		goto out;
	}
	if (!w.have_exp || w.bad_exp || w.exp < 1) {
		snprintf(out->why, sizeof(out->why), "expires_in is %s",
			 w.have_exp ? "not a positive integer" : "missing");
		goto out;
	}
	memcpy(out->access_token, w.tok.data, w.tok.len);
	out->access_token[w.tok.len] = 0;
	out->expires_in = w.exp > RN_TOKEN_LIFETIME_MAX ? RN_TOKEN_LIFETIME_MAX : w.exp;
	rc = 0;
out:
	/* the token must not linger in freed memory */
	if (w.tok.data)
		memset(w.tok.data, 0, w.tok.cap);
	rn_buf_free(&w.tok);
	rn_buf_free(&w.type);
	rn_buf_free(&w.desc);
	return rc;
}

int rn_token_basic_header(const char *id, const char *secret, char *out, size_t cap)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char pre[] = "authorization: Basic ";
	size_t il = strlen(id), sl = strlen(secret), n = il + 1 + sl, o = sizeof(pre) - 1;
	if (cap < o + (n + 2) / 3 * 4 + 1)
		return RN_ERANGE;
	memcpy(out, pre, o);
	for (size_t i = 0; i < n; i += 3) {
		unsigned c[3] = {0, 0, 0};
		size_t k;
		for (k = 0; k < 3 && i + k < n; k++) {
			size_t j = i + k;
			c[k] = (unsigned char)(j < il ? id[j] : j == il ? ':' : secret[j - il - 1]);
		}
		unsigned v = c[0] << 16 | c[1] << 8 | c[2];
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = k > 1 ? b64[v >> 6 & 63] : '=';
		out[o++] = k > 2 ? b64[v & 63] : '=';
	}
	out[o] = 0;
	return 0;
}

int64_t rn_token_refresh_after_ms(int64_t expires_in_s)
{
	int64_t life = expires_in_s * 1000, at = life * 8 / 10;
	if (life - 60000 < at)
		at = life - 60000;
	if (at < life / 2)
		at = life / 2;
	return at;
}
