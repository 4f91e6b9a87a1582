// The pod sandbox sysctl policy and the pin helper's flags (shim/pin.h).
#include "shim/pin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "shim/client.h"
#include "tests/support/status_matchers.h"

namespace berth::shim {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

TEST(CheckSandboxSysctlTest, AcceptsNamespacedSysctlsOfOwnedNamespaces) {
  for (const char* key : {"kernel.shmmax", "kernel.shmall", "kernel.shm_rmid_forced",
                          "kernel.msgmax", "kernel.msgmnb", "kernel.sem", "fs.mqueue.msg_max"}) {
    EXPECT_THAT(CheckSandboxSysctl(key, false, true), IsOk()) << key;
  }
  for (const char* key : {"net.ipv4.ip_unprivileged_port_start", "net.core.somaxconn",
                          "net.ipv4.conf.all.rp_filter", "net.ipv4.ping_group_range"}) {
    EXPECT_THAT(CheckSandboxSysctl(key, true, false), IsOk()) << key;
  }
}

TEST(CheckSandboxSysctlTest, RefusesNamespacedSysctlsOfTheHostsNamespaces) {
  EXPECT_THAT(CheckSandboxSysctl("net.core.somaxconn", false, true),
              StatusIs(kInvalid, HasSubstr("`net.core.somaxconn` belongs to the network")));
  EXPECT_THAT(CheckSandboxSysctl("kernel.shmmax", true, false),
              StatusIs(kInvalid, HasSubstr("`kernel.shmmax` belongs to the IPC")));
  EXPECT_THAT(CheckSandboxSysctl("fs.mqueue.queues_max", true, false),
              StatusIs(kInvalid, HasSubstr("shares with the host")));
}

TEST(CheckSandboxSysctlTest, RefusesSysctlsThatAreNotNamespaced) {
  EXPECT_THAT(CheckSandboxSysctl("kernel.panic", true, true),
              StatusIs(kInvalid,
                       "sysctl `kernel.panic` is not namespaced: refusing to set it "
                       "for a pod"));
  for (const char* key : {"vm.overcommit_memory", "fs.file-max", "kernel.pid_max", "fs.mqueue",
                          "net", "kernel.semx", "netfilter.x"}) {
    EXPECT_THAT(CheckSandboxSysctl(key, true, true),
                StatusIs(kInvalid, HasSubstr("is not namespaced")))
        << key;
  }
}

TEST(CheckSandboxSysctlTest, RefusesUtsSysctls) {
  EXPECT_THAT(CheckSandboxSysctl("kernel.hostname", true, true),
              StatusIs(kInvalid, HasSubstr("set the pod's hostname")));
  EXPECT_THAT(CheckSandboxSysctl("kernel/domainname", true, true),
              StatusIs(kInvalid, HasSubstr("`kernel/domainname`")));
}

TEST(CheckSandboxSysctlTest, NormalisesTheSlashedSpelling) {
  EXPECT_THAT(CheckSandboxSysctl("net/ipv4/ip_forward", true, false), IsOk());
  EXPECT_THAT(CheckSandboxSysctl("kernel/shmmax", false, true), IsOk());
  EXPECT_THAT(CheckSandboxSysctl("kernel/panic", true, true),
              StatusIs(kInvalid, HasSubstr("`kernel/panic` is not namespaced")));
  EXPECT_EQ(NormalizeSysctlKey("net/ipv4/ip_forward"), "net.ipv4.ip_forward");
  EXPECT_EQ(NormalizeSysctlKey("net.ipv4.ip_forward"), "net.ipv4.ip_forward");
  // A VLAN interface's name has a dot: the two spellings swap '.' and '/'.
  EXPECT_EQ(NormalizeSysctlKey("net/ipv4/conf/eth0.100/rp_filter"),
            "net.ipv4.conf.eth0/100.rp_filter");
  EXPECT_THAT(CheckSandboxSysctl("net.ipv4.conf.eth0/100.rp_filter", true, false), IsOk());
}

TEST(CheckSandboxSysctlTest, RefusesMalformedKeys) {
  for (const char* key :
       {"", "net..ipv4", "net.ipv4.", ".net.ipv4", "net/../kernel/panic", "net.ipv4.x y",
        "net.ipv4.x\n", "net.ipv4.x=1", "net.ipv4.*", "net//ipv4", "/net/ipv4", "net.\xc3\xa9"}) {
    EXPECT_THAT(CheckSandboxSysctl(key, true, true), StatusIs(kInvalid, HasSubstr("sysctl `")))
        << key;
  }
  EXPECT_THAT(CheckSandboxSysctl("net/../kernel/panic", true, true),
              StatusIs(kInvalid, HasSubstr("\"..\"")));
  EXPECT_THAT(CheckSandboxSysctl("net.ipv4.x y", true, true),
              StatusIs(kInvalid, HasSubstr("characters other than")));
}

TEST(PinArgsTest, RoundTrips) {
  PinOptions o;
  o.dir = "/run/berth/sandboxes/p1/ns";
  o.net = true;
  o.uts = true;
  o.hostname = "p1";
  o.sysctls = {{"net.ipv4.ip_forward", "1"}, {"net.ipv4.ping_group_range", "0 2147483647"}};
  std::vector<std::string> args = PinArgs(o);
  EXPECT_THAT(args, ElementsAre("--pin-namespaces", o.dir, "--net", "--uts", "--hostname", "p1",
                                "--sysctl", "net.ipv4.ip_forward=1", "--sysctl",
                                "net.ipv4.ping_group_range=0 2147483647"));
  std::vector<const char*> argv = {"berth-shim"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  absl::StatusOr<PinOptions> parsed = ParsePinArgs(static_cast<int>(argv.size()), argv.data());
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->dir, o.dir);
  EXPECT_TRUE(parsed->net);
  EXPECT_FALSE(parsed->ipc);
  EXPECT_TRUE(parsed->uts);
  EXPECT_EQ(parsed->hostname, "p1");
  EXPECT_THAT(parsed->sysctls, ElementsAre(Pair("net.ipv4.ip_forward", "1"),
                                           Pair("net.ipv4.ping_group_range", "0 2147483647")));
}

TEST(PinArgsTest, RefusesBadFlags) {
  std::vector<std::vector<const char*>> bad = {
      {"berth-shim", "--pin-namespaces"},
      {"berth-shim", "--pin-namespaces", "/d", "--pid"},
      {"berth-shim", "--pin-namespaces", "/d", "--hostname"},
      {"berth-shim", "--pin-namespaces", "/d", "--sysctl", "novalue"},
      {"berth-shim", "--pin-namespaces", "/d", "--sysctl", "=1"},
  };
  for (const auto& argv : bad) {
    EXPECT_THAT(ParsePinArgs(static_cast<int>(argv.size()), argv.data()), StatusIs(kInvalid))
        << argv.back();
  }
}

TEST(RunPinTest, RefusesBadOptionsBeforeChangingAnything) {
  // All refused before unshare(2): these run unprivileged and change nothing.
  PinOptions o;
  o.dir = "relative";
  o.net = true;
  EXPECT_THAT(RunPin(o), StatusIs(kInvalid, HasSubstr("not absolute")));
  o.dir = "/nonexistent/berth-pin";
  o.net = false;
  EXPECT_THAT(RunPin(o), StatusIs(kInvalid, HasSubstr("nothing to pin")));
  o.net = true;
  o.hostname = "h";
  EXPECT_THAT(RunPin(o), StatusIs(kInvalid, HasSubstr("needs a new UTS namespace")));
  o.uts = true;
  o.hostname = std::string(65, 'h');
  EXPECT_THAT(RunPin(o), StatusIs(kInvalid, HasSubstr("longer than 64")));
  o.hostname = "h";
  o.sysctls = {{"kernel.shmmax", "1"}};
  EXPECT_THAT(RunPin(o), StatusIs(kInvalid, HasSubstr("belongs to the IPC")));
}

TEST(PinNamespacesTest, ChecksSysctlsBeforeSpawning) {
  PinOptions o;
  o.dir = "/nonexistent/berth-pin";
  o.net = true;
  o.sysctls = {{"kernel.panic", "1"}};
  // The shim path does not exist: the error is the policy's, so nothing was spawned.
  EXPECT_THAT(PinNamespaces("/nonexistent/berth-shim", o),
              StatusIs(kInvalid, HasSubstr("`kernel.panic` is not namespaced")));
}

TEST(UnpinNamespacesTest, MissingIsFine) {
  EXPECT_THAT(UnpinNamespaces("/nonexistent/berth-pin"), IsOk());
}

}  // namespace
}  // namespace berth::shim
