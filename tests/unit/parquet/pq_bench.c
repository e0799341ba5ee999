/*
 * The writer half of bench/parquet_vs_duckdb.sh: generates N telemetry-like rows from the
 * row number (the same values the script's DuckDB query computes) and writes them with our
 * Parquet writer (zstd, one file), handing finished row groups to the file as they close.
 * Prints the elapsed seconds (generation + encoding + write) on stdout.
 * Usage: pq_bench <out.parquet> <rows>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parquet.h"
#include "rn_buf.h"
#include "rn_err.h"

static const struct rn_pq_col cols[] = {
	{.name = "ts", .type = RN_PQ_TIMESTAMP}, {.name = "device", .type = RN_PQ_STRING},
	{.name = "seq", .type = RN_PQ_INT64},    {.name = "v1", .type = RN_PQ_DOUBLE},
	{.name = "v2", .type = RN_PQ_DOUBLE},    {.name = "payload", .type = RN_PQ_STRING},
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int drain(struct rn_buf *b, FILE *f)
{
	if (b->len && fwrite(b->data, 1, b->len, f) != b->len)
		return RN_EIO;
	rn_buf_reset(b);
	return 0;
}

int main(int argc, char **argv)
{
	struct rn_pq_writer *w;
	struct rn_buf out = {.max = (size_t)1 << 31};
	long long n = argc > 2 ? atoll(argv[2]) : 10000000;
	char dev[32], payload[160];
	size_t groups = 0;
	FILE *f;
	int rc;

	if (argc < 2 || !(f = fopen(argv[1], "wb")))
		return fprintf(stderr, "usage: pq_bench <out.parquet> <rows>\n"), 2;
	double t0 = now();
	if ((rc = rn_pq_writer_create(&w, cols, 6, NULL)))
		return fprintf(stderr, "create: %s\n", rn_strerror(rc)), 1;
	for (long long i = 0; i < n; i++) {
		long long d = (i * 2654435761LL) % 1000;
		int dl = snprintf(dev, sizeof(dev), "dev-%04lld", d);
		int pl = snprintf(
			payload, sizeof(payload),
			"seq=%010lld dev=%04lld temp=%lld.%lld status=%s lorem ipsum dolor "
			"sit amet, consectetur adipiscing elit",
			i, d, i % 50, i % 10, i % 7 == 0 ? "WARN" : "OK");
		if ((rc = rn_pq_put_i64(w, 0, 1700000000000000LL + i * 1000)) ||
		    (rc = rn_pq_put_bytes(w, 1, dev, (size_t)dl)) ||
		    (rc = rn_pq_put_i64(w, 2, i)) ||
		    (rc = rn_pq_put_double(w, 3, (double)((i * 37) % 10007) / 100.0)) ||
		    (rc = rn_pq_put_double(w, 4, (double)i * 0.001)) ||
		    (rc = rn_pq_put_bytes(w, 5, payload, (size_t)pl)) || (rc = rn_pq_row_end(w)))
			return fprintf(stderr, "row %lld: %s\n", i, rn_strerror(rc)), 1;
		if (rn_pq_row_groups(w) != groups) {
			groups = rn_pq_row_groups(w);
			if ((rc = rn_pq_take(w, &out)) || (rc = drain(&out, f)))
				return fprintf(stderr, "take: %s\n", rn_strerror(rc)), 1;
		}
	}
	groups = rn_pq_row_groups(w);
	if ((rc = rn_pq_finish(w, &out)) || (rc = drain(&out, f)) || fclose(f))
		return fprintf(stderr, "finish: %s\n", rn_strerror(rc)), 1;
	printf("%.3f %zu\n", now() - t0, groups + 1);
	rn_pq_writer_destroy(w);
	rn_buf_free(&out);
	return 0;
}
