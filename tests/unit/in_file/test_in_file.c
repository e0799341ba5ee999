/*
 * Unit tests for plugins/in_file, driven through its plugin table with a fake host (no
 * agent, no buffer) on real files in a temp dir: LF/CRLF lines, empty lines, binary bytes
 * kept as-is, overlong lines split into flagged pieces with "runnel.split" attributes, the
 * partial-line timeout, rename rotation (old file finished, then the new one from 0), resume
 * from a snapshot (nothing repeated, nothing lost), rotation while stopped, read_from=end,
 * and truncation. The host and source helpers are in harness.c; the watches of missing
 * directories, the logging of unreadable paths and offsets past 2 GiB are tested in
 * test_in_file_watch.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "plugin.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_mem.h"

#include "harness.h"

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

/* A file with much to read gets several reads (up to 1 MiB) in one poll, not one 256 KiB
 * read per turn of the agent's loop, and says there is more; the reads stop as soon as the
 * host stops accepting. */
static void test_reads_per_poll(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600];
	static char line[60001];
	int more = 0;
	(void)state;
	memset(line, 'r', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	path_of(p, sizeof(p), "bulk.log");
	write_file(p, "w", "", 0);
	for (int i = 0; i < 40; i++) /* 2.4 MB: ~4.4 lines per 256 KiB read */
		write_file(p, "a", line, sizeof(line));
	src_start(&s, &h, p, 0, 65536);
	assert_int_equal(rn_in_file.poll(s.inst, rn_mono_us(), &more), 0);
	assert_true(h.n > 5);   /* more than one read */
	assert_true(h.n <= 18); /* at most 4 reads of 256 KiB */
	assert_int_equal(more, 1);
	size_t first = h.n;
	/* a host that stops accepting stops the reads at once */
	h.accept_max = first + 1;
	more = 0;
	assert_int_equal(rn_in_file.poll(s.inst, rn_mono_us(), &more), 0);
	assert_true(h.n > first && h.n <= first + 5); /* one read */
	assert_int_equal(more, 1);
	h.accept_max = 0;
	src_poll(&s, 3);
	assert_int_equal(h.n, 40);
	for (size_t i = 0; i < h.n; i++)
		assert_int_equal(h.len[i], sizeof(line) - 1);
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
	assert_null(memmem(snap.data, snap.len, "del.log", 7));  /* forgotten */
	assert_non_null(memmem(snap.data, snap.len, " -\n", 3)); /* remembered as finished */
	rn_buf_free(&snap);
	src_stop(&s);
	host_free(&h);
}

/*
 * inotify: with the rescan 60 s away, an append, a new file in the glob's directory and a
 * rotated-in file are all seen at once — the descriptor wakes and the next poll reads them.
 * With read_from = end, the file present at the very first start is read from its end; the
 * files appearing later from their start.
 */
static void test_inotify_wakes(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600], p1[600], pn[600], pat[600];
	short ev = 0;
	int fd;
	int64_t ms;
	(void)state;
	path_of(p, sizeof(p), "w.log");
	path_of(p1, sizeof(p1), "w.log.1");
	path_of(pn, sizeof(pn), "w2.log");
	path_of(pat, sizeof(pat), "w*.log");
	write_file(p, "w", "old\n", 4);
	src_init(&s, &h, pat, 1, 65536);
	s.fc.rescan_interval_ms = 60000;
	src_create(&s);
	src_poll_now(&s); /* the first scan: at the end of w.log */
	assert_int_equal(h.n, 0);
	fd = rn_in_file.wait_fd(s.inst, &ev);
	assert_true(fd >= 0);
	assert_int_equal(ev, POLLIN);
	src_poll_now(&s);
	assert_false(wait_readable(fd, 0, &ms)); /* nothing pending: the loop would sleep */

	write_file(p, "a", "new\n", 4);
	assert_true(wait_readable(fd, 2000, &ms));
	assert_true(ms < 250); /* the event is queued before write(2) returns */
	src_poll_now(&s);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.rec[0], "new");

	/* a new file: read from its start although read_from = end */
	write_file(pn, "w", "n1\nn2\n", 6);
	assert_true(wait_readable(fd, 2000, &ms));
	assert_true(ms < 250); /* the event is queued before write(2) returns */
	src_poll_now(&s);
	assert_int_equal(h.n, 3);
	assert_string_equal(h.rec[1], "n1");
	assert_string_equal(h.rec[2], "n2");
	assert_string_equal(h.topic[1], pn);

	/* rotation: the new w.log is read from its start too */
	assert_int_equal(rename(p, p1), 0);
	write_file(p, "w", "r1\n", 3);
	assert_true(wait_records(&s, &h, 4, 2000));
	assert_string_equal(h.rec[3], "r1");
	assert_string_equal(h.topic[3], p);
	src_stop(&s);
	host_free(&h);
}

/* Saved positions win over read_from = end: what came while stopped is read. */
static void test_saved_position_wins(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600];
	(void)state;
	path_of(p, sizeof(p), "sw.log");
	write_file(p, "w", "before\n", 7);
	src_start(&s, &h, p, 1, 65536);
	src_poll_now(&s);
	assert_int_equal(h.n, 0);
	write_file(p, "a", "a\n", 2);
	assert_true(wait_records(&s, &h, 1, 2000));
	src_save(&s, &h);
	src_stop(&s);
	host_reset(&h);
	write_file(p, "a", "while stopped\n", 14);
	src_start(&s, &h, p, 1, 65536);
	src_poll_now(&s);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.rec[0], "while stopped");
	src_stop(&s);
	host_free(&h);
}

/*
 * logrotate "create": after the rename the writer keeps writing to its old descriptor until
 * it reopens the path. The old file is read on (checkpointed as "+path") while the new one
 * is followed, and is closed only after rotate_wait without data. Across a restart in that
 * state, the old file's rest comes first, then the new file's lines.
 */
static void test_rotation_late_writes(void **state)
{
	struct host h = {0};
	struct src s;
	struct rn_buf snap = {0};
	char p[600], p1[600];
	int w;
	(void)state;
	path_of(p, sizeof(p), "lw.log");
	path_of(p1, sizeof(p1), "lw.log.1");
	w = open(p, O_WRONLY | O_CREAT | O_APPEND, 0644);
	assert_true(w >= 0);
	assert_int_equal(write(w, "1\n", 2), 2);
	src_start(&s, &h, p, 0, 65536);
	s.fc.rotate_wait_ms = 300;
	src_poll_now(&s);
	assert_int_equal(h.n, 1);
	assert_int_equal(rename(p, p1), 0);
	write_file(p, "w", "", 0);
	src_poll_now(&s); /* sees the rotation: follows the new file, keeps the old one */
	assert_int_equal(write(w, "2\n", 2), 2);
	write_file(p, "a", "3\n", 2);
	assert_true(wait_records(&s, &h, 3, 2000));
	assert_string_equal(h.rec[1], "2");
	assert_string_equal(h.rec[2], "3");
	assert_string_equal(h.topic[1], p); /* the rotated file keeps its path as topic */
	assert_int_equal(rn_in_file.snapshot(s.inst, &snap), 0);
	assert_non_null(memmem(snap.data, snap.len, " +", 2)); /* still open */

	/* stop with the old file still open; the writer adds to it, then to the new one */
	src_save(&s, &h);
	src_stop(&s);
	host_reset(&h);
	assert_int_equal(write(w, "4\n", 2), 2);
	close(w);
	write_file(p, "a", "5\n", 2);
	src_start(&s, &h, p, 0, 65536);
	s.fc.rotate_wait_ms = 300;
	src_poll_now(&s);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.rec[0], "4");
	assert_string_equal(h.rec[1], "5");
	/* quiet for rotate_wait: the old file is finished and remembered */
	sleep_ms(350);
	src_poll_now(&s);
	rn_buf_reset(&snap);
	assert_int_equal(rn_in_file.snapshot(s.inst, &snap), 0);
	assert_null(memmem(snap.data, snap.len, " +", 2));
	assert_non_null(memmem(snap.data, snap.len, " -\n", 3));
	assert_int_equal(h.n, 2);
	rn_buf_free(&snap);
	src_stop(&s);
	host_free(&h);
}

/* Compressed rotated files are never read, even when the glob matches them. */
static void test_compressed_ignored(void **state)
{
	static const char *const names[] = {"z.log.1.gz",  "z.log.2.bz2", "z.log.3.xz",
					    "z.log.4.zst", "z.log.5.lz4", "z.log.6.zip",
					    "z.log.7.Z",   NULL};
	struct host h = {0};
	struct src s;
	char p[600], pat[600];
	(void)state;
	for (size_t i = 0; names[i]; i++) {
		path_of(p, sizeof(p), names[i]);
		write_file(p, "w", "compressed\n", 11);
	}
	path_of(p, sizeof(p), "z.log");
	write_file(p, "w", "plain\n", 6);
	path_of(pat, sizeof(pat), "z.log*");
	src_start(&s, &h, pat, 0, 65536);
	src_poll(&s, 3);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.rec[0], "plain");
	src_stop(&s);
	host_free(&h);
}

#define JAVA                                                                                       \
	"2024-01-01 INFO start\n"                                                                  \
	"2024-01-01 ERROR boom\n"                                                                  \
	"java.lang.RuntimeException: x\n"                                                          \
	"\tat a.b(C.java:1)\r\n"                                                                   \
	"\tat d.e(F.java:2)\n"

/* multiline_start: a Java stack trace is one record; the pending record is not consumed (a
 * restart reads it again) and goes out after multiline_timeout. */
static void test_multiline(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600];
	unsigned long long d, i, pos;
	(void)state;
	path_of(p, sizeof(p), "java.log");
	write_file(p, "w", JAVA "2024-01-01 INFO next\n", strlen(JAVA) + 21);
	src_init(&s, &h, p, 0, 65536);
	s.fc.multiline_start = "^[0-9]{4}-[0-9]{2}-[0-9]{2} ";
	s.fc.multiline_timeout_ms = 100;
	src_create(&s);
	src_poll_now(&s);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.rec[0], "2024-01-01 INFO start");
	assert_string_equal(h.rec[1], "2024-01-01 ERROR boom\njava.lang.RuntimeException: x\n"
				      "\tat a.b(C.java:1)\n\tat d.e(F.java:2)");
	assert_int_equal(h.flags[1], 0);
	/* the position is the end of the trace, before the pending "next" */
	src_save(&s, &h);
	assert_int_equal(sscanf((char *)h.saved.data, "F %llu %llu %llu", &d, &i, &pos), 3);
	assert_int_equal(pos, strlen(JAVA));
	src_stop(&s);

	/* restart: "next" again, still pending; a continuation joins it; the timeout ends it */
	host_reset(&h);
	src_init(&s, &h, p, 0, 65536);
	s.fc.multiline_start = "^[0-9]{4}-[0-9]{2}-[0-9]{2} ";
	s.fc.multiline_timeout_ms = 100;
	src_create(&s);
	src_poll_now(&s);
	assert_int_equal(h.n, 0);
	write_file(p, "a", "\tcaused by y\n", 13);
	src_poll_now(&s);
	assert_int_equal(h.n, 0);
	assert_true(wait_records(&s, &h, 1, 3000)); /* bounded: the 100 ms timeout */
	assert_string_equal(h.rec[0], "2024-01-01 INFO next\n\tcaused by y");
	src_stop(&s);
	host_free(&h);
}

/* A record over multiline_max_bytes comes out in flagged pieces that rebuild it. */
static void test_multiline_pieces(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600], all[256] = "";
	const char *rec = "S head\n a123456789\n b123456789";
	(void)state;
	path_of(p, sizeof(p), "mp.log");
	write_file(p, "w", "S head\n a123456789\n b123456789\nS next\n", 38);
	src_init(&s, &h, p, 0, 65536);
	s.fc.multiline_start = "^S";
	s.fc.multiline_max_bytes = 16;
	src_create(&s);
	src_poll_now(&s);
	assert_int_equal(h.n, 2);
	for (size_t k = 0; k < h.n; k++) {
		assert_true(h.len[k] <= 16);
		assert_int_equal(h.flags[k], RN_RECORD_F_SPLIT);
		strcat(all, h.rec[k]);
	}
	assert_string_equal(h.split[0], "1");
	assert_string_equal(h.split[1], "2/2");
	assert_string_equal(all, rec);
	src_stop(&s);
	host_free(&h);
}

/*
 * Exactly once through refusals and crashes: 300 events with 0-3 continuation lines, written
 * in odd-sized pieces (lines cut in the middle), read by a host that refuses every 3rd emit
 * and "crashes" every 5th poll (records after the last commit are lost, the plugin restarts
 * from the committed snapshot). Every event must come out once, whole and in order.
 */
static void test_multiline_exactly_once(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600], exp[300][128];
	char *text = malloc(64 << 10);
	size_t tlen = 0, committed = 0, off = 0;
	int polls = 0;
	(void)state;
	assert_non_null(text);
	for (int e = 0; e < 300; e++) {
		int n = snprintf(exp[e], sizeof(exp[e]), "E%03d start", e);
		memcpy(text + tlen, exp[e], (size_t)n);
		tlen += (size_t)n;
		text[tlen++] = '\n';
		for (int k = 0; k < e % 4; k++) {
			n = snprintf(text + tlen, 64, "  at %03d.%d%s\n", e, k, k == 1 ? "\r" : "");
			tlen += (size_t)n;
			snprintf(exp[e] + strlen(exp[e]), sizeof(exp[e]) - strlen(exp[e]),
				 "\n  at %03d.%d", e, k);
		}
	}
	path_of(p, sizeof(p), "once.log");
	write_file(p, "w", "", 0);
	h.refuse_every = 3;
	src_init(&s, &h, p, 0, 65536);
	s.fc.multiline_start = "^E";
	s.fc.multiline_timeout_ms = 50;
	src_create(&s);
	while (off < tlen) {
		size_t n = 1 + (off * 7919) % 97;
		if (n > tlen - off)
			n = tlen - off;
		write_file(p, "a", text + off, n);
		off += n;
		src_poll_now(&s);
		if (++polls % 5 == 0) {
			/* commit what was emitted, then crash: the next emitted records are lost */
			src_save(&s, &h);
			committed = h.n;
		}
		if (polls % 5 == 2) {
			for (size_t k = committed; k < h.n; k++)
				free(h.rec[k]);
			h.n = committed;
			src_stop(&s);
			src_create(&s);
		}
	}
	assert_true(wait_records(&s, &h, 300, 5000));
	sleep_ms(80);
	src_poll_now(&s);
	assert_int_equal(h.n, 300);
	for (int e = 0; e < 300; e++)
		assert_string_equal(h.rec[e], exp[e]);
	free(text);
	src_stop(&s);
	host_free(&h);
}

/* A bad multiline_start is a config error naming the source. */

/* Appends "<tag> <i>\n" for i in [from, to) to path. */
/* Records h->rec[from..] are "<tag> <i>" for i = 0.. in order, n of them. */
static void assert_seq(struct host *h, size_t from, const char *tag, int n)
{
	char want[64];
	for (int i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "%s %d", tag, i);
		assert_true(from + (size_t)i < h->n);
		assert_string_equal(h->rec[from + (size_t)i], want);
	}
}

/* logrotate's numbered shift: path.(k) -> path.(k+1) for k = top..1, path -> path.1, a new
 * empty path. */
static void rotate_numbered(const char *p, int top)
{
	char a[700], b[700];
	for (int k = top; k >= 1; k--) {
		snprintf(a, sizeof(a), "%s.%d", p, k);
		snprintf(b, sizeof(b), "%s.%d", p, k + 1);
		rename(a, b);
	}
	snprintf(b, sizeof(b), "%s.1", p);
	assert_int_equal(rename(p, b), 0);
	write_file(p, "w", "", 0);
}

/* Three rename rotations between two reads (a fast writer, a SIGSTOP): the files in between
 * are found beside the path and read to their end, oldest first, then the new file. */
static void test_rotations_between_reads(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600], old[700];
	(void)state;
	path_of(p, sizeof(p), "many.log");
	/* an older rotated file from before: never read */
	snprintf(old, sizeof(old), "%s.1", p);
	write_file(old, "w", "old 0\n", 6);
	sleep_ms(20);
	write_file(p, "w", "", 0);
	write_lines(p, "x", 0, 10);
	src_start(&s, &h, p, 0, 65536);
	src_poll(&s, 1);
	assert_int_equal(h.n, 10);
	write_lines(p, "x", 10, 20);
	for (int r = 0; r < 3; r++) {
		rotate_numbered(p, r + 1);
		write_lines(p, "x", 20 + r * 10, 30 + r * 10);
	}
	src_poll(&s, 6);
	assert_int_equal(h.n, 50);
	assert_seq(&h, 0, "x", 50);
	src_stop(&s);
	host_free(&h);
}

/* Rotated names of another shape (logrotate's "extension .log": svc-20261205.log) are
 * followed with rotate_glob; compressed ones and a file gone at restart lose only what
 * they held (warned), the rest comes in order. */
static void test_rotate_glob(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600], r1[600], r2[600], gz[600];
	(void)state;
	path_of(p, sizeof(p), "svc.log");
	path_of(r1, sizeof(r1), "svc-20261205.log");
	path_of(r2, sizeof(r2), "svc-20261206.log");
	path_of(gz, sizeof(gz), "svc-20261207.log.gz");
	write_file(p, "w", "", 0);
	write_lines(p, "g", 0, 5);
	src_init(&s, &h, p, 0, 65536);
	s.fc.rotate_glob = "svc-*.log";
	src_create(&s);
	src_poll(&s, 1);
	assert_int_equal(h.n, 5);
	write_lines(p, "g", 5, 10);
	assert_int_equal(rename(p, r1), 0);
	write_lines(p, "g", 10, 15);
	sleep_ms(5);
	assert_int_equal(rename(p, r2), 0);
	write_lines(p, "g", 15, 20);
	src_poll(&s, 6);
	assert_int_equal(h.n, 20);
	assert_seq(&h, 0, "g", 20);
	src_save(&s, &h);
	src_stop(&s);

	/* stopped: the file we read is compressed away (lost: g 20..24), a newer one stays */
	write_lines(p, "g", 20, 25);
	assert_int_equal(rename(p, gz), 0);
	write_lines(p, "h", 0, 3);
	src_init(&s, &h, p, 0, 65536);
	s.fc.rotate_glob = "svc-*.log";
	src_create(&s);
	host_reset(&h);
	src_poll(&s, 6);
	assert_int_equal(h.n, 3);
	assert_seq(&h, 0, "h", 3);
	src_stop(&s);
	host_free(&h);
}

/* The same while stopped, and around a crash: the position saved with the records (identity
 * and fingerprint) finds the old file under its new name, then the ones rotated after it. */
static void test_rotations_while_stopped(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600];
	(void)state;
	path_of(p, sizeof(p), "stop.log");
	write_file(p, "w", "", 0);
	write_lines(p, "y", 0, 10);
	src_start(&s, &h, p, 0, 65536);
	src_poll(&s, 1);
	assert_int_equal(h.n, 10);
	src_save(&s, &h);
	src_stop(&s);
	write_lines(p, "y", 10, 15);
	rotate_numbered(p, 0);
	write_lines(p, "y", 15, 25);
	rotate_numbered(p, 1);
	write_lines(p, "y", 25, 30);
	src_start(&s, &h, p, 0, 65536);
	src_poll(&s, 6);
	assert_int_equal(h.n, 30);
	assert_seq(&h, 0, "y", 30);
	/* a crash in the middle of the rotated files: the saved position is in one of them */
	src_save(&s, &h);
	src_stop(&s);
	write_lines(p, "y", 30, 35);
	rotate_numbered(p, 2);
	write_lines(p, "y", 35, 40);
	rotate_numbered(p, 3);
	write_lines(p, "y", 40, 45);
	src_start(&s, &h, p, 0, 65536);
	src_poll(&s, 6);
	assert_int_equal(h.n, 45);
	assert_seq(&h, 0, "y", 45);
	src_stop(&s);
	host_free(&h);
}

/* copytruncate with a writer that appended after we read: the copy holds the rest of the
 * held partial line and the lines after it; they come from the copy, then the truncated
 * file from its start. Then a truncation and rewrite past our position (a fast writer) is
 * seen by the first bytes, and a truncation with no copy marks the cut line. */
static void test_copytruncate_copy(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600], c[700], cmd[1600];
	(void)state;
	path_of(p, sizeof(p), "ct.log");
	snprintf(c, sizeof(c), "%s.1", p);
	write_file(p, "w", "", 0);
	write_lines(p, "z", 0, 5);
	write_file(p, "a", "z 5 par", 7);
	src_start(&s, &h, p, 0, 65536);
	s.fc.line_timeout_ms = 100000; /* the partial line is held */
	src_poll_now(&s);
	assert_int_equal(h.n, 5);
	write_file(p, "a", "tial\n", 5);
	write_lines(p, "w", 6, 8);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", p, c);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(truncate(p, 0), 0);
	write_lines(p, "n", 0, 2);
	src_poll(&s, 6);
	assert_int_equal(h.n, 10);
	assert_string_equal(h.rec[5], "z 5 partial");
	assert_int_equal(h.flags[5], 0);
	assert_string_equal(h.rec[6], "w 6");
	assert_string_equal(h.rec[7], "w 7");
	assert_string_equal(h.rec[8], "n 0");
	assert_string_equal(h.rec[9], "n 1");

	/* truncated and written again past our position, no copy: seen by the first bytes */
	unlink(c);
	assert_int_equal(truncate(p, 0), 0);
	write_lines(p, "m", 0, 5);
	src_poll(&s, 6);
	assert_int_equal(h.n, 15);
	assert_seq(&h, 10, "m", 5);

	/* a held partial line cut by a truncation with no copy is a marked piece */
	write_file(p, "a", "cut", 3);
	src_poll_now(&s);
	assert_int_equal(truncate(p, 0), 0);
	write_file(p, "a", "k\n", 2);
	src_poll(&s, 6);
	assert_int_equal(h.n, 17);
	assert_string_equal(h.rec[15], "cut");
	assert_int_equal(h.flags[15], RN_RECORD_F_SPLIT);
	assert_string_equal(h.piece[15], "truncated");
	assert_string_equal(h.split[15], "1");
	assert_string_equal(h.rec[16], "k");
	assert_int_equal(h.flags[16], 0);
	src_stop(&s);
	host_free(&h);
}

/* A line cut by line_timeout_ms and completed later: both records are marked pieces, also
 * across a restart; pieces cut at max_line_bytes say "size". */
static void test_piece_marks(void **state)
{
	struct host h = {0};
	struct src s;
	char p[600];
	(void)state;
	path_of(p, sizeof(p), "pc.log");
	write_file(p, "w", "whole\nhal", 9);
	src_start(&s, &h, p, 0, 16);
	src_poll(&s, 1);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.flags[0], 0);
	assert_string_equal(h.piece[0], "");
	sleep_ms(80);
	src_poll(&s, 1);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.rec[1], "hal");
	assert_int_equal(h.flags[1], RN_RECORD_F_SPLIT);
	assert_string_equal(h.split[1], "1");
	assert_string_equal(h.piece[1], "timeout");
	write_file(p, "a", "f", 1);
	src_poll(&s, 1);
	sleep_ms(80);
	src_poll(&s, 1);
	assert_int_equal(h.n, 3);
	assert_string_equal(h.split[2], "2");
	/* the rest comes after a restart: still the line's next (last) piece */
	src_save(&s, &h);
	src_stop(&s);
	write_file(p, "a", "-done\n0123456789abcdefXYZ\n", 26);
	src_start(&s, &h, p, 0, 16);
	src_poll(&s, 1);
	assert_int_equal(h.n, 6);
	assert_string_equal(h.rec[3], "-done");
	assert_int_equal(h.flags[3], RN_RECORD_F_SPLIT);
	assert_string_equal(h.split[3], "3/3");
	assert_string_equal(h.piece[3], "timeout");
	assert_string_equal(h.split[4], "1");
	assert_string_equal(h.piece[4], "size");
	assert_string_equal(h.rec[5], "XYZ");
	assert_string_equal(h.split[5], "2/2");
	assert_string_equal(h.piece[5], "size");
	src_stop(&s);

	/* a crash right after a timeout piece went into a chunk (snapshot taken inside emit):
	 * the piece count is in that snapshot */
	host_reset(&h);
	h.have_saved = 0;
	path_of(p, sizeof(p), "pc2.log");
	write_file(p, "w", "crash", 5);
	src_start(&s, &h, p, 0, 16);
	h.snap_inst = s.inst;
	src_poll(&s, 1);
	sleep_ms(80);
	src_poll(&s, 1);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.piece[0], "timeout");
	h.snap_inst = NULL;
	src_stop(&s);
	write_file(p, "a", "ed\n", 3);
	src_start(&s, &h, p, 0, 16);
	src_poll(&s, 1);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.rec[1], "ed");
	assert_string_equal(h.split[1], "2/2");
	assert_string_equal(h.piece[1], "timeout");
	src_stop(&s);
	host_free(&h);
}

static void test_bad_regex(void **state)
{
	struct host h = {0};
	struct src s;
	char err[256] = "";
	(void)state;
	src_init(&s, &h, "/nonexistent", 0, 65536);
	s.fc.multiline_start = "([a-";
	assert_int_equal(rn_in_file.check(&s.conf, err, sizeof(err)), RN_ECONFIG);
	assert_non_null(strstr(err, "multiline_start"));
	host_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_reads_per_poll),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_rotation_and_resume),
		cmocka_unit_test(test_read_from_end_and_truncate),
		cmocka_unit_test(test_glob_rotation),
		cmocka_unit_test(test_deleted),
		cmocka_unit_test(test_inotify_wakes),
		cmocka_unit_test(test_saved_position_wins),
		cmocka_unit_test(test_rotation_late_writes),
		cmocka_unit_test(test_compressed_ignored),
		cmocka_unit_test(test_multiline),
		cmocka_unit_test(test_multiline_pieces),
		cmocka_unit_test(test_multiline_exactly_once),
		cmocka_unit_test(test_bad_regex),
		cmocka_unit_test(test_rotations_between_reads),
		cmocka_unit_test(test_rotations_while_stopped),
		cmocka_unit_test(test_rotate_glob),
		cmocka_unit_test(test_copytruncate_copy),
		cmocka_unit_test(test_piece_marks),
	};
	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
