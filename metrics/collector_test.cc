// The container_* families in Prometheus text form: identity labels, extra
// labels, escaping, empty families left out, and scrapes over a fake v2 tree
// (one thread and several, with cached files).
#include "metrics/collector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "metrics/fake_cgroupfs.h"
#include "metrics/text_sink.h"
#include "tests/support/temp_dir.h"

namespace berth::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TargetLabels Labels() {
  return {.container = "web",
          .id = "/berth/p1/c1",
          .image = "docker.io/library/busybox:1",
          .name = "c1",
          .namespace_ = "default",
          .pod = "nginx"};
}

TEST(TextSinkTest, IdentityAndExtraLabels) {
  TextSink sink;
  sink.SetTarget(Labels());
  sink.Add(Family::kCpuUsage, 1.5, {"total"});
  sink.Add(Family::kMemoryWorkingSet, 4096, {});
  std::string text = std::move(sink).Finish(false);
  EXPECT_THAT(text, HasSubstr("# TYPE container_cpu_usage_seconds_total counter\n"));
  EXPECT_THAT(
      text,
      HasSubstr(
          "container_cpu_usage_seconds_total{container=\"web\",id=\"/berth/p1/c1\","
          "image=\"docker.io/library/busybox:1\",name=\"c1\",namespace=\"default\",pod=\"nginx\","
          "cpu=\"total\"} 1.5\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE container_memory_working_set_bytes gauge\n"));
  EXPECT_THAT(text, HasSubstr("pod=\"nginx\"} 4096\n"));
  EXPECT_THAT(text, Not(HasSubstr("container_memory_rss")));  // empty: left out
  EXPECT_THAT(text, HasSubstr("container_scrape_error 0\n"));
}

TEST(TextSinkTest, EscapesAndValues) {
  std::string out;
  AppendLabelValue("a\"b\\c\nd", out);
  EXPECT_EQ(out, "a\\\"b\\\\c\\nd");
  out.clear();
  AppendValue(18446744073709551615.0, out);
  EXPECT_EQ(out, "18446744073709551616");  // the same double as Go's 1.8446744073709552e+19
  out.clear();
  AppendValue(0.25, out);
  AppendValue(-1, out);
  AppendValue(123456789, out);
  EXPECT_EQ(out, "0.25-1123456789");
  EXPECT_THAT(TextSink().Finish(true), HasSubstr("container_scrape_error 1\n"));
}

TEST(TextSinkTest, MergeKeepsFamiliesTogether) {
  TextSink a, b;
  a.SetTarget({.pod = "a"});
  a.Add(Family::kMemoryUsage, 1, {});
  a.Add(Family::kCpuUser, 2, {});
  b.SetTarget({.pod = "b"});
  b.Add(Family::kMemoryUsage, 3, {});
  a.Merge(std::move(b));
  std::string text = std::move(a).Finish(false);
  size_t type = text.find("# TYPE container_memory_usage_bytes");
  ASSERT_NE(type, std::string::npos);
  size_t first = text.find("pod=\"a\"} 1\n", type);
  size_t second = text.find("pod=\"b\"} 3\n", type);
  EXPECT_LT(first, second);
  // One TYPE line per family, whatever the number of sinks merged.
  EXPECT_EQ(text.find("# TYPE container_memory_usage_bytes", type + 1), std::string::npos);
}

TEST(ContainerCollectorTest, ScrapesFakeTreeAndSkipsGoneTargets) {
  V2Tree tree;
  berth::testing::TempDir proc;
  Sampler sampler(tree.layout(), {.proc_root = proc.path()});
  ContainerCollector collector(sampler, [] {
    ContainerTarget live{.sample = {.cgroup_path = kCgroup}, .labels = Labels()};
    ContainerTarget pod{
        .sample = {.pod = true, .cgroup_path = "/kubepods/pod1"},
        .labels = {.id = "/kubepods/pod1", .namespace_ = "default", .pod = "nginx"}};
    ContainerTarget gone{.sample = {.cgroup_path = "/kubepods/gone"}};
    return std::vector<ContainerTarget>{live, pod, gone};
  });
  std::string text = collector.Scrape();
  EXPECT_THAT(text, HasSubstr("container_spec_memory_limit_bytes{container=\"web\",id=\"/berth/"
                              "p1/c1\",image=\"docker.io/library/busybox:1\",name=\"c1\","
                              "namespace=\"default\",pod=\"nginx\"} 268435456"));
  EXPECT_THAT(text, HasSubstr("container_cpu_cfs_throttled_periods_total{container=\"web\""));
  // The pod's own cgroup (the tree's parent dir, no files): pod-level series with container="".
  EXPECT_THAT(text, HasSubstr("container_last_seen{container=\"\",id=\"/kubepods/pod1\""));
  EXPECT_THAT(text, Not(HasSubstr("/kubepods/gone")));
  // Files stay open for the next scrape, which reads the same.
  EXPECT_GT(sampler.open_files(), 10u);
  EXPECT_EQ(collector.Scrape().find("container_spec_memory_limit_bytes{container=\"web\""),
            text.find("container_spec_memory_limit_bytes{container=\"web\""));
}

TEST(ContainerCollectorTest, ManyTargetsOnSeveralThreadsInOrder) {
  V2Tree tree;
  berth::testing::TempDir proc;
  Sampler sampler(tree.layout(), {.proc_root = proc.path()});
  ContainerCollector collector(
      sampler,
      [] {
        std::vector<ContainerTarget> targets;
        for (int i = 0; i < 100; ++i) {
          targets.push_back({.sample = {.cgroup_path = kCgroup},
                             .labels = {.name = absl::StrCat("c", 1000 + i)}});
        }
        return targets;
      },
      /*threads=*/3);
  std::string text = collector.Scrape();
  size_t type = text.find("# TYPE container_memory_usage_bytes");
  size_t last = type;
  for (int i = 0; i < 100; ++i) {
    size_t at = text.find(absl::StrCat("name=\"c", 1000 + i, "\""), type);
    ASSERT_NE(at, std::string::npos) << i;
    EXPECT_GT(at, last) << i;
    last = at;
  }
}

TEST(ContainerCollectorTest, RemovedCgroupIsSkippedAndItsFilesClosed) {
  V2Tree tree;
  berth::testing::TempDir proc;
  Sampler sampler(tree.layout(), {.proc_root = proc.path()});
  std::vector<ContainerTarget> targets = {{.sample = {.cgroup_path = kCgroup}}};
  ContainerCollector collector(sampler, [&] { return targets; });
  collector.Scrape();
  EXPECT_GT(sampler.open_files(), 0u);
  targets.clear();
  collector.Scrape();
  EXPECT_EQ(sampler.open_files(), 0u);
}

}  // namespace
}  // namespace berth::metrics
