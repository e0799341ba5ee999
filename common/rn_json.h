/*
 * Minimal JSON support: a string escaper for writers (Delta log actions, stats, attributes)
 * and a strict, zero-copy object walker for readers (Delta log lines written by us or by
 * Spark). The walker validates as it goes, caps nesting depth, and never reads outside the
 * input. No allocation except through rn_buf. Pure functions.
 */
#ifndef RN_JSON_H
#define RN_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

#define RN_JSON_MAX_DEPTH 64

/* Appends `"..."` with s escaped (control characters as \u00XX; bytes that are not UTF-8
 * become U+FFFD so the output is always valid JSON). 0 or RN_ENOMEM. */
int rn_json_put_str(struct rn_buf *b, const void *s, size_t len);

/* A span of the input holding one JSON value, whitespace trimmed. */
struct rn_json_span {
	const char *p;
	size_t len;
};

/* Checks that [p, p+len) holds exactly one valid JSON value (surrounding whitespace
 * allowed). 0 or RN_EINVAL. */
int rn_json_validate(const char *p, size_t len);

/*
 * Walks the members of the object in `obj`: for each member calls fn(ctx, key, value) with
 * the raw key (escapes not decoded; a key with escapes never equals a plain ASCII name) and
 * the value's span. fn returns 0 to go on, non-zero to stop (returned as is). RN_EINVAL if
 * obj is not a valid object.
 */
int rn_json_object_walk(struct rn_json_span obj,
			int (*fn)(void *ctx, struct rn_json_span key, struct rn_json_span val),
			void *ctx);

/* Walks the elements of the array in `arr`, calling fn(ctx, index, value span); fn returns
 * 0 to go on, non-zero to stop (returned as is). RN_EINVAL if arr is not a valid array. */
int rn_json_array_walk(struct rn_json_span arr,
		       int (*fn)(void *ctx, size_t i, struct rn_json_span val), void *ctx);

/* Decodes a JSON string value (with its quotes) into out, NUL-terminated (the NUL is not
 * counted in out->len). RN_EINVAL for a non-string or bad escape, RN_ENOMEM. */
int rn_json_string(struct rn_json_span v, struct rn_buf *out);

/* Parses an integer value (no fraction or exponent). RN_EINVAL, RN_ERANGE. */
int rn_json_int64(struct rn_json_span v, int64_t *out);

/* True if span equals the ASCII literal s. */
int rn_json_span_eq(struct rn_json_span s, const char *lit);

#endif
