// CRI mounts, the sandbox's /etc files, and devices.
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "agent/runtime/container_spec_internal.h"
#include "agent/runtime/container_spec_testing.h"

namespace berth::lifecycle::testing {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::WriteFileOrDie;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

TEST(CleanPathTest, IsLexical) {
  const std::pair<const char*, const char*> cases[] = {
      {"/a//b/", "/a/b"}, {"/a/./b", "/a/b"}, {"/a/../b", "/b"}, {"/../a", "/a"},
      {"a/../..", ".."},  {"", "."},          {"//", "/"},       {"a/b/..", "a"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(internal::CleanPath(in), want) << in;
}

// The mounts BuildContainerSpec added after DefaultSpec's, by destination.
const shim::v1::Mount* Find(const shim::v1::ContainerSpec& spec, const std::string& dst) {
  for (const shim::v1::Mount& m : spec.mounts()) {
    if (m.destination() == dst) return &m;
  }
  return nullptr;
}

std::vector<std::string> Destinations(const shim::v1::ContainerSpec& spec) {
  std::vector<std::string> out;
  for (const shim::v1::Mount& m : spec.mounts()) out.push_back(m.destination());
  return out;
}

class MountsTest : public SpecTest {
 protected:
  v1::Mount* AddMount(const std::string& container, const std::string& host) {
    v1::Mount* m = config_.add_mounts();
    m->set_container_path(container);
    m->set_host_path(host);
    return m;
  }
};

TEST_F(MountsTest, BindMountsWithPropagationAndMode) {
  MakeDir(dir_.Join("data"));
  AddMount("/data", dir_.Join("data"));
  AddMount("/cfg", dir_.Join("data"))->set_readonly(true);
  AddMount("/slave", dir_.Join("data"))->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
  AddMount("/shared", dir_.Join("data"))->set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
  BuiltSpec built = BuildOk();
  const shim::v1::Mount* data = Find(built.spec, "/data");
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(data->type(), "bind");
  EXPECT_EQ(data->source(), dir_.Join("data"));
  EXPECT_THAT(data->options(), ElementsAre("rbind", "rprivate", "rw"));
  EXPECT_THAT(Find(built.spec, "/cfg")->options(), ElementsAre("rbind", "rprivate", "ro"));
  EXPECT_THAT(Find(built.spec, "/slave")->options(), ElementsAre("rbind", "rslave", "rw"));
  EXPECT_THAT(Find(built.spec, "/shared")->options(), ElementsAre("rbind", "rshared", "rw"));
  // The defaults stay first.
  EXPECT_EQ(built.spec.mounts(0).destination(), "/proc");
}

// containerd's ensureShared: a BIDIRECTIONAL mount from a private mount could
// never reach the host (this machine's / is private); HOST_TO_CONTAINER needs
// shared or slave. A BIDIRECTIONAL mount keeps the container's namespace shared.
TEST_F(MountsTest, PropagationNeedsASharedHostMount) {
  MakeDir(dir_.Join("data"));
  AddMount("/shared", dir_.Join("data"))->set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
  EXPECT_TRUE(BuildOk().spec.rootfs_shared());
  in_.mountinfo = "1 0 8:1 / / rw - ext4 /dev/root rw\n";
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("config.mounts[0].host_path")));
  in_.mountinfo = "1 0 8:1 / / rw shared:1 - ext4 /dev/root rw\n2 1 0:5 / " + dir_.path() +
                  " rw master:1 - tmpfs tmpfs rw\n";
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("is a slave (mount --make-shared " + dir_.path())));
  config_.mutable_mounts(0)->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
  BuiltSpec built = BuildOk();
  EXPECT_FALSE(built.spec.rootfs_shared());
  config_.mutable_mounts(0)->set_propagation(v1::PROPAGATION_PRIVATE);
  in_.mountinfo = "1 0 8:1 / / rw - ext4 /dev/root rw\n";
  EXPECT_THAT(Build(), IsOk());
}

TEST_F(MountsTest, SymlinksAreResolvedButEchoedAsAsked) {
  MakeDir(dir_.Join("real"));
  ASSERT_EQ(symlink(dir_.Join("real").c_str(), dir_.Join("link").c_str()), 0);
  AddMount("/data", dir_.Join("link"))->set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
  BuiltSpec built = BuildOk();
  EXPECT_EQ(Find(built.spec, "/data")->source(), dir_.Join("real"));
  ASSERT_EQ(built.mounts.size(), 1u);
  EXPECT_EQ(built.mounts[0].host_path(), dir_.Join("link"));
  EXPECT_EQ(built.mounts[0].propagation(), v1::PROPAGATION_BIDIRECTIONAL);
}

TEST_F(MountsTest, MissingHostPathIsNotFoundNamingTheField) {
  MakeDir(dir_.Join("data"));
  AddMount("/a", dir_.Join("data"));
  AddMount("/b", "/no/such/dir");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kNotFound,
                                HasSubstr("config.mounts[1].host_path `/no/such/dir`: No such file "
                                          "or directory")));
}

struct BadMountCase {
  const char* name;
  std::function<void(v1::Mount&)> set;
  std::string message;
};
void PrintTo(const BadMountCase& c, std::ostream* os) { *os << c.name; }

class BadMountTest : public MountsTest, public ::testing::WithParamInterface<BadMountCase> {};

TEST_P(BadMountTest, IsRefusedNamingTheField) {
  MakeDir(dir_.Join("data"));
  v1::Mount* m = AddMount("/data", dir_.Join("data"));
  GetParam().set(*m);
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(GetParam().message)));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadMountTest,
    ::testing::Values(
        BadMountCase{"EmptyContainerPath", [](v1::Mount& m) { m.clear_container_path(); },
                     "config.mounts[0].container_path is empty"},
        BadMountCase{"RelativeContainerPath", [](v1::Mount& m) { m.set_container_path("data"); },
                     "config.mounts[0].container_path `data`: not absolute"},
        BadMountCase{"EmptyHostPath", [](v1::Mount& m) { m.clear_host_path(); },
                     "config.mounts[0].host_path is empty"},
        BadMountCase{"UidMappings", [](v1::Mount& m) { m.add_uidmappings()->set_length(1); },
                     "config.mounts[0].uidMappings: idmapped mounts are not supported"},
        BadMountCase{"GidMappings", [](v1::Mount& m) { m.add_gidmappings()->set_length(1); },
                     "config.mounts[0].gidMappings"},
        BadMountCase{"ImageVolume", [](v1::Mount& m) { m.mutable_image()->set_image("busybox"); },
                     "config.mounts[0].image: image volumes"},
        BadMountCase{"ImageSubPath", [](v1::Mount& m) { m.set_image_sub_path("x"); },
                     "config.mounts[0].image_sub_path"},
        BadMountCase{"RecursiveReadOnly",
                     [](v1::Mount& m) {
                       m.set_readonly(true);
                       m.set_recursive_read_only(true);
                     },
                     "config.mounts[0].recursive_read_only"}),
    [](const ::testing::TestParamInfo<BadMountCase>& info) { return info.param.name; });

TEST_F(MountsTest, SelinuxRelabelIsIgnored) {
  MakeDir(dir_.Join("data"));
  AddMount("/data", dir_.Join("data"))->set_selinux_relabel(true);
  EXPECT_NE(Find(BuildOk().spec, "/data"), nullptr);
}

TEST_F(MountsTest, SandboxFilesAreBoundReadOnlyWithAReadOnlyRootfs) {
  BuiltSpec built = BuildOk();
  const shim::v1::Mount* hosts = Find(built.spec, "/etc/hosts");
  ASSERT_NE(hosts, nullptr);
  EXPECT_EQ(hosts->source(), in_.sandbox.hosts_file);
  EXPECT_THAT(hosts->options(), ElementsAre("rbind", "rprivate", "rw"));
  EXPECT_NE(Find(built.spec, "/etc/hostname"), nullptr);
  EXPECT_NE(Find(built.spec, "/etc/resolv.conf"), nullptr);
  EXPECT_THAT(built.mounts, IsEmpty());  // not CRI mounts
  SecurityContext().set_readonly_rootfs(true);
  EXPECT_THAT(Find(BuildOk().spec, "/etc/hosts")->options(), Contains("ro"));
}

TEST_F(MountsTest, ConfigMountWinsOverASandboxFile) {
  WriteFileOrDie(dir_.Join("my-hosts"), "127.0.0.1 x\n");
  AddMount("/etc//hosts", dir_.Join("my-hosts"));
  in_.sandbox.resolv_conf_file.clear();  // no dns_config: the image's stays
  BuiltSpec built = BuildOk();
  std::vector<std::string> dst = Destinations(built.spec);
  EXPECT_EQ(std::count(dst.begin(), dst.end(), "/etc/hosts"), 1);
  EXPECT_EQ(Find(built.spec, "/etc/hosts")->source(), dir_.Join("my-hosts"));
  EXPECT_THAT(dst, Not(Contains("/etc/resolv.conf")));
}

TEST_F(MountsTest, ThePodsShmReplacesTheContainersOwn) {
  // Without one, the container's own tmpfs (DefaultSpec).
  BuiltSpec plain = BuildOk();
  const shim::v1::Mount* own = Find(plain.spec, "/dev/shm");
  ASSERT_NE(own, nullptr);
  EXPECT_EQ(own->type(), "tmpfs");
  MakeDir(dir_.Join("shm"));
  in_.sandbox.shm_dir = dir_.Join("shm");
  SecurityContext().set_readonly_rootfs(true);  // still writable: a tmpfs would be
  BuiltSpec built = BuildOk();
  std::vector<std::string> dst = Destinations(built.spec);
  EXPECT_EQ(std::count(dst.begin(), dst.end(), "/dev/shm"), 1);
  const shim::v1::Mount* shm = Find(built.spec, "/dev/shm");
  ASSERT_NE(shm, nullptr);
  EXPECT_EQ(shm->type(), "bind");
  EXPECT_EQ(shm->source(), dir_.Join("shm"));
  EXPECT_THAT(shm->options(), ElementsAre("rbind", "rprivate", "rw", "nosuid", "nodev", "noexec"));
  // After /dev, which is mounted first.
  EXPECT_LT(std::find(dst.begin(), dst.end(), "/dev") - dst.begin(),
            std::find(dst.begin(), dst.end(), "/dev/shm") - dst.begin());
  // A container's own mount there wins (a Memory emptyDir, say).
  MakeDir(dir_.Join("mine"));
  AddMount("/dev/shm", dir_.Join("mine"));
  built = BuildOk();
  dst = Destinations(built.spec);
  EXPECT_EQ(std::count(dst.begin(), dst.end(), "/dev/shm"), 1);
  EXPECT_EQ(Find(built.spec, "/dev/shm")->source(), dir_.Join("mine"));
}

TEST_F(MountsTest, MissingSandboxFileIsNamed) {
  in_.sandbox.hosts_file = dir_.Join("gone");
  EXPECT_THAT(Build(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("the sandbox's hosts file")));
}

TEST_F(MountsTest, ShallowMountsComeFirst) {
  MakeDir(dir_.Join("data"));
  AddMount("/a/b/c", dir_.Join("data"));
  AddMount("/a", dir_.Join("data"));
  AddMount("/z/y", dir_.Join("data"));
  in_.sandbox = SandboxContext{};  // no /etc files
  std::vector<std::string> dst = Destinations(BuildOk().spec);
  std::vector<std::string> added(dst.end() - 3, dst.end());
  EXPECT_THAT(added, ElementsAre("/a", "/z/y", "/a/b/c"));
}

TEST_F(MountsTest, ConfigMountsReplaceDefaults) {
  MakeDir(dir_.Join("shm"));
  AddMount("/dev/shm", dir_.Join("shm"));
  std::vector<std::string> dst = Destinations(BuildOk().spec);
  EXPECT_EQ(std::count(dst.begin(), dst.end(), "/dev/shm"), 1);
  EXPECT_EQ(Find(BuildOk().spec, "/dev/shm")->type(), "bind");
  AddMount("/dev", dir_.Join("shm"));
  dst = Destinations(BuildOk().spec);
  EXPECT_THAT(dst, Not(Contains("/dev/pts")));
  EXPECT_THAT(dst, Not(Contains("/dev/mqueue")));
  EXPECT_THAT(dst, Contains("/proc"));
}

TEST(DevicesAtTest, ReadsANode) {
  absl::StatusOr<std::vector<shim::v1::Device>> d = internal::DevicesAt("/dev/null", "/dev/x");
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ((*d)[0].path(), "/dev/x");
  EXPECT_EQ((*d)[0].type(), "c");
  EXPECT_EQ((*d)[0].major(), 1);
  EXPECT_EQ((*d)[0].minor(), 3);
  EXPECT_EQ((*d)[0].file_mode(), 0666u);
  EXPECT_THAT(internal::DevicesAt("/etc/passwd", "/dev/x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a character or block")));
}

TEST(DevicesAtTest, WalksDirectoriesSkippingNonDevices) {
  berth::testing::TempDir dir;
  WriteFileOrDie(dir.Join("file"), "");
  ASSERT_EQ(mkdir(dir.Join("pts").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(dir.Join("sub").c_str(), 0755), 0);
  ASSERT_EQ(symlink("/dev/null", dir.Join("sub/null-link").c_str()), 0);  // lstat: not a node
  absl::StatusOr<std::vector<shim::v1::Device>> d = internal::DevicesAt(dir.path(), "/dev");
  ASSERT_THAT(d, IsOk());
  EXPECT_THAT(*d, IsEmpty());
}

class DevicesTest : public SpecTest {
 protected:
  void AddDevice(const std::string& host, const std::string& container, const std::string& perms) {
    v1::Device* d = config_.add_devices();
    d->set_host_path(host);
    d->set_container_path(container);
    d->set_permissions(perms);
  }
};

TEST_F(DevicesTest, NodesAndCgroupRules) {
  ASSERT_EQ(symlink("/dev/zero", dir_.Join("zero-link").c_str()), 0);
  AddDevice("/dev/null", "/dev/xnull", "rw");
  AddDevice(dir_.Join("zero-link"), "", "");
  BuiltSpec built = BuildOk();
  ASSERT_EQ(built.spec.devices_size(), 2);
  EXPECT_EQ(built.spec.devices(0).path(), "/dev/xnull");
  EXPECT_EQ(built.spec.devices(1).path(), dir_.Join("zero-link"));  // container path defaulted
  EXPECT_EQ(built.spec.devices(1).minor(), 5);
  const shim::v1::Resources& r = built.spec.resources();
  EXPECT_TRUE(r.devices_set());
  ASSERT_EQ(r.devices_size(), 2);
  EXPECT_TRUE(r.devices(0).allow());
  EXPECT_EQ(r.devices(0).type(), "c");
  EXPECT_EQ(r.devices(0).major(), 1);
  EXPECT_EQ(r.devices(0).minor(), 3);
  EXPECT_EQ(r.devices(0).access(), "rw");
  EXPECT_EQ(r.devices(1).access(), "rwm");
}

TEST_F(DevicesTest, ErrorsNameTheField) {
  AddDevice("/dev/null", "/dev/x", "rwx");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("config.devices[0].permissions `rwx`")));
  config_.mutable_devices(0)->set_permissions("r");
  config_.mutable_devices(0)->set_host_path("/dev/no-such-device");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kNotFound,
                                HasSubstr("config.devices[0].host_path `/dev/no-such-device`")));
  config_.mutable_devices(0)->set_host_path("/etc/passwd");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("config.devices[0].host_path `/etc/passwd`")));
  config_.mutable_devices(0)->set_host_path("/dev/null");
  config_.mutable_devices(0)->set_container_path("/dev/../etc/x");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("config.devices[0].container_path")));
}

TEST_F(DevicesTest, PrivilegedGetsHostDevicesButNotTheShimsOwn) {
  sandbox_config_.mutable_linux()->mutable_security_context()->set_privileged(true);
  SecurityContext().set_privileged(true);
  AddDevice("/dev/null", "/dev/mine", "r");
  BuiltSpec built = BuildOk();
  std::vector<std::string> paths;
  for (const shim::v1::Device& d : built.spec.devices()) paths.push_back(d.path());
  EXPECT_EQ(paths[0], "/dev/mine");
  for (const char* p : {"/dev/null", "/dev/zero", "/dev/tty", "/dev/ptmx", "/dev/console"}) {
    EXPECT_THAT(paths, Not(Contains(p)));
  }
  for (const std::string& p : paths) EXPECT_FALSE(absl::StartsWith(p, "/dev/pts/")) << p;
}

}  // namespace
}  // namespace berth::lifecycle::testing
