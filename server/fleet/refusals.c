/*
 * Refusal sources (refusals.h): a map from (address, principal) to a fixed-size entry, the
 * entries on an LRU list (most recently refused first) so that eviction and a note are O(1),
 * and a ring of 60 one-minute buckets for the overview's last hour. Pure: the time comes in.
 */
#include "refusals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "rn_strmap.h"
#include "rn_utf8.h"

#define MINUTES 60

struct kind {
	char name[RN_REFUSALS_KIND_MAX + 1]; /* "" = free slot */
	uint64_t n;
};

struct src {
	/* the map's key: peer, a NUL, principal (klen bytes; both NUL-terminated) */
	char key[RN_REFUSALS_PEER_MAX + 1 + RN_REFUSALS_NAME_MAX + 1];
	size_t klen;
	const char *principal; /* into key */
	char table[RN_REFUSALS_TABLE_MAX + 1];
	char reason[RN_REFUSALS_REASON_MAX + 1];
	struct kind kinds[RN_REFUSALS_KINDS]; /* the last one becomes "other" when full */
	uint64_t total, at_row;               /* at_row: total when its last row was made */
	int64_t first_ms, last_ms;
	struct src *newer, *older; /* the LRU list */
};

struct rn_refusals {
	size_t max;
	struct rn_strmap map;
	struct src *newest, *oldest;
	struct rn_refusals_totals t; /* sources and last_hour computed when asked */
	struct {
		int64_t minute; /* unix minute of the bucket, -1 none */
		uint64_t n;
	} ring[MINUTES];
};

int rn_refusals_create(struct rn_refusals **out, size_t max)
{
	struct rn_refusals *r = rn_calloc(1, sizeof(*r));
	if (!r)
		return RN_ENOMEM;
	r->max = max ? max : RN_REFUSALS_MAX;
	for (size_t i = 0; i < MINUTES; i++)
		r->ring[i].minute = -1;
	*out = r;
	return 0;
}

void rn_refusals_destroy(struct rn_refusals *r)
{
	if (!r)
		return;
	while (r->newest) {
		struct src *e = r->newest;
		r->newest = e->older;
		rn_free(e);
	}
	rn_strmap_free(&r->map);
	rn_free(r);
}

/* The address of peer without its port: "[v6]:port" and "v4:port" lose it, a bare address
 * (an IPv6 one has several colons) stays. */
static size_t addr_len(const char *peer, const char **start)
{
	const char *c = strchr(peer, ':');
	*start = peer;
	if (peer[0] == '[') {
		const char *e = strchr(peer, ']');
		if (e) {
			*start = peer + 1;
			return (size_t)(e - peer - 1);
		}
		return strlen(peer);
	}
	if (c && !strchr(c + 1, ':'))
		return (size_t)(c - peer);
	return strlen(peer);
}

/* Copies at most cap-1 bytes of s into out, NUL-terminated, cut on a UTF-8 character; bytes
 * that are not UTF-8 (and control characters) become '?'. */
static void copy_text(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	for (size_t i = 0; s[i];) {
		const unsigned char b = (unsigned char)s[i];
		size_t n = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : 4;
		size_t k = 0;
		while (k < n && s[i + k])
			k++;
		if (b >= 0x80 && (k < n || !rn_utf8_valid(s + i, n)))
			n = 0; /* one bad byte */
		if (o + (n ? n : 1) >= cap)
			break;
		if (!n || b < 0x20 || b == 0x7f) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = 0;
}

static void lru_unlink(struct rn_refusals *r, struct src *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		r->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		r->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void lru_front(struct rn_refusals *r, struct src *e)
{
	e->older = r->newest;
	e->newer = NULL;
	if (r->newest)
		r->newest->newer = e;
	r->newest = e;
	if (!r->oldest)
		r->oldest = e;
}

static void count_kind(struct src *e, const char *kind)
{
	char name[RN_REFUSALS_KIND_MAX + 1];
	copy_text(name, sizeof(name), kind && kind[0] ? kind : "other");
	for (size_t i = 0; i < RN_REFUSALS_KINDS; i++) {
		struct kind *k = &e->kinds[i];
		if (!k->name[0])
			memcpy(k->name, name, sizeof(name));
		if (!strcmp(k->name, name)) {
			k->n++;
			return;
		}
	}
	/* every slot taken by another kind: the last one sums up the kinds past the others */
	struct kind *last = &e->kinds[RN_REFUSALS_KINDS - 1];
	snprintf(last->name, sizeof(last->name), "other");
	last->n++;
}

int rn_refusals_note(struct rn_refusals *r, const char *peer, const char *principal,
		     const char *kind, const char *reason, const char *table, int64_t now_ms)
{
	char key[sizeof(((struct src *)0)->key)];
	const char *a;
	size_t alen = addr_len(peer ? peer : "", &a), plen;
	int64_t minute = now_ms / 60000;
	if (alen > RN_REFUSALS_PEER_MAX)
		alen = RN_REFUSALS_PEER_MAX;
	char abuf[RN_REFUSALS_PEER_MAX + 1];
	memcpy(abuf, a, alen);
	abuf[alen] = 0;
	copy_text(key, alen + 1, abuf); /* an address is ASCII; anything else is replaced */
	alen = strlen(key);
	copy_text(key + alen + 1, RN_REFUSALS_NAME_MAX + 1, principal ? principal : "");
	plen = strlen(key + alen + 1);

	r->t.refused++;
	size_t b = (size_t)(minute % MINUTES);
	if (r->ring[b].minute != minute) {
		r->ring[b].minute = minute;
		r->ring[b].n = 0;
	}
	r->ring[b].n++;

	size_t klen = alen + 1 + plen;
	struct src *e = rn_strmap_get(&r->map, key, klen);
	if (!e) {
		if (r->map.n >= r->max && r->oldest) {
			/* evict the least recently refused: its entry is reused */
			e = r->oldest;
			lru_unlink(r, e);
			rn_strmap_del(&r->map, e->key, e->klen);
			r->t.evicted++;
			r->t.evicted_calls += e->total;
			memset(e, 0, sizeof(*e));
		} else if (!(e = rn_calloc(1, sizeof(*e)))) {
			r->t.unattributed++;
			return RN_ENOMEM;
		}
		memcpy(e->key, key, klen + 1);
		e->klen = klen;
		e->principal = e->key + alen + 1;
		e->first_ms = now_ms;
		if (rn_strmap_put(&r->map, e->key, e->klen, e)) {
			rn_free(e);
			r->t.unattributed++;
			return RN_ENOMEM;
		}
	} else {
		lru_unlink(r, e);
	}
	lru_front(r, e);
	e->total++;
	e->last_ms = now_ms;
	count_kind(e, kind);
	copy_text(e->reason, sizeof(e->reason), reason ? reason : "");
	if (table && table[0]) /* the last table named: a refusal naming none keeps it */
		copy_text(e->table, sizeof(e->table), table);
	return 0;
}

void rn_refusals_totals(const struct rn_refusals *r, int64_t now_ms, struct rn_refusals_totals *t)
{
	int64_t minute = now_ms / 60000;
	*t = r->t;
	t->sources = r->map.n;
	t->last_hour = 0;
	for (size_t i = 0; i < MINUTES; i++)
		if (r->ring[i].minute > minute - MINUTES && r->ring[i].minute <= minute)
			t->last_hour += r->ring[i].n;
}

/* ---- rendering ---- */

static int put_s(struct rn_buf *b, const char *s)
{
	return rn_json_put_str(b, s, strlen(s));
}

static int put_kinds(struct rn_buf *b, const struct src *e)
{
	if (rn_buf_append_str(b, "{"))
		return RN_ENOMEM;
	for (size_t i = 0; i < RN_REFUSALS_KINDS && e->kinds[i].name[0]; i++)
		if ((i && rn_buf_append_str(b, ",")) || put_s(b, e->kinds[i].name) ||
		    rn_buf_printf(b, ":%llu", (unsigned long long)e->kinds[i].n))
			return RN_ENOMEM;
	return rn_buf_append_str(b, "}");
}

static int render_src(const struct src *e, struct rn_buf *b)
{
	if (rn_buf_append_str(b, "{\"peer\":") || put_s(b, e->key) ||
	    rn_buf_append_str(b, ",\"principal\":") || put_s(b, e->principal) ||
	    rn_buf_append_str(b, ",\"table\":") ||
	    (e->table[0] ? put_s(b, e->table) : rn_buf_append_str(b, "null")) ||
	    rn_buf_printf(b, ",\"count\":%llu,\"kinds\":", (unsigned long long)e->total) ||
	    put_kinds(b, e) ||
	    rn_buf_printf(b, ",\"first_ms\":%lld,\"last_ms\":%lld,\"last_reason\":",
			  (long long)e->first_ms, (long long)e->last_ms) ||
	    put_s(b, e->reason) || rn_buf_append_str(b, "}"))
		return RN_ENOMEM;
	return 0;
}

/* Sort keys: the index in fleet.c's refusal sorts ("count", "last", "first", "peer",
 * "principal", "table"). */
struct by {
	int key, desc;
};

static int cmp_i(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_src(const void *x, const void *y, void *ctx)
{
	const struct by *by = ctx;
	const struct src *a = *(const struct src *const *)x, *b = *(const struct src *const *)y;
	int c = 0;
	switch (by->key) {
	case 0: c = cmp_i((int64_t)a->total, (int64_t)b->total); break;
	case 1: c = cmp_i(a->last_ms, b->last_ms); break;
	case 2: c = cmp_i(a->first_ms, b->first_ms); break;
	case 3: c = strcmp(a->key, b->key); break;
	case 4: c = strcmp(a->principal, b->principal); break;
	case 5: c = strcmp(a->table, b->table); break;
	}
	if (c)
		return by->desc ? -c : c;
	/* a stable order whatever the key and order: peer, then principal, a..z */
	c = strcmp(a->key, b->key);
	return c ? c : strcmp(a->principal, b->principal);
}

static int matches(const struct src *e, const char *q)
{
	if (!q[0] || strstr(e->key, q) || strstr(e->principal, q) || strstr(e->table, q) ||
	    strstr(e->reason, q))
		return 1;
	for (size_t i = 0; i < RN_REFUSALS_KINDS && e->kinds[i].name[0]; i++)
		if (strstr(e->kinds[i].name, q))
			return 1;
	return 0;
}

/* The entries matching q sorted, in *v (caller frees), *n of them. */
static int listing(const struct rn_refusals *r, const char *q, int key, int desc,
		   const struct src ***v, size_t *n)
{
	*n = 0;
	*v = NULL;
	if (!r->map.n)
		return 0;
	const struct src **l = rn_calloc(r->map.n, sizeof(*l));
	if (!l)
		return RN_ENOMEM;
	for (const struct src *e = r->newest; e; e = e->older)
		if (*n < r->map.n && matches(e, q))
			l[(*n)++] = e;
	struct by by = {key, desc};
	if (*n > 1)
		qsort_r(l, *n, sizeof(*l), cmp_src, &by);
	*v = l;
	return 0;
}

int rn_refusals_render(const struct rn_refusals *r, const struct rn_fleet_query *q, int64_t now_ms,
		       struct rn_buf *out)
{
	static const char *const keys[] = {"count", "last", "first", "peer", "principal", "table"};
	struct rn_refusals_totals t;
	const struct src **v;
	size_t n;
	int key = 0, rc = RN_ENOMEM;
	for (int i = 0; i < 6; i++)
		if (!strcmp(q->sort, keys[i]))
			key = i;
	/* numbers list the most first unless told; names a..z */
	int desc = q->order_given ? q->desc : key <= 2;
	if (listing(r, q->q, key, desc, &v, &n))
		return RN_ENOMEM;
	rn_refusals_totals(r, now_ms, &t);
	if (rn_buf_printf(out,
			  "{\"now_ms\":%lld,\"total\":%zu,\"refused\":%llu,\"last_hour\":%llu,"
			  "\"evicted\":%llu,\"evicted_calls\":%llu,\"unattributed\":%llu,"
			  "\"max_sources\":%zu,\"sources\":[",
			  (long long)now_ms, n, (unsigned long long)t.refused,
			  (unsigned long long)t.last_hour, (unsigned long long)t.evicted,
			  (unsigned long long)t.evicted_calls, (unsigned long long)t.unattributed,
			  r->max))
		goto out;
	for (size_t i = 0; i < n && i < (size_t)q->limit; i++)
		if ((i && rn_buf_append_str(out, ",")) || render_src(v[i], out))
			goto out;
	rc = rn_buf_append_str(out, "]}");
out:
	rn_free(v);
	return rc;
}

int rn_refusals_summary(const struct rn_refusals *r, int64_t now_ms, struct rn_buf *out)
{
	struct rn_refusals_totals t;
	const struct src **v;
	size_t n;
	int rc = RN_ENOMEM;
	if (listing(r, "", 0, 1, &v, &n))
		return RN_ENOMEM;
	rn_refusals_totals(r, now_ms, &t);
	if (rn_buf_printf(out, "{\"last_hour\":%llu,\"total\":%llu,\"sources\":%zu,\"top\":[",
			  (unsigned long long)t.last_hour, (unsigned long long)t.refused,
			  t.sources))
		goto out;
	for (size_t i = 0; i < n && i < 5; i++)
		if ((i && rn_buf_append_str(out, ",")) || render_src(v[i], out))
			goto out;
	rc = rn_buf_append_str(out, "]}");
out:
	rn_free(v);
	return rc;
}

int rn_refusals_rows(struct rn_refusals *r, int64_t now_ms, size_t cap, struct rn_buf *out,
		     size_t *n)
{
	struct rn_buf row = {0};
	size_t before = out->len, k = 0;
	const struct src *last = NULL; /* the last source written */
	int rc = RN_ENOMEM;
	for (const struct src *e = r->newest; e; e = e->older) {
		if (e->total == e->at_row)
			continue;
		rn_buf_reset(&row);
		if (rn_buf_printf(&row, "{\"ts\":%lld,\"peer\":", (long long)now_ms * 1000) ||
		    put_s(&row, e->key) || rn_buf_append_str(&row, ",\"principal\":") ||
		    put_s(&row, e->principal) || rn_buf_append_str(&row, ",\"table_name\":") ||
		    (e->table[0] ? put_s(&row, e->table) : rn_buf_append_str(&row, "null")) ||
		    rn_buf_append_str(&row, ",\"kinds\":"))
			goto out;
		/* the kinds as JSON text in a string column */
		struct rn_buf kinds = {0};
		int krc = put_kinds(&kinds, e) || rn_json_put_str(&row, kinds.data, kinds.len);
		rn_buf_free(&kinds);
		if (krc ||
		    rn_buf_printf(&row, ",\"count_interval\":%llu,\"count_total\":%llu",
				  (unsigned long long)(e->total - e->at_row),
				  (unsigned long long)e->total) ||
		    rn_buf_printf(&row, ",\"first_ts\":%lld,\"last_ts\":%lld,\"last_reason\":",
				  (long long)e->first_ms * 1000, (long long)e->last_ms * 1000) ||
		    put_s(&row, e->reason) || rn_buf_append_str(&row, "}"))
			goto out;
		/* the row with its field key and length (at most 1 + 10 bytes) */
		if (out->len - before + row.len + 11 > cap) {
			if (!k) {
				rc = RN_ETOOBIG;
				goto out;
			}
			break;
		}
		if (rn_pb_put_bytes(out, 1, row.data, row.len))
			goto out;
		k++;
		last = e;
	}
	/* the rows made: a new interval for each source written (the same walk, up to last) */
	for (struct src *e = r->newest; last && e; e = e->older) {
		e->at_row = e->total;
		if (e == last)
			break;
	}
	rc = 0;
	*n = k;
out:
	if (rc)
		out->len = before;
	rn_buf_free(&row);
	return rc;
}
