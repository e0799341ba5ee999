/*
 * Unit tests for the stream state machine (server/core/stream.h): every decision of create,
 * resume, ingest, the group commit's ack and failure, half close, RetireStream and the
 * forgetting of ended ephemeral streams, with made-up states. Pure functions: no server, no
 * files, no clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rn_grpc.h"
#include "registry.h"
#include "stream.h"

/* A stream that received offsets 0..received, durable up to durable. */
static struct rn_stream_state at(int64_t received, int64_t durable)
{
	struct rn_stream_state s = {
		.received = received, .durable = durable, .committed = -1, .record_type = 1};
	return s;
}

static void test_create(void **state)
{
	struct rn_stream_verdict v;
	(void)state;
	assert_int_equal(rn_stream_create(0, &v), 0);
	assert_int_equal(v.grpc, 0);
	assert_null(v.msg);
	assert_int_equal(rn_stream_create(1, &v), RN_GRPC_INVALID_ARGUMENT);
	assert_string_equal(v.msg, "stream already created");

	assert_int_equal(rn_stream_check_record_type(1, &v), 0);
	assert_int_equal(rn_stream_check_record_type(2, &v), 0);
	assert_int_equal(rn_stream_check_record_type(4, &v), RN_GRPC_UNIMPLEMENTED);
	assert_string_equal(v.msg, "record type not supported");
	assert_int_equal(rn_stream_check_record_type(0, &v), RN_GRPC_UNIMPLEMENTED);
}

static void test_quota(void **state)
{
	struct rn_stream_verdict v;
	(void)state;
	/* ephemeral streams are not counted */
	assert_int_equal(rn_stream_quota(0, 100, 2, "alice", &v), 0);
	assert_int_equal(rn_stream_quota(1, 1, 2, "alice", &v), 0);
	/* at the cap: refused, naming the principal and the key */
	assert_int_equal(rn_stream_quota(1, 2, 2, "alice", &v), RN_GRPC_RESOURCE_EXHAUSTED);
	assert_string_equal(v.msg, "principal alice has 2 persistent streams "
				   "(max_persistent_streams); retire some first");
	assert_ptr_equal(v.msg, v.buf);
	/* the longest principal name still fits the message */
	char name[65];
	memset(name, 'p', 64);
	name[64] = 0;
	assert_int_equal(rn_stream_quota(1, 9, 9, name, &v), RN_GRPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(v.msg, "retire some first"));
}

static void test_resume(void **state)
{
	struct rn_stream_verdict v;
	struct rn_stream_state s = at(5, 3);
	(void)state;
	assert_int_equal(rn_stream_resume_check(1, &s, &v), RN_GRPC_INVALID_ARGUMENT);
	assert_string_equal(v.msg, "stream already open on this call");
	assert_int_equal(rn_stream_resume_check(0, NULL, &v), RN_GRPC_NOT_FOUND);
	assert_string_equal(v.msg, "unknown stream_id");
	s.retiring = 1;
	assert_int_equal(rn_stream_resume_check(0, &s, &v), RN_GRPC_NOT_FOUND);
	s.retiring = 0;
	assert_int_equal(rn_stream_resume_check(0, &s, &v), 0);

	/* the table knows less than the WAL: the durable offset is answered */
	rn_stream_resume(&s, 1, &v);
	assert_int_equal(v.ack, 3);
	assert_int_equal(s.durable, 3);
	assert_int_equal(s.received, 5);
	/* the table knows more (the WAL was lost): durable and received move up to it */
	s = at(2, 2);
	rn_stream_resume(&s, 7, &v);
	assert_int_equal(v.ack, 7);
	assert_int_equal(s.durable, 7);
	assert_int_equal(s.received, 7);
	/* a new stream with nothing anywhere: -1, the client starts at 0 */
	s = at(-1, -1);
	rn_stream_resume(&s, -1, &v);
	assert_int_equal(v.ack, -1);
}

/* A resume of a stream this server does not hold: looked up on disk only when the call has
 * no stream and none is held; taken over, it answers the table's watermark, never more. */
static void test_resume_elsewhere(void **state)
{
	struct rn_stream_verdict v;
	struct rn_stream_state s = at(5, 3);
	(void)state;
	assert_int_equal(rn_stream_resume_lookup(0, NULL), 1);
	assert_int_equal(rn_stream_resume_lookup(1, NULL), 0); /* INVALID_ARGUMENT first */
	assert_int_equal(rn_stream_resume_lookup(0, &s), 0);   /* held: answered from it */
	/* not found on disk either: the check answers NOT_FOUND as before */
	assert_int_equal(rn_stream_resume_check(0, NULL, &v), RN_GRPC_NOT_FOUND);

	/* taken over: whatever the state was, nothing is received or durable here */
	s.open = s.retiring = 1;
	s.persistent = 0;
	rn_stream_taken_over(&s, 2);
	assert_int_equal(s.received, -1);
	assert_int_equal(s.durable, -1);
	assert_int_equal(s.record_type, 2);
	assert_true(s.persistent);
	assert_false(s.open);
	assert_false(s.retiring);
	assert_int_equal(rn_stream_resume_check(0, &s, &v), 0);
	/* the other server acked up to 9 but the table has 4: 4 is answered */
	rn_stream_resume(&s, 4, &v);
	assert_int_equal(v.ack, 4);
	assert_int_equal(s.durable, 4);
	assert_int_equal(s.received, 4);
	/* the client resends 5 on: accepted, in order; 4 and before are duplicates */
	struct rn_stream_batch b = {1, 5, 2};
	assert_int_equal(rn_stream_ingest(&s, &b, v.ack, &v), RN_STREAM_ACCEPT);
	b.offset = 4;
	assert_int_equal(rn_stream_ingest(&s, &b, 4, &v), RN_STREAM_DUPLICATE);
	assert_int_equal(v.ack, -1); /* acked already */
	b.offset = 7;
	assert_int_equal(rn_stream_ingest(&s, &b, 4, &v), RN_STREAM_REFUSE); /* a gap */
	/* nothing in the table: -1, the client sends everything again from 0 */
	rn_stream_taken_over(&s, 1);
	rn_stream_resume(&s, -1, &v);
	assert_int_equal(v.ack, -1);
}

static void test_ingest_refusals(void **state)
{
	struct rn_stream_verdict v;
	struct rn_stream_state s = at(4, 4);
	struct rn_stream_batch b = {1, 5, 1};
	(void)state;
	assert_int_equal(rn_stream_ingest(NULL, &b, -1, &v), RN_STREAM_REFUSE);
	assert_int_equal(v.grpc, RN_GRPC_INVALID_ARGUMENT);
	assert_string_equal(v.msg, "first message must be create_stream or resume_stream");
	b.has_offset = 0;
	assert_int_equal(rn_stream_ingest(&s, &b, -1, &v), RN_STREAM_REFUSE);
	assert_string_equal(v.msg, "offset_id is required");
	b = (struct rn_stream_batch){1, -1, 1};
	assert_int_equal(rn_stream_ingest(&s, &b, -1, &v), RN_STREAM_REFUSE);
	assert_string_equal(v.msg, "offset_id must not be negative");
	b = (struct rn_stream_batch){1, 5, 4};
	assert_int_equal(rn_stream_ingest(&s, &b, -1, &v), RN_STREAM_REFUSE);
	assert_int_equal(v.grpc, RN_GRPC_UNIMPLEMENTED);
	assert_string_equal(v.msg, "AVRO records are not supported");
	b = (struct rn_stream_batch){1, 5, 2};
	assert_int_equal(rn_stream_ingest(&s, &b, -1, &v), RN_STREAM_REFUSE);
	assert_int_equal(v.grpc, RN_GRPC_INVALID_ARGUMENT);
	assert_string_equal(v.msg, "record type differs from the stream's");
	/* a gap: the expected offset is named */
	b = (struct rn_stream_batch){1, 7, 1};
	assert_int_equal(rn_stream_ingest(&s, &b, -1, &v), RN_STREAM_REFUSE);
	assert_int_equal(v.grpc, RN_GRPC_INVALID_ARGUMENT);
	assert_string_equal(v.msg, "offset gap: expected 5, got 7");
	/* a first batch must be 0 */
	s = at(-1, -1);
	b.offset = 1;
	assert_int_equal(rn_stream_ingest(&s, &b, -1, &v), RN_STREAM_REFUSE);
	assert_string_equal(v.msg, "offset gap: expected 0, got 1");
}

static void test_ingest_accept_and_duplicates(void **state)
{
	struct rn_stream_verdict v;
	struct rn_stream_state s = at(4, 2);
	struct rn_stream_batch b = {1, 5, 1};
	(void)state;
	/* the next offset */
	assert_int_equal(rn_stream_ingest(&s, &b, 2, &v), RN_STREAM_ACCEPT);
	assert_int_equal(v.grpc, 0);
	assert_int_equal(v.ack, -1);
	s = at(-1, -1);
	b.offset = 0;
	assert_int_equal(rn_stream_ingest(&s, &b, -1, &v), RN_STREAM_ACCEPT);
	/* a resend of a durable offset the call has not acked yet: re-acked at durable */
	s = at(4, 2);
	b.offset = 1;
	assert_int_equal(rn_stream_ingest(&s, &b, -1, &v), RN_STREAM_DUPLICATE);
	assert_int_equal(v.ack, 2);
	/* ... already acked on this call: nothing to send */
	assert_int_equal(rn_stream_ingest(&s, &b, 2, &v), RN_STREAM_DUPLICATE);
	assert_int_equal(v.ack, -1);
	/* a resend of a received, not yet durable offset: the group commit acks it */
	b.offset = 3;
	assert_int_equal(rn_stream_ingest(&s, &b, -1, &v), RN_STREAM_DUPLICATE);
	assert_int_equal(v.ack, -1);
	b.offset = 4;
	assert_int_equal(rn_stream_ingest(&s, &b, 2, &v), RN_STREAM_DUPLICATE);
	assert_int_equal(v.ack, -1);
}

static void test_group_commit(void **state)
{
	struct rn_stream_verdict v;
	struct rn_stream_state s = at(6, 3);
	(void)state;
	rn_stream_synced(&s);
	assert_int_equal(s.durable, 6);
	/* failed sync: what was in flight is dropped, the call ends so the client resends */
	s = at(6, 3);
	assert_int_equal(rn_stream_sync_failed(&s, 0, &v), 1);
	assert_int_equal(s.received, 3);
	assert_int_equal(s.durable, 3);
	assert_int_equal(v.grpc, RN_GRPC_UNAVAILABLE);
	assert_string_equal(v.msg, "server cannot make records durable");
	s = at(6, 3);
	assert_int_equal(rn_stream_sync_failed(&s, 1, &v), 1);
	assert_int_equal(v.grpc, RN_GRPC_RESOURCE_EXHAUSTED); /* a full disk: slow down */
	/* nothing in flight: nothing lost, the call goes on */
	s = at(3, 3);
	assert_int_equal(rn_stream_sync_failed(&s, 0, &v), 0);
	assert_int_equal(v.grpc, 0);
	assert_int_equal(s.received, 3);

	/* acks: durable newer than acked is acked */
	s = at(6, 6);
	assert_int_equal(rn_stream_ack(&s, 3, 0, &v), 0);
	assert_int_equal(v.ack, 6);
	assert_int_equal(rn_stream_ack(&s, 6, 0, &v), 0);
	assert_int_equal(v.ack, -1);
	/* a half-closed call ends once everything received is acked, this ack included */
	assert_int_equal(rn_stream_ack(&s, 3, 1, &v), 1);
	assert_int_equal(v.ack, 6);
	assert_int_equal(rn_stream_ack(&s, 6, 1, &v), 1);
	s = at(7, 6); /* one more received since the sync: not yet */
	assert_int_equal(rn_stream_ack(&s, 3, 1, &v), 0);
	assert_int_equal(v.ack, 6);
	/* nothing durable yet: no ack (-1 is not newer than -1) */
	s = at(-1, -1);
	assert_int_equal(rn_stream_ack(&s, -1, 0, &v), 0);
	assert_int_equal(v.ack, -1);
}

/* A loop pass ends once it has handled its share of creates, the default or a given one,
 * and not before. */
static void test_create_yield(void **state)
{
	(void)state;
	assert_int_equal(rn_stream_create_yield(0, 0), 0);
	assert_int_equal(rn_stream_create_yield(1, 0), 0);
	assert_int_equal(rn_stream_create_yield(RN_STREAM_CREATES_PER_PASS - 1, 0), 0);
	assert_int_equal(rn_stream_create_yield(RN_STREAM_CREATES_PER_PASS, 0), 1);
	/* more than the share (creates sharing the DATA chunk that ended the pass) */
	assert_int_equal(rn_stream_create_yield(RN_STREAM_CREATES_PER_PASS + 3, 0), 1);
	assert_int_equal(rn_stream_create_yield(1, 1), 1);
	assert_int_equal(rn_stream_create_yield(9, 10), 0);
	assert_int_equal(rn_stream_create_yield(10, 10), 1);
	/* a pass's group fits one registry group commit */
	assert_true(RN_STREAM_CREATES_PER_PASS <= RN_REGISTRY_GROUP_MAX);
}

static void test_half_close(void **state)
{
	struct rn_stream_state s = at(5, 5);
	(void)state;
	assert_int_equal(rn_stream_half_close(NULL, -1), 1); /* no stream: done */
	assert_int_equal(rn_stream_half_close(&s, 5), 1);
	assert_int_equal(rn_stream_half_close(&s, 4), 0); /* waits for the group commit */
	s = at(-1, -1);
	assert_int_equal(rn_stream_half_close(&s, -1), 1);
}

static void test_retire(void **state)
{
	struct rn_stream_verdict v;
	struct rn_stream_state s = at(5, 5);
	(void)state;
	assert_int_equal(rn_stream_retire_check(NULL, 0, &v), RN_GRPC_NOT_FOUND);
	assert_string_equal(v.msg, "unknown stream_id");
	assert_int_equal(rn_stream_retire_check(&s, 0, &v), RN_GRPC_NOT_FOUND); /* ephemeral */
	s.persistent = 1;
	s.retiring = 1;
	assert_int_equal(rn_stream_retire_check(&s, 0, &v), RN_GRPC_NOT_FOUND); /* twice */
	s.retiring = 0;
	s.open = 1;
	assert_int_equal(rn_stream_retire_check(&s, 0, &v), 0); /* open: asked after authz */
	assert_int_equal(rn_stream_retire_check(&s, 1, &v), RN_GRPC_FAILED_PRECONDITION);
	assert_string_equal(v.msg, "the stream is open on a call; end it first");
	s.open = 0;
	assert_int_equal(rn_stream_retire_check(&s, 1, &v), 0);

	/* ready once every durable record is committed */
	assert_int_equal(rn_stream_retire_ready(&s, 0, 0, 5), 1);
	assert_int_equal(rn_stream_retire_ready(&s, 0, 0, 6), 1);
	assert_int_equal(rn_stream_retire_ready(&s, 0, 0, 4), 0);
	assert_int_equal(rn_stream_retire_ready(&s, 0, -5, 5), 0); /* the log unreadable */
	assert_int_equal(rn_stream_retire_ready(&s, 1, 0, 5), 0);  /* its table failing */
	s.open = 1;
	assert_int_equal(rn_stream_retire_ready(&s, 0, 0, 5), 0); /* a call attached */
	/* nothing ever sent: ready whatever the log says */
	s = at(-1, -1);
	s.persistent = 1;
	assert_int_equal(rn_stream_retire_ready(&s, 0, -5, -1), 1);
}

static void test_forget(void **state)
{
	struct rn_stream_state s = at(5, 5);
	(void)state;
	assert_int_equal(rn_stream_forgettable(&s, 10, 20, 0, 0), 1);
	assert_int_equal(rn_stream_forgettable(&s, 20, 20, 0, 0), 1);
	assert_int_equal(rn_stream_forgettable(&s, 21, 20, 0, 0),
			 0); /* ended after the flush began */
	assert_int_equal(rn_stream_forgettable(&s, 0, 20, 0, 0), 0);  /* not ended */
	assert_int_equal(rn_stream_forgettable(&s, 10, 20, 1, 0), 0); /* REST answers due */
	assert_int_equal(rn_stream_forgettable(&s, 10, 20, 0, 1), 0); /* table failing */
	s.open = 1;
	assert_int_equal(rn_stream_forgettable(&s, 10, 20, 0, 0), 0);
	s.open = 0;
	s.persistent = 1;
	assert_int_equal(rn_stream_forgettable(&s, 10, 20, 0, 0), 0);
}

/* Committed acks: the table's watermark as told on a call that opted in. */
static void test_committed_acks(void **state)
{
	struct rn_stream_verdict v;
	struct rn_stream_state s = at(9, 9);
	int64_t c = 7;
	(void)state;
	/* nothing in the table yet: no committed ack, the field is left out of acks */
	assert_int_equal(rn_stream_committed_ack(&s, 9, -1, &v, &c), 0);
	assert_int_equal(c, -1);
	assert_int_equal(rn_stream_committed_upto(&s, 9), -1);
	/* a flush committed up to 6: due, with the durable ack repeated */
	rn_stream_table_committed(&s, 6);
	assert_int_equal(s.committed, 6);
	assert_int_equal(rn_stream_committed_ack(&s, 9, -1, &v, &c), 1);
	assert_int_equal(v.grpc, 0);
	assert_int_equal(v.ack, 9);
	assert_int_equal(c, 6);
	/* told already: not again */
	assert_int_equal(rn_stream_committed_ack(&s, 9, 6, &v, &c), 0);
	assert_int_equal(v.ack, -1);
	/* an unreadable log (-1) or an older read never moves it back */
	rn_stream_table_committed(&s, -1);
	rn_stream_table_committed(&s, 3);
	assert_int_equal(s.committed, 6);
	/* the table ahead of what this call acked (written by another server): never more
	 * than the ack vouches for */
	rn_stream_table_committed(&s, 12);
	assert_int_equal(rn_stream_committed_upto(&s, 9), 9);
	assert_int_equal(rn_stream_committed_ack(&s, 9, 6, &v, &c), 1);
	assert_int_equal(c, 9);
	assert_int_equal(rn_stream_committed_ack(&s, 9, 9, &v, &c), 0);
	/* nothing acked on the call yet: nothing to tell */
	assert_int_equal(rn_stream_committed_ack(&s, -1, -1, &v, &c), 0);
	assert_int_equal(rn_stream_committed_upto(&s, -1), -1);
	/* a resume reads the table: committed follows it, and the answer covers it */
	s = at(-1, -1);
	rn_stream_resume(&s, 4, &v);
	assert_int_equal(s.committed, 4);
	assert_int_equal(v.ack, 4);
	assert_int_equal(rn_stream_committed_upto(&s, v.ack), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_quota),
		cmocka_unit_test(test_resume),
		cmocka_unit_test(test_resume_elsewhere),
		cmocka_unit_test(test_ingest_refusals),
		cmocka_unit_test(test_ingest_accept_and_duplicates),
		cmocka_unit_test(test_group_commit),
		cmocka_unit_test(test_create_yield),
		cmocka_unit_test(test_half_close),
		cmocka_unit_test(test_retire),
		cmocka_unit_test(test_forget),
		cmocka_unit_test(test_committed_acks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
