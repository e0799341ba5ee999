/*
 * Unit tests for plugins/in_file/pathpat.c, the I/O-free path patterns: splitting at slashes
 * (repeated, leading and trailing ones; the limits), literal and glob components matched as
 * glob(3) would (a leading dot only by a dot, a backslash escape), and match paths built
 * with the pattern's own slashes for absolute, relative and doubled-slash patterns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pathpat.h"
#include "rn_err.h"

/* Component k of p as a string (in a static buffer). */
static const char *comp(const struct rn_pathpat *p, size_t k)
{
	static char c[RN_PATHPAT_MAX];
	memcpy(c, p->text + p->off[k], p->len[k]);
	c[p->len[k]] = 0;
	return c;
}

static void test_split(void **state)
{
	struct rn_pathpat p;
	char long_pat[RN_PATHPAT_MAX + 1], deep[3 * (RN_PATHPAT_COMPS + 1) + 1];
	(void)state;
	assert_int_equal(rn_pathpat_split(&p, "/var//log/*/app.log"), 0);
	assert_int_equal(p.n, 4);
	assert_string_equal(comp(&p, 0), "var");
	assert_string_equal(comp(&p, 1), "log");
	assert_string_equal(comp(&p, 2), "*");
	assert_string_equal(comp(&p, 3), "app.log");
	assert_int_equal(p.off[0], 1);
	assert_int_equal(rn_pathpat_split(&p, "x.log"), 0);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.off[0], 0);
	assert_int_equal(rn_pathpat_split(&p, "logs/"), 0); /* a trailing slash: one component */
	assert_int_equal(p.n, 1);
	assert_int_equal(rn_pathpat_split(&p, "/"), 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(rn_pathpat_split(&p, ""), 0);
	assert_int_equal(p.n, 0);
	/* the limits */
	memset(long_pat, 'a', sizeof(long_pat) - 1);
	long_pat[sizeof(long_pat) - 1] = 0;
	assert_int_equal(rn_pathpat_split(&p, long_pat), RN_ERANGE);
	long_pat[RN_PATHPAT_MAX - 1] = 0;
	assert_int_equal(rn_pathpat_split(&p, long_pat), 0);
	for (size_t i = 0; i < RN_PATHPAT_COMPS + 1; i++)
		memcpy(deep + 3 * i, "/d", 3);
	for (size_t i = 0; i < RN_PATHPAT_COMPS + 1; i++)
		deep[3 * i + 2] = i == RN_PATHPAT_COMPS ? 0 : '/';
	assert_int_equal(rn_pathpat_split(&p, deep), RN_ERANGE);
	deep[3 * RN_PATHPAT_COMPS - 1] = 0; /* 64 components */
	assert_int_equal(rn_pathpat_split(&p, deep), 0);
	assert_int_equal(p.n, RN_PATHPAT_COMPS);
}

static void test_match(void **state)
{
	struct rn_pathpat p;
	(void)state;
	assert_int_equal(rn_pathpat_split(&p, "/d/app.log/*.log/.h*/a\\*b/x[0-9]"), 0);
	assert_false(rn_pathpat_is_glob(&p, 1));
	assert_true(rn_pathpat_match(&p, 1, "app.log"));
	assert_false(rn_pathpat_match(&p, 1, "app.log.1"));
	assert_false(rn_pathpat_match(&p, 1, "app.lo"));
	assert_true(rn_pathpat_is_glob(&p, 2));
	assert_true(rn_pathpat_match(&p, 2, "w.log"));
	assert_false(rn_pathpat_match(&p, 2, ".log")); /* a leading dot only by a dot */
	assert_false(rn_pathpat_match(&p, 2, ".hidden.log"));
	assert_false(rn_pathpat_match(&p, 2, "w.log.gz"));
	assert_true(rn_pathpat_match(&p, 3, ".hidden"));
	assert_true(rn_pathpat_is_glob(&p, 4)); /* an escape: matched by fnmatch */
	assert_true(rn_pathpat_match(&p, 4, "a*b"));
	assert_false(rn_pathpat_match(&p, 4, "axb"));
	assert_true(rn_pathpat_match(&p, 5, "x7"));
	assert_false(rn_pathpat_match(&p, 5, "xa"));
}

/* Builds the path of names[] (one per component) the way in_file's walk does. */
static const char *walk_path(const struct rn_pathpat *p, const char *const *names)
{
	static char buf[RN_PATHPAT_MAX];
	size_t len = p->off[0];
	memcpy(buf, p->text, len);
	buf[len] = 0;
	for (size_t k = 0; k < p->n; k++)
		assert_int_equal(rn_pathpat_push(p, k, buf, &len, names[k], strlen(names[k])), 0);
	assert_int_equal(strlen(buf), len);
	return buf;
}

static void test_push(void **state)
{
	struct rn_pathpat p;
	char buf[RN_PATHPAT_MAX];
	size_t len;
	(void)state;
	assert_int_equal(rn_pathpat_split(&p, "/var//log/*/app.log"), 0);
	assert_string_equal(walk_path(&p, (const char *const[]){"var", "log", "nginx", "app.log"}),
			    "/var//log/nginx/app.log");
	assert_int_equal(rn_pathpat_split(&p, "logs/*.log"), 0);
	assert_string_equal(walk_path(&p, (const char *const[]){"logs", "a.log"}), "logs/a.log");
	assert_int_equal(rn_pathpat_split(&p, "//srv/x.log"), 0);
	assert_string_equal(walk_path(&p, (const char *const[]){"srv", "x.log"}), "//srv/x.log");
	/* a result that would not fit leaves buf as it was */
	assert_int_equal(rn_pathpat_split(&p, "/d/*"), 0);
	len = RN_PATHPAT_MAX - 4;
	memset(buf, 'a', len);
	buf[len] = 0;
	assert_int_equal(rn_pathpat_push(&p, 1, buf, &len, "abc", 3), RN_ERANGE);
	assert_int_equal(len, RN_PATHPAT_MAX - 4);
	assert_int_equal(buf[len], 0);
	assert_int_equal(rn_pathpat_push(&p, 1, buf, &len, "ab", 2), 0);
	assert_int_equal(len, RN_PATHPAT_MAX - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_push),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
