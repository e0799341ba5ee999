/*
 * The stream state machine as decisions, with no I/O: given what the stream manager knows of
 * a stream (offsets received, durable and committed; ephemeral or persistent; open on a call
 * or not; being retired) and an event (a create, a resume, a batch, a group commit, a half
 * close, a RetireStream, a flush), say what to do: accept, re-ack a duplicate, refuse with a
 * gRPC status and message, the offset a resume answers, the offset to ack now, whether the
 * call can end. server.c feeds these from its streams and calls and does the I/O (the WAL,
 * the registry, the materializer, sending); tests/unit/server/test_stream.c drives every
 * branch with made-up states, like limits.h.
 *
 * Offsets are the Zerobus offset_id (>= 0); -1 means none. Invariant of a stream:
 * durable <= received (a batch is received when appended to the WAL queue, durable once
 * fsynced); a call's acked <= durable. `committed` is the newest offset the stream's table
 * holds (its txn watermark as the loop last read it): it only grows, and may run ahead of
 * durable only for a stream another server wrote. Nothing here keeps state: the caller owns
 * the structs.
 */
#ifndef RN_STREAM_H
#define RN_STREAM_H

#include <stddef.h>
#include <stdint.h>

/* What the stream manager knows of a stream at the moment of a decision. */
struct rn_stream_state {
	int64_t received;        /* newest offset appended to the WAL queue, -1 none */
	int64_t durable;         /* newest offset fsynced, -1 none */
	int64_t committed;       /* newest offset in the table (txn watermark), -1 none/unknown */
	int record_type;         /* 1 PROTO, 2 JSON */
	unsigned persistent : 1; /* registered (resumable); else ephemeral */
	unsigned open : 1;       /* a call is attached */
	unsigned retiring : 1;   /* RetireStream asked for it */
};

/* A decision's outcome: a gRPC status (0 = OK) and its message; `ack` the offset to ack
 * (or answer, for a resume), -1 none. `msg` points at a static string or at `buf`. */
struct rn_stream_verdict {
	int grpc;
	const char *msg;
	int64_t ack;
	char buf[200];
};

enum rn_stream_action {
	RN_STREAM_ACCEPT = 0, /* take the batch at `offset` (append it) */
	RN_STREAM_DUPLICATE,  /* already received: not written again; ack `ack` if >= 0 */
	RN_STREAM_REFUSE      /* end the call with grpc/msg */
};

/* A batch as it arrived (rn_zb_request's fields). batch_type: 1 PROTO, 2 JSON, 4 AVRO. */
struct rn_stream_batch {
	int has_offset;
	int64_t offset;
	int batch_type;
};

/* The Zerobus record types a stream may be created with (1 PROTO, 2 JSON): 0, or
 * UNIMPLEMENTED with its message in v. */
int rn_stream_check_record_type(int record_type, struct rn_stream_verdict *v);

/* A create on a call: refused when the call has a stream already (INVALID_ARGUMENT). 0 when
 * it may go on to the table's and the principal's checks. */
int rn_stream_create(int call_has_stream, struct rn_stream_verdict *v);

/* Creates handled in one loop pass before the pass ends (rn_stream_create_yield). */
#define RN_STREAM_CREATES_PER_PASS 256

/*
 * Whether the loop pass ends after this create, `pass_creates` creates (this one included)
 * having been handled since the last registry group commit: at `per_pass` (0 =
 * RN_STREAM_CREATES_PER_PASS). The server then stops reading (the front's yield), commits the
 * group and sends its answers before it reads the next creates, so 50,000 creates arriving
 * at once are answered as groups become durable, not all after the last one is read. 1 =
 * end the pass.
 */
int rn_stream_create_yield(size_t pass_creates, size_t per_pass);

/* A persistent create, once its principal is known to be allowed the table: refused when
 * that principal owns max_persistent or more (RESOURCE_EXHAUSTED, naming the principal and
 * the key). Ephemeral streams are not counted. */
int rn_stream_quota(int persistent, size_t owned, int64_t max_persistent, const char *principal,
		    struct rn_stream_verdict *v);

/*
 * A resume: st is NULL for an unknown id. Refused when the call has a stream already
 * (INVALID_ARGUMENT), or the stream is unknown or being retired (NOT_FOUND). 0 when it may go
 * on to the authorization checks.
 */
int rn_stream_resume_check(int call_has_stream, const struct rn_stream_state *st,
			   struct rn_stream_verdict *v);

/*
 * A resume of an id this server holds no stream for (st NULL): 1 when the id is to be looked
 * up in the registry on disk before the answer (rn_stream_resume_check), 0 when the answer is
 * that check's. Several servers may share one data root: a persistent stream registered by
 * another one (or by anyone after this server read the registry at start) is taken over
 * here, with nothing received or durable on this server (rn_stream_taken_over), so
 * rn_stream_resume answers the table's txn watermark for it and never more. Not looked up
 * when the call has a stream already, or for a stream held.
 */
int rn_stream_resume_lookup(int call_has_stream, const struct rn_stream_state *st);

/*
 * The state of a persistent stream taken over from the registry on disk: nothing received
 * or durable on this server (-1), no call, not retiring. Whatever another server received
 * and did not commit yet is not vouched for here: it is in that server's WAL, and the table
 * skips it when it comes (the txn watermark) if the client sent it again here first.
 */
void rn_stream_taken_over(struct rn_stream_state *st, int record_type);

/*
 * A resume allowed, with the newest offset the table has committed for the stream (-1
 * none): the durable offset is at least that, received at least durable (a table may hold
 * more than this run's WAL told, e.g. after the WAL was lost), and v->ack is the offset the
 * resume answers (and the call starts acked at). Updates st.
 */
void rn_stream_resume(struct rn_stream_state *st, int64_t committed, struct rn_stream_verdict *v);

/*
 * A batch on a call. st is NULL when no create or resume came first; `acked` is the newest
 * offset acked on this call. ACCEPT: append at b->offset (the caller then sets received);
 * DUPLICATE: a resend, v->ack >= 0 when it is durable and newer than acked (re-ack it now);
 * REFUSE: grpc/msg (missing or negative offset, AVRO, a record type not the stream's, a
 * gap).
 */
enum rn_stream_action rn_stream_ingest(const struct rn_stream_state *st,
				       const struct rn_stream_batch *b, int64_t acked,
				       struct rn_stream_verdict *v);

/* The group commit's WAL sync succeeded: everything received is durable. */
void rn_stream_synced(struct rn_stream_state *st);

/*
 * The group commit's WAL sync failed: what was received and not durable is dropped
 * (received = durable; the client resends it). Returns 1 when the stream lost something,
 * then v says how its call ends (RESOURCE_EXHAUSTED for a full disk, else UNAVAILABLE);
 * 0 when it had nothing in flight.
 */
int rn_stream_sync_failed(struct rn_stream_state *st, int disk_full, struct rn_stream_verdict *v);

/*
 * After a group commit, for a stream's call: v->ack = the offset to ack when durable is newer
 * than acked (else -1); returns 1 when the call may end OK now (it half-closed and everything
 * received is acked, counting the ack just decided).
 */
int rn_stream_ack(const struct rn_stream_state *st, int64_t acked, int half_closed,
		  struct rn_stream_verdict *v);

/*
 * Committed acks (a call that sent `runnel-committed-acks: 1`, docs/protocol.md): the table
 * was read again after a flush (or at a resume) and holds the stream up to `table` (-1 none).
 * committed only grows: a smaller value (an unreadable log answered -1) changes nothing.
 */
void rn_stream_table_committed(struct rn_stream_state *st, int64_t table);

/*
 * The table_committed_up_to_offset an ack carrying durability ack `ack` tells: the table's
 * watermark, never above `ack` (an ack never vouches for more than it acknowledges; the
 * rest is told by a later one). -1 when nothing is committed (the field is left out).
 */
int64_t rn_stream_committed_upto(const struct rn_stream_state *st, int64_t ack);

/*
 * After a flush round, for a stream on a call that opted in to committed acks: `acked` the
 * newest offset acked on the call, `told` the newest table_committed_up_to_offset sent on
 * it (-1 none). Returns 1 when an ack is due that only moves the committed offset:
 * v->ack = acked (repeated as the durability ack) and *committed the offset to tell.
 * 0 when the table holds nothing newer that this call acked.
 */
int rn_stream_committed_ack(const struct rn_stream_state *st, int64_t acked, int64_t told,
			    struct rn_stream_verdict *v, int64_t *committed);

/* A half close: 1 when the call may end OK now (no stream, or everything received acked). */
int rn_stream_half_close(const struct rn_stream_state *st, int64_t acked);

/*
 * RetireStream: st NULL for an unknown id. NOT_FOUND for an unknown, ephemeral or already
 * retiring stream; after the authorization (the caller's), FAILED_PRECONDITION for one open
 * on a call (`open_checked` 1 asks that second question). 0 when it may go on.
 */
int rn_stream_retire_check(const struct rn_stream_state *st, int open_checked,
			   struct rn_stream_verdict *v);

/*
 * Can a persistent stream be let go now (its records committed)? committed_rc is the
 * materializer's answer (0 = `committed` read). 0 = wait: a call attached, its table failing
 * recovery, or records durable but not committed (or unknown); 1 = retire it.
 */
int rn_stream_retire_ready(const struct rn_stream_state *st, int table_failing, int committed_rc,
			   int64_t committed);

/*
 * Can an ended ephemeral stream be forgotten by a flush that began at before_us? Not while
 * persistent, open, not ended (ended_us 0) or ended after before_us, answering REST requests
 * (rest_waiting), or its table fails recovery (the retry needs its files).
 */
int rn_stream_forgettable(const struct rn_stream_state *st, int64_t ended_us, int64_t before_us,
			  unsigned rest_waiting, int table_failing);

#endif
