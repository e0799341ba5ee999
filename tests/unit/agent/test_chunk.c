/*
 * Unit tests for agent/chunk.c: a closed chunk is decoded back with code nobody here wrote
 * (zstd, then protobuf-c's generated PersistentStreamRequest and runnel.v1.Record) and every
 * field is checked: gRPC prefix (compressed flag 1, length), offset_id, record count, and each
 * record's device id, source, topic, times, seq, payload (binary, empty), attributes and
 * flags. Also: closing is deterministic (same input, same bytes), an empty builder refuses
 * to close, the due rules (size, count, linger), the DescriptorProto names Record's
 * eleven fields, and boot_time_us/boot_id are written only while the wall clock is not
 * trustworthy (and the boot is known). An origin with its lengths given gives the same
 * bytes as one whose lengths are measured per record.
 * Allocation-failure sweeps (RN_SWEEP_LONG=1 for a larger chunk): building a chunk and the
 * descriptor with the Nth allocation failing, for every N until none fails. A failed add or
 * close reports RN_ENOMEM and leaves the builder as it was; retried, the chunk is byte for
 * byte the one built without failures; no failure goes unreported; nothing leaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chunk.h"
#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "rn_zstd.h"
#include "runnel/v1/record.pb-c.h"
#include "zerobus/zerobus_service.pb-c.h"

static const struct rn_chunk_origin origin = {.device_id = "dev-7", .source = "app"};

static void fill(struct rn_chunk_builder *b, int n)
{
	static const struct rn_attr attrs[] = {{"runnel.split", "1/2"}, {"k", ""}};
	for (int i = 0; i < n; i++) {
		char payload[64];
		int len = snprintf(payload, sizeof(payload), "line %d", i);
		struct rn_record r = {
			(const uint8_t *)payload, (size_t)len, "/var/log/a.log", 0, 0, NULL, 0};
		if (i == 1) { /* binary, event time given, flagged, with attributes */
			r.payload = (const uint8_t *)"\xff\x00\xfe";
			r.len = 3;
			r.event_time_us = 1700000000000001LL;
			r.flags = RN_RECORD_F_SPLIT;
			r.attrs = attrs;
			r.nattrs = 2;
		} else if (i == 2) { /* empty line, no topic */
			r.len = 0;
			r.topic = NULL;
		}
		assert_int_equal(
			rn_chunk_add(b, &origin, &r, 100 + (uint64_t)i, 1800000000000000LL + i), 0);
	}
}

static Databricks__Zerobus__PersistentStreamRequest *decode(const struct rn_buf *chunk,
							    struct rn_buf *plain)
{
	assert_true(chunk->len > RN_GRPC_HDR_LEN);
	assert_int_equal(chunk->data[0], 1);
	uint32_t n = (uint32_t)chunk->data[1] << 24 | (uint32_t)chunk->data[2] << 16 |
		     (uint32_t)chunk->data[3] << 8 | chunk->data[4];
	assert_int_equal(n, chunk->len - RN_GRPC_HDR_LEN);
	assert_int_equal(rn_zstd_decompress(plain, chunk->data + 5, n, 64 << 20), 0);
	Databricks__Zerobus__PersistentStreamRequest *req =
		databricks__zerobus__persistent_stream_request__unpack(NULL, plain->len,
								       plain->data);
	assert_non_null(req);
	return req;
}

/* Five records built and closed at zstd `level`, decoded back field by field. */
static void roundtrip_at(int level)
{
	struct rn_chunk_builder b = {.lim = {1 << 20, 1000, 200000, level}};
	struct rn_buf out = {0}, plain = {0};
	fill(&b, 5);
	assert_int_equal(b.nrec, 5);
	assert_int_equal(rn_chunk_close(&b, 42, &out), 0);
	assert_int_equal(b.nrec, 0);

	Databricks__Zerobus__PersistentStreamRequest *req = decode(&out, &plain);
	assert_int_equal(
		req->payload_case,
		DATABRICKS__ZEROBUS__PERSISTENT_STREAM_REQUEST__PAYLOAD_INGEST_RECORD_BATCH);
	Databricks__Zerobus__IngestRecordBatchRequest *batch = req->ingest_record_batch;
	assert_true(batch->has_offset_id);
	assert_int_equal(batch->offset_id, 42);
	assert_int_equal(
		batch->batch_case,
		DATABRICKS__ZEROBUS__INGEST_RECORD_BATCH_REQUEST__BATCH_PROTO_ENCODED_BATCH);
	assert_int_equal(batch->proto_encoded_batch->n_records, 5);
	for (size_t i = 0; i < 5; i++) {
		ProtobufCBinaryData *rb = &batch->proto_encoded_batch->records[i];
		Runnel__V1__Record *r = runnel__v1__record__unpack(NULL, rb->len, rb->data);
		assert_non_null(r);
		assert_string_equal(r->device_id, "dev-7");
		assert_string_equal(r->source, "app");
		assert_true(r->has_seq);
		assert_int_equal(r->seq, 100 + i);
		assert_true(r->has_receive_time_us);
		assert_int_equal(r->receive_time_us, 1800000000000000LL + (int64_t)i);
		assert_true(r->has_event_time_us);
		assert_true(r->has_payload);
		if (i == 1) {
			assert_int_equal(r->event_time_us, 1700000000000001LL);
			assert_int_equal(r->payload.len, 3);
			assert_memory_equal(r->payload.data, "\xff\x00\xfe", 3);
			assert_true(r->has_flags);
			assert_int_equal(r->flags, RN_RECORD_F_SPLIT);
			assert_int_equal(r->n_attributes, 2);
			assert_string_equal(r->attributes[0]->key, "runnel.split");
			assert_string_equal(r->attributes[0]->value, "1/2");
			assert_string_equal(r->attributes[1]->key, "k");
			assert_string_equal(r->attributes[1]->value, "");
		} else {
			char want[32];
			assert_int_equal(r->event_time_us, r->receive_time_us);
			assert_false(r->has_flags);
			assert_int_equal(r->n_attributes, 0);
			if (i == 2) {
				assert_int_equal(r->payload.len, 0);
				assert_null(r->topic);
			} else {
				snprintf(want, sizeof(want), "line %zu", i);
				assert_int_equal(r->payload.len, strlen(want));
				assert_memory_equal(r->payload.data, want, strlen(want));
				assert_string_equal(r->topic, "/var/log/a.log");
			}
		}
		runnel__v1__record__free_unpacked(r, NULL);
	}
	databricks__zerobus__persistent_stream_request__free_unpacked(req, NULL);
	rn_buf_free(&out);
	rn_buf_free(&plain);
	rn_chunk_free(&b);
}

static void test_roundtrip(void **state)
{
	(void)state;
	roundtrip_at(3);
}

/* chunk.zstd_level takes zstd's negative "fast" levels: the chunk decodes the same. */
static void test_roundtrip_fast(void **state)
{
	(void)state;
	roundtrip_at(-1);
	roundtrip_at(-7);
}

/* A builder holding records refuses (RN_EFULL) one that would carry it past max_bytes and
 * is left exactly as it was; a lone record is taken whatever its size; max_bytes 0 is no
 * limit. */
static void test_overfill(void **state)
{
	struct rn_chunk_builder b = {.lim = {400, 1000, 200000, 1}};
	char big[500] = {0};
	struct rn_record r = {(const uint8_t *)big, 100, "/var/log/a.log", 0, 0, NULL, 0};
	size_t len;
	(void)state;
	assert_int_equal(rn_chunk_add(&b, &origin, &r, 0, 5000), 0);
	assert_int_equal(rn_chunk_add(&b, &origin, &r, 1, 5000), 0);
	len = b.batch.len;
	assert_true(len < 400);
	assert_int_equal(rn_chunk_add(&b, &origin, &r, 2, 5000), RN_EFULL);
	assert_int_equal(b.nrec, 2);
	assert_int_equal(b.batch.len, len);
	/* the longest payload that still fits is taken and ends at or under the limit; every
	 * longer one was refused with the builder untouched */
	for (r.len = 400 - len;; r.len--) {
		int rc = rn_chunk_add(&b, &origin, &r, 2, 5000);
		if (!rc)
			break;
		assert_int_equal(rc, RN_EFULL);
		assert_int_equal(b.nrec, 2);
		assert_int_equal(b.batch.len, len);
		assert_true(r.len > 0);
	}
	assert_int_equal(b.nrec, 3);
	assert_true(b.batch.len <= 400);
	assert_true(b.batch.len > 400 - 4); /* within a tag and varint bytes of the limit */
	rn_chunk_free(&b);
	/* alone in the builder, a record past max_bytes is taken */
	r.len = sizeof(big);
	assert_int_equal(rn_chunk_add(&b, &origin, &r, 0, 5000), 0);
	assert_true(b.batch.len > 400);
	rn_chunk_free(&b);
	b.lim.max_bytes = 0;
	for (uint64_t i = 0; i < 10; i++)
		assert_int_equal(rn_chunk_add(&b, &origin, &r, i, 5000), 0);
	assert_int_equal(b.nrec, 10);
	rn_chunk_free(&b);
}

/* The same records at the same offset give the same bytes: a resend is byte-identical. */
static void test_deterministic(void **state)
{
	struct rn_chunk_builder b = {.lim = {1 << 20, 1000, 200000, 3}};
	struct rn_buf o1 = {0}, o2 = {0};
	(void)state;
	fill(&b, 50);
	assert_int_equal(rn_chunk_close(&b, 7, &o1), 0);
	fill(&b, 50);
	assert_int_equal(rn_chunk_close(&b, 7, &o2), 0);
	assert_int_equal(o1.len, o2.len);
	assert_memory_equal(o1.data, o2.data, o1.len);
	/* empty builder */
	assert_int_equal(rn_chunk_close(&b, 8, &o1), RN_EINVAL);
	rn_buf_free(&o1);
	rn_buf_free(&o2);
	rn_chunk_free(&b);
}

static void test_due(void **state)
{
	struct rn_chunk_builder b = {.lim = {200, 3, 1000, 3}};
	struct rn_record r = {(const uint8_t *)"x", 1, NULL, 0, 0, NULL, 0};
	(void)state;
	assert_false(rn_chunk_due(&b, 0));
	assert_int_equal(rn_chunk_add(&b, &origin, &r, 0, 5000), 0);
	assert_false(rn_chunk_due(&b, 5999));
	assert_true(rn_chunk_due(&b, 6000)); /* linger */
	assert_int_equal(rn_chunk_add(&b, &origin, &r, 1, 5000), 0);
	assert_int_equal(rn_chunk_add(&b, &origin, &r, 2, 5000), 0);
	assert_true(rn_chunk_due(&b, 5000)); /* count */
	rn_chunk_free(&b);
	char big[300] = {0};
	struct rn_record rb = {(const uint8_t *)big, sizeof(big), NULL, 0, 0, NULL, 0};
	assert_int_equal(rn_chunk_add(&b, &origin, &rb, 0, 5000), 0);
	assert_true(rn_chunk_due(&b, 5000)); /* size */
	rn_chunk_free(&b);
}

/* A record made with a wall clock before RN_CLOCK_TRUSTED_US carries the boot timeline;
 * one made with a trustworthy clock, or without a known boot, does not (and costs nothing). */
static void test_boot_fields(void **state)
{
	struct rn_chunk_builder b = {.lim = {1 << 20, 1000, 200000, 3}};
	struct rn_buf out = {0}, plain = {0};
	struct rn_record r = {(const uint8_t *)"x", 1, NULL, 0, 0, NULL, 0};
	struct rn_chunk_origin o = origin, none = origin;
	const int64_t day1 = 86400LL * 1000000; /* 1970-01-02: a device without an RTC */
	(void)state;
	o.boot_id = "0b1d0000-aaaa-bbbb-cccc-000000000001";
	o.boot_us = 12345678;
	none.boot_us = 12345678; /* boot id unknown */
	assert_int_equal(rn_chunk_add(&b, &o, &r, 0, day1), 0);
	size_t with = b.batch.len;
	assert_int_equal(rn_chunk_add(&b, &o, &r, 1, 1800000000000000LL), 0);
	assert_true(b.batch.len - with < with); /* the trusted record is smaller */
	assert_int_equal(rn_chunk_add(&b, &none, &r, 2, day1), 0);
	assert_int_equal(rn_chunk_add(&b, &origin, &r, 3, day1), 0);
	assert_int_equal(rn_chunk_close(&b, 0, &out), 0);
	Databricks__Zerobus__PersistentStreamRequest *req = decode(&out, &plain);
	ProtobufCBinaryData *recs = req->ingest_record_batch->proto_encoded_batch->records;
	assert_int_equal(req->ingest_record_batch->proto_encoded_batch->n_records, 4);
	for (size_t i = 0; i < 4; i++) {
		Runnel__V1__Record *rec =
			runnel__v1__record__unpack(NULL, recs[i].len, recs[i].data);
		assert_non_null(rec);
		assert_int_equal(rec->seq, i);
		if (i == 0) {
			assert_true(rec->has_boot_time_us);
			assert_int_equal(rec->boot_time_us, 12345678);
			assert_non_null(rec->boot_id);
			assert_string_equal(rec->boot_id, o.boot_id);
			assert_int_equal(rec->receive_time_us, day1);
		} else {
			assert_false(rec->has_boot_time_us);
			assert_null(rec->boot_id);
		}
		runnel__v1__record__free_unpacked(rec, NULL);
	}
	databricks__zerobus__persistent_stream_request__free_unpacked(req, NULL);
	rn_buf_free(&out);
	rn_buf_free(&plain);
	rn_chunk_free(&b);
}

/* DescriptorProto{name=1 "Record", field=2 x11, nested_type=3 {name "Attribute"}}. */
static void test_descriptor(void **state)
{
	struct rn_buf d = {0};
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	int fields = 0, nested = 0, named = 0;
	(void)state;
	assert_int_equal(rn_chunk_descriptor(&d), 0);
	rn_pb_reader_init(&rd, d.data, d.len);
	while (rn_pb_next(&rd, &f) == 1) {
		if (f.num == 1 && f.len == 6 && !memcmp(f.ptr, "Record", 6))
			named = 1;
		else if (f.num == 2)
			fields++;
		else if (f.num == 3)
			nested++;
	}
	assert_true(named);
	assert_int_equal(fields, 11);
	assert_int_equal(nested, 1);
	rn_buf_free(&d);
}

static int sweep_long(void)
{
	const char *l = getenv("RN_SWEEP_LONG");
	return l && *l && strcmp(l, "0");
}

/* Record i of the sweep: payload sizes that make the batch grow several times. */
static int sweep_add(struct rn_chunk_builder *b, int i)
{
	static const struct rn_attr attrs[] = {{"runnel.split", "1/2"}, {"k", ""}};
	static uint8_t payload[4000];
	struct rn_record r = {
		payload, (size_t)(i * 577) % sizeof(payload), "/var/log/a.log", 0, 0, NULL, 0};
	memset(payload, 'a' + i % 26, r.len);
	if (i % 3 == 1) {
		r.attrs = attrs;
		r.nattrs = 2;
		r.flags = RN_RECORD_F_SPLIT;
	}
	return rn_chunk_add(b, &origin, &r, (uint64_t)i, 1800000000000000LL + i);
}

static void test_alloc_sweep_build(void **state)
{
	const int nrec = sweep_long() ? 400 : 40;
	struct rn_chunk_builder rb = {.lim = {1 << 24, 100000, 200000, 3}};
	struct rn_buf ref = {0};
	long n;
	(void)state;
	for (int i = 0; i < nrec; i++)
		assert_int_equal(sweep_add(&rb, i), 0);
	assert_int_equal(rn_chunk_close(&rb, 42, &ref), 0);
	rn_chunk_free(&rb);
	for (n = 1;; n++) {
		struct rn_chunk_builder b = {.lim = rb.lim};
		struct rn_buf out = {0};
		long live = rn_mem_live();
		int failures = 0, rc, hit;
		rn_mem_fail_after(n);
		for (int i = 0; i < nrec; i++) {
			size_t len0 = b.batch.len;
			uint32_t nrec0 = b.nrec;
			if ((rc = sweep_add(&b, i))) {
				assert_int_equal(rc, RN_ENOMEM);
				assert_int_equal(b.batch.len, len0);
				assert_int_equal(b.nrec, nrec0);
				failures++;
				assert_int_equal(sweep_add(&b, i), 0);
			}
		}
		if ((rc = rn_chunk_close(&b, 42, &out))) {
			assert_int_equal(rc, RN_ENOMEM);
			assert_int_equal(b.nrec, (uint32_t)nrec); /* nothing lost: close again */
			failures++;
			assert_int_equal(rn_chunk_close(&b, 42, &out), 0);
		}
		hit = rn_mem_fail_disarm();
		if (failures != hit)
			fail_msg("N = %ld: %d failures reported, the allocation %s", n, failures,
				 hit ? "failed" : "did not fail");
		assert_int_equal(out.len, ref.len);
		assert_memory_equal(out.data, ref.data, ref.len);
		rn_chunk_free(&b);
		rn_buf_free(&out);
		assert_int_equal(rn_mem_live(), live);
		if (!hit)
			break;
	}
	printf("sweep chunk builder, allocation failures: build (%d records + close): N = 1..%ld\n",
	       nrec, n);
	rn_buf_free(&ref);
}

/* device_len and source_len given (taken once per source) or 0 (measured per record): the
 * same chunk, byte for byte; so are records with and without their own event time. */
static void test_origin_lengths(void **state)
{
	struct rn_chunk_builder b1 = {.lim = {1 << 20, 1000, 200000, 1}};
	struct rn_chunk_builder b2 = {.lim = {1 << 20, 1000, 200000, 1}};
	struct rn_chunk_origin o2 = origin;
	struct rn_buf c1 = {0}, c2 = {0};
	(void)state;
	o2.device_len = strlen(origin.device_id);
	o2.source_len = strlen(origin.source);
	for (int i = 0; i < 50; i++) {
		struct rn_record r = {(const uint8_t *)"payload",
				      7,
				      "/var/log/a.log",
				      i % 3 ? 0 : 1700000000000000LL + i,
				      0,
				      NULL,
				      0};
		/* receive times of 1, 2 and 8 varint bytes: the copied varint is the whole one */
		int64_t now = i < 10 ? i : i < 20 ? 200 + i : 1800000000000000LL + i;
		assert_int_equal(rn_chunk_add(&b1, &origin, &r, (uint64_t)i, now), 0);
		assert_int_equal(rn_chunk_add(&b2, &o2, &r, (uint64_t)i, now), 0);
	}
	assert_int_equal(rn_chunk_close(&b1, 3, &c1), 0);
	assert_int_equal(rn_chunk_close(&b2, 3, &c2), 0);
	assert_int_equal(c1.len, c2.len);
	assert_memory_equal(c1.data, c2.data, c1.len);
	struct rn_buf plain = {0};
	Databricks__Zerobus__PersistentStreamRequest *req = decode(&c2, &plain);
	Databricks__Zerobus__ProtoEncodedRecordBatch *pb =
		req->ingest_record_batch->proto_encoded_batch;
	assert_int_equal(pb->n_records, 50);
	for (size_t i = 0; i < 50; i++) {
		Runnel__V1__Record *r =
			runnel__v1__record__unpack(NULL, pb->records[i].len, pb->records[i].data);
		int64_t now = i < 10   ? (int64_t)i
			      : i < 20 ? 200 + (int64_t)i
				       : 1800000000000000LL + (int64_t)i;
		assert_non_null(r);
		assert_string_equal(r->device_id, "dev-7");
		assert_string_equal(r->source, "app");
		assert_int_equal(r->receive_time_us, now);
		assert_int_equal(r->event_time_us, i % 3 ? now : 1700000000000000LL + (int64_t)i);
		runnel__v1__record__free_unpacked(r, NULL);
	}
	databricks__zerobus__persistent_stream_request__free_unpacked(req, NULL);
	rn_buf_free(&plain);
	rn_buf_free(&c1);
	rn_buf_free(&c2);
	rn_chunk_free(&b1);
	rn_chunk_free(&b2);
}

static void test_alloc_sweep_descriptor(void **state)
{
	struct rn_buf ref = {0};
	long n;
	(void)state;
	assert_int_equal(rn_chunk_descriptor(&ref), 0);
	for (n = 1;; n++) {
		struct rn_buf d = {0};
		long live = rn_mem_live();
		int rc, hit;
		assert_int_equal(rn_buf_append(&d, "pre", 3), 0);
		rn_mem_fail_after(n);
		rc = rn_chunk_descriptor(&d);
		hit = rn_mem_fail_disarm();
		if (rc != (hit ? RN_ENOMEM : 0))
			fail_msg("N = %ld: descriptor returned %d, the allocation %s", n, rc,
				 hit ? "failed" : "did not fail");
		if (rc) {
			assert_int_equal(d.len, 3); /* nothing half-written */
			assert_int_equal(rn_chunk_descriptor(&d), 0);
		}
		assert_int_equal(d.len, 3 + ref.len);
		assert_memory_equal(d.data + 3, ref.data, ref.len);
		rn_buf_free(&d);
		assert_int_equal(rn_mem_live(), live);
		if (!hit)
			break;
	}
	printf("sweep chunk builder, allocation failures: descriptor: N = 1..%ld\n", n);
	rn_buf_free(&ref);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_roundtrip_fast),
		cmocka_unit_test(test_overfill),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_due),
		cmocka_unit_test(test_descriptor),
		cmocka_unit_test(test_boot_fields),
		cmocka_unit_test(test_alloc_sweep_build),
		cmocka_unit_test(test_alloc_sweep_descriptor),
		cmocka_unit_test(test_origin_lengths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
