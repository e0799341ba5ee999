/*
 * Time to table: how long a table's batches take from their arrival at the server (their WAL
 * append queued) to the commit that makes them visible in the table, as the fleet API's
 * tables page (time_to_table_p50_ms, _p99_ms) and /metrics (table_time_to_table_seconds)
 * show it. One rn_ttt per table, made by the server on the table's first sampled batch,
 * freed with it; loop thread only.
 *
 * Bounded and I/O-free (the caller passes the time and says what is committed): at most
 * RN_TTT_PENDING batches waiting for their commit (a batch queued while that many wait is
 * not sampled, only counted in `unsampled`: a stream sending more batches than that
 * between two commits of its table has its first ones sampled) and the last RN_TTT_WINDOW
 * samples, from which the quantiles are read when asked. O(1) per batch; a commit walks the
 * waiting batches once. One sample per batch, whatever its size.
 */
#ifndef RN_TTT_H
#define RN_TTT_H

#include <stddef.h>
#include <stdint.h>

#define RN_TTT_PENDING 1024
#define RN_TTT_WINDOW 1024

struct rn_ttt_pend {
	const void *key; /* the batch's stream (the caller's handle) */
	int64_t offset;  /* its offset in that stream */
	int64_t at_us;   /* when its WAL append was queued (monotonic) */
};

struct rn_ttt {
	struct rn_ttt_pend pend[RN_TTT_PENDING]; /* waiting, in arrival order */
	size_t npend;
	int64_t win[RN_TTT_WINDOW]; /* the last samples (us), a ring: the newest at head - 1 */
	size_t head, n;             /* n <= RN_TTT_WINDOW */
	uint64_t count;             /* samples ever */
	double sum_s;               /* their sum, seconds */
	uint64_t unsampled;         /* batches not sampled: queued while pend was full */
};

/* A batch of stream `key` at `offset` was queued at at_us: 0, or RN_EAGAIN when
 * RN_TTT_PENDING batches wait already (it is counted in unsampled instead). */
int rn_ttt_queued(struct rn_ttt *t, const void *key, int64_t offset, int64_t at_us);

/* The table committed: every waiting batch whose offset is at most committed(ctx, key) (the
 * stream's committed offset, -1 none) becomes a sample of now_us - at_us (0 if the clock
 * went back); the others keep waiting, in order. Returns the number of samples taken.
 * committed is called once per waiting batch and must not call into t. */
size_t rn_ttt_committed(struct rn_ttt *t, int64_t (*committed)(void *ctx, const void *key),
			void *ctx, int64_t now_us);

/* Drops the waiting batches of `key` (its stream is gone): not sampled. */
void rn_ttt_forget(struct rn_ttt *t, const void *key);

/* One sample of us microseconds into the window (negative: 0). */
void rn_ttt_sample(struct rn_ttt *t, int64_t us);

/* The q-quantile (0 < q <= 1; nearest rank: the smallest sample with at least q of the
 * window at or below it) of the window, in us: 0, or RN_ENOTFOUND without a sample (t
 * NULL, or none yet). O(RN_TTT_WINDOW log RN_TTT_WINDOW): per request, never per batch. */
int rn_ttt_quantile(const struct rn_ttt *t, double q, int64_t *us);

#endif
