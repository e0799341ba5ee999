/*
 * The stream manager and loop wiring; see server.h. Per stream it keeps last_received (the
 * newest offset appended to the WAL queue) and last_durable (the newest offset fsynced);
 * acks report last_durable and are sent only when a group commit ends: the sync callback,
 * which libevent runs once per loop iteration after all reads, hands what was appended to
 * the WAL's sync thread, and the loop acks it once that sync returned (group_start,
 * group_end; server/README.md "Threads"). Batches go to the
 * materializer when they are appended; a failed WAL sync is safe because nothing unsynced
 * is acked and the materializer's txn check absorbs the resend.
 */
#include "server.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <poll.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "crypto.h"
#include "oauth.h"
#include "pool.h"
#include "principal.h"
#include "ev_time.h"
#include "front.h"
#include "limits.h"
#include "mat.h"
#include "metrics.h"
#include "rn_clock.h"
#include "partition.h"
#include "schema.h"
#include "tls.h"
#include "tstore.h"
#include "rn_addr.h"
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_grpc.h"
#include "delta.h"
#include "maint.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "refuselog.h"
#include "rn_list.h"
#include "rn_lograte.h"
#include "rest.h"
#include "seccache.h"
#include "server_int.h"
#include "rn_sd.h"
#include "rn_strmap.h"
#include "wal.h"
#include "zbwire.h"

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
/* in the order of enum rn_tls_client_auth */
static const char *const client_auths[] = {"none", "optional", "require", NULL};

#define OFF(f) offsetof(struct rn_server_conf, f)
#define CC(f) offsetof(struct rn_column_conf, f)
static const struct rn_conf_key column_keys[] = {
	{.key = "name",
	 .type = RN_CONF_STRING,
	 .offset = CC(name),
	 .help = "column name",
	 .flags = RN_CONF_F_REQUIRED},
	{.key = "type",
	 .type = RN_CONF_STRING,
	 .offset = CC(type),
	 .help = "Delta type: string, long, integer, short, byte, float, double, boolean, binary, "
		 "date, timestamp, decimal(p,s), array<T>, map<K,V>, struct<name:T,...>",
	 .flags = RN_CONF_F_REQUIRED},
	{.key = "nullable",
	 .type = RN_CONF_BOOL,
	 .def = "true",
	 .offset = CC(nullable),
	 .help = "false = NOT NULL"},
	{.key = "from",
	 .type = RN_CONF_STRING,
	 .offset = CC(from),
	 .help = "a date column holding the UTC day of this timestamp column (declared before it); "
		 "\"event_time\" without such a column = the agent envelope's event time (else the "
		 "receive time); \"principal\" (a string column) = the name of the principal that "
		 "wrote the row, whatever the record says"},
	{.key = NULL},
};
#undef CC
#define TS(f) offsetof(struct rn_table_schema_conf, f)
static const struct rn_conf_key schema_keys[] = {
	{.key = "table",
	 .type = RN_CONF_STRING,
	 .offset = TS(table),
	 .help = "table name (catalog.schema.table)",
	 .flags = RN_CONF_F_REQUIRED},
	{.key = "columns",
	 .type = RN_CONF_LIST,
	 .offset = TS(columns),
	 .help = "the table's columns, in order",
	 .sub = column_keys,
	 .elem_size = sizeof(struct rn_column_conf)},
	{.key = "partition_by",
	 .type = RN_CONF_STRLIST,
	 .offset = TS(partition_by),
	 .help = "partition columns (string, long, integer, short, byte, date or boolean), in "
		 "order: Hive directories col=value/, one file per partition per commit"},
	{.key = NULL},
};
#undef TS

const struct rn_conf_key rn_server_conf_table[] = {
	{.key = "listen",
	 .type = RN_CONF_LISTEN,
	 .def = "127.0.0.1:7700",
	 .offset = OFF(listen),
	 .help = "IP:port for gRPC (HTTP/2; TLS with tls_cert, else h2c): an IPv4 address or "
		 "[IPv6]; several (up to 8) as a list [\"0.0.0.0:7700\", \"[::]:7700\"] or a "
		 "comma-separated string, each its own socket ([::] is IPv6 only); port 0 picks a "
		 "free one, the same for every address given 0",
	 .flags = RN_CONF_F_RESTART},
	{.key = "tls_cert",
	 .type = RN_CONF_STRING,
	 .offset = OFF(tls_cert),
	 .help = "PEM certificate chain (leaf first) of the listen and metrics_listen ports; set = "
		 "TLS (1.2 minimum, ALPN h2); the file is read again on SIGHUP; unset = cleartext",
	 .flags = 0},
	{.key = "tls_key",
	 .type = RN_CONF_STRING,
	 .offset = OFF(tls_key),
	 .help = "PEM private key of tls_cert (mode 0600: a warning otherwise); read again on "
		 "SIGHUP",
	 .flags = 0},
	{.key = "tls_client_ca",
	 .type = RN_CONF_STRING,
	 .offset = OFF(tls_client_ca),
	 .help = "PEM CA certificates that client certificates (mTLS) are verified against",
	 .flags = 0},
	{.key = "tls_client_auth",
	 .type = RN_CONF_ENUM,
	 .def = "none",
	 .offset = OFF(tls_client_auth),
	 .help = "client certificates: none (not asked for), optional (verified when sent) or "
		 "require (a connection without a valid one fails its handshake); needs "
		 "tls_client_ca",
	 .enums = client_auths},
	{.key = "metrics_tls",
	 .type = RN_CONF_BOOL,
	 .def = "true",
	 .offset = OFF(metrics_tls),
	 .help = "with tls_cert: metrics_listen speaks HTTPS too (false = plain HTTP, for a "
		 "loopback scraper)",
	 .flags = RN_CONF_F_RESTART},
	{.key = "allow_cleartext",
	 .type = RN_CONF_BOOL,
	 .def = "false",
	 .offset = OFF(allow_cleartext),
	 .help = "allow listen or metrics_listen without TLS on an address that is not loopback "
		 "(refused at start and by -n otherwise)",
	 .flags = RN_CONF_F_RESTART},
	{.key = "data_root",
	 .type = RN_CONF_STRING,
	 .def = "/var/lib/runnel-server",
	 .offset = OFF(data_root),
	 .help = "directory holding the WAL, the stream registry, the token key and (unless "
		 "table_root says otherwise) the tables",
	 .flags = RN_CONF_F_RESTART},
	{.key = "wal_dir",
	 .type = RN_CONF_STRING,
	 .offset = OFF(wal_dir),
	 .help = "write-ahead log directory (default data_root/_wal); one server per WAL, so "
		 "servers sharing a data_root each need their own",
	 .flags = RN_CONF_F_RESTART},
	{.key = "table_root",
	 .type = RN_CONF_STRING,
	 .offset = OFF(table_root),
	 .help = "where the Delta tables live: a local directory or s3://bucket/prefix (an "
		 "S3-compatible store, see the s3_ keys); table a.b.c is table_root/a/b/c; the "
		 "WAL, the stream registry (_streams) and the token key stay in data_root; "
		 "default data_root",
	 .flags = RN_CONF_F_RESTART | RN_CONF_F_NOCTL},
	{.key = "s3_endpoint",
	 .type = RN_CONF_URL,
	 .offset = OFF(s3_endpoint),
	 .help = "URL of the S3 store of an s3:// table_root (\"https://s3.eu-west-1.amazonaws."
		 "com\", \"http://127.0.0.1:7480\"); required with one",
	 .flags = RN_CONF_F_RESTART},
	{.key = "s3_region",
	 .type = RN_CONF_STRING,
	 .def = "us-east-1",
	 .offset = OFF(s3_region),
	 .help = "region the requests are signed for (SigV4)",
	 .flags = RN_CONF_F_RESTART | RN_CONF_F_NOCTL},
	{.key = "s3_virtual_host",
	 .type = RN_CONF_BOOL,
	 .def = "false",
	 .offset = OFF(s3_virtual_host),
	 .help = "address the bucket as a host name (bucket.endpoint/key); false = path style "
		 "(endpoint/bucket/key, what Ceph RGW and MinIO expect)",
	 .flags = RN_CONF_F_RESTART},
	{.key = "s3_access_key",
	 .type = RN_CONF_STRING,
	 .offset = OFF(s3_access_key),
	 .help = "access key id; unset = AWS_ACCESS_KEY_ID, else s3_credentials_file",
	 .flags = RN_CONF_F_RESTART | RN_CONF_F_NOCTL},
	{.key = "s3_secret_key",
	 .type = RN_CONF_STRING,
	 .offset = OFF(s3_secret_key),
	 .help = "secret access key (with s3_access_key; the config file should then be mode "
		 "0600: a warning otherwise); never logged",
	 .flags = RN_CONF_F_RESTART | RN_CONF_F_NOCTL},
	{.key = "s3_session_token",
	 .type = RN_CONF_STRING,
	 .offset = OFF(s3_session_token),
	 .help = "session token of temporary credentials (with s3_access_key)",
	 .flags = RN_CONF_F_RESTART | RN_CONF_F_NOCTL},
	{.key = "s3_credentials_file",
	 .type = RN_CONF_STRING,
	 .offset = OFF(s3_credentials_file),
	 .help = "shared credentials file (AWS format) read when neither the config nor "
		 "AWS_ACCESS_KEY_ID has keys; unset = AWS_SHARED_CREDENTIALS_FILE",
	 .flags = RN_CONF_F_RESTART},
	{.key = "s3_profile",
	 .type = RN_CONF_STRING,
	 .offset = OFF(s3_profile),
	 .help = "profile of s3_credentials_file; unset = AWS_PROFILE, else \"default\"",
	 .flags = RN_CONF_F_RESTART | RN_CONF_F_NOCTL},
	{.key = "s3_spool_dir",
	 .type = RN_CONF_STRING,
	 .offset = OFF(s3_spool_dir),
	 .help = "local directory where whole objects are downloaded for compaction and verify "
		 "(unlinked files, freed when done; put it on a disk, not tmpfs); created; "
		 "default data_root/_spool",
	 .flags = RN_CONF_F_RESTART},
	{.key = "s3_timeout",
	 .type = RN_CONF_DURATION,
	 .def = "30s",
	 .offset = OFF(s3_timeout_ms),
	 .min = 1000,
	 .max = 3600000,
	 .help = "one S3 request attempt, all of it (an upload part included)",
	 .flags = RN_CONF_F_RESTART},
	{.key = "s3_max_attempts",
	 .type = RN_CONF_INT,
	 .def = "5",
	 .offset = OFF(s3_max_attempts),
	 .min = 1,
	 .max = 100,
	 .help = "attempts per S3 request (connection errors, timeouts, 5xx, 429 are retried "
		 "with backoff); a flush that still fails is retried at the next flush",
	 .flags = RN_CONF_F_RESTART},
	{.key = "metrics_listen",
	 .type = RN_CONF_LISTEN,
	 .offset = OFF(metrics_listen),
	 .help = "IP:port of the HTTP/1.1 /metrics (Prometheus) and /healthz endpoint, or several "
		 "as for listen; unset = off",
	 .flags = RN_CONF_F_RESTART},
	{.key = "token",
	 .type = RN_CONF_STRLIST,
	 .offset = OFF(token),
	 .help = "bearer token clients must send, or a list of tokens any of which is accepted (to "
		 "rotate: add the new one, reload, move the clients over, remove the old one, "
		 "reload); unset = no authentication",
	 .flags = RN_CONF_F_NOCTL},
	{.key = "principals",
	 .type = RN_CONF_LIST,
	 .offset = OFF(principals),
	 .help = "who may write which tables (docs/security.md): each with a name, how it "
		 "authenticates (cert, client_id + secret_hash, tokens) and its table patterns; "
		 "reloaded on SIGHUP (open calls of a removed principal are ended)",
	 .sub = rn_principal_conf_keys,
	 .elem_size = sizeof(struct rn_principal_conf)},
	{.key = "token_key_file",
	 .type = RN_CONF_STRING,
	 .offset = OFF(token_key_file),
	 .help = "HMAC-SHA256 key of the signed tokens (at least 32 bytes); created 0600 with 32 "
		 "random bytes if missing; default data_root/_token_key; re-read on SIGHUP. One "
		 "that "
		 "cannot be read or made stops the start, or refuses the reload (the key in use "
		 "stays)"},
	{.key = "token_lifetime",
	 .type = RN_CONF_DURATION,
	 .def = "1h",
	 .offset = OFF(token_lifetime_ms),
	 .min = 1000,
	 .max = 86400000,
	 .help = "lifetime of the tokens POST /oidc/v1/token issues"},
	{.key = "token_clock_skew",
	 .type = RN_CONF_DURATION,
	 .def = "30s",
	 .offset = OFF(token_clock_skew_ms),
	 .max = 600000,
	 .help = "clock difference allowed when checking a signed token's expiry and issue time"},
	{.key = "token_close_before",
	 .type = RN_CONF_DURATION,
	 .def = "60s",
	 .offset = OFF(token_close_before_ms),
	 .max = 3600000,
	 .help = "a stream opened with a signed token is sent close_stream_signal this long "
		 "before the token expires (and ended UNAUTHENTICATED once it has)"},
	{.key = "drain_timeout",
	 .type = RN_CONF_DURATION,
	 .def = "30s",
	 .offset = OFF(drain_timeout_ms),
	 .max = 3600000,
	 .help = "on SIGTERM or POST /admin/drain the server drains: /healthz answers 503, new "
		 "streams are refused UNAVAILABLE, every open stream is sent close_stream_signal "
		 "and acked until its client ends the call or this passes (then UNAVAILABLE), "
		 "then the WAL is flushed into the tables and the server exits; 0 = SIGTERM stops "
		 "at once (a second SIGTERM or SIGINT always does)"},
	{.key = "token_verify_threads",
	 .type = RN_CONF_INT,
	 .def = "1",
	 .offset = OFF(token_verify_threads),
	 .min = 1,
	 .max = RN_POOL_THREADS_MAX,
	 .help = "worker threads that check client secrets (PBKDF2, tens of ms each) for POST "
		 "/oidc/v1/token, off the event loop",
	 .flags = RN_CONF_F_RESTART},
	{.key = "token_verify_queue",
	 .type = RN_CONF_INT,
	 .def = "64",
	 .offset = OFF(token_verify_queue),
	 .min = 1,
	 .max = 100000,
	 .help = "token requests waiting for or in a secret check at most; beyond it a token "
		 "request is answered 503 temporarily_unavailable (Retry-After: 1) at once",
	 .flags = RN_CONF_F_RESTART},
	{.key = "token_cache_size",
	 .type = RN_CONF_INT,
	 .def = "4096",
	 .offset = OFF(token_cache_size),
	 .max = RN_SECCACHE_MAX,
	 .help = "client ids whose last verified secret is remembered (as an HMAC under a "
		 "random per-process key, never the secret), so a client's next token request "
		 "skips the PBKDF2 check; cleared on reload; 0 = off",
	 .flags = RN_CONF_F_RESTART},
	{.key = "max_persistent_streams",
	 .type = RN_CONF_INT,
	 .def = "1000",
	 .offset = OFF(max_persistent_streams),
	 .min = 1,
	 .max = 10000000,
	 .help = "persistent streams one principal may have registered; creating one more is "
		 "RESOURCE_EXHAUSTED (retire or let unused ones expire)"},
	{.key = "stream_expiry",
	 .type = RN_CONF_DURATION,
	 .def = "30d",
	 .offset = OFF(stream_expiry_ms),
	 .max = (int64_t)1 << 45,
	 .help = "a persistent stream without a call for this long is retired (its records "
		 "committed first); 0 = never"},
	{.key = "flush_interval_ms",
	 .type = RN_CONF_INT,
	 .def = "1000",
	 .offset = OFF(flush_interval_ms),
	 .min = 10,
	 .max = 3600000,
	 .help = "how often durable records are committed to their Delta tables"},
	{.key = "committed_acks",
	 .type = RN_CONF_BOOL,
	 .def = "true",
	 .offset = OFF(committed_acks),
	 .help = "a call that asks (runnel-committed-acks: 1, as runnel-agent does) is told "
		 "in its acks how far its records are in the table, so the client keeps what is "
		 "only in this server's WAL until then; false = answer as a server without it "
		 "(the client then frees on the durability ack; a lost WAL disk loses records)"},
	{.key = "fleet_health",
	 .type = RN_CONF_BOOL,
	 .def = "true",
	 .offset = OFF(fleet_health),
	 .help = "take the health reports of agents that offer them (runnel-health: 1) and show "
		 "them in /api/v1/devices, the metrics and runnel.fleet.agents; false = answer as "
		 "a server without it (agents then send none)"},
	{.key = "fleet_silent_after",
	 .type = RN_CONF_DURATION,
	 .def = "5m",
	 .offset = OFF(fleet_silent_after_ms),
	 .min = 1000,
	 .max = (int64_t)1 << 40,
	 .help = "a stream without a batch or a health report for this long is `silent` "
		 "(fleet health states)"},
	{.key = "fleet_behind_after",
	 .type = RN_CONF_DURATION,
	 .def = "10m",
	 .offset = OFF(fleet_behind_after_ms),
	 .min = 1000,
	 .max = (int64_t)1 << 40,
	 .help = "a device whose newest report has an unsent record this old is `behind`"},
	{.key = "fleet_table_interval",
	 .type = RN_CONF_DURATION,
	 .def = "60s",
	 .offset = OFF(fleet_table_interval_ms),
	 .max = 86400000,
	 .help = "how often one row per known stream is written to runnel.fleet.streams and "
		 "one per refused (address, principal) to runnel.fleet.refusals (and whether "
		 "reports go to runnel.fleet.agents); 0 = no fleet system tables"},
	{.key = "max_message_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "10M",
	 .offset = OFF(max_message_bytes),
	 .min = 1024,
	 .max = (int64_t)1 << 30,
	 .help = "largest request message accepted (after decompression); a larger one ends its "
		 "call with RESOURCE_EXHAUSTED naming this limit"},
	{.key = "wal_max_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "1G",
	 .offset = OFF(wal_max_bytes),
	 .max = (int64_t)1 << 50,
	 .help = "bytes in the WAL not yet committed to tables; at this, new data gets "
		 "RESOURCE_EXHAUSTED with grpc-retry-pushback-ms and no HTTP/2 window is granted "
		 "until a flush truncates the WAL; 0 = no limit"},
	{.key = "wal_soft_percent",
	 .type = RN_CONF_INT,
	 .def = "50",
	 .offset = OFF(wal_soft_percent),
	 .min = 0,
	 .max = 100,
	 .help = "above this share of wal_max_bytes in use, a table holding wal_max_bytes / "
		 "(tables with data in the WAL) or more gets RESOURCE_EXHAUSTED (REST: 429) with "
		 "pushback for new data while the other tables are accepted up to wal_max_bytes; "
		 "likewise a principal holding wal_max_bytes / (principals with data in the WAL) "
		 "or more; a lone table or principal may fill the WAL; 0 = off (one table or "
		 "principal can fill it for all)"},
	{.key = "wal_table_max_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "0",
	 .offset = OFF(wal_table_max_bytes),
	 .max = (int64_t)1 << 50,
	 .help = "bytes of one table in the WAL not yet committed to it; at this, that table's "
		 "new data gets RESOURCE_EXHAUSTED (REST: 429) with pushback at any WAL size; 0 = "
		 "no cap"},
	{.key = "wal_principal_max_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "0",
	 .offset = OFF(wal_principal_max_bytes),
	 .max = (int64_t)1 << 50,
	 .help = "bytes one principal wrote to the WAL, over all tables, not yet committed to "
		 "them; at this, that principal's new data gets RESOURCE_EXHAUSTED (REST: 429) "
		 "with pushback at any WAL size; 0 = no cap; no effect without principals"},
	{.key = "wal_min_free",
	 .type = RN_CONF_SIZE,
	 .def = "16M",
	 .offset = OFF(wal_min_free),
	 .max = (int64_t)1 << 50,
	 .help = "free space the WAL's file system must keep; below it, the same as wal_max_bytes "
		 "until space returns, so a full disk refuses data instead of failing syncs; 0 = "
		 "off"},
	{.key = "max_lag",
	 .type = RN_CONF_DURATION,
	 .def = "60s",
	 .offset = OFF(max_lag_ms),
	 .max = (int64_t)1 << 40,
	 .help = "age of the oldest durable record not yet in its table; at this, the same as "
		 "wal_max_bytes (until a flush succeeds); raised to 2 x flush_interval_ms if set "
		 "lower; 0 = no limit"},
	{.key = "stream_inflight_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "64M",
	 .offset = OFF(stream_inflight_bytes),
	 .min = 1024,
	 .max = (int64_t)1 << 31,
	 .help = "bytes received on one stream and not yet durably acked; beyond this that "
		 "stream's HTTP/2 window is withheld until the WAL sync acks them"},
	{.key = "max_streams_per_connection",
	 .type = RN_CONF_INT,
	 .def = "100",
	 .offset = OFF(max_streams_per_connection),
	 .min = 1,
	 .max = 1000000,
	 .help = "concurrent streams (calls) per HTTP/2 connection, advertised as "
		 "SETTINGS_MAX_CONCURRENT_STREAMS; a client that opens more is refused "
		 "(REFUSED_STREAM, or GOAWAY once it acknowledged the setting)"},
	{.key = "idle_timeout",
	 .type = RN_CONF_DURATION,
	 .def = "5m",
	 .offset = OFF(idle_timeout_ms),
	 .max = (int64_t)1 << 40,
	 .help = "a connection with no stream open and no request (HEADERS, DATA) received for "
		 "this long is closed (GOAWAY); PINGs and other control frames do not count; 0 = "
		 "never"},
	{.key = "slow_client_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "4M",
	 .offset = OFF(slow_client_bytes),
	 .min = 4096,
	 .max = (int64_t)1 << 30,
	 .help = "responses queued for one connection and not read by the client; above this the "
		 "server stops reading from it, and..."},
	{.key = "slow_client_timeout",
	 .type = RN_CONF_DURATION,
	 .def = "30s",
	 .offset = OFF(slow_client_timeout_ms),
	 .max = (int64_t)1 << 40,
	 .help = "...if it stays above for this long, disconnects it (logged)"},
	{.key = "header_timeout",
	 .type = RN_CONF_DURATION,
	 .def = "10s",
	 .offset = OFF(header_timeout_ms),
	 .max = (int64_t)1 << 40,
	 .help = "a new connection must send the HTTP/2 preface, and every HEADERS frame must "
		 "complete its header block (END_HEADERS, CONTINUATIONs included), within this; "
		 "else the connection is closed; 0 = never"},
	{.key = "refuse_throttle",
	 .type = RN_CONF_INT,
	 .def = "50",
	 .offset = OFF(refuse_throttle),
	 .max = 1000000,
	 .help = "refused calls (wrong token, not gRPC, late headers...) per second from one "
		 "client address beyond which that address is throttled: its connections are "
		 "closed and new ones closed at once for refuse_cooldown; 0 = off"},
	{.key = "refuse_cooldown",
	 .type = RN_CONF_DURATION,
	 .def = "10s",
	 .offset = OFF(refuse_cooldown_ms),
	 .min = 1,
	 .max = (int64_t)1 << 40,
	 .help = "how long a throttled address stays throttled"},
	{.key = "partial_budget_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "64M",
	 .offset = OFF(partial_budget_bytes),
	 .max = (int64_t)1 << 40,
	 .help = "memory for request messages received in part, over all calls; beyond it, a "
		 "call adding to an unfinished message over 64K (over twice this, any) ends with "
		 "RESOURCE_EXHAUSTED and a 1 s pushback; 0 = no limit"},
	{.key = "memory_max_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "128M",
	 .offset = OFF(memory_max_bytes),
	 .max = (int64_t)1 << 50,
	 .help = "memory for rows not yet in their tables: the column builders of every table and "
		 "partition, and the flush jobs in flight; builders at half of it start a flush "
		 "before flush_interval_ms; builders and flush jobs at it refuse new data with "
		 "RESOURCE_EXHAUSTED (REST: 429) and pushback until a flush job ends; "
		 "partial_budget_bytes is apart; 0 = no limit"},
	{.key = "http_max_header_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "8K",
	 .offset = OFF(http_max_header_bytes),
	 .min = 1024,
	 .max = (int64_t)1 << 24,
	 .help = "HTTP port (metrics_listen): request line and headers of one request at most "
		 "this; beyond, 400 and the connection is closed",
	 .flags = RN_CONF_F_RESTART},
	{.key = "http_max_body_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "10M",
	 .offset = OFF(http_max_body_bytes),
	 .min = 1024,
	 .max = (int64_t)1 << 30,
	 .help = "HTTP port: a request body (a REST insert) at most this and at most "
		 "max_message_bytes; beyond, 413 and the connection is closed",
	 .flags = RN_CONF_F_RESTART},
	{.key = "http_timeout",
	 .type = RN_CONF_DURATION,
	 .def = "10s",
	 .offset = OFF(http_timeout_ms),
	 .min = 1000,
	 .max = 3600000,
	 .help = "HTTP port: a connection that does not complete a request (or take its response) "
		 "within this (whole seconds) is closed",
	 .flags = RN_CONF_F_RESTART},
	{.key = "http_max_connections",
	 .type = RN_CONF_INT,
	 .def = "256",
	 .offset = OFF(http_max_connections),
	 .min = 1,
	 .max = 1000000,
	 .help = "HTTP port: connections open at once; while this many are, new ones are not "
		 "accepted (they wait in the listen backlog; logged once per episode)",
	 .flags = RN_CONF_F_RESTART},
	{.key = "max_connections",
	 .type = RN_CONF_INT,
	 .def = "512",
	 .offset = OFF(max_connections),
	 .min = 1,
	 .max = 1000000,
	 .help = "connections open at once on the gRPC port; a new one beyond this is closed at "
		 "once (counted, logged once per episode); keep it well below the open-file limit "
		 "(LimitNOFILE), which the WAL and tables need too"},
	{.key = "parquet_zstd_level",
	 .type = RN_CONF_INT,
	 .def = "1",
	 .offset = OFF(parquet_zstd_level),
	 .min = 1,
	 .max = 19,
	 .help = "zstd level of Parquet pages: 1 is several times faster than 3 for a few % more "
		 "bytes",
	 .flags = RN_CONF_F_RESTART},
	{.key = "auto_create",
	 .type = RN_CONF_BOOL,
	 .def = "false",
	 .offset = OFF(auto_create),
	 .help = "create a table the first time a stream names it"},
	{.key = "tables",
	 .type = RN_CONF_STRLIST,
	 .offset = OFF(tables),
	 .help = "tables to create at start (and on reload, when new)"},
	{.key = "schemas",
	 .type = RN_CONF_LIST,
	 .offset = OFF(schemas),
	 .help = "typed tables: records are decoded into these columns (JSON records, or the JSON "
		 "payload of agent envelopes); what does not fit goes to <table>_dead_letters",
	 .sub = schema_keys,
	 .elem_size = sizeof(struct rn_table_schema_conf)},
	{.key = "checkpoint_interval",
	 .type = RN_CONF_INT,
	 .def = "10",
	 .offset = OFF(checkpoint_interval),
	 .max = 1000000,
	 .help = "write a Delta checkpoint every this many commits of a table; 0 = never",
	 .flags = RN_CONF_F_RESTART},
	{.key = "log_retention",
	 .type = RN_CONF_DURATION,
	 .def = "30d",
	 .offset = OFF(log_retention_ms),
	 .max = (int64_t)1 << 50,
	 .help = "JSON commits and checkpoints older than this and behind the newest checkpoint "
		 "are deleted",
	 .flags = RN_CONF_F_RESTART},
	{.key = "compact_target",
	 .type = RN_CONF_SIZE,
	 .def = "128M",
	 .offset = OFF(compact_target),
	 .min = 1024,
	 .max = (int64_t)1 << 40,
	 .help = "compaction rewrites data files smaller than this into files up to this size",
	 .flags = RN_CONF_F_RESTART},
	{.key = "compact_min_files",
	 .type = RN_CONF_INT,
	 .def = "10",
	 .offset = OFF(compact_min_files),
	 .min = 2,
	 .max = 1000000,
	 .help = "compact a table only when it has at least this many small files",
	 .flags = RN_CONF_F_RESTART},
	{.key = "compact_row_group_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "64M",
	 .offset = OFF(compact_group_bytes),
	 .min = 65536,
	 .max = (int64_t)1 << 34,
	 .help = "uncompressed size of the row groups compaction writes; a file with a larger row "
		 "group is not rewritten. A compaction step's memory is about twice this plus its "
		 "output's compressed bytes (at most compact_target)",
	 .flags = RN_CONF_F_RESTART},
	{.key = "compact_interval",
	 .type = RN_CONF_DURATION,
	 .def = "1m",
	 .offset = OFF(compact_interval_ms),
	 .max = (int64_t)1 << 50,
	 .help = "at most one bounded compaction step per table per interval, run after a flush; 0 "
		 "= no background compaction",
	 .flags = RN_CONF_F_RESTART},
	{.key = "vacuum_retention",
	 .type = RN_CONF_DURATION,
	 .def = "7d",
	 .offset = OFF(vacuum_retention_ms),
	 .max = (int64_t)1 << 50,
	 .help = "data files removed (by compaction) longer ago than this are deleted",
	 .flags = RN_CONF_F_RESTART},
	{.key = "vacuum_interval",
	 .type = RN_CONF_DURATION,
	 .def = "1h",
	 .offset = OFF(vacuum_interval_ms),
	 .max = (int64_t)1 << 50,
	 .help = "how often each table is vacuumed after a flush; 0 = never",
	 .flags = RN_CONF_F_RESTART},
	{.key = "maintenance_threads",
	 .type = RN_CONF_INT,
	 .def = "1",
	 .offset = OFF(maintenance_threads),
	 .min = 1,
	 .max = RN_POOL_THREADS_MAX,
	 .help = "worker threads running Delta maintenance (checkpoints, compaction, vacuum) off "
		 "the event loop; each table has at most one job at a time",
	 .flags = RN_CONF_F_RESTART},
	{.key = "flush_threads",
	 .type = RN_CONF_INT,
	 .def = "0",
	 .offset = OFF(flush_threads),
	 .min = 0,
	 .max = RN_POOL_THREADS_MAX,
	 .help = "worker threads that encode each table's flushed rows into Parquet, write them "
		 "and commit them off the event loop (one job per table at a time, tables in "
		 "parallel); 0 = the number of cores, at most 4",
	 .flags = RN_CONF_F_RESTART},
	{.key = "workers",
	 .type = RN_CONF_INT,
	 .def = "0",
	 .offset = OFF(workers),
	 .min = 0,
	 .max = RN_POOL_THREADS_MAX,
	 .help = "threads sharing the CPU work of turning rows into tables: 1 = all of it on the "
		 "event loop's thread (Parquet pages compressed and flush jobs run inline: one "
		 "core); N > 1 = N worker threads beside the loop compress full Parquet pages and "
		 "run flush jobs (overrides flush_threads); 0 = flush_threads workers do both",
	 .flags = RN_CONF_F_RESTART},
	{.key = "maintenance_queue",
	 .type = RN_CONF_INT,
	 .def = "64",
	 .offset = OFF(maintenance_queue),
	 .min = 1,
	 .max = 100000,
	 .help = "maintenance jobs queued or running at most; a table whose maintenance is due "
		 "while the queue is full asks again at a later flush",
	 .flags = RN_CONF_F_RESTART},
	{.key = "log_level",
	 .type = RN_CONF_ENUM,
	 .def = "info",
	 .offset = OFF(log_level),
	 .help = "log verbosity",
	 .enums = log_levels},
	{.key = "log_file",
	 .type = RN_CONF_STRING,
	 .offset = OFF(log_file),
	 .help = "log to this file instead of stderr; reopened on SIGHUP (after logrotate renamed "
		 "it)"},
	{.key = NULL},
};

/* The counts of owner `name`, made on first use; NULL when out of memory. */
static struct srv_owner *owner_rec(struct rn_server *s, const char *name)
{
	size_t len = strnlen(name, RN_PRINCIPAL_NAME_MAX);
	struct srv_owner *o = rn_strmap_get(&s->owners, name, len);
	if (o || !(o = rn_calloc(1, sizeof(*o))))
		return o;
	memcpy(o->name, name, len);
	if (rn_strmap_put(&s->owners, o->name, len, o)) {
		rn_free(o);
		return NULL;
	}
	return o;
}

/*
 * Counts st under its owner (st->owner, final by now) as persistent (`open` 0) or as having
 * a call attached (`open` 1), or stops counting it (`on` 0); idempotent. 0, or RN_ENOMEM
 * when its owner's record could not be made (then it is not counted).
 */
int rn_server__count_stream(struct rn_server *s, struct srv_stream *st, int open, int on)
{
	unsigned now = open ? st->counted_open : st->counted_persistent;
	size_t *n;
	if (!on == !now)
		return 0;
	if (!st->ow && !(st->ow = owner_rec(s, st->owner)))
		return RN_ENOMEM;
	n = open ? &st->ow->open : &st->ow->persistent;
	*n = on ? *n + 1 : *n - 1;
	if (open)
		st->counted_open = !!on;
	else
		st->counted_persistent = !!on;
	return 0;
}

/* The stream list of `table`, made on first use; NULL when out of memory. */
static struct srv_tab *tab_rec(struct rn_server *s, const char *table, size_t len)
{
	struct srv_tab *t = rn_strmap_get(&s->tabs, table, len);
	if (t || !(t = rn_calloc(1, sizeof(*t) + len + 1)))
		return t;
	memcpy(t->name, table, len);
	rn_list_init(&t->streams);
	if (rn_strmap_put(&s->tabs, t->name, len, t)) {
		rn_free(t);
		return NULL;
	}
	return t;
}

static void reg_drop(struct rn_server *s, struct srv_stream *st);
void rn_server__reg_op_orphan(struct reg_op *op);
static void store_delete(struct rn_server *s, const char *id);

int64_t rn_server__now_ms(void)
{
	return rn_now_us() / 1000;
}

struct rn_fleet_stream *rn_server__fleet_of(struct rn_server *s, struct srv_stream *st)
{
	/* the server's own streams (fleet_tables.c; met again in a WAL replay by their table,
	 * which no client may write) are not listed */
	if (!st->internal && !strncmp(st->table, "runnel.fleet.", 13))
		st->internal = 1;
	if (!st->fl && !st->internal)
		st->fl = rn_fleet_stream_get(s->fleet, st->id, st->table);
	return st->fl;
}

struct srv_stream *rn_server__add_stream(struct rn_server *s, const char *id, size_t idlen,
					 const char *table, size_t tlen, int rtype)
{
	struct srv_stream *st = rn_calloc(1, sizeof(*st));
	struct srv_tab *tab;
	if (!st || idlen >= sizeof(st->id) || !(st->table = rn_strndup(table, tlen)) ||
	    !(tab = tab_rec(s, st->table, strlen(st->table)))) {
		if (st)
			rn_free(st->table);
		rn_free(st);
		return NULL;
	}
	memcpy(st->id, id, idlen);
	if (rn_strmap_put(&s->stream_ids, st->id, idlen, st)) {
		rn_free(st->table);
		rn_free(st);
		return NULL;
	}
	st->record_type = rtype;
	st->last_received = st->last_durable = st->last_committed = -1;
	rn_registry_pending_init(&st->reg, st->id);
	rn_server__fleet_of(s, st); /* NULL when out of memory: the stream is just not listed */
	rn_list_push(&tab->streams, &st->tab_link);
	st->next = s->streams;
	if (s->streams)
		s->streams->prev = st;
	s->streams = st;
	return st;
}

/* Takes a stream off every list and the id map, and frees it. */
static void free_stream(struct rn_server *s, struct srv_stream *st)
{
	rn_fleet_stream_forget(s->fleet, st->fl);
	if (s->fleet_agents == st)
		s->fleet_agents = NULL;
	if (s->fleet_streams == st)
		s->fleet_streams = NULL;
	if (s->fleet_refusals == st)
		s->fleet_refusals = NULL;
	rn_strmap_del(&s->stream_ids, st->id, strlen(st->id));
	rn_server__count_stream(s, st, 0, 0);
	rn_server__count_stream(s, st, 1, 0);
	reg_drop(s, st);
	if (st->prev)
		st->prev->next = st->next;
	else
		s->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	rn_list_unlink(&st->dirty);
	rn_list_unlink(&st->syncing);
	rn_list_unlink(&st->ended);
	rn_list_unlink(&st->rest_link);
	rn_list_unlink(&st->tab_link);
	struct srv_tab *tab = rn_strmap_get(&s->tabs, st->table, strlen(st->table));
	if (tab && tab->ttt) /* its batches still waiting are not measured */
		rn_ttt_forget(tab->ttt, st);
	if (st->store_op)
		rn_server__reg_op_orphan(st->store_op);
	if (st->retire_wanted)
		s->retire_waiting--;
	rn_free(st->table);
	rn_free(st);
}

/* An ephemeral stream's call ended at `when` (mono us; 1 = in an earlier run): it is
 * forgotten by the first flush after its records are committed (forget_ended). */
void rn_server__mark_ended(struct rn_server *s, struct srv_stream *st, int64_t when)
{
	st->ended_us = when;
	if (!rn_list_linked(&st->ended))
		rn_list_push(&s->ended, &st->ended);
}

/* A REST stream takes no more requests (the next one starts a new stream). */
static void end_rest(struct rn_server *s, struct srv_stream *st)
{
	st->rest = 0;
	rn_list_unlink(&st->rest_link);
	rn_server__mark_ended(s, st, rn_mono_us());
}

/* st received a batch (last_received moved): the next group commit visits it. */
static void mark_dirty(struct rn_server *s, struct srv_stream *st)
{
	if (!rn_list_linked(&st->dirty))
		rn_list_push(&s->dirty, &st->dirty);
}

#define DIRTY(node) RN_LIST_ENTRY(node, struct srv_stream, dirty)
#define SYNCING(node) RN_LIST_ENTRY(node, struct srv_stream, syncing)

/*
 * The registry of _streams/ (core/registry.h) holds a stream's files; here the server hands
 * it ids and records and keeps what they mean for the stream. A persistent stream's entry is
 * durable before the create is answered, but creates that arrive together are made durable
 * together, the way the WAL's group commit makes batches durable: reg_begin writes the entry
 * as a temp file and queues the stream; reg_commit, run once the loop has handled the input
 * it has (reg_ev), before every group commit of the WAL (so no ack precedes its create's
 * answer) and when RN_REGISTRY_GROUP_MAX entries wait, makes them durable with one directory
 * fsync and only then answers the creates.
 */
static void reg_commit(struct rn_server *s);

/* Writes st's entry as a temp file and queues it for reg_commit. 0, or RN_EIO (errno set;
 * nothing is left behind). */
static int reg_begin(struct rn_server *s, struct srv_stream *st)
{
	if (rn_registry_waiting(s->reg) >= RN_REGISTRY_GROUP_MAX)
		reg_commit(s); /* the ones before: attached and waiting already */
	if (rn_registry_begin(s->reg, &st->reg, st->table, st->record_type, st->owner))
		return RN_EIO;
	event_active(s->reg_ev, 0, 0);
	return 0;
}

/* Takes st off the registering queue (no-op if not on it), its temp file removed. */
static void reg_drop(struct rn_server *s, struct srv_stream *st)
{
	rn_registry_drop(s->reg, &st->reg);
}

static void load_clock(struct rn_server *s, struct srv_stream *st)
{
	int64_t d;
	if (rn_registry_load_clock(s->reg, st->id, st->clock.boot_id, sizeof(st->clock.boot_id),
				   &d)) {
		st->clock.delta_us = d;
		st->has_clock = 1;
	}
}

void rn_server__load_files(struct rn_server *s, struct srv_stream *st)
{
	load_clock(s, st);
	rn_registry_load_owner(s->reg, st->id, st->owner);
}

/* On create/resume: the call's x-runnel-clock gives the reference, if our own clock is
 * trustworthy. 0, or RN_EIO when a changed reference could not be kept durably. */
static int stream_clock(struct rn_server *s, struct srv_stream *st, const struct call_state *cs)
{
	int64_t now = rn_now_us();
	struct rn_mat_clock c = {{0}, 0};
	if (!cs->has_clock || now < RN_CLOCK_TRUSTED_US)
		return 0;
	snprintf(c.boot_id, sizeof(c.boot_id), "%s", cs->boot_id);
	c.delta_us = now - cs->boot_us;
	if (st->has_clock && !strcmp(st->clock.boot_id, c.boot_id) &&
	    llabs(st->clock.delta_us - c.delta_us) <= 1000000)
		return 0;
	if (rn_registry_save_clock(s->reg, st->id, c.boot_id, c.delta_us))
		return RN_EIO;
	st->clock = c;
	st->has_clock = 1;
	return 0;
}

static int give_descriptor(void *ctx, const char *id, const char *table, const uint8_t *desc,
			   size_t len)
{
	struct rn_server *s = ctx;
	if (!rn_mat_stream_descriptor(s->mat, table, id, desc, len))
		return 0;
	rn_log_error("server", "stream %s: %s", id, rn_mat_errmsg(s->mat));
	return 1;
}

int rn_server__load_descriptors(struct rn_server *s, const char *table)
{
	return rn_registry_load_descriptors(s->reg, table, give_descriptor, s);
}

/* rn_registry_load's callback: a registered persistent stream. */
struct load_ctx {
	struct rn_server *s;
	int n;
};

static int registered(void *ctx, const struct rn_reg_record *rec)
{
	struct load_ctx *l = ctx;
	struct rn_server *s = l->s;
	struct srv_stream *st;
	if (rn_server__find_stream(s, rec->id, strlen(rec->id)))
		return 1;
	if (!(st = rn_server__add_stream(s, rec->id, strlen(rec->id), rec->table,
					 strlen(rec->table), rec->record_type)))
		return 0; /* out of memory: left out, as before */
	st->persistent = 1;
	snprintf(st->owner, sizeof(st->owner), "%s", rec->owner);
	if (st->fl) /* listed before its first resume: persistent, not connected */
		snprintf(st->fl->principal, sizeof(st->fl->principal), "%s", rec->owner);
	if (rn_server__count_stream(s, st, 0, 1))
		return RN_ENOMEM;
	st->used_s = rec->used_s;
	load_clock(s, st);
	l->n++;
	return 0;
}

static int load_registry(struct rn_server *s)
{
	struct load_ctx l = {s, 0};
	int rc;
	if ((rc = rn_registry_load(s->reg, registered, &l)))
		return rc;
	rn_log_info("server", "%d persistent streams registered", l.n);
	rn_server__load_descriptors(s, NULL);
	return 0;
}

static void send_msg(struct rn_call *c, struct rn_buf *b)
{
	if (rn_call_send(c, b->data, b->len))
		rn_call_finish(c, RN_GRPC_RESOURCE_EXHAUSTED, "response queue full");
}

/* Sends a durability ack of `ack` on the stream's call; a call that opted in to committed
 * acks also gets the table's watermark (rn_stream_committed_upto) when there is one. */
static void send_ack(struct rn_server *s, struct srv_stream *st, struct rn_call *c,
		     struct call_state *cs, int64_t ack)
{
	int64_t committed = -1;
	if (st->store_op)
		return; /* its create is not answered yet: acked after the answer (store_done) */
	if (cs->committed_acks) {
		struct rn_stream_state ss = rn_server__state(st);
		committed = rn_stream_committed_upto(&ss, ack);
	}
	rn_buf_reset(&s->resp);
	rn_zb_encode_ack_committed(&s->resp, cs->persistent, ack, committed);
	send_msg(c, &s->resp);
	cs->acked = ack;
	if (st->fl)
		st->fl->acked_offset = ack;
	if (committed > cs->told_committed) {
		cs->told_committed = committed;
		s->stats.committed_acks++;
	}
}

/*
 * After a flush round (on the loop: round_done), tells each call of `table`'s streams that
 * opted in to committed acks how far its stream is in the table now. The table is read
 * through the loop's Delta handle, which the round's done functions refreshed (a hash
 * look-up per stream, no I/O): nothing here touches a job's data.
 */
void rn_server__ttt_queued(struct rn_server *s, struct srv_stream *st, int64_t offset)
{
	struct srv_tab *tab = rn_strmap_get(&s->tabs, st->table, strlen(st->table));
	if (!tab)
		return;
	if (!tab->ttt && !(tab->ttt = rn_calloc(1, sizeof(*tab->ttt))))
		return; /* out of memory: this table's time to table is not measured */
	rn_ttt_queued(tab->ttt, st, offset, rn_mono_us());
}

const struct rn_ttt *rn_server__ttt_of(const struct rn_server *s, const char *table)
{
	const struct srv_tab *tab = rn_strmap_get(&s->tabs, table, strlen(table));
	return tab ? tab->ttt : NULL;
}

struct ttt_ctx {
	struct rn_server *s;
	const char *table;
};

/* A waiting batch's stream's committed offset in the table, from the loop's handle. */
static int64_t ttt_committed(void *ctx, const void *key)
{
	const struct ttt_ctx *c = ctx;
	const struct srv_stream *st = key;
	return rn_mat_committed_read(c->s->mat, c->table, st->id);
}

static void tell_table_committed(void *ctx, const char *table)
{
	struct rn_server *s = ctx;
	struct srv_tab *tab = rn_strmap_get(&s->tabs, table, strlen(table));
	if (!tab)
		return; /* no stream of this run has used it */
	if (tab->ttt) { /* the batches this commit made visible: their time to table */
		struct ttt_ctx tc = {s, table};
		rn_ttt_committed(tab->ttt, ttt_committed, &tc, rn_mono_us());
	}
	for (struct rn_list *n = tab->streams.next, *next; n != &tab->streams; n = next) {
		struct srv_stream *st = RN_LIST_ENTRY(n, struct srv_stream, tab_link);
		next = n->next;
		struct call_state *cs;
		struct rn_stream_state ss;
		struct rn_stream_verdict v;
		int64_t committed;
		if (!st->call || !(cs = rn_call_ctx(st->call)) || !cs->committed_acks ||
		    cs->acked < 0)
			continue;
		ss = rn_server__state(st);
		rn_stream_table_committed(&ss, rn_mat_committed_read(s->mat, st->table, st->id));
		st->last_committed = ss.committed;
		if (st->fl)
			st->fl->committed_offset = ss.committed;
		if (rn_stream_committed_ack(&ss, cs->acked, cs->told_committed, &v, &committed))
			send_ack(s, st, st->call, cs, v.ack);
	}
}

/* After every flush round, whatever its outcome: the streams of the tables that committed in
 * it (rn_mat_committed_tables), and only those, learn their committed offsets in this round,
 * not in the next one that succeeds everywhere. */
static void tell_committed(struct rn_server *s)
{
	rn_mat_committed_tables(s->mat, tell_table_committed, s);
}

/* Acks what the group that just ended made durable: only streams in it (s->syncing) can
 * have anything new to ack (the others' acks went out with earlier groups). */
static void ack_streams(struct rn_server *s)
{
	for (struct rn_list *n = s->syncing.next; n != &s->syncing; n = n->next) {
		struct srv_stream *st = SYNCING(n);
		struct rn_stream_state ss = rn_server__state(st);
		struct rn_stream_verdict v;
		struct call_state *cs;
		if (!st->call || st->store_op)
			continue;
		cs = rn_call_ctx(st->call);
		int done = rn_stream_ack(&ss, cs->acked, cs->half_closed, &v);
		if (v.ack >= 0) {
			send_ack(s, st, st->call, cs, v.ack);
			s->stats.acks++;
		}
		if (done)
			rn_call_finish(st->call, RN_GRPC_OK, NULL);
	}
}

#define DISK_CHECK_US 100000 /* statvfs of the WAL directory at most this often */

/* fair-share refusals: one line per table per period, then a count */
#define SHARE_LOG_PERIOD_US (10 * 1000000LL)

static struct rn_limits_now limits_now(struct rn_server *s)
{
	/* bytes kept for failing tables are not drained by a flush: they do not count toward
	 * wal_max_bytes (else one broken table would stop every other); wal_min_free still
	 * guards the disk */
	uint64_t wb = rn_wal_bytes(s->wal);
	wb = wb > s->retained_bytes ? wb - s->retained_bytes : 0;
	size_t mb, mf;
	rn_mat_memory(s->mat, &mb, &mf);
	struct rn_limits_now n = {.now_us = rn_mono_us(),
				  .wal_bytes = wb,
				  .oldest_pending_us = s->oldest_pending_us,
				  .next_flush_us = s->next_flush_us,
				  .flush_cost_us = s->flush_cost_us,
				  .wal_free = -1,
				  .mem_builders = mb,
				  .mem_flush = mf};
	if (s->limits.wal_min_free) {
		struct statvfs vs;
		if (n.now_us - s->disk_checked_us >= DISK_CHECK_US) {
			s->disk_checked_us = n.now_us;
			s->wal_free = statvfs(s->wal_path, &vs)
					      ? -1
					      : (int64_t)vs.f_bavail * (int64_t)vs.f_frsize;
		}
		n.wal_free = s->wal_free;
	}
	return n;
}

/*
 * Evaluates the limits now and tells the front when the verdict changes (it then withholds
 * or grants HTTP/2 window). Returns the pressure; *pushback_ms (may be NULL) and
 * s->pressure_msg describe it.
 */
static enum rn_pressure check_pressure(struct rn_server *s, int64_t *pushback_ms)
{
	struct rn_limits_now n = limits_now(s);
	int64_t pb = 0;
	enum rn_pressure p =
		rn_limits_pressure(&s->limits, &n, &pb, s->pressure_msg, sizeof(s->pressure_msg));
	if (pushback_ms)
		*pushback_ms = pb;
	if ((p != RN_PRESSURE_NONE) != (s->pressure != RN_PRESSURE_NONE)) {
		if (p != RN_PRESSURE_NONE) {
			s->stats.pressure_episodes++;
			rn_log_warn("server", "refusing new data, withholding HTTP/2 window: %s",
				    s->pressure_msg);
		} else {
			rn_log_info("server",
				    "accepting data again: %llu bytes in the WAL, lag %lld ms",
				    (unsigned long long)n.wal_bytes,
				    (long long)rn_limits_lag_ms(&n));
		}
		rn_front_set_pressure(s->front, p != RN_PRESSURE_NONE);
	}
	s->pressure = p;
	return p;
}

/* The summary of a period's fair-share refusals that got no line of their own. */
static void share_summary(void *ctx, const char *table, uint64_t n, uint64_t items)
{
	(void)ctx;
	(void)items;
	rn_log_warn("server",
		    "table %s: %llu more batch(es) refused in the last %lld s for its share of "
		    "the WAL",
		    table ? table : "(other tables)", (unsigned long long)n,
		    (long long)(SHARE_LOG_PERIOD_US / 1000000));
}

/* The same for principals. */
static void pshare_summary(void *ctx, const char *principal, uint64_t n, uint64_t items)
{
	(void)ctx;
	(void)items;
	rn_log_warn("server",
		    "principal %s: %llu more batch(es) refused in the last %lld s for its share "
		    "of the WAL",
		    principal ? principal : "(other principals)", (unsigned long long)n,
		    (long long)(SHARE_LOG_PERIOD_US / 1000000));
}

/*
 * May a new batch of `table` from `principal` (NULL or "": none, no principals configured)
 * go in? NULL, or the message to refuse it with (RESOURCE_EXHAUSTED, REST 429) and
 * *pushback_ms: the server's pressure first (every table refused, the window withheld), then
 * the table's share of the WAL, then the principal's (limits.h rn_limits_share: this table
 * or this principal only; its stream's window stays open, the refusal tells the client to
 * wait). A principal's share counts what it wrote to every table (mat's ledger); after a
 * restart the WAL replay adds each batch again under its stream's recorded owner, so the
 * shares are rebuilt exactly. Counts and logs the refusal (one line per table or principal
 * per period, see share_summary), unless `own`: the server's own rows (fleet system tables),
 * whose refusals are not a client's and are counted by their writer.
 */
static const char *admit_as(struct rn_server *s, const char *table, const char *principal,
			    int64_t *pushback_ms, int own)
{
	size_t active;
	uint64_t mine;
	int shared = s->limits.wal_max_bytes && s->limits.wal_soft_percent;
	if (check_pressure(s, pushback_ms) != RN_PRESSURE_NONE) {
		if (own)
			;
		else if (s->pressure == RN_PRESSURE_MEMORY)
			s->stats.memory_refusals++;
		else
			s->stats.pressure_refusals++;
		return s->pressure_msg;
	}
	if (!s->limits.wal_table_max_bytes && !shared &&
	    (!s->limits.wal_principal_max_bytes || !principal || !principal[0]))
		return NULL;
	struct rn_limits_now n = limits_now(s);
	mine = rn_mat_table_pending_bytes(s->mat, table, &active, NULL);
	if (rn_limits_share(&s->limits, &n, RN_SHARE_BY_TABLE, mine, active, pushback_ms,
			    s->share_msg, sizeof(s->share_msg)) != RN_SHARE_OK) {
		if (own)
			return s->share_msg;
		s->stats.share_refusals++;
		rn_lograte_tick(&s->share_log, n.now_us, share_summary, s);
		if (rn_lograte_note(&s->share_log, table, 1, n.now_us))
			rn_log_warn("server",
				    "table %s: refusing its new data, the other tables go on: %s",
				    table, s->share_msg);
		return s->share_msg;
	}
	if (!principal || !principal[0])
		return NULL;
	mine = rn_mat_principal_pending_bytes(s->mat, principal, &active);
	if (rn_limits_share(&s->limits, &n, RN_SHARE_BY_PRINCIPAL, mine, active, pushback_ms,
			    s->share_msg, sizeof(s->share_msg)) == RN_SHARE_OK)
		return NULL;
	s->stats.pshare_refusals++;
	rn_lograte_tick(&s->pshare_log, n.now_us, pshare_summary, s);
	if (rn_lograte_note(&s->pshare_log, principal, 1, n.now_us))
		rn_log_warn("server",
			    "principal %s: refusing its new data, the other principals go on: %s",
			    principal, s->share_msg);
	return s->share_msg;
}

static const char *admit(struct rn_server *s, const char *table, const char *principal,
			 int64_t *pushback_ms)
{
	return admit_as(s, table, principal, pushback_ms, 0);
}

/*
 * The group commit, pipelined: group_start hands every batch appended since the last group
 * to the WAL's sync thread (s->wal_pool: write + fdatasync) and moves the streams that have
 * batches in it from s->dirty to s->syncing, each with the newest offset the group holds
 * (sync_to); the loop goes on reading and appending the next group meanwhile. group_end
 * runs on the loop when the sync returned: acks for a group go out only then, and only up
 * to its sync_to (a batch of the next group is never acked by this one); or, when the WAL
 * could not make it durable, the group and everything appended behind it (which the WAL
 * dropped with it) are refused: the calls that sent them end and their clients resend.
 * One group at a time, so acks stay in order per stream. Sends nothing itself (safe inside
 * the front's callbacks); the caller flushes the front.
 */
static void rest_settle(struct rn_server *s, int ok);

/* A stream of the group that ended leaves s->syncing; its held window reopens once what is
 * still in flight on it fits stream_inflight_bytes again. */
static void group_release(struct rn_server *s, struct srv_stream *st, uint64_t done)
{
	uint64_t cap = (uint64_t)s->conf.stream_inflight_bytes;
	uint64_t was = st->inflight;
	st->inflight = done < st->inflight ? st->inflight - done : 0;
	if (was > cap && st->inflight <= cap && st->call)
		rn_call_hold_window(st->call, 0);
}

/* A failed group: every stream with batches in it or behind it loses them. */
static void group_fail(struct rn_server *s, struct rn_list *head, int rc)
{
	int syncing = head == &s->syncing;
	for (struct rn_list *n = head->next; n != head; n = n->next) {
		struct srv_stream *st = syncing ? SYNCING(n) : DIRTY(n);
		struct rn_stream_state ss = rn_server__state(st);
		struct rn_stream_verdict v;
		if (rn_stream_sync_failed(&ss, rc == RN_ENOSPC, &v)) {
			st->last_received = ss.received;
			if (st->call)
				rn_call_finish(st->call, v.grpc, v.msg);
		}
	}
}

static void group_end(struct rn_server *s, int rc)
{
	struct rn_list *n;
	if (rc) {
		s->stats.wal_sync_errors++;
		snprintf(s->stats.last_error, sizeof(s->stats.last_error), "WAL sync: %s",
			 rn_wal_errmsg(s->wal));
		rn_log_error("server", "WAL sync failed, nothing acked: %s", rn_wal_errmsg(s->wal));
		group_fail(s, &s->syncing, rc);
		group_fail(s, &s->dirty, rc);
	} else {
		for (n = s->syncing.next; n != &s->syncing; n = n->next)
			SYNCING(n)->last_durable = SYNCING(n)->sync_to;
		ack_streams(s);
	}
	rest_settle(s, rc == 0);
	/* each stream counted once per group (the idle-cost check: commit_stream_visits) */
	while ((n = rn_list_first(&s->syncing))) {
		struct srv_stream *st = SYNCING(n);
		rn_list_unlink(n);
		s->stats.commit_visits++;
		group_release(s, st, st->sync_bytes);
	}
	if (rc) /* what was appended behind the group is gone with it */
		while ((n = rn_list_first(&s->dirty))) {
			rn_list_unlink(n);
			group_release(s, DIRTY(n), UINT64_MAX);
		}
}

/* A WAL group on s->wal_pool: the sync thread owns it from submit until run returns; run
 * calls only rn_wal_sync_io (which touches only the group and the segment's descriptor) and
 * the clock. */
struct wal_job {
	struct rn_server *s; /* not touched by run but for s->wal */
	struct rn_wal *wal;
	int64_t us; /* run's duration */
};

#ifdef RN_FAULT_HOOKS
/* RN_FAULT_WAL_SYNC="N:MS" (runnel-server-faults only): the Nth group synced off the loop
 * waits MS ms on the sync thread (the loop appends the next group meanwhile), then its
 * fdatasync fails with EIO, as a disk would report a writeback error. */
static void fault_wal_sync(void)
{
	static long n;
	const char *v = getenv("RN_FAULT_WAL_SYNC");
	char *end;
	long at;
	if (!v || !*v || (at = strtol(v, &end, 10)) != ++n)
		return;
	long ms = *end == ':' ? strtol(end + 1, NULL, 10) : 0;
	rn_log_warn("server", "fault hook: WAL group %ld held %ld ms, then its fdatasync fails", n,
		    ms);
	poll(NULL, 0, (int)ms);
	rn_fs_fail_after(1, EIO, RN_FS_FSYNC);
}
#else
static void fault_wal_sync(void)
{
}
#endif

#ifdef RN_FAULT_HOOKS
/* RN_FAULT_WAL_JOB="N:K" (runnel-server-faults only): the job allocations of the Nth to the
 * (N+K-1)th group off the loop fail (K is 1 when left out), as when memory runs out, so
 * those groups take the fallback: synced on the loop. Counted here rather than through
 * rn_mem_fail_after, whose countdown any thread's allocation could take. */
static struct wal_job *wal_job_alloc(void)
{
	static long n;
	const char *v = getenv("RN_FAULT_WAL_JOB");
	char *end;
	long at;
	if (v && *v && (at = strtol(v, &end, 10)) > 0) {
		long k = *end == ':' ? strtol(end + 1, NULL, 10) : 1;
		if (++n >= at && n < at + k) {
			rn_log_warn("server", "fault hook: WAL group %ld's job not allocated", n);
			return NULL;
		}
	}
	return rn_malloc(sizeof(struct wal_job));
}
#else
static struct wal_job *wal_job_alloc(void)
{
	return rn_malloc(sizeof(struct wal_job));
}
#endif

static void wal_job_run(void *arg)
{
	struct wal_job *j = arg;
	int64_t t0 = rn_mono_us();
	fault_wal_sync();
	rn_wal_sync_io(j->wal);
	j->us = rn_mono_us() - t0;
}

static void wal_job_done(void *arg, int cancelled)
{
	struct wal_job *j = arg;
	struct rn_server *s = j->s;
	if (cancelled) /* cannot happen: destroy waits for the group first (sync_wait) */
		rn_wal_sync_io(j->wal);
	s->stats.wal_sync_us += (uint64_t)j->us;
	rn_free(j);
	group_end(s, rn_wal_sync_end(s->wal));
	/* the next group (what the loop appended meanwhile), or the flush round waiting for
	 * this one: from sync_event, not here (this may run inside a handler's sync_wal) */
	if ((rn_wal_dirty(s->wal) || s->flush_deferred) && s->sync_ev)
		event_active(s->sync_ev, 0, 0);
}

/* Starts a group of everything queued (no-op while one is in flight). Off the loop when
 * `async` and the pool takes it, else synced here. */
static void group_start(struct rn_server *s, int async)
{
	struct rn_list *n;
	struct wal_job *j;
	int rc;
	reg_commit(s); /* creates are answered before any ack on their calls */
	if (rn_wal_syncing(s->wal))
		return;
	rc = rn_wal_sync_begin(s->wal);
	while ((n = rn_list_first(&s->dirty))) {
		struct srv_stream *st = DIRTY(n);
		rn_list_unlink(n);
		st->sync_to = st->last_received;
		st->sync_bytes = st->inflight;
		rn_list_push(&s->syncing, &st->syncing);
	}
	if (rc <= 0) /* nothing queued (acks of duplicates, REST) or no segment to write */
		return group_end(s, rc);
	s->stats.wal_syncs++;
	/* no job (out of memory) or no room in the pool: the group is synced here instead */
	if (async && s->wal_pool && (j = wal_job_alloc())) {
		*j = (struct wal_job){s, s->wal, 0};
		if (!rn_pool_submit(s->wal_pool, wal_job_run, wal_job_done, j))
			return;
		rn_free(j);
	}
	int64_t t0 = rn_mono_us();
	rn_wal_sync_io(s->wal);
	s->stats.wal_sync_us += (uint64_t)(rn_mono_us() - t0);
	group_end(s, rn_wal_sync_end(s->wal));
}

/* Blocks the loop until the group in flight has ended (acked or refused). */
static void sync_wait(struct rn_server *s)
{
	int64_t t0 = rn_mono_us();
	while (rn_wal_syncing(s->wal)) {
		struct pollfd pfd = {.fd = rn_pool_fd(s->wal_pool), .events = POLLIN};
		poll(&pfd, 1, 100);
		rn_pool_complete(s->wal_pool);
	}
	s->stats.wal_wait_us += (uint64_t)(rn_mono_us() - t0);
}

/*
 * The group commit now, on the loop: the group in flight ends, then everything appended
 * since is made durable and acked (or refused). For the callers that need the WAL quiet
 * (rotation, refill) or acks out before a status (a refusal, stopping).
 */
static void sync_wal(struct rn_server *s)
{
	sync_wait(s);
	group_start(s, 0);
}

/* Appended and not yet durable: queued for the next group or in the group in flight. What
 * needs the WAL quiet calls sync_wal when this holds. */
static int wal_unsynced(const struct rn_server *s)
{
	return rn_wal_dirty(s->wal) || rn_wal_syncing(s->wal);
}

static void sync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_server *s = arg;
	(void)fd;
	(void)what;
	if (s->stopping)
		sync_wal(s);
	else
		group_start(s, 1);
	check_pressure(s, NULL);
	rn_front_flush(s->front);
}

static void wal_pool_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_server *s = arg;
	(void)fd;
	(void)what;
	rn_pool_complete(s->wal_pool);
	check_pressure(s, NULL);
	rn_front_flush(s->front);
}

static void flush_now(struct rn_server *s);

/*
 * s->sync_ev (activated after each batch, when a flush round ends and when a WAL group
 * ends): a flush round deferred for that group, the group commit, then the memory budget:
 * builders at their share start a flush now, not at the next interval. Not in sync_cb,
 * which flush_now itself calls.
 */
static void sync_event(evutil_socket_t fd, short what, void *arg)
{
	struct rn_server *s = arg;
	if (s->flush_deferred && !rn_wal_syncing(s->wal)) {
		/* the group it waited for has ended: what was appended since is synced on the
		 * loop, then the WAL rotates */
		s->flush_deferred = 0;
		flush_now(s);
	}
	sync_cb(fd, what, arg);
	struct rn_limits_now n = limits_now(s);
	/* a group in flight defers the round to its end (flush_now) */
	if (!s->stopping && !s->flush_deferred &&
	    rn_limits_flush_early(&s->limits, &n, s->flushing)) {
		s->stats.early_flushes++;
		flush_now(s);
		check_pressure(s, NULL);
	}
}

/*
 * Ephemeral streams cannot be resumed: once the call has ended and a flush that began
 * after that has committed their records and dropped their WAL segments, nothing needs
 * them. Forgets those that ended before `before_us` (in memory, in the materializer and
 * their files), so clients that open a stream per session do not grow the server.
 */
static void forget_ended(struct rn_server *s, int64_t before_us)
{
	/* only the ended ones: those still held stay on the list for a later flush */
	for (struct rn_list *n = s->ended.next, *next; n != &s->ended; n = next) {
		struct srv_stream *st = RN_LIST_ENTRY(n, struct srv_stream, ended);
		next = n->next;
		struct rn_stream_state ss = rn_server__state(st);
		if (!rn_stream_forgettable(&ss, st->ended_us, before_us, st->rest_waiting,
					   rn_server__find_failing(s, st->table) != NULL))
			continue; /* a failing table's streams keep descriptor and clock for the
				     retry */
		rn_mat_stream_forget(s->mat, st->id);
		rn_registry_forget_files(s->reg, st->id);
		s->stats.streams_forgotten++;
		free_stream(s, st);
	}
}

/*
 * Lets a persistent stream go (RetireStream, stream_expiry) once every record it sent is
 * committed to its table: its registry entry, descriptor and clock files, the
 * materializer's plan. 1 when retired, 0 when it must wait (records still pending, its table
 * failing recovery, a call attached), RN_EIO when the registry entry could not be removed
 * (it stays, retried later).
 */
static int retire_stream(struct rn_server *s, struct srv_stream *st)
{
	struct rn_stream_state ss = rn_server__state(st);
	int64_t committed = -1;
	int failing = rn_server__find_failing(s, st->table) != NULL, crc = 0;
	/* the table's log is read only when the answer depends on it */
	if (!ss.open && !failing && ss.durable >= 0)
		crc = rn_mat_committed(s->mat, st->table, st->id, &committed);
	if (!rn_stream_retire_ready(&ss, failing, crc, committed))
		return 0;
	/* with its entry on the table store: marked retired here first, so that no resume reads
	 * that entry back while its delete is under way or after it failed */
	if (s->reg_store && rn_registry_mark_retired(s->reg, st->id))
		return RN_EIO;
	if (rn_registry_retire(s->reg, st->id))
		return RN_EIO;
	if (s->reg_store)
		store_delete(s, st->id); /* its entry on the table store goes too */
	rn_mat_stream_forget(s->mat, st->id);
	rn_registry_forget_files(s->reg, st->id);
	if (st->retire_wanted) {
		s->stats.streams_retired++;
		rn_log_info("server", "stream %s of principal %s retired (RetireStream)", st->id,
			    st->owner[0] ? st->owner : "(none)");
	}
	if (st->retire_call) {
		/* the RetireStream call that asked (and maybe waited): done */
		struct call_state *rcs = rn_call_ctx(st->retire_call);
		if (rcs)
			rcs->retire_id[0] = 0;
		rn_call_finish(st->retire_call, RN_GRPC_OK, NULL);
	}
	free_stream(s, st);
	return 1;
}

/* Retires persistent streams without a call for stream_expiry (when their records are
 * committed; else at a later tick). */
static void expire_streams(struct rn_server *s)
{
	int64_t now = (int64_t)time(NULL), ttl = s->conf.stream_expiry_ms, mono = rn_mono_us();
	if (ttl <= 0 || mono < s->expire_at_us)
		return;
	/* a walk of every stream: at most every stream_expiry / 60 (1 s to 1 min), not each
	 * second, so idle streams cost a walk a minute under the default 30 days */
	int64_t every_ms = ttl / 60 < 1000 ? 1000 : ttl / 60 > 60000 ? 60000 : ttl / 60;
	s->expire_at_us = mono + every_ms * 1000;
	for (struct srv_stream *st = s->streams, *next; st; st = next) {
		char id[40], owner[sizeof(st->owner)];
		next = st->next;
		if (!st->persistent || st->call || (now - st->used_s) * 1000 < ttl)
			continue;
		memcpy(id, st->id, sizeof(id));
		memcpy(owner, st->owner, sizeof(owner));
		if (retire_stream(s, st) == 1) {
			s->stats.streams_expired++;
			rn_log_info("server",
				    "stream %s of principal %s expired: unused for %lld s", id,
				    owner[0] ? owner : "(none)", (long long)(ttl / 1000));
		}
	}
}

/* Retires the streams a RetireStream call asked for whose records are committed by now
 * (after each flush and each second). */
static void retire_pending(struct rn_server *s)
{
	if (!s->retire_waiting)
		return; /* the usual case: no walk */
	for (struct srv_stream *st = s->streams, *next; st; st = next) {
		next = st->next;
		if (st->retire_wanted && !st->call)
			retire_stream(s, st);
	}
}

/* rn_registry_sweep's callback: an ended ephemeral stream's files go, a persistent stream's
 * and a failing table's stay (the retry needs descriptor and clock). */
static int keep_files(void *ctx, const char *id, const char *ext)
{
	struct rn_server *s = ctx;
	const struct srv_stream *st = rn_server__find_stream(s, id, strlen(id));
	if (st && (st->persistent || rn_server__find_failing(s, st->table)))
		return 1;
	if (!strcmp(ext, ".desc"))
		rn_mat_stream_forget(s->mat, id);
	return 0;
}

/* At start, after recovery: .desc, .clock and .owner files of streams that are not registered
 * belong to ephemeral streams of earlier runs (all over by now), unless another server shares
 * the data root (rn_registry_join at start): its live streams' files are unknown here, so
 * they stay (a server that starts alone sweeps them). */
static void sweep_stream_files(struct rn_server *s)
{
	rn_registry_sweep(s->reg, keep_files, s);
}

/*
 * The end of a flush round (rn_mat_flush_start's callback, on the loop). After 0 every
 * batch appended before the round's WAL rotation is committed, so the segments before it
 * go: the rule is unchanged, only learned later. Batches appended while the jobs ran are
 * in later segments; they made the server dirty again (mat_dirty, oldest_pending_us).
 */
static void round_done(void *ctx, int rc)
{
	struct rn_server *s = ctx;
	s->flushing = 0;
	if (s->destroying)
		return;
	tell_committed(s);
	if (rc) {
		/* nothing dropped: the rows stay pending (or held) and the next flush takes them */
		s->mat_dirty = 1;
		if (s->flush_oldest_us &&
		    (!s->oldest_pending_us || s->flush_oldest_us < s->oldest_pending_us))
			s->oldest_pending_us = s->flush_oldest_us;
		if (rc == RN_EAGAIN) /* rows left behind a retried commit: not a failure */
			return;
		s->stats.flush_errors++;
		s->stats.last_flush_err_us = rn_mono_us();
		snprintf(s->stats.last_error, sizeof(s->stats.last_error), "flush: %s",
			 rn_mat_errmsg(s->mat));
		rn_log_error("server", "materializer: %s (will retry)", rn_mat_errmsg(s->mat));
		return;
	}
	s->stats.last_flush_ok_us = rn_mono_us();
	s->flush_cost_us = s->stats.last_flush_ok_us - s->flush_t0;
	rn_server__release_readded(s);
	if (!rn_wal_drop_before(s->wal, s->flush_seg, rn_server__segment_kept, s))
		forget_ended(s, s->flush_t0);
	if (!s->stopping) {
		retire_pending(s);
		check_pressure(s, NULL); /* the WAL shrank: pressure may end */
		/* builders that filled their share while the round ran: the next flush starts
		 * from the loop (sync_event) rather than waiting for a batch, which memory pressure
		 * may be refusing */
		struct rn_limits_now n = limits_now(s);
		if (rn_limits_flush_early(&s->limits, &n, 0))
			event_active(s->sync_ev, 0, 0);
	}
}

/* Waits (blocking the loop: only at shutdown) for the flush round in flight. */
static void flush_wait(struct rn_server *s)
{
	while (s->flushing) {
		struct pollfd pfd = {.fd = rn_pool_fd(s->flush_pool), .events = POLLIN};
		poll(&pfd, 1, 100);
		rn_pool_complete(s->flush_pool);
	}
}

/*
 * A flush round: the WAL rotates, then each table's rows go to a flush job (encoding,
 * write, commit on s->flush_pool) while the loop goes on ingesting; round_done() truncates the
 * WAL when all of them are done. One round at a time: a timer that fires while one is in
 * flight waits for the next tick. When stopping, the round runs inline and is waited for.
 */
static void flush_now(struct rn_server *s)
{
	uint64_t seg;
	int64_t t0 = rn_mono_us();
	int rc;
	rn_mat_tick(s->mat, t0); /* summaries of bad-record warnings */
	rn_lograte_tick(&s->share_log, t0, share_summary, s);
	rn_lograte_tick(&s->pshare_log, t0, pshare_summary, s);
	if (s->stopping)
		flush_wait(s);
	if (s->flushing)
		return;
	if (!s->mat_dirty) {
		/* nothing appended since the last flush, which dropped every segment before it */
		forget_ended(s, t0);
		return;
	}
	if (rn_wal_syncing(s->wal) && !s->stopping) {
		/* the rotation needs the WAL quiet: the round starts when the group in flight
		 * has ended (wal_job_done), not with the loop waiting for it here */
		s->flush_deferred = 1;
		return;
	}
	if (wal_unsynced(s)) {
		sync_wal(s); /* the rotation needs the WAL quiet */
		check_pressure(s, NULL);
		rn_front_flush(s->front);
	}
	if ((rc = rn_wal_rotate(s->wal, &seg))) {
		rn_log_error("server", "WAL rotate: %s", rn_wal_errmsg(s->wal));
		return;
	}
	s->stats.flushes++;
	s->flushing = 1;
	s->flush_seg = seg;
	s->flush_t0 = t0;
	s->flush_oldest_us = s->oldest_pending_us;
	for (struct srv_failing *f = s->failing; f; f = f->next)
		if (f->readded)
			f->readded = 2; /* readded before this round: in it */
	s->mat_dirty = 0; /* appends from here on are after the rotation: they set it again */
	s->oldest_pending_us = 0;
	if (s->stopping)
		round_done(s, rn_mat_flush(s->mat));
	else if (rn_mat_flush_start(s->mat, round_done, s))
		round_done(s, RN_EAGAIN); /* cannot happen: s->flushing guards the round */
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_server *s = arg;
	(void)fd;
	(void)what;
	s->next_flush_us = rn_mono_us() + s->conf.flush_interval_ms * 1000;
	rn_refuselog_tick(&s->rest_refusals, rn_mono_us(), rn_server__rest_refusal_summary, s);
	rn_server__retry_failing(s, 0);
	flush_now(s);
	retire_pending(s);
	check_pressure(s, NULL); /* a flush ends pressure; time passing can start lag pressure */
}

struct refill_ctx {
	struct rn_server *s;
	struct rn_mat *m;
	const char *table;
	size_t tlen;
	size_t added;
};

/* rn_wal_scan_all callback of a refill: hands the table's entries back to the materializer. */
static int refill_entry(void *ctx, const struct rn_wal_entry *e)
{
	struct refill_ctx *r = ctx;
	const struct srv_stream *st;
	char sid[64];
	if (e->table_len != r->tlen || memcmp(e->table, r->table, r->tlen) ||
	    e->stream_id_len >= sizeof(sid))
		return 0;
	memcpy(sid, e->stream_id, e->stream_id_len);
	sid[e->stream_id_len] = 0;
	st = rn_server__find_stream(r->s, e->stream_id, e->stream_id_len);
	r->added++;
	return rn_mat_refill_add_as(r->m, r->table, sid, e->offset, e->record_type, e->batch,
				    e->batch_len, st && st->has_clock ? &st->clock : NULL,
				    rn_server__owner_of(st));
}

/*
 * The materializer's refill (rn_mat_options.refill): a table's pending rows were dropped (a
 * batch failed part way, or a writer broke), and every batch of it since its last commit is
 * in the WAL: all of them were appended after their rn_mat_add succeeded, and segments go
 * only once a flush committed everything before them. The WAL is synced first (the group
 * commit, acks included, run early), so that what is queued is on disk too or, if the sync
 * fails, dropped and refused to its clients, who resend it. Then the segments are read and
 * the table's entries added again; the materializer skips what the table has committed.
 * During recovery (the WAL is being replayed) there is nothing to read yet: the error makes
 * the table fail recovery, and it is refilled once the replay is over.
 */
static int refill_table(void *ctx, struct rn_mat *m, const char *table)
{
	struct rn_server *s = ctx;
	struct refill_ctx r = {s, m, table, strlen(table), 0};
	int rc;
	if (!s->wal_ready)
		return RN_EAGAIN;
	if (wal_unsynced(s))
		sync_wal(s);
	s->stats.refills++;
	if ((rc = rn_wal_scan_all(s->wal, refill_entry, &r)))
		rn_log_error("server", "table %s: cannot refill its pending rows from the WAL: %s",
			     table,
			     rc == RN_EIO || rc == RN_ECORRUPT || rn_wal_dirty(s->wal)
				     ? rn_wal_errmsg(s->wal)
				     : rn_mat_errmsg(m));
	else
		rn_log_warn("server",
			    "table %s: pending rows dropped after a failure, %zu batch(es) "
			    "read back from the WAL",
			    table, r.added);
	return rc;
}

/* The authorization decision (oauth.h rn_authz_decide) with the server's principals, key
 * and clock; the result (its message) stays in s->authz until the next decision. */
static int authorize(struct rn_server *s, const char *auth, const char *peer, const char *table)
{
	struct rn_authz_request r = {auth, peer, table};
	return rn_authz_decide(s->principals, s->klen ? s->key : NULL, s->klen, (int64_t)time(NULL),
			       s->conf.token_clock_skew_ms / 1000, &r, &s->authz);
}

int rn_server_authorize(struct rn_server *s, const char *authorization, const char *peer_identity,
			const char *table, const char **principal, const char **msg)
{
	int st = authorize(s, authorization, peer_identity, table);
	*principal = s->authz.principal ? s->authz.principal->name : NULL;
	*msg = s->authz.msg;
	if (st == RN_GRPC_PERMISSION_DENIED)
		s->stats.calls_denied++;
	else if (st)
		s->stats.calls_rejected++;
	return st;
}

/* Marks a persistent stream used now (stream_expiry counts from here), on disk too: its
 * registry entry's mtime is what a restart reads back. */
static void touch_stream(struct rn_server *s, struct srv_stream *st)
{
	if (!st->persistent)
		return;
	st->used_s = (int64_t)time(NULL);
	rn_registry_touch(s->reg, st->id);
}

/* Persistent streams registered for principal `name` (kept counts: O(1)). */
static size_t owned_streams(const struct rn_server *s, const char *name)
{
	const struct srv_owner *o =
		rn_strmap_get(&s->owners, name, strnlen(name, RN_PRINCIPAL_NAME_MAX));
	return o ? o->persistent : 0;
}

static int open_call(struct rn_server *s, struct rn_call *c, const struct rn_call_info *info,
		     const char **msg);

/* A call's decision, remembered for on_refused: a status returned here is refused by the
 * front right away, with no call context yet. */
static int on_open(void *ctx, struct rn_call *c, const struct rn_call_info *info, const char **msg)
{
	struct rn_server *s = ctx;
	int st = open_call(s, c, info, msg);
	s->opening = st != 0;
	if (st)
		snprintf(s->opening_table, sizeof(s->opening_table), "%s",
			 info->table ? info->table : "");
	return st;
}

/*
 * The front refused a call (front.h): into the refusal sources. Its principal is the one
 * decided for it: the call's (cs->principal) once open; for a refusal by open_call, the last
 * decision (s->authz: NULL for bad credentials; a refusal before any decision is the
 * server's own UNAVAILABLE, which rn_server__refusal leaves out); none before open.
 */
static void on_refused(void *ctx, void *call_ctx, const char *addr, int status, const char *msg)
{
	struct rn_server *s = ctx;
	const struct call_state *cs = call_ctx;
	const char *principal = NULL, *table = NULL;
	if (cs) {
		principal = cs->principal;
		table = cs->st ? cs->st->table : cs->has_table ? cs->table : NULL;
	} else if (s->opening) {
		principal = s->authz.principal ? s->authz.principal->name : NULL;
		table = s->opening_table;
	}
	s->opening = 0;
	rn_server__refusal(s, addr, principal, status, 0, msg, table);
}

static int open_call(struct rn_server *s, struct rn_call *c, const struct rn_call_info *info,
		     const char **msg)
{
	struct call_state *cs;
	s->stats.calls++;
	if (s->stopping || s->draining) {
		*msg = s->stopping ? "server is shutting down" : "server is draining";
		return RN_GRPC_UNAVAILABLE;
	}
	/* who first (the table's checks below need no credentials to be answered) */
	if (authorize(s, info->authorization, info->peer_identity, NULL)) {
		s->stats.calls_rejected++;
		*msg = s->authz.msg;
		return RN_GRPC_UNAUTHENTICATED;
	}
	/* never a truncated name: it could be another valid table */
	if (info->table && info->table_len >= sizeof(((struct call_state *)0)->table)) {
		*msg = "x-databricks-zerobus-table-name is longer than 255 bytes";
		return RN_GRPC_INVALID_ARGUMENT;
	}
	if (info->table && rn_table_name_check(info->table)) {
		*msg = "invalid table name in x-databricks-zerobus-table-name: " RN_TABLE_NAME_RULE;
		return RN_GRPC_INVALID_ARGUMENT;
	}
	int st = authorize(s, info->authorization, info->peer_identity, info->table);
	if (st) {
		s->stats.calls_denied += st == RN_GRPC_PERMISSION_DENIED;
		s->stats.calls_rejected += st != RN_GRPC_PERMISSION_DENIED;
		*msg = s->authz.msg;
		return st;
	}
	/* Under pressure a call is still accepted: create and resume store nothing in the WAL,
	 * and a resume tells the client what is durable. Its first new data is refused. */
	if (!(cs = rn_calloc(1, sizeof(*cs)))) {
		*msg = "out of memory";
		return RN_GRPC_RESOURCE_EXHAUSTED;
	}
	cs->persistent = rn_call_persistent(c);
	cs->retire = !strcmp(info->path, "/databricks.zerobus.Zerobus/RetireStream");
	cs->acked = -1;
	cs->told_committed = -1;
	if (info->committed_acks && s->conf.committed_acks && cs->persistent) {
		cs->committed_acks = 1;
		rn_call_answer_committed_acks(c);
	}
	if (info->health && s->conf.fleet_health && cs->persistent) {
		cs->health = 1;
		rn_call_answer_health(c);
	}
	if (info->peer)
		snprintf(cs->peer_addr, sizeof(cs->peer_addr), "%s", info->peer);
	snprintf(cs->principal, sizeof(cs->principal), "%s", s->authz.principal->name);
	cs->expires = s->authz.expires;
	if ((info->authorization && !(cs->auth = rn_strdup(info->authorization))) ||
	    (info->peer_identity && !(cs->peer = rn_strdup(info->peer_identity)))) {
		rn_free(cs->auth);
		rn_free(cs);
		*msg = "out of memory";
		return RN_GRPC_RESOURCE_EXHAUSTED;
	}
	if (info->table) {
		snprintf(cs->table, sizeof(cs->table), "%s", info->table);
		cs->has_table = 1;
	}
	if (info->boot_id) {
		snprintf(cs->boot_id, sizeof(cs->boot_id), "%s", info->boot_id);
		cs->boot_us = info->boot_us;
		cs->has_clock = 1;
	}
	rn_call_set_ctx(c, cs);
	return 0;
}

static void attach(struct rn_server *s, struct srv_stream *st, struct rn_call *c,
		   struct call_state *cs)
{
	if (st->call && st->call != c) {
		struct call_state *old = rn_call_ctx(st->call);
		old->st = NULL;
		rn_call_finish(st->call, RN_GRPC_ABORTED, "stream resumed on another call");
	}
	st->call = c;
	cs->st = st;
	rn_server__count_stream(s, st, 1, 1); /* a metric only: uncounted when out of memory */
	if (rn_server__fleet_of(s, st))
		rn_fleet_stream_open(st->fl,
				     cs->persistent ? RN_FLEET_PERSISTENT : RN_FLEET_EPHEMERAL,
				     cs->peer_addr, cs->principal, rn_server__now_ms());
}

/*
 * A stream just made (add_stream) whose files could not be written (errno tells why): it was
 * never told to a client and holds no record, so it is let go like an ended ephemeral stream
 * (the next forget_ended drops it, its materializer plan and whatever of its files got
 * written) and holds no slot under max_persistent_streams meanwhile.
 */
static void abandon_stream(struct rn_server *s, struct srv_stream *st, const char *why)
{
	rn_log_warn("server", "stream %s for table %s refused: %s (%s)", st->id, st->table, why,
		    strerror(errno));
	reg_drop(s, st);
	st->persistent = 0;
	rn_server__count_stream(s, st, 0, 0);
	rn_server__mark_ended(s, st, rn_mono_us());
}

static void on_create(struct rn_server *s, struct rn_call *c, struct call_state *cs,
		      const struct rn_zb_request *r)
{
	char table[256];
	struct srv_stream *st;
	uuid_t u;
	char id[37];
	int rtype = r->record_type ? r->record_type : 1, ex;
	const char *unkept = NULL;
	struct rn_stream_verdict v;

	if (rn_stream_create(cs->st != NULL, &v))
		return rn_call_finish(c, v.grpc, v.msg);
	if (r->table) {
		if (r->table_len >= sizeof(table))
			return rn_call_finish(c, RN_GRPC_INVALID_ARGUMENT,
					      "table_name is longer than 255 bytes");
		/* a NUL would cut the name short, to what may be another valid table */
		if (memchr(r->table, 0, r->table_len))
			return rn_call_finish(c, RN_GRPC_INVALID_ARGUMENT,
					      "table_name contains a NUL byte");
		memcpy(table, r->table, r->table_len);
		table[r->table_len] = 0;
		if (cs->has_table && strcmp(table, cs->table))
			return rn_call_finish(
				c, RN_GRPC_INVALID_ARGUMENT,
				"table_name differs from x-databricks-zerobus-table-name");
	} else if (cs->has_table) {
		snprintf(table, sizeof(table), "%s", cs->table);
	} else {
		return rn_call_finish(c, RN_GRPC_INVALID_ARGUMENT, "no table name");
	}
	if (rn_table_name_check(table))
		return rn_call_finish(c, RN_GRPC_INVALID_ARGUMENT,
				      "invalid table name: " RN_TABLE_NAME_RULE);
	int deny = authorize(s, cs->auth, cs->peer, table);
	if (!deny && strcmp(s->authz.principal->name, cs->principal)) {
		/* a reload gave its credentials to another principal */
		deny = RN_GRPC_UNAUTHENTICATED;
		snprintf(s->authz.msg, sizeof(s->authz.msg), "the credentials changed principal");
	}
	if (deny) {
		s->stats.calls_denied += deny == RN_GRPC_PERMISSION_DENIED;
		s->stats.calls_rejected += deny != RN_GRPC_PERMISSION_DENIED;
		return rn_call_finish(c, deny, s->authz.msg);
	}
	if (rn_stream_quota(cs->persistent, owned_streams(s, cs->principal),
			    s->conf.max_persistent_streams, cs->principal, &v))
		return rn_call_finish(c, v.grpc, v.msg);
	char fwhy[400];
	if (rn_server__table_failing(s, table, fwhy, sizeof(fwhy)))
		return rn_call_finish(c, RN_GRPC_UNAVAILABLE, fwhy);
	if (rn_stream_check_record_type(rtype, &v))
		return rn_call_finish(c, v.grpc, v.msg);
	int proto_desc = rtype == 1 && r->descriptor && r->descriptor_len;
	ex = rn_mat_table_exists(s->mat, table);
	if (ex == 0 && s->conf.auto_create) {
		/* with a descriptor: a typed table with its fields as columns */
		int rc = proto_desc ? rn_mat_create_from_descriptor(s->mat, table, r->descriptor,
								    r->descriptor_len)
				    : rn_mat_ensure_table(s->mat, table);
		if (rc == RN_EINVAL)
			return rn_call_finish(c, RN_GRPC_INVALID_ARGUMENT, rn_mat_errmsg(s->mat));
		ex = rc ? rc : 1;
	}
	/* a table store that cannot be asked (an s3:// table_root whose store is down) is not
	 * "no such table": the client retries */
	if (ex == RN_ECONNECT || ex == RN_EIO)
		return rn_call_finish(c, RN_GRPC_UNAVAILABLE,
				      "the table store cannot be reached; retry later");
	if (ex != 1)
		return rn_call_finish(c, RN_GRPC_NOT_FOUND, "table does not exist");
	uuid_generate_random(u);
	uuid_unparse_lower(u, id);
	if (proto_desc) {
		/* a descriptor that does not fit the table fails here, naming the field */
		int rc = rn_mat_stream_descriptor(s->mat, table, id, r->descriptor,
						  r->descriptor_len);
		if (rc == RN_EINVAL)
			return rn_call_finish(c, RN_GRPC_INVALID_ARGUMENT, rn_mat_errmsg(s->mat));
		if (rc)
			return rn_call_finish(c, RN_GRPC_UNAVAILABLE, rn_mat_errmsg(s->mat));
		if (rn_registry_save_descriptor(s->reg, id, table, r->descriptor,
						r->descriptor_len)) {
			unkept = "cannot keep the stream's descriptor durably";
			rn_log_warn("server", "stream %s for table %s refused: %s (%s)", id, table,
				    unkept, strerror(errno));
			rn_mat_stream_forget(s->mat, id); /* the plan made above */
			return rn_call_finish(c, RN_GRPC_UNAVAILABLE, unkept);
		}
	}
	if (!(st = rn_server__add_stream(s, id, strlen(id), table, strlen(table), rtype)))
		return rn_call_finish(c, RN_GRPC_RESOURCE_EXHAUSTED, "out of memory");
	st->persistent = cs->persistent;
	snprintf(st->owner, sizeof(st->owner), "%s", cs->principal);
	st->used_s = (int64_t)time(NULL);
	if (cs->persistent && rn_server__count_stream(s, st, 0, 1)) {
		abandon_stream(s, st, "out of memory");
		return rn_call_finish(c, RN_GRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	if (cs->persistent && reg_begin(s, st))
		unkept = "cannot register the stream durably";
	else if (!cs->persistent && rn_registry_save_owner(s->reg, st->id, st->owner))
		unkept = "cannot keep the stream's principal durably";
	else if (stream_clock(s, st, cs))
		unkept = "cannot keep the stream's clock reference durably";
	if (unkept) {
		abandon_stream(s, st, unkept);
		return rn_call_finish(c, RN_GRPC_UNAVAILABLE, unkept);
	}
	attach(s, st, c, cs);
	/* a bounded number of creates per loop pass: then the pass ends (the front reads no
	 * more), reg_cb makes the group durable and its answers go out before the next ones
	 * are read */
	if (++s->pass_creates > s->stats.pass_creates_max)
		s->stats.pass_creates_max = s->pass_creates;
	if (rn_stream_create_yield(s->pass_creates, 0))
		rn_front_yield(s->front);
	event_active(s->reg_ev, 0, 0);
	if (cs->persistent)
		return; /* answered by reg_commit once its registry entry is durable */
	rn_log_info("server", "stream %s created for table %s (ephemeral) by principal %s", id,
		    table, cs->principal);
	rn_buf_reset(&s->resp);
	rn_zb_encode_create_response(&s->resp, 0, id);
	send_msg(c, &s->resp);
}

static int store_put(struct rn_server *s, struct srv_stream *st);

/* A persistent create's answer, once its registry entry is durable (and on the table store
 * when the tables are on S3). */
static void answer_create(struct rn_server *s, struct srv_stream *st)
{
	s->stats.reg_entries++;
	rn_log_info("server", "stream %s created for table %s (persistent) by principal %s", st->id,
		    st->table, st->owner);
	if (st->call) { /* else the client went away meanwhile: registered, unused */
		rn_buf_reset(&s->resp);
		rn_zb_encode_create_response(&s->resp, 1, st->id);
		send_msg(st->call, &s->resp);
	}
}

/* A registered create that cannot be answered after all: its entry removed, the stream let
 * go, its create answered UNAVAILABLE (the client creates again). */
static void unregister_create(struct rn_server *s, struct srv_stream *st, const char *why)
{
	rn_registry_retire(s->reg, st->id);
	rn_registry_forget_files(s->reg, st->id);
	abandon_stream(s, st, why);
	if (st->call)
		rn_call_finish(st->call, RN_GRPC_UNAVAILABLE, why);
}

/* reg_commit's report of one queued registration (rn_registry_commit): durable (err 0), the
 * create is answered, or with tables on S3 its entry goes to the table store first
 * (store_put); else the stream is let go, its create answered UNAVAILABLE. */
static void reg_done(void *ctx, struct rn_reg_pending *p, int err)
{
	static const char why[] = "cannot register the stream durably";
	struct rn_server *s = ctx;
	struct srv_stream *st = RN_LIST_ENTRY(p, struct srv_stream, reg);
	if (err) {
		errno = err;
		abandon_stream(s, st, why);
		if (st->call)
			rn_call_finish(st->call, RN_GRPC_UNAVAILABLE, why);
		return;
	}
	if (!s->reg_store)
		return answer_create(s, st);
	if (store_put(s, st)) {
		errno = ENOMEM;
		unregister_create(s, st, "cannot register the stream on the table store");
	}
}

/* The registry's group commit: every queued entry durable with one directory fsync, then
 * each create answered (a file that cannot be synced or renamed refuses its own create; a
 * directory fsync that fails refuses every create of the group). */
static void reg_store_kick(struct rn_server *s);

static void reg_commit(struct rn_server *s)
{
	if (rn_registry_commit(s->reg, reg_done, s))
		s->stats.reg_commits++;
	if (s->reg_store)
		reg_store_kick(s); /* the group's entries go to the store as one job */
}

static void reg_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_server *s = arg;
	(void)fd;
	(void)what;
	uint64_t before = s->stats.reg_entries;
	s->pass_creates = 0;
	reg_commit(s);
	rn_front_flush(s->front);
	/* answers sent while other creates were already read but not handled yet */
	if (rn_front_waiting(s->front))
		s->stats.reg_answered_ahead += s->stats.reg_entries - before;
}

/*
 * The registry on the table store (tables on S3; registry.h "The registry on the table
 * store"). The loop queues operations (reg_ops): a create's entry to write (put_new; the
 * create is answered when the store has it, so every answered create is on the store), a
 * resume's entry to read (an id the local registry does not know: the resume waits for the
 * answer), a retired or expired stream's entry to delete. One job at a time takes every
 * queued operation to reg_pool (so the creates of one registry group commit go together)
 * and runs them there with reg_store, never on the loop; store_done settles them on the
 * loop and starts the next job.
 */
enum reg_op_kind { REG_PUT, REG_GET, REG_DEL };

struct reg_op {
	struct rn_list link; /* on rn_server.reg_ops, then on its job's list */
	enum reg_op_kind kind;
	char id[RN_REGISTRY_ID_MAX];
	size_t idlen;
	struct rn_buf bytes;   /* PUT: the entry's object; GET: the object read (the worker's
				* while the job runs) */
	int rc;                /* the worker's result */
	char err[256];         /* the store's detail of a failure */
	struct srv_stream *st; /* PUT: the stream whose create waits (NULL once freed) */
	struct rn_call *call;  /* GET: the resume's call (NULL once closed) */
};

struct reg_job {
	struct rn_server *s;
	struct rn_tstore *store; /* rn_server.reg_store, the worker's while it runs */
	struct rn_list ops;
};

static void reg_op_free(struct reg_op *op)
{
	rn_list_unlink(&op->link);
	rn_buf_free(&op->bytes);
	rn_free(op);
}

/* The stream or call an operation answers went away: the operation runs, nobody waits. */
void rn_server__reg_op_orphan(struct reg_op *op)
{
	op->st = NULL;
}

static struct reg_op *reg_op_new(struct rn_server *s, enum reg_op_kind kind, const char *id,
				 size_t len)
{
	struct reg_op *op = rn_calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	op->kind = kind;
	op->idlen = len < sizeof(op->id) ? len : sizeof(op->id) - 1;
	memcpy(op->id, id, op->idlen);
	rn_list_push(&s->reg_ops, &op->link);
	return op;
}

static void reg_job_run(void *arg)
{
	struct reg_job *j = arg;
	for (struct rn_list *n = j->ops.next; n != &j->ops; n = n->next) {
		struct reg_op *op = RN_LIST_ENTRY(n, struct reg_op, link);
		switch (op->kind) {
		case REG_PUT:
			op->rc = rn_registry_store_put(j->store, op->id, op->bytes.data,
						       op->bytes.len, op->err, sizeof(op->err));
			continue; /* its detail is the put_new's, not the cleanup's */
		case REG_GET:
			op->rc = rn_registry_store_get(j->store, op->id, op->idlen, &op->bytes);
			break;
		case REG_DEL: op->rc = rn_registry_store_delete(j->store, op->id); break;
		}
		if (op->rc)
			snprintf(op->err, sizeof(op->err), "%s", rn_tstore_errmsg(j->store));
	}
}

static void resume(struct rn_server *s, struct rn_call *c, struct call_state *cs, const char *id,
		   size_t len, int stored);

static void on_message(void *ctx, struct rn_call *c, const uint8_t *msg, size_t len);
static void half_close_check(struct rn_call *c, struct call_state *cs);

/* Messages of a call whose create or resume waits for the table store are kept (in order,
 * up to HELD_MAX bytes: a client that sends more before the answer is refused) and handled
 * once it is answered: a client may send batches right after its create or resume
 * (grpcio's does), and none of them may be taken before the stream is known to stand. */
#define HELD_MAX (8u << 20)

static void hold_message(struct rn_call *c, struct call_state *cs, const uint8_t *msg, size_t len)
{
	uint8_t n[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			(uint8_t)len};
	if (cs->held.len + len + 4 > HELD_MAX || rn_buf_append(&cs->held, n, 4) ||
	    rn_buf_append(&cs->held, msg, len))
		rn_call_finish(c, RN_GRPC_RESOURCE_EXHAUSTED,
			       "too much sent before the create was answered");
}

static void replay_held(struct rn_server *s, struct rn_call *c)
{
	struct call_state *cs = rn_call_ctx(c);
	struct rn_buf b;
	if (!cs || !cs->held.len)
		return;
	b = cs->held;
	memset(&cs->held, 0, sizeof(cs->held));
	s->replaying_held = 1;
	for (size_t at = 0; at + 4 <= b.len;) {
		size_t n = (size_t)b.data[at] << 24 | (size_t)b.data[at + 1] << 16 |
			   (size_t)b.data[at + 2] << 8 | b.data[at + 3];
		on_message(s, c, b.data + at + 4, n);
		at += 4 + n;
	}
	s->replaying_held = 0;
	rn_buf_free(&b);
}

/* Loop: a create's entry is on the store (answered now, then the messages that came
 * meanwhile are handled), or not (refused, nothing of it kept). */
static void put_done(struct rn_server *s, struct reg_op *op)
{
	struct srv_stream *st = op->st;
	if (!st)
		return; /* gone meanwhile (the server is stopping) */
	st->store_op = NULL;
	if (op->rc) {
		rn_log_warn("server", "stream %s: registry entry on the table store: %s", st->id,
			    op->err[0] ? op->err : rn_strerror(op->rc));
		errno = EIO;
		unregister_create(s, st, "the table store cannot be reached; retry later");
		return;
	}
	answer_create(s, st);
	if (st->call) {
		struct rn_call *c = st->call;
		replay_held(s, c);
		if (rn_call_ctx(c))
			half_close_check(c, rn_call_ctx(c));
	}
}

/* Loop: a resume's entry from the store. Found: written into the local registry (the fast
 * path from now on) and the resume goes on as one of a known stream; none: NOT_FOUND as for
 * any unknown id; the store not answering: UNAVAILABLE (the client retries; it must not
 * start over). An entry of another table than the call's header is NOT_FOUND, as a local
 * one is. */
static void get_done(struct rn_server *s, struct reg_op *op)
{
	struct rn_call *c = op->call;
	struct call_state *cs = c ? rn_call_ctx(c) : NULL;
	struct rn_reg_entry e;
	struct rn_reg_entry_text t;
	char id[RN_REGISTRY_ID_MAX];
	if (!cs)
		return;
	cs->resume_op = NULL;
	memcpy(id, op->id, op->idlen);
	id[op->idlen] = 0;
	if (op->rc && op->rc != RN_ENOTFOUND) {
		rn_log_warn("server", "resume of stream %s: the table store: %s", id,
			    op->err[0] ? op->err : rn_strerror(op->rc));
		return rn_call_finish(c, RN_GRPC_UNAVAILABLE,
				      "the table store cannot be reached; retry later");
	}
	if (!op->rc && rn_registry_entry_decode(op->bytes.data, op->bytes.len, &e, &t)) {
		rn_log_warn("server",
			    "ignoring unreadable registry entry of stream %s on the table "
			    "store",
			    id);
		op->rc = RN_ENOTFOUND;
	}
	if (!op->rc && !(cs->has_table && strcmp(cs->table, e.table)) &&
	    !rn_server__find_stream(s, id, op->idlen)) {
		if (rn_registry_adopt(s->reg, id, &e)) {
			rn_log_warn("server", "stream %s: cannot keep its registry entry: %s", id,
				    strerror(errno));
			return rn_call_finish(c, RN_GRPC_UNAVAILABLE,
					      "cannot keep the stream's registry entry");
		}
		s->stats.reg_store_reads++;
		rn_log_info("server", "stream %s of table %s read from the table store", id,
			    e.table);
	}
	resume(s, c, cs, id, op->idlen, 1);
	replay_held(s, c);
	if (rn_call_ctx(c))
		half_close_check(c, cs);
}

/* Loop: settles every operation on `ops` (of a job that ran, or failed with rc_all when not
 * 0) and frees them. */
static void reg_ops_settle(struct rn_server *s, struct rn_list *ops, int rc_all)
{
	struct rn_list *n;
	while ((n = rn_list_first(ops))) {
		struct reg_op *op = RN_LIST_ENTRY(n, struct reg_op, link);
		rn_list_unlink(n);
		if (rc_all)
			op->rc = rc_all;
		if (op->rc && op->rc != RN_ENOTFOUND)
			s->stats.reg_store_errors++;
		if (op->kind == REG_PUT && !s->destroying)
			put_done(s, op);
		else if (op->kind == REG_GET && !s->destroying)
			get_done(s, op);
		else if (op->kind == REG_DEL && op->rc)
			rn_log_warn("server",
				    "stream %.*s retired: its registry entry on the table store "
				    "stays: %s; resumes of it here are refused, the delete is "
				    "retried at the next start",
				    (int)op->idlen, op->id,
				    op->err[0] ? op->err : rn_strerror(op->rc));
		else if (op->kind == REG_DEL)
			rn_registry_unmark_retired(s->reg, op->id); /* gone from the store */
		/* whatever became of it: nobody refers to it any more */
		if (op->kind == REG_PUT && op->st && op->st->store_op == op)
			op->st->store_op = NULL;
		if (op->kind == REG_GET && op->call) {
			struct call_state *cs = rn_call_ctx(op->call);
			if (cs && cs->resume_op == op)
				cs->resume_op = NULL;
		}
		reg_op_free(op);
	}
}

static void reg_job_done(void *arg, int cancelled)
{
	struct reg_job *j = arg;
	struct rn_server *s = j->s;
	s->reg_job = 0;
	reg_ops_settle(s, &j->ops, cancelled ? RN_EAGAIN : 0);
	rn_free(j);
	if (!s->destroying) {
		rn_front_flush(s->front); /* the answers go out now */
		reg_store_kick(s);
	}
}

/* Starts a job with every queued operation, unless one is in flight (its end starts the
 * next). Operations that cannot go to a job fail at once (RN_ENOMEM, RN_EAGAIN). */
static void reg_store_kick(struct rn_server *s)
{
	struct reg_job *j;
	struct rn_list *n, ops;
	int rc;
	if (s->reg_job || rn_list_empty(&s->reg_ops))
		return;
	rn_list_init(&ops);
	while ((n = rn_list_first(&s->reg_ops))) {
		rn_list_unlink(n);
		rn_list_push(&ops, n);
	}
	if (!(j = rn_calloc(1, sizeof(*j))))
		return reg_ops_settle(s, &ops, RN_ENOMEM);
	j->s = s;
	j->store = s->reg_store;
	rn_list_init(&j->ops);
	while ((n = rn_list_first(&ops))) {
		rn_list_unlink(n);
		rn_list_push(&j->ops, n);
	}
	s->reg_job = 1;
	if ((rc = rn_pool_submit(s->reg_pool, reg_job_run, reg_job_done, j))) {
		s->reg_job = 0;
		reg_ops_settle(s, &j->ops, rc);
		rn_free(j);
	}
}

static void reg_pool_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_server *s = arg;
	(void)fd;
	(void)what;
	rn_pool_complete(s->reg_pool);
}

/* Queues the deletion of a retired stream's entry on the table store (not waited for: an
 * entry that stays is logged and counted, and keeps its retired mark, rn_registry_mark_retired,
 * until a later start deletes it). */
static void store_delete(struct rn_server *s, const char *id)
{
	if (reg_op_new(s, REG_DEL, id, strlen(id)))
		reg_store_kick(s);
	else {
		s->stats.reg_store_errors++;
		rn_log_warn("server",
			    "stream %s retired: its registry entry on the table store stays: out "
			    "of memory; resumes of it here are refused, the delete is retried at "
			    "the next start",
			    id);
	}
}

/* rn_registry_each_marked's callback at start: a retired stream whose entry on the table
 * store may still be there; its delete is tried again. */
static void redo_store_delete(void *ctx, const char *id)
{
	store_delete(ctx, id);
}

/* rn_registry_load_descriptor's callback for store_put: the descriptor's bytes. */
static int copy_descriptor(void *ctx, const char *id, const char *table, const uint8_t *desc,
			   size_t len)
{
	(void)id;
	(void)table;
	return rn_buf_append(ctx, desc, len) ? 1 : 0;
}

/* Queues st's entry (with its clock and descriptor) for the table store; its create waits
 * for it. 0, or RN_ENOMEM / RN_EINVAL (the create is refused). */
static int store_put(struct rn_server *s, struct srv_stream *st)
{
	struct rn_buf desc = {0};
	struct reg_op *op;
	int rc;
	if (rn_registry_load_descriptor(s->reg, st->id, copy_descriptor, &desc)) {
		rn_buf_free(&desc);
		return RN_ENOMEM;
	}
	struct rn_reg_entry e = {st->table,
				 st->record_type,
				 st->owner,
				 st->has_clock ? st->clock.boot_id : NULL,
				 st->clock.delta_us,
				 desc.data,
				 desc.len};
	if (!(op = reg_op_new(s, REG_PUT, st->id, strlen(st->id)))) {
		rn_buf_free(&desc);
		return RN_ENOMEM;
	}
	if ((rc = rn_registry_entry_encode(&op->bytes, &e))) {
		rn_buf_free(&desc);
		reg_op_free(op);
		return rc;
	}
	rn_buf_free(&desc);
	op->st = st;
	st->store_op = op;
	return 0; /* submitted by reg_commit (reg_store_kick) after the group's reports */
}

/*
 * A resume of a stream id this server does not hold: servers sharing a data root share the
 * registry, so another one may have registered it (since this one read the registry at
 * start). Its entry is read and the stream taken over as if loaded at start (owner, clock,
 * descriptor), with nothing received or durable here: the resume then answers the table's
 * txn watermark for it (docs/protocol.md, "Resume on another server"). 0 with *out set;
 * RN_ENOTFOUND when there is no entry (never registered, retired, ephemeral, an id that
 * cannot name one, an entry that cannot be read); RN_ENOMEM (answered RESOURCE_EXHAUSTED, as
 * a create is: the stream exists, the client tries again).
 */
static int take_over(struct rn_server *s, const char *id, size_t len, struct srv_stream **out)
{
	struct load_ctx l = {s, 0};
	struct srv_stream *st;
	struct rn_stream_state ss;
	int rc = rn_registry_find(s->reg, id, len, registered, &l);
	if (rc > 0)
		return RN_ENOTFOUND;
	if (rc < 0 || !l.n || !(st = rn_server__find_stream(s, id, len)))
		return RN_ENOMEM; /* registered() could not add or count it */
	rn_stream_taken_over(&ss, st->record_type);
	st->last_received = ss.received;
	st->last_durable = ss.durable;
	rn_registry_load_descriptor(s->reg, st->id, give_descriptor, s);
	s->stats.streams_taken_over++;
	rn_log_info("server", "stream %s of table %s taken over from the registry", st->id,
		    st->table);
	*out = st;
	return 0;
}

/*
 * A resume of stream (id, len). `stored` = 1 once the table store was asked for an id the
 * local registry does not know (get_done): it is not asked again.
 */
static void resume(struct rn_server *s, struct rn_call *c, struct call_state *cs, const char *id,
		   size_t len, int stored)
{
	struct srv_stream *st = rn_server__find_stream(s, id, len);
	struct rn_stream_verdict v;
	int64_t committed = -1;
	struct rn_stream_state ss = rn_server__state(st);
	if (cs->resume_op)
		return rn_call_finish(c, RN_GRPC_FAILED_PRECONDITION,
				      "a resume is in progress on this call");
	if (rn_stream_resume_lookup(cs->st != NULL, st ? &ss : NULL)) {
		int trc = take_over(s, id, len, &st);
		if (trc == RN_ENOMEM)
			return rn_call_finish(c, RN_GRPC_RESOURCE_EXHAUSTED, "out of memory");
		if (trc == RN_ENOTFOUND && s->reg_store && !stored &&
		    !rn_registry_id_check(id, len) &&
		    !rn_registry_marked_retired(s->reg, id, len)) {
			/* maybe created on another server sharing the bucket: the answer waits
			 * for the table store (get_done) */
			struct reg_op *op = reg_op_new(s, REG_GET, id, len);
			if (!op)
				return rn_call_finish(c, RN_GRPC_RESOURCE_EXHAUSTED,
						      "out of memory");
			op->call = c;
			cs->resume_op = op;
			reg_store_kick(s);
			return;
		}
		ss = rn_server__state(st);
	}
	if (rn_stream_resume_check(cs->st != NULL, st ? &ss : NULL, &v))
		return rn_call_finish(c, v.grpc, v.msg);
	/* before anything about the stream is told or changed: the owner's call goes on */
	int deny = authorize(s, cs->auth, cs->peer, st->table);
	if (!deny && strcmp(s->authz.principal->name, cs->principal)) {
		deny = RN_GRPC_UNAUTHENTICATED;
		snprintf(s->authz.msg, sizeof(s->authz.msg), "the credentials changed principal");
	}
	if (!deny && st->owner[0] && strcmp(st->owner, cs->principal)) {
		deny = RN_GRPC_PERMISSION_DENIED;
		snprintf(s->authz.msg, sizeof(s->authz.msg), "stream belongs to another principal");
	}
	if (deny) {
		s->stats.calls_denied += deny == RN_GRPC_PERMISSION_DENIED;
		s->stats.calls_rejected += deny != RN_GRPC_PERMISSION_DENIED;
		if (st->fl) /* a refused call that named the stream */
			st->fl->refused_calls++;
		return rn_call_finish(c, deny, s->authz.msg);
	}
	if (cs->has_table && strcmp(cs->table, st->table))
		return rn_call_finish(c, RN_GRPC_INVALID_ARGUMENT,
				      "stream belongs to another table");
	char fwhy[400];
	if (rn_server__table_failing(s, st->table, fwhy, sizeof(fwhy)))
		return rn_call_finish(c, RN_GRPC_UNAVAILABLE, fwhy);
	if (rn_mat_committed(s->mat, st->table, st->id, &committed))
		return rn_call_finish(c, RN_GRPC_UNAVAILABLE, "cannot read the table's log");
	rn_stream_resume(&ss, committed, &v);
	st->last_durable = ss.durable;
	st->last_received = ss.received;
	st->last_committed = ss.committed;
	if (rn_server__fleet_of(s, st))
		st->fl->committed_offset = ss.committed;
	if (stream_clock(s, st, cs))
		return rn_call_finish(c, RN_GRPC_UNAVAILABLE,
				      "cannot keep the stream's clock reference durably");
	attach(s, st, c, cs);
	touch_stream(s, st);
	cs->acked = v.ack;
	rn_log_info("server", "stream %s resumed at %lld by principal %s", st->id, (long long)v.ack,
		    cs->principal);
	rn_buf_reset(&s->resp);
	rn_zb_encode_resume_response(&s->resp, v.ack);
	send_msg(c, &s->resp);
	/* the resume answer may be this server's WAL (ahead of the table): a client keeping
	 * records until they are in the table hears at once how far the table has them */
	int64_t told;
	if (cs->committed_acks && rn_stream_committed_ack(&ss, cs->acked, -1, &v, &told))
		send_ack(s, st, c, cs, v.ack);
}

static void on_resume(struct rn_server *s, struct rn_call *c, struct call_state *cs,
		      const struct rn_zb_request *r)
{
	resume(s, c, cs, r->stream_id, r->stream_id_len, 0);
}

static uint64_t count_records(const uint8_t *batch, size_t len)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	uint64_t n = 0;
	rn_pb_reader_init(&rd, batch, len);
	while (rn_pb_next(&rd, &f) == 1)
		n += f.num == 1;
	return n;
}

#ifdef RN_FAULT_HOOKS
/*
 * Test builds only (the runnel-server-faults program; runnel-server has none of this):
 * RN_FAULT_MAT_ADD="B:N" makes the Nth allocation of each live rn_mat_add of a client's
 * batch (gRPC or REST), from the Bth such add on, fail, until one add has failed (a batch
 * failing part way); then it is off. RN_FAULT_FLEET_ADD="B:N" does the same for the adds of
 * the server's own fleet table rows (internal streams), counted apart: each hook sees only
 * its own adds. RN_FAULT_FLEET_WAL below refuses a fleet row's WAL append.
 */
struct fault_hook {
	const char *env;
	long from, nth, adds; /* from: -1 not read yet, 0 off */
};
static struct fault_hook fault_client = {"RN_FAULT_MAT_ADD", -1, 0, 0},
			 fault_fleet = {"RN_FAULT_FLEET_ADD", -1, 0, 0};

static struct fault_hook *fault_of(int internal)
{
	return internal ? &fault_fleet : &fault_client;
}

static void fault_arm(int internal)
{
	struct fault_hook *h = fault_of(internal);
	const char *v = getenv(h->env);
	if (h->from < 0 && (!v || sscanf(v, "%ld:%ld", &h->from, &h->nth) != 2))
		h->from = 0;
	if (h->from > 0 && ++h->adds >= h->from)
		rn_mem_fail_after(h->nth);
}

static void fault_disarm(int internal, int rc)
{
	struct fault_hook *h = fault_of(internal);
	if (h->from <= 0)
		return;
	rn_mem_fail_after(0);
	if (rc == RN_ENOMEM) {
		rn_log_warn("server", "fault hook: live %s add %ld failed part way",
			    internal ? "fleet" : "client", h->adds);
		h->from = 0;
	}
}

/* RN_FAULT_FLEET_WAL="N": the Nth WAL append of the server's own fleet rows, and
 * RN_FAULT_CLIENT_WAL="N": the Nth of clients' batches (gRPC and REST), are refused as a full
 * WAL queue refuses them (the queue's real cap, 1 GiB, is out of a test's reach). */
static int fault_wal(int internal)
{
	static long nth[2] = {-1, -1}, appends[2];
	const int k = internal ? 1 : 0;
	if (nth[k] < 0) {
		const char *v = getenv(internal ? "RN_FAULT_FLEET_WAL" : "RN_FAULT_CLIENT_WAL");
		nth[k] = v ? atol(v) : 0;
	}
	if (nth[k] <= 0 || ++appends[k] != nth[k])
		return 0;
	rn_log_warn("server", "fault hook: %s WAL append %ld refused",
		    internal ? "fleet" : "client", appends[k]);
	return 1;
}
#else
static void fault_arm(int internal)
{
	(void)internal;
}

static int fault_wal(int internal)
{
	(void)internal;
	return 0;
}

static void fault_disarm(int internal, int rc)
{
	(void)internal;
	(void)rc;
}
#endif

/*
 * on_ingest: msg/len is the whole request message the batch is a slice of. When it came
 * zstd-compressed, the WAL stores the client's frame as received (the packed entry, wal.h)
 * rather than the batch it decompressed to: the same durable content in fewer bytes, at no
 * CPU cost here (the front decompressed it once already; a replay decompresses it again).
 */
static void on_ingest(struct rn_server *s, struct rn_call *c, struct call_state *cs,
		      const struct rn_zb_request *r, const uint8_t *msg, size_t len)
{
	struct srv_stream *st = cs->st;
	const uint8_t *batch = r->batch;
	size_t blen = r->batch_len;
	const char *refusal;
	struct rn_stream_state ss;
	struct rn_stream_verdict v;
	struct rn_stream_batch b = {r->has_offset, r->offset, r->batch_type};
	int64_t pushback;
	int rc;

	if (st && rn_registry_queued(&st->reg)) {
		/* a batch sent before its create was answered: the registry entry is made
		 * durable first (so the create is answered before any ack), and a stream that
		 * could not be registered (its call ended by reg_fail) takes no batch */
		reg_commit(s);
		if (!st->persistent)
			return;
		if (st->store_op) /* now waiting for the table store: handled after the answer */
			return hold_message(c, cs, msg, len);
	}
	ss = rn_server__state(st);
	switch (rn_stream_ingest(st ? &ss : NULL, &b, cs->acked, &v)) {
	case RN_STREAM_REFUSE:
		if (st && st->fl)
			st->fl->refused_calls++;
		return rn_call_finish(c, v.grpc, v.msg);
	case RN_STREAM_DUPLICATE: /* a resend after reconnect: not written again */
		if (v.ack >= 0)
			send_ack(s, st, c, cs, v.ack);
		return;
	case RN_STREAM_ACCEPT: break;
	}
	if ((refusal = admit(s, st->table, rn_server__owner_of(st), &pushback))) {
		/* new data is refused, but what this call sent before is acked ahead of the
		 * status: the WAL is synced now rather than at the end of the loop iteration */
		if (wal_unsynced(s))
			sync_wal(s);
		if (st->fl)
			st->fl->pushbacks++;
		rn_call_set_pushback(c, pushback);
		return rn_call_finish(c, RN_GRPC_RESOURCE_EXHAUSTED, refusal);
	}
	if (r->is_single) { /* one record: store it in record-list form like a batch */
		rn_buf_reset(&s->single);
		if (rn_pb_put_bytes(&s->single, 1, r->batch, r->batch_len))
			return rn_call_finish(c, RN_GRPC_RESOURCE_EXHAUSTED, "out of memory");
		batch = s->single.data;
		blen = s->single.len;
	}
	uint64_t corrected = rn_mat_clock_corrected(s->mat);
	fault_arm(0);
	rc = rn_mat_add_as(s->mat, st->table, st->id, r->offset, st->record_type, batch, blen,
			   st->has_clock ? &st->clock : NULL, rn_server__owner_of(st));
	fault_disarm(0, rc);
	corrected = rn_mat_clock_corrected(s->mat) - corrected;
	if (rc == RN_EINVAL)
		return rn_call_finish(c, RN_GRPC_INVALID_ARGUMENT, rn_mat_errmsg(s->mat));
	if (rc)
		return rn_call_finish(c, RN_GRPC_UNAVAILABLE, rn_mat_errmsg(s->mat));
	s->mat_dirty = 1;
	struct rn_wal_entry e = {.stream_id = st->id,
				 .stream_id_len = strlen(st->id),
				 .table = st->table,
				 .table_len = strlen(st->table),
				 .offset = r->offset,
				 .record_type = st->record_type,
				 .batch = batch,
				 .batch_len = blen};
	const uint8_t *z;
	size_t zlen;
	/* the batch is a slice of msg (zbwire.h); checked, as replay will cut it out there */
	if (!r->is_single && !s->replaying_held && rn_call_wire(c, &z, &zlen) && zlen < blen &&
	    (uintptr_t)batch >= (uintptr_t)msg && (uintptr_t)batch - (uintptr_t)msg <= len &&
	    blen <= len - (size_t)(batch - msg)) {
		e.packed = z;
		e.packed_len = zlen;
		e.plain_len = len;
		e.batch_off = (size_t)(batch - msg);
	}
	if (fault_wal(0) || rn_wal_append(s->wal, &e)) {
		/* taken but not logged: the table goes back to what the WAL holds, so the batch
		 * is not committed behind the refusal (a resend, on any stream, adds it once) */
		rn_mat_drop_pending(s->mat, st->table);
		return rn_call_finish(c, RN_GRPC_RESOURCE_EXHAUSTED, "WAL queue full");
	}
	st->last_received = r->offset;
	rn_server__ttt_queued(s, st, r->offset);
	mark_dirty(s, st);
	uint64_t nrec = count_records(batch, blen);
	s->stats.batches++;
	s->stats.bytes += blen;
	s->stats.records += nrec;
	if (st->fl) {
		int64_t now_ms = rn_server__now_ms();
		st->fl->batches++;
		st->fl->bytes += blen;
		st->fl->records += nrec;
		st->fl->last_batch_ms = now_ms;
		if (corrected) {
			st->fl->clock_corrections += corrected;
			st->fl->clock_corrected_ms = now_ms;
		}
	}
	if (!s->oldest_pending_us)
		s->oldest_pending_us = rn_mono_us();
	st->inflight += blen;
	if (st->inflight > (uint64_t)s->conf.stream_inflight_bytes)
		rn_call_hold_window(c, 1); /* until sync_wal has made it durable */
	check_pressure(s, NULL);           /* at the limit now: close the window right away */
	event_active(s->sync_ev, 0, 0);
}

/*
 * RetireStream (docs/protocol.md): lets a persistent stream go once its records are
 * committed, freeing its owner's slot under max_streams_per_principal. Only its owner may
 * (PERMISSION_DENIED otherwise, as for a resume); an unknown, ephemeral or already retired
 * stream is NOT_FOUND (retiring twice: the second answer is NOT_FOUND); a stream open on a
 * call is FAILED_PRECONDITION (end the call first). Records not yet committed: the call
 * waits for the flush that commits them and is answered OK then; a resume in the meantime
 * is refused (NOT_FOUND, the stream is going).
 */
static void on_retire(struct rn_server *s, struct rn_call *c, struct call_state *cs,
		      const uint8_t *msg, size_t len)
{
	const char *table, *id, *why = NULL;
	size_t tlen, ilen;
	struct srv_stream *st;
	struct rn_stream_state ss;
	struct rn_stream_verdict v;
	int deny, rc;

	if (cs->got_request++)
		return rn_call_finish(c, RN_GRPC_INVALID_ARGUMENT,
				      "RetireStream takes one request");
	if (rn_zb_decode_retire(msg, len, &table, &tlen, &id, &ilen, &why))
		return rn_call_finish(c, RN_GRPC_INVALID_ARGUMENT, why);
	st = rn_server__find_stream(s, id, ilen);
	ss = rn_server__state(st);
	if (rn_stream_retire_check(st ? &ss : NULL, 0, &v))
		return rn_call_finish(c, v.grpc, v.msg);
	/* the principal must still be allowed the table, and own the stream */
	deny = authorize(s, cs->auth, cs->peer, st->table);
	if (!deny && strcmp(s->authz.principal->name, cs->principal)) {
		deny = RN_GRPC_UNAUTHENTICATED;
		snprintf(s->authz.msg, sizeof(s->authz.msg), "the credentials changed principal");
	}
	if (!deny && st->owner[0] && strcmp(st->owner, cs->principal)) {
		deny = RN_GRPC_PERMISSION_DENIED;
		snprintf(s->authz.msg, sizeof(s->authz.msg), "stream belongs to another principal");
	}
	if (deny) {
		s->stats.calls_denied += deny == RN_GRPC_PERMISSION_DENIED;
		s->stats.calls_rejected += deny != RN_GRPC_PERMISSION_DENIED;
		rn_log_info("server", "RetireStream %s by principal %s refused: %s", st->id,
			    cs->principal, s->authz.msg);
		return rn_call_finish(c, deny, s->authz.msg);
	}
	if ((table && (tlen != strlen(st->table) || memcmp(table, st->table, tlen))) ||
	    (cs->has_table && strcmp(cs->table, st->table)))
		return rn_call_finish(c, RN_GRPC_NOT_FOUND, "unknown stream_id in that table");
	if (rn_stream_retire_check(&ss, 1, &v))
		return rn_call_finish(c, v.grpc, v.msg);
	st->retire_wanted = 1;
	s->retire_waiting++;
	st->retire_call = c;
	snprintf(cs->retire_id, sizeof(cs->retire_id), "%s", st->id);
	rc = retire_stream(s, st); /* answers c when it retires the stream */
	if (rc == 0)
		rn_log_info("server",
			    "stream %s: RetireStream by principal %s waits for its records to be "
			    "committed",
			    cs->retire_id, cs->principal);
	else if (rc < 0)
		rn_log_warn("server", "stream %s: RetireStream: the registry entry stays; retried",
			    cs->retire_id);
}

static void on_message(void *ctx, struct rn_call *c, const uint8_t *msg, size_t len)
{
	struct rn_server *s = ctx;
	struct call_state *cs = rn_call_ctx(c);
	struct rn_zb_request r;
	const char *why = NULL;

	if (cs->retire)
		return on_retire(s, c, cs, msg, len);
	if (cs->resume_op || (cs->st && cs->st->store_op))
		return hold_message(c, cs, msg, len);
	if (rn_zb_decode_request(msg, len, cs->persistent, &r, &why))
		return rn_call_finish(c, RN_GRPC_INVALID_ARGUMENT, why);
	switch (r.kind) {
	case RN_ZB_CREATE: on_create(s, c, cs, &r); break;
	case RN_ZB_RESUME: on_resume(s, c, cs, &r); break;
	case RN_ZB_INGEST: on_ingest(s, c, cs, &r, msg, len); break;
	case RN_ZB_HEALTH:
		/* never answered, never ends the call; one sent without asking is taken too
		 * (harmless), one before the stream exists or with fleet_health off is not */
		if (cs->st && s->conf.fleet_health)
			rn_server__fleet_report(s, cs->st, r.health, r.health_len);
		break;
	}
}

/* A half-closed call with nothing more to wait for ends OK; one waiting for the table
 * store (a resume's entry, its create's entry) is decided once the store answered. */
static void half_close_check(struct rn_call *c, struct call_state *cs)
{
	if (!cs->half_closed || cs->resume_op || (cs->st && cs->st->store_op))
		return;
	struct rn_stream_state ss = rn_server__state(cs->st);
	if (rn_stream_half_close(cs->st ? &ss : NULL, cs->acked))
		rn_call_finish(c, RN_GRPC_OK, NULL);
}

static void on_half_close(void *ctx, struct rn_call *c)
{
	struct call_state *cs = rn_call_ctx(c);
	(void)ctx;
	cs->half_closed = 1;
	if (cs->retire) {
		/* answered by on_retire, or later by retire_stream */
		if (!cs->got_request)
			rn_call_finish(c, RN_GRPC_INVALID_ARGUMENT,
				       "RetireStream without a request");
		return;
	}
	half_close_check(c, cs);
}

static void on_closed(void *ctx, struct rn_call *c)
{
	struct call_state *cs = rn_call_ctx(c);
	if (!cs)
		return;
	if (cs->retire_id[0]) {
		/* the client gave up waiting; the stream is still retired when it can be */
		struct srv_stream *st =
			rn_server__find_stream(ctx, cs->retire_id, strlen(cs->retire_id));
		if (st && st->retire_call == c)
			st->retire_call = NULL;
	}
	if (cs->resume_op) {
		cs->resume_op->call = NULL; /* its store read ends unanswered */
		cs->resume_op = NULL;
	}
	if (cs->st && cs->st->call == c) {
		cs->st->call = NULL;
		if (cs->st->fl)
			cs->st->fl->connected = 0;
		rn_server__count_stream(ctx, cs->st, 1, 0);
		if (!cs->st->persistent)
			rn_server__mark_ended(ctx, cs->st, rn_mono_us());
		else
			touch_stream(ctx, cs->st);
	}
	rn_buf_free(&cs->held);
	rn_free(cs->auth);
	rn_free(cs->peer);
	rn_free(cs);
	rn_call_set_ctx(c, NULL);
}

/* Answers the waiting requests whose offsets are durable now; after a failed sync (ok == 0),
 * those that are not get 503 and their streams are retired. */
static void rest_settle(struct rn_server *s, int ok)
{
	for (struct rest_pending **pp = &s->rest_pending; *pp;) {
		struct rest_pending *p = *pp;
		if (p->st->last_durable >= p->offset) {
			rn_server__rest_reply(s, p->x, p->route, 200, NULL, NULL, NULL, NULL);
		} else if (!ok) {
			if (p->st->rest)
				end_rest(s, p->st);
			rn_server__rest_reply(s, p->x, p->route, 503, "TEMPORARILY_UNAVAILABLE",
					      "server cannot make records durable", NULL, NULL);
		} else {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->st->rest_waiting--;
		rn_free(p);
	}
}

static void pool_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_server *s = arg;
	(void)fd;
	(void)what;
	rn_pool_complete(s->pool);
}

static void maint_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_server *s = arg;
	(void)fd;
	(void)what;
	rn_pool_complete(s->maint_pool);
}

/* The materializer's maintenance jobs go to their own pool (rn_mat_options.maint_submit),
 * so a long compaction never delays a token check. */
static int maint_submit(void *ctx, void (*run)(void *arg), void (*done)(void *arg, int cancelled),
			void *arg)
{
	return rn_pool_submit(ctx, run, done, arg);
}

#ifdef RN_FAULT_HOOKS
/* RN_FAULT_FLUSH_DELAY_MS=N (runnel-server-faults only): every flush job first waits N ms
 * on its worker, as on a slow disk, so tests can hold flush jobs in flight. No allocation
 * (nothing for a test to fail): the materializer submits one run function for every flush
 * job, noted here once on the loop before the first delayed submit; workers read it after
 * the pool's queue lock (a mutable static, in the test build only). */
static struct {
	void (*run)(void *arg);
	unsigned ms;
} slow;

static void slow_run(void *arg)
{
	struct timespec ts = {(time_t)(slow.ms / 1000), (long)(slow.ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	slow.run(arg);
}

static int flush_submit(void *ctx, void (*run)(void *arg), void (*done)(void *arg, int cancelled),
			void *arg)
{
	const char *v = getenv("RN_FAULT_FLUSH_DELAY_MS");
	if (!v || !*v || (slow.run && slow.run != run))
		return maint_submit(ctx, run, done, arg);
	if (!slow.run) {
		slow.ms = (unsigned)strtoul(v, NULL, 10);
		slow.run = run;
	}
	return maint_submit(ctx, slow_run, done, arg);
}
#else
static int flush_submit(void *ctx, void (*run)(void *arg), void (*done)(void *arg, int cancelled),
			void *arg)
{
	return maint_submit(ctx, run, done, arg);
}
#endif

static void flush_pool_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_server *s = arg;
	(void)fd;
	(void)what;
	rn_pool_complete(s->flush_pool);
}

/* The loop's stall, cheaply: a timer every LAG_MS notes how late it runs; the most since
 * the last scrape is runnel_server_loop_lag_max_seconds. */
#define LAG_MS 50
static void lag_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_server *s = arg;
	int64_t now = rn_mono_us();
	(void)fd;
	(void)what;
	if (s->lag_due_us && now - s->lag_due_us > s->lag_max_us)
		s->lag_max_us = now - s->lag_due_us;
	s->lag_due_us = now + LAG_MS * 1000;
}

/* For the stream manager's other files (server_int.h): the admission and pressure decisions
 * and the stream changes they share with the gRPC handlers above. */
const char *rn_server__admit(struct rn_server *s, const char *table, const char *principal,
			     int64_t *pushback_ms)
{
	return admit(s, table, principal, pushback_ms);
}

const char *rn_server__admit_own(struct rn_server *s, const char *table)
{
	int64_t pushback;
	return admit_as(s, table, NULL, &pushback, 1);
}

void rn_server__check_pressure(struct rn_server *s)
{
	check_pressure(s, NULL);
}

void rn_server__abandon_stream(struct rn_server *s, struct srv_stream *st, const char *why)
{
	abandon_stream(s, st, why);
}

void rn_server__end_rest(struct rn_server *s, struct srv_stream *st)
{
	end_rest(s, st);
}

void rn_server__mark_dirty(struct rn_server *s, struct srv_stream *st)
{
	mark_dirty(s, st);
}

enum srv_append rn_server__append_batch(struct rn_server *s, struct srv_stream *st, int64_t offset,
					int record_type, const uint8_t *data, size_t len,
					const char *principal, int *mat_rc)
{
	fault_arm(st->internal);
	int rc = rn_mat_add_as(s->mat, st->table, st->id, offset, record_type, data, len, NULL,
			       principal);
	fault_disarm(st->internal, rc);
	*mat_rc = rc;
	if (rc)
		return SRV_APPEND_MAT;
	s->mat_dirty = 1;
	struct rn_wal_entry e = {.stream_id = st->id,
				 .stream_id_len = strlen(st->id),
				 .table = st->table,
				 .table_len = strlen(st->table),
				 .offset = offset,
				 .record_type = record_type,
				 .batch = data,
				 .batch_len = len};
	if (fault_wal(st->internal) || rn_wal_append(s->wal, &e)) {
		/* taken but not logged: the table goes back to what the WAL holds */
		rn_mat_drop_pending(s->mat, st->table);
		return SRV_APPEND_WAL;
	}
	st->last_received = offset;
	if (st->internal)
		st->internal_sent = offset;
	rn_server__ttt_queued(s, st, offset);
	mark_dirty(s, st);
	if (!s->oldest_pending_us)
		s->oldest_pending_us = rn_mono_us();
	check_pressure(s, NULL);
	event_active(s->sync_ev, 0, 0);
	return SRV_APPEND_OK;
}

/*
 * The stop: no new job, no new connection, the WAL synced (every call acked up to what it
 * sent), the materializer flushed into the tables (inline, waited for), every call still
 * open ended UNAVAILABLE, and the loop ends. `why` for the log.
 */
static void stop_now(struct rn_server *s, const char *why)
{
	if (s->stopping)
		return;
	rn_log_info("server", "%s: stopping now, draining the WAL into the tables", why);
	if (!s->draining)
		rn_sd_notify("STOPPING=1");
	s->stopping = 1;
	if (s->drain_ev)
		event_del(s->drain_ev);
	rn_mat_maint_stop(s->mat); /* no new job; running ones end after their current step */
	rn_front_stop_listening(s->front);
	sync_cb(-1, 0, s);
	flush_now(s);
	for (struct srv_stream *st = s->streams; st; st = st->next)
		if (st->call)
			rn_call_finish(st->call, RN_GRPC_UNAVAILABLE, "server shutting down");
	rn_front_flush(s->front);
	if (s->stats.last_flush_err_us > s->stats.last_flush_ok_us)
		rn_log_error("server",
			     "stop: the last flush failed (%s): records stay in the WAL "
			     "for the next start",
			     s->stats.last_error);
	else
		rn_log_info("server", "stop: tables flushed, exiting");
	rn_ev_loopexit_ms(s->base, 200);
}

/* Streams with a call open (REST streams have none; a call not yet past its create has no
 * stream and ends with the server). */
static size_t open_calls(const struct rn_server *s)
{
	size_t n = 0;
	for (const struct srv_stream *st = s->streams; st; st = st->next)
		n += st->call != NULL;
	return n;
}

/* close_stream_signal{drain_timeout} to every call not sent one yet (a stream created by a
 * call opened just before the drain gets it at the next tick); returns how many. */
static size_t signal_calls(struct rn_server *s)
{
	int64_t secs = (s->conf.drain_timeout_ms + 999) / 1000;
	size_t n = 0;
	for (struct srv_stream *st = s->streams; st; st = st->next) {
		struct call_state *cs = st->call ? rn_call_ctx(st->call) : NULL;
		if (!cs || cs->retire || cs->close_sent)
			continue;
		cs->close_sent = 1;
		rn_buf_reset(&s->resp);
		rn_zb_encode_close_signal(&s->resp, cs->persistent, secs);
		send_msg(st->call, &s->resp);
		n++;
	}
	s->stats.drain_signals += n;
	if (n)
		rn_front_flush(s->front);
	return n;
}

/* While draining: once no call is open, or drain_timeout has passed, the stop. */
static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct rn_server *s = arg;
	size_t n = open_calls(s);
	(void)fd;
	(void)what;
	signal_calls(s);
	if (!n) {
		stop_now(s, "drain: every client has closed its stream");
	} else if (rn_mono_us() >= s->drain_deadline_us) {
		s->stats.drain_timed_out += n;
		rn_log_warn(
			"server",
			"drain: drain_timeout passed with %zu call(s) open: they end UNAVAILABLE",
			n);
		stop_now(s, "drain: timed out");
	}
}

/*
 * Starts a drain (once): /healthz 503 at once (health()), creates and resumes refused
 * UNAVAILABLE (on_open), REST inserts 503; every open stream is sent close_stream_signal
 * {duration = drain_timeout} once and keeps being acked; drain_tick stops the server when
 * the calls are gone or the time is up. drain_timeout 0 (or no timer): the stop at once.
 */
static void start_drain(struct rn_server *s, const char *why)
{
	size_t n;
	if (s->draining || s->stopping)
		return;
	if (s->conf.drain_timeout_ms <= 0 || !s->drain_ev) {
		stop_now(s, why);
		return;
	}
	s->draining = 1;
	s->drain_deadline_us = rn_mono_us() + s->conf.drain_timeout_ms * 1000;
	rn_sd_notify("STOPPING=1");
	rn_mat_maint_stop(s->mat); /* no new maintenance job: the stop waits for none */
	n = signal_calls(s);
	rn_log_info("server",
		    "%s: draining: /healthz 503, new streams refused, close_stream_signal sent "
		    "to %zu stream(s); waiting up to %lld ms for %zu call(s) to end",
		    why, n, (long long)s->conf.drain_timeout_ms, open_calls(s));
	if (rn_ev_add_ms(s->drain_ev, 100))
		stop_now(s, "drain: cannot arm its timer");
	else
		drain_tick(-1, 0, s);
}

/* SIGTERM: a drain (drain_timeout); SIGINT, or a second signal while draining: now. */
static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct rn_server *s = arg;
	char why[64];
	(void)what;
	snprintf(why, sizeof(why), "signal %d", (int)sig);
	if (sig == SIGTERM && !s->draining)
		start_drain(s, why);
	else
		stop_now(s, why);
}

void rn_server__admin_drain(struct rn_server *s, struct rn_httpx *x, const char *principal)
{
	const struct rn_httpx_request *q = &x->req;
	char why[160], body[160];
	int n;
	snprintf(why, sizeof(why), "POST /admin/drain by %s from %s", principal ? principal : "?",
		 q->peer ? q->peer : "?");
	start_drain(s, why);
	n = snprintf(body, sizeof(body),
		     "{\"draining\":true,\"drain_timeout_ms\":%lld,\"open_calls\":%zu}",
		     (long long)s->conf.drain_timeout_ms, open_calls(s));
	struct rn_httpx_response r = {.status = 202,
				      .content_type = "application/json",
				      .body = (const uint8_t *)body,
				      .len = (size_t)n};
	rn_httpx_respond(x, &r);
}

static void hup_cb(evutil_socket_t sig, short what, void *arg);
static void reauthorize(struct rn_server *s);

/* Every 10 s: the overview's history bucket (api_handlers.c), from two counters. */
static void hist_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rn_server__hist_tick(arg, rn_server__now_ms());
}

/* Every fleet_table_interval: one runnel.fleet.streams row per stream, one
 * runnel.fleet.refusals row per refusal source refused since. */
static void fleet_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rn_server__fleet_tables_tick(arg);
	rn_server__fleet_refusals_tick(arg);
}
static void render_metrics(void *ctx, struct rn_buf *b);
static int health(void *ctx, char *why, size_t cap);

/* The addresses of a listen setting as the config loader checked it (rn_addr.h); logs why
 * it is not a list of them. */
static int split_listen(const char *key, const char *listen, struct rn_hostport *hp, size_t *n)
{
	const char *why = NULL;
	size_t at;
	if (rn_addr_parse_listen_list(listen, hp, RN_ADDR_LIST_MAX, n, &at, &why)) {
		rn_log_error("server", "%s = \"%s\": %s", key, listen ? listen : "", why);
		return RN_EINVAL;
	}
	return 0;
}

/* "127.0.0.1:7700, [::1]:7700" from addresses and their bound ports, for the log. */
static void format_listen(char *out, size_t cap, const struct rn_hostport *hp, const int *ports,
			  size_t n)
{
	size_t len = 0;
	out[0] = 0;
	for (size_t i = 0; i < n && len < cap; i++) {
		int w = snprintf(out + len, cap - len, "%s%s%s%s:%d", i ? ", " : "",
				 hp[i].family == 6 ? "[" : "", hp[i].host,
				 hp[i].family == 6 ? "]" : "", ports[i]);
		if (w < 0)
			break;
		len += (size_t)w;
	}
}

/* The partitioning of config entry i (strings point into the config; free spec->derived). */
static int build_spec(const struct rn_server_conf *c, size_t i, struct rn_part_spec *spec)
{
	const struct rn_table_schema_conf *t =
		(const struct rn_table_schema_conf *)c->schemas.items + i;
	const struct rn_column_conf *col = t->columns.items;
	struct rn_part_derived *d = rn_calloc(t->columns.n ? t->columns.n : 1, sizeof(*d));
	memset(spec, 0, sizeof(*spec));
	if (!d)
		return RN_ENOMEM;
	for (size_t k = 0; k < t->columns.n; k++)
		if (col[k].from)
			d[spec->nderived++] = (struct rn_part_derived){col[k].name, col[k].from};
	spec->derived = d;
	spec->columns = (const char *const *)t->partition_by.v;
	spec->ncolumns = t->partition_by.n;
	return 0;
}

/* The schema of config entry i, heap allocated, and its checked partitioning (spec may be
 * NULL; else free spec->derived). 0 or RN_ECONFIG with the reason in err, RN_ENOMEM. */
static int build_schema(const struct rn_server_conf *c, size_t i, struct rn_schema **out,
			struct rn_part_spec *spec, char *err, size_t cap)
{
	const struct rn_table_schema_conf *t =
		(const struct rn_table_schema_conf *)c->schemas.items + i;
	const struct rn_column_conf *col = t->columns.items;
	struct rn_schema *s = rn_calloc(1, sizeof(*s));
	struct rn_part_spec sp;
	char why[300];
	int rc;

	*out = NULL;
	if (!s)
		return RN_ENOMEM;
	if (rn_table_name_check(t->table)) {
		snprintf(err, cap, "schemas[%zu].table: invalid table name '%s': %s", i, t->table,
			 RN_TABLE_NAME_RULE);
		goto bad;
	}
	if (!t->columns.n) {
		snprintf(err, cap, "schemas[%zu] (%s): no columns", i, t->table);
		goto bad;
	}
	for (size_t k = 0; k < t->columns.n; k++)
		if (rn_schema_add_column(s, col[k].name, col[k].type, col[k].nullable, why,
					 sizeof(why))) {
			snprintf(err, cap, "schemas[%zu] (%s): column '%s': %s", i, t->table,
				 col[k].name, why);
			goto bad;
		}
	if ((rc = build_spec(c, i, &sp))) {
		rn_schema_free(s);
		rn_free(s);
		return rc;
	}
	if (rn_part_spec_check(s, &sp, NULL, why, sizeof(why))) {
		snprintf(err, cap, "schemas[%zu] (%s): %s", i, t->table, why);
		rn_free((void *)sp.derived);
		goto bad;
	}
	if (spec)
		*spec = sp;
	else
		rn_free((void *)sp.derived);
	*out = s;
	return 0;
bad:
	rn_schema_free(s);
	rn_free(s);
	return RN_ECONFIG;
}

/*
 * Writes path in a lexical normal form into out: absolute (a relative path is taken from the
 * working directory), no empty or "." parts, ".." resolved, no trailing '/'. Symbolic links
 * are not followed (the directories need not exist yet). 0, or RN_ERANGE if it does not fit.
 */
static int path_normal(const char *path, char *out, size_t cap)
{
	char cwd[4096], buf[8192];
	size_t n = 0;
	const char *p = buf;
	if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		return RN_ERANGE;
	if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", path[0] == '/' ? "" : cwd, path) >=
	    sizeof(buf))
		return RN_ERANGE;
	while (*p) {
		const char *e;
		size_t len;
		while (*p == '/')
			p++;
		e = p + strcspn(p, "/");
		len = (size_t)(e - p);
		if (len == 2 && !memcmp(p, "..", 2)) {
			while (n && out[n - 1] != '/')
				n--;
			if (n)
				n--;
		} else if (len && !(len == 1 && *p == '.')) {
			if (n + 1 + len >= cap)
				return RN_ERANGE;
			out[n++] = '/';
			memcpy(out + n, p, len);
			n += len;
		}
		p = e;
	}
	if (!n)
		out[n++] = '/';
	out[n] = 0;
	return 0;
}

/*
 * wal_dir must not be data_root or lie under it, where a table's directory (data_root/<part>/..)
 * could be the WAL directory or inside it, e.g. a table named "wal" with wal_dir =
 * data_root/wal. data_root/_wal (the default) is allowed: no name part of a table may start
 * with '_' (rn_table_name_check), so no table lives there.
 */
static int check_wal_dir(const struct rn_server_conf *c, const char *file, char *err, size_t cap)
{
	char root[4096], wal[4096];
	size_t n;
	/* the tables' directory: a local table_root, else data_root (an s3:// one holds none) */
	const char *troot = rn_server_table_root(c);
	const char *key = c->table_root ? "table_root" : "data_root";
	if (!c->wal_dir || !troot || !strncmp(troot, "s3://", 5))
		return 0;
	if (path_normal(troot, root, sizeof(root)) || path_normal(c->wal_dir, wal, sizeof(wal))) {
		snprintf(err, cap, "%s: %s or wal_dir is too long", file, key);
		return RN_ECONFIG;
	}
	n = strlen(root);
	if (n == 1)
		n = 0; /* root "/": every path is under it */
	if (strncmp(wal, root, n) || (wal[n] && wal[n] != '/') || !strcmp(wal + n, "/_wal"))
		return 0;
	snprintf(err, cap,
		 "%s: wal_dir \"%s\" is inside %s \"%s\", where tables are created; give "
		 "it a directory outside %s, or leave it unset (data_root/_wal)",
		 file, c->wal_dir, key, troot, key);
	return RN_ECONFIG;
}

/* The TLS options of a listener from the config. */
static void tls_options(const struct rn_server_conf *c, const char *alpn, const char *name,
			struct rn_tls_options *o)
{
	*o = (struct rn_tls_options){
		.cert_file = c->tls_cert,
		.key_file = c->tls_key,
		.client_ca_file = c->tls_client_ca,
		.client_auth = c->tls_client_auth,
		.alpn = alpn,
		.name = name,
	};
}

/* Cleartext listeners on addr, one address or a list (key = its config key): refused off
 * loopback (see server.h); every address of a list is checked. */
static int check_cleartext(const struct rn_server_conf *c, const char *key, const char *addr,
			   const char *file, char *err, size_t cap)
{
	struct rn_hostport hp[RN_ADDR_LIST_MAX];
	const char *why = NULL;
	size_t n, at;
	if (!addr || c->allow_cleartext)
		return 0;
	if (rn_addr_parse_listen_list(addr, hp, RN_ADDR_LIST_MAX, &n, &at, &why)) {
		snprintf(err, cap, "%s: %s = \"%s\": %s", file, key, addr, why);
		return RN_ECONFIG;
	}
	for (size_t i = 0; i < n; i++) {
		if (rn_addr_is_loopback(&hp[i]))
			continue;
		char one[RN_ADDR_HOST_CAP + 16];
		snprintf(one, sizeof(one), "%s%.*s%s:%d", hp[i].family == 6 ? "[" : "",
			 RN_ADDR_HOST_CAP - 1, hp[i].host, hp[i].family == 6 ? "]" : "",
			 hp[i].port);
		snprintf(err, cap,
			 "%s: %s = \"%s\"%s%s is not a loopback address and would serve cleartext: "
			 "set tls_cert and tls_key (or allow_cleartext = true, e.g. behind a TLS "
			 "proxy)",
			 file, key, addr, n > 1 ? ": " : "", n > 1 ? one : "");
		return RN_ECONFIG;
	}
	return 0;
}

int rn_server_conf_check_exposure(const struct rn_server_conf *c, const char *file, char *err,
				  size_t cap)
{
	if (!c->tls_cert != !c->tls_key) {
		snprintf(err, cap, "%s: tls_cert and tls_key go together (one is unset)", file);
		return RN_ECONFIG;
	}
	if (c->tls_client_auth != RN_TLS_CLIENT_NONE && !c->tls_client_ca) {
		snprintf(err, cap, "%s: tls_client_auth = \"%s\" needs tls_client_ca", file,
			 client_auths[c->tls_client_auth]);
		return RN_ECONFIG;
	}
	if (c->tls_client_ca && !c->tls_cert) {
		snprintf(err, cap, "%s: tls_client_ca needs tls_cert and tls_key (TLS)", file);
		return RN_ECONFIG;
	}
	if (!c->tls_cert) {
		if (check_cleartext(c, "listen", c->listen, file, err, cap) ||
		    check_cleartext(c, "metrics_listen", c->metrics_listen, file, err, cap))
			return RN_ECONFIG;
		return 0;
	}
	if (!c->metrics_tls &&
	    check_cleartext(c, "metrics_listen", c->metrics_listen, file, err, cap))
		return RN_ECONFIG;
	struct rn_tls_options o;
	struct rn_tls *t;
	char why[512];
	tls_options(c, "h2", "listen", &o);
	if (rn_tls_create(&t, &o, why, sizeof(why))) {
		snprintf(err, cap, "%s: TLS: %s", file, why);
		return RN_ECONFIG;
	}
	rn_tls_destroy(t);
	return 0;
}

/* The principals of config c (rn_principals_create). 0, RN_ECONFIG ("FILE: ..." in err),
 * RN_ENOMEM. */
static int build_principals(const struct rn_server_conf *c, const char *file,
			    struct rn_principals **out, char *err, size_t cap)
{
	char why[600];
	int rc = rn_principals_create(out, c->principals.items, c->principals.n, c->token.v,
				      c->token.n, why, sizeof(why));
	if (rc == RN_ECONFIG)
		snprintf(err, cap, "%s: %s", file, why);
	return rc;
}

int rn_server_conf_check(const struct rn_server_conf *c, const char *file, char *err, size_t cap)
{
	char why[600];
	struct rn_principals *ps;
	int prc;
	int src;
	if (check_wal_dir(c, file, err, cap))
		return RN_ECONFIG;
	if ((src = rn_server__conf_check_store(c, file, err, cap)))
		return src;
	for (size_t i = 0; i < c->tables.n; i++)
		if (rn_table_name_check(c->tables.v[i])) {
			snprintf(err, cap, "%s: tables[%zu]: invalid table name '%s': %s", file, i,
				 c->tables.v[i], RN_TABLE_NAME_RULE);
			return RN_ECONFIG;
		}
	if ((prc = build_principals(c, file, &ps, err, cap)))
		return prc;
	rn_principals_destroy(ps);
	for (size_t i = 0; i < c->schemas.n; i++) {
		struct rn_schema *s;
		const struct rn_table_schema_conf *t =
			(const struct rn_table_schema_conf *)c->schemas.items + i;
		int rc = build_schema(c, i, &s, NULL, why, sizeof(why));
		if (rc) {
			snprintf(err, cap, "%s: %s", file, why);
			return rc;
		}
		rn_schema_free(s);
		rn_free(s);
		for (size_t k = 0; k < c->tables.n; k++)
			if (!strcmp(c->tables.v[k], t->table)) {
				snprintf(err, cap, "%s: %s is in both tables and schemas", file,
					 t->table);
				return RN_ECONFIG;
			}
	}
	return 0;
}

/*
 * Creates or opens a table named in the config. A table that exists but cannot be opened
 * (its log unreadable, an I/O error) does not stop the server: it becomes a failing table,
 * its WAL records are kept, and it is retried. A config error stays fatal.
 */
static int ensure_configured(struct rn_server *s, const char *name)
{
	struct srv_failing *f;
	int rc = rn_mat_ensure_table(s->mat, name);
	if (!rc)
		return 0;
	if (rc == RN_EINVAL || rc == RN_ECONFLICT || rc == RN_ENOTSUP || rc == RN_ENOMEM) {
		rn_log_error("server", "table %s: %s", name,
			     rc == RN_EINVAL ? "invalid name" : rn_mat_errmsg(s->mat));
		return rc;
	}
	if (!(f = rn_server__add_failing(s, name, 1)))
		return RN_ENOMEM;
	snprintf(f->why, sizeof(f->why), "%s", rn_mat_errmsg(s->mat));
	rn_log_error("server", "table %s cannot be opened: %s; serving the others, retrying it",
		     name, f->why);
	return 0;
}

/*
 * Reload (SIGHUP; docs/operations.md "Server reload"). The config is loaded and checked as
 * at start; a config that does not load changes nothing. Otherwise the new config is
 * applied live, with these exceptions: rows marked RN_CONF_F_RESTART keep their running
 * values (logged "changes at restart"), and table declarations follow declare_tables().
 * Calls already open keep what they were admitted with (their token was checked when they
 * opened).
 */

/* What a reloaded config does to the typed table declarations. */
enum decl_verdict {
	DECL_SAME,    /* declared before, identically */
	DECL_NEW,     /* not declared before */
	DECL_CHANGED, /* declared before, otherwise: the old declaration stays in force */
};

static const struct rn_conf_key *conf_row(const char *key)
{
	for (const struct rn_conf_key *k = rn_server_conf_table; k->key; k++)
		if (!strcmp(k->key, key))
			return k;
	return NULL;
}

/* Where table is declared in c's schemas, or -1. */
static long schema_index(const struct rn_server_conf *c, const char *table)
{
	const struct rn_table_schema_conf *t = c->schemas.items;
	for (size_t i = 0; i < c->schemas.n; i++)
		if (t[i].table && !strcmp(t[i].table, table)) /* NULL: moved by declare_tables */
			return (long)i;
	return -1;
}

static enum decl_verdict decl_verdict(const struct rn_server_conf *old,
				      const struct rn_server_conf *nc, size_t i, long *oi)
{
	const struct rn_table_schema_conf *t =
		(const struct rn_table_schema_conf *)nc->schemas.items;
	const struct rn_conf_key *k = conf_row("schemas");
	*oi = schema_index(old, t[i].table);
	if (*oi < 0)
		return DECL_NEW;
	const struct rn_table_schema_conf *o =
		(const struct rn_table_schema_conf *)old->schemas.items + *oi;
	for (const struct rn_conf_key *r = k->sub; r->key; r++)
		if (!rn_conf_key_equal(r, o, &t[i]))
			return DECL_CHANGED;
	return DECL_SAME;
}

/* Declares and creates new typed table i of nc. 1 when it is in force (created, or failing
 * and retried like a configured table at start), 0 when refused (logged, naming it). */
static int declare_new(struct rn_server *s, const struct rn_server_conf *nc, size_t i)
{
	const char *name = ((const struct rn_table_schema_conf *)nc->schemas.items)[i].table;
	struct rn_schema *sc;
	struct rn_part_spec spec;
	char why[600];
	int rc;
	if (rn_mat_table_exists(s->mat, name) == 1) {
		rn_log_error("server",
			     "reload: schemas: table %s exists already; a declaration for an "
			     "existing table is taken at restart (and must match its schema): "
			     "not declared now",
			     name);
		return 0;
	}
	if ((rc = build_schema(nc, i, &sc, &spec, why, sizeof(why)))) {
		rn_log_error("server", "reload: %s", rc == RN_ENOMEM ? "out of memory" : why);
		return 0;
	}
	rc = rn_mat_define_table_ex(s->mat, name, sc, &spec);
	rn_free((void *)spec.derived);
	if (rc) {
		rn_log_error("server", "reload: schemas: table %s: %s", name,
			     rn_mat_errmsg(s->mat));
		rn_schema_free(sc);
		rn_free(sc);
		return 0;
	}
	if (ensure_configured(s, name))
		return 1; /* declared (the materializer holds it): in force, its creation
			     logged */
	rn_log_info("server", "reload: table %s declared and created", name);
	return 1;
}

/*
 * Settles nc->schemas to the declarations in force after the reload: unchanged ones, new
 * ones for tables that do not exist yet (declared and created now), the old declaration of
 * a changed one (refused, naming the table) and of a removed one (its table and data stay,
 * and streams may still write to it as to any existing table; the declaration goes at
 * restart). Entries moved from old are zeroed there. 0 or RN_ENOMEM (nothing changed).
 */
static int declare_tables(struct rn_server *s, struct rn_server_conf *old,
			  struct rn_server_conf *nc)
{
	const struct rn_conf_key *k = conf_row("schemas");
	struct rn_table_schema_conf *o = old->schemas.items, *n = nc->schemas.items, *e;
	size_t ne = 0;
	if (!(e = rn_calloc(old->schemas.n + nc->schemas.n + 1, sizeof(*e))))
		return RN_ENOMEM;
	for (size_t i = 0; i < old->schemas.n; i++) {
		if (!o[i].table || schema_index(nc, o[i].table) >= 0)
			continue;
		rn_log_warn("server",
			    "reload: schemas: table %s is no longer declared; its table "
			    "and data "
			    "stay, its declaration is in force until a restart",
			    o[i].table);
		e[ne++] = o[i];
		memset(&o[i], 0, sizeof(o[i]));
	}
	for (size_t i = 0; i < nc->schemas.n; i++) {
		long oi;
		switch (decl_verdict(old, nc, i, &oi)) {
		case DECL_SAME: break;
		case DECL_CHANGED:
			rn_log_error("server",
				     "reload: schemas: table %s: its declaration changed; the "
				     "columns and partitioning of a declared table cannot "
				     "change "
				     "while the server runs, the running declaration stays (a "
				     "restart applies the new one if it matches the table's "
				     "schema)",
				     n[i].table);
			e[ne++] = o[oi];
			memset(&o[oi], 0, sizeof(o[oi]));
			continue;
		case DECL_NEW:
			if (!declare_new(s, nc, i))
				continue;
			break;
		}
		e[ne++] = n[i];
		memset(&n[i], 0, sizeof(n[i]));
	}
	for (size_t i = 0; i < nc->schemas.n; i++)
		rn_conf_free(k->sub, &n[i]);
	rn_free(n);
	nc->schemas.items = e;
	nc->schemas.n = ne;
	return 0;
}

/* The limits that follow the config (at start and after a reload). */
static void apply_limits(struct rn_server *s)
{
	const struct rn_server_conf *c = &s->conf;
	s->limits.wal_max_bytes = (uint64_t)c->wal_max_bytes;
	s->limits.wal_min_free = (uint64_t)c->wal_min_free;
	s->limits.wal_soft_percent = (unsigned)c->wal_soft_percent;
	s->limits.wal_table_max_bytes = (uint64_t)c->wal_table_max_bytes;
	s->limits.wal_principal_max_bytes = (uint64_t)c->wal_principal_max_bytes;
	s->limits.memory_max_bytes = (uint64_t)c->memory_max_bytes;
	s->limits.max_lag_ms = rn_limits_effective_lag_ms(c->max_lag_ms, c->flush_interval_ms);
	if (s->limits.max_lag_ms != c->max_lag_ms)
		rn_log_warn("server",
			    "max_lag %lld ms is not longer than flush_interval_ms %lld: "
			    "using %lld ms",
			    (long long)c->max_lag_ms, (long long)c->flush_interval_ms,
			    (long long)s->limits.max_lag_ms);
}

static void front_options(const struct rn_server_conf *c, struct rn_front_options *fo)
{
	*fo = (struct rn_front_options){
		.max_message = (size_t)c->max_message_bytes,
		.max_streams = (uint32_t)c->max_streams_per_connection,
		.idle_timeout_ms = c->idle_timeout_ms,
		.slow_bytes = (size_t)c->slow_client_bytes,
		.slow_timeout_ms = c->slow_client_timeout_ms,
		.max_conns = (uint32_t)c->max_connections,
		.header_timeout_ms = c->header_timeout_ms,
		.refuse_throttle = (uint32_t)c->refuse_throttle,
		.refuse_cooldown_ms = c->refuse_cooldown_ms,
		.partial_budget = (size_t)c->partial_budget_bytes,
	};
}

static void arm_flush(struct rn_server *s)
{
	rn_ev_add_ms(s->flush_ev, s->conf.flush_interval_ms); /* a pending timer is rescheduled */
	s->next_flush_us = rn_mono_us() + s->conf.flush_interval_ms * 1000;
}

/*
 * TLS on reload: the certificate, key and client CA files are read again (the operator
 * replaced them) into new contexts; connections already open keep theirs. A context that
 * does not build leaves the old one in force, and says why. Turning TLS on or off takes a
 * restart.
 */
/* The HTTP port's body cap: http_max_body_bytes, and never more than a REST insert may
 * carry (max_message_bytes), so both ports refuse the same bodies. */
static size_t http_body_cap(const struct rn_server_conf *c)
{
	return (size_t)(c->http_max_body_bytes < c->max_message_bytes ? c->http_max_body_bytes
								      : c->max_message_bytes);
}

static void reload_tls(struct rn_server *s)
{
	struct rn_tls *ts[2] = {s->tls, s->metrics_tls};
	const char *names[2] = {"listen", "metrics_listen"};
	char why[512];
	if (!s->tls) {
		if (s->conf.tls_cert)
			rn_log_warn("server",
				    "reload: tls_cert is set; TLS is turned on at restart");
		return;
	}
	if (!s->conf.tls_cert) {
		rn_log_warn("server",
			    "reload: tls_cert is unset; TLS is turned off at restart only, "
			    "the certificate in use stays");
		return;
	}
	for (int i = 0; i < 2; i++) {
		if (!ts[i])
			continue;
		if (rn_tls_reload(ts[i], why, sizeof(why)))
			rn_log_error("server",
				     "reload: TLS of %s: %s; the certificate in use stays",
				     names[i], why);
		else
			rn_log_info("server",
				    "reload: TLS of %s: certificate reloaded (new "
				    "connections use it)",
				    names[i]);
	}
}

/* Loads the config again and applies it (see above). 0, or the error that refused it. */
static int reload(struct rn_server *s)
{
	struct rn_server_conf nc = {0};
	char err[1024];
	uint8_t key[sizeof(s->key)];
	size_t changed = 0, klen = 0;
	int rc;

	if ((rc = s->load(s->load_ctx, &nc, err, sizeof(err)))) {
		rn_log_error("server", "reload refused, the running config stays: %s", err);
		goto out;
	}
	if (!rn_conf_key_equal(conf_row("log_file"), &s->conf, &nc) &&
	    (rc = rn_log_set_file(nc.log_file))) {
		rn_log_error("server", "reload refused, the running config stays: log_file %s: %s",
			     nc.log_file, strerror(errno));
		goto out;
	}
	for (const struct rn_conf_key *k = rn_server_conf_table; k->key; k++) {
		if (rn_conf_key_equal(k, &s->conf, &nc))
			continue;
		if (k->flags & RN_CONF_F_RESTART) {
			rn_log_warn("server",
				    "reload: %s changes at restart; it keeps its value now",
				    k->key);
			rn_conf_key_swap(k, &s->conf, &nc);
			continue;
		}
		changed++;
		if (k->type != RN_CONF_LIST) /* schemas: declare_tables says what it does */
			rn_log_info("server", "reload: %s changed", k->key);
	}
	struct rn_principals *np = NULL;
	if ((rc = build_principals(&nc, "reload", &np, err, sizeof(err)))) {
		rn_log_error("server", "reload refused, the running config stays: %s",
			     rc == RN_ENOMEM ? "out of memory" : err);
		goto out;
	}
	/* the new config's token key, read (made if missing) before anything changes: one that
	 * cannot be read refuses the reload, and the running key stays with the running config */
	if ((rc = rn_server_token_key(&nc, key, sizeof(key), &klen, 1, err, sizeof(err)))) {
		rn_principals_destroy(np);
		rn_log_error("server", "reload refused, the running config and token key stay: %s",
			     err);
		goto out;
	}
	if ((rc = declare_tables(s, &s->conf, &nc))) {
		rn_principals_destroy(np);
		rn_log_error("server", "reload refused, the running config stays: out of memory");
		goto out;
	}
	for (size_t i = 0; i < nc.tables.n; i++) {
		int known = 0;
		for (size_t k = 0; k < s->conf.tables.n && !known; k++)
			known = !strcmp(s->conf.tables.v[k], nc.tables.v[i]);
		if (!known && !ensure_configured(s, nc.tables.v[i]))
			rn_log_info("server", "reload: table %s created", nc.tables.v[i]);
	}
	/* in force: the new config (with the old restart-only values swapped in) */
	int new_interval = s->conf.flush_interval_ms != nc.flush_interval_ms;
	rn_conf_free(rn_server_conf_table, &s->conf);
	s->conf = nc;
	memset(&nc, 0, sizeof(nc));
	rn_log_set_level((enum rn_log_level)s->conf.log_level);
	rn_principals_destroy(s->principals);
	s->principals = np;
	rn_seccache_clear(s->seccache); /* secrets verified against the old principals */
	memcpy(s->key, key, klen);
	s->klen = klen;
	reauthorize(s);
	apply_limits(s);
	if (new_interval) /* else the next flush stays when it was due */
		arm_flush(s);
	{
		struct rn_fleet_conf fc = {s->conf.fleet_silent_after_ms,
					   s->conf.fleet_behind_after_ms};
		rn_fleet_set_conf(s->fleet, &fc);
		event_del(s->fleet_ev);
		if (s->conf.fleet_table_interval_ms &&
		    rn_ev_add_ms(s->fleet_ev, s->conf.fleet_table_interval_ms))
			rn_log_error("server", "reload: the fleet table timer could not be set");
	}
	struct rn_front_options fo;
	front_options(&s->conf, &fo);
	if (rn_front_set_limits(s->front, &fo))
		rn_log_error("server", "reload: the front's timer could not be rescheduled");
	if (s->metrics)
		rn_metrics_set_limits(s->metrics, (size_t)s->conf.http_max_header_bytes,
				      http_body_cap(&s->conf),
				      (int)(s->conf.http_timeout_ms / 1000));
	reload_tls(s);
	check_pressure(s, NULL);
	s->stats.config_loaded_s = (int64_t)time(NULL);
	rn_log_info("server", "config reloaded: %zu setting(s) changed (checksum %s)", changed,
		    s->conf.checksum[0] ? s->conf.checksum : "none");
out:
	rn_conf_free(rn_server_conf_table, &nc);
	if (rc)
		s->stats.reloads_err++;
	else
		s->stats.reloads_ok++;
	return rc;
}

/* SIGHUP: reopen the log file (logrotate renamed it), then reload the config; systemd is
 * told RELOADING=1 first and READY=1 once the outcome is in force, accepted or refused. */
static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
	struct rn_server *s = arg;
	(void)sig;
	(void)what;
	if (s->stopping)
		return;
	/* while draining systemd has had STOPPING=1: no READY=1 again, the reload still applies */
	if (!s->draining)
		rn_sd_notify_reloading();
	if (rn_log_reopen())
		rn_log_error("server", "cannot reopen the log file: %s", strerror(errno));
	else
		rn_log_info("server", "SIGHUP: log reopened, reloading the config");
	if (s->load)
		reload(s);
	if (!s->draining)
		rn_sd_notify("READY=1");
}

int rn_server_token_key(const struct rn_server_conf *c, uint8_t *key, size_t cap, size_t *len,
			int create, char *err, size_t ecap)
{
	char path[4200];
	uint8_t fresh[32];
	struct stat sb;
	ssize_t n;
	int fd;
	*len = 0;
	if (c->token_key_file)
		snprintf(path, sizeof(path), "%s", c->token_key_file);
	else
		snprintf(path, sizeof(path), "%s/_token_key", c->data_root);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 && errno == ENOENT && create) {
		/* a new key: 32 random bytes, readable by the server only */
		if (rn_crypto_random(fresh, sizeof(fresh))) {
			snprintf(err, ecap, "token key %s: no random bytes", path);
			return RN_EIO;
		}
		if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
		    rn_write_all(fd, fresh, sizeof(fresh)) || rn_fs_fsync(fd)) {
			snprintf(err, ecap, "token key %s: cannot create it: %s", path,
				 strerror(errno));
			if (fd >= 0) {
				close(fd);
				unlink(path);
			}
			return RN_EIO;
		}
		close(fd);
		rn_log_info("server", "token key %s created", path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		snprintf(err, ecap, "token key %s: %s", path, strerror(errno));
		return RN_EIO;
	}
	if (!fstat(fd, &sb) && (sb.st_mode & 077))
		rn_log_warn("server", "token key %s is readable by others (mode %o): chmod 600 it",
			    path, (unsigned)(sb.st_mode & 0777));
	n = read(fd, key, cap);
	close(fd);
	if (n < RN_OAUTH_KEY_MIN || (size_t)n == cap) {
		snprintf(err, ecap, "token key %s: %s", path,
			 n < 0               ? strerror(errno)
			 : n == (ssize_t)cap ? "longer than 4095 bytes"
					     : "shorter than 32 bytes");
		return RN_EINVAL;
	}
	*len = (size_t)n;
	return 0;
}

/*
 * Every second: calls opened with a signed token are sent close_stream_signal
 * token_close_before ahead of its expiry (the client reconnects with a fresh token) and
 * ended UNAUTHENTICATED once it has expired; persistent streams unused for stream_expiry
 * are retired.
 */
static void expire_streams(struct rn_server *s);
static void auth_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_server *s = arg;
	int64_t now = (int64_t)time(NULL), lead = s->conf.token_close_before_ms / 1000;
	(void)fd;
	(void)what;
	for (struct srv_stream *st = s->streams; st; st = st->next) {
		struct call_state *cs = st->call ? rn_call_ctx(st->call) : NULL;
		if (!cs || !cs->expires)
			continue;
		if (now > cs->expires + s->conf.token_clock_skew_ms / 1000) {
			s->stats.calls_token_expired++;
			rn_call_finish(st->call, RN_GRPC_UNAUTHENTICATED, "the token has expired");
		} else if (!cs->close_sent && now >= cs->expires - lead) {
			cs->close_sent = 1;
			rn_buf_reset(&s->resp);
			rn_zb_encode_close_signal(&s->resp, cs->persistent,
						  cs->expires > now ? cs->expires - now : 0);
			send_msg(st->call, &s->resp);
			rn_log_info("server",
				    "stream %s: token of principal %s expires in %lld s: "
				    "close_stream_signal sent",
				    st->id, cs->principal, (long long)(cs->expires - now));
		}
	}
	expire_streams(s);
	retire_pending(s);
	rn_front_flush(s->front);
}

/*
 * After a reload: every open call of a configured principal is decided again with the
 * credentials it opened with and its table; a call whose principal was removed, whose
 * credentials no longer name the same principal, or that may no longer write its table is
 * ended at once (UNAUTHENTICATED or PERMISSION_DENIED), not at its next message.
 */
static void reauthorize(struct rn_server *s)
{
	for (struct srv_stream *st = s->streams; st; st = st->next) {
		struct call_state *cs = st->call ? rn_call_ctx(st->call) : NULL;
		int deny;
		if (!cs)
			continue;
		/* the top-level `token` keeps its documented rotation: calls open go on
		 * while any top-level token is configured (docs/operations.md "Server
		 * reload") */
		if (!strcmp(cs->principal, "token") && rn_principals_find(s->principals, "token"))
			continue;
		deny = authorize(s, cs->auth, cs->peer, st->table);
		if (!deny && strcmp(s->authz.principal->name, cs->principal)) {
			deny = RN_GRPC_UNAUTHENTICATED;
			snprintf(s->authz.msg, sizeof(s->authz.msg),
				 "the credentials changed principal");
		}
		if (!deny)
			continue;
		s->stats.calls_revoked++;
		rn_log_warn("server", "reload: stream %s of principal %s ended: %s", st->id,
			    cs->principal, s->authz.msg);
		rn_call_finish(st->call, deny, s->authz.msg);
	}
}

void rn_server_set_reload(struct rn_server *s, rn_server_load_fn load, void *ctx)
{
	s->load = load;
	s->load_ctx = ctx;
}

int rn_server_create(struct rn_server **out, struct rn_server_conf *given)
{
	struct rn_server *s;
	char path[4096], spool[4096];
	struct rn_hostport lis[RN_ADDR_LIST_MAX], mlis[RN_ADDR_LIST_MAX];
	size_t nlis = 0, nmlis = 0;
	int rc;
	uint64_t seg;
	const struct rn_server_conf *conf;

	*out = NULL;
	if (!(s = rn_calloc(1, sizeof(*s)))) {
		rn_conf_free(rn_server_conf_table, given);
		return RN_ENOMEM;
	}
	s->conf = *given; /* the server's from here on, freed by rn_server_destroy */
	memset(given, 0, sizeof(*given));
	rn_list_init(&s->dirty);
	rn_list_init(&s->syncing);
	rn_list_init(&s->ended);
	rn_list_init(&s->rest_streams);
	rn_list_init(&s->reg_ops);
	conf = &s->conf;
	s->stats.started_us = rn_mono_us();
	s->stats.config_loaded_s = (int64_t)time(NULL);
	rn_refuselog_init(&s->rest_refusals, REST_LOG_PERIOD_US, rn_mono_us());
	rn_lograte_init(&s->share_log, SHARE_LOG_PERIOD_US, rn_mono_us());
	rn_lograte_init(&s->pshare_log, SHARE_LOG_PERIOD_US, rn_mono_us());
	rn_lograte_init(&s->health_log, REST_LOG_PERIOD_US, rn_mono_us());
	{
		struct rn_fleet_conf fc = {conf->fleet_silent_after_ms,
					   conf->fleet_behind_after_ms};
		rn_fleet_health_init(&s->fh);
		if (rn_fleet_create(&s->fleet, &fc) || rn_server__api_init(s)) {
			rn_server_destroy(s);
			return RN_ENOMEM;
		}
	}
	if (split_listen("listen", conf->listen, lis, &nlis) ||
	    (conf->metrics_listen &&
	     split_listen("metrics_listen", conf->metrics_listen, mlis, &nmlis))) {
		rc = RN_EINVAL;
		goto fail;
	}
	if (mkdir(conf->data_root, 0750) && errno != EEXIST) {
		rn_log_error("server", "data_root %s: %s", conf->data_root, strerror(errno));
		rc = RN_EIO;
		goto fail;
	}
	{
		char perr[700];
		if ((rc = build_principals(conf, "config", &s->principals, perr, sizeof(perr)))) {
			rn_log_error("server", "%s", rc == RN_ENOMEM ? "out of memory" : perr);
			goto fail;
		}
		/* the token signing key (made if missing): a server that cannot read its key does
		 * not start, rather than run refusing every signed token */
		if ((rc = rn_server_token_key(conf, s->key, sizeof(s->key), &s->klen, 1, perr,
					      sizeof(perr)))) {
			rn_log_error("server", "%s (token_key_file): cannot start", perr);
			goto fail;
		}
		rn_log_info("server", "%zu principal(s)%s", rn_principals_count(s->principals),
			    rn_principals_required(s->principals)
				    ? ""
				    : ": none configured, no authentication");
	}
	snprintf(path, sizeof(path), "%s/_streams", conf->data_root);
	mkdir(path, 0750);
	if ((rc = rn_registry_create(&s->reg, path)))
		goto fail;
	int alone = 0; /* only a server alone on the data root sweeps (sweep_stream_files) */
	if (rn_registry_join(s->reg, &alone))
		rn_log_warn("server", "stream registry %s: cannot lock .live: %s", path,
			    strerror(errno));
	else if (!alone)
		rn_log_info("server", "another server shares the stream registry %s", path);
	struct rn_delta_maint dm = {.checkpoint_interval = conf->checkpoint_interval,
				    .log_retention_ms = conf->log_retention_ms,
				    .compact_target = conf->compact_target,
				    .compact_min_files = conf->compact_min_files,
				    .compact_interval_ms = conf->compact_interval_ms,
				    .compact_group_bytes = conf->compact_group_bytes,
				    .vacuum_retention_ms = conf->vacuum_retention_ms,
				    .vacuum_interval_ms = conf->vacuum_interval_ms};
	{ /* before the materializer: the flushes of the recovery below may submit jobs */
		struct rn_pool_options po = {(unsigned)conf->maintenance_threads,
					     (size_t)conf->maintenance_queue, "maintenance"};
		if ((rc = rn_pool_create(&s->maint_pool, &po)))
			goto fail;
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		struct rn_pool_options fo = {conf->workers > 1 ? (unsigned)conf->workers
					     : conf->flush_threads
						     ? (unsigned)conf->flush_threads
						     : (unsigned)(cores < 1   ? 1
								  : cores > 4 ? 4
									      : cores),
					     100000, "flush"};
		if ((rc = rn_pool_create(&s->flush_pool, &fo)))
			goto fail;
		/* one thread: one WAL group in flight at a time (acks in order) */
		struct rn_pool_options wo = {1, 2, "wal-sync"};
		if ((rc = rn_pool_create(&s->wal_pool, &wo)))
			goto fail;
	}
	struct rn_tstore_config tsc;
	{ /* the tables' store: a local root is made here; an s3:// one needs a spool */
		const char *troot = rn_server_table_root(conf);
		rn_server_tstore_config(conf, &tsc, spool, sizeof(spool));
		if (!strncmp(troot, "s3://", 5)) {
			if (!tsc.spool_dir || (mkdir(tsc.spool_dir, 0750) && errno != EEXIST)) {
				rn_log_error("server", "s3_spool_dir %s: %s",
					     tsc.spool_dir ? tsc.spool_dir : "(too long)",
					     strerror(errno));
				rc = RN_EIO;
				goto fail;
			}
			rn_log_info("server", "tables on %s (endpoint %s, region %s)", troot,
				    conf->s3_endpoint,
				    conf->s3_region ? conf->s3_region : "us-east-1");
			/* persistent streams are registered on the store too, so that any server
			 * sharing the bucket resumes them */
			char rroot[4200], why[256];
			struct rn_pool_options ro = {1, 4, "registry"};
			snprintf(rroot, sizeof(rroot), "%s/%s", troot, RN_REGISTRY_STORE_ROOT);
			if ((rc = rn_tstore_open(&s->reg_store, rroot, &tsc, why, sizeof(why)))) {
				rn_log_error("server", "stream registry on %s: %s", rroot, why);
				goto fail;
			}
			if ((rc = rn_pool_create(&s->reg_pool, &ro)))
				goto fail;
		} else if (conf->table_root && mkdir(troot, 0750) && errno != EEXIST) {
			rn_log_error("server", "table_root %s: %s", troot, strerror(errno));
			rc = RN_EIO;
			goto fail;
		}
	}
	struct rn_mat_options mo = {.data_root = conf->data_root,
				    .table_root = conf->table_root,
				    .store = &tsc,
				    .refill = refill_table,
				    .refill_ctx = s,
				    .zstd_level = (int)conf->parquet_zstd_level,
				    .maint_submit = maint_submit,
				    .maint_ctx = s->maint_pool,
				    /* workers = 1: flushes and pages inline */
				    .flush_submit = conf->workers == 1 ? NULL : flush_submit,
				    .flush_ctx = s->flush_pool,
				    .page_submit = conf->workers == 1 ? NULL : maint_submit,
				    .page_ctx = s->flush_pool,
				    .maint = &dm};
	if ((rc = rn_mat_create(&s->mat, &mo)))
		goto fail;
	for (size_t i = 0; i < conf->schemas.n; i++) {
		const char *name =
			((const struct rn_table_schema_conf *)conf->schemas.items)[i].table;
		struct rn_schema *sc;
		struct rn_part_spec spec;
		char why[600];
		if ((rc = build_schema(conf, i, &sc, &spec, why, sizeof(why)))) {
			rn_log_error("server", "%s", why);
			goto fail;
		}
		rc = rn_mat_define_table_ex(s->mat, name, sc, &spec);
		rn_free((void *)spec.derived);
		if (rc) {
			rn_log_error("server", "table %s: %s", name, rn_mat_errmsg(s->mat));
			rn_schema_free(sc);
			rn_free(sc);
			goto fail;
		}
		if ((rc = ensure_configured(s, name)))
			goto fail;
	}
	for (size_t i = 0; i < conf->tables.n; i++) {
		if ((rc = ensure_configured(s, conf->tables.v[i])))
			goto fail;
	}
	/* the fleet system tables: defined always (a replay may meet their rows), made when
	 * they are written */
	if ((rc = rn_server__fleet_define(s)))
		goto fail;
	for (int i = 0; conf->fleet_table_interval_ms && rn_server__fleet_table(i); i++)
		if ((rc = ensure_configured(s, rn_server__fleet_table(i))))
			goto fail;
	if ((rc = load_registry(s)))
		goto fail;
	if (conf->wal_dir)
		snprintf(path, sizeof(path), "%s", conf->wal_dir);
	else
		snprintf(path, sizeof(path), "%s/_wal", conf->data_root);
	snprintf(s->wal_path, sizeof(s->wal_path), "%s", path);
	s->wal_free = -1;
	if ((rc = rn_wal_open(&s->wal, path)) == RN_EEXIST) {
		rn_log_error("server",
			     "WAL directory %s is in use by another runnel-server; servers "
			     "sharing a data_root need a wal_dir each",
			     path);
		goto fail;
	}
	if (rc || (rc = rn_wal_replay(s->wal, rn_server__replay_entry, s))) {
		rn_log_error("server", "WAL recovery failed: %s",
			     s->wal ? rn_wal_errmsg(s->wal) : path);
		goto fail;
	}
	s->wal_ready = 1;
	int flushed = 1;
	if (s->mat_dirty) {
		if (rn_mat_flush(s->mat)) {
			/* the rows stay pending in the materializer, the segments on disk:
			 * the periodic flush retries, and drops them once it succeeds */
			flushed = 0;
			s->stats.flush_errors++;
			s->stats.last_flush_err_us = rn_mono_us();
			snprintf(s->stats.last_error, sizeof(s->stats.last_error),
				 "flush after recovery: %s", rn_mat_errmsg(s->mat));
			rn_log_error("server",
				     "flush after recovery: %s (will retry; the WAL is "
				     "kept)",
				     rn_mat_errmsg(s->mat));
			s->oldest_pending_us = rn_mono_us();
		} else {
			s->mat_dirty = 0;
		}
	}
	rn_server__count_retained(s);
	for (struct srv_failing *f = s->failing; f; f = f->next)
		rn_log_error("server",
			     "table %s failed recovery: %zu WAL segment(s) kept for it "
			     "(%s); retried every %d s and on its next stream",
			     f->table, f->nsegs, f->why, RETRY_US / 1000000);
	if ((rc = rn_wal_rotate(s->wal, &seg))) {
		rn_log_error("server", "WAL: %s", rn_wal_errmsg(s->wal));
		goto fail;
	}
	if (flushed && (rc = rn_wal_drop_before(s->wal, seg, rn_server__segment_kept, s)))
		goto fail;
	/* every record of the last run is in its table now (or kept for a failing one,
	 * whose streams forget_ended keeps): the other ephemeral streams are over */
	if (flushed)
		forget_ended(s, INT64_MAX);
	if (flushed)
		sweep_stream_files(s);
	s->retry_at_us = rn_mono_us() + RETRY_US;

	s->base = event_base_new();
	s->sync_ev = event_new(s->base, -1, 0, sync_event, s);
	s->reg_ev = event_new(s->base, -1, 0, reg_cb, s);
	s->flush_ev = event_new(s->base, -1, EV_PERSIST, flush_cb, s);
	s->sig_term = evsignal_new(s->base, SIGTERM, stop_cb, s);
	s->sig_int = evsignal_new(s->base, SIGINT, stop_cb, s);
	s->sig_hup = evsignal_new(s->base, SIGHUP, hup_cb, s);
	s->auth_ev = event_new(s->base, -1, EV_PERSIST, auth_cb, s);
	s->drain_ev = event_new(s->base, -1, EV_PERSIST, drain_tick, s);
	s->hist_ev = event_new(s->base, -1, EV_PERSIST, hist_cb, s);
	s->fleet_ev = event_new(s->base, -1, EV_PERSIST, fleet_cb, s);
	s->hist_t_ms = rn_server__now_ms();
	if (!s->reg_ev || !s->auth_ev || !s->drain_ev || !s->hist_ev || !s->fleet_ev ||
	    rn_ev_add_ms(s->auth_ev, 1000) || rn_ev_add_ms(s->hist_ev, SRV_HIST_MS) ||
	    (conf->fleet_table_interval_ms &&
	     rn_ev_add_ms(s->fleet_ev, conf->fleet_table_interval_ms))) {
		rc = RN_ENOMEM;
		goto fail;
	}
	{
		struct rn_pool_options po = {(unsigned)conf->token_verify_threads,
					     (size_t)conf->token_verify_queue, "token-verify"};
		uint8_t ck[RN_SECCACHE_KEY_LEN];
		if ((rc = rn_pool_create(&s->pool, &po)) ||
		    (rc = rn_crypto_random(ck, sizeof(ck))) ||
		    (rc = rn_seccache_create(&s->seccache, (size_t)conf->token_cache_size, ck)))
			goto fail;
		explicit_bzero(ck, sizeof(ck));
		if (!(s->pool_ev = event_new(s->base, rn_pool_fd(s->pool), EV_READ | EV_PERSIST,
					     pool_cb, s)) ||
		    event_add(s->pool_ev, NULL)) {
			rc = RN_ENOMEM;
			goto fail;
		}
	}
	if (!(s->maint_ev = event_new(s->base, rn_pool_fd(s->maint_pool), EV_READ | EV_PERSIST,
				      maint_cb, s)) ||
	    event_add(s->maint_ev, NULL) ||
	    !(s->flush_pool_ev = event_new(s->base, rn_pool_fd(s->flush_pool), EV_READ | EV_PERSIST,
					   flush_pool_cb, s)) ||
	    event_add(s->flush_pool_ev, NULL) ||
	    !(s->lag_ev = event_new(s->base, -1, EV_PERSIST, lag_cb, s)) ||
	    !(s->wal_pool_ev = event_new(s->base, rn_pool_fd(s->wal_pool), EV_READ | EV_PERSIST,
					 wal_pool_cb, s)) ||
	    event_add(s->wal_pool_ev, NULL) || rn_ev_add_ms(s->lag_ev, LAG_MS) ||
	    (s->reg_pool && (!(s->reg_pool_ev = event_new(s->base, rn_pool_fd(s->reg_pool),
							  EV_READ | EV_PERSIST, reg_pool_cb, s)) ||
			     event_add(s->reg_pool_ev, NULL)))) {
		rc = RN_ENOMEM;
		goto fail;
	}
	if (s->reg_store) {
		size_t n = rn_registry_each_marked(s->reg, redo_store_delete, s);
		if (n)
			rn_log_info("server",
				    "deleting the registry entries of %zu retired streams from the "
				    "table store again",
				    n);
	}
	arm_flush(s);
	apply_limits(s);
	event_add(s->sig_term, NULL);
	event_add(s->sig_int, NULL);
	event_add(s->sig_hup, NULL);
	if (conf->tls_cert) {
		struct rn_tls_options to;
		char why[512];
		tls_options(conf, "h2", "listen", &to);
		if ((rc = rn_tls_create(&s->tls, &to, why, sizeof(why)))) {
			rn_log_error("server", "TLS of listen: %s", why);
			goto fail;
		}
		tls_options(conf, "http/1.1", "metrics_listen", &to);
		if (conf->metrics_listen && conf->metrics_tls &&
		    (rc = rn_tls_create(&s->metrics_tls, &to, why, sizeof(why)))) {
			rn_log_error("server", "TLS of metrics_listen: %s", why);
			goto fail;
		}
	}
	struct rn_front_options fo;
	front_options(conf, &fo);
	fo.addrs = lis;
	fo.naddrs = nlis;
	fo.tls = s->tls;
	struct rn_front_handler h = {.ctx = s,
				     .open = on_open,
				     .message = on_message,
				     .half_close = on_half_close,
				     .closed = on_closed,
				     .request = rn_server__rest_request,
				     .request_gone = rn_server__rest_gone,
				     .refused = on_refused};
	if ((rc = rn_front_create(&s->front, s->base, &fo, &h)))
		goto fail;
	int ports[RN_ADDR_LIST_MAX];
	char where[RN_ADDR_LIST_MAX * 60];
	if (conf->metrics_listen) {
		struct rn_metrics_handler mh = {.ctx = s,
						.render = render_metrics,
						.health = health,
						.request = rn_server__rest_request,
						.gone = rn_server__rest_gone};
		if (rn_metrics_create(&s->metrics, s->base, mlis, nmlis, &mh)) {
			rn_log_error("server", "cannot serve metrics on %s", conf->metrics_listen);
			rc = RN_EIO;
			goto fail;
		}
		rn_metrics_set_limits(s->metrics, (size_t)conf->http_max_header_bytes,
				      http_body_cap(conf), (int)(conf->http_timeout_ms / 1000));
		rn_metrics_set_max_conns(s->metrics, (unsigned)conf->http_max_connections);
		if (s->metrics_tls)
			rn_metrics_set_tls(s->metrics, s->metrics_tls);
		format_listen(where, sizeof(where), mlis, ports,
			      rn_metrics_ports(s->metrics, ports, RN_ADDR_LIST_MAX));
		rn_log_info("server", "metrics on %s (/metrics, /healthz, REST)%s", where,
			    s->metrics_tls ? " over https" : "");
	}
	/* last: the line says the server serves (the metrics port, if any, is up already) */
	format_listen(where, sizeof(where), lis, ports,
		      rn_front_ports(s->front, ports, RN_ADDR_LIST_MAX));
	rn_log_info("server", "runnel-server %s listening on %s data_root=%s%s", RN_VERSION, where,
		    conf->data_root,
		    s->tls ? (conf->tls_client_auth == RN_TLS_CLIENT_REQUIRE ? " tls=mtls"
			      : conf->tls_client_auth == RN_TLS_CLIENT_OPTIONAL
				      ? " tls=mtls-optional"
				      : " tls=on")
			   : " tls=off");
	*out = s;
	return 0;
fail:
	rn_server_destroy(s);
	return rc ? rc : RN_EIO;
}

static size_t rest_waiting(const struct rn_server *s)
{
	size_t n = 0;
	for (const struct rest_pending *p = s->rest_pending; p; p = p->next)
		n++;
	return n;
}

/* The numbers the overview (api_handlers.c) shows and /metrics renders, read once here so
 * both show the same counters. */
void rn_server__numbers(struct rn_server *s, struct srv_numbers *o)
{
	static const char *const names[] = {[RN_PRESSURE_NONE] = "none",
					    [RN_PRESSURE_WAL] = "wal_max_bytes",
					    [RN_PRESSURE_LAG] = "max_lag",
					    [RN_PRESSURE_DISK] = "wal_min_free",
					    [RN_PRESSURE_MEMORY] = "memory_max_bytes"};
	struct rn_front_stats fs;
	struct rn_limits_now n = limits_now(s);
	struct rn_mat_stats ms;
	memset(o, 0, sizeof(*o));
	rn_front_stats(s->front, &fs);
	rn_mat_stats(s->mat, &ms);
	for (struct srv_stream *st = s->streams; st; st = st->next) {
		o->streams_known++;
		o->streams_open += st->call != NULL;
	}
	o->uptime_s = (rn_mono_us() - s->stats.started_us) / 1e6;
	o->records = s->stats.records;
	o->bytes = s->stats.bytes;
	o->batches = s->stats.batches;
	o->calls_refused = s->stats.calls_rejected + s->stats.calls_denied;
	o->flush_errors = s->stats.flush_errors;
	o->dead_letters = ms.dead_records;
	o->connections = fs.conns_open;
	o->wal_bytes = n.wal_bytes;
	o->mat_lag_s = (double)rn_limits_lag_ms(&n) / 1e3;
	o->pressure = (unsigned)s->pressure < sizeof(names) / sizeof(names[0]) && names[s->pressure]
			      ? names[s->pressure]
			      : "none";
}

int rn_server__health(struct rn_server *s, char *why, size_t cap)
{
	return health(s, why, cap);
}

static void render_metrics(void *ctx, struct rn_buf *b)
{
	struct rn_server *s = ctx;
	struct srv_numbers num;
	rn_server__numbers(s, &num);
	size_t open = num.streams_open, known = num.streams_known;
	struct rn_front_stats fs;
	struct rn_limits_now n = limits_now(s);
	rn_front_stats(s->front, &fs);
#define P "runnel_server_"
#define F(name, type, help, v)                                                                     \
	do {                                                                                       \
		rn_metrics_family(b, P name, type, help);                                          \
		rn_metrics_sample(b, P name, NULL, (double)(v));                                   \
	} while (0)
	F("uptime_seconds", "gauge", "Seconds since start.", num.uptime_s);
	F("streams_open", "gauge", "Streams with a call attached.", open);
	F("streams_known", "gauge", "Streams known (persistent ones survive restarts).", known);
	F("calls_total", "counter", "gRPC calls opened.", s->stats.calls);
	F("calls_rejected_total", "counter", "Calls refused for authentication.",
	  s->stats.calls_rejected);
	/* identity (docs/security.md) */
	F("calls_denied_total", "counter",
	  "Calls and requests refused PERMISSION_DENIED (table not allowed, reserved "
	  "table, "
	  "another principal's stream).",
	  s->stats.calls_denied);
	{
		struct rn_refusals_totals rt = {0};
		if (s->refusals)
			rn_refusals_totals(s->refusals, rn_server__now_ms(), &rt);
		F("refusals_total", "counter",
		  "Calls and requests refused for the client's fault, by any rule (the sum of "
		  "/api/v1/refusals with its evicted and unattributed ones).",
		  s->stats.refusals);
		F("refusal_sources", "gauge",
		  "Refused (address, principal) pairs kept for /api/v1/refusals.", rt.sources);
		F("refusal_sources_evicted_total", "counter",
		  "Refusal sources evicted (least recently refused) to keep the bound.",
		  rt.evicted);
	}
	F("rest_throttled_total", "counter",
	  "REST and token requests answered 429 at once: their address is throttled "
	  "(refuse_throttle).",
	  s->stats.rest_throttled);
	F("calls_revoked_total", "counter",
	  "Open calls ended by a reload that removed or narrowed their principal.",
	  s->stats.calls_revoked);
	F("calls_token_expired_total", "counter", "Open calls ended as their signed token expired.",
	  s->stats.calls_token_expired);
	F("draining", "gauge",
	  "1 from a drain's start (SIGTERM, POST /admin/drain) until the server exits.",
	  (uint64_t)(s->draining || s->stopping));
	F("drain_phase", "gauge",
	  "0 serving, 1 draining (waiting for clients to close), 2 stopping (WAL sync, flush "
	  "into the tables).",
	  (uint64_t)(s->stopping   ? 2
		     : s->draining ? 1
				   : 0));
	F("drain_signals_total", "counter", "close_stream_signal messages sent by a drain.",
	  s->stats.drain_signals);
	F("drain_timed_out_calls_total", "counter",
	  "Calls still open when drain_timeout passed (ended UNAVAILABLE).",
	  s->stats.drain_timed_out);
	F("tokens_issued_total", "counter", "Signed tokens issued by POST /oidc/v1/token.",
	  s->stats.tokens_issued);
	F("token_requests_refused_total", "counter", "Token requests refused (4xx/5xx).",
	  s->stats.token_refusals);
	F("token_secret_verifications_total", "counter",
	  "Client secret checks (PBKDF2) run on the token_verify_threads workers.",
	  s->stats.token_verifications);
	F("token_secret_cache_hits_total", "counter",
	  "Token requests whose secret the cache knew verified (no PBKDF2 check).",
	  s->stats.token_cache_hits);
	F("token_verify_queue_full_total", "counter",
	  "Token requests answered 503 at once: token_verify_queue checks were pending.",
	  s->stats.token_queue_full);
	F("token_verify_queue_depth", "gauge",
	  "Token requests whose secret check is queued or running now.",
	  s->pool ? rn_pool_depth(s->pool) : 0);
	F("token_secret_cache_entries", "gauge", "Client ids in the verified-secret cache.",
	  s->seccache ? rn_seccache_count(s->seccache) : 0);
	F("persistent_streams_expired_total", "counter",
	  "Persistent streams retired after stream_expiry without a call.",
	  s->stats.streams_expired);
	F("persistent_streams_retired_total", "counter",
	  "Persistent streams retired by RetireStream.", s->stats.streams_retired);
	/* labels are configured principal names only (bounded by the config, never client
	 * input); streams of principals no longer configured are not shown per principal */
	rn_metrics_family(b, P "principal_streams", "gauge",
			  "Streams per configured principal: open (a call attached) and persistent "
			  "(registered).");
	for (size_t i = 0; i < rn_principals_count(s->principals); i++) {
		const struct rn_principal *pr = rn_principals_at(s->principals, i);
		const struct srv_owner *o = rn_strmap_get(&s->owners, pr->name,
							  strnlen(pr->name, RN_PRINCIPAL_NAME_MAX));
		size_t po = o ? o->open : 0, pp = o ? o->persistent : 0;
		char lab[200];
		snprintf(lab, sizeof(lab), "principal=\"%s\",state=\"open\"", pr->name);
		rn_metrics_sample(b, P "principal_streams", lab, (double)po);
		snprintf(lab, sizeof(lab), "principal=\"%s\",state=\"persistent\"", pr->name);
		rn_metrics_sample(b, P "principal_streams", lab, (double)pp);
	}
	F("batches_total", "counter", "Record batches accepted into the WAL.", num.batches);
	F("records_total", "counter", "Records accepted into the WAL.", num.records);
	F("record_bytes_total", "counter", "Bytes of record batches accepted.", num.bytes);
	F("acks_total", "counter", "Durability acknowledgements sent.", s->stats.acks);
	F("committed_acks_sent_total", "counter",
	  "Acks that told a call (runnel-committed-acks) a newer table-committed offset.",
	  s->stats.committed_acks);
	F("wal_syncs_total", "counter", "WAL group commits (fsync).", s->stats.wal_syncs);
	F("wal_written_bytes_total", "counter",
	  "Bytes the WAL's group commits made durable (compressed batches stored as they came).",
	  rn_wal_written(s->wal));
	F("registry_commits_total", "counter",
	  "Stream registry group commits (one directory fsync for the creates that came together).",
	  s->stats.reg_commits);
	F("streams_taken_over_total", "counter",
	  "Persistent streams another server registered (sharing the data root), taken over by a "
	  "resume here.",
	  s->stats.streams_taken_over);
	F("registry_store_reads_total", "counter",
	  "Persistent streams another server registered on the table store (tables on S3), read "
	  "from it by a resume here.",
	  s->stats.reg_store_reads);
	F("registry_store_errors_total", "counter",
	  "Stream registry writes, reads and deletes on the table store that failed (creates and "
	  "resumes answered UNAVAILABLE).",
	  s->stats.reg_store_errors);
	F("registry_entries_total", "counter",
	  "Persistent stream registry entries made durable by those group commits.",
	  s->stats.reg_entries);
	F("creates_pass_max", "gauge",
	  "The most creates handled in one loop pass (a pass ends after "
	  "RN_STREAM_CREATES_PER_PASS; its group is then made durable and answered).",
	  s->stats.pass_creates_max);
	F("registry_entries_answered_ahead_total", "counter",
	  "Creates answered while input already read (other creates) waited for the next loop "
	  "pass: creates are answered as their group is durable, not after the last is read.",
	  s->stats.reg_answered_ahead);
	F("front_yields_total", "counter",
	  "Loop passes whose reading ended early so their answers went out first.", fs.yields);
	F("front_conns_deferred_total", "counter",
	  "Connections whose input already read waited for the next loop pass.", fs.conns_deferred);
	F("wal_sync_errors_total", "counter", "WAL group commits that failed.",
	  s->stats.wal_sync_errors);
	F("wal_sync_seconds_total", "counter",
	  "Time the WAL sync thread spent writing and fdatasyncing groups (off the loop).",
	  s->stats.wal_sync_us / 1e6);
	F("wal_sync_wait_seconds_total", "counter",
	  "Time the loop blocked waiting for a WAL group (flush rotation, refill, refusal, stop).",
	  s->stats.wal_wait_us / 1e6);
	/* work proportional to activity (server/README.md "Cost of idle streams") */
	F("commit_stream_visits_total", "counter",
	  "Streams visited by group commits: each stream that received data since the previous "
	  "commit, once; idle streams add nothing.",
	  s->stats.commit_visits);
	F("flush_conn_visits_total", "counter",
	  "Connections visited to send queued responses: each one with something queued, once "
	  "per flush; idle connections add nothing.",
	  fs.flush_visits);
	F("flushes_total", "counter", "Materializer flushes (Parquet + Delta commit).",
	  s->stats.flushes);
	F("flush_errors_total", "counter", "Flushes that failed (retried).", num.flush_errors);
	F("ephemeral_streams_forgotten_total", "counter",
	  "Ended ephemeral streams dropped once their records were in their tables.",
	  s->stats.streams_forgotten);
	F("pending_bytes", "gauge", "Durable bytes not yet in their tables.",
	  rn_mat_pending_bytes(s->mat));
	struct rn_mat_stats ms;
	rn_mat_stats(s->mat, &ms);
	F("dead_letter_records_total", "counter",
	  "Records of typed tables that did not fit, kept in <table>_dead_letters.",
	  num.dead_letters);
	F("undecodable_records_total", "counter",
	  "Records of envelope tables that did not decode, kept raw in payload_raw.",
	  ms.undecodable);
	F("bad_record_warnings_suppressed_total", "counter",
	  "Batches with bad records that got no log line of their own (counted in a summary).",
	  ms.warnings_suppressed);
	/* Delta maintenance off the loop (server/README.md "Threads") */
	F("maintenance_jobs_running", "gauge", "Delta maintenance jobs running on a worker now.",
	  ms.maint_running);
	F("maintenance_jobs_queued", "gauge",
	  "Delta maintenance jobs submitted and not yet running or not yet handed back.",
	  ms.maint_inflight > ms.maint_running ? ms.maint_inflight - ms.maint_running : 0);
	F("maintenance_jobs_total", "counter",
	  "Delta maintenance jobs (checkpoint, compaction, vacuum of one table) that ran.",
	  ms.maint_done);
	F("maintenance_jobs_failed_total", "counter",
	  "Maintenance jobs in which a task failed (logged, retried after its interval).",
	  ms.maint_failed);
	F("maintenance_jobs_refused_total", "counter",
	  "Maintenance found due but not queued: maintenance_queue was full (asked again later).",
	  ms.maint_refused);
	F("maintenance_jobs_cancelled_total", "counter", "Queued maintenance jobs dropped at exit.",
	  ms.maint_cancelled);
	rn_metrics_family(b, P "maintenance_seconds_total", "counter",
			  "Time spent running maintenance jobs.");
	rn_buf_printf(b, P "maintenance_seconds_total %.6f\n", (double)ms.maint_us / 1e6);
	rn_metrics_family(b, P "maintenance_job_max_seconds", "gauge",
			  "The longest maintenance job since start.");
	rn_buf_printf(b, P "maintenance_job_max_seconds %.6f\n", (double)ms.maint_max_us / 1e6);
	/* flush jobs off the loop */
	F("flush_jobs_total", "counter",
	  "Flush jobs (one table and its dead-letter table: encode, write, commit) done.",
	  ms.flush_jobs);
	F("flush_jobs_inflight", "gauge", "Flush jobs submitted and not yet handed back.",
	  ms.flush_inflight);
	rn_metrics_family(b, P "flush_job_seconds_total", "counter",
			  "Time spent running flush jobs (on workers).");
	rn_buf_printf(b, P "flush_job_seconds_total %.6f\n", (double)ms.flush_us / 1e6);
	rn_metrics_family(b, P "flush_job_max_seconds", "gauge",
			  "The longest flush job since start.");
	rn_buf_printf(b, P "flush_job_max_seconds %.6f\n", (double)ms.flush_max_us / 1e6);
	F("flush_overlaps_total", "counter",
	  "Flushes built again because another server sharing the table committed some of their "
	  "streams' offsets first (a stream resumed there); the rows are rebuilt without them.",
	  ms.overlaps);
	F("checkpoints_total", "counter", "Delta checkpoints written.", ms.checkpoints);
	F("compactions_total", "counter", "Compaction commits (small files rewritten into one).",
	  ms.compactions);
	F("compacted_files_total", "counter", "Data files removed by compaction commits.",
	  ms.compacted_files);
	F("vacuumed_files_total", "counter", "Removed data files deleted by vacuum.",
	  ms.vacuumed_files);
	rn_metrics_family(
		b, P "loop_lag_max_seconds", "gauge",
		"The most a 50 ms timer of the event loop ran late since the last scrape: "
		"the loop's longest stall, roughly.");
	rn_buf_printf(b, P "loop_lag_max_seconds %.6f\n", (double)s->lag_max_us / 1e6);
	s->lag_max_us = 0;
	F("mat_refills_total", "counter",
	  "Tables whose pending rows were dropped after a failure and read back from the "
	  "WAL.",
	  s->stats.refills);
	/* recovery (server/README.md "Recovery") */
	size_t nfailing = 0;
	for (const struct srv_failing *f = s->failing; f; f = f->next)
		nfailing++;
	F("tables_failing_recovery", "gauge",
	  "Tables whose WAL records could not be put into them yet (kept, retried).", nfailing);
	F("wal_retained_bytes", "gauge",
	  "Bytes of WAL segments kept for tables failing recovery (not counted by "
	  "wal_max_bytes).",
	  s->retained_bytes);
	F("recovery_retries_total", "counter", "Retries of tables failing recovery.",
	  s->stats.recovery_retries);
	rn_metrics_family(b, P "table_failing_recovery", "gauge",
			  "1 per table failing recovery, until its kept records are committed.");
	for (const struct srv_failing *f = s->failing; f; f = f->next) {
		char lab[400];
		snprintf(lab, sizeof(lab), "table=\"%s\"", f->table);
		rn_metrics_sample(b, P "table_failing_recovery", lab, 1);
	}
	/* one series set per table a stream wrote in this run (names checked by
	 * rn_table_name_check: label-safe; as many as the tables, which the config and
	 * auto_create's grants bound, never per stream or device) */
	rn_metrics_family(b, P "table_time_to_table_seconds", "summary",
			  "Per table, time from a batch's WAL append to the commit that made it "
			  "visible (the last 1024 batches; count and sum since start).");
	for (size_t i = 0; i < s->tabs.cap; i++) {
		const struct srv_tab *tab = s->tabs.slots[i].key ? s->tabs.slots[i].val : NULL;
		int64_t us;
		char lab[400];
		if (!tab || !tab->ttt || !tab->ttt->count)
			continue;
		for (int k = 0; k < 2; k++) {
			const double q = k ? 0.99 : 0.5;
			if (rn_ttt_quantile(tab->ttt, q, &us))
				continue;
			snprintf(lab, sizeof(lab), "table=\"%s\",quantile=\"%g\"", tab->name, q);
			rn_metrics_sample(b, P "table_time_to_table_seconds", lab,
					  (double)us / 1e6);
		}
		snprintf(lab, sizeof(lab), "table=\"%s\"", tab->name);
		rn_metrics_sample(b, P "table_time_to_table_seconds_sum", lab, tab->ttt->sum_s);
		rn_metrics_sample(b, P "table_time_to_table_seconds_count", lab,
				  (double)tab->ttt->count);
	}
	/* limits (server/README.md "Limits") */
	F("resource_exhausted_total", "counter",
	  "Calls answered with RESOURCE_EXHAUSTED (pressure, message size, queues).",
	  fs.resource_exhausted);
	rn_metrics_family(b, P "pressure_refusals_total", "counter",
			  "Batches with new offsets refused: global = wal_max_bytes, max_lag or "
			  "wal_min_free reached (every table); memory = memory_max_bytes reached "
			  "(every table); table_share = the table over its "
			  "share of the WAL or wal_table_max_bytes (that table only); "
			  "principal_share = the principal over its share of the WAL or "
			  "wal_principal_max_bytes (that principal only).");
	rn_metrics_sample(b, P "pressure_refusals_total", "reason=\"global\"",
			  (double)s->stats.pressure_refusals);
	rn_metrics_sample(b, P "pressure_refusals_total", "reason=\"memory\"",
			  (double)s->stats.memory_refusals);
	rn_metrics_sample(b, P "pressure_refusals_total", "reason=\"table_share\"",
			  (double)s->stats.share_refusals);
	rn_metrics_sample(b, P "pressure_refusals_total", "reason=\"principal_share\"",
			  (double)s->stats.pshare_refusals);
	F("pressure_episodes_total", "counter", "Times the server went under pressure.",
	  s->stats.pressure_episodes);
	rn_metrics_family(b, P "pressure", "gauge",
			  "1 while the limit is reached (new data refused, window withheld).");
	rn_metrics_sample(b, P "pressure", "limit=\"wal_max_bytes\"",
			  s->pressure == RN_PRESSURE_WAL);
	rn_metrics_sample(b, P "pressure", "limit=\"max_lag\"", s->pressure == RN_PRESSURE_LAG);
	rn_metrics_sample(b, P "pressure", "limit=\"wal_min_free\"",
			  s->pressure == RN_PRESSURE_DISK);
	rn_metrics_sample(b, P "pressure", "limit=\"memory_max_bytes\"",
			  s->pressure == RN_PRESSURE_MEMORY);
	/* the memory budget (limits.h rn_limits_memory_full, docs/operations.md) */
	rn_metrics_family(b, P "memory_bytes", "gauge",
			  "Heap held for data: builders = column builders of rows not yet "
			  "flushed, flush = builders in flush jobs in flight (these two count "
			  "toward memory_max_bytes), partial = request messages received in part "
			  "(partial_budget_bytes).");
	rn_metrics_sample(b, P "memory_bytes", "part=\"builders\"", (double)n.mem_builders);
	rn_metrics_sample(b, P "memory_bytes", "part=\"flush\"", (double)n.mem_flush);
	rn_metrics_sample(b, P "memory_bytes", "part=\"partial\"", (double)fs.partial_bytes);
	F("memory_max_bytes", "gauge", "The memory_max_bytes limit (0 = none).",
	  s->limits.memory_max_bytes);
	F("early_flushes_total", "counter",
	  "Flushes started before flush_interval_ms because the builders held half of "
	  "memory_max_bytes.",
	  s->stats.early_flushes);
	F("wal_bytes", "gauge", "Bytes in the WAL not yet committed to tables.", num.wal_bytes);
	F("wal_max_bytes", "gauge", "The wal_max_bytes limit (0 = none).", s->limits.wal_max_bytes);
	size_t wal_tables, wal_top;
	rn_mat_table_pending_bytes(s->mat, NULL, &wal_tables, &wal_top);
	F("wal_tables", "gauge", "Tables with bytes in the WAL not yet committed to them.",
	  wal_tables);
	F("wal_table_bytes_max", "gauge",
	  "The most bytes not yet committed any one table holds in the WAL (per-table gauges "
	  "would be unbounded with auto_create).",
	  wal_top);
	F("materializer_lag_seconds", "gauge",
	  "Age of the oldest durable record not yet in its table (0 = none pending).",
	  num.mat_lag_s);
	F("max_lag_seconds", "gauge", "The max_lag limit in effect (0 = none).",
	  (double)s->limits.max_lag_ms / 1e3);
	F("connections_open", "gauge", "HTTP/2 connections now.", num.connections);
	F("connections_accepted_total", "counter", "HTTP/2 connections accepted.",
	  fs.conns_accepted);
	rn_metrics_family(b, P "connections_closed_total", "counter",
			  "Connections closed by the server for a limit.");
	rn_metrics_sample(b, P "connections_closed_total", "reason=\"idle\"",
			  (double)fs.closed_idle);
	rn_metrics_sample(b, P "connections_closed_total", "reason=\"slow_client\"",
			  (double)fs.closed_slow);
	rn_metrics_sample(b, P "connections_closed_total", "reason=\"too_many_streams\"",
			  (double)fs.closed_streams);
	rn_metrics_sample(b, P "connections_closed_total", "reason=\"header_timeout\"",
			  (double)fs.closed_header_timeout);
	rn_metrics_sample(b, P "connections_closed_total", "reason=\"throttled\"",
			  (double)fs.closed_throttled);
	rn_metrics_family(b, P "connections_rejected_total", "counter",
			  "New connections closed at once, before anything was read.");
	rn_metrics_sample(b, P "connections_rejected_total", "reason=\"max_connections\"",
			  (double)fs.rejected_max_conns);
	rn_metrics_sample(b, P "connections_rejected_total", "reason=\"throttled\"",
			  (double)fs.rejected_throttled);
	F("throttle_episodes_total", "counter",
	  "Times a client address was throttled for refuse_throttle.", fs.throttle_episodes);
	F("peers_throttled", "gauge", "Client addresses throttled now.", fs.peers_throttled);
	F("partial_bytes", "gauge", "Memory held for request messages received in part.",
	  fs.partial_bytes);
	F("partial_budget_refusals_total", "counter",
	  "Calls ended with RESOURCE_EXHAUSTED for partial_budget_bytes.", fs.partial_refused);
	F("accept_errors_total", "counter",
	  "accept() failures (out of file descriptors or buffers); the listener pauses "
	  "after each.",
	  fs.accept_errors);
	F("accept_paused", "gauge", "1 while the listener is paused after an accept() failure.",
	  fs.accept_paused);
	F("streams_refused_total", "counter",
	  "Streams refused (REFUSED_STREAM) beyond max_streams_per_connection.",
	  fs.streams_refused);
	F("malformed_requests_total", "counter",
	  "HTTP/2 requests reset with PROTOCOL_ERROR as malformed (RFC 9113 8.1.1), such as "
	  "an upper-case header name.",
	  fs.malformed);
	struct rn_metrics_stats hs = {0};
	if (s->metrics)
		rn_metrics_stats(s->metrics, &hs);
	rn_metrics_family(b, P "tls_handshake_failures_total", "counter",
			  "TLS connections refused in or right after the handshake, by port "
			  "(grpc = listen, http = metrics_listen) and reason.");
	for (int p = 0; p < 2; p++)
		for (int i = 0; i < RN_TLS_FAIL_N; i++) {
			char lab[60];
			snprintf(lab, sizeof(lab), "port=\"%s\",reason=\"%s\"", p ? "http" : "grpc",
				 rn_tls_reason_name(i));
			rn_metrics_sample(b, P "tls_handshake_failures_total", lab,
					  (double)(p ? hs.tls_failed[i] : fs.tls_failed[i]));
		}
	if (s->metrics) {
		F("http_connections_open", "gauge", "Connections open on the HTTP port now.",
		  hs.conns_open);
		F("http_connections_accepted_total", "counter",
		  "Connections accepted on the HTTP port.", hs.conns_accepted);
		F("http_max_connections_reached_total", "counter",
		  "Times http_max_connections were open and the HTTP port stopped accepting.",
		  hs.cap_episodes);
		F("http_accept_paused", "gauge",
		  "1 while the HTTP port does not accept (http_max_connections, or after an "
		  "accept() failure).",
		  hs.accept_paused);
		F("http_accept_errors_total", "counter",
		  "accept() failures on the HTTP port (the listener pauses after each).",
		  hs.accept_errors);
	}
	if (s->tls) {
		struct rn_tls_stats ts;
		rn_tls_stats(s->tls, &ts);
		rn_metrics_family(
			b, P "tls_cert_reloads_total", "counter",
			"TLS certificate reloads on SIGHUP: ok, or error (the certificate "
			"in use stays).");
		rn_metrics_sample(b, P "tls_cert_reloads_total", "result=\"ok\"",
				  (double)ts.reloads_ok);
		rn_metrics_sample(b, P "tls_cert_reloads_total", "result=\"error\"",
				  (double)ts.reloads_err);
		F("tls_cert_expiry_timestamp_seconds", "gauge",
		  "Unix time the listen port's certificate in use expires (notAfter).",
		  (double)ts.cert_not_after);
	}
	F("window_withheld_bytes", "gauge",
	  "DATA bytes received whose HTTP/2 connection window is not granted back yet.",
	  fs.window_withheld);
	F("stream_window_holds_total", "counter",
	  "Times a stream's window was withheld for stream_inflight_bytes.", fs.stream_holds);
	/* REST (docs/protocol.md "REST") */
	rn_metrics_family(b, P "rest_requests_total", "counter",
			  "Plain HTTP (REST) requests answered, by route and HTTP status, both "
			  "ports.");
	for (int r = 0; r < RN_REST_NROUTES; r++)
		for (size_t i = 0; i < RN_REST_NSTATUS; i++) {
			char lab[80];
			if (!s->stats.rest[r][i])
				continue;
			if (rn_rest_statuses[i])
				snprintf(lab, sizeof(lab), "route=\"%s\",code=\"%d\"",
					 rn_rest_route_name((enum rn_rest_route)r),
					 rn_rest_statuses[i]);
			else
				snprintf(lab, sizeof(lab), "route=\"%s\",code=\"other\"",
					 rn_rest_route_name((enum rn_rest_route)r));
			rn_metrics_sample(b, P "rest_requests_total", lab,
					  (double)s->stats.rest[r][i]);
		}
	F("rest_waiting", "gauge", "REST inserts written, waiting for the WAL sync to answer.",
	  rest_waiting(s));
	/* reload (docs/operations.md "Server reload") */
	rn_metrics_family(b, P "config_reloads_total", "counter",
			  "SIGHUP config reloads: applied (ok) or refused, the running config kept "
			  "(error).");
	rn_metrics_sample(b, P "config_reloads_total", "result=\"ok\"",
			  (double)s->stats.reloads_ok);
	rn_metrics_sample(b, P "config_reloads_total", "result=\"error\"",
			  (double)s->stats.reloads_err);
	F("config_last_reload_success_timestamp_seconds", "gauge",
	  "Unix time the running config was loaded (at start or by the last applied "
	  "reload).",
	  s->stats.config_loaded_s);
	/* fleet health (docs/operations.md "Fleet health"): one walk of the model per scrape */
	{
		struct rn_fleet_gauges g;
		static const char *const extra[2] = {"all", "connected"};
		char lab[64];
		rn_fleet_gauges(s->fleet, rn_server__now_ms(), &g);
		F("agent_health_reports_total", "counter",
		  "Health reports received from agents (field 1001), valid or not.",
		  s->health_reports);
		rn_metrics_family(b, P "agent_health_rejected_total", "counter",
				  "Health reports refused whole, by reason (kept as invalid).");
		for (int r = 1; r < RN_FLEET_NREJECT; r++) {
			snprintf(lab, sizeof(lab), "reason=\"%s\"", rn_fleet_reject_name(r));
			rn_metrics_sample(b, P "agent_health_rejected_total", lab,
					  (double)s->health_rejected[r]);
		}
		rn_metrics_family(b, P "fleet_streams", "gauge",
				  "Streams known to the fleet view, by state (all, connected, "
				  "silent, behind, dropping, clock, invalid).");
		for (int i = 0; i < RN_FLEET_NSTATES + 2; i++) {
			snprintf(lab, sizeof(lab), "state=\"%s\"",
				 i < RN_FLEET_NSTATES ? rn_fleet_state_name(i)
						      : extra[i - RN_FLEET_NSTATES]);
			rn_metrics_sample(b, P "fleet_streams", lab, (double)g.streams[i]);
		}
		rn_metrics_family(b, P "fleet_devices", "gauge",
				  "Devices (named by their agents' reports), by state.");
		for (int i = 0; i < RN_FLEET_NSTATES + 2; i++) {
			snprintf(lab, sizeof(lab), "state=\"%s\"",
				 i < RN_FLEET_NSTATES ? rn_fleet_state_name(i)
						      : extra[i - RN_FLEET_NSTATES]);
			rn_metrics_sample(b, P "fleet_devices", lab, (double)g.devices[i]);
		}
		F("fleet_oldest_unsent_age_seconds", "gauge",
		  "The oldest unsent record's age over the devices' newest reports.",
		  g.oldest_unsent_age_s);
		F("fleet_agent_dead_letters", "gauge",
		  "Dead letters counted by agents, summed over the devices' newest reports.",
		  g.dead_letters);
		F("fleet_agent_dropped_records", "gauge",
		  "Records agents dropped (drops + expired), summed over the devices' newest "
		  "reports.",
		  g.dropped);
		F("fleet_table_rows_total", "counter",
		  "Rows written to the fleet system tables (runnel.fleet.*).", s->fleet_rows);
		F("fleet_table_errors_total", "counter",
		  "Fleet system table rows that could not be written (logged).",
		  s->fleet_row_errors);
	}
	char clab[64];
	snprintf(clab, sizeof(clab), "checksum=\"%s\"", s->conf.checksum);
	rn_metrics_family(b, P "config_info", "gauge",
			  "The config in force: FNV-1a 64 of its file as last loaded "
			  "(empty: defaults).");
	rn_metrics_sample(b, P "config_info", clab, 1);
#undef F
#undef P
}

/* Unhealthy while the last flush failed and none has succeeded since; degraded (still
 * serving) while a table fails recovery, naming it. A failed WAL sync is not a state: it
 * ends the calls it could not make durable, and wal_sync_errors_total counts it. */
static int health(void *ctx, char *why, size_t cap)
{
	struct rn_server *s = ctx;
	if (s->draining || s->stopping) {
		snprintf(why, cap, s->stopping ? "shutting down" : "draining");
		return RN_HEALTH_DOWN;
	}
	if (s->stats.last_flush_err_us > s->stats.last_flush_ok_us) {
		snprintf(why, cap, "%s", s->stats.last_error);
		return RN_HEALTH_DOWN;
	}
	if (s->failing) {
		const struct srv_failing *f = s->failing;
		snprintf(why, cap, "table %s failing recovery (%zu WAL segment(s) kept): %s%s",
			 f->table, f->nsegs, f->why, f->next ? "; and more tables" : "");
		return RN_HEALTH_DEGRADED;
	}
	return RN_HEALTH_OK;
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	rn_sd_notify("WATCHDOG=1");
}

int rn_server_run(struct rn_server *s)
{
	int64_t wd = rn_sd_watchdog_us();
	if (wd > 0) {
		/* pinged from the loop itself: a loop that stops turning misses the
		 * deadline */
		if (!(s->watchdog_ev = event_new(s->base, -1, EV_PERSIST, watchdog_cb, s)) ||
		    rn_ev_add_ms(s->watchdog_ev, wd / 2000))
			rn_log_error("server", "cannot schedule the systemd watchdog pings");
		else
			rn_log_info("server", "systemd watchdog: pinging every %lld ms",
				    (long long)(wd / 2000));
	}
	/* recovery is done and the front listens: what /healthz calls up (or degraded) */
	if (rn_sd_notify("READY=1"))
		rn_log_warn("server", "could not tell systemd READY=1 ($NOTIFY_SOCKET)");
	event_base_dispatch(s->base);
	return 0;
}

void rn_server_destroy(struct rn_server *s)
{
	if (!s)
		return;
	rn_metrics_destroy(s->metrics);
	/* the group in flight ends while its calls and the front are still there */
	s->flush_deferred = 0;
	if (s->wal && s->wal_pool)
		sync_wait(s);
	rn_pool_destroy(s->wal_pool);
	if (s->wal_pool_ev)
		event_free(s->wal_pool_ev);
	rn_front_destroy(s->front);
	/* after the ports (their open requests are gone: no job answers anyone), before the
	 * loop: the running checks end, the queued ones are cancelled */
	rn_pool_destroy(s->pool);
	if (s->pool_ev)
		event_free(s->pool_ev);
	/* running maintenance jobs end after their current step, queued ones are cancelled;
	 * their done calls reach the materializer, destroyed below */
	if (s->mat)
		rn_mat_maint_stop(s->mat);
	/* queued flush jobs are cancelled (their rows are in the WAL, replayed at the next
	 * start), running ones finish their commit; after maint_stop, so that the end of the
	 * round submits no maintenance */
	s->destroying = 1;
	/* the registry's store job in flight ends (nobody is answered any more), then what was
	 * queued for the next one goes */
	rn_pool_destroy(s->reg_pool);
	if (s->reg_pool_ev)
		event_free(s->reg_pool_ev);
	if (s->reg_ops.next) {
		struct rn_list *n;
		while ((n = rn_list_first(&s->reg_ops))) {
			struct reg_op *op = RN_LIST_ENTRY(n, struct reg_op, link);
			if (op->st)
				op->st->store_op = NULL;
			if (op->call && rn_call_ctx(op->call))
				((struct call_state *)rn_call_ctx(op->call))->resume_op = NULL;
			reg_op_free(op);
		}
	}
	rn_tstore_close(s->reg_store);
	rn_pool_destroy(s->flush_pool);
	if (s->flush_pool_ev)
		event_free(s->flush_pool_ev);
	rn_pool_destroy(s->maint_pool);
	if (s->maint_ev)
		event_free(s->maint_ev);
	rn_server__api_fini(s); /* no worker logs any more */
	if (s->lag_ev)
		event_free(s->lag_ev);
	rn_seccache_destroy(s->seccache);
	rn_tls_destroy(s->metrics_tls);
	rn_tls_destroy(s->tls);
	if (s->sync_ev)
		event_free(s->sync_ev);
	if (s->reg_ev)
		event_free(s->reg_ev);
	if (s->flush_ev)
		event_free(s->flush_ev);
	if (s->sig_term)
		event_free(s->sig_term);
	if (s->sig_int)
		event_free(s->sig_int);
	if (s->sig_hup)
		event_free(s->sig_hup);
	if (s->auth_ev)
		event_free(s->auth_ev);
	if (s->drain_ev)
		event_free(s->drain_ev);
	if (s->hist_ev)
		event_free(s->hist_ev);
	if (s->fleet_ev)
		event_free(s->fleet_ev);
	rn_principals_destroy(s->principals);
	if (s->watchdog_ev)
		event_free(s->watchdog_ev);
	if (s->base)
		event_base_free(s->base);
	while (s->failing) {
		struct srv_failing *n = s->failing->next;
		rn_server__free_failing(s->failing);
		s->failing = n;
	}
	while (s->streams)
		free_stream(s, s->streams);
	rn_registry_destroy(s->reg); /* after the streams: their queued entries are dropped */
	rn_fleet_destroy(s->fleet);  /* after the streams: each forgot its fleet view */
	rn_fleet_health_free(&s->fh);
	rn_buf_free(&s->fleet_batch);
	rn_strmap_free(&s->stream_ids);
	for (size_t i = 0; i < s->owners.cap; i++) /* values only; the keys are in them */
		if (s->owners.slots[i].key && s->owners.slots[i].val)
			rn_free(s->owners.slots[i].val);
	rn_strmap_free(&s->owners);
	for (size_t i = 0; i < s->tabs.cap; i++) /* values only; the keys are in them */
		if (s->tabs.slots[i].key && s->tabs.slots[i].val) {
			rn_free(((struct srv_tab *)s->tabs.slots[i].val)->ttt);
			rn_free(s->tabs.slots[i].val);
		}
	rn_strmap_free(&s->tabs);
	rn_wal_close(s->wal);
	rn_mat_destroy(s->mat);
	while (s->rest_pending) { /* none: the ports told their requests gone */
		struct rest_pending *n = s->rest_pending->next;
		rn_free(s->rest_pending);
		s->rest_pending = n;
	}
	rn_buf_free(&s->rest_batch);
	rn_buf_free(&s->rest_body);
	rn_buf_free(&s->resp);
	rn_buf_free(&s->single);
	rn_conf_free(rn_server_conf_table, &s->conf);
	rn_free(s);
}
