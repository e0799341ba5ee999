/*
 * The materializer: turns durable batches into Delta tables. It decodes each batch's records
 * once, straight from the received bytes into per-table column builders (no intermediate
 * message objects), and on flush writes one Parquet file per table with pending rows and
 * commits it to the table's _delta_log together with one txn{appId = stream id, version =
 * last offset} per stream, so a replay of the WAL after a crash never adds a batch twice.
 *
 * Tables live under the table root (table_root, else data_root): a local directory or an
 * S3 prefix "s3://bucket/prefix" (server/store/tstore.h). The table name "a.b.c" maps to
 * <root>/a/b/c, its dead-letter table to <root>/a/b/c_dead_letters, on the same store. Names
 * are checked by rn_table_name_check() before any path is built, so no name can escape the
 * root.
 *
 * Delta maintenance (checkpoints, compaction, vacuum: server/delta/maint.h) is decided at
 * each flush and, given a submit function, run off the loop as one job per table at a time:
 * the job opens its own rn_delta handle (and store object) on the table's root, so it shares
 * nothing mutable with the materializer (it gets the directory and the task mask, and gives back a
 * result); the Delta log's put-if-absent orders its commits and the flush's.
 *
 * Lifetime: the server creates one materializer at start; all calls run on the server's
 * loop thread; flush jobs (rn_mat_flush_start) and maintenance jobs run on workers with
 * what they were handed. Before rn_mat_destroy, the caller stops maintenance
 * (rn_mat_maint_stop) and drains both pools, so that every submitted job has had its done
 * call.
 */
#ifndef RN_MAT_H
#define RN_MAT_H

#include <stddef.h>
#include <stdint.h>

#include "rn_table_name.h" /* rn_table_name_check: every name is checked before a path */

/* Record types, numerically equal to databricks.zerobus.RecordType. */
enum rn_mat_record_type { RN_MAT_PROTO = 1, RN_MAT_JSON = 2 };

struct rn_mat;

/*
 * The refill callback (rn_mat_options.refill). A batch that fails part way in rn_mat_add,
 * or a Parquet writer broken by a failed page cut, finish or stats, leaves `table`'s open
 * builders (and its dead-letter table's) in a state that cannot be trusted. The
 * materializer then empties them (a finished file whose commit failed stays and is
 * committed as it is) and calls refill(ctx, m, table), which must hand every batch of
 * `table` that the caller added successfully since the table's last commit (more is fine:
 * what the table has committed, or is committing, is skipped) to rn_mat_refill_add, in the
 * order they were first added; the batch whose add failed is not among them (the caller
 * logs a batch only after rn_mat_add returned 0, and the client sends it again). The
 * server reads them from its WAL. 0, or an error: the table then stays marked, its rows
 * are dropped again and refill called again before the next rn_mat_add or rn_mat_flush
 * touches it, and that call fails with the error until a refill succeeds. refill must not
 * call rn_mat_add. NULL: the materializer keeps no copy and has none to ask for, so a
 * rebuild drops the table's pending rows; only for callers that add everything since
 * their last successful flush again after any error.
 */
typedef int (*rn_mat_refill_fn)(void *ctx, struct rn_mat *m, const char *table);

struct rn_delta_maint;
struct rn_tstore_config;

struct rn_mat_options {
	const char *data_root; /* required; must exist */
	/* Where the tables live: a local directory or "s3://bucket/prefix"; NULL = data_root.
	 * Not checked here: a malformed root fails each table's open (RN_EINVAL). */
	const char *table_root;
	/* The store settings every table store is opened with (endpoint, credentials, spool
	 * directory for an s3:// root), deep-copied (secrets wiped at rn_mat_destroy); NULL =
	 * the defaults (enough for a local root). */
	const struct rn_tstore_config *store;
	rn_mat_refill_fn refill; /* see above; NULL = none */
	void *refill_ctx;
	const char *created_by;   /* Parquet created_by; NULL = "runnel-server version <v>" */
	size_t max_pending_bytes; /* advisory: rn_mat_pending_bytes() past this = flush soon */
	int zstd_level;           /* Parquet page compression; 0 = 1 (fast; compaction may
				   * recompress) */
	/* Runs maintenance off the loop: hands run(arg) to a worker thread and done(arg,
	 * cancelled) back to the loop thread later, exactly once, with rn_pool_submit's contract
	 * (server/pool.h); returns 0, or an error when it cannot take the job now (RN_EAGAIN:
	 * full; the table asks again at a later flush). NULL: maintenance runs inline in
	 * rn_mat_flush, on the loop. */
	int (*maint_submit)(void *ctx, void (*run)(void *arg),
			    void (*done)(void *arg, int cancelled), void *arg);
	void *maint_ctx;
	/* Runs flush jobs off the loop (rn_mat_flush_start), with maint_submit's contract;
	 * NULL, or a refused submit: the job runs inline, on the loop. */
	int (*flush_submit)(void *ctx, void (*run)(void *arg),
			    void (*done)(void *arg, int cancelled), void *arg);
	void *flush_ctx;
	/* Delta maintenance settings (server/delta/maint.h), copied; NULL = rn_maint_defaults. */
	const struct rn_delta_maint *maint;
	/* A commit retried with a data file written this long ago (ms; 0 = half of
	 * RN_DELTA_ORPHAN_MIN_AGE_MS) writes the file again under a new name first: the old one
	 * may be taken for an orphan and vacuumed by any writer of the table before the commit
	 * names it. Tests set a small value. */
	int64_t retry_file_max_age_ms;
	/* Compresses full Parquet pages off the thread filling the table's writer
	 * (rn_pq_options.page_submit: done may run on any thread); NULL: on that thread. */
	int (*page_submit)(void *ctx, void (*run)(void *arg),
			   void (*done)(void *arg, int cancelled), void *arg);
	void *page_ctx;
};

int rn_mat_create(struct rn_mat **out, const struct rn_mat_options *opt);
void rn_mat_destroy(struct rn_mat *m);

struct rn_schema;

/*
 * Declares `table` as a typed table with `schema` (on success the mat owns the heap
 * allocated schema and frees it; on error the caller still does). Must come before the table's
 * first use. Its records are decoded into the columns: JSON records under schema.h/jsonrow.h's
 * rules; runnel.v1.Record envelopes by their payload, a JSON object, with columns the payload lacks
 * filled from the envelope when their names and types match it (device_id, source, topic: string;
 * event_time, receive_time: timestamp; seq: long; flags: integer; attributes: string) and
 * stream_id (string) from the stream. A record that does not fit goes to the dead-letter
 * table "<table>_dead_letters" (the envelope schema; the record as received, and
 * attributes runnel.error = the reason, runnel.offset = its batch, runnel.record = its index
 * in the batch), committed before the table itself, with its own
 * txn per stream, so both stay exactly once. RN_EINVAL (bad name; a name whose dead-letter
 * table name would be invalid; declared twice), RN_ENOTSUP (a type this release cannot write
 * yet: timestamp_ntz), RN_ENOMEM.
 */
int rn_mat_define_table(struct rn_mat *m, const char *table, struct rn_schema *schema);

/* Open partitions (distinct partition value tuples) of one table between flushes: a record
 * for one more finishes every open partition's file into memory (committed, with the
 * rest, at the next flush), which bounds the writers, not the pending bytes. */
#define RN_MAT_MAX_OPEN_PARTITIONS 1024

/*
 * rn_mat_define_table with partitioning and derived columns (partition.h rn_part_spec;
 * spec may be NULL; its strings are copied). A partitioned table is created with
 * metaData.partitionColumns = spec->columns; its data files leave those columns out and
 * live in Hive directories (col=value/...), one file per partition value tuple per flush,
 * all of a flush committed in one Delta commit with the txns. A derived date column always
 * holds the UTC day of its source (a value the record gives for it is overwritten). An
 * existing table keeps the partition columns its log names: a spec naming other ones
 * makes its first use fail with RN_ECONFLICT. Errors as rn_mat_define_table, plus RN_EINVAL
 * for a spec rn_part_spec_check refuses (the reason in rn_mat_errmsg).
 */
struct rn_part_spec;
int rn_mat_define_table_ex(struct rn_mat *m, const char *table, struct rn_schema *schema,
			   const struct rn_part_spec *spec);

/*
 * Tells the materializer which protobuf message a PROTO stream of `table` sends (the
 * DescriptorProto of CreateIngestStreamRequest). For a typed table the descriptor is checked
 * against the columns (server/mat/protorow.h) and the stream's records are then decoded
 * through it; a runnel.v1.Record descriptor (the agent's envelope) keeps the envelope path
 * (its JSON payload fills the columns). An envelope table takes only the envelope: any other
 * message is refused (RN_EINVAL, the reason saying how to declare the table), since none of
 * its records would decode. Call it again after a restart, before the stream's batches are
 * replayed. 0, or RN_EINVAL with the reason in rn_mat_errmsg() (answer INVALID_ARGUMENT),
 * RN_ENOMEM.
 */
int rn_mat_stream_descriptor(struct rn_mat *m, const char *table, const char *stream_id,
			     const uint8_t *desc, size_t len);

/* Drops what rn_mat_stream_descriptor kept for stream_id (an ended ephemeral stream whose
 * records are all in their tables). Unknown ids are ignored. */
void rn_mat_stream_forget(struct rn_mat *m, const char *stream_id);

/* Creates `table` as a typed table whose columns come from a descriptor (proto2 mapping of
 * protorow.h) — for auto_create — unless the descriptor is the runnel envelope (then an
 * envelope table). Its dead-letter table is created first; on failure nothing is declared
 * or registered, so the caller may simply call again. RN_EINVAL with the reason, RN_ENOMEM,
 * RN_EIO/RN_EDELTA. */
int rn_mat_create_from_descriptor(struct rn_mat *m, const char *table, const uint8_t *desc,
				  size_t len);

/* Creates `table` as an empty Delta table (version 0: protocol, metaData with its declared
 * schema or the default envelope schema) if it does not exist yet; for a typed table its
 * dead-letter table too. RN_EINVAL for a bad name, RN_EIO/RN_EDELTA. */
int rn_mat_ensure_table(struct rn_mat *m, const char *table);

/* True (1) if the table exists (has a _delta_log with version 0), 0 if not, or RN_EINVAL,
 * RN_ENOMEM or the table store's error when it cannot say (never taken for "no"). */
int rn_mat_table_exists(struct rn_mat *m, const char *table);

/* A stream's clock reference, from the agent's x-runnel-clock header: on the boot
 * `boot_id`, server wall time = the agent's CLOCK_BOOTTIME + delta_us. */
struct rn_mat_clock {
	char boot_id[64];
	int64_t delta_us;
};

/*
 * Adds one durable batch. `batch` is the wire form of ProtoEncodedRecordBatch or
 * JsonRecordBatch (field 1, repeated; the two are identical on the wire). PROTO records are
 * runnel.v1.Record. Batches with offset <= the table's committed txn version for stream_id
 * are skipped. The materializer copies what it keeps. A record that does not decode becomes
 * a row with its raw bytes in payload_raw and the reason in attributes, never dropped.
 * `clk` (NULL = none) corrects envelope records made before the device's clock was set:
 * one with boot_time_us and the reference's boot_id gets receive_time = boot_time_us +
 * delta_us (event_time shifted the same when it is before RN_CLOCK_TRUSTED_US) and
 * clock_corrected = true; any other record keeps its times, clock_corrected = false.
 * A batch is added whole or not at all: on any error none of its rows (dead letters
 * included) stays pending, so the caller sends it again. To undo a batch that failed part
 * way the materializer keeps no copy of its pending batches: it drops the table's pending
 * rows and has the refill callback (rn_mat_options.refill) add the table's earlier batches
 * again, before returning the error (or before the next call, if the refill failed).
 * RN_EINVAL (bad table name, a batch that is not a record list, a call from inside a
 * refill), RN_ENOMEM, RN_EIO, or the refill's error.
 */
int rn_mat_add(struct rn_mat *m, const char *table, const char *stream_id, int64_t offset,
	       int record_type, const uint8_t *batch, size_t len, const struct rn_mat_clock *clk);

/*
 * Only from inside the refill callback, for the table being refilled: adds one batch of it
 * again, as rn_mat_add does (skipped if the table has committed, is committing or already
 * holds it) but without rebuilding anything first. Rows get the receive time of now where
 * the record has none. 0; RN_EINVAL (another table, outside a refill, a batch that is not
 * a record list), RN_ENOMEM: the callback should stop and return the error.
 */
int rn_mat_refill_add(struct rn_mat *m, const char *table, const char *stream_id, int64_t offset,
		      int record_type, const uint8_t *batch, size_t len,
		      const struct rn_mat_clock *clk);

/*
 * rn_mat_add and rn_mat_refill_add naming the principal that wrote the batch (NUL-terminated,
 * copied as needed; NULL = unknown): a typed table's column declared `from = "principal"`
 * gets it in every row of the batch, whatever the record says (unknown: null, or "" in a NOT
 * NULL column). The plain calls are these with NULL. Same errors.
 */
int rn_mat_add_as(struct rn_mat *m, const char *table, const char *stream_id, int64_t offset,
		  int record_type, const uint8_t *batch, size_t len, const struct rn_mat_clock *clk,
		  const char *principal);
int rn_mat_refill_add_as(struct rn_mat *m, const char *table, const char *stream_id, int64_t offset,
			 int record_type, const uint8_t *batch, size_t len,
			 const struct rn_mat_clock *clk, const char *principal);

/*
 * For a batch rn_mat_add took but the caller then could not log (its WAL append failed):
 * marks the table's pending rows to be dropped and added again through the refill callback
 * before the next rn_mat_add or rn_mat_flush touches the table, so that it holds exactly what
 * the caller's log holds and the batch is gone (its sender was refused and may send it
 * again, on another stream). 0, or RN_ENOTFOUND when the materializer has no such table.
 */
int rn_mat_drop_pending(struct rn_mat *m, const char *table);

/* Writes and commits every table's pending rows. After 0, all batches added before the call
 * are in their tables. On error nothing is lost or doubled: the rows stay pending (rebuilt
 * through the refill callback if a writer broke) or their finished file waits for the next call,
 * which commits it first; the WAL still holds them. RN_EIO, RN_ENOSPC, RN_EDELTA,
 * RN_ENOMEM. */
int rn_mat_flush(struct rn_mat *m);

/*
 * Starts a flush round off the loop: on the loop, each table's open builders, pending
 * streams and bytes are detached (the table gets fresh builders, so adds go on), and one
 * job per table (with its dead-letter table, committed first) is handed to flush_submit;
 * the job finishes the Parquet file(s) (encoding, compression), writes and fsyncs them and
 * commits them with one txn per stream through the table's own flush handle (a second
 * rn_delta the job has to itself; the loop's handle reads the commit back when the job is
 * done). While a job is in flight its batches count as pending for rn_mat_add (skipped),
 * the refill (skipped) and rn_mat_table_pending_bytes / rn_mat_principal_pending_bytes
 * (still held); rn_mat_committed answers what is durable in the log, which is never ahead
 * of the caller's WAL. When the last job is done, on the loop, cb(ctx, rc) is called once:
 * rc 0 means every batch added before the call is in its table (rn_mat_flush's promise);
 * RN_EAGAIN that some rows wait for the next round (a flush held from a failed round ran
 * first; a job cancelled at shutdown); other errors as rn_mat_flush (detail in
 * rn_mat_errmsg). cb may run before this returns (no job to wait for, or jobs run inline).
 * Returns 0, or RN_EAGAIN without calling cb when a round is in flight already.
 * Maintenance is decided when the round ends. rn_mat_flush runs a round inline (waiting
 * for nothing: it fails with RN_EAGAIN while a round is in flight).
 */
int rn_mat_flush_start(struct rn_mat *m, void (*cb)(void *ctx, int rc), void *ctx);

/*
 * Calls fn(ctx, table) once for each table (dead-letter tables left out) whose loop handle
 * read a newer commit since the last call: a flush job that committed it (whatever became of
 * the round's other tables, so a round that failed or returned RN_EAGAIN for one table still
 * reports the others), or a rebuild after another writer's commit. The tables are then
 * forgotten until they commit again. On the loop, typically from the round's callback; fn
 * must not call into the materializer. Linear in the number of open tables.
 */
void rn_mat_committed_tables(struct rn_mat *m, void (*fn)(void *ctx, const char *table), void *ctx);

/* 1 while a round started by rn_mat_flush_start has jobs not done. */
int rn_mat_flush_busy(const struct rn_mat *m);

/* Stops maintenance for good: no job is submitted any more, and running ones end after
 * their current step (one checkpoint, compaction commit or vacuum). The caller then drains
 * the pool (every job's done call) before rn_mat_destroy. */
void rn_mat_maint_stop(struct rn_mat *m);

/*
 * Heap bytes the materializer holds for rows not yet in their tables (the server's memory
 * budget, memory_max_bytes): in *builders those of every table's open builders (Parquet
 * writers, partition files finished early), in *flush those handed to flush jobs in flight
 * or kept for a commit to retry (each may be NULL). Counters kept where builders grow (once
 * per batch, or per row of a partitioned table), move (a flush detaches them) and go (a
 * flush settles, a rebuild empties them): constant time. The builders' heap is their
 * buffers' capacities (rn_pq_mem); what a flush job's finish adds for a moment (the last
 * row group's chunks laid out once more, the footer) is not counted.
 */
void rn_mat_memory(const struct rn_mat *m, size_t *builders, size_t *flush);

/* Bytes of records added but not yet committed. */
size_t rn_mat_pending_bytes(const struct rn_mat *m);
/* Bytes of `table`'s batches added but not yet committed (0 for a table not known or NULL),
 * in *active the number of tables with such bytes and in *largest the most any one holds
 * (each may be NULL): the WAL's share of each table, for the server's fair-share limit.
 * Linear in the number of open tables. */
size_t rn_mat_table_pending_bytes(const struct rn_mat *m, const char *table, size_t *active,
				  size_t *largest);

/* The highest offset of stream_id committed to table (max txn version in its log), or -1.
 * RN_EINVAL for a bad name, RN_EIO/RN_EDELTA if the log cannot be read. */
/* Bytes of batches `principal` wrote (rn_mat_add_as, rn_mat_refill_add_as) added but not yet
 * committed, over all tables (0 for NULL, "" or a principal holding none); in *active (may be
 * NULL) the number of principals holding such bytes: the WAL's share of each principal, for
 * the server's fair-share limit. Batches added without a principal count for nobody. Released
 * when their table's pending bytes are (a flush, a rebuild that refills them with their
 * principals). Constant time (ledger.h). */
size_t rn_mat_principal_pending_bytes(const struct rn_mat *m, const char *principal,
				      size_t *active);

int rn_mat_committed(struct rn_mat *m, const char *table, const char *stream_id, int64_t *offset);

/* rn_mat_committed as the loop's handle last read the log, without reading it again: after a
 * flush round's done functions (they read each commit back) it covers this server's commits
 * at the cost of a hash look-up, for the committed acks of many streams. -1 for a table not
 * opened. Never fails. */
int64_t rn_mat_committed_read(struct rn_mat *m, const char *table, const char *stream_id);

const char *rn_mat_errmsg(const struct rn_mat *m);

/*
 * Bad records (dead letters of a typed table, undecodable records of an envelope table) are
 * kept one by one, but logged one line per batch (the count, the first one's index and
 * reason), and only the first such batch of a table per RN_MAT_WARN_PERIOD_US: later ones go
 * into one summary line per table per period (common/rn_lograte.h bounds the lines).
 * rn_mat_tick writes the summaries of a period that has ended; call it now and then (the
 * server does at each flush timer). now_us is monotonic (rn_mono_us).
 */
#define RN_MAT_WARN_PERIOD_US (10 * 1000000LL)
void rn_mat_tick(struct rn_mat *m, int64_t now_us);

/* Counters since the materializer was created (metrics). A batch the client sends again after
 * a failed add counts again. */
struct rn_mat_stats {
	uint64_t dead_records;        /* records sent to dead-letter tables */
	uint64_t undecodable;         /* records of envelope tables kept raw in payload_raw */
	uint64_t clock_corrected;     /* envelope rows added with clock_corrected = true (a
				       * batch undone part way may have counted some) */
	uint64_t warnings_suppressed; /* batches with bad records that got no line of their own */
	/* Delta maintenance (jobs: one per table and flush at which something was due) */
	uint64_t maint_done;      /* jobs that ran (inline or on a worker) */
	uint64_t maint_failed;    /* of which a task failed (logged; retried later) */
	uint64_t maint_cancelled; /* queued jobs dropped at shutdown */
	uint64_t maint_refused;   /* due, but the submit function refused (pool full) */
	uint64_t maint_inflight;  /* submitted, done not yet called (queued or running) */
	uint64_t maint_running;   /* running on a worker now */
	uint64_t maint_us;        /* time spent running jobs, microseconds */
	uint64_t maint_max_us;    /* the longest job */
	uint64_t checkpoints;     /* checkpoints written */
	uint64_t compactions;     /* compaction commits */
	uint64_t compacted_files; /* files they removed */
	uint64_t vacuumed_files;  /* data files deleted by vacuum */
	/* flush jobs (one per table with rows, and its dead-letter table, per round) */
	uint64_t flush_jobs;     /* done (on a worker or inline) */
	uint64_t flush_inflight; /* submitted, done not yet called */
	uint64_t flush_us;       /* time spent running them, microseconds */
	uint64_t flush_max_us;   /* the longest */
	uint64_t overlaps;       /* flushes rebuilt: another writer committed part (RN_EOVERLAP) */
};
void rn_mat_stats(const struct rn_mat *m, struct rn_mat_stats *st);
/* rn_mat_stats' clock_corrected alone (cheap: read around one rn_mat_add by the server to
 * count a stream's corrected records). */
uint64_t rn_mat_clock_corrected(const struct rn_mat *m);

/* One dead letter as the tables page shows it: when (unix ms), why, its first bytes. */
#define RN_MAT_DEAD_LATEST 5
struct rn_mat_dead_sample {
	int64_t t_ms;
	char reason[200];
	uint8_t sample[512];
	size_t sample_len;
};

/* What the loop's handle knows of a table (rn_mat_table_info); counts over the live files. */
struct rn_mat_table_info {
	const char *name; /* valid until the next call on m */
	int64_t version;  /* -1: no commit yet */
	size_t files;
	int64_t bytes, rows; /* rows: from the files' stats (numRecords), -1 unknown */
	size_t partitions;   /* distinct partition values among the files (0 unpartitioned) */
	/* when the table's newest commit known to this server was made (Unix ms, 0 unknown):
	 * the wall time of this server's last flush that committed it; for a table opened since
	 * (a restart) without a flush yet, the commitInfo.timestamp of the newest commit its log
	 * handle read, else (a checkpoint with no commit after it, a commit without commitInfo)
	 * the newest modification time among its _delta_log commit files (any log file when no
	 * commit file is left). A failed commit leaves it. */
	int64_t last_commit_ms;
	int has_dlq; /* a typed table: its dead-letter table below */
	const char *dlq_name;
	int64_t dlq_rows;                                            /* -1 unknown */
	const struct rn_mat_dead_sample *latest[RN_MAT_DEAD_LATEST]; /* newest first */
	size_t nlatest;
};
/*
 * The i-th table the materializer holds (dead-letter tables are not listed: they are a typed
 * table's dlq_*), i from 0: 0 with *info filled, RN_ENOTFOUND past the last, RN_ENOMEM.
 * Walks the table's files in the loop's Delta handle: per call, never per batch. Loop only.
 */
int rn_mat_table_info(const struct rn_mat *m, size_t *i, struct rn_mat_table_info *info);

#endif
