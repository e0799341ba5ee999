/*
 * zstd wrappers with per-thread cached contexts; see rn_zstd.h. A thread that made a context
 * has a pthread key set whose destructor frees its contexts when it exits, so a pool worker
 * may keep them between jobs (the server's page jobs: one per Parquet page) without leaking.
 */
#include "rn_zstd.h"

#include <pthread.h>
#include <zstd.h>

#include "rn_err.h"

static _Thread_local ZSTD_CCtx *cctx;
static _Thread_local ZSTD_DCtx *dctx;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static int key_ok;

static void thread_gone(void *v)
{
	(void)v;
	rn_zstd_release();
}

static void make_key(void)
{
	key_ok = pthread_key_create(&key, thread_gone) == 0;
}

/* The calling thread's contexts are freed when it exits. */
static void track(void)
{
	pthread_once(&key_once, make_key);
	if (key_ok)
		pthread_setspecific(key, &key_ok);
}

int rn_zstd_compress(struct rn_buf *out, const void *src, size_t len, int level)
{
	return rn_zstd_compress_hl(out, src, len, level, 0);
}

int rn_zstd_compress_hl(struct rn_buf *out, const void *src, size_t len, int level, int hash_log)
{
	size_t bound = ZSTD_compressBound(len), n;
	int rc;

	if (!cctx) {
		if (!(cctx = ZSTD_createCCtx()))
			return RN_ENOMEM;
		track();
	}
	if ((rc = rn_buf_reserve(out, bound)) != 0)
		return rc;
	if (!hash_log) {
		/* ignores (and so is not affected by) parameters an earlier call set */
		n = ZSTD_compressCCtx(cctx, out->data + out->len, bound, src, len, level);
	} else {
		/* parameters are sticky on the shared context: set every one this call needs */
		ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
		if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_hashLog, hash_log)))
			return RN_EINVAL;
		n = ZSTD_compress2(cctx, out->data + out->len, bound, src, len);
	}
	if (ZSTD_isError(n))
		return RN_EIO;
	out->len += n;
	return 0;
}

int rn_zstd_decompress(struct rn_buf *out, const void *src, size_t len, size_t max)
{
	ZSTD_inBuffer in = {src, len, 0};
	size_t start = out->len;
	int rc;

	if (!dctx) {
		if (!(dctx = ZSTD_createDCtx()))
			return RN_ENOMEM;
		track();
	}
	ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
	for (;;) {
		size_t want = ZSTD_DStreamOutSize();
		if (out->len - start + want > max)
			want = max - (out->len - start) + 1; /* room to detect overflow */
		if ((rc = rn_buf_reserve(out, want)) != 0)
			return rc;
		ZSTD_outBuffer ob = {out->data + out->len, want, 0};
		size_t r = ZSTD_decompressStream(dctx, &ob, &in);
		if (ZSTD_isError(r)) {
			out->len = start;
			return RN_ECORRUPT;
		}
		out->len += ob.pos;
		if (out->len - start > max) {
			out->len = start;
			return RN_ETOOBIG;
		}
		if (r == 0 && in.pos == in.size)
			return 0;
		if (in.pos == in.size && ob.pos < want) {
			out->len = start;
			return RN_ECORRUPT; /* truncated frame */
		}
	}
}

void rn_zstd_release(void)
{
	ZSTD_freeCCtx(cctx);
	ZSTD_freeDCtx(dctx);
	cctx = NULL;
	dctx = NULL;
}
