// pod_bench --cni (phase 5, issue 6; pod_bench.cc has the overview): berthd
// pods with the bench's bridge conflist and with loopback only, and the CNI
// plugins alone through network::Cni in this process, each exec timed.
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/network/cni.h"
#include "bench/pod_bench.h"
#include "os/files.h"
#include "os/status.h"
#include "tests/support/cni_env.h"

namespace berth::podbench {
namespace {

namespace fs = std::filesystem;

constexpr char kCniTargets[] =
    "target (issue 6, bridge + host-local + portmap + loopback): RunPodSandbox p50 <= 25 ms, "
    "teardown p50 <= 25 ms; containerd 1.6, same plugins (measured elsewhere): RunPodSandbox "
    "59-64 ms, StopPodSandbox 49-53 ms, RemovePodSandbox ~10 ms";

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

}  // namespace

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

}  // namespace berth::podbench
