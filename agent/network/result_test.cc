#include "agent/network/result.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "os/files.h"
#include "tests/support/status_matchers.h"

namespace berth::network {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Real output of Debian's bridge + host-local, dual stack (tests/fixtures/cni/README.md).
std::string Fixture(const std::string& version) {
  absl::StatusOr<std::string> text = ReadFile(
      std::string(BERTH_SOURCE_DIR) + "/tests/fixtures/cni/bridge-result-" + version + ".json");
  EXPECT_THAT(text, IsOk());
  return text.ok() ? *text : "";
}

class BridgeResultTest : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(BridgeResultTest, ParsesInterfacesAndDualStackIps) {
  const auto [version, ifname] = GetParam();
  absl::StatusOr<Result> r = ParseResult(Fixture(version));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->cni_version, version);
  ASSERT_EQ(r->interfaces.size(), 3u);
  EXPECT_EQ(r->interfaces[0].name, "btcap0");
  EXPECT_TRUE(r->interfaces[0].sandbox.empty());
  EXPECT_EQ(r->interfaces[2].name, ifname);
  EXPECT_EQ(r->interfaces[2].sandbox, "/run/netns/berth-cap-1");
  EXPECT_FALSE(r->interfaces[2].mac.empty());
  ASSERT_EQ(r->ips.size(), 2u);
  EXPECT_EQ(r->ips[0].family, 4);
  EXPECT_EQ(r->ips[0].interface, 2);
  EXPECT_EQ(r->ips[0].gateway, "10.244.214.1");
  EXPECT_EQ(r->ips[1].family, 6);
  EXPECT_EQ(r->ips[1].address.substr(0, 14), "fd00:b0b:214::");
  EXPECT_EQ(r->raw["cniVersion"], version);

  PodIps ips = SelectPodIps(*r, ifname);
  EXPECT_EQ(ips.primary.substr(0, 11), "10.244.214.");
  ASSERT_EQ(ips.additional.size(), 1u);
  EXPECT_EQ(ips.additional[0].substr(0, 14), "fd00:b0b:214::");
  EXPECT_EQ(ips.additional[0].find('/'), std::string::npos);
  // Another interface name owns none of them.
  EXPECT_TRUE(SelectPodIps(*r, "eth9").primary.empty());
}

INSTANTIATE_TEST_SUITE_P(Versions, BridgeResultTest,
                         ::testing::Values(std::pair{"0.3.1", "eth031"},
                                           std::pair{"0.4.0", "eth040"},
                                           std::pair{"1.0.0", "eth100"}));

TEST(ParseResultTest, LegacyIp4Ip6) {
  absl::StatusOr<Result> r = ParseResult(R"({"cniVersion": "0.2.0",
      "ip4": {"ip": "10.1.0.5/16", "gateway": "10.1.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
      "ip6": {"ip": "2001:db8::5/64"},
      "dns": {"nameservers": ["10.1.0.1"], "search": ["svc.local"]}})");
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->ips.size(), 2u);
  EXPECT_EQ(r->ips[0].address, "10.1.0.5/16");
  EXPECT_FALSE(r->ips[0].interface.has_value());
  EXPECT_EQ(r->ips[1].family, 6);
  ASSERT_EQ(r->routes.size(), 1u);
  EXPECT_EQ(r->routes[0].dst, "0.0.0.0/0");
  EXPECT_THAT(r->dns.nameservers, ElementsAre("10.1.0.1"));
  EXPECT_THAT(r->dns.search, ElementsAre("svc.local"));
  PodIps ips = SelectPodIps(*r, "eth0");  // no interface indexes: all IPs count
  EXPECT_EQ(ips.primary, "10.1.0.5");
  EXPECT_THAT(ips.additional, ElementsAre("2001:db8::5"));
}

TEST(SelectPodIpsTest, Ipv4IsPrimaryEvenWhenListedLater) {
  absl::StatusOr<Result> r = ParseResult(R"({"cniVersion": "1.0.0",
      "interfaces": [{"name": "cni0"}, {"name": "eth0", "sandbox": "/run/netns/x"}],
      "ips": [{"address": "fd00::2/64", "interface": 1},
              {"address": "192.168.0.1/24", "interface": 0},
              {"address": "10.0.0.2/24", "interface": 1},
              {"address": "10.0.0.3/24", "interface": 1}]})");
  ASSERT_THAT(r, IsOk());
  PodIps ips = SelectPodIps(*r, "eth0");
  EXPECT_EQ(ips.primary, "10.0.0.2");
  EXPECT_THAT(ips.additional, ElementsAre("fd00::2", "10.0.0.3"));  // not the host's 192.168.0.1
}

TEST(SelectPodIpsTest, Ipv6OnlyAndEmpty) {
  absl::StatusOr<Result> r = ParseResult(R"({"cniVersion": "1.0.0",
      "interfaces": [{"name": "eth0", "sandbox": "/x"}],
      "ips": [{"address": "fd00::2/64", "interface": 0}]})");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(SelectPodIps(*r, "eth0").primary, "fd00::2");
  absl::StatusOr<Result> empty = ParseResult(R"({"cniVersion": "1.0.0"})");
  ASSERT_THAT(empty, IsOk());
  EXPECT_TRUE(SelectPodIps(*empty, "eth0").primary.empty());
}

TEST(ParseResultTest, RejectsMalformedResults) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"nope", "not valid JSON"},
      {R"({"ips": []})", "no `cniVersion`"},
      {R"({"cniVersion": "one"})", "invalid cniVersion"},
      {R"({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.300/24"}]})", "invalid address"},
      {R"({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.3"}]})", "invalid address"},
      {R"({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.3/33"}]})", "invalid address"},
      {R"({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.3/24", "interface": 1}]})",
       "names interface 1 of 0"},
      {R"({"cniVersion": "0.2.0", "ip4": {"ip": "bad"}})", "invalid address"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseResult(c.text),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.text;
  }
}

}  // namespace
}  // namespace berth::network
