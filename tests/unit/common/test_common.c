/*
 * Unit tests for common/: protobuf wire helpers, the gRPC deframer (whole, split and hostile
 * input), UTF-8 validation, zstd round trips and caps, the capped buffer and the allocation
 * failure hook, zstd with a small hash table, the new-file writer (direct I/O path), and
 * the logger's file: switching to it, reopening after a rename, back to stderr.
 */
#include <fcntl.h>
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

#include "rn_buf.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_grpc.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "rn_utf8.h"
#include "rn_zstd.h"
#include "testutil.h"

static void test_varint_golden(void **state)
{
	struct rn_buf b = {0};
	uint64_t v;
	(void)state;
	/* offset 300 encodes as ac 02 (docs/protocol.md §4) */
	assert_int_equal(rn_pb_put_varint(&b, 300), 0);
	assert_int_equal(b.len, 2);
	assert_int_equal(b.data[0], 0xac);
	assert_int_equal(b.data[1], 0x02);
	assert_int_equal(rn_pb_varint_dec(b.data, b.data + b.len, &v), 2);
	assert_int_equal(v, 300);
	/* -1 as int64 is the 10-byte varint */
	rn_buf_reset(&b);
	rn_pb_put_varint(&b, (uint64_t)-1);
	assert_int_equal(b.len, 10);
	assert_int_equal(rn_pb_varint_dec(b.data, b.data + b.len, &v), 10);
	assert_true(v == UINT64_MAX);
	/* truncated varint is rejected */
	assert_int_equal(rn_pb_varint_dec(b.data, b.data + 9, &v), 0);
	rn_buf_free(&b);
}

static void test_pb_fields(void **state)
{
	/* create_stream_response{stream_id "sid-1"} = 0a 07 0a 05 "sid-1" */
	static const uint8_t golden[] = {0x0a, 0x07, 0x0a, 0x05, 's', 'i', 'd', '-', '1'};
	struct rn_pb_reader r, r2;
	struct rn_pb_field f;
	struct rn_buf b = {0};
	(void)state;

	rn_pb_reader_init(&r, golden, sizeof(golden));
	assert_int_equal(rn_pb_next(&r, &f), 1);
	assert_int_equal(f.num, 1);
	assert_int_equal(f.wt, RN_PB_LEN);
	assert_int_equal(f.len, 7);
	rn_pb_reader_init(&r2, f.ptr, f.len);
	assert_int_equal(rn_pb_next(&r2, &f), 1);
	assert_int_equal(f.len, 5);
	assert_memory_equal(f.ptr, "sid-1", 5);
	assert_int_equal(rn_pb_next(&r2, &f), 0);
	assert_int_equal(rn_pb_next(&r, &f), 0);

	/* the encoder produces the same bytes */
	struct rn_buf inner = {0};
	rn_pb_put_str(&inner, 1, "sid-1");
	rn_pb_put_bytes(&b, 1, inner.data, inner.len);
	assert_int_equal(b.len, sizeof(golden));
	assert_memory_equal(b.data, golden, sizeof(golden));

	/* a length past the end, field number 0 and group wire types are errors */
	static const uint8_t bad_len[] = {0x0a, 0x09, 'x'};
	static const uint8_t field0[] = {0x00, 0x01};
	static const uint8_t group[] = {0x0b};
	rn_pb_reader_init(&r, bad_len, sizeof(bad_len));
	assert_int_equal(rn_pb_next(&r, &f), RN_EINVAL);
	rn_pb_reader_init(&r, field0, sizeof(field0));
	assert_int_equal(rn_pb_next(&r, &f), RN_EINVAL);
	rn_pb_reader_init(&r, group, sizeof(group));
	assert_int_equal(rn_pb_next(&r, &f), RN_EINVAL);
	rn_buf_free(&inner);
	rn_buf_free(&b);
}

static void test_deframe_whole_and_split(void **state)
{
	struct rn_buf wire = {0};
	struct rn_grpc_deframer d = {0};
	struct rn_grpc_msg m;
	size_t used, off = 0;
	int got = 0;
	(void)state;

	rn_grpc_frame_append(&wire, 0, "hello", 5);
	rn_grpc_frame_append(&wire, 1, "", 0);
	rn_grpc_frame_append(&wire, 0, "world!", 6);

	/* whole: three messages, zero-copy */
	while (off < wire.len) {
		int rc = rn_grpc_deframe(&d, wire.data + off, wire.len - off, &used, &m);
		assert_true(rc >= 0);
		off += used;
		if (rc == 1) {
			got++;
			if (got == 1)
				assert_memory_equal(m.data, "hello", 5);
			if (got == 2)
				assert_int_equal(m.compressed, 1);
		}
	}
	assert_int_equal(got, 3);

	/* one byte at a time */
	got = 0;
	for (off = 0; off < wire.len; off++) {
		int rc = rn_grpc_deframe(&d, wire.data + off, 1, &used, &m);
		assert_int_equal(used, 1);
		if (rc == 1) {
			got++;
			if (got == 3) {
				assert_int_equal(m.len, 6);
				assert_memory_equal(m.data, "world!", 6);
			}
		}
	}
	assert_int_equal(got, 3);
	assert_false(rn_grpc_deframer_partial(&d));
	rn_grpc_deframer_free(&d);
	rn_buf_free(&wire);
}

static void test_deframe_hostile(void **state)
{
	struct rn_grpc_deframer d = {.max_msg = 1024};
	struct rn_grpc_msg m;
	size_t used;
	uint8_t h[5];
	(void)state;

	rn_grpc_frame_header(h, 0, 1025);
	assert_int_equal(rn_grpc_deframe(&d, h, 5, &used, &m), RN_ETOOBIG);
	rn_grpc_deframer_reset(&d);
	rn_grpc_frame_header(h, 0, 0xffffffffu);
	assert_int_equal(rn_grpc_deframe(&d, h, 3, &used, &m), 0);
	assert_int_equal(rn_grpc_deframe(&d, h + 3, 2, &used, &m), RN_ETOOBIG);
	rn_grpc_deframer_reset(&d);
	h[0] = 7; /* only 0 and 1 are valid flags */
	assert_int_equal(rn_grpc_deframe(&d, h, 5, &used, &m), RN_EINVAL);
	rn_grpc_deframer_free(&d);
}

static void test_grpc_message_encode(void **state)
{
	struct rn_buf b = {0};
	(void)state;
	assert_int_equal(rn_grpc_message_encode(&b, "bad 100% \xc3\xa9\n"), 0);
	assert_string_equal((char *)b.data, "bad 100%25 %C3%A9%0A");
	rn_buf_free(&b);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(rn_utf8_valid("", 0));
	assert_true(rn_utf8_valid("plain ascii text longer than eight", 34));
	assert_true(rn_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
	assert_false(rn_utf8_valid("\xc0\xaf", 2));         /* overlong */
	assert_false(rn_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(rn_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(rn_utf8_valid("abc\xe2\x82", 5));      /* truncated */
	assert_false(rn_utf8_valid("\xff", 1));
	/* a bad or multi-byte sequence at every position of a long ASCII run (the 32- and
	 * 8-byte steps must hand over to the byte path wherever it is) */
	char buf[100];
	for (size_t at = 0; at + 3 <= sizeof(buf); at++) {
		memset(buf, 'a', sizeof(buf));
		assert_true(rn_utf8_valid(buf, sizeof(buf)));
		memcpy(buf + at, "\xe2\x82\xac", 3);
		assert_true(rn_utf8_valid(buf, sizeof(buf)));
		buf[at + 2] = 'x';
		assert_false(rn_utf8_valid(buf, sizeof(buf)));
		buf[at] = (char)0xff;
		assert_false(rn_utf8_valid(buf, sizeof(buf)));
	}
}

static void test_zstd_roundtrip_and_cap(void **state)
{
	struct rn_buf c = {0}, d = {0};
	char src[5000];
	(void)state;
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (char)('a' + i % 7);
	assert_int_equal(rn_zstd_compress(&c, src, sizeof(src), 3), 0);
	assert_true(c.len < sizeof(src));
	assert_int_equal(rn_zstd_decompress(&d, c.data, c.len, sizeof(src)), 0);
	assert_int_equal(d.len, sizeof(src));
	assert_memory_equal(d.data, src, sizeof(src));
	rn_buf_reset(&d);
	assert_int_equal(rn_zstd_decompress(&d, c.data, c.len, 100), RN_ETOOBIG);
	assert_int_equal(d.len, 0);
	assert_int_equal(rn_zstd_decompress(&d, "garbage!", 8, 100), RN_ECORRUPT);
	assert_int_equal(rn_zstd_decompress(&d, c.data, c.len / 2, 10000), RN_ECORRUPT);
	rn_buf_free(&c);
	rn_buf_free(&d);
}

/* The page profile (hash_log) gives frames any zstd decoder reads; 0 is the plain call. */
static void test_zstd_hash_log(void **state)
{
	struct rn_buf c = {0}, d = {0};
	static char src[300000];
	(void)state;
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (char)("{\"t\":12,\"dev\":\"truck\"}"[i % 23] + (i % 1000 == 0));
	for (int hl = 0; hl <= 12; hl += 6) {
		rn_buf_reset(&c);
		rn_buf_reset(&d);
		assert_int_equal(rn_zstd_compress_hl(&c, src, sizeof(src), 1, hl ? hl + 5 : 0), 0);
		assert_true(c.len < sizeof(src) / 10);
		assert_int_equal(rn_zstd_decompress(&d, c.data, c.len, sizeof(src)), 0);
		assert_int_equal(d.len, sizeof(src));
		assert_memory_equal(d.data, src, sizeof(src));
	}
	/* the shared context keeps no parameter into the plain call */
	rn_buf_reset(&c);
	assert_int_equal(rn_zstd_compress(&c, src, sizeof(src), 3), 0);
	rn_buf_reset(&d);
	assert_int_equal(rn_zstd_decompress(&d, c.data, c.len, sizeof(src)), 0);
	assert_memory_equal(d.data, src, sizeof(src));
	assert_int_equal(rn_zstd_compress_hl(&c, src, 10, 1, 99), RN_EINVAL);
	rn_buf_free(&c);
	rn_buf_free(&d);
}

/* rn_write_new_file writes exactly the bytes, whatever the length against the 4 KiB direct
 * I/O blocks and the 1 MiB bounce buffer, and leaves the descriptor without O_DIRECT. */
static void test_write_new_file(void **state)
{
	static const size_t lens[] = {0,      1, 4095, 4096, 4097, 1 << 20, (1 << 20) + 4096 + 7,
				      3000000};
	char dir[256], path[300];
	size_t max = 3000000;
	uint8_t *src = malloc(max + 2), *got = malloc(max);
	(void)state;
	assert_non_null(src);
	assert_non_null(got);
	for (size_t i = 0; i < max + 2; i++)
		src[i] = (uint8_t)(i * 131 + (i >> 12));
	assert_int_equal(rn_test_tmpdir(dir, sizeof(dir), "fs"), 0);
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		size_t len = lens[k];
		char name[32];
		snprintf(name, sizeof(name), "f%zu", k);
		rn_test_path(path, sizeof(path), dir, name);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		assert_true(fd >= 0);
		/* an unaligned source, as a realloc'd buffer is */
		assert_int_equal(rn_write_new_file(fd, src + (k % 3), len), 0);
		assert_int_equal(fcntl(fd, F_GETFL) & O_DIRECT, 0);
		assert_int_equal(fsync(fd), 0);
		close(fd);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal((size_t)st.st_size, len);
		fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(read(fd, got, max), (ssize_t)len);
		close(fd);
		assert_memory_equal(got, src + (k % 3), len);
	}
	assert_int_equal(rn_test_rmtree(dir), 0);
	free(src);
	free(got);
}

static char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	return buf;
}

/* A logrotate cycle: lines go to the file, then (renamed) to the renamed file until the
 * reopen, and to a new file of the configured name after it. */
/* rn_log's sink: warnings and errors only, the message with its component, no newline. */
static int sink_calls;
static char sink_text[200];
static int sink_level;
static void sink(void *ctx, enum rn_log_level lvl, int64_t t_ms, const char *msg, size_t len)
{
	assert_ptr_equal(ctx, &sink_calls);
	assert_true(t_ms > 1600000000000LL);
	sink_calls++;
	sink_level = (int)lvl;
	snprintf(sink_text, sizeof(sink_text), "%.*s", (int)len, msg);
}

static void test_log_sink(void **state)
{
	char big[2000];
	(void)state;
	rn_log_set_sink(sink, &sink_calls);
	rn_log_info("test", "not for the sink");
	assert_int_equal(sink_calls, 0);
	rn_log_warn("comp", "careful %d", 7);
	assert_int_equal(sink_calls, 1);
	assert_int_equal(sink_level, RN_LOG_WARN);
	assert_string_equal(sink_text, "comp: careful 7");
	rn_log_error("x", "bad");
	assert_int_equal(sink_level, RN_LOG_ERROR);
	assert_string_equal(sink_text, "x: bad");
	/* a message cut at the line's cap still reaches the sink, cut the same */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	rn_log_warn("long", "%s", big);
	assert_int_equal(sink_calls, 3);
	assert_int_equal(strncmp(sink_text, "long: aaa", 9), 0);
	rn_log_set_sink(NULL, NULL);
	rn_log_error("x", "gone");
	assert_int_equal(sink_calls, 3);
}

static void test_log_file_reopen(void **state)
{
	char dir[256], path[300], moved[300];
	(void)state;
	assert_int_equal(rn_test_tmpdir(dir, sizeof(dir), "log"), 0);
	rn_test_path(path, sizeof(path), dir, "x.log");
	rn_test_path(moved, sizeof(moved), dir, "x.log.1");
	assert_int_equal(rn_log_reopen(), 0); /* stderr: nothing to reopen */
	assert_int_equal(rn_log_set_file(path), 0);
	rn_log_warn("test", "first %d", 1);
	assert_int_equal(rename(path, moved), 0);
	rn_log_warn("test", "second");
	assert_int_equal(rn_log_reopen(), 0);
	rn_log_warn("test", "third");
	assert_non_null(strstr(slurp(moved), "warn test: first 1\n"));
	assert_non_null(strstr(slurp(moved), "second"));
	assert_null(strstr(slurp(moved), "third"));
	assert_non_null(strstr(slurp(path), "warn test: third\n"));
	assert_null(strstr(slurp(path), "second"));
	assert_int_equal(rn_log_set_file("/nonexistent-dir/x.log"), RN_EIO);
	rn_log_warn("test", "fourth"); /* still where it went */
	assert_non_null(strstr(slurp(path), "fourth"));
	assert_int_equal(rn_log_set_file(NULL), 0);
	rn_log_warn("test", "on stderr again");
	assert_null(strstr(slurp(path), "stderr again"));
	assert_int_equal(rn_test_rmtree(dir), 0);
}

static void test_buf_cap_and_failure(void **state)
{
	struct rn_buf b = {.max = 16};
	(void)state;
	assert_int_equal(rn_buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(rn_buf_append(&b, "0123456789", 10), RN_ENOMEM);
	assert_int_equal(b.len, 10); /* unchanged on failure */
	rn_buf_consume(&b, 4);
	assert_memory_equal(b.data, "456789", 6);
	rn_buf_free(&b);

	struct rn_buf c = {0};
	rn_mem_fail_after(1);
	assert_int_equal(rn_buf_append(&c, "x", 1), RN_ENOMEM);
	assert_int_equal(rn_buf_append(&c, "x", 1), 0);
	rn_buf_free(&c);
	assert_string_equal(rn_strerror(RN_EFULL), "disk buffer full");
}

/* rn_grow: doubles from `first`, keeps the items, clamps to max, refuses past it and on
 * overflow, and leaves the array and its capacity as they were when the allocation fails. */
static void test_grow(void **state)
{
	uint32_t *a = NULL;
	size_t cap = 0, n = 0;
	long live = rn_mem_live();
	(void)state;
	for (; n < 100; n++) {
		assert_int_equal(rn_grow(&a, &cap, n, sizeof(*a), 4, SIZE_MAX), 0);
		assert_true(cap > n);
		a[n] = (uint32_t)n * 7;
	}
	assert_int_equal(cap, 128); /* 4, 8, ..., 128: doubled, never more */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(a[i], i * 7);
	assert_int_equal(rn_grow(&a, &cap, 99, sizeof(*a), 4, SIZE_MAX), 0); /* room: no call */
	/* the allocation fails: nothing changes, the old array is still whole */
	uint32_t *old = a;
	rn_mem_fail_after(1);
	assert_int_equal(rn_grow(&a, &cap, 128, sizeof(*a), 4, SIZE_MAX), RN_ENOMEM);
	assert_int_equal(rn_mem_fail_disarm(), 1);
	assert_ptr_equal(a, old);
	assert_int_equal(cap, 128);
	assert_int_equal(a[99], 99 * 7);
	/* clamped to max, then refused at it */
	assert_int_equal(rn_grow(&a, &cap, 128, sizeof(*a), 4, 150), 0);
	assert_int_equal(cap, 150);
	assert_int_equal(rn_grow(&a, &cap, 149, sizeof(*a), 4, 150), 0);
	assert_int_equal(rn_grow(&a, &cap, 150, sizeof(*a), 4, 150), RN_ENOMEM);
	assert_int_equal(cap, 150);
	/* bytes past size_t: refused before any allocation */
	assert_int_equal(rn_grow(&a, &cap, SIZE_MAX / 2, sizeof(*a), 4, SIZE_MAX), RN_ENOMEM);
	assert_int_equal(cap, 150);
	rn_free(a);
	/* from empty: `first` items, or what need asks for */
	a = NULL;
	cap = 0;
	assert_int_equal(rn_grow(&a, &cap, 20, sizeof(*a), 16, SIZE_MAX), 0);
	assert_int_equal(cap, 32);
	rn_free(a);
	assert_int_equal(rn_mem_live(), live);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint_golden),
		cmocka_unit_test(test_pb_fields),
		cmocka_unit_test(test_deframe_whole_and_split),
		cmocka_unit_test(test_deframe_hostile),
		cmocka_unit_test(test_grpc_message_encode),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_zstd_roundtrip_and_cap),
		cmocka_unit_test(test_zstd_hash_log),
		cmocka_unit_test(test_write_new_file),
		cmocka_unit_test(test_buf_cap_and_failure),
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_log_file_reopen),
		cmocka_unit_test(test_log_sink),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
