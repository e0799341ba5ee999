/*
 * The WAL's part for materializer tests: a log of every batch rn_mat_add took (appended after
 * the add returned 0, as the server appends to its WAL), and the refill callback
 * (rn_mat_options.refill) that hands a table's logged batches back through
 * rn_mat_refill_add. Its memory comes from malloc, not rn_malloc, so allocation-failure
 * sweeps and rn_mem_live() see only the materializer's.
 */
#ifndef RN_REFILL_LOG_H
#define RN_REFILL_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "mat.h"

struct refill_log {
	struct refill_ent *v;
	size_t n, cap;
	long refills; /* calls of refill_log_fn */
};

/* rn_mat_add, and on 0 the batch is logged (exits on malloc failure). Returns its result. */
int refill_log_add(struct refill_log *l, struct rn_mat *m, const char *table, const char *stream_id,
		   int64_t offset, int record_type, const uint8_t *batch, size_t len,
		   const struct rn_mat_clock *clk);

/* The refill callback; ctx is the struct refill_log. */
int refill_log_fn(void *ctx, struct rn_mat *m, const char *table);

/* Empties the log (a flush committed everything: the server drops its WAL segments). */
void refill_log_clear(struct refill_log *l);

#endif
