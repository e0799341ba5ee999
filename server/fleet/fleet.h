/*
 * The fleet model (docs/operations.md "Fleet health"): what the server knows about each
 * stream (who opened it, from where, its counters and offsets) and each device (the newest
 * health report its agent sent, a history of the last RN_FLEET_HISTORY reports, one anchor
 * per minute of the last hour for `dropping`), the health report parser and validator
 * (docs/protocol.md, field 1001), the state function (silent, behind, dropping, clock,
 * invalid) and the JSON renderers of the HTTP API (/api/v1/streams, /devices,
 * /devices/{device}) and of the fleet system tables' rows.
 *
 * I/O-free: no sockets, no clock of its own (every call that needs the time is given
 * now_ms, unix milliseconds), no libevent; allocation through rn_mem only. States are
 * computed when asked (a render, a scrape), never by a timer walking every stream, so the
 * cost of the model is proportional to activity plus what a request asks for.
 *
 * Memory is bounded per stream and per device: a stream holds its strings (id, table,
 * principal, peer: bounded by the server) and the invalid reasons of its newest report (at
 * most RN_FLEET_REASONS_MAX bytes); a device holds its newest report rendered (at most
 * RN_FLEET_REPORT_MAX bytes), its history ring and its minute anchors (about 6 KiB). A device
 * exists while one of its streams names it (a stream names at most one device), so there are
 * never more devices than streams, whatever devices send.
 *
 * Lifetime: rn_fleet_create / rn_fleet_destroy by the server; every stream object is the
 * model's (rn_fleet_stream_get creates it, rn_fleet_stream_forget frees it). Not
 * thread-safe: the server's loop thread only.
 */
#ifndef RN_FLEET_H
#define RN_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

#define RN_FLEET_REPORT_BYTES 16384 /* a health report's cap as sent (protocol) */
#define RN_FLEET_STR_MAX 256        /* strings of a report are kept up to this many bytes */
#define RN_FLEET_SOURCES_MAX 64     /* sources kept per report (the rest flagged) */
#define RN_FLEET_DROPS_MAX 32       /* drop reasons kept per report (the rest flagged) */
#define RN_FLEET_HISTORY 60         /* reports kept per device */
#define RN_FLEET_ANCHORS 61         /* one per minute: the oldest report of the last hour */
#define RN_FLEET_REASONS_MAX 1024   /* bytes of a report's joined invalid reasons */
#define RN_FLEET_REPORT_MAX 65536   /* bytes of a rendered report (escapes included) */
#define RN_FLEET_INT_MAX ((int64_t)1 << 53)
#define RN_FLEET_HOUR_MS 3600000LL

/* State bits (docs/operations.md "Fleet health"); a device's are the union of its streams'. */
enum {
	RN_FLEET_SILENT = 1 << 0,
	RN_FLEET_BEHIND = 1 << 1,
	RN_FLEET_DROPPING = 1 << 2,
	RN_FLEET_CLOCK = 1 << 3,
	RN_FLEET_INVALID = 1 << 4,
};
#define RN_FLEET_NSTATES 5
/* "silent", "behind", "dropping", "clock", "invalid" for bit index i (0..4), else NULL. */
const char *rn_fleet_state_name(int i);
/* The bit of a state name; "all" is 0 and "connected" is -2 (filters); -1 unknown. */
int rn_fleet_state_parse(const char *name);

enum rn_fleet_kind { RN_FLEET_PERSISTENT = 0, RN_FLEET_EPHEMERAL, RN_FLEET_REST };
const char *rn_fleet_kind_name(enum rn_fleet_kind k);

/* Why a whole report was refused: the label of agent_health_rejected_total. */
enum rn_fleet_reject {
	RN_FLEET_OK = 0,
	RN_FLEET_REJ_JSON,
	RN_FLEET_REJ_SIZE,
	RN_FLEET_REJ_UTF8,
	RN_FLEET_REJ_NOT_OBJECT,
	RN_FLEET_NREJECT
};
/* "json", "size", "utf8", "not_object" (metric labels); NULL for RN_FLEET_OK. */
const char *rn_fleet_reject_name(enum rn_fleet_reject r);

/*
 * A health report as validated. Integers are -1 when unknown (absent, null or invalid: then
 * a reason is in `invalid`); clock_offset_ms has its own flag as it may be negative.
 * Strings are NUL-terminated, "" when unknown. `json` is the report rendered as the API
 * shows it: the keys of the protocol in a fixed order, invalid values null, unknown keys
 * left out; drops_json and sources_json the two members as the system table keeps them.
 */
struct rn_fleet_health {
	enum rn_fleet_reject reject; /* not RN_FLEET_OK: nothing else below is set */
	char device[RN_FLEET_STR_MAX + 1], version[RN_FLEET_STR_MAX + 1];
	char config_sha256[RN_FLEET_STR_MAX + 1], boot_id[RN_FLEET_STR_MAX + 1];
	int64_t v, uptime_s, sent_at_ms;
	int clock_synced; /* 1, 0, -1 unknown */
	int has_offset;
	int64_t clock_offset_ms;
	int64_t buffer_bytes, buffer_records, buffer_max_bytes, oldest_unsent_age_s;
	int64_t drops_total; /* sum of the valid drop counts; -1 when drops is unknown */
	int64_t expired, dead_letters;
	char invalid[RN_FLEET_REASONS_MAX]; /* reasons joined by "; ", "" when valid */
	struct rn_buf json, drops_json, sources_json;
};

/* Initializes h (zeroed buffers); rn_fleet_health_free frees its buffers. */
void rn_fleet_health_init(struct rn_fleet_health *h);
void rn_fleet_health_free(struct rn_fleet_health *h);

/*
 * Validates one report (p, len as received) into h (its previous content replaced). A
 * report refused whole (over RN_FLEET_REPORT_BYTES, bad UTF-8, bad JSON, not an object) sets
 * h->reject, h->invalid says why, and returns 0; invalid members are reasons in h->invalid
 * (e.g. "buffer.bytes: negative"). 0, or RN_ENOMEM (h is then unusable until the next call).
 */
int rn_fleet_health_parse(struct rn_fleet_health *h, const uint8_t *p, size_t len);

/* What the server sees of one stream. The server writes the counters directly (loop
 * thread); the model owns the struct and its strings. */
struct rn_fleet_device;
struct rn_fleet_stream {
	char id[40];
	char *table; /* owned */
	char principal[128];
	char peer[64]; /* the address of its last call, "" none */
	enum rn_fleet_kind kind;
	int connected;                                    /* a call is attached */
	int64_t opened_ms, last_batch_ms, last_report_ms; /* 0 = never */
	uint64_t records, bytes, batches, pushbacks, clock_corrections, refused_calls;
	int64_t acked_offset, committed_offset; /* -1 none */
	int64_t clock_corrected_ms; /* last time records of it had their time corrected, 0 none */
	char *invalid; /* reasons of its newest report (owned), NULL when it was valid */
	struct rn_fleet_device *dev;           /* the device of its newest valid report, or NULL */
	struct rn_fleet_stream *dnext, *dprev; /* the device's streams */
	struct rn_fleet_stream *next, *prev;   /* every stream */
};

struct rn_fleet_conf {
	int64_t silent_after_ms; /* fleet_silent_after */
	int64_t behind_after_ms; /* fleet_behind_after */
};

struct rn_fleet;

/* 0 or RN_ENOMEM. conf may be changed later by rn_fleet_set_conf (a reload). */
int rn_fleet_create(struct rn_fleet **out, const struct rn_fleet_conf *conf);
void rn_fleet_set_conf(struct rn_fleet *f, const struct rn_fleet_conf *conf);
void rn_fleet_destroy(struct rn_fleet *f);

/* The stream of `id` (created with the table, counters zero, offsets -1), or NULL when out
 * of memory. An existing one keeps its table. */
struct rn_fleet_stream *rn_fleet_stream_get(struct rn_fleet *f, const char *id, const char *table);
/* The stream of id, or NULL. */
struct rn_fleet_stream *rn_fleet_stream_find(const struct rn_fleet *f, const char *id);
/* A call was attached (create/resume/REST use): connected, peer (NULL keeps it), principal,
 * kind, opened_ms = now. */
void rn_fleet_stream_open(struct rn_fleet_stream *fs, enum rn_fleet_kind kind, const char *peer,
			  const char *principal, int64_t now_ms);
/* Frees the stream (the server forgot it); its device goes when no stream names it. */
void rn_fleet_stream_forget(struct rn_fleet *f, struct rn_fleet_stream *fs);
/* Number of streams and devices known. */
size_t rn_fleet_nstreams(const struct rn_fleet *f);
size_t rn_fleet_ndevices(const struct rn_fleet *f);

/*
 * A report arrived on fs at now_ms, validated into h (rn_fleet_health_parse). A report with
 * a device moves fs to that device (created if new) and becomes the device's newest (history
 * and anchors updated); one without (refused whole, or no valid device) keeps fs's device
 * and only marks fs invalid. 0 or RN_ENOMEM (fs's invalid mark is then still set).
 */
int rn_fleet_report(struct rn_fleet *f, struct rn_fleet_stream *fs, const struct rn_fleet_health *h,
		    int64_t now_ms);

/* The state bits of a stream at now_ms (the function of docs/operations.md). */
int rn_fleet_stream_states(const struct rn_fleet *f, const struct rn_fleet_stream *fs,
			   int64_t now_ms);

/* Gauges of /metrics, by walking the model once (a scrape). streams[i], devices[i] for
 * state bit i; index RN_FLEET_NSTATES = all, RN_FLEET_NSTATES+1 = connected. */
struct rn_fleet_gauges {
	uint64_t streams[RN_FLEET_NSTATES + 2], devices[RN_FLEET_NSTATES + 2];
	int64_t oldest_unsent_age_s; /* max over devices' newest reports, 0 none */
	int64_t dead_letters;        /* sum over devices' newest reports */
	int64_t dropped;             /* sum of drops + expired over devices' newest reports */
};
void rn_fleet_gauges(const struct rn_fleet *f, int64_t now_ms, struct rn_fleet_gauges *g);

/* A list request's parameters (/api/v1/streams and /devices). */
struct rn_fleet_query {
	int state;     /* a state bit, 0 = all, -2 = connected */
	char q[257];   /* substring filter, "" none */
	char sort[32]; /* field name, "" = default */
	int desc;      /* order */
	int order_given;
	long limit; /* 1..10000 */
};
/*
 * Parses a query string ("a=1&b=2", NULL = none) into q: state, q, sort, order, limit;
 * unknown parameters are ignored. devices: 1 the sort keys of /devices,
 * RN_FLEET_QUERY_REFUSALS those of /refusals (refusals.h), 0 those of /streams.
 * 0, or RN_EINVAL with *why (static) naming the bad value.
 */
#define RN_FLEET_QUERY_REFUSALS 2
int rn_fleet_query_parse(const char *query, int devices, struct rn_fleet_query *q,
			 const char **why);

/* Appends the JSON answers of the API (docs/protocol.md "HTTP API"). 0 or RN_ENOMEM. */
int rn_fleet_render_streams(const struct rn_fleet *f, const struct rn_fleet_query *q,
			    int64_t now_ms, struct rn_buf *out);
int rn_fleet_render_devices(const struct rn_fleet *f, const struct rn_fleet_query *q,
			    int64_t now_ms, struct rn_buf *out);
/* RN_ENOTFOUND for an unknown device (nothing appended). */
int rn_fleet_render_device(const struct rn_fleet *f, const char *device, size_t len, int64_t now_ms,
			   struct rn_buf *out);

/* One row of runnel.fleet.agents for a report received on fs at now_ms (a JSON object). */
int rn_fleet_agents_row(const struct rn_fleet_stream *fs, const struct rn_fleet_health *h,
			int64_t now_ms, struct rn_buf *out);
/*
 * Appends runnel.fleet.streams rows as a record list (field 1 repeated, each a JSON object),
 * one per stream from the *next-th (in the model's order, 0 = the first), stopping before
 * a row that would make the list appended pass cap bytes: *n rows, *next moved past them
 * (*n = 0 once *next is past the last stream). A caller writes one batch per call until
 * *n is 0, so every stream appears once however many there are, each batch at most cap
 * bytes; the model must not change between the calls. Walks the streams before *next
 * again on each call. 0; RN_ETOOBIG (one row alone passes cap), RN_ENOMEM: nothing
 * appended, *next unchanged.
 */
int rn_fleet_streams_rows(const struct rn_fleet *f, int64_t now_ms, size_t *next, size_t cap,
			  struct rn_buf *out, size_t *n);

#endif
