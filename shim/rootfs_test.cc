// BuildRootfsPlan: the plain data the parent computes from a ContainerSpec
// before clone() (shim/rootfs.h). RunRootfs is tested in rootfs_run_test.cc.
#include "shim/rootfs.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <initializer_list>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "shim/client.h"
#include "tests/support/recording_syscalls.h"  // MountFlagsString
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::shim {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::MountFlagsString;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

void AddMount(v1::ContainerSpec& spec, const std::string& destination, const std::string& type,
              const std::string& source, std::initializer_list<const char*> options) {
  v1::Mount* m = spec.add_mounts();
  m->set_destination(destination);
  m->set_type(type);
  m->set_source(source);
  for (const char* o : options) m->add_options(o);
}

// One line per step, so a mismatch prints every field.
std::string Describe(const MountStep& m) {
  return absl::StrCat(
      m.destination, " source=", m.source, " type=", m.fstype, " flags=", MountFlagsString(m.flags),
      " data=", m.data, m.bind ? " bind" : "", " remount=", MountFlagsString(m.remount_flags),
      " propagation=", MountFlagsString(m.propagation), m.directory ? " dir" : " file");
}

std::vector<std::string> Describe(const std::vector<MountStep>& mounts) {
  std::vector<std::string> out;
  for (const MountStep& m : mounts) out.push_back(Describe(m));
  return out;
}

std::string Describe(const DeviceStep& d) {
  return absl::StrFormat("%s at %s/%s mode=%o %u:%u owner=%u:%u", d.container, d.dir, d.name,
                         d.mode, major(d.dev), minor(d.dev), d.uid, d.gid);
}

std::vector<std::string> Links(const RootfsPlan& plan) {
  std::vector<std::string> out;
  for (const RootfsPlan::Link& l : plan.symlinks) {
    out.push_back(absl::StrCat(l.dir, "/", l.name, " -> ", l.target));
  }
  return out;
}

class BuildRootfsPlanTest : public ::testing::Test {
 protected:
  // A spec whose bind sources and root exist.
  v1::ContainerSpec Spec() { return DefaultSpec("c1", root_.path(), {"/bin/true"}); }
  std::string Root(const std::string& path) { return root_.path() + path; }

  TempDir root_;
};

TEST_F(BuildRootfsPlanTest, DefaultSpecMountsInOrderWithFlagsAndData) {
  absl::StatusOr<RootfsPlan> plan = BuildRootfsPlan(Spec(), /*userns=*/false);
  ASSERT_THAT(plan, IsOk());
  EXPECT_EQ(plan->root, root_.path());
  EXPECT_THAT(
      Describe(plan->mounts),
      ElementsAre(
          "/proc source=proc type=proc flags=MS_NOSUID|MS_NODEV|MS_NOEXEC data= remount=0 "
          "propagation=0 dir",
          "/dev source=tmpfs type=tmpfs flags=MS_NOSUID|MS_STRICTATIME data=mode=755,size=65536k "
          "remount=0 propagation=0 dir",
          "/dev/pts source=devpts type=devpts flags=MS_NOSUID|MS_NOEXEC "
          "data=newinstance,ptmxmode=0666,mode=0620,gid=5 remount=0 propagation=0 dir",
          "/dev/shm source=shm type=tmpfs flags=MS_NOSUID|MS_NODEV|MS_NOEXEC "
          "data=mode=1777,size=65536k remount=0 propagation=0 dir",
          "/dev/mqueue source=mqueue type=mqueue flags=MS_NOSUID|MS_NODEV|MS_NOEXEC data= "
          "remount=0 propagation=0 dir",
          "/sys source=sysfs type=sysfs flags=MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC data= "
          "remount=0 propagation=0 dir"));
}

TEST_F(BuildRootfsPlanTest, DefaultSpecGetsTheSixDefaultDevicesAndSymlinks) {
  absl::StatusOr<RootfsPlan> plan = BuildRootfsPlan(Spec(), /*userns=*/false);
  ASSERT_THAT(plan, IsOk());
  EXPECT_TRUE(plan->dev_is_tmpfs);
  EXPECT_FALSE(plan->bind_devices);
  std::vector<std::string> devices;
  for (const DeviceStep& d : plan->devices) devices.push_back(Describe(d));
  const std::string r = root_.path();
  EXPECT_THAT(devices,
              ElementsAre(absl::StrCat("/dev/null at /dev/null mode=20666 1:3 owner=0:0"),
                          absl::StrCat("/dev/zero at /dev/zero mode=20666 1:5 owner=0:0"),
                          absl::StrCat("/dev/full at /dev/full mode=20666 1:7 owner=0:0"),
                          absl::StrCat("/dev/random at /dev/random mode=20666 1:8 owner=0:0"),
                          absl::StrCat("/dev/urandom at /dev/urandom mode=20666 1:9 owner=0:0"),
                          absl::StrCat("/dev/tty at /dev/tty mode=20666 5:0 owner=0:0")));
  EXPECT_THAT(Links(*plan),
              ElementsAre("/dev/fd -> /proc/self/fd", "/dev/stdin -> /proc/self/fd/0",
                          "/dev/stdout -> /proc/self/fd/1", "/dev/stderr -> /proc/self/fd/2",
                          "/dev/ptmx -> pts/ptmx", "/dev/core -> /proc/kcore"));
}

TEST_F(BuildRootfsPlanTest, DefaultSpecPathsAreCarriedOver) {
  v1::ContainerSpec spec = Spec();
  absl::StatusOr<RootfsPlan> plan = BuildRootfsPlan(spec, /*userns=*/false);
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(plan->masked_paths, ElementsAreArray(spec.masked_paths()));
  EXPECT_THAT(plan->readonly_paths, ElementsAreArray(spec.readonly_paths()));
  EXPECT_THAT(plan->masked_paths, ::testing::Contains("/proc/kcore"));
  EXPECT_THAT(plan->readonly_paths, ::testing::Contains("/proc/sys"));
  EXPECT_THAT(plan->sysctls, IsEmpty());
  EXPECT_FALSE(plan->readonly_root);
  EXPECT_EQ(plan->hostname, "");
}

TEST_F(BuildRootfsPlanTest, UserNamespaceBindsDevicesInsteadOfMknod) {
  absl::StatusOr<RootfsPlan> plan = BuildRootfsPlan(Spec(), /*userns=*/true);
  ASSERT_THAT(plan, IsOk());
  EXPECT_TRUE(plan->bind_devices);
  EXPECT_EQ(plan->devices.size(), 6u);
  EXPECT_EQ(plan->symlinks.size(), 6u);
}

TEST_F(BuildRootfsPlanTest, NoDefaultDevicesWhenDevIsNotATmpfs) {
  v1::ContainerSpec spec = Spec();
  spec.mutable_mounts()->erase(spec.mutable_mounts()->begin() + 1);  // /dev
  ASSERT_EQ(spec.mounts(1).destination(), "/dev/pts");
  absl::StatusOr<RootfsPlan> plan = BuildRootfsPlan(spec, /*userns=*/false);
  ASSERT_THAT(plan, IsOk());
  EXPECT_FALSE(plan->dev_is_tmpfs);
  EXPECT_THAT(plan->devices, IsEmpty());
  EXPECT_THAT(plan->symlinks, IsEmpty());

  // A bind-mounted /dev is not a fresh tmpfs either.
  AddMount(spec, "/dev", "bind", "/dev", {"rbind"});
  plan = BuildRootfsPlan(spec, /*userns=*/false);
  ASSERT_THAT(plan, IsOk());
  EXPECT_FALSE(plan->dev_is_tmpfs);
  EXPECT_THAT(plan->devices, IsEmpty());

  // Nor is a devtmpfs, which comes with its nodes.
  spec.mutable_mounts()->RemoveLast();
  AddMount(spec, "/dev", "devtmpfs", "devtmpfs", {"nosuid"});
  plan = BuildRootfsPlan(spec, /*userns=*/false);
  ASSERT_THAT(plan, IsOk());
  EXPECT_FALSE(plan->dev_is_tmpfs);
  EXPECT_THAT(plan->devices, IsEmpty());
}

TEST_F(BuildRootfsPlanTest, SpecDevicesFollowTheDefaults) {
  v1::ContainerSpec spec = Spec();
  v1::Device* d = spec.add_devices();
  d->set_path("/dev/sda1");
  d->set_type("b");
  d->set_major(8);
  d->set_minor(1);
  d->set_file_mode(0620);
  d->set_uid(5);
  d->set_gid(6);
  d = spec.add_devices();
  d->set_path("/dev/fuse");
  d->set_type("c");
  d->set_major(10);
  d->set_minor(229);
  absl::StatusOr<RootfsPlan> plan = BuildRootfsPlan(spec, /*userns=*/false);
  ASSERT_THAT(plan, IsOk());
  ASSERT_EQ(plan->devices.size(), 8u);
  EXPECT_EQ(Describe(plan->devices[6]), "/dev/sda1 at /dev/sda1 mode=60620 8:1 owner=5:6");
  EXPECT_EQ(Describe(plan->devices[7]), "/dev/fuse at /dev/fuse mode=20666 10:229 owner=0:0");
}

TEST_F(BuildRootfsPlanTest, BindMounts) {
  const std::string dir = root_.Join("src-dir");
  const std::string file = root_.Join("src-file");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  berth::testing::WriteFileOrDie(file, "x");
  v1::ContainerSpec spec = Spec();
  spec.clear_mounts();
  AddMount(spec, "/data", "bind", dir, {"rbind", "ro"});
  AddMount(spec, "/etc/hosts", "none", file, {"bind", "nosuid", "nodev"});
  AddMount(spec, "/rw", "", dir, {"rbind", "rw"});
  AddMount(spec, "/plain", "bind", dir, {});
  absl::StatusOr<RootfsPlan> plan = BuildRootfsPlan(spec, /*userns=*/false);
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(Describe(plan->mounts),
              ElementsAre(absl::StrCat("/data source=", dir,
                                       " type= flags=MS_BIND|MS_REC data= bind "
                                       "remount=MS_RDONLY|MS_REMOUNT|MS_BIND propagation=0 dir"),
                          absl::StrCat("/etc/hosts source=", file,
                                       " type= flags=MS_BIND data= bind "
                                       "remount=MS_NOSUID|MS_NODEV|MS_REMOUNT|MS_BIND "
                                       "propagation=0 file"),
                          absl::StrCat("/rw source=", dir,
                                       " type= flags=MS_BIND|MS_REC data= bind remount=0 "
                                       "propagation=0 dir"),
                          absl::StrCat("/plain source=", dir,
                                       " type= flags=MS_BIND data= bind remount=0 "
                                       "propagation=0 dir")));
  EXPECT_FALSE(plan->dev_is_tmpfs);
}

TEST_F(BuildRootfsPlanTest, PropagationOptions) {
  const std::string dir = root_.Join("src");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  v1::ContainerSpec spec = Spec();
  spec.clear_mounts();
  AddMount(spec, "/a", "bind", dir, {"rbind", "rprivate"});
  AddMount(spec, "/b", "tmpfs", "tmpfs", {"rslave", "size=1m"});
  AddMount(spec, "/c", "bind", dir, {"bind", "shared", "ro"});
  AddMount(spec, "/d", "tmpfs", "tmpfs", {"private", "runbindable"});
  absl::StatusOr<RootfsPlan> plan = BuildRootfsPlan(spec, /*userns=*/false);
  ASSERT_THAT(plan, IsOk());
  ASSERT_EQ(plan->mounts.size(), 4u);
  EXPECT_EQ(MountFlagsString(plan->mounts[0].propagation), "MS_REC|MS_PRIVATE");
  EXPECT_EQ(MountFlagsString(plan->mounts[0].flags), "MS_BIND|MS_REC");
  EXPECT_EQ(MountFlagsString(plan->mounts[1].propagation), "MS_REC|MS_SLAVE");
  EXPECT_EQ(MountFlagsString(plan->mounts[1].flags), "0");
  EXPECT_EQ(plan->mounts[1].data, "size=1m");
  EXPECT_EQ(MountFlagsString(plan->mounts[2].propagation), "MS_SHARED");
  EXPECT_EQ(MountFlagsString(plan->mounts[2].remount_flags), "MS_RDONLY|MS_REMOUNT|MS_BIND");
  EXPECT_EQ(MountFlagsString(plan->mounts[3].propagation), "MS_REC|MS_UNBINDABLE");  // last wins
}

TEST_F(BuildRootfsPlanTest, SysctlsReadonlyRootAndHostname) {
  v1::ContainerSpec spec = Spec();
  (*spec.mutable_sysctls())["net.ipv4.ip_forward"] = "1";
  (*spec.mutable_sysctls())["kernel.shm_rmid_forced"] = "0";
  spec.set_readonly_root(true);
  spec.set_hostname("web-1");
  absl::StatusOr<RootfsPlan> plan = BuildRootfsPlan(spec, /*userns=*/false);
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(plan->sysctls, UnorderedElementsAre(Pair("/proc/sys/net/ipv4/ip_forward", "1"),
                                                  Pair("/proc/sys/kernel/shm_rmid_forced", "0")));
  EXPECT_TRUE(plan->readonly_root);
  EXPECT_EQ(plan->hostname, "web-1");
}

TEST_F(BuildRootfsPlanTest, RootMustBeAnAbsoluteDirectory) {
  v1::ContainerSpec spec = Spec();
  spec.set_root("rootfs");
  EXPECT_THAT(BuildRootfsPlan(spec, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("root `rootfs`")));
  spec.set_root("");
  EXPECT_THAT(BuildRootfsPlan(spec, false), StatusIs(absl::StatusCode::kInvalidArgument));
  berth::testing::WriteFileOrDie(root_.Join("file"), "");
  spec.set_root(root_.Join("file"));
  EXPECT_THAT(BuildRootfsPlan(spec, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not a directory")));
  spec.set_root(root_.Join("missing"));
  EXPECT_THAT(BuildRootfsPlan(spec, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(root_.Join("missing"))));
}

TEST_F(BuildRootfsPlanTest, ErrorsNameTheField) {
  struct Case {
    const char* name;
    void (*edit)(v1::ContainerSpec&);
    const char* message;
  };
  const Case cases[] = {
      {"relative destination",
       [](v1::ContainerSpec& s) { s.mutable_mounts(2)->set_destination("dev/pts"); },
       "mounts[2].destination `dev/pts` is not absolute"},
      {"missing bind source",
       [](v1::ContainerSpec& s) { AddMount(s, "/data", "bind", "/nonexistent/berth", {"rbind"}); },
       "mounts[6].source `/nonexistent/berth`: No such file or directory"},
      {"empty type", [](v1::ContainerSpec& s) { s.mutable_mounts(0)->clear_type(); },
       "mounts[0].type is empty"},
      {"bad device type",
       [](v1::ContainerSpec& s) {
         s.add_devices()->set_path("/dev/ok");
         v1::Device* d = s.add_devices();
         d->set_path("/dev/x");
         d->set_type("u");
         s.mutable_devices(0)->set_type("c");
       },
       "devices[1].type `u` is not \"c\" or \"b\""},
      {"relative device path",
       [](v1::ContainerSpec& s) {
         v1::Device* d = s.add_devices();
         d->set_path("dev/x");
         d->set_type("c");
       },
       "devices[0].path `dev/x` is not absolute"},
      {"sysctl name with a slash",
       [](v1::ContainerSpec& s) { (*s.mutable_sysctls())["net/ipv4"] = "1"; },
       "sysctls: bad name `net/ipv4`"},
      {"sysctl name with ..",
       [](v1::ContainerSpec& s) { (*s.mutable_sysctls())["kernel..x"] = "1"; },
       "sysctls: bad name `kernel..x`"},
      {"empty sysctl name", [](v1::ContainerSpec& s) { (*s.mutable_sysctls())[""] = "1"; },
       "sysctls: bad name ``"},
      {"relative masked path", [](v1::ContainerSpec& s) { s.set_masked_paths(1, "proc/x"); },
       "masked_paths[1] `proc/x` is not absolute"},
      {"relative read-only path", [](v1::ContainerSpec& s) { s.set_readonly_paths(4, "x"); },
       "readonly_paths[4] `x` is not absolute"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::ContainerSpec spec = Spec();
    c.edit(spec);
    EXPECT_THAT(BuildRootfsPlan(spec, false),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
  }
}

// ".." in a device path is refused outright (its directory is also opened
// with RESOLVE_IN_ROOT at run time, but a clear error beats a surprise).
TEST_F(BuildRootfsPlanTest, DevicePathCannotLeaveTheRoot) {
  v1::ContainerSpec spec = Spec();
  v1::Device* d = spec.add_devices();
  d->set_path("/dev/../../escaped");
  d->set_type("c");
  d->set_major(1);
  d->set_minor(3);
  EXPECT_THAT(BuildRootfsPlan(spec, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("devices[0].path")));
}

}  // namespace
}  // namespace berth::shim
