# Helpers shared by every folder's CMakeLists.txt.

# mtw_unit_test(NAME SOURCES... LIBS ...): one GoogleTest binary registered with CTest.
function(mtw_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT MTW_BUILD_TESTS OR MTW_FUZZ)
    return()
  endif()
  find_package(GTest REQUIRED)
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_compile_definitions(${name} PRIVATE
      MTW_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
      MTW_SHARED_VECTORS_DIR="${PROJECT_SOURCE_DIR}/../shared/vectors")
  add_test(NAME ${name} COMMAND ${name} --gtest_brief=1)
  set(labels unit ${T_LABELS})
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" TIMEOUT 600)
endfunction()

# mtw_fuzzer(NAME SOURCE LIBS ...): a libFuzzer target (MTW_FUZZ=ON) plus two CTest entries:
# replay of its seed corpus, and a bounded fuzzing run (MTW_FUZZ_SECONDS, default 30).
set(MTW_FUZZ_SECONDS 30 CACHE STRING "Seconds each fuzz target runs under ctest")
function(mtw_fuzzer name source)
  cmake_parse_arguments(F "" "" "LIBS" ${ARGN})
  if(NOT MTW_FUZZ)
    return()
  endif()
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
  set(corpus ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${name})
  set(work ${CMAKE_CURRENT_BINARY_DIR}/corpus-${name})
  add_test(NAME ${name}_seeds COMMAND ${name} -runs=0 ${corpus})
  add_test(NAME ${name}_run COMMAND ${CMAKE_COMMAND} -E env
           sh -c "rm -rf '${work}' && mkdir -p '${work}' && exec \"$0\" -max_total_time=${MTW_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 '${work}' '${corpus}'"
           $<TARGET_FILE:${name}>)
  set_tests_properties(${name}_seeds PROPERTIES LABELS "fuzz;seeds")
  set_tests_properties(${name}_run PROPERTIES LABELS "fuzz;run" TIMEOUT 300)
endfunction()
