# The runtime's parts below the CRI verbs: records and their store, the
# in-memory registry, the exit monitor and the event hub.
berth_cc_library(
  NAME runtime
  SRCS store.cc objects.cc monitor.cc events.cc
  HDRS store.h objects.h monitor.h events.h
  DEPS berth::os berth::store berth::state_v1_proto berth::cri_v1_proto berth::shim_client
       absl::synchronization absl::strings absl::status absl::statusor absl::time)

berth_cc_test(NAME runtime_test PCH cri
  SRCS runtime_test.cc
  DEPS berth::runtime berth::test_support)

target_precompile_headers(berth_runtime PRIVATE store.h)
