/*
 * Fuzz target: decodes arbitrary bytes as a sequence of WAL entries, as recovery does with a
 * damaged segment. Slices must stay inside the input.
 */
#include <stddef.h>
#include <stdint.h>

#include "wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, used;
	struct rn_wal_entry e;
	while (off < size && rn_wal_entry_decode(data + off, size - off, &e, &used) == 1) {
		volatile uint8_t sink = 0;
		if (e.batch_len)
			sink ^= e.batch[e.batch_len - 1];
		if (e.stream_id_len)
			sink ^= (uint8_t)e.stream_id[0];
		(void)sink;
		off += used;
	}
	return 0;
}
