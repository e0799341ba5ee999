/*
 * The fleet system tables (docs/operations.md "Fleet health"): runnel.fleet.agents gets one
 * row per health report received (valid or not), runnel.fleet.streams one row per known
 * stream every fleet_table_interval, runnel.fleet.refusals one row per refusal source
 * (refusals.h) refused during that interval. All three are typed tables defined at start (whether
 * or not they are written, so a WAL replay finds their schema) and made when fleet_table_interval
 * is not 0. Rows are written as a REST insert's are: a JSON batch through the materializer
 * and the WAL under an internal stream of the server's (one per table per run, ephemeral,
 * no call, not listed by the fleet API), so they are durable and committed like every row.
 * Nothing waits for them: a row that cannot be written (pressure, a WAL queue full, out of
 * memory) is counted (fleet_table_errors_total) and logged rate-limited, never fatal. A WAL
 * group that fails drops them as it drops every row behind it; the stream is then let go and
 * a new one takes the next rows, so an offset is never used twice. Loop thread only.
 */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <uuid/uuid.h>

#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "schema.h"
#include "server_int.h"
#include "wal.h"

#define AGENTS "runnel.fleet.agents"
#define STREAMS "runnel.fleet.streams"
#define REFUSALS "runnel.fleet.refusals"

struct col {
	const char *name, *type;
};

static const struct col agents_cols[] = {
	{"ts", "timestamp"},
	{"device", "string"},
	{"stream_id", "string"},
	{"table_name", "string"},
	{"principal", "string"},
	{"version", "string"},
	{"config_sha256", "string"},
	{"boot_id", "string"},
	{"uptime_s", "long"},
	{"agent_clock_offset_ms", "long"},
	{"clock_synced", "boolean"},
	{"buffer_bytes", "long"},
	{"buffer_records", "long"},
	{"buffer_max_bytes", "long"},
	{"oldest_unsent_age_s", "long"},
	{"drops_total", "long"},
	{"drops_json", "string"},
	{"expired", "long"},
	{"dead_letters", "long"},
	{"sources_json", "string"},
	{"invalid", "string"},
	{NULL, NULL},
};

static const struct col streams_cols[] = {
	{"ts", "timestamp"},
	{"stream_id", "string"},
	{"table_name", "string"},
	{"principal", "string"},
	{"device", "string"},
	{"kind", "string"},
	{"connected", "boolean"},
	{"peer", "string"},
	{"last_batch_ts", "timestamp"},
	{"last_report_ts", "timestamp"},
	{"records", "long"},
	{"bytes", "long"},
	{"batches", "long"},
	{"acked_offset", "long"},
	{"committed_offset", "long"},
	{"pushbacks", "long"},
	{"clock_corrections", "long"},
	{"refused_calls", "long"},
	{"states", "string"},
	{NULL, NULL},
};

/* one row per refusal source refused during the interval (refusals.h rn_refusals_rows) */
static const struct col refusals_cols[] = {
	{"ts", "timestamp"},
	{"peer", "string"},
	{"principal", "string"},
	{"table_name", "string"},
	{"kinds", "string"},
	{"count_interval", "long"},
	{"count_total", "long"},
	{"first_ts", "timestamp"},
	{"last_ts", "timestamp"},
	{"last_reason", "string"},
	{NULL, NULL},
};

static int define(struct rn_server *s, const char *table, const struct col *cols)
{
	struct rn_schema *sc = rn_calloc(1, sizeof(*sc));
	char why[200];
	int rc = RN_ENOMEM;
	if (!sc)
		return RN_ENOMEM;
	for (const struct col *c = cols; c->name; c++)
		if ((rc = rn_schema_add_column(sc, c->name, c->type, 1, why, sizeof(why))))
			goto fail;
	if ((rc = rn_mat_define_table(s->mat, table, sc))) {
		rn_log_error("server", "table %s: %s", table, rn_mat_errmsg(s->mat));
		goto fail;
	}
	return 0; /* the materializer owns the schema now */
fail:
	rn_schema_free(sc);
	rn_free(sc);
	return rc;
}

int rn_server__fleet_define(struct rn_server *s)
{
	int rc = define(s, AGENTS, agents_cols);
	rc = rc ? rc : define(s, STREAMS, streams_cols);
	return rc ? rc : define(s, REFUSALS, refusals_cols);
}

const char *rn_server__fleet_table(int i)
{
	return i == 0 ? AGENTS : i == 1 ? STREAMS : i == 2 ? REFUSALS : NULL;
}

/* A row that could not be written: counted, one line per 10 s per table. */
static void row_error(struct rn_server *s, const char *table, size_t rows, const char *why)
{
	s->fleet_row_errors += rows;
	if (rn_lograte_note(&s->health_log, table, rows, rn_mono_us()))
		rn_log_warn("fleet",
			    "%zu row(s) for %s not written: %s (more are counted in "
			    "fleet_table_errors_total)",
			    rows, table, why);
}

/*
 * The internal stream writing `table` (*slot), made on first use; one whose batches a failed
 * WAL group dropped (last_received went back) is let go first.
 */
static struct srv_stream *stream_for(struct rn_server *s, const char *table,
				     struct srv_stream **slot)
{
	struct srv_stream *st = *slot;
	uuid_t u;
	char id[37];
	if (st && st->last_received != st->internal_sent) {
		rn_server__mark_ended(s, st, rn_mono_us());
		*slot = st = NULL;
	}
	if (st)
		return st;
	uuid_generate_random(u);
	uuid_unparse_lower(u, id);
	if (!(st = rn_server__add_stream(s, id, strlen(id), table, strlen(table), RN_MAT_JSON)))
		return NULL;
	st->internal = 1;
	rn_fleet_stream_forget(s->fleet, st->fl); /* not a client's: not listed */
	st->fl = NULL;
	*slot = st;
	return st;
}

/* Writes one batch (a record list of JSON rows) into table; never fails the caller. */
static void write_rows(struct rn_server *s, const char *table, struct srv_stream **slot,
		       const struct rn_buf *batch, size_t rows)
{
	struct srv_stream *st;
	int64_t offset;
	const char *msg;
	int rc;
	if (!rows || s->stopping)
		return;
	/* made at start, or here after a reload turned the tables on */
	if (rn_mat_table_exists(s->mat, table) != 1 && rn_mat_ensure_table(s->mat, table))
		return row_error(s, table, rows, "the table cannot be opened");
	if ((msg = rn_server__admit_own(s, table)))
		return row_error(s, table, rows, msg);
	if (!(st = stream_for(s, table, slot)))
		return row_error(s, table, rows, "out of memory");
	offset = st->last_received + 1;
	switch (rn_server__append_batch(s, st, offset, RN_MAT_JSON, batch->data, batch->len, NULL,
					&rc)) {
	case SRV_APPEND_MAT: return row_error(s, table, rows, rn_mat_errmsg(s->mat));
	case SRV_APPEND_WAL:
		/* the batch was taken back (rn_server__append_batch): a new stream takes the next
		 */
		rn_server__mark_ended(s, st, rn_mono_us());
		*slot = NULL;
		return row_error(s, table, rows, "WAL queue full");
	case SRV_APPEND_OK: break;
	}
	s->fleet_rows += rows;
}

void rn_server__fleet_agents_row(struct rn_server *s, const struct rn_fleet_stream *fl,
				 int64_t now_ms)
{
	struct rn_buf *b = &s->fleet_batch;
	struct rn_buf row = {0};
	if (!s->conf.fleet_table_interval_ms || !fl)
		return;
	rn_buf_reset(b);
	if (rn_fleet_agents_row(fl, &s->fh, now_ms, &row) ||
	    rn_pb_put_bytes(b, 1, row.data, row.len))
		row_error(s, AGENTS, 1, "out of memory");
	else
		write_rows(s, AGENTS, &s->fleet_agents, b, 1);
	rn_buf_free(&row);
}

void rn_server__fleet_tables_tick(struct rn_server *s)
{
	struct rn_buf *b = &s->fleet_batch;
	size_t n = 0;
	if (!s->conf.fleet_table_interval_ms)
		return;
	const size_t cap = 2 * (size_t)s->conf.max_message_bytes, all = rn_fleet_nstreams(s->fleet);
	const int64_t now_ms = rn_server__now_ms();
	size_t next = 0;
	int rc;
	rn_server__fleet_refresh(s);
	/* as many batches as the rows need, each at most cap bytes (the model does not change
	 * in between: everything here runs on the loop, and writing adds no fleet stream) */
	do {
		rn_buf_reset(b);
		b->max = cap + 64;
		if ((rc = rn_fleet_streams_rows(s->fleet, now_ms, &next, cap, b, &n)))
			return row_error(s, STREAMS, all - next,
					 rc == RN_ETOOBIG ? "a row larger than the batch cap"
							  : "out of memory");
		write_rows(s, STREAMS, &s->fleet_streams, b, n);
	} while (n && next < all);
}

void rn_server__fleet_refusals_tick(struct rn_server *s)
{
	struct rn_buf *b = &s->fleet_batch;
	size_t n = 0;
	if (!s->conf.fleet_table_interval_ms || !s->refusals)
		return;
	const size_t cap = 2 * (size_t)s->conf.max_message_bytes;
	const int64_t now_ms = rn_server__now_ms();
	int rc;
	/* the sources refused in the interval, in as many batches as they need, each at most
	 * cap bytes; a batch that cannot be written loses their interval rows (counted), never
	 * their totals: the next row of each has count_total */
	do {
		rn_buf_reset(b);
		b->max = cap + 64;
		if ((rc = rn_refusals_rows(s->refusals, now_ms, cap, b, &n)))
			return row_error(s, REFUSALS, 1,
					 rc == RN_ETOOBIG ? "a row larger than the batch cap"
							  : "out of memory");
		write_rows(s, REFUSALS, &s->fleet_refusals, b, n);
	} while (n);
}
