/*
 * Streams that send their own PROTO message to a typed table: the stream's descriptor
 * becomes a decoding plan (rn_protorow_plan), kept per table and stream (t->plans, found
 * through t->plan_ids) until rn_mat_stream_forget; a descriptor of the agent's envelope
 * (runnel.v1.Record) needs none. rn_mat_create_from_descriptor is auto_create: a table made
 * from a descriptor, declared and created as one step (a failed create leaves nothing
 * declared). It reads no batch; loop thread only.
 */
#include "mat_int.h"

#include <stdio.h>
#include <string.h>

#include "protorow.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "rn_pbwire.h"

/* The index of stream's plan in t->plans, or -1. */
static long plan_index(const struct mat_table *t, const char *stream)
{
	uintptr_t v = (uintptr_t)rn_strmap_get(&t->plan_ids, stream, strlen(stream));
	return v ? (long)v - 1 : -1;
}

const struct rn_protoplan *rn_mat__find_plan(const struct mat_table *t, const char *stream)
{
	long i = plan_index(t, stream);
	return i < 0 ? NULL : t->plans[i].plan;
}

/* Is this DescriptorProto runnel.v1.Record (the agent's envelope: message Record with
 * device_id = 1 and payload = 7)? */
static int is_envelope_descriptor(const uint8_t *d, size_t len)
{
	struct rn_pb_reader rd, fr;
	struct rn_pb_field f, ff;
	int named = 0, dev = 0, pay = 0;
	rn_pb_reader_init(&rd, d, len);
	while (rn_pb_next(&rd, &f) == 1) {
		if (f.num == 1 && f.wt == RN_PB_LEN)
			named = f.len == 6 && !memcmp(f.ptr, "Record", 6);
		if (f.num != 2 || f.wt != RN_PB_LEN)
			continue;
		const uint8_t *name = NULL;
		size_t nlen = 0;
		uint64_t num = 0;
		rn_pb_reader_init(&fr, f.ptr, f.len);
		while (rn_pb_next(&fr, &ff) == 1) {
			if (ff.num == 1 && ff.wt == RN_PB_LEN) {
				name = ff.ptr;
				nlen = ff.len;
			} else if (ff.num == 3 && ff.wt == RN_PB_VARINT) {
				num = ff.u;
			}
		}
		dev |= num == 1 && nlen == 9 && !memcmp(name, "device_id", 9);
		pay |= num == 7 && nlen == 7 && !memcmp(name, "payload", 7);
	}
	return named && dev && pay;
}

/* The message name of a DescriptorProto (field 1), or NULL. */
static void descriptor_name(const uint8_t *d, size_t len, const uint8_t **name, size_t *nlen)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	rn_pb_reader_init(&rd, d, len);
	while (rn_pb_next(&rd, &f) == 1)
		if (f.num == 1 && f.wt == RN_PB_LEN) {
			*name = f.ptr;
			*nlen = f.len;
		}
}

int rn_mat_stream_descriptor(struct rn_mat *m, const char *table, const char *stream_id,
			     const uint8_t *desc, size_t len)
{
	struct mat_table *t;
	struct rn_protoplan *plan;
	char err[400];
	int rc;

	if ((rc = rn_mat__get_table(m, table, 0, &t)))
		return rc;
	if (is_envelope_descriptor(desc, len))
		return 0;
	if (!t->schema) {
		/* every record would become an undecodable row: refuse the stream at create */
		const uint8_t *name = NULL;
		size_t nlen = 0;
		descriptor_name(desc, len, &name, &nlen);
		return rn_mat__fail(
			m, RN_EINVAL,
			"table %s has no schema (it holds runnel.v1.Record "
			"envelopes); to send message %.*s to it, declare its columns in the "
			"server config: schemas = ( { table = \"%s\"; columns = ( ... ); } ) "
			"(auto_create makes a new table from the descriptor)",
			table, name ? (int)(nlen > 100 ? 100 : nlen) : 1,
			name ? (const char *)name : "?", table);
	}
	if ((rc = rn_protorow_plan(t->schema, desc, len, &plan, err, sizeof(err))))
		return rn_mat__fail(m, rc, "descriptor does not fit table %s: %s", table, err);
	long i = plan_index(t, stream_id);
	if (i >= 0) {
		rn_protorow_plan_free(t->plans[i].plan);
		t->plans[i].plan = plan;
		return 0;
	}
	struct stream_plan *np = rn_reallocarray(t->plans, t->nplans + 1, sizeof(*np));
	char *sid = np ? rn_strdup(stream_id) : NULL;
	if (np)
		t->plans = np;
	if (!sid ||
	    rn_strmap_put(&t->plan_ids, sid, strlen(sid), (void *)(uintptr_t)(t->nplans + 1))) {
		rn_free(sid);
		rn_protorow_plan_free(plan);
		return RN_ENOMEM;
	}
	np[t->nplans].stream = sid;
	np[t->nplans++].plan = plan;
	return 0;
}

void rn_mat_stream_forget(struct rn_mat *m, const char *stream_id)
{
	for (size_t i = 0; i < m->ntables; i++) {
		struct mat_table *t = m->tables[i];
		long k = plan_index(t, stream_id);
		if (k < 0)
			continue;
		rn_strmap_del(&t->plan_ids, stream_id, strlen(stream_id));
		rn_free(t->plans[k].stream);
		rn_protorow_plan_free(t->plans[k].plan);
		t->plans[k] = t->plans[--t->nplans];
		/* the last one moved into k: its index changes (a replace, never allocates) */
		if ((size_t)k < t->nplans)
			rn_strmap_put(&t->plan_ids, t->plans[k].stream, strlen(t->plans[k].stream),
				      (void *)(uintptr_t)(k + 1));
	}
}

int rn_mat_create_from_descriptor(struct rn_mat *m, const char *table, const uint8_t *desc,
				  size_t len)
{
	struct rn_schema *sc;
	char err[400];
	int rc;

	if (rn_mat_table_exists(m, table) == 1)
		return 0;
	if (is_envelope_descriptor(desc, len))
		return rn_mat_ensure_table(m, table);
	if (!(sc = rn_calloc(1, sizeof(*sc))))
		return RN_ENOMEM;
	if ((rc = rn_protorow_schema_from_descriptor(desc, len, sc, err, sizeof(err)))) {
		rn_schema_free(sc);
		rn_free(sc);
		return rn_mat__fail(m, rc, "cannot make a table from the descriptor: %s", err);
	}
	if ((rc = rn_mat_define_table(m, table, sc))) {
		rn_schema_free(sc);
		rn_free(sc);
		return rc;
	}
	/* a failed create leaves nothing declared, so that the client's retry can declare the
	 * table again */
	if ((rc = rn_mat_ensure_table(m, table)))
		rn_mat__drop_def(m, table);
	return rc;
}
