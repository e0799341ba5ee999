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

#endif
