/* Placeholder: the fs backend of the table store is being written (tstore.h). */
#include "rn_err.h"
#include <stdio.h>
#include "tstore_int.h"

int rn_tstore_fs_init(struct rn_tstore *st, const char *dir, char *err, size_t errcap)
{
	(void)st;
	snprintf(err, errcap, "%s: local table store not built yet", dir);
	return RN_ENOTSUP;
}
