# The Parquet reader (server/delta/pqread.c): Delta checkpoints and compaction inputs are
# read from a table directory, so they are outside input.
if(TARGET rn_pqread)
  rn_add_fuzz_target(fuzz_pqread SOURCES fuzz_pqread.c LIBS rn_pqread CORPUS ${C}/pqread)
endif()
