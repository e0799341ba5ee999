/*
 * Multi-line grouping; see multiline.h. One buffer holds the pending record; pieces are cut
 * off its front at max_bytes. Every path that can be refused by the callback is either
 * before the line is taken (then nothing changed) or after it (then the rest waits in `rec`
 * as due pieces), so a refusal never loses or repeats a byte.
 */
#include "multiline.h"

#include <string.h>

#include "plugin.h"
#include "rn_err.h"

#define DEFAULT_MAX ((size_t)64 << 10)

static size_t maxb(const struct rn_multiline *m)
{
	return m->max_bytes ? m->max_bytes : DEFAULT_MAX;
}

/* Input position just after the first k bytes of rec (k >= tail_idx). */
static uint64_t pos_at(const struct rn_multiline *m, size_t k)
{
	size_t d = k - m->tail_idx;
	if (m->tail_sep)
		return d ? m->tail_start + (d - 1) : m->tail_start;
	return m->tail_start + d;
}

/* Cuts pieces of max_bytes while rec holds more (only inside the last appended bytes). */
static int drain(struct rn_multiline *m, rn_line_fn fn, void *ctx)
{
	size_t mx = maxb(m);
	while (m->rec.len > mx) {
		uint64_t at = pos_at(m, mx);
		int rc = fn(ctx, m->rec.data, mx, RN_RECORD_F_SPLIT, at);
		if (rc)
			return rc;
		rn_buf_consume(&m->rec, mx);
		/* the rest begins inside the tail, at input position `at` and past any separator */
		if (mx > m->tail_idx) {
			m->tail_start = at;
			m->tail_sep = 0;
			m->tail_idx = 0;
		} else {
			m->tail_idx -= mx;
		}
		m->in_split = 1;
	}
	return 0;
}

/* Hands out the pending record's last part (rec.len <= max_bytes after drain). */
static int finish(struct rn_multiline *m, rn_line_fn fn, void *ctx)
{
	int rc;
	if (!m->open)
		return 0;
	if ((rc = drain(m, fn, ctx)))
		return rc;
	/* an empty record (one empty line) never allocated rec: hand on a valid empty string,
	 * never NULL (callers may memcpy from it) */
	rc = fn(ctx, m->rec.data ? m->rec.data : (const uint8_t *)"", m->rec.len,
		(m->in_split ? RN_RECORD_F_SPLIT : 0) | RN_LINESPLIT_EOL, m->end);
	if (rc)
		return rc;
	rn_buf_reset(&m->rec);
	m->open = 0;
	m->in_split = 0;
	m->tail_idx = 0;
	m->tail_sep = 0;
	m->tail_start = m->end;
	return 0;
}

int rn_multiline_feed(struct rn_multiline *m, const uint8_t *line, size_t len, unsigned flags,
		      uint64_t consumed, int64_t now_us, rn_line_fn fn, void *ctx)
{
	size_t mx = maxb(m), save;
	int rc, start, cont, sep;

	if (len > mx)
		return RN_ETOOBIG;
	/* room for a full piece plus one more line and its separator: no growth past that */
	if (!m->rec.max)
		m->rec.max = mx * 2 + 16;
	if ((rc = drain(m, fn, ctx)))
		return rc;
	cont = (flags & RN_MULTILINE_CONT) && m->open;
	start = !cont && ((flags & RN_MULTILINE_START) || !m->open);
	if (start && (rc = finish(m, fn, ctx)))
		return rc; /* the previous record was refused: this line is not taken */
	sep = !start && !cont;
	save = m->rec.len;
	if ((sep && (rc = rn_buf_append_u8(&m->rec, '\n'))) ||
	    (len && (rc = rn_buf_append(&m->rec, line, len)))) {
		m->rec.len = save;
		return rc;
	}
	m->open = 1;
	m->tail_idx = save;
	m->tail_start = m->end; /* the line's bytes follow the previous line's end */
	m->tail_sep = sep;
	m->end = consumed;
	m->last_us = now_us;
	m->mid_line = (flags & RN_MULTILINE_MORE) != 0;
	(void)drain(m, fn, ctx); /* taken; pieces refused here stay due */
	return 0;
}

int rn_multiline_tick(struct rn_multiline *m, int64_t now_us, rn_line_fn fn, void *ctx)
{
	int rc;
	if ((rc = drain(m, fn, ctx)))
		return rc;
	if (m->open && !m->mid_line && m->timeout_us > 0 && now_us - m->last_us >= m->timeout_us)
		return finish(m, fn, ctx);
	return 0;
}

int rn_multiline_flush(struct rn_multiline *m, rn_line_fn fn, void *ctx)
{
	return finish(m, fn, ctx);
}

void rn_multiline_reset(struct rn_multiline *m, uint64_t pos)
{
	rn_buf_reset(&m->rec);
	m->open = 0;
	m->in_split = 0;
	m->mid_line = 0;
	m->end = pos;
	m->tail_idx = 0;
	m->tail_start = pos;
	m->tail_sep = 0;
}

void rn_multiline_free(struct rn_multiline *m)
{
	rn_buf_free(&m->rec);
	m->open = 0;
	m->in_split = 0;
}
