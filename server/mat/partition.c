/* Partition values and paths; see partition.h. */
#include "partition.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rn_err.h"
#include "rn_json.h"

static const char hex[] = "0123456789ABCDEF";

static int pct(struct rn_buf *out, unsigned char c)
{
	char e[3] = {'%', hex[c >> 4], hex[c & 15]};
	return rn_buf_append(out, e, 3);
}

int rn_part_escape(struct rn_buf *out, const char *s, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || strchr("\"#%'*/:=?\\{[]^", c))
			rc = pct(out, c);
		else
			rc = rn_buf_append_u8(out, c);
	}
	return rc;
}

int rn_part_uri(struct rn_buf *out, const char *p, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)p[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~!$&'()*+,;=:@/", c))
			rc = rn_buf_append_u8(out, c);
		else
			rc = pct(out, c);
	}
	return rc;
}

static int civil(struct rn_buf *out, int64_t secs, int with_time, int64_t frac_us)
{
	time_t t = (time_t)secs;
	struct tm tm;
	char tmp[48];
	if (!gmtime_r(&t, &tm))
		return RN_EINVAL;
	size_t n = strftime(tmp, sizeof(tmp), with_time ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d", &tm);
	int rc = rn_buf_append(out, tmp, n);
	if (!rc && frac_us)
		rc = rn_buf_printf(out, ".%06lld", (long long)frac_us);
	return rc;
}

int rn_part_date(struct rn_buf *out, int64_t days)
{
	return civil(out, days * 86400, 0, 0);
}

int rn_part_timestamp(struct rn_buf *out, int64_t us)
{
	int64_t s = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
	return civil(out, s, 1, us - s * 1000000);
}

static int part_type_ok(enum rn_type t)
{
	return t == RN_T_STRING || t == RN_T_LONG || t == RN_T_INT || t == RN_T_SHORT ||
	       t == RN_T_BYTE || t == RN_T_DATE || t == RN_T_BOOL;
}

int rn_part_spec_check(const struct rn_schema *s, const struct rn_part_spec *spec, int *derive,
		       char *err, size_t cap)
{
	const struct rn_field *cols = s->root.fields;
	size_t n = s->root.nfields;
	char tn[64];

	if (derive)
		for (size_t i = 0; i < n; i++)
			derive[i] = -1;
	if (spec->ncolumns > RN_PART_MAX_COLUMNS) {
		snprintf(err, cap, "partition_by: at most %d columns", RN_PART_MAX_COLUMNS);
		return RN_EINVAL;
	}
	if (spec->ncolumns && spec->ncolumns >= n) {
		snprintf(err, cap,
			 "partition_by: at least one column must not be a partition "
			 "column (data files hold the others)");
		return RN_EINVAL;
	}
	for (size_t i = 0; i < spec->ncolumns; i++) {
		const char *c = spec->columns[i];
		int k = rn_schema_find(s, c, strlen(c));
		if (k < 0) {
			snprintf(err, cap, "partition_by: no column '%s'", c);
			return RN_EINVAL;
		}
		if (!part_type_ok(cols[k].type)) {
			snprintf(err, cap,
				 "partition_by: column '%s' is %s; a partition column "
				 "must be string, long, integer, short, byte, date or boolean",
				 c, rn_type_name(&cols[k], tn, sizeof(tn)));
			return RN_EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(spec->columns[j], c)) {
				snprintf(err, cap, "partition_by: column '%s' named twice", c);
				return RN_EINVAL;
			}
	}
	for (size_t i = 0; i < spec->nderived; i++) {
		const struct rn_part_derived *d = &spec->derived[i];
		int k = rn_schema_find(s, d->column, strlen(d->column));
		int src = rn_schema_find(s, d->from, strlen(d->from));
		if (k < 0) {
			snprintf(err, cap, "column '%s' (from = \"%s\"): no such column", d->column,
				 d->from);
			return RN_EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(spec->derived[j].column, d->column)) {
				snprintf(err, cap, "column '%s': derived twice", d->column);
				return RN_EINVAL;
			}
		if (src < 0 && !strcmp(d->from, "principal")) {
			if (cols[k].type != RN_T_STRING) {
				snprintf(err, cap,
					 "column '%s': from = \"principal\" needs type string, "
					 "not %s",
					 d->column, rn_type_name(&cols[k], tn, sizeof(tn)));
				return RN_EINVAL;
			}
			if (derive)
				derive[k] = RN_PART_FROM_PRINCIPAL;
			continue;
		}
		if (cols[k].type != RN_T_DATE) {
			snprintf(err, cap,
				 "column '%s': from = \"%s\" needs type date (the UTC day "
				 "of a timestamp), not %s",
				 d->column, d->from, rn_type_name(&cols[k], tn, sizeof(tn)));
			return RN_EINVAL;
		}
		if (src < 0 && !strcmp(d->from, "event_time")) {
			if (derive)
				derive[k] = RN_PART_FROM_ENVELOPE;
			continue;
		}
		if (src < 0) {
			snprintf(err, cap,
				 "column '%s': from = \"%s\": no such column (only "
				 "\"event_time\" may name the agent envelope's event time, "
				 "\"principal\" "
				 "the writer)",
				 d->column, d->from);
			return RN_EINVAL;
		}
		if (cols[src].type != RN_T_TIMESTAMP) {
			snprintf(err, cap,
				 "column '%s': from = \"%s\": the source must be a "
				 "timestamp column, not %s",
				 d->column, d->from, rn_type_name(&cols[src], tn, sizeof(tn)));
			return RN_EINVAL;
		}
		if (src >= k) {
			snprintf(err, cap,
				 "column '%s': from = \"%s\": declare the source column "
				 "before the column derived from it",
				 d->column, d->from);
			return RN_EINVAL;
		}
		if (!cols[k].nullable && cols[src].nullable) {
			snprintf(err, cap,
				 "column '%s' is NOT NULL but its source '%s' is nullable",
				 d->column, d->from);
			return RN_EINVAL;
		}
		if (derive)
			derive[k] = src;
	}
	return 0;
}

int64_t rn_part_day(int64_t us)
{
	const int64_t day = 86400000000LL;
	return us >= 0 ? us / day : -((-us + day - 1) / day);
}

int rn_part_text(struct rn_buf *out, enum rn_type t, int64_t v)
{
	switch (t) {
	case RN_T_DATE: return rn_part_date(out, v);
	case RN_T_BOOL: return rn_buf_append_str(out, v ? "true" : "false");
	case RN_T_LONG:
	case RN_T_INT:
	case RN_T_SHORT:
	case RN_T_BYTE: return rn_buf_printf(out, "%lld", (long long)v);
	default: return RN_EINVAL;
	}
}

int rn_part_layout(struct rn_buf *dir, struct rn_buf *pv, const char *const *cols,
		   const struct rn_part_val *vals, size_t n)
{
	int rc = rn_buf_append_u8(pv, '{');
	for (size_t i = 0; i < n && !rc; i++) {
		int null = vals[i].is_null || !vals[i].len;
		if (i && !(rc = rn_buf_append_u8(dir, '/')))
			rc = rn_buf_append_u8(pv, ',');
		if (!rc)
			rc = rn_part_escape(dir, cols[i], strlen(cols[i]));
		if (!rc)
			rc = rn_buf_append_u8(dir, '=');
		if (!rc)
			rc = null ? rn_buf_append_str(dir, RN_PART_NULL_DIR)
				  : rn_part_escape(dir, vals[i].text, vals[i].len);
		if (!rc)
			rc = rn_json_put_str(pv, cols[i], strlen(cols[i]));
		if (!rc)
			rc = rn_buf_append_u8(pv, ':');
		if (!rc)
			rc = null ? rn_buf_append_str(pv, "null")
				  : rn_json_put_str(pv, vals[i].text, vals[i].len);
	}
	return rc ? rc : rn_buf_append_u8(pv, '}');
}
