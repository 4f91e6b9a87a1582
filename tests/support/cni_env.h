// CniTestEnv: what a root test needs to run Debian's real CNI plugins without
// touching the machine's own networking: a bridge name, network name and
// /24 of its own (`bt<hex>`, `berth-test-<hex>`, a free 10.244.x.0/24), a
// conflist (bridge + host-local with its data dir in the test's temp dir +
// portmap + loopback), and on Restore() the bridge deleted, ip_forward put back
// and portmap's shared chains removed when this test made them and they are
// empty again. Tests using it hold the ctest resource lock "cni".
// Prepare() is the same set-up without gtest, for benchmarks (bench/pod_bench).
//
//   CniTestEnv env;
//   ASSERT_NO_FATAL_FAILURE(env.SetUp(dir));
//   WriteFileOrDie(conf_dir + "/10-test.conflist", env.Conflist());
//   ...
//   env.Restore();  // in TearDown
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/support/temp_dir.h"

namespace berth::testing {

class CniTestEnv {
 public:
  // GTEST_SKIP()s when not root or a plugin is missing; fails when no /24 is free.
  void SetUp(const TempDir& dir);
  // SetUp without gtest: FAILED_PRECONDITION when not root or a plugin is
  // missing, RESOURCE_EXHAUSTED when no /24 is free; on an error skipped() stays
  // true. Names are `bridge_prefix` and `network_prefix` + 8 hex digits (the
  // bridge prefix at most 7 bytes: interface names end at 15); host-local's
  // data dir is `dir`/ipam.
  absl::Status Prepare(const std::string& dir, const std::string& bridge_prefix = "bt",
                       const std::string& network_prefix = "berth-test-");
  void Restore();
  bool skipped() const { return bridge_.empty(); }

  // The conflist; `last_plugin` (JSON) is appended after loopback when given.
  std::string Conflist(const std::string& last_plugin = "") const;

  const std::string& bridge() const { return bridge_; }
  const std::string& network() const { return network_; }
  const std::string& subnet() const { return subnet_; }  // "10.244.x." (a prefix)
  // Address files host-local holds for this network (one per allocated IP).
  std::vector<std::string> IpamFiles() const;
  // Interfaces attached to the bridge (pods' host-side veths).
  std::vector<std::string> BridgePorts() const;
  // Lines of `iptables-save` (all tables) mentioning `text`.
  std::vector<std::string> IptablesLines(const std::string& text) const;

 private:
  std::string bridge_, network_, subnet_, ipam_, ip_forward_;
  bool portmap_chains_existed_ = true;
};

// stdout of a shell command.
std::string Output(const std::string& command);

}  // namespace berth::testing
