/*
 * A test stand-in for the server's WAL as the materializer's refill source; see
 * refill_log.h.
 */
#include "refill_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct refill_ent {
	char *table, *stream;
	int64_t offset;
	int record_type, has_clk;
	struct rn_mat_clock clk;
	uint8_t *batch;
	size_t len;
};

static void *must(void *p)
{
	if (!p) {
		fprintf(stderr, "refill_log: out of memory\n");
		exit(1);
	}
	return p;
}

int refill_log_add(struct refill_log *l, struct rn_mat *m, const char *table, const char *stream_id,
		   int64_t offset, int record_type, const uint8_t *batch, size_t len,
		   const struct rn_mat_clock *clk)
{
	int rc = rn_mat_add(m, table, stream_id, offset, record_type, batch, len, clk);
	if (rc)
		return rc;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = must(realloc(l->v, l->cap * sizeof(*l->v)));
	}
	struct refill_ent *e = &l->v[l->n++];
	memset(e, 0, sizeof(*e));
	e->table = must(strdup(table));
	e->stream = must(strdup(stream_id));
	e->offset = offset;
	e->record_type = record_type;
	if (clk) {
		e->has_clk = 1;
		e->clk = *clk;
	}
	e->batch = must(malloc(len ? len : 1));
	memcpy(e->batch, batch, len);
	e->len = len;
	return 0;
}

int refill_log_fn(void *ctx, struct rn_mat *m, const char *table)
{
	struct refill_log *l = ctx;
	int rc;
	l->refills++;
	for (size_t i = 0; i < l->n; i++) {
		const struct refill_ent *e = &l->v[i];
		if (strcmp(e->table, table))
			continue;
		if ((rc = rn_mat_refill_add(m, table, e->stream, e->offset, e->record_type,
					    e->batch, e->len, e->has_clk ? &e->clk : NULL)))
			return rc;
	}
	return 0;
}

void refill_log_clear(struct refill_log *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].table);
		free(l->v[i].stream);
		free(l->v[i].batch);
	}
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}
