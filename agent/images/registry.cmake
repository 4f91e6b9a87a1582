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

# Which endpoints (mirrors, then the registry) serve a registry host.
find_package(toml11 REQUIRED)
berth_cc_library(
  NAME image_hosts
  SRCS hosts.cc
  HDRS hosts.h
  DEPS berth::image_registry berth::os toml11::toml11 absl::strings)

berth_cc_test(NAME image_hosts_test
  SRCS hosts_test.cc
  DEPS berth::image_hosts berth::test_support)

# A real docker-registry on loopback for the tests (registry_testing.h).
find_package(OpenSSL REQUIRED)
berth_cc_library(
  NAME image_registry_testing
  SRCS registry_testing.cc
  HDRS registry_testing.h
  DEPS berth::image_store berth::test_support CURL::libcurl OpenSSL::Crypto
       nlohmann_json::nlohmann_json absl::strings absl::time)

# The image manager: pull, import, resolve, list, remove (images.h).
berth_cc_library(
  NAME images
  SRCS images.cc
  HDRS images.h
  DEPS berth::image_store berth::image_unpack berth::image_hosts berth::image_registry
       berth::store absl::synchronization absl::strings absl::time)

berth_cc_test(NAME images_root_test PCH cri
  SRCS images_root_test.cc images_layers_root_test.cc
  DEPS berth::images berth::image_registry_testing berth::image_unpack_testing berth::rootfs
       berth::test_support
  LABELS root)
