# The image store's foundations (issue 7): digests, references, manifests and
# configs, and the content store of blobs by digest.
find_package(OpenSSL REQUIRED)
berth_cc_library(
  NAME image_store
  SRCS digest.cc reference.cc manifest.cc manifest_json.cc manifest_config.cc
       manifest_platform.cc content_store.cc
  HDRS digest.h reference.h manifest.h manifest_json.h manifest_config.h manifest_platform.h
       content_store.h
  DEPS berth::os OpenSSL::Crypto nlohmann_json::nlohmann_json absl::flat_hash_set absl::span
       absl::status absl::statusor absl::strings absl::time)

berth_cc_test(NAME image_store_test
  SRCS digest_test.cc reference_test.cc manifest_test.cc manifest_config_test.cc
       manifest_platform_test.cc content_store_test.cc
  DEPS berth::image_store berth::test_support)
