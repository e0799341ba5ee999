/*
 * Internals shared by the Parquet writer's files and its unit tests: the RLE/bit-packing
 * hybrid encoder used for levels and dictionary indices (the Parquet format's encodings,
 * "RLE": https://github.com/apache/parquet-format/blob/master/Encodings.md).
 */
#ifndef RN_PARQUET_INT_H
#define RN_PARQUET_INT_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

/* Bits needed for values 0..max (0 for max 0). */
int rn_pq__bit_width(uint32_t max);

/* Appends the RLE/bit-packed hybrid encoding of n values of `width` bits (0..32; every value
 * must fit) to out, without any length prefix. Runs of 8 or more equal values become RLE
 * runs, the rest bit-packed groups of 8; only the final group is padded. RN_ENOMEM, RN_EINVAL
 * for a width over 32. */
int rn_pq__rle_u32(struct rn_buf *out, const uint32_t *v, size_t n, int width);
int rn_pq__rle_u8(struct rn_buf *out, const uint8_t *v, size_t n, int width);

/*
 * Page jobs (pages.c): one data page's raw body, compressed by whichever thread gets to it
 * first, a pool worker (rn_pq__page_run, handed to rn_pq_options.page_submit) or the writer's
 * own thread (rn_pq__page_wait, which claims a page no worker has started, so waiting never
 * depends on a queued job being run). A page has two references when submitted: the
 * writer's (dropped by rn_pq__page_unref after its bytes are taken) and the job's (dropped
 * by rn_pq__page_done, the pool's done function, cancelled or not); the last one frees it.
 * Only run, wait, ready and the two unrefs may be called from different threads; the
 * result (out, hl) is read only after wait returned 0.
 */
struct rn_pq_page {
	int state;         /* PAGE_QUEUED, PAGE_RUNNING, PAGE_DONE: atomic */
	int refs;          /* atomic */
	int rc;            /* the compression's result; valid in PAGE_DONE */
	struct rn_buf raw; /* the uncompressed body at raw.data + off, len bytes; freed once run */
	size_t off, len;
	int type, encoding, level, hash_log;
	uint32_t nvals;
	size_t guess;      /* header length guess: the leaf's last compressed page size */
	struct rn_buf out; /* header + compressed body */
	size_t hl;         /* header length in out */
	int async;         /* the writer's: handed to a pool (counts in its in-flight cap) */
};

/* Header + zstd(src, len) appended to dst (dst unchanged on failure; *hl = header length);
 * hdr is scratch. Thread-safe. RN_ETOOBIG (len > INT32_MAX), RN_ENOMEM, RN_EIO, RN_EINVAL. */
int rn_pq__page_encode(struct rn_buf *hdr, struct rn_buf *dst, int type, uint32_t nvals,
		       int encoding, const uint8_t *src, size_t len, size_t guess, int level,
		       int hash_log, size_t *hl);

/* A page taking raw's storage (raw is left empty, its max kept), with one reference (the
 * writer's). RN_ENOMEM (raw untouched). */
int rn_pq__page_new(struct rn_pq_page **out, struct rn_buf *raw, size_t off, size_t len);
/* Pool run: compresses the page unless another thread claimed it. Any thread. */
void rn_pq__page_run(void *page);
/* Pool done: drops the job's reference (cancelled or not). Any thread. */
void rn_pq__page_done(void *page, int cancelled);
/* Compresses the page here if nobody started it, else waits until it is. Returns its rc. */
int rn_pq__page_wait(struct rn_pq_page *p);
/* Has the page been compressed (no wait)? */
int rn_pq__page_ready(struct rn_pq_page *p);
/* Adds a reference (the job's, before a submit). */
void rn_pq__page_ref(struct rn_pq_page *p);
/* The writer's drop of a page it no longer wants: a page nobody started is never compressed
 * (its job, if one runs later, finds it claimed); then as rn_pq__page_unref. */
void rn_pq__page_drop(struct rn_pq_page *p);
/* Drops one reference; the last frees the page. NULL is a no-op. */
void rn_pq__page_unref(struct rn_pq_page *p);

#endif
