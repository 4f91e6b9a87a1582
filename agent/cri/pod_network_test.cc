// Pod bandwidth annotations, as the CNI bandwidth plugin takes them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/cri/cri_service.h"
#include "tests/support/status_matchers.h"

namespace berth {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParseBandwidthTest, KubernetesQuantitiesInBitsPerSecond) {
  EXPECT_EQ(*ParseBandwidth("10M"), 10'000'000u);
  EXPECT_EQ(*ParseBandwidth("1Gi"), 1024u * 1024 * 1024);
  EXPECT_EQ(*ParseBandwidth("500k"), 500'000u);
  EXPECT_EQ(*ParseBandwidth("2.5M"), 2'500'000u);
  EXPECT_EQ(*ParseBandwidth("100"), 100u);
  for (const char* bad : {"", "M", "-1M", "0", "ten", "10X"}) {
    EXPECT_THAT(ParseBandwidth(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(CheckPodBandwidthTest, NamesTheAnnotation) {
  runtime::v1::PodSandboxConfig c;
  EXPECT_THAT(CheckPodBandwidth(c), IsOk());
  (*c.mutable_annotations())["kubernetes.io/ingress-bandwidth"] = "10M";
  EXPECT_THAT(CheckPodBandwidth(c), IsOk());
  (*c.mutable_annotations())["kubernetes.io/egress-bandwidth"] = "fast";
  absl::Status s = CheckPodBandwidth(c);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(s.message()), HasSubstr("kubernetes.io/egress-bandwidth"));
}

}  // namespace
}  // namespace berth
