/*
 * The stream state machine's decisions (stream.h): pure functions of the state they are
 * given; the messages are the ones clients have always seen from server.c.
 */
#include "stream.h"

#include <stdio.h>

#include "rn_grpc.h"

static int refuse(struct rn_stream_verdict *v, int grpc, const char *msg)
{
	v->grpc = grpc;
	v->msg = msg;
	v->ack = -1;
	return grpc;
}

static void ok(struct rn_stream_verdict *v)
{
	v->grpc = 0;
	v->msg = NULL;
	v->ack = -1;
}

int rn_stream_check_record_type(int record_type, struct rn_stream_verdict *v)
{
	if (record_type != 1 && record_type != 2)
		return refuse(v, RN_GRPC_UNIMPLEMENTED, "record type not supported");
	ok(v);
	return 0;
}

int rn_stream_create(int call_has_stream, struct rn_stream_verdict *v)
{
	if (call_has_stream)
		return refuse(v, RN_GRPC_INVALID_ARGUMENT, "stream already created");
	ok(v);
	return 0;
}

int rn_stream_create_yield(size_t pass_creates, size_t per_pass)
{
	return pass_creates >= (per_pass ? per_pass : RN_STREAM_CREATES_PER_PASS);
}

int rn_stream_quota(int persistent, size_t owned, int64_t max_persistent, const char *principal,
		    struct rn_stream_verdict *v)
{
	if (persistent && (int64_t)owned >= max_persistent) {
		snprintf(v->buf, sizeof(v->buf),
			 "principal %s has %lld persistent streams (max_persistent_streams); "
			 "retire some first",
			 principal, (long long)max_persistent);
		return refuse(v, RN_GRPC_RESOURCE_EXHAUSTED, v->buf);
	}
	ok(v);
	return 0;
}

int rn_stream_resume_check(int call_has_stream, const struct rn_stream_state *st,
			   struct rn_stream_verdict *v)
{
	if (call_has_stream)
		return refuse(v, RN_GRPC_INVALID_ARGUMENT, "stream already open on this call");
	if (!st || st->retiring)
		return refuse(v, RN_GRPC_NOT_FOUND, "unknown stream_id");
	ok(v);
	return 0;
}

int rn_stream_resume_lookup(int call_has_stream, const struct rn_stream_state *st)
{
	return !call_has_stream && !st;
}

void rn_stream_taken_over(struct rn_stream_state *st, int record_type)
{
	st->received = st->durable = -1;
	st->record_type = record_type;
	st->persistent = 1;
	st->open = 0;
	st->retiring = 0;
}

void rn_stream_resume(struct rn_stream_state *st, int64_t committed, struct rn_stream_verdict *v)
{
	rn_stream_table_committed(st, committed);
	if (committed > st->durable)
		st->durable = committed;
	if (st->durable > st->received)
		st->received = st->durable;
	ok(v);
	v->ack = st->durable;
}

enum rn_stream_action rn_stream_ingest(const struct rn_stream_state *st,
				       const struct rn_stream_batch *b, int64_t acked,
				       struct rn_stream_verdict *v)
{
	if (!st) {
		refuse(v, RN_GRPC_INVALID_ARGUMENT,
		       "first message must be create_stream or resume_stream");
		return RN_STREAM_REFUSE;
	}
	if (!b->has_offset) {
		refuse(v, RN_GRPC_INVALID_ARGUMENT, "offset_id is required");
		return RN_STREAM_REFUSE;
	}
	if (b->offset < 0) {
		refuse(v, RN_GRPC_INVALID_ARGUMENT, "offset_id must not be negative");
		return RN_STREAM_REFUSE;
	}
	if (b->batch_type == 4) {
		refuse(v, RN_GRPC_UNIMPLEMENTED, "AVRO records are not supported");
		return RN_STREAM_REFUSE;
	}
	if (b->batch_type != st->record_type) {
		refuse(v, RN_GRPC_INVALID_ARGUMENT, "record type differs from the stream's");
		return RN_STREAM_REFUSE;
	}
	ok(v);
	if (b->offset <= st->received) {
		/* a resend after reconnect: already here, not written again */
		if (b->offset <= st->durable && st->durable > acked)
			v->ack = st->durable;
		return RN_STREAM_DUPLICATE;
	}
	if (b->offset != st->received + 1) {
		snprintf(v->buf, sizeof(v->buf), "offset gap: expected %lld, got %lld",
			 (long long)(st->received + 1), (long long)b->offset);
		refuse(v, RN_GRPC_INVALID_ARGUMENT, v->buf);
		return RN_STREAM_REFUSE;
	}
	return RN_STREAM_ACCEPT;
}

void rn_stream_synced(struct rn_stream_state *st)
{
	st->durable = st->received;
}

int rn_stream_sync_failed(struct rn_stream_state *st, int disk_full, struct rn_stream_verdict *v)
{
	ok(v);
	if (st->received <= st->durable)
		return 0;
	st->received = st->durable;
	refuse(v, disk_full ? RN_GRPC_RESOURCE_EXHAUSTED : RN_GRPC_UNAVAILABLE,
	       "server cannot make records durable");
	return 1;
}

int rn_stream_ack(const struct rn_stream_state *st, int64_t acked, int half_closed,
		  struct rn_stream_verdict *v)
{
	ok(v);
	if (st->durable > acked)
		v->ack = acked = st->durable;
	return half_closed && acked >= st->received;
}

void rn_stream_table_committed(struct rn_stream_state *st, int64_t table)
{
	if (table > st->committed)
		st->committed = table;
}

int64_t rn_stream_committed_upto(const struct rn_stream_state *st, int64_t ack)
{
	if (ack < 0 || st->committed < 0)
		return -1;
	return st->committed < ack ? st->committed : ack;
}

int rn_stream_committed_ack(const struct rn_stream_state *st, int64_t acked, int64_t told,
			    struct rn_stream_verdict *v, int64_t *committed)
{
	ok(v);
	*committed = rn_stream_committed_upto(st, acked);
	if (*committed < 0 || *committed <= told)
		return 0;
	v->ack = acked;
	return 1;
}

int rn_stream_half_close(const struct rn_stream_state *st, int64_t acked)
{
	return !st || acked >= st->received;
}

int rn_stream_retire_check(const struct rn_stream_state *st, int open_checked,
			   struct rn_stream_verdict *v)
{
	if (!st || !st->persistent || st->retiring)
		return refuse(v, RN_GRPC_NOT_FOUND, "unknown stream_id");
	if (open_checked && st->open)
		return refuse(v, RN_GRPC_FAILED_PRECONDITION,
			      "the stream is open on a call; end it first");
	ok(v);
	return 0;
}

int rn_stream_retire_ready(const struct rn_stream_state *st, int table_failing, int committed_rc,
			   int64_t committed)
{
	if (st->open || table_failing)
		return 0;
	if (st->durable >= 0 && (committed_rc || committed < st->durable))
		return 0;
	return 1;
}

int rn_stream_forgettable(const struct rn_stream_state *st, int64_t ended_us, int64_t before_us,
			  unsigned rest_waiting, int table_failing)
{
	return !st->persistent && ended_us && ended_us <= before_us && !st->open && !rest_waiting &&
	       !table_failing;
}
