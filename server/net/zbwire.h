/*
 * The Zerobus request/response codec (databricks.zerobus, field numbers in docs/protocol.md
 * §3), I/O-free and zero-copy: a decoded ingest request points into the received
 * message, so the record batch goes to the WAL without being copied or re-encoded. Both the
 * PersistentStream and the EphemeralStream numberings are handled. Fuzzed by
 * tests/fuzz/fuzz_zbwire.c.
 */
#ifndef RN_ZBWIRE_H
#define RN_ZBWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

enum rn_zb_kind { RN_ZB_CREATE = 1, RN_ZB_RESUME, RN_ZB_INGEST, RN_ZB_HEALTH };

/* PersistentStreamRequest field 1001, runnel_agent_health (docs/protocol.md): a request whose
 * only payload it is carries one health report (JSON text, not checked here): RN_ZB_HEALTH
 * with health/health_len pointing at it. Never in EphemeralStreamRequest. */
#define RN_ZB_FIELD_AGENT_HEALTH 1001

struct rn_zb_request {
	enum rn_zb_kind kind;
	/* CREATE: table_name (may be absent), record_type (0 if absent) */
	const char *table;
	size_t table_len;
	int record_type;
	const uint8_t *descriptor; /* CREATE: descriptor_proto (a DescriptorProto), or NULL */
	size_t descriptor_len;
	/* RESUME */
	const char *stream_id;
	size_t stream_id_len;
	/* INGEST: offset (has_offset), the records as a record-list wire form (field 1
	 * repeated) in batch/batch_len, or a single record in one/one_len (is_single) */
	int has_offset;
	int64_t offset;
	int batch_type; /* 1 = PROTO, 2 = JSON, 4 = AVRO */
	int is_single;
	const uint8_t *batch;
	size_t batch_len;
	/* HEALTH: the report as sent */
	const uint8_t *health;
	size_t health_len;
};

/* Decodes one request message. `persistent` selects the PersistentStreamRequest numbering
 * (else EphemeralStreamRequest). Returns 0, or RN_EINVAL with *why set to a static reason
 * (malformed protobuf, empty message, no payload, ...). */
int rn_zb_decode_request(const uint8_t *p, size_t len, int persistent, struct rn_zb_request *r,
			 const char **why);

/* A RetireStreamRequest: table_name (1, optional: NULL if absent) and stream_id (2),
 * pointing into p. 0, or RN_EINVAL with *why a static reason (malformed, no stream_id). */
int rn_zb_decode_retire(const uint8_t *p, size_t len, const char **table, size_t *table_len,
			const char **stream_id, size_t *stream_id_len, const char **why);

/* Response encoders; each appends one response message (not framed). 0 or RN_ENOMEM. */
int rn_zb_encode_create_response(struct rn_buf *b, int persistent, const char *stream_id);
/* last < 0: the field is absent (nothing committed). Persistent only. */
int rn_zb_encode_resume_response(struct rn_buf *b, int64_t last);
int rn_zb_encode_ack(struct rn_buf *b, int persistent, int64_t offset);
/* An ack with the Runnel extension table_committed_up_to_offset (field 1000 of
 * IngestRecordResponse, docs/protocol.md), only for calls that sent runnel-committed-acks: 1;
 * committed < 0 leaves it out (then the same bytes as rn_zb_encode_ack). */
#define RN_ZB_FIELD_TABLE_COMMITTED 1000
int rn_zb_encode_ack_committed(struct rn_buf *b, int persistent, int64_t offset, int64_t committed);
int rn_zb_encode_close_signal(struct rn_buf *b, int persistent, int64_t seconds);

/*
 * Whether a request is a gRPC call at all, checked before its path as gRPC servers do:
 * :method must be POST and content-type "application/grpc", optionally with "+<subtype>"
 * and/or ";parameters" (case-insensitive). method/ctype are the header values (NULL =
 * absent). Returns 0 for a gRPC request; else the HTTP status to answer with (405 for another
 * method, 415 for another or no content-type), *grpc_status the status for the grpc-status
 * header (INTERNAL for 405, INVALID_ARGUMENT for 415, as grpc-go answers) and *why a static
 * reason for grpc-message. A REST client thus never sees 200 for a write that did not happen.
 */
int rn_zb_http_check(const uint8_t *method, size_t mlen, const uint8_t *ctype, size_t clen,
		     int *grpc_status, const char **why);

/* The agent's clock header, x-runnel-clock: "<boot_id> <boot_us>": the boot id a token of
 * [0-9a-f-] shorter than idcap, one space, the CLOCK_BOOTTIME microseconds in decimal (no
 * sign, no overflow). 0 with both filled in, or RN_EINVAL (outputs untouched). */
int rn_zb_parse_clock(const uint8_t *v, size_t len, char *boot_id, size_t idcap, int64_t *us);

#endif
