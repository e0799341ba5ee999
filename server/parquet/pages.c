/*
 * Page jobs of the Parquet writer; see parquet_int.h. Compression of a page's body may run on
 * a pool worker while the writer's thread goes on filling the next pages; the writer takes
 * the results in page order (parquet.c's collect). A page is claimed by one thread with a
 * compare-and-swap on its state, so the compression runs exactly once, wherever. Waiting
 * for a page another thread is compressing uses one process-wide mutex and condition
 * variable: waits are rare (a row group close or a file's finish finding a page still
 * running) and short (one page), so a lock per page would buy nothing.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "parquet_int.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "rn_zstd.h"
#include "thrift.h"

enum { PAGE_QUEUED, PAGE_RUNNING, PAGE_DONE };
enum { PAGE_DATA = 0 };
enum { ENC_PLAIN = 0, ENC_RLE = 3 };

static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;

#define ST(p) ((_Atomic int *)(void *)&(p)->state)
#define REFS(p) ((_Atomic int *)(void *)&(p)->refs)

/* Thrift compact PageHeader of a page of `len` bytes compressed to `clen`, into hdr. */
static int page_header(struct rn_buf *hdr, int type, uint32_t nvals, int encoding, size_t len,
		       size_t clen)
{
	struct rn_tc t;
	rn_buf_reset(hdr);
	rn_tc_init(&t, hdr);
	rn_tc_i32(&t, 1, type);
	rn_tc_i32(&t, 2, (int32_t)len);
	rn_tc_i32(&t, 3, (int32_t)clen);
	if (type == PAGE_DATA) {
		rn_tc_struct_begin(&t, 5);
		rn_tc_i32(&t, 1, (int32_t)nvals);
		rn_tc_i32(&t, 2, encoding);
		rn_tc_i32(&t, 3, ENC_RLE);
		rn_tc_i32(&t, 4, ENC_RLE);
	} else {
		rn_tc_struct_begin(&t, 7);
		rn_tc_i32(&t, 1, (int32_t)nvals);
		rn_tc_i32(&t, 2, ENC_PLAIN);
	}
	rn_tc_struct_end(&t);
	rn_tc_stop(&t);
	return t.err;
}

/*
 * The body is compressed straight into dst, after room for the header; the header holds the
 * compressed size, so its length is guessed from `guess` (the last page's compressed size)
 * and the body moved only when the guess was wrong (its varint length differs: rare for
 * pages of one column).
 */
int rn_pq__page_encode(struct rn_buf *hdr, struct rn_buf *dst, int type, uint32_t nvals,
		       int encoding, const uint8_t *src, size_t len, size_t guess, int level,
		       int hash_log, size_t *hl_out)
{
	size_t start = dst->len, hl, clen;
	int rc;

	if (len > INT32_MAX)
		return RN_ETOOBIG;
	if ((rc = page_header(hdr, type, nvals, encoding, len, guess ? guess : len / 2)))
		return rc;
	hl = hdr->len;
	if ((rc = rn_buf_reserve(dst, hl)))
		return rc;
	dst->len += hl;
	if ((rc = rn_zstd_compress_hl(dst, src, len, level, hash_log)))
		goto fail;
	clen = dst->len - start - hl;
	if ((rc = page_header(hdr, type, nvals, encoding, len, clen)))
		goto fail;
	if (hdr->len != hl) { /* guessed wrong: the header is shorter (or longer) */
		if (hdr->len > hl && (rc = rn_buf_reserve(dst, hdr->len - hl)))
			goto fail;
		memmove(dst->data + start + hdr->len, dst->data + start + hl, clen);
		dst->len = start + hdr->len + clen;
	}
	memcpy(dst->data + start, hdr->data, hdr->len);
	*hl_out = hdr->len;
	return 0;
fail:
	dst->len = start;
	return rc;
}

int rn_pq__page_new(struct rn_pq_page **out, struct rn_buf *raw, size_t off, size_t len)
{
	struct rn_pq_page *p = rn_calloc(1, sizeof(*p));
	*out = NULL;
	if (!p)
		return RN_ENOMEM;
	p->raw = *raw;
	raw->data = NULL;
	raw->len = raw->cap = 0;
	p->off = off;
	p->len = len;
	p->out.max = raw->max;
	atomic_init(ST(p), PAGE_QUEUED);
	atomic_init(REFS(p), 1);
	*out = p;
	return 0;
}

/* Compresses p, its raw bytes freed after; the caller claimed it. */
static void compress(struct rn_pq_page *p)
{
	struct rn_buf hdr = {0};
	p->rc = rn_pq__page_encode(&hdr, &p->out, p->type, p->nvals, p->encoding,
				   p->raw.data + p->off, p->len, p->guess, p->level, p->hash_log,
				   &p->hl);
	rn_buf_free(&hdr);
	rn_buf_free(&p->raw);
	pthread_mutex_lock(&done_mu);
	atomic_store_explicit(ST(p), PAGE_DONE, memory_order_release);
	pthread_cond_broadcast(&done_cv);
	pthread_mutex_unlock(&done_mu);
}

static int claim(struct rn_pq_page *p)
{
	int want = PAGE_QUEUED;
	return atomic_compare_exchange_strong(ST(p), &want, PAGE_RUNNING);
}

void rn_pq__page_run(void *page)
{
	struct rn_pq_page *p = page;
	if (claim(p))
		compress(p);
}

void rn_pq__page_done(void *page, int cancelled)
{
	(void)cancelled; /* a cancelled page is claimed by the writer's wait */
	rn_pq__page_unref(page);
}

int rn_pq__page_wait(struct rn_pq_page *p)
{
	if (claim(p)) {
		compress(p);
		return p->rc;
	}
	if (atomic_load_explicit(ST(p), memory_order_acquire) != PAGE_DONE) {
		pthread_mutex_lock(&done_mu);
		while (atomic_load_explicit(ST(p), memory_order_acquire) != PAGE_DONE)
			pthread_cond_wait(&done_cv, &done_mu);
		pthread_mutex_unlock(&done_mu);
	}
	return p->rc;
}

int rn_pq__page_ready(struct rn_pq_page *p)
{
	return atomic_load_explicit(ST(p), memory_order_acquire) == PAGE_DONE;
}

void rn_pq__page_ref(struct rn_pq_page *p)
{
	atomic_fetch_add(REFS(p), 1);
}

void rn_pq__page_drop(struct rn_pq_page *p)
{
	if (!p)
		return;
	if (claim(p)) {
		rn_buf_free(&p->raw);
		atomic_store_explicit(ST(p), PAGE_DONE, memory_order_release);
	}
	rn_pq__page_unref(p);
}

void rn_pq__page_unref(struct rn_pq_page *p)
{
	if (!p || atomic_fetch_sub(REFS(p), 1) != 1)
		return;
	rn_buf_free(&p->raw);
	rn_buf_free(&p->out);
	rn_free(p);
}
