/*
 * A row sink for decoder tests (jsonrow, protorow): it writes every value it is given into
 * rec_out as text — "name=value " tokens, with {n .. } [n .. ] <n .. > around struct, array
 * and map values — so a decoded row is one string comparison. Clear rec_out[0] before a row.
 */
#ifndef RN_REC_SINK_H
#define RN_REC_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "jsonrow.h"

extern char rec_out[8192];
extern const struct rn_row_sink rec_sink;

/* Appends printf-style text to rec_out (for extra callbacks of a test's own). */
void rec_emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int rec_null(void *c, const struct rn_field *f);
int rec_i64(void *c, const struct rn_field *f, int64_t v);
int rec_f64(void *c, const struct rn_field *f, double v);
int rec_bytes(void *c, const struct rn_field *f, const void *p, size_t n);
int rec_dec(void *c, const struct rn_field *f, rn_i128 u);
int rec_begin(void *c, const struct rn_field *f, size_t n);
int rec_end(void *c, const struct rn_field *f);

#endif
