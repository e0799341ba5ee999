/*
 * Fuzz target: the Delta log analyzer's pure core (server/delta/log.c). The input is a list
 * of commit files separated by NUL bytes (JSON text never holds a raw NUL), applied as
 * versions 0, 1, ... until one fails; then every accessor is read back. The same bytes are
 * also given to the Parquet footer reader as the tail of a file and to the path decoder.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_dlog *l;
	const char *p = (const char *)data, *end = p + size;
	int64_t v = 0, bytes, rows;
	size_t n, total, sum = 0;

	if (rn_dlog_create(&l))
		return 0;
	while (p <= end) {
		const char *z = memchr(p, 0, (size_t)(end - p));
		size_t len = z ? (size_t)(z - p) : (size_t)(end - p);
		if (rn_dlog_apply(l, v++, p, len))
			break;
		if (!z)
			break;
		p = z + 1;
	}
	const struct rn_dlog_file *f = rn_dlog_files(l, &n);
	for (size_t i = 0; i < n; i++)
		sum += strlen(f[i].path) + (size_t)f[i].size;
	const struct rn_dlog_remove *r = rn_dlog_removes(l, &n);
	for (size_t i = 0; i < n; i++)
		sum += strlen(r[i].path);
	const struct rn_dlog_txn *t = rn_dlog_txns(l, &n);
	for (size_t i = 0; i < n; i++)
		sum += (size_t)rn_dlog_txn(l, t[i].app_id);
	const struct rn_dlog_commit *c = rn_dlog_commits(l, &n);
	for (size_t i = 0; i < n; i++)
		sum += c[i].operation ? strlen(c[i].operation) : 0;
	const struct rn_dlog_column *col = rn_dlog_columns(l, &n);
	for (size_t i = 0; i < n; i++)
		sum += strlen(col[i].name) + strlen(col[i].type);
	char *const *parts = rn_dlog_partition_columns(l, &n);
	for (size_t i = 0; i < n; i++)
		sum += strlen(parts[i]);
	const char *const *w = rn_dlog_warnings(l, &n, &total);
	for (size_t i = 0; i < n; i++)
		sum += strlen(w[i]);
	rn_dlog_totals(l, &bytes, &rows, &n);
	sum += strlen(rn_dlog_errmsg(l));
	rn_dlog_destroy(l);

	char why[128], path[256];
	uint32_t flen;
	rn_dlog_parquet_footer(data, size, size + (size & 7), &flen, &rows, why, sizeof(why));
	size_t k = size < sizeof(path) - 1 ? size : sizeof(path) - 1;
	memcpy(path, data, k);
	path[k] = 0;
	rn_dlog_uri_decode(path, why, sizeof(why));
	return (int)(sum & 0); /* sum keeps the reads from being optimized away */
}
