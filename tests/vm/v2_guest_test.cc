// A real berthd on a pure cgroup-v2 kernel (issue 18): run inside the QEMU
// guest by tests/vm/run-vm.sh (ctest label `vm`), where cgroup2 is the only
// hierarchy, mounted at /sys/fs/cgroup with every controller delegated from
// the root, as systemd leaves it. On any other host the tests skip.
//
// What broke here at 6d1084a: CreateContainer failed (device rules had no v2
// form) and, past that, containers had no cpu.max (the pod cgroup never
// handed its controllers down).
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "os/cgroup/cgroup.h"
#include "os/cgroup/device_filter.h"
#include "os/cgroup/layout.h"
#include "os/files.h"
#include "tests/e2e/lifecycle_fixture.h"
#include "tests/support/status_matchers.h"

namespace berth::testing {
namespace {

using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kV2[] = "/sys/fs/cgroup";

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text)) : "<" + path + ": missing>";
}

// A "key value" line of a flat-keyed cgroup file (memory.events, pids.events).
int64_t Key(const std::string& path, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(Read(path), '\n')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, ' ');
    int64_t v = 0;
    if (kv.first == key && absl::SimpleAtoi(kv.second, &v)) return v;
  }
  return -1;
}

class V2GuestTest : public LifecycleTest {
 protected:
  void SetUp() override {
    absl::StatusOr<CgroupLayout> layout = CgroupLayout::Detect();
    if (!layout.ok() || layout->mode() != CgroupMode::kUnified) {
      GTEST_SKIP() << "not a pure cgroup-v2 host: run through tests/vm/run-vm.sh";
    }
    layout_ = *std::move(layout);
    LifecycleTest::SetUp();
  }

  v1::ContainerConfig WithProbe(v1::ContainerConfig c) {
    v1::Mount* m = c.add_mounts();
    m->set_host_path(BERTH_PROBE_PATH);
    m->set_container_path("/probe");
    m->set_readonly(true);
    return c;
  }
  // Runs `config` in a new host-network pod; the container's id.
  std::string Run(const std::string& name, const v1::ContainerConfig& config) {
    v1::PodSandboxConfig pod_config = PodConfig(name, /*host_network=*/true);
    absl::StatusOr<std::string> pod = RunPod(pod_config);
    EXPECT_THAT(pod.status(), IsOk());
    if (!pod.ok()) return "";
    absl::StatusOr<std::string> id = CreateContainer(*pod, config, pod_config);
    EXPECT_THAT(id.status(), IsOk());
    if (!id.ok()) return "";
    EXPECT_THAT(StartContainer(*id), IsOk());
    return *id;
  }
  // The container's cgroup directory on the host.
  std::string CgroupDir(const std::string& id) {
    absl::StatusOr<v1::ContainerStatusResponse> st = ContainerStatus(id, /*verbose=*/true);
    EXPECT_THAT(st.status(), IsOk());
    if (!st.ok()) return "";
    return kV2 + nlohmann::json::parse(st->info().at("info")).at("cgroupPath").get<std::string>();
  }
  v1::ExecSyncResponse Exec(const std::string& id, std::vector<std::string> cmd) {
    absl::StatusOr<v1::ExecSyncResponse> out = ExecSync(id, std::move(cmd), 60);
    EXPECT_THAT(out.status(), IsOk());
    return out.ok() ? *out : v1::ExecSyncResponse();
  }

  CgroupLayout layout_;
};

TEST_F(V2GuestTest, StatusIsReadyAndTheLimitsReachTheKernel) {
  v1::StatusRequest sreq;
  v1::StatusResponse sresp;
  ASSERT_TRUE(runtime_->Status(Ctx().get(), sreq, &sresp).ok());
  for (const v1::RuntimeCondition& c : sresp.status().conditions()) {
    if (c.type() == "RuntimeReady") {
      EXPECT_TRUE(c.status()) << c.message();
    }
  }

  v1::ContainerConfig config = WithProbe(ContainerConfig("limits", {"sleep", "1000"}));
  v1::LinuxContainerResources* r = config.mutable_linux()->mutable_resources();
  r->set_cpu_shares(512);
  r->set_cpu_period(100000);
  r->set_cpu_quota(50000);
  r->set_cpuset_cpus("0");
  r->set_memory_limit_in_bytes(64 << 20);
  (*r->mutable_unified())["pids.max"] = "32";
  (*r->mutable_unified())["memory.high"] = "50331648";  // kubelet's MemoryQoS
  (*r->mutable_unified())["memory.min"] = "1048576";
  const bool hugetlb = ::access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0 &&
                       absl::StrContains(Read("/sys/fs/cgroup/cgroup.controllers"), "hugetlb") &&
                       ::access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) == 0;
  if (hugetlb) {
    v1::HugepageLimit* h = r->add_hugepage_limits();
    h->set_page_size("2MB");
    h->set_limit(4 << 20);
  }
  struct stat vda;
  const bool disk = ::stat("/dev/vda", &vda) == 0 && S_ISBLK(vda.st_mode);
  const std::string vda_dev = absl::StrCat(major(vda.st_rdev), ":", minor(vda.st_rdev));
  if (disk) (*r->mutable_unified())["io.max"] = vda_dev + " wbps=1048576";

  const std::string id = Run("limits", config);
  ASSERT_FALSE(id.empty());
  const std::string dir = CgroupDir(id);
  EXPECT_EQ(Read(dir + "/cpu.max"), "50000 100000");
  EXPECT_EQ(Read(dir + "/cpu.weight"), std::to_string(CpuSharesToWeight(512)));
  EXPECT_EQ(Read(dir + "/cpuset.cpus"), "0");
  EXPECT_EQ(Read(dir + "/memory.max"), "67108864");
  EXPECT_EQ(Read(dir + "/memory.high"), "50331648");
  EXPECT_EQ(Read(dir + "/memory.min"), "1048576");
  EXPECT_EQ(Read(dir + "/pids.max"), "32");
  if (hugetlb) {
    EXPECT_EQ(Read(dir + "/hugetlb.2MB.max"), "4194304");
  }
  if (disk) {
    EXPECT_THAT(Read(dir + "/io.max"), HasSubstr(vda_dev + " rbps=max wbps=1048576"));
  }
  // The device filter is the kernel's: one program on the container's cgroup.
  absl::StatusOr<std::vector<uint32_t>> programs = AttachedDevicePrograms(dir);
  ASSERT_THAT(programs.status(), IsOk());
  EXPECT_EQ(programs->size(), 1u);

  // Inside, the container sees its own cgroup as the root (cgroupns) with its limits.
  EXPECT_EQ(absl::StripAsciiWhitespace(Exec(id, {"cat", "/proc/self/cgroup"}).stdout()), "0::/");
  EXPECT_EQ(absl::StripAsciiWhitespace(Exec(id, {"cat", "/sys/fs/cgroup/memory.max"}).stdout()),
            "67108864");

  // A fork bomb stops at pids.max.
  v1::ExecSyncResponse bomb = Exec(id, {"/probe", "forkbomb", "200"});
  EXPECT_THAT(bomb.stdout(), HasSubstr("fork_errno=EAGAIN")) << bomb.stdout() << bomb.stderr();
  EXPECT_GT(Key(dir + "/pids.events", "max"), 0);

  // UpdateContainerResources: memory.max follows, and the device filter is
  // still the one program (no update leaves the container without it).
  v1::UpdateContainerResourcesRequest update;
  update.set_container_id(id);
  update.mutable_linux()->set_memory_limit_in_bytes(32 << 20);
  update.mutable_linux()->set_cpu_period(100000);
  update.mutable_linux()->set_cpu_quota(20000);
  v1::UpdateContainerResourcesResponse updated;
  grpc::Status s = runtime_->UpdateContainerResources(Ctx().get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Read(dir + "/memory.max"), "33554432");
  EXPECT_EQ(Read(dir + "/cpu.max"), "20000 100000");
  programs = AttachedDevicePrograms(dir);
  ASSERT_THAT(programs.status(), IsOk());
  EXPECT_EQ(programs->size(), 1u);

  // CRI stats come from the same files: non-zero, and no more than the kernel says.
  v1::ContainerStatsRequest sr;
  sr.set_container_id(id);
  v1::ContainerStatsResponse stats;
  ASSERT_TRUE(runtime_->ContainerStats(Ctx().get(), sr, &stats).ok());
  const uint64_t cpu_ns = stats.stats().cpu().usage_core_nano_seconds().value();
  EXPECT_GT(cpu_ns, 0u);
  EXPECT_LE(cpu_ns / 1000, static_cast<uint64_t>(Key(dir + "/cpu.stat", "usage_usec")));
  const uint64_t working_set = stats.stats().memory().working_set_bytes().value();
  EXPECT_GT(working_set, 0u);
  int64_t current = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Read(dir + "/memory.current"), &current));
  EXPECT_LE(working_set, static_cast<uint64_t>(current) + (1 << 20));

  // cgroup.freeze: the library berthd uses freezes and thaws the real cgroup.
  const std::string path = dir.substr(strlen(kV2));
  absl::StatusOr<Cgroup> cg = Cgroup::Open(layout_, path);
  ASSERT_THAT(cg.status(), IsOk());
  ASSERT_THAT(cg->Freeze(), IsOk());
  EXPECT_EQ(Key(dir + "/cgroup.events", "frozen"), 1);
  ASSERT_THAT(cg->Thaw(), IsOk());
  EXPECT_EQ(absl::StripAsciiWhitespace(Exec(id, {"echo", "thawed"}).stdout()), "thawed");
}

TEST_F(V2GuestTest, AnAllocationOverMemoryMaxEndsOOMKilled) {
  v1::ContainerConfig config = WithProbe(ContainerConfig("hog", {"/probe", "alloc", "256"}));
  config.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(16 << 20);
  const std::string id = Run("oom", config);
  ASSERT_FALSE(id.empty());
  absl::StatusOr<v1::ContainerStatus> st = WaitState(id, v1::CONTAINER_EXITED);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->exit_code(), 137);
  EXPECT_EQ(st->reason(), "OOMKilled");
}

TEST_F(V2GuestTest, OnlyDevicesGivenCanBeOpened) {
  struct stat vda;
  if (::stat("/dev/vda", &vda) != 0 || !S_ISBLK(vda.st_mode)) GTEST_SKIP() << "no /dev/vda";
  const std::string maj = std::to_string(major(vda.st_rdev));
  const std::string min = std::to_string(minor(vda.st_rdev));
  // Not given: mknod works (every container may make nodes, as runc allows),
  // opening the node does not.
  const std::string plain = Run("nodev", ContainerConfig("plain", {"sleep", "1000"}));
  ASSERT_FALSE(plain.empty());
  v1::ExecSyncResponse denied = Exec(plain, {"sh", "-c",
                                             absl::StrCat("mknod /tmp/disk b ", maj, " ", min,
                                                          " && head -c 512 /tmp/disk | wc -c")});
  EXPECT_THAT(denied.stderr(), HasSubstr("Operation not permitted")) << denied.stdout();
  // Given in devices: readable, and its writes refused when only "r" was given.
  v1::ContainerConfig given = ContainerConfig("given", {"sleep", "1000"});
  v1::Device* d = given.add_devices();
  d->set_host_path("/dev/vda");
  d->set_container_path("/dev/xvda");
  d->set_permissions("r");
  const std::string id = Run("withdev", given);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(
      absl::StripAsciiWhitespace(Exec(id, {"sh", "-c", "head -c 512 /dev/xvda | wc -c"}).stdout()),
      "512");
  v1::ExecSyncResponse write =
      Exec(id, {"sh", "-c", "echo x | dd of=/dev/xvda bs=1 count=1 conv=notrunc"});
  EXPECT_NE(write.exit_code(), 0);
  EXPECT_THAT(write.stderr(), HasSubstr("Operation not permitted"));
}

// /metrics on a v2 kernel: berthd's cAdvisor families against the files they
// come from, read by hand right after the scrape.
class V2MetricsTest : public V2GuestTest {
 protected:
  void SetUp() override {
    port_ = PickFreePort();
    // Every scrape reads the cgroups first (no read-behind cache).
    extra_flags_ = {absl::StrCat("--metrics-address=127.0.0.1:", port_), "--metrics-max-age=0"};
    V2GuestTest::SetUp();
  }
  // The value of `family`'s series for container `name` on `page`, or -1.
  static double Value(const std::string& page, const std::string& family, const std::string& name) {
    for (absl::string_view line : absl::StrSplit(page, '\n')) {
      if (!absl::StartsWith(line, family + "{") ||
          !absl::StrContains(line, absl::StrCat("container=\"", name, "\""))) {
        continue;
      }
      double v = -1;
      if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) return v;
    }
    return -1;
  }
  int port_ = 0;
};

TEST_F(V2MetricsTest, TheFamiliesMatchTheKernelsFiles) {
  v1::ContainerConfig config = ContainerConfig(
      "spin", {"sh", "-c",
               "dd if=/dev/zero of=/dev/shm/fill bs=1M count=16 2>/dev/null; touch /started; "
               "while :; do :; done"});
  config.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 << 20);
  config.mutable_linux()->mutable_resources()->set_cpu_period(100000);
  config.mutable_linux()->mutable_resources()->set_cpu_quota(50000);
  const std::string id = Run("metrics", config);
  ASSERT_FALSE(id.empty());
  const std::string dir = CgroupDir(id);
  for (int i = 0; i < 200 && Exec(id, {"test", "-e", "/started"}).exit_code() != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  const std::string page = HttpGet(port_, "/metrics");
  const int64_t cpu_usec = Key(dir + "/cpu.stat", "usage_usec");
  int64_t current = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Read(dir + "/memory.current"), &current));

  const double cpu = Value(page, "container_cpu_usage_seconds_total", "spin");
  EXPECT_GT(cpu, 0);
  EXPECT_LE(cpu, cpu_usec / 1e6 + 0.001);  // read before the file, which only grows
  const double usage = Value(page, "container_memory_usage_bytes", "spin");
  EXPECT_GT(usage, 0.75 * current) << "memory.current " << current;
  EXPECT_LT(usage, 1.25 * current) << "memory.current " << current;
  EXPECT_GE(Value(page, "container_memory_working_set_bytes", "spin"), 16 << 20);
  EXPECT_EQ(Value(page, "container_spec_memory_limit_bytes", "spin"), 64 << 20);
  EXPECT_EQ(Value(page, "container_spec_cpu_quota", "spin"), 50000);
  EXPECT_EQ(Value(page, "container_oom_events_total", "spin"), 0);
  // memory.stat's file (the 16 MiB in /dev/shm are shmem, counted as cache).
  EXPECT_GE(Value(page, "container_memory_cache", "spin"), 16 << 20);
  if (::access((dir + "/cpu.pressure").c_str(), F_OK) == 0) {  // PSI on in this kernel
    const double waiting = Value(page, "container_pressure_cpu_waiting_seconds_total", "spin");
    EXPECT_GE(waiting, 0);
    std::string psi = Read(dir + "/cpu.pressure");
    const size_t total = psi.find("total=");
    ASSERT_NE(total, std::string::npos);
    int64_t us = 0;
    ASSERT_TRUE(absl::SimpleAtoi(psi.substr(total + 6, psi.find('\n', total) - total - 6), &us));
    EXPECT_LE(waiting, us / 1e6 + 0.001);
  }
}

// The guest kernel has AppArmor (the host's has not): RuntimeDefault is
// berth's own profile, loaded with apparmor_parser and entered at execve.
TEST_F(V2GuestTest, AppArmorConfinesForRealAndAnUnloadedProfileIsRefused) {
  if (Read("/sys/module/apparmor/parameters/enabled") != "Y") GTEST_SKIP() << "no AppArmor";
  v1::ContainerConfig config = ContainerConfig("confined", {"sleep", "1000"});
  config.mutable_linux()->mutable_security_context()->mutable_apparmor()->set_profile_type(
      v1::SecurityProfile::RuntimeDefault);
  const std::string id = Run("apparmor", config);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(absl::StripAsciiWhitespace(Exec(id, {"cat", "/proc/1/attr/current"}).stdout()),
            "berth-default (enforce)");
  // The profile denies what it says: writes below /proc/sys.
  v1::ExecSyncResponse denied = Exec(id, {"sh", "-c", "echo 1 > /proc/sys/kernel/panic"});
  EXPECT_NE(denied.exit_code(), 0);

  v1::PodSandboxConfig pod_config = PodConfig("apparmor-missing", /*host_network=*/true);
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  v1::ContainerConfig missing = ContainerConfig("missing", {"sleep", "1000"});
  v1::SecurityProfile* p = missing.mutable_linux()->mutable_security_context()->mutable_apparmor();
  p->set_profile_type(v1::SecurityProfile::Localhost);
  p->set_localhost_ref("no-such-profile");
  EXPECT_THAT(CreateContainer(*pod, missing, pod_config).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("`no-such-profile` is not loaded")));
}

}  // namespace
}  // namespace berth::testing
