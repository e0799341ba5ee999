/*
 * The S3 client's retry and error decisions (s3policy.h): pure functions of an attempt's
 * outcome and of the retry number.
 */
#include "s3policy.h"

#include "rn_err.h"

static int map_status(int st)
{
	switch (st) {
	case 404: return RN_ENOTFOUND;
	case 412: return RN_EEXIST;
	case 416: return RN_ERANGE;
	case 400: return RN_EINVAL;
	default: return RN_EIO;
	}
}

struct rn_s3_verdict rn_s3_policy_verdict(enum rn_s3_fail fail, int status, int conditional,
					  int error_doc)
{
	struct rn_s3_verdict v = {0};
	if (fail != RN_S3_ANSWERED) {
		v.rc = RN_ECONNECT;
		v.retry = 1;
		v.maybe_applied = fail == RN_S3_CUT;
		return v;
	}
	if (status >= 200 && status < 300 && !error_doc)
		return v;
	if (error_doc) {
		v.rc = RN_EIO;
		v.retry = 1;
		v.maybe_applied = 1;
		return v;
	}
	v.rc = map_status(status);
	v.retry = status >= 500 || status == 429 || (status == 409 && conditional);
	v.maybe_applied = status >= 500 && status != 503;
	return v;
}

int64_t rn_s3_policy_backoff_ms(int base_ms, int retry, uint64_t rnd)
{
	int64_t ms = base_ms > 0 ? base_ms : 1;
	for (int i = 0; i < retry && ms < RN_S3_BACKOFF_CAP_MS; i++)
		ms *= 2;
	if (ms > RN_S3_BACKOFF_CAP_MS)
		ms = RN_S3_BACKOFF_CAP_MS;
	return ms / 2 + (int64_t)(rnd % (uint64_t)(ms - ms / 2 + 1));
}
