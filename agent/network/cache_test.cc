#include "agent/network/cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::network {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

CacheEntry SampleEntry() {
  CacheEntry e;
  absl::StatusOr<NetworkConfigList> list = ParseNetworkConfig(
      R"({"cniVersion": "1.0.0", "name": "podnet", "disableCheck": true,
          "plugins": [{"type": "bridge", "ipam": {"type": "host-local"}},
                      {"type": "portmap", "capabilities": {"portMappings": true}}]})",
      ConfigFormat::kList);
  EXPECT_THAT(list, IsOk());
  e.config = *list;
  e.result =
      nlohmann::json::parse(R"({"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.2/24"}]})");
  e.attachment.container_id = "abc123";
  e.attachment.netns = "/run/berth/sandboxes/abc123/ns/net";
  e.attachment.ifname = "eth0";
  e.attachment.args = KubernetesArgs("default", "nginx", "abc123", "uid");
  e.attachment.port_mappings.push_back(
      {.host_port = 8080, .container_port = 80, .protocol = "sctp", .host_ip = "10.0.0.1"});
  e.attachment.bandwidth =
      Bandwidth{.ingress_rate = 1, .ingress_burst = 2, .egress_rate = 3, .egress_burst = 4};
  e.attachment.ips = {"10.1.0.7"};
  e.attachment.ip_ranges = {"10.244.3.0/24"};
  return e;
}

TEST(CacheTest, RoundTrip) {
  TempDir dir;
  CacheEntry e = SampleEntry();
  ASSERT_THAT(WriteCache(dir.path(), e), IsOk());
  const std::string path = dir.path() + "/results/podnet-abc123-eth0";
  EXPECT_EQ(CachePath(dir.path(), "podnet", e.attachment), path);
  EXPECT_THAT(FindCacheFiles(dir.path(), "abc123", "eth0"), ElementsAre(path));

  absl::StatusOr<CacheEntry> back = ReadCache(path);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(ToJson(*back), ToJson(e));
  EXPECT_EQ(back->config.name, "podnet");
  EXPECT_TRUE(back->config.disable_check);
  EXPECT_EQ(back->result, e.result);
  const Attachment& a = back->attachment;
  EXPECT_EQ(a.netns, e.attachment.netns);
  EXPECT_EQ(a.args, e.attachment.args);
  ASSERT_EQ(a.port_mappings.size(), 1u);
  EXPECT_EQ(a.port_mappings[0].protocol, "sctp");
  EXPECT_EQ(a.port_mappings[0].host_ip, "10.0.0.1");
  ASSERT_TRUE(a.bandwidth.has_value());
  EXPECT_EQ(a.bandwidth->egress_burst, 4u);
  EXPECT_EQ(a.ips, e.attachment.ips);
  EXPECT_EQ(a.ip_ranges, e.attachment.ip_ranges);

  ASSERT_THAT(RemoveCache(path), IsOk());
  EXPECT_THAT(FindCacheFiles(dir.path(), "abc123", "eth0"), IsEmpty());
  EXPECT_THAT(RemoveCache(path), IsOk());  // gone already is fine
}

TEST(CacheTest, FindMatchesContainerAndInterfaceOnly) {
  TempDir dir;
  CacheEntry e = SampleEntry();
  ASSERT_THAT(WriteCache(dir.path(), e), IsOk());
  e.attachment.ifname = "net1";
  ASSERT_THAT(WriteCache(dir.path(), e), IsOk());
  e.attachment.container_id = "xabc123";
  e.attachment.ifname = "eth0";
  ASSERT_THAT(WriteCache(dir.path(), e), IsOk());
  e.config.name = "other";
  e.attachment.container_id = "abc123";
  ASSERT_THAT(WriteCache(dir.path(), e), IsOk());
  EXPECT_THAT(FindCacheFiles(dir.path(), "abc123", "eth0"),
              ElementsAre(dir.path() + "/results/other-abc123-eth0",
                          dir.path() + "/results/podnet-abc123-eth0"));
  EXPECT_THAT(FindCacheFiles(dir.path(), "abc123", "net1"),
              ElementsAre(dir.path() + "/results/podnet-abc123-net1"));
  EXPECT_THAT(FindCacheFiles(dir.Join("missing"), "abc123", "eth0"), IsEmpty());
}

TEST(CacheTest, RejectsForeignFiles) {
  TempDir dir;
  WriteFileOrDie(dir.Join("libcni"), R"({"kind": "cniCacheV1", "containerId": "abc"})");
  EXPECT_THAT(ReadCache(dir.Join("libcni")), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCache("{"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCache(R"({"kind": "berth-cni-cache-v1", "attachment": {}})"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace berth::network
