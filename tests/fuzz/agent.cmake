# Agent core: event time from payloads.
rn_add_fuzz_target(fuzz_evtime SOURCES fuzz_evtime.c LIBS rn_chunk CORPUS ${C}/evtime)
