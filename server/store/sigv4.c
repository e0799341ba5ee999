/*
 * SigV4 signing (sigv4.h): canonical request, string to sign, signing key, Authorization.
 * Everything is built in rn_bufs owned by the caller's rn_sigv4_out or by the call; the
 * secret-derived key material lives on the stack and is wiped before returning.
 */
#define _DEFAULT_SOURCE /* explicit_bzero, gmtime_r */
#include "sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "rn_url.h"

static const char hexd[] = "0123456789abcdef";
static const char hexu[] = "0123456789ABCDEF";

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

int rn_sigv4_encode(struct rn_buf *b, const char *s, size_t len, int keep_slash)
{
	if (rn_buf_reserve(b, len * 3))
		return RN_ENOMEM;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			b->data[b->len++] = c;
		} else {
			b->data[b->len++] = '%';
			b->data[b->len++] = (uint8_t)hexu[c >> 4];
			b->data[b->len++] = (uint8_t)hexu[c & 15];
		}
	}
	return 0;
}

static void to_hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexd[p[i] >> 4];
		out[2 * i + 1] = hexd[p[i] & 15];
	}
	out[2 * n] = 0;
}

int rn_sigv4_sha256_hex(const void *p, size_t len, char hex[65])
{
	uint8_t h[32];
	if (rn_crypto_sha256(p, len, h))
		return RN_ENOMEM;
	to_hex(h, 32, hex);
	return 0;
}

/* Decodes %XX in s[0..len) into a fresh buffer (an invalid escape stays literal), then
 * encodes it again: the canonical form of one query name or value. */
static int requote(const char *s, size_t len, struct rn_buf *out)
{
	char *d = rn_malloc(len + 1);
	size_t n = 0;
	int rc;
	if (!d)
		return RN_ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int h, l;
		if (s[i] == '%' && i + 2 < len && (h = rn_hexval((unsigned char)s[i + 1])) >= 0 &&
		    (l = rn_hexval((unsigned char)s[i + 2])) >= 0) {
			d[n++] = (char)(h << 4 | l);
			i += 2;
		} else {
			d[n++] = s[i];
		}
	}
	rc = rn_sigv4_encode(out, d, n, 0);
	rn_free(d);
	return rc;
}

struct param {
	char *k, *v; /* canonical (encoded), NUL-terminated */
};

static int param_cmp(const void *a, const void *b)
{
	const struct param *x = a, *y = b;
	int c = strcmp(x->k, y->k);
	return c ? c : strcmp(x->v, y->v);
}

static char *buf_take(struct rn_buf *b)
{
	char *s;
	if (rn_buf_append_u8(b, 0))
		return NULL;
	s = (char *)b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

static int canonical_query(const char *q, struct rn_buf *b)
{
	struct param *ps = NULL;
	size_t n = 0;
	int rc = 0;
	if (!q || !*q)
		return 0;
	ps = rn_calloc(RN_SIGV4_MAX_PARAMS, sizeof(*ps));
	if (!ps)
		return RN_ENOMEM;
	for (const char *p = q; *p;) {
		const char *end = strchr(p, '&'), *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);
		struct rn_buf kb = {0}, vb = {0};
		if (len) {
			if (n == RN_SIGV4_MAX_PARAMS) {
				rc = RN_EINVAL;
				goto out;
			}
			eq = memchr(p, '=', len);
			size_t kl = eq ? (size_t)(eq - p) : len;
			if ((rc = requote(p, kl, &kb)) ||
			    (rc = requote(eq ? eq + 1 : p + len, eq ? len - kl - 1 : 0, &vb)) ||
			    !(ps[n].k = buf_take(&kb)) || !(ps[n].v = buf_take(&vb))) {
				rn_buf_free(&kb);
				rn_buf_free(&vb);
				rn_free(ps[n].k);
				ps[n].k = NULL;
				rc = rc ? rc : RN_ENOMEM;
				goto out;
			}
			n++;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	qsort(ps, n, sizeof(*ps), param_cmp);
	for (size_t i = 0; i < n && !rc; i++)
		rc = rn_buf_printf(b, "%s%s=%s", i ? "&" : "", ps[i].k, ps[i].v);
out:
	for (size_t i = 0; i < n; i++) {
		rn_free(ps[i].k);
		rn_free(ps[i].v);
	}
	rn_free(ps);
	return rc;
}

/* The canonical URI: path encoded once; with normalize, empty, "." and ".." segments go. */
static int canonical_path(const char *path, int normalize, struct rn_buf *b)
{
	size_t start = b->len, plen;
	if (!path || !*path)
		return rn_buf_append_u8(b, '/');
	plen = strlen(path);
	if (!normalize) {
		if (path[0] != '/' && rn_buf_append_u8(b, '/'))
			return RN_ENOMEM;
		return rn_sigv4_encode(b, path, plen, 1);
	}
	for (const char *p = path; *p;) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* skip */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			while (b->len > start && b->data[b->len - 1] != '/')
				b->len--;
			if (b->len > start)
				b->len--; /* the '/' before the removed segment */
		} else if (rn_buf_append_u8(b, '/') || rn_sigv4_encode(b, p, len, 0)) {
			return RN_ENOMEM;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	if (b->len == start || path[plen - 1] == '/')
		return rn_buf_append_u8(b, '/');
	return 0;
}

static int tchar(unsigned char c)
{
	return unreserved(c) || (c && strchr("!#$%&'*+^`|", c));
}

struct chdr {
	char *name; /* lower-case */
	const char *value;
};

/* Appends the value folded: trimmed, each run of blanks (space, tab, CR, LF) one space. */
static int fold_value(struct rn_buf *b, const char *v)
{
	int pending = 0, any = 0;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
			pending = any;
			continue;
		}
		if ((pending && rn_buf_append_u8(b, ' ')) || rn_buf_append_u8(b, (uint8_t)*v))
			return RN_ENOMEM;
		pending = 0;
		any = 1;
	}
	return 0;
}

/* Canonical request into b; the signed-headers list also into sh. */
static int canonical(const struct rn_sigv4_req *r, const char *amz_date, const char *token,
		     struct rn_buf *b, struct rn_buf *sh)
{
	struct chdr hs[RN_SIGV4_MAX_HEADERS + 3];
	const char *hash =
		r->payload_hash
			? r->payload_hash
			: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	size_t n = 0;
	int rc = 0;

	if (!r->method || !amz_date || (r->n_headers && !r->headers))
		return RN_EINVAL;
	if (r->n_headers > RN_SIGV4_MAX_HEADERS)
		return RN_EINVAL;
	for (size_t i = 0; i < r->n_headers + 3; i++) {
		const char *name, *value;
		if (i < r->n_headers) {
			name = r->headers[i].name;
			value = r->headers[i].value;
		} else if (i == r->n_headers) {
			name = "x-amz-date";
			value = amz_date;
		} else if (i == r->n_headers + 1) {
			if (!token || !*token)
				continue;
			name = "x-amz-security-token";
			value = token;
		} else {
			if (!r->content_sha256)
				continue;
			name = "x-amz-content-sha256";
			value = hash;
		}
		if (!name || !*name || !value) {
			rc = RN_EINVAL;
			goto out;
		}
		hs[n].value = value;
		if (!(hs[n].name = rn_strdup(name))) {
			rc = RN_ENOMEM;
			goto out;
		}
		n++;
		for (char *p = hs[n - 1].name; *p; p++) {
			if (!tchar((unsigned char)*p)) {
				rc = RN_EINVAL;
				goto out;
			}
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		}
	}
	/* stable insertion sort by name: duplicates keep their order, as SigV4 wants */
	for (size_t i = 1; i < n; i++) {
		struct chdr t = hs[i];
		size_t j = i;
		while (j > 0 && strcmp(hs[j - 1].name, t.name) > 0) {
			hs[j] = hs[j - 1];
			j--;
		}
		hs[j] = t;
	}
	if ((rc = rn_buf_printf(b, "%s\n", r->method)) ||
	    (rc = canonical_path(r->path, r->normalize, b)) || (rc = rn_buf_append_u8(b, '\n')) ||
	    (rc = canonical_query(r->query, b)) || (rc = rn_buf_append_u8(b, '\n')))
		goto out;
	for (size_t i = 0; i < n; i++) {
		int same = i > 0 && strcmp(hs[i - 1].name, hs[i].name) == 0;
		if (same)
			rc = rn_buf_append_u8(b, ',');
		else
			rc = (i ? rn_buf_append_u8(b, '\n') : 0) ||
					     rn_buf_printf(b, "%s:", hs[i].name) ||
					     (sh->len && rn_buf_append_u8(sh, ';')) ||
					     rn_buf_append_str(sh, hs[i].name)
				     ? RN_ENOMEM
				     : 0;
		if (rc || (rc = fold_value(b, hs[i].value)))
			goto out;
	}
	if (n)
		rc = rn_buf_append_u8(b, '\n');
	if (!rc)
		rc = rn_buf_append_u8(b, '\n') || rn_buf_append(b, sh->data, sh->len) ||
				     rn_buf_printf(b, "\n%s", hash)
			     ? RN_ENOMEM
			     : 0;
out:
	for (size_t i = 0; i < n; i++)
		rn_free(hs[i].name);
	return rc;
}

int rn_sigv4_canonical(const struct rn_sigv4_req *r, const char *amz_date, const char *token,
		       struct rn_buf *b)
{
	struct rn_buf sh = {0};
	int rc = canonical(r, amz_date, token, b, &sh);
	rn_buf_free(&sh);
	return rc;
}

static int hmac(const uint8_t *key, size_t klen, const char *msg, size_t mlen, uint8_t out[32])
{
	return rn_crypto_hmac_sha256(key, klen, msg, mlen, out) ? RN_ENOMEM : 0;
}

int rn_sigv4_sign(const struct rn_sigv4_cred *c, const struct rn_sigv4_req *r, int64_t t,
		  struct rn_sigv4_out *out)
{
	struct rn_buf sh = {0};
	char date8[9], hash[65], kbuf[4 + 256];
	uint8_t k[32], sig[32];
	struct tm tm;
	time_t tt = (time_t)t;
	size_t slen;
	int rc;

	if (!c || !r || !out || !c->access_key || !c->secret_key || !c->region || !c->service)
		return RN_EINVAL;
	slen = strlen(c->secret_key);
	if (slen > 256 || !gmtime_r(&tt, &tm))
		return RN_EINVAL;
	strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
	memcpy(date8, out->amz_date, 8);
	date8[8] = 0;
	rc = canonical(r, out->amz_date, c->session_token, &out->canonical, &sh);
	if (rc || (rc = rn_sigv4_sha256_hex(out->canonical.data, out->canonical.len, hash)))
		goto out;
	if ((rc = rn_buf_printf(&out->to_sign, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
				out->amz_date, date8, c->region, c->service, hash)))
		goto out;
	memcpy(kbuf, "AWS4", 4);
	memcpy(kbuf + 4, c->secret_key, slen);
	if ((rc = hmac((const uint8_t *)kbuf, 4 + slen, date8, 8, k)) ||
	    (rc = hmac(k, 32, c->region, strlen(c->region), k)) ||
	    (rc = hmac(k, 32, c->service, strlen(c->service), k)) ||
	    (rc = hmac(k, 32, "aws4_request", 12, k)) ||
	    (rc = hmac(k, 32, (const char *)out->to_sign.data, out->to_sign.len, sig)))
		goto out;
	to_hex(sig, 32, out->signature);
	rc = rn_buf_printf(&out->authorization,
			   "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=",
			   c->access_key, date8, c->region, c->service) ||
			     rn_buf_append(&out->authorization, sh.data, sh.len) ||
			     rn_buf_printf(&out->authorization, ", Signature=%s", out->signature) ||
			     rn_buf_append_u8(&out->canonical, 0) ||
			     rn_buf_append_u8(&out->to_sign, 0) ||
			     rn_buf_append_u8(&out->authorization, 0)
		     ? RN_ENOMEM
		     : 0;
	if (!rc) { /* the NULs are terminators, not content */
		out->canonical.len--;
		out->to_sign.len--;
		out->authorization.len--;
	}
out:
	explicit_bzero(kbuf, sizeof(kbuf));
	explicit_bzero(k, sizeof(k));
	rn_buf_free(&sh);
	return rc;
}

void rn_sigv4_out_free(struct rn_sigv4_out *out)
{
	if (!out)
		return;
	rn_buf_free(&out->canonical);
	rn_buf_free(&out->to_sign);
	rn_buf_free(&out->authorization);
	memset(out, 0, sizeof(*out));
}
