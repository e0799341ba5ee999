/*
 * The stream manager's internals, shared by its files and by no one else: server.c (config,
 * group commit, pressure, flush rounds, the protocol handlers, the composition root),
 * replay.c (WAL replay and failing-table retry), rest_handlers.c (REST inserts) and
 * token_ep.c (the token endpoint). Everything here belongs to the loop thread
 * (server/README.md "Threads and ownership"); the decisions about a stream's offsets are in
 * stream.h, its files in registry.h.
 */
#ifndef RN_SERVER_INT_H
#define RN_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <pthread.h>

#include "fleet.h"
#include "refusals.h"
#include "limits.h"
#include "mat.h"
#include "oauth.h"
#include "principal.h"
#include "refuselog.h"
#include "registry.h"
#include "rest.h"
#include "rn_buf.h"
#include "rn_list.h"
#include "rn_lograte.h"
#include "rn_strmap.h"
#include "server.h"
#include "stream.h"
#include "ttt.h"

struct event;
struct event_base;
struct rn_call;
struct rn_front;
struct rn_httpx;
struct rn_metrics;
struct rn_pool;
struct rn_seccache;
struct rn_tls;
struct rn_wal;
struct rn_wal_entry;
struct rn_tstore;
struct reg_op;
struct rest_pending;
struct token_job;

struct srv_stream {
	char id[40];
	char *table;
	int record_type;
	int64_t last_received;
	int64_t last_durable;
	int64_t last_committed;    /* the table's txn watermark for it as last read (-1 none):
				    * committed acks (stream.h), read at resume and after flushes */
	uint64_t inflight;         /* batch bytes appended and not yet durable (not yet acked) */
	int64_t sync_to;           /* while on rn_server.syncing: its newest offset in that group */
	uint64_t sync_bytes;       /* ... and the bytes of `inflight` the group covers */
	struct rn_call *call;      /* the call currently attached, or NULL */
	struct rn_mat_clock clock; /* the agent's boot timeline on our clock (has_clock) */
	int has_clock;             /* ... as kept in _streams/<id>.clock */
	int persistent;            /* registered; else ephemeral: gone with its call */
	int64_t ended_us;          /* ephemeral: mono time its call closed (0 while open) */
	int rest;                  /* its table's REST stream of this run (takes new requests) */
	unsigned rest_waiting;     /* REST requests waiting for its offsets to be durable */
	char owner[RN_PRINCIPAL_NAME_MAX + 1]; /* the principal that created it; "" = made
						* before owners were kept: anyone allowed the
						* table may resume it */
	int64_t used_s; /* persistent: wall time of its last create/resume/call end */
	/* a RetireStream call waiting for its records to be committed (answered OK by
	 * retire_stream), or NULL; cleared by on_closed if the client goes first */
	struct rn_call *retire_call;
	int retire_wanted; /* RetireStream asked for it: retired as soon as it can be */
	struct srv_stream *next, *prev; /* rn_server.streams: every stream (periodic walks) */
	/* on rn_server.dirty while it has batches the next group commit makes durable:
	 * last_received > sync_to (or last_durable when not syncing) exactly while linked
	 * (group_start empties the list) */
	struct rn_list dirty;
	/* on rn_server.syncing while the WAL group in flight holds batches of it (sync_to) */
	struct rn_list syncing;
	struct rn_list ended;     /* on rn_server.ended once ended_us is set (forget_ended) */
	struct rn_list rest_link; /* on rn_server.rest_streams while `rest` */
	struct rn_list tab_link;  /* on its table's srv_tab.streams from add to free */
	/* counted in its owner's srv_owner (owner_count): `counted_persistent` while it is
	 * persistent, `counted_open` while a call is attached; `ow` set by the first count */
	struct srv_owner *ow;
	unsigned counted_persistent : 1, counted_open : 1;
	/* a persistent create waiting for its registry entry to be durable (reg_commit):
	 * queued in rn_server.reg (registry.h), its entry written as a temp file */
	struct rn_reg_pending reg;
	/* its fleet view (fleet.h; counters, offsets, device), made with the stream, freed
	 * with it (NULL when out of memory: then it is not listed) */
	struct rn_fleet_stream *fl;
	/* the server's own stream writing a fleet system table (fleet_tables.c): no fleet view;
	 * internal_sent is the newest offset it appended (a failed WAL group moves
	 * last_received back below it) */
	int internal;
	int64_t internal_sent;
	/* then, with tables on S3, waiting for its entry on the table store (its create not
	 * answered yet; batches refused until it is): the store write in flight, or NULL */
	struct reg_op *store_op;
};

/*
 * The streams of one table (rn_server.tabs), so that the committed acks after a flush round
 * walk only the streams of the tables that committed in it (tell_committed), not every
 * stream. One per table name ever used by a stream; freed with the server.
 */
struct srv_tab {
	struct rn_list streams; /* srv_stream.tab_link */
	/* time to table (fleet/ttt.h): made at the table's first batch appended in this run
	 * (NULL until then, or when out of memory: then not measured); freed with the tab */
	struct rn_ttt *ttt;
	char name[]; /* the key in rn_server.tabs */
};

/*
 * Streams per owner (principal name), kept as streams change instead of counted by a walk:
 * a create checks max_persistent_streams and /metrics shows principal_streams in O(1) per
 * principal whatever the number of streams. One per name ever seen; freed with the server.
 */
struct srv_owner {
	size_t persistent; /* streams with counted_persistent pointing here */
	size_t open;       /* streams with counted_open pointing here */
	char name[RN_PRINCIPAL_NAME_MAX + 1];
};

/*
 * A table whose WAL records could not be put into it at recovery (its log unreadable, or a
 * record it refused): the segments holding them are kept (rn_wal_drop_before skips them)
 * and the server retries it every RETRY_US and on each create/resume for it. While failed,
 * new streams and resumes on it are refused, so nothing of a stream can overtake its kept
 * records. A successful retry puts the records back into the materializer (readded); the
 * first flush after that commits them, and the table and its segments are let go.
 */
struct srv_failing {
	char *table;
	int configured; /* from `tables`/`schemas`: a retry may create it */
	int readded;    /* its kept records are in the materializer, awaiting a flush (2: a
			 * flush round started since, whose success lets it go) */
	uint64_t *segs; /* ids of the segments holding its records, ascending */
	size_t nsegs, capsegs;
	unsigned retries;
	char why[200];
	struct srv_failing *next;
};

#define RETRY_US 5000000 /* a failed table is retried this often (and on its next stream) */

struct call_state {
	struct srv_stream *st;
	int persistent;
	int has_table;
	char table[256];
	int64_t acked;      /* newest offset acked on this call */
	int committed_acks; /* the client sent runnel-committed-acks: 1 and the server answered it
			     */
	int64_t told_committed; /* newest table_committed_up_to_offset sent on it, -1 none */
	int half_closed;
	char boot_id[64]; /* x-runnel-clock, if sent (has_clock) */
	int64_t boot_us;
	int has_clock;
	/* who: the credentials it opened with (decided again at create/resume and reload) */
	char *auth, *peer;                         /* copies, or NULL */
	char principal[RN_PRINCIPAL_NAME_MAX + 1]; /* as decided at open */
	int64_t expires;                           /* a signed token's exp (s); 0 = none */
	int close_sent;                            /* close_stream_signal sent for it */
	int retire;                                /* a RetireStream call (unary: one request) */
	int got_request;                           /* ...whose request arrived */
	char retire_id[40]; /* ...waiting for this stream's records (srv_stream.retire_call) */
	int health;         /* the call asked runnel-health: 1 and was answered so */
	char peer_addr[64]; /* "address:port" of the client */
	struct reg_op *resume_op; /* a resume waiting for the table store's registry entry */
	/* messages that came while its create waited for the table store (srv_stream.store_op):
	 * each a 4-byte length and the bytes, handled in order once the create is answered */
	struct rn_buf held;
};

/* The overview's history (api_handlers.c): records and bytes accepted per 10 s bucket over
 * the last hour, from the counters of /metrics by a 10 s timer (no walk of anything). */
#define SRV_HIST_SLOTS 360
#define SRV_HIST_MS 10000
struct srv_hist {
	int64_t t_ms; /* the bucket's start */
	uint64_t records, bytes;
};

/* The last warnings and errors logged (rn_log's sink, any thread: under `lock`). */
#define SRV_ERRORS 20
struct srv_errors {
	pthread_mutex_t lock;
	struct {
		int64_t t_ms;
		int level; /* enum rn_log_level */
		char text[300];
	} e[SRV_ERRORS];
	size_t head, n;
};

/* The numbers the overview and /metrics share (rn_server__numbers): one source each. */
struct srv_numbers {
	double uptime_s;
	size_t streams_open, streams_known;
	uint64_t records, bytes, batches, calls_refused, flush_errors, dead_letters;
	uint64_t connections, wal_bytes;
	double mat_lag_s;
	const char *pressure; /* "none" or the limit's name, as the pressure{limit} gauge */
};

struct rn_server {
	struct rn_server_conf conf;
	struct event_base *base;
	struct rn_front *front;
	struct rn_wal *wal;
	struct rn_mat *mat;
	struct srv_stream *streams; /* every stream, newest first (linked by next/prev) */
	/* Work proportional to activity: a group commit visits only `dirty` streams, a flush
	 * only `ended` ones, a REST insert only `rest_streams`; a stream with nothing to do
	 * costs memory only (server/README.md "Cost of idle streams") */
	struct rn_strmap stream_ids; /* id -> stream, every stream in `streams` */
	struct rn_strmap owners;     /* principal name -> struct srv_owner (owner_count) */
	struct rn_strmap tabs;       /* table name -> struct srv_tab (its streams) */
	/* _streams/ (registry.h); it queues the persistent creates whose entries the next
	 * reg_commit makes durable together (one directory fsync for all); their answers wait */
	struct rn_registry *reg;
	struct event *reg_ev;   /* runs reg_commit once the loop's ready events are handled */
	size_t pass_creates;    /* creates handled since reg_cb last ran (rn_stream_create_yield) */
	struct rn_list dirty;   /* received data since the last group commit started */
	struct rn_list syncing; /* streams in the WAL group in flight (wal_pool) */
	/* the WAL's write + fdatasync off the loop: one group at a time on this 1-thread pool
	 * while the loop appends the next (server/README.md "Threads") */
	struct rn_pool *wal_pool;
	struct event *wal_pool_ev;
	struct rn_list ended;        /* ephemeral streams whose call ended (or never had one) */
	struct rn_list rest_streams; /* this run's REST streams (bounded: tables x principals) */
	size_t retire_waiting;       /* streams with retire_wanted set (retire_pending) */
	int64_t expire_at_us;        /* next stream_expiry walk (expire_streams) */
	struct srv_failing *failing; /* tables with records kept in the WAL for them */
	uint64_t retained_bytes;     /* bytes of the segments kept for them */
	int64_t retry_at_us;         /* next periodic retry of failing tables */
	struct event *sync_ev, *flush_ev, *sig_term, *sig_int, *sig_hup;
	struct event *watchdog_ev; /* systemd's WATCHDOG=1, when it asked for pings */
	rn_server_load_fn load;    /* reload: the config again (rn_server_set_reload) */
	void *load_ctx;
	int mat_dirty;
	int wal_ready; /* replayed: the materializer's refill may read it */
	int stopping;
	/* drain (SIGTERM, POST /admin/drain): creates refused, close_stream_signal sent, the
	 * calls open waited for until drain_deadline_us, then the stop above */
	int draining;
	int64_t drain_deadline_us;
	struct event *drain_ev; /* every 100 ms while draining: are the calls gone? */
	struct rn_buf resp, single;
	struct rn_metrics *metrics;
	struct rest_pending *rest_pending; /* REST inserts written, answered once durable */
	struct rn_buf rest_batch, rest_body;
	struct rn_refuselog rest_refusals; /* which refused REST requests get a log line */
	struct rn_tls *tls;                /* the listen port's TLS context, NULL = cleartext */
	struct rn_tls *metrics_tls; /* the metrics port's (ALPN http/1.1), NULL = plain HTTP */
	struct rn_principals *principals; /* from the config, rebuilt on reload */
	uint8_t key[4096];                /* signed tokens' HMAC key (klen bytes; 0 = none) */
	size_t klen;
	struct event *auth_ev;        /* every second: token expiry of open calls, stream expiry */
	struct rn_authz authz;        /* the last decision (its msg outlives the call that asked) */
	struct rn_pool *pool;         /* secret checks off the loop (token_verify_*) */
	struct event *pool_ev;        /* the pool's descriptor is readable: jobs finished */
	struct rn_pool *maint_pool;   /* Delta maintenance off the loop (maintenance_threads) */
	struct event *maint_ev;       /* its descriptor is readable: jobs finished */
	struct event *lag_ev;         /* LAG_MS timer measuring how late the loop runs it */
	int64_t lag_due_us;           /* when lag_ev should run next */
	int64_t lag_max_us;           /* the most it ran late since the last scrape */
	struct rn_seccache *seccache; /* verified client secrets (token_cache_size) */
	struct token_job *token_jobs; /* token requests whose secret is being checked */
	struct rn_limits limits;
	char wal_path[4096];       /* the WAL directory (statvfs for wal_min_free) */
	int64_t disk_checked_us;   /* last statvfs */
	int64_t wal_free;          /* its result, -1 unknown */
	enum rn_pressure pressure; /* as last evaluated (and told to the front) */
	char pressure_msg[256];    /* its grpc-message */
	int64_t oldest_pending_us; /* first record appended since the last good flush; 0 none */
	int64_t next_flush_us;     /* when flush_cb runs next */
	int64_t flush_cost_us;     /* duration of the last flush */
	/* flush jobs off the loop (flush_threads) and the round in flight, from its start
	 * (rn_mat_flush_start) to round_done() */
	struct rn_pool *flush_pool;  /* flush jobs: Parquet encoding and commits (flush_threads) */
	struct event *flush_pool_ev; /* its descriptor is readable: jobs finished */
	/* tables on S3: the registry's entries on the table store (registry.h), written, read
	 * and deleted off the loop by one job at a time on reg_pool, which alone uses
	 * reg_store while it runs; reg_ops waits for the next job (struct reg_op, server.c) */
	struct rn_tstore *reg_store; /* NULL: tables on a local root, the registry is local */
	struct rn_pool *reg_pool;
	struct event *reg_pool_ev;
	struct rn_list reg_ops;
	int reg_job;        /* a job is in flight */
	int replaying_held; /* handling a call's held messages (no wire frame to keep) */
	int flushing;
	uint64_t flush_seg;      /* the WAL segment rotated to at its start */
	int64_t flush_t0;        /* when it started */
	int64_t flush_oldest_us; /* oldest_pending_us at its start (back if it fails) */
	int destroying;          /* rn_server_destroy: a cancelled round changes nothing */
	int flush_deferred;      /* a round waits for the WAL group in flight to end */

	/* fleet health (fleet.h; docs/operations.md "Fleet health") */
	struct rn_fleet *fleet;
	struct rn_refusals *refusals; /* who is refused (refusals.h): rn_server__refusal */
	/* on_open is deciding a call: a refusal told by the front with no call context is that
	 * call's (its principal is s->authz's, its table this one) */
	int opening;
	char opening_table[256];
	struct rn_fleet_health fh; /* the report being handled (its buffers reused) */
	uint64_t health_reports;   /* reports received (agent_health_reports_total) */
	uint64_t health_rejected[RN_FLEET_NREJECT];
	struct rn_lograte health_log; /* which rejected reports get a line (per peer) */
	struct event *hist_ev;        /* every 10 s: the overview's history bucket */
	struct srv_hist hist[SRV_HIST_SLOTS];
	size_t hist_head, hist_n;
	uint64_t hist_records, hist_bytes; /* the counters at the current bucket's start */
	int64_t hist_t_ms;
	struct srv_errors *errors; /* rn_log's sink (api_handlers.c) */
	struct event *fleet_ev;    /* every fleet_table_interval: runnel.fleet.streams rows */
	struct srv_stream *fleet_agents, *fleet_streams; /* the internal streams writing them */
	struct srv_stream *fleet_refusals;               /* ...and runnel.fleet.refusals */
	struct rn_buf fleet_batch;
	uint64_t fleet_rows, fleet_row_errors;

	/* fair share of the WAL (admit) */
	char share_msg[320];         /* the grpc-message of the last refusal */
	struct rn_lograte share_log; /* which refusals get a line (per table) */
	/* the same per principal */
	struct rn_lograte pshare_log;
	struct {
		uint64_t batches, records, bytes; /* accepted into the WAL */
		uint64_t acks, wal_syncs, wal_sync_errors;
		uint64_t committed_acks; /* acks telling a newer table_committed_up_to_offset */
		uint64_t wal_sync_us;    /* write + fdatasync time of the groups (sync thread) */
		uint64_t wal_wait_us;    /* the loop blocked waiting for a group (sync_wal) */
		uint64_t commit_visits;  /* streams visited by group commits (the dirty ones) */
		uint64_t reg_commits,
			reg_entries;         /* registry group commits, entries made durable */
		uint64_t pass_creates_max;   /* the most creates handled in one loop pass */
		uint64_t reg_answered_ahead; /* entries answered while read input waited */
		uint64_t streams_taken_over; /* resumes of another server's streams (take_over) */
		uint64_t reg_store_reads;    /* entries read from the table store by resumes */
		uint64_t reg_store_errors;   /* registry operations the table store failed */
		uint64_t flushes, flush_errors;
		uint64_t early_flushes; /* of which started by the memory budget (limits.h) */
		uint64_t calls, calls_rejected;
		uint64_t calls_denied;   /* PERMISSION_DENIED */
		uint64_t refusals;       /* noted in the refusal sources (rn_server__refusal) */
		uint64_t rest_throttled; /* REST requests answered 429 for a throttled address */
		uint64_t calls_revoked, calls_token_expired; /* ended while open */
		uint64_t drain_signals;   /* close_stream_signal sent by a drain */
		uint64_t drain_timed_out; /* calls still open when drain_timeout passed */
		uint64_t streams_retired, streams_expired; /* persistent streams let go */
		uint64_t tokens_issued, token_refusals;    /* POST /oidc/v1/token */
		uint64_t token_verifications; /* secret checks (PBKDF2) run on the pool */
		uint64_t token_cache_hits;    /* secrets found verified in the cache */
		uint64_t token_queue_full;    /* token requests answered 503: the pool was full */
		uint64_t pressure_refusals, pressure_episodes;
		uint64_t memory_refusals;   /* batches refused at memory_max_bytes */
		uint64_t share_refusals;    /* batches refused for their table's share of the WAL */
		uint64_t pshare_refusals;   /* ... for their principal's share of the WAL */
		uint64_t streams_forgotten; /* ended ephemeral streams dropped */
		uint64_t recovery_retries;  /* retries of failing tables */
		uint64_t refills;           /* tables rebuilt from the WAL after a failure */
		int64_t started_us, last_flush_ok_us, last_flush_err_us;
		uint64_t reloads_ok, reloads_err; /* SIGHUP config reloads applied, refused */
		int64_t config_loaded_s;          /* wall time the running config was loaded */
		uint64_t rest[RN_REST_NROUTES][RN_REST_NSTATUS]; /* REST answers by route, status */
		char last_error[200];
	} stats;
};

#define REST_JSON "application/json"
#define REST_LOG_PERIOD_US (10 * 1000000LL)

/* A REST insert written, answered once durable (rest_settle). */
struct rest_pending {
	struct rn_httpx *x;
	struct srv_stream *st;
	int64_t offset; /* answered 200 once st->last_durable reaches it */
	enum rn_rest_route route;
	struct rest_pending *next;
};

/* server.c: the streams (every stream is in rn_server.streams and stream_ids) */
static inline struct srv_stream *rn_server__find_stream(struct rn_server *s, const char *id,
							size_t len)
{
	return rn_strmap_get(&s->stream_ids, id, len);
}
/* A stream as the state machine sees it (stream.h); a zeroed state for NULL. */
static inline struct rn_stream_state rn_server__state(const struct srv_stream *st)
{
	struct rn_stream_state ss = {-1, -1, -1, 0, 0, 0, 0};
	if (st) {
		ss.received = st->last_received;
		ss.durable = st->last_durable;
		ss.committed = st->last_committed;
		ss.record_type = st->record_type;
		ss.persistent = !!st->persistent;
		ss.open = st->call != NULL;
		ss.retiring = !!st->retire_wanted;
	}
	return ss;
}
/* The principal for rn_mat_add_as: NULL when not known. */
static inline const char *rn_server__owner_of(const struct srv_stream *st)
{
	return st && st->owner[0] ? st->owner : NULL;
}
/* A new stream (received = durable = -1) on the list and in the id map; NULL when out of
 * memory or the id is too long. */
struct srv_stream *rn_server__add_stream(struct rn_server *s, const char *id, size_t idlen,
					 const char *table, size_t tlen, int rtype);
/* Counts st under its owner as persistent (open 0) or as having a call (open 1), or stops
 * counting it (on 0); idempotent. 0 or RN_ENOMEM. */
int rn_server__count_stream(struct rn_server *s, struct srv_stream *st, int open, int on);
/* An ephemeral stream's call ended at `when` (mono us; 1 = in an earlier run). */
void rn_server__mark_ended(struct rn_server *s, struct srv_stream *st, int64_t when);
/* Reads st's clock reference and owner back from the registry (an ephemeral stream of an
 * earlier run met in the WAL). */
void rn_server__load_files(struct rn_server *s, struct srv_stream *st);
/* Hands the registry's kept descriptors (of `table`'s streams, or all) to the materializer;
 * the number it refused (each logged). */
int rn_server__load_descriptors(struct rn_server *s, const char *table);

/* store_conf.c: the table store's keys, part of rn_server_conf_check: table_root well
 * formed (an s3:// one opened, nothing sent: credentials found), s3_endpoint with it, the
 * key pair whole; warns when `file` holds s3_secret_key and others may read it. 0,
 * RN_ECONFIG ("FILE: table_root ..." in err), RN_ENOMEM. */
int rn_server__conf_check_store(const struct rn_server_conf *c, const char *file, char *err,
				size_t cap);

/* replay.c: WAL replay and failing tables */
/* rn_wal_replay's callback at start: the record back into the materializer (or its table
 * marked failing, the segment kept). 0 or RN_ENOMEM. */
int rn_server__replay_entry(void *ctx, const struct rn_wal_entry *e);
/* The failing-table entry of `table`, or NULL. */
struct srv_failing *rn_server__find_failing(const struct rn_server *s, const char *table);
/* A new failing-table entry (configured: a retry may create the table); NULL out of memory. */
struct srv_failing *rn_server__add_failing(struct rn_server *s, const char *table, int configured);
void rn_server__free_failing(struct srv_failing *f);
/* rn_wal_drop_before's keep callback: segments holding records of a failing table. */
int rn_server__segment_kept(void *ctx, uint64_t seg);
/* Recomputes retained_bytes: each kept segment counted once. */
void rn_server__count_retained(struct rn_server *s);
/* Retries every failing table (when due, or now with force). */
void rn_server__retry_failing(struct rn_server *s, int force);
/* After a flush that committed everything added before it: readded tables are let go. */
void rn_server__release_readded(struct rn_server *s);
/* On create/resume/REST insert for `table`: 1 (and *why) while the table still has records
 * kept in the WAL that cannot be put into it (retried first), else 0. */
int rn_server__table_failing(struct rn_server *s, const char *table, char *why, size_t cap);

/* server.c: admission, pressure and stream changes shared with the REST handlers */
const char *rn_server__admit(struct rn_server *s, const char *table, const char *principal,
			     int64_t *pushback_ms);
/* rn_server__admit for the server's own rows (fleet_tables.c): the same decision, neither
 * counted nor logged as a client's refusal. NULL, or the reason. */
const char *rn_server__admit_own(struct rn_server *s, const char *table);
void rn_server__check_pressure(struct rn_server *s);
/* A stream just made whose files could not be written is let go (errno says why). */
void rn_server__abandon_stream(struct rn_server *s, struct srv_stream *st, const char *why);
/* A REST stream takes no more requests (the next one starts a new stream). */
void rn_server__end_rest(struct rn_server *s, struct srv_stream *st);
/* st received a batch: the next group commit visits it. */
void rn_server__mark_dirty(struct rn_server *s, struct srv_stream *st);

/* Which step of rn_server__append_batch failed. */
enum srv_append { SRV_APPEND_OK = 0, SRV_APPEND_MAT, SRV_APPEND_WAL };
/*
 * One batch the server took whole (a REST insert, the server's own fleet rows), at `offset`
 * of st (its last_received + 1): added to the materializer as `principal` (NULL none), then
 * queued to the WAL; on success st->last_received (and an internal stream's internal_sent)
 * is offset, st is dirty for the next group commit, its time to table is measured, the
 * pressure is checked and the group commit scheduled. SRV_APPEND_MAT: rn_mat_add_as failed
 * (*mat_rc its error, the detail in rn_mat_errmsg), nothing changed. SRV_APPEND_WAL: the WAL
 * queue is full; the batch was taken back (rn_mat_drop_pending: the table is rebuilt from
 * the WAL before its next add or flush), so it is never committed behind the refusal; the
 * caller ends the stream all the same. The caller counts its own statistics.
 */
enum srv_append rn_server__append_batch(struct rn_server *s, struct srv_stream *st, int64_t offset,
					int record_type, const uint8_t *data, size_t len,
					const char *principal, int *mat_rc);

/* rest_handlers.c: REST inserts */
/* httpx.h's request callback of both ports, and its gone callback. */
void rn_server__rest_request(void *ctx, struct rn_httpx *x);
void rn_server__rest_gone(void *ctx, struct rn_httpx *x);
/* Sends a JSON answer: `{}` for 200, else {"error_code","message"}; counted per route. */
void rn_server__rest_reply(struct rn_server *s, struct rn_httpx *x, enum rn_rest_route route,
			   int http, const char *code, const char *msg, const char *hname,
			   const char *hvalue);
/* Logs a refused request through the REST refusal limiter (peer, method, path: copies) and
 * notes it in the refusal sources with principal and table (NULL: unknown, none). */
void rn_server__rest_log_refusal_of(struct rn_server *s, const char *peer, const char *principal,
				    const char *table, const char *method, const char *path,
				    int http, const char *msg);
/* rn_refuselog_tick's summary callback for REST refusals. */
void rn_server__rest_refusal_summary(void *ctx, const struct rn_refuselog_kind *k, uint64_t n);

/* server.c: the numbers /metrics and the overview share; the health of /healthz */
void rn_server__numbers(struct rn_server *s, struct srv_numbers *n);
int rn_server__health(struct rn_server *s, char *why, size_t cap);
/* The fleet view of st (made on first use; NULL when out of memory). */
struct rn_fleet_stream *rn_server__fleet_of(struct rn_server *s, struct srv_stream *st);
/* Wall time in unix ms. */
int64_t rn_server__now_ms(void);
/* A batch of st at offset was queued to the WAL just now: its time to table is measured
 * (fleet/ttt.h) from now to the commit that makes it visible (tell_committed). */
void rn_server__ttt_queued(struct rn_server *s, struct srv_stream *st, int64_t offset);
/* The time-to-table estimator of `table`, or NULL (no batch of it in this run). */
const struct rn_ttt *rn_server__ttt_of(const struct rn_server *s, const char *table);

/* api_handlers.c: GET /api/v1/... (both ports), the overview's history and errors */
void rn_server__api_request(struct rn_server *s, struct rn_httpx *x,
			    const struct rn_rest_target *t);
/* The error ring and rn_log's sink (0 or RN_ENOMEM); _fini clears the sink and frees it. */
int rn_server__api_init(struct rn_server *s);
void rn_server__api_fini(struct rn_server *s);
/* Reads every stream's committed offset into its fleet view (per request, not per batch). */
void rn_server__fleet_refresh(struct rn_server *s);
/*
 * A call or REST request refused for the client's fault, once per refusal: into the refusal
 * sources (/api/v1/refusals, runnel.fleet.refusals). peer "address[:port]"; principal NULL
 * or "" unknown; http 0 for a gRPC status (its name is the kind), else the HTTP status
 * ("http_401"); the server's own refusals (UNAVAILABLE, INTERNAL, DATA_LOSS, 503, 429, any
 * with a pushback) are left out here, so callers may pass every refusal.
 */
void rn_server__refusal(struct rn_server *s, const char *peer, const char *principal, int grpc,
			int http, const char *reason, const char *table);
/* The 10 s timer's work: closes the history bucket that ended. */
void rn_server__hist_tick(struct rn_server *s, int64_t now_ms);
/* A report (field 1001) on call cs's stream st: validated, kept, counted, written. */
void rn_server__fleet_report(struct rn_server *s, struct srv_stream *st, const uint8_t *p,
			     size_t len);
/* fleet_tables.c: the fleet system tables. Writes runnel.fleet.streams rows (the
 * fleet_table_interval timer); one runnel.fleet.agents row for the report in s->fh received
 * on fl (NULL: none). Nothing when fleet_table_interval is 0; failures are counted and
 * logged, never fatal to the call. */
void rn_server__fleet_tables_tick(struct rn_server *s);
/* Every fleet_table_interval too: runnel.fleet.refusals rows for the sources refused since. */
void rn_server__fleet_refusals_tick(struct rn_server *s);
/* Defines runnel.fleet.agents, runnel.fleet.streams and runnel.fleet.refusals (typed) in the
 * materializer, at start before the WAL replay. 0, RN_ENOMEM, or the materializer's error (logged).
 */
int rn_server__fleet_define(struct rn_server *s);
/* The system tables' names: i = 0, 1, 2; NULL past them. */
const char *rn_server__fleet_table(int i);
void rn_server__fleet_agents_row(struct rn_server *s, const struct rn_fleet_stream *fl,
				 int64_t now_ms);

/* token_ep.c: POST /oidc/v1/token */
void rn_server__rest_token(struct rn_server *s, struct rn_httpx *x);
/* POST /admin/drain on the HTTP/1.1 port by an authenticated principal (rest_handlers.c
 * checked method and credentials): starts a drain (server.c), answers 202 with JSON. */
void rn_server__admin_drain(struct rn_server *s, struct rn_httpx *x, const char *principal);
/* The client of a token request went away: 1 when x was one (its answer is dropped). */
int rn_server__token_gone(struct rn_server *s, struct rn_httpx *x);

#endif
