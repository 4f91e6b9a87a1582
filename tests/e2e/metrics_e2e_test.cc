// Metrics end to end (issue 5): a container that burns CPU and fills 32 MiB of
// its memory under a 64 MiB limit, seen (1) through the CRI stats and metrics
// RPCs and (2) by a real Prometheus server scraping berthd's /metrics every
// second, queried over its HTTP API; and a scrape passes `promtool check metrics`.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "os/files.h"
#include "os/status.h"
#include "tests/e2e/lifecycle_fixture.h"
#include "tests/support/status_matchers.h"

extern char** environ;

namespace berth::testing {
namespace {

using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kLimit = 64 * kMiB;

class MetricsE2eTest : public LifecycleTest {
 protected:
  void SetUp() override {
    metrics_port_ = PickFreePort();
    extra_flags_ = {absl::StrCat("--metrics-address=127.0.0.1:", metrics_port_)};
    LifecycleTest::SetUp();
  }

  // A pod with one container that fills 32 MiB of /dev/shm (charged to its
  // memory cgroup) and then spins.
  void StartBurner() {
    pod_config_ = PodConfig("burner");
    auto pod = RunPod(pod_config_);
    ASSERT_THAT(pod, IsOk());
    pod_ = *pod;
    v1::ContainerConfig c =
        ContainerConfig("spin", {"sh", "-c",
                                 "dd if=/dev/zero of=/dev/shm/fill bs=1M count=32 2>/dev/null; "
                                 "touch /started; while :; do :; done"});
    c.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(kLimit);
    auto id = CreateContainer(pod_, c, pod_config_);
    ASSERT_THAT(id, IsOk());
    container_ = *id;
    ASSERT_THAT(StartContainer(container_), IsOk());
    // Wait for the 32 MiB to be written.
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      auto r = ExecSync(container_, {"test", "-e", "/started"});
      if (r.ok() && r->exit_code() == 0) return;
      absl::SleepFor(absl::Milliseconds(100));
    }
    FAIL() << "the container did not fill its memory";
  }

  absl::StatusOr<v1::ContainerStats> Stats(const std::string& id) {
    v1::ContainerStatsRequest req;
    req.set_container_id(id);
    v1::ContainerStatsResponse resp;
    BERTH_RETURN_IF_ERROR(FromGrpcStatus(runtime_->ContainerStats(Ctx().get(), req, &resp)));
    return resp.stats();
  }

  int metrics_port_ = 0;
  v1::PodSandboxConfig pod_config_;
  std::string pod_;
  std::string container_;
};

TEST_F(MetricsE2eTest, StatsRpcsReportWhatTheContainerDid) {
  ASSERT_NO_FATAL_FAILURE(StartBurner());
  auto first = Stats(container_);
  ASSERT_THAT(first, IsOk());
  absl::SleepFor(absl::Seconds(1));
  auto s = Stats(container_);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->attributes().id(), container_);
  EXPECT_EQ(s->attributes().metadata().name(), "spin");
  EXPECT_GT(s->cpu().timestamp(), 0);
  EXPECT_GT(s->memory().timestamp(), 0);
  EXPECT_GT(s->cpu().usage_core_nano_seconds().value(),
            first->cpu().usage_core_nano_seconds().value());
  // It spins: close to one core over the second between the calls.
  EXPECT_GT(s->cpu().usage_nano_cores().value(), 500'000'000u);
  EXPECT_GE(s->memory().working_set_bytes().value(), 32 * kMiB);
  EXPECT_LT(s->memory().working_set_bytes().value(), kLimit);
  EXPECT_EQ(s->memory().available_bytes().value(),
            kLimit - s->memory().working_set_bytes().value());
  EXPECT_GT(s->writable_layer().used_bytes().value(), 0u);  // /started
  EXPECT_GT(s->writable_layer().inodes_used().value(), 0u);

  v1::ListContainerStatsRequest list;
  (*list.mutable_filter()->mutable_label_selector())["container"] = "spin";
  v1::ListContainerStatsResponse listed;
  ASSERT_THAT(FromGrpcStatus(runtime_->ListContainerStats(Ctx().get(), list, &listed)), IsOk());
  ASSERT_EQ(listed.stats_size(), 1);
  EXPECT_EQ(listed.stats(0).attributes().id(), container_);
  list.mutable_filter()->mutable_label_selector()->at("container") = "other";
  ASSERT_THAT(FromGrpcStatus(runtime_->ListContainerStats(Ctx().get(), list, &listed)), IsOk());
  EXPECT_EQ(listed.stats_size(), 0);

  v1::PodSandboxStatsRequest preq;
  preq.set_pod_sandbox_id(pod_.substr(0, 12));  // a unique prefix, as crictl allows
  v1::PodSandboxStatsResponse pstats;
  ASSERT_THAT(FromGrpcStatus(runtime_->PodSandboxStats(Ctx().get(), preq, &pstats)), IsOk());
  EXPECT_EQ(pstats.stats().attributes().id(), pod_);
  ASSERT_EQ(pstats.stats().linux().containers_size(), 1);
  EXPECT_GE(pstats.stats().linux().memory().working_set_bytes().value(), 32 * kMiB);
  EXPECT_GE(pstats.stats().linux().process().process_count().value(), 1u);

  preq.set_pod_sandbox_id("0000000000000000");
  EXPECT_THAT(FromGrpcStatus(runtime_->PodSandboxStats(Ctx().get(), preq, &pstats)),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(MetricsE2eTest, CriMetricsMatchTheirDescriptors) {
  ASSERT_NO_FATAL_FAILURE(StartBurner());
  v1::ListMetricDescriptorsResponse descs;
  ASSERT_THAT(FromGrpcStatus(runtime_->ListMetricDescriptors(
                  Ctx().get(), v1::ListMetricDescriptorsRequest(), &descs)),
              IsOk());
  std::map<std::string, int> keys;
  for (const v1::MetricDescriptor& d : descs.descriptors()) {
    EXPECT_NE(d.help(), "") << d.name();
    EXPECT_GT(d.label_keys_size(), 0) << d.name();
    keys[d.name()] = d.label_keys_size();
  }
  // The names kubelet's CRI metrics collector expects (research/cri-v1.md §7).
  for (const char* name :
       {"container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
        "container_spec_memory_limit_bytes", "container_fs_usage_bytes",
        "container_network_receive_bytes_total", "container_ulimits_soft",
        "container_memory_kernel_usage", "container_fs_inodes_free", "container_last_seen"}) {
    EXPECT_EQ(keys.count(name), 1u) << name;
  }
  v1::ListPodSandboxMetricsResponse metrics;
  ASSERT_THAT(FromGrpcStatus(runtime_->ListPodSandboxMetrics(
                  Ctx().get(), v1::ListPodSandboxMetricsRequest(), &metrics)),
              IsOk());
  ASSERT_EQ(metrics.pod_metrics_size(), 1);
  const v1::PodSandboxMetrics& pm = metrics.pod_metrics(0);
  EXPECT_EQ(pm.pod_sandbox_id(), pod_);
  ASSERT_EQ(pm.container_metrics_size(), 1);
  EXPECT_EQ(pm.container_metrics(0).container_id(), container_);
  bool saw_limit = false;
  for (const v1::Metric& m : pm.container_metrics(0).metrics()) {
    ASSERT_EQ(keys.count(m.name()), 1u) << m.name();
    EXPECT_EQ(m.label_values_size(), keys[m.name()]) << m.name();
    if (m.name() == "container_spec_memory_limit_bytes") {
      saw_limit = true;
      EXPECT_EQ(m.value().value(), kLimit);
    }
  }
  EXPECT_TRUE(saw_limit);
  for (const v1::Metric& m : pm.metrics()) {
    EXPECT_EQ(m.label_values_size(), keys[m.name()]) << m.name();
  }
}

// A Prometheus server on loopback with its config and data in a temp dir,
// scraping `target` every second; stopped and reaped by the destructor.
class Prometheus {
 public:
  Prometheus(const TempDir& dir, int target) : port_(PickFreePort()) {
    const std::string config = dir.Join("prometheus.yml");
    WriteFileOrDie(config, absl::StrCat("global:\n  scrape_interval: 1s\n"
                                        "  evaluation_interval: 1s\n"
                                        "scrape_configs:\n  - job_name: berth\n"
                                        "    static_configs:\n      - targets: ['127.0.0.1:",
                                        target, "']\n"));
    const std::string data = dir.Join("prometheus-data");
    const std::string log = dir.Join("prometheus.log");
    std::vector<std::string> args = {"/usr/bin/prometheus", "--config.file=" + config,
                                     "--storage.tsdb.path=" + data,
                                     absl::StrCat("--web.listen-address=127.0.0.1:", port_)};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Prometheus() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  bool started() const { return pid_ > 0; }

  // The first value of an instant query, or nullopt when it has no result yet.
  std::optional<double> Query(const std::string& promql) {
    std::string page = HttpGet(port_, "/api/v1/query?query=" + UrlEncode(promql));
    size_t body = page.find("\r\n\r\n");
    if (body == std::string::npos) return std::nullopt;
    nlohmann::json j = nlohmann::json::parse(page.substr(body + 4), nullptr, false);
    if (j.is_discarded() || j["status"] != "success") return std::nullopt;
    const nlohmann::json& result = j["data"]["result"];
    if (!result.is_array() || result.empty()) return std::nullopt;
    return std::stod(result[0]["value"][1].get<std::string>());
  }

 private:
  static std::string UrlEncode(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
      if (isalnum(c) || c == '_' || c == '.' || c == '-') {
        out += static_cast<char>(c);
      } else {
        out += absl::StrCat("%", absl::BytesToHexString(std::string(1, static_cast<char>(c))));
      }
    }
    return out;
  }

  int port_;
  pid_t pid_ = -1;
};

// Polls `query` until `ok(value)` holds or 60 s pass; the last value seen.
std::optional<double> WaitFor(Prometheus& p, const std::string& query,
                              const std::function<bool(double)>& ok) {
  std::optional<double> v;
  for (absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;) {
    v = p.Query(query);
    if (v && ok(*v)) return v;
    absl::SleepFor(absl::Milliseconds(500));
  }
  return v;
}

TEST_F(MetricsE2eTest, PrometheusScrapesContainerMetrics) {
  ASSERT_NO_FATAL_FAILURE(StartBurner());
  Prometheus prometheus(dir_, metrics_port_);
  ASSERT_TRUE(prometheus.started());
  auto rate = WaitFor(prometheus, "rate(container_cpu_usage_seconds_total{container=\"spin\"}[5s])",
                      [](double v) { return v > 0.5; });
  EXPECT_TRUE(rate && *rate > 0.5) << "rate " << (rate ? *rate : -1);
  auto ws = WaitFor(prometheus, "container_memory_working_set_bytes{container=\"spin\"}",
                    [](double v) { return v >= 32 * kMiB; });
  ASSERT_TRUE(ws.has_value());
  EXPECT_GE(*ws, 32.0 * kMiB);
  EXPECT_LT(*ws, 1.0 * kLimit);
  auto limit = WaitFor(prometheus, "container_spec_memory_limit_bytes{container=\"spin\"}",
                       [](double v) { return v > 0; });
  ASSERT_TRUE(limit.has_value());
  EXPECT_EQ(*limit, 1.0 * kLimit);
  // The pod-level series (container="") and the labels from the CRI metadata.
  auto pod = WaitFor(prometheus,
                     "container_memory_working_set_bytes{container=\"\",pod=\"burner\","
                     "namespace=\"e2e\"}",
                     [](double v) { return v >= 32 * kMiB; });
  EXPECT_TRUE(pod && *pod >= 32 * kMiB);
  auto up = WaitFor(prometheus, "berth_containers{state=\"CONTAINER_RUNNING\"}",
                    [](double v) { return v == 1; });
  EXPECT_TRUE(up && *up == 1);
}

TEST_F(MetricsE2eTest, ScrapePassesPromtool) {
  ASSERT_NO_FATAL_FAILURE(StartBurner());
  std::string page = HttpGet(metrics_port_, "/metrics");
  size_t body = page.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos) << page;
  EXPECT_THAT(page, HasSubstr("container_cpu_usage_seconds_total{container=\"spin\""));
  EXPECT_THAT(page, HasSubstr("process_resident_memory_bytes"));
  EXPECT_THAT(page, HasSubstr("berth_container_start_duration_seconds_count 1"));
  WriteFileOrDie(dir_.Join("scrape.txt"), page.substr(body + 4));
  const std::string out = dir_.Join("promtool.txt");
  int rc = Shell("promtool check metrics < " + dir_.Join("scrape.txt") + " > " + out + " 2>&1");
  auto report = ReadFile(out);
  EXPECT_EQ(rc, 0) << (report.ok() ? *report : "");
  EXPECT_THAT(report.ok() ? *report : "x", Not(HasSubstr("should")));
}

}  // namespace
}  // namespace berth::testing
