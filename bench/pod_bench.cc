// pod_bench: how fast berthd starts and tears down pods over CRI, and what a
// running pod costs berthd in memory.
//
//   build/bench/pod_bench [--n 50] [--c 4] [--pods-rss 200] [--json FILE]   (as root)
//   build/bench/pod_bench --cni [--n 50] [--json FILE]
//   build/bench/pod_bench --exec [--n 50] [--json FILE]
//   any mode: [--state-on-disk] [--root-fs ext4|host]
//
// berthd runs as on a node: --state-dir on a tmpfs (as /run is), --root and the
// pods' log dirs on a fresh journaled ext4 in a loop file (as /var/lib and
// /var/log are). --state-on-disk and --root-fs=host put them on the temp dir's
// file system instead: this VM's root is ext4 without a journal, where a new
// inode costs a scan of the recently deleted ones.
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
// their own network namespace, started up to each count in turn; at each, a
// first GET of /metrics, then 10 more a second apart as Prometheus scrapes
// (wall time per scrape; berthd's CPU per scrape from /proc/<pid>/stat, the
// reads behind the answers included; how long berthd's read of every target
// takes) and berthd's CPU over 5 idle seconds with no scrape.
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
// With --exec it runs only phase 6 instead (issue 4's streaming server):
// ExecSync, exec over SPDY and port-forward into one running pod
// (pod_bench_exec.cc).
// Any failed RPC ends the run (failures are never timed), and so do SIGINT and
// SIGTERM; every pod made is removed, berthd stopped and the cgroup parent
// removed on every way out.
// No containerd is installed here to run alongside (STYLE.md 16): its figures
// are the issue's, measured elsewhere, so compare them loosely.
// The pieces the modes share are in pod_bench.h; --scrape is pod_bench_scrape.cc
// and --cni pod_bench_cni.cc.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "bench/bench_support.h"
#include "bench/pod_bench.h"
#include "os/files.h"
#include "os/mountinfo.h"
#include "os/status.h"
#include "tests/support/berthd_process.h"
#include "tests/support/cni_env.h"

namespace berth::podbench {
namespace {

namespace fs = std::filesystem;

constexpr char kTargets[] =
    "target: pod start p50 <= 15 ms, teardown p50 <= 10 ms; containerd 1.6 + runc here: ~110 ms "
    "start, ~70 ms teardown; containerd RSS ~39 MB idle, +0.45 MB per container";

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
  // As on a node: --state-dir on a tmpfs, as /run is, and --root and the pod
  // logs on a journaled ext4. This VM's root file system is ext4 without a journal, where every new
  // inode scans past the inodes deleted in the last minute or more (ext4's
  // recently_deleted()); after a test run that was up to 2 ms per file, and a
  // pod makes ~15 state files and ~8 dirs under --root (overlay's work dir
  // probes included). --state-on-disk and --root-fs=host measure that instead.
  std::vector<std::string> mounted;  // unmounted (lazily) on the way out
  auto mount_on = [&](const std::string& target, const std::vector<std::string>& cmd) {
    absl::Status s = MakeDirs(target, 0755);
    if (s.ok() && testing::Shell(absl::StrJoin(cmd, " ") + " " + target) != 0) {
      s = absl::InternalError(absl::StrCat("mount on ", target, " failed"));
    }
    if (s.ok()) mounted.push_back(target);
    return s;
  };
  absl::Status mounts;
  if (!o.state_on_disk) {
    mounts = mount_on(berthd.state_dir(), {"mount -t tmpfs -o mode=0755,size=256m tmpfs"});
  }
  if (mounts.ok() && o.root_fs == "ext4") {
    const std::string img = dir.Join("root-ext4.img");
    mounts = testing::Shell(absl::StrCat("truncate -s 8G ", img, " && mkfs.ext4 -q -F ", img)) == 0
                 ? mount_on(dir.Join("node"), {"mount -o loop", img})
                 : absl::InternalError("mkfs.ext4 failed");
  }
  auto unmount = [&] {
    for (auto it = mounted.rbegin(); it != mounted.rend(); ++it) umount2(it->c_str(), MNT_DETACH);
    mounted.clear();
  };
  if (!mounts.ok()) {
    std::fprintf(stderr, "pod_bench: %s\n", mounts.ToString().c_str());
    unmount();
    cni_env.Restore();
    return 1;
  }
  std::printf("berthd --state-dir on %s, --root on %s\n",
              o.state_on_disk ? "the temp dir's file system" : "a tmpfs",
              o.root_fs == "ext4" ? "a journaled ext4 (loop file)" : "the temp dir's file system");
  // With --root-fs=ext4, the pods' logs (kubelet's /var/log/pods) and --root
  // are on that file system.
  const std::string node = o.root_fs == "ext4" ? dir.Join("node") : dir.path();
  Bench b{berthd.socket_path(), node + "/logs", !o.scrape.empty() || o.cni || o.exec};
  bool running = false;
  std::vector<std::string> flags = {
      "--cgroup-root=" + cgroup_parent, "--root=" + node + "/root",
      absl::StrCat("--metrics-address=", o.scrape.empty() ? "" : "127.0.0.1:",
                   o.scrape.empty() ? "" : std::to_string(o.metrics_port))};
  if (!o.cni) flags.push_back("--import=" + dir.Join("demo"));
  if (o.cni) flags.push_back("--cni-conf-dir=" + cni.conf_dir);
  absl::Cleanup cleanup = [&] {
    if (running) Shutdown(b, berthd, flags);
    RemoveCgroupParent(cgroup_parent);
    unmount();
    DetachLeftoverMounts(dir.path());
    cni_env.Restore();  // after the pods' DELs: the bridge, ip_forward, portmap's chains
  };
  absl::Status s = berthd.Start(flags);
  running = s.ok();
  nlohmann::json json;
  if (s.ok()) {
    s = o.exec             ? MeasureExec(b, o, &json)
        : o.cni            ? MeasureCni(b, o, cni, &json["cni"])
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
}  // namespace berth::podbench

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // tables and errors in the order they happen
  berth::podbench::Options o;
  for (int i = 1; i < argc; ++i) {
    auto [a, v] = berth::bench::TakeFlag(argc, argv, i, {"--cni", "--exec", "--state-on-disk"});
    if (a == "--cni") {
      o.cni = true;
    } else if (a == "--exec") {
      o.exec = true;
    } else if (a == "--state-on-disk") {
      o.state_on_disk = true;
    } else if (a == "--root-fs" && (v == "ext4" || v == "host")) {
      o.root_fs = v;
    } else if (a == "--n") {
      o.n = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--c") {
      o.clients = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--pods-rss") {
      o.pods_rss = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--json") {
      o.json = v;
    } else if (a == "--scrape") {
      for (absl::string_view n : absl::StrSplit(v, ',')) {
        o.scrape.push_back(std::atoi(std::string(n).c_str()));
      }
      o.metrics_port = berth::testing::PickFreePort();
    } else {
      std::fprintf(stderr,
                   "usage: pod_bench [--n 50] [--c 4] [--pods-rss 200] [--scrape 10,100,500] "
                   "[--state-on-disk] [--root-fs ext4|host] [--json FILE]\n"
                   "       pod_bench --cni [--n 50] [--json FILE]\n"
                   "       pod_bench --exec [--n 50] [--json FILE]\n");
      return 2;
    }
  }
  if (o.cni && !o.scrape.empty()) {
    std::fprintf(stderr, "pod_bench: --cni and --scrape are separate runs\n");
    return 2;
  }
  // SIGINT and SIGTERM end the run the way a failure does: everything cleaned up.
  struct sigaction stop = {};
  stop.sa_handler = [](int) { berth::podbench::interrupted = true; };
  stop.sa_flags = SA_RESTART;
  sigaction(SIGINT, &stop, nullptr);
  sigaction(SIGTERM, &stop, nullptr);
  return berth::podbench::Main(o);
}
