/*
 * Compaction; see compact.h. The writer schema is rebuilt from the first input's Parquet
 * schema (the inverse of the writer's type mapping); every other input must have the same
 * schema node for node, which holds for files one table's materializer wrote. Inputs are
 * mapped one at a time and decoded one row group at a time; the output's row groups are cut
 * below group_bytes uncompressed. So a step's memory is bounded by its options, not by the
 * table: under twice group_bytes (the input row group being decoded, plus the output's open
 * pages) plus the output's compressed bytes (at most about target_bytes). An input with a
 * larger row group (written by something else, or by an older version) is left as it is.
 */
#include "compact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "delta.h"
#include "parquet.h"
#include "pqread.h"
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "tstore.h"

#define DEFAULT_TARGET ((int64_t)128 << 20)
#define DEFAULT_GROUP ((size_t)64 << 20)

struct pick {
	size_t idx;
	int64_t mtime;
};

static int cmp_pick(const void *a, const void *b)
{
	const struct pick *x = a, *y = b;
	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The value of key in f's partition values: 1 found (*v may be NULL: a null partition). */
static int pv_get(const struct rn_ckpt_file *f, const char *key, const char **v)
{
	for (size_t i = 0; i < f->npv; i++)
		if (!strcmp(f->pv[i].key, key)) {
			*v = f->pv[i].value;
			return 1;
		}
	return 0;
}

/* Same partition: the same keys with the same values (in any order). */
static int same_partition(const struct rn_ckpt_file *a, const struct rn_ckpt_file *b)
{
	if (a->npv != b->npv)
		return 0;
	for (size_t i = 0; i < a->npv; i++) {
		const char *v;
		if (!pv_get(b, a->pv[i].key, &v))
			return 0;
		if ((v == NULL) != (a->pv[i].value == NULL) || (v && strcmp(v, a->pv[i].value)))
			return 0;
	}
	return 1;
}

/* Leaves out, largest first, an input larger than all the others together: rewriting a
 * file only once the small ones add up to its size bounds how often a byte is rewritten
 * (log2 of the table's growth, as in a binary counter) instead of rewriting a file that
 * keeps growing at every step. Keeps the order of the rest; returns how many are left. */
static size_t drop_large(const struct rn_ckpt_file *const *files, size_t *idx, size_t out)
{
	while (out > 1) {
		size_t big = 0;
		int64_t total = 0;
		for (size_t i = 0; i < out; i++) {
			total += files[idx[i]]->size;
			if (files[idx[i]]->size > files[idx[big]]->size)
				big = i;
		}
		if (files[idx[big]]->size <= total - files[idx[big]]->size)
			break;
		memmove(&idx[big], &idx[big + 1], (out - big - 1) * sizeof(*idx));
		out--;
	}
	return out;
}

int rn_compact_pick(const struct rn_ckpt_file *const *files, size_t n,
		    const struct rn_compact_options *opt, size_t *idx, size_t *npick)
{
	int64_t target = opt->target_bytes > 0 ? opt->target_bytes : DEFAULT_TARGET;
	size_t min = opt->min_files ? opt->min_files : 10,
	       max = opt->max_files ? opt->max_files : 1000;
	struct pick *p = rn_calloc(n ? n : 1, sizeof(*p));
	size_t np = 0, out = 0;
	*npick = 0;
	if (!p)
		return RN_ENOMEM;
	if (min < 2)
		min = 2; /* rewriting one file into one file gains nothing */
	for (size_t i = 0; i < n; i++) {
		const struct rn_ckpt_file *f = files[i];
		if (f->is_remove || f->size <= 0 || f->size >= target)
			continue;
		p[np].idx = i;
		p[np++].mtime = f->mtime_ms;
	}
	qsort(p, np, sizeof(*p), cmp_pick);
	/* One partition per step (a file holds one partition's rows): partitions are tried in
	 * the order of their oldest small file; the first with enough small files is taken.
	 * A candidate is marked used (idx = n) once its partition has been tried. */
	for (size_t g = 0; g < np && !out; g++) {
		if (p[g].idx == n)
			continue;
		const struct rn_ckpt_file *lead = files[p[g].idx];
		int64_t total = 0;
		int full = 0;
		for (size_t i = g; i < np; i++) {
			if (p[i].idx == n || !same_partition(lead, files[p[i].idx]))
				continue;
			int64_t sz = files[p[i].idx]->size;
			if (!full && out < max && (!out || total + sz <= target)) {
				total += sz;
				idx[out++] = p[i].idx;
			} else {
				full = 1;
			}
			p[i].idx = n;
		}
		out = drop_large(files, idx, out);
		if (out < min)
			out = 0;
	}
	rn_free(p);
	*npick = out;
	return 0;
}

/* ---- schema mapping ---- */

static void free_cols(struct rn_pq_col *c, size_t n)
{
	if (!c)
		return;
	for (size_t i = 0; i < n; i++)
		free_cols((struct rn_pq_col *)c[i].children, c[i].n_children);
	rn_free(c);
}

/* The writer type of leaf n, or -1. */
static int leaf_type(const struct rn_pqr_node *n)
{
	int dec = n->logical == 5 || n->converted == 5;
	switch (n->physical) {
	case RN_PQR_BOOLEAN: return n->logical || n->converted >= 0 ? -1 : RN_PQ_BOOL;
	case RN_PQR_FLOAT: return n->logical || n->converted >= 0 ? -1 : RN_PQ_FLOAT;
	case RN_PQR_DOUBLE: return n->logical || n->converted >= 0 ? -1 : RN_PQ_DOUBLE;
	case RN_PQR_BYTE_ARRAY:
		if (n->logical == 1 || n->converted == 0)
			return RN_PQ_STRING;
		return n->logical || n->converted >= 0 ? -1 : RN_PQ_BINARY;
	case RN_PQR_FLBA: return dec ? RN_PQ_DECIMAL : -1;
	case RN_PQR_INT64:
		if (dec)
			return RN_PQ_DECIMAL;
		if (n->logical == 8 || n->converted == 10) {
			if (n->logical == 8 && n->ts_unit != 2)
				return -1;
			return n->logical == 8 && !n->ts_utc ? RN_PQ_TIMESTAMP_NTZ
							     : RN_PQ_TIMESTAMP;
		}
		if ((n->logical == 10 && n->int_bits == 64) || (!n->logical && n->converted < 0))
			return RN_PQ_INT64;
		return -1;
	case RN_PQR_INT32:
		if (dec)
			return RN_PQ_DECIMAL;
		if (n->logical == 6 || n->converted == 6)
			return RN_PQ_DATE;
		if ((n->logical == 10 && n->int_bits == 16) || n->converted == 16)
			return RN_PQ_INT16;
		if ((n->logical == 10 && n->int_bits == 8) || n->converted == 15)
			return RN_PQ_INT8;
		if ((n->logical == 10 && n->int_bits == 32) || (!n->logical && n->converted < 0))
			return RN_PQ_INT32;
		return -1;
	default: return -1;
	}
}

/* Fills c (the writer node) from reader node ni. */
static int map_node(const struct rn_pqr_node *nodes, size_t ni, struct rn_pq_col *c, char *why,
		    size_t cap)
{
	const struct rn_pqr_node *n = &nodes[ni];
	c->name = n->name;
	c->optional = n->repetition == 1;
	if (n->kind == RN_PQR_LEAF) {
		if ((c->type = leaf_type(n)) < 0) {
			snprintf(why, cap, "column %s: a Parquet type this writer cannot reproduce",
				 n->name);
			return RN_ENOTSUP;
		}
		if (c->type == RN_PQ_DECIMAL) {
			c->precision = n->precision;
			c->scale = n->scale;
		}
		return 0;
	}
	size_t first = n->first_child, cnt = n->nchildren;
	if (n->kind == RN_PQR_LIST || n->kind == RN_PQR_MAP) {
		first = nodes[n->first_child].first_child;
		cnt = nodes[n->first_child].nchildren;
		c->type = n->kind == RN_PQR_LIST ? RN_PQ_LIST : RN_PQ_MAP;
		if (c->type == RN_PQ_MAP && cnt != 2) {
			snprintf(why, cap, "column %s: a map without values", n->name);
			return RN_ENOTSUP;
		}
	} else {
		c->type = RN_PQ_STRUCT;
	}
	struct rn_pq_col *ch = rn_calloc(cnt, sizeof(*ch));
	if (!ch)
		return RN_ENOMEM;
	c->children = ch;
	c->n_children = cnt;
	size_t k = 0;
	for (size_t i = first; k < cnt; i = nodes[i].end, k++) {
		int rc = map_node(nodes, i, &ch[k], why, cap);
		if (rc)
			return rc;
	}
	return 0;
}

static int same_schema(const struct rn_pqr_node *a, size_t na, const struct rn_pqr_node *b,
		       size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++) {
		const struct rn_pqr_node *x = &a[i], *y = &b[i];
		if ((i && strcmp(x->name, y->name)) || x->kind != y->kind ||
		    x->physical != y->physical || x->repetition != y->repetition ||
		    x->converted != y->converted || x->logical != y->logical ||
		    x->ts_utc != y->ts_utc || x->ts_unit != y->ts_unit ||
		    x->int_bits != y->int_bits || x->scale != y->scale ||
		    x->precision != y->precision || x->type_length != y->type_length ||
		    x->nchildren != y->nchildren)
			return 0;
	}
	return 1;
}

/* ---- rows: reader events into writer calls ---- */

/* What a level entry costs a reader on top of its value, as rn_pqr_group_bytes counts it. */
#define ENTRY_BYTES (2 * (2 + sizeof(struct rn_pqr_value)))

struct wsink {
	struct rn_pq_writer *w;
	const struct rn_pqr_node *nodes;
	int64_t rows;
	size_t raw, cut; /* the open row group's bytes to a reader; it is closed at cut */
};

static int w_begin(void *c, const struct rn_pqr_node *n)
{
	struct wsink *s = c;
	return rn_pq_begin(s->w, n->index);
}

static int w_end(void *c, const struct rn_pqr_node *n)
{
	(void)n;
	struct wsink *s = c;
	return rn_pq_end(s->w);
}

static int w_null(void *c, const struct rn_pqr_node *n)
{
	struct wsink *s = c;
	s->raw += ENTRY_BYTES;
	return rn_pq_put_null(s->w, n->index);
}

static int w_value(void *c, const struct rn_pqr_node *n, const struct rn_pqr_value *v)
{
	struct wsink *s = c;
	int t = leaf_type(n);
	s->raw += (t == RN_PQ_STRING || t == RN_PQ_BINARY ? v->len + 4 : 8) + ENTRY_BYTES;
	switch (t) {
	case RN_PQ_STRING:
	case RN_PQ_BINARY: return rn_pq_put_bytes(s->w, n->index, v->p, v->len);
	case RN_PQ_BOOL: return rn_pq_put_bool(s->w, n->index, (int)v->i);
	case RN_PQ_FLOAT: return rn_pq_put_float(s->w, n->index, (float)v->d);
	case RN_PQ_DOUBLE: return rn_pq_put_double(s->w, n->index, v->d);
	case RN_PQ_INT32:
	case RN_PQ_INT16:
	case RN_PQ_INT8:
	case RN_PQ_DATE: return rn_pq_put_i32(s->w, n->index, (int32_t)v->i);
	case RN_PQ_DECIMAL:
		if (n->physical == RN_PQR_FLBA) {
			uint8_t be[16];
			if (v->len == 0 || v->len > 16)
				return RN_ENOTSUP;
			memset(be, (v->p[0] & 0x80) ? 0xff : 0, 16);
			memcpy(be + 16 - v->len, v->p, v->len);
			return rn_pq_put_decimal(s->w, n->index, be);
		}
		return rn_pq_put_i64(s->w, n->index, v->i);
	default: return rn_pq_put_i64(s->w, n->index, v->i);
	}
}

static int w_row_end(void *c)
{
	struct wsink *s = c;
	int rc;
	s->rows++;
	if ((rc = rn_pq_row_end(s->w)))
		return rc;
	if (s->raw < s->cut)
		return 0;
	s->raw = 0;
	return rn_pq_end_row_group(s->w);
}

/* ---- the step ---- */

/* A data file's path in the log, decoded to its relative path on disk, which must stay in
 * the table directory. (log.c has a decoder too; the writer side deliberately shares no
 * code with that second-opinion reader.) */
static int uri_decode(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	for (const char *p = in; *p; p++) {
		int c = (uint8_t)*p;
		if (c == '%') {
			unsigned x;
			if (!p[1] || !p[2] || sscanf(p + 1, "%2x", &x) != 1 || !x)
				return RN_EINVAL;
			c = (int)x;
			p += 2;
		}
		if (o + 1 >= cap)
			return RN_EINVAL;
		out[o++] = (char)c;
	}
	out[o] = 0;
	return o && out[0] != '/' && !strstr(out, "..") ? 0 : RN_EINVAL;
}

/* {"key":"value","k2":null} of f's partition values into out (NUL-terminated). */
static int pv_json(struct rn_buf *out, const struct rn_ckpt_file *f)
{
	int rc = rn_buf_append_u8(out, '{');
	for (size_t i = 0; i < f->npv && !rc; i++) {
		if (i)
			rc = rn_buf_append_u8(out, ',');
		rc = rc ? rc : rn_json_put_str(out, f->pv[i].key, strlen(f->pv[i].key));
		rc = rc ? rc : rn_buf_append_u8(out, ':');
		if (!rc && f->pv[i].value)
			rc = rn_json_put_str(out, f->pv[i].value, strlen(f->pv[i].value));
		else if (!rc)
			rc = rn_buf_append_str(out, "null");
	}
	rc = rc ? rc : rn_buf_append_u8(out, '}');
	return rc ? rc : rn_buf_append_u8(out, 0);
}

int rn_compact_step(struct rn_delta *d, const struct rn_compact_options *opt,
		    struct rn_compact_result *res)
{
	const struct rn_ckpt_file *const *files;
	size_t n, *idx = NULL, npick, nused = 0;
	char **inputs = NULL, *stats = NULL;
	struct rn_pq_col *cols = NULL;
	size_t ncols = 0;
	struct rn_pqr_node *schema = NULL; /* copy of the first input's nodes (names shared) */
	struct rn_pqr *first = NULL;
	struct rn_pq_writer *w = NULL;
	struct rn_buf out = {.max = (size_t)1 << 30};
	/* the first input's view: its reader's node names back the writer schema */
	struct rn_tstore_map firstmap = {0};
	struct rn_buf pv = {0};
	size_t group = opt->group_bytes ? opt->group_bytes : DEFAULT_GROUP;
	size_t carry = 0; /* the output's open row group's value bytes, across inputs */
	size_t nschema = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	res->version = -1;
	if ((rc = rn_delta_refresh(d))) {
		snprintf(res->why, sizeof(res->why), "%s", rn_delta_errmsg(d));
		return rc;
	}
	files = rn_delta_files(d, &n);
	if (!(idx = rn_calloc(n ? n : 1, sizeof(*idx))) ||
	    !(inputs = rn_calloc(n ? n : 1, sizeof(*inputs)))) {
		rc = RN_ENOMEM;
		goto out;
	}
	if ((rc = rn_compact_pick(files, n, opt, idx, &npick))) {
		snprintf(res->why, sizeof(res->why), "out of memory");
		goto out;
	}
	if (npick == 0) {
		rc = RN_EAGAIN;
		snprintf(res->why, sizeof(res->why), "nothing to compact");
		goto out;
	}
	for (size_t k = 0; k < npick; k++) {
		char rel[4096];
		struct rn_tstore_map mp;
		struct rn_pqr *r = NULL;
		const struct rn_ckpt_file *f = files[idx[k]];
		if (uri_decode(f->path, rel, sizeof(rel))) {
			rn_log_warn("compact", "%s: skipping %s: unusual path", rn_delta_dir(d),
				    f->path);
			continue;
		}
		/* data files are immutable once written (vacuum only deletes them, which
		 * leaves a mapping valid) */
		if ((rc = rn_tstore_map(rn_delta_store(d), rel, &mp))) {
			snprintf(res->why, sizeof(res->why), "%s: cannot read: %s", f->path,
				 rn_tstore_errmsg(rn_delta_store(d)));
			rc = rc == RN_ENOTFOUND || rc == RN_EINVAL ? RN_EIO : rc;
			goto out;
		}
		if (!mp.len) { /* an empty file is no Parquet: as an unreadable one */
			rc = RN_EIO;
			snprintf(res->why, sizeof(res->why), "%s: empty", f->path);
			goto out;
		}
		/* room for one row group of the largest size taken: twice the estimate, which
		 * leaves out dictionaries and index arrays */
		if ((rc = rn_pqr_open(&r, mp.data, mp.len, 2 * group))) {
			snprintf(res->why, sizeof(res->why), "%s: %s", f->path, rn_pqr_errmsg(r));
			rn_pqr_close(r);
			rn_tstore_unmap(&mp);
			if (rc == RN_ENOMEM)
				goto out;
			rn_log_warn("compact", "%s: skipping %s: %s", rn_delta_dir(d), f->path,
				    res->why);
			continue;
		}
		if (rn_pqr_group_bytes(r) > group) {
			rn_log_info(
				"compact",
				"%s: leaving %s as it is: a row group of ~%zu MiB uncompressed, "
				"larger than the %zu MiB a step decodes",
				rn_delta_dir(d), f->path, rn_pqr_group_bytes(r) >> 20, group >> 20);
			rn_pqr_close(r);
			rn_tstore_unmap(&mp);
			continue;
		}
		size_t nn;
		const struct rn_pqr_node *nodes = rn_pqr_nodes(r, &nn);
		if (!w) {
			struct rn_pq_col root = {0};
			res->why[0] = 0;
			rc = map_node(nodes, 0, &root, res->why, sizeof(res->why));
			cols = (struct rn_pq_col *)root.children;
			ncols = root.n_children;
			/* no row or byte target: the sink cuts row groups by their raw bytes */
			struct rn_pq_options po = {.row_group_bytes = SIZE_MAX};
			if (!rc)
				rc = rn_pq_writer_create(&w, cols, ncols, &po);
			if (rc) {
				if (!res->why[0])
					snprintf(res->why, sizeof(res->why),
						 "cannot build the writer: %s", rn_strerror(rc));
				rn_log_info("compact", "%s: not compacted: %s", rn_delta_dir(d),
					    res->why);
				rn_pqr_close(r);
				rn_tstore_unmap(&mp);
				rc = rc == RN_ENOMEM ? rc : RN_ENOTSUP;
				goto out;
			}
			/* keep the first reader (node names back the writer schema) */
			first = r;
			firstmap = mp;
			schema = (struct rn_pqr_node *)nodes;
			nschema = nn;
		} else if (!same_schema(schema, nschema, nodes, nn)) {
			rn_log_warn("compact", "%s: skipping %s: its schema differs",
				    rn_delta_dir(d), f->path);
			rn_pqr_close(r);
			rn_tstore_unmap(&mp);
			continue;
		}
		static const struct rn_pqr_sink sink = {w_begin, w_end, w_null, w_value, w_row_end};
		/* 3/4 of group in values: the output's row groups, levels and all, stay below it */
		struct wsink ws = {w, nodes, 0, carry, group / 4 * 3};
		rc = rn_pqr_read(r, &sink, &ws);
		if (rc) {
			snprintf(res->why, sizeof(res->why), "%s: %s", f->path,
				 rn_pqr_errmsg(r)[0] ? rn_pqr_errmsg(r) : rn_strerror(rc));
			rn_pq_row_abort(w);
		}
		if (r != first) {
			rn_pqr_close(r);
			rn_tstore_unmap(&mp);
		}
		if (rc)
			goto out; /* the writer may hold part of that file: start over later */
		res->rows += ws.rows;
		carry = ws.raw;
		res->bytes += f->size;
		inputs[nused++] = f->path;
	}
	if (nused < 2) {
		rc = RN_EAGAIN;
		snprintf(res->why, sizeof(res->why), "fewer than 2 readable inputs");
		goto out;
	}
	if ((rc = rn_pq_finish(w, &out))) {
		snprintf(res->why, sizeof(res->why), "parquet: %s", rn_strerror(rc));
		goto out;
	}
	stats = rn_pq_delta_stats(w, cols, ncols, res->rows);
	/* the new file goes where its inputs are: their partition's directory (the log path's
	 * directory part is already URI-encoded; the file's own name needs no encoding) */
	const struct rn_ckpt_file *f0 = files[idx[0]];
	const char *slash = strrchr(f0->path, '/'), *base;
	char rel[4096], name[4400];
	int64_t mtime;
	if (slash) {
		if ((rc = uri_decode(f0->path, rel, sizeof(rel)))) {
			snprintf(res->why, sizeof(res->why), "%s: unusual path", f0->path);
			goto out;
		}
		*strrchr(rel, '/') = 0;
	}
	if ((rc = rn_delta_write_file_in(d, slash ? rel : NULL, out.data, out.len, name,
					 sizeof(name), &mtime))) {
		snprintf(res->why, sizeof(res->why), "%s", rn_delta_errmsg(d));
		goto out;
	}
	base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
	int plen = slash ? (int)(slash - f0->path + 1) : 0;
	if (snprintf(res->path, sizeof(res->path), "%.*s%s", plen, f0->path, base) >=
		    (int)sizeof(res->path) ||
	    (f0->npv && (rc = pv_json(&pv, f0)))) {
		rc = rc ? rc : RN_EINVAL;
		snprintf(res->why, sizeof(res->why), "the new file's path does not fit");
		rn_tstore_delete(rn_delta_store(d), name);
		goto out;
	}
	struct rn_delta_add add = {res->path, (int64_t)out.len, mtime, stats,
				   f0->npv ? (const char *)pv.data : NULL};
	/* the input paths point into the snapshot, which the commit replaces: copy them (on a
	 * failure part way, the ones not copied still belong to the snapshot: not freed) */
	size_t copied = 0;
	while (copied < nused && !rc) {
		char *c = rn_strdup(inputs[copied]);
		if (c)
			inputs[copied++] = c;
		else
			rc = RN_ENOMEM;
	}
	if (!rc)
		rc = rn_delta_commit_rewrite(d, (const char *const *)inputs, nused, &add,
					     &res->version);
	if (rc) {
		snprintf(res->why, sizeof(res->why), "%s",
			 rc == RN_ENOMEM ? "out of memory" : rn_delta_errmsg(d));
		/* never committed (a rewrite of unknown outcome found in the log is a success):
		 * nobody references it */
		rn_tstore_delete(rn_delta_store(d), name);
	} else {
		res->nfiles = nused;
	}
	for (size_t k = 0; k < copied; k++)
		rn_free(inputs[k]);
	nused = 0;
out:
	rn_pq_writer_destroy(w);
	rn_pqr_close(first);
	rn_tstore_unmap(&firstmap);
	free_cols(cols, ncols);
	rn_free(stats);
	rn_buf_free(&out);
	rn_buf_free(&pv);
	rn_free(idx);
	rn_free(inputs);
	return rc;
}
