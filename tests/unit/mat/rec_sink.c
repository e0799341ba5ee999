/* The recording sink for decoder tests; see rec_sink.h. */
#include "rec_sink.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

char rec_out[8192];

void rec_emit(const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(rec_out);
	va_start(ap, fmt);
	vsnprintf(rec_out + n, sizeof(rec_out) - n, fmt, ap);
	va_end(ap);
}

static const char *nm(const struct rn_field *f)
{
	return f->name ? f->name : "";
}

int rec_null(void *c, const struct rn_field *f)
{
	(void)c;
	rec_emit("%s=null ", nm(f));
	return 0;
}

int rec_i64(void *c, const struct rn_field *f, int64_t v)
{
	(void)c;
	rec_emit("%s=%lld ", nm(f), (long long)v);
	return 0;
}

int rec_f64(void *c, const struct rn_field *f, double v)
{
	(void)c;
	rec_emit("%s=%g ", nm(f), v);
	return 0;
}

int rec_bytes(void *c, const struct rn_field *f, const void *p, size_t n)
{
	(void)c;
	rec_emit("%s='%.*s' ", nm(f), (int)n, (const char *)p);
	return 0;
}

int rec_dec(void *c, const struct rn_field *f, rn_i128 u)
{
	(void)c;
	char tmp[48];
	rn_i128_to_str(u, tmp);
	rec_emit("%s=%s ", nm(f), tmp);
	return 0;
}

int rec_begin(void *c, const struct rn_field *f, size_t n)
{
	(void)c;
	rec_emit("%s%c%zu ", nm(f),
		 f->type == RN_T_STRUCT  ? '{'
		 : f->type == RN_T_ARRAY ? '['
					 : '<',
		 n);
	return 0;
}

int rec_end(void *c, const struct rn_field *f)
{
	(void)c;
	rec_emit("%c ", f->type == RN_T_STRUCT ? '}' : f->type == RN_T_ARRAY ? ']' : '>');
	return 0;
}

const struct rn_row_sink rec_sink = {.null = rec_null,
				     .i64 = rec_i64,
				     .f64 = rec_f64,
				     .bytes = rec_bytes,
				     .dec = rec_dec,
				     .begin = rec_begin,
				     .end = rec_end};
