/* runnel-server fleet (see fleet_cli.h). */
#include "fleet_cli.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"

#define TOKEN_MAX 4096
/* A cell shows at most this many characters of a string the server passed on from a
 * device (device names, versions, table names): the table stays readable. */
#define CELL_MAX 40
#define COLS_MAX 12

static void usage(FILE *f)
{
	fprintf(f,
		"usage: runnel-server fleet [-c FILE | --url http://HOST:PORT] [--token T | "
		"--token-file F]\n"
		"                           [--streams | --refused] [--state S] [--q TEXT] "
		"[--sort KEY]\n"
		"                           [--order asc|desc]"
		" [--limit N] [--timeout SECONDS] [--json]\n"
		"  lists the devices (--streams: the streams; --refused: the clients it refused)\n"
		"  a running runnel-server knows, from its fleet API (GET /api/v1/devices,\n"
		"  /api/v1/streams, /api/v1/refusals) on the metrics_listen port\n"
		"  -c FILE       the server's config: its metrics_listen is the URL (default\n"
		"                /etc/runnel/runnel-server.conf when neither -c nor --url is "
		"given)\n"
		"  --url URL     the server's HTTP port, e.g. http://127.0.0.1:9100 (cleartext)\n"
		"  --token T, --token-file F   bearer token (the server's token, or a principal's\n"
		"                with console = true); the file's first line\n"
		"  --state S     silent, behind, dropping, clock, invalid, connected (or all;\n"
		"                not with --refused)\n"
		"  --q TEXT      whose id, device, table or principal contains TEXT (--refused:\n"
		"                address, principal, table, kind or reason)\n"
		"  --sort KEY    any field of the answer (default: last seen, newest first;\n"
		"                --refused: count, last, first, peer, principal or table)\n"
		"  --json        the answer's JSON as received, instead of the table\n"
		"  exit status: 0 listed, 1 error (the reason on stderr), 2 usage\n");
}

/* ---- JSON access (the answer is the server's, but checked like any input) ---- */

struct find {
	const char *name;
	struct rn_json_span val;
	int found;
};

static int find_cb(void *ctx, struct rn_json_span key, struct rn_json_span val)
{
	struct find *f = ctx;
	size_t n = strlen(f->name);
	if (key.len == n && !memcmp(key.p, f->name, n)) { /* key: without its quotes */
		f->val = val;
		f->found = 1;
		return 1;
	}
	return 0;
}

/* 1 with *out the value of member `name` of object obj, 0 when there is none. */
static int member(struct rn_json_span obj, const char *name, struct rn_json_span *out)
{
	struct find f = {.name = name};
	rn_json_object_walk(obj, find_cb, &f);
	if (f.found)
		*out = f.val;
	return f.found;
}

static int is_null(struct rn_json_span v)
{
	return rn_json_span_eq(v, "null");
}

/* 1 with *out when member `name` is an integer; 0 when missing, null or anything else. */
static int get_int(struct rn_json_span obj, const char *name, int64_t *out)
{
	struct rn_json_span v;
	return member(obj, name, &v) && !rn_json_int64(v, out);
}

static int sum_cb(void *ctx, struct rn_json_span key, struct rn_json_span val)
{
	int64_t *sum = ctx, n;
	(void)key;
	if (!rn_json_int64(val, &n) && n > 0 && *sum <= INT64_MAX - n)
		*sum += n;
	return 0;
}

/* A count given either as an integer or as an object of counts by reason (summed). */
static int get_count(struct rn_json_span obj, const char *name, int64_t *out)
{
	struct rn_json_span v;
	if (!member(obj, name, &v))
		return 0;
	if (!rn_json_int64(v, out))
		return 1;
	if (v.len && v.p[0] == '{') {
		*out = 0;
		return !rn_json_object_walk(v, sum_cb, out);
	}
	return 0;
}

/*
 * Appends the printable form of a decoded string to b: control bytes become '?', and past
 * CELL_MAX characters it is cut (at a UTF-8 character boundary) and ends with "...".
 */
static int put_clean(struct rn_buf *b, const uint8_t *s, size_t len)
{
	size_t chars = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		if ((c & 0xC0) != 0x80 && ++chars > CELL_MAX)
			return rn_buf_append_str(b, "...");
		if (c < 0x20 || c == 0x7f)
			c = '?';
		if (rn_buf_append_u8(b, c))
			return RN_ENOMEM;
	}
	return 0;
}

/* Appends member `name` (a string) cleaned to b; `dflt` when missing, null or not a string. */
static int put_str(struct rn_buf *b, struct rn_json_span obj, const char *name, const char *dflt)
{
	struct rn_json_span v;
	struct rn_buf s = {0};
	int rc = 0;
	if (!member(obj, name, &v) || is_null(v) || (rc = rn_json_string(v, &s))) {
		rn_buf_free(&s);
		if (rc == RN_ENOMEM)
			return rc;
		return rn_buf_append_str(b, dflt) ? RN_ENOMEM : 0;
	}
	rc = put_clean(b, s.data, s.len);
	rn_buf_free(&s);
	return rc;
}

struct join {
	struct rn_buf *b;
	size_t n;
	int rc;
};

static int join_cb(void *ctx, size_t i, struct rn_json_span val)
{
	struct join *j = ctx;
	struct rn_buf s = {0};
	(void)i;
	if ((j->rc = rn_json_string(val, &s))) {
		rn_buf_free(&s);
		if (j->rc != RN_ENOMEM)
			j->rc = 0; /* not a string: not shown */
		return j->rc;
	}
	if ((j->n++ && rn_buf_append_u8(j->b, ',')) || put_clean(j->b, s.data, s.len))
		j->rc = RN_ENOMEM;
	rn_buf_free(&s);
	return j->rc;
}

/* Appends the strings of array member `name` joined by ',' ("-" when empty or missing). */
static int put_list(struct rn_buf *b, struct rn_json_span obj, const char *name, const char *empty)
{
	struct rn_json_span v;
	struct join j = {.b = b};
	if (member(obj, name, &v) && !is_null(v))
		rn_json_array_walk(v, join_cb, &j);
	if (j.rc)
		return j.rc;
	return j.n ? 0 : rn_buf_append_str(b, empty);
}

/* ---- human forms ---- */

static int put_bytes(struct rn_buf *b, int have, int64_t n)
{
	static const char *unit[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	int u = -1;
	if (!have)
		return rn_buf_append_str(b, "-");
	if (n < 1024)
		return rn_buf_printf(b, "%lld B", (long long)n) < 0 ? RN_ENOMEM : 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	return rn_buf_printf(b, "%.1f %s", v, unit[u]) < 0 ? RN_ENOMEM : 0;
}

/* A duration in seconds as its largest unit: 45s, 12m, 3h, 2d. */
static int put_dur(struct rn_buf *b, int have, int64_t s)
{
	if (!have)
		return rn_buf_append_str(b, "-");
	if (s < 0)
		s = 0;
	if (s < 60)
		return rn_buf_printf(b, "%llds", (long long)s) < 0 ? RN_ENOMEM : 0;
	if (s < 3600)
		return rn_buf_printf(b, "%lldm", (long long)(s / 60)) < 0 ? RN_ENOMEM : 0;
	if (s < 86400)
		return rn_buf_printf(b, "%lldh", (long long)(s / 3600)) < 0 ? RN_ENOMEM : 0;
	return rn_buf_printf(b, "%lldd", (long long)(s / 86400)) < 0 ? RN_ENOMEM : 0;
}

/* now_ms - t_ms as "5m ago" ("never" without a time; a time ahead of now is "0s ago"). */
static int put_ago(struct rn_buf *b, int have, int64_t now_ms, int64_t t_ms)
{
	int rc;
	if (!have)
		return rn_buf_append_str(b, "never");
	if ((rc = put_dur(b, 1, now_ms > t_ms ? (now_ms - t_ms) / 1000 : 0)))
		return rc;
	return rn_buf_append_str(b, " ago");
}

static int put_int(struct rn_buf *b, int have, int64_t n)
{
	if (!have)
		return rn_buf_append_str(b, "-");
	return rn_buf_printf(b, "%lld", (long long)n) < 0 ? RN_ENOMEM : 0;
}

/* ---- the table: cells kept NUL-separated, widths by UTF-8 characters ---- */

struct table {
	size_t ncols;
	struct rn_buf cells; /* each cell NUL-terminated, row after row */
	size_t ncells;
	size_t width[COLS_MAX];
};

static size_t chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((uint8_t)*s & 0xC0) != 0x80;
	return n;
}

/* Ends the cell being written at the end of t->cells. */
static int end_cell(struct table *t, size_t start)
{
	size_t col = t->ncells % t->ncols, w;
	if (rn_buf_append_u8(&t->cells, 0))
		return RN_ENOMEM;
	w = chars((const char *)t->cells.data + start);
	if (w > t->width[col])
		t->width[col] = w;
	t->ncells++;
	return 0;
}

static int add_text(struct table *t, const char *s)
{
	size_t start = t->cells.len;
	return rn_buf_append_str(&t->cells, s) ? RN_ENOMEM : end_cell(t, start);
}

static int print_table(struct table *t, struct rn_buf *out)
{
	const char *c = (const char *)t->cells.data;
	for (size_t i = 0; i < t->ncells; i++) {
		size_t col = i % t->ncols, len = strlen(c);
		int last = col == t->ncols - 1;
		if (rn_buf_append(out, c, len))
			return RN_ENOMEM;
		for (size_t pad = chars(c); !last && pad < t->width[col] + 2; pad++)
			if (rn_buf_append_u8(out, ' '))
				return RN_ENOMEM;
		if (last && rn_buf_append_u8(out, '\n'))
			return RN_ENOMEM;
		c += len + 1;
	}
	return 0;
}

/* The answer's list (`key`) and its now_ms and total. */
struct answer {
	struct rn_json_span list;
	int64_t now_ms, total;
	int have_total;
};

static int parse_answer(const char *json, size_t len, const char *key, struct answer *a,
			const char **why)
{
	struct rn_json_span root = {json, len};
	if (!json || !len) { /* an empty body has no buffer at all */
		*why = "an empty answer";
		return RN_EINVAL;
	}
	while (root.len && (root.p[root.len - 1] == '\n' || root.p[root.len - 1] == ' '))
		root.len--;
	if (rn_json_validate(root.p, root.len) || !root.len || root.p[0] != '{') {
		*why = "not a JSON object";
		return RN_EINVAL;
	}
	if (!member(root, key, &a->list) || !a->list.len || a->list.p[0] != '[') {
		*why = !strcmp(key, "devices")   ? "no \"devices\" array"
		       : !strcmp(key, "streams") ? "no \"streams\" array"
						 : "no \"sources\" array";
		return RN_EINVAL;
	}
	if (!get_int(root, "now_ms", &a->now_ms)) {
		*why = "no \"now_ms\"";
		return RN_EINVAL;
	}
	a->have_total = get_int(root, "total", &a->total);
	return 0;
}

/* Which list: the answer's path, its array and its rows. */
enum list { LIST_DEVICES, LIST_STREAMS, LIST_REFUSALS };

struct rows {
	struct table *t;
	int64_t now_ms;
	enum list kind;
	size_t n;
	int rc;
};

struct first {
	struct rn_json_span val;
	int found;
};

static int first_cb(void *ctx, size_t i, struct rn_json_span val)
{
	struct first *f = ctx;
	(void)i;
	f->val = val;
	f->found = 1;
	return 1;
}

/* One device row: DEVICE STATES LAST-SEEN BUFFER OLDEST-UNSENT DROPS EXPIRED DEAD VERSION */
static int device_row(struct rows *r, struct rn_json_span d)
{
	struct table *t = r->t;
	struct rn_buf *c = &t->cells;
	struct rn_json_span v;
	int64_t n = 0;
	size_t s;
	int rc = 0, h;
	s = c->len;
	if (member(d, "device", &v) && !is_null(v)) {
		rc = put_str(c, d, "device", "?");
	} else {
		/* a stream without reports: listed by its stream id */
		struct first fs = {0};
		struct rn_buf id = {0};
		rc = rn_buf_append_str(c, "(stream ");
		if (!rc && member(d, "streams", &v) && !is_null(v))
			rn_json_array_walk(v, first_cb, &fs);
		if (!rc && fs.found) {
			int sr = rn_json_string(fs.val, &id);
			if (sr == RN_ENOMEM)
				rc = sr;
			else if (!sr)
				rc = put_clean(c, id.data, id.len);
		}
		rn_buf_free(&id);
		rc = rc ? rc : rn_buf_append_u8(c, ')');
	}
	if (rc || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	if ((rc = put_list(c, d, "states", "ok")) || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	h = get_int(d, "last_seen_ms", &n);
	if ((rc = put_ago(c, h, r->now_ms, n)) || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	h = get_int(d, "buffer_bytes", &n);
	if ((rc = put_bytes(c, h, n)) || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	h = get_int(d, "oldest_unsent_age_s", &n);
	if ((rc = put_dur(c, h, n)) || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	h = get_count(d, "drops", &n);
	if ((rc = put_int(c, h, n)) || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	h = get_count(d, "expired", &n);
	if ((rc = put_int(c, h, n)) || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	h = get_count(d, "dead_letters", &n);
	if ((rc = put_int(c, h, n)) || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	if ((rc = put_str(c, d, "version", "-")) || (rc = end_cell(t, s)))
		return rc;
	return 0;
}

/* STREAM DEVICE TABLE PRINCIPAL KIND CONNECTED STATES LAST-BATCH RECORDS ACKED COMMITTED */
static int stream_row(struct rows *r, struct rn_json_span st)
{
	static const char *strs[] = {"stream_id", "device", "table", "principal", "kind"};
	struct table *t = r->t;
	struct rn_buf *c = &t->cells;
	struct rn_json_span v;
	int64_t n = 0;
	size_t s;
	int rc, h;
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		s = c->len;
		if ((rc = put_str(c, st, strs[i], "-")) || (rc = end_cell(t, s)))
			return rc;
	}
	if ((rc = add_text(t, member(st, "connected", &v) && rn_json_span_eq(v, "true") ? "yes"
											: "no")))
		return rc;
	s = c->len;
	if ((rc = put_list(c, st, "states", "ok")) || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	h = get_int(st, "last_batch_ms", &n);
	if ((rc = put_ago(c, h, r->now_ms, n)) || (rc = end_cell(t, s)))
		return rc;
	static const char *ints[] = {"records", "acked_offset", "committed_offset"};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		s = c->len;
		h = get_int(st, ints[i], &n);
		if ((rc = put_int(c, h, n)) || (rc = end_cell(t, s)))
			return rc;
	}
	return 0;
}

/* Appends member `name` like put_str, "-" also when it is the empty string. */
static int put_str_or_dash(struct rn_buf *b, struct rn_json_span obj, const char *name)
{
	size_t s = b->len;
	int rc = put_str(b, obj, name, "-");
	if (!rc && b->len == s)
		rc = rn_buf_append_str(b, "-") ? RN_ENOMEM : 0;
	return rc;
}

struct kinds {
	struct rn_buf *b; /* the decoded text, cleaned and cut once whole */
	int rc;
};

static int kinds_cb(void *ctx, struct rn_json_span key, struct rn_json_span val)
{
	struct kinds *k = ctx;
	struct rn_buf name = {0};
	int64_t n;
	if (rn_json_int64(val, &n))
		return 0; /* not a count: not shown */
	/* the key comes without its quotes: decode it as the string it is */
	struct rn_json_span q = {key.p - 1, key.len + 2};
	if ((k->rc = rn_json_string(q, &name))) {
		rn_buf_free(&name);
		if (k->rc != RN_ENOMEM)
			k->rc = 0;
		return k->rc;
	}
	if ((k->b->len && rn_buf_append_str(k->b, ", ")) ||
	    rn_buf_append(k->b, name.data, name.len) ||
	    rn_buf_printf(k->b, " %lld", (long long)n) < 0)
		k->rc = RN_ENOMEM;
	rn_buf_free(&name);
	return k->rc;
}

/* Appends the kinds object of a refusal source as "UNAUTHENTICATED 3, http_401 2" ("-" when
 * none), cleaned and cut like any cell. */
static int put_kinds(struct rn_buf *b, struct rn_json_span obj)
{
	struct rn_json_span v;
	struct rn_buf text = {0};
	struct kinds k = {.b = &text};
	int rc;
	if (member(obj, "kinds", &v) && v.len && v.p[0] == '{')
		rn_json_object_walk(v, kinds_cb, &k);
	if (k.rc)
		rc = k.rc;
	else if (!text.len)
		rc = rn_buf_append_str(b, "-") ? RN_ENOMEM : 0;
	else
		rc = put_clean(b, text.data, text.len);
	rn_buf_free(&text);
	return rc;
}

/* ADDRESS PRINCIPAL COUNT KINDS LAST-SEEN LAST-REASON */
static int refusal_row(struct rows *r, struct rn_json_span src)
{
	struct table *t = r->t;
	struct rn_buf *c = &t->cells;
	int64_t n = 0;
	size_t s;
	int rc, h;
	s = c->len;
	if ((rc = put_str_or_dash(c, src, "peer")) || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	if ((rc = put_str_or_dash(c, src, "principal")) || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	h = get_int(src, "count", &n);
	if ((rc = put_int(c, h, n)) || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	if ((rc = put_kinds(c, src)) || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	h = get_int(src, "last_ms", &n);
	if ((rc = put_ago(c, h, r->now_ms, n)) || (rc = end_cell(t, s)))
		return rc;
	s = c->len;
	if ((rc = put_str_or_dash(c, src, "last_reason")) || (rc = end_cell(t, s)))
		return rc;
	return 0;
}

static int row_cb(void *ctx, size_t i, struct rn_json_span val)
{
	struct rows *r = ctx;
	(void)i;
	if (!val.len || val.p[0] != '{')
		return 0; /* not an object: nothing to show */
	r->n++;
	switch (r->kind) {
	case LIST_DEVICES: r->rc = device_row(r, val); break;
	case LIST_STREAMS: r->rc = stream_row(r, val); break;
	case LIST_REFUSALS: r->rc = refusal_row(r, val); break;
	}
	return r->rc;
}

static int render(const char *json, size_t len, enum list kind, struct rn_buf *out,
		  const char **why)
{
	static const char *dev_head[] = {"DEVICE",  "STATES",        "LAST SEEN",
					 "BUFFER",  "OLDEST UNSENT", "DROPS",
					 "EXPIRED", "DEAD",          "VERSION"};
	static const char *st_head[] = {"STREAM",  "DEVICE", "TABLE",    "PRINCIPAL",
					"KIND",    "CONN",   "STATES",   "LAST BATCH",
					"RECORDS", "ACKED",  "COMMITTED"};
	static const char *ref_head[] = {"ADDRESS", "PRINCIPAL", "COUNT",
					 "KINDS",   "LAST SEEN", "LAST REASON"};
	static const struct {
		const char **head;
		size_t ncols;
		const char *key, *what;
	} lists[] = {
		[LIST_DEVICES] = {dev_head, sizeof(dev_head) / sizeof(*dev_head), "devices",
				  "device"},
		[LIST_STREAMS] = {st_head, sizeof(st_head) / sizeof(*st_head), "streams", "stream"},
		[LIST_REFUSALS] = {ref_head, sizeof(ref_head) / sizeof(*ref_head), "sources",
				   "source"},
	};
	const char **head = lists[kind].head;
	size_t ncols = lists[kind].ncols;
	const char *what = lists[kind].what;
	struct answer a = {0};
	struct table t = {.ncols = ncols};
	struct rows r = {.t = &t, .kind = kind};
	int rc;
	if ((rc = parse_answer(json, len, lists[kind].key, &a, why)))
		return rc;
	r.now_ms = a.now_ms;
	for (size_t i = 0; i < ncols; i++)
		if ((rc = add_text(&t, head[i])))
			goto out;
	rn_json_array_walk(a.list, row_cb, &r);
	if ((rc = r.rc) || (rc = print_table(&t, out)))
		goto out;
	if (a.have_total && (int64_t)r.n < a.total)
		rc = rn_buf_printf(out, "%zu of %lld %ss shown (--limit)\n", r.n,
				   (long long)a.total, what) < 0;
	else
		rc = rn_buf_printf(out, "%zu %s%s\n", r.n, what, r.n == 1 ? "" : "s") < 0;
	rc = rc ? RN_ENOMEM : 0;
out:
	rn_buf_free(&t.cells);
	return rc;
}

int rn_fleet_cli_devices(const char *json, size_t len, struct rn_buf *out, const char **why)
{
	return render(json, len, LIST_DEVICES, out, why);
}

int rn_fleet_cli_streams(const char *json, size_t len, struct rn_buf *out, const char **why)
{
	return render(json, len, LIST_STREAMS, out, why);
}

int rn_fleet_cli_refusals(const char *json, size_t len, struct rn_buf *out, const char **why)
{
	return render(json, len, LIST_REFUSALS, out, why);
}

/* ---- the command ---- */

struct opts {
	const char *url, *conf, *token, *token_file, *state, *q, *sort, *order, *limit;
	int streams, refused, json, timeout_s;
};

/* Percent-encodes s (RFC 3986 unreserved characters kept) onto b. */
static int put_query(struct rn_buf *b, const char *name, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	if (!s)
		return 0;
	if (rn_buf_printf(b, "%c%s=", memchr(b->data, '?', b->len) ? '&' : '?', name) < 0)
		return RN_ENOMEM;
	for (; *s; s++) {
		uint8_t c = (uint8_t)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			if (rn_buf_append_u8(b, c))
				return RN_ENOMEM;
		} else if (rn_buf_printf(b, "%%%c%c", hex[c >> 4], hex[c & 15]) < 0) {
			return RN_ENOMEM;
		}
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o, FILE *out, FILE *err)
{
	o->timeout_s = 10;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **slot = NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(out);
			return -1;
		} else if (!strcmp(a, "--json")) {
			o->json = 1;
			continue;
		} else if (!strcmp(a, "--streams")) {
			o->streams = 1;
			continue;
		} else if (!strcmp(a, "--refused")) {
			o->refused = 1;
			continue;
		} else if (!strcmp(a, "--url")) {
			slot = &o->url;
		} else if (!strcmp(a, "-c")) {
			slot = &o->conf;
		} else if (!strcmp(a, "--token")) {
			slot = &o->token;
		} else if (!strcmp(a, "--token-file")) {
			slot = &o->token_file;
		} else if (!strcmp(a, "--state")) {
			slot = &o->state;
		} else if (!strcmp(a, "--q")) {
			slot = &o->q;
		} else if (!strcmp(a, "--sort")) {
			slot = &o->sort;
		} else if (!strcmp(a, "--order")) {
			slot = &o->order;
		} else if (!strcmp(a, "--limit")) {
			slot = &o->limit;
		} else if (!strcmp(a, "--timeout")) {
			char *e;
			long t;
			errno = 0;
			t = v ? strtol(v, &e, 10) : 0;
			if (!v || *e || errno || t < 1 || t > 3600) {
				fprintf(err,
					"runnel-server fleet: --timeout wants seconds, 1..3600\n");
				return RN_FLEET_CLI_EXIT_USAGE;
			}
			o->timeout_s = (int)t;
			i++;
			continue;
		} else {
			fprintf(err, "runnel-server fleet: unknown argument '%s'\n", a);
			usage(err);
			return RN_FLEET_CLI_EXIT_USAGE;
		}
		if (!v) {
			fprintf(err, "runnel-server fleet: %s wants a value\n", a);
			return RN_FLEET_CLI_EXIT_USAGE;
		}
		*slot = v;
		i++;
	}
	if (o->token && o->token_file) {
		fprintf(err, "runnel-server fleet: give --token or --token-file, not both\n");
		return RN_FLEET_CLI_EXIT_USAGE;
	}
	if (o->url && o->conf) {
		fprintf(err, "runnel-server fleet: give --url or -c, not both\n");
		return RN_FLEET_CLI_EXIT_USAGE;
	}
	if (o->refused && o->streams) {
		fprintf(err, "runnel-server fleet: give --streams or --refused, not both\n");
		return RN_FLEET_CLI_EXIT_USAGE;
	}
	if (o->refused && o->state) {
		fprintf(err, "runnel-server fleet: --state does not apply to --refused\n");
		return RN_FLEET_CLI_EXIT_USAGE;
	}
	if (o->order && strcmp(o->order, "asc") && strcmp(o->order, "desc")) {
		fprintf(err, "runnel-server fleet: --order is asc or desc\n");
		return RN_FLEET_CLI_EXIT_USAGE;
	}
	if (o->limit) {
		char *e;
		long l;
		errno = 0;
		l = strtol(o->limit, &e, 10);
		if (*e || errno || l < 1 || l > 10000) {
			fprintf(err, "runnel-server fleet: --limit wants 1..10000\n");
			return RN_FLEET_CLI_EXIT_USAGE;
		}
	}
	return 0;
}

/* The token of --token or the first line of --token-file into tok (TOKEN_MAX bytes).
 * 0, or 1 with the reason on err. */
static int read_token(const struct opts *o, char *tok, FILE *err)
{
	size_t n = 0;
	if (o->token) {
		n = strlen(o->token);
		if (n >= TOKEN_MAX) {
			fprintf(err, "runnel-server fleet: --token is longer than %d bytes\n",
				TOKEN_MAX - 1);
			return 1;
		}
		memcpy(tok, o->token, n + 1);
	} else if (o->token_file) {
		FILE *f = fopen(o->token_file, "r");
		if (!f) {
			fprintf(err, "runnel-server fleet: --token-file %s: %s\n", o->token_file,
				strerror(errno));
			return 1;
		}
		if (!fgets(tok, TOKEN_MAX, f))
			tok[0] = '\0';
		fclose(f);
		n = strcspn(tok, "\r\n");
		tok[n] = '\0';
	} else {
		return 0;
	}
	while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
		tok[--n] = '\0';
	if (!n) {
		fprintf(err, "runnel-server fleet: the token is empty\n");
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)tok[i] < 0x21 || tok[i] == 0x7f) {
			fprintf(err, "runnel-server fleet: the token holds a space or control "
				     "character\n");
			return 1;
		}
	return 0;
}

/* The "message" of an error answer's JSON, else its first line, cleaned, into b. */
static void error_text(const struct rn_buf *body, struct rn_buf *b)
{
	struct rn_json_span root = {(const char *)body->data, body->len}, v;
	struct rn_buf s = {0};
	while (root.len && (root.p[root.len - 1] == '\n' || root.p[root.len - 1] == ' '))
		root.len--;
	if (root.len && root.p[0] == '{' && !rn_json_validate(root.p, root.len) &&
	    member(root, "message", &v) && !rn_json_string(v, &s)) {
		put_clean(b, s.data, s.len);
	} else if (body->len) {
		const uint8_t *nl = memchr(body->data, '\n', body->len);
		size_t n = nl ? (size_t)(nl - body->data) : body->len;
		put_clean(b, body->data, n && body->data[n - 1] == '\r' ? n - 1 : n);
	}
	rn_buf_free(&s);
	rn_buf_append_u8(b, 0);
}

int rn_fleet_cli_main(int argc, char **argv, FILE *out, FILE *err,
		      const struct rn_fleet_cli_env *env)
{
	struct opts o = {0};
	char tok[TOKEN_MAX] = "", url[600], msg[1024] = "";
	struct rn_buf target = {0}, body = {.max = (size_t)64 << 20}, text = {0}, why_body = {0};
	const char *conf, *why = NULL, *path;
	int rc, status = 0, code = RN_FLEET_CLI_EXIT_ERROR;

	if ((rc = parse_args(argc, argv, &o, out, err)))
		return rc < 0 ? RN_FLEET_CLI_EXIT_OK : rc;
	conf = o.conf;
	if (!o.url && !conf && env->default_conf && !access(env->default_conf, F_OK))
		conf = env->default_conf;
	if (o.url) {
		size_t n = strlen(o.url);
		while (n && o.url[n - 1] == '/')
			n--;
		if (n >= sizeof(url)) {
			fprintf(err, "runnel-server fleet: --url is too long\n");
			return RN_FLEET_CLI_EXIT_USAGE;
		}
		memcpy(url, o.url, n);
		url[n] = '\0';
	} else if (conf) {
		if (!env->conf_url || env->conf_url(conf, url, sizeof(url), msg, sizeof(msg))) {
			fprintf(err, "runnel-server fleet: %s\n",
				msg[0] ? msg : "-c is not supported");
			return RN_FLEET_CLI_EXIT_ERROR;
		}
	} else {
		fprintf(err, "runnel-server fleet: which server? give --url http://HOST:PORT (its "
			     "metrics_listen) or -c CONFIG\n");
		return RN_FLEET_CLI_EXIT_USAGE;
	}
	if (read_token(&o, tok, err))
		return RN_FLEET_CLI_EXIT_ERROR;
	path = o.refused ? "/api/v1/refusals" : o.streams ? "/api/v1/streams" : "/api/v1/devices";
	if (rn_buf_append_str(&target, path) || put_query(&target, "state", o.state) ||
	    put_query(&target, "q", o.q) || put_query(&target, "sort", o.sort) ||
	    put_query(&target, "order", o.order) || put_query(&target, "limit", o.limit) ||
	    rn_buf_append_u8(&target, 0)) {
		fprintf(err, "runnel-server fleet: out of memory\n");
		goto out;
	}
	rc = env->get(url, (const char *)target.data, tok[0] ? tok : NULL, o.timeout_s * 1000,
		      &status, &body, msg, sizeof(msg));
	if (rc) {
		fprintf(err, "runnel-server fleet: %s%s\n", msg,
			rc == RN_ECONNECT ? " (is runnel-server running, with metrics_listen "
					    "there?)"
					  : "");
		goto out;
	}
	if (status != 200)
		error_text(&body, &why_body);
	switch (status) {
	case 200: break;
	case 401:
		if (tok[0])
			fprintf(err,
				"runnel-server fleet: %s%s: the token was not accepted (401)\n",
				url, path);
		else
			fprintf(err,
				"runnel-server fleet: %s%s needs a token (401): give --token "
				"or --token-file (the server's token, or a principal's with "
				"console = true)\n",
				url, path);
		goto out;
	case 403:
		fprintf(err,
			"runnel-server fleet: %s%s: forbidden (403): the token's principal "
			"may not read the fleet API (it needs console = true)\n",
			url, path);
		goto out;
	case 404:
		fprintf(err,
			"runnel-server fleet: %s has no %s (404): a runnel-server older "
			"than %s, or not a runnel-server\n",
			url, path, o.refused ? "its refusal sources" : "the fleet API");
		goto out;
	default:
		fprintf(err, "runnel-server fleet: %s%s answered HTTP %d: %s\n", url, path, status,
			why_body.len > 1 ? (const char *)why_body.data : "(no message)");
		goto out;
	}
	if (o.json) {
		if (body.len)
			fwrite(body.data, 1, body.len, out);
		if (!body.len || body.data[body.len - 1] != '\n')
			fputc('\n', out);
		code = RN_FLEET_CLI_EXIT_OK;
		goto out;
	}
	rc = render((const char *)body.data, body.len,
		    o.refused   ? LIST_REFUSALS
		    : o.streams ? LIST_STREAMS
				: LIST_DEVICES,
		    &text, &why);
	if (rc) {
		fprintf(err, "runnel-server fleet: %s%s: %s\n", url, path,
			rc == RN_ENOMEM ? "out of memory"
					: "the answer is not the fleet API's JSON");
		if (why && rc != RN_ENOMEM)
			fprintf(err, "  (%s)\n", why);
		goto out;
	}
	fwrite(text.data, 1, text.len, out);
	code = RN_FLEET_CLI_EXIT_OK;
out:
	rn_buf_free(&target);
	rn_buf_free(&body);
	rn_buf_free(&text);
	rn_buf_free(&why_body);
	return code;
}
