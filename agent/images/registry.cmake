# The registry client (libcurl).
find_package(CURL REQUIRED)
berth_cc_library(
  NAME image_registry
  SRCS registry.cc
  HDRS registry.h
  DEPS berth::os CURL::libcurl nlohmann_json::nlohmann_json absl::synchronization absl::strings
       absl::time)

berth_cc_test(NAME image_registry_test
  SRCS registry_test.cc
  DEPS berth::image_registry berth::test_support)
