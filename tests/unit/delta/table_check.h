/*
 * A test's reader of a Delta table as other readers see it, for the allocation-failure
 * sweeps: the log must replay with the project's independent log reader (server/delta/log.c),
 * from version 0 and from its checkpoint when there is one; every version must hold whole
 * lines, a commitInfo, and as many adds as its commitInfo announces, and the log reader
 * has no warning (unreadable stats, duplicate adds, ...); every live add must carry stats and
 * point at a complete Parquet file (server/delta/pqread.c reads all of it, with the row count
 * its stats name, and every `attributes` value a JSON object); and each row's (stream_id,
 * seq) is handed to a callback so the caller can count records exactly once. It never
 * writes. Allocation failure must be off while it runs.
 */
#ifndef RN_TEST_TABLE_CHECK_H
#define RN_TEST_TABLE_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* Called per row: stream_id (NULL if the column is null or absent) and seq (-1 if null). */
typedef void (*rn_tc_row_fn)(void *ctx, const char *stream, size_t len, int64_t seq);

/*
 * Checks the table in `dir`. *version receives the latest version (-1 if there is no table:
 * no _delta_log or no version 0, which is not an error). 0, or -1 with the reason in why.
 */
int rn_tc_check(const char *dir, rn_tc_row_fn row, void *ctx, int64_t *version, char *why,
		size_t cap);

/* Exactly-once bookkeeping over (stream index, seq) pairs with seq in [0, nseq). */
struct rn_tc_counts {
	const char *const *streams; /* the stream ids expected */
	size_t nstreams;
	int64_t nseq;
	int *n;         /* nstreams * nseq counters, zeroed by the caller */
	size_t unknown; /* rows of other streams or out-of-range seqs */
};
/* An rn_tc_row_fn over a struct rn_tc_counts. */
void rn_tc_count(void *ctx, const char *stream, size_t len, int64_t seq);

#endif
