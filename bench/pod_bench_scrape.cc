// pod_bench --scrape (phase 4, issue 5; pod_bench.cc has the overview): GET
// /metrics at each pod count in turn, its wall time and berthd's CPU per
// scrape, and berthd's CPU over idle seconds with no scrape.
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "bench/pod_bench.h"
#include "os/status.h"
#include "tests/support/berthd_process.h"

namespace berth::podbench {

// berth_container_metrics_read_seconds from a page: how long berthd's last
// read of every target took (behind the scrape, or in it when nothing was fresh).
double ReadSeconds(const std::string& page) {
  const std::string kName = "\nberth_container_metrics_read_seconds ";
  size_t at = page.find(kName);
  if (at == std::string::npos) return -1;
  return std::strtod(page.c_str() + at + kName.size(), nullptr);
}

// Phase 4: /metrics at each pod count of o.scrape, one scrape a second (a
// Prometheus interval: berthd reads behind each answer, metrics/collector.h).
absl::Status MeasureScrapes(Bench& b, const Options& o, pid_t berthd, nlohmann::json* json) {
  constexpr int kScrapes = 10;
  std::printf("target: <= 50 ms per scrape at 500 containers, linear; ~0 CPU when idle\n");
  std::printf("\n== scrape: GET /metrics once a second, %d scrapes per row ==\n", kScrapes);
  std::printf("  first: the first scrape at the count (new pods read before answering)\n");
  std::printf("  read: berthd's read of every target (behind each scrape), from the page\n");
  std::printf("  cpu: berthd's CPU from the first scrape until 1 s after the last, per scrape\n");
  std::printf("%6s %9s %9s %9s %9s %9s %12s %11s %8s %9s %13s\n", "pods", "first ms", "p50 ms",
              "p90 ms", "max ms", "read ms", "cpu ms/scr", "ms/ctr p50", "series", "KB",
              "idle cpu ms/s");
  Phase phase;
  int running = 0;
  for (int target : o.scrape) {
    std::vector<std::string> ids;
    if (target > running) {
      BERTH_RETURN_IF_ERROR(StartPods(b, o.clients, running, target - running, phase, &ids));
      running = target;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double cpu0 = CpuMs(berthd);
    std::string page;
    const double first = TimeMs([&] { page = testing::HttpGet(o.metrics_port, "/metrics"); });
    if (page.find("200 OK") == std::string::npos) {
      return absl::UnavailableError("GET /metrics failed: " + page.substr(0, 200));
    }
    Figures scrape{"scrape"};
    for (int i = 0; i < kScrapes; ++i) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      scrape.ms.push_back(TimeMs([&] { page = testing::HttpGet(o.metrics_port, "/metrics"); }));
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // the last read behind
    const double cpu_per = (CpuMs(berthd) - cpu0) / (kScrapes + 1);
    const double read_ms = ReadSeconds(page) * 1000;
    int series = 0;
    for (absl::string_view line : absl::StrSplit(page, '\n')) {
      if (!line.empty() && line[0] != '#') ++series;
    }
    const double idle0 = CpuMs(berthd);
    std::this_thread::sleep_for(std::chrono::seconds(5));
    const double idle = (CpuMs(berthd) - idle0) / 5;
    std::printf("%6d %9.2f %9.2f %9.2f %9.2f %9.2f %12.2f %11.3f %8d %9.0f %13.2f\n", target, first,
                scrape.Pct(0.5), scrape.Pct(0.9), scrape.Pct(1.0), read_ms, cpu_per,
                scrape.Pct(0.5) / std::max(1, target), series, page.size() / 1024.0, idle);
    (*json)["scrape"].push_back({{"pods", target},
                                 {"containers", target},
                                 {"first_ms", first},
                                 {"p50_ms", scrape.Pct(0.5)},
                                 {"p90_ms", scrape.Pct(0.9)},
                                 {"max_ms", scrape.Pct(1.0)},
                                 {"read_ms", read_ms},
                                 {"cpu_ms_per_scrape", cpu_per},
                                 {"series", series},
                                 {"bytes", page.size()},
                                 {"idle_cpu_ms_per_s", idle}});
  }
  std::vector<std::string> all;
  {
    std::lock_guard<std::mutex> lock(b.mu);
    all.assign(b.pods.begin(), b.pods.end());
  }
  return TeardownPods(b, o.clients, all, phase);
}

}  // namespace berth::podbench
