#include "agent/network/attachment.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/status_matchers.h"

namespace berth::network {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

NetworkConfigList TwoPlugins() {
  absl::StatusOr<NetworkConfigList> list = ParseNetworkConfig(R"({
    "cniVersion": "1.0.0", "name": "podnet",
    "plugins": [
      {"type": "bridge", "name": "ignored", "cniVersion": "0.1.0",
       "capabilities": {"ips": true, "portMappings": false}},
      {"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": true}}
    ]})",
                                                              ConfigFormat::kList);
  EXPECT_THAT(list, IsOk());
  return *list;
}

Attachment WithEverything() {
  Attachment a;
  a.container_id = "abc";
  a.port_mappings.push_back({.host_port = 8080, .container_port = 80, .protocol = "tcp"});
  a.port_mappings.push_back(
      {.host_port = 53, .container_port = 5353, .protocol = "udp", .host_ip = "127.0.0.1"});
  a.bandwidth = Bandwidth{.ingress_rate = 1000, .ingress_burst = 10, .egress_rate = 2000};
  a.ips = {"10.1.0.9/24"};
  a.ip_ranges = {"10.244.3.0/24"};
  return a;
}

TEST(CapabilityArgsTest, ConventionsShapes) {
  nlohmann::json caps = CapabilityArgs(WithEverything());
  EXPECT_EQ(caps["portMappings"], nlohmann::json::parse(R"([
      {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
      {"hostPort": 53, "containerPort": 5353, "protocol": "udp", "hostIP": "127.0.0.1"}])"));
  EXPECT_EQ(caps["bandwidth"], nlohmann::json::parse(R"(
      {"ingressRate": 1000, "ingressBurst": 10, "egressRate": 2000, "egressBurst": 0})"));
  EXPECT_EQ(caps["ips"], nlohmann::json::parse(R"(["10.1.0.9/24"])"));
  EXPECT_EQ(caps["ipRanges"], nlohmann::json::parse(R"([[{"subnet": "10.244.3.0/24"}]])"));
  EXPECT_TRUE(CapabilityArgs(Attachment{}).empty());
}

TEST(BuildPluginConfigTest, InjectsOnlyDeclaredCapabilities) {
  NetworkConfigList list = TwoPlugins();
  nlohmann::json caps = CapabilityArgs(WithEverything());
  nlohmann::json bridge = BuildPluginConfig(list, 0, nullptr, caps);
  // ips declared true; portMappings declared false; bandwidth not declared.
  EXPECT_EQ(bridge["runtimeConfig"], nlohmann::json::parse(R"({"ips": ["10.1.0.9/24"]})"));
  nlohmann::json portmap = BuildPluginConfig(list, 1, nullptr, caps);
  EXPECT_EQ(portmap["runtimeConfig"].size(), 2u);
  EXPECT_EQ(portmap["runtimeConfig"]["portMappings"], caps["portMappings"]);
  EXPECT_EQ(portmap["runtimeConfig"]["bandwidth"], caps["bandwidth"]);
}

TEST(BuildPluginConfigTest, NameVersionPrevResultAndNoCapabilities) {
  NetworkConfigList list = TwoPlugins();
  nlohmann::json prev = {{"cniVersion", "1.0.0"}, {"ips", nlohmann::json::array()}};
  nlohmann::json conf = BuildPluginConfig(list, 0, prev, nlohmann::json::object());
  EXPECT_EQ(conf["name"], "podnet");  // the list's, over the plugin's own
  EXPECT_EQ(conf["cniVersion"], "1.0.0");
  EXPECT_EQ(conf["type"], "bridge");
  EXPECT_EQ(conf["prevResult"], prev);
  EXPECT_FALSE(conf.contains("capabilities"));
  EXPECT_FALSE(conf.contains("runtimeConfig"));  // nothing asked for
  EXPECT_FALSE(BuildPluginConfig(list, 0, nullptr, {}).contains("prevResult"));
}

TEST(BuildPluginConfigTest, StaticRuntimeConfigStaysUnlessInjected) {
  absl::StatusOr<NetworkConfigList> list = ParseNetworkConfig(R"({
    "cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "portmap",
      "capabilities": {"portMappings": true}, "runtimeConfig": {"portMappings": []}}]})",
                                                              ConfigFormat::kList);
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(BuildPluginConfig(*list, 0, nullptr, {})["runtimeConfig"]["portMappings"].size(), 0u);
  nlohmann::json conf = BuildPluginConfig(*list, 0, nullptr, CapabilityArgs(WithEverything()));
  EXPECT_EQ(conf["runtimeConfig"]["portMappings"].size(), 2u);
}

TEST(CniArgsTest, KubernetesArgsFormat) {
  EXPECT_EQ(FormatCniArgs(KubernetesArgs("default", "nginx", "abc", "uid-1")),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx;"
            "K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=uid-1");
  EXPECT_EQ(FormatCniArgs({}), "");
}

TEST(ValidateAttachmentTest, AcceptsAndRefuses) {
  Attachment a = WithEverything();
  a.args = KubernetesArgs("ns", "pod", "abc", "uid");
  EXPECT_THAT(ValidateAttachment(a), IsOk());

  Attachment bad = a;
  bad.container_id = "";
  EXPECT_THAT(ValidateAttachment(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("container id")));
  bad = a;
  bad.ifname = "averyveryverylongname";
  EXPECT_THAT(ValidateAttachment(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("invalid interface name")));
  bad.ifname = "eth/0";
  EXPECT_THAT(ValidateAttachment(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  bad = a;
  bad.args.push_back({"K", "a;b"});
  EXPECT_THAT(ValidateAttachment(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CNI_ARGS")));
  bad = a;
  bad.port_mappings[0].protocol = "TCP";
  EXPECT_THAT(ValidateAttachment(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown protocol `TCP`")));
  bad = a;
  bad.port_mappings[0].host_port = 70000;
  EXPECT_THAT(ValidateAttachment(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range")));
}

}  // namespace
}  // namespace berth::network
