/*
 * Fuzz target: a client's ALPN list (wire format: length-prefixed protocol names, as the TLS
 * ClientHello carries it) through rn_tls_alpn_select for both protocols the server's ports
 * speak, and the input as text through rn_tls_client_auth_parse (the tls_client_auth config
 * word). Must never read out of bounds; a selection points inside the input, is the wanted
 * protocol and is one of the list's own entries.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const char *want, const uint8_t *data, size_t size)
{
	const unsigned char *sel = NULL;
	unsigned char len = 0;
	if (!rn_tls_alpn_select(want, data, size, &sel, &len))
		return;
	if (!sel || sel < data || sel + len > data + size || len != strlen(want) ||
	    memcmp(sel, want, len) || sel == data || sel[-1] != len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* copied, so reading one byte past the list is caught by ASan */
	uint8_t *in = malloc(size ? size : 1);
	char *text = malloc(size + 1);
	if (!in || !text) {
		free(in);
		free(text);
		return 0;
	}
	memcpy(in, data, size);
	one("h2", in, size);
	one("http/1.1", in, size);
	memcpy(text, data, size);
	text[size] = 0;
	int v = rn_tls_client_auth_parse(text);
	if (v < -1 || v > RN_TLS_CLIENT_REQUIRE)
		abort();
	free(in);
	free(text);
	return 0;
}
