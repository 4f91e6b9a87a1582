// The container_* families in Prometheus text form: identity labels, extra
// labels, escaping, empty families left out, and scrapes over a fake v2 tree
// (one thread and several, with cached files).
#include "metrics/collector.h"

#include <fstream>
#include <utility>

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

TEST(TextSinkTest, ComposeKeepsFamiliesTogether) {
  TextSink a, b;
  a.SetTarget({.pod = "a"});
  a.Add(Family::kMemoryUsage, 1, {});
  a.Add(Family::kCpuUser, 2, {});
  b.SetTarget({.pod = "b"});
  b.Add(Family::kMemoryUsage, 3, {});
  std::string text = TextSink::Compose({}, {&a, &b}, false).Join();
  size_t type = text.find("# TYPE container_memory_usage_bytes");
  ASSERT_NE(type, std::string::npos);
  size_t first = text.find("pod=\"a\"} 1\n", type);
  size_t second = text.find("pod=\"b\"} 3\n", type);
  EXPECT_LT(first, second);
  // One TYPE line per family, whatever the number of sinks composed.
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
  std::string text = collector.Scrape().Join();
  EXPECT_THAT(text, HasSubstr("container_spec_memory_limit_bytes{container=\"web\",id=\"/berth/"
                              "p1/c1\",image=\"docker.io/library/busybox:1\",name=\"c1\","
                              "namespace=\"default\",pod=\"nginx\"} 268435456"));
  EXPECT_THAT(text, HasSubstr("container_cpu_cfs_throttled_periods_total{container=\"web\""));
  // The pod's own cgroup (the tree's parent dir, no files): pod-level series with container="".
  EXPECT_THAT(text, HasSubstr("container_last_seen{container=\"\",id=\"/kubepods/pod1\""));
  EXPECT_THAT(text, Not(HasSubstr("/kubepods/gone")));
  // Files stay open for the next scrape, which reads the same.
  EXPECT_GT(sampler.open_files(), 10u);
  EXPECT_EQ(collector.Scrape().Join().find("container_spec_memory_limit_bytes{container=\"web\""),
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
      {.threads = 3});
  std::string text = collector.Scrape().Join();
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

// Rewrites a fake cgroup file in place, as the kernel's values change: an fd
// the sampler keeps open sees the new text.
void Overwrite(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

constexpr char kUsage[] = "container_memory_usage_bytes{container=\"web\"";

// The value of the first series of `family_prefix` in `page`.
std::string ValueOf(const std::string& page, const std::string& family_prefix) {
  size_t at = page.find(family_prefix);
  if (at == std::string::npos) return "";
  at = page.find("} ", at) + 2;
  return page.substr(at, page.find('\n', at) - at);
}

TEST(ContainerCollectorTest, AScrapeServesTheValuesReadBehindThePreviousOne) {
  V2Tree tree;
  berth::testing::TempDir proc;
  Sampler sampler(tree.layout(), {.proc_root = proc.path()});
  std::vector<ContainerTarget> targets = {{.sample = {.cgroup_path = kCgroup}, .labels = Labels()}};
  ContainerCollector collector(sampler, [&] { return targets; });
  Overwrite(tree.Dir() + "/memory.current", "100\n");
  // Nothing read yet: the first scrape reads before answering, and starts no read behind.
  EXPECT_EQ(ValueOf(collector.Scrape().Join(), kUsage), "100");
  Overwrite(tree.Dir() + "/memory.current", "200\n");
  // The second serves what the first read (younger than one scrape interval),
  // then reads again behind its answer; the third serves that.
  EXPECT_EQ(ValueOf(collector.Scrape().Join(), kUsage), "100");
  collector.AwaitReadBehind();
  EXPECT_EQ(ValueOf(collector.Scrape().Join(), kUsage), "200");
  // A new target is read before answering; a removed one is gone at once.
  targets.push_back({.sample = {.cgroup_path = kCgroup},
                     .labels = {.container = "new", .id = "/berth/p1/c2", .name = "c2"}});
  std::string page = collector.Scrape().Join();
  EXPECT_THAT(page, HasSubstr("container_memory_usage_bytes{container=\"new\""));
  targets.erase(targets.begin());
  collector.AwaitReadBehind();
  page = collector.Scrape().Join();
  EXPECT_THAT(page, Not(HasSubstr(kUsage)));
  EXPECT_THAT(page, HasSubstr("container_memory_usage_bytes{container=\"new\""));
  // How long the last read of every target took.
  EXPECT_THAT(page, HasSubstr("\nberth_container_metrics_read_seconds "));
}

// The usage two scrapes `pause` apart show, with memory.current 100 before the
// first and 200 before the second.
std::pair<std::string, std::string> TwoScrapes(absl::Duration max_age, absl::Duration pause) {
  V2Tree tree;
  berth::testing::TempDir proc;
  Sampler sampler(tree.layout(), {.proc_root = proc.path()});
  ContainerCollector collector(sampler,
                               [] {
                                 return std::vector<ContainerTarget>{
                                     {.sample = {.cgroup_path = kCgroup}, .labels = Labels()}};
                               },
                               {.max_age = max_age});
  Overwrite(tree.Dir() + "/memory.current", "100\n");
  std::string first = ValueOf(collector.Scrape().Join(), kUsage);
  Overwrite(tree.Dir() + "/memory.current", "200\n");
  absl::SleepFor(pause);
  return {first, ValueOf(collector.Scrape().Join(), kUsage)};
}

TEST(ContainerCollectorTest, WhenAScrapeReadsBeforeAnswering) {
  using Values = std::pair<std::string, std::string>;
  // Soon after the previous scrape: what was read then (at most one interval old).
  EXPECT_EQ(TwoScrapes(absl::Minutes(1), absl::ZeroDuration()), Values("100", "100"));
  // No max age: every scrape reads first.
  EXPECT_EQ(TwoScrapes(absl::ZeroDuration(), absl::ZeroDuration()), Values("100", "200"));
  // Longer after the previous scrape than the max age: the old values are not served.
  EXPECT_EQ(TwoScrapes(absl::Milliseconds(50), absl::Milliseconds(100)), Values("100", "200"));
}

}  // namespace
}  // namespace berth::metrics
