// What pod_bench's modes share (pod_bench.cc has the overview): a CRI client on
// berthd's socket, a pod's start and teardown timed per RPC, running them on
// several clients at once, the tables printed, and berthd's RSS and CPU read
// from /proc. The default phases are in pod_bench.cc, --scrape in
// pod_bench_scrape.cc, --cni in pod_bench_cni.cc.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/cri/api.h"
#include "bench/bench_support.h"
#include "os/files.h"
#include "os/status.h"
#include "tests/support/berthd_process.h"
#include "tests/support/cni_env.h"

namespace berth::podbench {

namespace v1 = runtime::v1;
using bench::Figures;
using bench::TimeMs;

inline constexpr char kImage[] = "docker.io/berth/demo:latest";

// Set by SIGINT and SIGTERM: no new pod starts, and the run cleans up.
inline std::atomic<bool> interrupted{false};

// One connection to berthd per Client: gRPC shares a subchannel between channels
// with equal targets and arguments unless told to keep a pool of its own.
class Client {
 public:
  explicit Client(const std::string& socket) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stub_ = v1::RuntimeService::NewStub(
        grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args));
  }

  // Calls `method` with a 60 s deadline; its time in ms goes to `ms` on success.
  template <typename Req, typename Resp>
  absl::Status Call(const std::string& what,
                    grpc::Status (v1::RuntimeService::Stub::*method)(grpc::ClientContext*,
                                                                     const Req&, Resp*),
                    const Req& request, Resp* response, double* ms = nullptr) {
    grpc::Status s;
    double t = TimeMs([&] {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      s = ((*stub_).*method)(&ctx, request, response);
    });
    if (!s.ok()) return Annotate(testing::FromGrpcStatus(s), what);
    if (ms != nullptr) *ms = t;
    return absl::OkStatus();
  }

  // Connects (one Version call), so that no timed call pays for it.
  absl::Status Connect() {
    v1::VersionResponse version;
    return Call("Version", &v1::RuntimeService::Stub::Version, v1::VersionRequest(), &version);
  }

 private:
  std::unique_ptr<v1::RuntimeService::Stub> stub_;
};

// Per-RPC times of a set of pods, and the wall time of starting and tearing
// them all down.
struct Phase {
  Figures run{"RunPodSandbox"}, create{"CreateContainer"}, start{"StartContainer"},
      pod_start{"pod start (sum)"}, stop{"StopPodSandbox"}, remove{"RemovePodSandbox"},
      teardown{"teardown (sum)"};
  double start_wall_ms = 0, teardown_wall_ms = 0;
  int pods = 0;

  std::vector<const Figures*> rows() const {
    return {&run, &create, &start, &pod_start, &stop, &remove, &teardown};
  }
};

struct Bench {
  std::string socket, logs;
  bool pod_network = false;    // the pod's own netns instead of the host's
  std::mutex mu;               // pods, and the Phase figures of several clients
  std::set<std::string> pods;  // made and not yet removed, for the cleanup on the way out
};

struct Options {
  int n = 50, clients = 4, pods_rss = 200;
  std::vector<int> scrape;  // pod counts for phase 4; empty: phases 1-3
  bool cni = false;         // phase 5 only
  bool exec = false;        // --exec only
  // berthd's --state-dir on the temp dir's file system instead of a tmpfs (the
  // default --state-dir, /run/berth, is on a tmpfs wherever systemd runs).
  bool state_on_disk = false;
  // berthd's --root on the temp dir's own file system ("host") instead of a
  // fresh journaled ext4 in a loop file ("ext4"), as a node's /var/lib is.
  std::string root_fs = "ext4";
  int metrics_port = 0;
  std::string json;
};

inline v1::PodSandboxConfig PodConfig(const Bench& b, int i) {
  v1::PodSandboxConfig c;
  c.mutable_metadata()->set_name(absl::StrCat("bench-", i));
  c.mutable_metadata()->set_namespace_("bench");
  c.mutable_metadata()->set_uid(absl::StrCat(i, "-uid"));
  c.mutable_metadata()->set_attempt(0);
  // As kubelet sends a hostNetwork pod: host network, the pod's own IPC, a
  // PID namespace per container (no pause process).
  v1::NamespaceOption* ns =
      c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(b.pod_network ? v1::POD : v1::NODE);
  ns->set_pid(v1::CONTAINER);
  c.set_log_directory(absl::StrCat(b.logs, "/", i));
  return c;
}

// RunPodSandbox, CreateContainer, StartContainer of pod `i`; its sandbox id
// goes to `id` (and to b.pods) as soon as it exists.
inline absl::Status StartPod(Bench& b, Client& client, int i, Phase& phase, std::string* id) {
  const std::string pod = absl::StrCat("pod bench-", i, ": ");
  double run_ms = 0, create_ms = 0, start_ms = 0;
  v1::RunPodSandboxRequest run;
  *run.mutable_config() = PodConfig(b, i);
  v1::RunPodSandboxResponse ran;
  BERTH_RETURN_IF_ERROR(client.Call(pod + "RunPodSandbox", &v1::RuntimeService::Stub::RunPodSandbox,
                                    run, &ran, &run_ms));
  *id = ran.pod_sandbox_id();
  {
    std::lock_guard<std::mutex> lock(b.mu);
    b.pods.insert(*id);
  }

  v1::CreateContainerRequest create;
  create.set_pod_sandbox_id(*id);
  v1::ContainerConfig& c = *create.mutable_config();
  c.mutable_metadata()->set_name("c");
  c.mutable_image()->set_image(kImage);
  c.add_command("/bin/sleep");
  c.add_command("3600");
  c.set_log_path("c.log");
  *create.mutable_sandbox_config() = run.config();
  v1::CreateContainerResponse created;
  BERTH_RETURN_IF_ERROR(client.Call(pod + "CreateContainer",
                                    &v1::RuntimeService::Stub::CreateContainer, create, &created,
                                    &create_ms));

  v1::StartContainerRequest start;
  start.set_container_id(created.container_id());
  v1::StartContainerResponse started;
  BERTH_RETURN_IF_ERROR(client.Call(pod + "StartContainer",
                                    &v1::RuntimeService::Stub::StartContainer, start, &started,
                                    &start_ms));

  std::lock_guard<std::mutex> lock(b.mu);
  phase.run.ms.push_back(run_ms);
  phase.create.ms.push_back(create_ms);
  phase.start.ms.push_back(start_ms);
  phase.pod_start.ms.push_back(run_ms + create_ms + start_ms);
  return absl::OkStatus();
}

// StopPodSandbox + RemovePodSandbox of `id`; its times go to `phase` if given.
inline absl::Status TeardownPod(Bench& b, Client& client, const std::string& id, Phase* phase) {
  double stop_ms = 0, remove_ms = 0;
  v1::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(id);
  v1::StopPodSandboxResponse stopped;
  BERTH_RETURN_IF_ERROR(client.Call(
      "StopPodSandbox " + id, &v1::RuntimeService::Stub::StopPodSandbox, stop, &stopped, &stop_ms));
  v1::RemovePodSandboxRequest remove;
  remove.set_pod_sandbox_id(id);
  v1::RemovePodSandboxResponse removed;
  BERTH_RETURN_IF_ERROR(client.Call("RemovePodSandbox " + id,
                                    &v1::RuntimeService::Stub::RemovePodSandbox, remove, &removed,
                                    &remove_ms));
  std::lock_guard<std::mutex> lock(b.mu);
  b.pods.erase(id);
  if (phase == nullptr) return absl::OkStatus();
  phase->stop.ms.push_back(stop_ms);
  phase->remove.ms.push_back(remove_ms);
  phase->teardown.ms.push_back(stop_ms + remove_ms);
  return absl::OkStatus();
}

// Runs f(client, 0..count-1) on `clients` threads, each with its own Client;
// after the first error no new item starts, and that error is returned.
inline absl::Status ForEach(const Bench& b, int clients, int count,
                            const std::function<absl::Status(Client&, int)>& f) {
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  absl::Status first;
  std::vector<std::thread> threads;
  for (int t = 0; t < std::min(clients, count); ++t) {
    threads.emplace_back([&] {
      Client client(b.socket);
      absl::Status s = client.Connect();
      for (int k; s.ok() && !failed && (k = next++) < count;) {
        s = interrupted ? absl::CancelledError("interrupted") : f(client, k);
      }
      if (s.ok()) return;
      std::lock_guard<std::mutex> lock(mu);
      if (!failed.exchange(true)) first = s;
    });
  }
  for (std::thread& t : threads) t.join();
  return first;
}

// Starts pods first..first+count-1 on `clients` clients; their ids go to `ids`.
inline absl::Status StartPods(Bench& b, int clients, int first, int count, Phase& phase,
                              std::vector<std::string>* ids) {
  ids->assign(count, "");
  phase.pods = count;
  absl::Status s;
  phase.start_wall_ms = TimeMs([&] {
    s = ForEach(b, clients, count,
                [&](Client& c, int k) { return StartPod(b, c, first + k, phase, &(*ids)[k]); });
  });
  return s;
}

inline absl::Status TeardownPods(Bench& b, int clients, const std::vector<std::string>& ids,
                                 Phase& phase) {
  absl::Status s;
  phase.teardown_wall_ms = TimeMs([&] {
    s = ForEach(b, clients, static_cast<int>(ids.size()),
                [&](Client& c, int k) { return TeardownPod(b, c, ids[k], &phase); });
  });
  return s;
}

// Prints `title` and a row per figure; returns the rows as JSON.
inline nlohmann::json PrintTable(const std::string& title,
                                 const std::vector<const Figures*>& figures) {
  std::printf("\n== %s ==\n%-28s %6s %9s %9s %9s %9s\n", title.c_str(), "ms", "n", "p50", "p90",
              "p99", "max");
  nlohmann::json rows = nlohmann::json::array();
  for (const Figures* f : figures) {
    std::printf("%-28s %6zu %9.3f %9.3f %9.3f %9.3f\n", f->name.c_str(), f->ms.size(), f->Pct(0.5),
                f->Pct(0.9), f->Pct(0.99), f->Pct(1.0));
    nlohmann::json row = {{"name", absl::StripLeadingAsciiWhitespace(f->name)},
                          {"n", f->ms.size()},
                          {"p50_ms", f->Pct(0.5)}};
    row.update({{"p90_ms", f->Pct(0.9)}, {"p99_ms", f->Pct(0.99)}, {"max_ms", f->Pct(1.0)}});
    rows.push_back(row);
  }
  return rows;
}

inline nlohmann::json PrintPhase(const std::string& title, const Phase& p) {
  nlohmann::json rows = PrintTable(title, p.rows());
  const double start_rate = p.pods / (p.start_wall_ms / 1000);
  const double teardown_rate = p.pods / (p.teardown_wall_ms / 1000);
  std::printf("pods/s: start %.1f (%d in %.2f s), teardown %.1f (%.2f s)\n", start_rate, p.pods,
              p.start_wall_ms / 1000, teardown_rate, p.teardown_wall_ms / 1000);
  std::printf(
      "vs target: pod start p50 %.1f ms (<= 15; containerd ~110), teardown p50 %.1f ms "
      "(<= 10; containerd ~70)\n",
      p.pod_start.Pct(0.5), p.teardown.Pct(0.5));
  return {{"times", rows},
          {"pods", p.pods},
          {"start_wall_s", p.start_wall_ms / 1000},
          {"teardown_wall_s", p.teardown_wall_ms / 1000},
          {"start_pods_per_s", start_rate},
          {"teardown_pods_per_s", teardown_rate}};
}

// VmRSS of `pid` in MB, or -1.
inline double RssMb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    long kb;
    if (key == "VmRSS:" && in >> kb) return kb / 1024.0;
  }
  return -1;
}

// berthd's user+system CPU time in ms (/proc/<pid>/stat fields 14 and 15).
inline double CpuMs(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return -1;
  std::vector<std::string> f = absl::StrSplit(stat->substr(stat->rfind(')') + 2), ' ');
  return (std::stod(f[11]) + std::stod(f[12])) * 1000.0 / sysconf(_SC_CLK_TCK);
}

// Phase 4 (--scrape, pod_bench_scrape.cc): /metrics at each pod count of o.scrape.
absl::Status MeasureScrapes(Bench& b, const Options& o, pid_t berthd, nlohmann::json* json);

// Phase 5's network (made by Main, used by --cni): the CNI test env and the
// dirs its conflist lives in.
struct CniSetup {
  const testing::CniTestEnv& env;
  std::string dir;       // the bench's temp dir
  std::string conf_dir;  // berthd's --cni-conf-dir
  std::string off_dir;   // where the conflist waits while pods get loopback only
  bool on = true;        // the conflist is in conf_dir
};

inline constexpr char kConflist[] = "10-bench.conflist";

// Phase 5 (--cni, pod_bench_cni.cc): what a pod's network costs, through berthd
// and in the plugins.
absl::Status MeasureCni(Bench& b, const Options& o, CniSetup& c, nlohmann::json* json);

// --exec (pod_bench_exec.cc): ExecSync, streaming exec and port-forward into
// one running pod.
absl::Status MeasureExec(Bench& b, const Options& o, nlohmann::json* json);

}  // namespace berth::podbench
