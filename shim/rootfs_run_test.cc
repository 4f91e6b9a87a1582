// RunRootfs: the container init's mount sequence, run against a recording
// Syscalls fake (tests/support/recording_syscalls.h), so the exact order of
// calls, the stage and index of a failure and the fd hygiene are checked
// without privileges. The same sequence runs for real in shim_root_test.
#include <errno.h>
#include <sys/mount.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "shim/client.h"
#include "shim/rootfs.h"
#include "tests/support/recording_syscalls.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::shim {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::RecordingSyscalls;
using ::berth::testing::TempDir;
using ::testing::Contains;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class RunRootfsTest : public ::testing::Test {
 protected:
  RunRootfsTest() : r_(root_.path()) {
    sys_.AddDirectory("/proc/acpi");      // masked: an empty read-only tmpfs
    sys_.AddFile("/proc/kcore");          // masked: /dev/null over it
    sys_.AddDirectory("/proc/sys");       // read-only
    sys_.AddFile("/proc/sysrq-trigger");  // read-only
    sys_.SetMountFlags(MS_NOSUID | MS_NODEV | MS_NOEXEC);
    sys_.SetMountFlags("/", MS_NOSUID);
  }

  RootfsPlan Plan(const v1::ContainerSpec& spec, bool userns = false) {
    absl::StatusOr<RootfsPlan> plan = BuildRootfsPlan(spec, userns);
    EXPECT_THAT(plan, IsOk());
    return plan.ok() ? *std::move(plan) : RootfsPlan();
  }
  v1::ContainerSpec Spec() { return DefaultSpec("c1", r_, {"/bin/true"}); }

  int Run(const RootfsPlan& plan) { return RunRootfs(plan, sys_, &stage_, &index_); }

  // OpenInRoot, the mount, close: one mount step without remount or propagation.
  std::vector<std::string> MountStep(const std::string& dest, const std::string& mount) {
    return {"open_in_root " + dest + " dir", mount, "close " + dest};
  }

  TempDir root_;
  const std::string r_;
  RecordingSyscalls sys_;
  Stage stage_ = Stage::kWaitGo;
  int index_ = 42;
};

void Append(std::vector<std::string>& to, const std::vector<std::string>& more) {
  to.insert(to.end(), more.begin(), more.end());
}

TEST_F(RunRootfsTest, DefaultSpecRunsInOrder) {
  v1::ContainerSpec spec = Spec();
  (*spec.mutable_sysctls())["net.ipv4.ip_forward"] = "1";
  spec.set_readonly_root(true);
  spec.set_hostname("web-1");
  RootfsPlan plan = Plan(spec);

  std::vector<std::string> want = {
      "mount - -> / type=- flags=MS_REC|MS_SLAVE data=-",
      absl::StrCat("mount ", r_, " -> ", r_, " type=- flags=MS_BIND|MS_REC data=-"),
      absl::StrCat("open ", r_, " dir"),
  };
  Append(want, MountStep("/proc",
                         "mount proc -> /proc type=proc "
                         "flags=MS_NOSUID|MS_NODEV|MS_NOEXEC data=-"));
  Append(want, MountStep("/dev",
                         "mount tmpfs -> /dev type=tmpfs "
                         "flags=MS_NOSUID|MS_STRICTATIME data=mode=755,size=65536k"));
  Append(want, MountStep("/dev/pts",
                         "mount devpts -> /dev/pts type=devpts "
                         "flags=MS_NOSUID|MS_NOEXEC "
                         "data=newinstance,ptmxmode=0666,mode=0620,gid=5"));
  Append(want, MountStep("/dev/shm",
                         "mount shm -> /dev/shm type=tmpfs "
                         "flags=MS_NOSUID|MS_NODEV|MS_NOEXEC "
                         "data=mode=1777,size=65536k"));
  Append(want, MountStep("/dev/mqueue",
                         "mount mqueue -> /dev/mqueue type=mqueue "
                         "flags=MS_NOSUID|MS_NODEV|MS_NOEXEC data=-"));
  Append(want, MountStep("/sys",
                         "mount sysfs -> /sys type=sysfs "
                         "flags=MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC data=-"));
  for (const char* dev :
       {"null c 1:3", "zero c 1:5", "full c 1:7", "random c 1:8", "urandom c 1:9", "tty c 5:0"}) {
    const std::string name(dev, std::string(dev).find(' '));
    // Made in /dev opened inside the root, never through a host path.
    Append(want, {"open_in_root /dev dir", absl::StrCat("mknod /dev/", dev, " 0666"),
                  absl::StrCat("chown /dev/", name, " 0:0"), "close /dev"});
  }
  for (const char* link : {"/proc/self/fd <- /dev/fd", "/proc/self/fd/0 <- /dev/stdin",
                           "/proc/self/fd/1 <- /dev/stdout", "/proc/self/fd/2 <- /dev/stderr",
                           "pts/ptmx <- /dev/ptmx", "/proc/kcore <- /dev/core"}) {
    Append(want, {"open_in_root /dev dir", absl::StrCat("symlink ", link), "close /dev"});
  }
  Append(want, {
                   absl::StrCat("close ", r_),
                   "open / dir",
                   absl::StrCat("chdir ", r_),
                   "pivot_root . .",
                   "fchdir /",
                   "mount - -> . type=- flags=MS_REC|MS_SLAVE data=-",
                   "umount2 . MNT_DETACH",
                   "close /",
                   "chdir /",
                   "write_file /proc/sys/net/ipv4/ip_forward 1",
                   // Masked paths: a directory, a file, the rest missing.
                   "is_directory /proc/acpi",
                   "mount tmpfs -> /proc/acpi type=tmpfs flags=MS_RDONLY data=size=0",
                   "is_directory /proc/asound",
                   "is_directory /proc/kcore",
                   "mount /dev/null -> /proc/kcore type=- flags=MS_BIND data=-",
                   "is_directory /proc/keys",
                   "is_directory /proc/latency_stats",
                   "is_directory /proc/timer_list",
                   "is_directory /proc/timer_stats",
                   "is_directory /proc/sched_debug",
                   "is_directory /sys/firmware",
                   "is_directory /sys/devices/virtual/powercap",
                   "is_directory /proc/scsi",
                   // Read-only paths: bound onto themselves, remounted keeping their flags.
                   "is_directory /proc/bus",
                   "is_directory /proc/fs",
                   "is_directory /proc/irq",
                   "is_directory /proc/sys",
                   "mount /proc/sys -> /proc/sys type=- flags=MS_BIND|MS_REC data=-",
                   "mount_flags /proc/sys",
                   "mount - -> /proc/sys type=- "
                   "flags=MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_REMOUNT|MS_BIND data=-",
                   "is_directory /proc/sysrq-trigger",
                   "mount /proc/sysrq-trigger -> /proc/sysrq-trigger type=- "
                   "flags=MS_BIND|MS_REC data=-",
                   "mount_flags /proc/sysrq-trigger",
                   "mount - -> /proc/sysrq-trigger type=- "
                   "flags=MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_REMOUNT|MS_BIND data=-",
                   "mount_flags /",
                   "mount - -> / type=- flags=MS_RDONLY|MS_NOSUID|MS_REMOUNT|MS_BIND data=-",
                   "sethostname web-1",
               });

  EXPECT_EQ(Run(plan), 0);
  EXPECT_THAT(sys_.calls(), ElementsAreArray(want));
  EXPECT_EQ(stage_, Stage::kNone);
  EXPECT_EQ(index_, -1);
  EXPECT_THAT(sys_.open_fds(), IsEmpty());
}

TEST_F(RunRootfsTest, NoHostnameNoReadonlyRootNoCalls) {
  EXPECT_EQ(Run(Plan(Spec())), 0);
  EXPECT_THAT(sys_.calls(), Not(Contains(HasSubstr("sethostname"))));
  EXPECT_THAT(sys_.calls(), Not(Contains("mount_flags /")));
  EXPECT_EQ(sys_.calls().back(),
            "mount - -> /proc/sysrq-trigger type=- "
            "flags=MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_REMOUNT|MS_BIND "
            "data=-");
}

TEST_F(RunRootfsTest, UserNamespaceBindMountsDevices) {
  EXPECT_EQ(Run(Plan(Spec(), /*userns=*/true)), 0);
  EXPECT_THAT(sys_.calls(), Not(Contains(HasSubstr("mknod"))));
  EXPECT_THAT(sys_.calls(), Not(Contains(HasSubstr("chown"))));
  const std::vector<std::string>& calls = sys_.calls();
  auto it = std::find(calls.begin(), calls.end(), "close /sys");
  ASSERT_GT(calls.end() - it, 1 + 6 * 3);
  std::vector<std::string> devices(it + 1, it + 1 + 6 * 3);
  std::vector<std::string> want;
  for (const char* dev : {"null", "zero", "full", "random", "urandom", "tty"}) {
    const std::string path = absl::StrCat("/dev/", dev);
    Append(want,
           {"open_in_root " + path + " file",
            "mount " + path + " -> " + path + " type=- flags=MS_BIND data=-", "close " + path});
  }
  EXPECT_THAT(devices, ElementsAreArray(want));
  EXPECT_EQ(*(it + 1 + 6 * 3), "open_in_root /dev dir");
  EXPECT_EQ(*(it + 2 + 6 * 3), "symlink /proc/self/fd <- /dev/fd");
  EXPECT_THAT(sys_.open_fds(), IsEmpty());
}

// A spec with one bind mount at /data; `options` as in the OCI spec.
class BindMountTest : public RunRootfsTest {
 protected:
  RootfsPlan BindPlan(std::initializer_list<const char*> options) {
    v1::ContainerSpec spec = Spec();
    spec.clear_mounts();
    spec.clear_masked_paths();
    spec.clear_readonly_paths();
    v1::Mount* m = spec.add_mounts();
    m->set_destination("/data");
    m->set_type("bind");
    m->set_source(src_.path());
    for (const char* o : options) m->add_options(o);
    return Plan(spec);
  }
  // The calls between opening the root and closing it.
  std::vector<std::string> MountCalls() {
    const std::vector<std::string>& calls = sys_.calls();
    auto begin = std::find(calls.begin(), calls.end(), "open " + r_ + " dir");
    auto end = std::find(calls.begin(), calls.end(), "close " + r_);
    if (begin == calls.end() || end < begin) return {"root not opened and closed"};
    return std::vector<std::string>(begin + 1, end);
  }
  std::string Bind(const char* flags) {
    return absl::StrCat("mount ", src_.path(), " -> /data type=- flags=", flags, " data=-");
  }

  TempDir src_;
};

TEST_F(BindMountTest, RbindRoIsABindThenARemount) {
  EXPECT_EQ(Run(BindPlan({"rbind", "ro", "nosuid"})), 0);
  EXPECT_THAT(MountCalls(),
              ElementsAreArray<std::string>(
                  {"open_in_root /data dir", Bind("MS_BIND|MS_REC"), "close /data",
                   "open_in_root /data dir",
                   "mount - -> /data type=- flags=MS_RDONLY|MS_NOSUID|MS_REMOUNT|MS_BIND data=-",
                   "close /data"}));
  EXPECT_THAT(sys_.open_fds(), IsEmpty());
}

TEST_F(BindMountTest, EpermOnRemountRetriesWithTheLockedFlags) {
  sys_.SetMountFlags("/data", MS_NODEV | MS_NOEXEC);
  sys_.FailOn("flags=MS_RDONLY|MS_REMOUNT|MS_BIND", EPERM);
  EXPECT_EQ(Run(BindPlan({"rbind", "ro"})), 0);
  EXPECT_THAT(
      MountCalls(),
      ElementsAreArray<std::string>(
          {"open_in_root /data dir", Bind("MS_BIND|MS_REC"), "close /data",
           "open_in_root /data dir",
           "mount - -> /data type=- flags=MS_RDONLY|MS_REMOUNT|MS_BIND data=-", "mount_flags /data",
           "mount - -> /data type=- flags=MS_RDONLY|MS_NODEV|MS_NOEXEC|MS_REMOUNT|MS_BIND data=-",
           "close /data"}));
  EXPECT_THAT(sys_.PendingFailures(), IsEmpty());
}

TEST_F(BindMountTest, EpermTwiceFailsTheMount) {
  sys_.SetMountFlags("/data", MS_NODEV);
  sys_.FailOn("flags=MS_RDONLY|MS_REMOUNT|MS_BIND", EPERM);
  sys_.FailOn("flags=MS_RDONLY|MS_NODEV|MS_REMOUNT|MS_BIND", EPERM);
  EXPECT_EQ(Run(BindPlan({"rbind", "ro"})), EPERM);
  EXPECT_EQ(stage_, Stage::kMount);
  EXPECT_EQ(index_, 0);
  EXPECT_THAT(sys_.calls(), Not(Contains(HasSubstr("pivot_root"))));
  EXPECT_THAT(sys_.open_fds(), IsEmpty());
}

TEST_F(BindMountTest, OtherRemountErrorsAreNotRetried) {
  sys_.FailOn("MS_REMOUNT", EACCES);
  EXPECT_EQ(Run(BindPlan({"bind", "ro"})), EACCES);
  EXPECT_THAT(sys_.calls(), Not(Contains(HasSubstr("mount_flags"))));
  EXPECT_EQ(stage_, Stage::kMount);
  EXPECT_THAT(sys_.open_fds(), IsEmpty());
}

TEST_F(BindMountTest, PropagationIsItsOwnMountAfterTheRemount) {
  EXPECT_EQ(Run(BindPlan({"rbind", "rprivate", "nodev"})), 0);
  EXPECT_THAT(MountCalls(),
              ElementsAreArray<std::string>(
                  {"open_in_root /data dir", Bind("MS_BIND|MS_REC"), "close /data",
                   "open_in_root /data dir",
                   "mount - -> /data type=- flags=MS_NODEV|MS_REMOUNT|MS_BIND data=-",
                   "close /data", "open_in_root /data dir",
                   "mount - -> /data type=- flags=MS_REC|MS_PRIVATE data=-", "close /data"}));
}

TEST_F(RunRootfsTest, FailuresReportTheirStageAndIndex) {
  struct Case {
    std::string fail_on;
    int err;
    Stage stage;
    int index;
  };
  const Case cases[] = {
      {"mount - -> / type=- flags=MS_REC|MS_SLAVE", EPERM, Stage::kMountPropagation, -1},
      {"flags=MS_BIND|MS_REC data=-", EACCES, Stage::kBindRoot, -1},
      {"open " + r_, ENOENT, Stage::kBindRoot, -1},
      {"open_in_root /proc dir", ELOOP, Stage::kMount, 0},
      {"-> /dev/pts", EPERM, Stage::kMount, 2},
      {"-> /sys", EBUSY, Stage::kMount, 5},
      {"mknod /dev/full", EACCES, Stage::kDevices, 2},
      {"chown /dev/tty", EPERM, Stage::kDevices, 5},
      {"<- /dev/stdout", EACCES, Stage::kDevices, 8},
      {"chdir " + r_, ENOTDIR, Stage::kPivotRoot, -1},
      {"pivot_root", EINVAL, Stage::kPivotRoot, -1},
      {"umount2", EBUSY, Stage::kPivotRoot, -1},
      {"write_file /proc/sys/kernel", EROFS, Stage::kSysctl, 0},
      {"is_directory /proc/asound", EACCES, Stage::kMaskedPath, 1},
      {"-> /proc/kcore", EPERM, Stage::kMaskedPath, 2},
      {"mount /proc/sys ->", EPERM, Stage::kReadonlyPath, 3},
      {"mount_flags /proc/sysrq-trigger", EIO, Stage::kReadonlyPath, 4},
      {"mount - -> / type=- flags=MS_RDONLY", EROFS, Stage::kReadonlyRoot, -1},
      {"sethostname", EPERM, Stage::kHostname, -1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fail_on);
    RecordingSyscalls sys;
    sys.AddDirectory("/proc/sys");
    sys.AddFile("/proc/sysrq-trigger");
    sys.AddFile("/proc/kcore");
    sys.FailOn(c.fail_on, c.err);
    v1::ContainerSpec spec = Spec();
    (*spec.mutable_sysctls())["kernel.shm_rmid_forced"] = "1";
    spec.set_readonly_root(true);
    spec.set_hostname("h");
    RootfsPlan plan = Plan(spec);
    Stage stage = Stage::kWaitGo;
    int index = 42;
    EXPECT_EQ(RunRootfs(plan, sys, &stage, &index), c.err);
    EXPECT_EQ(stage, c.stage) << StageName(stage);
    EXPECT_EQ(index, c.index);
    EXPECT_THAT(sys.PendingFailures(), IsEmpty());
    // Nothing but closes after the failing call: fds are closed on the way out.
    std::vector<std::string> calls = sys.calls();
    while (!calls.empty() && calls.back().rfind("close ", 0) == 0) calls.pop_back();
    ASSERT_FALSE(calls.empty());
    EXPECT_THAT(calls.back(), HasSubstr(c.fail_on));
    EXPECT_THAT(sys.open_fds(), IsEmpty());
  }
}

TEST_F(RunRootfsTest, ExistingDeviceNodesAndSymlinksAreKept) {
  sys_.FailOn("mknod /dev/null", EEXIST);
  sys_.FailOn("symlink /proc/kcore", EEXIST);
  EXPECT_EQ(Run(Plan(Spec())), 0);
  EXPECT_THAT(sys_.calls(), Not(Contains("chown /dev/null 0:0")));
  EXPECT_THAT(sys_.calls(), Contains("chown /dev/zero 0:0"));
  EXPECT_THAT(sys_.calls(), Contains("pivot_root . ."));
}

}  // namespace
}  // namespace berth::shim
