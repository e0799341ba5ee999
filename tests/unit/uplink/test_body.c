/*
 * The request body (uplink/body.c): a side message (a health report) set at any point and
 * read in slices of any size lands whole, between two queued messages, never inside one;
 * the queued messages keep their order and bytes; a report being sent is not replaced;
 * compaction keeps what is unread; an allocation failure leaves no side message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "body.h"
#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_mem.h"

/* Three messages of 10, 3000 and 1 bytes, each byte telling its message (1, 2, 3). */
static void queue3(struct rn_up_body *b)
{
	static const size_t len[3] = {10, 3000, 1};
	for (int m = 0; m < 3; m++) {
		uint8_t *p = malloc(len[m]);
		memset(p, m + 1, len[m]);
		assert_int_equal(rn_grpc_frame_append(&b->out, 1, p, len[m]), 0);
		free(p);
	}
}

/* Splits a body into its messages: their first payload byte ('S' for the side message) in
 * order into kinds; checks each is whole and uniform. */
static void messages(const uint8_t *p, size_t len, char *kinds)
{
	size_t k = 0;
	while (len) {
		assert_true(len >= 5);
		size_t n = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
		assert_true(len >= 5 + n);
		for (size_t i = 1; i < n; i++)
			assert_int_equal(p[5 + i], p[5]);
		kinds[k++] = p[5] == 'S' ? 'S' : (char)('0' + p[5]);
		p += 5 + n;
		len -= 5 + n;
	}
	kinds[k] = 0;
}

static void side_between(void **st)
{
	(void)st;
	uint8_t side[40];
	memset(side, 'S', sizeof(side));
	/* the side message set after `at` bytes were read, reading `slice` bytes at a time */
	for (size_t at = 0; at <= 3026; at += 7)
		for (size_t slice = 1; slice <= 4096; slice = slice * 3 + 1) {
			struct rn_up_body b = {0};
			uint8_t got[4096];
			size_t n = 0, side_bytes = 0;
			int data, set = 0;
			queue3(&b);
			size_t total = rn_up_body_pending(&b);
			while (rn_up_body_pending(&b) || !set) {
				if (!set && n >= at) {
					assert_int_equal(
						rn_up_body_side_set(&b, 0, side, sizeof(side)), 0);
					set = 1;
				}
				size_t want = slice;
				if (!set && n + want > at)
					want = at - n; /* stop at `at` to set it there */
				if (!want && !set)
					continue;
				size_t r = rn_up_body_read(&b, got + n, want, &data);
				if (!r)
					break;
				if (!data)
					side_bytes += r;
				n += r;
			}
			assert_int_equal(n, total + 5 + sizeof(side));
			assert_int_equal(side_bytes, 5 + sizeof(side));
			char kinds[8];
			messages(got, n, kinds);
			/* the side message whole, at the first boundary at or after `at` */
			const char *want = at == 0                   ? "S123"
					   : at <= 15                ? "1S23"
					   : at <= 3020              ? "12S3"
					   : at <= 3026 && at > 3020 ? "123S"
								     : "?";
			assert_string_equal(kinds, want);
			rn_up_body_free(&b);
		}
}

static void busy_and_replace(void **st)
{
	(void)st;
	struct rn_up_body b = {0};
	uint8_t buf[64];
	int data;
	queue3(&b);
	assert_int_equal(rn_up_body_read(&b, buf, 3, &data), 3); /* inside message 1 */
	assert_true(data);
	/* not begun: replaced by the newer one */
	assert_int_equal(rn_up_body_side_set(&b, 1, "old", 3), 0);
	assert_int_equal(rn_up_body_side_set(&b, 1, "newer", 5), 0);
	assert_int_equal(rn_up_body_read(&b, buf, 64, &data), 12); /* message 1's rest */
	assert_true(data);
	assert_int_equal(rn_up_body_read(&b, buf, 4, &data), 4); /* the side message begins */
	assert_false(data);
	assert_int_equal(buf[0], 1); /* compressed flag */
	/* being sent: a new one is not taken, the begun one goes on to its end */
	assert_int_equal(rn_up_body_side_set(&b, 0, "x", 1), RN_EAGAIN);
	assert_int_equal(rn_up_body_read(&b, buf, 64, &data), 6);
	assert_false(data);
	assert_memory_equal(buf + 1, "newer", 5);
	/* done: a new one may come */
	assert_int_equal(rn_up_body_side_set(&b, 0, "y", 1), 0);
	assert_int_equal(rn_up_body_read(&b, buf, 64, &data), 6);
	assert_false(data);
	assert_int_equal(rn_up_body_read(&b, buf, 64, &data), 64);
	assert_true(data);
	rn_up_body_free(&b);
}

static void compact_keeps_unread(void **st)
{
	(void)st;
	struct rn_up_body b = {0};
	uint8_t buf[4096];
	int data;
	queue3(&b);
	size_t total = rn_up_body_pending(&b);
	assert_int_equal(rn_up_body_read(&b, buf, 100, &data), 100);
	rn_up_body_compact(&b, 1000); /* under the mark: kept as is */
	assert_int_equal(b.out_pos, 100);
	rn_up_body_compact(&b, 50); /* over it: the read bytes go */
	assert_int_equal(b.out_pos, 0);
	assert_int_equal(rn_up_body_pending(&b), total - 100);
	/* the frame position survives: a side message still waits for message 2's end */
	assert_int_equal(rn_up_body_side_set(&b, 0, "S", 1), 0);
	assert_int_equal(rn_up_body_read(&b, buf, 4096, &data), 3020 - 100);
	assert_true(data);
	assert_int_equal(rn_up_body_read(&b, buf, 4096, &data), 6);
	assert_false(data);
	assert_int_equal(rn_up_body_read(&b, buf, 4096, &data), 6);
	assert_true(data);
	rn_up_body_compact(&b, 1 << 20); /* all read: emptied */
	assert_int_equal(b.out.len, 0);
	assert_int_equal(rn_up_body_read(&b, buf, 4096, &data), 0);
	/* reset empties both */
	queue3(&b);
	assert_int_equal(rn_up_body_side_set(&b, 0, "S", 1), 0);
	rn_up_body_reset(&b);
	assert_int_equal(rn_up_body_pending(&b), 0);
	rn_up_body_free(&b);
}

static void no_memory(void **st)
{
	(void)st;
	struct rn_up_body b = {0};
	uint8_t buf[64];
	int data;
	rn_mem_fail_after(1);
	assert_int_equal(rn_up_body_side_set(&b, 0, "abc", 3), RN_ENOMEM);
	rn_mem_fail_after(0);
	assert_int_equal(rn_up_body_pending(&b), 0);
	assert_int_equal(rn_up_body_read(&b, buf, 64, &data), 0);
	assert_int_equal(rn_up_body_side_set(&b, 0, "abc", 3), 0);
	assert_int_equal(rn_up_body_pending(&b), 8);
	rn_up_body_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(side_between),
		cmocka_unit_test(busy_and_replace),
		cmocka_unit_test(compact_keeps_unread),
		cmocka_unit_test(no_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
