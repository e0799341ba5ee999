/*
 * Fuzz target: arbitrary text as an Authorization header through rn_oauth_parse_basic. Must
 * never crash or read out of bounds; on success both parts are NUL-terminated within their
 * caps and hold no NUL of their own.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), id[64], secret[128];
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	if (rn_oauth_parse_basic(text, id, sizeof(id), secret, sizeof(secret)) == 0 &&
	    (strlen(id) >= sizeof(id) || strlen(secret) >= sizeof(secret)))
		abort();
	free(text);
	return 0;
}
