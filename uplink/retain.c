/*
 * The release rule of acked chunks; see retain.h.
 */
#include "retain.h"

void rn_retain_init(struct rn_retain *r, int64_t released)
{
	r->keep = 0;
	r->acked = r->released = released;
	r->committed = -1;
}

void rn_retain_call(struct rn_retain *r, int keep)
{
	r->keep = keep;
}

static int release_to(struct rn_retain *r, int64_t off)
{
	if (off > r->acked)
		off = r->acked;
	if (off <= r->released)
		return 0;
	r->released = off;
	return 1;
}

int64_t rn_retain_resumed(struct rn_retain *r, int64_t offset, int *release)
{
	/* the window restarts from the answer: a server that lost (or never had) what another
	 * one acked answers less, and those chunks, still buffered, go again */
	r->acked = offset > r->released ? offset : r->released;
	*release = r->keep ? 0 : release_to(r, r->acked);
	return r->acked;
}

int rn_retain_ack(struct rn_retain *r, int64_t durable, int64_t committed)
{
	if (durable > r->acked)
		r->acked = durable;
	if (committed > r->acked)
		committed = r->acked; /* never past what is acked (a claim beyond it is not kept) */
	if (committed > r->committed)
		r->committed = committed;
	if (!r->keep)
		return release_to(r, r->acked);
	return r->committed >= 0 ? release_to(r, r->committed) : 0;
}
