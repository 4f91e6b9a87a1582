# Uniform targets for Berth's own code: warnings as errors, `berth::` aliases.
#
#   berth_cc_library(NAME os SRCS a.cc HDRS a.h DEPS absl::status)
#   berth_cc_binary(NAME berthd SRCS main.cc DEPS berth::agent)
#   berth_cc_test(NAME fd_test SRCS fd_test.cc DEPS berth::os [LABELS root] [LOCK name])

include(GoogleTest)

set(BERTH_WARNINGS -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers)
if(BERTH_FUZZ)
  # clang's warnings are not gcc's, whose -Werror build is the one that gates.
  set(BERTH_WARNINGS -Wno-unused-parameter -Wno-missing-field-initializers)
endif()

function(_berth_common target)
  target_compile_options(${target} PRIVATE ${BERTH_WARNINGS})
  target_compile_definitions(${target} PRIVATE BERTH_VERSION="${PROJECT_VERSION}")
endfunction()

function(berth_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;HDRS;DEPS" ${ARGN})
  if(ARG_SRCS)
    add_library(berth_${ARG_NAME} STATIC ${ARG_SRCS} ${ARG_HDRS})
    _berth_common(berth_${ARG_NAME})
    target_link_libraries(berth_${ARG_NAME} PUBLIC ${ARG_DEPS})
    target_include_directories(berth_${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  else()
    add_library(berth_${ARG_NAME} INTERFACE)
    target_link_libraries(berth_${ARG_NAME} INTERFACE ${ARG_DEPS})
    target_include_directories(berth_${ARG_NAME} INTERFACE ${PROJECT_SOURCE_DIR})
  endif()
  add_library(berth::${ARG_NAME} ALIAS berth_${ARG_NAME})
endfunction()

function(berth_cc_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  _berth_common(${ARG_NAME})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
endfunction()

# Tests run from the build tree; `LABELS root` marks tests that need root (they
# GTEST_SKIP() otherwise), the rest get `unit`. BERTHD_PATH reaches tests as a macro.
# Test code itself is compiled without optimisation or debug info: gtest and
# gmock expand to a lot of code that -O2 spends most of CI's build time on,
# and nothing timed runs in a test (benchmarks live in bench/). The code under
# test comes from the libraries, built with the normal flags.
# Added to the common flags (_berth_common), which the caller gives the target.
function(_berth_test_flags target)
  target_compile_options(${target} PRIVATE -O0 -g0)
  target_compile_definitions(${target} PRIVATE
    BERTHD_PATH="$<TARGET_FILE:berthd>" BERTH_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endfunction()

# berth_test_pch(NAME cri HEADER tests/support/test_pch_cri.h DEPS ...): a target
# holding a precompiled header that test targets reuse (berth_cc_test PCH cri),
# built once with exactly the tests' flags. GCC refuses a header built with other
# flags (-Winvalid-pch, an error under -Werror), so a mismatch cannot pass silently.
function(berth_test_pch)
  cmake_parse_arguments(ARG "" "NAME;HEADER" "DEPS" ${ARGN})
  add_library(berth_test_pch_${ARG_NAME} OBJECT ${PROJECT_SOURCE_DIR}/tests/support/test_pch.cc)
  _berth_common(berth_test_pch_${ARG_NAME})
  _berth_test_flags(berth_test_pch_${ARG_NAME})
  target_link_libraries(berth_test_pch_${ARG_NAME} PUBLIC ${ARG_DEPS} GTest::gmock GTest::gtest_main
    Threads::Threads)
  # Every test gets -pthread through gRPC or GTest; the header must too (_REENTRANT).
  target_compile_options(berth_test_pch_${ARG_NAME} PRIVATE -pthread)
  target_include_directories(berth_test_pch_${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_precompile_headers(berth_test_pch_${ARG_NAME} PRIVATE
    ${PROJECT_SOURCE_DIR}/${ARG_HEADER})
endfunction()

# PCH: which berth_test_pch to reuse; `base` (gtest, gmock, absl, the test
# support headers) unless given.
function(berth_cc_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT;LOCK;PCH" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  _berth_common(${ARG_NAME})
  _berth_test_flags(${ARG_NAME})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  if(NOT ARG_PCH)
    set(ARG_PCH base)
  endif()
  target_precompile_headers(${ARG_NAME} REUSE_FROM berth_test_pch_${ARG_PCH})
  set(labels unit)
  if(ARG_LABELS)
    set(labels ${ARG_LABELS})
  endif()
  gtest_discover_tests(${ARG_NAME} DISCOVERY_TIMEOUT 30)
  # Labels and LOCK (tests sharing one machine-wide resource, ctest
  # RESOURCE_LOCK, never run at once) are set on the discovered tests by a file
  # ctest reads after gtest's list. Passed through gtest_discover_tests'
  # PROPERTIES, a list ("e2e;root") came out flat: LABELS e2e plus a stray
  # "root" property that swallowed RESOURCE_LOCK, so the CNI e2e tests ran
  # beside each other and raced on portmap's iptables chains.
  set(props "LABELS [==[${labels}]==]")
  if(ARG_LOCK)
    string(APPEND props " RESOURCE_LOCK ${ARG_LOCK}")
  endif()
  set(file "${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}_properties.cmake")
  file(WRITE "${file}"
       "if(${ARG_NAME}_TESTS)\n"
       "  set_tests_properties(\${${ARG_NAME}_TESTS} PROPERTIES ${props})\n"
       "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${file}")
endfunction()

# Protocol buffers: protoc output stays in the build tree (STYLE.md 12), wrapped
# in one library target per file.

# berth_proto_library(NAME cri_v1 PROTO runtime/v1/api.proto GRPC)
# Paths are relative to the calling directory, which is the proto import root.
# Output goes to <build>/<dir>/gen, which becomes a SYSTEM include directory.
function(berth_proto_library)
  cmake_parse_arguments(ARG "GRPC" "NAME;PROTO" "DEPS" ${ARGN})
  set(BERTH_PROTO_OUT ${CMAKE_CURRENT_BINARY_DIR}/gen)
  file(MAKE_DIRECTORY ${BERTH_PROTO_OUT})
  get_target_property(BERTH_GRPC_CPP_PLUGIN gRPC::grpc_cpp_plugin LOCATION)
  get_filename_component(dir ${ARG_PROTO} DIRECTORY)
  get_filename_component(stem ${ARG_PROTO} NAME_WE)
  set(base ${BERTH_PROTO_OUT}/${dir}/${stem})
  set(outs ${base}.pb.cc ${base}.pb.h)
  set(plugin_args)
  if(ARG_GRPC)
    list(APPEND outs ${base}.grpc.pb.cc ${base}.grpc.pb.h)
    set(plugin_args --grpc_out=${BERTH_PROTO_OUT} --plugin=protoc-gen-grpc=${BERTH_GRPC_CPP_PLUGIN})
  endif()
  add_custom_command(
    OUTPUT ${outs}
    COMMAND protobuf::protoc
    ARGS --cpp_out=${BERTH_PROTO_OUT} ${plugin_args} -I${CMAKE_CURRENT_SOURCE_DIR}
         ${CMAKE_CURRENT_SOURCE_DIR}/${ARG_PROTO}
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${ARG_PROTO} protobuf::protoc
    COMMENT "protoc ${ARG_PROTO}")
  add_library(berth_${ARG_NAME}_proto STATIC ${outs})
  target_include_directories(berth_${ARG_NAME}_proto SYSTEM PUBLIC ${BERTH_PROTO_OUT})
  target_link_libraries(berth_${ARG_NAME}_proto PUBLIC protobuf::libprotobuf ${ARG_DEPS})
  if(ARG_GRPC)
    target_link_libraries(berth_${ARG_NAME}_proto PUBLIC gRPC::grpc++)
  endif()
  add_library(berth::${ARG_NAME}_proto ALIAS berth_${ARG_NAME}_proto)
endfunction()

