/*
 * Fuzz target: a token endpoint's answer as the agent's uplink parses it (uplink/token.c),
 * from the endpoint or from whatever answers in its place. The first byte picks the HTTP
 * status (200 most often), the rest is the body. A usable answer must hold a token a header
 * can carry.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int statuses[] = {200, 200, 200, 200, 400, 401, 403, 500};
	static struct rn_token_resp r;
	int status = size ? statuses[data[0] % 8] : 200;
	/* a private copy of exactly the body, so ASan sees any read past it */
	size_t n = size ? size - 1 : 0;
	char *body = malloc(n ? n : 1);
	if (!body)
		return 0;
	if (n)
		memcpy(body, data + 1, n);
	if (rn_token_parse(status, body, n, &r) == 0) {
		size_t len = strlen(r.access_token);
		if (!len || len > RN_TOKEN_MAX || r.expires_in < 1 ||
		    r.expires_in > RN_TOKEN_LIFETIME_MAX)
			abort();
		for (size_t i = 0; i < len; i++)
			if (r.access_token[i] <= 0x20 || r.access_token[i] >= 0x7f)
				abort();
	}
	free(body);
	return 0;
}
