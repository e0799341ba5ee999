# rn_add_unit_test(<name> SOURCES <files...> LIBS <targets...>)
# Builds a cmocka test binary and registers it with CTest under the label "unit".
function(rn_add_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA rn_warnings)
  if(TARGET rn_testutil)
    target_link_libraries(${name} PRIVATE rn_testutil)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 120
    ENVIRONMENT "RN_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp")
endfunction()

# rn_add_fuzz_target(<name> SOURCES <files...> LIBS <targets...> CORPUS <dir>)
# With RN_FUZZ (clang): a libFuzzer binary. Always: a replay test that runs the target's
# entry point over every file of the seed corpus, so the corpus stays valid in every build.
# With RN_FUZZ, <name>.corpus beside the binary holds the corpus path (tests/fuzz/run.sh).
# With RN_BUILD_SERVER=OFF, a target whose libraries are the server's is left out (said so).
function(rn_add_fuzz_target name)
  cmake_parse_arguments(F "" "CORPUS" "SOURCES;LIBS" ${ARGN})
  if(NOT RN_BUILD_SERVER)
    foreach(l ${F_LIBS})
      if(NOT TARGET ${l})
        message(STATUS "RN_BUILD_SERVER=OFF: ${name} not built (needs ${l})")
        return()
      endif()
    endforeach()
  endif()
  if(RN_FUZZ)
    # <name>.corpus names the seed corpus for tests/fuzz/run.sh (one mapping, here)
    file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/${name}.corpus "${F_CORPUS}\n")
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

# RN_EMULATOR: what prefixes a test program that a test starts through sh -c: the
# CMAKE_CROSSCOMPILING_EMULATOR (qemu-user in cross builds) and a space, natively nothing.
string(REPLACE ";" " " RN_EMULATOR "${CMAKE_CROSSCOMPILING_EMULATOR}")
if(RN_EMULATOR)
  string(APPEND RN_EMULATOR " ")
endif()
