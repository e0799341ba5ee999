/*
 * The materializer's internals, shared by its files (one job each; mat.h is the contract):
 *   mat.c        the object: create/destroy, error text, counters and pending-byte queries
 *   table.c      the table registry: declarations (schemas, partitioning), opening a table
 *                (a typed table together with its dead-letter table, as one step), lookups
 *   descriptor.c streams' PROTO descriptors: per-stream decoding plans, auto_create
 *   decode.c     one record into a row: envelope and typed rows, clock correction, dead
 *                letters, partition routing, the bad-record warnings
 *   stage.c      one batch, whole or not at all: rn_mat_add/refill, the staging rule
 *                (rebuild: drop the open builders, refill them from the caller's log)
 *   flush.c      the flush: detach on the loop, finish and commit (with retry) in a job,
 *                settle on the loop; rounds
 *   maintain.c   Delta maintenance: decided on the loop, run inline or by a job
 * Everything here runs on the loop thread, except what flush.c and maintain.c hand to their
 * jobs (the fields of mat_table's flush block, a maint_job): server/README.md "Threads".
 * Names shared between the files are rn_mat__<name>; file-local ones are static.
 */
#ifndef RN_MAT_INT_H
#define RN_MAT_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.h"
#include "maint.h"
#include "mat.h"
#include "parquet.h"
#include "rn_buf.h"
#include "rn_lograte.h"
#include "rn_strmap.h"
#include "schema.h"

struct rn_protoplan;
struct rn_part_spec;
struct flush_job;
struct maint_job;

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

/* The envelope schema (table.c): an envelope table's, and every dead-letter table's, columns. */
extern const struct rn_pq_col rn_mat__envelope_cols[C_COUNT];

struct pending_stream {
	char *id;
	int64_t first; /* lowest offset added (first <= last): the rows hold first .. last */
	int64_t last;  /* highest offset added and not yet committed */
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
	char *dir; /* the table's root: <mat root>/a/b/c (a path or an s3:// URL) */
	/* the mat's store settings (immutable; read by the flush job's open) */
	const struct rn_tstore_config *store;
	int64_t retry_max_age_ms; /* rn_mat_options.retry_file_max_age_ms, resolved */
	/* typed tables: the declared schema (owned by the definition), its Parquet schema tree
	 * and the dead-letter table; NULL for envelope tables */
	const struct rn_schema *schema;
	struct rn_pq_col *cols;
	size_t ncols;
	size_t env_ncols; /* envelope tables: columns written, C_COUNT or C_CLOCK (older log) */
	struct mat_table *dlq;
	int is_dlq;
	/* the loop's handle read a newer commit of it (this server's flush, or another
	 * writer's found by a rebuild) since rn_mat_committed_tables last reported it */
	int acks_due;
	/* when the newest commit of the table this server knows of was made (Unix ms, 0 none):
	 * set by a flush that committed (fcommit_ms), at open from the log (rn_mat__commit_ms) */
	int64_t commit_ms;
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
	/* dead-letter tables: the latest rows added (a ring of RN_MAT_DEAD_LATEST, newest at
	 * dead_head - 1), for the fleet API's tables page; NULL until the first one */
	struct rn_mat_dead_sample *dead_latest;
	size_t dead_head, dead_n;
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
	int frc;            /* the job's result for this table: 0 or the error of its commit */
	int fbroken;        /* the detached builders could not be finished: refill their rows */
	int fcommitted;     /* committed; retry_streams kept until the loop's handle has read it */
	int64_t fversion;   /* fdelta's version after the last job (when fdelta is open) */
	int64_t fcommit_ms; /* the job's commit's wall time (Unix ms), 0 if it made none */
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
	 * may hold part of a failed batch or a broken writer: emptied and refilled
	 * (rn_mat__rebuild()) before the next add or flush; a dirty dead-letter table is rebuilt by
	 * its typed table */
	int dirty;
};

/* When t's newest commit was made, for a table just opened (Unix ms, 0 unknown): the
 * commitInfo.timestamp of its newest commit if the loop's handle read one, else the newest
 * modification time among its _delta_log commit files (among all its log files if none is
 * left; one listing: at open only). */
int64_t rn_mat__commit_ms(const struct mat_table *t);

struct table_def {
	char *name;
	struct rn_schema *schema;
	char **parts; /* partition_by from the config (the log decides; see rn_mat__get_table) */
	size_t nparts;
	int *derive; /* per top-level column (rn_part_spec_check), or NULL */
};

struct rn_mat {
	char *root; /* the table root (rn_mat_options.table_root, else data_root) */
	/* the settings every table store is opened with: a deep copy, immutable after
	 * rn_mat_create, so flush and maintenance workers read it without a lock; its strings
	 * are store_strs (wiped and freed at destroy) */
	struct rn_tstore_config *store;
	char *store_strs[8]; /* s3 endpoint, region, bucket, access and secret key, session
			      * token, credentials file, profile */
	char *spool_dir;
	int64_t retry_max_age_ms; /* rn_mat_options.retry_file_max_age_ms, resolved */
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
	uint64_t dead_records;    /* records of typed tables sent to their dead-letter tables */
	uint64_t undecodable;     /* records of envelope tables kept undecoded in payload_raw */
	uint64_t clock_corrected; /* envelope rows whose times were corrected (clock_corrected) */
	/* maintenance off the loop (rn_mat_options.maint_submit; NULL = inline) */
	int (*maint_submit)(void *ctx, void (*run)(void *arg),
			    void (*done)(void *arg, int cancelled), void *arg);
	void *maint_ctx;
	/* the Delta maintenance settings (rn_mat_options.maint): set at create, read only */
	struct rn_delta_maint maint_cfg;
	atomic_int maint_stop;    /* rn_mat_maint_stop: workers read it between steps */
	atomic_int maint_running; /* jobs inside maint_run now (workers change it) */
	int maint_stopped;        /* loop's copy of maint_stop */
	/* flushes off the loop (rn_mat_options.flush_submit; NULL = inline): one round at a
	 * time, one job per table (with its dead-letter table) in it */
	int (*flush_submit)(void *ctx, void (*run)(void *arg),
			    void (*done)(void *arg, int cancelled), void *arg);
	void *flush_ctx;
	/* full pages of the writers compressed off their thread (rn_mat_options.page_submit) */
	int (*page_submit)(void *ctx, void (*run)(void *arg),
			   void (*done)(void *arg, int cancelled), void *arg);
	void *page_ctx;
	size_t round_jobs; /* jobs of the round not done yet (+1 while it is being started) */
	int round_rc;      /* the round's first error (RN_EAGAIN: rows left for the next one) */
	void (*round_cb)(void *ctx, int rc);
	void *round_ctx;
	int flush_inline;       /* rn_mat_flush: this round runs every job on the calling thread */
	struct rn_mat_stats ms; /* the maint_* and task counters (loop) */
	char err[512];
};

/* Where a dead letter came from and why: its attributes runnel.error, runnel.offset (the
 * batch's offset in its stream) and runnel.record (its index in the batch). */
struct dead_ref {
	const char *reason;
	int64_t offset;
	size_t index;
};

/* mat.c */

/* Sets m's error text; returns rc. */
int rn_mat__fail(struct rn_mat *m, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* table.c */

void rn_mat__free_streams(struct pending_stream *s, size_t n);
void rn_mat__free_files(struct mat_file *f, size_t n);
void rn_mat__free_part_list(struct mat_part *p, size_t n);
void rn_mat__free_parts(struct mat_table *t);
/* Frees an open table (not its ledger debts: the caller settles or frees them). */
void rn_mat__table_free(struct mat_table *t);
void rn_mat__def_free(struct table_def *d);
/* Forgets the declaration of a table no open table uses (a create that failed). */
void rn_mat__drop_def(struct rn_mat *m, const char *name);
/*
 * Where a table's root string becomes a table store (server/store/tstore.h) and a Delta
 * handle on it: every handle of the materializer (the loop's, the flush job's, a maintenance
 * job's) is opened here, on the calling thread, with a store object of its own, made from
 * root (a local directory or an s3:// URL) and cfg (the mat's store settings, m->store;
 * NULL = defaults). rn_delta_open_part's arguments and errors (and the store's: RN_EINVAL
 * for a malformed root, RN_ECONFIG).
 */
int rn_mat__delta_open(struct rn_delta **out, const char *root, const struct rn_tstore_config *cfg,
		       const char *schema_json, const char *const *parts, size_t nparts);
/* rn_delta_exists for a table root: 1, 0 or a negative rn_err code (RN_ENOMEM, and the
 * store's open or listing errors: RN_EINVAL, RN_ECONFIG, RN_ECONNECT, RN_EIO). */
int rn_mat__delta_exists(const char *root, const struct rn_tstore_config *cfg);
/*
 * Finds the table, opening (and with create, creating) it on first use. A typed table opens
 * together with its dead-letter table as one step: on success both are registered, on
 * failure neither is (a dead-letter table this call opened is closed again, and a
 * declaration it made from a table's log is dropped; on disk stays what was durable).
 * RN_EINVAL (name), RN_ENOTFOUND (!create, no such table), RN_ECONFLICT, RN_ENOTSUP,
 * RN_ENOMEM or the Delta log's error; why in m->err.
 */
int rn_mat__get_table(struct rn_mat *m, const char *name, int create, struct mat_table **out);

/* descriptor.c */

/* The decoding plan of stream's own PROTO message in t, or NULL (envelope or JSON). */
const struct rn_protoplan *rn_mat__find_plan(const struct mat_table *t, const char *stream);

/* decode.c */

/*
 * One row of an envelope table. `dead` != NULL makes it a dead letter of a typed table:
 * the record as received (decoded as far as it goes) with the reason among its attributes.
 * A record that does not decode is kept raw, and *undecodable (not NULL) says why.
 * RN_ENOMEM or a writer error: the row is aborted, but the batch's earlier rows stay.
 */
int rn_mat__add_envelope_row(struct rn_mat *m, struct mat_table *t, const char *stream_id,
			     int record_type, const uint8_t *p, size_t len, int64_t now,
			     const struct dead_ref *dead, const struct rn_mat_clock *clk,
			     const char **undecodable);
/*
 * One record of a typed table: its row, or (when it does not fit) why not in `why` and no
 * row. Errors other than a misfit (memory, a writer error) are returned.
 */
int rn_mat__add_typed_row(struct rn_mat *m, struct mat_table *t, const char *stream_id,
			  const char *principal, int record_type, const struct rn_protoplan *plan,
			  const uint8_t *p, size_t len, int64_t now, const struct rn_mat_clock *clk,
			  char *why, size_t cap);
/* Counts one batch's bad records and gives it a rate-limited warning. */
void rn_mat__warn_bad(struct rn_mat *m, const struct mat_table *t, const char *stream_id,
		      int64_t offset, size_t bad, size_t nrec, size_t first_index, const char *why);

/* stage.c */

/* t's open builders hold `mem` heap bytes now (the memory budget's counters; loop). */
void rn_mat__mem_set(struct rn_mat *m, struct mat_table *t, size_t mem);

/*
 * Makes t's open builders (and its dead-letter table's) hold exactly the batches added since
 * t's last commit, through the refill callback. On failure t stays dirty. RN_* of the
 * refill or RN_ENOMEM.
 */
int rn_mat__rebuild(struct rn_mat *m, struct mat_table *t);

/* flush.c */

/* Finishes t's open partitions into (*files, *n) (loop). RN_ENOMEM or the writer's error. */
int rn_mat__finish_parts(struct rn_mat *m, struct mat_table *t, struct mat_file **files, size_t *n);

/* maintain.c */

/* Starts what maintenance is due for t (loop): inline, or as a job. */
void rn_mat__maintain(struct rn_mat *m, struct mat_table *t, int64_t now_ms);

#endif
