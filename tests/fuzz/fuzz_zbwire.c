/*
 * Fuzz target: decodes arbitrary bytes as Persistent and Ephemeral requests, as the server
 * does with every message a client sends, as a RetireStreamRequest, and as the agent's
 * x-runnel-clock header.
 */
#include <stddef.h>
#include <stdint.h>

#include "zbwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int persistent = 0; persistent < 2; persistent++) {
		struct rn_zb_request r;
		const char *why;
		if (rn_zb_decode_request(data, size, persistent, &r, &why) == 0 && r.batch_len) {
			volatile uint8_t sink = r.batch[r.batch_len - 1];
			(void)sink;
		}
	}
	const char *t, *sid, *rwhy;
	size_t tl, il;
	if (rn_zb_decode_retire(data, size, &t, &tl, &sid, &il, &rwhy) == 0 &&
	    (!sid || !il || (const uint8_t *)sid + il > data + size ||
	     (t && (const uint8_t *)t + tl > data + size)))
		__builtin_trap();
	/* the same bytes as :method and content-type values, split at every 7th byte */
	int st;
	const char *why;
	size_t cut = size / 7;
	int http = rn_zb_http_check(data, cut, data + cut, size - cut, &st, &why);
	if (http != 0 && http != 405 && http != 415)
		__builtin_trap();
	char id[40];
	int64_t us;
	if (rn_zb_parse_clock(data, size, id, sizeof(id), &us) == 0 && (id[0] == 0 || us < 0))
		__builtin_trap(); /* an accepted header has an id and a non-negative time */
	return 0;
}
