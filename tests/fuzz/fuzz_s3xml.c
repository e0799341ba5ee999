/*
 * Fuzz target: arbitrary bytes as an S3 response body through the three parsers of
 * server/store/s3xml.c, and as a date through its two date parsers (a listing's LastModified,
 * a HEAD's Last-Modified header). Must never crash, read out of bounds or leak; a listing that
 * parses has every key NUL-terminated and no more items than the cap, and found strings fit
 * their buffers; a date that parses is a whole second for the HTTP form and within the years
 * the formats can write.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rn_err.h"
#include "s3xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Years 0000..9999 (ISO's 0001.. with an offset of up to a day either way), in Unix ms. */
static const int64_t lo = INT64_C(-62167219200000) - 86400000,
		     hi = INT64_C(253402300800000) + 86400000;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_s3_list l;
	char code[32], msg[64], id[48];
	const char *x = (const char *)data;
	if (rn_s3xml_list(x, size, &l) == 0) {
		if (l.n > RN_S3XML_MAX_ITEMS || (l.n && !l.items))
			abort();
		for (size_t i = 0; i < l.n; i++)
			if (!l.items[i].key || strlen(l.items[i].etag) >= sizeof(l.items[i].etag) ||
			    (l.items[i].mtime_ms != -1 &&
			     (l.items[i].mtime_ms < lo || l.items[i].mtime_ms > hi)))
				abort();
		for (size_t i = 0; i < l.n_prefixes; i++)
			(void)strlen(l.prefixes[i]);
		rn_s3_list_free(&l);
	} else if (l.items || l.next_token) {
		abort(); /* a failed parse leaves nothing behind */
	}
	if (rn_s3xml_error(x, size, code, sizeof(code), msg, sizeof(msg)) == 0 &&
	    (strlen(code) >= sizeof(code) || strlen(msg) >= sizeof(msg)))
		abort();
	if (rn_s3xml_upload_id(x, size, id, sizeof(id)) == 0 &&
	    (!id[0] || strlen(id) >= sizeof(id)))
		abort();
	{
		int64_t ms = 0;
		if (rn_s3xml_iso_time(x, size, &ms) == 0 && (ms < lo || ms > hi))
			abort();
		if (rn_s3xml_http_date(x, size, &ms) == 0 && (ms < lo || ms > hi || ms % 1000))
			abort();
	}
	return 0;
}
