// pod_bench: how fast berthd starts and tears down pods over CRI, and what a
// running pod costs berthd in memory.
//
//   build/bench/pod_bench [--n 50] [--c 4] [--pods-rss 200] [--json FILE]   (as root)
//   build/bench/pod_bench --cni [--n 50] [--json FILE]
//
// Builds the demo image (deploy/demo-image.sh), starts berthd on it with its pod
// cgroups under /berth-test-bench-<hex>, and runs host-network pods of one
// `sleep 3600` container each, through its own gRPC client on berthd's socket:
// RunPodSandbox + CreateContainer + StartContainer is "pod start",
// StopPodSandbox + RemovePodSandbox is "teardown". Three phases:
//   1. sequential: N pods started one after another, then torn down in turn;
//   2. concurrent: C clients, each on its own connection, N pods in all;
//   3. memory: berthd's VmRSS idle and with --pods-rss pods running.
// With --scrape 10,100,500 it runs only phase 4 instead (issue 5): pods with
// their own network namespace, started up to each count in turn; at each, 20
// GETs of /metrics (wall time per scrape, berthd's CPU per scrape from
// /proc/<pid>/stat) and berthd's CPU over 5 idle seconds with no scrape.
// With --cni it runs only phase 5 instead (issue 6): a bridge conflist of its
// own (CniTestEnv: bridge `bb<hex>`, a free 10.244.x.0/24, host-local's data in
// the temp dir, portmap, loopback) in berthd's --cni-conf-dir, and N of each of
// three kinds of pod in turn: berthd pods with their own network namespace and
// no container (RunPodSandbox only) with the conflist, the same with loopback
// only (the file moved out of the dir and back; berthd re-reads it), and the
// plugins alone (network::Cni in this process, ADD on a namespace the bench
// pins itself, every plugin exec timed); then StopPodSandbox +
// RemovePodSandbox, or DEL, of each in the same order. The first two differ by
// what networking costs through berthd; the third says how much of that is the
// plugins' own. The bridge is deleted, ip_forward put back and portmap's shared
// chains removed (when this run made them and they are empty) on the way out.
// Any failed RPC ends the run (failures are never timed), and so do SIGINT and
// SIGTERM; every pod made is removed, berthd stopped and the cgroup parent
// removed on every way out.
// No containerd is installed here to run alongside (STYLE.md 16): its figures
// are the issue's, measured elsewhere, so compare them loosely.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/cri/api.h"
#include "agent/network/cni.h"
#include "bench/bench_support.h"
#include "os/files.h"
#include "os/mountinfo.h"
#include "os/status.h"
#include "tests/support/berthd_process.h"
#include "tests/support/cni_env.h"

namespace berth {
namespace {

namespace fs = std::filesystem;
namespace v1 = runtime::v1;
using bench::Figures;
using bench::TimeMs;

constexpr char kImage[] = "docker.io/berth/demo:latest";
constexpr char kTargets[] =
    "target: pod start p50 <= 15 ms, teardown p50 <= 10 ms; containerd 1.6 + runc here: ~110 ms "
    "start, ~70 ms teardown; containerd RSS ~39 MB idle, +0.45 MB per container";

constexpr char kCniTargets[] =
    "target (issue 6, bridge + host-local + portmap + loopback): RunPodSandbox p50 <= 25 ms, "
    "teardown p50 <= 25 ms; containerd 1.6, same plugins (measured elsewhere): RunPodSandbox "
    "59-64 ms, StopPodSandbox 49-53 ms, RemovePodSandbox ~10 ms";

// Set by SIGINT and SIGTERM: no new pod starts, and the run cleans up.
std::atomic<bool> interrupted{false};

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
  bool pod_network = false;  // the pod's own netns instead of the host's
  std::mutex mu;               // pods, and the Phase figures of several clients
  std::set<std::string> pods;  // made and not yet removed, for the cleanup on the way out
};

v1::PodSandboxConfig PodConfig(const Bench& b, int i) {
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
absl::Status StartPod(Bench& b, Client& client, int i, Phase& phase, std::string* id) {
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
absl::Status TeardownPod(Bench& b, Client& client, const std::string& id, Phase* phase) {
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
absl::Status ForEach(const Bench& b, int clients, int count,
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
absl::Status StartPods(Bench& b, int clients, int first, int count, Phase& phase,
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

absl::Status TeardownPods(Bench& b, int clients, const std::vector<std::string>& ids,
                          Phase& phase) {
  absl::Status s;
  phase.teardown_wall_ms = TimeMs([&] {
    s = ForEach(b, clients, static_cast<int>(ids.size()),
                [&](Client& c, int k) { return TeardownPod(b, c, ids[k], &phase); });
  });
  return s;
}

// Prints `title` and a row per figure; returns the rows as JSON.
nlohmann::json PrintTable(const std::string& title, const std::vector<const Figures*>& figures) {
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

nlohmann::json PrintPhase(const std::string& title, const Phase& p) {
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
double RssMb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    long kb;
    if (key == "VmRSS:" && in >> kb) return kb / 1024.0;
  }
  return -1;
}

// Mount points in /proc/self/mountinfo whose type is in `types` (all if empty).
std::vector<std::string> Mounts(const std::set<std::string>& types) {
  absl::StatusOr<std::string> text = ReadFile("/proc/self/mountinfo");
  absl::StatusOr<std::vector<MountInfo>> mounts =
      text.ok() ? ParseMountInfo(*text) : absl::StatusOr<std::vector<MountInfo>>(text.status());
  if (!mounts.ok()) std::fprintf(stderr, "pod_bench: %s\n", mounts.status().ToString().c_str());
  std::vector<std::string> out;
  for (const MountInfo& m : mounts.value_or(std::vector<MountInfo>())) {
    if (types.empty() || types.count(m.fs_type) > 0) out.push_back(m.mount_point);
  }
  return out;
}

// rmdir <mount>/<parent> in every cgroup hierarchy. Pod cgroups still below it
// are berthd's leaks: said, and removed deepest first.
void RemoveCgroupParent(const std::string& parent) {
  for (const std::string& mount : Mounts({"cgroup", "cgroup2"})) {
    const std::string top = mount + parent;
    std::error_code ec;
    if (!fs::is_directory(top, ec)) continue;
    std::vector<std::string> dirs;
    for (const auto& e : fs::recursive_directory_iterator(top, ec)) {
      if (e.is_directory(ec)) dirs.push_back(e.path().string());
    }
    std::sort(dirs.begin(), dirs.end(), std::greater<>());  // children before parents
    dirs.push_back(top);
    for (const std::string& d : dirs) {
      if (d != top) std::fprintf(stderr, "pod_bench: warning: berthd left cgroup %s\n", d.c_str());
      if (rmdir(d.c_str()) != 0) std::perror(("pod_bench: rmdir " + d).c_str());
    }
  }
}

std::string Tail(const std::string& text, int lines) {
  size_t at = text.size();
  for (int i = 0; i <= lines && at != std::string::npos && at > 0; ++i) {
    at = text.rfind('\n', at - 1);
  }
  return at == std::string::npos ? text : text.substr(at + 1);
}

// Every pod berthd knows of, and any we made it does not list: stopped and
// removed. False if any of it failed.
bool RemoveAllPods(Bench& b) {
  Client client(b.socket);
  std::set<std::string> ids = b.pods;
  v1::ListPodSandboxResponse list;
  std::vector<absl::Status> errors = {client.Call("ListPodSandbox",
                                                  &v1::RuntimeService::Stub::ListPodSandbox,
                                                  v1::ListPodSandboxRequest(), &list)};
  if (errors[0].code() == absl::StatusCode::kUnavailable) ids.clear();  // berthd is gone
  for (const v1::PodSandbox& p : list.items()) ids.insert(p.id());
  for (const std::string& id : ids) errors.push_back(TeardownPod(b, client, id, nullptr));
  bool clean = true;
  for (const absl::Status& s : errors) {
    if (!s.ok()) std::fprintf(stderr, "pod_bench: cleanup: %s\n", s.ToString().c_str());
    clean = clean && s.ok();
  }
  return clean;
}

absl::Status StopBerthd(testing::BerthdProcess& berthd) {
  absl::StatusOr<int> rc = berthd.Stop(SIGTERM);
  if (rc.ok() && *rc == 0) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("berthd stop: ", rc.ok() ? absl::StrCat("exit ", *rc) : rc.status().ToString(),
                   "; log tail:\n", Tail(berthd.Log(), 30)));
}

// Removes every pod, then stops berthd. If some pod could not be removed (say
// berthd died), starts berthd once more on the same state - it re-adopts its
// shims - and tries again.
void Shutdown(Bench& b, testing::BerthdProcess& berthd, const std::vector<std::string>& flags) {
  bool clean = RemoveAllPods(b);
  if (absl::Status s = StopBerthd(berthd); !s.ok()) {
    std::fprintf(stderr, "pod_bench: %s", std::string(s.message()).c_str());
  }
  if (clean) return;
  std::fprintf(stderr, "pod_bench: restarting berthd to remove the pods left\n");
  absl::Status s = berthd.Start(flags);
  if (s.ok() && !RemoveAllPods(b)) s = absl::InternalError("pods left after a restart");
  if (absl::Status stop = StopBerthd(berthd); s.ok()) s = stop;
  if (!s.ok()) std::fprintf(stderr, "pod_bench: %s\n", std::string(s.message()).c_str());
}

// berthd must leave nothing mounted under its directories; whatever it does
// leave is said and detached, so that removing the temp dir stays in it.
void DetachLeftoverMounts(const std::string& dir) {
  std::vector<std::string> left;
  for (const std::string& m : Mounts({})) {
    if (m.rfind(dir + "/", 0) == 0) left.push_back(m);
  }
  std::sort(left.begin(), left.end(), std::greater<>());
  for (const std::string& m : left) {
    std::fprintf(stderr, "pod_bench: warning: berthd left a mount at %s\n", m.c_str());
    umount2(m.c_str(), MNT_DETACH);
  }
}

struct Options {
  int n = 50, clients = 4, pods_rss = 200;
  std::vector<int> scrape;  // pod counts for phase 4; empty: phases 1-3
  bool cni = false;         // phase 5 only
  int metrics_port = 0;
  std::string json;
};

// berthd's user+system CPU time in ms (/proc/<pid>/stat fields 14 and 15).
double CpuMs(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return -1;
  std::vector<std::string> f = absl::StrSplit(stat->substr(stat->rfind(')') + 2), ' ');
  return (std::stod(f[11]) + std::stod(f[12])) * 1000.0 / sysconf(_SC_CLK_TCK);
}

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

// Phase 3: berthd's VmRSS idle and with o.pods_rss pods running.
absl::Status MeasureRss(Bench& b, const Options& o, pid_t berthd, double idle_at_start, int first,
                        nlohmann::json* json) {
  const double idle = RssMb(berthd);
  Phase phase;
  std::vector<std::string> ids;
  BERTH_RETURN_IF_ERROR(StartPods(b, o.clients, first, o.pods_rss, phase, &ids));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const double loaded = RssMb(berthd);
  BERTH_RETURN_IF_ERROR(TeardownPods(b, o.clients, ids, phase));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const double after = RssMb(berthd);
  const double per_pod = (loaded - idle) / o.pods_rss;
  std::printf("\n== memory: berthd VmRSS, %d pods started on %d clients ==\n", o.pods_rss,
              o.clients);
  std::printf("%-34s %8.1f MB   (containerd ~39 MB idle)\n", "idle, before any pod", idle_at_start);
  std::printf("%-34s %8.1f MB\n", "idle, after phases 1 and 2", idle);
  std::printf("%-34s %8.1f MB   %+.3f MB per pod (containerd +0.45 MB per container)\n",
              absl::StrCat("with ", o.pods_rss, " pods running").c_str(), loaded, per_pod);
  std::printf("%-34s %8.1f MB\n", "after tearing them down", after);
  std::printf("(start %.2f s, teardown %.2f s: %.1f and %.1f pods/s)\n", phase.start_wall_ms / 1000,
              phase.teardown_wall_ms / 1000, o.pods_rss / (phase.start_wall_ms / 1000),
              o.pods_rss / (phase.teardown_wall_ms / 1000));
  *json = {{"idle_at_start_mb", idle_at_start},
           {"idle_mb", idle},
           {"pods", o.pods_rss},
           {"loaded_mb", loaded},
           {"per_pod_mb", per_pod},
           {"after_teardown_mb", after}};
  return absl::OkStatus();
}

// Phases 1 and 2, then 3; the figures go to `json`.
absl::Status RunPhases(Bench& b, const Options& o, pid_t berthd, nlohmann::json* json) {
  Client client(b.socket);
  BERTH_RETURN_IF_ERROR(client.Connect());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const double idle_at_start = RssMb(berthd);
  std::printf("%s\n", kTargets);
  (*json)["targets"] = kTargets;

  Phase seq, conc;
  std::vector<std::string> ids;
  BERTH_RETURN_IF_ERROR(StartPods(b, 1, 0, o.n, seq, &ids));
  BERTH_RETURN_IF_ERROR(TeardownPods(b, 1, ids, seq));
  (*json)["sequential"] = PrintPhase(absl::StrFormat("sequential: %d pods, 1 client", o.n), seq);

  BERTH_RETURN_IF_ERROR(StartPods(b, o.clients, o.n, o.n, conc, &ids));
  BERTH_RETURN_IF_ERROR(TeardownPods(b, o.clients, ids, conc));
  (*json)["concurrent"] =
      PrintPhase(absl::StrFormat("concurrent: %d pods, %d client%s (one connection each)", o.n,
                                 o.clients, o.clients == 1 ? "" : "s"),
                 conc);
  (*json)["concurrent"]["clients"] = o.clients;

  return MeasureRss(b, o, berthd, idle_at_start, 2 * o.n, &(*json)["rss"]);
}

// Phase 5 (--cni): what a pod's network costs, through berthd and in the plugins.
struct CniSetup {
  const testing::CniTestEnv& env;
  std::string dir;       // the bench's temp dir
  std::string conf_dir;  // berthd's --cni-conf-dir
  std::string off_dir;   // where the conflist waits while pods get loopback only
  bool on = true;        // the conflist is in conf_dir
};

constexpr char kConflist[] = "10-bench.conflist";

// Puts the conflist in berthd's conf dir (on) or beside it (off); berthd sees
// the changed dir at its next RunPodSandbox.
absl::Status SwitchConflist(CniSetup& c, bool on) {
  if (c.on == on) return absl::OkStatus();
  const std::string in = c.conf_dir + "/" + kConflist, out = c.off_dir + "/" + kConflist;
  if (rename(on ? out.c_str() : in.c_str(), on ? in.c_str() : out.c_str()) != 0) {
    return ErrnoStatus(errno, "rename", on ? out : in);
  }
  c.on = on;
  return absl::OkStatus();
}

// RunPodSandbox of pod `i` alone (no container); its time goes to `phase`, its
// id to `id` and b.pods. Untimed, PodSandboxStatus must show an IP of the
// bench's subnet when `networked`, and none otherwise.
absl::Status RunPodOnly(Bench& b, Client& client, int i, bool networked, const std::string& subnet,
                        Phase& phase, std::string* id) {
  const std::string pod = absl::StrCat("pod bench-", i, ": ");
  v1::RunPodSandboxRequest run;
  *run.mutable_config() = PodConfig(b, i);
  v1::RunPodSandboxResponse ran;
  double ms = 0;
  BERTH_RETURN_IF_ERROR(
      client.Call(pod + "RunPodSandbox", &v1::RuntimeService::Stub::RunPodSandbox, run, &ran, &ms));
  *id = ran.pod_sandbox_id();
  {
    std::lock_guard<std::mutex> lock(b.mu);
    b.pods.insert(*id);
    phase.run.ms.push_back(ms);
    ++phase.pods;
  }
  v1::PodSandboxStatusRequest status;
  status.set_pod_sandbox_id(*id);
  v1::PodSandboxStatusResponse got;
  BERTH_RETURN_IF_ERROR(client.Call(pod + "PodSandboxStatus",
                                    &v1::RuntimeService::Stub::PodSandboxStatus, status, &got));
  const std::string& ip = got.status().network().ip();
  if (networked ? !absl::StartsWith(ip, subnet) : !ip.empty()) {
    return absl::InternalError(
        absl::StrCat(pod, "IP \"", ip, "\", expected ", networked ? subnet + "x" : "none"));
  }
  return absl::OkStatus();
}

// A PluginExec that times every plugin it runs, by type and command.
class TimedExec : public network::PluginExec {
 public:
  absl::StatusOr<network::PluginOutput> Run(const network::PluginCall& call) override {
    std::string command = "?";
    for (const std::string& e : call.env) {
      if (absl::StartsWith(e, "CNI_COMMAND=")) command = e.substr(sizeof("CNI_COMMAND=") - 1);
    }
    absl::StatusOr<network::PluginOutput> out;
    const double ms = TimeMs([&] { out = spawn_.Run(call); });
    const std::string type = fs::path(call.path).filename().string();
    const std::string name =
        absl::StrCat("  ", type, " ", command, type == "bridge" ? " (+host-local)" : "");
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(plugins_.begin(), plugins_.end(),
                           [&](const Figures& f) { return f.name == name; });
    if (it == plugins_.end()) it = plugins_.insert(plugins_.end(), Figures{name});
    it->ms.push_back(ms);
    sum_ += ms;
    return out;
  }

  // The exec time since the last call.
  double TakeSum() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(sum_, 0.0);
  }
  // Per plugin and command, in the order first run; rows whose name contains `command`.
  std::vector<const Figures*> Rows(const std::string& command) const {
    std::vector<const Figures*> out;
    for (const Figures& f : plugins_) {
      if (absl::StrContains(f.name, " " + command)) out.push_back(&f);
    }
    return out;
  }

 private:
  network::SpawnPluginExec spawn_;
  std::mutex mu_;
  std::vector<Figures> plugins_;
  double sum_ = 0;
};

// A network namespace pinned on `path`, as berthd pins a pod's: a thread
// unshares it, bind-mounts /proc/thread-self/ns/net on the file, and exits.
absl::Status PinNetns(const std::string& path) {
  BERTH_RETURN_IF_ERROR(WriteFileAtomically(path, ""));
  int err = 0;
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) != 0 ||
        mount("/proc/thread-self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      err = errno;
    }
  });
  t.join();
  return err == 0 ? absl::OkStatus() : ErrnoStatus(err, "pin netns on", path);
}

// The plugins' own time: network::Cni in this process on the same conflist (in
// a conf dir and cache dir of its own), ADD and DEL on namespaces the bench
// pins itself, every plugin exec timed. What is still attached when it goes
// is DELeted, and every namespace unpinned.
class InProcessCni {
 public:
  explicit InProcessCni(const CniSetup& c)
      : c_(c),
        exec_(new TimedExec),
        cni_({.conf_dir = c.dir + "/net.d-inproc", .cache_dir = c.dir + "/cni-cache"},
             std::unique_ptr<network::PluginExec>(exec_)),
        suffix_(c.env.network().substr(c.env.network().rfind('-') + 1)) {}

  ~InProcessCni() {
    for (auto& [i, a] : attached_) {
      if (absl::Status s = cni_.Del(a); !s.ok()) {
        std::fprintf(stderr, "pod_bench: cleanup: %s\n", s.ToString().c_str());
      }
    }
    for (const std::string& netns : pinned_) {
      if (umount2(netns.c_str(), MNT_DETACH) != 0) {
        std::perror(("pod_bench: umount " + netns).c_str());
      }
      unlink(netns.c_str());
    }
  }

  absl::Status WriteConfig() {
    BERTH_RETURN_IF_ERROR(MakeDirs(c_.dir + "/net.d-inproc", 0755));
    return WriteFileAtomically(c_.dir + "/net.d-inproc/" + kConflist, c_.env.Conflist());
  }

  // Pins namespace `i` (untimed), then ADD on it.
  absl::Status Add(int i) {
    network::Attachment a;
    a.netns = absl::StrCat(c_.dir, "/netns-", i);
    BERTH_RETURN_IF_ERROR(PinNetns(a.netns));
    pinned_.push_back(a.netns);
    a.container_id = absl::StrFormat("bench-%s-%d", suffix_, i);
    a.args = network::KubernetesArgs("bench", absl::StrCat("inproc-", i), a.container_id,
                                     absl::StrCat(i, "-uid"));
    absl::StatusOr<network::Result> result;
    exec_->TakeSum();
    const double ms = TimeMs([&] { result = cni_.Add(a); });
    if (!result.ok()) return Annotate(result.status(), "in-process Cni::Add");
    const double exec_ms = exec_->TakeSum();
    attached_.emplace(i, a);
    const std::string ip = network::SelectPodIps(*result, "eth0").primary;
    if (!absl::StartsWith(ip, c_.env.subnet())) {
      return absl::InternalError(absl::StrCat("in-process Cni::Add: IP \"", ip, "\""));
    }
    add_.ms.push_back(ms);
    add_exec_.ms.push_back(exec_ms);
    add_own_.ms.push_back(ms - exec_ms);
    return absl::OkStatus();
  }

  absl::Status Del(int i) {
    auto it = attached_.find(i);
    if (it == attached_.end()) return absl::OkStatus();
    absl::Status s;
    exec_->TakeSum();
    const double ms = TimeMs([&] { s = cni_.Del(it->second); });
    if (!s.ok()) return Annotate(s, "in-process Cni::Del");
    const double exec_ms = exec_->TakeSum();
    attached_.erase(it);
    del_.ms.push_back(ms);
    del_exec_.ms.push_back(exec_ms);
    del_own_.ms.push_back(ms - exec_ms);
    return absl::OkStatus();
  }

  std::vector<const Figures*> Rows() const {
    std::vector<const Figures*> rows = {&add_};
    for (const Figures* f : exec_->Rows("ADD")) rows.push_back(f);
    rows.insert(rows.end(), {&add_exec_, &add_own_, &del_});
    for (const Figures* f : exec_->Rows("DEL")) rows.push_back(f);
    rows.insert(rows.end(), {&del_exec_, &del_own_});
    return rows;
  }
  const Figures& add_exec() const { return add_exec_; }
  const Figures& del_exec() const { return del_exec_; }

 private:
  const CniSetup& c_;
  TimedExec* exec_;  // owned by cni_
  network::Cni cni_;
  const std::string suffix_;
  std::map<int, network::Attachment> attached_;
  std::vector<std::string> pinned_;
  Figures add_{"Cni::Add"}, add_exec_{"  plugin execs (sum) ADD"}, add_own_{"  Cni::Add - execs"},
      del_{"Cni::Del"}, del_exec_{"  plugin execs (sum) DEL"}, del_own_{"  Cni::Del - execs"};
};

// Phase 5: three kinds of pod in turn, n of each - berthd with the bridge
// conflist, berthd with loopback only (RunPodSandbox, no container), and the
// plugins alone (Cni::Add in this process) - then their teardowns in the same
// order: StopPodSandbox + RemovePodSandbox, and Cni::Del.
absl::Status MeasureCni(Bench& b, const Options& o, CniSetup& c, nlohmann::json* json) {
  std::printf("%s\n", kCniTargets);
  (*json)["targets"] = kCniTargets;
  (*json)["bridge"] = c.env.bridge();
  (*json)["subnet"] = c.env.subnet() + "0/24";
  Phase bridge, loopback;
  InProcessCni plugins(c);
  BERTH_RETURN_IF_ERROR(plugins.WriteConfig());
  std::vector<std::string> ids(3 * o.n);
  // Teardown does not read the conflist (DEL runs the config cached at ADD), but
  // it is put back all the same.
  BERTH_RETURN_IF_ERROR(ForEach(b, 1, 3 * o.n, [&](Client& client, int k) {
    if (k % 3 == 2) return plugins.Add(k);
    const bool networked = k % 3 == 0;
    BERTH_RETURN_IF_ERROR(SwitchConflist(c, networked));
    return RunPodOnly(b, client, k, networked, c.env.subnet(), networked ? bridge : loopback,
                      &ids[k]);
  }));
  BERTH_RETURN_IF_ERROR(SwitchConflist(c, true));
  BERTH_RETURN_IF_ERROR(ForEach(b, 1, 3 * o.n, [&](Client& client, int k) {
    if (k % 3 == 2) return plugins.Del(k);
    return TeardownPod(b, client, ids[k], k % 3 == 0 ? &bridge : &loopback);
  }));

  std::vector<const Figures*> bridge_rows = {&bridge.run, &bridge.stop, &bridge.remove,
                                             &bridge.teardown};
  std::vector<const Figures*> loopback_rows = {&loopback.run, &loopback.stop, &loopback.remove,
                                               &loopback.teardown};
  (*json)["berthd_bridge"] = PrintTable(
      absl::StrFormat("berthd, bridge conflist: %d pods, own netns, no container, 1 client", o.n),
      bridge_rows);
  (*json)["berthd_loopback_only"] =
      PrintTable(absl::StrFormat(
                     "berthd, no CNI config (loopback only): %d pods, in turn with the above", o.n),
                 loopback_rows);
  std::printf("\n== networking through berthd: bridge minus loopback only, p50 ==\n");
  std::printf("%-28s %9s %9s %9s\n", "ms", "bridge", "loopback", "diff");
  for (size_t i = 0; i < bridge_rows.size(); ++i) {
    const double with = bridge_rows[i]->Pct(0.5), without = loopback_rows[i]->Pct(0.5);
    std::printf("%-28s %9.3f %9.3f %+9.3f\n", bridge_rows[i]->name.c_str(), with, without,
                with - without);
    (*json)["difference_p50_ms"][bridge_rows[i]->name] = with - without;
  }
  (*json)["plugins_in_process"] = PrintTable(
      absl::StrFormat("plugins alone: network::Cni in this process, %d x ADD and DEL on netns "
                      "of ours, in turn with the above",
                      o.n),
      plugins.Rows());

  const double run = bridge.run.Pct(0.5), teardown = bridge.teardown.Pct(0.5);
  const double add = plugins.add_exec().Pct(0.5), del = plugins.del_exec().Pct(0.5);
  std::printf(
      "vs target: RunPodSandbox p50 %.1f ms (<= 25; containerd 59-64), teardown p50 %.1f ms "
      "(<= 25; containerd 49-53 + ~10)\n"
      "  plugins' execs alone p50: ADD %.1f ms, DEL %.1f ms; berthd's own share (p50 "
      "differences): %.1f ms run, %.1f ms teardown\n",
      run, teardown, add, del, run - add, teardown - del);
  (*json)["vs_target"] = {{"run_p50_ms", run},
                          {"teardown_p50_ms", teardown},
                          {"plugins_add_p50_ms", add},
                          {"plugins_del_p50_ms", del}};
  return absl::OkStatus();
}

int Main(const Options& o) {
  if (geteuid() != 0) {
    std::printf("pod_bench: skipped, needs root (berthd makes namespaces, mounts, cgroups)\n");
    return 0;
  }
  testing::TempDir dir;
  // --cni runs no container: no image.
  if (!o.cni && testing::Shell(absl::StrCat(BERTH_SOURCE_DIR, "/deploy/demo-image.sh ",
                                            dir.Join("demo"), " >/dev/null")) != 0) {
    std::fprintf(stderr, "pod_bench: deploy/demo-image.sh failed\n");
    return 1;
  }
  testing::CniTestEnv cni_env;  // Restore()d last on the way out (a no-op unless --cni)
  CniSetup cni{cni_env, dir.path(), dir.Join("net.d"), dir.Join("net.d-off")};
  if (o.cni) {
    absl::Status s = cni_env.Prepare(dir.path(), "bb", "berth-bench-");
    if (absl::IsFailedPrecondition(s)) {
      std::printf("pod_bench: --cni skipped: %s\n", std::string(s.message()).c_str());
      return 0;
    }
    if (s.ok()) s = MakeDirs(cni.conf_dir, 0755);
    if (s.ok()) s = MakeDirs(cni.off_dir, 0755);
    if (s.ok()) s = WriteFileAtomically(cni.conf_dir + "/" + kConflist, cni_env.Conflist());
    if (!s.ok()) {
      std::fprintf(stderr, "pod_bench: %s\n", s.ToString().c_str());
      cni_env.Restore();
      return 1;
    }
  }
  // This machine's rule: cgroups made by tests and benches live under berth-test-*.
  const std::string cgroup_parent =
      absl::StrFormat("/berth-test-bench-%08x", std::random_device()());
  testing::BerthdProcess berthd(dir);
  Bench b{berthd.socket_path(), dir.Join("logs"), !o.scrape.empty() || o.cni};
  bool running = false;
  std::vector<std::string> flags = {
      "--cgroup-root=" + cgroup_parent,
      absl::StrCat("--metrics-address=", o.scrape.empty() ? "" : "127.0.0.1:",
                   o.scrape.empty() ? "" : std::to_string(o.metrics_port))};
  if (!o.cni) flags.push_back("--import=" + dir.Join("demo"));
  if (o.cni) flags.push_back("--cni-conf-dir=" + cni.conf_dir);
  absl::Cleanup cleanup = [&] {
    if (running) Shutdown(b, berthd, flags);
    RemoveCgroupParent(cgroup_parent);
    DetachLeftoverMounts(dir.path());
    cni_env.Restore();  // after the pods' DELs: the bridge, ip_forward, portmap's chains
  };
  absl::Status s = berthd.Start(flags);
  running = s.ok();
  nlohmann::json json;
  if (s.ok()) {
    s = o.cni              ? MeasureCni(b, o, cni, &json["cni"])
        : o.scrape.empty() ? RunPhases(b, o, berthd.pid(), &json)
                           : MeasureScrapes(b, o, berthd.pid(), &json);
  }
  if (!s.ok()) {
    std::fprintf(stderr, "pod_bench: %s\n", s.ToString().c_str());
    if (!absl::IsCancelled(s)) {
      std::fprintf(stderr, "berthd log tail:\n%s", Tail(berthd.Log(), 30).c_str());
    }
    return 1;
  }
  if (!o.json.empty()) std::ofstream(o.json) << json.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace berth

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // tables and errors in the order they happen
  berth::Options o;
  for (int i = 1; i < argc; ++i) {
    auto [a, v] = berth::bench::TakeFlag(argc, argv, i, {"--cni"});
    if (a == "--cni") {
      o.cni = true;
    } else if (a == "--n") {
      o.n = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--c") {
      o.clients = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--pods-rss") {
      o.pods_rss = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--json") {
      o.json = v;
    } else if (a == "--scrape") {
      for (absl::string_view n : absl::StrSplit(v, ',')) o.scrape.push_back(std::atoi(std::string(n).c_str()));
      o.metrics_port = berth::testing::PickFreePort();
    } else {
      std::fprintf(stderr,
                   "usage: pod_bench [--n 50] [--c 4] [--pods-rss 200] [--scrape 10,100,500] "
                   "[--json FILE]\n"
                   "       pod_bench --cni [--n 50] [--json FILE]\n");
      return 2;
    }
  }
  if (o.cni && !o.scrape.empty()) {
    std::fprintf(stderr, "pod_bench: --cni and --scrape are separate runs\n");
    return 2;
  }
  // SIGINT and SIGTERM end the run the way a failure does: everything cleaned up.
  struct sigaction stop = {};
  stop.sa_handler = [](int) { berth::interrupted = true; };
  stop.sa_flags = SA_RESTART;
  sigaction(SIGINT, &stop, nullptr);
  sigaction(SIGTERM, &stop, nullptr);
  return berth::Main(o);
}
