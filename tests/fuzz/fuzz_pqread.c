/*
 * Fuzz target: the Parquet reader (server/delta/pqread.c), which reads checkpoints and
 * compaction inputs from a table directory (outside input: any writer, any damage). The
 * input is a whole file; it is opened, every node is looked at, and the rows are assembled
 * both into JSON lines and into a sink that only counts.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pqread.h"
#include "rn_buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_value(void *ctx, const struct rn_pqr_node *n, const struct rn_pqr_value *v)
{
	size_t *c = ctx;
	(void)n;
	*c += v->len ? v->p[0] + v->p[v->len - 1] : 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_pqr *r;
	struct rn_buf out = {.max = (size_t)16 << 20};
	size_t n, sum = 0;
	static const struct rn_pqr_sink sink = {NULL, NULL, NULL, count_value, NULL};

	if (rn_pqr_open(&r, data, size, (size_t)64 << 20) == 0) {
		const struct rn_pqr_node *nodes = rn_pqr_nodes(r, &n);
		for (size_t i = 0; i < n; i++)
			sum += strlen(nodes[i].name) + (size_t)nodes[i].def;
		(void)rn_pqr_to_json_lines(r, &out);
	}
	rn_pqr_close(r);
	rn_buf_free(&out);
	if (rn_pqr_open(&r, data, size, (size_t)64 << 20) == 0)
		(void)rn_pqr_read(r, &sink, &sum);
	rn_pqr_close(r);
	return sum == 1 ? 0 : 0;
}
