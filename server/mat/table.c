/*
 * The table registry: declared tables (rn_mat_define_table: a schema and its partitioning,
 * checked once) and open tables (m->tables), found by name and opened on first use from
 * their Delta log, which says what a table is (a declared typed table must match it; an
 * undeclared one with another schema than the envelope is typed by its log). A typed table
 * opens together with its dead-letter table as one step (open_table): both registered, or
 * neither. It builds each table's Parquet column tree and writer; it decodes no record and
 * commits nothing. Tables live from their first use to rn_mat_destroy, on the loop thread.
 */
#include "mat_int.h"

#include <stdio.h>
#include <string.h>

#include "delta.h"
#include "partition.h"
#include "protorow.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "tstore.h"

static const struct table_def *find_def(const struct rn_mat *m, const char *name);
static char *typed_schema_json(const struct rn_schema *sc);
static int build_cols(const struct rn_field *parent, struct rn_pq_col **out);
static int has_type(const struct rn_field *f, enum rn_type t);
static int setup_partitions(struct rn_mat *m, struct mat_table *t, const struct table_def *def);

const struct rn_pq_col rn_mat__envelope_cols[C_COUNT] = {
	[C_DEVICE] = {.name = "device_id", .type = RN_PQ_STRING, .optional = 1},
	[C_SOURCE] = {.name = "source", .type = RN_PQ_STRING, .optional = 1},
	[C_TOPIC] = {.name = "topic", .type = RN_PQ_STRING, .optional = 1},
	[C_EVENT_TIME] = {.name = "event_time", .type = RN_PQ_TIMESTAMP, .optional = 1},
	[C_RECEIVE_TIME] = {.name = "receive_time", .type = RN_PQ_TIMESTAMP, .optional = 1},
	[C_STREAM] = {.name = "stream_id", .type = RN_PQ_STRING},
	[C_SEQ] = {.name = "seq", .type = RN_PQ_INT64, .optional = 1},
	/* high-cardinality text: no dictionary (it would fill up and be thrown away per row
	 * group); the identity columns above keep theirs */
	[C_PAYLOAD] = {.name = "payload",
		       .type = RN_PQ_STRING,
		       .optional = 1,
		       .dict = RN_PQ_DICT_OFF},
	[C_PAYLOAD_RAW] = {.name = "payload_raw",
			   .type = RN_PQ_BINARY,
			   .optional = 1,
			   .dict = RN_PQ_DICT_OFF},
	[C_ATTRS] = {.name = "attributes",
		     .type = RN_PQ_STRING,
		     .optional = 1,
		     .dict = RN_PQ_DICT_OFF},
	[C_FLAGS] = {.name = "flags", .type = RN_PQ_INT32, .optional = 1},
	/* last, so a table created before it (its log's schema stops at flags) is written with
	 * the first C_CLOCK columns: see rn_mat__get_table */
	[C_CLOCK] = {.name = "clock_corrected", .type = RN_PQ_BOOL, .optional = 1},
};

static const char *delta_type(enum rn_pq_type t)
{
	switch (t) {
	case RN_PQ_STRING: return "string";
	case RN_PQ_BINARY: return "binary";
	case RN_PQ_INT64: return "long";
	case RN_PQ_INT32: return "integer";
	case RN_PQ_TIMESTAMP: return "timestamp";
	case RN_PQ_DOUBLE: return "double";
	case RN_PQ_BOOL: return "boolean";
	}
	return "string";
}

/* The envelope schema's JSON with its first n columns (C_COUNT: today's). */
static char *schema_json(size_t n)
{
	struct rn_buf b = {0};
	/* every append checked: a schema missing a column would be created for good */
	int rc = rn_buf_append_str(&b, "{\"type\":\"struct\",\"fields\":[");
	for (size_t i = 0; i < n && !rc; i++)
		rc = rn_buf_printf(&b,
				   "%s{\"name\":\"%s\",\"type\":\"%s\",\"nullable\":%s,"
				   "\"metadata\":{}}",
				   i ? "," : "", rn_mat__envelope_cols[i].name,
				   delta_type(rn_mat__envelope_cols[i].type),
				   rn_mat__envelope_cols[i].optional ? "true" : "false");
	if (rc || rn_buf_append_str(&b, "]}") || rn_buf_append_u8(&b, 0)) {
		rn_buf_free(&b);
		return NULL;
	}
	return (char *)b.data;
}

void rn_mat__free_streams(struct pending_stream *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rn_free(s[i].id);
	rn_free(s);
}

static void free_cols(struct rn_pq_col *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++)
		free_cols((struct rn_pq_col *)c[i].children, c[i].n_children);
	rn_free(c);
}

void rn_mat__free_files(struct mat_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rn_buf_free(&f[i].data);
		rn_free(f[i].path);
		rn_free(f[i].dir);
		rn_free(f[i].pv);
		rn_free(f[i].stats);
	}
	rn_free(f);
}

void rn_mat__free_part_list(struct mat_part *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rn_pq_writer_destroy(p[i].pq);
		rn_free(p[i].pv);
		rn_free(p[i].dir);
	}
	rn_free(p);
}

void rn_mat__free_parts(struct mat_table *t)
{
	rn_mat__free_part_list(t->parts, t->nparts);
	t->parts = NULL;
	t->nparts = 0;
}

void rn_mat__table_free(struct mat_table *t)
{
	if (!t)
		return;
	rn_mat__free_parts(t);
	rn_mat__free_files(t->spilled, t->nspilled);
	rn_mat__free_files(t->rfiles, t->nrfiles);
	for (size_t i = 0; i < t->nkeys; i++)
		rn_free(t->keys[i]);
	rn_free(t->keys);
	rn_free(t->keyof);
	rn_free(t->colmap);
	rn_free(t->dcols); /* its children belong to cols */
	rn_free(t->top);
	rn_free(t->top_set);
	rn_free(t->dead_latest);
	rn_delta_close(t->delta);
	rn_delta_close(t->fdelta);
	rn_pq_writer_destroy(t->pq);
	rn_pq_writer_destroy(t->fpq);
	rn_mat__free_part_list(t->fparts, t->nfparts);
	rn_mat__free_streams(t->streams, t->nstreams);
	rn_mat__free_streams(t->retry_streams, t->retry_nstreams);
	rn_buf_free(&t->retry_file);
	rn_free(t->retry_stats);
	rn_free(t->retry_path);
	free_cols(t->cols, t->ncols);
	for (size_t i = 0; i < t->nplans; i++) {
		rn_protorow_plan_free(t->plans[i].plan);
		rn_free(t->plans[i].stream);
	}
	rn_free(t->plans);
	rn_strmap_free(&t->plan_ids);
	rn_free(t->name);
	rn_free(t->dir);
	rn_free(t);
}

void rn_mat__def_free(struct table_def *d)
{
	for (size_t k = 0; k < d->nparts; k++)
		rn_free(d->parts[k]);
	rn_free(d->parts);
	rn_free(d->derive);
	rn_free(d->name);
	rn_schema_free(d->schema);
	rn_free(d->schema);
}

/* Forgets the declaration of a table no open table uses (a create that failed). */
void rn_mat__drop_def(struct rn_mat *m, const char *name)
{
	for (size_t i = 0; i < m->ndefs; i++) {
		if (strcmp(m->defs[i].name, name))
			continue;
		for (size_t k = 0; k < m->ntables; k++)
			if (m->tables[k]->schema == m->defs[i].schema)
				return;
		rn_mat__def_free(&m->defs[i]);
		m->defs[i] = m->defs[--m->ndefs];
		return;
	}
}

static char *table_dir(const struct rn_mat *m, const char *name)
{
	struct rn_buf b = {0};
	/* every append checked: a path missing its root would name another directory */
	int rc = rn_buf_printf(&b, "%s/", m->root);
	for (const char *p = name; *p && !rc; p++)
		rc = rn_buf_append_u8(&b, *p == '.' ? '/' : (uint8_t)*p);
	if (rc || rn_buf_append_u8(&b, 0)) {
		rn_buf_free(&b);
		return NULL;
	}
	return (char *)b.data;
}

int rn_mat__delta_open(struct rn_delta **out, const char *root, const struct rn_tstore_config *cfg,
		       const char *schema_json, const char *const *parts, size_t nparts)
{
	struct rn_tstore *st;
	char err[256];
	int rc;

	*out = NULL;
	if ((rc = rn_tstore_open(&st, root, cfg, err, sizeof(err)))) {
		if (rc != RN_ENOMEM)
			rn_log_error("mat", "table store %s: %s", root, err);
		return rc;
	}
	/* the handle owns the store from here, also when the open fails */
	return rn_delta_open_store_part(out, st, schema_json, parts, nparts, NULL);
}

/* The newest modification time of the log's commit files ([0]) and of any log file ([1]). */
static int newest_mtime(void *ctx, const struct rn_tstore_entry *e)
{
	int64_t *newest = ctx;
	size_t n = strlen(e->key);
	if (n > 5 && !strcmp(e->key + n - 5, ".json") && e->mtime_ms > newest[0])
		newest[0] = e->mtime_ms;
	if (e->mtime_ms > newest[1])
		newest[1] = e->mtime_ms;
	return 0;
}

int64_t rn_mat__commit_ms(const struct mat_table *t)
{
	int64_t ms = t->delta ? rn_delta_commit_time(t->delta) : -1;
	if (ms > 0)
		return ms;
	if (!t->delta)
		return 0;
	/* opened from a checkpoint with no commit after it, or a commit without commitInfo:
	 * the newest commit file's time is the nearest thing (a checkpoint is written after its
	 * commit, so any log file only when no commit file is left; an unreadable listing:
	 * unknown) */
	int64_t newest[2] = {0, 0};
	if (rn_tstore_list(rn_delta_store(t->delta), "_delta_log", 0, newest_mtime, newest))
		return 0;
	return newest[0] ? newest[0] : newest[1];
}

int rn_mat__delta_exists(const char *root, const struct rn_tstore_config *cfg)
{
	struct rn_tstore *st;
	char err[256];
	int rc;

	if ((rc = rn_tstore_open(&st, root, cfg, err, sizeof(err))))
		return rc;
	rc = rn_delta_exists_store(st);
	rn_tstore_close(st);
	return rc;
}

/* Finds the table, opening (and with create, creating) it on first use; the step that
 * rn_mat__get_table undoes on failure. */
static int get_table(struct rn_mat *m, const char *name, int create, struct mat_table **out)
{
	struct mat_table *t;
	char *schema = NULL;
	int rc;

	*out = NULL;
	if (rn_table_name_check(name))
		return rn_mat__fail(m, RN_EINVAL, "invalid table name");
	for (size_t i = 0; i < m->ntables; i++) {
		if (!strcmp(m->tables[i]->name, name)) {
			*out = m->tables[i];
			return 0;
		}
	}
	const struct table_def *def = find_def(m, name);
	char dname[400];
	snprintf(dname, sizeof(dname), "%s_dead_letters", name);
	if (def && create) {
		/* A typed table is created only once its dead-letter table exists: a create
		 * that fails leaves no typed table behind, and a retry starts over. */
		struct mat_table *dlq;
		if ((rc = rn_mat__get_table(m, dname, 1, &dlq)))
			return rc;
		def = find_def(m, name); /* that open may have declared tables (m->defs moved) */
	}
	if (!(t = rn_calloc(1, sizeof(*t))) || !(t->name = rn_strdup(name)) ||
	    !(t->dir = table_dir(m, name)) ||
	    !(schema = def ? typed_schema_json(def->schema) : schema_json(C_COUNT))) {
		rn_mat__table_free(t);
		rn_free(schema);
		return RN_ENOMEM;
	}
	t->store = m->store;
	t->retry_max_age_ms = m->retry_max_age_ms;
	rc = rn_mat__delta_open(&t->delta, t->dir, m->store, create ? schema : NULL,
				def ? (const char *const *)def->parts : NULL,
				def ? def->nparts : 0);
	if (rc) {
		rn_free(schema);
		if (rc != RN_ENOTFOUND)
			rn_mat__fail(m, rc, "table %s: cannot open its Delta log", name);
		else
			rn_mat__fail(m, rc, "table %s does not exist", name);
		rn_mat__table_free(t);
		return rc;
	}
	t->commit_ms = rn_mat__commit_ms(t);
	/* maintenance clocks start now: the first compaction and vacuum one interval after
	 * the table is opened, not at its first flush */
	t->maint.last_compact_ms = t->maint.last_vacuum_ms = rn_mono_us() / 1000;
	/* The log says what the table is: a typed table declared in the config must match it,
	 * and an undeclared table with another schema than the envelope is typed by its log
	 * (created from a stream's descriptor, or by another writer). */
	const char *disk = rn_delta_schema(t->delta);
	t->env_ncols = C_COUNT;
	if (!def && disk && strcmp(disk, schema)) {
		/* an envelope table (or dead-letter table) from before clock_corrected: it stays
		 * an envelope table and is written without that column */
		char *old = schema_json(C_CLOCK);
		if (!old) {
			rn_free(schema);
			rn_mat__table_free(t);
			return RN_ENOMEM;
		}
		if (!strcmp(disk, old))
			t->env_ncols = C_CLOCK;
		rn_free(old);
	}
	if (disk && strcmp(disk, schema) && t->env_ncols == C_COUNT) {
		if (def) {
			rn_free(schema);
			rn_mat__table_free(t);
			return rn_mat__fail(m, RN_ECONFLICT,
					    "table %s exists with another schema than "
					    "the config declares",
					    name);
		}
		struct rn_schema *sc = rn_calloc(1, sizeof(*sc));
		char why[300] = "out of memory";
		if (!sc || (rc = rn_schema_from_json(sc, disk, strlen(disk), why, sizeof(why))) ||
		    ((rc = rn_mat_define_table(m, name, sc)) &&
		     snprintf(why, sizeof(why), "%s", m->err) >= 0)) {
			if (sc) {
				rn_schema_free(sc);
				rn_free(sc);
			}
			rn_free(schema);
			rn_mat__table_free(t);
			return rn_mat__fail(m, rc ? rc : RN_ENOMEM,
					    "table %s: its schema cannot be written "
					    "by this server: %s",
					    name, why);
		}
		def = find_def(m, name);
	}
	rn_free(schema);
	if (def) {
		t->schema = def->schema;
		t->ncols = def->schema->root.nfields;
		t->derive = def->derive;
		if ((rc = build_cols(&def->schema->root, &t->cols)) ||
		    (rc = setup_partitions(m, t, def))) {
			rn_mat__table_free(t);
			return rc;
		}
	} else {
		size_t nlp;
		rn_delta_partition_columns(t->delta, &nlp);
		if (nlp) {
			rn_mat__table_free(t);
			return rn_mat__fail(m, RN_ENOTSUP,
					    "table %s is partitioned; this server writes "
					    "partitioned tables only with a typed schema",
					    name);
		}
	}
	struct rn_pq_options po = {.created_by = m->created_by,
				   .zstd_level = m->zstd_level,
				   .page_submit = m->page_submit,
				   .page_ctx = m->page_ctx};
	if (!t->nkeys &&
	    (rc = rn_pq_writer_create(&t->pq, t->cols ? t->cols : rn_mat__envelope_cols,
				      t->cols ? t->ncols : t->env_ncols, &po))) {
		rn_mat__table_free(t);
		return rn_mat__fail(m, rc, "table %s: cannot set up its Parquet schema", name);
	}
	/* A typed table is registered only with its dead-letter table (an envelope table)
	 * open: a record that does not fit always has somewhere to go. */
	if (def && (rc = rn_mat__get_table(m, dname, 1, &t->dlq))) {
		rn_mat__table_free(t);
		return rc;
	}
	if (rn_grow(&m->tables, &m->captables, m->ntables, sizeof(*m->tables), 8, SIZE_MAX)) {
		rn_mat__table_free(t);
		return RN_ENOMEM;
	}
	if (t->dlq)
		t->dlq->is_dlq = 1;
	m->tables[m->ntables++] = t;
	*out = t;
	return 0;
}

/* Undoes a failed open: closes the tables it registered (the dead-letter table of a typed
 * table: opened just now, so without rows, flush, jobs or debts) and drops the declarations
 * it made (a table typed by its log), newest first. Nothing else refers to them yet. */
static void close_since(struct rn_mat *m, size_t ntables, size_t ndefs)
{
	while (m->ntables > ntables)
		rn_mat__table_free(m->tables[--m->ntables]);
	while (m->ndefs > ndefs)
		rn_mat__def_free(&m->defs[--m->ndefs]);
}

/*
 * One step (contract in mat_int.h): a typed table and its dead-letter table are registered
 * together or not at all. get_table opens the dead-letter table first when it creates (so
 * that on disk a typed table never exists without it) and again last (registered before
 * the typed table, which refers to it); whatever fails after that first open would leave it
 * registered with no typed table holding it, so it is closed here, together with any
 * declaration the step made. Its log stays on disk (durable), and a retry opens it again.
 */
int rn_mat__get_table(struct rn_mat *m, const char *name, int create, struct mat_table **out)
{
	size_t ntables = m->ntables, ndefs = m->ndefs;
	int rc = get_table(m, name, create, out);
	if (rc)
		close_since(m, ntables, ndefs);
	return rc;
}

/* A typed table's partitioning, from its log (which the config must agree with when it
 * names partition columns), and its top-level value slots for derived columns. */
static int setup_partitions(struct rn_mat *m, struct mat_table *t, const struct table_def *def)
{
	size_t n, nc = t->ncols;
	char *const *lp = rn_delta_partition_columns(t->delta, &n);
	char why[300];

	if (!(t->top = rn_calloc(nc ? nc : 1, sizeof(*t->top))) ||
	    !(t->top_set = rn_calloc(nc ? nc : 1, 1)))
		return RN_ENOMEM;
	if (def->nparts) {
		int same = def->nparts == n;
		for (size_t i = 0; same && i < n; i++)
			same = !strcmp(def->parts[i], lp[i]);
		if (!same)
			return rn_mat__fail(m, RN_ECONFLICT,
					    "table %s exists with other partition columns "
					    "than the config declares (its log: %zu column(s)%s%s)",
					    t->name, n, n ? ", first " : "", n ? lp[0] : "");
	}
	if (!n)
		return 0;
	struct rn_part_spec spec = {(const char *const *)lp, n, NULL, 0};
	if (rn_part_spec_check(t->schema, &spec, NULL, why, sizeof(why)))
		return rn_mat__fail(m, RN_ENOTSUP,
				    "table %s: its partitioning cannot be written by this "
				    "server: %s",
				    t->name, why);
	if (!(t->keys = rn_calloc(n, sizeof(*t->keys))) ||
	    !(t->keyof = rn_calloc(nc, sizeof(*t->keyof))) ||
	    !(t->colmap = rn_calloc(nc, sizeof(*t->colmap))) ||
	    !(t->dcols = rn_calloc(nc, sizeof(*t->dcols))))
		return RN_ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(t->keys[i] = rn_strdup(lp[i])))
			return RN_ENOMEM;
	t->nkeys = n;
	for (size_t c = 0; c < nc; c++) {
		t->keyof[c] = -1;
		for (size_t i = 0; i < n; i++)
			if (!strcmp(t->schema->root.fields[c].name, lp[i]))
				t->keyof[c] = (int)i;
		if (t->keyof[c] >= 0)
			continue;
		t->colmap[c] = t->ndcols;
		t->dcols[t->ndcols++] = t->cols[c];
	}
	return 0;
}

static const struct table_def *find_def(const struct rn_mat *m, const char *name)
{
	for (size_t i = 0; i < m->ndefs; i++)
		if (!strcmp(m->defs[i].name, name))
			return &m->defs[i];
	return NULL;
}

static char *typed_schema_json(const struct rn_schema *sc)
{
	struct rn_buf b = {0};
	if (rn_schema_to_json(sc, &b) || rn_buf_append_u8(&b, 0)) {
		rn_buf_free(&b);
		return NULL;
	}
	return (char *)b.data;
}

static int pq_type(const struct rn_field *f)
{
	switch (f->type) {
	case RN_T_STRING: return RN_PQ_STRING;
	case RN_T_LONG: return RN_PQ_INT64;
	case RN_T_INT: return RN_PQ_INT32;
	case RN_T_SHORT: return RN_PQ_INT16;
	case RN_T_BYTE: return RN_PQ_INT8;
	case RN_T_FLOAT: return RN_PQ_FLOAT;
	case RN_T_DOUBLE: return RN_PQ_DOUBLE;
	case RN_T_BOOL: return RN_PQ_BOOL;
	case RN_T_BINARY: return RN_PQ_BINARY;
	case RN_T_DATE: return RN_PQ_DATE;
	case RN_T_TIMESTAMP: return RN_PQ_TIMESTAMP;
	case RN_T_TIMESTAMP_NTZ: return RN_PQ_TIMESTAMP_NTZ;
	case RN_T_DECIMAL: return RN_PQ_DECIMAL;
	case RN_T_STRUCT: return RN_PQ_STRUCT;
	case RN_T_ARRAY: return RN_PQ_LIST;
	case RN_T_MAP: return RN_PQ_MAP;
	}
	return RN_PQ_STRING;
}

/* The Parquet schema tree of a struct's fields (names point into the schema). */
static int build_cols(const struct rn_field *parent, struct rn_pq_col **out)
{
	struct rn_pq_col *c = rn_calloc(parent->nfields ? parent->nfields : 1, sizeof(*c));
	int rc;
	*out = c;
	if (!c)
		return RN_ENOMEM;
	for (size_t i = 0; i < parent->nfields; i++) {
		const struct rn_field *f = &parent->fields[i];
		c[i].name = f->name ? f->name : "element";
		c[i].type = pq_type(f);
		c[i].optional = f->nullable;
		c[i].precision = f->precision;
		c[i].scale = f->scale;
		if (f->nfields) {
			if ((rc = build_cols(f, (struct rn_pq_col **)&c[i].children)))
				return rc;
			c[i].n_children = f->nfields;
		}
	}
	return 0;
}

int rn_mat_define_table(struct rn_mat *m, const char *table, struct rn_schema *schema)
{
	return rn_mat_define_table_ex(m, table, schema, NULL);
}

int rn_mat_define_table_ex(struct rn_mat *m, const char *table, struct rn_schema *schema,
			   const struct rn_part_spec *spec)
{
	char dname[400], why[300];
	int *derive = NULL;
	char **parts = NULL;
	size_t nparts = spec ? spec->ncolumns : 0;
	snprintf(dname, sizeof(dname), "%s_dead_letters", table);
	if (rn_table_name_check(table) || rn_table_name_check(dname))
		return rn_mat__fail(m, RN_EINVAL,
				    "invalid table name (or too long for its "
				    "_dead_letters table)");
	if (find_def(m, table))
		return rn_mat__fail(m, RN_EINVAL, "table %s declared twice", table);
	for (size_t i = 0; i < schema->root.nfields; i++)
		if (has_type(&schema->root.fields[i], RN_T_TIMESTAMP_NTZ))
			return rn_mat__fail(m, RN_ENOTSUP,
					    "table %s: column %s: timestamp_ntz needs the "
					    "timestampNtz table feature, not written yet",
					    table, schema->root.fields[i].name);
	if (spec && (spec->ncolumns || spec->nderived)) {
		size_t nc = schema->root.nfields;
		if (!(derive = rn_calloc(nc ? nc : 1, sizeof(*derive))))
			return RN_ENOMEM;
		if (rn_part_spec_check(schema, spec, derive, why, sizeof(why))) {
			rn_free(derive);
			return rn_mat__fail(m, RN_EINVAL, "table %s: %s", table, why);
		}
		if (nparts && !(parts = rn_calloc(nparts, sizeof(*parts))))
			goto nomem;
		for (size_t i = 0; i < nparts; i++)
			if (!(parts[i] = rn_strdup(spec->columns[i])))
				goto nomem;
	}
	struct table_def *d = rn_reallocarray(m->defs, m->ndefs + 1, sizeof(*d));
	if (!d)
		goto nomem;
	m->defs = d;
	memset(&d[m->ndefs], 0, sizeof(*d));
	if (!(d[m->ndefs].name = rn_strdup(table)))
		goto nomem;
	d[m->ndefs].schema = schema;
	d[m->ndefs].parts = parts;
	d[m->ndefs].nparts = nparts;
	d[m->ndefs++].derive = derive;
	return 0;
nomem:
	for (size_t i = 0; parts && i < nparts; i++)
		rn_free(parts[i]);
	rn_free(parts);
	rn_free(derive);
	return RN_ENOMEM;
}

static int has_type(const struct rn_field *f, enum rn_type t)
{
	if (f->type == t)
		return 1;
	for (size_t i = 0; i < f->nfields; i++)
		if (has_type(&f->fields[i], t))
			return 1;
	return 0;
}

int rn_mat_ensure_table(struct rn_mat *m, const char *table)
{
	struct mat_table *t;
	return rn_mat__get_table(m, table, 1, &t);
}

int rn_mat_table_exists(struct rn_mat *m, const char *table)
{
	char *dir;
	int r;
	if (rn_table_name_check(table))
		return RN_EINVAL;
	for (size_t i = 0; i < m->ntables; i++)
		if (!strcmp(m->tables[i]->name, table))
			return 1;
	if (!(dir = table_dir(m, table)))
		return RN_ENOMEM;
	r = rn_mat__delta_exists(dir, m->store);
	rn_free(dir);
	return r;
}

int64_t rn_mat_committed_read(struct rn_mat *m, const char *table, const char *stream_id)
{
	struct mat_table *t;
	if (rn_mat__get_table(m, table, 0, &t))
		return -1;
	return rn_delta_txn(t->delta, stream_id);
}

int rn_mat_committed(struct rn_mat *m, const char *table, const char *stream_id, int64_t *offset)
{
	struct mat_table *t;
	int rc;
	*offset = -1;
	if ((rc = rn_mat__get_table(m, table, 0, &t)))
		return rc == RN_ENOTFOUND ? 0 : rc;
	if ((rc = rn_delta_refresh(t->delta)))
		return rn_mat__fail(m, rc, "table %s: %s", table, rn_delta_errmsg(t->delta));
	*offset = rn_delta_txn(t->delta, stream_id);
	return 0;
}
