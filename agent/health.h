/*
 * The agent's health report (docs/protocol.md, "Health reports"), I/O-free: a snapshot of
 * the agent's numbers in, the report's JSON out, at most RN_HEALTH_MAX bytes; plus the
 * "state" comparison that makes the agent send a report sooner, and the send schedule. The
 * snapshot only borrows its strings; nothing here keeps a pointer past a call. The agent
 * gathers snapshots on its loop thread (agent/status.c) and hands the JSON to the uplink,
 * which sends it only on calls whose server takes reports. Everything a source says (names,
 * errors) is escaped and cut, so a hostile string cannot break the JSON; the cap is met by
 * leaving sources out from the end, never by cutting the text.
 */
#ifndef RN_HEALTH_H
#define RN_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

#define RN_HEALTH_MAX 16384   /* bytes of one report (the server refuses more) */
#define RN_HEALTH_STR_MAX 256 /* longest string value sent; longer ones are cut (UTF-8 safe) */
#define RN_HEALTH_CHANGE_MIN_US                                                                    \
	((int64_t)5 * 1000000) /* a change is reported at most this often                          \
				*/

/* A source's state in a report. */
enum rn_health_state {
	RN_HEALTH_UP = 0, /* running (connected, reading) */
	RN_HEALTH_DOWN,   /* its peer is gone (broker unreachable, port missing); retrying */
	RN_HEALTH_ERROR,  /* its last poll failed or its peer refused it */
	RN_HEALTH_IDLE    /* not reading on purpose: buffer full (block policy), retiring */
};

/* "up", "down", "error", "idle"; "error" for anything else. */
const char *rn_health_state_name(int state);

struct rn_health_source {
	const char *name;
	const char *type;  /* "mqtt", "serial", "file" or "plugin" */
	int state;         /* enum rn_health_state */
	const char *error; /* what went wrong last, NULL = nothing (JSON null) */
	uint64_t records;  /* records read since the agent started */
};

struct rn_health_drop {
	const char *reason; /* a JSON key, e.g. "buffer_full" */
	uint64_t count;     /* cumulative since the agent started */
};

/* Everything a report says. A zeroed struct is a valid (empty) snapshot. Strings may be
 * NULL (then the key is left out, or null where the spec says so). */
struct rn_health_snap {
	const char *device;
	const char *version;
	const char *config_sha256; /* 64 lower-case hex, NULL = unknown */
	const char *boot_id;       /* NULL or "" = unknown */
	int64_t uptime_s;
	int64_t sent_at_ms; /* the agent's wall clock, unix ms */
	int clock_synced;
	int clock_offset_known; /* else "offset_ms": null */
	int64_t clock_offset_ms;
	int64_t buffer_bytes, buffer_records, buffer_max_bytes;
	int64_t oldest_unsent_age_s; /* < 0: the buffer holds nothing unsent (null) */
	const struct rn_health_drop *drops;
	size_t ndrops;
	uint64_t expired;      /* records dropped by a source's ttl */
	uint64_t dead_letters; /* records kept as dead letters */
	const struct rn_health_source *sources;
	size_t nsources;
};

/*
 * Appends the report's JSON (one object, valid UTF-8, no newline) to out. When all sources
 * do not fit in RN_HEALTH_MAX bytes, the last ones are left out and the object ends with
 * "sources_truncated": <how many>. On error out is as it was. 0, RN_ENOMEM, or RN_ERANGE
 * when even the report without any source exceeds RN_HEALTH_MAX.
 */
int rn_health_render(const struct rn_health_snap *s, struct rn_buf *out);

/* A digest of the snapshot's state values: each source's name and state, the drop counts,
 * expired, dead letters and clock synced. Equal snapshots give equal keys; a different
 * state value gives a different key (64-bit FNV-1a: a collision is not a practical worry). */
uint64_t rn_health_state_key(const struct rn_health_snap *s);

/* True when a state value differs between a and b (rn_health_state_key). */
int rn_health_changed(const struct rn_health_snap *a, const struct rn_health_snap *b);

/*
 * Whether a report is due at monotonic time now: never with interval_s <= 0; the first one
 * (last_us 0) at once; then every interval_s seconds, and sooner when `changed`, but no
 * sooner than RN_HEALTH_CHANGE_MIN_US after the last one. Pure.
 */
int rn_health_due(int64_t now_us, int64_t last_us, int interval_s, int changed);

#endif
