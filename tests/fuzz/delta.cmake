# The Delta log analyzer (server/delta/log.c): commit files and Parquet footers read from a
# table directory are outside input (any writer, any damage).
if(TARGET rn_dlog)
  rn_add_fuzz_target(fuzz_delta_log SOURCES fuzz_delta_log.c LIBS rn_dlog CORPUS ${C}/delta_log)
endif()
