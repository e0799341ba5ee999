/*
 * The uplink: pushes each agent stream's chunks, in offset order, to a Zerobus endpoint as
 * one gRPC PersistentStream call per stream (libcurl multi; prior knowledge for http://, ALPN
 * for https://; one HTTP/2 connection per call for now, see DESIGN.md). It is the only code
 * that includes curl.h and it never touches SQLite: chunks come from, and acks go to, the
 * callbacks in struct rn_uplink_io, which the agent implements over its buffer.
 *
 * Protocol per stream: the call opens with create_stream (no server stream id yet) or
 * resume_stream (id known); on resume the server's last_committed_offset L means chunks
 * <= L are durable, so the uplink sends from L+1 (or from after what it released, if more).
 * Every call asks `runnel-committed-acks: 1`: a server that answers it says in its acks how
 * far the stream is in the table, and chunks are released to the agent (acked()) only that
 * far, so that what one server acked into its WAL survives that server's loss; with a
 * server that does not, chunks are released on the durability ack (retain.h). Chunk bytes are sent
 * verbatim: each chunk already is a whole gRPC message (5-byte prefix, zstd-compressed
 * PersistentStreamRequest{ingest_record_batch}), so the call carries grpc-encoding: zstd.
 * At most `window` chunks are in flight per stream; acks are cumulative. Any failure (a
 * status, a transport error, anything the server sent that is not a valid answer) closes
 * the call and reopens it after exponential backoff with full jitter, at least as late as a
 * server pushback asks; nothing unacknowledged is ever reported as acked. An optional
 * bandwidth cap (one token bucket for all streams) paces request bodies.
 *
 * Lifetime: the agent creates one uplink at start and destroys it at exit; every call
 * happens on the agent's loop thread except rn_uplink_wakeup().
 */
#ifndef RN_UPLINK_H
#define RN_UPLINK_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

struct rn_uplink;

/* Callbacks into the agent. `ctx` is passed back unchanged. All run on the loop thread. */
struct rn_uplink_io {
	void *ctx;
	/* Appends the bytes of chunk (stream, offset) to out. RN_ENOTFOUND if that chunk does
	 * not exist (yet); other negative codes are treated as a transient failure. */
	int (*chunk_get)(void *ctx, int stream, int64_t offset, struct rn_buf *out);
	/* The server assigned `server_id` to the stream (after create_stream). The agent must
	 * persist it before returning 0; the uplink only resumes with persisted ids. */
	int (*stream_id_set)(void *ctx, int stream, const char *server_id);
	/* Every chunk of the stream with offset <= acked may be deleted: it is in the table
	 * (a server that answered runnel-committed-acks), or durable in the server's WAL (one
	 * that did not). Called with non-decreasing values per stream. */
	int (*acked)(void *ctx, int stream, int64_t acked);
};

struct rn_uplink_options {
	const char *url;           /* e.g. "http://127.0.0.1:7700"; required */
	const char *token;         /* bearer token; NULL = no authorization header */
	int window;                /* chunks in flight per stream; 0 = 32 */
	int backoff_min_ms;        /* first retry delay cap; 0 = 200 */
	int backoff_max_ms;        /* retry delay ceiling; 0 = 30000 */
	int connect_timeout_ms;    /* 0 = 10000 */
	int ack_timeout_ms;        /* chunks in flight and no server message for this long after the
				      last body bytes went out = the call is dead; 0 = 60000 */
	const uint8_t *descriptor; /* serialized DescriptorProto sent at create/resume */
	size_t descriptor_len;
	const char *user_agent;    /* NULL = "runnel-agent/<version>" */
	int64_t max_bytes_per_sec; /* bandwidth cap over all streams (request bodies); 0 = none */
	int slow_retry_ms;         /* retry delay after a terminal status (auth, not found, bad
				      request); 0 = backoff_max_ms */
	/* TLS (https:// only). Certificates are always verified (against the system store, or
	 * ca_file alone when set); a client certificate is sent when cert_file is set. */
	const char *ca_file;    /* PEM CA bundle the server certificate is verified against */
	const char *cert_file;  /* PEM client certificate (mTLS); with key_file */
	const char *key_file;   /* PEM private key of cert_file */
	const char *pinned_key; /* the server's public key, as CURLOPT_PINNEDPUBLICKEY:
				   "sha256//<base64>" (';'-separated for several) or a PEM/DER
				   file; a server with another key is refused */
	const char *boot_id;    /* the device's boot id: every call then sends `x-runnel-clock:
				   <boot_id> <CLOCK_BOOTTIME us>`; NULL = no header. Not copied:
				   it must outlive the uplink. */
	/* OAuth client credentials (both or neither; then `token` is ignored): the uplink gets
	 * an access token from token_url before the first call, refreshes it before it expires
	 * (token.h), retries a failed fetch with backoff, and after UNAUTHENTICATED fetches a
	 * fresh one once before backing off. Copied; never logged. */
	const char *client_id;
	const char *client_secret;
	const char *token_url; /* NULL = <url>/oidc/v1/token */
};

/* A stream the uplink should deliver. `stream` is the agent's small integer id. */
struct rn_uplink_stream_def {
	int stream;
	const char *table;     /* x-databricks-zerobus-table-name */
	const char *server_id; /* persisted server stream id, or NULL if never created */
	int64_t acked;         /* highest offset known durable on the server, or -1 */
	int64_t next_offset;   /* one past the newest chunk in the buffer */
};

/* Creates the uplink. Copies everything it keeps from opt. RN_EINVAL for a missing url or one
 * rn_addr_parse_url refuses (logged), RN_ENOMEM. The io struct is copied. */
int rn_uplink_create(struct rn_uplink **out, const struct rn_uplink_options *opt,
		     const struct rn_uplink_io *io);
void rn_uplink_destroy(struct rn_uplink *u);

/* Registers a stream; the uplink starts delivering it on the next step. RN_EEXIST if the id
 * is already registered, RN_ENOMEM. */
int rn_uplink_add_stream(struct rn_uplink *u, const struct rn_uplink_stream_def *def);

/* Tells the uplink that chunks now exist up to (excluding) next_offset. */
void rn_uplink_chunks_ready(struct rn_uplink *u, int stream, int64_t next_offset);

/* Extra file descriptors the loop wants to wait on together with the uplink's sockets. */
struct rn_uplink_waitfd {
	int fd;
	short events;  /* POLLIN / POLLOUT */
	short revents; /* filled by rn_uplink_wait */
};

/* Waits up to timeout_ms for uplink sockets, the extra fds or rn_uplink_wakeup(). The wait is
 * shortened to the uplink's next timer (backoff end, ack timeout). Only the first 16 extra
 * fds are watched; revents is filled for those (the others get 0). While libcurl spins
 * without moving a byte (an HTTP/2 upload waiting for the server's window, see uplink.c)
 * the wait watches only for incoming data and the extra fds, 10 ms at most, and a
 * concurrent rn_uplink_wakeup() may be late by that much. 0, or RN_EIO with the revents
 * not filled. */
int rn_uplink_wait(struct rn_uplink *u, struct rn_uplink_waitfd *fds, int nfds, int timeout_ms);

/* Does all uplink work that is ready: I/O, acks, reconnects. Never blocks. */
int rn_uplink_step(struct rn_uplink *u);

/* Thread-safe: makes a concurrent rn_uplink_wait return early. */
void rn_uplink_wakeup(struct rn_uplink *u);

/* Where a stream's call is. */
enum rn_uplink_state {
	RN_UPLINK_WAITING = 0, /* no call: waiting for the (re)connect time */
	RN_UPLINK_CONNECTING,  /* call opened, create/resume not answered yet */
	RN_UPLINK_OPEN,        /* sending chunks and receiving acks */
	RN_UPLINK_DRAINING     /* close_stream_signal: no new chunks, waiting for acks */
};

/* "waiting", "connecting", "open", "draining"; "?" for anything else. Inline so that code
 * linking a stub uplink (tests/unit/agent) has it too. */
static inline const char *rn_uplink_state_name(int state)
{
	static const char *const names[] = {"waiting", "connecting", "open", "draining"};
	return state >= 0 && state < 4 ? names[state] : "?";
}

/* Delivery state of one stream, for status output and tests. Counters never decrease. */
struct rn_uplink_stream_stats {
	int connected;        /* the call is open and create/resume was answered */
	int64_t acked;        /* highest offset durable on the server (acked), -1 if none */
	int64_t committed;    /* chunks up to here released to the agent (in the table, or
				 acked by a server without committed acks), -1 if none */
	int committed_acks;   /* the last call's server reports table commits */
	int64_t sent;         /* highest offset sent on the current call, -1 if none */
	uint64_t reconnects;  /* calls opened after the first */
	int last_status;      /* last gRPC status seen (an HTTP error mapped to one), -1 if none */
	int state;            /* enum rn_uplink_state */
	int64_t retry_in_ms;  /* in RN_UPLINK_WAITING: ms until the next attempt, else 0 */
	uint64_t bytes_sent;  /* request body bytes handed to libcurl, all calls */
	uint64_t failures;    /* calls that ended in an error of any kind */
	uint64_t faults;      /* of those: the server sent something that is not a valid answer
				 (bad framing or message, impossible ack or resume offset, not
				 gRPC, non-200 status) or went silent past ack_timeout_ms */
	uint64_t pushbacks;   /* of those: RESOURCE_EXHAUSTED (server overloaded) */
	uint64_t rate_waits;  /* times the body was paused by the bandwidth cap */
	int health;           /* the current call's server takes health reports (it answered
				 `runnel-health: 1`) */
	uint64_t health_sent; /* health reports queued on this stream's calls */
	uint64_t health_skipped; /* reports not queued: the previous one still going out, or
				    no memory */
	char last_error[256];    /* the last failure in words, "" if none yet */
};
int rn_uplink_stream_stats(const struct rn_uplink *u, int stream,
			   struct rn_uplink_stream_stats *st);

/* The OAuth token's state, for status output and tests. */
struct rn_uplink_token_stats {
	int enabled;           /* client credentials are configured */
	int valid;             /* a token is held and not expired */
	int fetching;          /* a request to the token endpoint is under way */
	int64_t valid_until;   /* unix seconds the held token expires, 0 if none */
	int64_t refresh_in_ms; /* ms until the next fetch (refresh or retry), 0 if due/fetching */
	uint64_t fetches;      /* tokens received */
	uint64_t failures;     /* fetches that failed */
	char last_error[256];  /* the last failed fetch in words, "" if none (never the secret) */
};
/* RN_ENOTFOUND if client credentials are not configured (st->enabled = 0), else 0. */
int rn_uplink_token_stats(const struct rn_uplink *u, struct rn_uplink_token_stats *st);

/*
 * Health reports (docs/protocol.md): every call asks `runnel-health: 1`; only on a call whose
 * server answered it, once create/resume is answered, does the uplink take reports. A report
 * is one PersistentStreamRequest{runnel_agent_health (1001): json} message, zstd-compressed
 * like the chunks, sent between two chunk messages (never inside one); it is no chunk: no
 * offset, no window slot, no ack awaited, and its bytes do not hold off the ack timeout.
 * A report still going out when the next comes is kept and the next one skipped (counted).
 *
 * rn_uplink_health_wanted: true when some call takes reports and has had none yet (the
 * agent then sends one at once: the first report of a call follows its open).
 * rn_uplink_health_send: queues `json` (len bytes, at most 16384; copied) on every call
 * that takes reports (all = 1), or only on those that have had none yet (all = 0). Returns
 * the number of calls it was queued on (0: no call takes reports: nothing is sent, which is
 * what a server without the feature gets), or RN_EINVAL for len over 16384. A call it
 * could not be queued on (the previous report still going out, no memory) counts in that
 * stream's health_skipped.
 */
int rn_uplink_health_wanted(const struct rn_uplink *u);
int rn_uplink_health_send(struct rn_uplink *u, const char *json, size_t len, int all);

/* True when every registered stream has all chunks below its next_offset acked (durable on
 * the server; chunks kept for the table are sent again after a restart if need be). */
int rn_uplink_idle(const struct rn_uplink *u);

/* Last failure of any stream in words (curl's error buffer, the gRPC status and message, or
 * the protocol fault), "" if none. */
const char *rn_uplink_errmsg(const struct rn_uplink *u);

#endif
