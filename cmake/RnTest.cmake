# rn_add_unit_test(<name> SOURCES <files...> LIBS <targets...>)
# Builds a cmocka test binary and registers it with CTest under the label "unit".
function(rn_add_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA rn_warnings)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 120
    ENVIRONMENT "RN_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp")
endfunction()

# rn_add_fuzz_target(<name> SOURCES <files...> LIBS <targets...> CORPUS <dir>)
# With RN_FUZZ (clang): a libFuzzer binary. Always: a replay test that runs the target's
# entry point over every file of the seed corpus, so the corpus stays valid in every build.
function(rn_add_fuzz_target name)
  cmake_parse_arguments(F "" "CORPUS" "SOURCES;LIBS" ${ARGN})
  if(RN_FUZZ)
    add_executable(${name} ${F_SOURCES})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${name} PRIVATE ${F_LIBS} rn_warnings)
  endif()
  add_executable(${name}_replay ${F_SOURCES} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
  target_link_libraries(${name}_replay PRIVATE ${F_LIBS} rn_warnings)
  add_test(NAME ${name}_replay COMMAND ${name}_replay ${F_CORPUS})
  set_tests_properties(${name}_replay PROPERTIES LABELS fuzz TIMEOUT 120)
endfunction()
