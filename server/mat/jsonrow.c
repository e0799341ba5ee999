/* JSON records into typed rows; see jsonrow.h. */
#include "jsonrow.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_buf.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"
#include "rn_time.h"

/* The years 1..9999 in microseconds and in days since 1970-01-01. */
#define TS_MIN_US (-62135596800000000LL)
#define TS_MAX_US 253402300799999999LL
#define DATE_MIN (-719162LL)
#define DATE_MAX 2932896LL

struct dec {
	const struct rn_row_sink *sink;
	char *err;
	size_t cap;
	char path[256];
	size_t plen;
	struct rn_buf tmp;           /* decoded strings */
	const struct rn_field *root; /* the record's struct (the table) */
};

__attribute__((format(printf, 2, 3))) static int bad(struct dec *d, const char *fmt, ...)
{
	char why[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(d->err, d->cap, "%s: %s", d->plen ? d->path : "(record)", why);
	return RN_EINVAL;
}

/* Appends ".name" or "[i]" to the path; returns the old length to restore. */
static size_t push(struct dec *d, const char *name, size_t nlen, long idx)
{
	size_t old = d->plen;
	int n;
	if (name)
		n = snprintf(d->path + d->plen, sizeof(d->path) - d->plen, "%s%.*s",
			     d->plen ? "." : "", (int)nlen, name);
	else
		n = snprintf(d->path + d->plen, sizeof(d->path) - d->plen, "[%ld]", idx);
	if (n > 0)
		d->plen = d->plen + (size_t)n < sizeof(d->path) ? d->plen + (size_t)n
								: sizeof(d->path) - 1;
	return old;
}

static void pop(struct dec *d, size_t old)
{
	d->plen = old;
	d->path[old] = 0;
}

static int is_null(struct rn_json_span v)
{
	return rn_json_span_eq(v, "null");
}

static int is_str(struct rn_json_span v)
{
	return v.len >= 2 && v.p[0] == '"';
}

/* A string value's text, decoded, in d->tmp (NUL-terminated). */
static int text(struct dec *d, struct rn_json_span v)
{
	rn_buf_reset(&d->tmp);
	int rc = rn_json_string(v, &d->tmp);
	if (rc == RN_EINVAL)
		return bad(d, "%s", "bad string escape");
	return rc;
}

static int integer(struct dec *d, struct rn_json_span v, int64_t lo, int64_t hi, int64_t *out)
{
	int rc;
	if (is_str(v)) {
		if ((rc = text(d, v)))
			return rc;
		v = (struct rn_json_span){(const char *)d->tmp.data, d->tmp.len};
		for (size_t i = 0; i < v.len; i++)
			if (!(v.p[i] >= '0' && v.p[i] <= '9') && !(i == 0 && v.p[i] == '-'))
				return bad(d, "%s", "not an integer");
	}
	rc = rn_json_int64(v, out);
	if (rc == RN_ERANGE || (!rc && (*out < lo || *out > hi)))
		return bad(d, "%s", "integer out of range for the column");
	if (rc)
		return bad(d, "%s", "not an integer");
	return 0;
}

static int real(struct dec *d, struct rn_json_span v, double *out)
{
	char tmp[64];
	char *e;
	if (is_str(v)) {
		if (rn_json_span_eq(v, "\"NaN\""))
			*out = NAN;
		else if (rn_json_span_eq(v, "\"Infinity\""))
			*out = INFINITY;
		else if (rn_json_span_eq(v, "\"-Infinity\""))
			*out = -INFINITY;
		else
			return bad(d, "%s", "not a number");
		return 0;
	}
	if (v.len == 0 || v.len >= sizeof(tmp) ||
	    !((v.p[0] >= '0' && v.p[0] <= '9') || v.p[0] == '-'))
		return bad(d, "%s", "not a number");
	memcpy(tmp, v.p, v.len);
	tmp[v.len] = 0;
	*out = strtod(tmp, &e);
	if (*e)
		return bad(d, "%s", "not a number");
	return 0;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decodes base64 (standard or URL alphabet, padding optional) in place in d->tmp. */
static int base64(struct dec *d)
{
	uint8_t *p = d->tmp.data;
	size_t n = d->tmp.len, o = 0, bits = 0;
	uint32_t acc = 0;
	while (n && p[n - 1] == '=')
		n--;
	for (size_t i = 0; i < n; i++) {
		int v = b64val(p[i]);
		if (v < 0)
			return bad(d, "%s", "not base64");
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			p[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits >= 6)
		return bad(d, "%s", "truncated base64");
	d->tmp.len = o;
	return 0;
}

static int decimal(struct dec *d, const struct rn_field *f, struct rn_json_span v, rn_i128 *out)
{
	const char *why;
	int rc;

	if (is_str(v)) {
		if ((rc = text(d, v)))
			return rc;
		v = (struct rn_json_span){(const char *)d->tmp.data, d->tmp.len};
	}
	if (rn_decimal_parse(f, v.p ? v.p : "", v.len, out, &why))
		return bad(d, "%s", why);
	return 0;
}

static int value(struct dec *d, const struct rn_field *f, struct rn_json_span v);

struct members {
	struct dec *d;
	const struct rn_field *f;
	struct rn_json_span *vals;
	uint8_t *seen;
};

static int member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct members *m = ctx;
	for (size_t i = 0; i < m->f->nfields; i++) {
		const char *name = m->f->fields[i].name;
		if (strlen(name) == k.len && !memcmp(name, k.p, k.len)) {
			if (m->seen[i])
				return bad(m->d, "member '%s' given twice", name);
			m->seen[i] = 1;
			m->vals[i] = v;
			return 0;
		}
	}
	char key[80];
	snprintf(key, sizeof(key), "%.*s", (int)(k.len < 64 ? k.len : 64), k.p);
	return bad(m->d, "unknown field '%s'", key);
}

static int object(struct dec *d, const struct rn_field *f, struct rn_json_span v)
{
	struct members m = {d, f, NULL, NULL};
	int rc = 0;

	if (!v.len || v.p[0] != '{')
		return bad(d, "%s", "expected an object");
	if (!(m.vals = rn_calloc(f->nfields ? f->nfields : 1, sizeof(*m.vals))) ||
	    !(m.seen = rn_calloc(f->nfields ? f->nfields : 1, 1))) {
		rc = RN_ENOMEM;
		goto out;
	}
	if ((rc = rn_json_object_walk(v, member, &m))) {
		if (rc != RN_EINVAL || !*d->err)
			rc = rc == RN_EINVAL ? bad(d, "%s", "malformed object") : rc;
		goto out;
	}
	if ((rc = d->sink->begin(d->sink->ctx, f, f->nfields)))
		goto out;
	for (size_t i = 0; i < f->nfields; i++) {
		const struct rn_field *x = &f->fields[i];
		size_t old = push(d, x->name, strlen(x->name), 0);
		if (!m.seen[i] && f == d->root && d->sink->missing &&
		    (rc = d->sink->missing(d->sink->ctx, x)) != RN_ENOTFOUND) {
			if (rc)
				goto out;
		} else if (!m.seen[i] || is_null(m.vals[i])) {
			rc = x->nullable ? d->sink->null(d->sink->ctx, x)
					 : bad(d, "%s",
					       m.seen[i] ? "null in a NOT NULL column"
							 : "missing NOT NULL column");
		} else {
			rc = value(d, x, m.vals[i]);
		}
		if (rc)
			goto out;
		pop(d, old);
	}
	rc = d->sink->end(d->sink->ctx, f);
out:
	rn_free(m.vals);
	rn_free(m.seen);
	return rc;
}

struct elems {
	struct dec *d;
	const struct rn_field *f;
	size_t n;
	int count_only;
};

static int element(void *ctx, size_t i, struct rn_json_span v)
{
	struct elems *e = ctx;
	struct dec *d = e->d;
	const struct rn_field *x = &e->f->fields[0];
	int rc;
	e->n++;
	if (e->count_only)
		return 0;
	size_t old = push(d, NULL, 0, (long)i);
	if (is_null(v))
		rc = x->nullable ? d->sink->null(d->sink->ctx, x) : bad(d, "%s", "null element");
	else
		rc = value(d, x, v);
	if (!rc)
		pop(d, old);
	return rc;
}

static int array(struct dec *d, const struct rn_field *f, struct rn_json_span v)
{
	struct elems e = {d, f, 0, 1};
	int rc;
	if (!v.len || v.p[0] != '[' || rn_json_array_walk(v, element, &e))
		return bad(d, "%s", "expected an array");
	if ((rc = d->sink->begin(d->sink->ctx, f, e.n)))
		return rc;
	e.count_only = 0;
	e.n = 0;
	if ((rc = rn_json_array_walk(v, element, &e)))
		return rc;
	return d->sink->end(d->sink->ctx, f);
}

struct entries {
	struct dec *d;
	const struct rn_field *f;
	size_t n;
	int count_only;
};

static int entry(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct entries *e = ctx;
	struct dec *d = e->d;
	const struct rn_field *kf = &e->f->fields[0], *vf = &e->f->fields[1];
	int rc;
	e->n++;
	if (e->count_only)
		return 0;
	size_t old = push(d, k.p, k.len < 64 ? k.len : 64, 0);
	/* the key arrives without quotes; give the decoders a JSON string (or, for integral
	 * keys, the bare digits) */
	char kbuf[160];
	struct rn_json_span ks;
	if (kf->type == RN_T_STRING || kf->type == RN_T_BINARY || kf->type >= RN_T_DATE) {
		if (k.len + 2 >= sizeof(kbuf) && kf->type != RN_T_STRING)
			return bad(d, "%s", "map key too long");
		if (kf->type == RN_T_STRING) {
			/* decode the escapes of the raw key directly */
			ks = (struct rn_json_span){k.p - 1, k.len + 2};
		} else {
			snprintf(kbuf, sizeof(kbuf), "\"%.*s\"", (int)k.len, k.p);
			ks = (struct rn_json_span){kbuf, k.len + 2};
		}
	} else {
		ks = (struct rn_json_span){k.p, k.len};
	}
	if ((rc = value(d, kf, ks)))
		return rc;
	if (is_null(v))
		rc = vf->nullable ? d->sink->null(d->sink->ctx, vf)
				  : bad(d, "%s", "null map value");
	else
		rc = value(d, vf, v);
	if (!rc)
		pop(d, old);
	return rc;
}

static int map(struct dec *d, const struct rn_field *f, struct rn_json_span v)
{
	struct entries e = {d, f, 0, 1};
	int rc;
	if (!v.len || v.p[0] != '{' || rn_json_object_walk(v, entry, &e))
		return bad(d, "%s", "expected an object for a map");
	if ((rc = d->sink->begin(d->sink->ctx, f, e.n)))
		return rc;
	e.count_only = 0;
	e.n = 0;
	if ((rc = rn_json_object_walk(v, entry, &e)))
		return rc;
	return d->sink->end(d->sink->ctx, f);
}

static int value(struct dec *d, const struct rn_field *f, struct rn_json_span v)
{
	const struct rn_row_sink *s = d->sink;
	int64_t i = 0;
	double x = 0;
	rn_i128 u = rn_i128_from_i64(0);
	int rc;

	switch (f->type) {
	case RN_T_LONG:
		if ((rc = integer(d, v, INT64_MIN, INT64_MAX, &i)))
			return rc;
		return s->i64(s->ctx, f, i);
	case RN_T_INT:
		if ((rc = integer(d, v, INT32_MIN, INT32_MAX, &i)))
			return rc;
		return s->i64(s->ctx, f, i);
	case RN_T_SHORT:
		if ((rc = integer(d, v, INT16_MIN, INT16_MAX, &i)))
			return rc;
		return s->i64(s->ctx, f, i);
	case RN_T_BYTE:
		if ((rc = integer(d, v, INT8_MIN, INT8_MAX, &i)))
			return rc;
		return s->i64(s->ctx, f, i);
	case RN_T_BOOL:
		if (rn_json_span_eq(v, "true") || rn_json_span_eq(v, "false"))
			return s->i64(s->ctx, f, v.p[0] == 't');
		return bad(d, "%s", "expected true or false");
	case RN_T_FLOAT:
	case RN_T_DOUBLE:
		if ((rc = real(d, v, &x)))
			return rc;
		if (f->type == RN_T_FLOAT && isfinite(x) && fabs(x) > 3.4028234663852886e38)
			return bad(d, "%s", "out of range for float");
		return s->f64(s->ctx, f, x);
	case RN_T_STRING:
		if (!is_str(v))
			return bad(d, "%s", "expected a string");
		if ((rc = text(d, v)))
			return rc;
		return s->bytes(s->ctx, f, d->tmp.data ? d->tmp.data : (const uint8_t *)"",
				d->tmp.len);
	case RN_T_BINARY:
		if (!is_str(v))
			return bad(d, "%s", "expected base64 text");
		if ((rc = text(d, v)) || (rc = base64(d)))
			return rc;
		return s->bytes(s->ctx, f, d->tmp.data ? d->tmp.data : (const uint8_t *)"",
				d->tmp.len);
	case RN_T_DATE:
		if (is_str(v)) {
			int32_t days;
			if ((rc = text(d, v)))
				return rc;
			if (rn_time_date((const char *)d->tmp.data, d->tmp.len, &days))
				return bad(d, "%s",
					   "not a date (YYYY-MM-DD or days since 1970-01-01)");
			return s->i64(s->ctx, f, days);
		}
		if ((rc = integer(d, v, DATE_MIN, DATE_MAX, &i)))
			return rc;
		return s->i64(s->ctx, f, i);
	case RN_T_TIMESTAMP:
	case RN_T_TIMESTAMP_NTZ:
		/* years 1..9999: what every reader can represent */
		if (!is_str(v)) {
			if ((rc = integer(d, v, TS_MIN_US, TS_MAX_US, &i)))
				return rc;
			return s->i64(s->ctx, f, i);
		}
		{
			if ((rc = text(d, v)))
				return rc;
			const char *t = (const char *)d->tmp.data;
			size_t n = d->tmp.len;
			int zoned = n > 19 && (t[n - 1] == 'Z' || t[n - 1] == 'z' ||
					       (n >= 6 && (t[n - 6] == '+' || t[n - 6] == '-') &&
						t[n - 3] == ':'));
			if (f->type == RN_T_TIMESTAMP ? !zoned : zoned)
				return bad(d, "%s",
					   f->type == RN_T_TIMESTAMP
						   ? "a timestamp text needs a zone (Z or +hh:mm)"
						   : "a timestamp_ntz text has no zone");
			if (rn_time_rfc3339(t, n, 1, &i))
				return bad(d, "%s", "not an RFC 3339 timestamp");
			if (i < TS_MIN_US || i > TS_MAX_US)
				return bad(d, "%s", "timestamp outside the years 1..9999");
			return s->i64(s->ctx, f, i);
		}
	case RN_T_DECIMAL:
		if ((rc = decimal(d, f, v, &u)))
			return rc;
		return s->dec(s->ctx, f, u);
	case RN_T_STRUCT: return object(d, f, v);
	case RN_T_ARRAY: return array(d, f, v);
	case RN_T_MAP: return map(d, f, v);
	}
	return bad(d, "%s", "unsupported type");
}

int rn_jsonrow_decode(const struct rn_schema *s, const char *json, size_t len,
		      const struct rn_row_sink *sink, char *err, size_t cap)
{
	struct dec d = {sink, err, cap, {0}, 0, {0}, NULL};
	struct rn_field root = s->root;
	size_t i = 0;
	int rc;

	if (cap)
		err[0] = 0;
	root.type = RN_T_STRUCT;
	d.root = &root;
	while (i < len && (json[i] == ' ' || json[i] == '\t' || json[i] == '\r' || json[i] == '\n'))
		i++;
	if (i == len || json[i] != '{')
		rc = bad(&d, "%s", "a JSON record must be an object");
	else if (rn_json_validate(json, len))
		rc = bad(&d, "%s", "not valid JSON");
	else
		rc = object(&d, &root, (struct rn_json_span){json + i, len - i});
	rn_buf_free(&d.tmp);
	return rc;
}
