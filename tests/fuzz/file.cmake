# The file source's multi-line grouping (plugins/in_file/multiline.c), fed by the real line
# splitter: file content is outside input.
if(TARGET rn_in_file)
  rn_add_fuzz_target(fuzz_multiline SOURCES fuzz_multiline.c LIBS rn_in_file CORPUS ${C}/multiline)
endif()
