/*
 * Unit tests for plugins/in_file/ident.c, the I/O-free identity helpers: the fingerprint
 * grows in any split of the input and matches only the same first bytes, rotated names and
 * their age order, piece marks of a line cut by the timeout, the size limit or a
 * truncation, and checkpoint lines in both formats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ident.h"

static void test_fingerprint(void **state)
{
	uint8_t data[3000];
	struct rn_fp a, b;
	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	rn_fp_init(&a);
	rn_fp_extend(&a, data, sizeof(data), 0);
	assert_int_equal(a.len, RN_FP_MAX);
	/* in pieces, with overlaps and gaps ignored */
	rn_fp_init(&b);
	rn_fp_extend(&b, data + 10, 20, 10); /* a gap: ignored */
	assert_int_equal(b.len, 0);
	rn_fp_extend(&b, data, 5, 0);
	rn_fp_extend(&b, data + 3, 100, 3); /* overlaps: only the new part counts */
	assert_int_equal(b.len, 103);
	assert_true(rn_fp_match(&b, data, 103));
	assert_true(rn_fp_match(&b, data, sizeof(data)));
	assert_false(rn_fp_match(&b, data, 102)); /* shorter file */
	rn_fp_extend(&b, data + 103, sizeof(data) - 103, 103);
	assert_int_equal(b.len, a.len);
	assert_true(a.hash == b.hash);
	data[500] ^= 1;
	assert_false(rn_fp_match(&a, data, sizeof(data)));
	data[500] ^= 1;
	data[RN_FP_MAX + 5] ^= 1; /* past the fingerprint: same file */
	assert_true(rn_fp_match(&a, data, sizeof(data)));
	rn_fp_init(&b);
	assert_true(rn_fp_match(&b, data, 0));
}

static void test_rotnames(void **state)
{
	(void)state;
	assert_true(rn_rotname_is("app.log", "app.log.1"));
	assert_true(rn_rotname_is("app.log", "app.log-20261206"));
	assert_true(rn_rotname_is("app.log", "app.log.2026-12-06"));
	assert_true(rn_rotname_is("app.log", "app.log_3"));
	assert_false(rn_rotname_is("app.log", "app.log"));
	assert_false(rn_rotname_is("app.log", "app.log.2.gz"));
	assert_false(rn_rotname_is("app.log", "app.log.swp"));
	assert_false(rn_rotname_is("app.log", "app.logx.1"));
	assert_false(rn_rotname_is("app.log", "other.log.1"));
	assert_true(rn_name_compressed("a.log.1.zst"));
	assert_false(rn_name_compressed("a.log.1"));
	/* older first */
	assert_true(rn_rotname_cmp("app.log", "app.log.3", "app.log.1") < 0);
	assert_true(rn_rotname_cmp("app.log", "app.log.1", "app.log.10") > 0);
	assert_true(rn_rotname_cmp("app.log", "app.log-20261205", "app.log-20261206") < 0);
	assert_true(rn_rotname_cmp("app.log", "app.log-20261206", "app.log.1") < 0);
	assert_int_equal(rn_rotname_cmp("app.log", "app.log.2", "app.log.2"), 0);
	assert_true(rn_rotname_cmp("app.log", "app-2.log", "app-3.log") < 0);
}

static void test_pieces(void **state)
{
	struct rn_piece s = {0, RN_CUT_NONE}, n;
	char v[24];
	const char *why;
	(void)state;
	/* a whole line */
	assert_false(rn_piece_mark(&s, RN_CUT_NONE, v, sizeof(v), &why, &n));
	assert_null(why);
	assert_int_equal(n.n, 0);
	/* timeout, timeout, then the newline */
	assert_true(rn_piece_mark(&s, RN_CUT_TIMEOUT, v, sizeof(v), &why, &n));
	assert_string_equal(v, "1");
	assert_string_equal(why, "timeout");
	s = n;
	assert_true(rn_piece_mark(&s, RN_CUT_TIMEOUT, v, sizeof(v), &why, &n));
	assert_string_equal(v, "2");
	s = n;
	assert_true(rn_piece_mark(&s, RN_CUT_NONE, v, sizeof(v), &why, &n));
	assert_string_equal(v, "3/3");
	assert_string_equal(why, "timeout");
	assert_int_equal(n.n, 0);
	s = n;
	/* size pieces end like the existing runnel.split */
	assert_true(rn_piece_mark(&s, RN_CUT_SIZE, v, sizeof(v), &why, &n));
	assert_string_equal(why, "size");
	s = n;
	assert_true(rn_piece_mark(&s, RN_CUT_NONE, v, sizeof(v), &why, &n));
	assert_string_equal(v, "2/2");
	assert_string_equal(why, "size");
	s = n;
	/* truncated: no rest follows, the next line starts afresh */
	assert_true(rn_piece_mark(&s, RN_CUT_TIMEOUT, v, sizeof(v), &why, &n));
	s = n;
	assert_true(rn_piece_mark(&s, RN_CUT_TRUNCATED, v, sizeof(v), &why, &n));
	assert_string_equal(v, "2");
	assert_string_equal(why, "truncated");
	assert_int_equal(n.n, 0);
	assert_null(rn_cut_name(RN_CUT_NONE));
}

static void test_entries(void **state)
{
	struct rn_buf b = {0};
	struct rn_fentry e = {.dev = 2049,
			      .ino = 77,
			      .pos = 1234,
			      .fp = {12, 0xabcdef0123ULL},
			      .mtime_ns = 1765000000123456789LL,
			      .piece = {2, RN_CUT_TIMEOUT},
			      .kind = '+',
			      .name = "/var/log/a b.log",
			      .nlen = 16},
			 g;
	const char *p, *end;
	(void)state;
	assert_int_equal(rn_fentry_put(&b, &e), 0);
	e.kind = '-';
	assert_int_equal(rn_fentry_put(&b, &e), 0);
	/* the older format, and junk skipped */
	assert_int_equal(rn_buf_append_str(&b, "junk line\n5 6 7 /x.log\n"), 0);
	p = (const char *)b.data;
	end = p + b.len;
	assert_true(rn_fentry_next(&p, end, &g));
	assert_int_equal(g.dev, 2049);
	assert_int_equal(g.ino, 77);
	assert_int_equal(g.pos, 1234);
	assert_int_equal(g.fp.len, 12);
	assert_true(g.fp.hash == 0xabcdef0123ULL);
	assert_true(g.mtime_ns == 1765000000123456789LL);
	assert_int_equal(g.piece.n, 2);
	assert_int_equal(g.piece.cut, RN_CUT_TIMEOUT);
	assert_int_equal(g.kind, '+');
	assert_int_equal(g.nlen, 16);
	assert_memory_equal(g.name, "/var/log/a b.log", 16);
	assert_true(rn_fentry_next(&p, end, &g));
	assert_int_equal(g.kind, '-');
	assert_int_equal(g.pos, 1234);
	assert_true(rn_fentry_next(&p, end, &g));
	assert_int_equal(g.kind, 0);
	assert_int_equal(g.pos, 7);
	assert_int_equal(g.fp.len, 0);
	assert_memory_equal(g.name, "/x.log", 6);
	assert_false(rn_fentry_next(&p, end, &g));
	rn_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_rotnames),
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
