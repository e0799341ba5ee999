/* Delta add.stats from the writer's statistics; see parquet.h. Every append is checked (the
 * first failure is kept in `rc`): under memory pressure the result is NULL, never a text
 * with a piece missing. */
#include <string.h>
#include <time.h>

#include "parquet.h"
#include "rn_buf.h"
#include "rn_json.h"

static int put_ts(struct rn_buf *b, int64_t us)
{
	time_t s = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
	int64_t ms = (us - (int64_t)s * 1000000) / 1000;
	struct tm tm;
	char tmp[40];
	gmtime_r(&s, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	return rn_buf_printf(b, "\"%s.%03lldZ\"", tmp, (long long)ms);
}

static int put_date(struct rn_buf *b, int64_t days)
{
	time_t s = (time_t)(days * 86400);
	struct tm tm;
	char tmp[16];
	gmtime_r(&s, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%d", &tm);
	return rn_buf_printf(b, "\"%s\"", tmp);
}

char *rn_pq_delta_stats(const struct rn_pq_writer *w, const struct rn_pq_col *cols, size_t ncols,
			int64_t rows)
{
	struct rn_buf b = {0};
	struct rn_pq_colstats st;
	const char *sep;
	char dec[64];

	int rc = rn_buf_printf(&b, "{\"numRecords\":%lld", (long long)rows);
	for (int pass = 0; pass < 3 && !rc; pass++) {
		rc = rn_buf_append_str(&b, pass == 0   ? ",\"minValues\":{"
					   : pass == 1 ? ",\"maxValues\":{"
						       : ",\"nullCount\":{");
		sep = "";
		for (size_t i = 0; i < ncols && !rc; i++) {
			const struct rn_pq_col *c = &cols[i];
			if (c->type == RN_PQ_STRUCT || c->type == RN_PQ_LIST ||
			    c->type == RN_PQ_MAP || rn_pq_node_stats(w, c, &st))
				continue;
			if (pass == 2) {
				rc = rn_buf_append_str(&b, sep);
				rc = rc ? rc : rn_json_put_str(&b, c->name, strlen(c->name));
				rc = rc ? rc : rn_buf_printf(&b, ":%lld", (long long)st.nulls);
				sep = ",";
				continue;
			}
			if (pass == 0 ? !st.has_min : !st.has_max)
				continue;
			rc = rn_buf_append_str(&b, sep);
			rc = rc ? rc : rn_json_put_str(&b, c->name, strlen(c->name));
			rc = rc ? rc : rn_buf_append_u8(&b, ':');
			sep = ",";
			if (rc)
				break;
			switch (c->type) {
			case RN_PQ_STRING:
				if (pass == 0)
					rc = rn_json_put_str(&b, st.min_s, st.min_len);
				else
					rc = rn_json_put_str(&b, st.max_s, st.max_len);
				break;
			case RN_PQ_TIMESTAMP:
				rc = put_ts(&b, pass == 0 ? st.min_i : st.max_i);
				break;
			case RN_PQ_DATE: rc = put_date(&b, pass == 0 ? st.min_i : st.max_i); break;
			case RN_PQ_DOUBLE:
				rc = rn_buf_printf(&b, "%.17g", pass == 0 ? st.min_d : st.max_d);
				break;
			case RN_PQ_FLOAT:
				rc = rn_buf_printf(&b, "%.9g", pass == 0 ? st.min_d : st.max_d);
				break;
			case RN_PQ_DECIMAL:
				rn_pq_decimal_format(dec, sizeof(dec),
						     pass == 0 ? st.min_dec : st.max_dec, c->scale);
				rc = rn_buf_append_str(&b, dec);
				break;
			default:
				rc = rn_buf_printf(&b, "%lld",
						   (long long)(pass == 0 ? st.min_i : st.max_i));
				break;
			}
		}
		rc = rc ? rc : rn_buf_append_u8(&b, '}');
	}
	if (rc || rn_buf_append_str(&b, "}") || rn_buf_append_u8(&b, 0)) {
		rn_buf_free(&b);
		return NULL;
	}
	return (char *)b.data;
}
