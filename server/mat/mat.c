/*
 * The materializer; see mat.h. Per table it keeps an open Parquet writer with the default
 * envelope schema, the streams that have rows in it (with their last offset, which becomes
 * the txn version at commit), and at most one finished-but-uncommitted file to retry after a
 * failed commit. Records are decoded from the received bytes into slices and put straight
 * into the column builders. A batch failing part way (or a writer broken by a failure) is
 * undone by rebuilding the table's builders: they are emptied and the caller's refill
 * callback adds the table's batches since its last commit again, from the caller's own
 * durable copy (the server's WAL), so a batch is added whole or not at all without a second
 * copy of the pending batches in memory.
 *
 * Partitioned typed tables keep one Parquet writer per partition value tuple instead (their
 * columns minus the partition columns). A record's partition values are only known once it
 * is decoded, and its columns come in schema order, so the sink records the writer calls of
 * one record on a small tape (ops with column indexes and values, bytes copied) while it
 * captures the partition columns' values; when the record decoded, the tape is replayed
 * into its partition's writer. One decode, one memcpy of the values: cheaper than decoding
 * twice, and the envelope fill-ins (k_missing) need no second implementation. A flush
 * finishes every partition's file, writes them into their Hive directories and commits all
 * of them in one commit with the txns; files finished early (too many open partitions)
 * wait in memory for that commit.
 */
#include "mat.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "delta.h"
#include "maint.h"
#include "jsonrow.h"
#include "ledger.h"
#include "parquet.h"
#include "partition.h"
#include "protorow.h"
#include "rn_buf.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_json.h"
#include "rn_log.h"
#include "rn_lograte.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "rn_strmap.h"
#include "rn_utf8.h"
#include "rn_zstd.h"
#include "schema.h"

enum {
	C_DEVICE,
	C_SOURCE,
	C_TOPIC,
	C_EVENT_TIME,
	C_RECEIVE_TIME,
	C_STREAM,
	C_SEQ,
	C_PAYLOAD,
	C_PAYLOAD_RAW,
	C_ATTRS,
	C_FLAGS,
	C_CLOCK,
	C_COUNT
};

static const struct rn_pq_col envelope_cols[C_COUNT] = {
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
	 * the first C_CLOCK columns: see get_table */
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

struct pending_stream {
	char *id;
	int64_t last; /* highest offset added and not yet committed */
};

/* A finished data file of a partitioned table, from finish to commit. */
struct mat_file {
	struct rn_buf data; /* the Parquet file; freed once written */
	char *path;         /* the add.path (URI-encoded) once written to disk, else NULL */
	char *dir;          /* its partition directory as on disk */
	char *pv;           /* partitionValues JSON */
	char *stats;
	int64_t size, mtime_ms;
};

/* One open partition of a partitioned table. */
struct mat_part {
	char *pv;  /* partitionValues JSON: the key */
	char *dir; /* Hive directory, as on disk */
	uint32_t hash;
	struct rn_pq_writer *pq;
};

struct mat_table {
	char *name;
	char *dir;
	/* typed tables: the declared schema (owned by the definition), its Parquet schema tree
	 * and the dead-letter table; NULL for envelope tables */
	const struct rn_schema *schema;
	struct rn_pq_col *cols;
	size_t ncols;
	size_t env_ncols; /* envelope tables: columns written, C_COUNT or C_CLOCK (older log) */
	struct mat_table *dlq;
	int is_dlq;
	/* typed tables: PROTO streams that send their own message (not the runnel envelope) */
	struct stream_plan {
		char *stream;
		struct rn_protoplan *plan;
	} * plans;
	size_t nplans;
	/* stream id -> its index in plans + 1 (a look-up per batch costs O(1), not a scan of
	 * every stream of the table; keys are the plans' own stream strings) */
	struct rn_strmap plan_ids;
	struct rn_delta *delta;
	struct rn_maint_clock maint; /* when its maintenance tasks last started */
	struct maint_job *job;       /* its maintenance job in flight (at most one), or NULL */
	struct rn_pq_writer *pq;
	struct pending_stream *streams; /* streams with rows in the open writer */
	size_t nstreams, capstreams;
	size_t pending_bytes;
	/* memory budget (rn_mat_memory): heap bytes of the open builders (rn_pq_mem of the
	 * writer or partitions, spilled files), as last synced into rn_mat.mem_builders; and
	 * of the builders handed to the flush, counted in rn_mat.mem_flush until it settles */
	size_t mem, fmem;
	/* who wrote pending_bytes (rn_mat_add_as's principal): settled whenever pending_bytes
	 * goes back to 0 */
	struct rn_ledger_debts debts;
	/*
	 * The flush (rn_mat_flush_start): builders detached from the table, the file(s) they
	 * become and their commit. While fj != NULL (a flush job is in flight) the fields from
	 * fdelta to ferr and the retry_* / rfiles fields below belong to the job's worker
	 * (server/README.md "Threads"); retry_streams is then read by both sides and written
	 * by neither. The loop gets them back in flush_done.
	 */
	struct flush_job *fj;
	struct rn_delta *fdelta;  /* the flush's own handle on the table (NULL: not open) */
	struct rn_pq_writer *fpq; /* a detached writer, to finish into retry_file */
	struct mat_part *fparts;  /* detached partitions, to finish into rfiles */
	size_t nfparts;
	int frc;          /* the job's result for this table: 0 or the error of its commit */
	int fbroken;      /* the detached builders could not be finished: refill their rows */
	int fcommitted;   /* committed; retry_streams kept until the loop's handle has read it */
	int64_t fversion; /* fdelta's version after the last job (when fdelta is open) */
	char ferr[320];
	/* the loop's: the detached rows' bytes and who wrote them, settled in flush_done */
	size_t fbytes;
	struct rn_ledger_debts fdebts;
	/* a finished file whose commit failed; retried before anything else */
	struct rn_buf retry_file;
	char *retry_stats;
	char *retry_path; /* retry_file's name once written (a retry commits it, not a copy) */
	int64_t retry_mtime;
	struct pending_stream *retry_streams;
	size_t retry_nstreams;
	/* typed tables: per top-level column, -1 or where a derived date comes from
	 * (rn_part_spec_check); owned by the definition; NULL = none derived */
	const int *derive;
	int64_t *top; /* the record's top-level integer values, for derived columns */
	uint8_t *top_set;
	/* partitioned tables (nkeys > 0; t->pq is then NULL) */
	size_t nkeys;
	char **keys;             /* partition column names, in partitionColumns order */
	int *keyof;              /* per top-level column: its index in keys, or -1 */
	size_t *colmap;          /* per top-level column: its Parquet column (partition: unused) */
	struct rn_pq_col *dcols; /* the data files' columns: shallow copies of cols entries */
	size_t ndcols;
	struct mat_part *parts;
	size_t nparts;
	struct mat_file *spilled; /* finished early, waiting for the next flush */
	size_t nspilled;
	struct mat_file *rfiles; /* the files of a failed commit, retried first */
	size_t nrfiles;
	int retry_part; /* rfiles + retry_streams hold a commit to retry */
	/* the open builders (writer, partitions, spilled files, and the dead-letter table's)
	 * may hold part of a failed batch or a broken writer: emptied and refilled (rebuild())
	 * before the next add or flush; a dirty dead-letter table is rebuilt by its typed
	 * table */
	int dirty;
};

struct table_def {
	char *name;
	struct rn_schema *schema;
	char **parts; /* partition_by from the config (the log decides; see get_table) */
	size_t nparts;
	int *derive; /* per top-level column (rn_part_spec_check), or NULL */
};

struct rn_mat {
	char *root;
	char *created_by;
	struct table_def *defs;
	size_t ndefs;
	int zstd_level;
	struct mat_table **tables;
	size_t ntables, captables;
	size_t pending_bytes;
	/* the memory budget: sums of the tables' mem and fmem (loop) */
	size_t mem_builders, mem_flush;
	struct rn_ledger *ledger; /* pending bytes per principal, over all tables */
	struct rn_buf scratch;    /* attributes JSON */
	struct rn_buf file;
	struct rn_buf tape;      /* one record's writer calls, partitioned tables */
	struct rn_buf keybuf;    /* one record's partition value texts */
	struct rn_buf pdir, ppv; /* one record's partition directory and values JSON */
	int (*refill)(void *ctx, struct rn_mat *m, const char *table);
	void *refill_ctx;
	struct mat_table *refilling; /* the table rn_mat_refill_add may add to now */
	/* bad records: one warning per batch, rate-limited per table (rn_mat_tick) */
	struct rn_lograte warn;
	uint64_t dead_records; /* records of typed tables sent to their dead-letter tables */
	uint64_t undecodable;  /* records of envelope tables kept undecoded in payload_raw */
	/* maintenance off the loop (rn_mat_options.maint_submit; NULL = inline) */
	int (*maint_submit)(void *ctx, void (*run)(void *arg),
			    void (*done)(void *arg, int cancelled), void *arg);
	void *maint_ctx;
	atomic_int maint_stop;    /* rn_mat_maint_stop: workers read it between steps */
	atomic_int maint_running; /* jobs inside maint_run now (workers change it) */
	int maint_stopped;        /* loop's copy of maint_stop */
	/* flushes off the loop (rn_mat_options.flush_submit; NULL = inline): one round at a
	 * time, one job per table (with its dead-letter table) in it */
	int (*flush_submit)(void *ctx, void (*run)(void *arg),
			    void (*done)(void *arg, int cancelled), void *arg);
	void *flush_ctx;
	size_t round_jobs; /* jobs of the round not done yet (+1 while it is being started) */
	int round_rc;      /* the round's first error (RN_EAGAIN: rows left for the next one) */
	void (*round_cb)(void *ctx, int rc);
	void *round_ctx;
	int flush_inline;       /* rn_mat_flush: this round runs every job on the calling thread */
	struct rn_mat_stats ms; /* the maint_* and task counters (loop) */
	char err[512];
};

static int fail(struct rn_mat *m, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static const struct table_def *find_def(const struct rn_mat *m, const char *name);
static char *typed_schema_json(const struct rn_schema *sc);
static int build_cols(const struct rn_field *parent, struct rn_pq_col **out);
static int has_type(const struct rn_field *f, enum rn_type t);
static int setup_partitions(struct rn_mat *m, struct mat_table *t, const struct table_def *def);

static int fail(struct rn_mat *m, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->err, sizeof(m->err), fmt, ap);
	va_end(ap);
	return rc;
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
				   i ? "," : "", envelope_cols[i].name,
				   delta_type(envelope_cols[i].type),
				   envelope_cols[i].optional ? "true" : "false");
	if (rc || rn_buf_append_str(&b, "]}") || rn_buf_append_u8(&b, 0)) {
		rn_buf_free(&b);
		return NULL;
	}
	return (char *)b.data;
}

int rn_mat_create(struct rn_mat **out, const struct rn_mat_options *opt)
{
	struct rn_mat *m;
	*out = NULL;
	if (!opt || !opt->data_root)
		return RN_EINVAL;
	if (!(m = rn_calloc(1, sizeof(*m))))
		return RN_ENOMEM;
	m->root = rn_strdup(opt->data_root);
	m->zstd_level = opt->zstd_level ? opt->zstd_level : 1;
	m->refill = opt->refill;
	m->refill_ctx = opt->refill_ctx;
	m->maint_submit = opt->maint_submit;
	m->maint_ctx = opt->maint_ctx;
	m->flush_submit = opt->flush_submit;
	m->flush_ctx = opt->flush_ctx;
	rn_lograte_init(&m->warn, RN_MAT_WARN_PERIOD_US, rn_mono_us());
	if (opt->created_by)
		m->created_by = rn_strdup(opt->created_by);
	if (!m->root || (opt->created_by && !m->created_by) || rn_ledger_create(&m->ledger)) {
		rn_mat_destroy(m);
		return RN_ENOMEM;
	}
	*out = m;
	return 0;
}

static void free_streams(struct pending_stream *s, size_t n)
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

static void free_files(struct mat_file *f, size_t n)
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

static void free_part_list(struct mat_part *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rn_pq_writer_destroy(p[i].pq);
		rn_free(p[i].pv);
		rn_free(p[i].dir);
	}
	rn_free(p);
}

static void free_parts(struct mat_table *t)
{
	free_part_list(t->parts, t->nparts);
	t->parts = NULL;
	t->nparts = 0;
}

static void table_free(struct mat_table *t)
{
	if (!t)
		return;
	free_parts(t);
	free_files(t->spilled, t->nspilled);
	free_files(t->rfiles, t->nrfiles);
	for (size_t i = 0; i < t->nkeys; i++)
		rn_free(t->keys[i]);
	rn_free(t->keys);
	rn_free(t->keyof);
	rn_free(t->colmap);
	rn_free(t->dcols); /* its children belong to cols */
	rn_free(t->top);
	rn_free(t->top_set);
	rn_delta_close(t->delta);
	rn_delta_close(t->fdelta);
	rn_pq_writer_destroy(t->pq);
	rn_pq_writer_destroy(t->fpq);
	free_part_list(t->fparts, t->nfparts);
	free_streams(t->streams, t->nstreams);
	free_streams(t->retry_streams, t->retry_nstreams);
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

static void def_free(struct table_def *d)
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
static void drop_def(struct rn_mat *m, const char *name)
{
	for (size_t i = 0; i < m->ndefs; i++) {
		if (strcmp(m->defs[i].name, name))
			continue;
		for (size_t k = 0; k < m->ntables; k++)
			if (m->tables[k]->schema == m->defs[i].schema)
				return;
		def_free(&m->defs[i]);
		m->defs[i] = m->defs[--m->ndefs];
		return;
	}
}

void rn_mat_destroy(struct rn_mat *m)
{
	if (!m)
		return;
	if (m->round_jobs)
		rn_log_error("mat", "destroyed with %zu flush jobs in flight", m->round_jobs);
	if (m->ms.maint_inflight) /* a worker would write into freed memory: leak instead */
		rn_log_error("mat", "destroyed with %llu maintenance jobs in flight",
			     (unsigned long long)m->ms.maint_inflight);
	for (size_t i = 0; i < m->ntables; i++) {
		rn_ledger_debts_free(m->ledger, &m->tables[i]->debts);
		rn_ledger_debts_free(m->ledger, &m->tables[i]->fdebts);
		table_free(m->tables[i]);
	}
	rn_free(m->tables);
	rn_ledger_destroy(m->ledger);
	for (size_t i = 0; i < m->ndefs; i++)
		def_free(&m->defs[i]);
	rn_free(m->defs);
	rn_buf_free(&m->scratch);
	rn_buf_free(&m->file);
	rn_buf_free(&m->tape);
	rn_buf_free(&m->keybuf);
	rn_buf_free(&m->pdir);
	rn_buf_free(&m->ppv);
	rn_free(m->root);
	rn_free(m->created_by);
	rn_free(m);
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

/* Finds the table, opening (and with create, creating) it on first use. */
static int get_table(struct rn_mat *m, const char *name, int create, struct mat_table **out)
{
	struct mat_table *t;
	char *schema = NULL;
	int rc;

	*out = NULL;
	if (rn_table_name_check(name))
		return fail(m, RN_EINVAL, "invalid table name");
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
		if ((rc = get_table(m, dname, 1, &dlq)))
			return rc;
		def = find_def(m, name); /* that open may have declared tables (m->defs moved) */
	}
	if (!(t = rn_calloc(1, sizeof(*t))) || !(t->name = rn_strdup(name)) ||
	    !(t->dir = table_dir(m, name)) ||
	    !(schema = def ? typed_schema_json(def->schema) : schema_json(C_COUNT))) {
		table_free(t);
		rn_free(schema);
		return RN_ENOMEM;
	}
	rc = rn_delta_open_part(&t->delta, t->dir, create ? schema : NULL,
				def ? (const char *const *)def->parts : NULL, def ? def->nparts : 0,
				NULL);
	if (rc) {
		rn_free(schema);
		if (rc != RN_ENOTFOUND)
			fail(m, rc, "table %s: cannot open its Delta log", name);
		else
			fail(m, rc, "table %s does not exist", name);
		table_free(t);
		return rc;
	}
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
			table_free(t);
			return RN_ENOMEM;
		}
		if (!strcmp(disk, old))
			t->env_ncols = C_CLOCK;
		rn_free(old);
	}
	if (disk && strcmp(disk, schema) && t->env_ncols == C_COUNT) {
		if (def) {
			rn_free(schema);
			table_free(t);
			return fail(m, RN_ECONFLICT,
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
			table_free(t);
			return fail(m, rc ? rc : RN_ENOMEM,
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
			table_free(t);
			return rc;
		}
	} else {
		size_t nlp;
		rn_delta_partition_columns(t->delta, &nlp);
		if (nlp) {
			table_free(t);
			return fail(m, RN_ENOTSUP,
				    "table %s is partitioned; this server writes "
				    "partitioned tables only with a typed schema",
				    name);
		}
	}
	struct rn_pq_options po = {.created_by = m->created_by, .zstd_level = m->zstd_level};
	if (!t->nkeys && (rc = rn_pq_writer_create(&t->pq, t->cols ? t->cols : envelope_cols,
						   t->cols ? t->ncols : t->env_ncols, &po))) {
		table_free(t);
		return fail(m, rc, "table %s: cannot set up its Parquet schema", name);
	}
	/* A typed table is registered only with its dead-letter table (an envelope table)
	 * open: a record that does not fit always has somewhere to go. */
	if (def && (rc = get_table(m, dname, 1, &t->dlq))) {
		table_free(t);
		return rc;
	}
	if (m->ntables == m->captables) {
		size_t nc = m->captables ? m->captables * 2 : 8;
		struct mat_table **tt = rn_reallocarray(m->tables, nc, sizeof(*tt));
		if (!tt) {
			table_free(t);
			return RN_ENOMEM;
		}
		m->tables = tt;
		m->captables = nc;
	}
	if (t->dlq)
		t->dlq->is_dlq = 1;
	m->tables[m->ntables++] = t;
	*out = t;
	return 0;
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
			return fail(m, RN_ECONFLICT,
				    "table %s exists with other partition columns "
				    "than the config declares (its log: %zu column(s)%s%s)",
				    t->name, n, n ? ", first " : "", n ? lp[0] : "");
	}
	if (!n)
		return 0;
	struct rn_part_spec spec = {(const char *const *)lp, n, NULL, 0};
	if (rn_part_spec_check(t->schema, &spec, NULL, why, sizeof(why)))
		return fail(m, RN_ENOTSUP,
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
		return fail(m, RN_EINVAL,
			    "invalid table name (or too long for its "
			    "_dead_letters table)");
	if (find_def(m, table))
		return fail(m, RN_EINVAL, "table %s declared twice", table);
	for (size_t i = 0; i < schema->root.nfields; i++)
		if (has_type(&schema->root.fields[i], RN_T_TIMESTAMP_NTZ))
			return fail(m, RN_ENOTSUP,
				    "table %s: column %s: timestamp_ntz needs the "
				    "timestampNtz table feature, not written yet",
				    table, schema->root.fields[i].name);
	if (spec && (spec->ncolumns || spec->nderived)) {
		size_t nc = schema->root.nfields;
		if (!(derive = rn_calloc(nc ? nc : 1, sizeof(*derive))))
			return RN_ENOMEM;
		if (rn_part_spec_check(schema, spec, derive, why, sizeof(why))) {
			rn_free(derive);
			return fail(m, RN_EINVAL, "table %s: %s", table, why);
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
	return get_table(m, table, 1, &t);
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
	r = rn_delta_exists(dir);
	rn_free(dir);
	return r;
}

static struct pending_stream *find_stream(struct pending_stream *s, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s[i].id, id))
			return &s[i];
	return NULL;
}

/* The zero-copy view of one runnel.v1.Record. */
struct rec {
	struct rn_pb_field device, source, topic, payload;
	int has_device, has_source, has_topic, has_payload, has_event, has_receive, has_seq;
	int64_t event, receive;
	uint64_t seq;
	int has_boot, corrected; /* boot_time_us and boot_id both present; clock_fix applied */
	uint64_t boot_us;
	struct rn_pb_field boot_id;
	uint32_t flags;
	const uint8_t *attrs_start; /* first attribute field, for a second pass */
	size_t nattrs;
};

static const char *decode_record(const uint8_t *p, size_t len, struct rec *r)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	int rc;

	memset(r, 0, sizeof(*r));
	rn_pb_reader_init(&rd, p, len);
	while ((rc = rn_pb_next(&rd, &f)) == 1) {
		switch (f.num) {
		case 1:
		case 2:
		case 3:
		case 7:
		case 11: {
			if (f.wt != RN_PB_LEN)
				return "wrong wire type for a text field";
			if (f.num != 7 && !rn_utf8_valid(f.ptr, f.len))
				return "device_id, source, topic or boot_id is not UTF-8";
			if (f.num == 11) {
				r->boot_id = f;
				r->has_boot |= 2;
			}
			if (f.num == 1) {
				r->device = f;
				r->has_device = 1;
			}
			if (f.num == 2) {
				r->source = f;
				r->has_source = 1;
			}
			if (f.num == 3) {
				r->topic = f;
				r->has_topic = 1;
			}
			if (f.num == 7) {
				r->payload = f;
				r->has_payload = 1;
			}
			break;
		}
		case 4:
		case 5:
		case 6:
		case 9:
		case 10:
			if (f.wt != RN_PB_VARINT)
				return "wrong wire type for a number field";
			if (f.num == 10) {
				r->boot_us = f.u;
				r->has_boot |= 1;
			}
			if (f.num == 4) {
				r->event = (int64_t)f.u;
				r->has_event = 1;
			}
			if (f.num == 5) {
				r->receive = (int64_t)f.u;
				r->has_receive = 1;
			}
			if (f.num == 6) {
				r->seq = f.u;
				r->has_seq = 1;
			}
			if (f.num == 9)
				r->flags = (uint32_t)f.u;
			break;
		case 8: {
			struct rn_pb_reader ar;
			struct rn_pb_field af;
			if (f.wt != RN_PB_LEN)
				return "wrong wire type for attributes";
			rn_pb_reader_init(&ar, f.ptr, f.len);
			while ((rc = rn_pb_next(&ar, &af)) == 1)
				if ((af.num == 1 || af.num == 2) &&
				    (af.wt != RN_PB_LEN || !rn_utf8_valid(af.ptr, af.len)))
					return "attribute key or value is not UTF-8 text";
			if (rc < 0)
				return "malformed attribute";
			r->nattrs++;
			break;
		}
		default: break; /* unknown fields are skipped, as protobuf requires */
		}
	}
	if (rc < 0)
		return "malformed protobuf";
	/* microseconds from year 1 to 9999: what every reader can represent */
	if (r->has_event && (r->event < -62135596800000000LL || r->event > 253402300799999999LL))
		return "event_time out of range";
	if (r->has_receive &&
	    (r->receive < -62135596800000000LL || r->receive > 253402300799999999LL))
		return "receive_time out of range";
	r->has_boot = r->has_boot == 3;
	return NULL;
}

/*
 * Places a record made before the device's clock was set on the server's clock, when it
 * carries boot_time_us and the boot id of the stream's reference (mat.h, rn_mat_add). The
 * event time moves by the same amount only when it is itself before RN_CLOCK_TRUSTED_US: a
 * valid one (from the payload, e.g. GPS) is kept. Nothing changes if the result would be
 * out of range.
 */
static void clock_fix(struct rec *r, const struct rn_mat_clock *clk)
{
	const int64_t lim = (int64_t)1 << 62;
	int64_t recv, ev = r->event;
	if (!clk || !r->has_boot || r->boot_us >= (uint64_t)lim || clk->delta_us <= -lim ||
	    clk->delta_us >= lim || r->boot_id.len != strlen(clk->boot_id) ||
	    memcmp(r->boot_id.ptr, clk->boot_id, r->boot_id.len))
		return;
	recv = (int64_t)r->boot_us + clk->delta_us;
	if (recv < 0 || recv > 253402300799999999LL)
		return;
	if (r->has_event && r->event < RN_CLOCK_TRUSTED_US) {
		ev = r->has_receive ? r->event + (recv - r->receive) : recv;
		if (ev < -62135596800000000LL || ev > 253402300799999999LL)
			return;
	}
	r->event = ev;
	r->receive = recv;
	r->has_receive = 1;
	r->corrected = 1;
}

/* Where a dead letter came from and why: its attributes runnel.error, runnel.offset (the
 * batch's offset in its stream) and runnel.record (its index in the batch). */
struct dead_ref {
	const char *reason;
	int64_t offset;
	size_t index;
};

static int put_dead_ref(struct rn_buf *b, const struct dead_ref *d, const char *reason)
{
	int rc = rn_buf_append_str(b, "\"runnel.error\":");
	rc = rc ? rc : rn_json_put_str(b, reason, strlen(reason));
	if (d && !rc)
		rc = rn_buf_printf(b, ",\"runnel.offset\":\"%lld\",\"runnel.record\":\"%zu\"",
				   (long long)d->offset, d->index);
	return rc;
}

/* The record's attributes as a JSON object (p may be NULL: none), with the dead-letter
 * attributes first when dead is not NULL. */
static int attrs_json(struct rn_buf *b, const uint8_t *p, size_t len, const struct dead_ref *dead)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	int first = 1, rc = 0;

	rn_buf_reset(b);
	rc = rn_buf_append_u8(b, '{');
	if (dead && !rc) {
		rc = put_dead_ref(b, dead, dead->reason);
		first = 0;
	}
	rn_pb_reader_init(&rd, p, p ? len : 0);
	while (!rc && rn_pb_next(&rd, &f) == 1) {
		struct rn_pb_reader ar;
		struct rn_pb_field af;
		const uint8_t *k = (const uint8_t *)"", *v = (const uint8_t *)"";
		size_t kl = 0, vl = 0;
		if (f.num != 8)
			continue;
		rn_pb_reader_init(&ar, f.ptr, f.len);
		while (rn_pb_next(&ar, &af) == 1) {
			if (af.num == 1) {
				k = af.ptr;
				kl = af.len;
			}
			if (af.num == 2) {
				v = af.ptr;
				vl = af.len;
			}
		}
		if (!first)
			rc = rn_buf_append_u8(b, ',');
		first = 0;
		rc = rc ? rc : rn_json_put_str(b, k, kl);
		rc = rc ? rc : rn_buf_append_u8(b, ':');
		rc = rc ? rc : rn_json_put_str(b, v, vl);
	}
	return rc ? rc : rn_buf_append_u8(b, '}');
}

static int put_str(struct rn_pq_writer *w, size_t col, const struct rn_pb_field *f)
{
	return rn_pq_put_bytes(w, col, f->ptr, f->len);
}

/*
 * One row of an envelope table. `reason` != NULL makes it a dead letter of a typed table:
 * the record as received (decoded as far as it goes) with the reason among its attributes.
 * A record that does not decode is kept raw, and *undecodable (not NULL) says why.
 */
static int add_envelope_row(struct rn_mat *m, struct mat_table *t, const char *stream_id,
			    int record_type, const uint8_t *p, size_t len, int64_t now,
			    const struct dead_ref *dead, const struct rn_mat_clock *clk,
			    const char **undecodable)
{
	int corrected = 0;
	const char *reason = dead ? dead->reason : NULL;
	struct rn_pq_writer *w = t->pq;
	const char *why = NULL;
	struct rec r;
	int rc = 0;

	if (record_type == RN_MAT_JSON) {
		if (!rn_utf8_valid(p, len))
			why = "JSON record is not UTF-8";
		else
			rc = rn_pq_put_bytes(w, C_PAYLOAD, p, len);
		if (!why && !rc)
			rc = rn_pq_put_i64(w, C_RECEIVE_TIME, now);
		if (!why && !rc && reason && !(rc = attrs_json(&m->scratch, NULL, 0, dead)))
			rc = rn_pq_put_bytes(w, C_ATTRS, m->scratch.data, m->scratch.len);
	} else if (!(why = decode_record(p, len, &r))) {
		clock_fix(&r, clk);
		corrected = r.corrected;
		if (r.has_device)
			rc = rc ? rc : put_str(w, C_DEVICE, &r.device);
		if (r.has_source)
			rc = rc ? rc : put_str(w, C_SOURCE, &r.source);
		if (r.has_topic)
			rc = rc ? rc : put_str(w, C_TOPIC, &r.topic);
		if (r.has_event)
			rc = rc ? rc : rn_pq_put_i64(w, C_EVENT_TIME, r.event);
		rc = rc ? rc : rn_pq_put_i64(w, C_RECEIVE_TIME, r.has_receive ? r.receive : now);
		if (r.has_seq)
			rc = rc ? rc : rn_pq_put_i64(w, C_SEQ, (int64_t)r.seq);
		if (r.has_payload) {
			if (rn_utf8_valid(r.payload.ptr, r.payload.len))
				rc = rc ? rc : put_str(w, C_PAYLOAD, &r.payload);
			else
				rc = rc ? rc : put_str(w, C_PAYLOAD_RAW, &r.payload);
		}
		if ((r.nattrs || reason) && !rc && !(rc = attrs_json(&m->scratch, p, len, dead)))
			rc = rn_pq_put_bytes(w, C_ATTRS, m->scratch.data, m->scratch.len);
		rc = rc ? rc : rn_pq_put_i32(w, C_FLAGS, (int32_t)r.flags);
	}
	if (why) {
		/* Keep what could not be decoded, with the reason, as a row of its own. */
		rn_buf_reset(&m->scratch);
		rc = rn_buf_append_u8(&m->scratch, '{');
		rc = rc ? rc : put_dead_ref(&m->scratch, dead, reason ? reason : why);
		rc = rc ? rc : rn_buf_append_u8(&m->scratch, '}');
		rc = rc ? rc : rn_pq_put_bytes(w, C_PAYLOAD_RAW, p, len);
		rc = rc ? rc : rn_pq_put_bytes(w, C_ATTRS, m->scratch.data, m->scratch.len);
		rc = rc ? rc : rn_pq_put_i64(w, C_RECEIVE_TIME, now);
		if (!reason && undecodable)
			*undecodable = why;
	}
	rc = rc ? rc : rn_pq_put_bytes(w, C_STREAM, stream_id, strlen(stream_id));
	if (!rc && t->env_ncols > C_CLOCK)
		rc = rn_pq_put_bool(w, C_CLOCK, corrected);
	if (rc) {
		rn_pq_row_abort(w);
		return rc;
	}
	return rn_pq_row_end(w);
}

/* Feeds decoded JSON values into a typed table's Parquet writer (jsonrow.h's sink), and
 * fills columns the payload lacks from the envelope. */
struct pq_sink {
	struct rn_pq_writer *w; /* direct writes; NULL when taping */
	struct mat_table *t;
	const struct rn_field *stack[RN_SCHEMA_MAX_DEPTH + 2];
	int depth;
	const struct rec *env; /* NULL for JSON records */
	const uint8_t *env_bytes;
	size_t env_len;
	const char *stream_id;
	const char *principal; /* who wrote the batch (rn_mat_add_as), or NULL */
	int64_t now;
	struct rn_buf *scratch;
	/* partitioned tables: the record's writer calls, and its partition values as text in
	 * keybuf (set = seen; a column never seen is null) */
	struct rn_buf *tape, *keybuf;
	struct keycap {
		int set, is_null;
		size_t off, len;
	} caps[RN_PART_MAX_COLUMNS];
};

/* The writer calls a sink makes, as taped. */
enum { OP_NULL, OP_I64, OP_I32, OP_BOOL, OP_F32, OP_F64, OP_BYTES, OP_DEC, OP_BEGIN, OP_END };

struct tape_op {
	int op;
	size_t col;
	int64_t i;
	double d;
	size_t n; /* bytes that follow (OP_BYTES, OP_DEC) */
};

static int pq_call(struct rn_pq_writer *w, const struct tape_op *o, const void *p)
{
	switch (o->op) {
	case OP_NULL: return rn_pq_put_null(w, o->col);
	case OP_I64: return rn_pq_put_i64(w, o->col, o->i);
	case OP_I32: return rn_pq_put_i32(w, o->col, (int32_t)o->i);
	case OP_BOOL: return rn_pq_put_bool(w, o->col, (int)o->i);
	case OP_F32: return rn_pq_put_float(w, o->col, (float)o->d);
	case OP_F64: return rn_pq_put_double(w, o->col, o->d);
	case OP_BYTES: return rn_pq_put_bytes(w, o->col, p, o->n);
	case OP_DEC: return rn_pq_put_decimal(w, o->col, p);
	case OP_BEGIN: return rn_pq_begin(w, o->col);
	default: return rn_pq_end(w);
	}
}

/* Keeps a partition column's value (as its partitionValues text) instead of writing it. */
static int capture(struct pq_sink *k, size_t col, const struct tape_op *o, const void *p)
{
	struct keycap *c = &k->caps[k->t->keyof[col]];
	int rc = 0;
	c->set = 1;
	c->is_null = o->op == OP_NULL;
	c->off = k->keybuf->len;
	if (o->op == OP_BYTES)
		rc = rn_buf_append(k->keybuf, p, o->n);
	else if (!c->is_null)
		rc = rn_part_text(k->keybuf, k->t->schema->root.fields[col].type, o->i);
	c->len = k->keybuf->len - c->off;
	return rc;
}

/* Every value goes through here: top-level integers are remembered (derived columns read
 * them), partition columns captured, the rest written to the writer or onto the tape. */
static int emit(struct pq_sink *k, int op, size_t col, int64_t i, double d, const void *p, size_t n)
{
	struct mat_table *t = k->t;
	struct tape_op o = {op, col, i, d, n};
	int rc;

	if (k->depth == 1 && op != OP_END && t && t->top) {
		if (op == OP_I64 || op == OP_I32 || op == OP_BOOL) {
			t->top[col] = i;
			t->top_set[col] = 1;
		}
		if (t->nkeys) {
			if (t->keyof[col] >= 0)
				return capture(k, col, &o, p);
			o.col = t->colmap[col];
		}
	}
	if (!k->tape)
		return pq_call(k->w, &o, p);
	if ((rc = rn_buf_append(k->tape, &o, sizeof(o))))
		return rc;
	return rn_buf_append(k->tape, p, n);
}

/* Writes one taped record into w (the row is left open). */
static int replay(struct rn_pq_writer *w, const struct rn_buf *tape)
{
	size_t off = 0;
	int rc = 0;
	while (!rc && off < tape->len) {
		struct tape_op o;
		memcpy(&o, tape->data + off, sizeof(o));
		off += sizeof(o);
		rc = pq_call(w, &o, tape->data + off);
		off += o.n;
	}
	return rc;
}

/* The child index of f in the innermost open group. */
static size_t col_of(const struct pq_sink *k, const struct rn_field *f)
{
	const struct rn_field *p = k->stack[k->depth - 1];
	if (p->type == RN_T_STRUCT)
		return (size_t)(f - p->fields);
	if (p->type == RN_T_MAP)
		return f == &p->fields[0] ? 0 : 1;
	return 0;
}

/* Is f a derived top-level column? Its value then comes from its source, whatever the
 * record says. */
static int derived(const struct pq_sink *k, size_t col)
{
	return k->depth == 1 && k->t && k->t->derive && k->t->derive[col] != -1;
}

static int put_derived(struct pq_sink *k, size_t col)
{
	const struct mat_table *t = k->t;
	const struct rec *r = k->env;
	int src = t->derive[col];
	int64_t us;
	if (src == RN_PART_FROM_PRINCIPAL) {
		/* unknown (a stream from before owners were kept): null, or "" if NOT NULL */
		const char *p = k->principal;
		if (!p && k->stack[0]->fields[col].nullable)
			return emit(k, OP_NULL, col, 0, 0, NULL, 0);
		return emit(k, OP_BYTES, col, 0, 0, p ? p : "", p ? strlen(p) : 0);
	}
	if (src == RN_PART_FROM_ENVELOPE)
		us = r && r->has_event ? r->event : r && r->has_receive ? r->receive : k->now;
	else if (t->top_set[src])
		us = t->top[src];
	else
		return emit(k, OP_NULL, col, 0, 0, NULL, 0);
	return emit(k, OP_I32, col, rn_part_day(us), 0, NULL, 0);
}

static int k_null(void *c, const struct rn_field *f)
{
	struct pq_sink *k = c;
	size_t col = col_of(k, f);
	if (derived(k, col))
		return put_derived(k, col);
	return emit(k, OP_NULL, col, 0, 0, NULL, 0);
}

static int k_i64(void *c, const struct rn_field *f, int64_t v)
{
	struct pq_sink *k = c;
	size_t col = col_of(k, f);
	if (derived(k, col))
		return put_derived(k, col);
	switch (f->type) {
	case RN_T_LONG:
	case RN_T_TIMESTAMP:
	case RN_T_TIMESTAMP_NTZ: return emit(k, OP_I64, col, v, 0, NULL, 0);
	case RN_T_BOOL: return emit(k, OP_BOOL, col, v, 0, NULL, 0);
	default: return emit(k, OP_I32, col, v, 0, NULL, 0);
	}
}

static int k_f64(void *c, const struct rn_field *f, double v)
{
	struct pq_sink *k = c;
	return emit(k, f->type == RN_T_FLOAT ? OP_F32 : OP_F64, col_of(k, f), 0, v, NULL, 0);
}

static int k_bytes(void *c, const struct rn_field *f, const void *p, size_t n)
{
	struct pq_sink *k = c;
	size_t col = col_of(k, f);
	if (derived(k, col)) /* a record cannot name its own principal */
		return put_derived(k, col);
	return emit(k, OP_BYTES, col, 0, 0, p, n);
}

static int k_dec(void *c, const struct rn_field *f, rn_i128 u)
{
	struct pq_sink *k = c;
	uint8_t be[16];
	if (f->precision <= 18)
		return emit(k, OP_I64, col_of(k, f), rn_i128_to_i64(u), 0, NULL, 0);
	rn_i128_to_be(u, be);
	return emit(k, OP_DEC, col_of(k, f), 0, 0, be, 16);
}

static int k_begin(void *c, const struct rn_field *f, size_t n)
{
	struct pq_sink *k = c;
	int rc = 0;
	(void)n;
	if (k->depth >= (int)(sizeof(k->stack) / sizeof(k->stack[0])))
		return RN_EINVAL;
	if (k->depth > 0 && (rc = emit(k, OP_BEGIN, col_of(k, f), 0, 0, NULL, 0)))
		return rc;
	k->stack[k->depth++] = f;
	return 0;
}

static int k_end(void *c, const struct rn_field *f)
{
	struct pq_sink *k = c;
	(void)f;
	return --k->depth > 0 ? emit(k, OP_END, 0, 0, 0, NULL, 0) : 0;
}

/* Envelope values for top-level columns the payload does not name. */
static int k_missing(void *c, const struct rn_field *f)
{
	struct pq_sink *k = c;
	const struct rec *r = k->env;
	size_t col = col_of(k, f);
	const char *n = f->name;

	if (derived(k, col))
		return put_derived(k, col);
	if (!strcmp(n, "stream_id") && f->type == RN_T_STRING)
		return emit(k, OP_BYTES, col, 0, 0, k->stream_id, strlen(k->stream_id));
	if (!strcmp(n, "receive_time") && f->type == RN_T_TIMESTAMP)
		return emit(k, OP_I64, col, r && r->has_receive ? r->receive : k->now, 0, NULL, 0);
	if (!strcmp(n, "clock_corrected") && f->type == RN_T_BOOL)
		return emit(k, OP_BOOL, col, r && r->corrected, 0, NULL, 0);
	if (!r)
		return RN_ENOTFOUND;
	if (f->type == RN_T_STRING) {
		const struct rn_pb_field *s = !strcmp(n, "device_id") && r->has_device ? &r->device
					      : !strcmp(n, "source") && r->has_source  ? &r->source
					      : !strcmp(n, "topic") && r->has_topic    ? &r->topic
										       : NULL;
		if (s)
			return emit(k, OP_BYTES, col, 0, 0, s->ptr, s->len);
		if (!strcmp(n, "attributes") && r->nattrs) {
			int rc = attrs_json(k->scratch, k->env_bytes, k->env_len, NULL);
			return rc ? rc
				  : emit(k, OP_BYTES, col, 0, 0, k->scratch->data, k->scratch->len);
		}
	}
	if (!strcmp(n, "event_time") && f->type == RN_T_TIMESTAMP && r->has_event)
		return emit(k, OP_I64, col, r->event, 0, NULL, 0);
	if (!strcmp(n, "seq") && f->type == RN_T_LONG && r->has_seq)
		return emit(k, OP_I64, col, (int64_t)r->seq, 0, NULL, 0);
	if (!strcmp(n, "flags") && f->type == RN_T_INT)
		return emit(k, OP_I32, col, (int32_t)r->flags, 0, NULL, 0);
	return RN_ENOTFOUND;
}

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;
	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

/* Finishes every partition's file of (*parts, *np) (t's open ones, or detached ones) into
 * (*files, *n), oldest first, dropping the partition. On failure the partitions not finished
 * stay, and why in err. Touches only its arguments and t's immutable columns, so that a
 * flush job may run it on detached partitions. */
/* t's open builders hold `mem` heap bytes now (the memory budget's counters; loop). */
static void mem_set(struct rn_mat *m, struct mat_table *t, size_t mem)
{
	m->mem_builders = m->mem_builders - t->mem + mem;
	t->mem = mem;
}

/* An unpartitioned table's writer after rows went in (a partitioned one counts per row in
 * route_row). Once per batch: rn_pq_mem is a walk of the writer's leaves. */
static void mem_sync(struct rn_mat *m, struct mat_table *t)
{
	if (t && !t->nkeys)
		mem_set(m, t, t->pq ? rn_pq_mem(t->pq) : 0);
}

static int finish_list(const struct mat_table *t, struct mat_part **parts, size_t *np,
		       struct mat_file **files, size_t *n, char *err, size_t errcap)
{
	while (*np) {
		struct mat_part *p = &(*parts)[*np - 1];
		size_t rows = rn_pq_rows(p->pq);
		struct mat_file *nf = rn_reallocarray(*files, *n + 1, sizeof(**files));
		int rc;
		if (!nf)
			return RN_ENOMEM;
		*files = nf;
		struct mat_file *f = &nf[*n];
		memset(f, 0, sizeof(*f));
		if (rows) {
			if ((rc = rn_pq_finish(p->pq, &f->data))) {
				snprintf(err, errcap, "table %s: parquet: %s", t->name,
					 rn_strerror(rc));
				return rc;
			}
			if (!(f->stats = rn_pq_delta_stats(p->pq, t->dcols, t->ndcols,
							   (int64_t)rows))) {
				rn_buf_free(&f->data);
				return RN_ENOMEM;
			}
			f->dir = p->dir;
			f->pv = p->pv;
			(*n)++;
		} else {
			rn_free(p->dir);
			rn_free(p->pv);
		}
		rn_pq_writer_destroy(p->pq);
		(*np)--;
	}
	rn_free(*parts);
	*parts = NULL;
	return 0;
}

/* finish_list of t's open partitions (on the loop). */
static int finish_parts(struct rn_mat *m, struct mat_table *t, struct mat_file **files, size_t *n)
{
	char err[320] = "";
	int rc = finish_list(t, &t->parts, &t->nparts, files, n, err, sizeof(err));
	if (rc && err[0])
		return fail(m, rc, "%s", err);
	return rc;
}

/* Puts the taped record into its partition's writer (opening it, after finishing every
 * open one at the cap). A partition value that makes a too long directory name is a misfit:
 * RN_EINVAL with the reason in why. */
static int route_row(struct rn_mat *m, struct mat_table *t, struct pq_sink *k, char *why,
		     size_t cap)
{
	struct rn_part_val v[RN_PART_MAX_COLUMNS];
	struct mat_part *p = NULL;
	int rc;

	for (size_t i = 0; i < t->nkeys; i++) {
		v[i].text = k->keybuf->data ? (const char *)k->keybuf->data + k->caps[i].off : "";
		v[i].len = k->caps[i].len;
		v[i].is_null = !k->caps[i].set || k->caps[i].is_null;
	}
	rn_buf_reset(&m->pdir);
	rn_buf_reset(&m->ppv);
	if ((rc = rn_part_layout(&m->pdir, &m->ppv, (const char *const *)t->keys, v, t->nkeys)) ||
	    (rc = rn_buf_append_u8(&m->pdir, 0)) || (rc = rn_buf_append_u8(&m->ppv, 0)))
		return rc;
	const char *pv = (const char *)m->ppv.data, *dir = (const char *)m->pdir.data;
	uint32_t h = hash_str(pv);
	for (size_t i = 0; i < t->nparts && !p; i++)
		if (t->parts[i].hash == h && !strcmp(t->parts[i].pv, pv))
			p = &t->parts[i];
	if (!p) {
		/* a directory name longer than NAME_MAX could never be created */
		for (const char *s = dir, *e; *s; s = *e ? e + 1 : e) {
			e = strchr(s, '/');
			e = e ? e : s + strlen(s);
			if (e - s > 255) {
				snprintf(why, cap,
					 "partition directory name %.40s... is %zu bytes, "
					 "more than 255",
					 s, (size_t)(e - s));
				return RN_EINVAL;
			}
		}
		if (t->nparts == RN_MAT_MAX_OPEN_PARTITIONS) {
			rn_log_info("mat",
				    "table %s: %d partitions open; finishing their files early",
				    t->name, RN_MAT_MAX_OPEN_PARTITIONS);
			if ((rc = finish_parts(m, t, &t->spilled, &t->nspilled)))
				return rc;
			/* the writers became files: count the files (a walk, as rare as the
			 * spill itself, which walks them all) */
			size_t mem = 0;
			for (size_t i = 0; i < t->nspilled; i++)
				mem += t->spilled[i].data.cap;
			mem_set(m, t, mem);
		}
		struct mat_part *np = rn_reallocarray(t->parts, t->nparts + 1, sizeof(*np));
		if (!np)
			return RN_ENOMEM;
		t->parts = np;
		p = &np[t->nparts];
		memset(p, 0, sizeof(*p));
		struct rn_pq_options po = {.created_by = m->created_by,
					   .zstd_level = m->zstd_level};
		if (!(p->pv = rn_strdup(pv)) || !(p->dir = rn_strdup(dir)) ||
		    (rc = rn_pq_writer_create(&p->pq, t->dcols, t->ndcols, &po))) {
			rn_free(p->pv);
			rn_free(p->dir);
			return rc ? rc : RN_ENOMEM;
		}
		p->hash = h;
		t->nparts++;
	}
	size_t before = rn_pq_mem(p->pq);
	if ((rc = replay(p->pq, k->tape)) || (rc = rn_pq_row_end(p->pq))) {
		rn_pq_row_abort(p->pq);
		return rc;
	}
	mem_set(m, t, t->mem - before + rn_pq_mem(p->pq));
	return 0;
}

/*
 * One record of a typed table: its row, or (when it does not fit) why not in `why` and no
 * row. Errors other than a misfit (memory) are returned.
 */
static int add_typed_row(struct rn_mat *m, struct mat_table *t, const char *stream_id,
			 const char *principal, int record_type, const struct rn_protoplan *plan,
			 const uint8_t *p, size_t len, int64_t now, const struct rn_mat_clock *clk,
			 char *why, size_t cap)
{
	struct pq_sink k = {.w = t->pq,
			    .t = t,
			    .stream_id = stream_id,
			    .principal = principal,
			    .now = now,
			    .scratch = &m->scratch};
	static const struct rn_row_sink sink_fns = {NULL,  k_null,  k_i64, k_f64,    k_bytes,
						    k_dec, k_begin, k_end, k_missing};
	struct rn_row_sink sink = sink_fns;
	struct rec r;
	const char *json = (const char *)p;
	size_t jlen = len;
	const char *bad;
	int rc;

	sink.ctx = &k;
	why[0] = 0;
	if (t->top_set)
		memset(t->top_set, 0, t->ncols);
	if (t->nkeys) {
		rn_buf_reset(&m->tape);
		rn_buf_reset(&m->keybuf);
		k.tape = &m->tape;
		k.keybuf = &m->keybuf;
	}
	if (record_type != RN_MAT_JSON && plan) {
		rc = rn_protorow_decode(plan, p, len, &sink, why, cap);
		goto decoded;
	}
	if (record_type != RN_MAT_JSON) {
		if ((bad = decode_record(p, len, &r))) {
			snprintf(why, cap, "%s", bad);
			return 0;
		}
		clock_fix(&r, clk);
		if (!r.has_payload) {
			snprintf(why, cap, "the record has no payload to fill the columns from");
			return 0;
		}
		k.env = &r;
		k.env_bytes = p;
		k.env_len = len;
		json = (const char *)r.payload.ptr;
		jlen = r.payload.len;
	}
	rc = rn_jsonrow_decode(t->schema, json, jlen, &sink, why, cap);
decoded:
	if (rc == 0 && t->nkeys)
		rc = route_row(m, t, &k, why, cap);
	else if (rc == 0)
		rc = rn_pq_row_end(t->pq);
	if (rc == 0)
		return 0;
	if (!t->nkeys)
		rn_pq_row_abort(t->pq);
	if (rc == RN_EINVAL || rc == RN_ERANGE) {
		if (!why[0])
			snprintf(why, cap, "value out of range for its column");
		return 0;
	}
	return rc;
}

/* The index of stream's plan in t->plans, or -1. */
static long plan_index(const struct mat_table *t, const char *stream)
{
	uintptr_t v = (uintptr_t)rn_strmap_get(&t->plan_ids, stream, strlen(stream));
	return v ? (long)v - 1 : -1;
}

static const struct rn_protoplan *find_plan(const struct mat_table *t, const char *stream)
{
	long i = plan_index(t, stream);
	return i < 0 ? NULL : t->plans[i].plan;
}

/* Is this DescriptorProto runnel.v1.Record (the agent's envelope: message Record with
 * device_id = 1 and payload = 7)? */
static int is_envelope_descriptor(const uint8_t *d, size_t len)
{
	struct rn_pb_reader rd, fr;
	struct rn_pb_field f, ff;
	int named = 0, dev = 0, pay = 0;
	rn_pb_reader_init(&rd, d, len);
	while (rn_pb_next(&rd, &f) == 1) {
		if (f.num == 1 && f.wt == RN_PB_LEN)
			named = f.len == 6 && !memcmp(f.ptr, "Record", 6);
		if (f.num != 2 || f.wt != RN_PB_LEN)
			continue;
		const uint8_t *name = NULL;
		size_t nlen = 0;
		uint64_t num = 0;
		rn_pb_reader_init(&fr, f.ptr, f.len);
		while (rn_pb_next(&fr, &ff) == 1) {
			if (ff.num == 1 && ff.wt == RN_PB_LEN) {
				name = ff.ptr;
				nlen = ff.len;
			} else if (ff.num == 3 && ff.wt == RN_PB_VARINT) {
				num = ff.u;
			}
		}
		dev |= num == 1 && nlen == 9 && !memcmp(name, "device_id", 9);
		pay |= num == 7 && nlen == 7 && !memcmp(name, "payload", 7);
	}
	return named && dev && pay;
}

/* The message name of a DescriptorProto (field 1), or NULL. */
static void descriptor_name(const uint8_t *d, size_t len, const uint8_t **name, size_t *nlen)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	rn_pb_reader_init(&rd, d, len);
	while (rn_pb_next(&rd, &f) == 1)
		if (f.num == 1 && f.wt == RN_PB_LEN) {
			*name = f.ptr;
			*nlen = f.len;
		}
}

int rn_mat_stream_descriptor(struct rn_mat *m, const char *table, const char *stream_id,
			     const uint8_t *desc, size_t len)
{
	struct mat_table *t;
	struct rn_protoplan *plan;
	char err[400];
	int rc;

	if ((rc = get_table(m, table, 0, &t)))
		return rc;
	if (is_envelope_descriptor(desc, len))
		return 0;
	if (!t->schema) {
		/* every record would become an undecodable row: refuse the stream at create */
		const uint8_t *name = NULL;
		size_t nlen = 0;
		descriptor_name(desc, len, &name, &nlen);
		return fail(m, RN_EINVAL,
			    "table %s has no schema (it holds runnel.v1.Record "
			    "envelopes); to send message %.*s to it, declare its columns in the "
			    "server config: schemas = ( { table = \"%s\"; columns = ( ... ); } ) "
			    "(auto_create makes a new table from the descriptor)",
			    table, name ? (int)(nlen > 100 ? 100 : nlen) : 1,
			    name ? (const char *)name : "?", table);
	}
	if ((rc = rn_protorow_plan(t->schema, desc, len, &plan, err, sizeof(err))))
		return fail(m, rc, "descriptor does not fit table %s: %s", table, err);
	long i = plan_index(t, stream_id);
	if (i >= 0) {
		rn_protorow_plan_free(t->plans[i].plan);
		t->plans[i].plan = plan;
		return 0;
	}
	struct stream_plan *np = rn_reallocarray(t->plans, t->nplans + 1, sizeof(*np));
	char *sid = np ? rn_strdup(stream_id) : NULL;
	if (np)
		t->plans = np;
	if (!sid ||
	    rn_strmap_put(&t->plan_ids, sid, strlen(sid), (void *)(uintptr_t)(t->nplans + 1))) {
		rn_free(sid);
		rn_protorow_plan_free(plan);
		return RN_ENOMEM;
	}
	np[t->nplans].stream = sid;
	np[t->nplans++].plan = plan;
	return 0;
}

void rn_mat_stream_forget(struct rn_mat *m, const char *stream_id)
{
	for (size_t i = 0; i < m->ntables; i++) {
		struct mat_table *t = m->tables[i];
		long k = plan_index(t, stream_id);
		if (k < 0)
			continue;
		rn_strmap_del(&t->plan_ids, stream_id, strlen(stream_id));
		rn_free(t->plans[k].stream);
		rn_protorow_plan_free(t->plans[k].plan);
		t->plans[k] = t->plans[--t->nplans];
		/* the last one moved into k: its index changes (a replace, never allocates) */
		if ((size_t)k < t->nplans)
			rn_strmap_put(&t->plan_ids, t->plans[k].stream, strlen(t->plans[k].stream),
				      (void *)(uintptr_t)(k + 1));
	}
}

int rn_mat_create_from_descriptor(struct rn_mat *m, const char *table, const uint8_t *desc,
				  size_t len)
{
	struct rn_schema *sc;
	char err[400];
	int rc;

	if (rn_mat_table_exists(m, table) == 1)
		return 0;
	if (is_envelope_descriptor(desc, len))
		return rn_mat_ensure_table(m, table);
	if (!(sc = rn_calloc(1, sizeof(*sc))))
		return RN_ENOMEM;
	if ((rc = rn_protorow_schema_from_descriptor(desc, len, sc, err, sizeof(err)))) {
		rn_schema_free(sc);
		rn_free(sc);
		return fail(m, rc, "cannot make a table from the descriptor: %s", err);
	}
	if ((rc = rn_mat_define_table(m, table, sc))) {
		rn_schema_free(sc);
		rn_free(sc);
		return rc;
	}
	/* a failed create leaves nothing declared, so that the client's retry can declare the
	 * table again */
	if ((rc = rn_mat_ensure_table(m, table)))
		drop_def(m, table);
	return rc;
}

/* Remembers that `t` holds rows of stream_id up to `offset` (its txn at commit). */
static int note_stream(struct mat_table *t, const char *stream_id, int64_t offset)
{
	struct pending_stream *ps = find_stream(t->streams, t->nstreams, stream_id);
	if (!ps) {
		if (t->nstreams == t->capstreams) {
			size_t nc = t->capstreams ? t->capstreams * 2 : 8;
			struct pending_stream *s = rn_reallocarray(t->streams, nc, sizeof(*s));
			if (!s)
				return RN_ENOMEM;
			t->streams = s;
			t->capstreams = nc;
		}
		ps = &t->streams[t->nstreams];
		if (!(ps->id = rn_strdup(stream_id)))
			return RN_ENOMEM;
		t->nstreams++;
	}
	ps->last = offset;
	return 0;
}

/* Has table t (pending, retrying or committed) got stream_id's batch `offset` already? */
static int has_batch(struct mat_table *t, const char *stream_id, int64_t offset)
{
	struct pending_stream *ps = find_stream(t->streams, t->nstreams, stream_id);
	struct pending_stream *rs = find_stream(t->retry_streams, t->retry_nstreams, stream_id);
	return offset <= rn_delta_txn(t->delta, stream_id) || (ps && offset <= ps->last) ||
	       (rs && offset <= rs->last);
}

/* The summary of a period's bad-record warnings that got no line of their own. */
static void warn_summary(void *ctx, const char *name, uint64_t batches, uint64_t records)
{
	(void)ctx;
	rn_log_warn("mat",
		    "table %s: %llu more batch(es) with %llu bad record(s) in the last %lld s "
		    "(each kept with its reason; not logged one by one)",
		    name ? name : "(other tables)", (unsigned long long)batches,
		    (unsigned long long)records, (long long)(RN_MAT_WARN_PERIOD_US / 1000000));
}

/* Counts one batch's bad records (dead letters of a typed table, records of an envelope table
 * kept undecoded) and gives it one warning line, unless the table had its line in this period:
 * then it goes into the table's summary. A flood of bad records costs a few lines, whatever
 * the number of records or batches. */
static void warn_bad(struct rn_mat *m, const struct mat_table *t, const char *stream_id,
		     int64_t offset, size_t bad, size_t nrec, size_t first_index, const char *why)
{
	int64_t now = rn_mono_us();
	if (t->schema)
		m->dead_records += bad;
	else
		m->undecodable += bad;
	rn_lograte_tick(&m->warn, now, warn_summary, m);
	if (!rn_lograte_note(&m->warn, t->name, bad, now))
		return;
	if (t->schema)
		rn_log_warn("mat",
			    "table %s stream %s batch %lld: %zu of %zu record(s) to %s; first "
			    "(record %zu): %s",
			    t->name, stream_id, (long long)offset, bad, nrec, t->dlq->name,
			    first_index, why);
	else
		rn_log_warn("mat",
			    "table %s stream %s batch %lld: %zu of %zu record(s) undecodable, kept "
			    "in payload_raw; first (record %zu): %s",
			    t->name, stream_id, (long long)offset, bad, nrec, first_index, why);
}

void rn_mat_tick(struct rn_mat *m, int64_t now_us)
{
	rn_lograte_tick(&m->warn, now_us, warn_summary, m);
}

void rn_mat_stats(const struct rn_mat *m, struct rn_mat_stats *st)
{
	*st = m->ms;
	st->dead_records = m->dead_records;
	st->undecodable = m->undecodable;
	st->warnings_suppressed = m->warn.suppressed;
	st->maint_running = (uint64_t)atomic_load(&m->maint_running);
}

/* Puts the rows of one validated batch into t's builders (and its dead letters into its
 * dead-letter table's) and notes the stream. On failure part of the batch may be in them:
 * the caller rebuilds. */
static int add_rows(struct rn_mat *m, struct mat_table *t, const char *stream_id, int64_t offset,
		    int record_type, const uint8_t *batch, size_t len, int64_t now,
		    const struct rn_mat_clock *clk, const char *principal)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	size_t dead = 0, nrec = 0, first_index = 0;
	char why[512], first_why[512] = "";
	int rc = 0;

	/* A typed table's dead letters are committed before the table: a batch the table has
	 * is in its dead-letter table too. */
	int dlq_has = t->dlq && has_batch(t->dlq, stream_id, offset);
	const struct rn_protoplan *plan = find_plan(t, stream_id);
	rn_pb_reader_init(&rd, batch, len);
	for (size_t index = 0; rn_pb_next(&rd, &f) == 1; index++, nrec++) {
		if (!t->schema) {
			const char *bad = NULL;
			rc = add_envelope_row(m, t, stream_id, record_type, f.ptr, f.len, now, NULL,
					      clk, &bad);
			if (!rc && bad && !dead++) {
				snprintf(first_why, sizeof(first_why), "%s", bad);
				first_index = index;
			}
		} else {
			rc = add_typed_row(m, t, stream_id, principal, record_type, plan, f.ptr,
					   f.len, now, clk, why, sizeof(why));
			if (!rc && why[0]) {
				if (!dead++) {
					snprintf(first_why, sizeof(first_why), "%s", why);
					first_index = index;
				}
				if (!dlq_has) {
					struct dead_ref dr = {why, offset, index};
					rc = add_envelope_row(m, t->dlq, stream_id, record_type,
							      f.ptr, f.len, now, &dr, clk, NULL);
				}
			}
		}
		if (rc)
			return rc;
	}
	mem_sync(m, t);
	if (dead && t->dlq && !dlq_has)
		mem_sync(m, t->dlq);
	if (dead && t->dlq && !dlq_has && (rc = note_stream(t->dlq, stream_id, offset)))
		return rc;
	if ((rc = note_stream(t, stream_id, offset)))
		return rc;
	if (dead && !m->refilling) /* a refill adds batches that were reported already */
		warn_bad(m, t, stream_id, offset, dead, nrec, first_index, first_why);
	return 0;
}

/* Empties the open builders of t: its writer or partitions and the files they finished
 * early, its pending streams. RN_ENOMEM (a new writer) leaves t without a writer: dirty. */
static int drop_open(struct rn_mat *m, struct mat_table *t)
{
	struct rn_pq_options po = {.created_by = m->created_by, .zstd_level = m->zstd_level};
	free_parts(t);
	free_files(t->spilled, t->nspilled);
	t->spilled = NULL;
	t->nspilled = 0;
	free_streams(t->streams, t->nstreams);
	t->streams = NULL;
	t->nstreams = t->capstreams = 0;
	m->pending_bytes -= t->pending_bytes;
	t->pending_bytes = 0;
	mem_set(m, t, 0);
	rn_ledger_settle(m->ledger, &t->debts);
	if (t->nkeys)
		return 0;
	rn_pq_writer_destroy(t->pq);
	t->pq = NULL;
	return rn_pq_writer_create(&t->pq, t->cols ? t->cols : envelope_cols,
				   t->cols ? t->ncols : t->env_ncols, &po);
}

/*
 * Makes t's open builders (and its dead-letter table's) hold exactly the batches added since
 * t's last commit: empties them (a file whose commit failed stays, to be committed as it is)
 * and has the refill callback add the table's batches again through rn_mat_refill_add, which
 * skips what t has committed or is committing (has_batch; dead letters likewise through the
 * dead-letter table's). On failure t stays dirty and the next add or flush tries again.
 */
static int rebuild(struct rn_mat *m, struct mat_table *t)
{
	int rc;
	t->dirty = 1;
	if (t->dlq)
		t->dlq->dirty = 1;
	if ((rc = drop_open(m, t)) || (t->dlq && (rc = drop_open(m, t->dlq))))
		return rc;
	if (m->refill) {
		m->err[0] = 0;
		m->refilling = t;
		rc = m->refill(m->refill_ctx, m, t->name);
		m->refilling = NULL;
		if (rc) {
			if (!m->err[0])
				fail(m, rc, "table %s: refill failed: %s", t->name,
				     rn_strerror(rc));
			return rc;
		}
	}
	t->dirty = 0;
	if (t->dlq)
		t->dlq->dirty = 0;
	return 0;
}

/* Rebuilds t's builders if a failure left them (or, for a dead-letter table, its typed
 * table's) dirty. */
static int make_clean(struct rn_mat *m, struct mat_table *t)
{
	int rc;
	if (t->is_dlq && t->dirty)
		for (size_t i = 0; i < m->ntables; i++)
			if (m->tables[i]->dlq == t && (rc = rebuild(m, m->tables[i])))
				return rc;
	if (t->dirty || (t->dlq && t->dlq->dirty))
		return rebuild(m, t);
	return 0;
}

/* Is batch a record list (field 1, length-delimited, only)? */
static int check_batch(struct rn_mat *m, const uint8_t *batch, size_t len)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	int rc;
	rn_pb_reader_init(&rd, batch, len);
	while ((rc = rn_pb_next(&rd, &f)) == 1)
		if (f.num != 1 || f.wt != RN_PB_LEN)
			return fail(m, RN_EINVAL, "batch holds something other than records");
	if (rc < 0)
		return fail(m, RN_EINVAL, "malformed record batch");
	return 0;
}

int rn_mat_refill_add(struct rn_mat *m, const char *table, const char *stream_id, int64_t offset,
		      int record_type, const uint8_t *batch, size_t len,
		      const struct rn_mat_clock *clk)
{
	return rn_mat_refill_add_as(m, table, stream_id, offset, record_type, batch, len, clk,
				    NULL);
}

int rn_mat_refill_add_as(struct rn_mat *m, const char *table, const char *stream_id, int64_t offset,
			 int record_type, const uint8_t *batch, size_t len,
			 const struct rn_mat_clock *clk, const char *principal)
{
	struct mat_table *t = m->refilling;
	int rc;
	if (!t || strcmp(t->name, table))
		return fail(m, RN_EINVAL, "refill of table %s outside its rebuild", table);
	if (has_batch(t, stream_id, offset))
		return 0;
	if ((rc = check_batch(m, batch, len)))
		return rc;
	if ((rc = add_rows(m, t, stream_id, offset, record_type, batch, len, rn_now_us(), clk,
			   principal)))
		return fail(m, rc, "table %s: cannot add record again: %s", table, rn_strerror(rc));
	t->pending_bytes += len;
	m->pending_bytes += len;
	/* uncharged rows would let their writer past its share: the refill fails (the table
	 * stays dirty and is rebuilt again before its next add or flush) */
	if (rn_ledger_charge(m->ledger, &t->debts, principal, len))
		return fail(m, RN_ENOMEM, "table %s: cannot count its writer's bytes", table);
	return 0;
}

int rn_mat_add(struct rn_mat *m, const char *table, const char *stream_id, int64_t offset,
	       int record_type, const uint8_t *batch, size_t len, const struct rn_mat_clock *clk)
{
	return rn_mat_add_as(m, table, stream_id, offset, record_type, batch, len, clk, NULL);
}

int rn_mat_add_as(struct rn_mat *m, const char *table, const char *stream_id, int64_t offset,
		  int record_type, const uint8_t *batch, size_t len, const struct rn_mat_clock *clk,
		  const char *principal)
{
	struct mat_table *t;
	int rc;

	if (m->refilling)
		return fail(m, RN_EINVAL, "rn_mat_add inside a refill");
	if ((rc = get_table(m, table, 0, &t)))
		return rc;
	if ((rc = make_clean(m, t)))
		return fail(m, rc, "table %s: cannot rebuild its pending rows: %s", table,
			    m->err[0] ? m->err : rn_strerror(rc));
	if (has_batch(t, stream_id, offset))
		return 0;
	/* validate the list before touching the builders */
	if ((rc = check_batch(m, batch, len)))
		return rc;
	if ((rc = add_rows(m, t, stream_id, offset, record_type, batch, len, rn_now_us(), clk,
			   principal))) {
		/* all of the batch or none of it: the builders go back to the batches before
		 * it, refilled by the caller (now, or at the next call if that fails too); the
		 * batch is not in the caller's log yet, and the client sends it again */
		rebuild(m, t);
		return fail(m, rc, "table %s: cannot add record: %s", table, rn_strerror(rc));
	}
	if (rn_ledger_charge(m->ledger, &t->debts, principal, len)) {
		/* the batch is in the builders but not counted: undone as a failed add */
		rebuild(m, t);
		return fail(m, RN_ENOMEM, "table %s: cannot count its writer's bytes", table);
	}
	t->pending_bytes += len;
	m->pending_bytes += len;
	return 0;
}

/* ---- The flush: detached on the loop, finished and committed by a job ---- */

/* Writes and commits t's retry file with the retry txns through the flush handle. 0 on
 * success or duplicate; on failure why in t->ferr, and the written file is kept (by path)
 * for the next try. The flush job's (or the loop's when no job is in flight). */
static int commit_retry(struct mat_table *t)
{
	char name[256];
	int64_t mtime = 0, version;
	struct rn_delta_txn *txns;
	int rc = 0;

	if (!(txns = rn_calloc(t->retry_nstreams ? t->retry_nstreams : 1, sizeof(*txns))))
		return RN_ENOMEM;
	for (size_t i = 0; i < t->retry_nstreams; i++) {
		txns[i].app_id = t->retry_streams[i].id;
		txns[i].version = t->retry_streams[i].last;
	}
	if (!t->retry_path) {
		rc = rn_delta_write_file(t->fdelta, t->retry_file.data, t->retry_file.len, name,
					 sizeof(name), &mtime);
		if (!rc && !(t->retry_path = rn_strdup(name)))
			rc = RN_ENOMEM;
		t->retry_mtime = mtime;
	}
	if (!rc) {
		struct rn_delta_add add = {.path = t->retry_path,
					   .size = (int64_t)t->retry_file.len,
					   .mtime_ms = t->retry_mtime,
					   .stats = t->retry_stats};
		rc = rn_delta_commit(t->fdelta, &add, 1, txns, t->retry_nstreams, &version);
		if (rc == RN_EEXIST) {
			rn_log_warn("mat",
				    "table %s: batch already committed by another writer; "
				    "%s is an orphan",
				    t->name, t->retry_path);
			rc = 0;
		} else if (!rc) {
			rn_log_debug("mat", "table %s: committed version %lld", t->name,
				     (long long)version);
		}
	}
	rn_free(txns);
	if (rc) {
		snprintf(t->ferr, sizeof(t->ferr), "table %s: commit failed: %s", t->name,
			 rn_delta_errmsg(t->fdelta));
		return rc;
	}
	/* freed, not kept between flushes: a table would hold a file's worth of memory while
	 * idle (the memory budget counts only what holds rows); the next rn_pq_finish still
	 * takes the writer's storage rather than copying it (it trades with any empty out) */
	rn_buf_free(&t->retry_file);
	rn_free(t->retry_stats);
	t->retry_stats = NULL;
	rn_free(t->retry_path);
	t->retry_path = NULL;
	return 0;
}

/* Writes the not yet written files of t's retry commit into their partition directories
 * and commits all of them with the retry txns in one version. 0 on success or duplicate;
 * on failure (why in t->ferr) the written files are kept (by path) for the next try. */
static int commit_part(struct mat_table *t)
{
	char name[4400];
	struct rn_buf uri = {0};
	struct rn_delta_add *adds = NULL;
	struct rn_delta_txn *txns = NULL;
	int64_t version;
	int rc = 0;

	for (size_t i = 0; i < t->nrfiles && !rc; i++) {
		struct mat_file *f = &t->rfiles[i];
		if (f->path)
			continue;
		rc = rn_delta_write_file_in(t->fdelta, f->dir, f->data.data, f->data.len, name,
					    sizeof(name), &f->mtime_ms);
		if (rc)
			break;
		rn_buf_reset(&uri);
		if ((rc = rn_part_uri(&uri, name, strlen(name))) ||
		    (rc = rn_buf_append_u8(&uri, 0)))
			break;
		if (!(f->path = rn_strdup((const char *)uri.data))) {
			rc = RN_ENOMEM;
			break;
		}
		f->size = (int64_t)f->data.len;
		rn_buf_free(&f->data);
	}
	rn_buf_free(&uri);
	if (rc) {
		snprintf(t->ferr, sizeof(t->ferr), "table %s: cannot write a data file: %s",
			 t->name, rn_delta_errmsg(t->fdelta));
		return rc;
	}
	if (!(adds = rn_calloc(t->nrfiles ? t->nrfiles : 1, sizeof(*adds))) ||
	    !(txns = rn_calloc(t->retry_nstreams ? t->retry_nstreams : 1, sizeof(*txns)))) {
		rn_free(adds);
		return RN_ENOMEM;
	}
	for (size_t i = 0; i < t->nrfiles; i++) {
		const struct mat_file *f = &t->rfiles[i];
		adds[i] = (struct rn_delta_add){f->path, f->size, f->mtime_ms, f->stats, f->pv};
	}
	for (size_t i = 0; i < t->retry_nstreams; i++) {
		txns[i].app_id = t->retry_streams[i].id;
		txns[i].version = t->retry_streams[i].last;
	}
	rc = rn_delta_commit(t->fdelta, adds, t->nrfiles, txns, t->retry_nstreams, &version);
	if (rc == RN_EEXIST) {
		rn_log_warn("mat",
			    "table %s: batch already committed by another writer; its %zu "
			    "file(s) are orphans",
			    t->name, t->nrfiles);
		rc = 0;
	} else if (!rc) {
		rn_log_debug("mat", "table %s: committed version %lld (%zu files)", t->name,
			     (long long)version, t->nrfiles);
	}
	rn_free(adds);
	rn_free(txns);
	if (rc) {
		snprintf(t->ferr, sizeof(t->ferr), "table %s: commit failed: %s", t->name,
			 rn_delta_errmsg(t->fdelta));
		return rc;
	}
	free_files(t->rfiles, t->nrfiles);
	t->rfiles = NULL;
	t->nrfiles = 0;
	t->retry_part = 0;
	return 0;
}

/* Does t hold a flush not yet settled (detached, finished or committed, not yet read back)? */
static int flush_held(const struct mat_table *t)
{
	return t->retry_nstreams || t->retry_part || t->fpq || t->nfparts || t->fcommitted;
}

/* Rows in t's open builders? */
static int open_rows(const struct mat_table *t)
{
	return t->nkeys ? t->nparts || t->nspilled : t->pq && rn_pq_rows(t->pq);
}

/*
 * Loop: hands t's open builders, its pending streams and their bytes to the flush (the
 * fields of mat_table's flush block) and gives t fresh builders. 1 if t has a flush to run
 * (just detached, or one held from an earlier round: then the open rows wait, and the round
 * answers RN_EAGAIN), 0 if nothing, or an error (the builders stay attached).
 */
static int detach(struct rn_mat *m, struct mat_table *t)
{
	if (flush_held(t)) {
		if (open_rows(t) && !m->round_rc)
			m->round_rc = RN_EAGAIN;
		return 1;
	}
	if (!open_rows(t))
		return 0; /* (rows only in its dead-letter table, or none) */
	if (t->nkeys) {
		t->fparts = t->parts;
		t->nfparts = t->nparts;
		t->parts = NULL;
		t->nparts = 0;
		t->rfiles = t->spilled;
		t->nrfiles = t->nspilled;
		t->spilled = NULL;
		t->nspilled = 0;
		t->retry_part = 1;
	} else {
		struct rn_pq_options po = {.created_by = m->created_by,
					   .zstd_level = m->zstd_level};
		struct rn_pq_writer *nw;
		int rc = rn_pq_writer_create(&nw, t->cols ? t->cols : envelope_cols,
					     t->cols ? t->ncols : t->env_ncols, &po);
		if (rc)
			return fail(m, rc, "table %s: no writer for the next rows", t->name);
		t->fpq = t->pq;
		t->pq = nw;
	}
	t->retry_streams = t->streams;
	t->retry_nstreams = t->nstreams;
	t->streams = NULL;
	t->nstreams = t->capstreams = 0;
	t->fbytes = t->pending_bytes;
	t->pending_bytes = 0;
	t->fmem = t->mem; /* the new writer's few bytes are counted at its first batch */
	m->mem_flush += t->fmem;
	mem_set(m, t, 0);
	struct rn_ledger_debts d = t->fdebts; /* settled (empty); its array is reused */
	t->fdebts = t->debts;
	t->debts = d;
	return 1;
}

/*
 * Worker (or loop, inline): finishes t's detached builders into a file (or files) and
 * commits them with the retry txns through t's flush handle, opened here the first time.
 * Touches only t's flush block, its immutable fields (name, dir, columns) and the log.
 */
static void unit_run(struct mat_table *t)
{
	int rc;
	t->frc = 0;
	t->ferr[0] = 0;
	if (t->fcommitted)
		return;
	if (!t->fdelta && (rc = rn_delta_open(&t->fdelta, t->dir, NULL, NULL))) {
		snprintf(t->ferr, sizeof(t->ferr), "table %s: cannot open its log to commit: %s",
			 t->name, rn_strerror(rc));
		t->frc = rc;
		return;
	}
	if (t->nkeys) {
		if (t->nfparts && (rc = finish_list(t, &t->fparts, &t->nfparts, &t->rfiles,
						    &t->nrfiles, t->ferr, sizeof(t->ferr)))) {
			t->fbroken = 1;
			t->frc = rc;
			return;
		}
		rc = commit_part(t);
	} else {
		if (t->fpq) {
			size_t rows = rn_pq_rows(t->fpq);
			if ((rc = rn_pq_finish(t->fpq, &t->retry_file))) {
				snprintf(t->ferr, sizeof(t->ferr), "table %s: parquet: %s", t->name,
					 rn_strerror(rc));
				t->fbroken = 1;
				t->frc = rc;
				return;
			}
			t->retry_stats =
				rn_pq_delta_stats(t->fpq, t->cols ? t->cols : envelope_cols,
						  t->cols ? t->ncols : t->env_ncols, rows);
			if (!t->retry_stats) {
				/* every add carries its stats: finish again, after a refill */
				snprintf(t->ferr, sizeof(t->ferr), "table %s: stats: %s", t->name,
					 rn_strerror(RN_ENOMEM));
				t->fbroken = 1;
				t->frc = RN_ENOMEM;
				return;
			}
			rn_pq_writer_destroy(t->fpq);
			t->fpq = NULL;
		}
		rc = t->retry_nstreams ? commit_retry(t) : 0;
	}
	if (rc) {
		if (!t->ferr[0])
			snprintf(t->ferr, sizeof(t->ferr), "table %s: commit: %s", t->name,
				 rn_strerror(rc));
		t->frc = rc;
	} else {
		t->fcommitted = 1;
	}
	t->fversion = rn_delta_version(t->fdelta);
}

/* Loop: forgets a flush whose builders broke; its rows come back through the refill. */
static void unit_discard(struct mat_table *t)
{
	rn_pq_writer_destroy(t->fpq);
	t->fpq = NULL;
	free_part_list(t->fparts, t->nfparts);
	t->fparts = NULL;
	t->nfparts = 0;
	free_files(t->rfiles, t->nrfiles);
	t->rfiles = NULL;
	t->nrfiles = 0;
	t->retry_part = 0;
	rn_buf_free(&t->retry_file);
	rn_free(t->retry_stats);
	t->retry_stats = NULL;
	rn_free(t->retry_path); /* written and not committed: an orphan file, as after a crash */
	t->retry_path = NULL;
	free_streams(t->retry_streams, t->retry_nstreams);
	t->retry_streams = NULL;
	t->retry_nstreams = 0;
	t->fbroken = 0;
	t->frc = 0;
}

/* One flush job: a table, preceded by its dead-letter table (committed first). */
struct flush_job {
	struct mat_table *u[2]; /* their flush blocks are the worker's until flush_done */
	size_t n;
	int64_t run_us;
	struct rn_mat *m; /* the loop's, never touched by the worker */
};

/* On a worker (or inline): the units in order; a table whose dead letters did not commit
 * waits (unfinished builders of it are refilled with them if the dead letters broke). */
static void flush_run(void *arg)
{
	struct flush_job *j = arg;
	int64_t t0 = rn_mono_us();
	for (size_t i = 0; i < j->n; i++) {
		struct mat_table *t = j->u[i];
		if (i && !j->u[0]->fcommitted) {
			t->frc = RN_EAGAIN;
			snprintf(t->ferr, sizeof(t->ferr), "table %s: waits for its dead letters",
				 t->name);
			if (j->u[0]->fbroken && (t->fpq || t->nfparts))
				t->fbroken = 1;
			continue;
		}
		unit_run(t);
	}
	/* this thread's compression contexts and write buffer: not kept between jobs (nor
	 * leaked when the pool's threads exit) */
	rn_zstd_release();
	rn_fs_thread_release();
	j->run_us = rn_mono_us() - t0;
}

static void maintain(struct rn_mat *m, struct mat_table *t, int64_t now_ms);

/* Loop: one job of the round is over; the last one ends the round. */
static void round_step(struct rn_mat *m)
{
	if (--m->round_jobs)
		return;
	int64_t now_ms = rn_mono_us() / 1000;
	for (size_t k = 0; k < m->ntables; k++) /* checkpoint, compact, vacuum when due */
		maintain(m, m->tables[k], now_ms);
	if (m->round_cb) {
		void (*cb)(void *, int) = m->round_cb;
		m->round_cb = NULL;
		cb(m->round_ctx, m->round_rc);
	}
}

/* Back on the loop, once per job: settles each table's flush. */
static void flush_done(void *arg, int cancelled)
{
	struct flush_job *j = arg;
	struct rn_mat *m = j->m;
	for (size_t i = 0; i < j->n; i++) {
		struct mat_table *t = j->u[i];
		int rc = 0;
		t->fj = NULL;
		/* the detached rows' bytes: settled once, whatever came of them (a failed
		 * commit keeps its file in memory, a broken one is refilled and charged again) */
		m->pending_bytes -= t->fbytes;
		t->fbytes = 0;
		rn_ledger_settle(m->ledger, &t->fdebts);
		if (cancelled) {
			rc = RN_EAGAIN;
		} else if (t->fbroken) {
			rc = fail(m, t->frc ? t->frc : RN_EIO, "%s", t->ferr);
			unit_discard(t);
			t->dirty = 1; /* a dead-letter table is rebuilt by its typed table */
		} else if (t->fcommitted) {
			/* the loop's handle reads the commit back: has_batch and rn_mat_add skip
			 * its batches by their txns from now on; until then by retry_streams */
			if (rn_delta_refresh(t->delta)) {
				rn_log_warn("mat", "table %s: %s", t->name,
					    rn_delta_errmsg(t->delta));
			} else {
				free_streams(t->retry_streams, t->retry_nstreams);
				t->retry_streams = NULL;
				t->retry_nstreams = 0;
				t->fcommitted = 0;
			}
		} else if (t->frc) {
			rc = t->frc == RN_EAGAIN ? RN_EAGAIN : fail(m, t->frc, "%s", t->ferr);
		}
		if (rc && (!m->round_rc || m->round_rc == RN_EAGAIN))
			m->round_rc = rc;
		if (!flush_held(t)) { /* a failed commit keeps its file for the retry */
			m->mem_flush -= t->fmem;
			t->fmem = 0;
		}
	}
	m->ms.flush_jobs++;
	m->ms.flush_us += (uint64_t)j->run_us;
	if ((uint64_t)j->run_us > m->ms.flush_max_us)
		m->ms.flush_max_us = (uint64_t)j->run_us;
	m->ms.flush_inflight--;
	rn_free(j);
	round_step(m);
}

/* Loop: the job of t (and its dead-letter table), submitted or run inline. */
static void flush_table(struct rn_mat *m, struct mat_table *t)
{
	struct mat_table *u[2];
	size_t n = 0;
	int rc, dlq_lag = t->dlq && flush_held(t->dlq) && open_rows(t->dlq);
	if (t->dlq && (rc = detach(m, t->dlq)) != 0) {
		if (rc < 0) {
			m->round_rc = m->round_rc && m->round_rc != RN_EAGAIN ? m->round_rc : rc;
			return; /* the table waits for its dead letters */
		}
		u[n++] = t->dlq;
	}
	if (dlq_lag && !flush_held(t)) {
		/* its dead letters wait behind a held flush: so do its new rows */
		if (open_rows(t) && !m->round_rc)
			m->round_rc = RN_EAGAIN;
	} else if ((rc = detach(m, t)) < 0)
		m->round_rc = m->round_rc && m->round_rc != RN_EAGAIN ? m->round_rc : rc;
	else if (rc)
		u[n++] = t;
	if (!n)
		return;
	struct flush_job *j = rn_calloc(1, sizeof(*j));
	if (!j) { /* what was detached stays held: the next round runs it */
		m->round_rc = m->round_rc && m->round_rc != RN_EAGAIN
				      ? m->round_rc
				      : fail(m, RN_ENOMEM, "flush job");
		return;
	}
	memcpy(j->u, u, n * sizeof(*u));
	j->n = n;
	j->m = m;
	for (size_t i = 0; i < n; i++)
		u[i]->fj = j;
	m->round_jobs++;
	m->ms.flush_inflight++;
	if (m->flush_inline || !m->flush_submit ||
	    m->flush_submit(m->flush_ctx, flush_run, flush_done, j)) {
		flush_run(j); /* no worker (or the queue is full): on this thread */
		flush_done(j, 0);
	}
}

/* ---- Delta maintenance: decided here on the loop, run inline or by a job on a worker ---- */

/* One table's maintenance run on a worker (rn_mat_options.maint_submit). */
struct maint_job {
	/* the worker's from submit until maint_run returns (server/README.md "Threads"): */
	char *dir;          /* the table's directory: the job opens its own rn_delta on it */
	unsigned tasks;     /* RN_MAINT_* */
	int64_t keep_after; /* the loop's version at submit: its next commit is above it */
	struct rn_maint_result res;
	int64_t run_us;
	/* atomics of the materializer, read and changed by both sides */
	const atomic_int *stop;
	atomic_int *running;
	/* the loop's, never touched by the worker */
	struct rn_mat *m;
	struct mat_table *t;
};

/* Adds a run's result to the counters and the table's clock (loop). */
static void maint_account(struct rn_mat *m, struct mat_table *t, const struct rn_maint_result *r,
			  int64_t us)
{
	m->ms.maint_done++;
	m->ms.maint_failed += r->failed != 0;
	m->ms.maint_us += (uint64_t)us;
	if ((uint64_t)us > m->ms.maint_max_us)
		m->ms.maint_max_us = (uint64_t)us;
	m->ms.checkpoints += r->ckpt_version >= 0 && !r->failed;
	m->ms.compactions += r->compactions;
	m->ms.compacted_files += r->compacted;
	m->ms.vacuumed_files += (uint64_t)r->vacuumed;
	if (r->ckpt_version > t->maint.ckpt_mark)
		t->maint.ckpt_mark = r->ckpt_version;
}

/* On a worker: touches only the job's own fields and its own rn_delta handle. */
static void maint_run(void *arg)
{
	struct maint_job *j = arg;
	struct rn_delta *d = NULL;
	int64_t t0 = rn_mono_us();
	int rc;
	atomic_fetch_add(j->running, 1);
	if ((rc = rn_delta_open(&d, j->dir, NULL, NULL))) {
		rn_log_warn("mat", "%s: maintenance cannot open the table: %s", j->dir,
			    rn_strerror(rc));
		j->res = (struct rn_maint_result){.ckpt_version = -1, .failed = 1};
	} else {
		rn_maint_run(d, rn_delta_maint_get(), j->tasks, j->keep_after, j->stop, &j->res);
	}
	rn_delta_close(d);
	/* this thread's compression contexts and write buffer: not kept between jobs (nor
	 * leaked when the pool's threads exit) */
	rn_zstd_release();
	rn_fs_thread_release();
	j->run_us = rn_mono_us() - t0;
	atomic_fetch_sub(j->running, 1);
}

/* Back on the loop, once per job. */
static void maint_done(void *arg, int cancelled)
{
	struct maint_job *j = arg;
	struct rn_mat *m = j->m;
	struct mat_table *t = j->t;
	t->job = NULL;
	m->ms.maint_inflight--;
	if (cancelled) {
		m->ms.maint_cancelled++;
	} else {
		maint_account(m, t, &j->res, j->run_us);
		/* take the job's commits in now, while the log files are fresh, rather than
		 * at the next flush's commit (which would read them after losing a race) */
		if (j->res.compactions && !m->maint_stopped && rn_delta_refresh(t->delta))
			rn_log_warn("mat", "table %s: %s", t->name, rn_delta_errmsg(t->delta));
	}
	rn_free(j->dir);
	rn_free(j);
}

/* Starts what is due for t: inline without a submit function, else as a job (at most one
 * per table; a refused submit leaves the clocks as they were, so the next flush asks
 * again). */
static void maintain(struct rn_mat *m, struct mat_table *t, int64_t now_ms)
{
	const struct rn_delta_maint *cfg = rn_delta_maint_get();
	int64_t version = rn_delta_version(t->delta);
	unsigned due;
	if (t->job || m->maint_stopped)
		return;
	due = rn_maint_due(cfg, &t->maint, version, rn_delta_checkpoint_version(t->delta), now_ms);
	if (!due)
		return;
	/* the flush's handle is a writer too: its next commit lands above its version */
	int64_t fkeep = t->fdelta ? t->fversion : INT64_MAX;
	if (!m->maint_submit) {
		struct rn_maint_result r;
		int64_t t0 = rn_mono_us();
		rn_maint_started(&t->maint, due, version, now_ms);
		rn_maint_run(t->delta, cfg, due, fkeep, NULL, &r);
		maint_account(m, t, &r, rn_mono_us() - t0);
		return;
	}
	struct maint_job *j = rn_calloc(1, sizeof(*j));
	if (!j || !(j->dir = rn_strdup(t->dir))) {
		rn_free(j);
		m->ms.maint_refused++;
		return;
	}
	j->tasks = due;
	j->keep_after = version < fkeep ? version : fkeep;
	j->stop = &m->maint_stop;
	j->running = &m->maint_running;
	j->m = m;
	j->t = t;
	if (m->maint_submit(m->maint_ctx, maint_run, maint_done, j)) {
		rn_free(j->dir);
		rn_free(j);
		m->ms.maint_refused++;
		return;
	}
	rn_maint_started(&t->maint, due, version, now_ms);
	t->job = j;
	m->ms.maint_inflight++;
}

void rn_mat_maint_stop(struct rn_mat *m)
{
	m->maint_stopped = 1;
	atomic_store(&m->maint_stop, 1);
}

int rn_mat_flush_start(struct rn_mat *m, void (*cb)(void *ctx, int rc), void *ctx)
{
	if (m->round_jobs)
		return RN_EAGAIN;
	m->round_rc = 0;
	m->round_cb = cb;
	m->round_ctx = ctx;
	m->round_jobs = 1; /* the round cannot end while it is being started */
	/* builders left behind by a failure are rebuilt first (a dead-letter table's by its
	 * typed table): the refill skips what a held flush has */
	for (size_t k = 0; k < m->ntables; k++) {
		struct mat_table *t = m->tables[k];
		int rc;
		if (!t->is_dlq && (t->dirty || (t->dlq && t->dlq->dirty)) && (rc = rebuild(m, t)))
			m->round_rc = m->round_rc ? m->round_rc
						  : fail(m, rc,
							 "table %s: cannot rebuild "
							 "its pending rows: %s",
							 t->name, rn_strerror(rc));
	}
	/* one job per table, holding its dead-letter table (committed first: a batch
	 * committed to a typed table must already be in its dead-letter table, which
	 * rn_mat_add relies on after a crash); a dead-letter table no typed table holds (a
	 * failed create left it) flushes on its own */
	for (size_t k = 0; k < m->ntables; k++) {
		struct mat_table *t = m->tables[k];
		int owned = 0;
		if (t->is_dlq)
			for (size_t i = 0; i < m->ntables && !owned; i++)
				owned = m->tables[i]->dlq == t;
		if (owned || t->fj || t->dirty || (t->dlq && (t->dlq->dirty || t->dlq->fj)))
			continue;
		flush_table(m, t);
	}
	round_step(m);
	return 0;
}

int rn_mat_flush(struct rn_mat *m)
{
	int rc = 0;
	if (m->round_jobs)
		return fail(m, RN_EAGAIN, "a flush is in flight");
	/* a round that found a flush held from before leaves the rows behind it (RN_EAGAIN):
	 * the next round takes them */
	for (int i = 0; i < 3; i++) {
		m->flush_inline = 1;
		rn_mat_flush_start(m, NULL, NULL);
		m->flush_inline = 0;
		if ((rc = m->round_rc) != RN_EAGAIN)
			break;
	}
	if (rc == RN_EAGAIN)
		fail(m, rc, "rows still pending after three flush rounds");
	return rc;
}

int rn_mat_flush_busy(const struct rn_mat *m)
{
	return m->round_jobs != 0;
}

void rn_mat_memory(const struct rn_mat *m, size_t *builders, size_t *flush)
{
	if (builders)
		*builders = m->mem_builders;
	if (flush)
		*flush = m->mem_flush;
}

size_t rn_mat_pending_bytes(const struct rn_mat *m)
{
	return m->pending_bytes;
}

size_t rn_mat_principal_pending_bytes(const struct rn_mat *m, const char *principal, size_t *active)
{
	return rn_ledger_held(m->ledger, principal, active);
}

size_t rn_mat_table_pending_bytes(const struct rn_mat *m, const char *table, size_t *active,
				  size_t *largest)
{
	size_t mine = 0, n = 0, top = 0;
	for (size_t i = 0; i < m->ntables; i++) {
		const struct mat_table *t = m->tables[i];
		size_t b = t->pending_bytes + t->fbytes; /* a flush in flight still holds them */
		if (!b)
			continue;
		n++;
		if (b > top)
			top = b;
		if (table && !strcmp(t->name, table))
			mine = b;
	}
	if (active)
		*active = n;
	if (largest)
		*largest = top;
	return mine;
}

int rn_mat_committed(struct rn_mat *m, const char *table, const char *stream_id, int64_t *offset)
{
	struct mat_table *t;
	int rc;
	*offset = -1;
	if ((rc = get_table(m, table, 0, &t)))
		return rc == RN_ENOTFOUND ? 0 : rc;
	if ((rc = rn_delta_refresh(t->delta)))
		return fail(m, rc, "table %s: %s", table, rn_delta_errmsg(t->delta));
	*offset = rn_delta_txn(t->delta, stream_id);
	return 0;
}

const char *rn_mat_errmsg(const struct rn_mat *m)
{
	return m->err;
}
