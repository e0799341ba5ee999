/*
 * Fuzz target: what `runnel-server fleet` reads from a server (server/cli/): an HTTP/1.1
 * answer as rn_httpget_parse splits it, and a fleet API body as the device, stream and
 * refusal-source tables render it. The first byte picks which (even: the answer, then its
 * body rendered as devices; odd: the rest rendered as streams and as refusal sources). A rendered
 * table must hold no control character but its newlines, whatever the server sent.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_cli.h"
#include "httpget.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_table(const struct rn_buf *out)
{
	for (size_t i = 0; i < out->len; i++)
		if ((out->data[i] < 0x20 && out->data[i] != '\n') || out->data[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_buf body = {0}, out = {0};
	const char *why = NULL;
	int status = 0;
	if (!size)
		return 0;
	/* a private copy of exactly the input, so ASan sees any read past it */
	size_t n = size - 1;
	char *in = malloc(n ? n : 1);
	if (!in)
		return 0;
	memcpy(in, data + 1, n);
	if (data[0] & 1) {
		if (!rn_fleet_cli_streams(in, n, &out, &why))
			check_table(&out);
		rn_buf_reset(&out);
		if (!rn_fleet_cli_refusals(in, n, &out, &why))
			check_table(&out);
	} else if (!rn_httpget_parse(in, n, &status, &body, &why)) {
		if (status < 0 || status > 999 || body.len > n)
			abort();
		if (!rn_fleet_cli_devices((const char *)body.data, body.len, &out, &why))
			check_table(&out);
	}
	rn_buf_free(&body);
	rn_buf_free(&out);
	free(in);
	return 0;
}
