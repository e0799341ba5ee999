/*
 * Unit tests for the uplink's I/O-free parts: the response decoder (golden bytes of
 * docs/protocol.md §4, hostile input) and the retry policy (full jitter bounds, growth, cap,
 * reset, terminal statuses, pushback floor, fault episodes), and the response body feed:
 * framing errors named as such, and an allocation-failure sweep (every N, every split of the
 * body in the long mode RN_SWEEP_LONG=1) in which a failure of ours is reported as ours,
 * never as the server's bad framing, the events before it are a prefix of the real ones,
 * and the call replayed after it yields every event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backoff.h"
#include "headers.h"
#include "response.h"
#include "retain.h"
#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_mem.h"

static void test_decode_golden(void **state)
{
	struct rn_up_event ev[4];
	(void)state;
	/* PersistentStreamResponse: ack 42 is field 3 */
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x1a\x02\x08\x2a", 4, ev, 4),
			 1);
	assert_int_equal(ev[0].kind, RN_UP_ACK);
	assert_int_equal(ev[0].offset, 42);
	/* create_stream_response{stream_id "sid-1"} */
	assert_int_equal(
		rn_uplink_decode_response((const uint8_t *)"\x0a\x07\x0a\x05sid-1", 9, ev, 4), 1);
	assert_int_equal(ev[0].kind, RN_UP_CREATED);
	assert_string_equal(ev[0].stream_id, "sid-1");
	/* resume with and without last_committed_offset */
	assert_int_equal(
		rn_uplink_decode_response((const uint8_t *)"\x12\x03\x08\xac\x02", 5, ev, 4), 1);
	assert_int_equal(ev[0].kind, RN_UP_RESUMED);
	assert_int_equal(ev[0].offset, 300);
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x12\x00", 2, ev, 4), 1);
	assert_int_equal(ev[0].offset, -1);
	/* close_stream_signal{duration 300 s, 500 ns} */
	assert_int_equal(
		rn_uplink_decode_response(
			(const uint8_t *)"\x22\x08\x0a\x06\x08\xac\x02\x10\xf4\x03", 10, ev, 4),
		1);
	assert_int_equal(ev[0].kind, RN_UP_CLOSE);
	assert_int_equal(ev[0].close_secs, 300);
	/* unknown fields are skipped */
	assert_int_equal(
		rn_uplink_decode_response((const uint8_t *)"\x2a\x01x\x1a\x02\x08\x01", 7, ev, 4),
		1);
	assert_int_equal(ev[0].offset, 1);
}

/* table_committed_up_to_offset (field 1000 of IngestRecordResponse, a Runnel extension) */
static void test_decode_committed(void **state)
{
	struct rn_up_event ev[4];
	(void)state;
	/* ack 42, committed 7 */
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x1a\x05\x08\x2a\xc0\x3e\x07",
						   7, ev, 4),
			 1);
	assert_int_equal(ev[0].kind, RN_UP_ACK);
	assert_int_equal(ev[0].offset, 42);
	assert_int_equal(ev[0].committed, 7);
	/* committed before the durable offset, and committed 0 */
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x1a\x05\xc0\x3e\x00\x08\x03",
						   7, ev, 4),
			 1);
	assert_int_equal(ev[0].offset, 3);
	assert_int_equal(ev[0].committed, 0);
	/* absent: -1, as from a server without committed acks */
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x1a\x02\x08\x2a", 4, ev, 4),
			 1);
	assert_int_equal(ev[0].committed, -1);
	/* a negative committed offset (2^64 - 1) is no offset: refused, never taken as absent */
	assert_int_equal(
		rn_uplink_decode_response((const uint8_t *)"\x1a\x0e\x08\x01\xc0\x3e\xff\xff\xff"
							   "\xff\xff\xff\xff\xff\xff\x01",
					  16, ev, 4),
		RN_EINVAL);
	/* committed without the durable offset: an ack without its offset */
	assert_int_equal(
		rn_uplink_decode_response((const uint8_t *)"\x1a\x03\xc0\x3e\x01", 5, ev, 4),
		RN_EINVAL);
}

/* What the agent may delete: on the table's offset with a server that reports it, on the
 * durability ack with one that does not; the window follows the durability ack either way. */
static void test_retain(void **state)
{
	struct rn_retain r;
	int rel = 7;
	(void)state;
	rn_retain_init(&r, -1);
	rn_retain_call(&r, 1);
	/* durable acks move the window, release nothing */
	assert_int_equal(rn_retain_ack(&r, 4, -1), 0);
	assert_int_equal(r.acked, 4);
	assert_int_equal(r.released, -1);
	/* the table has 2: released up to 2 */
	assert_int_equal(rn_retain_ack(&r, 9, 2), 1);
	assert_int_equal(r.acked, 9);
	assert_int_equal(r.released, 2);
	assert_int_equal(rn_retain_ack(&r, 9, 2), 0); /* told already */
	/* a committed claim past the ack counts up to the ack only */
	assert_int_equal(rn_retain_ack(&r, 9, 50), 1);
	assert_int_equal(r.released, 9);
	assert_int_equal(rn_retain_ack(&r, 12, -1), 0); /* not remembered past 9 */
	assert_int_equal(rn_retain_ack(&r, 12, 12), 1);
	assert_int_equal(r.released, 12);
	/* the server is lost: another answers the table's 12 + nothing; window from 12 */
	assert_int_equal(rn_retain_ack(&r, 20, -1), 0);
	rn_retain_call(&r, 1);
	assert_int_equal(rn_retain_resumed(&r, 12, &rel), 12);
	assert_int_equal(rel, 0);
	assert_int_equal(r.acked, 12); /* 13..20 are sent again */
	/* an answer below what was released: the window starts after the release */
	assert_int_equal(rn_retain_resumed(&r, 5, &rel), 12);
	assert_int_equal(rel, 0);
	/* a resume on the same server (its WAL has 20): acked 20, nothing released until the
	 * table says so */
	assert_int_equal(rn_retain_resumed(&r, 20, &rel), 20);
	assert_int_equal(rel, 0);
	assert_int_equal(r.released, 12);

	/* a server without committed acks: released on the durability ack and the resume */
	rn_retain_init(&r, 3);
	rn_retain_call(&r, 0);
	assert_int_equal(r.acked, 3);
	assert_int_equal(rn_retain_ack(&r, 6, -1), 1);
	assert_int_equal(r.released, 6);
	assert_int_equal(rn_retain_ack(&r, 5, -1), 0); /* never back */
	assert_int_equal(rn_retain_resumed(&r, 10, &rel), 10);
	assert_int_equal(rel, 1);
	assert_int_equal(r.released, 10);
	assert_int_equal(rn_retain_resumed(&r, 8, &rel), 10);
	assert_int_equal(rel, 0);
	/* moved from a committed-acks server to an older one: what was kept is released by
	 * the older server's ack (as that server defines it) */
	rn_retain_init(&r, -1);
	rn_retain_call(&r, 1);
	assert_int_equal(rn_retain_ack(&r, 7, 1), 1);
	rn_retain_call(&r, 0);
	assert_int_equal(rn_retain_resumed(&r, 7, &rel), 7);
	assert_int_equal(rel, 1);
	assert_int_equal(r.released, 7);
}

static void test_decode_hostile(void **state)
{
	struct rn_up_event ev[4];
	(void)state;
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x1a\x05\x08", 3, ev, 4),
			 RN_EINVAL);
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x1a\x00", 2, ev, 4),
			 RN_EINVAL);
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x0a\x00", 2, ev, 4),
			 RN_EINVAL);
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x0a\x02\x0a\x00", 4, ev, 4),
			 RN_EINVAL);
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"", 0, ev, 4), 0);
}

static void test_backoff(void **state)
{
	struct rn_backoff b = {.min_ms = 100, .max_ms = 1000, .slow_ms = 30000};
	(void)state;
	/* full jitter: uniform in [0, ceil), ceil doubling from min up to max */
	assert_int_equal(rn_backoff_next(&b, 0.999, 0), 99);
	assert_int_equal(rn_backoff_next(&b, 0.999, 0), 199);
	assert_int_equal(rn_backoff_next(&b, 0.5, 0), 200);
	assert_int_equal(rn_backoff_next(&b, 0.0, 0), 0);
	for (int i = 0; i < 50; i++)
		assert_true(rn_backoff_next(&b, 0.999, 0) <= 1000);
	rn_backoff_reset(&b);
	assert_int_equal(rn_backoff_next(&b, 0.999, 0), 99);
	assert_int_equal(rn_backoff_next(&b, 0.1, 1), 30000);
	assert_true(rn_backoff_terminal_status(16));
	assert_true(rn_backoff_terminal_status(5));
	assert_false(rn_backoff_terminal_status(14));
	assert_false(rn_backoff_terminal_status(8));
	assert_false(rn_backoff_terminal_status(-1));
}

/* Pushback is a floor under the jittered backoff, which keeps growing underneath. */
static void test_pushback(void **state)
{
	struct rn_backoff b = {.min_ms = 100, .max_ms = 1000, .slow_ms = 30000};
	(void)state;
	assert_int_equal(rn_backoff_pushback(&b, 0.999, 1500), 1500);
	assert_int_equal(rn_backoff_pushback(&b, 0.999, 50), 199);
	assert_int_equal(rn_backoff_pushback(&b, 0.0, 0), 0);
	assert_int_equal(b.attempt, 3);
	for (int i = 0; i < 20; i++)
		assert_true(rn_backoff_pushback(&b, 0.5, 700) >= 700);
}

/* A fault repeating on every retry is one episode: loud once, quiet after, loud again when
 * its kind changes or after it ended. */
static void test_episode(void **state)
{
	struct rn_episode e = {0};
	int64_t dur = -1;
	(void)state;
	assert_int_equal(rn_episode_end(&e, 5, &dur), 0);
	assert_int_equal(dur, 0);
	assert_int_equal(rn_episode_fail(&e, 3008, 100), 1);
	assert_int_equal(rn_episode_fail(&e, 3008, 200), 0);
	assert_int_equal(rn_episode_fail(&e, 3008, 300), 0);
	assert_int_equal(e.failures, 3);
	assert_int_equal(rn_episode_fail(&e, 4006, 400), 1); /* a different kind: say so */
	assert_int_equal(rn_episode_fail(&e, 4006, 500), 0);
	assert_int_equal(rn_episode_end(&e, 900, &dur), 2);
	assert_int_equal(dur, 500);
	assert_int_equal(rn_episode_fail(&e, 4006, 1000), 1); /* new episode */
	assert_int_equal(rn_episode_end(&e, 1000, NULL), 1);
}

/* What a feed delivered. */
struct collected {
	struct rn_up_event ev[16];
	int nev, nmsg;
};

static int collect(void *ctx, const struct rn_up_event *ev, int n)
{
	struct collected *c = ctx;
	for (int i = 0; i < n && c->nev < 16; i++)
		c->ev[c->nev++] = ev[i];
	c->nmsg++;
	return 0;
}

static int stop_at_second(void *ctx, const struct rn_up_event *ev, int n)
{
	return collect(ctx, ev, n) || ((struct collected *)ctx)->nmsg == 2;
}

/* A response body: created, two acks, a message with only an unknown field, a close
 * signal, one more ack; and the events it holds. */
static const char *const body_msgs[] = {"\x0a\x07\x0a\x05sid-1",    "\x1a\x02\x08\x00",
					"\x1a\x02\x08\x01",         "\x2a\x01x",
					"\x22\x04\x0a\x02\x08\x1e", "\x1a\x02\x08\x02"};
static const size_t body_lens[] = {9, 4, 4, 3, 6, 4};

static void make_body(struct rn_buf *b)
{
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(rn_grpc_frame_append(b, 0, body_msgs[i], body_lens[i]), 0);
}

static int events_prefix(const struct collected *c, int whole)
{
	static const struct rn_up_event want[] = {
		{.kind = RN_UP_CREATED, .stream_id = "sid-1", .offset = -1},
		{.kind = RN_UP_ACK, .offset = 0},
		{.kind = RN_UP_ACK, .offset = 1},
		{.kind = RN_UP_CLOSE, .offset = -1, .close_secs = 30},
		{.kind = RN_UP_ACK, .offset = 2}};
	if (c->nev > 5 || (whole && c->nev != 5))
		return 0;
	for (int i = 0; i < c->nev; i++)
		if (c->ev[i].kind != want[i].kind || c->ev[i].offset != want[i].offset ||
		    c->ev[i].close_secs != want[i].close_secs ||
		    strcmp(c->ev[i].stream_id, want[i].stream_id))
			return 0;
	return 1;
}

/* Feeds the body in pieces of `step` bytes; the first result that is not OK. */
static enum rn_up_feed feed_split(struct rn_grpc_deframer *df, const struct rn_buf *body,
				  size_t step, rn_up_msg_fn fn, struct collected *c)
{
	size_t mlen;
	for (size_t off = 0; off < body->len; off += step) {
		size_t n = body->len - off < step ? body->len - off : step;
		enum rn_up_feed r = rn_uplink_feed(df, body->data + off, n, fn, c, &mlen);
		if (r != RN_UP_FEED_OK)
			return r;
	}
	return RN_UP_FEED_OK;
}

static void test_feed(void **state)
{
	struct rn_buf body = {0};
	struct rn_grpc_deframer df = {.max_msg = 1 << 20};
	struct collected c = {0};
	size_t mlen;
	(void)state;
	make_body(&body);
	for (size_t step = 1; step <= body.len; step++) {
		memset(&c, 0, sizeof(c));
		rn_grpc_deframer_reset(&df);
		assert_int_equal(feed_split(&df, &body, step, collect, &c), RN_UP_FEED_OK);
		assert_int_equal(c.nmsg, 6);
		assert_true(events_prefix(&c, 1));
	}
	memset(&c, 0, sizeof(c));
	rn_grpc_deframer_reset(&df);
	assert_int_equal(rn_uplink_feed(&df, body.data, body.len, stop_at_second, &c, &mlen),
			 RN_UP_FEED_STOPPED);
	assert_int_equal(c.nmsg, 2);
	rn_grpc_deframer_reset(&df);
	assert_int_equal(
		rn_uplink_feed(&df, (const uint8_t *)"\x02\0\0\0\0", 5, collect, &c, &mlen),
		RN_UP_FEED_BADFLAG);
	rn_grpc_deframer_reset(&df);
	assert_int_equal(
		rn_uplink_feed(&df, (const uint8_t *)"\0\x7f\0\0\0", 5, collect, &c, &mlen),
		RN_UP_FEED_TOOBIG);
	rn_grpc_deframer_reset(&df);
	assert_int_equal(rn_uplink_feed(&df, (const uint8_t *)"\1\0\0\0\0", 5, collect, &c, &mlen),
			 RN_UP_FEED_COMPRESSED);
	rn_grpc_deframer_reset(&df);
	assert_int_equal(
		rn_uplink_feed(&df, (const uint8_t *)"\0\0\0\0\2\x1a\x00", 7, collect, &c, &mlen),
		RN_UP_FEED_BADMSG);
	assert_int_equal(mlen, 2);
	rn_grpc_deframer_free(&df);
	rn_buf_free(&body);
}

static void test_feed_alloc_sweep(void **state)
{
	struct rn_buf body = {0};
	const char *l = getenv("RN_SWEEP_LONG");
	int long_mode = l && *l && strcmp(l, "0");
	long runs = 0, splits = 0;
	(void)state;
	make_body(&body);
	for (size_t step = 1; step <= body.len; step = long_mode ? step + 1 : step * 3) {
		long n;
		for (n = 1;; n++) {
			struct rn_grpc_deframer df = {.max_msg = 1 << 20};
			struct collected c = {0};
			long live = rn_mem_live();
			rn_mem_fail_after(n);
			enum rn_up_feed r = feed_split(&df, &body, step, collect, &c);
			int hit = rn_mem_fail_disarm();
			if (hit != (r != RN_UP_FEED_OK) || (hit && r != RN_UP_FEED_NOMEM))
				fail_msg("split %zu, N = %ld: the feed said %d, the allocation %s",
					 step, n, (int)r, hit ? "failed" : "did not fail");
			assert_true(events_prefix(&c, !hit));
			if (hit) { /* the call is over; the next one hears it all again */
				rn_grpc_deframer_reset(&df);
				memset(&c, 0, sizeof(c));
				assert_int_equal(feed_split(&df, &body, step, collect, &c),
						 RN_UP_FEED_OK);
				assert_true(events_prefix(&c, 1));
			}
			rn_grpc_deframer_free(&df);
			assert_int_equal(rn_mem_live(), live);
			if (!hit)
				break;
		}
		runs += n;
		splits++;
	}
	printf("sweep uplink response feed, allocation failures: %ld splits of a %zu-byte body, "
	       "%ld runs\n",
	       splits, body.len, runs);
	rn_buf_free(&body);

	/* headers and trailers (status, pushback, message) are parsed without allocating: the
	 * sweep over them ends at N = 1 */
	static const char *const lines[] = {"HTTP/2 200\r\n",
					    "content-type: application/grpc\r\n",
					    "\r\n",
					    "grpc-status: 8\r\n",
					    "grpc-retry-pushback-ms: 1500\r\n",
					    "grpc-message: slow%20down\r\n"};
	struct rn_up_headers h;
	rn_up_headers_reset(&h);
	rn_mem_fail_after(1);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		rn_up_headers_line(&h, lines[i], strlen(lines[i]));
	assert_false(rn_mem_fail_disarm());
	assert_int_equal(h.http_status, 200);
	assert_int_equal(h.grpc_status, 8);
	assert_int_equal(h.pushback_ms, 1500);
	assert_string_equal(h.grpc_message, "slow down");
	printf("sweep uplink headers and trailers, allocation failures: N = 1..1 (none made)\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_golden),    cmocka_unit_test(test_decode_committed),
		cmocka_unit_test(test_retain),           cmocka_unit_test(test_decode_hostile),
		cmocka_unit_test(test_backoff),          cmocka_unit_test(test_pushback),
		cmocka_unit_test(test_episode),          cmocka_unit_test(test_feed),
		cmocka_unit_test(test_feed_alloc_sweep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
