/*
 * Refusal sources (docs/operations.md "Fleet health"): which client address and which
 * principal had calls refused, how often, of which kind and why. The server notes every call
 * or REST request it refuses for a client's fault (rn_refusals_note); the model keeps one
 * entry per (address without port, principal name or "" when unknown) with its total, its
 * count per kind (a gRPC status name or "http_<code>"), its first and last time, the reason
 * of its last refusal and the last table a refusal of it named, and renders them for the HTTP API
 * (/api/v1/refusals, the overview's summary) and the runnel.fleet.refusals system table.
 *
 * Bounded: at most `max` entries (RN_REFUSALS_MAX by default); a new source past it evicts
 * the least recently refused one, whose count goes to `evicted_calls` so that the sum of the
 * entries plus evicted_calls is every refusal noted. A note is O(1) (a hash map and an LRU
 * list); a render walks the entries once.
 *
 * I/O-free like the rest of the fleet model: the time is passed in (unix ms), allocation
 * through rn_mem. Lifetime: rn_refusals_create / rn_refusals_destroy by the server; not
 * thread-safe: the server's loop thread only.
 */
#ifndef RN_REFUSALS_H
#define RN_REFUSALS_H

#include <stddef.h>
#include <stdint.h>

#include "fleet.h"
#include "rn_buf.h"

#define RN_REFUSALS_MAX 1024       /* sources kept by default */
#define RN_REFUSALS_PEER_MAX 63    /* bytes of an address kept */
#define RN_REFUSALS_NAME_MAX 127   /* bytes of a principal name kept */
#define RN_REFUSALS_TABLE_MAX 255  /* bytes of a table name kept */
#define RN_REFUSALS_REASON_MAX 200 /* bytes of the last reason kept (cut on a character) */
#define RN_REFUSALS_KIND_MAX 31    /* bytes of a kind name */
#define RN_REFUSALS_KINDS 8        /* kinds counted apart per source; the rest as "other" */

struct rn_refusals;

/* 0 or RN_ENOMEM. max = 0 takes RN_REFUSALS_MAX. */
int rn_refusals_create(struct rn_refusals **out, size_t max);
void rn_refusals_destroy(struct rn_refusals *r);

/*
 * One refused call at now_ms. peer: the client's address, with or without a port
 * ("10.0.0.1:5000", "[::1]:5000", "::1": the port is cut); principal: NULL or "" when the
 * server did not know who called (no valid credentials); kind: a gRPC status name or
 * "http_401"...; reason and table: NULL or "" none. Strings past their bound are cut (the
 * reason on a UTF-8 character, bytes that are not UTF-8 replaced by '?'). 0, or RN_ENOMEM
 * (no entry for a new source: the refusal is still in the totals, as `unattributed`).
 */
int rn_refusals_note(struct rn_refusals *r, const char *peer, const char *principal,
		     const char *kind, const char *reason, const char *table, int64_t now_ms);

/* Totals: every refusal noted; of them, those of evicted entries and those that found no
 * entry (out of memory); entries evicted; entries now; refusals in the hour before now_ms. */
struct rn_refusals_totals {
	uint64_t refused, evicted_calls, unattributed, evicted;
	size_t sources;
	uint64_t last_hour;
};
void rn_refusals_totals(const struct rn_refusals *r, int64_t now_ms, struct rn_refusals_totals *t);

/*
 * The query of /api/v1/refusals: q (substring of peer, principal, table, kind or reason),
 * sort (count, last, first, peer, principal, table; count by default), order, limit. Parsed
 * with rn_fleet_query_parse(query, RN_FLEET_QUERY_REFUSALS, ...).
 */
/* Appends the answer of /api/v1/refusals (docs/protocol.md "HTTP API"). 0 or RN_ENOMEM. */
int rn_refusals_render(const struct rn_refusals *r, const struct rn_fleet_query *q, int64_t now_ms,
		       struct rn_buf *out);
/* Appends the overview's member value: {"last_hour":N,"total":N,"sources":N,"top":[the 5
 * sources with the most refusals, as in /api/v1/refusals]}. 0 or RN_ENOMEM. */
int rn_refusals_summary(const struct rn_refusals *r, int64_t now_ms, struct rn_buf *out);

/*
 * Appends one runnel.fleet.refusals row (a JSON object, field 1 of a record list) per source
 * refused since its previous row, newest first, *n rows, stopping before a row that would
 * take what it appends past cap bytes, and starts a new interval for the sources it wrote: a
 * row's count_interval is what the source had since its previous row. The sources left out
 * keep their interval for the next call, so calling again until *n is 0 writes every one.
 * 0; RN_ETOOBIG (one row alone passes cap) or RN_ENOMEM: nothing appended, every interval
 * goes on.
 */
int rn_refusals_rows(struct rn_refusals *r, int64_t now_ms, size_t cap, struct rn_buf *out,
		     size_t *n);

#endif
