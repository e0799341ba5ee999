/*
 * What the agent may free, per stream, I/O-free: the uplink's durability acks move its send
 * window, and a server that answers `runnel-committed-acks: 1` also says how far the
 * stream is committed to its table (table_committed_up_to_offset, docs/protocol.md). With
 * such a server a chunk is released (the agent deletes it) only once the table has it, so
 * that records acked into one server's WAL survive the loss of that server and its disk;
 * with a server that does not answer the header a chunk is released on the durability ack,
 * as Zerobus defines it. A resume restarts the window from the server's answer, never below
 * what was released: chunks between the two are still buffered and are sent again.
 *
 * The uplink keeps one struct rn_retain per stream (uplink.c); nothing here allocates or
 * keeps pointers. Offsets: -1 = none.
 */
#ifndef RN_UPLINK_RETAIN_H
#define RN_UPLINK_RETAIN_H

#include <stdint.h>

struct rn_retain {
	int keep;          /* the current call's server reports table commits */
	int64_t acked;     /* durable on the server: the send window starts after it */
	int64_t committed; /* newest table_committed_up_to_offset heard, -1 none */
	int64_t released;  /* told to the agent as deletable; released <= acked */
};

/* A stream registered with `released` = what the buffer has already deleted. */
void rn_retain_init(struct rn_retain *r, int64_t released);

/* A new call was answered: keep = its response headers carried runnel-committed-acks: 1. */
void rn_retain_call(struct rn_retain *r, int keep);

/*
 * The call's resume answer, `offset` (-1 = nothing committed). Returns the offset the window
 * now starts after (acked): the answer, or what was released if more. Without keep the
 * answer is also released (*release = 1: tell the agent r->released); with keep nothing is
 * released here, the server tells the table's offset in an ack.
 */
int64_t rn_retain_resumed(struct rn_retain *r, int64_t offset, int *release);

/*
 * An ack: durable (durability_ack_up_to_offset) and committed (table_committed_up_to_offset,
 * -1 absent). Returns 1 when r->released moved (tell the agent), else 0. A committed offset
 * is never taken past what is acked (a server's claim beyond it counts up to the ack only;
 * runnel-server never makes one).
 */
int rn_retain_ack(struct rn_retain *r, int64_t durable, int64_t committed);

#endif
