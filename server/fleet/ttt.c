/*
 * Time to table (ttt.h): a bounded list of batches waiting for their commit and a ring of
 * the last samples. Pure: the caller gives the time and the committed offsets.
 */
#include "ttt.h"

#include <stdlib.h>
#include <string.h>

#include "rn_err.h"

int rn_ttt_queued(struct rn_ttt *t, const void *key, int64_t offset, int64_t at_us)
{
	if (t->npend == RN_TTT_PENDING) {
		t->unsampled++;
		return RN_EAGAIN;
	}
	t->pend[t->npend++] = (struct rn_ttt_pend){key, offset, at_us};
	return 0;
}

size_t rn_ttt_committed(struct rn_ttt *t, int64_t (*committed)(void *ctx, const void *key),
			void *ctx, int64_t now_us)
{
	size_t keep = 0, taken = 0;
	for (size_t i = 0; i < t->npend; i++) {
		const struct rn_ttt_pend *p = &t->pend[i];
		if (p->offset <= committed(ctx, p->key)) {
			rn_ttt_sample(t, now_us - p->at_us);
			taken++;
		} else {
			t->pend[keep++] = *p;
		}
	}
	t->npend = keep;
	return taken;
}

void rn_ttt_forget(struct rn_ttt *t, const void *key)
{
	size_t keep = 0;
	for (size_t i = 0; i < t->npend; i++)
		if (t->pend[i].key != key)
			t->pend[keep++] = t->pend[i];
	t->npend = keep;
}

void rn_ttt_sample(struct rn_ttt *t, int64_t us)
{
	if (us < 0)
		us = 0;
	t->win[t->head] = us;
	t->head = (t->head + 1) % RN_TTT_WINDOW;
	if (t->n < RN_TTT_WINDOW)
		t->n++;
	t->count++;
	t->sum_s += (double)us / 1e6;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int rn_ttt_quantile(const struct rn_ttt *t, double q, int64_t *us)
{
	int64_t v[RN_TTT_WINDOW];
	if (!t || !t->n || !(q > 0 && q <= 1))
		return RN_ENOTFOUND;
	/* the ring's first n slots hold the window whether or not it wrapped */
	memcpy(v, t->win, t->n * sizeof(v[0]));
	qsort(v, t->n, sizeof(v[0]), cmp_i64);
	const double r = q * (double)t->n;
	size_t rank = (size_t)r; /* 1-based: ceil(q * n) */
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > t->n)
		rank = t->n;
	*us = v[rank - 1];
	return 0;
}
