/*
 * Fuzz target: the stream state machine (server/core/stream.h) driven through a sequence of
 * events read from the input, two bytes each (event, argument): batches at offsets near the
 * next one, group commits that succeed or fail, resumes with a committed offset, acks, half
 * closes, retire and forget questions. Checks the invariants the server relies on: durable
 * <= received and acked <= durable always; a batch is accepted only at received + 1 and
 * never refused as a gap at or below received; a re-ack or an ack is durable and newer than
 * what the call had; a resume never answers less than the table committed; a failed sync
 * leaves nothing in flight; a refusal always has a status and a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_stream_state st = {.received = -1, .durable = -1, .record_type = 1};
	struct rn_stream_verdict v;
	int64_t acked = -1, committed = -1;
	int half_closed = 0;

	for (size_t i = 0; i + 1 < size; i += 2) {
		int ev = data[i] % 10, arg = data[i + 1];
		switch (ev) {
		case 0:
		case 1: { /* a batch at an offset around the next one, maybe of another type */
			struct rn_stream_batch b = {arg != 255, st.received + 1 + (arg % 7) - 4,
						    arg & 0x80 ? (arg & 0x40 ? 4 : 2) : 1};
			enum rn_stream_action a = rn_stream_ingest(&st, &b, acked, &v);
			if (a == RN_STREAM_ACCEPT) {
				CHECK(b.offset == st.received + 1 && b.batch_type == 1 && !v.grpc);
				st.received = b.offset;
			} else if (a == RN_STREAM_DUPLICATE) {
				CHECK(b.offset >= 0 && b.offset <= st.received);
				if (v.ack >= 0) {
					CHECK(v.ack == st.durable && v.ack > acked);
					acked = v.ack;
				}
			} else {
				CHECK(v.grpc && v.msg && v.msg[0]);
				CHECK(b.batch_type != 1 || !b.has_offset || b.offset < 0 ||
				      b.offset > st.received + 1);
			}
			break;
		}
		case 2: /* a group commit that succeeds, then the acks */
			rn_stream_synced(&st);
			/* fall through */
		case 3: {
			int done = rn_stream_ack(&st, acked, half_closed, &v);
			if (v.ack >= 0) {
				CHECK(v.ack == st.durable && v.ack > acked);
				acked = v.ack;
			}
			CHECK(!done || (half_closed && acked >= st.received));
			break;
		}
		case 4: /* a group commit that fails */
			if (rn_stream_sync_failed(&st, arg & 1, &v))
				CHECK(v.grpc && v.msg);
			CHECK(st.received == st.durable);
			break;
		case 5: /* the table commits part of what is durable (a flush) */
			if (st.durable > committed)
				committed = committed + 1 + arg % (st.durable - committed);
			CHECK(committed <= st.durable);
			break;
		case 6: { /* a reconnect: the call ends, a new one resumes; the table may know
			   * more than the WAL told (a lost WAL) */
			int64_t c = arg & 1 ? committed : committed + arg % 3;
			CHECK(rn_stream_resume_check(0, &st, &v) == 0);
			rn_stream_resume(&st, c, &v);
			CHECK(v.ack == st.durable && v.ack >= c);
			if (c > committed)
				committed = c;
			acked = v.ack;
			half_closed = 0;
			break;
		}
		case 7:
			half_closed = 1;
			rn_stream_half_close(&st, acked);
			break;
		case 8:
			st.persistent = arg & 1;
			st.open = (arg >> 1) & 1;
			if (rn_stream_retire_ready(&st, (arg >> 2) & 1, 0, committed))
				CHECK(!st.open && !((arg >> 2) & 1) &&
				      (st.durable < 0 || committed >= st.durable));
			break;
		case 9:
			if (rn_stream_forgettable(&st, arg, 128, 0, 0))
				CHECK(!st.persistent && !st.open && arg && arg <= 128);
			break;
		}
		CHECK(st.durable <= st.received);
		CHECK(acked <= st.durable);
	}
	return 0;
}
