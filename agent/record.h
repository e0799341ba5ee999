/*
 * One record as a source plugin hands it to the pipeline: borrowed pointers, valid only for
 * the duration of the call that receives it (the chunk builder copies what it keeps, encoded).
 * This is the in-memory form of the runnel.v1.Record envelope minus what the pipeline adds
 * (device id, source name, receive time, seq). No functions, no allocation.
 */
#ifndef RN_RECORD_H
#define RN_RECORD_H

#include <stddef.h>
#include <stdint.h>

/* runnel.v1.Record.flags bits; a contract with the server and readers: never renumber. */
#define RN_RECORD_F_SPLIT 1u     /* one piece of an input line longer than max_line_bytes */
#define RN_RECORD_F_TRUNCATED 2u /* the record was cut (reserved; in_file never truncates) */
#define RN_RECORD_F_UNTERMINATED 4u /* a final line emitted without its newline (timeout) */

struct rn_attr {
	const char *key;   /* NUL-terminated */
	const char *value; /* NUL-terminated */
};

struct rn_record {
	const void *payload; /* may contain any bytes; not NUL-terminated */
	size_t len;
	const char *topic;     /* file path, MQTT topic, serial port; NULL = none */
	int64_t event_time_us; /* 0 = unknown (the pipeline uses the receive time) */
	uint32_t flags;        /* RN_RECORD_F_* */
	const struct rn_attr *attrs;
	size_t nattrs;
};

#endif
