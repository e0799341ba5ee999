/*
 * Unit tests for plugins/in_file, driven through its plugin table with a fake host (no
 * agent, no buffer) on real files in a temp dir: LF/CRLF lines, empty lines, binary bytes
 * kept as-is, overlong lines split into flagged pieces with "runnel.split" attributes, the
 * partial-line timeout, rename rotation (old file finished, then the new one from 0), resume
 * from a snapshot (nothing repeated, nothing lost), rotation while stopped, read_from=end,
 * and truncation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "plugin.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_mem.h"

extern const struct rn_source_plugin rn_in_file;

#define MAXREC 256

struct host {
	char *rec[MAXREC];
	size_t len[MAXREC];
	uint32_t flags[MAXREC];
	char split[MAXREC][16];
	char topic[MAXREC][600];
	size_t n;
	struct rn_buf saved; /* the "committed" position handed back at load */
	int have_saved;
	int pos_changes;
};

static char dir[512];

static int h_emit(void *ctx, const struct rn_record *r)
{
	struct host *h = ctx;
	assert_true(h->n < MAXREC);
	h->rec[h->n] = malloc(r->len + 1);
	memcpy(h->rec[h->n], r->payload, r->len);
	h->rec[h->n][r->len] = 0;
	h->len[h->n] = r->len;
	h->flags[h->n] = r->flags;
	h->split[h->n][0] = 0;
	snprintf(h->topic[h->n], sizeof(h->topic[0]), "%s", r->topic ? r->topic : "");
	for (size_t i = 0; i < r->nattrs; i++)
		if (!strcmp(r->attrs[i].key, "runnel.split"))
			snprintf(h->split[h->n], sizeof(h->split[0]), "%s", r->attrs[i].value);
	h->n++;
	return 0;
}

static void h_pos(void *ctx)
{
	((struct host *)ctx)->pos_changes++;
}

static int h_load(void *ctx, struct rn_buf *out)
{
	struct host *h = ctx;
	if (!h->have_saved)
		return RN_ENOTFOUND;
	return rn_buf_append(out, h->saved.data, h->saved.len);
}

static int h_accepting(void *ctx)
{
	(void)ctx;
	return 1;
}

static void host_reset(struct host *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->rec[i]);
	h->n = 0;
}

static void host_free(struct host *h)
{
	host_reset(h);
	rn_buf_free(&h->saved);
}

/* Mirrors in_file's private settings struct (the rows' offsets); filled by hand here the way
 * the loader fills it from the plugin's conf table. */
struct in_file_conf {
	struct rn_conf_strlist paths;
	int read_from;
	int64_t max_line_bytes;
	int64_t line_timeout_ms;
	int64_t rotate_wait_ms;
	int64_t rescan_interval_ms;
	char *multiline_start;
	int64_t multiline_timeout_ms;
	int64_t multiline_max_bytes;
};

struct src {
	struct rn_source_conf conf;
	struct in_file_conf fc;
	char *paths[2];
	void *inst;
	struct rn_source_host sh;
};

static void src_start(struct src *s, struct host *h, const char *path, int read_from,
		      int64_t max_line)
{
	memset(s, 0, sizeof(*s));
	s->paths[0] = (char *)path;
	s->conf.type = "file";
	s->conf.name = "t";
	s->conf.table = "x.y.z";
	s->fc.paths.v = s->paths;
	s->fc.paths.n = 1;
	s->fc.read_from = read_from;
	s->fc.max_line_bytes = max_line;
	s->fc.line_timeout_ms = 50;
	s->fc.rotate_wait_ms = 50;
	s->fc.rescan_interval_ms = 500;
	s->fc.multiline_timeout_ms = 1000;
	s->fc.multiline_max_bytes = 256 << 10;
	assert_int_equal(rn_in_file.conf_size, sizeof(s->fc));
	s->conf.plugin.table = rn_in_file.conf;
	s->conf.plugin.data = &s->fc;
	s->sh = (struct rn_source_host){h, h_emit, h_pos, h_load, h_accepting};
	assert_int_equal(rn_in_file.check(&s->conf, (char[64]){0}, 64), 0);
	assert_int_equal(rn_in_file.create(&s->inst, &s->conf, &s->sh), 0);
}

static void src_poll(struct src *s, int times)
{
	for (int i = 0; i < times; i++) {
		int more = 0;
		assert_int_equal(rn_in_file.poll(s->inst, rn_mono_us() + i * 1000000LL, &more), 0);
	}
}

/* Commits the current position, as the agent does with a chunk. */
static void src_save(struct src *s, struct host *h)
{
	rn_buf_reset(&h->saved);
	assert_int_equal(rn_in_file.snapshot(s->inst, &h->saved), 0);
	h->have_saved = 1;
}

static void src_stop(struct src *s)
{
	rn_in_file.destroy(s->inst);
	s->inst = NULL;
}

static void path_of(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

static void write_file(const char *path, const char *mode, const void *p, size_t n)
{
	FILE *f = fopen(path, mode);
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};
	nanosleep(&ts, NULL);
}

static int setup(void **state)
{
	const char *base = getenv("RN_TEST_TMP");
	(void)state;
	if (!base)
		base = "/tmp";
	mkdir(base, 0755);
	snprintf(dir, sizeof(dir), "%s/in_file-XXXXXX", base);
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_lines(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600];
	(void)state;
	path_of(p, sizeof(p), "lines.log");
	write_file(p, "w", "a\r\nb\n\n\xff\xfe bin\x00z\nc", 17);
	src_start(&s, &h, p, 0, 65536);
	src_poll(&s, 1);
	assert_int_equal(h.n, 4);
	assert_string_equal(h.rec[0], "a");
	assert_string_equal(h.rec[1], "b");
	assert_int_equal(h.len[2], 0);
	assert_int_equal(h.len[3], 8);
	assert_memory_equal(h.rec[3], "\xff\xfe bin\x00z", 8);
	assert_string_equal(h.topic[0], p);
	assert_int_equal(h.flags[0], 0);
	/* "c" has no newline: held until the timeout (50 ms here) */
	src_poll(&s, 1);
	assert_int_equal(h.n, 4);
	sleep_ms(80);
	src_poll(&s, 1);
	assert_int_equal(h.n, 5);
	assert_string_equal(h.rec[4], "c");
	src_stop(&s);
	host_free(&h);
}

static void test_long_line(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600], line[64];
	(void)state;
	path_of(p, sizeof(p), "long.log");
	memset(line, 'x', 40);
	line[40] = '\n';
	memcpy(line + 41, "ok\n", 3);
	write_file(p, "w", line, 44);
	src_start(&s, &h, p, 0, 16);
	src_poll(&s, 1);
	assert_int_equal(h.n, 4);
	assert_int_equal(h.len[0], 16);
	assert_int_equal(h.len[1], 16);
	assert_int_equal(h.len[2], 8);
	for (int i = 0; i < 3; i++)
		assert_int_equal(h.flags[i], RN_RECORD_F_SPLIT);
	assert_string_equal(h.split[0], "1");
	assert_string_equal(h.split[1], "2");
	assert_string_equal(h.split[2], "3/3");
	assert_string_equal(h.rec[3], "ok");
	assert_int_equal(h.flags[3], 0);
	assert_string_equal(h.split[3], "");
	src_stop(&s);
	host_free(&h);
}

static void test_rotation_and_resume(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600], p1[600];
	(void)state;
	path_of(p, sizeof(p), "app.log");
	path_of(p1, sizeof(p1), "app.log.1");
	write_file(p, "w", "1\n2\n", 4);
	src_start(&s, &h, p, 0, 65536);
	src_poll(&s, 1);
	assert_int_equal(h.n, 2);
	/* rotate: the old file gets one more line (and a partial one) after the rename */
	assert_int_equal(rename(p, p1), 0);
	write_file(p1, "a", "3\n4", 3);
	write_file(p, "w", "5\n", 2);
	src_poll(&s, 3);
	assert_int_equal(h.n, 5);
	assert_string_equal(h.rec[2], "3");
	assert_string_equal(h.rec[3], "4");
	assert_string_equal(h.rec[4], "5");
	src_save(&s, &h);
	src_stop(&s);

	/* restart: only what came after the saved position */
	host_reset(&h);
	write_file(p, "a", "6\n", 2);
	src_start(&s, &h, p, 0, 65536);
	src_poll(&s, 1);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.rec[0], "6");
	src_save(&s, &h);
	src_stop(&s);

	/* rotated while stopped: the old inode is found beside the path and finished first */
	host_reset(&h);
	write_file(p, "a", "7\n", 2);
	unlink(p1);
	assert_int_equal(rename(p, p1), 0);
	write_file(p, "w", "8\n", 2);
	src_start(&s, &h, p, 0, 65536);
	src_poll(&s, 3);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.rec[0], "7");
	assert_string_equal(h.rec[1], "8");
	src_stop(&s);
	host_free(&h);
}

static void test_read_from_end_and_truncate(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600];
	(void)state;
	path_of(p, sizeof(p), "end.log");
	write_file(p, "w", "old1\nold2\n", 10);
	src_start(&s, &h, p, 1, 65536);
	src_poll(&s, 1);
	assert_int_equal(h.n, 0);
	write_file(p, "a", "new\n", 4);
	src_poll(&s, 1);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.rec[0], "new");
	/* copytruncate: the file shrinks, reading starts again at 0 */
	write_file(p, "w", "t\n", 2);
	src_poll(&s, 3);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.rec[1], "t");
	src_stop(&s);
	host_free(&h);
}

/* A glob that also matches the rotated name (app.log*): the renamed file is finished once,
 * never read again from its start, also across a restart and a rotation while stopped. */
static void test_glob_rotation(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600], p1[600], pat[600];
	(void)state;
	path_of(p, sizeof(p), "g.log");
	path_of(p1, sizeof(p1), "g.log.1");
	path_of(pat, sizeof(pat), "g.log*");
	write_file(p, "w", "1\n2\n", 4);
	src_start(&s, &h, pat, 0, 65536);
	src_poll(&s, 1);
	assert_int_equal(h.n, 2);
	assert_int_equal(rename(p, p1), 0);
	write_file(p1, "a", "3\n", 2);
	write_file(p, "w", "4\n", 2);
	src_poll(&s, 4);
	assert_int_equal(h.n, 4);
	assert_string_equal(h.rec[2], "3");
	assert_string_equal(h.rec[3], "4");
	src_save(&s, &h);
	src_stop(&s);

	/* rotated again while stopped; both names match the glob */
	host_reset(&h);
	write_file(p, "a", "5\n", 2);
	unlink(p1);
	assert_int_equal(rename(p, p1), 0);
	write_file(p, "w", "6\n", 2);
	src_start(&s, &h, pat, 0, 65536);
	src_poll(&s, 4);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.rec[0], "5");
	assert_string_equal(h.rec[1], "6");
	src_save(&s, &h);
	src_stop(&s);

	/* and once more with nothing new: nothing is read again */
	host_reset(&h);
	src_start(&s, &h, pat, 0, 65536);
	src_poll(&s, 4);
	assert_int_equal(h.n, 0);
	src_stop(&s);
	host_free(&h);
}

/* A deleted file is read to its end, its partial line emitted, then closed and dropped. */
static void test_deleted(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600];
	struct rn_buf snap = {0};
	(void)state;
	path_of(p, sizeof(p), "del.log");
	write_file(p, "w", "a\nb", 3);
	src_start(&s, &h, p, 0, 65536);
	src_poll(&s, 1);
	assert_int_equal(h.n, 1);
	unlink(p);
	src_poll(&s, 1);
	sleep_ms(80);
	src_poll(&s, 1);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.rec[1], "b");
	assert_int_equal(rn_in_file.snapshot(s.inst, &snap), 0);
	assert_null(memmem(snap.data, snap.len, "del.log", 7)); /* forgotten */
	assert_non_null(memmem(snap.data, snap.len, " -\n", 3));  /* remembered as finished */
	rn_buf_free(&snap);
	src_stop(&s);
	host_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_rotation_and_resume),
		cmocka_unit_test(test_read_from_end_and_truncate),
		cmocka_unit_test(test_glob_rotation),
		cmocka_unit_test(test_deleted),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
