# Layer unpacking (issue 7, "Layers"): a layer tar (plain, gzip, zstd) into the
# directory that becomes its overlayfs lower dir. libarchive reads; we write.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBARCHIVE REQUIRED IMPORTED_TARGET libarchive)

berth_cc_library(
  NAME image_unpack
  SRCS unpack.cc unpack_fs.cc unpack_path.cc
  HDRS unpack.h unpack_fs.h unpack_path.h
  DEPS berth::os absl::status absl::statusor absl::strings PkgConfig::LIBARCHIVE)

# Builds layer tars for the tests with libarchive's writer.
berth_cc_library(
  NAME image_unpack_testing
  SRCS unpack_testing.cc
  HDRS unpack_testing.h
  DEPS absl::status absl::strings absl::cleanup PkgConfig::LIBARCHIVE)

berth_cc_test(NAME image_unpack_test
  SRCS unpack_test.cc unpack_path_test.cc
  DEPS berth::image_unpack berth::image_unpack_testing berth::test_support)

berth_cc_test(NAME image_unpack_root_test
  SRCS unpack_root_test.cc
  DEPS berth::image_unpack berth::image_unpack_testing berth::test_support
  LABELS root)
