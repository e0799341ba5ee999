/*
 * Growable byte buffer with a hard cap; see rn_buf.h for the invariants.
 */
#include "rn_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rn_err.h"
#include "rn_mem.h"

int rn_buf_reserve(struct rn_buf *b, size_t extra)
{
	size_t max = b->max ? b->max : RN_BUF_DEFAULT_MAX;
	size_t need, ncap;
	uint8_t *p;

	if (extra > max || b->len > max - extra)
		return RN_ENOMEM;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > max / 2 ? max : ncap * 2;
	p = rn_realloc(b->data, ncap);
	if (!p)
		return RN_ENOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int rn_buf_append(struct rn_buf *b, const void *p, size_t n)
{
	int rc;
	if (n == 0)
		return 0;
	if ((rc = rn_buf_reserve(b, n)) != 0)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int rn_buf_append_u8(struct rn_buf *b, uint8_t v)
{
	return rn_buf_append(b, &v, 1);
}

int rn_buf_append_str(struct rn_buf *b, const char *s)
{
	return rn_buf_append(b, s, strlen(s));
}

int rn_buf_printf(struct rn_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return RN_EINVAL;
	if ((rc = rn_buf_reserve(b, (size_t)n + 1)) != 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void rn_buf_consume(struct rn_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void rn_buf_free(struct rn_buf *b)
{
	rn_free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
