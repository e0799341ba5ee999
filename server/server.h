/*
 * runnel-server's core: the stream manager (create/resume, offsets, dedup, the durable stream
 * registry), group commit of the WAL before acks, and the materialization timer. It owns the
 * event base and wires the h2 front, the WAL and the materializer together.
 *
 * Lifetime: main() creates one server, runs it until SIGTERM/SIGINT, destroys it. One thread.
 */
#ifndef RN_SERVER_H
#define RN_SERVER_H

#include <stdint.h>

#include "rn_conf.h"

/* A typed table in the config: `schemas = ( { table = "a.b.c"; partition_by = [ "day" ];
 * columns = ( { name = "ts"; type = "timestamp"; nullable = false; }, { name = "day";
 * type = "date"; from = "ts"; }, ... ); } )`. */
struct rn_column_conf {
	char *name;
	char *type; /* Spark DDL type name (server/mat/schema.h) */
	int nullable;
	char *from; /* NULL, or a date column's source (server/mat/partition.h rn_part_derived) */
};

struct rn_table_schema_conf {
	char *table;
	struct rn_conf_list columns;         /* struct rn_column_conf */
	struct rn_conf_strlist partition_by; /* partition columns, in order; may be empty */
};

struct rn_server_conf {
	char *listen;   /* host:port */
	char *tls_cert; /* NULL = cleartext (server/net/tls.h) */
	char *tls_key;
	char *tls_client_ca;
	int tls_client_auth;  /* enum rn_tls_client_auth */
	int metrics_tls;      /* with tls_cert: metrics_listen is HTTPS too */
	int allow_cleartext;  /* cleartext on a non-loopback address is allowed */
	char *metrics_listen; /* host:port of /metrics and /healthz; NULL = off */
	char *data_root;
	char *wal_dir; /* NULL = data_root/_wal */
	/* Where the tables live (server/store/tstore.h): a local path or s3://bucket/prefix;
	 * NULL = data_root. The WAL, the stream registry and the token key stay in data_root. */
	char *table_root;
	/* The S3 store of an s3:// table_root (server/store/s3.h rn_s3_config) */
	char *s3_endpoint;
	char *s3_region;
	int s3_virtual_host;
	char *s3_access_key; /* credentials: never logged, never in -n or /metrics */
	char *s3_secret_key;
	char *s3_session_token;
	char *s3_credentials_file;
	char *s3_profile;
	char *s3_spool_dir; /* NULL = data_root/_spool */
	int64_t s3_timeout_ms;
	int64_t s3_max_attempts;
	struct rn_conf_strlist token;   /* accepted bearer tokens; none = no authentication */
	struct rn_conf_list principals; /* struct rn_principal_conf (principal.h) */
	char *token_key_file;          /* HS256 key of signed tokens; NULL = data_root/_token_key */
	int64_t token_lifetime_ms;     /* of tokens the token endpoint issues */
	int64_t token_clock_skew_ms;   /* allowed on a signed token's exp and iat */
	int64_t token_close_before_ms; /* close_stream_signal this long before a token expires */
	int64_t drain_timeout_ms; /* a drain waits this long for clients to close; 0 = no drain */
	int64_t token_verify_threads;   /* worker threads checking client secrets (PBKDF2) */
	int64_t token_verify_queue;     /* token requests waiting for or in a check, at most */
	int64_t token_cache_size;       /* verified secrets remembered (keyed hashes); 0 = off */
	int64_t max_persistent_streams; /* per principal */
	int64_t stream_expiry_ms;  /* persistent streams unused this long are retired; 0 never */
	int64_t flush_interval_ms; /* materializer commit interval */
	int committed_acks; /* answer runnel-committed-acks: 1 (acks carry the table's offset) */
	/* fleet health (docs/operations.md "Fleet health") */
	int fleet_health;                /* answer runnel-health: 1 and take agents' reports */
	int64_t fleet_silent_after_ms;   /* a stream without batch or report this long: silent */
	int64_t fleet_behind_after_ms;   /* oldest unsent record this old: behind */
	int64_t fleet_table_interval_ms; /* runnel.fleet.streams rows this often; 0 = no tables */
	int64_t max_message_bytes;
	/* Limits (server/README.md "Limits"); 0 = off where the row says so */
	int64_t wal_max_bytes;
	int64_t wal_min_free;
	/* free bytes the WAL's file system keeps before pushback */ /* WAL bytes not yet in
									tables before
									RESOURCE_EXHAUSTED
								      */
	int64_t max_lag_ms;            /* age of the oldest record not in a table, likewise */
	int64_t wal_soft_percent;      /* fair share of the WAL between tables (limits.h) */
	int64_t wal_table_max_bytes;   /* 0 = no cap per table */
	int64_t stream_inflight_bytes; /* received on one stream, not yet durable: hold its window
					*/
	/* 0 = no cap per principal */
	int64_t wal_principal_max_bytes;
	int64_t max_streams_per_connection;
	int64_t idle_timeout_ms;        /* close connections with no stream and no traffic */
	int64_t slow_client_bytes;      /* unsent responses beyond this... */
	int64_t slow_client_timeout_ms; /* ...for this long disconnect the client */
	int64_t max_connections;        /* gRPC connections at once; beyond, closed at once */
	int64_t header_timeout_ms;      /* preface and each header block complete within this */
	int64_t refuse_throttle;        /* refusals/s from one address that throttle it... */
	int64_t refuse_cooldown_ms;     /* ...for this long */
	int64_t partial_budget_bytes;   /* unfinished request messages, all calls together */
	int64_t memory_max_bytes;       /* rows in builders and flush jobs */
	int64_t http_max_header_bytes;  /* HTTP port (metrics_listen): request line + headers */
	int64_t http_max_body_bytes;    /* ... a request body */
	int64_t http_timeout_ms;        /* ... a request (or a response) within this */
	int64_t http_max_connections;   /* ... connections at once; beyond, the listener pauses */
	int64_t parquet_zstd_level;
	int auto_create;               /* create unknown (valid) tables on first stream */
	struct rn_conf_strlist tables; /* created at start */
	struct rn_conf_list schemas;   /* typed tables (struct rn_table_schema_conf), created too */
	int log_level;
	char *log_file; /* NULL = stderr; reopened on SIGHUP */
	/* Delta log health (server/delta/delta.h rn_delta_maint) */
	int64_t checkpoint_interval;
	int64_t log_retention_ms;
	int64_t compact_target;
	int64_t compact_min_files;
	int64_t compact_group_bytes;
	int64_t compact_interval_ms;
	int64_t vacuum_retention_ms;
	int64_t vacuum_interval_ms;
	int64_t maintenance_threads; /* worker threads running the above off the loop */
	int64_t maintenance_queue;   /* maintenance jobs (one per table) in that pool at most */
	int64_t flush_threads;       /* worker threads encoding and committing flushes (0 = auto) */
	int64_t workers;             /* 1: all ingest work on the loop; N: N flush/page threads */
	/* not a row: set by the loader, shown in /metrics (config_info) */
	char checksum[24]; /* FNV-1a 64 of the file's bytes, hex; "" = defaults, no file */
};

struct rn_tstore_config;
/* The table store settings of config c (the s3_* keys; spool_dir = s3_spool_dir, else
 * data_root/_spool written into spool, spool_cap bytes). Pointers into c: valid while c is.
 * The table root is rn_server_table_root(c). */
void rn_server_tstore_config(const struct rn_server_conf *c, struct rn_tstore_config *out,
			     char *spool, size_t spool_cap);
/* table_root, else data_root. */
const char *rn_server_table_root(const struct rn_server_conf *c);
/*
 * -n's check of the table store: a local table_root needs nothing here (made at start); an
 * s3:// one is opened (well formed, credentials found) and, unless the store cannot be
 * reached, its bucket listed under the prefix (one request, no retries). 0 with what was
 * checked in msg ("table_root s3://b/p: well formed; bucket b exists (listed)" or "...; the
 * store at E is not reachable: bucket not checked"), or RN_ECONFIG with "FILE: table_root
 * ..." in msg (malformed, no credentials, no such bucket, refused). Never prints a credential.
 */
int rn_server_check_store(const struct rn_server_conf *c, const char *file, char *msg, size_t cap);

/* The config rows (for loading, -n and help). */
extern const struct rn_conf_key rn_server_conf_table[];

/* Checks what the rows cannot: wal_dir not inside data_root (where tables are created; the
 * default data_root/_wal is allowed), every typed table's name, column types, partition_by
 * and derived (from) columns. 0 or RN_ECONFIG with "FILE: ..." in err (e.g. "FILE:
 * schemas[i] (table): ..."). */
int rn_server_conf_check(const struct rn_server_conf *c, const char *file, char *err, size_t cap);

/*
 * Checks how the server is exposed, once the command line has overridden the file: refuses
 * listen or metrics_listen without TLS on an address that is not loopback unless
 * allow_cleartext is set, and builds (and drops) the TLS context so that a missing or bad
 * certificate, key or client CA fails here too (-n). 0 or RN_ECONFIG with "FILE: ..." in err.
 */
int rn_server_conf_check_exposure(const struct rn_server_conf *c, const char *file, char *err,
				  size_t cap);

struct rn_server;

/* Recovers the WAL into the tables, then listens. The server takes conf's allocations over
 * in every case (*conf is zeroed; rn_server_destroy frees them). RN_EIO, RN_EINVAL,
 * RN_ENOMEM. */
int rn_server_create(struct rn_server **out, struct rn_server_conf *conf);

/* Loads the config again, as at start (file, checks, command-line overrides) into *out
 * (zeroed by the caller, freed by the server). 0, or RN_ECONFIG with "FILE:LINE: ..." in
 * err; on error *out is freed by the server as well. */
typedef int (*rn_server_load_fn)(void *ctx, struct rn_server_conf *out, char *err, size_t cap);

/*
 * The authorization decision for a gRPC call or a REST request (the one function both use):
 * `authorization` (the header's value, or NULL), the verified client certificate identity
 * (or NULL) and the table (or NULL: who only). Returns 0 with the principal's name in
 * *principal (valid until the next reload), or RN_GRPC_UNAUTHENTICATED /
 * RN_GRPC_PERMISSION_DENIED with *msg (valid until the next call). Loop thread only.
 */
int rn_server_authorize(struct rn_server *s, const char *authorization, const char *peer_identity,
			const char *table, const char **principal, const char **msg);

/*
 * Reads the signed tokens' key of config c (token_key_file, default data_root/_token_key)
 * into key (cap bytes), creating it (0600, 32 random bytes) if missing and create is set.
 * 0 with *len set; RN_EIO (cannot read or create: err), RN_EINVAL (shorter than 32 bytes or
 * not shorter than cap).
 */
int rn_server_token_key(const struct rn_server_conf *c, uint8_t *key, size_t cap, size_t *len,
			int create, char *err, size_t ecap);

/* What SIGHUP runs (docs/operations.md "Server reload"): reopens the log file, then loads the
 * config with load and applies what can change live; without a loader SIGHUP only reopens the log.
 */
void rn_server_set_reload(struct rn_server *s, rn_server_load_fn load, void *ctx);

/* Runs the loop until a stop signal; then drains and returns 0. Tells systemd READY=1 as it
 * starts (recovery is done, the front listens), and pings its watchdog when asked to. */
int rn_server_run(struct rn_server *s);
void rn_server_destroy(struct rn_server *s);

#endif
