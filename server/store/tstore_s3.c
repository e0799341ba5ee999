/* Placeholder: the s3 backend of the table store is being written (tstore.h). */
#include "rn_err.h"
#include <stdio.h>
#include "tstore_int.h"

int rn_tstore_s3_init(struct rn_tstore *st, const char *bucket, const char *prefix,
		      const struct rn_tstore_config *cfg, char *err, size_t errcap)
{
	(void)st, (void)prefix, (void)cfg;
	snprintf(err, errcap, "s3://%s: S3 table store not built yet", bucket);
	return RN_ENOTSUP;
}
