/*
 * Writes Parquet files with every Delta type and nested shapes for the independent-reader
 * test (tests/integration/parquet_types.test.mjs), which regenerates the same values from the
 * row number and compares them exactly. Every value here is a pure function of the row
 * number i; keep it in step with the JS generators. Also writes the Delta-ready statistics
 * of each column (rn_pq_col_stats / rn_pq_node_stats) as JSON for the test to check.
 * Usage: pq_write_types <dir>   (writes types.parquet, nested.parquet, stats.json)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parquet.h"
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_i128.h"

#define TYPES_ROWS 5000
#define NESTED_ROWS 3000

typedef rn_i128 i128;

enum {
	C_ID,
	C_S,
	C_SPLAIN,
	C_SFALL,
	C_BIN,
	C_L,
	C_N,
	C_SH,
	C_BY,
	C_F,
	C_D,
	C_B,
	C_DT,
	C_TS,
	C_TSN,
	C_D9,
	C_D18,
	C_D25,
	C_D38,
	C_COUNT
};

static const struct rn_pq_col types_cols[C_COUNT] = {
	[C_ID] = {.name = "id", .type = RN_PQ_INT64},
	[C_S] = {.name = "s", .type = RN_PQ_STRING, .optional = 1},
	[C_SPLAIN] = {.name = "s_plain",
		      .type = RN_PQ_STRING,
		      .optional = 1,
		      .dict = RN_PQ_DICT_OFF},
	[C_SFALL] = {.name = "s_fallback", .type = RN_PQ_STRING},
	[C_BIN] = {.name = "bin", .type = RN_PQ_BINARY, .optional = 1},
	[C_L] = {.name = "l", .type = RN_PQ_INT64, .optional = 1},
	[C_N] = {.name = "n", .type = RN_PQ_INT32},
	[C_SH] = {.name = "sh", .type = RN_PQ_INT16},
	[C_BY] = {.name = "by", .type = RN_PQ_INT8},
	[C_F] = {.name = "f", .type = RN_PQ_FLOAT, .optional = 1},
	[C_D] = {.name = "d", .type = RN_PQ_DOUBLE},
	[C_B] = {.name = "b", .type = RN_PQ_BOOL, .optional = 1},
	[C_DT] = {.name = "dt", .type = RN_PQ_DATE},
	[C_TS] = {.name = "ts", .type = RN_PQ_TIMESTAMP},
	[C_TSN] = {.name = "tsn", .type = RN_PQ_TIMESTAMP_NTZ},
	[C_D9] = {.name = "d9", .type = RN_PQ_DECIMAL, .precision = 9, .scale = 2},
	[C_D18] = {.name = "d18", .type = RN_PQ_DECIMAL, .precision = 18, .scale = 6},
	[C_D25] = {.name = "d25", .type = RN_PQ_DECIMAL, .precision = 25, .scale = 3},
	[C_D38] =
		{.name = "d38", .type = RN_PQ_DECIMAL, .optional = 1, .precision = 38, .scale = 10},
};

static const char *const words[6] = {
	"",
	"alpha",
	"\xc3\xbcn\xc3\xaf"
	"c\xc3\xb8"
	"d\xc3\xa9 \xe2\x9c\x93",
	"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	"a'b\"c\\d",
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};

static i128 p10(int n)
{
	return rn_i128_pow10(n);
}

static void be16(uint8_t out[16], i128 v)
{
	rn_i128_to_be(v, out);
}

/* a * 10^n + b */
static i128 scaled(int64_t a, int n, int64_t b)
{
	i128 v = rn_i128_from_i64(a);
	while (n-- > 0)
		v = rn_i128_mul_u32(v, 10);
	return rn_i128_add(v, rn_i128_from_i64(b));
}

#define CK(x)                                                                                      \
	do {                                                                                       \
		int rc_ = (x);                                                                     \
		if (rc_) {                                                                         \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x,                 \
				rn_strerror(rc_));                                                 \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static void types_row(struct rn_pq_writer *w, long i)
{
	char tmp[64];
	uint8_t dec[16];
	CK(rn_pq_put_i64(w, C_ID, i));
	if (i % 7 != 3)
		CK(rn_pq_put_bytes(w, C_S, words[i % 6], strlen(words[i % 6])));
	if (i % 10 != 9) {
		snprintf(tmp, sizeof(tmp), "row-%ld-\xc3\xa9", i);
		CK(rn_pq_put_bytes(w, C_SPLAIN, tmp, strlen(tmp)));
	}
	/* 250 values, then 400 new ones per row group: past the 300-entry cap mid-chunk */
	if (i % 1000 < 600)
		snprintf(tmp, sizeof(tmp), "v%ld", i % 250);
	else
		snprintf(tmp, sizeof(tmp), "w%ld", i % 1000);
	CK(rn_pq_put_bytes(w, C_SFALL, tmp, strlen(tmp)));
	if (i % 5 != 0) {
		uint8_t b[4] = {(uint8_t)i, 0, 255, (uint8_t)(i >> 8)};
		CK(rn_pq_put_bytes(w, C_BIN, b, 4));
	}
	if (i == 0)
		CK(rn_pq_put_i64(w, C_L, INT64_MIN));
	else if (i == 1)
		CK(rn_pq_put_i64(w, C_L, INT64_MAX));
	else if (i % 11 == 0)
		CK(rn_pq_put_null(w, C_L));
	else
		CK(rn_pq_put_i64(w, C_L, i * 1000003LL - 2000000000LL));
	CK(rn_pq_put_i32(w, C_N,
			 i == 2   ? INT32_MIN
			 : i == 3 ? INT32_MAX
				  : (int32_t)((i * 7919) % 100000 - 50000)));
	CK(rn_pq_put_i32(w, C_SH, (int32_t)((i * 31) % 65536 - 32768)));
	CK(rn_pq_put_i32(w, C_BY, (int32_t)(i % 256 - 128)));
	if (i % 13 != 0) {
		float f = i == 4   ? NAN
			  : i == 5 ? INFINITY
			  : i == 6 ? -INFINITY
			  : i == 7 ? -0.0f
				   : (float)(i - 2500) * 0.25f;
		CK(rn_pq_put_float(w, C_F, f));
	}
	double d = i == 8    ? NAN
		   : i == 9  ? INFINITY
		   : i == 10 ? -INFINITY
		   : i == 11 ? -0.0
		   : i == 12 ? 5e-324
		   : i == 13 ? 1.7976931348623157e308
			     : (double)i / 8 - 300;
	CK(rn_pq_put_double(w, C_D, d));
	if (i % 3 != 0)
		CK(rn_pq_put_bool(w, C_B, i % 2 == 1));
	CK(rn_pq_put_i32(w, C_DT, (int32_t)((i - 2500) * 13)));
	CK(rn_pq_put_i64(w, C_TS, (i - 2500) * 3600000000123LL));
	CK(rn_pq_put_i64(w, C_TSN, (i - 2500) * 3600000000123LL + 1));
	CK(rn_pq_put_i32(w, C_D9,
			 i == 15   ? 999999999
			 : i == 16 ? -999999999
				   : (int32_t)((i * 123457) % 1999999999 - 999999999)));
	CK(rn_pq_put_i64(w, C_D18,
			 i == 17   ? 999999999999999999LL
			 : i == 18 ? -999999999999999999LL
				   : (i - 2500) * 123456789012345LL));
	be16(dec, scaled(i - 2500, 20, 7));
	CK(rn_pq_put_decimal(w, C_D25, dec));
	if (i % 17 != 0) {
		i128 v = i == 19   ? rn_i128_add(p10(38), rn_i128_from_i64(-1))
			 : i == 20 ? rn_i128_neg(rn_i128_add(p10(38), rn_i128_from_i64(-1)))
				   : scaled(i - 2500, 30, i);
		be16(dec, v);
		CK(rn_pq_put_decimal(w, C_D38, dec));
	}
	CK(rn_pq_row_end(w));
}

/* nested: see nestedRow() in the JS test */
static const struct rn_pq_col y_list[] = {
	{.name = "element", .type = RN_PQ_INT64, .optional = 1},
};
static const struct rn_pq_col inner_fields[] = {
	{.name = "x", .type = RN_PQ_DOUBLE},
	{.name = "y", .type = RN_PQ_LIST, .optional = 1, .children = y_list, .n_children = 1},
};
static const struct rn_pq_col st_fields[] = {
	{.name = "a", .type = RN_PQ_INT32, .optional = 1},
	{.name = "b", .type = RN_PQ_STRING, .optional = 1},
	{.name = "inner",
	 .type = RN_PQ_STRUCT,
	 .optional = 1,
	 .children = inner_fields,
	 .n_children = 2},
};
static const struct rn_pq_col tag_el[] = {
	{.name = "element", .type = RN_PQ_STRING, .optional = 1},
};
static const struct rn_pq_col m_kv[] = {
	{.name = "key", .type = RN_PQ_STRING},
	{.name = "value", .type = RN_PQ_INT64, .optional = 1},
};
static const struct rn_pq_col lol_inner_el[] = {
	{.name = "element", .type = RN_PQ_INT32, .optional = 1},
};
static const struct rn_pq_col lol_el[] = {
	{.name = "element",
	 .type = RN_PQ_LIST,
	 .optional = 1,
	 .children = lol_inner_el,
	 .n_children = 1},
};
static const struct rn_pq_col pq_fields[] = {
	{.name = "p", .type = RN_PQ_INT32, .optional = 1},
	{.name = "q", .type = RN_PQ_STRING, .optional = 1},
};
static const struct rn_pq_col ms_list_el[] = {
	{.name = "element",
	 .type = RN_PQ_STRUCT,
	 .optional = 1,
	 .children = pq_fields,
	 .n_children = 2},
};
static const struct rn_pq_col ms_kv[] = {
	{.name = "key", .type = RN_PQ_STRING},
	{.name = "value",
	 .type = RN_PQ_LIST,
	 .optional = 1,
	 .children = ms_list_el,
	 .n_children = 1},
};

enum { N_ID, N_ST, N_TAGS, N_M, N_LOL, N_MS, N_COUNT };
static const struct rn_pq_col nested_cols[N_COUNT] = {
	[N_ID] = {.name = "id", .type = RN_PQ_INT64},
	[N_ST] = {.name = "st",
		  .type = RN_PQ_STRUCT,
		  .optional = 1,
		  .children = st_fields,
		  .n_children = 3},
	[N_TAGS] = {.name = "tags",
		    .type = RN_PQ_LIST,
		    .optional = 1,
		    .children = tag_el,
		    .n_children = 1},
	[N_M] = {.name = "m", .type = RN_PQ_MAP, .optional = 1, .children = m_kv, .n_children = 2},
	[N_LOL] = {.name = "lol",
		   .type = RN_PQ_LIST,
		   .optional = 1,
		   .children = lol_el,
		   .n_children = 1},
	[N_MS] = {.name = "ms",
		  .type = RN_PQ_MAP,
		  .optional = 1,
		  .children = ms_kv,
		  .n_children = 2},
};

/* "<prefix><a>" */
static void put_str(struct rn_pq_writer *w, size_t col, const char *prefix, long a)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s%ld", prefix, a);
	CK(rn_pq_put_bytes(w, col, tmp, strlen(tmp)));
}

static void nested_row(struct rn_pq_writer *w, long i)
{
	CK(rn_pq_put_i64(w, N_ID, i));
	/* st */
	if (i % 10 != 0) {
		CK(rn_pq_begin(w, N_ST));
		if (i % 4 != 0)
			CK(rn_pq_put_i32(w, 0, (int32_t)i));
		if (i % 5 != 1)
			put_str(w, 1, "b", i);
		if (i % 6 != 0) {
			CK(rn_pq_begin(w, 2));
			CK(rn_pq_put_double(w, 0, i * 0.5));
			if (i % 7 != 0) {
				CK(rn_pq_begin(w, 1));
				for (long k = 0; k < i % 4; k++) {
					if (k == 2)
						CK(rn_pq_put_null(w, 0));
					else
						CK(rn_pq_put_i64(w, 0, i * 10 + k));
				}
				CK(rn_pq_end(w));
			}
			CK(rn_pq_end(w));
		}
		CK(rn_pq_end(w));
	}
	/* tags */
	if (i % 9 == 0) {
		CK(rn_pq_put_null(w, N_TAGS));
	} else {
		CK(rn_pq_begin(w, N_TAGS));
		if (i % 9 != 1)
			for (long k = 0; k < i % 4 + 1; k++) {
				if (k == 1 && i % 3 == 0)
					CK(rn_pq_put_null(w, 0));
				else
					put_str(w, 0, "t", (i + k) % 5);
			}
		CK(rn_pq_end(w));
	}
	/* m: map<string, long> */
	if (i % 8 != 0) {
		CK(rn_pq_begin(w, N_M));
		if (i % 8 != 1)
			for (long k = 0; k < i % 3 + 1; k++) {
				put_str(w, 0, "k", k);
				if (k != 1) /* k == 1: the value is left out, so null */
					CK(rn_pq_put_i64(w, 1, i * 100 + k));
			}
		CK(rn_pq_end(w));
	}
	/* lol: list<list<int>> */
	if (i % 11 != 0) {
		CK(rn_pq_begin(w, N_LOL));
		if (i % 11 != 1)
			for (long j = 0; j < i % 3 + 1; j++) {
				if (j == 1 && i % 2 == 0) {
					CK(rn_pq_put_null(w, 0));
					continue;
				}
				CK(rn_pq_begin(w, 0));
				if (j != 2)
					for (long e = 0; e < i % 3 + 1; e++) {
						if (e == 1)
							CK(rn_pq_put_null(w, 0));
						else
							CK(rn_pq_put_i32(
								w, 0, (int32_t)(i + j * 10 + e)));
					}
				CK(rn_pq_end(w));
			}
		CK(rn_pq_end(w));
	}
	/* ms: map<string, list<struct<p int, q string>>> */
	if (i % 12 != 0) {
		CK(rn_pq_begin(w, N_MS));
		for (long k = 0; k < i % 3; k++) {
			put_str(w, 0, "m", k);
			if (k == 0) {
				CK(rn_pq_put_null(w, 1));
				continue;
			}
			CK(rn_pq_begin(w, 1));
			for (long e = 0; e < (i / 3 + k) % 3; e++) {
				if (e == 1 && i % 2 == 1) {
					CK(rn_pq_put_null(w, 0));
					continue;
				}
				CK(rn_pq_begin(w, 0));
				if ((i + k + e) % 4 != 0)
					CK(rn_pq_put_i32(w, 0, (int32_t)e));
				put_str(w, 1, "q", e);
				CK(rn_pq_end(w));
			}
			CK(rn_pq_end(w));
		}
		CK(rn_pq_end(w));
	}
	CK(rn_pq_row_end(w));
}

static void write_file(const char *dir, const char *name, const struct rn_buf *b)
{
	char path[1024];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "wb")) || fwrite(b->data, 1, b->len, f) != b->len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void stat_json(struct rn_buf *j, const char *name, const struct rn_pq_col *c,
		      const struct rn_pq_colstats *st)
{
	char a[64], b[64];
	rn_buf_printf(j, "\"%s\":{\"nulls\":%lld,\"nans\":%lld", name, (long long)st->nulls,
		      (long long)st->nans);
	if (st->has_min) {
		switch (c->type) {
		case RN_PQ_DOUBLE:
		case RN_PQ_FLOAT:
			rn_buf_printf(j, ",\"min\":%.17g,\"max\":%.17g", st->min_d, st->max_d);
			break;
		case RN_PQ_STRING:
			rn_buf_printf(j, ",\"min_len\":%zu,\"max_len\":%zu", st->min_len,
				      st->max_len);
			break;
		case RN_PQ_DECIMAL:
			rn_pq_decimal_format(a, sizeof(a), st->min_dec, c->scale);
			rn_pq_decimal_format(b, sizeof(b), st->max_dec, c->scale);
			rn_buf_printf(j, ",\"min\":\"%s\",\"max\":\"%s\"", a, b);
			break;
		default:
			rn_buf_printf(j, ",\"min\":\"%lld\",\"max\":\"%lld\"", (long long)st->min_i,
				      (long long)st->max_i);
		}
	}
	rn_buf_append_str(j, "}");
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	struct rn_pq_options o = {.row_group_rows = 1000, .page_bytes = 1024, .dict_entries = 300};
	struct rn_pq_writer *w;
	struct rn_pq_colstats st;
	struct rn_buf f = {0}, j = {0};

	CK(rn_pq_writer_create(&w, types_cols, C_COUNT, &o));
	for (long i = 0; i < TYPES_ROWS; i++) {
		types_row(w, i);
		if (i % 1500 ==
		    0) /* hand out finished row groups early, as a streaming caller would */
			CK(rn_pq_take(w, &f));
	}
	CK(rn_pq_finish(w, &f));
	write_file(dir, "types.parquet", &f);
	rn_buf_append_str(&j, "{\"types\":{");
	for (size_t c = 0; c < C_COUNT; c++) {
		CK(rn_pq_col_stats(w, c, &st));
		if (c)
			rn_buf_append_str(&j, ",");
		stat_json(&j, types_cols[c].name, &types_cols[c], &st);
	}
	rn_pq_writer_destroy(w);

	rn_buf_reset(&f);
	o.row_group_rows = 700;
	o.dict_entries = 0;
	CK(rn_pq_writer_create(&w, nested_cols, N_COUNT, &o));
	for (long i = 0; i < NESTED_ROWS; i++)
		nested_row(w, i);
	CK(rn_pq_finish(w, &f));
	write_file(dir, "nested.parquet", &f);
	rn_buf_append_str(&j, "},\"nested\":{");
	CK(rn_pq_node_stats(w, &st_fields[0], &st));
	stat_json(&j, "st.a", &st_fields[0], &st);
	CK(rn_pq_node_stats(w, &inner_fields[0], &st));
	rn_buf_append_str(&j, ",");
	stat_json(&j, "st.inner.x", &inner_fields[0], &st);
	const char *groups[] = {"st", "tags", "m", "lol", "ms"};
	for (size_t c = 1; c < N_COUNT; c++) {
		CK(rn_pq_col_stats(w, c, &st));
		rn_buf_printf(&j, ",\"%s\":{\"nulls\":%lld}", groups[c - 1], (long long)st.nulls);
	}
	rn_buf_append_str(&j, "}}\n");
	write_file(dir, "stats.json", &j);
	rn_pq_writer_destroy(w);
	rn_buf_free(&f);
	rn_buf_free(&j);
	return 0;
}
