/*
 * The server's limits as decisions, with no I/O and no clock of their own: is the server under
 * pressure (WAL bytes not yet in tables, materializer lag) and how long should a refused
 * client wait; has a connection been idle or slow for too long; how much HTTP/2 flow-control
 * window may be granted back now. front.c and server.c feed these from their sockets, timers
 * and counters; tests/unit/server/test_limits.c drives them with made-up numbers.
 *
 * Header-only on purpose: the functions are a few lines each, shared by the front, the stream
 * manager and their unit test, and so need no library of their own. Nothing here keeps state
 * beyond the small structs the caller owns.
 */
#ifndef RN_LIMITS_H
#define RN_LIMITS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The pushback the server asks for is clamped to this range (ms). */
#define RN_LIMITS_PUSHBACK_MIN_MS 100
#define RN_LIMITS_PUSHBACK_MAX_MS 60000
/* Added to the wait for the next flush: the flush itself takes time. */
#define RN_LIMITS_PUSHBACK_SLACK_MS 100

/* Admission limits (from the config). 0 = that limit is off. */
struct rn_limits {
	uint64_t wal_max_bytes;
	int64_t max_lag_ms;    /* effective value: see rn_limits_effective_lag_ms */
	uint64_t wal_min_free; /* free bytes the WAL's file system must keep */
	/* fair share (rn_limits_share): above wal_soft_percent % of wal_max_bytes, a table
	 * holding wal_max_bytes / (tables with bytes in the WAL) or more is refused, and so is
	 * a principal holding wal_max_bytes / (principals with bytes in the WAL) or more; a
	 * table holding wal_table_max_bytes or more, or a principal holding
	 * wal_principal_max_bytes or more, is refused at any WAL size */
	unsigned wal_soft_percent;
	uint64_t wal_table_max_bytes;
	uint64_t wal_principal_max_bytes;
	/* memory budget for rows not yet in tables (rn_limits_memory): builders and flush jobs
	 * together at most this; 0 = off */
	uint64_t memory_max_bytes;
};

/* What the stream manager knows at the moment of a decision (microseconds, monotonic). */
struct rn_limits_now {
	int64_t now_us;
	uint64_t wal_bytes;        /* bytes in the WAL not yet committed to tables */
	int64_t oldest_pending_us; /* when the oldest record not in a table arrived; 0 = none */
	int64_t next_flush_us;     /* when the materializer runs next */
	int64_t flush_cost_us;     /* how long the last flush took */
	int64_t wal_free;          /* free bytes on the WAL's file system; -1 = unknown */
	uint64_t mem_builders;     /* heap of the column builders (rows not yet flushed) */
	uint64_t mem_flush;        /* heap of the builders handed to flush jobs in flight */
};

enum rn_pressure {
	RN_PRESSURE_NONE = 0,
	RN_PRESSURE_WAL,   /* wal_max_bytes reached */
	RN_PRESSURE_LAG,   /* max_lag reached */
	RN_PRESSURE_DISK,  /* the WAL's file system has less than wal_min_free */
	RN_PRESSURE_MEMORY /* memory_max_bytes reached (builders + flush jobs) */
};

/*
 * The memory budget (memory_max_bytes = cap, 0 = off) of rows held in memory until they are
 * in their tables: the column builders may fill RN_LIMITS_BUILDER_PERCENT % of it (their
 * share); past it a flush should start now rather than at the next flush interval, so that
 * the builders empty into a flush job while new rows fill fresh ones. Builders plus flush jobs
 * in flight at the cap or over is pressure (rn_limits_pressure: RN_PRESSURE_MEMORY): new
 * batches are refused with a pushback until a flush job ends, as for the WAL; the WAL keeps
 * what was acked. Partial request messages have their own budget (partial_budget_bytes, in
 * the front), so the memory held for data is at most memory_max_bytes plus that.
 */
#define RN_LIMITS_BUILDER_PERCENT 50

/* The builders' share of the budget in bytes (0 when the budget is off). */
static inline uint64_t rn_limits_builder_share(const struct rn_limits *l)
{
	return l->memory_max_bytes / 100 * RN_LIMITS_BUILDER_PERCENT +
	       l->memory_max_bytes % 100 * RN_LIMITS_BUILDER_PERCENT / 100;
}

/*
 * Should a flush start now, before the flush interval? 1 when the builders hold their share of
 * the budget or more and no flush is in flight (`flushing`: a round runs already; the builders
 * go to the next one, and the cap holds them meanwhile). 0 when the budget is off.
 */
static inline int rn_limits_flush_early(const struct rn_limits *l, const struct rn_limits_now *n,
					int flushing)
{
	return l->memory_max_bytes && !flushing && n->mem_builders >= rn_limits_builder_share(l);
}

/*
 * The wait asked for under memory pressure: memory is freed when the flush job in flight ends
 * (a round starts as soon as the builders reach their share, not at the next interval), so
 * about one flush's time (the last one's), clamped as rn_limits_pushback_ms.
 */
static inline int64_t rn_limits_memory_pushback_ms(const struct rn_limits_now *n)
{
	int64_t ms = RN_LIMITS_PUSHBACK_SLACK_MS;
	if (n->flush_cost_us > 0)
		ms += (n->flush_cost_us + 999) / 1000;
	if (ms < RN_LIMITS_PUSHBACK_MIN_MS)
		ms = RN_LIMITS_PUSHBACK_MIN_MS;
	return ms < RN_LIMITS_PUSHBACK_MAX_MS ? ms : RN_LIMITS_PUSHBACK_MAX_MS;
}

/* Builders plus flush jobs at memory_max_bytes or over (0 when the budget is off). */
static inline int rn_limits_memory_full(const struct rn_limits *l, const struct rn_limits_now *n)
{
	return l->memory_max_bytes && n->mem_builders + n->mem_flush >= l->memory_max_bytes;
}

/*
 * The lag limit actually applied: a record waits up to one flush interval by design, so a
 * max_lag at or below that would hold the server under pressure between every two flushes.
 * Such a value is raised to twice the interval (the caller logs it). 0 stays 0 (off).
 */
static inline int64_t rn_limits_effective_lag_ms(int64_t max_lag_ms, int64_t flush_interval_ms)
{
	if (max_lag_ms <= 0)
		return 0;
	return max_lag_ms > flush_interval_ms ? max_lag_ms : 2 * flush_interval_ms;
}

/* Milliseconds since the oldest record not yet in a table; 0 when nothing is pending. */
static inline int64_t rn_limits_lag_ms(const struct rn_limits_now *n)
{
	if (!n->oldest_pending_us || n->now_us <= n->oldest_pending_us)
		return 0;
	return (n->now_us - n->oldest_pending_us) / 1000;
}

/*
 * How long a refused client should wait before it sends again: until the next flush (which
 * truncates the WAL and clears the lag) has had time to run, clamped to
 * [RN_LIMITS_PUSHBACK_MIN_MS, RN_LIMITS_PUSHBACK_MAX_MS].
 */
static inline int64_t rn_limits_pushback_ms(const struct rn_limits_now *n)
{
	int64_t ms = RN_LIMITS_PUSHBACK_SLACK_MS;
	if (n->next_flush_us > n->now_us)
		ms += (n->next_flush_us - n->now_us + 999) / 1000;
	if (n->flush_cost_us > 0)
		ms += (n->flush_cost_us + 999) / 1000;
	if (ms < RN_LIMITS_PUSHBACK_MIN_MS)
		ms = RN_LIMITS_PUSHBACK_MIN_MS;
	if (ms > RN_LIMITS_PUSHBACK_MAX_MS)
		ms = RN_LIMITS_PUSHBACK_MAX_MS;
	return ms;
}

/*
 * The admission decision. RN_PRESSURE_NONE, or the limit that is reached; then *pushback_ms
 * (if not NULL) receives the wait to ask for and msg (if not NULL) a sentence for the
 * client's grpc-message that names the limit. The WAL limit wins when both are reached.
 * A limit is reached at its value: the overshoot is at most the one message admitted just
 * before (max_message_bytes). Precedence: WAL, lag, disk, memory.
 */
static inline enum rn_pressure rn_limits_pressure(const struct rn_limits *l,
						  const struct rn_limits_now *n,
						  int64_t *pushback_ms, char *msg, size_t cap)
{
	enum rn_pressure p = RN_PRESSURE_NONE;
	int64_t lag = rn_limits_lag_ms(n), wait;

	if (l->wal_max_bytes && n->wal_bytes >= l->wal_max_bytes)
		p = RN_PRESSURE_WAL;
	else if (l->max_lag_ms > 0 && lag >= l->max_lag_ms)
		p = RN_PRESSURE_LAG;
	else if (l->wal_min_free && n->wal_free >= 0 && (uint64_t)n->wal_free < l->wal_min_free)
		p = RN_PRESSURE_DISK;
	else if (rn_limits_memory_full(l, n))
		p = RN_PRESSURE_MEMORY;
	if (p == RN_PRESSURE_NONE)
		return p;
	wait = p == RN_PRESSURE_MEMORY ? rn_limits_memory_pushback_ms(n) : rn_limits_pushback_ms(n);
	if (pushback_ms)
		*pushback_ms = wait;
	if (msg && cap) {
		if (p == RN_PRESSURE_WAL)
			snprintf(msg, cap,
				 "server over wal_max_bytes: %llu bytes in the WAL not yet in "
				 "tables "
				 "(limit %llu); retry in %lld ms",
				 (unsigned long long)n->wal_bytes,
				 (unsigned long long)l->wal_max_bytes, (long long)wait);
		else if (p == RN_PRESSURE_LAG)
			snprintf(
				msg, cap,
				"server over max_lag: the oldest record not yet in a table arrived "
				"%lld ms ago (limit %lld ms); retry in %lld ms",
				(long long)lag, (long long)l->max_lag_ms, (long long)wait);
		else if (p == RN_PRESSURE_DISK)
			snprintf(msg, cap,
				 "server disk nearly full: %lld bytes free for the WAL "
				 "(wal_min_free "
				 "%llu); retry in %lld ms",
				 (long long)n->wal_free, (unsigned long long)l->wal_min_free,
				 (long long)wait);
		else
			snprintf(
				msg, cap,
				"server over memory_max_bytes: %llu bytes of rows in memory not "
				"yet in tables (builders %llu, flush jobs %llu; limit %llu); retry "
				"in %lld ms",
				(unsigned long long)(n->mem_builders + n->mem_flush),
				(unsigned long long)n->mem_builders,
				(unsigned long long)n->mem_flush,
				(unsigned long long)l->memory_max_bytes, (long long)wait);
	}
	return p;
}

enum rn_share {
	RN_SHARE_OK = 0,
	RN_SHARE_FAIR, /* over its fair share of a WAL above the soft threshold */
	RN_SHARE_CAP   /* over its hard cap (wal_table_max_bytes, wal_principal_max_bytes) */
};

/* Who shares the WAL in a fair-share decision: tables, or the principals writing them. */
enum rn_share_by {
	RN_SHARE_BY_TABLE = 0, /* cap: wal_table_max_bytes */
	RN_SHARE_BY_PRINCIPAL  /* cap: wal_principal_max_bytes */
};

/*
 * The fair-share admission decision, made after rn_limits_pressure found no global pressure:
 * may a new batch of a holder (a table, or a principal: `by`) that holds `held` bytes of the
 * WAL's wal_bytes (bytes not yet in tables; `active` holders of that kind hold some) go in?
 * One holder filling the WAL must not refuse the others: above the soft threshold
 * (wal_soft_percent of wal_max_bytes; 0 = off) each active holder is guaranteed
 * wal_max_bytes / active, and a holder at or over that share is refused until a flush
 * commits its bytes, while the others are accepted up to wal_max_bytes itself. A lone holder
 * may use the whole WAL (there is nobody to be fair to). The holder's hard cap
 * (wal_table_max_bytes or wal_principal_max_bytes; 0 = off) applies at any WAL size.
 * RN_SHARE_OK, or the reason; then *pushback_ms and msg (each may be NULL) as
 * rn_limits_pressure gives them, the message naming the kind of holder and the limit.
 */
static inline enum rn_share rn_limits_share(const struct rn_limits *l,
					    const struct rn_limits_now *n, enum rn_share_by by,
					    uint64_t held, size_t active, int64_t *pushback_ms,
					    char *msg, size_t cap)
{
	enum rn_share v = RN_SHARE_OK;
	uint64_t share = 0, wait;
	uint64_t hard =
		by == RN_SHARE_BY_PRINCIPAL ? l->wal_principal_max_bytes : l->wal_table_max_bytes;

	if (hard && held >= hard) {
		v = RN_SHARE_CAP;
	} else if (l->wal_max_bytes && l->wal_soft_percent && active >= 2) {
		uint64_t soft = l->wal_max_bytes / 100 * l->wal_soft_percent +
				l->wal_max_bytes % 100 * l->wal_soft_percent / 100;
		share = l->wal_max_bytes / active;
		if (n->wal_bytes >= soft && held >= share)
			v = RN_SHARE_FAIR;
	}
	if (v == RN_SHARE_OK)
		return v;
	wait = (uint64_t)rn_limits_pushback_ms(n);
	if (pushback_ms)
		*pushback_ms = (int64_t)wait;
	if (!msg || !cap)
		return v;
	if (by == RN_SHARE_BY_TABLE && v == RN_SHARE_CAP)
		snprintf(msg, cap,
			 "table over wal_table_max_bytes: %llu bytes of this table in the "
			 "WAL not yet in it (limit %llu); retry in %llu ms",
			 (unsigned long long)held, (unsigned long long)hard,
			 (unsigned long long)wait);
	else if (by == RN_SHARE_BY_TABLE)
		snprintf(msg, cap,
			 "table over its share of wal_max_bytes: %llu bytes of this table "
			 "in the WAL not yet in it, its share is %llu (%zu tables writing, "
			 "%llu bytes in the WAL, limit %llu); retry in %llu ms",
			 (unsigned long long)held, (unsigned long long)share, active,
			 (unsigned long long)n->wal_bytes, (unsigned long long)l->wal_max_bytes,
			 (unsigned long long)wait);
	else if (v == RN_SHARE_CAP)
		snprintf(msg, cap,
			 "principal over wal_principal_max_bytes: %llu bytes from this "
			 "principal in the WAL not yet in tables (limit %llu); retry in %llu ms",
			 (unsigned long long)held, (unsigned long long)hard,
			 (unsigned long long)wait);
	else
		snprintf(msg, cap,
			 "principal over its share of wal_max_bytes: %llu bytes from this "
			 "principal in the WAL not yet in tables, its share is %llu (%zu "
			 "principals writing, %llu bytes in the WAL, limit %llu); retry in %llu ms",
			 (unsigned long long)held, (unsigned long long)share, active,
			 (unsigned long long)n->wal_bytes, (unsigned long long)l->wal_max_bytes,
			 (unsigned long long)wait);
	return v;
}

/* rn_limits_share for a table holding table_bytes (`active` tables hold some). */
static inline enum rn_share rn_limits_table_share(const struct rn_limits *l,
						  const struct rn_limits_now *n,
						  uint64_t table_bytes, size_t active,
						  int64_t *pushback_ms, char *msg, size_t cap)
{
	return rn_limits_share(l, n, RN_SHARE_BY_TABLE, table_bytes, active, pushback_ms, msg, cap);
}

/*
 * Slow client: a connection whose unsent responses stay above `bound` bytes for longer than
 * `timeout_us` is closed. `*since_us` is the caller's per-connection state (0 = below the
 * bound; start it at 0). Call it with the current output size whenever convenient (a
 * periodic tick); returns 1 when the connection must be closed now.
 */
static inline int rn_limits_slow(int64_t *since_us, size_t out_bytes, size_t bound,
				 int64_t timeout_us, int64_t now_us)
{
	if (out_bytes <= bound) {
		*since_us = 0;
		return 0;
	}
	if (!*since_us) {
		*since_us = now_us ? now_us : 1;
		return timeout_us <= 0;
	}
	return now_us - *since_us >= timeout_us;
}

/*
 * Idle connection: no call open and no request (HEADERS, DATA) received, nor a call ended,
 * for `idle_us` (0 = never); control frames (PING, SETTINGS, WINDOW_UPDATE) do not count,
 * else a PING a second would keep any connection forever. Returns 1 when the connection must
 * be closed now.
 */
static inline int rn_limits_idle(size_t ncalls, int64_t last_rx_us, int64_t idle_us, int64_t now_us)
{
	return idle_us > 0 && ncalls == 0 && now_us - last_rx_us >= idle_us;
}

/*
 * Header timeout: something that must arrive whole (the HTTP/2 preface, a header block) has
 * been awaited since since_us (0 = nothing awaited) for timeout_us (0 = never) or more.
 * Returns 1 when the connection must be closed now.
 */
static inline int rn_limits_header_late(int64_t since_us, int64_t timeout_us, int64_t now_us)
{
	return since_us && timeout_us > 0 && now_us - since_us >= timeout_us;
}

/*
 * How long the front's listener pauses after its n-th accept() failure in a row (n >= 1):
 * 50 ms doubling to 1 s. Out of file descriptors, retrying at once would fail again at once
 * (a busy loop); a pause lets connections close and is short enough to serve again soon.
 */
#define RN_LIMITS_ACCEPT_BACKOFF_MIN_MS 50
#define RN_LIMITS_ACCEPT_BACKOFF_MAX_MS 1000

static inline int64_t rn_limits_accept_backoff_ms(uint64_t failures)
{
	int64_t ms = RN_LIMITS_ACCEPT_BACKOFF_MIN_MS;
	for (uint64_t i = 1; i < failures && ms < RN_LIMITS_ACCEPT_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < RN_LIMITS_ACCEPT_BACKOFF_MAX_MS ? ms : RN_LIMITS_ACCEPT_BACKOFF_MAX_MS;
}

/*
 * Flow-control window held back by the front. Received DATA bytes are added to both counters;
 * rn_limits_window_grant says how much to hand back to the peer now: nothing while the server
 * is under pressure (both windows close), the connection's bytes but not the stream's while
 * only that stream is over its in-flight limit, everything otherwise. The counters drop by
 * what is granted.
 */
struct rn_limits_grant {
	uint64_t conn;   /* bytes to grant on the connection window */
	uint64_t stream; /* bytes to grant on the stream window */
};

static inline struct rn_limits_grant
rn_limits_window_grant(uint64_t *conn_held, uint64_t *stream_held, int pressure, int stream_hold)
{
	struct rn_limits_grant g = {0, 0};
	if (pressure)
		return g;
	g.conn = *conn_held;
	*conn_held = 0;
	if (stream_held && !stream_hold) {
		g.stream = *stream_held;
		*stream_held = 0;
	}
	return g;
}

#endif
