/*
 * Fuzz target: arbitrary bytes as an S3 response body through the three parsers of
 * server/store/s3xml.c. Must never crash, read out of bounds or leak; a listing that parses
 * has every key NUL-terminated and no more items than the cap, and found strings fit their
 * buffers.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rn_err.h"
#include "s3xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_s3_list l;
	char code[32], msg[64], id[48];
	const char *x = (const char *)data;
	if (rn_s3xml_list(x, size, &l) == 0) {
		if (l.n > RN_S3XML_MAX_ITEMS || (l.n && !l.items))
			abort();
		for (size_t i = 0; i < l.n; i++)
			if (!l.items[i].key || strlen(l.items[i].etag) >= sizeof(l.items[i].etag))
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
	return 0;
}
