/*
 * Unit tests for the WAL: entry round trip, CRC-32C check value, replay of several segments,
 * a torn tail (process killed mid-write) and a corrupted byte are cut off and the file is
 * truncated so later appends follow the last good entry; rotation and segment deletion.
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

#include "rn_err.h"
#include "wal.h"
#include "testutil.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	assert_int_equal(rn_test_tmpdir(dir, sizeof(dir), "wal"), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rn_test_rmtree(dir);
}

static struct rn_wal_entry entry(int64_t off, const char *batch)
{
	struct rn_wal_entry e = {"stream-1",   8, "main.t", 6, off, 1, (const uint8_t *)batch,
				 strlen(batch)};
	return e;
}

static void test_codec(void **state)
{
	struct rn_buf b = {0};
	struct rn_wal_entry e = entry(42, "records"), d;
	size_t used;
	(void)state;
	/* CRC-32C check value from RFC 3720 */
	assert_int_equal(rn_crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(rn_crc32c_sw(0, "123456789", 9), 0xe3069283);
	/* hardware and tables agree on every length and alignment, and chain */
	uint8_t buf[300];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (size_t off = 0; off < 8; off++)
		for (size_t n = 0; n + off <= sizeof(buf); n += 13) {
			uint32_t a = rn_crc32c(0, buf + off, n);
			assert_int_equal(a, rn_crc32c_sw(0, buf + off, n));
			assert_int_equal(rn_crc32c(rn_crc32c(0, buf + off, n / 2),
						   buf + off + n / 2, n - n / 2),
					 a);
		}
	/* long inputs go through three interleaved 8 KiB streams: lengths around 24 KiB and its
	 * multiples, odd alignments, and chaining across the stripes */
	static uint8_t big[200003];
	uint32_t x = 1;
	for (size_t i = 0; i < sizeof(big); i++) {
		x = x * 1103515245u + 12345u;
		big[i] = (uint8_t)(x >> 16);
	}
	static const size_t lens[] = {24575, 24576, 24577, 49152, 49159, 73727, 100000, 199999};
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++)
		for (size_t off = 0; off < 4; off++) {
			uint32_t a = rn_crc32c(0, big + off, lens[k]);
			assert_int_equal(a, rn_crc32c_sw(0, big + off, lens[k]));
			size_t h = lens[k] / 3 + off;
			assert_int_equal(
				rn_crc32c(rn_crc32c(0, big + off, h), big + off + h, lens[k] - h),
				a);
			assert_int_equal(rn_crc32c(0x12345678u, big + off, lens[k]),
					 rn_crc32c_sw(0x12345678u, big + off, lens[k]));
		}
	assert_int_equal(rn_wal_entry_encode(&b, &e), 0);
	assert_int_equal(rn_wal_entry_decode(b.data, b.len, &d, &used), 1);
	assert_int_equal(used, b.len);
	assert_int_equal(d.offset, 42);
	assert_int_equal(d.record_type, 1);
	assert_memory_equal(d.stream_id, "stream-1", 8);
	assert_memory_equal(d.table, "main.t", 6);
	assert_int_equal(d.batch_len, 7);
	assert_memory_equal(d.batch, "records", 7);
	for (size_t cut = 0; cut < b.len; cut++)
		assert_int_equal(rn_wal_entry_decode(b.data, cut, &d, &used), 0);
	for (size_t i = 0; i < b.len; i++) { /* any flipped byte is detected */
		b.data[i] ^= 0x40;
		int r = rn_wal_entry_decode(b.data, b.len, &d, &used);
		assert_true(r == RN_ECORRUPT || r == 0);
		b.data[i] ^= 0x40;
	}
	rn_buf_free(&b);
}

struct seen {
	int64_t offsets[64];
	int n;
};

static int collect(void *ctx, const struct rn_wal_entry *e)
{
	struct seen *s = ctx;
	s->offsets[s->n++] = e->offset;
	return 0;
}

static char *only_segment_path(uint64_t id)
{
	static char p[400];
	snprintf(p, sizeof(p), "%s/wal-%016llu.log", dir, (unsigned long long)id);
	return p;
}

static void test_replay_torn_and_corrupt(void **state)
{
	struct rn_wal *w;
	struct seen s = {0};
	struct stat st;
	uint64_t seg;
	(void)state;

	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, collect, &s), 0);
	assert_int_equal(s.n, 0);
	for (int i = 0; i < 3; i++) {
		struct rn_wal_entry e = entry(i, "abc");
		assert_int_equal(rn_wal_append(w, &e), 0);
	}
	assert_true(rn_wal_dirty(w));
	assert_int_equal(rn_wal_sync(w), 0);
	assert_false(rn_wal_dirty(w));
	assert_int_equal(rn_wal_rotate(w, &seg), 0);
	assert_int_equal(seg, 2);
	for (int i = 3; i < 6; i++) {
		struct rn_wal_entry e = entry(i, "defgh");
		assert_int_equal(rn_wal_append(w, &e), 0);
	}
	assert_int_equal(rn_wal_sync(w), 0);
	rn_wal_close(w);

	/* tear the last entry of segment 2 (as a kill mid-write would) */
	assert_int_equal(stat(only_segment_path(2), &st), 0);
	assert_int_equal(truncate(only_segment_path(2), st.st_size - 3), 0);
	/* corrupt the middle entry of segment 1 */
	FILE *f = fopen(only_segment_path(1), "r+b");
	assert_non_null(f);
	off_t one = st.st_size / 3; /* segment 2 entries are bigger; segment 1 has 3 equal ones */
	(void)one;
	fseek(f, 0, SEEK_END);
	long s1 = ftell(f);
	fseek(f, s1 / 3 + 20, SEEK_SET);
	fputc('X', f);
	fclose(f);

	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, collect, &s), 0);
	/* segment 1: entry 0 only (1 corrupt, 2 dropped after it); segment 2: 3 and 4 */
	assert_int_equal(s.n, 3);
	assert_int_equal(s.offsets[0], 0);
	assert_int_equal(s.offsets[1], 3);
	assert_int_equal(s.offsets[2], 4);
	assert_int_equal(stat(only_segment_path(1), &st), 0);
	assert_int_equal(st.st_size, s1 / 3);
	/* appends go to a fresh segment; a second replay sees the same plus the new entry */
	struct rn_wal_entry e = entry(5, "z");
	assert_int_equal(rn_wal_append(w, &e), 0);
	assert_int_equal(rn_wal_sync(w), 0);
	rn_wal_close(w);
	memset(&s, 0, sizeof(s));
	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, collect, &s), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.offsets[3], 5);
	/* dropping old segments */
	assert_true(rn_wal_bytes(w) > 0);
	assert_int_equal(rn_wal_rotate(w, &seg), 0);
	assert_int_equal(rn_wal_drop_before(w, seg, NULL, NULL), 0);
	assert_int_equal(access(only_segment_path(1), F_OK), -1);
	assert_int_equal(access(only_segment_path(2), F_OK), -1);
	assert_int_equal(rn_wal_bytes(w), 0);
	rn_wal_close(w);
}

struct replay_seg {
	uint64_t seg[64];
	int n;
	struct rn_wal *w;
};

static int note_segment(void *ctx, const struct rn_wal_entry *e)
{
	struct replay_seg *r = ctx;
	(void)e;
	r->seg[r->n++] = rn_wal_replay_segment(r->w);
	return 0;
}

static int keep_two(void *ctx, uint64_t seg)
{
	(void)ctx;
	return seg == 2;
}

/* What recovery needs for a table it cannot write yet: the segment of each replayed entry,
 * deletion that keeps chosen segments, and reading a kept segment again. */
static void test_keep_and_scan(void **state)
{
	struct rn_wal *w;
	struct seen s = {0};
	uint64_t seg;
	char cmd[400];
	(void)state;

	snprintf(cmd, sizeof(cmd), "rm -f %s/wal-*.log", dir); /* the test before left some */
	assert_int_equal(system(cmd), 0);
	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, collect, &s), 0);
	for (int i = 0; i < 9; i++) { /* segments 1, 2, 3 with three entries each */
		struct rn_wal_entry e = entry(i, "abc");
		assert_int_equal(rn_wal_append(w, &e), 0);
		assert_int_equal(rn_wal_sync(w), 0);
		if (i % 3 == 2)
			assert_int_equal(rn_wal_rotate(w, &seg), 0);
	}
	rn_wal_close(w);

	struct replay_seg r = {{0}, 0, NULL};
	assert_int_equal(rn_wal_open(&w, dir), 0);
	r.w = w;
	assert_int_equal(rn_wal_replay(w, note_segment, &r), 0);
	assert_int_equal(r.n, 9);
	for (int i = 0; i < 9; i++)
		assert_int_equal(r.seg[i], 1 + i / 3);
	assert_int_equal(rn_wal_replay_segment(w), 0);
	uint64_t two = rn_wal_segment_bytes(w, 2);
	assert_true(two > 0);
	assert_int_equal(rn_wal_bytes(w), 3 * two);

	/* a flush: every older segment goes but the kept one */
	assert_int_equal(rn_wal_rotate(w, &seg), 0);
	assert_int_equal(rn_wal_drop_before(w, seg, keep_two, NULL), 0);
	assert_int_equal(access(only_segment_path(1), F_OK), -1);
	assert_int_equal(access(only_segment_path(2), F_OK), 0);
	assert_int_equal(access(only_segment_path(3), F_OK), -1);
	assert_int_equal(rn_wal_bytes(w), two);

	/* the kept segment reads back; the one being written cannot be scanned; a deleted one
	 * is an error */
	memset(&s, 0, sizeof(s));
	assert_int_equal(rn_wal_scan(w, 2, collect, &s), 0);
	assert_int_equal(s.n, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(s.offsets[i], 3 + i);
	assert_int_equal(rn_wal_scan(w, seg, collect, &s), RN_EINVAL);
	assert_int_equal(rn_wal_scan(w, 1, collect, &s), RN_EIO);
	assert_int_equal(rn_wal_segment_bytes(w, 1), 0);
	rn_wal_close(w);

	/* a restart replays the kept segment again; once let go it is deleted */
	memset(&r, 0, sizeof(r));
	assert_int_equal(rn_wal_open(&w, dir), 0);
	r.w = w;
	assert_int_equal(rn_wal_replay(w, note_segment, &r), 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.seg[0], 2);
	assert_int_equal(rn_wal_rotate(w, &seg), 0);
	assert_int_equal(rn_wal_drop_before(w, seg, NULL, NULL), 0);
	assert_int_equal(access(only_segment_path(2), F_OK), -1);
	assert_int_equal(rn_wal_bytes(w), 0);
	rn_wal_close(w);
}

/* The materializer's refill reads back what is durable: every segment in order, the one
 * being written up to its synced length; nothing while entries are queued or before replay. */
static void test_scan_all(void **state)
{
	struct rn_wal *w;
	struct seen s = {0};
	uint64_t seg;
	char cmd[400];
	(void)state;

	snprintf(cmd, sizeof(cmd), "rm -f %s/wal-*.log", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_scan_all(w, collect, &s), RN_EINVAL); /* not replayed */
	assert_int_equal(rn_wal_replay(w, collect, &s), 0);
	for (int i = 0; i < 5; i++) { /* two older segments, two entries in the current one */
		struct rn_wal_entry e = entry(i, "abc");
		assert_int_equal(rn_wal_append(w, &e), 0);
		assert_int_equal(rn_wal_sync(w), 0);
		if (i == 0 || i == 2)
			assert_int_equal(rn_wal_rotate(w, &seg), 0);
	}
	struct rn_wal_entry e = entry(5, "abc");
	assert_int_equal(rn_wal_append(w, &e), 0);
	assert_int_equal(rn_wal_scan_all(w, collect, &s), RN_EINVAL); /* queued: sync first */
	assert_int_equal(rn_wal_sync(w), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(rn_wal_scan_all(w, collect, &s), 0);
	assert_int_equal(s.n, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(s.offsets[i], i);
	rn_wal_close(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec),
		cmocka_unit_test(test_replay_torn_and_corrupt),
		cmocka_unit_test(test_keep_and_scan),
		cmocka_unit_test(test_scan_all),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
