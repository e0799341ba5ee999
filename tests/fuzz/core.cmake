# The stream manager's I/O-free state machine (server/core/stream.h): event sequences.
rn_add_fuzz_target(fuzz_stream SOURCES fuzz_stream.c LIBS rn_core CORPUS ${C}/stream)
