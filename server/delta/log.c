/*
 * Delta log analyzer; see log.h. Every line is validated as a whole with rn_json_validate()
 * before it is walked, because the object walker stops at the closing brace and would accept
 * trailing garbage. Paths and appIds are kept in small open-addressing hash maps so a log
 * with millions of adds replays in linear time; map entries are never deleted (a path moves
 * between the live and the removed arrays, and its slot just follows it).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pqread.h"
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"
#include "rn_url.h"
#include "tstore.h"

enum { KIND_LIVE = 1, KIND_REMOVED = 2 };

struct slot {
	char *key; /* owned; NULL = empty slot */
	uint32_t hash;
	int kind;   /* files map: KIND_LIVE / KIND_REMOVED; txn map: unused */
	size_t idx; /* index into files[] / removes[] / txns[] */
};

struct smap {
	struct slot *slots;
	size_t cap; /* power of two, or 0 */
	size_t n;
};

struct rn_dlog {
	int64_t version;
	struct smap paths; /* every path ever added or removed */
	struct rn_dlog_file *files;
	size_t nfiles, capfiles;
	struct rn_dlog_remove *removes;
	size_t nremoves, capremoves;
	struct smap apps;
	struct rn_dlog_txn *txns;
	size_t ntxns, captxns;
	struct rn_dlog_commit *commits;
	size_t ncommits, capcommits;
	int min_reader, min_writer;
	char *reader_features, *writer_features;
	char *table_id, *schema_string;
	int64_t created_ms;
	struct rn_dlog_column *cols;
	size_t ncols;
	char **parts;
	size_t nparts;
	char **warnings;
	size_t nwarn, totalwarn;
	int warned_dv;
	int in_ckpt;        /* applying a checkpoint: tombstones without adds are normal */
	int64_t ckpt_start; /* version of the checkpoint the replay started from, or -1 */
	int64_t last_ckpt, last_ckpt_size; /* from _last_checkpoint, or -1 */
	int64_t newest_ckpt;               /* newest NNN.checkpoint.parquet in the log, or -1 */
	char err[512];
};

/* ---- small helpers ---- */

static int fail(struct rn_dlog *l, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct rn_dlog *l, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->err, sizeof(l->err), fmt, ap);
	va_end(ap);
	return rc;
}

static int warn(struct rn_dlog *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int warn(struct rn_dlog *l, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	l->totalwarn++;
	if (l->nwarn >= RN_DLOG_MAX_WARNINGS)
		return 0;
	if (!l->warnings && !(l->warnings = rn_calloc(RN_DLOG_MAX_WARNINGS, sizeof(char *))))
		return RN_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (!(l->warnings[l->nwarn] = rn_strdup(tmp)))
		return RN_ENOMEM;
	l->nwarn++;
	return 0;
}

/* Grows *arr (of elem-sized items) to hold one more, up to max items. */
static int grow(void *arrp, size_t *cap, size_t n, size_t elem, size_t max)
{
	return rn_grow(arrp, cap, n, elem, 16, max);
}

static uint32_t fnv1a(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

/* Finds key; *found = 1 and the slot, or 0 and the empty slot where it would go. */
static struct slot *smap_find(struct smap *m, const char *key, size_t len, uint32_t h, int *found)
{
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct slot *s = &m->slots[i];
		if (!s->key) {
			*found = 0;
			return s;
		}
		if (s->hash == h && strlen(s->key) == len && !memcmp(s->key, key, len)) {
			*found = 1;
			return s;
		}
	}
}

/* Looks key up, inserting it (kind 0) when absent. *slot points into the map until the
 * next insert. */
static int smap_get(struct smap *m, const char *key, size_t len, struct slot **slot, int *created)
{
	uint32_t h = fnv1a(key, len);
	int found;
	if (m->n + 1 > m->cap / 4 * 3) {
		size_t nc = m->cap ? m->cap * 2 : 64;
		if (nc / 2 > RN_DLOG_MAX_FILES)
			return RN_ENOMEM;
		struct smap nm = {rn_calloc(nc, sizeof(struct slot)), nc, m->n};
		if (!nm.slots)
			return RN_ENOMEM;
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->slots[i].key)
				continue;
			struct slot *d = smap_find(&nm, m->slots[i].key, strlen(m->slots[i].key),
						   m->slots[i].hash, &found);
			*d = m->slots[i];
		}
		rn_free(m->slots);
		*m = nm;
	}
	struct slot *s = smap_find(m, key, len, h, &found);
	*created = !found;
	if (!found) {
		if (!(s->key = rn_strndup(key, len)))
			return RN_ENOMEM;
		s->hash = h;
		s->kind = 0;
		s->idx = 0;
		m->n++;
	}
	*slot = s;
	return 0;
}

static struct slot *smap_lookup(const struct smap *m, const char *key, size_t len)
{
	int found;
	if (!m->cap)
		return NULL;
	struct slot *s = smap_find((struct smap *)m, key, len, fnv1a(key, len), &found);
	return found ? s : NULL;
}

static void smap_free(struct smap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		rn_free(m->slots[i].key);
	rn_free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* Decodes a JSON string value into a fresh NUL-terminated copy. */
static int dup_string(struct rn_json_span v, char **out)
{
	struct rn_buf b = {.max = (size_t)16 << 20};
	int rc = rn_json_string(v, &b);
	if (!rc && !b.data)
		rc = rn_buf_append_u8(&b, 0);
	if (rc) {
		rn_buf_free(&b);
		return rc;
	}
	rn_free(*out);
	*out = (char *)b.data;
	return 0;
}

static int is_null(struct rn_json_span v)
{
	return rn_json_span_eq(v, "null");
}

/* A JSON boolean: 1, 0, or RN_EINVAL. */
static int get_bool(struct rn_json_span v)
{
	if (rn_json_span_eq(v, "true"))
		return 1;
	if (rn_json_span_eq(v, "false"))
		return 0;
	return RN_EINVAL;
}

/* ---- schema ---- */

#define TYPE_MAX ((size_t)1 << 20) /* rendering buffer cap */
#define TYPE_SHOW 200              /* longer renderings are cut with "..." */

struct type_ctx {
	struct rn_buf *out;
	int depth;
	struct rn_json_span kind, fields, elem, key, val;
};

static int render_type(struct rn_json_span v, struct rn_buf *out, int depth);

static int type_member(void *c, struct rn_json_span k, struct rn_json_span v)
{
	struct type_ctx *t = c;
	if (rn_json_span_eq(k, "type"))
		t->kind = v;
	else if (rn_json_span_eq(k, "fields"))
		t->fields = v;
	else if (rn_json_span_eq(k, "elementType"))
		t->elem = v;
	else if (rn_json_span_eq(k, "keyType"))
		t->key = v;
	else if (rn_json_span_eq(k, "valueType"))
		t->val = v;
	return 0;
}

struct field_ctx {
	struct rn_json_span name, type, nullable;
};

static int field_member(void *c, struct rn_json_span k, struct rn_json_span v)
{
	struct field_ctx *f = c;
	if (rn_json_span_eq(k, "name"))
		f->name = v;
	else if (rn_json_span_eq(k, "type"))
		f->type = v;
	else if (rn_json_span_eq(k, "nullable"))
		f->nullable = v;
	return 0;
}

struct struct_ctx {
	struct rn_buf *out;
	int depth;
	int n;
};

static int struct_field(void *c, size_t i, struct rn_json_span el)
{
	(void)i;
	struct struct_ctx *s = c;
	struct field_ctx f = {0};
	struct rn_buf name = {.max = TYPE_MAX};
	int rc;
	if (rn_json_object_walk(el, field_member, &f) || !f.name.p || !f.type.p)
		return RN_EINVAL;
	if (rn_json_string(f.name, &name)) {
		rn_buf_free(&name);
		return RN_EINVAL;
	}
	if (s->n++)
		rn_buf_append_u8(s->out, ',');
	rn_buf_append(s->out, name.data, name.len);
	rn_buf_free(&name);
	rn_buf_append_u8(s->out, ':');
	rc = render_type(f.type, s->out, s->depth + 1);
	return rc;
}

/* Renders a schema type (a string, or a struct/array/map object) as compact text. Output
 * longer than the buffer's cap makes the caller fall back to the bare kind. */
static int render_type(struct rn_json_span v, struct rn_buf *out, int depth)
{
	struct type_ctx t = {out, depth, {0}, {0}, {0}, {0}, {0}};
	struct rn_buf s = {.max = TYPE_MAX};
	int rc = 0;
	if (depth > 16)
		return RN_EINVAL;
	if (v.len && v.p[0] == '"') {
		if ((rc = rn_json_string(v, &s)) == 0)
			rc = rn_buf_append(out, s.data, s.len);
		rn_buf_free(&s);
		return rc;
	}
	if (rn_json_object_walk(v, type_member, &t) || !t.kind.p || rn_json_string(t.kind, &s)) {
		rn_buf_free(&s);
		return RN_EINVAL;
	}
	const char *kind = s.data ? (const char *)s.data : "";
	if (!strcmp(kind, "struct") && t.fields.p) {
		struct struct_ctx sc = {out, depth, 0};
		rn_buf_append_str(out, "struct<");
		rc = rn_json_array_walk(t.fields, struct_field, &sc);
		rn_buf_append_u8(out, '>');
	} else if (!strcmp(kind, "array") && t.elem.p) {
		rn_buf_append_str(out, "array<");
		rc = render_type(t.elem, out, depth + 1);
		rn_buf_append_u8(out, '>');
	} else if (!strcmp(kind, "map") && t.key.p && t.val.p) {
		rn_buf_append_str(out, "map<");
		rc = render_type(t.key, out, depth + 1);
		rn_buf_append_u8(out, ',');
		if (!rc)
			rc = render_type(t.val, out, depth + 1);
		rn_buf_append_u8(out, '>');
	} else {
		rc = RN_EINVAL;
	}
	rn_buf_free(&s);
	return rc;
}

static void free_cols(struct rn_dlog *l)
{
	for (size_t i = 0; i < l->ncols; i++) {
		rn_free(l->cols[i].name);
		rn_free(l->cols[i].type);
	}
	rn_free(l->cols);
	l->cols = NULL;
	l->ncols = 0;
}

struct cols_ctx {
	struct rn_dlog *l;
	size_t cap;
};

/* Adds one schema field as a column. The column is counted only once its name and type are
 * both known, so a field that fails half way leaves no column with a NULL name or type. */
static int schema_column(void *c, size_t i, struct rn_json_span el)
{
	(void)i;
	struct cols_ctx *cc = c;
	struct rn_dlog *l = cc->l;
	struct field_ctx f = {0};
	struct rn_buf type = {.max = TYPE_MAX};
	char *name = NULL;
	int rc;
	if (rn_json_object_walk(el, field_member, &f) || !f.name.p || !f.type.p)
		return RN_EINVAL;
	rc = render_type(f.type, &type, 0);
	if (!rc && type.len > TYPE_SHOW) {
		type.len = TYPE_SHOW; /* may cut a UTF-8 sequence; rn_json_put_str copes */
		rc = rn_buf_append_str(&type, "...");
	}
	if (!rc)
		rc = rn_buf_append_u8(&type, 0);
	if (rc || dup_string(f.name, &name)) {
		rn_buf_free(&type);
		return RN_EINVAL;
	}
	if ((rc = grow(&l->cols, &cc->cap, l->ncols, sizeof(*l->cols), 1 << 16))) {
		rn_free(name);
		rn_buf_free(&type);
		return rc;
	}
	struct rn_dlog_column *col = &l->cols[l->ncols++];
	col->name = name;
	col->type = (char *)type.data;
	col->nullable = f.nullable.p ? get_bool(f.nullable) == 1 : 1;
	return 0;
}

static int parse_schema(struct rn_dlog *l, const char *schema)
{
	struct type_ctx t = {0};
	struct cols_ctx cc = {l, 0};
	struct rn_json_span s = {schema, strlen(schema)};
	free_cols(l);
	if (rn_json_validate(s.p, s.len) || rn_json_object_walk(s, type_member, &t) || !t.kind.p ||
	    !rn_json_span_eq(t.kind, "\"struct\"") || !t.fields.p)
		return RN_EINVAL;
	int rc = rn_json_array_walk(t.fields, schema_column, &cc);
	if (rc)
		free_cols(l); /* no half schema: the columns are a whole valid schema or none */
	return rc;
}

/* ---- actions ---- */

/* Where a line is being parsed, for messages. */
struct line_ctx {
	struct rn_dlog *l;
	int64_t version;
	size_t line;
	struct rn_dlog_commit *commit;
	int nactions;
	size_t actions;  /* actions applied so far in this commit */
	const char *bad; /* reason the action is malformed */
	char what[80];   /* room for a reason built at run time */
	/* fields of the action being read */
	char *path;
	int64_t size, mtime, deletion, num_records, version_field, last_updated;
	int has_size, has_version, data_change, has_dv;
	char *str1, *str2;
	struct rn_json_span stats, kind1, kind2;
	int64_t i1, i2;
};

static void reset_fields(struct line_ctx *c)
{
	rn_free(c->path);
	rn_free(c->str1);
	rn_free(c->str2);
	c->path = c->str1 = c->str2 = NULL;
	c->size = c->mtime = c->deletion = c->num_records = c->version_field = -1;
	c->last_updated = -1;
	c->has_size = c->has_version = c->has_dv = 0;
	c->data_change = 1;
	c->stats.p = NULL;
	c->kind1.p = c->kind2.p = NULL;
	c->i1 = c->i2 = -1;
}

static int stats_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	int64_t *n = ctx;
	if (rn_json_span_eq(k, "numRecords") && rn_json_int64(v, n))
		*n = -2;
	return 0;
}

static int file_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct line_ctx *c = ctx;
	if (rn_json_span_eq(k, "path")) {
		if (dup_string(v, &c->path))
			c->bad = "path is not a string";
	} else if (rn_json_span_eq(k, "size")) {
		if (rn_json_int64(v, &c->size) || c->size < 0)
			c->bad = "size is not a non-negative integer";
		c->has_size = 1;
	} else if (rn_json_span_eq(k, "modificationTime")) {
		if (rn_json_int64(v, &c->mtime))
			c->bad = "modificationTime is not an integer";
	} else if (rn_json_span_eq(k, "deletionTimestamp")) {
		if (!is_null(v) && rn_json_int64(v, &c->deletion))
			c->bad = "deletionTimestamp is not an integer";
	} else if (rn_json_span_eq(k, "dataChange")) {
		int b = get_bool(v);
		if (b < 0)
			c->bad = "dataChange is not a boolean";
		c->data_change = b == 1;
	} else if (rn_json_span_eq(k, "stats")) {
		if (!is_null(v))
			c->stats = v;
	} else if (rn_json_span_eq(k, "deletionVector")) {
		c->has_dv = !is_null(v);
	}
	return c->bad ? RN_EINVAL : 0; /* the first problem is the one reported */
}

/* numRecords from the stats string value: >= 0, -1 absent, -2 unreadable. */
static int64_t stats_records(struct rn_json_span v)
{
	struct rn_buf s = {.max = (size_t)64 << 20};
	int64_t n = -1;
	if (rn_json_string(v, &s) || !s.data || rn_json_validate((const char *)s.data, s.len) ||
	    rn_json_object_walk((struct rn_json_span){(const char *)s.data, s.len}, stats_member,
				&n))
		n = -2;
	rn_buf_free(&s);
	return n < -1 ? -2 : n;
}

static int apply_add(struct line_ctx *c, struct rn_json_span v)
{
	struct rn_dlog *l = c->l;
	struct slot *s;
	int created, rc = 0;
	if (rn_json_object_walk(v, file_member, c))
		return RN_EINVAL;
	if (!c->bad && !c->path)
		c->bad = "add without path";
	if (!c->bad && !c->has_size)
		c->bad = "add without size";
	if (c->bad)
		return RN_EINVAL;
	int64_t nrec = c->stats.p ? stats_records(c->stats) : -1;
	if (nrec == -2) {
		if ((rc = warn(l, "version %lld line %zu: add %s has unreadable stats",
			       (long long)c->version, c->line, c->path)))
			return rc;
		nrec = -1;
	}
	if (c->has_dv && !l->warned_dv++ &&
	    (rc = warn(l, "version %lld: deletion vectors present; row counts include deleted rows",
		       (long long)c->version)))
		return rc;
	if ((rc = smap_get(&l->paths, c->path, strlen(c->path), &s, &created)))
		return rc;
	struct rn_dlog_file *f;
	if (s->kind == KIND_LIVE) {
		f = &l->files[s->idx];
		if (f->version == c->version)
			rc = warn(l, "version %lld: %s is added twice in one commit",
				  (long long)c->version, c->path);
		else if (c->data_change)
			rc = warn(l,
				  "version %lld: %s is added again (live since version %lld, "
				  "no remove); counted once",
				  (long long)c->version, c->path, (long long)f->version);
		if (rc)
			return rc;
	} else {
		if (s->kind == KIND_REMOVED) {
			/* Re-added after a remove: drop the tombstone (swap with the last). */
			size_t i = s->idx, last = --l->nremoves;
			if (i != last) {
				l->removes[i] = l->removes[last];
				struct slot *ms = smap_lookup(&l->paths, l->removes[i].path,
							      strlen(l->removes[i].path));
				ms->idx = i;
			}
		}
		if ((rc = grow(&l->files, &l->capfiles, l->nfiles, sizeof(*l->files),
			       RN_DLOG_MAX_FILES)))
			return fail(l, rc, "more than %zu live files", RN_DLOG_MAX_FILES);
		s->kind = KIND_LIVE;
		s->idx = l->nfiles++;
		f = &l->files[s->idx];
		f->path = s->key;
	}
	f->size = c->size;
	f->mtime_ms = c->mtime;
	f->num_records = nrec;
	f->version = c->version;
	f->data_change = c->data_change;
	c->commit->nadd++;
	if (nrec >= 0)
		c->commit->rows_added += nrec;
	else
		c->commit->adds_without_stats++;
	return 0;
}

static int apply_remove(struct line_ctx *c, struct rn_json_span v)
{
	struct rn_dlog *l = c->l;
	struct slot *s;
	int created, rc;
	if (rn_json_object_walk(v, file_member, c))
		return RN_EINVAL;
	if (!c->bad && !c->path)
		c->bad = "remove without path";
	if (c->bad)
		return RN_EINVAL;
	if ((rc = smap_get(&l->paths, c->path, strlen(c->path), &s, &created)))
		return rc;
	if (s->kind == KIND_REMOVED)
		return 0; /* already a tombstone: keep the first deletion time */
	if (s->kind == KIND_LIVE) {
		size_t i = s->idx, last = --l->nfiles;
		if (i != last) {
			l->files[i] = l->files[last];
			struct slot *ms =
				smap_lookup(&l->paths, l->files[i].path, strlen(l->files[i].path));
			ms->idx = i;
		}
	} else if (!l->in_ckpt && (rc = warn(l, "version %lld: remove of %s, which was never added",
					     (long long)c->version, c->path))) {
		return rc;
	}
	if ((rc = grow(&l->removes, &l->capremoves, l->nremoves, sizeof(*l->removes),
		       RN_DLOG_MAX_FILES)))
		return fail(l, rc, "more than %zu tombstones", RN_DLOG_MAX_FILES);
	s->kind = KIND_REMOVED;
	s->idx = l->nremoves++;
	l->removes[s->idx].path = s->key;
	l->removes[s->idx].deletion_ms = c->deletion;
	l->removes[s->idx].version = c->version;
	c->commit->nremove++;
	return 0;
}

static int txn_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct line_ctx *c = ctx;
	if (rn_json_span_eq(k, "appId")) {
		if (dup_string(v, &c->str1))
			c->bad = "txn appId is not a string";
	} else if (rn_json_span_eq(k, "version")) {
		if (rn_json_int64(v, &c->version_field))
			c->bad = "txn version is not an integer";
		c->has_version = 1;
	} else if (rn_json_span_eq(k, "lastUpdated")) {
		if (!is_null(v) && rn_json_int64(v, &c->last_updated))
			c->bad = "txn lastUpdated is not an integer";
	}
	return c->bad ? RN_EINVAL : 0; /* the first problem is the one reported */
}

static int apply_txn(struct line_ctx *c, struct rn_json_span v)
{
	struct rn_dlog *l = c->l;
	struct slot *s;
	int created, rc;
	if (rn_json_object_walk(v, txn_member, c))
		return RN_EINVAL;
	if (!c->bad && !c->str1)
		c->bad = "txn without appId";
	if (!c->bad && !c->has_version)
		c->bad = "txn without version";
	if (c->bad)
		return RN_EINVAL;
	if ((rc = smap_get(&l->apps, c->str1, strlen(c->str1), &s, &created)))
		return rc;
	if (created) {
		if ((rc = grow(&l->txns, &l->captxns, l->ntxns, sizeof(*l->txns),
			       RN_DLOG_MAX_FILES)))
			return rc;
		s->idx = l->ntxns++;
		l->txns[s->idx].app_id = s->key;
	} else {
		struct rn_dlog_txn *t = &l->txns[s->idx];
		if (t->at_version == c->version)
			rc = warn(l, "version %lld: two txn actions for appId %s in one commit",
				  (long long)c->version, t->app_id);
		else if (c->version_field < t->version)
			rc = warn(l, "version %lld: txn of appId %s goes back from %lld to %lld",
				  (long long)c->version, t->app_id, (long long)t->version,
				  (long long)c->version_field);
		if (rc)
			return rc;
	}
	struct rn_dlog_txn *t = &l->txns[s->idx];
	t->version = c->version_field;
	t->last_updated = c->last_updated;
	t->at_version = c->version;
	c->commit->ntxn++;
	return 0;
}

static int proto_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct line_ctx *c = ctx;
	if (rn_json_span_eq(k, "minReaderVersion")) {
		if (rn_json_int64(v, &c->i1) || c->i1 < 0 || c->i1 > 1000)
			c->bad = "minReaderVersion is not a small integer";
	} else if (rn_json_span_eq(k, "minWriterVersion")) {
		if (rn_json_int64(v, &c->i2) || c->i2 < 0 || c->i2 > 1000)
			c->bad = "minWriterVersion is not a small integer";
	} else if (rn_json_span_eq(k, "readerFeatures")) {
		c->kind1 = v;
	} else if (rn_json_span_eq(k, "writerFeatures")) {
		c->kind2 = v;
	}
	return c->bad ? RN_EINVAL : 0; /* the first problem is the one reported */
}

static int dup_span(struct rn_json_span v, char **out)
{
	rn_free(*out);
	*out = NULL;
	if (!v.p || is_null(v))
		return 0;
	return (*out = rn_strndup(v.p, v.len)) ? 0 : RN_ENOMEM;
}

static int apply_protocol(struct line_ctx *c, struct rn_json_span v)
{
	struct rn_dlog *l = c->l;
	int rc;
	if (rn_json_object_walk(v, proto_member, c))
		return RN_EINVAL;
	if (!c->bad && (c->i1 < 0 || c->i2 < 0))
		c->bad = "protocol without minReaderVersion/minWriterVersion";
	if (c->bad)
		return RN_EINVAL;
	l->min_reader = (int)c->i1;
	l->min_writer = (int)c->i2;
	if ((rc = dup_span(c->kind1, &l->reader_features)) ||
	    (rc = dup_span(c->kind2, &l->writer_features)))
		return rc;
	c->commit->meta_change = 1;
	return 0;
}

static int part_column(void *ctx, size_t i, struct rn_json_span el)
{
	(void)i;
	struct rn_dlog *l = ctx;
	char *s = NULL;
	if (el.len == 0 || el.p[0] != '"' || dup_string(el, &s))
		return RN_EINVAL;
	char **t = rn_reallocarray(l->parts, l->nparts + 1, sizeof(*t));
	if (!t) {
		rn_free(s);
		return RN_ENOMEM;
	}
	l->parts = t;
	l->parts[l->nparts++] = s;
	return 0;
}

static int meta_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct line_ctx *c = ctx;
	struct rn_dlog *l = c->l;
	if (rn_json_span_eq(k, "id")) {
		if (dup_string(v, &l->table_id))
			c->bad = "metaData id is not a string";
	} else if (rn_json_span_eq(k, "schemaString")) {
		if (dup_string(v, &l->schema_string))
			c->bad = "schemaString is not a string";
		else if (parse_schema(l, l->schema_string))
			c->bad = "schemaString is not a valid struct schema";
	} else if (rn_json_span_eq(k, "partitionColumns")) {
		for (size_t i = 0; i < l->nparts; i++)
			rn_free(l->parts[i]);
		l->nparts = 0;
		if (!is_null(v) && rn_json_array_walk(v, part_column, l))
			c->bad = "partitionColumns is not an array of strings";
	} else if (rn_json_span_eq(k, "createdTime")) {
		if (!is_null(v) && rn_json_int64(v, &l->created_ms))
			c->bad = "createdTime is not an integer";
	}
	return c->bad ? RN_EINVAL : 0; /* the first problem is the one reported */
}

static int apply_meta(struct line_ctx *c, struct rn_json_span v)
{
	struct rn_dlog *l = c->l;
	/* A metaData action replaces the whole previous one. */
	rn_free(l->table_id);
	rn_free(l->schema_string);
	l->table_id = l->schema_string = NULL;
	l->created_ms = -1;
	free_cols(l);
	for (size_t i = 0; i < l->nparts; i++)
		rn_free(l->parts[i]);
	l->nparts = 0;
	if (rn_json_object_walk(v, meta_member, c))
		return RN_EINVAL;
	if (!c->bad && !l->schema_string)
		c->bad = "metaData without schemaString";
	if (c->bad)
		return RN_EINVAL;
	c->commit->meta_change = 1;
	return 0;
}

static int info_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct line_ctx *c = ctx;
	struct rn_dlog_commit *ci = c->commit;
	/* commitInfo is free-form: a field of an unexpected type is ignored, not an error. */
	if (rn_json_span_eq(k, "timestamp")) {
		if (rn_json_int64(v, &ci->timestamp_ms))
			ci->timestamp_ms = -1;
	} else if (rn_json_span_eq(k, "operation") && v.len && v.p[0] == '"') {
		return dup_string(v, &ci->operation) == RN_ENOMEM ? RN_ENOMEM : 0;
	} else if (rn_json_span_eq(k, "engineInfo") && v.len && v.p[0] == '"') {
		return dup_string(v, &ci->engine) == RN_ENOMEM ? RN_ENOMEM : 0;
	}
	return 0;
}

static int action_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct line_ctx *c = ctx;
	int rc = 0;
	if (c->nactions++)
		return RN_EINVAL; /* more than one action on the line; reported by the caller */
	reset_fields(c);
	if (is_null(v))
		return 0; /* {"add":null}: Spark never writes it; nothing to apply */
	int is_obj = v.len && v.p[0] == '{';
	if (rn_json_span_eq(k, "add"))
		rc = is_obj ? apply_add(c, v) : RN_EINVAL;
	else if (rn_json_span_eq(k, "remove"))
		rc = is_obj ? apply_remove(c, v) : RN_EINVAL;
	else if (rn_json_span_eq(k, "txn"))
		rc = is_obj ? apply_txn(c, v) : RN_EINVAL;
	else if (rn_json_span_eq(k, "metaData"))
		rc = is_obj ? apply_meta(c, v) : RN_EINVAL;
	else if (rn_json_span_eq(k, "protocol"))
		rc = is_obj ? apply_protocol(c, v) : RN_EINVAL;
	else if (rn_json_span_eq(k, "commitInfo"))
		rc = is_obj ? rn_json_object_walk(v, info_member, c) : 0;
	/* cdc, domainMetadata, checkpointMetadata, sidecar ...: not needed for a snapshot. */
	if (rc == RN_EINVAL && !c->bad) {
		snprintf(c->what, sizeof(c->what), "%.*s is not a valid action object",
			 (int)(k.len > 32 ? 32 : k.len), k.p);
		c->bad = c->what;
	}
	c->actions++;
	return rc;
}

static int apply_text(struct rn_dlog *l, int64_t version, const char *text, size_t len)
{
	struct line_ctx c = {0};
	int rc = 0;

	l->err[0] = 0;
	if (!l->in_ckpt && version != l->version + 1)
		return fail(l, RN_EDELTA, "version %lld applied after version %lld",
			    (long long)version, (long long)l->version);
	if ((rc = grow(&l->commits, &l->capcommits, l->ncommits, sizeof(*l->commits),
		       RN_DLOG_MAX_VERSIONS)))
		return fail(l, rc, "more than %zu versions", RN_DLOG_MAX_VERSIONS);
	c.commit = &l->commits[l->ncommits++];
	memset(c.commit, 0, sizeof(*c.commit));
	c.commit->version = version;
	c.commit->timestamp_ms = -1;
	c.l = l;
	c.version = version;
	l->version = version;
	for (size_t off = 0; off < len;) {
		const char *line = text + off;
		const char *nl = memchr(line, '\n', len - off);
		size_t n = nl ? (size_t)(nl - line) : len - off;
		off += n + 1;
		c.line++;
		if (n && line[n - 1] == '\r')
			n--;
		if (n == 0)
			continue;
		struct rn_json_span s = {line, n};
		c.nactions = 0;
		c.bad = NULL;
		if (rn_json_validate(line, n) || line[0] != '{') {
			rc = fail(l, RN_EDELTA, "version %lld line %zu: not a JSON object",
				  (long long)version, c.line);
			break;
		}
		rc = rn_json_object_walk(s, action_member, &c);
		if (rc == RN_ENOMEM) {
			fail(l, rc, "version %lld line %zu: out of memory", (long long)version,
			     c.line);
			break;
		}
		if (rc || c.nactions != 1) {
			const char *why = c.bad             ? c.bad
					  : c.nactions == 0 ? "line holds no action"
					  : c.nactions > 1  ? "line holds more than one action"
							    : "malformed action";
			rc = fail(l, RN_EDELTA, "version %lld line %zu: %s", (long long)version,
				  c.line, why);
			break;
		}
	}
	reset_fields(&c);
	if (rc)
		return rc;
	if (c.actions == 0)
		return fail(l, RN_EDELTA, "version %lld holds no action", (long long)version);
	if (l->in_ckpt)
		return 0;
	if (text[len - 1] != '\n' &&
	    (rc = warn(l, "version %lld: commit does not end with a newline (torn write?)",
		       (long long)version)))
		return rc;
	if (version == 0 && (l->min_reader < 0 || !l->schema_string) &&
	    (rc = warn(l, "version 0 lacks %s", l->min_reader < 0 ? "protocol" : "metaData")))
		return rc;
	return 0;
}

int rn_dlog_apply(struct rn_dlog *l, int64_t version, const char *text, size_t len)
{
	return apply_text(l, version, text, len);
}

int rn_dlog_apply_checkpoint(struct rn_dlog *l, int64_t version, const char *lines, size_t len)
{
	int rc;
	if (l->version != -1 || version < 0)
		return fail(l, RN_EDELTA, "a checkpoint must be applied to a fresh snapshot");
	l->in_ckpt = 1;
	rc = apply_text(l, version, lines, len);
	l->in_ckpt = 0;
	if (rc)
		return rc;
	l->ckpt_start = version;
	l->commits[l->ncommits - 1].operation = rn_strdup("(checkpoint)");
	if (!l->commits[l->ncommits - 1].operation)
		return RN_ENOMEM;
	if (l->min_reader < 0 || !l->schema_string)
		return fail(l, RN_EDELTA, "checkpoint %lld lacks %s", (long long)version,
			    l->min_reader < 0 ? "protocol" : "metaData");
	return 0;
}

void rn_dlog_checkpoint_info(const struct rn_dlog *l, int64_t *start, int64_t *last,
			     int64_t *last_size, int64_t *newest)
{
	*start = l->ckpt_start;
	*last = l->last_ckpt;
	*last_size = l->last_ckpt_size;
	*newest = l->newest_ckpt;
}

/* ---- lifetime and accessors ---- */

int rn_dlog_create(struct rn_dlog **out)
{
	struct rn_dlog *l = rn_calloc(1, sizeof(*l));
	*out = NULL;
	if (!l)
		return RN_ENOMEM;
	l->version = -1;
	l->min_reader = l->min_writer = -1;
	l->created_ms = -1;
	l->ckpt_start = l->last_ckpt = l->last_ckpt_size = l->newest_ckpt = -1;
	*out = l;
	return 0;
}

void rn_dlog_destroy(struct rn_dlog *l)
{
	if (!l)
		return;
	smap_free(&l->paths); /* frees the path strings files[] and removes[] point at */
	smap_free(&l->apps);
	rn_free(l->files);
	rn_free(l->removes);
	rn_free(l->txns);
	for (size_t i = 0; i < l->ncommits; i++) {
		rn_free(l->commits[i].operation);
		rn_free(l->commits[i].engine);
	}
	rn_free(l->commits);
	rn_free(l->reader_features);
	rn_free(l->writer_features);
	rn_free(l->table_id);
	rn_free(l->schema_string);
	free_cols(l);
	for (size_t i = 0; i < l->nparts; i++)
		rn_free(l->parts[i]);
	rn_free(l->parts);
	for (size_t i = 0; i < l->nwarn; i++)
		rn_free(l->warnings[i]);
	rn_free(l->warnings);
	rn_free(l);
}

int64_t rn_dlog_version(const struct rn_dlog *l)
{
	return l->version;
}

const struct rn_dlog_file *rn_dlog_files(const struct rn_dlog *l, size_t *n)
{
	*n = l->nfiles;
	return l->files;
}

const struct rn_dlog_remove *rn_dlog_removes(const struct rn_dlog *l, size_t *n)
{
	*n = l->nremoves;
	return l->removes;
}

const struct rn_dlog_txn *rn_dlog_txns(const struct rn_dlog *l, size_t *n)
{
	*n = l->ntxns;
	return l->txns;
}

int64_t rn_dlog_txn(const struct rn_dlog *l, const char *app_id)
{
	struct slot *s = smap_lookup(&l->apps, app_id, strlen(app_id));
	return s ? l->txns[s->idx].version : -1;
}

const struct rn_dlog_commit *rn_dlog_commits(const struct rn_dlog *l, size_t *n)
{
	*n = l->ncommits;
	return l->commits;
}

void rn_dlog_totals(const struct rn_dlog *l, int64_t *bytes, int64_t *rows, size_t *files_no_stats)
{
	*bytes = *rows = 0;
	*files_no_stats = 0;
	for (size_t i = 0; i < l->nfiles; i++) {
		*bytes += l->files[i].size;
		if (l->files[i].num_records >= 0)
			*rows += l->files[i].num_records;
		else
			(*files_no_stats)++;
	}
}

void rn_dlog_protocol(const struct rn_dlog *l, int *min_reader, int *min_writer,
		      const char **reader_features, const char **writer_features)
{
	*min_reader = l->min_reader;
	*min_writer = l->min_writer;
	*reader_features = l->reader_features;
	*writer_features = l->writer_features;
}

const char *rn_dlog_table_id(const struct rn_dlog *l)
{
	return l->table_id;
}

const char *rn_dlog_schema_string(const struct rn_dlog *l)
{
	return l->schema_string;
}

int64_t rn_dlog_created_ms(const struct rn_dlog *l)
{
	return l->created_ms;
}

const struct rn_dlog_column *rn_dlog_columns(const struct rn_dlog *l, size_t *n)
{
	*n = l->ncols;
	return l->cols;
}

char *const *rn_dlog_partition_columns(const struct rn_dlog *l, size_t *n)
{
	*n = l->nparts;
	return l->parts;
}

const char *const *rn_dlog_warnings(const struct rn_dlog *l, size_t *n, size_t *total)
{
	*n = l->nwarn;
	*total = l->totalwarn;
	return (const char *const *)l->warnings;
}

const char *rn_dlog_errmsg(const struct rn_dlog *l)
{
	return l->err;
}

/* ---- the store adapter ---- */

#define LOG_DIR "_delta_log"

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* 1 if name is exactly 20 digits followed by `suffix`, with the number in *v. */
static int versioned_name(const char *name, const char *suffix, int64_t *v)
{
	int64_t x = 0;
	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		if (x > (INT64_MAX - 9) / 10)
			return 0;
		x = x * 10 + (name[i] - '0');
	}
	if (strncmp(name + 20, suffix, strlen(suffix)))
		return 0;
	*v = x;
	return 1;
}

/* Reads the whole object key into out (bounded by out->max). */
static int read_all(struct rn_dlog *l, struct rn_tstore *st, const char *key, struct rn_buf *out)
{
	int rc;
	rn_buf_reset(out);
	if (!(rc = rn_tstore_get(st, key, 0, -1, out)))
		return 0;
	if (rc == RN_ENOMEM)
		return fail(l, rc, "%s/%s: larger than %zu bytes", rn_tstore_root(st), key,
			    out->max);
	return fail(l, RN_EIO, "%s: %s", key, rn_tstore_errmsg(st));
}

static int last_ckpt_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct line_ctx *c = ctx;
	if (rn_json_span_eq(k, "version") && rn_json_int64(v, &c->i1))
		c->i1 = -1;
	else if (rn_json_span_eq(k, "size") && rn_json_int64(v, &c->i2))
		c->i2 = -1;
	return 0;
}

/* Reads _delta_log/_last_checkpoint's version and size into l (-1 when absent or
 * unreadable: the file is only a hint). */
static void read_last_checkpoint(struct rn_dlog *l, struct rn_tstore *st)
{
	struct rn_buf b = {.max = 1 << 20};
	if (read_all(l, st, LOG_DIR "/_last_checkpoint", &b) == 0 && b.len) {
		struct line_ctx c = {0};
		c.l = l;
		struct rn_json_span s = {(const char *)b.data, b.len};
		while (s.len && (s.p[s.len - 1] == '\n' || s.p[s.len - 1] == ' '))
			s.len--;
		reset_fields(&c);
		if (!rn_json_validate(s.p, s.len) &&
		    !rn_json_object_walk(s, last_ckpt_member, &c)) {
			l->last_ckpt = c.i1;
			l->last_ckpt_size = c.i2;
		}
		reset_fields(&c);
	}
	l->err[0] = 0;
	rn_buf_free(&b);
}

/* The checkpoint is mapped (S3: downloaded to a spool file), not read into memory: it can
 * be large. */
static int load_checkpoint_file(struct rn_dlog *l, struct rn_tstore *st, int64_t v)
{
	char key[128];
	struct rn_buf lines = {.max = (size_t)1 << 30};
	struct rn_tstore_map m = {0};
	struct rn_pqr *r = NULL;
	int rc;
	snprintf(key, sizeof(key), LOG_DIR "/%020lld.checkpoint.parquet", (long long)v);
	if ((rc = rn_tstore_map(st, key, &m))) {
		rc = fail(l, rc == RN_ENOMEM ? rc : RN_EIO, "checkpoint %lld: %s", (long long)v,
			  rn_tstore_errmsg(st));
		goto out;
	}
	if ((rc = rn_pqr_open(&r, m.data, m.len, 0)) || (rc = rn_pqr_to_json_lines(r, &lines))) {
		rc = fail(l, rc == RN_ENOMEM ? rc : RN_EDELTA, "checkpoint %lld: %s", (long long)v,
			  rn_pqr_errmsg(r));
		goto out;
	}
	if (lines.len == 0) {
		rc = fail(l, RN_EDELTA, "checkpoint %lld holds no action", (long long)v);
		goto out;
	}
	rc = rn_dlog_apply_checkpoint(l, v, (const char *)lines.data, lines.len);
out:
	rn_pqr_close(r);
	rn_tstore_unmap(&m);
	rn_buf_free(&lines);
	return rc;
}

int rn_dlog_load(struct rn_dlog *l, const char *dir)
{
	return rn_dlog_load_mode(l, dir, 0);
}

int rn_dlog_load_mode(struct rn_dlog *l, const char *dir, int from_checkpoint)
{
	struct rn_tstore *st;
	char err[256];
	int rc;
	if (l->version != -1)
		return fail(l, RN_EINVAL, "snapshot already loaded");
	if ((rc = rn_tstore_open(&st, dir, NULL, err, sizeof(err))))
		return fail(l, rc == RN_ENOMEM ? rc : RN_EINVAL, "%s", err);
	rc = rn_dlog_load_store(l, st, from_checkpoint);
	rn_tstore_close(st);
	return rc;
}

struct listing {
	struct rn_dlog *l;
	int64_t *vers;
	size_t n, cap;
	int last_exists;
};

static int log_entry(void *ctx, const struct rn_tstore_entry *e)
{
	struct listing *g = ctx;
	const char *name = e->key + sizeof(LOG_DIR); /* after "_delta_log/" */
	int64_t v;
	if (!strcmp(name, "_last_checkpoint")) {
		g->last_exists = 1;
	} else if (versioned_name(name, ".checkpoint.parquet", &v) && name[39] == 0) {
		if (v > g->l->newest_ckpt)
			g->l->newest_ckpt = v;
	} else if (versioned_name(name, ".json", &v) && name[25] == 0) {
		if (grow(&g->vers, &g->cap, g->n, sizeof(*g->vers), RN_DLOG_MAX_VERSIONS))
			return fail(g->l, RN_ENOMEM, "more than %zu commits", RN_DLOG_MAX_VERSIONS);
		g->vers[g->n++] = v;
	}
	return 0;
}

int rn_dlog_load_store(struct rn_dlog *l, struct rn_tstore *st, int from_checkpoint)
{
	char key[128];
	struct listing g = {.l = l};
	int64_t cv, *vers;
	size_t first = 0, n;
	struct rn_buf text = {0};
	struct rn_tstore_entry e;
	int rc = 0, complete;
	const char *root = rn_tstore_root(st);

	if (l->version != -1)
		return fail(l, RN_EINVAL, "snapshot already loaded");
	if ((rc = rn_tstore_list(st, LOG_DIR, 0, log_entry, &g))) {
		if (rc != RN_ENOMEM)
			rc = fail(l, rc == RN_ENOTFOUND ? rc : RN_EIO, "%s/" LOG_DIR ": %s", root,
				  rn_tstore_errmsg(st));
		goto out;
	}
	if (g.last_exists)
		read_last_checkpoint(l, st);
	if (g.n)
		qsort(g.vers, g.n, sizeof(*g.vers), cmp_i64);
	vers = g.vers;
	n = g.n;
	complete = n > 0 && vers[0] == 0 && vers[n - 1] == (int64_t)n - 1;
	/* the checkpoint _last_checkpoint names if its file is there, else the newest one */
	cv = l->newest_ckpt;
	if (l->last_ckpt >= 0) {
		snprintf(key, sizeof(key), LOG_DIR "/%020lld.checkpoint.parquet",
			 (long long)l->last_ckpt);
		if (rn_tstore_stat(st, key, &e) == 0)
			cv = l->last_ckpt;
	}
	if (cv >= 0 && (from_checkpoint || !complete)) {
		if ((rc = load_checkpoint_file(l, st, cv)))
			goto out;
		while (first < n && vers[first] <= cv)
			first++;
	} else if (n == 0) {
		rc = fail(l, RN_ENOTFOUND, "%s/" LOG_DIR " holds no commits", root);
		goto out;
	} else if (vers[0] != 0 && l->last_ckpt >= 0) {
		rc = fail(l, RN_EDELTA,
			  "versions 0..%lld are missing; _last_checkpoint names "
			  "version %lld, but that checkpoint file is missing",
			  (long long)vers[0] - 1, (long long)l->last_ckpt);
		goto out;
	} else if (vers[0] != 0) {
		rc = fail(l, RN_EDELTA, "versions 0..%lld are missing and there is no checkpoint",
			  (long long)vers[0] - 1);
		goto out;
	}
	for (size_t i = first; i < n && !rc; i++) {
		int64_t want = l->version + 1;
		if (vers[i] != want) {
			rc = fail(l, RN_EDELTA,
				  "version %lld is missing from the log (version %lld "
				  "exists)",
				  (long long)want, (long long)vers[i]);
			break;
		}
		snprintf(key, sizeof(key), LOG_DIR "/%020lld.json", (long long)vers[i]);
		if ((rc = read_all(l, st, key, &text)))
			break;
		if (text.len == 0) {
			rc = fail(l, RN_EDELTA, "version %lld is empty", (long long)vers[i]);
			break;
		}
		rc = rn_dlog_apply(l, vers[i], (const char *)text.data, text.len);
	}
out:
	rn_buf_free(&text);
	rn_free(g.vers);
	return rc;
}

/* ---- Parquet footer ---- */

int rn_dlog_parquet_footer(const uint8_t *tail, size_t len, uint64_t file_size,
			   uint32_t *footer_len, int64_t *num_rows, char *why, size_t cap)
{
	*num_rows = -1;
	*footer_len = 0;
	if (len < 8 || file_size < 12 || len > file_size) {
		snprintf(why, cap, "file too short for a Parquet footer (%llu bytes)",
			 (unsigned long long)file_size);
		return RN_ECORRUPT;
	}
	if (memcmp(tail + len - 4, "PAR1", 4)) {
		snprintf(why, cap, "no PAR1 magic at the end");
		return RN_ECORRUPT;
	}
	const uint8_t *q = tail + len - 8;
	uint32_t fl =
		(uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
	if ((uint64_t)fl + 12 > file_size || fl == 0) {
		snprintf(why, cap, "footer length %u does not fit a %llu-byte file", fl,
			 (unsigned long long)file_size);
		return RN_ECORRUPT;
	}
	*footer_len = fl;
	if (len < (size_t)fl + 8)
		return 0;
	if (rn_pqr_footer_num_rows(tail + len - 8 - fl, fl, num_rows)) {
		*num_rows = -1;
		snprintf(why, cap, "FileMetaData is not valid Thrift compact or has no num_rows");
		return RN_ECORRUPT;
	}
	return 0;
}

int rn_dlog_uri_decode(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	for (const char *p = in; *p; p++) {
		int c = (uint8_t)*p;
		if (c == '%') {
			int h = p[1] ? rn_hexval(p[1]) : -1,
			    lo = h >= 0 && p[2] ? rn_hexval(p[2]) : -1;
			if (h < 0 || lo < 0 || (h | lo) == 0)
				return RN_EINVAL;
			c = h << 4 | lo;
			p += 2;
		}
		if (o + 1 >= cap)
			return RN_EINVAL;
		out[o++] = (char)c;
	}
	if (!cap)
		return RN_EINVAL;
	out[o] = 0;
	return 0;
}
