/*
 * Unit tests for the WAL: entry round trip, CRC-32C check value, replay of several segments,
 * a torn tail (process killed mid-write) and a corrupted byte are cut off and the file is
 * truncated so later appends follow the last good entry; rotation and segment deletion.
 * Packed entries (format 2, a client's zstd frame stored as received): round trip, refusals,
 * a segment written by the format-1-only WAL replayed next to packed ones, and a packed
 * entry that passes its checksum but does not decompress (replay and scans stop with
 * RN_ECORRUPT, the segment untouched).
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
#include "rn_zstd.h"
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
	struct rn_wal_entry e = {.stream_id = "stream-1",
				 .stream_id_len = 8,
				 .table = "main.t",
				 .table_len = 6,
				 .offset = off,
				 .record_type = 1,
				 .batch = (const uint8_t *)batch,
				 .batch_len = strlen(batch)};
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

/* A request message as a client sends it: the batch between a header field and a trailing
 * one, and its zstd frame (what the front hands the server as the message's wire form). */
struct packed_msg {
	struct rn_buf plain, z;
	size_t batch_off, batch_len;
};

static void packed_msg(struct packed_msg *m, const char *batch)
{
	memset(m, 0, sizeof(*m));
	assert_int_equal(rn_buf_append(&m->plain, "\x08\x07\x1a", 3), 0);
	m->batch_off = m->plain.len;
	m->batch_len = strlen(batch);
	assert_int_equal(rn_buf_append(&m->plain, batch, m->batch_len), 0);
	assert_int_equal(rn_buf_append(&m->plain, "\x20\x01", 2), 0);
	assert_int_equal(rn_zstd_compress(&m->z, m->plain.data, m->plain.len, 3), 0);
}

static void packed_msg_free(struct packed_msg *m)
{
	rn_buf_free(&m->plain);
	rn_buf_free(&m->z);
}

static struct rn_wal_entry packed_entry(int64_t off, const struct packed_msg *m)
{
	struct rn_wal_entry e = entry(off, "");
	e.packed = m->z.data;
	e.packed_len = m->z.len;
	e.plain_len = m->plain.len;
	e.batch_off = m->batch_off;
	e.batch_len = m->batch_len;
	return e;
}

static const char long_batch[] =
	"records records records records records records records records records records "
	"records records records records records records records records records records";

static void test_packed_codec(void **state)
{
	struct packed_msg m;
	struct rn_buf b = {0}, plain = {0};
	struct rn_wal_entry e, d;
	size_t used;
	(void)state;

	packed_msg(&m, long_batch);
	assert_true(m.z.len < m.batch_len); /* worth storing packed */
	e = packed_entry(7, &m);
	assert_int_equal(rn_wal_entry_encode(&b, &e), 0);
	assert_true(b.len < RN_WAL_HDR_LEN + 26 + 14 + m.plain.len); /* smaller than format 1 */
	assert_int_equal(rn_wal_entry_decode(b.data, b.len, &d, &used), 1);
	assert_int_equal(used, b.len);
	assert_int_equal(d.offset, 7);
	assert_memory_equal(d.stream_id, "stream-1", 8);
	assert_memory_equal(d.table, "main.t", 6);
	assert_null(d.batch); /* not usable before unpack */
	assert_int_equal(d.packed_len, m.z.len);
	assert_memory_equal(d.packed, m.z.data, m.z.len); /* stored verbatim */
	assert_int_equal(d.plain_len, m.plain.len);
	assert_int_equal(d.batch_off, m.batch_off);
	assert_int_equal(d.batch_len, m.batch_len);
	assert_int_equal(rn_wal_entry_unpack(&d, &plain), 0);
	assert_memory_equal(d.batch, long_batch, m.batch_len);
	for (size_t cut = 0; cut < b.len; cut++)
		assert_int_equal(rn_wal_entry_decode(b.data, cut, &d, &used), 0);
	for (size_t i = 0; i < b.len; i++) { /* the CRC covers the packed fields and frame */
		b.data[i] ^= 0x40;
		int r = rn_wal_entry_decode(b.data, b.len, &d, &used);
		assert_true(r == RN_ECORRUPT || r == 0);
		b.data[i] ^= 0x40;
	}

	/* refused on append: a batch slice outside the message, a message over the cap */
	size_t was = b.len;
	e.batch_off = m.plain.len - 1;
	assert_int_equal(rn_wal_entry_encode(&b, &e), RN_EINVAL);
	e.batch_off = m.batch_off;
	e.batch_len = m.plain.len;
	assert_int_equal(rn_wal_entry_encode(&b, &e), RN_EINVAL);
	e = packed_entry(7, &m);
	e.plain_len = ((size_t)64 << 20) + 1;
	assert_int_equal(rn_wal_entry_encode(&b, &e), RN_EINVAL);
	assert_int_equal(b.len, was);

	/* checksums that hold over a frame that does not give plain_len bytes: RN_ECORRUPT */
	const size_t wrong[] = {m.plain.len + 1, m.plain.len - 1};
	for (size_t k = 0; k < 2; k++) {
		rn_buf_reset(&b);
		e = packed_entry(7, &m);
		e.plain_len = wrong[k];
		e.batch_len = 1;
		assert_int_equal(rn_wal_entry_encode(&b, &e), 0);
		assert_int_equal(rn_wal_entry_decode(b.data, b.len, &d, &used), 1);
		assert_int_equal(rn_wal_entry_unpack(&d, &plain), RN_ECORRUPT);
	}
	rn_buf_reset(&b);
	e = packed_entry(7, &m);
	e.packed = (const uint8_t *)"not a zstd frame";
	e.packed_len = 16;
	assert_int_equal(rn_wal_entry_encode(&b, &e), 0);
	assert_int_equal(rn_wal_entry_decode(b.data, b.len, &d, &used), 1);
	assert_int_equal(rn_wal_entry_unpack(&d, &plain), RN_ECORRUPT);
	/* an unpacked entry is left as it is */
	rn_buf_reset(&b);
	e = entry(3, "abc");
	assert_int_equal(rn_wal_entry_encode(&b, &e), 0);
	assert_int_equal(rn_wal_entry_decode(b.data, b.len, &d, &used), 1);
	assert_null(d.packed);
	assert_int_equal(rn_wal_entry_unpack(&d, &plain), 0);
	assert_memory_equal(d.batch, "abc", 3);
	rn_buf_free(&plain);
	rn_buf_free(&b);
	packed_msg_free(&m);
}

/* Two entries (stream-1 / main.t, offsets 10 and 11, batches "\x0a\x05old-0" and
 * "\x0a\x05old-1") as the WAL wrote them before packed entries existed (format 1 only):
 * bytes from that encoder, kept here so that an old segment's replay stays tested. */
static const char old_segment[] = "\x52\x4e\x57\x31\x23\x00\x00\x00\xdc\x93\xcd\xec\x01\x01\x08\x00"
				  "\x06\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x73\x74\x72\x65\x61\x6d"
				  "\x2d\x31\x6d\x61\x69\x6e\x2e\x74\x0a\x05\x6f\x6c\x64\x2d\x30\x52"
				  "\x4e\x57\x31\x23\x00\x00\x00\xfa\xdb\x7d\xe9\x01\x01\x08\x00\x06"
				  "\x00\x0b\x00\x00\x00\x00\x00\x00\x00\x73\x74\x72\x65\x61\x6d\x2d"
				  "\x31\x6d\x61\x69\x6e\x2e\x74\x0a\x05\x6f\x6c\x64\x2d\x31";

struct batches {
	int64_t offsets[16];
	char batch[16][200];
	int n;
};

static int collect_batches(void *ctx, const struct rn_wal_entry *e)
{
	struct batches *s = ctx;
	assert_true(s->n < 16);
	assert_non_null(e->batch);
	assert_true(e->batch_len < sizeof(s->batch[0]));
	s->offsets[s->n] = e->offset;
	memcpy(s->batch[s->n], e->batch, e->batch_len);
	s->batch[s->n][e->batch_len] = 0;
	s->n++;
	return 0;
}

static void write_file(const char *p, const void *data, size_t len, const char *mode)
{
	FILE *f = fopen(p, mode);
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void clear_segments(void)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -f %s/wal-*.log", dir);
	assert_int_equal(system(cmd), 0);
}

static void check_mixed(const struct batches *s)
{
	assert_int_equal(s->n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(s->offsets[i], 10 + i);
	assert_string_equal(s->batch[0], "\x0a\x05old-0");
	assert_string_equal(s->batch[1], "\x0a\x05old-1");
	assert_string_equal(s->batch[2], long_batch);
	assert_string_equal(s->batch[3], "plain");
	assert_string_equal(s->batch[4], long_batch);
}

/* A WAL directory from before packed entries, taken over by this code: the old segment
 * replays as it is, new entries (packed and not) follow in a new one, and replay, scan and
 * scan_all hand out the same batches in order. */
static void test_old_format_replay(void **state)
{
	struct rn_wal *w;
	struct batches s = {0};
	struct packed_msg m;
	uint64_t seg;
	(void)state;

	clear_segments();
	write_file(only_segment_path(1), old_segment, sizeof(old_segment) - 1, "wb");
	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, collect_batches, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.offsets[0], 10);
	assert_string_equal(s.batch[1], "\x0a\x05old-1");
	assert_int_equal(rn_wal_segment_bytes(w, 1), sizeof(old_segment) - 1); /* untouched */
	packed_msg(&m, long_batch);
	struct rn_wal_entry e[3] = {packed_entry(12, &m), entry(13, "plain"), packed_entry(14, &m)};
	for (int i = 0; i < 3; i++)
		assert_int_equal(rn_wal_append(w, &e[i]), 0);
	assert_int_equal(rn_wal_sync(w), 0);
	assert_true(rn_wal_written(w) > 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(rn_wal_scan_all(w, collect_batches, &s), 0);
	check_mixed(&s);
	rn_wal_close(w);

	memset(&s, 0, sizeof(s));
	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, collect_batches, &s), 0);
	check_mixed(&s);
	memset(&s, 0, sizeof(s));
	assert_int_equal(rn_wal_scan(w, 2, collect_batches, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.batch[0], long_batch);
	assert_int_equal(rn_wal_rotate(w, &seg), 0);
	assert_int_equal(rn_wal_drop_before(w, seg, NULL, NULL), 0);
	rn_wal_close(w);
	packed_msg_free(&m);
}

/* A packed entry whose checksum holds but whose frame does not decompress (written so by a
 * bug, or edited): no torn tail, so nothing is cut; replay stops with RN_ECORRUPT naming the
 * segment, the entries before it delivered, the file and the entries after it kept for the
 * operator. rn_wal_scan of such an older segment fails the same way. */
static void test_corrupt_packed(void **state)
{
	struct rn_wal *w;
	struct batches s = {0};
	struct rn_buf b = {0};
	struct packed_msg m;
	struct stat st;
	uint64_t seg;
	(void)state;

	clear_segments();
	packed_msg(&m, long_batch);
	struct rn_wal_entry e[3] = {packed_entry(1, &m), packed_entry(2, &m), entry(3, "after")};
	e[1].packed = (const uint8_t *)"\x28\xb5\x2f\xfd garbage after a zstd magic";
	e[1].packed_len = 30;
	for (int i = 0; i < 3; i++)
		assert_int_equal(rn_wal_entry_encode(&b, &e[i]), 0);
	write_file(only_segment_path(1), b.data, b.len, "wb");

	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, collect_batches, &s), RN_ECORRUPT);
	assert_non_null(strstr(rn_wal_errmsg(w), "does not decompress"));
	assert_non_null(strstr(rn_wal_errmsg(w), "wal-0000000000000001.log"));
	assert_int_equal(s.n, 1);
	assert_int_equal(s.offsets[0], 1);
	rn_wal_close(w);
	assert_int_equal(stat(only_segment_path(1), &st), 0);
	assert_int_equal((size_t)st.st_size, b.len);              /* nothing cut */
	assert_int_equal(access(only_segment_path(2), F_OK), -1); /* no new segment either */

	/* the same entry in an older segment read again by a retry's scan or a refill */
	clear_segments();
	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, collect_batches, &s), 0);
	assert_int_equal(rn_wal_rotate(w, &seg), 0); /* segment 1 is older now */
	write_file(only_segment_path(1), b.data, b.len, "ab");
	memset(&s, 0, sizeof(s));
	assert_int_equal(rn_wal_scan(w, 1, collect_batches, &s), RN_ECORRUPT);
	assert_non_null(strstr(rn_wal_errmsg(w), "does not decompress"));
	assert_int_equal(s.n, 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(rn_wal_scan_all(w, collect_batches, &s), RN_ECORRUPT);
	assert_int_equal(s.n, 1);
	rn_wal_close(w);
	clear_segments();
	rn_buf_free(&b);
	packed_msg_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec),
		cmocka_unit_test(test_replay_torn_and_corrupt),
		cmocka_unit_test(test_keep_and_scan),
		cmocka_unit_test(test_scan_all),
		cmocka_unit_test(test_packed_codec),
		cmocka_unit_test(test_old_format_replay),
		cmocka_unit_test(test_corrupt_packed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
