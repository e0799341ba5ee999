/* The web console's files and their answers, pure; see console.h. */
#include "console.h"

#include <string.h>

#define PREFIX "/console/"
#define CACHE "no-cache" /* kept, but revalidated by ETag: an upgrade shows at once */

static int equals(const char *p, size_t len, const char *lit)
{
	return len == strlen(lit) && !memcmp(p, lit, len);
}

const struct rn_console_asset *rn_console_find(const char *name, size_t len)
{
	for (unsigned i = 0; i < rn_console_nassets; i++)
		if (equals(name, len, rn_console_assets[i].name))
			return &rn_console_assets[i];
	return NULL;
}

/*
 * Whether If-None-Match (a list of entity tags, RFC 9110 13.1.2) names etag or is "*". The
 * weak comparison: a W/ prefix is ignored.
 */
static int etag_matches(const char *inm, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = inm;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return 1;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		size_t n = strcspn(p, ", \t");
		if (n == elen && !memcmp(p, etag, n))
			return 1;
		p += n;
	}
	return 0;
}

static void add(struct rn_console_answer *a, const char *name, const char *value)
{
	a->hdr[a->r.nheaders].name = name;
	a->hdr[a->r.nheaders].value = value;
	a->r.nheaders++;
}

static int answer(struct rn_console_answer *a, int status, const char *ctype, const char *body)
{
	a->r.status = status;
	a->r.content_type = ctype;
	a->r.body = (const uint8_t *)body;
	a->r.len = body ? strlen(body) : 0;
	return status;
}

int rn_console_answer(const char *method, const char *path, size_t plen, const char *if_none_match,
		      struct rn_console_answer *a)
{
	const struct rn_console_asset *f = NULL;
	size_t pre = strlen(PREFIX);
	int get, head;
	memset(a, 0, sizeof(*a));
	a->r.headers = a->hdr;
	add(a, "X-Content-Type-Options", "nosniff");
	add(a, "Content-Security-Policy", RN_CONSOLE_CSP);
	add(a, "Referrer-Policy", "no-referrer");
	if (!method)
		method = "";
	get = !strcmp(method, "GET");
	head = !strcmp(method, "HEAD");
	if (!equals(path, plen, "/") && !equals(path, plen, "/console") &&
	    !(plen >= pre && !memcmp(path, PREFIX, pre)))
		return answer(a, 404, "text/plain; charset=utf-8", "no such page\n");
	if (!get && !head) {
		a->r.hname = "Allow";
		a->r.hvalue = "GET, HEAD";
		return answer(a, 405, "text/plain; charset=utf-8", "only GET and HEAD\n");
	}
	a->r.head = head;
	if (plen < pre) {
		add(a, "Location", PREFIX);
		add(a, "Cache-Control", CACHE);
		return answer(a, 302, "text/plain; charset=utf-8", "see /console/\n");
	}
	if (plen == pre)
		f = rn_console_find("index.html", strlen("index.html"));
	else if (!memchr(path + pre, '/', plen - pre))
		f = rn_console_find(path + pre, plen - pre);
	if (!f)
		return answer(a, 404, "text/plain; charset=utf-8", "no such file\n");
	add(a, "Cache-Control", CACHE);
	add(a, "ETag", f->etag);
	if (if_none_match && etag_matches(if_none_match, f->etag)) {
		a->r.status = 304;
		return 304;
	}
	a->r.status = 200;
	a->r.content_type = f->ctype;
	a->r.body = f->data;
	a->r.len = f->len;
	return 200;
}
