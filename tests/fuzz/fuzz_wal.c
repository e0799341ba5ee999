/*
 * Fuzz target: decodes arbitrary bytes as a sequence of WAL entries, as recovery does with a
 * damaged segment, unpacking packed ones (format 2: a zstd frame and the batch's place in
 * what it decompresses to). Slices must stay inside the input or the unpacked bytes.
 */
#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"
#include "wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, used;
	struct rn_wal_entry e;
	struct rn_buf plain = {0};
	while (off < size && rn_wal_entry_decode(data + off, size - off, &e, &used) == 1) {
		volatile uint8_t sink = 0;
		off += used;
		if (e.packed && rn_wal_entry_unpack(&e, &plain))
			break; /* replay stops there too (RN_ECORRUPT, RN_ENOMEM) */
		if (e.batch_len)
			sink ^= e.batch[e.batch_len - 1];
		if (e.stream_id_len)
			sink ^= (uint8_t)e.stream_id[0];
		(void)sink;
	}
	rn_buf_free(&plain);
	return 0;
}
