/*
 * The chunk builder, I/O-free: accumulates runnel.v1.Record messages for one stream and,
 * when the chunk closes (size, record count or linger time), produces the exact bytes the
 * uplink will send: a gRPC message (compressed flag 1) holding zstd(PersistentStreamRequest{
 * ingest_record_batch{offset_id, proto_encoded_batch{records}}}). The offset is fixed here,
 * so a resend is byte-identical. Records are encoded straight into the batch buffer.
 *
 * Lifetime: one builder per stream, owned by the agent's pipeline; one thread.
 */
#ifndef RN_CHUNK_H
#define RN_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "plugin.h"
#include "rn_buf.h"

struct rn_chunk_limits {
	size_t max_bytes; /* encoded records per chunk before it closes */
	uint32_t max_records;
	int64_t linger_us; /* a chunk older than this closes on the next tick */
	int zstd_level;
};

struct rn_chunk_builder {
	struct rn_chunk_limits lim;
	/* records as ProtoEncodedRecordBatch field 1 entries, after a few bytes of headroom
	 * (for the request header) once the first record is in; len 0 while empty */
	struct rn_buf batch;
	uint32_t nrec;
	int64_t opened_us; /* when the first record went in */
};

/* The envelope fields that are the same for every record of a source. */
struct rn_chunk_origin {
	const char *device_id;
	const char *source;
	/* strlen of device_id and source, taken once by whoever sets them (they live as long
	 * as the origin); 0 = measured per record */
	size_t device_len, source_len;
	const struct rn_attr *attrs; /* static attributes, written before the record's own */
	size_t nattrs;
	/* The device's boot (read once by the agent; NULL = unknown) and CLOCK_BOOTTIME for the
	 * record being added, set by the caller per add: both are written (fields 11 and 10)
	 * only when now_us is before RN_CLOCK_TRUSTED_US and boot_us > 0, so a record with a
	 * trustworthy clock costs nothing more. */
	const char *boot_id;
	int64_t boot_us;
};

/* Adds one record with sequence `seq`; now_us is its receive time. RN_ENOMEM; RN_EFULL
 * when the builder holds records and this one would carry the batch past lim.max_bytes
 * (0 = no limit): nothing is added, close the chunk and add it again. A record alone in a
 * builder is always taken, whatever its size (the caller caps record sizes). */
int rn_chunk_add(struct rn_chunk_builder *b, const struct rn_chunk_origin *o,
		 const struct rn_record *r, uint64_t seq, int64_t now_us);

/* True when the builder holds records and should close now. */
int rn_chunk_due(const struct rn_chunk_builder *b, int64_t now_us);

/* Encodes the chunk at `offset` into out (replacing its contents) and empties the builder.
 * RN_EINVAL if empty, RN_ENOMEM, RN_EIO (zstd). */
int rn_chunk_close(struct rn_chunk_builder *b, int64_t offset, struct rn_buf *out);

void rn_chunk_free(struct rn_chunk_builder *b);

/* Serialized google.protobuf.DescriptorProto of runnel.v1.Record (with Attribute nested),
 * sent at stream creation. Appends to out. 0, or RN_ENOMEM with out as it was. */
int rn_chunk_descriptor(struct rn_buf *out);

#endif
