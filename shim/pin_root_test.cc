// A pod sandbox as root (shim/pin.h): namespaces pinned by `berth-shim
// --pin-namespaces` on several file systems, what a process joining them sees,
// rollback and unpinning; a pause PID 1 that another container joins.
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "os/files.h"
#include "os/mountinfo.h"
#include "shim/client.h"
#include "shim/testing/shim_fixture.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::shim::testing {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Mount points at or below `prefix`, outermost first.
std::vector<std::string> MountsUnder(const std::string& prefix) {
  std::vector<std::string> out;
  absl::StatusOr<std::string> text = ReadFile("/proc/self/mountinfo");
  if (!text.ok()) return {"<" + std::string(text.status().message()) + ">"};
  absl::StatusOr<std::vector<MountInfo>> mounts = ParseMountInfo(*text);
  if (!mounts.ok()) return {"<" + std::string(mounts.status().message()) + ">"};
  for (const MountInfo& m : *mounts) {
    if (m.mount_point == prefix || absl::StartsWith(m.mount_point, prefix + "/")) {
      out.push_back(m.mount_point);
    }
  }
  return out;
}

// Cleanup for tests that fail half-way: detaches everything below `prefix`.
void DetachAllUnder(const std::string& prefix) {
  std::vector<std::string> mounts = MountsUnder(prefix);
  for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) umount2(it->c_str(), MNT_DETACH);
}

std::string Inode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "?";
  return absl::StrCat(st.st_ino);
}

std::string Trimmed(absl::StatusOr<std::string> s) {
  return s.ok() ? std::string(absl::StripAsciiWhitespace(*s)) : "<error>";
}

std::string HostName() {
  char host[HOST_NAME_MAX + 1] = {};
  gethostname(host, sizeof(host) - 1);
  return host;
}

constexpr char kPortSysctl[] = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
constexpr char kShmmaxSysctl[] = "/proc/sys/kernel/shmmax";

// Reads a small file into buf, without the trailing newline; for the child.
void ReadSmall(const char* path, char (&buf)[64]) {
  buf[0] = '\0';
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n < 0) n = 0;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) --n;
  buf[n] = '\0';
}

// What a process that joins the pinned namespaces in `dir` sees, as key=value
// lines. It runs in a child forked from this single-threaded test process and
// makes only syscalls (and snprintf) there.
ProbeOutput LookInside(const std::string& dir) {
  const std::string net = dir + "/net", ipc = dir + "/ipc", uts = dir + "/uts";
  const std::pair<const char*, int> joins[] = {
      {net.c_str(), CLONE_NEWNET}, {ipc.c_str(), CLONE_NEWIPC}, {uts.c_str(), CLONE_NEWUTS}};
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    char out[512];
    for (const auto& [path, type] : joins) {
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, type) != 0) {
        int n = snprintf(out, sizeof(out), "error=setns %s: %d\n", path, errno);
        (void)!write(p[1], out, n);
        _exit(1);
      }
      close(fd);
    }
    char host[HOST_NAME_MAX + 1] = {};
    gethostname(host, sizeof(host) - 1);
    char port[64], shmmax[64];
    ReadSmall(kPortSysctl, port);
    ReadSmall(kShmmaxSysctl, shmmax);
    struct ifreq ifr = {};
    memcpy(ifr.ifr_name, "lo", 3);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int lo_up = s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP) ? 1 : 0;
    int n = snprintf(out, sizeof(out), "hostname=%s\nport=%s\nshmmax=%s\nlo_up=%d\n", host, port,
                     shmmax, lo_up);
    (void)!write(p[1], out, n);
    _exit(0);
  }
  close(p[1]);
  std::string text;
  char buf[512];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof(buf))) > 0) text.append(buf, n);
  close(p[0]);
  waitpid(pid, nullptr, 0);
  return ParseProbe(text);
}

// Pins on the test's temp dir (the root file system), a tmpfs and an overlayfs.
class PinTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    dir_ = std::make_unique<TempDir>();
    std::string base = dir_->path();
    if (GetParam() == "tmpfs") {
      base = dir_->Join("tmpfs");
      ASSERT_EQ(mkdir(base.c_str(), 0700), 0);
      ASSERT_EQ(mount("tmpfs", base.c_str(), "tmpfs", 0, "mode=0755,size=1m"), 0) << errno;
    } else if (GetParam() == "overlay") {
      for (const char* d : {"lower", "upper", "work", "merged"}) {
        ASSERT_EQ(mkdir(dir_->Join(d).c_str(), 0700), 0);
      }
      base = dir_->Join("merged");
      const std::string data =
          absl::StrCat("lowerdir=", dir_->Join("lower"), ",upperdir=", dir_->Join("upper"),
                       ",workdir=", dir_->Join("work"));
      ASSERT_EQ(mount("overlay", base.c_str(), "overlay", 0, data.c_str()), 0) << strerror(errno);
    }
    sandboxes_ = base + "/sandboxes";
    pin_dir_ = sandboxes_ + "/p1/ns";  // its parents are missing too
  }
  void TearDown() override {
    if (!dir_) return;
    if (!pin_dir_.empty()) (void)UnpinNamespaces(pin_dir_);
    DetachAllUnder(dir_->path());
    EXPECT_THAT(MountsUnder(dir_->path()), IsEmpty());
    dir_.reset();
  }

  PinOptions Options() const {
    PinOptions o;
    o.dir = pin_dir_;
    o.net = o.ipc = o.uts = true;
    return o;
  }

  std::unique_ptr<TempDir> dir_;
  std::string sandboxes_;  // on the file system under test
  std::string pin_dir_;
};

INSTANTIATE_TEST_SUITE_P(FileSystems, PinTest, ::testing::Values("rootfs", "tmpfs", "overlay"));

TEST_P(PinTest, PinsNamespacesWithHostnameSysctlsAndLoopbackUp) {
  const std::string host_port = Trimmed(ReadFile(kPortSysctl));
  const std::string host_shmmax = Trimmed(ReadFile(kShmmaxSysctl));
  const std::string host_name = HostName();
  // Values that differ from the host's (and from a new namespace's defaults).
  const std::string port = host_port == "0" ? "80" : "0";
  PinOptions o = Options();
  o.hostname = "pod-1";
  o.sysctls = {{"net.ipv4.ip_unprivileged_port_start", port}, {"kernel/shmmax", "1073741824"}};
  ASSERT_THAT(PinNamespaces(BERTH_SHIM_PATH, o), IsOk());

  EXPECT_THAT(MountsUnder(pin_dir_), ::testing::UnorderedElementsAre(
                                         pin_dir_ + "/net", pin_dir_ + "/ipc", pin_dir_ + "/uts"));
  struct stat st;
  ASSERT_EQ(stat(pin_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  for (const char* ns : {"net", "ipc", "uts"}) {
    EXPECT_NE(Inode(absl::StrCat(pin_dir_, "/", ns)), Inode(absl::StrCat("/proc/self/ns/", ns)))
        << ns;
  }
  ProbeOutput inside = LookInside(pin_dir_);
  EXPECT_EQ(One(inside, "hostname"), "pod-1");
  EXPECT_EQ(One(inside, "port"), port);
  EXPECT_EQ(One(inside, "shmmax"), "1073741824");
  EXPECT_EQ(One(inside, "lo_up"), "1");
  // The host's are untouched.
  EXPECT_EQ(HostName(), host_name);
  EXPECT_EQ(Trimmed(ReadFile(kPortSysctl)), host_port);
  EXPECT_EQ(Trimmed(ReadFile(kShmmaxSysctl)), host_shmmax);

  ASSERT_THAT(UnpinNamespaces(pin_dir_), IsOk());
  EXPECT_THAT(MountsUnder(sandboxes_), IsEmpty());
  EXPECT_NE(stat(pin_dir_.c_str(), &st), 0);
  EXPECT_THAT(UnpinNamespaces(pin_dir_), IsOk());  // idempotent
}

TEST_P(PinTest, PinsOnlyWhatIsAsked) {
  PinOptions o = Options();
  o.ipc = o.uts = false;
  ASSERT_THAT(PinNamespaces(BERTH_SHIM_PATH, o), IsOk());
  EXPECT_THAT(MountsUnder(pin_dir_), ::testing::ElementsAre(pin_dir_ + "/net"));
  absl::StatusOr<std::vector<std::string>> names = ListDir(pin_dir_);
  ASSERT_THAT(names, IsOk());
  EXPECT_THAT(*names, ::testing::ElementsAre("net"));
  EXPECT_THAT(UnpinNamespaces(pin_dir_), IsOk());
}

TEST_P(PinTest, RefusedSysctlSpawnsNothing) {
  PinOptions o = Options();
  o.sysctls = {{"kernel.panic", "1"}};
  EXPECT_THAT(PinNamespaces(BERTH_SHIM_PATH, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not namespaced")));
  struct stat st;
  EXPECT_NE(stat(pin_dir_.c_str(), &st), 0);
}

TEST_P(PinTest, SysctlTheKernelRefusesFailsWithoutMounts) {
  for (const auto& [key, value, why] : {
           std::tuple<std::string, std::string, std::string>{"net.ipv4.berth_no_such_sysctl", "1",
                                                             "not known to this kernel"},
           {"net.ipv4.ip_unprivileged_port_start", "not-a-number", "Invalid argument"},
       }) {
    PinOptions o = Options();
    o.hostname = "pod-1";
    o.sysctls = {{"net.core.somaxconn", "1024"}, {key, value}};
    EXPECT_THAT(PinNamespaces(BERTH_SHIM_PATH, o),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(why)));
    EXPECT_THAT(MountsUnder(sandboxes_), IsEmpty());
    struct stat st;
    EXPECT_NE(stat(pin_dir_.c_str(), &st), 0) << "the pin dir is left";
  }
}

TEST_P(PinTest, FailureWhilePinningUndoesEarlierPins) {
  // net and ipc are pinned, then uts's file exists: both come off again, and
  // the file we did not make stays.
  ASSERT_THAT(MakeDirs(pin_dir_, 0700), IsOk());
  berth::testing::WriteFileOrDie(pin_dir_ + "/uts", "");
  absl::Status s = PinNamespaces(BERTH_SHIM_PATH, Options());
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInternal, HasSubstr("/uts`: File exists")));
  EXPECT_THAT(MountsUnder(sandboxes_), IsEmpty());
  absl::StatusOr<std::vector<std::string>> names = ListDir(pin_dir_);
  ASSERT_THAT(names, IsOk());
  EXPECT_THAT(*names, ::testing::ElementsAre("uts"));
}

TEST_P(PinTest, UnpinToleratesPartialState) {
  ASSERT_THAT(PinNamespaces(BERTH_SHIM_PATH, Options()), IsOk());
  // A crash half-way through an earlier unpin: ipc unmounted but still there,
  // uts already gone.
  ASSERT_EQ(umount2((pin_dir_ + "/ipc").c_str(), MNT_DETACH), 0);
  ASSERT_EQ(umount2((pin_dir_ + "/uts").c_str(), MNT_DETACH), 0);
  ASSERT_EQ(unlink((pin_dir_ + "/uts").c_str()), 0);
  EXPECT_THAT(UnpinNamespaces(pin_dir_), IsOk());
  EXPECT_THAT(MountsUnder(sandboxes_), IsEmpty());
  struct stat st;
  EXPECT_NE(stat(pin_dir_.c_str(), &st), 0);
}

TEST(PauseProcessTest, ReapsIgnoresOtherSignalsAndEndsOnSigterm) {
  pid_t pid = fork();
  if (pid == 0) {
    execl(BERTH_SHIM_PATH, "berth-shim", "--pause", nullptr);
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  absl::Cleanup reap = [pid] {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  };
  // Wait until it waits for signals: inside sigwaitinfo(2) the waited set shows
  // as unblocked in SigBlk, so look at where it sleeps (proc(5) wchan).
  bool blocked = false;
  for (int i = 0; i < 500 && !blocked; ++i) {
    blocked =
        absl::StrContains(Trimmed(ReadFile(absl::StrCat("/proc/", pid, "/wchan"))), "sigtimedwait");
    if (!blocked) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(blocked);
  // SIGHUP and SIGUSR1 would end it with their default action.
  kill(pid, SIGHUP);
  kill(pid, SIGUSR1);
  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::move(reap).Cancel();
}

// A pod that shares its PID namespace: pinned namespaces, pause as PID 1,
// another container joining it.
class PauseTest : public ShimTest {
 protected:
  void SetUp() override {
    ShimTest::SetUp();
    if (IsSkipped()) return;
    pin_dir_ = dir_->Join("pod/ns");
    pause_bundle_ = dir_->Join("pause");
    PinOptions o;
    o.dir = pin_dir_;
    o.net = o.ipc = o.uts = true;
    o.hostname = "pod-1";
    ASSERT_THAT(PinNamespaces(BERTH_SHIM_PATH, o), IsOk());
  }
  void TearDown() override {
    if (dir_) {
      if (pause_.shim_pid > 0) {
        (void)CallShim(pause_.socket, DeleteRequest());
        kill(pause_.shim_pid, SIGKILL);
        waitpid(pause_.shim_pid, nullptr, 0);
      }
      EXPECT_THAT(RemovePauseRoot(pause_bundle_), IsOk());
      EXPECT_THAT(UnpinNamespaces(pin_dir_), IsOk());
      DetachAllUnder(dir_->path());
      EXPECT_THAT(MountsUnder(dir_->path()), IsEmpty());
    }
    ShimTest::TearDown();
  }
  PauseOptions Pod() const {
    PauseOptions p;
    p.net_ns = pin_dir_ + "/net";
    p.ipc_ns = pin_dir_ + "/ipc";
    p.uts_ns = pin_dir_ + "/uts";
    p.cgroup_path = CgroupPath("c7");  // among the ones the fixture removes
    return p;
  }
  // Spec for a container of the pod: its namespaces, pause's PID namespace.
  v1::ContainerSpec PodSpec(const std::vector<std::string>& args) {
    v1::ContainerSpec spec = Spec(args);
    for (v1::Namespace& ns : *spec.mutable_namespaces()) {
      if (ns.type() == v1::PID) ns.set_path(absl::StrCat("/proc/", pause_.init_pid, "/ns/pid"));
      if (ns.type() == v1::NETWORK) ns.set_path(pin_dir_ + "/net");
      if (ns.type() == v1::IPC) ns.set_path(pin_dir_ + "/ipc");
      if (ns.type() == v1::UTS) ns.set_path(pin_dir_ + "/uts");
    }
    return spec;
  }
  std::vector<pid_t> PauseChildren() {
    std::vector<pid_t> out;
    absl::StatusOr<std::string> text =
        ReadFile(absl::StrCat("/proc/", pause_.init_pid, "/task/", pause_.init_pid, "/children"));
    for (absl::string_view p : absl::StrSplit(text.ok() ? *text : "", ' ', absl::SkipEmpty())) {
      pid_t pid;
      if (absl::SimpleAtoi(p, &pid)) out.push_back(pid);
    }
    return out;
  }

  std::string pin_dir_, pause_bundle_;
  LaunchedShim pause_;
};

TEST_F(PauseTest, ContainersShareThePausePidNamespace) {
  absl::StatusOr<LaunchedShim> pause = LaunchPause(BERTH_SHIM_PATH, pause_bundle_, Pod());
  ASSERT_THAT(pause, IsOk());
  pause_ = *pause;
  // PID 1 of its own namespace, in the pod's others, with no capabilities.
  absl::StatusOr<std::string> status = ReadFile(absl::StrCat("/proc/", pause_.init_pid, "/status"));
  ASSERT_THAT(status, IsOk());
  EXPECT_THAT(*status, HasSubstr(absl::StrCat("NSpid:\t", pause_.init_pid, "\t1\n")));
  EXPECT_THAT(*status, HasSubstr("CapEff:\t0000000000000000"));
  EXPECT_THAT(*status, HasSubstr("CapBnd:\t0000000000000000"));
  EXPECT_THAT(*status, HasSubstr("NoNewPrivs:\t1"));
  for (const char* ns : {"net", "ipc", "uts"}) {
    EXPECT_EQ(Inode(absl::StrCat("/proc/", pause_.init_pid, "/ns/", ns)),
              Inode(absl::StrCat(pin_dir_, "/", ns)))
        << ns;
  }

  absl::StatusOr<LaunchedShim> c = Launch(PodSpec({"/bin/probe", "report"}));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(RunToExit(*c).exit_code(), 0);
  ProbeOutput out = ParseProbe(LogText(*c));
  EXPECT_NE(One(out, "pid"), "1");
  EXPECT_EQ(One(out, "ns.pid"), Inode(absl::StrCat("/proc/", pause_.init_pid, "/ns/pid")));
  EXPECT_EQ(One(out, "ns.net"), Inode(pin_dir_ + "/net"));
  EXPECT_EQ(One(out, "hostname"), "pod-1");

  // An orphan of the pod is reparented to pause, which reaps it.
  absl::StatusOr<LaunchedShim> orphaner = Launch(PodSpec({"/bin/sh", "-c", "sleep 1 & exit 0"}));
  ASSERT_THAT(orphaner, IsOk());
  EXPECT_EQ(RunToExit(*orphaner).exit_code(), 0);
  std::vector<pid_t> children = PauseChildren();
  for (int i = 0; i < 300 && children.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    children = PauseChildren();
  }
  ASSERT_EQ(children.size(), 1u);
  struct stat st;
  const std::string orphan = absl::StrCat("/proc/", children[0]);
  for (int i = 0; i < 500 && stat(orphan.c_str(), &st) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(stat(orphan.c_str(), &st), 0) << "not reaped: " << orphan;

  // SIGTERM ends pause (exit 0), and with it the PID namespace.
  ASSERT_THAT(CallShim(pause_.socket, KillRequest(SIGTERM)), IsOk());
  absl::StatusOr<v1::Response> wait = CallShim(pause_.socket, WaitRequest());
  ASSERT_THAT(wait, IsOk());
  EXPECT_EQ(wait->exit().exit_code(), 0);
  EXPECT_EQ(wait->exit().signal(), 0);
  ASSERT_THAT(CallShim(pause_.socket, DeleteRequest()), IsOk());
  EXPECT_THAT(ReapShim(pause_.shim_pid), IsOk());
  pause_ = LaunchedShim();

  EXPECT_THAT(RemovePauseRoot(pause_bundle_), IsOk());
  EXPECT_THAT(MountsUnder(pause_bundle_), IsEmpty());
  EXPECT_NE(stat((pause_bundle_ + "/rootfs").c_str(), &st), 0);
  EXPECT_THAT(RemovePauseRoot(pause_bundle_), IsOk());  // idempotent
}

TEST_F(PauseTest, HostNamespacesWhenNoPathsAndRefusesAnExistingRoot) {
  PauseOptions host;  // a host-network pod: nothing to join
  absl::StatusOr<LaunchedShim> pause = LaunchPause(BERTH_SHIM_PATH, pause_bundle_, host);
  ASSERT_THAT(pause, IsOk());
  pause_ = *pause;
  EXPECT_EQ(Inode(absl::StrCat("/proc/", pause_.init_pid, "/ns/net")), Inode("/proc/self/ns/net"));
  EXPECT_NE(Inode(absl::StrCat("/proc/", pause_.init_pid, "/ns/pid")), Inode("/proc/self/ns/pid"));
  EXPECT_THAT(MountsUnder(pause_bundle_), ::testing::ElementsAre(pause_bundle_ + "/rootfs/pause"));
  // A second pause in the same bundle is refused before anything is touched.
  EXPECT_THAT(LaunchPause(BERTH_SHIM_PATH, pause_bundle_, host),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("RemovePauseRoot")));
  EXPECT_THAT(MountsUnder(pause_bundle_), ::testing::ElementsAre(pause_bundle_ + "/rootfs/pause"));
}

TEST_F(PauseTest, FailedLaunchLeavesNothing) {
  PauseOptions bad = Pod();
  bad.net_ns = dir_->Join("no-such-ns");
  EXPECT_THAT(LaunchPause(BERTH_SHIM_PATH, pause_bundle_, bad),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no-such-ns")));
  EXPECT_THAT(MountsUnder(pause_bundle_), IsEmpty());
  struct stat st;
  EXPECT_NE(stat((pause_bundle_ + "/rootfs").c_str(), &st), 0);
}

}  // namespace
}  // namespace berth::shim::testing
