/*
 * Unit tests for plugins/in_file/multiline.c, the I/O-free grouping core, with a recording
 * callback that can refuse: grouping by start lines, the exact resume position of records
 * and of pieces cut inside a line, refusals before and after a line is taken (nothing lost,
 * nothing twice), the timeout (held while a line is still coming in pieces), flush, an empty
 * record (a valid pointer, never NULL), and the per-line size contract.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "multiline.h"
#include "plugin.h"
#include "rn_err.h"

#define MAXOUT 32

struct out {
	const uint8_t *ptr[MAXOUT]; /* the pointer handed to the callback */
	char rec[MAXOUT][128];
	size_t len[MAXOUT];
	uint32_t flags[MAXOUT];
	uint64_t consumed[MAXOUT];
	size_t n;
	int refuse; /* refuse the next `refuse` calls */
};

static int cb(void *ctx, const uint8_t *p, size_t len, uint32_t flags, uint64_t consumed)
{
	struct out *o = ctx;
	if (o->refuse) {
		o->refuse--;
		return RN_EFULL;
	}
	assert_true(o->n < MAXOUT && len < sizeof(o->rec[0]));
	if (len)
		memcpy(o->rec[o->n], p, len);
	o->rec[o->n][len] = 0;
	o->ptr[o->n] = p;
	o->len[o->n] = len;
	o->flags[o->n] = flags;
	o->consumed[o->n] = consumed;
	o->n++;
	return 0;
}

/* Feeds one whole line that ends (newline included) at `end`. */
static int feed(struct rn_multiline *m, struct out *o, const char *line, unsigned fl, uint64_t end,
		int64_t now)
{
	return rn_multiline_feed(m, (const uint8_t *)line, strlen(line), fl, end, now, cb, o);
}

static void test_grouping_and_positions(void **state)
{
	struct rn_multiline m = {0};
	struct out o = {0};
	(void)state;
	m.timeout_us = 1000;
	rn_multiline_reset(&m, 100);
	/* "E1\n" at 100..103, " a\n" ..106, " b\r\n" ..110, "E2\n" ..113 */
	assert_int_equal(feed(&m, &o, "E1", RN_MULTILINE_START, 103, 1), 0);
	assert_int_equal(feed(&m, &o, " a", 0, 106, 2), 0);
	assert_int_equal(feed(&m, &o, " b", 0, 110, 3), 0);
	assert_int_equal(o.n, 0); /* pending: nothing consumed yet */
	assert_int_equal(feed(&m, &o, "E2", RN_MULTILINE_START, 113, 4), 0);
	assert_int_equal(o.n, 1);
	assert_string_equal(o.rec[0], "E1\n a\n b");
	assert_int_equal(o.flags[0], RN_LINESPLIT_EOL);
	assert_int_equal(o.consumed[0], 110); /* the end of its last line, not of "E2" */
	assert_true(rn_multiline_pending(&m));
	/* no start line seen yet: continuation lines still group (an orphan record) */
	rn_multiline_reset(&m, 0);
	assert_false(rn_multiline_pending(&m));
	assert_int_equal(feed(&m, &o, " x", 0, 3, 5), 0);
	assert_int_equal(feed(&m, &o, " y", 0, 6, 6), 0);
	assert_int_equal(rn_multiline_flush(&m, cb, &o), 0);
	assert_int_equal(o.n, 2);
	assert_string_equal(o.rec[1], " x\n y");
	assert_int_equal(o.consumed[1], 6);
	assert_int_equal(rn_multiline_flush(&m, cb, &o), 0); /* nothing left */
	assert_int_equal(o.n, 2);
	rn_multiline_free(&m);
}

static void test_refusals(void **state)
{
	struct rn_multiline m = {0};
	struct out o = {0};
	(void)state;
	rn_multiline_reset(&m, 0);
	assert_int_equal(feed(&m, &o, "A", RN_MULTILINE_START, 2, 1), 0);
	assert_int_equal(feed(&m, &o, " 1", 0, 5, 1), 0);
	/* the start line would close "A\n 1": refused, so the line is not taken */
	o.refuse = 1;
	assert_int_equal(feed(&m, &o, "B", RN_MULTILINE_START, 7, 2), RN_EFULL);
	assert_int_equal(o.n, 0);
	assert_int_equal(feed(&m, &o, "B", RN_MULTILINE_START, 7, 2), 0);
	assert_int_equal(o.n, 1);
	assert_string_equal(o.rec[0], "A\n 1");
	assert_int_equal(o.consumed[0], 5);
	/* a piece refused after the line was taken: due, goes out first next time */
	m.max_bytes = 4;
	o.refuse = 1;
	assert_int_equal(feed(&m, &o, " 234", 0, 12, 3), 0); /* "B\n 234": piece "B\n 2" due */
	assert_int_equal(o.n, 1);
	o.refuse = 1;
	assert_int_equal(feed(&m, &o, "C", RN_MULTILINE_START, 14, 4), RN_EFULL); /* not taken */
	assert_int_equal(o.n, 1);
	assert_int_equal(feed(&m, &o, "C", RN_MULTILINE_START, 14, 4), 0);
	assert_int_equal(o.n, 3);
	assert_string_equal(o.rec[1], "B\n 2");
	assert_int_equal(o.flags[1], RN_RECORD_F_SPLIT);
	assert_int_equal(o.consumed[1], 9); /* "B\n" is 5..7, " 234\n" 7..12: after " 2" */
	assert_string_equal(o.rec[2], "34");
	assert_int_equal(o.flags[2], RN_RECORD_F_SPLIT | RN_LINESPLIT_EOL);
	assert_int_equal(o.consumed[2], 12);
	rn_multiline_free(&m);
}

/* Pieces cut at max_bytes carry the exact position of their last byte; a cut just before a
 * separator points at the start of the next line. */
static void test_pieces(void **state)
{
	struct rn_multiline m = {0};
	struct out o = {0};
	(void)state;
	m.max_bytes = 4;
	rn_multiline_reset(&m, 0);
	assert_int_equal(feed(&m, &o, "Sabc", RN_MULTILINE_START, 5, 1), 0); /* 0..5 */
	assert_int_equal(o.n, 0); /* exactly full: the record may still end here */
	/* " xyz" (5..9) is the first piece of a longer line: more of it follows */
	assert_int_equal(feed(&m, &o, " xyz", RN_MULTILINE_MORE, 9, 2), 0);
	/* rec "Sabc\n xyz": "Sabc" goes out cut before the separator: position 5 */
	assert_int_equal(o.n, 2);
	assert_string_equal(o.rec[0], "Sabc");
	assert_int_equal(o.consumed[0], 5);
	assert_string_equal(o.rec[1], "\n xy"); /* the separator, then " xy" of 5..9 */
	assert_int_equal(o.consumed[1], 8);
	/* a long line in pieces from the splitter: glued on without a separator */
	assert_int_equal(feed(&m, &o, "12", RN_MULTILINE_CONT, 12, 3), 0); /* "12\n" 9..12 */
	assert_int_equal(o.n, 2);                                          /* "z12" */
	assert_int_equal(rn_multiline_flush(&m, cb, &o), 0);
	assert_int_equal(o.n, 3);
	assert_string_equal(o.rec[2], "z12");
	assert_int_equal(o.flags[2], RN_RECORD_F_SPLIT | RN_LINESPLIT_EOL);
	assert_int_equal(o.consumed[2], 12);
	/* lines longer than a piece are the caller's bug */
	assert_int_equal(feed(&m, &o, "12345", RN_MULTILINE_START, 18, 4), RN_ETOOBIG);
	rn_multiline_free(&m);
}

static void test_timeout(void **state)
{
	struct rn_multiline m = {0};
	struct out o = {0};
	(void)state;
	m.timeout_us = 1000;
	rn_multiline_reset(&m, 0);
	assert_int_equal(feed(&m, &o, "A", RN_MULTILINE_START, 2, 10000), 0);
	assert_int_equal(rn_multiline_tick(&m, 10999, cb, &o), 0);
	assert_int_equal(o.n, 0);
	o.refuse = 1;
	assert_int_equal(rn_multiline_tick(&m, 11000, cb, &o), RN_EFULL);
	assert_int_equal(rn_multiline_tick(&m, 11000, cb, &o), 0);
	assert_int_equal(o.n, 1);
	assert_string_equal(o.rec[0], "A");
	assert_false(rn_multiline_pending(&m));
	/* a line still coming in pieces holds the timeout until it is over */
	assert_int_equal(feed(&m, &o, "Bx", RN_MULTILINE_START | RN_MULTILINE_MORE, 4, 20000), 0);
	assert_int_equal(rn_multiline_tick(&m, 50000, cb, &o), 0);
	assert_int_equal(o.n, 1);
	rn_multiline_end_line(&m); /* the splitter gave the partial line out: it is over */
	assert_int_equal(rn_multiline_tick(&m, 50000, cb, &o), 0);
	assert_int_equal(o.n, 2);
	assert_string_equal(o.rec[1], "Bx");
	/* timeout 0: never by time */
	m.timeout_us = 0;
	assert_int_equal(feed(&m, &o, "C", RN_MULTILINE_START, 6, 60000), 0);
	assert_int_equal(rn_multiline_tick(&m, 1000000000, cb, &o), 0);
	assert_int_equal(o.n, 2);
	rn_multiline_free(&m);
}

/* An empty line is an empty record with a valid pointer, never NULL: callers may memcpy
 * from it (fuzz_multiline found a NULL handed on; corpus/multiline/empty_line_record). */
static void test_empty_record(void **state)
{
	struct rn_multiline m = {0};
	struct out o = {0};
	(void)state;
	m.max_bytes = 1;
	rn_multiline_reset(&m, 0);
	assert_int_equal(feed(&m, &o, "", RN_MULTILINE_START, 1, 1), 0);
	assert_int_equal(rn_multiline_flush(&m, cb, &o), 0);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.len[0], 0);
	assert_non_null(o.ptr[0]);
	assert_int_equal(o.flags[0], RN_LINESPLIT_EOL);
	assert_int_equal(o.consumed[0], 1);
	rn_multiline_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grouping_and_positions),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_empty_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
