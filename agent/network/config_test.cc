#include "agent/network/config.h"

#include <sys/stat.h>

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
using ::testing::HasSubstr;

constexpr char kConflist[] = R"({
  "cniVersion": "1.0.0", "name": "podnet",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local", "subnet": "10.1.0.0/16"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]})";
constexpr char kSingle[] = R"({"cniVersion": "0.3.1", "name": "single", "type": "ptp",
  "ipam": {"type": "host-local"}})";

TEST(ParseNetworkConfigTest, ListKeepsEachPluginsJson) {
  absl::StatusOr<NetworkConfigList> list = ParseNetworkConfig(kConflist, ConfigFormat::kList);
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->name, "podnet");
  EXPECT_EQ(list->cni_version, "1.0.0");
  EXPECT_FALSE(list->disable_check);
  ASSERT_EQ(list->plugins.size(), 2u);
  EXPECT_EQ(list->plugins[0].type, "bridge");
  EXPECT_EQ(list->plugins[0].raw["ipam"]["subnet"], "10.1.0.0/16");
  EXPECT_EQ(list->plugins[1].type, "portmap");
  EXPECT_TRUE(list->plugins[1].raw["capabilities"]["portMappings"].get<bool>());
}

TEST(ParseNetworkConfigTest, SingleBecomesAListOfOne) {
  absl::StatusOr<NetworkConfigList> list = ParseNetworkConfig(kSingle, ConfigFormat::kSingle);
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->name, "single");
  EXPECT_EQ(list->cni_version, "0.3.1");
  ASSERT_EQ(list->plugins.size(), 1u);
  EXPECT_EQ(list->plugins[0].type, "ptp");
  EXPECT_EQ(list->plugins[0].raw["ipam"]["type"], "host-local");
}

TEST(ParseNetworkConfigTest, DisableCheckAsBoolOrString) {
  for (const char* value : {"true", "\"true\""}) {
    std::string text = std::string(R"({"cniVersion":"1.0.0","name":"n","disableCheck":)") + value +
                       R"(,"plugins":[{"type":"bridge"}]})";
    absl::StatusOr<NetworkConfigList> list = ParseNetworkConfig(text, ConfigFormat::kList);
    ASSERT_THAT(list, IsOk());
    EXPECT_TRUE(list->disable_check) << value;
  }
}

TEST(ParseNetworkConfigTest, RejectsInvalidConfigs) {
  struct Case {
    const char* text;
    ConfigFormat format;
    const char* message;
  } cases[] = {
      {"{", ConfigFormat::kList, "not valid JSON"},
      {"[]", ConfigFormat::kList, "not a JSON object"},
      {R"({"cniVersion":"1.0.0","plugins":[{"type":"a"}]})", ConfigFormat::kList,
       "missing network `name`"},
      {R"({"cniVersion":"1.0.0","name":"-x","plugins":[{"type":"a"}]})", ConfigFormat::kList,
       "invalid network name `-x`"},
      {R"({"cniVersion":"1.0.0","name":"a b","plugins":[{"type":"a"}]})", ConfigFormat::kList,
       "invalid network name"},
      {R"({"name":"n","plugins":[{"type":"a"}]})", ConfigFormat::kList, "missing `cniVersion`"},
      {R"({"cniVersion":"1.0","name":"n","plugins":[{"type":"a"}]})", ConfigFormat::kList,
       "invalid cniVersion `1.0`"},
      {R"({"cniVersion":1,"name":"n","plugins":[{"type":"a"}]})", ConfigFormat::kList,
       "`cniVersion` is not a string"},
      {R"({"cniVersion":"1.0.0","name":"n","plugins":[]})", ConfigFormat::kList, "`plugins`"},
      {R"({"cniVersion":"1.0.0","name":"n"})", ConfigFormat::kList, "`plugins`"},
      {R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"},{"bridge":"x"}]})",
       ConfigFormat::kList, "plugins[1]: missing `type`"},
      {R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../bin/sh"}]})", ConfigFormat::kList,
       "invalid `type`"},
      {R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","capabilities":[]}]})",
       ConfigFormat::kList, "`capabilities` is not an object"},
      {R"({"cniVersion":"1.0.0","name":"n"})", ConfigFormat::kSingle, "missing `type`"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseNetworkConfig(c.text, c.format),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.text;
  }
}

TEST(ParseNetworkConfigTest, ToJsonRoundTrips) {
  absl::StatusOr<NetworkConfigList> list = ParseNetworkConfig(kConflist, ConfigFormat::kList);
  ASSERT_THAT(list, IsOk());
  list->disable_check = true;
  absl::StatusOr<NetworkConfigList> again =
      ParseNetworkConfig(ToJson(*list).dump(), ConfigFormat::kList);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->name, list->name);
  EXPECT_TRUE(again->disable_check);
  ASSERT_EQ(again->plugins.size(), 2u);
  EXPECT_EQ(again->plugins[0].raw, list->plugins[0].raw);
  EXPECT_EQ(again->plugins[1].raw, list->plugins[1].raw);
}

TEST(LoadNetworkConfigTest, EmptyOrMissingDirIsFailedPrecondition) {
  TempDir dir;
  EXPECT_THAT(LoadNetworkConfig(dir.path()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "no network config found in `" + dir.path() + "`"));
  EXPECT_THAT(LoadNetworkConfig(dir.Join("nope")), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                            HasSubstr("no network config found")));
}

TEST(LoadNetworkConfigTest, FirstFileByNameWins) {
  TempDir dir;
  WriteFileOrDie(dir.Join("20-single.conf"), kSingle);
  WriteFileOrDie(dir.Join("10-list.conflist"), kConflist);
  WriteFileOrDie(dir.Join("05-notes.txt"), "not a config");
  ASSERT_EQ(mkdir(dir.Join("00-dir.conf").c_str(), 0755), 0);  // a directory is skipped
  absl::StatusOr<NetworkConfigList> list = LoadNetworkConfig(dir.path());
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->name, "podnet");
  EXPECT_EQ(list->source, dir.Join("10-list.conflist"));

  WriteFileOrDie(dir.Join("01-single.json"), kSingle);  // .json reads as a single config
  list = LoadNetworkConfig(dir.path());
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->name, "single");
  EXPECT_EQ(list->plugins.size(), 1u);
}

TEST(LoadNetworkConfigTest, ConfExtensionIsReadAsSingle) {
  TempDir dir;
  WriteFileOrDie(dir.Join("10-net.conf"), kSingle);
  absl::StatusOr<NetworkConfigList> list = LoadNetworkConfig(dir.path());
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->plugins[0].type, "ptp");
  // A list written to a .conf has no top-level `type`: it is refused, as libcni does.
  WriteFileOrDie(dir.Join("10-net.conf"), kConflist);
  EXPECT_THAT(LoadNetworkConfig(dir.path()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing `type`")));
}

TEST(LoadNetworkConfigTest, BrokenFirstFileNamesTheFile) {
  TempDir dir;
  WriteFileOrDie(dir.Join("10-bad.conflist"), "{ nope");
  WriteFileOrDie(dir.Join("20-good.conflist"), kConflist);
  EXPECT_THAT(
      LoadNetworkConfig(dir.path()),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("network config `" + dir.Join("10-bad.conflist") + "`: not valid JSON")));
}

TEST(CniVersionTest, ParsesAndCompares) {
  EXPECT_THAT(ParseCniVersion("0.4.0"), IsOk());
  EXPECT_THAT(ParseCniVersion("1.0"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCniVersion("1.0.x"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCniVersion("1.-1.0"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(CniVersionAtLeast("1.0.0", "0.4.0"));
  EXPECT_TRUE(CniVersionAtLeast("0.4.0", "0.4.0"));
  EXPECT_TRUE(CniVersionAtLeast("0.10.0", "0.4.0"));
  EXPECT_FALSE(CniVersionAtLeast("0.3.1", "0.4.0"));
  EXPECT_FALSE(CniVersionAtLeast("bad", "0.4.0"));
}

TEST(CniIdentifierTest, FollowsTheSpecPattern) {
  EXPECT_TRUE(IsValidCniIdentifier("a"));
  EXPECT_TRUE(IsValidCniIdentifier("0abc_def.g-h"));
  EXPECT_FALSE(IsValidCniIdentifier(""));
  EXPECT_FALSE(IsValidCniIdentifier("_a"));
  EXPECT_FALSE(IsValidCniIdentifier("a/b"));
  EXPECT_FALSE(IsValidCniIdentifier("a b"));
}

}  // namespace
}  // namespace berth::network
