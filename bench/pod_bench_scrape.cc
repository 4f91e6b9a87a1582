// pod_bench --scrape (phase 4, issue 5; pod_bench.cc has the overview): GET
// /metrics at each pod count in turn, its wall time and berthd's CPU per
// scrape, and berthd's CPU over idle seconds with no scrape.
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
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

// Phase 4: /metrics at each pod count of o.scrape.
absl::Status MeasureScrapes(Bench& b, const Options& o, pid_t berthd, nlohmann::json* json) {
  constexpr int kScrapes = 20;
  std::printf("target: <= 50 ms per scrape at 500 containers, linear; ~0 CPU when idle\n");
  std::printf("\n== scrape: GET /metrics, %d scrapes per row ==\n", kScrapes);
  std::printf("%6s %9s %9s %9s %12s %11s %8s %9s %13s\n", "pods", "p50 ms", "p90 ms", "max ms",
              "cpu ms/scr", "ms/ctr p50", "series", "KB", "idle cpu ms/s");
  Phase phase;
  int running = 0;
  for (int target : o.scrape) {
    std::vector<std::string> ids;
    if (target > running) {
      BERTH_RETURN_IF_ERROR(StartPods(b, o.clients, running, target - running, phase, &ids));
      running = target;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::string page = testing::HttpGet(o.metrics_port, "/metrics");  // warm-up
    if (page.find("200 OK") == std::string::npos) {
      return absl::UnavailableError("GET /metrics failed: " + page.substr(0, 200));
    }
    Figures scrape{"scrape"};
    const double cpu0 = CpuMs(berthd);
    for (int i = 0; i < kScrapes; ++i) {
      scrape.ms.push_back(TimeMs([&] { page = testing::HttpGet(o.metrics_port, "/metrics"); }));
    }
    const double cpu_per = (CpuMs(berthd) - cpu0) / kScrapes;
    int series = 0;
    for (absl::string_view line : absl::StrSplit(page, '\n')) {
      if (!line.empty() && line[0] != '#') ++series;
    }
    const double idle0 = CpuMs(berthd);
    std::this_thread::sleep_for(std::chrono::seconds(5));
    const double idle = (CpuMs(berthd) - idle0) / 5;
    std::printf("%6d %9.2f %9.2f %9.2f %12.2f %11.3f %8d %9.0f %13.2f\n", target, scrape.Pct(0.5),
                scrape.Pct(0.9), scrape.Pct(1.0), cpu_per, scrape.Pct(0.5) / std::max(1, target),
                series, page.size() / 1024.0, idle);
    (*json)["scrape"].push_back({{"pods", target},
                                 {"containers", target},
                                 {"p50_ms", scrape.Pct(0.5)},
                                 {"p90_ms", scrape.Pct(0.9)},
                                 {"max_ms", scrape.Pct(1.0)},
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
