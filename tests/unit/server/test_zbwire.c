/*
 * Unit tests for the Zerobus codec against the golden wire bytes recorded by the public SDK
 * (docs/protocol.md §4), for both numberings, plus hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rn_err.h"
#include "rn_grpc.h"
#include "zbwire.h"

static void test_golden_requests(void **state)
{
	static const uint8_t create[] = {0x0a, 0x17, 0x0a, 0x13, 'm', 'a',  'i', 'n', '.',
					 'd',  'e',  'f',  'a',  'u', 'l',  't', '.', 'e',
					 'v',  'e',  'n',  't',  's', 0x20, 0x02};
	static const uint8_t ingest[] = {0x12, 0x0c, 0x08, 0x00, 0x1a, 0x08, '{',
					 '"',  'i',  'd',  '"',  ':',  '1',  '}'};
	struct rn_zb_request r;
	const char *why = NULL;
	(void)state;

	assert_int_equal(rn_zb_decode_request(create, sizeof(create), 0, &r, &why), 0);
	assert_int_equal(r.kind, RN_ZB_CREATE);
	assert_int_equal(r.table_len, 19);
	assert_memory_equal(r.table, "main.default.events", 19);
	assert_int_equal(r.record_type, 2);

	assert_int_equal(rn_zb_decode_request(ingest, sizeof(ingest), 0, &r, &why), 0);
	assert_int_equal(r.kind, RN_ZB_INGEST);
	assert_true(r.has_offset);
	assert_int_equal(r.offset, 0);
	assert_true(r.is_single);
	assert_int_equal(r.batch_type, 2);
	assert_int_equal(r.batch_len, 8);
	assert_memory_equal(r.batch, "{\"id\":1}", 8);
}

static void test_persistent_numbering(void **state)
{
	/* resume_stream{stream_id "s"} and ingest_record_batch{offset 300, proto batch} */
	static const uint8_t resume[] = {0x12, 0x03, 0x0a, 0x01, 's'};
	static const uint8_t batch[] = {0x22, 0x09, 0x08, 0xac, 0x02, 0x12,
					0x04, 0x0a, 0x02, 'h',  'i'};
	static const uint8_t create[] = {0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 't'};
	struct rn_zb_request r;
	const char *why;
	(void)state;
	assert_int_equal(rn_zb_decode_request(resume, sizeof(resume), 1, &r, &why), 0);
	assert_int_equal(r.kind, RN_ZB_RESUME);
	assert_memory_equal(r.stream_id, "s", 1);
	assert_int_equal(rn_zb_decode_request(batch, sizeof(batch), 1, &r, &why), 0);
	assert_int_equal(r.kind, RN_ZB_INGEST);
	assert_int_equal(r.offset, 300);
	assert_false(r.is_single);
	assert_int_equal(r.batch_type, 1);
	assert_int_equal(r.batch_len, 4);
	assert_memory_equal(r.batch, "\x0a\x02hi", 4);
	assert_int_equal(rn_zb_decode_request(create, sizeof(create), 1, &r, &why), 0);
	assert_int_equal(r.kind, RN_ZB_CREATE);
	assert_memory_equal(r.table, "t", 1);
	assert_int_equal(r.record_type, 0);
}

static void test_hostile(void **state)
{
	struct rn_zb_request r;
	const char *why = NULL;
	(void)state;
	assert_int_equal(rn_zb_decode_request((const uint8_t *)"", 0, 1, &r, &why), RN_EINVAL);
	assert_non_null(why);
	assert_int_equal(rn_zb_decode_request((const uint8_t *)"\xff\xff", 2, 1, &r, &why),
			 RN_EINVAL);
	/* a length running past the end */
	assert_int_equal(rn_zb_decode_request((const uint8_t *)"\x22\x7f\x08", 3, 1, &r, &why),
			 RN_EINVAL);
	/* ingest without records, resume without id */
	assert_int_equal(rn_zb_decode_request((const uint8_t *)"\x22\x02\x08\x01", 4, 1, &r, &why),
			 RN_EINVAL);
	assert_int_equal(rn_zb_decode_request((const uint8_t *)"\x12\x00", 2, 1, &r, &why),
			 RN_EINVAL);
}

/* Field 1001 (runnel_agent_health): a request whose only payload it is, persistent only. */
static void test_health_field(void **state)
{
	struct rn_zb_request r;
	const char *why = NULL;
	/* tag 1001 << 3 | 2 = 8010 = 0xca 0x3e, length 7, {"v":1} */
	static const uint8_t health[] = {0xca, 0x3e, 7, '{', '"', 'v', '"', ':', '1', '}'};
	/* the same after an ingest payload: the payload wins, the report is ignored */
	static const uint8_t both[] = {0xca, 0x3e, 2, '{', '}', 0x22, 0x04, 0x08, 0x05, 0x22, 0x00};
	(void)state;
	assert_int_equal(rn_zb_decode_request(health, sizeof(health), 1, &r, &why), 0);
	assert_int_equal(r.kind, RN_ZB_HEALTH);
	assert_int_equal(r.health_len, 7);
	assert_memory_equal(r.health, "{\"v\":1}", 7);
	/* not in EphemeralStreamRequest: no payload there */
	assert_int_equal(rn_zb_decode_request(health, sizeof(health), 0, &r, &why), RN_EINVAL);
	assert_string_equal(why, "request has no payload");
	assert_int_equal(rn_zb_decode_request(both, sizeof(both), 1, &r, &why), 0);
	assert_int_equal(r.kind, RN_ZB_INGEST);
	assert_null(r.health);
	/* 1001 with another wire type is not a report */
	static const uint8_t varint[] = {0xc8, 0x3e, 0x01};
	assert_int_equal(rn_zb_decode_request(varint, sizeof(varint), 1, &r, &why), RN_EINVAL);
	/* an empty report is still one (the model refuses it as not JSON) */
	static const uint8_t empty[] = {0xca, 0x3e, 0x00};
	assert_int_equal(rn_zb_decode_request(empty, sizeof(empty), 1, &r, &why), 0);
	assert_int_equal(r.kind, RN_ZB_HEALTH);
	assert_int_equal(r.health_len, 0);
}

static void test_golden_responses(void **state)
{
	struct rn_buf b = {0};
	(void)state;
	assert_int_equal(rn_zb_encode_create_response(&b, 0, "sid-1"), 0);
	assert_int_equal(b.len, 9);
	assert_memory_equal(b.data, "\x0a\x07\x0a\x05sid-1", 9);
	rn_buf_reset(&b);
	rn_zb_encode_ack(&b, 0, 42);
	assert_memory_equal(b.data, "\x12\x02\x08\x2a", 4);
	rn_buf_reset(&b);
	rn_zb_encode_ack(&b, 1, 42);
	assert_memory_equal(b.data, "\x1a\x02\x08\x2a", 4);
	rn_buf_reset(&b);
	/* committed acks: field 1000 (tag 0xc0 0x3e) after the durability ack; absent = the
	 * plain ack's bytes, as a stock client expects */
	assert_int_equal(rn_zb_encode_ack_committed(&b, 1, 42, 7), 0);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "\x1a\x05\x08\x2a\xc0\x3e\x07", 7);
	rn_buf_reset(&b);
	assert_int_equal(rn_zb_encode_ack_committed(&b, 1, 42, -1), 0);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, "\x1a\x02\x08\x2a", 4);
	rn_buf_reset(&b);
	assert_int_equal(rn_zb_encode_ack_committed(&b, 0, 300, 300), 0);
	assert_memory_equal(b.data, "\x12\x07\x08\xac\x02\xc0\x3e\xac\x02", 9);
	rn_buf_reset(&b);
	rn_zb_encode_resume_response(&b, -1);
	assert_int_equal(b.len, 2);
	assert_memory_equal(b.data, "\x12\x00", 2);
	rn_buf_reset(&b);
	rn_zb_encode_resume_response(&b, 300);
	assert_memory_equal(b.data, "\x12\x03\x08\xac\x02", 5);
	rn_buf_reset(&b);
	rn_zb_encode_close_signal(&b, 0, 300);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "\x1a\x05\x0a\x03\x08\xac\x02", 7);
	rn_buf_free(&b);
}

/* x-runnel-clock: the agent's boot id and CLOCK_BOOTTIME; anything else is refused whole. */
static void test_clock_header(void **state)
{
	char id[40] = "x";
	int64_t us = -1;
	(void)state;
	const char *ok = "5f0c1a2b-77aa-4b1e-9c3d-0123456789ab 123456789";
	assert_int_equal(rn_zb_parse_clock((const uint8_t *)ok, strlen(ok), id, sizeof(id), &us),
			 0);
	assert_string_equal(id, "5f0c1a2b-77aa-4b1e-9c3d-0123456789ab");
	assert_int_equal(us, 123456789);
	const char *bad[] = {"",
			     " 5",
			     "abc",
			     "abc ",
			     "abc 12x",
			     "ABC 5",
			     "abc -5",
			     "abc  5",
			     "abc 99999999999999999999",
			     "0123456789abcdef0123456789abcdef0123456789 1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(id, "keep");
		us = 7;
		assert_int_equal(rn_zb_parse_clock((const uint8_t *)bad[i], strlen(bad[i]), id,
						   sizeof(id), &us),
				 RN_EINVAL);
		assert_string_equal(id, "keep");
		assert_int_equal(us, 7);
	}
}

static int http_check(const char *method, const char *ctype, int *st, const char **why)
{
	return rn_zb_http_check((const uint8_t *)method, method ? strlen(method) : 0,
				(const uint8_t *)ctype, ctype ? strlen(ctype) : 0, st, why);
}

/* A request that is not gRPC is an HTTP error (415/405, as grpc-go answers), never 200. */
/* RetireStreamRequest {1: table_name, 2: stream_id} (the SDK's numbering). */
static void test_retire(void **state)
{
	static const uint8_t both[] = {0x0a, 0x05, 'm',  '.', 'd', '.',
				       't',  0x12, 0x03, 'a', 'b', 'c'};
	static const uint8_t id_only[] = {0x12, 0x02, 'x', 'y'};
	static const uint8_t no_id[] = {0x0a, 0x01, 't'};
	static const uint8_t empty_id[] = {0x12, 0x00};
	static const uint8_t varint_id[] = {0x10, 0x05};
	static const uint8_t cut[] = {0x12, 0x09, 'a'};
	const char *t, *id, *why = NULL;
	size_t tl, il;
	(void)state;
	assert_int_equal(rn_zb_decode_retire(both, sizeof(both), &t, &tl, &id, &il, &why), 0);
	assert_int_equal(tl, 5);
	assert_memory_equal(t, "m.d.t", 5);
	assert_int_equal(il, 3);
	assert_memory_equal(id, "abc", 3);
	assert_int_equal(rn_zb_decode_retire(id_only, sizeof(id_only), &t, &tl, &id, &il, &why), 0);
	assert_null(t);
	assert_int_equal(il, 2);
	assert_int_equal(rn_zb_decode_retire(no_id, sizeof(no_id), &t, &tl, &id, &il, &why),
			 RN_EINVAL);
	assert_string_equal(why, "RetireStreamRequest without stream_id");
	assert_int_equal(rn_zb_decode_retire(empty_id, sizeof(empty_id), &t, &tl, &id, &il, &why),
			 RN_EINVAL);
	assert_int_equal(rn_zb_decode_retire(varint_id, sizeof(varint_id), &t, &tl, &id, &il, &why),
			 RN_EINVAL);
	assert_int_equal(rn_zb_decode_retire(cut, sizeof(cut), &t, &tl, &id, &il, &why), RN_EINVAL);
	assert_string_equal(why, "malformed protobuf in RetireStreamRequest");
	assert_int_equal(rn_zb_decode_retire(NULL, 0, &t, &tl, &id, &il, &why), RN_EINVAL);
}

static void test_http_check(void **state)
{
	int st = -1;
	const char *why = NULL;
	(void)state;
	assert_int_equal(http_check("POST", "application/grpc", &st, &why), 0);
	assert_int_equal(http_check("POST", "application/grpc+proto", &st, &why), 0);
	assert_int_equal(http_check("POST", "Application/GRPC;charset=utf-8", &st, &why), 0);
	assert_int_equal(http_check("POST", "application/json", &st, &why), 415);
	assert_int_equal(st, RN_GRPC_INVALID_ARGUMENT);
	assert_non_null(strstr(why, "content-type must be application/grpc"));
	assert_int_equal(http_check("POST", NULL, &st, &why), 415);
	assert_int_equal(http_check("POST", "", &st, &why), 415);
	assert_int_equal(http_check("POST", "application/grpcx", &st, &why), 415);
	assert_int_equal(http_check("POST", "application/grp", &st, &why), 415);
	assert_int_equal(http_check("POST", "text/plain", &st, &why), 415);
	assert_int_equal(http_check("GET", "application/grpc", &st, &why), 405);
	assert_int_equal(st, RN_GRPC_INTERNAL);
	assert_int_equal(http_check(NULL, "application/grpc", &st, &why), 405);
	assert_int_equal(http_check("POSTX", "application/grpc", &st, &why), 405);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_requests), cmocka_unit_test(test_persistent_numbering),
		cmocka_unit_test(test_hostile),         cmocka_unit_test(test_golden_responses),
		cmocka_unit_test(test_clock_header),    cmocka_unit_test(test_http_check),
		cmocka_unit_test(test_retire),          cmocka_unit_test(test_health_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
