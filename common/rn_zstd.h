/*
 * zstd compression for chunks (agent) and gRPC messages and Parquet pages (server). The only
 * code outside the Parquet writer that includes zstd.h. Stateless calls; contexts are cached
 * per thread so the hot path does not allocate.
 */
#ifndef RN_ZSTD_H
#define RN_ZSTD_H

#include <stddef.h>

#include "rn_buf.h"

/* Appends zstd(src) to out at `level`. 0, RN_ENOMEM, or RN_EIO if zstd fails. */
int rn_zstd_compress(struct rn_buf *out, const void *src, size_t len, int level);

/* rn_zstd_compress with the match finder's hash table limited to 2^hash_log entries
 * (0 = the level's own). Small tables suit small independent inputs such as Parquet pages:
 * they stay in the L1 cache, and recent matches are the ones such data has. */
int rn_zstd_compress_hl(struct rn_buf *out, const void *src, size_t len, int level, int hash_log);

/* Appends the decompressed frame to out, failing with RN_ETOOBIG when the result would
 * exceed max bytes and RN_ECORRUPT for data that is not a valid zstd frame. */
int rn_zstd_decompress(struct rn_buf *out, const void *src, size_t len, size_t max);

/* Frees the calling thread's cached contexts (the next call makes new ones). A worker
 * thread calls it after a job, so its contexts neither outlive the thread (they would leak:
 * thread-local pointers are not freed at exit) nor hold memory between jobs. */
void rn_zstd_release(void);

#endif
