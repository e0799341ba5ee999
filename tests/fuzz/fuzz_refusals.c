/*
 * Fuzz target: refused calls through the refusal sources (server/fleet/refusals.c) with the
 * strings a client chooses (its table header, its principal's name from its credentials, the
 * reason that quotes them) and an API query. The input is split at NUL bytes into records of
 * peer, principal, kind, reason, table (a missing field is NULL), the last piece being the
 * query of /api/v1/refusals; a bound of 4 sources forces evictions. Checks: every answer and
 * row is valid JSON and valid UTF-8, and the totals are honest (the entries, the evicted and
 * the unattributed add up to every note).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fleet.h"
#include "refusals.h"
#include "rn_json.h"
#include "rn_mem.h"
#include "rn_utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void valid(const struct rn_buf *b)
{
	if (!b->len || rn_json_validate((const char *)b->data, b->len) ||
	    !rn_utf8_valid(b->data, b->len))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_refusals *r = NULL;
	struct rn_refusals_totals t;
	struct rn_fleet_query q;
	struct rn_buf b = {0};
	const char *why, *f[5];
	char *s = rn_malloc(size + 1);
	size_t nf = 0, n = 0, notes = 0, off = 0;
	if (!s || rn_refusals_create(&r, 4))
		goto out;
	memcpy(s, data, size);
	s[size] = 0;
	while (off < size) {
		const char *piece = s + off;
		off += strlen(piece) + 1;
		if (off >= size) { /* the last piece: the query */
			if (!rn_fleet_query_parse(piece, RN_FLEET_QUERY_REFUSALS, &q, &why) &&
			    !rn_refusals_render(r, &q, 1800000000000LL, &b))
				valid(&b);
			break;
		}
		f[nf++] = piece;
		if (nf == 5) {
			(void)rn_refusals_note(r, f[0], f[1], f[2], f[3], f[4],
					       1800000000000LL + (int64_t)notes);
			notes++;
			nf = 0;
		}
	}
	rn_buf_reset(&b);
	if (!rn_refusals_summary(r, 1800000000000LL + 1, &b))
		valid(&b);
	rn_buf_reset(&b);
	if (!rn_refusals_rows(r, 1800000000000LL + 2, SIZE_MAX, &b, &n) && n) {
		/* each row is field 1 of a record list: the JSON between its length and the next */
		struct rn_buf one = {0};
		size_t i = 0;
		while (i < b.len) {
			uint64_t len = 0;
			int shift = 0;
			i++; /* the tag */
			while (i < b.len && (b.data[i] & 0x80))
				len |= (uint64_t)(b.data[i++] & 0x7f) << shift, shift += 7;
			len |= (uint64_t)b.data[i++] << shift;
			rn_buf_reset(&one);
			if (rn_buf_append(&one, b.data + i, (size_t)len))
				break;
			valid(&one);
			i += (size_t)len;
		}
		rn_buf_free(&one);
	}
	rn_refusals_totals(r, 1800000000000LL, &t);
	if (t.refused != notes)
		__builtin_trap();
out:
	rn_buf_free(&b);
	rn_refusals_destroy(r);
	rn_free(s);
	return 0;
}
