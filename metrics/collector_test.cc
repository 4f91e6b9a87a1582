// The container_* families in Prometheus text form: identity labels, extra
// labels, empty families left out, and a scrape over a fake v2 tree.
#include "metrics/collector.h"

#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "metrics/fake_cgroupfs.h"
#include "prometheus/text_serializer.h"
#include "tests/support/temp_dir.h"

namespace berth::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Text(const std::vector<prometheus::MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

TargetLabels Labels() {
  return {.container = "web", .id = "/berth/p1/c1", .image = "docker.io/library/busybox:1",
          .name = "c1", .namespace_ = "default", .pod = "nginx"};
}

TEST(FamilyBuilderTest, IdentityAndExtraLabels) {
  FamilyBuilder b;
  b.SetTarget(Labels());
  b.Add(Family::kCpuUsage, 1.5, {"total"});
  b.Add(Family::kMemoryWorkingSet, 4096, {});
  std::string text = Text(std::move(b).Finish(false));
  EXPECT_THAT(text, HasSubstr("# TYPE container_cpu_usage_seconds_total counter"));
  EXPECT_THAT(text, HasSubstr(
      "container_cpu_usage_seconds_total{container=\"web\",id=\"/berth/p1/c1\","
      "image=\"docker.io/library/busybox:1\",name=\"c1\",namespace=\"default\",pod=\"nginx\","
      "cpu=\"total\"} 1.5"));
  EXPECT_THAT(text, HasSubstr("# TYPE container_memory_working_set_bytes gauge"));
  EXPECT_THAT(text, Not(HasSubstr("container_memory_rss")));  // empty: left out
  EXPECT_THAT(text, HasSubstr("container_scrape_error 0"));
}

TEST(FamilyBuilderTest, ScrapeError) {
  EXPECT_THAT(Text(FamilyBuilder().Finish(true)), HasSubstr("container_scrape_error 1"));
}

TEST(ContainerCollectorTest, ScrapesFakeTreeAndSkipsGoneTargets) {
  V2Tree tree;
  berth::testing::TempDir proc;
  Sampler sampler(tree.layout(), {.proc_root = proc.path()});
  ContainerCollector collector(sampler, [] {
    ContainerTarget live{.sample = {.cgroup_path = kCgroup}, .labels = Labels()};
    ContainerTarget pod{.sample = {.pod = true, .cgroup_path = "/kubepods/pod1"},
                        .labels = {.id = "/kubepods/pod1", .namespace_ = "default",
                                   .pod = "nginx"}};
    ContainerTarget gone{.sample = {.cgroup_path = "/kubepods/gone"}};
    return std::vector<ContainerTarget>{live, pod, gone};
  });
  std::string text = Text(collector.Collect());
  EXPECT_THAT(text, HasSubstr("container_spec_memory_limit_bytes{container=\"web\",id=\"/berth/"
                              "p1/c1\",image=\"docker.io/library/busybox:1\",name=\"c1\","
                              "namespace=\"default\",pod=\"nginx\"} 268435456"));
  EXPECT_THAT(text, HasSubstr("container_cpu_cfs_throttled_periods_total{container=\"web\""));
  // The pod's own cgroup (the tree's parent dir, no files): pod-level series with container="".
  EXPECT_THAT(text, HasSubstr("container_last_seen{container=\"\",id=\"/kubepods/pod1\""));
  EXPECT_THAT(text, Not(HasSubstr("/kubepods/gone")));
}

}  // namespace
}  // namespace berth::metrics
