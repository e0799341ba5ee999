/*
 * Fuzz target: event time extraction from record payloads (agent/evtime.c), which reads
 * whatever a device sends: the JSON member lookup with a few field names, and the text
 * parser for pattern captures, over the same bytes.
 */
#include <stddef.h>
#include <stdint.h>

#include "evtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t us;
	static const char *const fields[] = {"ts", "time", "t", ""};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		rn_evtime_json(data, size, fields[i], &us);
	rn_evtime_text((const char *)data, size, &us);
	rn_evtime_rfc3339((const char *)data, size, &us);
	return 0;
}
