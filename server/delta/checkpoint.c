/*
 * Checkpoint encoding and decoding; see checkpoint.h. The schema below is the minimal V1
 * checkpoint schema of the Delta protocol (every node optional except map keys, 3-level MAP
 * and LIST). Rows go protocol, metaData, txns, adds, removes, the order Spark uses; readers
 * do not depend on it.
 */
#include "checkpoint.h"

#include <stdio.h>
#include <string.h>

#include "parquet.h"
#include "pqread.h"
#include "rn_err.h"

static const struct rn_pq_col kv_cols[2] = {
	{.name = "key", .type = RN_PQ_STRING},
	{.name = "value", .type = RN_PQ_STRING, .optional = 1},
};
static const struct rn_pq_col elem_col[1] = {
	{.name = "element", .type = RN_PQ_STRING, .optional = 1},
};

enum { T_APP, T_VERSION, T_UPDATED };
static const struct rn_pq_col txn_cols[] = {
	{.name = "appId", .type = RN_PQ_STRING, .optional = 1},
	{.name = "version", .type = RN_PQ_INT64, .optional = 1},
	{.name = "lastUpdated", .type = RN_PQ_INT64, .optional = 1},
};
enum { A_PATH, A_PV, A_SIZE, A_MTIME, A_DC, A_STATS, A_TAGS };
static const struct rn_pq_col add_cols[] = {
	{.name = "path", .type = RN_PQ_STRING, .optional = 1},
	{.name = "partitionValues",
	 .type = RN_PQ_MAP,
	 .optional = 1,
	 .children = kv_cols,
	 .n_children = 2},
	{.name = "size", .type = RN_PQ_INT64, .optional = 1},
	{.name = "modificationTime", .type = RN_PQ_INT64, .optional = 1},
	{.name = "dataChange", .type = RN_PQ_BOOL, .optional = 1},
	{.name = "stats", .type = RN_PQ_STRING, .optional = 1},
	{.name = "tags", .type = RN_PQ_MAP, .optional = 1, .children = kv_cols, .n_children = 2},
};
enum { R_PATH, R_DEL, R_DC, R_EXT, R_PV, R_SIZE };
static const struct rn_pq_col remove_cols[] = {
	{.name = "path", .type = RN_PQ_STRING, .optional = 1},
	{.name = "deletionTimestamp", .type = RN_PQ_INT64, .optional = 1},
	{.name = "dataChange", .type = RN_PQ_BOOL, .optional = 1},
	{.name = "extendedFileMetadata", .type = RN_PQ_BOOL, .optional = 1},
	{.name = "partitionValues",
	 .type = RN_PQ_MAP,
	 .optional = 1,
	 .children = kv_cols,
	 .n_children = 2},
	{.name = "size", .type = RN_PQ_INT64, .optional = 1},
};
static const struct rn_pq_col format_cols[] = {
	{.name = "provider", .type = RN_PQ_STRING, .optional = 1},
	{.name = "options", .type = RN_PQ_MAP, .optional = 1, .children = kv_cols, .n_children = 2},
};
enum { M_ID, M_NAME, M_DESC, M_FORMAT, M_SCHEMA, M_PARTS, M_CONF, M_CREATED };
static const struct rn_pq_col meta_cols[] = {
	{.name = "id", .type = RN_PQ_STRING, .optional = 1},
	{.name = "name", .type = RN_PQ_STRING, .optional = 1},
	{.name = "description", .type = RN_PQ_STRING, .optional = 1},
	{.name = "format",
	 .type = RN_PQ_STRUCT,
	 .optional = 1,
	 .children = format_cols,
	 .n_children = 2},
	{.name = "schemaString", .type = RN_PQ_STRING, .optional = 1},
	{.name = "partitionColumns",
	 .type = RN_PQ_LIST,
	 .optional = 1,
	 .children = elem_col,
	 .n_children = 1},
	{.name = "configuration",
	 .type = RN_PQ_MAP,
	 .optional = 1,
	 .children = kv_cols,
	 .n_children = 2},
	{.name = "createdTime", .type = RN_PQ_INT64, .optional = 1},
};
static const struct rn_pq_col proto_cols[] = {
	{.name = "minReaderVersion", .type = RN_PQ_INT32, .optional = 1},
	{.name = "minWriterVersion", .type = RN_PQ_INT32, .optional = 1},
};
enum { C_TXN, C_ADD, C_REMOVE, C_META, C_PROTO, C_N };
static const struct rn_pq_col ckpt_cols[C_N] = {
	[C_TXN] = {"txn", RN_PQ_STRUCT, 1, 0, 0, 0, txn_cols, 3},
	[C_ADD] = {"add", RN_PQ_STRUCT, 1, 0, 0, 0, add_cols, 7},
	[C_REMOVE] = {"remove", RN_PQ_STRUCT, 1, 0, 0, 0, remove_cols, 6},
	[C_META] = {"metaData", RN_PQ_STRUCT, 1, 0, 0, 0, meta_cols, 8},
	[C_PROTO] = {"protocol", RN_PQ_STRUCT, 1, 0, 0, 0, proto_cols, 2},
};

static int put_s(struct rn_pq_writer *w, size_t col, const char *s)
{
	return s ? rn_pq_put_bytes(w, col, s, strlen(s)) : rn_pq_put_null(w, col);
}

static int put_map(struct rn_pq_writer *w, size_t col, const struct rn_ckpt_kv *kv, size_t n)
{
	int rc = rn_pq_begin(w, col);
	for (size_t i = 0; i < n && !rc; i++) {
		rc = rn_pq_put_bytes(w, 0, kv[i].key, strlen(kv[i].key));
		if (!rc)
			rc = put_s(w, 1, kv[i].value);
	}
	return rc ? rc : rn_pq_end(w);
}

static int row_meta(struct rn_pq_writer *w, const struct rn_ckpt_meta *m)
{
	int rc = rn_pq_begin(w, C_META);
	if (!rc)
		rc = put_s(w, M_ID, m->id);
	if (!rc && m->name)
		rc = put_s(w, M_NAME, m->name);
	if (!rc && m->description)
		rc = put_s(w, M_DESC, m->description);
	if (!rc)
		rc = rn_pq_begin(w, M_FORMAT);
	if (!rc)
		rc = put_s(w, 0, m->provider ? m->provider : "parquet");
	if (!rc)
		rc = put_map(w, 1, m->options, m->noptions);
	if (!rc)
		rc = rn_pq_end(w);
	if (!rc)
		rc = put_s(w, M_SCHEMA, m->schema);
	if (!rc)
		rc = rn_pq_begin(w, M_PARTS);
	for (size_t i = 0; i < m->nparts && !rc; i++)
		rc = put_s(w, 0, m->part_cols[i]);
	if (!rc)
		rc = rn_pq_end(w);
	if (!rc)
		rc = put_map(w, M_CONF, m->config, m->nconfig);
	if (!rc && m->created_ms >= 0)
		rc = rn_pq_put_i64(w, M_CREATED, m->created_ms);
	return rc ? rc : rn_pq_end(w);
}

static int row_file(struct rn_pq_writer *w, const struct rn_ckpt_file *f)
{
	int rc;
	if (!f->is_remove) {
		rc = rn_pq_begin(w, C_ADD);
		if (!rc)
			rc = put_s(w, A_PATH, f->path);
		if (!rc)
			rc = put_map(w, A_PV, f->pv, f->npv);
		if (!rc)
			rc = rn_pq_put_i64(w, A_SIZE, f->size);
		if (!rc)
			rc = rn_pq_put_i64(w, A_MTIME, f->mtime_ms);
		if (!rc)
			rc = rn_pq_put_bool(w, A_DC, f->data_change);
		if (!rc && f->stats)
			rc = put_s(w, A_STATS, f->stats);
		return rc ? rc : rn_pq_end(w);
	}
	rc = rn_pq_begin(w, C_REMOVE);
	if (!rc)
		rc = put_s(w, R_PATH, f->path);
	if (!rc && f->deletion_ms >= 0)
		rc = rn_pq_put_i64(w, R_DEL, f->deletion_ms);
	if (!rc)
		rc = rn_pq_put_bool(w, R_DC, f->data_change);
	if (!rc)
		rc = rn_pq_put_bool(w, R_EXT, f->size >= 0);
	if (!rc && f->size >= 0)
		rc = put_map(w, R_PV, f->pv, f->npv);
	if (!rc && f->size >= 0)
		rc = rn_pq_put_i64(w, R_SIZE, f->size);
	return rc ? rc : rn_pq_end(w);
}

int rn_ckpt_encode(const struct rn_ckpt_snapshot *s, const char *created_by, struct rn_buf *out,
		   size_t *rows)
{
	struct rn_pq_options opt = {.created_by = created_by};
	struct rn_pq_writer *w;
	int rc;

	*rows = 0;
	if (!s->meta || !s->meta->id || !s->meta->schema)
		return RN_EINVAL;
	if ((rc = rn_pq_writer_create(&w, ckpt_cols, C_N, &opt)))
		return rc;
	rc = rn_pq_begin(w, C_PROTO);
	if (!rc)
		rc = rn_pq_put_i32(w, 0, s->min_reader);
	if (!rc)
		rc = rn_pq_put_i32(w, 1, s->min_writer);
	if (!rc)
		rc = rn_pq_end(w);
	if (!rc)
		rc = rn_pq_row_end(w);
	if (!rc)
		rc = row_meta(w, s->meta);
	if (!rc)
		rc = rn_pq_row_end(w);
	for (size_t i = 0; i < s->ntxns && !rc; i++) {
		const struct rn_ckpt_txn *t = &s->txns[i];
		rc = rn_pq_begin(w, C_TXN);
		if (!rc)
			rc = put_s(w, T_APP, t->app_id);
		if (!rc)
			rc = rn_pq_put_i64(w, T_VERSION, t->version);
		if (!rc && t->last_updated >= 0)
			rc = rn_pq_put_i64(w, T_UPDATED, t->last_updated);
		if (!rc)
			rc = rn_pq_end(w);
		if (!rc)
			rc = rn_pq_row_end(w);
	}
	for (int pass = 0; pass < 2 && !rc; pass++)
		for (size_t i = 0; i < s->nfiles && !rc; i++) {
			if (s->files[i]->is_remove != pass)
				continue;
			rc = row_file(w, s->files[i]);
			if (!rc)
				rc = rn_pq_row_end(w);
		}
	if (!rc) {
		*rows = rn_pq_rows(w);
		rc = rn_pq_finish(w, out);
	}
	rn_pq_writer_destroy(w);
	return rc;
}

int rn_ckpt_decode(const uint8_t *data, size_t len, struct rn_buf *lines, char *why, size_t cap)
{
	struct rn_pqr *r;
	int rc = rn_pqr_open(&r, data, len, 0);
	if (!rc)
		rc = rn_pqr_to_json_lines(r, lines);
	if (rc)
		snprintf(why, cap, "%s", rn_pqr_errmsg(r));
	rn_pqr_close(r);
	return rc;
}
