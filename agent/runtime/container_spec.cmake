# CRI ContainerConfig + sandbox + image -> the shim's ContainerSpec (container_spec.h):
# pure translation plus reads of the image's /etc/passwd, /etc/group and of
# seccomp profiles. One source file per concern (container_spec_internal.h).
berth_cc_library(
  NAME container_spec
  SRCS container_spec.cc container_spec_user.cc container_spec_security.cc
       container_spec_mounts.cc container_spec_resources.cc container_spec_signal.cc
       container_spec_cgroup.cc container_spec_lsm.cc
  HDRS container_spec.h container_spec_internal.h
  DEPS berth::cri_v1_proto berth::shim_v1_proto berth::shim_client berth::images berth::seccomp
       berth::os berth::cgroup absl::strings absl::status absl::statusor)
# The generated CRI headers, parsed once (CI time): berth_runtime's store.h has them.
target_precompile_headers(berth_container_spec REUSE_FROM berth_runtime)

berth_cc_test(NAME container_spec_test PCH cri
  SRCS container_spec_test.cc container_spec_user_test.cc container_spec_security_test.cc
       container_spec_mounts_test.cc container_spec_resources_test.cc
       container_spec_signal_test.cc container_spec_cgroup_test.cc
       container_spec_lsm_test.cc
  DEPS berth::container_spec berth::test_support)
