/*
 * Writes a sample table with the materializer, for the independent-reader test
 * (tests/integration/parquet_readers.test.mjs): two streams, two flushes, text and
 * non-UTF-8 payloads, attributes, an undecodable record and enough rows for several pages.
 * Usage: mat_write_sample <data_root> <rows>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mat.h"
#include "rn_buf.h"
#include "rn_pbwire.h"

static void record(struct rn_buf *batch, long i, const char *src)
{
	struct rn_buf r = {0}, a = {0};
	char payload[128];
	rn_pb_put_str(&r, 1, "dev-1");
	rn_pb_put_str(&r, 2, src);
	rn_pb_put_str(&r, 3, "/var/log/x.log");
	rn_pb_put_uint(&r, 4, (uint64_t)(1700000000000000LL + i * 1000));
	rn_pb_put_uint(&r, 5, (uint64_t)(1700000000500000LL + i * 1000));
	rn_pb_put_uint(&r, 6, (uint64_t)i);
	if (i % 1000 == 7) {
		rn_pb_put_bytes(&r, 7, "\xff\xfe\x00raw", 6);
	} else {
		snprintf(payload, sizeof(payload), "line %ld of %s, some text \xc3\xa9", i, src);
		rn_pb_put_str(&r, 7, payload);
	}
	if (i % 2 == 0) {
		rn_pb_put_str(&a, 1, "site");
		rn_pb_put_str(&a, 2, "berlin \"north\"");
		rn_pb_put_bytes(&r, 8, a.data, a.len);
	}
	rn_pb_put_bytes(batch, 1, r.data, r.len);
	rn_buf_free(&r);
	rn_buf_free(&a);
}

int main(int argc, char **argv)
{
	struct rn_mat *m;
	struct rn_mat_options o = {.data_root = argc > 1 ? argv[1] : "."};
	long rows = argc > 2 ? atol(argv[2]) : 10000;
	const char *table = "main.sample.events";
	int rc;

	if ((rc = rn_mat_create(&m, &o)) || (rc = rn_mat_ensure_table(m, table)))
		return fprintf(stderr, "create: %d\n", rc), 1;
	for (int s = 0; s < 2; s++) {
		const char *sid = s ? "stream-b" : "stream-a";
		for (long off = 0, i = 0; i < rows / 2; off++) {
			struct rn_buf batch = {0};
			for (int k = 0; k < 100 && i < rows / 2; k++, i++)
				record(&batch, i, sid);
			if (off == 3) /* an undecodable record: a truncated varint */
				rn_pb_put_bytes(&batch, 1, "\x20\xff", 2);
			if ((rc = rn_mat_add(m, table, sid, off, RN_MAT_PROTO, batch.data,
					     batch.len, NULL)))
				return fprintf(stderr, "add: %s\n", rn_mat_errmsg(m)), 1;
			rn_buf_free(&batch);
			if (off == 10 && (rc = rn_mat_flush(m)))
				return fprintf(stderr, "flush: %s\n", rn_mat_errmsg(m)), 1;
		}
	}
	if ((rc = rn_mat_flush(m)))
		return fprintf(stderr, "flush: %s\n", rn_mat_errmsg(m)), 1;
	rn_mat_destroy(m);
	return 0;
}
