/*
 * The S3 response bodies the client reads, parsed without libxml: ListObjectsV2 results, error
 * documents (<Error><Code>..</Code><Message>..</Message></Error>) and InitiateMultipartUpload
 * results; and the two date formats S3 answers in (a listing's LastModified, a HEAD's
 * Last-Modified header). A small tolerant parser: it walks elements by local name (namespace
 * prefixes and attributes ignored), decodes the five entities, numeric references and CDATA, skips
 * the prolog and comments, and ignores elements it does not know; it never reads past len and has
 * caps on depth, text and items. Pure (no I/O): unit-tested (tests/unit/server/ test_s3xml.c) and
 * fuzzed (tests/fuzz/fuzz_s3xml.c). Safe from any thread.
 */
#ifndef RN_STORE_S3XML_H
#define RN_STORE_S3XML_H

#include <stddef.h>
#include <stdint.h>

#define RN_S3XML_MAX_DEPTH 16
#define RN_S3XML_MAX_TEXT (64 << 10) /* one element's text; longer: RN_EINVAL */
#define RN_S3XML_MAX_ITEMS 100000    /* keys in one listing page; more: RN_EINVAL */

struct rn_s3_object {
	char *key;        /* decoded object key */
	int64_t size;     /* bytes; -1 when the listing did not say */
	int64_t mtime_ms; /* LastModified as Unix ms; -1 when absent or not a valid date */
	char etag[80];    /* without quotes; "" when absent or too long */
};

/* One ListObjectsV2 page. Owned by the caller: rn_s3_list_free. */
struct rn_s3_list {
	struct rn_s3_object *items;
	size_t n;
	char **prefixes; /* CommonPrefixes (with a delimiter) */
	size_t n_prefixes;
	int truncated;    /* IsTruncated: another page follows */
	char *next_token; /* NextContinuationToken, or NULL */
};

/* Parses a ListBucketResult into out (zeroed first). 0, RN_EINVAL (not well-formed enough, a
 * different root element, a cap passed), RN_ENOMEM. On error out is freed and zeroed. */
int rn_s3xml_list(const char *xml, size_t len, struct rn_s3_list *out);
void rn_s3_list_free(struct rn_s3_list *l);

/* From an <Error> document: Code and Message, NUL-terminated and truncated to their caps.
 * 0, RN_EINVAL (not an Error document), RN_ENOMEM. */
int rn_s3xml_error(const char *xml, size_t len, char *code, size_t ccap, char *msg, size_t mcap);

/* UploadId of an InitiateMultipartUploadResult into id (cap bytes with the NUL). 0,
 * RN_EINVAL (other document, no UploadId, or one that does not fit), RN_ENOMEM. */
int rn_s3xml_upload_id(const char *xml, size_t len, char *id, size_t cap);

/* A listing's LastModified: ISO 8601 as S3 writes it ("2026-12-06T10:00:00.123Z"; RFC 3339:
 * a fraction is optional, a zone (Z or +hh:mm) is required), exactly n bytes, into Unix ms
 * (digits past the millisecond dropped). 0 or RN_EINVAL. */
int rn_s3xml_iso_time(const char *s, size_t n, int64_t *ms);

/* An HTTP date as S3 sends it in Last-Modified (RFC 7231 IMF-fixdate, "Sun, 06 Dec 2026
 * 10:00:00 GMT"; the weekday's name is checked for form, not against the date), exactly n
 * bytes, into Unix ms (whole seconds). 0 or RN_EINVAL. */
int rn_s3xml_http_date(const char *s, size_t n, int64_t *ms);

#endif
