/*
 * Partition values and paths, I/O-free: how a partitioned Delta table names its directories
 * (Hive style, `col=value/`, with Hive's escaping) and how an add action's `path` is written
 * (a URI path: the escaped directory names escaped again for the URI), per the Delta
 * protocol. Values are rendered as Delta's partitionValues strings. Pure functions.
 */
#ifndef RN_PARTITION_H
#define RN_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"
#include "schema.h"

/* The directory name of a null partition value (Hive's). */
#define RN_PART_NULL_DIR "__HIVE_DEFAULT_PARTITION__"

/* Appends s (n bytes) with Hive's path escaping: control characters, DEL, the slash and
 * any of  " # % ' * : = ? \ { [ ] ^  become %XX (upper-case hex); everything else, UTF-8
 * included, stays. */
int rn_part_escape(struct rn_buf *out, const char *s, size_t n);

/* Appends the URI form of a relative path: bytes outside RFC 3986's unreserved, sub-delims,
 * ':', '@' and '/' become %XX (so a Hive escape "%3A" becomes "%253A", a space "%20"). */
int rn_part_uri(struct rn_buf *out, const char *path, size_t n);

/* partitionValues text of a date (days since 1970-01-01): "YYYY-MM-DD". */
int rn_part_date(struct rn_buf *out, int64_t days);

/* partitionValues text of a timestamp (us since the epoch, UTC), as Spark writes it:
 * "YYYY-MM-DD HH:MM:SS" with ".ffffff" when there are microseconds. */
int rn_part_timestamp(struct rn_buf *out, int64_t us);

/* ---- partitioned typed tables: the spec from the config, and a row's layout ---- */

#define RN_PART_MAX_COLUMNS 16      /* partition columns of one table */
#define RN_PART_FROM_ENVELOPE (-2)  /* derive[]: the envelope's event time (else receive time) */
#define RN_PART_FROM_PRINCIPAL (-3) /* derive[]: the principal that wrote the batch */

/* A date column filled with the UTC day of a timestamp: `from` names a timestamp column
 * declared before it, or "event_time" when the table has no such column: then the agent
 * envelope's event time, falling back to its receive time (for plain JSON records, the
 * time the server received them). Or a string column with `from` = "principal" (and no
 * column of that name): the name of the principal that wrote the row. */
struct rn_part_derived {
	const char *column;
	const char *from;
};

struct rn_part_spec {
	const char *const *columns; /* partition_by, in order; top-level columns */
	size_t ncolumns;
	const struct rn_part_derived *derived;
	size_t nderived;
};

/* Checks spec against schema s: partition columns exist, are unique, are of type string,
 * long, integer, short, byte, date or boolean, at most RN_PART_MAX_COLUMNS and not every
 * column; derived columns exist, are dates, each derived once, from a timestamp column
 * declared before them (or the envelope's event_time as above), and are NOT NULL only if
 * their source is; a column from "principal" is a string. derive (may be NULL) receives per
 * top-level column -1, the index of its source column, RN_PART_FROM_ENVELOPE or
 * RN_PART_FROM_PRINCIPAL. 0 or RN_EINVAL with the reason in err. Pure. */
int rn_part_spec_check(const struct rn_schema *s, const struct rn_part_spec *spec, int *derive,
		       char *err, size_t cap);

/* The UTC day (days since 1970-01-01) of a timestamp in us since the epoch (floor). */
int64_t rn_part_day(int64_t us);

/* Appends the partitionValues text of an integer-valued partition column of type t: date
 * as rn_part_date, boolean "true"/"false", the integer types in decimal. RN_EINVAL for
 * other types. */
int rn_part_text(struct rn_buf *out, enum rn_type t, int64_t v);

/* One partition column's value: text (not NUL-terminated) or null. An empty text is null
 * too: Delta's partitionValues cannot tell them apart. */
struct rn_part_val {
	const char *text;
	size_t len;
	int is_null;
};

/* Appends the Hive directory path of one partition ("c1=v1/c2=v2", values escaped with
 * rn_part_escape, nulls as RN_PART_NULL_DIR) to dir and its partitionValues JSON object
 * ({"c1":"v1","c2":null}) to pv. The JSON is unique per partition (the directory is not:
 * a string "__HIVE_DEFAULT_PARTITION__" and null share one), so it is the key.
 * RN_ENOMEM. */
int rn_part_layout(struct rn_buf *dir, struct rn_buf *pv, const char *const *cols,
		   const struct rn_part_val *vals, size_t n);

#endif
