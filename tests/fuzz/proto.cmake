# Server: PROTO records decoded through the descriptor a stream sends (server/mat/protorow.c).
rn_add_fuzz_target(fuzz_protorow SOURCES fuzz_protorow.c LIBS rn_schema CORPUS ${C}/protorow)
