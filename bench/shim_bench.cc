// shim_bench: how fast berth-shim runs a container, and what one costs in memory.
//
//   build/bench/shim_bench [--n 50] [--json FILE] [--shim PATH] [--no-crun]   (as root)
//
// Runs busybox `/bin/true` in a fresh container (pid/mnt/uts/ipc/net namespaces,
// OCI default mounts, masked paths, a cgroup) N times through berth-shim,
// alternating with the same container through `crun run` (create+start+wait+delete,
// so the shim is timed to its wait and to delete+reap) and with the floor,
// `unshare -f -pmuin <rootfs>/bin/true`: namespaces only. Compare ratios, not ms.
// Then Rss/Pss (smaps_rollup) of the shim of one `sleep 1000` container, and the
// mean over 10 alive at once (the static binary's text pages are shared).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "os/cgroup/cgroup.h"
#include "os/cgroup/layout.h"
#include "shim/client.h"

#include "bench/bench_support.h"

namespace berth {
namespace {

namespace fs = std::filesystem;
using bench::Figures;
using bench::Run;
using bench::TimeMs;
namespace v1 = shim::v1;

// The bench's dir, a tmpfs mount of its own: Die takes it down.
std::string g_dir;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "shim_bench: %s\n", what.c_str());
  if (!g_dir.empty()) {
    umount2(g_dir.c_str(), MNT_DETACH);
    rmdir(g_dir.c_str());
  }
  std::exit(1);
}

template <typename T>
T Must(absl::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(what + ": " + std::string(v.status().ToString()));
  return *std::move(v);
}

// posix_spawn + waitpid, stdin/stdout/stderr to /dev/null (stderr to `err` if given).

// A busybox rootfs: bin/busybox plus relative links for every applet.
void MakeRootfs(const std::string& rootfs) {
  fs::create_directories(rootfs + "/bin");
  for (const char* d : {"proc", "dev", "sys", "tmp", "etc"})
    fs::create_directories(rootfs + "/" + d);
  fs::copy_file("/bin/busybox", rootfs + "/bin/busybox");
  chmod((rootfs + "/bin/busybox").c_str(), 0755);
  FILE* list = popen("/bin/busybox --list", "r");
  if (list == nullptr) Die("popen busybox --list");
  char name[256];
  while (std::fscanf(list, "%255s", name) == 1) {
    std::string link = rootfs + "/bin/" + name;
    if (std::string(name) != "busybox") symlink("busybox", link.c_str());
  }
  pclose(list);
  if (access((rootfs + "/bin/true").c_str(), X_OK) != 0) Die("rootfs has no /bin/true");
}

v1::ContainerSpec ShimSpec(const std::string& id, const std::string& rootfs,
                           const std::string& bundle, const std::string& cgroup,
                           const std::vector<std::string>& args) {
  v1::ContainerSpec spec = shim::DefaultSpec(id, rootfs, args);
  spec.set_cgroup_path(cgroup);
  spec.set_log_path(bundle + "/ctr.log");
  return spec;
}

// The OCI config.json equivalent of shim::DefaultSpec.
nlohmann::json CrunConfig(const v1::ContainerSpec& spec, const std::string& cgroup) {
  nlohmann::json j;
  j["ociVersion"] = "1.0.2";
  const v1::Process& p = spec.process();
  j["process"] = {{"terminal", false},
                  {"user", {{"uid", 0}, {"gid", 0}}},
                  {"args", std::vector<std::string>(p.args().begin(), p.args().end())},
                  {"env", std::vector<std::string>(p.env().begin(), p.env().end())},
                  {"cwd", p.cwd()}};
  std::vector<std::string> caps(p.capabilities().bounding().begin(),
                                p.capabilities().bounding().end());
  j["process"]["capabilities"] = {{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
  j["root"] = {{"path", spec.root()}, {"readonly", false}};
  j["hostname"] = spec.id();
  for (const v1::Mount& m : spec.mounts()) {
    j["mounts"].push_back(
        {{"destination", m.destination()},
         {"type", m.type()},
         {"source", m.source()},
         {"options", std::vector<std::string>(m.options().begin(), m.options().end())}});
  }
  for (const char* ns : {"pid", "mount", "uts", "ipc", "network"}) {
    j["linux"]["namespaces"].push_back({{"type", ns}});
  }
  j["linux"]["maskedPaths"] =
      std::vector<std::string>(spec.masked_paths().begin(), spec.masked_paths().end());
  j["linux"]["readonlyPaths"] =
      std::vector<std::string>(spec.readonly_paths().begin(), spec.readonly_paths().end());
  j["linux"]["cgroupsPath"] = cgroup;
  return j;
}

struct MemKb {
  long rss = 0, pss = 0;
};

MemKb ReadMem(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  MemKb m;
  std::string key;
  long kb;
  while (in >> key) {
    if (key == "Rss:" && in >> kb) m.rss = kb;
    if (key == "Pss:" && in >> kb) m.pss = kb;
  }
  if (m.rss == 0) Die("cannot read smaps_rollup of shim " + std::to_string(pid));
  return m;
}

// Where a shim's resident memory is: Rss per mapping from /proc/<pid>/smaps,
// named "<perms> <path>" ("r-xp berth-shim", "rw-p [heap]").
std::string MemBreakdown(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
  std::map<std::string, long> by_mapping;
  std::string line, name;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string first, perms, offset, dev, inode, path;
    f >> first;
    if (first == "Rss:") {
      long kb = 0;
      f >> kb;
      by_mapping[name] += kb;
    } else if (first.find('-') != std::string::npos && f >> perms >> offset >> dev >> inode) {
      f >> path;
      name = perms + " " + (path.empty() ? "[anon]" : path.substr(path.rfind('/') + 1));
    }
  }
  std::string out;
  for (const auto& [mapping, kb] : by_mapping) {
    if (kb > 0) out += "  " + mapping + " " + std::to_string(kb) + " kB\n";
  }
  return out;
}

void StopShim(const shim::LaunchedShim& s) {
  Must(shim::CallShim(s.socket, shim::DeleteRequest()), "delete");
  Must(shim::ReapShim(s.shim_pid), "reap shim");
}

// Removes `path` and its children in every hierarchy: Cgroup::Destroy where the
// layout knows it, rmdir elsewhere (crun also uses name=systemd).
void RemoveCgroupTree(const CgroupLayout& layout, const std::string& path) {
  std::error_code ec;
  for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    for (const auto& c : fs::directory_iterator(h.path().string() + path, ec)) {
      rmdir(c.path().c_str());  // the leaves, empty by now; control files stay
    }
  }
  absl::Status s = Must(Cgroup::Open(layout, path), "cgroup open").Destroy();
  if (!s.ok()) std::fprintf(stderr, "cgroup %s: %s\n", path.c_str(), s.ToString().c_str());
  for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    rmdir((h.path().string() + path).c_str());
  }
}

// crun 1.8 refuses a hybrid layout whose cgroup2 mount holds a controller
// ("cgroups in hybrid mode not supported"), even with --cgroup-manager=disabled.
// A mount namespace where a private tmpfs covers that mount shows crun plain v1,
// where it makes its cgroups as usual (what it writes into the tmpfs goes with
// the namespace). Returns its fd, or -1.
int V1OnlyMountNs(const CgroupLayout& layout) {
  std::string v2;
  for (const CgroupHierarchy& h : layout.hierarchies()) {
    if (h.v2) v2 = h.mount_point;
  }
  int home = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC), ns = -1;
  if (!v2.empty() && unshare(CLONE_NEWNS) == 0 &&
      mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
      umount2(v2.c_str(), MNT_DETACH) == 0 &&
      mount("tmpfs", v2.c_str(), "tmpfs", 0, "size=1m") == 0) {
    ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  }
  if (setns(home, CLONE_NEWNS) != 0) Die("setns back to our mount namespace");
  close(home);
  return ns;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int Main(int argc, char** argv) {
  int n = 50;
  std::string json_path, shim_path = BERTH_SHIM_PATH;
  bool use_crun = true;
  for (int i = 1; i < argc; ++i) {
    auto [a, v] = bench::TakeFlag(argc, argv, i, {"--no-crun"});
    if (a == "--n") {
      n = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--json") {
      json_path = v;
    } else if (a == "--shim") {
      shim_path = v;
    } else if (a == "--no-crun") {
      use_crun = false;
    } else {
      std::fprintf(stderr, "usage: shim_bench [--n N] [--json FILE] [--shim PATH] [--no-crun]\n");
      return 2;
    }
  }
  if (geteuid() != 0) {
    std::printf("shim_bench: skipped, needs root (namespaces, mounts, cgroups)\n");
    return 0;
  }
  const bool have_crun = use_crun && access("/usr/bin/crun", X_OK) == 0;
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  signal(SIGPIPE, SIG_IGN);
  CgroupLayout layout = Must(CgroupLayout::Detect(), "cgroup layout");

  char tmpl[] = "/tmp/berth-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("mkdtemp");
  // A tmpfs, as berthd's state dir (/run/berth) is: bundles hold the shim's
  // socket, pid and exit files. On this VM's journal-less ext4 each new inode
  // scans past recently deleted ones (ext4 recently_deleted()), which was half
  // the shim's CPU time after a test run. crun's bundles live here too.
  if (mount("tmpfs", tmpl, "tmpfs", MS_NOSUID, "mode=0755,size=512m") != 0) {
    Die(std::string("mount tmpfs: ") + std::strerror(errno));
  }
  g_dir = tmpl;
  const std::string dir = tmpl, rootfs = dir + "/rootfs";
  const std::string pid = std::to_string(getpid());
  const std::string shim_cg = "/berth-bench-" + pid, crun_cg = "/berth-bench-crun-" + pid;
  MakeRootfs(rootfs);

  // The shim, timed to wait and to delete+reap in one go.
  auto shim_iter = [&](const std::string& tag, double* to_wait, double* to_reap) {
    const std::string bundle = dir + "/s" + tag;
    fs::create_directory(bundle);
    v1::ContainerSpec spec =
        ShimSpec("bench-" + tag, rootfs, bundle, shim_cg + "/c" + tag, {"/bin/true"});
    auto t0 = std::chrono::steady_clock::now();
    shim::LaunchedShim s = Must(shim::LaunchShim(shim_path, bundle, spec), "launch");
    Must(shim::CallShim(s.socket, shim::StartRequest()), "start");
    v1::Response r = Must(shim::CallShim(s.socket, shim::WaitRequest()), "wait");
    auto t1 = std::chrono::steady_clock::now();
    StopShim(s);
    auto t2 = std::chrono::steady_clock::now();
    if (r.exit().exit_code() != 0) Die("/bin/true exited " + std::to_string(r.exit().exit_code()));
    *to_wait = std::chrono::duration<double, std::milli>(t1 - t0).count();
    *to_reap = std::chrono::duration<double, std::milli>(t2 - t0).count();
  };

  std::vector<std::string> crun_global = {"/usr/bin/crun", "--root", dir + "/crun-state"};
  std::string crun_note;
  int crun_ns = -1, home_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  auto crun_bundle = [&](const std::string& tag) {
    const std::string bundle = dir + "/c" + tag;
    fs::create_directory(bundle);
    std::ofstream(bundle + "/config.json") << CrunConfig(
        shim::DefaultSpec("bench-" + tag, rootfs, {"/bin/true"}), crun_cg + "/c" + tag);
    return bundle;
  };
  // One `crun run`, in crun_ns if set (entered and left outside the timing).
  auto crun_run = [&](const std::string& tag, const std::string& err, double* ms) {
    std::vector<std::string> a = crun_global;
    for (const char* s : {"run", "--bundle"}) a.push_back(s);
    a.push_back(crun_bundle(tag));
    a.push_back("bench-" + tag);
    if (crun_ns >= 0 && setns(crun_ns, CLONE_NEWNS) != 0) Die("setns crun");
    int rc = 0;
    double t = TimeMs([&] { rc = Run(a, err); });
    if (crun_ns >= 0 && (setns(home_ns, CLONE_NEWNS) != 0 || fchdir(cwd) != 0)) Die("setns home");
    if (ms != nullptr) *ms = t;
    return rc;
  };
  bool crun_ok = have_crun;
  if (have_crun && crun_run("probe", dir + "/crun.err", nullptr) != 0) {
    crun_note = "crun refused the host layout (" + Slurp(dir + "/crun.err") + "); ";
    crun_ns = V1OnlyMountNs(layout);
    if (crun_ns >= 0 && crun_run("probe2", dir + "/crun.err", nullptr) == 0) {
      crun_note +=
          "it ran in a mount namespace where a tmpfs hides the cgroup2 mount: with "
          "cgroups in the v1 hierarchies, none in cgroup2";
    } else {
      if (crun_ns >= 0) close(crun_ns);
      crun_ns = -1;
      crun_global.insert(crun_global.begin() + 1, "--cgroup-manager=disabled");
      if (crun_run("probe3", dir + "/crun.err", nullptr) == 0) {
        crun_note += "it ran WITHOUT cgroups (--cgroup-manager=disabled)";
      } else {
        crun_note += "it fails even with --cgroup-manager=disabled (" + Slurp(dir + "/crun.err") +
                     "): crun skipped";
        crun_ok = false;
      }
    }
    crun_note.erase(std::remove(crun_note.begin(), crun_note.end(), '\n'), crun_note.end());
  }
  const std::vector<std::string> floor_args = {
      "/usr/bin/unshare",  "--fork", "--pid", "--mount", "--uts", "--ipc", "--net",
      rootfs + "/bin/true"};

  Figures to_wait{"shim create+start+wait"}, to_reap{"shim create+start+wait+delete+reap"},
      crun{"crun run (create+start+wait+delete)"}, floor{"floor: unshare -f -pmuin true"};
  // Two warm-up rounds, then alternate; who goes first swaps each round, since the
  // first cgroup.procs write after a quiet spell waits out an RCU grace period.
  for (int i = -2; i < n; ++i) {
    const std::string tag = i < 0 ? "w" + std::to_string(-i) : std::to_string(i);
    double w, r, c = 0;
    auto crun_iter = [&] {
      if (crun_ok && crun_run(tag, "/dev/null", &c) != 0) Die("crun run failed");
    };
    if (i % 2 != 0) crun_iter();
    shim_iter(tag, &w, &r);
    if (i % 2 == 0) crun_iter();
    double f = TimeMs([&] {
      if (Run(floor_args) != 0) Die("unshare failed");
    });
    if (i < 0) continue;
    to_wait.ms.push_back(w);
    to_reap.ms.push_back(r);
    if (crun_ok) crun.ms.push_back(c);
    floor.ms.push_back(f);
  }

  // Memory: one sleeping container, then ten at once.
  auto start_sleeper = [&](const std::string& tag) {
    const std::string bundle = dir + "/m" + tag;
    fs::create_directory(bundle);
    shim::LaunchedShim s = Must(
        shim::LaunchShim(
            shim_path, bundle,
            ShimSpec("sleep-" + tag, rootfs, bundle, shim_cg + "/m" + tag, {"/bin/sleep", "1000"})),
        "launch sleeper");
    Must(shim::CallShim(s.socket, shim::StartRequest()), "start sleeper");
    return s;
  };
  shim::LaunchedShim one = start_sleeper("one");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  MemKb single = ReadMem(one.shim_pid);
  const std::string breakdown = MemBreakdown(one.shim_pid);
  StopShim(one);
  std::vector<shim::LaunchedShim> ten;
  for (int i = 0; i < 10; ++i) ten.push_back(start_sleeper(std::to_string(i)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  MemKb mean;
  for (const shim::LaunchedShim& s : ten) {
    MemKb m = ReadMem(s.shim_pid);
    mean = {mean.rss + m.rss, mean.pss + m.pss};
  }
  mean = {mean.rss / 10, mean.pss / 10};
  for (const shim::LaunchedShim& s : ten) StopShim(s);

  RemoveCgroupTree(layout, shim_cg);
  if (have_crun) RemoveCgroupTree(layout, crun_cg);
  if (crun_ns >= 0) close(crun_ns);
  close(home_ns);
  close(cwd);
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  umount2(dir.c_str(), MNT_DETACH);  // the tmpfs: its files go with it
  rmdir(dir.c_str());
  g_dir.clear();

  std::vector<const Figures*> all = {&to_wait, &to_reap};
  if (crun_ok) all.push_back(&crun);
  all.push_back(&floor);
  nlohmann::json json;
  std::printf("%-40s %6s %9s %9s %9s %9s\n", "ms", "n", "p50", "p90", "p99", "max");
  for (const Figures* f : all) {
    std::printf("%-40s %6zu %9.3f %9.3f %9.3f %9.3f\n", f->name.c_str(), f->ms.size(), f->Pct(0.5),
                f->Pct(0.9), f->Pct(0.99), f->Pct(1.0));
    nlohmann::json row = {{"name", f->name}, {"n", f->ms.size()}, {"p50_ms", f->Pct(0.5)}};
    row.update({{"p90_ms", f->Pct(0.9)}, {"p99_ms", f->Pct(0.99)}, {"max_ms", f->Pct(1.0)}});
    json["times"].push_back(row);
  }
  if (!crun_note.empty()) std::printf("note: %s\n", crun_note.c_str());
  if (crun_ok) {
    double full = to_reap.Pct(0.5) / crun.Pct(0.5), wait = to_wait.Pct(0.5) / crun.Pct(0.5);
    std::printf("ratio shim (to delete+reap) / crun run, p50: %.2f   [target < 1: %s]\n", full,
                full < 1 ? "met" : "MISSED");
    std::printf("ratio shim (to wait) / crun run, p50:        %.2f\n", wait);
    json["ratio_shim_full_over_crun_p50"] = full;
    json["ratio_shim_wait_over_crun_p50"] = wait;
  } else {
    std::printf("crun: %s\n",
                have_crun ? "failed, see note" : "not run (not installed or --no-crun)");
  }
  double over_floor = to_reap.Pct(0.5) / floor.Pct(0.5);
  std::printf("ratio shim (to delete+reap) / floor, p50:  %.2f\n", over_floor);
  json["ratio_shim_full_over_floor_p50"] = over_floor;
  auto print_mem = [](const char* what, MemKb m) {
    std::printf("%-36s Rss %5ld kB [target <= 2048: %s]  Pss %5ld kB [target <= 400: %s]\n", what,
                m.rss, m.rss <= 2048 ? "met" : "MISSED", m.pss, m.pss <= 400 ? "met" : "MISSED");
  };
  print_mem("shim memory, 1 sleeping container:", single);
  print_mem("shim memory, 10 at once, mean/shim:", mean);
  std::printf("where the single shim's Rss is:\n%s", breakdown.c_str());
  json["memory_kb"] = {{"single", {{"rss", single.rss}, {"pss", single.pss}}},
                       {"mean_of_10", {{"rss", mean.rss}, {"pss", mean.pss}}}};
  if (!crun_note.empty()) json["crun_note"] = crun_note;
  if (!json_path.empty()) std::ofstream(json_path) << json.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace berth

int main(int argc, char** argv) { return berth::Main(argc, argv); }
