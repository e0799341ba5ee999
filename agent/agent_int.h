/*
 * Inside the agent: the structs and functions shared by its files (agent.c: lifetime and
 * loop; pipeline.c: sources, routes, chunk builders into the buffer, the uplink callbacks;
 * reload.c: SIGHUP; status.c: status JSON, status.json and the status socket; conf.c: the
 * config rows, their check and comparison). Nothing here is seen outside agent/. Everything
 * runs on the loop thread.
 */
#ifndef RN_AGENT_INT_H
#define RN_AGENT_INT_H

#include <regex.h>
#include <stdint.h>
#include <stdio.h>

#include "agent.h"
#include "buffer.h"
#include "chunk.h"
#include "health.h"
#include "plugin.h"
#include "rn_buf.h"
#include "rn_lograte.h"
#include "uplink.h"

extern const char *const rn_agent_policies[]; /* buffer.policy names */

#define ROUTES_MAX 32  /* streams per source, its own included */
#define SEGMENTS_MAX 8 /* streams of one route draining at once (backlog_split) */

/* One stream of a source: its own (route 0) or a route's. */
struct route {
	const char *match; /* NULL for the source's own stream */
	char base[300];    /* the configured stream name */
	int segment;       /* 0, or N after backlog splits: the stream is then base~N */
	char name[310];    /* the buffer's stream name */
	const char *table;
	struct rn_buffer_stream st;
	struct rn_chunk_builder cb;
	/* the closed chunk of a commit the buffer refused (full) */
	int has_pending;
	struct rn_buf pending;
	int64_t pending_offset, pending_next_seq;
	uint32_t pending_nrec;
	/* the highest offset the server acknowledged that the buffer has not yet deleted up to
	 * (ack_waiting): acks are applied together, at most ACK_COALESCE_US after the first
	 * (pipeline.c) */
	int ack_waiting;
	int64_t ack_to;
	/* records/s over the last second or more, for status (see rn_agent__sample_rates) */
	int64_t rate_seq, rate_us;
	double rate;
};

/* One configured source: a plugin instance and its streams. Heap-allocated (its address is
 * the plugin's host ctx), owned by rn_agent.src. */
struct source {
	struct rn_agent *a;
	const struct rn_source_conf *conf; /* inside one of the agent's configs (gens) */
	const struct rn_agent_conf *gen;   /* the config conf belongs to */
	const struct rn_source_plugin *p;
	void *inst;
	struct route *routes; /* [0] = the source's own stream */
	size_t nroutes;
	struct rn_chunk_origin origin;
	/* the wall clock when the running poll() began, 0 outside one: the receive time of
	 * every record that poll emits (one 256 KiB read of a file, ~0.3 ms); reading the clock
	 * per record was 6 % of the agent's CPU on the file path */
	int64_t poll_now_us;
	int pos_dirty;
	/* closed chunks (in routes) and the snapshot the buffer refused; retried on tick */
	int have_pending;
	struct rn_buf pending_ckpt;
	/* removed or changed by a reload: polled no more, destroyed once nothing of it waits
	 * (have_pending = 0); a changed source's successor starts then */
	int retiring;
	uint64_t records_in;
	uint64_t dead_letters;        /* records kept with RN_RECORD_F_DEAD */
	uint64_t evtime_fallbacks;    /* event_time_field missing or unreadable */
	struct rn_attr *static_attrs; /* from the source's `attributes`; strings owned */
	regex_t evtime_re;            /* event_time_pattern, if have_re */
	int have_re;
	int64_t pause_logged_us; /* mono time of the last "paused" line */
	uint64_t pauses;         /* times the buffer was full for this source */
	/* what the plugin last said of itself (host->set_state), or the agent when a poll
	 * failed: enum rn_source_state and the error in words ("" = none) */
	int state;
	char state_error[256];
	int poll_failed; /* the last poll failed with this RN_E* code: state ERROR; 0 = it did not
			  */
};

#define CONF_GENS_MAX 32 /* configs alive at once: the first, and reloads still referenced */

struct rn_agent {
	const struct rn_agent_conf *conf; /* in force: the first (borrowed) or gens[ngens-1] */
	/* configs from reloads, owned; freed when no source refers to one and it is not in
	 * force */
	struct rn_agent_conf *gens[CONF_GENS_MAX];
	size_t ngens;
	char device_id[256];
	char boot_id[64]; /* /proc/sys/kernel/random/boot_id, read at start; "" = unknown */
	struct rn_buffer *buffer;
	struct rn_uplink *uplink;
	struct source **src; /* nsrc sources (retiring ones included), cap srccap */
	size_t nsrc, srccap;
	struct rn_buf snap;
	int64_t started_us;
	int status_fd; /* data_dir/agent.sock listener, or -1 */
	/* status.json: a hash of the last content written (time-derived fields left out) and
	 * when the next write may happen */
	uint64_t status_hash;
	int64_t next_status_us;
	uint64_t acked_chunks;
	int64_t ack_due_us;   /* when the routes' waiting acks go to the buffer; 0 = none wait */
	uint64_t ack_commits; /* buffer transactions that deleted acknowledged chunks */
	uint64_t dropped_records; /* tombstoned by drop_oldest since start */
	uint64_t expired_records; /* tombstoned by a source's ttl since start */
	int buffer_recovered;     /* the buffer file was corrupt at start and set aside */
	uint64_t reloads;         /* accepted reloads since start */
	int64_t drop_logged_us;
	int64_t next_maint_us, next_ttl_us, next_watchdog_us;
	int64_t watchdog_us; /* rn_sd_watchdog_us() at start; 0 = none */
	/* dead letters: the first of a source per period gets a line, the rest one summary
	 * per source per period (written by tick) */
	struct rn_lograte dead_log;
	/* health reports (report.c): when the last went out (mono us, 0 = never), the state key
	 * of the snapshot it had (health.h), and the counts `runnel-agent status` shows */
	int64_t health_last_us;
	int64_t health_check_us; /* mono us a change was last looked for */
	uint64_t health_key;
	uint64_t health_reports; /* reports handed to the uplink (queued on >= 1 call) */
	uint64_t health_skipped; /* reports that could not be built or queued */
	int64_t health_last_ms;  /* wall clock of the last report queued, unix ms; 0 = none */
};

#define RN_AGENT_DEAD_LOG_PERIOD_US (10 * 1000000LL)

/* conf.c: whether two sources entries are the same in every setting (plugin rows too). */
int rn_agent__source_same(const struct rn_source_conf *x, const struct rn_source_conf *y);

/* pipeline.c */
/* Creates the source of entry sc (which belongs to config gen): streams, plugin instance;
 * appends it to a->src. 0 or an RN_E* code (then nothing was added). */
int rn_agent__source_start(struct rn_agent *a, const struct rn_agent_conf *gen,
			   const struct rn_source_conf *sc);
/* Frees a source (plugin instance, builders, pending chunks). */
void rn_agent__source_free(struct source *s);
/* Closes the source's open chunks and commits them with its snapshot (see pipeline.c). */
void rn_agent__close_chunk(struct source *s);
/* Timed pipeline work due at `now` (monotonic): pending commits, linger, positions, ttl
 * sweeps, disk-full checks. */
void rn_agent__tick(struct rn_agent *a, int64_t now);
/* Applies the acks that wait (deletes the acknowledged chunks from the buffer) now. */
void rn_agent__acks_apply(struct rn_agent *a);
/* The monotonic time of the next thing tick() has to do, or INT64_MAX. */
int64_t rn_agent__next_deadline(struct rn_agent *a);
/* Registers the buffer's streams that no source writes but that still hold unacked chunks. */
int rn_agent__register_orphans(struct rn_agent *a, struct rn_uplink *u);
/* The route (and its source) that writes buffer stream `stream`, or NULL. */
struct route *rn_agent__by_stream(struct rn_agent *a, int stream, struct source **src);
/* Applies chunk.* of the config in force to every route's builder. */
void rn_agent__apply_chunk_limits(struct rn_agent *a);
/* Creates an uplink from the config in force and registers the sources' streams, and with
 * with_orphans also the orphans (see register_orphans). 0 or an RN_E* code. */
int rn_agent__uplink_open(struct rn_agent *a, int with_orphans, struct rn_uplink **out);

/* reload.c: frees configs no source refers to (except the one in force). */
void rn_agent__gc_gens(struct rn_agent *a);
/* Frees retired sources whose records are all in the buffer, then starts the sources of
 * the config in force that have none (a changed source's successor). */
void rn_agent__reap(struct rn_agent *a);

/* report.c: the health report's snapshot of the agent (health.h); the strings and arrays
 * live in `scratch` (reset by the call, owned by the caller) and a; valid until the next
 * change to either. 0 or RN_ENOMEM. */
struct rn_agent_snap_mem {
	struct rn_health_source *src;
	size_t nsrc, cap;
	struct rn_health_drop drops[1];
};
int rn_agent__health_snapshot(struct rn_agent *a, struct rn_health_snap *s,
			      struct rn_agent_snap_mem *m);
void rn_agent__snap_mem_free(struct rn_agent_snap_mem *m);
/* Sends a health report when one is due (health.h: interval, change, a call just opened);
 * loop thread, after rn_uplink_step. Never fails: a report that cannot be built or queued
 * is counted in health_skipped. */
void rn_agent__health_step(struct rn_agent *a);

/* status.c */
/* The status JSON on f; with `stable` the clock-driven fields are 0 (for change checks). */
void rn_agent__status_json(struct rn_agent *a, FILE *f, int stable);
/* Updates each stream's records/s (windows of at least 1 s). */
void rn_agent__sample_rates(struct rn_agent *a);
/* Writes status.json when `force`, or when its content changed and the last write is
 * STATUS_MIN_US old. */
void rn_agent__status_write(struct rn_agent *a, int force);
/* data_dir/agent.sock (0660): opened at create (a failure is logged: status.json only),
 * served from the loop (each connection gets the JSON and is closed), closed and unlinked
 * at destroy. */
void rn_agent__status_socket_open(struct rn_agent *a);
void rn_agent__status_socket_serve(struct rn_agent *a);
void rn_agent__status_socket_close(struct rn_agent *a);

#endif
