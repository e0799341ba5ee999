/*
 * Unit tests for the races of plugins/in_file's directory walk, driven through its test seam
 * (rn_in_file__look_hook, built into rn_in_file_hooks only): the hook runs between the walk's
 * look at a directory of a path and the watch that follows, and changes the tree there,
 * deterministically, the way another process can on a loaded machine. A directory made in
 * that window raises no event on the watch added after it; a directory removed in it cannot
 * be watched. Either way the source must end up watching what exists, with the periodic
 * rescan an hour away: only inotify finds anything. Also the removal and re-creation of the
 * directories, twice, between two polls (all their events handled together).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rn_log.h"
#include "testutil.h"

#define NEVER_MS 3600000 /* a rescan interval no test lives to see */

extern void (*rn_in_file__look_hook)(const char *path, int found);

/* What the hook does, once, when the walk has looked at `at` and found it (or not). */
static struct {
	char at[700];
	int found;
	int fired;
	void (*act)(void);
} hook;
static char dir_a[700], dir_b[700], file_y[800];
static char pat[800]; /* the source's path: borrowed by its pattern for its whole life */

static void look_hook(const char *path, int found)
{
	if (hook.fired || found != hook.found || strcmp(path, hook.at))
		return;
	hook.fired = 1;
	hook.act();
}

static void hook_arm(const char *at, int found, void (*act)(void))
{
	snprintf(hook.at, sizeof(hook.at), "%s", at);
	hook.found = found;
	hook.fired = 0;
	hook.act = act;
	rn_in_file__look_hook = look_hook;
}

static void rm_tree(const char *p)
{
	assert_int_equal(rn_test_rmtree(p), 0);
}

static void make_ab(void)
{
	assert_int_equal(mkdir(dir_a, 0755), 0);
	assert_int_equal(mkdir(dir_b, 0755), 0);
}

/* The other process: makes a/b and writes y.log there. */
static void make_ab_y(void)
{
	make_ab();
	write_file(file_y, "w", "y1\ny2\n", 6);
}

static void remove_a(void)
{
	rm_tree(dir_a);
}

/* A source on <base>/a/b/<star>.log (read from the beginning), rescan an hour away, a/b/x.log
 * read: the state both tests start from. fd: the source's wait descriptor. */
static void start_with_x(struct src *s, struct host *h, const char *name, char *base, size_t cap,
			 int *fd)
{
	char x[800];
	short ev = 0;
	int64_t ms;
	rn_log_set_level(RN_LOG_INFO);
	path_of(base, cap, name);
	assert_int_equal(mkdir(base, 0755), 0);
	snprintf(dir_a, sizeof(dir_a), "%s/a", base);
	snprintf(dir_b, sizeof(dir_b), "%s/a/b", base);
	snprintf(pat, sizeof(pat), "%s/a/b/*.log", base);
	src_init(s, h, pat, 0, 65536);
	s->fc.rescan_interval_ms = NEVER_MS;
	s->fc.rotate_wait_ms = 1;
	src_create(s);
	src_poll_now(s); /* the first scan: a is missing, base is watched */
	*fd = rn_in_file.wait_fd(s->inst, &ev);
	assert_true(*fd >= 0);
	make_ab();
	snprintf(x, sizeof(x), "%s/x.log", dir_b);
	write_file(x, "w", "x1\n", 3);
	assert_true(wait_records(s, h, 1, 2000));
	assert_string_equal(h->rec[0], "x1");
	src_poll_now(s);
	assert_false(wait_readable(*fd, 0, &ms));
}

/*
 * a/b removed with x.log; the rescan their events cause finds a missing, and in that moment
 * (the hook) a/b and a/b/y.log are made: their creation raised no event on the watch of base
 * that the walk adds next. The walk's second look, after the watch, finds them; y.log is read
 * in the same poll. Then the directories go and come again twice between two polls, z.log in
 * the last: read too, and x.log and y.log not again.
 */
static void test_made_between_look_and_watch(void **state)
{
	struct host h = {0};
	struct src s;
	char base[600], z[800];
	int fd;
	(void)state;
	start_with_x(&s, &h, "made", base, sizeof(base), &fd);
	snprintf(file_y, sizeof(file_y), "%s/y.log", dir_b);

	hook_arm(dir_a, 0, make_ab_y);
	remove_a();
	assert_true(wait_records(&s, &h, 3, 2000));
	assert_true(hook.fired);
	assert_string_equal(h.rec[1], "y1");
	assert_string_equal(h.rec[2], "y2");
	assert_string_equal(h.topic[1], file_y);
	rn_in_file__look_hook = NULL;

	/* twice in a row between two polls */
	remove_a();
	make_ab();
	remove_a();
	make_ab();
	snprintf(z, sizeof(z), "%s/z.log", dir_b);
	write_file(z, "w", "z1\n", 3);
	assert_true(wait_records(&s, &h, 4, 2000));
	assert_string_equal(h.rec[3], "z1");
	assert_string_equal(h.topic[3], z);
	src_poll(&s, 2); /* x.log and y.log, gone, are let go; nothing is read twice */
	src_poll_now(&s);
	assert_int_equal(h.n, 4);
	src_stop(&s);
	host_free(&h);
}

/*
 * The walk found a/b; in that moment (the hook) a is removed, so b cannot be watched. The
 * walk must start again and wait in base for a: made again afterwards, a wakes the source
 * at once (not the short fallback rescan), and a/b/y.log is read.
 */
static void test_gone_between_look_and_watch(void **state)
{
	struct host h = {0};
	struct src s;
	char base[600];
	int fd;
	int64_t ms;
	(void)state;
	start_with_x(&s, &h, "gone", base, sizeof(base), &fd);
	snprintf(file_y, sizeof(file_y), "%s/y.log", dir_b);

	/* a change that makes the walk run (a name the glob takes, in b) */
	hook_arm(dir_b, 1, remove_a);
	write_file(file_y, "w", "", 0);
	assert_true(wait_readable(fd, 2000, &ms));
	src_poll_now(&s);
	assert_true(hook.fired);
	rn_in_file__look_hook = NULL;
	src_poll(&s, 2); /* x.log (and y.log, if opened), gone, are let go */
	src_poll_now(&s);
	assert_false(wait_readable(fd, 0, &ms));

	assert_int_equal(mkdir(dir_a, 0755), 0);
	assert_true(wait_readable(fd, 2000, &ms)); /* base is watched for a */
	src_poll_now(&s);
	assert_int_equal(mkdir(dir_b, 0755), 0);
	write_file(file_y, "w", "y1\n", 3);
	assert_true(wait_records(&s, &h, 2, 2000));
	assert_string_equal(h.rec[1], "y1");
	assert_string_equal(h.topic[1], file_y);
	assert_int_equal(h.n, 2);
	src_stop(&s);
	host_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_made_between_look_and_watch),
		cmocka_unit_test(test_gone_between_look_and_watch),
	};
	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
