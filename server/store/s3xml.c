/*
 * S3 XML bodies (s3xml.h). One walker turns the bytes into element events (start, end with
 * the element's decoded text, its depth and its parent's name); three small handlers pick out
 * what each document needs. The walker holds a stack of element names and one text buffer.
 */
#include "s3xml.h"

#include <stdlib.h>
#include <string.h>

#include "rn_buf.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "rn_time.h"

#define NAME_MAX_LEN 64

struct walker;
/* end = 0: an element opened; 1: it closed with text t (tlen bytes, NUL-terminated). A
 * non-zero return stops the walk with that code. */
typedef int (*xml_cb)(struct walker *w, int end, const char *name, const char *t, size_t tlen);

struct walker {
	char stack[RN_S3XML_MAX_DEPTH][NAME_MAX_LEN]; /* open elements' local names */
	int depth;                                    /* open elements */
	struct rn_buf text;                           /* text since the last tag */
	xml_cb cb;
	void *ctx;
};

static const char *find(const char *p, const char *end, const char *s)
{
	size_t n = strlen(s);
	for (; p + n <= end; p++)
		if (memcmp(p, s, n) == 0)
			return p;
	return NULL;
}

static int put_utf8(struct rn_buf *b, unsigned long cp)
{
	uint8_t u[4];
	size_t n;
	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return RN_EINVAL;
	if (cp < 0x80) {
		u[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (uint8_t)(0xC0 | cp >> 6);
		u[1] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (uint8_t)(0xE0 | cp >> 12);
		u[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
		u[2] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (uint8_t)(0xF0 | cp >> 18);
		u[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
		u[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
		u[3] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return rn_buf_append(b, u, n);
}

/* Appends p[0..n) with entities decoded; an unknown entity is kept as it is. */
static int add_text(struct rn_buf *b, const char *p, size_t n)
{
	static const struct {
		const char *e;
		char c;
	} ents[] = {
		{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
	for (size_t i = 0; i < n;) {
		const char *semi;
		size_t k;
		if (p[i] != '&' || !(semi = memchr(p + i, ';', n - i < 12 ? n - i : 12))) {
			if (rn_buf_append_u8(b, (uint8_t)p[i]))
				return RN_ENOMEM;
			i++;
			continue;
		}
		k = (size_t)(semi - (p + i)) + 1;
		if (k > 3 && p[i + 1] == '#') {
			char num[12];
			char *e;
			int hex = p[i + 2] == 'x' || p[i + 2] == 'X';
			unsigned long cp;
			memcpy(num, p + i + 2 + hex, k - 3 - (size_t)hex);
			num[k - 3 - (size_t)hex] = 0;
			cp = strtoul(num, &e, hex ? 16 : 10);
			if (!num[0] || *e || num[0] == '-' || num[0] == '+' || num[0] == ' ')
				return RN_EINVAL;
			int rc = put_utf8(b, cp);
			if (rc)
				return rc;
			i += k;
			continue;
		}
		size_t j = 0;
		for (; j < sizeof(ents) / sizeof(ents[0]); j++)
			if (strlen(ents[j].e) == k && memcmp(p + i, ents[j].e, k) == 0)
				break;
		if (j < sizeof(ents) / sizeof(ents[0])) {
			if (rn_buf_append_u8(b, (uint8_t)ents[j].c))
				return RN_ENOMEM;
			i += k;
		} else {
			if (rn_buf_append_u8(b, '&'))
				return RN_ENOMEM;
			i++;
		}
	}
	return 0;
}

/* Copies the local name (prefix "ns:" dropped) of the tag at p[0..n) into out. */
static void local_name(const char *p, size_t n, char out[NAME_MAX_LEN])
{
	size_t k = 0;
	while (k < n && p[k] != ' ' && p[k] != '\t' && p[k] != '\r' && p[k] != '\n' &&
	       p[k] != '/' && p[k] != '>')
		k++;
	const char *colon = memchr(p, ':', k);
	if (colon) {
		k -= (size_t)(colon + 1 - p);
		p = colon + 1;
	}
	if (k >= NAME_MAX_LEN)
		k = NAME_MAX_LEN - 1;
	memcpy(out, p, k);
	out[k] = 0;
}

static int walk(struct walker *w, const char *xml, size_t len)
{
	const char *p = xml, *end = xml + len;
	int rc = 0;
	while (p < end) {
		const char *lt = memchr(p, '<', (size_t)(end - p)), *gt;
		if (!lt)
			lt = end;
		if (w->depth > 0 && lt > p) {
			if ((size_t)(lt - p) > RN_S3XML_MAX_TEXT - w->text.len)
				goto bad;
			if ((rc = add_text(&w->text, p, (size_t)(lt - p))))
				goto out;
		}
		if (lt == end)
			break;
		p = lt;
		if (end - p >= 2 && p[1] == '?') {
			if (!(gt = find(p, end, "?>")))
				goto bad;
			p = gt + 2;
		} else if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
			if (!(gt = find(p + 4, end, "-->")))
				goto bad;
			p = gt + 3;
		} else if (end - p >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
			if (!(gt = find(p + 9, end, "]]>")))
				goto bad;
			if ((size_t)(gt - p - 9) > RN_S3XML_MAX_TEXT - w->text.len)
				goto bad;
			if (w->depth > 0 && rn_buf_append(&w->text, p + 9, (size_t)(gt - p - 9))) {
				rc = RN_ENOMEM;
				goto out;
			}
			p = gt + 3;
		} else if (end - p >= 2 && p[1] == '!') {
			if (!(gt = memchr(p, '>', (size_t)(end - p))))
				goto bad;
			p = gt + 1;
		} else if (end - p >= 2 && p[1] == '/') {
			char name[NAME_MAX_LEN];
			if (!(gt = memchr(p, '>', (size_t)(end - p))) || w->depth == 0)
				goto bad;
			local_name(p + 2, (size_t)(gt - p - 2), name);
			if (strcmp(name, w->stack[w->depth - 1]) != 0)
				goto bad;
			if (rn_buf_append_u8(&w->text, 0)) {
				rc = RN_ENOMEM;
				goto out;
			}
			w->text.len--;
			if ((rc = w->cb(w, 1, name, (const char *)w->text.data, w->text.len)))
				goto out;
			w->depth--;
			w->text.len = 0;
			p = gt + 1;
		} else {
			char quote = 0;
			int self;
			for (gt = p + 1; gt < end; gt++) {
				if (quote) {
					if (*gt == quote)
						quote = 0;
				} else if (*gt == '"' || *gt == '\'') {
					quote = *gt;
				} else if (*gt == '>') {
					break;
				}
			}
			if (gt == end || w->depth == RN_S3XML_MAX_DEPTH)
				goto bad;
			self = gt[-1] == '/';
			local_name(p + 1, (size_t)(gt - p - 1), w->stack[w->depth]);
			if (!w->stack[w->depth][0])
				goto bad;
			w->depth++;
			w->text.len = 0;
			if ((rc = w->cb(w, 0, w->stack[w->depth - 1], "", 0)))
				goto out;
			if (self) {
				if ((rc = w->cb(w, 1, w->stack[w->depth - 1], "", 0)))
					goto out;
				w->depth--;
			}
			p = gt + 1;
		}
	}
	if (w->depth != 0)
		goto bad;
out:
	rn_buf_free(&w->text);
	return rc;
bad:
	rc = RN_EINVAL;
	goto out;
}

/* The parent of the element being closed (depth counts it). */
static const char *parent(struct walker *w)
{
	return w->depth >= 2 ? w->stack[w->depth - 2] : "";
}

struct list_ctx {
	struct rn_s3_list *l;
	struct rn_s3_object cur;
	size_t cap, pcap;
	int root_ok;
};

static int list_cb(struct walker *w, int end, const char *name, const char *t, size_t tlen)
{
	struct list_ctx *c = w->ctx;
	struct rn_s3_list *l = c->l;
	if (w->depth == 1) {
		if (strcmp(name, "ListBucketResult") != 0)
			return RN_EINVAL;
		c->root_ok = 1;
		return 0;
	}
	if (!end) {
		if (w->depth == 2 && strcmp(name, "Contents") == 0) {
			rn_free(c->cur.key);
			memset(&c->cur, 0, sizeof(c->cur));
			c->cur.size = -1;
			c->cur.mtime_ms = -1;
		}
		return 0;
	}
	if (strcmp(parent(w), "Contents") == 0 && w->depth == 3) {
		if (strcmp(name, "Key") == 0) {
			rn_free(c->cur.key);
			if (!(c->cur.key = rn_strndup(t, tlen)))
				return RN_ENOMEM;
		} else if (strcmp(name, "Size") == 0) {
			char *e;
			long long v = strtoll(t, &e, 10);
			c->cur.size = (*t && !*e && v >= 0) ? v : -1;
		} else if (strcmp(name, "LastModified") == 0) {
			if (rn_s3xml_iso_time(t, tlen, &c->cur.mtime_ms))
				c->cur.mtime_ms = -1;
		} else if (strcmp(name, "ETag") == 0) {
			const char *s = t;
			size_t n = tlen;
			if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
				s++;
				n -= 2;
			}
			if (n < sizeof(c->cur.etag)) {
				memcpy(c->cur.etag, s, n);
				c->cur.etag[n] = 0;
			}
		}
	} else if (w->depth == 2 && strcmp(name, "Contents") == 0) {
		if (!c->cur.key)
			return 0; /* tolerant: an entry without a key is skipped */
		if (l->n == RN_S3XML_MAX_ITEMS)
			return RN_EINVAL;
		if (l->n == c->cap) {
			size_t nc = c->cap ? c->cap * 2 : 64;
			struct rn_s3_object *ni = rn_reallocarray(l->items, nc, sizeof(*ni));
			if (!ni)
				return RN_ENOMEM;
			l->items = ni;
			c->cap = nc;
		}
		l->items[l->n++] = c->cur;
		memset(&c->cur, 0, sizeof(c->cur));
	} else if (w->depth == 2 && strcmp(name, "IsTruncated") == 0) {
		l->truncated = strcmp(t, "true") == 0;
	} else if (w->depth == 2 && strcmp(name, "NextContinuationToken") == 0) {
		rn_free(l->next_token);
		if (!(l->next_token = rn_strndup(t, tlen)))
			return RN_ENOMEM;
	} else if (w->depth == 3 && strcmp(parent(w), "CommonPrefixes") == 0 &&
		   strcmp(name, "Prefix") == 0) {
		if (l->n_prefixes == RN_S3XML_MAX_ITEMS)
			return RN_EINVAL;
		if (l->n_prefixes == c->pcap) {
			size_t nc = c->pcap ? c->pcap * 2 : 16;
			char **np = rn_reallocarray(l->prefixes, nc, sizeof(*np));
			if (!np)
				return RN_ENOMEM;
			l->prefixes = np;
			c->pcap = nc;
		}
		if (!(l->prefixes[l->n_prefixes] = rn_strndup(t, tlen)))
			return RN_ENOMEM;
		l->n_prefixes++;
	}
	return 0;
}

void rn_s3_list_free(struct rn_s3_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		rn_free(l->items[i].key);
	for (size_t i = 0; i < l->n_prefixes; i++)
		rn_free(l->prefixes[i]);
	rn_free(l->items);
	rn_free(l->prefixes);
	rn_free(l->next_token);
	memset(l, 0, sizeof(*l));
}

int rn_s3xml_list(const char *xml, size_t len, struct rn_s3_list *out)
{
	struct walker w = {.cb = list_cb};
	struct list_ctx c = {.l = out};
	int rc;
	memset(out, 0, sizeof(*out));
	w.ctx = &c;
	rc = walk(&w, xml, len);
	rn_free(c.cur.key);
	if (!rc && !c.root_ok)
		rc = RN_EINVAL;
	if (rc)
		rn_s3_list_free(out);
	return rc;
}

struct pick_ctx {
	const char *root;
	const char *names[2];
	char *outs[2];
	size_t caps[2];
	int found[2];
	int root_ok;
};

static int pick_cb(struct walker *w, int end, const char *name, const char *t, size_t tlen)
{
	struct pick_ctx *c = w->ctx;
	if (w->depth == 1) {
		if (strcmp(name, c->root) != 0)
			return RN_EINVAL;
		c->root_ok = 1;
		return 0;
	}
	if (!end || w->depth != 2)
		return 0;
	for (int i = 0; i < 2; i++) {
		if (c->names[i] && strcmp(name, c->names[i]) == 0 && c->caps[i]) {
			size_t n = tlen < c->caps[i] - 1 ? tlen : c->caps[i] - 1;
			memcpy(c->outs[i], t, n);
			c->outs[i][n] = 0;
			c->found[i] = tlen < c->caps[i] ? 1 : -1;
		}
	}
	return 0;
}

int rn_s3xml_error(const char *xml, size_t len, char *code, size_t ccap, char *msg, size_t mcap)
{
	struct pick_ctx c = {.root = "Error",
			     .names = {"Code", "Message"},
			     .outs = {code, msg},
			     .caps = {ccap, mcap}};
	struct walker w = {.cb = pick_cb, .ctx = &c};
	int rc;
	if (ccap)
		code[0] = 0;
	if (mcap)
		msg[0] = 0;
	rc = walk(&w, xml, len);
	if (!rc && !c.root_ok)
		rc = RN_EINVAL;
	return rc;
}

int rn_s3xml_upload_id(const char *xml, size_t len, char *id, size_t cap)
{
	struct pick_ctx c = {.root = "InitiateMultipartUploadResult",
			     .names = {"UploadId", NULL},
			     .outs = {id, NULL},
			     .caps = {cap, 0}};
	struct walker w = {.cb = pick_cb, .ctx = &c};
	int rc;
	if (!cap)
		return RN_EINVAL;
	id[0] = 0;
	rc = walk(&w, xml, len);
	if (!rc && (!c.root_ok || c.found[0] != 1 || !id[0]))
		rc = RN_EINVAL;
	return rc;
}

int rn_s3xml_iso_time(const char *s, size_t n, int64_t *ms)
{
	int64_t us;
	if (rn_time_rfc3339(s, n, 0, &us))
		return RN_EINVAL;
	/* floor, so a time before 1970 rounds the same way as one after */
	*ms = us >= 0 ? us / 1000 : -((-us + 999) / 1000);
	return 0;
}

/* The number of k decimal digits at s (0 <= value), or -1. */
static int64_t num(const char *s, size_t k)
{
	int64_t v = 0;
	for (size_t i = 0; i < k; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int rn_s3xml_http_date(const char *s, size_t n, int64_t *ms)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static const char days[] = "MonTueWedThuFriSatSun";
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int64_t d, y, h, mi, sec, mo = -1;
	int wd = 0;
	/* "Sun, 06 Dec 2026 10:00:00 GMT": 29 bytes, every field at a fixed place */
	if (n != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
	    s[19] != ':' || s[22] != ':' || s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0)
		return RN_EINVAL;
	for (int i = 0; i < 7; i++)
		wd |= memcmp(s, days + 3 * i, 3) == 0;
	for (int i = 0; i < 12; i++)
		if (memcmp(s + 8, months + 3 * i, 3) == 0)
			mo = i + 1;
	d = num(s + 5, 2);
	y = num(s + 12, 4);
	h = num(s + 17, 2);
	mi = num(s + 20, 2);
	sec = num(s + 23, 2);
	if (!wd || mo < 0 || d < 1 || y < 0 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 ||
	    sec > 60 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
		return RN_EINVAL;
	if (sec == 60)
		sec = 59; /* a leap second lands on the second before it, as in rn_time.c */
	*ms = (rn_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) * 1000;
	return 0;
}
