/*
 * The S3 client's decisions, as pure functions (no I/O, no clock): what an attempt's outcome
 * means (the rn_err code, whether to try again, whether the request may have been applied
 * although no success came back) and how long to wait before the next attempt. store/s3.c
 * applies them; tests/unit/server/test_s3policy.c checks every branch. Safe from any thread.
 */
#ifndef RN_STORE_S3POLICY_H
#define RN_STORE_S3POLICY_H

#include <stdint.h>

#define RN_S3_BACKOFF_CAP_MS 5000

/* How an attempt ended below HTTP. */
enum rn_s3_fail {
	RN_S3_ANSWERED = 0,  /* an HTTP status came back */
	RN_S3_NO_CONNECTION, /* resolve or connect failed: nothing was sent */
	RN_S3_CUT,           /* sent (maybe in part), then a timeout or a dropped connection */
};

struct rn_s3_verdict {
	int rc;            /* 0 or the rn_err code for the caller */
	int retry;         /* transient: another attempt may succeed */
	int maybe_applied; /* the store may have applied the request without telling us */
};

/* The verdict on one attempt: fail, the HTTP status when answered, whether the request is a
 * conditional put (409 ConditionalRequestConflict is then transient) and whether a 2xx body
 * was an <Error> document (CompleteMultipartUpload's way to fail late). 2xx: 0. 404:
 * RN_ENOTFOUND, 412: RN_EEXIST, 416: RN_ERANGE, 400: RN_EINVAL, others RN_EIO; no answer:
 * RN_ECONNECT. Retried: no answer, 5xx, 429, an error document, 409 when conditional. Maybe
 * applied: a cut connection, a 5xx other than 503 (SlowDown is a refusal before any work),
 * an error document. */
struct rn_s3_verdict rn_s3_policy_verdict(enum rn_s3_fail fail, int status, int conditional,
					  int error_doc);

/* The wait before retry number `retry` (0 = the first retry): base_ms doubled per retry,
 * capped at RN_S3_BACKOFF_CAP_MS, half of it fixed and half chosen by rnd (any 64-bit
 * value), so concurrent writers spread out. */
int64_t rn_s3_policy_backoff_ms(int base_ms, int retry, uint64_t rnd);

#endif
